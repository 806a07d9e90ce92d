//! Helpers the array-surface and API tests share: an f64 tensor from a slice and a shape,
//! a tensor's values as f64, comparison to a relative tolerance (at least absolute near
//! zero), bit-for-bit comparison of arrays, and running a plan (with the names of the
//! steps it took).

// each test binary uses some of them
#![allow(dead_code)]

use ferrax::{profile_start, profile_stop, Array, DType, Plan, Tensor};

/// An f64 tensor of `shape` from row-major values.
pub fn t(v: &[f64], shape: &[usize]) -> Tensor {
    Tensor::new(Array::from_vec(v.to_vec(), shape).unwrap())
}

/// The values of a tensor of any dtype, as f64.
pub fn vals(x: &Tensor) -> Vec<f64> {
    x.astype(DType::F64).to_vec::<f64>().unwrap()
}

/// Equal lengths and every pair within `tol` relative to the larger magnitude (absolute
/// below 1).
pub fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= tol * x.abs().max(y.abs()).max(1.0))
}

/// The same bits element by element, except that a NaN matches any NaN (which NaN an
/// operation on two NaNs returns is not specified in Rust); `what` names the comparison.
pub fn same_bits(got: &Array, want: &Array, what: &str) {
    let (g, w) = (got.to_f64_vec(), want.to_f64_vec());
    assert_eq!(g.len(), w.len(), "{what}");
    for (k, (a, b)) in g.iter().zip(&w).enumerate() {
        assert!(
            (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits(),
            "{what}: element {k} is {a:e}, want {b:e}"
        );
    }
}

/// The outputs of a run of `plan` on `args`.
pub fn run(plan: &Plan, args: &[Tensor]) -> Vec<Array> {
    plan.run(args.iter().map(|t| t.array().unwrap()).collect())
        .unwrap()
}

/// The names of the steps a run of `plan` took (fused groups as `fused[a+b+...]`).
pub fn steps_of(plan: &Plan, args: &[Tensor]) -> Vec<String> {
    profile_start();
    run(plan, args);
    profile_stop()
        .into_iter()
        .map(|(name, _, _)| name)
        .collect()
}

/// Asserts that `steps` (as [`steps_of`] names them) include a fused group that ends with
/// each of `ends` (`"+reduce_max]"`) and no step named `alone…` run on its own.
pub fn assert_joined(steps: &[String], ends: &[&str], alone: &str, what: &str) {
    for end in ends {
        assert!(
            steps
                .iter()
                .any(|s| s.starts_with("fused[") && s.ends_with(end)),
            "{what}: no fused group ends with {end} in {steps:?}"
        );
    }
    assert!(
        !steps.iter().any(|s| s.starts_with(alone)),
        "{what}: a {alone} step ran on its own: {steps:?}"
    );
}
