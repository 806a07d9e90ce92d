//! Shape rules: the output aval of every primitive, or an error naming what is wrong.
//!
//! Abstract evaluation, the half of a primitive's definition that tracing needs: given the
//! operands' avals, the output's aval. Every evaluator runs it before computing, so kernels
//! rely on well-typed operands; its errors name the operand or parameter at fault. The
//! output of every rule is a valid aval (`Aval::validate`), so parameters that would make a
//! shape whose size overflows are refused here, before anything is allocated.

use crate::ir::aval::Aval;
use crate::ir::collective::collective_aval;
use crate::ir::control::{
    checkpoint_avals, cond_avals, named_map_avals, scan_avals, while_avals, while_linear_avals,
};
use crate::ir::custom::{custom_jvp_avals, custom_lin_avals, custom_vjp_avals};
use crate::ir::dtype::DType;
use crate::ir::error::{Error, Result};
use crate::ir::indexing::{
    dynamic_slice_aval, dynamic_update_slice_aval, gather_aval, scatter_aval, ScatterCombine,
};
use crate::ir::primitive::{
    arithmetic, collectives, control_flow, linalg_ops, rounding, smooth_unary, Arity, Primitive,
};

impl Primitive {
    /// The avals of every output for the given operand avals (one for every primitive
    /// without sub-programs), or an error naming what is wrong. Every output is a valid aval
    /// ([`Aval::validate`]): parameters that would make a shape whose size overflows are
    /// errors here, before anything is allocated.
    pub fn out_avals(&self, args: &[&Aval]) -> Result<Vec<Aval>> {
        match self {
            Primitive::Cond { branches } => cond_avals(branches, args),
            Primitive::Scan {
                body,
                n_consts,
                n_carry,
                length,
                reverse: _,
            } => scan_avals(body, *n_consts, *n_carry, *length, args),
            Primitive::While {
                cond,
                body,
                n_cond_consts,
                n_body_consts,
                ..
            } => while_avals(cond, body, *n_cond_consts, *n_body_consts, args),
            Primitive::Checkpoint { body, .. } => checkpoint_avals(body, args),
            Primitive::NamedMap {
                body,
                axis_name,
                axis_size,
            } => named_map_avals(body, axis_name, *axis_size, args),
            Primitive::CustomJvp { body, rule, n_args } => {
                custom_jvp_avals(body, rule, *n_args, args)
            }
            Primitive::CustomVjp {
                body,
                fwd,
                bwd,
                tangent,
                n_args,
            } => custom_vjp_avals([body, fwd, bwd, tangent], *n_args, args),
            Primitive::CustomLin {
                forward,
                transpose,
                n_nonlin,
            } => custom_lin_avals(forward, transpose, *n_nonlin, args),
            Primitive::WhileLinear {
                body,
                step,
                n_consts,
                n_lin_consts,
                transposed,
                ..
            } => while_linear_avals(body, step, *n_consts, *n_lin_consts, *transposed, args),
            _ => Ok(vec![self.abstract_eval(args)?]),
        }
    }

    /// The output aval of a single-output primitive (see [`Primitive::out_avals`]).
    pub fn abstract_eval(&self, args: &[&Aval]) -> Result<Aval> {
        let out = self.shape_rule(args)?;
        // a scalar is always valid: skip the check on the commonest (eager) case
        if !out.shape.is_empty() {
            out.validate(self.name())?;
        }
        Ok(out)
    }

    fn shape_rule(&self, args: &[&Aval]) -> Result<Aval> {
        use Primitive::*;
        let op = self.name();
        match self.arity() {
            Arity::Any => {}
            Arity::Fixed(n) if args.len() != n => {
                return Err(Error::shape(
                    op,
                    format!("takes {n} operand(s), got {}", args.len()),
                ))
            }
            Arity::Variadic if args.is_empty() => {
                return Err(Error::shape(op, "takes at least one operand, got none"))
            }
            _ => {}
        }
        match self {
            // several outputs: their rule is `out_avals`
            control_flow!() => Err(Error::shape(
                op,
                "has one output per output of its sub-programs: see out_avals",
            )),
            smooth_unary!() | rounding!() => {
                require_float(op, args[0], "operand")?;
                Ok(args[0].clone())
            }
            // the identity, named for a checkpoint policy
            CheckpointName { .. } | StopGradient => Ok(args[0].clone()),
            collectives!() => {
                match self {
                    Psum { .. } | Pmax { .. } | Pmin { .. } | PsumScatter { .. } => {
                        require_numeric(op, args[0], "operand")?
                    }
                    Pmean { .. } => require_float(op, args[0], "operand")?,
                    _ => {}
                }
                collective_aval(self, args)
            }
            Neg | Abs | Sign => {
                require_numeric(op, args[0], "operand")?;
                Ok(args[0].clone())
            }
            IntegerPow { y } => {
                require_numeric(op, args[0], "operand")?;
                if *y < 0 && !args[0].dtype.is_float() {
                    return Err(Error::dtype(
                        op,
                        format!(
                            "negative exponent y={y} needs a float operand, got {}",
                            args[0]
                        ),
                    ));
                }
                Ok(args[0].clone())
            }
            arithmetic!() => {
                same_avals(op, args[0], args[1])?;
                require_numeric(op, args[0], "operands")?;
                Ok(args[0].clone())
            }
            Pow | Atan2 => {
                same_avals(op, args[0], args[1])?;
                require_float(op, args[0], "operands")?;
                Ok(args[0].clone())
            }
            Eq | Ne => {
                same_avals(op, args[0], args[1])?;
                Ok(Aval::new(args[0].shape.clone(), DType::Bool))
            }
            Lt | Le | Gt | Ge => {
                same_avals(op, args[0], args[1])?;
                require_numeric(op, args[0], "operands")?;
                Ok(Aval::new(args[0].shape.clone(), DType::Bool))
            }
            Select => {
                let (p, t, f) = (args[0], args[1], args[2]);
                if p.dtype != DType::Bool {
                    return Err(Error::dtype(op, format!("predicate must be bool, got {p}")));
                }
                if t != f {
                    return Err(Error::shape(
                        op,
                        format!("on_true {t} and on_false {f} differ"),
                    ));
                }
                if !crate::ir::same_shape(&p.shape, &t.shape) {
                    return Err(Error::shape(
                        op,
                        format!("predicate {p} and cases {t} have different shapes"),
                    ));
                }
                Ok(t.clone())
            }
            ConvertElementType { new_dtype } => Ok(Aval::new(args[0].shape.clone(), *new_dtype)),
            ReduceSum { axes } | ReduceMax { axes } | ReduceMin { axes } | ReduceProd { axes } => {
                require_numeric(op, args[0], "operand")?;
                check_axes(op, axes, args[0].ndim(), "axes")?;
                let shape = (0..args[0].ndim())
                    .filter(|d| !axes.contains(d))
                    .map(|d| args[0].shape[d])
                    .collect::<Vec<_>>();
                Ok(Aval::new(shape, args[0].dtype))
            }
            Argsort { axis, index_dtype } => {
                require_numeric(op, args[0], "operand")?;
                check_axes(op, &[*axis], args[0].ndim(), "axis")?;
                require_index_dtype(op, *index_dtype)?;
                Ok(Aval::new(args[0].shape.clone(), *index_dtype))
            }
            Argmax { axis, index_dtype } | Argmin { axis, index_dtype } => {
                require_numeric(op, args[0], "operand")?;
                check_axes(op, &[*axis], args[0].ndim(), "axis")?;
                require_index_dtype(op, *index_dtype)?;
                if args[0].shape[*axis] == 0 {
                    return Err(Error::shape(
                        op,
                        format!("axis {axis} of {} is empty: no extremum to find", args[0]),
                    ));
                }
                let mut shape = args[0].shape.clone();
                shape.remove(*axis);
                Ok(Aval::new(shape, *index_dtype))
            }
            BroadcastInDim {
                shape,
                broadcast_dimensions: bd,
            } => {
                let x = args[0];
                if bd.len() != x.ndim() {
                    return Err(Error::shape(
                        op,
                        format!(
                            "broadcast_dimensions {bd:?} must name one output dimension for each of the {} operand dimensions of {x}",
                            x.ndim()
                        ),
                    ));
                }
                if bd.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(Error::axis(
                        op,
                        format!("broadcast_dimensions {bd:?} must be strictly increasing"),
                    ));
                }
                for (i, &d) in bd.iter().enumerate() {
                    if d >= shape.len() {
                        return Err(Error::axis(
                            op,
                            format!("broadcast dimension {d} is out of range for output shape {shape:?}"),
                        ));
                    }
                    if x.shape[i] != 1 && x.shape[i] != shape[d] {
                        return Err(Error::shape(
                            op,
                            format!(
                                "operand dimension {i} of {x} (size {}) cannot broadcast to output dimension {d} of {shape:?} (size {})",
                                x.shape[i], shape[d]
                            ),
                        ));
                    }
                }
                Ok(Aval::new(shape.clone(), x.dtype))
            }
            Reshape { new_sizes } => {
                let new = Aval::new(new_sizes.clone(), args[0].dtype);
                new.validate(op)?;
                let n = new.size();
                if n != args[0].size() {
                    return Err(Error::shape(
                        op,
                        format!(
                            "cannot reshape {} ({} elements) to {new_sizes:?} ({n} elements)",
                            args[0],
                            args[0].size()
                        ),
                    ));
                }
                Ok(Aval::new(new_sizes.clone(), args[0].dtype))
            }
            Transpose { permutation } => {
                let r = args[0].ndim();
                let mut seen = vec![false; r];
                if permutation.len() != r
                    || permutation
                        .iter()
                        .any(|&p| p >= r || std::mem::replace(&mut seen[p], true))
                {
                    return Err(Error::axis(
                        op,
                        format!(
                            "{permutation:?} is not a permutation of the {r} dimensions of {}",
                            args[0]
                        ),
                    ));
                }
                let shape = permutation
                    .iter()
                    .map(|&p| args[0].shape[p])
                    .collect::<Vec<_>>();
                Ok(Aval::new(shape, args[0].dtype))
            }
            Squeeze { dimensions } => {
                check_axes(op, dimensions, args[0].ndim(), "dimensions")?;
                if let Some(&d) = dimensions.iter().find(|&&d| args[0].shape[d] != 1) {
                    return Err(Error::shape(
                        op,
                        format!(
                            "dimension {d} of {} has size {}, not 1",
                            args[0], args[0].shape[d]
                        ),
                    ));
                }
                let shape = (0..args[0].ndim())
                    .filter(|d| !dimensions.contains(d))
                    .map(|d| args[0].shape[d])
                    .collect::<Vec<_>>();
                Ok(Aval::new(shape, args[0].dtype))
            }
            ExpandDims { dimensions } => {
                let out_rank = args[0].ndim() + dimensions.len();
                check_axes(op, dimensions, out_rank, "dimensions")?;
                let mut rest = args[0].shape.iter();
                let shape = (0..out_rank)
                    .map(|d| {
                        if dimensions.contains(&d) {
                            1
                        } else {
                            *rest.next().expect("counted above")
                        }
                    })
                    .collect::<Vec<_>>();
                Ok(Aval::new(shape, args[0].dtype))
            }
            Slice {
                start,
                limit,
                strides,
            } => {
                let x = args[0];
                let r = x.ndim();
                if start.len() != r || limit.len() != r || strides.len() != r {
                    return Err(Error::shape(
                        op,
                        format!(
                            "start {start:?}, limit {limit:?} and strides {strides:?} must each have one entry per dimension of {x}"
                        ),
                    ));
                }
                let mut shape = Vec::with_capacity(r);
                for d in 0..r {
                    if start[d] > limit[d] || limit[d] > x.shape[d] {
                        return Err(Error::shape(
                            op,
                            format!(
                                "dimension {d}: need start <= limit <= size, got start {} limit {} size {}",
                                start[d], limit[d], x.shape[d]
                            ),
                        ));
                    }
                    if strides[d] == 0 {
                        return Err(Error::shape(op, format!("dimension {d}: stride is 0")));
                    }
                    shape.push((limit[d] - start[d]).div_ceil(strides[d]));
                }
                Ok(Aval::new(shape, x.dtype))
            }
            Pad {
                low,
                high,
                interior,
            } => {
                let (x, v) = (args[0], args[1]);
                if v.ndim() != 0 || v.dtype != x.dtype {
                    return Err(Error::shape(
                        op,
                        format!(
                            "padding value must be a scalar of dtype {}, got {v}",
                            x.dtype
                        ),
                    ));
                }
                let r = x.ndim();
                if low.len() != r || high.len() != r || interior.len() != r {
                    return Err(Error::shape(
                        op,
                        format!(
                            "low {low:?}, high {high:?} and interior {interior:?} must each have one entry per dimension of {x}"
                        ),
                    ));
                }
                let shape = (0..r)
                    .map(|d| {
                        let n = x.shape[d];
                        n.saturating_sub(1)
                            .checked_mul(interior[d])
                            .and_then(|i| i.checked_add(n))
                            .and_then(|s| s.checked_add(low[d]))
                            .and_then(|s| s.checked_add(high[d]))
                            .ok_or_else(|| {
                                Error::exhausted(
                                    op,
                                    format!(
                                        "dimension {d} of {x} padded with low {} high {} interior {} has more than {} elements",
                                        low[d], high[d], interior[d], usize::MAX
                                    ),
                                )
                            })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(Aval::new(shape, x.dtype))
            }
            Concatenate { dimension } => {
                let first = args[0];
                check_axes(op, &[*dimension], first.ndim(), "dimension")?;
                let mut size = 0;
                for (i, a) in args.iter().enumerate() {
                    if a.dtype != first.dtype {
                        return Err(Error::dtype(
                            op,
                            format!("operand {i} is {a} but operand 0 is {first}"),
                        ));
                    }
                    let same = a.ndim() == first.ndim()
                        && (0..a.ndim()).all(|d| d == *dimension || a.shape[d] == first.shape[d]);
                    if !same {
                        return Err(Error::shape(
                            op,
                            format!(
                                "operand {i} is {a} but operand 0 is {first}: shapes may differ only in dimension {dimension}"
                            ),
                        ));
                    }
                    size = usize::checked_add(size, a.shape[*dimension]).ok_or_else(|| {
                        Error::exhausted(
                            op,
                            format!(
                                "the joined dimension {dimension} has more than {} elements",
                                usize::MAX
                            ),
                        )
                    })?;
                }
                let mut shape = first.shape.clone();
                shape[*dimension] = size;
                Ok(Aval::new(shape, first.dtype))
            }
            Rev { dimensions } => {
                check_axes(op, dimensions, args[0].ndim(), "dimensions")?;
                Ok(args[0].clone())
            }
            Iota {
                dtype,
                shape,
                dimension,
            } => {
                if !dtype.is_numeric() {
                    return Err(Error::dtype(
                        op,
                        format!("needs a numeric dtype, got {dtype}"),
                    ));
                }
                check_axes(op, &[*dimension], shape.len(), "dimension")?;
                Ok(Aval::new(shape.clone(), *dtype))
            }
            DotGeneral {
                lhs_contracting: lc,
                rhs_contracting: rc,
                lhs_batch: lb,
                rhs_batch: rb,
            } => {
                let (l, r) = (args[0], args[1]);
                if l.dtype != r.dtype {
                    return Err(Error::dtype(
                        op,
                        format!("operands have different dtypes: {l} and {r}"),
                    ));
                }
                require_numeric(op, l, "operands")?;
                if lc.len() != rc.len() || lb.len() != rb.len() {
                    return Err(Error::shape(
                        op,
                        format!(
                            "lhs and rhs must name as many contracting ({lc:?} vs {rc:?}) and batch ({lb:?} vs {rb:?}) dimensions"
                        ),
                    ));
                }
                let lall: Vec<usize> = lb.iter().chain(lc).copied().collect();
                let rall: Vec<usize> = rb.iter().chain(rc).copied().collect();
                check_axes(op, &lall, l.ndim(), "lhs batch and contracting dimensions")?;
                check_axes(op, &rall, r.ndim(), "rhs batch and contracting dimensions")?;
                for (&a, &b) in lb.iter().zip(rb).chain(lc.iter().zip(rc)) {
                    if l.shape[a] != r.shape[b] {
                        return Err(Error::shape(
                            op,
                            format!(
                                "lhs dimension {a} of {l} (size {}) does not match rhs dimension {b} of {r} (size {})",
                                l.shape[a], r.shape[b]
                            ),
                        ));
                    }
                }
                let mut shape: Vec<usize> = lb.iter().map(|&d| l.shape[d]).collect();
                shape.extend(
                    (0..l.ndim())
                        .filter(|d| !lall.contains(d))
                        .map(|d| l.shape[d]),
                );
                shape.extend(
                    (0..r.ndim())
                        .filter(|d| !rall.contains(d))
                        .map(|d| r.shape[d]),
                );
                Ok(Aval::new(shape, l.dtype))
            }
            Cumsum { axis, .. } => {
                require_numeric(op, args[0], "operand")?;
                check_axes(op, &[*axis], args[0].ndim(), "axis")?;
                Ok(args[0].clone())
            }
            linalg_ops!() => crate::ir::linalg::linalg_aval(self, args),
            Threefry2x32 => {
                let (k, x) = (args[0], args[1]);
                let pairs = |a: &Aval| a.dtype == DType::I32 && a.shape.last() == Some(&2);
                if !pairs(k) || !pairs(x) || k.shape != x.shape {
                    return Err(Error::shape(
                        op,
                        format!("takes keys and counters of one shape, i32 with a last dimension of 2: got {k} and {x}"),
                    ));
                }
                Ok(x.clone())
            }
            Gather { axis, batch, .. } => gather_aval(op, args[0], args[1], *axis, *batch),
            ScatterAdd { axis, batch, .. } => scatter_aval(op, args, *axis, *batch, true),
            Scatter {
                axis,
                batch,
                combine,
                ..
            } => scatter_aval(op, args, *axis, *batch, *combine != ScatterCombine::Set),
            DynamicSlice { sizes } => dynamic_slice_aval(op, args, sizes),
            DynamicUpdateSlice => dynamic_update_slice_aval(op, args),
        }
    }
}

fn require_float(op: &str, a: &Aval, what: &str) -> Result<()> {
    if a.dtype.is_float() {
        Ok(())
    } else {
        Err(Error::dtype(
            op,
            format!("{what} must be f32 or f64, got {a}"),
        ))
    }
}

fn require_index_dtype(op: &str, d: DType) -> Result<()> {
    if d.is_int() {
        Ok(())
    } else {
        Err(Error::dtype(
            op,
            format!("index_dtype must be i32 or i64, got {d}"),
        ))
    }
}

fn require_numeric(op: &str, a: &Aval, what: &str) -> Result<()> {
    if a.dtype.is_numeric() {
        Ok(())
    } else {
        Err(Error::dtype(op, format!("{what} must be numeric, got {a}")))
    }
}

fn same_avals(op: &str, a: &Aval, b: &Aval) -> Result<()> {
    if a.dtype != b.dtype {
        return Err(Error::dtype(
            op,
            format!("operands have different dtypes: {a} and {b}"),
        ));
    }
    if !crate::ir::aval::same_shape(&a.shape, &b.shape) {
        return Err(Error::shape(
            op,
            format!("operands have different shapes: {a} and {b}"),
        ));
    }
    Ok(())
}

/// Axes must be in range for `rank` and not repeated.
fn check_axes(op: &str, axes: &[usize], rank: usize, what: &str) -> Result<()> {
    for (i, &a) in axes.iter().enumerate() {
        if a >= rank {
            return Err(Error::axis(
                op,
                format!("{what} {axes:?}: {a} is out of range for rank {rank}"),
            ));
        }
        if axes[..i].contains(&a) {
            return Err(Error::axis(op, format!("{what} {axes:?}: {a} is repeated")));
        }
    }
    Ok(())
}
