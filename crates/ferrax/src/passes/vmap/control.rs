//! Vectorization of control flow: the batching rules of `cond` and `scan`.
//!
//! Part of the batching pass (`vmap.rs`): its interpreter, `batch_call`, routes every
//! equation with sub-programs here instead of to the single-output `batch_rule`. A control-flow
//! primitive stays one primitive: its sub-programs are batched by running that same
//! interpreter on them inside a fresh trace (`trace_flat`), and the result is bound as one new
//! `cond` or `scan`. Inside a batched sub-program every batched value has its batch dimension
//! at 0. The interpreter is handed to these rules as an argument (`BatchFn`) rather than
//! imported, so this file and `vmap.rs` do not import each other.
//!
//! * **scan**: which carries are batched is a fixpoint. A carry is batched if its initial value
//!   is, or if the body, run with the carries batched so far, makes its new value batched;
//!   the set only grows, so at most one round per carry plus one. A batched carry whose initial
//!   value is not batched is broadcast once before the loop; an unbatched const (a
//!   loop-invariant value) is never broadcast. Batched xs get their batch dimension at axis 1
//!   (axis 0 is the scanned one), so each slice has it at 0; the stacked ys come out batched
//!   at axis 1 and the final carries at axis 0.
//! * **cond** with an unbatched index: each branch is batched; an output batched in any branch
//!   is batched (at 0) in every branch, broadcast where that branch does not make it vary.
//! * **cond** with a batched index (a per-example choice): every branch runs on every example
//!   and `select` picks each example's result by its index, clamped to the branches exactly
//!   as the reference evaluator clamps it. So that reverse mode is not poisoned by a branch's
//!   derivative at examples that do not take it, each branch runs on guarded operands (those
//!   examples see the operands of the first example that takes it) inside a two-branch `cond`
//!   on an unbatched index, "does any example take it", that skips it (zeros) otherwise.

use crate::ir::{Aval, Closed, DType, Error, Primitive, Program, Result, ScanShape};
use crate::passes::vmap::collective::{batching, is_batching};
use crate::passes::vmap::custom::batch_custom;
use crate::passes::vmap::dims::{align, move_axis, Batched};
use crate::passes::vmap::while_linear::batch_while_linear;
use crate::passes::vmap::while_loop::batch_while;
use crate::trace::{checked, trace_closed, Emit, Tensor};

/// The batching interpreter (`vmap::batch_call`): a program run on arguments with optional
/// batch dimensions and a mapped size, giving its outputs and their batch dimensions.
pub(crate) type BatchFn =
    fn(&Program, &[Tensor], &[Option<usize>], usize) -> Result<(Vec<Tensor>, Vec<Option<usize>>)>;

/// The batching rule of a control-flow primitive with at least one batched operand: its
/// outputs and their batch dimensions.
pub(crate) fn batch_control(
    e: &Emit,
    prim: &Primitive,
    x: &[Batched],
    size: usize,
    run: BatchFn,
) -> Result<Vec<Batched>> {
    match prim {
        Primitive::Cond { branches } => {
            let Some((index, operands)) = x.split_first() else {
                return Err(Error::internal("batching `cond`: no index operand"));
            };
            if branches.is_empty() {
                return Err(Error::internal("batching `cond`: no branches"));
            }
            match index.1 {
                None => batch_branches(e, branches, &index.0, operands, size, run),
                Some(_) => select_branches(e, branches, index, operands, size, run),
            }
        }
        Primitive::WhileLinear { .. } => batch_while_linear(e, prim, x, size, run),
        Primitive::CustomJvp { .. } | Primitive::CustomVjp { .. } | Primitive::CustomLin { .. } => {
            batch_custom(e, prim, x, size, run)
        }
        // a checkpoint of the batched body, under the same policy
        Primitive::Checkpoint { body, policy } => {
            let in_dims: Vec<Option<usize>> = x.iter().map(|v| v.1).collect();
            let (b, out_b) = batch_sub(e, body.program(), &in_dims, &[], size, run, "checkpoint")?;
            let refs: Vec<&Tensor> = x.iter().map(|v| &v.0).collect();
            let outs = e.multi(
                Primitive::Checkpoint {
                    body: Closed::new(b),
                    policy: policy.clone(),
                },
                &refs,
            )?;
            Ok(outs
                .into_iter()
                .zip(out_b)
                .map(|(t, b)| (t, b.then_some(0)))
                .collect())
        }
        Primitive::NamedMap {
            body,
            axis_name,
            axis_size,
        } => batch_named_map(e, body, (axis_name, *axis_size), x, size, run),
        Primitive::While {
            cond,
            body,
            n_cond_consts,
            n_body_consts,
            ..
        } => batch_while(
            e,
            prim,
            (cond, body),
            (*n_cond_consts, *n_body_consts),
            x,
            size,
            run,
        ),
        other => match other.as_scan() {
            Some((body, shape)) => batch_scan(e, body, shape, x, size, run),
            None => Err(Error::internal(format!(
                "`{}` reached the control-flow batching rules",
                other.name()
            ))),
        },
    }
}

/// A `named_map` over a batch: the members' dimension stays first and the batch goes second,
/// so each member's body runs on a batch at its dimension 0 (the body batched with the
/// same interpreter); outputs that vary along the batch have it at dimension 1. Collectives
/// over the map's own axis keep their meaning inside the body: if the batch is an outer
/// map's axis of the same name, the inner binding hides it.
fn batch_named_map(
    e: &Emit,
    body: &Closed,
    (axis_name, axis_size): (&str, usize),
    x: &[Batched],
    size: usize,
    run: BatchFn,
) -> Result<Vec<Batched>> {
    let in_dims: Vec<Option<usize>> = x.iter().map(|v| v.1.map(|_| 0)).collect();
    let args: Vec<Tensor> = x
        .iter()
        .map(|(t, b)| match b {
            Some(b) => move_axis(e, t, *b, 1),
            None => t.clone(),
        })
        .collect();
    let hidden = is_batching(axis_name).then_some("");
    let (b, out_b) = batching(hidden, || {
        batch_sub(e, body.program(), &in_dims, &[], size, run, "named_map")
    })?;
    let refs: Vec<&Tensor> = args.iter().collect();
    let outs = e.multi(
        Primitive::NamedMap {
            body: Closed::new(b),
            axis_name: axis_name.to_string(),
            axis_size,
        },
        &refs,
    )?;
    Ok(outs
        .into_iter()
        .zip(out_b)
        .map(|(t, b)| (t, b.then_some(1)))
        .collect())
}

/// A sub-program batched by the interpreter: its inputs batched at `in_dims` (`None`: not
/// batched), every output that comes out batched, or that `force` asks for, batched at 0
/// (broadcast where it does not vary). Returns the program and which outputs are batched.
pub(super) fn batch_sub(
    e: &Emit,
    p: &Program,
    in_dims: &[Option<usize>],
    force: &[bool],
    size: usize,
    run: BatchFn,
    op: &str,
) -> Result<(Program, Vec<bool>)> {
    let in_avals: Vec<Aval> = p
        .in_avals()
        .into_iter()
        .zip(in_dims)
        .map(|(a, d)| match d {
            Some(d) => {
                let mut shape = a.shape.clone();
                shape.insert(*d, size);
                Aval::new(shape, a.dtype)
            }
            None => a,
        })
        .collect();
    let mut batched = force.to_vec();
    batched.resize(p.outputs.len(), false);
    // The interpreter reads only the sub-program's arguments and its own constants, so
    // nothing of an enclosing trace can be captured.
    let what = format!("the batched sub-program of `{op}`");
    let program = trace_closed(&what, &in_avals, |args| {
        let (outs, dims) = run(p, &args, in_dims, size)?;
        outs.into_iter()
            .zip(dims)
            .zip(batched.iter_mut())
            .map(|((t, d), b)| {
                *b |= d.is_some();
                if *b {
                    checked(align(e, &(t, d), 0, size))
                } else {
                    Ok(t)
                }
            })
            .collect()
    })?;
    Ok((program, batched))
}

/// 1 when some example takes the branch (`pick` has a true element), else 0: the index of
/// the `cond` that skips a branch nobody takes.
fn taken_by_any(e: &Emit, pick: &Tensor) -> Result<Tensor> {
    let as_int = e.convert(pick, DType::I32);
    e.checked(Primitive::ReduceMax { axes: vec![0] }, &[&as_int])
}

/// The branch that runs instead of a batched branch no example takes: zeros of its outputs'
/// avals, from the same operands.
fn skip_branch(p: &Program) -> Result<Program> {
    let outs = p.out_avals();
    trace_closed("the zero branch of a batched `cond`", &p.in_avals(), |_| {
        let e = Emit { loc: None };
        Ok(outs.iter().map(|a| e.zeros(a)).collect())
    })
}

/// A batched float operand (batch dimension 0) in which every example that does not take the
/// branch (`pick` false) holds the operand of the first example that does, so the branch and
/// its derivatives only ever see values it was written for. When no example takes the
/// branch it is not run (see `select_branches`), so what those examples hold does not matter.
/// Unbatched and non-float operands are returned as they are (no derivative flows to
/// integers, and an unbatched value is every example's own).
fn guard(e: &Emit, pick: &Tensor, v: &Batched) -> Result<Tensor> {
    let a = v.0.aval()?;
    if v.1.is_none() || !a.dtype.is_float() {
        return Ok(v.0.clone());
    }
    let size = a.shape[0];
    let spread = |t: &Tensor, dims: Vec<usize>| {
        e.op1(
            Primitive::BroadcastInDim {
                shape: a.shape.clone(),
                broadcast_dimensions: dims,
            },
            t,
        )
    };
    // the first example that takes the branch (argmax returns the first maximum; 0 if none)
    let first = e.op1(
        Primitive::Argmax {
            axis: 0,
            index_dtype: DType::I32,
        },
        &e.convert(pick, DType::I32),
    );
    let lanes = e.op(
        Primitive::Iota {
            dtype: DType::I32,
            shape: vec![size],
            dimension: 0,
        },
        &[],
    );
    let first_b = e.op1(
        Primitive::BroadcastInDim {
            shape: vec![size],
            broadcast_dimensions: vec![],
        },
        &first,
    );
    let is_first = spread(&e.op(Primitive::Eq, &[&lanes, &first_b]), vec![0]);
    // its row, by selecting it and summing over the examples (the others add exact zeros)
    let only_first = e.op(Primitive::Select, &[&is_first, &v.0, &e.zeros(&a)]);
    let row = e.op1(Primitive::ReduceSum { axes: vec![0] }, &only_first);
    let rest: Vec<usize> = (1..a.ndim()).collect();
    let row_b = spread(&row, rest);
    e.checked(Primitive::Select, &[&spread(pick, vec![0]), &v.0, &row_b])
}

fn batch_scan(
    e: &Emit,
    body: &Closed,
    s: ScanShape,
    x: &[Batched],
    size: usize,
    run: BatchFn,
) -> Result<Vec<Batched>> {
    let p = body.program();
    let n_fixed = s.n_consts + s.n_carry;
    if x.len() < n_fixed || p.outputs.len() < s.n_carry {
        return Err(Error::internal(format!(
            "batching `scan`: {} operands and {} body outputs for {} consts and {} carries",
            x.len(),
            p.outputs.len(),
            s.n_consts,
            s.n_carry
        )));
    }
    let is_carry = |i: usize| (s.n_consts..n_fixed).contains(&i);
    // The carry fixpoint: start from the batched initial values; a round that makes a new
    // carry batched is run again with it batched (the set only grows, so this ends).
    let mut carry_b: Vec<bool> = x[s.n_consts..n_fixed]
        .iter()
        .map(|v| v.1.is_some())
        .collect();
    let (new_body, out_b) = loop {
        // inside the body, every batched value has its batch dimension at 0
        let in_dims: Vec<Option<usize>> = x
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let b = if is_carry(i) {
                    carry_b[i - s.n_consts]
                } else {
                    v.1.is_some()
                };
                b.then_some(0)
            })
            .collect();
        let (prog, out_b) = batch_sub(e, p, &in_dims, &carry_b, size, run, "scan")?;
        if out_b[..s.n_carry] == carry_b[..] {
            break (prog, out_b);
        }
        carry_b = out_b[..s.n_carry].to_vec();
    };
    // the operands, laid out as the new body expects them
    let mut args = Vec::with_capacity(x.len());
    for (i, v) in x.iter().enumerate() {
        let t = if i < s.n_consts {
            // a const keeps its shape unless it is batched: loop invariants are not copied
            match v.1 {
                Some(d) => move_axis(e, &v.0, d, 0),
                None => v.0.clone(),
            }
        } else if is_carry(i) {
            if carry_b[i - s.n_consts] {
                align(e, v, 0, size)
            } else {
                v.0.clone()
            }
        } else {
            // axis 0 is scanned, so the batch goes to axis 1 and each slice has it at 0
            match v.1 {
                Some(d) => move_axis(e, &v.0, d, 1),
                None => v.0.clone(),
            }
        };
        args.push(checked(t)?);
    }
    let prim = Primitive::scan(Closed::new(new_body), s);
    let refs: Vec<&Tensor> = args.iter().collect();
    let outs = e.multi(prim, &refs)?;
    // final carries batched at 0, stacked ys at 1 (behind the scanned axis)
    Ok(outs
        .into_iter()
        .zip(out_b)
        .enumerate()
        .map(|(k, (t, b))| {
            let dim = if k < s.n_carry { 0 } else { 1 };
            (t, b.then_some(dim))
        })
        .collect())
}

/// `cond` with an unbatched index: one `cond` whose branches are batched, every branch
/// giving the union of the branches' batched outputs (at 0).
fn batch_branches(
    e: &Emit,
    branches: &[Closed],
    index: &Tensor,
    operands: &[Batched],
    size: usize,
    run: BatchFn,
) -> Result<Vec<Batched>> {
    // operands keep their batch dimensions: the branches take them as they are
    let in_dims: Vec<Option<usize>> = operands.iter().map(|v| v.1).collect();
    let n_out = branches[0].program().outputs.len();
    let mut union = vec![false; n_out];
    // Two rounds at most: the first finds each branch's batched outputs; if the branches
    // disagree, the second batches the union in every branch.
    let programs = loop {
        let mut batched = Vec::with_capacity(branches.len());
        for b in branches {
            batched.push(batch_sub(
                e,
                b.program(),
                &in_dims,
                &union,
                size,
                run,
                "cond",
            )?);
        }
        let all: Vec<bool> = (0..n_out)
            .map(|k| batched.iter().any(|(_, b)| b.get(k) == Some(&true)))
            .collect();
        if batched.iter().all(|(_, b)| *b == all) {
            union = all;
            break batched;
        }
        union = all;
    };
    let prim = Primitive::Cond {
        branches: programs.into_iter().map(|(p, _)| Closed::new(p)).collect(),
    };
    let mut args = vec![index];
    args.extend(operands.iter().map(|v| &v.0));
    let outs = e.multi(prim, &args)?;
    Ok(outs
        .into_iter()
        .zip(union)
        .map(|(t, b)| (t, b.then_some(0)))
        .collect())
}

/// `cond` with a batched index: every branch runs batched, then each example takes the
/// results of the branch its (clamped) index picks, by `select`.
///
/// Running a branch on examples that do not take it is harmless to the values (`select`
/// drops them) but not to reverse mode: the zero cotangent of a dropped result is multiplied
/// by the branch's derivative at those examples' operands, and `0 · ∞` or `0 · NaN` (a
/// `sqrt` branch run at a negative number) is NaN. So each branch runs
/// * on **guarded operands**: an example that does not take the branch sees the operands of
///   the first example that does (a value the branch was written for), and
/// * inside a `cond` on whether **any example takes it**, whose other branch gives zeros:
///   a branch no example takes is not run at all, in the primal or in any derivative.
fn select_branches(
    e: &Emit,
    branches: &[Closed],
    index: &Batched,
    operands: &[Batched],
    size: usize,
    run: BatchFn,
) -> Result<Vec<Batched>> {
    let n = branches.len();
    if n == 1 {
        // one branch is taken whatever the index
        let args: Vec<Tensor> = operands.iter().map(|v| v.0.clone()).collect();
        let dims: Vec<Option<usize>> = operands.iter().map(|v| v.1).collect();
        let (outs, out_dims) = run(branches[0].program(), &args, &dims, size)?;
        return Ok(outs.into_iter().zip(out_dims).collect());
    }
    // each example's branch, clamped as the reference evaluator clamps it: <= 0 picks the
    // first, >= n - 1 the last
    let idx = checked(align(e, index, 0, size))?;
    let ia = idx.aval()?;
    let idx = e.op(Primitive::Max, &[&idx, &e.full(0.0, &ia)]);
    let idx = e.op(Primitive::Min, &[&idx, &e.full((n - 1) as f64, &ia)]);
    // picks[j]: the examples that take branch j
    let picks: Vec<Tensor> = (0..n)
        .map(|j| checked(e.op(Primitive::Eq, &[&idx, &e.full(j as f64, &ia)])))
        .collect::<Result<_>>()?;
    // operands with their batch dimension at 0, so the guards can index examples
    let mut aligned = Vec::with_capacity(operands.len());
    for v in operands {
        aligned.push(match v.1 {
            Some(_) => (checked(align(e, v, 0, size))?, Some(0)),
            None => v.clone(),
        });
    }
    let dims: Vec<Option<usize>> = aligned.iter().map(|v| v.1).collect();
    let n_out = branches[0].program().outputs.len();
    let mut results = Vec::with_capacity(n);
    for (b, pick) in branches.iter().zip(&picks) {
        if size == 0 {
            // no examples: nothing to guard or skip (and no first example to copy)
            let args: Vec<Tensor> = aligned.iter().map(|v| v.0.clone()).collect();
            let (outs, out_dims) = run(b.program(), &args, &dims, size)?;
            results.push(outs.into_iter().zip(out_dims).collect::<Vec<Batched>>());
            continue;
        }
        let (program, _) = batch_sub(e, b.program(), &dims, &vec![true; n_out], size, run, "cond")?;
        let skip = skip_branch(&program)?;
        let mut args = vec![taken_by_any(e, pick)?];
        for v in &aligned {
            args.push(guard(e, pick, v)?);
        }
        let refs: Vec<&Tensor> = args.iter().collect();
        let prim = Primitive::Cond {
            branches: vec![Closed::new(skip), Closed::new(program)],
        };
        let outs = e.multi(prim, &refs)?;
        results.push(
            outs.into_iter()
                .map(|t| (t, Some(0)))
                .collect::<Vec<Batched>>(),
        );
    }
    let n_out = results[0].len();
    let mut outs = Vec::with_capacity(n_out);
    for k in 0..n_out {
        let value = |j: usize| -> Result<Tensor> {
            let v = results[j].get(k).ok_or_else(|| {
                Error::internal(format!("batching `cond`: branch {j} lacks output {k}"))
            })?;
            checked(align(e, v, 0, size))
        };
        let mut acc = value(n - 1)?;
        let shape = acc.aval()?.shape;
        for j in (0..n - 1).rev() {
            // the per-example choice spread over the output's other dimensions
            let pick = if shape.len() == 1 {
                picks[j].clone()
            } else {
                e.op1(
                    Primitive::BroadcastInDim {
                        shape: shape.clone(),
                        broadcast_dimensions: vec![0],
                    },
                    &picks[j],
                )
            };
            acc = checked(e.op(Primitive::Select, &[&pick, &value(j)?, &acc]))?;
        }
        outs.push((acc, Some(0)));
    }
    Ok(outs)
}
