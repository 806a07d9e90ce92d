//! Running `while_linear`, the linear part of a linearized while loop, and its checkpointed
//! reverse sweep.
//!
//! Part of the reference backend, shared with the compiled plans: each hands in how to
//! run the loop's two sub-programs (the primal `body` and the linear `step`), and this module
//! decides which steps run and in what order.
//!
//! * **Forward**, the tangent carry is pushed through the `n` steps in order, the primal
//!   carry advanced beside it from `x0`: `n - 1` body evaluations and `n` steps.
//! * **Transposed**, the steps run from the last to the first, each needing the primal carry
//!   of its own step, which only a forward run from `x0` can give. With no bound
//!   (`checkpoints = 0`) every carry is recorded on the way (`n - 1` body evaluations, `n`
//!   carries alive at the peak). With a bound of `c` carries (counting `x0`), the sweep is
//!   the binomial schedule of Griewank's Revolve, offline since `n` is known when it runs: a
//!   segment of `L` steps with `s` free slots stores the carry `k` steps in, where `r` is the
//!   least repetition count with `C(s + r, s) ≥ L` and `k = L - C(s - 1 + r, s - 1)`, then
//!   reverses the part after it with one slot fewer and the part before it with the same
//!   slots. No more than `c` carries are stored at once (besides the one being advanced),
//!   and each step's carry is computed at
//!   most `r` times for the `r` of the whole loop (`L = n`, `s = c - 1`): at most `r · n`
//!   body evaluations, with `r = 1` (every carry stored) when `c ≥ n`, and `r = 3` for
//!   10,000 steps in 100 carries. One carry (`c = 1`) makes the sweep quadratic.
//!
//! The counts are kept per thread ([`while_linear_stats`]) so tests can check the bound.

use std::cell::Cell;

use crate::ir::{ensure_allocatable, Array, Aval, Error, Result};

/// What runs a sub-program on its inputs.
pub(crate) type Run<'a> = dyn FnMut(Vec<Array>) -> Result<Vec<Array>> + 'a;

/// A `while_linear` equation's counts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shape {
    pub n_consts: usize,
    pub n_lin_consts: usize,
    pub transposed: bool,
    pub checkpoints: usize,
}

impl Shape {
    /// The counts of a `while_linear` primitive (`None` for another).
    pub(crate) fn of(prim: &crate::ir::Primitive) -> Option<Shape> {
        match prim {
            crate::ir::Primitive::WhileLinear {
                n_consts,
                n_lin_consts,
                transposed,
                checkpoints,
                ..
            } => Some(Shape {
                n_consts: *n_consts,
                n_lin_consts: *n_lin_consts,
                transposed: *transposed,
                checkpoints: *checkpoints,
            }),
            _ => None,
        }
    }
}

/// What the sweeps of `while_linear` did on this thread since the last
/// [`reset_while_linear_stats`]: primal body evaluations, linear steps, and the most primal
/// carries held at once by one sweep (its checkpoints, `x0` included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WhileLinearStats {
    /// Evaluations of the primal body, recomputations included.
    pub body_evals: u64,
    /// Evaluations of the linear step (tangent or cotangent), one per loop step of a sweep.
    pub linear_steps: u64,
    /// The most primal carries one sweep held at once.
    pub peak_carries: u64,
}

thread_local! {
    static STATS: Cell<WhileLinearStats> = const {
        Cell::new(WhileLinearStats { body_evals: 0, linear_steps: 0, peak_carries: 0 })
    };
}

/// The counts of `while_linear` sweeps on this thread (see [`WhileLinearStats`]).
pub fn while_linear_stats() -> WhileLinearStats {
    STATS.with(Cell::get)
}

/// Resets [`while_linear_stats`].
pub fn reset_while_linear_stats() {
    STATS.with(|s| s.set(WhileLinearStats::default()));
}

fn note(f: impl FnOnce(&mut WhileLinearStats)) {
    STATS.with(|s| {
        let mut v = s.get();
        f(&mut v);
        s.set(v);
    });
}

/// Runs `while_linear` on its operands (consts, trip count, x0, linear operands); `n_carry`
/// primal carries, and `fixed` the avals of the fixed tangents. `add` sums two arrays of
/// one aval (the fixed tangents' cotangents over the steps).
pub(crate) fn run(
    s: Shape,
    operands: Vec<Array>,
    n_carry: usize,
    fixed: &[Aval],
    body: &mut Run,
    step: &mut Run,
    add: &dyn Fn(&Array, &Array) -> Result<Array>,
) -> Result<Vec<Array>> {
    let mut it = operands.into_iter();
    let consts: Vec<Array> = it.by_ref().take(s.n_consts).collect();
    let n = it
        .next()
        .ok_or_else(|| Error::internal("while_linear: no trip count"))?;
    // a count below zero runs no step, as a loop whose cond fails at once (the count a
    // linearized loop records is never negative; a hand-written one may be)
    let n = n.item()?.to_f64().max(0.0) as u64;
    let x0: Vec<Array> = it.by_ref().take(n_carry).collect();
    let lin: Vec<Array> = it.collect();
    let mut advance = |x: Vec<Array>| -> Result<Vec<Array>> {
        note(|st| st.body_evals += 1);
        let mut ins = consts.clone();
        ins.extend(x);
        body(ins)
    };
    if !s.transposed {
        let mut t = lin;
        let tangents: Vec<Array> = t.drain(..s.n_lin_consts.min(t.len())).collect();
        let mut x = x0;
        note(|st| st.peak_carries = st.peak_carries.max(1));
        for k in 0..n {
            let mut ins = consts.clone();
            ins.extend(x.iter().cloned());
            ins.extend(tangents.iter().cloned());
            ins.append(&mut t);
            note(|st| st.linear_steps += 1);
            t = step(ins)?;
            if k + 1 < n {
                x = advance(x)?;
            }
        }
        return Ok(t);
    }
    // the carries the sweep may hold at once must fit before it starts (a trip count is
    // the user's; an unbounded sweep of 2^40 steps would otherwise grow until it aborts)
    let held = match s.checkpoints {
        0 => n,
        c => (c as u64).min(n),
    };
    let held = usize::try_from(held).unwrap_or(usize::MAX);
    let carry_bytes = x0.iter().fold(0usize, |b, a| {
        b.saturating_add(a.aval().bytes())
            .saturating_add(std::mem::size_of::<Array>())
    });
    let described = match x0.first() {
        Some(a) => {
            let mut shape = vec![held];
            shape.extend_from_slice(a.shape());
            Aval::new(shape, a.dtype())
        }
        None => Aval::new(vec![held], crate::ir::DType::I64),
    };
    ensure_allocatable("while_linear", &described, held.saturating_mul(carry_bytes))?;
    let mut ct = lin;
    let mut acc: Vec<Option<Array>> = vec![None; s.n_lin_consts];
    let mut back = |x: &[Array]| -> Result<()> {
        let mut ins = consts.clone();
        ins.extend(x.iter().cloned());
        ins.append(&mut ct);
        note(|st| st.linear_steps += 1);
        let mut outs = step(ins)?;
        ct = outs.split_off(s.n_lin_consts);
        for (a, d) in acc.iter_mut().zip(outs) {
            *a = Some(match a.take() {
                None => d,
                Some(prev) => add(&prev, &d)?,
            });
        }
        Ok(())
    };
    sweep(x0, n, s.checkpoints, &mut advance, &mut back)?;
    let mut out: Vec<Array> = Vec::with_capacity(acc.len() + ct.len());
    for (a, aval) in acc.into_iter().zip(fixed) {
        out.push(match a {
            Some(a) => a,
            // no step ran: the fixed tangents' cotangents are zeros
            None => Array::zeros(&aval.shape, aval.dtype)?,
        });
    }
    out.extend(ct);
    Ok(out)
}

/// The binomial choice: for a segment of `len` steps with `free` slots, how many steps in
/// to store the next carry.
fn split(len: u64, free: u64) -> u64 {
    // β(s, r) = C(s + r, s), built up one r at a time (β(s, r) = β(s, r - 1) (s + r) / r):
    // O(r) per call, which the sweep's own O(r) advances per step dominate
    let (s, len128) = (u128::from(free), u128::from(len));
    let (mut r, mut beta) = (1u128, s + 1);
    while beta < len128 {
        r += 1;
        beta = beta * (s + r) / r;
    }
    // β(s - 1, r) = β(s, r) s / (s + r): the steps the part after the stored carry may take
    let right = beta * s / (s + r);
    (len128.saturating_sub(right) as u64).clamp(1, len - 1)
}

/// Calls `back` on the carries of steps `n - 1` down to `0`, recomputing them from `x0`
/// with `advance` and keeping at most `checkpoints` carries (0: no bound).
fn sweep(
    x0: Vec<Array>,
    n: u64,
    checkpoints: usize,
    advance: &mut dyn FnMut(Vec<Array>) -> Result<Vec<Array>>,
    back: &mut dyn FnMut(&[Array]) -> Result<()>,
) -> Result<()> {
    let cap = match checkpoints {
        0 => u64::MAX,
        c => c as u64,
    };
    // the stored carries, by step, ascending; the first is x0
    let mut stack: Vec<(u64, Vec<Array>)> = vec![(0, x0)];
    let mut end = n;
    let mut peak = 1u64;
    while end > 0 {
        let (p, top) = stack.last().expect("x0 stays until the end");
        let (p, len) = (*p, end - *p);
        if len == 1 {
            back(top)?;
            end = p;
            if p > 0 {
                stack.pop();
            }
            continue;
        }
        let free = cap.saturating_sub(stack.len() as u64);
        if free == 0 {
            // no slot left: the last step's carry from the top one, then that step
            let mut x = top.clone();
            for _ in 0..len - 1 {
                x = advance(x)?;
            }
            back(&x)?;
            end -= 1;
            continue;
        }
        let k = split(len, free);
        let mut x = top.clone();
        for _ in 0..k {
            x = advance(x)?;
        }
        stack.push((p + k, x));
        peak = peak.max(stack.len() as u64);
    }
    note(|st| st.peak_carries = st.peak_carries.max(peak));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sweep on integer "carries": every step reversed once, in order, within the
    /// slots and the body-evaluation bound.
    #[test]
    fn sweep_reverses_every_step_within_its_bounds() {
        for n in [0u64, 1, 2, 3, 7, 64, 100, 1000] {
            for c in [0usize, 1, 2, 3, 5, 10, 100] {
                let mut evals = 0u64;
                let mut seen = vec![];
                let mut advance = |x: Vec<Array>| {
                    evals += 1;
                    let v = x[0].item()?.to_f64() as i64;
                    Ok(vec![Array::scalar(v + 1)])
                };
                let mut back = |x: &[Array]| {
                    seen.push(x[0].item()?.to_f64() as u64);
                    Ok(())
                };
                reset_while_linear_stats();
                sweep(vec![Array::scalar(0i64)], n, c, &mut advance, &mut back).unwrap();
                let want: Vec<u64> = (0..n).rev().collect();
                assert_eq!(seen, want, "n {n} c {c}");
                let peak = while_linear_stats().peak_carries;
                if c > 0 {
                    assert!(peak <= c as u64, "n {n} c {c}: {peak} carries");
                    // r: the least with C(c - 1 + r, r) ≥ n
                    let r = (1..=n.max(1))
                        .find(|&r| c == 1 && r + 1 >= n || c > 1 && binom(c as u64 - 1 + r, r) >= n)
                        .unwrap_or(1);
                    assert!(evals <= r * n, "n {n} c {c}: {evals} evaluations, r {r}");
                } else {
                    assert_eq!(evals, n.saturating_sub(1), "n {n}: record every carry");
                }
            }
        }
    }

    fn binom(a: u64, b: u64) -> u64 {
        let mut r: u128 = 1;
        for i in 1..=b {
            r = r * u128::from(a - b + i) / u128::from(i);
        }
        r.min(u128::from(u64::MAX)) as u64
    }
}
