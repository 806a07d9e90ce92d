//! Bad input to control flow: every mistake is an `Err` of the right kind naming what was
//! wrong and where, never a panic, an abort, a hang or a wrong answer. Covers what
//! `tests/control.rs` leaves out: huge lengths, operand counts in text, carries and branches
//! that disagree in shape or structure, predicates and indices of the wrong kind, indices out
//! of range at run time (clamped, as JAX does), deep nesting and malformed nested text.

use std::time::{Duration, Instant};

use ferrax::{
    cond, jvp_program, linearize_program, make_jaxpr, run_compiled, scan, scan_with, switch,
    vmap_program, Array, Atom, Closed, DType, Equation, Error, Primitive, Program, ScanOptions,
    Tensor, Var,
};

fn v(xs: &[f64]) -> Tensor {
    Tensor::new(Array::from_slice(xs))
}

fn parse_err(text: &str) -> (usize, usize, String) {
    match Program::parse(text) {
        Err(Error::Parse { line, col, msg }) => (line, col, msg),
        Err(e) => panic!("expected a parse error, got {e:?}"),
        Ok(p) => panic!("expected a parse error, the text parsed:\n{p}"),
    }
}

/// A scan of `length` iterations over nothing: the carry `c` doubled, its value each step as
/// ys when `ys`.
fn counter_text(length: &str, ys: bool) -> String {
    if ys {
        format!(
            "{{ lambda ; a:f64[] . let
    b:f64[] c:f64[{length}] = scan[body={{ lambda ; x:f64[] . let
        y:f64[] = add x 1.0:f64
      in (y, y) }} n_consts=0 n_carry=1 length={length} reverse=false] a
  in (b, c) }}"
        )
    } else {
        format!(
            "{{ lambda ; a:f64[] . let
    b:f64[] = scan[body={{ lambda ; x:f64[] . let
        y:f64[] = add x 1.0:f64
      in (y) }} n_consts=0 n_carry=1 length={length} reverse=false] a
  in (b) }}"
        )
    }
}

// ---- huge lengths -------------------------------------------------------------------------

#[test]
fn a_huge_length_with_ys_is_refused_before_the_loop_runs() {
    // 2^40 f64 rows are 8 TiB: the shape is representable, the allocation is not
    let p = Program::parse(&counter_text("1099511627776", true)).unwrap();
    p.check().unwrap();
    let t = Instant::now();
    let e = p.eval(&[Array::scalar(0.0f64)]).unwrap_err();
    assert!(
        matches!(e, Error::ResourceExhausted { ref op, .. } if op == "scan"),
        "{e}"
    );
    assert!(e.to_string().contains("f64[]"), "{e}");
    let e = run_compiled(&p, vec![Array::scalar(0.0f64)]).unwrap_err();
    assert!(matches!(e, Error::ResourceExhausted { .. }), "{e}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());

    // eagerly, through the API: the same error, at the caller's line
    let line = line!() + 1;
    let e = scan_with(
        |c: Tensor, (): ()| (&c + 1.0, c),
        &Tensor::scalar(0.0f64),
        &(),
        &ScanOptions::new().length(1 << 40),
    )
    .unwrap_err();
    assert!(matches!(e, Error::ResourceExhausted { .. }), "{e}");
    assert_eq!(e.loc().map(|l| l.line), Some(line), "{e}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[test]
fn a_length_whose_stacked_ys_overflow_is_a_shape_error_in_text_and_traces() {
    // 2^62 f64 rows overflow isize::MAX bytes: refused while reading the text (at the
    // binder that declares them)...
    let (line, col, msg) = parse_err(&counter_text("4611686018427387904", true));
    assert_eq!((line, col), (2, 15), "{msg}");
    assert!(
        msg.contains("f64[4611686018427387904] is too large"),
        "{msg}"
    );
    // ...and while tracing, at the user's line
    let line = line!() + 3;
    let e = make_jaxpr(
        |c: Tensor| {
            scan_with(
                |c: Tensor, (): ()| (c.clone(), c),
                &c,
                &(),
                &ScanOptions::new().length(1 << 62),
            )
            .map(|(_, ys)| ys)
            .unwrap_or_else(Tensor::from_error)
        },
        &Tensor::scalar(0.0f64),
    )
    .unwrap_err();
    assert!(matches!(e, Error::ResourceExhausted { .. }), "{e}");
    assert_eq!(e.loc().map(|l| l.line), Some(line), "{e}");
}

#[test]
fn a_huge_length_without_ys_costs_nothing_until_it_is_evaluated() {
    // usize::MAX > i64::MAX cannot be written; i64::MAX iterations can: reading, checking,
    // tracing and transforming a loop never run it (evaluating it would take that long)
    let t = Instant::now();
    let p = Program::parse(&counter_text("9223372036854775807", false)).unwrap();
    p.check().unwrap();
    let j = jvp_program(&p, &[true]).unwrap();
    j.check().unwrap();
    let s = linearize_program(&p).unwrap();
    s.linear.check().unwrap();
    let b = vmap_program(&p, &[Some(0)], 3).unwrap();
    b.check().unwrap();
    ferrax::optimize(&p).unwrap().check().unwrap();
    let big = 1usize << 62;
    let q = make_jaxpr(
        |c: Tensor| {
            scan_with(
                |c: Tensor, (): ()| (&c * 2.0, ()),
                &c,
                &(),
                &ScanOptions::new().length(big),
            )
            .map(|(c, ())| c)
            .unwrap_or_else(Tensor::from_error)
        },
        &Tensor::scalar(1.0f64),
    )
    .unwrap();
    assert_eq!(q.eqns.len(), 1, "{q}");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    // a length beyond i64::MAX is refused in text, naming the parameter
    let (_, _, msg) = parse_err(&counter_text("18446744073709551615", false));
    assert!(msg.contains("length") || msg.contains("integer"), "{msg}");
}

// ---- operand counts in text ---------------------------------------------------------------

#[test]
fn consts_and_carries_beyond_the_operands_are_errors_at_the_equation() {
    let body = "{ lambda ; x:f64[] . let in (x) }";
    for (n_consts, n_carry) in [
        ("2", "0"),
        ("0", "2"),
        ("1", "1"),
        ("9223372036854775807", "9223372036854775807"),
        ("9223372036854775807", "1"),
    ] {
        let text = format!(
            "{{ lambda ; a:f64[] . let\n    b:f64[] = scan[body={body} n_consts={n_consts} n_carry={n_carry} length=1 reverse=false] a\n  in (b) }}"
        );
        let (line, col, msg) = parse_err(&text);
        assert_eq!((line, col), (2, 15), "{msg}");
        assert!(
            msg.contains(&format!("{n_consts} consts and {n_carry} carries"))
                && msg.contains("1 operands"),
            "{msg}"
        );
    }
    // negative counts are not counts
    let text = format!(
        "{{ lambda ; a:f64[] . let b:f64[] = scan[body={body} n_consts=-1 n_carry=1 length=1 reverse=false] a in (b) }}"
    );
    let (_, _, msg) = parse_err(&text);
    assert!(
        msg.contains("n_consts") && msg.contains("non-negative"),
        "{msg}"
    );
}

#[test]
fn a_body_taking_more_or_fewer_inputs_than_the_operands_is_an_error() {
    // two operands, both carries: the body takes only one
    let (line, _, msg) = parse_err(
        "{ lambda ; a:f64[] b:f64[] . let
    c:f64[] d:f64[] = scan[body={ lambda ; x:f64[] . let in (x, x) } n_consts=0 n_carry=2 length=1 reverse=false] a b
  in (c) }",
    );
    assert_eq!(line, 2);
    assert!(
        msg.contains("the body takes (f64[])") && msg.contains("(f64[], f64[])"),
        "{msg}"
    );
    // the body gives fewer outputs than the carries
    let (_, _, msg) = parse_err(
        "{ lambda ; a:f64[] b:f64[] . let
    c:f64[] d:f64[] = scan[body={ lambda ; x:f64[] y:f64[] . let in (x) } n_consts=0 n_carry=2 length=1 reverse=false] a b
  in (c) }",
    );
    assert!(
        msg.contains("must give the carry (f64[], f64[]) back"),
        "{msg}"
    );
    // the declared outputs do not match the scan's
    let (_, _, msg) = parse_err(
        "{ lambda ; a:f64[] . let
    c:f64[] = scan[body={ lambda ; x:f64[] . let in (x, x) } n_consts=0 n_carry=1 length=3 reverse=false] a
  in (c) }",
    );
    assert!(
        msg.contains("declared f64[]") && msg.contains("f64[] f64[3]"),
        "{msg}"
    );
}

#[test]
fn xs_disagreeing_with_the_length_in_text_name_the_xs_and_the_length() {
    let (line, _, msg) = parse_err(
        "{ lambda ; a:f64[] xs:f64[3] ys:f64[4] . let
    c:f64[] = scan[body={ lambda ; c:f64[] x:f64[] y:f64[] . let
        d:f64[] = add x y
      in (d) } n_consts=0 n_carry=1 length=3 reverse=false] a xs ys
  in (c) }",
    );
    assert_eq!(line, 2);
    assert!(
        msg.contains("xs 1 is f64[4]") && msg.contains("length is 3"),
        "{msg}"
    );
    // a scalar can not be scanned over
    let (_, _, msg) = parse_err(
        "{ lambda ; a:f64[] x:f64[] . let
    c:f64[] = scan[body={ lambda ; c:f64[] . let in (c) } n_consts=0 n_carry=1 length=0 reverse=false] a x
  in (c) }",
    );
    assert!(msg.contains("xs 0 is f64[]"), "{msg}");
}

// ---- carries and branches that disagree (traced) --------------------------------------------

#[test]
fn a_carry_changing_shape_names_both_avals_and_the_users_line() {
    let xs = v(&[1.0, 2.0, 3.0]);
    let line = line!() + 1;
    let e = scan(
        |c: Tensor, x: Tensor| (c.broadcast_to(&[2]) * x, ()),
        &Tensor::scalar(0.0f64),
        &xs,
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::Shape { ref op, .. } if op == "scan"),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("took (f64[])") && msg.contains("returned (f64[2])"),
        "{msg}"
    );
    let loc = e.loc().expect("a location");
    assert!(loc.file.ends_with("control_errors.rs"), "{loc}");
    assert_eq!(loc.line, line, "{e}");
    // inside a trace too
    let line = line!() + 3;
    let e = make_jaxpr(
        |(c, xs): (Tensor, Tensor)| {
            scan(|c: Tensor, x: Tensor| (c.astype(DType::I32), x), &c, &xs)
                .map(|(c, _)| c)
                .unwrap_or_else(Tensor::from_error)
        },
        &(Tensor::scalar(0.0f64), xs),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("f64[]") && e.to_string().contains("i32[]"),
        "{e}"
    );
    assert_eq!(e.loc().map(|l| l.line), Some(line), "{e}");
}

#[test]
fn a_carry_changing_structure_is_an_error() {
    let xs = v(&[1.0, 2.0]);
    let e = scan(
        |c: Vec<Tensor>, x: Tensor| (vec![&c[0] + &x], ()),
        &vec![Tensor::scalar(0.0f64), Tensor::scalar(1.0f64)],
        &xs,
    )
    .unwrap_err();
    assert!(matches!(e, Error::Shape { .. } | Error::Tree { .. }), "{e}");
    assert!(e.to_string().contains("f64[], f64[]"), "{e}");
    assert!(
        e.loc()
            .is_some_and(|l| l.file.ends_with("control_errors.rs")),
        "{e}"
    );
}

#[test]
fn branches_with_different_shapes_or_trees_name_the_branch_and_both_avals() {
    let line = line!() + 1;
    let e = cond(
        &Tensor::scalar(true),
        |x: Tensor| x.clone(),
        |x: Tensor| x.broadcast_to(&[3]),
        &Tensor::scalar(1.0f64),
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::Shape { ref op, .. } if op == "cond"),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("branch 1 returns (f64[])") && msg.contains("branch 0 returns (f64[3])"),
        "{msg}"
    );
    assert_eq!(e.loc().map(|l| l.line), Some(line), "{e}");
    // one output against two
    let one = |x: Tensor| vec![x];
    let two = |x: Tensor| vec![x.clone(), x];
    let e = switch(
        &Tensor::scalar(0i32),
        &[&one, &two],
        &Tensor::scalar(1.0f64),
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::Shape { ref op, .. } if op == "switch"),
        "{e}"
    );
    assert!(
        e.to_string().contains("branch 1 returns (f64[], f64[])"),
        "{e}"
    );
    // dtypes, in a switch of three
    let f = |x: Tensor| x.clone();
    let g = |x: Tensor| x.clone();
    let h = |x: Tensor| x.astype(DType::F32);
    let e = switch(
        &Tensor::scalar(0i32),
        &[&f, &g, &h],
        &Tensor::scalar(1.0f64),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("branch 2 returns (f32[])")
            && e.to_string().contains("branch 0 returns (f64[])"),
        "{e}"
    );
}

#[test]
fn branches_that_disagree_in_text_are_errors_at_the_equation() {
    let (line, col, msg) = parse_err(
        "{ lambda ; i:i32[] a:f64[] . let
    b:f64[] = cond[branches=({ lambda ; x:f64[] . let in (x) }, { lambda ; x:f64[] . let in (x, x) })] i a
  in (b) }",
    );
    assert_eq!((line, col), (2, 15), "{msg}");
    assert!(
        msg.contains("branch 1 gives (f64[], f64[]) but branch 0 gives (f64[])"),
        "{msg}"
    );
    let (_, _, msg) = parse_err(
        "{ lambda ; i:i32[] a:f64[] . let
    b:f64[] = cond[branches=({ lambda ; x:f64[] . let in (x) }, { lambda ; x:f32[] . let in (1.0:f64) })] i a
  in (b) }",
    );
    assert!(
        msg.contains("branch 1 takes (f32[]) but the operands are (f64[])"),
        "{msg}"
    );
}

// ---- predicates and indices ---------------------------------------------------------------

#[test]
fn non_scalar_predicates_and_indices_are_dtype_errors() {
    let x = Tensor::scalar(1.0f64);
    let line = line!() + 1;
    let e = cond(
        &v(&[1.0, 2.0]).greater(0.0),
        |x: Tensor| x,
        |x: Tensor| x,
        &x,
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::DType { ref op, .. } if op == "cond"),
        "{e}"
    );
    assert!(e.to_string().contains("bool[2]"), "{e}");
    assert_eq!(e.loc().map(|l| l.line), Some(line), "{e}");
    // an integer is not a predicate
    let e = cond(&Tensor::scalar(1i32), |x: Tensor| x, |x: Tensor| x, &x).unwrap_err();
    assert!(e.to_string().contains("i32[]"), "{e}");
    let f = |x: Tensor| x;
    for index in [
        Tensor::new(Array::from_slice(&[0i32, 1])),
        Tensor::scalar(true),
        Tensor::scalar(0.0f32),
    ] {
        let want = index.aval().unwrap().to_string();
        let e = switch(&index, &[&f, &f], &x).unwrap_err();
        assert!(
            matches!(e, Error::DType { ref op, .. } if op == "switch"),
            "{e}"
        );
        assert!(e.to_string().contains(&want), "{e}");
    }
    // in text: the index of `cond` is an i32 scalar
    for index in ["i:f64[]", "i:i64[]", "i:i32[1]", "i:bool[]"] {
        let (line, _, msg) = parse_err(&format!(
            "{{ lambda ; {index} a:f64[] . let
    b:f64[] = cond[branches=({{ lambda ; x:f64[] . let in (x) }},)] i a
  in (b) }}"
        ));
        assert_eq!(line, 2);
        assert!(msg.contains("the index must be an i32 scalar"), "{msg}");
    }
    // no index at all
    let (_, _, msg) = parse_err(
        "{ lambda ; . let
    b:f64[] = cond[branches=({ lambda ; . let in (1.0:f64) },)]
  in (b) }",
    );
    assert!(msg.contains("index"), "{msg}");
}

#[test]
fn a_switch_of_no_branches_is_an_error_everywhere() {
    let x = Tensor::scalar(1.0f64);
    let none: [&dyn Fn(Tensor) -> Tensor; 0] = [];
    let e = switch(&Tensor::scalar(0i32), &none, &x).unwrap_err();
    assert!(
        matches!(e, Error::Shape { ref op, .. } if op == "switch"),
        "{e}"
    );
    assert!(e.to_string().contains("at least one branch"), "{e}");
    assert!(e.loc().is_some());
    // `()` is not a tuple of programs
    let (_, _, msg) = parse_err(
        "{ lambda ; i:i32[] . let
    b:f64[] = cond[branches=()] i
  in (b) }",
    );
    assert!(msg.contains("branches"), "{msg}");
    // a program built by hand with no branches: check, eval and jit refuse it
    let p = Program {
        avals: vec![
            ferrax::Aval::scalar(DType::I32),
            ferrax::Aval::scalar(DType::F64),
        ],
        consts: vec![],
        inputs: vec![Var(0)],
        eqns: vec![Equation {
            prim: Primitive::Cond { branches: vec![] },
            inputs: vec![Atom::Var(Var(0))],
            outs: vec![Var(1)],
            loc: None,
        }],
        outputs: vec![Atom::Var(Var(1))],
    };
    let e = p.check().unwrap_err();
    assert!(e.to_string().contains("at least one branch"), "{e}");
    assert!(p.eval(&[Array::scalar(0i32)]).is_err());
    assert!(run_compiled(&p, vec![Array::scalar(0i32)]).is_err());
    assert!(jvp_program(&p, &[false]).is_err());
    assert!(vmap_program(&p, &[Some(0)], 2).is_err());
}

#[test]
fn indices_out_of_range_are_clamped_by_every_path() {
    // branch 0: x * 10, branch 1: x + 1, branch 2: -x
    let text = "{ lambda ; i:i32[] x:f64[] . let
    y:f64[] = cond[branches=({ lambda ; x:f64[] . let
        y:f64[] = mul x 10.0:f64
      in (y) }, { lambda ; x:f64[] . let
        y:f64[] = add x 1.0:f64
      in (y) }, { lambda ; x:f64[] . let
        y:f64[] = neg x
      in (y) })] i x
  in (y) }";
    let p = Program::parse(text).unwrap();
    let cases = [
        (i32::MIN, 20.0),
        (-1, 20.0),
        (0, 20.0),
        (1, 3.0),
        (2, -2.0),
        (3, -2.0),
        (i32::MAX, -2.0),
    ];
    for (i, want) in cases {
        let args = [Array::scalar(i), Array::scalar(2.0f64)];
        let a = p.eval(&args).unwrap();
        assert_eq!(a[0].item().unwrap().to_f64(), want, "eval, index {i}");
        let b = run_compiled(&p, args.to_vec()).unwrap();
        assert_eq!(b[0].item().unwrap().to_f64(), want, "jit, index {i}");
    }
    // batched indices, each clamped on its own
    let b = vmap_program(&p, &[Some(0), None], cases.len()).unwrap();
    let idx: Vec<i32> = cases.iter().map(|c| c.0).collect();
    let out = b
        .eval(&[Array::from_slice(&idx), Array::scalar(2.0f64)])
        .unwrap();
    let want: Vec<f64> = cases.iter().map(|c| c.1).collect();
    assert_eq!(out[0].to_vec::<f64>().unwrap(), want, "{b}");
    let out = run_compiled(&b, vec![Array::from_slice(&idx), Array::scalar(2.0f64)]).unwrap();
    assert_eq!(out[0].to_vec::<f64>().unwrap(), want);
    // the tangent goes through the clamped branch too: d/dx at index 99 is -1
    let j = jvp_program(&p, &[false, true]).unwrap();
    let out = j
        .eval(&[
            Array::scalar(99i32),
            Array::scalar(2.0f64),
            Array::scalar(0i32),
            Array::scalar(1.0f64),
        ])
        .map(|o| o[1].item().unwrap().to_f64());
    let out = match out {
        Ok(t) => t,
        // the tangent of an integer input may be a float0-like placeholder of another dtype
        Err(_) => j
            .eval(&[
                Array::scalar(99i32),
                Array::scalar(2.0f64),
                Array::scalar(1.0f64),
            ])
            .unwrap()[1]
            .item()
            .unwrap()
            .to_f64(),
    };
    assert_eq!(out, -1.0);
    // i64 indices far out of range pick the ends through switch
    let f = |x: Tensor| &x * 10.0;
    let g = |x: Tensor| -x;
    for (i, want) in [(i64::MIN, 20.0), (i64::MAX, -2.0), (1 << 40, -2.0)] {
        let y: Tensor = switch(&Tensor::scalar(i), &[&f, &g], &Tensor::scalar(2.0f64)).unwrap();
        assert_eq!(y.item().unwrap(), want, "index {i}");
    }
}

// ---- deep nesting -------------------------------------------------------------------------

/// `depth` scans, each the body of the one around it, each of length 1, adding 1 in the
/// innermost body.
fn nested_scans(depth: usize) -> String {
    let mut text = String::from("{ lambda ; x:f64[] . let y:f64[] = add x 1.0:f64 in (y) }");
    for _ in 0..depth {
        text = format!(
            "{{ lambda ; x:f64[] . let y:f64[] = scan[body={text} n_consts=0 n_carry=1 length=1 reverse=false] x in (y) }}"
        );
    }
    text
}

#[test]
fn ten_thousand_nested_scans_are_an_error_not_a_stack_overflow() {
    // run on a thread with a small stack: the parser must not recurse past its limit
    let h = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(|| {
            let (_, _, msg) = parse_err(&nested_scans(10_000));
            assert!(msg.contains("nested more than 64 deep"), "{msg}");
            // braces alone, and a nested program cut short
            let (_, _, msg) = parse_err(&"{".repeat(100_000));
            assert!(!msg.is_empty());
            let deep = nested_scans(100);
            let (_, _, msg) = parse_err(&deep[..deep.len() / 2]);
            assert!(!msg.is_empty());
        })
        .unwrap();
    h.join().expect("no panic, no overflow");
}

#[test]
fn nesting_within_the_limit_works_through_every_path() {
    let t = Instant::now();
    let p = Program::parse(&nested_scans(64)).unwrap();
    assert_eq!(
        p.to_string(),
        Program::parse(&p.to_string()).unwrap().to_string()
    );
    let out = p.eval(&[Array::scalar(1.0f64)]).unwrap();
    assert_eq!(out[0].item().unwrap().to_f64(), 2.0);
    let out = run_compiled(&p, vec![Array::scalar(1.0f64)]).unwrap();
    assert_eq!(out[0].item().unwrap().to_f64(), 2.0);
    let j = jvp_program(&p, &[true]).unwrap();
    let out = j
        .eval(&[Array::scalar(1.0f64), Array::scalar(1.0f64)])
        .unwrap();
    assert_eq!(out[1].item().unwrap().to_f64(), 1.0);
    let b = vmap_program(&p, &[Some(0)], 2).unwrap();
    let out = b.eval(&[Array::from_slice(&[1.0f64, 5.0])]).unwrap();
    assert_eq!(out[0].to_vec::<f64>().unwrap(), vec![2.0, 6.0]);
    // jvp asks for each body's jvp twice (the carries' tangents are a fixpoint): without
    // remembering them, 60 levels traced the innermost body 2^60 times
    let s = linearize_program(&p).unwrap();
    s.linear.check().unwrap();
    ferrax::optimize(&p).unwrap().check().unwrap();
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    // one level more than the parser reads is refused, by the parser and by `check`
    let (_, _, msg) = parse_err(&nested_scans(65));
    assert!(msg.contains("nested more than 64 deep"), "{msg}");
}

#[test]
fn a_program_nested_deeper_by_hand_is_refused_by_check_not_overflowing() {
    // a program built directly (no parser, no limit on the way in), 10000 scans deep
    let h = std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(|| {
            let leaf = Program::parse("{ lambda ; x:f64[] . let in (x) }").unwrap();
            let mut p = leaf;
            for _ in 0..10_000 {
                p = Program {
                    avals: vec![ferrax::Aval::scalar(DType::F64); 2],
                    consts: vec![],
                    inputs: vec![Var(0)],
                    eqns: vec![Equation {
                        prim: Primitive::Scan {
                            body: Closed::new(p),
                            n_consts: 0,
                            n_carry: 1,
                            length: 1,
                            reverse: false,
                        },
                        inputs: vec![Atom::Var(Var(0))],
                        outs: vec![Var(1)],
                        loc: None,
                    }],
                    outputs: vec![Atom::Var(Var(1))],
                };
            }
            let e = p.check().unwrap_err();
            assert!(e.to_string().contains("nested"), "{e}");
            assert!(p.eval(&[Array::scalar(1.0f64)]).is_err());
            assert!(run_compiled(&p, vec![Array::scalar(1.0f64)]).is_err());
            assert!(jvp_program(&p, &[true]).is_err());
            assert!(vmap_program(&p, &[Some(0)], 2).is_err());
            // dropping it must not overflow either
            drop(p);
        })
        .unwrap();
    h.join().expect("no panic, no overflow");
}

// ---- malformed nested text ----------------------------------------------------------------

#[test]
fn malformed_nested_programs_are_parse_errors_at_their_position() {
    let cases: &[(&str, &str)] = &[
        // a nested program names the enclosing program's variable: it is closed
        (
            "{ lambda ; a:f64[] b:f64[] . let
    c:f64[] = scan[body={ lambda ; x:f64[] . let y:f64[] = add x b in (y) } n_consts=0 n_carry=1 length=2 reverse=false] a
  in (c) }",
            "`b`",
        ),
        // unclosed nested program
        (
            "{ lambda ; a:f64[] . let
    c:f64[] = scan[body={ lambda ; x:f64[] . let in (x) n_consts=0 n_carry=1 length=2 reverse=false] a
  in (c) }",
            "expected",
        ),
        // a branch tuple without its comma
        (
            "{ lambda ; i:i32[] a:f64[] . let
    b:f64[] = cond[branches=({ lambda ; x:f64[] . let in (x) } { lambda ; x:f64[] . let in (x) })] i a
  in (b) }",
            "expected `,` or `)`",
        ),
        // the body as a tuple of programs, and as a number
        (
            "{ lambda ; a:f64[] . let
    c:f64[] = scan[body=({ lambda ; x:f64[] . let in (x) },) n_consts=0 n_carry=1 length=2 reverse=false] a
  in (c) }",
            "body",
        ),
        (
            "{ lambda ; a:f64[] . let
    c:f64[] = scan[body=3 n_consts=0 n_carry=1 length=2 reverse=false] a
  in (c) }",
            "body",
        ),
        // a parameter missing, one unknown, one repeated
        (
            "{ lambda ; a:f64[] . let
    c:f64[] = scan[body={ lambda ; x:f64[] . let in (x) } n_consts=0 n_carry=1 reverse=false] a
  in (c) }",
            "length",
        ),
        (
            "{ lambda ; a:f64[] . let
    c:f64[] = scan[body={ lambda ; x:f64[] . let in (x) } n_consts=0 n_carry=1 length=2 reverse=false unroll=2] a
  in (c) }",
            "unroll",
        ),
        // a program given to a primitive that takes none
        (
            "{ lambda ; a:f64[] . let
    c:f64[] = sin[body={ lambda ; x:f64[] . let in (x) }] a
  in (c) }",
            "body",
        ),
        // an ill-typed nested program
        (
            "{ lambda ; a:f64[] . let
    c:f64[] = scan[body={ lambda ; x:f64[] . let y:f32[] = sin x in (y) } n_consts=0 n_carry=1 length=2 reverse=false] a
  in (c) }",
            "f32[]",
        ),
        // two binders for one output, one for two
        (
            "{ lambda ; a:f64[] . let
    c:f64[] d:f64[] = sin a
  in (c) }",
            "declared f64[] f64[]",
        ),
        // a binder defined twice on one line
        (
            "{ lambda ; a:f64[] . let
    c:f64[] c:f64[2] = scan[body={ lambda ; x:f64[] . let in (x, x) } n_consts=0 n_carry=1 length=2 reverse=false] a
  in (c) }",
            "defined twice",
        ),
    ];
    for (text, needle) in cases {
        let (line, _, msg) = parse_err(text);
        assert_eq!(line, 2, "{msg}\n{text}");
        assert!(msg.contains(needle), "`{needle}` not in: {msg}\n{text}");
    }
}

#[test]
fn an_equation_with_no_outputs_prints_and_parses_back() {
    // a scan with neither carry nor ys has no outputs; its text must still read back
    let p = make_jaxpr(
        |xs: Tensor| {
            let r: ferrax::Result<((), ())> = scan(
                |(): (), x: Tensor| {
                    ((), {
                        let _ = x.sin();
                    })
                },
                &(),
                &xs,
            );
            match r {
                Ok(((), ())) => xs.sum_all(),
                Err(e) => Tensor::from_error(e),
            }
        },
        &v(&[1.0, 2.0]),
    )
    .unwrap();
    let text = p.to_string();
    let q = Program::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(q.to_string(), text);
}

#[test]
fn residuals_of_a_loop_too_long_to_stack_are_an_error_not_an_ill_typed_program() {
    // found by the fuzzer: linearize stacks one cos(x) per iteration, f64[2^62] cannot
    // exist, and the primal program it returned did not type-check
    let p = Program::parse(
        "{ lambda ; a:f64[] . let
    b:f64[] = scan[body={ lambda ; x:f64[] . let
        y:f64[] = sin x
      in (y) } n_consts=0 n_carry=1 length=4611686018427387904 reverse=false] a
  in (b) }",
    )
    .unwrap();
    for e in [
        linearize_program(&p).map(|_| ()).unwrap_err(),
        ferrax::vjp_program(&p).map(|_| ()).unwrap_err(),
        ferrax::grad_program(&p).map(|_| ()).unwrap_err(),
    ] {
        assert!(
            matches!(e, Error::ResourceExhausted { ref op, .. } if op == "scan"),
            "{e}"
        );
        assert!(
            e.to_string().contains("4611686018427387904 iterations"),
            "{e}"
        );
        assert_eq!(e.loc().map(|l| l.line), Some(2), "{e}");
    }
    // the jvp needs no residuals: it is one loop of the same length
    let j = jvp_program(&p, &[true]).unwrap();
    j.check().unwrap();
}

/// Found in review: an unrolled scan whose body's output tree changes from one step to the
/// next is an error, not an index out of bounds.
#[test]
fn an_unrolled_body_whose_outputs_change_between_steps_is_an_error() {
    use ferrax::{scan_with, ScanOptions};
    let xs = Tensor::zeros(&[4, 1], DType::F64);
    let r = std::panic::catch_unwind(|| {
        scan_with(
            |c: Tensor, _x: Tensor| {
                let n = c.shape()[0];
                let ys: Vec<Tensor> = (0..n).map(|_| c.sum_all()).collect();
                (c.slice_axis(0, 0, n.saturating_sub(1).max(1)), ys)
            },
            &Tensor::zeros(&[3], DType::F64),
            &xs,
            &ScanOptions::new().unroll(2),
        )
        .map(|_| ())
    });
    let e = r.expect("no panic").unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
}

/// Found in review: the optimizer's loop rewrites add up the bytes a rewrite would stack
/// without overflowing, and refuse the rewrite, for loops too long to stack anything.
#[test]
fn loop_rewrites_of_a_loop_too_long_to_stack_do_not_overflow() {
    let text = "{ lambda ; a:f32[1048576] b:f32[1048576] . let
    c:f32[1048576] d:f32[1048576] e:f32[1152921504606846976] = scan[body={ lambda ; a:f32[1048576] b:f32[1048576] . let
              c:f32[1048576] = sin a
              d:f32[1048576] = sin b
              e:f32[] = dot_general[lhs_contracting=(0,) rhs_contracting=(0,) lhs_batch=() rhs_batch=()] a b
            in (c, d, e) } n_consts=0 n_carry=2 length=1152921504606846976 reverse=false] a b
  in (c, d, e) }";
    let p = Program::parse(text).unwrap();
    let r = std::panic::catch_unwind(|| ferrax::optimize(&p));
    let o = r.expect("no panic").unwrap();
    // nothing was stacked: the product stays in the loop
    assert_eq!(o.count_prim("scan"), 1, "{o}");
}

/// Found in review: a very long loop whose ys rows are empty still holds one array per row
/// in the reference evaluator until it stacks them; that is refused before the loop runs.
#[test]
fn a_very_long_loop_of_empty_rows_is_refused_before_it_runs() {
    let text = "{ lambda ; a:f32[] . let
    b:f32[] c:f32[1125899906842624,0] = scan[body={ lambda ; a:f32[] . let
              b:f32[0] = broadcast_in_dim[shape=(0,) broadcast_dimensions=()] a
            in (a, b) } n_consts=0 n_carry=1 length=1125899906842624 reverse=false] a
  in (b, c) }";
    let p = Program::parse(text).unwrap();
    let e = p.eval(&[ferrax::Array::scalar(1.0f32)]).unwrap_err();
    assert!(matches!(e, Error::ResourceExhausted { .. }), "{e}");
}
