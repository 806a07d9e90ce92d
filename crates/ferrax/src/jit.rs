//! Compilation: `jit`, program optimization and execution plans.
//!
//! The last stage before arrays. `jit(f)` traces `f` once per input signature (tree
//! structure, shapes and dtypes), optimizes the program, turns it into a [`Plan`] and caches
//! it; later calls with the same signature only run the plan.
//!
//! **Optimization** ([`optimize`]): algebraic simplification of what transformations leave
//! behind (adding zeros, multiplying by ones, identity reshapes/transposes/conversions,
//! double negation, `select` between equal cases), constant folding of small constant
//! subcomputations, common-subexpression elimination and dead-code elimination, repeated
//! until nothing changes.
//!
//! **Plans** ([`Plan`]): each equation becomes a step with its operands resolved to slots,
//! its output aval precomputed (no shape rules at run time) and the slots it is the last user
//! of. Values are freed at their last use, and elementwise steps write into an operand's
//! buffer when that operand dies there and nothing else holds it (in-place update). Steps
//! run the fast kernels (`kernels`, strided `gemm` for matrix products, threads through
//! rayon above a size threshold) and fall back to the reference evaluator for the rest; the
//! tests hold plans equal to the reference evaluator on random programs.
//!
//! `jit` composes with every transformation: inside a trace in progress a jitted function is
//! simply traced through; `jit` of `grad`, of `vmap`, of `linearize` + apply all work, and
//! `LinearMap::apply` runs its linear program through a cached plan.

use std::cell::RefCell;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::rc::Rc;

use crate::array::{Array, Data};
use crate::buffers::{self, BufferPool};
use crate::dtype::{Aval, DType, Scalar};
use crate::error::{Error, Result};
use crate::eval::{eval_primitive, max_nan, min_nan};
use crate::fusion::{self, Group};
use crate::primitive::Primitive;
use crate::program::{Atom, Program, Var};
use crate::tensor::Tensor;
use crate::trace::{is_tracing, leaf_avals, trace_tree};
use crate::tree::{flatten, unflatten, Tree, TreeDef};

// ---------------------------------------------------------------------------------------
// Optimization passes.

fn is_const_scalar(p: &Program, defs: &HashMap<Var, usize>, a: &Atom, value: f64) -> bool {
    match a {
        Atom::Lit(s) => s.to_f64() == value && s.dtype() != DType::Bool,
        Atom::Var(v) => match defs.get(v) {
            // a broadcast of such a literal
            Some(&k) => match (&p.eqns[k].prim, &p.eqns[k].inputs[..]) {
                (Primitive::BroadcastInDim { .. }, [Atom::Lit(s)]) => {
                    s.to_f64() == value && s.dtype() != DType::Bool
                }
                _ => false,
            },
            None => false,
        },
    }
}

/// Replaces uses of variables according to `subst` (followed transitively).
fn substitute(p: &mut Program, subst: &HashMap<Var, Atom>) {
    let resolve = |a: &Atom| -> Atom {
        let mut cur = a.clone();
        while let Atom::Var(v) = &cur {
            match subst.get(v) {
                Some(next) => cur = next.clone(),
                None => break,
            }
        }
        cur
    };
    for e in &mut p.eqns {
        for a in &mut e.inputs {
            *a = resolve(a);
        }
    }
    for a in &mut p.outputs {
        *a = resolve(a);
    }
}

/// One round of algebraic simplification; returns whether anything changed.
fn simplify(p: &mut Program) -> bool {
    use Primitive::*;
    let defs: HashMap<Var, usize> = p.eqns.iter().enumerate().map(|(k, e)| (e.out, k)).collect();
    let mut subst: HashMap<Var, Atom> = HashMap::new();
    for e in &p.eqns {
        let out_aval = p.aval(e.out);
        // an operand that can stand for the output: same aval
        let same = |a: &Atom| p.atom_aval(a) == *out_aval;
        let ins = &e.inputs;
        let replacement: Option<Atom> = match &e.prim {
            Add if is_const_scalar(p, &defs, &ins[1], 0.0) && same(&ins[0]) => Some(ins[0].clone()),
            Add if is_const_scalar(p, &defs, &ins[0], 0.0) && same(&ins[1]) => Some(ins[1].clone()),
            Sub if is_const_scalar(p, &defs, &ins[1], 0.0) && same(&ins[0]) => Some(ins[0].clone()),
            Mul if is_const_scalar(p, &defs, &ins[1], 1.0) && same(&ins[0]) => Some(ins[0].clone()),
            Mul if is_const_scalar(p, &defs, &ins[0], 1.0) && same(&ins[1]) => Some(ins[1].clone()),
            Div if is_const_scalar(p, &defs, &ins[1], 1.0) && same(&ins[0]) => Some(ins[0].clone()),
            IntegerPow { y: 1 } => Some(ins[0].clone()),
            Select if ins[1] == ins[2] => Some(ins[1].clone()),
            ConvertElementType { .. }
            | Reshape { .. }
            | Squeeze { .. }
            | ExpandDims { .. }
            | BroadcastInDim { .. }
                if same(&ins[0]) =>
            {
                // same shape and dtype: the identity (broadcast_in_dim of equal shapes has
                // strictly increasing dimensions, so it is the identity too)
                Some(ins[0].clone())
            }
            Transpose { permutation } if permutation.iter().enumerate().all(|(i, &q)| i == q) => {
                Some(ins[0].clone())
            }
            ReduceSum { axes } | ReduceMax { axes } | ReduceMin { axes } if axes.is_empty() => {
                Some(ins[0].clone())
            }
            Rev { dimensions } if dimensions.is_empty() => Some(ins[0].clone()),
            Neg => match &ins[0] {
                Atom::Var(v) => defs.get(v).and_then(|&k| match &p.eqns[k].prim {
                    Neg => Some(p.eqns[k].inputs[0].clone()),
                    _ => None,
                }),
                _ => None,
            },
            _ => None,
        };
        if let Some(r) = replacement {
            subst.insert(e.out, r);
        }
    }
    if subst.is_empty() {
        return false;
    }
    substitute(p, &subst);
    true
}

/// Folds 2-d transposes into matrix products: `dot_general(transpose(x), y)` contracts `x`
/// directly (the transposed operand's single free dimension keeps the output layout), and a
/// transposed 2-d product whose only user is the transpose becomes the swapped product
/// (`(A·B)ᵀ = Bᵀ·Aᵀ`). Returns whether anything changed.
fn fold_transposes(p: &mut Program) -> bool {
    use Primitive::*;
    let defs: HashMap<Var, usize> = p.eqns.iter().enumerate().map(|(k, e)| (e.out, k)).collect();
    let mut uses: HashMap<Var, usize> = HashMap::new();
    for e in &p.eqns {
        for a in &e.inputs {
            if let Atom::Var(v) = a {
                *uses.entry(*v).or_insert(0) += 1;
            }
        }
    }
    for a in &p.outputs {
        if let Atom::Var(v) = a {
            *uses.entry(*v).or_insert(0) += 1;
        }
    }
    let transpose_2d = |a: &Atom| -> Option<Atom> {
        let Atom::Var(v) = a else { return None };
        let e = &p.eqns[*defs.get(v)?];
        match &e.prim {
            Transpose { permutation } if permutation == &[1, 0] => Some(e.inputs[0].clone()),
            _ => None,
        }
    };
    let mut changed = false;
    let mut new_eqns = p.eqns.clone();
    for (k, e) in p.eqns.iter().enumerate() {
        match &e.prim {
            DotGeneral {
                lhs_contracting,
                rhs_contracting,
                lhs_batch,
                rhs_batch,
            } if lhs_batch.is_empty() && rhs_batch.is_empty() && lhs_contracting.len() == 1 => {
                let (mut lc, mut rc) = (lhs_contracting.clone(), rhs_contracting.clone());
                let mut ins = e.inputs.clone();
                if let Some(x) = transpose_2d(&ins[0]) {
                    lc = vec![1 - lc[0]];
                    ins[0] = x;
                }
                if let Some(y) = transpose_2d(&ins[1]) {
                    rc = vec![1 - rc[0]];
                    ins[1] = y;
                }
                if ins != e.inputs {
                    new_eqns[k].inputs = ins;
                    new_eqns[k].prim = DotGeneral {
                        lhs_contracting: lc,
                        rhs_contracting: rc,
                        lhs_batch: vec![],
                        rhs_batch: vec![],
                    };
                    changed = true;
                }
            }
            Transpose { permutation } if permutation == &[1, 0] => {
                let Atom::Var(v) = &e.inputs[0] else { continue };
                let Some(&d) = defs.get(v) else { continue };
                let de = &p.eqns[d];
                if uses.get(v) != Some(&1) {
                    continue;
                }
                if let DotGeneral {
                    lhs_contracting,
                    rhs_contracting,
                    lhs_batch,
                    rhs_batch,
                } = &de.prim
                {
                    let two_d = p.atom_aval(&de.inputs[0]).ndim() == 2
                        && p.atom_aval(&de.inputs[1]).ndim() == 2;
                    if lhs_batch.is_empty() && rhs_batch.is_empty() && two_d {
                        new_eqns[k].prim = DotGeneral {
                            lhs_contracting: rhs_contracting.clone(),
                            rhs_contracting: lhs_contracting.clone(),
                            lhs_batch: vec![],
                            rhs_batch: vec![],
                        };
                        new_eqns[k].inputs = vec![de.inputs[1].clone(), de.inputs[0].clone()];
                        changed = true;
                    }
                }
            }
            _ => {}
        }
    }
    p.eqns = new_eqns;
    changed
}

/// Common-subexpression elimination; returns whether anything changed.
fn cse(p: &mut Program) -> bool {
    let mut seen: HashMap<(Primitive, Vec<Atom>), Var> = HashMap::new();
    let mut subst: HashMap<Var, Atom> = HashMap::new();
    let resolve = |subst: &HashMap<Var, Atom>, a: &Atom| match a {
        Atom::Var(v) => subst.get(v).cloned().unwrap_or_else(|| a.clone()),
        _ => a.clone(),
    };
    for e in &mut p.eqns {
        for a in &mut e.inputs {
            *a = resolve(&subst, a);
        }
        let key = (e.prim.clone(), e.inputs.clone());
        match seen.get(&key) {
            Some(&v) => {
                subst.insert(e.out, Atom::Var(v));
            }
            None => {
                seen.insert(key, e.out);
            }
        }
    }
    if subst.is_empty() {
        return false;
    }
    substitute(p, &subst);
    true
}

/// Evaluates equations whose operands are all literals or constants (outputs up to 4096
/// elements) at compile time; returns whether anything changed.
fn fold_constants(p: &mut Program) -> bool {
    let mut values: HashMap<Var, Array> = p.consts.iter().cloned().collect();
    let mut subst: HashMap<Var, Atom> = HashMap::new();
    let mut changed = false;
    for e in &p.eqns {
        if p.aval(e.out).size() > 4096 {
            continue;
        }
        let args: Option<Vec<Array>> = e
            .inputs
            .iter()
            .map(|a| match a {
                Atom::Lit(s) => Some(Array::from_scalar(*s)),
                Atom::Var(v) => values.get(v).cloned(),
            })
            .collect();
        let Some(args) = args else { continue };
        let refs: Vec<&Array> = args.iter().collect();
        let Ok(out) = eval_primitive(&e.prim, &refs) else {
            continue;
        };
        if out.ndim() == 0 {
            subst.insert(e.out, Atom::Lit(out.data().get(0)));
        }
        values.insert(e.out, out);
        changed = true;
    }
    if !changed {
        return false;
    }
    // Folded equations become constants (scalars become literals); DCE drops the rest.
    let folded: Vec<Var> = p
        .eqns
        .iter()
        .filter(|e| values.contains_key(&e.out))
        .map(|e| e.out)
        .collect();
    p.eqns.retain(|e| !values.contains_key(&e.out));
    for v in folded {
        if !subst.contains_key(&v) {
            p.consts.push((v, values[&v].clone()));
        }
    }
    substitute(p, &subst);
    true
}

/// The optimization pipeline, repeated until nothing changes; the result type-checks and
/// computes what the input computes.
///
/// A program that does not type-check ([`Program::check`]) is an error.
pub fn optimize(p: &Program) -> Result<Program> {
    p.check()?;
    Ok(optimize_checked(p))
}

/// [`optimize`] for a program known to type-check (made by the library).
fn optimize_checked(p: &Program) -> Program {
    let mut q = p.clone();
    for _ in 0..10 {
        let a = simplify(&mut q);
        let b = fold_constants(&mut q);
        let c = cse(&mut q);
        let d = fold_transposes(&mut q);
        q = q.dce();
        if !(a || b || c || d) {
            break;
        }
    }
    q
}

// ---------------------------------------------------------------------------------------
// Plans.

#[derive(Clone, Debug)]
enum Operand {
    Slot(usize),
    Value(Array),
}

#[derive(Clone, Debug)]
struct Step {
    prim: Primitive,
    args: Vec<Operand>,
    out: usize,
    out_aval: Aval,
    /// Slots whose last use is this step (freed after it).
    last: Vec<usize>,
}

/// A fused run of elementwise steps (see `fusion`).
#[derive(Clone, Debug)]
struct FusedItem {
    group: Group,
    inputs: Vec<Operand>,
    /// Slots of the kept steps' values, in step order.
    outs: Vec<usize>,
    /// Primitives of the fused steps (for evaluation counts and profiles).
    prims: Vec<Primitive>,
    /// Slots whose last use is inside the group.
    last: Vec<usize>,
}

#[derive(Clone, Debug)]
enum Item {
    Step(Step),
    Fused(FusedItem),
}

/// An optimized program ready to run on arrays.
#[derive(Clone, Debug)]
pub struct Plan {
    program: Program,
    inputs: Vec<usize>,
    in_avals: Vec<Aval>,
    items: Vec<Item>,
    outputs: Vec<Operand>,
    n_slots: usize,
    /// Buffers freed by the last run, reused by the next (see [`crate::buffers`]).
    pool: BufferPool,
}

/// Groups runs of fusible steps (same size and dtype, at least two) into fused items.
fn fuse(program: &Program, steps: Vec<Step>, last_use: &HashMap<usize, usize>) -> Vec<Item> {
    let fusible_step = |s: &Step| {
        let in_avals: Vec<Aval> = s
            .args
            .iter()
            .map(|a| match a {
                Operand::Value(v) => v.aval(),
                Operand::Slot(k) => program.avals[*k].clone(),
            })
            .collect();
        fusion::fusible(&s.prim, &s.out_aval, &in_avals)
    };
    let mut items = vec![];
    let mut k = 0;
    while k < steps.len() {
        if !fusible_step(&steps[k]) {
            items.push(Item::Step(steps[k].clone()));
            k += 1;
            continue;
        }
        let (size, dtype) = (steps[k].out_aval.size(), steps[k].out_aval.dtype);
        let mut end = k;
        while end < steps.len()
            && fusible_step(&steps[end])
            && steps[end].out_aval.size() == size
            && steps[end].out_aval.dtype == dtype
        {
            end += 1;
        }
        if end - k < 2 {
            items.push(Item::Step(steps[k].clone()));
            k += 1;
            continue;
        }
        let run = &steps[k..end];
        let produced: HashMap<usize, usize> =
            run.iter().enumerate().map(|(i, s)| (s.out, i)).collect();
        let mut inputs: Vec<Operand> = vec![];
        let mut input_of = |o: &Operand| -> usize {
            if let Operand::Slot(sl) = o {
                if let Some(p) = inputs
                    .iter()
                    .position(|x| matches!(x, Operand::Slot(y) if y == sl))
                {
                    return p;
                }
            }
            inputs.push(o.clone());
            inputs.len() - 1
        };
        let mut gsteps = vec![];
        for s in run {
            let srcs = s
                .args
                .iter()
                .map(|a| match a {
                    Operand::Slot(sl) if produced.contains_key(sl) => {
                        fusion::Src::Step(produced[sl])
                    }
                    _ => {
                        let i = input_of(a);
                        let n = match a {
                            Operand::Value(v) => v.size(),
                            Operand::Slot(sl) => program.avals[*sl].size(),
                        };
                        if matches!(s.prim, Primitive::BroadcastInDim { .. }) {
                            let operand_aval = match a {
                                Operand::Value(v) => v.aval(),
                                Operand::Slot(sl) => program.avals[*sl].clone(),
                            };
                            match fusion::broadcast_kind(&s.prim, &operand_aval) {
                                Some(fusion::BroadcastKind::Repeat(run)) => {
                                    fusion::Src::Repeated(i, run)
                                }
                                _ => fusion::Src::Tiled(i, n),
                            }
                        } else {
                            fusion::Src::Input(i)
                        }
                    }
                })
                .collect();
            gsteps.push(fusion::GroupStep {
                prim: s.prim.clone(),
                srcs,
            });
        }
        let last_index = end - 1;
        let keep: Vec<bool> = run
            .iter()
            .map(|s| last_use.get(&s.out).is_some_and(|&u| u > last_index))
            .collect();
        let outs = run
            .iter()
            .zip(&keep)
            .filter(|(_, &kp)| kp)
            .map(|(s, _)| s.out)
            .collect();
        let last = run
            .iter()
            .flat_map(|s| s.last.iter().copied())
            .filter(|sl| !produced.contains_key(sl))
            .collect();
        items.push(Item::Fused(FusedItem {
            group: Group {
                steps: gsteps,
                keep,
                size,
                dtype,
                shapes: run.iter().map(|s| s.out_aval.shape.clone()).collect(),
            },
            inputs,
            outs,
            prims: run.iter().map(|s| s.prim.clone()).collect(),
            last,
        }));
        k = end;
    }
    items
}

impl Plan {
    /// Optimizes a program and prepares it to run. A program that does not type-check
    /// ([`Program::check`]) is an error.
    pub fn new(p: &Program) -> Result<Plan> {
        p.check()?;
        Ok(Plan::from_checked(p))
    }

    /// [`Plan::new`] for a program known to type-check (made by the library's own passes).
    pub(crate) fn from_checked(p: &Program) -> Plan {
        let program = optimize_checked(p);
        let consts: HashMap<Var, Array> = program.consts.iter().cloned().collect();
        let operand = |a: &Atom| match a {
            Atom::Lit(s) => Operand::Value(Array::from_scalar(*s)),
            Atom::Var(v) => match consts.get(v) {
                Some(c) => Operand::Value(c.clone()),
                None => Operand::Slot(v.index()),
            },
        };
        // last use of every slot (outputs are used "after" every step)
        let mut last_use: HashMap<usize, usize> = HashMap::new();
        for (k, e) in program.eqns.iter().enumerate() {
            for a in &e.inputs {
                if let Atom::Var(v) = a {
                    last_use.insert(v.index(), k);
                }
            }
        }
        for a in &program.outputs {
            if let Atom::Var(v) = a {
                last_use.insert(v.index(), usize::MAX);
            }
        }
        let steps: Vec<Step> = program
            .eqns
            .iter()
            .enumerate()
            .map(|(k, e)| {
                let mut last: Vec<usize> = e
                    .inputs
                    .iter()
                    .filter_map(|a| match a {
                        Atom::Var(v) if last_use.get(&v.index()) == Some(&k) => Some(v.index()),
                        _ => None,
                    })
                    .collect();
                last.sort_unstable();
                last.dedup();
                Step {
                    prim: e.prim.clone(),
                    args: e.inputs.iter().map(operand).collect(),
                    out: e.out.index(),
                    out_aval: program.aval(e.out).clone(),
                    last,
                }
            })
            .collect();
        let items = fuse(&program, steps, &last_use);
        Plan {
            inputs: program.inputs.iter().map(|v| v.index()).collect(),
            in_avals: program.in_avals(),
            outputs: program.outputs.iter().map(operand).collect(),
            n_slots: program.avals.len(),
            pool: BufferPool::default(),
            items,
            program,
        }
    }

    /// The optimized program the plan runs.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// How many freed intermediate buffers the plan holds for its next run (a diagnostic:
    /// after one run, a plan whose large intermediates die before its end holds some).
    pub fn pooled_buffers(&self) -> usize {
        self.pool.kept()
    }

    /// Runs the plan on concrete arrays.
    pub fn run(&self, args: Vec<Array>) -> Result<Vec<Array>> {
        if args.len() != self.inputs.len() {
            return Err(Error::input(
                "Plan::run",
                format!(
                    "the plan takes {} input(s), {} given",
                    self.inputs.len(),
                    args.len()
                ),
            ));
        }
        let _installed = self.pool.install();
        let mut slots: Vec<Option<Array>> = vec![None; self.n_slots];
        for (i, ((slot, a), want)) in self.inputs.iter().zip(args).zip(&self.in_avals).enumerate() {
            if !crate::dtype::same_shape(a.shape(), &want.shape) || a.dtype() != want.dtype {
                return Err(Error::input(
                    "Plan::run",
                    format!("input {i} must be {want}, got {}", a.aval()),
                ));
            }
            slots[*slot] = Some(a);
        }
        for item in &self.items {
            let s = match item {
                Item::Step(s) => s,
                Item::Fused(f) => {
                    let t0 = profiling().then(std::time::Instant::now);
                    let ins = f
                        .inputs
                        .iter()
                        .map(|o| match o {
                            Operand::Value(v) => Ok(v.clone()),
                            Operand::Slot(k) => slots[*k].clone().ok_or_else(|| {
                                Error::check(format!("slot {k} read before it is written"))
                            }),
                        })
                        .collect::<Result<Vec<_>>>()?;
                    let outs = f.group.run(&ins)?;
                    for p in &f.prims {
                        crate::eval::count(p);
                    }
                    drop(ins);
                    for k in &f.last {
                        if let Some(a) = slots[*k].take() {
                            buffers::recycle(a);
                        }
                    }
                    for (slot, a) in f.outs.iter().zip(outs) {
                        slots[*slot] = Some(a);
                    }
                    if let Some(t0) = t0 {
                        let name = f
                            .prims
                            .iter()
                            .map(|p| p.name())
                            .collect::<Vec<_>>()
                            .join("+");
                        PROFILE.with(|p| {
                            if let Some(m) = p.borrow_mut().as_mut() {
                                let e = m.entry(format!("fused[{name}]")).or_insert((0.0, 0));
                                e.0 += t0.elapsed().as_secs_f64();
                                e.1 += 1;
                            }
                        });
                    }
                    continue;
                }
            };
            // Take the operands that die here (so their buffers may be reused in place).
            let mut args = Vec::with_capacity(s.args.len());
            for a in &s.args {
                args.push(match a {
                    Operand::Value(v) => v.clone(),
                    Operand::Slot(k) => if s.last.contains(k)
                        && s.args
                            .iter()
                            .filter(|b| matches!(b, Operand::Slot(j) if j == k))
                            .count()
                            == 1
                    {
                        slots[*k].take()
                    } else {
                        slots[*k].clone()
                    }
                    .ok_or_else(|| Error::check(format!("slot {k} read before it is written")))?,
                });
            }
            let t0 = profiling().then(std::time::Instant::now);
            let out = execute(&s.prim, &mut args, &s.out_aval)?;
            // operands that died here and were not reused in place
            args.into_iter().for_each(buffers::recycle);
            if let Some(t0) = t0 {
                record(&s.prim, t0.elapsed().as_secs_f64());
            }
            for k in &s.last {
                if let Some(a) = slots[*k].take() {
                    buffers::recycle(a);
                }
            }
            slots[s.out] = Some(out);
        }
        self.outputs
            .iter()
            .map(|o| match o {
                Operand::Value(v) => Ok(v.clone()),
                Operand::Slot(k) => slots[*k]
                    .clone()
                    .ok_or_else(|| Error::check(format!("output slot {k} was never written"))),
            })
            .collect()
    }
}

thread_local! {
    static PROFILE: std::cell::RefCell<Option<HashMap<String, (f64, usize)>>> = const { std::cell::RefCell::new(None) };
}

fn profiling() -> bool {
    PROFILE.with(|p| p.borrow().is_some())
}

fn record(prim: &Primitive, secs: f64) {
    PROFILE.with(|p| {
        if let Some(m) = p.borrow_mut().as_mut() {
            let e = m.entry(prim.to_string()).or_insert((0.0, 0));
            e.0 += secs;
            e.1 += 1;
        }
    });
}

/// Starts recording the time plans spend per primitive (with parameters) on this thread.
pub fn profile_start() {
    PROFILE.with(|p| *p.borrow_mut() = Some(HashMap::new()));
}

/// Stops recording and returns `(primitive, seconds, steps)`, the most expensive first.
pub fn profile_stop() -> Vec<(String, f64, usize)> {
    let m = PROFILE.with(|p| p.borrow_mut().take()).unwrap_or_default();
    let mut v: Vec<(String, f64, usize)> = m.into_iter().map(|(k, (t, n))| (k, t, n)).collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1));
    v
}

/// Elements above which kernels split work across threads.
const PARALLEL_THRESHOLD: usize = 1 << 16;

fn threads() -> usize {
    rayon::current_num_threads()
}

/// A buffer for the output of an elementwise step: an operand's own buffer when it is
/// unique (in place), else a fresh one.
fn take_f32(a: Array) -> Vec<f32> {
    match a.into_data() {
        Data::F32(v) => v,
        _ => unreachable!("checked f32"),
    }
}

fn take_f64(a: Array) -> Vec<f64> {
    match a.into_data() {
        Data::F64(v) => v,
        _ => unreachable!("checked f64"),
    }
}

fn chunked<T: Send + Sync + Copy>(out: &mut [T], f: impl Fn(usize, &mut [T]) + Sync) {
    use rayon::prelude::*;
    let n = out.len();
    if n >= PARALLEL_THRESHOLD && threads() > 1 {
        let chunk = n.div_ceil(threads() * 4).max(4096);
        out.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, c)| f(i * chunk, c));
    } else {
        f(0, out);
    }
}

/// The error of a fast kernel whose output buffer the allocator refused.
fn refused(prim: &Primitive, out: &Aval) -> Error {
    Error::exhausted(
        prim.name(),
        format!("cannot allocate {} bytes for a value of {out}", out.bytes()),
    )
}

/// Runs one step: the fast kernel when there is one, the reference evaluator otherwise.
fn execute(prim: &Primitive, args: &mut Vec<Array>, out: &Aval) -> Result<Array> {
    use Primitive::*;
    // the reference evaluator counts its own; fast kernels count here
    let fast = matches!(out.dtype, DType::F32 | DType::F64)
        && matches!(
            prim,
            Sin | Cos
                | Exp
                | Expm1
                | Log
                | Tanh
                | Logistic
                | Neg
                | Sqrt
                | Rsqrt
                | Abs
                | Add
                | Sub
                | Mul
                | Div
                | Max
                | Min
                | DotGeneral { .. }
                | ReduceSum { .. }
        );
    if fast {
        crate::eval::count(prim);
    }
    execute_uncounted(prim, args, out)
}

fn execute_uncounted(prim: &Primitive, args: &mut Vec<Array>, out: &Aval) -> Result<Array> {
    use Primitive::*;
    let float = matches!(out.dtype, DType::F32 | DType::F64);
    match prim {
        Sin | Cos | Exp | Expm1 | Log | Tanh | Logistic if float => {
            let (k32, k64) = crate::kernels::fast_unary(prim.name()).expect("listed");
            let x = args.pop().expect("one operand");
            let shape = x.shape().to_vec();
            let data = match out.dtype {
                DType::F32 => {
                    let mut v = take_f32(x);
                    chunked(&mut v, |_, c| {
                        // in place, through a small stack buffer so the kernel sees
                        // separate input and output slices
                        let mut tmp = [0f32; 256];
                        for part in c.chunks_mut(256) {
                            let t = &mut tmp[..part.len()];
                            t.copy_from_slice(part);
                            k32(t, part);
                        }
                    });
                    Data::F32(v)
                }
                _ => {
                    let mut v = take_f64(x);
                    chunked(&mut v, |_, c| {
                        let mut tmp = [0f64; 256];
                        for part in c.chunks_mut(256) {
                            let t = &mut tmp[..part.len()];
                            t.copy_from_slice(part);
                            k64(t, part);
                        }
                    });
                    Data::F64(v)
                }
            };
            Array::from_data(data, &shape)
        }
        Neg | Sqrt | Rsqrt | Abs if float => {
            let x = args.pop().expect("one operand");
            let shape = x.shape().to_vec();
            let data = match out.dtype {
                DType::F32 => {
                    let mut v = take_f32(x);
                    chunked(&mut v, |_, c| match prim {
                        Neg => c.iter_mut().for_each(|a| *a = -*a),
                        Sqrt => c.iter_mut().for_each(|a| *a = a.sqrt()),
                        Rsqrt => c.iter_mut().for_each(|a| *a = 1.0 / a.sqrt()),
                        _ => c.iter_mut().for_each(|a| *a = a.abs()),
                    });
                    Data::F32(v)
                }
                _ => {
                    let mut v = take_f64(x);
                    chunked(&mut v, |_, c| match prim {
                        Neg => c.iter_mut().for_each(|a| *a = -*a),
                        Sqrt => c.iter_mut().for_each(|a| *a = a.sqrt()),
                        Rsqrt => c.iter_mut().for_each(|a| *a = 1.0 / a.sqrt()),
                        _ => c.iter_mut().for_each(|a| *a = a.abs()),
                    });
                    Data::F64(v)
                }
            };
            Array::from_data(data, &shape)
        }
        Add | Sub | Mul | Div | Max | Min if float => {
            let b = args.pop().expect("two operands");
            let a = args.pop().expect("two operands");
            let shape = a.shape().to_vec();
            macro_rules! binary {
                ($t:ty, $take:ident, $variant:ident) => {{
                    let op: fn($t, $t) -> $t = match prim {
                        Add => |x, y| x + y,
                        Sub => |x, y| x - y,
                        Mul => |x, y| x * y,
                        Div => |x, y| x / y,
                        Max => max_nan::<$t>,
                        Min => min_nan::<$t>,
                        _ => unreachable!("the arm admits add, sub, mul, div, max and min"),
                    };
                    // write into whichever operand is unique, else a new buffer
                    let (mut out, other, flipped) = if a.is_unique() {
                        ($take(a), b, false)
                    } else if b.is_unique() {
                        ($take(b), a, true)
                    } else {
                        let mut v = buffers::with_capacity::<$t>(a.size())
                            .map_err(|_| refused(prim, out))?;
                        v.extend_from_slice(a.as_slice::<$t>()?);
                        (v, b, false)
                    };
                    let o = other.as_slice::<$t>()?;
                    chunked(&mut out, |start, c| {
                        let o = &o[start..start + c.len()];
                        // monomorphized loops for the common operations (no call per element)
                        let z = c.iter_mut().zip(o);
                        match (prim, flipped) {
                            (Add, _) => z.for_each(|(x, &y)| *x += y),
                            (Mul, _) => z.for_each(|(x, &y)| *x *= y),
                            (Sub, false) => z.for_each(|(x, &y)| *x -= y),
                            (Sub, true) => z.for_each(|(y, &x)| *y = x - *y),
                            (Div, false) => z.for_each(|(x, &y)| *x /= y),
                            (Div, true) => z.for_each(|(y, &x)| *y = x / *y),
                            (_, false) => z.for_each(|(x, &y)| *x = op(*x, y)),
                            (_, true) => z.for_each(|(y, &x)| *y = op(x, *y)),
                        }
                    });
                    Data::$variant(out)
                }};
            }
            let data = match out.dtype {
                DType::F32 => binary!(f32, take_f32, F32),
                _ => binary!(f64, take_f64, F64),
            };
            Array::from_data(data, &shape)
        }
        DotGeneral {
            lhs_contracting,
            rhs_contracting,
            lhs_batch,
            rhs_batch,
        } if float && lhs_batch.is_empty() && rhs_batch.is_empty() => {
            match strided_matmul(&args[0], &args[1], lhs_contracting, rhs_contracting, out)? {
                Some(a) => Ok(a),
                None => {
                    let refs: Vec<&Array> = args.iter().collect();
                    eval_primitive(prim, &refs)
                }
            }
        }
        ReduceSum { axes }
            if float
                && !axes.is_empty()
                && axes.len() < args[0].ndim()
                && axes.iter().enumerate().all(|(i, &a)| i == a) =>
        {
            // sum over leading axes: add rows (vectorized)
            let x = &args[0];
            let inner = out.size();
            macro_rules! rows {
                ($t:ty, $variant:ident) => {{
                    let v = x.as_slice::<$t>()?;
                    let mut acc = buffers::zeroed::<$t>(inner).map_err(|_| refused(prim, out))?;
                    for row in v.chunks_exact(inner.max(1)) {
                        acc.iter_mut().zip(row).for_each(|(a, b)| *a += b);
                    }
                    Data::$variant(acc)
                }};
            }
            let data = match out.dtype {
                DType::F32 => rows!(f32, F32),
                _ => rows!(f64, F64),
            };
            Array::from_data(data, &out.shape)
        }
        BroadcastInDim {
            shape,
            broadcast_dimensions,
        } if float
            && crate::dtype::same_shape(
                args[0].shape(),
                &shape[shape.len() - broadcast_dimensions.len()..],
            )
            && broadcast_dimensions
                .iter()
                .enumerate()
                .all(|(i, &d)| d == shape.len() - broadcast_dimensions.len() + i) =>
        {
            // the operand fills the trailing dimensions: tile it
            let x = &args[0];
            let reps = out.size() / x.size().max(1);
            macro_rules! tile {
                ($t:ty, $variant:ident) => {{
                    let v = x.as_slice::<$t>()?;
                    let mut o =
                        buffers::with_capacity::<$t>(out.size()).map_err(|_| refused(prim, out))?;
                    for _ in 0..reps {
                        o.extend_from_slice(v);
                    }
                    Data::$variant(o)
                }};
            }
            let data = match out.dtype {
                DType::F32 => tile!(f32, F32),
                _ => tile!(f64, F64),
            };
            Array::from_data(data, &out.shape)
        }
        BroadcastInDim { .. }
            if float
                && matches!(
                    fusion::broadcast_kind(prim, &args[0].aval()),
                    Some(fusion::BroadcastKind::Repeat(_))
                ) =>
        {
            // each operand element repeated along the trailing dimensions
            let x = &args[0];
            let run = out.size() / x.size().max(1);
            macro_rules! rep {
                ($t:ty, $variant:ident) => {{
                    let v = x.as_slice::<$t>()?;
                    let mut o =
                        buffers::with_capacity::<$t>(out.size()).map_err(|_| refused(prim, out))?;
                    for &e in v {
                        o.extend(std::iter::repeat_n(e, run));
                    }
                    Data::$variant(o)
                }};
            }
            let data = match out.dtype {
                DType::F32 => rep!(f32, F32),
                _ => rep!(f64, F64),
            };
            Array::from_data(data, &out.shape)
        }
        ReduceSum { axes } if float && axes.len() == args[0].ndim() => {
            // a full sum: pairwise-friendly chunked accumulation
            let x = &args[0];
            let v = match out.dtype {
                DType::F32 => Scalar::F32(sum_f32(x.as_slice::<f32>()?)),
                _ => Scalar::F64(sum_f64(x.as_slice::<f64>()?)),
            };
            Ok(Array::from_scalar(v))
        }
        _ => {
            let refs: Vec<&Array> = args.iter().collect();
            eval_primitive(prim, &refs)
        }
    }
}

fn sum_f32(v: &[f32]) -> f32 {
    // 16 partial sums (vectorizes), f64 accumulation per block for accuracy
    let mut total = 0f64;
    for block in v.chunks(4096) {
        let mut acc = [0f32; 16];
        let mut it = block.chunks_exact(16);
        for c in &mut it {
            for i in 0..16 {
                acc[i] += c[i];
            }
        }
        let mut s: f64 = acc.iter().map(|&a| a as f64).sum();
        s += it.remainder().iter().map(|&a| a as f64).sum::<f64>();
        total += s;
    }
    total as f32
}

fn sum_f64(v: &[f64]) -> f64 {
    let mut acc = [0f64; 8];
    let mut it = v.chunks_exact(8);
    for c in &mut it {
        for i in 0..8 {
            acc[i] += c[i];
        }
    }
    acc.iter().sum::<f64>() + it.remainder().iter().sum::<f64>()
}

/// A matrix product of 1-d/2-d operands through `gemm` with the operands' own strides (no
/// copies for transposed layouts). `None` when the layout is not one of these.
fn strided_matmul(
    l: &Array,
    r: &Array,
    lc: &[usize],
    rc: &[usize],
    out: &Aval,
) -> Result<Option<Array>> {
    if lc.len() != 1 || rc.len() != 1 || l.ndim() > 2 || r.ndim() > 2 {
        return Ok(None);
    }
    let (lc, rc) = (lc[0], rc[0]);
    // lhs as m×k with (row stride, col stride), rhs as k×n
    let (m, k, lrs, lcs) = match (l.ndim(), lc) {
        (1, 0) => (1, l.shape()[0], 0isize, 1isize),
        (2, 1) => (l.shape()[0], l.shape()[1], l.shape()[1] as isize, 1),
        (2, 0) => (l.shape()[1], l.shape()[0], 1, l.shape()[1] as isize),
        _ => return Ok(None),
    };
    let (n, rrs, rcs) = match (r.ndim(), rc) {
        (1, 0) => (1, 1isize, 0isize),
        (2, 0) => (r.shape()[1], r.shape()[1] as isize, 1),
        (2, 1) => (r.shape()[0], 1, r.shape()[1] as isize),
        _ => return Ok(None),
    };
    let flops = m * n * k;
    let par = if flops >= (1 << 18) && threads() > 1 {
        gemm::Parallelism::Rayon(threads())
    } else {
        gemm::Parallelism::None
    };
    macro_rules! go {
        ($t:ty, $variant:ident) => {{
            let (a, b) = (l.as_slice::<$t>()?, r.as_slice::<$t>()?);
            // gemm reads through raw pointers: the strided matrices must lie in the buffers
            if !within(a.len(), m, k, lrs, lcs) || !within(b.len(), k, n, rrs, rcs) {
                return Err(Error::internal(format!(
                    "dot_general: operands of {} and {} elements do not hold {m}x{k} and {k}x{n} matrices",
                    a.len(),
                    b.len()
                )));
            }
            let mut dst = buffers::zeroed::<$t>(m * n).map_err(|_| {
                Error::exhausted("dot_general", format!("cannot allocate {} bytes for a value of {out}", out.bytes()))
            })?;
            if k > 0 {
                // SAFETY: a is m×k with strides (lrs, lcs), b is k×n with (rrs, rcs), both
                // within their buffers by construction from the shapes above; dst is a
                // fresh contiguous m×n buffer; alpha = 0 with read_dst = false overwrites it.
                unsafe {
                    gemm::gemm(
                        m,
                        n,
                        k,
                        dst.as_mut_ptr(),
                        1,
                        n as isize,
                        false,
                        a.as_ptr(),
                        lcs,
                        lrs,
                        b.as_ptr(),
                        rcs,
                        rrs,
                        0 as $t,
                        1 as $t,
                        false,
                        false,
                        false,
                        par,
                    );
                }
            }
            Data::$variant(dst)
        }};
    }
    let data = match out.dtype {
        DType::F32 => go!(f32, F32),
        DType::F64 => go!(f64, F64),
        _ => return Ok(None),
    };
    Ok(Some(Array::from_data(data, &out.shape)?))
}

/// Whether a `rows`×`cols` matrix with the given (non-negative) element strides lies
/// within a buffer of `len` elements.
fn within(len: usize, rows: usize, cols: usize, row_stride: isize, col_stride: isize) -> bool {
    if rows == 0 || cols == 0 {
        return true;
    }
    let last = (rows - 1)
        .checked_mul(row_stride as usize)
        .and_then(|a| (cols - 1).checked_mul(col_stride as usize).map(|b| (a, b)))
        .and_then(|(a, b)| a.checked_add(b));
    row_stride >= 0 && col_stride >= 0 && last.is_some_and(|i| i < len)
}

// ---------------------------------------------------------------------------------------
// jit.

type Signature = (TreeDef, Vec<Aval>);

struct Compiled {
    plan: Plan,
    out_def: TreeDef,
}

/// A function compiled per input signature. See [`jit`].
pub struct Jit<I, O, F> {
    f: F,
    cache: RefCell<HashMap<Signature, Rc<Compiled>>>,
    /// The signature of the last call and its plan: checked first, without allocating.
    last: RefCell<Option<(Signature, Rc<Compiled>)>>,
    _types: PhantomData<fn(I) -> O>,
}

/// Compiles `f`: traced once per input signature (tree structure, shapes, dtypes), optimized
/// and run through a cached plan on later calls. Inside another transformation the jitted
/// function is traced through like any other.
///
/// ```
/// use ferrax::{grad, jit, Array, Tensor};
/// let f = jit(|x: Tensor| grad(|z: Tensor| (z.sin() * &z).sum_all(), &x).unwrap());
/// let x = Tensor::new(Array::from_slice(&[0.5f64, 1.0]));
/// let g = f.call(&x).unwrap();
/// assert!((g.to_vec::<f64>().unwrap()[0] - (0.5f64.sin() + 0.5 * 0.5f64.cos())).abs() < 1e-15);
/// f.call(&x).unwrap(); // cached: no tracing
/// assert_eq!(f.cache_size(), 1);
/// ```
pub fn jit<I: Tree, O: Tree, F: Fn(I) -> O>(f: F) -> Jit<I, O, F> {
    Jit {
        f,
        cache: RefCell::new(HashMap::new()),
        last: RefCell::new(None),
        _types: PhantomData,
    }
}

impl<I: Tree, O: Tree, F: Fn(I) -> O> Jit<I, O, F> {
    fn compiled(&self, def: &TreeDef, avals: &[Aval]) -> Result<Rc<Compiled>> {
        let key = (def.clone(), avals.to_vec());
        if let Some(c) = self.cache.borrow().get(&key) {
            return Ok(c.clone());
        }
        let traced = trace_tree(&self.f, def, avals)?;
        let c = Rc::new(Compiled {
            plan: Plan::from_checked(&traced.program),
            out_def: traced.out_def,
        });
        self.cache.borrow_mut().insert(key, c.clone());
        Ok(c)
    }

    /// Calls the compiled function.
    pub fn call(&self, x: &I) -> Result<O> {
        let (leaves, def) = flatten(x);
        if is_tracing() {
            // Inside another transformation: trace through.
            let arg = unflatten::<I>(&def, leaves)?;
            return Ok((self.f)(arg));
        }
        // Fast path: the same signature as the last call (compared in place).
        let hit = self.last.borrow().as_ref().and_then(|((d, avals), c)| {
            let same = *d == def
                && avals.len() == leaves.len()
                && leaves.iter().zip(avals).all(|(t, a)| {
                    crate::dtype::same_shape(t.shape(), &a.shape) && t.dtype() == Some(a.dtype)
                });
            same.then(|| c.clone())
        });
        let c = match hit {
            Some(c) => c,
            None => {
                let avals = leaf_avals(&leaves)?;
                let c = self.compiled(&def, &avals)?;
                *self.last.borrow_mut() = Some(((def, avals), c.clone()));
                c
            }
        };
        let arrays = leaves
            .iter()
            .map(|t| t.array())
            .collect::<Result<Vec<_>>>()?;
        let outs = c.plan.run(arrays)?;
        unflatten(&c.out_def, outs.into_iter().map(Tensor::new).collect())
    }

    /// The optimized program for arguments shaped like `x` (compiling it if needed).
    pub fn program(&self, x: &I) -> Result<Program> {
        let (leaves, def) = flatten(x);
        let avals = leaf_avals(&leaves)?;
        Ok(self.compiled(&def, &avals)?.plan.program().clone())
    }

    /// How many signatures have been compiled.
    pub fn cache_size(&self) -> usize {
        self.cache.borrow().len()
    }
}

/// Runs a program through a fresh plan (optimize + plan + run): for one-off evaluations
/// that should take the fast kernels.
pub fn run_compiled(p: &Program, args: Vec<Array>) -> Result<Vec<Array>> {
    Plan::new(p)?.run(args)
}
