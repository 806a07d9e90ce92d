//! The test harness every transformation plugs into.
//!
//! * [`op_table`] (`op_table/`, one file per family): one row per primitive (several for
//!   some): example operand avals for a dtype, the dtypes it accepts, an input domain,
//!   tolerances, known values (independent reference numbers, from C's libm via Python or
//!   worked by hand), operand avals its shape rule must reject, and how the random-program
//!   generator may use it. A row may give a primitive per dtype (`prim_at`: control flow's
//!   sub-programs are typed) and static operands (`fixed`: a `cond`'s index, which every
//!   check sets to each listed value in turn). Every check covers every output of a
//!   primitive with several (`cond`, `scan`).
//! * [`arb_program`] (`programs.rs`): a proptest strategy for random well-typed programs
//!   built from the table's rows, with shrinking (a program is a recipe of small choice
//!   numbers); they nest control flow (a recipe's control steps put a `scan` or `cond`,
//!   whose sub-programs the same generators build, among its steps); [`single_eqn_program`]
//!   for one row.
//! * `numeric.rs`: seeded random arrays ([`random_array`], [`random_args`]), comparisons
//!   to a tolerance ([`close`], [`agree`]) and finite differences ([`richardson`], and
//!   [`richardson_converged`] where a random program may curve too sharply for them).
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

use ferrax::{Array, Atom, Aval, DType, Primitive, Program};

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
    /// Above 1 (acosh).
    AboveOne,
    /// Matrices in the last two axes that are diagonally dominant with a spread diagonal:
    /// positive definite (by their lower triangle), well conditioned, with eigenvalues
    /// apart.
    Dominant,
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
    /// The primitive for operands of a dtype, where its parameters depend on it (control
    /// flow's sub-programs are typed); `None` when `prim` serves every dtype. `prim` is the
    /// primitive for the main dtype.
    pub prim_at: Option<fn(DType) -> Primitive>,
    /// Static operands (a `cond` index): the operand's position and the values every check
    /// exercises in turn, in place of random samples; they are never differentiated.
    pub fixed: &'static [(usize, &'static [f64])],
    pub gen: Gen,
}

impl OpRow {
    /// The row's primitive for operands of dtype `d`.
    pub fn prim_for(&self, d: DType) -> Primitive {
        match self.prim_at {
            Some(f) => f(d),
            None => self.prim.clone(),
        }
    }

    /// The row's one-equation program for operands of dtype `d`.
    pub fn program(&self, d: DType) -> Program {
        single_eqn_program(&self.prim_for(d), &(self.avals)(d))
            .unwrap_or_else(|e| panic!("{} on {d}: {e}", self.name))
    }

    /// How many samples the static operands need so every listed value is used (1 without
    /// static operands).
    pub fn alternatives(&self) -> usize {
        self.fixed.iter().map(|(_, v)| v.len()).max().unwrap_or(1)
    }

    /// `args` with every static operand replaced by the values of alternative `alt`: an
    /// operand's element `j` takes the listed value `alt + j` (cyclically), so an operand
    /// batched for vmap sees every value across its examples.
    pub fn fix_args(&self, args: &mut [Array], alt: usize) {
        for &(i, vals) in self.fixed {
            let a = &args[i];
            let v: Vec<f64> = (0..a.size())
                .map(|j| vals[(alt + j) % vals.len()])
                .collect();
            args[i] = array_from_f64(&v, &a.aval());
        }
    }

    /// Sample operands for `avals` (this row's, possibly batched): random from the row's
    /// domain, static operands from alternative `alt`.
    pub fn args(&self, avals: &[Aval], seed: u64, alt: usize) -> Vec<Array> {
        let mut args = random_args(avals, seed, self.domain);
        self.fix_args(&mut args, alt);
        args
    }

    /// Whether operand `i` is static.
    pub fn is_fixed(&self, i: usize) -> bool {
        self.fixed.iter().any(|&(j, _)| j == i)
    }

    /// `p` (this row's program) with its static float operands made constants of the
    /// values in `args`, and the remaining arguments: what linearization checks use, since
    /// static operands are not differentiated (a `while_linear`'s residuals: linearizing
    /// it with respect to them is reverse over reverse, which is not built). Integer static
    /// operands (an index, a counter) have no tangent and stay inputs.
    pub fn without_static_floats(&self, p: &Program, args: &[Array]) -> (Program, Vec<Array>) {
        let bake = |i: usize| self.is_fixed(i) && args[i].dtype().is_float();
        let mut q = p.clone();
        let mut rest = vec![];
        q.inputs.clear();
        for (i, (v, a)) in p.inputs.iter().zip(args).enumerate() {
            if bake(i) {
                q.consts.push((*v, a.clone()));
            } else {
                q.inputs.push(*v);
                rest.push(a.clone());
            }
        }
        (q, rest)
    }
}

/// Evaluates one application of a primitive: every output (through the program evaluator
/// for control flow, which has several).
pub fn eval_prim(prim: &Primitive, args: &[&Array]) -> ferrax::Result<Vec<Array>> {
    if prim.subprograms().is_empty() {
        return Ok(vec![ferrax::eval_primitive(prim, args)?]);
    }
    let avals: Vec<Aval> = args.iter().map(|a| a.aval()).collect();
    let p = single_eqn_program(prim, &avals)?;
    let owned: Vec<Array> = args.iter().map(|a| (*a).clone()).collect();
    p.eval(&owned)
}

/// An aval of a shape and dtype.
pub fn av(shape: &[usize], d: DType) -> Aval {
    Aval::new(shape.to_vec(), d)
}
