//! How cost grows (issue 16, item 5), printed as Markdown tables for BENCHMARKS.md:
//!
//!     cargo run --release -p ferrax-bench --bin scaling [-- --quick]
//!
//! 1. `linearize` of a tanh chain of 512×512 f32 layers vs depth: residual bytes, what the
//!    map keeps alive and adds (`kept_bytes`, `added_bytes`), time to linearize and to apply
//!    the map once; the weights are captured, so the map should add one vector per layer
//!    and share the weights, not copy them.
//! 2. Compile time (`jit` first call: trace, optimize, plan) vs program size, for a chain of
//!    elementwise operations of 100 to 100,000 equations.
//! 3. Elementwise throughput (`x * 1.5 + 0.5`, f32) vs size, 2^10 to 2^26 elements, in
//!    bytes moved per second (one read, one write).
//!
//! Times are medians of repeated runs on one thread (run it pinned: `taskset -c 0`). With
//! `--tuned-heap` the process first tells glibc to keep freed blocks (as the peer benchmark
//! does, `mallopt`); without it, the heap a library user gets.

use std::time::Instant;

use ferrax::{jit, linearize, DType, Result, Tensor};

fn quick() -> bool {
    std::env::args().any(|a| a == "--quick")
}

/// The median time of `f` in ms over `n` runs after one warm-up.
fn median_ms(n: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    let mut t = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        f()?;
        t.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    t.sort_by(f64::total_cmp);
    Ok(t[t.len() / 2])
}

fn mib(b: usize) -> String {
    format!("{:.2}", b as f64 / (1024.0 * 1024.0))
}

fn depth_table() -> Result<()> {
    const W: usize = 512;
    let depths: &[usize] = if quick() {
        &[8, 32]
    } else {
        &[8, 16, 32, 64, 128, 256]
    };
    println!("| layers | weights MiB | residual MiB | kept alive MiB | added MiB | linearize ms | apply ms |");
    println!("|---|---|---|---|---|---|---|");
    for &d in depths {
        let ws: Vec<Tensor> = (0..d)
            .map(|i| {
                Tensor::random_normal(i as u64, &[W, W], DType::F32) * (1.0 / (W as f64).sqrt())
            })
            .collect();
        let x = Tensor::random_normal(999, &[W], DType::F32);
        let chain = |x: Tensor| ws.iter().fold(x, |h, w| w.matmul(&h).tanh());
        let (_, lin) = linearize(chain, &x)?;
        let t_lin = median_ms(5, || linearize(chain, &x).map(|_| ()))?;
        let t = Tensor::random_normal(7, &[W], DType::F32);
        let t_apply = median_ms(10, || lin.apply::<Tensor, Tensor>(&t).map(|_| ()))?;
        println!(
            "| {d} | {} | {} | {} | {} | {t_lin:.2} | {t_apply:.2} |",
            mib(d * W * W * 4),
            mib(lin.residual_bytes()),
            mib(lin.kept_bytes()),
            mib(lin.added_bytes()),
        );
    }
    Ok(())
}

fn compile_table() -> Result<()> {
    let sizes: &[usize] = if quick() {
        &[100, 1000]
    } else {
        &[100, 1_000, 10_000, 100_000]
    };
    println!(
        "| equations | first call (trace + compile + run) ms | per equation µs | later call ms |"
    );
    println!("|---|---|---|---|");
    let x = Tensor::random_normal(1, &[16], DType::F32);
    for &n in sizes {
        // about n equations: each step is a multiply and an add by broadcast scalars (four
        // equations), so nothing folds away
        let f = move |x: Tensor| {
            let mut h = x;
            for i in 0..n / 4 {
                h = &h * 0.999 + (i % 7) as f64 * 1e-3;
            }
            h
        };
        let eqns = ferrax::make_jaxpr(f, &x)?.eqns.len();
        let runs = if n >= 100_000 { 3 } else { 5 };
        let first = median_ms(runs, || {
            let g = jit(f);
            g.call(&x).map(|_| ())
        })?;
        let g = jit(f);
        let later = median_ms(runs, || g.call(&x).map(|_| ()))?;
        println!(
            "| {eqns} | {first:.2} | {:.2} | {later:.3} |",
            first * 1e3 / eqns as f64
        );
    }
    Ok(())
}

fn throughput_table() -> Result<()> {
    let top = if quick() { 20 } else { 26 };
    println!("| elements | bytes moved | ms | GB/s |");
    println!("|---|---|---|---|");
    let g = jit(|x: Tensor| &x * 1.5 + 0.5);
    for p in (10..=top).step_by(2) {
        let n = 1usize << p;
        let x = Tensor::random_normal(3, &[n], DType::F32);
        let runs = if p >= 24 { 10 } else { 50 };
        let ms = median_ms(runs, || g.call(&x).map(|_| ()))?;
        let bytes = 2 * n * 4;
        println!(
            "| 2^{p} | {} | {ms:.4} | {:.1} |",
            mib(bytes) + " MiB",
            bytes as f64 / (ms * 1e-3) / 1e9
        );
    }
    Ok(())
}

fn main() -> Result<()> {
    if std::env::args().any(|a| a == "--tuned-heap") {
        #[cfg(target_env = "gnu")]
        // SAFETY: mallopt only adjusts glibc's allocator parameters; called once at
        // start-up, before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 512 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        }
    }
    // one thread, as the peer comparison
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global()
        .expect("the global pool is built once");
    println!("### linearize of a 512-wide tanh chain vs depth (f32, weights captured)\n");
    depth_table()?;
    println!("\n### compile time vs program size\n");
    compile_table()?;
    println!("\n### elementwise throughput vs size (f32, `x * 1.5 + 0.5`)\n");
    throughput_table()?;
    Ok(())
}
