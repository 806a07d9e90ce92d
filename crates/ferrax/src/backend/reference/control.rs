//! Control flow in the reference evaluator: `cond` runs the branch its index picks, `scan`
//! runs its body once per iteration, as a loop.
//!
//! The definition the compiled backend and every transformation of control flow are tested
//! against. The index of `cond` is clamped to the branches, as JAX clamps it; `scan` slices
//! its xs along axis 0 (from the end when `reverse`) and stacks the ys in iteration order
//! of the slices, so `ys[i]` always belongs to `xs[i]`.

use crate::backend::reference::eval_primitive;
use crate::backend::reference::while_linear;
use crate::ir::{ensure_allocatable, Array, Closed, Error, Primitive, Result, ScanShape};

/// Evaluates one equation of any primitive: its outputs.
pub(crate) fn eval_equation(prim: &Primitive, args: &[&Array]) -> Result<Vec<Array>> {
    match prim {
        Primitive::Cond { branches } => eval_cond(branches, args),
        Primitive::While {
            cond,
            body,
            n_cond_consts,
            n_body_consts,
            max_steps,
            ..
        } => {
            check("while", prim, args)?;
            let (cc, rest) = args.split_at(*n_cond_consts);
            let (bc, carry) = rest.split_at(*n_body_consts);
            let carry: Vec<Array> = carry.iter().map(|a| (*a).clone()).collect();
            let owned = |xs: &[&Array]| xs.iter().map(|a| (*a).clone()).collect::<Vec<_>>();
            eval_while(
                (cond.program(), body.program()),
                &owned(cc),
                &owned(bc),
                carry,
                *max_steps,
            )
            .map(|(carry, _)| carry)
        }
        // checkpoint, custom_jvp, custom_vjp (their body), custom_lin (its forward map)
        Primitive::Checkpoint { .. }
        | Primitive::CustomJvp { .. }
        | Primitive::CustomVjp { .. }
        | Primitive::CustomLin { .. } => {
            check(prim.name(), prim, args)?;
            let body = prim
                .callee()
                .ok_or_else(|| Error::internal("a call without a callee"))?;
            let operands: Vec<Array> = args.iter().map(|a| (*a).clone()).collect();
            body.program().eval_checked(&operands)
        }
        Primitive::NamedMap {
            body,
            axis_name,
            axis_size,
        } => {
            check("named_map", prim, args)?;
            super::named_map::eval_named_map(body, axis_name, *axis_size, args)
        }
        Primitive::WhileLinear { body, step, .. } => {
            check("while_linear", prim, args)?;
            let shape = while_linear::Shape::of(prim)
                .ok_or_else(|| Error::internal("while_linear: no counts"))?;
            let fixed = fixed_avals(step, shape.n_lin_consts);
            let operands = args.iter().map(|a| (*a).clone()).collect();
            let n_carry = body.program().outputs.len();
            let (b, st) = (body.program(), step.program());
            while_linear::run(
                shape,
                operands,
                n_carry,
                &fixed,
                &mut |ins| b.eval_checked(&ins),
                &mut |ins| st.eval_checked(&ins),
                &|a, b| crate::backend::eval_primitive(&Primitive::Add, &[a, b]),
            )
        }
        _ => match prim.as_scan() {
            Some((body, s)) => eval_scan(prim, body, s, args),
            // every other primitive has one output
            None => Ok(vec![eval_primitive(prim, args)?]),
        },
    }
}

/// Checks the operands against the primitive's rule (as `eval_primitive` does).
fn check(prim_name: &str, prim: &Primitive, args: &[&Array]) -> Result<()> {
    let avals: Vec<_> = args.iter().map(|a| a.aval()).collect();
    let refs: Vec<_> = avals.iter().collect();
    prim.out_avals(&refs).map(|_| ()).map_err(|e| match e {
        Error::Check { msg } => Error::shape(prim_name, msg),
        e => e,
    })
}

/// The branch an index picks: clamped to the branches.
pub(crate) fn branch_index(index: &Array, n: usize) -> Result<usize> {
    let i = index.item()?.to_f64();
    Ok(if i <= 0.0 { 0 } else { (i as usize).min(n - 1) })
}

/// Runs a while loop: the body on its consts and the carry, as long as the cond (on its
/// consts and the carry) gives true. A loop that never ends runs forever, as a Rust `loop`
/// would, unless `max_steps` (0: none) bounds it: a loop whose cond still holds after that
/// many steps is an error. Returns the final carry and the steps taken.
pub(crate) fn eval_while(
    (cond, body): (&crate::ir::Program, &crate::ir::Program),
    cond_consts: &[Array],
    body_consts: &[Array],
    mut carry: Vec<Array>,
    max_steps: usize,
) -> Result<(Vec<Array>, usize)> {
    let mut steps = 0usize;
    loop {
        let mut ins = cond_consts.to_vec();
        ins.extend(carry.iter().cloned());
        let go = cond.eval_checked(&ins)?;
        if go[0].item()?.to_f64() == 0.0 {
            return Ok((carry, steps));
        }
        too_many_steps(steps, max_steps)?;
        steps += 1;
        let mut ins = body_consts.to_vec();
        ins.append(&mut carry);
        carry = body.eval_checked(&ins)?;
    }
}

/// The error of a loop whose cond still holds after `max_steps` (0: no bound) steps.
pub(crate) fn too_many_steps(steps: usize, max_steps: usize) -> Result<()> {
    if max_steps > 0 && steps >= max_steps {
        return Err(Error::input(
            "while",
            format!("the loop ran its max_steps = {max_steps} steps and its cond still holds"),
        ));
    }
    Ok(())
}

/// The avals of a transposed `while_linear`'s first outputs, the fixed tangents'
/// cotangents (the step gives them first).
pub(crate) fn fixed_avals(step: &Closed, n_lin_consts: usize) -> Vec<crate::ir::Aval> {
    let outs = step.program().out_avals();
    outs[..n_lin_consts.min(outs.len())].to_vec()
}

fn eval_cond(branches: &[Closed], args: &[&Array]) -> Result<Vec<Array>> {
    let prim = Primitive::Cond {
        branches: branches.to_vec(),
    };
    check("cond", &prim, args)?;
    let i = branch_index(args[0], branches.len())?;
    let operands: Vec<Array> = args[1..].iter().map(|a| (*a).clone()).collect();
    branches[i].program().eval_checked(&operands)
}

fn eval_scan(prim: &Primitive, body: &Closed, s: ScanShape, args: &[&Array]) -> Result<Vec<Array>> {
    let ScanShape {
        n_consts,
        n_carry,
        length,
        reverse,
    } = s;
    check("scan", prim, args)?;
    let p = body.program();
    let n_fixed = n_consts + n_carry;
    let consts: Vec<Array> = args[..n_consts].iter().map(|a| (*a).clone()).collect();
    let mut carry: Vec<Array> = args[n_consts..n_fixed]
        .iter()
        .map(|a| (*a).clone())
        .collect();
    let xs = &args[n_fixed..];
    let out_avals = p.out_avals();
    // the stacked ys must fit before the loop runs (the length is the user's); this
    // evaluator also holds one array per row until it stacks them, so a row costs its
    // handle even when it is empty
    for y in &out_avals[n_carry..] {
        let row = y.bytes().saturating_add(std::mem::size_of::<Array>());
        ensure_allocatable("scan", y, row.saturating_mul(length))?;
    }
    let mut ys: Vec<Vec<Array>> = vec![Vec::new(); out_avals.len() - n_carry];
    for step in 0..length {
        let i = if reverse { length - 1 - step } else { step };
        let mut inputs = consts.clone();
        inputs.append(&mut carry);
        for x in xs {
            inputs.push(x.row(i)?);
        }
        let mut outs = p.eval_checked(&inputs)?;
        let rest = outs.split_off(n_carry);
        carry = outs;
        for (k, y) in rest.into_iter().enumerate() {
            ys[k].push(y);
        }
    }
    if reverse {
        for y in &mut ys {
            y.reverse();
        }
    }
    let mut result = carry;
    for (k, rows) in ys.into_iter().enumerate() {
        result.push(Array::stack(&rows, &out_avals[n_carry + k], length)?);
    }
    Ok(result)
}
