//! Vectorization: the batching pass.
//!
//! A pass from programs to programs, written like the others as an interpreter over tensors
//! ([`batch_call`]): every value carries an optional *batch dimension* (where the mapped axis
//! sits in it, or `None` when the value does not vary along the mapped axis), and each
//! primitive's batching rule ([`batch_rule`], one exhaustive `match`, no wildcard arm) maps
//! batched operands to a batched result. Values that do not vary are never broadcast unless
//! a rule must combine them with ones that do.
//!
//! Rules avoid moving the batch dimension where they can: elementwise operations, slices,
//! reductions, reversals and cumulative sums keep it where it is; `transpose` folds it into
//! its own permutation; and `dot_general` turns a batch on one side into a *free* dimension
//! of that side (so a batch of matrix-vector products becomes one matrix-matrix product)
//! and a batch on both sides into a batch dimension of the product.
//!
//! Control flow (`cond`, `scan`: several outputs, sub-programs) is routed by [`batch_call`]
//! to `vmap::control`, which batches the sub-programs with this same interpreter; the helpers
//! that move or create batch dimensions are in `vmap::dims`.
//!
//! `vmap(f, x)` traces `f` on one example (the mapped axes removed), then runs the batching
//! interpreter on the real, batched arguments: eagerly, or into an enclosing trace, so vmap
//! composes with every other transformation in either order.

pub(crate) mod collective;
pub(crate) mod control;
mod custom;
pub(crate) mod dims;
mod indexing;
pub(crate) mod while_linear;
pub(crate) mod while_loop;

use crate::ir::{collectives, control_flow, elementwise_nary, elementwise_unary, indexing_ops};
use crate::ir::{Aval, DType, Env, Error, Primitive, Program, Result};
use crate::passes::vmap::control::batch_control;
use crate::passes::vmap::dims::{align, aval, front, move_axis, shift, to_front, Batched};
use crate::trace::{checked, fail, trace_flat, Emit, Tensor};

/// Runs `p` on batched arguments (`dims[i]`: the batch dimension of argument `i`, or `None`),
/// with `size` the length of the mapped axis. Returns the outputs and their batch dims.
pub(crate) fn batch_call(
    p: &Program,
    args: &[Tensor],
    dims: &[Option<usize>],
    size: usize,
) -> Result<(Vec<Tensor>, Vec<Option<usize>>)> {
    if args.len() != p.inputs.len() || dims.len() != p.inputs.len() {
        return Err(Error::input(
            "vmap",
            format!(
                "the program takes {} input(s); {} argument(s) and {} batch dim(s) given",
                p.inputs.len(),
                args.len(),
                dims.len()
            ),
        ));
    }
    let args = args.iter().cloned().zip(dims.iter().copied());
    let mut env = Env::bind(p, args, |a| (Tensor::new(a.clone()), None));
    let literal = |s| (Tensor::literal(s), None);
    for e in &p.eqns {
        let ops = e
            .inputs
            .iter()
            .map(|a| env.read(a, literal))
            .collect::<Result<Vec<_>>>()?;
        let emit = Emit { loc: e.loc };
        let unbatched = ops.iter().all(|(_, d)| d.is_none());
        if e.prim.is_control_flow() {
            // several outputs and sub-programs: the rules of `vmap::control`, which batch the
            // sub-programs with this interpreter (handed to them, so that file does not
            // import this one)
            // (a sub-program using the axis being mapped is batched even so: its
            // collectives are operations across the members)
            let outs = if unbatched && !collective::subprograms_use_batching_axis(&e.prim) {
                let refs: Vec<&Tensor> = ops.iter().map(|(t, _)| t).collect();
                let outs = emit.multi(e.prim.clone(), &refs)?;
                outs.into_iter().map(|t| (t, None)).collect()
            } else {
                batch_control(&emit, &e.prim, &ops, size, batch_call)?
            };
            if outs.len() != e.outs.len() {
                return Err(Error::internal(format!(
                    "batching `{}` gave {} outputs for {}",
                    e.prim.name(),
                    outs.len(),
                    e.outs.len()
                )));
            }
            for (v, out) in e.outs.iter().zip(outs) {
                env.write(*v, out);
            }
            continue;
        }
        // a collective over the axis being mapped: an operation across the members, whether
        // its operand varies or not
        if let Some((name, _)) = e.prim.collective_axis() {
            if collective::is_batching(name) {
                let (t, d) = collective::batch_named(&emit, &e.prim, &ops, size)?;
                env.write(e.out(), (checked(t)?, d));
                continue;
            }
        }
        // a value that does not vary stays unbatched: the primitive runs as it is
        let out = if unbatched {
            let refs: Vec<&Tensor> = ops.iter().map(|(t, _)| t).collect();
            (emit.op(e.prim.clone(), &refs), None)
        } else {
            let (t, d) = batch_rule(&emit, &e.prim, &ops, size);
            (t, Some(d))
        };
        env.write(e.out(), (checked(out.0)?, out.1));
    }
    let outs = p
        .outputs
        .iter()
        .map(|a| env.read(a, literal))
        .collect::<Result<Vec<_>>>()?;
    Ok(outs.into_iter().unzip())
}

/// The batching rule of a primitive with at least one batched operand: the result and
/// its batch dimension.
pub(crate) fn batch_rule(
    e: &Emit,
    prim: &Primitive,
    x: &[Batched],
    size: usize,
) -> (Tensor, usize) {
    use Primitive::*;
    let one = || {
        let (t, b) = (&x[0].0, x[0].1.expect("a single operand is batched"));
        (t, b)
    };
    match prim {
        // control flow has several outputs: `batch_call` routes it to `vmap::control`
        control_flow!() => (
            fail(Error::internal(format!(
                "`{}` reached the single-output batching rule",
                prim.name()
            ))),
            0,
        ),
        // over another axis than the one mapped (`vmap::collective`)
        collectives!() => collective::batch_unnamed(e, prim, &x[0]),
        // Elementwise with one operand (and the identity that names a value for a
        // checkpoint policy): the batch dimension stays.
        elementwise_unary!() | CheckpointName { .. } | StopGradient => {
            let (t, b) = one();
            (e.op1(prim.clone(), t), b)
        }
        // Elementwise with several operands: as they are when all are batched alike,
        // otherwise at the front with the unbatched ones broadcast.
        elementwise_nary!() => {
            // Align every operand to the first batched operand's batch dimension (moving
            // others there, broadcasting unbatched ones with the batch inserted there), so a
            // layout chosen upstream (e.g. by dot_general) survives elementwise work.
            let b = x
                .iter()
                .find_map(|(_, d)| *d)
                .expect("some operand is batched");
            let ts: Vec<Tensor> = x.iter().map(|v| align(e, v, b, size)).collect();
            let refs: Vec<&Tensor> = ts.iter().collect();
            (e.op(prim.clone(), &refs), b)
        }
        ReduceSum { axes } | ReduceMax { axes } | ReduceMin { axes } | ReduceProd { axes } => {
            let (t, b) = one();
            let shifted = shift(axes, b);
            let out_b = b - shifted.iter().filter(|&&a| a < b).count();
            let mut p = prim.clone();
            if let ReduceSum { axes }
            | ReduceMax { axes }
            | ReduceMin { axes }
            | ReduceProd { axes } = &mut p
            {
                *axes = shifted;
            }
            (e.op1(p, t), out_b)
        }
        Argmax { axis, index_dtype } | Argmin { axis, index_dtype } => {
            let (t, b) = one();
            let axis = shift(&[*axis], b)[0];
            let out_b = if axis < b { b - 1 } else { b };
            let p = match prim {
                Argmin { .. } => Argmin {
                    axis,
                    index_dtype: *index_dtype,
                },
                _ => Argmax {
                    axis,
                    index_dtype: *index_dtype,
                },
            };
            (e.op1(p, t), out_b)
        }
        Argsort { axis, index_dtype } => {
            let (t, b) = one();
            let axis = shift(&[*axis], b)[0];
            (
                e.op1(
                    Argsort {
                        axis,
                        index_dtype: *index_dtype,
                    },
                    t,
                ),
                b,
            )
        }
        Cumsum { axis, reverse } => {
            let (t, b) = one();
            let axis = shift(&[*axis], b)[0];
            (
                e.op1(
                    Cumsum {
                        axis,
                        reverse: *reverse,
                    },
                    t,
                ),
                b,
            )
        }
        Rev { dimensions } => {
            let (t, b) = one();
            (
                e.op1(
                    Rev {
                        dimensions: shift(dimensions, b),
                    },
                    t,
                ),
                b,
            )
        }
        Squeeze { dimensions } => {
            let (t, b) = one();
            let dims = shift(dimensions, b);
            let out_b = b - dims.iter().filter(|&&d| d < b).count();
            (e.op1(Squeeze { dimensions: dims }, t), out_b)
        }
        Slice {
            start,
            limit,
            strides,
        } => {
            let (t, b) = one();
            let (mut s, mut l, mut st) = (start.clone(), limit.clone(), strides.clone());
            s.insert(b, 0);
            l.insert(b, size);
            st.insert(b, 1);
            (
                e.op1(
                    Slice {
                        start: s,
                        limit: l,
                        strides: st,
                    },
                    t,
                ),
                b,
            )
        }
        Transpose { permutation } => {
            // One transpose that also brings the batch dimension to the front.
            let (t, b) = one();
            let mut perm = vec![b];
            perm.extend(shift(permutation, b));
            (e.op1(Transpose { permutation: perm }, t), 0)
        }
        ExpandDims { dimensions } => {
            let (t, b) = one();
            let t = to_front(e, t, b);
            let dims = dimensions.iter().map(|d| d + 1).collect();
            (e.op1(ExpandDims { dimensions: dims }, &t), 0)
        }
        BroadcastInDim {
            shape,
            broadcast_dimensions,
        } => {
            let (t, b) = one();
            let t = to_front(e, t, b);
            let mut s = vec![size];
            s.extend(shape);
            let mut bd = vec![0];
            bd.extend(broadcast_dimensions.iter().map(|d| d + 1));
            (
                e.op1(
                    BroadcastInDim {
                        shape: s,
                        broadcast_dimensions: bd,
                    },
                    &t,
                ),
                0,
            )
        }
        Reshape { new_sizes } => {
            let (t, b) = one();
            let t = to_front(e, t, b);
            let mut s = vec![size];
            s.extend(new_sizes);
            (e.op1(Reshape { new_sizes: s }, &t), 0)
        }
        Pad {
            low,
            high,
            interior,
        } => {
            let ((xv, xb), (vv, vb)) = (&x[0], &x[1]);
            match vb {
                None => {
                    let b = xb.expect("an operand is batched");
                    let (mut l, mut h, mut i) = (low.clone(), high.clone(), interior.clone());
                    l.insert(b, 0);
                    h.insert(b, 0);
                    i.insert(b, 0);
                    let p = Pad {
                        low: l,
                        high: h,
                        interior: i,
                    };
                    (e.op(p, &[xv, vv]), b)
                }
                Some(_) => {
                    // A batched padding value: pad with any value, then select each
                    // example's value at the padded positions (a bool mask made by the same
                    // pad; a select, not `+ mask * v`, so bools and non-finite values work).
                    let xf = front(e, &x[0], size);
                    let xa = aval(&xf);
                    let (mut l, mut h, mut i) = (low.clone(), high.clone(), interior.clone());
                    l.insert(0, 0);
                    h.insert(0, 0);
                    i.insert(0, 0);
                    let p = Pad {
                        low: l,
                        high: h,
                        interior: i,
                    };
                    let padded = e.op(p.clone(), &[&xf, &e.zeros(&Aval::scalar(xa.dtype))]);
                    let inside = Aval::new(xa.shape.clone(), DType::Bool);
                    let is_padding = e.op(
                        p,
                        &[&e.zeros(&inside), &e.full(1.0, &Aval::scalar(DType::Bool))],
                    );
                    let pa = aval(&padded);
                    let v = e.op1(
                        BroadcastInDim {
                            shape: pa.shape.clone(),
                            broadcast_dimensions: vec![0],
                        },
                        &front(e, &x[1], size),
                    );
                    (e.op(Select, &[&is_padding, &v, &padded]), 0)
                }
            }
        }
        Concatenate { dimension } => {
            let ts: Vec<Tensor> = x.iter().map(|v| front(e, v, size)).collect();
            let refs: Vec<&Tensor> = ts.iter().collect();
            (
                e.op(
                    Concatenate {
                        dimension: dimension + 1,
                    },
                    &refs,
                ),
                0,
            )
        }
        Iota { .. } => unreachable!("iota has no operands, so it is never batched"),
        // matrices in the last two dimensions, mapped over the leading ones: the batch in front
        Cholesky | LogAbsDet | DetSign | QrQ | QrR | EighValues | EighVectors | SvdValues
        | SvdU | SvdVt => {
            let (t, b) = one();
            (e.op1(prim.clone(), &to_front(e, t, b)), 0)
        }
        TriangularSolve { .. } | Solve { .. } => {
            let (a, c) = (front(e, &x[0], size), front(e, &x[1], size));
            (e.op(prim.clone(), &[&a, &c]), 0)
        }
        // pairs in the last dimension: the batch goes in front, where it cannot split one
        Threefry2x32 => {
            let (k, c) = (front(e, &x[0], size), front(e, &x[1], size));
            (e.op(Threefry2x32, &[&k, &c]), 0)
        }
        indexing_ops!() => indexing::batch_indexing(e, prim, x, size),
        DotGeneral {
            lhs_contracting: lc,
            rhs_contracting: rc,
            lhs_batch: lb,
            rhs_batch: rb,
        } => {
            let ((l, bl), (r, br)) = (&x[0], &x[1]);
            let nb = lb.len();
            match (bl, br) {
                (Some(bl), Some(br)) => {
                    // Both batched: the mapped axis becomes a batch dimension of the product.
                    let mut lb2 = vec![*bl];
                    lb2.extend(shift(lb, *bl));
                    let mut rb2 = vec![*br];
                    rb2.extend(shift(rb, *br));
                    let p = DotGeneral {
                        lhs_contracting: shift(lc, *bl),
                        rhs_contracting: shift(rc, *br),
                        lhs_batch: lb2,
                        rhs_batch: rb2,
                    };
                    (e.op(p, &[l, r]), 0)
                }
                (Some(bl), None) => {
                    // Only the lhs: its mapped axis is one more free dimension.
                    let (lc2, lb2) = (shift(lc, *bl), shift(lb, *bl));
                    let before = (0..*bl)
                        .filter(|d| !lc2.contains(d) && !lb2.contains(d))
                        .count();
                    let p = DotGeneral {
                        lhs_contracting: lc2,
                        rhs_contracting: rc.clone(),
                        lhs_batch: lb2,
                        rhs_batch: rb.clone(),
                    };
                    (e.op(p, &[l, r]), nb + before)
                }
                (None, Some(br)) => {
                    // Only the rhs: its mapped axis is one more free dimension.
                    let (rc2, rb2) = (shift(rc, *br), shift(rb, *br));
                    let la = aval(l);
                    let n_lfree = la.ndim() - lc.len() - lb.len();
                    let before = (0..*br)
                        .filter(|d| !rc2.contains(d) && !rb2.contains(d))
                        .count();
                    let p = DotGeneral {
                        lhs_contracting: lc.clone(),
                        rhs_contracting: rc2,
                        lhs_batch: lb.clone(),
                        rhs_batch: rb2,
                    };
                    (e.op(p, &[l, r]), nb + n_lfree + before)
                }
                (None, None) => unreachable!("some operand is batched"),
            }
        }
    }
}

pub(crate) fn norm_axis(op: &str, axis: isize, rank: usize, what: String) -> Result<usize> {
    let r = rank as isize;
    if axis < -r || axis >= r {
        return Err(Error::Axis {
            op: op.into(),
            msg: format!("{what}: axis {axis} is out of range for rank {rank}"),
            loc: None,
        });
    }
    Ok(if axis < 0 {
        (axis + r) as usize
    } else {
        axis as usize
    })
}

/// Puts an output's batch dimension where `out_axes` asks (broadcasting an output that does
/// not vary), or refuses an output that varies but was declared unmapped.
pub(crate) fn place_output(
    e: &Emit,
    k: usize,
    t: &Tensor,
    d: Option<usize>,
    ax: Option<isize>,
    size: usize,
) -> Result<Tensor> {
    let a = t.aval()?;
    match (d, ax) {
        (None, None) => Ok(t.clone()),
        (Some(_), None) => Err(Error::input(
            "vmap",
            format!("output {k} varies along the mapped axis but its out_axes entry is None"),
        )),
        (Some(b), Some(ax)) => {
            let to = norm_axis("vmap", ax, a.ndim(), format!("out_axes of output {k}"))?;
            Ok(move_axis(e, t, b, to))
        }
        (None, Some(ax)) => {
            let to = norm_axis("vmap", ax, a.ndim() + 1, format!("out_axes of output {k}"))?;
            let mut shape = a.shape.clone();
            shape.insert(to, size);
            let bd = (0..=a.ndim()).filter(|&i| i != to).collect();
            let out = e.op1(
                Primitive::BroadcastInDim {
                    shape,
                    broadcast_dimensions: bd,
                },
                t,
            );
            out.aval()?;
            Ok(out)
        }
    }
}

/// The batched version of a program: each input batched at `in_axes[i]` (or not), every
/// output batched at axis 0 (broadcast where it does not vary).
pub fn vmap_program(p: &Program, in_axes: &[Option<usize>], size: usize) -> Result<Program> {
    p.check()?;
    if in_axes.len() != p.inputs.len() {
        return Err(Error::input(
            "vmap_program",
            format!("{} in_axes for {} inputs", in_axes.len(), p.inputs.len()),
        ));
    }
    let mut avals = vec![];
    for (i, (a, ax)) in p.in_avals().iter().zip(in_axes).enumerate() {
        let mut shape = a.shape.clone();
        if let Some(d) = ax {
            if *d > a.ndim() {
                return Err(Error::Axis {
                    op: "vmap_program".into(),
                    msg: format!("in_axes of input {i} ({a}): axis {d} is out of range for the batched rank {}", a.ndim() + 1),
                    loc: None,
                });
            }
            shape.insert(*d, size);
        }
        let batched = Aval::new(shape, a.dtype);
        batched.validate("vmap_program")?;
        avals.push(batched);
    }
    let (prog, _) = trace_flat(&avals, |args| {
        let (outs, dims) = batch_call(p, &args, in_axes, size)?;
        let e = Emit { loc: None };
        outs.iter()
            .zip(dims)
            .enumerate()
            .map(|(k, (t, d))| place_output(&e, k, t, d, Some(0), size))
            .collect()
    })?;
    Ok(prog)
}
