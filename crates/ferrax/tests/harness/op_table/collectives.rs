//! Rows of the collectives over a named axis. A collective means something only inside a
//! map that binds its axis, so each row's program is one `named_map` over an axis `i` of
//! three members whose body is the collective alone: the operands are the members' values
//! stacked along dimension 0, and so are the results. Every column then checks the
//! collective's own rules (its jvp, transpose and batching rules run inside the map's),
//! against the map's lockstep evaluation. Known values: worked by hand.

use super::super::single_eqn_program;
use super::*;
use ferrax::{make_jaxpr, named_map, psum as psum_fn, Closed, Tensor};

/// Members of the axis `i`.
const N: usize = 3;

/// `prim` as the body of a `named_map` over `i`, one member's operands `member`.
fn in_map(prim: Primitive, member: &[Aval]) -> Primitive {
    let body = single_eqn_program(&prim, member).expect("the collective's body checks");
    Primitive::NamedMap {
        body: Closed::new(body),
        axis_name: "i".into(),
        axis_size: N,
    }
}

fn axis() -> (String, usize) {
    ("i".into(), N)
}

fn psum() -> Primitive {
    let (axis_name, axis_size) = axis();
    Primitive::Psum {
        axis_name,
        axis_size,
    }
}
fn pmean() -> Primitive {
    let (axis_name, axis_size) = axis();
    Primitive::Pmean {
        axis_name,
        axis_size,
    }
}
fn pmax() -> Primitive {
    let (axis_name, axis_size) = axis();
    Primitive::Pmax {
        axis_name,
        axis_size,
    }
}
fn pmin() -> Primitive {
    let (axis_name, axis_size) = axis();
    Primitive::Pmin {
        axis_name,
        axis_size,
    }
}
fn all_gather() -> Primitive {
    let (axis_name, axis_size) = axis();
    Primitive::AllGather {
        axis_name,
        axis_size,
        axis: 0,
    }
}
fn psum_scatter() -> Primitive {
    let (axis_name, axis_size) = axis();
    Primitive::PsumScatter {
        axis_name,
        axis_size,
        axis: 0,
    }
}
/// Member 0 sends to 1, 1 to 2; member 0 receives nothing (zeros).
fn ppermute() -> Primitive {
    let (axis_name, axis_size) = axis();
    Primitive::Ppermute {
        axis_name,
        axis_size,
        src: vec![0, 1],
        dst: vec![1, 2],
    }
}
fn all_to_all() -> Primitive {
    let (axis_name, axis_size) = axis();
    Primitive::AllToAll {
        axis_name,
        axis_size,
        split_axis: 0,
        concat_axis: 0,
    }
}
fn axis_index() -> Primitive {
    let (axis_name, axis_size) = axis();
    Primitive::AxisIndex {
        axis_name,
        axis_size,
    }
}

fn member3(d: DType) -> Vec<Aval> {
    vec![av(&[3], d)]
}
fn stacked3(d: DType) -> Vec<Aval> {
    vec![av(&[N, 3], d)]
}

/// The three members' values: [1, 5, 3], [4, 2, 6], [0, 8, -1].
fn members() -> Vec<Vec<f64>> {
    vec![vec![1.0, 5.0, 3.0, 4.0, 2.0, 6.0, 0.0, 8.0, -1.0]]
}

/// The same value on every member.
fn each(v: &[f64]) -> Vec<f64> {
    v.repeat(N)
}

/// A map whose body mixes member-local work with a collective: `sin(x) · psum(x)` and
/// `x · x`, on members of `f[3]`, read back from the traced program.
fn named_map_prim(d: DType) -> Primitive {
    let xs = Tensor::zeros(&[N, 3], d);
    let p = make_jaxpr(
        |x: Tensor| {
            named_map(|m: Tensor| (m.sin() * psum_fn(&m, "i"), &m * &m), &x, "i")
                .expect("the map traces")
        },
        &xs,
    )
    .expect("the row's function traces");
    assert_eq!(p.eqns.len(), 1, "one named_map: {p}");
    p.eqns[0].prim.clone()
}

/// The rows, in table order.
pub(super) fn rows() -> Vec<OpRow> {
    let row = |name, prim: Primitive, prim_at: fn(DType) -> Primitive, expected: Vec<f64>| OpRow {
        name,
        prim,
        avals: stacked3,
        dtypes: FLOATS,
        domain: Domain::Real,
        tol: (1e-6, 1e-15),
        known: vec![k(members(), expected)],
        rejects: vec![],
        prim_at: Some(prim_at),
        fixed: &[],
        gen: Gen::Skip,
    };
    let gathered = members()[0].clone();
    vec![
        OpRow {
            rejects: vec![(vec![av(&[3], DType::Bool)], "must be numeric")],
            ..row(
                "psum",
                psum(),
                |d| in_map(psum(), &member3(d)),
                each(&[5.0, 15.0, 8.0]),
            )
        },
        OpRow {
            rejects: vec![(vec![av(&[3], DType::I32)], "must be f32 or f64")],
            ..row(
                "pmean",
                pmean(),
                |d| in_map(pmean(), &member3(d)),
                each(&[5.0 / 3.0, 5.0, 8.0 / 3.0]),
            )
        },
        row(
            "pmax",
            pmax(),
            |d| in_map(pmax(), &member3(d)),
            each(&[4.0, 8.0, 6.0]),
        ),
        row(
            "pmin",
            pmin(),
            |d| in_map(pmin(), &member3(d)),
            each(&[0.0, 2.0, -1.0]),
        ),
        row(
            "all_gather",
            all_gather(),
            |d| in_map(all_gather(), &member3(d)),
            each(&gathered),
        ),
        OpRow {
            rejects: vec![(
                vec![av(&[2], DType::F64)],
                "must have the axis `i`'s size 3",
            )],
            ..row(
                "psum_scatter",
                psum_scatter(),
                |d| in_map(psum_scatter(), &member3(d)),
                vec![5.0, 15.0, 8.0],
            )
        },
        row(
            "ppermute",
            ppermute(),
            |d| in_map(ppermute(), &member3(d)),
            vec![0.0, 0.0, 0.0, 1.0, 5.0, 3.0, 4.0, 2.0, 6.0],
        ),
        OpRow {
            rejects: vec![(
                vec![av(&[2], DType::F64)],
                "does not split into 3 equal blocks",
            )],
            ..row(
                "all_to_all",
                all_to_all(),
                |d| in_map(all_to_all(), &member3(d)),
                vec![1.0, 4.0, 0.0, 5.0, 2.0, 8.0, 3.0, 6.0, -1.0],
            )
        },
        OpRow {
            rejects: vec![(
                vec![av(&[2, 3], DType::F64)],
                "operand 0 (f64[2,3]) must have the 3 members of `i` along dimension 0",
            )],
            ..row(
                "named_map",
                named_map_prim(DType::F64),
                named_map_prim,
                // sin(x_m) · (x_0 + x_1 + x_2), then x_m² (libm's sin via Python)
                vec![
                    4.207354924039483,
                    -14.383864119947077,
                    1.1289600644789377,
                    -3.7840124765396412,
                    13.639461402385226,
                    -2.235323985591407,
                    0.0,
                    14.840373699350726,
                    -6.731767878463172,
                    1.0,
                    25.0,
                    9.0,
                    16.0,
                    4.0,
                    36.0,
                    0.0,
                    64.0,
                    1.0,
                ],
            )
        },
        OpRow {
            avals: |_| vec![],
            known: vec![k(vec![], vec![0.0, 1.0, 2.0])],
            rejects: vec![(vec![av(&[3], DType::F64)], "takes 0 operand(s), got 1")],
            ..row(
                "axis_index",
                axis_index(),
                |_| in_map(axis_index(), &[]),
                vec![],
            )
        },
    ]
}
