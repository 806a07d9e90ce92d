//! Staging: a closure traced into a program (`make_jaxpr`), and the identity transformation
//! (`stage`) that exercises the path every transformation takes inside another.

use crate::ir::{Program, Result};
use crate::trace::{flatten, leaf_avals, trace_tree, unflatten, Tree};

/// Traces `f` on inputs shaped like `example` into a [`Program`] (JAX's `make_jaxpr`).
///
/// The program's inputs are the leaves of `example`, in order. Called inside another trace,
/// tensors of that trace which `f` uses become extra inputs after those.
///
/// ```
/// use ferrax::{make_jaxpr, Tensor};
/// let p = make_jaxpr(|x: Tensor| x.sin() * 2.0, &Tensor::scalar(1.0f64)).unwrap();
/// assert_eq!(p.to_string(), "{ lambda ; a:f64[] . let\n    b:f64[] = sin a\n    c:f64[] = mul b 2.0:f64\n  in (c) }");
/// ```
pub fn make_jaxpr<I: Tree, O: Tree>(f: impl FnOnce(I) -> O, example: &I) -> Result<Program> {
    let (leaves, def) = flatten(example);
    let avals = leaf_avals(&leaves)?;
    Ok(trace_tree(f, &def, &avals)?.program)
}

/// Traces `f` into its own program, then applies that program to `x`: the identity
/// transformation. It goes through exactly the path every transformation takes when it is
/// called inside another (trace the inner closure, lift the outer tensors it uses into extra
/// inputs, emit the program back with those tensors in place), so nested tracing and
/// closure conversion can be used and tested on their own.
///
/// ```
/// use ferrax::{make_jaxpr, stage, Tensor};
/// // The inner closure captures `y`, a traced value of the outer trace.
/// let p = make_jaxpr(|(x, y): (Tensor, Tensor)| stage(|x: Tensor| &x * &y, &x).unwrap(),
///                    &(Tensor::scalar(2.0f64), Tensor::scalar(3.0f64))).unwrap();
/// assert_eq!(p.eval(&[ferrax::Array::scalar(2.0f64), ferrax::Array::scalar(3.0f64)]).unwrap()[0]
///            .to_vec::<f64>().unwrap(), vec![6.0]);
/// ```
#[track_caller]
pub fn stage<I: Tree, O: Tree>(f: impl FnOnce(I) -> O, x: &I) -> Result<O> {
    let (leaves, def) = flatten(x);
    let avals = leaf_avals(&leaves)?;
    let traced = trace_tree(f, &def, &avals)?;
    let mut args = leaves;
    args.extend(traced.captured);
    let outs = traced.program.call(&args)?;
    unflatten(&traced.out_def, outs)
}
