//! Rematerialization policies: which of a checkpointed function's residuals are stored.
//!
//! Part of the IR: the `checkpoint` primitive carries one, printed in program text as
//! `policy=nothing`, `policy=everything`, `policy=dots` or `policy=(name,...)`, and partial
//! evaluation (`passes/partial_eval/remat.rs`) reads it to decide, residual by residual,
//! what the linear program reads and what it computes again.

/// Which residuals of a checkpointed function linearization stores (the others are
/// recomputed from the function's inputs whenever the linear map or its transpose runs),
/// after JAX's `checkpoint_policies`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RematPolicy {
    /// Store none: everything is recomputed from the inputs (`nothing_saveable`).
    Nothing,
    /// Store all: the same as no checkpoint (`everything_saveable`).
    Everything,
    /// Store the outputs of matrix products (`dot_general`) only (`dots_saveable`).
    Dots,
    /// Store only the values named with `checkpoint_name` under one of these names
    /// (`save_only_these_names`).
    Names(Vec<String>),
}

/// Whether `s` may name a checkpointed value: an identifier (letters, digits and `_`, not
/// starting with a digit) that is not one of the policies' keywords.
pub fn is_checkpoint_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !matches!(s, "nothing" | "everything" | "dots" | "true" | "false")
}
