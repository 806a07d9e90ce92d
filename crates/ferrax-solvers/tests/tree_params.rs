//! The solvers on trees of parameters (issue 15, item 3): a two-layer model as a derived
//! struct fitted by least squares, and Rosenbrock over a tuple minimized, each equal to the
//! same run on the flat vector; non-f64 parameters are an error.

use ferrax::{ravel_tree, Array, Tensor};
use ferrax_solvers::{
    least_squares, least_squares_tree, minimize, minimize_tree, LsqOptions, MinMethod, MinOptions,
};

#[derive(Clone, Debug, ferrax::Tree)]
struct Model {
    w1: Tensor,
    b1: Tensor,
    w2: Tensor,
}

fn predict(m: &Model, x: &Tensor) -> Tensor {
    (x.matmul(&m.w1) + &m.b1).tanh().matmul(&m.w2)
}

#[test]
fn least_squares_on_a_struct_equals_the_flat_run() {
    let x = Tensor::new(
        Array::from_vec((0..12).map(|i| i as f64 / 6.0 - 1.0).collect(), &[6, 2]).unwrap(),
    );
    let truth = Model {
        w1: Tensor::from_vec(vec![0.8, -0.5, 0.3, 1.1], &[2, 2]),
        b1: Tensor::from_vec(vec![0.1, -0.2], &[2]),
        w2: Tensor::from_vec(vec![1.5, -0.7], &[2]),
    };
    let y = predict(&truth, &x);
    let p0 = Model {
        w1: Tensor::from_vec(vec![0.5, -0.3, 0.2, 0.9], &[2, 2]),
        b1: Tensor::from_vec(vec![0.0, 0.0], &[2]),
        w2: Tensor::from_vec(vec![1.0, -0.5], &[2]),
    };
    let r = |m: Model| predict(&m, &x) - &y;
    let before = (r(p0.clone()).powi(2)).sum_all().item().unwrap();
    let (fit, report) = least_squares_tree(r, &p0, &LsqOptions::default()).unwrap();
    assert!(
        report.rss < 1e-3 * before,
        "rss {} from {before}",
        report.rss
    );
    // the flat run on the raveled start gives the same parameters, bit for bit
    let (flat0, back) = ravel_tree(&p0).unwrap();
    let flat_r = |theta: Tensor| r(back.apply(&theta).unwrap());
    let flat = least_squares(
        flat_r,
        &flat0.to_vec::<f64>().unwrap(),
        &LsqOptions::default(),
    )
    .unwrap();
    assert_eq!(report.params, flat.params);
    let (fitted, _) = ravel_tree(&fit).unwrap();
    assert_eq!(fitted.to_vec::<f64>().unwrap(), flat.params);
    assert_eq!(fit.w1.shape(), &[2, 2]);
}

#[test]
fn minimize_over_a_tuple() {
    let rosen = |(a, b): (Tensor, Tensor)| 100.0 * (&b - &a * &a).powi(2) + (1.0 - a).powi(2);
    let p0 = (Tensor::scalar(-1.2f64), Tensor::scalar(1.0f64));
    for method in [MinMethod::NewtonCg, MinMethod::Lbfgs { memory: 10 }] {
        let opts = MinOptions {
            method,
            ..MinOptions::default()
        };
        let ((a, b), run) = minimize_tree(rosen, &p0, &opts).unwrap();
        assert!((a.item().unwrap() - 1.0).abs() < 1e-8 && (b.item().unwrap() - 1.0).abs() < 1e-8);
        let flat = minimize(
            |x: Tensor| rosen((x.index_axis(0, 0), x.index_axis(0, 1))),
            &[-1.2, 1.0],
            &opts,
        )
        .unwrap();
        assert_eq!(run.x, flat.x);
    }
    // parameters that are not f64
    let ints = (Tensor::from_vec(vec![1i32], &[1]),);
    assert!(minimize_tree(
        |(i,): (Tensor,)| i.astype(ferrax::DType::F64).sum_all(),
        &ints,
        &MinOptions::default()
    )
    .is_err());
    let f32s = (Tensor::from_vec(vec![1.0f32], &[1]),);
    let e = minimize_tree(
        |(v,): (Tensor,)| v.astype(ferrax::DType::F64).sum_all(),
        &f32s,
        &MinOptions::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("must be f64"), "{e}");
}
