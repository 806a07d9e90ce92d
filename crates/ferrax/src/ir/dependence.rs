//! Which outputs of a program depend on which of its inputs, through control flow.
//!
//! In the IR layer because a rule's well-formedness needs it (a `custom_jvp` rule's primal
//! outputs must not read the tangents, `custom.rs`) as much as partial evaluation does, which
//! asks which values are *unknown* (depend on a tangent) to split a program
//! (`passes/partial_eval`). Dependence is per output: a loop's carry depends on an input when
//! its initial value does or the body makes it so (a fixpoint), a `cond`'s output when any
//! branch's does (or the index does); other primitives with sub-programs are taken whole.

use crate::ir::{Atom, Primitive, Program, Result};

fn flag(flags: &[bool], a: &Atom) -> bool {
    match a {
        Atom::Var(v) => flags[v.index()],
        Atom::Lit(_) => false,
    }
}

/// Which outputs of `p` depend on the inputs flagged in `flagged_in`.
pub(crate) fn dependent_outputs(p: &Program, flagged_in: &[bool]) -> Result<Vec<bool>> {
    let mut dep = vec![false; p.avals.len()];
    for (v, f) in p.inputs.iter().zip(flagged_in) {
        dep[v.index()] = *f;
    }
    for e in &p.eqns {
        let ins: Vec<bool> = e.inputs.iter().map(|a| flag(&dep, a)).collect();
        let outs = match e.prim.is_control_flow() {
            true => dependent_eqn_outputs(&e.prim, &ins)?,
            false => vec![ins.iter().any(|f| *f); e.outs.len()],
        };
        for (v, f) in e.outs.iter().zip(outs) {
            dep[v.index()] = f;
        }
    }
    Ok(p.outputs.iter().map(|a| flag(&dep, a)).collect())
}

/// Which outputs of a control-flow equation depend on the flagged operands.
pub(crate) fn dependent_eqn_outputs(prim: &Primitive, ins: &[bool]) -> Result<Vec<bool>> {
    match prim {
        Primitive::Cond { branches } => {
            if ins[0] {
                // a flagged index reaches every output
                let n = branches.first().map_or(0, |b| b.program().outputs.len());
                return Ok(vec![true; n]);
            }
            let mut union: Vec<bool> = vec![];
            for b in branches {
                let outs = dependent_outputs(b.program(), &ins[1..])?;
                union.resize(outs.len(), false);
                for (u, o) in union.iter_mut().zip(outs) {
                    *u |= o;
                }
            }
            Ok(union)
        }
        Primitive::Scan {
            body,
            n_consts,
            n_carry,
            ..
        } => {
            let (carry, outs) = scan_fixpoint(body.program(), *n_consts, *n_carry, ins)?;
            let mut result = carry;
            result.extend_from_slice(&outs[*n_carry..]);
            Ok(result)
        }
        Primitive::While {
            body,
            n_cond_consts,
            n_body_consts,
            ..
        } => while_carry_dependence(body.program(), *n_cond_consts, *n_body_consts, ins),
        Primitive::Checkpoint { body, .. } | Primitive::NamedMap { body, .. } => {
            dependent_outputs(body.program(), ins)
        }
        Primitive::WhileLinear { step, .. } => {
            Ok(vec![ins.iter().any(|f| *f); step.program().outputs.len()])
        }
        Primitive::CustomJvp { .. } | Primitive::CustomVjp { .. } | Primitive::CustomLin { .. } => {
            let n = prim.callee().map_or(0, |b| b.program().outputs.len());
            Ok(vec![ins.iter().any(|f| *f); n])
        }
        _ => Ok(vec![ins.iter().any(|f| *f)]),
    }
}

/// The fixpoint every loop rule needs (which carries have tangents, depend on a tangent, or
/// are live): runs `step` on `flags` until a round adds nothing, each round setting
/// `flags[at + i]` where `step`'s result has `found[from + i]`, for `i < n`. Flags only
/// grow, so it ends within `n + 1` rounds. Returns the last round's result.
pub(crate) fn grow_until_fixed(
    flags: &mut [bool],
    (at, from, n): (usize, usize, usize),
    mut step: impl FnMut(&[bool]) -> Result<Vec<bool>>,
) -> Result<Vec<bool>> {
    loop {
        let found = step(flags)?;
        let mut grew = false;
        for i in 0..n {
            if found[from + i] && !flags[at + i] {
                flags[at + i] = true;
                grew = true;
            }
        }
        if !grew {
            return Ok(found);
        }
    }
}

/// A scan's carries' flags at the fixpoint (a carry depends on the flagged operands when its
/// initial value does, or when the body makes it so), and the body's output flags there.
pub(crate) fn scan_fixpoint(
    body: &Program,
    nc: usize,
    ncar: usize,
    ins: &[bool],
) -> Result<(Vec<bool>, Vec<bool>)> {
    let mut in_flags = ins.to_vec();
    let outs = grow_until_fixed(&mut in_flags, (nc, 0, ncar), |f| dependent_outputs(body, f))?;
    Ok((in_flags[nc..nc + ncar].to_vec(), outs))
}

/// Which carries of a while loop depend on the flagged operands (cond consts, body consts,
/// carry): a fixpoint through the body, as for a scan.
pub(crate) fn while_carry_dependence(
    body: &Program,
    ncc: usize,
    nbc: usize,
    ins: &[bool],
) -> Result<Vec<bool>> {
    let mut flags = ins[ncc..].to_vec();
    let ncar = flags.len() - nbc;
    grow_until_fixed(&mut flags, (nbc, 0, ncar), |f| dependent_outputs(body, f))?;
    Ok(flags[nbc..].to_vec())
}
