//! The reference evaluator: the definition of every primitive, on host arrays.
//!
//! The last stage of the pipeline. [`eval_primitive`] gives each primitive its meaning in
//! plain, obvious code (matrix products go through `gemm`); [`Program::eval`] interprets a
//! program equation by equation. Eager tensor operations call `eval_primitive` directly, so
//! eager and traced-then-evaluated computations agree bit for bit. Later fast paths (jit,
//! vectorised kernels) are tested against this module, never the other way round.
//!
//! Every function here first runs the primitive's shape rule, so the kernels below can rely
//! on operands being well typed.

use crate::array::{ensure_allocatable, strides, Array, Data, Element};
use crate::dtype::{Aval, DType, Scalar};
use crate::error::{Error, Result};
use crate::primitive::Primitive;
use crate::program::{Atom, Program};

/// Applies one primitive to concrete arrays.
///
/// ```
/// use ferrax::{eval_primitive, Array, Primitive};
/// let x = Array::from_slice(&[0.0f64, 1.0]);
/// let y = eval_primitive(&Primitive::Exp, &[&x]).unwrap();
/// assert_eq!(y.to_vec::<f64>().unwrap(), vec![1.0, std::f64::consts::E]);
/// ```
pub fn eval_primitive(prim: &Primitive, args: &[&Array]) -> Result<Array> {
    count(prim);
    let avals: Vec<Aval> = args.iter().map(|a| a.aval()).collect();
    let refs: Vec<&Aval> = avals.iter().collect();
    let out = prim.abstract_eval(&refs)?;
    ensure_allocatable(prim.name(), &out, peak_bytes(prim, args, &out))?;
    let data = compute(prim, args, &out)?;
    Array::from_data(data, &out.shape)
}

/// About the most memory [`compute`] allocates for one primitive: the output, index
/// vectors of the output's length (movement primitives gather through a `usize` per
/// element, `concatenate` through two), and for `dot_general` the operands brought to
/// matrix layout.
fn peak_bytes(prim: &Primitive, args: &[&Array], out: &Aval) -> usize {
    let operands = match prim {
        Primitive::DotGeneral { .. } => args.iter().map(|a| a.bytes()).sum(),
        _ => 0,
    };
    out.bytes()
        .saturating_add(out.size().saturating_mul(16))
        .saturating_add(operands)
}

thread_local! {
    static COUNTS: std::cell::RefCell<[u64; 51]> = const { std::cell::RefCell::new([0; 51]) };
}

/// Counts one evaluation of a primitive (by the reference evaluator or a compiled plan).
pub(crate) fn count(prim: &Primitive) {
    COUNTS.with(|c| c.borrow_mut()[prim.ordinal()] += 1);
}

/// How many times each primitive has been evaluated on this thread (by the reference
/// evaluator or by compiled plans) since the last [`reset_eval_counts`]: the instrument
/// tests use to show that, for example, applying a linear map evaluates no nonlinear
/// primitive.
pub fn eval_counts() -> std::collections::BTreeMap<&'static str, u64> {
    COUNTS.with(|c| {
        c.borrow()
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(i, &n)| (crate::primitive::PRIMITIVE_NAMES[i], n))
            .collect()
    })
}

/// Resets the counters of [`eval_counts`].
pub fn reset_eval_counts() {
    COUNTS.with(|c| *c.borrow_mut() = [0; 51]);
}

impl Program {
    /// Evaluates the program on concrete inputs with the reference evaluator. A program that
    /// does not type-check ([`Program::check`]) is an error.
    ///
    /// ```
    /// use ferrax::{Array, Program};
    /// let p = Program::parse("{ lambda ; a:f64[] . let b:f64[] = mul a 2.0:f64 in (b) }").unwrap();
    /// let out = p.eval(&[Array::scalar(1.5f64)]).unwrap();
    /// assert_eq!(out[0].to_vec::<f64>().unwrap(), vec![3.0]);
    /// ```
    pub fn eval(&self, args: &[Array]) -> Result<Vec<Array>> {
        // a hand-built program may be malformed (the fields are public)
        self.check()?;
        if args.len() != self.inputs.len() {
            return Err(Error::input(
                "Program::eval",
                format!(
                    "the program takes {} input(s), {} given",
                    self.inputs.len(),
                    args.len()
                ),
            ));
        }
        let mut env: Vec<Option<Array>> = vec![None; self.avals.len()];
        for (i, (v, a)) in self.inputs.iter().zip(args).enumerate() {
            if a.aval() != *self.aval(*v) {
                return Err(Error::input(
                    "Program::eval",
                    format!("input {i} must be {}, got {}", self.aval(*v), a.aval()),
                ));
            }
            env[v.index()] = Some(a.clone());
        }
        for (v, a) in &self.consts {
            env[v.index()] = Some(a.clone());
        }
        let read = |env: &Vec<Option<Array>>, a: &Atom| -> Result<Array> {
            match a {
                Atom::Lit(s) => Ok(Array::from_scalar(*s)),
                Atom::Var(v) => env[v.index()].clone().ok_or_else(|| {
                    Error::check(format!("variable {} is used before it is defined", v.0))
                }),
            }
        };
        for e in &self.eqns {
            let ins = e
                .inputs
                .iter()
                .map(|a| read(&env, a))
                .collect::<Result<Vec<_>>>()?;
            let refs: Vec<&Array> = ins.iter().collect();
            let out = eval_primitive(&e.prim, &refs).map_err(|err| match e.loc {
                Some(l) => err.with_loc(l),
                None => err,
            })?;
            env[e.out.index()] = Some(out);
        }
        self.outputs.iter().map(|a| read(&env, a)).collect()
    }
}

/// Arithmetic on the numeric element types. Integer arithmetic wraps (as XLA's does).
trait Num: Element + PartialOrd {
    const ZERO: Self;
    const ONE: Self;
    const LOWEST: Self;
    const HIGHEST: Self;
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    fn div(self, o: Self) -> Self;
    fn neg(self) -> Self;
    fn abs(self) -> Self;
    fn sign(self) -> Self;
    fn is_nan(self) -> bool;
    fn max_nan(self, o: Self) -> Self {
        max_nan(self, o)
    }
    fn min_nan(self, o: Self) -> Self {
        min_nan(self, o)
    }
}

/// The `max` primitive on one pair of elements, the single definition every evaluator
/// (reference, compiled steps, fused groups) calls: NaN-propagating, returning the first
/// NaN operand as it is (sign and payload kept), else the larger, `x` on ties.
#[inline(always)]
#[allow(clippy::eq_op)] // `x != x` is the NaN test for every element type
pub(crate) fn max_nan<T: PartialOrd + Copy>(x: T, y: T) -> T {
    if x != x {
        x
    } else if y != y || y > x {
        y
    } else {
        x
    }
}

/// The `min` primitive on one pair of elements (see [`max_nan`]).
#[inline(always)]
#[allow(clippy::eq_op)]
pub(crate) fn min_nan<T: PartialOrd + Copy>(x: T, y: T) -> T {
    if x != x {
        x
    } else if y != y || y < x {
        y
    } else {
        x
    }
}

macro_rules! float_num {
    ($t:ty) => {
        impl Num for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const LOWEST: Self = <$t>::NEG_INFINITY;
            const HIGHEST: Self = <$t>::INFINITY;
            fn add(self, o: Self) -> Self {
                self + o
            }
            fn sub(self, o: Self) -> Self {
                self - o
            }
            fn mul(self, o: Self) -> Self {
                self * o
            }
            fn div(self, o: Self) -> Self {
                self / o
            }
            fn neg(self) -> Self {
                -self
            }
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            fn sign(self) -> Self {
                if self > 0.0 {
                    1.0
                } else if self < 0.0 {
                    -1.0
                } else {
                    self // keeps the sign of zero, and NaN
                }
            }
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
        }
    };
}
float_num!(f32);
float_num!(f64);

macro_rules! int_num {
    ($t:ty) => {
        impl Num for $t {
            const ZERO: Self = 0;
            const ONE: Self = 1;
            const LOWEST: Self = <$t>::MIN;
            const HIGHEST: Self = <$t>::MAX;
            fn add(self, o: Self) -> Self {
                self.wrapping_add(o)
            }
            fn sub(self, o: Self) -> Self {
                self.wrapping_sub(o)
            }
            fn mul(self, o: Self) -> Self {
                self.wrapping_mul(o)
            }
            fn div(self, o: Self) -> Self {
                // Division by zero is -1, never a trap (XLA's convention).
                if o == 0 {
                    -1
                } else {
                    self.wrapping_div(o)
                }
            }
            fn neg(self) -> Self {
                self.wrapping_neg()
            }
            fn abs(self) -> Self {
                self.wrapping_abs()
            }
            fn sign(self) -> Self {
                self.signum()
            }
            fn is_nan(self) -> bool {
                false
            }
        }
    };
}
int_num!(i32);
int_num!(i64);

/// `x^y` by repeated squaring (negative `y` only reaches here for floats).
fn ipow<T: Num>(x: T, y: i32) -> T {
    let mut acc = T::ONE;
    let mut base = x;
    let mut e = y.unsigned_abs();
    while e > 0 {
        if e & 1 == 1 {
            acc = acc.mul(base);
        }
        base = base.mul(base);
        e >>= 1;
    }
    if y < 0 {
        T::ONE.div(acc)
    } else {
        acc
    }
}

/// Applies a numeric kernel to each dtype's buffer; `$body` is generic in the element type.
macro_rules! numeric {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            Data::F32($v) => Data::F32($body),
            Data::F64($v) => Data::F64($body),
            Data::I32($v) => Data::I32($body),
            Data::I64($v) => Data::I64($body),
            Data::Bool(_) => unreachable!("the shape rule admits numeric operands only"),
        }
    };
}

/// Applies a kernel to every dtype's buffer, keeping the dtype.
macro_rules! any_dtype {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            Data::F32($v) => Data::F32($body),
            Data::F64($v) => Data::F64($body),
            Data::I32($v) => Data::I32($body),
            Data::I64($v) => Data::I64($body),
            Data::Bool($v) => Data::Bool($body),
        }
    };
}

/// Applies a two-operand numeric kernel to matching buffers.
macro_rules! numeric2 {
    ($a:expr, $b:expr, $x:ident, $y:ident => $body:expr) => {
        match ($a, $b) {
            (Data::F32($x), Data::F32($y)) => Data::F32($body),
            (Data::F64($x), Data::F64($y)) => Data::F64($body),
            (Data::I32($x), Data::I32($y)) => Data::I32($body),
            (Data::I64($x), Data::I64($y)) => Data::I64($body),
            _ => unreachable!("the shape rule admits equal numeric dtypes only"),
        }
    };
}

fn zip<T: Copy, U>(a: &[T], b: &[T], f: impl Fn(T, T) -> U) -> Vec<U> {
    a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect()
}

fn map<T: Copy, U>(a: &[T], f: impl Fn(T) -> U) -> Vec<U> {
    a.iter().map(|&x| f(x)).collect()
}

/// A float-only elementwise function, given for both float widths.
fn float_unary(x: &Data, f32f: impl Fn(f32) -> f32, f64f: impl Fn(f64) -> f64) -> Data {
    match x {
        Data::F32(v) => Data::F32(map(v, f32f)),
        Data::F64(v) => Data::F64(map(v, f64f)),
        _ => unreachable!("the shape rule admits float operands only"),
    }
}

fn float_binary(
    a: &Data,
    b: &Data,
    f32f: impl Fn(f32, f32) -> f32,
    f64f: impl Fn(f64, f64) -> f64,
) -> Data {
    match (a, b) {
        (Data::F32(x), Data::F32(y)) => Data::F32(zip(x, y, f32f)),
        (Data::F64(x), Data::F64(y)) => Data::F64(zip(x, y, f64f)),
        _ => unreachable!("the shape rule admits equal float dtypes only"),
    }
}

fn compare(a: &Data, b: &Data, f: impl Fn(std::cmp::Ordering) -> bool, eq_only: bool) -> Data {
    // Partial comparison: any comparison involving NaN is false, except `ne`.
    fn cmp<T: PartialOrd + Copy>(
        x: &[T],
        y: &[T],
        f: &impl Fn(std::cmp::Ordering) -> bool,
        nan: bool,
    ) -> Vec<bool> {
        zip(x, y, |p, q| p.partial_cmp(&q).map_or(nan, f))
    }
    let nan = eq_only && !f(std::cmp::Ordering::Equal); // `ne` is true for NaN
    Data::Bool(match (a, b) {
        (Data::F32(x), Data::F32(y)) => cmp(x, y, &f, nan),
        (Data::F64(x), Data::F64(y)) => cmp(x, y, &f, nan),
        (Data::I32(x), Data::I32(y)) => cmp(x, y, &f, nan),
        (Data::I64(x), Data::I64(y)) => cmp(x, y, &f, nan),
        (Data::Bool(x), Data::Bool(y)) => cmp(x, y, &f, nan),
        _ => unreachable!("the shape rule admits equal dtypes only"),
    })
}

/// Calls `f` with every multi-index of `shape`, in row-major order.
fn for_each_index(shape: &[usize], mut f: impl FnMut(&[usize])) {
    if shape.contains(&0) {
        return;
    }
    let mut idx = vec![0; shape.len()];
    loop {
        f(&idx);
        let mut d = shape.len();
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// For each output element (row-major), the flat index of the operand element it copies.
fn source_indices(out_shape: &[usize], mut src: impl FnMut(&[usize]) -> usize) -> Vec<usize> {
    let mut v = Vec::with_capacity(out_shape.iter().product());
    for_each_index(out_shape, |i| v.push(src(i)));
    v
}

fn gather<T: Copy>(x: &[T], src: &[usize]) -> Vec<T> {
    src.iter().map(|&i| x[i]).collect()
}

fn gather_data(x: &Data, src: &[usize]) -> Data {
    any_dtype!(x, v => gather(v, src))
}

fn flat(idx: &[usize], strides: &[usize]) -> usize {
    idx.iter().zip(strides).map(|(i, s)| i * s).sum()
}

fn reduce<T: Num>(
    x: &[T],
    shape: &[usize],
    axes: &[usize],
    init: T,
    f: impl Fn(T, T) -> T,
) -> Vec<T> {
    let out_shape: Vec<usize> = (0..shape.len())
        .filter(|d| !axes.contains(d))
        .map(|d| shape[d])
        .collect();
    let ostr = strides(&out_shape);
    // Stride of each operand dimension in the output (0 for reduced dimensions).
    let mut k = 0;
    let map_str: Vec<usize> = (0..shape.len())
        .map(|d| {
            if axes.contains(&d) {
                0
            } else {
                k += 1;
                ostr[k - 1]
            }
        })
        .collect();
    let mut out = vec![init; out_shape.iter().product()];
    let mut i = 0;
    for_each_index(shape, |idx| {
        let o = flat(idx, &map_str);
        out[o] = f(out[o], x[i]);
        i += 1;
    });
    out
}

fn argmax<T: Num>(x: &[T], shape: &[usize], axis: usize) -> Vec<i64> {
    let st = strides(shape);
    let mut out_shape = shape.to_vec();
    out_shape.remove(axis);
    let mut out = Vec::with_capacity(out_shape.iter().product());
    for_each_index(&out_shape, |o| {
        let mut idx = o.to_vec();
        idx.insert(axis, 0);
        let base = flat(&idx, &st);
        let mut best = x[base];
        let mut bi = 0;
        if !best.is_nan() {
            for k in 1..shape[axis] {
                let v = x[base + k * st[axis]];
                if v.is_nan() {
                    bi = k;
                    break;
                }
                if v > best {
                    best = v;
                    bi = k;
                }
            }
        }
        out.push(bi as i64);
    });
    out
}

fn cumsum<T: Num>(x: &[T], shape: &[usize], axis: usize, reverse: bool) -> Vec<T> {
    let st = strides(shape);
    let mut out = x.to_vec();
    let n = shape[axis];
    let mut outer = shape.to_vec();
    outer[axis] = 1;
    for_each_index(&outer, |o| {
        let base = flat(o, &st);
        let mut acc = T::ZERO;
        for k in 0..n {
            let j = if reverse { n - 1 - k } else { k };
            let p = base + j * st[axis];
            acc = acc.add(x[p]);
            out[p] = acc;
        }
    });
    out
}

/// Batched `[b, m, k] x [b, k, n] -> [b, m, n]` on contiguous row-major buffers.
fn batched_matmul<T: Num>(
    l: &[T],
    r: &[T],
    b: usize,
    m: usize,
    k: usize,
    n: usize,
) -> Result<Vec<T>> {
    let mut out = vec![T::ZERO; b * m * n];
    if k == 0 || m == 0 || n == 0 {
        return Ok(out);
    }
    // gemm reads raw pointers: the buffers must hold exactly the matrices described
    if l.len() != b * m * k || r.len() != b * k * n {
        return Err(Error::internal(format!(
            "dot_general: operand buffers of {} and {} elements for {b} products of {m}x{k} by {k}x{n}",
            l.len(),
            r.len()
        )));
    }
    for bi in 0..b {
        let (lo, ro, oo) = (bi * m * k, bi * k * n, bi * m * n);
        let dst = &mut out[oo..oo + m * n];
        let (ls, rs) = (&l[lo..lo + m * k], &r[ro..ro + k * n]);
        if !gemm_into(dst, ls, rs, m, k, n) {
            for i in 0..m {
                for kk in 0..k {
                    let a = ls[i * k + kk];
                    for j in 0..n {
                        dst[i * n + j] = dst[i * n + j].add(a.mul(rs[kk * n + j]));
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Matrix product through `gemm` for f32 and f64; returns false for other types, or for
/// buffers that are not exactly the matrices described (the caller then takes the loop).
fn gemm_into<T: Num>(dst: &mut [T], l: &[T], r: &[T], m: usize, k: usize, n: usize) -> bool {
    use std::any::TypeId;
    let is_float =
        TypeId::of::<T>() == TypeId::of::<f32>() || TypeId::of::<T>() == TypeId::of::<f64>();
    if !is_float || dst.len() != m * n || l.len() != m * k || r.len() != k * n {
        return false;
    }
    // SAFETY: the three buffers are contiguous row-major matrices of the sizes checked
    // above (row stride = column count, column stride 1); `dst` is not aliased; T is f32 or
    // f64, which gemm supports; alpha = 0 with read_dst = false overwrites dst.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            false,
            l.as_ptr(),
            1,
            k as isize,
            r.as_ptr(),
            1,
            n as isize,
            T::ZERO,
            T::ONE,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    true
}

fn compute(prim: &Primitive, args: &[&Array], out: &Aval) -> Result<Data> {
    use Primitive::*;
    let x = || args[0].data();
    let y = || args[1].data();
    let shape = || args[0].shape();
    Ok(match prim {
        Neg => numeric!(x(), v => map(v, Num::neg)),
        Abs => numeric!(x(), v => map(v, Num::abs)),
        Sign => numeric!(x(), v => map(v, Num::sign)),
        IntegerPow { y } => numeric!(x(), v => map(v, |a| ipow(a, *y))),
        Sin => float_unary(x(), f32::sin, f64::sin),
        Cos => float_unary(x(), f32::cos, f64::cos),
        Tan => float_unary(x(), f32::tan, f64::tan),
        Exp => float_unary(x(), f32::exp, f64::exp),
        Log => float_unary(x(), f32::ln, f64::ln),
        Log1p => float_unary(x(), f32::ln_1p, f64::ln_1p),
        Expm1 => float_unary(x(), f32::exp_m1, f64::exp_m1),
        Tanh => float_unary(x(), f32::tanh, f64::tanh),
        Logistic => float_unary(
            x(),
            |a| 1.0 / (1.0 + (-a).exp()),
            |a| 1.0 / (1.0 + (-a).exp()),
        ),
        Sqrt => float_unary(x(), f32::sqrt, f64::sqrt),
        Rsqrt => float_unary(x(), |a| 1.0 / a.sqrt(), |a| 1.0 / a.sqrt()),
        Floor => float_unary(x(), f32::floor, f64::floor),
        Ceil => float_unary(x(), f32::ceil, f64::ceil),
        Round => float_unary(x(), f32::round, f64::round),
        Erf => float_unary(x(), libm::erff, libm::erf),
        Add => numeric2!(x(), y(), a, b => zip(a, b, Num::add)),
        Sub => numeric2!(x(), y(), a, b => zip(a, b, Num::sub)),
        Mul => numeric2!(x(), y(), a, b => zip(a, b, Num::mul)),
        Div => numeric2!(x(), y(), a, b => zip(a, b, Num::div)),
        Max => numeric2!(x(), y(), a, b => zip(a, b, Num::max_nan)),
        Min => numeric2!(x(), y(), a, b => zip(a, b, Num::min_nan)),
        Pow => float_binary(x(), y(), f32::powf, f64::powf),
        Atan2 => float_binary(x(), y(), f32::atan2, f64::atan2),
        Eq => compare(x(), y(), |o| o.is_eq(), true),
        Ne => compare(x(), y(), |o| o.is_ne(), true),
        Lt => compare(x(), y(), |o| o.is_lt(), false),
        Le => compare(x(), y(), |o| o.is_le(), false),
        Gt => compare(x(), y(), |o| o.is_gt(), false),
        Ge => compare(x(), y(), |o| o.is_ge(), false),
        Select => {
            let Data::Bool(p) = x() else {
                unreachable!("the shape rule admits a bool predicate only")
            };
            match (y(), args[2].data()) {
                (Data::F32(t), Data::F32(f)) => Data::F32(select(p, t, f)),
                (Data::F64(t), Data::F64(f)) => Data::F64(select(p, t, f)),
                (Data::I32(t), Data::I32(f)) => Data::I32(select(p, t, f)),
                (Data::I64(t), Data::I64(f)) => Data::I64(select(p, t, f)),
                (Data::Bool(t), Data::Bool(f)) => Data::Bool(select(p, t, f)),
                _ => unreachable!("the shape rule admits equal case dtypes only"),
            }
        }
        ConvertElementType { new_dtype } => convert(x(), *new_dtype),
        ReduceSum { axes } => numeric!(x(), v => reduce(v, shape(), axes, Num::ZERO, Num::add)),
        ReduceMax { axes } => {
            numeric!(x(), v => reduce(v, shape(), axes, Num::LOWEST, Num::max_nan))
        }
        ReduceMin { axes } => {
            numeric!(x(), v => reduce(v, shape(), axes, Num::HIGHEST, Num::min_nan))
        }
        Argmax { axis, index_dtype } => {
            let idx = match x() {
                Data::F32(v) => argmax(v, shape(), *axis),
                Data::F64(v) => argmax(v, shape(), *axis),
                Data::I32(v) => argmax(v, shape(), *axis),
                Data::I64(v) => argmax(v, shape(), *axis),
                Data::Bool(_) => unreachable!("the shape rule admits numeric operands only"),
            };
            match index_dtype {
                DType::I32 => Data::I32(idx.iter().map(|&i| i as i32).collect()),
                _ => Data::I64(idx),
            }
        }
        BroadcastInDim {
            broadcast_dimensions: bd,
            ..
        } => {
            let ist = strides(shape());
            let src = source_indices(&out.shape, |o| {
                bd.iter()
                    .enumerate()
                    .map(|(i, &d)| if shape()[i] == 1 { 0 } else { o[d] * ist[i] })
                    .sum()
            });
            gather_data(x(), &src)
        }
        // Row-major order is unchanged by these: the buffer is shared as it is.
        Reshape { .. } | Squeeze { .. } | ExpandDims { .. } => x().clone(),
        Transpose { permutation } => {
            let ist = strides(shape());
            let src = source_indices(&out.shape, |o| {
                permutation
                    .iter()
                    .enumerate()
                    .map(|(i, &p)| o[i] * ist[p])
                    .sum()
            });
            gather_data(x(), &src)
        }
        Slice {
            start, strides: sd, ..
        } => {
            let ist = strides(shape());
            let src = source_indices(&out.shape, |o| {
                (0..o.len())
                    .map(|d| (start[d] + o[d] * sd[d]) * ist[d])
                    .sum()
            });
            gather_data(x(), &src)
        }
        Rev { dimensions } => {
            let ist = strides(shape());
            let src = source_indices(&out.shape, |o| {
                (0..o.len())
                    .map(|d| {
                        let i = if dimensions.contains(&d) {
                            shape()[d] - 1 - o[d]
                        } else {
                            o[d]
                        };
                        i * ist[d]
                    })
                    .sum()
            });
            gather_data(x(), &src)
        }
        Pad { low, interior, .. } => {
            // Source index per output element, with `usize::MAX` marking padding.
            let ist = strides(shape());
            let src = source_indices(&out.shape, |o| {
                let mut s = 0;
                for d in 0..o.len() {
                    let Some(p) = o[d].checked_sub(low[d]) else {
                        return usize::MAX;
                    };
                    let step = interior[d].saturating_add(1);
                    if p % step != 0 || p / step >= shape()[d] {
                        return usize::MAX;
                    }
                    s += (p / step) * ist[d];
                }
                s
            });
            let fill = args[1].data().get(0);
            let pick = |k: usize| if k == usize::MAX { fill } else { x().get(k) };
            Data::from_scalars(out.dtype, src.iter().map(|&k| pick(k)))
        }
        Concatenate { dimension } => {
            let d = *dimension;
            let lens: Vec<usize> = args.iter().map(|a| a.shape()[d]).collect();
            let all_strides: Vec<Vec<usize>> = args.iter().map(|a| strides(a.shape())).collect();
            // For each output element: which operand, and its flat index there.
            let mut picks = Vec::with_capacity(out.size());
            for_each_index(&out.shape, |o| {
                let (mut pos, mut k) = (o[d], 0);
                while pos >= lens[k] {
                    pos -= lens[k];
                    k += 1;
                }
                let mut idx = o.to_vec();
                idx[d] = pos;
                picks.push((k, flat(&idx, &all_strides[k])));
            });
            Data::from_scalars(out.dtype, picks.iter().map(|&(k, i)| args[k].data().get(i)))
        }
        Iota {
            dtype,
            shape,
            dimension,
        } => Array::iota_in_range(shape, *dimension, *dtype)?
            .data()
            .clone(),
        DotGeneral {
            lhs_contracting: lc,
            rhs_contracting: rc,
            lhs_batch: lb,
            rhs_batch: rb,
        } => {
            let (l, r) = (args[0], args[1]);
            let lfree: Vec<usize> = (0..l.ndim())
                .filter(|d| !lc.contains(d) && !lb.contains(d))
                .collect();
            let rfree: Vec<usize> = (0..r.ndim())
                .filter(|d| !rc.contains(d) && !rb.contains(d))
                .collect();
            let size =
                |a: &Array, dims: &[usize]| dims.iter().map(|&d| a.shape()[d]).product::<usize>();
            let (b, m, k, n) = (size(l, lb), size(l, &lfree), size(l, lc), size(r, &rfree));
            // Bring the operands to [batch, free, contracting] and [batch, contracting, free].
            let lperm: Vec<usize> = lb.iter().chain(&lfree).chain(lc).copied().collect();
            let rperm: Vec<usize> = rb.iter().chain(rc).chain(&rfree).copied().collect();
            let lt = transpose_data(l, &lperm);
            let rt = transpose_data(r, &rperm);
            numeric2!(&lt, &rt, a, c => batched_matmul(a, c, b, m, k, n)?)
        }
        Cumsum { axis, reverse } => numeric!(x(), v => cumsum(v, shape(), *axis, *reverse)),
    })
}

fn transpose_data(a: &Array, perm: &[usize]) -> Data {
    if perm.iter().enumerate().all(|(i, &p)| i == p) {
        return a.data().clone();
    }
    let ist = strides(a.shape());
    let out_shape: Vec<usize> = perm.iter().map(|&p| a.shape()[p]).collect();
    let src = source_indices(&out_shape, |o| {
        perm.iter().enumerate().map(|(i, &p)| o[i] * ist[p]).sum()
    });
    gather_data(a.data(), &src)
}

fn select<T: Copy>(p: &[bool], t: &[T], f: &[T]) -> Vec<T> {
    p.iter()
        .zip(t.iter().zip(f))
        .map(|(&c, (&a, &b))| if c { a } else { b })
        .collect()
}

fn convert(x: &Data, to: DType) -> Data {
    Data::from_scalars(to, (0..x.len()).map(|i| x.get(i).cast(to)))
}

impl Data {
    /// Collects scalars of one dtype into a buffer of that dtype.
    pub(crate) fn from_scalars(dtype: DType, it: impl Iterator<Item = Scalar>) -> Data {
        macro_rules! collect {
            ($v:ident) => {
                Data::$v(
                    it.map(|s| match s.cast(dtype) {
                        Scalar::$v(x) => x,
                        _ => unreachable!("cast gives the requested dtype"),
                    })
                    .collect(),
                )
            };
        }
        match dtype {
            DType::F32 => collect!(F32),
            DType::F64 => collect!(F64),
            DType::I32 => collect!(I32),
            DType::I64 => collect!(I64),
            DType::Bool => collect!(Bool),
        }
    }
}
