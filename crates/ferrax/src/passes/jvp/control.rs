//! Forward mode through control flow: the jvp rules of `cond` and `scan`.
//!
//! Part of the jvp pass (`jvp`), which routes the control-flow primitives here because their
//! rules transform sub-programs instead of combining tensors. The jvp of a loop is a loop of
//! jvps: the body's jvp program becomes the body of a new `scan` that carries primals and
//! tangents side by side, so the loop stays a loop. The jvp of a `cond` is a `cond` of the
//! branches' jvps.
//!
//! **Symbolic zeros survive.** Only values with a nonzero tangent get a tangent slot. Which
//! carries have one is a fixpoint: a carry starts with a tangent if its initial value has
//! one, and gains one if the body, given the current tangents, gives its output a nonzero
//! tangent; the flags only grow, so the iteration ends after at most one round per carry.
//! A carry whose tangent is zero at the start and stays zero through the body never gets a
//! slot. Branches of a `cond` agree on which outputs have tangents (the union of what each
//! gives); a branch whose tangent for such an output is zero builds the zero.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use crate::ir::dependence::grow_until_fixed;
use crate::ir::{Closed, Error, Primitive, Program, Result, ScanShape};
use crate::passes::jvp::custom::jvp_custom;
use crate::passes::jvp::jvp_call;
use crate::trace::{trace_closed, Emit, Tensor};

/// The jvp rule of a control-flow equation: its primal outputs and their tangents (`None` =
/// zero), given its operands `x` and their tangents `t`.
pub(crate) fn jvp_control(
    emit: &Emit,
    prim: &Primitive,
    x: &[Tensor],
    t: &[Option<Tensor>],
) -> Result<(Vec<Tensor>, Vec<Option<Tensor>>)> {
    let _active = CacheScope::enter();
    match prim {
        Primitive::Cond { branches } => jvp_cond(emit, branches, x, t),
        Primitive::While {
            cond,
            body,
            n_cond_consts,
            n_body_consts,
            ..
        } => jvp_while(
            emit,
            prim,
            (cond, body),
            (*n_cond_consts, *n_body_consts),
            x,
            t,
        ),
        Primitive::WhileLinear { .. } => jvp_while_linear(emit, prim, x, t),
        Primitive::Checkpoint { body, policy } => {
            jvp_of_call(emit, body, x, t, |body| Primitive::Checkpoint {
                body,
                policy: policy.clone(),
            })
        }
        // the map of the body's jvp: tangents are per member, as the operands
        Primitive::NamedMap {
            body,
            axis_name,
            axis_size,
        } => jvp_of_call(emit, body, x, t, |body| Primitive::NamedMap {
            body,
            axis_name: axis_name.clone(),
            axis_size: *axis_size,
        }),
        Primitive::CustomJvp { .. } | Primitive::CustomVjp { .. } | Primitive::CustomLin { .. } => {
            jvp_custom(emit, prim, x, t)
        }
        other => match other.as_scan() {
            Some((body, shape)) => jvp_scan(emit, body, &shape, x, t),
            None => Err(Error::internal(format!(
                "`{}` is not control flow but reached its jvp rule",
                other.name()
            ))),
        },
    }
}

/// A sub-program's jvp, by the sub-program (its address, kept alive by the `Closed` held
/// beside it) and the tangent flags asked for.
type CacheKey = (usize, Vec<bool>, Option<Vec<bool>>);
/// The sub-program (held so its address is not reused), its jvp and the nonzero flags.
type CacheEntry = (Closed, Program, Vec<bool>);

thread_local! {
    /// How many control-flow jvp rules are running on this thread (nested in each other).
    static ACTIVE: Cell<usize> = const { Cell::new(0) };
    /// The jvps of sub-programs made while the outermost rule runs. A scan's rule asks for
    /// its body's jvp twice (once to learn which carries get tangents, once to build it), so
    /// without this a loop nested `d` deep would trace its innermost body `2^d` times.
    static CACHE: RefCell<HashMap<CacheKey, CacheEntry>> =
        RefCell::new(HashMap::new());
}

/// Marks a control-flow jvp rule as running; the cache is emptied when the outermost ends.
struct CacheScope;

impl CacheScope {
    fn enter() -> CacheScope {
        ACTIVE.with(|a| a.set(a.get() + 1));
        CacheScope
    }
}

impl Drop for CacheScope {
    fn drop(&mut self) {
        let left = ACTIVE.with(|a| {
            a.set(a.get().saturating_sub(1));
            a.get()
        });
        if left == 0 {
            CACHE.with(|c| c.borrow_mut().clear());
        }
    }
}

/// [`jvp_sub_uncached`] of a held sub-program, remembered while the outermost control-flow
/// rule runs.
fn jvp_sub(c: &Closed, in_t: &[bool], out_t: Option<&[bool]>) -> Result<(Program, Vec<bool>)> {
    let key: CacheKey = (
        std::sync::Arc::as_ptr(&c.0) as usize,
        in_t.to_vec(),
        out_t.map(<[bool]>::to_vec),
    );
    if let Some((_, p, nz)) = CACHE.with(|m| m.borrow().get(&key).cloned()) {
        return Ok((p, nz));
    }
    let (p, nz) = jvp_sub_uncached(c.program(), in_t, out_t)?;
    CACHE.with(|m| {
        m.borrow_mut()
            .insert(key, (c.clone(), p.clone(), nz.clone()))
    });
    Ok((p, nz))
}

/// The jvp of a sub-program as a program: inputs are its inputs, then one tangent per input
/// flagged in `in_t`; outputs are its outputs, then one tangent per output flagged in
/// `out_t` (zeros built where the jvp gives none), or, when `out_t` is `None`, per output
/// whose tangent is not a symbolic zero. Also returns which outputs have nonzero tangents.
fn jvp_sub_uncached(
    p: &Program,
    in_t: &[bool],
    out_t: Option<&[bool]>,
) -> Result<(Program, Vec<bool>)> {
    let in_avals = p.in_avals();
    let out_avals = p.out_avals();
    let n = in_avals.len();
    let mut avals = in_avals.clone();
    avals.extend(
        in_avals
            .iter()
            .zip(in_t)
            .filter(|(_, &w)| w)
            .map(|(a, _)| a.clone()),
    );
    let mut nonzero = vec![false; out_avals.len()];
    let prog = trace_closed("the jvp of a closed sub-program", &avals, |args| {
        let (primals, rest) = args.split_at(n);
        let mut rest = rest.iter();
        let tangents: Vec<Option<Tensor>> = in_t
            .iter()
            .map(|&w| if w { rest.next().cloned() } else { None })
            .collect();
        let (mut outs, touts) = jvp_call(p, primals, &tangents)?;
        nonzero = touts.iter().map(Option::is_some).collect();
        let keep = out_t.map_or_else(|| nonzero.clone(), <[bool]>::to_vec);
        let zeros = Emit { loc: None };
        for ((t, a), k) in touts.into_iter().zip(&out_avals).zip(keep) {
            if k {
                outs.push(t.unwrap_or_else(|| zeros.zeros(a)));
            }
        }
        Ok(outs)
    })?;
    Ok((prog, nonzero))
}

/// Tangent flags of values: set where a tangent is given and the value is a float (integer
/// and boolean values have no tangent space).
fn tangent_flags(x: &[Tensor], t: &[Option<Tensor>]) -> Vec<bool> {
    x.iter()
        .zip(t)
        .map(|(x, t)| t.is_some() && x.dtype().is_some_and(|d| d.is_float()))
        .collect()
}

fn jvp_cond(
    emit: &Emit,
    branches: &[Closed],
    x: &[Tensor],
    t: &[Option<Tensor>],
) -> Result<(Vec<Tensor>, Vec<Option<Tensor>>)> {
    let (index, operands) = x
        .split_first()
        .ok_or_else(|| Error::internal("cond without an index reached its jvp rule"))?;
    let in_t = tangent_flags(operands, &t[1..]);
    let Some(first) = branches.first() else {
        return Err(Error::internal(
            "cond without branches reached its jvp rule",
        ));
    };
    let n_out = first.program().outputs.len();
    // which outputs have a tangent in some branch: all branches give those
    let mut union = vec![false; n_out];
    for b in branches {
        let (_, nonzero) = jvp_sub(b, &in_t, None)?;
        for (u, nz) in union.iter_mut().zip(nonzero) {
            *u |= nz;
        }
    }
    let jvp_branches = branches
        .iter()
        .map(|b| jvp_sub(b, &in_t, Some(&union)).map(|(p, _)| Closed::new(p)))
        .collect::<Result<Vec<_>>>()?;
    let mut args: Vec<&Tensor> = vec![index];
    args.extend(operands);
    args.extend(
        t[1..]
            .iter()
            .zip(&in_t)
            .filter(|(_, &w)| w)
            .filter_map(|(t, _)| t.as_ref()),
    );
    let mut outs = emit.multi(
        Primitive::Cond {
            branches: jvp_branches,
        },
        &args,
    )?;
    let mut tangent_outs = outs.split_off(n_out).into_iter();
    let touts = union
        .iter()
        .map(|&u| if u { tangent_outs.next() } else { None })
        .collect();
    Ok((outs, touts))
}

fn jvp_scan(
    emit: &Emit,
    body: &Closed,
    s: &ScanShape,
    x: &[Tensor],
    t: &[Option<Tensor>],
) -> Result<(Vec<Tensor>, Vec<Option<Tensor>>)> {
    let p = body.program();
    let (nc, ncar) = (s.n_consts, s.n_carry);
    let n = x.len();
    let mut in_t = tangent_flags(x, t);
    // the carries' tangents: a fixpoint, the flags only grow
    let nonzero = grow_until_fixed(&mut in_t, (nc, 0, ncar), |f| Ok(jvp_sub(body, f, None)?.1))?;
    // a carry with a tangent slot gives one back, zero or not
    let mut out_t: Vec<bool> = in_t[nc..nc + ncar].to_vec();
    out_t.extend_from_slice(&nonzero[ncar..]);
    let (mut jb, _) = jvp_sub(body, &in_t, Some(&out_t))?;

    // Reorder to the scan's layout: each group (consts, carry, xs) followed by its tangents.
    let groups = [0..nc, nc..nc + ncar, nc + ncar..n];
    let tangent_var: Vec<Option<usize>> = {
        let mut k = n;
        in_t.iter()
            .map(|&w| {
                w.then(|| {
                    k += 1;
                    k - 1
                })
            })
            .collect()
    };
    let zeros = Emit { loc: emit.loc };
    let mut inputs = Vec::with_capacity(jb.inputs.len());
    let mut args: Vec<Tensor> = Vec::with_capacity(jb.inputs.len());
    let mut counts = [0usize; 3];
    for (g, range) in groups.iter().enumerate() {
        inputs.extend(range.clone().map(|i| jb.inputs[i]));
        args.extend(range.clone().map(|i| x[i].clone()));
        for i in range.clone() {
            if let Some(k) = tangent_var[i] {
                inputs.push(jb.inputs[k]);
                // a carry that gained a tangent in the fixpoint starts from zero
                let aval = x[i].aval()?;
                args.push(t[i].clone().unwrap_or_else(|| zeros.zeros(&aval)));
                counts[g] += 1;
            }
        }
    }
    jb.inputs = inputs;
    let ny = p.outputs.len() - ncar;
    let (primal_outs, tangent_outs) = jb.outputs.split_at(ncar + ny);
    let n_tcarry = counts[1];
    let mut outputs = primal_outs[..ncar].to_vec();
    outputs.extend_from_slice(&tangent_outs[..n_tcarry]);
    outputs.extend_from_slice(&primal_outs[ncar..]);
    outputs.extend_from_slice(&tangent_outs[n_tcarry..]);
    jb.outputs = outputs;

    let refs: Vec<&Tensor> = args.iter().collect();
    let outs = emit.multi(
        Primitive::scan(
            Closed::new(jb),
            ScanShape {
                n_consts: nc + counts[0],
                n_carry: ncar + n_tcarry,
                ..*s
            },
        ),
        &refs,
    )?;
    // back to the equation's outputs: carry, then ys, each with its tangent or a zero
    let mut it = outs.into_iter();
    let carry: Vec<Tensor> = it.by_ref().take(ncar).collect();
    let tcarry: Vec<Tensor> = it.by_ref().take(n_tcarry).collect();
    let ys: Vec<Tensor> = it.by_ref().take(ny).collect();
    let mut tys = it;
    let mut tcarry = tcarry.into_iter();
    let mut touts: Vec<Option<Tensor>> = out_t[..ncar]
        .iter()
        .map(|&w| if w { tcarry.next() } else { None })
        .collect();
    touts.extend(
        out_t[ncar..]
            .iter()
            .map(|&w| if w { tys.next() } else { None }),
    );
    let mut primals = carry;
    primals.extend(ys);
    Ok((primals, touts))
}

/// The jvp of a while loop: one loop over (primal, tangent) carries. Which carries have
/// tangents is a fixpoint, as for scan; the cond reads the primals only (a predicate has no
/// tangent), so it takes the tangent carries as inputs it ignores.
fn jvp_while(
    emit: &Emit,
    prim: &Primitive,
    (cond, body): (&Closed, &Closed),
    (ncc, nbc): (usize, usize),
    x: &[Tensor],
    t: &[Option<Tensor>],
) -> Result<(Vec<Tensor>, Vec<Option<Tensor>>)> {
    let flags = tangent_flags(x, t);
    // the body's inputs: its consts, then the carry
    let mut in_t = flags[ncc..].to_vec();
    let ncar = x.len() - ncc - nbc;
    grow_until_fixed(&mut in_t, (nbc, 0, ncar), |f| Ok(jvp_sub(body, f, None)?.1))?;
    let carry_t: Vec<bool> = in_t[nbc..].to_vec();
    let (mut jb, _) = jvp_sub(body, &in_t, Some(&carry_t))?;
    // jb takes (consts, carry, tangents of the flagged consts, of the flagged carries);
    // the while's body takes (consts, their tangents, carry, its tangents)
    let n_tbc = in_t[..nbc].iter().filter(|w| **w).count();
    let n_tcar = carry_t.iter().filter(|w| **w).count();
    let n_body_in = nbc + ncar;
    let mut inputs = jb.inputs[..nbc].to_vec();
    inputs.extend_from_slice(&jb.inputs[n_body_in..n_body_in + n_tbc]);
    inputs.extend_from_slice(&jb.inputs[nbc..n_body_in]);
    inputs.extend_from_slice(&jb.inputs[n_body_in + n_tbc..]);
    jb.inputs = inputs;
    // the cond, taking the tangent carries too and ignoring them
    let mut jc = cond.program().clone();
    for (i, w) in carry_t.iter().enumerate() {
        if *w {
            let a = x[ncc + nbc + i].aval()?;
            jc.avals.push(a);
            jc.inputs.push(crate::ir::Var(jc.avals.len() as u32 - 1));
        }
    }
    let zeros = Emit { loc: emit.loc };
    let tangent_or_zero = |i: usize| -> Result<Tensor> {
        let aval = x[i].aval()?;
        Ok(t[i].clone().unwrap_or_else(|| zeros.zeros(&aval)))
    };
    let mut args: Vec<Tensor> = x[..ncc + nbc].to_vec();
    for (i, w) in in_t[..nbc].iter().enumerate() {
        if *w {
            args.push(tangent_or_zero(ncc + i)?);
        }
    }
    args.extend_from_slice(&x[ncc + nbc..]);
    for (i, w) in carry_t.iter().enumerate() {
        if *w {
            args.push(tangent_or_zero(ncc + nbc + i)?);
        }
    }
    let refs: Vec<&Tensor> = args.iter().collect();
    let outs = emit.multi(
        prim.while_like(Closed::new(jc), Closed::new(jb), ncc, nbc + n_tbc),
        &refs,
    )?;
    let mut it = outs.into_iter();
    let primals: Vec<Tensor> = it.by_ref().take(ncar).collect();
    debug_assert_eq!(it.len(), n_tcar);
    let touts = carry_t
        .iter()
        .map(|&w| if w { it.next() } else { None })
        .collect();
    Ok((primals, touts))
}

/// The jvp of a primitive that calls its body on its operands (`make` rebuilds it around
/// another body): the same primitive around the body's jvp, which takes the operands and
/// their nonzero tangents. A checkpoint keeps its policy, so the tangent computation is
/// rematerialized as the primal is; a `named_map` runs the jvp member by member.
fn jvp_of_call(
    emit: &Emit,
    body: &Closed,
    x: &[Tensor],
    t: &[Option<Tensor>],
    make: impl FnOnce(Closed) -> Primitive,
) -> Result<(Vec<Tensor>, Vec<Option<Tensor>>)> {
    let flags = tangent_flags(x, t);
    let (jb, nonzero) = jvp_sub(body, &flags, None)?;
    let mut args: Vec<&Tensor> = x.iter().collect();
    args.extend(
        t.iter()
            .zip(&flags)
            .filter(|(_, f)| **f)
            .filter_map(|(t, _)| t.as_ref()),
    );
    let outs = emit.multi(make(Closed::new(jb)), &args)?;
    let n = nonzero.len();
    let mut it = outs.into_iter();
    let primals: Vec<Tensor> = it.by_ref().take(n).collect();
    let touts = nonzero
        .iter()
        .map(|&w| if w { it.next() } else { None })
        .collect();
    Ok((primals, touts))
}

/// The jvp of `while_linear`. It is linear in its linear operands, so when its residuals
/// (consts, initial carry) have no tangents, the tangent is the same primitive applied to
/// the linear operands' tangents. Otherwise the tangent flows through the primal carries
/// too: one `while_linear` whose consts, primal carries and linear operands are each paired
/// with their tangents (every float one, zeros where none is given), its body the jvp of
/// the body and its step the jvp of the step (still linear in the linear operands and
/// their tangents, given the primal carries and theirs).
fn jvp_while_linear(
    emit: &Emit,
    prim: &Primitive,
    x: &[Tensor],
    t: &[Option<Tensor>],
) -> Result<(Vec<Tensor>, Vec<Option<Tensor>>)> {
    let Primitive::WhileLinear {
        body,
        step,
        n_consts: nc,
        n_lin_consts: nl,
        transposed,
        checkpoints,
    } = prim
    else {
        return Err(Error::internal("jvp_while_linear on another primitive"));
    };
    let (nc, nl, transposed) = (*nc, *nl, *transposed);
    let n_carry = body.program().outputs.len();
    let n_res = nc + 1 + n_carry;
    let zero_or = |i: usize| -> Result<Tensor> {
        let aval = x[i].aval()?;
        Ok(t[i].clone().unwrap_or_else(|| emit.zeros(&aval)))
    };
    let flags = tangent_flags(x, t);
    if !flags[..n_res].contains(&true) {
        // the primal loop, then (linear) the same loop on the tangents
        let refs: Vec<&Tensor> = x.iter().collect();
        let primals = emit.multi(prim.clone(), &refs)?;
        if !flags[n_res..].contains(&true) {
            return Ok((primals.clone(), vec![None; primals.len()]));
        }
        let mut args: Vec<Tensor> = x[..n_res].to_vec();
        for i in n_res..x.len() {
            args.push(zero_or(i)?);
        }
        let refs: Vec<&Tensor> = args.iter().collect();
        let touts = emit.multi(prim.clone(), &refs)?;
        return Ok((primals, touts.into_iter().map(Some).collect()));
    }
    // every float const and carry gets a tangent, and so does every linear operand
    let is_float = |v: &Tensor| v.dtype().is_some_and(|d| d.is_float());
    let res_t: Vec<bool> = x[..n_res]
        .iter()
        .enumerate()
        .map(|(i, v)| i != nc && is_float(v))
        .collect();
    let consts_t = res_t[..nc].to_vec();
    let carry_t = res_t[nc + 1..].to_vec();
    let (nct, ncart) = (count(&consts_t), count(&carry_t));
    let mut body_in_t = consts_t.clone();
    body_in_t.extend_from_slice(&carry_t);
    let (mut jb, _) = jvp_sub(body, &body_in_t, Some(&carry_t))?;
    // (consts, carry, dconsts, dcarry) -> (consts, dconsts, carry, dcarry)
    jb.inputs = regroup(&jb.inputs, &[nc, n_carry, nct, ncart], &[0, 2, 1, 3]);
    let n_lin = x.len() - n_res;
    let mut step_in_t = body_in_t.clone();
    step_in_t.extend(std::iter::repeat_n(true, n_lin));
    let n_out = step.program().outputs.len();
    let (mut js, _) = jvp_sub(step, &step_in_t, Some(&vec![true; n_out]))?;
    // inputs (consts, carry, lin.., dconsts, dcarry, dlin..) -> (consts, dconsts, carry,
    // dcarry, then each linear group beside its tangents)
    let n_fixed_in = if transposed { 0 } else { nl };
    js.inputs = regroup(
        &js.inputs,
        &[
            nc,
            n_carry,
            n_fixed_in,
            n_lin - n_fixed_in,
            nct,
            ncart,
            n_fixed_in,
            n_lin - n_fixed_in,
        ],
        &[0, 4, 1, 5, 2, 6, 3, 7],
    );
    let n_fixed_out = if transposed { nl } else { 0 };
    js.outputs = regroup(
        &js.outputs,
        &[
            n_fixed_out,
            n_out - n_fixed_out,
            n_fixed_out,
            n_out - n_fixed_out,
        ],
        &[0, 2, 1, 3],
    );
    let mut args: Vec<Tensor> = x[..nc].to_vec();
    for (i, w) in consts_t.iter().enumerate() {
        if *w {
            args.push(zero_or(i)?);
        }
    }
    args.push(x[nc].clone());
    args.extend_from_slice(&x[nc + 1..n_res]);
    for (i, w) in carry_t.iter().enumerate() {
        if *w {
            args.push(zero_or(nc + 1 + i)?);
        }
    }
    let lin_groups = [n_res..n_res + n_fixed_in, n_res + n_fixed_in..x.len()];
    for g in lin_groups {
        args.extend_from_slice(&x[g.clone()]);
        for i in g {
            args.push(zero_or(i)?);
        }
    }
    let refs: Vec<&Tensor> = args.iter().collect();
    let outs = emit.multi(
        Primitive::WhileLinear {
            body: Closed::new(jb),
            step: Closed::new(js),
            n_consts: nc + nct,
            n_lin_consts: 2 * nl,
            transposed,
            checkpoints: *checkpoints,
        },
        &refs,
    )?;
    // outputs: (fixed cotangents, their tangents, carry, its tangents) when transposed,
    // (carry, its tangents) forward
    let mut it = outs.into_iter();
    let fixed: Vec<Tensor> = it.by_ref().take(n_fixed_out).collect();
    let dfixed: Vec<Tensor> = it.by_ref().take(n_fixed_out).collect();
    let rest: Vec<Tensor> = it.collect();
    let (carry, dcarry) = rest.split_at(rest.len() / 2);
    let mut primal_outs = fixed;
    primal_outs.extend_from_slice(carry);
    let mut touts: Vec<Option<Tensor>> = dfixed.into_iter().map(Some).collect();
    touts.extend(dcarry.iter().cloned().map(Some));
    Ok((primal_outs, touts))
}

fn count(flags: &[bool]) -> usize {
    flags.iter().filter(|f| **f).count()
}

/// `items` cut into consecutive groups of the given sizes, put back in the given order.
fn regroup<T: Clone>(items: &[T], sizes: &[usize], order: &[usize]) -> Vec<T> {
    let mut groups = vec![];
    let mut start = 0;
    for &n in sizes {
        groups.push(&items[start..start + n]);
        start += n;
    }
    order.iter().flat_map(|&g| groups[g].to_vec()).collect()
}
