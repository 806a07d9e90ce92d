//! The solvers on a model's own parameter type: `least_squares_tree` and `minimize_tree`
//! take and return any f64 [`Tree`] (a struct with `#[derive(Tree)]`, a tuple, a map of
//! layers), raveled into one vector for the vector algorithms and unraveled back, inside
//! the traced residual or objective as well (so the solvers' AD sees the model's own code).

use ferrax::{ravel_tree, DType, Tensor, Tree, Unravel};

use crate::error::{input, Result};
use crate::least_squares::{least_squares, LsqOptions, LsqResult};
use crate::minimize::{minimize, MinOptions, MinResult};

/// The raveled f64 start and the way back, or an error naming the first leaf that is not
/// f64.
fn start<P: Tree>(op: &str, p0: &P) -> Result<(Vec<f64>, Unravel<P>)> {
    let (flat, back) = ravel_tree(p0)?;
    if flat.dtype() != Some(DType::F64) {
        return Err(input(op, "the parameters must be f64 tensors"));
    }
    Ok((flat.to_vec::<f64>()?, back))
}

/// `f` of the tree unraveled from a parameter vector (an error travels as a failed tensor
/// to the solver, which reports it).
fn on_tree<P: Tree>(back: &Unravel<P>, f: &impl Fn(P) -> Tensor, theta: Tensor) -> Tensor {
    match back.apply(&theta) {
        Ok(p) => f(p),
        Err(e) => Tensor::from_error(e),
    }
}

/// [`least_squares`] over a tree of f64 parameters: the fitted tree and the run's report
/// (whose `params` are the raveled vector).
///
/// ```
/// use ferrax::{Array, Tensor};
/// use ferrax_solvers::{least_squares_tree, LsqOptions};
/// let t = Tensor::new(Array::from_slice(&[0.0f64, 1.0, 2.0]));
/// let y = Tensor::new(Array::from_slice(&[2.0f64, 2.0 * (-0.5f64).exp(), 2.0 * (-1.0f64).exp()]));
/// // the model's parameters as a tuple: amplitude and rate
/// let r = |(a, b): (Tensor, Tensor)| &a * (&b * &t).exp() - &y;
/// let p0 = (Tensor::scalar(1.0f64), Tensor::scalar(0.0f64));
/// let ((a, b), _) = least_squares_tree(r, &p0, &LsqOptions::default()).unwrap();
/// assert!((a.item().unwrap() - 2.0).abs() < 1e-12 && (b.item().unwrap() + 0.5).abs() < 1e-12);
/// ```
pub fn least_squares_tree<P: Tree>(
    residual_fn: impl Fn(P) -> Tensor,
    p0: &P,
    opts: &LsqOptions,
) -> Result<(P, LsqResult)> {
    let (x0, back) = start("least_squares_tree", p0)?;
    let fit = least_squares(|theta| on_tree(&back, &residual_fn, theta), &x0, opts)?;
    let p = back.apply(&Tensor::from_vec(fit.params.clone(), &[fit.params.len()]))?;
    Ok((p, fit))
}

/// [`minimize`] over a tree of f64 parameters: the minimizing tree and the run's report.
pub fn minimize_tree<P: Tree>(
    f: impl Fn(P) -> Tensor,
    p0: &P,
    opts: &MinOptions,
) -> Result<(P, MinResult)> {
    let (x0, back) = start("minimize_tree", p0)?;
    let run = minimize(|theta| on_tree(&back, &f, theta), &x0, opts)?;
    let p = back.apply(&Tensor::from_vec(run.x.clone(), &[run.x.len()]))?;
    Ok((p, run))
}
