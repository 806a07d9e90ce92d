//! Shape operations: transposes, reshapes, squeezes, broadcasts, slices, padding,
//! concatenation and reversal.

use crate::ir::{Error, Primitive, Result, SourceLoc};
use crate::surface::{as_tensor, axes_of, axis_of, Operand};
use crate::trace::{bind, fail, try_t, Tensor};

impl Tensor {
    // ---- shape ----

    /// Permutes the dimensions: output dimension `i` is input dimension `perm[i]`.
    #[track_caller]
    pub fn transpose(&self, perm: &[usize]) -> Tensor {
        bind(
            Primitive::Transpose {
                permutation: perm.to_vec(),
            },
            &[self],
            SourceLoc::caller(),
        )
    }

    /// Reverses the order of the dimensions (the matrix transpose for rank 2).
    #[track_caller]
    pub fn t(&self) -> Tensor {
        let perm: Vec<usize> = (0..self.ndim()).rev().collect();
        self.transpose(&perm)
    }

    /// Row-major reshape; one entry may be -1 (inferred).
    #[track_caller]
    pub fn reshape(&self, shape: &[isize]) -> Tensor {
        let loc = SourceLoc::caller();
        if let Some(e) = self.error() {
            return Tensor::failed(e.clone());
        }
        let new_sizes = try_t!(infer_shape(shape, self.shape()), loc);
        bind(Primitive::Reshape { new_sizes }, &[self], loc)
    }

    /// Removes the given size-1 dimensions.
    #[track_caller]
    pub fn squeeze(&self, axes: &[isize]) -> Tensor {
        let loc = SourceLoc::caller();
        let dimensions = try_t!(axes_of("squeeze", axes, self.ndim()), loc);
        bind(Primitive::Squeeze { dimensions }, &[self], loc)
    }

    /// Inserts size-1 dimensions at the given positions of the result.
    #[track_caller]
    pub fn expand_dims(&self, axes: &[isize]) -> Tensor {
        let loc = SourceLoc::caller();
        let dimensions = try_t!(axes_of("expand_dims", axes, self.ndim() + axes.len()), loc);
        bind(Primitive::ExpandDims { dimensions }, &[self], loc)
    }

    /// Broadcasts to a shape with numpy's rules (trailing dimensions align).
    #[track_caller]
    pub fn broadcast_to(&self, shape: &[usize]) -> Tensor {
        self.broadcast_to_at(shape, SourceLoc::caller())
    }

    pub(crate) fn broadcast_to_at(&self, shape: &[usize], loc: SourceLoc) -> Tensor {
        if let Some(e) = self.error() {
            return Tensor::failed(e.clone());
        }
        if crate::ir::same_shape(self.shape(), shape) {
            return self.clone();
        }
        let r = self.ndim();
        if r > shape.len() {
            return fail(Error::Shape {
                op: "broadcast_to".into(),
                msg: format!(
                    "cannot broadcast {:?} to the lower rank {shape:?}",
                    self.shape()
                ),
                loc: Some(loc),
            });
        }
        let bd: Vec<usize> = (shape.len() - r..shape.len()).collect();
        bind(
            Primitive::BroadcastInDim {
                shape: shape.to_vec(),
                broadcast_dimensions: bd,
            },
            &[self],
            loc,
        )
    }

    /// Elements `start[d] + k * strides[d]` below `limit[d]` along each dimension.
    #[track_caller]
    pub fn slice(&self, start: &[usize], limit: &[usize], strides: &[usize]) -> Tensor {
        bind(
            Primitive::Slice {
                start: start.to_vec(),
                limit: limit.to_vec(),
                strides: strides.to_vec(),
            },
            &[self],
            SourceLoc::caller(),
        )
    }

    /// `x[.., start..end, ..]` along one axis.
    #[track_caller]
    pub fn slice_axis(&self, axis: isize, start: usize, end: usize) -> Tensor {
        let loc = SourceLoc::caller();
        let axis = try_t!(axis_of("slice_axis", axis, self.ndim()), loc);
        let mut lo = vec![0; self.ndim()];
        let mut hi = self.shape().to_vec();
        lo[axis] = start;
        hi[axis] = end;
        let strides = vec![1; self.ndim()];
        bind(
            Primitive::Slice {
                start: lo,
                limit: hi,
                strides,
            },
            &[self],
            loc,
        )
    }

    /// `x[.., i, ..]` along one axis (the axis is removed).
    #[track_caller]
    pub fn index_axis(&self, axis: isize, i: usize) -> Tensor {
        let loc = SourceLoc::caller();
        let ax = try_t!(axis_of("index_axis", axis, self.ndim()), loc);
        if i >= self.shape()[ax] {
            return fail(Error::Shape {
                op: "index_axis".into(),
                msg: format!(
                    "index {i} is out of range for axis {axis} of size {} (shape {:?})",
                    self.shape()[ax],
                    self.shape()
                ),
                loc: Some(loc),
            });
        }
        let s = self.slice_axis(axis, i, i + 1);
        bind(
            Primitive::Squeeze {
                dimensions: vec![ax],
            },
            &[&s],
            loc,
        )
    }

    /// Pads with `low`/`high` elements before/after each dimension and `interior` between
    /// neighbours, all equal to `value` (in the tensor's dtype).
    #[track_caller]
    pub fn pad(
        &self,
        low: &[usize],
        high: &[usize],
        interior: &[usize],
        value: impl Into<Operand>,
    ) -> Tensor {
        let loc = SourceLoc::caller();
        let v = try_t!(as_tensor("pad", value.into(), self), loc);
        bind(
            Primitive::Pad {
                low: low.to_vec(),
                high: high.to_vec(),
                interior: interior.to_vec(),
            },
            &[self, &v],
            loc,
        )
    }

    /// Joins tensors along an axis.
    #[track_caller]
    pub fn concatenate(tensors: &[Tensor], axis: isize) -> Tensor {
        let loc = SourceLoc::caller();
        let Some(first) = tensors.first() else {
            return fail(Error::Shape {
                op: "concatenate".into(),
                msg: "needs at least one tensor".into(),
                loc: Some(loc),
            });
        };
        let dimension = try_t!(axis_of("concatenate", axis, first.ndim()), loc);
        let refs: Vec<&Tensor> = tensors.iter().collect();
        bind(Primitive::Concatenate { dimension }, &refs, loc)
    }

    /// Reverses the order of elements along the given axes.
    #[track_caller]
    pub fn rev(&self, axes: &[isize]) -> Tensor {
        let loc = SourceLoc::caller();
        let dimensions = try_t!(axes_of("rev", axes, self.ndim()), loc);
        bind(Primitive::Rev { dimensions }, &[self], loc)
    }
}

fn infer_shape(shape: &[isize], from: &[usize]) -> Result<Vec<usize>> {
    let op = "reshape";
    let n: usize = from.iter().product();
    let unknown: Vec<usize> = (0..shape.len()).filter(|&i| shape[i] == -1).collect();
    if unknown.len() > 1 || shape.iter().any(|&d| d < -1) {
        return Err(Error::shape(
            op,
            format!("{shape:?}: sizes must be non-negative, with at most one -1"),
        ));
    }
    let known = shape
        .iter()
        .filter(|&&d| d >= 0)
        .try_fold(1usize, |k, &d| k.checked_mul(d as usize))
        .ok_or_else(|| {
            Error::exhausted(
                op,
                format!("{shape:?} has more than {} elements", usize::MAX),
            )
        })?;
    let mut out: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
    if let Some(&i) = unknown.first() {
        if known == 0 || !n.is_multiple_of(known) {
            return Err(Error::shape(
                op,
                format!("cannot reshape {from:?} ({n} elements) to {shape:?}"),
            ));
        }
        out[i] = n / known;
    }
    Ok(out)
}
