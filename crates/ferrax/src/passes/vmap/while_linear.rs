//! Vectorization of `while_linear`, the linear part of a linearized while loop.
//!
//! Part of the batching pass's control-flow rules (`control.rs` routes `while_linear` here).
//! Which primal carries and which linear carries are batched are fixpoints through the body
//! and the step, as for a scan; the batched primitive is one `while_linear` over batched
//! sub-programs. That covers `jacrev` (a batch of cotangents over one loop) and `hessian`
//! (a batch of tangents through the primal carries).
//!
//! When the trip count itself is batched (vmap of `grad` of a loop whose examples stop at
//! different steps), the loop runs for the largest count and each example's steps past its
//! own count leave its linear carry as it is: the primitive is first rewritten, unbatched,
//! to carry a step counter and read the example's count as a const, its step selecting
//! between the step's result and the carry it was given (and a zero for the fixed
//! tangents' cotangents); that rewritten primitive is then batched as above. The primal
//! carries past an example's count are computed and ignored.

use crate::ir::{Aval, Closed, DType, Error, Primitive, Result};
use crate::passes::vmap::control::{batch_sub, BatchFn};
use crate::passes::vmap::dims::{align, move_axis, Batched};
use crate::passes::vmap::while_loop::batched_carries;
use crate::trace::{checked, trace_closed, Emit, Tensor};

/// The batching rule of `while_linear(consts..., n, x0..., lin...)`.
pub(crate) fn batch_while_linear(
    e: &Emit,
    prim: &Primitive,
    x: &[Batched],
    size: usize,
    run: BatchFn,
) -> Result<Vec<Batched>> {
    let Primitive::WhileLinear {
        body,
        step,
        n_consts,
        n_lin_consts,
        transposed,
        checkpoints,
    } = prim
    else {
        return Err(Error::internal("batch_while_linear on another primitive"));
    };
    let (nc, nl, transposed) = (*n_consts, *n_lin_consts, *transposed);
    let n_carry = body.program().outputs.len();
    if let Some(d) = x[nc].1 {
        let (masked, args) = per_example_counts(e, prim, x, d)?;
        return batch_while_linear(e, &masked, &args, size, run);
    }
    let dims = |batched: &[bool]| -> Vec<Option<usize>> {
        batched.iter().map(|b| b.then_some(0)).collect()
    };
    let flags = |xs: &[Batched]| -> Vec<bool> { xs.iter().map(|v| v.1.is_some()).collect() };
    let consts_b = flags(&x[..nc]);
    // the primal carries the body makes batched
    let carry_b = flags(&x[nc + 1..nc + 1 + n_carry]);
    let carry_b = batched_carries(e, body.program(), &consts_b, carry_b, size, run)?;
    // the linear operands' flags, and the linear carry's (a fixpoint through the step)
    let lin = &x[nc + 1 + n_carry..];
    let mut lin_b = flags(lin);
    let step_in = |lin_b: &[bool]| {
        let mut b = consts_b.clone();
        b.extend_from_slice(&carry_b);
        b.extend_from_slice(lin_b);
        dims(&b)
    };
    let n_step_out = step.program().outputs.len();
    let carried = |lin_b: &[bool]| -> Vec<bool> {
        match transposed {
            false => lin_b[nl..].to_vec(),
            true => lin_b.to_vec(),
        }
    };
    let mut out_force = vec![false; n_step_out];
    loop {
        let c = carried(&lin_b);
        out_force[n_step_out - c.len()..].copy_from_slice(&c);
        let (_, out_b) = batch_sub(
            e,
            step.program(),
            &step_in(&lin_b),
            &out_force,
            size,
            run,
            "while_linear",
        )?;
        let back = &out_b[n_step_out - c.len()..];
        if back == c.as_slice() {
            out_force = out_b;
            break;
        }
        let start = lin_b.len() - c.len();
        lin_b[start..].copy_from_slice(back);
    }
    let mut body_in = consts_b.clone();
    body_in.extend_from_slice(&carry_b);
    let (body_b, _) = batch_sub(
        e,
        body.program(),
        &dims(&body_in),
        &carry_b,
        size,
        run,
        "while_linear",
    )?;
    let (step_b, out_b) = batch_sub(
        e,
        step.program(),
        &step_in(&lin_b),
        &out_force,
        size,
        run,
        "while_linear",
    )?;
    // operands: batched ones with their batch at 0, carries broadcast where now batched
    let mut args: Vec<Tensor> = Vec::with_capacity(x.len());
    for v in &x[..nc] {
        args.push(checked(match v.1 {
            Some(d) => move_axis(e, &v.0, d, 0),
            None => v.0.clone(),
        })?);
    }
    args.push(x[nc].0.clone());
    let wanted = carry_b.iter().chain(&lin_b);
    for (v, b) in x[nc + 1..].iter().zip(wanted) {
        args.push(checked(match b {
            true => align(e, v, 0, size),
            false => v.0.clone(),
        })?);
    }
    let refs: Vec<&Tensor> = args.iter().collect();
    let outs = e.multi(
        Primitive::WhileLinear {
            body: Closed::new(body_b),
            step: Closed::new(step_b),
            n_consts: nc,
            n_lin_consts: nl,
            transposed,
            checkpoints: *checkpoints,
        },
        &refs,
    )?;
    Ok(outs
        .into_iter()
        .zip(out_b)
        .map(|(t, b)| (t, b.then_some(0)))
        .collect())
}

/// A bool scalar broadcast to an aval's shape, to select between two values of it.
fn pick(e: &Emit, pred: &Tensor, a: &Aval) -> Tensor {
    match a.ndim() {
        0 => pred.clone(),
        _ => e.op1(
            Primitive::BroadcastInDim {
                shape: a.shape.clone(),
                broadcast_dimensions: vec![],
            },
            pred,
        ),
    }
}

/// The rewrite for a batched trip count (at dimension `d` of `x[n_consts]`): an unbatched
/// `while_linear` that also carries a step counter and reads its example's count as one
/// more const, its step leaving the linear carry as it is past that count, run for the
/// largest count; and its operands.
fn per_example_counts(
    e: &Emit,
    prim: &Primitive,
    x: &[Batched],
    d: usize,
) -> Result<(Primitive, Vec<Batched>)> {
    let Primitive::WhileLinear {
        body,
        step,
        n_consts: nc,
        n_lin_consts: nl,
        transposed,
        checkpoints,
    } = prim
    else {
        return Err(Error::internal("per_example_counts on another primitive"));
    };
    let (nc, nl) = (*nc, *nl);
    let (b, s) = (body.program(), step.program());
    let n_carry = b.outputs.len();
    let count = Aval::scalar(DType::I64);
    // body: (consts, count, carry, k) -> (carry' where k < count else carry, k + 1): an
    // example past its own count keeps its carry, as its own loop stopped there
    let mut body_in = b.in_avals();
    body_in.insert(nc, count.clone());
    body_in.push(count.clone());
    let carry_avals = b.out_avals();
    let new_body = trace_closed("the counting body of `while_linear`", &body_in, |args| {
        let k = &args[args.len() - 1];
        let active = k.less(&args[nc]);
        let carry = &args[nc + 1..args.len() - 1];
        let mut ins = args[..nc].to_vec();
        ins.extend_from_slice(carry);
        let mut out = b
            .call(&ins)?
            .into_iter()
            .zip(carry)
            .zip(&carry_avals)
            .map(|((new, old), a)| {
                checked(e.op(Primitive::Select, &[&pick(e, &active, a), &new, old]))
            })
            .collect::<Result<Vec<_>>>()?;
        out.push(k + &Tensor::scalar(1i64));
        Ok(out)
    })?;
    // step: (consts, count, carry, k, lin) -> the step's outputs where k < count, else the
    // carry given (and zeros for the fixed tangents' cotangents)
    let mut step_in = s.in_avals();
    step_in.insert(nc, count.clone());
    step_in.insert(nc + 1 + n_carry, count.clone());
    let out_avals = s.out_avals();
    let new_step = trace_closed("the masked step of `while_linear`", &step_in, |args| {
        let own = &args[nc];
        let k = &args[nc + 1 + n_carry];
        let mut ins = args[..nc].to_vec();
        ins.extend_from_slice(&args[nc + 1..nc + 1 + n_carry]);
        let lin = &args[nc + 2 + n_carry..];
        ins.extend_from_slice(lin);
        let active = k.less(own);
        let outs = s.call(&ins)?;
        outs.into_iter()
            .zip(&out_avals)
            .enumerate()
            .map(|(i, (o, a))| {
                // transposed: the fixed tangents' cotangents, then the carry's; forward: the
                // tangent carry, after the fixed tangents among the linear operands
                let kept = match (*transposed, i < nl) {
                    (true, true) => e.zeros(a),
                    (true, false) => lin[i - nl].clone(),
                    (false, _) => lin[nl + i].clone(),
                };
                checked(e.op(Primitive::Select, &[&pick(e, &active, a), &o, &kept]))
            })
            .collect()
    })?;
    // the largest count (0 over no examples: the maximum of none is i64::MIN)
    let largest = e.checked(Primitive::ReduceMax { axes: vec![d] }, &[&x[nc].0])?;
    let largest = e.checked(Primitive::Max, &[&largest, &Tensor::scalar(0i64)])?;
    let mut args: Vec<Batched> = x[..nc].to_vec();
    args.push(x[nc].clone());
    args.push((largest, None));
    args.extend_from_slice(&x[nc + 1..nc + 1 + n_carry]);
    args.push((Tensor::scalar(0i64), None));
    args.extend_from_slice(&x[nc + 1 + n_carry..]);
    let masked = Primitive::WhileLinear {
        body: Closed::new(new_body),
        step: Closed::new(new_step),
        n_consts: nc + 1,
        n_lin_consts: nl,
        transposed: *transposed,
        checkpoints: *checkpoints,
    };
    Ok((masked, args))
}
