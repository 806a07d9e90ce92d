//! `MpiAxis`: the processes started by `mpirun` as the members of one named axis (feature
//! `mpi`).
//!
//! The multi-process counterpart of `named_map`. There, one program traces a function for
//! one member and runs the members on threads; here every process is one member and holds
//! its own shard of the inputs, so [`MpiAxis::spmd`] traces the function for the process's
//! shard (the axis bound to the number of processes, so `psum`, `all_gather`, `ppermute`
//! and the other collectives record it), compiles it, and runs it with an MPI communicator
//! installed (`backend::cpu::mpi`). Everything inside the function (`grad`, `linearize`,
//! `vmap`, control flow) is traced as usual; only the collectives cross processes. Process
//! `r`'s results are those of member `r` of `named_map` over the stacked shards, bit for
//! bit: both gather the members' operands and combine them in member order.
//!
//! A failure on one process (an error, a panic, a shape that differs from the others') is
//! an error on every process; a process that never reaches a collective is waited for at
//! most [`MpiAxis::with_wait`]'s bound (60 s unless set).

use std::cell::RefCell;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::ops::Range;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::Duration;

use ::mpi::environment::Universe;
use ::mpi::raw::AsRaw;
use ::mpi::topology::{Communicator as _, SimpleCommunicator};

use crate::backend::cpu::mpi::{MpiComm, Traffic};
use crate::backend::cpu::spmd::{as_member, WAIT};
use crate::backend::Plan;
use crate::ir::collective::{bad_axis_name, is_axis_name};
use crate::ir::{Aval, Error, Result, SourceLoc};
use crate::surface::collective::with_axis;
use crate::trace::{flatten, is_tracing, leaf_avals, trace_tree, unflatten, Tensor, Tree, TreeDef};

/// This process's place among the processes of an MPI job, as a member of the named axis
/// `axis_name`. Made once per process ([`MpiAxis::init`] initializes MPI; dropping the axis
/// finalizes it).
///
/// ```
/// // one process here (MPI's singleton start); under `mpirun -np 4`, four
/// use ferrax::{psum, MpiAxis, Tensor};
/// let axis = MpiAxis::init("dp").unwrap();
/// // each process holds its own rows; the sum is over every process's rows
/// let rows = Tensor::from_vec(vec![axis.rank() as f64 + 1.0; 4], &[4]);
/// let total: Tensor = axis.spmd(|x: Tensor| psum(&x.sum_all(), "dp"), &rows).unwrap();
/// # let n = axis.size() as f64;
/// assert_eq!(total.item().unwrap(), 4.0 * n * (n + 1.0) / 2.0);
/// ```
pub struct MpiAxis {
    name: String,
    /// A duplicate of the world communicator: ferrax's collectives never meet the
    /// program's own MPI messages. Declared before `_universe`, so it is freed before MPI
    /// is finalized.
    comm: SimpleCommunicator,
    rank: usize,
    size: usize,
    wait: Duration,
    thread: ThreadId,
    traffic: Arc<Traffic>,
    _universe: Universe,
}

/// What this process's collectives have moved since its [`MpiAxis`] was made: the
/// communication volume, for estimating how a run scales to more machines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MpiTraffic {
    /// Collectives run (`psum`, `all_gather`, ...; `axis_index` needs none).
    pub collectives: u64,
    /// MPI gathers completed: two per collective (sizes, then values) and two at the end
    /// of each [`MpiAxis::spmd`] run (the processes confirming that all ended well).
    pub rounds: u64,
    /// Bytes this process gave.
    pub bytes_sent: u64,
    /// Bytes this process received (its own included: every process gets every value,
    /// so this is about `size` times what each gives).
    pub bytes_received: u64,
}

impl MpiAxis {
    /// Initializes MPI and names the axis its processes form. An error if `axis_name` is not
    /// an identifier, or MPI is already initialized (once per process) or cannot start.
    pub fn init(axis_name: &str) -> Result<MpiAxis> {
        let op = "MpiAxis::init";
        if !is_axis_name(axis_name) {
            return Err(bad_axis_name(op, axis_name));
        }
        let universe = ::mpi::initialize().ok_or_else(|| {
            Error::input(
                op,
                "MPI is already initialized in this process: make one MpiAxis per process",
            )
        })?;
        let comm = universe.world().duplicate();
        // MPI's errors as return codes (ferrax makes them `Err`s), not the default abort
        // SAFETY: `comm` is a live communicator; the handler is MPI's predefined one.
        unsafe {
            ::mpi::ffi::MPI_Comm_set_errhandler(comm.as_raw(), ::mpi::ffi::RSMPI_ERRORS_RETURN)
        };
        let (rank, size) = (comm.rank(), comm.size());
        Ok(MpiAxis {
            name: axis_name.to_string(),
            rank: usize::try_from(rank).map_err(|_| Error::internal("a negative MPI rank"))?,
            size: usize::try_from(size).map_err(|_| Error::internal("a negative MPI size"))?,
            comm,
            wait: WAIT,
            thread: std::thread::current().id(),
            traffic: Arc::default(),
            _universe: universe,
        })
    }

    /// How long a process waits at one collective for the others before it gives up with
    /// an error (60 s unless set).
    pub fn with_wait(mut self, wait: Duration) -> MpiAxis {
        self.wait = wait;
        self
    }

    /// This process's index among the members (its MPI rank).
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of members (processes).
    pub fn size(&self) -> usize {
        self.size
    }

    /// The axis's name, as the collectives inside [`spmd`](MpiAxis::spmd) use it.
    pub fn axis_name(&self) -> &str {
        &self.name
    }

    /// This process's rows of `n` rows split into contiguous blocks, in rank order, the
    /// first `n % size` processes taking one more: the usual sharding of a batch.
    pub fn rows(&self, n: usize) -> Range<usize> {
        let (q, r) = (n / self.size, n % self.size);
        let start = self.rank * q + self.rank.min(r);
        start..start + q + usize::from(self.rank < r)
    }

    /// `f` run by this process as member [`rank`](MpiAxis::rank) of the axis, on its own
    /// `x` (its shard, not stacked): traced for `x`'s shapes with the axis bound, compiled,
    /// and run with the collectives over the axis exchanged between the processes. Every
    /// process must call it with the same function and shapes (the collectives check the
    /// shapes they exchange). Called outside any transformation, on the thread that made
    /// the axis. [`MpiAxis::jit`] keeps the compiled program for the next call.
    #[track_caller]
    pub fn spmd<I: Tree, O: Tree>(&self, f: impl FnOnce(I) -> O, x: &I) -> Result<O> {
        let loc = SourceLoc::caller();
        self.run(loc, x, |def, avals| {
            let traced = with_axis(&self.name, self.size, || trace_tree(f, def, avals))?;
            Ok(Arc::new(Compiled {
                plan: Plan::from_checked(&traced.program),
                out_def: traced.out_def,
            }))
        })
    }

    /// `f` compiled once per input signature for runs on this axis, as [`spmd`] runs it:
    /// a training loop traces its step once, not at every call.
    ///
    /// [`spmd`]: MpiAxis::spmd
    pub fn jit<I: Tree, O: Tree, F: Fn(I) -> O>(&self, f: F) -> MpiJit<'_, I, O, F> {
        MpiJit {
            axis: self,
            f,
            cache: RefCell::new(HashMap::new()),
            _types: PhantomData,
        }
    }

    /// Checks where it is called, compiles through `compile` (inside the run, so a failure
    /// to trace reaches the other processes), and runs as this process's member.
    fn run<I: Tree, O: Tree>(
        &self,
        loc: SourceLoc,
        x: &I,
        compile: impl FnOnce(&TreeDef, &[Aval]) -> Result<Arc<Compiled>>,
    ) -> Result<O> {
        let op = "MpiAxis::spmd";
        if is_tracing() {
            return Err(Error::input(
                op,
                "an MPI run cannot be traced: call it outside jit, grad, vmap and the other \
                 transformations (they can run inside it)",
            )
            .with_loc(loc));
        }
        if std::thread::current().id() != self.thread {
            return Err(Error::input(
                op,
                "call it on the thread that made the MpiAxis (MPI is initialized for one \
                 thread)",
            )
            .with_loc(loc));
        }
        if let Some(e) = self.traffic.broken.lock().ok().and_then(|b| b.clone()) {
            return Err(Error::input(
                op,
                format!(
                    "a collective on this axis timed out earlier ({e}); a late process could \
                     still answer it, so the axis cannot run again: end the job (`abort`)"
                ),
            )
            .with_loc(loc));
        }
        let comm = Arc::new(MpiComm::new(
            self.comm.as_raw(),
            self.size,
            self.wait,
            self.thread,
            self.traffic.clone(),
        ));
        let run = || {
            let (leaves, def) = flatten(x);
            let avals = leaf_avals(&leaves)?;
            let compiled = compile(&def, &avals)?;
            let arrays = leaves
                .iter()
                .map(|t| t.array())
                .collect::<Result<Vec<_>>>()?;
            let outs = compiled.plan.run(arrays)?;
            unflatten(
                &compiled.out_def,
                outs.into_iter().map(Tensor::new).collect(),
            )
        };
        as_member(comm, self.rank, &self.name, run).map_err(|e| e.with_loc(loc))
    }

    /// What this process's collectives have moved so far.
    pub fn traffic(&self) -> MpiTraffic {
        let t = &self.traffic;
        MpiTraffic {
            collectives: t.collectives.load(Relaxed),
            rounds: t.rounds.load(Relaxed),
            bytes_sent: t.bytes_sent.load(Relaxed),
            bytes_received: t.bytes_received.load(Relaxed),
        }
    }

    /// Ends every process of the job at once with `code` (`MPI_Abort`): what a process does
    /// when a run failed and it cannot go on.
    pub fn abort(&self, code: i32) -> ! {
        self.comm.abort(code)
    }
}

/// An input signature: tree structure, shapes and dtypes.
type Signature = (TreeDef, Vec<Aval>);

/// A traced program and the tree of its outputs.
struct Compiled {
    plan: Plan,
    out_def: TreeDef,
}

/// A function compiled for runs on an MPI axis. See [`MpiAxis::jit`].
pub struct MpiJit<'a, I, O, F> {
    axis: &'a MpiAxis,
    f: F,
    cache: RefCell<HashMap<Signature, Arc<Compiled>>>,
    _types: PhantomData<fn(I) -> O>,
}

impl<I: Tree, O: Tree, F: Fn(I) -> O> MpiJit<'_, I, O, F> {
    /// Runs `f` on this process's `x` as [`MpiAxis::spmd`] does, compiling it first if
    /// `x`'s signature (tree, shapes, dtypes) is new.
    #[track_caller]
    pub fn call(&self, x: &I) -> Result<O> {
        let loc = SourceLoc::caller();
        let axis = self.axis;
        axis.run(loc, x, |def, avals| {
            let key = (def.clone(), avals.to_vec());
            if let Some(c) = self.cache.borrow().get(&key) {
                return Ok(c.clone());
            }
            let traced = with_axis(&axis.name, axis.size, || trace_tree(&self.f, def, avals))?;
            let c = Arc::new(Compiled {
                plan: Plan::from_checked(&traced.program),
                out_def: traced.out_def,
            });
            self.cache.borrow_mut().insert(key, c.clone());
            Ok(c)
        })
    }

    /// How many signatures have been compiled.
    pub fn cache_size(&self) -> usize {
        self.cache.borrow().len()
    }
}
