//! The IR: what a program is, with no tracing and no transformations.
//!
//! Every other folder reads this one, and it reads nothing else. In pipeline order:
//! element types ([`dtype`]) and abstract values ([`aval`]), host arrays ([`array`]; seeded
//! random ones in [`random`]), the closed set of primitives ([`primitive`]) and their shape
//! rules ([`shape_rules`]; those of control flow in [`control`], of custom derivative rules
//! in [`custom`], of collectives over named axes in [`collective`]), typed SSA programs
//! ([`program`]), the environment every interpreter keeps ([`env`]), their text form
//! ([`print`], [`parse`]), and the one error type ([`error`]).

pub(crate) mod array;
pub(crate) mod aval;
pub(crate) mod collective;
pub(crate) mod control;
pub(crate) mod custom;
pub(crate) mod dependence;
pub(crate) mod dtype;
pub(crate) mod env;
pub(crate) mod error;
pub(crate) mod indexing;
pub(crate) mod linalg;
pub(crate) mod param;
pub(crate) mod parse;
pub(crate) mod primitive;
pub(crate) mod print;
pub(crate) mod program;
pub(crate) mod random;
pub(crate) mod remat;
pub(crate) mod shape_rules;

pub(crate) use self::array::*;
pub(crate) use self::aval::*;
pub(crate) use self::control::ScanShape;
pub(crate) use self::dtype::*;
pub(crate) use self::env::Env;
pub(crate) use self::error::*;
pub(crate) use self::indexing::{clamp_start, IndexMode, ScatterCombine};
pub(crate) use self::primitive::*;
pub(crate) use self::program::*;
pub(crate) use self::remat::{is_checkpoint_name, RematPolicy};
