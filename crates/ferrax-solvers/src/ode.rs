//! Fixed-step ODE integration written with `scan`, and a parameter-fitting problem on it.
//!
//! [`rk4`] integrates `y' = f(y)` with the classical fourth-order Runge-Kutta method as one
//! `scan` over the steps: the loop is a primitive of the traced program, so a residual
//! built on it linearizes into a primal loop that stacks each step's residuals and a linear
//! loop that reuses them, and Gauss-Newton-CG's products `Jᵀ J v` run the linear loop and its
//! transpose only. [`DampedOscillator`] is a small problem of that kind: recover the
//! frequency, damping and initial displacement of `x'' + 2ζω x' + ω² x = 0` from noisy
//! samples of `x`.

use ferrax::{scan_with, Array, DType, ScanOptions, Tensor};

/// The states after each of `steps` RK4 steps of size `dt` from `y0`, stacked along a new
/// leading axis (`[steps, ..y0's shape]`). `f` is the autonomous vector field; it may
/// capture tensors (parameters being differentiated, say). A non-finite `dt`, a state that
/// is not float, or more steps than the stacked states can fit in memory are errors.
///
/// ```
/// use ferrax::{Array, Tensor};
/// // y' = -y from 1: after 10 steps of 0.1, exp(-1) to RK4's accuracy
/// let y0 = Tensor::new(Array::from_slice(&[1.0f64]));
/// let ys = ferrax_solvers::ode::rk4(|y: &Tensor| -y, &y0, 0.1, 10).unwrap();
/// let last = ys.to_vec::<f64>().unwrap()[9];
/// assert!((last - (-1.0f64).exp()).abs() < 1e-6);
/// ```
pub fn rk4(
    f: impl Fn(&Tensor) -> Tensor,
    y0: &Tensor,
    dt: f64,
    steps: usize,
) -> ferrax::Result<Tensor> {
    // a NaN or infinite step gives NaN states without saying why; refuse it
    if !dt.is_finite() {
        return Err(ferrax::Error::Input {
            op: "rk4".into(),
            msg: format!("the step size must be finite, got {dt}"),
            loc: None,
        });
    }
    let dtype = y0.aval()?.dtype;
    if !dtype.is_float() {
        return Err(ferrax::Error::DType {
            op: "rk4".into(),
            msg: format!("the initial state must be a float tensor, got {dtype}"),
            loc: None,
        });
    }
    let step = |y: Tensor, (): ()| {
        let k1 = f(&y);
        let k2 = f(&(&y + &k1 * (0.5 * dt)));
        let k3 = f(&(&y + &k2 * (0.5 * dt)));
        let k4 = f(&(&y + &k3 * dt));
        let next = &y + (k1 + k2 * 2.0 + k3 * 2.0 + k4) * (dt / 6.0);
        (next.clone(), next)
    };
    let (_, ys): (Tensor, Tensor) = scan_with(step, y0, &(), &ScanOptions::new().length(steps))?;
    Ok(ys)
}

/// `x'' + 2ζω x' + ω² x = 0` from `x(0) = x0, x'(0) = 0`, sampled at every step of an RK4
/// integration; the parameters are `θ = [ω, ζ, x0]`.
#[derive(Clone, Debug)]
pub struct DampedOscillator {
    /// The RK4 time step, also the time between samples.
    pub dt: f64,
    /// The number of RK4 steps, and of samples.
    pub steps: usize,
    /// The observed displacement after each step.
    pub observed: Vec<f64>,
}

impl DampedOscillator {
    /// Samples of the oscillator with parameters `truth`, with Gaussian noise of standard
    /// deviation `noise` (seeded).
    pub fn synthetic(
        truth: [f64; 3],
        dt: f64,
        steps: usize,
        noise: f64,
        seed: u64,
    ) -> ferrax::Result<Self> {
        let clean = Self::displacement(&Tensor::new(Array::from_slice(&truth)), dt, steps)?;
        let eps = Array::random_normal(seed, &[steps], DType::F64)?.to_vec::<f64>()?;
        let observed = clean
            .to_vec::<f64>()?
            .iter()
            .zip(&eps)
            .map(|(x, e)| x + noise * e)
            .collect();
        Ok(DampedOscillator {
            dt,
            steps,
            observed,
        })
    }

    /// The displacement after each step for parameters `theta = [ω, ζ, x0]` (f64).
    pub fn displacement(theta: &Tensor, dt: f64, steps: usize) -> ferrax::Result<Tensor> {
        let (omega, zeta, x0) = (
            theta.index_axis(0, 0),
            theta.index_axis(0, 1),
            theta.index_axis(0, 2),
        );
        let field = |y: &Tensor| {
            let (x, v) = (y.index_axis(0, 0), y.index_axis(0, 1));
            let accel = -(&omega * &omega) * &x - &zeta * &omega * &v * 2.0;
            Tensor::concatenate(&[v.expand_dims(&[0]), accel.expand_dims(&[0])], 0)
        };
        let y0 = Tensor::concatenate(&[x0.expand_dims(&[0]), Tensor::zeros(&[1], DType::F64)], 0);
        Ok(rk4(field, &y0, dt, steps)?.index_axis(1, 0))
    }

    /// The residual `x(θ) - observed`, for `least_squares`.
    pub fn residual(&self) -> impl Fn(Tensor) -> Tensor + '_ {
        let observed = Tensor::new(Array::from_slice(&self.observed));
        move |theta: Tensor| match Self::displacement(&theta, self.dt, self.steps) {
            Ok(x) => x - &observed,
            Err(e) => Tensor::from_error(e),
        }
    }
}
