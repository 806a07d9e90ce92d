//! The NIST StRD nonlinear regression problems: reading the `.dat` files, the 27 models
//! written with ferrax operations, runs from both starting points, and the report.
//!
//! Accuracy is measured as NIST and SciPy's baseline do: the log relative error
//! `LRE = −log10(|x − c| / |c|)` of each estimate against the certified value `c`, capped at
//! the certified value's significant digits and floored at 0; a run's LRE is the smallest
//! over its parameters.
//!
//! The traps recorded in the data's notes are handled: Rat43's file states 9 degrees of
//! freedom where `m − n = 11` is right (the parser keeps both and uses `m − n`); Roszman1
//! needs `atan2(b3, x − b4)`, not the principal arctangent; Nelson fits `log(y)`;
//! Lanczos1's certified RSS is below what double precision can reproduce (judge it by its
//! parameters).

use std::f64::consts::PI;
use std::path::{Path, PathBuf};

use ferrax::{Array, Tensor};

use crate::error::{Result, SolverError};
use crate::least_squares::{least_squares, LsqOptions, LsqResult, Termination};

/// The 27 problems in NIST's order (lower, average, higher difficulty).
pub const ALL: [&str; 27] = [
    "Misra1a", "Chwirut2", "Chwirut1", "Lanczos3", "Gauss1", "Gauss2", "DanWood", "Misra1b",
    "Kirby2", "Hahn1", "Nelson", "MGH17", "Lanczos1", "Lanczos2", "Gauss3", "Misra1c", "Misra1d",
    "Roszman1", "ENSO", "MGH09", "Thurber", "BoxBOD", "Rat42", "MGH10", "Eckerle4", "Rat43",
    "Bennett5",
];

/// One problem as its `.dat` file states it.
#[derive(Clone, Debug, PartialEq)]
pub struct NistProblem {
    pub name: String,
    /// "Lower", "Average" or "Higher".
    pub difficulty: String,
    pub param_names: Vec<String>,
    pub start1: Vec<f64>,
    pub start2: Vec<f64>,
    pub certified: Vec<f64>,
    pub certified_sd: Vec<f64>,
    /// Significant digits of each certified value as printed.
    pub certified_digits: Vec<u32>,
    pub rss: f64,
    pub residual_sd: f64,
    /// `m − n`.
    pub dof: usize,
    /// The degrees of freedom the file states, when it differs from `m − n` (Rat43).
    pub dof_file: Option<usize>,
    /// Responses.
    pub y: Vec<f64>,
    /// Predictor columns (one, or two for Nelson).
    pub x: Vec<Vec<f64>>,
}

/// The folder holding the `.dat` files: `FERRAX_NIST_DIR` if set, else the copy in this
/// crate.
pub fn data_dir() -> PathBuf {
    match std::env::var_os("FERRAX_NIST_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("data/nist"),
    }
}

/// Reads `NAME.dat` from a folder.
pub fn load(dir: &Path, name: &str) -> Result<NistProblem> {
    let path = dir.join(format!("{name}.dat"));
    let text = std::fs::read_to_string(&path).map_err(|e| SolverError::Data {
        file: path.display().to_string(),
        line: 0,
        msg: format!("cannot read: {e}"),
    })?;
    parse_dat(&text, &path.display().to_string())
}

fn data_err(file: &str, line: usize, msg: impl Into<String>) -> SolverError {
    SolverError::Data {
        file: file.to_string(),
        line,
        msg: msg.into(),
    }
}

/// `(lines A to B)` in a header line.
fn line_range(s: &str) -> Option<(usize, usize)> {
    let inside = s.split("(lines").nth(1)?.split(')').next()?;
    let mut it = inside.split("to");
    let a = it.next()?.trim().parse().ok()?;
    let b = it.next()?.trim().parse().ok()?;
    Some((a, b))
}

fn sig_digits(tok: &str) -> u32 {
    let mant = tok.to_ascii_uppercase();
    let mant = mant.split('E').next().unwrap_or("");
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    digits.trim_start_matches('0').len() as u32
}

/// Parses the text of a NIST `.dat` file. Errors name the file and the 1-based line.
pub fn parse_dat(text: &str, file: &str) -> Result<NistProblem> {
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    let (mut starts, mut certs, mut data) = (None, None, None);
    for l in lines.iter().take(15) {
        if l.contains("Starting Values") {
            starts = line_range(l);
        } else if l.contains("Certified Values") {
            certs = line_range(l);
        } else if l.trim_start().starts_with("Data") && l.contains("(lines") {
            data = line_range(l);
        }
    }
    let need = |r: Option<(usize, usize)>, what: &str| {
        r.filter(|(a, b)| *a >= 1 && a <= b && *b <= lines.len())
            .ok_or_else(|| {
                data_err(
                    file,
                    0,
                    format!("the header does not give a valid line range for the {what}"),
                )
            })
    };
    let (s0, s1) = need(starts, "starting values")?;
    let (c0, c1) = need(certs, "certified values")?;
    let (d0, d1) = need(data, "data")?;
    let name = lines
        .iter()
        .find_map(|l| l.strip_prefix("Dataset Name:"))
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or("")
        .to_string();
    let mut p = NistProblem {
        name,
        difficulty: String::new(),
        param_names: vec![],
        start1: vec![],
        start2: vec![],
        certified: vec![],
        certified_sd: vec![],
        certified_digits: vec![],
        rss: f64::NAN,
        residual_sd: f64::NAN,
        dof: 0,
        dof_file: None,
        y: vec![],
        x: vec![],
    };
    let num = |tok: &str, line: usize, what: &str| -> Result<f64> {
        tok.parse::<f64>()
            .map_err(|_| data_err(file, line, format!("{what} `{tok}` is not a number")))
    };
    for (k, l) in lines[s0 - 1..s1].iter().enumerate() {
        let ln = s0 + k;
        let Some((lhs, rhs)) = l.split_once('=') else {
            return Err(data_err(
                file,
                ln,
                "expected `bN = start1 start2 certified sd`",
            ));
        };
        let t: Vec<&str> = rhs.split_whitespace().collect();
        if t.len() != 4 {
            return Err(data_err(
                file,
                ln,
                format!("expected 4 numbers after `=`, found {}", t.len()),
            ));
        }
        p.param_names.push(lhs.trim().to_string());
        p.start1.push(num(t[0], ln, "start 1")?);
        p.start2.push(num(t[1], ln, "start 2")?);
        p.certified.push(num(t[2], ln, "certified value")?);
        p.certified_sd
            .push(num(t[3], ln, "certified standard deviation")?);
        p.certified_digits.push(sig_digits(t[2]));
    }
    let mut nobs = None;
    let mut dof_file = None;
    for (k, l) in lines[c0 - 1..c1].iter().enumerate() {
        let ln = c0 + k;
        let value = || {
            l.split(':')
                .nth(1)
                .and_then(|v| v.split_whitespace().next())
        };
        if l.starts_with("Residual Sum of Squares:") {
            p.rss = num(value().unwrap_or(""), ln, "residual sum of squares")?;
        } else if l.starts_with("Residual Standard Deviation:") {
            p.residual_sd = num(value().unwrap_or(""), ln, "residual standard deviation")?;
        } else if l.starts_with("Degrees of Freedom:") {
            dof_file = Some(num(value().unwrap_or(""), ln, "degrees of freedom")? as usize);
        } else if l.starts_with("Number of Observations:") {
            nobs = Some(num(value().unwrap_or(""), ln, "number of observations")? as usize);
        }
    }
    if p.rss.is_nan() {
        return Err(data_err(
            file,
            c0,
            "no `Residual Sum of Squares:` line among the certified values",
        ));
    }
    let mut ncols = None;
    for (k, l) in lines[d0 - 1..d1].iter().enumerate() {
        let ln = d0 + k;
        if l.trim().is_empty() {
            continue;
        }
        let vals = l
            .split_whitespace()
            .map(|t| num(t, ln, "data value"))
            .collect::<Result<Vec<_>>>()?;
        match ncols {
            None => {
                if vals.len() < 2 {
                    return Err(data_err(
                        file,
                        ln,
                        "a data row needs a response and a predictor",
                    ));
                }
                ncols = Some(vals.len());
                p.x = vec![vec![]; vals.len() - 1];
            }
            Some(c) if c != vals.len() => {
                return Err(data_err(
                    file,
                    ln,
                    format!(
                        "this data row has {} columns, the first had {c}",
                        vals.len()
                    ),
                ))
            }
            _ => {}
        }
        p.y.push(vals[0]);
        for (col, v) in p.x.iter_mut().zip(&vals[1..]) {
            col.push(*v);
        }
    }
    let m = p.y.len();
    if let Some(n) = nobs {
        if n != m {
            return Err(data_err(
                file,
                d0,
                format!("the file states {n} observations but has {m} data rows"),
            ));
        }
    }
    let n = p.certified.len();
    if n == 0 || m <= n {
        return Err(data_err(
            file,
            s0,
            format!("{n} parameters for {m} observations"),
        ));
    }
    p.dof = m - n;
    // Rat43.dat states 9; its certified residual standard deviation uses m − n = 11.
    p.dof_file = dof_file.filter(|&d| d != p.dof);
    for l in lines.iter().take(60) {
        for level in ["Lower", "Average", "Higher"] {
            if l.contains("Level of Difficulty") && l.contains(level) {
                p.difficulty = level.to_string();
            }
        }
    }
    Ok(p)
}

fn col(v: &[f64]) -> Tensor {
    Tensor::new(Array::from_slice(v))
}

/// The residual function `f(b; x) − y` of a problem (Nelson: `f − log y`), written with
/// ferrax operations. An error for a problem without a model.
pub fn residual_fn(p: &NistProblem) -> Result<impl Fn(Tensor) -> Tensor> {
    let x = col(&p.x[0]);
    let x2 = p.x.get(1).map(|c| col(c));
    let y = if p.name == "Nelson" {
        col(&p.y.iter().map(|v| v.ln()).collect::<Vec<_>>())
    } else {
        col(&p.y)
    };
    let model = model_of(&p.name).ok_or_else(|| SolverError::Input {
        op: "nist::residual_fn".into(),
        msg: format!("no model for a problem named `{}`", p.name),
    })?;
    if p.name == "Nelson" && x2.is_none() {
        return Err(data_err(&p.name, 0, "Nelson needs two predictor columns"));
    }
    let x2 = x2.unwrap_or_else(|| x.clone());
    Ok(move |b: Tensor| model(&b, &x, &x2) - &y)
}

type Model = fn(&Tensor, &Tensor, &Tensor) -> Tensor;

fn model_of(name: &str) -> Option<Model> {
    Some(match name {
        "Misra1a" | "BoxBOD" => |b, x, _| {
            let [b1, b2] = params(b);
            b1 * (1.0 - (-b2 * x).exp())
        },
        "Chwirut1" | "Chwirut2" => |b, x, _| {
            let [b1, b2, b3] = params(b);
            (-b1 * x).exp() / (b2 + b3 * x)
        },
        "Lanczos1" | "Lanczos2" | "Lanczos3" => |b, x, _| {
            let [b1, b2, b3, b4, b5, b6] = params(b);
            b1 * (-b2 * x).exp() + b3 * (-b4 * x).exp() + b5 * (-b6 * x).exp()
        },
        "Gauss1" | "Gauss2" | "Gauss3" => |b, x, _| {
            let [b1, b2, b3, b4, b5, b6, b7, b8] = params(b);
            b1 * (-b2 * x).exp()
                + b3 * (-(x - b4).powi(2) / b5.powi(2)).exp()
                + b6 * (-(x - b7).powi(2) / b8.powi(2)).exp()
        },
        "DanWood" => |b, x, _| {
            let [b1, b2] = params(b);
            b1 * x.pow(&b2)
        },
        "Misra1b" => |b, x, _| {
            let [b1, b2] = params(b);
            b1 * (1.0 - (1.0 + b2 * x / 2.0).powi(-2))
        },
        "Kirby2" => |b, x, _| {
            let [b1, b2, b3, b4, b5] = params(b);
            let x2 = x * x;
            (b1 + b2 * x + b3 * &x2) / (1.0 + b4 * x + b5 * &x2)
        },
        "Hahn1" | "Thurber" => |b, x, _| {
            let [b1, b2, b3, b4, b5, b6, b7] = params(b);
            let (x2, x3) = (x.powi(2), x.powi(3));
            (b1 + b2 * x + b3 * &x2 + b4 * &x3) / (1.0 + b5 * x + b6 * &x2 + b7 * &x3)
        },
        "Nelson" => |b, x1, x2| {
            let [b1, b2, b3] = params(b);
            b1 - b2 * x1 * (-b3 * x2).exp()
        },
        "MGH17" => |b, x, _| {
            let [b1, b2, b3, b4, b5] = params(b);
            b1 + b2 * (-(x * b4)).exp() + b3 * (-(x * b5)).exp()
        },
        "Misra1c" => |b, x, _| {
            let [b1, b2] = params(b);
            b1 * (1.0 - (1.0 + 2.0 * b2 * x).rsqrt())
        },
        "Misra1d" => |b, x, _| {
            let [b1, b2] = params(b);
            &b1 * &b2 * x / (1.0 + &b2 * x)
        },
        // atan2, not the principal arctan(b3/(x − b4)): the certified values need it.
        "Roszman1" => |b, x, _| {
            let [b1, b2, b3, b4] = params(b);
            b1 - b2 * x - b3.atan2(&(x - b4)) / PI
        },
        "ENSO" => |b, x, _| {
            let [b1, b2, b3, b4, b5, b6, b7, b8, b9] = params(b);
            let w = x * (2.0 * PI / 12.0);
            let u = x * (2.0 * PI) / &b4;
            let v = x * (2.0 * PI) / &b7;
            b1 + b2 * w.cos()
                + b3 * w.sin()
                + b5 * u.cos()
                + b6 * u.sin()
                + b8 * v.cos()
                + b9 * v.sin()
        },
        "MGH09" => |b, x, _| {
            let [b1, b2, b3, b4] = params(b);
            let x2 = x * x;
            b1 * (&x2 + x * b2) / (&x2 + x * b3 + b4)
        },
        "MGH10" => |b, x, _| {
            let [b1, b2, b3] = params(b);
            b1 * (b2 / (x + b3)).exp()
        },
        "Rat42" => |b, x, _| {
            let [b1, b2, b3] = params(b);
            b1 / (1.0 + (b2 - b3 * x).exp())
        },
        "Rat43" => |b, x, _| {
            let [b1, b2, b3, b4] = params(b);
            b1 / (1.0 + (b2 - b3 * x).exp()).pow(&(1.0 / b4))
        },
        "Eckerle4" => |b, x, _| {
            let [b1, b2, b3] = params(b);
            (&b1 / &b2) * (-0.5 * ((x - b3) / &b2).powi(2)).exp()
        },
        "Bennett5" => |b, x, _| {
            let [b1, b2, b3] = params(b);
            b1 * (b2 + x).pow(&(-1.0 / b3))
        },
        _ => return None,
    })
}

/// The parameters `b[0]..b[N-1]` as scalar tensors.
fn params<const N: usize>(b: &Tensor) -> [Tensor; N] {
    std::array::from_fn(|i| b.index_axis(0, i))
}

/// `−log10(|x − c| / |c|)`, capped at `digits` and floored at 0 (0 for a non-finite `x`).
pub fn lre(x: f64, c: f64, digits: u32) -> f64 {
    if !x.is_finite() {
        return 0.0;
    }
    if x == c {
        return digits as f64;
    }
    let v = if c != 0.0 {
        -((x - c).abs() / c.abs()).log10()
    } else {
        -x.abs().log10()
    };
    v.clamp(0.0, digits as f64)
}

/// One run of a problem from one of its starts.
#[derive(Clone, Debug)]
pub struct NistRun {
    pub problem: String,
    pub difficulty: String,
    pub start: usize,
    pub fit: LsqResult,
    /// The smallest LRE over the parameters.
    pub lre: f64,
    pub lre_rss: f64,
    /// The smallest LRE of the standard errors against the certified standard deviations.
    pub lre_sd: f64,
}

/// Fits a problem from start 1 or 2 with the given options.
pub fn run(p: &NistProblem, start: usize, opts: &LsqOptions) -> Result<NistRun> {
    let x0 = match start {
        1 => &p.start1,
        2 => &p.start2,
        s => {
            return Err(SolverError::Input {
                op: "nist::run".into(),
                msg: format!("start must be 1 or 2, got {s}"),
            })
        }
    };
    let fit = least_squares(residual_fn(p)?, x0, opts)?;
    let lre_params = fit
        .params
        .iter()
        .zip(&p.certified)
        .zip(&p.certified_digits)
        .map(|((x, c), d)| lre(*x, *c, *d))
        .fold(f64::INFINITY, f64::min);
    let lre_sd = match &fit.standard_errors {
        Some(se) => se
            .iter()
            .zip(&p.certified_sd)
            .map(|(s, c)| lre(*s, *c, 11))
            .fold(f64::INFINITY, f64::min),
        None => 0.0,
    };
    Ok(NistRun {
        problem: p.name.clone(),
        difficulty: p.difficulty.clone(),
        start,
        lre: lre_params,
        lre_rss: lre(fit.rss, p.rss, 11),
        lre_sd,
        fit,
    })
}

fn termination_name(t: Termination) -> &'static str {
    t.name()
}

/// The report as a Markdown table, with a summary line.
pub fn markdown(runs: &[NistRun]) -> String {
    let mut s = String::from(
        "| problem | difficulty | start | LRE | LRE(RSS) | LRE(std. errors) | final RSS | residual evals | Jacobian evals | termination |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in runs {
        s.push_str(&format!(
            "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.10e} | {} | {} | {} |\n",
            r.problem,
            r.difficulty,
            r.start,
            r.lre,
            r.lre_rss,
            r.lre_sd,
            r.fit.rss,
            r.fit.residual_evaluations,
            r.fit.jacobian_evaluations,
            termination_name(r.fit.termination)
        ));
    }
    s
}

/// (median LRE, smallest LRE, runs with LRE ≥ 6, runs).
pub fn summary(runs: &[NistRun]) -> (f64, f64, usize, usize) {
    let mut l: Vec<f64> = runs.iter().map(|r| r.lre).collect();
    l.sort_by(|a, b| a.total_cmp(b));
    let median = if l.is_empty() {
        f64::NAN
    } else if l.len() % 2 == 1 {
        l[l.len() / 2]
    } else {
        0.5 * (l[l.len() / 2 - 1] + l[l.len() / 2])
    };
    let min = l.first().copied().unwrap_or(f64::NAN);
    (
        median,
        min,
        l.iter().filter(|&&v| v >= 6.0).count(),
        l.len(),
    )
}

/// A run as one JSON object (full-precision numbers).
pub fn json(r: &NistRun) -> String {
    let params: Vec<String> = r.fit.params.iter().map(|v| format!("{v:?}")).collect();
    let se = match &r.fit.standard_errors {
        Some(se) => format!(
            "[{}]",
            se.iter()
                .map(|v| if v.is_finite() {
                    format!("{v:?}")
                } else {
                    "null".into()
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => "null".into(),
    };
    format!(
        "{{\"problem\": \"{}\", \"start\": {}, \"params\": [{}], \"rss\": {:?}, \"evaluations\": {}, \"jacobian_evaluations\": {}, \"iterations\": {}, \"termination\": \"{}\", \"lre\": {:?}, \"lre_rss\": {:?}, \"standard_errors\": {}, \"lre_standard_errors\": {:?}}}",
        r.problem,
        r.start,
        params.join(", "),
        r.fit.rss,
        r.fit.residual_evaluations,
        r.fit.jacobian_evaluations,
        r.fit.iterations,
        r.fit.termination.name(),
        r.lre,
        r.lre_rss,
        se,
        r.lre_sd
    )
}
