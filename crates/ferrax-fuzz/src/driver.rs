//! The in-process driver: one input through every stage, recording what happens.
//!
//! A program text goes through `parse`, `check`, print → parse → print, `dce`, every pass
//! (`jvp_program`, `linearize_program` + `check_linear`, `transpose_program` of the linear
//! program, `vjp_program`, `grad_program`, `vmap_program` with random axes and sizes,
//! `optimize`), the reference evaluator on random inputs, the compiled path
//! (`run_compiled`) compared with it, misuse of the entry points (wrong arguments, a
//! malformed hand-built copy of the program), and every program a pass returns must pass
//! `check`. A NIST file goes through `parse_dat`, `residual_fn` and `run` from both starts.
//!
//! Each stage runs on a fresh thread inside `catch_unwind`, so a panic is recorded with its
//! message and location (through the panic hook installed by [`install_panic_hook`]) and
//! the thread-local state of a half-finished trace cannot leak into the next stage. `Err`
//! results are normal and only counted; panics and broken invariants become [`Event`]s.
//! Aborts, signals and hangs cannot be caught here: the worker process (`worker`) runs this
//! driver and its parent (`supervisor`) watches it.
//!
//! Evaluation only runs where it is cheap or certain to fail fast: every value of the
//! program (with checked size arithmetic) small, or some value so large that allocating it
//! must fail under the worker's address-space limit.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;
use std::time::Instant;

use ferrax::{Array, Atom, Aval, DType, Data, Program, Var};
use ferrax::{ResidualSource, Split};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::job::{Event, EventKind, Job, Report, StageEnd};

thread_local! {
    static LAST_PANIC: RefCell<Option<(String, String)>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// Installs (once per process) a panic hook that remembers the message and location of the
/// latest panic on its thread and prints one `@@PANIC location: message` line to stderr, so
/// a parent that sees the process abort afterwards (a panic while panicking, a panic in a
/// function that cannot unwind) still learns where it started.
pub fn install_panic_hook() {
    HOOK.call_once(|| {
        panic::set_hook(Box::new(|info| {
            let msg = if let Some(s) = info.payload().downcast_ref::<&str>() {
                s.to_string()
            } else if let Some(s) = info.payload().downcast_ref::<String>() {
                s.clone()
            } else {
                "(a panic payload that is not a string)".to_string()
            };
            let loc = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                .unwrap_or_else(|| "unknown".into());
            eprintln!("@@PANIC {loc}: {}", msg.replace('\n', " | "));
            LAST_PANIC.with(|p| *p.borrow_mut() = Some((loc, msg)));
        }));
    });
}

/// Values larger than this (bytes, in total over a program) are not evaluated...
const EVAL_BUDGET: u128 = 64 << 20;
/// ...unless one value is at least this large, so that allocating it must fail under the
/// worker's address-space limit (4 GiB by default): then evaluation must return an error.
const CERTAIN_FAILURE: u128 = 1 << 36;
/// Programs that would run longer than this many units (`work`) are not evaluated: a
/// loop's length is the user's, and a long loop runs long (it is not a hang of ferrax's).
const WORK_BUDGET: u128 = 1 << 27;
/// The cost of running one equation, in bytes written (its overhead).
const EQN_UNIT: u128 = 256;

/// How expensive evaluating a program would be, from its avals (checked arithmetic).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cost {
    /// Every value small: evaluate.
    Cheap,
    /// Some value overflows `usize` bytes or is far beyond the memory limit, the inputs are
    /// small: evaluation must fail fast with an error.
    Impossible,
    /// Too slow to try, or the inputs themselves are too large to make.
    TooLarge,
}

fn aval_bytes(a: &Aval) -> Option<u128> {
    let mut n: u128 = a.dtype.size_bytes() as u128;
    for &d in &a.shape {
        n = n.checked_mul(d as u128)?;
    }
    Some(n)
}

/// How much running a program costs, in units of one equation (`EQN_UNIT`) plus the bytes
/// it writes: a loop costs its length times its body, a `cond` its dearest branch. A scan
/// whose stacked outputs are far too large costs nothing beyond them, since evaluation must
/// refuse it before the loop runs.
fn work(p: &Program) -> u128 {
    let bytes = |a: &Aval| aval_bytes(a).unwrap_or(u128::MAX);
    p.eqns.iter().fold(0u128, |acc, e| {
        let outs = e
            .outs
            .iter()
            .filter_map(|v| p.avals.get(v.index()))
            .map(bytes)
            // a value that cannot be allocated fails at once
            .filter(|&b| b < CERTAIN_FAILURE)
            .fold(EQN_UNIT, u128::saturating_add);
        let inner = match &e.prim {
            ferrax::Primitive::Scan {
                body,
                n_carry,
                length,
                ..
            } => {
                let stacked_too_large = e
                    .outs
                    .iter()
                    .skip(*n_carry)
                    .filter_map(|v| p.avals.get(v.index()))
                    .any(|a| bytes(a) >= CERTAIN_FAILURE);
                if stacked_too_large {
                    0
                } else {
                    work(body.program()).saturating_mul(*length as u128)
                }
            }
            ferrax::Primitive::Cond { branches } => branches
                .iter()
                .map(|b| work(b.program()))
                .max()
                .unwrap_or(0),
            // a call of its body; the transformations run the custom rules' sub-programs
            ferrax::Primitive::Checkpoint { .. }
            | ferrax::Primitive::CustomJvp { .. }
            | ferrax::Primitive::CustomVjp { .. }
            | ferrax::Primitive::CustomLin { .. } => e
                .prim
                .subprograms()
                .into_iter()
                .map(work)
                .fold(0, u128::saturating_add),
            // a while loop runs until its cond says so: bounded by its max_steps, it costs
            // that many steps at most; unbounded, a mutated cond may never end (the user's
            // loop, not a hang of ferrax's), so it is not evaluated
            ferrax::Primitive::While {
                cond,
                body,
                max_steps,
                ..
            } => match max_steps {
                0 => u128::MAX,
                m => (*m as u128)
                    .saturating_mul(work(cond.program()).saturating_add(work(body.program()))),
            },
            // a trip count given as a literal costs that many steps, each computed up to
            // `r` times by the checkpointed sweep; one read from an input (adversarial
            // values, i64::MAX among them) is too long to try
            ferrax::Primitive::WhileLinear {
                body,
                step,
                n_consts,
                checkpoints,
                ..
            } => match e.inputs.get(*n_consts) {
                Some(ferrax::Atom::Lit(s)) => {
                    let n = s.to_f64().clamp(0.0, 1e30) as u128;
                    let per_step = work(body.program()).saturating_add(work(step.program()));
                    n.saturating_mul(per_step)
                        .saturating_mul(recomputations(n, *checkpoints))
                }
                _ => u128::MAX,
            },
            _ => 0,
        };
        acc.saturating_add(outs).saturating_add(inner)
    })
}

/// Whether `p` applies a collective over an axis that no enclosing `named_map` (whose axis
/// names are `bound`) binds.
fn free_collective(p: &Program, bound: &[&str]) -> bool {
    p.eqns.iter().any(|e| {
        if let Some((name, _)) = e.prim.collective_axis() {
            if !bound.contains(&name) {
                return true;
            }
        }
        let mut inner = bound.to_vec();
        if let ferrax::Primitive::NamedMap { axis_name, .. } = &e.prim {
            inner.push(axis_name);
        }
        e.prim
            .subprograms()
            .into_iter()
            .any(|s| free_collective(s, &inner))
    })
}

/// Whether `p` or a program nested in it applies the primitive `name`.
fn uses(p: &Program, name: &str) -> bool {
    p.eqns
        .iter()
        .any(|e| e.prim.name() == name || e.prim.subprograms().iter().any(|q| uses(q, name)))
}

/// How many times the checkpointed sweep of a `while_linear` computes each primal carry at
/// most: the least `r` with `C(c - 1 + r, r) ≥ n` (2 without a bound on the checkpoints,
/// `n` with one checkpoint).
fn recomputations(n: u128, checkpoints: usize) -> u128 {
    match checkpoints {
        0 => 2,
        // one carry, or one beside x0: every step recomputed from the last stored one
        1 | 2 => n.max(1),
        c => {
            // C(s + r, r), built up one r at a time (the cost of this estimate must not
            // grow like the sweep it estimates)
            let s = c as u128 - 1;
            let (mut r, mut b) = (1u128, s + 1);
            while b < n {
                r += 1;
                b = b.saturating_mul(s + r) / r;
            }
            r
        }
    }
}

/// The avals of every program nested in `p`'s equations (branches and loop bodies, at any
/// depth), not `p`'s own.
fn nested_avals(p: &Program, out: &mut Vec<Aval>) {
    for e in &p.eqns {
        for q in e.prim.subprograms() {
            out.extend(q.avals.iter().cloned());
            nested_avals(q, out);
        }
    }
}

/// The cost of evaluating `p` on inputs of its input avals.
pub fn cost(p: &Program) -> Cost {
    let bytes = |a: &Aval| aval_bytes(a).unwrap_or(u128::MAX);
    let inputs: Vec<Aval> = p
        .inputs
        .iter()
        .filter_map(|v| p.avals.get(v.index()).cloned())
        .collect();
    let in_total: u128 = inputs.iter().map(bytes).fold(0, u128::saturating_add);
    // An empty input whose other extents multiply past usize (`f64[2^64-1,2,0]`) cannot
    // be made without tripping ferrax's own unchecked size arithmetic outside a stage.
    let wild = |a: &Aval| {
        a.shape
            .iter()
            .filter(|&&d| d != 0)
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .is_none()
    };
    if in_total > EVAL_BUDGET / 4 || inputs.iter().any(wild) {
        return Cost::TooLarge;
    }
    // A large value inside a branch or a loop body may never be made (a branch not taken,
    // a loop of length 0): no promise either way, so such programs are not evaluated.
    let mut nested = vec![];
    nested_avals(p, &mut nested);
    if nested.iter().any(|a| bytes(a) > EVAL_BUDGET) {
        return Cost::TooLarge;
    }
    let total: u128 = p
        .avals
        .iter()
        .chain(&nested)
        .map(bytes)
        .fold(0, u128::saturating_add);
    let slow = work(p) > WORK_BUDGET;
    if total <= EVAL_BUDGET {
        return if slow { Cost::TooLarge } else { Cost::Cheap };
    }
    let huge = p.avals.iter().any(|a| bytes(a) >= CERTAIN_FAILURE);
    let medium = p
        .avals
        .iter()
        .any(|a| bytes(a) > EVAL_BUDGET && bytes(a) < CERTAIN_FAILURE);
    if huge && !medium && !slow {
        Cost::Impossible
    } else {
        Cost::TooLarge
    }
}

/// Runs one job in this process and returns its report. `progress` is told the name of
/// each stage before it starts (the worker forwards it to its parent).
pub fn run_job(job: &Job, progress: &mut dyn FnMut(&str)) -> Report {
    install_panic_hook();
    let seed = match job {
        Job::Program { seed, .. } | Job::Nist { seed, .. } => *seed,
        Job::Scaling { .. } => 0,
    };
    let mut d = Driver {
        report: Report::default(),
        progress,
        seed,
        last_error: String::new(),
        complete: false,
    };
    match job {
        Job::Program {
            text,
            seed,
            generated,
        } => d.program(text, *seed, *generated),
        Job::Nist { text, seed } => d.nist(text, *seed),
        Job::Scaling { n } => d.scaling(*n),
    }
    d.report
}

/// Runs `f` on a fresh thread (8 MiB of stack, like a main thread), catching a panic.
/// Returns the value, or the panic's location and message.
pub fn isolated<T: Send>(f: impl FnOnce() -> T + Send) -> Result<T, (String, String)> {
    install_panic_hook();
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn_scoped(s, move || {
                LAST_PANIC.with(|p| *p.borrow_mut() = None);
                match panic::catch_unwind(AssertUnwindSafe(f)) {
                    Ok(v) => Ok(v),
                    Err(_) => Err(LAST_PANIC
                        .with(|p| p.borrow_mut().take())
                        .unwrap_or_else(|| ("unknown".into(), "panic".into()))),
                }
            })
            .expect("spawning a stage thread")
            .join()
            .unwrap_or_else(|_| Err(("unknown".into(), "the stage thread died".into())))
    })
}

struct Driver<'a> {
    report: Report,
    progress: &'a mut dyn FnMut(&str),
    seed: u64,
    /// The message of the latest stage that returned `Err`.
    last_error: String,
    /// The program under test is accepted and small: every pass must succeed on it.
    complete: bool,
}

impl Driver<'_> {
    /// A random stream of its own for one purpose, so that the choices one stage makes do
    /// not shift when an earlier stage draws more or fewer numbers (shrinking keeps them).
    fn rng_for(&self, purpose: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(self.seed ^ purpose.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// Runs one stage: `Ok(Some(v))` is a result to go on with, `Ok(None)` an error
    /// (counted), and a panic is recorded as an event.
    fn stage<T: Send>(
        &mut self,
        name: &str,
        f: impl FnOnce() -> Result<T, String> + Send,
    ) -> Option<T> {
        (self.progress)(name);
        let (end, out) = match isolated(f) {
            Ok(Ok(v)) => (StageEnd::Ok, Some(v)),
            Ok(Err(e)) => {
                self.last_error = e;
                (StageEnd::Err, None)
            }
            Err((loc, msg)) => {
                self.report.events.push(Event {
                    kind: EventKind::Panic,
                    stage: name.to_string(),
                    message: msg,
                    location: Some(loc),
                });
                (StageEnd::Panic, None)
            }
        };
        self.report.stages.push((name.to_string(), end));
        out
    }

    /// [`Driver::stage`] for a stage that must succeed when `expect` holds: an `Err` there
    /// (a well-typed, small program refused by a pass or the evaluator) is a violation.
    fn stage_expect<T: Send>(
        &mut self,
        name: &str,
        expect: bool,
        f: impl FnOnce() -> Result<T, String> + Send,
    ) -> Option<T> {
        let out = self.stage(name, f);
        if out.is_none() && expect && self.last_end() == Some(StageEnd::Err) {
            let msg = self.last_error.clone();
            self.event(
                EventKind::Violation,
                name,
                format!("refused a well-typed program: {msg}"),
            );
        }
        out
    }

    fn last_end(&self) -> Option<StageEnd> {
        self.report.stages.last().map(|(_, e)| *e)
    }

    fn skip(&mut self, name: &str) {
        self.report
            .stages
            .push((name.to_string(), StageEnd::Skipped));
    }

    fn event(&mut self, kind: EventKind, stage: &str, message: String) {
        self.report.events.push(Event {
            kind,
            stage: stage.to_string(),
            message,
            location: None,
        });
    }

    /// A program a pass returned must type-check.
    fn must_check(&mut self, stage: &str, what: &str, p: &Program) -> bool {
        let q = p.clone();
        match self.stage(&format!("{stage}:check"), move || Ok(q.check())) {
            Some(Ok(())) => true,
            Some(Err(e)) => {
                self.event(
                    EventKind::Violation,
                    stage,
                    format!("{what} returned a program that does not type-check: {e}"),
                );
                false
            }
            None => false,
        }
    }

    // -----------------------------------------------------------------------------------
    // Programs.

    fn program(&mut self, text: &str, seed: u64, generated: bool) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let t = text.to_string();
        let Some(parsed) = self.stage("parse", move || {
            Program::parse(&t).map_err(|e| e.to_string())
        }) else {
            if generated && !self.report.has(EventKind::Panic) {
                let t = text.to_string();
                let msg = isolated(move || Program::parse(&t).err().map(|e| e.to_string()))
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                self.event(
                    EventKind::Violation,
                    "parse",
                    format!("a generated well-typed program was rejected: {msg}"),
                );
            }
            return;
        };
        let p = parsed;
        let q = p.clone();
        match self.stage("check", move || Ok(q.check())) {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                self.event(
                    EventKind::Violation,
                    "check",
                    format!("the parser accepted a program that check rejects: {e}"),
                );
                return;
            }
            None => return,
        }
        self.report.accepted = true;
        // a collective outside a named_map binding its axis has no value: evaluating it is
        // an error by design, not a refusal of a meaningful program
        self.complete = cost(&p) == Cost::Cheap && !free_collective(&p, &[]);
        self.round_trip(&p, text, generated);
        let q = p.clone();
        if let Some(d) = self.stage("dce", move || Ok(q.dce())) {
            self.must_check("dce", "dce", &d);
        }
        let args = self.evaluate(&p, &mut rng);
        self.passes(&p, args.as_deref(), &mut rng);
        self.misuse(&p, &mut rng);
    }

    /// print → parse → print is the identity; a generated text is already canonical.
    fn round_trip(&mut self, p: &Program, text: &str, generated: bool) {
        let q = p.clone();
        let Some(t1) = self.stage("print", move || Ok(q.to_string())) else {
            return;
        };
        self.report.canonical = Some(t1.clone());
        let t = t1.clone();
        match self.stage("reparse", move || {
            Ok(Program::parse(&t).map(|q| q.to_string()))
        }) {
            Some(Ok(t2)) if t2 == t1 => {}
            Some(Ok(t2)) => self.event(
                EventKind::Violation,
                "round-trip",
                format!(
                    "print → parse → print is not the identity: {}",
                    first_difference(&t1, &t2)
                ),
            ),
            Some(Err(e)) => self.event(
                EventKind::Violation,
                "round-trip",
                format!("the printed program does not parse: {e}"),
            ),
            None => {}
        }
        if generated && t1 != text {
            self.event(
                EventKind::Violation,
                "round-trip",
                format!(
                    "a generated canonical text prints differently: {}",
                    first_difference(text, &t1)
                ),
            );
        }
    }

    /// Evaluates `p` on random inputs with the reference evaluator and the compiled path
    /// and compares them; returns the inputs when evaluation was possible.
    fn evaluate(&mut self, p: &Program, rng: &mut ChaCha8Rng) -> Option<Vec<Array>> {
        let c = cost(p);
        if c == Cost::TooLarge {
            self.skip("eval");
            return None;
        }
        let args: Vec<Array> = p.in_avals().iter().map(|a| random_array(a, rng)).collect();
        let outs = self.eval_and_jit("eval", p, &args);
        if c == Cost::Impossible {
            if outs.is_some() {
                self.event(
                    EventKind::Violation,
                    "eval",
                    "a program with a value far beyond the memory limit evaluated without error"
                        .into(),
                );
            }
            return None;
        }
        let outs = outs?;
        // The reparsed program computes the same, bit for bit.
        if let Some(t) = self.report.canonical.clone() {
            let a = args.clone();
            if let Some(again) = self.stage("eval-reparsed", move || {
                let q = Program::parse(&t).map_err(|e| e.to_string())?;
                q.eval(&a).map_err(|e| e.to_string())
            }) {
                self.compare("eval-reparsed", &outs, &again, false);
            }
        }
        // Program::call on concrete tensors (the path programs take into traces).
        let (q, a) = (p.clone(), args.clone());
        if let Some(called) = self.stage("call", move || {
            let ts: Vec<ferrax::Tensor> = a.into_iter().map(ferrax::Tensor::new).collect();
            let outs = q.call(&ts).map_err(|e| e.to_string())?;
            outs.iter()
                .map(|t| t.array().map_err(|e| e.to_string()))
                .collect::<Result<Vec<_>, _>>()
        }) {
            self.compare("call", &outs, &called, false);
        }
        Some(args)
    }

    /// `eval` and `run_compiled` of `p` on `args`, their outputs' avals against the
    /// program's, and jit compared with eval. Returns eval's outputs.
    fn eval_and_jit(&mut self, stage: &str, p: &Program, args: &[Array]) -> Option<Vec<Array>> {
        if std::env::var_os("FERRAX_FUZZ_DUMP").is_some() {
            // for triage: the program each evaluation runs, on the worker's stderr
            let text = isolated({
                let q = p.clone();
                move || q.to_string()
            })
            .unwrap_or_default();
            eprintln!("@@PROGRAM {stage}\n{text}");
        }
        let (q, a) = (p.clone(), args.to_vec());
        // a cheap program evaluates, unless it runs a while loop (one may run past its
        // max_steps) or a collective no named_map binds: errors by design (the only loops
        // evaluated have that bound)
        let expect = cost(p) == Cost::Cheap && !uses(p, "while") && !free_collective(p, &[]);
        let outs =
            self.stage_expect(stage, expect, move || q.eval(&a).map_err(|e| e.to_string()))?;
        let want = p.out_avals();
        let got: Vec<Aval> = outs.iter().map(|a| a.aval()).collect();
        if want != got {
            self.event(
                EventKind::Violation,
                stage,
                format!(
                    "eval returned values of avals {} for declared outputs {}",
                    avals_text(&got),
                    avals_text(&want)
                ),
            );
            return None;
        }
        let (q, a) = (p.clone(), args.to_vec());
        let jit_stage = format!("{stage}:jit");
        if let Some(jitted) = self.stage(&jit_stage, move || {
            ferrax::run_compiled(&q, a).map_err(|e| e.to_string())
        }) {
            let tolerant = has_fast_kernels(p);
            self.compare(&format!("{stage}:jit-vs-eval"), &outs, &jitted, tolerant);
        } else if self.last_end() == Some(StageEnd::Err) {
            self.event(
                EventKind::Violation,
                &jit_stage,
                "run_compiled failed where eval succeeded".into(),
            );
        }
        Some(outs)
    }

    /// Compares two evaluations. Exact comparisons allow only NaN payloads and the sign of
    /// zero to differ (both recorded as notes); tolerant ones (fast kernels, summation
    /// order) record a difference as a note.
    fn compare(&mut self, stage: &str, a: &[Array], b: &[Array], tolerant: bool) {
        match compare_arrays(a, b, tolerant) {
            Ok(notes) => {
                for n in notes {
                    self.event(EventKind::Note, stage, n);
                }
            }
            Err(msg) if tolerant => self.event(
                EventKind::Note,
                stage,
                format!("beyond tolerance (program with fast kernels)\n{msg}"),
            ),
            Err(msg) => self.event(
                EventKind::Violation,
                stage,
                format!("the two evaluations differ\n{msg}"),
            ),
        }
    }

    /// The primal outputs of a transformed program against the program's own evaluation. A
    /// custom rule decides the primal under differentiation (`custom_vjp`'s `fwd`,
    /// `custom_jvp`'s rule), as in JAX; a program whose rule disagrees with its body (a
    /// mutated one) differs there by its author's choice, which is a note, not a violation.
    fn compare_primal(&mut self, stage: &str, p: &Program, base: &[Array], outs: &[Array]) {
        if !uses(p, "custom_jvp") && !uses(p, "custom_vjp") {
            return self.compare(stage, base, outs, false);
        }
        if let Err(msg) = compare_arrays(base, outs, false) {
            self.event(
                EventKind::Note,
                stage,
                format!("a custom rule's primal differs from its body (the rule decides)\n{msg}"),
            );
        }
    }

    /// Every pass, each result checked and, where cheap, evaluated both ways.
    fn passes(&mut self, p: &Program, args: Option<&[Array]>, rng: &mut ChaCha8Rng) {
        let n_in = p.inputs.len();
        // jvp with tangents for a random subset of the inputs
        let flags: Vec<bool> = (0..n_in).map(|_| rng.gen_bool(0.8)).collect();
        let (q, f) = (p.clone(), flags.clone());
        if let Some(j) = self.stage_expect("jvp", self.complete, move || {
            ferrax::jvp_program(&q, &f).map_err(|e| e.to_string())
        }) {
            if self.must_check("jvp", "jvp_program", &j) && cost(&j) == Cost::Cheap {
                if let Some(args) = args {
                    let mut jargs = args.to_vec();
                    for (a, _) in p.in_avals().iter().zip(&flags).filter(|(_, &w)| w) {
                        jargs.push(random_array(a, rng));
                    }
                    if let Some(outs) = self.eval_and_jit("jvp:eval", &j, &jargs) {
                        let q = p.clone();
                        let a = args.to_vec();
                        if let Some(base) =
                            self.stage("jvp:primal", move || q.eval(&a).map_err(|e| e.to_string()))
                        {
                            let n = base.len().min(outs.len());
                            self.compare_primal("jvp:primal-vs-eval", p, &base, &outs[..n]);
                        }
                    }
                }
            }
        }
        // linearize, linearity, transpose of the linear program; a program that applies a
        // `while_linear` (reverse mode of a while loop) may be refused: linearizing it with
        // respect to its residuals is reverse over reverse, which is not built
        let reverse = self.complete && !uses(p, "while_linear");
        let q = p.clone();
        if let Some(s) = self.stage_expect("linearize", reverse, move || {
            ferrax::linearize_program(&q).map_err(|e| e.to_string())
        }) {
            self.linearized(p, &s, args, rng);
        }
        let q = p.clone();
        if let Some((s, t)) = self.stage_expect("vjp", reverse, move || {
            ferrax::vjp_program(&q).map_err(|e| e.to_string())
        }) {
            self.must_check("vjp", "vjp_program (primal)", &s.primal);
            self.must_check("vjp", "vjp_program (transposed)", &t);
        }
        // grad: a program with one float scalar output and float inputs only has one (a
        // gradient with respect to an integer or bool input is refused, as JAX does); every
        // other must be refused
        let outs = p.out_avals();
        let gradable = outs.len() == 1
            && outs[0].ndim() == 0
            && outs[0].dtype.is_float()
            && p.in_avals().iter().all(|a| a.dtype.is_float());
        let q = p.clone();
        let g = self.stage_expect("grad", reverse && gradable, move || {
            ferrax::grad_program(&q).map_err(|e| e.to_string())
        });
        match g {
            Some(g) if gradable => {
                let ok = self.must_check("grad", "grad_program", &g);
                if let (true, Cost::Cheap, Some(args)) = (ok, cost(&g), args) {
                    self.eval_and_jit("grad:eval", &g, args);
                }
            }
            Some(_) => self.event(
                EventKind::Violation,
                "grad",
                format!(
                    "grad_program accepted a program whose outputs are ({})",
                    avals_text(&outs)
                ),
            ),
            None => {}
        }
        // vmap with random axes and a random size (sometimes absurd)
        let rng = &mut self.rng_for(1);
        let size = match rng.gen_range(0..40) {
            0 => 1usize << 32,
            1 => usize::MAX,
            2 => 1 << 40,
            3 => 0,
            k => 1 + k % 4,
        };
        let in_avals = p.in_avals();
        let axes: Vec<Option<usize>> = in_avals
            .iter()
            .map(|a| {
                if rng.gen_bool(0.25) {
                    None
                } else if rng.gen_bool(0.03) {
                    Some(a.ndim() + 1 + rng.gen_range(0..3))
                } else {
                    Some(rng.gen_range(0..=a.ndim()))
                }
            })
            .collect();
        let (q, ax) = (p.clone(), axes.clone());
        let sane = self.complete
            && size <= 4
            && axes
                .iter()
                .zip(&in_avals)
                .all(|(ax, a)| ax.is_none_or(|d| d <= a.ndim()));
        if let Some(v) = self.stage_expect("vmap", sane, move || {
            ferrax::vmap_program(&q, &ax, size).map_err(|e| e.to_string())
        }) {
            if self.must_check("vmap", "vmap_program", &v) {
                match cost(&v) {
                    Cost::TooLarge => self.skip("vmap:eval"),
                    _ => {
                        let vargs: Vec<Array> =
                            v.in_avals().iter().map(|a| random_array(a, rng)).collect();
                        let outs = self.eval_and_jit("vmap:eval", &v, &vargs);
                        if cost(&v) == Cost::Impossible && outs.is_some() {
                            self.event(
                                EventKind::Violation,
                                "vmap:eval",
                                "a batched program with a value far beyond the memory limit evaluated without error".into(),
                            );
                        }
                        if let (Some(outs), true) = (outs, (1..=4).contains(&size)) {
                            self.vmap_per_example(p, &axes, size, &vargs, &outs);
                        }
                    }
                }
            }
        }
        // optimize computes what the program computes
        let q = p.clone();
        if let Some(o) = self.stage_expect("optimize", self.complete, move || {
            ferrax::optimize(&q).map_err(|e| e.to_string())
        }) {
            if self.must_check("optimize", "optimize", &o) && cost(&o) == Cost::Cheap {
                if let Some(args) = args {
                    let (q, o2, a) = (p.clone(), o.clone(), args.to_vec());
                    if let Some((x, y)) = self.stage("optimize:eval", move || {
                        let x = q.eval(&a).map_err(|e| e.to_string())?;
                        let y = o2.eval(&a).map_err(|e| e.to_string())?;
                        Ok((x, y))
                    }) {
                        self.compare("optimize:eval-vs-eval", &x, &y, false);
                    }
                }
            }
        }
        // transposing the program itself (rarely linear) with a random residual count
        let n_res = rng.gen_range(0..=n_in + 1);
        let q = p.clone();
        if let Some(t) = self.stage("transpose-raw", move || {
            ferrax::transpose_program(&q, n_res).map_err(|e| e.to_string())
        }) {
            if n_res > n_in {
                self.event(
                    EventKind::Violation,
                    "transpose-raw",
                    format!("transpose_program accepted {n_res} residuals for {n_in} inputs"),
                );
            }
            self.must_check("transpose-raw", "transpose_program", &t);
        }
    }

    /// The batched program's outputs, example by example, equal the program's outputs on
    /// that example's slice of the inputs (to rounding where contractions may reorder).
    fn vmap_per_example(
        &mut self,
        p: &Program,
        axes: &[Option<usize>],
        size: usize,
        vargs: &[Array],
        outs: &[Array],
    ) {
        let reorders = reorders_sums(p);
        for k in 0..size {
            let args: Vec<Array> = vargs
                .iter()
                .zip(axes)
                .map(|(a, ax)| match ax {
                    Some(d) => index_axis(a, *d, k),
                    None => a.clone(),
                })
                .collect();
            let (q, a) = (p.clone(), args);
            let Some(want) = self.stage("vmap:example", move || {
                q.eval(&a).map_err(|e| e.to_string())
            }) else {
                return;
            };
            let got: Vec<Array> = outs.iter().map(|o| index_axis(o, 0, k)).collect();
            match compare_arrays(&want, &got, reorders) {
                Ok(notes) => {
                    for n in notes {
                        self.event(EventKind::Note, "vmap:per-example", n);
                    }
                }
                Err(msg) => {
                    let kind = if reorders {
                        EventKind::Note
                    } else {
                        EventKind::Violation
                    };
                    self.event(
                        kind,
                        "vmap:per-example",
                        format!(
                            "the batched program differs from the program example by example\nexample {k}: {msg}"
                        ),
                    );
                    return;
                }
            }
        }
    }

    fn linearized(&mut self, p: &Program, s: &Split, args: Option<&[Array]>, rng: &mut ChaCha8Rng) {
        let ok_primal = self.must_check("linearize", "linearize_program (primal)", &s.primal);
        let ok_linear = self.must_check("linearize", "linearize_program (linear)", &s.linear);
        if !ok_linear {
            return;
        }
        let n_res = s.residuals.len();
        let lin = s.linear.clone();
        if let Some(Err(e)) = self.stage("linearity", move || Ok(ferrax::check_linear(&lin, n_res)))
        {
            self.event(
                EventKind::Violation,
                "linearity",
                format!("the linear program of linearize_program is not linear: {e}"),
            );
        }
        let lin = s.linear.clone();
        let t = self.stage_expect("transpose", self.complete, move || {
            ferrax::transpose_program(&lin, n_res).map_err(|e| e.to_string())
        });
        let t_ok = match &t {
            Some(t) => self.must_check("transpose", "transpose_program", t),
            None => false,
        };
        // Evaluate: the primal program gives the outputs and the residuals; the linear
        // program and its transpose run on them.
        let Some(args) = args else { return };
        if !ok_primal || cost(&s.primal) != Cost::Cheap {
            return;
        }
        let Some(pouts) = self.eval_and_jit("linearize:primal", &s.primal, args) else {
            return;
        };
        let q = p.clone();
        let a = args.to_vec();
        if let Some(base) = self.stage("linearize:base", move || {
            q.eval(&a).map_err(|e| e.to_string())
        }) {
            let n = base.len().min(pouts.len());
            self.compare_primal("linearize:primal-vs-eval", p, &base, &pouts[..n]);
        }
        let mut res = vec![];
        for r in &s.residuals {
            let v = match r {
                ResidualSource::Input(k) => args.get(*k),
                ResidualSource::Output(k) => pouts.get(*k),
            };
            match v {
                Some(v) => res.push(v.clone()),
                None => {
                    self.event(
                        EventKind::Violation,
                        "linearize",
                        format!("residual source {r:?} names no value"),
                    );
                    return;
                }
            }
        }
        if cost(&s.linear) == Cost::Cheap {
            let mut largs = res.clone();
            for a in p.in_avals() {
                largs.push(random_array(&a, rng));
            }
            self.eval_and_jit("linear:eval", &s.linear, &largs);
        }
        if let (true, Some(t)) = (t_ok, t) {
            if cost(&t) == Cost::Cheap {
                let mut targs = res;
                for a in s.linear.out_avals() {
                    targs.push(random_array(&a, rng));
                }
                self.eval_and_jit("transpose:eval", &t, &targs);
            }
        }
    }

    /// Misuse of the entry points: wrong arguments must be errors, and a malformed copy of
    /// the program must be refused by every entry point (and still print).
    fn misuse(&mut self, p: &Program, rng: &mut ChaCha8Rng) {
        let n_in = p.inputs.len();
        // wrong number of flags / axes
        let q = p.clone();
        if self
            .stage("misuse:jvp-flags", move || {
                ferrax::jvp_program(&q, &vec![true; n_in + 1]).map_err(|e| e.to_string())
            })
            .is_some()
        {
            self.event(
                EventKind::Violation,
                "misuse:jvp-flags",
                "jvp_program accepted more tangent flags than inputs".into(),
            );
        }
        let q = p.clone();
        if self
            .stage("misuse:vmap-axes", move || {
                ferrax::vmap_program(&q, &vec![Some(0); n_in + 1], 2).map_err(|e| e.to_string())
            })
            .is_some()
        {
            self.event(
                EventKind::Violation,
                "misuse:vmap-axes",
                "vmap_program accepted more in_axes than inputs".into(),
            );
        }
        // wrong arguments to eval and run_compiled
        if cost(p) == Cost::Cheap {
            let mut args: Vec<Array> = p.in_avals().iter().map(|a| random_array(a, rng)).collect();
            let wrong = if args.is_empty() || rng.gen_bool(0.3) {
                args.push(Array::scalar(1.0f64));
                "one argument too many"
            } else {
                let k = rng.gen_range(0..args.len());
                let a = &args[k];
                let d = if a.dtype() == DType::F64 {
                    DType::I32
                } else {
                    DType::F64
                };
                let mut shape = a.shape().to_vec();
                if rng.gen_bool(0.5) {
                    shape.push(2);
                    args[k] = random_array(&Aval::new(shape, a.dtype()), rng);
                    "an argument of the wrong shape"
                } else {
                    args[k] = random_array(&Aval::new(shape, d), rng);
                    "an argument of the wrong dtype"
                }
            };
            let (q, a) = (p.clone(), args.clone());
            if self
                .stage("misuse:eval-args", move || {
                    q.eval(&a).map_err(|e| e.to_string())
                })
                .is_some()
            {
                self.event(
                    EventKind::Violation,
                    "misuse:eval-args",
                    format!("eval accepted {wrong}"),
                );
            }
            let q = p.clone();
            if self
                .stage("misuse:jit-args", move || {
                    ferrax::run_compiled(&q, args).map_err(|e| e.to_string())
                })
                .is_some()
            {
                self.event(
                    EventKind::Violation,
                    "misuse:jit-args",
                    format!("run_compiled accepted {wrong}"),
                );
            }
        }
        let mut mrng = self.rng_for(2);
        if mrng.gen_bool(0.35) {
            self.malformed(p, &mut mrng);
        }
    }

    /// A hand-built malformed copy of the program: when `check` refuses it, every entry
    /// point must refuse it too (no panic), and printing it must not panic.
    fn malformed(&mut self, p: &Program, rng: &mut ChaCha8Rng) {
        let Some((m, what)) = break_program(p, rng) else {
            return;
        };
        let first_new = self.report.events.len();
        self.malformed_entries(p, &m, rng);
        for e in &mut self.report.events[first_new..] {
            e.message = format!("{}\n(the malformed copy: {what})", e.message);
        }
    }

    fn malformed_entries(&mut self, p: &Program, m: &Program, rng: &mut ChaCha8Rng) {
        let what = "a malformed copy";
        let q = m.clone();
        let _ = self.stage("malformed:print", move || Ok(q.to_string()));
        let q = m.clone();
        match self.stage("malformed:check", move || Ok(q.check())) {
            Some(Err(_)) => {}
            _ => return,
        }
        let args: Vec<Array> = if cost(p) == Cost::Cheap {
            p.in_avals().iter().map(|a| random_array(a, rng)).collect()
        } else {
            vec![]
        };
        let n_in = m.inputs.len();
        let n_out = m.outputs.len();
        type Entry = fn(&Program, &[Array], usize, usize) -> Result<(), String>;
        let entries: [(&str, Entry); 10] = [
            ("eval", |m, a, _, _| {
                m.eval(a).map(drop).map_err(|e| e.to_string())
            }),
            ("run_compiled", |m, a, _, _| {
                ferrax::run_compiled(m, a.to_vec())
                    .map(drop)
                    .map_err(|e| e.to_string())
            }),
            ("optimize", |m, _, _, _| {
                ferrax::optimize(m).map(drop).map_err(|e| e.to_string())
            }),
            ("jvp_program", |m, _, n, _| {
                ferrax::jvp_program(m, &vec![true; n])
                    .map(drop)
                    .map_err(|e| e.to_string())
            }),
            ("linearize_program", |m, _, _, _| {
                ferrax::linearize_program(m)
                    .map(drop)
                    .map_err(|e| e.to_string())
            }),
            ("grad_program", |m, _, _, _| {
                ferrax::grad_program(m).map(drop).map_err(|e| e.to_string())
            }),
            ("vmap_program", |m, _, n, _| {
                ferrax::vmap_program(m, &vec![Some(0); n], 2)
                    .map(drop)
                    .map_err(|e| e.to_string())
            }),
            ("transpose_program", |m, _, _, _| {
                ferrax::transpose_program(m, 0)
                    .map(drop)
                    .map_err(|e| e.to_string())
            }),
            ("check_linear", |m, _, _, _| {
                ferrax::check_linear(m, 0).map_err(|e| e.to_string())
            }),
            ("partial_eval", |m, _, n, k| {
                ferrax::partial_eval(m, n, k)
                    .map(drop)
                    .map_err(|e| e.to_string())
            }),
        ];
        for (name, f) in entries {
            let (q, a) = (m.clone(), args.clone());
            let stage = format!("malformed:{name}");
            if self.stage(&stage, move || f(&q, &a, n_in, n_out)).is_some() {
                self.event(
                    EventKind::Violation,
                    &stage,
                    format!("{name} accepted a program that check rejects ({what})"),
                );
            }
        }
    }

    // -----------------------------------------------------------------------------------
    // NIST files.

    fn nist(&mut self, text: &str, seed: u64) {
        use ferrax_solvers::nist;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let t = text.to_string();
        let Some(p) = self.stage("nist:parse", move || {
            nist::parse_dat(&t, "fuzz.dat").map_err(|e| e.to_string())
        }) else {
            return;
        };
        self.report.accepted = true;
        let n = p.certified.len();
        let lens = [
            p.param_names.len(),
            p.start1.len(),
            p.start2.len(),
            p.certified_sd.len(),
            p.certified_digits.len(),
        ];
        if lens.iter().any(|&l| l != n) || p.x.iter().any(|c| c.len() != p.y.len()) {
            self.event(
                EventKind::Violation,
                "nist:parse",
                format!("parse_dat returned inconsistent lengths: {n} certified, {lens:?}"),
            );
        }
        // How many parameters the real problem of that name has.
        let real = nist::ALL
            .contains(&p.name.as_str())
            .then(|| nist::load(&nist::data_dir(), &p.name).ok())
            .flatten()
            .map(|r| r.certified.len());
        let q = p.clone();
        let _ = self.stage("nist:residual", move || {
            let f = nist::residual_fn(&q).map_err(|e| e.to_string())?;
            let x = ferrax::Tensor::new(Array::from_slice(&q.start1));
            f(x).array().map(drop).map_err(|e| e.to_string())
        });
        for start in [1usize, 2, rng.gen_range(0..4)] {
            let mut opts = ferrax_solvers::LsqOptions {
                max_iterations: 20,
                ..Default::default()
            };
            if rng.gen_bool(0.3) {
                opts.method = ferrax_solvers::least_squares::Method::GaussNewtonCg;
            }
            let q = p.clone();
            let stage = format!("nist:run{start}");
            let r = self.stage(&stage, move || {
                let r = nist::run(&q, start, &opts).map_err(|e| e.to_string())?;
                // the report paths
                let _ = nist::json(&r);
                let _ = nist::markdown(std::slice::from_ref(&r));
                let _ = nist::summary(std::slice::from_ref(&r));
                Ok(r)
            });
            let Some(r) = r else { continue };
            if !(1..=2).contains(&start) {
                self.event(
                    EventKind::Violation,
                    &stage,
                    format!("nist::run accepted start {start}"),
                );
            }
            if r.fit.params.len() != n {
                self.event(
                    EventKind::Violation,
                    "nist:run",
                    format!(
                        "the fit returned another number of parameters than the file declares\n{n} declared, {} returned",
                        r.fit.params.len()
                    ),
                );
            }
            if let Some(m) = real.filter(|&m| m != n) {
                let more = if n > m { "more" } else { "fewer" };
                self.event(
                    EventKind::Violation,
                    "nist:run",
                    format!(
                        "a file declaring {more} parameters than its problem's model has was fitted without error\n{n} parameters for {} (whose model has {m}), start {start}",
                        p.name
                    ),
                );
            }
        }
    }

    // -----------------------------------------------------------------------------------
    // Scaling.

    fn scaling(&mut self, n: usize) {
        let text = chain_text(n);
        let time = |d: &mut Self, name: &str, f: &mut dyn FnMut() -> bool| {
            (d.progress)(name);
            let t0 = Instant::now();
            let ok = f();
            d.report
                .timings
                .push((name.to_string(), t0.elapsed().as_secs_f64()));
            d.report.stages.push((
                name.to_string(),
                if ok { StageEnd::Ok } else { StageEnd::Err },
            ));
        };
        let mut p = None;
        time(self, "parse", &mut || {
            p = Program::parse(&text).ok();
            p.is_some()
        });
        let Some(p) = p else { return };
        self.report.accepted = true;
        let x = [Array::scalar(0.5f64)];
        time(self, "check", &mut || p.check().is_ok());
        time(self, "print", &mut || !p.to_string().is_empty());
        time(self, "dce", &mut || !p.dce().eqns.is_empty());
        time(self, "jvp", &mut || {
            ferrax::jvp_program(&p, &[true]).is_ok()
        });
        time(self, "linearize", &mut || {
            ferrax::linearize_program(&p).is_ok()
        });
        time(self, "vjp", &mut || ferrax::vjp_program(&p).is_ok());
        time(self, "grad", &mut || ferrax::grad_program(&p).is_ok());
        time(self, "vmap", &mut || {
            ferrax::vmap_program(&p, &[Some(0)], 4).is_ok()
        });
        time(self, "optimize", &mut || ferrax::optimize(&p).is_ok());
        time(self, "eval", &mut || p.eval(&x).is_ok());
        time(self, "jit", &mut || {
            ferrax::run_compiled(&p, x.to_vec()).is_ok()
        });
    }
}

/// `n` scalar equations, each using the one before (sin, mul by a literal, add).
pub fn chain_text(n: usize) -> String {
    let mut s = String::from("{ lambda ; a:f64[] . let\n");
    for i in 1..=n {
        let (out, prev) = (crate::gen::name_of(i), crate::gen::name_of(i - 1));
        match i % 3 {
            0 => s.push_str(&format!("    {out}:f64[] = sin {prev}\n")),
            1 => s.push_str(&format!("    {out}:f64[] = mul {prev} 0.999:f64\n")),
            _ => s.push_str(&format!("    {out}:f64[] = add {prev} a\n")),
        }
    }
    s.push_str(&format!("  in ({}) }}", crate::gen::name_of(n)));
    s
}

/// A copy of `p` broken in one random way, and what was done; `None` when the chosen way
/// does not apply to this program.
pub fn break_program(p: &Program, rng: &mut impl Rng) -> Option<(Program, String)> {
    let mut m = p.clone();
    let n_vars = m.avals.len() as u32;
    let what = match rng.gen_range(0..8) {
        0 if !m.eqns.is_empty() => {
            let k = rng.gen_range(0..m.eqns.len());
            let v = m.eqns[k].outs.first()?.index();
            m.avals[v].shape.push(2);
            "an equation's declared aval changed".to_string()
        }
        1 if !m.eqns.is_empty() => {
            let k = rng.gen_range(0..m.eqns.len());
            let far = if rng.gen_bool(0.5) {
                Var(n_vars + 5)
            } else {
                *m.eqns[k].outs.first()?
            };
            if m.eqns[k].inputs.is_empty() {
                return None;
            }
            let i = rng.gen_range(0..m.eqns[k].inputs.len());
            m.eqns[k].inputs[i] = Atom::Var(far);
            "an operand names an undefined variable".to_string()
        }
        2 if m.eqns.len() >= 2 => {
            let k = rng.gen_range(0..m.eqns.len() - 1);
            m.eqns.swap(k, k + 1);
            "two equations swapped".to_string()
        }
        3 if !m.outputs.is_empty() => {
            let k = rng.gen_range(0..m.outputs.len());
            m.outputs[k] = Atom::Var(Var(n_vars + rng.gen_range(0..3)));
            "an output names a variable beyond the table".to_string()
        }
        4 if !m.inputs.is_empty() => {
            m.inputs.push(m.inputs[0]);
            "an input listed twice".to_string()
        }
        5 if !m.avals.is_empty() => {
            m.avals.pop();
            "the aval table truncated".to_string()
        }
        6 if !m.eqns.is_empty() => {
            let k = rng.gen_range(0..m.eqns.len());
            m.eqns[k].inputs.push(Atom::Lit(ferrax::Scalar::F64(1.0)));
            "an equation given one operand too many".to_string()
        }
        7 if !m.consts.is_empty() => {
            m.consts[0].1 = Array::from_slice(&[1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
            "a constant's value of the wrong aval".to_string()
        }
        _ => return None,
    };
    Some((m, what))
}

/// Whether `p` (a branch or loop body included) has contractions whose batched form may sum
/// in another order.
pub fn reorders_sums(p: &Program) -> bool {
    use ferrax::Primitive::*;
    p.eqns.iter().any(|e| {
        matches!(e.prim, DotGeneral { .. } | ReduceSum { .. } | Cumsum { .. })
            || e.prim.subprograms().into_iter().any(reorders_sums)
    })
}

/// Whether the compiled path may legitimately differ from the reference evaluator in the
/// last bits: fast transcendental kernels, and sums and matrix products in another order.
pub fn has_fast_kernels(p: &Program) -> bool {
    use ferrax::Primitive::*;
    p.eqns.iter().any(|e| {
        e.outs
            .iter()
            .any(|v| p.avals.get(v.index()).is_some_and(|a| a.dtype.is_float()))
            && matches!(
                e.prim,
                Sin | Cos
                    | Exp
                    | Expm1
                    | Log
                    | Tanh
                    | Logistic
                    | DotGeneral { .. }
                    | ReduceSum { .. }
            )
            // branches and loop bodies run the same kernels
            || e.prim.subprograms().into_iter().any(has_fast_kernels)
    })
}

fn avals_text(a: &[Aval]) -> String {
    a.iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where two texts first differ, with a little context.
pub fn first_difference(a: &str, b: &str) -> String {
    let i = a
        .bytes()
        .zip(b.bytes())
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let from = i.saturating_sub(40);
    let cut = |s: &str| {
        let lo = (from..=i.min(s.len()))
            .find(|&k| s.is_char_boundary(k))
            .unwrap_or(i);
        let hi = (i + 40).min(s.len());
        let hi = (hi..=s.len())
            .find(|&k| s.is_char_boundary(k))
            .unwrap_or(s.len());
        s[lo..hi].to_string()
    };
    format!("at byte {i}: {:?} vs {:?}", cut(a), cut(b))
}

/// The slice of `a` at index `k` of `axis` (that axis removed).
pub fn index_axis(a: &Array, axis: usize, k: usize) -> Array {
    let shape = a.shape();
    let outer: usize = shape[..axis].iter().product();
    let n = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let mut out_shape = shape.to_vec();
    out_shape.remove(axis);
    if inner == 0 {
        // empty slices: no index to gather (and `outer` may be huge)
        let empty = Array::from_data(a.data().clone(), &[0]).expect("an empty buffer");
        return empty.reshaped(&out_shape).expect("an empty shape");
    }
    let idx: Vec<usize> = (0..outer)
        .flat_map(|o| (0..inner).map(move |i| (o * n + k) * inner + i))
        .collect();
    let data = match a.data() {
        Data::F32(v) => Data::F32(idx.iter().map(|&i| v[i]).collect()),
        Data::F64(v) => Data::F64(idx.iter().map(|&i| v[i]).collect()),
        Data::I32(v) => Data::I32(idx.iter().map(|&i| v[i]).collect()),
        Data::I64(v) => Data::I64(idx.iter().map(|&i| v[i]).collect()),
        Data::Bool(v) => Data::Bool(idx.iter().map(|&i| v[i]).collect()),
    };
    Array::from_data(data, &out_shape).expect("the length matches the shape")
}

/// Random values for an aval: mostly ordinary numbers, sometimes the special ones (zeros
/// of both signs, infinities, NaN, extremes).
pub fn random_array(a: &Aval, rng: &mut impl Rng) -> Array {
    // no overflow for shapes like [usize::MAX, 0]: a zero anywhere makes it empty
    let n: usize = if a.shape.contains(&0) {
        0
    } else {
        a.shape.iter().product()
    };
    fn float(rng: &mut impl Rng) -> f64 {
        if rng.gen_bool(0.9) {
            let x: f64 = rng.gen_range(-3.0..3.0);
            (x * 8.0).round() / 8.0 + if rng.gen_bool(0.5) { 0.0 } else { x / 7.0 }
        } else {
            const SPECIAL: [f64; 10] = [
                0.0,
                -0.0,
                1.0,
                -1.0,
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::NAN,
                1e300,
                -1e-310,
                f64::MAX,
            ];
            SPECIAL[rng.gen_range(0..SPECIAL.len())]
        }
    }
    fn int(rng: &mut impl Rng) -> i64 {
        match rng.gen_range(0..20) {
            0 => i64::MAX,
            1 => i64::MIN,
            2 => i32::MAX as i64,
            3 => i32::MIN as i64,
            4 => 0,
            _ => rng.gen_range(-5..6),
        }
    }
    let data = match a.dtype {
        DType::F32 => Data::F32((0..n).map(|_| float(rng) as f32).collect()),
        DType::F64 => Data::F64((0..n).map(|_| float(rng)).collect()),
        DType::I32 => Data::I32((0..n).map(|_| int(rng) as i32).collect()),
        DType::I64 => Data::I64((0..n).map(|_| int(rng)).collect()),
        DType::Bool => Data::Bool((0..n).map(|_| rng.gen_bool(0.5)).collect()),
    };
    Array::from_data(data, &a.shape).expect("the length matches the shape")
}

/// Compares two lists of arrays (see `Driver::compare`): `Err` describes the first
/// mismatch; `Ok` lists notes (NaN payloads or zero signs that differ).
pub fn compare_arrays(a: &[Array], b: &[Array], tolerant: bool) -> Result<Vec<String>, String> {
    if a.len() != b.len() {
        return Err(format!("{} outputs vs {}", a.len(), b.len()));
    }
    let mut notes = vec![];
    for (k, (x, y)) in a.iter().zip(b).enumerate() {
        if x.aval() != y.aval() {
            return Err(format!("output {k}: {} vs {}", x.aval(), y.aval()));
        }
        let bad = |i: usize, u: String, v: String| {
            Err(format!(
                "output {k} ({}), element {i}: {u} vs {v}",
                x.aval()
            ))
        };
        macro_rules! floats {
            ($u:expr, $v:expr, $rtol:expr, $atol:expr) => {
                for (i, (&p, &q)) in $u.iter().zip($v.iter()).enumerate() {
                    if p.to_bits() == q.to_bits() {
                        continue;
                    }
                    if p.is_nan() && q.is_nan() {
                        notes.push(format!(
                            "NaN payloads differ (issue 10: max/min NaN rule?)\noutput {k} element {i}: {:#x} vs {:#x}",
                            p.to_bits(),
                            q.to_bits()
                        ));
                    } else if p == q {
                        notes.push(format!(
                            "signed zeros differ\noutput {k} element {i}: {p:?} vs {q:?}"
                        ));
                    } else if tolerant
                        && (p - q).abs() <= $rtol * p.abs().max(q.abs()) + $atol
                    {
                        continue;
                    } else {
                        return bad(i, format!("{p:?}"), format!("{q:?}"));
                    }
                }
            };
        }
        match (x.data(), y.data()) {
            (Data::F32(u), Data::F32(v)) => floats!(u, v, 1e-4f32, 1e-6f32),
            (Data::F64(u), Data::F64(v)) => floats!(u, v, 1e-9f64, 1e-13f64),
            (Data::I32(u), Data::I32(v)) => {
                if let Some(i) = (0..u.len()).find(|&i| u[i] != v[i]) {
                    return bad(i, u[i].to_string(), v[i].to_string());
                }
            }
            (Data::I64(u), Data::I64(v)) => {
                if let Some(i) = (0..u.len()).find(|&i| u[i] != v[i]) {
                    return bad(i, u[i].to_string(), v[i].to_string());
                }
            }
            (Data::Bool(u), Data::Bool(v)) => {
                if let Some(i) = (0..u.len()).find(|&i| u[i] != v[i]) {
                    return bad(i, u[i].to_string(), v[i].to_string());
                }
            }
            _ => return Err(format!("output {k}: different dtypes")),
        }
    }
    notes.sort();
    notes.dedup_by(|a, b| a.lines().next() == b.lines().next());
    Ok(notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_axis_takes_one_slice() {
        let a = Array::from_vec((0..24).map(|x| x as f64).collect::<Vec<_>>(), &[2, 3, 4]).unwrap();
        let s = index_axis(&a, 1, 2);
        assert_eq!(s.shape(), &[2, 4]);
        assert_eq!(
            s.to_vec::<f64>().unwrap(),
            vec![8., 9., 10., 11., 20., 21., 22., 23.]
        );
        let t = index_axis(&a, 2, 0);
        assert_eq!(t.to_vec::<f64>().unwrap(), vec![0., 4., 8., 12., 16., 20.]);
    }

    #[test]
    fn cost_of_sizes() {
        let p =
            Program::parse("{ lambda ; a:f64[3] . let\n    b:f64[3] = sin a\n  in (b) }").unwrap();
        assert_eq!(cost(&p), Cost::Cheap);
        let p = Program::parse(
            "{ lambda ; . let\n    a:f64[1099511627776] = iota[dtype=f64 shape=(1099511627776,) dimension=0]\n  in (a) }",
        )
        .unwrap();
        assert_eq!(cost(&p), Cost::Impossible);
        let p = Program::parse("{ lambda ; a:f64[100000000] . let\n  in (a) }").unwrap();
        assert_eq!(cost(&p), Cost::TooLarge);
    }

    #[test]
    fn cost_of_loops_and_branches() {
        let scan = |length: &str, ys: bool| {
            let (outs, body_outs, stacked) = if ys {
                ("b:f64[] c:f64[L]", "(y, y)", ", c")
            } else {
                ("b:f64[]", "(y)", "")
            };
            let text = format!(
                "{{ lambda ; a:f64[] . let {outs} = scan[body={{ lambda ; x:f64[] . let y:f64[] = sin x in {body_outs} }} n_consts=0 n_carry=1 length=L reverse=false] a in (b{stacked}) }}"
            )
            .replace('L', length);
            Program::parse(&text).unwrap()
        };
        assert_eq!(cost(&scan("1000", false)), Cost::Cheap);
        assert_eq!(cost(&scan("1000", true)), Cost::Cheap);
        // a long loop is slow, not impossible: it is not evaluated
        assert_eq!(cost(&scan("1099511627776", false)), Cost::TooLarge);
        // ys that cannot fit must be refused before the loop runs
        assert_eq!(cost(&scan("1099511627776", true)), Cost::Impossible);
        // a large value in a branch that may not be taken: no promise either way
        let p = Program::parse(
            "{ lambda ; i:i32[] . let a:f64[] = cond[branches=({ lambda ; . let in (1.0:f64) }, { lambda ; . let b:f64[1099511627776] = iota[dtype=f64 shape=(1099511627776,) dimension=0] c:f64[] = reduce_max[axes=(0,)] b in (c) })] i in (a) }",
        )
        .unwrap();
        assert_eq!(cost(&p), Cost::TooLarge);
        // fast kernels in a loop body count
        assert!(has_fast_kernels(&scan("3", false)));
        assert!(!has_fast_kernels(
            &Program::parse("{ lambda ; a:f64[] . let b:f64[] = neg a in (b) }").unwrap()
        ));
    }

    #[test]
    fn comparisons_note_nan_payloads_and_zero_signs() {
        let a = [Array::from_slice(&[f64::NAN, 0.0, 1.0])];
        let b = [Array::from_slice(&[-f64::NAN, -0.0, 1.0])];
        let notes = compare_arrays(&a, &b, false).unwrap();
        assert_eq!(notes.len(), 2);
        let c = [Array::from_slice(&[f64::NAN, 0.0, 1.0 + 1e-12])];
        assert!(compare_arrays(&a, &c, false).is_err());
        assert!(compare_arrays(&a, &c, true).is_ok());
    }

    #[test]
    fn a_stage_panic_becomes_an_event() {
        let r = isolated(|| -> u32 { panic!("boom {}", 7) });
        let (loc, msg) = r.unwrap_err();
        assert_eq!(msg, "boom 7");
        assert!(loc.contains("driver.rs"), "{loc}");
    }
}
