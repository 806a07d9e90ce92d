//! The large matrix-free fit of issue #6: the benchmark's 2-layer MLP residual (4096
//! residuals, 32 inputs, 300 hidden units: 10,201 parameters) fitted by Gauss-Newton with
//! Steihaug-truncated CG on `Jᵀ J v` products. Each outer step makes exactly one
//! linearization; the products reuse it and do no primal work.
//!
//! `cargo run --release -p ferrax-solvers --example mlp_fit [-- OUTER_ITERATIONS]`

use ferrax_solvers::mlp::{problem, residual, MlpSize};
use ferrax_solvers::{least_squares, CgOptions, LsqOptions, Method};

fn main() -> ferrax_solvers::Result<()> {
    let outer: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    let size = MlpSize::BENCHMARK;
    let (x, y, theta0) = problem(size, 7)?;
    println!(
        "MLP residual: {} samples, {} inputs, {} hidden: {} parameters",
        size.samples,
        size.inputs,
        size.hidden,
        size.num_params()?
    );
    let opts = LsqOptions {
        method: Method::GaussNewtonCg,
        max_iterations: outer,
        ftol: 1e-12,
        cg: CgOptions {
            tol: 1e-3,
            max_iterations: 30,
        },
        ..LsqOptions::default()
    };
    let r = residual(size, x, y);
    let start = std::time::Instant::now();
    let r0 = r(ferrax::Tensor::new(ferrax::Array::from_slice(&theta0)));
    let rss0: f64 = r0.to_vec::<f64>()?.iter().map(|v| v * v).sum();
    let fit = least_squares(r, &theta0, &opts)?;
    println!("initial rss {rss0:.6e}");
    for h in &fit.history {
        println!(
            "outer {:2}: rss {:.6e}  radius {:.3e}  trials {}",
            h.iteration, h.rss, h.radius, h.trials
        );
    }
    println!(
        "final rss {:.6e} after {} outer iterations: {} linearizations, {} Gauss-Newton products, {} residual evaluations, {:?}, {:.1}s",
        fit.rss,
        fit.iterations,
        fit.linearizations,
        fit.products,
        fit.residual_evaluations,
        fit.termination,
        start.elapsed().as_secs_f64()
    );
    assert_eq!(
        fit.linearizations, fit.iterations,
        "one linearization per outer step"
    );
    Ok(())
}
