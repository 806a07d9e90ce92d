//! Nonlinear least squares: `least_squares(residual_fn, x0, options)`.
//!
//! Two methods, both built on ferrax's transformations:
//!
//! * **Levenberg-Marquardt** (dense, MINPACK-style). The residual function is traced once
//!   into a program and its Jacobian program is made once by `jacfwd` or `jacrev`
//!   (whichever is cheaper for the shape: forward when there are no more parameters than
//!   residuals); every iteration then just evaluates those programs. The step solves the
//!   scaled trust-region subproblem `min ‖J p + r‖, ‖D p‖ ≤ Δ` through the SVD of `J D⁻¹`
//!   (faer), with MINPACK's column scaling `D` (running maxima of the column norms), its
//!   radius updates and its `ftol`/`xtol`/`gtol` tests. Rank-deficient Jacobians are handled
//!   by the SVD (a minimum-norm Gauss-Newton step). After convergence a few undamped
//!   Gauss-Newton steps polish the solution while they still lower the residual.
//! * **Gauss-Newton-CG** (matrix-free, for many parameters): each outer iteration makes one
//!   linearization (`ferrax::gauss_newton`: `J` and `Jᵀ` sharing residuals) and solves the
//!   trust-region model with Steihaug's truncated CG on `Jᵀ J v` products, which do no
//!   primal work; rejected steps shrink the radius and reuse the same linearization.
//!
//! Results carry the parameters, the residual sum of squares, the counts of residual and
//! Jacobian evaluations (and linearizations), how the run ended, and the parameters'
//! standard errors from the final Jacobian.

use std::sync::Arc;

use faer::Mat;
use ferrax::{jacfwd, jacrev, make_jaxpr, Array, DType, Program, Tensor};

use crate::cg::{steihaug, CgOptions};
use crate::error::{input, Result, SolverError};
use crate::operator::{axpy, check_finite, dot, norm, TensorOperator};
use crate::robust::{check_bounds, external, to_external, to_internal, Bound, Loss};

/// Which algorithm `least_squares` runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Dense Jacobian, scaled trust region (MINPACK-style).
    LevenbergMarquardt,
    /// Matrix-free Gauss-Newton with Steihaug's truncated CG (trust region).
    GaussNewtonCg,
}

/// How the dense Jacobian is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JacobianMode {
    /// Forward mode when parameters ≤ residuals, reverse mode otherwise.
    Auto,
    /// Forward mode (`jacfwd`).
    Forward,
    /// Reverse mode (`jacrev`).
    Reverse,
}

/// Options of [`least_squares`]: the method, its stopping tests and limits, the loss and the
/// bounds. `LsqOptions::default()` is Levenberg-Marquardt with tolerances of `1e-15`.
#[derive(Clone, Debug)]
pub struct LsqOptions {
    /// The algorithm.
    pub method: Method,
    /// How the dense method makes its Jacobian.
    pub jacobian: JacobianMode,
    /// Stop when both the actual and the predicted relative reduction of the sum of squares
    /// are at most `ftol`.
    pub ftol: f64,
    /// Stop when the trust radius is at most `xtol` times the scaled norm of the parameters.
    pub xtol: f64,
    /// Stop when the largest cosine between the residual and a Jacobian column is at most
    /// `gtol` (Gauss-Newton-CG: when `‖Jᵀ r‖ ≤ gtol · ‖r‖²`).
    pub gtol: f64,
    /// Outer iterations (Jacobian evaluations / linearizations).
    pub max_iterations: usize,
    /// The first trust radius is `factor · ‖D x0‖` (or `factor` when that is zero).
    /// MINPACK suggests 100; ferrax uses 1, a more careful first step (see ARCHITECTURE.md:
    /// with 100, BoxBOD from NIST's start 1 runs off to the flat region where SciPy stops).
    pub initial_step_factor: f64,
    /// Undamped Gauss-Newton steps tried after convergence, kept while they lower the sum
    /// of squares (dense method only).
    pub polish_steps: usize,
    /// For Gauss-Newton-CG: the inner CG's tolerance and iteration limit.
    pub cg: CgOptions,
    /// Called after every outer iteration with its report (progress bars, logs).
    pub on_iteration: OnIteration,
    /// For Gauss-Newton-CG: compute the covariance and standard errors at the solution
    /// when there are at most this many parameters (each costs one CG solve with `JᵀJ`,
    /// matrix-free; 0 turns it off).
    pub covariance_up_to: usize,
    /// The loss of the residuals (least squares by default; see [`Loss`]).
    pub loss: Loss,
    /// Bounds on the parameters, one pair per parameter (`f64::INFINITY` for none on a
    /// side), by a change of variables (see [`crate::robust`]).
    pub bounds: Option<Vec<Bound>>,
}

/// A function called after each outer iteration of a solve with that iteration's
/// [`IterationInfo`]: `LsqOptions { on_iteration: OnIteration::new(|i| ...), .. }`.
#[derive(Clone, Default)]
pub struct OnIteration(Option<Arc<IterationCallback>>);

/// What [`OnIteration`] holds.
pub type IterationCallback = dyn Fn(&IterationInfo) + Send + Sync;

impl OnIteration {
    /// A callback that calls `f` with each iteration's report.
    pub fn new(f: impl Fn(&IterationInfo) + Send + Sync + 'static) -> OnIteration {
        OnIteration(Some(Arc::new(f)))
    }
}

impl std::fmt::Debug for OnIteration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "OnIteration(a callback)"
        } else {
            "OnIteration(none)"
        })
    }
}

/// Keeps an iteration's report and hands it to the callback.
fn record(history: &mut Vec<IterationInfo>, opts: &LsqOptions, info: IterationInfo) {
    if let Some(f) = &opts.on_iteration.0 {
        f(&info);
    }
    history.push(info);
}

impl Default for LsqOptions {
    fn default() -> Self {
        LsqOptions {
            method: Method::LevenbergMarquardt,
            jacobian: JacobianMode::Auto,
            ftol: 1e-15,
            xtol: 1e-15,
            gtol: 1e-15,
            max_iterations: 5000,
            initial_step_factor: 1.0,
            polish_steps: 5,
            cg: CgOptions {
                tol: 1e-6,
                max_iterations: 200,
            },
            on_iteration: OnIteration::default(),
            covariance_up_to: 100,
            loss: Loss::Linear,
            bounds: None,
        }
    }
}

/// How a least-squares run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Termination {
    /// The relative reduction of the sum of squares fell below `ftol`.
    Ftol,
    /// The trust radius fell below `xtol` relative to the parameters.
    Xtol,
    /// The gradient test (`gtol`) held.
    Gtol,
    /// The residual is exactly zero.
    ZeroResidual,
    /// `max_iterations` were used up.
    MaxIterations,
    /// No step was accepted in one iteration: [`MAX_TRIALS`] trial steps were rejected, or
    /// the trust radius stopped being a positive finite number (a model that is not finite
    /// near the current point). The result is the last accepted point.
    NoProgress,
}

/// The most trial steps one Levenberg-Marquardt iteration takes before it stops with
/// [`Termination::NoProgress`]: each rejection shrinks the trust radius at least tenfold,
/// so a sound problem reaches the `xtol` test long before.
pub const MAX_TRIALS: usize = 100;

impl Termination {
    /// A short name for reports: `ftol`, `xtol`, `gtol`, `zero-residual`, `max-iterations`
    /// or `no-progress`.
    pub fn name(self) -> &'static str {
        match self {
            Termination::Ftol => "ftol",
            Termination::Xtol => "xtol",
            Termination::Gtol => "gtol",
            Termination::ZeroResidual => "zero-residual",
            Termination::MaxIterations => "max-iterations",
            Termination::NoProgress => "no-progress",
        }
    }
}

/// One outer iteration, for progress reports.
#[derive(Clone, Debug, PartialEq)]
pub struct IterationInfo {
    /// The outer iteration's index, from 0.
    pub iteration: usize,
    /// Residual sum of squares at the end of the iteration (after its accepted step, if
    /// any; with a robust loss, of the rescaled residuals).
    pub rss: f64,
    /// Trust radius after the iteration.
    pub radius: f64,
    /// Levenberg parameter of the last step tried (dense method).
    pub lambda: f64,
    /// Steps tried (rejected ones included).
    pub trials: usize,
    /// The length of the last step tried, in the parameters' units.
    pub step_norm: f64,
}

/// The result of [`least_squares`]: the solution, its residuals and their statistics, what
/// the run cost and how it ended.
#[derive(Clone, Debug)]
pub struct LsqResult {
    /// The parameters found.
    pub params: Vec<f64>,
    /// Residual sum of squares `‖r‖²` (NIST's RSS; the cost `½‖r‖²` is half of it).
    pub rss: f64,
    /// The objective minimized: `½‖r‖²`, or `½ Σ C² ρ((r/C)²)` with a robust loss.
    pub cost: f64,
    /// The residuals at `params` (of the residual function as given, not rescaled by a
    /// loss).
    pub residuals: Vec<f64>,
    /// Outer iterations.
    pub iterations: usize,
    /// Evaluations of the residual function (Jacobian evaluations not included).
    pub residual_evaluations: usize,
    /// Dense Jacobian evaluations (dense method).
    pub jacobian_evaluations: usize,
    /// Linearizations of the residual function (Gauss-Newton-CG: one per outer iteration,
    /// and one at the solution for the covariance when it is computed).
    pub linearizations: usize,
    /// Gauss-Newton products `Jᵀ J v` (Gauss-Newton-CG; the covariance's solves included).
    pub products: usize,
    /// How the run ended.
    pub termination: Termination,
    /// `sqrt(diag((JᵀJ)⁻¹) · rss / (m − n))` at the solution (dense method, m > n);
    /// infinite for a parameter the Jacobian does not determine.
    pub standard_errors: Option<Vec<f64>>,
    /// `(JᵀJ)⁻¹ · rss / (m − n)`, `n × n` row-major, when `standard_errors` is given
    /// (Gauss-Newton-CG: matrix-free, one CG solve per column; infinite entries in the
    /// row and column of a parameter the solves cannot determine).
    pub covariance: Option<Vec<f64>>,
    /// The iterations' reports, in order: what [`LsqOptions::on_iteration`] was called
    /// with.
    pub history: Vec<IterationInfo>,
}

/// Fits `residual_fn(x) ≈ 0` in the least-squares sense from `x0` (f64 parameters).
///
/// ```
/// use ferrax::{Array, Tensor};
/// use ferrax_solvers::{least_squares, LsqOptions};
/// // y = a exp(b t): three exact points of a = 2, b = -0.5
/// let t = Tensor::new(Array::from_slice(&[0.0f64, 1.0, 2.0]));
/// let y = Tensor::new(Array::from_slice(&[2.0f64, 2.0 * (-0.5f64).exp(), 2.0 * (-1.0f64).exp()]));
/// let r = |p: Tensor| p.index_axis(0, 0) * (p.index_axis(0, 1) * &t).exp() - &y;
/// let fit = least_squares(r, &[1.0, 0.0], &LsqOptions::default()).unwrap();
/// assert!((fit.params[0] - 2.0).abs() < 1e-12 && (fit.params[1] + 0.5).abs() < 1e-12);
/// ```
pub fn least_squares(
    residual_fn: impl Fn(Tensor) -> Tensor,
    x0: &[f64],
    opts: &LsqOptions,
) -> Result<LsqResult> {
    if x0.is_empty() {
        return Err(input("least_squares", "no parameters: x0 is empty"));
    }
    check_finite("x0", x0)?;
    check_options(opts)?;
    opts.loss.check()?;
    if let Some(b) = &opts.bounds {
        check_bounds(b, x0)?;
    }
    let solve = |f: &dyn Fn(Tensor) -> Tensor, x0: &[f64]| match opts.method {
        Method::LevenbergMarquardt => levenberg_marquardt(f, x0, opts),
        Method::GaussNewtonCg => gauss_newton_cg(f, x0, opts),
    };
    if opts.loss == Loss::Linear && opts.bounds.is_none() {
        return solve(&residual_fn, x0);
    }
    // the rewritten problem (see `robust`): over internal parameters, of rescaled residuals
    let loss = opts.loss;
    let bounds = opts.bounds.as_deref();
    let to_x = |u: Tensor| match bounds {
        Some(b) => external(b, &u),
        None => u,
    };
    let inner = |u: Tensor| loss.rescale(&residual_fn(to_x(u)));
    let u0: Vec<f64> = match bounds {
        Some(b) => b.iter().zip(x0).map(|(&b, &x)| to_internal(b, x)).collect(),
        None => x0.to_vec(),
    };
    // the inner solve's covariance would be over u, not x: it is computed below, once
    let inner_opts = LsqOptions {
        covariance_up_to: 0,
        ..opts.clone()
    };
    let mut fit = match opts.method {
        Method::LevenbergMarquardt => levenberg_marquardt(&inner, &u0, &inner_opts),
        Method::GaussNewtonCg => gauss_newton_cg(&inner, &u0, &inner_opts),
    }?;
    if let Some(b) = bounds {
        fit.params = b
            .iter()
            .zip(&fit.params)
            .map(|(&b, &u)| to_external(b, u))
            .collect();
    }
    // the residuals, their sum of squares and the objective at the solution, as given
    let x = tensor(&fit.params)?;
    fit.residuals = residual_fn(x.clone()).to_vec::<f64>()?;
    fit.rss = dot(&fit.residuals, &fit.residuals);
    fit.cost = loss.cost(&fit.residuals);
    // standard errors of x, not of the internal parameters: the Jacobian of the rescaled
    // residuals with respect to x at the solution
    let (m, n) = (fit.residuals.len(), fit.params.len());
    let outer = |x: Tensor| loss.rescale(&residual_fn(x));
    let rescaled = outer(x.clone()).to_vec::<f64>()?;
    let rss_scaled = dot(&rescaled, &rescaled);
    fit.covariance = match opts.method {
        _ if m <= n => None,
        Method::LevenbergMarquardt => {
            let j = jacfwd(outer, &x)?.to_vec::<f64>()?;
            fit.jacobian_evaluations += 1;
            Some(covariance(&j, m, n, rss_scaled)?)
        }
        Method::GaussNewtonCg if n <= opts.covariance_up_to => {
            let (cov, products) = covariance_matrix_free(&outer, &fit.params, rss_scaled, m)?;
            fit.linearizations += 1;
            fit.products += products;
            Some(cov)
        }
        Method::GaussNewtonCg => None,
    };
    fit.standard_errors = fit
        .covariance
        .as_ref()
        .map(|c| (0..n).map(|k| c[k * n + k].sqrt()).collect());
    Ok(fit)
}

/// Refuses options that would make a run meaningless rather than fail: a NaN or negative
/// tolerance is never met (every run silently uses up `max_iterations`), an infinite one
/// stops at once, and a first radius that is not finite and positive gives NaN steps.
fn check_options(opts: &LsqOptions) -> Result<()> {
    for (name, v) in [
        ("ftol", opts.ftol),
        ("xtol", opts.xtol),
        ("gtol", opts.gtol),
        ("cg.tol", opts.cg.tol),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            return Err(input(
                "least_squares",
                format!("{name} must be a finite number >= 0, got {v}"),
            ));
        }
    }
    let f = opts.initial_step_factor;
    if !(f.is_finite() && f > 0.0) {
        return Err(input(
            "least_squares",
            format!("initial_step_factor must be finite and positive, got {f}"),
        ));
    }
    Ok(())
}

/// Refuses a residual function with no values: every point fits an empty data set equally
/// well, so there is nothing to fit and no answer to report.
fn check_residual_count(m: usize) -> Result<()> {
    if m == 0 {
        return Err(input(
            "least_squares",
            "the residual function returns no values: there is nothing to fit",
        ));
    }
    Ok(())
}

fn tensor(x: &[f64]) -> Result<Tensor> {
    Ok(Tensor::new(Array::from_vec(x.to_vec(), &[x.len()])?))
}

/// The first output of a program applied to one tensor (a failed tensor on error).
fn call1(p: &Program, x: Tensor) -> Tensor {
    match p.call(&[x]) {
        Ok(mut outs) => outs.remove(0),
        Err(e) => Tensor::from_error(e),
    }
}

/// The residual and Jacobian programs of a residual function, made once.
struct Dense {
    residual: Program,
    jacobian: Program,
    m: usize,
    n: usize,
    residual_evaluations: usize,
    jacobian_evaluations: usize,
}

impl Dense {
    fn new(f: &dyn Fn(Tensor) -> Tensor, x0: &[f64], mode: JacobianMode) -> Result<Dense> {
        let n = x0.len();
        let xt = tensor(x0)?;
        let residual = make_jaxpr(f, &xt)?;
        let outs = residual.out_avals();
        let out = &outs[0];
        if out.dtype != DType::F64 {
            return Err(input(
                "least_squares",
                format!("the residual function must return f64 values, it returns {out}"),
            ));
        }
        // The shape comes from the user's function: count its elements with checked
        // arithmetic, and make sure the m×n Jacobian can exist before asking for it.
        let m = out
            .shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| {
                input(
                    "least_squares",
                    format!("the residual function returns {out}, whose size overflows"),
                )
            })?;
        check_residual_count(m)?;
        if m.checked_mul(n)
            .and_then(|e| e.checked_mul(std::mem::size_of::<f64>()))
            .is_none_or(|b| b > isize::MAX as usize)
        {
            return Err(input(
                "least_squares",
                format!("the {m}×{n} Jacobian is too large to hold in memory"),
            ));
        }
        let forward = match mode {
            JacobianMode::Forward => true,
            JacobianMode::Reverse => false,
            JacobianMode::Auto => n <= m,
        };
        let rp = &residual;
        let jacobian = make_jaxpr(
            |x: Tensor| {
                let j = if forward {
                    jacfwd(|z: Tensor| call1(rp, z), &x)
                } else {
                    jacrev(|z: Tensor| call1(rp, z), &x)
                };
                j.map(|j| j.reshape(&[m as isize, n as isize]))
                    .unwrap_or_else(Tensor::from_error)
            },
            &xt,
        )?;
        Ok(Dense {
            residual,
            jacobian,
            m,
            n,
            residual_evaluations: 0,
            jacobian_evaluations: 0,
        })
    }

    fn residual(&mut self, x: &[f64]) -> Result<Vec<f64>> {
        self.residual_evaluations += 1;
        let out = self
            .residual
            .eval(&[Array::from_vec(x.to_vec(), &[self.n])?])?;
        Ok(out[0].to_vec::<f64>()?)
    }

    fn jacobian(&mut self, x: &[f64]) -> Result<Vec<f64>> {
        self.jacobian_evaluations += 1;
        let out = self
            .jacobian
            .eval(&[Array::from_vec(x.to_vec(), &[self.n])?])?;
        Ok(out[0].to_vec::<f64>()?)
    }
}

/// Column norms of a row-major m×n matrix.
fn column_norms(j: &[f64], m: usize, n: usize) -> Vec<f64> {
    (0..n)
        .map(|c| {
            (0..m)
                .map(|i| j[i * n + c] * j[i * n + c])
                .sum::<f64>()
                .sqrt()
        })
        .collect()
}

/// The SVD of `J D⁻¹`: (singular values, U as m×k row-major, V as n×k row-major).
struct ScaledSvd {
    s: Vec<f64>,
    u: Vec<f64>,
    v: Vec<f64>,
    k: usize,
}

fn scaled_svd(j: &[f64], m: usize, n: usize, d: &[f64]) -> Result<ScaledSvd> {
    let a = Mat::<f64>::from_fn(m, n, |i, c| j[i * n + c] / d[c]);
    let svd = a
        .thin_svd()
        .map_err(|e| SolverError::NonFinite(format!("the SVD of the Jacobian failed: {e:?}")))?;
    let k = m.min(n);
    let s: Vec<f64> = (0..k).map(|i| svd.S().column_vector()[i]).collect();
    let (u, v) = (svd.U(), svd.V());
    let u = (0..m)
        .flat_map(|i| (0..k).map(move |c| u[(i, c)]))
        .collect();
    let v = (0..n)
        .flat_map(|i| (0..k).map(move |c| v[(i, c)]))
        .collect();
    Ok(ScaledSvd { s, u, v, k })
}

impl ScaledSvd {
    /// The scaled step `D p` for Levenberg parameter `lam` (pseudo-inverse at 0).
    fn step(&self, b: &[f64], lam: f64, keep: &[bool], n: usize) -> Vec<f64> {
        let c: Vec<f64> = (0..self.k)
            .map(|i| {
                if keep[i] {
                    self.s[i] * b[i] / (self.s[i] * self.s[i] + lam)
                } else {
                    0.0
                }
            })
            .collect();
        (0..n)
            .map(|row| {
                -(0..self.k)
                    .map(|i| self.v[row * self.k + i] * c[i])
                    .sum::<f64>()
            })
            .collect()
    }
}

/// The Levenberg-Marquardt step for radius `delta`: `(p, λ)` with `‖D p‖ ≈ Δ` (within 10%)
/// or the Gauss-Newton step (λ = 0) when that is inside.
fn lm_step(
    j: &[f64],
    m: usize,
    n: usize,
    r: &[f64],
    d: &[f64],
    delta: f64,
) -> Result<(Vec<f64>, f64)> {
    let svd = scaled_svd(j, m, n, d)?;
    let k = svd.k;
    let b: Vec<f64> = (0..k)
        .map(|i| (0..m).map(|row| svd.u[row * k + i] * r[row]).sum())
        .collect();
    let smax = svd.s.iter().cloned().fold(0.0, f64::max);
    let keep: Vec<bool> = svd
        .s
        .iter()
        .map(|&s| s > smax * f64::EPSILON * m.max(n) as f64)
        .collect();
    let unscale = |ps: Vec<f64>| ps.iter().zip(d).map(|(p, d)| p / d).collect::<Vec<_>>();
    let p0 = svd.step(&b, 0.0, &keep, n);
    if norm(&p0) <= 1.1 * delta {
        return Ok((unscale(p0), 0.0));
    }
    // ‖D p(λ)‖ decreases in λ: Newton on 1/‖D p(λ)‖ = 1/Δ (nearly linear), safeguarded
    // by a bracket.
    let sb: f64 = (0..k)
        .map(|i| (svd.s[i] * b[i]).powi(2))
        .sum::<f64>()
        .sqrt();
    let (mut lo, mut hi) = (0.0f64, sb / delta);
    let mut lam = 0.0;
    let mut p = p0;
    for _ in 0..100 {
        let pn = norm(&p);
        if (pn - delta).abs() <= 0.1 * delta {
            break;
        }
        if pn > delta {
            lo = lo.max(lam);
        } else {
            hi = hi.min(lam);
        }
        let dn2: f64 = -2.0
            * (0..k)
                .filter(|&i| keep[i])
                .map(|i| {
                    let s2 = svd.s[i] * svd.s[i];
                    s2 * b[i] * b[i] / (s2 + lam).powi(3)
                })
                .sum::<f64>();
        let dn = dn2 / (2.0 * pn);
        let newton = lam + (1.0 / pn - 1.0 / delta) / (dn / (pn * pn));
        lam = if newton > lo && newton < hi && newton.is_finite() {
            newton
        } else {
            0.5 * (lo + hi)
        };
        p = svd.step(&b, lam, &keep, n);
    }
    Ok((unscale(p), lam))
}

/// One Levenberg-Marquardt iteration's report.
fn lm_info(
    iteration: usize,
    fnorm: f64,
    radius: f64,
    lambda: f64,
    trials: usize,
    step_norm: f64,
) -> IterationInfo {
    IterationInfo {
        iteration,
        rss: fnorm * fnorm,
        radius,
        lambda,
        trials,
        step_norm,
    }
}

fn levenberg_marquardt(
    f: &dyn Fn(Tensor) -> Tensor,
    x0: &[f64],
    opts: &LsqOptions,
) -> Result<LsqResult> {
    let mut pr = Dense::new(f, x0, opts.jacobian)?;
    let (m, n) = (pr.m, pr.n);
    let mut x = x0.to_vec();
    let mut r = pr.residual(&x)?;
    check_finite("the residual function at x0", &r)?;
    let mut fnorm = norm(&r);
    let mut d: Vec<f64> = vec![];
    let mut delta = 0.0;
    let mut first = true;
    let mut termination = Termination::MaxIterations;
    let mut history = vec![];
    let mut iterations = 0;
    'outer: for it in 0..opts.max_iterations {
        iterations = it + 1;
        let j = pr.jacobian(&x)?;
        check_finite("the Jacobian", &j)?;
        let cn = column_norms(&j, m, n);
        if d.is_empty() {
            d = cn.iter().map(|&c| if c > 0.0 { c } else { 1.0 }).collect();
            let xn = norm(&x.iter().zip(&d).map(|(a, b)| a * b).collect::<Vec<_>>());
            delta = if xn > 0.0 {
                opts.initial_step_factor * xn
            } else {
                opts.initial_step_factor
            };
        } else {
            for (di, ci) in d.iter_mut().zip(&cn) {
                *di = di.max(*ci);
            }
        }
        if fnorm == 0.0 {
            termination = Termination::ZeroResidual;
            break;
        }
        // gradient test: the largest cosine between r and a column of J
        let gnorm = (0..n)
            .filter(|&c| cn[c] > 0.0)
            .map(|c| ((0..m).map(|i| j[i * n + c] * r[i]).sum::<f64>() / (cn[c] * fnorm)).abs())
            .fold(0.0, f64::max);
        if gnorm <= opts.gtol {
            termination = Termination::Gtol;
            break;
        }
        let mut trials = 0;
        let mut lambda;
        let mut step_norm;
        loop {
            trials += 1;
            let (p, par) = lm_step(&j, m, n, &r, &d, delta)?;
            lambda = par;
            step_norm = norm(&p);
            let dp: Vec<f64> = p.iter().zip(&d).map(|(a, b)| a * b).collect();
            let pnorm = norm(&dp);
            if first {
                delta = delta.min(pnorm);
                first = false;
            }
            let xn = axpy(1.0, &p, &x);
            let rn = pr.residual(&xn)?;
            let fnorm1 = if rn.iter().all(|v| v.is_finite()) {
                norm(&rn)
            } else {
                f64::INFINITY
            };
            let actred = if 0.1 * fnorm1 < fnorm {
                1.0 - (fnorm1 / fnorm).powi(2)
            } else {
                -1.0
            };
            let jp: Vec<f64> = (0..m)
                .map(|i| (0..n).map(|c| j[i * n + c] * p[c]).sum())
                .collect();
            let t1 = norm(&jp) / fnorm;
            let t2 = par.sqrt() * pnorm / fnorm;
            let prered = t1 * t1 + t2 * t2 / 0.5;
            let dirder = -(t1 * t1 + t2 * t2);
            let ratio = if prered != 0.0 { actred / prered } else { 0.0 };
            if ratio <= 0.25 {
                let mut temp = if actred >= 0.0 {
                    0.5
                } else {
                    0.5 * dirder / (dirder + 0.5 * actred)
                };
                if 0.1 * fnorm1 >= fnorm || temp < 0.1 {
                    temp = 0.1;
                }
                delta = temp * delta.min(pnorm / 0.1);
            } else if par == 0.0 || ratio >= 0.75 {
                delta = pnorm / 0.5;
            }
            if ratio >= 1e-4 {
                x = xn;
                r = rn;
                fnorm = fnorm1;
            }
            let xnorm = norm(&x.iter().zip(&d).map(|(a, b)| a * b).collect::<Vec<_>>());
            let stop = if actred.abs() <= opts.ftol && prered <= opts.ftol && 0.5 * ratio <= 1.0 {
                Some(Termination::Ftol)
            } else if delta <= opts.xtol * xnorm {
                Some(Termination::Xtol)
            } else if (ratio.is_nan() || ratio < 1e-4)
                && (trials >= MAX_TRIALS || !(delta.is_finite() && delta > 0.0))
            {
                // a rejected step (a NaN ratio is one) with nowhere left to go: found by
                // the fuzzer, a data point at 1e308 made the predicted reduction NaN, and
                // the trials never ended
                Some(Termination::NoProgress)
            } else {
                None
            };
            if let Some(t) = stop {
                record(
                    &mut history,
                    opts,
                    lm_info(it, fnorm, delta, lambda, trials, step_norm),
                );
                termination = t;
                break 'outer;
            }
            if ratio >= 1e-4 {
                break;
            }
        }
        record(
            &mut history,
            opts,
            lm_info(it, fnorm, delta, lambda, trials, step_norm),
        );
    }
    // Polish: undamped Gauss-Newton steps while they do not increase the sum of squares.
    for _ in 0..opts.polish_steps {
        if fnorm == 0.0 {
            break;
        }
        let j = pr.jacobian(&x)?;
        let cn = column_norms(&j, m, n);
        let dd: Vec<f64> = cn.iter().map(|&c| if c > 0.0 { c } else { 1.0 }).collect();
        let (p, _) = lm_step(&j, m, n, &r, &dd, f64::INFINITY)?;
        let xn = axpy(1.0, &p, &x);
        let rn = pr.residual(&xn)?;
        let f1 = norm(&rn);
        if !(f1.is_finite() && f1 <= fnorm) {
            break;
        }
        x = xn;
        r = rn;
        fnorm = f1;
    }
    let j = pr.jacobian(&x)?;
    let rss = fnorm * fnorm;
    let covariance = if m > n {
        Some(covariance(&j, m, n, rss)?)
    } else {
        None
    };
    let standard_errors = covariance
        .as_ref()
        .map(|c| (0..n).map(|k| c[k * n + k].sqrt()).collect());
    Ok(LsqResult {
        params: x,
        rss,
        cost: 0.5 * rss,
        residuals: r,
        iterations,
        residual_evaluations: pr.residual_evaluations,
        jacobian_evaluations: pr.jacobian_evaluations,
        linearizations: 0,
        products: 0,
        termination,
        standard_errors,
        covariance,
        history,
    })
}

/// `sqrt(diag((JᵀJ)⁻¹) · rss/(m − n))`: the square roots of [`covariance`]'s diagonal;
/// infinite for a parameter the Jacobian does not determine.
pub fn standard_errors(j: &[f64], m: usize, n: usize, rss: f64) -> Result<Vec<f64>> {
    let cov = covariance(j, m, n, rss)?;
    Ok((0..n).map(|c| cov[c * n + c].sqrt()).collect())
}

/// `(JᵀJ)⁻¹ · rss/(m − n)` (`n × n`, row-major), through the SVD of the column-scaled
/// Jacobian; the row and column of a parameter the Jacobian does not determine (a part of
/// it along a singular direction) are infinite.
pub fn covariance(j: &[f64], m: usize, n: usize, rss: f64) -> Result<Vec<f64>> {
    // m·n is checked: m and n are the caller's, and a product that wraps could match
    // `j.len()` by accident.
    if m.checked_mul(n) != Some(j.len()) || m <= n {
        return Err(input(
            "covariance",
            format!(
                "need an m×n Jacobian with m > n, got {} values for {m}×{n}",
                j.len()
            ),
        ));
    }
    if !(rss.is_finite() && rss >= 0.0) {
        return Err(input(
            "covariance",
            format!("the residual sum of squares must be finite and >= 0, got {rss}"),
        ));
    }
    check_finite("the Jacobian", j)?;
    let cn = column_norms(j, m, n);
    let d: Vec<f64> = cn.iter().map(|&c| if c > 0.0 { c } else { 1.0 }).collect();
    let svd = scaled_svd(j, m, n, &d)?;
    let smax = svd.s.iter().cloned().fold(0.0, f64::max);
    let sigma2 = rss / (m - n) as f64;
    let tiny = smax * f64::EPSILON * m as f64;
    let undetermined: Vec<bool> = (0..n)
        .map(|c| (0..svd.k).any(|i| svd.s[i] <= tiny && svd.v[c * svd.k + i].abs() > 1e-12))
        .collect();
    let mut cov = vec![0.0; n * n];
    for a in 0..n {
        for b in 0..n {
            cov[a * n + b] = if undetermined[a] || undetermined[b] {
                f64::INFINITY
            } else {
                let mut acc = 0.0;
                for i in (0..svd.k).filter(|&i| svd.s[i] > tiny) {
                    acc += svd.v[a * svd.k + i] * svd.v[b * svd.k + i] / (svd.s[i] * svd.s[i]);
                }
                acc * sigma2 / (d[a] * d[b])
            };
        }
    }
    Ok(cov)
}

/// [`covariance`] without forming the Jacobian: column `k` of `(JᵀJ)⁻¹` by CG on the
/// Gauss-Newton operator of one linearization at `x` (one CG solve per parameter, each
/// product `JᵀJ v` linear work only), scaled by `rss/(m − n)`. A column whose solve does
/// not converge (`JᵀJ` singular or too ill-conditioned for CG) makes that parameter's row
/// and column infinite. Returns the covariance and the products used.
pub fn covariance_matrix_free(
    f: &dyn Fn(Tensor) -> Tensor,
    x: &[f64],
    rss: f64,
    m: usize,
) -> Result<(Vec<f64>, usize)> {
    let n = x.len();
    if m <= n {
        return Err(input(
            "covariance",
            format!("need more residuals than parameters, got {m} for {n}"),
        ));
    }
    let gn = ferrax::gauss_newton(f, &tensor(x)?)?;
    let op = TensorOperator::new(&[n], |v: &Tensor| gn.apply(v));
    let opts = crate::cg::CgOptions {
        tol: 1e-12,
        max_iterations: 20 * n + 100,
    };
    let sigma2 = rss / (m - n) as f64;
    let mut cov = vec![0.0; n * n];
    let mut undetermined = vec![false; n];
    let mut products = 0;
    for k in 0..n {
        let mut e = vec![0.0; n];
        e[k] = 1.0;
        let sol = crate::cg::conjugate_gradient(&op, &e, &opts)?;
        products += sol.products;
        if sol.termination != crate::cg::CgTermination::Converged {
            undetermined[k] = true;
        }
        for (a, v) in sol.x.iter().enumerate() {
            cov[a * n + k] = v * sigma2;
        }
    }
    // symmetric by definition: average the two solves' rounding
    for a in 0..n {
        for b in 0..a {
            let v = 0.5 * (cov[a * n + b] + cov[b * n + a]);
            let v = if undetermined[a] || undetermined[b] {
                f64::INFINITY
            } else {
                v
            };
            cov[a * n + b] = v;
            cov[b * n + a] = v;
        }
        if undetermined[a] {
            cov[a * n + a] = f64::INFINITY;
        }
    }
    Ok((cov, products))
}

fn gauss_newton_cg(
    f: &dyn Fn(Tensor) -> Tensor,
    x0: &[f64],
    opts: &LsqOptions,
) -> Result<LsqResult> {
    let n = x0.len();
    let mut x = x0.to_vec();
    let mut delta = opts.initial_step_factor * norm(x0).max(1.0);
    let mut linearizations = 0;
    let mut residual_evaluations = 0;
    let mut products = 0;
    let mut history = vec![];
    let mut termination = Termination::MaxIterations;
    let mut iterations = 0;
    let mut rss = f64::NAN;
    let mut residuals = vec![];
    'outer: for it in 0..opts.max_iterations {
        iterations = it + 1;
        // One linearization per outer iteration: J and Jᵀ share its residuals.
        let gn = ferrax::gauss_newton(f, &tensor(&x)?)?;
        linearizations += 1;
        residual_evaluations += 1;
        let r = gn.residual().to_vec::<f64>().map_err(SolverError::from)?;
        check_residual_count(r.len())?;
        check_finite("the residual function", &r)?;
        rss = dot(&r, &r);
        residuals = r;
        if rss == 0.0 {
            termination = Termination::ZeroResidual;
            break;
        }
        let g: Tensor = gn.gradient()?;
        let g = g.to_vec::<f64>()?;
        if norm(&g) <= opts.gtol * rss {
            termination = Termination::Gtol;
            break;
        }
        let op = TensorOperator::new(&[n], |v: &Tensor| gn.apply(v));
        let mut trials = 0;
        loop {
            trials += 1;
            let st = steihaug(&op, &g, delta, &opts.cg)?;
            products += st.products;
            let xn = axpy(1.0, &st.p, &x);
            residual_evaluations += 1;
            let rn = f(tensor(&xn)?).to_vec::<f64>()?;
            let rss1 = if rn.iter().all(|v| v.is_finite()) {
                dot(&rn, &rn)
            } else {
                f64::INFINITY
            };
            let actual = 0.5 * (rss - rss1);
            let predicted = -st.model_change;
            let ratio = if predicted > 0.0 {
                actual / predicted
            } else {
                -1.0
            };
            let pnorm = norm(&st.p);
            if ratio < 0.25 {
                delta = 0.25 * pnorm.min(delta);
            } else if ratio > 0.75 && pnorm >= 0.99 * delta {
                delta *= 2.0;
            }
            if ratio > 1e-4 {
                x = xn;
                let done = actual <= opts.ftol * 0.5 * rss;
                rss = rss1;
                residuals = rn;
                record(
                    &mut history,
                    opts,
                    IterationInfo {
                        iteration: it,
                        rss,
                        radius: delta,
                        lambda: 0.0,
                        trials,
                        step_norm: pnorm,
                    },
                );
                if done {
                    termination = Termination::Ftol;
                    break 'outer;
                }
                break;
            }
            if delta <= opts.xtol * norm(&x).max(1.0) {
                termination = Termination::Xtol;
                break 'outer;
            }
        }
    }
    // covariance at the solution, matrix-free: one more linearization, n CG solves
    let m = residuals.len();
    let (covariance, standard_errors) = if m > n && n <= opts.covariance_up_to && rss.is_finite() {
        let (cov, used) = covariance_matrix_free(f, &x, rss, m)?;
        linearizations += 1;
        products += used;
        let se = (0..n).map(|k| cov[k * n + k].sqrt()).collect();
        (Some(cov), Some(se))
    } else {
        (None, None)
    };
    Ok(LsqResult {
        params: x,
        rss,
        cost: 0.5 * rss,
        residuals,
        iterations,
        residual_evaluations,
        jacobian_evaluations: 0,
        linearizations,
        products,
        termination,
        standard_errors,
        covariance,
        history,
    })
}
