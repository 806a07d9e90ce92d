//! Programs: random well-typed programs (from the op table's generators) pass the checker,
//! print → parse → print is the identity, the parsed program computes the same values, and
//! dead-code elimination keeps the outputs. Golden texts, and every parse and check error.

mod harness;

use ferrax::{Array, Atom, Error, Program, Var};
use harness::{arb_program, random_inputs, Column, Tally};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: harness::cases(200), ..ProptestConfig::default() })]

    #[test]
    fn random_programs_type_check_round_trip_and_evaluate(p in arb_program(12), seed in 0u64..1000) {
        p.check().unwrap();
        let text = p.to_string();
        let q = Program::parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(q.to_string(), text.clone());
        let args = random_inputs(&p, seed);
        let a = p.eval(&args).unwrap();
        let b = q.eval(&args).unwrap();
        for (x, y) in a.iter().zip(&b) {
            prop_assert!(x.same_values(y), "{:?} vs {:?}\n{}", x, y, text);
        }
        // Dead-code elimination keeps what the outputs need, and nothing else changes them.
        let d = p.dce();
        d.check().unwrap();
        prop_assert!(d.eqns.len() <= p.eqns.len());
        let c = d.eval(&args).unwrap();
        for (x, y) in a.iter().zip(&c) {
            prop_assert!(x.same_values(y));
        }
        // Applying the program to concrete tensors (the path that emits programs into
        // traces) computes the same values as the evaluator.
        let ts: Vec<ferrax::Tensor> = args.iter().cloned().map(ferrax::Tensor::new).collect();
        let e = p.call(&ts).unwrap();
        for (x, y) in a.iter().zip(&e) {
            prop_assert!(x.same_values(&y.array().unwrap()));
        }
    }
}

#[test]
fn random_programs_cover_every_generator_row() {
    // The generator is only useful if it reaches the rows: over a fixed sample of recipes,
    // every row the coverage matrix's random-programs column claims appears.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strat = arb_program(12);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..300 {
        let p = strat.new_tree(&mut runner).unwrap().current();
        for e in &p.eqns {
            seen.insert(e.prim.name());
        }
    }
    let mut tally = Tally::new(&[Column::RandomPrograms]);
    for row in Column::RandomPrograms.rows() {
        if seen.contains(row.prim.name()) {
            tally.checked(Column::RandomPrograms, &row);
        }
    }
    tally.assert_every_claimed_row_checked();
}

#[test]
fn golden_text_with_constants_literals_and_params() {
    let text = "{ lambda a:f32[2] = [0.1, -inf] ; b:f32[2] c:i32[] . let
    d:f32[2] = add a b
    e:f32[] = reduce_sum[axes=(0,)] d
    f:i32[] = mul c -3:i32
    g:bool[] = lt e nan:f32
  in (e, f, g, 2.5:f64) }";
    let p = Program::parse(text).unwrap();
    assert_eq!(p.to_string(), text);
    p.check().unwrap();
    assert_eq!(p.consts.len(), 1);
    assert_eq!(p.outputs[3], Atom::Lit(ferrax::Scalar::F64(2.5)));
    let out = p
        .eval(&[Array::from_slice(&[1.0f32, 2.0]), Array::scalar(4i32)])
        .unwrap();
    assert_eq!(out[0].to_vec::<f32>().unwrap(), vec![f32::NEG_INFINITY]);
    assert_eq!(out[1].to_vec::<i32>().unwrap(), vec![-12]);
    assert_eq!(out[2].to_vec::<bool>().unwrap(), vec![false]);
}

#[test]
fn parser_accepts_comments_other_names_and_reprints_canonically() {
    let text = "# a comment\n{ lambda ; x:f64[] y:f64[] . let z:f64[] = add x y # sum\n w:f64[] = neg z in (w,) }";
    let p = Program::parse(text).unwrap();
    assert_eq!(
        p.to_string(),
        "{ lambda ; a:f64[] b:f64[] . let\n    c:f64[] = add a b\n    d:f64[] = neg c\n  in (d) }"
    );
}

#[test]
fn variable_names_skip_reserved_words() {
    // 300 chained negations: names run past `in` (index 221 of the plain sequence).
    let mut text = String::from("{ lambda ; a:f64[] . let\n");
    let mut prev = "a".to_string();
    for i in 0..300 {
        let name = format!("v{i}");
        text.push_str(&format!("    {name}:f64[] = neg {prev}\n"));
        prev = name;
    }
    text.push_str(&format!("  in ({prev}) }}"));
    let p = Program::parse(&text).unwrap();
    let printed = p.to_string();
    assert!(!printed.contains(" in:") && !printed.contains(" in\n"));
    assert_eq!(Program::parse(&printed).unwrap().to_string(), printed);
}

fn parse_err(text: &str) -> (usize, usize, String) {
    match Program::parse(text) {
        Err(Error::Parse { line, col, msg }) => (line, col, msg),
        other => panic!("expected a parse error for {text:?}, got {other:?}"),
    }
}

#[test]
fn parse_errors_give_line_column_and_cause() {
    let cases: &[(&str, (usize, usize), &str)] = &[
        ("", (1, 1), "expected `{`, found the end of the text"),
        (
            "{ lambda ; a:f65[] . let in (a) }",
            (1, 14),
            "unknown dtype `f65`",
        ),
        (
            "{ lambda ; a:f64[] . let\n  b:f64[] = sin q\nin (b) }",
            (2, 17),
            "variable `q` is not defined",
        ),
        (
            "{ lambda ; a:f64[] . let\n  b:f64[] = frob a\nin (b) }",
            (2, 13),
            "unknown primitive `frob`",
        ),
        (
            "{ lambda ; a:f64[] . let\n  b:f32[] = sin a\nin (b) }",
            (2, 3),
            "declared f32[] but `sin` of these operands gives f64[]",
        ),
        (
            "{ lambda ; a:f64[2] . let\n  b:f64[] = reduce_sum a\nin (b) }",
            (2, 13),
            "`reduce_sum` needs the parameter `axes`",
        ),
        (
            "{ lambda ; a:f64[2] . let\n  b:f64[] = reduce_sum[axes=(0,) keep=true] a\nin (b) }",
            (2, 13),
            "`reduce_sum` has no parameter `keep`",
        ),
        (
            "{ lambda ; a:f64[2] . let\n  b:f64[] = reduce_sum[axes=0] a\nin (b) }",
            (2, 13),
            "parameter `axes` must be a tuple",
        ),
        (
            "{ lambda ; a:f64[2] . let\n  b:f64[2] = reduce_sum[axes=(3,)] a\nin (b) }",
            (2, 14),
            "axis error in `reduce_sum`: axes [3]: 3 is out of range for rank 1",
        ),
        (
            "{ lambda ; a:f64[] a:f64[] . let in (a) }",
            (1, 20),
            "variable `a` is defined twice",
        ),
        (
            "{ lambda ; a:f64[] . let b:f64[] = add a 1.5:i32 in (b) }",
            (1, 42),
            "`1.5` is not a value of dtype i32",
        ),
        (
            "{ lambda c:f64[2] = [1.0] ; a:f64[] . let in (a) }",
            (1, 21),
            "constant declared f64[2] needs 2 values, found 1",
        ),
        (
            "{ lambda ; a:f64[] . let in (a) } extra",
            (1, 35),
            "unexpected `extra` after the program",
        ),
        (
            "{ lambda ; a:f64[] . let in (a) ",
            (1, 33),
            "expected `}`, found the end of the text",
        ),
        (
            "{ lambda ; a:f64[] . let\n  b:f64[] = sin a\n",
            (3, 1),
            "expected an equation or `in`",
        ),
        (
            "{ lambda ; in:f64[] . let in (in) }",
            (1, 12),
            "`in` is a reserved word",
        ),
        (
            "{ lambda ; a:f64[] . let in (a) } @",
            (1, 35),
            "unexpected character `@`",
        ),
    ];
    for (text, (line, col), fragment) in cases {
        let (l, c, msg) = parse_err(text);
        assert!(
            msg.contains(fragment),
            "{text:?}: `{msg}` lacks `{fragment}`"
        );
        assert_eq!((l, c), (*line, *col), "{text:?}: {msg}");
    }
    // The Display form carries the position.
    let e = Program::parse("{ lambda ; a:f64[] . let b:f64[] = sin q in (b) }").unwrap_err();
    assert_eq!(
        e.to_string(),
        "parse error at line 1, column 40: variable `q` is not defined"
    );
}

fn base() -> Program {
    Program::parse(
        "{ lambda ; a:f64[3] . let\n    b:f64[3] = sin a\n    c:f64[3] = mul b a\n  in (c) }",
    )
    .unwrap()
}

#[test]
fn checker_rejects_ill_typed_programs_precisely() {
    let mut p = base();
    p.eqns[1].inputs[1] = Atom::Var(Var(2)); // c = mul b c: c used before it is defined
    assert_eq!(
        p.check().unwrap_err().to_string(),
        "ill-typed program: equation 1 (`mul`): operand 1 uses variable 2 before it is defined"
    );

    let mut p = base();
    p.eqns[1].outs = vec![Var(1)]; // b defined twice
    assert_eq!(
        p.check().unwrap_err().to_string(),
        "ill-typed program: equation 1 (`mul`) defines variable 1 a second time"
    );

    let mut p = base();
    p.eqns[0].inputs.push(Atom::Var(Var(0)));
    assert_eq!(
        p.check().unwrap_err().to_string(),
        "ill-typed program: equation 0 (`sin`): takes 1 operand(s), has 2"
    );

    let mut p = base();
    p.avals[0] = ferrax::Aval::new(vec![3], ferrax::DType::I32);
    assert_eq!(
        p.check().unwrap_err().to_string(),
        "ill-typed program: equation 0 (`sin`): dtype error in `sin`: operand must be f32 or f64, got i32[3]"
    );

    let mut p = base();
    p.outputs = vec![Atom::Var(Var(9))];
    assert_eq!(
        p.check().unwrap_err().to_string(),
        "ill-typed program: output 0 is variable 9, which is never defined"
    );

    let mut p = base();
    p.consts
        .push((Var(3), Array::zeros(&[2], ferrax::DType::F64).unwrap()));
    p.avals.push(ferrax::Aval::new(vec![3], ferrax::DType::F64));
    assert_eq!(
        p.check().unwrap_err().to_string(),
        "ill-typed program: constant 0 is declared f64[3] but its value is f64[2]"
    );
}

#[test]
fn evaluation_rejects_wrong_inputs() {
    let p = base();
    let e = p.eval(&[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "bad input to `Program::eval`: the program takes 1 input(s), 0 given"
    );
    let e = p
        .eval(&[Array::zeros(&[2], ferrax::DType::F64).unwrap()])
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "bad input to `Program::eval`: input 0 must be f64[3], got f64[2]"
    );
    let e = p
        .eval(&[Array::zeros(&[3], ferrax::DType::F32).unwrap()])
        .unwrap_err();
    assert!(matches!(e, Error::Input { .. }));
}

#[test]
fn dce_removes_dead_equations_and_constants() {
    let p = Program::parse(
        "{ lambda a:f64[2] = [1.0, 2.0] ; b:f64[2] . let\n    c:f64[2] = add a b\n    d:f64[2] = sin b\n  in (d) }",
    )
    .unwrap();
    let d = p.dce();
    assert_eq!(
        d.to_string(),
        "{ lambda ; a:f64[2] . let\n    b:f64[2] = sin a\n  in (b) }"
    );
}

/// The ill-typed variants of `base()` that `checker_rejects_ill_typed_programs_precisely`
/// builds, each with a word on what is wrong.
fn ill_typed() -> Vec<(&'static str, Program)> {
    let mut v = vec![];
    let mut p = base();
    p.eqns[1].inputs[1] = Atom::Var(Var(2));
    v.push(("use before definition", p));
    let mut p = base();
    p.eqns[1].outs = vec![Var(1)];
    v.push(("defined twice", p));
    let mut p = base();
    p.eqns[0].inputs.push(Atom::Var(Var(0)));
    v.push(("wrong arity", p));
    let mut p = base();
    p.avals[0] = ferrax::Aval::new(vec![3], ferrax::DType::I32);
    v.push(("wrong dtype", p));
    let mut p = base();
    p.outputs = vec![Atom::Var(Var(9))];
    v.push(("undefined output beyond the variables", p));
    let mut p = base();
    p.eqns[0].inputs[0] = Atom::Var(Var(40));
    v.push(("operand beyond the variables", p));
    v
}

#[test]
fn every_program_entry_point_rejects_ill_typed_programs() {
    use ferrax::DType::F64;
    let x = || vec![Array::zeros(&[3], F64).unwrap()];
    for (what, p) in ill_typed() {
        let results: Vec<(&str, bool)> = vec![
            ("eval", p.eval(&x()).is_err()),
            ("jvp_program", ferrax::jvp_program(&p, &[true]).is_err()),
            ("linearize_program", ferrax::linearize_program(&p).is_err()),
            ("vjp_program", ferrax::vjp_program(&p).is_err()),
            ("grad_program", ferrax::grad_program(&p).is_err()),
            (
                "vmap_program",
                ferrax::vmap_program(&p, &[Some(0)], 2).is_err(),
            ),
            (
                "transpose_program",
                ferrax::transpose_program(&p, 0).is_err(),
            ),
            ("check_linear", ferrax::check_linear(&p, 0).is_err()),
            ("optimize", ferrax::optimize(&p).is_err()),
            ("Plan::new", ferrax::Plan::new(&p).is_err()),
            (
                "Program::call",
                p.call(&[ferrax::Tensor::zeros(&[3], F64)]).is_err(),
            ),
            ("partial_eval", ferrax::partial_eval(&p, 1, 1).is_err()),
        ];
        for (entry, rejected) in results {
            assert!(rejected, "{entry} accepted a program with {what}");
        }
    }
}

#[test]
fn random_programs_nest_control_flow_of_every_kind() {
    // The recipes' control steps make scans (forward, reverse, with and without xs, with
    // consts) and conds (two and three branches, literal and computed indices) whose
    // sub-programs hold equations, control flow among them.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strat = arb_program(12);
    let mut kinds = std::collections::BTreeMap::new();
    for _ in 0..300 {
        let p = strat.new_tree(&mut runner).unwrap().current();
        p.check().unwrap();
        // control flow the outputs depend on (the oracles differentiate through it)
        for e in &p.dce().eqns {
            if e.prim.is_control_flow() {
                *kinds.entry("live").or_insert(0) += 1;
            }
        }
        for e in &p.eqns {
            if e.prim.subprograms().iter().all(|s| s.eqns.is_empty()) {
                continue;
            }
            let mut found = vec![];
            if e.prim
                .subprograms()
                .iter()
                .any(|s| s.eqns.iter().any(|e| e.prim.is_control_flow()))
            {
                found.push("nested two deep");
            }
            match &e.prim {
                ferrax::Primitive::Scan {
                    n_consts,
                    reverse,
                    length,
                    ..
                } => {
                    found.push("scan");
                    let n_xs = e.inputs.len() - n_consts - 1;
                    found.push(if n_xs > 0 { "scan xs" } else { "scan no xs" });
                    if *reverse {
                        found.push("scan reverse");
                    }
                    if *n_consts > 0 {
                        found.push("scan consts");
                    }
                    assert!(*length >= 1);
                }
                ferrax::Primitive::Cond { branches } => {
                    found.push(if branches.len() == 2 {
                        "cond 2"
                    } else {
                        "cond 3"
                    });
                    if branches[0] != branches[1] {
                        found.push("cond different branches");
                    }
                    if let Atom::Var(_) = e.inputs[0] {
                        found.push("cond computed index");
                    }
                }
                ferrax::Primitive::Checkpoint { .. } => found.push("checkpoint"),
                ferrax::Primitive::While { checkpoints, .. } => {
                    found.push("while");
                    if *checkpoints > 0 {
                        found.push("while checkpointed");
                    }
                }
                _ => unreachable!(),
            }
            for f in found {
                *kinds.entry(f).or_insert(0) += 1;
            }
        }
    }
    for kind in [
        "scan",
        "scan xs",
        "scan no xs",
        "scan reverse",
        "scan consts",
        "cond 2",
        "cond 3",
        "cond different branches",
        "cond computed index",
        "while",
        "while checkpointed",
        "checkpoint",
        "nested two deep",
        "live",
    ] {
        let n = kinds.get(kind).copied().unwrap_or(0);
        assert!(
            n >= 5,
            "only {n} of `{kind}` in 300 random programs: {kinds:?}"
        );
    }
}
