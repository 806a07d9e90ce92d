//! Transformations as function values: `grad_fn(f)` is the function `x ↦ grad(f, x)`, so
//! transformations compose the way JAX's do (`jacfwd_fn(grad_fn(f))` is a Hessian) without
//! error plumbing at every level.
//!
//! Sits on the value forms (`reverse.rs`, `forward.rs`, `vmap.rs`), which stay the entry
//! points that return `Result`. A function value cannot return `Result` and still be handed
//! to another transformation (which takes `Fn(Tensor) -> Tensor`), so an error travels the
//! way every traced error does: the returned tree's leaves are failed tensors carrying it,
//! the enclosing trace records it, and the outermost call (a value form, `jit`,
//! `Tensor::to_vec`, ...) returns it as one `Err` naming the innermost cause and the user's
//! line. Called eagerly, reading a leaf of the result gives the same `Err`.
//!
//! `grad_with_aux` and `value_and_grad_with_aux` are JAX's `has_aux`: the function returns
//! `(value, aux)` and the aux tree comes back untouched beside the derivative. The other
//! transformations' `has_aux` and every `argnums` form are in `options.rs`.

use crate::api::forward::jacfwd;
use crate::api::reverse::{float_inputs, grad, hessian, hvp, jacrev, value_and_grad, vjp};
use crate::api::vmap::{vmap, vmap_axes, VmapAxes};
use crate::ir::{Error, Result, SourceLoc};
use crate::trace::{flatten, tree_map, unflatten, Tensor, Tree};

/// A tree shaped like `like` whose every leaf is a failed tensor carrying `e` (recorded in
/// the enclosing trace, if any).
pub(crate) fn failed_like<T: Tree>(like: &T, e: &Error) -> T {
    let (leaves, def) = flatten(like);
    let failed: Vec<Tensor> = leaves
        .iter()
        .map(|_| Tensor::from_error(e.clone()))
        .collect();
    unflatten(&def, failed).expect("a structure rebuilt with its own number of leaves")
}

/// `x ↦ grad(f, x)`: the gradient as a function (`jax.grad(f)`).
///
/// ```
/// use ferrax::{grad_fn, jacfwd_fn, Array, Tensor};
/// let f = |x: Tensor| (&x * &x * &x).sum_all();
/// // the Hessian of f as jacfwd of grad, both function values
/// let h = jacfwd_fn(grad_fn(f));
/// let x = Tensor::new(Array::from_slice(&[1.0f64, 2.0]));
/// assert_eq!(h(x).to_vec::<f64>().unwrap(), vec![6.0, 0.0, 0.0, 12.0]);
/// ```
pub fn grad_fn<I: Tree, F: Fn(I) -> Tensor>(f: F) -> impl Fn(I) -> I {
    move |x: I| grad(&f, &x).unwrap_or_else(|e| failed_like(&x, &e))
}

/// `x ↦ value_and_grad(f, x)` (`jax.value_and_grad(f)`).
pub fn value_and_grad_fn<I: Tree, F: Fn(I) -> Tensor>(f: F) -> impl Fn(I) -> (Tensor, I) {
    move |x: I| {
        value_and_grad(&f, &x)
            .unwrap_or_else(|e| (Tensor::from_error(e.clone()), failed_like(&x, &e)))
    }
}

/// `x ↦ jacfwd(f, x)`: the forward-mode Jacobian as a function.
pub fn jacfwd_fn<F: Fn(Tensor) -> Tensor>(f: F) -> impl Fn(Tensor) -> Tensor {
    move |x: Tensor| jacfwd(&f, &x).unwrap_or_else(Tensor::from_error)
}

/// `x ↦ jacrev(f, x)`: the reverse-mode Jacobian as a function.
pub fn jacrev_fn<F: Fn(Tensor) -> Tensor>(f: F) -> impl Fn(Tensor) -> Tensor {
    move |x: Tensor| jacrev(&f, &x).unwrap_or_else(Tensor::from_error)
}

/// `x ↦ hessian(f, x)` (forward over reverse) as a function.
pub fn hessian_fn<F: Fn(Tensor) -> Tensor>(f: F) -> impl Fn(Tensor) -> Tensor {
    move |x: Tensor| hessian(&f, &x).unwrap_or_else(Tensor::from_error)
}

/// `(x, v) ↦ hvp(f, x, v)`: Hessian-vector products as a function.
pub fn hvp_fn<F: Fn(Tensor) -> Tensor>(f: F) -> impl Fn(Tensor, Tensor) -> Tensor {
    move |x: Tensor, v: Tensor| hvp(&f, &x, &v).unwrap_or_else(Tensor::from_error)
}

/// `x ↦ vmap(f, x)`: `f` mapped over axis 0 of every leaf, as a function (`jax.vmap(f)`):
/// `vmap_fn(grad_fn(loss))` gives per-example gradients. When the mapping fails (sizes that
/// disagree, say), the result is `f` applied to failed inputs: a tree of the right structure
/// whose leaves carry the error.
pub fn vmap_fn<I: Tree, O: Tree, F: Fn(I) -> O>(f: F) -> impl Fn(I) -> O {
    move |x: I| vmap(&f, &x).unwrap_or_else(|e| f(failed_like(&x, &e)))
}

/// [`vmap_fn`] with axes and size ([`VmapAxes`]), as `jax.vmap(f, in_axes, out_axes)`.
pub fn vmap_axes_fn<I: Tree, O: Tree, F: Fn(I) -> O>(f: F, axes: VmapAxes) -> impl Fn(I) -> O {
    move |x: I| vmap_axes(&f, &x, &axes).unwrap_or_else(|e| f(failed_like(&x, &e)))
}

/// The gradient of `f`'s first output, with its second (`aux`) returned untouched
/// (`jax.grad(f, has_aux=True)`): `(gradient, aux)`.
///
/// ```
/// use ferrax::{grad_with_aux, Array, Tensor};
/// let x = Tensor::new(Array::from_slice(&[3.0f64]));
/// let (g, aux) = grad_with_aux(|x: Tensor| ((&x * &x).sum_all(), x.sin()), &x).unwrap();
/// assert_eq!(g.to_vec::<f64>().unwrap(), vec![6.0]);
/// assert_eq!(aux.to_vec::<f64>().unwrap(), vec![3.0f64.sin()]);
/// ```
#[track_caller]
pub fn grad_with_aux<I: Tree, A: Tree>(f: impl FnOnce(I) -> (Tensor, A), x: &I) -> Result<(I, A)> {
    let (_, g, aux) = value_and_grad_with_aux(f, x)?;
    Ok((g, aux))
}

/// `f`'s first output, its gradient and the untouched `aux` second output
/// (`jax.value_and_grad(f, has_aux=True)`): `(value, gradient, aux)`.
#[track_caller]
pub fn value_and_grad_with_aux<I: Tree, A: Tree>(
    f: impl FnOnce(I) -> (Tensor, A),
    x: &I,
) -> Result<(Tensor, I, A)> {
    float_inputs("grad_with_aux", x, SourceLoc::caller())?;
    let ((y, aux), f_vjp) = vjp(f, x)?;
    // a cotangent of one for the value; the aux outputs get none (zeros)
    let ya = y.aval()?;
    if ya.ndim() != 0 || !ya.dtype.is_float() {
        return Err(Error::shape(
            "grad_with_aux",
            format!("the function's first output must be a float scalar, got {ya}"),
        ));
    }
    let one = Tensor::full(&[], 1.0, ya.dtype);
    let zeros = tree_map(&aux, |t| match t.aval() {
        Ok(a) => Tensor::zeros(&a.shape, a.dtype),
        Err(e) => Tensor::from_error(e),
    })?;
    let g: I = f_vjp.apply(&(one, zeros))?;
    Ok((y, g, aux))
}
