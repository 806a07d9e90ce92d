//! The AVX2 + FMA route: the same forms as the portable code, with explicit vectors (the
//! compiler's own vectorization of the portable loops shuffled lanes between rows).

use std::arch::x86_64::*;
use std::cell::Cell;

use super::{tree, MvFloat, Strided};

/// Eight lanes of partial sums.
pub(super) trait Lanes: MvFloat {
    type P: Copy;
    /// Rows per block of the row form: as many as keep one partial-sum chain per register
    /// pair within the sixteen vector registers.
    const BLOCK: usize;
    unsafe fn zero() -> Self::P;
    /// Eight elements from `p`.
    unsafe fn load(p: *const Self) -> Self::P;
    unsafe fn splat(x: Self) -> Self::P;
    /// `a * b + c`, rounded once per lane.
    unsafe fn fmadd(a: Self::P, b: Self::P, c: Self::P) -> Self::P;
    unsafe fn vadd(a: Self::P, b: Self::P) -> Self::P;
    /// Eight elements to `p`.
    unsafe fn store(p: *mut Self, v: Self::P);
}

impl Lanes for f32 {
    type P = __m256;
    const BLOCK: usize = 8;
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn zero() -> __m256 {
        _mm256_setzero_ps()
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn load(p: *const f32) -> __m256 {
        _mm256_loadu_ps(p)
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn splat(x: f32) -> __m256 {
        _mm256_set1_ps(x)
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn fmadd(a: __m256, b: __m256, c: __m256) -> __m256 {
        _mm256_fmadd_ps(a, b, c)
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn vadd(a: __m256, b: __m256) -> __m256 {
        _mm256_add_ps(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn store(p: *mut f32, v: __m256) {
        _mm256_storeu_ps(p, v)
    }
}

impl Lanes for f64 {
    type P = (__m256d, __m256d);
    const BLOCK: usize = 4;
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn zero() -> Self::P {
        (_mm256_setzero_pd(), _mm256_setzero_pd())
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn load(p: *const f64) -> Self::P {
        (_mm256_loadu_pd(p), _mm256_loadu_pd(p.add(4)))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn splat(x: f64) -> Self::P {
        (_mm256_set1_pd(x), _mm256_set1_pd(x))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn fmadd(a: Self::P, b: Self::P, c: Self::P) -> Self::P {
        (
            _mm256_fmadd_pd(a.0, b.0, c.0),
            _mm256_fmadd_pd(a.1, b.1, c.1),
        )
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn vadd(a: Self::P, b: Self::P) -> Self::P {
        (_mm256_add_pd(a.0, b.0), _mm256_add_pd(a.1, b.1))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn store(p: *mut f64, v: Self::P) {
        _mm256_storeu_pd(p, v.0);
        _mm256_storeu_pd(p.add(4), v.1);
    }
}

/// Picks the form for the layout, as the portable `layout` does.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn layout<T: Lanes>(a: Strided<'_, T>, v: &[T], out: &mut [T]) {
    let (m, k) = (a.rows, a.cols);
    if a.col_stride == 1 || k <= 1 {
        rows(a.data, a.row_stride, m, k, v, out);
    } else if (a.row_stride == 1 || m <= 1) && streams(m, k, std::mem::size_of::<T>()) {
        columns_streamed(a.data, a.col_stride, m, k, v, out);
    } else if a.row_stride == 1 || m <= 1 {
        columns(a.data, a.col_stride, m, k, v, out);
    } else {
        let mut row = vec![T::default(); k];
        for (i, o) in out.iter_mut().enumerate().take(m) {
            for (j, r) in row.iter_mut().enumerate() {
                *r = a.data[i * a.row_stride + j * a.col_stride];
            }
            rows(&row, k, 1, k, v, std::slice::from_mut(o));
        }
    }
}

/// One output of the row form from its partial sums.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn finish<T: Lanes>(p: T::P, row: &[T], v: &[T], k8: usize) -> T {
    let mut lanes = [T::default(); 8];
    T::store(lanes.as_mut_ptr(), p);
    let mut s = tree(&lanes);
    for (&x, &y) in row[k8..].iter().zip(&v[k8..]) {
        s = T::fused(x, y, s);
    }
    s
}

/// The row form: row `i` is `data[i * rs..][..k]`. Rows go in blocks whose partial-sum
/// vectors are independent chains of fused multiply-adds (eight for f32, one register each;
/// four for f64, two registers each), enough to keep both FMA units busy whatever the
/// build's scheduling model unrolls.
#[target_feature(enable = "avx2,fma")]
unsafe fn rows<T: Lanes>(data: &[T], rs: usize, m: usize, k: usize, v: &[T], out: &mut [T]) {
    if m == 0 {
        return;
    }
    assert!((m - 1) * rs + k <= data.len() && k <= v.len() && m <= out.len());
    let k8 = k - k % 8;
    let blocks = m / T::BLOCK;
    let whole = |j: usize| {
        if T::BLOCK == 8 {
            block::<T, 8>(data, rs, j * 8, k, v, out)
        } else {
            block::<T, 4>(data, rs, j * 4, k, v, out)
        }
    };
    if blocks > 1 && backwards(data.as_ptr().cast()) {
        (0..blocks).rev().for_each(whole);
    } else {
        (0..blocks).for_each(whole);
    }
    let mut i = blocks * T::BLOCK;
    while i + 4 <= m {
        block::<T, 4>(data, rs, i, k, v, out);
        i += 4;
    }
    let vp = v.as_ptr();
    while i < m {
        let r = data.as_ptr().add(i * rs);
        let mut p = T::zero();
        let mut c = 0;
        while c < k8 {
            p = T::fmadd(T::load(r.add(c)), T::load(vp.add(c)), p);
            c += 8;
        }
        out[i] = finish(p, &data[i * rs..i * rs + k], v, k8);
        i += 1;
    }
}

/// Whether this call of the row form on the matrix at `data` visits its blocks from the
/// last one: successive calls on a thread with one matrix alternate. A matrix somewhat
/// larger than the L1 cache multiplied again and again (an RNN's 128×128 f32 weights, once
/// per step of a scan) then finds the rows the last call read last still in L1, instead of
/// every row evicted before it is read again (10% off such a scan's step measured). The
/// directions are kept per matrix (four per thread, by address) so that a loop multiplying
/// two matrices alternates on each. The outputs are the same either way: each block
/// computes its own rows alone, in the order of the module doc.
fn backwards(data: *const u8) -> bool {
    thread_local!(static LAST: Cell<[(usize, bool); 4]> = const { Cell::new([(0, false); 4]) });
    let key = data as usize;
    LAST.with(|last| {
        let mut seen = last.get();
        let slot = (key >> 6) % seen.len();
        let back = seen[slot].0 == key && !seen[slot].1;
        seen[slot] = (key, back);
        last.set(seen);
        back
    })
}

/// Outputs `i..i + N` of the row form (the caller checked the bounds).
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn block<T: Lanes, const N: usize>(
    data: &[T],
    rs: usize,
    i: usize,
    k: usize,
    v: &[T],
    out: &mut [T],
) {
    let k8 = k - k % 8;
    let (d, vp) = (data.as_ptr(), v.as_ptr());
    let mut p = [T::zero(); N];
    let mut c = 0;
    while c < k8 {
        let vc = T::load(vp.add(c));
        for (q, pq) in p.iter_mut().enumerate() {
            *pq = T::fmadd(T::load(d.add((i + q) * rs + c)), vc, *pq);
        }
        c += 8;
    }
    for (q, &pq) in p.iter().enumerate() {
        let r = (i + q) * rs;
        out[i + q] = finish(pq, &data[r..r + k], v, k8);
    }
}

/// The row form of one matrix by two vectors: each block of rows (eight for f32, 16 KiB of
/// 512-float rows) is multiplied by the first vector and then, while it is in the L1 cache,
/// by the second, so the matrix streams from memory once. Every output is computed by the
/// very code `rows` runs for it (a product by the same matrix in a jvp or a linearized
/// program, where XLA merges the two dots).
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn rows2<T: Lanes>(
    data: &[T],
    rs: usize,
    (m, k): (usize, usize),
    v: [&[T]; 2],
    out: [&mut [T]; 2],
) {
    if m == 0 {
        return;
    }
    assert!((m - 1) * rs + k <= data.len() && k <= v[0].len() && k <= v[1].len());
    assert!(m <= out[0].len() && m <= out[1].len());
    let [o0, o1] = out;
    let mut i = 0;
    if T::BLOCK == 8 {
        while i + 8 <= m {
            block::<T, 8>(data, rs, i, k, v[0], o0);
            block::<T, 8>(data, rs, i, k, v[1], o1);
            i += 8;
        }
    }
    while i + 4 <= m {
        block::<T, 4>(data, rs, i, k, v[0], o0);
        block::<T, 4>(data, rs, i, k, v[1], o1);
        i += 4;
    }
    if i < m {
        // the last rows, one at a time as `rows` takes them
        let rest = &data[i * rs..];
        rows(rest, rs, m - i, k, v[0], &mut o0[i..]);
        rows(rest, rs, m - i, k, v[1], &mut o1[i..]);
    }
}

/// Whether `data.len()` elements hold the column form's `m` outputs by `k` terms at column
/// stride `cs` (the last element read is `m - 1 + (k - 1) * cs`); the product is checked, so
/// no stride can wrap past the check.
fn columns_fit(len: usize, cs: usize, m: usize, k: usize) -> bool {
    k == 0
        || (k - 1)
            .checked_mul(cs)
            .and_then(|e| e.checked_add(m))
            .is_some_and(|end| end <= len)
}

/// The column form: element `(i, j)` is `data[i + j * cs]`.
#[target_feature(enable = "avx2,fma")]
unsafe fn columns<T: Lanes>(data: &[T], cs: usize, m: usize, k: usize, v: &[T], out: &mut [T]) {
    if m == 0 {
        return;
    }
    assert!(columns_fit(data.len(), cs, m, k) && k <= v.len() && m <= out.len());
    let k8 = k - k % 8;
    let d = data.as_ptr();
    let mut i0 = 0;
    // sixteen outputs at a time (whole cache lines of each column for f32): p[l] and
    // q[l] hold partial sum l of outputs i0..i0 + 8 and i0 + 8..i0 + 16
    while i0 + 16 <= m {
        let (mut p, mut q) = ([T::zero(); 8], [T::zero(); 8]);
        let mut c = 0;
        while c < k8 {
            for l in 0..8 {
                let j = c + l;
                let x = T::splat(v[j]);
                let col = d.add(i0 + j * cs);
                p[l] = T::fmadd(T::load(col), x, p[l]);
                q[l] = T::fmadd(T::load(col.add(8)), x, q[l]);
            }
            c += 8;
        }
        for (h, p) in [p, q].iter().enumerate() {
            let mut s = T::vadd(
                T::vadd(T::vadd(p[0], p[4]), T::vadd(p[2], p[6])),
                T::vadd(T::vadd(p[1], p[5]), T::vadd(p[3], p[7])),
            );
            for (j, &x) in v.iter().enumerate().take(k).skip(k8) {
                s = T::fmadd(T::load(d.add(i0 + 8 * h + j * cs)), T::splat(x), s);
            }
            T::store(out.as_mut_ptr().add(i0 + 8 * h), s);
        }
        i0 += 16;
    }
    // then eight at a time: p[l] holds partial sum l of outputs i0..i0 + 8
    while i0 + 8 <= m {
        let mut p = [T::zero(); 8];
        let mut c = 0;
        while c < k8 {
            for (l, pl) in p.iter_mut().enumerate() {
                let j = c + l;
                *pl = T::fmadd(T::load(d.add(i0 + j * cs)), T::splat(v[j]), *pl);
            }
            c += 8;
        }
        let mut s = T::vadd(
            T::vadd(T::vadd(p[0], p[4]), T::vadd(p[2], p[6])),
            T::vadd(T::vadd(p[1], p[5]), T::vadd(p[3], p[7])),
        );
        for (j, &x) in v.iter().enumerate().take(k).skip(k8) {
            s = T::fmadd(T::load(d.add(i0 + j * cs)), T::splat(x), s);
        }
        T::store(out.as_mut_ptr().add(i0), s);
        i0 += 8;
    }
    for (i, o) in out.iter_mut().enumerate().take(m).skip(i0) {
        let mut p = [T::default(); 8];
        for c in (0..k8).step_by(8) {
            for (l, pl) in p.iter_mut().enumerate() {
                *pl = T::fused(data[i + (c + l) * cs], v[c + l], *pl);
            }
        }
        let mut s = tree(&p);
        for (j, &x) in v.iter().enumerate().take(k).skip(k8) {
            s = T::fused(data[i + j * cs], x, s);
        }
        *o = s;
    }
}

/// Whether the column form streams the matrix's rows (`columns_streamed`): at least 128
/// outputs, few enough that their eight partial sums fit in 16 KiB (the L1 cache keeps
/// them), and a matrix of at least 128 Ki elements. Measured (f32, one thread, a jitted
/// `v · A` of A's rows contiguous): 4096 × 300 went from 109 to 83 µs, 512 × 512 from 59 to
/// 20, 16384 × 256 from 1586 to 505, 1024 × 128 from 10.4 to 9.4; smaller matrices, whose
/// rows the blocked form reads again from L1 or L2, were 10-20% slower streamed (128 × 256:
/// 3.3 against 4.0 µs), so they keep it. The blocked form reads each column block's rows
/// with the matrix's row stride, one cache line and often one page per row, over all the
/// rows again for every block of sixteen outputs.
fn streams(m: usize, k: usize, size: usize) -> bool {
    (128..=(16 << 10) / (8 * size)).contains(&m) && m.saturating_mul(k) >= 1 << 17
}

/// The column form for few outputs and many terms: the matrix's rows (of the outputs,
/// contiguous: element `(i, j)` is `data[i + j * cs]`) stream past once, term `j` added to
/// partial sum `j mod 8` of every output in a buffer of `8 × m` that stays in the L1 cache;
/// the same operations per output as the definition (each partial sum in increasing `j`,
/// then the tree, then the tail), so the same bits as [`columns`].
#[target_feature(enable = "avx2,fma")]
unsafe fn columns_streamed<T: Lanes>(
    data: &[T],
    cs: usize,
    m: usize,
    k: usize,
    v: &[T],
    out: &mut [T],
) {
    assert!(columns_fit(data.len(), cs, m, k) && k <= v.len() && m <= out.len());
    let k8 = k - k % 8;
    let m8 = m - m % 8;
    // partial sum l of output i at p[l * m + i]
    let mut p = vec![T::default(); 8 * m];
    let (d, pp) = (data.as_ptr(), p.as_mut_ptr());
    for (j, &x) in v.iter().enumerate().take(k8) {
        let (row, pl) = (d.add(j * cs), pp.add((j % 8) * m));
        let xv = T::splat(x);
        let mut i = 0;
        while i < m8 {
            T::store(
                pl.add(i),
                T::fmadd(T::load(row.add(i)), xv, T::load(pl.add(i))),
            );
            i += 8;
        }
        for i in m8..m {
            *pl.add(i) = T::fused(*row.add(i), x, *pl.add(i));
        }
    }
    for (i, o) in out.iter_mut().enumerate().take(m) {
        let lanes: [T; 8] = std::array::from_fn(|l| p[l * m + i]);
        let mut s = tree(&lanes);
        for (j, &x) in v.iter().enumerate().take(k).skip(k8) {
            s = T::fused(data[i + j * cs], x, s);
        }
        *o = s;
    }
}

#[cfg(test)]
mod tests {
    use super::columns_fit;

    /// The column form's bounds check counts the last element read, and a stride whose
    /// product would wrap around does not pass it.
    #[test]
    fn the_column_bounds_check_is_exact_and_never_wraps() {
        // 4 outputs, 3 terms, stride 3: the last element read is 3 + 2 * 3 = 9
        assert!(columns_fit(10, 3, 4, 3));
        assert!(!columns_fit(9, 3, 4, 3));
        assert!(columns_fit(0, 5, 4, 0));
        // 2 * (usize::MAX / 2 + 1) wraps to 0: unchecked, 4 <= len would pass
        assert!(!columns_fit(usize::MAX, usize::MAX / 2 + 1, 4, 3));
    }
}
