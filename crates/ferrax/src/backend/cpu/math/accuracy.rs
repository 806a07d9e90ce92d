//! The vectorised math kernels' accuracy, measured in ulps against the platform's libm
//! (f64) and libm's f64 result rounded to f32 (f32) over many inputs in several ranges.

use super::Unary;
use super::{vectorized, SliceFn32, SliceFn64};
use crate::ir::{Array, DType};

/// ferrax's own kernels of a function, by its primitive's name.
fn fast_unary(name: &str) -> Option<(SliceFn32, SliceFn64)> {
    let u = match name {
        "exp" => Unary::Exp,
        "expm1" => Unary::Expm1,
        "log" => Unary::Log,
        "sin" => Unary::Sin,
        "cos" => Unary::Cos,
        "tanh" => Unary::Tanh,
        "logistic" => Unary::Logistic,
        _ => return None,
    };
    vectorized(u)
}

fn ulps64(a: f64, b: f64) -> u64 {
    if a.is_nan() && b.is_nan() || a == b {
        return 0;
    }
    if a.is_nan() || b.is_nan() || a.is_infinite() || b.is_infinite() {
        return u64::MAX;
    }
    let key = |x: f64| {
        let i = x.to_bits() as i64;
        if i < 0 {
            i64::MIN - i
        } else {
            i
        }
    };
    key(a).abs_diff(key(b))
}

fn ulps32(a: f32, b: f32) -> u64 {
    if a.is_nan() && b.is_nan() || a == b {
        return 0;
    }
    if a.is_nan() || b.is_nan() || a.is_infinite() || b.is_infinite() {
        return u64::MAX;
    }
    let key = |x: f32| {
        let i = x.to_bits() as i32 as i64;
        if i < 0 {
            i64::from(i32::MIN) - i
        } else {
            i
        }
    };
    key(a).abs_diff(key(b))
}

fn uniform(seed: u64, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    Array::random_uniform(seed, &[n], lo, hi, DType::F64)
        .unwrap()
        .to_vec::<f64>()
        .unwrap()
}

/// Max ulp error of the f64 and f32 kernels of `name` on `xs` against `reference`.
fn measure(name: &str, xs: &[f64], reference: fn(f64) -> f64) -> (u64, u64) {
    let (k32, k64) = fast_unary(name).unwrap();
    let mut out = vec![0.0; xs.len()];
    k64(xs, &mut out);
    let e64 = xs
        .iter()
        .zip(&out)
        .map(|(&x, &y)| ulps64(y, reference(x)))
        .max()
        .unwrap();
    let xs32: Vec<f32> = xs.iter().map(|&x| x as f32).collect();
    let mut out32 = vec![0.0f32; xs.len()];
    k32(&xs32, &mut out32);
    let e32 = xs32
        .iter()
        .zip(&out32)
        .map(|(&x, &y)| ulps32(y, reference(x as f64) as f32))
        .max()
        .unwrap();
    (e64, e32)
}

#[test]
fn ulp_errors_are_within_the_documented_bounds() {
    let n = 200_000;
    let logistic = |x: f64| 1.0 / (1.0 + (-x).exp());
    // (kernel, inputs, libm reference, f64 ulp bound, f32 ulp bound)
    type Case = (&'static str, Vec<f64>, fn(f64) -> f64, u64, u64);
    let cases: Vec<Case> = vec![
        ("exp", uniform(1, n, -700.0, 700.0), f64::exp, 1, 1),
        ("exp", uniform(2, n, -1.0, 1.0), f64::exp, 1, 1),
        ("exp", uniform(3, n, -745.0, -708.0), f64::exp, 1, 1), // subnormal results
        ("expm1", uniform(4, n, -1.0, 1.0), f64::exp_m1, 2, 1),
        ("expm1", uniform(5, n, -40.0, 40.0), f64::exp_m1, 2, 1),
        (
            "log",
            uniform(6, n, -300.0, 300.0)
                .iter()
                .map(|e| 10f64.powf(*e))
                .collect(),
            f64::ln,
            1,
            1,
        ),
        ("log", uniform(7, n, 0.5, 2.0), f64::ln, 1, 1),
        ("sin", uniform(8, n, -10.0, 10.0), f64::sin, 2, 1),
        ("sin", uniform(17, n, -8000.0, 8000.0), f64::sin, 2, 1),
        ("sin", uniform(9, n, -1e5, 1e5), f64::sin, 2, 1),
        ("sin", uniform(10, n, -1e9, 1e9), f64::sin, 2, 1), // fallback range
        ("cos", uniform(11, n, -10.0, 10.0), f64::cos, 2, 1),
        ("cos", uniform(12, n, -1e5, 1e5), f64::cos, 2, 1),
        ("cos", uniform(18, n, -8000.0, 8000.0), f64::cos, 2, 1),
        ("tanh", uniform(13, n, -20.0, 20.0), f64::tanh, 3, 2),
        ("tanh", uniform(14, n, -1e-3, 1e-3), f64::tanh, 3, 2),
        ("tanh", uniform(16, n, -1.0, 1.0), f64::tanh, 3, 2),
        ("logistic", uniform(15, n, -50.0, 50.0), logistic, 4, 1),
    ];
    for (name, xs, reference, bound64, bound32) in cases {
        let lo = xs.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let (e64, e32) = measure(name, &xs, reference);
        println!("{name:9} on [{lo:.3e}, {hi:.3e}]: f64 {e64} ulp, f32 {e32} ulp");
        assert!(e64 <= bound64, "{name} f64: {e64} ulp on [{lo}, {hi}]");
        assert!(e32 <= bound32, "{name} f32: {e32} ulp on [{lo}, {hi}]");
    }
}

#[test]
fn special_inputs_match_libm() {
    let specials = [
        0.0,
        -0.0,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1e-310,
        -1e-310,
        1e308,
        -1e308,
        1.0,
        -1.0,
    ];
    for name in ["exp", "expm1", "log", "sin", "cos", "tanh", "logistic"] {
        let (_, k64) = fast_unary(name).unwrap();
        let mut out = vec![0.0; specials.len()];
        k64(&specials, &mut out);
        let reference: fn(f64) -> f64 = match name {
            "exp" => f64::exp,
            "expm1" => f64::exp_m1,
            "log" => f64::ln,
            "sin" => f64::sin,
            "cos" => f64::cos,
            "tanh" => f64::tanh,
            _ => |x| 1.0 / (1.0 + (-x).exp()),
        };
        for (x, y) in specials.iter().zip(&out) {
            let r = reference(*x);
            assert!(
                (y.is_nan() && r.is_nan()) || ulps64(*y, r) <= 3,
                "{name}({x:e}) = {y:e}, libm says {r:e}"
            );
        }
    }
}

/// How many of every `step`-th f32 bit pattern in [0, 9.5] (and its negation) ferrax's f32
/// tanh gets 0, 1, 2 and 3 or more ulp from f64 tanh rounded to f32, and the first input
/// at the worst distance. [0, 9.5] holds every path of the reduction and the region where
/// the result rounds to 1; beyond the clamp every input gives ±1.
fn tanh_f32_histogram(step: usize) -> ([u64; 4], f32) {
    use rayon::prelude::*;
    let (f32s, _) = fast_unary("tanh").expect("ferrax's tanh");
    let patterns: Vec<u32> = (0..=0x4118_0000u32).step_by(step).collect();
    let (hist, (_, at)) = patterns
        .par_chunks(1 << 16)
        .map(|chunk| {
            let xs: Vec<f32> = chunk
                .iter()
                .map(|&b| f32::from_bits(b))
                .flat_map(|x| [x, -x])
                .collect();
            let mut ys = vec![0f32; xs.len()];
            f32s(&xs, &mut ys);
            let (mut hist, mut worst) = ([0u64; 4], (0, 0f32));
            for (&x, &y) in xs.iter().zip(&ys) {
                let e = ulps32(y, (x as f64).tanh() as f32);
                hist[e.min(3) as usize] += 1;
                if e > worst.0 {
                    worst = (e, x);
                }
            }
            (hist, worst)
        })
        .reduce(
            || ([0; 4], (0, 0.0)),
            |(h, w), (g, v)| {
                let hist = [h[0] + g[0], h[1] + g[1], h[2] + g[2], h[3] + g[3]];
                (hist, if v.0 > w.0 { v } else { w })
            },
        );
    (hist, at)
}

#[test]
fn f32_tanh_is_within_two_ulp_on_every_251st_float_up_to_the_clamp() {
    let (hist, at) = tanh_f32_histogram(251);
    println!("tanh f32 at 0, 1, 2, 3+ ulp: {hist:?}");
    assert_eq!(hist[3], 0, "3 ulp or more at {at}");
    // the 2-ulp results are rare (0.06% over every value): a change that made them
    // common would be a worse kernel even within the bound
    let total: u64 = hist.iter().sum();
    assert!(hist[2] * 500 < total, "{hist:?}");
}

/// Every f32 up to the clamp: `cargo test --release -p ferrax --lib -- --ignored
/// tanh_f32_every_value --nocapture` (~30 s on two cores; far longer unoptimised, hence
/// ignored in the suite, which checks every 251st value).
#[test]
#[ignore]
fn tanh_f32_every_value() {
    let (hist, at) = tanh_f32_histogram(1);
    println!("tanh f32 at 0, 1, 2, 3+ ulp over every value: {hist:?}");
    assert_eq!(hist[3], 0, "3 ulp or more at {at}");
}
