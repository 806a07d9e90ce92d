//! Forward mode: the jvp pass.
//!
//! A pass from programs to programs, written as an interpreter: [`jvp_call`] walks a program's
//! equations with a primal and a tangent value for each variable and applies each
//! primitive's jvp rule ([`jvp_rule`], one exhaustive `match`, no wildcard arm). The rules are
//! small computations on tensors, so the interpreter computes when its inputs are concrete and
//! records a new program when a trace is in progress: [`jvp_program`] is the interpreter run
//! under a fresh trace, and a `jvp` called inside another transformation simply emits into
//! that transformation's trace.
//!
//! **Symbolic zeros.** A tangent is `Option<Tensor>`; `None` is a zero that is never built.
//! Equations whose tangent operands are all zero are evaluated on primals only. Integer and
//! boolean values always have zero tangents. Zeros are materialised only at the API boundary
//! (and inside rules that must combine a zero with a nonzero tangent, like `select`).
//!
//! **Linearity by construction.** Each rule computes its coefficients from primals and then
//! touches the tangents only with linear primitives (`mul`/`div` by a primal, `add`, `neg`,
//! structural ops, `select` on a primal predicate), so partial evaluation (`partial_eval`)
//! can split every jvp program into nonlinear primal work and a linear program.

pub(crate) mod control;
mod custom;
mod indexing;
mod linalg;

use crate::ir::{control_flow, indexing_ops, linalg_ops};
use crate::ir::{Atom, Aval, Env, Error, Primitive, Program, Result};
use crate::passes::jvp::control::jvp_control;
use crate::trace::{checked, fail, materialize, trace_flat, Emit, Tensor};

/// Runs `p` on primals and tangents (`None` = symbolic zero), computing or recording.
/// Returns the primal outputs and their tangents (`None` where zero).
pub(crate) fn jvp_call(
    p: &Program,
    primals: &[Tensor],
    tangents: &[Option<Tensor>],
) -> Result<(Vec<Tensor>, Vec<Option<Tensor>>)> {
    let n = p.inputs.len();
    if primals.len() != n || tangents.len() != n {
        return Err(Error::input(
            "jvp",
            format!(
                "the program takes {n} input(s); {} primal(s) and {} tangent(s) given",
                primals.len(),
                tangents.len()
            ),
        ));
    }
    // Primals of every variable; tangents of those that have one (absent = symbolic zero).
    let mut primal = Env::bind(p, primals.iter().cloned(), |a| Tensor::new(a.clone()));
    let mut tangent: Env<Tensor> = Env::new(p.avals.len());
    for (v, t) in p.inputs.iter().zip(tangents) {
        // Integer and boolean inputs have zero tangents whatever was given.
        if let Some(t) = t.clone().filter(|_| p.aval(*v).dtype.is_float()) {
            tangent.write(*v, t);
        }
    }
    let tangent_of = |tangent: &Env<Tensor>, a: &Atom| match a {
        Atom::Var(v) => tangent.get(*v).cloned(),
        Atom::Lit(_) => None,
    };
    for e in &p.eqns {
        let xs = e
            .inputs
            .iter()
            .map(|a| primal.read(a, Tensor::literal))
            .collect::<Result<Vec<_>>>()?;
        let ts: Vec<Option<Tensor>> = e.inputs.iter().map(|a| tangent_of(&tangent, a)).collect();
        let emit = Emit { loc: e.loc };
        if e.prim.is_control_flow() {
            // several outputs, and the rule transforms sub-programs: its own module
            let (outs, touts) = jvp_control(&emit, &e.prim, &xs, &ts)?;
            for ((v, out), t) in e.outs.iter().zip(outs).zip(touts) {
                if let Some(t) = t.filter(|_| p.aval(*v).dtype.is_float()) {
                    tangent.write(*v, checked(t)?);
                }
                primal.write(*v, out);
            }
            continue;
        }
        let out = emit.checked(e.prim.clone(), &xs.iter().collect::<Vec<_>>())?;
        let out_float = p.aval(e.out()).dtype.is_float();
        if out_float && ts.iter().any(Option::is_some) {
            if let Some(t) = jvp_rule(&emit, &e.prim, &xs, &ts, &out) {
                tangent.write(e.out(), checked(t)?);
            }
        }
        primal.write(e.out(), out);
    }
    let outs = p
        .outputs
        .iter()
        .map(|a| primal.read(a, Tensor::literal))
        .collect::<Result<Vec<_>>>()?;
    let touts = p.outputs.iter().map(|a| tangent_of(&tangent, a)).collect();
    Ok((outs, touts))
}

pub(super) fn aval(t: &Tensor) -> Aval {
    t.aval().expect("rules only see tensors that did not fail")
}

/// The sum of the nonzero terms, or `None` when all are zero.
fn sum_terms(e: &Emit, terms: Vec<Option<Tensor>>) -> Option<Tensor> {
    terms.into_iter().flatten().reduce(|a, b| e.add(&a, &b))
}

/// The tangent of one equation's output, given primal operands `x`, their tangents `t`
/// (at least one nonzero) and the primal output. `None` means a zero tangent.
pub(crate) fn jvp_rule(
    e: &Emit,
    prim: &Primitive,
    x: &[Tensor],
    t: &[Option<Tensor>],
    out: &Tensor,
) -> Option<Tensor> {
    use Primitive::*;
    // `t0 * coef`, the common form of unary rules (coefficient computed from primals).
    let scaled = |coef: Tensor| t[0].as_ref().map(|t0| e.mul(t0, &coef));
    // The same linear primitive applied to the (single) tangent.
    let same = || t[0].as_ref().map(|t0| e.op1(prim.clone(), t0));
    let inst = |i: usize| t[i].clone().unwrap_or_else(|| e.zeros(&aval(&x[i])));
    match prim {
        // control flow has several outputs: `jvp_call` routes it to `jvp::control`
        control_flow!() => Some(fail(Error::internal(format!(
            "`{}` reached the single-output jvp rule",
            prim.name()
        )))),
        Neg => same(),
        Sin => scaled(e.op1(Cos, &x[0])),
        Cos => scaled(e.neg(&e.op1(Sin, &x[0]))),
        Tan => scaled(e.add(&e.full(1.0, &aval(out)), &e.mul(out, out))),
        Exp => scaled(out.clone()),
        Log => t[0].as_ref().map(|t0| e.div(t0, &x[0])),
        Log1p => t[0]
            .as_ref()
            .map(|t0| e.div(t0, &e.add(&e.full(1.0, &aval(&x[0])), &x[0]))),
        Expm1 => scaled(e.add(out, &e.full(1.0, &aval(out)))),
        Tanh => scaled(e.sub(&e.full(1.0, &aval(out)), &e.mul(out, out))),
        Logistic => scaled(e.mul(out, &e.sub(&e.full(1.0, &aval(out)), out))),
        Sqrt => scaled(e.div(&e.full(0.5, &aval(out)), out)),
        Rsqrt => scaled(e.div(&e.scale(-0.5, out), &x[0])),
        // d|x| = t where x >= 0 (zero and -0 included, as in JAX), -t elsewhere
        Abs => {
            let xa = aval(&x[0]);
            let nonneg = e.op(Ge, &[&x[0], &e.zeros(&xa)]);
            let coef = e.op(Select, &[&nonneg, &e.full(1.0, &xa), &e.full(-1.0, &xa)]);
            scaled(coef)
        }
        Asin | Acos => {
            let one = e.full(1.0, &aval(&x[0]));
            let r = e.op1(Rsqrt, &e.sub(&one, &e.mul(&x[0], &x[0])));
            scaled(if matches!(prim, Asin) { r } else { e.neg(&r) })
        }
        Atan => {
            let one = e.full(1.0, &aval(&x[0]));
            t[0].as_ref()
                .map(|t0| e.div(t0, &e.add(&one, &e.mul(&x[0], &x[0]))))
        }
        Asinh => {
            let one = e.full(1.0, &aval(&x[0]));
            scaled(e.op1(Rsqrt, &e.add(&e.mul(&x[0], &x[0]), &one)))
        }
        // 1 / sqrt((x - 1)(x + 1)): no cancellation in x² - 1 near 1
        Acosh => {
            let one = e.full(1.0, &aval(&x[0]));
            let prod = e.mul(&e.sub(&x[0], &one), &e.add(&x[0], &one));
            scaled(e.op1(Rsqrt, &prod))
        }
        Atanh => {
            let one = e.full(1.0, &aval(&x[0]));
            let den = e.mul(&e.sub(&one, &x[0]), &e.add(&one, &x[0]));
            t[0].as_ref().map(|t0| e.div(t0, &den))
        }
        // x rem y = x - trunc(x / y) y
        Rem => {
            let q = e.div(&x[0], &x[1]);
            let zero = e.zeros(&aval(&q));
            let trunc = e.op(
                Select,
                &[&e.op(Ge, &[&q, &zero]), &e.op1(Floor, &q), &e.op1(Ceil, &q)],
            );
            sum_terms(
                e,
                vec![
                    t[0].clone(),
                    t[1].as_ref().map(|b| e.mul(b, &e.neg(&trunc))),
                ],
            )
        }
        ReduceProd { axes } => t[0].as_ref().map(|t0| {
            let coef = prod_of_others(e, &x[0], axes);
            e.op1(ReduceSum { axes: axes.clone() }, &e.mul(t0, &coef))
        }),
        // Piecewise constant: zero derivative wherever it exists.
        Sign | Floor | Ceil | Round => None,
        Erf => {
            let x2 = e.mul(&x[0], &x[0]);
            let g = e.op1(Exp, &e.neg(&x2));
            scaled(e.scale(std::f64::consts::FRAC_2_SQRT_PI, &g))
        }
        IntegerPow { y } => match *y {
            0 => None,
            1 => t[0].clone(),
            y => {
                let p = match y.checked_sub(1) {
                    Some(1) => x[0].clone(),
                    Some(ym1) => e.op1(IntegerPow { y: ym1 }, &x[0]),
                    // y = i32::MIN: x^(y-1) = x^y / x
                    None => e.div(out, &x[0]),
                };
                scaled(e.scale(y as f64, &p))
            }
        },
        Add => sum_terms(e, vec![t[0].clone(), t[1].clone()]),
        Sub => match (&t[0], &t[1]) {
            (Some(a), Some(b)) => Some(e.sub(a, b)),
            (Some(a), None) => Some(a.clone()),
            (None, Some(b)) => Some(e.neg(b)),
            (None, None) => None,
        },
        Mul => sum_terms(
            e,
            vec![
                t[0].as_ref().map(|a| e.mul(a, &x[1])),
                t[1].as_ref().map(|b| e.mul(&x[0], b)),
            ],
        ),
        // d(x/y) = (dx - (x/y) dy) / y: one division for both tangents (the form
        // dx/y - (x/y) dy/y takes two, and a division costs several multiplications)
        Div => match (&t[0], &t[1]) {
            (Some(a), Some(b)) => Some(e.div(&e.sub(a, &e.mul(out, b)), &x[1])),
            (Some(a), None) => Some(e.div(a, &x[1])),
            (None, Some(b)) => Some(e.div(&e.neg(&e.mul(out, b)), &x[1])),
            (None, None) => None,
        },
        Pow => {
            let dx = t[0].as_ref().map(|a| {
                let ym1 = e.sub(&x[1], &e.full(1.0, &aval(&x[1])));
                let coef = e.mul(&x[1], &e.op(Pow, &[&x[0], &ym1]));
                e.mul(a, &coef)
            });
            let dy = t[1].as_ref().map(|b| {
                // d/dy x^y = log(x) x^y, taken as 0 where x = 0 (so 0^y stays flat).
                let z = e.zeros(&aval(&x[0]));
                let is0 = e.op(Eq, &[&x[0], &z]);
                let coef = e.op(Select, &[&is0, &z, &e.mul(&e.op1(Log, &x[0]), out)]);
                e.mul(b, &coef)
            });
            sum_terms(e, vec![dx, dy])
        }
        Max | Min => {
            // Ties split the derivative evenly between the operands (JAX does the same).
            let (wins, loses) = if matches!(prim, Max) {
                (Gt, Lt)
            } else {
                (Lt, Gt)
            };
            let dt = aval(out).dtype;
            let half = e.scale(0.5, &e.convert(&e.op(Eq, &[&x[0], &x[1]]), dt));
            let cx = e.add(&e.convert(&e.op(wins.clone(), &[&x[0], &x[1]]), dt), &half);
            let cy = e.add(&e.convert(&e.op(loses, &[&x[0], &x[1]]), dt), &half);
            sum_terms(
                e,
                vec![
                    t[0].as_ref().map(|a| e.mul(a, &cx)),
                    t[1].as_ref().map(|b| e.mul(b, &cy)),
                ],
            )
        }
        Atan2 => {
            let den = e.add(&e.mul(&x[0], &x[0]), &e.mul(&x[1], &x[1]));
            sum_terms(
                e,
                vec![
                    t[0].as_ref().map(|a| e.mul(a, &e.div(&x[1], &den))),
                    t[1].as_ref().map(|b| e.mul(b, &e.neg(&e.div(&x[0], &den)))),
                ],
            )
        }
        // Boolean outputs: never reached (only float outputs get tangents).
        Eq | Ne | Lt | Le | Gt | Ge => None,
        Select => {
            if t[1].is_none() && t[2].is_none() {
                return None;
            }
            Some(e.op(Select, &[&x[0], &inst(1), &inst(2)]))
        }
        ConvertElementType { new_dtype } => {
            if aval(&x[0]).dtype.is_float() && new_dtype.is_float() {
                same()
            } else {
                None
            }
        }
        ReduceSum { .. }
        | BroadcastInDim { .. }
        | Reshape { .. }
        | Transpose { .. }
        | Squeeze { .. }
        | ExpandDims { .. }
        | Slice { .. }
        | Rev { .. }
        | CheckpointName { .. }
        | Cumsum { .. } => same(),
        // linear in their operand: the same collective of the tangents
        Psum { .. }
        | Pmean { .. }
        | AllGather { .. }
        | PsumScatter { .. }
        | Ppermute { .. }
        | AllToAll { .. } => same(),
        Pmax {
            axis_name,
            axis_size,
        }
        | Pmin {
            axis_name,
            axis_size,
        } => {
            // the tangent of the members holding the extremum, averaged over ties (as
            // `reduce_max` across the members)
            let psum = Psum {
                axis_name: axis_name.clone(),
                axis_size: *axis_size,
            };
            let dt = aval(&x[0]).dtype;
            let mask = e.convert(&e.op(Eq, &[&x[0], out]), dt);
            let count = e.op1(psum.clone(), &mask);
            t[0].as_ref()
                .map(|t0| e.div(&e.op1(psum, &e.mul(t0, &mask)), &count))
        }
        ReduceMax { axes } | ReduceMin { axes } => {
            // The tangent at the extremal elements, averaged over ties.
            let xa = aval(&x[0]);
            let kept: Vec<usize> = (0..xa.ndim()).filter(|d| !axes.contains(d)).collect();
            let back = e.op1(
                BroadcastInDim {
                    shape: xa.shape.clone(),
                    broadcast_dimensions: kept,
                },
                out,
            );
            let mask = e.convert(&e.op(Eq, &[&x[0], &back]), xa.dtype);
            let count = e.op1(ReduceSum { axes: axes.clone() }, &mask);
            t[0].as_ref().map(|t0| {
                let num = e.op1(ReduceSum { axes: axes.clone() }, &e.mul(t0, &mask));
                e.div(&num, &count)
            })
        }
        // no derivative: an index, a constant, and what `stop_gradient` cuts
        Argmax { .. }
        | Argmin { .. }
        | Argsort { .. }
        | Iota { .. }
        | StopGradient
        | AxisIndex { .. }
        | Threefry2x32 => None,
        Pad { .. } => {
            let v = t[1]
                .clone()
                .unwrap_or_else(|| e.zeros(&Aval::scalar(aval(&x[1]).dtype)));
            Some(e.op(prim.clone(), &[&inst(0), &v]))
        }
        Concatenate { .. } => {
            let parts: Vec<Tensor> = (0..x.len()).map(inst).collect();
            let refs: Vec<&Tensor> = parts.iter().collect();
            Some(e.op(prim.clone(), &refs))
        }
        indexing_ops!() => indexing::jvp_indexing(e, prim, x, t, out),
        linalg_ops!() => linalg::jvp_linalg(e, prim, x, t, out),
        DotGeneral { .. } => sum_terms(
            e,
            vec![
                t[0].as_ref().map(|a| e.op(prim.clone(), &[a, &x[1]])),
                t[1].as_ref().map(|b| e.op(prim.clone(), &[&x[0], b])),
            ],
        ),
    }
}

/// For each element of `x`, the product of the other elements of its group (the elements
/// `reduce_prod` over `axes` multiplies together), exact when some are zero: with `Z` the
/// zeros in the group and `Q` the product of its nonzero elements, `Q / x` when `Z = 0`,
/// `Q` for the only zero when `Z = 1`, and 0 otherwise.
fn prod_of_others(e: &Emit, x: &Tensor, axes: &[usize]) -> Tensor {
    use Primitive::*;
    let xa = aval(x);
    let kept: Vec<usize> = (0..xa.ndim()).filter(|d| !axes.contains(d)).collect();
    let back = |t: &Tensor| {
        e.op1(
            BroadcastInDim {
                shape: xa.shape.clone(),
                broadcast_dimensions: kept.clone(),
            },
            t,
        )
    };
    let (zero, one) = (e.zeros(&xa), e.full(1.0, &xa));
    let is0 = e.op(Eq, &[x, &zero]);
    let safe = e.op(Select, &[&is0, &one, x]);
    let zeros = back(&e.op1(
        ReduceSum {
            axes: axes.to_vec(),
        },
        &e.convert(&is0, xa.dtype),
    ));
    let q = back(&e.op1(
        ReduceProd {
            axes: axes.to_vec(),
        },
        &safe,
    ));
    let if_nonzero = e.op(
        Select,
        &[&e.op(Eq, &[&zeros, &zero]), &e.div(&q, &safe), &zero],
    );
    let if_zero = e.op(Select, &[&e.op(Eq, &[&zeros, &one]), &q, &zero]);
    e.op(Select, &[&is0, &if_zero, &if_nonzero])
}

/// The jvp of a program as a program.
///
/// Inputs: the program's inputs, then one tangent per input flagged in `with_tangent`.
/// Outputs: the program's outputs, then one tangent per output (zeros materialised).
pub fn jvp_program(p: &Program, with_tangent: &[bool]) -> Result<Program> {
    p.check()?;
    jvp_program_checked(p, with_tangent)
}

/// [`jvp_program`] for a program known to type-check (just traced by the library).
pub(crate) fn jvp_program_checked(p: &Program, with_tangent: &[bool]) -> Result<Program> {
    if with_tangent.len() != p.inputs.len() {
        return Err(Error::input(
            "jvp_program",
            format!(
                "{} tangent flags for {} inputs",
                with_tangent.len(),
                p.inputs.len()
            ),
        ));
    }
    let mut avals = p.in_avals();
    let tangent_avals: Vec<Aval> = avals
        .iter()
        .zip(with_tangent)
        .filter(|(_, &w)| w)
        .map(|(a, _)| a.clone())
        .collect();
    let n = avals.len();
    avals.extend(tangent_avals);
    let out_avals = p.out_avals();
    let (prog, captured) = trace_flat(&avals, |args| {
        let (primals, rest) = args.split_at(n);
        let mut rest = rest.iter();
        let tangents: Vec<Option<Tensor>> = with_tangent
            .iter()
            .map(|&w| if w { rest.next().cloned() } else { None })
            .collect();
        let (outs, touts) = jvp_call(p, primals, &tangents)?;
        Ok(outs
            .into_iter()
            .chain(materialize(touts, &out_avals))
            .collect())
    })?;
    debug_assert!(
        captured.is_empty(),
        "a program refers only to its own inputs"
    );
    Ok(prog)
}
