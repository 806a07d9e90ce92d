//! Target `cli`: malformed invocations of the `ferrax` binary, run as a subprocess.
//!
//! An [`Invocation`] is an argument list, the files and folders it refers to (written into a
//! scratch folder that is the child's working directory) and where its standard output goes
//! (a pipe, a pipe closed at once, or `/dev/full`). Arguments come from every subcommand
//! (`check`, `print`, `eval`, `transform ...`, `nist`, `fit`) with files that are valid, mutated,
//! missing, directories, empty, garbage, not UTF-8 or full of huge numbers, and with bad
//! `--inputs` JSON, `--in-axes`, `--axis-size`, `--residuals`, `--start`, `--data` and
//! unknown flags. The child runs under the same address-space limit as the workers.
//!
//! The invariant: the process exits with status 0, 1 or 2, never by a signal, within the
//! timeout, and its standard error never contains `panicked at`.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferrax::{Aval, DType};
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Value};

use crate::findings::Findings;
use crate::job::blank_numbers;
use crate::targets::Ctx;
use crate::{gen, mutate, seeds};

/// Where the child's standard output goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StdoutMode {
    Piped,
    /// A pipe whose reading end is closed before the child writes (`| head -c 0`).
    Closed,
    /// `/dev/full`: every write fails with "no space left on device".
    Full,
}

/// One run of the binary.
#[derive(Clone, Debug, PartialEq)]
pub struct Invocation {
    pub args: Vec<String>,
    /// Files to create (relative path, contents).
    pub files: Vec<(String, Vec<u8>)>,
    /// Folders to create (relative paths).
    pub dirs: Vec<String>,
    pub stdout: StdoutMode,
}

impl Invocation {
    pub fn to_json(&self) -> Value {
        let files: Vec<Value> = self
            .files
            .iter()
            .map(|(n, c)| match std::str::from_utf8(c) {
                Ok(s) => json!({"path": n, "text": s}),
                Err(_) => json!({"path": n, "hex": hex(c)}),
            })
            .collect();
        json!({
            "args": self.args,
            "files": files,
            "dirs": self.dirs,
            "stdout": match self.stdout {
                StdoutMode::Piped => "piped",
                StdoutMode::Closed => "closed",
                StdoutMode::Full => "full",
            },
        })
    }

    pub fn from_json(v: &Value) -> Option<Invocation> {
        let strings = |k: &str| -> Option<Vec<String>> {
            v[k].as_array()?
                .iter()
                .map(|s| s.as_str().map(str::to_string))
                .collect()
        };
        let files = v["files"]
            .as_array()?
            .iter()
            .map(|f| {
                let path = f["path"].as_str()?.to_string();
                let c = match (f["text"].as_str(), f["hex"].as_str()) {
                    (Some(t), _) => t.as_bytes().to_vec(),
                    (None, Some(h)) => unhex(h)?,
                    _ => return None,
                };
                Some((path, c))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Invocation {
            args: strings("args")?,
            files,
            dirs: strings("dirs").unwrap_or_default(),
            stdout: match v["stdout"].as_str() {
                Some("closed") => StdoutMode::Closed,
                Some("full") => StdoutMode::Full,
                _ => StdoutMode::Piped,
            },
        })
    }

    /// The subcommand (for keys): the first argument that is not a flag.
    fn command(&self) -> String {
        match self.args.first().map(String::as_str) {
            Some("transform") => format!("transform {}", self.args.get(1).map_or("", |s| s)),
            Some(a) => a.chars().take(20).collect(),
            None => "(none)".into(),
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// How a run ended.
#[derive(Clone, Debug)]
pub enum CliOutcome {
    Exited {
        code: i32,
        stderr: String,
    },
    Signaled {
        signal: i32,
        stderr: String,
    },
    Hung {
        secs: f64,
    },
    /// The harness could not start the binary (not a finding).
    NotRun(String),
}

/// A finding in a run: kind, dedup key, message, panic location.
pub type CliFinding = (&'static str, String, String, Option<String>);

/// Checks the invariant; `None` when the run was fine.
pub fn judge(inv: &Invocation, o: &CliOutcome) -> Option<CliFinding> {
    let cmd = inv.command();
    match o {
        CliOutcome::Exited { stderr, .. } | CliOutcome::Signaled { stderr, .. }
            if stderr.contains("panicked at") =>
        {
            let after = stderr.split("panicked at ").nth(1).unwrap_or("");
            let loc = after.split(":\n").next().unwrap_or("").trim().to_string();
            let msg = after
                .split(":\n")
                .nth(1)
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("");
            Some((
                "panic",
                format!("cli panic at {} ({})", strip_col(&loc), blank_numbers(msg)),
                stderr.clone(),
                Some(loc),
            ))
        }
        CliOutcome::Exited { code: 0..=2, .. } => None,
        CliOutcome::Exited { code, stderr } => Some((
            "violation",
            format!("cli exit status {code} in {cmd}"),
            format!("exit status {code}\n{stderr}"),
            None,
        )),
        CliOutcome::Signaled { signal, stderr } => {
            let last = stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty() && !l.starts_with("note:"))
                .unwrap_or("");
            Some((
                "abort",
                format!("cli signal {signal} in {cmd}: {}", blank_numbers(last)),
                format!("killed by signal {signal}\n{stderr}"),
                None,
            ))
        }
        CliOutcome::Hung { secs } => Some((
            "hang",
            format!("cli hang in {cmd}"),
            format!("no exit after {secs:.1} s"),
            None,
        )),
        CliOutcome::NotRun(_) => None,
    }
}

fn strip_col(loc: &str) -> &str {
    match loc.rsplit_once(':') {
        Some((h, c)) if c.chars().all(|c| c.is_ascii_digit()) => h,
        _ => loc,
    }
}

/// Runs invocations of one binary in a scratch folder.
pub struct CliRunner {
    pub bin: PathBuf,
    pub work: PathBuf,
    pub timeout: Duration,
    pub mem_limit_bytes: u64,
}

impl CliRunner {
    pub fn run(&self, inv: &Invocation) -> CliOutcome {
        let _ = std::fs::remove_dir_all(&self.work);
        if let Err(e) = std::fs::create_dir_all(&self.work) {
            return CliOutcome::NotRun(format!("scratch folder: {e}"));
        }
        for d in &inv.dirs {
            let _ = std::fs::create_dir_all(self.work.join(d));
        }
        for (name, c) in &inv.files {
            let p = self.work.join(name);
            if let Some(parent) = p.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            let _ = std::fs::write(p, c);
        }
        let mut cmd = Command::new(&self.bin);
        cmd.args(&inv.args)
            .current_dir(&self.work)
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stderr(Stdio::piped());
        match inv.stdout {
            StdoutMode::Piped | StdoutMode::Closed => {
                cmd.stdout(Stdio::piped());
            }
            StdoutMode::Full => match std::fs::OpenOptions::new().write(true).open("/dev/full") {
                Ok(f) => {
                    cmd.stdout(f);
                }
                Err(_) => {
                    cmd.stdout(Stdio::null());
                }
            },
        }
        let limit = self.mem_limit_bytes;
        // SAFETY: the closure only calls setrlimit, which is async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: limit as libc::rlim_t,
                    rlim_max: limit as libc::rlim_t,
                };
                libc::setrlimit(libc::RLIMIT_AS, &lim);
                Ok(())
            });
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return CliOutcome::NotRun(format!("cannot start {}: {e}", self.bin.display()))
            }
        };
        let out = child.stdout.take();
        let reader = match (inv.stdout, out) {
            (StdoutMode::Closed, Some(o)) => {
                drop(o);
                None
            }
            (_, Some(mut o)) => Some(std::thread::spawn(move || {
                let mut buf = [0u8; 1 << 16];
                while let Ok(n) = o.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                }
            })),
            _ => None,
        };
        let mut err = child.stderr.take().expect("piped");
        let err_reader = std::thread::spawn(move || {
            let mut kept = Vec::new();
            let mut buf = [0u8; 1 << 16];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                // the end is what matters (a panic comes last): keep the last 64 KiB
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 1 << 17 {
                    kept.drain(..kept.len() - (1 << 16));
                }
            }
            String::from_utf8_lossy(&kept).into_owned()
        });
        let start = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if start.elapsed() > self.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                Err(_) => break None,
            }
        };
        if let Some(r) = reader {
            let _ = r.join();
        }
        let stderr = err_reader.join().unwrap_or_default();
        match status {
            None => CliOutcome::Hung {
                secs: start.elapsed().as_secs_f64(),
            },
            Some(s) => match s.signal() {
                Some(signal) => CliOutcome::Signaled { signal, stderr },
                None => CliOutcome::Exited {
                    code: s.code().unwrap_or(-1),
                    stderr,
                },
            },
        }
    }
}

/// The `ferrax` binary to fuzz: `explicit`, or the one beside this executable, built first
/// (when `build`) with cargo in the same profile.
pub fn ferrax_binary(explicit: Option<&Path>, build: bool) -> Result<PathBuf, String> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut dir = exe.parent().ok_or("no folder")?.to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let profile = match dir.file_name().and_then(|s| s.to_str()) {
        Some("debug") => "dev".to_string(),
        Some(p) => p.to_string(),
        None => "dev".to_string(),
    };
    let built = build && {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "-q",
            "-p",
            "ferrax-cli",
            "--bin",
            "ferrax",
            "--profile",
            &profile,
        ])
        .current_dir(&root);
        if let Some(t) = dir.parent() {
            cmd.env("CARGO_TARGET_DIR", t);
        }
        cmd.status().map(|s| s.success()).unwrap_or(false)
    };
    let bin = dir.join("ferrax");
    if bin.exists() {
        if build && !built {
            eprintln!("cli: could not rebuild ferrax; using {}", bin.display());
        }
        Ok(bin)
    } else {
        Err(format!(
            "no ferrax binary at {} (build it with `cargo build --profile {profile} -p ferrax-cli`, or give --ferrax-bin)",
            bin.display()
        ))
    }
}

/// Programs with sizes that overflow or cannot be allocated (issue 10, items 3 and 4).
pub const HUGE_PROGRAMS: &[&str] = &[
    "{ lambda ; a:f64[99999999999] . let\n  in (a) }",
    "{ lambda ; a:f64[4294967296,4294967296] . let\n  in (a) }",
    "{ lambda ; a:f64[18446744073709551615] . let\n  in (a) }",
    "{ lambda ; . let\n    a:f64[1099511627776] = iota[dtype=f64 shape=(1099511627776,) dimension=0]\n  in (a) }",
    "{ lambda ; a:f64[1] . let\n    b:f64[1] = pad[low=(18446744073709551615,) high=(1,) interior=(0,)] a 0.0:f64\n  in (b) }",
    "{ lambda ; a:f64[] . let\n    b:f64[4294967296,4294967296] = broadcast_in_dim[shape=(4294967296,4294967296) broadcast_dimensions=()] a\n  in (b) }",
    "{ lambda c:f64[99999999999] = [1.0] ; . let\n  in (c) }",
    "{ lambda ; a:f64[4294967296,0] b:f64[0,4294967296] . let\n    c:f64[4294967296,4294967296] = dot_general[lhs_contracting=(1,) rhs_contracting=(0,) lhs_batch=() rhs_batch=()] a b\n  in (c) }",
    "{ lambda ; a:f64[3] . let\n    b:f64[0] = reshape[new_sizes=(4294967296,4294967296,0)] a\n  in (b) }",
];

struct Maker<'r, R: Rng> {
    rng: &'r mut R,
    files: Vec<(String, Vec<u8>)>,
    dirs: Vec<String>,
    /// Input avals of the last program file made, when known.
    in_avals: Option<Vec<Aval>>,
}

impl<R: Rng> Maker<'_, R> {
    /// A program file argument of some kind (valid, mutated, huge, missing, ...).
    fn program_file(&mut self) -> String {
        let name = format!("p{}.fx", self.files.len());
        self.in_avals = None;
        let content: Vec<u8> = match self.rng.gen_range(0..100) {
            0..=39 => {
                let exact = self.rng.gen_bool(0.5);
                let (t, avals) = gen::random_program_with_inputs(self.rng, exact);
                self.in_avals = Some(avals);
                t.into_bytes()
            }
            40..=54 => {
                let base = gen::random_program(self.rng, false);
                mutate::mutate(&base, &[], self.rng).0.into_bytes()
            }
            55..=62 => seeds::SEEDS
                .choose(self.rng)
                .expect("seeds")
                .as_bytes()
                .to_vec(),
            63..=72 => HUGE_PROGRAMS
                .choose(self.rng)
                .expect("huge")
                .as_bytes()
                .to_vec(),
            73..=75 => return "missing.fx".into(),
            76..=78 => {
                self.dirs.push("adir".into());
                return "adir".into();
            }
            79..=80 => {
                return ["/", "/dev/null", "/proc/self/status"][self.rng.gen_range(0..3)].into()
            }
            81..=83 => vec![],
            84..=88 => (0..self.rng.gen_range(1..200))
                .map(|_| self.rng.gen())
                .collect(),
            89..=92 => {
                let mut b = gen::random_program(self.rng, true).into_bytes();
                let i = self.rng.gen_range(0..b.len());
                b.insert(i, 0xff);
                b
            }
            93..=95 => crate::driver::chain_text(3000).into_bytes(),
            _ => "{ lambda ; a:f64[] . let\n    b:f64[] = exp b\n  in (b) }"
                .as_bytes()
                .to_vec(),
        };
        self.files.push((name.clone(), content));
        name
    }

    /// `--inputs` JSON for the last program (valid or not).
    fn inputs_json(&mut self) -> String {
        let avals = self.in_avals.clone();
        match (self.rng.gen_range(0..10), avals) {
            (0..=5, Some(avals)) => {
                let items: Vec<Value> = avals.iter().map(|a| self.json_value(a)).collect();
                let mut v = items;
                if self.rng.gen_bool(0.1) {
                    v.push(json!(1));
                }
                if self.rng.gen_bool(0.1) && !v.is_empty() {
                    v.pop();
                }
                Value::Array(v).to_string()
            }
            _ => [
                "",
                "[",
                "]",
                "{}",
                "null",
                "[null]",
                "[1e999]",
                "[\"nan\", \"inf\", \"-inf\"]",
                "[18446744073709551615]",
                "[-9223372036854775809]",
                "[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]",
                "[\"abc\"]",
                "[true, false]",
                "[[1, 2], [3]]",
                "[0]",
                "[[]]",
                "[1.5]",
                "[99999999999]",
            ]
            .choose(self.rng)
            .expect("jsons")
            .to_string(),
        }
    }

    fn json_value(&mut self, a: &Aval) -> Value {
        fn level<R: Rng>(rng: &mut R, shape: &[usize], d: DType) -> Value {
            match shape.split_first() {
                None => match d {
                    DType::Bool => json!(rng.gen_bool(0.5)),
                    DType::I32 | DType::I64 => match rng.gen_range(0..10) {
                        0 => json!(i64::MAX),
                        1 => json!(4294967296u64),
                        2 => json!(2.5),
                        _ => json!(rng.gen_range(-9..10)),
                    },
                    _ => match rng.gen_range(0..10) {
                        0 => json!("nan"),
                        1 => json!("-inf"),
                        2 => json!(1e308),
                        3 => json!(7),
                        _ => json!(rng.gen_range(-3.0..3.0)),
                    },
                },
                Some((&n, rest)) => {
                    let n = if rng.gen_bool(0.05) { n + 1 } else { n };
                    Value::Array((0..n.min(64)).map(|_| level(rng, rest, d)).collect())
                }
            }
        }
        level(self.rng, &a.shape, a.dtype)
    }

    fn pick(&mut self, from: &[&str]) -> String {
        from.choose(self.rng).expect("choices").to_string()
    }

    fn invocation(&mut self) -> Invocation {
        let mut args: Vec<String> = match self.rng.gen_range(0..100) {
            0..=11 => vec!["check".into(), self.program_file()],
            12..=21 => vec!["print".into(), self.program_file()],
            22..=41 => {
                let f = self.program_file();
                let mut a = vec!["eval".into(), f];
                match self.rng.gen_range(0..10) {
                    0..=6 => {
                        a.push("--inputs".into());
                        a.push(self.inputs_json());
                    }
                    7 => {
                        let j = self.inputs_json();
                        self.files.push(("in.json".into(), j.into_bytes()));
                        a.push("--inputs-file".into());
                        a.push(self.pick(&["in.json", "missing.json", "adir"]));
                        self.dirs.push("adir".into());
                    }
                    8 => a.extend([
                        "--inputs".into(),
                        "[]".into(),
                        "--inputs-file".into(),
                        "x".into(),
                    ]),
                    _ => {}
                }
                a
            }
            42..=79 => {
                let t = self.pick(&[
                    "jvp",
                    "linearize",
                    "vjp",
                    "grad",
                    "transpose",
                    "vmap",
                    "hessian",
                ]);
                let f = self.program_file();
                let mut a = vec!["transform".into(), t.clone(), f];
                if t == "transpose" || self.rng.gen_bool(0.1) {
                    a.push("--residuals".into());
                    a.push(self.pick(&[
                        "0",
                        "1",
                        "2",
                        "5",
                        "-1",
                        "abc",
                        "18446744073709551615",
                        "18446744073709551616",
                    ]));
                }
                if t == "vmap" || self.rng.gen_bool(0.1) {
                    if self.rng.gen_bool(0.8) {
                        let n = self.in_avals.as_ref().map_or(2, Vec::len);
                        let n = (n as i64 + self.rng.gen_range(-1..2)).max(0) as usize;
                        let items: Vec<String> = (0..n.max(1))
                            .map(|_| {
                                self.pick(&[
                                    "0",
                                    "0",
                                    "1",
                                    "none",
                                    "None",
                                    "-1",
                                    "99",
                                    "x",
                                    "",
                                    " 0",
                                    "18446744073709551615",
                                ])
                            })
                            .collect();
                        a.push("--in-axes".into());
                        a.push(items.join(","));
                    }
                    if self.rng.gen_bool(0.9) {
                        a.push("--axis-size".into());
                        a.push(self.pick(&[
                            "0",
                            "1",
                            "3",
                            "3",
                            "-1",
                            "abc",
                            "4294967296",
                            "1099511627776",
                            "18446744073709551615",
                        ]));
                    }
                }
                a
            }
            88..=95 => self.fit(),
            80..=87 => {
                let mut a = vec!["nist".to_string()];
                for _ in 0..self.rng.gen_range(0..3) {
                    let n = self.pick(&[
                        "BoxBOD",
                        "Misra1a",
                        "DanWood",
                        "Nope",
                        "",
                        "boxbod",
                        "../Misra1a",
                        "BoxBOD.dat",
                        "MGH09",
                        "Nelson",
                    ]);
                    a.push(n);
                }
                if self.rng.gen_bool(0.15) {
                    a.push("--all".into());
                }
                if self.rng.gen_bool(0.3) {
                    a.push("--json".into());
                }
                if self.rng.gen_bool(0.1) {
                    a.push("--progress".into());
                }
                if self.rng.gen_bool(0.3) {
                    a.push("--start".into());
                    a.push(self.pick(&["0", "1", "2", "3", "-1", "abc", "99999999999999999999"]));
                }
                if self.rng.gen_bool(0.4) {
                    a.push("--data".into());
                    a.push(self.nist_data_dir());
                }
                a
            }
            _ => {
                let mut a = vec![self.pick(&[
                    "",
                    "--help",
                    "--version",
                    "frobnicate",
                    "check",
                    "eval",
                    "transform",
                    "-h",
                    "--",
                    "nist",
                    "fit",
                ])];
                if self.rng.gen_bool(0.5) {
                    a.push(self.pick(&["a", "b", "--frob", "-x", "transform", "--inputs"]));
                }
                a.retain(|s| !s.is_empty() || self.rng.gen_bool(0.5));
                a
            }
        };
        // sprinkle: an unknown flag, a duplicated or dropped argument, an odd string
        if self.rng.gen_bool(0.08) {
            let i = self.rng.gen_range(0..=args.len());
            let f = self.pick(&[
                "--frobnicate",
                "-z",
                "--json",
                "--",
                "--residuals",
                "-",
                "--all",
            ]);
            args.insert(i, f);
        }
        if self.rng.gen_bool(0.04) && !args.is_empty() {
            let i = self.rng.gen_range(0..args.len());
            args.insert(i, args[i].clone());
        }
        if self.rng.gen_bool(0.04) && !args.is_empty() {
            let i = self.rng.gen_range(0..args.len());
            args.remove(i);
        }
        let stdout = match self.rng.gen_range(0..20) {
            0 => StdoutMode::Closed,
            1 => StdoutMode::Full,
            _ => StdoutMode::Piped,
        };
        Invocation {
            args,
            files: std::mem::take(&mut self.files),
            dirs: std::mem::take(&mut self.dirs),
            stdout,
        }
    }

    /// A `--data` folder: mutated copies of real files, or something that is not a folder.
    /// `fit` with models, data files, starts and outputs, each valid or mutated.
    fn fit(&mut self) -> Vec<String> {
        const MODELS: &[&str] = &[
            "y ~ b1 * (1 - exp(-b2 * x))",
            "rate ~ Vm * conc / (K + conc)",
            "y ~ a * x^2 + b * x + c",
            "y ~ a * sin(b * x) + c # a comment",
            "y ~ pow(a, x) - log(b) / sqrt(abs(x) + 1)",
            "y ~ a * exp(-((x - m) / s)^2) + atan2(x, c) + max(x, c) - tanh(a) ** -2",
        ];
        const DATA: &[&str] = &[
            "x,y\n1,2.1\n2,3.9\n3,6.2\n4,7.8\n5,10.1\n",
            "conc,rate\n0.02,76\n0.06,97\n0.11,123\n0.22,159\n0.56,191\n1.10,207\n",
            "# whitespace\n77.6 10.07\n114.9 14.73\n141.1 17.94\n190.8 23.93\n",
            "x y\n1 1e308\n2 -1e308\n3 0\n",
        ];
        let others: Vec<String> = MODELS.iter().chain(DATA).map(|s| s.to_string()).collect();
        let mut model = self.pick(MODELS);
        if self.rng.gen_bool(0.5) {
            model = mutate::mutate(&model, &others, self.rng).0;
        }
        let mut data = self.pick(DATA);
        if self.rng.gen_bool(0.4) {
            data = mutate::mutate(&data, &others, self.rng).0;
        }
        // an argument cannot hold a NUL byte: such a model goes through a file
        let model_arg = if self.rng.gen_bool(0.3) || model.contains('\0') {
            self.files.push(("m.model".into(), model.into_bytes()));
            "m.model".to_string()
        } else {
            model
        };
        self.files.push(("d.csv".into(), data.into_bytes()));
        let mut a = vec![
            "fit".to_string(),
            model_arg,
            self.pick(&["d.csv", "d.csv", "d.csv", "missing.csv", "adir"]),
        ];
        self.dirs.push("adir".into());
        if self.rng.gen_bool(0.95) {
            a.push("--start".into());
            a.push(self.pick(&[
                "b1=500,b2=1e-4",
                "Vm=200,K=0.1",
                "a=1,b=1,c=0",
                "a=1,b=1,c=1,m=2,s=1",
                "a=1;b=2",
                "a",
                "a=",
                "a=nan",
                "a=1,a=2",
                "=1",
                "a=1e999",
                "",
                "-a=1",
            ]));
        }
        if self.rng.gen_bool(0.3) {
            a.push("--method".into());
            a.push(self.pick(&["lm", "gn-cg", "newton", ""]));
        }
        if self.rng.gen_bool(0.3) {
            a.push("--max-iterations".into());
            a.push(self.pick(&["0", "1", "3", "-1", "18446744073709551616"]));
        }
        if self.rng.gen_bool(0.4) {
            a.push("--plot".into());
            a.push(self.pick(&["p.png", "p.svg", "p.gif", "adir", "no/such/p.png", "", "p"]));
        }
        if self.rng.gen_bool(0.3) {
            a.push("--json".into());
            a.push(self.pick(&["f.json", "adir", "no/such/f.json", ""]));
        }
        if self.rng.gen_bool(0.2) {
            a.push("--quiet".into());
        }
        if self.rng.gen_bool(0.25) {
            a.push("--loss".into());
            a.push(self.pick(&[
                "huber",
                "cauchy:0.5",
                "soft_l1:2",
                "arctan",
                "linear",
                "huber:0",
                "l3",
                "cauchy:nan",
                "huber:",
                ":1",
            ]));
        }
        if self.rng.gen_bool(0.25) {
            a.push("--bounds".into());
            a.push(self.pick(&[
                "b1=0:200",
                "b1=0:,b2=:1",
                "a=-1:1",
                "Vm=0:1000,K=0:1",
                "a=5:1",
                "a=nan:1",
                "z=0:1",
                "a=0",
                "a=1:1",
                "b1=600:700",
                "a=0:1,a=0:2",
                "a=-inf:inf",
            ]));
        }
        a
    }

    fn nist_data_dir(&mut self) -> String {
        match self.rng.gen_range(0..4) {
            0 => "missing-dir".into(),
            1 => {
                self.files.push(("afile".into(), b"x".to_vec()));
                "afile".into()
            }
            _ => {
                self.dirs.push("data".into());
                let real = crate::targets::nist::real_files();
                let texts: Vec<String> = real.iter().map(|(_, t)| t.clone()).collect();
                for (n, t) in real.iter().filter(|(n, _)| {
                    ["BoxBOD", "Misra1a", "DanWood", "MGH09", "Nelson"].contains(&n.as_str())
                }) {
                    let c = if self.rng.gen_bool(0.6) {
                        mutate::mutate(t, &texts, self.rng).0
                    } else {
                        t.clone()
                    };
                    self.files.push((format!("data/{n}.dat"), c.into_bytes()));
                }
                "data".into()
            }
        }
    }
}

/// Makes a random invocation.
pub fn random_invocation(rng: &mut impl Rng) -> Invocation {
    Maker {
        rng,
        files: vec![],
        dirs: vec![],
        in_avals: None,
    }
    .invocation()
}

/// Records a CLI finding; returns its key when new.
fn record(findings: &mut Findings, inv: &Invocation, f: &CliFinding) -> Option<String> {
    let (kind, key, msg, loc) = f;
    let msg = format!("ferrax {}\n{msg}", shell_words(&inv.args));
    findings.record(
        "cli",
        kind,
        key.clone(),
        &inv.command(),
        &msg,
        loc.as_deref(),
        &serde_json::to_string_pretty(&inv.to_json()).unwrap_or_default(),
    )
}

fn shell_words(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./,=".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Drops arguments one by one while the invocation still shows `key`.
fn shrink(runner: &CliRunner, inv: &Invocation, key: &str) -> Invocation {
    let mut cur = inv.clone();
    let mut i = cur.args.len();
    while i > 0 {
        i -= 1;
        let mut cand = cur.clone();
        cand.args.remove(i);
        if judge(&cand, &runner.run(&cand)).is_some_and(|f| f.1 == key) {
            cur = cand;
        }
    }
    cur
}

pub fn run(ctx: &mut Ctx) {
    let bin = match ferrax_binary(ctx.opts.ferrax_bin.as_deref(), true) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cli: target skipped: {e}");
            return;
        }
    };
    let runner = CliRunner {
        bin: bin.canonicalize().unwrap_or(bin),
        work: ctx.opts.findings.join("cli-scratch"),
        timeout: ctx.sup.timeout,
        mem_limit_bytes: ctx.opts.mem_limit_mb << 20,
    };
    let mut done = 0;
    while ctx.budget.more(done) {
        done += 1;
        let inv = random_invocation(&mut ctx.rng);
        let o = runner.run(&inv);
        let s = &mut ctx.stats;
        s.inputs += 1;
        match judge(&inv, &o) {
            None => match o {
                CliOutcome::Exited { code: 0, .. } => s.ok += 1,
                CliOutcome::NotRun(e) => {
                    eprintln!("cli: {e}");
                    s.inputs -= 1;
                    break;
                }
                _ => s.err += 1,
            },
            Some(f) => {
                match f.0 {
                    "panic" => s.panics += 1,
                    "abort" => s.aborts += 1,
                    "hang" => s.hangs += 1,
                    _ => s.violations += 1,
                }
                if let Some(key) = record(ctx.findings, &inv, &f) {
                    if ctx.verbose {
                        eprintln!("[cli] new: {key}");
                    }
                    if ctx.minimize && f.0 != "hang" {
                        let small = shrink(&runner, &inv, &key);
                        ctx.findings.set_minimized(
                            &key,
                            serde_json::to_string_pretty(&small.to_json()).unwrap_or_default(),
                        );
                    }
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&runner.work);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn invocations_survive_json() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for _ in 0..200 {
            let inv = random_invocation(&mut rng);
            assert_eq!(Invocation::from_json(&inv.to_json()), Some(inv));
        }
    }

    #[test]
    fn judging_exits() {
        let inv = Invocation {
            args: vec!["print".into(), "f.fx".into()],
            files: vec![],
            dirs: vec![],
            stdout: StdoutMode::Closed,
        };
        let ok = CliOutcome::Exited {
            code: 1,
            stderr: "error: f.fx: cannot read".into(),
        };
        assert!(judge(&inv, &ok).is_none());
        let panic = CliOutcome::Exited {
            code: 101,
            stderr: "\nthread 'main' panicked at library/std/src/io/stdio.rs:1165:9:\nfailed printing to stdout: Broken pipe (os error 32)\nnote: run with `RUST_BACKTRACE=1`".into(),
        };
        let f = judge(&inv, &panic).unwrap();
        assert_eq!(f.0, "panic");
        assert_eq!(f.3.as_deref(), Some("library/std/src/io/stdio.rs:1165:9"));
        let sig = CliOutcome::Signaled {
            signal: 11,
            stderr: String::new(),
        };
        assert_eq!(judge(&inv, &sig).unwrap().0, "abort");
    }
}
