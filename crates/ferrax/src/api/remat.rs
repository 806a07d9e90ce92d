//! `checkpoint` (JAX's `jax.checkpoint`, or remat) and `checkpoint_name`: trading memory
//! for recomputation in reverse mode and in linear maps.
//!
//! Beside the other user-facing transformations: `checkpoint` traces the function once and
//! binds one `checkpoint` primitive holding it; outside any transformation it just runs.
//! Under linearization (and so `vjp`, `grad`, a `LinearMap`) the policy decides which of
//! the function's intermediate values are stored; the others are recomputed from its inputs
//! whenever the linear map or its transpose is applied (`passes/partial_eval/remat.rs`).

use crate::ir::{is_checkpoint_name, Closed, Error, Primitive, RematPolicy, Result, SourceLoc};
use crate::trace::{bind_multi, flatten, leaf_avals, trace_tree, unflatten, Tensor, Tree};

/// `f(x)`, with the residuals of its linearization stored only where `policy` says and
/// recomputed from `x` otherwise (JAX's `jax.checkpoint(f, policy=...)`).
///
/// [`RematPolicy::Nothing`] stores nothing of `f`'s own: a `LinearMap` of a function that
/// applies `f` holds `f`'s inputs, and each application of the map (or of its transpose)
/// runs `f`'s primal work again before its linear work: memory for time, counted by
/// [`eval_counts`](crate::eval_counts). [`RematPolicy::Dots`] keeps the matrix products,
/// [`RematPolicy::Names`] the values marked with [`checkpoint_name`], and
/// [`RematPolicy::Everything`] all (no recomputation). Results are the same whatever the
/// policy. Inside a `scan` body it cuts the residuals the loop stacks per iteration.
///
/// ```
/// use ferrax::{checkpoint, linearize, Array, RematPolicy, Tensor};
/// let f = |x: Tensor| checkpoint(|x: Tensor| x.sin().exp(), RematPolicy::Nothing, &x).unwrap();
/// let x = Tensor::new(Array::from_slice(&[0.5f64, 1.0]));
/// let (_, saved) = linearize(f, &x).unwrap();
/// let (_, stored) = linearize(|x: Tensor| x.sin().exp(), &x).unwrap();
/// // the checkpoint keeps x only; without it, exp(sin x) and cos x are stored too
/// assert!(saved.residual_bytes() < stored.residual_bytes());
/// ```
#[track_caller]
pub fn checkpoint<I: Tree, O: Tree>(
    f: impl FnOnce(I) -> O,
    policy: RematPolicy,
    x: &I,
) -> Result<O> {
    let loc = SourceLoc::caller();
    if let RematPolicy::Names(names) = &policy {
        if let Some(bad) = names.iter().find(|n| !is_checkpoint_name(n)) {
            return Err(bad_name("checkpoint", bad, loc));
        }
    }
    let (leaves, def) = flatten(x);
    let avals = leaf_avals(&leaves)?;
    let traced = trace_tree(f, &def, &avals)?;
    let prim = Primitive::Checkpoint {
        body: Closed::new(traced.program),
        policy,
    };
    // the body takes the leaves, then what it captured
    let mut args: Vec<&Tensor> = leaves.iter().collect();
    args.extend(traced.captured.iter());
    let outs = bind_multi(prim, &args, Some(loc))?;
    unflatten(&traced.out_def, outs)
}

/// `x`, named `name` for a [`checkpoint`] whose policy is [`RematPolicy::Names`] (JAX's
/// `checkpoint_name`). A name is an identifier: letters, digits and `_`, not starting with
/// a digit, and not `nothing`, `everything` or `dots`.
#[track_caller]
pub fn checkpoint_name(x: &Tensor, name: &str) -> Result<Tensor> {
    let loc = SourceLoc::caller();
    if !is_checkpoint_name(name) {
        return Err(bad_name("checkpoint_name", name, loc));
    }
    let prim = Primitive::CheckpointName {
        name: name.to_string(),
    };
    Ok(bind_multi(prim, &[x], Some(loc))?.remove(0))
}

fn bad_name(op: &str, name: &str, loc: SourceLoc) -> Error {
    Error::Input {
        op: op.into(),
        msg: format!(
            "`{name}` cannot name a checkpointed value: a name is letters, digits and `_`, \
             not starting with a digit, and not nothing, everything or dots"
        ),
        loc: Some(loc),
    }
}
