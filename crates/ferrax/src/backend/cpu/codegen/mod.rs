//! Code generation for fused elementwise groups: one machine-code loop per group, its
//! intermediates in vector registers.
//!
//! Sits under `fuse`: when a plan makes a [`Group`], [`compile`] tries to emit an x86-64
//! loop for it at the widest width the CPU has, AVX-512 or AVX2 (`x86` schedules the steps,
//! `isa` encodes them; assembled with `iced-x86`, placed in executable memory with
//! `memmap2`). The loop reads each input once per vector, runs every step in registers,
//! stores only the kept values and folds the reductions into accumulators, where the
//! interpreter in `fuse` runs each step over a 2048-element chunk and stores it (on this
//! project's machine the interpreter is bound by those stores: about three times the
//! loop's time on `while_newton`'s Newton step). A group gets code only when every step it
//! needs is one the loop computes with the interpreter's bits: `+ - * /`, negation,
//! absolute value, square root and its reciprocal (one IEEE operation each, operands in the
//! same order), `max`/`min` with their NaN rule (a compare-select, then the NaNs blended
//! back), f32 `tanh` (the interpreter's `e / (e + 2)` with its fused multiply-adds, operation
//! by operation), broadcasts (a scalar stays in a register; a bias tiled along trailing axes
//! or repeated along leading ones is generated per chunk, as the interpreter does, and
//! streamed), and sums, maxima and minima of all elements (the accumulators are the
//! interpreter's sixteen f32 or eight f64 lanes). Which NaN comes out of an operation on two
//! NaNs is not specified, as in Rust (LLVM may swap the operands of `+` and `*`, and does in
//! the interpreter's scalar loops): every other bit is. Anything else, a CPU without AVX2
//! and FMA, or another architecture: no code, and the interpreter runs the group. A chunk whose
//! length is not a whole number of vectors, or whose extremum needs the serial fold (a NaN,
//! or a zero whose sign depends on the order), is run by the interpreter too, with the same
//! results.

use std::sync::Arc;

use crate::backend::cpu::fuse::group::{Group, GroupOp, Src};
use crate::backend::cpu::math::Unary;
use crate::ir::DType;

#[cfg(target_arch = "x86_64")]
mod isa;
#[cfg(target_arch = "x86_64")]
mod x86;

/// The machine code of one group, and how to call it.
pub(crate) struct Compiled {
    /// Keeps the code mapped while `entry` may be called.
    _code: memmap2::Mmap,
    entry: Entry,
    /// The constants the code reads (broadcast from memory), its sixth argument.
    consts: Box<[u64]>,
    /// Elements per vector: the chunk lengths the code handles are multiples of it.
    pub lanes: usize,
    /// What the code streams, one pointer each, in order: an input's chunk, or a chunk of
    /// a broadcast generated per chunk (`Src::Tiled` with a period above one, or
    /// `Src::Repeated`).
    pub streams: Vec<Stream>,
    /// The inputs the code reads one element of (broadcast scalars), pointers after the
    /// streams'.
    pub scalars: Vec<usize>,
    /// The vector registers' width in bits: 512 (AVX-512) or 256 (AVX2).
    pub bits: u32,
}

/// A sequence of elements the code reads vector by vector.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Stream {
    /// A group input, from the chunk's start.
    Input(usize),
    /// A broadcast operand, generated for the chunk into a scratch buffer first.
    Tile(Src),
}

/// `entry(pointers, outputs, n, accumulators, nan_flags, constants)`: `pointers` holds one
/// pointer per stream (at the chunk's first element) then one per scalar, `outputs` one per
/// kept value (at its chunk); `n` elements, a positive multiple of `lanes`; reduction `r`
/// leaves its lanes at `accumulators + 64 r` and, for extrema, a nonzero `nan_flags[r]`
/// when a value was NaN.
type Entry = unsafe extern "sysv64" fn(
    *const *const u8,
    *const *mut u8,
    usize,
    *mut u8,
    *mut u32,
    *const u64,
);

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Compiled({} lanes, {}-bit, {:?})",
            self.lanes, self.bits, self.streams
        )
    }
}

/// Whether the environment lets plans make and run generated code: unless it says
/// `FERRAX_CODEGEN=0` (or `off`), read once.
fn allowed() -> bool {
    static ENV: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENV.get_or_init(|| {
        !matches!(
            std::env::var("FERRAX_CODEGEN").as_deref(),
            Ok("0") | Ok("off")
        )
    })
}

/// Whether plans may run generated code now: [`allowed`], and this thread is not inside
/// [`with_interpreter`].
pub(crate) fn enabled() -> bool {
    allowed() && !INTERPRET.with(|c| c.get())
}

thread_local! {
    static INTERPRET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The widest vectors the CPU offers the generated loops: AVX-512F, else AVX2, with FMA
/// (also what [`with_avx2_codegen`] asks for; the f32 tanh's loop fuses multiply-adds as
/// the interpreter does), else none.
#[cfg(target_arch = "x86_64")]
fn width() -> Option<isa::Width> {
    if std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("fma")
        && !AVX2_ONLY.with(|c| c.get())
    {
        Some(isa::Width::Zmm)
    } else if crate::backend::cpu::math::has_avx2() {
        Some(isa::Width::Ymm)
    } else {
        None
    }
}

thread_local! {
    static AVX2_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with the plans it makes (on this thread) generating AVX2 code where the CPU has
/// AVX-512 too: the route a CPU without AVX-512 takes, so that it can be tested and measured
/// on any machine that has AVX2. Where the CPU lacks AVX2 or FMA, plans get no code either
/// way.
pub fn with_avx2_codegen<R>(f: impl FnOnce() -> R) -> R {
    with_flag(&AVX2_ONLY, f)
}

/// Runs `f` with the thread's `flag` set, then puts it back as it was, even when `f`
/// panics (also `row_blocks`' switch).
pub(crate) fn with_flag<R>(
    flag: &'static std::thread::LocalKey<std::cell::Cell<bool>>,
    f: impl FnOnce() -> R,
) -> R {
    struct Restore(&'static std::thread::LocalKey<std::cell::Cell<bool>>, bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            self.0.with(|c| c.set(self.1));
        }
    }
    let _restore = Restore(flag, flag.with(|c| c.replace(true)));
    f()
}

/// Runs `f` with generated code turned off on this thread: plans run from `f` (on this
/// thread) execute their fused groups through the interpreter. The oracle the generated
/// code is tested against, and a way to measure what it gains.
pub fn with_interpreter<R>(f: impl FnOnce() -> R) -> R {
    with_flag(&INTERPRET, f)
}

impl Compiled {
    /// Whether the code runs a group of `size` elements whole, in one call with no chunk
    /// bookkeeping: at most one chunk (`chunk`), a whole number of vectors, no generated
    /// broadcast to fill first.
    pub fn runs_whole(&self, size: usize, chunk: usize) -> bool {
        size > 0
            && size <= chunk
            && size.is_multiple_of(self.lanes)
            && !self.streams.iter().any(|s| matches!(s, Stream::Tile(_)))
    }

    /// Runs the code over one chunk of `n` elements (a positive multiple of `lanes`).
    ///
    /// # Safety
    /// `pointers` has one pointer per stream, each valid for reading `n` elements of the
    /// group's dtype, then one per scalar, valid for reading one; `outputs` one per kept
    /// value, valid for writing `n`; `acc` 64 bytes per reduction; `nan` one `u32` per
    /// reduction.
    pub unsafe fn call(
        &self,
        pointers: &[*const u8],
        outputs: &[*mut u8],
        n: usize,
        acc: &mut [u8],
        nan: &mut [u32],
    ) {
        debug_assert!(n > 0 && n.is_multiple_of(self.lanes));
        debug_assert_eq!(pointers.len(), self.streams.len() + self.scalars.len());
        // SAFETY: the caller's contract; the code reads and writes only through these
        unsafe {
            (self.entry)(
                pointers.as_ptr(),
                outputs.as_ptr(),
                n,
                acc.as_mut_ptr(),
                nan.as_mut_ptr(),
                self.consts.as_ptr(),
            )
        }
    }
}

/// What the emitter returns: the code, its constants, its streams and its scalars.
type Emitted = (Vec<u8>, Vec<u64>, Vec<Stream>, Vec<usize>);

/// The machine code of `group`, when it has one (see the module's documentation).
pub(crate) fn compile(group: &Group) -> Option<Arc<Compiled>> {
    #[cfg(target_arch = "x86_64")]
    {
        if !allowed() {
            return None;
        }
        let width = width()?;
        let f64s = match group.dtype {
            DType::F32 => false,
            DType::F64 => true,
            _ => return None,
        };
        let (bytes, consts, streams, scalars) = x86::emit(group, f64s, width)?;
        let mut map = memmap2::MmapMut::map_anon(bytes.len()).ok()?;
        map.copy_from_slice(&bytes);
        let code = map.make_exec().ok()?;
        // SAFETY: `code` holds a function assembled for the `Entry` signature (System V
        // arguments, callee-saved registers restored, only instructions of `width`, which
        // `width()` found the CPU has); it stays mapped as long as the `Compiled` that holds
        // it
        let entry: Entry = unsafe { std::mem::transmute::<*const u8, Entry>(code.as_ptr()) };
        Some(Arc::new(Compiled {
            _code: code,
            entry,
            consts: consts.into_boxed_slice(),
            lanes: if f64s { 8 } else { 16 },
            streams,
            scalars,
            bits: 8 * width.bytes() as u32,
        }))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = group;
        None
    }
}

/// Which steps the loop computes: those kept or reduced, and what they read.
fn needed(group: &Group) -> Vec<bool> {
    let mut needed = group.keep.clone();
    for &(_, k) in &group.reduce {
        needed[k] = true;
    }
    for k in (0..group.steps.len()).rev() {
        if needed[k] {
            for s in &group.steps[k].srcs {
                if let Src::Step(j) = s {
                    needed[*j] = true;
                }
            }
        }
    }
    needed
}

/// Whether the loop computes a step of this kind with the interpreter's bits.
fn supported(op: &GroupOp, srcs: &[Src], f64s: bool) -> bool {
    match op {
        GroupOp::Binary(_) => true,
        GroupOp::Unary(Unary::Tanh) => !f64s,
        GroupOp::Unary(u) => matches!(u, Unary::Neg | Unary::Abs | Unary::Sqrt | Unary::Rsqrt),
        GroupOp::Broadcast => matches!(srcs, [Src::Tiled(..) | Src::Repeated(..)]),
    }
}
