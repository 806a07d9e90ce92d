//! `while_loop` (first part of issue 13): eager, traced and compiled runs equal the same loop
//! in Rust, the trip count depends on the input, closures capture outer tensors, the text
//! form reads back, bad bodies and conds are errors naming the avals and the user's line, and
//! jvp (forward mode) through the loop equals the derivative of the Rust loop.

use ferrax::{jit, jvp, make_jaxpr, while_loop, Array, DType, Error, Plan, Program, Tensor};

/// Newton's iteration for sqrt(a) from 1 until the step is at most 1e-12: (x, steps).
fn newton_sqrt(a: &Tensor) -> (Tensor, Tensor) {
    let (x, _, n): (Tensor, Tensor, Tensor) = while_loop(
        |(_, step, _): (Tensor, Tensor, Tensor)| step.abs().greater(1e-12),
        |(x, _, n): (Tensor, Tensor, Tensor)| {
            let next = (&x + a / &x) * 0.5;
            let step = &next - &x;
            (next, step, n + 1)
        },
        &(
            Tensor::scalar(1.0f64),
            Tensor::scalar(1.0f64),
            Tensor::scalar(0i32),
        ),
    )
    .unwrap();
    (x, n)
}

/// The same iteration in Rust, with its iteration count.
fn newton_sqrt_rust(a: f64) -> (f64, i32) {
    let (mut x, mut step, mut n) = (1.0f64, 1.0f64, 0);
    while step.abs() > 1e-12 {
        let next = (x + a / x) * 0.5;
        step = next - x;
        x = next;
        n += 1;
    }
    (x, n)
}

#[test]
fn eager_traced_and_compiled_loops_equal_the_rust_loop() {
    for a in [2.0, 9.0, 1e6, 0.25] {
        let (want, n) = newton_sqrt_rust(a);
        let (x, steps) = newton_sqrt(&Tensor::scalar(a));
        assert_eq!(x.item().unwrap(), want, "eager, a = {a}");
        assert_eq!(steps.item().unwrap() as i32, n);
        // the trip count depends on the input: a larger a takes more steps
        let p = make_jaxpr(|a: Tensor| newton_sqrt(&a), &Tensor::scalar(a)).unwrap();
        assert_eq!(p.count_prim("while"), 1, "{p}");
        let outs = p.eval(&[Array::scalar(a)]).unwrap();
        assert_eq!(outs[0].item().unwrap().to_f64(), want);
        let plan = Plan::new(&p).unwrap().run(vec![Array::scalar(a)]).unwrap();
        assert!(plan[0].same_values(&outs[0]) && plan[1].same_values(&outs[1]));
        let f = jit(|a: Tensor| newton_sqrt(&a));
        let (x, _) = f.call(&Tensor::scalar(a)).unwrap();
        assert_eq!(x.item().unwrap(), want);
    }
    assert!(newton_sqrt_rust(1e6).1 > newton_sqrt_rust(2.0).1);
}

#[test]
fn a_loop_that_does_not_run_gives_its_initial_carry() {
    let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2]);
    let y: Tensor = while_loop(|_: Tensor| Tensor::scalar(false), |x: Tensor| x * 2.0, &x).unwrap();
    assert_eq!(y.to_vec::<f64>().unwrap(), vec![1.0, 2.0]);
}

#[test]
fn jvp_through_the_loop_is_the_derivative_of_the_rust_loop() {
    // x_{k+1} = x_k - 0.1 * (x_k^3 - a) a fixed number of times, counted in the carry
    let run = |a: f64, x0: f64| {
        let mut x = x0;
        for _ in 0..25 {
            x -= 0.1 * (x * x * x - a);
        }
        x
    };
    let f = |(a, x0): (Tensor, Tensor)| -> Tensor {
        let (x, _): (Tensor, Tensor) = while_loop(
            |(_, k): (Tensor, Tensor)| k.less(25),
            |(x, k): (Tensor, Tensor)| (&x - (&x * &x * &x - &a) * 0.1, k + 1),
            &(x0, Tensor::scalar(0i32)),
        )
        .unwrap();
        x
    };
    let (a, x0) = (1.7, 1.1);
    let h = 1e-6;
    for (ta, tx) in [(1.0, 0.0), (0.0, 1.0), (0.5, -2.0)] {
        let (y, dy) = jvp(
            f,
            &(Tensor::scalar(a), Tensor::scalar(x0)),
            &(Tensor::scalar(ta), Tensor::scalar(tx)),
        )
        .unwrap();
        assert_eq!(y.item().unwrap(), run(a, x0));
        let fd = (run(a + h * ta, x0 + h * tx) - run(a - h * ta, x0 - h * tx)) / (2.0 * h);
        let d = dy.item().unwrap();
        assert!((d - fd).abs() < 1e-7 * (1.0 + fd.abs()), "{d} vs {fd}");
    }
    // jvp of the traced program is one while loop over primal and tangent carries
    let p = make_jaxpr(
        |(a, x0): (Tensor, Tensor)| {
            jvp(
                f,
                &(a, x0),
                &(Tensor::scalar(1.0f64), Tensor::scalar(0.0f64)),
            )
            .unwrap()
        },
        &(Tensor::scalar(a), Tensor::scalar(x0)),
    )
    .unwrap();
    assert_eq!(p.count_prim("while"), 1, "{p}");
}

#[test]
fn the_text_form_reads_back() {
    let p = make_jaxpr(|a: Tensor| newton_sqrt(&a), &Tensor::scalar(2.0f64)).unwrap();
    let text = p.to_string();
    assert!(text.contains("while[cond={ lambda"), "{text}");
    let q = Program::parse(&text).unwrap();
    assert_eq!(q.to_string(), text);
}

#[test]
fn bad_conds_and_bodies_are_errors_naming_the_avals_and_the_line() {
    let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2]);
    // a cond that is not a bool scalar
    let e = while_loop(|x: Tensor| x.greater(0.0), |x: Tensor| x, &x).unwrap_err();
    assert!(matches!(e, Error::DType { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("while") && msg.contains("bool[2]"), "{msg}");
    assert!(msg.contains("control_while.rs"), "{msg}");
    let e = while_loop(|x: Tensor| x.sum_all(), |x: Tensor| x, &x).unwrap_err();
    assert!(e.to_string().contains("f64[]"), "{e}");
    // a body that changes the carry's shape or dtype
    let e = while_loop(
        |x: Tensor| x.sum_all().greater(10.0),
        |x: Tensor| x.sum_all(),
        &x,
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("f64[2]") && msg.contains("f64[]"), "{msg}");
    assert!(msg.contains("control_while.rs"), "{msg}");
    let e = while_loop(
        |x: Tensor| x.sum_all().greater(10.0),
        |x: Tensor| x.astype(DType::F32),
        &x,
    )
    .unwrap_err();
    assert!(e.to_string().contains("f32[2]"), "{e}");
    // in text: a cond giving a float
    let text = "{ lambda ; a:f64[] . let\n    b:f64[] = while[cond={ lambda ; a:f64[] . let\n              b:f64[] = neg a\n            in (b) } body={ lambda ; a:f64[] . let\n              b:f64[] = neg a\n            in (b) } n_cond_consts=0 n_body_consts=0 max_steps=0 checkpoints=0] a\n  in (b) }";
    let e = Program::parse(text).unwrap_err();
    assert!(e.to_string().contains("bool scalar"), "{e}");
}

/// What is not built is an error naming the primitive, never a panic or a wrong answer: a
/// while loop on the linear value of a declared-linear function (its trip count would have
/// to be a residual), and reverse mode over reverse mode (linearizing a gradient that runs
/// a loop backwards).
#[test]
fn passes_not_built_for_while_are_errors() {
    use ferrax::{grad, jacrev, linearize};
    let f = |a: Tensor| newton_sqrt(&a).0;
    let e = std::panic::catch_unwind(|| {
        jacrev(
            |a: Tensor| grad(f, &a).unwrap_or_else(Tensor::from_error),
            &Tensor::scalar(2.0f64),
        )
        .map(|_| ())
    })
    .expect("reverse over reverse must not panic")
    .unwrap_err();
    assert!(e.to_string().contains("while_linear"), "{e}");
    assert!(e.to_string().contains("reverse over reverse"), "{e}");
    let e = linearize(
        |a: Tensor| grad(f, &a).unwrap_or_else(Tensor::from_error),
        &Tensor::scalar(2.0f64),
    )
    .map(|_| ())
    .unwrap_err();
    assert!(e.to_string().contains("not built"), "{e}");
    let xs = Tensor::from_vec(vec![2.0f64, 3.0], &[2]);
    // a while loop on the linear value of a declared-linear function
    let g = |x: Tensor| -> Tensor {
        let (y, _): (Tensor, Tensor) = while_loop(
            |(_, k): (Tensor, Tensor)| k.less(3),
            |(y, k): (Tensor, Tensor)| (y * 2.0, k + 1),
            &(x, Tensor::scalar(0i32)),
        )
        .unwrap();
        y
    };
    let e = ferrax::linear_transpose(g, &xs).map(|_| ()).unwrap_err();
    assert!(matches!(e, Error::NotLinear { .. }), "{e}");
    assert!(e.to_string().contains("while"), "{e}");
}

/// vmap of a loop whose predicate varies across examples: each example stops after its own
/// number of steps (the batched loop runs until the slowest is done, the others keep their
/// carry), and every example's result equals its own loop's, eagerly, traced and compiled.
#[test]
fn vmap_runs_each_example_for_its_own_trip_count() {
    use ferrax::vmap;
    let values = [2.0f64, 1e6, 0.25, 9.0];
    let a = Tensor::from_vec(values.to_vec(), &[4]);
    let f = |a: Tensor| newton_sqrt(&a);
    let (x, n) = vmap(f, &a).unwrap();
    let (x, n) = (x.to_vec::<f64>().unwrap(), n.to_vec::<i32>().unwrap());
    for (k, v) in values.iter().enumerate() {
        let (want, steps) = newton_sqrt_rust(*v);
        assert_eq!(x[k], want, "a = {v}");
        assert_eq!(n[k], steps, "a = {v}");
    }
    assert!(n.iter().min() < n.iter().max(), "{n:?}");
    let p = make_jaxpr(|a: Tensor| vmap(f, &a).unwrap(), &a).unwrap();
    assert_eq!(p.count_prim("while"), 1, "{p}");
    let args = vec![a.array().unwrap()];
    let want = p.eval(&args).unwrap();
    let got = Plan::new(&p).unwrap().run(args).unwrap();
    assert!(got.iter().zip(&want).all(|(g, w)| g.same_values(w)));
}

/// A predicate that does not vary (a counter) with batched carries stays one loop whose
/// cond is unbatched; a batched const captured by the body is batched, an unbatched one not.
#[test]
fn vmap_with_an_unbatched_predicate_keeps_one_plain_loop() {
    use ferrax::vmap;
    let w = Tensor::scalar(0.5f64);
    let f = |x: Tensor| -> Tensor {
        let (y, _): (Tensor, Tensor) = while_loop(
            |(_, k): (Tensor, Tensor)| k.less(4),
            |(y, k): (Tensor, Tensor)| ((&y * &w).sin() + &y, k + 1),
            &(x, Tensor::scalar(0i32)),
        )
        .unwrap();
        y
    };
    let xs = Tensor::from_vec(vec![0.1f64, -2.0, 3.0], &[3]);
    let y = vmap(f, &xs).unwrap().to_vec::<f64>().unwrap();
    for (k, x0) in [0.1f64, -2.0, 3.0].iter().enumerate() {
        let mut v = *x0;
        for _ in 0..4 {
            v = (v * 0.5).sin() + v;
        }
        assert_eq!(y[k], v);
    }
    let p = make_jaxpr(|x: Tensor| vmap(f, &x).unwrap(), &xs).unwrap();
    let text = p.to_string();
    // the counter stays a scalar inside the batched loop
    assert!(text.contains("i32[] = add"), "{text}");
}

/// The optimizer removes a while loop's carries nothing needs: one read neither outside,
/// nor by the cond, nor by a kept carry's update, and the consts only it read; the loop
/// still computes what is read.
#[test]
fn optimize_prunes_carries_and_consts_nobody_reads() {
    use ferrax::optimize;
    let f = |(a, b): (Tensor, Tensor)| {
        let (x, _, _): (Tensor, Tensor, Tensor) = while_loop(
            |(_, _, k): (Tensor, Tensor, Tensor)| k.less(5),
            // y, updated from b and itself only, is never read
            |(x, y, k): (Tensor, Tensor, Tensor)| (x.sin() + &a, (&y * &b).exp(), k + 1),
            &(
                Tensor::scalar(0.5f64),
                Tensor::scalar(0.1f64),
                Tensor::scalar(0i32),
            ),
        )
        .unwrap();
        x
    };
    let args = (Tensor::scalar(0.3f64), Tensor::scalar(2.0f64));
    let p = make_jaxpr(f, &args).unwrap();
    let q = optimize(&p).unwrap();
    let e = q.eqns.iter().find(|e| e.prim.name() == "while").unwrap();
    assert_eq!(e.outs.len(), 2, "{q}");
    assert_eq!(e.prim.subprograms()[1].count_prim("exp"), 0, "{q}");
    let ins = [Array::scalar(0.3f64), Array::scalar(2.0f64)];
    assert!(q.eval(&ins).unwrap()[0].same_values(&p.eval(&ins).unwrap()[0]));
    // the jvp with respect to a alone: the tangent loop keeps what the tangent needs
    let j = ferrax::jvp_program(&p, &[true, false]).unwrap();
    let oj = optimize(&j).unwrap();
    let e = oj.eqns.iter().find(|e| e.prim.name() == "while").unwrap();
    assert_eq!(e.outs.len(), 3, "x, its tangent and the counter: {oj}");
}

/// A while loop that reads only a scan's consts is not hoisted out of the scan: in a scan
/// of length 0 it never runs, so its max_steps error never happens, compiled or not.
#[test]
fn a_loop_in_a_scan_of_length_zero_never_runs() {
    use ferrax::{optimize, scan_with, ScanOptions, WhileOptions};
    let f = |a: Tensor| {
        let (c, _): (Tensor, Tensor) = scan_with(
            |c: Tensor, _: Tensor| {
                let y = ferrax::while_loop_with(
                    |y: Tensor| y.greater(-1.0),
                    |y: Tensor| y + 1.0,
                    &a,
                    WhileOptions::new().max_steps(5),
                )
                .unwrap_or_else(Tensor::from_error);
                (c + y, Tensor::scalar(0.0f64))
            },
            &Tensor::scalar(0.0f64),
            &Tensor::zeros(&[0], DType::F64),
            &ScanOptions::new(),
        )
        .unwrap();
        c
    };
    let a = Tensor::scalar(1.0f64);
    assert_eq!(f(a.clone()).item().unwrap(), 0.0);
    let p = make_jaxpr(f, &a).unwrap();
    let o = optimize(&p).unwrap();
    assert_eq!(
        o.eval(&[Array::scalar(1.0f64)]).unwrap()[0]
            .item()
            .unwrap()
            .to_f64(),
        0.0
    );
    assert_eq!(jit(f).call(&a).unwrap().item().unwrap(), 0.0);
}
