//! # ferrax-fuzz
//!
//! A fuzz harness for ferrax that builds on stable Rust (no cargo-fuzz, no libFuzzer). It
//! feeds every public stage of ferrax inputs made to break it, and holds ferrax to issue
//! 10's promise: every bad input is an `Err`; nothing panics, aborts, hangs or accepts an
//! ill-typed program; whatever parses prints back to itself. See `docs/fuzzing.md`.
//!
//! The pieces:
//!
//! * [`gen`]: random well-typed programs, written as canonical text.
//! * [`mutate`]: byte-, token- and line-level mutations and splicing of texts.
//! * [`seeds`]: hand-written programs covering every primitive.
//! * [`driver`]: one input through every stage, in process, catching panics.
//! * [`worker`] and [`supervisor`]: the driver in a child process with an address-space
//!   limit, watched for deaths by signal or abort and for hangs.
//! * [`targets`]: `programs`, `random`, `cli`, `nist` and `scaling`.
//! * [`findings`]: counting, deduplicating and writing what was found.
//! * [`minimize`]: shrinking a finding's input.
//!
//! [`fuzz`] runs targets for a number of inputs or seconds; [`replay`] runs saved inputs
//! (the regression corpus in `regressions/`, or a finding's `.input` file).

pub mod driver;
pub mod findings;
pub mod gen;
pub mod job;
pub mod minimize;
pub mod mutate;
pub mod seeds;
pub mod supervisor;
pub mod targets;
pub mod worker;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::findings::{Findings, Stats};
use crate::job::{EventKind, Job};
use crate::supervisor::{Outcome, Supervisor};
use crate::targets::{Budget, Ctx};

/// The targets `all` runs, in order, with their shares of a time budget.
pub const TARGETS: &[(&str, f64)] = &[
    ("programs", 0.33),
    ("random", 0.33),
    ("nist", 0.12),
    ("cli", 0.14),
    ("scaling", 0.08),
];

/// Settings of a fuzz run.
#[derive(Clone, Debug)]
pub struct Options {
    /// A target name or `all`.
    pub target: String,
    pub seed: u64,
    /// Inputs per target.
    pub iterations: Option<u64>,
    /// Seconds for the whole run (shared among the targets of `all`).
    pub seconds: Option<f64>,
    /// Per-input timeout.
    pub timeout: Duration,
    pub findings: PathBuf,
    pub mem_limit_mb: u64,
    /// The `ferrax` binary for the `cli` target (default: built beside this one).
    pub ferrax_bin: Option<PathBuf>,
    /// Chain lengths for the `scaling` target.
    pub chain: Vec<usize>,
    pub minimize: bool,
    pub verbose: bool,
    /// The executable started as the worker (`ferrax-fuzz worker`).
    pub worker_exe: PathBuf,
}

impl Options {
    /// Defaults for a run of `target` with `seed`: findings under `target/fuzz-findings`.
    pub fn new(target: &str, seed: u64, worker_exe: PathBuf) -> Options {
        Options {
            target: target.to_string(),
            seed,
            iterations: None,
            seconds: None,
            timeout: Duration::from_secs(10),
            findings: default_findings_dir().join(format!("seed-{seed}")),
            mem_limit_mb: 4096,
            ferrax_bin: None,
            chain: vec![1000, 4000],
            minimize: true,
            verbose: false,
            worker_exe,
        }
    }
}

/// `target/fuzz-findings` of the workspace.
pub fn default_findings_dir() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = crate_dir
        .parent()
        .and_then(Path::parent)
        .unwrap_or(crate_dir);
    root.join("target/fuzz-findings")
}

/// The cargo profile this executable was built with (from its folder's name).
pub fn profile_name() -> String {
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    match dir.file_name().and_then(|s| s.to_str()) {
        Some("debug") => "dev".into(),
        Some(p) => p.into(),
        None => "?".into(),
    }
}

/// Runs the chosen targets; returns each target's figures and the findings.
pub fn fuzz(opts: &Options) -> Result<(Vec<(String, Stats)>, Findings), String> {
    let names: Vec<(&str, f64)> = if opts.target == "all" {
        TARGETS.to_vec()
    } else {
        match TARGETS.iter().find(|(n, _)| *n == opts.target) {
            Some(&(n, _)) => vec![(n, 1.0)],
            None => {
                return Err(format!(
                    "unknown target `{}` (programs, random, cli, nist, scaling, all)",
                    opts.target
                ))
            }
        }
    };
    let _ = std::fs::create_dir_all(&opts.findings);
    let mut findings = Findings::new(&opts.findings, opts.seed);
    let mut sup = Supervisor::new(opts.worker_exe.clone(), opts.mem_limit_mb, opts.timeout);
    let t0 = Instant::now();
    let mut share_sum = 0.0;
    let mut all = vec![];
    for (k, (name, share)) in names.iter().enumerate() {
        share_sum += share;
        let deadline = opts
            .seconds
            .map(|s| t0 + Duration::from_secs_f64(s * share_sum));
        let iterations = match (opts.iterations, opts.seconds) {
            (None, None) => Some(1000),
            (n, _) => n,
        };
        let mut ctx = Ctx {
            name,
            sup: &mut sup,
            findings: &mut findings,
            rng: ChaCha8Rng::seed_from_u64(
                opts.seed ^ (k as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            ),
            budget: Budget {
                iterations,
                deadline,
            },
            minimize: opts.minimize,
            verbose: opts.verbose,
            stats: Stats::default(),
            opts,
        };
        let start = Instant::now();
        match *name {
            "programs" => targets::programs::run(&mut ctx),
            "random" => targets::random::run(&mut ctx),
            "nist" => targets::nist::run(&mut ctx),
            "cli" => targets::cli::run(&mut ctx),
            "scaling" => targets::scaling::run(&mut ctx, &opts.chain),
            _ => unreachable!("listed in TARGETS"),
        }
        ctx.stats.seconds = start.elapsed().as_secs_f64();
        println!("{name:>8}: {}", ctx.stats);
        all.push((name.to_string(), ctx.stats));
    }
    Ok((all, findings))
}

/// What replaying one saved input showed.
#[derive(Clone, Debug)]
pub struct Replay {
    pub path: PathBuf,
    /// Failures (panics, aborts, hangs, violations), empty when it passed.
    pub failures: Vec<String>,
    /// Whether ferrax accepted the input (parsed it, or the CLI exited with 0).
    pub accepted: bool,
    /// Notes (e.g. NaN payloads) that do not fail.
    pub notes: Vec<String>,
}

/// Replays saved inputs: `.dat` files as NIST inputs, `.cli` files as CLI invocations
/// (skipped without a `ferrax` binary), everything else as program texts, each through
/// the worker with the given job seeds (seeds pick the random inputs, vmap axes and sizes).
pub fn replay(
    paths: &[PathBuf],
    worker_exe: &Path,
    ferrax_bin: Option<&Path>,
    timeout: Duration,
    seeds: &[u64],
) -> Vec<Replay> {
    let mut sup = Supervisor::new(worker_exe.to_path_buf(), 4096, timeout);
    let mut out = vec![];
    for path in paths {
        let mut r = Replay {
            path: path.clone(),
            failures: vec![],
            accepted: false,
            notes: vec![],
        };
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                r.failures.push(format!("cannot read: {e}"));
                out.push(r);
                continue;
            }
        };
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ext == "cli" {
            replay_cli(&text, ferrax_bin, timeout, &mut r);
            out.push(r);
            continue;
        }
        for &seed in seeds {
            // one failing seed is enough (and a hang costs a whole timeout)
            if !r.failures.is_empty() {
                break;
            }
            let job = if ext == "dat" {
                Job::Nist {
                    text: text.clone(),
                    seed,
                }
            } else {
                Job::Program {
                    text: text.clone(),
                    seed,
                    generated: false,
                }
            };
            match sup.run(&job) {
                Outcome::Done(rep) => {
                    r.accepted |= rep.accepted;
                    for e in rep.events {
                        let line = format!(
                            "{} in {}: {}{}",
                            e.kind.name(),
                            e.stage,
                            // the message and its detail line, without the seed note
                            e.message
                                .lines()
                                .take(2)
                                .filter(|l| !l.starts_with("(job seed"))
                                .collect::<Vec<_>>()
                                .join(": "),
                            e.location.map(|l| format!(" at {l}")).unwrap_or_default()
                        );
                        let list = if e.kind == EventKind::Note {
                            &mut r.notes
                        } else {
                            &mut r.failures
                        };
                        if !list.contains(&line) {
                            list.push(line);
                        }
                    }
                }
                o => {
                    let line = o.crash_key().unwrap_or_default();
                    if !r.failures.contains(&line) {
                        r.failures.push(line);
                    }
                }
            }
        }
        out.push(r);
    }
    out
}

fn replay_cli(text: &str, ferrax_bin: Option<&Path>, timeout: Duration, r: &mut Replay) {
    use targets::cli::{judge, CliOutcome, CliRunner, Invocation};
    let Some(inv) = serde_json::from_str(text)
        .ok()
        .and_then(|v| Invocation::from_json(&v))
    else {
        r.failures.push("not a CLI invocation (JSON)".into());
        return;
    };
    let Some(bin) = ferrax_bin else {
        r.notes.push("skipped: no ferrax binary".into());
        return;
    };
    let runner = CliRunner {
        bin: bin.canonicalize().unwrap_or_else(|_| bin.to_path_buf()),
        work: std::env::temp_dir().join(format!("ferrax-fuzz-replay-{}", std::process::id())),
        timeout,
        mem_limit_bytes: 4096 << 20,
    };
    let o = runner.run(&inv);
    if let CliOutcome::NotRun(e) = &o {
        r.failures.push(format!("not run: {e}"));
    }
    r.accepted = matches!(o, CliOutcome::Exited { code: 0, .. });
    if let Some((kind, key, _, _)) = judge(&inv, &o) {
        r.failures.push(format!("{kind}: {key}"));
    }
    let _ = std::fs::remove_dir_all(&runner.work);
}
