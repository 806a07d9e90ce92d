//! RK4 through `scan` (`ferrax_solvers::ode`): the loop computes what the same integration
//! unrolled in plain Rust does, its derivative agrees with finite differences of that Rust
//! integration, and Gauss-Newton-CG through the loop recovers a damped oscillator's
//! parameters with one linearization per outer step.

use ferrax::{jvp, Array, Tensor};
use ferrax_solvers::ode::DampedOscillator;
use ferrax_solvers::{least_squares, CgOptions, LsqOptions, Method};

/// The oscillator's displacement after each RK4 step, in plain f64 arithmetic, with the
/// operations in the order `DampedOscillator::displacement` traces them.
fn displacement_unrolled(theta: [f64; 3], dt: f64, steps: usize) -> Vec<f64> {
    let [omega, zeta, x0] = theta;
    let field = |y: [f64; 2]| [y[1], -(omega * omega) * y[0] - zeta * omega * y[1] * 2.0];
    let axpy = |y: [f64; 2], k: [f64; 2], a: f64| [y[0] + k[0] * a, y[1] + k[1] * a];
    let mut y = [x0, 0.0];
    let mut xs = vec![];
    for _ in 0..steps {
        let k1 = field(y);
        let k2 = field(axpy(y, k1, 0.5 * dt));
        let k3 = field(axpy(y, k2, 0.5 * dt));
        let k4 = field(axpy(y, k3, dt));
        let s = |i: usize| k1[i] + k2[i] * 2.0 + k3[i] * 2.0 + k4[i];
        y = [y[0] + s(0) * (dt / 6.0), y[1] + s(1) * (dt / 6.0)];
        xs.push(y[0]);
    }
    xs
}

fn tensor(v: &[f64]) -> Tensor {
    Tensor::new(Array::from_slice(v))
}

#[test]
fn the_scan_integrates_as_the_unrolled_rust_loop_does() {
    let theta = [1.3, 0.2, 0.7];
    let got = DampedOscillator::displacement(&tensor(&theta), 0.05, 60)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    let want = displacement_unrolled(theta, 0.05, 60);
    assert_eq!(got, want);
}

#[test]
fn the_derivative_through_the_scan_matches_finite_differences() {
    let theta = [1.3, 0.2, 0.7];
    for (i, dir) in [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
        .iter()
        .enumerate()
    {
        let (_, dx) = jvp(
            |t: Tensor| DampedOscillator::displacement(&t, 0.05, 60).unwrap(),
            &tensor(&theta),
            &tensor(dir),
        )
        .unwrap();
        let dx = dx.to_vec::<f64>().unwrap();
        let h = 1e-6;
        let (mut plus, mut minus) = (theta, theta);
        plus[i] += h;
        minus[i] -= h;
        let (a, b) = (
            displacement_unrolled(plus, 0.05, 60),
            displacement_unrolled(minus, 0.05, 60),
        );
        for (k, d) in dx.iter().enumerate() {
            let fd = (a[k] - b[k]) / (2.0 * h);
            assert!(
                (d - fd).abs() < 1e-7 * (1.0 + fd.abs()),
                "θ{i} step {k}: {d} vs {fd}"
            );
        }
    }
}

#[test]
fn gauss_newton_cg_through_the_scan_recovers_the_parameters() {
    let truth = [2.0, 0.15, 1.0];
    let problem = DampedOscillator::synthetic(truth, 0.05, 120, 0.01, 3).unwrap();
    let opts = LsqOptions {
        method: Method::GaussNewtonCg,
        max_iterations: 40,
        ftol: 1e-12,
        cg: CgOptions {
            tol: 1e-8,
            max_iterations: 10,
        },
        ..LsqOptions::default()
    };
    let fit = least_squares(problem.residual(), &[1.7, 0.3, 0.8], &opts).unwrap();
    // one linearization per outer step, and one at the solution for the covariance
    assert_eq!(fit.linearizations, fit.iterations + 1);
    assert!(fit
        .standard_errors
        .is_some_and(|s| s.iter().all(|v| v.is_finite() && *v > 0.0)));
    assert!(fit.products > 0);
    for (p, t) in fit.params.iter().zip(truth) {
        assert!(
            (p - t).abs() < 0.03 * t,
            "fitted {:?}, true {truth:?}",
            fit.params
        );
    }
    // the noise's sum of squares is about steps * 0.01²; the fit cannot do much better
    assert!(fit.rss < 2.0 * 120.0 * 1e-4, "rss {}", fit.rss);
}

#[test]
fn bad_steps_states_and_lengths_are_errors() {
    use ferrax::Error;
    use ferrax_solvers::ode::rk4;
    let y0 = tensor(&[1.0]);
    for dt in [f64::NAN, f64::INFINITY] {
        let e = rk4(|y: &Tensor| -y, &y0, dt, 3).unwrap_err();
        assert!(matches!(e, Error::Input { .. }), "{e}");
        assert!(e.to_string().contains("step size"), "{e}");
    }
    let ints = Tensor::new(Array::from_slice(&[1i32, 2]));
    let e = rk4(|y: &Tensor| -y, &ints, 0.1, 3).unwrap_err();
    assert!(matches!(e, Error::DType { .. }), "{e}");
    assert!(e.to_string().contains("i32"), "{e}");
    // the stacked states of 2^60 steps cannot fit: an error before anything runs
    let e = rk4(|y: &Tensor| -y, &y0, 0.1, 1 << 60).unwrap_err();
    assert!(
        matches!(e, Error::ResourceExhausted { .. } | Error::Shape { .. }),
        "{e}"
    );
    // zero steps: no states
    let ys = rk4(|y: &Tensor| -y, &y0, 0.1, 0).unwrap();
    assert_eq!(ys.shape(), vec![0, 1]);
}
