//! Building blocks for transformation rules: primitives bound at a fixed source location.
//!
//! Rules of the transformations (jvp now; transpose and batching later) are written as
//! small computations on [`Tensor`]s, run while a trace is in progress, so they record
//! equations (or compute, when the tensors are concrete). [`Emit`] binds every primitive at
//! the source location of the equation being transformed, so an error raised by a rule, or a
//! nonlinearity found later in a linear program, points at the user's line, not at ferrax.

use crate::array::Array;
use crate::dtype::{Aval, DType, Scalar};
use crate::error::SourceLoc;
use crate::primitive::Primitive;
use crate::tensor::Tensor;
use crate::trace::bind_at;

pub(crate) struct Emit {
    /// Where the equation being transformed came from (none for parsed programs).
    pub loc: Option<SourceLoc>,
}

impl Emit {
    pub fn op(&self, prim: Primitive, args: &[&Tensor]) -> Tensor {
        bind_at(prim, args, self.loc)
    }
    pub fn un(&self, prim: Primitive, x: &Tensor) -> Tensor {
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
        self.un(Primitive::Neg, a)
    }
    pub fn convert(&self, a: &Tensor, dtype: DType) -> Tensor {
        self.un(Primitive::ConvertElementType { new_dtype: dtype }, a)
    }
    /// A tensor of the aval with every element `v`: a literal for a scalar, else a
    /// `broadcast_in_dim` of one.
    pub fn full(&self, v: f64, aval: &Aval) -> Tensor {
        let s = Tensor::new(Array::from_scalar(Scalar::F64(v).cast(aval.dtype)));
        if aval.ndim() == 0 {
            return s;
        }
        self.un(
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
