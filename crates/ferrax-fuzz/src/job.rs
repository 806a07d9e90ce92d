//! What the parent sends a worker and what comes back.
//!
//! A [`Job`] is one input for the in-process driver (`driver`): a program text, a NIST file
//! or a scaling measurement. A [`Report`] is what the driver saw: whether the input was
//! accepted, how each stage ended, and the [`Event`]s (panics, invariant violations, notes)
//! worth recording. Both travel between processes as one line of JSON each, so the worker
//! protocol is plain text that a person can read in a log.

use serde_json::{json, Value};

/// One input for the driver.
#[derive(Clone, Debug, PartialEq)]
pub enum Job {
    /// A program text through every stage. `generated` texts come from the random
    /// well-typed generator and must parse and print back to themselves.
    Program {
        text: String,
        seed: u64,
        generated: bool,
    },
    /// A NIST StRD `.dat` text through the parser and the fitting entry point.
    Nist { text: String, seed: u64 },
    /// A chain of `n` equations timed through print, parse and every pass.
    Scaling { n: usize },
}

impl Job {
    pub fn to_json(&self) -> Value {
        match self {
            Job::Program {
                text,
                seed,
                generated,
            } => json!({"kind": "program", "text": text, "seed": seed, "generated": generated}),
            Job::Nist { text, seed } => json!({"kind": "nist", "text": text, "seed": seed}),
            Job::Scaling { n } => json!({"kind": "scaling", "n": n}),
        }
    }

    pub fn from_json(v: &Value) -> Option<Job> {
        let text = || v["text"].as_str().map(str::to_string);
        let seed = v["seed"].as_u64().unwrap_or(0);
        Some(match v["kind"].as_str()? {
            "program" => Job::Program {
                text: text()?,
                seed,
                generated: v["generated"].as_bool().unwrap_or(false),
            },
            "nist" => Job::Nist {
                text: text()?,
                seed,
            },
            "scaling" => Job::Scaling {
                n: v["n"].as_u64()? as usize,
            },
            _ => return None,
        })
    }

    /// The input as a person would save it (the text, or a description).
    pub fn input_text(&self) -> String {
        match self {
            Job::Program { text, .. } | Job::Nist { text, .. } => text.clone(),
            Job::Scaling { n } => format!("scaling chain of {n} equations"),
        }
    }

    pub fn with_text(&self, new_text: String) -> Job {
        match self {
            Job::Program {
                seed, generated, ..
            } => Job::Program {
                text: new_text,
                seed: *seed,
                generated: *generated,
            },
            Job::Nist { seed, .. } => Job::Nist {
                text: new_text,
                seed: *seed,
            },
            Job::Scaling { n } => Job::Scaling { n: *n },
        }
    }
}

/// How an event counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// A panic caught with `catch_unwind`.
    Panic,
    /// An invariant broken without a panic: an ill-typed program accepted, a round trip that
    /// is not the identity, jit disagreeing with eval, ...
    Violation,
    /// Worth reporting but not a failure (e.g. NaN payloads that differ, see issue 10).
    Note,
}

impl EventKind {
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Panic => "panic",
            EventKind::Violation => "violation",
            EventKind::Note => "note",
        }
    }

    fn from_name(s: &str) -> Option<EventKind> {
        Some(match s {
            "panic" => EventKind::Panic,
            "violation" => EventKind::Violation,
            "note" => EventKind::Note,
            _ => return None,
        })
    }
}

/// Something found while running one input.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub kind: EventKind,
    /// The stage it happened in (`parse`, `jvp`, `jit-vs-eval`, ...).
    pub stage: String,
    pub message: String,
    /// `file:line:column` of a panic.
    pub location: Option<String>,
}

impl Event {
    /// What findings are deduplicated by: the kind, the stage family and the panic location
    /// (or, without one, the message with its numbers blanked out).
    pub fn dedup_key(&self) -> String {
        match &self.location {
            Some(loc) => format!(
                "{} at {} in {} ({})",
                self.kind.name(),
                loc_without_column(loc),
                self.stage,
                blank_numbers(first_line(&self.message))
            ),
            None => format!(
                "{} in {}: {}",
                self.kind.name(),
                self.stage,
                blank_numbers(first_line(&self.message))
            ),
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

fn loc_without_column(loc: &str) -> &str {
    match loc.rsplit_once(':') {
        Some((head, col)) if col.chars().all(|c| c.is_ascii_digit()) => head,
        _ => loc,
    }
}

/// Replaces every run of digits with `#` and every name in backquotes with `` `_` ``, and
/// cuts the text at 120 characters, so messages that differ only in sizes, indices or the
/// primitive they name fall together.
pub fn blank_numbers(s: &str) -> String {
    let mut out = String::new();
    let mut in_digits = false;
    let mut quoted = false;
    for c in s.chars() {
        if c == '`' {
            quoted = !quoted;
            out.push_str(if quoted { "`_" } else { "`" });
            continue;
        }
        if quoted {
            continue;
        }
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('#');
            }
            in_digits = true;
        } else {
            in_digits = false;
            out.push(c);
        }
        if out.len() >= 120 {
            break;
        }
    }
    // shapes of any rank fall together: `f64[#,#,#]` is `f64[#]`
    while out.contains("#,#") {
        out = out.replace("#,#", "#");
    }
    out
}

/// How one stage ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StageEnd {
    Ok,
    Err,
    Panic,
    /// Not run (budget, or a stage it needs failed).
    Skipped,
}

impl StageEnd {
    fn name(self) -> &'static str {
        match self {
            StageEnd::Ok => "ok",
            StageEnd::Err => "err",
            StageEnd::Panic => "panic",
            StageEnd::Skipped => "skip",
        }
    }
    fn from_name(s: &str) -> StageEnd {
        match s {
            "ok" => StageEnd::Ok,
            "err" => StageEnd::Err,
            "panic" => StageEnd::Panic,
            _ => StageEnd::Skipped,
        }
    }
}

/// What the driver saw for one input.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// The input parsed (and, for programs, type-checked).
    pub accepted: bool,
    /// The printed form of the parsed program, when printing worked.
    pub canonical: Option<String>,
    pub stages: Vec<(String, StageEnd)>,
    pub events: Vec<Event>,
    /// Seconds per stage (scaling jobs only).
    pub timings: Vec<(String, f64)>,
}

impl Report {
    pub fn has(&self, kind: EventKind) -> bool {
        self.events.iter().any(|e| e.kind == kind)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "accepted": self.accepted,
            "canonical": self.canonical,
            "stages": self.stages.iter().map(|(s, e)| json!([s, e.name()])).collect::<Vec<_>>(),
            "events": self.events.iter().map(|e| json!({
                "kind": e.kind.name(), "stage": e.stage, "message": e.message, "location": e.location,
            })).collect::<Vec<_>>(),
            "timings": self.timings.iter().map(|(s, t)| json!([s, t])).collect::<Vec<_>>(),
        })
    }

    pub fn from_json(v: &Value) -> Option<Report> {
        let pairs = |key: &str| v[key].as_array().cloned().unwrap_or_default();
        Some(Report {
            accepted: v["accepted"].as_bool()?,
            canonical: v["canonical"].as_str().map(str::to_string),
            stages: pairs("stages")
                .iter()
                .map(|p| {
                    (
                        p[0].as_str().unwrap_or("").to_string(),
                        StageEnd::from_name(p[1].as_str().unwrap_or("")),
                    )
                })
                .collect(),
            events: pairs("events")
                .iter()
                .filter_map(|e| {
                    Some(Event {
                        kind: EventKind::from_name(e["kind"].as_str()?)?,
                        stage: e["stage"].as_str()?.to_string(),
                        message: e["message"].as_str()?.to_string(),
                        location: e["location"].as_str().map(str::to_string),
                    })
                })
                .collect(),
            timings: pairs("timings")
                .iter()
                .map(|p| {
                    (
                        p[0].as_str().unwrap_or("").to_string(),
                        p[1].as_f64().unwrap_or(0.0),
                    )
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_and_reports_survive_json() {
        let jobs = [
            Job::Program {
                text: "{ lambda ; . let\n  in () }".into(),
                seed: 7,
                generated: true,
            },
            Job::Nist {
                text: "x\ny".into(),
                seed: 1,
            },
            Job::Scaling { n: 1000 },
        ];
        for j in jobs {
            assert_eq!(Job::from_json(&j.to_json()), Some(j));
        }
        let r = Report {
            accepted: true,
            canonical: Some("t".into()),
            stages: vec![("parse".into(), StageEnd::Ok)],
            events: vec![Event {
                kind: EventKind::Panic,
                stage: "jvp".into(),
                message: "boom".into(),
                location: Some("a.rs:1:2".into()),
            }],
            timings: vec![("print".into(), 0.5)],
        };
        assert_eq!(Report::from_json(&r.to_json()), Some(r));
    }

    #[test]
    fn dedup_keys_ignore_numbers_and_columns() {
        let e = |msg: &str, loc: &str| Event {
            kind: EventKind::Panic,
            stage: "s".into(),
            message: msg.into(),
            location: Some(loc.into()),
        };
        assert_eq!(
            e("index 3 out of range for 2", "x.rs:10:5").dedup_key(),
            e("index 7 out of range for 12", "x.rs:10:9").dedup_key()
        );
        assert_ne!(
            e("a", "x.rs:10:5").dedup_key(),
            e("a", "x.rs:11:5").dedup_key()
        );
    }
}
