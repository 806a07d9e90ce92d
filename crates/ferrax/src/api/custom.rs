//! Custom derivative rules: `custom_jvp` and `custom_vjp` (JAX's `jax.custom_jvp` and
//! `jax.custom_vjp`), as function values.
//!
//! Beside the other user-facing transformations: each call traces the function and its
//! rules once into one `custom_jvp` or `custom_vjp` primitive (`ir::custom` has the layout),
//! checks what the rules give against what the function gives (trees, shapes, dtypes), and
//! binds it. Evaluated plainly, the function runs; differentiated, the rule is used
//! (`passes/jvp/custom.rs`); vmap, jit and the text form carry the primitive like any other.
//!
//! Beyond JAX: a `custom_vjp` works in forward mode too. [`custom_vjp_linear`] declares
//! `bwd` linear in its cotangent; its transpose, computed and checked by the linearity
//! checker here, is the exact forward map (a `bwd` that is not linear is an error at once,
//! not a wrong derivative). [`custom_vjp`] makes no such promise (gradient clipping's `bwd`
//! is not linear), so its forward mode falls back to the jvp of the function itself, while
//! reverse mode runs `bwd` exactly. A `custom_jvp` rule is checked to be linear in its
//! tangents, so an affine or nonlinear rule is refused before it gives a wrong `vjp`.

use crate::api::functions::failed_like;
use crate::ir::control::list;
use crate::ir::custom::floats;
use crate::ir::Closed;
use crate::ir::{Aval, Error, Primitive, Program, Result, SourceLoc, Var};
use crate::passes::jvp::jvp_call;
use crate::passes::linearity::classify;
use crate::passes::transpose::transpose_program;
use crate::trace::{
    bind_multi, flatten, leaf_avals, materialize, trace_flat, trace_tree, unflatten, Emit, Tensor,
    Tree, TreeDef,
};

/// `f` with the derivative rule `rule` (`jax.custom_jvp` with `defjvp`): `rule(primals,
/// tangents)` gives `(f(primals), tangent of f)`, linear in the tangents. `jvp`,
/// `linearize`, and so `vjp`, `grad` and every Jacobian, use the rule instead of
/// differentiating `f`; differentiating twice differentiates the rule.
///
/// The tangents have the arguments' tree; integer and boolean leaves get zeros (they have
/// no tangent space), and their output tangents are ignored. Values `f` or `rule` capture
/// from an enclosing computation are constants: capturing one that is being differentiated
/// is an error (pass it as an argument). A rule whose outputs disagree with `f`'s (tree,
/// shapes, dtypes), whose primal outputs read the tangents, or that is not linear in the
/// tangents, is an error naming the function,
/// the avals and the line where `custom_jvp` was called; errors travel inside the result as
/// in the other function values (`grad_fn`).
///
/// ```
/// use ferrax::{custom_jvp, grad, Tensor};
/// // log(1 + e^x), whose naive derivative e^x / (1 + e^x) is NaN for large x
/// let log1pexp = custom_jvp(
///     |x: Tensor| x.exp().log1p(),
///     // the derivative written stably: the logistic function
///     |x: Tensor, t: Tensor| (x.exp().log1p(), t * x.logistic()),
/// );
/// let g = grad(|x: Tensor| log1pexp(x).sum_all(), &Tensor::scalar(100.0f64)).unwrap();
/// assert_eq!(g.item().unwrap(), 1.0);
/// ```
#[track_caller]
pub fn custom_jvp<I: Tree, O: Tree>(
    f: impl Fn(I) -> O,
    rule: impl Fn(I, I) -> (O, O),
) -> impl Fn(I) -> O {
    let loc = SourceLoc::caller();
    let name = short_name(std::any::type_name_of_val(&f));
    move |x: I| {
        let site = Site {
            op: "custom_jvp",
            name: &name,
            loc,
        };
        bind_custom_jvp(&f, &rule, &x, &site).unwrap_or_else(|e| f(failed_like(&x, &e)))
    }
}

/// `f` with the reverse-mode rule `fwd`, `bwd` (`jax.custom_vjp` with `defvjp`): `fwd(x)`
/// gives `(f(x), residuals)` (any tree), and `bwd(residuals, cotangent of the output)` the
/// cotangent of the argument. `vjp`, `grad` and `jacrev` run `fwd` and then `bwd` exactly;
/// `bwd` need not be linear (a clipped gradient is not). Forward mode (`jvp`, `jacfwd`,
/// `hessian`'s outer pass) cannot use such a `bwd` and differentiates `f` instead; use
/// [`custom_vjp_linear`] to have it transpose `bwd`. Differentiating `grad` again (a
/// Hessian) differentiates `fwd` and `bwd`.
///
/// Integer and boolean leaves have no cotangents: they get zeros as `bwd`'s input, and what
/// `bwd` gives for them is ignored. Errors as for [`custom_jvp`].
///
/// ```
/// use ferrax::{custom_vjp, grad, Tensor};
/// // the identity, with its gradient clipped to [-1, 1]
/// let clip_grad = custom_vjp(
///     |x: Tensor| x,
///     |x: Tensor| (x, ()),
///     |_: (), g: Tensor| g.clip(-1.0, 1.0),
/// );
/// let g = grad(|x: Tensor| (clip_grad(x) * 5.0).sum_all(), &Tensor::scalar(2.0f64)).unwrap();
/// assert_eq!(g.item().unwrap(), 1.0);
/// ```
#[track_caller]
pub fn custom_vjp<I: Tree, O: Tree, R: Tree>(
    f: impl Fn(I) -> O,
    fwd: impl Fn(I) -> (O, R),
    bwd: impl Fn(R, O) -> I,
) -> impl Fn(I) -> O {
    custom_vjp_inner(f, fwd, bwd, false, SourceLoc::caller())
}

/// [`custom_vjp`] whose `bwd` is declared linear in its cotangent, as every true vjp is:
/// forward mode then transposes `bwd`, so `jvp`, `jacfwd` and forward-over-reverse use the
/// user's rule too, exactly (beyond JAX, which cannot run a `custom_vjp` forward). The
/// linearity checker verifies the declaration when the function is called: a `bwd` that is
/// not linear in its cotangent (or affine) is an error naming the function and the
/// offending primitive, never a silently wrong derivative.
///
/// ```
/// use ferrax::{custom_vjp_linear, jvp, Tensor};
/// let sin = custom_vjp_linear(
///     |x: Tensor| x.sin(),
///     |x: Tensor| (x.sin(), x.cos()),
///     |cos_x: Tensor, g: Tensor| &g * &cos_x,
/// );
/// let x = Tensor::scalar(0.5f64);
/// let (_, t) = jvp(&sin, &x, &Tensor::scalar(2.0f64)).unwrap();
/// assert_eq!(t.item().unwrap(), 2.0 * 0.5f64.cos());
/// ```
#[track_caller]
pub fn custom_vjp_linear<I: Tree, O: Tree, R: Tree>(
    f: impl Fn(I) -> O,
    fwd: impl Fn(I) -> (O, R),
    bwd: impl Fn(R, O) -> I,
) -> impl Fn(I) -> O {
    custom_vjp_inner(f, fwd, bwd, true, SourceLoc::caller())
}

fn custom_vjp_inner<I: Tree, O: Tree, R: Tree>(
    f: impl Fn(I) -> O,
    fwd: impl Fn(I) -> (O, R),
    bwd: impl Fn(R, O) -> I,
    linear_bwd: bool,
    loc: SourceLoc,
) -> impl Fn(I) -> O {
    let name = short_name(std::any::type_name_of_val(&f));
    let op = match linear_bwd {
        true => "custom_vjp_linear",
        false => "custom_vjp",
    };
    move |x: I| {
        let site = Site {
            op,
            name: &name,
            loc,
        };
        bind_custom_vjp(&f, &fwd, &bwd, linear_bwd, &x, &site)
            .unwrap_or_else(|e| f(failed_like(&x, &e)))
    }
}

/// Where a custom rule was made, for its errors.
struct Site<'a> {
    op: &'static str,
    name: &'a str,
    loc: SourceLoc,
}

impl Site<'_> {
    fn err(&self, msg: String) -> Error {
        Error::Input {
            op: self.op.into(),
            msg: format!("`{}`: {msg}", self.name),
            loc: Some(self.loc),
        }
    }

    /// `got` (a tree's structure and leaves, from `who`) must have `want`'s structure and
    /// avals.
    fn agree(
        &self,
        who: &str,
        got: (&TreeDef, &[Tensor]),
        want: (&TreeDef, &[Aval]),
    ) -> Result<()> {
        let got = (got.0, leaf_avals(got.1)?);
        let got = (got.0, got.1.as_slice());
        if got.0 != want.0 {
            return Err(self.err(format!(
                "{who} has the structure {:?} where the function's is {:?}",
                got.0, want.0
            )));
        }
        if got.1 != want.1 {
            return Err(self.err(format!(
                "{who} has the avals ({}) where the function's are ({})",
                list(got.1),
                list(want.1)
            )));
        }
        Ok(())
    }
}

/// The function's name without its path, for messages: a named function's own name, a
/// closure's enclosing function's name followed by "(closure)".
fn short_name(full: &str) -> String {
    let trimmed = full.trim_end_matches("::{{closure}}");
    let last = trimmed.rsplit("::").next().unwrap_or(trimmed).to_string();
    match trimmed.len() < full.len() {
        true => last + " (closure)",
        false => last,
    }
}

/// A tree of `def` from the float leaves given (in order), zeros elsewhere: the tangent or
/// cotangent a rule sees for values of the avals `avals`.
fn with_zeros<T: Tree>(def: &TreeDef, avals: &[Aval], float_leaves: &[Tensor]) -> Result<T> {
    let mut it = float_leaves.iter();
    let zeros = Emit { loc: None };
    let leaves = avals
        .iter()
        .map(|a| match a.dtype.is_float() {
            true => it
                .next()
                .cloned()
                .ok_or_else(|| Error::internal("too few leaves")),
            false => Ok(zeros.zeros(a)),
        })
        .collect::<Result<Vec<_>>>()?;
    unflatten(def, leaves)
}

/// Where an input of a re-laid-out program comes from: an input of the original, or
/// nowhere (an input the program does not read, of this aval).
enum Slot {
    Input(usize),
    Unused(Aval),
}

/// `p` with its inputs in the order `slots` gives (unread inputs added): how every
/// sub-program of a custom primitive comes to take the same operands.
fn relayout(p: &Program, slots: impl IntoIterator<Item = Slot>) -> Program {
    let mut q = p.clone();
    q.inputs = slots
        .into_iter()
        .map(|s| match s {
            Slot::Input(i) => p.inputs[i],
            Slot::Unused(a) => {
                q.avals.push(a);
                Var((q.avals.len() - 1) as u32)
            }
        })
        .collect();
    q
}

fn inputs(range: std::ops::Range<usize>) -> impl Iterator<Item = Slot> {
    range.map(Slot::Input)
}

fn unused(avals: &[Aval]) -> impl Iterator<Item = Slot> + '_ {
    avals.iter().cloned().map(Slot::Unused)
}

fn bind_custom_jvp<I: Tree, O: Tree>(
    f: &impl Fn(I) -> O,
    rule: &impl Fn(I, I) -> (O, O),
    x: &I,
    site: &Site,
) -> Result<O> {
    let (leaves, in_def) = flatten(x);
    let avals = leaf_avals(&leaves)?;
    let n = avals.len();
    let t_avals = floats(&avals);
    let body = trace_tree(f, &in_def, &avals)?;
    let out_avals = body.program.out_avals();
    let n_out = out_avals.len();
    let mut rule_avals = avals.clone();
    rule_avals.extend(t_avals.iter().cloned());
    let (rule_p, rule_caps) = trace_flat(&rule_avals, |args| {
        let (primals, tangents) = args.split_at(n);
        let p: I = unflatten(&in_def, primals.to_vec())?;
        let t: I = with_zeros(&in_def, &avals, tangents)?;
        let (y, ty) = rule(p, t);
        let (y, y_def) = flatten(&y);
        let (ty, ty_def) = flatten(&ty);
        site.agree(
            "the rule's output",
            (&y_def, &y),
            (&body.out_def, &out_avals),
        )?;
        site.agree(
            "the rule's tangent",
            (&ty_def, &ty),
            (&body.out_def, &out_avals),
        )?;
        let mut outs = y;
        outs.extend(
            ty.into_iter()
                .filter(|t| t.dtype().is_some_and(|d| d.is_float())),
        );
        Ok(outs)
    })?;
    let (nf, nr, nt) = (body.captured.len(), rule_caps.len(), t_avals.len());
    let cap_avals = |caps: &[Tensor]| leaf_avals(caps);
    let (f_avals, r_avals) = (cap_avals(&body.captured)?, cap_avals(&rule_caps)?);
    // every sub-program takes (args, f's captures, rule's captures), the rule then tangents
    let body_p = relayout(&body.program, inputs(0..n + nf).chain(unused(&r_avals)));
    let rule_p = relayout(
        &rule_p,
        inputs(0..n)
            .chain(unused(&f_avals))
            .chain(inputs(n + nt..n + nt + nr))
            .chain(inputs(n..n + nt)),
    );
    // the tangent outputs must be linear in the tangents, given the primals and consts
    let mut tangent_part = rule_p.clone();
    tangent_part.outputs.drain(..n_out);
    classify(&tangent_part.dce(), n + nf + nr)
        .map_err(|e| site.err(format!("the rule is not linear in its tangents: {e}")))?;
    let prim = Primitive::CustomJvp {
        body: Closed::new(body_p),
        rule: Closed::new(rule_p),
        n_args: n,
    };
    let mut args: Vec<&Tensor> = leaves.iter().collect();
    args.extend(body.captured.iter().chain(&rule_caps));
    let outs = bind_multi(prim, &args, Some(site.loc))?;
    unflatten(&body.out_def, outs)
}

fn bind_custom_vjp<I: Tree, O: Tree, R: Tree>(
    f: &impl Fn(I) -> O,
    fwd: &impl Fn(I) -> (O, R),
    bwd: &impl Fn(R, O) -> I,
    linear_bwd: bool,
    x: &I,
    site: &Site,
) -> Result<O> {
    let (leaves, in_def) = flatten(x);
    let avals = leaf_avals(&leaves)?;
    let n = avals.len();
    let body = trace_tree(f, &in_def, &avals)?;
    let out_avals = body.program.out_avals();
    let mut res_def = None;
    let (fwd_p, fwd_caps) = trace_flat(&avals, |args| {
        let (y, r) = fwd(unflatten(&in_def, args)?);
        let (y, y_def) = flatten(&y);
        site.agree("fwd's output", (&y_def, &y), (&body.out_def, &out_avals))?;
        let (r, r_def) = flatten(&r);
        res_def = Some(r_def);
        Ok(y.into_iter().chain(r).collect())
    })?;
    let res_def = res_def.ok_or_else(|| Error::internal("fwd was not traced"))?;
    let res_avals = fwd_p.out_avals().split_off(out_avals.len());
    let nres = res_avals.len();
    let ct_avals = floats(&out_avals);
    let mut bwd_avals = res_avals.clone();
    bwd_avals.extend(ct_avals.iter().cloned());
    let (bwd_p, bwd_caps) = trace_flat(&bwd_avals, |args| {
        let (res, cts) = args.split_at(nres);
        let r: R = unflatten(&res_def, res.to_vec())?;
        let ct: O = with_zeros(&body.out_def, &out_avals, cts)?;
        let (g, g_def) = flatten(&bwd(r, ct));
        site.agree("bwd's cotangent", (&g_def, &g), (&in_def, &avals))?;
        Ok(g.into_iter()
            .filter(|t| t.dtype().is_some_and(|d| d.is_float()))
            .collect())
    })?;
    let (nf, nw, nb, nct) = (
        body.captured.len(),
        fwd_caps.len(),
        bwd_caps.len(),
        ct_avals.len(),
    );
    let f_avals = leaf_avals(&body.captured)?;
    let w_avals = leaf_avals(&fwd_caps)?;
    let b_avals = leaf_avals(&bwd_caps)?;
    // operands: args, then the captures of f, fwd and bwd
    let body_p = relayout(
        &body.program,
        inputs(0..n + nf)
            .chain(unused(&w_avals))
            .chain(unused(&b_avals)),
    );
    let fwd_p = relayout(
        &fwd_p,
        inputs(0..n)
            .chain(unused(&f_avals))
            .chain(inputs(n..n + nw))
            .chain(unused(&b_avals)),
    );
    let args_and_consts = |q: &Program, tail: std::ops::Range<usize>, caps: usize| {
        relayout(
            q,
            inputs(0..nres)
                .chain(unused(&avals))
                .chain(unused(&f_avals))
                .chain(unused(&w_avals))
                .chain(inputs(caps..caps + nb))
                .chain(inputs(tail)),
        )
    };
    // bwd: (res, cts, its captures) -> (res, args, consts, cts)
    let bwd_full = args_and_consts(&bwd_p, nres..nres + nct, nres + nct);
    let tangent_p = match linear_bwd {
        true => {
            // bwd as (res, its captures, cts): linear in the cotangents, transposed
            let lin = relayout(
                &bwd_p,
                inputs(0..nres)
                    .chain(inputs(nres + nct..nres + nct + nb))
                    .chain(inputs(nres..nres + nct)),
            );
            let t = transpose_program(&lin, nres + nb).map_err(|e| {
                site.err(format!(
                    "bwd is declared linear in its cotangent but is not: {e}"
                ))
            })?;
            // the transpose takes (res, captures, arg tangents)
            args_and_consts(&t, nres + nb..t.inputs.len(), nres)
        }
        false => jvp_of_body(&body_p, &res_avals, n, &avals)?,
    };
    let prim = Primitive::CustomVjp {
        body: Closed::new(body_p),
        fwd: Closed::new(fwd_p),
        bwd: Closed::new(bwd_full),
        tangent: Closed::new(tangent_p),
        n_args: n,
    };
    let mut args: Vec<&Tensor> = leaves.iter().collect();
    args.extend(body.captured.iter().chain(&fwd_caps).chain(&bwd_caps));
    let outs = bind_multi(prim, &args, Some(site.loc))?;
    unflatten(&body.out_def, outs)
}

/// The fallback forward map of a `custom_vjp`: (residuals, args, consts, float args'
/// tangents) to the float outputs' tangents by the jvp of the body (which takes (args,
/// consts)); the residuals are not read.
fn jvp_of_body(
    body: &Program,
    res_avals: &[Aval],
    n_args: usize,
    avals: &[Aval],
) -> Result<Program> {
    let ops = body.in_avals();
    let nres = res_avals.len();
    let mut ins = res_avals.to_vec();
    ins.extend(ops.iter().cloned());
    ins.extend(floats(avals));
    let out_avals = floats(&body.out_avals());
    let (p, caps) = trace_flat(&ins, |args| {
        let primals = &args[nres..nres + ops.len()];
        let mut t = args[nres + ops.len()..].iter();
        let tangents: Vec<Option<Tensor>> = ops
            .iter()
            .enumerate()
            .map(|(i, a)| match i < n_args && a.dtype.is_float() {
                true => t.next().cloned(),
                false => None,
            })
            .collect();
        let (outs, touts) = jvp_call(body, primals, &tangents)?;
        let touts = outs
            .iter()
            .zip(touts)
            .filter(|(o, _)| o.dtype().is_some_and(|d| d.is_float()))
            .map(|(_, t)| t)
            .collect();
        Ok(materialize(touts, &out_avals))
    })?;
    if !caps.is_empty() {
        return Err(Error::internal(
            "the jvp of a custom_vjp's body captured values",
        ));
    }
    Ok(p)
}
