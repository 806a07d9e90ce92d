//! The solvers on reference problems nobody here wrote: all 54 NIST StRD runs to at least 6
//! correct digits (BoxBOD from start 1 included), standard errors against NIST's certified
//! standard deviations, the MGH minima; conjugate gradients on random SPD and indefinite
//! systems; one linearization per outer step in the matrix-free fit; L-BFGS and Newton-CG;
//! every bad-input path.

use ferrax::{eval_counts, reset_eval_counts, Array, DType, Tensor};
use ferrax_solvers::least_squares::standard_errors;
use ferrax_solvers::mgh::problems;
use ferrax_solvers::mlp::{self, MlpSize};
use ferrax_solvers::nist::{self, data_dir, lre, parse_dat, NistProblem};
use ferrax_solvers::{
    conjugate_gradient, least_squares, minimize, steihaug, CgOptions, CgTermination,
    ConjugateGradient, FnOperator, JacobianMode, LinearOperator, LsqOptions, Method, MinMethod,
    MinOptions, MinTermination, SolverError, TensorOperator,
};
use proptest::prelude::*;

fn load(name: &str) -> NistProblem {
    nist::load(&data_dir(), name).unwrap()
}

#[test]
fn all_54_nist_runs_reach_six_digits_and_the_standard_errors_three() {
    let opts = LsqOptions::default();
    let mut runs = vec![];
    for name in nist::ALL {
        let p = load(name);
        for start in [1, 2] {
            let r = nist::run(&p, start, &opts).unwrap();
            assert!(
                r.lre >= 6.0,
                "{name} start {start}: only {:.2} correct digits, params {:?}",
                r.lre,
                r.fit.params
            );
            assert!(
                r.lre_sd >= 3.0,
                "{name} start {start}: standard errors to {:.2} digits: {:?} vs {:?}",
                r.lre_sd,
                r.fit.standard_errors,
                p.certified_sd
            );
            // Lanczos1's certified RSS is below double precision (judge by parameters)
            if name != "Lanczos1" {
                assert!(r.lre_rss >= 6.0, "{name} start {start}: RSS {}", r.fit.rss);
            }
            runs.push(r);
        }
    }
    let s = nist::summary(&runs);
    assert_eq!((s.good, s.total), (54, 54));
    assert!(s.min >= 6.0 && s.median >= 8.0 && s.mean >= 9.0, "{s:?}");
}

#[test]
fn boxbod_from_start_1_finds_the_certified_minimum_not_the_plateau() {
    // SciPy's MINPACK-based LM stops at b1 = 172.5, b2 ≈ 100 (RSS 9771.5) from here.
    let p = load("BoxBOD");
    let r = nist::run(&p, 1, &LsqOptions::default()).unwrap();
    assert!((r.fit.rss - 1168.0088766).abs() < 1e-6, "{}", r.fit.rss);
    assert!(r.lre >= 8.0);
}

#[test]
fn with_minpacks_initial_radius_boxbod_falls_into_scipys_trap() {
    // The reason for the default initial_step_factor = 1 (ARCHITECTURE.md): with MINPACK's
    // 100 the first steps reach the flat region where the b2 column of J vanishes.
    let opts = LsqOptions {
        initial_step_factor: 100.0,
        ..LsqOptions::default()
    };
    let r = nist::run(&load("BoxBOD"), 1, &opts).unwrap();
    assert!(
        r.lre < 1.0 && (r.fit.rss - 9771.5).abs() < 1e-6,
        "{} {:?}",
        r.fit.rss,
        r.fit.params
    );
    assert!(r.fit.params[1] > 50.0);
}

#[test]
fn the_documented_traps_of_the_data() {
    // Rat43's file says 9 degrees of freedom; m − n = 11 is what its certified values use.
    let p = load("Rat43");
    assert_eq!(p.dof, 11);
    assert_eq!(p.dof_file, Some(9));
    assert_eq!((p.y.len(), p.certified.len()), (15, 4));
    // Roszman1 needs atan2: at the certified parameters the residuals give the certified
    // RSS; with the principal arctan (b1 off by one) they would not.
    let p = load("Roszman1");
    let r = nist::residual_fn(&p).unwrap();
    let at = |b: &[f64]| -> f64 {
        r(Tensor::new(Array::from_slice(b)))
            .to_vec::<f64>()
            .unwrap()
            .iter()
            .map(|v| v * v)
            .sum()
    };
    assert!(lre(at(&p.certified), p.rss, 11) > 9.0);
    // Nelson fits log(y): the certified RSS comes back only with the log.
    let p = load("Nelson");
    assert_eq!(p.x.len(), 2);
    let r = nist::residual_fn(&p).unwrap();
    let rss: f64 = r(Tensor::new(Array::from_slice(&p.certified)))
        .to_vec::<f64>()
        .unwrap()
        .iter()
        .map(|v| v * v)
        .sum();
    assert!(lre(rss, p.rss, 11) > 9.0);
    // Every problem's certified parameters reproduce its certified RSS (Lanczos1 aside).
    for name in nist::ALL {
        let p = load(name);
        let r = nist::residual_fn(&p).unwrap();
        let rss: f64 = r(Tensor::new(Array::from_slice(&p.certified)))
            .to_vec::<f64>()
            .unwrap()
            .iter()
            .map(|v| v * v)
            .sum();
        if name != "Lanczos1" {
            assert!(lre(rss, p.rss, 11) > 9.0, "{name}: {rss} vs {}", p.rss);
        }
    }
}

#[test]
fn jacobian_modes_agree() {
    let p = load("Misra1a");
    let base = LsqOptions::default();
    let fwd = least_squares(
        nist::residual_fn(&p).unwrap(),
        &p.start2,
        &LsqOptions {
            jacobian: JacobianMode::Forward,
            ..base.clone()
        },
    )
    .unwrap();
    let rev = least_squares(
        nist::residual_fn(&p).unwrap(),
        &p.start2,
        &LsqOptions {
            jacobian: JacobianMode::Reverse,
            ..base
        },
    )
    .unwrap();
    for (a, b) in fwd.params.iter().zip(&rev.params) {
        assert!((a - b).abs() <= 1e-10 * a.abs());
    }
}

// ---- malformed data ----

fn mangle(name: &str, f: impl Fn(Vec<String>) -> Vec<String>) -> String {
    let text = std::fs::read_to_string(data_dir().join(format!("{name}.dat"))).unwrap();
    f(text
        .lines()
        .map(|l| l.trim_end_matches('\r').to_string())
        .collect())
    .join("\n")
}

fn data_error(text: &str) -> (usize, String) {
    match parse_dat(text, "x.dat") {
        Err(SolverError::Data { file, line, msg }) => {
            assert_eq!(file, "x.dat");
            (line, msg)
        }
        other => panic!("expected a data error, got {other:?}"),
    }
}

#[test]
fn malformed_dat_files_are_errors_naming_the_line() {
    // a bad number in the starting values (line 41 of Misra1a)
    let t = mangle("Misra1a", |mut l| {
        l[40] = l[40].replace("500", "5x0");
        l
    });
    assert_eq!(data_error(&t), (41, "start 1 `5x0` is not a number".into()));
    // a missing column
    let t = mangle("Misra1a", |mut l| {
        l[41] = "  b2 =     0.0001      0.0005".into();
        l
    });
    assert_eq!(
        data_error(&t),
        (42, "expected 4 numbers after `=`, found 2".into())
    );
    // a ragged data row
    let t = mangle("Misra1a", |mut l| {
        l[62] = "  17.94E0".into();
        l
    });
    assert_eq!(data_error(&t).0, 63);
    let t = mangle("Misra1a", |mut l| {
        l[62] = "  17.94E0  141.1E0  3.0".into();
        l
    });
    assert_eq!(
        data_error(&t),
        (63, "this data row has 3 columns, the first had 2".into())
    );
    // a data row dropped: the observation count disagrees
    let t = mangle("Misra1a", |mut l| {
        l[70] = String::new();
        l
    });
    assert_eq!(
        data_error(&t),
        (
            61,
            "the file states 14 observations but has 13 data rows".into()
        )
    );
    // no line ranges in the header
    let t = mangle("Misra1a", |l| {
        l.into_iter()
            .map(|s| s.replace("(lines", "(rows"))
            .collect()
    });
    assert_eq!(
        data_error(&t),
        (
            5,
            "the header does not give a valid line range for the starting values".into()
        )
    );
    // no RSS line
    let t = mangle("Misra1a", |l| {
        l.into_iter()
            .map(|s| s.replace("Residual Sum of Squares:", "RSS:"))
            .collect()
    });
    assert_eq!(
        data_error(&t).1,
        "no `Residual Sum of Squares:` line among the certified values"
    );
    // a file that does not exist
    let e = nist::load(&data_dir(), "NoSuchProblem").unwrap_err();
    assert!(
        e.to_string().contains("NoSuchProblem.dat:0: cannot read"),
        "{e}"
    );
    // a valid file of a problem we have no model for
    let mut p = load("Misra1a");
    p.name = "Unknown".into();
    assert!(nist::residual_fn(&p).is_err());
    assert!(nist::run(&load("Misra1a"), 3, &LsqOptions::default()).is_err());
}

// ---- MGH ----

#[test]
fn mgh_problems_reach_their_published_minima() {
    let opts = LsqOptions::default();
    for p in problems() {
        let r = least_squares(p.residual, &p.x0, &opts).unwrap();
        if p.f_min > 0.0 {
            assert!(
                (r.rss - p.f_min).abs() <= 1e-8 * p.f_min,
                "MGH {} {}: F = {:e}, expected {:e}",
                p.number,
                p.name,
                r.rss,
                p.f_min
            );
        } else {
            assert!(
                r.rss <= 1e-20,
                "MGH {} {}: F = {:e}",
                p.number,
                p.name,
                r.rss
            );
        }
        if let (Some(xm), true) = (&p.x_min, p.number != 13) {
            for (a, b) in r.params.iter().zip(xm) {
                assert!(
                    (a - b).abs() <= 1e-6 * b.abs().max(1e-3),
                    "MGH {}: x = {:?}",
                    p.number,
                    r.params
                );
            }
        }
    }
}

#[test]
fn minimizers_on_sums_of_squares_and_rosenbrock() {
    // F(x) = Σ f_i² of a few MGH problems, minimized directly
    for number in [1u32, 5, 14] {
        let p = problems().into_iter().find(|p| p.number == number).unwrap();
        let f = move |x: Tensor| (p.residual)(x).powi(2).sum_all();
        let x0 = problems()
            .into_iter()
            .find(|q| q.number == number)
            .unwrap()
            .x0;
        for method in [MinMethod::NewtonCg, MinMethod::Lbfgs { memory: 10 }] {
            let opts = MinOptions {
                method,
                gtol: 1e-12,
                ..MinOptions::default()
            };
            let r = minimize(f, &x0, &opts).unwrap();
            assert!(
                r.f <= 1e-16,
                "MGH {number} by {method:?}: F = {:e} ({:?})",
                r.f,
                r.termination
            );
            if method == MinMethod::NewtonCg {
                // one linearization of the gradient per iteration (the last one finds gtol)
                assert_eq!(r.linearizations, r.iterations);
                assert!(r.hessian_products > 0);
            }
        }
    }
    // the extended Rosenbrock function in 20 dimensions
    let rosen = |x: Tensor| {
        let n = x.shape()[0];
        let a = x.slice_axis(0, 0, n - 1);
        let b = x.slice_axis(0, 1, n);
        (100.0 * (&b - &a * &a).powi(2) + (1.0 - &a).powi(2)).sum_all()
    };
    let x0: Vec<f64> = (0..20)
        .map(|i| if i % 2 == 0 { -1.2 } else { 1.0 })
        .collect();
    for method in [MinMethod::NewtonCg, MinMethod::Lbfgs { memory: 10 }] {
        let r = minimize(
            rosen,
            &x0,
            &MinOptions {
                method,
                ..MinOptions::default()
            },
        )
        .unwrap();
        assert!(
            r.x.iter().all(|v| (v - 1.0).abs() < 1e-7),
            "{method:?}: {:?}",
            r.x
        );
        assert_eq!(r.termination, MinTermination::Gtol);
    }
}

// ---- conjugate gradients ----

fn spd(seed: u64, n: usize) -> Vec<f64> {
    // A = Bᵀ B + I
    let b = Array::random_normal(seed, &[n, n], DType::F64)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    let mut a = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            a[i * n + j] = (0..n).map(|k| b[k * n + i] * b[k * n + j]).sum::<f64>()
                + if i == j { 1.0 } else { 0.0 };
        }
    }
    a
}

fn matvec(a: &[f64], v: &[f64]) -> Vec<f64> {
    let n = v.len();
    (0..n)
        .map(|i| (0..n).map(|j| a[i * n + j] * v[j]).sum())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn cg_solves_random_spd_systems(seed in 0u64..10_000, n in 1usize..25) {
        let a = spd(seed, n);
        let b = Array::random_normal(seed + 1, &[n], DType::F64).unwrap().to_vec::<f64>().unwrap();
        let op = FnOperator { dim: n, f: |v: &[f64]| matvec(&a, v) };
        let opts = CgOptions { tol: 1e-12, max_iterations: 10 * n };
        let r = conjugate_gradient(&op, &b, &opts).unwrap();
        prop_assert_eq!(r.termination, CgTermination::Converged);
        let res: Vec<f64> = matvec(&a, &r.x).iter().zip(&b).map(|(x, y)| x - y).collect();
        let rn = res.iter().map(|v| v * v).sum::<f64>().sqrt();
        let bn = b.iter().map(|v| v * v).sum::<f64>().sqrt();
        prop_assert!(rn <= 1e-10 * bn, "true residual {} vs |b| {}", rn, bn);
        // a Jacobi preconditioner solves the same system
        let diag: Vec<f64> = (0..n).map(|i| a[i * n + i]).collect();
        let m = FnOperator { dim: n, f: |v: &[f64]| v.iter().zip(&diag).map(|(x, d)| x / d).collect() };
        let rp = ConjugateGradient::new(&op).preconditioner(&m).options(&opts).solve(&b).unwrap();
        prop_assert_eq!(rp.termination, CgTermination::Converged);
        for (x, y) in rp.x.iter().zip(&r.x) {
            prop_assert!((x - y).abs() <= 1e-8 * y.abs().max(1.0));
        }
    }
}

#[test]
fn cg_reports_negative_curvature_limits_and_non_finite_values() {
    let indefinite = FnOperator {
        dim: 2,
        f: |v: &[f64]| vec![v[0], -2.0 * v[1]],
    };
    let r = conjugate_gradient(&indefinite, &[1.0, 1.0], &CgOptions::default()).unwrap();
    assert_eq!(r.termination, CgTermination::NegativeCurvature);
    let a = spd(3, 30);
    let op = FnOperator {
        dim: 30,
        f: |v: &[f64]| matvec(&a, v),
    };
    let b = vec![1.0; 30];
    let r = conjugate_gradient(
        &op,
        &b,
        &CgOptions {
            tol: 1e-14,
            max_iterations: 3,
        },
    )
    .unwrap();
    assert_eq!(
        (r.termination, r.iterations),
        (CgTermination::IterationLimit, 3)
    );
    let nan = FnOperator {
        dim: 2,
        f: |_v: &[f64]| vec![f64::NAN, 0.0],
    };
    let r = conjugate_gradient(&nan, &[1.0, 1.0], &CgOptions::default()).unwrap();
    assert_eq!(r.termination, CgTermination::NonFinite);
    // warm start from the solution: nothing to do
    let r0 = conjugate_gradient(&op, &b, &CgOptions::default()).unwrap();
    let r1 = ConjugateGradient::new(&op)
        .start(&r0.x)
        .options(&CgOptions {
            tol: 1e-6,
            max_iterations: 100,
        })
        .solve(&b)
        .unwrap();
    assert_eq!(r1.iterations, 0);
    let e = conjugate_gradient(&op, &[1.0], &CgOptions::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "bad input to `conjugate_gradient`: the operator has dimension 30, b has 1 entries"
    );
    let e = ConjugateGradient::new(&op)
        .preconditioner(&indefinite)
        .options(&CgOptions::default())
        .solve(&b)
        .unwrap_err();
    assert!(e
        .to_string()
        .contains("the preconditioner has dimension 2, the operator 30"));
}

#[test]
fn steihaug_stops_at_the_boundary_and_follows_negative_curvature() {
    let h = FnOperator {
        dim: 2,
        f: |v: &[f64]| vec![2.0 * v[0], 4.0 * v[1]],
    };
    let g = [-2.0, -4.0]; // Newton step (1, 1), norm √2
    let inside = steihaug(&h, &g, 10.0, &CgOptions::default()).unwrap();
    assert_eq!(inside.termination, CgTermination::Converged);
    assert!((inside.p[0] - 1.0).abs() < 1e-12 && (inside.p[1] - 1.0).abs() < 1e-12);
    assert!((inside.model_change + 3.0).abs() < 1e-12); // gᵀp + ½pᵀHp = -6 + 3
    let edge = steihaug(&h, &g, 0.5, &CgOptions::default()).unwrap();
    assert_eq!(edge.termination, CgTermination::Boundary);
    assert!(((edge.p[0].powi(2) + edge.p[1].powi(2)).sqrt() - 0.5).abs() < 1e-12);
    let neg = FnOperator {
        dim: 2,
        f: |v: &[f64]| vec![-v[0], v[1]],
    };
    let r = steihaug(&neg, &[1.0, 0.0], 2.0, &CgOptions::default()).unwrap();
    assert_eq!(r.termination, CgTermination::NegativeCurvature);
    assert!((r.p[0] + 2.0).abs() < 1e-12, "{:?}", r.p);
}

#[test]
fn cg_on_a_linear_map_and_a_gauss_newton_operator() {
    // Solve (Jᵀ J) x = Jᵀ y for a linear model: the least-squares solution
    let a = Tensor::random_normal(5, &[12, 4], DType::F64);
    let y = Tensor::random_normal(6, &[12], DType::F64);
    let gn = ferrax::gauss_newton(
        |x: Tensor| a.matmul(&x) - &y,
        &Tensor::zeros(&[4], DType::F64),
    )
    .unwrap();
    let op = TensorOperator::new(&[4], |v: &Tensor| gn.apply(v));
    let jty: Tensor = gn.gradient().unwrap();
    let b: Vec<f64> = jty.to_vec::<f64>().unwrap().iter().map(|v| -v).collect();
    let r = conjugate_gradient(&op, &b, &CgOptions::default()).unwrap();
    assert_eq!(r.termination, CgTermination::Converged);
    let fit = least_squares(
        |x: Tensor| a.matmul(&x) - &y,
        &[0.0; 4],
        &LsqOptions::default(),
    )
    .unwrap();
    for (u, v) in r.x.iter().zip(&fit.params) {
        assert!((u - v).abs() < 1e-9, "{:?} vs {:?}", r.x, fit.params);
    }
}

// ---- the matrix-free fit ----

#[test]
fn gauss_newton_cg_makes_exactly_one_linearization_per_outer_step() {
    let size = MlpSize {
        samples: 128,
        inputs: 6,
        hidden: 10,
    };
    let (x, y, theta0) = mlp::problem(size, 3).unwrap();
    let opts = LsqOptions {
        method: Method::GaussNewtonCg,
        max_iterations: 8,
        cg: CgOptions {
            tol: 1e-4,
            max_iterations: 50,
        },
        // no covariance at the end (its linearization is counted apart, tested below)
        covariance_up_to: 0,
        ..LsqOptions::default()
    };
    reset_eval_counts();
    let fit = least_squares(mlp::residual(size, x.clone(), y.clone()), &theta0, &opts).unwrap();
    let counts = eval_counts();
    assert_eq!(fit.linearizations, fit.iterations);
    assert!(fit.products > fit.iterations, "CG ran");
    // Independent evidence: tanh (primal work) ran once per linearization and once per
    // trial point, never in the Gauss-Newton products.
    assert_eq!(counts["tanh"] as usize, fit.residual_evaluations);
    assert!(fit.residual_evaluations < fit.products);
    let rss0: f64 = mlp::residual(size, x, y)(Tensor::new(Array::from_slice(&theta0)))
        .to_vec::<f64>()
        .unwrap()
        .iter()
        .map(|v| v * v)
        .sum();
    assert!(fit.rss < 0.2 * rss0, "rss {} from {}", fit.rss, rss0);
    assert_eq!(size.num_params().unwrap(), 6 * 10 + 2 * 10 + 1);
    assert_eq!(MlpSize::BENCHMARK.num_params().unwrap(), 10_201);
}

#[test]
fn matrix_free_covariance_equals_the_dense_one() {
    // Gauss-Newton-CG's covariance (one CG solve with JᵀJ per parameter, no Jacobian
    // formed) against Levenberg-Marquardt's (the SVD of the dense Jacobian), on a NIST
    // problem with certified standard deviations; the iteration callback sees every step
    use std::sync::{Arc, Mutex};
    let p = load("Misra1a");
    let seen = Arc::new(Mutex::new(vec![]));
    let log = seen.clone();
    let opts = LsqOptions {
        on_iteration: ferrax_solvers::least_squares::OnIteration::new(move |i| {
            log.lock().unwrap().push(i.clone())
        }),
        ..LsqOptions::default()
    };
    let lm = least_squares(nist::residual_fn(&p).unwrap(), &p.start2, &opts).unwrap();
    assert_eq!(*seen.lock().unwrap(), lm.history);
    assert!(lm.history.iter().all(|i| i.step_norm.is_finite()));
    let gn = least_squares(
        nist::residual_fn(&p).unwrap(),
        &p.start2,
        &LsqOptions {
            method: Method::GaussNewtonCg,
            ..LsqOptions::default()
        },
    )
    .unwrap();
    let (a, b) = (lm.covariance.unwrap(), gn.covariance.unwrap());
    assert_eq!(a.len(), 4);
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() <= 1e-6 * x.abs(), "{a:?} vs {b:?}");
    }
    assert_eq!(a[1], a[2], "symmetric");
    for (s, cov) in [(&lm.standard_errors, &a), (&gn.standard_errors, &b)] {
        let s = s.as_ref().unwrap();
        assert_eq!(s[0], cov[0].sqrt());
        assert!((s[1] - p.certified_sd[1]).abs() <= 1e-6 * p.certified_sd[1]);
    }
}

// ---- bad input ----

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let opts = LsqOptions::default();
    let e = least_squares(|x: Tensor| x.log(), &[-1.0, 2.0], &opts).unwrap_err();
    assert_eq!(
        e.to_string(),
        "non-finite value: the residual function at x0: component 0 is NaN"
    );
    let e = least_squares(|x: Tensor| x, &[], &opts).unwrap_err();
    assert!(e.to_string().contains("x0 is empty"));
    let e = least_squares(|x: Tensor| x, &[f64::NAN], &opts).unwrap_err();
    assert!(matches!(e, SolverError::NonFinite(_)));
    let e = least_squares(|x: Tensor| x.astype(DType::F32), &[1.0], &opts).unwrap_err();
    assert!(
        e.to_string()
            .contains("the residual function must return f64 values, it returns f32[1]"),
        "{e}"
    );
    // a shape mistake inside the residual function comes back as ferrax's error
    let e = least_squares(
        |x: Tensor| &x + Tensor::zeros(&[3], DType::F64),
        &[1.0, 2.0],
        &opts,
    )
    .unwrap_err();
    assert!(
        matches!(e, SolverError::Ferrax(ferrax::Error::Shape { .. })),
        "{e:?}"
    );
    let e = least_squares(
        |x: Tensor| x.exp().exp().exp(),
        &[1e3],
        &LsqOptions {
            method: Method::GaussNewtonCg,
            ..opts.clone()
        },
    )
    .unwrap_err();
    assert!(matches!(e, SolverError::NonFinite(_)), "{e:?}");
    let e = minimize(|x: Tensor| x.sin(), &[1.0, 2.0], &MinOptions::default()).unwrap_err();
    assert!(e
        .to_string()
        .contains("the objective must return an f64 scalar, it returns f64[2]"));
    let op = TensorOperator::new(&[2], |v: &Tensor| Ok(v.sum_all()));
    let e = ferrax_solvers::LinearOperator::apply(&op, &[1.0, 2.0]).unwrap_err();
    assert!(
        e.to_string()
            .contains("the operator must map f64[2] to f64[2]"),
        "{e}"
    );
}

// ---- issue 10: nonsense is refused ----

#[test]
fn cg_checks_the_length_of_every_operator_and_preconditioner_result() {
    // An operator that drops or adds a component gave `Ok` with garbage.
    let short = FnOperator {
        dim: 3,
        f: |v: &[f64]| vec![2.0 * v[0], 2.0 * v[1]],
    };
    let long = FnOperator {
        dim: 3,
        f: |v: &[f64]| v.iter().chain([1.0].iter()).copied().collect(),
    };
    let b = [1.0, 2.0, 3.0];
    let opts = CgOptions::default();
    let e = conjugate_gradient(&short, &b, &opts).unwrap_err();
    assert_eq!(
        e.to_string(),
        "bad input to `conjugate_gradient`: the operator returned 2 values, expected 3 (its dimension)"
    );
    let e = conjugate_gradient(&long, &b, &opts).unwrap_err();
    assert!(
        e.to_string()
            .contains("the operator returned 4 values, expected 3"),
        "{e}"
    );
    // from a starting point: the first product is checked too
    let e = ConjugateGradient::new(&short)
        .start(&[1.0, 1.0, 1.0])
        .options(&opts)
        .solve(&b)
        .unwrap_err();
    assert!(
        e.to_string().contains("the operator returned 2 values"),
        "{e}"
    );
    // a preconditioner of the right dimension that returns the wrong length
    let id = FnOperator {
        dim: 3,
        f: |v: &[f64]| v.to_vec(),
    };
    let e = ConjugateGradient::new(&id)
        .preconditioner(&short)
        .options(&opts)
        .solve(&b)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "bad input to `conjugate_gradient`: the preconditioner returned 2 values, expected 3 (its dimension)"
    );
    // ... on a later application, not only the first
    let calls = std::cell::Cell::new(0);
    let late = FnOperator {
        dim: 3,
        f: |v: &[f64]| {
            calls.set(calls.get() + 1);
            if calls.get() > 1 {
                v[..2].to_vec()
            } else {
                v.to_vec()
            }
        },
    };
    let spd = FnOperator {
        dim: 3,
        f: |v: &[f64]| vec![4.0 * v[0] + v[1], v[0] + 3.0 * v[1], 2.0 * v[2]],
    };
    let e = ConjugateGradient::new(&spd)
        .preconditioner(&late)
        .options(&opts)
        .solve(&b)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("the preconditioner returned 2 values"),
        "{e}"
    );
    let e = steihaug(&short, &b, 1.0, &opts).unwrap_err();
    assert_eq!(
        e.to_string(),
        "bad input to `steihaug`: the operator returned 2 values, expected 3 (its dimension)"
    );
}

#[test]
fn cg_solves_a_zero_right_hand_side_to_zero() {
    // From a nonzero start the relative test cannot hold (its target is 0): x0 came back
    // as "converged".
    let a = FnOperator {
        dim: 2,
        f: |v: &[f64]| vec![4.0 * v[0] + v[1], v[0] + 3.0 * v[1]],
    };
    let r = ConjugateGradient::new(&a)
        .start(&[1.0, -2.0])
        .options(&CgOptions::default())
        .solve(&[0.0, 0.0])
        .unwrap();
    assert_eq!(r.termination, CgTermination::Converged);
    assert_eq!(r.x, vec![0.0, 0.0]);
    assert_eq!(r.residual_norm, 0.0);
}

#[test]
fn steihaug_and_cg_refuse_bad_radii_and_tolerances() {
    let h = FnOperator {
        dim: 2,
        f: |v: &[f64]| vec![2.0 * v[0], 4.0 * v[1]],
    };
    let g = [-2.0, -4.0];
    for delta in [-1.0, 0.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let e = steihaug(&h, &g, delta, &CgOptions::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("bad input to `steihaug`: the trust radius must be finite and positive, got {delta}")
        );
    }
    for tol in [-1e-6, f64::NAN, f64::INFINITY] {
        let opts = CgOptions {
            tol,
            max_iterations: 10,
        };
        let e = steihaug(&h, &g, 1.0, &opts).unwrap_err();
        assert!(
            e.to_string()
                .contains(&format!("tol must be a finite number >= 0, got {tol}")),
            "{e}"
        );
        let e = conjugate_gradient(&h, &g, &opts).unwrap_err();
        assert!(
            e.to_string().contains("tol must be a finite number >= 0"),
            "{e}"
        );
    }
    // tol = 0 is allowed: iterate to the limit or an exact solution
    let opts = CgOptions {
        tol: 0.0,
        max_iterations: 10,
    };
    assert!(conjugate_gradient(&h, &g, &opts).is_ok());
}

#[test]
fn tensor_operators_with_overflowing_shapes_are_refused() {
    let op = TensorOperator::new(&[1 << 40, 1 << 40], |v: &Tensor| Ok(v.clone()));
    assert_eq!(op.dim(), usize::MAX);
    let e = op.apply(&[1.0, 2.0]).unwrap_err();
    assert!(
        e.to_string().contains("an element count that overflows"),
        "{e}"
    );
    let e = conjugate_gradient(&op, &[1.0], &CgOptions::default()).unwrap_err();
    assert!(
        e.to_string()
            .contains("the operator has dimension 18446744073709551615, b has 1 entries"),
        "{e}"
    );
    let op = TensorOperator::new(&[2], |v: &Tensor| Ok(v.clone()));
    let e = op.apply(&[1.0, 2.0, 3.0]).unwrap_err();
    assert!(e.to_string().contains("a vector of length 3"), "{e}");
}

#[test]
fn standard_errors_check_their_sizes() {
    // (2^63 + 1) · 2 wraps to 2 = j.len(): a panic (overflow, or indexing past j)
    let m = usize::MAX / 2 + 2;
    let e = standard_errors(&[1.0, 2.0], m, 2, 1.0).unwrap_err();
    assert!(matches!(e, SolverError::Input { .. }), "{e:?}");
    let e = standard_errors(&[], usize::MAX, usize::MAX, 1.0).unwrap_err();
    assert!(
        e.to_string().contains("need an m×n Jacobian with m > n"),
        "{e}"
    );
    let j = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
    assert!(standard_errors(&j, 3, 2, 1.0).is_ok());
    for rss in [f64::NAN, -1.0, f64::INFINITY] {
        let e = standard_errors(&j, 3, 2, rss).unwrap_err();
        assert!(
            e.to_string()
                .contains("the residual sum of squares must be finite"),
            "{e}"
        );
    }
    let e = standard_errors(&[1.0, 0.0, f64::NAN, 1.0, 1.0, 1.0], 3, 2, 1.0).unwrap_err();
    assert!(matches!(e, SolverError::NonFinite(_)), "{e:?}");
}

#[test]
fn least_squares_and_minimize_refuse_bad_options() {
    let r = |x: Tensor| &x - 1.0;
    let base = LsqOptions::default();
    let cases: Vec<(LsqOptions, &str)> = vec![
        (
            LsqOptions {
                ftol: f64::NAN,
                ..base.clone()
            },
            "ftol must be a finite number >= 0, got NaN",
        ),
        (
            LsqOptions {
                xtol: -1.0,
                ..base.clone()
            },
            "xtol must be a finite number >= 0, got -1",
        ),
        (
            LsqOptions {
                gtol: f64::INFINITY,
                ..base.clone()
            },
            "gtol must be a finite number >= 0, got inf",
        ),
        (
            LsqOptions {
                initial_step_factor: 0.0,
                ..base.clone()
            },
            "initial_step_factor must be finite and positive, got 0",
        ),
        (
            LsqOptions {
                initial_step_factor: f64::NAN,
                ..base.clone()
            },
            "initial_step_factor must be finite and positive, got NaN",
        ),
        (
            LsqOptions {
                method: Method::GaussNewtonCg,
                cg: CgOptions {
                    tol: -1.0,
                    max_iterations: 10,
                },
                ..base.clone()
            },
            "cg.tol must be a finite number >= 0, got -1",
        ),
    ];
    for (opts, msg) in cases {
        let e = least_squares(r, &[0.0, 0.0], &opts).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("bad input to `least_squares`: {msg}")
        );
    }
    let f = |x: Tensor| x.powi(2).sum_all();
    for gtol in [f64::NAN, -1.0, f64::INFINITY] {
        let e = minimize(
            f,
            &[1.0],
            &MinOptions {
                gtol,
                ..MinOptions::default()
            },
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("gtol must be a finite number >= 0"),
            "{e}"
        );
    }
    // a memory of 0 was silently taken as 1
    let e = minimize(
        f,
        &[1.0],
        &MinOptions {
            method: MinMethod::Lbfgs { memory: 0 },
            ..MinOptions::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("a memory of at least 1"), "{e}");
}

#[test]
fn solvers_refuse_empty_and_mismatched_problems() {
    let opts = LsqOptions::default();
    // no residuals: nothing to fit (both methods)
    for method in [Method::LevenbergMarquardt, Method::GaussNewtonCg] {
        let e = least_squares(
            |x: Tensor| x.slice_axis(0, 0, 0),
            &[1.0, 2.0],
            &LsqOptions {
                method,
                ..opts.clone()
            },
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("the residual function returns no values"),
            "{method:?}: {e}"
        );
    }
    // a residual function that reads a parameter x0 does not have
    let e = least_squares(|x: Tensor| x.index_axis(0, 5) - 1.0, &[1.0, 2.0], &opts).unwrap_err();
    assert!(matches!(e, SolverError::Ferrax(_)), "{e:?}");
    // a scalar residual is one residual
    let fit = least_squares(|x: Tensor| x.index_axis(0, 0) - 3.0, &[1.0], &opts).unwrap();
    assert!((fit.params[0] - 3.0).abs() < 1e-12);
    // the MGH problems with a start of the wrong length
    for p in problems() {
        let short = &p.x0[..1];
        let e = least_squares(p.residual, short, &opts);
        assert!(e.is_err(), "MGH {} from {short:?}", p.number);
    }
    // minimize: NaN start, empty start, an objective that is NaN at the start
    let f = |x: Tensor| x.powi(2).sum_all();
    assert!(matches!(
        minimize(f, &[f64::NAN], &MinOptions::default()).unwrap_err(),
        SolverError::NonFinite(_)
    ));
    assert!(minimize(f, &[], &MinOptions::default()).is_err());
    for method in [MinMethod::NewtonCg, MinMethod::Lbfgs { memory: 5 }] {
        let e = minimize(
            |x: Tensor| x.log().sum_all(),
            &[-1.0],
            &MinOptions {
                method,
                ..MinOptions::default()
            },
        )
        .unwrap_err();
        assert!(matches!(e, SolverError::NonFinite(_)), "{method:?}: {e:?}");
    }
}

#[test]
fn mlp_sizes_are_checked() {
    let huge = MlpSize {
        samples: 1,
        inputs: usize::MAX,
        hidden: 2,
    };
    let e = huge.num_params().unwrap_err();
    assert!(e.to_string().contains("the count overflows"), "{e}");
    assert!(mlp::problem(huge, 0).is_err());
    let theta = Tensor::zeros(&[4], DType::F64);
    let x = Tensor::zeros(&[1, 1], DType::F64);
    assert!(mlp::mlp(huge, &theta, &x).to_vec::<f64>().is_err());
    // theta of the wrong length for the size: an error when read, not a panic
    let size = MlpSize {
        samples: 3,
        inputs: 2,
        hidden: 2,
    };
    assert!(mlp::mlp(size, &theta, &Tensor::zeros(&[3, 2], DType::F64))
        .to_vec::<f64>()
        .is_err());
    // the largest seed: neighbouring seeds wrap instead of overflowing
    let (x, y, theta0) = mlp::problem(size, u64::MAX).unwrap();
    assert_eq!((x.shape(), y.shape()), (&[3, 2][..], &[3][..]));
    assert_eq!(theta0.len(), size.num_params().unwrap());
}

// ---- issue 10: NIST files ----

fn fragment(text: &str) -> String {
    data_error(text).1
}

#[test]
fn a_nist_file_must_declare_as_many_parameters_as_its_model_uses() {
    // Misra1a's model has 2; a third declared parameter was ignored and the fit returned Ok
    let t = mangle("Misra1a", |mut l| {
        l[4] = l[4].replace("(lines 41 to 42)", "(lines 41 to 43)");
        l[42] = "  b3 =     1           2           3.0E+00           1.0E-01".into();
        l
    });
    assert_eq!(
        data_error(&t),
        (
            41,
            "the file declares 3 parameters (lines 41 to 43) but the Misra1a model has 2".into()
        )
    );
    let t = mangle("Misra1a", |mut l| {
        l[4] = l[4].replace("(lines 41 to 42)", "(lines 41 to 41)");
        l
    });
    assert_eq!(
        data_error(&t).1,
        "the file declares 1 parameters (lines 41 to 41) but the Misra1a model has 2"
    );
    // a predictor column the model does not read
    let t = mangle("Misra1a", |mut l| {
        for row in &mut l[60..74] {
            row.push_str("  1.0");
        }
        l
    });
    assert_eq!(
        data_error(&t),
        (
            61,
            "this data row has 3 columns, the Misra1a model needs 2 (a response and 1 predictor(s))"
                .into()
        )
    );
    // Nelson needs its two predictors
    let t = mangle("Nelson", |l| {
        l.into_iter()
            .enumerate()
            .map(|(i, row)| {
                if i >= 60 {
                    row.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
                } else {
                    row
                }
            })
            .collect()
    });
    assert!(
        fragment(&t).contains("the Nelson model needs 3"),
        "{}",
        fragment(&t)
    );
    // through `load`, the error names the file
    let dir = temp_dir("params");
    std::fs::write(
        dir.join("Misra1a.dat"),
        mangle("Misra1a", |mut l| {
            l[4] = l[4].replace("(lines 41 to 42)", "(lines 41 to 43)");
            l[42] = "  b3 =     1           2           3.0E+00           1.0E-01".into();
            l
        }),
    )
    .unwrap();
    let e = nist::load(&dir, "Misra1a").unwrap_err();
    assert!(
        e.to_string().ends_with("Misra1a.dat:41: the file declares 3 parameters (lines 41 to 43) but the Misra1a model has 2"),
        "{e}"
    );
}

#[test]
fn hand_built_problems_must_agree_with_their_model() {
    let good = load("Misra1a");
    let cases: Vec<(NistProblem, &str)> = vec![
        (
            NistProblem {
                certified: vec![1.0, 2.0, 3.0],
                ..good.clone()
            },
            "3 certified values but the model has 2 parameters",
        ),
        (
            NistProblem {
                start2: vec![1.0],
                ..good.clone()
            },
            "1 start 2 but the model has 2 parameters",
        ),
        (
            NistProblem {
                certified_digits: vec![],
                ..good.clone()
            },
            "0 certified digits but the model has 2 parameters",
        ),
        // no predictor column: `p.x[0]` panicked
        (
            NistProblem {
                x: vec![],
                ..good.clone()
            },
            "0 predictor column(s) but the model reads 1",
        ),
        (
            NistProblem {
                x: vec![vec![1.0; 3]],
                ..good.clone()
            },
            "a predictor column has 3 values for 14 responses",
        ),
        (
            NistProblem {
                y: vec![1.0, 2.0],
                x: vec![vec![1.0, 2.0]],
                ..good.clone()
            },
            "2 observations for 2 parameters",
        ),
        (
            NistProblem {
                name: "Unknown".into(),
                ..good.clone()
            },
            "no model for a problem of this name",
        ),
    ];
    for (p, msg) in cases {
        let e = nist::residual_fn(&p).err().expect(msg);
        assert!(e.to_string().contains(msg), "`{e}` lacks `{msg}`");
        assert!(nist::run(&p, 1, &LsqOptions::default()).is_err(), "{msg}");
    }
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ferrax-solvers-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn malformed_nist_files_are_errors_with_the_file_and_line() {
    let cases: Vec<(String, usize, &str)> = vec![
        // truncated: the data range runs past the end
        (
            mangle("Misra1a", |l| l[..65].to_vec()),
            7,
            "the data are said to be on lines 61 to 74, but the file has 65 lines",
        ),
        (
            mangle("Misra1a", |l| l[..45].to_vec()),
            6,
            "the certified values are said to be on lines 41 to 47, but the file has 45 lines",
        ),
        (
            String::new(),
            0,
            "the header does not give a valid line range for the starting values",
        ),
        (
            mangle("Misra1a", |l| l[..9].to_vec()),
            5,
            "the starting values are said to be on lines 41 to 42, but the file has 9 lines",
        ),
        // a range backwards, a range from line 0
        (
            mangle("Misra1a", |mut l| {
                l[6] = l[6].replace("(lines 61 to 74)", "(lines 74 to 61)");
                l
            }),
            7,
            "the header does not give a valid line range for the data",
        ),
        (
            mangle("Misra1a", |mut l| {
                l[5] = l[5].replace("(lines 41 to 47)", "(lines 0 to 47)");
                l
            }),
            6,
            "the header does not give a valid line range for the certified values",
        ),
        // missing sections
        (
            mangle("Misra1a", |mut l| {
                l[1] = "Name: Misra1a".into();
                l
            }),
            0,
            "no `Dataset Name:` line",
        ),
        (
            mangle("Misra1a", |mut l| {
                l[44] = String::new();
                l
            }),
            41,
            "no `Residual Standard Deviation:` line among the certified values",
        ),
        (
            mangle("Misra1a", |l| {
                l.into_iter()
                    .map(|s| s.replace("Level of Difficulty", "Difficulty"))
                    .collect()
            }),
            0,
            "no `Lower|Average|Higher Level of Difficulty` line in the header",
        ),
        // NaN and infinity are numbers to Rust's parser, not to a data set
        (
            mangle("Misra1a", |mut l| {
                l[62] = "  NaN  141.1E0".into();
                l
            }),
            63,
            "data value `NaN` is not a finite number",
        ),
        (
            mangle("Misra1a", |mut l| {
                l[40] = l[40].replace("500", "inf");
                l
            }),
            41,
            "start 1 `inf` is not a finite number",
        ),
        (
            mangle("Misra1a", |mut l| {
                l[43] = "Residual Sum of Squares:   infinity".into();
                l
            }),
            44,
            "residual sum of squares `infinity` is not a finite number",
        ),
        (
            mangle("Misra1a", |mut l| {
                l[40] = l[40].replace("2.7070075241E+00", "-2.7070075241E+00");
                l
            }),
            41,
            "certified standard deviation `-2.7070075241E+00` is negative",
        ),
        // counts are whole numbers, not floats cast down (14.9 was read as 14)
        (
            mangle("Misra1a", |mut l| {
                l[46] = "Number of Observations:      14.9".into();
                l
            }),
            47,
            "number of observations `14.9` is not a whole number",
        ),
        (
            mangle("Misra1a", |mut l| {
                l[45] = "Degrees of Freedom:     -12".into();
                l
            }),
            46,
            "degrees of freedom `-12` is not a whole number",
        ),
        // a parameter line with no name
        (
            mangle("Misra1a", |mut l| {
                l[40] =
                    "   =   500         250           2.3894212918E+02  2.7070075241E+00".into();
                l
            }),
            41,
            "expected `bN = start1 start2 certified sd`",
        ),
        // wrong column counts
        (
            mangle("Misra1a", |mut l| {
                l[40] = "  b1 =   500         250           2.3894212918E+02".into();
                l
            }),
            41,
            "expected 4 numbers after `=`, found 3",
        ),
        (
            mangle("Misra1a", |mut l| {
                l[60] = "  10.07E0".into();
                l
            }),
            61,
            "a data row needs a response and a predictor",
        ),
    ];
    for (text, line, msg) in cases {
        assert_eq!(data_error(&text), (line, msg.to_string()), "{msg}");
    }
    // through `load`: a directory, a non-UTF-8 file, a file of another problem
    let dir = temp_dir("malformed");
    std::fs::create_dir_all(dir.join("BoxBOD.dat")).unwrap();
    let e = nist::load(&dir, "BoxBOD").unwrap_err();
    assert!(e.to_string().contains("BoxBOD.dat:0: cannot read"), "{e}");
    std::fs::write(dir.join("Rat42.dat"), b"\xff\xfe").unwrap();
    let e = nist::load(&dir, "Rat42").unwrap_err();
    assert!(e.to_string().contains("Rat42.dat:0: cannot read"), "{e}");
    std::fs::write(dir.join("Rat43.dat"), mangle("Misra1a", |l| l)).unwrap();
    let e = nist::load(&dir, "Rat43").unwrap_err();
    assert!(
        e.to_string()
            .ends_with("Rat43.dat:2: the file holds the problem `Misra1a`, not `Rat43`"),
        "{e}"
    );
    // names in any case read the canonical file
    assert_eq!(nist::load(&data_dir(), "boxbod").unwrap().name, "BoxBOD");
    assert_eq!(nist::problem_name("MISRA1A"), Some("Misra1a"));
    assert_eq!(nist::problem_name("Nope"), None);
}

#[test]
fn nist_parser_never_panics_on_truncated_or_mangled_files() {
    // Every prefix of a file (by line and by byte), every line deleted, and every line
    // replaced by garbage: each parses or is a data error within the file's lines.
    for name in ["Misra1a", "Nelson", "Rat43"] {
        let text = std::fs::read_to_string(data_dir().join(format!("{name}.dat"))).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let mut texts: Vec<String> = vec![];
        for k in 0..=lines.len() {
            texts.push(lines[..k].join("\n"));
            let mut v = lines.clone();
            if k < v.len() {
                v.remove(k);
                texts.push(v.join("\n"));
                let mut w = lines.clone();
                w[k] = "  b1 = x = (lines 9 to 99999999999999999999999) nan inf 1e999";
                texts.push(w.join("\n"));
            }
        }
        for cut in (0..text.len()).step_by(7) {
            if text.is_char_boundary(cut) {
                texts.push(text[..cut].to_string());
            }
        }
        for t in &texts {
            match parse_dat(t, "x.dat") {
                Ok(p) => {
                    // what parses is consistent enough to build its residual function
                    if nist::problem_name(&p.name).is_some() {
                        let r = nist::residual_fn(&p).unwrap();
                        let v = r(Tensor::new(Array::from_slice(&p.start1)));
                        assert_eq!(v.to_vec::<f64>().unwrap().len(), p.y.len());
                    }
                }
                Err(SolverError::Data { file, line, .. }) => {
                    assert_eq!(file, "x.dat");
                    assert!(line <= t.lines().count());
                }
                Err(e) => panic!("{e:?}"),
            }
        }
    }
}

#[test]
fn nist_json_is_valid_for_any_run() {
    let p = load("Misra1a");
    let mut r = nist::run(&p, 2, &LsqOptions::default()).unwrap();
    let v: serde_json::Value = serde_json::from_str(&nist::json(&r)).unwrap();
    assert_eq!(v["problem"], "Misra1a");
    // a name with quotes and a non-finite number (a hand-built run) stay valid JSON
    r.problem = "a \"quoted\" \\ name\n".into();
    r.fit.rss = f64::NAN;
    r.fit.params[0] = f64::INFINITY;
    let v: serde_json::Value = serde_json::from_str(&nist::json(&r)).unwrap();
    assert_eq!(v["problem"], "a \"quoted\" \\ name\n");
    assert!(v["rss"].is_null() && v["params"][0].is_null());
}

/// A residual that does not depend on the parameters (its linear program multiplies by a
/// literal zero): both methods end without a panic, where the transpose once hit one.
#[test]
fn a_residual_independent_of_the_parameters_fits_without_a_panic() {
    use ferrax_solvers::least_squares::{least_squares, LsqOptions, Method};
    for method in [Method::GaussNewtonCg, Method::LevenbergMarquardt] {
        let opts = LsqOptions {
            method,
            ..LsqOptions::default()
        };
        let fit = least_squares(|p: ferrax::Tensor| &p * 0.0 + 1.0, &[1.0, 2.0], &opts)
            .unwrap_or_else(|e| panic!("{method:?}: {e}"));
        assert_eq!(fit.params, vec![1.0, 2.0], "{method:?}");
    }
}
