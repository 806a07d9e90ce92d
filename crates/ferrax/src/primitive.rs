//! The closed set of primitives and their shape/dtype rules.
//!
//! Every program is a sequence of equations, each applying one [`Primitive`] to operands.
//! This module is the single definition of what a primitive *is*: its name in program text,
//! its static parameters and its abstract evaluation (`abstract_eval`: operand avals to the
//! output aval, or an error saying which operand or parameter is wrong). The evaluator
//! (`eval`) gives each primitive its meaning; later passes (jvp, transpose, vmap) add one rule
//! per primitive in their own modules, each an exhaustive `match` with no wildcard arm, so
//! adding a variant here makes the compiler list every rule still missing.
//!
//! Binary elementwise primitives take operands of equal shape and dtype: broadcasting and the
//! weak typing of Rust numbers are the surface's business (`tensor`), done with
//! `broadcast_in_dim` and literals, so the rules here stay strict and simple.

use std::fmt;

use crate::dtype::{Aval, DType};
use crate::error::{Error, Result};

/// A primitive operation with its static parameters. The set is closed; see
/// `docs/primitives.md` for the semantics of each.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Primitive {
    // ---- unary elementwise ----
    /// `-x`. Numeric.
    Neg,
    /// Float only.
    Sin,
    /// Float only.
    Cos,
    /// Float only.
    Tan,
    /// Float only.
    Exp,
    /// Natural logarithm. Float only.
    Log,
    /// `log(1 + x)`, accurate near 0. Float only.
    Log1p,
    /// `exp(x) - 1`, accurate near 0. Float only.
    Expm1,
    /// Float only.
    Tanh,
    /// `1 / (1 + exp(-x))`. Float only.
    Logistic,
    /// Float only.
    Sqrt,
    /// `1 / sqrt(x)`. Float only.
    Rsqrt,
    /// Numeric.
    Abs,
    /// -1, 0 or 1 (NaN for NaN). Numeric.
    Sign,
    /// Float only.
    Floor,
    /// Float only.
    Ceil,
    /// Rounds half away from zero (lax's default). Float only.
    Round,
    /// The error function. Float only.
    Erf,
    /// `x^y` for a static integer `y` (negative `y` for floats only).
    IntegerPow {
        y: i32,
    },

    // ---- binary elementwise (equal avals) ----
    Add,
    Sub,
    Mul,
    /// Integer division truncates; division by zero gives -1 (as XLA does), never a trap.
    Div,
    /// `x^y` for float `x` and `y`.
    Pow,
    /// NaN-propagating maximum.
    Max,
    /// NaN-propagating minimum.
    Min,
    /// `atan2(x, y)`: the angle of the point `(y, x)`. Float only.
    Atan2,

    // ---- comparisons (equal avals, bool output) ----
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,

    /// `select(pred, on_true, on_false)`: elementwise choice; `pred` is bool of the same shape.
    Select,
    /// Elementwise conversion to another dtype (float to int truncates and saturates).
    ConvertElementType {
        new_dtype: DType,
    },

    // ---- reductions ----
    /// Sum over the given axes (removed from the shape).
    ReduceSum {
        axes: Vec<usize>,
    },
    /// Maximum over the given axes (-inf, or the least integer, over an empty axis).
    ReduceMax {
        axes: Vec<usize>,
    },
    /// Minimum over the given axes (+inf, or the greatest integer, over an empty axis).
    ReduceMin {
        axes: Vec<usize>,
    },
    /// Index of the first maximum along `axis` (a NaN counts as the maximum).
    Argmax {
        axis: usize,
        index_dtype: DType,
    },

    // ---- shape operations ----
    /// Operand dimension `i` becomes output dimension `broadcast_dimensions[i]` (size 1 or
    /// equal); the other output dimensions are new. `broadcast_dimensions` increases strictly.
    BroadcastInDim {
        shape: Vec<usize>,
        broadcast_dimensions: Vec<usize>,
    },
    /// Row-major reshape to `new_sizes` (same number of elements).
    Reshape {
        new_sizes: Vec<usize>,
    },
    /// Output dimension `i` is operand dimension `permutation[i]`.
    Transpose {
        permutation: Vec<usize>,
    },
    /// Removes the given dimensions, each of size 1.
    Squeeze {
        dimensions: Vec<usize>,
    },
    /// Inserts size-1 dimensions at the given positions of the output.
    ExpandDims {
        dimensions: Vec<usize>,
    },
    /// Elements `start[d] + k * strides[d]` below `limit[d]` of each dimension `d`.
    Slice {
        start: Vec<usize>,
        limit: Vec<usize>,
        strides: Vec<usize>,
    },
    /// `pad(operand, padding_value)`: `low`/`high` elements before/after each dimension and
    /// `interior` between neighbours, all filled with the scalar `padding_value`.
    Pad {
        low: Vec<usize>,
        high: Vec<usize>,
        interior: Vec<usize>,
    },
    /// Joins one or more operands along `dimension`.
    Concatenate {
        dimension: usize,
    },
    /// Reverses the order of elements along the given dimensions.
    Rev {
        dimensions: Vec<usize>,
    },
    /// No operands: the array whose element at index `i` is `i[dimension]`.
    Iota {
        dtype: DType,
        shape: Vec<usize>,
        dimension: usize,
    },

    // ---- contraction and scans ----
    /// Generalised matrix product. Output dimensions: batch, then lhs free, then rhs free.
    DotGeneral {
        lhs_contracting: Vec<usize>,
        rhs_contracting: Vec<usize>,
        lhs_batch: Vec<usize>,
        rhs_batch: Vec<usize>,
    },
    /// Inclusive cumulative sum along `axis` (from the end when `reverse`).
    Cumsum {
        axis: usize,
        reverse: bool,
    },
}

/// How many operands a primitive takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    Fixed(usize),
    /// One or more.
    Variadic,
}

/// A parameter value, as it appears in program text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Param {
    Int(i64),
    Bool(bool),
    DType(DType),
    Ints(Vec<usize>),
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Param::Int(i) => write!(f, "{i}"),
            Param::Bool(b) => write!(f, "{b}"),
            Param::DType(d) => write!(f, "{d}"),
            Param::Ints(v) => {
                f.write_str("(")?;
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{x}")?;
                }
                if v.len() == 1 {
                    f.write_str(",")?;
                }
                f.write_str(")")
            }
        }
    }
}

/// The names of every primitive, in declaration order (for documentation and coverage).
pub const PRIMITIVE_NAMES: &[&str] = &[
    "neg",
    "sin",
    "cos",
    "tan",
    "exp",
    "log",
    "log1p",
    "expm1",
    "tanh",
    "logistic",
    "sqrt",
    "rsqrt",
    "abs",
    "sign",
    "floor",
    "ceil",
    "round",
    "erf",
    "integer_pow",
    "add",
    "sub",
    "mul",
    "div",
    "pow",
    "max",
    "min",
    "atan2",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "select",
    "convert_element_type",
    "reduce_sum",
    "reduce_max",
    "reduce_min",
    "argmax",
    "broadcast_in_dim",
    "reshape",
    "transpose",
    "squeeze",
    "expand_dims",
    "slice",
    "pad",
    "concatenate",
    "rev",
    "iota",
    "dot_general",
    "cumsum",
];

impl Primitive {
    /// The name in program text.
    pub fn name(&self) -> &'static str {
        use Primitive::*;
        match self {
            Neg => "neg",
            Sin => "sin",
            Cos => "cos",
            Tan => "tan",
            Exp => "exp",
            Log => "log",
            Log1p => "log1p",
            Expm1 => "expm1",
            Tanh => "tanh",
            Logistic => "logistic",
            Sqrt => "sqrt",
            Rsqrt => "rsqrt",
            Abs => "abs",
            Sign => "sign",
            Floor => "floor",
            Ceil => "ceil",
            Round => "round",
            Erf => "erf",
            IntegerPow { .. } => "integer_pow",
            Add => "add",
            Sub => "sub",
            Mul => "mul",
            Div => "div",
            Pow => "pow",
            Max => "max",
            Min => "min",
            Atan2 => "atan2",
            Eq => "eq",
            Ne => "ne",
            Lt => "lt",
            Le => "le",
            Gt => "gt",
            Ge => "ge",
            Select => "select",
            ConvertElementType { .. } => "convert_element_type",
            ReduceSum { .. } => "reduce_sum",
            ReduceMax { .. } => "reduce_max",
            ReduceMin { .. } => "reduce_min",
            Argmax { .. } => "argmax",
            BroadcastInDim { .. } => "broadcast_in_dim",
            Reshape { .. } => "reshape",
            Transpose { .. } => "transpose",
            Squeeze { .. } => "squeeze",
            ExpandDims { .. } => "expand_dims",
            Slice { .. } => "slice",
            Pad { .. } => "pad",
            Concatenate { .. } => "concatenate",
            Rev { .. } => "rev",
            Iota { .. } => "iota",
            DotGeneral { .. } => "dot_general",
            Cumsum { .. } => "cumsum",
        }
    }

    /// The primitive's position in [`PRIMITIVE_NAMES`] (for cheap per-primitive tables).
    pub fn ordinal(&self) -> usize {
        use Primitive::*;
        match self {
            Neg => 0,
            Sin => 1,
            Cos => 2,
            Tan => 3,
            Exp => 4,
            Log => 5,
            Log1p => 6,
            Expm1 => 7,
            Tanh => 8,
            Logistic => 9,
            Sqrt => 10,
            Rsqrt => 11,
            Abs => 12,
            Sign => 13,
            Floor => 14,
            Ceil => 15,
            Round => 16,
            Erf => 17,
            IntegerPow { .. } => 18,
            Add => 19,
            Sub => 20,
            Mul => 21,
            Div => 22,
            Pow => 23,
            Max => 24,
            Min => 25,
            Atan2 => 26,
            Eq => 27,
            Ne => 28,
            Lt => 29,
            Le => 30,
            Gt => 31,
            Ge => 32,
            Select => 33,
            ConvertElementType { .. } => 34,
            ReduceSum { .. } => 35,
            ReduceMax { .. } => 36,
            ReduceMin { .. } => 37,
            Argmax { .. } => 38,
            BroadcastInDim { .. } => 39,
            Reshape { .. } => 40,
            Transpose { .. } => 41,
            Squeeze { .. } => 42,
            ExpandDims { .. } => 43,
            Slice { .. } => 44,
            Pad { .. } => 45,
            Concatenate { .. } => 46,
            Rev { .. } => 47,
            Iota { .. } => 48,
            DotGeneral { .. } => 49,
            Cumsum { .. } => 50,
        }
    }

    /// How many operands the primitive takes.
    pub fn arity(&self) -> Arity {
        use Primitive::*;
        match self {
            Iota { .. } => Arity::Fixed(0),
            Neg
            | Sin
            | Cos
            | Tan
            | Exp
            | Log
            | Log1p
            | Expm1
            | Tanh
            | Logistic
            | Sqrt
            | Rsqrt
            | Abs
            | Sign
            | Floor
            | Ceil
            | Round
            | Erf
            | IntegerPow { .. } => Arity::Fixed(1),
            ConvertElementType { .. }
            | ReduceSum { .. }
            | ReduceMax { .. }
            | ReduceMin { .. }
            | Argmax { .. }
            | BroadcastInDim { .. }
            | Reshape { .. }
            | Transpose { .. }
            | Squeeze { .. }
            | ExpandDims { .. }
            | Slice { .. }
            | Rev { .. }
            | Cumsum { .. } => Arity::Fixed(1),
            Add
            | Sub
            | Mul
            | Div
            | Pow
            | Max
            | Min
            | Atan2
            | Eq
            | Ne
            | Lt
            | Le
            | Gt
            | Ge
            | Pad { .. }
            | DotGeneral { .. } => Arity::Fixed(2),
            Select => Arity::Fixed(3),
            Concatenate { .. } => Arity::Variadic,
        }
    }

    /// The static parameters, in the order program text prints them.
    pub fn params(&self) -> Vec<(&'static str, Param)> {
        use Primitive::*;
        let ints = |v: &Vec<usize>| Param::Ints(v.clone());
        match self {
            IntegerPow { y } => vec![("y", Param::Int(*y as i64))],
            ConvertElementType { new_dtype } => vec![("new_dtype", Param::DType(*new_dtype))],
            ReduceSum { axes } | ReduceMax { axes } | ReduceMin { axes } => {
                vec![("axes", ints(axes))]
            }
            Argmax { axis, index_dtype } => vec![
                ("axis", Param::Int(*axis as i64)),
                ("index_dtype", Param::DType(*index_dtype)),
            ],
            BroadcastInDim {
                shape,
                broadcast_dimensions,
            } => vec![
                ("shape", ints(shape)),
                ("broadcast_dimensions", ints(broadcast_dimensions)),
            ],
            Reshape { new_sizes } => vec![("new_sizes", ints(new_sizes))],
            Transpose { permutation } => vec![("permutation", ints(permutation))],
            Squeeze { dimensions } | ExpandDims { dimensions } | Rev { dimensions } => {
                vec![("dimensions", ints(dimensions))]
            }
            Slice {
                start,
                limit,
                strides,
            } => vec![
                ("start", ints(start)),
                ("limit", ints(limit)),
                ("strides", ints(strides)),
            ],
            Pad {
                low,
                high,
                interior,
            } => vec![
                ("low", ints(low)),
                ("high", ints(high)),
                ("interior", ints(interior)),
            ],
            Concatenate { dimension } => vec![("dimension", Param::Int(*dimension as i64))],
            Iota {
                dtype,
                shape,
                dimension,
            } => vec![
                ("dtype", Param::DType(*dtype)),
                ("shape", ints(shape)),
                ("dimension", Param::Int(*dimension as i64)),
            ],
            DotGeneral {
                lhs_contracting,
                rhs_contracting,
                lhs_batch,
                rhs_batch,
            } => vec![
                ("lhs_contracting", ints(lhs_contracting)),
                ("rhs_contracting", ints(rhs_contracting)),
                ("lhs_batch", ints(lhs_batch)),
                ("rhs_batch", ints(rhs_batch)),
            ],
            Cumsum { axis, reverse } => vec![
                ("axis", Param::Int(*axis as i64)),
                ("reverse", Param::Bool(*reverse)),
            ],
            Neg | Sin | Cos | Tan | Exp | Log | Log1p | Expm1 | Tanh | Logistic | Sqrt | Rsqrt
            | Abs | Sign | Floor | Ceil | Round | Erf | Add | Sub | Mul | Div | Pow | Max | Min
            | Atan2 | Eq | Ne | Lt | Le | Gt | Ge | Select => vec![],
        }
    }

    /// Builds a primitive from its name and parameters (the inverse of `name` + `params`).
    /// The error is a plain message; the parser adds the position.
    pub fn from_parts(name: &str, params: &[(String, Param)]) -> Result<Primitive, String> {
        use Primitive::*;
        let mut ps = ParamReader {
            name,
            params,
            used: vec![false; params.len()],
        };
        let prim = match name {
            "neg" => Neg,
            "sin" => Sin,
            "cos" => Cos,
            "tan" => Tan,
            "exp" => Exp,
            "log" => Log,
            "log1p" => Log1p,
            "expm1" => Expm1,
            "tanh" => Tanh,
            "logistic" => Logistic,
            "sqrt" => Sqrt,
            "rsqrt" => Rsqrt,
            "abs" => Abs,
            "sign" => Sign,
            "floor" => Floor,
            "ceil" => Ceil,
            "round" => Round,
            "erf" => Erf,
            "integer_pow" => {
                let y = ps.int("y")?;
                IntegerPow {
                    y: i32::try_from(y).map_err(|_| format!("y={y} does not fit in i32"))?,
                }
            }
            "add" => Add,
            "sub" => Sub,
            "mul" => Mul,
            "div" => Div,
            "pow" => Pow,
            "max" => Max,
            "min" => Min,
            "atan2" => Atan2,
            "eq" => Eq,
            "ne" => Ne,
            "lt" => Lt,
            "le" => Le,
            "gt" => Gt,
            "ge" => Ge,
            "select" => Select,
            "convert_element_type" => ConvertElementType {
                new_dtype: ps.dtype("new_dtype")?,
            },
            "reduce_sum" => ReduceSum {
                axes: ps.ints("axes")?,
            },
            "reduce_max" => ReduceMax {
                axes: ps.ints("axes")?,
            },
            "reduce_min" => ReduceMin {
                axes: ps.ints("axes")?,
            },
            "argmax" => Argmax {
                axis: ps.uint("axis")?,
                index_dtype: ps.dtype("index_dtype")?,
            },
            "broadcast_in_dim" => BroadcastInDim {
                shape: ps.ints("shape")?,
                broadcast_dimensions: ps.ints("broadcast_dimensions")?,
            },
            "reshape" => Reshape {
                new_sizes: ps.ints("new_sizes")?,
            },
            "transpose" => Transpose {
                permutation: ps.ints("permutation")?,
            },
            "squeeze" => Squeeze {
                dimensions: ps.ints("dimensions")?,
            },
            "expand_dims" => ExpandDims {
                dimensions: ps.ints("dimensions")?,
            },
            "slice" => Slice {
                start: ps.ints("start")?,
                limit: ps.ints("limit")?,
                strides: ps.ints("strides")?,
            },
            "pad" => Pad {
                low: ps.ints("low")?,
                high: ps.ints("high")?,
                interior: ps.ints("interior")?,
            },
            "concatenate" => Concatenate {
                dimension: ps.uint("dimension")?,
            },
            "rev" => Rev {
                dimensions: ps.ints("dimensions")?,
            },
            "iota" => Iota {
                dtype: ps.dtype("dtype")?,
                shape: ps.ints("shape")?,
                dimension: ps.uint("dimension")?,
            },
            "dot_general" => DotGeneral {
                lhs_contracting: ps.ints("lhs_contracting")?,
                rhs_contracting: ps.ints("rhs_contracting")?,
                lhs_batch: ps.ints("lhs_batch")?,
                rhs_batch: ps.ints("rhs_batch")?,
            },
            "cumsum" => Cumsum {
                axis: ps.uint("axis")?,
                reverse: ps.bool("reverse")?,
            },
            other => return Err(format!("unknown primitive `{other}`")),
        };
        if let Some(i) = ps.used.iter().position(|u| !u) {
            return Err(format!("`{name}` has no parameter `{}`", ps.params[i].0));
        }
        Ok(prim)
    }

    /// The output aval for the given operand avals, or an error naming what is wrong. The
    /// output is always a valid aval ([`Aval::validate`]): parameters that would make a
    /// shape whose size overflows are errors here, before anything is allocated.
    pub fn abstract_eval(&self, args: &[&Aval]) -> Result<Aval> {
        let out = self.shape_rule(args)?;
        out.validate(self.name())?;
        Ok(out)
    }

    fn shape_rule(&self, args: &[&Aval]) -> Result<Aval> {
        use Primitive::*;
        let op = self.name();
        match self.arity() {
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
            Sin | Cos | Tan | Exp | Log | Log1p | Expm1 | Tanh | Logistic | Sqrt | Rsqrt
            | Floor | Ceil | Round | Erf => {
                require_float(op, args[0], "operand")?;
                Ok(args[0].clone())
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
            Add | Sub | Mul | Div | Max | Min => {
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
                if !crate::dtype::same_shape(&p.shape, &t.shape) {
                    return Err(Error::shape(
                        op,
                        format!("predicate {p} and cases {t} have different shapes"),
                    ));
                }
                Ok(t.clone())
            }
            ConvertElementType { new_dtype } => Ok(Aval::new(args[0].shape.clone(), *new_dtype)),
            ReduceSum { axes } | ReduceMax { axes } | ReduceMin { axes } => {
                require_numeric(op, args[0], "operand")?;
                check_axes(op, axes, args[0].ndim(), "axes")?;
                let shape = (0..args[0].ndim())
                    .filter(|d| !axes.contains(d))
                    .map(|d| args[0].shape[d])
                    .collect::<Vec<_>>();
                Ok(Aval::new(shape, args[0].dtype))
            }
            Argmax { axis, index_dtype } => {
                require_numeric(op, args[0], "operand")?;
                check_axes(op, &[*axis], args[0].ndim(), "axis")?;
                if !index_dtype.is_int() {
                    return Err(Error::dtype(
                        op,
                        format!("index_dtype must be i32 or i64, got {index_dtype}"),
                    ));
                }
                if args[0].shape[*axis] == 0 {
                    return Err(Error::shape(
                        op,
                        format!("axis {axis} of {} is empty: no maximum to find", args[0]),
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
        }
    }
}

impl fmt::Display for Primitive {
    /// `name` or `name[key=value ...]`, as in program text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        let ps = self.params();
        if !ps.is_empty() {
            f.write_str("[")?;
            for (i, (k, v)) in ps.iter().enumerate() {
                if i > 0 {
                    f.write_str(" ")?;
                }
                write!(f, "{k}={v}")?;
            }
            f.write_str("]")?;
        }
        Ok(())
    }
}

struct ParamReader<'a> {
    name: &'a str,
    params: &'a [(String, Param)],
    used: Vec<bool>,
}

impl ParamReader<'_> {
    fn take(&mut self, key: &str) -> Result<&Param, String> {
        match self.params.iter().position(|(k, _)| k == key) {
            Some(i) => {
                self.used[i] = true;
                Ok(&self.params[i].1)
            }
            None => Err(format!("`{}` needs the parameter `{key}`", self.name)),
        }
    }
    fn int(&mut self, key: &str) -> Result<i64, String> {
        match self.take(key)? {
            Param::Int(i) => Ok(*i),
            p => Err(format!("parameter `{key}` must be an integer, got `{p}`")),
        }
    }
    fn uint(&mut self, key: &str) -> Result<usize, String> {
        let i = self.int(key)?;
        usize::try_from(i).map_err(|_| format!("parameter `{key}` must be non-negative, got {i}"))
    }
    fn bool(&mut self, key: &str) -> Result<bool, String> {
        match self.take(key)? {
            Param::Bool(b) => Ok(*b),
            p => Err(format!(
                "parameter `{key}` must be true or false, got `{p}`"
            )),
        }
    }
    fn dtype(&mut self, key: &str) -> Result<DType, String> {
        match self.take(key)? {
            Param::DType(d) => Ok(*d),
            p => Err(format!("parameter `{key}` must be a dtype, got `{p}`")),
        }
    }
    fn ints(&mut self, key: &str) -> Result<Vec<usize>, String> {
        match self.take(key)? {
            Param::Ints(v) => Ok(v.clone()),
            p => Err(format!(
                "parameter `{key}` must be a tuple of integers like (0,1), got `{p}`"
            )),
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
    if !crate::dtype::same_shape(&a.shape, &b.shape) {
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
