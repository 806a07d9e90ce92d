//! Optimization: program-to-program simplification before compilation.
//!
//! What transformations leave behind is simplified away (adding zeros, multiplying by ones,
//! identity reshapes/transposes/conversions/pads/slices, double negation, `select` between equal cases),
//! small constant subcomputations are folded, common subexpressions merged, 2-d transposes
//! folded into matrix products, and dead code dropped, repeated until nothing changes; loops
//! and branches are optimized inside, and lose the carries and outputs nothing reads
//! (`optimize::control`). The
//! result type-checks and computes what the input computes (golden tests pin the texts). Any
//! backend can run on its output; the CPU plans (`backend::cpu`) do.

pub(crate) mod control;
pub(crate) mod loops;
pub(crate) mod ys_after;

use std::collections::HashMap;

use crate::backend::eval_primitive;
use crate::ir::{Array, Atom, Data, Primitive, Program, Result, Scalar, Var};
use crate::passes::optimize::control::{optimize_subprograms, prune_control};
use crate::passes::optimize::loops::restructure_loops;

/// The scalar an atom certainly holds everywhere: a literal, or a broadcast of one.
fn const_scalar(p: &Program, defs: &HashMap<Var, usize>, a: &Atom) -> Option<Scalar> {
    match a {
        Atom::Lit(s) => Some(*s),
        Atom::Var(v) => match (&p.eqns[*defs.get(v)?].prim, &p.eqns[defs[v]].inputs[..]) {
            (Primitive::BroadcastInDim { .. }, [Atom::Lit(s)]) => Some(*s),
            _ => None,
        },
    }
}

/// Rewrites must give the same bits as the program they replace (the reference evaluator is
/// the oracle), so each identity is the exact one: `x + (-0.0)` and `x - (+0.0)` are `x` for
/// every float including the zeros, while `x + 0.0` turns -0.0 into +0.0 and is kept.
fn is_identity(s: Option<Scalar>, of: Primitive) -> bool {
    let Some(s) = s else { return false };
    match (of, s) {
        (Primitive::Add, Scalar::F32(x)) => x == 0.0 && x.is_sign_negative(),
        (Primitive::Add, Scalar::F64(x)) => x == 0.0 && x.is_sign_negative(),
        (Primitive::Sub, Scalar::F32(x)) => x == 0.0 && x.is_sign_positive(),
        (Primitive::Sub, Scalar::F64(x)) => x == 0.0 && x.is_sign_positive(),
        (Primitive::Add | Primitive::Sub, Scalar::I32(_) | Scalar::I64(_)) => s.to_f64() == 0.0,
        (Primitive::Mul | Primitive::Div, Scalar::Bool(_)) => false,
        (Primitive::Mul | Primitive::Div, _) => s.to_f64() == 1.0,
        _ => false,
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

/// The equation defining each output of a single-output equation. The rewrites below match
/// single-output primitives only; control flow (several outputs, or none) is left as it is.
fn single_output_defs(p: &Program) -> HashMap<Var, usize> {
    p.eqns
        .iter()
        .enumerate()
        .filter(|(_, e)| !e.prim.is_control_flow())
        .map(|(k, e)| (e.out(), k))
        .collect()
}

/// One round of algebraic simplification; returns whether anything changed.
fn simplify(p: &mut Program) -> bool {
    use Primitive::*;
    let defs = single_output_defs(p);
    let mut subst: HashMap<Var, Atom> = HashMap::new();
    for e in p.eqns.iter().filter(|e| !e.prim.is_control_flow()) {
        let out_aval = p.aval(e.out());
        // an operand that can stand for the output: same aval
        let same = |a: &Atom| p.atom_aval(a) == *out_aval;
        let identity =
            |a: &Atom, of: &Primitive| is_identity(const_scalar(p, &defs, a), of.clone());
        let ins = &e.inputs;
        let replacement: Option<Atom> = match &e.prim {
            Add | Mul if identity(&ins[1], &e.prim) && same(&ins[0]) => Some(ins[0].clone()),
            Add | Mul if identity(&ins[0], &e.prim) && same(&ins[1]) => Some(ins[1].clone()),
            Sub | Div if identity(&ins[1], &e.prim) && same(&ins[0]) => Some(ins[0].clone()),
            IntegerPow { y: 1 } => Some(ins[0].clone()),
            Select if ins[1] == ins[2] => Some(ins[1].clone()),
            ConvertElementType { .. }
            | Reshape { .. }
            | Squeeze { .. }
            | ExpandDims { .. }
            | BroadcastInDim { .. }
            | Pad { .. }
            | Slice { .. }
                if same(&ins[0]) =>
            {
                // same shape and dtype: the identity (broadcast_in_dim of equal shapes has
                // strictly increasing dimensions; a pad that keeps the shape has no widths,
                // or interior ones in a dimension of one element; a slice that keeps it
                // starts at 0 and steps over nothing: the identity too). A matrix product's
                // transpose leaves such pads and slices around `[n, 1]` values.
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
            subst.insert(e.out(), r);
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
/// (`(A·B)ᵀ = Bᵀ·Aᵀ`), as does a transposed sum of two such products (`(A·B + C·D)ᵀ =
/// Bᵀ·Aᵀ + Dᵀ·Cᵀ`: a matrix cotangent of a jvp of a gradient, the MLP's hvp had three), the
/// transpose left as an identity that `simplify` removes. Returns whether anything changed.
fn fold_transposes(p: &mut Program) -> bool {
    use Primitive::*;
    let defs = single_output_defs(p);
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
                } else if let Add = &de.prim {
                    // the sum's two terms: 2-d products read by the sum alone
                    let swappable = |a: &Atom| -> Option<usize> {
                        let Atom::Var(t) = a else { return None };
                        let d = *defs.get(t)?;
                        let te = &new_eqns[d];
                        let DotGeneral {
                            lhs_batch,
                            rhs_batch,
                            ..
                        } = &te.prim
                        else {
                            return None;
                        };
                        let two_d = p.atom_aval(&te.inputs[0]).ndim() == 2
                            && p.atom_aval(&te.inputs[1]).ndim() == 2;
                        (uses.get(t) == Some(&1)
                            && lhs_batch.is_empty()
                            && rhs_batch.is_empty()
                            && two_d)
                            .then_some(d)
                    };
                    let (Some(d1), Some(d2)) = (swappable(&de.inputs[0]), swappable(&de.inputs[1]))
                    else {
                        continue;
                    };
                    for d in [d1, d2] {
                        let te = &mut new_eqns[d];
                        if let DotGeneral {
                            lhs_contracting,
                            rhs_contracting,
                            ..
                        } = &mut te.prim
                        {
                            std::mem::swap(lhs_contracting, rhs_contracting);
                        }
                        te.inputs.swap(0, 1);
                        let out = te.out().index();
                        p.avals[out].shape.reverse();
                    }
                    p.avals[v.index()].shape.reverse();
                    new_eqns[k].prim = Transpose {
                        permutation: vec![0, 1],
                    };
                    changed = true;
                }
            }
            _ => {}
        }
    }
    p.eqns = new_eqns;
    changed
}

/// Common-subexpression elimination; returns whether anything changed. An equation equal to
/// an earlier one stands for it output by output (control flow has several, or none), and a
/// constant that is the same array as an earlier one (one buffer, one shape: a value
/// captured twice, as a composition of two linear maps captures their shared residuals)
/// stands for it.
fn cse(p: &mut Program) -> bool {
    let mut seen: HashMap<(Primitive, Vec<Atom>), Vec<Var>> = HashMap::new();
    let mut subst: HashMap<Var, Atom> = HashMap::new();
    let mut first_const: HashMap<(*const Data, Vec<usize>), Var> = HashMap::new();
    for (v, a) in &p.consts {
        let key = (std::ptr::from_ref(a.data()), a.shape().to_vec());
        match first_const.get(&key) {
            Some(w) => {
                subst.insert(*v, Atom::Var(*w));
            }
            None => {
                first_const.insert(key, *v);
            }
        }
    }
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
            Some(outs) => {
                for (v, w) in e.outs.iter().zip(outs) {
                    subst.insert(*v, Atom::Var(*w));
                }
            }
            None => {
                seen.insert(key, e.outs.clone());
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
/// elements) at compile time; returns whether anything changed. Control flow is not folded:
/// it runs when the program runs, where its evaluations are counted.
fn fold_constants(p: &mut Program) -> bool {
    let mut values: HashMap<Var, Array> = p.consts.iter().cloned().collect();
    let mut subst: HashMap<Var, Atom> = HashMap::new();
    let mut changed = false;
    // control flow is not folded: a loop's cost is not bounded by its output's size
    for e in p.eqns.iter().filter(|e| !e.prim.is_control_flow()) {
        if p.aval(e.out()).size() > 4096 {
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
            subst.insert(e.out(), Atom::Lit(out.data().get(0)));
        }
        values.insert(e.out(), out);
        changed = true;
    }
    if !changed {
        return false;
    }
    // Folded equations become constants (scalars become literals); DCE drops the rest.
    let folded: Vec<Var> = p
        .eqns
        .iter()
        .filter(|e| !e.prim.is_control_flow() && values.contains_key(&e.out()))
        .map(|e| e.out())
        .collect();
    p.eqns
        .retain(|e| e.prim.is_control_flow() || !values.contains_key(&e.out()));
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
pub(crate) fn optimize_checked(p: &Program) -> Program {
    // loops and branches: invariants out of loops first, then each sub-program optimized
    let mut q = restructure_loops(&optimize_subprograms(p));
    for _ in 0..10 {
        let a = simplify(&mut q);
        let b = fold_constants(&mut q);
        let c = cse(&mut q);
        let d = fold_transposes(&mut q);
        let e = prune_control(&mut q);
        q = q.dce();
        if !(a || b || c || d || e) {
            break;
        }
    }
    q
}
