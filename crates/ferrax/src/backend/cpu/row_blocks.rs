//! Running a program block of rows by block of rows, so that its large values stay in cache
//! between the step that writes them and the steps that read them.
//!
//! Sits between `plan` and the plans it runs: when a whole optimized program works row by
//! row along one leading dimension of `R` rows and sums over those rows (a Gauss-Newton
//! product `Jᵀ J v` over `R` data points, a reverse-mode product `Jᵀ u`), `RowBlocks::of`
//! makes a second program of the same equations for a block of `P` rows, and `Plan::run`
//! runs it on each block (in turn on one thread, spread over the threads on more) instead
//! of running the whole program once. A block's
//! values (a `4096 × 300` activation becomes `P × 300`, about 512 KiB) are read back from
//! the cache, and each block's rows of the inputs are read from memory once for every step
//! that uses them, where the whole program's values and inputs would each travel through
//! memory again at every step (on this machine its L3 holds much less than a 4096-row
//! program's working set).
//!
//! A program qualifies when every equation is *row-local* (its output's row `i` depends
//! only on its operands' rows `i` and on values that are not row-indexed) or a *sum over
//! the rows* whose result is only an output of the program:
//!
//! * elementwise operations of row-indexed operands;
//! * `broadcast_in_dim` to a shape of `R` rows, of a row-indexed operand along its rows or
//!   of any other value along the other dimensions (a bias);
//! * `reshape`, `squeeze` and `transpose` that keep the rows leading;
//! * `dot_general` of a row-indexed left operand, not contracted along its rows, by a value
//!   that is not row-indexed (`X W`, an outer product `g bᵀ`);
//! * sums over the rows: `reduce_sum` along axis 0, and `dot_general` contracting both
//!   operands along their rows (`Xᵀ G`), whose blocks' results are added in block order.
//!
//! The program's inputs and constants whose leading dimension is `R` are the row-indexed
//! values; the block program takes each block's rows of them as inputs. Every output is
//! either row-indexed (the blocks' rows are copied into it in order) or a sum over the
//! rows. Anything else (another primitive, a row-indexed value used as a weight, a sum used
//! by a later equation, a value computed from non-row-indexed values alone) leaves the
//! program to the ordinary whole-program plan. So does a program whose rows are wider than
//! 64 KiB (eight of them fill a block, and each block's copies would be large), and, by
//! measurement: one whose largest row-indexed value stays in cache whole (under 1 MiB); one
//! with no sum over the rows (each of its values streams through memory about once whole
//! too, and the blocks' fixed costs made a residual's forward pass slower); and one whose
//! row-indexed outputs are a quarter as wide as its widest value or more (a linearization's
//! primal half, whose outputs are its residuals: their copies cost what the cache saves).
//!
//! Row-local results are the whole program's: each row gets the same operations, so
//! elementwise steps and `matvec`'s products keep their bits; a `gemm` product of a block
//! may group many terms differently from the whole program's (`gemm` picks its blocking
//! from the sizes, as a change of kernel can), and agrees to rounding. Every block has at
//! least `block` rows (the remainder joins the last one), so no block's product takes a
//! one-row kernel. A sum over the rows is the sum of its blocks' sums: it is reassociated,
//! as a threaded or blocked sum is, and agrees with the whole program's to rounding.

use std::cell::Cell;

use rayon::prelude::*;

use crate::backend::cpu::codegen::with_flag;
use crate::backend::cpu::math::threads;
use crate::ir::{Array, Atom, Aval, Data, Equation, Error, Primitive, Program, Result};

/// A plan of a block program, as `plan` makes it (a trait, so this module need not import
/// `plan`, which imports it).
pub(crate) trait BlockPlan: Clone + std::fmt::Debug + Sync {
    /// Runs the plan on arrays that match its inputs.
    fn run_block(&self, args: Vec<Array>) -> Result<Vec<Array>>;
}

/// The largest row-indexed value, in bytes, that a program may have and still run whole:
/// below this its values fit in the caches anyway.
const WHOLE_BYTES: usize = 1 << 20;

/// The target size in bytes of a block of the widest row-indexed value. Measured on the
/// Gauss-Newton product (`4096 × 300` f32 values, one thread): blocks of 96 KiB were slower
/// than the whole program, 384 to 768 KiB fastest (about 10% ahead), 1.5 MiB and more
/// back to the whole program's time: below, the blocks' fixed costs (a plan run, a `gemm`
/// call and its packing per block) dominate; above, the blocks leave the cache.
const BLOCK_BYTES: usize = 512 << 10;

thread_local! {
    static OFF: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with blocking by rows turned off on this thread: plans run from `f` (on this
/// thread) run their whole program at once. The oracle the blocked runs are tested against,
/// and a way to measure what blocking gains.
pub fn without_row_blocks<R>(f: impl FnOnce() -> R) -> R {
    with_flag(&OFF, f)
}

/// Whether blocking by rows is turned off on this thread ([`without_row_blocks`]).
pub(crate) fn off() -> bool {
    OFF.with(Cell::get)
}

/// How a value relates to the rows.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// Leading dimension `R`, computed row by row.
    Row,
    /// Not row-indexed: the same for every block (a weight, a bias).
    Whole,
    /// A sum over the rows: each block's is added.
    Sum,
}

/// What becomes of one output of the program.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Out {
    /// The blocks' rows, in order.
    Rows,
    /// The sum of the blocks' values.
    Sum,
}

/// A program run block of rows by block of rows: the plans of its block program for a full
/// block and for the last, shorter one, and where each input and output goes.
#[derive(Clone, Debug)]
pub(crate) struct RowBlocks<P> {
    rows: usize,
    block: usize,
    full: P,
    /// The last block's plan when the rows are not a whole number of blocks: `block` rows
    /// plus the remainder.
    tail: Option<P>,
    /// For each input of the program: whether it is row-indexed (a block's rows are given).
    row_inputs: Vec<bool>,
    /// The row-indexed constants, given after the inputs.
    row_consts: Vec<Array>,
    outputs: Vec<Out>,
}

impl<P: BlockPlan> RowBlocks<P> {
    /// The blocked form of an optimized, checked program, when it qualifies (module doc);
    /// `build` makes the block programs' plans.
    pub(crate) fn of(program: &Program, build: impl Fn(&Program) -> P) -> Option<RowBlocks<P>> {
        let rows = leading_rows(program)?;
        let analysis = analyse(program, rows)?;
        let widest = analysis.widest_row_bytes;
        if widest.checked_mul(rows)? < WHOLE_BYTES {
            return None;
        }
        // no sum over the rows, or outputs as wide as the values: measured no faster by
        // blocks (module doc)
        if !analysis.outputs.contains(&Out::Sum) {
            return None;
        }
        if analysis.output_row_bytes.saturating_mul(4) > widest {
            return None;
        }
        // whole multiples of eight rows; rows wider than an eighth of a block (64 KiB) gain
        // nothing from blocks and would make each block's copies large
        let block = (BLOCK_BYTES / widest.max(1)) / 8 * 8;
        if block < 8 || rows < 2 * block {
            return None;
        }
        // the remainder joins the last block (of `block` to `2 block - 1` rows), so that no
        // block is a sliver of a few rows (a one-row product would take another kernel)
        let full = block_program(program, &analysis, rows, block)?;
        let tail = match rows % block {
            0 => None,
            t => Some(build(&block_program(program, &analysis, rows, block + t)?)),
        };
        Some(RowBlocks {
            rows,
            block,
            full: build(&full),
            tail,
            row_inputs: analysis.row_inputs,
            row_consts: analysis.row_consts,
            outputs: analysis.outputs,
        })
    }

    /// The number of rows and of rows per block (a diagnostic).
    pub(crate) fn shape(&self) -> (usize, usize) {
        (self.rows, self.block)
    }

    /// Runs the program on `args` (known to match its inputs) block by block: one after the
    /// other on one thread, spread over the threads otherwise, the outputs put together in
    /// block order either way (the same sums in the same order).
    pub(crate) fn run(&self, args: &[Array]) -> Result<Vec<Array>> {
        // the blocks' row ranges: the last one takes the remainder too
        let mut ranges = vec![];
        let mut start = 0;
        while start < self.rows {
            let end = match self.rows - start < 2 * self.block {
                true => self.rows,
                false => start + self.block,
            };
            ranges.push((start, end));
            start = end;
        }
        let results: Vec<Result<Vec<Array>>> = if threads() > 1 {
            ranges
                .par_iter()
                .map(|&range| self.run_block(args, range))
                .collect()
        } else {
            ranges
                .iter()
                .map(|&range| self.run_block(args, range))
                .collect()
        };
        let mut outs: Vec<Option<Gathered>> = self.outputs.iter().map(|_| None).collect();
        for block_outs in results {
            for ((acc, value), &kind) in outs.iter_mut().zip(block_outs?).zip(&self.outputs) {
                match acc {
                    None => *acc = Some(Gathered::first(value, kind)),
                    Some(g) => g.add(value)?,
                }
            }
        }
        outs.into_iter()
            .map(|g| match g {
                Some(g) => g.finish(self.rows),
                None => Err(Error::check("a blocked program ran no block")),
            })
            .collect()
    }

    /// Runs the block of rows `start..end` (a full block, or the last one).
    fn run_block(&self, args: &[Array], (start, end): (usize, usize)) -> Result<Vec<Array>> {
        let plan = match (end - start == self.block, &self.tail) {
            (false, Some(t)) => t,
            _ => &self.full,
        };
        // the block program takes the inputs in order, a block's rows of the row-indexed
        // ones, then the row-indexed constants' rows
        let block_args = args
            .iter()
            .zip(&self.row_inputs)
            .map(|(a, &row)| match row {
                true => rows_of(a, self.rows, start, end),
                false => Ok(a.clone()),
            })
            .chain(
                self.row_consts
                    .iter()
                    .map(|c| rows_of(c, self.rows, start, end)),
            )
            .collect::<Result<Vec<Array>>>()?;
        plan.run_block(block_args)
    }
}

/// Rows `start..end` of `a`, whose leading dimension is `rows` (a copy: arrays are whole
/// buffers; at most `2 block - 1` rows of at most `BLOCK_BYTES / 8` bytes each).
fn rows_of(a: &Array, rows: usize, start: usize, end: usize) -> Result<Array> {
    let per_row = a.size() / rows.max(1);
    let mut shape = a.shape().to_vec();
    shape[0] = end - start;
    Array::from_data(a.data().range(start * per_row, end * per_row), &shape)
}

/// An output being put together from its blocks.
enum Gathered {
    /// Each block's rows, joined when the last has come.
    Rows(Vec<Array>),
    /// The sum so far.
    Sum(Array),
}

impl Gathered {
    fn first(value: Array, kind: Out) -> Gathered {
        match kind {
            Out::Sum => Gathered::Sum(value),
            Out::Rows => Gathered::Rows(vec![value]),
        }
    }

    fn add(&mut self, value: Array) -> Result<()> {
        match self {
            Gathered::Rows(blocks) => blocks.push(value),
            Gathered::Sum(acc) => {
                let data = match (acc.data(), value.data()) {
                    (Data::F32(a), Data::F32(b)) => {
                        Data::F32(a.iter().zip(b).map(|(x, y)| x + y).collect())
                    }
                    (Data::F64(a), Data::F64(b)) => {
                        Data::F64(a.iter().zip(b).map(|(x, y)| x + y).collect())
                    }
                    _ => return Err(Error::check("a sum over blocks of rows is not a float")),
                };
                *acc = Array::from_data(data, acc.shape())?;
            }
        }
        Ok(())
    }

    /// The output of `rows` rows: the blocks' rows joined in order (into a buffer allocated
    /// fallibly), or the sum.
    fn finish(self, rows: usize) -> Result<Array> {
        match self {
            Gathered::Sum(acc) => Ok(acc),
            Gathered::Rows(blocks) => {
                let first = blocks
                    .first()
                    .ok_or_else(|| Error::check("a blocked output of no block"))?;
                let mut shape = first.shape().to_vec();
                shape[0] = rows;
                let aval = Aval::new(shape, first.dtype());
                let parts: Vec<&Data> = blocks.iter().map(Array::data).collect();
                let data = Data::concat(aval.dtype, &parts, aval.size(), "blocked plan", &aval)?;
                Array::from_data(data, &aval.shape)
            }
        }
    }
}

/// The number of rows a blocked run would split: the leading dimension of the largest input
/// or constant.
fn leading_rows(program: &Program) -> Option<usize> {
    let largest = program
        .inputs
        .iter()
        .chain(program.consts.iter().map(|(v, _)| v))
        .map(|v| &program.avals[v.index()])
        .filter(|a| !a.shape.is_empty())
        .max_by_key(|a| a.size())?;
    Some(largest.shape[0]).filter(|&r| r >= 2)
}

/// What the analysis of a program finds: each variable's kind, where inputs and outputs go.
struct Analysis {
    kinds: Vec<Option<Kind>>,
    row_inputs: Vec<bool>,
    row_consts: Vec<Array>,
    outputs: Vec<Out>,
    widest_row_bytes: usize,
    /// Bytes per row of the row-indexed outputs together.
    output_row_bytes: usize,
}

/// Classifies every variable of `program` against `rows` rows, or `None` when the program
/// does not work row by row (module doc).
fn analyse(program: &Program, rows: usize) -> Option<Analysis> {
    let mut kinds: Vec<Option<Kind>> = vec![None; program.avals.len()];
    let is_rows = |a: &Aval| a.shape.first() == Some(&rows);
    for v in program
        .inputs
        .iter()
        .chain(program.consts.iter().map(|(v, _)| v))
    {
        let row = is_rows(&program.avals[v.index()]);
        kinds[v.index()] = Some(if row { Kind::Row } else { Kind::Whole });
    }
    for e in &program.eqns {
        let [out] = e.outs[..] else { return None };
        let kind = equation_kind(e, &kinds)?;
        // a row-indexed result has the rows leading, whatever its rule
        if kind == Kind::Row && !is_rows(&program.avals[out.index()]) {
            return None;
        }
        kinds[out.index()] = Some(kind);
    }
    let outputs = program
        .outputs
        .iter()
        .map(|o| match o {
            Atom::Var(v) => match kinds[v.index()]? {
                Kind::Row => Some(Out::Rows),
                Kind::Sum if program.avals[v.index()].dtype.is_float() => Some(Out::Sum),
                Kind::Sum | Kind::Whole => None,
            },
            Atom::Lit(_) => None,
        })
        .collect::<Option<Vec<Out>>>()?;
    let widest_row_bytes = kinds
        .iter()
        .zip(&program.avals)
        .filter(|(k, _)| **k == Some(Kind::Row))
        .map(|(_, a)| (a.size() / rows).saturating_mul(a.dtype.size_bytes()))
        .max()?;
    let output_row_bytes = program
        .outputs
        .iter()
        .zip(&outputs)
        .filter_map(|(o, kind)| match (o, kind) {
            (Atom::Var(v), Out::Rows) => {
                let a = &program.avals[v.index()];
                Some((a.size() / rows).saturating_mul(a.dtype.size_bytes()))
            }
            _ => None,
        })
        .fold(0usize, usize::saturating_add);
    let row_inputs = program
        .inputs
        .iter()
        .map(|v| kinds[v.index()] == Some(Kind::Row))
        .collect();
    let row_consts = program
        .consts
        .iter()
        .filter(|(v, _)| kinds[v.index()] == Some(Kind::Row))
        .map(|(_, a)| a.clone())
        .collect();
    Some(Analysis {
        kinds,
        row_inputs,
        row_consts,
        outputs,
        widest_row_bytes,
        output_row_bytes,
    })
}

/// The kind of `e`'s result, or `None` when `e` does not work row by row.
fn equation_kind(e: &Equation, kinds: &[Option<Kind>]) -> Option<Kind> {
    let kind = |a: &Atom| match a {
        Atom::Lit(_) => Some(Kind::Whole),
        Atom::Var(v) => kinds[v.index()],
    };
    let operands: Vec<Kind> = e.inputs.iter().map(kind).collect::<Option<_>>()?;
    // a sum over the rows is only an output
    if operands.contains(&Kind::Sum) {
        return None;
    }
    use Primitive as P;
    match &e.prim {
        P::BroadcastInDim {
            broadcast_dimensions,
            ..
        } => match operands[0] {
            Kind::Row => (broadcast_dimensions.first() == Some(&0)).then_some(Kind::Row),
            _ => (!broadcast_dimensions.contains(&0)).then_some(Kind::Row),
        },
        P::Reshape { .. } | P::Squeeze { .. } | P::Transpose { .. } if operands[0] != Kind::Row => {
            None
        }
        // the output's leading dimension is checked to be the rows by the caller; a reshape
        // keeping it keeps each row's elements (row-major)
        P::Reshape { .. } => Some(Kind::Row),
        P::Squeeze { dimensions } => (!dimensions.contains(&0)).then_some(Kind::Row),
        P::Transpose { permutation } => (permutation.first() == Some(&0)).then_some(Kind::Row),
        P::ReduceSum { axes } => match (operands[0], axes.contains(&0)) {
            (Kind::Row, true) => Some(Kind::Sum),
            (Kind::Row, false) => Some(Kind::Row),
            _ => None,
        },
        P::DotGeneral {
            lhs_contracting,
            rhs_contracting,
            lhs_batch,
            rhs_batch,
        } if lhs_batch.is_empty() && rhs_batch.is_empty() => match (operands[0], operands[1]) {
            (Kind::Row, Kind::Whole) => (!lhs_contracting.contains(&0)).then_some(Kind::Row),
            (Kind::Row, Kind::Row) => {
                (lhs_contracting == &[0] && rhs_contracting == &[0]).then_some(Kind::Sum)
            }
            _ => None,
        },
        p if elementwise(p) => operands
            .iter()
            .zip(&e.inputs)
            .all(|(k, a)| *k == Kind::Row || matches!(a, Atom::Lit(_)))
            .then_some(Kind::Row),
        _ => None,
    }
}

/// Whether `p` applies elementwise to operands of one shape.
fn elementwise(p: &Primitive) -> bool {
    use Primitive as P;
    matches!(
        p,
        P::Neg
            | P::Sin
            | P::Cos
            | P::Tan
            | P::Exp
            | P::Log
            | P::Log1p
            | P::Expm1
            | P::Tanh
            | P::Logistic
            | P::Sqrt
            | P::Rsqrt
            | P::Abs
            | P::Sign
            | P::Floor
            | P::Ceil
            | P::Round
            | P::Erf
            | P::Asin
            | P::Acos
            | P::Atan
            | P::Asinh
            | P::Acosh
            | P::Atanh
            | P::IntegerPow { .. }
            | P::Add
            | P::Sub
            | P::Mul
            | P::Div
            | P::Pow
            | P::Max
            | P::Min
            | P::Atan2
            | P::Rem
            | P::Eq
            | P::Ne
            | P::Lt
            | P::Le
            | P::Gt
            | P::Ge
            | P::Select
            | P::ConvertElementType { .. }
    )
}

/// The program of a block of `block` rows: the same equations, row-indexed values with
/// `block` rows, the row-indexed constants taken as inputs after the others; `None` if it
/// does not check (then the program runs whole).
fn block_program(
    program: &Program,
    analysis: &Analysis,
    rows: usize,
    block: usize,
) -> Option<Program> {
    let is_row = |i: usize| analysis.kinds[i] == Some(Kind::Row);
    let mut avals = program.avals.clone();
    for (i, a) in avals.iter_mut().enumerate() {
        if is_row(i) {
            a.shape[0] = block;
        }
    }
    let eqns = program
        .eqns
        .iter()
        .map(|e| {
            let mut e = e.clone();
            match &mut e.prim {
                Primitive::BroadcastInDim { shape, .. } => shape[0] = block,
                Primitive::Reshape { new_sizes } => new_sizes[0] = block,
                _ => {}
            }
            debug_assert!(e
                .outs
                .iter()
                .all(|v| !is_row(v.index()) || program.avals[v.index()].shape[0] == rows));
            e
        })
        .collect();
    let (row_consts, consts): (Vec<_>, Vec<_>) = program
        .consts
        .iter()
        .cloned()
        .partition(|(v, _)| is_row(v.index()));
    let mut inputs = program.inputs.clone();
    inputs.extend(row_consts.iter().map(|(v, _)| *v));
    let p = Program {
        avals,
        consts,
        inputs,
        eqns,
        outputs: program.outputs.clone(),
    };
    p.check().ok()?;
    Some(p)
}
