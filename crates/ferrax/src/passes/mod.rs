//! Passes: programs to programs, one module per transformation.
//!
//! Each pass is an interpreter over a program plus one exhaustive `match` of per-primitive
//! rules with no wildcard arm, so a new primitive makes the compiler ask each pass for its
//! rule: forward mode (`jvp`), the split into primal work and a linear program
//! (`partial_eval`), the linearity checker (`linearity`), transposition (`transpose`),
//! batching (`vmap`), and the optimizer that compilation runs (`optimize`). Passes use the IR
//! and the tracing machinery (their rules bind through `Emit`), never the user API.
//!
//! A pass that control flow reaches is a folder: its interpreter in `mod.rs` and the rules of
//! `cond` and `scan` in `control.rs`, which transform sub-programs by calling the pass
//! again (the one recursion between files a pass has). `hoist` moves loop-invariant work out
//! of loops for partial evaluation and the optimizer.

pub(crate) mod hoist;
pub(crate) mod jvp;
pub(crate) mod linearity;
pub(crate) mod optimize;
pub(crate) mod partial_eval;
pub(crate) mod transpose;
pub(crate) mod vmap;

pub(crate) use self::jvp::*;
pub(crate) use self::linearity::*;
pub(crate) use self::optimize::*;
pub(crate) use self::partial_eval::*;
pub(crate) use self::transpose::*;
pub(crate) use self::vmap::*;
