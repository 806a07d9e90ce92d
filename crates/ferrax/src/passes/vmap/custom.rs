//! Vectorization of custom rules: the batching rules of `custom_jvp`, `custom_vjp` and
//! `custom_lin`.
//!
//! Part of the batching pass (`vmap`), routed here from `vmap::control`. A custom primitive
//! stays one primitive whose sub-programs are all batched, and they must stay consistent
//! with each other: a rule's tangents have the avals of the values they belong to, and a
//! `custom_lin`'s transpose must transpose its batched forward map. So the rule keeps every
//! value the rules exchange batched at axis 0: the arguments (and a `custom_lin`'s linear
//! operands) are broadcast when they do not vary, and every output of every sub-program is
//! batched. The captured consts (and a `custom_lin`'s nonlinear operands) keep their own
//! batch dimensions (moved to 0): they are never differentiated, so nothing pairs with them.
//! The price is a broadcast of an argument that does not vary, which is what a per-example
//! derivative needs anyway.

use crate::ir::{Closed, Error, Primitive, Program, Result};
use crate::passes::vmap::control::{batch_sub, BatchFn};
use crate::passes::vmap::dims::{front, to_front, Batched};
use crate::trace::{Emit, Tensor};

/// The batching rule of a custom-rule primitive with at least one batched operand.
pub(crate) fn batch_custom(
    e: &Emit,
    prim: &Primitive,
    x: &[Batched],
    size: usize,
    run: BatchFn,
) -> Result<Vec<Batched>> {
    // how many leading operands are batched whatever they are (arguments, linear operands)
    let n_forced = match prim {
        Primitive::CustomJvp { n_args, .. } | Primitive::CustomVjp { n_args, .. } => *n_args,
        Primitive::CustomLin { n_nonlin, .. } => x.len().saturating_sub(*n_nonlin),
        other => {
            return Err(Error::internal(format!(
                "`{}` reached the custom rules' batching",
                other.name()
            )))
        }
    };
    let forced = |i: usize| match prim {
        Primitive::CustomLin { n_nonlin, .. } => i >= *n_nonlin,
        _ => i < n_forced,
    };
    // every operand at axis 0 if batched; the forced ones batched
    let mut operands: Vec<Tensor> = Vec::with_capacity(x.len());
    let mut dims: Vec<Option<usize>> = Vec::with_capacity(x.len());
    for (i, xi) in x.iter().enumerate() {
        match (xi.1, forced(i)) {
            (Some(b), _) => operands.push(to_front(e, &xi.0, b)),
            (None, true) => operands.push(front(e, xi, size)),
            (None, false) => {
                operands.push(xi.0.clone());
                dims.push(None);
                continue;
            }
        }
        dims.push(Some(0));
    }
    let all = |p: &Program| vec![true; p.outputs.len()];
    let batch = |p: &Program, in_dims: &[Option<usize>]| -> Result<Closed> {
        let (b, _) = batch_sub(e, p, in_dims, &all(p), size, run, prim.name())?;
        Ok(Closed::new(b))
    };
    let at0 = |n: usize| vec![Some(0); n];
    let cat = |parts: &[&[Option<usize>]]| parts.concat();
    let new = match prim {
        Primitive::CustomJvp { body, rule, n_args } => {
            let n_t = rule.program().inputs.len() - x.len();
            Primitive::CustomJvp {
                body: batch(body.program(), &dims)?,
                rule: batch(rule.program(), &cat(&[&dims, &at0(n_t)]))?,
                n_args: *n_args,
            }
        }
        Primitive::CustomVjp {
            body,
            fwd,
            bwd,
            tangent,
            n_args,
        } => {
            let n_res = fwd.program().outputs.len() - body.program().outputs.len();
            let n_ct = bwd.program().inputs.len() - n_res - x.len();
            let n_t = tangent.program().inputs.len() - n_res - x.len();
            Primitive::CustomVjp {
                body: batch(body.program(), &dims)?,
                fwd: batch(fwd.program(), &dims)?,
                bwd: batch(bwd.program(), &cat(&[&at0(n_res), &dims, &at0(n_ct)]))?,
                tangent: batch(tangent.program(), &cat(&[&at0(n_res), &dims, &at0(n_t)]))?,
                n_args: *n_args,
            }
        }
        Primitive::CustomLin {
            forward,
            transpose,
            n_nonlin,
        } => {
            let n_ct = forward.program().outputs.len();
            Primitive::CustomLin {
                forward: batch(forward.program(), &dims)?,
                transpose: batch(transpose.program(), &cat(&[&dims[..*n_nonlin], &at0(n_ct)]))?,
                n_nonlin: *n_nonlin,
            }
        }
        _ => return Err(Error::internal("batch_custom: checked above")),
    };
    let outs = e.multi(new, &operands.iter().collect::<Vec<_>>())?;
    Ok(outs.into_iter().map(|t| (t, Some(0))).collect())
}
