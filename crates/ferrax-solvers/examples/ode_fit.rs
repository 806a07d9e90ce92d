//! Fitting an ODE's parameters through a `scan`: a damped oscillator
//! `x'' + 2ζω x' + ω² x = 0` is integrated by RK4 written as one `scan` over 400 steps
//! (`ferrax_solvers::ode`), and its frequency, damping and initial displacement are
//! recovered from noisy samples by Gauss-Newton with truncated CG. Each outer step makes
//! one linearization of the whole integration (a primal loop that stacks each step's
//! residuals); every `Jᵀ J v` product runs only the linear loop and its transpose, a loop
//! in the other direction.
//!
//! `cargo run --release -p ferrax-solvers --example ode_fit`

use ferrax::{linearize, Array, Tensor};
use ferrax_solvers::ode::DampedOscillator;
use ferrax_solvers::{least_squares, CgOptions, LsqOptions, Method};

fn main() -> ferrax_solvers::Result<()> {
    let truth = [2.0, 0.15, 1.0];
    let start = [1.7, 0.3, 0.8];
    let problem = DampedOscillator::synthetic(truth, 0.025, 400, 0.02, 11)?;
    println!(
        "damped oscillator: {} noisy samples of x(t), dt = {}; true [ω, ζ, x0] = {truth:?}",
        problem.steps, problem.dt
    );
    let r = problem.residual();
    // what one linearization keeps: the per-step residuals of the loop, stacked once
    let (_, lin) = linearize(&r, &Tensor::new(Array::from_slice(&start)))?;
    println!(
        "one linearization holds {} residual arrays, {} bytes",
        lin.num_residuals(),
        lin.residual_bytes()
    );
    let opts = LsqOptions {
        method: Method::GaussNewtonCg,
        max_iterations: 50,
        ftol: 1e-12,
        cg: CgOptions {
            tol: 1e-8,
            max_iterations: 10,
        },
        ..LsqOptions::default()
    };
    let t0 = std::time::Instant::now();
    let fit = least_squares(&r, &start, &opts)?;
    for h in &fit.history {
        println!(
            "outer {:2}: rss {:.6e}  radius {:.3e}  trials {}",
            h.iteration, h.rss, h.radius, h.trials
        );
    }
    println!(
        "fitted [ω, ζ, x0] = [{:.5}, {:.5}, {:.5}] (true {truth:?}); rss {:.4e} ({:?}); \
         {} outer steps, {} linearizations, {} Gauss-Newton products, {:.2}s",
        fit.params[0],
        fit.params[1],
        fit.params[2],
        fit.rss,
        fit.termination,
        fit.iterations,
        fit.linearizations,
        fit.products,
        t0.elapsed().as_secs_f64()
    );
    // one linearization per outer step, and one at the solution for the covariance
    // (matrix-free: a CG solve with JᵀJ per parameter)
    assert_eq!(
        fit.linearizations,
        fit.iterations + 1,
        "one linearization per outer step"
    );
    let se = fit.standard_errors.clone().unwrap_or_default();
    println!(
        "standard errors [ω, ζ, x0] = [{:.2e}, {:.2e}, {:.2e}]",
        se[0], se[1], se[2]
    );
    for ((p, t), s) in fit.params.iter().zip(truth).zip(&se) {
        assert!((p - t).abs() < 0.05 * t.abs(), "fitted {p}, true {t}");
        // the truth within four standard errors of the estimate
        assert!((p - t).abs() < 4.0 * s, "fitted {p} ± {s}, true {t}");
    }
    Ok(())
}
