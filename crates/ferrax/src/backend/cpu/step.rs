//! Plan steps: one equation prepared to run, with its kernel chosen and its operands
//! resolved to slots or values; and the slot table every step of a run reads and writes.

use crate::backend::cpu::buffers;
use crate::backend::cpu::dispatch::Kernel;
use crate::ir::{Array, Aval, Env, Error, Primitive, Result, Var};

/// Where a step reads an operand: a slot of the run (a variable's value) or a value known
/// when the plan was made (a literal or a constant).
#[derive(Clone, Debug)]
pub(crate) enum StepArg {
    Slot(usize),
    Value(Array),
}

/// One equation of a single-output primitive, prepared (control flow is prepared by
/// `control`).
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

/// The values of one run of a plan, one slot per variable of its program.
pub(crate) type Slots = Env<Array>;

pub(crate) fn slot_var(slot: usize) -> Var {
    Var(slot as u32)
}

pub(crate) fn read(slots: &Slots, a: &StepArg) -> Result<Array> {
    match a {
        StepArg::Value(v) => Ok(v.clone()),
        StepArg::Slot(k) => slots.read_var(slot_var(*k)),
    }
}

/// A step's operands. Those that die here (`last`) and are read once by it are moved out of
/// their slots, so the step may update their buffers in place.
pub(crate) fn take_operands(
    args: &[StepArg],
    last: &[usize],
    slots: &mut Slots,
) -> Result<Vec<Array>> {
    let mut out = Vec::with_capacity(args.len());
    take_operands_into(args, last, slots, &mut out)?;
    Ok(out)
}

/// [`take_operands`] appended to `out` (a vector a run reuses for all its steps, so that a
/// step of a loop body allocates no operand list).
pub(crate) fn take_operands_into(
    args: &[StepArg],
    last: &[usize],
    slots: &mut Slots,
    out: &mut Vec<Array>,
) -> Result<()> {
    for a in args {
        out.push(match a {
            StepArg::Value(v) => v.clone(),
            StepArg::Slot(k) => {
                let read_once = args
                    .iter()
                    .filter(|b| matches!(b, StepArg::Slot(j) if j == k))
                    .count()
                    == 1;
                let v = slot_var(*k);
                let x = if read_once && last.contains(k) {
                    slots.take(v)
                } else {
                    slots.get(v).cloned()
                };
                x.ok_or_else(|| Error::check(format!("variable {k} is used before it is defined")))?
            }
        });
    }
    Ok(())
}

/// Empties the slots whose last use has passed, handing their buffers to the pool.
pub(crate) fn free_dead(last: &[usize], slots: &mut Slots) {
    for k in last {
        if let Some(a) = slots.take(slot_var(*k)) {
            buffers::recycle(a);
        }
    }
}
