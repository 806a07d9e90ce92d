//! Flattening a tree of tensors into one vector and back (`jax.flatten_util.ravel_pytree`):
//! what lets vector algorithms (the solvers, L-BFGS, CG) work on a model's own parameter
//! type.

use std::marker::PhantomData;

use crate::ir::{Aval, DType, Error, Result};
use crate::trace::{flatten, unflatten, Tensor, Tree, TreeDef};

/// Rebuilds a tree from a vector that [`ravel_tree`] made (or any vector of that length and
/// dtype, traced or not).
#[derive(Clone, Debug)]
pub struct Unravel<T> {
    def: TreeDef,
    avals: Vec<Aval>,
    dtype: DType,
    _tree: PhantomData<fn() -> T>,
}

/// The leaves of `t` raveled (row-major) and concatenated into one vector, and the function
/// back. Every leaf must have one float dtype.
///
/// ```
/// use ferrax::{ravel_tree, Tensor};
/// let p = (Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[2, 2]), Tensor::scalar(5.0f64));
/// let (flat, back) = ravel_tree(&p).unwrap();
/// assert_eq!(flat.to_vec::<f64>().unwrap(), vec![1.0, 2.0, 3.0, 4.0, 5.0]);
/// let (m, s) = back.apply(&(&flat * 2.0)).unwrap();
/// assert_eq!((m.shape(), s.item().unwrap()), (&[2usize, 2][..], 10.0));
/// ```
pub fn ravel_tree<T: Tree>(t: &T) -> Result<(Tensor, Unravel<T>)> {
    let (leaves, def) = flatten(t);
    let avals = leaves
        .iter()
        .map(|l| l.aval())
        .collect::<Result<Vec<_>>>()?;
    let dtype = avals.first().map_or(DType::F64, |a| a.dtype);
    if let Some((i, a)) = avals
        .iter()
        .enumerate()
        .find(|(_, a)| a.dtype != dtype || !a.dtype.is_float())
    {
        return Err(Error::dtype(
            "ravel_tree",
            format!("every leaf must have one float dtype: leaf 0 is {dtype}, leaf {i} is {a}"),
        ));
    }
    let parts: Vec<Tensor> = leaves.iter().map(|l| l.reshape(&[-1])).collect();
    let flat = match parts.is_empty() {
        true => Tensor::zeros(&[0], dtype),
        false => Tensor::concatenate(&parts, 0),
    };
    flat.aval()?;
    let back = Unravel {
        def,
        avals,
        dtype,
        _tree: PhantomData,
    };
    Ok((flat, back))
}

impl<T: Tree> Unravel<T> {
    /// The length of the vector.
    pub fn len(&self) -> usize {
        self.avals.iter().map(Aval::size).sum()
    }

    /// Whether the tree has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The tree whose leaves are the consecutive pieces of `flat`.
    pub fn apply(&self, flat: &Tensor) -> Result<T> {
        let a = flat.aval()?;
        if a.shape != [self.len()] || a.dtype != self.dtype {
            return Err(Error::shape(
                "Unravel::apply",
                format!("needs a {}[{}] vector, got {a}", self.dtype, self.len()),
            ));
        }
        let mut at = 0;
        let leaves = self
            .avals
            .iter()
            .map(|l| {
                let piece = flat.slice_axis(0, at, at + l.size());
                at += l.size();
                let shape: Vec<isize> = l.shape.iter().map(|&d| d as isize).collect();
                piece.reshape(&shape)
            })
            .collect();
        unflatten(&self.def, leaves)
    }
}
