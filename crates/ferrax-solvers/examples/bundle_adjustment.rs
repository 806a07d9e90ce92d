//! Bundle adjustment at a realistic size: 1,000 cameras, 20,000 points, each point seen by
//! four cameras (80,000 observations, 160,000 residuals, 69,000 parameters), solved by
//! Levenberg-damped Gauss-Newton with preconditioned CG: one linearization per outer step,
//! the block-Jacobi preconditioner from one batched application of that linearization, the
//! Jacobian never formed. Asserts that the reprojection error ends at the noise.
//!
//! `cargo run --release -p ferrax-solvers --example bundle_adjustment [CAMERAS POINTS]`

use ferrax_solvers::bundle::Bundle;

fn main() -> ferrax_solvers::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (cameras, points) = match args[..] {
        [c, p] => (c, p),
        _ => (1000, 20_000),
    };
    let noise = 0.5;
    let b = Bundle::synthetic(cameras, points, 4, noise, 2026)?;
    let (m, n) = (2 * b.observations(), b.start.len());
    println!(
        "bundle adjustment: {cameras} cameras, {points} points, {} observations, {m} residuals, {n} parameters",
        b.observations()
    );
    let r = b.solve(30, 100)?;
    let expected = noise * ((m - n) as f64 / m as f64).sqrt();
    println!(
        "  {} outer steps ({} linearizations), {} preconditioned CG iterations, {:.2} s",
        r.steps, r.linearizations, r.cg_iterations, r.seconds
    );
    println!(
        "  reprojection RMS {:.3} px -> {:.4} px (noise {noise} px; expected at the optimum {expected:.4})",
        r.rms_start, r.rms_end
    );
    assert!(
        (r.rms_end / expected - 1.0).abs() < 0.1,
        "not solved to the noise"
    );
    Ok(())
}
