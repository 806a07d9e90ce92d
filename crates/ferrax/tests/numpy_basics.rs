//! Everyday `jax.numpy` compositions (issue 14, item 2): values against `std`'s functions
//! and hand computations, derivatives against the closed forms, and bad input.

use ferrax::{grad, jvp, vmap, Array, DType, Tensor};

fn t(v: &[f64]) -> Tensor {
    Tensor::new(Array::from_slice(v))
}

fn v(t: &Tensor) -> Vec<f64> {
    t.to_vec::<f64>().unwrap()
}

fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= tol * x.abs().max(y.abs()).max(1e-300))
}

#[test]
fn hyperbolic_and_other_bases() {
    let xs = [-2.0f64, -1e-9, 0.0, 0.5, 3.0];
    let x = t(&xs);
    let want: Vec<f64> = xs.iter().map(|a| a.sinh()).collect();
    assert!(close(&v(&x.sinh()), &want, 4e-16), "{:?}", v(&x.sinh()));
    let want: Vec<f64> = xs.iter().map(|a| a.cosh()).collect();
    assert!(close(&v(&x.cosh()), &want, 4e-16));
    let p = [0.25f64, 1.0, 8.0, 1000.0];
    let want: Vec<f64> = p.iter().map(|a| a.log2()).collect();
    assert!(close(&v(&t(&p).log2()), &want, 4e-16));
    let want: Vec<f64> = p.iter().map(|a| a.log10()).collect();
    assert!(close(&v(&t(&p).log10()), &want, 4e-16));
    let want: Vec<f64> = xs.iter().map(|a| a.exp2()).collect();
    assert!(close(&v(&x.exp2()), &want, 1e-15));
    // derivatives: sinh' = cosh, cosh' = sinh
    let (_, d) = jvp(|x: Tensor| x.sinh(), &x, &t(&[1.0; 5])).unwrap();
    let want: Vec<f64> = xs.iter().map(|a| a.cosh()).collect();
    assert!(close(&v(&d), &want, 1e-15));
    // (through exp, so near 0 it is exact to rounding of 1, not of sinh itself)
    let g = grad(|x: Tensor| x.cosh().sum_all(), &x).unwrap();
    for (g, a) in v(&g).iter().zip(xs) {
        assert!((g - a.sinh()).abs() <= 1e-15 * a.cosh(), "{a}: {g}");
    }
}

#[test]
fn nan_tests_and_clip() {
    let x = t(&[1.0, f64::NAN, f64::INFINITY, -f64::INFINITY, -0.0]);
    assert_eq!(
        x.isnan().to_vec::<bool>().unwrap(),
        vec![false, true, false, false, false]
    );
    assert_eq!(
        x.isfinite().to_vec::<bool>().unwrap(),
        vec![true, false, false, false, true]
    );
    let y = t(&[-3.0, 0.5, 7.0]);
    assert_eq!(v(&y.clip(-1.0, 2.0)), vec![-1.0, 0.5, 2.0]);
    // the derivative passes inside the interval only
    let g = grad(|y: Tensor| y.clip(-1.0, 2.0).sum_all(), &y).unwrap();
    assert_eq!(v(&g), vec![0.0, 1.0, 0.0]);
    // tensor bounds broadcast
    let lo = t(&[0.0, 1.0, 0.0]);
    assert_eq!(v(&y.clip(&lo, 5.0)), vec![0.0, 1.0, 5.0]);
}

#[test]
fn variance_and_standard_deviation() {
    let m = Tensor::new(Array::from_vec(vec![1.0, 2.0, 4.0, 3.0, 3.0, 3.0], &[2, 3]).unwrap());
    // rows: mean 7/3, var ((4/3)^2 + (1/3)^2 + (5/3)^2) / 3 = 42/27; second row 0
    assert!(close(&v(&m.var(&[1])), &[42.0 / 27.0, 0.0], 1e-15));
    assert!(close(
        &v(&m.std(&[-1])),
        &[(42.0f64 / 27.0).sqrt(), 0.0],
        1e-15
    ));
    let all = m.var(&[0, 1]).item().unwrap();
    let mean = 16.0 / 6.0;
    let want = [1.0, 2.0, 4.0, 3.0, 3.0, 3.0]
        .iter()
        .map(|x: &f64| (x - mean).powi(2))
        .sum::<f64>()
        / 6.0;
    assert!(close(&[all], &[want], 1e-15));
    // d var / dx_i = 2 (x_i - mean) / n
    let x = t(&[1.0, 2.0, 6.0]);
    let g = grad(|x: Tensor| x.var(&[0]), &x).unwrap();
    assert!(
        close(&v(&g), &[-4.0 / 3.0, -2.0 / 3.0, 2.0], 1e-15),
        "{:?}",
        v(&g)
    );
    assert!(
        m.var(&[2]).error().is_some(),
        "an axis out of range is an error"
    );
}

#[test]
fn one_hot_eye_linspace_stack() {
    let idx = Tensor::new(Array::from_slice(&[2i32, 0, 5, -1]));
    let oh = idx.one_hot(3, DType::F64);
    assert_eq!(oh.shape(), &[4, 3]);
    assert_eq!(
        v(&oh),
        vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    );
    let e = t(&[1.0]).one_hot(2, DType::F64).error().cloned();
    assert!(e.is_some_and(|e| e.to_string().contains("one_hot")));
    assert_eq!(v(&Tensor::eye(2, DType::F64)), vec![1.0, 0.0, 0.0, 1.0]);
    assert_eq!(Tensor::eye(3, DType::F32).dtype(), Some(DType::F32));
    let l = Tensor::linspace(0.0, 1.0, 5, DType::F64);
    assert_eq!(v(&l), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
    let l = Tensor::linspace(0.1, 0.7, 7, DType::F64);
    assert_eq!(*v(&l).last().unwrap(), 0.7, "the end point exactly");
    assert_eq!(v(&Tensor::linspace(2.0, 3.0, 1, DType::F64)), vec![2.0]);
    assert_eq!(Tensor::linspace(2.0, 3.0, 0, DType::F64).shape(), &[0]);
    assert!(Tensor::linspace(0.0, 1.0, 3, DType::I32).error().is_some());
    let (a, b) = (t(&[1.0, 2.0]), t(&[3.0, 4.0]));
    let s0 = Tensor::stack(&[a.clone(), b.clone()], 0);
    assert_eq!(
        (s0.shape().to_vec(), v(&s0)),
        (vec![2, 2], vec![1.0, 2.0, 3.0, 4.0])
    );
    let s1 = Tensor::stack(&[a.clone(), b.clone()], -1);
    assert_eq!(
        (s1.shape().to_vec(), v(&s1)),
        (vec![2, 2], vec![1.0, 3.0, 2.0, 4.0])
    );
    assert!(Tensor::stack(&[], 0).error().is_some());
    assert!(Tensor::stack(&[a.clone(), t(&[1.0])], 0).error().is_some());
    // stack differentiates and batches like its parts
    let g = grad(
        |a: Tensor| Tensor::stack(&[a.clone(), a * 2.0], 0).sum_all(),
        &t(&[1.0, 1.0]),
    )
    .unwrap();
    assert_eq!(v(&g), vec![3.0, 3.0]);
    let m = Tensor::new(Array::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]).unwrap());
    let b = vmap(
        |r: Tensor| Tensor::stack(&[r.clone(), r.var(&[0]).broadcast_to(&[2])], 0),
        &m,
    )
    .unwrap();
    assert_eq!(b.shape(), &[2, 2, 2]);
}

/// Sizes that cannot exist are errors naming the operation that could not make them.
#[test]
fn impossible_sizes_are_errors_naming_their_cause() {
    let e = Tensor::linspace(0.0, 1.0, usize::MAX, DType::F64)
        .error()
        .cloned()
        .unwrap();
    assert!(e.to_string().contains("iota"), "{e}");
    let e = Tensor::eye(1 << 33, DType::F64).error().cloned().unwrap();
    assert!(e.to_string().contains("iota"), "{e}");
    let idx = Tensor::new(Array::from_slice(&[1i32]));
    assert!(idx.one_hot(usize::MAX, DType::F64).error().is_some());
    let bad = Tensor::linspace(0.0, 1.0, usize::MAX, DType::F64);
    let e = Tensor::stack(&[t(&[1.0]), bad], 0)
        .error()
        .cloned()
        .unwrap();
    assert!(
        e.to_string().contains("iota"),
        "the first error, not a later one: {e}"
    );
}
