//! A matrix times a vector and the same matrix times a matrix, adjacent in a plan (`W x`
//! and `W T` in a `vmap` of a jvp), run in one pass over the matrix (`row_panels`): `W x`
//! keeps the reference evaluator's bits, and each element of `W T` is the sum its module
//! defines (increasing `j`, fused multiply-adds from zero) bit for bit where the route runs
//! (f32 and f64 on a CPU with AVX-512F), close to the reference everywhere. Shapes cover
//! panels of six rows and fewer, partial passes of columns (masked: a pass is 32 f32 or 16
//! f64 columns), more columns than one pass, a tail of terms past a multiple of eight, more
//! terms than `gemm` sums in one block (there `gemm`'s bits differ from the definition, so
//! the check shows the route ran), products large enough to be split between threads, and
//! a matrix of one row (not taken: its product by `T` is `matvec`'s, the reference's bits).

mod harness;

use ferrax::{eval_counts, jvp, make_jaxpr, reset_eval_counts, vmap, Array, DType, Plan, Tensor};

/// Whether the one-pass route runs on this machine (the conditions `row_panels` checks).
fn route_runs() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `Σ_j w[i, j] t[j, c]` in increasing `j`, each step one fused multiply-add in the
/// operands' precision (`fma`), from zero; as bits.
fn defined<T: Copy + Default>(
    w: &[T],
    t: &[T],
    (m, k, n): (usize, usize, usize),
    fma: fn(T, T, T) -> T,
    bits: fn(T) -> u64,
) -> Vec<u64> {
    let mut out = vec![0; m * n];
    for i in 0..m {
        for c in 0..n {
            let mut s = T::default();
            for j in 0..k {
                s = fma(w[i * k + j], t[j * n + c], s);
            }
            out[i * n + c] = bits(s);
        }
    }
    out
}

/// Whether `got` lies within `tol` of `want` relative to the magnitude of the terms of each
/// element (`Σ_j |w[i, j] t[j, c]|`), which bounds any summation order's error.
fn within_terms(
    got: &Array,
    want: &Array,
    w: &Array,
    t: &Array,
    (m, k, n): (usize, usize, usize),
) -> bool {
    let (g, e, w, t) = (
        got.to_f64_vec(),
        want.to_f64_vec(),
        w.to_f64_vec(),
        t.to_f64_vec(),
    );
    (0..m * n).all(|e_i| {
        let (i, c) = (e_i / n, e_i % n);
        let terms: f64 = (0..k).map(|j| (w[i * k + j] * t[j * n + c]).abs()).sum();
        (g[e_i] - e[e_i]).abs() <= 1e-5 * terms
    })
}

#[test]
fn a_vector_and_a_matrix_product_of_one_matrix_run_in_one_pass() {
    let shapes = [
        (4, 16, 2),
        (6, 17, 5),
        (13, 24, 16),
        (37, 40, 17),
        (64, 64, 32),
        (11, 33, 48),
        // a partial second vector in both dtypes (25 = 16 + 9 columns in f64's pass)
        (7, 20, 25),
        // large enough (≥ 2^18 multiply-adds) to be split between threads
        (203, 64, 33),
        (96, 131, 70),
        // more terms than `gemm` sums in one block
        (12, 1100, 40),
        // one row: `W T` is then a product by a vector (`matvec`'s), and the route refuses
        (1, 40, 8),
    ];
    for dtype in [DType::F32, DType::F64] {
        for (m, k, n) in shapes {
            let w = Tensor::random_uniform(1 + m as u64, &[m, k], -1.0, 1.0, dtype);
            let x = Tensor::random_uniform(2 + k as u64, &[k], -1.0, 1.0, dtype);
            let t = Tensor::random_uniform(3 + n as u64, &[k, n], -1.0, 1.0, dtype);
            let f = |(w, x, t): (Tensor, Tensor, Tensor)| vec![w.matmul(&x), w.matmul(&t)];
            let p = make_jaxpr(f, &(w.clone(), x.clone(), t.clone())).unwrap();
            let args: Vec<Array> = [&w, &x, &t].map(|a| a.array().unwrap()).to_vec();
            let plan = Plan::new(&p).unwrap();
            let what = format!("{dtype} {m}x{k} by {n}");
            assert_eq!(plan.paired_products(), 1, "{what}");
            reset_eval_counts();
            let got = plan.run(args.clone()).unwrap();
            assert_eq!(eval_counts()["dot_general"], 2, "{what}");
            let want = p.eval(&args).unwrap();
            // W x: matvec's order, the reference evaluator's bits
            assert!(got[0].same_values(&want[0]), "{what}: W x");
            assert!(
                within_terms(&got[1], &want[1], &args[0], &args[2], (m, k, n)),
                "{what}: W T {:?} vs {:?}",
                got[1],
                want[1]
            );
            if m == 1 {
                assert!(got[1].same_values(&want[1]), "{what}: a row times T");
            } else if route_runs() {
                let shape = (m, k, n);
                let (got, def) = if dtype == DType::F32 {
                    let [w, t, g] =
                        [&args[0], &args[2], &got[1]].map(|a| a.to_vec::<f32>().unwrap());
                    let bits = |x: f32| x.to_bits() as u64;
                    (
                        g.into_iter().map(bits).collect::<Vec<_>>(),
                        defined(&w, &t, shape, f32::mul_add, bits),
                    )
                } else {
                    let [w, t, g] =
                        [&args[0], &args[2], &got[1]].map(|a| a.to_vec::<f64>().unwrap());
                    (
                        g.into_iter().map(f64::to_bits).collect(),
                        defined(&w, &t, shape, f64::mul_add, f64::to_bits),
                    )
                };
                assert_eq!(got, def, "{what}: W T is not the defined sum");
            }
        }
    }
}

/// `tanh(W_i h + b_i)` through the layers.
fn chain(ws: &[Tensor], bs: &[Tensor], x: &Tensor) -> Tensor {
    let mut h = x.clone();
    for (w, b) in ws.iter().zip(bs) {
        h = (w.matmul(&h) + b).tanh();
    }
    h
}

/// A `vmap` of a jvp over a batch of tangents pairs each layer's `W h` with its `W T`
/// (after the first layer, whose tangents arrive batch first), and equals the jvps of the
/// tangents one by one.
#[test]
fn a_vmap_of_a_jvp_pairs_each_layer_and_equals_the_jvps_one_by_one() {
    let (depth, width, n) = (3, 40, 7);
    for dtype in [DType::F32, DType::F64] {
        let ws: Vec<Tensor> = (0..depth)
            .map(|i| Tensor::random_uniform(10 + i, &[width, width], -0.3, 0.3, dtype))
            .collect();
        let bs: Vec<Tensor> = (0..depth)
            .map(|i| Tensor::random_uniform(20 + i, &[width], -0.1, 0.1, dtype))
            .collect();
        let x = Tensor::random_uniform(30, &[width], -1.0, 1.0, dtype);
        let tt = Tensor::random_uniform(31, &[n, width], -1.0, 1.0, dtype);
        let batched = |(ws, x, tt): (Vec<Tensor>, Tensor, Tensor)| {
            vmap(
                |t: Tensor| jvp(|x: Tensor| chain(&ws, &bs, &x), &x, &t).unwrap().1,
                &tt,
            )
            .unwrap()
        };
        let p = make_jaxpr(batched, &(ws.clone(), x.clone(), tt.clone())).unwrap();
        let plan = Plan::new(&p).unwrap();
        assert_eq!(plan.paired_products(), depth as usize - 1, "{dtype}");
        let mut args: Vec<Array> = ws.iter().map(|w| w.array().unwrap()).collect();
        args.extend([x.array().unwrap(), tt.array().unwrap()]);
        let got = plan.run(args).unwrap().remove(0).to_f64_vec();
        let tol = if dtype == DType::F32 { 1e-5 } else { 1e-13 };
        for i in 0..n {
            let t = tt.index_axis(0, i);
            let (_, one) = jvp(|x: Tensor| chain(&ws, &bs, &x), &x, &t).unwrap();
            let one = one.array().unwrap().to_f64_vec();
            for (j, want) in one.iter().enumerate() {
                let g = got[i * width + j];
                assert!(
                    (g - want).abs() <= tol,
                    "{dtype} tangent {i} element {j}: {g} vs {want}"
                );
            }
        }
    }
}
