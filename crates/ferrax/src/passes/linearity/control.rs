//! Typed linearity through control flow: the kinds of a `cond`'s or a `scan`'s outputs.
//!
//! Part of the linearity checker (`linearity`), which routes the control-flow primitives
//! here: their outputs' kinds come from classifying their sub-programs with the operands'
//! kinds. A `cond` must not branch on a linear value, and its branches must agree: an output
//! that is linear in one branch and a non-zero constant in another would make the whole
//! affine. A `scan`'s carries are a fixpoint: a carry's kind joins its initial value's kind
//! with what the body gives back, until nothing changes (kinds only move up, from zero to
//! residual or linear, so this ends). The transposition of control flow (`transpose::control`)
//! reads the same kinds.

use crate::ir::{Closed, Equation, Error, Primitive, Program, Result};
use crate::passes::linearity::{classify_kinds, kind_of, Kind};

/// The kinds of a control-flow equation's outputs given its operands' kinds.
pub(crate) fn control_kinds(e: &Equation, ks: &[Kind]) -> Result<Vec<Kind>> {
    let not_linear = |msg: String| Error::NotLinear {
        op: e.prim.name().to_string(),
        msg,
        loc: e.loc,
    };
    match &e.prim {
        Primitive::Cond { branches } => cond_kinds(branches, ks).map_err(not_linear),
        Primitive::Scan {
            body,
            n_consts,
            n_carry,
            ..
        } => scan_kinds(body.program(), *n_consts, *n_carry, ks)
            .map(|k| k.outputs)
            .map_err(|err| match err {
                KindError::Msg(m) => not_linear(m),
                KindError::Inner(e) => e,
            }),
        // a while loop of residuals (and zeros: a literal counter) is a residual; the linear
        // part of a linearized loop is a `while_linear`, so a `while` on a linear value
        // (a function declared linear that loops) is refused
        Primitive::While { body, .. } => {
            if !ks.contains(&Kind::Linear) {
                Ok(vec![Kind::Residual; body.program().outputs.len()])
            } else {
                Err(not_linear(
                    "takes a linear value: its trip count would depend on it; linearize the \
                     loop instead (its linear part is a while_linear)"
                        .into(),
                ))
            }
        }
        // each member's body: the kinds flow through it as through a call
        Primitive::NamedMap { body, .. } => {
            let p = body.program();
            let kinds = classify_kinds(p, ks)?;
            Ok(output_kinds(p, &kinds))
        }
        // the kinds flow through the body (a custom rule changes derivatives, not values)
        Primitive::Checkpoint { .. }
        | Primitive::CustomJvp { .. }
        | Primitive::CustomVjp { .. } => {
            let body = e
                .prim
                .callee()
                .ok_or_else(|| Error::internal("a call without a callee"))?;
            let p = body.program();
            let kinds = classify_kinds(p, ks)?;
            Ok(output_kinds(p, &kinds))
        }
        // residuals (consts, trip count, initial carry) then linear operands: linear in the
        // latter, which must not be non-zero constants (the map would be affine)
        Primitive::WhileLinear {
            body,
            step,
            n_consts,
            ..
        } => {
            let n_res = n_consts + 1 + body.program().outputs.len();
            let n_out = step.program().outputs.len();
            let (res, lin) = ks.split_at(n_res.min(ks.len()));
            if res.contains(&Kind::Linear) {
                return Err(not_linear(
                    "reads a linear value as a residual (its consts, trip count or initial \
                     carry)"
                        .into(),
                ));
            }
            if lin.contains(&Kind::Residual) {
                return Err(not_linear(
                    "takes a non-zero constant as a tangent: the map would be affine".into(),
                ));
            }
            Ok(vec![
                match lin.contains(&Kind::Linear) {
                    true => Kind::Linear,
                    false => Kind::Zero,
                };
                n_out
            ])
        }
        // linear in the operands after the first `n_nonlin`, as declared by the custom_vjp
        // whose linearization made it (its transpose is the user's bwd)
        Primitive::CustomLin {
            forward, n_nonlin, ..
        } => {
            let (nonlin, lin) = ks.split_at((*n_nonlin).min(ks.len()));
            if nonlin.contains(&Kind::Linear) {
                return Err(not_linear(
                    "reads a linear value as one of its residuals or primal arguments".into(),
                ));
            }
            if lin.contains(&Kind::Residual) {
                return Err(not_linear(
                    "takes a non-zero constant as a tangent: the map would be affine".into(),
                ));
            }
            let kind = match lin.contains(&Kind::Linear) {
                true => Kind::Linear,
                false => Kind::Zero,
            };
            Ok(vec![kind; forward.program().outputs.len()])
        }
        other => Err(Error::internal(format!(
            "`{}` is not control flow but reached its linearity rule",
            other.name()
        ))),
    }
}

/// The kind of a value that is `a` on one path and `b` on another (a branch and another
/// branch, or a carry's initial value and its value after the body); `None` when one is
/// linear and the other a non-zero constant.
fn join(a: Kind, b: Kind) -> Option<Kind> {
    match (a, b) {
        (x, y) if x == y => Some(x),
        (Kind::Zero, x) | (x, Kind::Zero) => Some(x),
        _ => None,
    }
}

/// The kinds of a program's outputs.
fn output_kinds(p: &Program, kinds: &[Kind]) -> Vec<Kind> {
    p.outputs.iter().map(|a| kind_of(kinds, a)).collect()
}

fn cond_kinds(branches: &[Closed], ks: &[Kind]) -> std::result::Result<Vec<Kind>, String> {
    if ks.first() == Some(&Kind::Linear) {
        return Err("branches on a linear value (its index)".into());
    }
    let mut joined: Option<Vec<Kind>> = None;
    for (i, b) in branches.iter().enumerate() {
        let p = b.program();
        let kinds = classify_kinds(p, &ks[1..]).map_err(|e| format!("branch {i}: {e}"))?;
        let outs = output_kinds(p, &kinds);
        joined = Some(match joined {
            None => outs,
            Some(prev) => prev
                .iter()
                .zip(&outs)
                .enumerate()
                .map(|(k, (a, b))| {
                    join(*a, *b).ok_or_else(|| {
                        format!(
                            "output {k} is linear in one branch and a non-zero constant in \
                             branch {i} (affine, not linear)"
                        )
                    })
                })
                .collect::<std::result::Result<Vec<_>, _>>()?,
        });
    }
    Ok(joined.unwrap_or_default())
}

/// What classifying a scan gives.
pub(crate) struct ScanKinds {
    /// The kinds of the body's inputs (consts, carry at the fixpoint, xs).
    pub body_inputs: Vec<Kind>,
    /// The kinds of the body's variables.
    pub body: Vec<Kind>,
    /// The kinds of the scan's outputs (carry, then stacked ys).
    pub outputs: Vec<Kind>,
}

pub(crate) enum KindError {
    /// The scan is not linear: why.
    Msg(String),
    /// The body is not linear: its own error, which names the primitive and line.
    Inner(Error),
}

/// Classifies a scan body given the scan's operand kinds, with the carries' fixpoint.
pub(crate) fn scan_kinds(
    body: &Program,
    n_consts: usize,
    n_carry: usize,
    ks: &[Kind],
) -> std::result::Result<ScanKinds, KindError> {
    let mut in_kinds = ks.to_vec();
    loop {
        let kinds = classify_kinds(body, &in_kinds).map_err(KindError::Inner)?;
        let outs = output_kinds(body, &kinds);
        let mut changed = false;
        for i in 0..n_carry {
            let k = join(in_kinds[n_consts + i], outs[i]).ok_or_else(|| {
                KindError::Msg(format!(
                    "carry {i} is linear on one iteration and a non-zero constant on another \
                     (affine, not linear)"
                ))
            })?;
            if k != in_kinds[n_consts + i] {
                in_kinds[n_consts + i] = k;
                changed = true;
            }
        }
        if !changed {
            let mut outputs = in_kinds[n_consts..n_consts + n_carry].to_vec();
            outputs.extend_from_slice(&outs[n_carry..]);
            return Ok(ScanKinds {
                body_inputs: in_kinds,
                body: kinds,
                outputs,
            });
        }
    }
}
