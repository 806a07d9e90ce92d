//! A matrix times a vector and the same matrix times a matrix, in one pass over the first
//! matrix: `W x` and `W T`, the primal and the batched tangent products a `vmap` of a `jvp`
//! makes with each weight matrix (the plan pairs them, `plan::paired`).
//!
//! Run apart, each product reads `W` from memory: `matvec` is bound by that read, and the
//! matrix product, bound by its multiply-adds, reads it again. Here each panel of six rows
//! of `W` is read once: a micro-kernel keeps the panel's 6×32 block of `W T` in registers
//! while the rows stream past, and multiplies the same loads by `x` on the way, so the
//! stream from memory hides under the multiply-adds.
//!
//! `W x` keeps `matvec`'s bits exactly (its summation order is defined per row: eight
//! partial sums over `j mod 8` in increasing `j`, fused multiply-adds, then the fixed tree
//! and the tail), so pairing never changes a primal value. Each element of `W T` is
//! `Σ_j W[i, j] T[j, c]` accumulated in increasing `j` with fused multiply-adds from zero,
//! the same function of the operands wherever the panels fall and however many threads run.
//!
//! The route runs f32 on x86-64 with AVX-512F and VL (and the FMA `matvec` uses), with `W`
//! and `T` of contiguous rows, `W` of two rows or more, `T` of two columns or more, and at
//! least `matvec::MIN_TERMS` terms; any other case returns `None` and the plan runs the two
//! products apart (`W T` then through `gemm`, whose sums of many terms, in blocks, may differ
//! from this definition in the last bits: pairing can change `W T`'s rounding, as any
//! choice between product kernels can).

use crate::backend::cpu::buffers;
use crate::backend::cpu::math::threads;
use crate::backend::reference::matvec::{applies, tree};
use crate::ir::{Array, Aval, DType, Data, Error, Primitive, Result};

use super::matmul::layout_of;

/// Rows of `W` per micro-kernel panel.
const ROWS: usize = 6;
/// Columns of `T` per micro-kernel pass (two vectors of sixteen f32).
const COLS: usize = 32;

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
    if !available() || out_x.dtype != DType::F32 || out_t.dtype != DType::F32 {
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
    let (a, v, b) = (
        w.as_slice::<f32>()?,
        x.as_slice::<f32>()?,
        t.as_slice::<f32>()?,
    );
    let (w_rs, t_rs) = (w_rs as usize, t_rs as usize);
    // the last element each product reads lies within its buffer (the kernel reads raw)
    let fits = |len: usize, rows: usize, rs: usize, cols: usize| {
        (rows - 1)
            .checked_mul(rs)
            .and_then(|e| e.checked_add(cols))
            .is_some_and(|end| end <= len)
    };
    if !fits(a.len(), m, w_rs, k) || !fits(b.len(), k, t_rs, n) || v.len() < k {
        return Ok(None);
    }
    let size = m
        .checked_mul(n)
        .ok_or_else(|| Error::internal("product size overflows"))?;
    let alloc = |len: usize, aval: &Aval| {
        let mut d = buffers::with_capacity::<f32>(len).map_err(|_| {
            Error::exhausted(
                prim.name(),
                format!(
                    "cannot allocate {} bytes for a value of {aval}",
                    aval.bytes()
                ),
            )
        })?;
        d.resize(len, 0.0);
        Ok::<_, Error>(d)
    };
    let (mut dx, mut dt) = (alloc(m, out_x)?, alloc(size, out_t)?);
    let operands = Operands {
        w: a,
        w_rs,
        k,
        x: v,
        t: b,
        t_rs,
        n,
    };
    let flops = size.saturating_mul(k);
    let parts = if flops >= (1 << 18) {
        threads().min(m.div_ceil(ROWS))
    } else {
        1
    };
    if parts > 1 {
        use rayon::prelude::*;
        // whole panels per part, so each part's rows are the same panels as one thread's
        let per = m.div_ceil(ROWS).div_ceil(parts) * ROWS;
        dx.par_chunks_mut(per)
            .zip(dt.par_chunks_mut(per * n))
            .enumerate()
            .for_each(|(i, (ox, ot))| operands.rows(i * per, ox, ot));
    } else {
        operands.rows(0, &mut dx, &mut dt);
    }
    Ok(Some([
        Array::from_data(Data::F32(dx), &out_x.shape)?,
        Array::from_data(Data::F32(dt), &out_t.shape)?,
    ]))
}

/// Whether the CPU runs the micro-kernel (AVX-512F, and the FMA that `matvec` uses).
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

/// The operands, checked to hold their matrices: `W` is m×k with row stride `w_rs`, `T`
/// k×n with row stride `t_rs`.
struct Operands<'a> {
    w: &'a [f32],
    w_rs: usize,
    k: usize,
    x: &'a [f32],
    t: &'a [f32],
    t_rs: usize,
    n: usize,
}

impl Operands<'_> {
    /// Rows `first..first + ox.len()` of both products, panel by panel.
    fn rows(&self, first: usize, ox: &mut [f32], ot: &mut [f32]) {
        let mut r = 0;
        while r < ox.len() {
            let rows = ROWS.min(ox.len() - r);
            let (px, pt) = (
                &mut ox[r..r + rows],
                &mut ot[r * self.n..(r + rows) * self.n],
            );
            #[cfg(target_arch = "x86_64")]
            {
                // SAFETY: `available()` held for the route to be taken; the panel's rows lie
                // within W (checked by the caller for all m rows), T holds k rows of n, and
                // the outputs hold `rows` and `rows × n` elements.
                unsafe {
                    let w = self.w.as_ptr().add((first + r) * self.w_rs);
                    match rows {
                        6 => avx512::panel::<6>(self, w, px, pt),
                        5 => avx512::panel::<5>(self, w, px, pt),
                        4 => avx512::panel::<4>(self, w, px, pt),
                        3 => avx512::panel::<3>(self, w, px, pt),
                        2 => avx512::panel::<2>(self, w, px, pt),
                        _ => avx512::panel::<1>(self, w, px, pt),
                    }
                }
            }
            r += rows;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{tree, Operands, COLS};

    /// `R` rows of both products from the panel of `W` at `w`: `px[r] = Σ_j W[r, j] x[j]` in
    /// `matvec`'s order, `pt[r, c] = Σ_j W[r, j] T[j, c]` in increasing `j`.
    ///
    /// # Safety
    /// AVX-512F and VL, AVX2 and FMA; `w` points at `R` rows of `o.k` elements, `o.w_rs`
    /// apart; `px` holds `R` elements and `pt` `R × o.n`. Lanes past a row's last column are
    /// masked off (masked lanes are neither read nor written; their addresses are formed
    /// with `wrapping_add`), and the next panel's prefetch never faults.
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    pub(super) unsafe fn panel<const R: usize>(
        o: &Operands<'_>,
        w: *const f32,
        px: &mut [f32],
        pt: &mut [f32],
    ) {
        let (k, n) = (o.k, o.n);
        let k8 = k - k % 8;
        let (x, t) = (o.x.as_ptr(), o.t.as_ptr());
        let row = |r: usize| w.add(r * o.w_rs);
        let mut c0 = 0;
        while c0 < n {
            let width = COLS.min(n - c0);
            let m0: __mmask16 = if width >= 16 {
                !0
            } else {
                (1u32 << width) as u16 - 1
            };
            let m1: __mmask16 = if width >= 32 {
                !0
            } else if width > 16 {
                (1u32 << (width - 16)) as u16 - 1
            } else {
                0
            };
            let mut acc = [[_mm512_setzero_ps(); 2]; R];
            // the first pass over the columns also forms `W x`
            let with_x = c0 == 0;
            let mut p = [_mm256_setzero_ps(); R];
            let step = |acc: &mut [[__m512; 2]; R], j: usize| {
                let tj = t.add(j * o.t_rs + c0);
                let (t0, t1) = (
                    _mm512_maskz_loadu_ps(m0, tj),
                    // past the row's end when masked off entirely: never dereferenced
                    _mm512_maskz_loadu_ps(m1, tj.wrapping_add(16)),
                );
                for (r, a) in acc.iter_mut().enumerate() {
                    let b = _mm512_set1_ps(*row(r).add(j));
                    a[0] = _mm512_fmadd_ps(b, t0, a[0]);
                    a[1] = _mm512_fmadd_ps(b, t1, a[1]);
                }
            };
            let mut j = 0;
            // the next panel's rows, fetched while this one computes (one line of each row
            // per sixteen columns), so that its first pass does not wait on memory
            let next = w.wrapping_add(R * o.w_rs);
            while j < k8 {
                if with_x {
                    if j % 16 == 0 {
                        for r in 0..R {
                            let line = next.wrapping_add(r * o.w_rs + j);
                            _mm_prefetch::<_MM_HINT_T0>(line.cast());
                        }
                    }
                    let xv = _mm256_loadu_ps(x.add(j));
                    for (r, pr) in p.iter_mut().enumerate() {
                        *pr = _mm256_fmadd_ps(_mm256_loadu_ps(row(r).add(j)), xv, *pr);
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
                _mm512_mask_storeu_ps(out, m0, a[0]);
                _mm512_mask_storeu_ps(out.wrapping_add(16), m1, a[1]);
            }
            if with_x {
                for (r, pr) in p.iter().enumerate() {
                    let mut lanes = [0f32; 8];
                    _mm256_storeu_ps(lanes.as_mut_ptr(), *pr);
                    let mut s = tree(&lanes);
                    for jj in k8..k {
                        s = (*row(r).add(jj)).mul_add(*x.add(jj), s);
                    }
                    px[r] = s;
                }
            }
            c0 += COLS;
        }
    }
}
