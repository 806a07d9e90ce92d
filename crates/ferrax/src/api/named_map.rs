//! `named_map`: one program run by every member of a named axis (SPMD), on one machine.
//!
//! Beside `vmap`: where `vmap_axes` with an axis name batches the mapped function into one
//! computation, `named_map` keeps it a map: it traces the function once for one member (the
//! axis bound, so collectives record its size), and binds one `named_map` primitive holding
//! that body. Evaluated, its members run the body in lockstep and the collectives combine
//! them (`backend::reference::named_map`); transformed, it stays a map of the transformed
//! body (jvp, linearize and transpose member by member, the collectives by their own rules;
//! a vmap outside adds a batch to every member). It is the program form of an SPMD run:
//! the same primitive is what a communicator across threads or processes executes.

use crate::ir::collective::{bad_axis_name, is_axis_name};
use crate::ir::{Closed, Error, Primitive, Result, SourceLoc};
use crate::surface::collective::with_axis;
use crate::trace::{bind_multi, flatten, leaf_avals, trace_tree, unflatten, Emit, Tensor, Tree};

/// `f` run by every member of the axis `axis_name`, member `i` on index `i` along
/// dimension 0 of every leaf of `x`, the outputs stacked along dimension 0; collectives over
/// `axis_name` inside `f` (`psum`, `all_gather`, ...) combine the members. The values of
/// `vmap_axes(f, x, &VmapAxes::new().axis_name(axis_name))`, kept as a map in the program:
/// the collectives bit for bit (both combine the members in member order), the body's own
/// arithmetic to rounding where batching changes it (a batched matrix product sums in
/// another order). `jit` runs each member on a thread of its own.
///
/// ```
/// use ferrax::{named_map, psum, Tensor};
/// let xs = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[2, 2]);
/// // each member normalizes its row by the total over all members
/// let ys: Tensor = named_map(|x: Tensor| &x / psum(&x.sum_all(), "i"), &xs, "i").unwrap();
/// assert_eq!(ys.to_vec::<f64>().unwrap(), vec![0.1, 0.2, 0.3, 0.4]);
/// ```
#[track_caller]
pub fn named_map<I: Tree, O: Tree>(f: impl FnOnce(I) -> O, x: &I, axis_name: &str) -> Result<O> {
    let loc = SourceLoc::caller();
    let op = "named_map";
    let at = |e: Error| e.with_loc(loc);
    if !is_axis_name(axis_name) {
        return Err(at(bad_axis_name(op, axis_name)));
    }
    let (leaves, def) = flatten(x);
    let avals = leaf_avals(&leaves)?;
    let Some(n) = avals.first().and_then(|a| a.shape.first().copied()) else {
        return Err(at(Error::input(
            op,
            "the members are indices along dimension 0 of the inputs: give at least one input \
             with a dimension 0",
        )));
    };
    let mut member = Vec::with_capacity(avals.len());
    for (i, a) in avals.iter().enumerate() {
        if a.shape.first() != Some(&n) {
            return Err(at(Error::shape(
                op,
                format!("input {i} ({a}) must have {n} members along dimension 0, as input 0"),
            )));
        }
        member.push(crate::ir::Aval::new(a.shape[1..].to_vec(), a.dtype));
    }
    let traced = with_axis(axis_name, n, || trace_tree(f, &def, &member))?;
    // what the body captured is the same for every member: broadcast along the members
    let e = Emit { loc: Some(loc) };
    let mut args: Vec<Tensor> = leaves;
    for c in &traced.captured {
        let a = c.aval()?;
        let mut shape = vec![n];
        shape.extend(&a.shape);
        args.push(e.op1(
            Primitive::BroadcastInDim {
                shape,
                broadcast_dimensions: (1..=a.ndim()).collect(),
            },
            c,
        ));
    }
    let prim = Primitive::NamedMap {
        body: Closed::new(traced.program),
        axis_name: axis_name.to_string(),
        axis_size: n,
    };
    let refs: Vec<&Tensor> = args.iter().collect();
    let outs = bind_multi(prim, &refs, Some(loc))?;
    unflatten(&traced.out_def, outs)
}
