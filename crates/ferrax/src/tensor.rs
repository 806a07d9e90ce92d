//! `Tensor`: the value user closures see, and the numpy-like surface built from primitives.
//!
//! A tensor is concrete (an [`Array`]; operations compute at once), traced (a variable of a
//! trace in progress; operations are recorded, see `trace`), or failed (it carries the first
//! error of the computation that made it; operations pass it on and the entry point returns
//! it). Every operation here is composed from primitives through `trace::bind`, with
//! `#[track_caller]` so that errors and recorded equations point at the user's line.
//!
//! The surface adds what the strict primitives leave out: numpy broadcasting (through
//! `broadcast_in_dim`), Rust numbers that adopt the tensor's dtype (JAX's weak types),
//! negative axes, and the conveniences `sum`/`mean`/`max`, `matmul`, `where_`, slicing.

use std::ops;
use std::sync::Arc;

use crate::array::{Array, Element};
use crate::dtype::{Aval, DType, Scalar, WeakScalar};
use crate::error::{Error, Result, SourceLoc};
use crate::primitive::Primitive;
use crate::program::Var;
use crate::trace::{bind, fail};

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

impl From<Array> for Tensor {
    fn from(a: Array) -> Tensor {
        Tensor::concrete(a)
    }
}

/// An operand of a binary operation: a tensor, or a Rust number that takes the other
/// operand's dtype.
#[derive(Clone, Debug)]
pub enum Operand {
    Tensor(Tensor),
    Weak(WeakScalar),
}

impl From<Tensor> for Operand {
    fn from(t: Tensor) -> Operand {
        Operand::Tensor(t)
    }
}
impl From<&Tensor> for Operand {
    fn from(t: &Tensor) -> Operand {
        Operand::Tensor(t.clone())
    }
}
impl From<f64> for Operand {
    fn from(x: f64) -> Operand {
        Operand::Weak(WeakScalar::Float(x))
    }
}
impl From<f32> for Operand {
    fn from(x: f32) -> Operand {
        Operand::Weak(WeakScalar::Float(x as f64))
    }
}
impl From<i32> for Operand {
    fn from(x: i32) -> Operand {
        Operand::Weak(WeakScalar::Int(x as i64))
    }
}
impl From<i64> for Operand {
    fn from(x: i64) -> Operand {
        Operand::Weak(WeakScalar::Int(x))
    }
}

/// Normalises a possibly negative axis for a given rank.
fn axis_of(op: &str, axis: isize, rank: usize) -> Result<usize> {
    let r = rank as isize;
    if axis < -r || axis >= r {
        return Err(Error::axis(
            op,
            format!("axis {axis} is out of range for rank {rank}"),
        ));
    }
    Ok(if axis < 0 {
        (axis + r) as usize
    } else {
        axis as usize
    })
}

/// Normalises, sorts and checks a list of axes (no repeats).
fn axes_of(op: &str, axes: &[isize], rank: usize) -> Result<Vec<usize>> {
    let mut v = axes
        .iter()
        .map(|&a| axis_of(op, a, rank))
        .collect::<Result<Vec<_>>>()?;
    v.sort_unstable();
    if v.windows(2).any(|w| w[0] == w[1]) {
        return Err(Error::axis(op, format!("axes {axes:?} repeat an axis")));
    }
    Ok(v)
}

/// The numpy broadcast of two shapes.
fn broadcast_shapes(op: &str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(Error::shape(
                op,
                format!("shapes {a:?} and {b:?} cannot be broadcast together"),
            ));
        };
    }
    Ok(out)
}

macro_rules! try_t {
    ($e:expr, $loc:expr) => {
        match $e {
            Ok(v) => v,
            Err(err) => return fail(err.with_loc($loc)),
        }
    };
}

macro_rules! unary_methods {
    ($($(#[$doc:meta])* $name:ident => $prim:ident),* $(,)?) => {
        $(
            $(#[$doc])*
            #[track_caller]
            pub fn $name(&self) -> Tensor {
                bind(Primitive::$prim, &[self], SourceLoc::caller())
            }
        )*
    };
}

macro_rules! binary_methods {
    ($($(#[$doc:meta])* $name:ident => $prim:ident),* $(,)?) => {
        $(
            $(#[$doc])*
            #[track_caller]
            pub fn $name(&self, other: impl Into<Operand>) -> Tensor {
                binary(Primitive::$prim, self.clone().into(), other.into(), SourceLoc::caller())
            }
        )*
    };
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

    // ---- elementwise ----

    unary_methods! {
        /// `-x`.
        neg => Neg, sin => Sin, cos => Cos, tan => Tan, exp => Exp,
        /// Natural logarithm.
        log => Log, log1p => Log1p, expm1 => Expm1, tanh => Tanh,
        /// `1 / (1 + exp(-x))`.
        logistic => Logistic, sqrt => Sqrt,
        /// `1 / sqrt(x)`.
        rsqrt => Rsqrt, abs => Abs, sign => Sign, floor => Floor, ceil => Ceil,
        /// Rounds half away from zero.
        round => Round, erf => Erf,
    }

    binary_methods! {
        /// `x^y` elementwise (floats).
        pow => Pow,
        /// Elementwise maximum (NaN-propagating).
        maximum => Max,
        /// Elementwise minimum (NaN-propagating).
        minimum => Min,
        /// `atan2(self, other)`: the angle of the point `(other, self)`.
        atan2 => Atan2,
        /// `self == other` elementwise (bool).
        equal => Eq,
        /// `self != other` elementwise (bool).
        not_equal => Ne,
        /// `self < other` elementwise (bool).
        less => Lt,
        /// `self <= other` elementwise (bool).
        less_equal => Le,
        /// `self > other` elementwise (bool).
        greater => Gt,
        /// `self >= other` elementwise (bool).
        greater_equal => Ge,
    }

    /// `x^n` for a static integer `n` (the `integer_pow` primitive).
    #[track_caller]
    pub fn powi(&self, n: i32) -> Tensor {
        bind(Primitive::IntegerPow { y: n }, &[self], SourceLoc::caller())
    }

    /// Converts to another dtype (the `convert_element_type` primitive).
    #[track_caller]
    pub fn astype(&self, dtype: DType) -> Tensor {
        bind(
            Primitive::ConvertElementType { new_dtype: dtype },
            &[self],
            SourceLoc::caller(),
        )
    }

    /// `on_true` where `cond` holds, else `on_false`, with broadcasting; Rust numbers take
    /// the other branch's dtype.
    #[track_caller]
    pub fn where_(
        cond: &Tensor,
        on_true: impl Into<Operand>,
        on_false: impl Into<Operand>,
    ) -> Tensor {
        let loc = SourceLoc::caller();
        let op = "where";
        let (t, f) = try_t!(weak_pair(op, on_true.into(), on_false.into()), loc);
        if let Some(e) = [cond, &t, &f].iter().find_map(|x| x.error()) {
            return Tensor::failed(e.clone());
        }
        let shape = try_t!(
            broadcast_shapes(op, cond.shape(), t.shape()).and_then(|s| broadcast_shapes(
                op,
                &s,
                f.shape()
            )),
            loc
        );
        let (c, t, f) = (
            cond.broadcast_to_at(&shape, loc),
            t.broadcast_to_at(&shape, loc),
            f.broadcast_to_at(&shape, loc),
        );
        bind(Primitive::Select, &[&c, &t, &f], loc)
    }

    // ---- reductions ----

    /// Sum over the given axes (negative axes count from the end).
    #[track_caller]
    pub fn sum(&self, axes: &[isize]) -> Tensor {
        self.reduce(axes, |axes| Primitive::ReduceSum { axes }, "sum")
    }

    /// Sum of all elements.
    #[track_caller]
    pub fn sum_all(&self) -> Tensor {
        let all: Vec<isize> = (0..self.ndim() as isize).collect();
        self.sum(&all)
    }

    /// Mean over the given axes (float tensors).
    #[track_caller]
    pub fn mean(&self, axes: &[isize]) -> Tensor {
        let loc = SourceLoc::caller();
        if let Some(d) = self.dtype().filter(|d| !d.is_float()) {
            return fail(Error::DType {
                op: "mean".into(),
                msg: format!("needs a float tensor, got {d}"),
                loc: Some(loc),
            });
        }
        let ax = try_t!(axes_of("mean", axes, self.ndim()), loc);
        let n: usize = ax.iter().map(|&a| self.shape()[a]).product();
        let s = self.reduce(axes, |axes| Primitive::ReduceSum { axes }, "mean");
        binary(Primitive::Div, s.into(), (n as f64).into(), loc)
    }

    /// Maximum over the given axes.
    #[track_caller]
    pub fn max(&self, axes: &[isize]) -> Tensor {
        self.reduce(axes, |axes| Primitive::ReduceMax { axes }, "max")
    }

    /// Minimum over the given axes.
    #[track_caller]
    pub fn min(&self, axes: &[isize]) -> Tensor {
        self.reduce(axes, |axes| Primitive::ReduceMin { axes }, "min")
    }

    /// Index (i64) of the first maximum along an axis.
    #[track_caller]
    pub fn argmax(&self, axis: isize) -> Tensor {
        let loc = SourceLoc::caller();
        let axis = try_t!(axis_of("argmax", axis, self.ndim()), loc);
        bind(
            Primitive::Argmax {
                axis,
                index_dtype: DType::I64,
            },
            &[self],
            loc,
        )
    }

    /// Inclusive cumulative sum along an axis (from the end when `reverse`).
    #[track_caller]
    pub fn cumsum(&self, axis: isize, reverse: bool) -> Tensor {
        let loc = SourceLoc::caller();
        let axis = try_t!(axis_of("cumsum", axis, self.ndim()), loc);
        bind(Primitive::Cumsum { axis, reverse }, &[self], loc)
    }

    #[track_caller]
    fn reduce(&self, axes: &[isize], prim: impl Fn(Vec<usize>) -> Primitive, op: &str) -> Tensor {
        let loc = SourceLoc::caller();
        if let Some(e) = self.error() {
            return Tensor::failed(e.clone());
        }
        let axes = try_t!(axes_of(op, axes, self.ndim()), loc);
        bind(prim(axes), &[self], loc)
    }

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

    // ---- shape ----

    /// Permutes the dimensions: output dimension `i` is input dimension `perm[i]`.
    #[track_caller]
    pub fn transpose(&self, perm: &[usize]) -> Tensor {
        bind(
            Primitive::Transpose {
                permutation: perm.to_vec(),
            },
            &[self],
            SourceLoc::caller(),
        )
    }

    /// Reverses the order of the dimensions (the matrix transpose for rank 2).
    #[track_caller]
    pub fn t(&self) -> Tensor {
        let perm: Vec<usize> = (0..self.ndim()).rev().collect();
        self.transpose(&perm)
    }

    /// Row-major reshape; one entry may be -1 (inferred).
    #[track_caller]
    pub fn reshape(&self, shape: &[isize]) -> Tensor {
        let loc = SourceLoc::caller();
        if let Some(e) = self.error() {
            return Tensor::failed(e.clone());
        }
        let new_sizes = try_t!(infer_shape(shape, self.shape()), loc);
        bind(Primitive::Reshape { new_sizes }, &[self], loc)
    }

    /// Removes the given size-1 dimensions.
    #[track_caller]
    pub fn squeeze(&self, axes: &[isize]) -> Tensor {
        let loc = SourceLoc::caller();
        let dimensions = try_t!(axes_of("squeeze", axes, self.ndim()), loc);
        bind(Primitive::Squeeze { dimensions }, &[self], loc)
    }

    /// Inserts size-1 dimensions at the given positions of the result.
    #[track_caller]
    pub fn expand_dims(&self, axes: &[isize]) -> Tensor {
        let loc = SourceLoc::caller();
        let dimensions = try_t!(axes_of("expand_dims", axes, self.ndim() + axes.len()), loc);
        bind(Primitive::ExpandDims { dimensions }, &[self], loc)
    }

    /// Broadcasts to a shape with numpy's rules (trailing dimensions align).
    #[track_caller]
    pub fn broadcast_to(&self, shape: &[usize]) -> Tensor {
        self.broadcast_to_at(shape, SourceLoc::caller())
    }

    fn broadcast_to_at(&self, shape: &[usize], loc: SourceLoc) -> Tensor {
        if let Some(e) = self.error() {
            return Tensor::failed(e.clone());
        }
        if crate::dtype::same_shape(self.shape(), shape) {
            return self.clone();
        }
        let r = self.ndim();
        if r > shape.len() {
            return fail(Error::Shape {
                op: "broadcast_to".into(),
                msg: format!(
                    "cannot broadcast {:?} to the lower rank {shape:?}",
                    self.shape()
                ),
                loc: Some(loc),
            });
        }
        let bd: Vec<usize> = (shape.len() - r..shape.len()).collect();
        bind(
            Primitive::BroadcastInDim {
                shape: shape.to_vec(),
                broadcast_dimensions: bd,
            },
            &[self],
            loc,
        )
    }

    /// Elements `start[d] + k * strides[d]` below `limit[d]` along each dimension.
    #[track_caller]
    pub fn slice(&self, start: &[usize], limit: &[usize], strides: &[usize]) -> Tensor {
        bind(
            Primitive::Slice {
                start: start.to_vec(),
                limit: limit.to_vec(),
                strides: strides.to_vec(),
            },
            &[self],
            SourceLoc::caller(),
        )
    }

    /// `x[.., start..end, ..]` along one axis.
    #[track_caller]
    pub fn slice_axis(&self, axis: isize, start: usize, end: usize) -> Tensor {
        let loc = SourceLoc::caller();
        let axis = try_t!(axis_of("slice_axis", axis, self.ndim()), loc);
        let mut lo = vec![0; self.ndim()];
        let mut hi = self.shape().to_vec();
        lo[axis] = start;
        hi[axis] = end;
        let strides = vec![1; self.ndim()];
        bind(
            Primitive::Slice {
                start: lo,
                limit: hi,
                strides,
            },
            &[self],
            loc,
        )
    }

    /// `x[.., i, ..]` along one axis (the axis is removed).
    #[track_caller]
    pub fn index_axis(&self, axis: isize, i: usize) -> Tensor {
        let loc = SourceLoc::caller();
        let ax = try_t!(axis_of("index_axis", axis, self.ndim()), loc);
        if i >= self.shape()[ax] {
            return fail(Error::Shape {
                op: "index_axis".into(),
                msg: format!(
                    "index {i} is out of range for axis {axis} of size {} (shape {:?})",
                    self.shape()[ax],
                    self.shape()
                ),
                loc: Some(loc),
            });
        }
        let s = self.slice_axis(axis, i, i + 1);
        bind(
            Primitive::Squeeze {
                dimensions: vec![ax],
            },
            &[&s],
            loc,
        )
    }

    /// Pads with `low`/`high` elements before/after each dimension and `interior` between
    /// neighbours, all equal to `value` (in the tensor's dtype).
    #[track_caller]
    pub fn pad(
        &self,
        low: &[usize],
        high: &[usize],
        interior: &[usize],
        value: impl Into<Operand>,
    ) -> Tensor {
        let loc = SourceLoc::caller();
        let v = try_t!(as_tensor("pad", value.into(), self), loc);
        bind(
            Primitive::Pad {
                low: low.to_vec(),
                high: high.to_vec(),
                interior: interior.to_vec(),
            },
            &[self, &v],
            loc,
        )
    }

    /// Joins tensors along an axis.
    #[track_caller]
    pub fn concatenate(tensors: &[Tensor], axis: isize) -> Tensor {
        let loc = SourceLoc::caller();
        let Some(first) = tensors.first() else {
            return fail(Error::Shape {
                op: "concatenate".into(),
                msg: "needs at least one tensor".into(),
                loc: Some(loc),
            });
        };
        let dimension = try_t!(axis_of("concatenate", axis, first.ndim()), loc);
        let refs: Vec<&Tensor> = tensors.iter().collect();
        bind(Primitive::Concatenate { dimension }, &refs, loc)
    }

    /// Reverses the order of elements along the given axes.
    #[track_caller]
    pub fn rev(&self, axes: &[isize]) -> Tensor {
        let loc = SourceLoc::caller();
        let dimensions = try_t!(axes_of("rev", axes, self.ndim()), loc);
        bind(Primitive::Rev { dimensions }, &[self], loc)
    }
}

fn infer_shape(shape: &[isize], from: &[usize]) -> Result<Vec<usize>> {
    let op = "reshape";
    let n: usize = from.iter().product();
    let unknown: Vec<usize> = (0..shape.len()).filter(|&i| shape[i] == -1).collect();
    if unknown.len() > 1 || shape.iter().any(|&d| d < -1) {
        return Err(Error::shape(
            op,
            format!("{shape:?}: sizes must be non-negative, with at most one -1"),
        ));
    }
    let known = shape
        .iter()
        .filter(|&&d| d >= 0)
        .try_fold(1usize, |k, &d| k.checked_mul(d as usize))
        .ok_or_else(|| {
            Error::exhausted(
                op,
                format!("{shape:?} has more than {} elements", usize::MAX),
            )
        })?;
    let mut out: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
    if let Some(&i) = unknown.first() {
        if known == 0 || n % known != 0 {
            return Err(Error::shape(
                op,
                format!("cannot reshape {from:?} ({n} elements) to {shape:?}"),
            ));
        }
        out[i] = n / known;
    }
    Ok(out)
}

/// A Rust number as a rank-0 tensor of `like`'s dtype, or the tensor itself.
fn as_tensor(op: &str, o: Operand, like: &Tensor) -> Result<Tensor> {
    match o {
        Operand::Tensor(t) => Ok(t),
        Operand::Weak(w) => {
            let d = like.aval()?.dtype;
            Ok(Tensor::concrete(Array::from_scalar(Scalar::weak(
                w, d, op,
            )?)))
        }
    }
}

/// Resolves two operands, giving a Rust number the other operand's dtype. Two Rust numbers
/// become f64 (or i64) scalars.
fn weak_pair(op: &str, a: Operand, b: Operand) -> Result<(Tensor, Tensor)> {
    match (a, b) {
        (Operand::Tensor(x), Operand::Tensor(y)) => Ok((x, y)),
        (Operand::Tensor(x), w) => {
            let y = as_tensor(op, w, &x)?;
            Ok((x, y))
        }
        (w, Operand::Tensor(y)) => {
            let x = as_tensor(op, w, &y)?;
            Ok((x, y))
        }
        (Operand::Weak(x), Operand::Weak(y)) => {
            let t = |w: WeakScalar| match w {
                WeakScalar::Float(f) => Tensor::scalar(f),
                WeakScalar::Int(i) => Tensor::scalar(i),
            };
            Ok((t(x), t(y)))
        }
    }
}

/// A binary elementwise primitive with numpy broadcasting and weak Rust numbers.
fn binary(prim: Primitive, a: Operand, b: Operand, loc: SourceLoc) -> Tensor {
    let op = prim.name();
    let (x, y) = try_t!(weak_pair(op, a, b), loc);
    if let Some(e) = x.error().or(y.error()) {
        return Tensor::failed(e.clone());
    }
    let shape = try_t!(broadcast_shapes(op, x.shape(), y.shape()), loc);
    let (x, y) = (
        x.broadcast_to_at(&shape, loc),
        y.broadcast_to_at(&shape, loc),
    );
    bind(prim, &[&x, &y], loc)
}

macro_rules! operator {
    ($trait:ident, $method:ident, $prim:ident) => {
        impl<R: Into<Operand>> ops::$trait<R> for Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: R) -> Tensor {
                binary(Primitive::$prim, self.into(), rhs.into(), SourceLoc::caller())
            }
        }
        impl<R: Into<Operand>> ops::$trait<R> for &Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: R) -> Tensor {
                binary(Primitive::$prim, self.into(), rhs.into(), SourceLoc::caller())
            }
        }
        operator!(@scalar $trait, $method, $prim, f64, i64);
    };
    (@scalar $trait:ident, $method:ident, $prim:ident, $($s:ty),*) => {
        $(
            impl ops::$trait<Tensor> for $s {
                type Output = Tensor;
                #[track_caller]
                fn $method(self, rhs: Tensor) -> Tensor {
                    binary(Primitive::$prim, self.into(), rhs.into(), SourceLoc::caller())
                }
            }
            impl ops::$trait<&Tensor> for $s {
                type Output = Tensor;
                #[track_caller]
                fn $method(self, rhs: &Tensor) -> Tensor {
                    binary(Primitive::$prim, self.into(), rhs.into(), SourceLoc::caller())
                }
            }
        )*
    };
}
operator!(Add, add, Add);
operator!(Sub, sub, Sub);
operator!(Mul, mul, Mul);
operator!(Div, div, Div);

impl ops::Neg for Tensor {
    type Output = Tensor;
    #[track_caller]
    fn neg(self) -> Tensor {
        bind(Primitive::Neg, &[&self], SourceLoc::caller())
    }
}

impl ops::Neg for &Tensor {
    type Output = Tensor;
    #[track_caller]
    fn neg(self) -> Tensor {
        bind(Primitive::Neg, &[self], SourceLoc::caller())
    }
}

/// `where_(cond, on_true, on_false)`: see [`Tensor::where_`].
#[track_caller]
pub fn where_(cond: &Tensor, on_true: impl Into<Operand>, on_false: impl Into<Operand>) -> Tensor {
    Tensor::where_(cond, on_true, on_false)
}
