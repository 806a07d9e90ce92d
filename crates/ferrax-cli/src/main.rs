//! The `ferrax` command line: reads program texts, checks and evaluates them.
//!
//! * `ferrax check FILE`: parse and type-check a program text.
//! * `ferrax eval FILE --inputs JSON`: evaluate it on JSON inputs, print JSON outputs.
//! * `ferrax print FILE`: print the program in canonical form.
//! * `ferrax transform jvp|linearize|vjp|grad FILE`: print the transformed program(s).
//! * `ferrax transform transpose FILE --residuals N`: transpose a linear program whose first
//!   N inputs are residuals.
//! * `ferrax transform vmap FILE --in-axes 0,none,... --axis-size N`: the batched program.
//! * `ferrax nist [NAME...|--all] [--json] [--progress]`: fit the NIST StRD problems.
//! * `ferrax fit MODEL DATA --start a=1,b=2 [--plot fit.png] [--json fit.json]`: fit a
//!   formula to a table of data (see `fit.rs`).
//!
//! Errors go to standard error as `FILE:LINE:COLUMN: message` (for text errors) and the exit
//! status is 1; usage errors exit with 2.
//!
//! Nothing here prints with `println!`, which panics when standard output is a closed pipe
//! (`ferrax print f.fx | head -c 10`) or a full disk. Output goes through a fallible writer:
//! a broken pipe means the reader has all it wanted, so the command stops quietly with
//! status 0; any other write error is reported on one line and the status is 1.

mod fit;
mod json;
mod plot;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ferrax::{Aval, Error, Program};

#[derive(Parser)]
#[command(
    name = "ferrax",
    version,
    about = "Check, evaluate and transform ferrax programs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and type-check a program text.
    Check { file: String },
    /// Print a program text in canonical form.
    Print { file: String },
    /// Print a transformed program.
    Transform {
        #[arg(value_enum)]
        transformation: Transformation,
        file: String,
        /// For `transpose`: how many leading inputs are residuals (fixed values); the rest
        /// are the linear inputs.
        #[arg(long, default_value_t = 0)]
        residuals: usize,
        /// For `vmap`: one entry per input, an axis number or `none`, comma separated
        /// (default: 0 for every input). Negative axes count from the end of the batched
        /// input (-1 is its last axis).
        #[arg(long, allow_hyphen_values = true)]
        in_axes: Option<String>,
        /// For `vmap`: the length of the mapped axis.
        #[arg(long)]
        axis_size: Option<usize>,
    },
    /// Fit NIST StRD nonlinear regression problems from both starts and report the
    /// correct digits (LRE) of the parameters, the RSS and the standard errors.
    Nist {
        /// Problem names, in any case (e.g. BoxBOD misra1a); see --all.
        names: Vec<String>,
        /// Every one of the 27 problems.
        #[arg(long, conflicts_with = "names")]
        all: bool,
        /// One JSON object per line and run instead of the table.
        #[arg(long)]
        json: bool,
        /// Print every outer iteration (RSS, trust radius, Levenberg parameter).
        #[arg(long)]
        progress: bool,
        /// Only this start (1 or 2); both by default.
        #[arg(long)]
        start: Option<usize>,
        /// The folder of the .dat files (default: the copy shipped with ferrax-solvers).
        #[arg(long)]
        data: Option<String>,
    },
    /// Fit a model to data: `ferrax fit 'y ~ a * exp(-b * x)' data.csv --start a=1,b=0.1`.
    /// Prints the estimates with standard errors and confidence intervals, the residuals'
    /// statistics and how the solve ended.
    Fit(fit::FitArgs),
    /// Evaluate a program on inputs given as JSON (a list with one entry per input).
    Eval {
        file: String,
        /// The inputs as JSON text, e.g. '[2.0, [[1, 2], [3, 4]]]'.
        #[arg(long, conflicts_with = "inputs_file")]
        inputs: Option<String>,
        /// A file holding the inputs as JSON.
        #[arg(long)]
        inputs_file: Option<String>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Transformation {
    /// Inputs: the primals, then one tangent per input; outputs: the outputs, then their
    /// tangents.
    Jvp,
    /// The primal program (outputs, then residuals) and the linear program (residuals, then
    /// tangents, to output tangents).
    Linearize,
    /// The transpose of a linear program (see --residuals): residuals, then one cotangent
    /// per output, to one cotangent per linear input.
    Transpose,
    /// The primal program and the transposed linear program.
    Vjp,
    /// For a program with one float scalar output: inputs to (value, gradients...).
    Grad,
    /// The batched program (see --in-axes, --axis-size): outputs batched along axis 0.
    Vmap,
}

/// Options of `transform` that only some transformations use.
struct TransformOptions {
    residuals: usize,
    in_axes: Option<String>,
    axis_size: Option<usize>,
}

/// Reads `--in-axes` against the program's inputs. An axis counts in the *batched* input,
/// whose rank is one more than the program's input: `0..=rank`, or negative from the end
/// (`-1` is the last axis) as the library's `vmap` accepts.
fn parse_in_axes(text: &str, inputs: &[Aval]) -> Result<Vec<Option<usize>>, String> {
    let items: Vec<&str> = text.split(',').map(str::trim).collect();
    if items.len() != inputs.len() {
        return Err(format!(
            "--in-axes has {} entries but the program has {} input(s)",
            items.len(),
            inputs.len()
        ));
    }
    items
        .iter()
        .zip(inputs)
        .enumerate()
        .map(|(i, (s, a))| {
            if matches!(*s, "none" | "None") {
                return Ok(None);
            }
            let axis = s.parse::<i64>().map_err(|_| {
                format!("--in-axes entry {i} is `{s}`: expected an axis number or `none`")
            })?;
            let rank = a.ndim() + 1;
            let normal = if axis < 0 {
                usize::try_from(axis.unsigned_abs())
                    .ok()
                    .and_then(|back| rank.checked_sub(back))
            } else {
                usize::try_from(axis).ok().filter(|&ax| ax < rank)
            };
            normal.map(Some).ok_or_else(|| {
                format!(
                    "--in-axes entry {i}: axis {axis} is out of range for input {i} ({a}), \
                     whose batched rank is {rank} (axes {} to {})",
                    -(rank as i128),
                    rank - 1
                )
            })
        })
        .collect()
}

/// Refuses an `--axis-size` for which some input or output of the batched program could
/// not exist. Checked here, with checked arithmetic, before the library builds anything:
/// a size like 2^64 - 1 times an input's elements wraps in unchecked arithmetic and would
/// give a program whose shapes describe nothing. Every output is batched at axis 0.
fn check_batched_sizes(p: &Program, in_axes: &[Option<usize>], size: usize) -> Result<(), String> {
    let batched = |a: &Aval, ax: usize| {
        let mut shape = a.shape.clone();
        shape.insert(ax, size);
        Aval::new(shape, a.dtype)
    };
    let too_big = |what: String, a: &Aval| {
        format!(
            "--axis-size {size}: the batched {what} would be {a}, whose element count or byte \
             size overflows"
        )
    };
    for (i, (a, ax)) in p.in_avals().iter().zip(in_axes).enumerate() {
        if let Some(ax) = ax {
            let b = batched(a, *ax);
            if b.validate("--axis-size").is_err() {
                return Err(too_big(format!("input {i}"), &b));
            }
        }
    }
    for (k, a) in p.out_avals().iter().enumerate() {
        let b = batched(a, 0);
        if b.validate("--axis-size").is_err() {
            return Err(too_big(format!("output {k}"), &b));
        }
    }
    Ok(())
}

fn residual_sources(s: &ferrax::Split) -> String {
    let sources: Vec<String> = s
        .residuals
        .iter()
        .enumerate()
        .map(|(i, r)| match r {
            ferrax::ResidualSource::Input(k) => format!("r{i} = primal input {k}"),
            ferrax::ResidualSource::Output(k) if *k < s.n_outputs => {
                format!("r{i} = output {k}")
            }
            ferrax::ResidualSource::Output(k) => {
                format!("r{i} = residual output {k}")
            }
        })
        .collect();
    if sources.is_empty() {
        "none".to_string()
    } else {
        sources.join(", ")
    }
}

/// What a linear map of this split keeps alive per linearization, from the avals: the
/// residuals it computes (added), those forwarded from the inputs and outputs (shared with
/// the caller), and the constants of its program (shared by every linearization).
fn memory_line(s: &ferrax::Split, p: &Program) -> String {
    let bytes = |a: &ferrax::Aval| a.bytes();
    let (mut computed, mut forwarded) = (0usize, 0usize);
    let primal_out = s.primal.out_avals();
    let inputs = p.in_avals();
    for r in &s.residuals {
        match *r {
            ferrax::ResidualSource::Input(k) => {
                forwarded += inputs.get(k).map_or(0, bytes);
            }
            ferrax::ResidualSource::Output(k) if k < s.n_outputs => {
                forwarded += primal_out.get(k).map_or(0, bytes);
            }
            ferrax::ResidualSource::Output(k) => computed += primal_out.get(k).map_or(0, bytes),
        }
    }
    let consts: usize = s.linear.consts.iter().map(|(_, a)| a.aval().bytes()).sum();
    format!(
        "# memory: the linear map keeps {} bytes alive: {computed} of computed residuals (added per linearization), {forwarded} forwarded from inputs and outputs (shared with the caller), {consts} of constants",
        computed + forwarded + consts
    )
}

fn primal_header(s: &ferrax::Split) -> String {
    format!(
        "# primal program: {} output(s), then {} computed residual(s)\n{}",
        s.n_outputs,
        s.primal.outputs.len() - s.n_outputs,
        s.primal
    )
}

/// `FILE:LINE:COL: message` for an error located in the program text (an equation that is
/// not linear, a failure while evaluating one), `FILE: message` otherwise.
fn describe(file: &str, e: &Error) -> String {
    match e.loc() {
        Some(l) if l.file == ferrax::PROGRAM_TEXT => {
            let msg = e.to_string();
            let msg = msg.strip_suffix(&format!(" (at {l})")).unwrap_or(&msg);
            format!("{file}:{}:{}: {msg}", l.line, l.col)
        }
        _ => format!("{file}: {e}"),
    }
}

fn transform(
    t: Transformation,
    p: &Program,
    o: &TransformOptions,
    file: &str,
) -> Result<String, String> {
    if let Transformation::Vmap = t {
        // Type-check first: the size checks below read the declared avals.
        p.check().map_err(|e| describe(file, &e))?;
        let in_axes = match &o.in_axes {
            Some(text) => parse_in_axes(text, &p.in_avals()).map_err(|e| format!("{file}: {e}"))?,
            None => vec![Some(0); p.inputs.len()],
        };
        let size = o.axis_size.ok_or(format!(
            "{file}: vmap needs the length of the mapped axis: give --axis-size"
        ))?;
        check_batched_sizes(p, &in_axes, size).map_err(|e| format!("{file}: {e}"))?;
        // every value of the batched program is validated by the shape rules that made it
        let q = ferrax::vmap_program(p, &in_axes, size).map_err(|e| describe(file, &e))?;
        return Ok(q.to_string());
    }
    transform_ad(t, p, o.residuals).map_err(|e| describe(file, &e))
}

fn transform_ad(t: Transformation, p: &Program, residuals: usize) -> Result<String, ferrax::Error> {
    match t {
        Transformation::Vmap => unreachable!("handled by transform"),
        Transformation::Jvp => Ok(ferrax::jvp_program(p, &vec![true; p.inputs.len()])?.to_string()),
        Transformation::Linearize => {
            let s = ferrax::linearize_program(p)?;
            Ok(format!(
                "{}\n# linear program: {} residual(s) ({}), then {} tangent(s)\n{}\n{}",
                primal_header(&s),
                s.residuals.len(),
                residual_sources(&s),
                p.inputs.len(),
                memory_line(&s, p),
                s.linear
            ))
        }
        Transformation::Transpose => Ok(ferrax::transpose_program(p, residuals)?.to_string()),
        Transformation::Vjp => {
            let (s, t) = ferrax::vjp_program(p)?;
            Ok(format!(
                "{}\n# transposed linear program: {} residual(s) ({}), then {} cotangent(s)\n{}",
                primal_header(&s),
                s.residuals.len(),
                residual_sources(&s),
                p.outputs.len(),
                t
            ))
        }
        Transformation::Grad => Ok(ferrax::grad_program(p)?.to_string()),
    }
}

fn read_program(file: &str) -> Result<Program, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: cannot read: {e}"))?;
    Program::parse(&text).map_err(|e| match e {
        Error::Parse { line, col, msg } => format!("{file}:{line}:{col}: {msg}"),
        other => format!("{file}: {other}"),
    })
}

fn nist(
    names: Vec<String>,
    all: bool,
    json: bool,
    progress: bool,
    start: Option<usize>,
    data: Option<String>,
) -> Result<String, String> {
    use ferrax_solvers::nist;
    let dir = data
        .map(std::path::PathBuf::from)
        .unwrap_or_else(nist::data_dir);
    let names: Vec<&str> = if all {
        nist::ALL.to_vec()
    } else if names.is_empty() {
        return Err(
            "name one or more problems, or give --all (problems: ".to_string()
                + &nist::ALL.join(", ")
                + ")",
        );
    } else {
        // Every name is resolved before any fit runs, so a typo fails at once rather than
        // after the problems before it have been fitted.
        names
            .iter()
            .map(|n| {
                nist::problem_name(n).ok_or_else(|| {
                    format!("unknown problem `{n}` (problems: {})", nist::ALL.join(", "))
                })
            })
            .collect::<Result<_, _>>()?
    };
    let starts: Vec<usize> = match start {
        Some(s @ (1 | 2)) => vec![s],
        Some(s) => return Err(format!("--start must be 1 or 2, got {s}")),
        None => vec![1, 2],
    };
    let opts = ferrax_solvers::LsqOptions::default();
    let mut runs = vec![];
    let mut out = String::new();
    for name in &names {
        let p = nist::load(&dir, name).map_err(|e| e.to_string())?;
        for &s in &starts {
            let r = nist::run(&p, s, &opts).map_err(|e| format!("{name} start {s}: {e}"))?;
            if progress {
                // Progress is a side channel: when standard error cannot be written there is
                // nowhere to say so, and the fits on standard output still matter.
                let mut err = io::stderr().lock();
                for h in &r.fit.history {
                    let _ = writeln!(
                        err,
                        "{name} start {s} iteration {:4}: rss {:.10e} radius {:.3e} lambda {:.3e} trials {}",
                        h.iteration, h.rss, h.radius, h.lambda, h.trials
                    );
                }
            }
            if json {
                out.push_str(&nist::json(&r));
                out.push('\n');
            }
            runs.push(r);
        }
    }
    if json {
        return Ok(out.trim_end().to_string());
    }
    let s = nist::summary(&runs);
    Ok(format!(
        "{}\n{} runs: LRE >= 6 in {}, median LRE {:.1}, average {:.1}, smallest {:.1}",
        nist::markdown(&runs).trim_end(),
        s.total,
        s.good,
        s.median,
        s.mean,
        s.min
    ))
}

/// What a successful command prints: text, or the outputs of `eval` as one JSON list
/// (written element by element, never built as one string).
enum Output {
    Text(String),
    Json(Vec<ferrax::Array>),
}

fn run(cli: Cli) -> Result<Output, String> {
    let text = match cli.command {
        Command::Nist {
            names,
            all,
            json,
            progress,
            start,
            data,
        } => nist(names, all, json, progress, start, data)?,
        Command::Fit(args) => fit::fit(args)?,
        Command::Check { file } => {
            let p = read_program(&file)?;
            p.check().map_err(|e| format!("{file}: {e}"))?;
            let ins: Vec<String> = p.in_avals().iter().map(|a| a.to_string()).collect();
            let outs: Vec<String> = p.out_avals().iter().map(|a| a.to_string()).collect();
            format!(
                "{file}: ok: {} equation(s), ({}) -> ({})",
                p.eqns.len(),
                ins.join(", "),
                outs.join(", ")
            )
        }
        Command::Print { file } => read_program(&file)?.to_string(),
        Command::Transform {
            transformation,
            file,
            residuals,
            in_axes,
            axis_size,
        } => {
            let p = read_program(&file)?;
            let o = TransformOptions {
                residuals,
                in_axes,
                axis_size,
            };
            transform(transformation, &p, &o, &file)?
        }
        Command::Eval {
            file,
            inputs,
            inputs_file,
        } => {
            let p = read_program(&file)?;
            // The inputs are read against the declared input types: check those first.
            p.check().map_err(|e| format!("{file}: {e}"))?;
            let text = match (inputs, inputs_file) {
                (Some(t), _) => t,
                (None, Some(f)) => {
                    std::fs::read_to_string(&f).map_err(|e| format!("{f}: cannot read: {e}"))?
                }
                (None, None) if p.inputs.is_empty() => "[]".to_string(),
                (None, None) => {
                    return Err(format!(
                        "{file}: the program takes {} input(s): give them with --inputs",
                        p.inputs.len()
                    ))
                }
            };
            let value: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| format!("inputs: malformed JSON: {e}"))?;
            let serde_json::Value::Array(items) = value else {
                return Err("inputs: expected a JSON list with one entry per program input".into());
            };
            let avals = p.in_avals();
            if items.len() != avals.len() {
                return Err(format!(
                    "inputs: the program takes {} input(s), {} given",
                    avals.len(),
                    items.len()
                ));
            }
            let args = items
                .iter()
                .zip(&avals)
                .enumerate()
                .map(|(i, (v, a))| {
                    json::array_from_json(v, a).map_err(|e| format!("inputs: input {i} ({a}): {e}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let outs = p.eval(&args).map_err(|e| describe(&file, &e))?;
            return Ok(Output::Json(outs));
        }
    };
    Ok(Output::Text(text))
}

fn write_output(out: &mut dyn Write, o: &Output) -> io::Result<()> {
    match o {
        Output::Text(t) => writeln!(out, "{t}")?,
        Output::Json(arrays) => {
            out.write_all(b"[")?;
            for (i, a) in arrays.iter().enumerate() {
                if i > 0 {
                    out.write_all(b", ")?;
                }
                json::write_json(out, a)?;
            }
            out.write_all(b"]\n")?;
        }
    }
    out.flush()
}

/// Reports an error on standard error. If that cannot be written either there is nowhere
/// left to say so; the exit status still tells.
fn report(msg: &str) {
    let _ = writeln!(io::stderr().lock(), "error: {msg}");
}

/// The exit status after writing to standard output: a broken pipe is a reader that has
/// stopped reading (`| head`), not a failure; any other error (a full disk) is.
fn finish_output(written: io::Result<()>) -> ExitCode {
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            report(&format!("cannot write the output: {e}"));
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    // `try_parse`, not `parse`: clap's own exit ignores write errors, so `--help` into a
    // full disk would report success.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let printed = e.print();
            if e.use_stderr() {
                // A usage error: its message went to standard error, status 2.
                return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
            }
            // --help or --version, printed on standard output.
            return finish_output(printed.and_then(|()| io::stdout().flush()));
        }
    };
    match run(cli) {
        Ok(out) => {
            let mut w = io::BufWriter::new(io::stdout().lock());
            finish_output(write_output(&mut w, &out))
        }
        Err(msg) => {
            report(&msg);
            ExitCode::FAILURE
        }
    }
}
