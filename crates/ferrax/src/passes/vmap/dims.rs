//! Where a batch dimension sits: the bookkeeping every batching rule shares.
//!
//! The batching pass (`vmap.rs`) pairs each value with an optional batch dimension; its
//! per-primitive rules and the control-flow rules (`control.rs`) move that dimension
//! (a `transpose`) or create it for a value that does not vary (a `broadcast_in_dim`). These
//! helpers live in their own file so that both rule files use them without importing each
//! other.

use crate::ir::{Aval, Primitive};
use crate::trace::{Emit, Tensor};

/// A value of the batched computation and where its batch dimension is.
pub(crate) type Batched = (Tensor, Option<usize>);

/// Dimension indices of an unbatched operand, renumbered for the batch dimension inserted
/// at `b`.
pub(crate) fn shift(dims: &[usize], b: usize) -> Vec<usize> {
    dims.iter()
        .map(|&d| if d >= b { d + 1 } else { d })
        .collect()
}

pub(crate) fn aval(t: &Tensor) -> Aval {
    t.aval().expect("rules only see tensors that did not fail")
}

/// The tensor with its batch dimension moved to the front.
pub(crate) fn to_front(e: &Emit, t: &Tensor, b: usize) -> Tensor {
    if b == 0 {
        return t.clone();
    }
    let r = aval(t).ndim();
    let mut perm = vec![b];
    perm.extend((0..r).filter(|&d| d != b));
    e.op1(Primitive::Transpose { permutation: perm }, t)
}

/// The tensor with its batch dimension moved from `from` to `to`.
pub(crate) fn move_axis(e: &Emit, t: &Tensor, from: usize, to: usize) -> Tensor {
    if from == to {
        return t.clone();
    }
    let r = aval(t).ndim();
    let mut rest: Vec<usize> = (0..r).filter(|&d| d != from).collect();
    rest.insert(to, from);
    e.op1(Primitive::Transpose { permutation: rest }, t)
}

/// A batched value with its batch dimension at the front; an unbatched one is broadcast.
pub(crate) fn front(e: &Emit, x: &Batched, size: usize) -> Tensor {
    match x.1 {
        Some(b) => to_front(e, &x.0, b),
        None => {
            let a = aval(&x.0);
            let mut shape = vec![size];
            shape.extend(&a.shape);
            e.op1(
                Primitive::BroadcastInDim {
                    shape,
                    broadcast_dimensions: (1..=a.ndim()).collect(),
                },
                &x.0,
            )
        }
    }
}

/// A value with its batch dimension at `b`: moved there, or (unbatched) broadcast with the
/// batch inserted there.
pub(crate) fn align(e: &Emit, x: &Batched, b: usize, size: usize) -> Tensor {
    match x.1 {
        Some(d) => move_axis(e, &x.0, d, b),
        None => {
            let a = aval(&x.0);
            let mut shape = a.shape.clone();
            shape.insert(b, size);
            let bd = (0..=a.ndim()).filter(|&i| i != b).collect();
            e.op1(
                Primitive::BroadcastInDim {
                    shape,
                    broadcast_dimensions: bd,
                },
                &x.0,
            )
        }
    }
}
