//! Control flow in compiled plans: a `cond` runs the plan of the branch its index picks, a
//! `scan` runs the plan of its body once per iteration, as a loop.
//!
//! Sits beside `plan`, which routes every control-flow equation here when it is made, before
//! any kernel is chosen (`dispatch::kernel` is never asked about control flow), and runs the
//! resulting [`ControlStep`] as a fusion barrier between its other items. Each branch and
//! each body becomes a plan of its own once, when the enclosing plan is made, so making a
//! plan costs the same for 10 or 10,000 iterations and a run re-runs no shape rule and
//! re-optimizes nothing. Outputs nobody reads are pruned from the sub-programs first (the ys
//! of a scan whose final carry alone is read are not stacked, and what only they needed is
//! not computed). Nested plans run inside the enclosing run: its buffer pool stays installed,
//! so what one iteration frees the next one reuses. The loop adds no arithmetic of its own:
//! a scan gives what its body's plan gives iteration by iteration, so it agrees with the
//! reference evaluator (`reference::control`) bit for bit wherever the body's kernels do, as
//! any plan does; and the evaluation counts are the reference evaluator's: the primitives
//! inside the sub-programs, counted by the nested plans, not `cond` or `scan` themselves.
//!
//! This file names the nested plans only through [`SubPlan`], so that `plan`, which makes
//! them, and this file do not import each other.

use std::borrow::Cow;
use std::fmt::Debug;

use crate::backend::cpu::buffers;
use crate::backend::cpu::fixed_body::FixedBody;
use crate::backend::cpu::spmd;
use crate::backend::cpu::stack::Stack;
use crate::backend::cpu::step::{free_dead, slot_var, take_operands, Slots, StepArg};
use crate::backend::eval_primitive;
use crate::backend::reference::while_linear;
use crate::backend::reference::{fixed_avals, too_many_steps};
use crate::ir::{Array, Aval, Equation, Primitive, Program, Result};

/// What a control step needs of a sub-program's plan.
pub(crate) trait SubPlan: Clone + Debug + Sync {
    /// An empty slot table for its runs (one serves every iteration of a loop).
    fn slots(&self) -> Slots;
    /// Runs on `args` (drained), which are known to have the sub-program's input avals
    /// (checked when the enclosing plan ran), inside the enclosing run; pushes the outputs
    /// onto `outs` and leaves `slots` empty for the next run.
    fn run_nested(
        &self,
        args: &mut Vec<Array>,
        slots: &mut Slots,
        outs: &mut Vec<Array>,
    ) -> Result<()>;
    /// The program as operations on buffers, when it is a scan body (`n_consts` consts and
    /// `n_carry` carried values first among its inputs) that qualifies (`fixed_body`).
    fn fixed_body(&self, n_consts: usize, n_carry: usize) -> Option<FixedBody>;
}

/// A control-flow equation, prepared: its operands and the slots of its outputs, and a plan
/// (`P`) for each of its sub-programs.
#[derive(Clone, Debug)]
pub(crate) struct ControlStep<P> {
    kind: Kind<P>,
    args: Vec<StepArg>,
    /// Slots whose last use is this step.
    last: Vec<usize>,
}

#[derive(Clone, Debug)]
enum Kind<P> {
    /// The branches give the used outputs only, written to these slots.
    Cond {
        branches: Vec<P>,
        outs: Vec<usize>,
    },
    Scan(Box<ScanStep<P>>),
    While(Box<WhileStep<P>>),
    WhileLinear(Box<WhileLinearStep<P>>),
    /// A checkpoint: its body's plan, run once; every output written to its slot or
    /// recycled.
    Call {
        body: P,
        outs: Vec<Option<usize>>,
    },
    /// A `named_map`: its body's plan run by every member on a thread of its own
    /// (`spmd`), the members' outputs stacked into their slots (or dropped).
    Spmd(Box<SpmdStep<P>>),
}

#[derive(Clone, Debug)]
struct SpmdStep<P> {
    body: P,
    axis: String,
    n: usize,
    /// One member's output avals.
    out_avals: Vec<Aval>,
    /// The slot of each output (`None`: nobody reads it).
    outs: Vec<Option<usize>>,
    /// One buffer pool per member, installed on its thread while it runs: what a member's
    /// run frees, its next run reuses (a fresh thread has no pool of its own).
    pools: Vec<buffers::BufferPool>,
}

#[derive(Clone, Debug)]
struct WhileLinearStep<P> {
    body: P,
    step: P,
    shape: while_linear::Shape,
    n_carry: usize,
    /// The fixed tangents' avals (their cotangents' when transposed).
    fixed: Vec<Aval>,
    /// The slot of each output (`None`: nobody reads it).
    outs: Vec<Option<usize>>,
}

#[derive(Clone, Debug)]
struct WhileStep<P> {
    cond: P,
    body: P,
    n_cond_consts: usize,
    n_body_consts: usize,
    max_steps: usize,
    /// The slot of each final carry (`None`: nobody reads it).
    carry: Vec<Option<usize>>,
}

#[derive(Clone, Debug)]
struct ScanStep<P> {
    /// Gives the carry, then the used ys only.
    body: P,
    n_consts: usize,
    n_carry: usize,
    length: usize,
    reverse: bool,
    /// The slot of each final carry (`None`: nobody reads it).
    carry: Vec<Option<usize>>,
    /// The slot and stacked aval of each used ys.
    ys: Vec<(usize, Aval)>,
    /// The body as operations on buffers, where it qualifies (`fixed_body`).
    fixed: Option<FixedBody>,
}

/// `p` giving only the outputs `keep` marks, without the code that only served the others.
fn only_outputs<'a>(p: &'a Program, keep: &[bool]) -> Cow<'a, Program> {
    if keep.iter().all(|&k| k) {
        return Cow::Borrowed(p);
    }
    let mut q = p.clone();
    q.outputs = p
        .outputs
        .iter()
        .zip(keep)
        .filter(|(_, &k)| k)
        .map(|(a, _)| a.clone())
        .collect();
    Cow::Owned(q.dce())
}

/// Prepares the equation `e` if it is control flow (`None` otherwise): `args` are its
/// operands, `last` the slots it is the last user of, `used(slot)` whether a later step or
/// the output reads a slot, and `compile` makes the plan of a sub-program.
pub(crate) fn prepare<P: SubPlan>(
    e: &Equation,
    program: &Program,
    args: &[StepArg],
    last: &[usize],
    used: impl Fn(usize) -> bool,
    compile: impl Fn(&Program) -> P,
) -> Option<ControlStep<P>> {
    let outs: Vec<usize> = e.outs.iter().map(|v| v.index()).collect();
    let keep: Vec<bool> = outs.iter().map(|&k| used(k)).collect();
    let kind = match &e.prim {
        Primitive::While {
            cond,
            body,
            n_cond_consts,
            n_body_consts,
            max_steps,
            ..
        } => Kind::While(Box::new(WhileStep {
            cond: compile(cond.program()),
            body: compile(body.program()),
            n_cond_consts: *n_cond_consts,
            n_body_consts: *n_body_consts,
            max_steps: *max_steps,
            carry: outs.iter().map(|&k| used(k).then_some(k)).collect(),
        })),
        Primitive::Checkpoint { .. }
        | Primitive::CustomJvp { .. }
        | Primitive::CustomVjp { .. }
        | Primitive::CustomLin { .. } => Kind::Call {
            body: compile(e.prim.callee()?.program()),
            outs: outs.iter().map(|&k| used(k).then_some(k)).collect(),
        },
        Primitive::NamedMap {
            body,
            axis_name,
            axis_size,
        } => Kind::Spmd(Box::new(SpmdStep {
            body: compile(body.program()),
            axis: axis_name.clone(),
            n: *axis_size,
            out_avals: body.program().out_avals(),
            outs: outs.iter().map(|&k| used(k).then_some(k)).collect(),
            // (a pool for the first members only: a parsed map may name far more members
            // than memory holds, and refuses them when it runs)
            pools: (0..(*axis_size).min(spmd::MAX_THREADS))
                .map(|_| buffers::BufferPool::default())
                .collect(),
        })),
        Primitive::WhileLinear { body, step, .. } => Kind::WhileLinear(Box::new(WhileLinearStep {
            body: compile(body.program()),
            step: compile(step.program()),
            shape: while_linear::Shape::of(&e.prim)?,
            n_carry: body.program().outputs.len(),
            fixed: fixed_avals(step, while_linear::Shape::of(&e.prim)?.n_lin_consts),
            outs: outs.iter().map(|&k| used(k).then_some(k)).collect(),
        })),
        Primitive::Cond { branches } => Kind::Cond {
            branches: branches
                .iter()
                .map(|b| compile(&only_outputs(b.program(), &keep)))
                .collect(),
            outs: outs.iter().copied().filter(|&k| used(k)).collect(),
        },
        _ => {
            let (body, s) = e.prim.as_scan()?;
            let (carry, ys) = outs.split_at(s.n_carry);
            // the body gives the carry back whether or not it is read afterwards
            let mut body_keep = vec![true; s.n_carry];
            body_keep.extend(ys.iter().map(|&k| used(k)));
            let body = compile(&only_outputs(body.program(), &body_keep));
            Kind::Scan(Box::new(ScanStep {
                fixed: body.fixed_body(s.n_consts, s.n_carry),
                body,
                n_consts: s.n_consts,
                n_carry: s.n_carry,
                length: s.length,
                reverse: s.reverse,
                carry: carry.iter().map(|&k| used(k).then_some(k)).collect(),
                ys: ys
                    .iter()
                    .filter(|&&k| used(k))
                    .map(|&k| (k, program.avals[k].clone()))
                    .collect(),
            }))
        }
    };
    Some(ControlStep {
        kind,
        args: args.to_vec(),
        last: last.to_vec(),
    })
}

impl<P: SubPlan> ControlStep<P> {
    /// The plans of the sub-programs (branches in order, or the body).
    pub(crate) fn plans(&self) -> Vec<&P> {
        match &self.kind {
            Kind::Cond { branches, .. } => branches.iter().collect(),
            Kind::Scan(s) => vec![&s.body],
            Kind::While(w) => vec![&w.cond, &w.body],
            Kind::WhileLinear(w) => vec![&w.body, &w.step],
            Kind::Call { body, .. } => vec![body],
            Kind::Spmd(s) => vec![&s.body],
        }
    }

    /// Whether it is a scan whose body runs on fixed buffers (`fixed_body`).
    pub(crate) fn has_fixed_body(&self) -> bool {
        matches!(&self.kind, Kind::Scan(s) if s.fixed.is_some())
    }

    /// Runs the step on the run's slots.
    pub(crate) fn run(&self, slots: &mut Slots) -> Result<()> {
        let mut operands = take_operands(&self.args, &self.last, slots)?;
        // every operand is in hand: slots that die here may go before the loop starts
        free_dead(&self.last, slots);
        match &self.kind {
            Kind::Cond { branches, outs } => {
                let mut operands_of_branch = operands.split_off(1);
                let branch = &branches[branch_index(&operands[0], branches.len())?];
                let mut results = Vec::with_capacity(outs.len());
                branch.run_nested(&mut operands_of_branch, &mut branch.slots(), &mut results)?;
                for (&slot, a) in outs.iter().zip(results) {
                    slots.write(slot_var(slot), a);
                }
                Ok(())
            }
            Kind::Scan(s) => s.run(operands, slots),
            Kind::While(w) => w.run(operands, slots),
            Kind::WhileLinear(w) => w.run(operands, slots),
            Kind::Spmd(s) => s.run(&operands, slots),
            Kind::Call { body, outs } => {
                let mut args = operands;
                let mut own = body.slots();
                let mut results = vec![];
                body.run_nested(&mut args, &mut own, &mut results)?;
                for (slot, r) in outs.iter().zip(results) {
                    match slot {
                        Some(k) => slots.write(slot_var(*k), r),
                        None => buffers::recycle(r),
                    }
                }
                Ok(())
            }
        }
    }
}

/// The branch an index picks: clamped to the branches (as `reference::control` clamps it).
fn branch_index(index: &Array, n: usize) -> Result<usize> {
    let i = index.item()?.to_f64();
    Ok(if i <= 0.0 {
        0
    } else {
        (i as usize).min(n.saturating_sub(1))
    })
}

impl<P: SubPlan> SpmdStep<P> {
    /// Every member on its own thread, on its rows of the operands; the outputs stacked.
    fn run(&self, operands: &[Array], slots: &mut Slots) -> Result<()> {
        let per_member = spmd::run_members(self.n, &self.axis, |rank| {
            let _pool = self.pools.get(rank).map(|p| p.install());
            let mut args = operands
                .iter()
                .map(|a| a.row(rank))
                .collect::<Result<Vec<_>>>()?;
            let mut outs = Vec::with_capacity(self.out_avals.len());
            self.body
                .run_nested(&mut args, &mut self.body.slots(), &mut outs)?;
            Ok(outs)
        })?;
        for (k, (slot, aval)) in self.outs.iter().zip(&self.out_avals).enumerate() {
            if let Some(slot) = slot {
                let rows: Vec<Array> = per_member.iter().map(|m| m[k].clone()).collect();
                slots.write(slot_var(*slot), Array::stack(&rows, aval, self.n)?);
            }
        }
        Ok(())
    }
}

impl<P: SubPlan> WhileStep<P> {
    fn run(&self, operands: Vec<Array>, slots: &mut Slots) -> Result<()> {
        let mut operands = operands.into_iter();
        let cond_consts: Vec<Array> = operands.by_ref().take(self.n_cond_consts).collect();
        let body_consts: Vec<Array> = operands.by_ref().take(self.n_body_consts).collect();
        let mut carry: Vec<Array> = operands.collect();
        let (mut cond_slots, mut body_slots) = (self.cond.slots(), self.body.slots());
        let mut args = Vec::with_capacity(cond_consts.len() + body_consts.len() + carry.len());
        let mut results = Vec::with_capacity(carry.len());
        let mut steps = 0usize;
        loop {
            args.extend(cond_consts.iter().cloned());
            args.extend(carry.iter().cloned());
            self.cond
                .run_nested(&mut args, &mut cond_slots, &mut results)?;
            let go = results.drain(..).next().map(|a| a.item()).transpose()?;
            if go.is_none_or(|v| v.to_f64() == 0.0) {
                break;
            }
            too_many_steps(steps, self.max_steps)?;
            steps += 1;
            args.extend(body_consts.iter().cloned());
            args.append(&mut carry);
            self.body
                .run_nested(&mut args, &mut body_slots, &mut results)?;
            carry.append(&mut results);
        }
        for (slot, c) in self.carry.iter().zip(carry) {
            match slot {
                Some(k) => slots.write(slot_var(*k), c),
                None => buffers::recycle(c),
            }
        }
        Ok(())
    }
}

impl<P: SubPlan> WhileLinearStep<P> {
    fn run(&self, operands: Vec<Array>, slots: &mut Slots) -> Result<()> {
        let nested = |plan: &P, own: &mut Slots, mut ins: Vec<Array>| {
            let mut outs = vec![];
            plan.run_nested(&mut ins, own, &mut outs)?;
            Ok(outs)
        };
        let (mut body_slots, mut step_slots) = (self.body.slots(), self.step.slots());
        let results = while_linear::run(
            self.shape,
            operands,
            self.n_carry,
            &self.fixed,
            &mut |ins| nested(&self.body, &mut body_slots, ins),
            &mut |ins| nested(&self.step, &mut step_slots, ins),
            &|a, b| eval_primitive(&Primitive::Add, &[a, b]),
        )?;
        for (slot, r) in self.outs.iter().zip(results) {
            match slot {
                Some(k) => slots.write(slot_var(*k), r),
                None => buffers::recycle(r),
            }
        }
        Ok(())
    }
}

impl<P: SubPlan> ScanStep<P> {
    fn run(&self, operands: Vec<Array>, slots: &mut Slots) -> Result<()> {
        let mut operands = operands.into_iter();
        let consts: Vec<Array> = operands.by_ref().take(self.n_consts).collect();
        let carry: Vec<Array> = operands.by_ref().take(self.n_carry).collect();
        let xs: Vec<Array> = operands.collect();
        // the stacked ys are allocated before the loop runs (the length is the user's)
        let mut stacks = self
            .ys
            .iter()
            .map(|(_, aval)| Stack::new(aval))
            .collect::<Result<Vec<_>>>()?;
        let carry = match &self.fixed {
            Some(f) => f.scan(
                (&consts, carry, &xs),
                self.length,
                self.reverse,
                &mut stacks,
            )?,
            None => self.run_body(consts, carry, xs, &mut stacks)?,
        };
        for (slot, c) in self.carry.iter().zip(carry) {
            match slot {
                Some(k) => slots.write(slot_var(*k), c),
                None => buffers::recycle(c),
            }
        }
        for ((slot, _), stack) in self.ys.iter().zip(stacks) {
            slots.write(slot_var(*slot), stack.finish(self.reverse)?);
        }
        Ok(())
    }

    /// The iterations through the body's plan; gives the final carry.
    fn run_body(
        &self,
        consts: Vec<Array>,
        mut carry: Vec<Array>,
        xs: Vec<Array>,
        stacks: &mut [Stack],
    ) -> Result<Vec<Array>> {
        let n_in = consts.len() + carry.len() + xs.len();
        // one slot table, argument list and result list serve every iteration
        let mut body_slots = self.body.slots();
        let mut args = Vec::with_capacity(n_in);
        let mut results = Vec::with_capacity(self.n_carry + self.ys.len());
        for step in 0..self.length {
            let i = if self.reverse {
                self.length - 1 - step
            } else {
                step
            };
            args.extend(consts.iter().cloned());
            args.append(&mut carry);
            for x in &xs {
                args.push(x.row(i)?);
            }
            self.body
                .run_nested(&mut args, &mut body_slots, &mut results)?;
            let mut results = results.drain(..);
            carry.extend(results.by_ref().take(self.n_carry));
            // each y is copied into its row and dropped, so a carry it aliases is unshared
            // again for the next iteration's in-place updates
            for (stack, y) in stacks.iter_mut().zip(results) {
                stack.push(&y)?;
            }
        }
        Ok(carry)
    }
}
