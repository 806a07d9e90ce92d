//! `stop_gradient` and the numerically stable log-sum-exp family: `logsumexp`, `softmax`,
//! `log_softmax` (JAX's `jax.nn` / `jax.scipy.special` names).
//!
//! Part of the surface: compositions of primitives, except `stop_gradient`, which is one
//! (the identity with a zero derivative). The log-sum-exp family shifts by the maximum
//! before exponentiating, so `logsumexp([1000, 1000])` is `1000 + ln 2`, not infinity, and
//! the shift goes through `stop_gradient`, as in JAX: the result does not depend on it, so
//! its derivative must not either (without it, the maximum's derivative would add terms
//! that cancel only to rounding). A slice whose maximum is not finite is shifted by zero.

use crate::ir::{Error, Primitive, SourceLoc};
use crate::surface::axes_of;
use crate::trace::{bind, try_t, Tensor};

impl Tensor {
    /// The same value, with a zero derivative: forward and reverse mode treat it as a
    /// constant (JAX's `stop_gradient`).
    #[track_caller]
    pub fn stop_gradient(&self) -> Tensor {
        bind(Primitive::StopGradient, &[self], SourceLoc::caller())
    }

    /// `log(sum(exp(x)))` over the given axes (negative axes count from the end), computed
    /// without overflow: shifted by the (non-differentiated) maximum.
    #[track_caller]
    pub fn logsumexp(&self, axes: &[isize]) -> Tensor {
        let loc = SourceLoc::caller();
        let (shift, kept) = try_t!(self.shift_by_max("logsumexp", axes, loc), loc);
        let s = (self - &kept).exp().sum(axes).log();
        s + shift
    }

    /// `exp(x) / sum(exp(x))` along `axis`, computed without overflow.
    #[track_caller]
    pub fn softmax(&self, axis: isize) -> Tensor {
        let loc = SourceLoc::caller();
        let (_, kept) = try_t!(self.shift_by_max("softmax", &[axis], loc), loc);
        let e = (self - &kept).exp();
        let total = e.sum(&[axis]);
        let shape = keep_shape(e.shape(), &[axis]);
        &e / total.reshape(&shape)
    }

    /// `x - logsumexp(x)` along `axis`, computed without overflow.
    #[track_caller]
    pub fn log_softmax(&self, axis: isize) -> Tensor {
        let loc = SourceLoc::caller();
        let (_, kept) = try_t!(self.shift_by_max("log_softmax", &[axis], loc), loc);
        let shifted = self - &kept;
        let total = shifted.exp().sum(&[axis]).log();
        let shape = keep_shape(shifted.shape(), &[axis]);
        &shifted - total.reshape(&shape)
    }

    /// The maximum over `axes` with a zero derivative (zero where it is not finite), and
    /// the same with the reduced axes kept as ones, for broadcasting back.
    fn shift_by_max(
        &self,
        op: &str,
        axes: &[isize],
        loc: SourceLoc,
    ) -> crate::ir::Result<(Tensor, Tensor)> {
        if let Some(e) = self.error() {
            return Err(e.clone());
        }
        if let Some(d) = self.dtype().filter(|d| !d.is_float()) {
            return Err(Error::DType {
                op: op.into(),
                msg: format!("needs a float tensor, got {d}"),
                loc: Some(loc),
            });
        }
        let ax = axes_of(op, axes, self.ndim()).map_err(|e| e.with_loc(loc))?;
        let m = self.max(axes).stop_gradient();
        let finite = m.abs().less(f64::INFINITY);
        let m = Tensor::where_(&finite, &m, 0.0);
        let dims: Vec<isize> = ax.iter().map(|&a| a as isize).collect();
        let kept = m.reshape(&keep_shape(self.shape(), &dims));
        Ok((m, kept))
    }
}

/// `shape` with the given axes (non-negative, in range, or counted from the end) set to 1.
fn keep_shape(shape: &[usize], axes: &[isize]) -> Vec<isize> {
    let r = shape.len() as isize;
    shape
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            let hit = axes
                .iter()
                .any(|&a| (if a < 0 { a + r } else { a }) == i as isize);
            if hit {
                1
            } else {
                d as isize
            }
        })
        .collect()
}
