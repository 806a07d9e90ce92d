//! # ferrax
//!
//! Composable transformations of numerical array programs, in the spirit of JAX.
//!
//! The pipeline (see `ARCHITECTURE.md`), one folder per stage:
//!
//! ```text
//! Rust closure over Tensors --trace--> Program --passes--> Program(s) --backend--> Arrays
//! ```
//!
//! * `ir`: the IR — dtypes and avals, host arrays ([`Array`]), the closed set of
//!   [`Primitive`]s and their shape rules, typed SSA [`Program`]s, their text form, [`Error`].
//! * `trace`: [`Tensor`], the trace stack that records closures, trees ([`Tree`]).
//! * `surface`: the numpy-like operations on tensors, composed from primitives.
//! * `passes`: programs to programs — jvp, partial evaluation, linearity, transpose, vmap,
//!   optimize.
//! * `api`: what users call — [`make_jaxpr`], [`jvp()`], [`jacfwd`], [`linearize()`] and the
//!   first-class [`LinearMap`], [`vjp`], [`grad`], [`jacrev`], [`hessian`], [`hvp`],
//!   [`vmap()`], [`gauss_newton`], [`jit()`].
//! * `backend`: the reference evaluator ([`eval_primitive`], [`Program::eval`]) and the CPU
//!   backend's compiled [`Plan`]s.
//!
//! Only the API is public: the modules are private and everything a user needs is
//! re-exported here.
//!
//! Every public entry point returns [`Result`]; a user mistake inside a traced closure comes
//! back as an [`Error`] naming the operation, the shapes and the user's source line.
//!
//! ```
//! use ferrax::{make_jaxpr, Array, Tensor};
//! fn f(x: Tensor) -> Tensor {
//!     3.0 * x.sin() + (&x / 2.0).cos()
//! }
//! let y = f(Tensor::scalar(2.0f64)).item().unwrap();
//! assert!((y - (3.0 * 2f64.sin() + 1f64.cos())).abs() < 1e-15);
//! let program = make_jaxpr(f, &Tensor::scalar(2.0f64)).unwrap();
//! let out = program.eval(&[Array::scalar(2.0f64)]).unwrap();
//! assert_eq!(out[0].item().unwrap().to_f64(), y);
//! ```

#![warn(missing_docs)]

mod api;
mod backend;
mod ir;
mod passes;
mod surface;
mod trace;

pub use api::{
    checkpoint, checkpoint_name, cond, custom_jvp, custom_vjp, custom_vjp_linear, fori_loop, scan,
    scan_with, switch, while_loop, while_loop_with, ScanOptions, WhileOptions,
};
pub use api::{
    gauss_newton, gauss_newton_with_loss, grad, grad_program, hessian, hvp, jacfwd, jacrev, jit,
    jit_linearize, jvp, linear_map, linear_transpose, linearize, linearize_program, make_jaxpr,
    named_map, run_compiled, stage, value_and_grad, value_and_grad_with, vjp, vjp_program, vmap,
    vmap_axes, GaussNewton, Jit, JitLinearize, LinearMap, VmapAxes,
};
pub use api::{
    grad_argnums, grad_fn, grad_with_aux, hessian_argnums, hessian_fn, hessian_tree,
    hessian_with_aux, hvp_argnums, hvp_fn, hvp_tree, hvp_with_aux, jacfwd_argnums, jacfwd_fn,
    jacfwd_tree, jacfwd_with_aux, jacrev_argnums, jacrev_fn, jacrev_tree, jacrev_with_aux,
    jvp_with_aux, linearize_with_aux, ravel_tree, value_and_grad_argnums, value_and_grad_fn,
    value_and_grad_with_aux, vjp_argnums, vjp_with_aux, vmap_axes_fn, vmap_fn, Jacobian, Unravel,
};
#[cfg(feature = "mpi")]
pub use api::{MpiAxis, MpiJit, MpiTraffic};
pub use backend::cpu::{
    profile_start, profile_stop, with_avx2_codegen, without_codegen, without_row_blocks, Plan,
};
pub use backend::reference::while_linear::{
    reset_while_linear_stats, while_linear_stats, WhileLinearStats,
};
pub use backend::reference::{eval_counts, eval_primitive, reset_eval_counts};
pub use ferrax_derive::Tree;
pub use ir::array::{Array, Data, Element};
pub use ir::aval::Aval;
pub use ir::control::ScanShape;
pub use ir::dtype::{DType, Scalar};
pub use ir::error::{Error, Result, SourceLoc};
pub use ir::indexing::{IndexMode, ScatterCombine};
pub use ir::param::Param;
pub use ir::primitive::{Arity, Closed, Primitive, PRIMITIVE_NAMES};
pub use ir::print::PROGRAM_TEXT;
pub use ir::program::{Atom, Equation, Program, Var};
pub use ir::remat::RematPolicy;
pub use passes::jvp::jvp_program;
pub use passes::linearity::{check_linear, Linearity};
pub use passes::optimize::optimize;
pub use passes::partial_eval::{partial_eval, ResidualSource, Split};
pub use passes::transpose::transpose_program;
pub use passes::vmap::vmap_program;
pub use surface::collective::{
    all_gather, all_to_all, axis_index, pmax, pmean, pmin, ppermute, psum, psum_scatter,
};
pub use surface::random;
pub use surface::{where_, At, Ellipsis, NewAxis, Operand, SliceItem};
pub use trace::stack::is_tracing;
pub use trace::tensor::Tensor;
pub use trace::tree::{
    flatten, tree_leaves, tree_map, tree_structure, tree_zip_with, unflatten, StaticData, Tree,
    TreeDef, TreeKey,
};
