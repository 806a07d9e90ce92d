//! Tracing: recording what a Rust closure does to tensors into a [`Program`].
//!
//! The first stage of the pipeline. A thread-local stack holds one *builder* per trace in
//! progress. Every primitive application goes through [`bind`]:
//!
//! * with no trace in progress, it computes at once (eager mode, through the reference evaluator);
//! * otherwise it is recorded as an equation in the innermost trace ("omnistaging": even
//!   operations on concrete arrays are staged, so a transformation sees all the work).
//!
//! **Closure conversion.** When a trace starts while another is in progress (a transformation
//! called inside a transformed function), the inner closure may use tensors of the outer
//! trace. Such a tensor is *lifted*: it becomes an extra input of the inner program (a
//! capture), and the inner program is later emitted into the outer trace with the outer
//! tensor in that place. Lifting goes through every level in between, so each program only
//! ever refers to its own variables. This is what keeps nested derivatives free of
//! perturbation confusion. A tensor whose trace has ended cannot be lifted: it has escaped,
//! and using it is an error.
//!
//! **Errors.** A user mistake (bad shapes, axes, dtypes) does not abort: the operation returns
//! a *failed* tensor carrying the error, later operations pass it on, the first error is
//! remembered by the trace, and the entry point that started the trace returns it as `Err`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::backend::{eval_equation, eval_primitive};
use crate::ir::{
    Array, Atom, Aval, Env, Equation, Error, Primitive, Program, Result, SourceLoc, Var,
};
use crate::trace::tensor::{Repr, Tensor, TracedVal};
use crate::trace::tree::{flatten, unflatten, Tree, TreeDef};

/// One trace in progress.
struct Builder {
    id: u64,
    avals: Vec<Aval>,
    consts: Vec<(Var, Array)>,
    inputs: Vec<Var>,
    eqns: Vec<Equation>,
    /// Tensors of the enclosing trace that this one uses, with the input variable each
    /// became here.
    captures: Vec<(Tensor, Var)>,
    /// (trace id, variable there) of every captured tensor, to capture each only once.
    capture_map: HashMap<(u64, Var), Var>,
    /// The first user error met while tracing.
    error: Option<Error>,
}

impl Builder {
    fn new_var(&mut self, aval: Aval) -> Var {
        self.avals.push(aval);
        Var(self.avals.len() as u32 - 1)
    }
    fn record(&mut self, e: &Error) {
        if self.error.is_none() {
            self.error = Some(e.clone());
        }
    }
}

thread_local! {
    static STACK: RefCell<Vec<Builder>> = const { RefCell::new(Vec::new()) };
}

/// Trace ids are unique in the whole process, not per thread: `Tensor` is `Send`, so a
/// tracer leaked from one thread must never be taken for a variable of a trace on another
/// (it is an escaped tracer there, since no trace on that thread has its id).
static NEXT_TRACE_ID: AtomicU64 = AtomicU64::new(1);

/// Whether a trace is in progress on this thread.
pub fn is_tracing() -> bool {
    STACK.with(|s| !s.borrow().is_empty())
}

/// A failed tensor; the error is also remembered by the innermost trace, if any, so that it
/// is reported even when the failed tensor is then dropped.
pub(crate) fn fail(e: Error) -> Tensor {
    record(&e);
    Tensor::failed(e)
}

/// Remembers an error in the innermost trace in progress (if any): that trace's entry point
/// will return it even if the closure being traced swallows it.
pub(crate) fn record(e: &Error) {
    STACK.with(|s| {
        if let Some(b) = s.borrow_mut().last_mut() {
            b.record(e);
        }
    });
}

/// Applies a primitive to tensors: computes it (no trace in progress) or records it.
pub(crate) fn bind(prim: Primitive, args: &[&Tensor], loc: SourceLoc) -> Tensor {
    bind_at(prim, args, Some(loc))
}

/// [`bind`] with an optional source location (equations parsed from text have none).
pub(crate) fn bind_at(prim: Primitive, args: &[&Tensor], loc: Option<SourceLoc>) -> Tensor {
    let at = |e: Error| match loc {
        Some(l) => e.with_loc(l),
        None => e,
    };
    if let Some(failed) = args.iter().find(|a| matches!(a.repr, Repr::Failed(_))) {
        return (*failed).clone();
    }
    if !is_tracing() {
        let mut arrays = Vec::with_capacity(args.len());
        for a in args {
            match &a.repr {
                Repr::Concrete(x) => arrays.push(x),
                Repr::Traced(t) => return fail(escaped(prim.name(), &t.aval, loc)),
                Repr::Failed(_) => unreachable!("failed operands returned above"),
            }
        }
        return match eval_primitive(&prim, &arrays) {
            Ok(a) => Tensor::concrete(a),
            Err(e) => Tensor::failed(at(e)),
        };
    }
    STACK.with(|s| {
        let mut stack = s.borrow_mut();
        let top = stack.len() - 1;
        let (atoms, avals) = match operand_atoms(&mut stack, top, args, prim.name(), loc) {
            Ok(x) => x,
            Err(e) => return Tensor::failed(e),
        };
        let refs: Vec<&Aval> = avals.iter().collect();
        let b = &mut stack[top];
        match prim.abstract_eval(&refs) {
            Ok(out) => {
                let v = b.new_var(out.clone());
                b.eqns.push(Equation {
                    prim,
                    inputs: atoms,
                    outs: vec![v],
                    loc,
                });
                Tensor::traced(b.id, v, out)
            }
            Err(e) => {
                let e = at(e);
                b.record(&e);
                Tensor::failed(e)
            }
        }
    })
}

/// Applies any primitive, one with several outputs too (control flow): computes it with no
/// trace in progress, records one equation otherwise. An error is returned, and remembered
/// by the trace in progress as a failed single-output operation would be.
pub(crate) fn bind_multi(
    prim: Primitive,
    args: &[&Tensor],
    loc: Option<SourceLoc>,
) -> Result<Vec<Tensor>> {
    let at = |e: Error| match loc {
        Some(l) => e.with_loc(l),
        None => e,
    };
    if let Some(e) = args.iter().find_map(|a| a.error()) {
        return Err(e.clone());
    }
    if !is_tracing() {
        let arrays = args
            .iter()
            .map(|a| match &a.repr {
                Repr::Concrete(x) => Ok(x),
                Repr::Traced(t) => Err(escaped(prim.name(), &t.aval, loc)),
                Repr::Failed(e) => Err((**e).clone()),
            })
            .collect::<Result<Vec<_>>>()?;
        let outs = eval_equation(&prim, &arrays).map_err(at)?;
        return Ok(outs.into_iter().map(Tensor::concrete).collect());
    }
    STACK.with(|s| {
        let mut stack = s.borrow_mut();
        let top = stack.len() - 1;
        let (atoms, avals) = operand_atoms(&mut stack, top, args, prim.name(), loc)?;
        let refs: Vec<&Aval> = avals.iter().collect();
        let b = &mut stack[top];
        match prim.out_avals(&refs) {
            Ok(outs) => {
                let vars: Vec<Var> = outs.iter().map(|a| b.new_var(a.clone())).collect();
                let tensors = vars
                    .iter()
                    .zip(outs)
                    .map(|(v, a)| Tensor::traced(b.id, *v, a))
                    .collect();
                b.eqns.push(Equation {
                    prim,
                    inputs: atoms,
                    outs: vars,
                    loc,
                });
                Ok(tensors)
            }
            Err(e) => {
                let e = at(e);
                b.record(&e);
                Err(e)
            }
        }
    })
}

/// The operands of an equation being recorded in the trace at `top`, as atoms of that trace
/// with their avals; an error (an escaped tracer, say) is remembered by the trace too.
fn operand_atoms(
    stack: &mut [Builder],
    top: usize,
    args: &[&Tensor],
    op: &str,
    loc: Option<SourceLoc>,
) -> Result<(Vec<Atom>, Vec<Aval>)> {
    let mut atoms = Vec::with_capacity(args.len());
    let mut avals = Vec::with_capacity(args.len());
    for a in args {
        match to_atom(stack, top, a, op, loc) {
            Ok((atom, aval)) => {
                atoms.push(atom);
                avals.push(aval);
            }
            Err(e) => {
                stack[top].record(&e);
                return Err(e);
            }
        }
    }
    Ok((atoms, avals))
}

fn escaped(op: &str, aval: &Aval, loc: Option<SourceLoc>) -> Error {
    Error::EscapedTracer {
        op: op.to_string(),
        aval: aval.to_string(),
        loc,
    }
}

/// The atom standing for a tensor in the trace at `level`: scalars become literals, other
/// concrete arrays constants, and tensors of enclosing traces are lifted into captures.
fn to_atom(
    stack: &mut [Builder],
    level: usize,
    t: &Tensor,
    op: &str,
    loc: Option<SourceLoc>,
) -> Result<(Atom, Aval)> {
    match &t.repr {
        Repr::Concrete(a) if a.ndim() == 0 => Ok((Atom::Lit(a.data().get(0)), a.aval())),
        Repr::Concrete(a) => {
            let b = &mut stack[level];
            let v = b.new_var(a.aval());
            b.consts.push((v, a.clone()));
            Ok((Atom::Var(v), a.aval()))
        }
        Repr::Traced(tv) => Ok((
            Atom::Var(lift(stack, level, tv).ok_or_else(|| escaped(op, &tv.aval, loc))?),
            tv.aval.clone(),
        )),
        Repr::Failed(e) => Err((**e).clone()),
    }
}

/// The variable of trace `level` standing for a traced value, capturing it (and, through
/// every enclosing level in between) if it belongs to an enclosing trace. `None` when its
/// trace is not in progress any more.
fn lift(stack: &mut [Builder], level: usize, t: &TracedVal) -> Option<Var> {
    if stack[level].id == t.trace {
        return Some(t.var);
    }
    if let Some(v) = stack[level].capture_map.get(&(t.trace, t.var)) {
        return Some(*v);
    }
    if level == 0 || !stack[..level].iter().any(|b| b.id == t.trace) {
        return None;
    }
    let outer_var = lift(stack, level - 1, t)?;
    let outer = Tensor::traced(stack[level - 1].id, outer_var, t.aval.clone());
    let b = &mut stack[level];
    let v = b.new_var(t.aval.clone());
    b.captures.push((outer, v));
    b.capture_map.insert((t.trace, t.var), v);
    Some(v)
}

/// Pops the builder it guards if the traced closure panics, so the stack stays consistent.
struct PopGuard {
    id: u64,
    armed: bool,
}

impl Drop for PopGuard {
    fn drop(&mut self) {
        if self.armed {
            STACK.with(|s| {
                let mut st = s.borrow_mut();
                if let Some(pos) = st.iter().position(|b| b.id == self.id) {
                    st.truncate(pos);
                }
            });
        }
    }
}

/// A closure traced into a program.
pub(crate) struct TracedFn {
    /// Inputs: the closure's own inputs, then one per captured tensor.
    pub program: Program,
    /// Tensors of the enclosing trace standing for the captured inputs, in order.
    pub captured: Vec<Tensor>,
    pub out_def: TreeDef,
}

/// [`trace_flat`] of a sub-program that must be closed (a transformed branch or loop body,
/// which reads only its own inputs and constants): an internal error naming `what` if it
/// captured a value of an enclosing trace, rather than a program that drops an operand.
pub(crate) fn trace_closed(
    what: &str,
    in_avals: &[Aval],
    f: impl FnOnce(Vec<Tensor>) -> Result<Vec<Tensor>>,
) -> Result<Program> {
    let (p, captured) = trace_flat(in_avals, f)?;
    if !captured.is_empty() {
        return Err(Error::internal(format!(
            "{what} captured {} outer value(s)",
            captured.len()
        )));
    }
    Ok(p)
}

/// Traces a closure on flat inputs of the given avals.
pub(crate) fn trace_flat(
    in_avals: &[Aval],
    f: impl FnOnce(Vec<Tensor>) -> Result<Vec<Tensor>>,
) -> Result<(Program, Vec<Tensor>)> {
    let id = NEXT_TRACE_ID.fetch_add(1, Ordering::Relaxed);
    let mut builder = Builder {
        id,
        avals: vec![],
        consts: vec![],
        inputs: vec![],
        eqns: vec![],
        captures: vec![],
        capture_map: HashMap::new(),
        error: None,
    };
    let mut args = Vec::with_capacity(in_avals.len());
    for a in in_avals {
        let v = builder.new_var(a.clone());
        builder.inputs.push(v);
        args.push(Tensor::traced(id, v, a.clone()));
    }
    STACK.with(|s| s.borrow_mut().push(builder));
    let mut guard = PopGuard { id, armed: true };
    let result = f(args);
    let (builder, outputs) = STACK.with(|s| {
        let mut stack = s.borrow_mut();
        let top = stack.len() - 1;
        debug_assert_eq!(stack[top].id, id, "traces are nested properly");
        let outputs = result.and_then(|outs| {
            outs.iter()
                .map(|t| to_atom(&mut stack, top, t, "output", None).map(|(a, _)| a))
                .collect::<Result<Vec<_>>>()
        });
        (stack.pop().expect("the builder pushed above"), outputs)
    });
    guard.armed = false;
    if let Some(e) = builder.error {
        return Err(e);
    }
    let outputs = outputs?;
    let mut inputs = builder.inputs;
    let mut captured = Vec::with_capacity(builder.captures.len());
    for (t, v) in builder.captures {
        inputs.push(v);
        captured.push(t);
    }
    let program = Program {
        avals: builder.avals,
        consts: builder.consts,
        inputs,
        eqns: builder.eqns,
        outputs,
    };
    Ok((program, captured))
}

/// Traces a closure on trees: the argument is rebuilt from `in_def` over traced leaves of
/// the given avals.
pub(crate) fn trace_tree<I: Tree, O: Tree>(
    f: impl FnOnce(I) -> O,
    in_def: &TreeDef,
    in_avals: &[Aval],
) -> Result<TracedFn> {
    let mut out_def = None;
    let (program, captured) = trace_flat(in_avals, |leaves| {
        let arg = unflatten::<I>(in_def, leaves)?;
        let (outs, def) = flatten(&f(arg));
        out_def = Some(def);
        Ok(outs)
    })?;
    Ok(TracedFn {
        program,
        captured,
        out_def: out_def.expect("set by the traced closure"),
    })
}

/// The avals of a tree's leaves (an error if a leaf failed).
pub(crate) fn leaf_avals(leaves: &[Tensor]) -> Result<Vec<Aval>> {
    leaves.iter().map(|t| t.aval()).collect()
}

impl Program {
    /// Applies the program to tensors: computes it on concrete tensors, or emits its
    /// equations into the trace in progress. This is how a transformed program is put back
    /// into an enclosing computation.
    #[track_caller]
    pub fn call(&self, args: &[Tensor]) -> Result<Vec<Tensor>> {
        self.call_at(args, SourceLoc::caller())
    }

    /// [`Program::call`] with the location its equations are recorded at when they have
    /// none of their own.
    pub(crate) fn call_at(&self, args: &[Tensor], loc: SourceLoc) -> Result<Vec<Tensor>> {
        self.call_within(args, Some(loc))
    }

    /// [`Program::call_at`] where the location may be unknown (a pass applying a
    /// sub-program at an equation that has none).
    pub(crate) fn call_within(
        &self,
        args: &[Tensor],
        loc: Option<SourceLoc>,
    ) -> Result<Vec<Tensor>> {
        // a hand-built program may be malformed (the fields are public)
        self.check()?;
        let avals = args.iter().map(Tensor::aval).collect::<Result<Vec<_>>>()?;
        self.check_args("Program::call", &avals)?;
        let mut env = Env::bind(self, args.iter().cloned(), |a| Tensor::concrete(a.clone()));
        for e in &self.eqns {
            let ins = e
                .inputs
                .iter()
                .map(|a| env.read(a, Tensor::literal))
                .collect::<Result<Vec<_>>>()?;
            let refs: Vec<&Tensor> = ins.iter().collect();
            let outs = bind_multi(e.prim.clone(), &refs, e.loc.or(loc))?;
            for (v, out) in e.outs.iter().zip(outs) {
                env.write(*v, out);
            }
        }
        self.outputs
            .iter()
            .map(|a| env.read(a, Tensor::literal))
            .collect()
    }
}
