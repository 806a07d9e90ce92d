//! The options JAX users rely on, for the transformations beyond `grad`: `argnums`
//! (differentiate some positions of a tuple argument, hold the rest) and `has_aux` (the
//! function returns `(value, aux)`; `aux` comes back untouched).
//!
//! Sits on the value forms (`linear_map.rs`, `reverse.rs`, `jacobian.rs`) and shares their
//! machinery: an `argnums` form differentiates a function of the chosen positions' leaves,
//! the held ones closed over ([`Argnums`]); a `has_aux` form linearizes the whole function
//! and keeps the map of its value only ([`linearize_with_aux`]), so the aux outputs cost no
//! derivative work. Rust types cannot shrink a tuple to the chosen positions, so results
//! are either the argument's type with zeros at the held positions (`grad_argnums`,
//! `hvp_argnums`) or a [`Jacobian`] / [`LinearMap`] whose input structure is the tuple of
//! the chosen positions, in order (JAX's tuple of per-argument results).

use crate::api::forward::jvp;
use crate::api::functions::failed_like;
use crate::api::jacobian::{jacobian_forward, jacobian_reverse, Jacobian};
use crate::api::linear_map::{linearize, LinearMap};
use crate::api::reverse::{float_inputs, value_and_grad};
use crate::ir::{Error, Result, SourceLoc};
use crate::trace::{flatten, unflatten, Tensor, Tree, TreeDef};

/// A tuple argument split by `argnums`: the leaves of the chosen positions (what is
/// differentiated), and how to put them back beside the held ones.
pub(crate) struct Argnums {
    leaves: Vec<Tensor>,
    def: TreeDef,
    /// Per leaf: whether it belongs to a chosen position.
    chosen: Vec<bool>,
    /// The structure of the tuple of the chosen positions.
    chosen_def: TreeDef,
}

impl Argnums {
    /// Splits `x` (a tuple) at `argnums`: an error naming `op` for a non-tuple, a position out
    /// of range or repeated, or a chosen leaf that is not a float.
    pub(crate) fn new<I: Tree>(op: &str, x: &I, argnums: &[usize], loc: SourceLoc) -> Result<Self> {
        let (leaves, def) = flatten(x);
        let children = match &def {
            TreeDef::Node {
                kind: "tuple",
                children,
            } => children.clone(),
            other => {
                return Err(Error::input(
                    op,
                    format!("argnums picks positions of a tuple argument, got a {other:?}"),
                )
                .with_loc(loc))
            }
        };
        for (i, &k) in argnums.iter().enumerate() {
            if k >= children.len() || argnums[..i].contains(&k) {
                let why = match k >= children.len() {
                    true => "out of range",
                    false => "repeated",
                };
                return Err(Error::input(
                    op,
                    format!(
                        "argnums {argnums:?}: {k} is {why} for a tuple of {}",
                        children.len()
                    ),
                )
                .with_loc(loc));
            }
        }
        let mut chosen = Vec::with_capacity(leaves.len());
        for (k, c) in children.iter().enumerate() {
            chosen.extend(std::iter::repeat_n(argnums.contains(&k), c.num_leaves()));
        }
        let chosen_def = TreeDef::Node {
            kind: "tuple",
            children: (0..children.len())
                .filter(|k| argnums.contains(k))
                .map(|k| children[k].clone())
                .collect(),
        };
        let split = Argnums {
            leaves,
            def,
            chosen,
            chosen_def,
        };
        float_inputs(op, &split.wrt(), loc)?;
        Ok(split)
    }

    /// The leaves of the chosen positions, in order.
    pub(crate) fn wrt(&self) -> Vec<Tensor> {
        self.pick(&self.leaves)
    }

    fn pick(&self, leaves: &[Tensor]) -> Vec<Tensor> {
        leaves
            .iter()
            .zip(&self.chosen)
            .filter(|(_, &c)| c)
            .map(|(t, _)| t.clone())
            .collect()
    }

    /// The argument with the chosen leaves replaced by `picked` (the held ones as given).
    pub(crate) fn rebuild<I: Tree>(&self, picked: Vec<Tensor>) -> Result<I> {
        self.fill(picked, |t| Ok(t.clone()))
    }

    /// A tree like the argument with `picked` at the chosen leaves and zeros at the held.
    pub(crate) fn with_zeros<I: Tree>(&self, picked: Vec<Tensor>) -> Result<I> {
        self.fill(picked, |t| {
            let a = t.aval()?;
            Ok(Tensor::zeros(&a.shape, a.dtype))
        })
    }

    fn fill<I: Tree>(
        &self,
        picked: Vec<Tensor>,
        held: impl Fn(&Tensor) -> Result<Tensor>,
    ) -> Result<I> {
        let mut picked = picked.into_iter();
        let all = self
            .leaves
            .iter()
            .zip(&self.chosen)
            .map(|(t, &c)| match c {
                true => picked
                    .next()
                    .ok_or_else(|| Error::internal("argnums: too few leaves")),
                false => held(t),
            })
            .collect::<Result<Vec<_>>>()?;
        unflatten(&self.def, all)
    }

    /// `f` as a function of the chosen leaves.
    pub(crate) fn of_chosen<'a, I: Tree, O: Tree>(
        &'a self,
        f: impl FnOnce(I) -> O + 'a,
    ) -> impl FnOnce(Vec<Tensor>) -> O + 'a {
        move |picked: Vec<Tensor>| match self.rebuild::<I>(picked) {
            Ok(x) => f(x),
            // unreachable for leaves of the right count; keep the structure and the error
            Err(e) => f(failed_like(&self.rebuild_unchecked(), &e)),
        }
    }

    fn rebuild_unchecked<I: Tree>(&self) -> I {
        unflatten(&self.def, self.leaves.clone()).expect("the argument's own leaves")
    }

    /// A map of the chosen leaves, restructured to take the tuple of the chosen positions.
    fn name_inputs(&self, lin: &LinearMap) -> Result<LinearMap> {
        lin.restructured(
            self.chosen_def.clone(),
            lin.out_avals().len(),
            lin.out_def().clone(),
        )
    }
}

/// `f(x)` and the gradient with respect to the positions `argnums` of a tuple argument.
#[track_caller]
pub fn value_and_grad_argnums<I: Tree>(
    f: impl FnOnce(I) -> Tensor,
    x: &I,
    argnums: &[usize],
) -> Result<(Tensor, I)> {
    let split = Argnums::new("grad_argnums", x, argnums, SourceLoc::caller())?;
    let (value, g) = value_and_grad(split.of_chosen(f), &split.wrt())?;
    Ok((value, split.with_zeros(g)?))
}

/// The gradient with respect to the positions `argnums` of a tuple argument, zeros at the
/// held positions: `grad_argnums(f, &(w, b, data), &[0, 1])`.
///
/// ```
/// use ferrax::{grad_argnums, Tensor};
/// let f = |(w, x): (Tensor, Tensor)| (&w * &x).sum_all();
/// let (gw, gx) = grad_argnums(f, &(Tensor::scalar(2.0f64), Tensor::scalar(3.0f64)), &[0]).unwrap();
/// assert_eq!((gw.item().unwrap(), gx.item().unwrap()), (3.0, 0.0));
/// ```
#[track_caller]
pub fn grad_argnums<I: Tree>(f: impl FnOnce(I) -> Tensor, x: &I, argnums: &[usize]) -> Result<I> {
    Ok(value_and_grad_argnums(f, x, argnums)?.1)
}

/// `f(x)` and its vjp with respect to the positions `argnums`: the map takes a cotangent of
/// the output and gives the tuple of the chosen positions' cotangents.
///
/// ```
/// use ferrax::{vjp_argnums, Tensor};
/// let f = |(a, k, b): (Tensor, Tensor, Tensor)| &a * &b;
/// let x = (Tensor::scalar(2.0f64), Tensor::scalar(7i32), Tensor::scalar(5.0f64));
/// let (_, back) = vjp_argnums(f, &x, &[0, 2]).unwrap();
/// let (ga, gb): (Tensor, Tensor) = back.apply(&Tensor::scalar(1.0f64)).unwrap();
/// assert_eq!((ga.item().unwrap(), gb.item().unwrap()), (5.0, 2.0));
/// ```
#[track_caller]
pub fn vjp_argnums<I: Tree, O: Tree>(
    f: impl FnOnce(I) -> O,
    x: &I,
    argnums: &[usize],
) -> Result<(O, LinearMap)> {
    let split = Argnums::new("vjp_argnums", x, argnums, SourceLoc::caller())?;
    let (y, lin) = linearize(split.of_chosen(f), &split.wrt())?;
    Ok((y, split.name_inputs(&lin)?.transpose()?))
}

/// The forward-mode Jacobian with respect to the positions `argnums`: a [`Jacobian`] whose
/// input structure is the tuple of the chosen positions (`block(i, j)`: output leaf `i`,
/// leaf `j` of the chosen positions).
///
/// ```
/// use ferrax::{jacfwd_argnums, Tensor};
/// let f = |(a, b): (Tensor, Tensor)| &a * &b;
/// let x = (Tensor::from_vec(vec![1.0f64, 2.0], &[2]), Tensor::scalar(3.0f64));
/// let j = jacfwd_argnums(f, &x, &[1]).unwrap();
/// assert_eq!(j.block(0, 0).unwrap().to_vec::<f64>().unwrap(), vec![1.0, 2.0]);
/// ```
#[track_caller]
pub fn jacfwd_argnums<I: Tree, O: Tree>(
    f: impl FnOnce(I) -> O,
    x: &I,
    argnums: &[usize],
) -> Result<Jacobian> {
    let split = Argnums::new("jacfwd_argnums", x, argnums, SourceLoc::caller())?;
    let (_, lin) = linearize(split.of_chosen(f), &split.wrt())?;
    jacobian_forward(&split.name_inputs(&lin)?)
}

/// The reverse-mode Jacobian with respect to the positions `argnums` (as
/// [`jacfwd_argnums`]).
#[track_caller]
pub fn jacrev_argnums<I: Tree, O: Tree>(
    f: impl FnOnce(I) -> O,
    x: &I,
    argnums: &[usize],
) -> Result<Jacobian> {
    let split = Argnums::new("jacrev_argnums", x, argnums, SourceLoc::caller())?;
    let (_, lin) = linearize(split.of_chosen(f), &split.wrt())?;
    jacobian_reverse(&split.name_inputs(&lin)?)
}

/// The Hessian with respect to the positions `argnums` (forward over reverse): blocks over
/// the chosen positions' leaves, the others held.
///
/// ```
/// use ferrax::{hessian_argnums, Tensor};
/// // f = a² b c: with respect to (a, c)
/// let f = |(a, b, c): (Tensor, Tensor, Tensor)| &a * &a * &b * &c;
/// let x = (Tensor::scalar(1.0f64), Tensor::scalar(2.0f64), Tensor::scalar(3.0f64));
/// let h = hessian_argnums(f, &x, &[0, 2]).unwrap();
/// assert_eq!(h.block(0, 0).unwrap().item().unwrap(), 12.0); // f_aa = 2 b c
/// assert_eq!(h.block(0, 1).unwrap().item().unwrap(), 4.0); // f_ac = 2 a b
/// ```
#[track_caller]
pub fn hessian_argnums<I: Tree>(
    f: impl Fn(I) -> Tensor,
    x: &I,
    argnums: &[usize],
) -> Result<Jacobian> {
    let split = Argnums::new("hessian_argnums", x, argnums, SourceLoc::caller())?;
    let g = |picked: Vec<Tensor>| -> Vec<Tensor> {
        match value_and_grad(split.of_chosen(&f), &picked) {
            Ok((_, g)) => g,
            Err(e) => failed_like(&picked, &e),
        }
    };
    let (_, lin) = linearize(g, &split.wrt())?;
    let named = lin.restructured(
        split.chosen_def.clone(),
        lin.out_avals().len(),
        split.chosen_def.clone(),
    )?;
    jacobian_forward(&named)
}

/// A Hessian-vector product with respect to the positions `argnums`: the tangent `v` is a
/// tree like `x` whose chosen positions are read; the result has zeros at the held ones.
#[track_caller]
pub fn hvp_argnums<I: Tree>(f: impl Fn(I) -> Tensor, x: &I, v: &I, argnums: &[usize]) -> Result<I> {
    let loc = SourceLoc::caller();
    let split = Argnums::new("hvp_argnums", x, argnums, loc)?;
    let (v_leaves, v_def) = flatten(v);
    if v_def != split.def {
        return Err(Error::tree(
            "hvp_argnums",
            format!("v has structure {v_def:?} but x has {:?}", split.def),
        )
        .with_loc(loc));
    }
    for (i, (vi, xi)) in v_leaves.iter().zip(&split.leaves).enumerate() {
        let (va, xa) = (vi.aval()?, xi.aval()?);
        if va != xa {
            return Err(Error::input(
                "hvp_argnums",
                format!("leaf {i} of v is {va} but that of x is {xa}"),
            )
            .with_loc(loc));
        }
    }
    let g = |picked: Vec<Tensor>| -> Vec<Tensor> {
        match value_and_grad(split.of_chosen(&f), &picked) {
            Ok((_, g)) => g,
            Err(e) => failed_like(&picked, &e),
        }
    };
    let (_, hv) = jvp(g, &split.wrt(), &split.pick(&v_leaves))?;
    split.with_zeros(hv)
}

/// `f(x)`, its jvp along `t` and the untouched `aux`, for `f` returning `(value, aux)`
/// (`jax.jvp(f, x, t, has_aux=True)`): `(value, tangent, aux)`.
#[track_caller]
pub fn jvp_with_aux<I: Tree, O: Tree, A: Tree>(
    f: impl FnOnce(I) -> (O, A),
    x: &I,
    t: &I,
) -> Result<(O, O, A)> {
    let ((y, aux), (ty, _)) = jvp(f, x, t)?;
    Ok((y, ty, aux))
}

/// `f(x)`, its linear map and the untouched `aux`, for `f` returning `(value, aux)`
/// (`has_aux`): the map is of the value only.
///
/// ```
/// use ferrax::{linearize_with_aux, Tensor};
/// let f = |x: Tensor| (x.sin(), x.cos());
/// let (y, lin, aux) = linearize_with_aux(f, &Tensor::scalar(0.5f64)).unwrap();
/// let t: Tensor = lin.apply(&Tensor::scalar(2.0f64)).unwrap();
/// assert_eq!(t.item().unwrap(), 2.0 * 0.5f64.cos());
/// assert_eq!(aux.item().unwrap(), 0.5f64.cos());
/// # let _ = y;
/// ```
#[track_caller]
pub fn linearize_with_aux<I: Tree, O: Tree, A: Tree>(
    f: impl FnOnce(I) -> (O, A),
    x: &I,
) -> Result<(O, LinearMap, A)> {
    let ((y, aux), lin) = linearize(f, x)?;
    let (y_leaves, y_def) = flatten(&y);
    let lin = lin.restructured(lin.in_def().clone(), y_leaves.len(), y_def)?;
    Ok((y, lin, aux))
}

/// `f(x)`, its vjp and the untouched `aux`, for `f` returning `(value, aux)`
/// (`jax.vjp(f, x, has_aux=True)`).
#[track_caller]
pub fn vjp_with_aux<I: Tree, O: Tree, A: Tree>(
    f: impl FnOnce(I) -> (O, A),
    x: &I,
) -> Result<(O, LinearMap, A)> {
    let (y, lin, aux) = linearize_with_aux(f, x)?;
    Ok((y, lin.transpose()?, aux))
}

/// The forward-mode Jacobian of the value of `f` (returning `(value, aux)`) and the aux.
///
/// ```
/// use ferrax::{jacfwd_with_aux, Tensor};
/// let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2]);
/// let (j, aux) = jacfwd_with_aux(|x: Tensor| (&x * &x, x.sum_all()), &x).unwrap();
/// assert_eq!(j.to_vec::<f64>().unwrap(), vec![2.0, 0.0, 0.0, 4.0]);
/// assert_eq!(aux.item().unwrap(), 3.0);
/// ```
#[track_caller]
pub fn jacfwd_with_aux<A: Tree>(
    f: impl FnOnce(Tensor) -> (Tensor, A),
    x: &Tensor,
) -> Result<(Tensor, A)> {
    float_inputs("jacfwd_with_aux", x, SourceLoc::caller())?;
    let (_, lin, aux) = linearize_with_aux(f, x)?;
    Ok((jacobian_forward(&lin)?.block(0, 0)?.clone(), aux))
}

/// The reverse-mode Jacobian of the value of `f` (returning `(value, aux)`) and the aux.
#[track_caller]
pub fn jacrev_with_aux<A: Tree>(
    f: impl FnOnce(Tensor) -> (Tensor, A),
    x: &Tensor,
) -> Result<(Tensor, A)> {
    float_inputs("jacrev_with_aux", x, SourceLoc::caller())?;
    let (_, lin, aux) = linearize_with_aux(f, x)?;
    Ok((jacobian_reverse(&lin)?.block(0, 0)?.clone(), aux))
}

/// The Hessian of the scalar value of `f` (returning `(value, aux)`) and the aux (forward
/// over reverse).
///
/// ```
/// use ferrax::{hessian_with_aux, Tensor};
/// let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2]);
/// let (h, n) = hessian_with_aux(|x: Tensor| ((&x * &x * &x).sum_all(), x.sum_all()), &x).unwrap();
/// assert_eq!(h.to_vec::<f64>().unwrap(), vec![6.0, 0.0, 0.0, 12.0]);
/// # let _ = n;
/// ```
#[track_caller]
pub fn hessian_with_aux<A: Tree>(
    f: impl Fn(Tensor) -> (Tensor, A),
    x: &Tensor,
) -> Result<(Tensor, A)> {
    let loc = SourceLoc::caller();
    float_inputs("hessian_with_aux", x, loc)?;
    let (_, lin, aux) = linearize_with_aux(|x: Tensor| grad_with_aux_or_fail(&f, x), x)?;
    Ok((jacobian_forward(&lin)?.block(0, 0)?.clone(), aux))
}

/// A Hessian-vector product of the scalar value of `f` (returning `(value, aux)`), and the
/// aux.
#[track_caller]
pub fn hvp_with_aux<A: Tree>(
    f: impl Fn(Tensor) -> (Tensor, A),
    x: &Tensor,
    v: &Tensor,
) -> Result<(Tensor, A)> {
    let ((_, aux), (hv, _)) = jvp(|x: Tensor| grad_with_aux_or_fail(&f, x), x, v)?;
    Ok((hv, aux))
}

/// `grad_with_aux` as a function value: on an error, failed leaves of the right structure.
fn grad_with_aux_or_fail<A: Tree>(f: &impl Fn(Tensor) -> (Tensor, A), x: Tensor) -> (Tensor, A) {
    match crate::api::functions::grad_with_aux(f, &x) {
        Ok(ga) => ga,
        Err(e) => {
            let (_, aux) = f(failed_like(&x, &e));
            (Tensor::from_error(e), aux)
        }
    }
}
