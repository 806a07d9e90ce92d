//! The interpreter environment every evaluator and pass shares.
//!
//! Each pass is an interpreter: it walks a program's equations with one value per variable
//! (an array for the evaluator, a tensor when recording, a primal and a tangent for jvp, a
//! value and its batch dimension for vmap, a slot of a compiled plan). [`Env`] is that
//! table: variables are written once, read by atoms (a literal becomes a value through the
//! interpreter's own conversion), and a read of a variable not yet written is an error
//! rather than a panic (`check` rules it out for every program that reaches a pass).

use crate::ir::array::Array;
use crate::ir::dtype::Scalar;
use crate::ir::error::{Error, Result};
use crate::ir::program::{Atom, Program, Var};

/// One value of type `T` per variable of a program.
#[derive(Clone, Debug)]
pub(crate) struct Env<T> {
    vals: Vec<Option<T>>,
}

impl<T: Clone> Env<T> {
    /// An environment with room for `n` variables, none written.
    pub fn new(n: usize) -> Env<T> {
        Env {
            vals: vec![None; n],
        }
    }

    /// The environment of `p` with its inputs bound to `args`, in order, and its constants
    /// to `konst` of their arrays.
    pub fn bind(
        p: &Program,
        args: impl IntoIterator<Item = T>,
        konst: impl Fn(&Array) -> T,
    ) -> Env<T> {
        let mut env = Env::new(p.avals.len());
        for (v, x) in p.inputs.iter().zip(args) {
            env.write(*v, x);
        }
        for (v, a) in &p.consts {
            env.write(*v, konst(a));
        }
        env
    }

    pub fn write(&mut self, v: Var, x: T) {
        self.vals[v.index()] = Some(x);
    }

    /// The value of a variable, if written.
    pub fn get(&self, v: Var) -> Option<&T> {
        self.vals.get(v.index()).and_then(Option::as_ref)
    }

    /// The value of a variable, moved out (the slot is empty afterwards).
    pub fn take(&mut self, v: Var) -> Option<T> {
        self.vals.get_mut(v.index()).and_then(Option::take)
    }

    /// The value of a variable; an error if it has not been written.
    pub fn read_var(&self, v: Var) -> Result<T> {
        self.get(v)
            .cloned()
            .ok_or_else(|| Error::check(format!("variable {} is used before it is defined", v.0)))
    }

    /// The value of an atom: a variable's value, or a literal made a value by `lit`.
    pub fn read(&self, a: &Atom, lit: impl FnOnce(Scalar) -> T) -> Result<T> {
        match a {
            Atom::Var(v) => self.read_var(*v),
            Atom::Lit(s) => Ok(lit(*s)),
        }
    }
}
