//! Loop restructuring: per-iteration matrix-vector work becomes matrix-matrix work outside
//! the loop.
//!
//! Part of the optimizer (`optimize`), run on every scan after its invariants are hoisted.
//! Two rewrites, both about taking work that does not need the loop out of it:
//!
//! * **Work on the xs alone** (it reads the consts and the current rows of the xs, never the
//!   carry) is the same computation for every row: it runs once, batched over all rows
//!   before the loop (the vmap pass makes the batched program), and the loop reads its
//!   results as extra xs. An RNN's input projection `U x_t` becomes one matrix product
//!   `X Uᵀ`, leaving the loop only the recurrence `W h`. Done only when that work contains a
//!   product (`dot_general`), which is where batching pays.
//! * **Accumulated products** (a carry that only adds a `dot_general` of per-iteration
//!   values to itself, `acc' = acc + a_t ⊗ b_t`, as the transposed loop of a gradient
//!   accumulates a weight's cotangent) become one contraction after the loop over the
//!   stacked factors, `Σ_t a_t ⊗ b_t = Aᵀ B`: rank-one updates of a matrix at every step
//!   become one matrix product. A carry that adds a value already stacked for such a
//!   product is summed after the loop too.
//!
//! Unlike the algebraic rewrites of `optimize`, these reassociate floating-point sums (a sum
//! over iterations becomes one contraction), so results agree with the reference evaluator
//! to rounding rather than bit for bit. Each rewrite is bounded in the memory it adds (the
//! stacked values, at most `MAX_STACKED_BYTES`).

use std::collections::HashMap;

use crate::ir::{flagged, Atom, Aval, Closed, Equation, Primitive, Program, ScanShape, Var};
use crate::passes::hoist::Rewriter;
use crate::passes::optimize::ys_after::ys_work_after;
use crate::passes::vmap::vmap_program;

/// The most memory a rewrite may add for stacked per-iteration values.
pub(super) const MAX_STACKED_BYTES: usize = 64 << 20;

/// `p` with its scans restructured (see the module doc); sub-programs are not visited (the
/// optimizer runs on each of them).
pub(crate) fn restructure_loops(p: &Program) -> Program {
    if !p
        .eqns
        .iter()
        .any(|e| matches!(e.prim, Primitive::Scan { .. }))
    {
        return p.clone();
    }
    let mut rw = Rewriter::new(p);
    for e in &p.eqns {
        let e = hoist_xs_work(&mut rw, e).unwrap_or_else(|| e.clone());
        accumulate_after(&mut rw, e);
    }
    let q = rw.finish(p);
    // then the ys work no carry needs, after each loop (a second sweep: the first may have
    // added ys that this one reads)
    let mut rw = Rewriter::new(&q);
    for e in &q.eqns {
        ys_work_after(&mut rw, e);
    }
    rw.finish(&q)
}

/// A scan's parts, with short names for the counts the rewrites index by.
pub(super) struct ScanParts<'a> {
    pub body: &'a Program,
    pub shape: ScanShape,
    pub nc: usize,
    pub ncar: usize,
    pub length: usize,
}

pub(super) fn parts(e: &Equation) -> Option<ScanParts<'_>> {
    let (body, shape) = e.prim.as_scan()?;
    Some(ScanParts {
        body: body.program(),
        shape,
        nc: shape.n_consts,
        ncar: shape.n_carry,
        length: shape.length,
    })
}

pub(super) fn var(a: &Atom) -> Option<Var> {
    match a {
        Atom::Var(v) => Some(*v),
        Atom::Lit(_) => None,
    }
}

pub(super) fn stacked(a: &Aval, length: usize) -> Aval {
    let mut shape = vec![length];
    shape.extend_from_slice(&a.shape);
    Aval::new(shape, a.dtype)
}

/// The scan with its xs-only work done before the loop, batched; `None` when there is none
/// worth moving (appends the batched work to `rw` otherwise).
fn hoist_xs_work(rw: &mut Rewriter, e: &Equation) -> Option<Equation> {
    let s = parts(e)?;
    let body = s.body;
    let n = body.inputs.len();
    if n == s.nc + s.ncar || s.length == 0 {
        return None;
    }
    // values that vary with the carry, and values that vary with the xs rows: the work to
    // move reads the xs and not the carry (invariant work it needs comes along; LICM has
    // taken most of it out already)
    let mut carried = vec![false; body.avals.len()];
    let mut rows = vec![false; body.avals.len()];
    for v in &body.inputs[s.nc..s.nc + s.ncar] {
        carried[v.index()] = true;
    }
    for v in &body.inputs[s.nc + s.ncar..] {
        rows[v.index()] = true;
    }
    let mut pre = vec![false; body.eqns.len()];
    let mut invariant = vec![false; body.eqns.len()];
    for (k, eq) in body.eqns.iter().enumerate() {
        let reads = |flags: &[bool]| {
            eq.inputs
                .iter()
                .any(|a| var(a).is_some_and(|v| flags[v.index()]))
        };
        let (c, r) = (reads(&carried), reads(&rows));
        for o in &eq.outs {
            carried[o.index()] = c;
            rows[o.index()] = r;
        }
        pre[k] = r && !c;
        invariant[k] = !r && !c;
    }
    let worth = body
        .eqns
        .iter()
        .zip(&pre)
        .any(|(eq, p)| *p && matches!(eq.prim, Primitive::DotGeneral { .. }));
    if !worth {
        return None;
    }
    // the xs-only values the rest of the body reads
    let mut defined_pre = vec![false; body.avals.len()];
    for (eq, p) in body.eqns.iter().zip(&pre) {
        if *p {
            for o in &eq.outs {
                defined_pre[o.index()] = true;
            }
        }
    }
    let mut boundary: Vec<Var> = vec![];
    let mut note = |a: &Atom| {
        if let Some(v) = var(a) {
            if defined_pre[v.index()] && !boundary.contains(&v) {
                boundary.push(v);
            }
        }
    };
    for (eq, p) in body.eqns.iter().zip(&pre) {
        if !*p {
            eq.inputs.iter().for_each(&mut note);
        }
    }
    body.outputs.iter().for_each(&mut note);
    let bytes: usize = boundary
        .iter()
        .map(|v| stacked(body.aval(*v), s.length).bytes())
        .fold(0usize, usize::saturating_add);
    if boundary.is_empty() || bytes > MAX_STACKED_BYTES {
        return None;
    }
    // the xs-only work as a program of (consts, xs rows), batched over the rows
    let mut inputs = body.inputs[..s.nc].to_vec();
    inputs.extend_from_slice(&body.inputs[s.nc + s.ncar..]);
    let before: Vec<bool> = pre.iter().zip(&invariant).map(|(p, i)| *p || *i).collect();
    let boundary_atoms = boundary.iter().map(|v| Atom::Var(*v)).collect();
    let per_row = body.part(inputs, &before, boundary_atoms);
    let mut axes = vec![None; s.nc];
    axes.extend(std::iter::repeat_n(Some(0), n - s.nc - s.ncar));
    let batched = vmap_program(&per_row, &axes, s.length).ok()?;
    let mut args = e.inputs[..s.nc].to_vec();
    args.extend_from_slice(&e.inputs[s.nc + s.ncar..]);
    let values = rw.inline(&batched, &args);
    // the loop reads them as extra xs
    let mut new_inputs = body.inputs.clone();
    new_inputs.extend(&boundary);
    let in_loop: Vec<bool> = pre.iter().map(|p| !p).collect();
    let new_body = body.part(new_inputs, &in_loop, body.outputs.clone());
    let mut operands = e.inputs.clone();
    operands.extend(values);
    Some(Equation {
        prim: Primitive::scan(Closed::new(new_body), s.shape),
        inputs: operands,
        outs: e.outs.clone(),
        loc: e.loc,
    })
}

/// Where a per-iteration value comes from once the loop has run: an xs of the scan (the
/// body input at this position), or a new stacked ys.
#[derive(Clone, Copy, PartialEq)]
enum Stacked {
    Xs(usize),
    NewYs(Var),
}

/// One accumulator carry to take out of the loop.
struct Accumulator {
    carry: usize,
    /// The term added at every step, and how its sum is formed after the loop.
    sum: Sum,
    /// Whether the body's add is `add(acc, term)` (else `add(term, acc)`).
    acc_first: bool,
}

enum Sum {
    /// `Σ_t dot(a_t, b_t)`: one contraction over the stacked factors.
    Contract(Stacked, Stacked, Primitive),
    /// `Σ_t dot(a_t, K)` with `K` a const (`left`: the stacked factor is the lhs).
    ReduceThenDot(Stacked, Atom, Primitive, bool),
    /// `Σ_t x_t` of a value stacked anyway.
    Reduce(Stacked),
}

/// Pushes the scan to `rw`, its accumulated products taken out of the loop.
fn accumulate_after(rw: &mut Rewriter, e: Equation) {
    let Some(s) = parts(&e) else {
        rw.eqns.push(e);
        return;
    };
    let body = s.body;
    let uses = count_uses(body);
    let defs: HashMap<Var, usize> = body
        .eqns
        .iter()
        .enumerate()
        .flat_map(|(k, eq)| eq.outs.iter().map(move |v| (*v, k)))
        .collect();
    let input_pos: HashMap<Var, usize> = body
        .inputs
        .iter()
        .enumerate()
        .map(|(i, v)| (*v, i))
        .collect();
    let is_const = |v: Var| {
        input_pos.get(&v).is_some_and(|&i| i < s.nc) || body.consts.iter().any(|(c, _)| *c == v)
    };
    let carried = carry_dependence(body, s.nc, s.ncar);
    // where a factor's stacked values come from (a new ys unless it is an xs row)
    let mut new_ys: Vec<Var> = vec![];
    let stack_of = |v: Var, new_ys: &mut Vec<Var>| -> Stacked {
        match input_pos.get(&v) {
            Some(&i) if i >= s.nc + s.ncar => Stacked::Xs(i - s.nc - s.ncar),
            _ => {
                if !new_ys.contains(&v) {
                    new_ys.push(v);
                }
                Stacked::NewYs(v)
            }
        }
    };
    let mut accs: Vec<Accumulator> = vec![];
    let mut generic: Vec<(usize, Var, bool)> = vec![];
    for j in 0..s.ncar {
        let acc_in = body.inputs[s.nc + j];
        let Some(out) = var(&body.outputs[j]) else {
            continue;
        };
        let Some(&k) = defs.get(&out) else { continue };
        let add = &body.eqns[k];
        if add.prim != Primitive::Add || uses.get(&acc_in) != Some(&1) || uses.get(&out) != Some(&1)
        {
            continue;
        }
        let (term, acc_first) = match (&add.inputs[0], &add.inputs[1]) {
            (Atom::Var(a), Atom::Var(t)) if *a == acc_in => (*t, true),
            (Atom::Var(t), Atom::Var(a)) if *a == acc_in => (*t, false),
            _ => continue,
        };
        // the term must not read the accumulator itself (or any other accumulator later
        // removed): it reads no value that depends on this carry
        if carried[term.index()].contains(&j) {
            continue;
        }
        let dot = defs.get(&term).map(|&d| &body.eqns[d]);
        match dot {
            Some(d) if is_dot_without_batch(&d.prim) && uses.get(&term) == Some(&1) => {
                let (Some(a), Some(b)) = (var(&d.inputs[0]), var(&d.inputs[1])) else {
                    continue;
                };
                if carried[a.index()].contains(&j) || carried[b.index()].contains(&j) {
                    continue;
                }
                let sum = match (is_const(a), is_const(b)) {
                    (false, false) => Sum::Contract(
                        stack_of(a, &mut new_ys),
                        stack_of(b, &mut new_ys),
                        d.prim.clone(),
                    ),
                    (false, true) => Sum::ReduceThenDot(
                        stack_of(a, &mut new_ys),
                        Atom::Var(b),
                        d.prim.clone(),
                        true,
                    ),
                    (true, false) => Sum::ReduceThenDot(
                        stack_of(b, &mut new_ys),
                        Atom::Var(a),
                        d.prim.clone(),
                        false,
                    ),
                    (true, true) => continue,
                };
                accs.push(Accumulator {
                    carry: j,
                    sum,
                    acc_first,
                });
            }
            _ => generic.push((j, term, acc_first)),
        }
    }
    // a plain sum of a value that is stacked anyway for a product
    for (j, term, acc_first) in generic {
        if new_ys.contains(&term) {
            accs.push(Accumulator {
                carry: j,
                sum: Sum::Reduce(Stacked::NewYs(term)),
                acc_first,
            });
        }
    }
    let extra_bytes: usize = new_ys
        .iter()
        .map(|v| stacked(body.aval(*v), s.length).bytes())
        .fold(0usize, usize::saturating_add);
    if accs.iter().all(|a| matches!(a.sum, Sum::Reduce(_))) || extra_bytes > MAX_STACKED_BYTES {
        rw.eqns.push(e);
        return;
    }
    // consts of the body used after the loop are the scan's operands
    let outer_const = |v: Var| -> Option<Atom> {
        let i = *input_pos.get(&v)?;
        Some(e.inputs[i].clone())
    };
    if accs.iter().any(|a| match &a.sum {
        Sum::ReduceThenDot(_, Atom::Var(k), _, _) => outer_const(*k).is_none(),
        _ => false,
    }) {
        // a const array of the body itself: left alone (rare; it would need copying out)
        rw.eqns.push(e);
        return;
    }
    let removed: Vec<usize> = accs.iter().map(|a| a.carry).collect();
    let keep_carry: Vec<bool> = (0..s.ncar).map(|j| !removed.contains(&j)).collect();
    // the new body: removed carries leave the inputs and outputs; the factors become ys
    let mut inputs = body.inputs[..s.nc].to_vec();
    inputs.extend(flagged(&body.inputs[s.nc..s.nc + s.ncar], &keep_carry));
    inputs.extend_from_slice(&body.inputs[s.nc + s.ncar..]);
    let mut outputs = flagged(&body.outputs[..s.ncar], &keep_carry);
    outputs.extend_from_slice(&body.outputs[s.ncar..]);
    outputs.extend(new_ys.iter().map(|v| Atom::Var(*v)));
    let new_body = body.part(inputs, &vec![true; body.eqns.len()], outputs);
    let mut operands = e.inputs[..s.nc].to_vec();
    operands.extend(flagged(&e.inputs[s.nc..s.nc + s.ncar], &keep_carry));
    operands.extend_from_slice(&e.inputs[s.nc + s.ncar..]);
    let mut outs = flagged(&e.outs[..s.ncar], &keep_carry);
    outs.extend_from_slice(&e.outs[s.ncar..]);
    let ys_vars: Vec<Var> = new_ys
        .iter()
        .map(|v| rw.fresh(stacked(body.aval(*v), s.length)))
        .collect();
    outs.extend(&ys_vars);
    rw.eqns.push(Equation {
        prim: Primitive::scan(
            Closed::new(new_body),
            ScanShape {
                n_carry: keep_carry.iter().filter(|k| **k).count(),
                ..s.shape
            },
        ),
        inputs: operands,
        outs,
        loc: e.loc,
    });
    // after the loop: each accumulator's initial value plus its summed terms, written to
    // the scan's original output variable
    let n_xs_start = s.nc + s.ncar;
    let stacked_atom = |st: Stacked| -> Atom {
        match st {
            Stacked::Xs(i) => e.inputs[n_xs_start + i].clone(),
            Stacked::NewYs(v) => {
                let k = new_ys.iter().position(|w| *w == v).unwrap_or(0);
                Atom::Var(ys_vars[k])
            }
        }
    };
    for a in &accs {
        let out_aval = body.aval(body.inputs[s.nc + a.carry]).clone();
        let total = match &a.sum {
            Sum::Contract(x, y, prim) => {
                let prim = contract_leading(prim);
                emit(
                    rw,
                    prim,
                    vec![stacked_atom(*x), stacked_atom(*y)],
                    out_aval.clone(),
                )
            }
            Sum::ReduceThenDot(x, k, prim, left) => {
                let xa = stacked_atom(*x);
                let row = row_aval(rw, &xa);
                let summed = emit(rw, reduce0(), vec![xa], row);
                let k = outer_const(var(k).unwrap_or(Var(0))).unwrap_or_else(|| k.clone());
                let ins = if *left {
                    vec![summed, k]
                } else {
                    vec![k, summed]
                };
                emit(rw, prim.clone(), ins, out_aval.clone())
            }
            Sum::Reduce(x) => emit(rw, reduce0(), vec![stacked_atom(*x)], out_aval.clone()),
        };
        let init = e.inputs[s.nc + a.carry].clone();
        let ins = if a.acc_first {
            vec![init, total]
        } else {
            vec![total, init]
        };
        rw.eqns.push(Equation {
            prim: Primitive::Add,
            inputs: ins,
            outs: vec![e.outs[a.carry]],
            loc: e.loc,
        });
    }
}

fn is_dot_without_batch(p: &Primitive) -> bool {
    matches!(p, Primitive::DotGeneral { lhs_batch, rhs_batch, .. } if lhs_batch.is_empty() && rhs_batch.is_empty())
}

/// The product with a new leading dimension on both operands, contracted.
fn contract_leading(p: &Primitive) -> Primitive {
    match p {
        Primitive::DotGeneral {
            lhs_contracting,
            rhs_contracting,
            ..
        } => {
            let up = |d: &Vec<usize>| -> Vec<usize> {
                std::iter::once(0).chain(d.iter().map(|x| x + 1)).collect()
            };
            Primitive::DotGeneral {
                lhs_contracting: up(lhs_contracting),
                rhs_contracting: up(rhs_contracting),
                lhs_batch: vec![],
                rhs_batch: vec![],
            }
        }
        other => other.clone(),
    }
}

fn reduce0() -> Primitive {
    Primitive::ReduceSum { axes: vec![0] }
}

fn row_aval(rw: &Rewriter, a: &Atom) -> Aval {
    let s = rw.atom_aval(a);
    Aval::new(s.shape[1..].to_vec(), s.dtype)
}

fn emit(rw: &mut Rewriter, prim: Primitive, inputs: Vec<Atom>, aval: Aval) -> Atom {
    let v = rw.fresh(aval);
    rw.eqns.push(Equation {
        prim,
        inputs,
        outs: vec![v],
        loc: None,
    });
    Atom::Var(v)
}

/// How many times each variable is read (by equations and as an output).
fn count_uses(p: &Program) -> HashMap<Var, usize> {
    let mut uses = HashMap::new();
    for a in p.eqns.iter().flat_map(|e| &e.inputs).chain(&p.outputs) {
        if let Some(v) = var(a) {
            *uses.entry(v).or_insert(0) += 1;
        }
    }
    uses
}

/// For each variable of a scan body, the carries (by index) its value depends on.
fn carry_dependence(body: &Program, nc: usize, ncar: usize) -> Vec<Vec<usize>> {
    let mut deps: Vec<Vec<usize>> = vec![vec![]; body.avals.len()];
    for (j, v) in body.inputs[nc..nc + ncar].iter().enumerate() {
        deps[v.index()] = vec![j];
    }
    for eq in &body.eqns {
        let mut d: Vec<usize> = vec![];
        for a in &eq.inputs {
            if let Some(v) = var(a) {
                for j in &deps[v.index()] {
                    if !d.contains(j) {
                        d.push(*j);
                    }
                }
            }
        }
        for o in &eq.outs {
            deps[o.index()] = d.clone();
        }
    }
    deps
}
