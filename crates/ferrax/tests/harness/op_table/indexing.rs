//! Indexing rows: `gather` and `scatter_add` (clamped, and batched with dropped
//! out-of-range indices), `scatter` with each combine, `dynamic_slice` and
//! `dynamic_update_slice`. Their indices and starts are static operands (`OpRow::fixed`)
//! whose listed values include repeats, negatives and values past the end, so every check
//! sees clamping, dropping and repeated places. Known values worked by hand.

use super::*;
use ferrax::{IndexMode, ScatterCombine};
use Domain::Real;

const I32: DType = DType::I32;

fn gather(axis: usize, batch: usize, mode: IndexMode) -> Primitive {
    Primitive::Gather { axis, batch, mode }
}

fn scatter(combine: ScatterCombine) -> Primitive {
    Primitive::Scatter {
        axis: 0,
        batch: 0,
        mode: IndexMode::Clip,
        combine,
    }
}

/// Indices for a length-3 axis: in range, repeated, negative and past the end.
const IDX3: &[f64] = &[2.0, 0.0, 2.0, -1.0, 5.0, 1.0, 0.0];

fn scatter_row(
    name: &'static str,
    combine: ScatterCombine,
    dtypes: &'static [DType],
    expected: [f64; 3],
) -> OpRow {
    OpRow {
        name,
        prim: scatter(combine),
        avals: |d| vec![av(&[3], d), av(&[3], I32), av(&[3], d)],
        dtypes,
        domain: Real,
        tol: (0.0, 0.0),
        known: vec![k(
            vec![
                vec![1.0, 2.0, 3.0],
                vec![0.0, 5.0, 0.0],
                vec![5.0, -1.0, 0.5],
            ],
            expected.to_vec(),
        )],
        rejects: vec![(
            vec![av(&[3], DType::F64), av(&[3], I32), av(&[2], DType::F64)],
            "updates must be f64[3]",
        )],
        prim_at: None,
        fixed: &[(1, IDX3)],
        gen: Gen::Skip,
    }
}

pub fn rows() -> Vec<OpRow> {
    let f64_ = DType::F64;
    vec![
        OpRow {
            name: "gather",
            prim: gather(0, 0, IndexMode::Clip),
            avals: |d| vec![av(&[4, 2], d), av(&[3], I32)],
            dtypes: ALL,
            domain: Real,
            tol: (0.0, 0.0),
            known: vec![k(
                vec![(0..8).map(f64::from).collect(), vec![2.0, -1.0, 9.0]],
                vec![4.0, 5.0, 0.0, 1.0, 6.0, 7.0],
            )],
            rejects: vec![
                (
                    vec![av(&[4, 2], f64_), av(&[3], f64_)],
                    "indices must be i32 or i64, got f64[3]",
                ),
                (vec![av(&[], f64_), av(&[3], I32)], "axis 0 is out of range"),
            ],
            prim_at: None,
            fixed: &[(1, &[2.0, -1.0, 9.0, 0.0, 3.0, 3.0])],
            gen: Gen::Skip,
        },
        OpRow {
            name: "gather_batched",
            prim: gather(1, 1, IndexMode::Fill),
            avals: |d| vec![av(&[2, 3], d), av(&[2, 2], I32)],
            dtypes: ALL,
            domain: Real,
            tol: (0.0, 0.0),
            known: vec![k(
                vec![(0..6).map(f64::from).collect(), vec![2.0, 5.0, -1.0, 0.0]],
                vec![2.0, 0.0, 0.0, 3.0],
            )],
            rejects: vec![(
                vec![av(&[2, 3], f64_), av(&[3, 2], I32)],
                "shared leading dimension(s) differ",
            )],
            prim_at: None,
            fixed: &[(1, &[2.0, 5.0, -1.0, 0.0, 1.0])],
            gen: Gen::Skip,
        },
        OpRow {
            name: "scatter_add",
            prim: Primitive::ScatterAdd {
                axis: 0,
                batch: 0,
                mode: IndexMode::Clip,
            },
            avals: |d| vec![av(&[3, 2], d), av(&[3], I32), av(&[3, 2], d)],
            dtypes: NUMERIC,
            domain: Real,
            tol: (0.0, 0.0),
            known: vec![k(
                vec![
                    vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
                    vec![2.0, 2.0, -4.0],
                    vec![10.0, 20.0, 30.0, 40.0, 50.0, 60.0],
                ],
                vec![51.0, 62.0, 3.0, 4.0, 45.0, 66.0],
            )],
            rejects: vec![
                (
                    vec![av(&[3, 2], f64_), av(&[3], I32), av(&[2, 3], f64_)],
                    "updates must be f64[3,2]",
                ),
                (
                    vec![av(&[3], DType::Bool), av(&[3], I32), av(&[3], DType::Bool)],
                    "operand must be numeric",
                ),
            ],
            prim_at: None,
            fixed: &[(1, IDX3)],
            gen: Gen::Skip,
        },
        OpRow {
            name: "scatter_add_batched",
            prim: Primitive::ScatterAdd {
                axis: 1,
                batch: 1,
                mode: IndexMode::Fill,
            },
            avals: |d| vec![av(&[2, 3], d), av(&[2, 2], I32), av(&[2, 2], d)],
            dtypes: NUMERIC,
            domain: Real,
            tol: (0.0, 0.0),
            known: vec![k(
                vec![
                    vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
                    vec![0.0, 3.0, 1.0, 1.0],
                    vec![10.0, 20.0, 30.0, 40.0],
                ],
                vec![11.0, 2.0, 3.0, 4.0, 75.0, 6.0],
            )],
            rejects: vec![],
            prim_at: None,
            fixed: &[(1, &[0.0, 3.0, 1.0, 1.0, -1.0, 2.0])],
            gen: Gen::Skip,
        },
        // idx (0, 5, 0) clamps to (0, 2, 0): the second update to 0 wins for set
        scatter_row("scatter_set", ScatterCombine::Set, ALL, [0.5, 2.0, -1.0]),
        scatter_row(
            "scatter_mul",
            ScatterCombine::Mul,
            NUMERIC,
            [2.5, 2.0, -3.0],
        ),
        scatter_row(
            "scatter_min",
            ScatterCombine::Min,
            NUMERIC,
            [0.5, 2.0, -1.0],
        ),
        scatter_row("scatter_max", ScatterCombine::Max, NUMERIC, [5.0, 2.0, 3.0]),
        OpRow {
            name: "dynamic_slice",
            prim: Primitive::DynamicSlice { sizes: vec![2, 2] },
            avals: |d| vec![av(&[3, 4], d), av(&[], I32), av(&[], I32)],
            dtypes: ALL,
            domain: Real,
            tol: (0.0, 0.0),
            known: vec![k(
                vec![(0..12).map(f64::from).collect(), vec![2.0], vec![-3.0]],
                vec![4.0, 5.0, 8.0, 9.0],
            )],
            rejects: vec![
                (
                    vec![av(&[3, 4], f64_), av(&[], I32)],
                    "needs one start index per dimension of f64[3,4], got 1",
                ),
                (
                    vec![av(&[3, 4], f64_), av(&[], I32), av(&[], f64_)],
                    "start index 1 must be i32 or i64",
                ),
                (
                    vec![av(&[1, 4], f64_), av(&[], I32), av(&[], I32)],
                    "none larger than it",
                ),
            ],
            prim_at: None,
            fixed: &[
                (1, &[0.0, 2.0, -1.0, 1.0]),
                (2, &[1.0, -3.0, 5.0, 2.0, 0.0]),
            ],
            gen: Gen::Skip,
        },
        OpRow {
            name: "dynamic_update_slice",
            prim: Primitive::DynamicUpdateSlice,
            avals: |d| vec![av(&[3, 4], d), av(&[2, 2], d), av(&[], I32), av(&[], I32)],
            dtypes: ALL,
            domain: Real,
            tol: (0.0, 0.0),
            known: vec![k(
                vec![
                    (0..12).map(f64::from).collect(),
                    vec![100.0, 101.0, 102.0, 103.0],
                    vec![0.0],
                    vec![3.0],
                ],
                vec![
                    0.0, 1.0, 100.0, 101.0, 4.0, 5.0, 102.0, 103.0, 8.0, 9.0, 10.0, 11.0,
                ],
            )],
            rejects: vec![
                (
                    vec![
                        av(&[3, 4], f64_),
                        av(&[4, 2], f64_),
                        av(&[], I32),
                        av(&[], I32),
                    ],
                    "fit inside it",
                ),
                (
                    vec![
                        av(&[3, 4], f64_),
                        av(&[2, 2], f64_),
                        av(&[2], I32),
                        av(&[], I32),
                    ],
                    "start index 0 must be a scalar",
                ),
            ],
            prim_at: None,
            fixed: &[
                (2, &[0.0, 2.0, -1.0, 1.0]),
                (3, &[1.0, -3.0, 5.0, 2.0, 0.0]),
            ],
            gen: Gen::Skip,
        },
    ]
}
