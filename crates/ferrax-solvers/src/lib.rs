//! # ferrax-solvers
//!
//! Solvers built on ferrax's transformations, and the reference problems that test them.
//!
//! * [`cg`]: matrix-free conjugate gradients (plain and Steihaug-truncated) on any
//!   [`LinearOperator`]: a linear map, a Gauss-Newton operator, a closure.
//! * [`least_squares`](mod@least_squares): Levenberg-Marquardt (dense Jacobian by jacfwd or
//!   jacrev, SVD through faer) and matrix-free Gauss-Newton-CG (one linearization per outer
//!   step).
//! * [`minimize`](mod@minimize): Newton-CG on Hessian-vector products and L-BFGS, with line
//!   searches.
//! * [`nist`]: the NIST StRD nonlinear regression problems: parser, the 27 models, runs and
//!   the report table; [`mgh`]: twelve Moré-Garbow-Hillstrom problems; [`minpack2`]: the
//!   MINPACK-2 data-fitting problems of SciPy's benchmark suite.
//! * [`tree`]: the least-squares and minimization solvers on any tree of parameters (a
//!   struct of layers, a tuple), raveled for the vector algorithms.
//! * [`model`], [`table`], [`fit`](mod@fit): a formula language (`y ~ a * exp(-b * x)`),
//!   tables of data from CSV or whitespace-separated text, and the fit of one to the other
//!   with standard errors, confidence intervals and residual statistics (`ferrax fit`).
//! * [`bundle`]: a synthetic bundle-adjustment problem solved by Gauss-Newton-CG with a
//!   block-Jacobi preconditioner, the Jacobian never formed.
//! * [`ode`]: RK4 integration as one `scan`, and a damped oscillator whose parameters are
//!   fitted through it.

#![warn(missing_docs)]

pub mod bundle;
pub mod cg;
pub mod error;
pub mod fit;
pub mod least_squares;
pub mod mgh;
pub mod minimize;
pub mod minpack2;
pub mod mlp;
pub mod model;
pub mod nist;
pub mod ode;
pub mod operator;
pub mod robust;
pub mod table;
pub mod tree;

pub use cg::{
    conjugate_gradient, steihaug, CgOptions, CgResult, CgTermination, ConjugateGradient,
    SteihaugResult,
};
pub use error::{Result, SolverError};
pub use fit::{fit_model, Estimate, ModelFit};
pub use least_squares::{
    least_squares, IterationInfo, JacobianMode, LsqOptions, LsqResult, Method, Termination,
};
pub use minimize::{minimize, MinMethod, MinOptions, MinResult, MinTermination};
pub use model::{BoundModel, Model};
pub use operator::{FnOperator, LinearOperator, TensorOperator};
pub use robust::{Bound, Loss};
pub use table::{parse_table, read_table, Table};
pub use tree::{least_squares_tree, minimize_tree};

/// The guide `docs/guide.md` (from `linearize` to a Gauss-Newton fit): included here so
/// that its code blocks run as this crate's doctests and cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/guide.md")]
pub struct Guide;
