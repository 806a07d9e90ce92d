//! Custom derivative rules in the IR: the shape rules of `custom_jvp`, `custom_vjp` and
//! `custom_lin`, which hold the user's function and its rules as sub-programs.
//!
//! Beside `control`, whose sub-programs these share: `shape_rules` routes the three here.
//! A custom primitive *evaluates* as its `body` (the user's function; for `custom_lin`, its
//! `forward` map): [`Primitive::callee`] names that program, and the evaluators and the
//! compiled backend run it as a call. The rules are read only by the passes that
//! differentiate (`jvp::custom`) and, for `custom_lin`, transpose it.
//!
//! **Operand layout.** The first `n_args` operands are the function's arguments (its tree's
//! leaves), the rest are the values the function and its rules captured (*consts*), shared
//! by every sub-program so one operand list serves them all. Only float arguments and
//! outputs have tangents and cotangents (integer and boolean ones have no tangent space):
//!
//! | program | inputs | outputs |
//! |---|---|---|
//! | `custom_jvp.body` | args, consts | outs |
//! | `custom_jvp.rule` | args, consts, float args' tangents | outs, float outs' tangents |
//! | `custom_vjp.body` | args, consts | outs |
//! | `custom_vjp.fwd` | args, consts | outs, residuals |
//! | `custom_vjp.bwd` | residuals, args, consts, float outs' cotangents | float args' cotangents |
//! | `custom_vjp.tangent` | residuals, args, consts, float args' tangents | float outs' tangents |
//! | `custom_lin.forward` | nonlin, lin | outs |
//! | `custom_lin.transpose` | nonlin, outs' cotangents | lin's cotangents |

use crate::ir::aval::Aval;
use crate::ir::control::list;
use crate::ir::dependence::dependent_outputs;
use crate::ir::error::{Error, Result};
use crate::ir::primitive::{Closed, Primitive};

impl Primitive {
    /// The program that computes this primitive's outputs from its operands, for the
    /// primitives that evaluate as a call of one sub-program: `checkpoint`, `custom_jvp` and
    /// `custom_vjp` (their body) and `custom_lin` (its forward map).
    pub fn callee(&self) -> Option<&Closed> {
        match self {
            Primitive::Checkpoint { body, .. }
            | Primitive::CustomJvp { body, .. }
            | Primitive::CustomVjp { body, .. } => Some(body),
            Primitive::CustomLin { forward, .. } => Some(forward),
            _ => None,
        }
    }
}

/// The float avals among `avals` (those with a tangent space).
pub(crate) fn floats(avals: &[Aval]) -> Vec<Aval> {
    avals
        .iter()
        .filter(|a| a.dtype.is_float())
        .cloned()
        .collect()
}

/// Checks that `what` of `op` has the avals `want`, which `should` names.
fn expect(op: &str, what: &str, got: &[Aval], should: &str, want: &[Aval]) -> Result<()> {
    if got == want {
        return Ok(());
    }
    Err(Error::shape(
        op,
        format!(
            "{what} are ({}) but {should} are ({})",
            list(got),
            list(want)
        ),
    ))
}

fn cat(parts: &[&[Aval]]) -> Vec<Aval> {
    parts.iter().flat_map(|p| p.iter().cloned()).collect()
}

/// `custom_jvp`: the body takes the operands; the rule takes them and the float arguments'
/// tangents and gives the outputs and the float outputs' tangents.
pub(crate) fn custom_jvp_avals(
    body: &Closed,
    rule: &Closed,
    n_args: usize,
    args: &[&Aval],
) -> Result<Vec<Aval>> {
    let op = "custom_jvp";
    let operands: Vec<Aval> = args.iter().map(|a| (*a).clone()).collect();
    if n_args > operands.len() {
        return Err(Error::shape(
            op,
            format!("n_args={n_args} but only {} operands", operands.len()),
        ));
    }
    let (b, r) = (body.program(), rule.program());
    expect(
        op,
        "the body's inputs",
        &b.in_avals(),
        "the operands",
        &operands,
    )?;
    let outs = b.out_avals();
    let t_args = floats(&operands[..n_args]);
    expect(
        op,
        "the rule's inputs",
        &r.in_avals(),
        "the operands and the float arguments' tangents",
        &cat(&[&operands, &t_args]),
    )?;
    expect(
        op,
        "the rule's outputs",
        &r.out_avals(),
        "the body's outputs and the float outputs' tangents",
        &cat(&[&outs, &floats(&outs)]),
    )?;
    // the rule gives the function's outputs from the primals alone: a primal output that
    // reads a tangent is no jvp (and no linear map could be split from it)
    let mut tangents = vec![false; operands.len()];
    tangents.resize(operands.len() + t_args.len(), true);
    if let Some(k) = dependent_outputs(r, &tangents)?[..outs.len()]
        .iter()
        .position(|d| *d)
    {
        return Err(Error::shape(
            op,
            format!("the rule's primal output {k} depends on a tangent input"),
        ));
    }
    Ok(outs)
}

/// `custom_vjp`: see the module's table.
pub(crate) fn custom_vjp_avals(
    [body, fwd, bwd, tangent]: [&Closed; 4],
    n_args: usize,
    args: &[&Aval],
) -> Result<Vec<Aval>> {
    let op = "custom_vjp";
    let operands: Vec<Aval> = args.iter().map(|a| (*a).clone()).collect();
    if n_args > operands.len() {
        return Err(Error::shape(
            op,
            format!("n_args={n_args} but only {} operands", operands.len()),
        ));
    }
    expect(
        op,
        "the body's inputs",
        &body.program().in_avals(),
        "the operands",
        &operands,
    )?;
    expect(
        op,
        "fwd's inputs",
        &fwd.program().in_avals(),
        "the operands",
        &operands,
    )?;
    let outs = body.program().out_avals();
    let fwd_outs = fwd.program().out_avals();
    if fwd_outs.len() < outs.len() {
        return Err(Error::shape(
            op,
            format!(
                "fwd gives {} output(s), fewer than the body's {}",
                fwd_outs.len(),
                outs.len()
            ),
        ));
    }
    let (fwd_primal, res) = fwd_outs.split_at(outs.len());
    expect(
        op,
        "fwd's primal outputs",
        fwd_primal,
        "the body's outputs",
        &outs,
    )?;
    let (t_args, t_outs) = (floats(&operands[..n_args]), floats(&outs));
    let b = bwd.program();
    expect(
        op,
        "bwd's inputs",
        &b.in_avals(),
        "the residuals, the operands and the float outputs' cotangents",
        &cat(&[res, &operands, &t_outs]),
    )?;
    expect(
        op,
        "bwd's outputs",
        &b.out_avals(),
        "the float arguments",
        &t_args,
    )?;
    let t = tangent.program();
    expect(
        op,
        "tangent's inputs",
        &t.in_avals(),
        "the residuals, the operands and the float arguments' tangents",
        &cat(&[res, &operands, &t_args]),
    )?;
    expect(
        op,
        "tangent's outputs",
        &t.out_avals(),
        "the float outputs",
        &t_outs,
    )?;
    Ok(outs)
}

/// `custom_lin`: the forward map takes the operands; the transpose takes the nonlinear ones
/// and the outputs' cotangents and gives the linear ones' cotangents.
pub(crate) fn custom_lin_avals(
    forward: &Closed,
    transpose: &Closed,
    n_nonlin: usize,
    args: &[&Aval],
) -> Result<Vec<Aval>> {
    let op = "custom_lin";
    let operands: Vec<Aval> = args.iter().map(|a| (*a).clone()).collect();
    if n_nonlin > operands.len() {
        return Err(Error::shape(
            op,
            format!("n_nonlin={n_nonlin} but only {} operands", operands.len()),
        ));
    }
    let f = forward.program();
    expect(
        op,
        "the forward map's inputs",
        &f.in_avals(),
        "the operands",
        &operands,
    )?;
    let outs = f.out_avals();
    let (nonlin, lin) = operands.split_at(n_nonlin);
    if let Some(a) = lin.iter().find(|a| !a.dtype.is_float()) {
        return Err(Error::dtype(
            op,
            format!("a linear operand must be a float, got {a}"),
        ));
    }
    if let Some(a) = outs.iter().find(|a| !a.dtype.is_float()) {
        return Err(Error::dtype(
            op,
            format!("an output of a linear map must be a float, got {a}"),
        ));
    }
    let t = transpose.program();
    expect(
        op,
        "the transpose's inputs",
        &t.in_avals(),
        "the nonlinear operands and the outputs",
        &cat(&[nonlin, &outs]),
    )?;
    expect(
        op,
        "the transpose's outputs",
        &t.out_avals(),
        "the linear operands",
        lin,
    )?;
    Ok(outs)
}
