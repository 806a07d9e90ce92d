//! Backends: where programs become arrays.
//!
//! `reference` is the definition of every primitive in plain code and the oracle every fast
//! path is tested against; `cpu` compiles programs into plans with fast kernels.

pub(crate) mod cpu;
pub(crate) mod reference;

pub(crate) use self::cpu::Plan;
pub(crate) use self::reference::{count, max_nan, min_nan};
pub(crate) use self::reference::{eval_equation, eval_primitive};
