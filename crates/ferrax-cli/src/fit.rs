//! `ferrax fit MODEL DATA --start a=1,b=2`: fits a model of the formula language
//! (`ferrax_solvers::model`) to a table of data, prints the parameter table, and writes
//! JSON and a plot on request.
//!
//! Nothing is written half-way: the fit, the plot and the JSON are made first, into
//! temporary files beside their destinations, and renamed into place only when all of them
//! succeeded; on any error the temporary files are removed and the destinations are not
//! touched. Progress (iteration, sum of squares, step length, trust radius) goes to
//! standard error while the solve runs, only when standard error is a terminal.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferrax_solvers::least_squares::OnIteration;
use ferrax_solvers::{
    fit_model, read_table, Bound, Loss, LsqOptions, Method, Model, ModelFit, SolverError,
    Termination,
};
use serde_json::json;

use crate::plot;

/// What `fit` was asked to do: the command's arguments.
#[derive(clap::Args)]
pub struct FitArgs {
    /// The formula (`y ~ a * exp(-b * x)`; the response defaults to the column `y`, else
    /// the last), or a file holding it.
    pub model: String,
    /// The data: CSV or whitespace-separated columns, optionally with a header row of
    /// names (else `x`, `y` or `x1`, ..., `y`).
    pub data: String,
    /// Starting values of the parameters: `a=1,b=0.5`. Every name that is not a data
    /// column is a parameter, and each must have a start.
    #[arg(long, allow_hyphen_values = true)]
    pub start: String,
    /// `lm` (Levenberg-Marquardt, dense Jacobian) or `gn-cg` (Gauss-Newton with CG,
    /// matrix-free: for many parameters or residuals).
    #[arg(long, value_enum, default_value_t = FitMethod::Lm)]
    pub method: FitMethod,
    /// The most outer iterations.
    #[arg(long, default_value_t = 500)]
    pub max_iterations: usize,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<String>,
    /// Draw the data, the fitted curve and the residuals into this .png or .svg file.
    #[arg(long)]
    pub plot: Option<String>,
    /// No progress on standard error (shown only when it is a terminal).
    #[arg(long)]
    pub quiet: bool,
    /// A robust loss and its scale: `soft_l1`, `huber`, `cauchy` or `arctan`, e.g.
    /// `huber:0.5` (scale 1 if left out); least squares by default.
    #[arg(long)]
    pub loss: Option<String>,
    /// Bounds on parameters: `a=0:10,b=0:` (a side left out is unbounded).
    #[arg(long, allow_hyphen_values = true)]
    pub bounds: Option<String>,
}

/// The solver `--method` names.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum FitMethod {
    /// Levenberg-Marquardt.
    Lm,
    /// Gauss-Newton-CG.
    GnCg,
}

impl FitMethod {
    fn method(self) -> Method {
        match self {
            FitMethod::Lm => Method::LevenbergMarquardt,
            FitMethod::GnCg => Method::GaussNewtonCg,
        }
    }
}

/// Parses `--loss NAME[:SCALE]`.
pub fn parse_loss(text: &str) -> Result<Loss, String> {
    let (name, scale) = match text.split_once(':') {
        Some((n, s)) => (
            n.trim(),
            s.trim()
                .parse::<f64>()
                .map_err(|_| format!("--loss: the scale `{s}` is not a number"))?,
        ),
        None => (text.trim(), 1.0),
    };
    Loss::from_name(name, scale).map_err(|e| format!("--loss: {e}"))
}

/// Parses `--bounds a=LO:HI,...` against the parameters (one bound each, unbounded where
/// not given).
pub fn parse_bounds(text: &str, params: &[(String, f64)]) -> Result<Vec<Bound>, String> {
    let mut bounds = vec![
        Bound {
            lo: f64::NEG_INFINITY,
            hi: f64::INFINITY
        };
        params.len()
    ];
    let mut seen: Vec<&str> = vec![];
    for item in text
        .split([',', ';'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let parsed = item.split_once('=').and_then(|(n, r)| {
            r.split_once(':')
                .map(|(lo, hi)| (n.trim(), lo.trim(), hi.trim()))
        });
        let Some((name, lo, hi)) = parsed else {
            return Err(format!(
                "--bounds: `{item}` is not NAME=LO:HI (e.g. a=0:10, b=0:)"
            ));
        };
        let Some(k) = params.iter().position(|(n, _)| n == name) else {
            return Err(format!(
                "--bounds: `{name}` is not a parameter given in --start"
            ));
        };
        if seen.contains(&name) {
            return Err(format!("--bounds: `{name}` is bounded twice"));
        }
        seen.push(name);
        let side = |s: &str, empty: f64| -> Result<f64, String> {
            if s.is_empty() {
                Ok(empty)
            } else {
                s.parse()
                    .map_err(|_| format!("--bounds: `{s}` (for `{name}`) is not a number"))
            }
        };
        bounds[k] = Bound {
            lo: side(lo, f64::NEG_INFINITY)?,
            hi: side(hi, f64::INFINITY)?,
        };
    }
    Ok(bounds)
}

/// Parses `a=1,b=0.5` (also `;` or spaces between entries).
pub fn parse_start(text: &str) -> Result<Vec<(String, f64)>, String> {
    let mut out: Vec<(String, f64)> = vec![];
    for item in text
        .split([',', ';', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let Some((name, value)) = item.split_once('=') else {
            return Err(format!(
                "--start: `{item}` is not NAME=VALUE (e.g. --start a=1,b=0.5)"
            ));
        };
        let (name, value) = (name.trim(), value.trim());
        let v: f64 = value
            .parse()
            .map_err(|_| format!("--start: the value of `{name}`, `{value}`, is not a number"))?;
        if !v.is_finite() {
            return Err(format!("--start: the value of `{name}` is {v}, not finite"));
        }
        if out.iter().any(|(n, _)| n == name) {
            return Err(format!("--start: `{name}` is given twice"));
        }
        out.push((name.to_string(), v));
    }
    if out.is_empty() {
        return Err("--start: no parameters (e.g. --start a=1,b=0.5)".into());
    }
    Ok(out)
}

/// The model's text and the name its errors carry: a file's contents when `model` names a
/// file, else `model` itself.
fn model_text(model: &str) -> Result<(String, String), String> {
    let path = Path::new(model);
    if path.is_file() {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("{model}: cannot read: {e}"))?;
        Ok((text, model.to_string()))
    } else {
        Ok((model.to_string(), "model".to_string()))
    }
}

/// The model as one line, comments removed: for the report, the plot's title and JSON.
fn one_line(model: &str) -> String {
    model
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A solver error, with a model's syntax errors naming the model's file.
fn describe(e: SolverError, model_name: &str) -> String {
    match e {
        SolverError::Syntax {
            line, column, msg, ..
        } => format!("{model_name}:{line}:{column}: {msg}"),
        other => other.to_string(),
    }
}

fn termination_text(t: Termination) -> &'static str {
    match t {
        Termination::Ftol => "converged: the sum of squares stopped decreasing (ftol)",
        Termination::Xtol => "converged: the steps became negligible (xtol)",
        Termination::Gtol => "converged: the gradient vanished (gtol)",
        Termination::ZeroResidual => "converged: the model fits the data exactly",
        Termination::MaxIterations => "NOT converged: the iteration limit was reached",
        Termination::NoProgress => "NOT converged: no step could lower the sum of squares",
    }
}

/// A temporary path beside `dest` with the same extension (the plot's format follows it).
fn temporary(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    let ext = dest
        .extension()
        .map_or(String::new(), |e| format!(".{}", e.to_string_lossy()));
    dest.with_file_name(format!(".{name}.tmp-{}{ext}", std::process::id()))
}

/// Files written to temporary names, renamed into place on `commit`, removed otherwise.
struct Pending(Vec<(PathBuf, PathBuf)>);

impl Pending {
    /// Renames each file into place; on a failure the files not yet renamed stay in the
    /// list, so that dropping it removes them.
    fn commit(mut self) -> Result<(), String> {
        while let Some((tmp, dest)) = self.0.first().cloned() {
            std::fs::rename(&tmp, &dest)
                .map_err(|e| format!("{}: cannot write: {e}", dest.display()))?;
            self.0.remove(0);
        }
        Ok(())
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        for (tmp, _) in &self.0 {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// Runs `ferrax fit`; the report for standard output.
pub fn fit(args: FitArgs) -> Result<String, String> {
    let (text, model_name) = model_text(&args.model)?;
    let model = Model::parse(&text).map_err(|e| describe(e, &model_name))?;
    let start = parse_start(&args.start)?;
    let loss = args
        .loss
        .as_deref()
        .map(parse_loss)
        .transpose()?
        .unwrap_or_default();
    let bounds = args
        .bounds
        .as_deref()
        .map(|b| parse_bounds(b, &start))
        .transpose()?;
    let table = read_table(Path::new(&args.data)).map_err(|e| e.to_string())?;
    // the destinations must be writable places before any work is done
    for dest in args.json.iter().chain(&args.plot) {
        let parent = Path::new(dest)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !parent.is_dir() {
            return Err(format!(
                "{dest}: the folder {} does not exist",
                parent.display()
            ));
        }
        // found in review: a folder as destination failed only at the rename, after the
        // other output had replaced its file
        if Path::new(dest).is_dir() {
            return Err(format!("{dest}: is a folder, not a file to write"));
        }
    }
    if args.json.is_some() && args.json == args.plot {
        return Err("--json and --plot name the same file".into());
    }
    if let Some(p) = &args.plot {
        plot::check_format(p)?;
    }

    let progress = (!args.quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_message("fitting");
        Arc::new(bar)
    });
    let on_iteration = match &progress {
        Some(bar) => {
            let bar = bar.clone();
            OnIteration::new(move |i| {
                bar.set_message(format!(
                    "iteration {:4}  sum of squares {:.6e}  step {:.3e}  trust radius {:.3e}",
                    i.iteration + 1,
                    i.rss,
                    i.step_norm,
                    i.radius
                ));
                bar.tick();
            })
        }
        None => OnIteration::default(),
    };
    let opts = LsqOptions {
        method: args.method.method(),
        max_iterations: args.max_iterations,
        on_iteration,
        loss,
        bounds,
        ..LsqOptions::default()
    };
    let fitted = fit_model(&model, &table, &start, &opts);
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let fitted = fitted.map_err(|e| describe(e, &model_name))?;

    let mut pending = Pending(vec![]);
    if let Some(dest) = &args.plot {
        let tmp = temporary(Path::new(dest));
        pending.0.push((tmp.clone(), PathBuf::from(dest)));
        plot::draw(&fitted, &table, &one_line(&text), &tmp).map_err(|e| format!("{dest}: {e}"))?;
    }
    if let Some(dest) = &args.json {
        let tmp = temporary(Path::new(dest));
        pending.0.push((tmp.clone(), PathBuf::from(dest)));
        let body = serde_json::to_string_pretty(&to_json(&fitted, &args, &one_line(&text)))
            .map_err(|e| format!("{dest}: {e}"))?;
        std::fs::write(&tmp, body + "\n").map_err(|e| format!("{dest}: cannot write: {e}"))?;
    }
    pending.commit()?;
    Ok(report(&fitted, &args, &one_line(&text), table.rows()))
}

fn method_name(m: Method) -> &'static str {
    match m {
        Method::LevenbergMarquardt => "Levenberg-Marquardt",
        Method::GaussNewtonCg => "Gauss-Newton-CG",
    }
}

fn to_json(f: &ModelFit, args: &FitArgs, model: &str) -> serde_json::Value {
    let params: Vec<_> = f
        .estimates
        .iter()
        .map(|e| {
            json!({
                "name": e.name,
                "estimate": e.value,
                "std_error": e.std_error,
                "ci_low": e.interval.map(|i| i.0),
                "ci_high": e.interval.map(|i| i.1),
            })
        })
        .collect();
    json!({
        "model": model,
        "data": args.data,
        "method": method_name(args.method.method()),
        "termination": f.solve.termination.name(),
        "converged": !matches!(f.solve.termination, Termination::MaxIterations | Termination::NoProgress),
        "iterations": f.solve.iterations,
        "loss": args.loss.as_deref().unwrap_or("linear"),
        "bounds": args.bounds,
        "cost": f.solve.cost,
        "rows": f.rows,
        "dof": f.dof,
        "confidence": f.confidence,
        "parameters": params,
        "rss": f.rss,
        "residual_standard_error": f.sigma,
        "rms": f.rms,
        "r_squared": f.r_squared,
        "max_abs_residual": f.max_abs_residual,
    })
}

fn report(f: &ModelFit, args: &FitArgs, model: &str, rows: usize) -> String {
    let mut s = format!(
        "model: {}\ndata:  {} ({rows} rows)\nfit:   {}, {} iteration(s); {}\n",
        model,
        args.data,
        method_name(args.method.method()),
        f.solve.iterations,
        termination_text(f.solve.termination)
    );
    if let Some(loss) = &args.loss {
        s += &format!(
            "loss:  {loss}: the objective ½ Σ C² ρ((r/C)²) is {:.10e}\n",
            f.solve.cost
        );
    }
    if let Some(b) = &args.bounds {
        s += &format!("bounds: {b}\n");
    }
    s += "\n";
    let level = format!("{:.0}% confidence interval", 100.0 * f.confidence);
    let width = f
        .estimates
        .iter()
        .map(|e| e.name.len())
        .max()
        .unwrap_or(4)
        .max(9);
    s += &format!(
        "{:width$}  {:>17}  {:>17}  {level}\n",
        "parameter", "estimate", "std. error"
    );
    for e in &f.estimates {
        let se = e.std_error.map_or("-".into(), |v| format!("{v:.10e}"));
        let ci = e
            .interval
            .map_or("-".into(), |(a, b)| format!("[{a:.6e}, {b:.6e}]"));
        s += &format!("{:width$}  {:>17.10e}  {se:>17}  {ci}\n", e.name, e.value);
    }
    s += &format!("\nresidual sum of squares   {:.10e}\n", f.rss);
    if let Some(sigma) = f.sigma {
        s += &format!(
            "residual standard error   {sigma:.10e} on {} degrees of freedom\n",
            f.dof
        );
    }
    s += &format!("root mean square residual {:.6e}\n", f.rms);
    s += &format!("largest |residual|        {:.6e}\n", f.max_abs_residual);
    if let Some(r2) = f.r_squared {
        s += &format!("R²                        {r2:.8}\n");
    }
    s.trim_end().to_string()
}
