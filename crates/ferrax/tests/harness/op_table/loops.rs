//! Rows of the loops whose trip count is known only when they run: `while`, and
//! `while_linear` (the linear part of a linearized `while`) forward and transposed.
//!
//! The `while` row counts with an i32 carry from a static start (`fixed`: 0, 2, 4 or 1
//! steps taken already), so its trip count depends on its input and vmap batches examples
//! that stop at different steps. `while_linear` is linear in its linear operands given its
//! residuals (consts, trip count, initial carry), which are static here: every column then
//! checks it as the linear map linearization makes of it (the jvp with respect to the
//! residuals, which forward over reverse uses, is checked against finite differences of
//! gradients in `control_while_ad.rs`). Known values: the loops written out in Python's
//! floats with libm's sin and cos.

use super::*;
use ferrax::{jvp, make_jaxpr, transpose_program, Closed, Tensor};

fn traced<O: ferrax::Tree>(f: impl FnOnce(Vec<Tensor>) -> O, avals: &[Aval]) -> Closed {
    let example: Vec<Tensor> = avals
        .iter()
        .map(|a| Tensor::zeros(&a.shape, a.dtype))
        .collect();
    Closed::new(make_jaxpr(f, &example).expect("a row's sub-program traces"))
}

/// (a, k, x): the body's const, the counter, the carry.
fn while_avals(d: DType) -> Vec<Aval> {
    vec![av(&[3], d), av(&[], DType::I32), av(&[3], d)]
}

/// While k < 4: k' = k + 1, x' = sin(x a) + x / 2.
fn while_prim(d: DType) -> Primitive {
    let carry = [av(&[], DType::I32), av(&[3], d)];
    Primitive::While {
        cond: traced(|v| v[0].less(4), &carry),
        body: traced(
            |v| (v[1].clone() + 1, (&v[2] * &v[0]).sin() + &v[2] * 0.5),
            &[av(&[3], d), carry[0].clone(), carry[1].clone()],
        ),
        n_cond_consts: 0,
        n_body_consts: 1,
        max_steps: 0,
        checkpoints: 0,
    }
}

/// x' = sin(x a) + x / 2 on (a, x).
fn step_body(d: DType) -> Closed {
    traced(
        |v| (&v[1] * &v[0]).sin() + &v[1] * 0.5,
        &[av(&[3], d), av(&[3], d)],
    )
}

/// The linear step (a, x, da, t) -> the tangent of x' along (da, t).
fn step_linear(d: DType) -> Closed {
    traced(
        |v| {
            let f = |p: (Tensor, Tensor)| (&p.1 * &p.0).sin() + &p.1 * 0.5;
            let primals = (v[0].clone(), v[1].clone());
            let tangents = (v[2].clone(), v[3].clone());
            jvp(f, &primals, &tangents)
                .unwrap_or_else(|e| panic!("{e}"))
                .1
        },
        &[av(&[3], d), av(&[3], d), av(&[3], d), av(&[3], d)],
    )
}

/// (a, n, x0, da, t).
fn linear_avals(d: DType) -> Vec<Aval> {
    vec![
        av(&[3], d),
        av(&[], DType::I64),
        av(&[3], d),
        av(&[3], d),
        av(&[3], d),
    ]
}

fn linear_prim(d: DType) -> Primitive {
    Primitive::WhileLinear {
        body: step_body(d),
        step: step_linear(d),
        n_consts: 1,
        n_lin_consts: 1,
        transposed: false,
        checkpoints: 0,
    }
}

/// (a, n, x0, ct).
fn transposed_avals(d: DType) -> Vec<Aval> {
    vec![av(&[3], d), av(&[], DType::I64), av(&[3], d), av(&[3], d)]
}

/// The transposed loop keeps two carries at once (x0 and one more): the binomial schedule
/// recomputes the rest.
fn transposed_prim(d: DType) -> Primitive {
    let step = transpose_program(step_linear(d).program(), 2).expect("the step transposes");
    Primitive::WhileLinear {
        body: step_body(d),
        step: Closed::new(step),
        n_consts: 1,
        n_lin_consts: 1,
        transposed: true,
        checkpoints: 2,
    }
}

/// The loop rows, in table order.
pub(super) fn rows() -> Vec<OpRow> {
    use Domain::*;
    let f64_ = DType::F64;
    let a = vec![0.5, -1.0, 2.0];
    let x0 = vec![0.3, 0.6, -0.9];
    let da = vec![0.1, 0.2, -0.3];
    let t0 = vec![1.0, -0.5, 0.25];
    let ct = vec![0.7, -0.2, 1.1];
    vec![
        OpRow {
            name: "while",
            prim: while_prim(f64_),
            avals: while_avals,
            dtypes: FLOATS,
            domain: Real,
            tol: (1e-5, 1e-14),
            known: vec![
                k(
                    vec![a.clone(), vec![0.0], x0.clone()],
                    vec![4.0, 0.297771305139663, 0.0320867685827653, -1.0228123248008285],
                ),
                k(
                    vec![a.clone(), vec![2.0], x0.clone()],
                    vec![4.0, 0.2988794136370734, 0.12924296847472908, -1.0016085111878557],
                ),
                // no step at all
                k(
                    vec![a.clone(), vec![7.0], x0.clone()],
                    [vec![7.0], x0.clone()].concat(),
                ),
            ],
            rejects: vec![
                (
                    vec![av(&[3], f64_), av(&[], DType::I32), av(&[2], f64_)],
                    "the cond takes (i32[], f64[3]) but its consts and the carry are (i32[], f64[2])",
                ),
                (
                    vec![av(&[3], f64_), av(&[], DType::I64), av(&[3], f64_)],
                    "the cond takes (i32[], f64[3]) but its consts and the carry are (i64[], f64[3])",
                ),
                (vec![], "0 cond consts and 1 body consts asked of 0 operands"),
            ],
            prim_at: Some(while_prim),
            fixed: &[(1, &[0.0, 2.0, 4.0, 1.0])],
            gen: Gen::Skip,
        },
        OpRow {
            name: "while_linear",
            prim: linear_prim(f64_),
            avals: linear_avals,
            dtypes: FLOATS,
            domain: Real,
            tol: (1e-5, 1e-14),
            known: vec![
                k(
                    vec![a.clone(), vec![3.0], x0.clone(), da.clone(), t0.clone()],
                    vec![1.0716445586552874, 0.11060597504769634, -0.011563117257734068],
                ),
                k(
                    vec![a.clone(), vec![0.0], x0.clone(), da.clone(), t0.clone()],
                    t0.clone(),
                ),
            ],
            rejects: vec![
                (
                    vec![av(&[3], f64_), av(&[], DType::I32), av(&[3], f64_), av(&[3], f64_), av(&[3], f64_)],
                    "the trip count must be an i64 scalar, got i32[]",
                ),
                (
                    vec![av(&[3], f64_), av(&[], DType::I64), av(&[3], f64_), av(&[3], f64_)],
                    "the step takes (f64[3], f64[3], f64[3], f64[3]) but the consts, carry and linear operands are (f64[3], f64[3], f64[3])",
                ),
            ],
            prim_at: Some(linear_prim),
            fixed: &[
                (0, &[0.5, -1.0, 2.0, 0.25]),
                (1, &[3.0, 0.0, 1.0, 2.0]),
                (2, &[0.3, 0.6, -0.9, 1.2]),
            ],
            gen: Gen::Skip,
        },
        OpRow {
            name: "while_linear_transposed",
            prim: transposed_prim(f64_),
            avals: transposed_avals,
            dtypes: FLOATS,
            domain: Real,
            tol: (1e-5, 1e-14),
            known: vec![k(
                vec![a.clone(), vec![3.0], x0.clone(), ct.clone()],
                vec![
                    0.6183204684690522,
                    -0.07340168893954016,
                    0.062385534140742605,
                    0.6883191442117961,
                    0.014881714443262471,
                    0.023984925034861344,
                ],
            )],
            rejects: vec![(
                vec![av(&[3], f64_), av(&[], DType::I64), av(&[2], f64_), av(&[3], f64_)],
                "the body maps (f64[3], f64[3]) to (f64[3]) but the consts and the carry are (f64[3], f64[2])",
            )],
            prim_at: Some(transposed_prim),
            fixed: &[
                (0, &[0.5, -1.0, 2.0, 0.25]),
                (1, &[3.0, 0.0, 5.0, 2.0]),
                (2, &[0.3, 0.6, -0.9, 1.2]),
            ],
            gen: Gen::Skip,
        },
    ]
}
