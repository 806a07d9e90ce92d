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

use std::collections::HashSet;

use crate::ir::{Atom, Error, Program, Result, Var};

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
    let nv = j.avals.len();
    // unknown: depends on a tangent. free: reads no input or constant at all.
    let mut unknown = vec![false; nv];
    let mut free = vec![false; nv];
    for v in &j.inputs[n_primal_in..] {
        unknown[v.index()] = true;
    }
    let var_of = |a: &Atom| match a {
        Atom::Var(v) => Some(*v),
        Atom::Lit(_) => None,
    };
    for e in &j.eqns {
        let vars: Vec<Var> = e.inputs.iter().filter_map(var_of).collect();
        unknown[e.out().index()] = vars.iter().any(|v| unknown[v.index()]);
        free[e.out().index()] = vars.iter().all(|v| free[v.index()]);
    }
    let consts: HashSet<Var> = j.consts.iter().map(|(v, _)| *v).collect();

    // The linear program, backwards from the tangent outputs.
    let mut needed_lin: HashSet<Var> = j.outputs[n_out..].iter().filter_map(var_of).collect();
    let mut lin_eqns = vec![];
    let mut residual_vars: Vec<Var> = vec![];
    let mut lin_consts = vec![];
    for e in j.eqns.iter().rev() {
        if !needed_lin.contains(&e.out()) {
            continue;
        }
        if unknown[e.out().index()] || free[e.out().index()] {
            lin_eqns.push(e.clone());
            for v in e.inputs.iter().filter_map(var_of) {
                needed_lin.insert(v);
            }
        }
    }
    lin_eqns.reverse();
    let lin_defined: HashSet<Var> = lin_eqns.iter().map(|e| e.out()).collect();
    let tangent_inputs: HashSet<Var> = j.inputs[n_primal_in..].iter().copied().collect();
    let mut needed_sorted: Vec<Var> = needed_lin.iter().copied().collect();
    needed_sorted.sort();
    for v in needed_sorted {
        if lin_defined.contains(&v) || tangent_inputs.contains(&v) {
            continue;
        }
        if consts.contains(&v) {
            let value = j
                .consts
                .iter()
                .find(|(c, _)| *c == v)
                .expect("a constant")
                .1
                .clone();
            lin_consts.push((v, value));
        } else {
            residual_vars.push(v);
        }
    }

    // The primal program, backwards from the primal outputs and the residuals.
    let primal_inputs = &j.inputs[..n_primal_in];
    let out_atoms = &j.outputs[..n_out];
    let mut residuals = vec![];
    let mut extra_outputs = vec![];
    for &r in &residual_vars {
        if let Some(i) = primal_inputs.iter().position(|v| *v == r) {
            residuals.push(ResidualSource::Input(i));
        } else if let Some(k) = out_atoms.iter().position(|a| *a == Atom::Var(r)) {
            residuals.push(ResidualSource::Output(k));
        } else {
            residuals.push(ResidualSource::Output(n_out + extra_outputs.len()));
            extra_outputs.push(Atom::Var(r));
        }
    }
    let mut primal_outputs: Vec<Atom> = out_atoms.to_vec();
    primal_outputs.extend(extra_outputs);
    let mut needed_p: HashSet<Var> = primal_outputs.iter().filter_map(var_of).collect();
    let mut p_eqns = vec![];
    for e in j.eqns.iter().rev() {
        if needed_p.contains(&e.out()) && !unknown[e.out().index()] {
            p_eqns.push(e.clone());
            for v in e.inputs.iter().filter_map(var_of) {
                needed_p.insert(v);
            }
        }
    }
    p_eqns.reverse();
    let p_consts = j
        .consts
        .iter()
        .filter(|(v, _)| needed_p.contains(v))
        .cloned()
        .collect();

    let primal = Program {
        avals: j.avals.clone(),
        consts: p_consts,
        inputs: primal_inputs.to_vec(),
        eqns: p_eqns,
        outputs: primal_outputs,
    };
    let mut lin_inputs = residual_vars.clone();
    lin_inputs.extend_from_slice(&j.inputs[n_primal_in..]);
    let linear = Program {
        avals: j.avals.clone(),
        consts: lin_consts,
        inputs: lin_inputs,
        eqns: lin_eqns,
        outputs: j.outputs[n_out..].to_vec(),
    };
    Ok(Split {
        primal,
        linear,
        residuals,
        n_outputs: n_out,
    })
}
