//! `stop_gradient`, `logsumexp`, `softmax` and `log_softmax` (issue 14, item 2): values
//! against closed forms, no overflow for large inputs, derivatives against finite
//! differences and the identities that relate them, and `stop_gradient` cutting both modes.

use ferrax::{grad, jvp, linearize, make_jaxpr, vmap, Array, DType, Tensor};

fn t(v: &[f64]) -> Tensor {
    Tensor::new(Array::from_slice(v))
}

fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= tol * x.abs().max(y.abs()).max(1.0))
}

#[test]
fn stop_gradient_is_the_value_with_a_zero_derivative() {
    let x = t(&[0.5, -2.0]);
    assert_eq!(x.stop_gradient().to_vec::<f64>().unwrap(), vec![0.5, -2.0]);
    // d/dx [x * stop(x)] = stop(x): the product rule sees one factor only
    let g = grad(|x: Tensor| (&x * x.stop_gradient()).sum_all(), &x).unwrap();
    assert_eq!(g.to_vec::<f64>().unwrap(), vec![0.5, -2.0]);
    let (_, dt) = jvp(|x: Tensor| x.stop_gradient().sin(), &x, &t(&[1.0, 1.0])).unwrap();
    assert_eq!(dt.to_vec::<f64>().unwrap(), vec![0.0, 0.0]);
    // linearizing stores nothing for it, and the text form names it
    let (_, lin) = linearize(|x: Tensor| x.stop_gradient().exp() + &x, &x).unwrap();
    let lt: Tensor = lin.apply(&t(&[2.0, 3.0])).unwrap();
    assert_eq!(lt.to_vec::<f64>().unwrap(), vec![2.0, 3.0]);
    let p = make_jaxpr(|x: Tensor| x.stop_gradient(), &x).unwrap();
    assert!(p.to_string().contains("stop_gradient"), "{p}");
    assert_eq!(
        ferrax::Program::parse(&p.to_string()).unwrap().to_string(),
        p.to_string()
    );
}

#[test]
fn logsumexp_and_softmax_values() {
    let x = t(&[1.0, 2.0, 3.0]);
    let lse = (1f64.exp() + 2f64.exp() + 3f64.exp()).ln();
    assert!(close(&[x.logsumexp(&[0]).item().unwrap()], &[lse], 1e-15));
    let sm = x.softmax(0).to_vec::<f64>().unwrap();
    let want: Vec<f64> = [1.0f64, 2.0, 3.0].iter().map(|v| (v - lse).exp()).collect();
    assert!(close(&sm, &want, 1e-15), "{sm:?}");
    let lsm = x.log_softmax(-1).to_vec::<f64>().unwrap();
    let want: Vec<f64> = [1.0f64, 2.0, 3.0].iter().map(|v| v - lse).collect();
    assert!(close(&lsm, &want, 1e-15), "{lsm:?}");
    // no overflow: exp(1000) is infinite, the shifted sum is not
    let big = t(&[1000.0, 1000.0]);
    assert!(close(
        &[big.logsumexp(&[0]).item().unwrap()],
        &[1000.0 + 2f64.ln()],
        1e-15
    ));
    assert_eq!(big.softmax(0).to_vec::<f64>().unwrap(), vec![0.5, 0.5]);
    // all -inf: logsumexp is -inf, not NaN (the shift is zero where the max is not finite)
    let none = t(&[f64::NEG_INFINITY, f64::NEG_INFINITY]);
    assert_eq!(none.logsumexp(&[0]).item().unwrap(), f64::NEG_INFINITY);
    // rows of a matrix, over the last axis, and over both
    let m = Tensor::new(Array::from_vec(vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0], &[2, 3]).unwrap());
    let rows = m.softmax(1).sum(&[1]).to_vec::<f64>().unwrap();
    assert!(close(&rows, &[1.0, 1.0], 1e-15));
    let all = m.logsumexp(&[0, 1]).item().unwrap();
    let want = (0..6).map(|i| (i as f64).exp()).sum::<f64>().ln();
    assert!(close(&[all], &[want], 1e-15));
    // f32 stays f32; an integer tensor is an error naming the function
    let x32 = Tensor::new(Array::from_slice(&[1.0f32, 2.0]));
    assert_eq!(x32.softmax(0).dtype(), Some(DType::F32));
    let e = Tensor::new(Array::from_slice(&[1i32, 2]))
        .logsumexp(&[0])
        .error()
        .cloned();
    assert!(e.is_some_and(|e| e.to_string().contains("logsumexp")));
    assert!(
        m.softmax(2).error().is_some(),
        "an axis out of range is an error"
    );
}

#[test]
fn derivatives_are_the_softmax_identities() {
    let x = t(&[0.3, -1.2, 2.0, 0.7]);
    // grad logsumexp = softmax, exactly as computed
    let g = grad(|x: Tensor| x.logsumexp(&[0]), &x)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    let s = x.softmax(0).to_vec::<f64>().unwrap();
    assert!(close(&g, &s, 1e-15), "{g:?} vs {s:?}");
    // the softmax Jacobian-vector product: s * (v - <s, v>)
    let v = [1.0, 0.5, -2.0, 0.25];
    let (_, jv) = jvp(|x: Tensor| x.softmax(0), &x, &t(&v)).unwrap();
    let sv: f64 = s.iter().zip(&v).map(|(a, b)| a * b).sum();
    let want: Vec<f64> = s.iter().zip(&v).map(|(a, b)| a * (b - sv)).collect();
    assert!(close(&jv.to_vec::<f64>().unwrap(), &want, 1e-14));
    // log_softmax's gradient of a weighted sum w: w - softmax * sum(w)
    let w = [0.2, 0.0, 1.0, -0.5];
    let g = grad(|x: Tensor| (x.log_softmax(0) * t(&w)).sum_all(), &x).unwrap();
    let sw: f64 = w.iter().sum();
    let want: Vec<f64> = w.iter().zip(&s).map(|(a, b)| a - b * sw).collect();
    assert!(close(&g.to_vec::<f64>().unwrap(), &want, 1e-14));
    // and finite differences of logsumexp on a large input
    let big = [500.0, 501.0, 499.5];
    let f = |v: &[f64]| t(v).logsumexp(&[0]).item().unwrap();
    let g = grad(|x: Tensor| x.logsumexp(&[0]), &t(&big))
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    for i in 0..3 {
        let (mut up, mut down) = (big, big);
        up[i] += 1e-6;
        down[i] -= 1e-6;
        let fd = (f(&up) - f(&down)) / 2e-6;
        assert!((g[i] - fd).abs() <= 1e-6, "{i}: {} vs {fd}", g[i]);
    }
    // vmap over rows equals the row-wise softmax
    let m = Tensor::new(Array::from_vec(vec![0.0, 1.0, 2.0, 3.0, 5.0, 8.0], &[2, 3]).unwrap());
    let a = vmap(|r: Tensor| r.softmax(0), &m)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    let b = m.softmax(1).to_vec::<f64>().unwrap();
    assert!(close(&a, &b, 1e-15));
}
