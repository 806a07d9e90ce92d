//! `while_loop`, JAX's `lax.while_loop`, and its options: a loop whose number of
//! iterations is known only when it runs, differentiable in both modes.
//!
//! Beside `lax.rs` (the other control flow): the closures are traced once into a cond and
//! a body and one `while` primitive is bound. Forward mode pushes tangents through the loop;
//! reverse mode (beyond JAX, which refuses it) has two forms. `linearize` on arrays counts the
//! steps first and linearizes the loop as a scan of that many steps, storing each step's
//! residuals (`while_tape.rs`). With [`WhileOptions::max_checkpoints`], or inside a trace,
//! it becomes a counting loop and a `while_linear` that recomputes the primal carries it
//! needs, at most `max_checkpoints` of them at once (`backend/reference/while_linear.rs` has
//! the schedule and its bound).

use crate::api::lax::{avals_text, shape_err};
use crate::ir::{Aval, Closed, DType, Error, Primitive, Program, Result, SourceLoc};
use crate::trace::{bind_multi, flatten, leaf_avals, trace_tree, unflatten, Tensor, Tree};

/// Options of [`while_loop_with`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WhileOptions {
    /// A loop whose cond still holds after this many steps ends with an error rather than
    /// running on (`None`: no bound).
    pub max_steps: Option<usize>,
    /// The most primal carries reverse mode keeps at once (`x0` included) while it runs
    /// the loop backwards; the others are recomputed from the nearest one kept, on a
    /// binomial schedule: with `c` carries for `n` steps, each carry is recomputed at most
    /// `r` times, `r` the least with `C(c - 1 + r, r) ≥ n` (3 for 10,000 steps in 100
    /// carries). Must be at least 1. `None` keeps everything: `linearize` on arrays stores
    /// each step's residuals (a tape as long as the trip count; the map then does no primal
    /// work), and inside a trace the map records every carry on one forward run (each
    /// computed once more, `n` carries at the peak).
    pub max_checkpoints: Option<usize>,
}

impl WhileOptions {
    /// The default options: no bound on the steps, every carry kept in reverse mode.
    pub fn new() -> WhileOptions {
        WhileOptions::default()
    }
    /// Sets the most steps the loop may run before it ends with an error.
    pub fn max_steps(mut self, n: usize) -> WhileOptions {
        self.max_steps = Some(n);
        self
    }
    /// Sets the most primal carries reverse mode keeps at once (at least 1).
    pub fn max_checkpoints(mut self, c: usize) -> WhileOptions {
        self.max_checkpoints = Some(c);
        self
    }
}

/// `while cond_fn(carry) { carry = body_fn(carry) }`, JAX's `lax.while_loop`: the carry is a
/// tree; `cond_fn` gives a bool scalar; `body_fn` gives the carry back with the same tree,
/// shapes and dtypes. The number of iterations is known only when the loop runs. Closures
/// may capture tensors (they become consts of the cond or the body).
///
/// ```
/// use ferrax::{while_loop, Tensor};
/// // Newton's iteration for sqrt(2), until the step is below 1e-12
/// let a = Tensor::scalar(2.0f64);
/// let (x, step) = while_loop(
///     |(_, step): (Tensor, Tensor)| step.abs().greater(1e-12),
///     |(x, _): (Tensor, Tensor)| {
///         let next = (&x + &a / &x) * 0.5;
///         let step = &next - &x;
///         (next, step)
///     },
///     &(Tensor::scalar(1.0f64), Tensor::scalar(1.0f64)),
/// )
/// .unwrap();
/// assert!((x.item().unwrap() - 2f64.sqrt()).abs() < 1e-15);
/// assert!(step.item().unwrap().abs() <= 1e-12);
/// ```
///
/// Reverse mode works through it (`grad`, `vjp`, `jacrev`, `hessian`): see
/// [`while_loop_with`] for the memory it takes.
#[track_caller]
pub fn while_loop<C: Tree>(
    cond_fn: impl Fn(C) -> Tensor,
    body_fn: impl Fn(C) -> C,
    init: &C,
) -> Result<C> {
    while_at(
        cond_fn,
        body_fn,
        init,
        WhileOptions::default(),
        SourceLoc::caller(),
    )
}

/// [`while_loop`] with options: a bound on the steps, and on the carries reverse mode keeps.
///
/// Without `max_checkpoints`, `linearize` on arrays stores each step's residuals (a tape as
/// long as the trip count; applying the map or its transpose does no primal work). With it,
/// or inside a trace (`jit`, `vmap`, `jvp`, `jit_linearize`), or in other control flow,
/// linearizing the loop records its trip count and initial carry only; the linear map (and
/// its transpose) recomputes the primal carries from there, so applying it costs primal
/// work: `n - 1` body evaluations forward, and up to `r · n` backwards with
/// `max_checkpoints = c` (see [`WhileOptions::max_checkpoints`]).
///
/// ```
/// use ferrax::{grad, while_loop_with, Tensor, WhileOptions};
/// // x ← x / 2 until x < 1: the derivative is 2^-steps
/// let f = |x: Tensor| {
///     let opts = WhileOptions::new().max_steps(100).max_checkpoints(2);
///     while_loop_with(|x: Tensor| x.greater_equal(1.0), |x: Tensor| x * 0.5, &x, opts).unwrap()
/// };
/// let g = grad(f, &Tensor::scalar(10.0f64)).unwrap();
/// assert_eq!(g.item().unwrap(), 1.0 / 16.0);
/// ```
#[track_caller]
pub fn while_loop_with<C: Tree>(
    cond_fn: impl Fn(C) -> Tensor,
    body_fn: impl Fn(C) -> C,
    init: &C,
    options: WhileOptions,
) -> Result<C> {
    while_at(cond_fn, body_fn, init, options, SourceLoc::caller())
}

fn while_at<C: Tree>(
    cond_fn: impl Fn(C) -> Tensor,
    body_fn: impl Fn(C) -> C,
    init: &C,
    options: WhileOptions,
    loc: SourceLoc,
) -> Result<C> {
    let op = "while";
    if options.max_checkpoints == Some(0) {
        return Err(Error::Input {
            op: op.into(),
            msg: "max_checkpoints must be at least 1 (the initial carry is one)".into(),
            loc: Some(loc),
        });
    }
    if options.max_steps == Some(0) {
        return Err(Error::Input {
            op: op.into(),
            msg: "max_steps must be at least 1 (None: no bound)".into(),
            loc: Some(loc),
        });
    }
    let (carry, carry_def) = flatten(init);
    let carry_avals = leaf_avals(&carry)?;
    let cond = trace_tree(|c: C| cond_fn(c), &carry_def, &carry_avals)?;
    let cond_out = cond.program.out_avals();
    if cond_out.len() != 1 || cond_out[0] != Aval::scalar(DType::Bool) {
        return Err(Error::DType {
            op: op.into(),
            msg: format!(
                "cond_fn must return a bool scalar, it returned ({})",
                avals_text(&cond_out)
            ),
            loc: Some(loc),
        });
    }
    let body = trace_tree(|c: C| body_fn(c), &carry_def, &carry_avals)?;
    let body_out = body.program.out_avals();
    if body.out_def != carry_def || body_out != carry_avals {
        return Err(shape_err(
            op,
            format!(
                "body_fn must return the carry as it took it: it took ({}) and returned ({})",
                avals_text(&carry_avals),
                avals_text(&body_out)
            ),
            loc,
        ));
    }
    // each sub-program takes its captured tensors first (its consts), then the carry
    let consts_first = |mut p: Program, n_captured: usize| {
        let captured = p.inputs.split_off(p.inputs.len() - n_captured);
        let mut inputs = captured;
        inputs.append(&mut p.inputs);
        p.inputs = inputs;
        Closed::new(p)
    };
    let prim = Primitive::While {
        cond: consts_first(cond.program, cond.captured.len()),
        body: consts_first(body.program, body.captured.len()),
        n_cond_consts: cond.captured.len(),
        n_body_consts: body.captured.len(),
        max_steps: options.max_steps.unwrap_or(0),
        checkpoints: options.max_checkpoints.unwrap_or(0),
    };
    let mut args: Vec<&Tensor> = cond.captured.iter().collect();
    args.extend(body.captured.iter());
    args.extend(carry.iter());
    let outs = bind_multi(prim, &args, Some(loc))?;
    unflatten(&carry_def, outs)
}
