//! Abstract values: what tracing knows about a value, and what every shape rule computes.
//!
//! An [`Aval`] is a shape and a dtype. It is also where sizes are made safe: every shape a
//! user gives goes through [`Aval::validate`] before anything is computed or allocated from
//! it, so arithmetic on valid shapes never overflows.

use std::fmt;

use crate::ir::dtype::DType;
use crate::ir::error::{Error, Result};

/// An abstract value: what is known of a value while tracing (its shape and dtype).
// Hash is derived and equality written out; the two agree (same fields, same meaning).
#[allow(clippy::derived_hash_with_manual_eq)]
#[derive(Clone, Debug, Eq, Hash)]
pub struct Aval {
    /// The dimensions, outermost first; empty for a scalar.
    pub shape: Vec<usize>,
    /// The element type.
    pub dtype: DType,
}

impl PartialEq for Aval {
    fn eq(&self, other: &Aval) -> bool {
        self.dtype == other.dtype && same_shape(&self.shape, &other.shape)
    }
}

/// Whether two shapes are equal, compared element by element.
///
/// Not `a == b`: slice equality calls `memcmp`, and the shape of a scalar is an empty `Vec`
/// whose pointer is dangling. glibc's AVX-512 `memcmp` issues a masked load at that address
/// even for length 0, which costs a microcode assist of about 200 ns on this project's
/// machine (measured: 209 ns per comparison of two empty shapes, 1 ns with this loop). That
/// was most of an eager scalar operation's time.
#[inline]
pub(crate) fn same_shape(a: &[usize], b: &[usize]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    for i in 0..a.len() {
        if a[i] != b[i] {
            return false;
        }
    }
    true
}

impl Aval {
    /// An aval of this shape and dtype (not validated: see [`Aval::validate`]).
    pub fn new(shape: impl Into<Vec<usize>>, dtype: DType) -> Self {
        Aval {
            shape: shape.into(),
            dtype,
        }
    }

    /// A rank-0 aval.
    pub fn scalar(dtype: DType) -> Self {
        Aval {
            shape: vec![],
            dtype,
        }
    }

    /// The rank: the number of dimensions.
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements (`usize::MAX` when the count does not fit: such an aval fails
    /// [`Aval::validate`], which every program, shape rule and array constructor runs).
    pub fn size(&self) -> usize {
        self.shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .unwrap_or(usize::MAX)
    }

    /// Bytes a value of this aval occupies (saturating like [`Aval::size`]).
    pub fn bytes(&self) -> usize {
        self.size().saturating_mul(self.dtype.size_bytes())
    }

    /// Checks that a value of this aval can exist: the product of its dimensions (a zero
    /// counted as one, so that every stride of an empty array fits too) times the element
    /// size is at most `isize::MAX` bytes, the most one allocation can hold. Every shape a
    /// user gives (program text, shape rules' parameters, array constructors, vmap sizes)
    /// passes through here, so element counts, strides and byte sizes computed from a valid
    /// aval never overflow. The error names `op`, the aval and the bytes it would need.
    pub fn validate(&self, op: &str) -> Result<()> {
        validate_shape(op, &self.shape, self.dtype)
    }
}

/// [`Aval::validate`] for a shape and dtype not (yet) in an `Aval`.
pub(crate) fn validate_shape(op: &str, shape: &[usize], dtype: DType) -> Result<()> {
    let bytes = shape
        .iter()
        .try_fold(dtype.size_bytes(), |n, &d| n.checked_mul(d.max(1)))
        .filter(|&n| n <= isize::MAX as usize);
    match bytes {
        Some(_) => Ok(()),
        None => Err(Error::exhausted(
            op,
            format!(
                "{} is too large: its {} exceed the {} bytes one allocation can hold",
                Aval::new(shape.to_vec(), dtype),
                describe_bytes(shape, dtype),
                isize::MAX
            ),
        )),
    }
}

/// "N bytes" for a shape, or "more than usize::MAX bytes" when the count overflows.
fn describe_bytes(shape: &[usize], dtype: DType) -> String {
    let exact = shape.iter().try_fold(dtype.size_bytes() as u128, |n, &d| {
        n.checked_mul(d.max(1) as u128)
    });
    match exact {
        Some(n) => format!("{n} bytes"),
        None => "more than 2^128 bytes".to_string(),
    }
}

impl fmt::Display for Aval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[", self.dtype)?;
        for (i, d) in self.shape.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aval_equality_compares_rank_extents_and_dtype() {
        let a = |s: &[usize], d| Aval::new(s.to_vec(), d);
        assert_eq!(a(&[], DType::F32), a(&[], DType::F32));
        assert_eq!(a(&[2, 3], DType::F64), a(&[2, 3], DType::F64));
        assert_ne!(a(&[], DType::F32), a(&[], DType::F64));
        assert_ne!(a(&[], DType::F32), a(&[1], DType::F32));
        assert_ne!(a(&[2, 3], DType::F64), a(&[3, 2], DType::F64));
        assert_ne!(a(&[2, 3], DType::F64), a(&[2, 3, 1], DType::F64));
        assert!(same_shape(&[], &[]));
        assert!(!same_shape(&[0], &[]));
        assert!(same_shape(&[4, 0, 5], &[4, 0, 5]));
        assert!(!same_shape(&[4, 0, 5], &[4, 1, 5]));
    }
}
