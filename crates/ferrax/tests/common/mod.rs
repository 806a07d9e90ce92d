//! Helpers the array-surface and API tests share: an f64 tensor from a slice and a shape,
//! a tensor's values as f64, and comparison to a relative tolerance (at least absolute near
//! zero).

// each test binary uses some of them
#![allow(dead_code)]

use ferrax::{Array, DType, Tensor};

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
