//! Unconstrained minimization: `minimize(f, x0, options)` by Newton-CG or L-BFGS.
//!
//! The objective is traced once into a program and its value-and-gradient program is made
//! once (`ferrax::grad_program`: linearize + transpose); evaluations then run programs.
//!
//! * **Newton-CG**: each iteration linearizes the gradient at `x` once
//!   (`ferrax::linearize` of `∇f`): the primal output *is* the gradient, and the linear map
//!   is the Hessian-vector product `v ↦ H v`, applied by conjugate gradients (inexact
//!   Newton, forcing term `min(½, √‖g‖)`) with no primal work per product. Negative
//!   curvature ends CG early; an Armijo backtracking line search follows.
//! * **L-BFGS**: the two-loop recursion on the last `memory` pairs, with a line search
//!   satisfying the strong Wolfe conditions (bracketing and zoom, Nocedal & Wright 3.5-3.6).

use ferrax::{grad_program, linearize, make_jaxpr, Array, DType, Program, Tensor};

use crate::cg::{conjugate_gradient, CgOptions, CgTermination};
use crate::error::{input, Result, SolverError};
use crate::operator::{axpy, check_finite, dot, norm, TensorOperator};

/// Which algorithm `minimize` runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MinMethod {
    /// Inexact Newton: CG on Hessian-vector products, then Armijo backtracking.
    NewtonCg,
    /// L-BFGS with a strong Wolfe line search.
    Lbfgs {
        /// How many of the latest step and gradient-change pairs `(s, y)` the two-loop
        /// recursion uses (`minimize` refuses 0).
        memory: usize,
    },
}

/// Options of [`minimize`]. `MinOptions::default()` is L-BFGS with a memory of 10.
#[derive(Clone, Debug)]
pub struct MinOptions {
    /// The algorithm.
    pub method: MinMethod,
    /// Stop when `‖∇f‖∞ ≤ gtol · max(1, |f|)`.
    pub gtol: f64,
    /// The most iterations before stopping with [`MinTermination::MaxIterations`].
    pub max_iterations: usize,
    /// CG limits for Newton-CG (its tolerance is set per iteration by the forcing term).
    pub cg_max_iterations: usize,
}

impl Default for MinOptions {
    fn default() -> Self {
        MinOptions {
            method: MinMethod::Lbfgs { memory: 10 },
            gtol: 1e-10,
            max_iterations: 1000,
            cg_max_iterations: 500,
        }
    }
}

/// How a minimization ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MinTermination {
    /// The gradient test held: `‖∇f‖∞ ≤ gtol · max(1, |f|)`.
    Gtol,
    /// `max_iterations` were used up.
    MaxIterations,
    /// The line search found no acceptable step (often: the iterate is already as good as
    /// rounding allows).
    LineSearchFailed,
}

/// The result of [`minimize`].
#[derive(Clone, Debug)]
pub struct MinResult {
    /// The last iterate.
    pub x: Vec<f64>,
    /// The objective at `x`.
    pub f: f64,
    /// `‖∇f‖∞` of the last gradient computed: at `x` for L-BFGS; for Newton-CG at the start
    /// of the last iteration, so before its step when the run ends by the iteration limit.
    pub grad_norm: f64,
    /// Iterations begun, counting the one in which the run stopped.
    pub iterations: usize,
    /// Evaluations of the objective alone (Newton-CG's start and line search; L-BFGS
    /// evaluates the value with the gradient and counts them in `gradient_evaluations`).
    pub function_evaluations: usize,
    /// Evaluations of the gradient, with the value (Newton-CG: one per linearization).
    pub gradient_evaluations: usize,
    /// Newton-CG: linearizations of the gradient (one per iteration) and Hessian products.
    pub linearizations: usize,
    /// Newton-CG: Hessian-vector products, over all the CG solves.
    pub hessian_products: usize,
    /// How the run ended.
    pub termination: MinTermination,
}

struct Objective {
    f: Program,
    vg: Program,
    n: usize,
    fevals: usize,
    gevals: usize,
}

impl Objective {
    fn value(&mut self, x: &[f64]) -> Result<f64> {
        self.fevals += 1;
        let out = self.f.eval(&[Array::from_vec(x.to_vec(), &[self.n])?])?;
        Ok(out[0].to_vec::<f64>()?[0])
    }
    fn value_grad(&mut self, x: &[f64]) -> Result<(f64, Vec<f64>)> {
        self.gevals += 1;
        let out = self.vg.eval(&[Array::from_vec(x.to_vec(), &[self.n])?])?;
        Ok((out[0].to_vec::<f64>()?[0], out[1].to_vec::<f64>()?))
    }
}

/// Minimizes a scalar f64 function of a parameter vector.
///
/// ```
/// use ferrax::Tensor;
/// use ferrax_solvers::{minimize, MinMethod, MinOptions};
/// let rosen = |x: Tensor| {
///     let (a, b) = (x.index_axis(0, 0), x.index_axis(0, 1));
///     100.0 * (&b - &a * &a).powi(2) + (1.0 - a).powi(2)
/// };
/// for method in [MinMethod::NewtonCg, MinMethod::Lbfgs { memory: 10 }] {
///     let opts = MinOptions { method, ..MinOptions::default() };
///     let r = minimize(rosen, &[-1.2, 1.0], &opts).unwrap();
///     assert!((r.x[0] - 1.0).abs() < 1e-8 && (r.x[1] - 1.0).abs() < 1e-8, "{method:?}: {:?}", r.x);
/// }
/// ```
pub fn minimize(f: impl Fn(Tensor) -> Tensor, x0: &[f64], opts: &MinOptions) -> Result<MinResult> {
    if x0.is_empty() {
        return Err(input("minimize", "no parameters: x0 is empty"));
    }
    check_finite("x0", x0)?;
    // A NaN or negative gtol is never met and silently turns every run into an iteration
    // limit; an infinite one stops at x0.
    if !(opts.gtol.is_finite() && opts.gtol >= 0.0) {
        return Err(input(
            "minimize",
            format!("gtol must be a finite number >= 0, got {}", opts.gtol),
        ));
    }
    if let MinMethod::Lbfgs { memory: 0 } = opts.method {
        return Err(input(
            "minimize",
            "L-BFGS needs a memory of at least 1 pair",
        ));
    }
    let n = x0.len();
    let xt = Tensor::new(Array::from_vec(x0.to_vec(), &[n])?);
    let fp = make_jaxpr(&f, &xt)?;
    let out = &fp.out_avals()[0];
    if out.ndim() != 0 || out.dtype != DType::F64 {
        return Err(input(
            "minimize",
            format!("the objective must return an f64 scalar, it returns {out}"),
        ));
    }
    let vg = grad_program(&fp)?;
    let mut obj = Objective {
        f: fp,
        vg,
        n,
        fevals: 0,
        gevals: 0,
    };
    match opts.method {
        MinMethod::NewtonCg => newton_cg(&mut obj, x0, opts),
        MinMethod::Lbfgs { memory } => lbfgs(&mut obj, x0, opts, memory),
    }
}

fn inf_norm(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

fn newton_cg(obj: &mut Objective, x0: &[f64], opts: &MinOptions) -> Result<MinResult> {
    let n = obj.n;
    let mut x = x0.to_vec();
    let mut f = obj.value(&x)?;
    check_finite("the objective at x0", &[f])?;
    let (mut linearizations, mut products) = (0, 0);
    let mut termination = MinTermination::MaxIterations;
    let mut gnorm = f64::INFINITY;
    let mut iterations = 0;
    for it in 0..opts.max_iterations {
        iterations = it + 1;
        // One linearization of the gradient: its value is ∇f(x), its linear map is H(x).
        let vg = &obj.vg;
        let (g, hess) = linearize(
            |x: Tensor| match vg.call(&[x]) {
                Ok(mut o) => o.remove(1),
                Err(e) => Tensor::from_error(e),
            },
            &Tensor::new(Array::from_vec(x.clone(), &[n])?),
        )?;
        linearizations += 1;
        obj.gevals += 1;
        let g = g.to_vec::<f64>()?;
        check_finite("the gradient", &g)?;
        gnorm = inf_norm(&g);
        if gnorm <= opts.gtol * f.abs().max(1.0) {
            termination = MinTermination::Gtol;
            break;
        }
        let h = TensorOperator::new(&[n], |v: &Tensor| hess.apply(v));
        let minus_g: Vec<f64> = g.iter().map(|v| -v).collect();
        let forcing = 0.5f64.min(norm(&g).sqrt());
        let cg = conjugate_gradient(
            &h,
            &minus_g,
            &CgOptions {
                tol: forcing,
                max_iterations: opts.cg_max_iterations,
            },
        )?;
        products += cg.products;
        // Negative curvature on the first CG step leaves no Newton information: descend.
        let mut p = cg.x;
        if norm(&p) == 0.0
            || (cg.termination == CgTermination::NegativeCurvature && dot(&p, &g) >= 0.0)
            || dot(&p, &g) >= 0.0
        {
            p = minus_g.clone();
        }
        // Armijo backtracking.
        let slope = dot(&g, &p);
        let mut t = 1.0;
        let mut accepted = false;
        for _ in 0..60 {
            let xn = axpy(t, &p, &x);
            let fnew = obj.value(&xn)?;
            if fnew.is_finite() && fnew <= f + 1e-4 * t * slope {
                x = xn;
                f = fnew;
                accepted = true;
                break;
            }
            t *= 0.5;
        }
        if !accepted {
            termination = MinTermination::LineSearchFailed;
            break;
        }
    }
    Ok(MinResult {
        x,
        f,
        grad_norm: gnorm,
        iterations,
        function_evaluations: obj.fevals,
        gradient_evaluations: obj.gevals,
        linearizations,
        hessian_products: products,
        termination,
    })
}

/// A step length satisfying the strong Wolfe conditions along `p` (c1 = 1e-4, c2 = 0.9),
/// with the value and gradient there; `None` when none is found.
#[allow(clippy::type_complexity)]
fn wolfe(
    obj: &mut Objective,
    x: &[f64],
    f0: f64,
    g0: &[f64],
    p: &[f64],
) -> Result<Option<(f64, f64, Vec<f64>)>> {
    let (c1, c2) = (1e-4, 0.9);
    let d0 = dot(g0, p);
    let mut eval = |a: f64| -> Result<(f64, Vec<f64>, f64)> {
        let (f, g) = obj.value_grad(&axpy(a, p, x))?;
        let d = dot(&g, p);
        Ok((f, g, d))
    };
    let (mut a_prev, mut f_prev, mut d_prev) = (0.0, f0, d0);
    let mut a = 1.0;
    for i in 0..30 {
        let (f, g, d) = eval(a)?;
        if !f.is_finite() || f > f0 + c1 * a * d0 || (i > 0 && f >= f_prev) {
            return zoom(&mut eval, (a_prev, f_prev, d_prev), (a, f, d), f0, d0);
        }
        if d.abs() <= -c2 * d0 {
            return Ok(Some((a, f, g)));
        }
        if d >= 0.0 {
            return zoom(&mut eval, (a, f, d), (a_prev, f_prev, d_prev), f0, d0);
        }
        a_prev = a;
        f_prev = f;
        d_prev = d;
        a *= 2.0;
    }
    Ok(None)
}

#[allow(clippy::type_complexity)]
fn zoom(
    eval: &mut dyn FnMut(f64) -> Result<(f64, Vec<f64>, f64)>,
    mut lo: (f64, f64, f64),
    mut hi: (f64, f64, f64),
    f0: f64,
    d0: f64,
) -> Result<Option<(f64, f64, Vec<f64>)>> {
    let (c1, c2) = (1e-4, 0.9);
    for _ in 0..60 {
        // cubic interpolation, safeguarded by bisection
        let (a0, f0_, d0_) = lo;
        let (a1, f1, d1) = hi;
        let mut a = {
            let d1_ = d0_ + d1 - 3.0 * (f0_ - f1) / (a0 - a1);
            let disc = d1_ * d1_ - d0_ * d1;
            if disc >= 0.0 && hi.1.is_finite() {
                let d2 = disc.sqrt() * (a1 - a0).signum();
                a1 - (a1 - a0) * (d1 + d2 - d1_) / (d1 - d0_ + 2.0 * d2)
            } else {
                f64::NAN
            }
        };
        let (l, h) = (a0.min(a1), a0.max(a1));
        if !(a.is_finite() && a > l + 0.1 * (h - l) && a < h - 0.1 * (h - l)) {
            a = 0.5 * (a0 + a1);
        }
        let (f, g, d) = eval(a)?;
        if !f.is_finite() || f > f0 + c1 * a * d0 || f >= lo.1 {
            hi = (a, f, d);
        } else {
            if d.abs() <= -c2 * d0 {
                return Ok(Some((a, f, g)));
            }
            if d * (hi.0 - lo.0) >= 0.0 {
                hi = lo;
            }
            lo = (a, f, d);
        }
        if (hi.0 - lo.0).abs() < 1e-16 * lo.0.abs().max(1.0) {
            break;
        }
    }
    Ok(None)
}

fn lbfgs(obj: &mut Objective, x0: &[f64], opts: &MinOptions, memory: usize) -> Result<MinResult> {
    let mut x = x0.to_vec();
    let (mut f, mut g) = obj.value_grad(&x)?;
    check_finite("the objective at x0", &[f])?;
    check_finite("the gradient at x0", &g)?;
    let mut hist: Vec<(Vec<f64>, Vec<f64>, f64)> = vec![]; // (s, y, 1/yᵀs)
    let mut termination = MinTermination::MaxIterations;
    let mut iterations = 0;
    for it in 0..opts.max_iterations {
        iterations = it + 1;
        if inf_norm(&g) <= opts.gtol * f.abs().max(1.0) {
            termination = MinTermination::Gtol;
            break;
        }
        // two-loop recursion
        let mut q = g.clone();
        let mut alphas = vec![];
        for (s, y, rho) in hist.iter().rev() {
            let a = rho * dot(s, &q);
            q = axpy(-a, y, &q);
            alphas.push(a);
        }
        let gamma = hist
            .last()
            .map(|(s, y, _)| dot(s, y) / dot(y, y))
            .unwrap_or(1.0 / norm(&g).max(1.0));
        let mut r: Vec<f64> = q.iter().map(|v| gamma * v).collect();
        for ((s, y, rho), a) in hist.iter().zip(alphas.iter().rev()) {
            let b = rho * dot(y, &r);
            r = axpy(a - b, s, &r);
        }
        let mut p: Vec<f64> = r.iter().map(|v| -v).collect();
        if dot(&p, &g) >= 0.0 {
            hist.clear();
            p = g.iter().map(|v| -v).collect();
        }
        let Some((a, fnew, gnew)) = wolfe(obj, &x, f, &g, &p)? else {
            termination = MinTermination::LineSearchFailed;
            break;
        };
        let xn = axpy(a, &p, &x);
        let s: Vec<f64> = xn.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = gnew.iter().zip(&g).map(|(a, b)| a - b).collect();
        let ys = dot(&y, &s);
        if ys > 1e-300 {
            hist.push((s, y, 1.0 / ys));
            if hist.len() > memory {
                hist.remove(0);
            }
        }
        x = xn;
        f = fnew;
        g = gnew;
    }
    if !f.is_finite() {
        return Err(SolverError::NonFinite(format!("the objective became {f}")));
    }
    Ok(MinResult {
        grad_norm: inf_norm(&g),
        x,
        f,
        iterations,
        function_evaluations: obj.fevals,
        gradient_evaluations: obj.gevals,
        linearizations: 0,
        hessian_products: 0,
        termination,
    })
}
