//! Random numbers from keys, as JAX's `jax.random`: a key is a value (an `i32[2]` tensor),
//! never hidden state, so a draw is a pure function of its key.
//!
//! [`key`] makes one from a seed; [`split`] and [`fold_in`] derive new ones; the samplers
//! ([`uniform`], [`normal`], [`randint`], [`exponential`], [`laplace`], [`bernoulli`],
//! [`categorical`], [`permutation`], [`shuffle`], [`bits`]) turn a key into values. Every word comes from the `threefry2x32` primitive encrypting a counter
//! (the element's position) under the key, so a draw is reproducible bit for bit across
//! runs, threads and backends, and is a traced computation like any other: inside `jit` it
//! is recomputed from the key on every call (not a frozen constant), `vmap` over keys draws
//! per example (a batched `split` splits each key), and `scan` can carry a key.
//!
//! The streams are ferrax's own: the same seed does not give JAX's numbers.

use crate::ir::{DType, Error, Primitive, Result, SourceLoc};
use crate::surface::slicing::SliceItem;
use crate::surface::Operand;
use crate::trace::{bind, fail, try_t, Tensor};

/// A key from a 64-bit seed: its high and low words.
pub fn key(seed: u64) -> Tensor {
    let words = [(seed >> 32) as u32 as i32, seed as u32 as i32];
    Tensor::from_vec(words.to_vec(), &[2])
}

fn check_key(op: &str, key: &Tensor) -> Result<()> {
    let a = key.aval()?;
    if a.dtype != DType::I32 || a.shape != [2] {
        return Err(Error::dtype(
            op,
            format!("a PRNG key is i32[2] (from random::key), got {a}"),
        ));
    }
    Ok(())
}

/// `n` pairs of words: the encryption of the counters `(0, 0), (0, 1), ...` under `key`.
fn words(op: &str, key: &Tensor, n: usize, loc: SourceLoc) -> Tensor {
    if let Some(e) = key.error() {
        return Tensor::failed(e.clone());
    }
    try_t!(check_key(op, key), loc);
    if n > i32::MAX as usize {
        return fail(
            Error::exhausted(
                op,
                format!("{n} values asked of one key; at most {} at once", i32::MAX),
            )
            .with_loc(loc),
        );
    }
    let counter = bind(
        Primitive::Iota {
            dtype: DType::I32,
            shape: vec![n, 1],
            dimension: 0,
        },
        &[],
        loc,
    );
    let high = Tensor::zeros(&[n, 1], DType::I32);
    let counters = Tensor::concatenate(&[high, counter], 1);
    let keys = key.reshape(&[1, 2]).broadcast_to(&[n, 2]);
    bind(Primitive::Threefry2x32, &[&keys, &counters], loc)
}

/// `num` new keys from `key` (an `i32[num, 2]`): independent of each other and of `key`.
#[track_caller]
pub fn split(key: &Tensor, num: usize) -> Tensor {
    words("split", key, num, SourceLoc::caller())
}

/// A new key from `key` and an integer (`i32` scalar tensor): for a key per step of a
/// loop, per example, per layer.
#[track_caller]
pub fn fold_in(key: &Tensor, data: &Tensor) -> Tensor {
    let loc = SourceLoc::caller();
    if let Some(e) = key.error().or(data.error()) {
        return Tensor::failed(e.clone());
    }
    try_t!(check_key("fold_in", key), loc);
    let d = try_t!(data.aval(), loc);
    if d.dtype != DType::I32 || d.ndim() != 0 {
        return fail(Error::DType {
            op: "fold_in".into(),
            msg: format!("folds in an i32 scalar, got {d}"),
            loc: Some(loc),
        });
    }
    let counter = Tensor::concatenate(&[Tensor::zeros(&[1], DType::I32), data.reshape(&[1])], 0);
    bind(Primitive::Threefry2x32, &[key, &counter], loc)
}

/// How many values a draw of `shape` holds, or an error when the shape's size overflows
/// (the draw's own limit, `i32::MAX` values, is checked by `words`).
fn draw_size(op: &str, shape: &[usize]) -> Result<usize> {
    let too_big = || {
        Error::exhausted(
            op,
            format!("a draw of shape {shape:?} has more values than a usize counts"),
        )
    };
    if shape.iter().any(|&d| d > isize::MAX as usize) {
        return Err(too_big());
    }
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(too_big)
}

/// Random 32-bit words of `shape` (as `i32` bit patterns).
#[track_caller]
pub fn bits(key: &Tensor, shape: &[usize]) -> Tensor {
    let loc = SourceLoc::caller();
    let n = try_t!(draw_size("bits", shape), loc);
    let w = words("bits", key, n, loc);
    let s: Vec<isize> = shape.iter().map(|&d| d as isize).collect();
    w.slice_axis(1, 0, 1).reshape(&s)
}

/// A word pattern read as the unsigned number it is, exactly, in f64.
fn unsigned(w: &Tensor) -> Tensor {
    let f = w.astype(DType::F64);
    Tensor::where_(&w.less(0i64), &f + 4294967296.0, &f)
}

/// Uniform in `[0, 1)`, f64 (53 random bits from the two words of each counter) or f32
/// (24 bits).
fn unit(op: &str, key: &Tensor, shape: &[usize], dtype: DType, loc: SourceLoc) -> Tensor {
    if !dtype.is_float() {
        return fail(Error::DType {
            op: op.into(),
            msg: format!("draws floats, asked for {dtype}"),
            loc: Some(loc),
        });
    }
    let n = try_t!(draw_size(op, shape), loc);
    let w = words(op, key, n, loc);
    if let Some(e) = w.error() {
        return Tensor::failed(e.clone());
    }
    let hi = unsigned(&w.slice_axis(1, 0, 1));
    let u = match dtype {
        DType::F64 => {
            let lo = unsigned(&w.slice_axis(1, 1, 2));
            (hi * 2f64.powi(21) + (lo / 2048.0).floor()) * 2f64.powi(-53)
        }
        _ => ((hi / 256.0).floor() * 2f64.powi(-24)).astype(DType::F32),
    };
    let s: Vec<isize> = shape.iter().map(|&d| d as isize).collect();
    u.reshape(&s)
}

/// Uniform on `[low, high)` of `shape` and a float `dtype`.
#[track_caller]
pub fn uniform(key: &Tensor, shape: &[usize], low: f64, high: f64, dtype: DType) -> Tensor {
    let u = unit("uniform", key, shape, dtype, SourceLoc::caller());
    u * (high - low) + low
}

/// Standard normal of `shape` and a float `dtype` (Box-Muller on two uniforms per value).
#[track_caller]
pub fn normal(key: &Tensor, shape: &[usize], dtype: DType) -> Tensor {
    let loc = SourceLoc::caller();
    let mut two = vec![2];
    two.extend_from_slice(shape);
    let u = unit("normal", key, &two, DType::F64, loc);
    if let Some(e) = u.error().cloned().or_else(|| {
        (!dtype.is_float()).then(|| Error::DType {
            op: "normal".into(),
            msg: format!("draws floats, asked for {dtype}"),
            loc: Some(loc),
        })
    }) {
        return Tensor::failed(e);
    }
    let r = shape.len() as isize;
    let first = |k: usize| {
        let mut idx = vec![SliceItem::Index(k as isize)];
        idx.extend(std::iter::repeat_n(SliceItem::from(..), r as usize));
        u.s(&idx)
    };
    // 1 - u is in (0, 1]: its logarithm is finite
    let radius = ((1.0 - first(0)).log() * -2.0).sqrt();
    let angle = first(1) * std::f64::consts::TAU;
    (radius * angle.cos()).astype(dtype)
}

/// Integers uniform on `[low, high)` of `shape` and an integer `dtype` (`jax.random.randint`):
/// the floor of a 53-bit uniform scaled to the range. Ranges up to `2^53` are exact (bias
/// below `2^-53` per value); wider ones (up to all of i64) reach only every `2^k`-th value,
/// as f64 does. An empty range, or one the dtype cannot hold, is an error.
#[track_caller]
pub fn randint(key: &Tensor, shape: &[usize], low: i64, high: i64, dtype: DType) -> Tensor {
    let loc = SourceLoc::caller();
    let fits = match dtype {
        DType::I32 => low >= i32::MIN as i64 && high - 1 <= i32::MAX as i64,
        DType::I64 => true,
        _ => false,
    };
    if !fits || high <= low {
        return fail(Error::Input {
            op: "randint".into(),
            msg: format!(
                "draws integers of i32 or i64 from a nonempty range the dtype holds, asked for {dtype} in [{low}, {high})"
            ),
            loc: Some(loc),
        });
    }
    let u = unit("randint", key, shape, DType::F64, loc);
    let span = high as f64 - low as f64;
    // in f64 from `low`, then clamped into the range in integers (rounding of wide ranges
    // may land on `high`, or convert to i64's saturated ends)
    let v = ((u * span).floor() + low as f64).astype(DType::I64);
    v.maximum(low).minimum(high - 1).astype(dtype)
}

/// Exponential with rate 1 (`jax.random.exponential`): `-log(1 - u)`.
#[track_caller]
pub fn exponential(key: &Tensor, shape: &[usize], dtype: DType) -> Tensor {
    let u = unit("exponential", key, shape, DType::F64, SourceLoc::caller());
    u.neg().log1p().neg().astype(dtype)
}

/// Laplace with scale 1 (`jax.random.laplace`): the inverse CDF of a uniform on (-1, 1).
#[track_caller]
pub fn laplace(key: &Tensor, shape: &[usize], dtype: DType) -> Tensor {
    let u = unit("laplace", key, shape, DType::F64, SourceLoc::caller()) * 2.0 - 1.0;
    (u.sign().neg() * u.abs().neg().log1p()).astype(dtype)
}

/// `true` with probability `p` (a number, or a tensor broadcast against `shape`).
#[track_caller]
pub fn bernoulli(key: &Tensor, p: impl Into<Operand>, shape: &[usize]) -> Tensor {
    let u = unit("bernoulli", key, shape, DType::F64, SourceLoc::caller());
    u.less(p)
}

/// Indices drawn from the softmax of `logits` along `axis` (the Gumbel-max trick): one
/// per position of the other axes, as i64.
#[track_caller]
pub fn categorical(key: &Tensor, logits: &Tensor, axis: isize) -> Tensor {
    let loc = SourceLoc::caller();
    let d = try_t!(logits.aval(), loc).dtype;
    let u = unit("categorical", key, logits.shape(), d, loc);
    // -log(-log u): u = 0 gives -inf, never the argmax
    let gumbel = u.log().neg().log().neg();
    (logits + gumbel).argmax(axis)
}

/// A random permutation of `0..n` (i64).
#[track_caller]
pub fn permutation(key: &Tensor, n: usize) -> Tensor {
    let u = unit("permutation", key, &[n], DType::F64, SourceLoc::caller());
    u.argsort(0)
}

/// `x` with its elements along `axis` in a random order.
#[track_caller]
pub fn shuffle(key: &Tensor, x: &Tensor, axis: isize) -> Tensor {
    let loc = SourceLoc::caller();
    let ax = try_t!(crate::surface::axis_of("shuffle", axis, x.ndim()), loc);
    let order = permutation(key, x.shape()[ax]);
    x.take(&order, axis)
}
