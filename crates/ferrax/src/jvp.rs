//! Forward mode: the jvp pass, `jvp` and `jacfwd`.
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

use crate::array::Array;
use crate::dtype::{Aval, DType};
use crate::emit::Emit;
use crate::error::{Error, Result, SourceLoc};
use crate::primitive::Primitive;
use crate::program::{Atom, Program};
use crate::tensor::Tensor;
use crate::trace::{leaf_avals, trace_flat, trace_tree};
use crate::tree::{flatten, unflatten, Tree};

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
    let mut env_p: Vec<Option<Tensor>> = vec![None; p.avals.len()];
    let mut env_t: Vec<Option<Tensor>> = vec![None; p.avals.len()];
    for ((v, x), t) in p.inputs.iter().zip(primals).zip(tangents) {
        env_p[v.index()] = Some(x.clone());
        // Integer and boolean inputs have zero tangents whatever was given.
        env_t[v.index()] = t.clone().filter(|_| p.aval(*v).dtype.is_float());
    }
    for (v, a) in &p.consts {
        env_p[v.index()] = Some(Tensor::new(a.clone()));
    }
    let primal = |env: &Vec<Option<Tensor>>, a: &Atom| -> Result<Tensor> {
        match a {
            Atom::Lit(s) => Ok(Tensor::new(Array::from_scalar(*s))),
            Atom::Var(v) => env[v.index()].clone().ok_or_else(|| {
                Error::check(format!("variable {} is used before it is defined", v.0))
            }),
        }
    };
    for e in &p.eqns {
        let xs = e
            .inputs
            .iter()
            .map(|a| primal(&env_p, a))
            .collect::<Result<Vec<_>>>()?;
        let ts: Vec<Option<Tensor>> = e
            .inputs
            .iter()
            .map(|a| match a {
                Atom::Var(v) => env_t[v.index()].clone(),
                Atom::Lit(_) => None,
            })
            .collect();
        let emit = Emit { loc: e.loc };
        let refs: Vec<&Tensor> = xs.iter().collect();
        let out = emit.op(e.prim.clone(), &refs);
        if let Some(err) = out.error() {
            return Err(err.clone());
        }
        let out_float = p.aval(e.out).dtype.is_float();
        let t_out = if out_float && ts.iter().any(Option::is_some) {
            jvp_rule(&emit, &e.prim, &xs, &ts, &out)
        } else {
            None
        };
        if let Some(err) = t_out.as_ref().and_then(|t| t.error()) {
            return Err(err.clone());
        }
        env_p[e.out.index()] = Some(out);
        env_t[e.out.index()] = t_out;
    }
    let outs = p
        .outputs
        .iter()
        .map(|a| primal(&env_p, a))
        .collect::<Result<Vec<_>>>()?;
    let touts = p
        .outputs
        .iter()
        .map(|a| match a {
            Atom::Var(v) => env_t[v.index()].clone(),
            Atom::Lit(_) => None,
        })
        .collect();
    Ok((outs, touts))
}

fn aval(t: &Tensor) -> Aval {
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
    let same = || t[0].as_ref().map(|t0| e.un(prim.clone(), t0));
    let inst = |i: usize| t[i].clone().unwrap_or_else(|| e.zeros(&aval(&x[i])));
    match prim {
        Neg => same(),
        Sin => scaled(e.un(Cos, &x[0])),
        Cos => scaled(e.neg(&e.un(Sin, &x[0]))),
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
        // Piecewise constant: zero derivative wherever it exists.
        Sign | Floor | Ceil | Round => None,
        Erf => {
            let x2 = e.mul(&x[0], &x[0]);
            let g = e.un(Exp, &e.neg(&x2));
            scaled(e.scale(std::f64::consts::FRAC_2_SQRT_PI, &g))
        }
        IntegerPow { y } => match *y {
            0 => None,
            1 => t[0].clone(),
            y => {
                let p = match y.checked_sub(1) {
                    Some(1) => x[0].clone(),
                    Some(ym1) => e.un(IntegerPow { y: ym1 }, &x[0]),
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
        Div => sum_terms(
            e,
            vec![
                t[0].as_ref().map(|a| e.div(a, &x[1])),
                t[1].as_ref().map(|b| e.mul(b, &e.neg(&e.div(out, &x[1])))),
            ],
        ),
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
                let coef = e.op(Select, &[&is0, &z, &e.mul(&e.un(Log, &x[0]), out)]);
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
        | Cumsum { .. } => same(),
        ReduceMax { axes } | ReduceMin { axes } => {
            // The tangent at the extremal elements, averaged over ties.
            let xa = aval(&x[0]);
            let kept: Vec<usize> = (0..xa.ndim()).filter(|d| !axes.contains(d)).collect();
            let back = e.un(
                BroadcastInDim {
                    shape: xa.shape.clone(),
                    broadcast_dimensions: kept,
                },
                out,
            );
            let mask = e.convert(&e.op(Eq, &[&x[0], &back]), xa.dtype);
            let count = e.un(ReduceSum { axes: axes.clone() }, &mask);
            t[0].as_ref().map(|t0| {
                let num = e.un(ReduceSum { axes: axes.clone() }, &e.mul(t0, &mask));
                e.div(&num, &count)
            })
        }
        Argmax { .. } | Iota { .. } => None,
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
        DotGeneral { .. } => sum_terms(
            e,
            vec![
                t[0].as_ref().map(|a| e.op(prim.clone(), &[a, &x[1]])),
                t[1].as_ref().map(|b| e.op(prim.clone(), &[&x[0], b])),
            ],
        ),
    }
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

/// Tangents with the zeros built (at the API boundary).
pub(crate) fn materialize(touts: Vec<Option<Tensor>>, avals: &[Aval]) -> Vec<Tensor> {
    let e = Emit { loc: None };
    touts
        .into_iter()
        .zip(avals)
        .map(|(t, a)| t.unwrap_or_else(|| e.zeros(a)))
        .collect()
}

/// Checks that a tangent tree matches the primal tree (structure, shapes and dtypes).
pub(crate) fn check_tangents(op: &str, primals: &[Tensor], tangents: &[Tensor]) -> Result<()> {
    if primals.len() != tangents.len() {
        return Err(Error::input(
            op,
            format!(
                "{} primal leaves but {} tangent leaves",
                primals.len(),
                tangents.len()
            ),
        ));
    }
    for (i, (p, t)) in primals.iter().zip(tangents).enumerate() {
        let (pa, ta) = (p.aval()?, t.aval()?);
        if pa != ta {
            return Err(Error::input(
                op,
                format!("tangent {i} is {ta} but its primal is {pa}: they must match"),
            ));
        }
    }
    Ok(())
}

/// Forward-mode derivative: `f(primals)` and the directional derivative of `f` at
/// `primals` along `tangents` (a tree of the same structure, shapes and dtypes).
///
/// Tangents of integer and boolean inputs are ignored (they are zero); tangents of integer
/// and boolean outputs are zeros. Works eagerly and inside other transformations.
///
/// ```
/// use ferrax::{jvp, Tensor};
/// let f = |x: Tensor| 3.0 * x.sin() + (&x / 2.0).cos();
/// let (y, dy) = jvp(f, &Tensor::scalar(2.0f64), &Tensor::scalar(1.0f64)).unwrap();
/// let want = 3.0 * 2f64.cos() - 0.5 * 1f64.sin();
/// assert!((dy.item().unwrap() - want).abs() < 1e-15);
/// ```
#[track_caller]
pub fn jvp<I: Tree, O: Tree>(f: impl FnOnce(I) -> O, primals: &I, tangents: &I) -> Result<(O, O)> {
    let loc = SourceLoc::caller();
    jvp_at(f, primals, tangents).map_err(|e| e.with_loc(loc))
}

fn jvp_at<I: Tree, O: Tree>(f: impl FnOnce(I) -> O, primals: &I, tangents: &I) -> Result<(O, O)> {
    let (pleaves, def) = flatten(primals);
    let (tleaves, tdef) = flatten(tangents);
    if def != tdef {
        return Err(Error::tree(
            "jvp",
            format!("tangents have structure {tdef:?} but primals have {def:?}"),
        ));
    }
    check_tangents("jvp", &pleaves, &tleaves)?;
    let avals = leaf_avals(&pleaves)?;
    let traced = trace_tree(f, &def, &avals)?;
    let n_captured = traced.captured.len();
    let mut primals_all = pleaves;
    primals_all.extend(traced.captured);
    // Captured values are constants for this transformation: zero tangents.
    let mut tangents_all: Vec<Option<Tensor>> = tleaves.into_iter().map(Some).collect();
    tangents_all.extend(std::iter::repeat_n(None, n_captured));
    let (outs, touts) = jvp_call(&traced.program, &primals_all, &tangents_all)?;
    let touts = materialize(touts, &traced.program.out_avals());
    Ok((
        unflatten(&traced.out_def, outs)?,
        unflatten(&traced.out_def, touts)?,
    ))
}

/// The Jacobian of `f` at `x` by forward mode: shape `out.shape ++ x.shape`. One
/// linearization, then the linear map applied to the whole identity basis at once (vmap:
/// one batched linear program, matrix-matrix work).
///
/// ```
/// use ferrax::{jacfwd, Array, Tensor};
/// let x = Tensor::new(Array::from_slice(&[1.0f64, 2.0]));
/// let j = jacfwd(|x: Tensor| &x * &x, &x).unwrap();
/// assert_eq!(j.to_vec::<f64>().unwrap(), vec![2.0, 0.0, 0.0, 4.0]);
/// ```
#[track_caller]
pub fn jacfwd(f: impl FnOnce(Tensor) -> Tensor, x: &Tensor) -> Result<Tensor> {
    let xa = x.aval()?;
    if !xa.dtype.is_float() {
        return Err(Error::DType {
            op: "jacfwd".into(),
            msg: format!("differentiates with respect to float inputs only, got {xa}"),
            loc: Some(SourceLoc::caller()),
        });
    }
    let (y, lin) = crate::linearize::linearize(f, x)?;
    let ya = y.aval()?;
    let n = xa.size();
    // The basis: n tangents stacked along axis 0.
    let mut shape = vec![n];
    shape.extend(&xa.shape);
    let basis = Tensor::new(identity(n, &shape, xa.dtype)?);
    let cols: Tensor = if n == 0 {
        Tensor::zeros(&[ya.size(), 0], ya.dtype)
    } else {
        let c: Tensor = lin.apply_batch(&basis)?; // [n, ...y.shape]
        c.reshape(&[n as isize, ya.size() as isize]).t()
    };
    let mut out: Vec<isize> = ya.shape.iter().map(|&d| d as isize).collect();
    out.extend(xa.shape.iter().map(|&d| d as isize));
    let jac = cols.reshape(&out);
    jac.aval()?;
    Ok(jac)
}

/// `n` basis arrays stacked: shape `[n, ...]`, the i-th with a one at flat position i. Its
/// `n²` elements are allocated fallibly: a basis that does not fit is an error naming it.
pub(crate) fn identity(n: usize, shape: &[usize], dtype: DType) -> Result<Array> {
    let op = "identity basis of a Jacobian";
    let aval = Aval::new(shape.to_vec(), dtype);
    aval.validate(op)?;
    let zero = crate::dtype::Scalar::F64(0.0).cast(dtype);
    let one = crate::dtype::Scalar::F64(1.0).cast(dtype);
    let mut basis = Array::filled_for(op, shape, zero)?.into_data();
    for i in 0..n {
        basis.set(i * n + i, one);
    }
    Array::from_data(basis, shape)
}
