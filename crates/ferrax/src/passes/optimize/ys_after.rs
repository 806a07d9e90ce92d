//! Loop restructuring, third rewrite: per-step outputs the carries do not need, computed
//! after the loop.
//!
//! Part of the optimizer's loop restructuring (`loops.rs`, whose module doc gives the other
//! two rewrites). Work in a scan's body that no carry depends on only makes stacked outputs
//! (ys). When it contains a product, it runs once after the loop, batched over the steps by
//! the vmap pass, on the stacked per-step values it reads (xs rows are read from the xs;
//! other values become ys of the loop, or are ys already). The backward loop of an RNN's
//! gradient computes the cotangent of each input row, `Uᵀ ct_t`, which the recurrence never
//! reads: it becomes one matrix product of the stacked cotangents after the loop. Rows are
//! independent, so the results are the loop's to rounding of the batched product's order.

use std::collections::HashMap;

use crate::ir::{flagged, Atom, Closed, Equation, Primitive, Var};
use crate::passes::hoist::Rewriter;
use crate::passes::optimize::loops::{parts, stacked, var, MAX_STACKED_BYTES};
use crate::passes::vmap::vmap_program;

/// The scan pushed to `rw`, with the ys work no carry needs moved after it (also pushed);
/// the scan alone when there is none worth moving.
pub(crate) fn ys_work_after(rw: &mut Rewriter, e: &Equation) {
    if !try_ys_work_after(rw, e) {
        rw.eqns.push(e.clone());
    }
}

fn try_ys_work_after(rw: &mut Rewriter, e: &Equation) -> bool {
    let Some(s) = parts(e) else { return false };
    let body = s.body;
    if s.length == 0 {
        return false;
    }
    // the equations the carries need, backwards from the carry outputs
    let mut needed = vec![false; body.avals.len()];
    for a in &body.outputs[..s.ncar] {
        if let Some(v) = var(a) {
            needed[v.index()] = true;
        }
    }
    let mut in_loop = vec![false; body.eqns.len()];
    for (k, eq) in body.eqns.iter().enumerate().rev() {
        if eq.outs.iter().any(|v| needed[v.index()]) {
            in_loop[k] = true;
            for v in eq.inputs.iter().filter_map(var) {
                needed[v.index()] = true;
            }
        }
    }
    let tail: Vec<bool> = in_loop.iter().map(|l| !l).collect();
    let moved = |eq: &Equation| !eq.prim.is_control_flow();
    let worth = body
        .eqns
        .iter()
        .zip(&tail)
        .any(|(eq, t)| *t && matches!(eq.prim, Primitive::DotGeneral { .. }));
    if !worth || body.eqns.iter().zip(&tail).any(|(eq, t)| *t && !moved(eq)) {
        return false;
    }
    let mut by_tail = vec![false; body.avals.len()];
    for (eq, t) in body.eqns.iter().zip(&tail) {
        if *t {
            for o in &eq.outs {
                by_tail[o.index()] = true;
            }
        }
    }
    // ys outputs made by the tail move after the loop; the others stay
    let ys = &body.outputs[s.ncar..];
    let moved_ys: Vec<bool> = ys
        .iter()
        .map(|a| var(a).is_some_and(|v| by_tail[v.index()]))
        .collect();
    // the per-step values the tail reads from the loop (not the consts: those stay shared)
    let is_const =
        |v: Var| body.inputs[..s.nc].contains(&v) || body.consts.iter().any(|(c, _)| *c == v);
    let mut frontier: Vec<Var> = vec![];
    for (eq, t) in body.eqns.iter().zip(&tail) {
        if !*t {
            continue;
        }
        for v in eq.inputs.iter().filter_map(var) {
            if !by_tail[v.index()] && !is_const(v) && !frontier.contains(&v) {
                frontier.push(v);
            }
        }
    }
    // where each frontier value's rows come from after the loop
    let xs_pos: HashMap<Var, usize> = body.inputs[s.nc + s.ncar..]
        .iter()
        .enumerate()
        .map(|(i, v)| (*v, i))
        .collect();
    let kept_ys: HashMap<Var, usize> = ys
        .iter()
        .zip(&moved_ys)
        .enumerate()
        .filter(|(_, (_, m))| !**m)
        .filter_map(|(k, (a, _))| var(a).map(|v| (v, k)))
        .collect();
    let new_ys: Vec<Var> = frontier
        .iter()
        .copied()
        .filter(|v| !xs_pos.contains_key(v) && !kept_ys.contains_key(v))
        .collect();
    let bytes: usize = new_ys
        .iter()
        .map(|v| stacked(body.aval(*v), s.length).bytes())
        .fold(0usize, usize::saturating_add);
    if bytes > MAX_STACKED_BYTES {
        return false;
    }
    let new_ys_vars: Vec<Var> = new_ys
        .iter()
        .map(|v| rw.fresh(stacked(body.aval(*v), s.length)))
        .collect();
    let stacked_of = |v: &Var| -> Atom {
        if let Some(&i) = xs_pos.get(v) {
            e.inputs[s.nc + s.ncar + i].clone()
        } else if let Some(&k) = kept_ys.get(v) {
            Atom::Var(e.outs[s.ncar + k])
        } else {
            let k = new_ys.iter().position(|w| w == v).unwrap_or(0);
            Atom::Var(new_ys_vars[k])
        }
    };
    let frontier_rows: Vec<Atom> = frontier.iter().map(stacked_of).collect();
    // the per-step program of the moved ys, batched over the steps
    let mut post_inputs = body.inputs[..s.nc].to_vec();
    post_inputs.extend(&frontier);
    let per_step = body.part(post_inputs, &tail, flagged(ys, &moved_ys));
    let mut axes = vec![None; s.nc];
    axes.extend(std::iter::repeat_n(Some(0), frontier.len()));
    let Ok(batched) = vmap_program(&per_step, &axes, s.length) else {
        return false;
    };
    if !Rewriter::outputs_are_defined(&batched) {
        return false;
    }
    // the loop without the tail, giving the new stacked values as extra ys
    let mut outputs = body.outputs[..s.ncar].to_vec();
    outputs.extend(flagged(
        ys,
        &moved_ys.iter().map(|m| !m).collect::<Vec<_>>(),
    ));
    outputs.extend(new_ys.iter().map(|v| Atom::Var(*v)));
    let new_body = body.part(body.inputs.clone(), &in_loop, outputs);
    let mut outs = e.outs[..s.ncar].to_vec();
    let ys_outs = &e.outs[s.ncar..];
    outs.extend(flagged(
        ys_outs,
        &moved_ys.iter().map(|m| !m).collect::<Vec<_>>(),
    ));
    outs.extend(&new_ys_vars);
    rw.eqns.push(Equation {
        prim: Primitive::scan(Closed::new(new_body), s.shape),
        inputs: e.inputs.clone(),
        outs,
        loc: e.loc,
    });
    let mut args = e.inputs[..s.nc].to_vec();
    args.extend(frontier_rows);
    rw.inline_into(&batched, &args, &flagged(ys_outs, &moved_ys));
    true
}
