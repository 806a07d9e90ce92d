//! Custom derivative rules (`custom_jvp`, `custom_vjp`, `custom_vjp_linear`): the rule is
//! what every derivative uses, the function is what evaluation runs, and both survive vmap,
//! jit, the text form and nesting. The classic cases: a numerically safe `log1pexp`, a
//! clipped gradient, an implicit-function rule for a fixed point found with `while_loop`.
//! Bad rules are errors naming the function, the avals and the line.

mod common;

use common::{close, t, vals};
use ferrax::{
    custom_jvp, custom_vjp, custom_vjp_linear, fori_loop, grad, grad_fn, hessian, hessian_fn,
    jacfwd, jacrev, jacrev_fn, jit, jvp, linearize, make_jaxpr, vjp, vmap, vmap_fn, while_loop,
    Array, Program, Tensor,
};

/// log(1 + eˣ) with the stable derivative, the logistic function.
fn log1pexp(x: Tensor) -> Tensor {
    let f = custom_jvp(
        |x: Tensor| x.exp().log1p(),
        |x: Tensor, t: Tensor| (x.exp().log1p(), t * x.logistic()),
    );
    f(x)
}

#[test]
fn safe_log1pexp_has_a_finite_gradient_where_the_naive_one_is_nan() {
    let x = t(&[-3.0, 0.0, 10.0, 800.0], &[4]);
    let naive = grad(|x: Tensor| x.exp().log1p().sum_all(), &x).unwrap();
    assert!(vals(&naive)[3].is_nan(), "exp overflows: inf / inf");
    let g = grad(|x: Tensor| log1pexp(x).sum_all(), &x).unwrap();
    let want: Vec<f64> = [-3.0f64, 0.0, 10.0, 800.0]
        .iter()
        .map(|x| 1.0 / (1.0 + (-x).exp()))
        .collect();
    assert!(close(&vals(&g), &want, 1e-15), "{:?}", vals(&g));
    // the value is the function's
    let y = log1pexp(t(&[0.0], &[1]));
    assert_eq!(vals(&y), vec![2f64.ln()]);
    // second order differentiates the rule: d/dx logistic = s (1 - s)
    let h = hessian(|x: Tensor| log1pexp(x).sum_all(), &t(&[0.5, -1.0], &[2])).unwrap();
    let s = |x: f64| 1.0 / (1.0 + (-x).exp());
    let d2 = |x: f64| s(x) * (1.0 - s(x));
    assert!(close(&vals(&h), &[d2(0.5), 0.0, 0.0, d2(-1.0)], 1e-14));
}

/// sin, with a rule that is deliberately not its derivative (3 cos), so every form that
/// uses the rule can be told from one that differentiates the function.
fn odd_sin(x: Tensor) -> Tensor {
    custom_jvp(
        |x: Tensor| x.sin(),
        |x: Tensor, t: Tensor| (x.sin(), t * x.cos() * 3.0),
    )(x)
}

#[test]
fn every_derivative_uses_the_custom_jvp_rule() {
    let x = t(&[0.3, -1.2, 2.0], &[3]);
    let want: Vec<f64> = [0.3f64, -1.2, 2.0].iter().map(|x| 3.0 * x.cos()).collect();
    let diag = |m: &Tensor| {
        let v = vals(m);
        vec![v[0], v[4], v[8]]
    };
    let (y, ty) = jvp(odd_sin, &x, &t(&[1.0, 1.0, 1.0], &[3])).unwrap();
    assert_eq!(vals(&y), vals(&x.sin()));
    assert!(close(&vals(&ty), &want, 1e-15));
    let (_, lin) = linearize(odd_sin, &x).unwrap();
    let lt: Tensor = lin.apply(&t(&[1.0, 1.0, 1.0], &[3])).unwrap();
    assert_eq!(vals(&lt), vals(&ty));
    let (_, back) = vjp(odd_sin, &x).unwrap();
    let ct: Tensor = back.apply(&t(&[1.0, 1.0, 1.0], &[3])).unwrap();
    assert!(close(&vals(&ct), &want, 1e-15));
    let g = grad(|x: Tensor| odd_sin(x).sum_all(), &x).unwrap();
    assert!(close(&vals(&g), &want, 1e-15));
    assert!(close(&diag(&jacfwd(odd_sin, &x).unwrap()), &want, 1e-15));
    assert!(close(&diag(&jacrev(odd_sin, &x).unwrap()), &want, 1e-15));
    // second order: the derivative of 3 cos is -3 sin
    let h = hessian(|x: Tensor| odd_sin(x).sum_all(), &x).unwrap();
    let want2: Vec<f64> = [0.3f64, -1.2, 2.0].iter().map(|x| -3.0 * x.sin()).collect();
    assert!(close(&diag(&h), &want2, 1e-14));
    // and the function value forms agree with the value forms
    let h2 = hessian_fn(|x: Tensor| odd_sin(x).sum_all())(x.clone());
    assert_eq!(vals(&h2), vals(&h));
}

#[test]
fn custom_jvp_with_an_integer_argument_and_output() {
    // f(x, k) = (x^k, k): k has no tangent, the rule sees a zero for it
    let f = custom_jvp(
        |(x, k): (Tensor, Tensor)| (x.pow(k.astype(ferrax::DType::F64)), k),
        |(x, k): (Tensor, Tensor), (tx, tk): (Tensor, Tensor)| {
            assert_eq!(tk.dtype(), Some(ferrax::DType::I32));
            let kf = k.astype(ferrax::DType::F64);
            let y = x.pow(&kf);
            let dy = tx * &kf * x.pow(&(&kf - 1.0));
            ((y, k.clone()), (dy, tk))
        },
    );
    let x = t(&[2.0, 3.0], &[2]);
    let k = Tensor::new(Array::from_vec(vec![3i32, 2], &[2]).unwrap());
    let ((y, k_out), (ty, _)) = jvp(
        &f,
        &(x.clone(), k.clone()),
        &(
            t(&[1.0, 1.0], &[2]),
            Tensor::zeros(&[2], ferrax::DType::I32),
        ),
    )
    .unwrap();
    assert_eq!(vals(&y), vec![8.0, 9.0]);
    assert_eq!(vals(&k_out), vec![3.0, 2.0]);
    assert!(close(&vals(&ty), &[12.0, 6.0], 1e-15));
}

/// The identity with its gradient clipped to [-1, 1] (bwd is not linear).
fn clip_gradient(x: Tensor) -> Tensor {
    custom_vjp(
        |x: Tensor| x,
        |x: Tensor| (x, ()),
        |_: (), g: Tensor| g.clip(-1.0, 1.0),
    )(x)
}

#[test]
fn clipped_gradient_in_reverse_mode_and_the_function_in_forward_mode() {
    let x = t(&[0.5, -2.0, 3.0], &[3]);
    let loss = |x: Tensor| (clip_gradient(x) * t(&[0.5, -4.0, 7.0], &[3])).sum_all();
    let g = grad(loss, &x).unwrap();
    assert_eq!(vals(&g), vec![0.5, -1.0, 1.0]);
    // forward mode cannot use a nonlinear bwd: it differentiates the function (identity)
    let (_, tx) = jvp(clip_gradient, &x, &t(&[5.0, -5.0, 0.5], &[3])).unwrap();
    assert_eq!(vals(&tx), vec![5.0, -5.0, 0.5]);
    // per-example clipped gradients: vmap of grad equals the loop
    let per = |x: Tensor| (clip_gradient(x.clone()) * &x * 3.0).sum_all();
    let xs = t(&[0.1, 0.2, 0.5, -0.4, 1.0, 2.0], &[3, 2]);
    let batched = vmap_fn(grad_fn(per))(xs.clone());
    let mut looped = vec![];
    for i in 0..3 {
        let xi = xs.s(ferrax::s![i]);
        looped.extend(vals(&grad(per, &xi).unwrap()));
    }
    assert_eq!(vals(&batched), looped);
    // jit of the gradient equals the eager gradient
    let jg = jit(grad_fn(per));
    let xi = t(&[0.1, 2.0], &[2]);
    assert_eq!(vals(&jg.call(&xi).unwrap()), vals(&grad(per, &xi).unwrap()));
}

/// sin, its reverse rule reading cos x from the residuals; declared linear, so forward
/// mode transposes bwd.
fn rev_sin(x: Tensor) -> Tensor {
    custom_vjp_linear(
        |x: Tensor| x.sin(),
        |x: Tensor| (x.sin(), (x.cos(), x.clone())),
        |(c, _x): (Tensor, Tensor), g: Tensor| g * c * 2.0,
    )(x)
}

#[test]
fn custom_vjp_linear_runs_forward_by_transposing_bwd() {
    let x = t(&[0.3, -1.2, 2.0], &[3]);
    let want: Vec<f64> = [0.3f64, -1.2, 2.0].iter().map(|x| 2.0 * x.cos()).collect();
    let (_, tx) = jvp(rev_sin, &x, &t(&[1.0, 1.0, 1.0], &[3])).unwrap();
    assert!(
        close(&vals(&tx), &want, 1e-15),
        "the forward map is bwd transposed"
    );
    let g = grad(|x: Tensor| rev_sin(x).sum_all(), &x).unwrap();
    assert!(close(&vals(&g), &want, 1e-15));
    let jf = jacfwd(rev_sin, &x).unwrap();
    let jr = jacrev(rev_sin, &x).unwrap();
    assert_eq!(vals(&jf), vals(&jr));
    // the adjoint identity through the custom pair: <c, J t> = <J^T c, t>
    let (_, lin) = linearize(rev_sin, &x).unwrap();
    let (tv, cv) = (t(&[0.7, -0.2, 1.1], &[3]), t(&[-0.3, 0.9, 0.4], &[3]));
    let jt: Tensor = lin.apply(&tv).unwrap();
    let jtc: Tensor = lin.transpose().unwrap().apply(&cv).unwrap();
    let lhs: f64 = vals(&jt).iter().zip(vals(&cv)).map(|(a, b)| a * b).sum();
    let rhs: f64 = vals(&jtc).iter().zip(vals(&tv)).map(|(a, b)| a * b).sum();
    assert!((lhs - rhs).abs() <= 1e-15 * lhs.abs().max(1.0));
    // transposing twice gives the map back
    let back: Tensor = lin
        .transpose()
        .unwrap()
        .transpose()
        .unwrap()
        .apply(&tv)
        .unwrap();
    assert_eq!(vals(&back), vals(&jt));
}

#[test]
fn a_custom_vjp_function_differentiates_to_second_order() {
    // d/dx of bwd's 2 cos x is -2 sin x, whichever way the outer derivative runs
    let x = t(&[0.3, -1.2, 2.0], &[3]);
    let want: Vec<f64> = [0.3f64, -1.2, 2.0].iter().map(|x| -2.0 * x.sin()).collect();
    let diag = |m: &Tensor| {
        let v = vals(m);
        vec![v[0], v[4], v[8]]
    };
    let f = |x: Tensor| rev_sin(x).sum_all();
    let fwd_over_rev = hessian(f, &x).unwrap();
    assert!(close(&diag(&fwd_over_rev), &want, 1e-14));
    let rev_over_rev = jacrev_fn(grad_fn(f))(x.clone());
    assert!(close(&diag(&rev_over_rev), &want, 1e-14));
    // the same with a bwd that is not declared linear (reverse then forward over it)
    let nl = |x: Tensor| {
        custom_vjp(
            |x: Tensor| x.sin(),
            |x: Tensor| (x.sin(), x.cos()),
            |c: Tensor, g: Tensor| g * c * 2.0,
        )(x)
        .sum_all()
    };
    assert!(close(&diag(&hessian(nl, &x).unwrap()), &want, 1e-14));
    assert!(close(
        &diag(&jacrev_fn(grad_fn(nl))(x.clone())),
        &want,
        1e-14
    ));
    // forward over forward of the fallback: the function's own second derivative
    let d2 = jacfwd(|x: Tensor| jacfwd(|x: Tensor| nl(x), &x).unwrap(), &x).unwrap();
    let want_f: Vec<f64> = [0.3f64, -1.2, 2.0].iter().map(|x| -x.sin()).collect();
    assert!(close(&diag(&d2), &want_f, 1e-14));
}

/// The fixed point x = a cos x (elementwise, |a| < 1), found by iteration with
/// `while_loop`, with the implicit-function rule: the adjoint u solves
/// u = g + (∂x(a cos x))ᵀ u, also by iteration, and the gradient is (∂a(a cos x))ᵀ u.
fn fixed_point(a: Tensor) -> Tensor {
    let solve = |a: Tensor| {
        let x0 = &a * 0.0;
        let (x, _) = while_loop(
            |(x, prev): (Tensor, Tensor)| (&x - &prev).abs().max_all().greater(1e-15),
            |(x, _): (Tensor, Tensor)| (&a * x.cos(), x),
            &(x0.clone(), x0 + 1.0),
        )
        .unwrap();
        x
    };
    custom_vjp(
        solve,
        move |a: Tensor| {
            let x = solve(a.clone());
            (x.clone(), (x, a))
        },
        |(x, a): (Tensor, Tensor), g: Tensor| {
            let dgdx = -(&a * x.sin());
            let u0 = &g * 0.0;
            let (u, _) = while_loop(
                |(u, prev): (Tensor, Tensor)| (&u - &prev).abs().max_all().greater(1e-15),
                |(u, _): (Tensor, Tensor)| (&g + &dgdx * &u, u),
                &(u0.clone(), u0 + 1.0),
            )
            .unwrap();
            u * x.cos()
        },
    )(a)
}

#[test]
fn implicit_function_rule_for_a_fixed_point_found_with_while_loop() {
    let a = t(&[0.3, -0.5, 0.8], &[3]);
    let x = vals(&fixed_point(a.clone()));
    for (xi, ai) in x.iter().zip([0.3, -0.5, 0.8]) {
        assert!((xi - ai * xi.cos()).abs() < 1e-14);
    }
    let g = grad(|a: Tensor| fixed_point(a).sum_all(), &a).unwrap();
    // dx/da = cos x / (1 + a sin x)
    let want: Vec<f64> = x
        .iter()
        .zip([0.3, -0.5, 0.8])
        .map(|(x, a)| x.cos() / (1.0 + a * x.sin()))
        .collect();
    assert!(close(&vals(&g), &want, 1e-13), "{:?} {want:?}", vals(&g));
    // differentiating through the loop itself (ferrax's reverse mode of while) agrees
    let direct = grad(
        |a: Tensor| {
            let x0 = &a * 0.0;
            while_loop(
                |(x, prev): (Tensor, Tensor)| (&x - &prev).abs().max_all().greater(1e-15),
                |(x, _): (Tensor, Tensor)| (&a * x.cos(), x),
                &(x0.clone(), x0 + 1.0),
            )
            .unwrap()
            .0
            .sum_all()
        },
        &a,
    )
    .unwrap();
    assert!(close(&vals(&direct), &want, 1e-12));
}

#[test]
fn custom_rules_survive_vmap_jit_and_the_text_form() {
    let xs = t(&[0.1, 0.2, 0.5, -0.4, 1.0, 2.0], &[3, 2]);
    for f in [
        odd_sin as fn(Tensor) -> Tensor,
        rev_sin,
        clip_gradient,
        log1pexp,
    ] {
        let loss = move |x: Tensor| f(x).sum_all();
        // vmap of the gradient equals the loop
        let batched = vmap(grad_fn(loss), &xs).unwrap();
        let mut looped = vec![];
        for i in 0..3 {
            looped.extend(vals(&grad(loss, &xs.s(ferrax::s![i])).unwrap()));
        }
        assert_eq!(vals(&batched), looped);
        // jit of the gradient (compiled backend) equals the eager one
        let jg = jit(grad_fn(loss));
        assert_eq!(
            vals(&jg.call(&xs).unwrap()),
            vals(&grad(loss, &xs).unwrap())
        );
        // vmap of jvp (a batched custom primitive, differentiated)
        let tv = t(&[1.0, 0.5, -1.0, 2.0, 0.3, 0.7], &[3, 2]);
        let (_, bt) = jvp(|x: Tensor| vmap(f, &x).unwrap(), &xs, &tv).unwrap();
        let (_, dt) = jvp(f, &xs, &tv).unwrap();
        assert!(close(&vals(&bt), &vals(&dt), 1e-15));
        // the program prints, parses back to the same text, and computes the same
        let p = make_jaxpr(grad_fn(loss), &xs).unwrap();
        let text = p.to_string();
        let q = Program::parse(&text).unwrap();
        assert_eq!(q.to_string(), text);
        let x = xs.array().unwrap();
        assert_eq!(
            q.eval(std::slice::from_ref(&x)).unwrap()[0]
                .to_vec::<f64>()
                .unwrap(),
            p.eval(&[x]).unwrap()[0].to_vec::<f64>().unwrap()
        );
        // the primal program holds the custom primitive, which parses back too
        let primal = make_jaxpr(f, &xs).unwrap().to_string();
        assert!(primal.contains("custom_"), "{primal}");
        assert_eq!(Program::parse(&primal).unwrap().to_string(), primal);
    }
}

#[test]
fn a_rule_whose_output_disagrees_is_an_error_naming_the_function_avals_and_line() {
    let bad_shape = custom_jvp(
        |x: Tensor| x.sin(),
        |x: Tensor, t: Tensor| (x.sin(), t.sum_all()),
    );
    let line = line!() - 4;
    let e = grad(|x: Tensor| bad_shape(x).sum_all(), &t(&[1.0, 2.0], &[2]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("custom_jvp"), "{e}");
    assert!(
        e.contains("the rule's tangent has the avals (f64[]) where the function's are (f64[2])"),
        "{e}"
    );
    assert!(e.contains(&format!("custom_rules.rs:{line}")), "{e}");
    assert!(
        e.contains("a_rule_whose_output_disagrees"),
        "the function's name: {e}"
    );
    // a different tree
    let vec_rule = custom_jvp(
        |x: Vec<Tensor>| x.clone(),
        |x: Vec<Tensor>, t: Vec<Tensor>| (x.clone(), t[..1].to_vec()),
    );
    let e = jvp(
        &vec_rule,
        &vec![t(&[1.0], &[1]); 2],
        &vec![t(&[1.0], &[1]); 2],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("the rule's tangent has the structure"), "{e}");
    // a dtype
    let bad_dtype = custom_jvp(
        |x: Tensor| x.sin(),
        |x: Tensor, t: Tensor| (x.sin().astype(ferrax::DType::F32), t),
    );
    let e = jvp(&bad_dtype, &t(&[1.0], &[1]), &t(&[1.0], &[1]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("the rule's output has the avals (f32[1]) where the function's are (f64[1])"),
        "{e}"
    );
    // a primal output that reads the tangent (the fuzzer's find, as program text too)
    let reads_tangent = custom_jvp(
        |x: Tensor| x.sin(),
        |x: Tensor, t: Tensor| (x.sin() + &t, t),
    );
    let e = jvp(&reads_tangent, &t(&[1.0], &[1]), &t(&[1.0], &[1])).unwrap_err();
    assert!(e.to_string().contains("custom_jvp"), "{e}");
    assert!(
        e.to_string()
            .contains("the rule's primal output 0 depends on a tangent"),
        "{e}"
    );
    let text = "{ lambda ; a:f64[2] . let
    b:f64[2] = custom_jvp[body={ lambda ; a:f64[2] . let b:f64[2] = sin a in (b) }
      rule={ lambda ; a:f64[2] b:f64[2] . let c:f64[2] = add a b in (c, c) } n_args=1] a
  in (b) }";
    let e = Program::parse(text).unwrap_err().to_string();
    assert!(e.contains("depends on a tangent input"), "{e}");
    // ...while a rule computing both in one loop is fine: the value's carry never reads the
    // tangent's
    let looped = custom_jvp(
        |x: Tensor| x.sin(),
        |x: Tensor, t: Tensor| {
            let init = (x.sin(), &t * x.cos());
            fori_loop(
                0,
                2,
                |_, (y, dy): (Tensor, Tensor)| (y * 1.0, dy * 1.0),
                &init,
            )
            .unwrap()
        },
    );
    let (y, dy) = jvp(&looped, &t(&[0.5], &[1]), &t(&[2.0], &[1])).unwrap();
    assert_eq!(vals(&y), vec![0.5f64.sin()]);
    assert_eq!(vals(&dy), vec![2.0 * 0.5f64.cos()]);
    // custom_vjp: fwd's output and bwd's cotangent
    let bad_fwd = custom_vjp(
        |x: Tensor| x.sin(),
        |x: Tensor| (x.sum_all(), ()),
        |_: (), g: Tensor| g,
    );
    let e = grad(|x: Tensor| bad_fwd(x).sum_all(), &t(&[1.0, 2.0], &[2]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("custom_vjp") && e.contains("fwd's output has the avals (f64[])"),
        "{e}"
    );
    let bad_bwd = custom_vjp(
        |x: Tensor| x.sin(),
        |x: Tensor| (x.sin(), ()),
        |_: (), g: Tensor| g.sum_all(),
    );
    let e = grad(|x: Tensor| bad_bwd(x).sum_all(), &t(&[1.0, 2.0], &[2]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("bwd's cotangent has the avals (f64[]) where the function's are (f64[2])"),
        "{e}"
    );
}

#[test]
fn rules_that_are_not_linear_are_refused_not_silently_wrong() {
    // a custom_jvp rule quadratic in the tangent
    let quad = custom_jvp(
        |x: Tensor| x.sin(),
        |x: Tensor, t: Tensor| (x.sin(), &t * &t),
    );
    let e = jvp(&quad, &t(&[1.0], &[1]), &t(&[1.0], &[1]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("not linear in its tangents") && e.contains("mul"),
        "{e}"
    );
    // an affine rule (a constant added to the tangent)
    let affine = custom_jvp(
        |x: Tensor| x.sin(),
        |x: Tensor, t: Tensor| (x.sin(), t + x.cos()),
    );
    let e = jvp(&affine, &t(&[1.0], &[1]), &t(&[1.0], &[1]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not linear in its tangents"), "{e}");
    // a bwd declared linear that clips
    let clipped = custom_vjp_linear(
        |x: Tensor| x,
        |x: Tensor| (x, ()),
        |_: (), g: Tensor| g.clip(-1.0, 1.0),
    );
    let e = grad(|x: Tensor| clipped(x).sum_all(), &t(&[1.0], &[1]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("custom_vjp_linear") && e.contains("declared linear"),
        "{e}"
    );
}

#[test]
fn capturing_a_value_being_differentiated_is_an_error() {
    let x = t(&[0.5, 1.5], &[2]);
    let e = grad(
        |w: Tensor| {
            let scaled = custom_jvp(
                |x: Tensor| &x * &w,
                |x: Tensor, tx: Tensor| (&x * &w, tx * &w),
            );
            scaled(x.clone()).sum_all()
        },
        &x,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("captures a value that is being differentiated"),
        "{e}"
    );
    // a captured value that is not differentiated is a constant, and fine
    let w = t(&[2.0, 3.0], &[2]);
    let g = grad(
        |x: Tensor| {
            let scaled = custom_jvp(
                |x: Tensor| &x * &w,
                |x: Tensor, tx: Tensor| (&x * &w, tx * &w),
            );
            scaled(x).sum_all()
        },
        &x,
    )
    .unwrap();
    assert_eq!(vals(&g), vec![2.0, 3.0]);
}

#[test]
fn readme_custom_rules() {
    // the README's block, line for line (with its `?` as unwrap)
    let x = t(&[0.3, 50.0, -2.0], &[3]);
    let v = t(&[1.0, -1.0, 0.5], &[3]);
    let log1pexp = custom_jvp(
        |x: Tensor| x.exp().log1p(),
        |x: Tensor, t: Tensor| (x.exp().log1p(), t * x.logistic()),
    );
    let clip = custom_vjp(
        |x: Tensor| x,
        |x: Tensor| (x, ()),
        |_: (), g: Tensor| g.clip(-1.0, 1.0),
    );
    let sin = custom_vjp_linear(
        |x: Tensor| x.sin(),
        |x: Tensor| (x.sin(), x.cos()),
        |c: Tensor, g: Tensor| g * c,
    );
    let h = hessian(|x: Tensor| sin(x).sum_all(), &x).unwrap();
    let (_, tv) = jvp(&sin, &x, &v).unwrap();
    let xs = [0.3f64, 50.0, -2.0];
    let hd: Vec<f64> = (0..3).map(|i| vals(&h)[4 * i]).collect();
    assert!(close(&hd, &xs.map(|x| -x.sin()), 1e-14));
    let vs = [1.0, -1.0, 0.5];
    assert!(close(
        &vals(&tv),
        &[0, 1, 2].map(|i| vs[i] * xs[i].cos()),
        1e-15
    ));
    let g = grad(
        |x: Tensor| (log1pexp(x.clone()) + clip(x) * 3.0).sum_all(),
        &x,
    )
    .unwrap();
    let want = xs.map(|x| 1.0 / (1.0 + (-x).exp()) + 1.0);
    assert!(close(&vals(&g), &want, 1e-15));
}

/// A computation around a unary function (`sin`, with or without a custom rule).
type Case<'a> = dyn Fn(&dyn Fn(Tensor) -> Tensor, Tensor) -> Tensor + 'a;

/// The same computation with custom rules inside control flow and remat, against the same
/// written without: rules that are the true derivative change nothing.
#[test]
fn custom_rules_inside_scan_cond_while_and_checkpoint() {
    use ferrax::{checkpoint, cond, scan, RematPolicy};
    // sin with its true derivative, as a custom_jvp and as a custom_vjp (nonlinear-declared)
    let sin_jvp = |x: Tensor| {
        custom_jvp(
            |x: Tensor| x.sin(),
            |x: Tensor, t: Tensor| (x.sin(), t * x.cos()),
        )(x)
    };
    let sin_vjp = |x: Tensor| {
        custom_vjp(
            |x: Tensor| x.sin(),
            |x: Tensor| (x.sin(), x.cos()),
            |c: Tensor, g: Tensor| g * c,
        )(x)
    };
    let plain = |x: Tensor| x.sin();
    let x = t(&[0.4, -0.9, 1.3], &[3]);
    let w = t(&[0.5, 1.5, -0.25], &[3]);
    for s in [&sin_jvp as &dyn Fn(Tensor) -> Tensor, &sin_vjp] {
        let in_scan = |s: &dyn Fn(Tensor) -> Tensor, x: Tensor| {
            let (c, ys) = scan(
                |c: Tensor, wi: Tensor| {
                    let c = s(&c * &wi + 0.1);
                    (c.clone(), c.sum_all())
                },
                &x,
                &ferrax::Tensor::stack(&[w.clone(), w.clone() * 0.5], 0),
            )
            .unwrap();
            c.sum_all() + ys.sum_all()
        };
        let in_cond = |s: &dyn Fn(Tensor) -> Tensor, x: Tensor| {
            let p = x.sum_all().greater(0.0);
            cond(&p, |x: Tensor| s(x * 2.0), |x: Tensor| s(x) * 3.0, &x)
                .unwrap()
                .sum_all()
        };
        let in_while = |s: &dyn Fn(Tensor) -> Tensor, x: Tensor| {
            let (_, y) = while_loop(
                |(i, _): (Tensor, Tensor)| i.less(3),
                |(i, y): (Tensor, Tensor)| (i + 1, s(y * 1.1)),
                &(Tensor::scalar(0i32), x),
            )
            .unwrap();
            y.sum_all()
        };
        let in_remat = |s: &dyn Fn(Tensor) -> Tensor, x: Tensor| {
            checkpoint(|x: Tensor| s(s(x)), RematPolicy::Nothing, &x)
                .unwrap()
                .sum_all()
        };
        let cases: [&Case<'_>; 4] = [&in_scan, &in_cond, &in_while, &in_remat];
        for (k, case) in cases.iter().enumerate() {
            let g = grad(|x: Tensor| case(s, x), &x).unwrap();
            let want = grad(|x: Tensor| case(&plain, x), &x).unwrap();
            assert!(close(&vals(&g), &vals(&want), 1e-14), "case {k}: grad");
            let h = hessian(|x: Tensor| case(s, x), &x).unwrap();
            let want = hessian(|x: Tensor| case(&plain, x), &x).unwrap();
            assert!(close(&vals(&h), &vals(&want), 1e-12), "case {k}: hessian");
            let (_, tx) = jvp(|x: Tensor| case(s, x), &x, &w).unwrap();
            let (_, want) = jvp(|x: Tensor| case(&plain, x), &x, &w).unwrap();
            assert!(close(&vals(&tx), &vals(&want), 1e-14), "case {k}: jvp");
        }
    }
}

#[test]
fn jvp_with_aux_returns_the_aux_untouched() {
    let x = t(&[0.3, 1.2], &[2]);
    let (y, ty, aux) = ferrax::jvp_with_aux(
        |x: Tensor| (x.sin(), (x.cos(), Tensor::scalar(4i32))),
        &x,
        &t(&[1.0, 2.0], &[2]),
    )
    .unwrap();
    assert_eq!(vals(&y), vals(&x.sin()));
    assert!(close(
        &vals(&ty),
        &[0.3f64.cos(), 2.0 * 1.2f64.cos()],
        1e-15
    ));
    assert_eq!(vals(&aux.0), vals(&x.cos()));
    assert_eq!(vals(&aux.1), vec![4.0]);
}

fn named_sin(x: Tensor) -> Tensor {
    x.sin()
}

fn named_bad_rule(x: Tensor, t: Tensor) -> (Tensor, Tensor) {
    (x.sin(), t.sum_all())
}

#[test]
fn an_error_names_a_named_function_by_its_name() {
    let f = custom_jvp(named_sin, named_bad_rule);
    let e = jvp(&f, &t(&[1.0, 2.0], &[2]), &t(&[1.0, 1.0], &[2]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("`named_sin`:"), "{e}");
    assert!(!e.contains("(closure)"), "{e}");
}

#[test]
fn a_linear_function_with_custom_rules_transposes_through_its_body() {
    // transposition is not differentiation: a custom rule applied to a linear input is
    // transposed as its function (the rule deliberately wrong, so using it would show)
    let a = t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    let times_a = |x: Tensor| {
        custom_jvp(
            |x: Tensor| a.matmul(&x),
            |x: Tensor, tx: Tensor| (a.matmul(&x), a.matmul(&tx) * 7.0),
        )(x)
    };
    let at = ferrax::linear_transpose(times_a, &t(&[0.0; 3], &[3])).unwrap();
    let y: Tensor = at.apply(&t(&[1.0, 1.0], &[2])).unwrap();
    assert_eq!(vals(&y), vec![5.0, 7.0, 9.0]);
    let times_a_vjp = |x: Tensor| {
        custom_vjp(
            |x: Tensor| a.matmul(&x),
            |x: Tensor| (a.matmul(&x), ()),
            |_: (), g: Tensor| g * 100.0,
        )(x)
    };
    let at = ferrax::linear_transpose(times_a_vjp, &t(&[0.0; 3], &[3]));
    // the bwd's shape is wrong for a 2x3 map (f64[2] for f64[3]): an error, whatever the route
    assert!(at.is_err());
    let times_a_vjp = |x: Tensor| {
        custom_vjp(
            |x: Tensor| a.matmul(&x),
            |x: Tensor| (a.matmul(&x), ()),
            |_: (), g: Tensor| g.sum_all().broadcast_to(&[3]) * 100.0,
        )(x)
    };
    let at = ferrax::linear_transpose(times_a_vjp, &t(&[0.0; 3], &[3])).unwrap();
    let y: Tensor = at.apply(&t(&[1.0, 1.0], &[2])).unwrap();
    assert_eq!(
        vals(&y),
        vec![5.0, 7.0, 9.0],
        "the body's transpose, not bwd"
    );
}
