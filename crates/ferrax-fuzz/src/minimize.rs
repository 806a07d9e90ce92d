//! Shrinking an input that shows a finding, by running smaller candidates in the worker.
//!
//! A candidate is kept when running it shows the same finding (the same dedup key). For a
//! program text that parses, the candidates follow the text form: keep one output, delete
//! an equation line, turn an equation or a constant into an input, drop an input, and go
//! back to the printed form after each success. Texts that do not parse, and NIST files,
//! are shrunk line by line (NIST lines are blanked rather than deleted, so the line numbers
//! the header names stay right). Shrinking stops at a fixed number of runs or seconds.

use std::time::{Duration, Instant};

use crate::job::{Job, Report};
use crate::supervisor::{Outcome, Supervisor};

/// The dedup keys an outcome shows.
pub fn keys_of(o: &Outcome) -> Vec<String> {
    match o {
        Outcome::Done(r) => r.events.iter().map(|e| e.dedup_key()).collect(),
        other => other.crash_key().into_iter().collect(),
    }
}

struct Shrinker<'a> {
    sup: &'a mut Supervisor,
    job: &'a Job,
    key: &'a str,
    runs: usize,
    max_runs: usize,
    deadline: Instant,
}

impl Shrinker<'_> {
    fn exhausted(&self) -> bool {
        self.runs >= self.max_runs || Instant::now() >= self.deadline
    }

    /// Whether `text` still shows the finding; its report when it does.
    fn shows(&mut self, text: &str) -> Option<Option<Report>> {
        if self.exhausted() {
            return None;
        }
        self.runs += 1;
        let o = self.sup.run(&self.job.with_text(text.to_string()));
        if keys_of(&o).iter().any(|k| k == self.key) {
            Some(match o {
                Outcome::Done(r) => Some(r),
                _ => None,
            })
        } else {
            None
        }
    }
}

/// Shrinks `job`'s input while it still shows `key`; `None` when nothing smaller was found.
pub fn shrink(
    sup: &mut Supervisor,
    job: &Job,
    key: &str,
    canonical: Option<&str>,
    max_runs: usize,
    budget: Duration,
) -> Option<String> {
    let original = job.input_text();
    let mut s = Shrinker {
        sup,
        job,
        key,
        runs: 0,
        max_runs,
        deadline: Instant::now() + budget,
    };
    let mut cur = original.clone();
    if let Some(c) = canonical {
        if c != cur && s.shows(c).is_some() {
            cur = c.to_string();
        }
    }
    let program = matches!(job, Job::Program { .. }) && cur.starts_with("{ lambda");
    loop {
        if s.exhausted() {
            break;
        }
        let before = cur.clone();
        if program {
            cur = shrink_program_step(&mut s, &cur);
        }
        let blank = matches!(job, Job::Nist { .. });
        cur = shrink_lines(&mut s, &cur, blank);
        if cur == before {
            break;
        }
    }
    (cur.len() < original.len() || cur != original).then_some(cur)
}

/// One round over the structural candidates of a printed program.
fn shrink_program_step(s: &mut Shrinker, text: &str) -> String {
    let mut cur = text.to_string();
    let accept = |s: &mut Shrinker, cand: String, cur: &mut String| -> bool {
        if cand.len() >= cur.len() && cand == *cur {
            return false;
        }
        match s.shows(&cand) {
            Some(r) => {
                // go back to the printed form when it shows the finding too
                let canon = r.and_then(|r| r.canonical);
                *cur = match canon {
                    Some(c) if c.len() <= cand.len() && c != cand && s.shows(&c).is_some() => c,
                    _ => cand,
                };
                true
            }
            None => false,
        }
    };
    // a single output
    if let Some((head, outs)) = split_outputs(&cur) {
        if outs.len() > 1 {
            for o in outs.clone() {
                let cand = format!("{head}in ({o}) }}");
                if accept(s, cand, &mut cur) {
                    break;
                }
            }
        }
    }
    // equations into inputs, from the first (the cut keeps later equations' operands)
    let mut i = 1;
    while i + 1 < cur.lines().count() && !s.exhausted() {
        let lines: Vec<&str> = cur.lines().collect();
        let l = lines[i].trim();
        if let Some((binder, _)) = l.split_once(" = ") {
            if binder.contains(':') {
                let mut rest: Vec<String> = lines.iter().map(|x| x.to_string()).collect();
                rest.remove(i);
                if let Some(h) = add_input(&rest[0], binder) {
                    rest[0] = h;
                    if accept(s, rest.join("\n"), &mut cur) {
                        continue;
                    }
                }
            }
        }
        i += 1;
    }
    // inputs and constants dropped, constants turned into inputs
    let mut k = 0;
    loop {
        let header = cur.lines().next().unwrap_or("").to_string();
        let binders = header_binders(&header);
        if k >= binders.len() || s.exhausted() {
            break;
        }
        let (start, end, is_const) = binders[k];
        let rest = cur[header.len()..].to_string();
        let dropped = format!("{}{}{rest}", &header[..start], &header[end..]);
        if accept(s, dropped, &mut cur) {
            continue;
        }
        if is_const {
            let b = &header[start..end];
            let binder = b.trim().split(" = ").next().unwrap_or("").to_string();
            let without = format!("{}{}", &header[..start], &header[end..]);
            if let Some(h) = add_input(&without, &binder) {
                if accept(s, format!("{h}{rest}"), &mut cur) {
                    continue;
                }
            }
        }
        k += 1;
    }
    cur
}

/// `(everything before "in (", the output atoms)` of a printed program.
fn split_outputs(text: &str) -> Option<(String, Vec<String>)> {
    let i = text.rfind("in (")?;
    let inner = text[i + 4..].trim_end().strip_suffix(") }")?;
    let outs = inner
        .split(", ")
        .map(str::to_string)
        .filter(|s| !s.is_empty())
        .collect();
    Some((text[..i].to_string(), outs))
}

/// The header `{ lambda CONSTS ; INPUTS . let` with one more input.
fn add_input(header: &str, binder: &str) -> Option<String> {
    let i = header.rfind(" . let")?;
    Some(format!("{} {binder}{}", &header[..i], &header[i..]))
}

/// Byte ranges of the binders in a printed header (constants, then inputs), each with
/// whether it is a constant.
fn header_binders(header: &str) -> Vec<(usize, usize, bool)> {
    let mut out = vec![];
    let Some(semi) = header.find(" ;") else {
        return out;
    };
    let Some(dot) = header.rfind(" . let") else {
        return out;
    };
    // constants: " name:aval = [..]"
    let mut i = "{ lambda".len().min(semi);
    while i < semi {
        let Some(close) = header[i..semi].find(']').map(|k| k + i) else {
            break;
        };
        // the value list ends at the second ']' of a binder (aval, then values)
        let Some(close2) = header[close + 1..semi].find(']').map(|k| k + close + 1) else {
            break;
        };
        out.push((i, close2 + 1, true));
        i = close2 + 1;
    }
    let mut i = semi + 2;
    while i < dot {
        let Some(close) = header[i..dot].find(']').map(|k| k + i) else {
            break;
        };
        out.push((i, close + 1, false));
        i = close + 1;
    }
    out
}

/// Deletes (or blanks) single lines while the finding stays, last line first.
fn shrink_lines(s: &mut Shrinker, text: &str, blank: bool) -> String {
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    let mut i = lines.len();
    while i > 0 && !s.exhausted() {
        i -= 1;
        if blank && lines[i].is_empty() {
            continue;
        }
        let mut cand = lines.clone();
        if blank {
            cand[i].clear();
        } else {
            cand.remove(i);
        }
        if s.shows(&cand.join("\n")).is_some() {
            lines = cand;
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_binders_find_constants_and_inputs() {
        let h = "{ lambda c:f64[3] = [1.0, 2.0, 3.0] d:i32[] = [7] ; a:f64[2,3] b:bool[] . let";
        let b = header_binders(h);
        let parts: Vec<&str> = b.iter().map(|&(s, e, _)| &h[s..e]).collect();
        assert_eq!(
            parts,
            vec![
                " c:f64[3] = [1.0, 2.0, 3.0]",
                " d:i32[] = [7]",
                " a:f64[2,3]",
                " b:bool[]"
            ]
        );
        assert_eq!(
            add_input("{ lambda ; a:f64[] . let", "b:f64[2]").unwrap(),
            "{ lambda ; a:f64[] b:f64[2] . let"
        );
        let (head, outs) = split_outputs("{ lambda ; . let\n  in (a, 2.0:f64) }").unwrap();
        assert_eq!(head, "{ lambda ; . let\n  ");
        assert_eq!(outs, vec!["a", "2.0:f64"]);
    }
}
