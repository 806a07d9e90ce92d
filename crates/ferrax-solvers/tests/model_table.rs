//! The formula language and the table reader behind `ferrax fit`: what they accept, and
//! that every malformed input is an error at its line and column.

use ferrax::Tensor;
use ferrax_solvers::{parse_table, Model, SolverError};

fn at(e: SolverError) -> (usize, usize, String) {
    match e {
        SolverError::Syntax {
            line, column, msg, ..
        } => (line, column, msg),
        other => panic!("not a syntax error: {other}"),
    }
}

#[test]
fn precedence_and_powers() {
    let m = Model::parse("y ~ -a^2 + b * x ** 2 / c - 2^3^2").unwrap();
    let cols = ["x".to_string(), "y".to_string()];
    let params = ["a", "b", "c"].map(String::from);
    let b = m.bind(&cols, &params).unwrap();
    let p = Tensor::from_vec(vec![3.0f64, 2.0, 4.0], &[3]);
    let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2]);
    let y = b.eval(&p, &[x.clone(), x], 2).to_vec::<f64>().unwrap();
    // -(3^2) + 2 * x^2 / 4 - 2^9
    assert_eq!(y, vec![-9.0 + 0.5 - 512.0, -9.0 + 2.0 - 512.0]);
}

#[test]
fn errors_name_line_and_column() {
    assert_eq!(at(Model::parse("a * (x +\n  b").unwrap_err()).0, 2);
    let (l, c, msg) = at(Model::parse("a * exq(x)").unwrap_err());
    assert_eq!((l, c), (1, 5));
    assert!(msg.contains("unknown function `exq`"), "{msg}");
    let (l, c, _) = at(Model::parse("a $ x").unwrap_err());
    assert_eq!((l, c), (1, 3));
    let m = Model::parse("# a comment\ny ~ a * exp(-k * t)").unwrap();
    let (l, c, msg) = at(m
        .bind(&["x".into(), "y".into()], &["a".into(), "k".into()])
        .unwrap_err());
    assert_eq!((l, c), (2, 18));
    assert!(msg.contains("unknown variable `t`"), "{msg}");
    let deep = "(".repeat(10_000) + "x";
    assert!(at(Model::parse(&deep).unwrap_err()).2.contains("nested"));
    assert!(Model::parse("1e999 * x").is_err());
    assert!(Model::parse("y ~ ~ x").is_err());
    assert!(Model::parse("").is_err());
}

fn err(text: &str) -> String {
    parse_table(text, "d.csv").unwrap_err().to_string()
}

#[test]
fn headers_separators_and_names() {
    let t = parse_table("# comment\nconc, rate\n0.02, 76\n\n0.06,97\n", "d.csv").unwrap();
    assert_eq!(t.names, vec!["conc", "rate"]);
    assert_eq!(t.columns, vec![vec![0.02, 0.06], vec![76.0, 97.0]]);
    let t = parse_table("1 2 3\n4\t5 6", "d").unwrap();
    assert_eq!(t.names, vec!["x1", "x2", "y"]);
    assert_eq!(t.column("x2"), Some(&[2.0, 5.0][..]));
    assert_eq!(parse_table("1 2\n", "d").unwrap().names, vec!["x", "y"]);
}

#[test]
fn malformed_tables_are_errors_at_their_line_and_column() {
    assert_eq!(
        err("x,y\n1,2\n3\n"),
        "d.csv:3: 1 fields, expected 2 (as the first row)"
    );
    assert_eq!(
        err("x,y\n1,nan\n"),
        "d.csv:2: column 2: `nan` is not a finite number"
    );
    assert_eq!(
        err("x y\n1 2\n1 two\n"),
        "d.csv:3: column 2: `two` is not a number"
    );
    assert!(err("x,x\n1,2").contains("used twice"));
    assert!(err("x,2y\n1,2").contains("not an identifier"));
    assert!(err("").contains("no rows"));
    assert!(err("x,y\n").contains("no rows"));
    assert!(err("1,2\n1,1e999").contains("not a finite number"));
}

#[test]
fn a_model_too_long_to_walk_is_an_error_not_a_stack_overflow() {
    // found in review: a sum of many terms builds a left-leaning tree that every walk
    // recurses through; past 2000 operations the parser refuses it
    let long = format!("y ~ {}", vec!["x"; 100_000].join(" + "));
    let e = Model::parse(&long).unwrap_err().to_string();
    assert!(e.contains("more than 2000 operations"), "{e}");
    let fine = format!("y ~ {}", vec!["a * x"; 500].join(" + "));
    assert!(Model::parse(&fine).is_ok());
}

#[test]
fn a_bound_model_evaluated_on_the_wrong_columns_or_parameters_is_an_error() {
    // found on a second read: `eval` indexed the columns unchecked
    let m = Model::parse("y ~ a * x").unwrap();
    let b = m.bind(&["x".into(), "y".into()], &["a".into()]).unwrap();
    let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2]);
    let p = Tensor::from_vec(vec![3.0f64], &[1]);
    let ok = b
        .eval(&p, &[x.clone(), x.clone()], 2)
        .to_vec::<f64>()
        .unwrap();
    assert_eq!(ok, vec![3.0, 6.0]);
    let e = b
        .eval(&p, std::slice::from_ref(&x), 2)
        .to_vec::<f64>()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("1 columns given, the model is bound to 2 (x, y)"),
        "{e}"
    );
    let two = Tensor::from_vec(vec![3.0f64, 4.0], &[2]);
    let e = b
        .eval(&two, &[x.clone(), x], 2)
        .to_vec::<f64>()
        .unwrap_err()
        .to_string();
    assert!(e.contains("the model has 1 (a)"), "{e}");
}
