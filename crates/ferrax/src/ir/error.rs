//! Errors: the one `Error` type every public entry point returns.
//!
//! Sits beside every stage of the pipeline. Shape and dtype rules (`shape_rules`), the
//! tracer (`trace`), the evaluators (`backend`), the text parser (`parse`) and the checker
//! (`program`) all report through this enum. Errors raised by a user's operation inside a traced closure
//! carry the user's `file:line:col`, captured with `#[track_caller]` on every surface
//! operation, so a mistake deep in a transformed function points at the line that made it.

use std::fmt;

/// A position in the user's Rust source, captured with `#[track_caller]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SourceLoc {
    /// The source file, as `file!()` gives it.
    pub file: &'static str,
    /// The line, from 1.
    pub line: u32,
    /// The column, from 1.
    pub col: u32,
}

impl SourceLoc {
    /// The location of the caller of the function that calls this (through the chain of
    /// `#[track_caller]` functions).
    #[track_caller]
    pub fn caller() -> Self {
        let l = std::panic::Location::caller();
        SourceLoc {
            file: l.file(),
            line: l.line(),
            col: l.column(),
        }
    }
}

impl fmt::Display for SourceLoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

fn at(loc: &Option<SourceLoc>) -> String {
    match loc {
        Some(l) => format!(" (at {l})"),
        None => String::new(),
    }
}

/// Everything that can go wrong in ferrax. Each variant names what was wrong and, where it
/// applies, the operation and the user's source location.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// Operand shapes that an operation does not accept, or parameters inconsistent with them.
    #[error("shape error in `{op}`: {msg}{}", at(.loc))]
    Shape {
        /// The operation that failed.
        op: String,
        /// What was wrong with the shapes.
        msg: String,
        /// The user's source location, when known.
        loc: Option<SourceLoc>,
    },
    /// Operand dtypes that an operation does not accept.
    #[error("dtype error in `{op}`: {msg}{}", at(.loc))]
    DType {
        /// The operation that failed.
        op: String,
        /// What was wrong with the dtypes.
        msg: String,
        /// The user's source location, when known.
        loc: Option<SourceLoc>,
    },
    /// An axis or permutation out of range, repeated, or otherwise malformed.
    #[error("axis error in `{op}`: {msg}{}", at(.loc))]
    Axis {
        /// The operation that failed.
        op: String,
        /// What was wrong with the axes.
        msg: String,
        /// The user's source location, when known.
        loc: Option<SourceLoc>,
    },
    /// Asking for the contents of a traced tensor (its value is not known while tracing).
    #[error("cannot read the value of a traced tensor {aval} in `{op}`{}: its value is not known while tracing; control flow on traced values must go through `select`", at(.loc))]
    TracedValue {
        /// The operation that asked for the value.
        op: String,
        /// The aval of the traced tensor, as text.
        aval: String,
        /// The user's source location, when known.
        loc: Option<SourceLoc>,
    },
    /// A traced tensor used after the trace that made it has ended.
    #[error("a traced tensor {aval} escaped the transformation that traced it and was used in `{op}`{}", at(.loc))]
    EscapedTracer {
        /// The operation that used the tensor.
        op: String,
        /// The aval of the escaped tensor, as text.
        aval: String,
        /// The user's source location, when known.
        loc: Option<SourceLoc>,
    },
    /// Malformed program text.
    #[error("parse error at line {line}, column {col}: {msg}")]
    Parse {
        /// The line of the text, from 1.
        line: usize,
        /// The column, from 1.
        col: usize,
        /// What was malformed.
        msg: String,
    },
    /// A program that is not well typed.
    #[error("ill-typed program: {msg}")]
    Check {
        /// Why the program is ill-typed.
        msg: String,
    },
    /// Arguments that do not fit what a function or program expects (count, shape, dtype).
    #[error("bad input to `{op}`: {msg}{}", at(.loc))]
    Input {
        /// The operation that failed.
        op: String,
        /// What was wrong with the arguments.
        msg: String,
        /// The user's source location, when known.
        loc: Option<SourceLoc>,
    },
    /// A program or function that was required to be linear is not: a nonlinear primitive
    /// applied to a linear value, a product of two linear values, or an affine constant.
    #[error("not linear: `{op}` {msg}{}", at(.loc))]
    NotLinear {
        /// The operation that failed.
        op: String,
        /// Why the operation is not linear.
        msg: String,
        /// The user's source location, when known.
        loc: Option<SourceLoc>,
    },
    /// Trees whose structure does not match.
    #[error("tree structure mismatch in `{op}`: {msg}{}", at(.loc))]
    Tree {
        /// The operation that failed.
        op: String,
        /// How the trees differ.
        msg: String,
        /// The user's source location, when known.
        loc: Option<SourceLoc>,
    },
    /// A value too large to allocate: the element count or byte size of a shape does not
    /// fit in memory's address space, or the allocator refused the bytes asked for (JAX's
    /// RESOURCE_EXHAUSTED).
    #[error("out of memory in `{op}`: {msg}{}", at(.loc))]
    ResourceExhausted {
        /// The operation that failed.
        op: String,
        /// What was too large to allocate.
        msg: String,
        /// The user's source location, when known.
        loc: Option<SourceLoc>,
    },
    /// A broken invariant inside ferrax (a bug, not a user mistake): reported instead of a
    /// panic so that the caller's process survives it.
    #[error("internal error in ferrax (please report it): {msg}")]
    Internal {
        /// The invariant that broke.
        msg: String,
    },
}

impl Error {
    pub(crate) fn shape(op: &str, msg: impl Into<String>) -> Self {
        Error::Shape {
            op: op.to_string(),
            msg: msg.into(),
            loc: None,
        }
    }
    pub(crate) fn dtype(op: &str, msg: impl Into<String>) -> Self {
        Error::DType {
            op: op.to_string(),
            msg: msg.into(),
            loc: None,
        }
    }
    pub(crate) fn axis(op: &str, msg: impl Into<String>) -> Self {
        Error::Axis {
            op: op.to_string(),
            msg: msg.into(),
            loc: None,
        }
    }
    pub(crate) fn input(op: &str, msg: impl Into<String>) -> Self {
        Error::Input {
            op: op.to_string(),
            msg: msg.into(),
            loc: None,
        }
    }
    pub(crate) fn tree(op: &str, msg: impl Into<String>) -> Self {
        Error::Tree {
            op: op.to_string(),
            msg: msg.into(),
            loc: None,
        }
    }
    pub(crate) fn exhausted(op: &str, msg: impl Into<String>) -> Self {
        Error::ResourceExhausted {
            op: op.to_string(),
            msg: msg.into(),
            loc: None,
        }
    }
    pub(crate) fn internal(msg: impl Into<String>) -> Self {
        Error::Internal { msg: msg.into() }
    }
    pub(crate) fn check(msg: impl Into<String>) -> Self {
        Error::Check { msg: msg.into() }
    }

    /// The user's source location carried by this error, if any.
    pub fn loc(&self) -> Option<SourceLoc> {
        match self {
            Error::Shape { loc, .. }
            | Error::DType { loc, .. }
            | Error::Axis { loc, .. }
            | Error::TracedValue { loc, .. }
            | Error::EscapedTracer { loc, .. }
            | Error::NotLinear { loc, .. }
            | Error::Input { loc, .. }
            | Error::Tree { loc, .. }
            | Error::ResourceExhausted { loc, .. } => *loc,
            _ => None,
        }
    }

    /// Attach a source location unless one is already there (the innermost user call wins).
    /// `NotLinear` keeps the location of the equation that is not linear.
    pub(crate) fn with_loc(mut self, new: SourceLoc) -> Self {
        match &mut self {
            Error::Shape { loc, .. }
            | Error::DType { loc, .. }
            | Error::Axis { loc, .. }
            | Error::TracedValue { loc, .. }
            | Error::EscapedTracer { loc, .. }
            | Error::Input { loc, .. }
            | Error::Tree { loc, .. }
            | Error::ResourceExhausted { loc, .. }
                if loc.is_none() =>
            {
                *loc = Some(new);
            }
            _ => {}
        }
        self
    }
}

/// ferrax's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
