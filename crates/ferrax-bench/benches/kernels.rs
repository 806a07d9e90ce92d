//! Micro-benchmarks of the CPU backend's kernels, one compiled single-primitive program
//! each, so a regression in one kernel shows without running the peer suite:
//!
//!     cargo bench -p ferrax-bench --bench kernels [-- FILTER]
//!
//! Every benchmark jits a function of one operation (or one fused run) on fixed random
//! inputs and times `Jit::call` on the plain release build: elementwise unary kernels (the
//! polynomials and libm routes, f32 and f64), a binary kernel, a fused elementwise run with
//! a bias broadcast, one fused group with and without its generated code, a reduction, a
//! transpose, the matrix-vector product (both layouts), a vector and a matrix product by one
//! matrix in one pass, and matrix products at the peer suite's shapes.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ferrax::{jit, with_avx2_codegen, without_codegen, DType, Tensor};

/// A kernel under test: one operation (or a fused run) on a tensor.
type Op = fn(&Tensor) -> Tensor;

fn randn(seed: u64, shape: &[usize], dtype: DType) -> Tensor {
    Tensor::random_normal(seed, shape, dtype)
}

/// Times `f` jitted on `x` (compiled once, outside the timing).
fn bench_jit(
    c: &mut Criterion,
    group: &str,
    id: &str,
    elems: u64,
    x: Tensor,
    f: fn(&Tensor) -> Tensor,
) {
    let g = jit(move |x: Tensor| f(&x));
    g.call(&x).expect("the kernel's program runs");
    let mut grp = c.benchmark_group(group);
    grp.throughput(Throughput::Elements(elems));
    grp.bench_function(BenchmarkId::from_parameter(id), |b| {
        b.iter(|| g.call(&x).expect("runs"))
    });
    grp.finish();
}

fn unary(c: &mut Criterion) {
    const N: usize = 1 << 20;
    let ops: [(&str, Op); 8] = [
        ("tanh", |x| x.tanh()),
        ("exp", |x| x.exp()),
        ("expm1", |x| x.expm1()),
        ("log_abs", |x| x.abs().log()),
        ("logistic", |x| x.logistic()),
        ("sin", |x| x.sin()),
        ("cos", |x| x.cos()),
        ("sqrt_abs", |x| x.abs().sqrt()),
    ];
    for dtype in [DType::F32, DType::F64] {
        for (name, f) in ops {
            let x = randn(1, &[N], dtype);
            bench_jit(c, "unary", &format!("{name}_{dtype}"), N as u64, x, f);
        }
    }
}

fn binary_and_fused(c: &mut Criterion) {
    const N: usize = 1 << 20;
    let x = randn(2, &[N], DType::F32);
    bench_jit(c, "binary", "mul_f32", N as u64, x.clone(), |x| x * x);
    // a layer's epilogue: bias broadcast along rows, add, activation (one fused run)
    let h = randn(3, &[4096, 300], DType::F32);
    bench_jit(c, "fused", "bias_tanh_4096x300_f32", 4096 * 300, h, |h| {
        let b = Tensor::random_normal(4, &[300], DType::F32);
        (h + &b).tanh()
    });
    bench_jit(c, "fused", "sin_cos_exp_sum_f32", N as u64, x, |x| {
        (x.sin() * x.cos() + (-(x * x)).exp()).sum_all()
    });
}

/// Fused groups through their generated machine code (the CPU's widest, and AVX2's where
/// the CPU has AVX-512 too: `with_avx2_codegen`) and through the interpreter
/// (`without_codegen`): a Newton step for sqrt and its convergence test, 2^16 f32, and a
/// layer's bias + tanh, 512 × 512 f32.
fn codegen(c: &mut Criterion) {
    const N: usize = 1 << 16;
    let a = randn(5, &[N], DType::F32).abs() + 0.5;
    let newton = |a: Tensor| {
        let x = &a * 0.75;
        let x = (&x + &a / &x) * 0.5;
        let test = (&x * &x - &a).abs().max(&[0]);
        (x, test)
    };
    let x = randn(6, &[512, 512], DType::F32);
    let b = randn(7, &[512], DType::F32);
    let layer = |(x, b): (Tensor, Tensor)| (&x + &b).tanh();
    let xb = (x, b);
    let mut grp = c.benchmark_group("codegen");
    grp.throughput(Throughput::Elements(N as u64));
    let (g, g2) = (jit(newton), jit(newton));
    g.call(&a).expect("the step runs");
    // the AVX2 plan is made (on the first call) with AVX2 code asked for
    with_avx2_codegen(|| g2.call(&a)).expect("the step runs");
    grp.bench_function(BenchmarkId::from_parameter("newton_step_code"), |b| {
        b.iter(|| g.call(&a).expect("runs"))
    });
    grp.bench_function(BenchmarkId::from_parameter("newton_step_avx2_code"), |b| {
        b.iter(|| g2.call(&a).expect("runs"))
    });
    grp.bench_function(
        BenchmarkId::from_parameter("newton_step_interpreter"),
        |b| b.iter(|| without_codegen(|| g.call(&a)).expect("runs")),
    );
    grp.throughput(Throughput::Elements(512 * 512));
    let (l, l2) = (jit(layer), jit(layer));
    l.call(&xb).expect("the layer runs");
    with_avx2_codegen(|| l2.call(&xb)).expect("the layer runs");
    grp.bench_function(BenchmarkId::from_parameter("bias_tanh_code"), |b| {
        b.iter(|| l.call(&xb).expect("runs"))
    });
    grp.bench_function(BenchmarkId::from_parameter("bias_tanh_avx2_code"), |b| {
        b.iter(|| l2.call(&xb).expect("runs"))
    });
    grp.bench_function(BenchmarkId::from_parameter("bias_tanh_interpreter"), |b| {
        b.iter(|| without_codegen(|| l.call(&xb)).expect("runs"))
    });
    grp.finish();
}

fn reductions_and_layout(c: &mut Criterion) {
    let m = randn(5, &[1024, 1024], DType::F32);
    bench_jit(
        c,
        "reduce",
        "sum_rows_1024x1024_f32",
        1 << 20,
        m.clone(),
        |m| m.sum(&[1]),
    );
    bench_jit(
        c,
        "reduce",
        "max_all_1024x1024_f32",
        1 << 20,
        m.clone(),
        |m| m.max_all(),
    );
    bench_jit(c, "layout", "transpose_1024x1024_f32", 1 << 20, m, |m| {
        m.t() * 1.0
    });
}

fn products(c: &mut Criterion) {
    // the chain's matrix-vector product, rows contiguous and columns contiguous
    let a = randn(6, &[512, 512], DType::F32);
    bench_jit(c, "matvec", "512x512_rows_f32", 512 * 512, a.clone(), |a| {
        a.matmul(&Tensor::random_normal(7, &[512], DType::F32))
    });
    bench_jit(c, "matvec", "512x512_columns_f32", 512 * 512, a, |a| {
        a.t().matmul(&Tensor::random_normal(7, &[512], DType::F32))
    });
    // a vmap of a jvp's pair: `W x` and `W T` by one matrix, in one pass (`row_panels`; the
    // sum of `W T`'s rows only makes one output of the two)
    let w = randn(15, &[512, 512], DType::F32);
    bench_jit(
        c,
        "pair",
        "matvec_and_matmul_512x512_by_32_f32",
        512 * 512 * 33,
        w,
        |w| {
            let y = w.matmul(&Tensor::random_normal(16, &[512], DType::F32));
            let z = w.matmul(&Tensor::random_normal(17, &[512, 32], DType::F32));
            z.sum(&[1]) + y
        },
    );
    // matrix products at the peer suite's shapes (elements = multiply-adds)
    let sq = randn(8, &[1024, 1024], DType::F32);
    bench_jit(c, "matmul", "1024x1024x1024_f32", 1 << 30, sq, |a| {
        a.matmul(a)
    });
    let x = randn(9, &[128, 256], DType::F32);
    bench_jit(
        c,
        "matmul",
        "mlp_128x256x256_f32",
        128 * 256 * 256,
        x,
        |x| x.matmul(&Tensor::random_normal(10, &[256, 256], DType::F32)),
    );
    let x = randn(11, &[4096, 32], DType::F32);
    bench_jit(
        c,
        "matmul",
        "gnvp_4096x32x300_f32",
        4096 * 32 * 300,
        x,
        |x| x.matmul(&Tensor::random_normal(12, &[32, 300], DType::F32)),
    );
    let g = randn(13, &[4096, 300], DType::F32);
    bench_jit(
        c,
        "matmul",
        "gnvp_transposed_300x4096x32_f32",
        4096 * 32 * 300,
        g,
        |g| {
            g.t()
                .matmul(&Tensor::random_normal(14, &[4096, 32], DType::F32))
        },
    );
}

criterion_group! {
    name = kernels;
    config = Criterion::default().sample_size(20).warm_up_time(std::time::Duration::from_millis(300)).measurement_time(std::time::Duration::from_secs(1));
    targets = unary, binary_and_fused, codegen, reductions_and_layout, products
}
criterion_main!(kernels);
