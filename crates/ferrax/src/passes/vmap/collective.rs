//! Batching collectives: the named axis a `vmap` binds gives them their meaning.
//!
//! Part of the batching pass. `vmap` with an axis name (`VmapAxes::axis_name`) maps every
//! member of the axis at once, so a collective over that name becomes an operation across
//! the batch dimension ([`batch_named`]): `psum` a sum over it (the result the same for every
//! member, so unbatched), `all_gather` the batch dimension moved into place, `psum_scatter`
//! a sum then the summed dimension made the batch dimension, `ppermute` a reordering of the
//! members, `all_to_all` a transpose between the batch dimension and the split one,
//! `axis_index` an `iota`. A value that does not vary along the axis is broadcast first, so
//! a reduction across members always adds (or compares) the members' values in member
//! order, as every evaluator of a map does. A collective over another name is batched like
//! any operation ([`batch_unnamed`]): its members each hold a batch of values.
//!
//! Which name is being batched is a thread-local stack set by `vmap` around the batching
//! interpreter ([`batching`]), so the rules of control flow, which batch sub-programs with
//! the same interpreter, see it too.

use std::cell::RefCell;

use crate::ir::collective::all_to_all_plan;
use crate::ir::control::subprograms_use_axis;
use crate::ir::{Aval, DType, Error, Primitive, Result};
use crate::passes::vmap::dims::{aval, front, to_front, Batched};
use crate::trace::{Emit, Tensor};

thread_local! {
    static BATCHING: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with `name` as the axis the batching interpreter is mapping (`None`: an
/// unnamed vmap, which leaves every collective to its ordinary rule).
pub(crate) fn batching<R>(name: Option<&str>, f: impl FnOnce() -> R) -> R {
    let Some(name) = name else {
        return f();
    };
    BATCHING.with(|b| b.borrow_mut().push(name.to_string()));
    // popped even if `f` unwinds
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            BATCHING.with(|b| b.borrow_mut().pop());
        }
    }
    let _pop = Pop;
    f()
}

/// Whether a sub-program of `prim` applies a collective over the axis being mapped now.
pub(crate) fn subprograms_use_batching_axis(prim: &Primitive) -> bool {
    BATCHING.with(|b| {
        b.borrow()
            .last()
            .is_some_and(|name| subprograms_use_axis(prim, name))
    })
}

/// Whether the batching interpreter is mapping the axis `name` now.
pub(crate) fn is_batching(name: &str) -> bool {
    BATCHING.with(|b| b.borrow().last().is_some_and(|n| n == name))
}

/// A collective over the axis being mapped, of `size` members: the value every member
/// gets, and its batch dimension (`None` when it is the same for every member).
pub(crate) fn batch_named(
    e: &Emit,
    prim: &Primitive,
    x: &[Batched],
    size: usize,
) -> Result<Batched> {
    use Primitive::*;
    if let Some((name, n)) = prim.collective_axis() {
        if n != size {
            return Err(Error::shape(
                prim.name(),
                format!("the axis `{name}` has {n} members where it was traced, but is mapped over {size}"),
            ));
        }
    }
    // the members' values along a leading dimension (broadcast when they do not vary)
    let members = || front(e, &x[0], size);
    let over_members = |reduce: Primitive| e.op1(reduce, &members());
    Ok(match prim {
        Psum { .. } => (over_members(ReduceSum { axes: vec![0] }), None),
        Pmean { .. } => {
            let sum = over_members(ReduceSum { axes: vec![0] });
            (e.div(&sum, &e.full(size as f64, &aval(&sum))), None)
        }
        Pmax { .. } => (over_members(ReduceMax { axes: vec![0] }), None),
        Pmin { .. } => (over_members(ReduceMin { axes: vec![0] }), None),
        AllGather { axis, .. } => {
            // every member gets the stack: the members' dimension moved to `axis`
            let m = members();
            let r = aval(&m).ndim();
            let mut perm: Vec<usize> = (1..r).collect();
            perm.insert(*axis, 0);
            (e.op1(Transpose { permutation: perm }, &m), None)
        }
        PsumScatter { axis, .. } => {
            // the sum, whose dimension `axis` is then one index per member
            (over_members(ReduceSum { axes: vec![0] }), Some(*axis))
        }
        Ppermute { src, dst, .. } => {
            let m = members();
            let a = aval(&m);
            let one = a.shape[1..].to_vec();
            let mut rows = Vec::with_capacity(size);
            for member in 0..size {
                let row = match dst.iter().position(|&d| d == member) {
                    Some(k) => {
                        let (mut start, mut limit) = (vec![0; a.ndim()], a.shape.clone());
                        start[0] = src[k];
                        limit[0] = src[k] + 1;
                        e.op1(
                            Slice {
                                start,
                                limit,
                                strides: vec![1; a.ndim()],
                            },
                            &m,
                        )
                    }
                    None => {
                        let mut shape = vec![1];
                        shape.extend(&one);
                        e.zeros(&Aval::new(shape, a.dtype))
                    }
                };
                rows.push(row);
            }
            let refs: Vec<&Tensor> = rows.iter().collect();
            (e.op(Concatenate { dimension: 0 }, &refs), Some(0))
        }
        AllToAll {
            split_axis,
            concat_axis,
            ..
        } => (
            all_to_all_members(e, &members(), *split_axis, *concat_axis, size),
            Some(0),
        ),
        AxisIndex { .. } => (
            e.op(
                Iota {
                    dtype: DType::I32,
                    shape: vec![size],
                    dimension: 0,
                },
                &[],
            ),
            Some(0),
        ),
        _ => {
            return Err(Error::internal(format!(
                "`{}` is not a collective",
                prim.name()
            )))
        }
    })
}

/// `all_to_all` on the members' values stacked along dimension 0: the results stacked the
/// same way (`ir::collective::all_to_all_plan`).
fn all_to_all_members(e: &Emit, xs: &Tensor, split: usize, concat: usize, n: usize) -> Tensor {
    let (cut, perm, out) = all_to_all_plan(&aval(xs).shape[1..], split, concat, n);
    let y = e.op1(Primitive::Reshape { new_sizes: cut }, xs);
    let z = e.op1(Primitive::Transpose { permutation: perm }, &y);
    e.op1(Primitive::Reshape { new_sizes: out }, &z)
}

/// A collective over another axis than the one being mapped, with its operand batched at
/// `x.1`: every member of its own axis holds a batch of values.
pub(crate) fn batch_unnamed(e: &Emit, prim: &Primitive, x: &Batched) -> (Tensor, usize) {
    use Primitive::*;
    let b = x.1.unwrap_or(0);
    // the batch in front, the collective's dimensions shifted past it
    let at_front = || to_front(e, &x.0, b);
    match prim {
        Psum { .. } | Pmean { .. } | Pmax { .. } | Pmin { .. } | Ppermute { .. } => {
            (e.op1(prim.clone(), &x.0), b)
        }
        AllGather {
            axis_name,
            axis_size,
            axis,
        } => (
            e.op1(
                AllGather {
                    axis_name: axis_name.clone(),
                    axis_size: *axis_size,
                    axis: axis + 1,
                },
                &at_front(),
            ),
            0,
        ),
        PsumScatter {
            axis_name,
            axis_size,
            axis,
        } => (
            e.op1(
                PsumScatter {
                    axis_name: axis_name.clone(),
                    axis_size: *axis_size,
                    axis: axis + 1,
                },
                &at_front(),
            ),
            0,
        ),
        AllToAll {
            axis_name,
            axis_size,
            split_axis,
            concat_axis,
        } => (
            e.op1(
                AllToAll {
                    axis_name: axis_name.clone(),
                    axis_size: *axis_size,
                    split_axis: split_axis + 1,
                    concat_axis: concat_axis + 1,
                },
                &at_front(),
            ),
            0,
        ),
        _ => (
            crate::trace::fail(Error::internal(format!(
                "`{}` has no batched operand to batch",
                prim.name()
            ))),
            0,
        ),
    }
}
