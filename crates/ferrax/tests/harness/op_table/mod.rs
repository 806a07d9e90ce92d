//! The op table: one row per primitive (several for some), split by family. The order of
//! the rows is part of the random-program generator's input (a recipe picks generator rows
//! by index), so it stays fixed: the stored proptest regressions depend on it.

// Known values are literal reference numbers from an independent implementation, written
// out in full on purpose, even where they equal a named constant such as LN_2.
#![allow(clippy::approx_constant)]

mod collectives;
mod contractions;
mod control;
mod custom;
mod elementwise;
mod indexing;
mod linalg;
mod loops;
mod numpy;
mod reductions;
mod remat;
mod structural;

use super::{av, Domain, Gen, Known, OpRow, Pick};
use ferrax::{Atom, Aval, DType, Primitive};

/// The op table: every primitive, at least once.
pub fn op_table() -> Vec<OpRow> {
    let mut rows = elementwise::rows();
    rows.extend(reductions::rows());
    rows.extend(structural::rows());
    rows.extend(contractions::rows());
    // last: the generator picks rows by index, and stored regressions depend on the order
    rows.extend(control::rows());
    rows.extend(loops::rows());
    rows.extend(remat::rows());
    rows.extend(indexing::rows());
    rows.extend(numpy::rows());
    rows.extend(linalg::rows());
    rows.extend(custom::rows());
    rows.extend(collectives::rows());
    // Common rejections for rows that take operands: a wrong count.
    for r in rows.iter_mut() {
        if r.rejects.is_empty() {
            r.rejects.push((vec![av(&[3], DType::F64); 4], "operand"));
        }
    }
    rows
}

const FLOATS: &[DType] = &[DType::F64, DType::F32];
const NUMERIC: &[DType] = &[DType::F64, DType::F32, DType::I32, DType::I64];
const ALL: &[DType] = &[DType::F64, DType::F32, DType::I32, DType::I64, DType::Bool];

fn k(inputs: Vec<Vec<f64>>, expected: Vec<f64>) -> Known {
    Known { inputs, expected }
}

fn v3(d: DType) -> Vec<Aval> {
    vec![av(&[3], d)]
}
fn vv3(d: DType) -> Vec<Aval> {
    vec![av(&[3], d), av(&[3], d)]
}
fn m23(d: DType) -> Vec<Aval> {
    vec![av(&[2, 3], d)]
}

/// A float-only unary row with known values at three points.
fn float_unary(
    name: &'static str,
    prim: Primitive,
    domain: Domain,
    x: [f64; 3],
    y: [f64; 3],
) -> OpRow {
    OpRow {
        name,
        prim,
        avals: v3,
        dtypes: FLOATS,
        domain,
        tol: (2e-6, 1e-15),
        known: vec![k(vec![x.to_vec()], y.to_vec())],
        rejects: vec![
            (vec![av(&[3], DType::I32)], "must be f32 or f64"),
            (vec![av(&[3], DType::Bool)], "must be f32 or f64"),
            (vec![], "takes 1 operand(s), got 0"),
        ],
        prim_at: None,
        fixed: &[],
        gen: Gen::Unary,
    }
}

fn numeric_unary(name: &'static str, prim: Primitive, x: [f64; 3], y: [f64; 3]) -> OpRow {
    OpRow {
        name,
        prim,
        avals: v3,
        dtypes: NUMERIC,
        domain: Domain::Real2,
        tol: (0.0, 0.0),
        known: vec![k(vec![x.to_vec()], y.to_vec())],
        rejects: vec![(vec![av(&[3], DType::Bool)], "must be numeric")],
        prim_at: None,
        fixed: &[],
        gen: Gen::Unary,
    }
}

fn binary(
    name: &'static str,
    prim: Primitive,
    dtypes: &'static [DType],
    domain: Domain,
    x: [f64; 3],
    y: [f64; 3],
    z: [f64; 3],
) -> OpRow {
    OpRow {
        name,
        prim,
        avals: vv3,
        dtypes,
        domain,
        tol: (2e-6, 1e-15),
        known: vec![k(vec![x.to_vec(), y.to_vec()], z.to_vec())],
        rejects: vec![
            (
                vec![av(&[3], DType::F64), av(&[4], DType::F64)],
                "different shapes",
            ),
            (
                vec![av(&[3], DType::F64), av(&[3], DType::F32)],
                "different dtypes",
            ),
            (vec![av(&[3], DType::F64)], "takes 2 operand(s), got 1"),
        ],
        prim_at: None,
        fixed: &[],
        gen: Gen::Binary,
    }
}
