//! Execution plans: an optimized program prepared to run on arrays, many times.
//!
//! Each equation becomes a step with its operands resolved to slots, its output aval
//! precomputed (no shape rules at run time) and the slots it is the last user of. Values are
//! freed at their last use, and elementwise steps write into an operand's buffer when that
//! operand dies there and nothing else holds it (in-place update). Runs of elementwise steps
//! are fused (`fuse`); each step runs its fast kernel (`dispatch`) or falls back to the
//! reference evaluator. Control-flow equations (`cond`, `scan`) are routed to `control`
//! before any kernel is chosen: they run plans of their own sub-programs, made here once,
//! and end fused runs. Freed intermediates go to the plan's buffer pool (`buffers`) for the
//! next step or the next call. The tests hold plans equal to the reference evaluator on
//! random programs.

use std::collections::HashMap;

use crate::backend::count;
use crate::backend::cpu::buffers::{self, BufferPool};
use crate::backend::cpu::control::{self, ControlStep, SubPlan};
use crate::backend::cpu::dispatch::{execute, kernel, Kernel};
use crate::backend::cpu::fixed_body::FixedBody;
use crate::backend::cpu::fuse::{self, FusedItem};
use crate::backend::cpu::matmul::strided_matvec_pair;
use crate::backend::cpu::profile;
use crate::backend::cpu::row_blocks::{self, BlockPlan, RowBlocks};
use crate::backend::cpu::row_panels::vector_and_matrix_product;
use crate::backend::cpu::step::{
    free_dead, read, slot_var, take_operands_into, Slots, Step, StepArg,
};
use crate::ir::{same_shape, Array, Atom, Aval, Error, Program, Result, Var};
use crate::passes::optimize_checked;

#[derive(Clone, Debug)]
pub(crate) enum Item {
    Step(Step),
    Fused(FusedItem),
    /// A `cond` or `scan` with the plans of its sub-programs (see `control`).
    Control(ControlStep<Plan>),
    /// Two adjacent products of one matrix, by a vector each or by a vector then by a
    /// matrix, run reading the matrix once (`paired`).
    Pair(Box<[Step; 2]>),
}

/// An optimized program ready to run on arrays.
#[derive(Clone, Debug)]
pub struct Plan {
    program: Program,
    inputs: Vec<usize>,
    in_avals: Vec<Aval>,
    items: Vec<Item>,
    outputs: Vec<StepArg>,
    /// For each output, whether it is the last to read its slot (then moved out of it).
    output_moves: Vec<bool>,
    n_slots: usize,
    /// Buffers freed by the last run, reused by the next (see `buffers`).
    pool: BufferPool,
    /// The program run block of rows by block of rows, when it works row by row over
    /// large values (`row_blocks`); [`Plan::run`] then runs it that way.
    blocks: Option<Box<RowBlocks<Plan>>>,
}

impl SubPlan for Plan {
    fn slots(&self) -> Slots {
        Slots::new(self.n_slots)
    }

    fn run_nested(
        &self,
        args: &mut Vec<Array>,
        slots: &mut Slots,
        outs: &mut Vec<Array>,
    ) -> Result<()> {
        self.run_installed(args, slots, outs)
    }

    fn fixed_body(&self, n_consts: usize, n_carry: usize) -> Option<FixedBody> {
        let mut items: Vec<&[Step]> = vec![];
        for item in &self.items {
            match item {
                Item::Step(s) => items.push(std::slice::from_ref(s)),
                Item::Pair(p) => items.push(&p[..]),
                Item::Fused(_) | Item::Control(_) => return None,
            }
        }
        let counts = (n_consts, n_carry);
        FixedBody::of(&self.inputs, &self.in_avals, &items, &self.outputs, counts)
    }
}

impl BlockPlan for Plan {
    fn run_block(&self, args: Vec<Array>) -> Result<Vec<Array>> {
        self.run(args)
    }
}

impl Plan {
    /// Optimizes a program and prepares it to run. A program that does not type-check
    /// ([`Program::check`]) is an error.
    pub fn new(p: &Program) -> Result<Plan> {
        p.check()?;
        Ok(Plan::from_checked(p))
    }

    /// [`Plan::new`] for a program known to type-check (made by the library's own passes).
    pub(crate) fn from_checked(p: &Program) -> Plan {
        let mut plan = Plan::whole(p);
        plan.blocks = RowBlocks::of(&plan.program, Plan::whole).map(Box::new);
        plan
    }

    /// The plan of a program that always runs whole: a nested plan of control flow (run
    /// through `run_nested`), or a block program of `row_blocks`.
    fn whole(p: &Program) -> Plan {
        let program = optimize_checked(p);
        let consts: HashMap<Var, Array> = program.consts.iter().cloned().collect();
        let arg = |a: &Atom| match a {
            Atom::Lit(s) => StepArg::Value(Array::from_scalar(*s)),
            Atom::Var(v) => match consts.get(v) {
                Some(c) => StepArg::Value(c.clone()),
                None => StepArg::Slot(v.index()),
            },
        };
        let last_use = last_uses(&program);
        let prepared: Vec<Item> = program
            .eqns
            .iter()
            .enumerate()
            .map(|(k, e)| {
                let mut last: Vec<usize> = e
                    .inputs
                    .iter()
                    .filter_map(|a| match a {
                        Atom::Var(v) if last_use.get(&v.index()) == Some(&k) => Some(v.index()),
                        _ => None,
                    })
                    .collect();
                last.sort_unstable();
                last.dedup();
                let args: Vec<StepArg> = e.inputs.iter().map(arg).collect();
                // Control flow is routed here, before any kernel is chosen: it runs nested
                // plans (`control`), never a kernel of `dispatch`.
                let used = |slot: usize| last_use.contains_key(&slot);
                if let Some(c) = control::prepare(e, &program, &args, &last, used, Plan::whole) {
                    return Item::Control(c);
                }
                let in_avals: Vec<Aval> = e.inputs.iter().map(|a| program.atom_aval(a)).collect();
                let out_aval = program.aval(e.out()).clone();
                Item::Step(Step {
                    kernel: kernel(&e.prim, &out_aval, &in_avals),
                    prim: e.prim.clone(),
                    args,
                    out: e.out().index(),
                    out_aval,
                    last,
                })
            })
            .collect();
        let items = fuse(&program, prepared, &last_use);
        let output_moves = (0..program.outputs.len())
            .map(|j| match &program.outputs[j] {
                Atom::Var(v) => !program.outputs[j + 1..].contains(&Atom::Var(*v)),
                Atom::Lit(_) => false,
            })
            .collect();
        Plan {
            inputs: program.inputs.iter().map(|v| v.index()).collect(),
            in_avals: program.in_avals(),
            outputs: program.outputs.iter().map(arg).collect(),
            output_moves,
            n_slots: program.avals.len(),
            pool: BufferPool::default(),
            items,
            program,
            blocks: None,
        }
    }

    /// The optimized program the plan runs.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// How many freed intermediate buffers the plan holds for its next run (a diagnostic:
    /// after one run, a plan whose large intermediates die before its end holds some).
    pub fn pooled_buffers(&self) -> usize {
        self.pool.kept()
    }

    /// How many fused elementwise groups the plan has, and how many of them run generated
    /// machine code (the others, and every group on a CPU without AVX2 and FMA, run through the
    /// interpreter); nested plans not counted (a diagnostic).
    pub fn fused_groups(&self) -> (usize, usize) {
        let groups = self.items.iter().filter_map(|item| match item {
            Item::Fused(f) => Some(f.code.is_some()),
            _ => None,
        });
        groups.fold((0, 0), |(n, c), code| (n + 1, c + usize::from(code)))
    }

    /// The vector width in bits of the plan's generated code: 512 (AVX-512) or 256 (AVX2,
    /// also under [`with_avx2_codegen`](crate::with_avx2_codegen)); `None` when no group
    /// has code (a diagnostic).
    pub fn code_bits(&self) -> Option<u32> {
        self.items.iter().find_map(|item| match item {
            Item::Fused(f) => f.code.as_ref().map(|c| c.bits),
            _ => None,
        })
    }

    /// How many fused groups compute a matrix-vector product of one of their values chunk
    /// by chunk of rows, never writing that value out (nested plans not counted; a
    /// diagnostic).
    pub fn fused_products(&self) -> usize {
        self.items
            .iter()
            .filter(|item| matches!(item, Item::Fused(f) if f.group.rows.is_some()))
            .count()
    }

    /// The number of rows and of rows per block when the plan runs its program block of rows
    /// by block of rows (`row_blocks`: a program that works row by row over large values);
    /// `None` when it runs it whole (a diagnostic).
    pub fn row_blocks(&self) -> Option<(usize, usize)> {
        self.blocks.as_ref().map(|b| b.shape())
    }

    /// How many pairs of products by one matrix (by two vectors, or by a vector and a
    /// matrix) the plan made to run together (each reads the matrix once from memory where
    /// the layout, the dtype and the CPU allow it, see `strided_matvec_pair` and
    /// `row_panels`; nested plans not counted; a diagnostic).
    pub fn paired_products(&self) -> usize {
        self.items
            .iter()
            .filter(|item| matches!(item, Item::Pair(_)))
            .count()
    }

    /// How many of its scans run their body on buffers fixed for the whole loop (a body of
    /// elementwise float kernels and products with a vector, over small values: see
    /// ARCHITECTURE.md; nested plans not counted; a diagnostic).
    pub fn fixed_bodies(&self) -> usize {
        self.items
            .iter()
            .filter(|item| matches!(item, Item::Control(c) if c.has_fixed_body()))
            .count()
    }

    /// The plans of the sub-programs of its control-flow steps, in program order (a
    /// `cond`'s branches in order, a `scan`'s body): made once, with this plan, whatever the
    /// number of iterations (a diagnostic).
    pub fn nested(&self) -> Vec<&Plan> {
        self.items
            .iter()
            .flat_map(|item| match item {
                Item::Control(c) => c.plans(),
                Item::Step(_) | Item::Fused(_) | Item::Pair(_) => vec![],
            })
            .collect()
    }

    /// Runs the plan on concrete arrays.
    pub fn run(&self, mut args: Vec<Array>) -> Result<Vec<Array>> {
        if args.len() != self.inputs.len() {
            return Err(Error::input(
                "Plan::run",
                format!(
                    "the plan takes {} input(s), {} given",
                    self.inputs.len(),
                    args.len()
                ),
            ));
        }
        for (i, (a, want)) in args.iter().zip(&self.in_avals).enumerate() {
            if !same_shape(a.shape(), &want.shape) || a.dtype() != want.dtype {
                return Err(Error::input(
                    "Plan::run",
                    format!("input {i} must be {want}, got {}", a.aval()),
                ));
            }
        }
        if let Some(blocks) = self.blocks.as_ref().filter(|_| !row_blocks::off()) {
            return blocks.run(&args);
        }
        let _installed = self.pool.install();
        let mut outs = Vec::with_capacity(self.outputs.len());
        self.run_installed(&mut args, &mut self.slots(), &mut outs)?;
        Ok(outs)
    }

    /// Runs on `args` (drained), known to match the inputs, with a buffer pool already
    /// installed (this plan's, or the enclosing plan's for a nested one), pushing the
    /// outputs onto `outs`.
    fn run_installed(
        &self,
        args: &mut Vec<Array>,
        slots: &mut Slots,
        outs: &mut Vec<Array>,
    ) -> Result<()> {
        for (slot, a) in self.inputs.iter().zip(args.drain(..)) {
            slots.write(slot_var(*slot), a);
        }
        // one operand list serves every step of the run
        let mut operands = Vec::new();
        for item in &self.items {
            match item {
                Item::Step(s) => run_step(s, slots, &mut operands)?,
                Item::Fused(f) => run_fused(f, slots)?,
                Item::Control(c) => c.run(slots)?,
                Item::Pair(p) => run_pair(p, slots, &mut operands)?,
            }
        }
        // Every other slot was emptied at its last use: taking the outputs (moved at their
        // last reading) and the inputs nothing read leaves the table empty for a next run.
        for (o, &last) in self.outputs.iter().zip(&self.output_moves) {
            outs.push(match (o, last) {
                (StepArg::Slot(k), true) => slots.take(slot_var(*k)).ok_or_else(|| {
                    Error::check(format!("variable {k} is used before it is defined"))
                })?,
                _ => read(slots, o)?,
            });
        }
        for slot in &self.inputs {
            slots.take(slot_var(*slot));
        }
        Ok(())
    }
}

/// Groups runs of fusible steps (same size and dtype, at least two, or one followed by full
/// reductions of its values) into fused items, a matrix-vector product of a group's value
/// joining its group; control-flow items end a run. `prepared` has one item per equation,
/// and `last_use` gives each slot's last reading equation.
fn fuse(program: &Program, prepared: Vec<Item>, last_use: &HashMap<usize, usize>) -> Vec<Item> {
    let aval_of = |a: &StepArg| match a {
        StepArg::Value(v) => v.aval(),
        StepArg::Slot(k) => program.avals[*k].clone(),
    };
    // `steps` are the equations `start..start + steps.len()`
    let flush = |items: &mut Vec<Item>, steps: &mut Vec<Step>, start: usize| {
        // every reader of each slot in this block, in order
        let mut readers: HashMap<usize, Vec<usize>> = HashMap::new();
        for (j, s) in steps.iter().enumerate() {
            for a in &s.args {
                if let StepArg::Slot(slot) = a {
                    readers.entry(*slot).or_default().push(j);
                }
            }
        }
        let block_end = start + steps.len();
        let mut absorbed = vec![false; steps.len()];
        let mut k = 0;
        while k < steps.len() {
            if absorbed[k] {
                k += 1;
                continue;
            }
            let end = fuse::run_end(steps, k, &aval_of);
            let run = &steps[k..end];
            // Full sums, maxima or minima of the run's values later in the block join the
            // group (they are pure: computing them early changes nothing), up to the first
            // other reader of the value, which then frees it as before.
            let mut reduce = vec![];
            for s in run {
                let after = readers
                    .get(&s.out)
                    .into_iter()
                    .flatten()
                    .filter(|&&j| j >= end);
                for &j in after {
                    let Some(kind) = fuse::reduction_of(&steps[j], run, &aval_of) else {
                        break;
                    };
                    absorbed[j] = true;
                    reduce.push((kind, &steps[j]));
                }
            }
            if end - k < 2 && reduce.is_empty() {
                match steps.get(k + 1) {
                    Some(next) if !absorbed[k + 1] && paired(&steps[k], next, &aval_of) => {
                        items.push(Item::Pair(Box::new([steps[k].clone(), next.clone()])));
                        k += 2;
                    }
                    _ => {
                        items.push(Item::Step(steps[k].clone()));
                        k += 1;
                    }
                }
                continue;
            }
            // a value is written out when a step outside the group, or the output, reads it
            let read_after = |slot: usize| {
                last_use.get(&slot).is_some_and(|&u| u >= block_end)
                    || readers
                        .get(&slot)
                        .into_iter()
                        .flatten()
                        .any(|&j| j >= end && !absorbed[j])
            };
            items.push(Item::Fused(fuse::group(run, &reduce, read_after, &aval_of)));
            k = end;
        }
        steps.clear();
    };
    let n_eqns = prepared.len();
    let mut items = vec![];
    let mut steps = vec![];
    for (k, item) in prepared.into_iter().enumerate() {
        match item {
            Item::Step(s) => steps.push(s),
            other => {
                let start = k - steps.len();
                flush(&mut items, &mut steps, start);
                items.push(other);
            }
        }
    }
    let start = n_eqns - steps.len();
    flush(&mut items, &mut steps, start);
    // a matrix-vector product right after the group that makes its matrix, the matrix
    // read by nothing else, joins the group (`fuse::with_row_product`)
    let mut joined: Vec<Item> = Vec::with_capacity(items.len());
    for item in items {
        if let (Item::Step(s), Some(Item::Fused(f))) = (&item, joined.last_mut()) {
            if let Some(g) = fuse::with_row_product(f, s, &aval_of) {
                *f = g;
                continue;
            }
        }
        joined.push(item);
    }
    joined
}

/// Whether two adjacent steps are products of one matrix that can run together
/// (`Item::Pair`): the same `dot_general` on the same matrix operand, the first by a vector,
/// the second by a vector alike or by a matrix, and not reading the first's result. The
/// products a jvp makes with a weight matrix (`W x` and `W t`) are adjacent, and so are
/// those of a `vmap` of a jvp (`W x` and `W T`, the tangents' batch); reading a matrix too
/// large for the cache once instead of twice halves their memory traffic, as XLA's merging
/// of dots that share an operand does.
fn paired(a: &Step, b: &Step, aval_of: &dyn Fn(&StepArg) -> Aval) -> bool {
    let same = |x: &StepArg, y: &StepArg| match (x, y) {
        (StepArg::Slot(i), StepArg::Slot(j)) => i == j,
        (StepArg::Value(u), StepArg::Value(v)) => u.shares_buffer(v),
        _ => false,
    };
    a.kernel == Some(Kernel::Matmul)
        && b.kernel == a.kernel
        && a.prim == b.prim
        && a.out_aval.shape.len() == 1
        && a.args.len() == 2
        && b.args.len() == 2
        && same(&a.args[0], &b.args[0])
        && aval_of(&a.args[0]).ndim() == 2
        && aval_of(&a.args[1]).ndim() == 1
        // a vector alike (`strided_matvec_pair`'s case) or a matrix (`row_panels`')
        && (aval_of(&a.args[1]) == aval_of(&b.args[1]) || aval_of(&b.args[1]).ndim() == 2)
        && !matches!(b.args[1], StepArg::Slot(s) if s == a.out)
}

/// The last step that reads each slot; outputs are read "after" every step.
fn last_uses(program: &Program) -> HashMap<usize, usize> {
    let mut last_use = HashMap::new();
    for (k, e) in program.eqns.iter().enumerate() {
        for a in &e.inputs {
            if let Atom::Var(v) = a {
                last_use.insert(v.index(), k);
            }
        }
    }
    for a in &program.outputs {
        if let Atom::Var(v) = a {
            last_use.insert(v.index(), usize::MAX);
        }
    }
    last_use
}

fn run_step(s: &Step, slots: &mut Slots, args: &mut Vec<Array>) -> Result<()> {
    args.clear();
    take_operands_into(&s.args, &s.last, slots, args)?;
    let t0 = profile::start();
    let out = execute(s.kernel, &s.prim, args, &s.out_aval)?;
    profile::stop(t0, || s.prim.to_string());
    // operands that died here and were not reused in place
    args.drain(..).for_each(buffers::recycle);
    free_dead(&s.last, slots);
    slots.write(slot_var(s.out), out);
    Ok(())
}

/// Runs a pair of products of one matrix (`paired`): both steps' operands are taken first
/// (the first's last uses are not read by the second, or they would not be its last), the
/// matrix is read once for both where the layout allows (`strided_matvec_pair`, or
/// `row_panels` when the second is by a matrix), otherwise each runs as its own step would.
fn run_pair(pair: &[Step; 2], slots: &mut Slots, args: &mut Vec<Array>) -> Result<()> {
    let [a, b] = pair;
    args.clear();
    take_operands_into(&a.args, &a.last, slots, args)?;
    take_operands_into(&b.args, &b.last, slots, args)?;
    let t0 = profile::start();
    let fused = if args[3].ndim() == 2 {
        let (w, x, t) = (&args[0], &args[1], &args[3]);
        vector_and_matrix_product(w, x, t, &a.prim, &a.out_aval, &b.out_aval)?
    } else {
        strided_matvec_pair(&args[0], [&args[1], &args[3]], &a.prim, &a.out_aval)?
    };
    let outs = match fused {
        Some(outs) => {
            count(&a.prim);
            count(&b.prim);
            outs
        }
        None => {
            let mut second = args.split_off(2);
            let x = execute(a.kernel, &a.prim, args, &a.out_aval)?;
            let y = execute(b.kernel, &b.prim, &mut second, &b.out_aval)?;
            args.append(&mut second);
            [x, y]
        }
    };
    profile::stop(t0, || format!("{} (two products)", a.prim));
    args.drain(..).for_each(buffers::recycle);
    free_dead(&a.last, slots);
    free_dead(&b.last, slots);
    let [x, y] = outs;
    slots.write(slot_var(a.out), x);
    slots.write(slot_var(b.out), y);
    Ok(())
}

fn run_fused(f: &FusedItem, slots: &mut Slots) -> Result<()> {
    let t0 = profile::start();
    let ins = f
        .inputs
        .iter()
        .map(|a| read(slots, a))
        .collect::<Result<Vec<_>>>()?;
    let outs = f.group.run(&ins, f.code.as_deref())?;
    for p in &f.prims {
        count(p);
    }
    drop(ins);
    free_dead(&f.last, slots);
    for (slot, a) in f.outs.iter().zip(outs) {
        slots.write(slot_var(*slot), a);
    }
    profile::stop(t0, || {
        let names: Vec<&str> = f.prims.iter().map(|p| p.name()).collect();
        format!("fused[{}]", names.join("+"))
    });
    Ok(())
}
