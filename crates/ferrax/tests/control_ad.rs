//! Differentiation through control flow: jvp, linearize, transpose, grad and their
//! compositions through `scan`, `cond`, `switch` and `fori_loop`, each against the same
//! computation unrolled (or branched) in Rust and differentiated by the same library, which
//! the straight-line tests check against finite differences. Agreement is to rounding: the
//! scan runs the same primitives in the same order as the unrolled loop.

use ferrax::{
    cond, fori_loop, gauss_newton, grad, hvp, jvp, linear_map, linearize, make_jaxpr, optimize,
    scan, scan_with, switch, vjp, vmap, Array, DType, Error, ScanOptions, Tensor,
};

fn v(xs: &[f64]) -> Tensor {
    Tensor::new(Array::from_slice(xs))
}

fn close(a: &Tensor, b: &Tensor, tol: f64) {
    let (x, y) = (a.to_vec::<f64>().unwrap(), b.to_vec::<f64>().unwrap());
    assert_eq!(a.shape(), b.shape());
    for (p, q) in x.iter().zip(&y) {
        assert!((p - q).abs() <= tol * (1.0 + q.abs()), "{p} vs {q}");
    }
}

fn dot(a: &Tensor, b: &Tensor) -> f64 {
    let (x, y) = (a.to_vec::<f64>().unwrap(), b.to_vec::<f64>().unwrap());
    x.iter().zip(&y).map(|(p, q)| p * q).sum()
}

fn rnn_step(w: &Tensor, u: &Tensor, b: &Tensor, h: &Tensor, x: &Tensor) -> Tensor {
    (w.matmul(h) + u.matmul(x) + b).tanh()
}

struct Rnn {
    w: Tensor,
    u: Tensor,
    b: Tensor,
    h0: Tensor,
    xs: Tensor,
}

fn rnn() -> Rnn {
    Rnn {
        w: Tensor::random_normal(1, &[3, 3], DType::F64) * 0.5,
        u: Tensor::random_normal(2, &[3, 2], DType::F64) * 0.5,
        b: Tensor::random_normal(3, &[3], DType::F64) * 0.1,
        h0: Tensor::random_normal(4, &[3], DType::F64),
        xs: Tensor::random_normal(5, &[7, 2], DType::F64),
    }
}

type Params = (Tensor, Tensor, Tensor);

/// The RNN's loss with a scan: half the squared final state plus the sum of sin of every
/// state (so both the carry and the ys carry gradient back).
fn loss_scan(p: Params, h0: &Tensor, xs: &Tensor, reverse: bool) -> Tensor {
    let (w, u, b) = p;
    let (h, hs): (Tensor, Tensor) = scan_with(
        |h: Tensor, x: Tensor| {
            let h2 = rnn_step(&w, &u, &b, &h, &x);
            (h2.clone(), h2.sin())
        },
        h0,
        xs,
        &ScanOptions::new().reverse(reverse),
    )
    .unwrap();
    (&h * &h).sum_all() * 0.5 + hs.sum_all()
}

/// The same loss unrolled in Rust (the ys stacked in the same order before summing).
fn loss_unrolled(p: Params, h0: &Tensor, xs: &Tensor, reverse: bool) -> Tensor {
    let (w, u, b) = p;
    let n = xs.shape()[0];
    let mut h = h0.clone();
    let mut ys = vec![Tensor::scalar(0.0f64); n];
    for k in 0..n {
        let t = if reverse { n - 1 - k } else { k };
        h = rnn_step(&w, &u, &b, &h, &xs.index_axis(0, t));
        ys[t] = h.sin().expand_dims(&[0]);
    }
    (&h * &h).sum_all() * 0.5 + Tensor::concatenate(&ys, 0).sum_all()
}

fn params(r: &Rnn) -> Params {
    (r.w.clone(), r.u.clone(), r.b.clone())
}

#[test]
fn jvp_through_scan_equals_jvp_of_the_unrolled_loop() {
    let r = rnn();
    let t = (
        Tensor::random_normal(11, &[3, 3], DType::F64),
        Tensor::random_normal(12, &[3, 2], DType::F64),
        Tensor::random_normal(13, &[3], DType::F64),
    );
    for reverse in [false, true] {
        let (y1, t1) = jvp(|p| loss_scan(p, &r.h0, &r.xs, reverse), &params(&r), &t).unwrap();
        let (y2, t2) = jvp(|p| loss_unrolled(p, &r.h0, &r.xs, reverse), &params(&r), &t).unwrap();
        close(&y1, &y2, 1e-14);
        close(&t1, &t2, 1e-13);
    }
}

#[test]
fn grad_through_scan_equals_grad_of_the_unrolled_loop_in_both_directions() {
    let r = rnn();
    for reverse in [false, true] {
        let g1: Params = grad(|p| loss_scan(p, &r.h0, &r.xs, reverse), &params(&r)).unwrap();
        let g2: Params = grad(|p| loss_unrolled(p, &r.h0, &r.xs, reverse), &params(&r)).unwrap();
        close(&g1.0, &g2.0, 1e-13);
        close(&g1.1, &g2.1, 1e-13);
        close(&g1.2, &g2.2, 1e-13);
    }
}

#[test]
fn grad_program_of_a_scan_is_two_loops_whatever_the_length() {
    // trace and program size do not grow with the number of iterations
    let r = rnn();
    for n in [7usize, 700] {
        let xs = Tensor::random_normal(5, &[n, 2], DType::F64);
        let p = make_jaxpr(|p: Params| loss_scan(p, &r.h0, &xs, false), &params(&r)).unwrap();
        let g = ferrax::grad_program(&p).unwrap();
        let g = optimize(&g).unwrap();
        assert_eq!(g.count_prim("scan"), 2, "{g}");
        assert!(
            g.eqns.len() < 30,
            "{} equations for {n} steps",
            g.eqns.len()
        );
    }
}

#[test]
fn linearize_of_a_scan_stores_the_stacked_carries_and_one_coefficient_per_step() {
    let r = rnn();
    let (y, lin) = linearize(|p| loss_scan(p, &r.h0, &r.xs, false), &params(&r)).unwrap();
    close(&y, &loss_unrolled(params(&r), &r.h0, &r.xs, false), 1e-14);
    // stacked: the carry entering each step [7,3], tanh's derivative [7,3] and the cos of the
    // ys' argument [7,3]; forwarded: w (3x3); the final state [3] (an output of the
    // primal work); xs is captured, so it is a constant of the linear program, not a residual
    let stacked: Vec<_> = lin
        .residuals()
        .iter()
        .filter(|t| t.shape() == [7, 3])
        .collect();
    assert_eq!(stacked.len(), 3, "{lin}");
    assert_eq!(lin.residual_bytes(), 8 * (3 * 21 + 9 + 3), "{lin}");
    // applying it many times: each equals a fresh jvp
    for seed in 0..5 {
        let t = (
            Tensor::random_normal(40 + seed, &[3, 3], DType::F64),
            Tensor::random_normal(50 + seed, &[3, 2], DType::F64),
            Tensor::random_normal(60 + seed, &[3], DType::F64),
        );
        let a: Tensor = lin.apply(&t).unwrap();
        let (_, b) = jvp(|p| loss_unrolled(p, &r.h0, &r.xs, false), &params(&r), &t).unwrap();
        close(&a, &b, 1e-13);
    }
}

#[test]
fn loop_invariant_residuals_are_stored_once_and_scan_inputs_are_forwarded() {
    // cos(k) does not change between iterations: one [3] residual, not a [5,3] stack; the xs
    // the linear body reads are the scan's own input, not a stacked copy
    let xs = Tensor::random_normal(7, &[5, 3], DType::F64);
    let f = |(k, xs): (Tensor, Tensor)| {
        let (c, _): (Tensor, ()) = scan(
            |c: Tensor, x: Tensor| (&c * k.cos() + &x * &x, ()),
            &Tensor::zeros(&[3], DType::F64),
            &xs,
        )
        .unwrap();
        c.sum_all()
    };
    let k = v(&[0.1, 0.2, 0.3]);
    let (_, lin) = linearize(f, &(k.clone(), xs.clone())).unwrap();
    let shapes: Vec<Vec<usize>> = lin.residuals().iter().map(|t| t.shape().to_vec()).collect();
    assert!(
        shapes.iter().filter(|s| s.as_slice() == [5, 3]).count() <= 2,
        "{shapes:?}"
    );
    assert!(shapes.contains(&vec![3]), "{shapes:?}");
    // the jvp agrees with the unrolled computation
    let t = (
        v(&[1.0, -1.0, 0.5]),
        Tensor::random_normal(8, &[5, 3], DType::F64),
    );
    let a: Tensor = lin.apply(&t).unwrap();
    let unrolled = |(k, xs): (Tensor, Tensor)| {
        let mut c = Tensor::zeros(&[3], DType::F64);
        for i in 0..5 {
            let x = xs.index_axis(0, i);
            c = &c * k.cos() + &x * &x;
        }
        c.sum_all()
    };
    let (_, b) = jvp(unrolled, &(k, xs), &t).unwrap();
    close(&a, &b, 1e-13);
}

#[test]
fn a_stacked_residual_that_is_also_a_ys_output_is_not_stored_twice() {
    // y = exp(c x) is both a ys output and what exp's derivative reads
    let xs = v(&[0.1, 0.2, 0.3, 0.4]);
    let f = |(c0, xs): (Tensor, Tensor)| {
        let (_, ys): (Tensor, Tensor) = scan(
            |c: Tensor, x: Tensor| {
                let y = (&c * &x).exp();
                (y.clone(), y)
            },
            &c0,
            &xs,
        )
        .unwrap();
        ys
    };
    let (ys, lin) = linearize(f, &(Tensor::scalar(0.5f64), xs.clone())).unwrap();
    // ys itself is forwarded; besides it the stacked residuals are the carry entering each
    // step (for d(c x)): two [4] arrays in all, not three
    let four = lin.residuals().iter().filter(|t| t.shape() == [4]).count();
    assert!(four <= 3, "{lin}");
    assert!(lin.num_forwarded() >= 1, "{lin}");
    assert_eq!(ys.shape(), &[4]);
}

/// A linear recurrence with residual coefficients and a linear const added at every step.
fn linear_recurrence(x: (Tensor, Tensor, Tensor)) -> (Tensor, Tensor) {
    let (c0, xs, k) = x;
    let a = v(&[0.5, -0.25, 0.75]);
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
    .unwrap()
}

#[test]
fn a_linear_scan_transposes_to_a_reverse_scan_and_the_adjoint_identity_holds() {
    let c0 = Tensor::random_normal(31, &[3], DType::F64);
    let xs = Tensor::random_normal(32, &[6, 2], DType::F64);
    let k = Tensor::random_normal(33, &[3], DType::F64);
    let x = (c0.clone(), xs.clone(), k.clone());
    let map = linear_map(linear_recurrence, &x).unwrap();
    let t = map.transpose().unwrap();
    let (yc, ys): (Tensor, Tensor) = map.apply(&x).unwrap();
    let ct = (
        Tensor::random_normal(34, &[3], DType::F64),
        Tensor::random_normal(35, &[6], DType::F64),
    );
    let (gc, gx, gk): (Tensor, Tensor, Tensor) = t.apply(&ct).unwrap();
    let lhs = dot(&yc, &ct.0) + dot(&ys, &ct.1);
    let rhs = dot(&c0, &gc) + dot(&xs, &gx) + dot(&k, &gk);
    assert!(
        (lhs - rhs).abs() < 1e-12 * lhs.abs().max(1.0),
        "{lhs} vs {rhs}"
    );
    let tp = t.program();
    assert_eq!(tp.count_prim("scan"), 1, "{tp}");
    assert!(tp.to_string().contains("reverse=true"), "{tp}");
    // transposing twice gives back the same map
    assert!(t.transpose().unwrap().same_map(&map));
}

#[test]
fn nonlinear_or_affine_control_flow_is_refused_by_the_linearity_checker() {
    let x = v(&[1.0, 2.0]);
    let squares = |x: Tensor| {
        let (c, _): (Tensor, ()) = fori_loop(0, 3, |_, c: Tensor| &c * &c, &x)
            .map(|c| (c, ()))
            .unwrap();
        c
    };
    let err = linear_map(squares, &x).unwrap_err();
    assert!(matches!(err, Error::NotLinear { .. }), "{err}");
    let affine = |x: Tensor| {
        cond(
            &Tensor::scalar(true),
            |x: Tensor| &x * 2.0,
            |x: Tensor| &x + 1.0,
            &x,
        )
        .unwrap()
    };
    let err = linear_map(affine, &x).unwrap_err();
    assert!(err.to_string().contains("affine"), "{err}");
}

fn piecewise(x: Tensor) -> Tensor {
    let s = x.sum_all();
    cond(
        &s.greater(0.0),
        |x: Tensor| x.sin() * &x,
        |x: Tensor| x.exp() - &x,
        &x,
    )
    .unwrap()
}

/// The branch `piecewise` takes, chosen in Rust.
fn piecewise_rust(positive: bool) -> impl Fn(Tensor) -> Tensor {
    move |x: Tensor| {
        if positive {
            x.sin() * &x
        } else {
            x.exp() - &x
        }
    }
}

#[test]
fn jvp_grad_and_hvp_through_cond_equal_the_branch_taken_in_rust() {
    for (x, positive) in [(v(&[0.3, 0.5]), true), (v(&[-0.3, -0.5]), false)] {
        let rust = piecewise_rust(positive);
        let t = v(&[1.0, -2.0]);
        let (y1, t1) = jvp(piecewise, &x, &t).unwrap();
        let (y2, t2) = jvp(&rust, &x, &t).unwrap();
        close(&y1, &y2, 0.0);
        close(&t1, &t2, 1e-15);
        let g1 = grad(|x: Tensor| piecewise(x).sum_all(), &x).unwrap();
        let g2 = grad(|x: Tensor| rust(x).sum_all(), &x).unwrap();
        close(&g1, &g2, 1e-15);
        let h1 = hvp(|x: Tensor| piecewise(x).sum_all(), &x, &t).unwrap();
        let h2 = hvp(|x: Tensor| rust(x).sum_all(), &x, &t).unwrap();
        close(&h1, &h2, 1e-14);
    }
}

#[test]
fn cond_residual_slots_are_shared_between_branches_of_the_same_shapes() {
    // sin·x needs sin x and cos x besides x; exp - id needs exp x: two [2] slots (the most
    // one branch needs), not three, plus x itself, forwarded once for both branches
    let x = v(&[0.3, 0.5]);
    let (_, lin) = linearize(piecewise, &x).unwrap();
    let n2 = lin.residuals().iter().filter(|t| t.shape() == [2]).count();
    assert_eq!(n2, 3, "{lin}");
    let tp = lin.transpose().unwrap();
    let ct: Tensor = tp.apply(&v(&[1.0, 1.0])).unwrap();
    let g = grad(|x: Tensor| piecewise_rust(true)(x).sum_all(), &x).unwrap();
    close(&ct, &g, 1e-15);
}

#[test]
fn switch_differentiates_the_branch_its_clamped_index_picks() {
    let branches: [&dyn Fn(Tensor) -> Tensor; 3] =
        [&|x: Tensor| x.sin(), &|x: Tensor| &x * &x, &|x: Tensor| {
            x.tanh() * 3.0
        }];
    let x = v(&[0.4, -0.7]);
    for (i, want) in [(-5i32, 0usize), (0, 0), (1, 1), (2, 2), (9, 2)] {
        let g = grad(
            |x: Tensor| switch(&Tensor::scalar(i), &branches, &x).unwrap().sum_all(),
            &x,
        )
        .unwrap();
        let g_rust = grad(|x: Tensor| branches[want](x).sum_all(), &x).unwrap();
        close(&g, &g_rust, 1e-15);
    }
}

#[test]
fn fori_loop_differentiates_like_the_loop_in_rust() {
    let x = v(&[0.2, 0.9]);
    let f = |x: Tensor| {
        fori_loop(
            0,
            6,
            |i: Tensor, c: Tensor| (&c * i.astype(DType::F64) * 0.1 + &c).sin(),
            &x,
        )
        .unwrap()
        .sum_all()
    };
    let f_rust = |x: Tensor| {
        let mut c = x;
        for i in 0..6 {
            c = (&c * Tensor::scalar(i as f64) * 0.1 + &c).sin();
        }
        c.sum_all()
    };
    close(&grad(f, &x).unwrap(), &grad(f_rust, &x).unwrap(), 1e-15);
    let t = v(&[1.0, 0.5]);
    close(
        &hvp(f, &x, &t).unwrap(),
        &hvp(f_rust, &x, &t).unwrap(),
        1e-14,
    );
}

#[test]
fn grad_of_vmap_and_vmap_of_grad_through_scan_equal_loops_of_grads() {
    let r = rnn();
    // a batch of 4 initial states
    let h0s = Tensor::random_normal(70, &[4, 3], DType::F64);
    let batch_loss = |p: Params, h0s: &Tensor| {
        vmap(|h0: Tensor| loss_scan(p.clone(), &h0, &r.xs, false), h0s)
            .unwrap()
            .sum_all()
    };
    let g: Params = grad(|p| batch_loss(p, &h0s), &params(&r)).unwrap();
    let mut want: Option<Params> = None;
    for i in 0..4 {
        let gi: Params = grad(
            |p| loss_unrolled(p, &h0s.index_axis(0, i), &r.xs, false),
            &params(&r),
        )
        .unwrap();
        want = Some(match want {
            None => gi,
            Some(w) => (w.0 + gi.0, w.1 + gi.1, w.2 + gi.2),
        });
    }
    let want = want.unwrap();
    close(&g.0, &want.0, 1e-13);
    close(&g.2, &want.2, 1e-13);
    // vmap of grad with respect to the initial state
    let gs = vmap(
        |h0: Tensor| grad(|h0: Tensor| loss_scan(params(&r), &h0, &r.xs, false), &h0).unwrap(),
        &h0s,
    )
    .unwrap();
    for i in 0..4 {
        let gi = grad(
            |h0: Tensor| loss_unrolled(params(&r), &h0, &r.xs, false),
            &h0s.index_axis(0, i),
        )
        .unwrap();
        close(&gs.index_axis(0, i), &gi, 1e-13);
    }
}

#[test]
fn jvp_of_grad_through_a_scan_is_the_hessian_vector_product_of_the_unrolled_loop() {
    let r = rnn();
    let f = |h0: Tensor| loss_scan(params(&r), &h0, &r.xs, false);
    let f_rust = |h0: Tensor| loss_unrolled(params(&r), &h0, &r.xs, false);
    let t = v(&[0.5, -1.0, 2.0]);
    let (_, a) = jvp(|h0: Tensor| grad(f, &h0).unwrap(), &r.h0, &t).unwrap();
    let b = hvp(f_rust, &r.h0, &t).unwrap();
    close(&a, &b, 1e-13);
}

#[test]
fn gauss_newton_through_a_scan_is_one_linearization_and_matches_the_unrolled_products() {
    let r = rnn();
    let target = Tensor::random_normal(80, &[7, 3], DType::F64);
    // residuals: every state minus a target
    let residual = |p: Params| {
        let (w, u, b) = p;
        let (_, hs): (Tensor, Tensor) = scan(
            |h: Tensor, x: Tensor| {
                let h2 = rnn_step(&w, &u, &b, &h, &x);
                (h2.clone(), h2)
            },
            &r.h0,
            &r.xs,
        )
        .unwrap();
        (hs - &target).reshape(&[-1])
    };
    let residual_rust = |p: Params| {
        let (w, u, b) = p;
        let mut h = r.h0.clone();
        let mut rows = vec![];
        for t in 0..7 {
            h = rnn_step(&w, &u, &b, &h, &r.xs.index_axis(0, t));
            rows.push(h.expand_dims(&[0]));
        }
        (Tensor::concatenate(&rows, 0) - &target).reshape(&[-1])
    };
    let gn = gauss_newton(residual, &params(&r)).unwrap();
    let gn_rust = gauss_newton(residual_rust, &params(&r)).unwrap();
    let dv = (
        Tensor::random_normal(81, &[3, 3], DType::F64),
        Tensor::random_normal(82, &[3, 2], DType::F64),
        Tensor::random_normal(83, &[3], DType::F64),
    );
    let a: Params = gn.apply(&dv).unwrap();
    let b: Params = gn_rust.apply(&dv).unwrap();
    close(&a.0, &b.0, 1e-13);
    close(&a.1, &b.1, 1e-13);
    close(&a.2, &b.2, 1e-13);
    let ga: Params = gn.gradient().unwrap();
    let gb: Params = gn_rust.gradient().unwrap();
    close(&ga.0, &gb.0, 1e-13);
}

#[test]
fn vjp_of_scan_with_integer_carries_and_unused_outputs() {
    // an i32 step counter rides along; it has no cotangent and must not disturb the rest
    let x = v(&[0.5, 1.5]);
    let f = |x: Tensor| {
        let ((c, n), ys): ((Tensor, Tensor), Tensor) = scan_with(
            |(c, n): (Tensor, Tensor), _: ()| {
                let c2 = (&c * n.astype(DType::F64)).cos();
                ((c2.clone(), &n + 1i32), c2.sum_all())
            },
            &(x.clone(), Tensor::scalar(1i32)),
            &(),
            &ScanOptions::new().length(4),
        )
        .unwrap();
        let _ = n;
        c.sum_all() + ys.sum_all() * 0.0
    };
    let f_rust = |x: Tensor| {
        let mut c = x;
        for n in 1..=4 {
            c = (&c * Tensor::scalar(n as f64)).cos();
        }
        c.sum_all()
    };
    let (y, back) = vjp(f, &x).unwrap();
    let g: Tensor = back.apply(&Tensor::scalar(1.0f64)).unwrap();
    close(&y, &f_rust(x.clone()), 1e-15);
    close(&g, &grad(f_rust, &x).unwrap(), 1e-15);
}
