//! Linear algebra: numpy's `matmul` rules and the `dot_general` primitive.

use crate::ir::{Error, Primitive, SourceLoc};
use crate::surface::broadcast_shapes;
use crate::trace::{bind, fail, try_t, Tensor};

impl Tensor {
    // ---- contraction ----

    /// Matrix product with numpy's rules: 1-d·1-d is a dot product, 2-d·2-d a matrix
    /// product, a 1-d operand is a vector on that side, and leading dimensions of operands
    /// of rank 3 or more are batch dimensions (broadcast against each other).
    #[track_caller]
    pub fn matmul(&self, other: &Tensor) -> Tensor {
        let loc = SourceLoc::caller();
        let op = "matmul";
        if let Some(e) = self.error().or(other.error()) {
            return Tensor::failed(e.clone());
        }
        let (ra, rb) = (self.ndim(), other.ndim());
        let dg = |lc: usize, rc: usize, a: &Tensor, b: &Tensor, nb: usize| {
            bind(
                Primitive::DotGeneral {
                    lhs_contracting: vec![lc],
                    rhs_contracting: vec![rc],
                    lhs_batch: (0..nb).collect(),
                    rhs_batch: (0..nb).collect(),
                },
                &[a, b],
                loc,
            )
        };
        match (ra, rb) {
            (0, _) | (_, 0) => fail(Error::Shape {
                op: op.into(),
                msg: "operands must have at least one dimension (use `*` for scalars)".into(),
                loc: Some(loc),
            }),
            (1, 1) | (2, 1) | (2, 2) => dg(ra - 1, 0, self, other, 0),
            (1, 2) => dg(0, 0, self, other, 0),
            (1, _) | (_, 1) => fail(Error::Shape {
                op: op.into(),
                msg: format!(
                    "a 1-d operand needs a 1-d or 2-d partner, got {:?} and {:?}",
                    self.shape(),
                    other.shape()
                ),
                loc: Some(loc),
            }),
            _ => {
                let (ba, bb) = (&self.shape()[..ra - 2], &other.shape()[..rb - 2]);
                let batch = try_t!(broadcast_shapes(op, ba, bb), loc);
                let nb = batch.len();
                let mut sa = batch.clone();
                sa.extend_from_slice(&self.shape()[ra - 2..]);
                let mut sb = batch;
                sb.extend_from_slice(&other.shape()[rb - 2..]);
                let a = self.broadcast_to_at(&sa, loc);
                let b = other.broadcast_to_at(&sb, loc);
                dg(nb + 1, nb, &a, &b, nb)
            }
        }
    }

    /// Same as [`Tensor::matmul`].
    #[track_caller]
    pub fn dot(&self, other: &Tensor) -> Tensor {
        self.matmul(other)
    }

    /// The `dot_general` primitive with explicit contracting and batch dimensions.
    #[track_caller]
    pub fn dot_general(
        &self,
        other: &Tensor,
        contracting: (&[usize], &[usize]),
        batch: (&[usize], &[usize]),
    ) -> Tensor {
        bind(
            Primitive::DotGeneral {
                lhs_contracting: contracting.0.to_vec(),
                rhs_contracting: contracting.1.to_vec(),
                lhs_batch: batch.0.to_vec(),
                rhs_batch: batch.1.to_vec(),
            },
            &[self, other],
            SourceLoc::caller(),
        )
    }
}
