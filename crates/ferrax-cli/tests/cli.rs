//! The `ferrax` binary end to end: check, print and eval, and each of their error paths.

use std::path::PathBuf;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ferrax"))
}

fn sample() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/programs/tanh_layer.fx")
}

/// Writes `text` to a fresh file in the temp directory.
fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferrax-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = bin().args(args).output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn check_accepts_the_sample() {
    let f = sample();
    let (code, out, _) = run(&["check", f.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(
        out.ends_with("ok: 3 equation(s), (f64[2], f64[2,2]) -> (f64[], f64[2])\n"),
        "{out}"
    );
}

#[test]
fn eval_prints_json_at_full_precision() {
    let f = sample();
    let (code, out, err) = run(&[
        "eval",
        f.to_str().unwrap(),
        "--inputs",
        "[[1, 2], [[1, 0], [0, 1]]]",
    ]);
    assert_eq!(code, 0, "{err}");
    let t1 = 1f64.tanh();
    let t2 = 2f64.tanh();
    assert_eq!(out.trim(), format!("[{:?}, [{t1:?}, {t2:?}]]", t1 + t2));
}

#[test]
fn eval_reads_inputs_from_a_file() {
    let f = sample();
    let inputs = temp_file("inputs.json", "[[0, 0], [[1, 2], [3, 4]]]");
    let (code, out, _) = run(&[
        "eval",
        f.to_str().unwrap(),
        "--inputs-file",
        inputs.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), "[0.0, [0.0, 0.0]]");
}

#[test]
fn print_is_canonical() {
    let f = temp_file(
        "names.fx",
        "{ lambda ; x:f32[] . let y:f32[] = neg x in (y) }",
    );
    let (code, out, _) = run(&["print", f.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "{ lambda ; a:f32[] . let\n    b:f32[] = neg a\n  in (b) }\n"
    );
}

#[test]
fn malformed_text_reports_file_line_and_column() {
    let f = temp_file(
        "bad.fx",
        "{ lambda ; a:f64[] . let\n    b:f64[] = sin c\n  in (b) }",
    );
    let (code, out, err) = run(&["check", f.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert_eq!(
        err.trim(),
        format!("error: {}:2:19: variable `c` is not defined", f.display())
    );
}

#[test]
fn type_errors_report_the_equation_position() {
    let f = temp_file(
        "ill.fx",
        "{ lambda ; a:f64[2] . let\n    b:f64[3] = sin a\n  in (b) }",
    );
    let (code, _, err) = run(&["check", f.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        format!(
            "error: {}:2:5: declared f64[3] but `sin` of these operands gives f64[2]",
            f.display()
        )
    );
}

#[test]
fn eval_input_errors() {
    let f = sample();
    let p = f.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["eval", p, "--inputs", "[1, 2"],
            "error: inputs: malformed JSON: EOF while parsing a list",
        ),
        (
            &["eval", p, "--inputs", "{}"],
            "error: inputs: expected a JSON list with one entry per program input",
        ),
        (
            &["eval", p, "--inputs", "[[1, 2]]"],
            "error: inputs: the program takes 2 input(s), 1 given",
        ),
        (
            &["eval", p, "--inputs", "[[1, 2], [[1, 0], [0, true]]]"],
            "error: inputs: input 1 (f64[2,2]): element [1][1] should be a f64 number, found true",
        ),
        (
            &["eval", p],
            "the program takes 2 input(s): give them with --inputs",
        ),
        (
            &["eval", "/nonexistent/x.fx", "--inputs", "[]"],
            "error: /nonexistent/x.fx: cannot read",
        ),
    ];
    for (args, fragment) in cases {
        let (code, _, err) = run(args);
        assert_eq!(code, 1, "{args:?}");
        assert!(
            err.contains(fragment),
            "{args:?}: `{err}` lacks `{fragment}`"
        );
    }
}

#[test]
fn usage_errors_exit_with_two() {
    let (code, _, err) = run(&["frobnicate"]);
    assert_eq!(code, 2);
    assert!(err.contains("unrecognized subcommand"), "{err}");
}

#[test]
fn transform_jvp_and_linearize() {
    let f = temp_file(
        "sin.fx",
        "{ lambda ; a:f64[] . let b:f64[] = sin a in (b) }",
    );
    let (code, out, err) = run(&["transform", "jvp", f.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "{ lambda ; a:f64[] b:f64[] . let\n    c:f64[] = sin a\n    d:f64[] = cos a\n    e:f64[] = mul b d\n  in (c, e) }\n"
    );
    let (code, out, _) = run(&["transform", "linearize", f.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "# primal program: 1 output(s), then 1 computed residual(s)\n\
         { lambda ; a:f64[] . let\n    b:f64[] = sin a\n    c:f64[] = cos a\n  in (b, c) }\n\
         # linear program: 1 residual(s) (r0 = residual output 1), then 1 tangent(s)\n\
         # memory: the linear map keeps 8 bytes alive: 8 of computed residuals (added per linearization), 0 forwarded from inputs and outputs (shared with the caller), 0 of constants\n\
         { lambda ; a:f64[] b:f64[] . let\n    c:f64[] = mul b a\n  in (c) }\n"
    );
    // the printed programs read back
    let printed = out
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(printed.contains("mul b a"));
    let (code, _, err) = run(&["transform", "frob", f.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("invalid value 'frob'"), "{err}");
}

#[test]
fn transform_transpose_vjp_and_grad() {
    let lin = temp_file(
        "lin.fx",
        "{ lambda ; r:f64[3] t:f64[3] . let u:f64[3] = mul t r\n v:f64[] = reduce_sum[axes=(0,)] u in (v) }",
    );
    let (code, out, err) = run(&[
        "transform",
        "transpose",
        lin.to_str().unwrap(),
        "--residuals",
        "1",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "{ lambda ; a:f64[3] b:f64[] . let\n    c:f64[3] = broadcast_in_dim[shape=(3,) broadcast_dimensions=()] b\n    d:f64[3] = mul c a\n  in (d) }\n"
    );
    // without --residuals the program is not linear in all its inputs: the error gives the
    // file, line and column of the equation
    let (code, _, err) = run(&["transform", "transpose", lin.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("lin.fx:1:36: not linear: `mul` multiplies two linear values"),
        "{err}"
    );
    assert!(!err.contains("(at <program text>"), "{err}");

    let f = temp_file(
        "sumsin.fx",
        "{ lambda ; a:f64[2] . let b:f64[2] = sin a\n c:f64[] = reduce_sum[axes=(0,)] b in (c) }",
    );
    let (code, out, err) = run(&["transform", "vjp", f.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("# transposed linear program: 1 residual(s) (r0 = residual output 1), then 1 cotangent(s)"), "{out}");
    let (code, out, err) = run(&["transform", "grad", f.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "{ lambda ; a:f64[2] . let\n    b:f64[2] = sin a\n    c:f64[2] = cos a\n    d:f64[] = reduce_sum[axes=(0,)] b\n    e:f64[2] = broadcast_in_dim[shape=(2,) broadcast_dimensions=()] 1.0:f64\n    f:f64[2] = mul e c\n  in (d, f) }\n"
    );
    // grad of a non-scalar program is refused
    let (code, _, err) = run(&["transform", "grad", sample().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("the program must have one float scalar output, it has (f64[], f64[2])"),
        "{err}"
    );
}

#[test]
fn transform_vmap() {
    let f = sample();
    let p = f.to_str().unwrap();
    let (code, out, err) = run(&[
        "transform",
        "vmap",
        p,
        "--in-axes",
        "0,none",
        "--axis-size",
        "4",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("{ lambda ; a:f64[4,2] b:f64[2,2] . let\n"),
        "{out}"
    );
    assert!(
        out.contains(
            "dot_general[lhs_contracting=(1,) rhs_contracting=(1,) lhs_batch=() rhs_batch=()] b a"
        ),
        "{out}"
    );
    let cases: &[(&[&str], &str)] = &[
        (
            &["transform", "vmap", p, "--in-axes", "0,none"],
            "give --axis-size",
        ),
        (
            &["transform", "vmap", p, "--in-axes", "0", "--axis-size", "2"],
            "--in-axes has 1 entries but the program has 2 input(s)",
        ),
        (
            &[
                "transform",
                "vmap",
                p,
                "--in-axes",
                "0,x",
                "--axis-size",
                "2",
            ],
            "--in-axes entry 1 is `x`",
        ),
        (
            &[
                "transform",
                "vmap",
                p,
                "--in-axes",
                "5,none",
                "--axis-size",
                "2",
            ],
            "axis 5 is out of range",
        ),
    ];
    for (args, fragment) in cases {
        let (code, _, err) = run(args);
        assert_eq!(code, 1, "{args:?}");
        assert!(
            err.contains(fragment),
            "{args:?}: `{err}` lacks `{fragment}`"
        );
    }
}

#[test]
fn nist_json_table_and_errors() {
    let (code, out, err) = run(&["nist", "BoxBOD", "--json"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2);
    for (i, line) in lines.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["problem"], "BoxBOD");
        assert_eq!(v["start"], i as u64 + 1);
        let p = v["params"].as_array().unwrap();
        assert!((p[0].as_f64().unwrap() - 213.80940889).abs() < 1e-6);
        assert!((v["rss"].as_f64().unwrap() - 1168.0088766).abs() < 1e-6);
        assert!(v["evaluations"].as_u64().unwrap() > 0);
        assert!(["ftol", "xtol", "gtol"].contains(&v["termination"].as_str().unwrap()));
    }
    let (code, out, _) = run(&["nist", "Misra1a", "--start", "2"]);
    assert_eq!(code, 0);
    assert!(out.contains("| Misra1a | Lower | 2 |"), "{out}");
    assert!(
        out.ends_with("1 runs: LRE >= 6 in 1, median LRE 10.1, average 10.1, smallest 10.1\n")
            || out.contains("1 runs: LRE >= 6 in 1"),
        "{out}"
    );
    let (code, _, err) = run(&["nist", "Misra1a", "--start", "1", "--progress"]);
    assert_eq!(code, 0);
    assert!(err.contains("Misra1a start 1 iteration    0: rss"), "{err}");
    let (code, _, err) = run(&["nist"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("name one or more problems, or give --all"),
        "{err}"
    );
    let (code, _, err) = run(&["nist", "Misra1a", "--start", "3"]);
    assert_eq!(code, 1);
    assert!(err.contains("--start must be 1 or 2, got 3"));
    let dir = std::env::temp_dir().join(format!("ferrax-nist-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Misra1a.dat"), "not a NIST file\n").unwrap();
    let (code, _, err) = run(&["nist", "Misra1a", "--data", dir.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("Misra1a.dat:0: the header does not give a valid line range"),
        "{err}"
    );
}

#[test]
fn nist_names_unknown_problems_and_ignores_case() {
    // an unknown name is said to be unknown, with the names there are (it was
    // "Nope.dat:0: cannot read")
    let (code, out, err) = run(&["nist", "Nope"]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(
        err.starts_with("error: unknown problem `Nope` (problems: Misra1a, Chwirut2,"),
        "{err}"
    );
    assert!(err.contains("BoxBOD") && err.contains("Bennett5)"), "{err}");
    // ... before any fit runs: a good name ahead of a bad one gives no output
    let (code, out, err) = run(&["nist", "Misra1a", "Nope", "--start", "1"]);
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    // names in any case
    let (code, out, err) = run(&["nist", "boxbod", "--json", "--start", "1"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["problem"], "BoxBOD");
    // --all with a name was silently the same as --all: a usage error now
    let (code, out, err) = run(&["nist", "--all", "BoxBOD"]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(err.contains("'--all' cannot be used with"), "{err}");
}

#[test]
fn vmap_accepts_negative_in_axes() {
    // tanh_layer: a:f64[2] b:f64[2,2]; -1 is the last axis of the batched input
    let f = sample();
    let p = f.to_str().unwrap();
    let (code, out, err) = run(&[
        "transform",
        "vmap",
        p,
        "--in-axes",
        "-1,none",
        "--axis-size",
        "3",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("{ lambda ; a:f64[2,3] b:f64[2,2] . let\n"),
        "{out}"
    );
    // the same program as with the positive axis
    let (_, positive, _) = run(&[
        "transform",
        "vmap",
        p,
        "--in-axes",
        "1,none",
        "--axis-size",
        "3",
    ]);
    assert_eq!(out, positive);
    let (code, out, _) = run(&[
        "transform",
        "vmap",
        p,
        "--in-axes",
        "-2,-3",
        "--axis-size",
        "3",
    ]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("{ lambda ; a:f64[3,2] b:f64[3,2,2] . let\n"),
        "{out}"
    );
    // out of range: the error names the input and its batched rank
    for (axes, msg) in [
        (
            "-3,none",
            "--in-axes entry 0: axis -3 is out of range for input 0 (f64[2]), whose batched rank is 2 (axes -2 to 1)",
        ),
        (
            "0,-4",
            "--in-axes entry 1: axis -4 is out of range for input 1 (f64[2,2]), whose batched rank is 3 (axes -3 to 2)",
        ),
        (
            "0,-9223372036854775808",
            "axis -9223372036854775808 is out of range for input 1",
        ),
        ("0,99999999999999999999", "--in-axes entry 1 is `99999999999999999999`"),
    ] {
        let (code, _, err) = run(&[
            "transform",
            "vmap",
            p,
            "--in-axes",
            axes,
            "--axis-size",
            "3",
        ]);
        assert_eq!(code, 1, "{axes}");
        assert!(err.contains(msg), "{axes}: `{err}` lacks `{msg}`");
    }
}

#[test]
fn vmap_refuses_axis_sizes_whose_shapes_overflow() {
    let f = sample();
    let p = f.to_str().unwrap();
    let (code, out, err) = run(&[
        "transform",
        "vmap",
        p,
        "--axis-size",
        "18446744073709551615",
    ]);
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(
        err.contains("--axis-size 18446744073709551615: the batched input 0 would be f64[18446744073709551615,2], whose element count or byte size overflows"),
        "{err}"
    );
    // the element count fits but the bytes do not (2^62 f64 values)
    let (code, _, err) = run(&[
        "transform",
        "vmap",
        p,
        "--in-axes",
        "none,none",
        "--axis-size",
        "4611686018427387904",
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("the batched output 0 would be f64[4611686018427387904]"),
        "{err}"
    );
    // an unmapped input does not count, a mapped one does
    let big = temp_file(
        "big_vmap.fx",
        "{ lambda ; a:f64[1099511627776] b:f64[] . let c:f64[] = neg b in (c) }",
    );
    let (code, out, err) = run(&[
        "transform",
        "vmap",
        big.to_str().unwrap(),
        "--in-axes",
        "none,0",
        "--axis-size",
        "8388608",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("{ lambda ; a:f64[1099511627776] b:f64[8388608] ."),
        "{out}"
    );
    let (code, _, err) = run(&[
        "transform",
        "vmap",
        big.to_str().unwrap(),
        "--in-axes",
        "0,0",
        "--axis-size",
        "8388608",
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("the batched input 0 would be f64[8388608,1099511627776]"),
        "{err}"
    );
}

/// A program with no inputs whose one output, `f64[n]` of ones, prints as about `5n` bytes
/// of JSON: more than a pipe holds, so the writer meets the closed pipe.
fn ones_program(n: usize) -> PathBuf {
    temp_file(
        &format!("ones{n}.fx"),
        &format!(
            "{{ lambda ; . let a:f64[{n}] = broadcast_in_dim[shape=({n},) broadcast_dimensions=()] 1.0:f64 in (a) }}"
        ),
    )
}

/// Runs the binary with standard output a pipe that is closed after its first 10 bytes
/// (`| head -c 10`); returns the exit status and standard error.
fn run_into_closed_pipe(args: &[&str]) -> (Option<i32>, String) {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = bin()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 10];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    // `println!` panicked here: "failed printing to stdout: Broken pipe", status 101
    let ones = ones_program(200_000);
    let (code, err) = run_into_closed_pipe(&["eval", ones.to_str().unwrap()]);
    assert_eq!((code, err.as_str()), (Some(0), ""));
    // `ferrax print f.fx | head -c 10`: a long program text (one equation, 100,000 dims)
    let dims = vec!["1"; 100_000].join(",");
    let long = temp_file(
        "long.fx",
        &format!(
            "{{ lambda ; . let a:f64[{dims}] = broadcast_in_dim[shape=({dims}) broadcast_dimensions=()] 1.0:f64 in (a) }}"
        ),
    );
    for cmd in ["print", "check", "eval"] {
        let (code, err) = run_into_closed_pipe(&[cmd, long.to_str().unwrap()]);
        assert_eq!((code, err.as_str()), (Some(0), ""), "{cmd}");
    }
    let (code, err) = run_into_closed_pipe(&["--help"]);
    assert_eq!((code, err.as_str()), (Some(0), ""));
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_is_an_error_not_a_panic() {
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    let f = sample();
    let ones = ones_program(10);
    for args in [
        vec!["print", f.to_str().unwrap()],
        vec!["check", f.to_str().unwrap()],
        vec!["eval", ones.to_str().unwrap()],
        vec!["nist", "Misra1a", "--start", "1", "--json"],
        vec!["--help"],
        vec!["--version"],
    ] {
        let out = bin().args(&args).stdout(full()).output().unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(
            err, "error: cannot write the output: No space left on device (os error 28)\n",
            "{args:?}"
        );
    }
    // an error message that cannot be written still gives the error status, not a panic
    let out = bin()
        .args(["nist", "Nope"])
        .stderr(full())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = bin()
        .args(["nist", "Misra1a", "--start", "1", "--progress"])
        .stderr(full())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn deep_outputs_are_written_without_recursion() {
    // rank 100,000: one stack frame per dimension overflowed the stack (SIGSEGV)
    let dims = vec!["1"; 100_000].join(",");
    let long = temp_file(
        "deep_out.fx",
        &format!(
            "{{ lambda ; . let a:f64[{dims}] = broadcast_in_dim[shape=({dims}) broadcast_dimensions=()] 2.5:f64 in (a) }}"
        ),
    );
    let (code, out, err) = run(&["eval", long.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let open = "[".repeat(100_001);
    let close = "]".repeat(100_001);
    assert_eq!(out, format!("{open}2.5{close}\n"));
}

#[test]
fn outputs_of_every_shape_print_as_nested_lists() {
    let f = temp_file(
        "shapes.fx",
        "{ lambda ; . let a:f64[0,3] = broadcast_in_dim[shape=(0,3) broadcast_dimensions=()] 1.0:f64\n\
         b:f32[2,0] = broadcast_in_dim[shape=(2,0) broadcast_dimensions=()] 1.0:f32\n\
         c:i32[2,2] = broadcast_in_dim[shape=(2,2) broadcast_dimensions=()] 7:i32\n\
         d:bool[] = lt 1.0:f64 2.0:f64\n\
         e:f32[3] = broadcast_in_dim[shape=(3,) broadcast_dimensions=()] 0.1:f32\n\
         g:f64[2,1,2] = broadcast_in_dim[shape=(2,1,2) broadcast_dimensions=()] -0.0:f64\n\
         in (a, b, c, d, e, g) }",
    );
    let (code, out, err) = run(&["eval", f.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "[[], [[], []], [[7, 7], [7, 7]], true, [0.1, 0.1, 0.1], [[[-0.0, -0.0]], [[-0.0, -0.0]]]]\n"
    );
}

#[test]
fn bad_input_files_and_values_are_errors() {
    let dir = std::env::temp_dir().join(format!("ferrax-cli-dir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.to_str().unwrap();
    let empty = temp_file("empty.fx", "");
    let non_utf8 = dir.join("latin1.fx");
    std::fs::write(&non_utf8, b"{ lambda ; a:f64[] . let in (a) } \xe9").unwrap();
    let scalar = temp_file("scalar.fx", "{ lambda ; a:f32[] . let in (a) }");
    let s = scalar.to_str().unwrap();
    let ints = temp_file("ints.fx", "{ lambda ; a:i32[2] b:i64[] . let in (a, b) }");
    let i = ints.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["check", d], "cannot read: Is a directory"),
        (&["print", d], "cannot read: Is a directory"),
        (&["check", empty.to_str().unwrap()], ":1:1: expected `{`"),
        (
            &["check", non_utf8.to_str().unwrap()],
            "cannot read: stream did not contain valid UTF-8",
        ),
        (
            &["eval", s, "--inputs-file", d],
            "cannot read: Is a directory",
        ),
        (&["eval", s, "--inputs", ""], "malformed JSON"),
        (
            &["eval", s, "--inputs", "[1e400]"],
            "malformed JSON: number out of range",
        ),
        // a finite number beyond f32 is not silently infinity
        (
            &["eval", s, "--inputs", "[1e39]"],
            "should be a f32 number, found 1e+39, beyond the range of f32",
        ),
        (
            &["eval", s, "--inputs", "[[1]]"],
            "should be a f32 number, found [1]",
        ),
        (
            &["eval", s, "--inputs", "[null]"],
            "should be a f32 number, found null",
        ),
        (
            &["eval", s, "--inputs", "[\"1\"]"],
            "should be a f32 number, found \"1\"",
        ),
        (
            &["eval", i, "--inputs", "[[1, 2147483648], 0]"],
            "element [1] should be a i32 number, found 2147483648",
        ),
        (
            &["eval", i, "--inputs", "[[1, 2], 9223372036854775808]"],
            "should be a i64 number, found 9223372036854775808",
        ),
        (
            &["eval", i, "--inputs", "[[1, 2], 1.5]"],
            "should be a i64 number, found 1.5",
        ),
        (
            &["eval", i, "--inputs", "[[1, [2]], 1]"],
            "element [1] should be a i32 number, found [2]",
        ),
        (
            &["eval", i, "--inputs", "[[[1], 2], 1]"],
            "element [0] should be a i32 number",
        ),
        (
            &["eval", i, "--inputs", "[{\"a\": 1}, 1]"],
            "the value should be a list of 2",
        ),
    ];
    for (args, fragment) in cases {
        let (code, out, err) = run(args);
        assert_eq!((code, out.as_str()), (1, ""), "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert!(
            err.contains(fragment),
            "{args:?}: `{err}` lacks `{fragment}`"
        );
    }
    // deeply nested JSON is refused by the JSON reader, not a stack overflow
    let deep = temp_file(
        "deep.json",
        &format!("[{}1{}]", "[".repeat(100_000), "]".repeat(100_000)),
    );
    let (code, _, err) = run(&["eval", s, "--inputs-file", deep.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("recursion limit exceeded"), "{err}");
    // a long value where a number belongs is shown cut short
    let long = format!("[[{}]]", vec!["1"; 10_000].join(","));
    let (code, _, err) = run(&["eval", s, "--inputs", &long]);
    assert_eq!(code, 1);
    assert!(err.len() < 200, "{err}");
    // huge numbers in options are usage errors or named errors
    let (code, _, _) = run(&[
        "transform",
        "vmap",
        s,
        "--axis-size",
        "18446744073709551616",
    ]);
    assert_eq!(code, 2);
    let (code, _, err) = run(&[
        "transform",
        "transpose",
        s,
        "--residuals",
        "18446744073709551615",
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("18446744073709551615 residuals declared"),
        "{err}"
    );
}

/// Issue 10's CLI reproductions of core bugs: a literal zero in a linear position (the
/// transposer once panicked), and a product declared huge over empty operands (once a
/// segfault in gemm): each is an answer or an error, never a signal.
#[test]
fn zero_coefficients_transpose_and_huge_declared_shapes_are_errors() {
    let f = temp_file(
        "mulzero.fx",
        "{ lambda ; a:f64[] . let b:f64[] = mul a 0.0:f64 in (b) }",
    );
    for t in ["vjp", "grad", "transpose"] {
        let (code, out, err) = run(&["transform", t, f.to_str().unwrap()]);
        assert_eq!(code, 0, "{t}: {err}");
        assert!(out.contains("lambda"), "{t}: {out}");
    }
    let g = temp_file(
        "hugedot.fx",
        "{ lambda ; a:f64[4294967296,4294967296,0] b:f64[0,3] . let c:f64[4294967296,4294967296,3] = dot_general[lhs_contracting=(2,) rhs_contracting=(0,) lhs_batch=() rhs_batch=()] a b in (c) }",
    );
    let g = g.to_str().unwrap();
    for args in [vec!["check", g], vec!["eval", g, "--inputs", "[[], []]"]] {
        let (code, _, err) = run(&args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains("too large"), "{args:?}: {err}");
    }
}

/// An example program of `examples/programs`.
fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/programs")
        .join(name)
}

/// The programs in a transform's output: the texts between its `#` comment lines.
fn printed_programs(out: &str) -> Vec<String> {
    let mut programs = vec![];
    let mut cur = String::new();
    for line in out.lines() {
        if line.starts_with('#') {
            if !cur.trim().is_empty() {
                programs.push(std::mem::take(&mut cur));
            }
            cur.clear();
        } else {
            cur.push_str(line);
            cur.push('\n');
        }
    }
    if !cur.trim().is_empty() {
        programs.push(cur);
    }
    programs
        .into_iter()
        .map(|p| p.trim_end().to_string())
        .collect()
}

/// Every program a transform printed reads back and prints as itself (it is canonical).
fn assert_parse_back(what: &str, out: &str, want: usize) -> Vec<ferrax::Program> {
    let programs = printed_programs(out);
    assert_eq!(programs.len(), want, "{what}: {out}");
    programs
        .iter()
        .map(|text| {
            let p = ferrax::Program::parse(text).unwrap_or_else(|e| panic!("{what}: {e}\n{text}"));
            assert_eq!(&p.to_string(), text, "{what}");
            p
        })
        .collect()
}

#[test]
fn control_flow_examples_check_print_and_eval() {
    for (name, eqns, sig) in [
        (
            "rnn_scan.fx",
            5,
            "(f64[3], f64[4,2], f64[3,3], f64[3,2]) -> (f64[])",
        ),
        ("piecewise_cond.fx", 3, "(f64[], f64[]) -> (f64[])"),
    ] {
        let f = example(name);
        let f = f.to_str().unwrap();
        let (code, out, err) = run(&["check", f]);
        assert_eq!(code, 0, "{err}");
        assert!(
            out.ends_with(&format!("ok: {eqns} equation(s), {sig}\n")),
            "{out}"
        );
        // the files are canonical: printing gives them back without their comments
        let (code, out, _) = run(&["print", f]);
        assert_eq!(code, 0);
        let text = std::fs::read_to_string(f).unwrap();
        let body: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(out.trim_end(), body.join("\n"));
    }
    // each piece of the piecewise function, and the clamped ends
    let f = example("piecewise_cond.fx");
    for (x, want) in [
        (-1e300, 2.0 * (-1e300f64).sin()),
        (0.5, 2.0 * 0.5f64.sin()),
        (1.5, 2.25),
        (3.0, 7.0),
        (1e300, 2e300 + 1.0),
    ] {
        let inputs = format!("[{x:?}, 2.0]");
        let (code, out, err) = run(&["eval", f.to_str().unwrap(), "--inputs", &inputs]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(out.trim(), format!("[{want:?}]"), "x = {x}");
    }
    // the RNN with zero weights keeps h = tanh(0) = 0 after the first step: the loss is 0
    let f = example("rnn_scan.fx");
    let (code, out, err) = run(&[
        "eval",
        f.to_str().unwrap(),
        "--inputs",
        "[[1, 2, 3], [[1, 1], [1, 1], [1, 1], [1, 1]], [[0,0,0],[0,0,0],[0,0,0]], [[0,0],[0,0],[0,0]]]",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "[0.0]");
}

#[test]
fn every_transformation_works_on_the_control_flow_examples() {
    for name in ["rnn_scan.fx", "piecewise_cond.fx"] {
        let f = example(name);
        let f = f.to_str().unwrap();
        for (t, n_programs) in [("jvp", 1), ("linearize", 2), ("vjp", 2), ("grad", 1)] {
            let (code, out, err) = run(&["transform", t, f]);
            assert_eq!(code, 0, "{name} {t}: {err}");
            let ps = assert_parse_back(&format!("{name} {t}"), &out, n_programs);
            let kept = if name == "rnn_scan.fx" {
                "scan["
            } else {
                "cond["
            };
            assert!(out.contains(kept), "{name} {t}: control flow stays: {out}");
            if t == "linearize" {
                // the linear program transposes, given its residual count
                let header = out
                    .lines()
                    .find(|l| l.starts_with("# linear program"))
                    .unwrap();
                let n_res: usize = header
                    .trim_start_matches("# linear program: ")
                    .split(' ')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                let lin = temp_file(&format!("lin-{name}"), &ps[1].to_string());
                let (code, out, err) = run(&[
                    "transform",
                    "transpose",
                    lin.to_str().unwrap(),
                    "--residuals",
                    &n_res.to_string(),
                ]);
                assert_eq!(code, 0, "{name} transpose: {err}");
                assert_parse_back(&format!("{name} transpose"), &out, 1);
            }
        }
        let (code, out, err) = run(&["transform", "vmap", f, "--axis-size", "3"]);
        assert_eq!(code, 0, "{name} vmap: {err}");
        let ps = assert_parse_back(&format!("{name} vmap"), &out, 1);
        assert!(ps[0].in_avals().iter().all(|a| a.shape.first() == Some(&3)));
    }
}

#[test]
fn the_gradient_of_the_piecewise_example_is_each_pieces_derivative() {
    let f = example("piecewise_cond.fx");
    let (code, out, err) = run(&["transform", "grad", f.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let g = temp_file("piecewise-grad.fx", &out);
    // (value, d/dx, d/dw) at w = 2
    for (x, want) in [
        (0.5, [2.0 * 0.5f64.sin(), 2.0 * 0.5f64.cos(), 0.5f64.sin()]),
        (1.5, [2.25, 3.0, 0.0]),
        (3.0, [7.0, 2.0, 3.0]),
    ] {
        let inputs = format!("[{x:?}, 2.0]");
        let (code, out, err) = run(&["eval", g.to_str().unwrap(), "--inputs", &inputs]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            out.trim(),
            format!("[{:?}, {:?}, {:?}]", want[0], want[1], want[2]),
            "x = {x}"
        );
    }
}

#[test]
fn the_gradient_of_the_rnn_example_matches_finite_differences() {
    use ferrax::{Array, Program};
    let f = example("rnn_scan.fx");
    let p = Program::parse(&std::fs::read_to_string(&f).unwrap()).unwrap();
    let (code, out, err) = run(&["transform", "grad", f.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let g = Program::parse(&out).unwrap();
    // inputs: h0:f64[3], xs:f64[4,2], W:f64[3,3], U:f64[3,2], deterministic and small
    let shapes: [&[usize]; 4] = [&[3], &[4, 2], &[3, 3], &[3, 2]];
    let mut k = 0.0f64;
    let vals: Vec<Vec<f64>> = shapes
        .iter()
        .map(|s| {
            (0..s.iter().product::<usize>())
                .map(|_| {
                    k += 1.0;
                    (k * 0.7).sin() * 0.5
                })
                .collect()
        })
        .collect();
    let arrays = |vals: &[Vec<f64>]| -> Vec<Array> {
        vals.iter()
            .zip(shapes)
            .map(|(v, s)| Array::from_slice(v).reshaped(s).unwrap())
            .collect()
    };
    let grads = g.eval(&arrays(&vals)).unwrap();
    let loss = |vals: &[Vec<f64>]| p.eval(&arrays(vals)).unwrap()[0].item().unwrap().to_f64();
    assert_eq!(grads[0].item().unwrap().to_f64(), loss(&vals));
    let h = 1e-6;
    for (i, v) in vals.iter().enumerate() {
        let gi = grads[1 + i].to_vec::<f64>().unwrap();
        assert_eq!(gi.len(), v.len());
        for j in 0..v.len() {
            let mut up = vals.clone();
            up[i][j] += h;
            let mut down = vals.clone();
            down[i][j] -= h;
            let fd = (loss(&up) - loss(&down)) / (2.0 * h);
            assert!(
                (fd - gi[j]).abs() <= 1e-6 * (1.0 + fd.abs()),
                "input {i}, element {j}: finite difference {fd}, grad {}",
                gi[j]
            );
        }
    }
}

/// A while loop from text (issue 13, first part): it checks, evaluates with a trip count
/// that depends on the input, and jvp and vmap keep it one loop.
#[test]
fn the_while_example_checks_evaluates_and_transforms() {
    let f = example("newton_while.fx");
    let f = f.to_str().unwrap();
    let (code, out, err) = run(&["check", f]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.ends_with("ok: 1 equation(s), (f64[]) -> (f64[], i32[])\n"),
        "{out}"
    );
    let (code, out, err) = run(&["eval", f, "--inputs", "[2.0]"]);
    assert_eq!(code, 0, "{err}");
    let root: Vec<f64> = out
        .trim()
        .trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    assert!((root[0] - 2f64.sqrt()).abs() < 1e-12, "{out}");
    let (_, out_big, _) = run(&["eval", f, "--inputs", "[1e6]"]);
    let steps = |o: &str| -> f64 {
        o.trim()
            .trim_end_matches(']')
            .rsplit(',')
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    assert!(steps(&out_big) > steps(&out), "{out} {out_big}");
    let (code, out, err) = run(&["transform", "jvp", f]);
    assert_eq!(code, 0, "{err}");
    let ps = assert_parse_back("while jvp", &out, 1);
    assert_eq!(ps[0].count_prim("while"), 1);
    let (code, out, err) = run(&["transform", "vmap", f, "--axis-size", "3"]);
    assert_eq!(code, 0, "{err}");
    assert_parse_back("while vmap", &out, 1);
    // reverse mode: a counting primal loop, and a while_linear run backwards
    let (code, out, err) = run(&["transform", "vjp", f]);
    assert_eq!(code, 0, "{err}");
    let ps = assert_parse_back("while vjp", &out, 2);
    assert_eq!(ps[0].count_prim("while"), 1, "{out}");
    assert_eq!(ps[1].count_prim("while_linear"), 1, "{out}");
    assert!(out.contains("transposed=true"), "{out}");
    let (code, out, err) = run(&["transform", "linearize", f]);
    assert_eq!(code, 0, "{err}");
    let ps = assert_parse_back("while linearize", &out, 2);
    assert!(out.contains("transposed=false"), "{out}");
    assert_eq!(ps[1].count_prim("while_linear"), 1, "{out}");
}
