//! The worker process: runs jobs through the in-process driver, one at a time.
//!
//! Started by the parent as `ferrax-fuzz worker` (a hidden mode of the same binary). It
//! first limits its own address space (`RLIMIT_AS`, 4 GiB by default) so that an allocation
//! sized by a fuzzed input fails at once instead of exhausting the machine, then reads one
//! JSON job per line on standard input. Before each stage it writes `@@S stage` to standard
//! output, and at the end of a job `@@R {report}`; the parent uses the stage lines to say
//! where a worker that died or hung was. Panics are caught inside the driver; everything
//! that cannot be caught (aborts, signals, hangs) is the parent's business.

use std::io::{BufRead, Write};

use crate::driver;
use crate::job::Job;

/// Limits this process's address space to `bytes` (a no-op where `setrlimit` fails).
pub fn limit_memory(bytes: u64) {
    let lim = libc::rlimit {
        rlim_cur: bytes as libc::rlim_t,
        rlim_max: bytes as libc::rlim_t,
    };
    // SAFETY: setrlimit only reads the struct we pass; it has no other preconditions.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) };
    if rc != 0 {
        eprintln!("ferrax-fuzz worker: setrlimit(RLIMIT_AS) failed; running unlimited");
    }
}

/// The worker's main loop; returns when standard input closes.
pub fn main(mem_limit_bytes: u64) {
    limit_memory(mem_limit_bytes);
    driver::install_panic_hook();
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let job = serde_json::from_str(&line)
            .ok()
            .and_then(|v| Job::from_json(&v));
        let mut out = stdout.lock();
        let Some(job) = job else {
            let _ = writeln!(out, "@@E cannot read the job");
            let _ = out.flush();
            continue;
        };
        // marks where this job's standard error starts (see `Supervisor::finish`)
        eprintln!("@@JOB");
        let report = driver::run_job(&job, &mut |stage| {
            let _ = writeln!(out, "@@S {stage}");
            let _ = out.flush();
        });
        if writeln!(out, "@@R {}", report.to_json()).is_err() || out.flush().is_err() {
            break;
        }
    }
}
