//! `named_map` in the reference evaluator: the members of the axis run the body in
//! lockstep, equation by equation, and a collective over the axis combines their values.
//!
//! The definition the batching of a map (`vmap` with an axis name, which the
//! transformations of `named_map` use) is tested against. Every member holds its own
//! values; an equation that is not a collective over the map's axis runs member by member;
//! a collective stacks the members' operands along a new leading dimension and computes
//! with the same primitives, on the same stacked array, as its batching rule
//! (`passes::vmap::collective`): `psum` is `reduce_sum` over the members in member order,
//! `all_gather` a transpose of the stack, `all_to_all` the reshape-transpose-reshape of
//! `ir::collective::all_to_all_plan`. So a map gives the same bits evaluated here or
//! batched. A sub-program inside the body that itself uses the map's axis (a `scan` whose
//! body calls `psum` over it) would need the members in lockstep inside the loop: refused
//! with an error here, for now.

use crate::backend::reference::{eval_equation, eval_primitive};
use crate::ir::collective::all_to_all_plan;
use crate::ir::control::subprograms_use_axis;
use crate::ir::{
    ensure_allocatable, Array, Aval, Closed, Env, Error, Primitive, Program, Result, Scalar,
};

/// Evaluates `named_map` (operands checked against its shape rule).
pub(crate) fn eval_named_map(
    body: &Closed,
    name: &str,
    n: usize,
    args: &[&Array],
) -> Result<Vec<Array>> {
    let p = body.program();
    // the stacked outputs, and one environment per member, must fit before anything runs
    // (a parsed map may name far more members than memory holds)
    members_fit(p, n)?;
    let mut members: Vec<Env<Array>> = (0..n)
        .map(|i| {
            let slices = args.iter().map(|a| a.row(i)).collect::<Result<Vec<_>>>()?;
            Ok(Env::bind(p, slices, Array::clone))
        })
        .collect::<Result<_>>()?;
    for e in &p.eqns {
        let at = |err: Error| match e.loc {
            Some(l) => err.with_loc(l),
            None => err,
        };
        let ins: Vec<Vec<Array>> = members
            .iter()
            .map(|env| {
                e.inputs
                    .iter()
                    .map(|a| env.read(a, Array::from_scalar))
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<_>>()?;
        let over_this_axis = e.prim.collective_axis().is_some_and(|(a, _)| a == name);
        let outs: Vec<Vec<Array>> = if over_this_axis {
            collective(&e.prim, &ins, n).map_err(at)?
        } else {
            if subprograms_use_axis(&e.prim, name) {
                return Err(at(Error::input(
                    e.prim.name(),
                    format!(
                        "inside `named_map` over `{name}`, a sub-program that itself combines \
                         the members of `{name}` is not evaluated yet (map the loop's body \
                         instead, or use vmap with the axis name)"
                    ),
                )));
            }
            ins.iter()
                .map(|member| {
                    let refs: Vec<&Array> = member.iter().collect();
                    eval_equation(&e.prim, &refs)
                })
                .collect::<Result<_>>()
                .map_err(at)?
        };
        for (env, member_outs) in members.iter_mut().zip(outs) {
            for (v, out) in e.outs.iter().zip(member_outs) {
                env.write(*v, out);
            }
        }
    }
    let out_avals = p.out_avals();
    let per_member: Vec<Vec<Array>> = members
        .iter()
        .map(|env| {
            p.outputs
                .iter()
                .map(|a| env.read(a, Array::from_scalar))
                .collect::<Result<Vec<_>>>()
        })
        .collect::<Result<_>>()?;
    (0..out_avals.len())
        .map(|k| {
            let rows: Vec<Array> = per_member.iter().map(|m| m[k].clone()).collect();
            Array::stack(&rows, &out_avals[k], n)
        })
        .collect()
}

/// Refuses a map whose members' stacked outputs, or whose per-member bookkeeping, cannot
/// be allocated.
pub(crate) fn members_fit(p: &Program, n: usize) -> Result<()> {
    let per_member = std::mem::size_of::<Env<Array>>().saturating_add(
        p.avals
            .len()
            .saturating_mul(std::mem::size_of::<Option<Array>>()),
    );
    let scalar = Aval::new(vec![], crate::ir::DType::F64);
    ensure_allocatable("named_map", &scalar, per_member.saturating_mul(n))?;
    for a in p.out_avals() {
        let row = a.bytes().saturating_add(std::mem::size_of::<Array>());
        ensure_allocatable("named_map", &a, row.saturating_mul(n))?;
    }
    Ok(())
}

/// A collective over the map's axis: `ins[i]` are member `i`'s operands; gives each
/// member's output. Also what a compiled map's members compute once a communicator has
/// given each of them every member's operand (`cpu::spmd`).
pub(crate) fn collective(
    prim: &Primitive,
    ins: &[Vec<Array>],
    n: usize,
) -> Result<Vec<Vec<Array>>> {
    use Primitive::*;
    let op = |p: Primitive, args: &[&Array]| eval_primitive(&p, args);
    // the members' operand along a new leading dimension
    let stacked = || -> Result<Array> {
        let rows: Vec<Array> = ins.iter().map(|m| m[0].clone()).collect();
        let row = rows[0].aval();
        Array::stack(&rows, &row, n)
    };
    let same = |v: Array| -> Vec<Vec<Array>> { vec![vec![v]; n] };
    Ok(match prim {
        Psum { .. } => same(op(ReduceSum { axes: vec![0] }, &[&stacked()?])?),
        Pmean { .. } => {
            let sum = op(ReduceSum { axes: vec![0] }, &[&stacked()?])?;
            let count = full(n as f64, &sum.aval())?;
            same(op(Div, &[&sum, &count])?)
        }
        Pmax { .. } => same(op(ReduceMax { axes: vec![0] }, &[&stacked()?])?),
        Pmin { .. } => same(op(ReduceMin { axes: vec![0] }, &[&stacked()?])?),
        AllGather { axis, .. } => {
            let m = stacked()?;
            let mut perm: Vec<usize> = (1..m.ndim()).collect();
            perm.insert(*axis, 0);
            same(op(Transpose { permutation: perm }, &[&m])?)
        }
        PsumScatter { axis, .. } => {
            let sum = op(ReduceSum { axes: vec![0] }, &[&stacked()?])?;
            // member i: index i along `axis`, that dimension removed
            let mut perm: Vec<usize> = (0..sum.ndim()).filter(|&d| d != *axis).collect();
            perm.insert(0, *axis);
            let rows = op(Transpose { permutation: perm }, &[&sum])?;
            (0..n)
                .map(|i| Ok(vec![rows.row(i)?]))
                .collect::<Result<_>>()?
        }
        Ppermute { src, dst, .. } => {
            let zero = full(0.0, &ins[0][0].aval())?;
            (0..n)
                .map(|member| match dst.iter().position(|&d| d == member) {
                    Some(k) => vec![ins[src[k]][0].clone()],
                    None => vec![zero.clone()],
                })
                .collect()
        }
        AllToAll {
            split_axis,
            concat_axis,
            ..
        } => {
            let m = stacked()?;
            let (cut, perm, out) = all_to_all_plan(&m.shape()[1..], *split_axis, *concat_axis, n);
            let y = op(Reshape { new_sizes: cut }, &[&m])?;
            let z = op(Transpose { permutation: perm }, &[&y])?;
            let r = op(Reshape { new_sizes: out }, &[&z])?;
            (0..n).map(|i| Ok(vec![r.row(i)?])).collect::<Result<_>>()?
        }
        AxisIndex { .. } => (0..n)
            .map(|i| vec![Array::from_scalar(Scalar::I32(i as i32))])
            .collect(),
        _ => {
            return Err(Error::internal(format!(
                "`{}` is not a collective",
                prim.name()
            )))
        }
    })
}

/// An array of `aval` whose every element is `v` (in its dtype), as the batching rules'
/// `Emit::full` builds it: a scalar, broadcast.
fn full(v: f64, aval: &Aval) -> Result<Array> {
    let s = Array::from_scalar(Scalar::F64(v).cast(aval.dtype));
    if aval.ndim() == 0 {
        return Ok(s);
    }
    eval_primitive(
        &Primitive::BroadcastInDim {
            shape: aval.shape.clone(),
            broadcast_dimensions: vec![],
        },
        &[&s],
    )
}
