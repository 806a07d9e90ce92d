//! Matrix products through `gemm`, reading operands with their own strides (no copies for
//! transposed layouts); products with a vector operand through `matvec` (the reference
//! evaluator's summation order, on any layout).

use crate::backend::cpu::buffers;
use crate::backend::cpu::math::threads;
use crate::backend::reference::matvec::{applies, matvec, matvec2, MvFloat, Strided};
use crate::ir::{Array, Aval, DType, Data, Error, Primitive, Result};

/// The `dot_general` of 1-d/2-d operands with one contracted dimension each, or the outer
/// product of two vectors (the layouts `dispatch::kernel` gives `Kernel::Matmul`), through
/// `gemm` with the operands' own strides.
pub(crate) fn strided_matmul(l: &Array, r: &Array, prim: &Primitive, out: &Aval) -> Result<Array> {
    let ((m, k, lrs, lcs), (n, rrs, rcs)) = matrix_layout(l, r, prim)?;
    let flops = m.saturating_mul(n).saturating_mul(k);
    let par = if flops >= (1 << 18) && threads() > 1 {
        gemm::Parallelism::Rayon(threads())
    } else {
        gemm::Parallelism::None
    };
    macro_rules! go {
        ($t:ty, $variant:ident) => {{
            let (a, b) = (l.as_slice::<$t>()?, r.as_slice::<$t>()?);
            // gemm reads through raw pointers: the strided matrices must lie in the buffers
            if !within(a.len(), m, k, lrs, lcs) || !within(b.len(), k, n, rrs, rcs) {
                return Err(Error::internal(format!(
                    "dot_general: operands of {} and {} elements do not hold {m}x{k} and {k}x{n} matrices",
                    a.len(),
                    b.len()
                )));
            }
            // not zeroed: `gemm` overwrites every element (a pass over memory saved); the
            // other routes zero it first
            let mut dst = buffers::with_capacity::<$t>(m * n).map_err(|_| {
                Error::exhausted(
                    prim.name(),
                    format!("cannot allocate {} bytes for a value of {out}", out.bytes()),
                )
            })?;
            if applies(m, n, k) || k == 0 {
                dst.resize(m * n, 0 as $t);
            }
            if applies(m, n, k) {
                vector_product(((m, k, lrs, lcs), (n, rrs, rcs)), a, b, &mut dst);
            } else if k > 0 {
                // SAFETY: a is m×k with strides (lrs, lcs), b is k×n with (rrs, rcs), both
                // checked above to lie within their buffers; dst has capacity for a contiguous
                // m×n matrix, written through a raw pointer; alpha = 0 with read_dst = false
                // overwrites every element, so the length can then cover them.
                unsafe {
                    gemm::gemm(
                        m,
                        n,
                        k,
                        dst.spare_capacity_mut().as_mut_ptr().cast::<$t>(),
                        1,
                        n as isize,
                        false,
                        a.as_ptr(),
                        lcs,
                        lrs,
                        b.as_ptr(),
                        rcs,
                        rrs,
                        0 as $t,
                        1 as $t,
                        false,
                        false,
                        false,
                        par,
                    );
                    dst.set_len(m * n);
                }
            }
            Data::$variant(dst)
        }};
    }
    let data = match out.dtype {
        DType::F32 => go!(f32, F32),
        DType::F64 => go!(f64, F64),
        _ => {
            return Err(Error::internal(format!(
                "`{prim}` of {} and {} is not a float matrix product",
                l.aval(),
                r.aval()
            )))
        }
    };
    Array::from_data(data, &out.shape)
}

/// A product with a vector operand (the layouts where [`applies`] holds) into `out`, by
/// [`matvec`] as the reference evaluator computes it: a matrix (or a row) times a vector, or
/// a vector times a matrix taken as the matrix's transpose times the vector.
pub(crate) fn vector_product<T: MvFloat>(layout: Layout, a: &[T], b: &[T], out: &mut [T]) {
    let (left, (n, rrs, rcs)) = layout;
    let (k, lcs) = (left.1, left.3);
    if n == 1 {
        matvec(left_matrix(a, left), b, rrs as usize, out);
    } else {
        let t = Strided {
            data: b,
            rows: n,
            cols: k,
            row_stride: rcs as usize,
            col_stride: rrs as usize,
        };
        matvec(t, a, lcs as usize, out);
    }
}

/// Two products of one matrix (the left operand) by a vector each, of a layout where
/// [`applies`] holds with one column (`n = 1`), by [`matvec2`]: the bits of two
/// [`vector_product`]s, reading the matrix once where its rows are contiguous.
pub(crate) fn vector_product_pair<T: MvFloat>(
    layout: Layout,
    a: &[T],
    v: [&[T]; 2],
    out: [&mut [T]; 2],
) {
    let (left, (_, rrs, _)) = layout;
    matvec2(left_matrix(a, left), v, rrs as usize, out);
}

/// The left operand of a product of this layout as a strided matrix.
fn left_matrix<T>(data: &[T], (m, k, lrs, lcs): (usize, usize, isize, isize)) -> Strided<'_, T> {
    Strided {
        data,
        rows: m,
        cols: k,
        row_stride: lrs as usize,
        col_stride: lcs as usize,
    }
}

/// The operands of a `dot_general` as an m×k and a k×n matrix: (m, k, row stride, column
/// stride) of the left and (n, row stride, column stride) of the right.
pub(crate) type Layout = ((usize, usize, isize, isize), (usize, isize, isize));

fn matrix_layout(l: &Array, r: &Array, prim: &Primitive) -> Result<Layout> {
    layout_of(l.shape(), r.shape(), prim).ok_or_else(|| {
        Error::internal(format!(
            "`{prim}` of {} and {} is not a matrix product layout",
            l.aval(),
            r.aval()
        ))
    })
}

/// [`matrix_layout`] from the operands' shapes (known when a plan is made); `None` for a
/// product of another layout.
pub(crate) fn layout_of(l: &[usize], r: &[usize], prim: &Primitive) -> Option<Layout> {
    let Primitive::DotGeneral {
        lhs_contracting,
        rhs_contracting,
        ..
    } = prim
    else {
        return None;
    };
    // lhs as m×k with (row stride, col stride), rhs as k×n
    Some(match (&lhs_contracting[..], &rhs_contracting[..]) {
        // the outer product of two vectors: k = 1, each element one product, as the
        // reference evaluator's
        ([], []) if l.len() == 1 && r.len() == 1 => {
            ((l[0], 1, 1isize, 0isize), (r[0], 0isize, 1isize))
        }
        (&[lc], &[rc]) => (
            match (l.len(), lc) {
                (1, 0) => (1, l[0], 0isize, 1isize),
                (2, 1) => (l[0], l[1], l[1] as isize, 1),
                (2, 0) => (l[1], l[0], 1, l[1] as isize),
                _ => return None,
            },
            match (r.len(), rc) {
                (1, 0) => (1, 1isize, 0isize),
                (2, 0) => (r[1], r[1] as isize, 1),
                (2, 1) => (r[0], 1, r[1] as isize),
                _ => return None,
            },
        ),
        _ => return None,
    })
}

/// Two products of one matrix by a vector each (`l · r0` and `l · r1`, both of `prim`, the
/// products a jvp or a linearized program makes with one weight matrix), each row of the
/// matrix read once for both: the bits of two [`strided_matmul`] calls. `None` when the
/// layout is not a matrix times a vector in `matvec`'s range (the caller runs them apart).
pub(crate) fn strided_matvec_pair(
    l: &Array,
    r: [&Array; 2],
    prim: &Primitive,
    out: &Aval,
) -> Result<Option<[Array; 2]>> {
    let ((m, k, lrs, lcs), (n, rrs, _)) = matrix_layout(l, r[0], prim)?;
    if n != 1 || !applies(m, n, k) || r[1].aval() != r[0].aval() {
        return Ok(None);
    }
    macro_rules! go {
        ($t:ty, $variant:ident) => {{
            let (a, v0, v1) = (
                l.as_slice::<$t>()?,
                r[0].as_slice::<$t>()?,
                r[1].as_slice::<$t>()?,
            );
            let alloc = || {
                let mut v = buffers::with_capacity::<$t>(m).map_err(|_| {
                    Error::exhausted(
                        prim.name(),
                        format!("cannot allocate {} bytes for a value of {out}", out.bytes()),
                    )
                })?;
                v.resize(m, 0 as $t);
                Ok::<_, Error>(v)
            };
            let (mut d0, mut d1) = (alloc()?, alloc()?);
            vector_product_pair(
                ((m, k, lrs, lcs), (n, rrs, 0)),
                a,
                [v0, v1],
                [&mut d0, &mut d1],
            );
            [Data::$variant(d0), Data::$variant(d1)]
        }};
    }
    let [d0, d1] = match out.dtype {
        DType::F32 => go!(f32, F32),
        DType::F64 => go!(f64, F64),
        _ => return Ok(None),
    };
    Ok(Some([
        Array::from_data(d0, &out.shape)?,
        Array::from_data(d1, &out.shape)?,
    ]))
}

/// Whether a `rows`×`cols` matrix with the given (non-negative) element strides lies
/// within a buffer of `len` elements.
fn within(len: usize, rows: usize, cols: usize, row_stride: isize, col_stride: isize) -> bool {
    if rows == 0 || cols == 0 {
        return true;
    }
    let last = (rows - 1)
        .checked_mul(row_stride as usize)
        .and_then(|a| (cols - 1).checked_mul(col_stride as usize).map(|b| (a, b)))
        .and_then(|(a, b)| a.checked_add(b));
    row_stride >= 0 && col_stride >= 0 && last.is_some_and(|i| i < len)
}
