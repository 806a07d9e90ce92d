//! The CPU backend: compiled execution plans and their fast kernels.
//!
//! `plan` turns an optimized program into steps (`step`) with slots and last uses and runs
//! them, or (`row_blocks`) runs a program that works row by row block of rows by block of
//! rows; `control` runs `cond` and `scan` through nested plans of their sub-programs; `fuse`
//! groups runs of elementwise steps; `dispatch` decides which kernel runs each step;
//! `matmul`, `row_panels` and `math` are the kernels (strided `gemm`, a vector and a
//! matrix product by one matrix in one pass, vectorized transcendental functions);
//! `buffers` is the pool plans reuse intermediates from; `profile` times steps.

pub(crate) mod buffers;
pub(crate) mod codegen;
pub(crate) mod control;
pub(crate) mod dispatch;
pub(crate) mod fixed_body;
pub(crate) mod float;
pub(crate) mod fuse;
pub(crate) mod math;
pub(crate) mod matmul;
#[cfg(feature = "mpi")]
pub(crate) mod mpi;
pub(crate) mod plan;
pub(crate) mod profile;
pub(crate) mod row_blocks;
pub(crate) mod row_panels;
pub(crate) mod spmd;
pub(crate) mod stack;
pub(crate) mod step;

pub use self::codegen::{with_avx2_codegen, with_interpreter as without_codegen};
pub use self::plan::Plan;
pub use self::profile::{profile_start, profile_stop};
pub use self::row_blocks::without_row_blocks;
