//! The `ferrax` command line: reads program texts, checks and evaluates them.
//!
//! * `ferrax check FILE`: parse and type-check a program text.
//! * `ferrax eval FILE --inputs JSON`: evaluate it on JSON inputs, print JSON outputs.
//! * `ferrax print FILE`: print the program in canonical form.
//! * `ferrax transform jvp|linearize FILE`: print the transformed program(s).
//!
//! Errors go to standard error as `FILE:LINE:COLUMN: message` (for text errors) and the exit
//! status is 1; usage errors exit with 2.

mod json;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ferrax::{Error, Program};

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
    },
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
}

fn transform(t: Transformation, p: &Program) -> Result<String, ferrax::Error> {
    match t {
        Transformation::Jvp => Ok(ferrax::jvp_program(p, &vec![true; p.inputs.len()])?.to_string()),
        Transformation::Linearize => {
            let s = ferrax::linearize_program(p)?;
            let sources: Vec<String> = s
                .residuals
                .iter()
                .enumerate()
                .map(|(i, r)| match r {
                    ferrax::partial_eval::ResidualSource::Input(k) => {
                        format!("r{i} = primal input {k}")
                    }
                    ferrax::partial_eval::ResidualSource::Output(k) if *k < s.n_outputs => {
                        format!("r{i} = output {k}")
                    }
                    ferrax::partial_eval::ResidualSource::Output(k) => {
                        format!("r{i} = residual output {k}")
                    }
                })
                .collect();
            Ok(format!(
                "# primal program: {} output(s), then {} computed residual(s)
{}
# linear program: {} residual(s) ({}), then {} tangent(s)
{}",
                s.n_outputs,
                s.primal.outputs.len() - s.n_outputs,
                s.primal,
                s.residuals.len(),
                if sources.is_empty() {
                    "none".to_string()
                } else {
                    sources.join(", ")
                },
                p.inputs.len(),
                s.linear
            ))
        }
    }
}

fn read_program(file: &str) -> Result<Program, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: cannot read: {e}"))?;
    Program::parse(&text).map_err(|e| match e {
        Error::Parse { line, col, msg } => format!("{file}:{line}:{col}: {msg}"),
        other => format!("{file}: {other}"),
    })
}

fn run(cli: Cli) -> Result<String, String> {
    match cli.command {
        Command::Check { file } => {
            let p = read_program(&file)?;
            p.check().map_err(|e| format!("{file}: {e}"))?;
            let ins: Vec<String> = p.in_avals().iter().map(|a| a.to_string()).collect();
            let outs: Vec<String> = p.out_avals().iter().map(|a| a.to_string()).collect();
            Ok(format!(
                "{file}: ok: {} equation(s), ({}) -> ({})",
                p.eqns.len(),
                ins.join(", "),
                outs.join(", ")
            ))
        }
        Command::Print { file } => Ok(read_program(&file)?.to_string()),
        Command::Transform {
            transformation,
            file,
        } => {
            let p = read_program(&file)?;
            transform(transformation, &p).map_err(|e| format!("{file}: {e}"))
        }
        Command::Eval {
            file,
            inputs,
            inputs_file,
        } => {
            let p = read_program(&file)?;
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
            let outs = p.eval(&args).map_err(|e| format!("{file}: {e}"))?;
            let parts: Vec<String> = outs.iter().map(json::array_to_json).collect();
            Ok(format!("[{}]", parts.join(", ")))
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}
