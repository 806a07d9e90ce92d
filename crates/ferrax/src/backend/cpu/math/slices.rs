//! Slice kernels: the math functions applied over buffers, the choice of kernel per
//! function ([`fast`]), and splitting long loops over threads ([`chunked`]).

use super::{cos_f32s, sin_f32s, tanh_f32};

/// The float functions of one operand the CPU backend has slice kernels for ([`fast`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unary {
    Neg,
    Abs,
    Sqrt,
    Rsqrt,
    Exp,
    Expm1,
    Log,
    Tanh,
    Logistic,
    Sin,
    Cos,
}

/// Elements above which kernels split work across threads.
const PARALLEL_THRESHOLD: usize = 1 << 16;

/// The threads a kernel may split its work across: rayon's, except on a thread running one
/// of several members of a `named_map` (the members are the parallelism there; kernels
/// splitting again would only contend for the same cores).
pub(crate) fn threads() -> usize {
    if crate::backend::cpu::spmd::one_of_several_members() {
        1
    } else {
        rayon::current_num_threads()
    }
}

/// Calls `f(offset, chunk)` over `out`, in parallel chunks when it is large.
pub(crate) fn chunked<T: Send + Sync + Copy>(out: &mut [T], f: impl Fn(usize, &mut [T]) + Sync) {
    use rayon::prelude::*;
    let n = out.len();
    if n >= PARALLEL_THRESHOLD && threads() > 1 {
        let chunk = n.div_ceil(threads() * 4).max(4096);
        out.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, c)| f(i * chunk, c));
    } else {
        f(0, out);
    }
}

/// A slice kernel: `out[i] = f(xs[i])`.
pub type SliceFn64 = fn(&[f64], &mut [f64]);
/// A slice kernel for f32 (computed through f64).
pub type SliceFn32 = fn(&[f32], &mut [f32]);

/// `fn $name(xs, out)` running the `#[inline(always)]` loop `$any` compiled for AVX2 + FMA
/// where the CPU has them (detected at run time, so the plain release build a user makes
/// gets them), for the build's own target otherwise. Both compile the same IEEE operations
/// in the same order per element (Rust never contracts a multiply and an add into a fused
/// one), so they give the same bits.
macro_rules! avx2_or_baseline {
    ($(#[$doc:meta])* $vis:vis fn $name:ident($t:ty) = $any:expr) => {
        $(#[$doc])*
        $vis fn $name(xs: &[$t], out: &mut [$t]) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn wide(xs: &[$t], out: &mut [$t]) {
                    $any(xs, out)
                }
                if $crate::backend::cpu::math::has_avx2() {
                    // SAFETY: the CPU has AVX2 and FMA, checked just above
                    return unsafe { wide(xs, out) };
                }
            }
            $any(xs, out)
        }
    };
}
pub(crate) use avx2_or_baseline;

/// [`avx2_or_baseline!`] with an AVX-512 copy tried first: for the polynomials that measured
/// faster at sixteen lanes (exp, expm1, log, logistic, tanh: 1.3-1.8× here; the f32 sin/cos
/// reduction measured 3.6× slower with AVX-512, so it stays at AVX2).
macro_rules! widest_or_baseline {
    ($(#[$doc:meta])* $vis:vis fn $name:ident($t:ty) = $any:expr) => {
        $(#[$doc])*
        $vis fn $name(xs: &[$t], out: &mut [$t]) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,fma")]
                unsafe fn w512(xs: &[$t], out: &mut [$t]) {
                    $any(xs, out)
                }
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU has AVX-512F and FMA, checked just above (every
                    // AVX-512 CPU has FMA, but a hypervisor may hide features one by one)
                    return unsafe { w512(xs, out) };
                }
            }
            $crate::backend::cpu::math::slices::avx2_or_baseline! {
                fn narrower($t) = $any
            }
            narrower(xs, out)
        }
    };
}
pub(crate) use widest_or_baseline;

macro_rules! slice_kernels {
    ($($name:ident: $elem:expr, $fix:expr;)*) => {
        $(
            pub mod $name {
                #[inline(always)]
                fn any64(xs: &[f64], out: &mut [f64]) {
                    let f = $elem;
                    for (o, &x) in out.iter_mut().zip(xs) {
                        *o = f(x);
                    }
                    let fix: Option<fn(f64) -> Option<f64>> = $fix;
                    if let Some(fix) = fix {
                        for (o, &x) in out.iter_mut().zip(xs) {
                            if let Some(v) = fix(x) {
                                *o = v;
                            }
                        }
                    }
                }
                #[inline(always)]
                fn any32(xs: &[f32], out: &mut [f32]) {
                    let f = $elem;
                    for (o, &x) in out.iter_mut().zip(xs) {
                        *o = f(x as f64) as f32;
                    }
                    let fix: Option<fn(f64) -> Option<f64>> = $fix;
                    if let Some(fix) = fix {
                        for (o, &x) in out.iter_mut().zip(xs) {
                            if let Some(v) = fix(x as f64) {
                                *o = v as f32;
                            }
                        }
                    }
                }
                super::widest_or_baseline! {
                    /// f64 slice kernel.
                    pub fn f64s(f64) = any64
                }
                super::widest_or_baseline! {
                    /// f32 slice kernel, through f64 (for sin, cos and tanh the f32-arithmetic
                    /// kernels measured faster; this route stays for comparison).
                    #[allow(dead_code)]
                    pub fn f32s(f32) = any32
                }
            }
        )*
    };
}

// The trigonometric kernels run the vectorized reduction everywhere, then patch the rare
// elements beyond its range (and NaN/inf) with the platform's functions in a second pass.
slice_kernels! {
    exp: super::super::exp_f64, None;
    expm1: super::super::expm1_f64, None;
    log: super::super::log_f64, None;
    tanh: super::super::tanh_f64, None;
    logistic: super::super::logistic_f64, None;
    sin: |x: f64| super::super::sin_reduced(x, 0), Some(|x: f64| super::super::needs_libm(x).then(|| x.sin()));
    cos: |x: f64| super::super::sin_reduced(x, 1), Some(|x: f64| super::super::needs_libm(x).then(|| x.cos()));
}

macro_rules! libm_kernels {
    ($($name:ident: $f32:expr, $f64:expr;)*) => {
        $(
            pub mod $name {
                /// f64 slice kernel through the platform's libm.
                pub fn f64s(xs: &[f64], out: &mut [f64]) {
                    let f: fn(f64) -> f64 = $f64;
                    for (o, &x) in out.iter_mut().zip(xs) {
                        *o = f(x);
                    }
                }
                /// f32 slice kernel through the platform's libm (not chosen for sin and cos,
                /// kept for comparison).
                #[allow(dead_code)]
                pub fn f32s(xs: &[f32], out: &mut [f32]) {
                    let f: fn(f32) -> f32 = $f32;
                    for (o, &x) in out.iter_mut().zip(xs) {
                        *o = f(x);
                    }
                }
            }
        )*
    };
}

/// The platform's scalar functions as slice kernels (the choice where they measured faster).
pub mod libm {
    libm_kernels! {
        sin: f32::sin, f64::sin;
        cos: f32::cos, f64::cos;
        exp: f32::exp, f64::exp;
        log: f32::ln, f64::ln;
        expm1: f32::exp_m1, f64::exp_m1;
        tanh: f32::tanh, f64::tanh;
        logistic: |x: f32| 1.0 / (1.0 + (-x).exp()), |x: f64| 1.0 / (1.0 + (-x).exp());
    }
}

widest_or_baseline! {
    /// tanh on f32 slices in f32 arithmetic ([`tanh_f32`]), with AVX-512 or AVX2 vectors
    /// where the CPU has them (detected at run time, so a build without `target-cpu` flags
    /// gets them too). Every route performs the same IEEE operations element by element,
    /// the same fused multiply-adds where [`tanh_f32`] asks for them (`mul_add`; Rust never
    /// contracts others), so they agree bit for bit.
    pub fn tanh_f32s(f32) = tanh_f32s_portable
}

/// [`tanh_f32s`] without run-time detection, for the build's own target features.
#[inline(always)]
pub(crate) fn tanh_f32s_portable(xs: &[f32], out: &mut [f32]) {
    for (o, &x) in out.iter_mut().zip(xs) {
        *o = tanh_f32(x);
    }
}

/// ferrax's vectorizable kernels of a unary float function (tested for accuracy whatever
/// [`fast`] chooses); `None` for the functions that need no polynomial.
pub(crate) fn vectorized(u: Unary) -> Option<(SliceFn32, SliceFn64)> {
    Some(match u {
        Unary::Exp => (exp::f32s, exp::f64s),
        Unary::Expm1 => (expm1::f32s, expm1::f64s),
        Unary::Log => (log::f32s, log::f64s),
        Unary::Sin => (sin_f32s, sin::f64s),
        Unary::Cos => (cos_f32s, cos::f64s),
        Unary::Tanh => (tanh_f32s, tanh::f64s),
        Unary::Logistic => (logistic::f32s, logistic::f64s),
        Unary::Neg | Unary::Abs | Unary::Sqrt | Unary::Rsqrt => return None,
    })
}

macro_rules! simple_kernels {
    ($($name:ident: $x:ident => $e:expr;)*) => {
        $(
            mod $name {
                // one IEEE operation per element: the same bits at every vector width, so
                // the widest the CPU has is chosen at run time
                #[inline(always)]
                fn any64(xs: &[f64], out: &mut [f64]) {
                    for (o, &$x) in out.iter_mut().zip(xs) {
                        *o = $e;
                    }
                }
                #[inline(always)]
                fn any32(xs: &[f32], out: &mut [f32]) {
                    for (o, &$x) in out.iter_mut().zip(xs) {
                        *o = $e;
                    }
                }
                #[cfg(target_arch = "x86_64")]
                #[target_feature(enable = "avx512f")]
                unsafe fn w512_64(xs: &[f64], out: &mut [f64]) { any64(xs, out) }
                #[cfg(target_arch = "x86_64")]
                #[target_feature(enable = "avx512f")]
                unsafe fn w512_32(xs: &[f32], out: &mut [f32]) { any32(xs, out) }
                #[cfg(target_arch = "x86_64")]
                #[target_feature(enable = "avx2")]
                unsafe fn w256_64(xs: &[f64], out: &mut [f64]) { any64(xs, out) }
                #[cfg(target_arch = "x86_64")]
                #[target_feature(enable = "avx2")]
                unsafe fn w256_32(xs: &[f32], out: &mut [f32]) { any32(xs, out) }
                pub fn f64s(xs: &[f64], out: &mut [f64]) {
                    #[cfg(target_arch = "x86_64")]
                    {
                        if std::arch::is_x86_feature_detected!("avx512f") {
                            // SAFETY: the CPU has AVX-512F, checked just above
                            return unsafe { w512_64(xs, out) };
                        }
                        if std::arch::is_x86_feature_detected!("avx2") {
                            // SAFETY: the CPU has AVX2, checked just above
                            return unsafe { w256_64(xs, out) };
                        }
                    }
                    any64(xs, out)
                }
                pub fn f32s(xs: &[f32], out: &mut [f32]) {
                    #[cfg(target_arch = "x86_64")]
                    {
                        if std::arch::is_x86_feature_detected!("avx512f") {
                            // SAFETY: the CPU has AVX-512F, checked just above
                            return unsafe { w512_32(xs, out) };
                        }
                        if std::arch::is_x86_feature_detected!("avx2") {
                            // SAFETY: the CPU has AVX2, checked just above
                            return unsafe { w256_32(xs, out) };
                        }
                    }
                    any32(xs, out)
                }
            }
        )*
    };
}

// One instruction each: written as plain loops, which the compiler vectorizes.
simple_kernels! {
    neg: x => -x;
    abs: x => x.abs();
    sqrt: x => x.sqrt();
    rsqrt: x => 1.0 / x.sqrt();
}

/// The kernels plans use for a unary float function: whichever measured faster (see
/// `BENCHMARKS.md`). f32 sin and cos run in f32 arithmetic and beat libm everywhere
/// (5× for sin with AVX2: glibc's `sinf` mispredicts branches on normally distributed
/// inputs); on a CPU with AVX2 and FMA f32 tanh too (elsewhere its fused multiply-adds
/// would be library calls, so libm's tanh runs there, in f64 as well, as for exp and log),
/// and on a CPU with AVX2 (detected at run time) the f64-route polynomials also win for
/// exp, log, logistic, at AVX-512 width where the CPU has it; f64 sin/cos use libm (the f64
/// reduction measured 1.2× slower than glibc even at AVX-512 width).
pub(crate) fn fast(u: Unary) -> (SliceFn32, SliceFn64) {
    let simd = super::has_avx2();
    match u {
        Unary::Neg => (neg::f32s, neg::f64s),
        Unary::Abs => (abs::f32s, abs::f64s),
        Unary::Sqrt => (sqrt::f32s, sqrt::f64s),
        Unary::Rsqrt => (rsqrt::f32s, rsqrt::f64s),
        Unary::Tanh if simd => (tanh_f32s, tanh::f64s),
        Unary::Tanh => (libm::tanh::f32s, libm::tanh::f64s),
        Unary::Exp | Unary::Log | Unary::Logistic | Unary::Expm1 if simd => {
            vectorized(u).expect("ferrax has polynomials for these")
        }
        Unary::Exp => (libm::exp::f32s, libm::exp::f64s),
        Unary::Log => (libm::log::f32s, libm::log::f64s),
        Unary::Logistic => (libm::logistic::f32s, libm::logistic::f64s),
        Unary::Expm1 => (libm::expm1::f32s, libm::expm1::f64s),
        Unary::Sin => (sin_f32s, libm::sin::f64s),
        Unary::Cos => (cos_f32s, libm::cos::f64s),
    }
}
