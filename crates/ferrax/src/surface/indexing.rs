//! Indexing: `take`, `take_along_axis`, the `.at(idx)` updates, dynamic slices, and numpy's
//! basic slicing (`x.s(s![.., 1..-1;2, NewAxis, -1])`).
//!
//! Integer index arrays follow JAX: a negative index counts from the end (once); beyond
//! that, a read is clamped into range (`take`, `at(..).get()`) and an update is dropped
//! (`at(..).set/add/mul/min/max`). Static slices follow Python's rules (open and negative
//! bounds, negative steps), and a static integer out of range is an error, as in JAX. Every
//! function is a composition of `gather`, the scatters, `dynamic_slice`,
//! `dynamic_update_slice`, `slice`, `rev` and shape operations, so all of them
//! differentiate, batch and compile.

use crate::ir::{DType, Error, IndexMode, Primitive, Result, ScatterCombine, SourceLoc};
use crate::surface::{as_tensor, axis_of, Operand};
use crate::trace::{bind, fail, try_t, Tensor};

/// The index dtypes.
fn check_indices(op: &str, idx: &Tensor) -> Result<DType> {
    let d = idx.aval()?.dtype;
    if matches!(d, DType::I32 | DType::I64) {
        Ok(d)
    } else {
        Err(Error::dtype(
            op,
            format!("indices must be i32 or i64, got {}", idx.aval()?),
        ))
    }
}

/// Negative indices counted from the end of an axis of length `n` (numpy's rule, once).
fn wrap(idx: &Tensor, n: usize, loc: SourceLoc) -> Tensor {
    let neg = binary_at(Primitive::Lt, idx, 0i64, loc);
    let shifted = binary_at(Primitive::Add, idx, n as i64, loc);
    bind(Primitive::Select, &[&neg, &shifted, idx], loc)
}

fn binary_at(prim: Primitive, x: &Tensor, y: impl Into<Operand>, loc: SourceLoc) -> Tensor {
    crate::surface::binary(prim, x.into(), y.into(), loc)
}

impl Tensor {
    /// The elements at integer `indices` along `axis` (`jnp.take`): the result has the
    /// indices' dimensions in place of `axis`. Negative indices count from the end; indices
    /// still out of range are clamped (as `x[idx]` in JAX; `jnp.take` fills NaN instead).
    #[track_caller]
    pub fn take(&self, indices: &Tensor, axis: isize) -> Tensor {
        self.take_at(indices, axis, IndexMode::Clip, SourceLoc::caller())
    }

    fn take_at(&self, indices: &Tensor, axis: isize, mode: IndexMode, loc: SourceLoc) -> Tensor {
        if let Some(e) = self.error().or(indices.error()) {
            return Tensor::failed(e.clone());
        }
        try_t!(check_indices("take", indices), loc);
        let axis = try_t!(axis_of("take", axis, self.ndim()), loc);
        let idx = wrap(indices, self.shape()[axis], loc);
        bind(
            Primitive::Gather {
                axis,
                batch: 0,
                mode,
            },
            &[self, &idx],
            loc,
        )
    }

    /// `jnp.take_along_axis`: `out[.., i, ..] = x[.., indices[.., i, ..], ..]` along `axis`,
    /// `indices` of the same rank, its other dimensions broadcast against `x`'s (a
    /// cross-entropy with integer labels is `logp.take_along_axis(&labels, -1)` with labels
    /// of shape `[n, 1]`). Negative indices count from the end; out of range clamps.
    #[track_caller]
    pub fn take_along_axis(&self, indices: &Tensor, axis: isize) -> Tensor {
        let loc = SourceLoc::caller();
        if let Some(e) = self.error().or(indices.error()) {
            return Tensor::failed(e.clone());
        }
        try_t!(check_indices("take_along_axis", indices), loc);
        let r = self.ndim();
        let axis = try_t!(axis_of("take_along_axis", axis, r), loc);
        if indices.ndim() != r {
            return fail(Error::Shape {
                op: "take_along_axis".into(),
                msg: format!(
                    "indices {:?} must have the rank of the operand {:?}",
                    indices.shape(),
                    self.shape()
                ),
                loc: Some(loc),
            });
        }
        // the other dimensions broadcast together
        let mut xs = self.shape().to_vec();
        let mut is = indices.shape().to_vec();
        for d in (0..r).filter(|&d| d != axis) {
            let (a, b) = (xs[d], is[d]);
            let n = match (a, b) {
                _ if a == b => a,
                (1, _) => b,
                (_, 1) => a,
                _ => {
                    return fail(Error::Shape {
                        op: "take_along_axis".into(),
                        msg: format!(
                            "dimension {d} of the indices {:?} does not match the operand {:?} (nor is either 1)",
                            indices.shape(),
                            self.shape()
                        ),
                        loc: Some(loc),
                    })
                }
            };
            xs[d] = n;
            is[d] = n;
        }
        let x = self.broadcast_to_at(&xs, loc);
        let idx = wrap(&indices.broadcast_to_at(&is, loc), self.shape()[axis], loc);
        // the indexed axis last, every other axis shared
        let mut perm: Vec<usize> = (0..r).filter(|&d| d != axis).collect();
        perm.push(axis);
        let to_last = |t: &Tensor| {
            bind(
                Primitive::Transpose {
                    permutation: perm.clone(),
                },
                &[t],
                loc,
            )
        };
        let gathered = bind(
            Primitive::Gather {
                axis: r - 1,
                batch: r - 1,
                mode: IndexMode::Clip,
            },
            &[&to_last(&x), &to_last(&idx)],
            loc,
        );
        let mut back: Vec<usize> = (0..r - 1).collect();
        back.insert(axis, r - 1);
        bind(
            Primitive::Transpose { permutation: back },
            &[&gathered],
            loc,
        )
    }

    /// Functional updates at integer indices along axis 0, as JAX's `x.at[idx]`:
    /// `x.at(&idx).add(1.0)`, `.set(&u)`, `.mul`, `.min`, `.max`, `.get()`.
    pub fn at(&self, indices: &Tensor) -> At {
        self.at_axis(indices, 0)
    }

    /// [`Tensor::at`] along another axis.
    pub fn at_axis(&self, indices: &Tensor, axis: isize) -> At {
        At {
            x: self.clone(),
            idx: indices.clone(),
            axis,
        }
    }

    /// The window of `sizes` starting at the integer scalars `starts` (one per dimension,
    /// traced or not): `lax.dynamic_slice`. Each start is clamped so the window fits.
    #[track_caller]
    pub fn dynamic_slice(&self, starts: &[Tensor], sizes: &[usize]) -> Tensor {
        let mut ops = vec![self];
        ops.extend(starts);
        bind(
            Primitive::DynamicSlice {
                sizes: sizes.to_vec(),
            },
            &ops,
            SourceLoc::caller(),
        )
    }

    /// `self` with `update` written at the integer scalars `starts` (one per dimension):
    /// `lax.dynamic_update_slice`. Each start is clamped so the update fits.
    #[track_caller]
    pub fn dynamic_update_slice(&self, update: &Tensor, starts: &[Tensor]) -> Tensor {
        let mut ops = vec![self, update];
        ops.extend(starts);
        bind(Primitive::DynamicUpdateSlice, &ops, SourceLoc::caller())
    }
}

/// The pending update of [`Tensor::at`]: say what to do with the indexed places.
#[derive(Clone, Debug)]
pub struct At {
    x: Tensor,
    idx: Tensor,
    axis: isize,
}

impl At {
    /// The indexed elements (`x.at[idx].get()`: clamped out of range).
    #[track_caller]
    pub fn get(&self) -> Tensor {
        self.x
            .take_at(&self.idx, self.axis, IndexMode::Clip, SourceLoc::caller())
    }

    /// The indexed places replaced by `updates` (broadcast to the indexed shape); of
    /// several updates to one place the last wins (JAX leaves it unspecified).
    #[track_caller]
    pub fn set(&self, updates: impl Into<Operand>) -> Tensor {
        self.scatter(
            Some(ScatterCombine::Set),
            updates.into(),
            SourceLoc::caller(),
        )
    }

    /// `updates` added at the indexed places (repeats add up).
    #[track_caller]
    pub fn add(&self, updates: impl Into<Operand>) -> Tensor {
        self.scatter(None, updates.into(), SourceLoc::caller())
    }

    /// The indexed places multiplied by `updates`.
    #[track_caller]
    pub fn mul(&self, updates: impl Into<Operand>) -> Tensor {
        self.scatter(
            Some(ScatterCombine::Mul),
            updates.into(),
            SourceLoc::caller(),
        )
    }

    /// The indexed places replaced by their minimum with `updates`.
    #[track_caller]
    pub fn min(&self, updates: impl Into<Operand>) -> Tensor {
        self.scatter(
            Some(ScatterCombine::Min),
            updates.into(),
            SourceLoc::caller(),
        )
    }

    /// The indexed places replaced by their maximum with `updates`.
    #[track_caller]
    pub fn max(&self, updates: impl Into<Operand>) -> Tensor {
        self.scatter(
            Some(ScatterCombine::Max),
            updates.into(),
            SourceLoc::caller(),
        )
    }

    /// A scatter (`None`: `scatter_add`) of `updates` broadcast to the indexed shape;
    /// updates out of range are dropped, as JAX's are.
    fn scatter(&self, combine: Option<ScatterCombine>, updates: Operand, loc: SourceLoc) -> Tensor {
        let (x, idx) = (&self.x, &self.idx);
        if let Some(e) = x.error().or(idx.error()) {
            return Tensor::failed(e.clone());
        }
        let op = "at";
        try_t!(check_indices(op, idx), loc);
        let axis = try_t!(axis_of(op, self.axis, x.ndim()), loc);
        let u = try_t!(as_tensor(op, updates, x), loc);
        let mut shape = x.shape()[..axis].to_vec();
        shape.extend_from_slice(idx.shape());
        shape.extend_from_slice(&x.shape()[axis + 1..]);
        let u = u.broadcast_to_at(&shape, loc);
        let idx = wrap(idx, x.shape()[axis], loc);
        let (batch, mode) = (0, IndexMode::Fill);
        let prim = match combine {
            None => Primitive::ScatterAdd { axis, batch, mode },
            Some(combine) => Primitive::Scatter {
                axis,
                batch,
                mode,
                combine,
            },
        };
        bind(prim, &[x, &idx, &u], loc)
    }
}
