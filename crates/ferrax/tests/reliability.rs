//! Bad input to public entry points: every case here once panicked, aborted, hung or
//! answered wrongly (found by review and by fuzzing). Each test names the class it pins;
//! together they are the promise "an `Err` naming what was wrong, or the right value".

use ferrax::{
    gauss_newton, grad, jacfwd, jacrev, linear_transpose, linearize, make_jaxpr, transpose_program,
    value_and_grad, vjp, vmap, vmap_axes, vmap_program, where_, Array, Atom, Aval, DType, Error,
    Program, Scalar, Tensor, VmapAxes,
};

fn v(xs: &[f64]) -> Tensor {
    Tensor::new(Array::from_slice(xs))
}

// ---- 1. literal zeros in linear positions ----------------------------------------------

#[test]
fn a_zero_weight_decay_term_differentiates_to_the_other_terms_gradient() {
    let x = v(&[1.0, -2.0, 3.0]);
    let g = grad(|x: Tensor| x.powi(2).sum_all() + 0.0 * x.sum_all(), &x).unwrap();
    assert_eq!(g.to_vec::<f64>().unwrap(), vec![2.0, -4.0, 6.0]);
}

#[test]
fn multiplying_or_dividing_by_a_literal_zero_transposes() {
    let x = v(&[1.0, 2.0]);
    let g = grad(|x: Tensor| (&x * 0.0).sum_all(), &x).unwrap();
    assert_eq!(g.to_vec::<f64>().unwrap(), vec![0.0, 0.0]);
    // d/dx (x / 0) = 1/0 = inf, as JAX gives
    let g = grad(|x: Tensor| (&x / 0.0).sum_all(), &x).unwrap();
    assert_eq!(g.to_vec::<f64>().unwrap(), vec![f64::INFINITY; 2]);
    let zero = Tensor::scalar(0.0f64);
    let g = grad(|x: Tensor| (&x * &zero).sum_all(), &x).unwrap();
    assert_eq!(g.to_vec::<f64>().unwrap(), vec![0.0, 0.0]);
    let (_, f_vjp) = vjp(|x: Tensor| &x * 0.0, &x).unwrap();
    let ct: Tensor = f_vjp.apply(&v(&[1.0, 1.0])).unwrap();
    assert_eq!(ct.to_vec::<f64>().unwrap(), vec![0.0, 0.0]);
    let j = jacrev(|x: Tensor| &x * 0.0 + &x, &x).unwrap();
    assert_eq!(j.to_vec::<f64>().unwrap(), vec![1.0, 0.0, 0.0, 1.0]);
}

#[test]
fn a_linear_function_with_a_zero_term_transposes() {
    let t = linear_transpose(|x: Tensor| &x / 2.0 - 0.0 * &x, &v(&[0.0, 0.0])).unwrap();
    let y: Tensor = t.apply(&v(&[2.0, 4.0])).unwrap();
    assert_eq!(y.to_vec::<f64>().unwrap(), vec![1.0, 2.0]);
}

#[test]
fn gauss_newton_of_a_residual_that_does_not_depend_on_x_is_zero() {
    let x = v(&[1.0, 2.0]);
    let gn = gauss_newton(|x: Tensor| &x * 0.0 + 3.0, &x).unwrap();
    let p: Tensor = gn.apply(&v(&[1.0, 1.0])).unwrap();
    assert_eq!(p.to_vec::<f64>().unwrap(), vec![0.0, 0.0]);
}

#[test]
fn a_parsed_linear_program_with_a_zero_coefficient_transposes() {
    let p = Program::parse("{ lambda ; a:f64[] . let b:f64[] = mul a 0.0:f64 in (b) }").unwrap();
    let t = transpose_program(&p, 0).unwrap();
    let out = t.eval(&[Array::scalar(5.0f64)]).unwrap();
    assert_eq!(out[0].to_vec::<f64>().unwrap(), vec![0.0]);
    // a false predicate literal is a zero-kind operand too
    let p =
        Program::parse("{ lambda ; a:f64[] b:f64[] . let c:f64[] = select false:bool a b in (c) }")
            .unwrap();
    let t = transpose_program(&p, 0).unwrap();
    let out = t.eval(&[Array::scalar(5.0f64)]).unwrap();
    assert_eq!(out[0].to_vec::<f64>().unwrap(), vec![0.0]);
    assert_eq!(out[1].to_vec::<f64>().unwrap(), vec![5.0]);
}

// ---- 2. constants made inside the traced function -------------------------------------

#[test]
fn constants_made_inside_the_function_are_available_in_reverse_mode() {
    let x = v(&[1.0, 1.0, 1.0]);
    let g = grad(
        |x: Tensor| (&x * (Tensor::arange(3, DType::F64) + 0.0)).sum_all(),
        &x,
    )
    .unwrap();
    assert_eq!(g.to_vec::<f64>().unwrap(), vec![0.0, 1.0, 2.0]);
    let g = grad(
        |x: Tensor| where_(&Tensor::arange(3, DType::F64).greater(0.0), &x, 0.0).sum_all(),
        &x,
    )
    .unwrap();
    assert_eq!(g.to_vec::<f64>().unwrap(), vec![0.0, 1.0, 1.0]);
}

// ---- 3. size arithmetic -----------------------------------------------------------------

#[test]
fn avals_whose_element_count_overflows_are_rejected_by_the_parser() {
    for text in [
        "{ lambda ; a:f64[4294967296,4294967296] . let in (a) }",
        "{ lambda ; a:f64[18446744073709551615,2] . let in (a) }",
        "{ lambda ; a:f64[2305843009213693952] . let in (a) }",
    ] {
        let e = Program::parse(text).unwrap_err();
        assert!(matches!(e, Error::Parse { .. }), "{e}");
        assert!(e.to_string().contains("too large"), "{e}");
    }
}

#[test]
fn shape_rules_with_overflowing_parameters_are_errors() {
    for text in [
        "{ lambda ; a:f64[1] . let b:f64[1] = pad[low=(18446744073709551615,) high=(2,) interior=(0,)] a 0.0:f64 in (b) }",
        "{ lambda ; a:f64[3] . let b:f64[3,1] = pad[low=(0,) high=(0,) interior=(9223372036854775807,)] a 0.0:f64 in (b) }",
        "{ lambda ; a:f64[] . let b:f64[4294967296,4294967296] = broadcast_in_dim[shape=(4294967296,4294967296) broadcast_dimensions=()] a in (b) }",
        "{ lambda ; . let b:i64[4294967296,4294967296] = iota[dtype=i64 shape=(4294967296,4294967296) dimension=0] in (b) }",
        "{ lambda ; a:f64[0] . let b:f64[0] = reshape[new_sizes=(4294967296,4294967296,0)] a in (b) }",
    ] {
        let e = Program::parse(text).unwrap_err();
        assert!(matches!(e, Error::Parse { .. }), "{text}: {e}");
    }
    // an empty shape whose other dimensions multiply past the address space is refused too:
    // its strides would overflow
    let e = Program::parse(
        "{ lambda ; a:f64[0] . let b:f64[0,4294967296,4294967296] = reshape[new_sizes=(0,4294967296,4294967296)] a in (b) }",
    );
    assert!(e.is_err());
}

#[test]
fn hand_built_avals_with_overflowing_sizes_fail_check() {
    let p = Program {
        avals: vec![Aval::new(vec![1 << 32, 1 << 32], DType::F64)],
        consts: vec![],
        inputs: vec![ferrax::Var(0)],
        eqns: vec![],
        outputs: vec![ferrax::Atom::Var(ferrax::Var(0))],
    };
    assert!(p.check().is_err());
    assert_eq!(
        Aval::new(vec![1 << 32, 1 << 32], DType::F64).size(),
        usize::MAX
    );
}

#[test]
fn a_matrix_product_of_empty_operands_declared_huge_does_not_reach_gemm() {
    let text = "{ lambda ; a:f64[4294967296,4294967296,0] b:f64[0,3] . let c:f64[4294967296,4294967296,3] = dot_general[lhs_contracting=(2,) rhs_contracting=(0,) lhs_batch=() rhs_batch=()] a b in (c) }";
    assert!(Program::parse(text).is_err());
}

// ---- 4. allocations sized by user input ---------------------------------------------------

#[test]
fn huge_arrays_are_errors_not_aborts() {
    for r in [
        Array::zeros(&[1 << 40], DType::F64),
        Array::ones(&[1 << 40, 1 << 20], DType::F32),
        Array::full(&[1 << 45], 1.0, DType::I64),
        Array::iota(&[1 << 40], 0, DType::I64),
        Array::random_normal(0, &[1 << 40], DType::F64),
        Array::random_uniform(0, &[1 << 40], 0.0, 1.0, DType::F64),
    ] {
        let e = r.unwrap_err();
        assert!(e.to_string().contains("bytes"), "{e}");
    }
    let e = Tensor::zeros(&[1 << 40], DType::F64).aval().unwrap_err();
    assert!(e.to_string().contains("bytes"), "{e}");
    let e = Tensor::arange(1 << 41, DType::F64).aval().unwrap_err();
    assert!(e.to_string().contains("bytes"), "{e}");
    let e = Tensor::scalar(1.0f64)
        .broadcast_to(&[1 << 40])
        .aval()
        .unwrap_err();
    assert!(e.to_string().contains("bytes"), "{e}");
}

#[test]
fn evaluating_a_program_with_a_huge_intermediate_is_an_error() {
    let p = Program::parse("{ lambda ; a:f64[] . let b:f64[1099511627776] = broadcast_in_dim[shape=(1099511627776,) broadcast_dimensions=()] a in (b) }").unwrap();
    let e = p.eval(&[Array::scalar(1.0f64)]).unwrap_err();
    assert!(e.to_string().contains("broadcast_in_dim"), "{e}");
    assert!(e.to_string().contains("bytes"), "{e}");
    let e = ferrax::run_compiled(&p, vec![Array::scalar(1.0f64)]).unwrap_err();
    assert!(e.to_string().contains("bytes"), "{e}");
}

#[test]
fn vmap_with_a_huge_axis_size_is_an_error() {
    let r: ferrax::Result<Tensor> = vmap_axes(
        |x: Tensor| &x + 1.0,
        &Tensor::scalar(1.0f64),
        &VmapAxes::new().in_axes(&[None]).axis_size(1 << 40),
    );
    assert!(r.is_err());
    let p = Program::parse("{ lambda ; a:f64[2] . let b:f64[2] = sin a in (b) }").unwrap();
    assert!(vmap_program(&p, &[Some(0)], usize::MAX).is_err());
    assert!(vmap_program(&p, &[Some(0)], 1 << 62).is_err());
}

#[test]
fn jacobians_whose_basis_does_not_fit_are_errors() {
    // the identity basis of a 2^22-element input has 2^44 elements
    let x = Tensor::zeros(&[1 << 22], DType::F32);
    let e = jacfwd(|x: Tensor| x.sum_all(), &x).unwrap_err();
    assert!(e.to_string().contains("bytes"), "{e}");
}

// ---- 5. tracers sent to another thread ----------------------------------------------------

#[test]
fn a_tracer_leaked_to_another_thread_is_an_escaped_tracer() {
    let mut leaked = None;
    make_jaxpr(
        |x: Tensor| {
            leaked = Some(x.clone());
            x
        },
        &Tensor::scalar(1.0f64),
    )
    .unwrap();
    let x = leaked.unwrap();
    let (r1, r2) = std::thread::spawn(move || {
        let r1 = make_jaxpr(|y: Tensor| &y * &x, &Tensor::scalar(2.0f64));
        let r2 = grad(|y: Tensor| (&y * &x).sum_all(), &Tensor::scalar(2.0f64));
        (r1.map(|p| p.to_string()), r2.map(|_| ()))
    })
    .join()
    .unwrap();
    assert!(matches!(r1, Err(Error::EscapedTracer { .. })), "{r1:?}");
    assert!(matches!(r2, Err(Error::EscapedTracer { .. })), "{r2:?}");
}

// ---- 7. parser and printer ------------------------------------------------------------------

#[test]
fn an_equation_cannot_read_its_own_output() {
    let e = Program::parse("{ lambda ; a:f64[] . let b:f64[] = exp b in (b) }").unwrap_err();
    assert!(matches!(e, Error::Parse { .. }));
    assert!(e.to_string().contains("`b` is not defined"), "{e}");
}

#[test]
fn displaying_a_malformed_program_does_not_panic() {
    let p = Program {
        avals: vec![Aval::scalar(DType::F64)],
        consts: vec![],
        inputs: vec![ferrax::Var(0)],
        eqns: vec![ferrax::Equation {
            prim: ferrax::Primitive::Sin,
            inputs: vec![ferrax::Atom::Var(ferrax::Var(7))],
            outs: vec![ferrax::Var(9)],
            loc: None,
        }],
        outputs: vec![ferrax::Atom::Var(ferrax::Var(12))],
    };
    let s = p.to_string();
    assert!(s.contains("sin"), "{s}");
    assert!(p.check().is_err());
}

/// A chain of `n` equations, each reading the previous.
fn chain(n: usize) -> Program {
    make_jaxpr(
        |x: Tensor| {
            let mut y = x;
            for i in 0..n {
                y = if i % 2 == 0 { y.sin() } else { &y * 1.5 };
            }
            y.sum_all()
        },
        &v(&[0.5, 0.25]),
    )
    .unwrap()
}

#[test]
fn long_programs_print_parse_and_transform() {
    // A 32,000-equation chain goes through the text form and the transformations. (How the
    // time grows with the length is the benchmark's business, not a test's: timings on a
    // shared machine are noise. A quadratic pass over 32,000 equations would also make this
    // test take minutes instead of a fraction of a second.)
    let p = chain(32_000);
    let text = p.to_string();
    let q = Program::parse(&text).unwrap();
    assert_eq!(q.to_string(), text);
    let g = ferrax::grad_program(&q).unwrap();
    assert_eq!(g.inputs.len(), q.inputs.len());
    let o = ferrax::optimize(&q).unwrap();
    assert!(o.eqns.len() <= q.eqns.len());
}

// ---- 9. quiet wrong answers and weak errors ------------------------------------------------

#[test]
fn grad_with_respect_to_integers_is_an_error() {
    let x = Tensor::new(Array::from_slice(&[1i32, 2]));
    let e = grad(|x: Tensor| x.astype(DType::F64).sum_all(), &x).unwrap_err();
    assert!(matches!(e, Error::DType { .. }), "{e}");
    assert!(e.to_string().contains("i32"), "{e}");
    let e = value_and_grad(
        |(a, b): (Tensor, Tensor)| a.sum_all() + b.astype(DType::F64).sum_all(),
        &(v(&[1.0]), Tensor::new(Array::from_slice(&[1i64]))),
    )
    .unwrap_err();
    assert!(e.to_string().contains("leaf 1"), "{e}");
}

#[test]
fn a_swallowed_read_of_a_traced_value_poisons_the_trace() {
    let r = grad(
        |x: Tensor| {
            let _ = x.item(); // the error is ignored by the closure
            x.sum_all()
        },
        &Tensor::scalar(1.0f64),
    );
    assert!(matches!(r, Err(Error::TracedValue { .. })), "{r:?}");
}

#[test]
fn errors_of_vmap_jvp_and_linear_maps_carry_the_callers_line() {
    let e = vmap(|x: Tensor| x, &Tensor::scalar(1.0f64)).unwrap_err();
    assert!(
        e.loc().is_some_and(|l| l.file.ends_with("reliability.rs")),
        "{e}"
    );
    let e = vmap_axes(
        |(a, b): (Tensor, Tensor)| &a + &b,
        &(v(&[1.0, 2.0]), v(&[1.0, 2.0, 3.0])),
        &VmapAxes::new(),
    )
    .unwrap_err();
    assert!(
        e.loc().is_some_and(|l| l.file.ends_with("reliability.rs")),
        "{e}"
    );
    let e = ferrax::jvp(|x: Tensor| x, &v(&[1.0, 2.0]), &v(&[1.0])).unwrap_err();
    assert!(
        e.loc().is_some_and(|l| l.file.ends_with("reliability.rs")),
        "{e}"
    );
    let (_, lin) = linearize(|x: Tensor| x.sin(), &v(&[1.0, 2.0])).unwrap();
    let e = lin.apply::<Tensor, Tensor>(&v(&[1.0])).unwrap_err();
    assert!(
        e.loc().is_some_and(|l| l.file.ends_with("reliability.rs")),
        "{e}"
    );
}

#[test]
fn index_axis_out_of_range_names_itself() {
    let e = v(&[1.0, 2.0]).index_axis(0, 9).aval().unwrap_err();
    assert!(e.to_string().contains("index_axis"), "{e}");
    assert!(e.to_string().contains('9'), "{e}");
}

#[test]
fn the_derivative_of_abs_at_zero_is_one_as_in_jax() {
    let g = grad(|x: Tensor| x.abs().sum_all(), &v(&[0.0, -0.0, 2.0, -2.0])).unwrap();
    assert_eq!(g.to_vec::<f64>().unwrap(), vec![1.0, 1.0, 1.0, -1.0]);
}

// ---- 10. one NaN rule for max and min ---------------------------------------------------------

#[test]
fn max_and_min_return_the_same_nan_eagerly_and_compiled() {
    let neg_nan = f64::from_bits(0xfff8_0000_0000_1234);
    let n = 5000; // above the fusion threshold
    let mut xs = vec![1.0f64; n];
    xs[3] = neg_nan;
    let ys = vec![2.0f64; n];
    let (x, y) = (
        Array::from_vec(xs, &[n]).unwrap(),
        Array::from_vec(ys, &[n]).unwrap(),
    );
    for text in [
        "{ lambda ; a:f64[5000] b:f64[5000] . let c:f64[5000] = max a b in (c) }",
        "{ lambda ; a:f64[5000] b:f64[5000] . let c:f64[5000] = min b a in (c) }",
        "{ lambda ; a:f64[5000] b:f64[5000] . let c:f64[5000] = max a b d:f64[5000] = exp c in (d) }",
    ] {
        let p = Program::parse(text).unwrap();
        let eager = p.eval(&[x.clone(), y.clone()]).unwrap();
        let compiled = ferrax::run_compiled(&p, vec![x.clone(), y.clone()]).unwrap();
        let bits = |a: &Array| a.to_vec::<f64>().unwrap()[3].to_bits();
        assert_eq!(bits(&eager[0]), bits(&compiled[0]), "{text}");
        assert!(eager[0].same_values(&compiled[0]));
    }
    let p =
        Program::parse("{ lambda ; a:f64[5000] b:f64[5000] . let c:f64[5000] = max a b in (c) }")
            .unwrap();
    let out = p.eval(&[x, y]).unwrap();
    assert_eq!(
        out[0].to_vec::<f64>().unwrap()[3].to_bits(),
        neg_nan.to_bits()
    );
}

// ---- found while auditing the rest of the surface ---------------------------------------

#[test]
fn arithmetic_on_extreme_parameters_is_an_error_or_a_value() {
    // reshape sizes whose product overflows
    let e = v(&[1.0])
        .reshape(&[isize::MAX, isize::MAX, -1])
        .aval()
        .unwrap_err();
    assert!(matches!(e, Error::ResourceExhausted { .. }), "{e}");
    // uniform bounds whose width overflows the dtype
    assert!(Array::random_uniform(0, &[2], -1e300, 1e300, DType::F32).is_err());
    assert!(Array::random_uniform(0, &[2], -f64::MAX, f64::MAX, DType::F64).is_err());
    // x^i32::MIN differentiates (its exponent minus one does not fit in i32)
    let (_, d) = ferrax::jvp(|x: Tensor| x.powi(i32::MIN), &v(&[1.0]), &v(&[1.0])).unwrap();
    assert_eq!(d.to_vec::<f64>().unwrap(), vec![i32::MIN as f64]);
    // an interior padding of usize::MAX on a one-element dimension adds nothing, and transposes
    let p = Program::parse(
        "{ lambda ; a:f64[1] . let b:f64[1] = pad[low=(0,) high=(0,) interior=(18446744073709551615,)] a 0.0:f64 in (b) }",
    )
    .unwrap();
    let t = transpose_program(&p, 0).unwrap();
    assert_eq!(
        t.eval(&[Array::from_slice(&[3.0f64])]).unwrap()[0]
            .to_vec::<f64>()
            .unwrap(),
        vec![3.0]
    );
}

#[test]
fn a_negative_nan_literal_keeps_its_sign_through_print_and_parse() {
    let p = Program::parse("{ lambda ; a:f32[] . let b:f32[] = add a -nan:f32 in (b) }").unwrap();
    let text = p.to_string();
    assert!(text.contains("-nan:f32"), "{text}");
    let q = Program::parse(&text).unwrap();
    assert_eq!(q.to_string(), text);
    let Atom::Lit(Scalar::F32(v)) = q.eqns[0].inputs[1] else {
        panic!("a literal")
    };
    assert!(v.is_nan() && v.is_sign_negative());
}

#[test]
fn transposing_programs_of_integers_or_bools_gives_zero_cotangents() {
    // a bool value used twice: its "cotangents" would have to be added, and bools have none
    let p = Program::parse(
        "{ lambda ; a:bool[4] . let b:bool[1] = slice[start=(2,) limit=(3,) strides=(3,)] a in (b, b) }",
    )
    .unwrap();
    let t = transpose_program(&p, 0).unwrap();
    let out = t
        .eval(&[Array::from_slice(&[true]), Array::from_slice(&[true])])
        .unwrap();
    assert_eq!(out[0].to_vec::<bool>().unwrap(), vec![false; 4]);
}

#[test]
fn vmap_of_pad_with_a_batched_padding_value_selects_it() {
    // bool operands, and non-finite padding values, where `padded + mask * v` failed or gave
    // NaN
    let xs = Tensor::new(Array::from_vec(vec![true, false, true, false], &[2, 2]).unwrap());
    let vs = Tensor::new(Array::from_slice(&[false, true]));
    let out: Tensor = vmap(
        |(x, v): (Tensor, Tensor)| x.pad(&[1], &[0], &[0], v),
        &(xs, vs),
    )
    .unwrap();
    assert_eq!(
        out.to_vec::<bool>().unwrap(),
        vec![false, true, false, true, true, false]
    );
    let xs = Tensor::new(Array::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap());
    let vs = v(&[f64::INFINITY, -0.0]);
    let out: Tensor = vmap(
        |(x, v): (Tensor, Tensor)| x.pad(&[0], &[1], &[1], v),
        &(xs, vs),
    )
    .unwrap();
    let got = out.to_vec::<f64>().unwrap();
    assert_eq!(got[..4], [1.0, f64::INFINITY, 2.0, f64::INFINITY]);
    assert_eq!(got[4..7], [3.0, -0.0, 4.0]);
    assert!(got[5].is_sign_negative() && got[7].is_sign_negative());
}

#[test]
fn empty_arrays_with_huge_other_extents_evaluate_at_once() {
    // cumsum once looped over every index of the other dimensions of an empty array
    let p = Program::parse(
        "{ lambda ; a:f64[0,4294967296] . let b:f64[0,4294967296] = cumsum[axis=0 reverse=true] a in (b) }",
    )
    .unwrap();
    let x = Array::from_vec(Vec::<f64>::new(), &[0, 1 << 32]).unwrap();
    assert_eq!(p.eval(&[x]).unwrap()[0].size(), 0);
    // and a broadcast of an empty operand compiles without dividing by its size
    let p = Program::parse(
        "{ lambda ; a:f64[0] . let b:f64[0,3] = broadcast_in_dim[shape=(0,3) broadcast_dimensions=(0,)] a in (b) }",
    )
    .unwrap();
    let e = Array::from_vec(Vec::<f64>::new(), &[0]).unwrap();
    assert_eq!(
        ferrax::run_compiled(&p, vec![e]).unwrap()[0].shape(),
        &[0, 3]
    );
}

#[test]
fn optimization_keeps_the_sign_of_zero() {
    // reduce_sum over no axes is the identity, and `x + 0.0` is not rewritten to `x` (it
    // turns -0.0 into +0.0), so atan2 of the result gives the same angle either way
    for text in [
        "{ lambda ; a:f64[] b:f64[] . let c:f64[] = reduce_sum[axes=()] a d:f64[] = atan2 c b in (d) }",
        "{ lambda ; a:f64[] b:f64[] . let c:f64[] = add a 0.0:f64 d:f64[] = atan2 c b in (d) }",
    ] {
        let p = Program::parse(text).unwrap();
        let args = [Array::scalar(-0.0f64), Array::scalar(-1.0f64)];
        let eager = p.eval(&args).unwrap();
        let compiled = ferrax::run_compiled(&p, args.to_vec()).unwrap();
        assert!(eager[0].same_values(&compiled[0]), "{text}: {eager:?} vs {compiled:?}");
    }
}
