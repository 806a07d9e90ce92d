//! Transposition through control flow: a linear `cond` transposes branch by branch, a linear
//! `scan` transposes to a scan in the other direction.
//!
//! Part of the transpose pass (`transpose`), which routes the control-flow primitives here.
//! The kinds come from the linearity checker (`linearity::control`): residual and zero
//! operands are known values, linear ones receive cotangents.
//!
//! * **cond**: the same index picks the transpose of the branch that ran. Every transposed
//!   branch takes the known operands and the output cotangents and gives one cotangent per
//!   linear operand, built as zeros where a branch gives none, so the branches agree.
//! * **scan**: if `c' = f(c, x)` runs forwards, the cotangent of `c` is `fᵀ` of the
//!   cotangent of `c'` (plus what the step's output `y` sends back), so the transposed loop
//!   runs backwards, carrying the carries' cotangents. A linear const is read by every
//!   iteration: its cotangent is the sum over iterations, accumulated in an extra carry.
//!   Linear xs get their cotangents as the transposed loop's stacked outputs; the known xs
//!   (stacked residuals among them) are read again, in the other direction. A symbolic zero
//!   cotangent of an output stays symbolic inside the transposed body.
//!
//! A linear scan must not carry a residual value (a counter, say): the transposed loop would
//! need that value at every iteration, in reverse. Partial evaluation never makes one (known
//! carries stay in the primal loop); a function declared linear that does is refused.

use crate::ir::{Aval, Closed, Error, Primitive, Program, RematPolicy, Result, ScanShape};
use crate::passes::linearity::control::{scan_kinds, KindError};
use crate::passes::linearity::{classify_kinds, Kind};
use crate::passes::transpose::{transpose_kinds, transpose_program, LinArg};
use crate::trace::{materialize, trace_closed, Emit, Tensor};

/// The cotangents of a control-flow equation's operands (`None` for those that are not
/// linear, or receive nothing), given its operands and the cotangents of its outputs.
pub(crate) fn transpose_control(
    e: &Emit,
    prim: &Primitive,
    x: &[LinArg],
    ks: &[Kind],
    cts: &[Option<Tensor>],
) -> Result<Vec<Option<Tensor>>> {
    match prim {
        Primitive::Cond { branches } => transpose_cond(e, branches, x, ks, cts),
        Primitive::WhileLinear { .. } => transpose_while_linear(e, prim, x, cts),
        Primitive::Checkpoint { body, policy } => {
            transpose_checkpoint(e, body.program(), policy, x, ks, cts)
        }
        // the map of the body's transpose: each member transposes its own part, the
        // collectives inside by their own rules
        Primitive::NamedMap {
            body,
            axis_name,
            axis_size,
        } => {
            if cts.iter().all(Option::is_none) {
                return Ok(vec![None; x.len()]);
            }
            let t = Transposer::new(x, cts)?.per_member();
            let prim = Primitive::NamedMap {
                body: t.transpose(body.program(), ks, "a transposed named_map")?,
                axis_name: axis_name.clone(),
                axis_size: *axis_size,
            };
            Ok(t.spread(e.multi(prim, &t.args(None))?))
        }
        // a custom rule used in a linear program: the body is what is linear, transposed
        // as a checkpoint that stores everything (transposition is not differentiation)
        Primitive::CustomJvp { body, .. } | Primitive::CustomVjp { body, .. } => {
            transpose_checkpoint(e, body.program(), &RematPolicy::Everything, x, ks, cts)
        }
        Primitive::CustomLin {
            forward,
            transpose,
            n_nonlin,
        } => transpose_custom_lin(e, (forward, transpose), *n_nonlin, x, cts),
        other => match other.as_scan() {
            Some((body, shape)) => transpose_scan(e, body.program(), &shape, x, ks, cts),
            None => Err(Error::internal(format!(
                "`{}` is not control flow but reached its transpose rule",
                other.name()
            ))),
        },
    }
}

/// A checkpoint transposes to a checkpoint of its body's transpose (taking the known
/// operands and the output cotangents), so what the body recomputes from its known operands
/// is recomputed in the transposed map too.
fn transpose_checkpoint(
    e: &Emit,
    body: &Program,
    policy: &crate::ir::RematPolicy,
    x: &[LinArg],
    ks: &[Kind],
    cts: &[Option<Tensor>],
) -> Result<Vec<Option<Tensor>>> {
    if cts.iter().all(Option::is_none) {
        return Ok(vec![None; x.len()]);
    }
    let t = Transposer::new(x, cts)?;
    let prim = Primitive::Checkpoint {
        body: t.transpose(body, ks, "a transposed checkpoint")?,
        policy: policy.clone(),
    };
    Ok(t.spread(e.multi(prim, &t.args(None))?))
}

/// A `custom_lin` transposes to the one with its two maps swapped, over the same nonlinear
/// operands: the transpose of the linearization of a `custom_vjp` runs its `bwd`.
fn transpose_custom_lin(
    e: &Emit,
    (forward, transpose): (&Closed, &Closed),
    n_nonlin: usize,
    x: &[LinArg],
    cts: &[Option<Tensor>],
) -> Result<Vec<Option<Tensor>>> {
    if cts.iter().all(Option::is_none) {
        return Ok(vec![None; x.len()]);
    }
    let cts = materialize(cts.to_vec(), &forward.program().out_avals());
    let mut args: Vec<&Tensor> = x[..n_nonlin]
        .iter()
        .map(LinArg::value)
        .collect::<Result<_>>()?;
    args.extend(cts.iter());
    let prim = Primitive::CustomLin {
        forward: transpose.clone(),
        transpose: forward.clone(),
        n_nonlin,
    };
    let mut out: Vec<Option<Tensor>> = vec![None; n_nonlin];
    out.extend(e.multi(prim, &args)?.into_iter().map(Some));
    Ok(out)
}

/// A forward `while_linear` transposes to a transposed one over the same residuals (its
/// step transposed with respect to the fixed tangents and the tangent carry), and back.
fn transpose_while_linear(
    e: &Emit,
    prim: &Primitive,
    x: &[LinArg],
    cts: &[Option<Tensor>],
) -> Result<Vec<Option<Tensor>>> {
    let Primitive::WhileLinear {
        body,
        step,
        n_consts,
        n_lin_consts,
        transposed,
        checkpoints,
    } = prim
    else {
        return Err(Error::internal(
            "transpose_while_linear on another primitive",
        ));
    };
    if cts.iter().all(Option::is_none) {
        return Ok(vec![None; x.len()]);
    }
    let n_carry = body.program().outputs.len();
    let n_res = n_consts + 1 + n_carry;
    // the step reads the consts and the carry (not the trip count) before its linear inputs
    let t_step = transpose_program(step.program(), n_consts + n_carry)?;
    let out_avals = step.program().out_avals();
    let cts = materialize(cts.to_vec(), &out_avals);
    let mut args: Vec<&Tensor> = x[..n_res]
        .iter()
        .map(LinArg::value)
        .collect::<Result<_>>()?;
    args.extend(cts.iter());
    let outs = e.multi(
        Primitive::WhileLinear {
            body: body.clone(),
            step: Closed::new(t_step),
            n_consts: *n_consts,
            n_lin_consts: *n_lin_consts,
            transposed: !transposed,
            checkpoints: *checkpoints,
        },
        &args,
    )?;
    let mut result = vec![None; n_res];
    result.extend(
        outs.into_iter()
            .zip(&x[n_res..])
            .map(|(c, o)| o.is_linear().then_some(c)),
    );
    Ok(result)
}

fn not_linear(e: &Emit, op: &str, msg: String) -> Error {
    Error::NotLinear {
        op: op.into(),
        msg,
        loc: e.loc,
    }
}

fn transpose_cond(
    e: &Emit,
    branches: &[Closed],
    x: &[LinArg],
    ks: &[Kind],
    cts: &[Option<Tensor>],
) -> Result<Vec<Option<Tensor>>> {
    let index = x[0].value()?;
    let t = Transposer::new(&x[1..], cts)?;
    let transposed = branches
        .iter()
        .map(|b| t.transpose(b.program(), &ks[1..], "a transposed sub-program"))
        .collect::<Result<Vec<_>>>()?;
    let prim = Primitive::Cond {
        branches: transposed,
    };
    let mut out = vec![None];
    out.extend(t.spread(e.multi(prim, &t.args(Some(index)))?));
    Ok(out)
}

/// The operands and sub-program transposes shared by `cond` and `checkpoint`: the known
/// operands (`ops` that are not linear) and the given cotangents, which the transposed
/// sub-programs take in that order, and a function making one sub-program's transpose (it
/// gives one cotangent per linear operand, zeros where the program gives none).
struct Transposer<'a> {
    ops: &'a [LinArg],
    cts: &'a [Option<Tensor>],
    known: Vec<&'a Tensor>,
    given: Vec<&'a Tensor>,
    avals: Vec<Aval>,
    linear_avals: Vec<Aval>,
}

impl<'a> Transposer<'a> {
    fn new(ops: &'a [LinArg], cts: &'a [Option<Tensor>]) -> Result<Transposer<'a>> {
        let known: Vec<&Tensor> = ops
            .iter()
            .filter(|o| !o.is_linear())
            .map(LinArg::value)
            .collect::<Result<_>>()?;
        let given: Vec<&Tensor> = cts.iter().flatten().collect();
        let mut avals: Vec<Aval> = known.iter().map(|t| t.aval()).collect::<Result<_>>()?;
        avals.extend(given.iter().map(|t| t.aval()).collect::<Result<Vec<_>>>()?);
        let linear_avals = ops
            .iter()
            .filter(|o| o.is_linear())
            .map(LinArg::aval)
            .collect();
        Ok(Transposer {
            ops,
            cts,
            known,
            given,
            avals,
            linear_avals,
        })
    }

    /// For a body that one member runs: every operand and cotangent without its leading
    /// (members') dimension.
    fn per_member(mut self) -> Self {
        let strip = |a: &mut Aval| {
            if !a.shape.is_empty() {
                a.shape.remove(0);
            }
        };
        self.avals.iter_mut().for_each(strip);
        self.linear_avals.iter_mut().for_each(strip);
        self
    }

    /// `p` (taking the operands) transposed, as a closed program.
    fn transpose(&self, p: &Program, op_kinds: &[Kind], what: &str) -> Result<Closed> {
        let kinds = classify_kinds(p, op_kinds)?;
        trace_closed(what, &self.avals, |args| {
            let mut args = args.into_iter();
            let known_in: Vec<Option<Tensor>> = self
                .ops
                .iter()
                .map(|o| (!o.is_linear()).then(|| args.next()).flatten())
                .collect();
            let out_cts: Vec<Option<Tensor>> = self
                .cts
                .iter()
                .map(|c| c.as_ref().and_then(|_| args.next()))
                .collect();
            let ct_in = transpose_kinds(p, &kinds, &known_in, &out_cts)?;
            let linear_cts = ct_in
                .into_iter()
                .zip(self.ops)
                .filter(|(_, o)| o.is_linear())
                .map(|(c, _)| c)
                .collect();
            Ok(materialize(linear_cts, &self.linear_avals))
        })
        .map(Closed::new)
    }

    /// The transposed equation's operands after `first`: the known operands, the cotangents.
    fn args(&self, first: Option<&'a Tensor>) -> Vec<&'a Tensor> {
        let mut args: Vec<&Tensor> = first.into_iter().collect();
        args.extend(self.known.iter().copied());
        args.extend(self.given.iter().copied());
        args
    }

    /// One cotangent per operand from the transposed equation's results (its linear ones).
    fn spread(&self, results: Vec<Tensor>) -> Vec<Option<Tensor>> {
        let mut results = results.into_iter();
        self.ops
            .iter()
            .map(|o| if o.is_linear() { results.next() } else { None })
            .collect()
    }
}

fn transpose_scan(
    e: &Emit,
    body: &Program,
    l: &ScanShape,
    x: &[LinArg],
    ks: &[Kind],
    cts: &[Option<Tensor>],
) -> Result<Vec<Option<Tensor>>> {
    let (nc, ncar) = (l.n_consts, l.n_carry);
    let sk = scan_kinds(body, nc, ncar, ks).map_err(|err| match err {
        KindError::Msg(m) => not_linear(e, "scan", m),
        KindError::Inner(inner) => inner,
    })?;
    let carry_kinds = &sk.body_inputs[nc..nc + ncar];
    if let Some(i) = carry_kinds.iter().position(|k| *k == Kind::Residual) {
        return Err(not_linear(
            e,
            "scan",
            format!(
                "carry {i} is a non-linear value carried alongside linear ones; transposing \
                 would need it at every iteration in reverse (compute it outside the linear \
                 function)"
            ),
        ));
    }
    let consts = &x[..nc];
    let xs = &x[nc + ncar..];
    let linear = |k: &Kind| *k == Kind::Linear;
    let body_avals = body.in_avals();
    let const_avals = &body_avals[..nc];
    let carry_avals = &body_avals[nc..nc + ncar];
    let x_avals = &body_avals[nc + ncar..];
    let out_avals = body.out_avals();

    // The transposed loop's operands: known consts; carries: the carries' cotangents, then
    // one accumulator per linear const; xs: the known xs, then the given ys' cotangents.
    let mut t_args: Vec<Tensor> = vec![];
    let mut t_avals: Vec<Aval> = vec![];
    for (c, a) in consts.iter().zip(const_avals) {
        if !c.is_linear() {
            t_args.push(c.value()?.clone());
            t_avals.push(a.clone());
        }
    }
    let n_known_consts = t_args.len();
    let zeros = Emit { loc: e.loc };
    for (i, a) in carry_avals.iter().enumerate() {
        if linear(&carry_kinds[i]) {
            t_args.push(cts[i].clone().unwrap_or_else(|| zeros.zeros(a)));
            t_avals.push(a.clone());
        }
    }
    for (c, a) in consts.iter().zip(const_avals) {
        if c.is_linear() {
            t_args.push(zeros.zeros(a));
            t_avals.push(a.clone());
        }
    }
    let n_t_carry = t_args.len() - n_known_consts;
    for (xv, a) in xs.iter().zip(x_avals) {
        if !xv.is_linear() {
            t_args.push(xv.value()?.clone());
            t_avals.push(a.clone());
        }
    }
    for (c, a) in cts[ncar..].iter().zip(&out_avals[ncar..]) {
        if c.is_some() {
            t_avals.push(a.clone());
        }
    }
    t_args.extend(cts[ncar..].iter().flatten().cloned());

    let linear_xs: Vec<Aval> = xs
        .iter()
        .zip(x_avals)
        .filter(|(xv, _)| xv.is_linear())
        .map(|(_, a)| a.clone())
        .collect();
    let linear_carries: Vec<Aval> = carry_avals
        .iter()
        .zip(carry_kinds)
        .filter(|(_, k)| linear(k))
        .map(|(a, _)| a.clone())
        .collect();
    let t_body = trace_closed("a transposed sub-program", &t_avals, |args| {
        let mut args = args.into_iter();
        let mut known_in: Vec<Option<Tensor>> = consts
            .iter()
            .map(|c| (!c.is_linear()).then(|| args.next()).flatten())
            .collect();
        let ct_carry: Vec<Option<Tensor>> = carry_kinds
            .iter()
            .map(|k| linear(k).then(|| args.next()).flatten())
            .collect();
        let acc: Vec<Tensor> = consts
            .iter()
            .filter(|c| c.is_linear())
            .filter_map(|_| args.next())
            .collect();
        // carries are linear or zero: zeros are built by the body's transposition
        known_in.extend(std::iter::repeat_n(None, ncar));
        known_in.extend(
            xs.iter()
                .map(|xv| (!xv.is_linear()).then(|| args.next()).flatten()),
        );
        let mut out_cts = ct_carry;
        out_cts.extend(
            cts[ncar..]
                .iter()
                .map(|c| c.as_ref().and_then(|_| args.next())),
        );
        let ct_in = transpose_kinds(body, &sk.body, &known_in, &out_cts)?;
        let mut ct_in = ct_in.into_iter();
        let ct_consts: Vec<Option<Tensor>> = ct_in.by_ref().take(nc).collect();
        let ct_carry_in: Vec<Option<Tensor>> = ct_in
            .by_ref()
            .take(ncar)
            .zip(carry_kinds)
            .filter(|(_, k)| linear(k))
            .map(|(c, _)| c)
            .collect();
        let ct_xs: Vec<Option<Tensor>> = ct_in
            .zip(xs)
            .filter(|(_, xv)| xv.is_linear())
            .map(|(c, _)| c)
            .collect();
        let add = Emit { loc: None };
        let mut outs = materialize(ct_carry_in, &linear_carries);
        let mut acc = acc.into_iter();
        for (c, xc) in ct_consts.into_iter().zip(consts) {
            if xc.is_linear() {
                let a = acc.next().ok_or_else(|| Error::internal("accumulators"))?;
                outs.push(match c {
                    Some(c) => add.add(&a, &c),
                    None => a,
                });
            }
        }
        outs.extend(materialize(ct_xs, &linear_xs));
        Ok(outs)
    })?;
    let refs: Vec<&Tensor> = t_args.iter().collect();
    let results = e.multi(
        Primitive::scan(
            Closed::new(t_body),
            ScanShape {
                n_consts: n_known_consts,
                n_carry: n_t_carry,
                length: l.length,
                reverse: !l.reverse,
            },
        ),
        &refs,
    )?;
    let mut results = results.into_iter();
    let ct_init: Vec<Tensor> = results.by_ref().take(linear_carries.len()).collect();
    let n_lin_consts = n_t_carry - linear_carries.len();
    let ct_consts: Vec<Tensor> = results.by_ref().take(n_lin_consts).collect();
    let mut ct_consts = ct_consts.into_iter();
    let mut ct_init = ct_init.into_iter();
    let mut out: Vec<Option<Tensor>> = consts
        .iter()
        .map(|c| {
            if c.is_linear() {
                ct_consts.next()
            } else {
                None
            }
        })
        .collect();
    // a carry's initial value is linear or zero; only a linear one receives a cotangent
    for (k, arg) in carry_kinds.iter().zip(&x[nc..nc + ncar]) {
        let c = if linear(k) { ct_init.next() } else { None };
        out.push(c.filter(|_| arg.is_linear()));
    }
    out.extend(
        xs.iter()
            .map(|xv| if xv.is_linear() { results.next() } else { None }),
    );
    Ok(out)
}
