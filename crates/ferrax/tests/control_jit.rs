//! Control flow in compiled plans: `jit` of `scan`, `cond`, `switch` and `fori_loop` gives
//! the reference evaluator's results bit for bit (f64, exact comparisons, with operations
//! whose plan kernels are the reference's: not f64 exp, log, logistic, expm1 or tanh, which
//! plans run as ferrax's polynomials on a CPU with AVX2, within their ulp bounds), in every form
//! (forward, reverse, several carries and ys, no xs, zero length, captured values, nested
//! control flow, programs read from text), counts what the reference evaluator counts, and
//! compiles once whatever the number of iterations.

use std::cell::Cell;

use ferrax::{
    cond, eval_counts, fori_loop, jit, make_jaxpr, reset_eval_counts, scan, scan_with, switch,
    Array, DType, Error, Plan, Program, ScanOptions, Tensor,
};

fn same(got: &Tensor, want: &Tensor) {
    let (g, w) = (got.array().unwrap(), want.array().unwrap());
    assert!(g.same_values(&w), "jit {g:?}\neval {w:?}");
}

fn normal(seed: u64, shape: &[usize]) -> Tensor {
    Tensor::random_normal(seed, shape, DType::F64)
}

/// h' = tanh(w h + u x + b).
fn rnn_step(w: &Tensor, u: &Tensor, b: &Tensor, h: &Tensor, x: &Tensor) -> Tensor {
    (w.matmul(h) + u.matmul(x) + b).tanh()
}

/// A traced program and its plan agree with the reference evaluator on `args`.
fn plan_equals_eval(p: &Program, args: &[Array]) {
    let want = p.eval(args).unwrap();
    let got = Plan::new(p).unwrap().run(args.to_vec()).unwrap();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert!(g.same_values(w), "plan {g:?}\nreference {w:?}\n{p}");
    }
}

#[test]
fn rnn_scan_with_weights_captured_from_outside() {
    let (w, u, b) = (
        normal(1, &[4, 4]) * 0.5,
        normal(2, &[4, 3]) * 0.5,
        normal(3, &[4]) * 0.1,
    );
    let f = |(h0, xs): (Tensor, Tensor)| {
        scan(
            |h: Tensor, x: Tensor| {
                let h2 = rnn_step(&w, &u, &b, &h, &x);
                (h2.clone(), h2)
            },
            &h0,
            &xs,
        )
        .unwrap_or_else(|e| (Tensor::from_error(e.clone()), Tensor::from_error(e)))
    };
    let (h0, xs) = (normal(4, &[4]), normal(5, &[9, 3]));
    let args = (h0.clone(), xs.clone());
    let jf = jit(f);
    let (jh, jhs) = jf.call(&args).unwrap();
    // The CPU kernel of f64 tanh is not the reference's libm call, so the oracle here is the
    // compiled step run in a Rust loop: the same kernels, one iteration per call.
    let step = jit(|(h, x): (Tensor, Tensor)| rnn_step(&w, &u, &b, &h, &x));
    let mut h = h0;
    let mut rows = vec![];
    for t in 0..9 {
        h = step.call(&(h, xs.index_axis(0, t))).unwrap();
        rows.extend(h.to_vec::<f64>().unwrap());
    }
    same(&jh, &h);
    assert_eq!(jhs.to_vec::<f64>().unwrap(), rows);
    // and the reference evaluator to within tanh's ulps
    let (eh, ehs) = f(args.clone());
    for (g, w) in [(&jh, &eh), (&jhs, &ehs)] {
        let (g, w) = (g.to_vec::<f64>().unwrap(), w.to_vec::<f64>().unwrap());
        assert!(
            g.iter().zip(&w).all(|(a, b)| (a - b).abs() <= 1e-14),
            "{g:?} {w:?}"
        );
    }
    // with an activation whose kernel is libm's, bit for bit
    let g = |(h0, xs): (Tensor, Tensor)| {
        scan(
            |h: Tensor, x: Tensor| {
                let h2 = (w.matmul(&h) + u.matmul(&x) + &b).sin();
                (h2.clone(), h2)
            },
            &h0,
            &xs,
        )
        .unwrap_or_else(|e| (Tensor::from_error(e.clone()), Tensor::from_error(e)))
    };
    let (gh, ghs) = jit(g).call(&args).unwrap();
    let (eh, ehs) = g(args.clone());
    same(&gh, &eh);
    same(&ghs, &ehs);
    jf.call(&args).unwrap();
    assert_eq!(jf.cache_size(), 1);
}

#[test]
fn scan_consts_are_traced_values_of_the_enclosing_function() {
    // `a` and `m` are inputs of the jitted function: they become the scan's consts
    let f = |(a, m, c0, xs): (Tensor, Tensor, Tensor, Tensor)| {
        scan(
            |c: Tensor, x: Tensor| {
                let c2 = (m.matmul(&c) * &a + &x).sin();
                (c2.clone(), &c2 * &a)
            },
            &c0,
            &xs,
        )
        .unwrap_or_else(|e| (Tensor::from_error(e.clone()), Tensor::from_error(e)))
    };
    let args = (
        Tensor::scalar(0.7f64),
        normal(6, &[3, 3]),
        normal(7, &[3]),
        normal(8, &[5, 3]),
    );
    let p = make_jaxpr(f, &args).unwrap();
    assert!(p.to_string().contains("n_consts=2"), "{p}");
    let (c, ys) = f(args.clone());
    let (jc, jys) = jit(f).call(&args).unwrap();
    same(&jc, &c);
    same(&jys, &ys);
    // the body updates its carry in place, never the caller's initial carry or consts
    same(&args.2, &normal(7, &[3]));
    same(&args.1, &normal(6, &[3, 3]));
}

#[test]
fn reverse_scans_run_from_the_last_row_and_keep_ys_aligned() {
    let f = |xs: Tensor| {
        scan_with(
            |c: Tensor, x: Tensor| {
                let c2 = &c * 10.0 + &x;
                (c2.clone(), (c2, x.sin()))
            },
            &Tensor::scalar(0.0f64),
            &xs,
            &ScanOptions::new().reverse(true),
        )
        .unwrap()
    };
    let xs = Tensor::new(Array::from_slice(&[1.0f64, 2.0, 3.0, 4.0, 5.0]));
    let (c, (ys, s)) = jit(f).call(&xs).unwrap();
    assert_eq!(c.item().unwrap(), 54321.0);
    assert_eq!(
        ys.to_vec::<f64>().unwrap(),
        vec![54321.0, 5432.0, 543.0, 54.0, 5.0]
    );
    let (ec, (eys, es)) = f(xs);
    same(&c, &ec);
    same(&ys, &eys);
    same(&s, &es);
}

#[test]
fn several_carries_and_ys_of_several_dtypes() {
    // carries: a vector, a scalar and an i32 counter; ys: a matrix row, a scalar, an i32
    // and a bool per step, in both directions
    for reverse in [false, true] {
        let f = |(v0, xs): (Tensor, Tensor)| {
            scan_with(
                |(v, s, n): (Tensor, Tensor, Tensor), x: Tensor| {
                    let v2 = (&v * &x).cos() + &s;
                    let s2 = &s * 0.5 + v2.sum_all();
                    let n2 = &n + 1i32;
                    let outer = v2.expand_dims(&[1]).matmul(&x.expand_dims(&[0]));
                    let ys = (outer, s2.clone(), &n2 * 3i32, s2.greater(0.0));
                    ((v2, s2, n2), ys)
                },
                &(v0, Tensor::scalar(0.25f64), Tensor::scalar(0i32)),
                &xs,
                &ScanOptions::new().reverse(reverse),
            )
            .unwrap()
        };
        let args = (normal(9, &[3]), normal(10, &[6, 3]));
        let ((v, s, n), (outer, ss, ns, bs)) = f(args.clone());
        let ((jv, js, jn), (jouter, jss, jns, jbs)) = jit(f).call(&args).unwrap();
        for (g, w) in [(&jv, &v), (&js, &s), (&jn, &n), (&jouter, &outer)] {
            same(g, w);
        }
        for (g, w) in [(&jss, &ss), (&jns, &ns), (&jbs, &bs)] {
            same(g, w);
        }
        assert_eq!(jouter.shape(), &[6, 3, 3]);
        assert_eq!(jn.to_vec::<i32>().unwrap(), vec![6]);
    }
}

#[test]
fn scans_without_xs_run_their_length_and_zero_lengths_run_nothing() {
    let f = |c0: Tensor| {
        scan_with(
            |c: Tensor, (): ()| ((&c * 1.5).sin(), &c * 2.0),
            &c0,
            &(),
            &ScanOptions::new().length(7),
        )
        .unwrap()
    };
    let c0 = normal(11, &[2]);
    let (c, ys) = jit(f).call(&c0).unwrap();
    let (ec, eys) = f(c0.clone());
    same(&c, &ec);
    same(&ys, &eys);
    assert_eq!(ys.shape(), &[7, 2]);

    // zero iterations: the carry comes back as it is, the ys are empty
    let g = |(c0, xs): (Tensor, Tensor)| {
        scan(
            |c: Tensor, x: Tensor| (&c + &x, (&x * 2.0, x.sum_all())),
            &c0,
            &xs,
        )
        .unwrap()
    };
    let args = (c0.clone(), Tensor::zeros(&[0, 2], DType::F64));
    let (c, (ys, sums)) = jit(g).call(&args).unwrap();
    same(&c, &c0);
    assert_eq!(ys.shape(), &[0, 2]);
    assert_eq!(sums.shape(), &[0]);
    let h = |c0: Tensor| {
        scan_with(
            |c: Tensor, (): ()| (&c + 1.0, ()),
            &c0,
            &(),
            &ScanOptions::new().length(0),
        )
        .unwrap()
        .0
    };
    same(&jit(h).call(&c0).unwrap(), &c0);
}

#[test]
fn unread_outputs_are_pruned_but_change_nothing() {
    // only the final carry is read; then only the ys
    // (cos, not exp, for the ys: the plans' f64 exp is ferrax's polynomial on a CPU with
    // AVX2, within 1 ulp of the reference's libm but not bit for bit; f64 cos is libm in
    // both, and this test is about pruning)
    let body = |c: Tensor, x: Tensor| {
        let c2 = (&c + &x).sin();
        (c2.clone(), (&c2 * &x).cos())
    };
    let xs = normal(12, &[8, 4]);
    let c0 = normal(13, &[4]);
    let last = |(c0, xs): (Tensor, Tensor)| scan(body, &c0, &xs).unwrap().0;
    let rows = |(c0, xs): (Tensor, Tensor)| scan(body, &c0, &xs).unwrap().1;
    let args = (c0, xs);
    same(&jit(last).call(&args).unwrap(), &last(args.clone()));
    same(&jit(rows).call(&args).unwrap(), &rows(args.clone()));
    // the body of the carry-only plan computes no cos
    let p = make_jaxpr(last, &args).unwrap();
    let plan = Plan::new(&p).unwrap();
    assert_eq!(plan.nested().len(), 1);
    assert_eq!(plan.nested()[0].program().count_prim("cos"), 0);
    assert_eq!(p.eqns[0].prim.subprograms()[0].count_prim("cos"), 1);
}

#[test]
fn cond_and_switch_run_the_branch_their_clamped_index_picks() {
    let f = |(x, p): (Tensor, Tensor)| {
        cond(
            &p.greater(0.0),
            |x: Tensor| (x.sin() * 2.0, x.sum_all()),
            |x: Tensor| (x.cos(), -x.sum_all()),
            &x,
        )
        .unwrap()
    };
    let jf = jit(f);
    let x = normal(14, &[3]);
    for p in [1.0f64, -1.0] {
        let args = (x.clone(), Tensor::scalar(p));
        let (a, s) = jf.call(&args).unwrap();
        let (ea, es) = f(args);
        same(&a, &ea);
        same(&s, &es);
    }
    assert_eq!(jf.cache_size(), 1);

    // i32 indices reach the primitive unclamped: below 0 runs the first branch, beyond the
    // last runs the last
    let g = |(i, x): (Tensor, Tensor)| {
        let b0 = |x: Tensor| &x * 10.0;
        let b1 = |x: Tensor| &x + 1.0;
        let b2 = |x: Tensor| x.sin();
        switch(&i, &[&b0, &b1, &b2], &x).unwrap()
    };
    let jg = jit(g);
    let x = Tensor::scalar(2.0f64);
    for (i, want) in [
        (i32::MIN, 20.0),
        (-3, 20.0),
        (0, 20.0),
        (1, 3.0),
        (2, 2f64.sin()),
        (7, 2f64.sin()),
        (i32::MAX, 2f64.sin()),
    ] {
        let args = (Tensor::scalar(i), x.clone());
        let y = jg.call(&args).unwrap();
        assert_eq!(y.item().unwrap(), want, "index {i}");
        same(&y, &g(args));
    }
    // an i64 index is clamped by `switch` before it becomes i32
    let h = |i: Tensor| {
        let b0 = |x: Tensor| &x - 1.0;
        let b1 = |x: Tensor| &x + 1.0;
        switch(&i, &[&b0, &b1], &Tensor::scalar(5.0f64)).unwrap()
    };
    for (i, want) in [(-9i64, 4.0), (1, 6.0), (i64::MAX, 6.0)] {
        assert_eq!(
            jit(h).call(&Tensor::scalar(i)).unwrap().item().unwrap(),
            want
        );
    }
}

#[test]
fn fori_loop_equals_the_reference_and_the_rust_loop() {
    let f = |x: Tensor| {
        fori_loop(
            2,
            9,
            |i: Tensor, c: Tensor| (&c * &i.astype(DType::F64)).cos(),
            &x,
        )
        .unwrap()
    };
    let y = jit(f).call(&Tensor::scalar(0.5f64)).unwrap();
    let mut want = 0.5f64;
    for i in 2..9 {
        want = (want * i as f64).cos();
    }
    assert_eq!(y.item().unwrap(), want);
    same(&y, &f(Tensor::scalar(0.5f64)));
    let empty = |x: Tensor| fori_loop(5, 5, |_i: Tensor, c: Tensor| &c + 1.0, &x).unwrap();
    assert_eq!(
        jit(empty)
            .call(&Tensor::scalar(0.5f64))
            .unwrap()
            .item()
            .unwrap(),
        0.5
    );
}

#[test]
fn a_scan_inside_a_cond_branch() {
    let f = |(p, c0, xs): (Tensor, Tensor, Tensor)| {
        cond(
            &p.greater(0.0),
            |(c0, xs): (Tensor, Tensor)| {
                scan(|c: Tensor, x: Tensor| ((&c * &x).sin(), ()), &c0, &xs)
                    .map(|(c, ())| c)
                    .unwrap_or_else(Tensor::from_error)
            },
            |(c0, xs): (Tensor, Tensor)| &c0 - xs.sum(&[0]),
            &(c0, xs),
        )
        .unwrap()
    };
    let jf = jit(f);
    for p in [1.0f64, -1.0] {
        let args = (Tensor::scalar(p), normal(15, &[3]), normal(16, &[4, 3]));
        same(&jf.call(&args).unwrap(), &f(args));
    }
}

#[test]
fn a_cond_inside_a_scan_body() {
    let f = |(c0, xs): (Tensor, Tensor)| {
        scan(
            |c: Tensor, x: Tensor| {
                let y = cond(
                    &(&c + &x).sum_all().greater(0.0),
                    |t: Tensor| t.sin(),
                    |t: Tensor| &t * -0.5,
                    &(&c + &x),
                )
                .unwrap_or_else(Tensor::from_error);
                (y.clone(), y.sum_all())
            },
            &c0,
            &xs,
        )
        .unwrap()
    };
    let args = (normal(17, &[2]), normal(18, &[12, 2]));
    let (c, ys) = jit(f).call(&args).unwrap();
    let (ec, eys) = f(args);
    same(&c, &ec);
    same(&ys, &eys);
}

#[test]
fn a_scan_inside_a_scan() {
    for reverse in [false, true] {
        let f = |(c0, xss): (Tensor, Tensor)| {
            scan_with(
                |c: Tensor, xs: Tensor| {
                    let (inner, rows) = scan_with(
                        |d: Tensor, x: Tensor| {
                            let d2 = (&d * 0.9 + &x).cos();
                            (d2.clone(), &d2 * 2.0)
                        },
                        &c,
                        &xs,
                        &ScanOptions::new().reverse(!reverse),
                    )
                    .unwrap_or_else(|e| (Tensor::from_error(e.clone()), Tensor::from_error(e)));
                    (inner, rows)
                },
                &c0,
                &xss,
                &ScanOptions::new().reverse(reverse),
            )
            .unwrap()
        };
        let args = (Tensor::scalar(0.1f64), normal(19, &[5, 4]));
        let (c, ys) = jit(f).call(&args).unwrap();
        let (ec, eys) = f(args);
        same(&c, &ec);
        same(&ys, &eys);
        assert_eq!(ys.shape(), &[5, 4]);
    }
}

#[test]
fn a_program_read_from_text_runs_its_scan_in_a_plan() {
    let text = "{ lambda ; a:f64[] b:f64[4,2] . let
    c:f64[] d:f64[4] = scan[body={ lambda ; a:f64[] b:f64[2] . let
              c:f64[] = reduce_sum[axes=(0,)] b
              d:f64[] = mul a c
              e:f64[] = sin d
            in (e, c) } n_consts=0 n_carry=1 length=4 reverse=true] a b
    e:f64[] = cos c
  in (e, d) }";
    let p = Program::parse(text).unwrap();
    let args = [Array::scalar(0.3f64), normal(20, &[4, 2]).array().unwrap()];
    plan_equals_eval(&p, &args);
}

#[test]
fn compiling_costs_the_same_for_ten_or_ten_thousand_iterations() {
    let traces = Cell::new(0);
    let mut bodies = vec![];
    for length in [10usize, 10_000] {
        traces.set(0);
        let f = |(c0, xs): (Tensor, Tensor)| {
            scan(
                |c: Tensor, x: Tensor| {
                    traces.set(traces.get() + 1);
                    let c2 = (&c * &x).sin() + 0.5;
                    (c2.clone(), c2)
                },
                &c0,
                &xs,
            )
            .unwrap()
        };
        let args = (Tensor::scalar(0.2f64), normal(21, &[length]));
        let jf = jit(f);
        let program = jf.program(&args).unwrap();
        assert_eq!(traces.get(), 1, "the body is traced once");
        assert_eq!(program.eqns.len(), 1, "{program}");
        assert_eq!(program.count_prim("scan"), 1);
        let (c, ys) = jf.call(&args).unwrap();
        assert_eq!(traces.get(), 1, "running traces nothing");
        assert_eq!(ys.shape(), &[length]);
        let (ec, eys) = f(args.clone());
        same(&c, &ec);
        same(&ys, &eys);
        // one nested plan, made with the plan: the same for both lengths
        let p = make_jaxpr(f, &args).unwrap();
        let plan = Plan::new(&p).unwrap();
        assert_eq!(plan.nested().len(), 1);
        bodies.push(plan.nested()[0].program().to_string());
    }
    assert_eq!(bodies[0], bodies[1]);
}

#[test]
fn plans_count_what_the_reference_evaluator_counts() {
    let f = |(c0, xs): (Tensor, Tensor)| {
        scan(
            |c: Tensor, x: Tensor| {
                let c2 = (&c * &x).sin();
                let y = cond(
                    &c2.greater(0.0),
                    |t: Tensor| t.cos(),
                    |t: Tensor| t.exp(),
                    &c2,
                )
                .unwrap_or_else(Tensor::from_error);
                (c2, y)
            },
            &c0,
            &xs,
        )
        .unwrap()
    };
    let args = (Tensor::scalar(0.4f64), normal(22, &[30]));
    let p = make_jaxpr(f, &args).unwrap();
    let arrays: Vec<Array> = [&args.0, &args.1]
        .iter()
        .map(|t| t.array().unwrap())
        .collect();
    let plan = Plan::new(&p).unwrap();
    reset_eval_counts();
    let want = p.eval(&arrays).unwrap();
    let reference = eval_counts();
    reset_eval_counts();
    let got = plan.run(arrays).unwrap();
    assert_eq!(eval_counts(), reference);
    assert_eq!(reference["sin"], 30);
    assert_eq!(reference["cos"] + reference["exp"], 30);
    assert!(!reference.contains_key("scan") && !reference.contains_key("cond"));
    for (g, w) in got.iter().zip(&want) {
        assert!(g.same_values(w));
    }
}

#[test]
fn wrong_arguments_and_unallocatable_ys_are_errors() {
    let f = |(c0, xs): (Tensor, Tensor)| {
        scan(|c: Tensor, x: Tensor| (&c + &x, ()), &c0, &xs)
            .unwrap()
            .0
    };
    let args = (Tensor::scalar(0.0f64), normal(23, &[5]));
    let p = make_jaxpr(f, &args).unwrap();
    let plan = Plan::new(&p).unwrap();
    let ok = [Array::scalar(0.0f64), normal(23, &[5]).array().unwrap()];
    assert!(plan.run(ok.to_vec()).is_ok());
    for bad in [
        vec![Array::scalar(0.0f64), normal(23, &[6]).array().unwrap()],
        vec![Array::scalar(0.0f32), ok[1].clone()],
        vec![ok[0].clone()],
    ] {
        let e = plan.run(bad).unwrap_err();
        assert!(matches!(e, Error::Input { .. }), "{e}");
    }
    // a million-element row for each of 2^30 iterations: 8 PiB of ys
    let g = |c0: Tensor| {
        scan_with(
            |c: Tensor, (): ()| (c.clone(), c.broadcast_to(&[1 << 20])),
            &c0,
            &(),
            &ScanOptions::new().length(1 << 30),
        )
        .unwrap()
        .1
    };
    let p = make_jaxpr(g, &Tensor::scalar(1.0f64)).unwrap();
    let e = Plan::new(&p)
        .unwrap()
        .run(vec![Array::scalar(1.0f64)])
        .unwrap_err();
    assert!(matches!(e, Error::ResourceExhausted { .. }), "{e}");
    let e = jit(g).call(&Tensor::scalar(1.0f64)).unwrap_err();
    assert!(matches!(e, Error::ResourceExhausted { .. }), "{e}");
}

#[test]
fn the_optimizer_keeps_control_flow_whole() {
    // a loop whose operands are all constants is not folded at compile time: it runs (and
    // is counted) when the plan runs, as the reference evaluator runs it
    let f = |x: Tensor| {
        let s = fori_loop(
            0,
            3,
            |i: Tensor, c: Tensor| &c + &i.astype(DType::F64),
            &Tensor::scalar(0.5f64),
        )
        .unwrap();
        s + x
    };
    let x = Tensor::scalar(1.0f64);
    let p = make_jaxpr(f, &x).unwrap();
    reset_eval_counts();
    let plan = Plan::new(&p).unwrap();
    assert!(!eval_counts().contains_key("scan"), "{:?}", eval_counts());
    assert_eq!(plan.program().count_prim("scan"), 1);
    reset_eval_counts();
    let got = plan.run(vec![x.array().unwrap()]).unwrap();
    assert_eq!(got[0].item().unwrap().to_f64(), 4.5);
    assert_eq!(eval_counts()["convert_element_type"], 3);

    // equations without outputs, and two equal loops merged into one
    let g = |xs: Tensor| {
        let _: () = scan(|(): (), _x: Tensor| ((), ()), &(), &xs).unwrap().1;
        // one closure: equal bodies, down to the source lines of their equations
        let body = |(): (), x: Tensor| ((), x.sin());
        let ((), a) = scan(body, &(), &xs).unwrap();
        let ((), b) = scan(body, &(), &xs).unwrap();
        a + b
    };
    let xs = normal(24, &[5]);
    let p = make_jaxpr(g, &xs).unwrap();
    assert_eq!(p.count_prim("scan"), 3);
    let plan = Plan::new(&p).unwrap();
    assert_eq!(plan.program().count_prim("scan"), 1, "{}", plan.program());
    same(&jit(g).call(&xs).unwrap(), &g(xs.clone()));
    plan_equals_eval(&p, &[xs.array().unwrap()]);
}

#[test]
fn products_with_a_vector_agree_with_the_reference_on_every_layout() {
    // matrix·vector, vector·matrix, (matrix)ᵀ·vector read through the matrix's own strides,
    // and a dot product: long enough for the matrix-vector kernel (at least 16 terms), with
    // remainders after the eight-term groups, in f64 and f32. (Shorter products stay with
    // gemm, whose result for a matrix-vector product may depend on the strides it is given.)
    for (m, k) in [(37, 43), (128, 128), (19, 16)] {
        for dtype in [DType::F64, DType::F32] {
            let args = (
                Tensor::random_normal(11, &[m, k], dtype),
                Tensor::random_normal(12, &[k], dtype),
                Tensor::random_normal(13, &[m], dtype),
            );
            let f = |(a, x, y): (Tensor, Tensor, Tensor)| {
                (
                    (a.matmul(&x), y.matmul(&a)),
                    a.dot_general(&y, (&[0], &[0]), (&[], &[])),
                    x.dot_general(&a, (&[0], &[1]), (&[], &[])),
                    x.matmul(&x),
                )
            };
            let p = make_jaxpr(f, &args).unwrap();
            let arrays: Vec<Array> = [&args.0, &args.1, &args.2]
                .iter()
                .map(|t| t.array().unwrap())
                .collect();
            plan_equals_eval(&p, &arrays);
        }
    }
}
