//! The shape rules of the linear-algebra primitives.
//!
//! Each acts on the last two dimensions and maps over the leading ones (which must agree
//! between operands: broadcasting is the surface's business). Float operands only.

use crate::ir::aval::Aval;
use crate::ir::error::{Error, Result};
use crate::ir::primitive::Primitive;

fn matrices(op: &str, a: &Aval, what: &str) -> Result<(usize, usize)> {
    if !a.dtype.is_float() {
        return Err(Error::dtype(
            op,
            format!("{what} must be f32 or f64, got {a}"),
        ));
    }
    let r = a.ndim();
    if r < 2 {
        return Err(Error::shape(
            op,
            format!("{what} must be a matrix (or a batch of them), got {a}"),
        ));
    }
    Ok((a.shape[r - 2], a.shape[r - 1]))
}

fn square(op: &str, a: &Aval, what: &str) -> Result<usize> {
    let (m, n) = matrices(op, a, what)?;
    if m != n {
        return Err(Error::shape(op, format!("{what} must be square, got {a}")));
    }
    Ok(n)
}

/// The output aval of a linear-algebra primitive.
pub(crate) fn linalg_aval(prim: &Primitive, args: &[&Aval]) -> Result<Aval> {
    let op = prim.name();
    let a = args[0];
    let lead = |x: &Aval| x.shape[..x.ndim().saturating_sub(2)].to_vec();
    let with = |tail: &[usize]| {
        let mut s = lead(a);
        s.extend_from_slice(tail);
        Aval::new(s, a.dtype)
    };
    match prim {
        Primitive::Cholesky | Primitive::EighVectors => {
            square(op, a, "the operand")?;
            Ok(a.clone())
        }
        Primitive::EighValues => {
            let n = square(op, a, "the operand")?;
            Ok(with(&[n]))
        }
        Primitive::LogAbsDet | Primitive::DetSign => {
            square(op, a, "the operand")?;
            Ok(with(&[]))
        }
        Primitive::QrQ
        | Primitive::QrR
        | Primitive::SvdU
        | Primitive::SvdValues
        | Primitive::SvdVt => {
            let (m, n) = matrices(op, a, "the operand")?;
            let k = m.min(n);
            Ok(match prim {
                Primitive::QrQ | Primitive::SvdU => with(&[m, k]),
                Primitive::SvdValues => with(&[k]),
                _ => with(&[k, n]),
            })
        }
        Primitive::TriangularSolve { .. } | Primitive::Solve { .. } => {
            let left = !matches!(
                prim,
                Primitive::TriangularSolve {
                    left_side: false,
                    ..
                }
            );
            let b = args[1];
            let n = square(op, a, "a")?;
            let (p, q) = matrices(op, b, "b")?;
            if b.dtype != a.dtype || lead(a) != lead(b) {
                return Err(Error::shape(
                    op,
                    format!("a {a} and b {b} must have one dtype and the same leading dimensions"),
                ));
            }
            let fits = if left { p == n } else { q == n };
            if !fits {
                let side = if left { "rows" } else { "columns" };
                return Err(Error::shape(
                    op,
                    format!("b {b} must have {n} {side} for a {a}"),
                ));
            }
            Ok(b.clone())
        }
        other => Err(Error::internal(format!(
            "`{}` is not a linear-algebra primitive",
            other.name()
        ))),
    }
}
