//! Elementwise fusion: grouping runs of plan steps, and running a group chunk by chunk.
//!
//! A run of consecutive elementwise steps over arrays of the same size becomes one *group*,
//! executed chunk by chunk (2048 elements at a time, chunks spread over threads): every step
//! of the group computes its chunk into a small scratch buffer that stays in cache, and only
//! the values needed after the group are written to memory. Broadcasts of a scalar, or of
//! an array along leading dimensions (a bias), are generated per chunk instead of being
//! materialized. A group may end with sums, maxima or minima of every element of its
//! values: each chunk is reduced while it is in cache and the chunks' results are combined
//! in order, so a value only reduced is never written out (a convergence test's
//! `max(abs(x*x - a))`, a loss's sum of squares). Kept values are computed straight into
//! their output buffers. What a group computes is exactly what its steps compute one by one
//! (the same kernels from `dispatch`, the same operation order per element, sums in the
//! same blocks as `float::Float::sum`).

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::sync::Arc;

use crate::backend::cpu::buffers;
use crate::backend::cpu::codegen::{self, Compiled};
use crate::backend::cpu::dispatch::{Binary, Float, Kernel};
use crate::backend::cpu::float::SUM_BLOCK;

use crate::backend::cpu::math::Unary;
use crate::backend::cpu::step::{Step, StepArg};
use crate::backend::{max_nan, min_nan};
use crate::ir::{Array, Aval, DType, Error, Primitive, Result};

/// Elements per chunk, and the least size of a value worth fusing: a compiled sum's block,
/// so a fused sum adds the same partial sums in the same order as an unfused one.
const CHUNK: usize = SUM_BLOCK;

/// What one step of a group computes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum GroupOp {
    Unary(Unary),
    Binary(Binary),
    /// A broadcast whose operand the group generates per chunk (`Src::Tiled`/`Repeated`).
    Broadcast,
}

/// Where a group step reads an operand from.
#[derive(Clone, Debug)]
pub(crate) enum Src {
    /// An array given to the group (index into its inputs), the group's full size.
    Input(usize),
    /// An earlier step of the same group.
    Step(usize),
    /// An input repeated along leading dimensions: element i is `input[i % period]`.
    Tiled(usize, usize),
    /// An input whose elements are each repeated along trailing dimensions: element i is
    /// `input[i / run]`.
    Repeated(usize, usize),
}

#[derive(Clone, Debug)]
pub(crate) struct GroupStep {
    pub op: GroupOp,
    pub srcs: Vec<Src>,
}

/// A fused run of elementwise steps.
#[derive(Clone, Debug)]
pub(crate) struct Group {
    pub steps: Vec<GroupStep>,
    /// For every step: whether its value is needed after the group (then written out).
    pub keep: Vec<bool>,
    pub size: usize,
    pub dtype: DType,
    /// The shape of every step's output.
    pub shapes: Vec<Vec<usize>>,
    /// Reductions of every element of a step's values (`.1`): the group's last outputs.
    pub reduce: Vec<(Reduction, usize)>,
    /// The group's machine code, when it has some (`codegen`).
    pub code: Option<Arc<Compiled>>,
}

/// A reduction a group can end with.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Reduction {
    Sum,
    Max,
    Min,
}

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
    /// Slots of the kept steps' values, in step order, then the reduction's.
    pub outs: Vec<usize>,
    /// Primitives of the fused steps (for evaluation counts and profiles).
    pub prims: Vec<Primitive>,
    /// Slots whose last use is inside the group.
    pub last: Vec<usize>,
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
    let mut group = Group {
        steps,
        keep,
        size: first.size(),
        dtype: first.dtype,
        shapes,
        reduce,
        code: None,
    };
    group.code = codegen::compile(&group, inputs.len());
    FusedItem {
        group,
        inputs,
        outs,
        prims,
        last,
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

/// For a binary step with exactly one operand a broadcast scalar (an input tiled with
/// period 1, or an earlier step broadcasting one): that operand's position and the input
/// it reads.
fn scalar_operand(steps: &[GroupStep], st: &GroupStep) -> Option<(usize, usize)> {
    if !matches!(st.op, GroupOp::Binary(_)) {
        return None;
    }
    let scalar = |s: &Src| match s {
        Src::Tiled(i, 1) => Some(*i),
        Src::Step(j) => match (&steps[*j].op, steps[*j].srcs.first()) {
            (GroupOp::Broadcast, Some(Src::Tiled(i, 1))) => Some(*i),
            _ => None,
        },
        _ => None,
    };
    match (scalar(&st.srcs[0]), scalar(&st.srcs[1])) {
        (Some(i), None) => Some((0, i)),
        (None, Some(i)) => Some((1, i)),
        _ => None,
    }
}

/// Which steps must run: those kept, and those a needed step reads other than as a scalar
/// it takes from a register (a broadcast only read that way is never materialized).
fn needed_steps(
    steps: &[GroupStep],
    keep: &[bool],
    scalars: &[Option<(usize, usize)>],
) -> Vec<bool> {
    let mut needed = keep.to_vec();
    for k in (0..steps.len()).rev() {
        if !needed[k] {
            continue;
        }
        for (slot, s) in steps[k].srcs.iter().enumerate() {
            if let Src::Step(j) = s {
                if scalars[k].is_none_or(|(at, _)| at != slot) {
                    needed[*j] = true;
                }
            }
        }
    }
    needed
}

impl Group {
    /// Runs the group on its inputs; returns one array per kept step, in step order.
    pub fn run(&self, inputs: &[Array]) -> Result<Vec<Array>> {
        match self.dtype {
            DType::F32 => self.run_typed::<f32>(inputs),
            DType::F64 => self.run_typed::<f64>(inputs),
            d => Err(Error::internal(format!("a fused group of dtype {d}"))),
        }
    }

    fn run_typed<T: Float>(&self, inputs: &[Array]) -> Result<Vec<Array>> {
        use rayon::prelude::*;
        let ins: Vec<&[T]> = inputs
            .iter()
            .map(|a| {
                T::slice(a.data())
                    .ok_or_else(|| Error::internal("a fused group's input has another dtype"))
            })
            .collect::<Result<_>>()?;
        let kept: Vec<usize> = (0..self.steps.len()).filter(|&k| self.keep[k]).collect();
        // Every element of an output is written below, so none is zeroed first: a recycled
        // buffer (initialized, `true`) is written straight by the kernels; a fresh one is
        // filled by a copy from scratch, chunk by chunk.
        let mut outs: Vec<(Vec<T>, bool)> = kept
            .iter()
            .map(|&k| {
                if let Some(v) = buffers::recycled_initialized::<T>(self.size) {
                    return Ok((v, true));
                }
                let fresh = buffers::with_capacity::<T>(self.size).map_err(|_| {
                    Error::exhausted(
                        "fused elementwise group",
                        format!(
                            "cannot allocate {} bytes for a value of {}",
                            self.size.saturating_mul(std::mem::size_of::<T>()),
                            Aval::new(self.shapes[k].clone(), self.dtype)
                        ),
                    )
                });
                fresh.map(|v| (v, false))
            })
            .collect::<Result<_>>()?;
        let n_chunks = self.size.div_ceil(CHUNK);
        // each chunk's part of each reduction, (extremum, sum), a row of `width` per chunk
        let width = self.reduce.len().max(1);
        let mut partials: Vec<(T, f64)> = vec![(T::default(), 0.0); n_chunks * width];
        // Split every output into chunk slices so chunks can be written in parallel.
        let mut per_chunk: Vec<Vec<Target<'_, T>>> = (0..n_chunks).map(|_| Vec::new()).collect();
        for (o, initialized) in outs.iter_mut() {
            if *initialized {
                for (c, part) in o.chunks_mut(CHUNK).enumerate() {
                    per_chunk[c].push(Target::Direct(part));
                }
            } else {
                let spare = &mut o.spare_capacity_mut()[..self.size];
                for (c, part) in spare.chunks_mut(CHUNK).enumerate() {
                    per_chunk[c].push(Target::Copy(part));
                }
            }
        }
        let scalars: Vec<Option<(usize, usize)>> = self
            .steps
            .iter()
            .map(|st| scalar_operand(&self.steps, st))
            .collect();
        let mut needed = needed_steps(&self.steps, &self.keep, &scalars);
        if !self.reduce.is_empty() {
            let mut reduced = self.keep.clone();
            for &(_, k) in &self.reduce {
                reduced[k] = true;
            }
            needed = needed_steps(&self.steps, &reduced, &scalars);
        }
        type Scratch<T> = (Vec<Vec<T>>, [Vec<T>; 2]);
        // a chunk's index, its slice of every kept output, and its part of the reduction
        type Chunk<'a, T> = (usize, (Vec<Target<'a, T>>, &'a mut [(T, f64)]));
        let new_scratch = || -> Scratch<T> {
            (
                vec![vec![T::default(); CHUNK]; self.steps.len()],
                [vec![T::default(); CHUNK], vec![T::default(); CHUNK]],
            )
        };
        // scratch buffers are made once per worker, not per chunk
        let code = self.code.as_deref().filter(|_| codegen::enabled());
        let work = |bufs: &mut Scratch<T>, (c, (mut targets, partial)): Chunk<'_, T>| {
            let start = c * CHUNK;
            let len = CHUNK.min(self.size - start);
            if let Some(code) = code {
                if self.run_code(code, &ins, start, len, &mut targets, &mut *partial) {
                    return;
                }
            }
            let (scratch, tiles) = bufs;
            // where each step's chunk lives: its output's chunk when kept in a recycled
            // buffer, else scratch (copied into a fresh output's chunk at the end)
            let mut targets = targets.into_iter();
            let mut copies = vec![];
            let mut values: Vec<&mut [T]> = scratch
                .iter_mut()
                .zip(&self.keep)
                .enumerate()
                .map(|(k, (s, &kept))| {
                    let own = &mut s[..len];
                    if !kept {
                        return own;
                    }
                    match targets.next() {
                        Some(Target::Direct(t)) => t,
                        Some(Target::Copy(t)) => {
                            copies.push((k, t));
                            own
                        }
                        None => own,
                    }
                })
                .collect();
            for (k, st) in self.steps.iter().enumerate() {
                if !needed[k] {
                    continue;
                }
                // a binary step with one broadcast scalar reads it from a register
                let scalar = scalars[k];
                for (slot, s) in st.srcs.iter().enumerate() {
                    if scalar.is_some_and(|(at, _)| at == slot) {
                        continue;
                    }
                    fill_tile(s, &ins, start, len, &mut tiles[slot]);
                }
                let (done, rest) = values.split_at_mut(k);
                let out = &mut rest[0][..len];
                let operand = |slot: usize| -> &[T] {
                    match &st.srcs[slot] {
                        Src::Input(i) => &ins[*i][start..start + len],
                        Src::Step(j) => &done[*j][..len],
                        Src::Tiled(..) | Src::Repeated(..) => &tiles[slot][..len],
                    }
                };
                match (st.op, scalar) {
                    (GroupOp::Binary(b), Some((at, i))) => {
                        b.zip_scalar(operand(1 - at), ins[i][0], at == 0, out)
                    }
                    (GroupOp::Broadcast, _) => out.copy_from_slice(operand(0)),
                    (GroupOp::Unary(u), _) => T::unary(u)(operand(0), out),
                    (GroupOp::Binary(b), None) => b.zip(operand(0), operand(1), out),
                }
            }
            for (&(kind, k), part) in self.reduce.iter().zip(partial.iter_mut()) {
                let v = &values[k][..len];
                *part = match kind {
                    Reduction::Sum => (T::default(), T::block_sum(v)),
                    Reduction::Max => (T::extremum(v, true), 0.0),
                    Reduction::Min => (T::extremum(v, false), 0.0),
                };
            }
            for (k, t) in copies {
                let src = &values[k][..len];
                assert_eq!(t.len(), len, "a chunk of an output is the chunk's length");
                // SAFETY: `t` and `src` are distinct buffers of `len` elements; a plain copy
                unsafe {
                    std::ptr::copy_nonoverlapping(src.as_ptr(), t.as_mut_ptr().cast::<T>(), len)
                };
            }
        };
        let chunks: Vec<Chunk<'_, T>> = per_chunk
            .into_iter()
            .zip(partials.chunks_mut(width))
            .enumerate()
            .collect();
        if n_chunks > 8 && crate::backend::cpu::math::threads() > 1 {
            chunks.into_par_iter().for_each_init(new_scratch, work);
        } else {
            let mut bufs = new_scratch();
            chunks.into_iter().for_each(|item| work(&mut bufs, item));
        }
        let mut results: Vec<Array> = kept
            .iter()
            .zip(outs)
            .map(|(&k, (mut v, initialized))| {
                if !initialized {
                    // SAFETY: the chunks cover 0..size and `work` copied every element of
                    // each (a panic there unwinds past this point)
                    unsafe { v.set_len(self.size) };
                }
                Array::from_data(T::wrap(v), &self.shapes[k])
            })
            .collect::<Result<_>>()?;
        for (r, &(kind, _)) in self.reduce.iter().enumerate() {
            // the chunks' results combined in chunk order: the unfused reduction's bits
            let parts = || partials.iter().skip(r).step_by(width);
            let first = partials[r].0;
            let value = match kind {
                Reduction::Sum => T::from_sum(parts().fold(0.0, |t, p| t + p.1)),
                Reduction::Max => parts().skip(1).fold(first, |m, p| max_nan(m, p.0)),
                Reduction::Min => parts().skip(1).fold(first, |m, p| min_nan(m, p.0)),
            };
            let shape = &self.shapes[self.steps.len() + r];
            results.push(Array::from_data(T::wrap(vec![value]), shape)?);
        }
        Ok(results)
    }
}

impl Group {
    /// Runs the group's machine code over the chunk `start..start + len`, writing the kept
    /// values into `targets` and the reductions' parts into `partial`; `false` (nothing to
    /// use) when the interpreter must run the chunk: a length that is not a whole number of
    /// vectors, or an extremum that needs the serial fold (a NaN, or a zero).
    fn run_code<T: Float>(
        &self,
        code: &Compiled,
        ins: &[&[T]],
        start: usize,
        len: usize,
        targets: &mut [Target<'_, T>],
        partial: &mut [(T, f64)],
    ) -> bool {
        if len == 0 || len % code.lanes != 0 || code.scalar_input.len() != ins.len() {
            return false;
        }
        let mut inputs = Vec::with_capacity(ins.len());
        for (x, &scalar) in ins.iter().zip(&code.scalar_input) {
            let from = if scalar { 0 } else { start };
            let need = if scalar { 1 } else { len };
            if x.len() < from + need {
                return false;
            }
            inputs.push(x[from..].as_ptr().cast::<u8>());
        }
        let outputs: Vec<*mut u8> = targets
            .iter_mut()
            .map(|t| match t {
                Target::Direct(s) if s.len() == len => s.as_mut_ptr().cast::<u8>(),
                Target::Copy(s) if s.len() == len => s.as_mut_ptr().cast::<u8>(),
                _ => std::ptr::null_mut(),
            })
            .collect();
        if outputs.iter().any(|p| p.is_null()) {
            return false;
        }
        let mut acc = vec![0u8; 64 * self.reduce.len()];
        let mut nan = vec![0u32; self.reduce.len()];
        // SAFETY: one pointer per input, `len` elements from `start` (checked above; one for
        // a scalar), one per kept value onto its chunk of `len`; the buffers sized as `call`
        // asks; the code reads and writes nothing else
        unsafe { code.call(&inputs, &outputs, len, &mut acc, &mut nan) };
        let size = std::mem::size_of::<T>();
        for (r, (&(kind, _), part)) in self.reduce.iter().zip(partial.iter_mut()).enumerate() {
            let lanes: Vec<T> = acc[64 * r..64 * (r + 1)]
                .chunks_exact(size)
                // SAFETY: `size` bytes the code stored from a vector of `T`
                .map(|b| unsafe { std::ptr::read_unaligned(b.as_ptr().cast::<T>()) })
                .collect();
            *part = match kind {
                Reduction::Sum => (T::default(), T::lanes_sum(&lanes)),
                Reduction::Max | Reduction::Min => {
                    let max = kind == Reduction::Max;
                    let init = T::extremum(&lanes[..1], max);
                    let m = lanes[1..].iter().fold(init, |m, &v| {
                        if max {
                            max_nan(m, v)
                        } else {
                            min_nan(m, v)
                        }
                    });
                    if nan[r] != 0 || m == T::default() {
                        return false;
                    }
                    (m, 0.0)
                }
            };
        }
        true
    }
}

/// Where a chunk of a kept value goes: straight into a recycled, initialized buffer, or
/// into a fresh one by a copy from scratch (zeroing it first would be a pass of its own).
enum Target<'a, T> {
    Direct(&'a mut [T]),
    Copy(&'a mut [MaybeUninit<T>]),
}

/// Generates the chunk `start..start + len` of a broadcast operand `s` into `tile` (nothing
/// for an operand read in place).
fn fill_tile<T: Float>(s: &Src, ins: &[&[T]], start: usize, len: usize, tile: &mut [T]) {
    match s {
        Src::Repeated(i, run) => {
            // element i is input[i / run]: fill whole runs
            let src = ins[*i];
            let (mut j, mut off, mut filled) = (start / run, start % run, 0);
            while filled < len {
                let n = (run - off).min(len - filled);
                tile[filled..filled + n].fill(src[j]);
                filled += n;
                j += 1;
                off = 0;
            }
        }
        // a scalar is a fill; otherwise copy whole runs of the period (no division per
        // element)
        Src::Tiled(i, 1) => tile[..len].fill(ins[*i][0]),
        Src::Tiled(i, period) => {
            let src = ins[*i];
            let (mut pos, mut filled) = (start % period, 0);
            while filled < len {
                let run = (period - pos).min(len - filled);
                tile[filled..filled + run].copy_from_slice(&src[pos..pos + run]);
                filled += run;
                pos = 0;
            }
        }
        Src::Input(_) | Src::Step(_) => {}
    }
}
