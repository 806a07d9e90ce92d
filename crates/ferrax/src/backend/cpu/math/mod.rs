//! Fast CPU kernels behind the reference semantics.
//!
//! Used by compiled plans (`plan`, `fuse`); the reference evaluator (`backend::reference`) stays the definition,
//! and tests compare the two. Elementwise kernels are plain loops over slices that the
//! compiler vectorizes; the transcendental functions are branch-free range reductions and
//! polynomials (written to vectorize), in f64, with f32 computed through f64. Which kernel a
//! plan uses is chosen by measurement ([`fast_unary`]). Accuracy of ferrax's kernels:
//!
//! | function | f64 error vs libm (asserted in `tests/kernels.rs`) | f32 error |
//! |---|---|---|
//! | `exp`, `log` | ≤ 1 ulp | ≤ 1 ulp (0 observed) |
//! | `expm1`, `sin`, `cos` | ≤ 2 ulp | ≤ 1 ulp (f32 arithmetic for sin/cos) |
//! | `tanh` | ≤ 3 ulp | ≤ 2 ulp (f32 arithmetic, [`tanh_f32`], every f32 checked) |
//! | `logistic` | ≤ 4 ulp vs `1/(1 + exp(−x))` in libm | ≤ 1 ulp (0 observed) |
//!
//! `sin`/`cos` reduce arguments with a three-part Cody-Waite split of π/2, exact for
//! `|x| < 2^20`; larger arguments fall back to the platform's functions. Special values
//! (NaN, ±inf, ±0, subnormal inputs and results) follow IEEE as the reference does.

use std::f64::consts::{FRAC_PI_2, LOG2_E};

/// Adding and subtracting 1.5·2^52 rounds a float (|v| < 2^51) to the nearest integer with
/// plain additions (vectorizable, unlike `round()` on baseline x86-64), and the low bits of
/// the sum hold that integer in two's complement.
const SHIFT: f64 = 6755399441055744.0;

/// `(round(v) as f64, round(v) as i64)` for |v| < 2^51, branch- and call-free.
#[inline(always)]
fn round_split(v: f64) -> (f64, i64) {
    let t = v + SHIFT;
    (
        t - SHIFT,
        (t.to_bits() as i64).wrapping_sub(SHIFT.to_bits() as i64),
    )
}

/// `2^n` for `n` in `[-1022, 1023]`, by building the exponent bits.
#[inline(always)]
fn pow2i(n: i64) -> f64 {
    f64::from_bits(((n + 1023) as u64) << 52)
}

/// e^x for |x| ≤ ~0.35 (after reduction), Taylor to degree 13 (f64-exact there).
/// `c[0] + c[1]·x + … + c[n−1]·x^(n−1)` by Horner's rule, highest coefficient first (the
/// polynomials below all go through here; inlined, the constant tables unroll).
#[inline(always)]
fn horner<T: Copy + std::ops::Mul<Output = T> + std::ops::Add<Output = T>>(c: &[T], x: T) -> T {
    let (&last, rest) = c.split_last().expect("a polynomial has a coefficient");
    let mut p = last;
    for &k in rest.iter().rev() {
        p = p * x + k;
    }
    p
}

/// 1/k! for k = 0..=17: the Taylor coefficients of e^x (and, from k = 1, of (e^x − 1)/x).
const INV_FACTORIAL: [f64; 18] = [
    1.0,
    1.0,
    0.5,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5040.0,
    1.0 / 40320.0,
    1.0 / 362880.0,
    1.0 / 3628800.0,
    1.0 / 39916800.0,
    1.0 / 479001600.0,
    1.0 / 6227020800.0,
    1.0 / 87178291200.0,
    1.0 / 1307674368000.0,
    1.0 / 20922789888000.0,
    1.0 / 355687428096000.0,
];

/// e^r for the reduced argument (|r| ≤ ln2/2): Taylor to degree 13.
#[inline(always)]
fn exp_poly(r: f64) -> f64 {
    horner(&INV_FACTORIAL[..14], r)
}

// ln 2 split in two: the high part has trailing zero bits so n · LN2_HI is exact.
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);

/// e^x in f64, vectorizable.
#[inline(always)]
pub fn exp_f64(x: f64) -> f64 {
    let xc = x.clamp(-746.0, 710.0);
    let (n, ni) = round_split(xc * LOG2_E);
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    let p = exp_poly(r);
    // 2^n in two factors, so results near overflow and in the subnormal range come out right.
    let (_, h) = round_split(n * 0.5);
    let v = p * pow2i(h) * pow2i(ni - h);
    if x.is_nan() {
        x
    } else {
        v
    }
}

/// e^x − 1 in f64, accurate near 0.
#[inline(always)]
pub fn expm1_f64(x: f64) -> f64 {
    // Taylor for |x| < 0.5 (degree 17), e^x − 1 otherwise (no cancellation there).
    let p = horner(&INV_FACTORIAL[1..], x);
    let small = x * p;
    let large = exp_f64(x) - 1.0;
    if x.abs() < 0.5 {
        small
    } else {
        large
    }
}

/// ln(x) in f64, vectorizable.
#[inline(always)]
pub fn log_f64(x: f64) -> f64 {
    // x = m · 2^e with m in [√½, √2); ln(m) = 2 atanh(s), s = (m − 1)/(m + 1).
    let sub = x < f64::MIN_POSITIVE;
    let xs = if sub { x * 18014398509481984.0 } else { x }; // 2^54
    let bits = xs.to_bits();
    let mut e = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    if sub {
        e -= 54;
    }
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    // ln(1 + f) = 2 atanh(s) = 2s + s·R with R = 2(z/3 + z²/5 + ...), |s| ≤ 0.1716. Written
    // as f − (f²/2 − s(f²/2 + R)) (2s = f − s·f), so the exact f leads and the rest is a
    // small correction: below an ulp of rounding near x = 1.
    const C: [f64; 11] = [
        2.0 / 3.0,
        2.0 / 5.0,
        2.0 / 7.0,
        2.0 / 9.0,
        2.0 / 11.0,
        2.0 / 13.0,
        2.0 / 15.0,
        2.0 / 17.0,
        2.0 / 19.0,
        2.0 / 21.0,
        2.0 / 23.0,
    ];
    let r = horner(&C, z);
    let r = z * r;
    let hfsq = 0.5 * f * f;
    let ef = e as f64;
    let v = ef * LN2_HI + (f - (hfsq - (s * (hfsq + r) + ef * LN2_LO)));
    if x.is_nan() || x == f64::INFINITY {
        x
    } else if x < 0.0 {
        f64::NAN
    } else if x == 0.0 {
        f64::NEG_INFINITY
    } else {
        v
    }
}

// π/2 in three parts, each with few enough bits that k · part is exact for |k| < 2^20.
const PIO2_1: f64 = f64::from_bits(0x3ff9_21fb_5440_0000);
const PIO2_2: f64 = f64::from_bits(0x3dd0_b461_1a60_0000);
const PIO2_3: f64 = f64::from_bits(0x3ba3_198a_2e03_7073);

#[inline(always)]
fn sin_poly(r: f64) -> f64 {
    // sin r = r − r³/3! + ... (to r^19), |r| ≤ π/4
    let z = r * r;
    const C: [f64; 9] = [
        -1.0 / 6.0,
        1.0 / 120.0,
        -1.0 / 5040.0,
        1.0 / 362880.0,
        -1.0 / 39916800.0,
        1.0 / 6227020800.0,
        -1.0 / 1307674368000.0,
        1.0 / 355687428096000.0,
        -1.0 / 121645100408832000.0,
    ];
    let p = horner(&C, z);
    r + r * z * p
}

#[inline(always)]
fn cos_poly(r: f64) -> f64 {
    // cos r = 1 − r²/2! + ... (to r^20)
    let z = r * r;
    const C: [f64; 10] = [
        -0.5,
        1.0 / 24.0,
        -1.0 / 720.0,
        1.0 / 40320.0,
        -1.0 / 3628800.0,
        1.0 / 479001600.0,
        -1.0 / 87178291200.0,
        1.0 / 20922789888000.0,
        -1.0 / 6402373705728000.0,
        1.0 / 2432902008176640000.0,
    ];
    let p = horner(&C, z);
    1.0 + z * p
}

const TRIG_LIMIT: f64 = 1048576.0; // 2^20

/// Whether a trigonometric argument is beyond the vectorized reduction (or NaN/inf).
#[inline(always)]
pub(crate) fn needs_libm(x: f64) -> bool {
    x.is_nan() || x.abs() >= TRIG_LIMIT
}

/// sin(x) for |x| < 2^20 (larger arguments give garbage: see [`sin_f64`]).
#[inline(always)]
pub(crate) fn sin_reduced(x: f64, shift: i64) -> f64 {
    let xr = if x.abs() < TRIG_LIMIT { x } else { 0.0 };
    let (k, _) = round_split(xr * (1.0 / FRAC_PI_2));
    let r = ((xr - k * PIO2_1) - k * PIO2_2) - k * PIO2_3;
    let (s, c) = (sin_poly(r), cos_poly(r));
    // quadrant q = (k + shift) mod 4, in floats only (float selects vectorize; integer
    // ones did not): floor((k+shift)/4) = round((k+shift)/4 − 0.375) for integer k.
    let kq = k + shift as f64;
    let (fl, _) = round_split(kq * 0.25 - 0.375);
    let q = kq - 4.0 * fl;
    let odd = (q == 1.0) | (q == 3.0);
    let v = if odd { c } else { s };
    let v = if q >= 2.0 { -v } else { v };
    // sin(±0) = ±0 (the reduction's subtraction would turn −0 into +0)
    if shift == 0 && x == 0.0 {
        x
    } else {
        v
    }
}

/// sin(x) in f64 (the scalar form; plans use the slice kernels).
#[cfg(test)]
#[inline(always)]
pub fn sin_f64(x: f64) -> f64 {
    if x.abs() < TRIG_LIMIT {
        sin_reduced(x, 0)
    } else {
        x.sin()
    }
}

/// cos(x) in f64 (= sin(x + π/2): one quadrant on; the scalar form, for the tests).
#[cfg(test)]
#[inline(always)]
pub fn cos_f64(x: f64) -> f64 {
    if x.abs() < TRIG_LIMIT {
        sin_reduced(x, 1)
    } else {
        x.cos()
    }
}

/// tanh(x) in f64: `e/(e + 2)` with `e = expm1(2|x|)`, sign restored.
#[inline(always)]
pub fn tanh_f64(x: f64) -> f64 {
    let a = x.abs().min(20.0);
    let e = expm1_f64(2.0 * a);
    let t = e / (e + 2.0);
    let t = if x.abs() >= 20.0 { 1.0 } else { t };
    if x.is_nan() {
        x
    } else {
        t.copysign(x)
    }
}

/// [`tanh_f32`]'s constants: 1.5 · 2^23 (adding it rounds to an integer), and ln 2 split
/// in two (to 16 bits, and the rest: 40 bits together, far below f32's rounding at the
/// reduced arguments' size; halved exactly for the reduction of `a` by ln 2 / 2).
pub(crate) const SHIFT32: f32 = 12582912.0;
pub(crate) const LN2_HI32: f32 = f32::from_bits(0x3f31_7200);
pub(crate) const LN2_LO32: f32 = 1.428_606_8e-6;

/// [`tanh_f32`]'s polynomial: `expm1(2r) ≈ 2r + r² P(r)` for |r| ≤ ln 2 / 4 (a little
/// beyond, for the rounding of the reduction), P of degree 5 where Taylor needs degree 6; a
/// least-squares fit of relative error on Chebyshev nodes (near minimax), rounded to f32,
/// by `docs/numerics/fit_tanh_f32.py`. Generated code for fused groups evaluates the same
/// polynomial with the same constants and the same fused multiply-adds.
pub(crate) const TANH_F32_EXPM1: [f32; 6] = [
    f32::from_bits(0x4000_0000),
    f32::from_bits(0x3faa_aaaa),
    f32::from_bits(0x3f2a_aa4c),
    f32::from_bits(0x3e88_88bf),
    f32::from_bits(0x3db6_c4cd),
    f32::from_bits(0x3cd0_2a57),
];

/// `c[0] + c[1]·x + …` by Horner's rule with a fused multiply-add per coefficient.
#[inline(always)]
fn horner_fused(c: &[f32], x: f32) -> f32 {
    let (&last, rest) = c.split_last().expect("a polynomial has a coefficient");
    let mut p = last;
    for &k in rest.iter().rev() {
        p = p.mul_add(x, k);
    }
    p
}

/// tanh(x) in f32 arithmetic (twice the vector lanes of the f64 route) as `e / (e + 2)`
/// with `e = expm1(2|x|)`, sign restored: one formula for every argument, so a vector
/// computes one branch, not two (27 vector operations in generated code, against 51 for
/// the earlier polynomial-below-0.625 and `1 − 2/(e^{2|x|} + 1)`-above pair). `a = |x|`
/// is clamped at 9.5, where the quotient already rounds to exactly 1 (tanh rounds to 1 in
/// f32 beyond |x| ≈ 9.01); `2a = n ln 2 + 2r` with |r| ≤ ln 2 / 4; `e = 2^n (1 + q) − 1 =
/// 2^n q + (2^n − 1)`, the last term exact up to n = 24 (beyond, near the clamp, it rounds
/// to 2^n, where the quotient is 1 within a rounding anyway), with `q = expm1(2r)` from
/// [`TANH_F32_EXPM1`]. Fused multiply-adds throughout (`mul_add`: one rounding each, the
/// same on every route); plans use this kernel where the CPU has AVX2 and FMA
/// (`slices::fast`), since elsewhere each `mul_add` is a call into libm.
///
/// Accuracy, every f32 in [0, 9.5] against f64 tanh rounded to f32 (the `#[ignore]`d test
/// `math::accuracy::tanh_f32_every_value`, ~30 s in a release build): at most 2 ulp
/// (92.3% exact, 7.6% at 1 ulp, 0.06% at 2: the denominator's rounding where x is small,
/// which the earlier two-branch form avoided at twice the cost).
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    let a = x.abs().min(9.5);
    let t = a.mul_add(2.0 * std::f32::consts::LOG2_E, SHIFT32);
    let n = t - SHIFT32;
    let ni = (t.to_bits() as i32).wrapping_sub(SHIFT32.to_bits() as i32);
    let r = n.mul_add(-0.5 * LN2_HI32, a);
    let r = n.mul_add(-0.5 * LN2_LO32, r);
    let q = (r * r).mul_add(horner_fused(&TANH_F32_EXPM1, r), r + r);
    let scale = f32::from_bits(((ni + 127) as u32) << 23);
    let e = scale.mul_add(q, scale - 1.0);
    let t = e / (e + 2.0);
    if x.is_nan() {
        x
    } else {
        t.copysign(x)
    }
}

/// sin (shift 0) or cos (shift 1) of an f32 for |x| < 2^20: the reduction by π/2 in f64
/// (the three-part split of [`sin_f64`], exact enough that r keeps f32 accuracy even where
/// sin x is tiny), the polynomials (degree 9/10 on |r| ≤ π/4) in f32, the quadrant by float
/// selects.
#[inline(always)]
fn sincos_f32(x: f32, shift: f64) -> f32 {
    let xd = if x.abs() < 1048576.0 { x as f64 } else { 0.0 };
    let (k, _) = round_split(xd * (1.0 / FRAC_PI_2));
    let r = (((xd - k * PIO2_1) - k * PIO2_2) - k * PIO2_3) as f32;
    let z = r * r;
    let s =
        r + r * z * (-1.0 / 6.0 + z * (1.0 / 120.0 + z * (-1.0 / 5040.0 + z * (1.0 / 362880.0))));
    let c = 1.0
        + z * (-0.5
            + z * (1.0 / 24.0 + z * (-1.0 / 720.0 + z * (1.0 / 40320.0 + z * (-1.0 / 3628800.0)))));
    let kq = k + shift;
    let (fl, _) = round_split(kq * 0.25 - 0.375); // floor(kq / 4) for integer kq
    let q = kq - 4.0 * fl;
    let v = if (q == 1.0) | (q == 3.0) { c } else { s };
    let v = if q >= 2.0 { -v } else { v };
    if shift == 0.0 && x == 0.0 {
        x
    } else {
        v
    }
}

slices::avx2_or_baseline! {
    /// sin on f32 slices (libm for |x| ≥ 2^20 and NaN/inf, in a second pass).
    pub fn sin_f32s(f32) = sin_f32s_any
}

slices::avx2_or_baseline! {
    /// cos on f32 slices (libm for |x| ≥ 2^20 and NaN/inf, in a second pass).
    pub fn cos_f32s(f32) = cos_f32s_any
}

/// Whether the CPU has AVX2 and FMA (detected once, at run time; the build's own target
/// features elsewhere): which route the slice kernels take.
#[inline]
pub(crate) fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        cfg!(target_feature = "avx2")
    }
}

#[inline(always)]
fn sin_f32s_any(xs: &[f32], out: &mut [f32]) {
    for (o, &x) in out.iter_mut().zip(xs) {
        *o = sincos_f32(x, 0.0);
    }
    for (o, &x) in out.iter_mut().zip(xs) {
        if x.is_nan() || x.abs() >= 1048576.0 {
            *o = x.sin();
        }
    }
}

#[inline(always)]
fn cos_f32s_any(xs: &[f32], out: &mut [f32]) {
    for (o, &x) in out.iter_mut().zip(xs) {
        *o = sincos_f32(x, 1.0);
    }
    for (o, &x) in out.iter_mut().zip(xs) {
        if x.is_nan() || x.abs() >= 1048576.0 {
            *o = x.cos();
        }
    }
}

/// The logistic function 1 / (1 + e^−x) in f64.
#[inline(always)]
pub fn logistic_f64(x: f64) -> f64 {
    1.0 / (1.0 + exp_f64(-x))
}

mod slices;

pub(crate) use self::slices::*;

#[cfg(test)]
mod accuracy;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_values() {
        assert!(exp_f64(f64::NAN).is_nan());
        assert_eq!(exp_f64(f64::INFINITY), f64::INFINITY);
        assert_eq!(exp_f64(f64::NEG_INFINITY), 0.0);
        assert_eq!(exp_f64(0.0), 1.0);
        assert_eq!(exp_f64(710.0), f64::INFINITY);
        assert!(exp_f64(-740.0) > 0.0, "subnormal result");
        assert_eq!(log_f64(1.0), 0.0);
        assert_eq!(log_f64(0.0), f64::NEG_INFINITY);
        assert!(log_f64(-1.0).is_nan());
        assert_eq!(log_f64(f64::INFINITY), f64::INFINITY);
        assert!((log_f64(5e-324) - (5e-324f64).ln()).abs() < 1e-12);
        assert_eq!(sin_f64(0.0), 0.0);
        assert!(sin_f64(-0.0).is_sign_negative());
        assert!(sin_f64(f64::INFINITY).is_nan());
        assert_eq!(cos_f64(0.0), 1.0);
        assert_eq!(tanh_f64(100.0), 1.0);
        assert_eq!(tanh_f64(-100.0), -1.0);
        assert!(tanh_f64(-0.0).is_sign_negative());
        assert!(tanh_f32(-0.0) == 0.0 && tanh_f32(-0.0).is_sign_negative());
        assert!(tanh_f32(f32::NAN).is_nan());
        assert_eq!(logistic_f64(-1000.0), 0.0);
        assert_eq!(logistic_f64(1000.0), 1.0);
        // f32 tanh reaches exactly ±1 where tanh rounds to it, and at ±inf; just below that
        // point it is within its 2 ulp and never above 1
        let (near, want) = (tanh_f32(9.0), (9.0f64).tanh() as f32);
        assert!(
            near <= 1.0 && want.to_bits().abs_diff(near.to_bits()) <= 2,
            "{near}"
        );
        for (x, want) in [
            (9.1f32, 1.0),
            (10.0, 1.0),
            (100.0, 1.0),
            (f32::INFINITY, 1.0),
            (f32::NEG_INFINITY, -1.0),
            (-20.0, -1.0),
        ] {
            assert_eq!(tanh_f32(x), want, "tanh_f32({x})");
        }
    }

    #[test]
    fn tanh_f32s_vector_route_agrees_with_the_portable_one_bit_for_bit() {
        // every 997th f32 bit pattern (both signs, NaNs, infinities, subnormals), plus
        // [-10, 10] finely (small arguments, where n = 0, and the clamp)
        let mut xs: Vec<f32> = (0..=u32::MAX / 997)
            .map(|i| f32::from_bits(i * 997))
            .collect();
        xs.extend((0..20_000).map(|i| (i as f32 - 10_000.0) * 1e-3));
        let (mut got, mut want) = (vec![0f32; xs.len()], vec![0f32; xs.len()]);
        tanh_f32s(&xs, &mut got);
        tanh_f32s_portable(&xs, &mut want);
        for ((x, g), w) in xs.iter().zip(&got).zip(&want) {
            assert_eq!(g.to_bits(), w.to_bits(), "tanh({x}): {g} vs {w}");
        }
    }
}
