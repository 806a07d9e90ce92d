//! Partial evaluation of a `checkpoint`: the residuals its policy does not store are
//! recomputed by the linear part.
//!
//! Part of partial evaluation's control-flow rules (`control.rs` routes a `checkpoint` with
//! known and unknown operands here). The body is split like any program: a known part
//! (known operands to known outputs and residuals) and an unknown part (residuals and
//! unknown operands to unknown outputs). The policy then sorts the residuals: those it
//! saves (all for `everything`; the outputs of `dot_general` for `dots`; the values named
//! by `checkpoint_name` under a listed name), and the body's own known operands, which are
//! operands of the equation anyway, are read by the unknown side; the others are
//! recomputed there. So the known side is a `checkpoint` giving the known outputs and the
//! saved residuals, and the unknown side is a `checkpoint` whose body runs the part of the
//! known body those residuals need, then the unknown part. Keeping the recomputation inside
//! a `checkpoint` equation is what keeps it there: the enclosing split sees one equation
//! that reads unknown values, not known work it would move to the primal side and store.
//! For a linear map, that recomputation is primal work done each time the map (or its
//! transpose, which is a `checkpoint` of the transposed body) is applied.

use std::collections::HashSet;

use crate::ir::{flagged, Atom, Closed, Equation, Primitive, Program, RematPolicy, Result, Var};
use crate::passes::hoist::Rewriter;
use crate::passes::partial_eval::control::{program_unknowns, split_control};
use crate::passes::partial_eval::split_core;
use crate::trace::{trace_closed, Tensor};

/// Splits a checkpoint (or a `named_map`) with known and unknown operands; returns which
/// outputs are unknown. A `named_map` splits as a checkpoint that saves everything, each
/// side a map over the same axis: the residuals a member's linear part reads are the known
/// map's outputs, stacked per member.
pub(crate) fn split_checkpoint(
    rw: &mut Rewriter,
    e: &Equation,
    ins_uk: &[bool],
) -> Result<Vec<bool>> {
    let everything = RematPolicy::Everything;
    let (body, policy, members) = match &e.prim {
        Primitive::Checkpoint { body, policy } => (body, policy, None),
        Primitive::NamedMap {
            body, axis_size, ..
        } => (body, &everything, Some(*axis_size)),
        _ => {
            return Err(crate::ir::Error::internal(
                "split_checkpoint on another primitive",
            ))
        }
    };
    // the same primitive around another body
    let make = |body: Program| match &e.prim {
        Primitive::NamedMap {
            axis_name,
            axis_size,
            ..
        } => Primitive::NamedMap {
            body: Closed::new(body),
            axis_name: axis_name.clone(),
            axis_size: *axis_size,
        },
        _ => Primitive::Checkpoint {
            body: Closed::new(body),
            policy: policy.clone(),
        },
    };
    // a value of the body as the equation holds it (stacked per member in a map)
    let held = |a: &crate::ir::Aval| match members {
        Some(n) => {
            let mut shape = vec![n];
            shape.extend(&a.shape);
            crate::ir::Aval::new(shape, a.dtype)
        }
        None => a.clone(),
    };
    let out_uk = program_unknowns(body.program(), ins_uk)?;
    let b = split_control(body.program(), ins_uk)?;
    let core = split_core(&b, ins_uk, &out_uk)?;
    let known_ins: Vec<bool> = ins_uk.iter().map(|u| !u).collect();
    let n_known_out = out_uk.iter().filter(|u| !**u).count();
    // each residual: a known operand of the body (read from the equation's operands),
    // saved (an output of the known side), or recomputed
    let operand_of = |r: &Var| b.inputs.iter().position(|v| v == r);
    let saved = saved_values(&core.known, &core.residuals, &b.inputs, policy);

    // the known side: known operands to known outputs, then the saved residuals
    let mut known = core.known.clone();
    known.outputs.truncate(n_known_out);
    known.outputs.extend(saved.iter().map(|v| Atom::Var(*v)));
    let known = known.dce();
    let saved_vars: Vec<Var> = saved.iter().map(|r| rw.fresh(held(b.aval(*r)))).collect();
    let mut known_outs = flagged(&e.outs, &known_ins_out(&out_uk));
    known_outs.extend(&saved_vars);
    if !known_outs.is_empty() {
        rw.eqns.push(Equation {
            prim: make(known),
            inputs: flagged(&e.inputs, &known_ins),
            outs: known_outs,
            loc: e.loc,
        });
    }

    // the unknown side: (known operands, saved residuals, unknown operands) to the unknown
    // outputs, recomputing the other residuals from the known operands
    let known_avals: Vec<_> = flagged(&b.in_avals(), &known_ins);
    let unknown_avals: Vec<_> = flagged(&b.in_avals(), ins_uk);
    let mut avals = known_avals.clone();
    avals.extend(saved.iter().map(|r| b.aval(*r).clone()));
    avals.extend(unknown_avals.iter().cloned());
    let (nk, ns) = (known_avals.len(), saved.len());
    // the known part from the known operands and the saved values to every residual, to
    // recompute the unsaved ones (the saved values are its inputs, not recomputed)
    let mut cut_inputs = flagged(&b.inputs, &known_ins);
    cut_inputs.extend(&saved);
    let not_saved: Vec<bool> = core
        .known
        .eqns
        .iter()
        .map(|e| !e.outs.iter().any(|v| saved.contains(v)))
        .collect();
    let recompute = core.known.part(
        cut_inputs,
        &not_saved,
        core.residuals.iter().map(|v| Atom::Var(*v)).collect(),
    );
    let unknown_part = core.unknown.clone();
    let residuals = core.residuals.clone();
    let u_body = trace_closed("the linear part of a checkpoint", &avals, |args| {
        let (k, rest) = args.split_at(nk);
        let (s, u) = rest.split_at(ns);
        let needs_recompute = residuals
            .iter()
            .any(|r| operand_of(r).is_none() && !saved.contains(r));
        let recomputed = match needs_recompute {
            true => Some(recompute.call(&[k, s].concat())?),
            false => None,
        };
        let mut ins: Vec<Tensor> = Vec::with_capacity(residuals.len() + u.len());
        for (i, r) in residuals.iter().enumerate() {
            ins.push(match (operand_of(r), saved.iter().position(|v| v == r)) {
                (Some(j), _) => {
                    let pos = known_ins[..j].iter().filter(|w| **w).count();
                    k[pos].clone()
                }
                (None, Some(j)) => s[j].clone(),
                (None, None) => recomputed.as_ref().map(|rc| rc[i].clone()).ok_or_else(|| {
                    crate::ir::Error::internal("split_checkpoint: a residual to recompute")
                })?,
            });
        }
        ins.extend(u.iter().cloned());
        unknown_part.call(&ins)
    })?
    .dce();
    let mut ops = flagged(&e.inputs, &known_ins);
    ops.extend(saved_vars.iter().map(|v| Atom::Var(*v)));
    ops.extend(flagged(&e.inputs, ins_uk));
    rw.eqns.push(Equation {
        prim: make(u_body),
        inputs: ops,
        outs: flagged(&e.outs, &out_uk),
        loc: e.loc,
    });
    Ok(out_uk)
}

fn known_ins_out(out_uk: &[bool]) -> Vec<bool> {
    out_uk.iter().map(|u| !u).collect()
}

/// The values the linear side reads from the known side: residuals the policy lets it
/// store, and, on the way back from the other residuals to the operands, the storable values
/// their recomputation would start from (so a named value, or a matrix product, is read
/// rather than computed again, and what lies before it is not recomputed). A residual that
/// is an operand of the body is never among them (the linear side reads the operand).
fn saved_values(
    known: &Program,
    residuals: &[Var],
    operands: &[Var],
    policy: &RematPolicy,
) -> Vec<Var> {
    let storable = |e: &Equation| match (policy, &e.prim) {
        (RematPolicy::Everything, _) => true,
        (RematPolicy::Nothing, _) => false,
        (RematPolicy::Dots, Primitive::DotGeneral { .. }) => true,
        (RematPolicy::Names(names), Primitive::CheckpointName { name }) => names.contains(name),
        _ => false,
    };
    let mut needed: HashSet<Var> = residuals.iter().copied().collect();
    let mut saved: HashSet<Var> = HashSet::new();
    for e in known.eqns.iter().rev() {
        if !e.outs.iter().any(|v| needed.contains(v)) {
            continue;
        }
        // a single-output equation the policy stores is read, not recomputed
        if e.outs.len() == 1 && storable(e) {
            saved.insert(e.outs[0]);
            continue;
        }
        needed.extend(e.inputs.iter().filter_map(|a| match a {
            Atom::Var(v) => Some(*v),
            Atom::Lit(_) => None,
        }));
    }
    let mut out: Vec<Var> = saved
        .into_iter()
        .filter(|v| !operands.contains(v))
        .collect();
    out.sort();
    out
}
