//! The parent side of isolation: runs jobs in a worker process and watches it.
//!
//! A [`Supervisor`] starts `ferrax-fuzz worker` (see `worker`), sends it one job per line
//! and reads its stage lines and report. When the worker dies (an abort such as a failed
//! allocation, a signal such as a segfault or a stack overflow) the outcome is
//! [`Outcome::Died`] with the stage it was in and the end of its standard error; when a job
//! runs past the timeout the worker is killed and the outcome is [`Outcome::Hung`]. Either
//! way the next job starts a fresh worker.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::job::{blank_numbers, Job, Report};

/// How one job ended.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// The driver finished and reported.
    Done(Report),
    /// The worker process ended during the job.
    Died {
        /// `killed by signal 6 (SIGABRT)`, `exited with status 101`, ...
        how: String,
        stage: Option<String>,
        /// The last lines of its standard error.
        stderr: String,
    },
    /// The job ran past the timeout; the worker was killed.
    Hung {
        stage: Option<String>,
        secs: f64,
        /// The last lines of its standard error.
        stderr: String,
    },
}

impl Outcome {
    /// The dedup key of an abort (from the end of standard error) or a hang (its stage).
    pub fn crash_key(&self) -> Option<String> {
        match self {
            Outcome::Done(_) => None,
            Outcome::Died { stage, stderr, how } => {
                let stage = stage.as_deref().unwrap_or("start");
                // the last line that says something (not a hint about backtraces), else
                // how it ended (a segfault says nothing)
                let last = stderr
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty() && !l.starts_with("note:"))
                    .unwrap_or(how);
                let panic_loc = stderr
                    .lines()
                    .rev()
                    .find_map(|l| l.strip_prefix("@@PANIC "))
                    .map(|p| p.split(": ").next().unwrap_or(p).to_string());
                // an abort that follows a panic: a panic while panicking, a panic that
                // cannot unwind, or the worker's own thread dying
                let after_panic = last.starts_with("@@PANIC")
                    || last.contains("panicked")
                    || last.contains("cannot unwind")
                    || last.contains("panic in");
                Some(match panic_loc {
                    Some(loc) if after_panic => {
                        format!("abort in {stage} after a panic at {loc}")
                    }
                    _ => format!("abort in {stage}: {}", blank_numbers(last)),
                })
            }
            Outcome::Hung { stage, .. } => {
                Some(format!("hang in {}", stage.as_deref().unwrap_or("start")))
            }
        }
    }
}

enum Line {
    Stage(String),
    Report(Report),
    Eof,
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<Line>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    stderr_thread: Option<JoinHandle<()>>,
}

/// Runs jobs in a worker process, restarting it after a death or a hang.
pub struct Supervisor {
    exe: PathBuf,
    args: Vec<String>,
    pub timeout: Duration,
    worker: Option<Worker>,
    /// Workers started so far (for the summary).
    pub starts: usize,
}

fn describe(status: ExitStatus) -> String {
    if let Some(sig) = status.signal() {
        let name = match sig {
            libc::SIGABRT => "SIGABRT",
            libc::SIGSEGV => "SIGSEGV",
            libc::SIGBUS => "SIGBUS",
            libc::SIGILL => "SIGILL",
            libc::SIGKILL => "SIGKILL",
            libc::SIGFPE => "SIGFPE",
            libc::SIGPIPE => "SIGPIPE",
            libc::SIGTRAP => "SIGTRAP",
            _ => "?",
        };
        format!("killed by signal {sig} ({name})")
    } else {
        format!("exited with status {}", status.code().unwrap_or(-1))
    }
}

impl Supervisor {
    /// A supervisor for workers started as `exe worker --mem-limit-mb M`.
    pub fn new(exe: PathBuf, mem_limit_mb: u64, timeout: Duration) -> Supervisor {
        Supervisor {
            exe,
            args: vec![
                "worker".into(),
                "--mem-limit-mb".into(),
                mem_limit_mb.to_string(),
            ],
            timeout,
            worker: None,
            starts: 0,
        }
    }

    fn spawn(&mut self) -> std::io::Result<Worker> {
        let mut child = Command::new(&self.exe)
            .args(&self.args)
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        self.starts += 1;
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let msg = if let Some(s) = line.strip_prefix("@@S ") {
                    Line::Stage(s.to_string())
                } else if let Some(r) = line.strip_prefix("@@R ") {
                    match serde_json::from_str(r)
                        .ok()
                        .and_then(|v| Report::from_json(&v))
                    {
                        Some(r) => Line::Report(r),
                        None => continue,
                    }
                } else {
                    continue;
                };
                if tx.send(msg).is_err() {
                    return;
                }
            }
            let _ = tx.send(Line::Eof);
        });
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let t = tail.clone();
        let stderr_thread = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut q = t.lock().expect("stderr buffer");
                q.push_back(line.chars().take(2000).collect());
                if q.len() > 60 {
                    q.pop_front();
                }
            }
        });
        Ok(Worker {
            child,
            stdin,
            lines: rx,
            stderr: tail,
            stderr_thread: Some(stderr_thread),
        })
    }

    /// Runs a job with the supervisor's timeout.
    pub fn run(&mut self, job: &Job) -> Outcome {
        self.run_with_timeout(job, self.timeout)
    }

    /// Runs a job, waiting at most `timeout`.
    pub fn run_with_timeout(&mut self, job: &Job, timeout: Duration) -> Outcome {
        let line = format!("{}\n", job.to_json());
        let mut w = match self.worker.take() {
            Some(w) => w,
            None => match self.spawn() {
                Ok(w) => w,
                Err(e) => {
                    return Outcome::Died {
                        how: format!("could not start the worker: {e}"),
                        stage: None,
                        stderr: String::new(),
                    }
                }
            },
        };
        if w.stdin.write_all(line.as_bytes()).is_err() || w.stdin.flush().is_err() {
            // the worker died between jobs: one fresh try
            self.finish(w);
            return match self.spawn() {
                Ok(w) => {
                    self.worker = Some(w);
                    self.run_with_timeout(job, timeout)
                }
                Err(e) => Outcome::Died {
                    how: format!("could not start the worker: {e}"),
                    stage: None,
                    stderr: String::new(),
                },
            };
        }
        let start = Instant::now();
        let mut stage = None;
        loop {
            let left = timeout.saturating_sub(start.elapsed());
            match w.lines.recv_timeout(left) {
                Ok(Line::Stage(s)) => stage = Some(s),
                Ok(Line::Report(r)) => {
                    self.worker = Some(w);
                    return Outcome::Done(r);
                }
                Ok(Line::Eof) | Err(RecvTimeoutError::Disconnected) => {
                    let (how, stderr) = self.finish(w);
                    return Outcome::Died { how, stage, stderr };
                }
                Err(RecvTimeoutError::Timeout) => {
                    let _ = w.child.kill();
                    let (_, stderr) = self.finish(w);
                    return Outcome::Hung {
                        stage,
                        secs: start.elapsed().as_secs_f64(),
                        stderr,
                    };
                }
            }
        }
    }

    /// Waits for a worker that is ending; its exit and the end of its standard error.
    fn finish(&mut self, mut w: Worker) -> (String, String) {
        drop(w.stdin);
        let how = match w.child.wait() {
            Ok(s) => describe(s),
            Err(e) => format!("wait failed: {e}"),
        };
        if let Some(t) = w.stderr_thread.take() {
            let _ = t.join();
        }
        let all: Vec<String> = w
            .stderr
            .lock()
            .expect("stderr buffer")
            .iter()
            .cloned()
            .collect();
        // only the last job's lines (the worker marks each job's start)
        let from = all.iter().rposition(|l| l == "@@JOB").map_or(0, |i| i + 1);
        (how, all[from..].join("\n"))
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if let Some(mut w) = self.worker.take() {
            let _ = w.child.kill();
            let _ = w.child.wait();
        }
    }
}
