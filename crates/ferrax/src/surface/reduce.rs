//! Reductions: sums, means, extrema, argmax, cumulative sums (negative axes count from the
//! end).

use crate::ir::{DType, Error, Primitive, SourceLoc};
use crate::surface::{axes_of, axis_of, binary};
use crate::trace::{bind, fail, try_t, Tensor};

impl Tensor {
    // ---- reductions ----

    /// Sum over the given axes (negative axes count from the end).
    #[track_caller]
    pub fn sum(&self, axes: &[isize]) -> Tensor {
        self.reduce(axes, |axes| Primitive::ReduceSum { axes }, "sum")
    }

    /// Sum of all elements.
    #[track_caller]
    pub fn sum_all(&self) -> Tensor {
        let all: Vec<isize> = (0..self.ndim() as isize).collect();
        self.sum(&all)
    }

    /// Maximum of all elements (NaN-propagating).
    #[track_caller]
    pub fn max_all(&self) -> Tensor {
        let all: Vec<isize> = (0..self.ndim() as isize).collect();
        self.max(&all)
    }

    /// Minimum of all elements (NaN-propagating).
    #[track_caller]
    pub fn min_all(&self) -> Tensor {
        let all: Vec<isize> = (0..self.ndim() as isize).collect();
        self.min(&all)
    }

    /// Mean of all elements (float tensors).
    #[track_caller]
    pub fn mean_all(&self) -> Tensor {
        let all: Vec<isize> = (0..self.ndim() as isize).collect();
        self.mean(&all)
    }

    /// Mean over the given axes (float tensors).
    #[track_caller]
    pub fn mean(&self, axes: &[isize]) -> Tensor {
        let loc = SourceLoc::caller();
        if let Some(d) = self.dtype().filter(|d| !d.is_float()) {
            return fail(Error::DType {
                op: "mean".into(),
                msg: format!("needs a float tensor, got {d}"),
                loc: Some(loc),
            });
        }
        let ax = try_t!(axes_of("mean", axes, self.ndim()), loc);
        let n: usize = ax.iter().map(|&a| self.shape()[a]).product();
        let s = self.reduce(axes, |axes| Primitive::ReduceSum { axes }, "mean");
        binary(Primitive::Div, s.into(), (n as f64).into(), loc)
    }

    /// Maximum over the given axes.
    #[track_caller]
    pub fn max(&self, axes: &[isize]) -> Tensor {
        self.reduce(axes, |axes| Primitive::ReduceMax { axes }, "max")
    }

    /// Minimum over the given axes.
    #[track_caller]
    pub fn min(&self, axes: &[isize]) -> Tensor {
        self.reduce(axes, |axes| Primitive::ReduceMin { axes }, "min")
    }

    /// Index (i64) of the first maximum along an axis.
    #[track_caller]
    pub fn argmax(&self, axis: isize) -> Tensor {
        let loc = SourceLoc::caller();
        let axis = try_t!(axis_of("argmax", axis, self.ndim()), loc);
        bind(
            Primitive::Argmax {
                axis,
                index_dtype: DType::I64,
            },
            &[self],
            loc,
        )
    }

    /// Inclusive cumulative sum along an axis (from the end when `reverse`).
    #[track_caller]
    pub fn cumsum(&self, axis: isize, reverse: bool) -> Tensor {
        let loc = SourceLoc::caller();
        let axis = try_t!(axis_of("cumsum", axis, self.ndim()), loc);
        bind(Primitive::Cumsum { axis, reverse }, &[self], loc)
    }

    #[track_caller]
    fn reduce(&self, axes: &[isize], prim: impl Fn(Vec<usize>) -> Primitive, op: &str) -> Tensor {
        let loc = SourceLoc::caller();
        if let Some(e) = self.error() {
            return Tensor::failed(e.clone());
        }
        let axes = try_t!(axes_of(op, axes, self.ndim()), loc);
        bind(prim(axes), &[self], loc)
    }
}
