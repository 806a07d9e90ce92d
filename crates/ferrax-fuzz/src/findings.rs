//! Counting inputs and recording findings.
//!
//! [`Stats`] holds one target's figures (inputs, Ok, Err, panics, aborts, hangs, invariant
//! violations, notes). [`Findings`] deduplicates what was found by its key (panic location
//! and message, abort message, hang stage, violation message with numbers blanked out) and
//! writes each new finding to the findings directory as two files: `NNN-KIND-SLUG.txt` (what
//! was found, where, how often, how to replay) and the input itself, ready for
//! `ferrax-fuzz replay`: `NNN-KIND-SLUG.fx` (program texts), `.dat` (NIST files) or `.cli`
//! (CLI invocations), plus `NNN-KIND-SLUG.min.fx` (...) once it is minimized.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// One target's figures.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub inputs: u64,
    /// Accepted (parsed, checked) and nothing found.
    pub ok: u64,
    /// Rejected with an error, nothing found.
    pub err: u64,
    pub panics: u64,
    pub aborts: u64,
    pub hangs: u64,
    pub violations: u64,
    /// Inputs with a note only (not failures).
    pub notes: u64,
    /// Stages run and how they ended, over all inputs.
    pub stages_ok: u64,
    pub stages_err: u64,
    pub stages_skipped: u64,
    pub seconds: f64,
}

impl Stats {
    pub fn failures(&self) -> u64 {
        self.panics + self.aborts + self.hangs + self.violations
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "inputs {} | Ok {} | Err {} | panics {} | aborts {} | hangs {} | invariant violations {} | notes {} | stages ok {} err {} skipped {} | {:.1} s",
            self.inputs,
            self.ok,
            self.err,
            self.panics,
            self.aborts,
            self.hangs,
            self.violations,
            self.notes,
            self.stages_ok,
            self.stages_err,
            self.stages_skipped,
            self.seconds
        )
    }
}

/// One distinct finding.
#[derive(Clone, Debug)]
pub struct Finding {
    pub key: String,
    /// `panic`, `abort`, `hang`, `violation` or `note`.
    pub kind: String,
    pub target: String,
    pub stage: String,
    pub message: String,
    pub location: Option<String>,
    pub input: String,
    pub minimized: Option<String>,
    pub count: u64,
    pub stem: PathBuf,
}

impl Finding {
    pub fn is_failure(&self) -> bool {
        self.kind != "note"
    }

    /// The extension `replay` reads the input by.
    fn ext(&self) -> &'static str {
        match self.target.as_str() {
            "nist" => "dat",
            "cli" => "cli",
            "scaling" => "txt.input",
            _ => "fx",
        }
    }

    /// The file holding the input (minimized: `.min.` before the extension).
    pub fn input_path(&self, minimized: bool) -> PathBuf {
        let min = if minimized { "min." } else { "" };
        self.stem.with_extension(format!("{min}{}", self.ext()))
    }
}

/// The distinct findings of a run, written as they are found.
pub struct Findings {
    dir: PathBuf,
    pub seed: u64,
    pub by_key: BTreeMap<String, Finding>,
    next: usize,
}

fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
        if out.len() > 48 {
            break;
        }
    }
    out.trim_matches('-').to_string()
}

impl Findings {
    pub fn new(dir: &Path, seed: u64) -> Findings {
        Findings {
            dir: dir.to_path_buf(),
            seed,
            by_key: BTreeMap::new(),
            next: 0,
        }
    }

    /// Records a finding; returns its key when it is new (the caller may minimize it).
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &mut self,
        target: &str,
        kind: &str,
        key: String,
        stage: &str,
        message: &str,
        location: Option<&str>,
        input: &str,
    ) -> Option<String> {
        if let Some(f) = self.by_key.get_mut(&key) {
            f.count += 1;
            // keep the shortest input that shows it
            if input.len() < f.input.len() {
                f.input = input.to_string();
                let _ = std::fs::write(f.input_path(false), input);
            }
            return None;
        }
        self.next += 1;
        let what = location
            .map(|l| l.rsplit('/').next().unwrap_or(l).to_string())
            .unwrap_or_else(|| stage.to_string());
        let stem = self
            .dir
            .join(target)
            .join(format!("{:03}-{kind}-{}", self.next, slug(&what)));
        let f = Finding {
            key: key.clone(),
            kind: kind.to_string(),
            target: target.to_string(),
            stage: stage.to_string(),
            message: message.to_string(),
            location: location.map(str::to_string),
            input: input.to_string(),
            minimized: None,
            count: 1,
            stem,
        };
        self.write(&f);
        self.by_key.insert(key.clone(), f);
        Some(key)
    }

    pub fn set_minimized(&mut self, key: &str, min: String) {
        if let Some(f) = self.by_key.get_mut(key) {
            f.minimized = Some(min);
            let f = f.clone();
            self.write(&f);
        }
    }

    fn write(&self, f: &Finding) {
        if let Some(parent) = f.stem.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let mut t = format!(
            "kind: {}\ntarget: {}\nstage: {}\nkey: {}\nlocation: {}\nseed of the run: {}\nreplay: cargo run --profile fuzz -p ferrax-fuzz -- replay [--seeds JOB_SEED] {}\n\n{}\n",
            f.kind,
            f.target,
            f.stage,
            f.key,
            f.location.as_deref().unwrap_or("-"),
            self.seed,
            f.input_path(f.minimized.is_some()).display(),
            f.message
        );
        if let Some(m) = &f.minimized {
            t.push_str(&format!("\n--- minimized input ---\n{m}\n"));
        }
        t.push_str(&format!("\n--- input ---\n{}\n", f.input));
        let _ = std::fs::write(f.stem.with_extension("txt"), t);
        let _ = std::fs::write(f.input_path(false), &f.input);
        if let Some(m) = &f.minimized {
            let _ = std::fs::write(f.input_path(true), m);
        }
    }

    /// Writes `summary.txt` (one line per distinct finding, with counts) and returns it.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        for f in self.by_key.values() {
            s.push_str(&format!(
                "{:>6}x {:9} [{}] {}\n        {}\n",
                f.count,
                f.kind,
                f.target,
                f.key,
                f.stem.with_extension("txt").display()
            ));
        }
        let _ = std::fs::create_dir_all(&self.dir);
        let _ = std::fs::write(self.dir.join("summary.txt"), &s);
        s
    }

    pub fn failures(&self) -> usize {
        self.by_key.values().filter(|f| f.is_failure()).count()
    }
}
