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

    /// Product over the given axes (1 over none).
    #[track_caller]
    pub fn prod(&self, axes: &[isize]) -> Tensor {
        self.reduce(axes, |axes| Primitive::ReduceProd { axes }, "prod")
    }

    /// Index (i64) of the first minimum along an axis (a NaN counts as the minimum).
    #[track_caller]
    pub fn argmin(&self, axis: isize) -> Tensor {
        let loc = SourceLoc::caller();
        let axis = try_t!(axis_of("argmin", axis, self.ndim()), loc);
        bind(
            Primitive::Argmin {
                axis,
                index_dtype: DType::I64,
            },
            &[self],
            loc,
        )
    }

    /// The indices (i64) that sort along an axis: ascending, stable, NaNs last.
    #[track_caller]
    pub fn argsort(&self, axis: isize) -> Tensor {
        let loc = SourceLoc::caller();
        let axis = try_t!(axis_of("argsort", axis, self.ndim()), loc);
        bind(
            Primitive::Argsort {
                axis,
                index_dtype: DType::I64,
            },
            &[self],
            loc,
        )
    }

    /// Sorted along an axis (ascending, stable, NaNs last): the elements taken in
    /// `argsort`'s order, so the derivative follows each element to its place.
    #[track_caller]
    pub fn sort(&self, axis: isize) -> Tensor {
        let loc = SourceLoc::caller();
        let order = self.argsort(axis);
        try_t!(order.aval(), loc);
        self.take_along_axis(&order, axis)
    }

    /// Inclusive cumulative product along an axis (from the end when `reverse`).
    #[track_caller]
    pub fn cumprod(&self, axis: isize, reverse: bool) -> Tensor {
        self.cumulative(
            axis,
            reverse,
            Primitive::Mul,
            "cumprod",
            SourceLoc::caller(),
        )
    }

    /// Inclusive running maximum along an axis (from the end when `reverse`).
    #[track_caller]
    pub fn cummax(&self, axis: isize, reverse: bool) -> Tensor {
        self.cumulative(axis, reverse, Primitive::Max, "cummax", SourceLoc::caller())
    }

    /// Inclusive running minimum along an axis (from the end when `reverse`).
    #[track_caller]
    pub fn cummin(&self, axis: isize, reverse: bool) -> Tensor {
        self.cumulative(axis, reverse, Primitive::Min, "cummin", SourceLoc::caller())
    }

    /// A cumulative `combine` as a parallel prefix (Hillis-Steele: `log2 n` rounds, each
    /// combining every element with the one `2^k` before it, the identity before the
    /// start), made of `slice`, `pad` and `combine`: so it differentiates (ties of `max`
    /// share the derivative, as `max`'s rule does) and batches with their rules.
    fn cumulative(
        &self,
        axis: isize,
        reverse: bool,
        combine: Primitive,
        op: &str,
        loc: SourceLoc,
    ) -> Tensor {
        if let Some(e) = self.error() {
            return Tensor::failed(e.clone());
        }
        let axis = try_t!(axis_of(op, axis, self.ndim()), loc);
        let dtype = try_t!(self.aval(), loc).dtype;
        if !dtype.is_numeric() {
            return crate::trace::fail(crate::ir::Error::DType {
                op: op.into(),
                msg: format!("needs a numeric tensor, got {dtype}"),
                loc: Some(loc),
            });
        }
        let identity = match (&combine, dtype) {
            (Primitive::Mul, _) => 1.0,
            (Primitive::Max, DType::I32) => i32::MIN as f64,
            (Primitive::Max, DType::I64) => i64::MIN as f64,
            (Primitive::Max, _) => f64::NEG_INFINITY,
            (Primitive::Min, DType::I32) => i32::MAX as f64,
            (Primitive::Min, DType::I64) => i64::MAX as f64,
            _ => f64::INFINITY,
        };
        let fill = Tensor::full(&[], identity, dtype);
        let flip = |t: &Tensor| match reverse {
            true => bind(
                Primitive::Rev {
                    dimensions: vec![axis],
                },
                &[t],
                loc,
            ),
            false => t.clone(),
        };
        let r = self.ndim();
        let n = self.shape()[axis];
        let mut out = flip(self);
        let mut shift = 1;
        while shift < n {
            let mut limit = out.shape().to_vec();
            limit[axis] = n - shift;
            let head = bind(
                Primitive::Slice {
                    start: vec![0; r],
                    limit,
                    strides: vec![1; r],
                },
                &[&out],
                loc,
            );
            let mut low = vec![0; r];
            low[axis] = shift;
            let before = bind(
                Primitive::Pad {
                    low,
                    high: vec![0; r],
                    interior: vec![0; r],
                },
                &[&head, &fill],
                loc,
            );
            out = bind(combine.clone(), &[&out, &before], loc);
            shift *= 2;
        }
        flip(&out)
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
