//! Loop-invariant code motion: work in a scan's body that reads only its consts runs once,
//! before the loop.
//!
//! Used by partial evaluation (`partial_eval`), so that a value the linear loop needs and
//! that does not change between iterations is computed once and stored once (a const of
//! both loops) instead of once per iteration and stacked, and by the optimizer (`optimize`)
//! for every compiled loop. The hoisted equations are copied into the enclosing program with
//! fresh variables ([`Rewriter::inline`]); the body takes their results as extra consts.
//! Bodies and branches are processed first, so invariants leave nested loops level by level.

use std::collections::HashMap;

use crate::ir::{Array, Atom, Aval, Closed, Equation, Primitive, Program, Result, ScanShape, Var};

/// A program being rebuilt: its variable table grows as equations with fresh variables are
/// appended.
pub(crate) struct Rewriter {
    pub avals: Vec<Aval>,
    pub consts: Vec<(Var, Array)>,
    pub eqns: Vec<Equation>,
}

impl Rewriter {
    /// A rewriter over `p`'s variables and constants, with no equations yet.
    pub fn new(p: &Program) -> Rewriter {
        Rewriter {
            avals: p.avals.clone(),
            consts: p.consts.clone(),
            eqns: vec![],
        }
    }

    pub fn fresh(&mut self, a: Aval) -> Var {
        self.avals.push(a);
        Var(self.avals.len() as u32 - 1)
    }

    pub fn atom_aval(&self, a: &Atom) -> Aval {
        match a {
            Atom::Var(v) => self.avals[v.index()].clone(),
            Atom::Lit(s) => Aval::scalar(s.dtype()),
        }
    }

    /// The rebuilt program, with `p`'s inputs and outputs.
    pub fn finish(self, p: &Program) -> Program {
        Program {
            avals: self.avals,
            consts: self.consts,
            inputs: p.inputs.clone(),
            eqns: self.eqns,
            outputs: p.outputs.clone(),
        }
    }

    /// Appends `h`'s equations with its inputs bound to `args` and fresh variables for the
    /// rest (its constants become constants here); returns its outputs as atoms here.
    pub fn inline(&mut self, h: &Program, args: &[Atom]) -> Vec<Atom> {
        self.inline_with(h, args, &HashMap::new())
    }

    /// Whether `h`'s outputs are distinct variables its equations define: what
    /// [`Rewriter::inline_into`] needs.
    pub fn outputs_are_defined(h: &Program) -> bool {
        let defined: Vec<Var> = h.eqns.iter().flat_map(|e| e.outs.iter().copied()).collect();
        let outs: Vec<Option<Var>> = h
            .outputs
            .iter()
            .map(|a| match a {
                Atom::Var(v) if defined.contains(v) => Some(*v),
                _ => None,
            })
            .collect();
        outs.iter()
            .enumerate()
            .all(|(i, o)| o.is_some_and(|v| !outs[..i].contains(&Some(v))))
    }

    /// [`Rewriter::inline`] writing `h`'s outputs to the existing variables `outs` (when
    /// [`Rewriter::outputs_are_defined`] holds for `h`; otherwise as `inline` does).
    pub fn inline_into(&mut self, h: &Program, args: &[Atom], outs: &[Var]) {
        let preset: HashMap<Var, Var> = h
            .outputs
            .iter()
            .zip(outs)
            .filter_map(|(a, o)| match a {
                Atom::Var(v) => Some((*v, *o)),
                Atom::Lit(_) => None,
            })
            .collect();
        self.inline_with(h, args, &preset);
    }

    fn inline_with(&mut self, h: &Program, args: &[Atom], preset: &HashMap<Var, Var>) -> Vec<Atom> {
        let mut map: HashMap<Var, Atom> =
            h.inputs.iter().copied().zip(args.iter().cloned()).collect();
        for (v, a) in &h.consts {
            let nv = self.fresh(h.aval(*v).clone());
            self.consts.push((nv, a.clone()));
            map.insert(*v, Atom::Var(nv));
        }
        let resolve = |map: &HashMap<Var, Atom>, a: &Atom| match a {
            Atom::Var(v) => map.get(v).cloned().unwrap_or_else(|| a.clone()),
            Atom::Lit(_) => a.clone(),
        };
        for e in &h.eqns {
            let inputs = e.inputs.iter().map(|a| resolve(&map, a)).collect();
            let outs: Vec<Var> = e
                .outs
                .iter()
                .map(|v| {
                    let nv = match preset.get(v) {
                        Some(o) => *o,
                        None => self.fresh(h.aval(*v).clone()),
                    };
                    map.insert(*v, Atom::Var(nv));
                    nv
                })
                .collect();
            self.eqns.push(Equation {
                prim: e.prim.clone(),
                inputs,
                outs,
                loc: e.loc,
            });
        }
        h.outputs.iter().map(|a| resolve(&map, a)).collect()
    }
}

/// `p` with the invariant work of every scan (at every depth) hoisted out of its loop.
pub(crate) fn hoist_program(p: &Program) -> Result<Program> {
    if !p.eqns.iter().any(|e| e.prim.is_control_flow()) {
        return Ok(p.clone());
    }
    let mut rw = Rewriter::new(p);
    for e in &p.eqns {
        let e = hoist_inside(e)?;
        let e = match e.prim {
            Primitive::Scan { .. } => hoist_invariants(&mut rw, &e)?,
            _ => e,
        };
        rw.eqns.push(e);
    }
    Ok(rw.finish(p))
}

/// The equation with the invariants of its sub-programs' own loops hoisted.
fn hoist_inside(e: &Equation) -> Result<Equation> {
    Ok(match e.prim.map_subprograms(hoist_program)? {
        Some(prim) => Equation { prim, ..e.clone() },
        None => e.clone(),
    })
}

/// A scan whose body's invariant equations (those reading only consts, constants and
/// literals) are appended to `rw` before it; their results used inside the loop become
/// extra consts. Any other equation is returned unchanged.
pub(crate) fn hoist_invariants(rw: &mut Rewriter, e: &Equation) -> Result<Equation> {
    let Some((body, shape)) = e.prim.as_scan() else {
        return Ok(e.clone());
    };
    let body = body.program();
    let nc = shape.n_consts;
    let mut invariant = vec![false; body.avals.len()];
    for v in &body.inputs[..nc] {
        invariant[v.index()] = true;
    }
    for (v, _) in &body.consts {
        invariant[v.index()] = true;
    }
    let var_inv = |inv: &[bool], a: &Atom| match a {
        Atom::Var(v) => inv[v.index()],
        Atom::Lit(_) => true,
    };
    let mut inv_eqn = vec![false; body.eqns.len()];
    for (k, e) in body.eqns.iter().enumerate() {
        // a loop that may not end (or end in an error) stays where it runs: hoisted out of
        // a scan of length 0 it would run when the program never ran it
        if e.inputs.iter().all(|a| var_inv(&invariant, a)) && !may_not_end(&e.prim) {
            inv_eqn[k] = true;
            for v in &e.outs {
                invariant[v.index()] = true;
            }
        }
    }
    // the invariant values the loop reads: used by variant equations or given as outputs
    let defined: Vec<bool> = {
        let mut d = vec![false; body.avals.len()];
        for (k, e) in body.eqns.iter().enumerate() {
            if inv_eqn[k] {
                for v in &e.outs {
                    d[v.index()] = true;
                }
            }
        }
        d
    };
    let mut boundary: Vec<Var> = vec![];
    let note = |a: &Atom, boundary: &mut Vec<Var>| {
        if let Atom::Var(v) = a {
            if defined[v.index()] && !boundary.contains(v) {
                boundary.push(*v);
            }
        }
    };
    for (k, e) in body.eqns.iter().enumerate() {
        if !inv_eqn[k] {
            for a in &e.inputs {
                note(a, &mut boundary);
            }
        }
    }
    for a in &body.outputs {
        note(a, &mut boundary);
    }
    if boundary.is_empty() {
        return Ok(e.clone());
    }
    let boundary_atoms = boundary.iter().map(|v| Atom::Var(*v)).collect();
    let hoisted = body.part(body.inputs[..nc].to_vec(), &inv_eqn, boundary_atoms);
    let values = rw.inline(&hoisted, &e.inputs[..nc]);
    let mut inputs = body.inputs[..nc].to_vec();
    inputs.extend(&boundary);
    inputs.extend_from_slice(&body.inputs[nc..]);
    let in_loop: Vec<bool> = inv_eqn.iter().map(|i| !i).collect();
    let new_body = body.part(inputs, &in_loop, body.outputs.clone());
    let mut operands = e.inputs[..nc].to_vec();
    operands.extend(values);
    operands.extend_from_slice(&e.inputs[nc..]);
    Ok(Equation {
        prim: Primitive::scan(
            Closed::new(new_body),
            ScanShape {
                n_consts: nc + boundary.len(),
                ..shape
            },
        ),
        inputs: operands,
        outs: e.outs.clone(),
        loc: e.loc,
    })
}

/// Whether running the primitive may not end, or end in an error its operands' avals do
/// not predict: a `while` (or the linear part of one), here or nested.
fn may_not_end(p: &Primitive) -> bool {
    matches!(p, Primitive::While { .. } | Primitive::WhileLinear { .. })
        || p.subprograms()
            .iter()
            .any(|q| q.eqns.iter().any(|e| may_not_end(&e.prim)))
}
