//! `Tensor`: the value user closures see.
//!
//! A tensor is concrete (an [`Array`]; operations compute at once), traced (a variable of a
//! trace in progress; operations are recorded, see `stack`), or failed (it carries the first
//! error of the computation that made it; operations pass it on and the entry point returns
//! it). This file is the type, how values get in and how they get out; the numpy-like
//! operations on it are the `surface` folder.

use std::sync::Arc;

use crate::ir::{Array, Aval, DType, Element, Error, Result, Scalar, SourceLoc, Var};
use crate::trace::stack::fail;

/// A value in a (possibly traced) computation. Cheap to clone.
#[derive(Clone)]
pub struct Tensor {
    pub(crate) repr: Repr,
}

#[derive(Clone)]
pub(crate) enum Repr {
    Concrete(Array),
    Traced(TracedVal),
    Failed(Arc<Error>),
}

/// A variable of a trace in progress.
#[derive(Clone, Debug)]
pub(crate) struct TracedVal {
    pub trace: u64,
    pub var: Var,
    pub aval: Aval,
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.repr {
            Repr::Concrete(a) => write!(f, "Tensor({a:?})"),
            Repr::Traced(t) => write!(f, "Tensor(traced {} in trace {})", t.aval, t.trace),
            Repr::Failed(e) => write!(f, "Tensor(failed: {e})"),
        }
    }
}

/// The values nested by the shape, as numpy prints them (`[[1, 2], [3, 4]]`; a scalar is
/// its value), each in shortest round-trip form; a traced tensor shows its aval, a failed
/// one its error.
impl std::fmt::Display for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.repr {
            Repr::Concrete(a) => {
                let values: Vec<crate::ir::Scalar> =
                    (0..a.size()).map(|i| a.data().get(i)).collect();
                nested(f, a.shape(), &values)
            }
            Repr::Traced(t) => write!(f, "traced {}", t.aval),
            Repr::Failed(e) => write!(f, "failed: {e}"),
        }
    }
}

/// `values` (row-major, of `shape`) as nested brackets.
fn nested(
    f: &mut std::fmt::Formatter<'_>,
    shape: &[usize],
    values: &[crate::ir::Scalar],
) -> std::fmt::Result {
    let Some((&n, rest)) = shape.split_first() else {
        return match values.first() {
            Some(v) => crate::ir::write_value(f, *v),
            None => Ok(()),
        };
    };
    let row: usize = rest.iter().product();
    f.write_str("[")?;
    for i in 0..n {
        if i > 0 {
            f.write_str(", ")?;
        }
        nested(f, rest, &values[i * row..(i + 1) * row])?;
    }
    f.write_str("]")
}

impl From<Array> for Tensor {
    fn from(a: Array) -> Tensor {
        Tensor::concrete(a)
    }
}

impl Tensor {
    pub(crate) fn concrete(a: Array) -> Tensor {
        Tensor {
            repr: Repr::Concrete(a),
        }
    }
    pub(crate) fn traced(trace: u64, var: Var, aval: Aval) -> Tensor {
        Tensor {
            repr: Repr::Traced(TracedVal { trace, var, aval }),
        }
    }
    /// A program literal as a (concrete, rank-0) tensor.
    pub(crate) fn literal(s: Scalar) -> Tensor {
        Tensor::concrete(Array::from_scalar(s))
    }

    /// The array of a concrete tensor (borrowed: the buffer's holders are not changed).
    pub(crate) fn concrete_array(&self) -> Option<&Array> {
        match &self.repr {
            Repr::Concrete(a) => Some(a),
            _ => None,
        }
    }

    pub(crate) fn failed(e: Error) -> Tensor {
        Tensor {
            repr: Repr::Failed(Arc::new(e)),
        }
    }

    // ---- construction ----

    /// A failed tensor carrying `e`. Inside a closure being transformed, this is how a
    /// fallible call (a nested `jvp`, `grad`, ...) hands its error outward: the enclosing
    /// trace records it and the entry point that started the trace returns it.
    ///
    /// ```
    /// use ferrax::{grad, make_jaxpr, Tensor};
    /// let r = make_jaxpr(
    ///     |x: Tensor| grad(|z: Tensor| z.sin(), &x).unwrap_or_else(Tensor::from_error),
    ///     &Tensor::zeros(&[2], ferrax::DType::F64),
    /// );
    /// assert!(r.unwrap_err().to_string().contains("must return a float scalar"));
    /// ```
    pub fn from_error(e: Error) -> Tensor {
        fail(e)
    }

    /// A concrete tensor holding an array.
    pub fn new(a: Array) -> Tensor {
        Tensor::concrete(a)
    }

    /// A tensor from a `Vec` and a shape (failed if they do not match).
    #[track_caller]
    pub fn from_vec<T: Element>(v: Vec<T>, shape: &[usize]) -> Tensor {
        let loc = SourceLoc::caller();
        Tensor::concrete(try_t!(Array::from_vec(v, shape), loc))
    }

    /// A rank-0 tensor.
    pub fn scalar<T: Element>(v: T) -> Tensor {
        Tensor::concrete(Array::scalar(v))
    }

    // ---- inspection ----

    /// Shape and dtype; the error if the tensor failed.
    pub fn aval(&self) -> Result<Aval> {
        match &self.repr {
            Repr::Concrete(a) => Ok(a.aval()),
            Repr::Traced(t) => Ok(t.aval.clone()),
            Repr::Failed(e) => Err((**e).clone()),
        }
    }

    /// The shape (empty for a failed tensor, whose error the entry point reports).
    pub fn shape(&self) -> &[usize] {
        match &self.repr {
            Repr::Concrete(a) => a.shape(),
            Repr::Traced(t) => &t.aval.shape,
            Repr::Failed(_) => &[],
        }
    }

    /// The rank: the number of dimensions (0 for a failed tensor).
    pub fn ndim(&self) -> usize {
        self.shape().len()
    }

    /// The dtype (`None` for a failed tensor).
    pub fn dtype(&self) -> Option<DType> {
        self.aval().ok().map(|a| a.dtype)
    }

    /// Whether this tensor is a variable of a trace in progress.
    pub fn is_traced(&self) -> bool {
        matches!(self.repr, Repr::Traced(_))
    }

    /// The error this tensor carries, if it failed.
    pub fn error(&self) -> Option<&Error> {
        match &self.repr {
            Repr::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// The concrete value. An error for a traced tensor (its value is not known while
    /// tracing) and for a failed one (its error). Asking for a traced value also fails the
    /// trace in progress: a closure that ignores the error still gets it reported by the
    /// transformation (its result would otherwise depend on a value it never had).
    #[track_caller]
    pub fn array(&self) -> Result<Array> {
        match &self.repr {
            Repr::Concrete(a) => Ok(a.clone()),
            Repr::Traced(t) => {
                let e = Error::TracedValue {
                    op: "Tensor::array".into(),
                    aval: t.aval.to_string(),
                    loc: Some(SourceLoc::caller()),
                };
                crate::trace::record(&e);
                Err(e)
            }
            Repr::Failed(e) => Err((**e).clone()),
        }
    }

    /// The elements as a `Vec` (see [`Tensor::array`]).
    #[track_caller]
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        self.array()?.to_vec()
    }

    /// The single element, as f64 (see [`Tensor::array`]).
    #[track_caller]
    pub fn item(&self) -> Result<f64> {
        Ok(self.array()?.item()?.to_f64())
    }
}

/// A tensor from a result: the value, or a failed tensor carrying the error (recorded by
/// the trace in progress) with the caller's location.
macro_rules! try_t {
    ($e:expr, $loc:expr) => {
        match $e {
            Ok(v) => v,
            Err(err) => return $crate::trace::fail(err.with_loc($loc)),
        }
    };
}
pub(crate) use try_t;
