//! Linear operators on flat f64 vectors: what conjugate gradients multiply by.
//!
//! Solvers see vectors of f64. ferrax's linear maps (`LinearMap`, `GaussNewton`) work on
//! tensors; [`TensorOperator`] adapts any tensor-to-tensor linear function of one shape, and
//! [`FnOperator`] any closure on slices.

use ferrax::{Array, DType, Tensor};

use crate::error::{input, Result, SolverError};

/// A square linear operator `v ↦ A v` on vectors of length `dim`.
pub trait LinearOperator {
    /// The length `n` of the vectors it maps (`A` is `n × n`).
    fn dim(&self) -> usize;
    /// The product `A v`; an error when it cannot be computed (a vector of the wrong length
    /// for a [`TensorOperator`], a failed evaluation).
    fn apply(&self, v: &[f64]) -> Result<Vec<f64>>;
}

/// A closure on slices as an operator.
pub struct FnOperator<F: Fn(&[f64]) -> Vec<f64>> {
    /// The length of the vectors it maps.
    pub dim: usize,
    /// The product `v ↦ A v`. The length of what it returns is not checked here (the
    /// conjugate-gradient solvers check it).
    pub f: F,
}

impl<F: Fn(&[f64]) -> Vec<f64>> LinearOperator for FnOperator<F> {
    fn dim(&self) -> usize {
        self.dim
    }
    fn apply(&self, v: &[f64]) -> Result<Vec<f64>> {
        Ok((self.f)(v))
    }
}

/// A linear function of f64 tensors of one shape (a `LinearMap`, a Gauss-Newton operator,
/// a Hessian-vector product) as an operator on flat vectors.
pub struct TensorOperator<F: Fn(&Tensor) -> ferrax::Result<Tensor>> {
    shape: Vec<usize>,
    /// The element count of `shape`, `None` when it overflows `usize`.
    dim: Option<usize>,
    f: F,
}

impl<F: Fn(&Tensor) -> ferrax::Result<Tensor>> TensorOperator<F> {
    /// The operator that applies `f` to f64 tensors of shape `shape`; its dimension is the
    /// shape's element count.
    pub fn new(shape: &[usize], f: F) -> Self {
        TensorOperator {
            shape: shape.to_vec(),
            dim: shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)),
            f,
        }
    }
}

impl<F: Fn(&Tensor) -> ferrax::Result<Tensor>> LinearOperator for TensorOperator<F> {
    /// The element count of the shape; `usize::MAX` when that overflows, which no vector
    /// can have, so solvers refuse it as a dimension mismatch and `apply` refuses it too.
    fn dim(&self) -> usize {
        self.dim.unwrap_or(usize::MAX)
    }
    fn apply(&self, v: &[f64]) -> Result<Vec<f64>> {
        if self.dim != Some(v.len()) {
            return Err(input(
                "TensorOperator",
                format!(
                    "a vector of length {} for an operator on f64{:?} ({})",
                    v.len(),
                    self.shape,
                    match self.dim {
                        Some(n) => format!("{n} elements"),
                        None => "an element count that overflows".to_string(),
                    }
                ),
            ));
        }
        let t = Tensor::new(Array::from_vec(v.to_vec(), &self.shape)?);
        let out = (self.f)(&t)?;
        if out.dtype() != Some(DType::F64) || out.shape() != self.shape.as_slice() {
            return Err(input(
                "TensorOperator",
                format!(
                    "the operator must map f64{:?} to f64{:?}, it returned {:?}",
                    self.shape,
                    self.shape,
                    out.aval().map(|a| a.to_string()).unwrap_or_default()
                ),
            ));
        }
        Ok(out.to_vec::<f64>()?)
    }
}

pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub(crate) fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// `y + alpha x`.
pub(crate) fn axpy(alpha: f64, x: &[f64], y: &[f64]) -> Vec<f64> {
    x.iter().zip(y).map(|(a, b)| b + alpha * a).collect()
}

pub(crate) fn check_finite(what: &str, v: &[f64]) -> Result<()> {
    match v.iter().position(|x| !x.is_finite()) {
        None => Ok(()),
        Some(i) => Err(SolverError::NonFinite(format!(
            "{what}: component {i} is {}",
            v[i]
        ))),
    }
}
