//! The solvers' error type: ferrax's errors, plus what can go wrong with data and iterates.

/// Everything a solver or a data reader can report.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SolverError {
    /// An error of the transformations underneath (shapes, tracing, linearity...).
    #[error(transparent)]
    Ferrax(#[from] ferrax::Error),
    /// A malformed data file: which file, which line (1-based), what was wrong.
    #[error("{file}:{line}: {msg}")]
    Data {
        /// The file's path, as it was given.
        file: String,
        /// The 1-based line; 0 when the error is about the file as a whole (it cannot be
        /// read, or something it must hold is missing).
        line: usize,
        /// What was wrong.
        msg: String,
    },
    /// Malformed text of a small language (`what`: the model of `ferrax fit`): where, and
    /// what was wrong (line and column 1-based).
    #[error("{what}:{line}:{column}: {msg}")]
    Syntax {
        /// What kind of text was being read (`model`).
        what: String,
        /// The 1-based line.
        line: usize,
        /// The 1-based column, counted in characters.
        column: usize,
        /// What was wrong.
        msg: String,
    },
    /// A function returned NaN or infinity where a solver cannot continue.
    #[error("non-finite value: {0}")]
    NonFinite(String),
    /// Arguments that do not fit (lengths, shapes, options).
    #[error("bad input to `{op}`: {msg}")]
    Input {
        /// The operation that refused its arguments (a function's name, such as
        /// `least_squares`).
        op: String,
        /// What was wrong.
        msg: String,
    },
}

/// The result type of the solvers: [`SolverError`] unless said otherwise.
pub type Result<T, E = SolverError> = std::result::Result<T, E>;

pub(crate) fn input(op: &str, msg: impl Into<String>) -> SolverError {
    SolverError::Input {
        op: op.to_string(),
        msg: msg.into(),
    }
}
