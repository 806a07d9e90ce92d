//! Per-primitive tests, driven by the op table: known values in f64 and f32, the shape rule
//! on accepted and rejected operands, and the print → parse → print round trip.

mod harness;

use ferrax::{eval_primitive, Array, Aval, DType, Error, Program, PRIMITIVE_NAMES};
use harness::{array_from_f64, close, eval_prim, op_table, Column, Tally};

#[test]
fn every_primitive_has_a_row() {
    let rows = op_table();
    for name in PRIMITIVE_NAMES {
        assert!(
            rows.iter().any(|r| r.prim.name() == *name),
            "primitive `{name}` has no row in the op table"
        );
    }
    // and every row names a real primitive, with known values, under a name of its own (the
    // coverage tally counts checks by row name)
    let mut names = std::collections::HashSet::new();
    for r in &rows {
        assert!(names.insert(r.name), "two rows are named {}", r.name);
        assert!(PRIMITIVE_NAMES.contains(&r.prim.name()));
        assert!(!r.known.is_empty(), "row {} has no known values", r.name);
    }
}

#[test]
fn known_values_f64_and_f32() {
    let mut tally = Tally::new(&[Column::KnownF64, Column::KnownF32]);
    for (column, dtype) in [
        (Column::KnownF64, DType::F64),
        (Column::KnownF32, DType::F32),
    ] {
        for row in column.rows() {
            let avals = (row.avals)(dtype);
            let tol = if dtype == DType::F64 {
                row.tol.1
            } else {
                row.tol.0
            };
            for known in &row.known {
                let args: Vec<Array> = known
                    .inputs
                    .iter()
                    .zip(&avals)
                    .map(|(v, a)| array_from_f64(v, a))
                    .collect();
                let refs: Vec<&Array> = args.iter().collect();
                let outs = eval_prim(&row.prim_for(dtype), &refs)
                    .unwrap_or_else(|e| panic!("{} on {dtype}: {e}", row.name));
                // the expected values are every output's, one after the other
                let total: usize = outs.iter().map(|o| o.size()).sum();
                assert_eq!(total, known.expected.len(), "{}: expected values", row.name);
                let mut rest = &known.expected[..];
                for (k, out) in outs.iter().enumerate() {
                    let (mine, after) = rest.split_at(out.size());
                    rest = after;
                    let expected = array_from_f64(mine, &out.aval());
                    assert!(
                        close(out, &expected, tol),
                        "{} on {dtype}, output {k}: got {out:?}, expected {expected:?}",
                        row.name
                    );
                }
                tally.checked(column, &row);
            }
        }
    }
    tally.assert_every_claimed_row_checked();
}

#[test]
fn shape_rule_accepts_every_listed_dtype() {
    for row in op_table() {
        for &d in row.dtypes {
            let avals = (row.avals)(d);
            let refs: Vec<&Aval> = avals.iter().collect();
            let prim = row.prim_for(d);
            let out = prim.out_avals(&refs);
            assert!(out.is_ok(), "{} rejects {d}: {:?}", row.name, out.err());
            // the evaluator's outputs have exactly the rule's avals
            let out = out.unwrap();
            for alt in 0..row.alternatives() {
                let args = row.args(&avals, 1, alt);
                let arefs: Vec<&Array> = args.iter().collect();
                let v: Vec<Aval> = eval_prim(&prim, &arefs)
                    .unwrap()
                    .iter()
                    .map(|a| a.aval())
                    .collect();
                assert_eq!(v, out, "{} on {d}", row.name);
            }
        }
    }
}

#[test]
fn shape_rule_rejects_bad_operands_with_a_precise_message() {
    let mut tally = Tally::new(&[Column::Rejects]);
    for row in op_table() {
        assert!(
            !row.rejects.is_empty(),
            "row {} lists no rejected operands",
            row.name
        );
        for (avals, fragment) in &row.rejects {
            let refs: Vec<&Aval> = avals.iter().collect();
            let err = row
                .prim
                .out_avals(&refs)
                .expect_err(&format!("{} should reject {avals:?}", row.name));
            let msg = err.to_string();
            assert!(
                msg.contains(fragment),
                "{} on {avals:?}: message `{msg}` lacks `{fragment}`",
                row.name
            );
            assert!(
                msg.contains(row.prim.name()),
                "{msg} should name the primitive"
            );
            assert!(
                matches!(
                    err,
                    Error::Shape { .. } | Error::DType { .. } | Error::Axis { .. }
                ),
                "{}: unexpected kind {err:?}",
                row.name
            );
            // evaluation rejects the same operands the same way (control flow is evaluated
            // through programs, which the checker guards before any equation runs)
            if avals.iter().all(|a| a.size() < 100) && row.prim.subprograms().is_empty() {
                let args: Vec<Array> = avals
                    .iter()
                    .map(|a| Array::zeros(&a.shape, a.dtype).unwrap())
                    .collect();
                let arefs: Vec<&Array> = args.iter().collect();
                assert_eq!(eval_primitive(&row.prim, &arefs).unwrap_err(), err);
            }
            tally.checked(Column::Rejects, &row);
        }
    }
    tally.assert_every_claimed_row_checked();
}

#[test]
fn dtype_kinds_are_reported_as_dtype_errors() {
    let sin = ferrax::Primitive::Sin;
    let err = sin
        .abstract_eval(&[&Aval::new(vec![2], DType::I64)])
        .unwrap_err();
    assert!(
        matches!(err, Error::DType { ref op, .. } if op == "sin"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "dtype error in `sin`: operand must be f32 or f64, got i64[2]"
    );
}

#[test]
fn print_parse_print_round_trip_for_every_row() {
    let mut tally = Tally::new(&[Column::RoundTrip]);
    for row in Column::RoundTrip.rows() {
        for &d in row.dtypes {
            let avals = (row.avals)(d);
            let p = row.program(d);
            p.check().unwrap();
            let text = p.to_string();
            let q = Program::parse(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", row.name));
            assert_eq!(q.to_string(), text, "{} on {d}", row.name);
            q.check().unwrap();
            // the parsed program computes the same thing, every output
            for alt in 0..row.alternatives() {
                let args = row.args(&avals, 7, alt);
                let a = p.eval(&args).unwrap();
                let b = q.eval(&args).unwrap();
                assert_eq!(a.len(), b.len(), "{}", row.name);
                for (x, y) in a.iter().zip(&b) {
                    assert!(x.same_values(y), "{}", row.name);
                }
            }
            tally.checked(Column::RoundTrip, &row);
        }
    }
    tally.assert_every_claimed_row_checked();
}

#[test]
fn checker_rejects_a_wrong_declared_output() {
    for row in op_table() {
        let d = row.dtypes[0];
        let program = row.program(d);
        // every output's declaration is checked
        for &out in &program.eqns[0].outs {
            let mut p = program.clone();
            let declared = p.avals[out.index()].clone();
            let mut wrong = declared.clone();
            wrong.shape.push(7);
            p.avals[out.index()] = wrong.clone();
            let err = p.check().unwrap_err();
            // the row's equation (a collective's is the `named_map` holding it)
            let name = program.eqns[0].prim.name();
            assert_eq!(
                err.to_string(),
                format!(
                    "ill-typed program: equation 0 (`{name}`): output is declared {wrong} but the rule for `{name}` gives {declared}",
                )
            );
        }
    }
}

// ---- semantics the table's three points do not show ----

fn f64s(v: &[f64]) -> Array {
    Array::from_slice(v)
}

fn run(p: ferrax::Primitive, args: &[&Array]) -> Array {
    eval_primitive(&p, args).unwrap()
}

#[test]
fn integer_division_truncates_and_never_traps() {
    use ferrax::Primitive::Div;
    let a = Array::from_slice(&[7i32, -7, 5, i32::MIN]);
    let b = Array::from_slice(&[2i32, 2, 0, -1]);
    let out = run(Div, &[&a, &b]);
    assert_eq!(out.to_vec::<i32>().unwrap(), vec![3, -3, -1, i32::MIN]);
}

#[test]
fn max_min_propagate_nan_and_comparisons_with_nan_are_false() {
    use ferrax::Primitive::*;
    let a = f64s(&[f64::NAN, 1.0]);
    let b = f64s(&[1.0, f64::NAN]);
    assert!(run(Max, &[&a, &b])
        .to_vec::<f64>()
        .unwrap()
        .iter()
        .all(|x| x.is_nan()));
    assert!(run(Min, &[&a, &b])
        .to_vec::<f64>()
        .unwrap()
        .iter()
        .all(|x| x.is_nan()));
    assert_eq!(
        run(Lt, &[&a, &b]).to_vec::<bool>().unwrap(),
        vec![false, false]
    );
    assert_eq!(
        run(Eq, &[&a, &a]).to_vec::<bool>().unwrap(),
        vec![false, true]
    );
    assert_eq!(
        run(Ne, &[&a, &a]).to_vec::<bool>().unwrap(),
        vec![true, false]
    );
}

#[test]
fn argmax_takes_the_first_maximum_and_a_nan() {
    let p = ferrax::Primitive::Argmax {
        axis: 0,
        index_dtype: DType::I64,
    };
    assert_eq!(
        run(p.clone(), &[&f64s(&[1.0, 3.0, 3.0])])
            .to_vec::<i64>()
            .unwrap(),
        vec![1]
    );
    assert_eq!(
        run(p, &[&f64s(&[1.0, f64::NAN, 5.0])])
            .to_vec::<i64>()
            .unwrap(),
        vec![1]
    );
}

#[test]
fn reductions_over_empty_axes_give_identities() {
    use ferrax::Primitive::*;
    let e = Array::zeros(&[2, 0], DType::F64).unwrap();
    assert_eq!(
        run(ReduceSum { axes: vec![1] }, &[&e])
            .to_vec::<f64>()
            .unwrap(),
        vec![0.0, 0.0]
    );
    assert_eq!(
        run(ReduceMax { axes: vec![1] }, &[&e])
            .to_vec::<f64>()
            .unwrap(),
        vec![f64::NEG_INFINITY; 2]
    );
    let ei = Array::zeros(&[0], DType::I32).unwrap();
    assert_eq!(
        run(ReduceMin { axes: vec![0] }, &[&ei])
            .to_vec::<i32>()
            .unwrap(),
        vec![i32::MAX]
    );
}

#[test]
fn sign_keeps_signed_zero_and_nan() {
    let out = run(ferrax::Primitive::Sign, &[&f64s(&[-0.0, f64::NAN])])
        .to_vec::<f64>()
        .unwrap();
    assert!(out[0] == 0.0 && out[0].is_sign_negative());
    assert!(out[1].is_nan());
}

#[test]
fn convert_element_type_edges() {
    use ferrax::Primitive::ConvertElementType;
    let x = f64s(&[f64::NAN, 1e20, -0.5, 2.0]);
    let i = run(
        ConvertElementType {
            new_dtype: DType::I32,
        },
        &[&x],
    );
    assert_eq!(i.to_vec::<i32>().unwrap(), vec![0, i32::MAX, 0, 2]);
    let b = run(
        ConvertElementType {
            new_dtype: DType::Bool,
        },
        &[&x],
    );
    assert_eq!(b.to_vec::<bool>().unwrap(), vec![true, true, true, true]);
    let back = run(
        ConvertElementType {
            new_dtype: DType::F32,
        },
        &[&b],
    );
    assert_eq!(back.to_vec::<f32>().unwrap(), vec![1.0; 4]);
}

#[test]
fn dot_general_matches_a_naive_loop_on_transposed_layouts() {
    // lhs [k, m] contracted on 0, rhs [n, k] contracted on 1: both operands transposed.
    let (k, m, n) = (5, 4, 3);
    let l = Array::random_normal(1, &[k, m], DType::F64).unwrap();
    let r = Array::random_normal(2, &[n, k], DType::F64).unwrap();
    let p = ferrax::Primitive::DotGeneral {
        lhs_contracting: vec![0],
        rhs_contracting: vec![1],
        lhs_batch: vec![],
        rhs_batch: vec![],
    };
    let out = run(p, &[&l, &r]);
    assert_eq!(out.shape(), &[m, n]);
    let (lv, rv, ov) = (
        l.to_vec::<f64>().unwrap(),
        r.to_vec::<f64>().unwrap(),
        out.to_vec::<f64>().unwrap(),
    );
    for i in 0..m {
        for j in 0..n {
            let want: f64 = (0..k).map(|q| lv[q * m + i] * rv[j * k + q]).sum();
            assert!((ov[i * n + j] - want).abs() < 1e-13, "({i},{j})");
        }
    }
}

#[test]
fn dot_general_integers_and_f32_through_gemm() {
    let p = ferrax::Primitive::DotGeneral {
        lhs_contracting: vec![1],
        rhs_contracting: vec![0],
        lhs_batch: vec![],
        rhs_batch: vec![],
    };
    let a = Array::from_vec(vec![1i64, 2, 3, 4], &[2, 2]).unwrap();
    assert_eq!(
        run(p.clone(), &[&a, &a]).to_vec::<i64>().unwrap(),
        vec![7, 10, 15, 22]
    );
    let b = Array::from_vec(vec![1f32, 2., 3., 4.], &[2, 2]).unwrap();
    assert_eq!(
        run(p, &[&b, &b]).to_vec::<f32>().unwrap(),
        vec![7., 10., 15., 22.]
    );
}

#[test]
fn pad_interior_in_two_dimensions_and_concatenate_middle_axis() {
    let x = Array::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    let p = ferrax::Primitive::Pad {
        low: vec![0, 1],
        high: vec![1, 0],
        interior: vec![1, 0],
    };
    let out = run(p, &[&x, &Array::scalar(9.0f64)]);
    assert_eq!(out.shape(), &[4, 3]);
    assert_eq!(
        out.to_vec::<f64>().unwrap(),
        vec![9., 1., 2., 9., 9., 9., 9., 3., 4., 9., 9., 9.]
    );
    let a = Array::from_vec(vec![1i32, 2, 3, 4], &[2, 2]).unwrap();
    let b = Array::from_vec(vec![5i32, 6], &[2, 1]).unwrap();
    let c = run(ferrax::Primitive::Concatenate { dimension: 1 }, &[&a, &b]);
    assert_eq!(c.to_vec::<i32>().unwrap(), vec![1, 2, 5, 3, 4, 6]);
}
