//! `named_map` in a compiled plan: one thread per member, the collectives exchanged through
//! a communicator.
//!
//! Sits beside `control` (which prepares a `named_map` step with the plan of its body) and
//! under `dispatch` (whose `execute` hands a collective to the member's communicator). Each
//! member runs the body's plan on its own thread, on its slices of the operands; a
//! collective gives the member's operand to the communicator, which hands every member all
//! the members' operands in member order, and each member then computes its result with the
//! reference evaluator's formulas for the map (`reference::named_map::collective`), on the
//! same stacked values: so a compiled map agrees with the lockstep evaluation bit for bit
//! wherever the body's kernels do. Sub-programs of the body run on the member's thread, so
//! a loop whose body calls `psum` over the map's axis works here too. (Each member computes
//! every member's result and keeps its own: simple and exact; a reduce-scatter would move
//! less, which matters across machines, not across threads.)
//!
//! Failure never hangs: a member whose body fails (or panics) marks the run failed, and the
//! members waiting on a collective return an error naming it; a member that never arrives
//! is waited for at most [`WAIT`], then every waiting member returns an error. The error of
//! the run is the failing member's own.

use std::cell::RefCell;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::backend::reference::named_map::collective as collective_of_members;
use crate::ir::{Array, Error, Primitive, Result, Scalar};

/// The most members a compiled map runs, one thread each.
pub(crate) const MAX_THREADS: usize = 1024;

/// How long a member waits for the others at one collective.
pub(crate) const WAIT: Duration = Duration::from_secs(60);

/// The members of a named axis exchanging values: what a collective needs of the machinery
/// running the members (threads here, `ThreadComm`; processes, `mpi::MpiComm`).
pub(crate) trait Communicator: Send + Sync {
    /// The number of members.
    fn size(&self) -> usize;
    /// Every member's value in member order, once all have given theirs; an error if a
    /// member failed, or did not arrive within the wait bound. `what` names the collective.
    fn all_gather(&self, rank: usize, x: Array, what: &str) -> Result<Vec<Array>>;
    /// Marks the run failed with a member's error: members waiting on a collective, or
    /// arriving at one, return an error instead of waiting.
    fn fail(&self, rank: usize, err: Error);
    /// The first failure, if any: the error the run reports.
    fn failure(&self) -> Option<Error>;
    /// The member's run ended well. Members that are processes confirm it to each other
    /// here, so that a member that failed after the others' last collective still reaches
    /// them (its `fail` meets their `finish`): every member then returns the error. Threads
    /// share the failure directly and need nothing.
    fn finish(&self, _rank: usize) -> Result<()> {
        Ok(())
    }
}

/// A communicator between threads of one process: a round of `all_gather` completes when
/// the last member arrives; the others wait on a condition variable.
pub(crate) struct ThreadComm {
    n: usize,
    state: Mutex<Round>,
    turn: Condvar,
    wait: Duration,
}

struct Round {
    /// Rounds completed so far.
    generation: u64,
    given: Vec<Option<Array>>,
    arrived: usize,
    /// The values of the last completed round (a member still reading it cannot be
    /// overtaken: the next round needs it to arrive).
    last: Vec<Array>,
    failed: Option<Error>,
}

impl ThreadComm {
    pub(crate) fn new(n: usize, wait: Duration) -> ThreadComm {
        ThreadComm {
            n,
            state: Mutex::new(Round {
                generation: 0,
                given: vec![None; n],
                arrived: 0,
                last: vec![],
                failed: None,
            }),
            turn: Condvar::new(),
            wait,
        }
    }
}

fn poisoned() -> Error {
    Error::internal("a named_map member panicked while holding the communicator")
}

/// The error a member gets when another member failed.
fn other_failed(rank: usize, what: &str, err: &Error) -> Error {
    Error::input(
        "named_map",
        format!("member {rank} stopped at `{what}`: another member failed ({err})"),
    )
}

impl Communicator for ThreadComm {
    fn size(&self) -> usize {
        self.n
    }

    fn all_gather(&self, rank: usize, x: Array, what: &str) -> Result<Vec<Array>> {
        let mut s = self.state.lock().map_err(|_| poisoned())?;
        if let Some(e) = &s.failed {
            return Err(other_failed(rank, what, e));
        }
        let generation = s.generation;
        s.given[rank] = Some(x);
        s.arrived += 1;
        if s.arrived == self.n {
            let all: Option<Vec<Array>> = s.given.iter_mut().map(Option::take).collect();
            s.last = all.ok_or_else(|| Error::internal("a member gave no value"))?;
            s.arrived = 0;
            s.generation += 1;
            self.turn.notify_all();
            return Ok(s.last.clone());
        }
        let deadline = Instant::now() + self.wait;
        loop {
            if s.generation != generation {
                return Ok(s.last.clone());
            }
            if let Some(e) = &s.failed {
                return Err(other_failed(rank, what, e));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let e = Error::input(
                    "named_map",
                    format!(
                        "member {rank} waited {:?} at `{what}` for the other members, {} of {} \
                         arrived: a member never reached it",
                        self.wait, s.arrived, self.n
                    ),
                );
                s.failed = Some(e.clone());
                self.turn.notify_all();
                return Err(e);
            }
            s = self.turn.wait_timeout(s, left).map_err(|_| poisoned())?.0;
        }
    }

    fn fail(&self, rank: usize, err: Error) {
        if let Ok(mut s) = self.state.lock() {
            if s.failed.is_none() {
                s.failed = Some(Error::input(
                    "named_map",
                    format!("member {rank} failed: {err}"),
                ));
            }
            self.turn.notify_all();
        }
    }

    fn failure(&self) -> Option<Error> {
        self.state.lock().ok().and_then(|s| s.failed.clone())
    }
}

/// The member this thread runs: its communicator, rank and axis.
struct Member {
    comm: Arc<dyn Communicator>,
    rank: usize,
    axis: String,
}

thread_local! {
    static MEMBER: RefCell<Option<Member>> = const { RefCell::new(None) };
}

/// Whether this thread runs one member of a map of several (its kernels then run serially).
pub(crate) fn one_of_several_members() -> bool {
    MEMBER.with(|m| m.borrow().as_ref().is_some_and(|m| m.comm.size() > 1))
}

/// The result of a collective over the axis this thread's member belongs to (`None` for
/// any other primitive, or outside such a member: the reference evaluator decides).
pub(crate) fn collective(prim: &Primitive, args: &[&Array]) -> Option<Result<Array>> {
    let (name, n) = prim.collective_axis()?;
    MEMBER.with(|m| {
        let m = m.borrow();
        let m = m.as_ref().filter(|m| m.axis == name)?;
        if n != m.comm.size() {
            return Some(Err(Error::shape(
                prim.name(),
                format!(
                    "the program was traced for {n} members of `{name}`, and runs on {}",
                    m.comm.size()
                ),
            )));
        }
        if matches!(prim, Primitive::AxisIndex { .. }) {
            return Some(Ok(Array::from_scalar(Scalar::I32(m.rank as i32))));
        }
        Some((|| {
            let x = args
                .first()
                .map(|a| (*a).clone())
                .ok_or_else(|| Error::internal("a collective without an operand"))?;
            let all = m.comm.all_gather(m.rank, x, prim.name())?;
            let ins: Vec<Vec<Array>> = all.into_iter().map(|a| vec![a]).collect();
            let mut outs = collective_of_members(prim, &ins, n)?;
            if m.rank >= outs.len() || outs[m.rank].is_empty() {
                return Err(Error::internal("a collective gave no value for a member"));
            }
            Ok(outs.swap_remove(m.rank).swap_remove(0))
        })())
    })
}

/// Runs `run` on this thread as member `rank` of the axis `axis`: the collectives over
/// `axis` it reaches go through `comm`. A failure (an error or a panic) is handed to the
/// communicator, so that the other members stop instead of waiting; a run that ends well
/// is confirmed with [`Communicator::finish`]. The member this thread ran before (a map
/// over another axis) is back in place afterwards.
pub(crate) fn as_member<R>(
    comm: Arc<dyn Communicator>,
    rank: usize,
    axis: &str,
    run: impl FnOnce() -> Result<R>,
) -> Result<R> {
    struct Restore(Option<Member>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let before = self.0.take();
            MEMBER.with(|m| *m.borrow_mut() = before);
        }
    }
    let before = MEMBER.with(|m| {
        m.borrow_mut().replace(Member {
            comm: comm.clone(),
            rank,
            axis: axis.to_string(),
        })
    });
    let _restore = Restore(before);
    let r = std::panic::catch_unwind(AssertUnwindSafe(run)).unwrap_or_else(|_| {
        Err(Error::internal(format!(
            "member {rank} of `{axis}` panicked"
        )))
    });
    match r {
        Ok(v) => comm.finish(rank).map(|()| v),
        Err(e) => {
            comm.fail(rank, e.clone());
            Err(e)
        }
    }
}

/// Runs `run(rank)` for every member of the axis `axis` on a thread of its own, the member
/// installed for the collectives; the members' results in member order, or the run's error
/// (the failing member's).
pub(crate) fn run_members<R: Send>(
    n: usize,
    axis: &str,
    run: impl Fn(usize) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    if n > MAX_THREADS {
        return Err(Error::exhausted(
            "named_map",
            format!(
                "{n} members of `{axis}` on threads: a compiled map runs at most {MAX_THREADS} \
                 (one thread each)"
            ),
        ));
    }
    let comm: Arc<dyn Communicator> = Arc::new(ThreadComm::new(n, WAIT));
    let results: Vec<Result<R>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|rank| {
                let mine = comm.clone();
                let run = &run;
                let spawned = std::thread::Builder::new()
                    .name(format!("ferrax-{axis}-{rank}"))
                    .spawn_scoped(scope, move || as_member(mine, rank, axis, || run(rank)));
                spawned.map_err(|e| {
                    let err = Error::exhausted(
                        "named_map",
                        format!("cannot start a thread for member {rank} of `{axis}`: {e}"),
                    );
                    comm.fail(rank, err.clone());
                    err
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.and_then(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::internal("a member thread panicked")))
                })
            })
            .collect()
    });
    if let Some(e) = comm.failure() {
        return Err(e);
    }
    results.into_iter().collect()
}
