//! The transpose rules of the linear indexing primitives.
//!
//! With the same indices and mode, `gather` and `scatter_add` are each other's transposes
//! (a clamped read sends its cotangent to the clamped place; a read that fills zero, to
//! nowhere, as the scatter drops it), and `dynamic_slice` is transposed by writing the
//! cotangent into zeros with `dynamic_update_slice` (the same clamping on both sides).
//!
//! `scatter` with `set` is linear jointly in the operand and the updates: the operand's
//! cotangent is the output's with the written places zeroed, and an update's is the
//! output's cotangent at its place if that update is the one that won there (the last, in
//! row-major order), zero otherwise. The winners are found with the same scatter on
//! integers: each index element writes its position + 1, and reads back what stayed.

use crate::ir::{Aval, DType, IndexMode, Primitive, Result, ScatterCombine};
use crate::passes::transpose::LinArg;
use crate::trace::{Emit, Tensor};

/// The cotangents of an indexing primitive's operands given its output's `ct` (`None` for
/// the indices and for operands that are not linear).
pub(crate) fn transpose_indexing(
    e: &Emit,
    prim: &Primitive,
    x: &[LinArg],
    ct: &Tensor,
) -> Result<Vec<Option<Tensor>>> {
    let lin = |i: usize| x[i].is_linear();
    let mut cts: Vec<Option<Tensor>> = vec![None; x.len()];
    match prim {
        Primitive::Gather { axis, batch, mode } => {
            let scatter = Primitive::ScatterAdd {
                axis: *axis,
                batch: *batch,
                mode: *mode,
            };
            cts[0] = Some(e.op(scatter, &[&e.zeros(&x[0].aval()), x[1].value()?, ct]));
        }
        Primitive::ScatterAdd { axis, batch, mode } => {
            let gather = Primitive::Gather {
                axis: *axis,
                batch: *batch,
                mode: *mode,
            };
            let idx = x[1].value()?;
            cts[0] = lin(0).then(|| ct.clone());
            cts[2] = lin(2).then(|| e.op(gather, &[ct, idx]));
        }
        Primitive::Scatter {
            axis,
            batch,
            mode,
            combine: ScatterCombine::Set,
        } => {
            let idx = x[1].value()?;
            if lin(0) {
                let cleared = e.op(prim.clone(), &[ct, idx, &e.zeros(&x[2].aval())]);
                cts[0] = Some(cleared);
            }
            if lin(2) {
                let gather = Primitive::Gather {
                    axis: *axis,
                    batch: *batch,
                    mode: *mode,
                };
                let won = winners(e, &x[0].aval(), idx, *axis, *batch, *mode)?;
                let ua = x[2].aval();
                // the winners (shaped as the indices) spread over the updates' dimensions
                let ia = idx.aval()?;
                let mut dims: Vec<usize> = (0..*batch).collect();
                dims.extend(*axis..*axis + ia.ndim() - batch);
                let won = e.op1(
                    Primitive::BroadcastInDim {
                        shape: ua.shape.clone(),
                        broadcast_dimensions: dims,
                    },
                    &won,
                );
                let picked = e.op(gather, &[ct, idx]);
                cts[2] = Some(e.op(Primitive::Select, &[&won, &picked, &e.zeros(&ua)]));
            }
        }
        Primitive::DynamicSlice { .. } => {
            let mut ops = vec![e.zeros(&x[0].aval()), ct.clone()];
            for s in &x[1..] {
                ops.push(s.value()?.clone());
            }
            cts[0] = Some(e.op(
                Primitive::DynamicUpdateSlice,
                &ops.iter().collect::<Vec<_>>(),
            ));
        }
        Primitive::DynamicUpdateSlice => {
            let starts: Vec<Tensor> = x[2..]
                .iter()
                .map(|s| s.value().cloned())
                .collect::<Result<_>>()?;
            let ua = x[1].aval();
            if lin(0) {
                let mut ops = vec![ct.clone(), e.zeros(&ua)];
                ops.extend(starts.iter().cloned());
                cts[0] = Some(e.op(prim.clone(), &ops.iter().collect::<Vec<_>>()));
            }
            if lin(1) {
                let mut ops = vec![ct.clone()];
                ops.extend(starts.iter().cloned());
                let slice = Primitive::DynamicSlice {
                    sizes: ua.shape.clone(),
                };
                cts[1] = Some(e.op(slice, &ops.iter().collect::<Vec<_>>()));
            }
        }
        other => {
            return Err(crate::ir::Error::internal(format!(
                "`{}` has no indexing transpose rule",
                other.name()
            )))
        }
    }
    Ok(cts)
}

/// For each index element of a `scatter` with `set` into an operand of aval `xa`: whether
/// its update is the one that stays (bool, shaped as the indices).
fn winners(
    e: &Emit,
    xa: &Aval,
    idx: &Tensor,
    axis: usize,
    batch: usize,
    mode: IndexMode,
) -> Result<Tensor> {
    let ia = idx.aval()?;
    // one slot per (shared leading dims, place on the axis)
    let mut slots = xa.shape[..batch].to_vec();
    slots.push(xa.shape[axis]);
    let slots = Aval::new(slots, DType::I64);
    // each index element's position + 1 (0 marks "nobody", and what a dropped read gives)
    let k: usize = ia.shape[batch..].iter().product();
    let mut flat = ia.shape[..batch].to_vec();
    flat.push(k);
    let iota = Primitive::Iota {
        dtype: DType::I64,
        shape: flat,
        dimension: batch,
    };
    let pos = e.op(iota, &[]);
    let pos = e.add(&pos, &e.full(1.0, &pos.aval()?));
    let pos = e.op1(
        Primitive::Reshape {
            new_sizes: ia.shape.clone(),
        },
        &pos,
    );
    let written = e.op(
        Primitive::Scatter {
            axis: batch,
            batch,
            mode,
            combine: ScatterCombine::Set,
        },
        &[&e.zeros(&slots), idx, &pos],
    );
    let read = e.op(
        Primitive::Gather {
            axis: batch,
            batch,
            mode,
        },
        &[&written, idx],
    );
    Ok(e.op(Primitive::Eq, &[&read, &pos]))
}
