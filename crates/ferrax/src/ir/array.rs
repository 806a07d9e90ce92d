//! Host n-d arrays: the concrete values at both ends of the pipeline.
//!
//! An [`Array`] is a shape, a dtype and a contiguous row-major buffer behind an `Arc`, so
//! cloning is cheap and programs, linear maps and tensors can share residual values without
//! copying. Arrays are immutable once built. The evaluators (`backend`) consume and produce
//! them; tracing only ever sees their avals.

use std::fmt;
use std::sync::Arc;

use crate::ir::aval::{validate_shape, Aval};
use crate::ir::dtype::{DType, Scalar};
use crate::ir::error::{Error, Result};

/// The typed storage of an array, row-major.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    /// 32-bit floats.
    F32(Vec<f32>),
    /// 64-bit floats.
    F64(Vec<f64>),
    /// 32-bit signed integers.
    I32(Vec<i32>),
    /// 64-bit signed integers.
    I64(Vec<i64>),
    /// Booleans.
    Bool(Vec<bool>),
}

impl Data {
    /// The number of elements.
    pub fn len(&self) -> usize {
        match self {
            Data::F32(v) => v.len(),
            Data::F64(v) => v.len(),
            Data::I32(v) => v.len(),
            Data::I64(v) => v.len(),
            Data::Bool(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The dtype of the elements.
    pub fn dtype(&self) -> DType {
        match self {
            Data::F32(_) => DType::F32,
            Data::F64(_) => DType::F64,
            Data::I32(_) => DType::I32,
            Data::I64(_) => DType::I64,
            Data::Bool(_) => DType::Bool,
        }
    }

    /// Element `i` as a scalar. The caller guarantees `i < len`.
    pub(crate) fn get(&self, i: usize) -> Scalar {
        match self {
            Data::F32(v) => Scalar::F32(v[i]),
            Data::F64(v) => Scalar::F64(v[i]),
            Data::I32(v) => Scalar::I32(v[i]),
            Data::I64(v) => Scalar::I64(v[i]),
            Data::Bool(v) => Scalar::Bool(v[i]),
        }
    }

    /// Elements `start..end` (in range) as a new buffer.
    pub(crate) fn range(&self, start: usize, end: usize) -> Data {
        match self {
            Data::F32(v) => Data::F32(v[start..end].to_vec()),
            Data::F64(v) => Data::F64(v[start..end].to_vec()),
            Data::I32(v) => Data::I32(v[start..end].to_vec()),
            Data::I64(v) => Data::I64(v[start..end].to_vec()),
            Data::Bool(v) => Data::Bool(v[start..end].to_vec()),
        }
    }

    /// Buffers of one dtype joined end to end (`n` elements in all, allocated fallibly).
    pub(crate) fn concat(
        dtype: DType,
        parts: &[&Data],
        n: usize,
        op: &str,
        aval: &Aval,
    ) -> Result<Data> {
        fn join<T: Clone>(
            parts: &[&Data],
            n: usize,
            op: &str,
            aval: &Aval,
            get: impl Fn(&Data) -> Option<&[T]>,
        ) -> Result<Vec<T>> {
            let mut v = try_vec(op, aval, n)?;
            for p in parts {
                v.extend_from_slice(
                    get(p).ok_or_else(|| Error::internal("joining buffers of another dtype"))?,
                );
            }
            Ok(v)
        }
        Ok(match dtype {
            DType::F32 => Data::F32(join(parts, n, op, aval, f32::slice_of)?),
            DType::F64 => Data::F64(join(parts, n, op, aval, f64::slice_of)?),
            DType::I32 => Data::I32(join(parts, n, op, aval, i32::slice_of)?),
            DType::I64 => Data::I64(join(parts, n, op, aval, i64::slice_of)?),
            DType::Bool => Data::Bool(join(parts, n, op, aval, bool::slice_of)?),
        })
    }

    /// Sets element `i` (the caller guarantees it is in range) to `s` cast to the buffer's dtype.
    pub(crate) fn set(&mut self, i: usize, s: Scalar) {
        let d = self.dtype();
        match (self, s.cast(d)) {
            (Data::F32(v), Scalar::F32(x)) => v[i] = x,
            (Data::F64(v), Scalar::F64(x)) => v[i] = x,
            (Data::I32(v), Scalar::I32(x)) => v[i] = x,
            (Data::I64(v), Scalar::I64(x)) => v[i] = x,
            (Data::Bool(v), Scalar::Bool(x)) => v[i] = x,
            _ => unreachable!("cast gives the buffer's dtype"),
        }
    }

    /// `n` copies of a scalar, allocated fallibly (`op` and `aval` name the request in the error).
    pub(crate) fn try_filled(s: Scalar, n: usize, op: &str, aval: &Aval) -> Result<Data> {
        fn fill<T: Copy>(x: T, n: usize, op: &str, aval: &Aval) -> Result<Vec<T>> {
            let mut v = try_vec(op, aval, n)?;
            v.resize(n, x);
            Ok(v)
        }
        Ok(match s {
            Scalar::F32(x) => Data::F32(fill(x, n, op, aval)?),
            Scalar::F64(x) => Data::F64(fill(x, n, op, aval)?),
            Scalar::I32(x) => Data::I32(fill(x, n, op, aval)?),
            Scalar::I64(x) => Data::I64(fill(x, n, op, aval)?),
            Scalar::Bool(x) => Data::Bool(fill(x, n, op, aval)?),
        })
    }
}

/// Allocations below this many bytes are not probed: when one of those fails the process is
/// out of memory whatever ferrax does.
const PROBE_MIN_BYTES: usize = 1 << 20;

/// Checks that about `bytes` bytes can be allocated now, before a computation of `op` that
/// makes a value of `aval` allocates them; an error naming the op, the aval and the bytes
/// otherwise. Kernels allocate their outputs (and index temporaries of the same length) with
/// infallible `Vec`s, so every evaluation asks here first: a request the allocator refuses
/// comes back as an `Err` instead of aborting the process.
pub(crate) fn ensure_allocatable(op: &str, aval: &Aval, bytes: usize) -> Result<()> {
    if bytes < PROBE_MIN_BYTES {
        return Ok(());
    }
    let mut probe: Vec<u8> = Vec::new();
    probe
        .try_reserve_exact(bytes)
        .map_err(|_| refused(op, aval, bytes))
}

fn refused(op: &str, aval: &Aval, bytes: usize) -> Error {
    Error::exhausted(
        op,
        format!("cannot allocate {bytes} bytes for a value of {aval}"),
    )
}

/// An empty `Vec` with room for `n` elements, or an error naming the op, the aval and the
/// bytes when the allocator refuses.
pub(crate) fn try_vec<T>(op: &str, aval: &Aval, n: usize) -> Result<Vec<T>> {
    let bytes = n.saturating_mul(std::mem::size_of::<T>());
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| refused(op, aval, bytes))?;
    Ok(v)
}

/// Rust element types that can live in an [`Array`].
pub trait Element: Copy + fmt::Debug + PartialEq + Send + Sync + 'static {
    /// The dtype of an array of this element type.
    const DTYPE: DType;
    /// Wraps a buffer of this element type as [`Data`].
    fn into_data(v: Vec<Self>) -> Data;
    /// The buffer of `d` as a slice, or `None` when `d` holds another element type.
    fn slice_of(d: &Data) -> Option<&[Self]>;
    /// This value as a [`Scalar`].
    fn into_scalar(self) -> Scalar;
}

macro_rules! element {
    ($t:ty, $variant:ident) => {
        impl Element for $t {
            const DTYPE: DType = DType::$variant;
            fn into_data(v: Vec<Self>) -> Data {
                Data::$variant(v)
            }
            fn slice_of(d: &Data) -> Option<&[Self]> {
                match d {
                    Data::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn into_scalar(self) -> Scalar {
                Scalar::$variant(self)
            }
        }
    };
}
element!(f32, F32);
element!(f64, F64);
element!(i32, I32);
element!(i64, I64);
element!(bool, Bool);

/// A host n-d array: shape, dtype, contiguous row-major reference-counted buffer.
#[derive(Clone, PartialEq)]
pub struct Array {
    shape: Vec<usize>,
    data: Arc<Data>,
}

impl Array {
    /// An array from a typed buffer and a shape; the buffer length must match the shape.
    pub fn from_data(data: Data, shape: &[usize]) -> Result<Array> {
        let op = "Array::from_vec";
        let size = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if size != Some(data.len()) {
            validate_shape(op, shape, data.dtype())?;
            return Err(Error::shape(
                op,
                format!(
                    "{} elements given for shape {:?}, which holds {}",
                    data.len(),
                    shape,
                    size.unwrap_or(usize::MAX)
                ),
            ));
        }
        // Non-empty data of the shape's length proves the shape fits; an empty one may have
        // other dimensions whose strides would overflow.
        if data.is_empty() {
            validate_shape(op, shape, data.dtype())?;
        }
        Ok(Array {
            shape: shape.to_vec(),
            data: Arc::new(data),
        })
    }

    /// An array from a `Vec` and a shape.
    ///
    /// ```
    /// let a = ferrax::Array::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    /// assert_eq!(a.shape(), &[2, 2]);
    /// assert!(ferrax::Array::from_vec(vec![1.0f64], &[2]).is_err());
    /// ```
    pub fn from_vec<T: Element>(v: Vec<T>, shape: &[usize]) -> Result<Array> {
        Array::from_data(T::into_data(v), shape)
    }

    /// A 1-d array copied from a slice.
    pub fn from_slice<T: Element>(v: &[T]) -> Array {
        Array {
            shape: vec![v.len()],
            data: Arc::new(T::into_data(v.to_vec())),
        }
    }

    /// A rank-0 array.
    pub fn scalar<T: Element>(v: T) -> Array {
        Array::from_scalar(v.into_scalar())
    }

    /// A rank-0 array holding a [`Scalar`].
    pub fn from_scalar(s: Scalar) -> Array {
        let data = match s {
            Scalar::F32(x) => Data::F32(vec![x]),
            Scalar::F64(x) => Data::F64(vec![x]),
            Scalar::I32(x) => Data::I32(vec![x]),
            Scalar::I64(x) => Data::I64(vec![x]),
            Scalar::Bool(x) => Data::Bool(vec![x]),
        };
        Array {
            shape: vec![],
            data: Arc::new(data),
        }
    }

    /// An array of the given shape with every element equal to `value` (converted to dtype).
    /// A shape too large to allocate is an error (as for every constructor below).
    ///
    /// ```
    /// use ferrax::{Array, DType};
    /// assert_eq!(Array::full(&[2], 1.5, DType::F64).unwrap().to_vec::<f64>().unwrap(), vec![1.5, 1.5]);
    /// assert!(Array::zeros(&[1 << 40, 1 << 40], DType::F64).is_err());
    /// ```
    pub fn full(shape: &[usize], value: f64, dtype: DType) -> Result<Array> {
        Array::filled(shape, Scalar::F64(value).cast(dtype))
    }

    /// Like [`Array::full`] for a scalar already of the right dtype.
    pub fn filled(shape: &[usize], value: Scalar) -> Result<Array> {
        Array::filled_for("Array::full", shape, value)
    }

    /// [`Array::filled`] with the operation the error names.
    pub(crate) fn filled_for(op: &str, shape: &[usize], value: Scalar) -> Result<Array> {
        let aval = Aval::new(shape.to_vec(), value.dtype());
        aval.validate(op)?;
        Ok(Array {
            shape: shape.to_vec(),
            data: Arc::new(Data::try_filled(value, aval.size(), op, &aval)?),
        })
    }

    /// An array of zeros (`false` for bool); an error when the shape is too large to allocate.
    pub fn zeros(shape: &[usize], dtype: DType) -> Result<Array> {
        Array::full(shape, 0.0, dtype)
    }

    /// An array of ones (`true` for bool); an error when the shape is too large to allocate.
    pub fn ones(shape: &[usize], dtype: DType) -> Result<Array> {
        Array::full(shape, 1.0, dtype)
    }

    /// `[0, 1, ..., n-1]` in the given numeric dtype.
    pub fn arange(n: usize, dtype: DType) -> Result<Array> {
        Array::iota(&[n], 0, dtype)
    }

    /// An array whose element at index `i` is `i[dimension]` (as the `iota` primitive).
    /// A `dimension` outside the shape's rank is an axis error.
    ///
    /// ```
    /// use ferrax::{Array, DType};
    /// let a = Array::iota(&[2, 3], 1, DType::I64).unwrap();
    /// assert_eq!(a.to_vec::<i64>().unwrap(), vec![0, 1, 2, 0, 1, 2]);
    /// assert!(Array::iota(&[2, 3], 2, DType::I64).is_err());
    /// ```
    pub fn iota(shape: &[usize], dimension: usize, dtype: DType) -> Result<Array> {
        if dimension >= shape.len() {
            return Err(Error::axis(
                "iota",
                format!(
                    "dimension {dimension} is out of range for the rank-{} shape {shape:?}",
                    shape.len()
                ),
            ));
        }
        let aval = Aval::new(shape.to_vec(), dtype);
        aval.validate("iota")?;
        Array::iota_in_range(shape, dimension, dtype)
    }

    /// [`Array::iota`] for a dimension already checked and a valid shape (by the
    /// primitive's shape rule); the allocation can still fail.
    pub(crate) fn iota_in_range(shape: &[usize], dimension: usize, dtype: DType) -> Result<Array> {
        let aval = Aval::new(shape.to_vec(), dtype);
        let n = aval.size();
        let strides = strides(shape);
        let (stride, dim) = (strides[dimension], shape[dimension].max(1));
        let index = |i: usize| (i / stride) % dim;
        fn build<T>(op: &Aval, n: usize, f: impl Fn(usize) -> T) -> Result<Vec<T>> {
            let mut v = try_vec("iota", op, n)?;
            v.extend((0..n).map(f));
            Ok(v)
        }
        let data = match dtype {
            DType::F32 => Data::F32(build(&aval, n, |i| index(i) as f32)?),
            DType::F64 => Data::F64(build(&aval, n, |i| index(i) as f64)?),
            DType::I32 => Data::I32(build(&aval, n, |i| index(i) as i32)?),
            DType::I64 => Data::I64(build(&aval, n, |i| index(i) as i64)?),
            DType::Bool => Data::Bool(build(&aval, n, |i| index(i) != 0)?),
        };
        Ok(Array {
            shape: shape.to_vec(),
            data: Arc::new(data),
        })
    }

    /// The dimensions, outermost first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The dtype of the elements.
    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    /// The abstract value: shape and dtype.
    pub fn aval(&self) -> Aval {
        Aval::new(self.shape.clone(), self.dtype())
    }

    /// The rank: the number of dimensions.
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    pub fn size(&self) -> usize {
        self.data.len()
    }

    /// Bytes of the buffer.
    pub fn bytes(&self) -> usize {
        self.size() * self.dtype().size_bytes()
    }

    /// The typed, row-major buffer.
    pub fn data(&self) -> &Data {
        &self.data
    }

    /// The buffer as a typed slice; an error when `T` is not the array's dtype.
    pub fn as_slice<T: Element>(&self) -> Result<&[T]> {
        T::slice_of(&self.data).ok_or_else(|| {
            Error::dtype(
                "Array::as_slice",
                format!(
                    "asked for {} elements of a {} array",
                    T::DTYPE,
                    self.dtype()
                ),
            )
        })
    }

    /// The elements as a `Vec` (row-major); an error when `T` is not the array's dtype.
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        self.as_slice::<T>().map(|s| s.to_vec())
    }

    /// The elements converted to f64, whatever the dtype.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        (0..self.size())
            .map(|i| self.data.get(i).to_f64())
            .collect()
    }

    /// The element at a multi-index.
    pub fn get(&self, index: &[usize]) -> Result<Scalar> {
        if index.len() != self.ndim() || index.iter().zip(&self.shape).any(|(i, d)| i >= d) {
            return Err(Error::shape(
                "Array::get",
                format!("index {index:?} is outside shape {:?}", self.shape),
            ));
        }
        let flat = index
            .iter()
            .zip(strides(&self.shape))
            .map(|(i, s)| i * s)
            .sum();
        Ok(self.data.get(flat))
    }

    /// The single element of a size-1 array.
    pub fn item(&self) -> Result<Scalar> {
        if self.size() != 1 {
            return Err(Error::shape(
                "Array::item",
                format!("needs exactly one element, shape is {:?}", self.shape),
            ));
        }
        Ok(self.data.get(0))
    }

    /// The same buffer seen with another shape of the same size.
    pub fn reshaped(&self, shape: &[usize]) -> Result<Array> {
        Aval::new(shape.to_vec(), self.dtype()).validate("Array::reshaped")?;
        if Aval::new(shape.to_vec(), self.dtype()).size() != self.size() {
            return Err(Error::shape(
                "Array::reshaped",
                format!("cannot view shape {:?} as {:?}", self.shape, shape),
            ));
        }
        Ok(Array {
            shape: shape.to_vec(),
            data: self.data.clone(),
        })
    }

    /// Slice `i` along axis 0 (that axis removed): a copy of one contiguous run.
    pub(crate) fn row(&self, i: usize) -> Result<Array> {
        let (&n, rest) = self
            .shape
            .split_first()
            .ok_or_else(|| Error::shape("Array::row", "a rank-0 array has no rows"))?;
        if i >= n {
            return Err(Error::shape(
                "Array::row",
                format!("row {i} of an array with {n} rows"),
            ));
        }
        let len: usize = rest.iter().product();
        Array::from_data(self.data.range(i * len, (i + 1) * len), rest)
    }

    /// `n` arrays of aval `row` stacked along a new axis 0.
    pub(crate) fn stack(rows: &[Array], row: &Aval, n: usize) -> Result<Array> {
        let mut shape = vec![n];
        shape.extend_from_slice(&row.shape);
        let aval = Aval::new(shape, row.dtype);
        aval.validate("stack")?;
        if rows.len() != n || rows.iter().any(|r| r.aval() != *row) {
            return Err(Error::internal(format!(
                "stacking {} rows as {n} rows of {row}",
                rows.len()
            )));
        }
        let parts: Vec<&Data> = rows.iter().map(|r| r.data()).collect();
        let data = Data::concat(row.dtype, &parts, aval.size(), "stack", &aval)?;
        Array::from_data(data, &aval.shape)
    }

    /// Whether this array is the only holder of its buffer (so it may be updated in place).
    pub(crate) fn is_unique(&self) -> bool {
        Arc::strong_count(&self.data) == 1
    }

    /// The buffer, for an update in place, when this array is its only holder.
    pub(crate) fn data_mut(&mut self) -> Option<&mut Data> {
        Arc::get_mut(&mut self.data)
    }

    /// The buffer, moved out when unique, copied otherwise.
    pub(crate) fn into_data(self) -> Data {
        Arc::try_unwrap(self.data).unwrap_or_else(|shared| (*shared).clone())
    }

    /// The buffer's identity (equal for arrays sharing one), for counting memory once per buffer.
    pub(crate) fn buffer_id(&self) -> usize {
        Arc::as_ptr(&self.data) as *const () as usize
    }

    /// How many arrays hold this one's buffer (this one included).
    pub(crate) fn buffer_holders(&self) -> usize {
        Arc::strong_count(&self.data)
    }

    /// Whether two arrays share one buffer (one was made from the other without copying).
    pub fn shares_buffer(&self, other: &Array) -> bool {
        Arc::ptr_eq(&self.data, &other.data)
    }

    /// Whether two arrays are equal element by element, with NaN equal to NaN (for tests
    /// that compare two evaluations of the same computation bit for bit).
    pub fn same_values(&self, other: &Array) -> bool {
        crate::ir::aval::same_shape(&self.shape, &other.shape)
            && self.dtype() == other.dtype()
            && (0..self.size()).all(|i| self.data.get(i) == other.data.get(i))
    }
}

/// Row-major strides (in elements) of a shape.
pub(crate) fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

impl fmt::Debug for Array {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Array({} ", self.aval())?;
        write_values(f, self)?;
        f.write_str(")")
    }
}

impl fmt::Display for Array {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_values(f, self)
    }
}

/// `[v0, v1, ...]`, flat row-major, each value in shortest round-trip form.
pub(crate) fn write_values(f: &mut impl fmt::Write, a: &Array) -> fmt::Result {
    f.write_str("[")?;
    for i in 0..a.size() {
        if i > 0 {
            f.write_str(", ")?;
        }
        crate::ir::dtype::write_value(f, a.data.get(i))?;
    }
    f.write_str("]")
}

impl<T: Element> From<T> for Array {
    fn from(v: T) -> Array {
        Array::scalar(v)
    }
}

#[cfg(feature = "ndarray")]
mod ndarray_conv {
    //! Conversion to and from `ndarray` (cargo feature `ndarray`).
    use super::*;

    impl<T: Element> TryFrom<&Array> for ndarray::ArrayD<T> {
        type Error = Error;
        fn try_from(a: &Array) -> Result<Self> {
            let v = a.to_vec::<T>()?;
            ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(a.shape()), v)
                .map_err(|e| Error::shape("ndarray conversion", e.to_string()))
        }
    }

    /// Fallible because ndarray admits empty arrays whose other dimensions multiply past
    /// what ferrax's shapes allow (`Aval::validate`).
    impl<T: Element, D: ndarray::Dimension> TryFrom<&ndarray::Array<T, D>> for Array {
        type Error = Error;
        fn try_from(a: &ndarray::Array<T, D>) -> Result<Array> {
            let v: Vec<T> = a.iter().copied().collect();
            Array::from_vec(v, a.shape())
        }
    }
}
