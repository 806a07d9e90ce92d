//! Forward mode and linearize: jvp against Richardson-extrapolated central differences for
//! every op-table row and for random smooth programs (f64); linearize-then-apply equals jvp;
//! every linear program type-checks as linear; residual accounting; golden texts; nesting
//! (jvp of jvp, perturbation confusion, transformations capturing outer values); errors.

mod harness;

use ferrax::check_linear;
use ferrax::ResidualSource;
use ferrax::{
    eval_counts, jacfwd, jvp, jvp_program, linearize, linearize_program, make_jaxpr,
    reset_eval_counts, Array, DType, Error, Program, Tensor,
};
use harness::{
    agree, arb_smooth_program, eval_prim, perturb, random_args, richardson, richardson_converged,
    Column, Domain, Tally,
};
use proptest::prelude::*;

/// Evaluates a linearized program pair: primal on `primals`, then the linear program on the
/// residuals it names and `tangents`. Returns (outputs, output tangents).
fn run_split(p: &Program, primals: &[Array], tangents: &[Array]) -> (Vec<Array>, Vec<Array>) {
    let s = linearize_program(p).unwrap();
    check_linear(&s.linear, s.residuals.len())
        .unwrap_or_else(|e| panic!("{e}\nlinear program:\n{}", s.linear));
    let outs = s.primal.eval(primals).unwrap();
    let mut args: Vec<Array> = s
        .residuals
        .iter()
        .map(|r| match *r {
            ResidualSource::Input(i) => primals[i].clone(),
            ResidualSource::Output(k) => outs[k].clone(),
        })
        .collect();
    args.extend_from_slice(tangents);
    let touts = s.linear.eval(&args).unwrap();
    (outs[..s.n_outputs].to_vec(), touts)
}

/// jvp of a program through `jvp_program`, tangents for every input.
fn run_jvp(p: &Program, primals: &[Array], tangents: &[Array]) -> (Vec<Array>, Vec<Array>) {
    let j = jvp_program(p, &vec![true; p.inputs.len()]).unwrap();
    j.check().unwrap();
    let mut args = primals.to_vec();
    args.extend_from_slice(tangents);
    let mut outs = j.eval(&args).unwrap();
    let touts = outs.split_off(p.outputs.len());
    (outs, touts)
}

#[test]
fn every_row_jvp_matches_finite_differences_and_linearize_matches_jvp() {
    let mut tally = Tally::new(&[Column::Jvp, Column::Linearize]);
    for row in Column::Jvp.rows() {
        let prim = row.prim_for(DType::F64);
        let p = row.program(DType::F64);
        for seed in 0..4u64 {
            // static operands (a cond's index) take each listed value in turn
            let primals = row.args(&p.in_avals(), seed * 10, seed as usize);
            let tangents = random_args(&p.in_avals(), 1000 + seed * 10, Domain::Real);
            let (y, dy) = run_jvp(&p, &primals, &tangents);
            let refs: Vec<&Array> = primals.iter().collect();
            let want = eval_prim(&prim, &refs).unwrap();
            assert_eq!(y.len(), want.len(), "{}", row.name);
            assert_eq!(dy.len(), want.len(), "{}", row.name);
            for (k, (a, b)) in y.iter().zip(&want).enumerate() {
                assert!(a.same_values(b), "{} output {k}", row.name);
            }
            // f32 outputs round every difference quotient: a longer step and a looser
            // tolerance (the rows with f32 outputs are linear, so the step costs nothing).
            let fd_of = |k: usize, h: f64| {
                richardson(
                    &|eps| {
                        let xs: Vec<Array> = primals
                            .iter()
                            .zip(&tangents)
                            .map(|(x, t)| perturb(x, t, eps))
                            .collect();
                        let r: Vec<&Array> = xs.iter().collect();
                        eval_prim(&prim, &r).unwrap()[k].to_f64_vec()
                    },
                    h,
                )
            };
            for (k, (out, t)) in y.iter().zip(&dy).enumerate() {
                if matches!(prim, ferrax::Primitive::StopGradient) {
                    // its derivative is zero by definition, not its numerical one
                    assert!(
                        t.to_f64_vec().iter().all(|&v| v == 0.0),
                        "{}: a tangent through stop_gradient",
                        row.name
                    );
                } else if out.dtype().is_float() {
                    let f32_out = out.dtype() == DType::F32;
                    // a row whose values carry an iterative solver's rounding (eigh) says so
                    // with a looser known-value tolerance, which bounds the differences too
                    let (h, tol) = if f32_out {
                        (1e-2, 1e-5)
                    } else {
                        (1e-4, row.tol.1.max(1e-10))
                    };
                    let fd = fd_of(k, h);
                    let got = t.to_f64_vec();
                    assert!(
                        agree(&got, &fd, tol),
                        "{} seed {seed} output {k}: jvp {got:?} fd {fd:?}",
                        row.name
                    );
                } else {
                    assert!(
                        t.to_f64_vec().iter().all(|&v| v == 0.0),
                        "{} output {k}: non-float output",
                        row.name
                    );
                }
            }
            tally.checked(Column::Jvp, &row);
            // linearize with respect to the operands that are not static (all but a
            // while_linear's residuals), against jvp with respect to the same
            let (q, q_primals) = row.without_static_floats(&p, &primals);
            let (_, q_tangents) = row.without_static_floats(&p, &tangents);
            let (y, dy) = run_jvp(&q, &q_primals, &q_tangents);
            let (y2, dy2) = run_split(&q, &q_primals, &q_tangents);
            assert_eq!((y2.len(), dy2.len()), (y.len(), dy.len()), "{}", row.name);
            for (k, (a, b)) in y2.iter().zip(&y).enumerate() {
                assert!(a.same_values(b), "{} output {k}", row.name);
            }
            for (k, (a, b)) in dy2.iter().zip(&dy).enumerate() {
                assert!(
                    a.same_values(b),
                    "{} output {k}: linearize {a:?} jvp {b:?}",
                    row.name
                );
            }
            tally.checked(Column::Linearize, &row);
        }
    }
    tally.assert_every_claimed_row_checked();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: harness::cases(96), ..ProptestConfig::default() })]

    #[test]
    fn random_programs_jvp_matches_fd_and_linearize_equals_jvp(p in arb_smooth_program(10), seed in 0u64..10_000) {
        let primals = random_args(&p.in_avals(), seed, Domain::Real);
        let tangents = random_args(&p.in_avals(), seed + 100, Domain::Real);
        let (y, dy) = run_jvp(&p, &primals, &tangents);
        prop_assume!(y.iter().all(|a| a.to_f64_vec().iter().all(|v| v.is_finite())));
        for (k, out) in y.iter().enumerate() {
            prop_assert!(out.same_values(&p.eval(&primals).unwrap()[k]));
        }
        let fd = richardson_converged(&|eps| {
            let xs: Vec<Array> = primals.iter().zip(&tangents).map(|(x, t)| perturb(x, t, eps)).collect();
            p.eval(&xs).unwrap().iter().flat_map(|a| a.to_f64_vec()).collect()
        }, 1e-4, 1e-9);
        prop_assume!(fd.is_some());
        let fd = fd.unwrap();
        let got: Vec<f64> = dy.iter().flat_map(|a| a.to_f64_vec()).collect();
        prop_assert!(agree(&got, &fd, 1e-9), "jvp {:?}\nfd {:?}\n{}", got, fd, p);
        let (y2, dy2) = run_split(&p, &primals, &tangents);
        for (a, b) in y.iter().zip(&y2) {
            prop_assert!(a.same_values(b));
        }
        let got2: Vec<f64> = dy2.iter().flat_map(|a| a.to_f64_vec()).collect();
        prop_assert!(agree(&got2, &got, 1e-14), "linearize {:?} vs jvp {:?}\n{}", got2, got, p);
    }
}

#[test]
fn the_demonstration_numbers() {
    let f = |x: Tensor| -> Tensor { 3.0 * x.sin() + (&x / 2.0).cos() };
    let x = Tensor::scalar(2.0f64);
    let df = |x: f64| 3.0 * x.cos() - 0.5 * (x / 2.0).sin();
    let (y, d1) = jvp(f, &x, &Tensor::scalar(1.0f64)).unwrap();
    let (_, d3) = jvp(f, &x, &Tensor::scalar(3.0f64)).unwrap();
    assert_eq!(y.item().unwrap(), 3.0 * 2f64.sin() + 1f64.cos());
    assert!((d1.item().unwrap() - df(2.0)).abs() < 1e-15);
    assert!((d3.item().unwrap() - 3.0 * df(2.0)).abs() < 4e-15);
    let (y2, lin) = linearize(f, &x).unwrap();
    let l1: Tensor = lin.apply(&Tensor::scalar(1.0f64)).unwrap();
    let l3: Tensor = lin.apply(&Tensor::scalar(3.0f64)).unwrap();
    assert_eq!(y2.item().unwrap(), y.item().unwrap());
    assert_eq!(l1.item().unwrap(), d1.item().unwrap());
    assert_eq!(l3.item().unwrap(), d3.item().unwrap());
}

// ---- golden texts ----

#[test]
fn golden_jvp_and_linearize_programs() {
    let p = make_jaxpr(
        |x: Tensor| -> Tensor { 3.0 * x.sin() + (&x / 2.0).cos() },
        &Tensor::scalar(2.0f64),
    )
    .unwrap();
    assert_eq!(
        jvp_program(&p, &[true]).unwrap().to_string(),
        "{ lambda ; a:f64[] b:f64[] . let
    c:f64[] = sin a
    d:f64[] = cos a
    e:f64[] = mul b d
    f:f64[] = mul 3.0:f64 c
    g:f64[] = mul 3.0:f64 e
    h:f64[] = div a 2.0:f64
    i:f64[] = div b 2.0:f64
    j:f64[] = cos h
    k:f64[] = sin h
    l:f64[] = neg k
    m:f64[] = mul i l
    n:f64[] = add f j
    o:f64[] = add g m
  in (n, o) }"
    );
    let s = linearize_program(&p).unwrap();
    assert_eq!(
        s.primal.to_string(),
        "{ lambda ; a:f64[] . let
    b:f64[] = sin a
    c:f64[] = cos a
    d:f64[] = mul 3.0:f64 b
    e:f64[] = div a 2.0:f64
    f:f64[] = cos e
    g:f64[] = sin e
    h:f64[] = neg g
    i:f64[] = add d f
  in (i, c, h) }"
    );
    assert_eq!(
        s.linear.to_string(),
        "{ lambda ; a:f64[] b:f64[] c:f64[] . let
    d:f64[] = mul c a
    e:f64[] = mul 3.0:f64 d
    f:f64[] = div c 2.0:f64
    g:f64[] = mul f b
    h:f64[] = add e g
  in (h) }"
    );
    assert_eq!(
        s.residuals,
        vec![ResidualSource::Output(1), ResidualSource::Output(2)]
    );
}

#[test]
fn golden_linearize_of_a_layer_forwards_inputs_and_outputs() {
    // y = tanh(W x + b): W is needed by the linear map and is an input (forwarded); the
    // output y is needed (1 - y^2) but the map stores the coefficient, not y.
    let p = make_jaxpr(
        |(w, x, b): (Tensor, Tensor, Tensor)| (w.matmul(&x) + &b).tanh(),
        &(
            Tensor::zeros(&[2, 3], DType::F32),
            Tensor::zeros(&[3], DType::F32),
            Tensor::zeros(&[2], DType::F32),
        ),
    )
    .unwrap();
    let s = linearize_program(&p).unwrap();
    assert_eq!(
        s.linear.to_string(),
        "{ lambda ; a:f32[2,3] b:f32[3] c:f32[2] d:f32[2,3] e:f32[3] f:f32[2] . let
    g:f32[2] = dot_general[lhs_contracting=(1,) rhs_contracting=(0,) lhs_batch=() rhs_batch=()] d b
    h:f32[2] = dot_general[lhs_contracting=(1,) rhs_contracting=(0,) lhs_batch=() rhs_batch=()] a e
    i:f32[2] = add g h
    j:f32[2] = add i f
    k:f32[2] = mul j c
  in (k) }"
    );
    assert_eq!(
        s.residuals,
        vec![
            ResidualSource::Input(0),
            ResidualSource::Input(1),
            ResidualSource::Output(1)
        ]
    );
    check_linear(&s.linear, 3).unwrap();
}

// ---- residuals ----

fn tanh_chain(n: usize) -> impl Fn(Tensor) -> Tensor {
    move |x: Tensor| {
        let mut h = x;
        for _ in 0..n {
            h = h.tanh();
        }
        h
    }
}

#[test]
fn residuals_grow_linearly_with_depth_and_jvp_stores_none() {
    let x = Tensor::random_normal(1, &[16], DType::F64);
    for n in [1usize, 2, 5, 12] {
        let (_, lin) = linearize(tanh_chain(n), &x).unwrap();
        assert_eq!(lin.num_residuals(), n, "one coefficient per tanh layer");
        assert_eq!(lin.residual_bytes(), n * 16 * 8);
        assert_eq!(lin.num_forwarded(), 0);
        // the jvp program computes outputs and tangents together: nothing is kept for later
        let p = make_jaxpr(tanh_chain(n), &x).unwrap();
        let j = jvp_program(&p, &[true]).unwrap();
        assert_eq!(
            j.outputs.len(),
            2,
            "jvp returns (y, dy) and keeps no residuals"
        );
        assert_eq!(j.count_prim("tanh"), n);
    }
}

#[test]
fn applying_the_map_evaluates_no_nonlinear_primitive_and_reuses_residuals() {
    let f = |x: Tensor| (x.sin() * x.exp()).tanh().sum_all();
    let x = Tensor::random_normal(2, &[5], DType::F64);
    reset_eval_counts();
    let (_, lin) = linearize(f, &x).unwrap();
    let primal_counts = eval_counts();
    assert_eq!(primal_counts.get("sin"), Some(&1));
    assert_eq!(primal_counts.get("tanh"), Some(&1));
    let before: Vec<Array> = lin.residuals().iter().map(|r| r.array().unwrap()).collect();
    for seed in 0..3 {
        reset_eval_counts();
        let _: Tensor = lin
            .apply(&Tensor::random_normal(10 + seed, &[5], DType::F64))
            .unwrap();
        let counts = eval_counts();
        for name in counts.keys() {
            assert!(
                [
                    "mul",
                    "add",
                    "reduce_sum",
                    "broadcast_in_dim",
                    "neg",
                    "sub",
                    "div"
                ]
                .contains(name),
                "applying the map evaluated `{name}`: {counts:?}"
            );
        }
    }
    for name in ["sin", "cos", "exp", "tanh"] {
        assert_eq!(
            lin.program().count_prim(name),
            0,
            "{name} in the linear program"
        );
    }
    // the residuals are the very buffers computed once, not recomputed or copied
    for (r, b) in lin.residuals().iter().zip(&before) {
        assert!(r.array().unwrap().shares_buffer(b));
    }
}

#[test]
fn forwarded_inputs_are_shared_not_copied() {
    let w = Array::random_normal(3, &[4, 4], DType::F64).unwrap();
    let x = Tensor::random_normal(4, &[4], DType::F64);
    let (_, lin) = linearize(
        |(w, x): (Tensor, Tensor)| w.matmul(&x).sin(),
        &(Tensor::new(w.clone()), x),
    )
    .unwrap();
    assert!(lin.num_forwarded() >= 2);
    assert!(lin
        .residuals()
        .iter()
        .any(|r| r.array().unwrap().shares_buffer(&w)));
}

// ---- nesting ----

#[test]
fn perturbation_confusion_is_avoided() {
    // d/dx [x * (d/dy (x + y))(1)] = 1
    let f = |x: Tensor| {
        let inner = |y: Tensor| &x + &y;
        let (_, dy) = jvp(inner, &Tensor::scalar(1.0f64), &Tensor::scalar(1.0f64)).unwrap();
        &x * &dy
    };
    let (_, d) = jvp(f, &Tensor::scalar(1.0f64), &Tensor::scalar(1.0f64)).unwrap();
    assert_eq!(d.item().unwrap(), 1.0);
    // the same with the inner derivative taken at the outer x
    let g = |x: Tensor| {
        let (_, dy) = jvp(|y: Tensor| &x * &y, &x, &Tensor::scalar(1.0f64)).unwrap();
        dy // d/dy (x*y) at y = x is x
    };
    let (_, d) = jvp(g, &Tensor::scalar(3.0f64), &Tensor::scalar(1.0f64)).unwrap();
    assert_eq!(d.item().unwrap(), 1.0);
}

#[test]
fn second_and_third_derivatives_by_nested_jvp() {
    let d =
        |f: &dyn Fn(Tensor) -> Tensor, x: Tensor| jvp(f, &x, &Tensor::scalar(1.0f64)).unwrap().1;
    let x = 0.7f64;
    let f1 = |x: Tensor| d(&|z: Tensor| z.sin() * &z, x);
    let f2 = |x: Tensor| d(&f1, x);
    let f3 = |x: Tensor| d(&f2, x);
    let t = Tensor::scalar(x);
    // (x sin x)'' = 2 cos x - x sin x ; ''' = -3 sin x - x cos x
    assert!((f2(t.clone()).item().unwrap() - (2.0 * x.cos() - x * x.sin())).abs() < 1e-15);
    assert!((f3(t).item().unwrap() - (-3.0 * x.sin() - x * x.cos())).abs() < 1e-14);
}

#[test]
fn linearize_of_jvp_gives_second_derivatives() {
    let g = |x: Tensor| {
        jvp(|z: Tensor| z.exp() * z.cos(), &x, &Tensor::scalar(1.0f64))
            .unwrap()
            .1
    };
    let (_, lin) = linearize(g, &Tensor::scalar(0.3f64)).unwrap();
    let dd: Tensor = lin.apply(&Tensor::scalar(1.0f64)).unwrap();
    // (e^x cos x)'' = -2 e^x sin x
    assert!((dd.item().unwrap() - (-2.0 * 0.3f64.exp() * 0.3f64.sin())).abs() < 1e-15);
    check_linear(lin.program(), lin.num_residuals()).unwrap();
}

#[test]
fn linear_map_applied_inside_a_trace_records_only_linear_work() {
    let (_, lin) = linearize(
        |x: Tensor| x.sin(),
        &Tensor::random_normal(1, &[3], DType::F64),
    )
    .unwrap();
    let p = make_jaxpr(
        |t: Tensor| -> Tensor { lin.apply(&t).unwrap() },
        &Tensor::zeros(&[3], DType::F64),
    )
    .unwrap();
    assert_eq!(
        p.consts.len(),
        1,
        "the residual cos(x) is a constant of the traced program"
    );
    assert_eq!(
        p.to_string().lines().skip(1).collect::<Vec<_>>().join("\n"),
        "    c:f64[3] = mul b a\n  in (c) }"
    );
}

#[test]
fn linearize_inside_a_trace_and_capturing_outer_values() {
    // Inside make_jaxpr: linearize a closure that also uses the outer traced w.
    let p = make_jaxpr(
        |(x, w): (Tensor, Tensor)| {
            let (y, lin) = linearize(|z: Tensor| (&z * &w).sin(), &x).unwrap();
            let dy: Tensor = lin.apply(&Tensor::scalar(1.0f64)).unwrap();
            (y, dy)
        },
        &(Tensor::scalar(0.5f64), Tensor::scalar(2.0f64)),
    )
    .unwrap();
    let out = p
        .eval(&[Array::scalar(0.5f64), Array::scalar(2.0f64)])
        .unwrap();
    assert_eq!(out[0].item().unwrap().to_f64(), 1f64.sin());
    assert_eq!(out[1].item().unwrap().to_f64(), 2.0 * 1f64.cos());
    // outside the trace, a map whose residuals were traced there cannot be used
    let leaked = std::cell::RefCell::new(None);
    make_jaxpr(
        |x: Tensor| {
            let (y, lin) = linearize(|z: Tensor| z.sin(), &x).unwrap();
            *leaked.borrow_mut() = Some(lin);
            y
        },
        &Tensor::scalar(1.0f64),
    )
    .unwrap();
    let lin = leaked.borrow().clone().unwrap();
    let e = lin
        .apply::<Tensor, Tensor>(&Tensor::scalar(1.0f64))
        .unwrap_err();
    assert!(matches!(e, Error::EscapedTracer { .. }), "{e:?}");
}

// ---- jacfwd ----

#[test]
fn jacfwd_matches_the_analytic_jacobian() {
    let x = Tensor::new(Array::from_slice(&[0.5f64, -1.0, 2.0]));
    let j = jacfwd(|x: Tensor| x.sin() * x.sum_all(), &x).unwrap();
    assert_eq!(j.shape(), &[3, 3]);
    let xs = [0.5f64, -1.0, 2.0];
    let s: f64 = xs.iter().sum();
    let got = j.to_vec::<f64>().unwrap();
    for i in 0..3 {
        for k in 0..3 {
            let want = if i == k { xs[i].cos() * s } else { 0.0 } + xs[i].sin();
            assert!((got[i * 3 + k] - want).abs() < 1e-15, "({i},{k})");
        }
    }
}

#[test]
fn jacfwd_shapes_follow_outputs_then_inputs() {
    let x = Tensor::random_normal(5, &[2, 3], DType::F64);
    let w = Tensor::random_normal(6, &[4, 2], DType::F64);
    let j = jacfwd(|x: Tensor| w.matmul(&x), &x).unwrap();
    assert_eq!(j.shape(), &[4, 3, 2, 3]);
    // d(Wx)[a,b] / dx[c,d] = W[a,c] * (b == d)
    let (jv, wv) = (j.to_vec::<f64>().unwrap(), w.to_vec::<f64>().unwrap());
    for a in 0..4 {
        for b in 0..3 {
            for c in 0..2 {
                for d in 0..3 {
                    let want = if b == d { wv[a * 2 + c] } else { 0.0 };
                    assert_eq!(jv[((a * 3 + b) * 2 + c) * 3 + d], want);
                }
            }
        }
    }
    let s = jacfwd(|x: Tensor| x.sum_all(), &x).unwrap();
    assert_eq!(s.shape(), &[2, 3]);
    assert!(s.to_vec::<f64>().unwrap().iter().all(|&v| v == 1.0));
}

#[test]
fn hessian_by_jacfwd_of_jacfwd() {
    // f(x) = sum(x^3): Hessian diag(6x)
    let x = Tensor::new(Array::from_slice(&[1.0f64, -2.0]));
    let h = jacfwd(
        |x: Tensor| jacfwd(|z: Tensor| z.powi(3).sum_all(), &x).unwrap(),
        &x,
    )
    .unwrap();
    assert_eq!(h.to_vec::<f64>().unwrap(), vec![6.0, 0.0, 0.0, -12.0]);
}

// ---- integer inputs and outputs, errors ----

#[test]
fn integer_inputs_have_zero_tangents_and_integer_outputs_zero_tangents() {
    let f = |(x, n): (Tensor, Tensor)| (&x * n.astype(DType::F64), x.argmax(0));
    let x = Tensor::new(Array::from_slice(&[1.0f64, 3.0]));
    let n = Tensor::new(Array::from_slice(&[2i32, 5]));
    let t = (
        Tensor::new(Array::from_slice(&[1.0f64, 1.0])),
        Tensor::new(Array::from_slice(&[7i32, 7])),
    );
    let ((y, am), (dy, dam)) = jvp(f, &(x, n), &t).unwrap();
    assert_eq!(y.to_vec::<f64>().unwrap(), vec![2.0, 15.0]);
    assert_eq!(
        dy.to_vec::<f64>().unwrap(),
        vec![2.0, 5.0],
        "the i32 tangent is ignored"
    );
    assert_eq!(am.to_vec::<i64>().unwrap(), vec![1]);
    assert_eq!(dam.to_vec::<i64>().unwrap(), vec![0]);
}

#[test]
fn linearize_vs_jvp_benchmark_shape_small() {
    // chain of L layers x -> tanh(W_i x + b_i), width n, T tangents arriving one at a time:
    // (a) T jvp calls; (b) linearize once and T applications. Both give the same numbers.
    let (layers, n, t) = (4usize, 8usize, 3usize);
    let ws: Vec<Tensor> = (0..layers)
        .map(|i| {
            Tensor::random_normal(100 + i as u64, &[n, n], DType::F32) * (1.0 / (n as f64).sqrt())
        })
        .collect();
    let bs: Vec<Tensor> = (0..layers)
        .map(|i| Tensor::random_normal(200 + i as u64, &[n], DType::F32))
        .collect();
    let f = |x: Tensor| {
        let mut h = x;
        for (w, b) in ws.iter().zip(&bs) {
            h = (w.matmul(&h) + b).tanh();
        }
        h
    };
    let x = Tensor::random_normal(1, &[n], DType::F32);
    let tangents: Vec<Tensor> = (0..t)
        .map(|k| Tensor::random_normal(10 + k as u64, &[n], DType::F32))
        .collect();
    let (y, lin) = linearize(f, &x).unwrap();
    // The weights are captured arrays: constants of the linear program, not residuals.
    assert_eq!(
        lin.num_residuals(),
        layers,
        "one tanh coefficient per layer"
    );
    assert_eq!(lin.program().consts.len(), layers);
    assert_eq!(lin.num_forwarded(), 0);
    for tk in &tangents {
        let (ya, da) = jvp(f, &x, tk).unwrap();
        let db: Tensor = lin.apply(tk).unwrap();
        assert!(ya.array().unwrap().same_values(&y.array().unwrap()));
        let (va, vb) = (da.to_vec::<f32>().unwrap(), db.to_vec::<f32>().unwrap());
        for (a, b) in va.iter().zip(&vb) {
            assert!((a - b).abs() <= 1e-6 * a.abs().max(1.0), "{a} vs {b}");
        }
    }
}
