//! The user API: transformations of Rust closures, composed from the passes.
//!
//! Everything here takes and returns trees of tensors and holds no per-primitive rule:
//! staging (`make_jaxpr`, `stage`), forward mode (`jvp`, `jacfwd`), the first-class linear
//! map (`linearize`, `LinearMap`, `linear_map`, `linear_transpose`), reverse mode built from
//! linearize and transpose (`vjp`, `grad`, `jacrev`, `hessian`, `hvp`), vectorization
//! (`vmap`), the same as function values (`grad_fn`, `jacfwd_fn`, `vmap_fn`, ...; `has_aux`
//! forms), custom derivative rules (`custom_jvp`, `custom_vjp`), control flow (`cond`, `switch`, `scan`, `fori_loop`), Gauss-Newton operators,
//! and compilation (`jit`, `jit_linearize`). Modules here
//! may use every layer below; no layer below uses them.

pub(crate) mod custom;
pub(crate) mod forward;
pub(crate) mod functions;
pub(crate) mod gauss_newton;
pub(crate) mod jacobian;
pub(crate) mod jit;
pub(crate) mod lax;
pub(crate) mod linear_map;
#[cfg(feature = "mpi")]
pub(crate) mod mpi;
pub(crate) mod named_map;
pub(crate) mod options;
pub(crate) mod ravel;
pub(crate) mod remat;
pub(crate) mod reverse;
pub(crate) mod staging;
pub(crate) mod vmap;
pub(crate) mod while_loop;
pub(crate) mod while_tape;

pub use self::custom::{custom_jvp, custom_vjp, custom_vjp_linear};
pub use self::forward::*;
pub use self::functions::*;
pub use self::gauss_newton::*;
pub use self::jacobian::{hessian_tree, hvp_tree, jacfwd_tree, jacrev_tree, Jacobian};
pub use self::jit::*;
pub use self::lax::*;
pub use self::linear_map::*;
#[cfg(feature = "mpi")]
pub use self::mpi::{MpiAxis, MpiJit, MpiTraffic};
pub use self::named_map::named_map;
pub use self::options::{
    grad_argnums, hessian_argnums, hessian_with_aux, hvp_argnums, hvp_with_aux, jacfwd_argnums,
    jacfwd_with_aux, jacrev_argnums, jacrev_with_aux, jvp_with_aux, linearize_with_aux,
    value_and_grad_argnums, vjp_argnums, vjp_with_aux,
};
pub use self::ravel::{ravel_tree, Unravel};
pub use self::remat::{checkpoint, checkpoint_name};
pub use self::reverse::*;
pub use self::staging::*;
pub use self::vmap::*;
pub use self::while_loop::{while_loop, while_loop_with, WhileOptions};
