//! Transposition: the pass from a linear program to its transpose (reverse mode).
//!
//! Sits after partial evaluation: `vjp` is `linearize` followed by this pass, never a set of
//! hand-written reverse rules. Like the jvp pass it is an interpreter over tensors
//! ([`transpose_call`]), so it computes eagerly, records under a fresh trace
//! ([`transpose_program`]) or emits into an enclosing trace.
//!
//! The program is first classified by the linearity checker (`linearity`): a program that is
//! not linear is rejected with the primitive and the user's source line. Then:
//!
//! 1. **Residual-only equations run forward first**: they compute values from residuals that
//!    the transposed equations read (coefficients, predicates).
//! 2. **Linear equations run backwards**, each through its primitive's transpose rule
//!    ([`transpose_rule`], one exhaustive `match`, no wildcard arm), turning the cotangent of
//!    its output into cotangents of its linear operands. Contributions to the same variable
//!    are accumulated with `add`; a variable that receives none has a **symbolic zero**
//!    cotangent and costs nothing. Operands that are zeros (a `broadcast_in_dim 0.0`) receive
//!    nothing.
//! 3. The transposed program returns the cotangents of the linear inputs (zeros built only
//!    there, at the boundary).
//!
//! The transposed program takes the same residuals, then one cotangent per output of the
//! original; so a transposed linear map shares its residuals with the original.

pub(crate) mod control;
mod indexing;

use crate::ir::{control_flow, Atom, Aval, Env, Error, Primitive, Program, Result, Var};
use crate::passes::linearity::{classify, kind_of, nonlinear, Kind};
use crate::passes::transpose::control::transpose_control;
use crate::trace::{checked, materialize, trace_flat, Emit, Tensor};

/// Applies the transpose of the linear program `p` (first `n_res` inputs residuals) to
/// output cotangents (`None` = zero). Returns the cotangents of the linear inputs.
pub(crate) fn transpose_call(
    p: &Program,
    n_res: usize,
    residuals: &[Tensor],
    cts: &[Option<Tensor>],
) -> Result<Vec<Option<Tensor>>> {
    let kinds = classify(p, n_res)?;
    if residuals.len() != n_res || cts.len() != p.outputs.len() {
        return Err(Error::input(
            "transpose",
            format!(
                "the program takes {n_res} residual(s) and {} cotangent(s); {} and {} given",
                p.outputs.len(),
                residuals.len(),
                cts.len()
            ),
        ));
    }
    let mut known_in: Vec<Option<Tensor>> = residuals.iter().cloned().map(Some).collect();
    known_in.resize(p.inputs.len(), None);
    let mut cts_in = transpose_kinds(p, &kinds, &known_in, cts)?;
    Ok(cts_in.split_off(n_res))
}

/// The transpose of `p` whose variables have the given kinds (`classify_kinds`), as a
/// sub-program of control flow is transposed: `known_in[i]` is the value of input `i` when it
/// is not linear (a zero input given none is built as zeros). Returns one cotangent per
/// input, `None` for inputs that are not linear or receive nothing.
pub(crate) fn transpose_kinds(
    p: &Program,
    kinds: &[Kind],
    known_in: &[Option<Tensor>],
    cts: &[Option<Tensor>],
) -> Result<Vec<Option<Tensor>>> {
    // Forward: every value that does not depend on the linear inputs, residual values and
    // zeros alike (a rule may need a zero's value: `mul t 0.0`, a `false` predicate). What no
    // rule reads is dead code in the transposed program.
    let mut known: Env<Tensor> = Env::bind(p, [], |a| Tensor::new(a.clone()));
    let boundary = Emit { loc: None };
    for (v, x) in p.inputs.iter().zip(known_in) {
        match (kinds[v.index()], x) {
            (Kind::Linear, _) => {}
            (_, Some(x)) => known.write(*v, x.clone()),
            // integer and bool "linear" inputs are zeros (no tangent space): known, and zero
            (Kind::Zero, None) => known.write(*v, boundary.zeros(p.aval(*v))),
            (Kind::Residual, None) => {
                return Err(Error::internal(format!(
                    "transpose: residual input {} has no value",
                    v.0
                )))
            }
        }
    }
    for e in &p.eqns {
        if e.outs.iter().all(|v| kinds[v.index()] == Kind::Linear) {
            continue;
        }
        let emit = Emit { loc: e.loc };
        // A control-flow equation with linear operands may also give residual or zero
        // outputs; those do not depend on the linear operands, so running it with zeros in
        // their place computes them.
        let xs = e
            .inputs
            .iter()
            .map(|a| match kind_of(kinds, a) {
                Kind::Linear => Ok(emit.zeros(&p.atom_aval(a))),
                _ => known.read(a, Tensor::literal),
            })
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&Tensor> = xs.iter().collect();
        let outs = match e.prim.is_control_flow() {
            true => emit.multi(e.prim.clone(), &refs)?,
            false => vec![emit.checked(e.prim.clone(), &refs)?],
        };
        for (v, out) in e.outs.iter().zip(outs) {
            if kinds[v.index()] != Kind::Linear {
                known.write(*v, out);
            }
        }
    }
    // Backward: cotangents, accumulated with `add`; absent = symbolic zero.
    let mut ct: Env<Tensor> = Env::new(p.avals.len());
    let accumulate = |ct: &mut Env<Tensor>, v: Var, c: Tensor, e: &Emit| -> Result<()> {
        let sum = match ct.take(v) {
            None => c,
            Some(prev) => e.add(&prev, &c),
        };
        ct.write(v, checked(sum)?);
        Ok(())
    };
    let is_linear = |a: &Atom| kind_of(kinds, a) == Kind::Linear;
    for (a, c) in p.outputs.iter().zip(cts) {
        if let (Atom::Var(v), Some(c)) = (a, c) {
            if is_linear(a) {
                accumulate(&mut ct, *v, c.clone(), &boundary)?;
            }
        }
    }
    for e in p.eqns.iter().rev() {
        let out_cts: Vec<Option<Tensor>> = e
            .outs
            .iter()
            .map(|v| match kinds[v.index()] {
                Kind::Linear => ct.take(*v),
                _ => None,
            })
            .collect();
        if out_cts.iter().all(Option::is_none) {
            continue;
        }
        let emit = Emit { loc: e.loc };
        let operands: Vec<LinArg> = e
            .inputs
            .iter()
            .map(|a| match is_linear(a) {
                true => Ok(LinArg::Linear(p.atom_aval(a))),
                false => known.read(a, Tensor::literal).map(LinArg::Known),
            })
            .collect::<Result<Vec<_>>>()?;
        let contributions = if e.prim.is_control_flow() {
            let ks: Vec<Kind> = e.inputs.iter().map(|a| kind_of(kinds, a)).collect();
            transpose_control(&emit, &e.prim, &operands, &ks, &out_cts)?
        } else {
            let Some(c) = out_cts.into_iter().flatten().next() else {
                continue;
            };
            transpose_rule(&emit, &e.prim, &operands, &c)?
        };
        for (a, contribution) in e.inputs.iter().zip(contributions) {
            if let (Atom::Var(v), Some(x)) = (a, contribution) {
                if is_linear(a) {
                    accumulate(&mut ct, *v, checked(x)?, &emit)?;
                }
            }
        }
    }
    Ok(p.inputs.iter().map(|v| ct.take(*v)).collect())
}

/// An operand of a linear equation as its transpose rule sees it (JAX's `UndefinedPrimal`
/// made a type): a linear operand, whose value is what the transposition solves for, or a
/// known one (a residual or a zero), whose value the rule may read. Only linear operands
/// receive cotangents.
pub(crate) enum LinArg {
    /// A linear operand: its aval.
    Linear(Aval),
    /// A residual or zero operand: its value.
    Known(Tensor),
}

impl LinArg {
    pub(crate) fn aval(&self) -> Aval {
        match self {
            LinArg::Linear(a) => a.clone(),
            LinArg::Known(t) => t.aval().expect("known values did not fail"),
        }
    }
    pub(crate) fn is_linear(&self) -> bool {
        matches!(self, LinArg::Linear(_))
    }
    /// The value of a known operand. The linearity checker guarantees that rules ask only
    /// for known operands; a broken guarantee is reported, not a panic.
    pub(crate) fn value(&self) -> Result<&Tensor> {
        match self {
            LinArg::Known(t) => Ok(t),
            LinArg::Linear(_) => Err(Error::internal(
                "transpose: a rule read the value of a linear operand",
            )),
        }
    }
}

/// The cotangents of an equation's operands (`None` for operands that are not linear, or
/// receive nothing) given the cotangent `ct` of its output.
pub(crate) fn transpose_rule(
    e: &Emit,
    prim: &Primitive,
    x: &[LinArg],
    ct: &Tensor,
) -> Result<Vec<Option<Tensor>>> {
    use Primitive::*;
    let only = |i: usize, t: Tensor| -> Vec<Option<Tensor>> {
        (0..x.len()).map(|k| (k == i).then(|| t.clone())).collect()
    };
    let lin = |i: usize| x[i].is_linear();
    let out = match prim {
        // several outputs and sub-programs: `transpose_kinds` routes it to `transpose::control`
        control_flow!() => {
            return Err(Error::internal(format!(
                "`{}` reached the single-output transpose rule",
                prim.name()
            )))
        }
        Neg => only(0, e.neg(ct)),
        CheckpointName { .. } => only(0, ct.clone()),
        // the collective of the transposed linear map on all members (`ir::collective`)
        Psum { .. }
        | Pmean { .. }
        | AllGather { .. }
        | PsumScatter { .. }
        | Ppermute { .. }
        | AllToAll { .. } => {
            let Some(t) = prim.collective_transpose() else {
                return Err(Error::internal(format!(
                    "`{}` has no transpose",
                    prim.name()
                )));
            };
            only(0, e.op1(t, ct))
        }
        Add => (0..2).map(|i| lin(i).then(|| ct.clone())).collect(),
        Sub => vec![lin(0).then(|| ct.clone()), lin(1).then(|| e.neg(ct))],
        Mul => {
            if lin(0) {
                only(0, e.mul(ct, x[1].value()?))
            } else {
                only(1, e.mul(x[0].value()?, ct))
            }
        }
        Div => only(0, e.div(ct, x[1].value()?)),
        ConvertElementType { .. } => only(0, e.convert(ct, x[0].aval().dtype)),
        ReduceSum { axes } => {
            let xa = x[0].aval();
            let kept: Vec<usize> = (0..xa.ndim()).filter(|d| !axes.contains(d)).collect();
            only(
                0,
                e.op1(
                    BroadcastInDim {
                        shape: xa.shape.clone(),
                        broadcast_dimensions: kept,
                    },
                    ct,
                ),
            )
        }
        BroadcastInDim {
            shape,
            broadcast_dimensions: bd,
        } => {
            // Sum over the new dimensions and over the size-1 dimensions that were expanded.
            let xa = x[0].aval();
            let summed: Vec<usize> = (0..shape.len())
                .filter(|d| match bd.iter().position(|b| b == d) {
                    None => true,
                    Some(i) => xa.shape[i] == 1 && shape[*d] != 1,
                })
                .collect();
            let s = if summed.is_empty() {
                ct.clone()
            } else {
                e.op1(ReduceSum { axes: summed }, ct)
            };
            only(0, reshape_to(e, &s, &xa.shape))
        }
        Reshape { .. } | Squeeze { .. } | ExpandDims { .. } => {
            only(0, reshape_to(e, ct, &x[0].aval().shape))
        }
        Transpose { permutation } => {
            let mut inverse = vec![0; permutation.len()];
            for (i, &p) in permutation.iter().enumerate() {
                inverse[p] = i;
            }
            only(
                0,
                e.op1(
                    Transpose {
                        permutation: inverse,
                    },
                    ct,
                ),
            )
        }
        Rev { .. } => only(0, e.op1(prim.clone(), ct)),
        Cumsum { axis, reverse } => only(
            0,
            e.op1(
                Cumsum {
                    axis: *axis,
                    reverse: !reverse,
                },
                ct,
            ),
        ),
        Slice {
            start,
            limit: _,
            strides,
        } => {
            // Scatter the cotangent back into zeros: a pad with interior stride - 1.
            let xa = x[0].aval();
            let oa = ct.aval()?;
            let (mut low, mut high, mut interior) = (vec![], vec![], vec![]);
            for d in 0..xa.ndim() {
                if oa.shape[d] == 0 {
                    low.push(xa.shape[d]);
                    high.push(0);
                    interior.push(0);
                } else {
                    let last = start[d] + (oa.shape[d] - 1) * strides[d];
                    low.push(start[d]);
                    high.push(xa.shape[d] - last - 1);
                    interior.push(strides[d] - 1);
                }
            }
            let zero = e.zeros(&Aval::scalar(xa.dtype));
            only(
                0,
                e.op(
                    Pad {
                        low,
                        high,
                        interior,
                    },
                    &[ct, &zero],
                ),
            )
        }
        Pad { low, interior, .. } => {
            // The operand's cotangent is the strided slice of the positions it landed on;
            // the padding value's is the sum over all the other positions.
            let xa = x[0].aval();
            let start = low.clone();
            // an interior of usize::MAX is legal on a dimension of size 0 or 1 (it adds nothing)
            let strides: Vec<usize> = interior.iter().map(|i| i.saturating_add(1)).collect();
            let limit: Vec<usize> = (0..xa.ndim())
                .map(|d| {
                    if xa.shape[d] == 0 {
                        low[d]
                    } else {
                        low[d] + (xa.shape[d] - 1) * strides[d] + 1
                    }
                })
                .collect();
            let ct_x = e.op1(
                Slice {
                    start,
                    limit,
                    strides,
                },
                ct,
            );
            let ct_v = lin(1).then(|| {
                let all = |t: &Tensor| {
                    let r = t.ndim();
                    e.op1(
                        ReduceSum {
                            axes: (0..r).collect(),
                        },
                        t,
                    )
                };
                e.sub(&all(ct), &all(&ct_x))
            });
            vec![lin(0).then_some(ct_x), ct_v]
        }
        Concatenate { dimension } => {
            let d = *dimension;
            let ca = ct.aval()?;
            let mut offset = 0;
            let mut outs = vec![];
            for op in x {
                let a = op.aval();
                let len = a.shape[d];
                outs.push(op.is_linear().then(|| {
                    let mut start = vec![0; ca.ndim()];
                    let mut limit = ca.shape.clone();
                    start[d] = offset;
                    limit[d] = offset + len;
                    e.op1(
                        Slice {
                            start,
                            limit,
                            strides: vec![1; ca.ndim()],
                        },
                        ct,
                    )
                }));
                offset += len;
            }
            outs
        }
        Select => {
            let zeros = e.zeros(&ct.aval()?);
            let p = x[0].value()?;
            vec![
                None,
                lin(1).then(|| e.op(Select, &[p, ct, &zeros])),
                lin(2).then(|| e.op(Select, &[p, &zeros, ct])),
            ]
        }
        DotGeneral {
            lhs_contracting: lc,
            rhs_contracting: rc,
            lhs_batch: lb,
            rhs_batch: rb,
        } => {
            if lin(0) {
                let (la, r) = (x[0].aval(), x[1].value()?);
                only(0, dot_transpose_lhs(e, ct, r, &la, lc, rc, lb, rb))
            } else {
                // out = lhs · rhs  ⇔  out' = rhs · lhs with the output dimensions
                // rearranged: transpose the rhs by the same rule with the roles swapped.
                let (l, ra) = (x[0].value()?, x[1].aval());
                let nb = lb.len();
                let la = l.aval().expect("residuals did not fail");
                let n_lfree = la.ndim() - nb - lc.len();
                let n_rfree = ra.ndim() - nb - rc.len();
                // ct dims: batch, lhs free, rhs free -> batch, rhs free, lhs free
                let mut perm: Vec<usize> = (0..nb).collect();
                perm.extend(nb + n_lfree..nb + n_lfree + n_rfree);
                perm.extend(nb..nb + n_lfree);
                let ct_swapped = if perm.iter().enumerate().all(|(i, &p)| i == p) {
                    ct.clone()
                } else {
                    e.op1(Transpose { permutation: perm }, ct)
                };
                only(1, dot_transpose_lhs(e, &ct_swapped, l, &ra, rc, lc, rb, lb))
            }
        }
        Gather { .. }
        | ScatterAdd { .. }
        | Scatter {
            combine: crate::ir::ScatterCombine::Set,
            ..
        }
        | DynamicSlice { .. }
        | DynamicUpdateSlice => return indexing::transpose_indexing(e, prim, x, ct),
        // x = op(a)⁻¹ b (or b op(a)⁻¹): the cotangent of b solves with op(a) transposed
        TriangularSolve {
            left_side,
            lower,
            transpose_a,
            unit_diagonal,
        } => {
            let p = TriangularSolve {
                left_side: *left_side,
                lower: *lower,
                transpose_a: !transpose_a,
                unit_diagonal: *unit_diagonal,
            };
            vec![None, Some(e.op(p, &[x[0].value()?, ct]))]
        }
        Solve { transpose_a } => {
            let p = Solve {
                transpose_a: !transpose_a,
            };
            vec![None, Some(e.op(p, &[x[0].value()?, ct]))]
        }
        // Not linear in any operand: the linearity checker rejects these before any rule
        // runs, so reaching one is an internal error, reported as such.
        nonlinear!() => {
            return Err(Error::NotLinear {
                op: prim.name().to_string(),
                msg: "has no transpose rule: it is not linear".into(),
                loc: e.loc,
            })
        }
    };
    Ok(out)
}

fn reshape_to(e: &Emit, t: &Tensor, shape: &[usize]) -> Tensor {
    if crate::ir::same_shape(t.shape(), shape) {
        t.clone()
    } else {
        e.op1(
            Primitive::Reshape {
                new_sizes: shape.to_vec(),
            },
            t,
        )
    }
}

/// The cotangent of the lhs of `dot_general(lhs, rhs)` (lhs aval `la`) given the output's
/// cotangent `ct` (dimensions: batch, lhs free, rhs free).
#[allow(clippy::too_many_arguments)]
fn dot_transpose_lhs(
    e: &Emit,
    ct: &Tensor,
    rhs: &Tensor,
    la: &Aval,
    lc: &[usize],
    rc: &[usize],
    lb: &[usize],
    rb: &[usize],
) -> Tensor {
    let ra = rhs.aval().expect("residuals did not fail");
    let nb = lb.len();
    let lfree: Vec<usize> = (0..la.ndim())
        .filter(|d| !lc.contains(d) && !lb.contains(d))
        .collect();
    let rfree: Vec<usize> = (0..ra.ndim())
        .filter(|d| !rc.contains(d) && !rb.contains(d))
        .collect();
    // Contract ct's rhs-free dimensions with rhs's free dimensions, batch with batch.
    let ct_rfree: Vec<usize> = (nb + lfree.len()..nb + lfree.len() + rfree.len()).collect();
    let g = e.op(
        Primitive::DotGeneral {
            lhs_contracting: ct_rfree,
            rhs_contracting: rfree.clone(),
            lhs_batch: (0..nb).collect(),
            rhs_batch: rb.to_vec(),
        },
        &[ct, rhs],
    );
    // g's dimensions: batch, lhs free, then rhs's remaining (contracting) dimensions in
    // increasing order, each standing for its partner lhs contracting dimension.
    let mut rc_sorted: Vec<(usize, usize)> = rc.iter().copied().zip(lc.iter().copied()).collect();
    rc_sorted.sort();
    let src: Vec<usize> = lb
        .iter()
        .copied()
        .chain(lfree.iter().copied())
        .chain(rc_sorted.iter().map(|&(_, l)| l))
        .collect();
    let perm: Vec<usize> = (0..la.ndim())
        .map(|d| {
            src.iter()
                .position(|&s| s == d)
                .expect("every lhs dimension appears")
        })
        .collect();
    if perm.iter().enumerate().all(|(i, &p)| i == p) {
        g
    } else {
        e.op1(Primitive::Transpose { permutation: perm }, &g)
    }
}

/// The transpose of a linear program as a program: inputs are the same residuals, then one
/// cotangent per output; outputs are the cotangents of the linear inputs.
///
/// ```
/// use ferrax::{transpose_program, Program};
/// let lin = Program::parse("{ lambda ; r:f64[2] t:f64[2] . let u:f64[] = dot_general[lhs_contracting=(0,) rhs_contracting=(0,) lhs_batch=() rhs_batch=()] r t in (u) }").unwrap();
/// let tr = transpose_program(&lin, 1).unwrap();
/// assert_eq!(tr.to_string(), "{ lambda ; a:f64[2] b:f64[] . let\n    c:f64[2] = dot_general[lhs_contracting=() rhs_contracting=() lhs_batch=() rhs_batch=()] b a\n  in (c) }");
/// ```
pub fn transpose_program(p: &Program, n_res: usize) -> Result<Program> {
    p.check()?;
    classify(p, n_res)?;
    let mut avals: Vec<Aval> = p.inputs[..n_res]
        .iter()
        .map(|v| p.aval(*v).clone())
        .collect();
    avals.extend(p.out_avals());
    let lin_avals: Vec<Aval> = p.inputs[n_res..]
        .iter()
        .map(|v| p.aval(*v).clone())
        .collect();
    let (prog, _) = trace_flat(&avals, |args| {
        let (res, cts) = args.split_at(n_res);
        let cts: Vec<Option<Tensor>> = cts.iter().cloned().map(Some).collect();
        let outs = transpose_call(p, n_res, res, &cts)?;
        Ok(materialize(outs, &lin_avals))
    })?;
    Ok(prog.dce())
}
