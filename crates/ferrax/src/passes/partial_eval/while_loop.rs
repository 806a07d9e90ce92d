//! Partial evaluation of a `while` loop: a counting primal loop and a `while_linear`.
//!
//! Part of partial evaluation's control-flow rules (`control.rs` routes a `while` with known
//! and unknown operands here). A scan's residuals can be stacked because its length is
//! static; a while loop's trip count is known only when it runs, and avals are static, so the
//! known side stores no per-iteration values. Instead:
//!
//! * the **known loop** is the loop's known part (its primal carries) with one more carry,
//!   an i64 counter: it gives the known outputs and the trip count `n`;
//! * the **unknown side** is one `while_linear` whose residuals are the body's known consts,
//!   `n` and the known carries' initial values: it recomputes each step's primal carry from
//!   there (the `body`: the known part of the original body) and applies that step's linear
//!   map (the `step`: the known part again, for the residuals, then the unknown part, giving
//!   the unknown carries; both from the body split like any program, so a loop inside the
//!   body is split too and the step never carries a primal value beside a tangent).
//!
//! So linearizing a while loop here stores one carry whatever its trip count, and the linear
//! map redoes primal work each time it is applied (`backend/reference/while_linear.rs`
//! bounds it; the transposed sweep keeps at most the loop's `checkpoints` carries at once).
//! A loop that reaches this rule is one inside a trace (or `jit_linearize`, or
//! `linearize_program`), one with a `checkpoints` bound, or one inside other control flow:
//! `linearize` on arrays first turns a top-level loop that
//! keeps every carry into a scan of its counted steps, whose linearization is a tape
//! (`api/while_tape.rs`). The decision and its alternatives are in ARCHITECTURE.md.

use crate::ir::dependence::while_carry_dependence;
use crate::ir::{flagged, Atom, Aval, Closed, DType, Equation, Error, Primitive, Result, Scalar};
use crate::passes::hoist::Rewriter;
use crate::passes::partial_eval::control::{program_unknowns, split_control};
use crate::passes::partial_eval::split_core;
use crate::trace::{trace_closed, Tensor};

/// Splits a while loop with known and unknown operands; returns which outputs are unknown.
pub(crate) fn split_while(rw: &mut Rewriter, e: &Equation, ins_uk: &[bool]) -> Result<Vec<bool>> {
    let Primitive::While {
        cond,
        body,
        n_cond_consts: ncc,
        n_body_consts: nbc,
        checkpoints,
        ..
    } = &e.prim
    else {
        return Err(Error::internal("split_while on another primitive"));
    };
    let (ncc, nbc) = (*ncc, *nbc);
    let carry_uk = while_carry_dependence(body.program(), ncc, nbc, ins_uk)?;
    let mut cond_uk = ins_uk[..ncc].to_vec();
    cond_uk.extend_from_slice(&carry_uk);
    if program_unknowns(cond.program(), &cond_uk)?[0] {
        return Err(Error::NotLinear {
            op: "while".into(),
            msg: "the loop's predicate depends on a tangent".into(),
            loc: e.loc,
        });
    }
    let mut body_uk = ins_uk[ncc..].to_vec();
    body_uk[nbc..].copy_from_slice(&carry_uk);

    // the primal step: the known part of the body, known consts and carries to known carries
    let split = split_control(body.program(), &body_uk)?;
    let core = split_core(&split, &body_uk, &carry_uk)?;
    let n_known_carry = carry_uk.iter().filter(|u| !**u).count();
    let mut primal_step = core.known.clone();
    primal_step.outputs.truncate(n_known_carry);
    let primal_step = primal_step.dce();

    let all_in = body.program().in_avals();
    let known_in: Vec<Aval> = flagged(&all_in, &body_uk.iter().map(|u| !u).collect::<Vec<_>>());
    let unknown_in: Vec<Aval> = flagged(&all_in, &body_uk);
    let nbk = body_uk[..nbc].iter().filter(|u| !**u).count();
    let nbu = nbc - nbk;

    // the linear step: (known consts, known carry, unknown consts, unknown carry) to the
    // unknown carry: the known part recomputes the residuals, then the unknown part (split
    // like the body's control flow, so a loop inside it is linear or known, never both)
    let mut step_in = known_in.clone();
    step_in.extend(unknown_in.iter().cloned());
    let (known_part, unknown_part) = (core.known.clone(), core.unknown.clone());
    let step = trace_closed("the linear step of a while loop", &step_in, |args| {
        let (known, unknown) = args.split_at(known_in.len());
        let mut ins = known_part.call(known)?.split_off(n_known_carry);
        ins.extend_from_slice(unknown);
        unknown_part.call(&ins)
    })?
    .dce();
    let b = body.program();

    // the known loop: the known carries and a counter
    let c = cond.program();
    let mut cond_in: Vec<Aval> = c.in_avals()[..ncc].to_vec();
    let carry_avals = b.out_avals();
    let known_carry: Vec<Aval> = flagged(
        &carry_avals,
        &carry_uk.iter().map(|u| !u).collect::<Vec<_>>(),
    );
    cond_in.extend(known_carry.iter().cloned());
    cond_in.push(Aval::scalar(DType::I64));
    let counting_cond = trace_closed("the cond of a counting while loop", &cond_in, |args| {
        let mut known = args[ncc..args.len() - 1].iter();
        let mut full: Vec<Tensor> = args[..ncc].to_vec();
        for (a, u) in carry_avals.iter().zip(&carry_uk) {
            // the cond does not read the unknown carries (checked above)
            full.push(match u {
                true => Tensor::zeros(&a.shape, a.dtype),
                false => known
                    .next()
                    .cloned()
                    .ok_or_else(|| Error::internal("split_while: carry"))?,
            });
        }
        c.call(&full)
    })?
    .dce();
    let mut counting_in = primal_step.in_avals();
    counting_in.push(Aval::scalar(DType::I64));
    let counting_body = trace_closed("the body of a counting while loop", &counting_in, |args| {
        let (x, count) = args.split_at(args.len() - 1);
        let mut out = primal_step.call(x)?;
        out.push(&count[0] + &Tensor::scalar(1i64));
        Ok(out)
    })?;
    let known_ops: Vec<Atom> = e
        .inputs
        .iter()
        .enumerate()
        .filter(|(i, _)| *i < ncc || !body_uk[i - ncc])
        .map(|(_, a)| a.clone())
        .chain(std::iter::once(Atom::Lit(Scalar::I64(0))))
        .collect();
    let n = rw.fresh(Aval::scalar(DType::I64));
    let mut known_outs: Vec<_> = flagged(&e.outs, &carry_uk.iter().map(|u| !u).collect::<Vec<_>>());
    known_outs.push(n);
    rw.eqns.push(Equation {
        prim: e.prim.while_like(
            Closed::new(counting_cond),
            Closed::new(counting_body),
            ncc,
            nbk,
        ),
        inputs: known_ops,
        outs: known_outs,
        loc: e.loc,
    });

    // the linear loop: known consts, n, initial known carries, unknown consts and carries
    let body_ops = &e.inputs[ncc..];
    let pick = |known: bool, range: std::ops::Range<usize>| -> Vec<Atom> {
        range
            .filter(|&i| body_uk[i] != known)
            .map(|i| body_ops[i].clone())
            .collect()
    };
    let mut ops = pick(true, 0..nbc);
    ops.push(Atom::Var(n));
    ops.extend(pick(true, nbc..body_ops.len()));
    ops.extend(pick(false, 0..nbc));
    ops.extend(pick(false, nbc..body_ops.len()));
    rw.eqns.push(Equation {
        prim: Primitive::WhileLinear {
            body: Closed::new(primal_step),
            step: Closed::new(step),
            n_consts: nbk,
            n_lin_consts: nbu,
            transposed: false,
            checkpoints: *checkpoints,
        },
        inputs: ops,
        outs: flagged(&e.outs, &carry_uk),
        loc: e.loc,
    });
    Ok(carry_uk)
}
