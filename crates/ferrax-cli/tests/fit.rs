//! `ferrax fit` end to end: a NIST problem to its certified values, a classic data set to
//! its published estimates, the files it writes, and every bad input it must refuse
//! without writing anything.

use std::path::{Path, PathBuf};
use std::process::Command;

fn data(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// A fresh folder for one test's files.
fn folder(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferrax-fit-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ferrax"))
        .arg("fit")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Correct significant digits of `got` against `want` (NIST's log relative error).
fn lre(got: f64, want: f64) -> f64 {
    -((got - want).abs() / want.abs()).log10()
}

#[test]
fn misra1a_to_its_certified_values_with_a_plot_and_json() {
    let dir = folder("misra1a");
    let (png, svg, out_json) = (
        dir.join("fit.png"),
        dir.join("fit.svg"),
        dir.join("fit.json"),
    );
    for (plot, method) in [(&png, "lm"), (&svg, "gn-cg")] {
        let (code, out, err) = run(&[
            &data("misra1a.model"),
            &data("misra1a.csv"),
            "--start",
            "b1=500,b2=1e-4",
            "--method",
            method,
            "--plot",
            plot.to_str().unwrap(),
            "--json",
            out_json.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("converged"), "{out}");
        assert!(out.contains("95% confidence interval"), "{out}");
        let j = json(&out_json);
        let p = &j["parameters"];
        // NIST's certified values: estimates and standard deviations, RSS, residual SD
        let digits = if method == "lm" { 8.0 } else { 6.0 };
        for (k, (est, sd)) in [
            (2.3894212918E+02, 2.7070075241E+00),
            (5.5015643181E-04, 7.2668688436E-06),
        ]
        .into_iter()
        .enumerate()
        {
            let e = p[k]["estimate"].as_f64().unwrap();
            let s = p[k]["std_error"].as_f64().unwrap();
            assert!(lre(e, est) >= digits, "{method}: {e} vs {est}");
            assert!(lre(s, sd) >= digits - 2.0, "{method}: {s} vs {sd}");
            // the interval is the estimate ± t(0.975, 12) · SE, t = 2.178813...
            let lo = p[k]["ci_low"].as_f64().unwrap();
            assert!(lre(e - lo, 2.178812829663418 * s) >= 9.0, "{lo}");
        }
        assert!(lre(j["rss"].as_f64().unwrap(), 1.2455138894E-01) >= digits);
        assert!(
            lre(
                j["residual_standard_error"].as_f64().unwrap(),
                1.0187876330E-01
            ) >= digits
        );
        assert_eq!(j["dof"], 12);
    }
    let png = std::fs::read(&png).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(png.len() > 10_000, "a drawn picture, not an empty one");
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("b1 * (1 - exp(-b2 * x))"));
    assert!(svg.contains("residual") && svg.contains("fitted model") && svg.contains("<circle"));
    // no temporary files left beside the outputs
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 3, "{left:?}");
}

#[test]
fn puromycin_to_its_published_estimates() {
    // R: nls(rate ~ Vm * conc / (K + conc), Puromycin, subset = state == "treated"):
    // Vm 212.7 (6.947), K 0.06412 (0.008281), residual standard error 10.93 on 10 df
    let (code, out, err) = run(&[
        "rate ~ Vm * conc / (K + conc)",
        &data("puromycin.csv"),
        "--start",
        "Vm=200,K=0.1",
    ]);
    assert_eq!(code, 0, "{err}");
    let row = |name: &str| -> Vec<f64> {
        let line = out.lines().find(|l| l.starts_with(name)).unwrap();
        line.split(|c: char| c.is_whitespace() || c == '[' || c == ']' || c == ',')
            .filter_map(|w| w.parse().ok())
            .collect()
    };
    let (vm, k) = (row("Vm"), row("K "));
    assert!(
        lre(vm[0], 212.68) > 4.0 && lre(vm[1], 6.947) > 3.0,
        "{vm:?}"
    );
    assert!(
        lre(k[0], 0.06412) > 3.5 && lre(k[1], 0.008281) > 3.0,
        "{k:?}"
    );
    assert!(out.contains("1.0933658"), "{out}");
}

#[test]
fn robust_losses_and_bounds_from_the_command_line() {
    let dir = folder("robust");
    // a line with three outliers; SciPy's least_squares(loss='cauchy', f_scale=1) gives
    // a = 1.005845783826826, b = 0.4987562690195116
    let mut text = String::from("x,y\n");
    for i in 0..20 {
        let x = f64::from(i);
        let mut y = 1.0 + 0.5 * x + 0.1 * (3.0 * x).sin();
        y += match i {
            3 => 8.0,
            11 => -10.0,
            17 => 15.0,
            _ => 0.0,
        };
        text += &format!("{x},{y:?}\n");
    }
    let csv = dir.join("line.csv");
    std::fs::write(&csv, text).unwrap();
    let out_json = dir.join("fit.json");
    let (code, out, err) = run(&[
        "y ~ a + b * x",
        csv.to_str().unwrap(),
        "--start",
        "a=0,b=0",
        "--loss",
        "cauchy",
        "--json",
        out_json.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("loss:  cauchy"), "{out}");
    let j = json(&out_json);
    assert_eq!(j["loss"], "cauchy");
    let a = j["parameters"][0]["estimate"].as_f64().unwrap();
    let b = j["parameters"][1]["estimate"].as_f64().unwrap();
    assert!((a - 1.005845783826826).abs() < 1e-7 && (b - 0.4987562690195116).abs() < 1e-7);
    assert!((j["cost"].as_f64().unwrap() - 7.150450673822825).abs() < 1e-8);
    // a bound that holds: b1 ≤ 200 on Misra1a (SciPy's TRF: b1 = 200, b2 = 6.7905937e-4)
    let (code, out, err) = run(&[
        &data("misra1a.model"),
        &data("misra1a.csv"),
        "--start",
        "b1=150,b2=1e-3",
        "--bounds",
        "b1=0:200,b2=0:",
        "--json",
        out_json.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("bounds: b1=0:200,b2=0:"), "{out}");
    let p = &json(&out_json)["parameters"];
    let b1 = p[0]["estimate"].as_f64().unwrap();
    assert!(b1 <= 200.0 && b1 > 200.0 - 1e-6, "{b1}");
    assert!((p[1]["estimate"].as_f64().unwrap() - 6.790593673641461e-4).abs() < 1e-10);
    // and their bad input
    for (flag, value, want) in [
        ("--loss", "l3", "unknown loss `l3`"),
        ("--loss", "huber:0", "scale must be a finite number > 0"),
        ("--loss", "huber:x", "the scale `x` is not a number"),
        (
            "--bounds",
            "c=0:1",
            "`c` is not a parameter given in --start",
        ),
        ("--bounds", "b1=5:1", "hold no number"),
        ("--bounds", "b1=600:700", "outside its bounds"),
        ("--bounds", "b1=0", "is not NAME=LO:HI"),
        ("--bounds", "b1=0:1,b1=0:2", "bounded twice"),
    ] {
        let (code, _, err) = run(&[
            &data("misra1a.model"),
            &data("misra1a.csv"),
            "--start",
            "b1=500,b2=1e-4",
            flag,
            value,
        ]);
        assert!(code == 1 && err.contains(want), "{flag} {value}: {err}");
    }
}

#[test]
fn bad_input_is_a_clear_error_and_nothing_is_written() {
    let dir = folder("bad");
    let csv = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    };
    let good = csv("good.csv", "x,y\n1,2.1\n2,3.9\n3,6.2\n4,7.8\n");
    let plot = dir.join("out.png");
    let out_json = dir.join("out.json");
    std::fs::write(&out_json, "previous").unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["y ~ a * (x +".into(), good.clone(), "a=1".into()],
            "model:1:13: expected a value",
        ),
        (
            vec!["y ~ a * exq(x)".into(), good.clone(), "a=1".into()],
            "model:1:9: unknown function `exq`",
        ),
        (
            vec!["y ~ a * t".into(), good.clone(), "a=1".into()],
            "model:1:9: unknown variable `t`",
        ),
        (
            vec!["y ~ a * x".into(), good.clone(), "a=1,b=2".into()],
            "does not depend on the parameter `b`",
        ),
        (
            vec!["y ~ a * x + 0 * b".into(), good.clone(), "a=1,b=2".into()],
            "does not depend on the parameter `b` at its starting value",
        ),
        (
            vec!["z ~ a * x".into(), good.clone(), "a=1".into()],
            "the response `z` is not a column",
        ),
        (
            vec![
                "y ~ a * x".into(),
                csv("nan.csv", "x,y\n1,2\n2,nan\n"),
                "a=1".into(),
            ],
            "nan.csv:3: column 2: `nan` is not a finite number",
        ),
        (
            vec![
                "y ~ a * x".into(),
                csv("cols.csv", "x,y\n1,2\n2,3,4\n"),
                "a=1".into(),
            ],
            "cols.csv:3: 3 fields, expected 2",
        ),
        (
            vec![
                "y ~ a * x".into(),
                dir.join("missing.csv").to_string_lossy().into_owned(),
                "a=1".into(),
            ],
            "cannot read",
        ),
        (
            vec!["y ~ a * x".into(), good.clone(), "a".into()],
            "--start: `a` is not NAME=VALUE",
        ),
        (
            vec!["y ~ a * x".into(), good.clone(), "a=inf".into()],
            "not finite",
        ),
        (
            vec!["y ~ log(a * x)".into(), good.clone(), "a=-1".into()],
            "not finite at the starting values on data row 1",
        ),
        // found by the fuzzer: the squares of 1e308 overflow (and so did the plot's range)
        (
            vec![
                "y ~ a * x^2 + b * x + c".into(),
                csv("big.csv", "x y\n1 1e308\n2 -1e308\n3 0\n"),
                "a=1,b=1,c=0".into(),
            ],
            "overflows f64",
        ),
    ];
    for (args, want) in cases {
        let (code, out, err) = run(&[
            &args[0],
            &args[1],
            "--start",
            &args[2],
            "--plot",
            plot.to_str().unwrap(),
            "--json",
            out_json.to_str().unwrap(),
        ]);
        assert_eq!(code, 1, "{args:?}: {out}{err}");
        assert!(err.contains(want), "{args:?}: wanted `{want}` in: {err}");
        assert!(!plot.exists(), "{args:?} wrote the plot");
        assert_eq!(
            std::fs::read_to_string(&out_json).unwrap(),
            "previous",
            "{args:?}"
        );
    }
    // a model in a file: its errors name the file
    let model = dir.join("m.model");
    std::fs::write(&model, "# a comment\ny ~ a *\n").unwrap();
    let (code, _, err) = run(&[model.to_str().unwrap(), &good, "--start", "a=1"]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("{}:3:1: expected a value", model.display())),
        "{err}"
    );
    // a folder as an output, the same file for both outputs, a plot format it cannot
    // write, and a folder that does not exist
    let far = dir.join("no/such/folder/p.png");
    let (folder, far) = (dir.to_str().unwrap(), far.to_str().unwrap());
    let cases: [(&[&str], &str); 4] = [
        (&["--json", folder], "is a folder"),
        (&["--json", "o.png", "--plot", "o.png"], "the same file"),
        (&["--plot", "p.gif"], "writes .png or .svg"),
        (&["--plot", far], "does not exist"),
    ];
    for (outputs, want) in cases {
        let mut args = vec!["y ~ a * x", &good, "--start", "a=1"];
        args.extend_from_slice(outputs);
        let (code, _, err) = run(&args);
        assert!(code == 1 && err.contains(want), "{outputs:?}: {err}");
    }
}
