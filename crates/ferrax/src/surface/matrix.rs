//! Matrix structure: `diagonal`, `trace`, `tri`, `tril`, `triu`, and vector norms.
//!
//! Compositions of the indexing and elementwise primitives, as jax.numpy writes them: a
//! diagonal is a `gather` from the flattened last two axes (so its gradient scatters back
//! onto the diagonal), the triangles are `select`s on an iota comparison.

use crate::ir::{DType, Error, Primitive, SourceLoc};
use crate::surface::{axes_of, axis_of};
use crate::trace::{bind, fail, try_t, Tensor};

impl Tensor {
    /// The diagonal of the matrices in `axis1`, `axis2` (`jnp.diagonal`): those two axes
    /// removed and the diagonal appended as the last axis. `offset > 0` is above the main
    /// diagonal, `< 0` below.
    #[track_caller]
    pub fn diagonal(&self, offset: isize, axis1: isize, axis2: isize) -> Tensor {
        let loc = SourceLoc::caller();
        if let Some(e) = self.error() {
            return Tensor::failed(e.clone());
        }
        let r = self.ndim();
        let (a1, a2) = (
            try_t!(axis_of("diagonal", axis1, r), loc),
            try_t!(axis_of("diagonal", axis2, r), loc),
        );
        if a1 == a2 {
            return fail(Error::Axis {
                op: "diagonal".into(),
                msg: format!("axis1 and axis2 are both {a1}: a diagonal needs two axes"),
                loc: Some(loc),
            });
        }
        let mut perm: Vec<usize> = (0..r).filter(|&d| d != a1 && d != a2).collect();
        perm.extend([a1, a2]);
        let (n, m) = (self.shape()[a1] as isize, self.shape()[a2] as isize);
        // the diagonal's (row, column) pairs, as flat indices into the n×m matrix; an offset
        // beyond the matrix (any isize, MIN included) gives an empty diagonal
        let (row0, col0) = match offset >= 0 {
            true => (0, offset.min(m)),
            false => (offset.unsigned_abs().min(n as usize) as isize, 0),
        };
        let len = (n - row0).min(m - col0).max(0);
        let flat: Vec<i64> = (0..len)
            .map(|i| ((row0 + i) * m + col0 + i) as i64)
            .collect();
        let moved = bind(Primitive::Transpose { permutation: perm }, &[self], loc);
        let mut shape: Vec<isize> = moved.shape()[..r - 2].iter().map(|&d| d as isize).collect();
        shape.push(n * m);
        let idx = Tensor::from_vec(flat, &[len as usize]);
        moved.reshape(&shape).take(&idx, -1)
    }

    /// The sum of the diagonal (`jnp.trace`), over `axis1`, `axis2`.
    #[track_caller]
    pub fn trace(&self, offset: isize, axis1: isize, axis2: isize) -> Tensor {
        let d = self.diagonal(offset, axis1, axis2);
        d.sum(&[-1])
    }

    /// The `n × m` matrix with ones on and below diagonal `k` (`jnp.tri`).
    #[track_caller]
    pub fn tri(n: usize, m: usize, k: isize, dtype: DType) -> Tensor {
        lower_mask(n, m, k).astype(dtype)
    }

    /// The lower triangle of the last two axes, on and below diagonal `k`; zeros above
    /// (`jnp.tril`).
    #[track_caller]
    pub fn tril(&self, k: isize) -> Tensor {
        self.triangle(k, true, SourceLoc::caller())
    }

    /// The upper triangle of the last two axes, on and above diagonal `k`; zeros below
    /// (`jnp.triu`).
    #[track_caller]
    pub fn triu(&self, k: isize) -> Tensor {
        self.triangle(k, false, SourceLoc::caller())
    }

    fn triangle(&self, k: isize, lower: bool, loc: SourceLoc) -> Tensor {
        if let Some(e) = self.error() {
            return Tensor::failed(e.clone());
        }
        let r = self.ndim();
        if r < 2 {
            return fail(Error::Shape {
                op: if lower { "tril" } else { "triu" }.into(),
                msg: format!("needs at least two dimensions, got {:?}", self.shape()),
                loc: Some(loc),
            });
        }
        let (n, m) = (self.shape()[r - 2], self.shape()[r - 1]);
        // above diagonal k - 1 is the complement of on-or-below it
        let keep = match lower {
            true => lower_mask(n, m, k),
            false => lower_mask(n, m, k.saturating_sub(1)).logical_not(),
        };
        let zero = Tensor::zeros(&[], try_t!(self.aval(), loc).dtype);
        Tensor::where_(&keep.broadcast_to_at(self.shape(), loc), self, &zero)
    }

    /// The Euclidean norm over `axes` (the Frobenius norm over two): `jnp.linalg.norm` with
    /// the default `ord`. Its gradient at zero is NaN, as JAX's is.
    #[track_caller]
    pub fn norm(&self, axes: &[isize]) -> Tensor {
        (self * self).sum(axes).sqrt()
    }

    /// The vector `ord`-norm over `axes` (`jnp.linalg.vector_norm`): `inf` the largest
    /// magnitude, `-inf` the smallest, `0` the count of nonzeros, otherwise
    /// `(Σ |x|^ord)^(1/ord)`. (Matrix norms beyond Frobenius need singular values.)
    #[track_caller]
    pub fn vector_norm(&self, ord: f64, axes: &[isize]) -> Tensor {
        let loc = SourceLoc::caller();
        if let Some(e) = self.error() {
            return Tensor::failed(e.clone());
        }
        try_t!(axes_of("vector_norm", axes, self.ndim()), loc);
        let a = self.abs();
        if ord == f64::INFINITY {
            a.max(axes)
        } else if ord == f64::NEG_INFINITY {
            a.min(axes)
        } else if ord == 0.0 {
            let d = try_t!(self.aval(), loc).dtype;
            a.not_equal(0.0).astype(d).sum(axes)
        } else if ord == 1.0 {
            a.sum(axes)
        } else if ord == 2.0 {
            self.norm(axes)
        } else {
            a.pow(ord).sum(axes).pow(1.0 / ord)
        }
    }
}

/// `col <= row + k` on an `n × m` grid.
fn lower_mask(n: usize, m: usize, k: isize) -> Tensor {
    // a `k` beyond the grid on either side changes nothing: clamped there, no overflow
    let k = (k as i64).clamp(-(n as i64) - 1, m as i64 + 1);
    let rows = Tensor::iota(&[n, m], 0, DType::I64);
    let cols = Tensor::iota(&[n, m], 1, DType::I64);
    cols.less_equal(rows + k)
}
