//! Passes: programs to programs, one module per transformation.
//!
//! Each pass is an interpreter over a program plus one exhaustive `match` of per-primitive
//! rules with no wildcard arm, so a new primitive makes the compiler ask each pass for its
//! rule: forward mode (`jvp`), the split into primal work and a linear program
//! (`partial_eval`), the linearity checker (`linearity`), transposition (`transpose`),
//! batching (`vmap`; control flow in `vmap_control`, the batch-dimension bookkeeping both
//! share in `vmap_dims`), and the optimizer that compilation runs (`optimize`). Passes use the
//! IR and the tracing machinery (their rules bind through `Emit`), never the user API.

pub(crate) mod jvp;
pub(crate) mod linearity;
pub(crate) mod optimize;
pub(crate) mod partial_eval;
pub(crate) mod transpose;
pub(crate) mod vmap;
pub(crate) mod vmap_control;
pub(crate) mod vmap_dims;

pub(crate) use self::jvp::*;
pub(crate) use self::linearity::*;
pub(crate) use self::optimize::*;
pub(crate) use self::partial_eval::*;
pub(crate) use self::transpose::*;
pub(crate) use self::vmap::*;
