//! Partial evaluation: splitting a jvp program into primal work and a linear program.
//!
//! Sits between the jvp pass and the linear map (`api::linear_map`). Given a jvp program
//! (inputs: primals then tangents; outputs: primal outputs then tangent outputs), every
//! variable is *known* (computable from primals alone) or *unknown* (depends on a tangent).
//!
//! * The **primal program** holds the known equations the primal outputs and the residuals
//!   need: all nonlinear work happens here, once.
//! * The **linear program** holds the unknown equations: tangents in, tangents out, with the
//!   known values it reads (**residuals**) as extra inputs in front of the tangents.
//!
//! Residuals are not duplicated: a residual that is a primal input or a primal output is
//! *forwarded* (the linear map keeps a reference to that value) rather than computed again
//! or copied; only the others become extra outputs of the primal program. Constants stay
//! constants. Equations that read no variables at all (a broadcast zero, an `iota`) are
//! recomputed where they are needed instead of being stored. Dead residuals never appear,
//! because the linear program is built backwards from the tangent outputs.

pub(crate) mod control;
pub(crate) mod remat;
pub(crate) mod while_loop;

use std::collections::HashSet;

use crate::ir::{flagged, Atom, Error, Program, Result, Var};
use crate::passes::hoist::hoist_program;
use crate::passes::partial_eval::control::split_control;

/// Where a residual's value comes from when the primal program has run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResidualSource {
    /// The primal input at this position (forwarded, not copied).
    Input(usize),
    /// The primal program's output at this position (forwarded when it is one of the
    /// function's own outputs, otherwise an extra output computed for the linear map).
    Output(usize),
}

/// A jvp program split in two.
#[derive(Clone, Debug)]
pub struct Split {
    /// Primal inputs to primal outputs, followed by the computed residuals.
    pub primal: Program,
    /// Residuals then tangents, to tangent outputs.
    pub linear: Program,
    /// One entry per leading input of `linear`.
    pub residuals: Vec<ResidualSource>,
    /// How many of `primal`'s outputs are the function's outputs (the rest are residuals).
    pub n_outputs: usize,
}

/// Splits a jvp program with `n_primal_in` primal inputs and `n_out` primal outputs (the
/// rest of its inputs and outputs are tangents). Counts beyond the program's inputs or
/// outputs, or a program that does not type-check, are errors.
pub fn partial_eval(j: &Program, n_primal_in: usize, n_out: usize) -> Result<Split> {
    j.check()?;
    if n_primal_in > j.inputs.len() || n_out > j.outputs.len() {
        return Err(Error::input(
            "partial_eval",
            format!(
                "{n_primal_in} primal input(s) and {n_out} primal output(s) asked of a program \
                 with {} input(s) and {} output(s)",
                j.inputs.len(),
                j.outputs.len()
            ),
        ));
    }
    let unknown_in: Vec<bool> = (0..j.inputs.len()).map(|i| i >= n_primal_in).collect();
    let force: Vec<bool> = (0..j.outputs.len()).map(|i| i >= n_out).collect();
    // loop invariants leave their loops, then control flow with known and unknown operands
    // is split in two
    let j = split_control(&hoist_program(j)?, &unknown_in)?;
    let core = split_core(&j, &unknown_in, &force)?;
    if let Some(i) = core.out_unknown[..n_out].iter().position(|u| *u) {
        return Err(Error::input(
            "partial_eval",
            format!("primal output {i} depends on a tangent input"),
        ));
    }

    // A residual that is a primal input or one of the function's outputs is forwarded; the
    // others become extra outputs of the primal program.
    let primal_inputs = &j.inputs[..n_primal_in];
    let out_atoms = &j.outputs[..n_out];
    let mut residuals = vec![];
    let mut primal_outputs: Vec<Atom> = out_atoms.to_vec();
    for &r in &core.residuals {
        if let Some(i) = primal_inputs.iter().position(|v| *v == r) {
            residuals.push(ResidualSource::Input(i));
        } else if let Some(k) = out_atoms.iter().position(|a| *a == Atom::Var(r)) {
            residuals.push(ResidualSource::Output(k));
        } else {
            residuals.push(ResidualSource::Output(primal_outputs.len()));
            primal_outputs.push(Atom::Var(r));
        }
    }
    let mut primal = core.known;
    primal.outputs = primal_outputs;
    Ok(Split {
        primal,
        linear: core.unknown,
        residuals,
        n_outputs: n_out,
    })
}

/// A program split by which values are known.
pub(crate) struct Core {
    /// The known inputs to the known outputs, then the residuals.
    pub known: Program,
    /// The residuals, then the unknown inputs, to the unknown outputs.
    pub unknown: Program,
    /// The known values the unknown part reads (variables of the split program).
    pub residuals: Vec<Var>,
    /// Which outputs the unknown part gives.
    pub out_unknown: Vec<bool>,
}

/// The split of a program whose control-flow equations are all known or all unknown
/// (`split_control` makes them so): inputs flagged in `unknown_in` are unknown, and so is
/// everything that reads an unknown value. Outputs flagged in `force` are given by the
/// unknown part even when they are known.
pub(crate) fn split_core(p: &Program, unknown_in: &[bool], force: &[bool]) -> Result<Core> {
    let nv = p.avals.len();
    // unknown: depends on an unknown input. free: reads no input or constant at all.
    let mut unknown = vec![false; nv];
    let mut free = vec![false; nv];
    for (v, u) in p.inputs.iter().zip(unknown_in) {
        unknown[v.index()] = *u;
    }
    for e in &p.eqns {
        let vars: Vec<Var> = e.inputs.iter().filter_map(var_of).collect();
        let uk = vars.iter().any(|v| unknown[v.index()]);
        let fr = vars.iter().all(|v| free[v.index()]);
        for out in &e.outs {
            unknown[out.index()] = uk;
            free[out.index()] = fr;
        }
    }
    let out_unknown: Vec<bool> = p
        .outputs
        .iter()
        .zip(force)
        .map(|(a, f)| *f || var_of(a).is_some_and(|v| unknown[v.index()]))
        .collect();
    let consts: HashSet<Var> = p.consts.iter().map(|(v, _)| *v).collect();

    // The unknown part, backwards from its outputs: unknown equations, and free ones
    // (recomputed where needed rather than stored).
    let unknown_outputs = flagged(&p.outputs, &out_unknown);
    let mut needed: HashSet<Var> = unknown_outputs.iter().filter_map(var_of).collect();
    let mut u_eqns = vec![];
    for e in p.eqns.iter().rev() {
        if !e.outs.iter().any(|v| needed.contains(v)) {
            continue;
        }
        let out = e.outs[0].index();
        if unknown[out] || free[out] {
            u_eqns.push(e.clone());
            needed.extend(e.inputs.iter().filter_map(var_of));
        }
    }
    u_eqns.reverse();
    let u_defined: HashSet<Var> = u_eqns.iter().flat_map(|e| e.outs.iter().copied()).collect();
    let unknown_inputs = flagged(&p.inputs, unknown_in);
    let mut needed_sorted: Vec<Var> = needed.into_iter().collect();
    needed_sorted.sort();
    let mut residuals = vec![];
    let mut u_consts = vec![];
    for v in needed_sorted {
        if u_defined.contains(&v) || unknown_inputs.contains(&v) {
            continue;
        }
        if consts.contains(&v) {
            if let Some(c) = p.consts.iter().find(|(c, _)| *c == v) {
                u_consts.push(c.clone());
            }
        } else {
            residuals.push(v);
        }
    }

    // The known part, backwards from the known outputs and the residuals.
    let mut known_outputs: Vec<Atom> = p
        .outputs
        .iter()
        .zip(&out_unknown)
        .filter(|(_, u)| !**u)
        .map(|(a, _)| a.clone())
        .collect();
    known_outputs.extend(residuals.iter().map(|v| Atom::Var(*v)));
    let mut needed: HashSet<Var> = known_outputs.iter().filter_map(var_of).collect();
    let mut k_eqns = vec![];
    for e in p.eqns.iter().rev() {
        if e.outs.iter().any(|v| needed.contains(v)) && !unknown[e.outs[0].index()] {
            k_eqns.push(e.clone());
            needed.extend(e.inputs.iter().filter_map(var_of));
        }
    }
    k_eqns.reverse();
    let known = Program {
        avals: p.avals.clone(),
        consts: p
            .consts
            .iter()
            .filter(|(v, _)| needed.contains(v))
            .cloned()
            .collect(),
        inputs: p
            .inputs
            .iter()
            .zip(unknown_in)
            .filter(|(_, u)| !**u)
            .map(|(v, _)| *v)
            .collect(),
        eqns: k_eqns,
        outputs: known_outputs,
    };
    let mut u_inputs = residuals.clone();
    u_inputs.extend(unknown_inputs);
    let unknown = Program {
        avals: p.avals.clone(),
        consts: u_consts,
        inputs: u_inputs,
        eqns: u_eqns,
        outputs: unknown_outputs,
    };
    Ok(Core {
        known,
        unknown,
        residuals,
        out_unknown,
    })
}

pub(crate) fn var_of(a: &Atom) -> Option<Var> {
    match a {
        Atom::Var(v) => Some(*v),
        Atom::Lit(_) => None,
    }
}
