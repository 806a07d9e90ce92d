//! Vectorization of `while`: the batching rule of a loop whose trip count is known only
//! when it runs.
//!
//! Part of the batching pass's control-flow rules (`control.rs` routes `while` here). Which
//! carries are batched is a fixpoint, as for scan. When the predicate does not vary across
//! examples, the loop stays one `while` over batched carries. When it does (each example
//! stops after its own number of steps), the batched loop runs while **any** example's
//! predicate holds, and an example whose predicate is false keeps its carry (a `select`
//! between the body's result and the carry): the loop runs as many steps as the slowest
//! example, and each example's result is what its own loop gives, as JAX does.

use crate::ir::{Aval, Closed, DType, Primitive, Program, Result};
use crate::passes::vmap::control::{batch_sub, BatchFn};
use crate::passes::vmap::dims::{align, move_axis, Batched};
use crate::trace::{checked, trace_closed, Emit, Tensor};

/// The batching rule of `while(cond_consts..., body_consts..., carry...)`.
pub(crate) fn batch_while(
    e: &Emit,
    prim: &Primitive,
    (cond, body): (&Closed, &Closed),
    (ncc, nbc): (usize, usize),
    x: &[Batched],
    size: usize,
    run: BatchFn,
) -> Result<Vec<Batched>> {
    let consts = &x[..ncc + nbc];
    let carry = &x[ncc + nbc..];
    let dims = |batched: &[bool]| -> Vec<Option<usize>> {
        batched.iter().map(|b| b.then_some(0)).collect()
    };
    let consts_b: Vec<bool> = consts.iter().map(|v| v.1.is_some()).collect();
    let carry_b: Vec<bool> = carry.iter().map(|v| v.1.is_some()).collect();
    let mut carry_b = batched_carries(e, body.program(), &consts_b[ncc..], carry_b, size, run)?;
    let cond_in = |carry_b: &[bool]| {
        let mut b = consts_b[..ncc].to_vec();
        b.extend_from_slice(carry_b);
        dims(&b)
    };
    let (_, pred_b) = batch_sub(
        e,
        cond.program(),
        &cond_in(&carry_b),
        &[false],
        size,
        run,
        "while",
    )?;
    let per_example = pred_b.first() == Some(&true);
    if per_example {
        // examples stop at different steps: every carry is batched, to keep the stopped ones
        carry_b = vec![true; carry.len()];
    }
    let mut body_in = consts_b[ncc..].to_vec();
    body_in.extend_from_slice(&carry_b);
    let (body_b, _) = batch_sub(
        e,
        body.program(),
        &dims(&body_in),
        &carry_b,
        size,
        run,
        "while",
    )?;
    let (cond_b, _) = batch_sub(
        e,
        cond.program(),
        &cond_in(&carry_b),
        &[per_example],
        size,
        run,
        "while",
    )?;
    // the operands: batched consts with their batch at 0, carries aligned where batched
    let mut const_args = Vec::with_capacity(consts.len());
    for v in consts {
        const_args.push(checked(match v.1 {
            Some(d) => move_axis(e, &v.0, d, 0),
            None => v.0.clone(),
        })?);
    }
    let mut carry_args = Vec::with_capacity(carry.len());
    for (v, b) in carry.iter().zip(&carry_b) {
        carry_args.push(checked(if *b {
            align(e, v, 0, size)
        } else {
            v.0.clone()
        })?);
    }
    let (prim, args) = if per_example {
        let (new_cond, new_body) = stop_per_example(&cond_b, &body_b, ncc, nbc)?;
        // the body reads the cond's consts too, to know which examples have stopped
        let mut args = const_args[..ncc].to_vec();
        args.extend_from_slice(&const_args);
        args.extend(carry_args);
        let prim = prim.while_like(Closed::new(new_cond), Closed::new(new_body), ncc, ncc + nbc);
        (prim, args)
    } else {
        let mut args = const_args;
        args.extend(carry_args);
        let prim = prim.while_like(Closed::new(cond_b), Closed::new(body_b), ncc, nbc);
        (prim, args)
    };
    let refs: Vec<&Tensor> = args.iter().collect();
    let outs = e.multi(prim, &refs)?;
    Ok(outs
        .into_iter()
        .zip(carry_b)
        .map(|(t, b)| (t, b.then_some(0)))
        .collect())
}

/// Which carries of a loop body (taking consts then the carry, giving the carry back) are
/// batched, given which consts are and which initial carries are: a fixpoint, the set only
/// growing.
pub(super) fn batched_carries(
    e: &Emit,
    body: &Program,
    consts_b: &[bool],
    mut carry_b: Vec<bool>,
    size: usize,
    run: BatchFn,
) -> Result<Vec<bool>> {
    loop {
        let mut in_b = consts_b.to_vec();
        in_b.extend_from_slice(&carry_b);
        let dims: Vec<Option<usize>> = in_b.iter().map(|b| b.then_some(0)).collect();
        let (_, out_b) = batch_sub(e, body, &dims, &carry_b, size, run, "a loop")?;
        if out_b == carry_b {
            return Ok(carry_b);
        }
        carry_b = out_b;
    }
}

/// From a batched cond giving one bool per example and a batched body (every carry batched
/// at 0): a cond that holds while any example's does, and a body (taking the cond's consts,
/// then its own, then the carry) that advances only the examples whose cond holds.
fn stop_per_example(
    cond_b: &Program,
    body_b: &Program,
    ncc: usize,
    nbc: usize,
) -> Result<(Program, Program)> {
    let e = Emit { loc: None };
    let any = |pred: &Tensor| -> Result<Tensor> {
        let n = e.op1(
            Primitive::ReduceMax { axes: vec![0] },
            &e.convert(pred, DType::I32),
        );
        checked(e.op(Primitive::Gt, &[&n, &e.zeros(&Aval::scalar(DType::I32))]))
    };
    let new_cond = trace_closed(
        "the batched predicate of `while`",
        &cond_b.in_avals(),
        |args| Ok(vec![any(&cond_b.call(&args)?[0])?]),
    )?;
    let mut in_avals = cond_b.in_avals()[..ncc].to_vec();
    in_avals.extend(body_b.in_avals());
    let new_body = trace_closed("the batched body of `while`", &in_avals, |args| {
        let (cc, rest) = args.split_at(ncc);
        let carry = &rest[nbc..];
        let mut cond_args = cc.to_vec();
        cond_args.extend_from_slice(carry);
        let going = cond_b.call(&cond_args)?.remove(0);
        let next = body_b.call(rest)?;
        next.iter()
            .zip(carry)
            .map(|(n, c)| {
                let a = c.aval()?;
                let pick = if a.ndim() == 1 {
                    going.clone()
                } else {
                    e.op1(
                        Primitive::BroadcastInDim {
                            shape: a.shape.clone(),
                            broadcast_dimensions: vec![0],
                        },
                        &going,
                    )
                };
                checked(e.op(Primitive::Select, &[&pick, n, c]))
            })
            .collect()
    })?;
    Ok((new_cond, new_body))
}
