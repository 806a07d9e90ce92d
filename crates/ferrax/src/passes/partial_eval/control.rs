//! Partial evaluation through control flow: a `scan` or `cond` that reads known and unknown
//! values becomes a known one and an unknown one.
//!
//! Part of partial evaluation (`partial_eval`): before a program is split, every control-flow
//! equation with both known and unknown operands is rewritten in place into two equations of
//! the same primitive, so that each equation is wholly known or wholly unknown and the split
//! itself (`split_core`) needs nothing more. Sub-programs are split with the same core.
//!
//! * **scan.** Which carries are unknown is a fixpoint (a carry is unknown when its initial
//!   value is, or when the body makes it so). Loop-invariant work (equations that read only
//!   consts) has been hoisted out of the loop first (`hoist`), so it is computed once and its
//!   results are consts. The body is then split: the *known scan* runs the known part
//!   and emits, per iteration, the residuals the unknown part reads, stacked along the scan
//!   axis; the *unknown scan* reads them as xs. Residuals that are the body's consts or xs
//!   are not stacked copies: the unknown scan reads the very same operands. Stacked
//!   residuals are therefore only values that change from one iteration to the next (the
//!   carries the linear body reads, and per-step coefficients), and a residual that is also
//!   one of the known ys is read from that output rather than stacked twice.
//! * **cond.** Every branch is split with the same unknown operands; the unknown outputs are
//!   the union over branches. Residuals that are operands are passed through once. The
//!   others travel in *slots* shared between branches by aval: a branch's residuals take the
//!   first free slot of their aval, so the known `cond` stores, per aval, only as many values
//!   as the branch that needs most of them, and a branch fills the slots it does not use with
//!   zeros. When branches need residuals of the same shapes (the common case: the same
//!   computation with different coefficients) only what the taken branch needs is stored;
//!   when their shapes differ the slots are the union of the branches' residuals, as in JAX.

use std::collections::HashMap;

pub(super) use crate::ir::dependence::dependent_outputs as program_unknowns;
use crate::ir::dependence::{dependent_eqn_outputs as unknown_outputs, scan_fixpoint};
use crate::ir::{
    flagged, Atom, Aval, Closed, Equation, Error, Primitive, Program, Result, Scalar, ScanShape,
    Var,
};
use crate::passes::hoist::Rewriter;
use crate::passes::partial_eval::remat::split_checkpoint;
use crate::passes::partial_eval::while_loop::split_while;
use crate::passes::partial_eval::{split_core, var_of};

/// `p` with every control-flow equation that reads both known and unknown values (given
/// which inputs are unknown) replaced by a known and an unknown equation.
pub(crate) fn split_control(p: &Program, unknown_in: &[bool]) -> Result<Program> {
    if !p.eqns.iter().any(|e| e.prim.is_control_flow()) {
        return Ok(p.clone());
    }
    let mut unknown = vec![false; p.avals.len()];
    for (v, u) in p.inputs.iter().zip(unknown_in) {
        unknown[v.index()] = *u;
    }
    let mut rw = Rewriter::new(p);
    for e in &p.eqns {
        let ins_uk: Vec<bool> = e
            .inputs
            .iter()
            .map(|a| var_of(a).is_some_and(|v| unknown[v.index()]))
            .collect();
        let any_uk = ins_uk.iter().any(|u| *u);
        if !e.prim.is_control_flow() || !any_uk || ins_uk.iter().all(|u| *u) {
            let outs_uk = match e.prim.is_control_flow() && any_uk {
                true => unknown_outputs(&e.prim, &ins_uk)?,
                false => vec![any_uk; e.outs.len()],
            };
            mark(&mut unknown, &e.outs, &outs_uk);
            rw.eqns.push(e.clone());
            continue;
        }
        let outs_uk = match &e.prim {
            Primitive::Scan { .. } => split_scan(&mut rw, e, &ins_uk)?,
            Primitive::Cond { .. } => split_cond(&mut rw, e, &ins_uk)?,
            Primitive::While { .. } => split_while(&mut rw, e, &ins_uk)?,
            Primitive::Checkpoint { .. } | Primitive::NamedMap { .. } => {
                split_checkpoint(&mut rw, e, &ins_uk)?
            }
            Primitive::WhileLinear { .. } => {
                linear_in_lin_operands(e, &ins_uk)?;
                rw.eqns.push(e.clone());
                vec![true; e.outs.len()]
            }
            // a custom rule is not split: partial evaluation is not differentiation, and the
            // jvp pass never gives one an unknown operand (it inlines the rules), so this is
            // a program built by hand; the equation stays whole and unknown
            Primitive::CustomJvp { .. }
            | Primitive::CustomVjp { .. }
            | Primitive::CustomLin { .. } => {
                rw.eqns.push(e.clone());
                vec![true; e.outs.len()]
            }
            other => {
                return Err(Error::internal(format!(
                    "`{}` is not control flow but reached its partial evaluation",
                    other.name()
                )))
            }
        };
        unknown.resize(rw.avals.len(), false);
        mark(&mut unknown, &e.outs, &outs_uk);
    }
    Ok(rw.finish(p))
}

/// A `while_linear` whose unknown operands are its linear ones is one unknown equation (it
/// is linear in them, and reads the known ones as residuals). One whose residuals are
/// unknown is the linearization of a linearized loop, second-order reverse mode, which is
/// not built: forward over reverse (`hvp`, `hessian`) does not need it.
fn linear_in_lin_operands(e: &Equation, ins_uk: &[bool]) -> Result<()> {
    let Primitive::WhileLinear { body, n_consts, .. } = &e.prim else {
        return Err(Error::internal(
            "linear_in_lin_operands on another primitive",
        ));
    };
    let n_res = n_consts + 1 + body.program().outputs.len();
    match ins_uk[..n_res.min(ins_uk.len())].iter().any(|u| *u) {
        false => Ok(()),
        true => Err(Error::Input {
            op: "while_linear".into(),
            msg: "linearizing the reverse mode of a while loop with respect to its primal \
                  values (reverse over reverse) is not built; forward over reverse (hvp, \
                  hessian, jvp of grad) works"
                .into(),
            loc: e.loc,
        }),
    }
}

fn mark(unknown: &mut [bool], outs: &[Var], flags: &[bool]) {
    for (v, u) in outs.iter().zip(flags) {
        unknown[v.index()] = *u;
    }
}

/// Splits a scan with known and unknown operands (its invariants already hoisted); returns which of its outputs are unknown.
fn split_scan(rw: &mut Rewriter, e: &Equation, ins_uk: &[bool]) -> Result<Vec<bool>> {
    let Some((body, shape)) = e.prim.as_scan() else {
        return Err(Error::internal("split_scan on another primitive"));
    };
    let (nc, ncar) = (shape.n_consts, shape.n_carry);
    let mut ins_uk = ins_uk.to_vec();
    let body = body.program();
    let (carry_uk, outs_uk) = scan_fixpoint(body, nc, ncar, &ins_uk)?;
    ins_uk[nc..nc + ncar].copy_from_slice(&carry_uk);
    let mut force = carry_uk.clone();
    force.extend_from_slice(&outs_uk[ncar..]);
    let body = split_control(body, &ins_uk)?;
    let core = split_core(&body, &ins_uk, &force)?;
    let n = e.inputs.len();
    let group = |i: usize| match i {
        i if i < nc => 0,
        i if i < nc + ncar => 1,
        _ => 2,
    };
    // where each residual comes from: a known const or xs of the body, or stacked
    let position: HashMap<Var, usize> = body
        .inputs
        .iter()
        .enumerate()
        .map(|(i, v)| (*v, i))
        .collect();
    let mut fwd_consts = vec![];
    let mut fwd_xs = vec![];
    let mut stacked = vec![];
    for &r in &core.residuals {
        match position.get(&r) {
            Some(&i) if group(i) == 0 => fwd_consts.push((r, i)),
            Some(&i) if group(i) == 2 => fwd_xs.push((r, i)),
            _ => stacked.push(r),
        }
    }

    // A stacked residual that is one of the known ys is that output, not a second copy.
    let ny = e.outs.len() - ncar;
    let mut as_ys: HashMap<Var, Var> = HashMap::new();
    for j in 0..ny {
        if let Atom::Var(y) = &body.outputs[ncar + j] {
            if !outs_uk[ncar + j] && stacked.contains(y) {
                as_ys.entry(*y).or_insert(e.outs[ncar + j]);
            }
        }
    }
    let copies: Vec<Var> = stacked
        .iter()
        .filter(|r| !as_ys.contains_key(r))
        .copied()
        .collect();

    // The known scan: known operands to the known outputs, then the stacked residuals.
    let n_known_out = core.out_unknown.iter().filter(|u| !**u).count();
    let mut known_body = core.known;
    known_body.outputs.truncate(n_known_out);
    known_body
        .outputs
        .extend(copies.iter().map(|v| Atom::Var(*v)));
    let known_ops: Vec<Atom> = (0..n)
        .filter(|&i| !ins_uk[i])
        .map(|i| e.inputs[i].clone())
        .collect();
    let n_known_consts = (0..nc).filter(|&i| !ins_uk[i]).count();
    let n_known_carry = carry_uk.iter().filter(|u| !**u).count();
    let mut known_outs: Vec<Var> = e
        .outs
        .iter()
        .zip(carry_uk.iter().chain(&outs_uk[ncar..]))
        .filter(|(_, u)| !**u)
        .map(|(v, _)| *v)
        .collect();
    // each residual, one per iteration: a loop whose residuals cannot be stacked (a length
    // of 2^62) cannot be split, which is an error rather than an ill-typed program
    let mut copy_vars: Vec<Var> = Vec::with_capacity(copies.len());
    for r in &copies {
        let a = body.aval(*r);
        let mut dims = vec![shape.length];
        dims.extend_from_slice(&a.shape);
        let stacked_aval = Aval::new(dims, a.dtype);
        if let Err(err) = stacked_aval.validate("scan") {
            let err = Error::ResourceExhausted {
                op: "scan".into(),
                msg: format!(
                    "the residuals of a loop of {} iterations, stacked for its linear part: {}",
                    shape.length,
                    match &err {
                        Error::ResourceExhausted { msg, .. } => msg.clone(),
                        other => other.to_string(),
                    }
                ),
                loc: e.loc,
            };
            return Err(err);
        }
        copy_vars.push(rw.fresh(stacked_aval));
    }
    let stacked_vars: Vec<Var> = stacked
        .iter()
        .map(|r| match as_ys.get(r) {
            Some(y) => *y,
            None => copy_vars[copies.iter().position(|c| c == r).unwrap_or(0)],
        })
        .collect();
    known_outs.extend(&copy_vars);
    if !known_outs.is_empty() {
        rw.eqns.push(Equation {
            prim: Primitive::scan(
                Closed::new(known_body),
                ScanShape {
                    n_consts: n_known_consts,
                    n_carry: n_known_carry,
                    ..shape
                },
            ),
            inputs: known_ops,
            outs: known_outs,
            loc: e.loc,
        });
    }

    // The unknown scan: consts (forwarded known consts, unknown consts), carry (unknown),
    // xs (forwarded known xs, stacked residuals, unknown xs).
    let mut u_body = core.unknown;
    let n_res = core.residuals.len();
    let unknown_ins = u_body.inputs.split_off(n_res);
    let mut inputs = vec![];
    let mut ops = vec![];
    for &(r, i) in &fwd_consts {
        inputs.push(r);
        ops.push(e.inputs[i].clone());
    }
    // the unknown operands of a group (consts, carry or xs), in order, with their inputs
    let mut uk = unknown_ins.iter();
    let mut take_unknown =
        |range: std::ops::Range<usize>, inputs: &mut Vec<Var>, ops: &mut Vec<Atom>| {
            for (a, _) in e.inputs[range.clone()]
                .iter()
                .zip(&ins_uk[range])
                .filter(|(_, u)| **u)
            {
                inputs.extend(uk.next());
                ops.push(a.clone());
            }
        };
    take_unknown(0..nc, &mut inputs, &mut ops);
    let n_u_consts = inputs.len();
    take_unknown(nc..nc + ncar, &mut inputs, &mut ops);
    let n_u_carry = inputs.len() - n_u_consts;
    for &(r, i) in &fwd_xs {
        inputs.push(r);
        ops.push(e.inputs[i].clone());
    }
    for (r, sv) in stacked.iter().zip(&stacked_vars) {
        inputs.push(*r);
        ops.push(Atom::Var(*sv));
    }
    take_unknown(nc + ncar..n, &mut inputs, &mut ops);
    u_body.inputs = inputs;
    let mut flags = carry_uk.clone();
    flags.extend_from_slice(&outs_uk[ncar..]);
    let u_outs = flagged(&e.outs, &flags);
    if !u_outs.is_empty() {
        rw.eqns.push(Equation {
            prim: Primitive::scan(
                Closed::new(u_body),
                ScanShape {
                    n_consts: n_u_consts,
                    n_carry: n_u_carry,
                    ..shape
                },
            ),
            inputs: ops,
            outs: u_outs,
            loc: e.loc,
        });
    }
    Ok(flags)
}

/// A zero of an aval as an atom of `p`: a literal for a scalar, else a broadcast equation
/// appended to `p`.
fn zero_in(p: &mut Program, a: &Aval) -> Atom {
    let z = Atom::Lit(Scalar::F64(0.0).cast(a.dtype));
    if a.ndim() == 0 {
        return z;
    }
    let v = Var(p.avals.len() as u32);
    p.avals.push(a.clone());
    p.eqns.push(Equation {
        prim: Primitive::BroadcastInDim {
            shape: a.shape.clone(),
            broadcast_dimensions: vec![],
        },
        inputs: vec![z],
        outs: vec![v],
        loc: None,
    });
    Atom::Var(v)
}

/// A new input variable of `p` (not yet listed among its inputs).
fn new_var(p: &mut Program, a: &Aval) -> Var {
    let v = Var(p.avals.len() as u32);
    p.avals.push(a.clone());
    v
}

/// Splits a cond with a known index and known and unknown operands; returns which of its
/// outputs are unknown.
fn split_cond(rw: &mut Rewriter, e: &Equation, ins_uk: &[bool]) -> Result<Vec<bool>> {
    let Primitive::Cond { branches } = &e.prim else {
        return Err(Error::internal("split_cond on another primitive"));
    };
    let ops_uk = &ins_uk[1..];
    let out_uk = unknown_outputs(&e.prim, ins_uk)?;
    let n_ops = ops_uk.len();
    // split every branch; note which residuals are operands and which need a slot
    let mut cores = vec![];
    let mut slots: Vec<Aval> = vec![];
    let mut forwarded = vec![false; n_ops];
    // per branch: (residual var, Ok(operand index) | Err(slot index))
    let mut placements: Vec<Vec<(Var, std::result::Result<usize, usize>)>> = vec![];
    for b in branches {
        let p = split_control(b.program(), ops_uk)?;
        let core = split_core(&p, ops_uk, &out_uk)?;
        let mut used = vec![false; slots.len()];
        let mut place = vec![];
        for &r in &core.residuals {
            if let Some(i) = p.inputs.iter().position(|v| *v == r) {
                forwarded[i] = true;
                place.push((r, Ok(i)));
                continue;
            }
            let a = p.aval(r).clone();
            let slot = match (0..slots.len()).find(|&s| !used[s] && slots[s] == a) {
                Some(s) => s,
                None => {
                    slots.push(a);
                    used.push(false);
                    slots.len() - 1
                }
            };
            used[slot] = true;
            place.push((r, Err(slot)));
        }
        placements.push(place);
        cores.push(core);
    }
    let fwd: Vec<usize> = (0..n_ops).filter(|&i| forwarded[i]).collect();
    let n_known_out = out_uk.iter().filter(|u| !**u).count();

    let mut known_branches = vec![];
    let mut unknown_branches = vec![];
    for (core, place) in cores.into_iter().zip(&placements) {
        // known: known operands to known outputs, then every slot (zeros where unused)
        let mut k = core.known;
        k.outputs.truncate(n_known_out);
        let mut slot_atoms: Vec<Option<Atom>> = vec![None; slots.len()];
        for (r, at) in place {
            if let Err(s) = at {
                slot_atoms[*s] = Some(Atom::Var(*r));
            }
        }
        for (s, a) in slot_atoms.into_iter().enumerate() {
            let atom = match a {
                Some(a) => a,
                None => zero_in(&mut k, &slots[s]),
            };
            k.outputs.push(atom);
        }
        known_branches.push(Closed::new(k));
        // unknown: slots, forwarded operands, unknown operands (unused ones fresh inputs)
        let mut u = core.unknown;
        let n_res = place.len();
        let unknown_ins = u.inputs.split_off(n_res);
        let mut inputs = vec![];
        for (s, a) in slots.iter().enumerate() {
            let v = place.iter().find(|(_, at)| *at == Err(s)).map(|(r, _)| *r);
            inputs.push(v.unwrap_or_else(|| new_var(&mut u, a)));
        }
        for &i in &fwd {
            let v = place.iter().find(|(_, at)| *at == Ok(i)).map(|(r, _)| *r);
            let a = e_operand_aval(rw, e, i);
            inputs.push(v.unwrap_or_else(|| new_var(&mut u, &a)));
        }
        inputs.extend(unknown_ins);
        u.inputs = inputs;
        unknown_branches.push(Closed::new(u));
    }

    let slot_vars: Vec<Var> = slots.iter().map(|a| rw.fresh(a.clone())).collect();
    let mut known_ops = vec![e.inputs[0].clone()];
    known_ops.extend(
        (0..n_ops)
            .filter(|&i| !ops_uk[i])
            .map(|i| e.inputs[1 + i].clone()),
    );
    let mut known_outs: Vec<Var> = e
        .outs
        .iter()
        .zip(&out_uk)
        .filter(|(_, u)| !**u)
        .map(|(v, _)| *v)
        .collect();
    known_outs.extend(&slot_vars);
    if !known_outs.is_empty() {
        rw.eqns.push(Equation {
            prim: Primitive::Cond {
                branches: known_branches,
            },
            inputs: known_ops,
            outs: known_outs,
            loc: e.loc,
        });
    }
    let mut u_ops = vec![e.inputs[0].clone()];
    u_ops.extend(slot_vars.iter().map(|v| Atom::Var(*v)));
    u_ops.extend(fwd.iter().map(|&i| e.inputs[1 + i].clone()));
    u_ops.extend(
        (0..n_ops)
            .filter(|&i| ops_uk[i])
            .map(|i| e.inputs[1 + i].clone()),
    );
    let u_outs = flagged(&e.outs, &out_uk);
    if !u_outs.is_empty() {
        rw.eqns.push(Equation {
            prim: Primitive::Cond {
                branches: unknown_branches,
            },
            inputs: u_ops,
            outs: u_outs,
            loc: e.loc,
        });
    }
    Ok(out_uk)
}

fn e_operand_aval(rw: &Rewriter, e: &Equation, i: usize) -> Aval {
    rw.atom_aval(&e.inputs[1 + i])
}
