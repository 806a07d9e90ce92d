//! Elementwise fusion: grouping runs of plan steps, and running a group chunk by chunk.
//!
//! A run of consecutive elementwise steps over arrays of the same size becomes one *group*,
//! executed chunk by chunk (2048 elements at a time, chunks spread over threads): every
//! step of the group computes its chunk into a small scratch buffer that stays in cache,
//! and only the values needed after the group are written to memory. Broadcasts of a
//! scalar, or of an array along leading dimensions (a bias), are generated per chunk
//! instead of being materialized. A group may end with sums, maxima or minima of every
//! element of its values: each chunk is reduced while it is in cache and the chunks'
//! results are combined in order, so a value only reduced is never written out (a
//! convergence test's `max(abs(x*x - a))`, a loss's sum of squares). Or a group may end
//! with a matrix-vector product of one of its 2-d values ([`with_row_product`]): the chunks
//! are then whole rows, each multiplied by the vector from the worker's scratch, and the
//! value is never written out. Kept values are computed straight into their output buffers.
//! What a group computes is exactly what its steps compute one by one (the same kernels
//! from `dispatch`, the same operation order per element, sums in the same blocks as
//! `float::Float::sum`, products in `matvec`'s order per row).

pub(crate) mod group;
mod run;

use std::collections::HashMap;
use std::sync::Arc;

use crate::backend::cpu::codegen::{self, Compiled};
use crate::backend::cpu::dispatch::Kernel;
use crate::backend::cpu::float::SUM_BLOCK;
use crate::backend::cpu::step::{Step, StepArg};
use crate::backend::reference::matvec::applies;
use crate::ir::{Aval, Primitive};

pub(crate) use group::{Group, GroupOp, GroupStep, Reduction, RowProduct, Src};

/// Elements per chunk, and the least size of a value worth fusing: a compiled sum's block,
/// so a fused sum adds the same partial sums in the same order as an unfused one.
const CHUNK: usize = SUM_BLOCK;

/// The reduction `r` computes, and the step of `run` whose values it reduces, when it is one
/// a group of `run` can end with: a sum, maximum or minimum over every axis of a value one
/// of `run`'s steps makes.
pub(crate) fn reduction_of(
    r: &Step,
    run: &[Step],
    aval_of: &impl Fn(&StepArg) -> Aval,
) -> Option<(Reduction, usize)> {
    let (kind, axes) = match &r.prim {
        Primitive::ReduceSum { axes } => (Reduction::Sum, axes),
        Primitive::ReduceMax { axes } => (Reduction::Max, axes),
        Primitive::ReduceMin { axes } => (Reduction::Min, axes),
        _ => return None,
    };
    let [arg @ StepArg::Slot(slot)] = r.args.as_slice() else {
        return None;
    };
    let x = aval_of(arg);
    let operand = run.iter().position(|s| s.out == *slot)?;
    (x.ndim() > 0 && axes.len() == x.ndim()).then_some((kind, operand))
}

/// A group in a plan: the group, where its inputs come from and where its kept values go.
#[derive(Clone, Debug)]
pub(crate) struct FusedItem {
    pub group: Group,
    pub inputs: Vec<StepArg>,
    /// Slots of the kept steps' values, in step order (but a product's matrix), then the
    /// product's or the reductions'.
    pub outs: Vec<usize>,
    /// Primitives of the fused steps (for evaluation counts and profiles).
    pub prims: Vec<Primitive>,
    /// Slots whose last use is inside the group.
    pub last: Vec<usize>,
    /// The group's machine code, when it has some (`codegen`).
    pub code: Option<Arc<Compiled>>,
}

/// `f` with the product `s` taken in, when `s` is a matrix-vector product whose matrix is a
/// value of `f`'s group that nothing after `s` reads (so it need not be written out): a
/// 2-d value of at most one chunk per row times a vector (`[k]` or `[k, 1]`) that the group
/// does not make, on the `matvec` route (the unfused product's, so the bits are the same).
/// Groups that reduce keep their chunks of `CHUNK` elements and take no product.
pub(crate) fn with_row_product(
    f: &FusedItem,
    s: &Step,
    aval_of: &impl Fn(&StepArg) -> Aval,
) -> Option<FusedItem> {
    let Primitive::DotGeneral {
        lhs_contracting,
        rhs_contracting,
        lhs_batch,
        rhs_batch,
    } = &s.prim
    else {
        return None;
    };
    let plain = lhs_contracting[..] == [1]
        && rhs_contracting[..] == [0]
        && lhs_batch.is_empty()
        && rhs_batch.is_empty();
    if !plain || s.kernel != Some(Kernel::Matmul) || !f.group.reduce.is_empty() {
        return None;
    }
    if f.group.rows.is_some() || s.out_aval.dtype != f.group.dtype {
        return None;
    }
    let [StepArg::Slot(x), vector] = s.args.as_slice() else {
        return None;
    };
    // the matrix: a kept value of the group, last read here
    let at = f.outs.iter().position(|o| o == x)?;
    let value = (0..f.group.steps.len())
        .filter(|&k| f.group.keep[k])
        .nth(at)?;
    let [m, k] = f.group.shapes[value][..] else {
        return None;
    };
    let v = aval_of(vector);
    let is_vector = v.shape[..] == [k] || v.shape[..] == [k, 1];
    // (a group's values have m·k elements and the vector k, so with m ≥ 2 this is a guard)
    let made_here = matches!(vector, StepArg::Slot(y) if f.outs.contains(y));
    if !is_vector || made_here || !s.last.contains(x) || m < 2 || k > CHUNK || !applies(m, 1, k) {
        return None;
    }
    let mut g = f.clone();
    let same = |a: &StepArg| matches!((a, vector), (StepArg::Slot(p), StepArg::Slot(q)) if p == q);
    let vector_input = match g.inputs.iter().position(same) {
        Some(i) => i,
        None => {
            g.inputs.push(vector.clone());
            g.inputs.len() - 1
        }
    };
    g.group.rows = Some(RowProduct {
        value,
        cols: k,
        vector: vector_input,
    });
    g.group.shapes.push(s.out_aval.shape.clone());
    g.outs.remove(at);
    g.outs.push(s.out);
    g.prims.push(s.prim.clone());
    for &slot in &s.last {
        if slot != *x && !g.last.contains(&slot) {
            g.last.push(slot);
        }
    }
    Some(g)
}

/// Whether a step may join a group: an elementwise kernel whose operands have its output's
/// size, or a broadcast the group can generate, on at least one chunk's worth of elements.
fn fusible(s: &Step, aval_of: &impl Fn(&StepArg) -> Aval) -> bool {
    let n = s.out_aval.size();
    n >= CHUNK
        && match s.kernel {
            Some(Kernel::Unary(_) | Kernel::Binary(_)) => {
                s.args.iter().all(|a| aval_of(a).size() == n)
            }
            Some(Kernel::BroadcastTile | Kernel::BroadcastRepeat) => true,
            _ => false,
        }
}

/// The end of the run of fusible steps of one size and dtype that starts at `k` (`k` itself
/// when the step there is not fusible).
pub(crate) fn run_end(steps: &[Step], k: usize, aval_of: &impl Fn(&StepArg) -> Aval) -> usize {
    let first = &steps[k].out_aval;
    let mut end = k;
    while end < steps.len()
        && fusible(&steps[end], aval_of)
        && steps[end].out_aval.size() == first.size()
        && steps[end].out_aval.dtype == first.dtype
    {
        end += 1;
    }
    end
}

/// The fused item of a run of steps, with reductions of its values taken in (`reduce`, each
/// as [`reduction_of`] gives it); `read_after(slot)` says whether a step outside the group
/// (or the output) reads a value, which is then written out.
pub(crate) fn group(
    run: &[Step],
    reduce: &[((Reduction, usize), &Step)],
    read_after: impl Fn(usize) -> bool,
    aval_of: &impl Fn(&StepArg) -> Aval,
) -> FusedItem {
    let produced: HashMap<usize, usize> = run.iter().enumerate().map(|(i, s)| (s.out, i)).collect();
    let mut inputs: Vec<StepArg> = vec![];
    let steps = run
        .iter()
        .map(|s| GroupStep {
            op: match s.kernel {
                Some(Kernel::Unary(u)) => GroupOp::Unary(u),
                Some(Kernel::Binary(b)) => GroupOp::Binary(b),
                _ => GroupOp::Broadcast,
            },
            srcs: s
                .args
                .iter()
                .map(|a| source(s, a, &produced, &mut inputs, aval_of))
                .collect(),
        })
        .collect();
    let keep: Vec<bool> = run.iter().map(|s| read_after(s.out)).collect();
    let mut outs: Vec<usize> = run
        .iter()
        .zip(&keep)
        .filter(|(_, &kept)| kept)
        .map(|(s, _)| s.out)
        .collect();
    let mut prims: Vec<Primitive> = run.iter().map(|s| s.prim.clone()).collect();
    let mut shapes: Vec<Vec<usize>> = run.iter().map(|s| s.out_aval.shape.clone()).collect();
    let all = || run.iter().chain(reduce.iter().map(|(_, r)| *r));
    let reduce = reduce
        .iter()
        .map(|&(kind_and_operand, r)| {
            outs.push(r.out);
            prims.push(r.prim.clone());
            shapes.push(r.out_aval.shape.clone());
            kind_and_operand
        })
        .collect();
    let last = all()
        .flat_map(|s| s.last.iter().copied())
        .filter(|slot| !produced.contains_key(slot))
        .collect();
    let first = &run[0].out_aval;
    let group = Group {
        steps,
        keep,
        size: first.size(),
        dtype: first.dtype,
        shapes,
        reduce,
        rows: None,
    };
    let code = codegen::compile(&group);
    FusedItem {
        group,
        inputs,
        outs,
        prims,
        last,
        code,
    }
}

/// Where step `s` of a group reads its operand `a`: an earlier step of the group, or one of
/// the group's inputs (added once), generated per chunk when `s` is a broadcast.
fn source(
    s: &Step,
    a: &StepArg,
    produced: &HashMap<usize, usize>,
    inputs: &mut Vec<StepArg>,
    aval_of: &impl Fn(&StepArg) -> Aval,
) -> Src {
    if let StepArg::Slot(slot) = a {
        if let Some(&i) = produced.get(slot) {
            return Src::Step(i);
        }
    }
    let same_slot = |x: &StepArg| matches!((x, a), (StepArg::Slot(p), StepArg::Slot(q)) if p == q);
    let i = match inputs.iter().position(same_slot) {
        Some(i) => i,
        None => {
            inputs.push(a.clone());
            inputs.len() - 1
        }
    };
    let operand = aval_of(a).size();
    match s.kernel {
        Some(Kernel::BroadcastTile) => Src::Tiled(i, operand),
        Some(Kernel::BroadcastRepeat) => Src::Repeated(i, s.out_aval.size() / operand.max(1)),
        _ => Src::Input(i),
    }
}
