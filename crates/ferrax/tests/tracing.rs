//! Tracing: every surface operation computes the same values eagerly and traced-then-
//! evaluated (a property test over random inputs), nested tracing with closure conversion,
//! trees, weak typing of Rust numbers, and every user-error path of the tracer.

mod harness;

use ferrax::{make_jaxpr, stage, where_, Array, Aval, DType, Error, Program, Tensor};
use harness::{random_args, Domain};
use proptest::prelude::*;

type SurfaceFn = fn(&[Tensor]) -> Tensor;

/// An i32 index vector.
fn idx(v: &[i32]) -> Tensor {
    Tensor::from_vec(v.to_vec(), &[v.len()])
}

/// Every surface operation, with its operand shapes (f64) and input domain.
fn surface_ops() -> Vec<(&'static str, Vec<Vec<usize>>, Domain, SurfaceFn)> {
    use Domain::*;
    let m = vec![vec![2, 3]];
    let mm = vec![vec![2, 3], vec![2, 3]];
    let mv = vec![vec![2, 3], vec![3]];
    vec![
        ("neg_op", m.clone(), Real, |x| -&x[0]),
        ("neg", m.clone(), Real, |x| x[0].neg()),
        ("sin", m.clone(), Real, |x| x[0].sin()),
        ("cos", m.clone(), Real, |x| x[0].cos()),
        ("tan", m.clone(), Unit, |x| x[0].tan()),
        ("exp", m.clone(), Real, |x| x[0].exp()),
        ("log", m.clone(), Positive, |x| x[0].log()),
        ("log1p", m.clone(), Positive, |x| x[0].log1p()),
        ("expm1", m.clone(), Real, |x| x[0].expm1()),
        ("tanh", m.clone(), Real, |x| x[0].tanh()),
        ("logistic", m.clone(), Real, |x| x[0].logistic()),
        ("sqrt", m.clone(), Positive, |x| x[0].sqrt()),
        ("rsqrt", m.clone(), Positive, |x| x[0].rsqrt()),
        ("abs", m.clone(), Real, |x| x[0].abs()),
        ("sign", m.clone(), Real2, |x| x[0].sign()),
        ("floor", m.clone(), Real2, |x| x[0].floor()),
        ("ceil", m.clone(), Real2, |x| x[0].ceil()),
        ("round", m.clone(), Real2, |x| x[0].round()),
        ("erf", m.clone(), Real, |x| x[0].erf()),
        ("powi", m.clone(), Real, |x| x[0].powi(3)),
        ("powi_neg", m.clone(), Positive, |x| x[0].powi(-2)),
        ("astype", m.clone(), Real, |x| x[0].astype(DType::F32)),
        ("add", mm.clone(), Real, |x| &x[0] + &x[1]),
        ("sub_broadcast", mv.clone(), Real, |x| &x[0] - &x[1]),
        (
            "mul_broadcast_col",
            vec![vec![2, 3], vec![2, 1]],
            Real,
            |x| &x[0] * &x[1],
        ),
        ("div", mm.clone(), Positive, |x| &x[0] / &x[1]),
        ("scalar_left", m.clone(), Real, |x| 2.0 * &x[0] - 1.0),
        ("scalar_right_div", m.clone(), Positive, |x| {
            1.0 / &x[0] + &x[0] / 4.0
        }),
        ("int_scalar", m.clone(), Real, |x| &x[0] * 3 + 1i64),
        ("scalar_tensor", vec![vec![], vec![2, 3]], Real, |x| {
            &x[0] * &x[1]
        }),
        ("pow", mm.clone(), Positive, |x| x[0].pow(&x[1])),
        ("pow_scalar", m.clone(), Positive, |x| x[0].pow(0.5)),
        ("maximum", mv.clone(), Real, |x| x[0].maximum(&x[1])),
        ("minimum", m.clone(), Real, |x| x[0].minimum(0.0)),
        ("atan2", mm.clone(), Real, |x| x[0].atan2(&x[1])),
        ("equal", mm.clone(), Real2, |x| x[0].equal(&x[1])),
        ("not_equal", mm.clone(), Real2, |x| x[0].not_equal(&x[0])),
        ("less", mv.clone(), Real2, |x| x[0].less(&x[1])),
        ("less_equal", m.clone(), Real2, |x| x[0].less_equal(0.5)),
        ("greater", mm.clone(), Real2, |x| x[0].greater(&x[1])),
        ("greater_equal", mm.clone(), Real2, |x| {
            x[0].greater_equal(&x[1])
        }),
        ("where", mv.clone(), Real, |x| {
            where_(&x[0].greater(0.0), &x[0], &x[1])
        }),
        ("where_scalars", m.clone(), Real, |x| {
            Tensor::where_(&x[0].less(0.0), 0.0, 1.0)
        }),
        ("sum_0", m.clone(), Real, |x| x[0].sum(&[0])),
        ("sum_neg", m.clone(), Real, |x| x[0].sum(&[-1])),
        ("sum_all", m.clone(), Real, |x| x[0].sum_all()),
        ("mean", m.clone(), Real, |x| x[0].mean(&[1])),
        ("max", m.clone(), Real, |x| x[0].max(&[0, 1])),
        ("min", m.clone(), Real, |x| x[0].min(&[1])),
        ("argmax", m.clone(), Real, |x| x[0].argmax(-1)),
        ("cumsum", m.clone(), Real, |x| x[0].cumsum(0, false)),
        ("cumsum_rev", m.clone(), Real, |x| x[0].cumsum(1, true)),
        ("matmul", vec![vec![2, 3], vec![3, 4]], Real, |x| {
            x[0].matmul(&x[1])
        }),
        ("matvec", mv.clone(), Real, |x| x[0].matmul(&x[1])),
        ("vecmat", vec![vec![2], vec![2, 3]], Real, |x| {
            x[0].matmul(&x[1])
        }),
        ("dot", vec![vec![3], vec![3]], Real, |x| x[0].dot(&x[1])),
        (
            "batched_matmul",
            vec![vec![2, 2, 3], vec![3, 2]],
            Real,
            |x| x[0].matmul(&x[1].broadcast_to(&[1, 3, 2])),
        ),
        ("dot_general", vec![vec![2, 3], vec![4, 3]], Real, |x| {
            x[0].dot_general(&x[1], (&[1], &[1]), (&[], &[]))
        }),
        ("transpose", vec![vec![2, 3, 4]], Real, |x| {
            x[0].transpose(&[2, 0, 1])
        }),
        ("t", m.clone(), Real, |x| x[0].t()),
        ("reshape", m.clone(), Real, |x| x[0].reshape(&[-1])),
        ("reshape_infer", m.clone(), Real, |x| x[0].reshape(&[3, -1])),
        ("squeeze", vec![vec![2, 1, 3]], Real, |x| x[0].squeeze(&[1])),
        ("expand_dims", m.clone(), Real, |x| {
            x[0].expand_dims(&[0, -1])
        }),
        ("broadcast_to", vec![vec![3]], Real, |x| {
            x[0].broadcast_to(&[2, 3])
        }),
        ("slice", m.clone(), Real, |x| {
            x[0].slice(&[0, 0], &[2, 3], &[1, 2])
        }),
        ("slice_axis", m.clone(), Real, |x| x[0].slice_axis(-1, 1, 3)),
        ("index_axis", m.clone(), Real, |x| x[0].index_axis(0, 1)),
        ("pad", m.clone(), Real, |x| {
            x[0].pad(&[1, 0], &[0, 2], &[1, 1], -1.0)
        }),
        ("concatenate", vec![vec![2, 3], vec![1, 3]], Real, |x| {
            Tensor::concatenate(&[x[0].clone(), x[1].clone()], 0)
        }),
        ("rev", m.clone(), Real, |x| x[0].rev(&[0, 1])),
        ("iota", m.clone(), Real, |x| {
            &x[0] + Tensor::iota(&[2, 3], 1, DType::F64)
        }),
        ("arange", vec![vec![3]], Real, |x| {
            &x[0] * Tensor::arange(3, DType::F64)
        }),
        ("constant_capture", vec![vec![3]], Real, |x| {
            &x[0] * Tensor::new(Array::from_slice(&[1.0f64, -2.0, 0.5]))
        }),
        // issue 14: indexing, jax.numpy functions, linear algebra, random keys
        ("take", m.clone(), Real, |x| {
            x[0].take(&idx(&[2, -1, 0, 7]), 1)
        }),
        ("take_along_axis", m.clone(), Real, |x| {
            x[0].take_along_axis(&Tensor::from_vec(vec![2i32, 0], &[2, 1]), 1)
        }),
        ("at_set", m.clone(), Real, |x| {
            x[0].at(&idx(&[1, 1, 5])).set(2.5)
        }),
        ("at_add", mv.clone(), Real, |x| {
            x[0].at(&idx(&[0, -1])).add(&x[1])
        }),
        ("at_mul", m.clone(), Real, |x| {
            x[0].at_axis(&idx(&[2, 2]), 1).mul(-2.0)
        }),
        ("at_min_max", m.clone(), Real, |x| {
            x[0].at(&idx(&[0])).min(0.0).at(&idx(&[1])).max(0.5)
        }),
        ("at_get", m.clone(), Real, |x| x[0].at(&idx(&[9, -2])).get()),
        ("dynamic_slice", m.clone(), Real, |x| {
            x[0].dynamic_slice(&[Tensor::scalar(1i32), Tensor::scalar(-4i32)], &[1, 2])
        }),
        (
            "dynamic_update_slice",
            vec![vec![2, 3], vec![1, 2]],
            Real,
            |x| x[0].dynamic_update_slice(&x[1], &[Tensor::scalar(3i32), Tensor::scalar(1i32)]),
        ),
        ("s", m.clone(), Real, |x| {
            x[0].s(ferrax::s![..;-1, 1.., ferrax::NewAxis])
        }),
        ("asin_acos_atan", m.clone(), Unit, |x| {
            x[0].asin() + x[0].acos() * x[0].atan()
        }),
        ("asinh_atanh", m.clone(), Unit, |x| {
            x[0].asinh() - x[0].atanh()
        }),
        ("acosh", m.clone(), Positive, |x| (&x[0] + 1.0).acosh()),
        ("rem", mm.clone(), Positive, |x| &x[0] % &x[1]),
        ("logical", mm.clone(), Real2, |x| {
            x[0].greater(0.0)
                .logical_and(&x[1])
                .logical_or(&x[0].logical_not())
        }),
        ("prod", m.clone(), Real, |x| x[0].prod(&[1])),
        ("argmin", m.clone(), Real, |x| x[0].argmin(0)),
        ("sort", m.clone(), Real, |x| x[0].sort(-1)),
        ("cumprod_cummax", m.clone(), Real, |x| {
            x[0].cumprod(1, false) + x[0].cummax(1, true) - x[0].cummin(0, false)
        }),
        ("diagonal_trace", vec![vec![3, 3]], Real, |x| {
            x[0].diagonal(1, 0, 1).sum_all() + x[0].trace(0, 0, 1)
        }),
        ("tril_triu", vec![vec![3, 3]], Real, |x| {
            x[0].tril(0) - x[0].triu(1)
        }),
        ("norms", m.clone(), Real, |x| {
            x[0].norm(&[1]) + x[0].vector_norm(3.0, &[1])
        }),
        ("einsum", vec![vec![2, 3], vec![3, 3]], Real, |x| {
            Tensor::einsum("ij,jk,kk->i", &[&x[0], &x[1], &x[1]])
        }),
        ("cholesky_solve", vec![vec![3, 3], vec![3]], Dominant, |x| {
            x[0].cholesky().cho_solve(&x[1]) + x[0].solve(&x[1])
        }),
        ("inv_det", vec![vec![3, 3]], Dominant, |x| {
            x[0].inv() * x[0].det()
        }),
        ("qr_eigh_svd", vec![vec![3, 3]], Dominant, |x| {
            let (q, r) = x[0].qr();
            let (w, v) = x[0].eigh();
            let (u, s, vt) = x[0].svd();
            q.matmul(&r) + v * w + u.matmul(&vt) * s
        }),
        ("lstsq", vec![vec![3, 2], vec![3]], Dominant, |x| {
            x[0].lstsq(&x[1])
        }),
        ("random", m.clone(), Real, |x| {
            let k = ferrax::random::key(5);
            &x[0] + ferrax::random::normal(&k, &[2, 3], DType::F64)
        }),
        ("chain", mv.clone(), Real, |x| {
            let h = (x[0].matmul(&x[1].reshape(&[3, 1])) + 1.0).tanh();
            (h.sum_all() * 0.5).exp()
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: harness::cases(24), ..ProptestConfig::default() })]

    /// Eager evaluation and trace-then-evaluate agree bit for bit for every surface op.
    #[test]
    fn traced_equals_eager_for_every_surface_op(seed in any::<u64>()) {
        for (name, shapes, domain, f) in surface_ops() {
            let avals: Vec<Aval> = shapes.iter().map(|s| Aval::new(s.clone(), DType::F64)).collect();
            let args = random_args(&avals, seed, domain);
            let tensors: Vec<Tensor> = args.iter().cloned().map(Tensor::new).collect();
            let eager = f(&tensors).array().map_err(|e| TestCaseError::fail(format!("{name}: {e}")))?;
            let p = make_jaxpr(|xs: Vec<Tensor>| f(&xs), &tensors)
                .map_err(|e| TestCaseError::fail(format!("{name}: {e}")))?;
            p.check().unwrap();
            prop_assert_eq!(Program::parse(&p.to_string()).unwrap().to_string(), p.to_string());
            let traced = p.eval(&args).unwrap();
            prop_assert!(eager.same_values(&traced[0]), "{}: eager {:?} traced {:?}\n{}", name, eager, traced[0], p);
        }
    }
}

#[test]
fn surface_broadcasting_emits_broadcast_in_dim_and_literals() {
    let p = make_jaxpr(
        |(x, b): (Tensor, Tensor)| (&x * 2.0 + &b).sum(&[0]),
        &(
            Tensor::zeros(&[2, 3], DType::F32),
            Tensor::zeros(&[3], DType::F32),
        ),
    )
    .unwrap();
    assert_eq!(
        p.to_string(),
        "{ lambda ; a:f32[2,3] b:f32[3] . let
    c:f32[2,3] = broadcast_in_dim[shape=(2,3) broadcast_dimensions=()] 2.0:f32
    d:f32[2,3] = mul a c
    e:f32[2,3] = broadcast_in_dim[shape=(2,3) broadcast_dimensions=(1,)] b
    f:f32[2,3] = add d e
    g:f32[3] = reduce_sum[axes=(0,)] f
  in (g) }"
    );
}

// ---- trees ----

#[test]
fn trees_in_and_out() {
    let f = |(a, v): (Tensor, Vec<Tensor>)| -> (Tensor, [Tensor; 2]) {
        let s = &v[0] + &v[1];
        (&a * &s, [s.clone(), a.neg()])
    };
    let x = (
        Tensor::scalar(2.0f64),
        vec![Tensor::scalar(1.0f64), Tensor::scalar(3.0f64)],
    );
    let p = make_jaxpr(f, &x).unwrap();
    assert_eq!(p.inputs.len(), 3);
    assert_eq!(p.outputs.len(), 3);
    let (prod, [s, n]) = stage(f, &x).unwrap();
    assert_eq!(prod.item().unwrap(), 8.0);
    assert_eq!(s.item().unwrap(), 4.0);
    assert_eq!(n.item().unwrap(), -2.0);
}

#[test]
fn unflatten_checks_structure() {
    let (leaves, def) = ferrax::flatten(&(Tensor::scalar(1.0f64), Tensor::scalar(2.0f64)));
    let e = ferrax::unflatten::<Vec<Tensor>>(&def, leaves.clone()).unwrap_err();
    assert!(matches!(e, Error::Tree { .. }));
    assert!(
        e.to_string()
            .starts_with("tree structure mismatch in `unflatten`: expected a vec"),
        "{e}"
    );
    let e = ferrax::unflatten::<(Tensor, Tensor)>(&def, leaves[..1].to_vec()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "tree structure mismatch in `unflatten`: the structure has 2 leaves, 1 given"
    );
    let e = ferrax::unflatten::<[Tensor; 3]>(
        &ferrax::flatten(&vec![Tensor::scalar(1i32); 2]).1,
        leaves,
    )
    .unwrap_err();
    assert!(e.to_string().contains("expected a array of 3"), "{e}");
}

// ---- nested tracing and closure conversion ----

#[test]
fn inner_trace_captures_outer_values_as_extra_inputs() {
    let outer = make_jaxpr(
        |(x, y): (Tensor, Tensor)| {
            // Inside the outer trace, make_jaxpr of a closure that uses y (outer tracer).
            let inner = make_jaxpr(|z: Tensor| &z * &y + 1.0, &x).unwrap();
            assert_eq!(inner.inputs.len(), 2, "z and the captured y");
            assert_eq!(
                inner.to_string(),
                "{ lambda ; a:f64[] b:f64[] . let\n    c:f64[] = mul a b\n    d:f64[] = add c 1.0:f64\n  in (d) }"
            );
            stage(|z: Tensor| &z * &y + 1.0, &x).unwrap()
        },
        &(Tensor::scalar(2.0f64), Tensor::scalar(5.0f64)),
    )
    .unwrap();
    let out = outer
        .eval(&[Array::scalar(2.0f64), Array::scalar(5.0f64)])
        .unwrap();
    assert_eq!(out[0].to_vec::<f64>().unwrap(), vec![11.0]);
    // The outer program holds the inlined inner equations, referring to its own variables.
    assert_eq!(
        outer.to_string(),
        "{ lambda ; a:f64[] b:f64[] . let\n    c:f64[] = mul a b\n    d:f64[] = add c 1.0:f64\n  in (d) }"
    );
}

#[test]
fn captures_lift_through_every_level() {
    // Three levels: the innermost closure uses a value of the outermost trace.
    let p = make_jaxpr(
        |x: Tensor| {
            let w = x.sin();
            stage(
                |y: Tensor| stage(|z: Tensor| &z * &w + &y, &y).unwrap(),
                &x.cos(),
            )
            .unwrap()
        },
        &Tensor::scalar(0.3f64),
    )
    .unwrap();
    p.check().unwrap();
    let v = p.eval(&[Array::scalar(0.3f64)]).unwrap()[0]
        .item()
        .unwrap()
        .to_f64();
    let want = 0.3f64.cos() * 0.3f64.sin() + 0.3f64.cos();
    assert_eq!(v, want);
    // eager, the same function computes the same number
    let w = Tensor::scalar(0.3f64).sin();
    let e = stage(
        |y: Tensor| stage(|z: Tensor| &z * &w + &y, &y).unwrap(),
        &Tensor::scalar(0.3f64).cos(),
    )
    .unwrap();
    assert_eq!(e.item().unwrap(), want);
}

#[test]
fn nested_trace_of_a_pure_function_needs_no_capture() {
    let p = make_jaxpr(
        |x: Tensor| {
            let inner = make_jaxpr(|z: Tensor| z.exp(), &x).unwrap();
            assert_eq!(inner.inputs.len(), 1);
            inner.call(&[x]).unwrap().remove(0)
        },
        &Tensor::scalar(1.0f64),
    )
    .unwrap();
    assert_eq!(
        p.to_string(),
        "{ lambda ; a:f64[] . let\n    b:f64[] = exp a\n  in (b) }"
    );
}

// ---- errors ----

#[test]
fn shape_mismatch_inside_a_trace_is_an_error_with_the_user_line() {
    let line = line!() + 2;
    let e = make_jaxpr(
        |(a, b): (Tensor, Tensor)| &a + &b,
        &(
            Tensor::zeros(&[2], DType::F64),
            Tensor::zeros(&[3], DType::F64),
        ),
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::Shape { ref op, .. } if op == "add"),
        "{e:?}"
    );
    let loc = e.loc().expect("a location");
    assert!(loc.file.ends_with("tracing.rs"), "{loc}");
    assert_eq!(loc.line, line);
    assert!(
        e.to_string().starts_with(
            "shape error in `add`: shapes [2] and [3] cannot be broadcast together (at "
        ),
        "{e}"
    );
}

#[test]
fn first_error_is_reported_even_if_the_failed_tensor_is_dropped() {
    let e = make_jaxpr(
        |x: Tensor| {
            let _unused = x.sum(&[5]); // bad axis, result dropped
            x.sin()
        },
        &Tensor::zeros(&[2], DType::F64),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string().split(" (at ").next().unwrap(),
        "axis error in `sum`: axis 5 is out of range for rank 1"
    );
    assert!(matches!(e, Error::Axis { .. }));
}

#[test]
fn dtype_errors_inside_a_trace() {
    let e = make_jaxpr(|x: Tensor| x.sin(), &Tensor::zeros(&[2], DType::I32)).unwrap_err();
    assert!(matches!(e, Error::DType { .. }));
    assert!(e
        .to_string()
        .starts_with("dtype error in `sin`: operand must be f32 or f64, got i32[2] (at "));
    let e = make_jaxpr(
        |(a, b): (Tensor, Tensor)| &a * &b,
        &(
            Tensor::zeros(&[2], DType::F32),
            Tensor::zeros(&[2], DType::F64),
        ),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("dtype error in `mul`: operands have different dtypes: f32[2] and f64[2]"),
        "{e}"
    );
}

#[test]
fn rust_numbers_take_the_tensor_dtype() {
    let x = Tensor::from_vec(vec![1.0f32, 2.0], &[2]);
    assert_eq!((&x * 2.5).dtype(), Some(DType::F32));
    assert_eq!((&x * 0.1).to_vec::<f32>().unwrap(), vec![0.1f32, 0.2f32]);
    let i = Tensor::from_vec(vec![1i32, 2], &[2]);
    assert_eq!((&i + 3).to_vec::<i32>().unwrap(), vec![4, 5]);
    assert_eq!(
        (&i * 2.0).to_vec::<i32>().unwrap(),
        vec![2, 4],
        "an integral float is exact"
    );
    let e = (&i + 2.5).array().unwrap_err();
    assert!(matches!(e, Error::DType { .. }));
    assert!(
        e.to_string().starts_with(
            "dtype error in `add`: the Rust number 2.5 has no exact value in dtype i32"
        ),
        "{e}"
    );
    let e = (&i + 5_000_000_000i64).array().unwrap_err();
    assert!(e.to_string().contains("does not fit in dtype i32"), "{e}");
    let b = Tensor::new(Array::from_slice(&[true, false]));
    let e = (&b + 1).array().unwrap_err();
    assert!(
        e.to_string()
            .contains("cannot be combined with a bool tensor"),
        "{e}"
    );
}

#[test]
fn reading_a_traced_value_is_an_error_naming_the_line() {
    let mut seen = None;
    let r = make_jaxpr(
        |x: Tensor| {
            seen = Some(x.item().unwrap_err());
            x
        },
        &Tensor::scalar(1.0f64),
    );
    let e = seen.unwrap();
    // the closure swallowed the error, but the trace was poisoned by the read
    assert_eq!(r.unwrap_err(), e);
    assert!(matches!(e, Error::TracedValue { .. }));
    assert!(
        e.to_string()
            .starts_with("cannot read the value of a traced tensor f64[] in `Tensor::array` (at "),
        "{e}"
    );
    assert!(e.to_string().contains("tracing.rs"));
    assert!(e
        .to_string()
        .contains("control flow on traced values must go through `select`"));
}

#[test]
fn escaped_tracers_are_errors() {
    let leaked = std::cell::RefCell::new(None);
    make_jaxpr(
        |x: Tensor| {
            *leaked.borrow_mut() = Some(x.clone());
            x
        },
        &Tensor::scalar(1.0f64),
    )
    .unwrap();
    let t = leaked.borrow().clone().unwrap();
    // used eagerly
    let e = t.sin().array().unwrap_err();
    assert!(matches!(e, Error::EscapedTracer { .. }), "{e:?}");
    assert!(e.to_string().starts_with(
        "a traced tensor f64[] escaped the transformation that traced it and was used in `sin`"
    ));
    // used in another trace
    let e = make_jaxpr(|y: Tensor| &y + &t, &Tensor::scalar(1.0f64)).unwrap_err();
    assert!(matches!(e, Error::EscapedTracer { .. }), "{e:?}");
    // returned from another trace
    let e = make_jaxpr(|_y: Tensor| t.clone(), &Tensor::scalar(1.0f64)).unwrap_err();
    assert!(matches!(e, Error::EscapedTracer { .. }), "{e:?}");
}

#[test]
fn a_panicking_closure_leaves_tracing_usable() {
    let r = std::panic::catch_unwind(|| {
        make_jaxpr(
            |_x: Tensor| -> Tensor { panic!("user panic") },
            &Tensor::scalar(1.0f64),
        )
    });
    assert!(r.is_err());
    assert!(!ferrax::is_tracing());
    let p = make_jaxpr(|x: Tensor| x.cos(), &Tensor::scalar(1.0f64)).unwrap();
    assert_eq!(p.eqns.len(), 1);
}

#[test]
fn eager_errors_carry_the_line_and_propagate() {
    let a = Tensor::zeros(&[2, 3], DType::F64);
    let line = line!() + 1;
    let bad = a.matmul(&a);
    let worse = bad.sin() + 1.0; // later operations pass the failure on
    let e = worse.array().unwrap_err();
    assert_eq!(e.loc().unwrap().line, line);
    assert!(e.to_string().starts_with("shape error in `dot_general`: lhs dimension 1 of f64[2,3] (size 3) does not match rhs dimension 0 of f64[2,3] (size 2)"), "{e}");
    assert!(worse.error().is_some());
    assert_eq!(worse.shape(), &[] as &[usize]);
}

#[test]
fn surface_errors_for_axes_reshape_broadcast_and_concatenate() {
    let x = Tensor::zeros(&[2, 3], DType::F64);
    let msg = |t: Tensor| t.array().unwrap_err().to_string();
    assert!(msg(x.sum(&[0, 0])).starts_with("axis error in `sum`: axes [0, 0] repeat an axis"));
    assert!(
        msg(x.sum(&[-3])).starts_with("axis error in `sum`: axis -3 is out of range for rank 2")
    );
    assert!(msg(x.reshape(&[4, -1]))
        .starts_with("shape error in `reshape`: cannot reshape [2, 3] (6 elements) to [4, -1]"));
    assert!(msg(x.reshape(&[-1, -1])).starts_with(
        "shape error in `reshape`: [-1, -1]: sizes must be non-negative, with at most one -1"
    ));
    assert!(msg(x.broadcast_to(&[3])).starts_with(
        "shape error in `broadcast_to`: cannot broadcast [2, 3] to the lower rank [3]"
    ));
    assert!(msg(x.broadcast_to(&[4, 3, 3])).starts_with("shape error in `broadcast_in_dim`: operand dimension 0 of f64[2,3] (size 2) cannot broadcast"));
    assert!(msg(Tensor::concatenate(&[], 0))
        .starts_with("shape error in `concatenate`: needs at least one tensor"));
    assert!(msg(x.transpose(&[0, 0]))
        .starts_with("axis error in `transpose`: [0, 0] is not a permutation"));
    assert!(msg(x.squeeze(&[0]))
        .starts_with("shape error in `squeeze`: dimension 0 of f64[2,3] has size 2, not 1"));
    assert!(msg(x.matmul(&Tensor::scalar(1.0f64)))
        .starts_with("shape error in `matmul`: operands must have at least one dimension"));
    assert!(msg(Tensor::zeros(&[2], DType::I32).mean(&[0]))
        .starts_with("dtype error in `mean`: needs a float tensor, got i32"));
    assert!(msg(Tensor::from_vec(vec![1.0f64], &[2])).starts_with(
        "shape error in `Array::from_vec`: 1 elements given for shape [2], which holds 2"
    ));
    assert!(msg(Tensor::random_normal(0, &[2], DType::I32))
        .starts_with("dtype error in `Array::random_normal`: needs a float dtype, got i32"));
}

#[test]
fn program_call_checks_its_inputs() {
    let p = make_jaxpr(|x: Tensor| x.sin(), &Tensor::zeros(&[2], DType::F64)).unwrap();
    let e = p.call(&[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "bad input to `Program::call`: the program takes 1 input(s), 0 given"
    );
    let e = p.call(&[Tensor::zeros(&[3], DType::F64)]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "bad input to `Program::call`: input 0 must be f64[2], got f64[3]"
    );
}

#[test]
fn arrays_constructors_and_access() {
    let a = Array::iota(&[2, 3], 0, DType::I64).unwrap();
    assert_eq!(a.to_vec::<i64>().unwrap(), vec![0, 0, 0, 1, 1, 1]);
    // a dimension beyond the rank is an axis error naming the operation and the shape
    let e = Array::iota(&[2, 3], 2, DType::I64).unwrap_err().to_string();
    assert!(e.contains("iota") && e.contains("[2, 3]"), "{e}");
    assert!(Array::iota(&[], 0, DType::F32).is_err());
    assert_eq!(a.get(&[1, 2]).unwrap(), ferrax::Scalar::I64(1));
    assert!(a.get(&[2, 0]).is_err());
    assert!(a
        .to_vec::<f64>()
        .unwrap_err()
        .to_string()
        .contains("asked for f64 elements of a i64 array"));
    let u = Array::random_uniform(3, &[1000], -1.0, 2.0, DType::F64).unwrap();
    let v = u.to_vec::<f64>().unwrap();
    assert!(v.iter().all(|&x| (-1.0..2.0).contains(&x)));
    assert_eq!(
        u,
        Array::random_uniform(3, &[1000], -1.0, 2.0, DType::F64).unwrap(),
        "seeded"
    );
    let n = Array::random_normal(4, &[20000], DType::F64)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    let mean = n.iter().sum::<f64>() / n.len() as f64;
    let var = n.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n.len() as f64;
    assert!(
        mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
        "mean {mean} var {var}"
    );
    assert!(Array::random_uniform(0, &[2], 1.0, 1.0, DType::F64).is_err());
    assert_eq!(
        Array::full(&[2], 7.9, DType::I32)
            .unwrap()
            .to_vec::<i32>()
            .unwrap(),
        vec![7, 7]
    );
    assert_eq!(
        Array::ones(&[2], DType::Bool)
            .unwrap()
            .to_vec::<bool>()
            .unwrap(),
        vec![true, true]
    );
    assert_eq!(
        Array::arange(3, DType::F32)
            .unwrap()
            .to_vec::<f32>()
            .unwrap(),
        vec![0.0, 1.0, 2.0]
    );
    assert!(Array::scalar(1.0f64).reshaped(&[1, 1]).is_ok());
    assert!(Array::scalar(1.0f64).reshaped(&[2]).is_err());
    assert_eq!(
        format!("{:?}", Array::from_slice(&[0.1f64, 2.0])),
        "Array(f64[2] [0.1, 2.0])"
    );
}
