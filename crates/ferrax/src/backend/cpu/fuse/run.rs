//! Running a fused group chunk by chunk: its machine code where it has some (`codegen`),
//! else the interpreter, which runs each step over the chunk with the plan kernels.

use std::mem::MaybeUninit;

use super::group::{Group, GroupOp, GroupStep, Reduction, Src};
use super::CHUNK;
use crate::backend::cpu::buffers;
use crate::backend::cpu::codegen::{self, Compiled, Stream};
use crate::backend::cpu::dispatch::Float;
use crate::backend::{max_nan, min_nan};
use crate::ir::{Array, Aval, DType, Error, Result};

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
    /// Runs the group on its inputs, through `code` where it has some; returns one array per
    /// kept step, in step order (but a product's matrix), then the product, or one per
    /// reduction.
    pub fn run(&self, inputs: &[Array], code: Option<&Compiled>) -> Result<Vec<Array>> {
        match self.dtype {
            DType::F32 => self.run_typed::<f32>(inputs, code),
            DType::F64 => self.run_typed::<f64>(inputs, code),
            d => Err(Error::internal(format!("a fused group of dtype {d}"))),
        }
    }

    fn run_typed<T: Float>(&self, inputs: &[Array], code: Option<&Compiled>) -> Result<Vec<Array>> {
        use rayon::prelude::*;
        let ins: Vec<&[T]> = inputs
            .iter()
            .map(|a| {
                T::slice(a.data())
                    .ok_or_else(|| Error::internal("a fused group's input has another dtype"))
            })
            .collect::<Result<_>>()?;
        let code = code.filter(|_| codegen::enabled());
        if let Some(code) = code {
            if let Some(done) = self.run_small(code, &ins) {
                return done;
            }
        }
        let chunk = self.chunk_len();
        // the matrix of a product taken in is kept (its code writes it) but only into a
        // chunk of scratch, the product's rows computed from there
        let matrix = self.rows.map(|r| r.value);
        let kept: Vec<usize> = (0..self.steps.len()).filter(|&k| self.keep[k]).collect();
        let written: Vec<usize> = kept
            .iter()
            .copied()
            .filter(|&k| Some(k) != matrix)
            .collect();
        // Every element of an output is written below, so none is zeroed first: a recycled
        // buffer (initialized, `true`) is written straight by the kernels; a fresh one is
        // filled by a copy from scratch, chunk by chunk.
        let mut outs: Vec<(Vec<T>, bool)> = written
            .iter()
            .map(|&k| {
                if let Some(v) = buffers::recycled_initialized::<T>(self.size) {
                    return Ok((v, true));
                }
                self.fresh::<T>(self.size, &self.shapes[k])
                    .map(|v| (v, false))
            })
            .collect::<Result<_>>()?;
        let n_chunks = self.size.div_ceil(chunk);
        // each chunk's part of each reduction, (extremum, sum), a row of `width` per chunk
        let width = self.reduce.len().max(1);
        let mut partials: Vec<(T, f64)> = vec![(T::default(), 0.0); n_chunks * width];
        // Split every output into chunk slices so chunks can be written in parallel.
        let mut per_chunk: Vec<Vec<Target<'_, T>>> = (0..n_chunks).map(|_| Vec::new()).collect();
        for (o, initialized) in outs.iter_mut() {
            if *initialized {
                for (c, part) in o.chunks_mut(chunk).enumerate() {
                    per_chunk[c].push(Target::Direct(part));
                }
            } else {
                let spare = &mut o.spare_capacity_mut()[..self.size];
                for (c, part) in spare.chunks_mut(chunk).enumerate() {
                    per_chunk[c].push(Target::Copy(part));
                }
            }
        }
        // the product's rows, chunk by chunk (whole rows per chunk), and the matrix's place
        // among the targets
        let mut product = match self.rows {
            Some(r) => {
                let m = self.size / r.cols;
                let mut v = self.fresh::<T>(m, &self.shapes[self.steps.len()])?;
                v.resize(m, T::default());
                v
            }
            None => vec![],
        };
        let mut product_parts: Vec<&mut [T]> = match self.rows {
            Some(r) => product.chunks_mut(chunk / r.cols).collect(),
            None => vec![],
        };
        if let Some(at) = matrix.and_then(|m| kept.iter().position(|&k| k == m)) {
            for targets in per_chunk.iter_mut() {
                targets.insert(at, Target::Scratch);
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
        // a chunk's index, its slice of every kept output, its part of the reduction and its
        // rows of the product
        type Chunk<'a, T> = (
            usize,
            ((Vec<Target<'a, T>>, &'a mut [(T, f64)]), &'a mut [T]),
        );
        let shared = Shared {
            code,
            ins: &ins,
            scalars,
            needed,
            scratch_len: chunk.min(self.size),
        };
        // scratch buffers are made once per worker, not per chunk, and only when used:
        // generated code needs none unless it streams generated broadcasts (or a product's
        // matrix)
        type Worker<T> = (Option<Scratch<T>>, Vec<T>);
        let work = |(bufs, matrix_chunk): &mut Worker<T>,
                    (c, ((targets, partial), rows)): Chunk<'_, T>| {
            let start = c * chunk;
            let len = chunk.min(self.size - start);
            if self.rows.is_some() && matrix_chunk.len() < len {
                matrix_chunk.resize(len, T::default());
            }
            // the matrix's chunk goes to this worker's scratch
            let held = len.min(matrix_chunk.len());
            let mut scratch_target = Some(&mut matrix_chunk[..held]);
            let mut targets: Vec<Target<'_, T>> = targets
                .into_iter()
                .map(|t| match t {
                    Target::Scratch => Target::Direct(scratch_target.take().unwrap_or_default()),
                    t => t,
                })
                .collect();
            self.run_chunk(&shared, (start, len), &mut targets, bufs, partial);
            drop(targets);
            if let Some(r) = self.rows {
                T::matvec_rows(&matrix_chunk[..len], r.cols, &ins[r.vector][..r.cols], rows);
            }
        };
        let chunks: Vec<Chunk<'_, T>> = per_chunk
            .into_iter()
            .zip(partials.chunks_mut(width))
            .zip(
                product_parts
                    .drain(..)
                    .chain(std::iter::repeat_with(Default::default)),
            )
            .enumerate()
            .collect();
        if n_chunks > 8 && crate::backend::cpu::math::threads() > 1 {
            chunks.into_par_iter().for_each_init(Worker::default, work);
        } else {
            let mut worker = Worker::default();
            chunks.into_iter().for_each(|item| work(&mut worker, item));
        }
        drop(product_parts);
        let mut results: Vec<Array> = written
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
        if self.rows.is_some() {
            let shape = &self.shapes[self.steps.len()];
            results.push(Array::from_data(T::wrap(product), shape)?);
        }
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

    /// Computes the chunk `start..start + len` of the group into its targets (and its parts
    /// of the reductions): by the code where it can, else by the interpreter over this
    /// worker's scratch (`bufs`, made on first use).
    fn run_chunk<T: Float>(
        &self,
        shared: &Shared<'_, T>,
        (start, len): (usize, usize),
        targets: &mut Vec<Target<'_, T>>,
        bufs: &mut Option<Scratch<T>>,
        partial: &mut [(T, f64)],
    ) {
        let Shared {
            code,
            ins,
            ref scalars,
            ref needed,
            scratch_len,
        } = *shared;
        let new_scratch = || -> Scratch<T> {
            (
                vec![vec![T::default(); scratch_len]; self.steps.len()],
                [
                    vec![T::default(); scratch_len],
                    vec![T::default(); scratch_len],
                ],
            )
        };
        if let Some(code) = code {
            let tiles = match code.streams.iter().any(|s| matches!(s, Stream::Tile(_))) {
                true => &mut bufs.get_or_insert_with(new_scratch).0[..],
                false => &mut [][..],
            };
            if self.run_code(code, ins, (start, len), targets, tiles, &mut *partial) {
                return;
            }
        }
        let (scratch, tiles) = bufs.get_or_insert_with(new_scratch);
        // where each step's chunk lives: its output's chunk when kept in a recycled
        // buffer, else scratch (copied into a fresh output's chunk at the end)
        let mut targets = targets.drain(..);
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
                    Some(Target::Scratch) | None => own,
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
                fill_tile(s, ins, start, len, &mut tiles[slot]);
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
            unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), t.as_mut_ptr().cast::<T>(), len) };
        }
    }
}

impl Group {
    /// A fresh buffer with room for `n` elements of a value of `shape`, or the error that
    /// says it does not fit in memory.
    fn fresh<T: Float>(&self, n: usize, shape: &[usize]) -> Result<Vec<T>> {
        buffers::with_capacity::<T>(n).map_err(|_| {
            Error::exhausted(
                "fused elementwise group",
                format!(
                    "cannot allocate {} bytes for a value of {}",
                    n.saturating_mul(std::mem::size_of::<T>()),
                    Aval::new(shape.to_vec(), self.dtype)
                ),
            )
        })
    }

    /// Elements per chunk: [`CHUNK`], or for a group with a product whole rows of its
    /// matrix, at least a chunk's worth and a multiple of sixteen elements (so the code, of
    /// up to sixteen lanes, runs every chunk but a short last one): at most sixteen rows of
    /// up to [`CHUNK`] elements.
    fn chunk_len(&self) -> usize {
        let Some(r) = self.rows else { return CHUNK };
        let cols = r.cols.max(1);
        let step = 16 / gcd(cols, 16);
        let rows = CHUNK.div_ceil(cols).next_multiple_of(step);
        rows * cols
    }

    /// A group of one chunk that is a whole number of vectors and streams no generated
    /// broadcast, run by its code with no chunk bookkeeping; `None` when it is not such a
    /// group (or it reduces, or takes a product).
    fn run_small<T: Float>(&self, code: &Compiled, ins: &[&[T]]) -> Option<Result<Vec<Array>>> {
        let n = self.size;
        // a reduction may need the interpreter's fold, and a product needs its rows: both go
        // the chunked way
        if !code.runs_whole(n, CHUNK) || !self.reduce.is_empty() || self.rows.is_some() {
            return None;
        }
        let mut pointers = Vec::with_capacity(code.streams.len() + code.scalars.len());
        for s in &code.streams {
            let Stream::Input(i) = s else { return None };
            match ins.get(*i) {
                Some(x) if x.len() >= n => pointers.push(x.as_ptr().cast::<u8>()),
                _ => return None,
            }
        }
        for &i in &code.scalars {
            match ins.get(i) {
                Some(x) if !x.is_empty() => pointers.push(x.as_ptr().cast::<u8>()),
                _ => return None,
            }
        }
        let kept = (0..self.steps.len()).filter(|&k| self.keep[k]);
        let mut outs: Vec<(usize, Vec<T>)> = vec![];
        for k in kept {
            match buffers::with_capacity::<T>(n) {
                Ok(v) => outs.push((k, v)),
                Err(_) => return None,
            }
        }
        let outputs: Vec<*mut u8> = outs
            .iter_mut()
            .map(|(_, v)| v.spare_capacity_mut().as_mut_ptr().cast::<u8>())
            .collect();
        // SAFETY: one pointer per stream onto `n` elements and one per scalar onto its
        // element (checked above), one per kept value onto `n` elements of spare capacity;
        // no reduction
        unsafe { code.call(&pointers, &outputs, n, &mut [], &mut []) };
        let mut results = Vec::with_capacity(outs.len());
        for (k, mut v) in outs {
            // SAFETY: the code wrote all `n` elements
            unsafe { v.set_len(n) };
            results.push(Array::from_data(T::wrap(v), &self.shapes[k]));
        }
        Some(results.into_iter().collect())
    }

    /// Runs the group's machine code over the chunk `start..start + len`, writing the kept
    /// values into `targets` and the reductions' parts into `partial`; `false` (nothing to
    /// use) when the interpreter must run the chunk: a length that is not a whole number of
    /// vectors, or an extremum that needs the serial fold (a NaN, or a zero).
    fn run_code<T: Float>(
        &self,
        code: &Compiled,
        ins: &[&[T]],
        (start, len): (usize, usize),
        targets: &mut [Target<'_, T>],
        tiles: &mut [Vec<T>],
        partial: &mut [(T, f64)],
    ) -> bool {
        if len == 0 || len % code.lanes != 0 {
            return false;
        }
        let mut pointers = Vec::with_capacity(code.streams.len() + code.scalars.len());
        let mut tiles = tiles.iter_mut();
        for s in &code.streams {
            match s {
                Stream::Input(i) => match ins.get(*i) {
                    Some(x) if x.len() >= start + len => pointers.push(x[start..].as_ptr()),
                    _ => return false,
                },
                Stream::Tile(src) => match tiles.next() {
                    // generated for the chunk, as the interpreter does
                    Some(t) if t.len() >= len => {
                        fill_tile(src, ins, start, len, t);
                        pointers.push(t.as_ptr());
                    }
                    _ => return false,
                },
            }
        }
        for &i in &code.scalars {
            match ins.get(i) {
                Some(x) if !x.is_empty() => pointers.push(x.as_ptr()),
                _ => return false,
            }
        }
        let pointers: Vec<*const u8> = pointers.into_iter().map(|p| p.cast::<u8>()).collect();
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
        // SAFETY: one pointer per stream onto `len` elements (checked above: an input from
        // `start`, a tile filled for the chunk), one per scalar onto its element, one per
        // kept value onto its chunk of `len`; the buffers sized as `call` asks; the code
        // reads and writes nothing else
        unsafe { code.call(&pointers, &outputs, len, &mut acc, &mut nan) };
        for (r, (&(kind, _), part)) in self.reduce.iter().zip(partial.iter_mut()).enumerate() {
            match finish(kind, &acc[64 * r..64 * (r + 1)], nan[r]) {
                Some(p) => *part = p,
                None => return false,
            }
        }
        true
    }
}

/// A reduction's part from the code's accumulator lanes (`acc`, 64 bytes) and NaN flag:
/// `(extremum, sum)` as the interpreter makes it for a chunk, or `None` when the chunk's
/// extremum needs the interpreter's serial fold (a NaN, or a zero).
fn finish<T: Float>(kind: Reduction, acc: &[u8], nan: u32) -> Option<(T, f64)> {
    let lanes: Vec<T> = acc
        .chunks_exact(std::mem::size_of::<T>())
        // SAFETY: bytes the code stored from a vector of `T`
        .map(|b| unsafe { std::ptr::read_unaligned(b.as_ptr().cast::<T>()) })
        .collect();
    if kind == Reduction::Sum {
        return Some((T::default(), T::lanes_sum(&lanes)));
    }
    let max = kind == Reduction::Max;
    let m = lanes[1..].iter().fold(
        lanes[0],
        |m, &v| {
            if max {
                max_nan(m, v)
            } else {
                min_nan(m, v)
            }
        },
    );
    (nan == 0 && m != T::default()).then_some((m, 0.0))
}

/// A worker's scratch for the interpreter: a chunk of every step's values, and two tiles of
/// generated broadcast operands.
type Scratch<T> = (Vec<Vec<T>>, [Vec<T>; 2]);

/// What the chunks of one run of a group share.
struct Shared<'a, T> {
    code: Option<&'a Compiled>,
    ins: &'a [&'a [T]],
    /// For each step, the operand it takes as a broadcast scalar (`scalar_operand`).
    scalars: Vec<Option<(usize, usize)>>,
    /// Which steps must run (`needed_steps`).
    needed: Vec<bool>,
    /// Elements of each scratch buffer.
    scratch_len: usize,
}

/// Where a chunk of a kept value goes: straight into a recycled, initialized buffer, or
/// into a fresh one by a copy from scratch (zeroing it first would be a pass of its own).
enum Target<'a, T> {
    Direct(&'a mut [T]),
    Copy(&'a mut [MaybeUninit<T>]),
    /// The chunk of a product's matrix: the worker's scratch (a `Direct` once it runs).
    Scratch,
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

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}
