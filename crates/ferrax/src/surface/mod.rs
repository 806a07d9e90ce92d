//! The numpy-like surface: tensor operations composed from primitives.
//!
//! What users call on [`Tensor`]s, split by family as numpy's documentation is: creation,
//! elementwise arithmetic and operators, reductions, shape operations, linear algebra. Every
//! operation here is a composition of `bind` calls (`trace::stack`), with `#[track_caller]`
//! so that errors and recorded equations point at the user's line. The surface adds what the
//! strict primitives leave out: numpy broadcasting (through `broadcast_in_dim`), Rust numbers
//! that adopt the tensor's dtype (JAX's weak types, [`Operand`]), negative axes, and
//! conveniences such as `mean`, `matmul`, `where_` and slicing. It depends on `trace` and
//! `ir` only.

pub(crate) mod collective;
mod creation;
mod decompositions;
mod einsum;
mod elementwise;
mod indexing;
mod linalg;
mod matrix;
mod numpy;
pub mod random;
mod reduce;
mod shape;
mod slicing;
mod special;

pub use self::elementwise::where_;
pub use self::indexing::At;
pub use self::slicing::{Ellipsis, NewAxis, SliceItem};

use crate::ir::{Array, Error, Primitive, Result, Scalar, SourceLoc, WeakScalar};
use crate::trace::{bind, try_t, Tensor};

/// An operand of a binary operation: a tensor, or a Rust number that takes the other
/// operand's dtype.
#[derive(Clone, Debug)]
pub enum Operand {
    /// A tensor.
    Tensor(Tensor),
    /// A Rust number, which takes the dtype of the other operand.
    Weak(WeakScalar),
}

impl From<Tensor> for Operand {
    fn from(t: Tensor) -> Operand {
        Operand::Tensor(t)
    }
}
impl From<&Tensor> for Operand {
    fn from(t: &Tensor) -> Operand {
        Operand::Tensor(t.clone())
    }
}
impl From<f64> for Operand {
    fn from(x: f64) -> Operand {
        Operand::Weak(WeakScalar::Float(x))
    }
}
impl From<f32> for Operand {
    fn from(x: f32) -> Operand {
        Operand::Weak(WeakScalar::Float(x as f64))
    }
}
impl From<i32> for Operand {
    fn from(x: i32) -> Operand {
        Operand::Weak(WeakScalar::Int(x as i64))
    }
}
impl From<i64> for Operand {
    fn from(x: i64) -> Operand {
        Operand::Weak(WeakScalar::Int(x))
    }
}

/// Normalises a possibly negative axis for a given rank.
pub(crate) fn axis_of(op: &str, axis: isize, rank: usize) -> Result<usize> {
    let r = rank as isize;
    if axis < -r || axis >= r {
        return Err(Error::axis(
            op,
            format!("axis {axis} is out of range for rank {rank}"),
        ));
    }
    Ok(if axis < 0 {
        (axis + r) as usize
    } else {
        axis as usize
    })
}

/// Normalises, sorts and checks a list of axes (no repeats).
pub(crate) fn axes_of(op: &str, axes: &[isize], rank: usize) -> Result<Vec<usize>> {
    let mut v = axes
        .iter()
        .map(|&a| axis_of(op, a, rank))
        .collect::<Result<Vec<_>>>()?;
    v.sort_unstable();
    if v.windows(2).any(|w| w[0] == w[1]) {
        return Err(Error::axis(op, format!("axes {axes:?} repeat an axis")));
    }
    Ok(v)
}

/// The numpy broadcast of two shapes.
pub(crate) fn broadcast_shapes(op: &str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(Error::shape(
                op,
                format!("shapes {a:?} and {b:?} cannot be broadcast together"),
            ));
        };
    }
    Ok(out)
}

/// A Rust number as a rank-0 tensor of `like`'s dtype, or the tensor itself.
pub(crate) fn as_tensor(op: &str, o: Operand, like: &Tensor) -> Result<Tensor> {
    match o {
        Operand::Tensor(t) => Ok(t),
        Operand::Weak(w) => {
            let d = like.aval()?.dtype;
            Ok(Tensor::concrete(Array::from_scalar(Scalar::weak(
                w, d, op,
            )?)))
        }
    }
}

/// Resolves two operands, giving a Rust number the other operand's dtype. Two Rust numbers
/// become f64 (or i64) scalars.
pub(crate) fn weak_pair(op: &str, a: Operand, b: Operand) -> Result<(Tensor, Tensor)> {
    match (a, b) {
        (Operand::Tensor(x), Operand::Tensor(y)) => Ok((x, y)),
        (Operand::Tensor(x), w) => {
            let y = as_tensor(op, w, &x)?;
            Ok((x, y))
        }
        (w, Operand::Tensor(y)) => {
            let x = as_tensor(op, w, &y)?;
            Ok((x, y))
        }
        (Operand::Weak(x), Operand::Weak(y)) => {
            let t = |w: WeakScalar| match w {
                WeakScalar::Float(f) => Tensor::scalar(f),
                WeakScalar::Int(i) => Tensor::scalar(i),
            };
            Ok((t(x), t(y)))
        }
    }
}

/// A binary elementwise primitive with numpy broadcasting and weak Rust numbers.
pub(crate) fn binary(prim: Primitive, a: Operand, b: Operand, loc: SourceLoc) -> Tensor {
    let op = prim.name();
    let (x, y) = try_t!(weak_pair(op, a, b), loc);
    if let Some(e) = x.error().or(y.error()) {
        return Tensor::failed(e.clone());
    }
    let shape = try_t!(broadcast_shapes(op, x.shape(), y.shape()), loc);
    let (x, y) = (
        x.broadcast_to_at(&shape, loc),
        y.broadcast_to_at(&shape, loc),
    );
    bind(prim, &[&x, &y], loc)
}
