//! Seeded random arrays: the same seed gives the same array on every machine (ChaCha8).
//!
//! Part of the IR's host arrays (`array`), kept apart because only constructors of test and
//! example data need a random generator.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal, Uniform};

use crate::ir::array::{try_vec, Array, Data};
use crate::ir::aval::Aval;
use crate::ir::dtype::DType;
use crate::ir::error::{Error, Result};

impl Array {
    /// Standard normal samples from a seeded generator (ChaCha8): the same seed gives the
    /// same array on every machine. Float dtypes only.
    pub fn random_normal(seed: u64, shape: &[usize], dtype: DType) -> Result<Array> {
        let op = "Array::random_normal";
        let aval = Aval::new(shape.to_vec(), dtype);
        aval.validate(op)?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n = aval.size();
        let data = match dtype {
            DType::F32 => Data::F32(sample(op, &aval, n, || StandardNormal.sample(&mut rng))?),
            DType::F64 => Data::F64(sample(op, &aval, n, || StandardNormal.sample(&mut rng))?),
            d => return Err(Error::dtype(op, format!("needs a float dtype, got {d}"))),
        };
        Array::from_data(data, shape)
    }

    /// Uniform samples in `[low, high)` from a seeded generator (ChaCha8). Float dtypes only.
    pub fn random_uniform(
        seed: u64,
        shape: &[usize],
        low: f64,
        high: f64,
        dtype: DType,
    ) -> Result<Array> {
        let op = "Array::random_uniform";
        if low >= high || !low.is_finite() || !high.is_finite() {
            return Err(Error::input(
                op,
                format!("needs finite low < high, got [{low}, {high})"),
            ));
        }
        let aval = Aval::new(shape.to_vec(), dtype);
        aval.validate(op)?;
        // the sampler needs a finite width in the target type (f32 bounds may overflow)
        let finite_width = match dtype {
            DType::F32 => {
                let (l, h) = (low as f32, high as f32);
                l < h && (h - l).is_finite()
            }
            _ => (high - low).is_finite(),
        };
        if !finite_width {
            return Err(Error::input(
                op,
                format!("the width of [{low}, {high}) is not a finite {dtype} number"),
            ));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n = aval.size();
        let data = match dtype {
            DType::F32 => {
                let u = Uniform::new(low as f32, high as f32);
                Data::F32(sample(op, &aval, n, || u.sample(&mut rng))?)
            }
            DType::F64 => {
                let u = Uniform::new(low, high);
                Data::F64(sample(op, &aval, n, || u.sample(&mut rng))?)
            }
            d => {
                return Err(Error::dtype(op, format!("needs a float dtype, got {d}")));
            }
        };
        Array::from_data(data, shape)
    }
}

/// `n` samples drawn in order into a fallibly allocated buffer.
fn sample<T>(op: &str, aval: &Aval, n: usize, mut draw: impl FnMut() -> T) -> Result<Vec<T>> {
    let mut v = try_vec(op, aval, n)?;
    v.extend((0..n).map(|_| draw()));
    Ok(v)
}
