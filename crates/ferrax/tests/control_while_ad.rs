//! Reverse mode through `while_loop` (issue 13, beyond JAX): linearize, vjp, grad, jacrev,
//! hessian, hvp and Gauss-Newton of loops whose trip count is known only when they run,
//! against implicit derivatives (Newton's iteration for √a, a fixed-point iteration), the
//! same loops differentiated by hand in Rust, finite differences, and each other; vmap and
//! jit of the gradients; the checkpointed sweep's memory and recomputation bounds; and the
//! options' errors.

use ferrax::{
    eval_counts, gauss_newton, grad, hessian, hvp, jacfwd, jacrev, jit, jvp, linearize,
    reset_eval_counts, reset_while_linear_stats, vmap, while_linear_stats, while_loop,
    while_loop_with, Array, Error, Tensor, WhileLinearStats, WhileOptions,
};

/// Newton's iteration for √a from x0 = a until the step is at most 1e-13 (at most 200 steps).
fn newton_sqrt(a: Tensor) -> Tensor {
    let a = &a;
    let (x, _): (Tensor, Tensor) = while_loop_with(
        |(_, step): (Tensor, Tensor)| step.abs().greater(1e-13),
        |(x, _): (Tensor, Tensor)| {
            let next = (&x + a / &x) * 0.5;
            let step = &next - &x;
            (next, step)
        },
        &(a.clone(), Tensor::scalar(1.0f64)),
        WhileOptions::new().max_steps(200),
    )
    .unwrap();
    x
}

/// The fixed point of x = cos(x) / 2 + a, iterated until it moves by at most 1e-15.
fn fixed_point(a: Tensor) -> Tensor {
    let a = &a;
    let (x, _): (Tensor, Tensor) = while_loop(
        |(_, moved): (Tensor, Tensor)| moved.greater(1e-15),
        |(x, _): (Tensor, Tensor)| {
            let next = x.cos() * 0.5 + a;
            let moved = (&next - &x).abs();
            (next, moved)
        },
        &(Tensor::scalar(0.0f64), Tensor::scalar(1.0f64)),
    )
    .unwrap();
    x
}

/// y ← sin(y²) + y, elementwise, while the counter is below `steps`.
fn map_loop(x: Tensor, steps: i32) -> Tensor {
    let (y, _): (Tensor, Tensor) = while_loop(
        |(_, k): (Tensor, Tensor)| k.less(steps),
        |(y, k): (Tensor, Tensor)| ((&y * &y).sin() + &y, k + 1),
        &(x, Tensor::scalar(0i32)),
    )
    .unwrap();
    y
}

/// The same loop and its derivative dy/dx, written out in Rust.
fn map_loop_rust(x: f64, steps: i32) -> (f64, f64) {
    let (mut y, mut d) = (x, 1.0);
    for _ in 0..steps {
        d *= 2.0 * y * (y * y).cos() + 1.0;
        y = (y * y).sin() + y;
    }
    (y, d)
}

fn scalar(t: &Tensor) -> f64 {
    t.item().unwrap()
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-300)
}

#[test]
fn grad_of_newton_sqrt_is_the_implicit_derivative() {
    for a in [2.0f64, 9.0, 0.3, 1e4] {
        let got = scalar(&grad(newton_sqrt, &Tensor::scalar(a)).unwrap());
        let want = 0.5 / a.sqrt();
        assert!(close(got, want, 1e-12), "a {a}: {got} vs {want}");
    }
}

#[test]
fn grad_of_a_fixed_point_iteration_is_the_implicit_derivative() {
    // x* = cos(x*)/2 + a, so dx*/da = 1 / (1 + sin(x*)/2)
    for a in [0.0f64, 0.7, -1.3, 2.5] {
        let x = scalar(&fixed_point(Tensor::scalar(a)));
        assert!(
            close(x, x.cos() * 0.5 + a, 1e-14),
            "a {a}: not a fixed point"
        );
        let got = scalar(&grad(fixed_point, &Tensor::scalar(a)).unwrap());
        let want = 1.0 / (1.0 + x.sin() * 0.5);
        assert!(close(got, want, 1e-12), "a {a}: {got} vs {want}");
    }
}

#[test]
fn linearize_equals_jvp_and_reverse_equals_the_rust_loop() {
    for (x0, steps) in [(0.3f64, 5), (-0.7, 3), (0.1, 0), (1.1, 1)] {
        let x = Tensor::scalar(x0);
        let f = |x: Tensor| map_loop(x, steps);
        let (y, lin) = linearize(f, &x).unwrap();
        let (y2, t) = jvp(f, &x, &Tensor::scalar(1.0f64)).unwrap();
        assert_eq!(scalar(&y), scalar(&y2));
        let lt: Tensor = lin.apply(&Tensor::scalar(1.0f64)).unwrap();
        assert_eq!(scalar(&lt), scalar(&t), "linearize = jvp, bit for bit");
        let (want_y, want_d) = map_loop_rust(x0, steps);
        assert!(close(scalar(&y), want_y, 1e-15));
        let g = scalar(&grad(f, &x).unwrap());
        assert!(close(g, want_d, 1e-13), "{x0} {steps}: {g} vs {want_d}");
        // and the adjoint identity for the transposed map, at random-ish points
        let lt_map = lin.transpose().unwrap();
        for (tv, cv) in [(0.37, -1.9), (2.0, 0.5)] {
            let jt: Tensor = lin.apply(&Tensor::scalar(tv)).unwrap();
            let jtc: Tensor = lt_map.apply(&Tensor::scalar(cv)).unwrap();
            let (lhs, rhs) = (cv * scalar(&jt), scalar(&jtc) * tv);
            assert!(close(lhs, rhs, 1e-14), "{lhs} vs {rhs}");
        }
    }
}

#[test]
fn the_trip_count_depends_on_the_input() {
    // x ← x / 2 until x < 1: f(x) = x / 2^k with k the number of halvings, f'(x) = 2^-k
    let halve =
        |x: Tensor| while_loop(|x: Tensor| x.greater_equal(1.0), |x: Tensor| x * 0.5, &x).unwrap();
    for (x, k) in [(0.5f64, 0), (1.0, 1), (3.0, 2), (1000.0, 10)] {
        let g = scalar(&grad(halve, &Tensor::scalar(x)).unwrap());
        assert_eq!(g, 0.5f64.powi(k), "x {x}");
    }
    // and per example under vmap: each example's gradient has its own trip count
    let xs = Tensor::new(Array::from_slice(&[0.5f64, 1.0, 3.0, 1000.0]));
    let gs = vmap(
        |x: Tensor| grad(halve, &x).unwrap_or_else(Tensor::from_error),
        &xs,
    )
    .unwrap();
    assert_eq!(
        gs.to_vec::<f64>().unwrap(),
        vec![1.0, 0.5, 0.25, 0.5f64.powi(10)]
    );
    let gs = vmap(
        |a: Tensor| grad(newton_sqrt, &a).unwrap_or_else(Tensor::from_error),
        &Tensor::new(Array::from_slice(&[2.0f64, 1e4, 0.3])),
    )
    .unwrap();
    for (g, a) in gs.to_vec::<f64>().unwrap().iter().zip([2.0f64, 1e4, 0.3]) {
        assert!(close(*g, 0.5 / a.sqrt(), 1e-12), "vmap of grad, a {a}: {g}");
    }
}

#[test]
fn jacrev_jacfwd_hessian_and_hvp_agree() {
    let x = Tensor::new(Array::from_slice(&[0.3f64, -0.6, 0.9]));
    let f = |x: Tensor| map_loop(x, 4);
    let jr = jacrev(f, &x).unwrap().to_vec::<f64>().unwrap();
    let jf = jacfwd(f, &x).unwrap().to_vec::<f64>().unwrap();
    for (i, (a, b)) in jr.iter().zip(&jf).enumerate() {
        assert!(close(*a, *b, 1e-14), "entry {i}: jacrev {a} jacfwd {b}");
    }
    for (i, x0) in [0.3f64, -0.6, 0.9].iter().enumerate() {
        assert!(close(jr[i * 3 + i], map_loop_rust(*x0, 4).1, 1e-13));
    }
    // a scalar function mixing the entries: its Hessian against finite differences of the
    // gradient, and hvp against the Hessian
    let g = |x: Tensor| {
        let y = map_loop(x, 3);
        (&y * &y).sum_all() + (y.index_axis(0, 0) * y.index_axis(0, 2))
    };
    let h = hessian(g, &x).unwrap().to_vec::<f64>().unwrap();
    let at = |v: [f64; 3]| {
        grad(g, &Tensor::new(Array::from_slice(&v)))
            .unwrap()
            .to_vec::<f64>()
            .unwrap()
    };
    let base = [0.3f64, -0.6, 0.9];
    let eps = 1e-6;
    for j in 0..3 {
        let (mut up, mut down) = (base, base);
        up[j] += eps;
        down[j] -= eps;
        let (gu, gd) = (at(up), at(down));
        for i in 0..3 {
            let fd = (gu[i] - gd[i]) / (2.0 * eps);
            assert!(
                (h[i * 3 + j] - fd).abs() <= 1e-6 * fd.abs().max(1.0),
                "H[{i},{j}] {} vs fd {fd}",
                h[i * 3 + j]
            );
        }
    }
    let v = [0.5f64, -1.0, 2.0];
    let hv = hvp(g, &x, &Tensor::new(Array::from_slice(&v)))
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    for i in 0..3 {
        let want: f64 = (0..3).map(|j| h[i * 3 + j] * v[j]).sum();
        assert!(close(hv[i], want, 1e-12), "hvp {i}: {} vs {want}", hv[i]);
    }
}

#[test]
fn gauss_newton_through_a_while_loop() {
    // residuals r(p) = loop(p) - data: JᵀJ v against the Jacobian formed by jacrev
    let data = [0.2f64, -0.1, 0.4];
    let r = |p: Tensor| map_loop(p, 3) - Tensor::new(Array::from_slice(&data));
    let p = Tensor::new(Array::from_slice(&[0.3f64, -0.6, 0.9]));
    let gn = gauss_newton(r, &p).unwrap();
    let v = Tensor::new(Array::from_slice(&[1.0f64, 0.5, -0.25]));
    let got: Tensor = gn.apply(&v).unwrap();
    let j = jacrev(r, &p).unwrap().to_vec::<f64>().unwrap();
    let vv = [1.0f64, 0.5, -0.25];
    let jv: Vec<f64> = (0..3)
        .map(|i| (0..3).map(|k| j[i * 3 + k] * vv[k]).sum())
        .collect();
    let want: Vec<f64> = (0..3)
        .map(|k| (0..3).map(|i| j[i * 3 + k] * jv[i]).sum())
        .collect();
    for (g, w) in got.to_vec::<f64>().unwrap().iter().zip(&want) {
        assert!(close(*g, *w, 1e-13), "{g} vs {w}");
    }
}

#[test]
fn compiled_gradients_equal_eager_ones() {
    let f = jit(|a: Tensor| grad(newton_sqrt, &a).unwrap_or_else(Tensor::from_error));
    for a in [2.0f64, 9.0, 0.3] {
        let eager = scalar(&grad(newton_sqrt, &Tensor::scalar(a)).unwrap());
        let compiled = scalar(&f.call(&Tensor::scalar(a)).unwrap());
        assert_eq!(eager.to_bits(), compiled.to_bits(), "a {a}");
    }
}

/// 10,000 steps of a 64-float carry, reversed keeping at most 100 carries at once.
#[test]
fn checkpointed_reverse_sweep_keeps_its_memory_and_recomputation_bounds() {
    let n = 10_000;
    let x =
        Tensor::new(Array::from_vec((0..64).map(|i| 0.01 * i as f64).collect(), &[64]).unwrap());
    let run = |c: Option<usize>| {
        move |x: Tensor| {
            let opts = match c {
                Some(c) => WhileOptions::new().max_checkpoints(c),
                None => WhileOptions::new(),
            };
            let (y, _): (Tensor, Tensor) = while_loop_with(
                |(_, k): (Tensor, Tensor)| k.less(n),
                |(y, k): (Tensor, Tensor)| ((&y * 0.999).sin() + &y * 0.001, k + 1),
                &(x, Tensor::scalar(0i32)),
                opts,
            )
            .unwrap();
            y.sum_all()
        }
    };
    // what linearize stores with a bound: the initial carry and the trip count, whatever
    // the length
    let (_, lin) = linearize(run(Some(100)), &x).unwrap();
    let carry_bytes = 64 * 8 + 4;
    assert!(
        lin.residual_bytes() <= 2 * carry_bytes,
        "{} bytes stored",
        lin.residual_bytes()
    );
    reset_while_linear_stats();
    let g100 = grad(run(Some(100)), &x).unwrap();
    let s = while_linear_stats();
    // r = 3 is the least with C(99 + r, r) ≥ 10,000: each carry computed at most 3 times
    assert!(s.peak_carries <= 100, "{s:?}");
    assert!(s.body_evals <= 3 * n as u64, "{s:?}");
    assert_eq!(s.linear_steps, n as u64, "{s:?}");
    // with no bound, a gradient taken inside a trace records every carry on one forward
    // run of the body...
    let traced = jit(move |x: Tensor| grad(run(None), &x).unwrap_or_else(Tensor::from_error));
    reset_while_linear_stats();
    let g_all = traced.call(&x).unwrap();
    let s = while_linear_stats();
    assert_eq!(s.body_evals, n as u64 - 1, "{s:?}");
    assert_eq!(s.peak_carries, n as u64, "{s:?}");
    // ...and one taken on arrays reads the tape linearize stored: no recomputation at all
    reset_while_linear_stats();
    let g_tape = grad(run(None), &x).unwrap();
    assert_eq!(while_linear_stats(), WhileLinearStats::default());
    // recomputation and the tape change the schedule, not the arithmetic
    assert!(g100.array().unwrap().same_values(&g_all.array().unwrap()));
    assert!(g100.array().unwrap().same_values(&g_tape.array().unwrap()));
}

/// `linearize` on arrays counts the loop's steps first and stores each step's residuals (a
/// tape as long as the trip count): the map and its transpose then do no primal work.
#[test]
fn linearizing_on_arrays_stores_a_tape_and_applies_without_primal_work() {
    let x =
        Tensor::new(Array::from_vec((0..64).map(|i| 0.01 * i as f64).collect(), &[64]).unwrap());
    let ones = Tensor::new(Array::from_vec(vec![1.0f64; 64], &[64]).unwrap());
    for n in [0, 1, 7, 1000] {
        let f = move |x: Tensor| {
            let (y, _): (Tensor, Tensor) = while_loop(
                |(_, k): (Tensor, Tensor)| k.less(n),
                |(y, k): (Tensor, Tensor)| ((&y * 0.999).sin() + &y * 0.001, k + 1),
                &(x, Tensor::scalar(0i32)),
            )
            .unwrap();
            y.sum_all()
        };
        let (_, lin) = linearize(f, &x).unwrap();
        let text = lin.to_string();
        assert!(text.contains("scan[") || n == 0, "n {n}: {text}");
        assert!(!text.contains("while_linear"), "n {n}: {text}");
        assert_eq!(lin.program().count_prim("while"), 0, "n {n}: {text}");
        // one 64-float value per step: the cosine of the scaled carry
        if n > 0 {
            assert_eq!(lin.residual_bytes(), n as usize * 64 * 8, "n {n}: {text}");
        }
        reset_eval_counts();
        reset_while_linear_stats();
        let t: Tensor = lin.apply(&ones).unwrap();
        let ct: Tensor = lin
            .transpose()
            .unwrap()
            .apply(&Tensor::scalar(1.0f64))
            .unwrap();
        let counts = eval_counts();
        for primal in ["sin", "cos", "lt"] {
            assert!(!counts.contains_key(primal), "n {n}: {counts:?}");
        }
        assert_eq!(while_linear_stats(), WhileLinearStats::default());
        // linearize = jvp (to rounding: the compiled map sums in another order than eager
        // jvp), and the adjoint identity with the all-ones tangent
        let (_, jt) = jvp(f, &x, &ones).unwrap();
        assert!(close(scalar(&t), scalar(&jt), 1e-14), "n {n}");
        let dot = (&ct * &ones).sum_all();
        assert!(close(scalar(&dot), scalar(&t), 1e-14), "n {n}");
    }
}

#[test]
fn one_checkpoint_recomputes_quadratically_and_agrees() {
    let f = |c: usize| {
        move |x: Tensor| {
            let (y, _): (Tensor, Tensor) = while_loop_with(
                |(_, k): (Tensor, Tensor)| k.less(40),
                |(y, k): (Tensor, Tensor)| (y.sin() + 0.1, k + 1),
                &(x, Tensor::scalar(0i32)),
                WhileOptions::new().max_checkpoints(c),
            )
            .unwrap();
            y
        }
    };
    let x = Tensor::scalar(0.4f64);
    reset_while_linear_stats();
    let g1 = scalar(&grad(f(1), &x).unwrap());
    let s = while_linear_stats();
    assert_eq!(s.peak_carries, 1);
    assert_eq!(s.body_evals, 40 * 39 / 2, "{s:?}");
    let g5 = scalar(&grad(f(5), &x).unwrap());
    assert_eq!(g1.to_bits(), g5.to_bits());
}

/// The tape route with a cond and a body that read values of the input (cond and body
/// consts), against the recomputing route (`jit` of `grad`) and the loop differentiated by
/// hand; and a loop past its `max_steps` while `grad` counts its steps.
#[test]
fn a_tape_of_a_loop_whose_cond_and_body_read_the_input() {
    // y ← y / 2 + lim / 10 while y > 2 lim, from y = x: the trip count depends on x and lim
    let f = |(x, lim): (Tensor, Tensor)| {
        let bound = &lim * 2.0;
        let y: Tensor = while_loop(
            |y: Tensor| y.greater(&bound),
            |y: Tensor| y * 0.5 + &lim * 0.1,
            &x,
        )
        .unwrap();
        &y * &y
    };
    let by_hand = |x: f64, lim: f64| {
        let (mut y, mut dx, mut dl) = (x, 1.0, 0.0);
        while y > 2.0 * lim {
            (y, dx, dl) = (y * 0.5 + lim * 0.1, dx * 0.5, dl * 0.5 + 0.1);
        }
        (2.0 * y * dx, 2.0 * y * dl)
    };
    let traced = jit(move |xl: (Tensor, Tensor)| {
        grad(f, &xl).unwrap_or_else(|e| (Tensor::from_error(e.clone()), Tensor::from_error(e)))
    });
    for (x, lim) in [(40.0f64, 0.3), (3.0, 1.0), (1.0, 0.7), (1e3, 0.01)] {
        let xl = (Tensor::scalar(x), Tensor::scalar(lim));
        reset_while_linear_stats();
        let (gx, gl) = grad(f, &xl).unwrap();
        assert_eq!(while_linear_stats(), WhileLinearStats::default());
        let (tx, tl) = traced.call(&xl).unwrap();
        assert!(while_linear_stats().linear_steps > 0 || x <= 2.0 * lim);
        let (wx, wl) = by_hand(x, lim);
        for (got, recomputed, want) in [(&gx, &tx, wx), (&gl, &tl, wl)] {
            assert!(
                close(scalar(got), want, 1e-14),
                "{x} {lim}: {} vs {want}",
                scalar(got)
            );
            assert!(close(scalar(got), scalar(recomputed), 1e-15), "{x} {lim}");
        }
    }
    // the count runs the loop, so a loop past its max_steps fails there, at the loop's line
    let e = grad(
        |x: Tensor| {
            let opts = WhileOptions::new().max_steps(9);
            while_loop_with(|y: Tensor| y.greater(0.0), |y: Tensor| y + 1.0, &x, opts)
                .unwrap_or_else(Tensor::from_error)
        },
        &Tensor::scalar(1.0f64),
    )
    .unwrap_err();
    assert!(e.to_string().contains("max_steps = 9"), "{e}");
    assert!(e.to_string().contains("control_while_ad.rs"), "{e}");
}

#[test]
fn options_and_their_errors() {
    let x = Tensor::scalar(1.0f64);
    let forever = |opts: WhileOptions| {
        while_loop_with(
            |_: Tensor| Tensor::scalar(true),
            |x: Tensor| x + 1.0,
            &x,
            opts,
        )
    };
    // a loop past its max_steps ends with an error naming the bound, eagerly and compiled
    let e = forever(WhileOptions::new().max_steps(50)).unwrap_err();
    assert!(matches!(e, Error::Input { .. }), "{e}");
    assert!(e.to_string().contains("max_steps = 50"), "{e}");
    let f = jit(|x: Tensor| {
        while_loop_with(
            |x: Tensor| x.greater(0.0),
            |x: Tensor| x + 1.0,
            &x,
            WhileOptions::new().max_steps(7),
        )
        .unwrap_or_else(Tensor::from_error)
    });
    let e = f.call(&x).unwrap_err();
    assert!(e.to_string().contains("max_steps = 7"), "{e}");
    // ...and one within it runs to its end
    let y = while_loop_with(
        |x: Tensor| x.less(5.0),
        |x: Tensor| x + 1.0,
        &x,
        WhileOptions::new().max_steps(4),
    )
    .unwrap();
    assert_eq!(scalar(&y), 5.0);
    for (opts, what) in [
        (WhileOptions::new().max_checkpoints(0), "max_checkpoints"),
        (WhileOptions::new().max_steps(0), "max_steps"),
    ] {
        let e = forever(opts).unwrap_err();
        assert!(e.to_string().contains(what), "{e}");
        assert!(e.to_string().contains("control_while_ad.rs"), "{e}");
    }
}

/// A loop inside the body: the linear step holds the inner loop's linear part only (a
/// scan carrying a primal value beside a tangent could not be transposed).
#[test]
fn grad_through_a_while_whose_body_runs_a_scan() {
    let f = |x: Tensor| {
        let (y, _): (Tensor, Tensor) = while_loop(
            |(_, k): (Tensor, Tensor)| k.less(3),
            |(y, k): (Tensor, Tensor)| {
                let (z, _): (Tensor, Tensor) = ferrax::scan(
                    |c: Tensor, _x: Tensor| (c.sin() * 0.9 + 0.05, Tensor::scalar(0.0f64)),
                    &y,
                    &Tensor::zeros(&[2], ferrax::DType::F64),
                )
                .unwrap();
                (z, k + 1)
            },
            &(x, Tensor::scalar(0i32)),
        )
        .unwrap();
        y
    };
    // six applications of y <- 0.9 sin(y) + 0.05
    let (mut y, mut d) = (0.7f64, 1.0);
    for _ in 0..6 {
        d *= 0.9 * y.cos();
        y = 0.9 * y.sin() + 0.05;
    }
    let g = scalar(&grad(f, &Tensor::scalar(0.7f64)).unwrap());
    assert!(close(g, d, 1e-14), "{g} vs {d}");
    let h = scalar(&hessian(f, &Tensor::scalar(0.7f64)).unwrap());
    let eps = 1e-5;
    let fd = (scalar(&grad(f, &Tensor::scalar(0.7 + eps)).unwrap())
        - scalar(&grad(f, &Tensor::scalar(0.7 - eps)).unwrap()))
        / (2.0 * eps);
    assert!((h - fd).abs() <= 1e-7 * fd.abs().max(1.0), "{h} vs {fd}");
}

/// A while loop inside a while loop's body, and vmap of a gradient over no examples.
#[test]
fn nested_loops_and_empty_batches() {
    let f = |x: Tensor| {
        let (y, _): (Tensor, Tensor) = while_loop(
            |(_, i): (Tensor, Tensor)| i.less(2),
            |(y, i): (Tensor, Tensor)| {
                // halve 4y until below 1: z = 4y / 2^m, dz/dy = 4 / 2^m
                let z = while_loop(|z: Tensor| z.greater(1.0), |z: Tensor| z * 0.5, &(&y * 4.0))
                    .unwrap();
                (&z + &y, i + 1)
            },
            &(x, Tensor::scalar(0i32)),
        )
        .unwrap();
        y
    };
    // y = 3: z = 12 / 16 = 0.75 (m = 4), y1 = 3.75, dy1/dy0 = 1 + 1/4;
    // y1 = 3.75: z = 15 / 16 (m = 4), y2 = 4.6875, dy2/dy1 = 1 + 1/4
    let g = scalar(&grad(f, &Tensor::scalar(3.0f64)).unwrap());
    assert_eq!(g, 1.25 * 1.25);
    let halve =
        |x: Tensor| while_loop(|x: Tensor| x.greater_equal(1.0), |x: Tensor| x * 0.5, &x).unwrap();
    let none = Tensor::zeros(&[0], ferrax::DType::F64);
    let gs = vmap(
        |x: Tensor| grad(halve, &x).unwrap_or_else(Tensor::from_error),
        &none,
    )
    .unwrap();
    assert_eq!(gs.to_vec::<f64>().unwrap(), Vec::<f64>::new());
}

/// A hand-written `while_linear` with a trip count below zero runs no step, forward and
/// transposed, in the reference evaluator and a plan.
#[test]
fn a_negative_trip_count_runs_no_step() {
    let text = |n: i64, transposed: bool| {
        let (lin, step) = if transposed {
            ("c:f64[]", "{ lambda ; a:f64[] b:f64[] c:f64[] . let d:f64[] = mul c a e:f64[] = mul c b in (e, d) }")
        } else {
            (
                "d:f64[] c:f64[]",
                "{ lambda ; a:f64[] b:f64[] d:f64[] c:f64[] . let e:f64[] = mul c a in (e) }",
            )
        };
        let outs = if transposed {
            "f:f64[] g:f64[]"
        } else {
            "f:f64[]"
        };
        let res = if transposed { "(f, g)" } else { "(f)" };
        let ops = if transposed { "c" } else { "d c" };
        format!(
            "{{ lambda ; a:f64[] x:f64[] {lin} . let {outs} = while_linear[body={{ lambda ; a:f64[] b:f64[] . let e:f64[] = sin b in (e) }} step={step} n_consts=1 n_lin_consts=1 transposed={transposed} checkpoints=2] a {n}:i64 x {ops} in {res} }}"
        )
    };
    for transposed in [false, true] {
        let p = ferrax::Program::parse(&text(-5, transposed)).unwrap();
        let mut args = vec![
            Array::scalar(2.0f64),
            Array::scalar(0.5f64),
            Array::scalar(3.0f64),
        ];
        if !transposed {
            args.push(Array::scalar(7.0f64));
        }
        let outs = p.eval(&args).unwrap();
        let plan = ferrax::Plan::new(&p).unwrap().run(args.clone()).unwrap();
        // no step: the carry's (co)tangent as given, the fixed tangent's cotangent zero
        let want: Vec<f64> = if transposed {
            vec![0.0, 3.0]
        } else {
            vec![7.0]
        };
        let got: Vec<f64> = outs.iter().map(|a| a.item().unwrap().to_f64()).collect();
        assert_eq!(got, want, "transposed {transposed}");
        for (a, b) in outs.iter().zip(&plan) {
            assert!(a.same_values(b));
        }
        let p3 = ferrax::Program::parse(&text(3, transposed)).unwrap();
        assert_ne!(
            p3.eval(&args).unwrap()[0].item().unwrap().to_f64(),
            want[0],
            "three steps do change it"
        );
    }
}

/// A reverse sweep whose carries cannot fit (a hand-written trip count of 2^40 with every
/// carry kept) is refused before it starts, naming the primitive and the bytes; with a
/// bound on the checkpoints the same count is only slow (not run here).
#[test]
fn a_sweep_whose_carries_cannot_fit_is_refused() {
    let text = "{ lambda ; a:f64[4096] c:f64[4096] . let
    e:f64[4096] f:f64[4096] = while_linear[body={ lambda ; a:f64[4096] b:f64[4096] . let
        d:f64[4096] = sin b
      in (d) } step={ lambda ; a:f64[4096] b:f64[4096] c:f64[4096] . let
        d:f64[4096] = mul c a
        e:f64[4096] = mul c b
      in (e, d) } n_consts=1 n_lin_consts=1 transposed=true checkpoints=0] a 1099511627776:i64 a c
  in (e, f) }";
    let p = ferrax::Program::parse(text).unwrap();
    let args = vec![
        Array::from_vec(vec![0.5f64; 4096], &[4096]).unwrap(),
        Array::from_vec(vec![1.0f64; 4096], &[4096]).unwrap(),
    ];
    for e in [
        p.eval(&args).unwrap_err(),
        ferrax::Plan::new(&p)
            .unwrap()
            .run(args.clone())
            .unwrap_err(),
    ] {
        assert!(matches!(e, Error::ResourceExhausted { .. }), "{e}");
        assert!(e.to_string().contains("while_linear"), "{e}");
    }
}
