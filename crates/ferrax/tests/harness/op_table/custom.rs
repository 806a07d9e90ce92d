//! Rows of custom derivative rules: `custom_jvp` and `custom_vjp` (the function
//! (x, y) -> (sin(x) y, x · y) with its true derivative written as the rule, so finite
//! differences check that the rule is what the derivative columns run) and `custom_lin` (the
//! linear map t -> r t given with its transpose, as the linearization of a `custom_vjp`
//! leaves it; the transpose columns run its rule). The primitives are made by the public
//! constructors and read back from the traced program. Known values: libm's sin via Python.

use super::*;
use ferrax::{custom_jvp, custom_vjp, custom_vjp_linear, make_jaxpr, Closed, Tensor};

/// The one primitive of a traced program of two f[3] inputs.
fn traced(d: DType, f: impl Fn(Vec<Tensor>) -> Vec<Tensor>) -> Primitive {
    let example = vec![Tensor::zeros(&[3], d), Tensor::zeros(&[3], d)];
    let p = make_jaxpr(f, &example).expect("the row's function traces");
    assert_eq!(p.eqns.len(), 1, "one custom primitive: {p}");
    p.eqns[0].prim.clone()
}

fn body(v: &[Tensor]) -> Vec<Tensor> {
    vec![v[0].sin() * &v[1], v[0].dot(&v[1])]
}

fn custom_jvp_prim(d: DType) -> Primitive {
    traced(d, |v| {
        custom_jvp(
            |v: Vec<Tensor>| body(&v),
            |v: Vec<Tensor>, t: Vec<Tensor>| {
                let dy = &t[0] * v[0].cos() * &v[1] + v[0].sin() * &t[1];
                let dz = t[0].dot(&v[1]) + v[0].dot(&t[1]);
                (body(&v), vec![dy, dz])
            },
        )(v)
    })
}

/// `custom_vjp` with a `bwd` declared linear (its forward map is `bwd` transposed), or not
/// (its forward map is the jvp of the body).
fn custom_vjp_prim(d: DType, linear: bool) -> Primitive {
    let fwd = |v: Vec<Tensor>| {
        (
            body(&v),
            (v[0].cos(), v[0].sin(), v[0].clone(), v[1].clone()),
        )
    };
    let bwd = |(c, s, x, y): (Tensor, Tensor, Tensor, Tensor), g: Vec<Tensor>| {
        vec![&g[0] * &c * &y + &g[1] * &y, &g[0] * &s + &g[1] * &x]
    };
    traced(d, move |v| match linear {
        true => custom_vjp_linear(|v: Vec<Tensor>| body(&v), fwd, bwd)(v),
        false => custom_vjp(|v: Vec<Tensor>| body(&v), fwd, bwd)(v),
    })
}

fn custom_vjp_linear_prim(d: DType) -> Primitive {
    custom_vjp_prim(d, true)
}

fn custom_vjp_fallback_prim(d: DType) -> Primitive {
    custom_vjp_prim(d, false)
}

/// `custom_lin(r, t)`: `r t`, whose transpose is `r c`.
fn custom_lin_prim(d: DType) -> Primitive {
    let example = vec![Tensor::zeros(&[3], d), Tensor::zeros(&[3], d)];
    let map = make_jaxpr(|v: Vec<Tensor>| &v[0] * &v[1], &example).expect("traces");
    Primitive::CustomLin {
        forward: Closed::new(map.clone()),
        transpose: Closed::new(map),
        n_nonlin: 1,
    }
}

/// The rows, in table order.
pub(super) fn rows() -> Vec<OpRow> {
    let f64_ = DType::F64;
    let known = || {
        vec![k(
            vec![vec![0.5, -1.0, 2.0], vec![1.0, 2.0, 3.0]],
            vec![
                0.479425538604203,
                -1.682941969615793,
                2.727892280477045,
                4.5,
            ],
        )]
    };
    let row = |name, prim_at: fn(DType) -> Primitive, reject: &'static str| OpRow {
        name,
        prim: prim_at(f64_),
        avals: vv3,
        dtypes: FLOATS,
        domain: Domain::Real,
        tol: (2e-6, 1e-15),
        known: known(),
        rejects: vec![(vec![av(&[3], f64_), av(&[2], f64_)], reject)],
        prim_at: Some(prim_at),
        fixed: &[],
        gen: Gen::Skip,
    };
    let body_rejects =
        "the body's inputs are (f64[3], f64[3]) but the operands are (f64[3], f64[2])";
    vec![
        row("custom_jvp", custom_jvp_prim, body_rejects),
        row("custom_vjp (bwd declared linear)", custom_vjp_linear_prim, body_rejects),
        row("custom_vjp (forward by the body's jvp)", custom_vjp_fallback_prim, body_rejects),
        OpRow {
            known: vec![k(
                vec![vec![0.5, -1.0, 2.0], vec![1.0, 2.0, 3.0]],
                vec![0.5, -2.0, 6.0],
            )],
            rejects: vec![
                (
                    vec![av(&[3], f64_), av(&[2], f64_)],
                    "the forward map's inputs are (f64[3], f64[3]) but the operands are (f64[3], f64[2])",
                ),
            ],
            ..row("custom_lin", custom_lin_prim, "")
        },
    ]
}
