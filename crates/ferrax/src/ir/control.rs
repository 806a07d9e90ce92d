//! Control flow in the IR: the shape rules of `cond`, `scan` and `while`, whose
//! sub-programs are `program::Closed`.
//!
//! The primitives that hold sub-programs type-check against them: a `cond`'s branches take
//! the operands and agree on their outputs; a `scan`'s body takes the consts, the carry and
//! one slice of each xs and gives the carry back; a `while`'s cond gives a bool scalar from
//! its consts and the carry, and its body gives the carry back. `shape_rules` routes these
//! here; `Program::check` also checks the sub-programs themselves. Passes take scans apart
//! and rebuild them with the helpers at the end of this file.

use crate::ir::aval::Aval;
use crate::ir::dtype::DType;
use crate::ir::error::{Error, Result};
use crate::ir::primitive::{Closed, Primitive};
use crate::ir::program::Program;

/// A scan's static parameters other than its body: how its inputs split (consts, carry, xs),
/// how many iterations and in which direction. Passes take a scan apart with
/// [`Primitive::as_scan`] and put one together with [`Primitive::scan`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanShape {
    /// How many leading inputs are consts, the same at every iteration.
    pub n_consts: usize,
    /// How many inputs after the consts are the carry, passed from one iteration to the next.
    pub n_carry: usize,
    /// The number of iterations: the leading dimension of every xs and ys.
    pub length: usize,
    /// Whether the iterations run from the last slice of the xs to the first.
    pub reverse: bool,
}

impl Primitive {
    /// The `scan` of `body` with the static parameters `s`.
    pub fn scan(body: Closed, s: ScanShape) -> Primitive {
        Primitive::Scan {
            body,
            n_consts: s.n_consts,
            n_carry: s.n_carry,
            length: s.length,
            reverse: s.reverse,
        }
    }

    /// The sub-programs this primitive holds (none for most).
    pub fn subprograms(&self) -> Vec<&Program> {
        match self {
            Primitive::Cond { branches } => branches.iter().map(|c| c.program()).collect(),
            Primitive::Scan { body, .. } => vec![body.program()],
            Primitive::While { cond, body, .. } => vec![cond.program(), body.program()],
            Primitive::WhileLinear { body, step, .. } => vec![body.program(), step.program()],
            Primitive::Checkpoint { body, .. } => vec![body.program()],
            Primitive::CustomJvp { body, rule, .. } => vec![body.program(), rule.program()],
            Primitive::CustomVjp {
                body,
                fwd,
                bwd,
                tangent,
                ..
            } => vec![
                body.program(),
                fwd.program(),
                bwd.program(),
                tangent.program(),
            ],
            Primitive::CustomLin {
                forward, transpose, ..
            } => vec![forward.program(), transpose.program()],
            Primitive::NamedMap { body, .. } => vec![body.program()],
            _ => vec![],
        }
    }

    /// The same primitive with each sub-program replaced by `f` of it (branches in order);
    /// `None` for a primitive without sub-programs.
    pub fn map_subprograms(
        &self,
        mut f: impl FnMut(&Program) -> Result<Program>,
    ) -> Result<Option<Primitive>> {
        Ok(match self {
            Primitive::Cond { branches } => Some(Primitive::Cond {
                branches: branches
                    .iter()
                    .map(|b| f(b.program()).map(Closed::new))
                    .collect::<Result<_>>()?,
            }),
            Primitive::While {
                cond,
                body,
                n_cond_consts,
                n_body_consts,
                max_steps,
                checkpoints,
            } => Some(Primitive::While {
                cond: Closed::new(f(cond.program())?),
                body: Closed::new(f(body.program())?),
                n_cond_consts: *n_cond_consts,
                n_body_consts: *n_body_consts,
                max_steps: *max_steps,
                checkpoints: *checkpoints,
            }),
            Primitive::Checkpoint { body, policy } => Some(Primitive::Checkpoint {
                body: Closed::new(f(body.program())?),
                policy: policy.clone(),
            }),
            Primitive::NamedMap {
                body,
                axis_name,
                axis_size,
            } => Some(Primitive::NamedMap {
                body: Closed::new(f(body.program())?),
                axis_name: axis_name.clone(),
                axis_size: *axis_size,
            }),
            Primitive::CustomJvp { body, rule, n_args } => Some(Primitive::CustomJvp {
                body: Closed::new(f(body.program())?),
                rule: Closed::new(f(rule.program())?),
                n_args: *n_args,
            }),
            Primitive::CustomVjp {
                body,
                fwd,
                bwd,
                tangent,
                n_args,
            } => Some(Primitive::CustomVjp {
                body: Closed::new(f(body.program())?),
                fwd: Closed::new(f(fwd.program())?),
                bwd: Closed::new(f(bwd.program())?),
                tangent: Closed::new(f(tangent.program())?),
                n_args: *n_args,
            }),
            Primitive::CustomLin {
                forward,
                transpose,
                n_nonlin,
            } => Some(Primitive::CustomLin {
                forward: Closed::new(f(forward.program())?),
                transpose: Closed::new(f(transpose.program())?),
                n_nonlin: *n_nonlin,
            }),
            Primitive::WhileLinear {
                body,
                step,
                n_consts,
                n_lin_consts,
                transposed,
                checkpoints,
            } => Some(Primitive::WhileLinear {
                body: Closed::new(f(body.program())?),
                step: Closed::new(f(step.program())?),
                n_consts: *n_consts,
                n_lin_consts: *n_lin_consts,
                transposed: *transposed,
                checkpoints: *checkpoints,
            }),
            _ => match self.as_scan() {
                Some((body, s)) => Some(Primitive::scan(Closed::new(f(body.program())?), s)),
                None => None,
            },
        })
    }

    /// A scan's body and static parameters; `None` for every other primitive.
    pub fn as_scan(&self) -> Option<(&Closed, ScanShape)> {
        match self {
            Primitive::Scan {
                body,
                n_consts,
                n_carry,
                length,
                reverse,
            } => Some((
                body,
                ScanShape {
                    n_consts: *n_consts,
                    n_carry: *n_carry,
                    length: *length,
                    reverse: *reverse,
                },
            )),
            _ => None,
        }
    }
}

/// `cond`: an i32 scalar index, then the operands each branch takes; each gives the same outputs.
pub(crate) fn cond_avals(branches: &[Closed], args: &[&Aval]) -> Result<Vec<Aval>> {
    let op = "cond";
    let Some((index, operands)) = args.split_first() else {
        return Err(Error::shape(op, "takes an index operand, got none"));
    };
    if index.ndim() != 0 || index.dtype != DType::I32 {
        return Err(Error::dtype(
            op,
            format!("the index must be an i32 scalar, got {index}"),
        ));
    }
    let Some(first) = branches.first() else {
        return Err(Error::shape(op, "needs at least one branch"));
    };
    let out = first.program().out_avals();
    for (i, b) in branches.iter().enumerate() {
        let p = b.program();
        let ins = p.in_avals();
        if ins.len() != operands.len() || ins.iter().zip(operands).any(|(a, b)| a != *b) {
            return Err(Error::shape(
                op,
                format!(
                    "branch {i} takes ({}) but the operands are ({})",
                    list(&ins),
                    list_refs(operands)
                ),
            ));
        }
        let outs = p.out_avals();
        if outs != out {
            return Err(Error::shape(
                op,
                format!(
                    "branch {i} gives ({}) but branch 0 gives ({})",
                    list(&outs),
                    list(&out)
                ),
            ));
        }
    }
    Ok(out)
}

/// `scan`: consts, carry, then xs with a leading axis of `length`; the body takes the consts, the
/// carry and one slice of each xs, and gives the carry back (same avals) and one slice of each ys.
/// `while`: the cond's consts, the body's consts, then the carry; the cond takes its consts and the
/// carry and gives a bool scalar; the body takes its consts and the carry and gives the carry back
/// (same avals). Outputs: the carry's avals.
pub(crate) fn while_avals(
    cond: &Closed,
    body: &Closed,
    n_cond_consts: usize,
    n_body_consts: usize,
    args: &[&Aval],
) -> Result<Vec<Aval>> {
    let op = "while";
    let n_fixed = n_cond_consts
        .checked_add(n_body_consts)
        .filter(|&n| n <= args.len())
        .ok_or_else(|| {
            Error::shape(
                op,
                format!(
                    "{n_cond_consts} cond consts and {n_body_consts} body consts asked of {} operands",
                    args.len()
                ),
            )
        })?;
    let carry: Vec<Aval> = args[n_fixed..].iter().map(|a| (*a).clone()).collect();
    let mut cond_in: Vec<Aval> = args[..n_cond_consts].iter().map(|a| (*a).clone()).collect();
    cond_in.extend(carry.iter().cloned());
    let ins = cond.program().in_avals();
    if ins != cond_in {
        return Err(Error::shape(
            op,
            format!(
                "the cond takes ({}) but its consts and the carry are ({})",
                list(&ins),
                list(&cond_in)
            ),
        ));
    }
    let cond_out = cond.program().out_avals();
    if cond_out.len() != 1 || cond_out[0] != Aval::scalar(DType::Bool) {
        return Err(Error::dtype(
            op,
            format!(
                "the cond must give one bool scalar, it gives ({})",
                list(&cond_out)
            ),
        ));
    }
    let mut body_in: Vec<Aval> = args[n_cond_consts..n_fixed]
        .iter()
        .map(|a| (*a).clone())
        .collect();
    body_in.extend(carry.iter().cloned());
    let ins = body.program().in_avals();
    if ins != body_in {
        return Err(Error::shape(
            op,
            format!(
                "the body takes ({}) but its consts and the carry are ({})",
                list(&ins),
                list(&body_in)
            ),
        ));
    }
    let outs = body.program().out_avals();
    if outs != carry {
        return Err(Error::shape(
            op,
            format!(
                "the body must give the carry ({}) back, it gives ({})",
                list(&carry),
                list(&outs)
            ),
        ));
    }
    Ok(carry)
}

impl Primitive {
    /// A `while` with this one's options (`max_steps`, `checkpoints`; none for another
    /// primitive) and the given cond, body and const counts: what a pass that rewrites a
    /// loop's sub-programs builds.
    pub(crate) fn while_like(
        &self,
        cond: Closed,
        body: Closed,
        n_cond_consts: usize,
        n_body_consts: usize,
    ) -> Primitive {
        let (max_steps, checkpoints) = match self {
            Primitive::While {
                max_steps,
                checkpoints,
                ..
            } => (*max_steps, *checkpoints),
            _ => (0, 0),
        };
        Primitive::While {
            cond,
            body,
            n_cond_consts,
            n_body_consts,
            max_steps,
            checkpoints,
        }
    }
}

/// `checkpoint`: the body takes the operands; the outputs are the body's.
pub(crate) fn checkpoint_avals(body: &Closed, args: &[&Aval]) -> Result<Vec<Aval>> {
    let ins = body.program().in_avals();
    let given: Vec<Aval> = args.iter().map(|a| (*a).clone()).collect();
    if ins != given {
        return Err(Error::shape(
            "checkpoint",
            format!(
                "the body takes ({}) but the operands are ({})",
                list(&ins),
                list(&given)
            ),
        ));
    }
    Ok(body.program().out_avals())
}

/// Whether `p` applies a collective over the axis `name` that no `named_map` inside `p` rebinds.
pub(crate) fn uses_axis(p: &Program, name: &str) -> bool {
    p.eqns.iter().any(|e| {
        e.prim.collective_axis().is_some_and(|(a, _)| a == name)
            || subprograms_use_axis(&e.prim, name)
    })
}

/// Whether the sub-programs of `prim` apply a collective over `name` (a `named_map` over
/// `name` rebinds it: its own collectives are its own).
pub(crate) fn subprograms_use_axis(prim: &Primitive, name: &str) -> bool {
    if matches!(prim, Primitive::NamedMap { axis_name, .. } if axis_name == name) {
        return false;
    }
    prim.subprograms().into_iter().any(|s| uses_axis(s, name))
}

/// Every collective over `name` in `p` (where no inner map rebinds it) must count the
/// map's `n` members.
fn check_axis_size(p: &Program, name: &str, n: usize) -> Result<()> {
    for e in &p.eqns {
        if let Some((a, size)) = e.prim.collective_axis() {
            if a == name && size != n {
                return Err(Error::shape(
                    "named_map",
                    format!(
                        "`{}` in the body counts {size} members of `{name}`, but the map has {n}",
                        e.prim.name()
                    ),
                ));
            }
        }
        if !matches!(&e.prim, Primitive::NamedMap { axis_name, .. } if axis_name == name) {
            for s in e.prim.subprograms() {
                check_axis_size(s, name, n)?;
            }
        }
    }
    Ok(())
}

/// `named_map`: every operand has one index per member along dimension 0, and the body
/// takes one member's slices; the outputs are the body's, stacked along a new dimension 0.
pub(crate) fn named_map_avals(
    body: &Closed,
    axis_name: &str,
    n: usize,
    args: &[&Aval],
) -> Result<Vec<Aval>> {
    let op = "named_map";
    if !crate::ir::collective::is_axis_name(axis_name) {
        return Err(crate::ir::collective::bad_axis_name(op, axis_name));
    }
    if n == 0 {
        return Err(Error::shape(
            op,
            format!("the axis `{axis_name}` has no members"),
        ));
    }
    let mut slices = Vec::with_capacity(args.len());
    for (i, a) in args.iter().enumerate() {
        if a.shape.first() != Some(&n) {
            return Err(Error::shape(
                op,
                format!("operand {i} ({a}) must have the {n} members of `{axis_name}` along dimension 0"),
            ));
        }
        slices.push(Aval::new(a.shape[1..].to_vec(), a.dtype));
    }
    check_axis_size(body.program(), axis_name, n)?;
    let ins = body.program().in_avals();
    if ins != slices {
        return Err(Error::shape(
            op,
            format!(
                "the body takes ({}) but a member's operands are ({})",
                list(&ins),
                list(&slices)
            ),
        ));
    }
    body.program()
        .out_avals()
        .into_iter()
        .map(|a| {
            let mut shape = vec![n];
            shape.extend(&a.shape);
            let out = Aval::new(shape, a.dtype);
            out.validate(op)?;
            Ok(out)
        })
        .collect()
}

/// `while_linear`: consts, the trip count (an i64 scalar), the initial primal carry, then the
/// linear operands. The body takes the consts and the carry and gives the carry back. Forward, the
/// linear operands are `n_lin_consts` fixed tangents and the tangent carry, the step takes (consts,
/// carry, fixed tangents, tangent carry) and gives the tangent carry back, and so do the outputs.
/// Transposed, the linear operand is the tangent carry's cotangent, the step takes (consts, carry,
/// cotangent) and gives the fixed tangents' cotangents then the carry's, and so do the outputs.
pub(crate) fn while_linear_avals(
    body: &Closed,
    step: &Closed,
    n_consts: usize,
    n_lin_consts: usize,
    transposed: bool,
    args: &[&Aval],
) -> Result<Vec<Aval>> {
    let op = "while_linear";
    let body_in = body.program().in_avals();
    let body_out = body.program().out_avals();
    let n_carry = body_out.len();
    let n_fixed = n_consts
        .checked_add(1)
        .and_then(|n| n.checked_add(n_carry))
        .filter(|&n| n <= args.len())
        .ok_or_else(|| {
            Error::shape(
                op,
                format!(
                    "{n_consts} consts, a trip count and {n_carry} carries asked of {} operands",
                    args.len()
                ),
            )
        })?;
    if *args[n_consts] != Aval::scalar(DType::I64) {
        return Err(Error::dtype(
            op,
            format!(
                "the trip count must be an i64 scalar, got {}",
                args[n_consts]
            ),
        ));
    }
    let mut primal: Vec<Aval> = args[..n_consts].iter().map(|a| (*a).clone()).collect();
    let carry: Vec<Aval> = args[n_consts + 1..n_fixed]
        .iter()
        .map(|a| (*a).clone())
        .collect();
    primal.extend(carry.iter().cloned());
    if body_in != primal || body_out != carry {
        return Err(Error::shape(
            op,
            format!(
                "the body maps ({}) to ({}) but the consts and the carry are ({})",
                list(&body_in),
                list(&body_out),
                list(&primal)
            ),
        ));
    }
    let lin: Vec<Aval> = args[n_fixed..].iter().map(|a| (*a).clone()).collect();
    let mut step_in = primal;
    step_in.extend(lin.iter().cloned());
    let ins = step.program().in_avals();
    let outs = step.program().out_avals();
    if ins != step_in {
        return Err(Error::shape(
            op,
            format!(
                "the step takes ({}) but the consts, carry and linear operands are ({})",
                list(&ins),
                list(&step_in)
            ),
        ));
    }
    let ok = match transposed {
        false => lin.get(n_lin_consts..) == Some(&outs[..]),
        true => outs.get(n_lin_consts..) == Some(&lin[..]),
    };
    if !ok {
        return Err(Error::shape(
            op,
            format!(
                "the step must give the linear carry back ({} fixed operands): it takes ({}) and gives ({})",
                n_lin_consts,
                list(&lin),
                list(&outs)
            ),
        ));
    }
    Ok(outs)
}

pub(crate) fn scan_avals(
    body: &Closed,
    n_consts: usize,
    n_carry: usize,
    length: usize,
    args: &[&Aval],
) -> Result<Vec<Aval>> {
    let op = "scan";
    let p = body.program();
    let n_fixed = n_consts
        .checked_add(n_carry)
        .filter(|&n| n <= args.len())
        .ok_or_else(|| {
            Error::shape(
                op,
                format!(
                    "{n_consts} consts and {n_carry} carries asked of {} operands",
                    args.len()
                ),
            )
        })?;
    let mut slices = Vec::with_capacity(args.len());
    slices.extend(args[..n_fixed].iter().map(|a| (*a).clone()));
    for (i, x) in args[n_fixed..].iter().enumerate() {
        if x.shape.first() != Some(&length) {
            return Err(Error::shape(
                op,
                format!("xs {i} is {x}, but the scan's length is {length}: each xs needs a leading axis of that length"),
            ));
        }
        slices.push(Aval::new(x.shape[1..].to_vec(), x.dtype));
    }
    let ins = p.in_avals();
    if ins != slices {
        return Err(Error::shape(
            op,
            format!(
                "the body takes ({}) but the consts, carry and slices of the xs are ({})",
                list(&ins),
                list(&slices)
            ),
        ));
    }
    let outs = p.out_avals();
    if outs.len() < n_carry || outs[..n_carry] != slices[n_consts..n_fixed] {
        return Err(Error::shape(
            op,
            format!(
                "the body must give the carry ({}) back first, it gives ({})",
                list(&slices[n_consts..n_fixed]),
                list(&outs)
            ),
        ));
    }
    let mut result = outs[..n_carry].to_vec();
    for y in &outs[n_carry..] {
        let mut shape = vec![length];
        shape.extend_from_slice(&y.shape);
        let stacked = Aval::new(shape, y.dtype);
        stacked.validate(op)?;
        result.push(stacked);
    }
    Ok(result)
}

/// Avals as program text lists them, for messages.
pub(crate) fn list(avals: &[Aval]) -> String {
    avals
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn list_refs(avals: &[&Aval]) -> String {
    avals
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
