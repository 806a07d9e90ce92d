//! Control flow (`cond`, `switch`, `scan`, `fori_loop`): each against the same computation
//! written as a Rust loop or `if`, eagerly, traced, through the text form, and through every
//! transformation.

use ferrax::{
    cond, fori_loop, make_jaxpr, scan, scan_with, switch, Array, DType, Error, Program,
    ScanOptions, Tensor,
};

fn v(xs: &[f64]) -> Tensor {
    Tensor::new(Array::from_slice(xs))
}

/// An RNN step: h' = tanh(w h + u x + b).
fn rnn_step(w: &Tensor, u: &Tensor, b: &Tensor, h: &Tensor, x: &Tensor) -> Tensor {
    (w.matmul(h) + u.matmul(x) + b).tanh()
}

fn rnn_params() -> (Tensor, Tensor, Tensor, Tensor, Tensor) {
    let w = Tensor::random_normal(1, &[3, 3], DType::F64) * 0.5;
    let u = Tensor::random_normal(2, &[3, 2], DType::F64) * 0.5;
    let b = Tensor::random_normal(3, &[3], DType::F64) * 0.1;
    let h0 = Tensor::random_normal(4, &[3], DType::F64);
    let xs = Tensor::random_normal(5, &[7, 2], DType::F64);
    (w, u, b, h0, xs)
}

#[test]
fn scan_equals_the_loop_unrolled_in_rust() {
    let (w, u, b, h0, xs) = rnn_params();
    let (h, hs): (Tensor, Tensor) = scan(
        |h: Tensor, x: Tensor| {
            let h2 = rnn_step(&w, &u, &b, &h, &x);
            (h2.clone(), h2)
        },
        &h0,
        &xs,
    )
    .unwrap();
    let mut want = h0.clone();
    let mut rows = vec![];
    for t in 0..7 {
        want = rnn_step(&w, &u, &b, &want, &xs.index_axis(0, t));
        rows.push(want.to_vec::<f64>().unwrap());
    }
    assert_eq!(h.to_vec::<f64>().unwrap(), want.to_vec::<f64>().unwrap());
    assert_eq!(hs.shape(), &[7, 3]);
    assert_eq!(hs.to_vec::<f64>().unwrap(), rows.concat());
}

#[test]
fn reverse_scans_run_from_the_end_and_keep_ys_aligned_with_xs() {
    let xs = v(&[1.0, 2.0, 3.0, 4.0]);
    let (c, ys): (Tensor, Tensor) = scan_with(
        |c: Tensor, x: Tensor| {
            let c2 = &c * 10.0 + &x;
            (c2.clone(), c2)
        },
        &Tensor::scalar(0.0f64),
        &xs,
        &ScanOptions::new().reverse(true),
    )
    .unwrap();
    // from the end: 4, 43, 432, 4321; ys[i] belongs to xs[i]
    assert_eq!(c.item().unwrap(), 4321.0);
    assert_eq!(ys.to_vec::<f64>().unwrap(), vec![4321.0, 432.0, 43.0, 4.0]);
}

#[test]
fn unrolling_gives_the_same_results_in_both_directions() {
    let xs = Tensor::random_normal(9, &[11, 2], DType::F64);
    let body = |c: Tensor, x: Tensor| {
        let c2 = (&c * 0.9 + x.sum_all()).sin();
        (c2.clone(), (&x * &c2, c2))
    };
    for reverse in [false, true] {
        let plain: (Tensor, (Tensor, Tensor)) = scan_with(
            body,
            &Tensor::scalar(0.3f64),
            &xs,
            &ScanOptions::new().reverse(reverse),
        )
        .unwrap();
        for k in [2, 3, 4, 11, 50] {
            let un: (Tensor, (Tensor, Tensor)) = scan_with(
                body,
                &Tensor::scalar(0.3f64),
                &xs,
                &ScanOptions::new().reverse(reverse).unroll(k),
            )
            .unwrap();
            assert_eq!(un.0.item().unwrap(), plain.0.item().unwrap(), "k={k}");
            assert_eq!(
                un.1 .0.to_vec::<f64>().unwrap(),
                plain.1 .0.to_vec::<f64>().unwrap(),
                "k={k} reverse={reverse}"
            );
            assert_eq!(
                un.1 .1.to_vec::<f64>().unwrap(),
                plain.1 .1.to_vec::<f64>().unwrap()
            );
        }
    }
}

#[test]
fn a_traced_scan_is_one_equation_however_many_iterations() {
    let (w, u, b, h0, _) = rnn_params();
    for t in [3usize, 1000] {
        let xs = Tensor::random_normal(5, &[t, 2], DType::F64);
        let p = make_jaxpr(
            |(h0, xs): (Tensor, Tensor)| {
                scan(
                    |h: Tensor, x: Tensor| {
                        let h2 = rnn_step(&w, &u, &b, &h, &x);
                        (h2, ())
                    },
                    &h0,
                    &xs,
                )
                .map(|(h, ())| h)
                .unwrap_or_else(Tensor::from_error)
            },
            &(h0.clone(), xs),
        )
        .unwrap();
        assert_eq!(p.eqns.len(), 1, "{p}");
        assert_eq!(p.count_prim("scan"), 1);
    }
}

#[test]
fn cond_and_switch_run_only_the_chosen_branch() {
    for x in [-2.0f64, 3.0] {
        let y: Tensor = cond(
            &Tensor::scalar(x).greater(0.0),
            |x: Tensor| x.sqrt(),
            |x: Tensor| -x,
            &Tensor::scalar(x),
        )
        .unwrap();
        assert_eq!(y.item().unwrap(), if x > 0.0 { x.sqrt() } else { -x });
    }
    let f = |x: Tensor| &x * 10.0;
    let g = |x: Tensor| &x + 1.0;
    let h = |x: Tensor| x.sin();
    for (i, want) in [
        (-5i64, 20.0),
        (0, 20.0),
        (1, 3.0),
        (2, 2f64.sin()),
        (99, 2f64.sin()),
        (i64::MAX, 2f64.sin()),
    ] {
        let y: Tensor = switch(&Tensor::scalar(i), &[&f, &g, &h], &Tensor::scalar(2.0f64)).unwrap();
        assert_eq!(
            y.item().unwrap(),
            want,
            "index {i}: clamped to the branches"
        );
    }
}

#[test]
fn branches_capture_outer_traced_values() {
    // each branch uses a different value of the enclosing trace
    let p = make_jaxpr(
        |(x, a, b): (Tensor, Tensor, Tensor)| {
            cond(
                &x.greater(0.0),
                |x: Tensor| &x * &a,
                |x: Tensor| &x + &b,
                &x,
            )
            .unwrap_or_else(Tensor::from_error)
        },
        &(
            Tensor::scalar(1.0f64),
            Tensor::scalar(2.0f64),
            Tensor::scalar(3.0f64),
        ),
    )
    .unwrap();
    for (x, want) in [(1.5, 3.0), (-1.0, 2.0)] {
        let out = p
            .eval(&[
                Array::scalar(x),
                Array::scalar(2.0f64),
                Array::scalar(3.0f64),
            ])
            .unwrap();
        assert_eq!(out[0].item().unwrap().to_f64(), want);
    }
}

#[test]
fn fori_loop_equals_the_rust_loop() {
    let x = Tensor::scalar(0.5f64);
    let y: Tensor = fori_loop(
        2,
        9,
        |i: Tensor, c: Tensor| (&c * &i.astype(DType::F64)).cos(),
        &x,
    )
    .unwrap();
    let mut want = 0.5f64;
    for i in 2..9 {
        want = (want * i as f64).cos();
    }
    assert_eq!(y.item().unwrap(), want);
    // an empty range leaves the carry as it is
    let z: Tensor = fori_loop(5, 5, |_i: Tensor, c: Tensor| &c + 1.0, &x).unwrap();
    assert_eq!(z.item().unwrap(), 0.5);
}

#[test]
fn control_flow_prints_and_parses_back() {
    let (w, u, b, h0, xs) = rnn_params();
    let p = make_jaxpr(
        |(h0, xs): (Tensor, Tensor)| {
            let (h, hs) = scan(
                |h: Tensor, x: Tensor| {
                    let h2 = rnn_step(&w, &u, &b, &h, &x);
                    let y = cond(
                        &h2.sum_all().greater(0.0),
                        |t: Tensor| t.exp(),
                        |t: Tensor| -t,
                        &h2,
                    )
                    .unwrap_or_else(Tensor::from_error);
                    (h2, y)
                },
                &h0,
                &xs,
            )
            .unwrap_or_else(|e| (Tensor::from_error(e.clone()), Tensor::from_error(e)));
            (h, hs)
        },
        &(h0.clone(), xs.clone()),
    )
    .unwrap();
    let text = p.to_string();
    assert!(text.contains("scan[body={ lambda"), "{text}");
    assert!(text.contains("cond[branches=({ lambda"), "{text}");
    let q = Program::parse(&text).unwrap();
    assert_eq!(q.to_string(), text);
    let args = [h0.array().unwrap(), xs.array().unwrap()];
    let a = p.eval(&args).unwrap();
    let b2 = q.eval(&args).unwrap();
    assert!(a[0].same_values(&b2[0]) && a[1].same_values(&b2[1]));
}

#[test]
fn mismatched_bodies_and_operands_are_errors_naming_the_avals_and_line() {
    let xs = v(&[1.0, 2.0]);
    // the carry changes dtype
    let e = scan(
        |c: Tensor, x: Tensor| (c.astype(DType::F32), x),
        &Tensor::scalar(0.0f64),
        &xs,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("f64[]") && e.to_string().contains("f32[]"),
        "{e}"
    );
    assert!(
        e.loc().is_some_and(|l| l.file.ends_with("control.rs")),
        "{e}"
    );
    // xs of different lengths
    let e = scan(
        |c: Tensor, (a, b): (Tensor, Tensor)| (&c + &a + &b, ()),
        &Tensor::scalar(0.0f64),
        &(v(&[1.0, 2.0]), v(&[1.0, 2.0, 3.0])),
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::Shape { .. }) && e.to_string().contains("length"),
        "{e}"
    );
    // a length that disagrees with the xs, and no xs without a length
    let e = scan_with(
        |c: Tensor, x: Tensor| (&c + &x, ()),
        &Tensor::scalar(0.0f64),
        &xs,
        &ScanOptions::new().length(5),
    )
    .unwrap_err();
    assert!(e.to_string().contains('5'), "{e}");
    let e = scan(|c: Tensor, (): ()| (c, ()), &Tensor::scalar(0.0f64), &()).unwrap_err();
    assert!(e.to_string().contains("length"), "{e}");
    // branches that disagree
    let e = cond(
        &Tensor::scalar(true),
        |x: Tensor| x.clone(),
        |x: Tensor| x.astype(DType::F32),
        &Tensor::scalar(1.0f64),
    )
    .unwrap_err();
    assert!(e.to_string().contains("branch 1"), "{e}");
    // predicates and indices of the wrong kind
    let e = cond(
        &Tensor::scalar(1.0f64),
        |x: Tensor| x,
        |x: Tensor| x,
        &Tensor::scalar(1.0f64),
    )
    .unwrap_err();
    assert!(matches!(e, Error::DType { .. }), "{e}");
    let f = |x: Tensor| x;
    let e = switch(&Tensor::scalar(1.0f64), &[&f], &Tensor::scalar(1.0f64)).unwrap_err();
    assert!(matches!(e, Error::DType { .. }), "{e}");
    // malformed text: a body whose carry does not come back
    let e = Program::parse(
        "{ lambda ; a:f64[] b:f64[3] . let c:f64[] = scan[body={ lambda ; a:f64[] b:f64[] . let c:f32[] = convert_element_type[new_dtype=f32] a in (c) } n_consts=0 n_carry=1 length=3 reverse=false] a b in (c) }",
    )
    .unwrap_err();
    assert!(matches!(e, Error::Parse { .. }), "{e}");
}

/// The text form of each control-flow primitive, exactly: what a traced `cond`, `switch`,
/// `scan` (forward and reverse) and `fori_loop` print, and that each parses back to itself.
#[test]
fn golden_texts_of_control_flow() {
    let x = v(&[1.0, 2.0]);
    let cond_p = make_jaxpr(
        |x: Tensor| -> Tensor {
            cond(
                &x.sum_all().greater(0.0),
                |t: Tensor| t.sin(),
                |t: Tensor| -t,
                &x,
            )
            .unwrap()
        },
        &x,
    )
    .unwrap();
    let i = Tensor::scalar(1i32);
    let switch_p = make_jaxpr(
        |(i, x): (Tensor, Tensor)| -> Tensor {
            let b0 = |t: Tensor| t.exp();
            let b1 = |t: Tensor| &t * 2.0;
            let b2 = |t: Tensor| t.cos();
            switch(&i, &[&b0, &b1, &b2], &x).unwrap()
        },
        &(i, x.clone()),
    )
    .unwrap();
    let scan_p = |reverse: bool| {
        make_jaxpr(
            |(c, xs): (Tensor, Tensor)| -> (Tensor, Tensor) {
                scan_with(
                    |c: Tensor, x: Tensor| (&c * &x, c.sin()),
                    &c,
                    &xs,
                    &ScanOptions::new().reverse(reverse),
                )
                .unwrap()
            },
            &(Tensor::scalar(1.0f64), v(&[1.0, 2.0, 3.0])),
        )
        .unwrap()
    };
    let fori_p = make_jaxpr(
        |c: Tensor| -> Tensor {
            fori_loop(0, 4, |i: Tensor, c: Tensor| &c + i.astype(DType::F64), &c).unwrap()
        },
        &Tensor::scalar(0.0f64),
    )
    .unwrap();
    let cases = [cond_p, switch_p, scan_p(false), scan_p(true), fori_p];
    let texts: Vec<String> = cases.iter().map(|p| p.to_string()).collect();
    assert_eq!(texts.join("\n"), GOLDEN_CONTROL.trim_end());
    for t in &texts {
        assert_eq!(&Program::parse(t).unwrap().to_string(), t);
    }
}

const GOLDEN_CONTROL: &str = r#"{ lambda ; a:f64[2] . let
    b:f64[] = reduce_sum[axes=(0,)] a
    c:bool[] = gt b 0.0:f64
    d:i32[] = convert_element_type[new_dtype=i32] c
    e:f64[2] = cond[branches=({ lambda ; a:f64[2] . let
              b:f64[2] = neg a
            in (b) }, { lambda ; a:f64[2] . let
              b:f64[2] = sin a
            in (b) })] d a
  in (e) }
{ lambda ; a:i32[] b:f64[2] . let
    c:f64[2] = cond[branches=({ lambda ; a:f64[2] . let
              b:f64[2] = exp a
            in (b) }, { lambda ; a:f64[2] . let
              b:f64[2] = broadcast_in_dim[shape=(2,) broadcast_dimensions=()] 2.0:f64
              c:f64[2] = mul a b
            in (c) }, { lambda ; a:f64[2] . let
              b:f64[2] = cos a
            in (b) })] a b
  in (c) }
{ lambda ; a:f64[] b:f64[3] . let
    c:f64[] d:f64[3] = scan[body={ lambda ; a:f64[] b:f64[] . let
              c:f64[] = mul a b
              d:f64[] = sin a
            in (c, d) } n_consts=0 n_carry=1 length=3 reverse=false] a b
  in (c, d) }
{ lambda ; a:f64[] b:f64[3] . let
    c:f64[] d:f64[3] = scan[body={ lambda ; a:f64[] b:f64[] . let
              c:f64[] = mul a b
              d:f64[] = sin a
            in (c, d) } n_consts=0 n_carry=1 length=3 reverse=true] a b
  in (c, d) }
{ lambda ; a:f64[] . let
    b:i32[4] = iota[dtype=i32 shape=(4,) dimension=0]
    c:i32[4] = broadcast_in_dim[shape=(4,) broadcast_dimensions=()] 0:i32
    d:i32[4] = add b c
    e:f64[] = scan[body={ lambda ; a:f64[] b:i32[] . let
              c:f64[] = convert_element_type[new_dtype=f64] b
              d:f64[] = add a c
            in (d) } n_consts=0 n_carry=1 length=4 reverse=false] a d
  in (e) }
"#;
