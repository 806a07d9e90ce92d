//! Creating tensors: filled arrays, ranges, seeded random samples.
//!
//! Constructors that take a shape allocate fallibly: a shape too large gives a failed tensor
//! carrying a `ResourceExhausted` error (the surface's way of returning errors), reported by
//! the entry point or by any read of the value.

use crate::ir::{Array, DType, Primitive, SourceLoc};
use crate::trace::{bind, try_t, Tensor};

impl Tensor {
    /// Zeros of a shape and dtype. Like every constructor here, a shape too large to
    /// allocate gives a failed tensor carrying the error (which the entry point, or any read
    /// of the value, returns).
    #[track_caller]
    pub fn zeros(shape: &[usize], dtype: DType) -> Tensor {
        Tensor::full_at(shape, 0.0, dtype, SourceLoc::caller())
    }

    /// Ones of a shape and dtype.
    #[track_caller]
    pub fn ones(shape: &[usize], dtype: DType) -> Tensor {
        Tensor::full_at(shape, 1.0, dtype, SourceLoc::caller())
    }

    /// Every element `value` (converted to the dtype).
    #[track_caller]
    pub fn full(shape: &[usize], value: f64, dtype: DType) -> Tensor {
        Tensor::full_at(shape, value, dtype, SourceLoc::caller())
    }

    fn full_at(shape: &[usize], value: f64, dtype: DType, loc: SourceLoc) -> Tensor {
        Tensor::concrete(try_t!(Array::full(shape, value, dtype), loc))
    }

    /// `[0, 1, ..., n-1]` (the `iota` primitive).
    #[track_caller]
    pub fn arange(n: usize, dtype: DType) -> Tensor {
        Tensor::iota(&[n], 0, dtype)
    }

    /// The tensor whose element at index `i` is `i[dimension]` (the `iota` primitive).
    #[track_caller]
    pub fn iota(shape: &[usize], dimension: usize, dtype: DType) -> Tensor {
        bind(
            Primitive::Iota {
                dtype,
                shape: shape.to_vec(),
                dimension,
            },
            &[],
            SourceLoc::caller(),
        )
    }

    /// Seeded standard normal samples (see [`Array::random_normal`]).
    #[track_caller]
    pub fn random_normal(seed: u64, shape: &[usize], dtype: DType) -> Tensor {
        let loc = SourceLoc::caller();
        Tensor::concrete(try_t!(Array::random_normal(seed, shape, dtype), loc))
    }

    /// Seeded uniform samples in `[low, high)` (see [`Array::random_uniform`]).
    #[track_caller]
    pub fn random_uniform(seed: u64, shape: &[usize], low: f64, high: f64, dtype: DType) -> Tensor {
        let loc = SourceLoc::caller();
        Tensor::concrete(try_t!(
            Array::random_uniform(seed, shape, low, high, dtype),
            loc
        ))
    }
}
