//! Programs: the typed SSA form every transformation reads and writes.
//!
//! Tracing (`trace`) produces a [`Program`]; every pass maps programs to programs; the
//! evaluators (`backend`) run them. A program has constant inputs (arrays captured while
//! tracing), ordinary inputs, a list of equations (one primitive each, one output each) and
//! outputs (variables or scalar literals). Each variable has an aval, is defined exactly once
//! and is used only after its definition; [`Program::check`] verifies exactly that, and every
//! pass is tested to produce programs that pass it. Other `impl Program` blocks live with
//! what they do: the text form in `print` and `parse`, `Program::call` (recording into a
//! trace) in `trace::stack`, `Program::eval` in `backend::reference`.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::ir::array::Array;
use crate::ir::aval::Aval;
use crate::ir::dtype::Scalar;
use crate::ir::error::{Error, Result, SourceLoc};
use crate::ir::primitive::{Arity, Primitive};

/// A variable: an index into its program's table of avals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Var(pub u32);

impl Var {
    /// The position of this variable in its program's table of avals.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// An operand: a variable or an inline scalar literal.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Atom {
    /// A variable of the program.
    Var(Var),
    /// An inline scalar literal.
    Lit(Scalar),
}

/// `outs = prim(inputs...)`, remembering where in the user's source it was traced. Every
/// primitive has one output except the control-flow ones (`cond`, `scan`), which have one
/// per output of their sub-programs.
#[derive(Clone, Debug, PartialEq)]
pub struct Equation {
    /// The primitive applied, with its static parameters.
    pub prim: Primitive,
    /// The operands, in the primitive's order.
    pub inputs: Vec<Atom>,
    /// The variables this equation defines, one per output of the primitive.
    pub outs: Vec<Var>,
    /// The user's source line that produced this equation (not part of the text form).
    pub loc: Option<SourceLoc>,
}

/// A typed SSA program.
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    /// The aval of every variable, indexed by [`Var`].
    pub avals: Vec<Aval>,
    /// Constant inputs with their values (arrays captured while tracing).
    pub consts: Vec<(Var, Array)>,
    /// The ordinary inputs, in the order the program takes its arguments.
    pub inputs: Vec<Var>,
    /// The equations, each using only variables defined before it.
    pub eqns: Vec<Equation>,
    /// The outputs: variables or scalar literals.
    pub outputs: Vec<Atom>,
}

impl Equation {
    /// The output of a single-output equation. `check` guarantees one output for every
    /// primitive without sub-programs; passes route control flow before they ask.
    pub(crate) fn out(&self) -> Var {
        self.outs[0]
    }
}

// The accessors below index the program's variables directly, like slice indexing: on a
// hand-built program that fails `check`, they may panic. Every entry point that transforms,
// compiles or runs a program calls `check` first and returns its error instead.
/// How deeply programs may nest inside each other's equations (a branch in a loop body in a
/// branch ...): the parser and `check` refuse deeper ones, since every pass recurses once per
/// level.
pub(crate) const MAX_NESTING: usize = 64;

impl Program {
    /// The aval of a variable (panics for a variable beyond the program's, as indexing does).
    pub fn aval(&self, v: Var) -> &Aval {
        &self.avals[v.index()]
    }

    /// The aval of an atom (a literal's aval is a scalar of its dtype).
    pub fn atom_aval(&self, a: &Atom) -> Aval {
        match a {
            Atom::Var(v) => self.aval(*v).clone(),
            Atom::Lit(s) => Aval::scalar(s.dtype()),
        }
    }

    /// The avals of the inputs.
    pub fn in_avals(&self) -> Vec<Aval> {
        self.inputs.iter().map(|v| self.aval(*v).clone()).collect()
    }

    /// The avals of the outputs.
    pub fn out_avals(&self) -> Vec<Aval> {
        self.outputs.iter().map(|a| self.atom_aval(a)).collect()
    }

    /// Checks arguments' avals against the program's inputs (their number, then each aval),
    /// for the entry point `op`.
    pub(crate) fn check_args(&self, op: &str, args: &[Aval]) -> Result<()> {
        if args.len() != self.inputs.len() {
            return Err(Error::input(
                op,
                format!(
                    "the program takes {} input(s), {} given",
                    self.inputs.len(),
                    args.len()
                ),
            ));
        }
        for (i, (v, a)) in self.inputs.iter().zip(args).enumerate() {
            if a != self.aval(*v) {
                return Err(Error::input(
                    op,
                    format!("input {i} must be {}, got {a}", self.aval(*v)),
                ));
            }
        }
        Ok(())
    }

    /// Checks that the program is well typed: every variable defined once before use, every
    /// equation's declared output aval equal to what its primitive's rule gives, constants
    /// matching their avals. The error names the equation and what is wrong.
    ///
    /// ```
    /// let p = ferrax::Program::parse("{ lambda ; a:f64[3] . let b:f64[3] = sin a in (b) }").unwrap();
    /// assert!(p.check().is_ok());
    /// ```
    pub fn check(&self) -> Result<()> {
        // every pass recurses once per level of nesting: refuse what the parser refuses
        if self.nesting_exceeds(MAX_NESTING) {
            return Err(Error::check(format!(
                "programs nested more than {MAX_NESTING} deep (branches and loop bodies inside each other)"
            )));
        }
        self.check_nested()
    }

    /// Whether programs nest inside this one's equations more than `limit` deep. Recurses at
    /// most `limit + 1` levels, so it is safe on any program.
    fn nesting_exceeds(&self, limit: usize) -> bool {
        self.eqns.iter().any(|e| {
            e.prim
                .subprograms()
                .into_iter()
                .any(|q| limit == 0 || q.nesting_exceeds(limit - 1))
        })
    }

    /// `check` once the nesting depth is known to be within the limit.
    fn check_nested(&self) -> Result<()> {
        for (i, a) in self.avals.iter().enumerate() {
            a.validate("Program::check")
                .map_err(|e| Error::check(format!("variable {i}: {e}")))?;
        }
        let mut defined = vec![false; self.avals.len()];
        let n_avals = self.avals.len();
        let define = |defined: &mut Vec<bool>, v: Var, what: &str| -> Result<()> {
            match defined.get_mut(v.index()) {
                None => Err(Error::check(format!(
                    "{what} defines variable {} which has no aval (the table has {})",
                    v.0, n_avals
                ))),
                Some(d) if *d => Err(Error::check(format!(
                    "{what} defines variable {} a second time",
                    v.0
                ))),
                Some(d) => {
                    *d = true;
                    Ok(())
                }
            }
        };
        for (i, (v, arr)) in self.consts.iter().enumerate() {
            define(&mut defined, *v, &format!("constant {i}"))?;
            if arr.aval() != *self.aval(*v) {
                return Err(Error::check(format!(
                    "constant {i} is declared {} but its value is {}",
                    self.aval(*v),
                    arr.aval()
                )));
            }
        }
        for (i, v) in self.inputs.iter().enumerate() {
            define(&mut defined, *v, &format!("input {i}"))?;
        }
        for (k, e) in self.eqns.iter().enumerate() {
            let what = format!("equation {k} (`{}`)", e.prim.name());
            let mut in_avals = Vec::with_capacity(e.inputs.len());
            for (j, a) in e.inputs.iter().enumerate() {
                if let Atom::Var(v) = a {
                    if !defined.get(v.index()).copied().unwrap_or(false) {
                        return Err(Error::check(format!(
                            "{what}: operand {j} uses variable {} before it is defined",
                            v.0
                        )));
                    }
                }
                in_avals.push(self.atom_aval(a));
            }
            if let Arity::Fixed(n) = e.prim.arity() {
                if n != e.inputs.len() {
                    return Err(Error::check(format!(
                        "{what}: takes {n} operand(s), has {}",
                        e.inputs.len()
                    )));
                }
            }
            for (j, sub) in e.prim.subprograms().into_iter().enumerate() {
                sub.check_nested()
                    .map_err(|err| Error::check(format!("{what}: sub-program {j}: {err}")))?;
            }
            let refs: Vec<&Aval> = in_avals.iter().collect();
            let expected = e
                .prim
                .out_avals(&refs)
                .map_err(|err| Error::check(format!("{what}: {err}")))?;
            if e.outs.len() != expected.len() {
                return Err(Error::check(format!(
                    "{what}: has {} output(s), the rule for `{}` gives {}",
                    e.outs.len(),
                    e.prim.name(),
                    expected.len()
                )));
            }
            for (out, want) in e.outs.iter().zip(&expected) {
                match self.avals.get(out.index()) {
                    None => {
                        return Err(Error::check(format!(
                            "{what}: output variable {} has no aval",
                            out.0
                        )))
                    }
                    Some(got) if got != want => {
                        return Err(Error::check(format!(
                            "{what}: output is declared {got} but the rule for `{}` gives {want}",
                            e.prim.name()
                        )))
                    }
                    Some(_) => {}
                }
            }
            for out in &e.outs {
                define(&mut defined, *out, &what)?;
            }
        }
        for (i, a) in self.outputs.iter().enumerate() {
            if let Atom::Var(v) = a {
                if !defined.get(v.index()).copied().unwrap_or(false) {
                    return Err(Error::check(format!(
                        "output {i} is variable {}, which is never defined",
                        v.0
                    )));
                }
            }
        }
        Ok(())
    }

    /// Dead-code elimination: drops equations and constants that no output depends on.
    /// Inputs are kept (they are the program's signature). All primitives are pure, so an
    /// equation whose output is unused can always go.
    pub fn dce(&self) -> Program {
        let mut live: HashSet<Var> = self
            .outputs
            .iter()
            .filter_map(|a| match a {
                Atom::Var(v) => Some(*v),
                Atom::Lit(_) => None,
            })
            .collect();
        let mut keep = vec![false; self.eqns.len()];
        for (k, e) in self.eqns.iter().enumerate().rev() {
            if e.outs.iter().any(|v| live.contains(v)) {
                keep[k] = true;
                for a in &e.inputs {
                    if let Atom::Var(v) = a {
                        live.insert(*v);
                    }
                }
            }
        }
        Program {
            avals: self.avals.clone(),
            consts: self
                .consts
                .iter()
                .filter(|(v, _)| live.contains(v))
                .cloned()
                .collect(),
            inputs: self.inputs.clone(),
            eqns: self
                .eqns
                .iter()
                .zip(keep)
                .filter(|(_, k)| *k)
                .map(|(e, _)| e.clone())
                .collect(),
            outputs: self.outputs.clone(),
        }
    }

    /// Counts the equations applying each primitive name (for tests that inspect what a
    /// transformation produced).
    pub fn count_prim(&self, name: &str) -> usize {
        self.eqns.iter().filter(|e| e.prim.name() == name).count()
    }
}

/// The elements of `xs` whose flag is set (flags past the end of `xs` are ignored): how
/// passes keep the inputs, outputs or equations a mask selects.
pub(crate) fn flagged<T: Clone>(xs: &[T], flags: &[bool]) -> Vec<T> {
    xs.iter()
        .zip(flags)
        .filter(|(_, f)| **f)
        .map(|(x, _)| x.clone())
        .collect()
}

impl Program {
    /// A program over this one's variables: `inputs`, the equations whose flag in `eqns` is
    /// set (in order), `outputs`, with dead code removed. How passes cut a loop body in two
    /// (what moves out of the loop, what stays) or restrict it to some inputs and outputs.
    pub(crate) fn part(&self, inputs: Vec<Var>, eqns: &[bool], outputs: Vec<Atom>) -> Program {
        Program {
            avals: self.avals.clone(),
            consts: self.consts.clone(),
            inputs,
            eqns: flagged(&self.eqns, eqns),
            outputs,
        }
        .dce()
    }
}

/// A sub-program held by a control-flow primitive (a branch, a loop body): closed (it holds
/// its own constants) and shared, so cloning a primitive is cheap. A program's equations
/// hold primitives and these primitives hold programs: the IR's one recursion.
#[derive(Clone, Debug)]
pub struct Closed(pub Arc<Program>);

impl Closed {
    /// Wraps `p`, shared behind an `Arc`.
    pub fn new(p: Program) -> Closed {
        Closed(Arc::new(p))
    }
    /// The program inside.
    pub fn program(&self) -> &Program {
        &self.0
    }
}

impl PartialEq for Closed {
    fn eq(&self, other: &Closed) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || *self.0 == *other.0
    }
}

// Programs compare structurally; a NaN constant makes a program unequal to itself, which only
// costs a missed common-subexpression merge.
impl Eq for Closed {}

impl Hash for Closed {
    /// The signature and size only (consistent with structural equality, cheap to compute).
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.avals.len().hash(state);
        self.0.eqns.len().hash(state);
        self.0.in_avals().hash(state);
        self.0.out_avals().hash(state);
    }
}
