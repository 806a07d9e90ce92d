//! Forward mode through custom rules: the jvp rules of `custom_jvp`, `custom_vjp` and
//! `custom_lin`.
//!
//! Part of the jvp pass (`jvp`), routed here from `jvp::control` with the other primitives
//! that hold sub-programs. Where this is the whole point of the primitives, the user's rule
//! replaces the derivative of the body:
//!
//! * `custom_jvp`: the rule runs in place of the body, giving the outputs and their tangents.
//!   Its equations are ordinary ones from here on, so `linearize` splits them, `vjp`
//!   transposes their tangent part, and an enclosing jvp differentiates them (second order
//!   differentiates the rule, as in JAX).
//! * `custom_vjp`: `fwd` runs in place of the body, giving the outputs and the residuals,
//!   and the tangents come from one `custom_lin` whose forward map is the primitive's
//!   `tangent` program and whose transpose is `bwd`: reverse mode (transposition) runs the
//!   user's `bwd` exactly, and forward mode runs `tangent`, the transpose of a `bwd`
//!   declared linear or, failing that, the jvp of the body.
//! * `custom_lin`: linear in its linear operands, so their tangents go through the same
//!   primitive (keeping its transpose); tangents of its other operands (second-order
//!   derivatives of a `custom_vjp`) differentiate the forward map as a program.
//!
//! The rules answer for the function's arguments only: a tangent on a value the function
//! or its rules captured from an enclosing computation would be silently dropped, so it is
//! an error naming the primitive (JAX refuses the same closures for `custom_vjp`).

use crate::ir::{Error, Primitive, Result};
use crate::passes::jvp::jvp_call;
use crate::trace::{Emit, Tensor};

/// The jvp of a custom-rule primitive: its outputs and their tangents (`None` = zero).
pub(crate) fn jvp_custom(
    emit: &Emit,
    prim: &Primitive,
    x: &[Tensor],
    t: &[Option<Tensor>],
) -> Result<(Vec<Tensor>, Vec<Option<Tensor>>)> {
    match prim {
        Primitive::CustomJvp { rule, n_args, .. } => {
            let Some(tangents) = arg_tangents(emit, prim, *n_args, x, t)? else {
                return primal_only(emit, prim, x);
            };
            let mut ins = x.to_vec();
            ins.extend(tangents);
            let mut outs = rule.program().call_within(&ins, emit.loc)?;
            let touts = outs.split_off(n_outs(prim));
            Ok((outs.clone(), spread_floats(&outs, touts)))
        }
        Primitive::CustomVjp {
            fwd,
            bwd,
            tangent,
            n_args,
            ..
        } => {
            let Some(tangents) = arg_tangents(emit, prim, *n_args, x, t)? else {
                return primal_only(emit, prim, x);
            };
            let mut res = fwd.program().call_within(x, emit.loc)?;
            let outs: Vec<Tensor> = res.drain(..n_outs(prim)).collect();
            // nonlinear operands of the linear map: residuals, then the arguments and consts
            let mut ins = res.clone();
            ins.extend(x.iter().cloned());
            let n_nonlin = ins.len();
            ins.extend(tangents);
            let lin = Primitive::CustomLin {
                forward: tangent.clone(),
                transpose: bwd.clone(),
                n_nonlin,
            };
            let touts = emit.multi(lin, &ins.iter().collect::<Vec<_>>())?;
            Ok((outs.clone(), spread_floats(&outs, touts)))
        }
        Primitive::CustomLin {
            forward, n_nonlin, ..
        } => {
            let n = *n_nonlin;
            // the nonlinear operands' tangents (second order) through the forward map as a
            // program; the linear operands' tangents go through the same primitive below
            let (outs, mut touts) = match t[..n].iter().any(Option::is_some) {
                true => {
                    let mut tn = t[..n].to_vec();
                    tn.resize(x.len(), None);
                    jvp_call(forward.program(), x, &tn)?
                }
                false => primal_only(emit, prim, x)?,
            };
            if t[n..].iter().any(Option::is_some) {
                let mut ins = x[..n].to_vec();
                for (xi, ti) in x[n..].iter().zip(&t[n..]) {
                    ins.push(match ti {
                        Some(ti) => ti.clone(),
                        None => emit.zeros(&xi.aval()?),
                    });
                }
                let lin = emit.multi(prim.clone(), &ins.iter().collect::<Vec<_>>())?;
                for (acc, l) in touts.iter_mut().zip(lin) {
                    *acc = Some(match acc.take() {
                        Some(a) => emit.add(&a, &l),
                        None => l,
                    });
                }
            }
            Ok((outs, touts))
        }
        other => Err(Error::internal(format!(
            "`{}` reached the custom rules' jvp",
            other.name()
        ))),
    }
}

/// How many outputs the primitive's body gives.
fn n_outs(prim: &Primitive) -> usize {
    prim.callee().map_or(0, |b| b.program().outputs.len())
}

/// The primitive on primals only (no argument has a tangent).
fn primal_only(
    emit: &Emit,
    prim: &Primitive,
    x: &[Tensor],
) -> Result<(Vec<Tensor>, Vec<Option<Tensor>>)> {
    let outs = emit.multi(prim.clone(), &x.iter().collect::<Vec<_>>())?;
    let n = outs.len();
    Ok((outs, vec![None; n]))
}

/// One tangent per float argument (zeros built where none is given), or `None` when no
/// argument has one. A tangent on a captured value (an operand past the arguments) is an
/// error: the rule does not see it.
fn arg_tangents(
    emit: &Emit,
    prim: &Primitive,
    n_args: usize,
    x: &[Tensor],
    t: &[Option<Tensor>],
) -> Result<Option<Vec<Tensor>>> {
    let floats = |i: usize| x[i].dtype().is_some_and(|d| d.is_float());
    if let Some(i) = (n_args..x.len()).find(|&i| t[i].is_some() && floats(i)) {
        return Err(Error::Input {
            op: prim.name().into(),
            msg: format!(
                "the function or its rule captures a value that is being differentiated \
                 ({}, captured value {} of {}); its derivative would be dropped: pass it \
                 as an argument instead",
                x[i].aval()?,
                i - n_args + 1,
                x.len() - n_args
            ),
            loc: emit.loc,
        });
    }
    if !(0..n_args).any(|i| t[i].is_some() && floats(i)) {
        return Ok(None);
    }
    let mut out = vec![];
    for i in (0..n_args).filter(|&i| floats(i)) {
        out.push(match &t[i] {
            Some(ti) => ti.clone(),
            None => emit.zeros(&x[i].aval()?),
        });
    }
    Ok(Some(out))
}

/// Tangents for every output from tangents of the float ones (in order); integer and
/// boolean outputs get none.
fn spread_floats(outs: &[Tensor], float_touts: Vec<Tensor>) -> Vec<Option<Tensor>> {
    let mut it = float_touts.into_iter();
    outs.iter()
        .map(|o| match o.dtype().is_some_and(|d| d.is_float()) {
            true => it.next(),
            false => None,
        })
        .collect()
}
