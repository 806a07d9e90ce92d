//! Plan steps: one equation prepared to run, with its kernel chosen and its operands
//! resolved to slots or values.

use crate::backend::cpu::dispatch::Kernel;
use crate::ir::{Array, Aval, Primitive};

/// Where a step reads an operand: a slot of the run (a variable's value) or a value known
/// when the plan was made (a literal or a constant).
#[derive(Clone, Debug)]
pub(crate) enum StepArg {
    Slot(usize),
    Value(Array),
}

/// One equation, prepared.
#[derive(Clone, Debug)]
pub(crate) struct Step {
    pub prim: Primitive,
    /// The CPU kernel chosen for it (`None`: the reference evaluator).
    pub kernel: Option<Kernel>,
    pub args: Vec<StepArg>,
    pub out: usize,
    pub out_aval: Aval,
    /// Slots whose last use is this step (freed after it).
    pub last: Vec<usize>,
}
