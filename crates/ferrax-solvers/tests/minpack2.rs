//! The MINPACK-2 data-fitting problems of SciPy's benchmark suite, from their standard
//! starts, to their optimal sums of squares: Levenberg-Marquardt to 1e-8 (relative), and
//! Gauss-Newton-CG (matrix-free) to 1e-6.

use ferrax_solvers::minpack2::problems;
use ferrax_solvers::{least_squares, LsqOptions, Method};

#[test]
fn every_problem_reaches_its_optimum_with_both_methods() {
    let mut report = vec![];
    for method in [Method::LevenbergMarquardt, Method::GaussNewtonCg] {
        let tol = match method {
            Method::LevenbergMarquardt => 1e-8,
            Method::GaussNewtonCg => 1e-6,
        };
        for p in problems() {
            let opts = LsqOptions {
                method,
                covariance_up_to: 0,
                ..LsqOptions::default()
            };
            let fit = least_squares(p.residual, &p.x0, &opts).unwrap();
            let ok = if p.f_min > 0.0 {
                (fit.rss - p.f_min).abs() <= tol * p.f_min
            } else {
                fit.rss <= 1e-20
            };
            report.push(format!(
                "{method:?} {}: F = {:.12e} (optimum {:.12e}), {} iterations",
                p.name, fit.rss, p.f_min, fit.iterations
            ));
            assert!(ok, "{}", report.join("\n"));
        }
    }
    assert_eq!(report.len(), 14);
    println!("{}", report.join("\n"));
}
