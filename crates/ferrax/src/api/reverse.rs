//! Reverse mode: `vjp`, `grad`, `value_and_grad`, `jacrev`, `hessian`, `hvp`.
//!
//! Sits at the top of the pipeline, built from the passes below it and nothing else:
//! `vjp = linearize + transpose` (no per-primitive reverse rules exist anywhere in ferrax),
//! the gradient is the vjp applied to a cotangent of one, `jacrev` applies one transposed
//! map to each row's cotangent, and second order is forward over reverse (`jacfwd` of
//! `grad`, `jvp` of `grad`).

use crate::api::forward::jvp;
use crate::api::linear_map::{linearize, linearize_program, LinearMap};
use crate::api::vmap::vmap;
use crate::ir::{Array, Error, Program, Result, Scalar, SourceLoc};
use crate::passes::{transpose_program, Split};
use crate::trace::{fail, flatten, identity, trace_flat, Tensor, Tree};

/// `f(primals)` and the vjp of `f` at `primals`: a linear map from output cotangents to
/// input cotangents, the transpose of the linearization (same residuals).
///
/// ```
/// use ferrax::{vjp, Tensor};
/// let (y, f_vjp) = vjp(|x: Tensor| x.sin() * 2.0, &Tensor::scalar(0.5f64)).unwrap();
/// let ct: Tensor = f_vjp.apply(&Tensor::scalar(1.0f64)).unwrap();
/// assert_eq!(ct.item().unwrap(), 2.0 * 0.5f64.cos());
/// ```
#[track_caller]
pub fn vjp<I: Tree, O: Tree>(f: impl FnOnce(I) -> O, primals: &I) -> Result<(O, LinearMap)> {
    let (out, lin) = linearize(f, primals)?;
    Ok((out, lin.transpose()?))
}

/// A cotangent of one for a scalar float output (an error naming the output otherwise).
fn seed(op: &str, y: &Tensor, loc: SourceLoc) -> Result<Tensor> {
    let a = y.aval()?;
    if a.ndim() != 0 || !a.dtype.is_float() {
        return Err(Error::Shape {
            op: op.into(),
            msg: format!("the function must return a float scalar, got {a}"),
            loc: Some(loc),
        });
    }
    Ok(Tensor::new(Array::from_scalar(
        Scalar::F64(1.0).cast(a.dtype),
    )))
}

/// Gradients are taken with respect to float leaves only: an integer or boolean leaf has no
/// tangent space, and a gradient of zeros there would hide a mistake (JAX raises too).
pub(crate) fn float_inputs<I: Tree>(op: &str, x: &I, loc: SourceLoc) -> Result<()> {
    let (leaves, _) = flatten(x);
    for (i, t) in leaves.iter().enumerate() {
        let a = t.aval()?;
        if !a.dtype.is_float() {
            return Err(Error::DType {
                op: op.into(),
                msg: format!(
                    "differentiates with respect to float inputs only, but input leaf {i} is {a} \
                     (hold it fixed with value_and_grad_with, or convert it to a float)"
                ),
                loc: Some(loc),
            });
        }
    }
    Ok(())
}

/// `f(x)` and its gradient with respect to every leaf of `x` (a tree shaped like `x`).
/// `f` must return a float scalar.
///
/// ```
/// use ferrax::{value_and_grad, Array, Tensor};
/// let x = Tensor::new(Array::from_slice(&[1.0f64, 2.0]));
/// let (v, g) = value_and_grad(|x: Tensor| (&x * &x).sum_all(), &x).unwrap();
/// assert_eq!(v.item().unwrap(), 5.0);
/// assert_eq!(g.to_vec::<f64>().unwrap(), vec![2.0, 4.0]);
/// ```
#[track_caller]
pub fn value_and_grad<I: Tree>(f: impl FnOnce(I) -> Tensor, x: &I) -> Result<(Tensor, I)> {
    let loc = SourceLoc::caller();
    float_inputs("grad", x, loc)?;
    let (y, f_vjp) = vjp(f, x)?;
    let g = f_vjp.apply(&seed("grad", &y, loc)?)?;
    Ok((y, g))
}

/// The gradient of a float-scalar function (see [`value_and_grad`]), over any tree of
/// inputs; the gradient has the inputs' structure.
///
/// ```
/// use ferrax::{grad, Tensor};
/// // f(w, b) = Σ (w x + b)², at w = 2, b = 1, x = [1, 2]
/// let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2]);
/// let f = |(w, b): (Tensor, Tensor)| { let y = &w * &x + &b; (&y * &y).sum_all() };
/// let (dw, db) = grad(f, &(Tensor::scalar(2.0f64), Tensor::scalar(1.0f64))).unwrap();
/// // df/dw = Σ 2 (w x + b) x = 2·3·1 + 2·5·2 = 26; df/db = 2·3 + 2·5 = 16
/// assert_eq!((dw.item().unwrap(), db.item().unwrap()), (26.0, 16.0));
/// ```
#[track_caller]
pub fn grad<I: Tree>(f: impl FnOnce(I) -> Tensor, x: &I) -> Result<I> {
    Ok(value_and_grad(f, x)?.1)
}

/// `f(wrt, fixed)` and its gradient with respect to `wrt` only: `fixed` is held constant
/// (not differentiated, like arguments outside JAX's `argnums`), so no work is spent on its
/// cotangent.
///
/// ```
/// use ferrax::{value_and_grad_with, Array, Tensor};
/// let w = Tensor::new(Array::from_slice(&[2.0f64]));
/// let data = Tensor::new(Array::from_slice(&[3.0f64]));
/// let (v, gw) = value_and_grad_with(|w: Tensor, x: Tensor| (&w * &x).sum_all(), &w, &data).unwrap();
/// assert_eq!((v.item().unwrap(), gw.to_vec::<f64>().unwrap()), (6.0, vec![3.0]));
/// ```
#[track_caller]
pub fn value_and_grad_with<A: Tree, B: Tree + Clone>(
    f: impl FnOnce(A, B) -> Tensor,
    wrt: &A,
    fixed: &B,
) -> Result<(Tensor, A)> {
    let fixed = fixed.clone();
    value_and_grad(move |a: A| f(a, fixed), wrt)
}

/// The Jacobian of `f` at `x` by reverse mode: shape `out.shape ++ x.shape`. One
/// linearization, transposed once, applied to the whole basis of output cotangents at once
/// (vmap).
///
/// ```
/// use ferrax::{jacrev, Array, Tensor};
/// let x = Tensor::new(Array::from_slice(&[1.0f64, 2.0]));
/// let j = jacrev(|x: Tensor| &x * &x, &x).unwrap();
/// assert_eq!(j.to_vec::<f64>().unwrap(), vec![2.0, 0.0, 0.0, 4.0]);
/// ```
#[track_caller]
pub fn jacrev(f: impl FnOnce(Tensor) -> Tensor, x: &Tensor) -> Result<Tensor> {
    let xa = x.aval()?;
    if !xa.dtype.is_float() {
        return Err(Error::DType {
            op: "jacrev".into(),
            msg: format!("differentiates with respect to float inputs only, got {xa}"),
            loc: Some(SourceLoc::caller()),
        });
    }
    let (y, f_vjp) = vjp(f, x)?;
    let ya = y.aval()?;
    let (m, n) = (ya.size(), xa.size());
    let mut shape = vec![m];
    shape.extend(&ya.shape);
    let rows: Tensor = if m == 0 {
        Tensor::zeros(&[0, n], xa.dtype)
    } else {
        let basis = Tensor::new(identity(m, &shape, ya.dtype)?);
        let r: Tensor = f_vjp.apply_batch(&basis)?; // [m, ...x.shape]
        r.reshape(&[m as isize, n as isize])
    };
    let mut out: Vec<isize> = ya.shape.iter().map(|&d| d as isize).collect();
    out.extend(xa.shape.iter().map(|&d| d as isize));
    let jac = rows.reshape(&out);
    jac.aval()?;
    Ok(jac)
}

/// The Hessian of a float-scalar function, forward over reverse: `jvp` of `grad` mapped
/// (vmap) over the identity basis, as JAX's `jacfwd(jacrev(f))` does, so the gradient's
/// primal work runs once and only the tangents are batched. Shape `x.shape ++ x.shape`.
/// (Forward over reverse by `jvp`, not `linearize`, since the reverse mode of a `while`
/// loop cannot itself be linearized.)
///
/// ```
/// use ferrax::{hessian, Array, Tensor};
/// let x = Tensor::new(Array::from_slice(&[1.0f64, 2.0]));
/// let h = hessian(|x: Tensor| x.index_axis(0, 0) * x.index_axis(0, 1).powi(2), &x).unwrap();
/// assert_eq!(h.to_vec::<f64>().unwrap(), vec![0.0, 4.0, 4.0, 2.0]);
/// ```
#[track_caller]
pub fn hessian(f: impl Fn(Tensor) -> Tensor, x: &Tensor) -> Result<Tensor> {
    let loc = SourceLoc::caller();
    let xa = x.aval()?;
    if !xa.dtype.is_float() {
        return Err(Error::DType {
            op: "hessian".into(),
            msg: format!("differentiates with respect to float inputs only, got {xa}"),
            loc: Some(loc),
        });
    }
    let n = xa.size();
    let dims: Vec<isize> = xa.shape.iter().map(|&d| d as isize).collect();
    if n == 0 {
        let mut shape = xa.shape.clone();
        shape.extend(&xa.shape);
        return Ok(Tensor::zeros(&shape, xa.dtype));
    }
    let mut basis_shape = vec![n];
    basis_shape.extend(&xa.shape);
    let basis = Tensor::new(identity(n, &basis_shape, xa.dtype)?);
    // row j: H e_j, the j-th column of the Hessian
    let columns: Tensor = vmap(
        |v: Tensor| match jvp(|x: Tensor| grad_or_fail(&f, &x, loc), x, &v) {
            Ok((_, hv)) => hv,
            Err(e) => fail(e),
        },
        &basis,
    )?;
    let h = columns.reshape(&[n as isize, n as isize]).t();
    let mut out = dims.clone();
    out.extend(&dims);
    let h = h.reshape(&out);
    h.aval()?;
    Ok(h)
}

/// The Hessian-vector product `H(x) v` of a float-scalar function, forward over reverse
/// (`jvp` of `grad`), without forming the Hessian.
///
/// ```
/// use ferrax::{hvp, Array, Tensor};
/// let x = Tensor::new(Array::from_slice(&[1.0f64, 2.0]));
/// let v = Tensor::new(Array::from_slice(&[1.0f64, 0.0]));
/// let hv = hvp(|x: Tensor| x.powi(3).sum_all(), &x, &v).unwrap();
/// assert_eq!(hv.to_vec::<f64>().unwrap(), vec![6.0, 0.0]);
/// ```
#[track_caller]
pub fn hvp(f: impl Fn(Tensor) -> Tensor, x: &Tensor, v: &Tensor) -> Result<Tensor> {
    let loc = SourceLoc::caller();
    Ok(jvp(|x: Tensor| grad_or_fail(&f, &x, loc), x, v)?.1)
}

/// The gradient as a tensor, or a failed tensor carrying the error (inside a trace the
/// error is also recorded, so the enclosing transformation reports it).
fn grad_or_fail(f: &impl Fn(Tensor) -> Tensor, x: &Tensor, loc: SourceLoc) -> Tensor {
    match grad(f, x) {
        Ok(g) => g,
        Err(e) => fail(match e.loc() {
            Some(_) => e,
            None => e.with_loc(loc),
        }),
    }
}

/// The gradient of a program with one float-scalar output, as a program: the same inputs,
/// outputs the value and then one gradient per input. Built by tracing `value_and_grad` of
/// the program, so it is linearize + transpose, inlined.
pub fn grad_program(p: &Program) -> Result<Program> {
    p.check()?;
    let outs = p.out_avals();
    if outs.len() != 1 || outs[0].ndim() != 0 || !outs[0].dtype.is_float() {
        return Err(Error::input(
            "grad_program",
            format!(
                "the program must have one float scalar output, it has ({})",
                outs.iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let (g, _) = trace_flat(&p.in_avals(), |xs| {
        let f = |ys: Vec<Tensor>| match p.call(&ys) {
            Ok(mut o) => o.remove(0),
            Err(e) => fail(e),
        };
        let (v, g) = value_and_grad(f, &xs)?;
        let mut out = vec![v];
        out.extend(g);
        Ok(out)
    })?;
    Ok(g.dce())
}

/// The vjp of a program: the primal program of its linearization and the transpose of the
/// linear program (inputs: the residuals, then one cotangent per output; outputs: one
/// cotangent per input).
pub fn vjp_program(p: &Program) -> Result<(Split, Program)> {
    let s = linearize_program(p)?;
    let t = transpose_program(&s.linear, s.residuals.len())?;
    Ok((s, t))
}
