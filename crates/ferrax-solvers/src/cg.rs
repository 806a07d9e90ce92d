//! Matrix-free conjugate gradients, plain and truncated (Steihaug) for trust regions.
//!
//! Both only multiply by the operator, so any `LinearOperator` works: a linear map of
//! ferrax, a Gauss-Newton operator (`Jᵀ J v` from one linearization), a Hessian-vector
//! product, a closure. Every product's length is checked against the operator's dimension,
//! so an operator that returns the wrong length is an error, not a wrong answer.

use crate::error::{input, Result};
use crate::operator::{axpy, dot, norm, LinearOperator};

/// Checks the options every CG variant shares: a tolerance that is a finite number ≥ 0 (a
/// NaN or negative one would never be met and silently turn every solve into an iteration
/// limit; an infinite one would accept any iterate).
fn check_options(op: &str, opts: &CgOptions) -> Result<()> {
    if !(opts.tol.is_finite() && opts.tol >= 0.0) {
        return Err(input(
            op,
            format!("tol must be a finite number >= 0, got {}", opts.tol),
        ));
    }
    Ok(())
}

/// Applies an operator and checks that it returned a vector of its dimension: an operator
/// that returns too few or too many values would otherwise be zipped against the iterates
/// and give a wrong answer with no error.
fn apply_checked(op: &str, what: &str, a: &dyn LinearOperator, v: &[f64]) -> Result<Vec<f64>> {
    let out = a.apply(v)?;
    if out.len() != v.len() {
        return Err(input(
            op,
            format!(
                "the {what} returned {} values, expected {} (its dimension)",
                out.len(),
                v.len()
            ),
        ));
    }
    Ok(out)
}

/// How conjugate gradients ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgTermination {
    /// The residual norm fell below `tol · ‖b‖`.
    Converged,
    /// `max_iterations` were used up first.
    IterationLimit,
    /// A direction `p` with `pᵀ A p ≤ 0` was met: the operator is not positive definite.
    NegativeCurvature,
    /// A product or step produced NaN or infinity.
    NonFinite,
    /// (Steihaug) the step reached the trust-region boundary.
    Boundary,
}

/// Options of conjugate gradients ([`conjugate_gradient`], [`ConjugateGradient`]) and of
/// Steihaug's truncated variant ([`steihaug`]).
#[derive(Clone, Debug)]
pub struct CgOptions {
    /// Relative tolerance on the residual: stop when `‖b − A x‖ ≤ tol · ‖b‖`.
    pub tol: f64,
    /// The most CG iterations (one operator product each) before stopping with
    /// [`CgTermination::IterationLimit`].
    pub max_iterations: usize,
}

impl Default for CgOptions {
    fn default() -> Self {
        CgOptions {
            tol: 1e-10,
            max_iterations: 1000,
        }
    }
}

/// The result of conjugate gradients on `A x = b`.
#[derive(Clone, Debug)]
pub struct CgResult {
    /// The last iterate: the approximate solution.
    pub x: Vec<f64>,
    /// CG steps taken (updates of `x`).
    pub iterations: usize,
    /// `‖b − A x‖` as tracked by the iteration.
    pub residual_norm: f64,
    /// Why the iteration stopped.
    pub termination: CgTermination,
    /// Operator applications.
    pub products: usize,
}

/// Solves `A x = b` for a symmetric positive definite `A` by conjugate gradients from zero.
/// Reports negative curvature instead of pressing on. For a starting point or a
/// preconditioner, see [`ConjugateGradient`].
///
/// ```
/// use ferrax_solvers::{conjugate_gradient, CgOptions, CgTermination, FnOperator};
/// let a = FnOperator { dim: 2, f: |v: &[f64]| vec![4.0 * v[0] + v[1], v[0] + 3.0 * v[1]] };
/// let r = conjugate_gradient(&a, &[1.0, 2.0], &CgOptions::default()).unwrap();
/// assert_eq!(r.termination, CgTermination::Converged);
/// assert!((r.x[0] - 1.0 / 11.0).abs() < 1e-12 && (r.x[1] - 7.0 / 11.0).abs() < 1e-12);
/// ```
pub fn conjugate_gradient(a: &dyn LinearOperator, b: &[f64], opts: &CgOptions) -> Result<CgResult> {
    ConjugateGradient::new(a).options(opts).solve(b)
}

/// Conjugate gradients with everything optional said by name: a starting point, a
/// preconditioner `M ≈ A⁻¹` (symmetric positive definite), the options.
///
/// ```
/// use ferrax_solvers::{CgOptions, ConjugateGradient, FnOperator};
/// let a = FnOperator { dim: 2, f: |v: &[f64]| vec![4.0 * v[0], 9.0 * v[1]] };
/// // Jacobi: the inverse of the diagonal, exact here, so one iteration solves it
/// let m = FnOperator { dim: 2, f: |v: &[f64]| vec![v[0] / 4.0, v[1] / 9.0] };
/// let r = ConjugateGradient::new(&a)
///     .preconditioner(&m)
///     .start(&[1.0, 1.0])
///     .options(&CgOptions { tol: 1e-12, max_iterations: 10 })
///     .solve(&[2.0, 3.0])
///     .unwrap();
/// assert_eq!(r.iterations, 1);
/// assert!((r.x[0] - 0.5).abs() < 1e-15 && (r.x[1] - 1.0 / 3.0).abs() < 1e-15);
/// ```
pub struct ConjugateGradient<'a> {
    a: &'a dyn LinearOperator,
    x0: Option<&'a [f64]>,
    preconditioner: Option<&'a dyn LinearOperator>,
    opts: CgOptions,
}

impl<'a> ConjugateGradient<'a> {
    /// Conjugate gradients on `A`, from zero, unpreconditioned, default options.
    pub fn new(a: &'a dyn LinearOperator) -> Self {
        ConjugateGradient {
            a,
            x0: None,
            preconditioner: None,
            opts: CgOptions::default(),
        }
    }

    /// Starts from `x0` instead of zero.
    pub fn start(mut self, x0: &'a [f64]) -> Self {
        self.x0 = Some(x0);
        self
    }

    /// Preconditions with `m ≈ A⁻¹`.
    pub fn preconditioner(mut self, m: &'a dyn LinearOperator) -> Self {
        self.preconditioner = Some(m);
        self
    }

    /// The tolerance and iteration limit.
    pub fn options(mut self, opts: &CgOptions) -> Self {
        self.opts = opts.clone();
        self
    }

    /// Solves `A x = b`.
    pub fn solve(&self, b: &[f64]) -> Result<CgResult> {
        solve(self.a, b, self.x0, self.preconditioner, &self.opts)
    }
}

fn solve(
    a: &dyn LinearOperator,
    b: &[f64],
    x0: Option<&[f64]>,
    preconditioner: Option<&dyn LinearOperator>,
    opts: &CgOptions,
) -> Result<CgResult> {
    const OP: &str = "conjugate_gradient";
    check_options(OP, opts)?;
    let n = a.dim();
    if b.len() != n || x0.is_some_and(|x| x.len() != n) {
        return Err(input(
            OP,
            format!(
                "the operator has dimension {n}, b has {} entries{}",
                b.len(),
                x0.map(|x| format!(", x0 has {}", x.len()))
                    .unwrap_or_default()
            ),
        ));
    }
    if let Some(m) = preconditioner {
        if m.dim() != n {
            return Err(input(
                OP,
                format!(
                    "the preconditioner has dimension {}, the operator {n}",
                    m.dim()
                ),
            ));
        }
    }
    let bnorm = norm(b);
    if bnorm == 0.0 {
        // A x = 0 has the solution 0, whatever the start: the relative test below cannot
        // be met from a nonzero x0 (its target is 0), and returning x0 would be wrong.
        return Ok(CgResult {
            x: vec![0.0; n],
            iterations: 0,
            residual_norm: 0.0,
            termination: CgTermination::Converged,
            products: 0,
        });
    }
    let mut products = 0;
    let mut x = x0.map(|v| v.to_vec()).unwrap_or_else(|| vec![0.0; n]);
    let mut r = if x0.is_some() {
        products += 1;
        let ax = apply_checked(OP, "operator", a, &x)?;
        b.iter().zip(&ax).map(|(bi, ai)| bi - ai).collect()
    } else {
        b.to_vec()
    };
    let precond = |r: &[f64]| -> Result<Vec<f64>> {
        match preconditioner {
            Some(m) => apply_checked(OP, "preconditioner", m, r),
            None => Ok(r.to_vec()),
        }
    };
    let target = opts.tol * bnorm;
    let mut z = precond(&r)?;
    let mut p = z.clone();
    let mut rz = dot(&r, &z);
    let mut rnorm = norm(&r);
    let done = |x: Vec<f64>, it, rn, t, products| CgResult {
        x,
        iterations: it,
        residual_norm: rn,
        termination: t,
        products,
    };
    if rnorm <= target {
        return Ok(done(x, 0, rnorm, CgTermination::Converged, products));
    }
    for it in 0..opts.max_iterations {
        let ap = apply_checked(OP, "operator", a, &p)?;
        products += 1;
        let pap = dot(&p, &ap);
        if !pap.is_finite() {
            return Ok(done(x, it, rnorm, CgTermination::NonFinite, products));
        }
        if pap <= 0.0 {
            return Ok(done(
                x,
                it,
                rnorm,
                CgTermination::NegativeCurvature,
                products,
            ));
        }
        let alpha = rz / pap;
        x = axpy(alpha, &p, &x);
        r = axpy(-alpha, &ap, &r);
        rnorm = norm(&r);
        if !rnorm.is_finite() {
            return Ok(done(x, it + 1, rnorm, CgTermination::NonFinite, products));
        }
        if rnorm <= target {
            return Ok(done(x, it + 1, rnorm, CgTermination::Converged, products));
        }
        z = precond(&r)?;
        let rz_new = dot(&r, &z);
        let beta = rz_new / rz;
        rz = rz_new;
        p = axpy(beta, &p, &z);
    }
    Ok(done(
        x,
        opts.max_iterations,
        rnorm,
        CgTermination::IterationLimit,
        products,
    ))
}

/// The result of a truncated CG step for the trust-region model
/// `m(p) = gᵀ p + ½ pᵀ H p`, `‖p‖ ≤ Δ`.
#[derive(Clone, Debug)]
pub struct SteihaugResult {
    /// The step, within the trust region `‖p‖ ≤ Δ`.
    pub p: Vec<f64>,
    /// `m(p)`: the model's change (negative for a descent step).
    pub model_change: f64,
    /// Why the iteration stopped ([`CgTermination::Boundary`] when the step reached
    /// `‖p‖ = Δ`).
    pub termination: CgTermination,
    /// Applications of `H`.
    pub products: usize,
}

/// Steihaug's truncated conjugate gradients: approximately minimizes `gᵀ p + ½ pᵀ H p`
/// inside `‖p‖ ≤ Δ`, stopping at the boundary, at negative curvature (following it to the
/// boundary), or when the residual `‖H p + g‖ ≤ tol ‖g‖`. The radius `Δ` must be finite
/// and positive.
///
/// ```
/// use ferrax_solvers::{steihaug, CgOptions, CgTermination, FnOperator};
/// let h = FnOperator { dim: 2, f: |v: &[f64]| vec![2.0 * v[0], 2.0 * v[1]] };
/// // the unconstrained minimizer −H⁻¹g = (−1, −1) lies inside a radius of 2: found
/// let inside = steihaug(&h, &[2.0, 2.0], 2.0, &CgOptions::default()).unwrap();
/// assert_eq!(inside.termination, CgTermination::Converged);
/// assert!((inside.p[0] + 1.0).abs() < 1e-12);
/// // within a radius of 1 the step stops on the boundary
/// let held = steihaug(&h, &[2.0, 2.0], 1.0, &CgOptions::default()).unwrap();
/// assert_eq!(held.termination, CgTermination::Boundary);
/// assert!((held.p[0].hypot(held.p[1]) - 1.0).abs() < 1e-12);
/// ```
pub fn steihaug(
    h: &dyn LinearOperator,
    g: &[f64],
    delta: f64,
    opts: &CgOptions,
) -> Result<SteihaugResult> {
    check_options("steihaug", opts)?;
    // A negative or NaN radius makes `to_boundary` take the root of a negative number
    // (NaN steps); zero or infinity are no trust region at all.
    if !(delta.is_finite() && delta > 0.0) {
        return Err(input(
            "steihaug",
            format!("the trust radius must be finite and positive, got {delta}"),
        ));
    }
    let n = h.dim();
    if g.len() != n {
        return Err(input(
            "steihaug",
            format!("the operator has dimension {n}, g has {} entries", g.len()),
        ));
    }
    let mut p = vec![0.0; n];
    let mut hp = vec![0.0; n];
    let mut r = g.to_vec(); // r = H p + g
    let mut d: Vec<f64> = r.iter().map(|v| -v).collect();
    let gnorm = norm(g);
    let model = |p: &[f64], hp: &[f64]| dot(g, p) + 0.5 * dot(p, hp);
    let mut products = 0;
    if gnorm == 0.0 {
        return Ok(SteihaugResult {
            p,
            model_change: 0.0,
            termination: CgTermination::Converged,
            products,
        });
    }
    // the τ ≥ 0 with ‖p + τ d‖ = Δ
    let to_boundary = |p: &[f64], d: &[f64]| {
        let (dd, pd, pp) = (dot(d, d), dot(p, d), dot(p, p));
        (-pd + (pd * pd + dd * (delta * delta - pp)).max(0.0).sqrt()) / dd
    };
    for _ in 0..opts.max_iterations {
        let hd = apply_checked("steihaug", "operator", h, &d)?;
        products += 1;
        let dhd = dot(&d, &hd);
        if !dhd.is_finite() {
            return Ok(SteihaugResult {
                model_change: model(&p, &hp),
                p,
                termination: CgTermination::NonFinite,
                products,
            });
        }
        if dhd <= 0.0 {
            let tau = to_boundary(&p, &d);
            let p2 = axpy(tau, &d, &p);
            let hp2 = axpy(tau, &hd, &hp);
            return Ok(SteihaugResult {
                model_change: model(&p2, &hp2),
                p: p2,
                termination: CgTermination::NegativeCurvature,
                products,
            });
        }
        let rr = dot(&r, &r);
        let alpha = rr / dhd;
        let p_next = axpy(alpha, &d, &p);
        if norm(&p_next) >= delta {
            let tau = to_boundary(&p, &d);
            let p2 = axpy(tau, &d, &p);
            let hp2 = axpy(tau, &hd, &hp);
            return Ok(SteihaugResult {
                model_change: model(&p2, &hp2),
                p: p2,
                termination: CgTermination::Boundary,
                products,
            });
        }
        p = p_next;
        hp = axpy(alpha, &hd, &hp);
        r = axpy(alpha, &hd, &r);
        if norm(&r) <= opts.tol * gnorm {
            return Ok(SteihaugResult {
                model_change: model(&p, &hp),
                p,
                termination: CgTermination::Converged,
                products,
            });
        }
        let beta = dot(&r, &r) / rr;
        d = axpy(beta, &d, &r.iter().map(|v| -v).collect::<Vec<_>>());
    }
    Ok(SteihaugResult {
        model_change: model(&p, &hp),
        p,
        termination: CgTermination::IterationLimit,
        products,
    })
}
