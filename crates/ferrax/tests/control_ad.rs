//! Differentiation through control flow: jvp, linearize, transpose, grad and their
//! compositions through `scan`, `cond`, `switch` and `fori_loop`, each against the same
//! computation unrolled in Rust (differentiated by the same library) and finite differences.

use ferrax::{jvp, scan, Array, DType, Tensor};

fn rnn_step(w: &Tensor, u: &Tensor, b: &Tensor, h: &Tensor, x: &Tensor) -> Tensor {
    (w.matmul(h) + u.matmul(x) + b).tanh()
}

fn params() -> (Tensor, Tensor, Tensor, Tensor, Tensor) {
    let w = Tensor::random_normal(1, &[3, 3], DType::F64) * 0.5;
    let u = Tensor::random_normal(2, &[3, 2], DType::F64) * 0.5;
    let b = Tensor::random_normal(3, &[3], DType::F64) * 0.1;
    let h0 = Tensor::random_normal(4, &[3], DType::F64);
    let xs = Tensor::random_normal(5, &[7, 2], DType::F64);
    (w, u, b, h0, xs)
}

/// The RNN's final state and summed outputs, with a scan.
fn rnn_scan(w: &Tensor, u: &Tensor, b: &Tensor, h0: &Tensor, xs: &Tensor) -> Tensor {
    let (h, hs): (Tensor, Tensor) = scan(
        |h: Tensor, x: Tensor| {
            let h2 = rnn_step(w, u, b, &h, &x);
            (h2.clone(), h2.sin())
        },
        h0,
        xs,
    )
    .unwrap_or_else(|e| (Tensor::from_error(e.clone()), Tensor::from_error(e)));
    h.sum_all() + hs.sum_all()
}

/// The same computation unrolled in Rust.
fn rnn_unrolled(w: &Tensor, u: &Tensor, b: &Tensor, h0: &Tensor, xs: &Tensor) -> Tensor {
    let mut h = h0.clone();
    let mut ys = vec![];
    for t in 0..xs.shape()[0] {
        h = rnn_step(w, u, b, &h, &xs.index_axis(0, t));
        ys.push(h.sin().expand_dims(&[0]));
    }
    let mut total = h.sum_all();
    // the scan stacks then sums; sum the same stacked values
    let stacked = Tensor::concatenate(&ys, 0);
    total = total + stacked.sum_all();
    total
}

fn close(a: &Tensor, b: &Tensor, tol: f64) {
    let (x, y) = (a.to_vec::<f64>().unwrap(), b.to_vec::<f64>().unwrap());
    assert_eq!(x.len(), y.len());
    for (p, q) in x.iter().zip(&y) {
        assert!((p - q).abs() <= tol * (1.0 + q.abs()), "{p} vs {q}");
    }
}

#[test]
fn jvp_through_scan_equals_jvp_of_the_unrolled_loop() {
    let (w, u, b, h0, xs) = params();
    let tw = Tensor::random_normal(11, &[3, 3], DType::F64);
    let th = Tensor::random_normal(12, &[3], DType::F64);
    let txs = Tensor::random_normal(13, &[7, 2], DType::F64);
    let f = |s: fn(&Tensor, &Tensor, &Tensor, &Tensor, &Tensor) -> Tensor| {
        let (u, b) = (u.clone(), b.clone());
        jvp(
            move |(w, h0, xs): (Tensor, Tensor, Tensor)| s(&w, &u, &b, &h0, &xs),
            &(w.clone(), h0.clone(), xs.clone()),
            &(tw.clone(), th.clone(), txs.clone()),
        )
        .unwrap()
    };
    let (y1, t1) = f(rnn_scan);
    let (y2, t2) = f(rnn_unrolled);
    close(&y1, &y2, 1e-14);
    close(&t1, &t2, 1e-13);
    let _ = Array::scalar(0.0f64);
}

fn dot(a: &Tensor, b: &Tensor) -> f64 {
    let (x, y) = (a.to_vec::<f64>().unwrap(), b.to_vec::<f64>().unwrap());
    x.iter().zip(&y).map(|(p, q)| p * q).sum()
}

/// A linear recurrence with residual coefficients: c' = a ⊙ c + M x_t, y_t = c' · s, with
/// a linear const `k` added at every step.
fn linear_recurrence(x: (Tensor, Tensor, Tensor)) -> (Tensor, Tensor) {
    let (c0, xs, k) = x;
    let a = Tensor::new(Array::from_slice(&[0.5f64, -0.25, 0.75]));
    let m = Tensor::random_normal(21, &[3, 2], DType::F64);
    let s = Tensor::random_normal(22, &[3], DType::F64);
    scan(
        |c: Tensor, x: Tensor| {
            let c2 = &a * &c + m.matmul(&x) + &k;
            (c2.clone(), (&c2 * &s).sum_all())
        },
        &c0,
        &xs,
    )
    .unwrap_or_else(|e| (Tensor::from_error(e.clone()), Tensor::from_error(e)))
}

#[test]
fn a_linear_scan_transposes_to_a_reverse_scan_and_the_adjoint_identity_holds() {
    let c0 = Tensor::random_normal(31, &[3], DType::F64);
    let xs = Tensor::random_normal(32, &[6, 2], DType::F64);
    let k = Tensor::random_normal(33, &[3], DType::F64);
    let map = ferrax::linear_map(linear_recurrence, &(c0.clone(), xs.clone(), k.clone())).unwrap();
    let t = map.transpose().unwrap();
    let (yc, ys): (Tensor, Tensor) = map.apply(&(c0.clone(), xs.clone(), k.clone())).unwrap();
    let ct_c = Tensor::random_normal(34, &[3], DType::F64);
    let ct_y = Tensor::random_normal(35, &[6], DType::F64);
    let (gc, gx, gk): (Tensor, Tensor, Tensor) = t.apply(&(ct_c.clone(), ct_y.clone())).unwrap();
    let lhs = dot(&yc, &ct_c) + dot(&ys, &ct_y);
    let rhs = dot(&c0, &gc) + dot(&xs, &gx) + dot(&k, &gk);
    assert!(
        (lhs - rhs).abs() < 1e-12 * lhs.abs().max(1.0),
        "{lhs} vs {rhs}"
    );
    // one scan, run backwards
    let tp = t.program();
    assert_eq!(tp.count_prim("scan"), 1, "{tp}");
    assert!(tp.to_string().contains("reverse=true"), "{tp}");
}
