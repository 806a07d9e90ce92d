//! # ferrax
//!
//! Composable transformations of numerical array programs, in the spirit of JAX.
//!
//! The pipeline (see `ARCHITECTURE.md`):
//!
//! ```text
//! Rust closure over Tensors --trace--> Program --passes--> Program(s) --eval--> Arrays
//! ```
//!
//! * [`array`]: host n-d arrays ([`Array`]) and their dtypes.
//! * [`primitive`]: the closed set of primitives and their shape/dtype rules.
//! * [`tensor`]: [`Tensor`], what user closures see, and the numpy-like surface.
//! * [`trace`]: recording closures into [`Program`]s ([`make_jaxpr`]), nested tracing.
//! * [`program`]: the typed SSA IR, its checker and dead-code elimination.
//! * [`text`]: the printed form of programs and its parser.
//! * [`eval`]: the reference evaluator, the definition of every primitive.
//! * [`jvp`]: forward mode ([`jvp()`], [`jacfwd`]) and the jvp pass.
//! * [`partial_eval`]: splitting a jvp program into primal work and a linear program.
//! * [`linearity`]: the checker of typed linearity.
//! * [`linearize`]: [`linearize()`] and the first-class [`LinearMap`].
//! * [`transpose`]: the transpose pass over linear programs.
//! * [`reverse`]: reverse mode built from the passes ([`vjp`], [`grad`], [`jacrev`],
//!   [`hessian`], [`hvp`]).
//! * [`gauss_newton`]: Gauss-Newton operators from one linearization.
//! * [`vmap`]: the batching pass and [`vmap()`].
//! * [`jit`]: compilation ([`jit()`]): optimization passes, execution plans, fast kernels
//!   ([`kernels`]).
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

pub mod array;
mod buffers;
pub mod dtype;
mod emit;
pub mod error;
pub mod eval;
mod fusion;
pub mod gauss_newton;
pub mod jit;
pub mod jvp;
pub mod kernels;
pub mod linearity;
pub mod linearize;
pub mod partial_eval;
pub mod primitive;
pub mod program;
pub mod reverse;
pub mod tensor;
pub mod text;
pub mod trace;
pub mod transpose;
pub mod tree;
pub mod vmap;

pub use array::{Array, Data, Element};
pub use dtype::{Aval, DType, Scalar};
pub use error::{Error, Result, SourceLoc};
pub use eval::{eval_counts, eval_primitive, reset_eval_counts};
pub use gauss_newton::{gauss_newton, gauss_newton_with_loss, GaussNewton};
pub use jit::{jit, optimize, run_compiled, Jit, Plan};
pub use jvp::{jacfwd, jvp, jvp_program};
pub use linearize::{
    jit_linearize, linear_map, linear_transpose, linearize, linearize_program, JitLinearize,
    LinearMap,
};
pub use primitive::{Arity, Param, Primitive, PRIMITIVE_NAMES};
pub use program::{Atom, Equation, Program, Var};
pub use reverse::{
    grad, grad_program, hessian, hvp, jacrev, value_and_grad, value_and_grad_with, vjp, vjp_program,
};
pub use tensor::{where_, Operand, Tensor};
pub use text::PROGRAM_TEXT;
pub use trace::{is_tracing, make_jaxpr, stage};
pub use transpose::transpose_program;
pub use tree::{flatten, unflatten, Tree, TreeDef};
pub use vmap::{vmap, vmap_axes, vmap_program, VmapAxes};
