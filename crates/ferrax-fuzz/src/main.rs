//! The `ferrax-fuzz` command.
//!
//! * `ferrax-fuzz [--target T] [--seed N] [--iterations N] [--seconds T] ...`: fuzz.
//! * `ferrax-fuzz replay FILE...`: run saved inputs (regressions, findings) once more.
//! * `ferrax-fuzz worker`: the hidden worker mode the fuzzer starts itself in.
//!
//! Exits with 1 when anything was found (or a replayed input fails), 2 on usage errors.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "ferrax-fuzz",
    about = "Fuzz ferrax: mutated and random programs, the CLI, NIST files",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// programs, random, cli, nist, scaling or all.
    #[arg(long, default_value = "all")]
    target: String,
    /// The seed of the run (default: random, printed so the run can be repeated).
    #[arg(long)]
    seed: Option<u64>,
    /// Inputs per target (default 1000 when --seconds is not given either).
    #[arg(long)]
    iterations: Option<u64>,
    /// Seconds for the whole run (shared among the targets of `all`).
    #[arg(long)]
    seconds: Option<f64>,
    /// Per-input timeout: longer is a hang.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    /// Where findings are written (default: target/fuzz-findings/seed-N).
    #[arg(long)]
    findings: Option<PathBuf>,
    /// Address-space limit of the worker and of CLI runs, in MiB.
    #[arg(long, default_value_t = 4096)]
    mem_limit_mb: u64,
    /// The ferrax binary for the cli target (default: built beside this one).
    #[arg(long)]
    ferrax_bin: Option<PathBuf>,
    /// Chain lengths for the scaling target, comma separated.
    #[arg(long, default_value = "1000,4000")]
    chain: String,
    /// Do not shrink new findings.
    #[arg(long)]
    no_minimize: bool,
    /// Print each new finding as it is found.
    #[arg(short, long)]
    verbose: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run saved inputs: .fx (or any other) as program texts, .dat as NIST files, .cli as
    /// CLI invocations. Exits with 1 if any of them fails.
    Replay {
        files: Vec<PathBuf>,
        #[arg(long, default_value_t = 10_000)]
        timeout_ms: u64,
        #[arg(long)]
        ferrax_bin: Option<PathBuf>,
        /// Job seeds to run each input with (the `job seed` of a finding), comma separated.
        #[arg(long, default_value = "0,1,2")]
        seeds: String,
    },
    #[command(hide = true)]
    Worker {
        #[arg(long, default_value_t = 4096)]
        mem_limit_mb: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("ferrax-fuzz: cannot find my own executable: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Some(Command::Worker { mem_limit_mb }) => {
            ferrax_fuzz::worker::main(mem_limit_mb << 20);
            ExitCode::SUCCESS
        }
        Some(Command::Replay {
            files,
            timeout_ms,
            ferrax_bin,
            seeds,
        }) => {
            let Ok(seeds) = seeds
                .split(',')
                .map(|s| s.trim().parse::<u64>())
                .collect::<Result<Vec<_>, _>>()
            else {
                eprintln!("ferrax-fuzz: --seeds takes numbers like 0,1,2");
                return ExitCode::from(2);
            };
            let needs_cli = files
                .iter()
                .any(|f| f.extension().is_some_and(|e| e == "cli"));
            let bin = match (ferrax_bin, needs_cli) {
                (Some(b), _) => Some(b),
                (None, true) => ferrax_fuzz::targets::cli::ferrax_binary(None, true).ok(),
                (None, false) => None,
            };
            let results = ferrax_fuzz::replay(
                &files,
                &exe,
                bin.as_deref(),
                Duration::from_millis(timeout_ms),
                &seeds,
            );
            let mut failed = 0;
            for r in &results {
                let status = if r.failures.is_empty() {
                    "ok  "
                } else {
                    "FAIL"
                };
                let acc = if r.accepted { "accepted" } else { "rejected" };
                println!("{status} {} ({acc})", r.path.display());
                for f in &r.failures {
                    println!("     {f}");
                }
                for n in &r.notes {
                    println!("     note: {n}");
                }
                failed += !r.failures.is_empty() as usize;
            }
            println!("{} of {} inputs fail", failed, results.len());
            if failed > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        None => {
            let seed = cli.seed.unwrap_or_else(|| {
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0);
                t ^ ((std::process::id() as u64) << 32)
            });
            let mut opts = ferrax_fuzz::Options::new(&cli.target, seed, exe);
            opts.iterations = cli.iterations;
            opts.seconds = cli.seconds;
            opts.timeout = Duration::from_millis(cli.timeout_ms);
            if let Some(f) = cli.findings {
                opts.findings = f;
            }
            opts.mem_limit_mb = cli.mem_limit_mb;
            opts.ferrax_bin = cli.ferrax_bin;
            opts.chain = match cli
                .chain
                .split(',')
                .map(|s| s.trim().parse::<usize>())
                .collect::<Result<Vec<_>, _>>()
            {
                Ok(c) => c,
                Err(_) => {
                    eprintln!("ferrax-fuzz: --chain takes lengths like 1000,4000");
                    return ExitCode::from(2);
                }
            };
            opts.minimize = !cli.no_minimize;
            opts.verbose = cli.verbose;
            println!(
                "ferrax-fuzz: seed {seed} (repeat with --seed {seed}), profile {}, target {}, findings in {}",
                ferrax_fuzz::profile_name(),
                opts.target,
                opts.findings.display()
            );
            let (stats, findings) = match ferrax_fuzz::fuzz(&opts) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("ferrax-fuzz: {e}");
                    return ExitCode::from(2);
                }
            };
            let total: u64 = stats.iter().map(|(_, s)| s.inputs).sum();
            let failures = findings.failures();
            println!(
                "total: {total} inputs; {} distinct findings ({failures} failures, {} notes)",
                findings.by_key.len(),
                findings.by_key.len() - failures
            );
            print!("{}", findings.summary());
            if failures > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}
