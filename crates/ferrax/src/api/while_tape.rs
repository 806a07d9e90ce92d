//! Linearizing a `while` loop on arrays: the loop as a scan of its trip count, whose
//! linearization is a tape.
//!
//! Part of `linearize` (`linear_map.rs`), before the jvp pass. A while loop's trip count is
//! known only when it runs and avals are static, so a loop linearized inside a trace (under
//! `jit`, `vmap` or `jvp`) becomes a `while_linear` that stores one carry and the count and
//! recomputes the primal carries when applied (`passes/partial_eval/while_loop.rs`). When
//! `linearize` runs on arrays, though, the count can be known before the program is split:
//! this module runs the program up to its last top-level loop, counts each loop's steps, and
//! puts in its place a `scan` of that many steps of its body (the cond dropped). At these
//! inputs both programs do the same operations on the same values, and the count is locally
//! constant, so they have the same derivative too. The scan's linearization then stacks each
//! step's residuals (a tape whose length is the trip count, found at run time) and its
//! linear program is a scan over them, which `transpose` runs from the last step to the
//! first: applying the map or its transpose does no primal work.
//!
//! Only loops that keep every carry (no `max_checkpoints`) become scans: a bound asks for
//! memory that does not grow with the steps, which the recomputing sweep gives. A loop inside
//! other control flow (a scan's body, a cond's branch, a checkpoint) may take a different
//! count each time it runs and stays a loop. The live part of the program before the last
//! such loop runs twice (once here to count, once as the primal part of the split). The tape
//! is stored whether the map is then transposed or applied forward (`jacfwd`), as every
//! other residual is.

use crate::backend::reference::{eval_equation, eval_while};
use crate::ir::{Array, Env, Equation, Primitive, Program, Result, ScanShape, SourceLoc};

/// Whether `e` is a loop that linearizes to a tape when its trip count is known.
fn taped(e: &Equation) -> bool {
    matches!(e.prim, Primitive::While { checkpoints: 0, .. })
}

/// `p`, without the equations its outputs do not need, with each top-level `while` that
/// keeps every carry replaced by a `scan` of the steps it takes on `args` (`None` when `p`
/// has no such loop). Errors are those of running `p` (a loop past its `max_steps`, say), at
/// the equation's location or else `loc` (the call of `linearize`).
pub(crate) fn loops_as_scans(
    p: &Program,
    args: &[Array],
    loc: SourceLoc,
) -> Result<Option<Program>> {
    if !p.eqns.iter().any(taped) {
        return Ok(None);
    }
    p.check()?;
    // only what the outputs need runs (a dead loop may never end, or pass its max_steps)
    let p = &p.dce();
    let Some(last) = p.eqns.iter().rposition(taped) else {
        return Ok(None);
    };
    let avals: Vec<_> = args.iter().map(Array::aval).collect();
    p.check_args("linearize", &avals)?;
    let mut env = Env::bind(p, args.iter().cloned(), Array::clone);
    let mut out = p.clone();
    for (e, slot) in p.eqns[..=last].iter().zip(&mut out.eqns) {
        let ins = e
            .inputs
            .iter()
            .map(|a| env.read(a, Array::from_scalar))
            .collect::<Result<Vec<_>>>()?;
        let at = |err: crate::ir::Error| err.with_loc(e.loc.unwrap_or(loc));
        let outs = match &e.prim {
            Primitive::While {
                cond,
                body,
                n_cond_consts: ncc,
                n_body_consts: nbc,
                max_steps,
                checkpoints: 0,
            } => {
                let (cc, rest) = ins.split_at(*ncc);
                let (bc, carry) = rest.split_at(*nbc);
                let (carry, steps) = eval_while(
                    (cond.program(), body.program()),
                    cc,
                    bc,
                    carry.to_vec(),
                    *max_steps,
                )
                .map_err(at)?;
                let shape = ScanShape {
                    n_consts: *nbc,
                    n_carry: carry.len(),
                    length: steps,
                    reverse: false,
                };
                *slot = Equation {
                    prim: Primitive::scan(body.clone(), shape),
                    inputs: e.inputs[*ncc..].to_vec(),
                    outs: e.outs.clone(),
                    loc: e.loc,
                };
                carry
            }
            prim => {
                let refs: Vec<&Array> = ins.iter().collect();
                eval_equation(prim, &refs).map_err(at)?
            }
        };
        for (v, x) in e.outs.iter().zip(outs) {
            env.write(*v, x);
        }
    }
    out.check()?;
    Ok(Some(out))
}
