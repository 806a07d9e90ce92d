//! The reference kernels of the linear-algebra primitives, on `faer`.
//!
//! Each maps over the leading dimensions, one matrix at a time, in f64 (an f32 operand is
//! widened and its result rounded once). Failures are values, not errors, as in JAX: the
//! Cholesky factor of a matrix that is not positive definite is NaN, a singular solve gives
//! what LU with partial pivoting gives (infinities and NaNs), its log-determinant is -inf.
//! Triangular solves are plain substitution; eigenvectors are signed so that each one's
//! largest-magnitude entry is positive, which makes them a function of the matrix.

use faer::linalg::solvers::Solve;
use faer::{Mat, Side};

use crate::ir::{DType, Data, Primitive};

/// The operand's values as f64, and its matrices' `(rows, cols)` and count.
fn matrices_of(d: &Data, shape: &[usize]) -> (Vec<f64>, usize, usize, usize) {
    let r = shape.len();
    let (m, n) = (shape[r - 2], shape[r - 1]);
    let count = shape[..r - 2].iter().product();
    let v = match d {
        Data::F32(v) => v.iter().map(|&x| x as f64).collect(),
        Data::F64(v) => v.clone(),
        _ => unreachable!("the shape rule admits float operands only"),
    };
    (v, m, n, count)
}

fn to_dtype(v: Vec<f64>, dtype: DType) -> Data {
    match dtype {
        DType::F32 => Data::F32(v.iter().map(|&x| x as f32).collect()),
        _ => Data::F64(v),
    }
}

fn mat(v: &[f64], m: usize, n: usize) -> Mat<f64> {
    Mat::from_fn(m, n, |i, j| v[i * n + j])
}

/// The symmetric matrix whose lower triangle `v` holds.
fn symmetric_from_lower(v: &[f64], n: usize) -> Mat<f64> {
    Mat::from_fn(
        n,
        n,
        |i, j| if i >= j { v[i * n + j] } else { v[j * n + i] },
    )
}

fn push_rows(out: &mut Vec<f64>, a: faer::MatRef<'_, f64>) {
    for i in 0..a.nrows() {
        for j in 0..a.ncols() {
            out.push(a[(i, j)]);
        }
    }
}

/// A linear-algebra primitive on operands that passed its shape rule.
pub(super) fn eval_linalg(prim: &Primitive, args: &[&crate::ir::Array], out_dtype: DType) -> Data {
    let x = args[0];
    let (v, m, n, count) = matrices_of(x.data(), x.shape());
    if m == 0 || n == 0 {
        // empty matrices (perhaps very many): nothing to factor, and no loop over them; an
        // empty matrix's determinant is 1, every other result is empty
        let out = match prim {
            Primitive::LogAbsDet => vec![0.0; count],
            Primitive::DetSign => vec![1.0; count],
            _ => vec![],
        };
        return to_dtype(out, out_dtype);
    }
    let mut out = Vec::new();
    for b in 0..count {
        let a = &v[b * m * n..(b + 1) * m * n];
        match prim {
            Primitive::Cholesky => match symmetric_from_lower(a, n).llt(Side::Lower) {
                Ok(llt) => {
                    let l = llt.L();
                    for i in 0..n {
                        for j in 0..n {
                            out.push(if j <= i { l[(i, j)] } else { 0.0 });
                        }
                    }
                }
                Err(_) => out.extend(std::iter::repeat_n(f64::NAN, n * n)),
            },
            Primitive::LogAbsDet | Primitive::DetSign => {
                let lu = mat(a, n, n).partial_piv_lu();
                let u = lu.U();
                let (mut log, mut sign) = (0.0, permutation_sign(lu.P().arrays().0));
                for i in 0..n {
                    let d = u[(i, i)];
                    log += d.abs().ln();
                    sign *= if d > 0.0 {
                        1.0
                    } else if d < 0.0 {
                        -1.0
                    } else {
                        0.0
                    };
                }
                out.push(match prim {
                    Primitive::LogAbsDet => log,
                    _ => sign,
                });
            }
            Primitive::QrQ => push_rows(&mut out, mat(a, m, n).qr().compute_thin_Q().as_ref()),
            Primitive::QrR => {
                let qr = mat(a, m, n).qr();
                let r = qr.thin_R();
                for i in 0..r.nrows() {
                    for j in 0..r.ncols() {
                        // below the diagonal is exactly zero
                        out.push(if j >= i { r[(i, j)] } else { 0.0 });
                    }
                }
            }
            Primitive::EighValues | Primitive::EighVectors => {
                let s = symmetric_from_lower(a, n);
                match s.self_adjoint_eigen(Side::Lower) {
                    Ok(e) if matches!(prim, Primitive::EighValues) => {
                        let w = e.S().column_vector();
                        out.extend((0..n).map(|i| w[i]));
                    }
                    Ok(e) => {
                        let u = e.U();
                        let sign: Vec<f64> = (0..n)
                            .map(|c| largest_sign((0..n).map(|r| u[(r, c)])))
                            .collect();
                        for r in 0..n {
                            for c in 0..n {
                                out.push(u[(r, c)] * sign[c]);
                            }
                        }
                    }
                    Err(_) => out.extend(std::iter::repeat_n(
                        f64::NAN,
                        if matches!(prim, Primitive::EighValues) {
                            n
                        } else {
                            n * n
                        },
                    )),
                }
            }
            Primitive::SvdValues | Primitive::SvdU | Primitive::SvdVt => {
                let k = m.min(n);
                match mat(a, m, n).thin_svd() {
                    Ok(svd) => {
                        let (u, sv, v) = (svd.U(), svd.S().column_vector(), svd.V());
                        // each pair signed by its left vector's largest-magnitude entry
                        let sign: Vec<f64> = (0..k)
                            .map(|c| largest_sign((0..m).map(|r| u[(r, c)])))
                            .collect();
                        match prim {
                            Primitive::SvdValues => out.extend((0..k).map(|i| sv[i])),
                            Primitive::SvdU => {
                                for r in 0..m {
                                    out.extend((0..k).map(|c| u[(r, c)] * sign[c]));
                                }
                            }
                            _ => {
                                for c in 0..k {
                                    out.extend((0..n).map(|r| v[(r, c)] * sign[c]));
                                }
                            }
                        }
                    }
                    Err(_) => {
                        let len = match prim {
                            Primitive::SvdValues => k,
                            Primitive::SvdU => m * k,
                            _ => k * n,
                        };
                        out.extend(std::iter::repeat_n(f64::NAN, len));
                    }
                }
            }
            Primitive::Solve { transpose_a } => {
                let y = args[1];
                let (bv, p, q, _) = matrices_of(y.data(), y.shape());
                let rhs = mat(&bv[b * p * q..(b + 1) * p * q], p, q);
                let lu = mat(a, n, n).partial_piv_lu();
                let sol = if *transpose_a {
                    lu.solve_transpose(&rhs)
                } else {
                    lu.solve(&rhs)
                };
                push_rows(&mut out, sol.as_ref());
            }
            Primitive::TriangularSolve {
                left_side,
                lower,
                transpose_a,
                unit_diagonal,
            } => {
                let y = args[1];
                let (bv, p, q, _) = matrices_of(y.data(), y.shape());
                let rhs = &bv[b * p * q..(b + 1) * p * q];
                let t = Triangle {
                    a,
                    n,
                    lower: *lower,
                    transpose: *transpose_a,
                    unit: *unit_diagonal,
                };
                out.extend(t.solve(rhs, p, q, *left_side));
            }
            other => unreachable!("`{}` is not a linear-algebra primitive", other.name()),
        }
    }
    to_dtype(out, out_dtype)
}

/// The sign that makes a vector's largest-magnitude entry (the first of equals) positive:
/// the convention that makes eigenvectors and singular vectors functions of the matrix.
fn largest_sign(v: impl Iterator<Item = f64>) -> f64 {
    let big = v.fold(0.0f64, |acc, x| if x.abs() > acc.abs() { x } else { acc });
    if big < 0.0 {
        -1.0
    } else {
        1.0
    }
}

/// The sign of a permutation given as its forward array: -1 for an odd number of
/// transpositions.
fn permutation_sign(forward: &[usize]) -> f64 {
    let mut seen = vec![false; forward.len()];
    let mut sign = 1.0;
    for start in 0..forward.len() {
        let mut len = 0;
        let mut i = start;
        while !seen[i] {
            seen[i] = true;
            i = forward[i];
            len += 1;
        }
        if len > 0 && len % 2 == 0 {
            sign = -sign;
        }
    }
    sign
}

/// A triangular matrix as `triangular_solve` reads it.
struct Triangle<'a> {
    a: &'a [f64],
    n: usize,
    lower: bool,
    transpose: bool,
    unit: bool,
}

impl Triangle<'_> {
    /// Entry `(i, j)` of `op(a)` restricted to its triangle.
    fn at(&self, i: usize, j: usize) -> f64 {
        let (r, c) = if self.transpose { (j, i) } else { (i, j) };
        if r == c {
            return if self.unit {
                1.0
            } else {
                self.a[r * self.n + c]
            };
        }
        let inside = if self.lower { r > c } else { r < c };
        if inside {
            self.a[r * self.n + c]
        } else {
            0.0
        }
    }

    /// Whether `op(a)` is lower triangular.
    fn op_lower(&self) -> bool {
        self.lower != self.transpose
    }

    /// `x` with `op(a) x = b` (`left`, `b` is `n × q`) or `x op(a) = b` (`b` is `p × n`).
    fn solve(&self, b: &[f64], p: usize, q: usize, left: bool) -> Vec<f64> {
        let n = self.n;
        let mut x = b.to_vec();
        if left {
            // each column of b: forward substitution for a lower op(a), backward for upper
            for col in 0..q {
                let order: Vec<usize> = match self.op_lower() {
                    true => (0..n).collect(),
                    false => (0..n).rev().collect(),
                };
                for (k, &i) in order.iter().enumerate() {
                    let mut s = x[i * q + col];
                    for &j in &order[..k] {
                        s -= self.at(i, j) * x[j * q + col];
                    }
                    x[i * q + col] = s / self.at(i, i);
                }
            }
        } else {
            // x op(a) = b  ⇔  op(a)ᵀ xᵀ = bᵀ: each row of b, against the transposed triangle
            for row in 0..p {
                let order: Vec<usize> = match self.op_lower() {
                    true => (0..n).rev().collect(),
                    false => (0..n).collect(),
                };
                for (k, &j) in order.iter().enumerate() {
                    let mut s = x[row * n + j];
                    for &i in &order[..k] {
                        s -= x[row * n + i] * self.at(i, j);
                    }
                    x[row * n + j] = s / self.at(j, j);
                }
            }
        }
        x
    }
}
