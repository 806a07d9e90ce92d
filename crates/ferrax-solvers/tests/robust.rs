//! Robust losses and bounds in `least_squares`, against SciPy's `least_squares` on the same
//! problems (scipy 1.x, `xtol = ftol = gtol = 1e-15`; the reference values below are its
//! output): the same objective has the same minimizer, whichever way it is reached.

use ferrax::{Array, Tensor};
use ferrax_solvers::{least_squares, Bound, Loss, LsqOptions, Method, SolverError};

/// A line with three outliers: y = 1 + x/2 + 0.1 sin 3x, y₃ += 8, y₁₁ −= 10, y₁₇ += 15.
fn line() -> (Tensor, Tensor) {
    let x: Vec<f64> = (0..20).map(f64::from).collect();
    let mut y: Vec<f64> = x
        .iter()
        .map(|x| 1.0 + 0.5 * x + 0.1 * (3.0 * x).sin())
        .collect();
    y[3] += 8.0;
    y[11] -= 10.0;
    y[17] += 15.0;
    (
        Tensor::new(Array::from_slice(&x)),
        Tensor::new(Array::from_slice(&y)),
    )
}

#[test]
fn robust_losses_reach_scipys_minimizers() {
    let (x, y) = line();
    let r = |p: Tensor| p.index_axis(0, 0) + p.index_axis(0, 1) * &x - &y;
    // (loss, SciPy's a, b and cost)
    let scipy = [
        (
            Loss::Linear,
            0.9989061491747273,
            0.5686528436878242,
            189.0834241159955,
        ),
        (
            Loss::SoftL1(1.0),
            1.057434111828175,
            0.49900199618441726,
            30.18064301216739,
        ),
        (
            Loss::Huber(1.0),
            1.0580122029676076,
            0.4989165401170418,
            31.535192277613312,
        ),
        (
            Loss::Cauchy(1.0),
            1.005845783826826,
            0.4987562690195116,
            7.150450673822825,
        ),
        (
            Loss::Arctan(1.0),
            0.9935961487769815,
            0.499521685422378,
            2.386852541193104,
        ),
    ];
    for method in [Method::LevenbergMarquardt, Method::GaussNewtonCg] {
        for (loss, a, b, cost) in scipy {
            let opts = LsqOptions {
                loss,
                method,
                ..LsqOptions::default()
            };
            let fit = least_squares(r, &[0.0, 0.0], &opts).unwrap();
            let tol = 1e-7;
            assert!(
                (fit.params[0] - a).abs() < tol && (fit.params[1] - b).abs() < tol,
                "{method:?} {loss:?}: {:?} vs SciPy's [{a}, {b}]",
                fit.params
            );
            assert!(
                (fit.cost - cost).abs() < 1e-9 * cost,
                "{loss:?}: {} vs {cost}",
                fit.cost
            );
            // the residuals reported are the model's own, not the rescaled ones
            let r0 = fit.params[0] + fit.params[1] * 3.0 - y.to_vec::<f64>().unwrap()[3];
            assert!((fit.residuals[3] - r0).abs() < 1e-12);
            assert_eq!(fit.cost, loss.cost(&fit.residuals));
            let se = fit.standard_errors.unwrap();
            assert!(se.iter().all(|s| s.is_finite() && *s > 0.0));
        }
    }
    // the robust fits find the line under the outliers; least squares is pulled off it
    assert!((scipy[3].2 - 0.5).abs() < 2e-3 && (scipy[0].2 - 0.5).abs() > 0.05);
}

/// NIST Misra1a's data.
fn misra1a() -> impl Fn(Tensor) -> Tensor {
    let x = Tensor::new(Array::from_slice(&[
        77.6, 114.9, 141.1, 190.8, 239.9, 289.0, 332.8, 378.4, 434.8, 477.3, 536.8, 593.1, 689.1,
        760.0,
    ]));
    let y = Tensor::new(Array::from_slice(&[
        10.07, 14.73, 17.94, 23.93, 29.61, 35.18, 40.02, 44.82, 50.76, 55.05, 61.01, 66.40, 75.47,
        81.78,
    ]));
    move |p: Tensor| p.index_axis(0, 0) * (1.0 - (-p.index_axis(0, 1) * &x).exp()) - &y
}

#[test]
fn bounds_hold_the_solution_and_leave_an_inactive_one_unchanged() {
    let f = misra1a();
    // an active bound: b1 ≤ 200 (the unbounded optimum is 238.9); SciPy's TRF gives
    // b1 = 200 (active), b2 = 6.790593673641461e-4, cost 1.6672229410987
    let bounds = vec![Bound { lo: 0.0, hi: 200.0 }, Bound { lo: 0.0, hi: 1.0 }];
    let opts = LsqOptions {
        bounds: Some(bounds),
        ..LsqOptions::default()
    };
    let fit = least_squares(&f, &[150.0, 1e-3], &opts).unwrap();
    assert!(
        fit.params[0] <= 200.0 && fit.params[0] > 200.0 - 1e-6,
        "{:?}",
        fit.params
    );
    assert!(
        (fit.params[1] - 6.790593673641461e-4).abs() < 1e-10,
        "{:?}",
        fit.params
    );
    assert!((fit.cost - 1.6672229410987).abs() < 1e-8);
    // inactive bounds: the unbounded solution, and its standard errors (those of x)
    let free = least_squares(&f, &[500.0, 1e-4], &LsqOptions::default()).unwrap();
    for bounds in [
        vec![
            Bound {
                lo: 0.0,
                hi: 1000.0,
            },
            Bound { lo: 0.0, hi: 1.0 },
        ],
        vec![
            Bound {
                lo: 100.0,
                hi: f64::INFINITY,
            },
            Bound {
                lo: f64::NEG_INFINITY,
                hi: 0.01,
            },
        ],
    ] {
        let opts = LsqOptions {
            bounds: Some(bounds),
            ..LsqOptions::default()
        };
        let fit = least_squares(&f, &[500.0, 1e-4], &opts).unwrap();
        let (se, se_free) = (
            fit.standard_errors.unwrap(),
            free.standard_errors.clone().unwrap(),
        );
        for k in 0..2 {
            assert!((fit.params[k] - free.params[k]).abs() < 1e-8 * free.params[k].abs());
            assert!(
                (se[k] - se_free[k]).abs() < 1e-5 * se_free[k],
                "{se:?} vs {se_free:?}"
            );
        }
    }
}

#[test]
fn bad_bounds_and_losses_are_errors() {
    let f = misra1a();
    let with = |bounds: Vec<Bound>, x0: [f64; 2]| {
        let opts = LsqOptions {
            bounds: Some(bounds),
            ..LsqOptions::default()
        };
        least_squares(&f, &x0, &opts).unwrap_err().to_string()
    };
    let b = |lo, hi| Bound { lo, hi };
    assert!(with(vec![b(0.0, 1.0)], [1.0, 1.0]).contains("1 bounds for 2 parameters"));
    assert!(with(vec![b(1.0, 1.0), b(0.0, 1.0)], [1.0, 0.5]).contains("hold no number"));
    assert!(with(vec![b(f64::NAN, 1.0), b(0.0, 1.0)], [1.0, 0.5]).contains("hold no number"));
    assert!(with(vec![b(0.0, 10.0), b(0.0, 1.0)], [11.0, 0.5]).contains("outside its bounds"));
    assert!(with(vec![b(0.0, 10.0), b(0.0, 1.0)], [10.0, 0.5]).contains("on its bound"));
    for loss in [Loss::Huber(0.0), Loss::Cauchy(f64::NAN), Loss::SoftL1(-1.0)] {
        let opts = LsqOptions {
            loss,
            ..LsqOptions::default()
        };
        let e = least_squares(&f, &[500.0, 1e-4], &opts).unwrap_err();
        assert!(matches!(e, SolverError::Input { .. }) && e.to_string().contains("scale"));
    }
    assert!(Loss::from_name("l3", 1.0).is_err());
    assert_eq!(Loss::from_name("soft-l1", 2.0).unwrap(), Loss::SoftL1(2.0));
}
