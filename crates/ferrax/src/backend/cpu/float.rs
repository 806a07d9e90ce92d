//! The float element types of the CPU kernels ([`Float`]), and the sums and extrema the
//! plans compute over whole slices, compiled for the machine's widest vectors.
//!
//! Sits under `dispatch` and `fuse`, which write their kernels once over `Float`. A sum goes
//! block by block of [`SUM_BLOCK`] values, the same blocks a fused group's chunks are, so a
//! reduction gives the same bits whether it is fused into the elementwise run that feeds it
//! or runs alone; extrema are the reference evaluator's, bit for bit.

use crate::backend::cpu::buffers::Pooled;
use crate::backend::cpu::math::{self, SliceFn32, SliceFn64, Unary};
use crate::backend::reference::matvec::{matvec, MvFloat, Strided};
use crate::backend::{max_nan, min_nan};
use crate::ir::Data;

/// The float element types the CPU kernels are written for.
pub(crate) trait Float:
    Pooled
    + PartialOrd
    + Send
    + Sync
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::AddAssign
    + std::ops::SubAssign
    + std::ops::MulAssign
    + std::ops::DivAssign
    + 'static
{
    fn slice(d: &Data) -> Option<&[Self]>;
    fn slice_mut(d: &mut Data) -> Option<&mut [Self]>;
    /// The buffer of this type, moved out of the data.
    fn take(d: Data) -> Option<Vec<Self>>;
    fn wrap(v: Vec<Self>) -> Data;
    /// The slice kernel of a unary function for this type.
    fn unary(u: Unary) -> fn(&[Self], &mut [Self]);
    /// The sum of one block of at most [`SUM_BLOCK`] values, in lanes (vectorized, at the
    /// machine's widest), rounded to `f64`.
    fn block_sum(v: &[Self]) -> f64;
    /// The end of [`Float::block_sum`] for a block of whole lanes: the lanes' partial sums
    /// (sixteen for f32, eight for f64) rounded to `f64` and added in order. Generated code
    /// that accumulates the same lanes finishes its sums here, for the same bits.
    fn lanes_sum(acc: &[Self]) -> f64;
    /// A sum accumulated in `f64`, rounded to this type.
    fn from_sum(total: f64) -> Self;
    /// `out[i] = Σ_j a[i * cols + j] v[j]` for the rows of `a`: `matvec`'s products, in its
    /// summation order (so a product fused into a group gives the unfused product's bits).
    fn matvec_rows(a: &[Self], cols: usize, v: &[Self], out: &mut [Self]);
    /// The maximum (`max`) or minimum of a non-empty slice: `reduce_max`/`reduce_min`'s
    /// bits (the reference evaluator's fold, compiled for the machine's widest vectors).
    fn extremum(v: &[Self], max: bool) -> Self;
    /// The sum of a slice: block by block of [`SUM_BLOCK`] values ([`Float::block_sum`]),
    /// the blocks' sums added in order in `f64`. A fused group sums its chunks the same
    /// way, so a sum gives the same bits fused or not.
    fn sum(v: &[Self]) -> Self {
        Self::from_sum(
            v.chunks(SUM_BLOCK)
                .map(Self::block_sum)
                .fold(0.0, |t, b| t + b),
        )
    }
}

/// [`Float::matvec_rows`] for both types.
fn rows_by_vector<T: MvFloat>(a: &[T], cols: usize, v: &[T], out: &mut [T]) {
    let rows = a.len().checked_div(cols).unwrap_or(0);
    let a = Strided {
        data: a,
        rows,
        cols,
        row_stride: cols,
        col_stride: 1,
    };
    matvec(a, v, 1, out);
}

/// The values per block of a compiled sum (and per chunk of a fused group, `fuse::CHUNK`).
pub(crate) const SUM_BLOCK: usize = 2048;

/// Runs `$any` (an expression of the arguments) compiled for AVX-512F when the CPU has it,
/// then AVX2, then the baseline.
macro_rules! widest {
    ($($arg:ident: $t:ty),* => $r:ty = $any:expr) => {{
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f")]
            unsafe fn w512($($arg: $t),*) -> $r {
                $any
            }
            #[target_feature(enable = "avx2,fma")]
            unsafe fn w256($($arg: $t),*) -> $r {
                $any
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F, checked just above
                return unsafe { w512($($arg),*) };
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: the CPU has AVX2 and FMA, checked just above
                return unsafe { w256($($arg),*) };
            }
        }
        $any
    }};
}

#[inline(always)]
fn block_sum_f32(v: &[f32]) -> f64 {
    // 16 partial sums (vectorizes), f64 accumulation per block for accuracy
    let mut acc = [0f32; 16];
    let mut it = v.chunks_exact(16);
    for c in &mut it {
        for i in 0..16 {
            acc[i] += c[i];
        }
    }
    lanes_then_rest_f32(&acc, it.remainder())
}

#[inline(always)]
fn lanes_then_rest_f32(acc: &[f32], rest: &[f32]) -> f64 {
    let s: f64 = acc.iter().map(|&a| a as f64).sum();
    s + rest.iter().map(|&a| a as f64).sum::<f64>()
}

#[inline(always)]
fn block_sum_f64(v: &[f64]) -> f64 {
    let mut acc = [0f64; 8];
    let mut it = v.chunks_exact(8);
    for c in &mut it {
        for i in 0..8 {
            acc[i] += c[i];
        }
    }
    lanes_then_rest_f64(&acc, it.remainder())
}

#[inline(always)]
fn lanes_then_rest_f64(acc: &[f64], rest: &[f64]) -> f64 {
    acc.iter().sum::<f64>() + rest.iter().sum::<f64>()
}

impl Float for f32 {
    fn matvec_rows(a: &[f32], cols: usize, v: &[f32], out: &mut [f32]) {
        rows_by_vector(a, cols, v, out)
    }
    fn slice(d: &Data) -> Option<&[f32]> {
        match d {
            Data::F32(v) => Some(v),
            _ => None,
        }
    }
    fn slice_mut(d: &mut Data) -> Option<&mut [f32]> {
        match d {
            Data::F32(v) => Some(v),
            _ => None,
        }
    }
    fn take(d: Data) -> Option<Vec<f32>> {
        match d {
            Data::F32(v) => Some(v),
            _ => None,
        }
    }
    fn wrap(v: Vec<f32>) -> Data {
        Data::F32(v)
    }
    fn unary(u: Unary) -> SliceFn32 {
        math::fast(u).0
    }
    fn block_sum(v: &[f32]) -> f64 {
        widest!(v: &[f32] => f64 = block_sum_f32(v))
    }
    fn lanes_sum(acc: &[f32]) -> f64 {
        lanes_then_rest_f32(acc, &[])
    }
    fn from_sum(total: f64) -> f32 {
        total as f32
    }
    fn extremum(v: &[f32], max: bool) -> f32 {
        widest!(v: &[f32], max: bool => f32 = extremum_any(v, max, f32::INFINITY))
    }
}

impl Float for f64 {
    fn matvec_rows(a: &[f64], cols: usize, v: &[f64], out: &mut [f64]) {
        rows_by_vector(a, cols, v, out)
    }
    fn slice(d: &Data) -> Option<&[f64]> {
        match d {
            Data::F64(v) => Some(v),
            _ => None,
        }
    }
    fn slice_mut(d: &mut Data) -> Option<&mut [f64]> {
        match d {
            Data::F64(v) => Some(v),
            _ => None,
        }
    }
    fn take(d: Data) -> Option<Vec<f64>> {
        match d {
            Data::F64(v) => Some(v),
            _ => None,
        }
    }
    fn wrap(v: Vec<f64>) -> Data {
        Data::F64(v)
    }
    fn unary(u: Unary) -> SliceFn64 {
        math::fast(u).1
    }
    fn block_sum(v: &[f64]) -> f64 {
        widest!(v: &[f64] => f64 = block_sum_f64(v))
    }
    fn lanes_sum(acc: &[f64]) -> f64 {
        lanes_then_rest_f64(acc, &[])
    }
    fn from_sum(total: f64) -> f64 {
        total
    }
    fn extremum(v: &[f64], max: bool) -> f64 {
        widest!(v: &[f64], max: bool => f64 = extremum_any(v, max, f64::INFINITY))
    }
}

/// `reduce_max` (`max`) or `reduce_min` of `x` with the reference evaluator's bits
/// (`reference::extremum`'s method): sixteen lanes of plain compares with a NaN flag per
/// lane, which vectorize, then the lanes combined; a slice with a NaN, or whose extremum is
/// a zero (whose sign depends on which came first), is folded again serially from `∓inf`
/// with `max_nan`/`min_nan`. `inf` is the type's infinity.
#[inline(always)]
fn extremum_any<T: Float + std::ops::Neg<Output = T>>(x: &[T], max: bool, inf: T) -> T {
    if max {
        lanes::<T, true>(x, -inf)
    } else {
        lanes::<T, false>(x, inf)
    }
}

#[inline(always)]
fn lanes<T: Float, const MAX: bool>(x: &[T], init: T) -> T {
    const LANES: usize = 16;
    let f = |a: T, v: T| if MAX { max_nan(a, v) } else { min_nan(a, v) };
    let mut acc = [init; LANES];
    let mut nan = [0u32; LANES];
    let mut blocks = x.chunks_exact(LANES);
    for c in &mut blocks {
        for j in 0..LANES {
            let v = c[j];
            #[allow(clippy::eq_op)] // the NaN test as one vector compare
            let unordered = v != v;
            nan[j] |= u32::from(unordered);
            let better = if MAX { v > acc[j] } else { v < acc[j] };
            acc[j] = if better { v } else { acc[j] };
        }
    }
    let serial = || x.iter().fold(init, |a, &v| f(a, v));
    if nan.iter().any(|&n| n != 0) {
        return serial();
    }
    let m = acc.iter().fold(init, |a, &v| f(a, v));
    let m = blocks.remainder().iter().fold(m, |a, &v| f(a, v));
    if m == T::default() {
        return serial();
    }
    m
}
