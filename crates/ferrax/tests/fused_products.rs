//! Matrix-vector products fused into the elementwise group that makes their matrix: a
//! compiled plan that computes `tanh(x + b)` and then multiplies it by a vector computes the
//! product chunk by chunk of rows while each chunk is in cache, never writing the activation
//! out, and gives the bits of the unfused product (the reference evaluator's), whatever the
//! row length, the vector's shape, the number of threads, and with or without generated code.

mod common;

use common::{run, same_bits, steps_of};
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
                let p = make_jaxpr(layer, &a).unwrap();
                let plan = Plan::new(&p).unwrap();
                let what = format!("{dtype} {m}x{k} column {column}");
                assert_eq!(plan.fused_products(), 1, "{what}: not fused");
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
                assert!(
                    steps.iter().any(|s| s.ends_with("+tanh+dot_general]")),
                    "{what}: {steps:?}"
                );
                assert!(
                    !steps.iter().any(|s| s.starts_with("dot_general")),
                    "{what}: the product ran on its own: {steps:?}"
                );
            }
        }
    }
}

#[test]
fn products_too_short_for_the_matvec_route_or_of_a_group_value_stay_apart() {
    // two terms per row: the product is not a `matvec` one, and stays a product of its own
    let a = args(64, 2, false, DType::F64);
    let p = make_jaxpr(layer, &a).unwrap();
    let plan = Plan::new(&p).unwrap();
    assert_eq!(plan.fused_products(), 0);
    same_bits(&run(&plan, &a)[0], &unfused(&a), "k = 2");
    // the vector is the group's own value (one row): not taken in
    let x = Tensor::random_uniform(4, &[1, 300], -1.0, 1.0, DType::F64);
    let f = |x: Tensor| {
        let h = (&x * 2.0).tanh();
        h.matmul(&h.reshape(&[300]))
    };
    let p = make_jaxpr(f, &x).unwrap();
    let plan = Plan::new(&p).unwrap();
    assert_eq!(plan.fused_products(), 0);
    same_bits(
        &run(&plan, std::slice::from_ref(&x))[0],
        &reference(&p, std::slice::from_ref(&x))[0],
        "own vector",
    );
}

#[test]
fn a_fused_product_gives_the_same_bits_on_one_thread_and_two() {
    // 4096 rows of 300: hundreds of chunks, split between the threads
    let a = args(4096, 300, true, DType::F32);
    let p = make_jaxpr(layer, &a).unwrap();
    let plan = Plan::new(&p).unwrap();
    assert_eq!(plan.fused_products(), 1);
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
