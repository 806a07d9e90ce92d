//! Which kernel runs a plan step: the one table of what the CPU backend runs itself.
//!
//! [`kernel`] decides, once per step when the plan is built, whether a primitive at these
//! avals has a fast CPU kernel: float elementwise functions and arithmetic, 1-d/2-d matrix
//! products, sums over leading axes or all axes, and broadcasts that tile or repeat their
//! operand. Everything else runs through the reference evaluator, except control flow, which
//! `plan` routes to `control` (nested plans of its sub-programs) before it asks here. The
//! same decision says what fusion may group (elementwise kernels and tiling broadcasts) and
//! what this module counts for `eval_counts` (the reference evaluator counts its own), so the
//! three can never disagree. The match is exhaustive: a new primitive gets an arm here too,
//! if only to say "reference".

use crate::backend::cpu::buffers;
pub(crate) use crate::backend::cpu::float::Float;
use crate::backend::cpu::math::{chunked, Unary};
use crate::backend::cpu::matmul::strided_matmul;
use crate::backend::cpu::spmd;
use crate::backend::{count, eval_primitive, max_nan, min_nan};
use crate::ir::{
    collectives, comparison, control_flow, indexing_ops, linalg_ops, rounding, same_shape, Array,
    Aval, DType, Data, Error, Primitive, Result,
};

/// Float arithmetic on two operands of one shape with a CPU kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Binary {
    Add,
    Sub,
    Mul,
    Div,
    Max,
    Min,
}

/// A fast CPU kernel for one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kernel {
    Unary(Unary),
    Binary(Binary),
    /// A product of 1-d/2-d operands with one contracted dimension, through `gemm`.
    Matmul,
    /// A sum over the leading axes (not all): rows added together.
    SumLeading,
    /// A sum of every element.
    SumAll,
    /// A broadcast whose operand fills the trailing dimensions: the operand repeated whole.
    BroadcastTile,
    /// A broadcast whose operand fills the leading dimensions: each element repeated.
    BroadcastRepeat,
    /// The transpose of a matrix (a 2-d `transpose` swapping its axes), tile by tile.
    Transpose2,
}

/// How a broadcast maps its operand onto the output: `Tile(period)` when the operand fills
/// the trailing dimensions (a scalar is a tile of period 1), `Repeat(run)` when it fills the
/// leading ones (each element repeated `run` times); `None` otherwise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum BroadcastKind {
    Tile(usize),
    Repeat(usize),
}

pub(crate) fn broadcast_kind(prim: &Primitive, operand: &Aval) -> Option<BroadcastKind> {
    let Primitive::BroadcastInDim {
        shape,
        broadcast_dimensions: bd,
    } = prim
    else {
        return None;
    };
    if operand.size() == 0 {
        // nothing to tile or repeat: the reference evaluator makes the empty result
        return None;
    }
    if operand.size() == 1 {
        return Some(BroadcastKind::Tile(1));
    }
    let out = Aval::new(shape.clone(), operand.dtype).size();
    // an operand dimension of size 1 is repeated whatever the output's dimension: without
    // them, `[n, 1] -> [n, k]` repeats each element and `[1, k] -> [n, k]` tiles the row
    let kept: Vec<(usize, usize)> = operand
        .shape
        .iter()
        .zip(bd)
        .filter(|(&size, _)| size != 1)
        .map(|(&size, &d)| (size, d))
        .collect();
    let r = kept.len();
    let fills = |first: usize| {
        kept.iter()
            .enumerate()
            .all(|(i, &(size, d))| d == first + i && shape.get(d) == Some(&size))
    };
    if r <= shape.len() && fills(shape.len() - r) {
        return Some(BroadcastKind::Tile(operand.size()));
    }
    if fills(0) {
        return Some(BroadcastKind::Repeat(out / operand.size()));
    }
    None
}

/// The CPU backend's kernel for `prim` at these avals, or `None` for the reference
/// evaluator. The one place that decides (see the module doc).
pub(crate) fn kernel(prim: &Primitive, out: &Aval, ins: &[Aval]) -> Option<Kernel> {
    use Primitive::*;
    if !out.dtype.is_float() {
        return None;
    }
    let unary = |u| Some(Kernel::Unary(u));
    let binary = |b| Some(Kernel::Binary(b));
    match prim {
        Neg => unary(Unary::Neg),
        Abs => unary(Unary::Abs),
        Sqrt => unary(Unary::Sqrt),
        Rsqrt => unary(Unary::Rsqrt),
        Exp => unary(Unary::Exp),
        Expm1 => unary(Unary::Expm1),
        Log => unary(Unary::Log),
        Tanh => unary(Unary::Tanh),
        Logistic => unary(Unary::Logistic),
        Sin => unary(Unary::Sin),
        Cos => unary(Unary::Cos),
        Add => binary(Binary::Add),
        Sub => binary(Binary::Sub),
        Mul => binary(Binary::Mul),
        Div => binary(Binary::Div),
        Max => binary(Binary::Max),
        Min => binary(Binary::Min),
        DotGeneral {
            lhs_contracting,
            rhs_contracting,
            lhs_batch,
            rhs_batch,
        } => {
            let matrix = |a: &Aval| (1..=2).contains(&a.ndim());
            let product = lhs_contracting.len() == 1
                && rhs_contracting.len() == 1
                && matrix(&ins[0])
                && matrix(&ins[1]);
            // the outer product of two vectors (a matrix product's cotangent)
            let outer = lhs_contracting.is_empty()
                && rhs_contracting.is_empty()
                && ins[0].ndim() == 1
                && ins[1].ndim() == 1;
            (lhs_batch.is_empty() && rhs_batch.is_empty() && (product || outer))
                .then_some(Kernel::Matmul)
        }
        ReduceSum { axes } => {
            let rank = ins[0].ndim();
            if !axes.is_empty() && axes.len() == rank {
                Some(Kernel::SumAll)
            } else if !axes.is_empty() && axes.iter().enumerate().all(|(i, &a)| i == a) {
                Some(Kernel::SumLeading)
            } else {
                None
            }
        }
        // a matrix's transpose (what the transpose rule of a product leaves where it cannot
        // be folded into another product); other permutations: the reference's index loop
        Transpose { permutation } => (permutation[..] == [1, 0]).then_some(Kernel::Transpose2),
        BroadcastInDim { .. } => match broadcast_kind(prim, &ins[0])? {
            BroadcastKind::Tile(_) => Some(Kernel::BroadcastTile),
            BroadcastKind::Repeat(_) => Some(Kernel::BroadcastRepeat),
        },
        Tan
        | Log1p
        | Erf
        | Asin
        | Acos
        | Atan
        | Asinh
        | Acosh
        | Atanh
        | Rem
        | Argmin { .. }
        | ReduceProd { .. }
        | Argsort { .. }
        | Sign
        | rounding!()
        | IntegerPow { .. }
        | Pow
        | Atan2
        | comparison!()
        | Select
        | ConvertElementType { .. }
        | ReduceMax { .. }
        | ReduceMin { .. }
        | Argmax { .. }
        | Reshape { .. }
        | Squeeze { .. }
        | ExpandDims { .. }
        | Slice { .. }
        | Pad { .. }
        | Concatenate { .. }
        | Rev { .. }
        | Iota { .. }
        | CheckpointName { .. }
        | StopGradient
        | Threefry2x32
        | collectives!()
        | linalg_ops!()
        | indexing_ops!()
        | Cumsum { .. } => None,
        // never asked: `plan` routes control flow to `control`, which runs the nested plans
        // of its sub-programs; the arm keeps this match exhaustive
        control_flow!() => None,
    }
}

impl Binary {
    /// `out[i] = op(a[i], b[i])`: one monomorphized loop per operation, compiled for the
    /// widest vectors the machine has (chosen at run time: the same bits at every width,
    /// since each element is one IEEE operation).
    pub(crate) fn zip<T: Float>(self, a: &[T], b: &[T], out: &mut [T]) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F, checked just above
                return unsafe { wide::zip_avx512(self, a, b, out) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2, checked just above
                return unsafe { wide::zip_avx2(self, a, b, out) };
            }
        }
        self.zip_any(a, b, out)
    }

    #[inline(always)]
    fn zip_any<T: Float>(self, a: &[T], b: &[T], out: &mut [T]) {
        let z = out.iter_mut().zip(a.iter().zip(b));
        match self {
            Binary::Add => z.for_each(|(o, (&x, &y))| *o = x + y),
            Binary::Sub => z.for_each(|(o, (&x, &y))| *o = x - y),
            Binary::Mul => z.for_each(|(o, (&x, &y))| *o = x * y),
            Binary::Div => z.for_each(|(o, (&x, &y))| *o = x / y),
            Binary::Max => z.for_each(|(o, (&x, &y))| *o = max_nan(x, y)),
            Binary::Min => z.for_each(|(o, (&x, &y))| *o = min_nan(x, y)),
        }
    }

    /// `out[i] = op(a[i], s)`, or `op(s, a[i])` when `scalar_left`: one operand a broadcast
    /// scalar, read from a register instead of a filled buffer; the widest vectors, as
    /// [`Binary::zip`], and the operands in the reference's order (which NaN survives an
    /// operation on two is not specified: the compiler may swap the operands of `+`, `*`).
    pub(crate) fn zip_scalar<T: Float>(self, a: &[T], s: T, scalar_left: bool, out: &mut [T]) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F, checked just above
                return unsafe { wide::zip_scalar_avx512(self, a, s, scalar_left, out) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2, checked just above
                return unsafe { wide::zip_scalar_avx2(self, a, s, scalar_left, out) };
            }
        }
        self.zip_scalar_any(a, s, scalar_left, out)
    }

    #[inline(always)]
    fn zip_scalar_any<T: Float>(self, a: &[T], s: T, scalar_left: bool, out: &mut [T]) {
        let z = out.iter_mut().zip(a);
        match (self, scalar_left) {
            (Binary::Add, false) => z.for_each(|(o, &x)| *o = x + s),
            (Binary::Add, true) => z.for_each(|(o, &x)| *o = s + x),
            (Binary::Sub, false) => z.for_each(|(o, &x)| *o = x - s),
            (Binary::Sub, true) => z.for_each(|(o, &x)| *o = s - x),
            (Binary::Mul, false) => z.for_each(|(o, &x)| *o = x * s),
            (Binary::Mul, true) => z.for_each(|(o, &x)| *o = s * x),
            (Binary::Div, false) => z.for_each(|(o, &x)| *o = x / s),
            (Binary::Div, true) => z.for_each(|(o, &x)| *o = s / x),
            (Binary::Max, false) => z.for_each(|(o, &x)| *o = max_nan(x, s)),
            (Binary::Max, true) => z.for_each(|(o, &x)| *o = max_nan(s, x)),
            (Binary::Min, false) => z.for_each(|(o, &x)| *o = min_nan(x, s)),
            (Binary::Min, true) => z.for_each(|(o, &x)| *o = min_nan(s, x)),
        }
    }

    /// `x[i] = op(x[i], y[i])`, or `op(y[i], x[i])` when `flipped` (the buffer written is
    /// the right operand's); the widest vectors, as [`Binary::zip`].
    fn assign<T: Float>(self, x: &mut [T], y: &[T], flipped: bool) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F, checked just above
                return unsafe { wide::assign_avx512(self, x, y, flipped) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2, checked just above
                return unsafe { wide::assign_avx2(self, x, y, flipped) };
            }
        }
        self.assign_any(x, y, flipped)
    }

    #[inline(always)]
    fn assign_any<T: Float>(self, x: &mut [T], y: &[T], flipped: bool) {
        let z = x.iter_mut().zip(y);
        match (self, flipped) {
            (Binary::Add, _) => z.for_each(|(x, &y)| *x += y),
            (Binary::Mul, _) => z.for_each(|(x, &y)| *x *= y),
            (Binary::Sub, false) => z.for_each(|(x, &y)| *x -= y),
            (Binary::Sub, true) => z.for_each(|(x, &y)| *x = y - *x),
            (Binary::Div, false) => z.for_each(|(x, &y)| *x /= y),
            (Binary::Div, true) => z.for_each(|(x, &y)| *x = y / *x),
            (Binary::Max, false) => z.for_each(|(x, &y)| *x = max_nan(*x, y)),
            (Binary::Max, true) => z.for_each(|(x, &y)| *x = max_nan(y, *x)),
            (Binary::Min, false) => z.for_each(|(x, &y)| *x = min_nan(*x, y)),
            (Binary::Min, true) => z.for_each(|(x, &y)| *x = min_nan(y, *x)),
        }
    }
}

/// The binary loops compiled with wider vector instructions enabled; callers check the CPU.
#[cfg(target_arch = "x86_64")]
mod wide {
    use super::{Binary, Float};

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn zip_avx512<T: Float>(op: Binary, a: &[T], b: &[T], out: &mut [T]) {
        op.zip_any(a, b, out)
    }
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn zip_avx2<T: Float>(op: Binary, a: &[T], b: &[T], out: &mut [T]) {
        op.zip_any(a, b, out)
    }
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn zip_scalar_avx512<T: Float>(
        op: Binary,
        a: &[T],
        s: T,
        l: bool,
        out: &mut [T],
    ) {
        op.zip_scalar_any(a, s, l, out)
    }
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn zip_scalar_avx2<T: Float>(
        op: Binary,
        a: &[T],
        s: T,
        l: bool,
        out: &mut [T],
    ) {
        op.zip_scalar_any(a, s, l, out)
    }
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn assign_avx512<T: Float>(op: Binary, x: &mut [T], y: &[T], f: bool) {
        op.assign_any(x, y, f)
    }
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn assign_avx2<T: Float>(op: Binary, x: &mut [T], y: &[T], f: bool) {
        op.assign_any(x, y, f)
    }
}

/// Runs one step: its kernel when it has one (counted here), the reference evaluator
/// (which counts itself) otherwise. Operands that die at this step arrive unshared, so
/// elementwise kernels may write into them.
pub(crate) fn execute(
    kernel: Option<Kernel>,
    prim: &Primitive,
    args: &mut Vec<Array>,
    out: &Aval,
) -> Result<Array> {
    let Some(k) = kernel else {
        let refs: Vec<&Array> = args.iter().collect();
        // a collective, on a thread running a member of its map: the communicator's
        if let Some(r) = spmd::collective(prim, &refs) {
            return r;
        }
        return eval_primitive(prim, &refs);
    };
    count(prim);
    if let Kernel::Matmul = k {
        return strided_matmul(&args[0], &args[1], prim, out);
    }
    let updated = match out.dtype {
        DType::F32 => in_place::<f32>(k, args, out),
        DType::F64 => in_place::<f64>(k, args, out),
        _ => None,
    };
    if let Some(a) = updated {
        return Ok(a);
    }
    let data = match out.dtype {
        DType::F32 => run::<f32>(k, prim, args, out)?,
        DType::F64 => run::<f64>(k, prim, args, out)?,
        d => return Err(Error::internal(format!("a CPU kernel for a {d} value"))),
    };
    Array::from_data(data, &out.shape)
}

/// An elementwise kernel run in the array of an operand that dies here and that nothing
/// else holds: its buffer, shape and handle are reused, so the step allocates nothing (the
/// steps of a loop body over small values are dominated by such costs). `None` when no
/// operand qualifies (then `run` makes the result). Computes what `run` computes.
fn in_place<T: Float>(k: Kernel, args: &mut Vec<Array>, out: &Aval) -> Option<Array> {
    let fits = |a: &Array| same_shape(a.shape(), &out.shape) && a.is_unique();
    match k {
        Kernel::Unary(u) if args.len() == 1 && fits(&args[0]) => {
            let v = T::slice_mut(args[0].data_mut()?)?;
            unary_in_place(T::unary(u), v);
            args.pop()
        }
        Kernel::Binary(op) if args.len() == 2 => {
            let (a, b) = args.split_at_mut(1);
            let (a, b) = (&mut a[0], &mut b[0]);
            let (target, other, flipped) = if fits(a) {
                (a, &*b, false)
            } else if fits(b) {
                (b, &*a, true)
            } else {
                return None;
            };
            let o = T::slice(other.data())?;
            let v = T::slice_mut(target.data_mut()?)?;
            if o.len() != v.len() {
                return None;
            }
            chunked(v, |start, c| {
                op.assign(c, &o[start..start + c.len()], flipped)
            });
            Some(args.swap_remove(usize::from(flipped)))
        }
        _ => None,
    }
}

/// `v[i] = f(v[i])`, through a small stack buffer so the kernel sees separate input and
/// output slices.
fn unary_in_place<T: Float>(f: fn(&[T], &mut [T]), v: &mut [T]) {
    chunked(v, |_, c| {
        let mut tmp = [T::default(); 256];
        for part in c.chunks_mut(256) {
            let t = &mut tmp[..part.len()];
            t.copy_from_slice(part);
            f(t, part);
        }
    });
}

/// Runs a kernel on operands of element type `T`.
fn run<T: Float>(k: Kernel, prim: &Primitive, args: &mut Vec<Array>, out: &Aval) -> Result<Data> {
    let refused = |_| {
        Error::exhausted(
            prim.name(),
            format!("cannot allocate {} bytes for a value of {out}", out.bytes()),
        )
    };
    // the plan chose the kernel from these operands' avals: a mismatch is a bug
    let wrong = || {
        Error::internal(format!(
            "`{}` kernel given operands of another dtype",
            prim.name()
        ))
    };
    fn slice<T: Float>(a: &Array) -> Result<&[T]> {
        T::slice(a.data())
            .ok_or_else(|| Error::internal("a CPU kernel's operand has another dtype"))
    }
    let take = |a: Array| T::take(a.into_data()).ok_or_else(wrong);
    Ok(T::wrap(match k {
        Kernel::Unary(u) => {
            let f = T::unary(u);
            let mut v = take(args.pop().ok_or_else(wrong)?)?;
            unary_in_place(f, &mut v);
            v
        }
        Kernel::Binary(op) => {
            let b = args.pop().ok_or_else(wrong)?;
            let a = args.pop().ok_or_else(wrong)?;
            // write into whichever operand is unique, else a new buffer
            let (mut v, other, flipped) = if a.is_unique() {
                (take(a)?, b, false)
            } else if b.is_unique() {
                (take(b)?, a, true)
            } else {
                let mut v = buffers::with_capacity::<T>(a.size()).map_err(refused)?;
                v.extend_from_slice(slice::<T>(&a)?);
                (v, b, false)
            };
            let o = slice::<T>(&other)?;
            chunked(&mut v, |start, c| {
                op.assign(c, &o[start..start + c.len()], flipped)
            });
            v
        }
        Kernel::SumLeading => {
            let inner = out.size();
            let mut acc = buffers::zeroed::<T>(inner).map_err(refused)?;
            // row by row in order; rows of a vector's worth or more as a vector `+=` at the
            // CPU's widest width (the same additions in the same order as element by
            // element), narrower ones inline (a call per row would cost more)
            for row in slice::<T>(&args[0])?.chunks_exact(inner.max(1)) {
                if inner >= 16 {
                    Binary::Add.assign(&mut acc, row, false);
                } else {
                    acc.iter_mut().zip(row).for_each(|(a, &b)| *a += b);
                }
            }
            acc
        }
        Kernel::SumAll => vec![T::sum(slice::<T>(&args[0])?)],
        Kernel::BroadcastTile => {
            let x = slice::<T>(&args[0])?;
            let mut o = buffers::with_capacity::<T>(out.size()).map_err(refused)?;
            match x {
                // one element (a literal's broadcast): a fill, not one copy per element
                [v] => o.resize(out.size(), *v),
                _ => {
                    for _ in 0..out.size() / x.len().max(1) {
                        o.extend_from_slice(x);
                    }
                }
            }
            o
        }
        Kernel::BroadcastRepeat => {
            let x = slice::<T>(&args[0])?;
            let run = out.size() / x.len().max(1);
            let mut o = buffers::with_capacity::<T>(out.size()).map_err(refused)?;
            for &e in x {
                o.extend(std::iter::repeat_n(e, run));
            }
            o
        }
        Kernel::Transpose2 => {
            let x = slice::<T>(&args[0])?;
            // out is cols × rows of the operand
            let (rows, cols) = (out.shape[1], out.shape[0]);
            let mut o = buffers::with_capacity::<T>(out.size()).map_err(refused)?;
            o.resize(out.size(), T::default());
            transpose_tiles(x, rows, cols, &mut o);
            o
        }
        Kernel::Matmul => return Err(Error::internal("matrix products are run by `execute`")),
    }))
}

/// `out[j][i] = x[i][j]` for a `rows` × `cols` matrix `x`, in 32 × 32 tiles: each tile's
/// rows are read and its columns written while both are in the L1 cache (the element by
/// element index loop of the reference took 3 ns per element on a 256 × 256 matrix).
fn transpose_tiles<T: Copy>(x: &[T], rows: usize, cols: usize, out: &mut [T]) {
    const TILE: usize = 32;
    for i0 in (0..rows).step_by(TILE) {
        let i1 = (i0 + TILE).min(rows);
        for j0 in (0..cols).step_by(TILE) {
            let j1 = (j0 + TILE).min(cols);
            for i in i0..i1 {
                let row = &x[i * cols + j0..i * cols + j1];
                for (j, &v) in (j0..j1).zip(row) {
                    out[j * rows + i] = v;
                }
            }
        }
    }
}
