//! Matrix factorizations and solves (`jnp.linalg`, `jax.scipy.linalg`): `cholesky`,
//! `solve_triangular`/`triangular_solve`, `cho_solve`, `solve`, `inv`, `slogdet`, `det`,
//! `qr`, `eigh`, `svd`, `lstsq`.
//!
//! Each acts on the last two axes and maps over the leading ones; a right-hand side's
//! leading axes broadcast against the matrix's. Failures are values, as in JAX: the Cholesky
//! factor of a matrix that is not positive definite is all NaN, a singular solve gives
//! non-finite values, `slogdet` of a singular matrix is `(0, -inf)`. The derivatives are the
//! primitives' rules (`passes/jvp/linalg.rs`), and reverse mode is their transposition.

use crate::ir::{Error, Primitive, SourceLoc};
use crate::surface::broadcast_shapes;
use crate::trace::{bind, fail, try_t, Tensor};

/// The leading axes of `a` and `b` broadcast together, each keeping its last two.
fn broadcast_leading(a: &Tensor, b: &Tensor, op: &str, loc: SourceLoc) -> (Tensor, Tensor) {
    let (ra, rb) = (a.ndim(), b.ndim());
    if ra < 2 || rb < 2 {
        return (a.clone(), b.clone());
    }
    let lead = match broadcast_shapes(op, &a.shape()[..ra - 2], &b.shape()[..rb - 2]) {
        Ok(l) => l,
        Err(e) => {
            let t = fail(e.with_loc(loc));
            return (t.clone(), t);
        }
    };
    let to = |t: &Tensor, r: usize| {
        let mut s = lead.clone();
        s.extend_from_slice(&t.shape()[r - 2..]);
        t.broadcast_to_at(&s, loc)
    };
    (to(a, ra), to(b, rb))
}

impl Tensor {
    /// The lower Cholesky factor `L` with `L Lᵀ = A` of the symmetric positive definite
    /// matrix whose lower triangle `self` holds (`jnp.linalg.cholesky`); all NaN where that
    /// matrix is not positive definite.
    #[track_caller]
    pub fn cholesky(&self) -> Tensor {
        bind(Primitive::Cholesky, &[self], SourceLoc::caller())
    }

    /// `lax.linalg.triangular_solve`: `x` with `op(self) x = b` (`left_side`) or
    /// `x op(self) = b`, `self` read as lower (or upper) triangular, with a unit diagonal if
    /// `unit_diagonal`, `op` its transpose if `transpose_a`.
    #[track_caller]
    pub fn triangular_solve(
        &self,
        b: &Tensor,
        left_side: bool,
        lower: bool,
        transpose_a: bool,
        unit_diagonal: bool,
    ) -> Tensor {
        let loc = SourceLoc::caller();
        let (a, b) = broadcast_leading(self, b, "triangular_solve", loc);
        let p = Primitive::TriangularSolve {
            left_side,
            lower,
            transpose_a,
            unit_diagonal,
        };
        bind(p, &[&a, &b], loc)
    }

    /// `jax.scipy.linalg.solve_triangular(a, b, lower, trans)`: `x` with `op(a) x = b`, `b`
    /// a matrix or a vector.
    #[track_caller]
    pub fn solve_triangular(&self, b: &Tensor, lower: bool, transpose: bool) -> Tensor {
        let loc = SourceLoc::caller();
        self.with_rhs(b, loc, |a, b| {
            a.triangular_solve(b, true, lower, transpose, false)
        })
    }

    /// `jax.scipy.linalg.cho_solve((L, True), b)`: `x` with `L Lᵀ x = b` for the Cholesky
    /// factor `self`.
    #[track_caller]
    pub fn cho_solve(&self, b: &Tensor) -> Tensor {
        let loc = SourceLoc::caller();
        self.with_rhs(b, loc, |l, b| {
            let y = l.triangular_solve(b, true, true, false, false);
            l.triangular_solve(&y, true, true, true, false)
        })
    }

    /// `jnp.linalg.solve`: `x` with `self x = b` (LU with partial pivoting), `b` a matrix
    /// (or batch of them, leading axes broadcast) or a vector (one dimension).
    #[track_caller]
    pub fn solve(&self, b: &Tensor) -> Tensor {
        let loc = SourceLoc::caller();
        self.with_rhs(b, loc, |a, b| {
            let (a, b) = broadcast_leading(a, b, "solve", loc);
            bind(Primitive::Solve { transpose_a: false }, &[&a, &b], loc)
        })
    }

    /// A solve whose right-hand side may be a vector (`b` of one dimension, numpy 2's rule):
    /// as a one-column matrix, the column removed after.
    fn with_rhs(
        &self,
        b: &Tensor,
        loc: SourceLoc,
        f: impl Fn(&Tensor, &Tensor) -> Tensor,
    ) -> Tensor {
        if let Some(e) = self.error().or(b.error()) {
            return Tensor::failed(e.clone());
        }
        if b.ndim() == 1 {
            let col = bind(
                Primitive::ExpandDims {
                    dimensions: vec![b.ndim()],
                },
                &[b],
                loc,
            );
            let x = f(self, &col);
            let r = x.ndim();
            if x.error().is_some() {
                return x;
            }
            return bind(
                Primitive::Squeeze {
                    dimensions: vec![r - 1],
                },
                &[&x],
                loc,
            );
        }
        f(self, b)
    }

    /// `jnp.linalg.inv`: the inverse, as the solve against the identity.
    #[track_caller]
    pub fn inv(&self) -> Tensor {
        let loc = SourceLoc::caller();
        if let Some(e) = self.error() {
            return Tensor::failed(e.clone());
        }
        let r = self.ndim();
        if r < 2 {
            return fail(Error::Shape {
                op: "inv".into(),
                msg: format!("needs a matrix, got {:?}", self.shape()),
                loc: Some(loc),
            });
        }
        let d = try_t!(self.aval(), loc).dtype;
        let n = self.shape()[r - 1];
        let eye = Tensor::eye(n, d).broadcast_to_at(self.shape(), loc);
        bind(Primitive::Solve { transpose_a: false }, &[self, &eye], loc)
    }

    /// `jnp.linalg.slogdet`: `(sign, log |det|)`.
    #[track_caller]
    pub fn slogdet(&self) -> (Tensor, Tensor) {
        let loc = SourceLoc::caller();
        (
            bind(Primitive::DetSign, &[self], loc),
            bind(Primitive::LogAbsDet, &[self], loc),
        )
    }

    /// `jnp.linalg.det`: `sign · exp(log |det|)`. Its derivative, `det · tr(A⁻¹ dA)`, is
    /// not finite at a singular matrix.
    #[track_caller]
    pub fn det(&self) -> Tensor {
        let (sign, logabs) = self.slogdet();
        sign * logabs.exp()
    }

    /// `jnp.linalg.qr` (reduced): `(Q, R)` with `Q` of orthonormal columns and `R` upper
    /// triangular. Differentiable for `m >= n`.
    #[track_caller]
    pub fn qr(&self) -> (Tensor, Tensor) {
        let loc = SourceLoc::caller();
        (
            bind(Primitive::QrQ, &[self], loc),
            bind(Primitive::QrR, &[self], loc),
        )
    }

    /// `jnp.linalg.eigh` (of the lower triangle): eigenvalues ascending and eigenvectors as
    /// columns, each signed so its largest-magnitude entry is positive.
    #[track_caller]
    pub fn eigh(&self) -> (Tensor, Tensor) {
        let loc = SourceLoc::caller();
        (
            bind(Primitive::EighValues, &[self], loc),
            bind(Primitive::EighVectors, &[self], loc),
        )
    }

    /// `jnp.linalg.svd` (reduced, `full_matrices=False`): `(U, s, Vᵀ)` with the singular
    /// values descending and each pair of singular vectors signed so that `U`'s column has
    /// its largest-magnitude entry positive. Differentiable where the singular values are
    /// distinct and nonzero.
    #[track_caller]
    pub fn svd(&self) -> (Tensor, Tensor, Tensor) {
        let loc = SourceLoc::caller();
        (
            bind(Primitive::SvdU, &[self], loc),
            bind(Primitive::SvdValues, &[self], loc),
            bind(Primitive::SvdVt, &[self], loc),
        )
    }

    /// `jnp.linalg.lstsq` for a matrix of full column rank (`m >= n`): the `x` minimizing
    /// `|self x - b|`, as `R⁻¹ Qᵀ b` from the reduced QR.
    #[track_caller]
    pub fn lstsq(&self, b: &Tensor) -> Tensor {
        let loc = SourceLoc::caller();
        if let Some(e) = self.error().or(b.error()) {
            return Tensor::failed(e.clone());
        }
        let r = self.ndim();
        if r < 2 || self.shape()[r - 2] < self.shape()[r - 1] {
            return fail(Error::Shape {
                op: "lstsq".into(),
                msg: format!(
                    "needs a matrix with at least as many rows as columns, got {:?}",
                    self.shape()
                ),
                loc: Some(loc),
            });
        }
        let (q, rr) = self.qr();
        self.with_rhs(b, loc, |_, b| {
            let mut perm: Vec<usize> = (0..r).collect();
            perm.swap(r - 2, r - 1);
            let qt = bind(Primitive::Transpose { permutation: perm }, &[&q], loc);
            let qtb = qt.matmul(b);
            rr.triangular_solve(&qtb, true, false, false, false)
        })
    }
}
