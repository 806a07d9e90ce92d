//! Every rejection of the differentiation API: nonlinear and affine functions refused by
//! transposition with the primitive and the line, cotangents and tangents that do not match
//! their map, `grad` of a function that is not a float scalar, malformed counts given to the
//! program-level passes. Each error is checked for its variant, its message and its place.

use ferrax::*;

#[test]
fn transposing_a_nonlinear_function_names_the_primitive_and_line() {
    let line = line!() + 1;
    let square = |x: Tensor| &x * &x;
    let e = linear_transpose(square, &Tensor::scalar(1.0f64)).unwrap_err();
    assert!(
        matches!(e, Error::NotLinear { ref op, .. } if op == "mul"),
        "{e:?}"
    );
    assert_eq!(e.loc().unwrap().line, line);
    assert!(
        e.to_string()
            .starts_with("not linear: `mul` multiplies two linear values (at "),
        "{e}"
    );

    let line = line!() + 1;
    let wave = |x: Tensor| x.sin();
    let e = linear_transpose(wave, &Tensor::scalar(1.0f64)).unwrap_err();
    assert!(
        e.to_string().starts_with(
            "not linear: `sin` is not a linear primitive, but is applied to a linear value (at "
        ),
        "{e}"
    );
    assert_eq!(e.loc().unwrap().line, line);
}

#[test]
fn an_affine_function_is_rejected_not_silently_truncated() {
    let line = line!() + 1;
    let shift = |x: Tensor| &x + 1.0;
    let e = linear_transpose(shift, &Tensor::zeros(&[3], DType::F64)).unwrap_err();
    assert!(
        matches!(e, Error::NotLinear { ref op, .. } if op == "add"),
        "{e:?}"
    );
    assert!(e.to_string().starts_with(
        "not linear: `add` combines a linear value with a non-zero constant (the function is affine, not linear) (at "
    ), "{e}");
    assert_eq!(e.loc().unwrap().line, line);
    // a constant output is affine too
    let e =
        linear_transpose(|_x: Tensor| Tensor::scalar(2.0f64), &Tensor::scalar(0.0f64)).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("not linear: `output` 0 does not depend on the linear inputs"),
        "{e}"
    );
    // but adding zero, selecting with a fixed predicate, scaling by captured values are fine
    let s = Tensor::new(Array::from_slice(&[2.0f64, -1.0, 0.5]));
    let mask = s.greater(0.0);
    let ok = linear_transpose(
        |x: Tensor| Tensor::where_(&mask, &x * &s, 0.0) + 0.0,
        &Tensor::zeros(&[3], DType::F64),
    )
    .unwrap();
    let y: Tensor = ok.apply(&Tensor::ones(&[3], DType::F64)).unwrap();
    assert_eq!(y.to_vec::<f64>().unwrap(), vec![2.0, 0.0, 0.5]);
}

#[test]
fn wrong_cotangents_are_rejected() {
    let (_, f_vjp) = vjp(
        |x: Tensor| x.sin().sum(&[0]),
        &Tensor::zeros(&[2, 3], DType::F64),
    )
    .unwrap();
    let e = f_vjp
        .apply::<Tensor, Tensor>(&Tensor::zeros(&[2], DType::F64))
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("bad input to `LinearMap::apply`: cotangent 0 must be f64[3], got f64[2]"),
        "{e}"
    );
    let e = f_vjp
        .apply::<Tensor, Tensor>(&Tensor::zeros(&[3], DType::F32))
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("bad input to `LinearMap::apply`: cotangent 0 must be f64[3], got f32[3]"),
        "{e}"
    );
    let e = f_vjp
        .apply::<Vec<Tensor>, Tensor>(&vec![Tensor::zeros(&[3], DType::F64)])
        .unwrap_err();
    assert!(matches!(e, Error::Tree { .. }), "{e:?}");
}

#[test]
fn grad_needs_a_float_scalar() {
    let e = grad(|x: Tensor| x.sin(), &Tensor::zeros(&[2], DType::F64)).unwrap_err();
    assert!(
        e.to_string().starts_with(
            "shape error in `grad`: the function must return a float scalar, got f64[2]"
        ),
        "{e}"
    );
    let e = jacrev(
        |x: Tensor| x.astype(DType::F64),
        &Tensor::zeros(&[2], DType::I64),
    )
    .unwrap_err();
    assert!(matches!(e, Error::DType { .. }));
    let e = hessian(|x: Tensor| x.sin(), &Tensor::zeros(&[2], DType::F64)).unwrap_err();
    assert!(
        e.to_string()
            .contains("the function must return a float scalar"),
        "{e}"
    );
    let e = gauss_newton(|x: Tensor| x.argmax(0), &Tensor::zeros(&[2], DType::F64))
        .err()
        .unwrap();
    assert!(
        e.to_string()
            .contains("the residual function must return floats"),
        "{e}"
    );
}

#[test]
fn transpose_program_rejects_nonlinear_text() {
    let p = Program::parse("{ lambda ; t:f64[] . let u:f64[] = exp t in (u) }").unwrap();
    let e = transpose_program(&p, 0).unwrap_err();
    assert_eq!(
        e.to_string(),
        "not linear: `exp` is not a linear primitive, but is applied to a linear value \
         (at <program text>:1:26)"
    );
    let p = Program::parse("{ lambda ; r:f64[] t:f64[] . let u:f64[] = div r t in (u) }").unwrap();
    let e = transpose_program(&p, 1).unwrap_err();
    assert_eq!(
        e.to_string(),
        "not linear: `div` divides by a linear value (at <program text>:1:34)"
    );
    let e = transpose_program(&p, 3).unwrap_err();
    assert!(matches!(e, Error::Input { .. }));
}

#[test]
fn tangent_errors() {
    let f = |x: Tensor| x.sin();
    let e = jvp(
        f,
        &Tensor::zeros(&[3], DType::F64),
        &Tensor::zeros(&[2], DType::F64),
    )
    .unwrap_err();
    assert!(
        e.to_string().starts_with(
            "bad input to `jvp`: tangent 0 is f64[2] but its primal is f64[3]: they must match"
        ),
        "{e}"
    );
    assert!(e.loc().is_some_and(|l| l.file.ends_with("rejections.rs")));
    let e = jvp(
        f,
        &Tensor::zeros(&[3], DType::F64),
        &Tensor::zeros(&[3], DType::F32),
    )
    .unwrap_err();
    assert!(matches!(e, Error::Input { .. }));
    let e = jvp(
        |v: Vec<Tensor>| v[0].clone(),
        &vec![Tensor::scalar(1.0f64)],
        &vec![Tensor::scalar(1.0f64), Tensor::scalar(1.0f64)],
    )
    .unwrap_err();
    assert!(matches!(e, Error::Tree { .. }), "{e:?}");

    let (_, lin) = linearize(f, &Tensor::zeros(&[3], DType::F64)).unwrap();
    let e = lin
        .apply::<Tensor, Tensor>(&Tensor::zeros(&[4], DType::F64))
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("bad input to `LinearMap::apply`: tangent 0 must be f64[3], got f64[4]"),
        "{e}"
    );
    assert!(e.loc().is_some_and(|l| l.file.ends_with("rejections.rs")));
    let e = lin
        .apply::<(Tensor, Tensor), Tensor>(&(
            Tensor::zeros(&[3], DType::F64),
            Tensor::zeros(&[3], DType::F64),
        ))
        .unwrap_err();
    assert!(matches!(e, Error::Tree { .. }));
    let e = lin.apply_flat(&[]).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("bad input to `LinearMap::apply`: the map takes 1 tangent(s), 0 given"),
        "{e}"
    );
    assert!(e.loc().is_some_and(|l| l.file.ends_with("rejections.rs")));

    let e = jacfwd(
        |x: Tensor| x.astype(DType::F64),
        &Tensor::zeros(&[2], DType::I32),
    )
    .unwrap_err();
    assert!(matches!(e, Error::DType { .. }));
    assert!(e.to_string().starts_with(
        "dtype error in `jacfwd`: differentiates with respect to float inputs only, got i32[2]"
    ));

    // an error inside the differentiated function comes back with the user's line
    let line = line!() + 1;
    let bad = |x: Tensor| x.sum(&[3]);
    let zeros = Tensor::zeros(&[2], DType::F64);
    let e = jvp(bad, &zeros, &zeros).unwrap_err();
    assert_eq!(e.loc().unwrap().line, line);
}

#[test]
fn jvp_program_input_errors() {
    let p = make_jaxpr(|x: Tensor| x.sin(), &Tensor::zeros(&[2], DType::F64)).unwrap();
    let e = jvp_program(&p, &[true, true]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "bad input to `jvp_program`: 2 tangent flags for 1 inputs"
    );
    // partial_eval: counts beyond the jvp program's inputs or outputs are errors
    let j = jvp_program(&p, &[true]).unwrap();
    assert!(ferrax::partial_eval(&j, 1, 1).is_ok());
    let e = ferrax::partial_eval(&j, 3, 1).unwrap_err();
    assert_eq!(
        e.to_string(),
        "bad input to `partial_eval`: 3 primal input(s) and 1 primal output(s) asked of a \
         program with 2 input(s) and 2 output(s)"
    );
    assert!(ferrax::partial_eval(&j, 1, 3).is_err());
}

// ---- the benchmark case linearize_vs_jvp, at small size ----
