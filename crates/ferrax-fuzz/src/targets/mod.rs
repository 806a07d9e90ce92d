//! The fuzz targets and what they share.
//!
//! Each target makes inputs from its own seeded random stream, runs them (in the worker
//! through [`Ctx::run_job`], or as a subprocess for `cli`), and counts the outcomes into a
//! [`Stats`]. New findings are recorded in [`Findings`] and, when possible, shrunk.
//!
//! * [`programs`]: mutated program texts.
//! * [`random`]: random well-typed programs.
//! * [`cli`]: malformed invocations of the `ferrax` binary.
//! * [`nist`]: mutated NIST StRD files.
//! * [`scaling`]: long chains timed through every stage (quadratic behaviour, hangs).

pub mod cli;
pub mod nist;
pub mod programs;
pub mod random;
pub mod scaling;

use std::time::{Duration, Instant};

use rand_chacha::ChaCha8Rng;

use crate::findings::{Findings, Stats};
use crate::job::{EventKind, Job, StageEnd};
use crate::minimize;
use crate::supervisor::{Outcome, Supervisor};

/// When a target stops: after `iterations` inputs or at `deadline`, whichever comes first.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    pub iterations: Option<u64>,
    pub deadline: Option<Instant>,
}

impl Budget {
    pub fn more(&self, done: u64) -> bool {
        self.iterations.is_none_or(|n| done < n) && self.deadline.is_none_or(|d| Instant::now() < d)
    }
}

/// What a target runs with.
pub struct Ctx<'a> {
    pub name: &'static str,
    pub sup: &'a mut Supervisor,
    pub findings: &'a mut Findings,
    pub rng: ChaCha8Rng,
    pub budget: Budget,
    pub minimize: bool,
    pub verbose: bool,
    pub stats: Stats,
    /// Settings of the run the targets may need.
    pub opts: &'a crate::Options,
}

impl Ctx<'_> {
    /// Runs a job in the worker, counts it and records (and shrinks) what it found.
    /// Returns the outcome for the target's own use (e.g. growing a corpus).
    pub fn run_job(&mut self, job: &Job) -> Outcome {
        let outcome = self.sup.run(job);
        let new = self.tally(job, &outcome);
        for (key, can_shrink) in new {
            if !(self.minimize && can_shrink) {
                continue;
            }
            let canonical = match &outcome {
                Outcome::Done(r) => r.canonical.clone(),
                _ => None,
            };
            // at most 10 s per finding, and never past the target's deadline
            let left = self.budget.deadline.map_or(Duration::from_secs(10), |d| {
                d.saturating_duration_since(Instant::now())
            });
            if let Some(min) = minimize::shrink(
                self.sup,
                job,
                &key,
                canonical.as_deref(),
                200,
                left.min(Duration::from_secs(10)),
            ) {
                if self.verbose {
                    eprintln!("  minimized to:\n{min}");
                }
                self.findings.set_minimized(&key, min);
            }
        }
        outcome
    }

    /// Counts an outcome and records its findings; returns the new findings' keys, each
    /// with whether it may be shrunk.
    pub fn tally(&mut self, job: &Job, outcome: &Outcome) -> Vec<(String, bool)> {
        let s = &mut self.stats;
        s.inputs += 1;
        let input = job.input_text();
        let seed_note = match job {
            Job::Program { seed, .. } | Job::Nist { seed, .. } => {
                format!("\n(job seed {seed}: replay with --seeds {seed})")
            }
            Job::Scaling { .. } => String::new(),
        };
        let mut new = vec![];
        match outcome {
            Outcome::Done(r) => {
                for (_, e) in &r.stages {
                    match e {
                        StageEnd::Ok => s.stages_ok += 1,
                        StageEnd::Err => s.stages_err += 1,
                        StageEnd::Skipped => s.stages_skipped += 1,
                        StageEnd::Panic => {}
                    }
                }
                if r.has(EventKind::Panic) {
                    s.panics += 1;
                } else if r.has(EventKind::Violation) {
                    s.violations += 1;
                } else if r.accepted {
                    s.ok += 1;
                } else {
                    s.err += 1;
                }
                if r.has(EventKind::Note)
                    && !r.has(EventKind::Panic)
                    && !r.has(EventKind::Violation)
                {
                    s.notes += 1;
                }
                for e in &r.events {
                    let key = e.dedup_key();
                    if let Some(k) = self.findings.record(
                        self.name,
                        e.kind.name(),
                        key,
                        &e.stage,
                        &format!("{}{seed_note}", e.message),
                        e.location.as_deref(),
                        &input,
                    ) {
                        if self.verbose {
                            eprintln!("[{}] new: {k}", self.name);
                        }
                        new.push((k, e.kind != EventKind::Note));
                    }
                }
            }
            Outcome::Died { how, stage, stderr } => {
                s.aborts += 1;
                let key = outcome.crash_key().expect("a crash");
                let msg =
                    format!("the worker {how}{seed_note}\n--- end of its stderr ---\n{stderr}");
                if let Some(k) = self.findings.record(
                    self.name,
                    "abort",
                    key,
                    stage.as_deref().unwrap_or("start"),
                    &msg,
                    None,
                    &input,
                ) {
                    if self.verbose {
                        eprintln!("[{}] new: {k}", self.name);
                    }
                    new.push((k, true));
                }
            }
            Outcome::Hung {
                stage,
                secs,
                stderr,
            } => {
                s.hangs += 1;
                let key = outcome.crash_key().expect("a hang");
                let msg = format!(
                    "no report after {secs:.1} s; the worker was killed{seed_note}\n--- end of its stderr ---\n{stderr}"
                );
                if let Some(k) = self.findings.record(
                    self.name,
                    "hang",
                    key,
                    stage.as_deref().unwrap_or("start"),
                    &msg,
                    None,
                    &input,
                ) {
                    if self.verbose {
                        eprintln!("[{}] new: {k}", self.name);
                    }
                    new.push((k, false));
                }
            }
        }
        new
    }
}
