//! Matrix-vector products (and dot products) of f32 and f64, with one summation order that
//! does not depend on how the matrix is laid out.
//!
//! `out[i] = Σ_j a[i, j] v[j]` is defined, for every `i`, as eight partial sums
//! `p_l = Σ_{j ≡ l (mod 8), j < k₈}` accumulated in increasing `j` (`k₈` is `k` rounded
//! down to a multiple of 8), combined as `((p₀+p₄)+(p₂+p₆)) + ((p₁+p₅)+(p₃+p₇))`, and then
//! the last `k - k₈` terms added one by one in increasing `j`. Each step `s ← s + a·v` is a
//! fused multiply-add where the CPU has one (x86-64 with AVX2 and FMA, detected at run time),
//! a multiply then an add otherwise; so on a given machine the result is one exact function
//! of the operands, whatever the build flags (a plain `cargo build` gets the AVX2 + FMA
//! kernels too).
//!
//! The reference evaluator defines `dot_general` with a vector operand (and at least
//! [`MIN_TERMS`] terms per output) by this function and the CPU plans run it on the
//! operands' own strides, so the two agree bit for bit on every layout: rows of `a`
//! contiguous (the row form: four rows at a time, a vector of eight partial sums per row) or
//! columns contiguous (the column form: sixteen, then eight outputs at a time, their eight
//! partial sums kept in registers while the columns stream past; or, for a large matrix of
//! at most a few hundred outputs, the matrix's rows streamed once with every output's
//! partial sums in a buffer in L1); any other layout gathers each row first. Every form
//! performs, for every output, exactly the operations of the definition, in its order (they
//! differ only in which outputs share a vector register and where partial sums wait).

use std::ops::{Add, Mul};

use crate::ir::Data;

#[cfg(target_arch = "x86_64")]
mod avx;

/// The float types the products are written for.
pub(crate) trait MvFloat: Copy + Default + Add<Output = Self> + Mul<Output = Self> {
    /// `a * b + c` rounded once.
    fn fused(a: Self, b: Self, c: Self) -> Self;
    /// The product with AVX2 and FMA vectors.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA; `v` has `a.cols` elements, `out` `a.rows`.
    #[cfg(target_arch = "x86_64")]
    unsafe fn matvec_fma(a: Strided<'_, Self>, v: &[Self], out: &mut [Self]);
    /// Two row-form products by one matrix (rows contiguous) with AVX2 and FMA vectors.
    ///
    /// # Safety
    /// As [`MvFloat::matvec_fma`], for both vectors and outputs; `a.col_stride` is 1.
    #[cfg(target_arch = "x86_64")]
    unsafe fn matvec2_fma(a: Strided<'_, Self>, v: [&[Self]; 2], out: [&mut [Self]; 2]);
}

impl MvFloat for f32 {
    #[inline(always)]
    fn fused(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
    #[cfg(target_arch = "x86_64")]
    unsafe fn matvec_fma(a: Strided<'_, f32>, v: &[f32], out: &mut [f32]) {
        avx::layout(a, v, out)
    }
    #[cfg(target_arch = "x86_64")]
    unsafe fn matvec2_fma(a: Strided<'_, f32>, v: [&[f32]; 2], out: [&mut [f32]; 2]) {
        avx::rows2(a.data, a.row_stride, (a.rows, a.cols), v, out)
    }
}

impl MvFloat for f64 {
    #[inline(always)]
    fn fused(a: f64, b: f64, c: f64) -> f64 {
        a.mul_add(b, c)
    }
    #[cfg(target_arch = "x86_64")]
    unsafe fn matvec_fma(a: Strided<'_, f64>, v: &[f64], out: &mut [f64]) {
        avx::layout(a, v, out)
    }
    #[cfg(target_arch = "x86_64")]
    unsafe fn matvec2_fma(a: Strided<'_, f64>, v: [&[f64]; 2], out: [&mut [f64]; 2]) {
        avx::rows2(a.data, a.row_stride, (a.rows, a.cols), v, out)
    }
}

/// A matrix in a buffer: element `(i, j)` is `data[i * row_stride + j * col_stride]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Strided<'a, T> {
    pub data: &'a [T],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

/// Whether the fused multiply-add route runs on this machine.
pub(crate) fn fused_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `out[i] = Σ_j a[i, j] · v[j * v_stride]` for `i < a.rows`, in the order of the module doc
/// (`out` is overwritten). Panics if a buffer is too short for the shapes and strides given
/// (callers check them; a short buffer is a bug).
pub(crate) fn matvec<T: MvFloat>(a: Strided<'_, T>, v: &[T], v_stride: usize, out: &mut [T]) {
    let (m, k) = (a.rows, a.cols);
    let out = &mut out[..m];
    if m == 0 {
        return;
    }
    let gathered: Vec<T>;
    let v = if v_stride == 1 || k <= 1 {
        &v[..k]
    } else {
        gathered = (0..k).map(|j| v[j * v_stride]).collect();
        &gathered
    };
    #[cfg(target_arch = "x86_64")]
    if fused_available() {
        // SAFETY: the CPU has AVX2 and FMA (checked just above); `v` has `k` elements
        // and `out` `m`.
        unsafe { T::matvec_fma(a, v, out) };
        return;
    }
    layout::<T, false>(a, v, out);
}

/// [`matvec`] of one matrix by two vectors (of the same stride), the same bits as two calls;
/// where the matrix's rows are contiguous and the CPU has AVX2 and FMA, each block of rows is
/// multiplied by the second vector right after the first, while it is in the L1 cache (a
/// matrix too large for the cache then streams from memory once, not twice).
pub(crate) fn matvec2<T: MvFloat>(
    a: Strided<'_, T>,
    v: [&[T]; 2],
    v_stride: usize,
    out: [&mut [T]; 2],
) {
    #[cfg(target_arch = "x86_64")]
    if fused_available() && a.col_stride == 1 && v_stride == 1 && a.rows > 0 {
        let k = a.cols;
        // SAFETY: the CPU has AVX2 and FMA (checked just above); the rows are contiguous;
        // `rows2` checks that the vectors and outputs hold `k` and `m` elements.
        unsafe { T::matvec2_fma(a, [&v[0][..k], &v[1][..k]], out) };
        return;
    }
    let [o0, o1] = out;
    matvec(a, v[0], v_stride, o0);
    matvec(a, v[1], v_stride, o1);
}

#[inline(always)]
fn madd<T: MvFloat, const FMA: bool>(a: T, b: T, c: T) -> T {
    if FMA {
        T::fused(a, b, c)
    } else {
        a * b + c
    }
}

/// The combination of the eight partial sums.
#[inline(always)]
pub(crate) fn tree<T: MvFloat>(p: &[T; 8]) -> T {
    ((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7]))
}

/// Picks the form for the layout (`v` is contiguous, of length `a.cols`).
#[inline(always)]
fn layout<T: MvFloat, const FMA: bool>(a: Strided<'_, T>, v: &[T], out: &mut [T]) {
    let (m, k) = (a.rows, a.cols);
    if a.col_stride == 1 || k <= 1 {
        rows::<T, FMA>(a.data, a.row_stride, m, k, v, out);
    } else if a.row_stride == 1 || m <= 1 {
        columns::<T, FMA>(a.data, a.col_stride, m, k, v, out);
    } else {
        let mut row = vec![T::default(); k];
        for (i, o) in out.iter_mut().enumerate() {
            for (j, r) in row.iter_mut().enumerate() {
                *r = a.data[i * a.row_stride + j * a.col_stride];
            }
            rows::<T, FMA>(&row, k, 1, k, v, std::slice::from_mut(o));
        }
    }
}

/// `p[l] += a[l] * v[l]` for the eight lanes.
#[inline(always)]
fn lanes<T: MvFloat, const FMA: bool>(p: &mut [T; 8], a: &[T; 8], v: &[T; 8]) {
    for l in 0..8 {
        p[l] = madd::<T, FMA>(a[l], v[l], p[l]);
    }
}

/// One output from its eight partial sums and its row (for the last terms).
#[inline(always)]
fn finish<T: MvFloat, const FMA: bool>(p: &[T; 8], row: &[T], v: &[T], k8: usize) -> T {
    let mut s = tree(p);
    for (&x, &y) in row[k8..].iter().zip(&v[k8..]) {
        s = madd::<T, FMA>(x, y, s);
    }
    s
}

/// The row form: row `i` is `data[i * rs..][..k]`.
#[inline(always)]
fn rows<T: MvFloat, const FMA: bool>(
    data: &[T],
    rs: usize,
    m: usize,
    k: usize,
    v: &[T],
    out: &mut [T],
) {
    let k8 = k - k % 8;
    let row = |i: usize| &data[i * rs..i * rs + k];
    let mut i = 0;
    while i + 4 <= m {
        let (r0, r1, r2, r3) = (row(i), row(i + 1), row(i + 2), row(i + 3));
        let mut p = [[T::default(); 8]; 4];
        for c in (0..k8).step_by(8) {
            let vc: &[T; 8] = v[c..c + 8].try_into().expect("8 elements");
            // one row at a time: each loop is one vector operation
            for (pq, r) in p.iter_mut().zip([r0, r1, r2, r3]) {
                lanes::<T, FMA>(pq, r[c..c + 8].try_into().expect("8 elements"), vc);
            }
        }
        for (q, r) in [r0, r1, r2, r3].into_iter().enumerate() {
            out[i + q] = finish::<T, FMA>(&p[q], r, v, k8);
        }
        i += 4;
    }
    for (i, o) in out.iter_mut().enumerate().take(m).skip(i) {
        let r = row(i);
        let mut p = [T::default(); 8];
        for c in (0..k8).step_by(8) {
            let vc: &[T; 8] = v[c..c + 8].try_into().expect("8 elements");
            lanes::<T, FMA>(&mut p, r[c..c + 8].try_into().expect("8 elements"), vc);
        }
        *o = finish::<T, FMA>(&p, r, v, k8);
    }
}

/// The column form: element `(i, j)` is `data[i + j * cs]`.
#[inline(always)]
fn columns<T: MvFloat, const FMA: bool>(
    data: &[T],
    cs: usize,
    m: usize,
    k: usize,
    v: &[T],
    out: &mut [T],
) {
    let k8 = k - k % 8;
    let mut i0 = 0;
    // eight outputs at a time: p[l][q] is partial sum l of output i0 + q
    while i0 + 8 <= m {
        let mut p = [[T::default(); 8]; 8];
        for c in (0..k8).step_by(8) {
            for (l, pl) in p.iter_mut().enumerate() {
                let j = c + l;
                let col: &[T; 8] = data[i0 + j * cs..][..8].try_into().expect("8 elements");
                lanes::<T, FMA>(pl, col, &[v[j]; 8]);
            }
        }
        let mut s = [T::default(); 8];
        for (q, s) in s.iter_mut().enumerate() {
            *s = tree(&[
                p[0][q], p[1][q], p[2][q], p[3][q], p[4][q], p[5][q], p[6][q], p[7][q],
            ]);
        }
        for (j, &x) in v.iter().enumerate().skip(k8) {
            let col = &data[i0 + j * cs..i0 + j * cs + 8];
            for q in 0..8 {
                s[q] = madd::<T, FMA>(col[q], x, s[q]);
            }
        }
        out[i0..i0 + 8].copy_from_slice(&s);
        i0 += 8;
    }
    for (i, o) in out.iter_mut().enumerate().take(m).skip(i0) {
        let mut p = [T::default(); 8];
        for c in (0..k8).step_by(8) {
            for l in 0..8 {
                p[l] = madd::<T, FMA>(data[i + (c + l) * cs], v[c + l], p[l]);
            }
        }
        let mut s = tree(&p);
        for (j, &x) in v.iter().enumerate().skip(k8) {
            s = madd::<T, FMA>(data[i + j * cs], x, s);
        }
        *o = s;
    }
}

/// Terms per output from which a product with a vector is this module's: shorter ones stay
/// with `gemm`, which sums them in sequence in matrix-vector and matrix-matrix products
/// alike, so that a short product the optimizer moves out of a loop into one matrix product
/// (an input projection) still gives the reference evaluator's bits.
pub(crate) const MIN_TERMS: usize = 16;

/// Whether an `m×k` by `k×n` product is computed here (by both the reference evaluator and
/// the CPU plans, which must agree): one side a vector, and at least [`MIN_TERMS`] terms.
pub(crate) fn applies(m: usize, n: usize, k: usize) -> bool {
    (m == 1 || n == 1) && k >= MIN_TERMS
}

/// `[b, m, k] × [b, k, n]` on contiguous float buffers when `m` or `n` is 1 (a batch of
/// matrix-vector products, or of vector-matrix products taken as products by the transpose),
/// by [`matvec`]; `None` for other shapes and dtypes.
pub(crate) fn batched(l: &Data, r: &Data, b: usize, m: usize, k: usize, n: usize) -> Option<Data> {
    fn go<T: MvFloat>(l: &[T], r: &[T], b: usize, m: usize, k: usize, n: usize) -> Vec<T> {
        let mut out = vec![T::default(); b * m * n];
        for bi in 0..b {
            let (l, r) = (&l[bi * m * k..][..m * k], &r[bi * k * n..][..k * n]);
            let o = &mut out[bi * m * n..][..m * n];
            if n == 1 {
                let a = Strided {
                    data: l,
                    rows: m,
                    cols: k,
                    row_stride: k,
                    col_stride: 1,
                };
                matvec(a, r, 1, o);
            } else {
                let a = Strided {
                    data: r,
                    rows: n,
                    cols: k,
                    row_stride: 1,
                    col_stride: n,
                };
                matvec(a, l, 1, o);
            }
        }
        out
    }
    if !applies(m, n, k) {
        return None;
    }
    match (l, r) {
        (Data::F32(l), Data::F32(r)) => Some(Data::F32(go(l, r, b, m, k, n))),
        (Data::F64(l), Data::F64(r)) => Some(Data::F64(go(l, r, b, m, k, n))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, written out for one output at a time (with the indices it names),
    /// with fused or separate multiply-adds.
    #[allow(clippy::needless_range_loop)]
    fn defined<T: MvFloat>(
        a: &dyn Fn(usize, usize) -> T,
        m: usize,
        k: usize,
        v: &[T],
        fma: bool,
    ) -> Vec<T> {
        let madd = |x: T, y: T, s: T| if fma { T::fused(x, y, s) } else { x * y + s };
        let k8 = k - k % 8;
        (0..m)
            .map(|i| {
                let mut p = [T::default(); 8];
                for j in 0..k8 {
                    p[j % 8] = madd(a(i, j), v[j], p[j % 8]);
                }
                let mut s = tree(&p);
                for j in k8..k {
                    s = madd(a(i, j), v[j], s);
                }
                s
            })
            .collect()
    }

    fn values(n: usize, seed: u64) -> Vec<f64> {
        // a small LCG: reproducible values in (-1, 1) with full mantissas
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
            })
            .collect()
    }

    /// On rows-contiguous, columns-contiguous and strided layouts, with a contiguous and a
    /// strided vector: the dispatching `matvec` (vector kernels on this machine when it has
    /// them) and both portable routes give the definition bit for bit.
    fn every_layout<T: MvFloat + std::fmt::Debug>(cast: fn(f64) -> T, bits: fn(T) -> u64) {
        let shapes = [
            (0, 3),
            (1, 0),
            (1, 1),
            (3, 5),
            (4, 8),
            (9, 17),
            (13, 64),
            (128, 128),
            (17, 1),
            (33, 20),
            (40, 3),
            (48, 131),
            // the column form streams the rows (`avx::columns_streamed`): outputs past a
            // multiple of eight, terms past a multiple of eight
            (161, 1003),
        ];
        let same = |x: &[T], y: &[T]| x.iter().zip(y).all(|(&p, &q)| bits(p) == bits(q));
        for (m, k) in shapes {
            let a: Vec<T> = values(m * k, (m * 31 + k) as u64)
                .into_iter()
                .map(cast)
                .collect();
            let v: Vec<T> = values(k, 7).into_iter().map(cast).collect();
            let at = |i: usize, j: usize| a[i * k + j];
            let want = defined(&at, m, k, &v, fused_available());
            let portable = [false, true].map(|fma| defined(&at, m, k, &v, fma));
            let nan = cast(f64::NAN);
            let transposed: Vec<T> = (0..k * m).map(|t| a[(t % m) * k + t / m]).collect();
            let wide: Vec<T> = (0..2 * m * k)
                .map(|t| if t % 2 == 0 { a[t / 2] } else { nan })
                .collect();
            for (data, row_stride, col_stride) in
                [(&a, k, 1), (&transposed, 1, m), (&wide, 2 * k, 2)]
            {
                let s = Strided {
                    data,
                    rows: m,
                    cols: k,
                    row_stride,
                    col_stride,
                };
                let mut out = vec![nan; m];
                matvec(s, &v, 1, &mut out);
                assert!(
                    same(&out, &want),
                    "{m}x{k} ({row_stride}, {col_stride}): {out:?} {want:?}"
                );
                layout::<T, false>(s, &v, &mut out);
                assert!(
                    same(&out, &portable[0]),
                    "portable {m}x{k} ({row_stride}, {col_stride})"
                );
                layout::<T, true>(s, &v, &mut out);
                assert!(same(&out, &portable[1]), "portable fused {m}x{k}");
            }
            // a strided vector
            let vs: Vec<T> = v.iter().flat_map(|&x| [x, nan, nan]).collect();
            let s = Strided {
                data: &a,
                rows: m,
                cols: k,
                row_stride: k,
                col_stride: 1,
            };
            let mut out = vec![nan; m];
            matvec(s, &vs, 3, &mut out);
            assert!(same(&out, &want), "strided vector {m}x{k}");
        }
    }

    #[test]
    fn every_layout_and_route_gives_the_definition_bit_for_bit() {
        every_layout::<f64>(|x| x, f64::to_bits);
        every_layout::<f32>(|x| x as f32, |x| x.to_bits() as u64);
    }

    #[test]
    fn f32_agrees_with_f64_sums_to_rounding() {
        let (m, k) = (37, 130);
        let a = values(m * k, 3);
        let v = values(k, 4);
        let (a32, v32): (Vec<f32>, Vec<f32>) = (
            a.iter().map(|&x| x as f32).collect(),
            v.iter().map(|&x| x as f32).collect(),
        );
        let mut out = vec![0f32; m];
        let s = Strided {
            data: &a32,
            rows: m,
            cols: k,
            row_stride: k,
            col_stride: 1,
        };
        matvec(s, &v32, 1, &mut out);
        for (i, &o) in out.iter().enumerate() {
            let exact: f64 = (0..k).map(|j| a32[i * k + j] as f64 * v32[j] as f64).sum();
            let bound: f64 = (0..k)
                .map(|j| (a32[i * k + j] as f64 * v32[j] as f64).abs())
                .sum();
            // k/8 + 3 roundings of partial sums at most, each within 2^-24 of the magnitudes
            assert!(
                (o as f64 - exact).abs() <= bound * 24.0 * f32::EPSILON as f64,
                "{o} {exact}"
            );
        }
    }
}
