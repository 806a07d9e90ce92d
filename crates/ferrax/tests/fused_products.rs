//! Matrix-vector products fused into the elementwise group that makes their matrix: a
//! compiled plan that computes `tanh(x + b)` and then multiplies it by a vector computes the
//! product chunk by chunk of rows while each chunk is in cache, never writing the activation
//! out, and gives the bits of the unfused product (the reference evaluator's), whatever the
//! row length, the vector's shape, the number of threads, and with or without generated code.

mod common;

use common::{assert_joined, run, same_bits, steps_of};
use ferrax::{make_jaxpr, without_codegen, Array, DType, Plan, Tensor};

fn reference(p: &ferrax::Program, args: &[Tensor]) -> Vec<Array> {
    p.eval(&args.iter().map(|t| t.array().unwrap()).collect::<Vec<_>>())
        .unwrap()
}

/// `x` of `m × k`, a bias of `k`, and a vector of `k` (or `k × 1` when `column`).
fn args(m: usize, k: usize, column: bool, dtype: DType) -> Vec<Tensor> {
    let w_shape = if column { vec![k, 1] } else { vec![k] };
    vec![
        Tensor::random_uniform(1, &[m, k], -2.0, 2.0, dtype),
        Tensor::random_uniform(2, &[k], -1.0, 1.0, dtype),
        Tensor::random_uniform(3, &w_shape, -1.0, 1.0, dtype),
    ]
}

fn layer(a: Vec<Tensor>) -> Tensor {
    (&a[0] + &a[1]).tanh().matmul(&a[2])
}

/// The layer's plan for `a`, checked to have taken `fused` products into groups.
fn layer_plan(a: &[Tensor], fused: usize) -> Plan {
    let p = make_jaxpr(layer, &a.to_vec()).unwrap();
    let plan = Plan::new(&p).unwrap();
    assert_eq!(plan.fused_products(), fused, "{:?}", a[0].shape());
    plan
}

/// The layer's product as a plan gives it unfused (its activation is also an output, so it
/// is written out whole), checked against the reference evaluator's product of that
/// activation (the plans' f32 `tanh` may differ from the reference's by an ulp or two, the
/// products may not).
fn unfused(a: &[Tensor]) -> Array {
    let f = |a: Vec<Tensor>| {
        let h = (&a[0] + &a[1]).tanh();
        (h.matmul(&a[2]), h)
    };
    let p = make_jaxpr(f, &a.to_vec()).unwrap();
    let plan = Plan::new(&p).unwrap();
    assert_eq!(plan.fused_products(), 0, "an output was fused away");
    let got = run(&plan, a);
    let h = Tensor::new(got[1].clone());
    let product = make_jaxpr(
        |(h, w): (Tensor, Tensor)| h.matmul(&w),
        &(h.clone(), a[2].clone()),
    )
    .unwrap();
    let want = reference(&product, &[h, a[2].clone()]);
    same_bits(&got[0], &want[0], "the unfused product");
    got[0].clone()
}

#[test]
fn a_product_fused_into_its_group_gives_the_unfused_bits() {
    // row lengths that divide into sixteen-element chunks, that do not (one row is then
    // not a whole number of vectors), and rows longer than a vector's worth of chunks;
    // row counts that leave a partial last chunk
    let shapes = [
        (37, 300),
        (4096, 300),
        (161, 17),
        (200, 1000),
        (3, 2048),
        (65, 33),
    ];
    for dtype in [DType::F32, DType::F64] {
        for (m, k) in shapes {
            for column in [false, true] {
                let a = args(m, k, column, dtype);
                let plan = layer_plan(&a, 1);
                let what = format!("{dtype} {m}x{k} column {column}");
                let want = unfused(&a);
                same_bits(&run(&plan, &a)[0], &want, &what);
                let interpreted = without_codegen(|| run(&plan, &a));
                let want_interpreted = without_codegen(|| unfused(&a));
                same_bits(
                    &interpreted[0],
                    &want_interpreted,
                    &format!("{what}, interpreted"),
                );
                let steps = steps_of(&plan, &a);
                assert_joined(&steps, &["+tanh+dot_general]"], "dot_general", &what);
            }
        }
    }
}

#[test]
fn products_that_must_stay_apart_do() {
    // eight terms per row: not a `matvec` product (too few terms), so it stays a product of
    // its own
    let a = args(1024, 8, false, DType::F64);
    let plan = layer_plan(&a, 0);
    same_bits(&run(&plan, &a)[0], &unfused(&a), "k = 8");
    // the matrix is read again after the product
    for dtype in [DType::F32, DType::F64] {
        let a = args(64, 300, false, dtype);
        let f = |a: Vec<Tensor>| {
            let h = (&a[0] + &a[1]).tanh();
            (h.matmul(&a[2]), &h * 3.0)
        };
        let p = make_jaxpr(f, &a).unwrap();
        let plan = Plan::new(&p).unwrap();
        assert_eq!(plan.fused_products(), 0, "{dtype}");
        let want = without_codegen(|| run(&plan, &a));
        let (got, unfused_product) = (run(&plan, &a), without_codegen(|| unfused(&a)));
        same_bits(&want[0], &unfused_product, &format!("{dtype} product"));
        same_bits(&got[1], &want[1], &format!("{dtype} read again"));
    }
}

#[test]
fn a_group_of_exactly_one_chunk_and_other_kept_values_keep_their_places() {
    for dtype in [DType::F32, DType::F64] {
        // 16 × 128: one chunk of 2048 elements with no bias broadcast (the shape a group
        // without a product runs in one call of its code); and a value kept beside the
        // matrix, an output before the product
        let x = Tensor::random_uniform(5, &[16, 128], -2.0, 2.0, dtype);
        let y = Tensor::random_uniform(6, &[16, 128], -2.0, 2.0, dtype);
        let w = Tensor::random_uniform(7, &[128], -1.0, 1.0, dtype);
        let f = |(x, y, w): (Tensor, Tensor, Tensor)| {
            let s = &x * &y;
            let h = (&s - 0.5).tanh();
            (s, h.matmul(&w))
        };
        let g = |(x, y, w): (Tensor, Tensor, Tensor)| {
            let s = &x * &y;
            let h = (&s - 0.5).tanh();
            (s, h.matmul(&w), h)
        };
        let args = (x.clone(), y.clone(), w.clone());
        let flat = [x, y, w];
        let p = make_jaxpr(f, &args).unwrap();
        let plan = Plan::new(&p).unwrap();
        assert_eq!(plan.fused_products(), 1, "{dtype}");
        let q = make_jaxpr(g, &args).unwrap();
        let apart = Plan::new(&q).unwrap();
        assert_eq!(apart.fused_products(), 0, "{dtype}");
        for coded in [true, false] {
            let (got, want) = if coded {
                (run(&plan, &flat), run(&apart, &flat))
            } else {
                without_codegen(|| (run(&plan, &flat), run(&apart, &flat)))
            };
            assert_eq!(got.len(), 2);
            assert_eq!(got[1].shape(), &[16], "{dtype}: the product's shape");
            same_bits(
                &got[0],
                &want[0],
                &format!("{dtype} kept value, code {coded}"),
            );
            same_bits(&got[1], &want[1], &format!("{dtype} product, code {coded}"));
        }
    }
}

#[test]
fn a_fused_product_gives_the_same_bits_on_one_thread_and_two() {
    // 4096 rows of 300: hundreds of chunks, split between the threads
    let a = args(4096, 300, true, DType::F32);
    let plan = layer_plan(&a, 1);
    let on = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| run(&plan, &a))
    };
    let (one, two) = (on(1), on(2));
    same_bits(&two[0], &one[0], "two threads");
    same_bits(&one[0], &unfused(&a), "one thread");
}
