//! Structured control flow for users: `cond`, `switch`, `scan` and `fori_loop`, with JAX's
//! names and argument order.
//!
//! Each traces its Rust closures into sub-programs once (branches, a loop body) and binds one
//! control-flow primitive (`cond`, `scan`): outside any transformation it runs at once, inside
//! one it is recorded, and every transformation handles it as a primitive. A loop is a loop in
//! the program, not an unrolled trace: tracing and compiling cost the same for 10 or 10,000
//! iterations. Closures may use tensors of an enclosing trace; those become extra operands
//! (consts of a scan, operands every branch takes), as for every other transformation.

use crate::ir::{Aval, Closed, DType, Error, Primitive, Program, Result, SourceLoc, Var};
use crate::trace::{bind_multi, flatten, leaf_avals, trace_tree, unflatten, Tensor, Tree, TreeDef};

/// Options of [`scan_with`] (JAX's `length`, `reverse`, `unroll`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScanOptions {
    /// The number of iterations; needed when there are no `xs`, checked against them
    /// otherwise.
    pub length: Option<usize>,
    /// Run from the last slice of the xs to the first (the ys stay aligned with the xs).
    pub reverse: bool,
    /// Iterations per loop step: the body is repeated this many times inside one step of the
    /// loop (a performance choice; results are the same). 0 and 1 mean no unrolling.
    pub unroll: usize,
}

impl ScanOptions {
    /// The default options: length from the xs, forward, no unrolling.
    pub fn new() -> ScanOptions {
        ScanOptions::default()
    }
    /// Sets the number of iterations.
    pub fn length(mut self, n: usize) -> ScanOptions {
        self.length = Some(n);
        self
    }
    /// Runs the scan from the last slice of the xs to the first.
    pub fn reverse(mut self, reverse: bool) -> ScanOptions {
        self.reverse = reverse;
        self
    }
    /// Repeats the body `k` times inside one step of the loop.
    pub fn unroll(mut self, k: usize) -> ScanOptions {
        self.unroll = k;
        self
    }
}

pub(super) fn shape_err(op: &str, msg: String, loc: SourceLoc) -> Error {
    Error::Shape {
        op: op.into(),
        msg,
        loc: Some(loc),
    }
}

pub(super) fn avals_text(avals: &[Aval]) -> String {
    avals
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `f` applied along the leading axis of `xs` with a carried state: returns the final carry
/// and the stacked per-step outputs (JAX's `lax.scan(f, init, xs)`). `f(carry, x)` returns
/// `(carry, y)`; the carry must keep its structure, shapes and dtypes.
///
/// ```
/// use ferrax::{scan, Array, Tensor};
/// let xs = Tensor::new(Array::from_slice(&[1.0f64, 2.0, 3.0]));
/// // running sum: carry the total, emit it at each step
/// let (total, partial): (Tensor, Tensor) =
///     scan(|c: Tensor, x: Tensor| { let s = &c + &x; (s.clone(), s) }, &Tensor::scalar(0.0f64), &xs).unwrap();
/// assert_eq!(total.item().unwrap(), 6.0);
/// assert_eq!(partial.to_vec::<f64>().unwrap(), vec![1.0, 3.0, 6.0]);
/// ```
#[track_caller]
pub fn scan<C: Tree, X: Tree, Y: Tree>(
    f: impl Fn(C, X) -> (C, Y),
    init: &C,
    xs: &X,
) -> Result<(C, Y)> {
    scan_at(f, init, xs, &ScanOptions::new(), SourceLoc::caller())
}

/// [`scan`] with options (length, reverse, unroll).
#[track_caller]
pub fn scan_with<C: Tree, X: Tree, Y: Tree>(
    f: impl Fn(C, X) -> (C, Y),
    init: &C,
    xs: &X,
    opts: &ScanOptions,
) -> Result<(C, Y)> {
    scan_at(f, init, xs, opts, SourceLoc::caller())
}

fn scan_at<C: Tree, X: Tree, Y: Tree>(
    f: impl Fn(C, X) -> (C, Y),
    init: &C,
    xs: &X,
    opts: &ScanOptions,
    loc: SourceLoc,
) -> Result<(C, Y)> {
    let op = "scan";
    let x_avals = leaf_avals(&flatten(xs).0)?;
    // the length: from the xs' leading axes, which must agree with each other and the option
    let mut length = opts.length.map(|n| (n, "the length option".to_string()));
    for (i, a) in x_avals.iter().enumerate() {
        let Some(&n) = a.shape.first() else {
            return Err(shape_err(
                op,
                format!("xs leaf {i} is {a}: scanned values need a leading axis"),
                loc,
            ));
        };
        match &length {
            Some((m, from)) if *m != n => {
                return Err(shape_err(
                    op,
                    format!("xs leaf {i} is {a}, of length {n}, but {from} gives {m}"),
                    loc,
                ))
            }
            Some(_) => {}
            None => length = Some((n, format!("xs leaf {i} ({a})"))),
        }
    }
    let Some((length, _)) = length else {
        return Err(shape_err(
            op,
            "no xs to scan over: give the number of iterations with ScanOptions::length".into(),
            loc,
        ));
    };
    let unroll = opts.unroll.max(1);
    if unroll > 1 && length > 1 {
        return scan_unrolled(f, init, xs, opts, unroll.min(length), length, loc);
    }
    scan_plain(f, init, xs, opts.reverse, length, loc)
}

/// One `scan` equation of `length` iterations of `f`.
fn scan_plain<C: Tree, X: Tree, Y: Tree>(
    f: impl Fn(C, X) -> (C, Y),
    init: &C,
    xs: &X,
    reverse: bool,
    length: usize,
    loc: SourceLoc,
) -> Result<(C, Y)> {
    let op = "scan";
    let (carry, carry_def) = flatten(init);
    let (x_leaves, x_def) = flatten(xs);
    let carry_avals = leaf_avals(&carry)?;
    let slices = leaf_avals(&x_leaves)?
        .into_iter()
        .map(|a| Aval::new(a.shape[1..].to_vec(), a.dtype))
        .collect::<Vec<_>>();
    // the body: (carry, x) -> (carry, y), traced on the carry's avals and one slice each
    let in_def = TreeDef::Node {
        kind: "tuple",
        children: vec![carry_def.clone(), x_def.clone()],
    };
    let mut in_avals = carry_avals.clone();
    in_avals.extend(slices);
    let traced = trace_tree(|(c, x): (C, X)| f(c, x), &in_def, &in_avals)?;
    let (carry_out_def, y_def) = match &traced.out_def {
        TreeDef::Node {
            kind: "tuple",
            children,
        } if children.len() == 2 => (children[0].clone(), children[1].clone()),
        other => {
            return Err(Error::Tree {
                op: op.into(),
                msg: format!("the body must return (carry, y), it returned {other:?}"),
                loc: Some(loc),
            })
        }
    };
    let n_carry = carry.len();
    let body_out = traced.program.out_avals();
    if carry_out_def != carry_def || body_out[..n_carry.min(body_out.len())] != carry_avals[..] {
        return Err(shape_err(
            op,
            format!(
                "the body must return the carry as it took it: it took ({}) and returned ({}) as the carry",
                avals_text(&carry_avals),
                avals_text(&body_out[..carry_out_def.num_leaves().min(body_out.len())])
            ),
            loc,
        ));
    }
    // operands in the primitive's order: consts (the captured tensors), carry, xs
    let n_own = traced.program.inputs.len() - traced.captured.len();
    let mut body = traced.program;
    let captured = body.inputs.split_off(n_own);
    let mut inputs = captured;
    inputs.append(&mut body.inputs);
    body.inputs = inputs;
    let prim = Primitive::Scan {
        body: Closed::new(body),
        n_consts: traced.captured.len(),
        n_carry,
        length,
        reverse,
    };
    let mut args: Vec<&Tensor> = traced.captured.iter().collect();
    args.extend(carry.iter());
    args.extend(x_leaves.iter());
    let mut outs = bind_multi(prim, &args, Some(loc))?;
    let ys = outs.split_off(n_carry);
    Ok((unflatten(&carry_def, outs)?, unflatten(&y_def, ys)?))
}

/// A scan whose loop step runs the body `unroll` times: the xs are regrouped into blocks of
/// `unroll` slices, the block body applies `f` to each slice of its block in turn, and the
/// iterations that do not fill a block run in a second scan (first when `reverse`, since a
/// reversed scan starts from the end). Same results, in the same order, as the plain scan.
#[allow(clippy::too_many_arguments)]
fn scan_unrolled<C: Tree, X: Tree, Y: Tree>(
    f: impl Fn(C, X) -> (C, Y),
    init: &C,
    xs: &X,
    opts: &ScanOptions,
    unroll: usize,
    length: usize,
    loc: SourceLoc,
) -> Result<(C, Y)> {
    let blocks = length / unroll;
    let main = blocks * unroll;
    let (x_leaves, x_def) = flatten(xs);
    let dims = |t: &Tensor| -> Vec<isize> { t.shape()[1..].iter().map(|&d| d as isize).collect() };
    let head: Vec<Tensor> = x_leaves
        .iter()
        .map(|l| {
            let mut shape = vec![blocks as isize, unroll as isize];
            shape.extend(dims(l));
            l.slice_axis(0, 0, main).reshape(&shape)
        })
        .collect();
    let tail: Vec<Tensor> = x_leaves
        .iter()
        .map(|l| l.slice_axis(0, main, length))
        .collect();

    // one step of the block scan: `unroll` applications of `f`, in the scan's direction
    let block = |mut c: C, xb: Vec<Tensor>| -> (C, Vec<Tensor>) {
        let mut ys: Vec<Vec<Tensor>> = vec![];
        let order: Vec<usize> = if opts.reverse {
            (0..unroll).rev().collect()
        } else {
            (0..unroll).collect()
        };
        for j in order {
            let xj: Vec<Tensor> = xb.iter().map(|l| l.index_axis(0, j)).collect();
            let xj = match unflatten::<X>(&x_def, xj) {
                Ok(x) => x,
                Err(e) => return (c, vec![crate::trace::fail(e)]),
            };
            let (c2, y) = f(c, xj);
            c = c2;
            ys.push(flatten(&y).0);
        }
        if opts.reverse {
            ys.reverse();
        }
        let n_leaves = ys.first().map_or(0, Vec::len);
        // a body whose output tree changes between steps (a Vec whose length follows the
        // carry's shape) cannot be stacked; the plain scan reports the carry's change
        if ys.iter().any(|y| y.len() != n_leaves) {
            let e = shape_err(
                "scan",
                "the body's outputs change from one step to the next".into(),
                loc,
            );
            return (c, vec![crate::trace::fail(e)]);
        }
        let stacked = (0..n_leaves)
            .map(|k| {
                let rows: Vec<Tensor> = ys.iter().map(|y| y[k].expand_dims(&[0])).collect();
                Tensor::concatenate(&rows, 0)
            })
            .collect();
        (c, stacked)
    };
    let run_blocks = |c: &C| scan_plain(block, c, &head, opts.reverse, blocks, loc);
    let run_tail = |c: &C| {
        let tail_x = unflatten::<X>(&x_def, tail.clone())?;
        scan_plain(&f, c, &tail_x, opts.reverse, length - main, loc)
    };
    let (carry, block_ys, tail_ys) = if opts.reverse {
        let (c, ty) = run_tail(init)?;
        let (c, by) = run_blocks(&c)?;
        (c, by, ty)
    } else {
        let (c, by) = run_blocks(init)?;
        let (c, ty) = run_tail(&c)?;
        (c, by, ty)
    };
    let (tail_leaves, y_def) = flatten(&tail_ys);
    let ys: Vec<Tensor> = block_ys
        .iter()
        .zip(&tail_leaves)
        .map(|(b, t)| {
            let mut shape = vec![main as isize];
            shape.extend(dims(t));
            Tensor::concatenate(&[b.reshape(&shape), t.clone()], 0)
        })
        .collect();
    Ok((carry, unflatten(&y_def, ys)?))
}

/// `true_fn(operands)` where `pred` holds, else `false_fn(operands)` (JAX's `lax.cond`): only
/// the taken branch runs. `pred` is a bool scalar; both branches must return the same
/// structure, shapes and dtypes.
///
/// ```
/// use ferrax::{cond, Tensor};
/// let x = Tensor::scalar(3.0f64);
/// let y: Tensor = cond(&x.greater(0.0), |x: Tensor| x.sqrt(), |x: Tensor| -x, &x).unwrap();
/// assert_eq!(y.item().unwrap(), 3f64.sqrt());
/// ```
#[track_caller]
pub fn cond<T: Tree, O: Tree>(
    pred: &Tensor,
    true_fn: impl Fn(T) -> O,
    false_fn: impl Fn(T) -> O,
    operands: &T,
) -> Result<O> {
    let loc = SourceLoc::caller();
    let a = pred.aval()?;
    if a.ndim() != 0 || a.dtype != DType::Bool {
        return Err(Error::DType {
            op: "cond".into(),
            msg: format!("the predicate must be a bool scalar, got {a}"),
            loc: Some(loc),
        });
    }
    let index = pred.astype(DType::I32);
    switch_at(&index, &[&false_fn, &true_fn], operands, "cond", loc)
}

/// `branches[index](operands)` (JAX's `lax.switch`): only the chosen branch runs. `index`
/// is an integer scalar, clamped to the branches as JAX clamps it (below 0 runs the first,
/// beyond the last runs the last).
///
/// ```
/// use ferrax::{switch, Tensor};
/// let x = Tensor::scalar(2.0f64);
/// let f = |x: Tensor| &x * 10.0;
/// let g = |x: Tensor| &x + 1.0;
/// let y: Tensor = switch(&Tensor::scalar(1i32), &[&f, &g], &x).unwrap();
/// assert_eq!(y.item().unwrap(), 3.0);
/// ```
#[track_caller]
pub fn switch<T: Tree, O: Tree>(
    index: &Tensor,
    branches: &[&dyn Fn(T) -> O],
    operands: &T,
) -> Result<O> {
    let loc = SourceLoc::caller();
    let a = index.aval()?;
    if a.ndim() != 0 || !a.dtype.is_int() {
        return Err(Error::DType {
            op: "switch".into(),
            msg: format!("the index must be an integer scalar, got {a}"),
            loc: Some(loc),
        });
    }
    if branches.is_empty() {
        return Err(shape_err("switch", "needs at least one branch".into(), loc));
    }
    // clamp before narrowing to i32, so a huge i64 index still picks the last branch
    let last = branches.len() as i64 - 1;
    let index = match a.dtype {
        DType::I32 => index.clone(),
        _ => index.maximum(0i64).minimum(last).astype(DType::I32),
    };
    switch_at(&index, branches, operands, "switch", loc)
}

fn switch_at<T: Tree, O: Tree>(
    index: &Tensor,
    branches: &[&dyn Fn(T) -> O],
    operands: &T,
    op: &str,
    loc: SourceLoc,
) -> Result<O> {
    let (leaves, def) = flatten(operands);
    let avals = leaf_avals(&leaves)?;
    let mut traced = Vec::with_capacity(branches.len());
    for b in branches {
        traced.push(trace_tree(|x: T| b(x), &def, &avals)?);
    }
    let out_def = traced[0].out_def.clone();
    let out_avals = traced[0].program.out_avals();
    for (i, t) in traced.iter().enumerate() {
        let outs = t.program.out_avals();
        if t.out_def != out_def || outs != out_avals {
            return Err(shape_err(
                op,
                format!(
                    "branch {i} returns ({}) but branch 0 returns ({}): branches must agree",
                    avals_text(&outs),
                    avals_text(&out_avals)
                ),
                loc,
            ));
        }
    }
    // Every branch takes the operands, then the captures of every branch in turn (its own
    // in its place, unused inputs for the others'), so one operand list serves them all.
    let capture_avals: Vec<Vec<Aval>> = traced
        .iter()
        .map(|t| leaf_avals(&t.captured))
        .collect::<Result<_>>()?;
    let mut programs = Vec::with_capacity(traced.len());
    for (i, t) in traced.iter().enumerate() {
        let mut p: Program = t.program.clone();
        let own = p.inputs.split_off(leaves.len());
        for (j, cap) in capture_avals.iter().enumerate() {
            if i == j {
                p.inputs.extend(own.iter().copied());
            } else {
                for a in cap {
                    p.avals.push(a.clone());
                    p.inputs.push(Var(p.avals.len() as u32 - 1));
                }
            }
        }
        programs.push(Closed::new(p));
    }
    let mut args: Vec<&Tensor> = vec![index];
    args.extend(leaves.iter());
    for t in &traced {
        args.extend(t.captured.iter());
    }
    let outs = bind_multi(Primitive::Cond { branches: programs }, &args, Some(loc))?;
    unflatten(&out_def, outs)
}

/// `init` updated by `body(i, carry)` for `i` from `lower` to `upper - 1` (JAX's
/// `lax.fori_loop` with static bounds): a scan over the indices, so it differentiates in
/// both modes. `i` is an i32 scalar.
///
/// ```
/// use ferrax::{fori_loop, Tensor};
/// // 1 + 2 + ... + 9
/// let s: Tensor = fori_loop(1, 10, |i: Tensor, s: Tensor| &s + &i.astype(ferrax::DType::F64),
///                           &Tensor::scalar(0.0f64)).unwrap();
/// assert_eq!(s.item().unwrap(), 45.0);
/// ```
#[track_caller]
pub fn fori_loop<C: Tree>(
    lower: i32,
    upper: i32,
    body: impl Fn(Tensor, C) -> C,
    init: &C,
) -> Result<C> {
    let loc = SourceLoc::caller();
    let n = (upper as i64 - lower as i64).max(0) as usize;
    let indices = &Tensor::arange(n, DType::I32) + lower;
    let opts = ScanOptions::new().length(n);
    let (c, ()): (C, ()) = scan_at(
        |c: C, i: Tensor| (body(i, c), ()),
        init,
        &indices,
        &opts,
        loc,
    )?;
    Ok(c)
}
