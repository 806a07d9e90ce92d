//! Everyday `jax.numpy` functions that are compositions of primitives: hyperbolic and
//! base-2/base-10 functions, NaN and finiteness tests, `clip`, `var`/`std`, `one_hot`,
//! `eye`, `linspace` and `stack`.
//!
//! Part of the surface: each is written from the primitives the way JAX's `jnp` writes it
//! (no new primitive, so every transformation already covers them). `sinh` goes through
//! `expm1`, so it keeps its precision near zero where `(e^x - e^-x) / 2` would cancel.

use crate::ir::{DType, Error, SourceLoc};
use crate::surface::{axes_of, axis_of, Operand};
use crate::trace::{fail, try_t, Tensor};

impl Tensor {
    /// Hyperbolic sine, `(expm1(x) - expm1(-x)) / 2` (accurate near 0).
    #[track_caller]
    pub fn sinh(&self) -> Tensor {
        (self.expm1() - self.neg().expm1()) * 0.5
    }

    /// Hyperbolic cosine, `(e^x + e^-x) / 2`.
    #[track_caller]
    pub fn cosh(&self) -> Tensor {
        (self.exp() + self.neg().exp()) * 0.5
    }

    /// Base-2 logarithm.
    #[track_caller]
    pub fn log2(&self) -> Tensor {
        self.log() / std::f64::consts::LN_2
    }

    /// Base-10 logarithm.
    #[track_caller]
    pub fn log10(&self) -> Tensor {
        self.log() / std::f64::consts::LN_10
    }

    /// `2^x`.
    #[track_caller]
    pub fn exp2(&self) -> Tensor {
        (self * std::f64::consts::LN_2).exp()
    }

    /// Whether each element is NaN (bool).
    #[track_caller]
    pub fn isnan(&self) -> Tensor {
        self.not_equal(self)
    }

    /// Whether each element is finite: neither infinite nor NaN (bool).
    #[track_caller]
    pub fn isfinite(&self) -> Tensor {
        self.abs().less(f64::INFINITY)
    }

    /// Each element limited to `[lo, hi]`: `minimum(maximum(x, lo), hi)`, as `jnp.clip`.
    #[track_caller]
    pub fn clip(&self, lo: impl Into<Operand>, hi: impl Into<Operand>) -> Tensor {
        self.maximum(lo).minimum(hi)
    }

    /// Variance over the given axes (float tensors): the mean squared deviation from the
    /// mean (`ddof = 0`, numpy's default).
    #[track_caller]
    pub fn var(&self, axes: &[isize]) -> Tensor {
        let loc = SourceLoc::caller();
        let ax = try_t!(axes_of("var", axes, self.ndim()), loc);
        let kept: Vec<isize> = self
            .shape()
            .iter()
            .enumerate()
            .map(|(i, &d)| if ax.contains(&i) { 1 } else { d as isize })
            .collect();
        let centred = self - self.mean(axes).reshape(&kept);
        (&centred * &centred).mean(axes)
    }

    /// Standard deviation over the given axes: `sqrt(var)`.
    #[track_caller]
    pub fn std(&self, axes: &[isize]) -> Tensor {
        self.var(axes).sqrt()
    }

    /// One-hot encoding of an integer tensor: a new last axis of length `n`, 1 where the
    /// index is the value (values outside `0..n` give a row of zeros, as in JAX).
    #[track_caller]
    pub fn one_hot(&self, n: usize, dtype: DType) -> Tensor {
        let loc = SourceLoc::caller();
        if let Some(d) = self
            .dtype()
            .filter(|d| !matches!(d, DType::I32 | DType::I64))
        {
            return fail(Error::DType {
                op: "one_hot".into(),
                msg: format!("needs an integer tensor of indices, got {d}"),
                loc: Some(loc),
            });
        }
        let Some(d) = self.dtype() else {
            return self.clone();
        };
        let mut shape = self.shape().to_vec();
        shape.push(n);
        let last = shape.len() - 1;
        let classes = Tensor::iota(&shape, last, d);
        self.expand_dims(&[-1]).equal(&classes).astype(dtype)
    }

    /// The `n × n` identity matrix.
    #[track_caller]
    pub fn eye(n: usize, dtype: DType) -> Tensor {
        Tensor::iota(&[n, n], 0, DType::I64)
            .equal(Tensor::iota(&[n, n], 1, DType::I64))
            .astype(dtype)
    }

    /// `num` evenly spaced values from `start` to `stop`, both included (`num = 1`: just
    /// `start`; float dtypes).
    #[track_caller]
    pub fn linspace(start: f64, stop: f64, num: usize, dtype: DType) -> Tensor {
        let loc = SourceLoc::caller();
        if !dtype.is_float() {
            return fail(Error::DType {
                op: "linspace".into(),
                msg: format!("makes float values, asked for {dtype}"),
                loc: Some(loc),
            });
        }
        let step = if num > 1 {
            (stop - start) / (num - 1) as f64
        } else {
            0.0
        };
        let values = Tensor::arange(num, dtype) * step + start;
        if let Some(e) = values.error() {
            // too many values to make: that error, not a later one about its parts
            return Tensor::failed(e.clone());
        }
        // the last value is `stop` exactly, as numpy gives it
        match num {
            0 | 1 => values,
            _ => Tensor::concatenate(
                &[
                    values.slice_axis(0, 0, num - 1),
                    Tensor::full(&[1], stop, dtype),
                ],
                0,
            ),
        }
    }

    /// Tensors of one shape stacked along a new axis (negative counts from the end of the
    /// result's axes).
    #[track_caller]
    pub fn stack(tensors: &[Tensor], axis: isize) -> Tensor {
        let loc = SourceLoc::caller();
        let Some(first) = tensors.first() else {
            return fail(Error::Shape {
                op: "stack".into(),
                msg: "needs at least one tensor".into(),
                loc: Some(loc),
            });
        };
        if let Some(e) = tensors.iter().find_map(|t| t.error()) {
            return Tensor::failed(e.clone());
        }
        let ax = try_t!(axis_of("stack", axis, first.ndim() + 1), loc) as isize;
        let parts: Vec<Tensor> = tensors.iter().map(|t| t.expand_dims(&[ax])).collect();
        Tensor::concatenate(&parts, ax)
    }
}
