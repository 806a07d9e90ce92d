//! Generated machine code for fused elementwise groups gives the interpreter's bits.
//!
//! Random programs of the operations the code generator compiles (`+ - * /`, `max`, `min`,
//! negation, absolute value, square root and its reciprocal, scalars on either side, sums, maxima and
//! minima of all elements), over values that include NaN, infinities, signed zeros and
//! subnormals, at sizes whose last chunk is or is not a whole number of vectors, in f32 and
//! f64: each plan runs once with its generated code and once through the interpreter
//! (`without_codegen`), and every output must have the same bits (a NaN matches any NaN).
//! On a CPU with AVX2 the plans must have code (AVX-512 loops where it has AVX-512F, and
//! each check runs again with AVX2 loops there); elsewhere none.

mod common;

use common::same_bits;
use ferrax::{make_jaxpr, with_avx2_codegen, without_codegen, Array, DType, Plan, Tensor};

/// SplitMix64: a small deterministic generator for the programs and their inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn value(&mut self) -> f64 {
        match self.below(40) {
            0 => f64::NAN,
            1 => f64::INFINITY,
            2 => f64::NEG_INFINITY,
            3 => 0.0,
            4 => -0.0,
            5 => 1e-310,
            6 => -1e-40,
            _ => (self.next() >> 11) as f64 / (1u64 << 53) as f64 * 8.0 - 4.0,
        }
    }
}

fn input(rng: &mut Rng, n: usize, dtype: DType) -> Tensor {
    let v: Vec<f64> = (0..n).map(|_| rng.value()).collect();
    Tensor::from_vec(v, &[n]).astype(dtype)
}

/// A random expression of the compiled operations over `vars`, `depth` deep at most.
fn expr(rng: &mut Rng, vars: &[Tensor], depth: usize) -> Tensor {
    if depth == 0 || rng.below(4) == 0 {
        return vars[rng.below(vars.len())].clone();
    }
    let a = expr(rng, vars, depth - 1);
    match rng.below(13) {
        0 => &a + &expr(rng, vars, depth - 1),
        1 => &a - &expr(rng, vars, depth - 1),
        2 => &a * &expr(rng, vars, depth - 1),
        3 => &a / &expr(rng, vars, depth - 1),
        4 => -&a,
        5 => a.abs(),
        6 => a.sqrt(),
        7 => a.rsqrt(),
        8 => &a * 1.5,
        9 => 2.0 - &a,
        10 => a.maximum(expr(rng, vars, depth - 1)),
        11 => a.minimum(expr(rng, vars, depth - 1)),
        _ => &a / 3.0,
    }
}

/// Whether plans get code on this CPU: FMA with AVX2 or AVX-512F (AVX-512 loops where it
/// has AVX-512F), as `codegen::width` decides.
fn has_code() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        (std::arch::is_x86_feature_detected!("avx512f")
            || std::arch::is_x86_feature_detected!("avx2"))
            && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Runs `check` with the plans it makes getting the CPU's widest code, then, where that
/// was AVX-512, again with AVX2 code (the route of a CPU without AVX-512).
fn each_width(check: impl Fn()) {
    check();
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        with_avx2_codegen(&check);
    }
}

fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[test]
fn plans_get_the_widest_code_the_cpu_has_and_avx2_code_when_asked() {
    let mut rng = Rng(3);
    let x = input(&mut rng, 4096, DType::F32);
    let p = make_jaxpr(|x: Tensor| ((&x * 2.0 + 1.0).tanh(), x.sum_all()), &x).unwrap();
    let native = Plan::new(&p).unwrap();
    let avx2 = with_avx2_codegen(|| Plan::new(&p)).unwrap();
    let widest = match (has_code(), avx512()) {
        (false, _) => None,
        (true, true) => Some(512),
        (true, false) => Some(256),
    };
    assert_eq!(native.code_bits(), widest);
    assert_eq!(avx2.code_bits(), has_code().then_some(256));
    let arrays = vec![x.array().unwrap()];
    let without = without_codegen(|| native.run(arrays.clone())).unwrap();
    for plan in [&native, &avx2] {
        let with = plan.run(arrays.clone()).unwrap();
        same_bits(&with[0], &without[0], "tanh");
        same_bits(&with[1], &without[1], "sum");
    }
}

#[test]
fn twenty_live_values_fit_avx512s_registers_not_avx2s() {
    // twenty values alive at once: within AVX-512's 32 vector registers, past AVX2's 16;
    // either way the reference's bits (exact arithmetic)
    let mut rng = Rng(19);
    let xs: Vec<Tensor> = (0..20).map(|_| input(&mut rng, 4096, DType::F32)).collect();
    let wide = |xs: Vec<Tensor>| {
        let ys: Vec<Tensor> = xs.iter().map(|x| x * 2.0).collect();
        ys.iter().skip(1).fold(ys[0].clone(), |s, y| &s + y)
    };
    let p = make_jaxpr(wide, &xs).unwrap();
    let native = Plan::new(&p).unwrap();
    let avx2 = with_avx2_codegen(|| Plan::new(&p)).unwrap();
    assert_eq!(native.fused_groups(), (1, usize::from(avx512())), "{p}");
    assert_eq!(avx2.fused_groups(), (1, 0), "{p}");
    let arrays: Vec<Array> = xs.iter().map(|t| t.array().unwrap()).collect();
    let want = p.eval(&arrays).unwrap();
    for plan in [&native, &avx2] {
        same_bits(
            &plan.run(arrays.clone()).unwrap()[0],
            &want[0],
            "twenty live values",
        );
    }
}

#[test]
fn generated_code_gives_the_interpreters_bits_on_random_programs() {
    each_width(|| {
        let mut rng = Rng(2026);
        let mut compiled = 0;
        for case in 0..120 {
            let dtype = if case % 2 == 0 {
                DType::F32
            } else {
                DType::F64
            };
            // whole chunks; a last chunk of whole vectors; a last chunk that is not
            let n = [4096, 2048 * 2 + 48, 5000][case % 3];
            let vars: Vec<Tensor> = (0..3).map(|_| input(&mut rng, n, dtype)).collect();
            let seed = rng.next();
            let f = move |(x, y, z): (Tensor, Tensor, Tensor)| {
                let mut r = Rng(seed);
                let vars = [x, y, z];
                let kept = expr(&mut r, &vars, 4);
                let other = expr(&mut r, &[kept.clone(), vars[0].clone()], 3);
                (
                    kept.clone(),
                    other.sum_all(),
                    other.max(&[0]),
                    (&kept * &other).min(&[0]),
                )
            };
            let args = (vars[0].clone(), vars[1].clone(), vars[2].clone());
            let p = make_jaxpr(f, &args).unwrap();
            let plan = Plan::new(&p).unwrap();
            compiled += plan.fused_groups().1;
            let arrays: Vec<Array> = vars.iter().map(|t| t.array().unwrap()).collect();
            let with = plan.run(arrays.clone()).unwrap();
            let without = without_codegen(|| plan.run(arrays.clone())).unwrap();
            for (k, (g, w)) in with.iter().zip(&without).enumerate() {
                same_bits(
                    g,
                    w,
                    &format!("case {case} ({dtype}, n = {n}) output {k}\n{p}"),
                );
            }
        }
        if has_code() {
            assert!(
                compiled >= 100,
                "only {compiled} groups had code in 120 programs"
            );
        } else {
            assert_eq!(compiled, 0, "code without AVX2");
        }
    });
}

#[test]
fn a_newton_step_and_its_convergence_test_get_code() {
    each_width(|| {
        // `while_newton`'s body and test: two groups, both compiled, with the interpreter's bits
        for dtype in [DType::F32, DType::F64] {
            let mut rng = Rng(7);
            let a = input(&mut rng, 1 << 16, dtype).abs() + 0.5;
            let x = &a * 0.75;
            let body = |(x, a): (Tensor, Tensor)| (&x + &a / &x) * 0.5;
            let test = |(x, a): (Tensor, Tensor)| (&x * &x - &a).abs().max(&[0]);
            for p in [
                make_jaxpr(body, &(x.clone(), a.clone())).unwrap(),
                make_jaxpr(test, &(x.clone(), a.clone())).unwrap(),
            ] {
                let plan = Plan::new(&p).unwrap();
                let want = if has_code() { (1, 1) } else { (1, 0) };
                assert_eq!(plan.fused_groups(), want, "{p}");
                let arrays = vec![x.array().unwrap(), a.array().unwrap()];
                let with = plan.run(arrays.clone()).unwrap();
                let without = without_codegen(|| plan.run(arrays.clone())).unwrap();
                same_bits(&with[0], &without[0], &format!("{dtype}\n{p}"));
                let reference = p.eval(&arrays).unwrap();
                same_bits(&with[0], &reference[0], &format!("{dtype} vs eval\n{p}"));
            }
        }
    });
}

#[test]
fn f32_tanh_gets_code_with_the_interpreters_bits_on_every_997th_bit_pattern() {
    each_width(|| {
        // both signs, NaNs, infinities, subnormals, plus [-10, 10] finely (small
        // arguments, the reduction's steps and the clamp at 9.5)
        let mut xs: Vec<f32> = (0..=u32::MAX / 997)
            .map(|i| f32::from_bits(i * 997))
            .collect();
        xs.extend((0..20_000).map(|i| (i as f32 - 10_000.0) * 1e-3));
        xs.truncate(xs.len() / 16 * 16 + 5); // a last chunk that is not whole vectors
        let n = xs.len();
        let x = Tensor::from_vec(xs, &[n]);
        let f = |x: Tensor| (x.tanh(), (&x * 0.5).tanh().sum_all());
        let p = make_jaxpr(f, &x).unwrap();
        let plan = Plan::new(&p).unwrap();
        assert_eq!(plan.fused_groups(), (1, usize::from(has_code())), "{p}");
        let arrays = vec![x.array().unwrap()];
        let with = plan.run(arrays.clone()).unwrap();
        let without = without_codegen(|| plan.run(arrays.clone())).unwrap();
        same_bits(&with[0], &without[0], "tanh");
        same_bits(&with[1], &without[1], "sum of tanh");
    });
}

#[test]
fn bias_broadcasts_along_either_end_get_code() {
    each_width(|| {
        // a layer's `tanh(x + b) * c`: `b` tiled along the leading axis with a period (300)
        // that is not a whole number of vectors, `c` repeated along the trailing one; the
        // chunks start mid-row
        for dtype in [DType::F32, DType::F64] {
            let x = Tensor::random_uniform(3, &[100, 300], -3.0, 3.0, dtype);
            let b = Tensor::random_uniform(4, &[300], -1.0, 1.0, dtype);
            let c = Tensor::random_uniform(5, &[100, 1], -1.0, 1.0, dtype);
            let f = |(x, b, c): (Tensor, Tensor, Tensor)| {
                let h = &x + &b;
                let act = if dtype == DType::F32 {
                    h.tanh()
                } else {
                    h.sqrt()
                };
                let out = &act * &c - &b;
                (out.clone(), (&out * &out).sum_all())
            };
            let args = (x.clone(), b.clone(), c.clone());
            let p = make_jaxpr(f, &args).unwrap();
            let plan = Plan::new(&p).unwrap();
            assert_eq!(plan.fused_groups(), (1, usize::from(has_code())), "{p}");
            let arrays = vec![x.array().unwrap(), b.array().unwrap(), c.array().unwrap()];
            let with = plan.run(arrays.clone()).unwrap();
            let without = without_codegen(|| plan.run(arrays.clone())).unwrap();
            for (k, (g, w)) in with.iter().zip(&without).enumerate() {
                same_bits(g, w, &format!("{dtype} output {k}"));
            }
        }
    });
}

#[test]
fn a_group_of_one_chunk_runs_whole_and_smaller_runs_stay_unfused() {
    each_width(|| {
        // 2048 elements: one call of the code, no chunk bookkeeping; 128: no group (its steps
        // run one by one, in place)
        let mut rng = Rng(5);
        for (n, dtype) in [(2048, DType::F32), (2048, DType::F64), (128, DType::F32)] {
            let vars: Vec<Tensor> = (0..3).map(|_| input(&mut rng, n, dtype)).collect();
            let f = |(x, y, z): (Tensor, Tensor, Tensor)| {
                let h = (&x + &y) * &z - 2.0;
                let act = if dtype == DType::F32 {
                    h.tanh()
                } else {
                    h.sqrt()
                };
                (act.maximum(&x), h)
            };
            let args = (vars[0].clone(), vars[1].clone(), vars[2].clone());
            let p = make_jaxpr(f, &args).unwrap();
            let plan = Plan::new(&p).unwrap();
            let want = match n {
                2048 => (1, usize::from(has_code())),
                _ => (0, 0),
            };
            assert_eq!(plan.fused_groups(), want, "n = {n} {dtype}\n{p}");
            let arrays: Vec<Array> = vars.iter().map(|t| t.array().unwrap()).collect();
            let with = plan.run(arrays.clone()).unwrap();
            let without = without_codegen(|| plan.run(arrays.clone())).unwrap();
            let reference = p.eval(&arrays).unwrap();
            for (k, (g, w)) in with.iter().zip(&without).enumerate() {
                same_bits(g, w, &format!("n = {n} {dtype} output {k}"));
            }
            // `h` is exact arithmetic: the reference's bits too
            same_bits(
                &with[1],
                &reference[1],
                &format!("n = {n} {dtype} against eval"),
            );
        }
    });
}

#[test]
fn groups_with_more_addresses_than_registers_get_code() {
    each_width(|| {
        // seven inputs and seven kept values: fourteen addresses, nine held in registers and
        // the rest read from their arrays where they are used
        for dtype in [DType::F32, DType::F64] {
            let mut rng = Rng(11);
            let xs: Vec<Tensor> = (0..7).map(|_| input(&mut rng, 6000, dtype)).collect();
            let f = |xs: Vec<Tensor>| {
                let mut outs = vec![];
                let mut acc = xs[0].clone();
                for x in &xs[1..] {
                    acc = &acc * x - x / 3.0;
                    outs.push(acc.clone());
                }
                outs.push(acc.max(&[0]));
                outs
            };
            let p = make_jaxpr(f, &xs).unwrap();
            let plan = Plan::new(&p).unwrap();
            assert_eq!(plan.fused_groups(), (1, usize::from(has_code())), "{p}");
            let arrays: Vec<Array> = xs.iter().map(|t| t.array().unwrap()).collect();
            let with = plan.run(arrays.clone()).unwrap();
            let without = without_codegen(|| plan.run(arrays.clone())).unwrap();
            assert_eq!(with.len(), 7);
            for (k, (g, w)) in with.iter().zip(&without).enumerate() {
                same_bits(g, w, &format!("{dtype} output {k}"));
            }
        }
    });
}

#[test]
fn groups_past_the_registers_or_the_reduction_slots_run_through_the_interpreter() {
    each_width(|| {
        // forty values alive at once (more than the 32 vector registers), then seven
        // reductions of one group (more than its six flag registers): no code, no panic, the
        // interpreter's results, which are the reference's for this exact arithmetic
        let mut rng = Rng(17);
        let xs: Vec<Tensor> = (0..40).map(|_| input(&mut rng, 4096, DType::F32)).collect();
        // finite operands for the reductions, so that their values say something
        let ab: Vec<Tensor> = (0..2)
            .map(|k| Tensor::random_uniform(30 + k, &[4096], 0.5, 2.0, DType::F32))
            .collect();
        let wide = |xs: Vec<Tensor>| {
            let ys: Vec<Tensor> = xs.iter().map(|x| x * 2.0).collect();
            ys.iter().skip(1).fold(ys[0].clone(), |s, y| &s + y)
        };
        let seven = |xs: Vec<Tensor>| {
            let (a, b) = (&xs[0], &xs[1]);
            let vals = [a + b, a - b, a * b, a / b, -a, b.abs(), a * 3.0];
            let mut outs: Vec<Tensor> = vals.iter().map(|v| v.max(&[0])).collect();
            outs.push(vals[0].sum_all());
            outs
        };
        for (what, p) in [
            ("forty live values", make_jaxpr(wide, &xs).unwrap()),
            ("seven reductions", make_jaxpr(seven, &ab).unwrap()),
        ] {
            let plan = Plan::new(&p).unwrap();
            assert_eq!(plan.fused_groups(), (1, 0), "{what}\n{p}");
            let args = if what == "seven reductions" { &ab } else { &xs };
            let arrays: Vec<Array> = args.iter().map(|t| t.array().unwrap()).collect();
            let got = plan.run(arrays.clone()).unwrap();
            let want = p.eval(&arrays).unwrap();
            for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                if what == "seven reductions" && k == 7 {
                    // a compiled sum adds in blocks, the reference serially: to rounding
                    let (g, w) = (g.to_f64_vec()[0], w.to_f64_vec()[0]);
                    assert!((g - w).abs() <= 1e-5 * w.abs(), "sum {g} against {w}");
                } else {
                    same_bits(g, w, &format!("{what} output {k}"));
                }
            }
        }
    });
}

#[test]
fn groups_with_other_operations_run_through_the_interpreter() {
    each_width(|| {
        // `exp` is not compiled: no code, the interpreter's results
        let x = Tensor::random_uniform(3, &[64, 256], -1.0, 1.0, DType::F32);
        let b = Tensor::random_uniform(4, &[256], -1.0, 1.0, DType::F32);
        let f = |(x, b): (Tensor, Tensor)| (&x + &b).exp() * 2.0;
        let p = make_jaxpr(f, &(x.clone(), b.clone())).unwrap();
        let plan = Plan::new(&p).unwrap();
        assert_eq!(plan.fused_groups(), (1, 0), "{p}");
        let arrays = vec![x.array().unwrap(), b.array().unwrap()];
        // the compiled `exp` is a vectorized one, within an ulp or two of the reference's
        let got = plan.run(arrays.clone()).unwrap()[0].to_f64_vec();
        let want = p.eval(&arrays).unwrap()[0].to_f64_vec();
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-6 * w.abs(),
                "element {k}: {g} against {w}"
            );
        }
    });
}
