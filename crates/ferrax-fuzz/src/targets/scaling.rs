//! Target `scaling`: time a long chain of equations through every stage.
//!
//! Printing, parsing and every pass must be linear in the program's length (issue 10,
//! item 7: a 100k-equation chain should print, parse and transform in about a second).
//! This target runs chains of growing length (`chain_text`: sin, mul by a literal, add) in
//! the worker and times each stage. A stage whose time grows faster than `n^1.5` between
//! two lengths (and takes more than 0.2 s) is recorded as an invariant violation; a stage
//! that does not finish within the timeout is a hang.

use std::time::Duration;

use crate::job::{Event, EventKind, Job};
use crate::supervisor::Outcome;
use crate::targets::Ctx;

/// Runs chains of the given lengths (in order) and checks the growth of each stage's time.
pub fn run(ctx: &mut Ctx, sizes: &[usize]) {
    let mut prev: Option<(usize, Vec<(String, f64)>)> = None;
    for &n in sizes {
        if !ctx.budget.more(0) {
            break;
        }
        let job = Job::Scaling { n };
        let timeout = ctx.sup.timeout.max(Duration::from_secs(10)) * 6;
        let outcome = ctx.sup.run_with_timeout(&job, timeout);
        ctx.tally(&job, &outcome);
        let Outcome::Done(r) = outcome else {
            eprintln!("scaling: chain of {n}: {outcome:?}");
            break;
        };
        let cells: Vec<String> = r
            .timings
            .iter()
            .map(|(s, t)| format!("{s} {t:.3}"))
            .collect();
        println!("scaling: n = {n:>7}: {}", cells.join(" | "));
        if let Some((m, before)) = &prev {
            for ((stage, t1), (_, t2)) in before.iter().zip(&r.timings) {
                let growth = (t2 / t1.max(1e-6)).ln() / (n as f64 / *m as f64).ln();
                if *t2 > 0.2 && growth > 1.5 {
                    let e = Event {
                        kind: EventKind::Violation,
                        stage: format!("scaling:{stage}"),
                        message: format!(
                            "`{stage}` grows like n^{growth:.1}: {t1:.3} s at n = {m}, {t2:.3} s at n = {n}"
                        ),
                        location: None,
                    };
                    ctx.stats.violations += 1;
                    ctx.findings.record(
                        ctx.name,
                        "violation",
                        format!("violation: superlinear time in {stage}"),
                        &e.stage,
                        &e.message,
                        None,
                        &job.input_text(),
                    );
                }
            }
        }
        prev = Some((n, r.timings.clone()));
    }
}
