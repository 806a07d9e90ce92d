//! Rows of rematerialization: `checkpoint` (a body run once; its policy matters only to
//! linearization, which the derivative columns exercise: the body's matrix product is
//! stored, its sine recomputed) and `checkpoint_name` (the identity, naming a value); and
//! `stop_gradient` (the identity with a zero derivative: its jvp check is that zero, not
//! finite differences, and random programs do not use it, whose derivatives are checked
//! against finite differences). Known values: libm's sin via Python.

use super::*;
use ferrax::{make_jaxpr, Closed, RematPolicy, Tensor};

/// (x, y) -> (sin(x) y, x · y).
fn checkpoint_prim(d: DType) -> Primitive {
    let example = vec![Tensor::zeros(&[3], d), Tensor::zeros(&[3], d)];
    let body = make_jaxpr(
        |v: Vec<Tensor>| (v[0].sin() * &v[1], v[0].dot(&v[1])),
        &example,
    )
    .expect("the row's body traces");
    Primitive::Checkpoint {
        body: Closed::new(body),
        policy: RematPolicy::Dots,
    }
}

/// The rows, in table order.
pub(super) fn rows() -> Vec<OpRow> {
    let f64_ = DType::F64;
    vec![
        OpRow {
            name: "checkpoint",
            prim: checkpoint_prim(f64_),
            avals: vv3,
            dtypes: FLOATS,
            domain: Domain::Real,
            tol: (2e-6, 1e-15),
            known: vec![k(
                vec![vec![0.5, -1.0, 2.0], vec![1.0, 2.0, 3.0]],
                vec![
                    0.479425538604203,
                    -1.682941969615793,
                    2.727892280477045,
                    4.5,
                ],
            )],
            rejects: vec![(
                vec![av(&[3], f64_), av(&[2], f64_)],
                "the body takes (f64[3], f64[3]) but the operands are (f64[3], f64[2])",
            )],
            prim_at: Some(checkpoint_prim),
            fixed: &[],
            gen: Gen::Skip,
        },
        identity_row("stop_gradient", Primitive::StopGradient),
        identity_row(
            "checkpoint_name",
            Primitive::CheckpointName { name: "h1".into() },
        ),
    ]
}

/// A row of an identity primitive on f[3] (its meaning is its derivative or its name).
fn identity_row(name: &'static str, prim: Primitive) -> OpRow {
    OpRow {
        name,
        prim,
        avals: v3,
        dtypes: FLOATS,
        domain: Domain::Real,
        tol: (0.0, 0.0),
        known: vec![k(vec![vec![0.5, -1.0, 2.0]], vec![0.5, -1.0, 2.0])],
        rejects: vec![],
        prim_at: None,
        fixed: &[],
        gen: Gen::Skip,
    }
}
