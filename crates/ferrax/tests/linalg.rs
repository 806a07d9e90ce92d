//! Linear algebra with derivatives (issue 14, item 4): factorizations against the
//! identities that define them, derivatives against the analytic ones (d log|det A| =
//! tr(A⁻¹ dA)), a Gaussian-process log-likelihood and its gradient against finite
//! differences of an independent plain-Rust implementation, batching over leading axes, and
//! the failure modes (NaN for a matrix that is not positive definite, errors for shapes).

use ferrax::{grad, jvp, vmap, Tensor};

mod common;
use common::{close, t, vals};

fn spd() -> Tensor {
    t(&[4.0, 1.0, 0.5, 1.0, 3.0, -0.2, 0.5, -0.2, 2.0], &[3, 3])
}

#[test]
fn factorizations_reproduce_their_matrix() {
    let a = spd();
    let l = a.cholesky();
    assert!(close(&vals(&l.matmul(&l.t())), &vals(&a), 1e-15));
    assert_eq!(vals(&l)[1], 0.0);
    let m = t(&[1.0, 2.0, -1.0, 0.5, 3.0, 1.0, 2.0, -2.0], &[4, 2]);
    let (q, r) = m.qr();
    assert!(close(&vals(&q.matmul(&r)), &vals(&m), 1e-14));
    assert!(close(
        &vals(&q.t().matmul(&q)),
        &[1.0, 0.0, 0.0, 1.0],
        1e-14
    ));
    let (w, v) = a.eigh();
    let back = v.matmul(&(&v * w.reshape(&[1, 3])).t());
    assert!(close(&vals(&back), &vals(&a), 1e-14));
    let (u, s, vt) = m.svd();
    let back = (&u * s.reshape(&[1, 2])).matmul(&vt);
    assert!(close(&vals(&back), &vals(&m), 1e-14));
    // a wide QR reproduces its matrix too, and differentiates: QR = A along a path
    let wide = m.t();
    let (qw, rw) = wide.qr();
    assert!(close(&vals(&qw.matmul(&rw)), &vals(&wide), 1e-14));
    let dir = t(&[0.3, -0.2, 0.5, 0.1, 0.7, -0.4, 0.2, 0.6], &[2, 4]);
    let (_, dq) = jvp(|a: Tensor| a.qr().0, &wide, &dir).unwrap();
    let (_, dr) = jvp(|a: Tensor| a.qr().1, &wide, &dir).unwrap();
    let d_prod = dq.matmul(&rw) + qw.matmul(&dr);
    assert!(close(&vals(&d_prod), &vals(&dir), 1e-13));
    let sv = vals(&s);
    assert!(sv[0] >= sv[1] && sv[1] > 0.0);
    // solves, inverse, determinant
    let b = t(&[1.0, 2.0, 3.0], &[3]);
    let x = a.solve(&b);
    assert!(close(&vals(&a.matmul(&x)), &vals(&b), 1e-14));
    assert!(close(&vals(&l.cho_solve(&b)), &vals(&x), 1e-14));
    let ai = a.inv();
    assert!(close(
        &vals(&ai.matmul(&a)),
        &vals(&Tensor::eye(3, ferrax::DType::F64)),
        1e-14
    ));
    let two = t(&[2.0, 1.0, 1.0, -3.0], &[2, 2]);
    assert!(close(&[two.det().item().unwrap()], &[-7.0], 1e-15));
    let (sign, logabs) = two.slogdet();
    assert_eq!(sign.item().unwrap(), -1.0);
    assert!(close(&[logabs.item().unwrap()], &[7f64.ln()], 1e-15));
    // a triangular solve from the right, and least squares against the normal equations
    let up = t(&[2.0, 1.0, 0.0, 4.0], &[2, 2]);
    let y = up.triangular_solve(&t(&[2.0, 9.0], &[1, 2]), false, false, false, false);
    assert!(close(&vals(&y.matmul(&up)), &[2.0, 9.0], 1e-15));
    let rhs = t(&[1.0, 0.0, 2.0, 1.0], &[4]);
    let ls = m.lstsq(&rhs);
    let normal = m.t().matmul(&m).solve(&m.t().matmul(&rhs));
    assert!(close(&vals(&ls), &vals(&normal), 1e-13));
}

#[test]
fn batched_over_leading_axes_with_a_broadcast_right_hand_side() {
    let a = Tensor::stack(&[spd(), spd() * 2.0], 0);
    let b = t(&[1.0, 2.0, 3.0], &[3, 1]);
    let x = a.solve(&b);
    assert_eq!(x.shape(), &[2, 3, 1]);
    let first = vals(&spd().solve(&b));
    let xs = vals(&x);
    assert!(close(&xs[..3], &first, 1e-15));
    assert!(close(
        &xs[3..],
        &first.iter().map(|v| v / 2.0).collect::<Vec<_>>(),
        1e-15
    ));
    // vmap of a Cholesky factorization is the batched primitive
    let ls = vmap(|a: Tensor| a.cholesky(), &a).unwrap();
    assert!(close(
        &vals(&ls.index_axis(0, 1)),
        &vals(&(spd() * 2.0).cholesky()),
        1e-15
    ));
}

#[test]
fn log_det_derivative_is_the_trace_of_the_solve() {
    let a = t(&[3.0, 1.0, 0.2, -0.5, 2.0, 0.4, 0.1, 0.3, 1.5], &[3, 3]);
    let da = t(&[0.3, -0.1, 0.7, 0.2, 0.5, -0.4, 0.9, 0.1, -0.2], &[3, 3]);
    let (_, d) = jvp(|a: Tensor| a.slogdet().1, &a, &da).unwrap();
    let want = a.solve(&da).trace(0, 0, 1).item().unwrap();
    assert!(close(&[d.item().unwrap()], &[want], 1e-14));
    // and the gradient of log|det A| is A⁻ᵀ
    let g = grad(|a: Tensor| a.slogdet().1, &a).unwrap();
    assert!(close(&vals(&g), &vals(&a.inv().t()), 1e-14));
    // d det = det tr(A⁻¹ dA)
    let (_, dd) = jvp(|a: Tensor| a.det(), &a, &da).unwrap();
    let det = a.det().item().unwrap();
    assert!(close(&[dd.item().unwrap()], &[det * want], 1e-14));
}

/// A plain-Rust Gaussian-process log marginal likelihood: squared-exponential kernel with
/// variance `v` and length scale `l`, noise variance `s`, on 1-d inputs.
fn gp_loglik_plain(xs: &[f64], ys: &[f64], v: f64, l: f64, s: f64) -> f64 {
    let n = xs.len();
    let mut k = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            let d = xs[i] - xs[j];
            k[i * n + j] = v * (-0.5 * d * d / (l * l)).exp() + if i == j { s } else { 0.0 };
        }
    }
    // Cholesky
    let mut c = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut sum = k[i * n + j];
            for p in 0..j {
                sum -= c[i * n + p] * c[j * n + p];
            }
            c[i * n + j] = if i == j {
                sum.sqrt()
            } else {
                sum / c[j * n + j]
            };
        }
    }
    // forward substitution: z = C⁻¹ y; yᵀ K⁻¹ y = |z|²
    let mut z = vec![0.0; n];
    for i in 0..n {
        let mut sum = ys[i];
        for p in 0..i {
            sum -= c[i * n + p] * z[p];
        }
        z[i] = sum / c[i * n + i];
    }
    let quad: f64 = z.iter().map(|v| v * v).sum();
    let logdet: f64 = (0..n).map(|i| c[i * n + i].ln()).sum::<f64>() * 2.0;
    -0.5 * quad - 0.5 * logdet - 0.5 * n as f64 * (2.0 * std::f64::consts::PI).ln()
}

fn gp_loglik(x: &Tensor, y: &Tensor, theta: &Tensor) -> Tensor {
    let n = x.shape()[0];
    let p = theta.exp();
    let (v, l, s) = (p.s(ferrax::s![0]), p.s(ferrax::s![1]), p.s(ferrax::s![2]));
    let d = x.reshape(&[n as isize, 1]) - x.reshape(&[1, n as isize]);
    let k = (&d * &d * -0.5 / (&l * &l)).exp() * &v + Tensor::eye(n, ferrax::DType::F64) * &s;
    let c = k.cholesky();
    let alpha = c.cho_solve(y);
    let logdet = c.diagonal(0, 0, 1).log().sum_all() * 2.0;
    (y * &alpha).sum_all() * -0.5
        - logdet * 0.5
        - 0.5 * n as f64 * (2.0 * std::f64::consts::PI).ln()
}

#[test]
fn gaussian_process_log_likelihood_and_its_gradient() {
    let xs = [0.0, 0.3, 0.9, 1.4, 2.2, 3.0];
    let ys = [0.1, 0.5, 0.8, 0.9, 0.4, -0.3];
    let (x, y) = (t(&xs, &[6]), t(&ys, &[6]));
    let theta = [0.2f64, -0.1, -2.5];
    let th = t(&theta, &[3]);
    let value = gp_loglik(&x, &y, &th).item().unwrap();
    let plain = |th: &[f64]| gp_loglik_plain(&xs, &ys, th[0].exp(), th[1].exp(), th[2].exp());
    assert!(
        close(&[value], &[plain(&theta)], 1e-13),
        "{value} vs {}",
        plain(&theta)
    );
    let g = vals(&grad(|th: Tensor| gp_loglik(&x, &y, &th), &th).unwrap());
    for i in 0..3 {
        // Richardson-extrapolated central differences of the independent implementation
        let fd = |h: f64| {
            let (mut up, mut dn) = (theta, theta);
            up[i] += h;
            dn[i] -= h;
            (plain(&up) - plain(&dn)) / (2.0 * h)
        };
        let want = (4.0 * fd(5e-4) - fd(1e-3)) / 3.0;
        assert!(close(&[g[i]], &[want], 1e-8), "θ{i}: {} vs {want}", g[i]);
    }
}

#[test]
fn failures_are_nans_or_errors() {
    // not positive definite: every entry of the factor is NaN (as JAX gives), not a panic
    let bad = t(&[1.0, 2.0, 2.0, 1.0], &[2, 2]);
    assert!(vals(&bad.cholesky()).iter().all(|v| v.is_nan()));
    // singular: slogdet says so
    let sing = t(&[1.0, 2.0, 2.0, 4.0], &[2, 2]);
    let (sign, logabs) = sing.slogdet();
    assert_eq!(sign.item().unwrap(), 0.0);
    assert_eq!(logabs.item().unwrap(), f64::NEG_INFINITY);
    let msg = |x: Tensor| x.error().expect("an error").to_string();
    let m = t(&[1.0; 6], &[2, 3]);
    let e = msg(m.cholesky());
    assert!(
        e.contains("cholesky") && e.contains("must be square") && e.contains("f64[2,3]"),
        "{e}"
    );
    assert!(e.contains("linalg.rs"), "the user's line: {e}");
    assert!(msg(spd().solve(&t(&[1.0, 2.0], &[2]))).contains("must have 3 rows"));
    assert!(msg(t(&[1.0, 2.0], &[2]).inv()).contains("needs a matrix"));
    assert!(msg(m.lstsq(&t(&[1.0, 2.0], &[2]))).contains("at least as many rows"));
    let ints = Tensor::from_vec(vec![1i32, 0, 0, 1], &[2, 2]);
    assert!(msg(ints.cholesky()).contains("must be f32 or f64"));
    // empty matrices: nothing to factor, determinant 1
    let empty = Tensor::zeros(&[0, 0], ferrax::DType::F64);
    assert_eq!(empty.det().item().unwrap(), 1.0);
    assert_eq!(empty.eigh().0.shape(), &[0]);
}
