//! Optimization of control flow: sub-programs optimized in place, invariants hoisted out of
//! loops, and the carries, outputs and operands nothing reads removed.
//!
//! Part of the optimizer (`optimize`). Transformations leave dead weight in loops: the jvp
//! of a scan whose primal ys nobody reads, the primal loop of a linearization that still
//! computes the original outputs next to its residuals, a transposed loop's cotangent for an
//! input that is not differentiated. A scan's output that nothing outside reads can go; a
//! carry can go only when, in addition, no live part of the body reads it (a fixpoint, since
//! removing one carry may free another). A `cond` output nobody reads leaves every branch;
//! an operand no branch reads leaves the equation. A while loop's carry goes when nothing
//! outside, not its cond and no kept carry's update reads it (the jvp loop of a function
//! whose primal output is unused keeps the primal carries the tangents need, and drops the
//! rest).

use std::collections::HashSet;

use crate::ir::dependence::grow_until_fixed;
use crate::ir::{flagged, Atom, Closed, Equation, Primitive, Program, ScanShape, Var};
use crate::passes::hoist::hoist_program;
use crate::passes::optimize::optimize_checked;

/// `p` with its loops' invariants hoisted and every sub-program optimized.
pub(crate) fn optimize_subprograms(p: &Program) -> Program {
    if !p.eqns.iter().any(|e| e.prim.is_control_flow()) {
        return p.clone();
    }
    let mut q = hoist_program(p).unwrap_or_else(|_| p.clone());
    for e in &mut q.eqns {
        if let Ok(Some(prim)) = e.prim.map_subprograms(|b| Ok(optimize_checked(b))) {
            e.prim = prim;
        }
    }
    q
}

/// Removes the unread outputs, carries and operands of every control-flow equation; returns
/// whether anything changed.
pub(crate) fn prune_control(p: &mut Program) -> bool {
    let mut used: HashSet<Var> = p.outputs.iter().filter_map(var).collect();
    for e in &p.eqns {
        used.extend(e.inputs.iter().filter_map(var));
    }
    let mut changed = false;
    for e in &mut p.eqns {
        let pruned = match &e.prim {
            Primitive::Scan { .. } => prune_scan(e, &used),
            Primitive::Cond { .. } => prune_cond(e, &used),
            Primitive::While { .. } => prune_while(e, &used),
            _ => None,
        };
        if let Some(new) = pruned {
            *e = new;
            changed = true;
        }
    }
    changed
}

fn var(a: &Atom) -> Option<Var> {
    match a {
        Atom::Var(v) => Some(*v),
        Atom::Lit(_) => None,
    }
}

/// Which inputs of `p` the outputs flagged in `live` read.
fn needed_inputs(p: &Program, live: &[bool]) -> Vec<bool> {
    let mut needed: HashSet<Var> = p
        .outputs
        .iter()
        .zip(live)
        .filter(|(_, l)| **l)
        .filter_map(|(a, _)| var(a))
        .collect();
    for e in p.eqns.iter().rev() {
        if e.outs.iter().any(|v| needed.contains(v)) {
            needed.extend(e.inputs.iter().filter_map(var));
        }
    }
    p.inputs.iter().map(|v| needed.contains(v)).collect()
}

/// `p` keeping the inputs and outputs flagged, dead code removed.
fn restrict(p: &Program, keep_in: &[bool], keep_out: &[bool]) -> Program {
    p.part(
        flagged(&p.inputs, keep_in),
        &vec![true; p.eqns.len()],
        flagged(&p.outputs, keep_out),
    )
}

fn prune_scan(e: &Equation, used: &HashSet<Var>) -> Option<Equation> {
    let (body, shape) = e.prim.as_scan()?;
    let (nc, ncar) = (shape.n_consts, shape.n_carry);
    let body = body.program();
    let mut live: Vec<bool> = e.outs.iter().map(|v| used.contains(v)).collect();
    // a carry the body reads to compute something live stays live
    let needed = grow_until_fixed(&mut live, (0, nc, ncar), |l| Ok(needed_inputs(body, l))).ok()?;
    let mut keep_in = needed;
    keep_in[nc..nc + ncar].copy_from_slice(&live[..ncar]);
    if keep_in.iter().all(|k| *k) && live.iter().all(|l| *l) {
        return None;
    }
    let new_body = restrict(body, &keep_in, &live);
    Some(Equation {
        prim: Primitive::scan(
            Closed::new(new_body),
            ScanShape {
                n_consts: keep_in[..nc].iter().filter(|k| **k).count(),
                n_carry: live[..ncar].iter().filter(|k| **k).count(),
                ..shape
            },
        ),
        inputs: flagged(&e.inputs, &keep_in),
        outs: flagged(&e.outs, &live),
        loc: e.loc,
    })
}

/// A while loop keeps the carries read outside, by its cond, or by the body to compute a
/// carry it keeps (a fixpoint), and the consts its cond and kept body read.
fn prune_while(e: &Equation, used: &HashSet<Var>) -> Option<Equation> {
    let Primitive::While {
        cond,
        body,
        n_cond_consts: ncc,
        n_body_consts: nbc,
        ..
    } = &e.prim
    else {
        return None;
    };
    let (ncc, nbc) = (*ncc, *nbc);
    let (c, b) = (cond.program(), body.program());
    let cond_needs = needed_inputs(c, &[true]);
    let mut live: Vec<bool> = e.outs.iter().map(|v| used.contains(v)).collect();
    for (l, n) in live.iter_mut().zip(&cond_needs[ncc..]) {
        *l |= *n;
    }
    let n_live = live.len();
    let needed = grow_until_fixed(&mut live, (0, nbc, n_live), |l| Ok(needed_inputs(b, l))).ok()?;
    let keep_cc = cond_needs[..ncc].to_vec();
    let keep_bc = needed[..nbc].to_vec();
    if keep_cc.iter().chain(&keep_bc).chain(&live).all(|k| *k) {
        return None;
    }
    let mut cond_in = keep_cc.clone();
    cond_in.extend_from_slice(&live);
    let mut body_in = keep_bc.clone();
    body_in.extend_from_slice(&live);
    let mut keep_ops = keep_cc;
    keep_ops.extend(keep_bc);
    keep_ops.extend_from_slice(&live);
    let n_cc = cond_in[..ncc].iter().filter(|k| **k).count();
    let n_bc = body_in[..nbc].iter().filter(|k| **k).count();
    Some(Equation {
        prim: e.prim.while_like(
            Closed::new(restrict(c, &cond_in, &[true])),
            Closed::new(restrict(b, &body_in, &live)),
            n_cc,
            n_bc,
        ),
        inputs: flagged(&e.inputs, &keep_ops),
        outs: flagged(&e.outs, &live),
        loc: e.loc,
    })
}

fn prune_cond(e: &Equation, used: &HashSet<Var>) -> Option<Equation> {
    let Primitive::Cond { branches } = &e.prim else {
        return None;
    };
    let live: Vec<bool> = e.outs.iter().map(|v| used.contains(v)).collect();
    let n_ops = e.inputs.len() - 1;
    let mut keep_ops = vec![false; n_ops];
    for b in branches {
        for (k, n) in keep_ops.iter_mut().zip(needed_inputs(b.program(), &live)) {
            *k |= n;
        }
    }
    if keep_ops.iter().all(|k| *k) && live.iter().all(|l| *l) {
        return None;
    }
    let mut keep_in = vec![true];
    keep_in.extend(&keep_ops);
    Some(Equation {
        prim: Primitive::Cond {
            branches: branches
                .iter()
                .map(|b| Closed::new(restrict(b.program(), &keep_ops, &live)))
                .collect(),
        },
        inputs: flagged(&e.inputs, &keep_in),
        outs: flagged(&e.outs, &live),
        loc: e.loc,
    })
}
