//! The reference evaluator: the definition of every primitive, on host arrays.
//!
//! The last stage of the pipeline. [`eval_primitive`] gives each primitive its meaning in
//! plain, obvious code (matrix products go through `gemm`, products with a vector through
//! `matvec`, whose summation order the CPU plans share); [`Program::eval`] interprets a
//! program equation by equation. Eager tensor operations call `eval_primitive` directly, so
//! eager and traced-then-evaluated computations agree bit for bit. Later fast paths (jit,
//! vectorised kernels) are tested against this module, never the other way round.
//!
//! Every function here first runs the primitive's shape rule, so the kernels below can rely
//! on operands being well typed.

mod control;
mod extremum;
mod indexing;
mod kernels;
mod linalg;
pub(crate) mod matvec;
pub(crate) mod named_map;
#[cfg(test)]
mod reduce_tests;
mod sort;
mod threefry;
pub(crate) mod while_linear;

pub(crate) use self::control::{eval_equation, eval_while, fixed_avals, too_many_steps};

pub(crate) use self::kernels::{max_nan, min_nan};

use self::extremum::reduce_extremum;
use self::kernels::*;
use self::sort::{argsort, rem_int};
use crate::ir::collective::unbound;
use crate::ir::{
    collectives, control_flow, ensure_allocatable, indexing_ops, linalg_ops, strides, Array, Aval,
    DType, Data, Env, Error, Primitive, Program, Result,
};

/// Applies one primitive to concrete arrays.
///
/// ```
/// use ferrax::{eval_primitive, Array, Primitive};
/// let x = Array::from_slice(&[0.0f64, 1.0]);
/// let y = eval_primitive(&Primitive::Exp, &[&x]).unwrap();
/// assert_eq!(y.to_vec::<f64>().unwrap(), vec![1.0, std::f64::consts::E]);
/// ```
pub fn eval_primitive(prim: &Primitive, args: &[&Array]) -> Result<Array> {
    count(prim);
    let avals: Vec<Aval> = args.iter().map(|a| a.aval()).collect();
    let refs: Vec<&Aval> = avals.iter().collect();
    let out = prim.abstract_eval(&refs)?;
    let peak = peak_bytes(prim, args, &out);
    if peak >= LARGE {
        ensure_allocatable(prim.name(), &out, peak)?;
    }
    let data = compute(prim, args, &out)?;
    Array::from_data(data, &out.shape)
}

/// About the most memory [`compute`] allocates for one primitive: the output, index
/// vectors of the output's length (movement primitives gather through a `usize` per
/// element, `concatenate` through two), and for `dot_general` the operands brought to
/// matrix layout.
fn peak_bytes(prim: &Primitive, args: &[&Array], out: &Aval) -> usize {
    let operands = match prim {
        Primitive::DotGeneral { .. } => args.iter().map(|a| a.bytes()).sum(),
        _ => 0,
    };
    let n = out.size();
    n.saturating_mul(out.dtype.size_bytes() + 16)
        .saturating_add(operands)
}

/// Peaks below this are not worth asking the allocator about (see `ensure_allocatable`).
const LARGE: usize = 1 << 20;

thread_local! {
    static COUNTS: std::cell::RefCell<[u64; Primitive::COUNT]> = const { std::cell::RefCell::new([0; Primitive::COUNT]) };
}

/// Counts one evaluation of a primitive (by the reference evaluator or a compiled plan).
pub(crate) fn count(prim: &Primitive) {
    COUNTS.with(|c| c.borrow_mut()[prim.ordinal()] += 1);
}

/// How many times each primitive has been evaluated on this thread (by the reference
/// evaluator or by compiled plans) since the last [`reset_eval_counts`]: the instrument
/// tests use to show that, for example, applying a linear map evaluates no nonlinear
/// primitive.
pub fn eval_counts() -> std::collections::BTreeMap<&'static str, u64> {
    COUNTS.with(|c| {
        c.borrow()
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(i, &n)| (crate::ir::PRIMITIVE_NAMES[i], n))
            .collect()
    })
}

/// Resets the counters of [`eval_counts`].
pub fn reset_eval_counts() {
    COUNTS.with(|c| *c.borrow_mut() = [0; Primitive::COUNT]);
}

impl Program {
    /// Evaluates the program on concrete inputs with the reference evaluator. A program that
    /// does not type-check ([`Program::check`]) is an error.
    ///
    /// ```
    /// use ferrax::{Array, Program};
    /// let p = Program::parse("{ lambda ; a:f64[] . let b:f64[] = mul a 2.0:f64 in (b) }").unwrap();
    /// let out = p.eval(&[Array::scalar(1.5f64)]).unwrap();
    /// assert_eq!(out[0].to_vec::<f64>().unwrap(), vec![3.0]);
    /// ```
    pub fn eval(&self, args: &[Array]) -> Result<Vec<Array>> {
        // a hand-built program may be malformed (the fields are public)
        self.check()?;
        self.eval_checked(args)
    }

    /// [`Program::eval`] for a program known to type-check (a sub-program, checked with its
    /// caller, evaluated once per iteration).
    pub(crate) fn eval_checked(&self, args: &[Array]) -> Result<Vec<Array>> {
        let avals: Vec<Aval> = args.iter().map(Array::aval).collect();
        self.check_args("Program::eval", &avals)?;
        let mut env = Env::bind(self, args.iter().cloned(), Array::clone);
        for e in &self.eqns {
            let ins = e
                .inputs
                .iter()
                .map(|a| env.read(a, Array::from_scalar))
                .collect::<Result<Vec<_>>>()?;
            let refs: Vec<&Array> = ins.iter().collect();
            let outs = eval_equation(&e.prim, &refs).map_err(|err| match e.loc {
                Some(l) => err.with_loc(l),
                None => err,
            })?;
            for (v, out) in e.outs.iter().zip(outs) {
                env.write(*v, out);
            }
        }
        self.outputs
            .iter()
            .map(|a| env.read(a, Array::from_scalar))
            .collect()
    }
}

fn compute(prim: &Primitive, args: &[&Array], out: &Aval) -> Result<Data> {
    use Primitive::*;
    let x = || args[0].data();
    let y = || args[1].data();
    let shape = || args[0].shape();
    Ok(match prim {
        control_flow!() => {
            return Err(Error::internal(format!(
                "`{}` reached the single-output evaluator (control flow is evaluated by `eval_equation`)",
                prim.name()
            )))
        }
        // combine the members of a map: only the map that binds the axis gives them a value
        collectives!() => return Err(unbound(prim)),
        Neg => numeric!(x(), v => map(v, Num::neg)),
        Abs => numeric!(x(), v => map(v, Num::abs)),
        Sign => numeric!(x(), v => map(v, Num::sign)),
        IntegerPow { y } => numeric!(x(), v => map(v, |a| ipow(a, *y))),
        Sin => float_unary(x(), f32::sin, f64::sin),
        Cos => float_unary(x(), f32::cos, f64::cos),
        Tan => float_unary(x(), f32::tan, f64::tan),
        Exp => float_unary(x(), f32::exp, f64::exp),
        Log => float_unary(x(), f32::ln, f64::ln),
        Log1p => float_unary(x(), f32::ln_1p, f64::ln_1p),
        Expm1 => float_unary(x(), f32::exp_m1, f64::exp_m1),
        Tanh => float_unary(x(), f32::tanh, f64::tanh),
        Logistic => float_unary(
            x(),
            |a| 1.0 / (1.0 + (-a).exp()),
            |a| 1.0 / (1.0 + (-a).exp()),
        ),
        Sqrt => float_unary(x(), f32::sqrt, f64::sqrt),
        Rsqrt => float_unary(x(), |a| 1.0 / a.sqrt(), |a| 1.0 / a.sqrt()),
        Floor => float_unary(x(), f32::floor, f64::floor),
        Ceil => float_unary(x(), f32::ceil, f64::ceil),
        Round => float_unary(x(), f32::round, f64::round),
        Erf => float_unary(x(), libm::erff, libm::erf),
        Asin => float_unary(x(), f32::asin, f64::asin),
        Acos => float_unary(x(), f32::acos, f64::acos),
        Atan => float_unary(x(), f32::atan, f64::atan),
        Asinh => float_unary(x(), f32::asinh, f64::asinh),
        Acosh => float_unary(x(), f32::acosh, f64::acosh),
        Atanh => float_unary(x(), f32::atanh, f64::atanh),
        Rem => match (x(), y()) {
            (Data::F32(a), Data::F32(b)) => Data::F32(zip(a, b, |u, v| u % v)),
            (Data::F64(a), Data::F64(b)) => Data::F64(zip(a, b, |u, v| u % v)),
            (Data::I32(a), Data::I32(b)) => Data::I32(zip(a, b, |u, v| rem_int(u, v, i32::wrapping_rem))),
            (Data::I64(a), Data::I64(b)) => Data::I64(zip(a, b, |u, v| rem_int(u, v, i64::wrapping_rem))),
            _ => unreachable!("the shape rule admits equal numeric dtypes only"),
        },
        Add => numeric2!(x(), y(), a, b => zip(a, b, Num::add)),
        Sub => numeric2!(x(), y(), a, b => zip(a, b, Num::sub)),
        Mul => numeric2!(x(), y(), a, b => zip(a, b, Num::mul)),
        Div => numeric2!(x(), y(), a, b => zip(a, b, Num::div)),
        Max => numeric2!(x(), y(), a, b => zip(a, b, Num::max_nan)),
        Min => numeric2!(x(), y(), a, b => zip(a, b, Num::min_nan)),
        Pow => float_binary(x(), y(), f32::powf, f64::powf),
        Atan2 => float_binary(x(), y(), f32::atan2, f64::atan2),
        Eq => compare(x(), y(), |o| o.is_eq(), true),
        Ne => compare(x(), y(), |o| o.is_ne(), true),
        Lt => compare(x(), y(), |o| o.is_lt(), false),
        Le => compare(x(), y(), |o| o.is_le(), false),
        Gt => compare(x(), y(), |o| o.is_gt(), false),
        Ge => compare(x(), y(), |o| o.is_ge(), false),
        Select => {
            let Data::Bool(p) = x() else {
                unreachable!("the shape rule admits a bool predicate only")
            };
            match (y(), args[2].data()) {
                (Data::F32(t), Data::F32(f)) => Data::F32(select(p, t, f)),
                (Data::F64(t), Data::F64(f)) => Data::F64(select(p, t, f)),
                (Data::I32(t), Data::I32(f)) => Data::I32(select(p, t, f)),
                (Data::I64(t), Data::I64(f)) => Data::I64(select(p, t, f)),
                (Data::Bool(t), Data::Bool(f)) => Data::Bool(select(p, t, f)),
                _ => unreachable!("the shape rule admits equal case dtypes only"),
            }
        }
        ConvertElementType { new_dtype } => convert(x(), *new_dtype),
        ReduceSum { axes } => numeric!(x(), v => reduce(v, shape(), axes, Num::ZERO, Num::add)),
        ReduceProd { axes } => numeric!(x(), v => reduce(v, shape(), axes, Num::ONE, Num::mul)),
        ReduceMax { axes } => numeric!(x(), v => reduce_extremum(
            v,
            shape(),
            axes,
            Num::LOWEST,
            Num::max_nan,
            |v, a| v > a
        )),
        ReduceMin { axes } => numeric!(x(), v => reduce_extremum(
            v,
            shape(),
            axes,
            Num::HIGHEST,
            Num::min_nan,
            |v, a| v < a
        )),
        Argmax { axis, index_dtype } | Argmin { axis, index_dtype } | Argsort { axis, index_dtype } => {
            let min = matches!(prim, Argmin { .. });
            let idx = match (x(), prim) {
                (Data::F32(v), Argsort { .. }) => argsort(v, shape(), *axis),
                (Data::F64(v), Argsort { .. }) => argsort(v, shape(), *axis),
                (Data::I32(v), Argsort { .. }) => argsort(v, shape(), *axis),
                (Data::I64(v), Argsort { .. }) => argsort(v, shape(), *axis),
                (Data::F32(v), _) => argmax(v, shape(), *axis, min),
                (Data::F64(v), _) => argmax(v, shape(), *axis, min),
                (Data::I32(v), _) => argmax(v, shape(), *axis, min),
                (Data::I64(v), _) => argmax(v, shape(), *axis, min),
                (Data::Bool(_), _) => unreachable!("the shape rule admits numeric operands only"),
            };
            match index_dtype {
                DType::I32 => Data::I32(idx.iter().map(|&i| i as i32).collect()),
                _ => Data::I64(idx),
            }
        }
        // a scalar (or one element) repeated: the common case (a literal's broadcast), filled
        BroadcastInDim { .. } if x().len() == 1 => repeat(x(), out.size()),
        BroadcastInDim {
            broadcast_dimensions: bd,
            ..
        } => {
            let ist = strides(shape());
            let src = source_indices(&out.shape, |o| {
                bd.iter()
                    .enumerate()
                    .map(|(i, &d)| if shape()[i] == 1 { 0 } else { o[d] * ist[i] })
                    .sum()
            });
            gather_data(x(), &src)
        }
        // Row-major order is unchanged by these: the buffer is shared as it is.
        Reshape { .. } | Squeeze { .. } | ExpandDims { .. } | CheckpointName { .. } | StopGradient => {
            x().clone()
        }
        Transpose { permutation } => {
            let ist = strides(shape());
            let src = source_indices(&out.shape, |o| {
                permutation
                    .iter()
                    .enumerate()
                    .map(|(i, &p)| o[i] * ist[p])
                    .sum()
            });
            gather_data(x(), &src)
        }
        Slice {
            start, strides: sd, ..
        } => {
            let ist = strides(shape());
            let src = source_indices(&out.shape, |o| {
                (0..o.len())
                    .map(|d| (start[d] + o[d] * sd[d]) * ist[d])
                    .sum()
            });
            gather_data(x(), &src)
        }
        Rev { dimensions } => {
            let ist = strides(shape());
            let src = source_indices(&out.shape, |o| {
                (0..o.len())
                    .map(|d| {
                        let i = if dimensions.contains(&d) {
                            shape()[d] - 1 - o[d]
                        } else {
                            o[d]
                        };
                        i * ist[d]
                    })
                    .sum()
            });
            gather_data(x(), &src)
        }
        Pad { low, interior, .. } => {
            // Source index per output element, with `usize::MAX` marking padding.
            let ist = strides(shape());
            let src = source_indices(&out.shape, |o| {
                let mut s = 0;
                for d in 0..o.len() {
                    let Some(p) = o[d].checked_sub(low[d]) else {
                        return usize::MAX;
                    };
                    let step = interior[d].saturating_add(1);
                    if p % step != 0 || p / step >= shape()[d] {
                        return usize::MAX;
                    }
                    s += (p / step) * ist[d];
                }
                s
            });
            let fill = args[1].data().get(0);
            let pick = |k: usize| if k == usize::MAX { fill } else { x().get(k) };
            Data::from_scalars(out.dtype, src.iter().map(|&k| pick(k)))
        }
        Concatenate { dimension } => {
            let d = *dimension;
            let lens: Vec<usize> = args.iter().map(|a| a.shape()[d]).collect();
            let all_strides: Vec<Vec<usize>> = args.iter().map(|a| strides(a.shape())).collect();
            // For each output element: which operand, and its flat index there.
            let mut picks = Vec::with_capacity(out.size());
            for_each_index(&out.shape, |o| {
                let (mut pos, mut k) = (o[d], 0);
                while pos >= lens[k] {
                    pos -= lens[k];
                    k += 1;
                }
                let mut idx = o.to_vec();
                idx[d] = pos;
                picks.push((k, flat(&idx, &all_strides[k])));
            });
            Data::from_scalars(out.dtype, picks.iter().map(|&(k, i)| args[k].data().get(i)))
        }
        Iota {
            dtype,
            shape,
            dimension,
        } => Array::iota_in_range(shape, *dimension, *dtype)?
            .data()
            .clone(),
        DotGeneral {
            lhs_contracting: lc,
            rhs_contracting: rc,
            lhs_batch: lb,
            rhs_batch: rb,
        } => {
            let (l, r) = (args[0], args[1]);
            let lfree: Vec<usize> = (0..l.ndim())
                .filter(|d| !lc.contains(d) && !lb.contains(d))
                .collect();
            let rfree: Vec<usize> = (0..r.ndim())
                .filter(|d| !rc.contains(d) && !rb.contains(d))
                .collect();
            let size =
                |a: &Array, dims: &[usize]| dims.iter().map(|&d| a.shape()[d]).product::<usize>();
            let (b, m, k, n) = (size(l, lb), size(l, &lfree), size(l, lc), size(r, &rfree));
            // Bring the operands to [batch, free, contracting] and [batch, contracting, free].
            let lperm: Vec<usize> = lb.iter().chain(&lfree).chain(lc).copied().collect();
            let rperm: Vec<usize> = rb.iter().chain(rc).chain(&rfree).copied().collect();
            let lt = transpose_data(l, &lperm);
            let rt = transpose_data(r, &rperm);
            // a vector operand: products in `matvec`'s order, which the CPU plans share
            match matvec::batched(&lt, &rt, b, m, k, n) {
                Some(d) => d,
                None => numeric2!(&lt, &rt, a, c => batched_matmul(a, c, b, m, k, n)?),
            }
        }
        Cumsum { axis, reverse } => numeric!(x(), v => cumsum(v, shape(), *axis, *reverse)),
        linalg_ops!() => linalg::eval_linalg(prim, args, out.dtype),
        Threefry2x32 => match (x(), y()) {
            (Data::I32(k), Data::I32(c)) => Data::I32(threefry::threefry_pairs(k, c)),
            _ => unreachable!("the shape rule admits i32 keys and counters only"),
        },
        indexing_ops!() => indexing::eval_indexing(prim, args, &out.shape),
    })
}
