//! The benchmark's `gnvp` residual: a 2-layer tanh MLP fitted to data, as a function of one
//! flat parameter vector (4096 residuals, 32 inputs, 300 hidden units, one output: 10,201
//! parameters at full size), for the matrix-free Gauss-Newton-CG fit.
//!
//! Sizes are the caller's, so every size product is checked: a size whose parameter count
//! overflows is an error, not a wrapped count that slices the wrong parts of `theta`.

use ferrax::{Array, DType, Tensor};

use crate::error::{input, Result};

/// The sizes of an MLP residual problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MlpSize {
    /// Data rows: one residual each.
    pub samples: usize,
    /// Inputs per sample (the columns of `x`).
    pub inputs: usize,
    /// Hidden tanh units.
    pub hidden: usize,
}

/// Where each layer's parameters sit in the flat vector: `W1 [0, w1)`, `b1 [w1, b1)`,
/// `W2 [b1, w2)`, `b2` at `w2`; `w2 + 1` parameters in all.
struct Offsets {
    w1: usize,
    b1: usize,
    w2: usize,
}

impl MlpSize {
    /// The benchmark's size: 4096 samples, 32 inputs, 300 hidden units.
    pub const BENCHMARK: MlpSize = MlpSize {
        samples: 4096,
        inputs: 32,
        hidden: 300,
    };

    fn offsets(&self) -> Option<Offsets> {
        let w1 = self.inputs.checked_mul(self.hidden)?;
        let b1 = w1.checked_add(self.hidden)?;
        let w2 = b1.checked_add(self.hidden)?;
        w2.checked_add(1)?;
        Some(Offsets { w1, b1, w2 })
    }

    /// `W1 [inputs, hidden]`, `b1 [hidden]`, `W2 [hidden]`, `b2 []`: `inputs · hidden +
    /// 2 · hidden + 1`; an error when that overflows.
    pub fn num_params(&self) -> Result<usize> {
        self.offsets().map(|o| o.w2 + 1).ok_or_else(|| {
            input(
                "MlpSize::num_params",
                format!("{self:?}: the count overflows"),
            )
        })
    }
}

/// The network's output for a flat parameter vector `theta` on inputs `x [samples, inputs]`
/// (a failed tensor when the sizes overflow or do not fit `theta` and `x`).
pub fn mlp(size: MlpSize, theta: &Tensor, x: &Tensor) -> Tensor {
    let Some(o) = size.offsets() else {
        return Tensor::from_error(ferrax::Error::Input {
            op: "mlp".into(),
            msg: format!("{size:?}: the parameter count overflows"),
            loc: None,
        });
    };
    let (Ok(i), Ok(h)) = (isize::try_from(size.inputs), isize::try_from(size.hidden)) else {
        return Tensor::from_error(ferrax::Error::Input {
            op: "mlp".into(),
            msg: format!("{size:?}: a dimension does not fit a reshape"),
            loc: None,
        });
    };
    let w1 = theta.slice_axis(0, 0, o.w1).reshape(&[i, h]);
    let b1 = theta.slice_axis(0, o.w1, o.b1);
    let w2 = theta.slice_axis(0, o.b1, o.w2);
    let b2 = theta.index_axis(0, o.w2);
    (x.matmul(&w1) + b1).tanh().matmul(&w2) + b2
}

/// A seeded problem: inputs, targets made by a random "teacher" network of the same shape
/// (so a good fit exists), and a small random starting point. An error for sizes that
/// overflow or cannot be allocated.
pub fn problem(size: MlpSize, seed: u64) -> Result<(Tensor, Tensor, Vec<f64>)> {
    let n = size.num_params()?;
    let x = Tensor::new(Array::random_normal(
        seed,
        &[size.samples, size.inputs],
        DType::F64,
    )?);
    let scale = 1.0 / (size.inputs as f64).sqrt();
    // Neighbouring seeds for the teacher and the start; wrapping, so any seed is valid.
    let teacher = Tensor::new(Array::random_normal(
        seed.wrapping_add(1),
        &[n],
        DType::F64,
    )?) * scale;
    let y = mlp(size, &teacher, &x);
    // A failed output (a size the kernels refuse) is reported here, not at the first use.
    y.aval()?;
    let theta0 = Array::random_normal(seed.wrapping_add(2), &[n], DType::F64)?
        .to_vec::<f64>()?
        .iter()
        .map(|v| v * 0.1 * scale)
        .collect();
    Ok((x, y, theta0))
}

/// The residual function `mlp(θ; x) − y`.
pub fn residual(size: MlpSize, x: Tensor, y: Tensor) -> impl Fn(Tensor) -> Tensor {
    move |theta: Tensor| mlp(size, &theta, &x) - &y
}
