//! Scan bodies run on buffers fixed for the whole loop: the route of a `scan` whose body is
//! made only of elementwise float kernels and products with a vector, over small values.
//!
//! Sits beside `control`, which runs every other loop body through its nested plan, one
//! `Array` per value per iteration: slot writes, operand lists, handles and shapes made and
//! dropped, the rows of the xs copied out. For a body over small values (an RNN cell: a
//! matrix-vector product, two adds and a tanh on 128 floats) those costs were a third of
//! the iteration. Here the body's plan, once made, is read into a list of operations on
//! numbered buffers ([`FixedBody::of`]); a run allocates each buffer once, reads the consts,
//! literals and rows of the xs where they lie, and each iteration computes every value as
//! its step would: a binary operation by `Binary::zip` into the value's buffer (the step
//! updates an operand in place with `Binary::assign`: the same IEEE operation on the same
//! operands in the same order), a unary one by its slice kernel in the step's 256-element
//! blocks, a product by `matmul::vector_product` (`matvec`, as the step), a pair of
//! products of one matrix by `vector_product_pair` (as the plan's pair). So it gives the
//! nested plan's bits. A body with anything else (a fused group, a product through `gemm`,
//! a reduction, control flow, another dtype, a computed value or carry of more than
//! [`MAX_ELEMENTS`], where the kernels themselves cost more than the interpretation) keeps
//! the general route; consts and xs of any size are read in place.

use crate::backend::count;
use crate::backend::cpu::buffers;
use crate::backend::cpu::dispatch::{Binary, Float, Kernel};
use crate::backend::cpu::math::Unary;
use crate::backend::cpu::matmul::{layout_of, vector_product, vector_product_pair, Layout};
use crate::backend::cpu::profile;
use crate::backend::cpu::stack::Stack;
use crate::backend::cpu::step::{Step, StepArg};
use crate::backend::reference::matvec::{applies, MvFloat};
use crate::ir::{Array, Aval, DType, Error, Primitive, Result};

/// The largest value (in elements) a fixed body computes or carries (its consts and xs may
/// be any size): under the size from which the general kernels split their work across
/// threads, so a unary kernel here sees the blocks it sees there.
pub(crate) const MAX_ELEMENTS: usize = 1 << 14;

/// The block in which the general route runs a unary slice kernel (`dispatch`'s in-place
/// loop copies each block aside first): the same blocks here.
const UNARY_BLOCK: usize = 256;

/// Where an operation reads an operand.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Src {
    /// The body's input `i` (consts, then carry, then the row of each xs).
    Input(usize),
    /// The buffer operation `j` writes.
    Buffer(usize),
    /// A value known when the plan was made (`FixedBody::values`).
    Value(usize),
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Unary(Unary),
    Binary(Binary),
    /// A product with a vector operand, of this layout (`matmul::vector_product`).
    Product(Layout),
    /// A matrix times a vector, and the next operation's product of the same matrix by the
    /// vector read from `Src`, reading the matrix once (`matmul::vector_product_pair`: the
    /// plan paired the two steps).
    Pair(Layout, Src),
    /// The second product of a pair, computed with the first.
    Paired,
}

#[derive(Clone, Debug)]
struct Operation {
    /// Counted once per iteration, as the step it stands for.
    prim: Primitive,
    op: Op,
    args: Vec<Src>,
    /// Elements of its output.
    size: usize,
}

/// A scan body's plan as operations on buffers (see the module doc).
#[derive(Clone, Debug)]
pub(crate) struct FixedBody {
    dtype: DType,
    /// The body's inputs: consts, carry, xs (each an xs's row).
    in_avals: Vec<Aval>,
    n_consts: usize,
    n_carry: usize,
    ops: Vec<Operation>,
    values: Vec<Array>,
    /// The carry (first `n_carry`), then each y.
    outputs: Vec<Src>,
}

impl FixedBody {
    /// The body whose plan has input slots `inputs` (of `in_avals`), runs `items` in order
    /// (each a step, or two products the plan paired) and gives `outputs`, when every step is
    /// one this route runs (module doc); `None` otherwise.
    pub(crate) fn of(
        inputs: &[usize],
        in_avals: &[Aval],
        items: &[&[Step]],
        outputs: &[StepArg],
        (n_consts, n_carry): (usize, usize),
    ) -> Option<FixedBody> {
        let dtype = in_avals.first()?.dtype;
        if !matches!(dtype, DType::F32 | DType::F64) || in_avals.iter().any(|a| a.dtype != dtype) {
            return None;
        }
        // a checked body has its consts and carry among its inputs and gives the carry first;
        // anything else is not taken (never indexed past)
        let carried = in_avals.get(n_consts..n_consts.checked_add(n_carry)?)?;
        if outputs.len() < n_carry || carried.iter().any(|a| a.size() > MAX_ELEMENTS) {
            return None;
        }
        let mut body = FixedBody {
            dtype,
            in_avals: in_avals.to_vec(),
            n_consts,
            n_carry,
            ops: vec![],
            values: vec![],
            outputs: vec![],
        };
        // slot -> (source, aval)
        let mut known: Vec<(usize, Src, Aval)> = inputs
            .iter()
            .zip(in_avals)
            .enumerate()
            .map(|(i, (&slot, a))| (slot, Src::Input(i), a.clone()))
            .collect();
        let src = |body: &mut FixedBody, known: &[(usize, Src, Aval)], a: &StepArg| match a {
            StepArg::Slot(k) => known
                .iter()
                .find(|(slot, ..)| slot == k)
                .map(|(_, s, aval)| (*s, aval.clone())),
            StepArg::Value(v) if v.dtype() == dtype => {
                // one index per buffer, so that two products of one constant matrix pair
                let same = |u: &Array| u.shares_buffer(v) && u.shape() == v.shape();
                let k = match body.values.iter().position(same) {
                    Some(k) => k,
                    None => {
                        body.values.push(v.clone());
                        body.values.len() - 1
                    }
                };
                Some((Src::Value(k), v.aval()))
            }
            StepArg::Value(_) => None,
        };
        for s in items.iter().flat_map(|item| item.iter()) {
            let out = &s.out_aval;
            if out.dtype != dtype || out.size() > MAX_ELEMENTS {
                return None;
            }
            let mut args = vec![];
            let mut shapes = vec![];
            for a in &s.args {
                let (from, aval) = src(&mut body, &known, a)?;
                args.push(from);
                shapes.push(aval);
            }
            let same_size = || shapes.iter().all(|a| a.size() == out.size());
            let op = match (s.kernel?, args.len()) {
                (Kernel::Unary(u), 1) if same_size() => Op::Unary(u),
                (Kernel::Binary(b), 2) if same_size() => Op::Binary(b),
                (Kernel::Matmul, 2) => {
                    let layout = layout_of(&shapes[0].shape, &shapes[1].shape, &s.prim)?;
                    let ((m, k, ..), (n, ..)) = layout;
                    let fits = m.checked_mul(n) == Some(out.size());
                    (applies(m, n, k) && fits).then_some(Op::Product(layout))?
                }
                _ => return None,
            };
            body.ops.push(Operation {
                prim: s.prim.clone(),
                op,
                args,
                size: out.size(),
            });
            known.push((s.out, Src::Buffer(body.ops.len() - 1), out.clone()));
        }
        body.pair(items);
        for o in outputs {
            let (from, _) = src(&mut body, &known, o)?;
            body.outputs.push(from);
        }
        Some(body)
    }

    /// Marks the products the plan paired (`items` of two steps) as pairs where both are a
    /// matrix times a vector of one layout on the same matrix; otherwise they stay two
    /// products (the same bits, reading the matrix twice).
    fn pair(&mut self, items: &[&[Step]]) {
        let mut j = 0;
        for item in items {
            if item.len() == 2 {
                let (a, b) = (&self.ops[j], &self.ops[j + 1]);
                if let (Op::Product(la), Op::Product(lb)) = (a.op, b.op) {
                    let matrix_times_vector = (la.1).0 == 1;
                    if la == lb && matrix_times_vector && a.args[0] == b.args[0] {
                        self.ops[j].op = Op::Pair(la, b.args[1]);
                        self.ops[j + 1].op = Op::Paired;
                    }
                }
            }
            j += item.len();
        }
    }

    /// Runs the scan: `length` iterations (from the last row when `reverse`) on `consts`,
    /// the initial `carry` and `xs` (known to have the body's avals, the xs stacked), each y
    /// pushed onto its stack; gives the final carry.
    pub(crate) fn scan(
        &self,
        (consts, carry, xs): (&[Array], Vec<Array>, &[Array]),
        length: usize,
        reverse: bool,
        stacks: &mut [Stack],
    ) -> Result<Vec<Array>> {
        match self.dtype {
            DType::F32 => self.scan_typed::<f32>(consts, carry, xs, (length, reverse), stacks),
            DType::F64 => self.scan_typed::<f64>(consts, carry, xs, (length, reverse), stacks),
            d => Err(Error::internal(format!("a fixed scan body of {d}"))),
        }
    }

    fn scan_typed<T: Float + MvFloat>(
        &self,
        consts: &[Array],
        carry: Vec<Array>,
        xs: &[Array],
        (length, reverse): (usize, bool),
        stacks: &mut [Stack],
    ) -> Result<Vec<Array>> {
        let (nc, nk) = (self.n_consts, self.n_carry);
        let wrong = || Error::internal("a fixed scan body given operands of other avals");
        fn slice<T: Float>(a: &Array, n: usize) -> Result<&[T]> {
            (T::slice(a.data()).filter(|s| s.len() == n))
                .ok_or_else(|| Error::internal("a fixed scan body given operands of other avals"))
        }
        let avals = &self.in_avals;
        let consts = (consts.iter().zip(avals))
            .map(|(a, aval)| slice::<T>(a, aval.size()))
            .collect::<Result<Vec<_>>>()?;
        let xs = (xs.iter().zip(&avals[nc + nk..]))
            .map(|(a, aval)| slice::<T>(a, aval.size().checked_mul(length).ok_or_else(wrong)?))
            .collect::<Result<Vec<_>>>()?;
        let values = (self.values.iter())
            .map(|a| slice::<T>(a, a.size()))
            .collect::<Result<Vec<_>>>()?;
        if consts.len() != nc || carry.len() != nk || xs.len() != avals.len() - nc - nk {
            return Err(wrong());
        }
        let refused = |n: usize| {
            Error::exhausted(
                "scan",
                format!(
                    "cannot allocate {} bytes for a loop body's value",
                    n * self.dtype.size_bytes()
                ),
            )
        };
        let fresh = |n: usize| buffers::zeroed::<T>(n).map_err(|_| refused(n));
        let mut now = Vec::with_capacity(nk);
        let mut next = Vec::with_capacity(nk);
        for (c, aval) in carry.iter().zip(&avals[nc..nc + nk]) {
            let mut v = fresh(aval.size())?;
            v.copy_from_slice(slice::<T>(c, aval.size())?);
            now.push(v);
            next.push(fresh(aval.size())?);
        }
        drop(carry);
        let mut bufs = (self.ops.iter())
            .map(|o| fresh(o.size))
            .collect::<Result<Vec<_>>>()?;
        let mut row = vec![&[][..]; xs.len()];
        for step in 0..length {
            let i = if reverse { length - 1 - step } else { step };
            for ((r, x), aval) in row.iter_mut().zip(&xs).zip(&avals[nc + nk..]) {
                let n = aval.size();
                *r = &x[i * n..(i + 1) * n];
            }
            let from = Sources {
                consts: &consts,
                carry: &now,
                row: &row,
                values: &values,
            };
            for (j, o) in self.ops.iter().enumerate() {
                count(&o.prim);
                if let Op::Paired = o.op {
                    continue;
                }
                // no operation reads its own output (nor a pair its second): the buffers
                // written are set aside while it runs
                let mut out = std::mem::take(&mut bufs[j]);
                let t0 = profile::start();
                if let Op::Pair(layout, second) = o.op {
                    let mut out2 = std::mem::take(&mut bufs[j + 1]);
                    let (a, v) = (from.get(o.args[0], &bufs), from.get(o.args[1], &bufs));
                    let v2 = from.get(second, &bufs);
                    vector_product_pair(layout, a, [v, v2], [&mut out, &mut out2]);
                    bufs[j + 1] = out2;
                } else {
                    run(o.op, &o.args, (&from, &bufs), &mut out);
                }
                profile::stop(t0, || o.prim.to_string());
                bufs[j] = out;
            }
            for (n, &s) in next.iter_mut().zip(&self.outputs[..nk]) {
                n.copy_from_slice(from.get(s, &bufs));
            }
            for (stack, &s) in stacks.iter_mut().zip(&self.outputs[nk..]) {
                stack.push_row(from.get(s, &bufs))?;
            }
            std::mem::swap(&mut now, &mut next);
        }
        (now.into_iter().zip(&avals[nc..nc + nk]))
            .map(|(v, aval)| Array::from_data(T::wrap(v), &aval.shape))
            .collect()
    }
}

/// What the operations of one iteration read besides the buffers of the operations before
/// them: the consts, the carry entering it, the rows of the xs, and the plan's values.
struct Sources<'s, T> {
    consts: &'s [&'s [T]],
    carry: &'s [Vec<T>],
    row: &'s [&'s [T]],
    values: &'s [&'s [T]],
}

impl<'s, T> Sources<'s, T> {
    fn get<'a>(&'a self, s: Src, bufs: &'a [Vec<T>]) -> &'a [T] {
        let (nc, nk) = (self.consts.len(), self.carry.len());
        match s {
            Src::Input(k) if k < nc => self.consts[k],
            Src::Input(k) if k < nc + nk => &self.carry[k - nc],
            Src::Input(k) => self.row[k - nc - nk],
            Src::Buffer(b) => &bufs[b],
            Src::Value(v) => self.values[v],
        }
    }
}

/// One operation into `out`, by the kernel its step runs on the general route.
fn run<T: Float + MvFloat>(
    op: Op,
    args: &[Src],
    (from, bufs): (&Sources<'_, T>, &[Vec<T>]),
    out: &mut [T],
) {
    let arg = |k: usize| from.get(args[k], bufs);
    match op {
        Op::Unary(u) => {
            let f = T::unary(u);
            for (x, o) in arg(0).chunks(UNARY_BLOCK).zip(out.chunks_mut(UNARY_BLOCK)) {
                f(x, o);
            }
        }
        Op::Binary(b) => b.zip(arg(0), arg(1), out),
        Op::Product(layout) => vector_product(layout, arg(0), arg(1), out),
        // run by the iteration's loop, which has both outputs
        Op::Pair(..) | Op::Paired => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts that do not fit the body's inputs or outputs (never made by a checked scan)
    /// are refused, not indexed past.
    #[test]
    fn counts_beyond_the_inputs_or_outputs_are_refused() {
        let aval = Aval::new(vec![4], DType::F64);
        let (ins, avals) = ([0usize, 1], [aval.clone(), aval]);
        let out = [StepArg::Slot(1)];
        assert!(FixedBody::of(&ins, &avals, &[], &out, (1, 1)).is_some());
        assert!(FixedBody::of(&ins, &avals, &[], &out, (1, 2)).is_none());
        assert!(FixedBody::of(&ins, &avals, &[], &out, (usize::MAX, 1)).is_none());
        assert!(FixedBody::of(&ins, &avals, &[], &[], (1, 1)).is_none());
    }
}
