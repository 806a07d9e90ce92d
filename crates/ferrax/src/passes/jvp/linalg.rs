//! The jvp rules of the linear-algebra primitives, each the textbook derivative of its
//! factorization written with the primitives themselves (so the tangents meet only linear
//! operations: products with primal factors, solves against primal matrices, masks):
//!
//! * `cholesky`: `dL = L Φ(L⁻¹ dA L⁻ᵀ)`, `Φ` the lower triangle with the diagonal halved;
//!   `dA` is the symmetric matrix of the tangent's lower triangle, as the primitive reads it.
//! * `triangular_solve`, `solve`: `dx = op(a)⁻¹ (db - op(da) x)` (on the right for a
//!   right-side solve), `da` restricted to the triangle the solve reads.
//! * `log_abs_det`: `tr(A⁻¹ dA)`; `det_sign` is piecewise constant.
//! * `qr` (m ≥ n): with `C = Qᵀ dA R⁻¹` and `Ω` the skew-symmetric matrix of `C`'s strictly
//!   lower triangle, `dR = (C - Ω) R` and `dQ = dA R⁻¹ - Q (C - Ω)`. A wide matrix
//!   (m < n) splits as `[A₁ A₂] = Q [R₁ R₂]` with `A₁` square: its square rule gives `dQ`
//!   and `dR₁`, and `dR₂ = Qᵀ (dA₂ - dQ R₂)`.
//! * `eigh`: with `M = Vᵀ dA V`, `dw = diag(M)` and `dV = V (F ∘ M)`, `F_ij = 1 / (w_j - w_i)`
//!   off the diagonal (infinite for repeated eigenvalues, as in JAX).
//! * `svd` (reduced, `A = U S Vᵀ`): with `P = Uᵀ dA V` and `F_ij = 1 / (s_j² - s_i²)` off
//!   the diagonal, `ds = diag(P)`, `dU = U (F ∘ (P S + S Pᵀ)) + (I - U Uᵀ) dA V S⁻¹` and
//!   `dV = V (F ∘ (S P + Pᵀ S)) + (I - V Vᵀ) dAᵀ U S⁻¹` (Townsend, "Differentiating the
//!   singular value decomposition", 2016): finite where the singular values are distinct
//!   and nonzero.

use super::aval;
use crate::ir::{Aval, DType, Error, Primitive};
use crate::trace::{fail, Emit, Tensor};

/// The matrix transpose of the last two dimensions.
fn mt(e: &Emit, x: &Tensor) -> Tensor {
    let r = aval(x).ndim();
    let mut perm: Vec<usize> = (0..r).collect();
    perm.swap(r - 2, r - 1);
    e.op1(Primitive::Transpose { permutation: perm }, x)
}

/// The matrix product of the last two dimensions, mapped over the leading ones.
fn mm(e: &Emit, a: &Tensor, b: &Tensor) -> Tensor {
    let r = aval(a).ndim();
    e.op(
        Primitive::DotGeneral {
            lhs_contracting: vec![r - 1],
            rhs_contracting: vec![r - 2],
            lhs_batch: (0..r - 2).collect(),
            rhs_batch: (0..r - 2).collect(),
        },
        &[a, b],
    )
}

/// Where, in matrices of this aval, `row ? col` holds (`Lt`: strictly above the diagonal,
/// `Gt`: strictly below, `Eq`: on it, ...).
fn mask(e: &Emit, a: &Aval, cmp: Primitive) -> Tensor {
    let r = a.ndim();
    let iota = |d| {
        e.op(
            Primitive::Iota {
                dtype: DType::I64,
                shape: a.shape.clone(),
                dimension: d,
            },
            &[],
        )
    };
    e.op(cmp, &[&iota(r - 2), &iota(r - 1)])
}

fn keep(e: &Emit, m: &Tensor, x: &Tensor) -> Tensor {
    e.op(Primitive::Select, &[m, x, &e.zeros(&aval(x))])
}

/// The symmetric matrix of `t`'s lower triangle.
fn sym_lower(e: &Emit, t: &Tensor) -> Tensor {
    let a = aval(t);
    let low = keep(e, &mask(e, &a, Primitive::Ge), t);
    let strict = keep(e, &mask(e, &a, Primitive::Gt), t);
    e.add(&low, &mt(e, &strict))
}

/// The tangent of a linear-algebra primitive's output (`None`: zero).
pub(crate) fn jvp_linalg(
    e: &Emit,
    prim: &Primitive,
    x: &[Tensor],
    t: &[Option<Tensor>],
    out: &Tensor,
) -> Option<Tensor> {
    let a = &x[0];
    let aa = aval(a);
    let r = aa.ndim();
    match prim {
        Primitive::Cholesky => t[0].as_ref().map(|ta| {
            let l = out;
            let solve = |b: &Tensor| {
                e.op(
                    Primitive::TriangularSolve {
                        left_side: true,
                        lower: true,
                        transpose_a: false,
                        unit_diagonal: false,
                    },
                    &[l, b],
                )
            };
            let inner = solve(&mt(e, &solve(&sym_lower(e, ta))));
            // Φ: the strictly lower triangle, and half the diagonal
            let half = e.op(
                Primitive::Select,
                &[
                    &mask(e, &aa, Primitive::Eq),
                    &e.full(0.5, &aa),
                    &e.zeros(&aa),
                ],
            );
            let phi_coef = e.op(
                Primitive::Select,
                &[&mask(e, &aa, Primitive::Gt), &e.full(1.0, &aa), &half],
            );
            mm(e, l, &e.mul(&inner, &phi_coef))
        }),
        Primitive::TriangularSolve {
            left_side,
            lower,
            transpose_a,
            unit_diagonal,
        } => {
            let xo = out;
            let from_a = t[0].as_ref().map(|ta| {
                let cmp = match (lower, unit_diagonal) {
                    (true, false) => Primitive::Ge,
                    (true, true) => Primitive::Gt,
                    (false, false) => Primitive::Le,
                    (false, true) => Primitive::Lt,
                };
                let tri = keep(e, &mask(e, &aa, cmp), ta);
                let op = if *transpose_a { mt(e, &tri) } else { tri };
                if *left_side {
                    mm(e, &op, xo)
                } else {
                    mm(e, xo, &op)
                }
            });
            rhs_then_solve(e, prim, a, t[1].as_ref(), from_a)
        }
        Primitive::Solve { transpose_a } => {
            let from_a = t[0].as_ref().map(|ta| {
                let op = if *transpose_a { mt(e, ta) } else { ta.clone() };
                mm(e, &op, out)
            });
            rhs_then_solve(e, prim, a, t[1].as_ref(), from_a)
        }
        Primitive::LogAbsDet => t[0].as_ref().map(|ta| {
            let s = e.op(Primitive::Solve { transpose_a: false }, &[a, ta]);
            let diag = keep(e, &mask(e, &aa, Primitive::Eq), &s);
            e.op1(
                Primitive::ReduceSum {
                    axes: vec![r - 2, r - 1],
                },
                &diag,
            )
        }),
        Primitive::DetSign => None,
        Primitive::QrQ | Primitive::QrR => t[0].as_ref().map(|ta| qr_tangent(e, prim, a, ta)),
        Primitive::EighValues | Primitive::EighVectors => t[0].as_ref().map(|ta| {
            let v = e.op1(Primitive::EighVectors, a);
            let m = mm(e, &mt(e, &v), &mm(e, &sym_lower(e, ta), &v));
            let eye = mask(e, &aa, Primitive::Eq);
            match prim {
                Primitive::EighValues => e.op1(
                    Primitive::ReduceSum { axes: vec![r - 1] },
                    &keep(e, &eye, &m),
                ),
                _ => {
                    let w = e.op1(Primitive::EighValues, a);
                    let spread = |d: usize| {
                        let mut dims: Vec<usize> = (0..r - 2).collect();
                        dims.push(d);
                        e.op1(
                            Primitive::BroadcastInDim {
                                shape: aa.shape.clone(),
                                broadcast_dimensions: dims,
                            },
                            &w,
                        )
                    };
                    let gap = e.sub(&spread(r - 1), &spread(r - 2));
                    let f = e.op(
                        Primitive::Select,
                        &[&eye, &e.zeros(&aa), &e.div(&e.full(1.0, &aa), &gap)],
                    );
                    mm(e, &v, &e.mul(&f, &m))
                }
            }
        }),
        Primitive::SvdValues | Primitive::SvdU | Primitive::SvdVt => {
            t[0].as_ref().map(|ta| svd_tangent(e, prim, a, ta))
        }
        other => Some(fail(Error::internal(format!(
            "`{}` is not a linear-algebra primitive",
            other.name()
        )))),
    }
}

/// `solve(a, db - from_a)`: a solve's tangent from its right-hand side's tangent and the
/// matrix's contribution (`op(da) x`), either possibly zero.
fn rhs_then_solve(
    e: &Emit,
    prim: &Primitive,
    a: &Tensor,
    tb: Option<&Tensor>,
    from_a: Option<Tensor>,
) -> Option<Tensor> {
    let rhs = match (tb, from_a) {
        (Some(b), Some(c)) => e.sub(b, &c),
        (Some(b), None) => b.clone(),
        (None, Some(c)) => e.neg(&c),
        (None, None) => return None,
    };
    Some(e.op(prim.clone(), &[a, &rhs]))
}

/// The tangent of one output of the reduced SVD of `a` along `ta` (see the module notes).
fn svd_tangent(e: &Emit, prim: &Primitive, a: &Tensor, ta: &Tensor) -> Tensor {
    let aa = aval(a);
    let r = aa.ndim();
    let u = e.op1(Primitive::SvdU, a);
    let s = e.op1(Primitive::SvdValues, a);
    let vt = e.op1(Primitive::SvdVt, a);
    let v = mt(e, &vt);
    let p = mm(e, &mt(e, &u), &mm(e, ta, &v));
    let pa = aval(&p);
    let eye = mask(e, &pa, Primitive::Eq);
    if matches!(prim, Primitive::SvdValues) {
        return e.op1(
            Primitive::ReduceSum { axes: vec![r - 1] },
            &keep(e, &eye, &p),
        );
    }
    // s along rows (s_i) or along columns (s_j) of a k × k matrix
    let spread = |shape: &[usize], d: usize| {
        let mut dims: Vec<usize> = (0..r - 2).collect();
        dims.push(d);
        e.op1(
            Primitive::BroadcastInDim {
                shape: shape.to_vec(),
                broadcast_dimensions: dims,
            },
            &s,
        )
    };
    let (si, sj) = (spread(&pa.shape, r - 2), spread(&pa.shape, r - 1));
    let gap = e.sub(&e.mul(&sj, &sj), &e.mul(&si, &si));
    let f = e.op(
        Primitive::Select,
        &[&eye, &e.zeros(&pa), &e.div(&e.full(1.0, &pa), &gap)],
    );
    let pt = mt(e, &p);
    // the component outside the span of the vectors: (I - W Wᵀ) X S⁻¹, X's columns divided
    let outside = |w: &Tensor, x: &Tensor| {
        let xa = aval(x);
        let scaled = e.div(x, &spread(&xa.shape, r - 1));
        e.sub(&scaled, &mm(e, w, &mm(e, &mt(e, w), &scaled)))
    };
    match prim {
        Primitive::SvdU => {
            let omega = e.mul(&f, &e.add(&e.mul(&p, &sj), &e.mul(&si, &pt)));
            e.add(&mm(e, &u, &omega), &outside(&u, &mm(e, ta, &v)))
        }
        _ => {
            let omega = e.mul(&f, &e.add(&e.mul(&si, &p), &e.mul(&pt, &sj)));
            let dv = e.add(&mm(e, &v, &omega), &outside(&v, &mm(e, &mt(e, ta), &u)));
            mt(e, &dv)
        }
    }
}

/// The last-axis columns `from..to` of `x`.
fn columns(e: &Emit, x: &Tensor, from: usize, to: usize) -> Tensor {
    let xa = aval(x);
    let r = xa.ndim();
    let mut start = vec![0; r];
    let mut limit = xa.shape.clone();
    start[r - 1] = from;
    limit[r - 1] = to;
    e.op1(
        Primitive::Slice {
            start,
            limit,
            strides: vec![1; r],
        },
        x,
    )
}

/// The tangent of `Q` or `R` of the reduced QR of `a` along `ta` (see the module notes).
fn qr_tangent(e: &Emit, prim: &Primitive, a: &Tensor, ta: &Tensor) -> Tensor {
    let aa = aval(a);
    let r = aa.ndim();
    let (m, n) = (aa.shape[r - 2], aa.shape[r - 1]);
    let q = e.op1(Primitive::QrQ, a);
    let rr = e.op1(Primitive::QrR, a);
    // the square (or tall) part: the first min(m, n) columns
    let k = m.min(n);
    let (r1, ta1) = if m < n {
        (columns(e, &rr, 0, k), columns(e, ta, 0, k))
    } else {
        (rr.clone(), ta.clone())
    };
    let right_solve = |b: &Tensor| {
        e.op(
            Primitive::TriangularSolve {
                left_side: false,
                lower: false,
                transpose_a: false,
                unit_diagonal: false,
            },
            &[&r1, b],
        )
    };
    let c = right_solve(&mm(e, &mt(e, &q), &ta1));
    let low = keep(e, &mask(e, &aval(&c), Primitive::Gt), &c);
    let c_minus_omega = e.sub(&c, &e.sub(&low, &mt(e, &low)));
    let dq = e.sub(&right_solve(&ta1), &mm(e, &q, &c_minus_omega));
    match prim {
        Primitive::QrQ => dq,
        _ => {
            let dr1 = mm(e, &c_minus_omega, &r1);
            if m >= n {
                return dr1;
            }
            let (r2, ta2) = (columns(e, &rr, k, n), columns(e, ta, k, n));
            let dr2 = mm(e, &mt(e, &q), &e.sub(&ta2, &mm(e, &dq, &r2)));
            e.op(Primitive::Concatenate { dimension: r - 1 }, &[&dr1, &dr2])
        }
    }
}
