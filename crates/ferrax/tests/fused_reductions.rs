//! Reductions fused into the elementwise runs that feed them: a compiled plan that ends a
//! fused group with a sum, maximum or minimum of all of one of its values gives the bits of
//! the same reduction run on its own (the reference evaluator's for the extrema, the
//! compiled sum's for sums), NaN and signed zeros included, whatever the number of threads;
//! and the reduced value is not written out unless something else reads it.

mod common;

use common::{assert_joined, run, same_bits, steps_of};
use ferrax::{make_jaxpr, DType, Plan, Tensor};

/// 3 × 5000 values: the last of the 2048-element chunks is partial.
const SHAPE: [usize; 2] = [3, 5000];

fn input(seed: u64, dtype: DType) -> Tensor {
    Tensor::random_uniform(seed, &SHAPE, -2.0, 2.0, dtype)
}

#[test]
fn extrema_fused_into_a_run_give_the_reference_bits() {
    for dtype in [DType::F32, DType::F64] {
        let (x, a) = (input(1, dtype), input(2, dtype));
        // a convergence test's max |x² - a|, a min, and an extremum of a value that is
        // also an output (kept and reduced)
        let f = |(x, a): (Tensor, Tensor)| {
            let r = (&x * &x - &a).abs();
            let m = (&x - &a).min(&[0, 1]);
            let kept = &x * 2.0 + &a;
            (r.max(&[0, 1]), m, kept.max(&[0, 1]), kept)
        };
        let p = make_jaxpr(f, &(x.clone(), a.clone())).unwrap();
        let plan = Plan::new(&p).unwrap();
        let args = [x, a];
        let got = run(&plan, &args);
        let want = p
            .eval(&args.iter().map(|t| t.array().unwrap()).collect::<Vec<_>>())
            .unwrap();
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            same_bits(g, w, &format!("{dtype} output {k}"));
        }
        let steps = steps_of(&plan, &args);
        assert_joined(
            &steps,
            &["+reduce_max]", "+reduce_min]"],
            "reduce_",
            &format!("{dtype}"),
        );
    }
}

#[test]
fn fused_extrema_keep_the_first_nan_and_the_sign_of_the_first_zero() {
    for dtype in [DType::F32, DType::F64] {
        let n = SHAPE[0] * SHAPE[1];
        // values ≤ 0 whose maximum is a zero: -0.0 comes first in one chunk, +0.0 later in
        // another, so the winner's sign depends on the order; then NaNs in two chunks
        let mut zeros = vec![-1.0; n];
        zeros[100] = -0.0;
        zeros[4100] = 0.0;
        let mut nans = zeros.clone();
        nans[3000] = f64::NAN;
        nans[9000] = -f64::NAN;
        for (what, values) in [("zeros", zeros), ("nans", nans)] {
            let x = Tensor::from_vec(values, &SHAPE).astype(dtype);
            let f = |x: Tensor| ((&x * 1.0).max(&[0, 1]), (-&x).min(&[0, 1]));
            let p = make_jaxpr(f, &x).unwrap();
            let got = run(&Plan::new(&p).unwrap(), std::slice::from_ref(&x));
            let want = p.eval(&[x.array().unwrap()]).unwrap();
            for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                same_bits(g, w, &format!("{what} {dtype} output {k}"));
            }
            if what == "zeros" {
                // the first zero was -0.0: the reference's maximum is -0.0
                assert!(got[0].to_f64_vec()[0].is_sign_negative(), "{dtype}");
            } else {
                assert!(got[0].to_f64_vec()[0].is_nan(), "{dtype}");
            }
        }
    }
}

#[test]
fn fused_sums_equal_the_compiled_sum_of_the_written_values_bit_for_bit() {
    for dtype in [DType::F32, DType::F64] {
        let (x, a) = (input(3, dtype), input(4, dtype));
        // fused: the squares are never written; unfused: the same squares written by one
        // plan, summed by another (the compiled sum of an input, no group before it)
        let fused = make_jaxpr(
            |(x, a): (Tensor, Tensor)| ((&x - &a) * (&x - &a)).sum(&[0, 1]),
            &(x.clone(), a.clone()),
        )
        .unwrap();
        let squares = make_jaxpr(
            |(x, a): (Tensor, Tensor)| (&x - &a) * (&x - &a),
            &(x.clone(), a.clone()),
        )
        .unwrap();
        let r = Tensor::zeros(&SHAPE, dtype);
        let sum = make_jaxpr(|r: Tensor| r.sum(&[0, 1]), &r).unwrap();
        let args = [x, a];
        let fused_plan = Plan::new(&fused).unwrap();
        let got = run(&fused_plan, &args);
        let written = Plan::new(&squares)
            .unwrap()
            .run(args.iter().map(|t| t.array().unwrap()).collect())
            .unwrap();
        let want = Plan::new(&sum).unwrap().run(written.clone()).unwrap();
        same_bits(&got[0], &want[0], &format!("{dtype} sum"));
        // and within rounding of the reference evaluator's serial sum
        let serial = sum.eval(&written).unwrap()[0].to_f64_vec()[0];
        let g = got[0].to_f64_vec()[0];
        let tol = if dtype == DType::F32 { 1e-5 } else { 1e-12 };
        assert!((g - serial).abs() <= tol * serial.abs(), "{g} vs {serial}");
        let steps = steps_of(&fused_plan, &args);
        assert!(
            steps.iter().any(|s| s.ends_with("+reduce_sum]")),
            "{steps:?}"
        );
    }
}

#[test]
fn fused_reductions_do_not_depend_on_the_number_of_threads() {
    // 2^17 values: more than eight chunks, so two threads split them
    let x = Tensor::random_uniform(5, &[1 << 17], -3.0, 3.0, DType::F32);
    let f = |x: Tensor| {
        let y = (&x * 0.5).tanh();
        (y.sum(&[0]), y.max(&[0]), (&x * &x).min(&[0]))
    };
    let p = make_jaxpr(f, &x).unwrap();
    let plan = Plan::new(&p).unwrap();
    let on = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| run(&plan, std::slice::from_ref(&x)))
    };
    let (one, two) = (on(1), on(2));
    for (k, (a, b)) in one.iter().zip(&two).enumerate() {
        same_bits(b, a, &format!("output {k}"));
    }
}
