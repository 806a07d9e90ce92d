//! The reference evaluator's kernels: plain loops over row-major buffers.
//!
//! Generic over the element type where the meaning is generic (`Num`), written for clarity
//! rather than speed: the compiled CPU backend has the fast versions and is tested against
//! these. `max_nan`/`min_nan` are the one definition of the NaN rule every evaluator shares.

use crate::ir::{strides, Array, DType, Data, Element, Error, Result, Scalar};

/// Arithmetic on the numeric element types. Integer arithmetic wraps (as XLA's does).
pub(super) trait Num: Element + PartialOrd {
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
pub(super) fn ipow<T: Num>(x: T, y: i32) -> T {
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

pub(super) fn zip<T: Copy, U>(a: &[T], b: &[T], f: impl Fn(T, T) -> U) -> Vec<U> {
    a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect()
}

pub(super) fn map<T: Copy, U>(a: &[T], f: impl Fn(T) -> U) -> Vec<U> {
    a.iter().map(|&x| f(x)).collect()
}

/// A float-only elementwise function, given for both float widths.
pub(super) fn float_unary(x: &Data, f32f: impl Fn(f32) -> f32, f64f: impl Fn(f64) -> f64) -> Data {
    match x {
        Data::F32(v) => Data::F32(map(v, f32f)),
        Data::F64(v) => Data::F64(map(v, f64f)),
        _ => unreachable!("the shape rule admits float operands only"),
    }
}

pub(super) fn float_binary(
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

pub(super) fn compare(
    a: &Data,
    b: &Data,
    f: impl Fn(std::cmp::Ordering) -> bool,
    eq_only: bool,
) -> Data {
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
pub(super) fn for_each_index(shape: &[usize], mut f: impl FnMut(&[usize])) {
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
pub(super) fn source_indices(
    out_shape: &[usize],
    mut src: impl FnMut(&[usize]) -> usize,
) -> Vec<usize> {
    let mut v = Vec::with_capacity(out_shape.iter().product());
    for_each_index(out_shape, |i| v.push(src(i)));
    v
}

pub(super) fn gather<T: Copy>(x: &[T], src: &[usize]) -> Vec<T> {
    src.iter().map(|&i| x[i]).collect()
}

pub(super) fn gather_data(x: &Data, src: &[usize]) -> Data {
    any_dtype!(x, v => gather(v, src))
}

/// The first element of `x`, `n` times.
pub(super) fn repeat(x: &Data, n: usize) -> Data {
    any_dtype!(x, v => vec![v[0]; n])
}

pub(super) fn flat(idx: &[usize], strides: &[usize]) -> usize {
    idx.iter().zip(strides).map(|(i, s)| i * s).sum()
}

pub(super) fn reduce<T: Num>(
    x: &[T],
    shape: &[usize],
    axes: &[usize],
    init: T,
    f: impl Fn(T, T) -> T,
) -> Vec<T> {
    if axes.is_empty() {
        // each output element is the "sum" of one element: itself (not `init + x`, which
        // would turn -0.0 into +0.0)
        return x.to_vec();
    }
    let out_shape: Vec<usize> = (0..shape.len())
        .filter(|d| !axes.contains(d))
        .map(|d| shape[d])
        .collect();
    // Fast paths with the same order of accumulation as the general loop below (each output
    // element folds its operand elements in row-major order), so the same bits: the reduced
    // axes are the trailing ones (each output folds one contiguous block; every axis reduced
    // is the case of one block), or the leading ones (each block of the operand is folded
    // into the whole output, elementwise).
    let r = axes.len();
    let n_out: usize = out_shape.iter().product();
    let sorted = {
        let mut a = axes.to_vec();
        a.sort_unstable();
        a
    };
    let trailing = sorted
        .iter()
        .enumerate()
        .all(|(k, &d)| d == shape.len() - r + k);
    let leading = sorted.iter().enumerate().all(|(k, &d)| d == k);
    if trailing && n_out > 0 {
        if x.is_empty() {
            return vec![init; n_out];
        }
        let block = x.len() / n_out;
        return x
            .chunks(block)
            .map(|c| c.iter().fold(init, |acc, &v| f(acc, v)))
            .collect();
    }
    if leading && n_out > 0 {
        let mut out = vec![init; n_out];
        for c in x.chunks(n_out) {
            for (o, &v) in out.iter_mut().zip(c) {
                *o = f(*o, v);
            }
        }
        return out;
    }
    reduce_general(x, shape, axes, &out_shape, init, f)
}

/// [`reduce`] over any axes: each operand element, in row-major order, folded into its
/// output element.
pub(super) fn reduce_general<T: Num>(
    x: &[T],
    shape: &[usize],
    axes: &[usize],
    out_shape: &[usize],
    init: T,
    f: impl Fn(T, T) -> T,
) -> Vec<T> {
    let ostr = strides(out_shape);
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

/// The index of the first maximum (`min`: minimum) along `axis`, a NaN counting as the
/// extremum.
pub(super) fn argmax<T: Num>(x: &[T], shape: &[usize], axis: usize, min: bool) -> Vec<i64> {
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
                if (!min && v > best) || (min && v < best) {
                    best = v;
                    bi = k;
                }
            }
        }
        out.push(bi as i64);
    });
    out
}

pub(super) fn cumsum<T: Num>(x: &[T], shape: &[usize], axis: usize, reverse: bool) -> Vec<T> {
    if x.is_empty() {
        // the loop below runs over every other dimension even when the scanned one is empty
        return vec![];
    }
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
pub(super) fn batched_matmul<T: Num>(
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
pub(super) fn gemm_into<T: Num>(
    dst: &mut [T],
    l: &[T],
    r: &[T],
    m: usize,
    k: usize,
    n: usize,
) -> bool {
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

pub(super) fn transpose_data(a: &Array, perm: &[usize]) -> Data {
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

pub(super) fn select<T: Copy>(p: &[bool], t: &[T], f: &[T]) -> Vec<T> {
    p.iter()
        .zip(t.iter().zip(f))
        .map(|(&c, (&a, &b))| if c { a } else { b })
        .collect()
}

pub(super) fn convert(x: &Data, to: DType) -> Data {
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

pub(super) use {numeric, numeric2};
