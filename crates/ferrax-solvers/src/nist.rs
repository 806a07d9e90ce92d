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
//!
//! The parser is strict, since a file it half understands would be fitted as some other
//! problem: every malformed file (truncated, a section missing, a value that is not a
//! finite number, a row of the wrong width, more or fewer parameters or predictor columns
//! than the problem's model reads) is a [`SolverError::Data`] naming the file and the line.

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
    /// The `Dataset Name:` (in its canonical spelling when it is one of the 27).
    pub name: String,
    /// "Lower", "Average" or "Higher".
    pub difficulty: String,
    /// The parameters' names as the file writes them (`b1`, `b2`, ...).
    pub param_names: Vec<String>,
    /// NIST's first starting point.
    pub start1: Vec<f64>,
    /// NIST's second starting point (closer to the solution).
    pub start2: Vec<f64>,
    /// The certified values of the parameters.
    pub certified: Vec<f64>,
    /// The certified standard deviations of the parameters' estimates.
    pub certified_sd: Vec<f64>,
    /// Significant digits of each certified value as printed.
    pub certified_digits: Vec<u32>,
    /// The certified residual sum of squares.
    pub rss: f64,
    /// The certified residual standard deviation.
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

/// The canonical spelling of one of the 27 problems' names, matched case-insensitively
/// (`boxbod` gives `BoxBOD`); `None` for any other name.
pub fn problem_name(name: &str) -> Option<&'static str> {
    ALL.iter().copied().find(|n| n.eq_ignore_ascii_case(name))
}

/// The folder holding the `.dat` files: `FERRAX_NIST_DIR` if set, else the copy in this
/// crate.
pub fn data_dir() -> PathBuf {
    match std::env::var_os("FERRAX_NIST_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("data/nist"),
    }
}

/// Reads `NAME.dat` from a folder. One of the 27 names may be given in any case (the file
/// is the canonical `BoxBOD.dat`); the file's `Dataset Name:` must be the problem asked
/// for, so a misnamed file is an error rather than a fit of some other problem.
pub fn load(dir: &Path, name: &str) -> Result<NistProblem> {
    let stem = problem_name(name).unwrap_or(name);
    let path = dir.join(format!("{stem}.dat"));
    let file = path.display().to_string();
    let text = std::fs::read_to_string(&path)
        .map_err(|e| data_err(&file, 0, format!("cannot read: {e}")))?;
    parse(&text, &file, Some(stem))
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
    if it.next().is_some() {
        return None;
    }
    Some((a, b))
}

fn sig_digits(tok: &str) -> u32 {
    let mant = tok.to_ascii_uppercase();
    let mant = mant.split('E').next().unwrap_or("");
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    digits.trim_start_matches('0').len() as u32
}

/// A finite number. Rust's parser also reads `NaN`, `inf` and `infinity`; none of them is
/// a value a certified data set can hold, and each would turn a fit into nonsense.
fn number(file: &str, line: usize, tok: &str, what: &str) -> Result<f64> {
    match tok.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(data_err(
            file,
            line,
            format!("{what} `{tok}` is not a finite number"),
        )),
        Err(_) => Err(data_err(
            file,
            line,
            format!("{what} `{tok}` is not a number"),
        )),
    }
}

/// A count (observations, degrees of freedom): a whole number, not a float cast down.
fn count(file: &str, line: usize, tok: &str, what: &str) -> Result<usize> {
    tok.parse::<usize>()
        .map_err(|_| data_err(file, line, format!("{what} `{tok}` is not a whole number")))
}

/// Parses the text of a NIST `.dat` file. Errors name the file and the 1-based line (0
/// when something the file must have is missing altogether). A file for one of the 27
/// problems must declare as many parameters, and have as many predictor columns, as that
/// problem's model uses.
pub fn parse_dat(text: &str, file: &str) -> Result<NistProblem> {
    parse(text, file, None)
}

/// [`parse_dat`], and when `expected` is given, a check that the file is that problem's.
fn parse(text: &str, file: &str, expected: Option<&str>) -> Result<NistProblem> {
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    // Each section's header line: (its 1-based number, its range if it reads as one).
    type Header = Option<(usize, Option<(usize, usize)>)>;
    let (mut starts, mut certs, mut data): (Header, Header, Header) = (None, None, None);
    for (k, l) in lines.iter().enumerate().take(15) {
        let found = Some((k + 1, line_range(l)));
        if l.contains("Starting Values") {
            starts = found;
        } else if l.contains("Certified Values") {
            certs = found;
        } else if l.split_whitespace().next() == Some("Data") {
            data = found;
        }
    }
    let need = |h: Header, what: &str| -> Result<(usize, usize)> {
        let msg = format!("the header does not give a valid line range for the {what}");
        let Some((at, range)) = h else {
            return Err(data_err(file, 0, msg));
        };
        let Some((a, b)) = range.filter(|(a, b)| *a >= 1 && a <= b) else {
            return Err(data_err(file, at, msg));
        };
        if b > lines.len() {
            return Err(data_err(
                file,
                at,
                format!(
                    "the {what} are said to be on lines {a} to {b}, but the file has {} lines",
                    lines.len()
                ),
            ));
        }
        Ok((a, b))
    };
    let (s0, s1) = need(starts, "starting values")?;
    let (c0, c1) = need(certs, "certified values")?;
    let (d0, d1) = need(data, "data")?;
    let Some((name_line, name)) = lines.iter().enumerate().find_map(|(k, l)| {
        l.strip_prefix("Dataset Name:")
            .map(|r| (k + 1, r.split_whitespace().next().unwrap_or("")))
    }) else {
        return Err(data_err(file, 0, "no `Dataset Name:` line"));
    };
    if name.is_empty() {
        return Err(data_err(file, name_line, "the dataset name is empty"));
    }
    let name = problem_name(name).unwrap_or(name);
    if let Some(e) = expected {
        if !name.eq_ignore_ascii_case(e) {
            return Err(data_err(
                file,
                name_line,
                format!("the file holds the problem `{name}`, not `{e}`"),
            ));
        }
    }
    let model = model_of(name);
    let mut p = NistProblem {
        name: name.to_string(),
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
    let num = |tok: &str, line: usize, what: &str| number(file, line, tok, what);
    for (k, l) in lines[s0 - 1..s1].iter().enumerate() {
        let ln = s0 + k;
        let Some((lhs, rhs)) = l.split_once('=').filter(|(lhs, _)| !lhs.trim().is_empty()) else {
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
        let sd = num(t[3], ln, "certified standard deviation")?;
        if sd < 0.0 {
            return Err(data_err(
                file,
                ln,
                format!("certified standard deviation `{}` is negative", t[3]),
            ));
        }
        p.certified_sd.push(sd);
        p.certified_digits.push(sig_digits(t[2]));
    }
    let n = p.certified.len();
    if let Some(m) = &model {
        // The models read their parameters by position: extra ones would be ignored
        // (the fit would answer for a different problem), missing ones read out of range.
        if n != m.params {
            return Err(data_err(
                file,
                s0,
                format!(
                    "the file declares {n} parameters (lines {s0} to {s1}) but the {name} model has {}",
                    m.params
                ),
            ));
        }
    }
    let mut nobs = None;
    let mut dof_file = None;
    let (mut rss, mut rsd) = (None, None);
    for (k, l) in lines[c0 - 1..c1].iter().enumerate() {
        let ln = c0 + k;
        let value = || {
            l.split(':')
                .nth(1)
                .and_then(|v| v.split_whitespace().next())
                .unwrap_or("")
        };
        if l.starts_with("Residual Sum of Squares:") {
            rss = Some(num(value(), ln, "residual sum of squares")?);
        } else if l.starts_with("Residual Standard Deviation:") {
            rsd = Some(num(value(), ln, "residual standard deviation")?);
        } else if l.starts_with("Degrees of Freedom:") {
            dof_file = Some(count(file, ln, value(), "degrees of freedom")?);
        } else if l.starts_with("Number of Observations:") {
            nobs = Some(count(file, ln, value(), "number of observations")?);
        }
    }
    let Some(rss) = rss else {
        return Err(data_err(
            file,
            c0,
            "no `Residual Sum of Squares:` line among the certified values",
        ));
    };
    let Some(rsd) = rsd else {
        return Err(data_err(
            file,
            c0,
            "no `Residual Standard Deviation:` line among the certified values",
        ));
    };
    if rss < 0.0 || rsd < 0.0 {
        return Err(data_err(
            file,
            c0,
            format!("the certified residual sum of squares ({rss}) and standard deviation ({rsd}) cannot be negative"),
        ));
    }
    p.rss = rss;
    p.residual_sd = rsd;
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
                if let Some(m) = &model {
                    if vals.len() != m.predictors + 1 {
                        return Err(data_err(
                            file,
                            ln,
                            format!(
                                "this data row has {} columns, the {name} model needs {} (a response and {} predictor(s))",
                                vals.len(),
                                m.predictors + 1,
                                m.predictors
                            ),
                        ));
                    }
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
    if let Some(k) = nobs {
        if k != m {
            return Err(data_err(
                file,
                d0,
                format!("the file states {k} observations but has {m} data rows"),
            ));
        }
    }
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
    if p.difficulty.is_empty() {
        return Err(data_err(
            file,
            0,
            "no `Lower|Average|Higher Level of Difficulty` line in the header",
        ));
    }
    Ok(p)
}

fn col(v: &[f64]) -> Tensor {
    Tensor::new(Array::from_slice(v))
}

/// Checks a problem against its model before fitting: [`NistProblem`]'s fields are public,
/// so a hand-built problem can disagree with itself (as many starts, certified values and
/// digits as the model has parameters; as many predictor columns as it reads, each as long
/// as the responses; more observations than parameters).
fn check_problem(p: &NistProblem) -> Result<Model> {
    let bad = |msg: String| SolverError::Input {
        op: "nist".into(),
        msg: format!("problem `{}`: {msg}", p.name),
    };
    let model = problem_name(&p.name)
        .and_then(model_of)
        .ok_or_else(|| bad("no model for a problem of this name".into()))?;
    let k = model.params;
    for (what, len) in [
        ("start 1", p.start1.len()),
        ("start 2", p.start2.len()),
        ("certified values", p.certified.len()),
        ("certified standard deviations", p.certified_sd.len()),
        ("certified digits", p.certified_digits.len()),
    ] {
        if len != k {
            return Err(bad(format!(
                "{len} {what} but the model has {k} parameters"
            )));
        }
    }
    if p.x.len() != model.predictors {
        return Err(bad(format!(
            "{} predictor column(s) but the model reads {}",
            p.x.len(),
            model.predictors
        )));
    }
    if let Some(c) = p.x.iter().find(|c| c.len() != p.y.len()) {
        return Err(bad(format!(
            "a predictor column has {} values for {} responses",
            c.len(),
            p.y.len()
        )));
    }
    if p.y.len() <= k {
        return Err(bad(format!(
            "{} observations for {k} parameters",
            p.y.len()
        )));
    }
    Ok(model)
}

/// The residual function `f(b; x) − y` of a problem (Nelson: `f − log y`), written with
/// ferrax operations. An error for a problem without a model, or one whose parameters or
/// data do not fit its model.
pub fn residual_fn(p: &NistProblem) -> Result<impl Fn(Tensor) -> Tensor> {
    let model = check_problem(p)?;
    let x = col(&p.x[0]);
    let x2 = p.x.get(1).map(|c| col(c)).unwrap_or_else(|| x.clone());
    let y = if model.log_response {
        col(&p.y.iter().map(|v| v.ln()).collect::<Vec<_>>())
    } else {
        col(&p.y)
    };
    let f = model.f;
    Ok(move |b: Tensor| f(&b, &x, &x2) - &y)
}

type ModelFn = fn(&Tensor, &Tensor, &Tensor) -> Tensor;

/// A problem's model `f(b; x1, x2)` and what it reads: how many parameters (by position),
/// how many predictor columns, and whether it fits `log y` (Nelson).
struct Model {
    params: usize,
    predictors: usize,
    log_response: bool,
    f: ModelFn,
}

impl Model {
    fn new(params: usize, f: ModelFn) -> Model {
        Model {
            params,
            predictors: 1,
            log_response: false,
            f,
        }
    }

    fn two_predictors_log_response(params: usize, f: ModelFn) -> Model {
        Model {
            params,
            predictors: 2,
            log_response: true,
            f,
        }
    }
}

/// The model of one of the 27 problems, by its canonical name.
fn model_of(name: &str) -> Option<Model> {
    Some(match name {
        "Misra1a" | "BoxBOD" => Model::new(2, |b, x, _| {
            let [b1, b2] = params(b);
            b1 * (1.0 - (-b2 * x).exp())
        }),
        "Chwirut1" | "Chwirut2" => Model::new(3, |b, x, _| {
            let [b1, b2, b3] = params(b);
            (-b1 * x).exp() / (b2 + b3 * x)
        }),
        "Lanczos1" | "Lanczos2" | "Lanczos3" => Model::new(6, |b, x, _| {
            let [b1, b2, b3, b4, b5, b6] = params(b);
            b1 * (-b2 * x).exp() + b3 * (-b4 * x).exp() + b5 * (-b6 * x).exp()
        }),
        "Gauss1" | "Gauss2" | "Gauss3" => Model::new(8, |b, x, _| {
            let [b1, b2, b3, b4, b5, b6, b7, b8] = params(b);
            b1 * (-b2 * x).exp()
                + b3 * (-(x - b4).powi(2) / b5.powi(2)).exp()
                + b6 * (-(x - b7).powi(2) / b8.powi(2)).exp()
        }),
        "DanWood" => Model::new(2, |b, x, _| {
            let [b1, b2] = params(b);
            b1 * x.pow(&b2)
        }),
        "Misra1b" => Model::new(2, |b, x, _| {
            let [b1, b2] = params(b);
            b1 * (1.0 - (1.0 + b2 * x / 2.0).powi(-2))
        }),
        "Kirby2" => Model::new(5, |b, x, _| {
            let [b1, b2, b3, b4, b5] = params(b);
            let x2 = x * x;
            (b1 + b2 * x + b3 * &x2) / (1.0 + b4 * x + b5 * &x2)
        }),
        "Hahn1" | "Thurber" => Model::new(7, |b, x, _| {
            let [b1, b2, b3, b4, b5, b6, b7] = params(b);
            let (x2, x3) = (x.powi(2), x.powi(3));
            (b1 + b2 * x + b3 * &x2 + b4 * &x3) / (1.0 + b5 * x + b6 * &x2 + b7 * &x3)
        }),
        "Nelson" => Model::two_predictors_log_response(3, |b, x1, x2| {
            let [b1, b2, b3] = params(b);
            b1 - b2 * x1 * (-b3 * x2).exp()
        }),
        "MGH17" => Model::new(5, |b, x, _| {
            let [b1, b2, b3, b4, b5] = params(b);
            b1 + b2 * (-(x * b4)).exp() + b3 * (-(x * b5)).exp()
        }),
        "Misra1c" => Model::new(2, |b, x, _| {
            let [b1, b2] = params(b);
            b1 * (1.0 - (1.0 + 2.0 * b2 * x).rsqrt())
        }),
        "Misra1d" => Model::new(2, |b, x, _| {
            let [b1, b2] = params(b);
            &b1 * &b2 * x / (1.0 + &b2 * x)
        }),
        // atan2, not the principal arctan(b3/(x − b4)): the certified values need it.
        "Roszman1" => Model::new(4, |b, x, _| {
            let [b1, b2, b3, b4] = params(b);
            b1 - b2 * x - b3.atan2(&(x - b4)) / PI
        }),
        "ENSO" => Model::new(9, |b, x, _| {
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
        }),
        "MGH09" => Model::new(4, |b, x, _| {
            let [b1, b2, b3, b4] = params(b);
            let x2 = x * x;
            b1 * (&x2 + x * b2) / (&x2 + x * b3 + b4)
        }),
        "MGH10" => Model::new(3, |b, x, _| {
            let [b1, b2, b3] = params(b);
            b1 * (b2 / (x + b3)).exp()
        }),
        "Rat42" => Model::new(3, |b, x, _| {
            let [b1, b2, b3] = params(b);
            b1 / (1.0 + (b2 - b3 * x).exp())
        }),
        "Rat43" => Model::new(4, |b, x, _| {
            let [b1, b2, b3, b4] = params(b);
            b1 / (1.0 + (b2 - b3 * x).exp()).pow(&(1.0 / b4))
        }),
        "Eckerle4" => Model::new(3, |b, x, _| {
            let [b1, b2, b3] = params(b);
            (&b1 / &b2) * (-0.5 * ((x - b3) / &b2).powi(2)).exp()
        }),
        "Bennett5" => Model::new(3, |b, x, _| {
            let [b1, b2, b3] = params(b);
            b1 * (b2 + x).pow(&(-1.0 / b3))
        }),
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
    /// The problem's name.
    pub problem: String,
    /// The problem's difficulty: "Lower", "Average" or "Higher".
    pub difficulty: String,
    /// Which start: 1 or 2.
    pub start: usize,
    /// The solver's result.
    pub fit: LsqResult,
    /// The smallest LRE over the parameters.
    pub lre: f64,
    /// The LRE of the final RSS against the certified one, capped at 11 digits.
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

/// The runs' LRE (correct digits of the parameters) in summary.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NistSummary {
    /// The median over the runs, NaN for no runs.
    pub median: f64,
    /// The average over the runs (Ceres reports 9.4 on the 54 runs), NaN for no runs.
    pub mean: f64,
    /// The smallest, NaN for no runs.
    pub min: f64,
    /// Runs with LRE ≥ 6.
    pub good: usize,
    /// Runs in all.
    pub total: usize,
}

/// The median, mean and smallest LRE of `runs`, and how many reach 6 digits.
pub fn summary(runs: &[NistRun]) -> NistSummary {
    let mut l: Vec<f64> = runs.iter().map(|r| r.lre).collect();
    l.sort_by(|a, b| a.total_cmp(b));
    let median = if l.is_empty() {
        f64::NAN
    } else if l.len() % 2 == 1 {
        l[l.len() / 2]
    } else {
        0.5 * (l[l.len() / 2 - 1] + l[l.len() / 2])
    };
    NistSummary {
        median,
        mean: l.iter().sum::<f64>() / l.len() as f64,
        min: l.first().copied().unwrap_or(f64::NAN),
        good: l.iter().filter(|&&v| v >= 6.0).count(),
        total: l.len(),
    }
}

/// A finite number in shortest round-trip form, or `null` (JSON has no NaN or infinity).
fn json_number(v: f64) -> String {
    if v.is_finite() {
        format!("{v:?}")
    } else {
        "null".into()
    }
}

/// A JSON string literal: the names come from files and public fields, so quotes,
/// backslashes and control characters are escaped rather than trusted.
fn json_string(s: &str) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A run as one JSON object (full-precision numbers; `null` for a non-finite one).
pub fn json(r: &NistRun) -> String {
    let list = |v: &[f64]| {
        format!(
            "[{}]",
            v.iter()
                .map(|x| json_number(*x))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let se = match &r.fit.standard_errors {
        Some(se) => list(se),
        None => "null".into(),
    };
    format!(
        "{{\"problem\": {}, \"start\": {}, \"params\": {}, \"rss\": {}, \"evaluations\": {}, \"jacobian_evaluations\": {}, \"iterations\": {}, \"termination\": \"{}\", \"lre\": {}, \"lre_rss\": {}, \"standard_errors\": {}, \"lre_standard_errors\": {}}}",
        json_string(&r.problem),
        r.start,
        list(&r.fit.params),
        json_number(r.fit.rss),
        r.fit.residual_evaluations,
        r.fit.jacobian_evaluations,
        r.fit.iterations,
        r.fit.termination.name(),
        json_number(r.lre),
        json_number(r.lre_rss),
        se,
        json_number(r.lre_sd)
    )
}
