//! Building blocks for transformation rules: primitives bound at a fixed source location.
//!
//! Rules of the transformations (jvp, transpose, batching) are written as
//! small computations on [`Tensor`]s, run while a trace is in progress, so they record
//! equations (or compute, when the tensors are concrete). [`Emit`] binds every primitive at
//! the source location of the equation being transformed, so an error raised by a rule, or a
//! nonlinearity found later in a linear program, points at the user's line, not at ferrax.

use crate::ir::{Array, Aval, DType, Primitive, Result, Scalar, SourceLoc};
use crate::trace::stack::{bind_at, bind_multi};
use crate::trace::tensor::Tensor;

pub(crate) struct Emit {
    /// Where the equation being transformed came from (none for parsed programs).
    pub loc: Option<SourceLoc>,
}

impl Emit {
    pub fn op(&self, prim: Primitive, args: &[&Tensor]) -> Tensor {
        bind_at(prim, args, self.loc)
    }
    /// [`Emit::op`] for an interpreter that stops at the first error.
    pub fn checked(&self, prim: Primitive, args: &[&Tensor]) -> Result<Tensor> {
        checked(self.op(prim, args))
    }
    /// A primitive with several outputs (control flow), stopping at the first error.
    pub fn multi(&self, prim: Primitive, args: &[&Tensor]) -> Result<Vec<Tensor>> {
        bind_multi(prim, args, self.loc)
    }
    pub fn op1(&self, prim: Primitive, x: &Tensor) -> Tensor {
        self.op(prim, &[x])
    }
    pub fn add(&self, a: &Tensor, b: &Tensor) -> Tensor {
        self.op(Primitive::Add, &[a, b])
    }
    pub fn sub(&self, a: &Tensor, b: &Tensor) -> Tensor {
        self.op(Primitive::Sub, &[a, b])
    }
    pub fn mul(&self, a: &Tensor, b: &Tensor) -> Tensor {
        self.op(Primitive::Mul, &[a, b])
    }
    pub fn div(&self, a: &Tensor, b: &Tensor) -> Tensor {
        self.op(Primitive::Div, &[a, b])
    }
    pub fn neg(&self, a: &Tensor) -> Tensor {
        self.op1(Primitive::Neg, a)
    }
    pub fn convert(&self, a: &Tensor, dtype: DType) -> Tensor {
        self.op1(Primitive::ConvertElementType { new_dtype: dtype }, a)
    }
    /// A tensor of the aval with every element `v`: a literal for a scalar, else a
    /// `broadcast_in_dim` of one.
    pub fn full(&self, v: f64, aval: &Aval) -> Tensor {
        let s = Tensor::new(Array::from_scalar(Scalar::F64(v).cast(aval.dtype)));
        if aval.ndim() == 0 {
            return s;
        }
        self.op1(
            Primitive::BroadcastInDim {
                shape: aval.shape.clone(),
                broadcast_dimensions: vec![],
            },
            &s,
        )
    }
    pub fn zeros(&self, aval: &Aval) -> Tensor {
        self.full(0.0, aval)
    }
    /// `a` scaled by the Rust number `v` (in `a`'s dtype).
    pub fn scale(&self, v: f64, a: &Tensor) -> Tensor {
        let aval = a.aval().expect("rules only see tensors that did not fail");
        self.mul(&self.full(v, &aval), a)
    }
}

/// A tensor, or the error it carries when it failed.
pub(crate) fn checked(t: Tensor) -> Result<Tensor> {
    match t.error() {
        Some(e) => Err(e.clone()),
        None => Ok(t),
    }
}

/// Tangents with the zeros built (at the API boundary).
pub(crate) fn materialize(touts: Vec<Option<Tensor>>, avals: &[Aval]) -> Vec<Tensor> {
    let e = Emit { loc: None };
    touts
        .into_iter()
        .zip(avals)
        .map(|(t, a)| t.unwrap_or_else(|| e.zeros(a)))
        .collect()
}

/// `n` basis arrays stacked: shape `[n, ...]`, the i-th with a one at flat position i. Its
/// `n²` elements are allocated fallibly: a basis that does not fit is an error naming it.
pub(crate) fn identity(n: usize, shape: &[usize], dtype: DType) -> Result<Array> {
    let op = "identity basis of a Jacobian";
    let aval = Aval::new(shape.to_vec(), dtype);
    aval.validate(op)?;
    let zero = Scalar::F64(0.0).cast(dtype);
    let one = Scalar::F64(1.0).cast(dtype);
    let mut basis = Array::filled_for(op, shape, zero)?.into_data();
    for i in 0..n {
        basis.set(i * n + i, one);
    }
    Array::from_data(basis, shape)
}
