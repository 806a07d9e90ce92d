//! The benchmark's `gnvp` residual: a 2-layer tanh MLP fitted to data, as a function of one
//! flat parameter vector (4096 residuals, 32 inputs, 300 hidden units, one output: 10,201
//! parameters at full size), for the matrix-free Gauss-Newton-CG fit.

use ferrax::{Array, DType, Tensor};

/// The sizes of an MLP residual problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MlpSize {
    pub samples: usize,
    pub inputs: usize,
    pub hidden: usize,
}

impl MlpSize {
    /// The benchmark's size: 4096 samples, 32 inputs, 300 hidden units.
    pub const BENCHMARK: MlpSize = MlpSize {
        samples: 4096,
        inputs: 32,
        hidden: 300,
    };

    /// `W1 [inputs, hidden]`, `b1 [hidden]`, `W2 [hidden]`, `b2 []`.
    pub fn num_params(&self) -> usize {
        self.inputs * self.hidden + 2 * self.hidden + 1
    }
}

/// The network's output for a flat parameter vector `theta` on inputs `x [samples, inputs]`.
pub fn mlp(size: MlpSize, theta: &Tensor, x: &Tensor) -> Tensor {
    let (i, h) = (size.inputs, size.hidden);
    let w1 = theta
        .slice_axis(0, 0, i * h)
        .reshape(&[i as isize, h as isize]);
    let b1 = theta.slice_axis(0, i * h, i * h + h);
    let w2 = theta.slice_axis(0, i * h + h, i * h + 2 * h);
    let b2 = theta.index_axis(0, i * h + 2 * h);
    (x.matmul(&w1) + b1).tanh().matmul(&w2) + b2
}

/// A seeded problem: inputs, targets made by a random "teacher" network of the same shape
/// (so a good fit exists), and a small random starting point.
pub fn problem(size: MlpSize, seed: u64) -> (Tensor, Tensor, Vec<f64>) {
    let x = Tensor::random_normal(seed, &[size.samples, size.inputs], DType::F64);
    let n = size.num_params();
    let scale = 1.0 / (size.inputs as f64).sqrt();
    let teacher = Tensor::random_normal(seed + 1, &[n], DType::F64) * scale;
    let y = mlp(size, &teacher, &x);
    let theta0 = Array::random_normal(seed + 2, &[n], DType::F64)
        .map(|a| a.to_vec::<f64>().unwrap_or_default())
        .unwrap_or_default()
        .iter()
        .map(|v| v * 0.1 * scale)
        .collect();
    (x, y, theta0)
}

/// The residual function `mlp(θ; x) − y`.
pub fn residual(size: MlpSize, x: Tensor, y: Tensor) -> impl Fn(Tensor) -> Tensor {
    move |theta: Tensor| mlp(size, &theta, &x) - &y
}
