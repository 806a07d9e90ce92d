//! The batching rules of the indexing primitives.
//!
//! A gather or scatter keeps a batch that only one side has out of its shared dimensions:
//! a batched operand with shared indices puts its batch dimension among the operand's
//! dimensions before the indexed axis (no copy of the indices); batched indices into a
//! shared operand put it among the index dimensions (no copy of the operand: an embedding
//! table stays one table). Only when both vary does the batch become one more shared
//! leading dimension.
//!
//! A dynamic slice whose starts do not vary slices the batch dimension whole. When the starts
//! vary, each example's window is a different set of places, so the slice becomes one
//! batched `gather` per dimension (indices `start + iota`, clamped as the slice clamps), and
//! an update becomes `scatter`s (`set`) of the update and of a mask into zeros, then a
//! `select`.

use crate::ir::{Aval, DType, IndexMode, Primitive, ScatterCombine};
use crate::passes::vmap::dims::{align, aval, front, move_axis, Batched};
use crate::trace::{Emit, Tensor};

/// The batching rule of an indexing primitive with some operand batched: the result and
/// its batch dimension.
pub(crate) fn batch_indexing(
    e: &Emit,
    prim: &Primitive,
    x: &[Batched],
    size: usize,
) -> (Tensor, usize) {
    match prim {
        Primitive::Gather { axis, batch, mode } => {
            let (axis, batch, mode) = (*axis, *batch, *mode);
            let gather = |axis, batch| Primitive::Gather { axis, batch, mode };
            match (x[0].1, x[1].1) {
                (Some(b), None) => {
                    let xt = move_axis(e, &x[0].0, b, batch);
                    (e.op(gather(axis + 1, batch), &[&xt, &x[1].0]), batch)
                }
                (None, Some(b)) => {
                    let it = move_axis(e, &x[1].0, b, batch);
                    (e.op(gather(axis, batch), &[&x[0].0, &it]), axis)
                }
                _ => {
                    let (xt, it) = (front(e, &x[0], size), front(e, &x[1], size));
                    (e.op(gather(axis + 1, batch + 1), &[&xt, &it]), 0)
                }
            }
        }
        Primitive::ScatterAdd { batch, .. } | Primitive::Scatter { batch, .. } => {
            let mut p = prim.clone();
            if x[1].1.is_none() {
                // shared indices: the batch sits among the dimensions before the axis
                let (xt, ut) = (align(e, &x[0], *batch, size), align(e, &x[2], *batch, size));
                if let Primitive::ScatterAdd { axis, .. } | Primitive::Scatter { axis, .. } = &mut p
                {
                    *axis += 1;
                }
                (e.op(p, &[&xt, &x[1].0, &ut]), *batch)
            } else {
                let ts: Vec<Tensor> = x.iter().map(|v| front(e, v, size)).collect();
                if let Primitive::ScatterAdd { axis, batch, .. }
                | Primitive::Scatter { axis, batch, .. } = &mut p
                {
                    *axis += 1;
                    *batch += 1;
                }
                (e.op(p, &[&ts[0], &ts[1], &ts[2]]), 0)
            }
        }
        Primitive::DynamicSlice { sizes } => {
            if x[1..].iter().all(|s| s.1.is_none()) {
                let b = x[0].1.expect("an operand is batched");
                let mut sizes = sizes.clone();
                sizes.insert(b, size);
                let mut ops = vec![x[0].0.clone()];
                ops.extend(x[1..].iter().map(|s| s.0.clone()));
                ops.insert(1 + b, e.zeros(&Aval::scalar(DType::I32)));
                let refs: Vec<&Tensor> = ops.iter().collect();
                return (e.op(Primitive::DynamicSlice { sizes }, &refs), b);
            }
            let mut cur = front(e, &x[0], size);
            let shape = aval(&cur).shape[1..].to_vec();
            for (d, s) in x[1..].iter().enumerate() {
                let idx = window_indices(e, s, shape[d], sizes[d], size);
                let gather = Primitive::Gather {
                    axis: d + 1,
                    batch: 1,
                    mode: IndexMode::Clip,
                };
                cur = e.op(gather, &[&cur, &idx]);
            }
            (cur, 0)
        }
        Primitive::DynamicUpdateSlice => {
            if x[2..].iter().all(|s| s.1.is_none()) {
                let b = x[0].1.or(x[1].1).expect("an operand is batched");
                let (xt, ut) = (align(e, &x[0], b, size), align(e, &x[1], b, size));
                let mut ops = vec![xt, ut];
                ops.extend(x[2..].iter().map(|s| s.0.clone()));
                ops.insert(2 + b, e.zeros(&Aval::scalar(DType::I32)));
                let refs: Vec<&Tensor> = ops.iter().collect();
                return (e.op(Primitive::DynamicUpdateSlice, &refs), b);
            }
            let (xt, ut) = (front(e, &x[0], size), front(e, &x[1], size));
            let (xa, ua) = (aval(&xt), aval(&ut));
            // placed by `set` (no arithmetic: -0.0 stays -0.0), with a mask of the places
            let mut placed = ut;
            let mut mask = e.full(1.0, &Aval::new(ua.shape.clone(), DType::Bool));
            for (d, s) in x[2..].iter().enumerate() {
                let idx = window_indices(e, s, xa.shape[d + 1], ua.shape[d + 1], size);
                let mut target = xa.shape[..d + 2].to_vec();
                target.extend_from_slice(&ua.shape[d + 2..]);
                let set = Primitive::Scatter {
                    axis: d + 1,
                    batch: 1,
                    mode: IndexMode::Clip,
                    combine: ScatterCombine::Set,
                };
                let into = |t: &Tensor, dt| {
                    let zeros = e.zeros(&Aval::new(target.clone(), dt));
                    e.op(set.clone(), &[&zeros, &idx, t])
                };
                placed = into(&placed, xa.dtype);
                mask = into(&mask, DType::Bool);
            }
            (e.op(Primitive::Select, &[&mask, &placed, &xt]), 0)
        }
        other => (
            crate::trace::fail(crate::ir::Error::internal(format!(
                "`{}` has no indexing batching rule",
                other.name()
            ))),
            0,
        ),
    }
}

/// The places a window of `len` at the (batched or not) start `s` covers on an axis of
/// length `n`, per example: `[size, len]` integers `clamp(s, 0, n - len) + 0..len`.
fn window_indices(e: &Emit, s: &Batched, n: usize, len: usize, size: usize) -> Tensor {
    let st = front(e, s, size);
    let dt = aval(&st).dtype;
    let scalar = Aval::new(vec![size], dt);
    let lo = e.op(Primitive::Max, &[&st, &e.zeros(&scalar)]);
    let start = e.op(Primitive::Min, &[&lo, &e.full((n - len) as f64, &scalar)]);
    let shape = vec![size, len];
    let start = e.op1(
        Primitive::BroadcastInDim {
            shape: shape.clone(),
            broadcast_dimensions: vec![0],
        },
        &start,
    );
    let iota = e.op(
        Primitive::Iota {
            dtype: dt,
            shape,
            dimension: 1,
        },
        &[],
    );
    e.add(&start, &iota)
}
