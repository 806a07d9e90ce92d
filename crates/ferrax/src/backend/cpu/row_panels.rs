//! A matrix times a vector and the same matrix times a matrix, in one pass over the first
//! matrix: `W x` and `W T`, the primal and the batched tangent products a `vmap` of a `jvp`
//! makes with each weight matrix (the plan pairs them, `plan::paired`).
//!
//! Run apart, each product reads `W` from memory: `matvec` is bound by that read, and the
//! matrix product, bound by its multiply-adds, reads it again. Here each panel of six rows
//! of `W` is read once: a micro-kernel keeps the panel's block of `W T` (6×32 in f32, 6×16
//! in f64: two vectors per row) in registers
//! while the rows stream past, and multiplies the same loads by `x` on the way, so the
//! stream from memory hides under the multiply-adds.
//!
//! `W x` keeps `matvec`'s bits exactly (its summation order is defined per row: eight
//! partial sums over `j mod 8` in increasing `j`, fused multiply-adds, then the fixed tree
//! and the tail), so pairing never changes a primal value. Each element of `W T` is
//! `Σ_j W[i, j] T[j, c]` accumulated in increasing `j` with fused multiply-adds from zero,
//! the same function of the operands wherever the panels fall and however many threads run.
//!
//! The route runs f32 and f64 on x86-64 with AVX-512F and VL (and the FMA `matvec` uses), with `W`
//! and `T` of contiguous rows, `W` of two rows or more, `T` of two columns or more, and at
//! least `matvec::MIN_TERMS` terms; any other case returns `None` and the plan runs the two
//! products apart (`W T` then through `gemm`, whose sums of many terms, in blocks, may differ
//! from this definition in the last bits: pairing can change `W T`'s rounding, as any
//! choice between product kernels can).

use crate::backend::cpu::buffers::{self, Pooled};
use crate::backend::cpu::math::threads;
use crate::backend::reference::matvec::{applies, tree, MvFloat};
use crate::ir::{Array, Aval, DType, Data, Error, Primitive, Result};

use super::matmul::layout_of;

/// Rows of `W` per micro-kernel panel.
const ROWS: usize = 6;

/// `W x` and `W T` (`x` a vector, `T` a matrix, both products by `prim`) in one pass over
/// `W`; `None` where this route does not run (see the module doc).
pub(crate) fn vector_and_matrix_product(
    w: &Array,
    x: &Array,
    t: &Array,
    prim: &Primitive,
    out_x: &Aval,
    out_t: &Aval,
) -> Result<Option<[Array; 2]>> {
    if !available() || out_x.dtype != out_t.dtype {
        return Ok(None);
    }
    let (Some(lx), Some(lt)) = (
        layout_of(w.shape(), x.shape(), prim),
        layout_of(w.shape(), t.shape(), prim),
    ) else {
        return Ok(None);
    };
    let ((m, k, w_rs, w_cs), (one, x_rs, _)) = lx;
    let ((m2, k2, ..), (n, t_rs, t_cs)) = lt;
    // W's rows and T's rows contiguous, x contiguous, W x a product `matvec` defines; W T
    // of two rows or more (with one row, W T is a product by a vector, which `matvec`
    // defines too: the route would change its bits)
    let shaped = one == 1 && m2 == m && k2 == k && m >= 2 && n >= 2 && applies(m, 1, k);
    if !shaped || w_cs != 1 || t_cs != 1 || x_rs != 1 || (w_rs as usize) < k || (t_rs as usize) < n
    {
        return Ok(None);
    }
    let shape = Shape {
        m,
        k,
        n,
        w_rs: w_rs as usize,
        t_rs: t_rs as usize,
    };
    // the value each buffer holds, for the error that names it
    let alloc_error = |of_t: bool| {
        let aval = if of_t { out_t } else { out_x };
        Error::exhausted(
            prim.name(),
            format!(
                "cannot allocate {} bytes for a value of {aval}",
                aval.bytes()
            ),
        )
    };
    let [dx, dt] = match out_t.dtype {
        DType::F32 => {
            let operands = (
                w.as_slice::<f32>()?,
                x.as_slice::<f32>()?,
                t.as_slice::<f32>()?,
            );
            let Some([dx, dt]) = run(operands, shape, alloc_error)? else {
                return Ok(None);
            };
            [Data::F32(dx), Data::F32(dt)]
        }
        DType::F64 => {
            let operands = (
                w.as_slice::<f64>()?,
                x.as_slice::<f64>()?,
                t.as_slice::<f64>()?,
            );
            let Some([dx, dt]) = run(operands, shape, alloc_error)? else {
                return Ok(None);
            };
            [Data::F64(dx), Data::F64(dt)]
        }
        _ => return Ok(None),
    };
    Ok(Some([
        Array::from_data(dx, &out_x.shape)?,
        Array::from_data(dt, &out_t.shape)?,
    ]))
}

/// The products' sizes: `W` is m×k with row stride `w_rs`, `T` k×n with row stride `t_rs`.
#[derive(Clone, Copy)]
struct Shape {
    m: usize,
    k: usize,
    n: usize,
    w_rs: usize,
    t_rs: usize,
}

/// Both products on slices, panel by panel (threads splitting the rows by whole panels);
/// `None` when a slice does not hold its matrix (never for a checked program's values).
fn run<T: Panel>(
    (w, x, t): (&[T], &[T], &[T]),
    s: Shape,
    alloc_error: impl Fn(bool) -> Error,
) -> Result<Option<[Vec<T>; 2]>> {
    // the last element each product reads lies within its buffer (the kernel reads raw)
    let fits = |len: usize, rows: usize, rs: usize, cols: usize| {
        (rows - 1)
            .checked_mul(rs)
            .and_then(|e| e.checked_add(cols))
            .is_some_and(|end| end <= len)
    };
    if !fits(w.len(), s.m, s.w_rs, s.k) || !fits(t.len(), s.k, s.t_rs, s.n) || x.len() < s.k {
        return Ok(None);
    }
    let size =
        s.m.checked_mul(s.n)
            .ok_or_else(|| Error::internal("product size overflows"))?;
    let alloc = |len: usize, of_t: bool| {
        let mut d = buffers::with_capacity::<T>(len).map_err(|_| alloc_error(of_t))?;
        d.resize(len, T::default());
        Ok::<_, Error>(d)
    };
    let (mut dx, mut dt) = (alloc(s.m, false)?, alloc(size, true)?);
    let operands = Operands { w, x, t, s };
    let flops = size.saturating_mul(s.k);
    let parts = if flops >= (1 << 18) {
        threads().min(s.m.div_ceil(ROWS))
    } else {
        1
    };
    if parts > 1 {
        use rayon::prelude::*;
        // whole panels per part, so each part's rows are the same panels as one thread's
        let per = s.m.div_ceil(ROWS).div_ceil(parts) * ROWS;
        dx.par_chunks_mut(per)
            // at most `size` rounded up to whole panels: `m × n` was checked above
            .zip(dt.par_chunks_mut(per.saturating_mul(s.n)))
            .enumerate()
            .for_each(|(i, (ox, ot))| operands.rows(i * per, ox, ot));
    } else {
        operands.rows(0, &mut dx, &mut dt);
    }
    Ok(Some([dx, dt]))
}

/// Whether the CPU runs the micro-kernel (AVX-512F and VL, and the FMA that `matvec` uses).
fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The float types the micro-kernel is written for (f32 and f64).
#[cfg(target_arch = "x86_64")]
pub(crate) use avx512::Panel;
/// The float types the micro-kernel is written for (none off x86-64: the route never runs).
#[cfg(not(target_arch = "x86_64"))]
pub(crate) trait Panel: MvFloat + Pooled + Send + Sync {}
#[cfg(not(target_arch = "x86_64"))]
impl Panel for f32 {}
#[cfg(not(target_arch = "x86_64"))]
impl Panel for f64 {}

/// The operands, checked to hold their matrices.
struct Operands<'a, T> {
    w: &'a [T],
    x: &'a [T],
    t: &'a [T],
    s: Shape,
}

impl<T: Panel> Operands<'_, T> {
    /// Rows `first..first + ox.len()` of both products, panel by panel.
    fn rows(&self, first: usize, ox: &mut [T], ot: &mut [T]) {
        let n = self.s.n;
        let mut r = 0;
        while r < ox.len() {
            let rows = ROWS.min(ox.len() - r);
            let (px, pt) = (&mut ox[r..r + rows], &mut ot[r * n..(r + rows) * n]);
            #[cfg(target_arch = "x86_64")]
            {
                // SAFETY: `available()` held for the route to be taken; the panel's rows lie
                // within W (checked by `run` for all m rows), T holds k rows of n, and the
                // outputs hold `rows` and `rows × n` elements.
                unsafe {
                    let w = self.w.as_ptr().add((first + r) * self.s.w_rs);
                    match rows {
                        6 => avx512::panel::<T, 6>(self, w, px, pt),
                        5 => avx512::panel::<T, 5>(self, w, px, pt),
                        4 => avx512::panel::<T, 4>(self, w, px, pt),
                        3 => avx512::panel::<T, 3>(self, w, px, pt),
                        2 => avx512::panel::<T, 2>(self, w, px, pt),
                        _ => avx512::panel::<T, 1>(self, w, px, pt),
                    }
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            let _ = (first, px, pt);
            r += rows;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{tree, MvFloat, Operands, Pooled};

    /// A float type's vectors: `V` of `LANES` elements (one AVX-512 register), and `P`, the
    /// eight partial sums of `matvec`'s definition.
    pub(crate) trait Panel: MvFloat + Pooled + Send + Sync {
        type V: Copy;
        type P: Copy;
        const LANES: usize;
        /// The first `valid` (at most `LANES`) elements from `p`, zeros after; lanes past
        /// `valid` are not read.
        unsafe fn load(valid: usize, p: *const Self) -> Self::V;
        /// The first `valid` elements of `v` to `p`; lanes past `valid` are not written.
        unsafe fn store(valid: usize, p: *mut Self, v: Self::V);
        unsafe fn splat(x: Self) -> Self::V;
        unsafe fn zero() -> Self::V;
        /// `a * b + c`, rounded once per lane.
        unsafe fn fmadd(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
        unsafe fn zero8() -> Self::P;
        /// Eight elements from `p`.
        unsafe fn load8(p: *const Self) -> Self::P;
        unsafe fn fmadd8(a: Self::P, b: Self::P, c: Self::P) -> Self::P;
        unsafe fn store8(p: *mut Self, v: Self::P);
    }

    /// The mask of the first `valid` of `lanes` lanes.
    fn mask(valid: usize, lanes: usize) -> u16 {
        if valid >= lanes {
            (((1u32 << lanes) - 1) & 0xffff) as u16
        } else {
            ((1u32 << valid) - 1) as u16
        }
    }

    impl Panel for f32 {
        type V = __m512;
        type P = __m256;
        const LANES: usize = 16;
        #[inline]
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        unsafe fn load(valid: usize, p: *const f32) -> __m512 {
            _mm512_maskz_loadu_ps(mask(valid, 16), p)
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        unsafe fn store(valid: usize, p: *mut f32, v: __m512) {
            _mm512_mask_storeu_ps(p, mask(valid, 16), v)
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        unsafe fn splat(x: f32) -> __m512 {
            _mm512_set1_ps(x)
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        unsafe fn zero() -> __m512 {
            _mm512_setzero_ps()
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        unsafe fn fmadd(a: __m512, b: __m512, c: __m512) -> __m512 {
            _mm512_fmadd_ps(a, b, c)
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        unsafe fn zero8() -> __m256 {
            _mm256_setzero_ps()
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        unsafe fn load8(p: *const f32) -> __m256 {
            _mm256_loadu_ps(p)
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        unsafe fn fmadd8(a: __m256, b: __m256, c: __m256) -> __m256 {
            _mm256_fmadd_ps(a, b, c)
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        unsafe fn store8(p: *mut f32, v: __m256) {
            _mm256_storeu_ps(p, v)
        }
    }

    impl Panel for f64 {
        type V = __m512d;
        type P = __m512d;
        const LANES: usize = 8;
        #[inline]
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        unsafe fn load(valid: usize, p: *const f64) -> __m512d {
            _mm512_maskz_loadu_pd(mask(valid, 8) as u8, p)
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        unsafe fn store(valid: usize, p: *mut f64, v: __m512d) {
            _mm512_mask_storeu_pd(p, mask(valid, 8) as u8, v)
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        unsafe fn splat(x: f64) -> __m512d {
            _mm512_set1_pd(x)
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        unsafe fn zero() -> __m512d {
            _mm512_setzero_pd()
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        unsafe fn fmadd(a: __m512d, b: __m512d, c: __m512d) -> __m512d {
            _mm512_fmadd_pd(a, b, c)
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        unsafe fn zero8() -> __m512d {
            _mm512_setzero_pd()
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        unsafe fn load8(p: *const f64) -> __m512d {
            _mm512_loadu_pd(p)
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        unsafe fn fmadd8(a: __m512d, b: __m512d, c: __m512d) -> __m512d {
            _mm512_fmadd_pd(a, b, c)
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        unsafe fn store8(p: *mut f64, v: __m512d) {
            _mm512_storeu_pd(p, v)
        }
    }

    /// `R` rows of both products from the panel of `W` at `w`: `px[r] = Σ_j W[r, j] x[j]` in
    /// `matvec`'s order, `pt[r, c] = Σ_j W[r, j] T[j, c]` in increasing `j`, two vectors of
    /// columns per pass.
    ///
    /// # Safety
    /// AVX-512F and VL, AVX2 and FMA; `w` points at `R` rows of `o.s.k` elements, `o.s.w_rs`
    /// apart; `px` holds `R` elements and `pt` `R × o.s.n`. Lanes past a row's last column
    /// are masked off (masked lanes are neither read nor written; their addresses are formed
    /// with `wrapping_add`), and the next panel's prefetch never faults.
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    pub(super) unsafe fn panel<T: Panel, const R: usize>(
        o: &Operands<'_, T>,
        w: *const T,
        px: &mut [T],
        pt: &mut [T],
    ) {
        let (k, n, lanes) = (o.s.k, o.s.n, T::LANES);
        let k8 = k - k % 8;
        let (x, t) = (o.x.as_ptr(), o.t.as_ptr());
        let row = |r: usize| w.add(r * o.s.w_rs);
        // one cache line of each row of the next panel fetched per this many columns
        let line = 64 / std::mem::size_of::<T>();
        let mut c0 = 0;
        while c0 < n {
            let width = (2 * lanes).min(n - c0);
            let (v0, v1) = (width.min(lanes), width.saturating_sub(lanes));
            let mut acc = [[T::zero(); 2]; R];
            // the first pass over the columns also forms `W x`
            let with_x = c0 == 0;
            let mut p = [T::zero8(); R];
            let step = |acc: &mut [[T::V; 2]; R], j: usize| {
                let tj = t.add(j * o.s.t_rs + c0);
                // past the row's end when masked off entirely: never dereferenced
                let (t0, t1) = (T::load(v0, tj), T::load(v1, tj.wrapping_add(lanes)));
                for (r, a) in acc.iter_mut().enumerate() {
                    let b = T::splat(*row(r).add(j));
                    a[0] = T::fmadd(b, t0, a[0]);
                    a[1] = T::fmadd(b, t1, a[1]);
                }
            };
            // the next panel's rows, fetched while this one computes, so that its first pass
            // does not wait on memory
            let next = w.wrapping_add(R * o.s.w_rs);
            let mut j = 0;
            while j < k8 {
                if with_x {
                    if j % line == 0 {
                        for r in 0..R {
                            let at = next.wrapping_add(r * o.s.w_rs + j);
                            _mm_prefetch::<_MM_HINT_T0>(at.cast());
                        }
                    }
                    let xv = T::load8(x.add(j));
                    for (r, pr) in p.iter_mut().enumerate() {
                        *pr = T::fmadd8(T::load8(row(r).add(j)), xv, *pr);
                    }
                }
                for jj in j..j + 8 {
                    step(&mut acc, jj);
                }
                j += 8;
            }
            for jj in k8..k {
                step(&mut acc, jj);
            }
            for (r, a) in acc.iter().enumerate() {
                let out = pt.as_mut_ptr().add(r * n + c0);
                T::store(v0, out, a[0]);
                T::store(v1, out.wrapping_add(lanes), a[1]);
            }
            if with_x {
                for (r, pr) in p.iter().enumerate() {
                    let mut sums = [T::default(); 8];
                    T::store8(sums.as_mut_ptr(), *pr);
                    let mut s = tree(&sums);
                    for jj in k8..k {
                        s = T::fused(*row(r).add(jj), *x.add(jj), s);
                    }
                    px[r] = s;
                }
            }
            c0 += 2 * lanes;
        }
    }
}
