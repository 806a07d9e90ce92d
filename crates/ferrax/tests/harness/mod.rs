//! The test harness every transformation plugs into.
//!
//! * [`op_table`] (`op_table/`, one file per family): one row per primitive (several for
//!   some): example operand avals for a dtype, the dtypes it accepts, an input domain,
//!   tolerances, known values (independent reference numbers, from C's libm via Python or
//!   worked by hand), operand avals its shape rule must reject, and how the random-program
//!   generator may use it.
//! * [`arb_program`] (`programs.rs`): a proptest strategy for random well-typed programs
//!   built from the table's rows, with shrinking (a program is a recipe of small choice
//!   numbers); [`single_eqn_program`] for one row.
//! * `numeric.rs`: seeded random arrays ([`random_array`], [`random_args`]), comparisons
//!   to a tolerance ([`close`], [`agree`]) and finite differences ([`richardson`]).
//! * [`Column`] (`columns.rs`): which rows each column of the coverage matrix claims, and the
//!   [`Tally`] with which each per-row test fails naming a claimed row it never checked.
//!
//! A new primitive gets one row in the table and is then covered by every per-row test
//! (known values, shape rule, text, jvp, linearize, transpose, vmap, jit) and by the random
//! programs.

// Each test binary uses a different part of the harness.
#![allow(dead_code, unused_imports)]

mod columns;
mod numeric;
mod op_table;
mod programs;

pub use columns::*;
pub use numeric::*;
pub use op_table::op_table;
pub use programs::*;

use ferrax::{Atom, Aval, DType, Primitive};

/// The number of proptest cases: `default`, or `PROPTEST_CASES` when set (for long stress
/// runs, e.g. `PROPTEST_CASES=5000 cargo test --release`).
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Where random inputs for a row should come from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Domain {
    /// Any real number (standard normal samples).
    Real,
    /// Strictly positive numbers (log, sqrt, pow base).
    Positive,
    /// Inside (-1, 1).
    Unit,
    /// Away from the points where the function jumps (floor, round, sign, comparisons).
    Real2,
}

/// Builds one equation's primitive and operands from the program so far, or gives up.
pub type GenFn = fn(&mut Pick) -> Option<(Primitive, Vec<Atom>)>;

/// How the random-program generator may use a row.
#[derive(Clone, Copy)]
pub enum Gen {
    /// Not used by the generator.
    Skip,
    /// Elementwise on one float variable.
    Unary,
    /// Elementwise on two float variables of equal aval.
    Binary,
    /// A row-specific builder.
    Custom(GenFn),
}

/// One known value: operand values (converted to the operands' dtypes) and the expected
/// output values (compared with the row's tolerance; exactly for integers and bools).
pub struct Known {
    pub inputs: Vec<Vec<f64>>,
    pub expected: Vec<f64>,
}

/// One row of the op table: a primitive with example operands and what to check on them.
pub struct OpRow {
    /// Test name of the row (the primitive's name, or name_variant).
    pub name: &'static str,
    pub prim: Primitive,
    /// Example operand avals for a dtype.
    pub avals: fn(DType) -> Vec<Aval>,
    /// Dtypes the primitive accepts for this example (the first is the main one).
    pub dtypes: &'static [DType],
    pub domain: Domain,
    /// Relative tolerance for known values in (f32, f64).
    pub tol: (f64, f64),
    pub known: Vec<Known>,
    /// Operand avals that the shape rule must reject, with a fragment of the message.
    pub rejects: Vec<(Vec<Aval>, &'static str)>,
    pub gen: Gen,
}

/// An aval of a shape and dtype.
pub fn av(shape: &[usize], d: DType) -> Aval {
    Aval::new(shape.to_vec(), d)
}
