//! The closed set of primitives: one table that says what each one is.
//!
//! Every program is a sequence of equations, each applying one [`Primitive`] to operands.
//! The [`primitives!`] table below is the single definition of what a primitive *is*: its
//! variant and static parameters, its name in program text and how many operands it takes.
//! Everything that is only bookkeeping is generated from that row: the enum, `name`,
//! `ordinal`, [`PRIMITIVE_NAMES`], [`Primitive::COUNT`], `arity`, the parameters as program
//! text prints them (`params`) and the parser's reading of them (`from_parts`). What a
//! primitive *means* is one exhaustive `match` per rule, each in its own module: the shape
//! rule (`shape_rules`), the evaluator (`backend::reference`), jvp, linearity, transpose and
//! batching (`passes`). None has a wildcard arm, so a new row makes the compiler list every
//! rule still missing.
//!
//! Families of primitives that rules treat alike are pattern macros (`smooth_unary!()`,
//! `comparison!()`, ...): a rule matches the family in one arm and stays exhaustive, and a
//! new member joins the family's meaning everywhere by being added to its macro here.
//!
//! Binary elementwise primitives take operands of equal shape and dtype: broadcasting and the
//! weak typing of Rust numbers are the surface's business, done with `broadcast_in_dim` and
//! literals, so the rules stay strict and simple.

use std::fmt;
use std::hash::Hash;

use crate::ir::dtype::DType;
use crate::ir::indexing::{IndexMode, ScatterCombine};
use crate::ir::param::{Param, ParamReader, ParamValue};
use crate::ir::remat::RematPolicy;

/// How many operands a primitive takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    /// Exactly this many.
    Fixed(usize),
    /// One or more.
    Variadic,
    /// Zero or more.
    Any,
}

pub use crate::ir::program::Closed;

/// The table of primitives. One row per primitive:
/// `Variant { field: Type, ... } = "name", arity;` with the arity a number or `variadic`.
/// Fields are the static parameters, printed in program text under their field names, in
/// the order written.
macro_rules! primitives {
    (@arity variadic) => { Arity::Variadic };
    (@arity any) => { Arity::Any };
    (@arity $n:literal) => { Arity::Fixed($n) };
    ($(
        $(#[$doc:meta])*
        $variant:ident $({ $($field:ident : $fty:ty),* $(,)? })? = $name:literal, $arity:tt;
    )*) => {
        /// A primitive operation with its static parameters. The set is closed; see
        /// `docs/primitives.md` for the semantics of each.
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum Primitive {
            $( $(#[$doc])* $variant $({ $(#[doc = concat!("Static parameter `",
                stringify!($field), "` (see the variant).")] $field: $fty),* })?, )*
        }

        /// The names of every primitive, in table order (`PRIMITIVE_NAMES[p.ordinal()]` is
        /// `p.name()`).
        pub const PRIMITIVE_NAMES: &[&str] = &[$($name),*];

        /// The variants without their parameters, for `ordinal`.
        #[allow(dead_code)] // only ever converted to a number
        enum Tag { $($variant),* }

        impl Primitive {
            /// How many primitives there are (for tables indexed by `ordinal`).
            pub const COUNT: usize = PRIMITIVE_NAMES.len();

            /// The name in program text.
            #[inline]
            pub fn name(&self) -> &'static str {
                match self {
                    $( Primitive::$variant $({ $($field: _),* })? => $name, )*
                }
            }

            /// The primitive's position in [`PRIMITIVE_NAMES`] (for cheap per-primitive tables).
            #[inline]
            pub fn ordinal(&self) -> usize {
                match self {
                    $( Primitive::$variant $({ $($field: _),* })? => Tag::$variant as usize, )*
                }
            }

            /// How many operands the primitive takes.
            #[inline]
            pub fn arity(&self) -> Arity {
                match self {
                    $( Primitive::$variant $({ $($field: _),* })? => primitives!(@arity $arity), )*
                }
            }

            /// The static parameters, in the order program text prints them.
            pub fn params(&self) -> Vec<(&'static str, Param)> {
                match self {
                    $( Primitive::$variant $({ $($field),* })? => vec![
                        $($( (stringify!($field), ParamValue::to_param($field)) ),*)?
                    ], )*
                }
            }

            /// Builds a primitive from its name and parameters (the inverse of `name` +
            /// `params`). The error is a plain message; the parser adds the position.
            pub fn from_parts(name: &str, params: &[(String, Param)]) -> Result<Primitive, String> {
                let mut ps = ParamReader { name, params, used: vec![false; params.len()] };
                let prim = match name {
                    $( $name => Primitive::$variant $({ $($field: ps.read(stringify!($field))?),* })?, )*
                    other => return Err(format!("unknown primitive `{other}`")),
                };
                if let Some(i) = ps.used.iter().position(|u| !u) {
                    return Err(format!("`{name}` has no parameter `{}`", ps.params[i].0));
                }
                Ok(prim)
            }
        }
    };
}

primitives! {
    // ---- unary elementwise ----
    /// `-x`. Numeric.
    Neg = "neg", 1;
    /// Float only.
    Sin = "sin", 1;
    /// Float only.
    Cos = "cos", 1;
    /// Float only.
    Tan = "tan", 1;
    /// Float only.
    Exp = "exp", 1;
    /// Natural logarithm. Float only.
    Log = "log", 1;
    /// `log(1 + x)`, accurate near 0. Float only.
    Log1p = "log1p", 1;
    /// `exp(x) - 1`, accurate near 0. Float only.
    Expm1 = "expm1", 1;
    /// Float only.
    Tanh = "tanh", 1;
    /// `1 / (1 + exp(-x))`. Float only.
    Logistic = "logistic", 1;
    /// Float only.
    Sqrt = "sqrt", 1;
    /// `1 / sqrt(x)`. Float only.
    Rsqrt = "rsqrt", 1;
    /// Numeric.
    Abs = "abs", 1;
    /// -1, 0 or 1 (NaN for NaN). Numeric.
    Sign = "sign", 1;
    /// Float only.
    Floor = "floor", 1;
    /// Float only.
    Ceil = "ceil", 1;
    /// Rounds half away from zero (lax's default). Float only.
    Round = "round", 1;
    /// The error function. Float only.
    Erf = "erf", 1;
    /// Inverse sine, in `[-π/2, π/2]` (NaN outside `[-1, 1]`). Float only.
    Asin = "asin", 1;
    /// Inverse cosine, in `[0, π]` (NaN outside `[-1, 1]`). Float only.
    Acos = "acos", 1;
    /// Inverse tangent, in `(-π/2, π/2)`. Float only.
    Atan = "atan", 1;
    /// Inverse hyperbolic sine. Float only.
    Asinh = "asinh", 1;
    /// Inverse hyperbolic cosine (NaN below 1). Float only.
    Acosh = "acosh", 1;
    /// Inverse hyperbolic tangent (NaN outside `[-1, 1]`). Float only.
    Atanh = "atanh", 1;
    /// `x^y` for a static integer `y` (negative `y` for floats only).
    IntegerPow { y: i32 } = "integer_pow", 1;

    // ---- binary elementwise (equal avals) ----
    /// `x + y`. Numeric.
    Add = "add", 2;
    /// `x - y`. Numeric.
    Sub = "sub", 2;
    /// `x * y`. Numeric.
    Mul = "mul", 2;
    /// Integer division truncates; division by zero gives -1 (as XLA does), never a trap.
    Div = "div", 2;
    /// `x^y` for float `x` and `y`.
    Pow = "pow", 2;
    /// NaN-propagating maximum (the first NaN operand as it is).
    Max = "max", 2;
    /// NaN-propagating minimum (the first NaN operand as it is).
    Min = "min", 2;
    /// `atan2(x, y)`: the angle of the point `(y, x)`. Float only.
    Atan2 = "atan2", 2;
    /// Remainder of truncating division, with the sign of `x` (C's `fmod`, XLA's `rem`).
    /// An integer remainder by zero is `x` (as XLA gives); `MIN rem -1` is 0. Numeric.
    Rem = "rem", 2;

    // ---- comparisons (equal avals, bool output) ----
    /// `x == y`, any dtype.
    Eq = "eq", 2;
    /// `x != y`, any dtype.
    Ne = "ne", 2;
    /// `x < y`. Numeric.
    Lt = "lt", 2;
    /// `x <= y`. Numeric.
    Le = "le", 2;
    /// `x > y`. Numeric.
    Gt = "gt", 2;
    /// `x >= y`. Numeric.
    Ge = "ge", 2;

    /// `select(pred, on_true, on_false)`: elementwise choice; `pred` is bool of the same shape.
    Select = "select", 3;
    /// Elementwise conversion to another dtype (float to int truncates and saturates).
    ConvertElementType { new_dtype: DType } = "convert_element_type", 1;

    // ---- reductions ----
    /// Sum over the given axes (removed from the shape).
    ReduceSum { axes: Vec<usize> } = "reduce_sum", 1;
    /// Maximum over the given axes (-inf, or the least integer, over an empty axis).
    ReduceMax { axes: Vec<usize> } = "reduce_max", 1;
    /// Minimum over the given axes (+inf, or the greatest integer, over an empty axis).
    ReduceMin { axes: Vec<usize> } = "reduce_min", 1;
    /// Index of the first maximum along `axis` (a NaN counts as the maximum).
    Argmax { axis: usize, index_dtype: DType } = "argmax", 1;
    /// Index of the first minimum along `axis` (a NaN counts as the minimum).
    Argmin { axis: usize, index_dtype: DType } = "argmin", 1;
    /// Product over the given axes (removed from the shape); 1 over an empty axis.
    ReduceProd { axes: Vec<usize> } = "reduce_prod", 1;
    /// The indices that sort along `axis`, ascending and stable (NaNs last), as
    /// `index_dtype`: the permutation `sort` applies by `take_along_axis`.
    Argsort { axis: usize, index_dtype: DType } = "argsort", 1;

    // ---- shape operations ----
    /// Operand dimension `i` becomes output dimension `broadcast_dimensions[i]` (size 1 or
    /// equal); the other output dimensions are new. `broadcast_dimensions` increases strictly.
    BroadcastInDim { shape: Vec<usize>, broadcast_dimensions: Vec<usize> } = "broadcast_in_dim", 1;
    /// Row-major reshape to `new_sizes` (same number of elements).
    Reshape { new_sizes: Vec<usize> } = "reshape", 1;
    /// Output dimension `i` is operand dimension `permutation[i]`.
    Transpose { permutation: Vec<usize> } = "transpose", 1;
    /// Removes the given dimensions, each of size 1.
    Squeeze { dimensions: Vec<usize> } = "squeeze", 1;
    /// Inserts size-1 dimensions at the given positions of the output.
    ExpandDims { dimensions: Vec<usize> } = "expand_dims", 1;
    /// Elements `start[d] + k * strides[d]` below `limit[d]` of each dimension `d`.
    Slice { start: Vec<usize>, limit: Vec<usize>, strides: Vec<usize> } = "slice", 1;
    /// `pad(operand, padding_value)`: `low`/`high` elements before/after each dimension and
    /// `interior` between neighbours, all filled with the scalar `padding_value`.
    Pad { low: Vec<usize>, high: Vec<usize>, interior: Vec<usize> } = "pad", 2;
    /// Joins one or more operands along `dimension`.
    Concatenate { dimension: usize } = "concatenate", variadic;
    /// Reverses the order of elements along the given dimensions.
    Rev { dimensions: Vec<usize> } = "rev", 1;
    /// No operands: the array whose element at index `i` is `i[dimension]`.
    Iota { dtype: DType, shape: Vec<usize>, dimension: usize } = "iota", 0;

    // ---- contraction and scans ----
    /// Generalised matrix product. Output dimensions: batch, then lhs free, then rhs free.
    DotGeneral {
        lhs_contracting: Vec<usize>,
        rhs_contracting: Vec<usize>,
        lhs_batch: Vec<usize>,
        rhs_batch: Vec<usize>,
    } = "dot_general", 2;
    /// Inclusive cumulative sum along `axis` (from the end when `reverse`).
    Cumsum { axis: usize, reverse: bool } = "cumsum", 1;

    // ---- indexing by run-time values (`ir::indexing`) ----
    /// `gather(x, idx)`: along `axis` of `x`, the elements at the integer indices `idx`, the
    /// first `batch` dimensions shared. Shape `x[..axis] ++ idx[batch..] ++ x[axis+1..]`.
    Gather { axis: usize, batch: usize, mode: IndexMode } = "gather", 2;
    /// `scatter_add(x, idx, updates)`: `x` with `updates` (shaped as `gather`'s output) added
    /// at the indexed places, repeats summed. `gather`'s transpose.
    ScatterAdd { axis: usize, batch: usize, mode: IndexMode } = "scatter_add", 3;
    /// `scatter(x, idx, updates)`: as `scatter_add`, combining by `combine` (set, mul, min, max).
    Scatter { axis: usize, batch: usize, mode: IndexMode, combine: ScatterCombine } = "scatter", 3;
    /// `dynamic_slice(x, starts...)`: the window of `sizes` at the integer scalar starts,
    /// each clamped so the window fits.
    DynamicSlice { sizes: Vec<usize> } = "dynamic_slice", variadic;
    /// `dynamic_update_slice(x, update, starts...)`: `x` with `update` written at the starts,
    /// each clamped so it fits.
    DynamicUpdateSlice = "dynamic_update_slice", variadic;

    // ---- control flow (primitives with sub-programs and several outputs) ----
    /// `cond(index, operands...)`: runs `branches[index]` on the operands and returns its
    /// outputs. The index is an i32 scalar, clamped to the branches (as JAX does); every
    /// branch takes the operands' avals and gives the same output avals.
    Cond { branches: Vec<Closed> } = "cond", variadic;
    /// `scan(consts..., carry..., xs...)`: `length` iterations of `body`, which takes the
    /// consts, the carry and one slice along axis 0 of each of the xs (the slices in reverse
    /// order when `reverse`), and returns the new carry and one slice of each output ys.
    /// Outputs: the final carry, then the ys stacked along a new axis 0.
    Scan { body: Closed, n_consts: usize, n_carry: usize, length: usize, reverse: bool } = "scan", any;
    /// `while(cond_consts..., body_consts..., carry...)`: while `cond` (taking its consts and
    /// the carry, giving a bool scalar) holds, the carry becomes `body`'s output (it takes its
    /// consts and the carry, and gives a carry of the same avals). Outputs: the final carry.
    /// The number of iterations is known only when the loop runs. `max_steps` (0: none)
    /// makes a longer run an error; `checkpoints` (0: every carry) bounds the carries the
    /// reverse sweep of its linearization keeps at once (`while_linear`).
    While { cond: Closed, body: Closed, n_cond_consts: usize, n_body_consts: usize, max_steps: usize, checkpoints: usize } = "while", any;
    /// `while_linear(consts..., n, x0..., lin...)`: the linear part of a linearized `while`.
    /// The primal carry runs `n` steps of `body` (consts, carry to carry) from `x0`; `step`
    /// is the linear map of one step at the primal carry of that step. Forward: `lin` is the
    /// `n_lin_consts` tangents held fixed, then the tangent carry; `step` (consts, carry,
    /// lin) gives the next tangent carry; outputs: the last one. Transposed: `lin` is the
    /// cotangent of the last tangent carry; `step` (consts, carry, cotangent) gives the fixed
    /// tangents' cotangents of that step (summed over the steps) and the cotangent of the
    /// carry before it, run from the last step to the first (primal carries recomputed from
    /// `x0`, at most `checkpoints` of them kept at once, 0: all).
    WhileLinear { body: Closed, step: Closed, n_consts: usize, n_lin_consts: usize, transposed: bool, checkpoints: usize } = "while_linear", any;
    /// `checkpoint(operands...)`: runs `body` on the operands (JAX's `checkpoint`/remat).
    /// Linearization stores only the residuals `policy` allows and recomputes the others
    /// from the operands when the linear map runs.
    Checkpoint { body: Closed, policy: RematPolicy } = "checkpoint", any;
    /// `checkpoint_name(x)`: `x`, named for a `checkpoint` policy that saves names.
    CheckpointName { name: String } = "checkpoint_name", 1;
    /// `stop_gradient(x)`: `x`, with a zero derivative (JAX's `stop_gradient`).
    StopGradient = "stop_gradient", 1;
    /// `custom_jvp(args..., consts...)`: `body` on the operands (the first `n_args` are the
    /// function's arguments, the rest what it and its rule captured), differentiated by
    /// `rule`: (args, consts, one tangent per float argument) to (the outputs, one tangent
    /// per float output), linear in the tangents. `ir::custom` has the details.
    CustomJvp { body: Closed, rule: Closed, n_args: usize } = "custom_jvp", any;
    /// `custom_vjp(args..., consts...)`: `body` on the operands, differentiated by `fwd`
    /// ((args, consts) to the outputs and residuals) and `bwd` ((residuals, args, consts,
    /// one cotangent per float output) to one cotangent per float argument); `tangent` is
    /// the forward-mode map of the same signature (the transpose of `bwd` when it is
    /// declared linear, the jvp of `body` otherwise).
    CustomVjp { body: Closed, fwd: Closed, bwd: Closed, tangent: Closed, n_args: usize } = "custom_vjp", any;
    /// `custom_lin(nonlin..., lin...)`: a linear map given with its transpose, as the
    /// linearization of a `custom_vjp` leaves it: `forward` (all operands to the outputs) is
    /// linear in the operands after the first `n_nonlin`; `transpose` takes the same
    /// `n_nonlin` operands and one cotangent per output and gives one per linear operand.
    /// Transposition swaps the two.
    CustomLin { forward: Closed, transpose: Closed, n_nonlin: usize } = "custom_lin", any;
    /// `named_map(operands...)`: `body` run by the `axis_size` members of the axis
    /// `axis_name`, member `i` on index `i` along dimension 0 of every operand, its outputs
    /// stacked along dimension 0; collectives over `axis_name` inside `body` combine the
    /// members (an SPMD map, JAX's `shard_map`/`pmap` on one machine).
    NamedMap { body: Closed, axis_name: String, axis_size: usize } = "named_map", any;

    // ---- linear algebra on the last two dimensions (`ir::linalg`), batched over the rest ----
    /// The lower Cholesky factor `L` (`L Lᵀ = A`) of the symmetric matrix whose lower
    /// triangle the operand holds; NaN where that matrix is not positive definite.
    Cholesky = "cholesky", 1;
    /// `triangular_solve(a, b)`: `x` with `op(a) x = b` (`left_side`) or `x op(a) = b`, where
    /// `a` is read as triangular (`lower` or upper, with a unit diagonal if `unit_diagonal`)
    /// and `op` transposes if `transpose_a`.
    TriangularSolve { left_side: bool, lower: bool, transpose_a: bool, unit_diagonal: bool } = "triangular_solve", 2;
    /// `solve(a, b)`: `x` with `op(a) x = b` (LU with partial pivoting; `op` transposes if
    /// `transpose_a`); non-finite where `a` is singular.
    Solve { transpose_a: bool } = "solve", 2;
    /// `log |det a|` (-inf for a singular matrix).
    LogAbsDet = "log_abs_det", 1;
    /// The sign of `det a`: -1, 0 or 1.
    DetSign = "det_sign", 1;
    /// The `Q` of the reduced QR factorization (`m × min(m, n)`, orthonormal columns).
    QrQ = "qr_q", 1;
    /// The `R` of the reduced QR factorization (`min(m, n) × n`, upper triangular).
    QrR = "qr_r", 1;
    /// The eigenvalues, ascending, of the symmetric matrix whose lower triangle the operand holds.
    EighValues = "eigh_values", 1;
    /// The eigenvectors (columns, in `eigh_values`' order) of that matrix, each signed so
    /// that its largest-magnitude entry is positive.
    EighVectors = "eigh_vectors", 1;
    /// The singular values, descending (`min(m, n)` of them).
    SvdValues = "svd_values", 1;
    /// The left singular vectors of the reduced SVD (`m × min(m, n)`), each pair signed so
    /// that the left vector's largest-magnitude entry is positive.
    SvdU = "svd_u", 1;
    /// The right singular vectors of the reduced SVD, transposed (`min(m, n) × n`).
    SvdVt = "svd_vt", 1;

    // ---- collectives over a named axis (`ir::collective`) ----
    // Each names the axis (`axis_name`) and its number of members (`axis_size`, fixed when
    // traced): they mean something only inside a map that binds the name (`vmap` with an
    // axis name), where every member runs the program and the collective combines the
    // members' values; anywhere else evaluating one is an error.
    /// `psum(x)`: the sum of the members' `x`, on every member. Numeric.
    Psum { axis_name: String, axis_size: usize } = "psum", 1;
    /// `pmean(x)`: the mean of the members' `x` (`psum(x) / axis_size`). Float only.
    Pmean { axis_name: String, axis_size: usize } = "pmean", 1;
    /// `pmax(x)`: the members' elementwise maximum (NaN-propagating, as `max`). Numeric.
    Pmax { axis_name: String, axis_size: usize } = "pmax", 1;
    /// `pmin(x)`: the members' elementwise minimum (NaN-propagating, as `min`). Numeric.
    Pmin { axis_name: String, axis_size: usize } = "pmin", 1;
    /// `all_gather(x)`: the members' `x` stacked in member order along a new dimension
    /// `axis`, on every member.
    AllGather { axis_name: String, axis_size: usize, axis: usize } = "all_gather", 1;
    /// `psum_scatter(x)`: member `i` gets index `i` along dimension `axis` (of size
    /// `axis_size`, removed) of the members' sum: `all_gather`'s transpose. Numeric.
    PsumScatter { axis_name: String, axis_size: usize, axis: usize } = "psum_scatter", 1;
    /// `ppermute(x)`: member `dst[k]` receives member `src[k]`'s `x`; a member that receives
    /// nothing gets zeros. No member appears twice in `src`, nor in `dst`.
    Ppermute { axis_name: String, axis_size: usize, src: Vec<usize>, dst: Vec<usize> } = "ppermute", 1;
    /// `all_to_all(x)`: `x` split along `split_axis` into `axis_size` equal blocks; member
    /// `j` gets block `j` of every member, joined in member order along `concat_axis`.
    AllToAll { axis_name: String, axis_size: usize, split_axis: usize, concat_axis: usize } = "all_to_all", 1;
    /// `axis_index()`: the member's index along the named axis, an i32 scalar.
    AxisIndex { axis_name: String, axis_size: usize } = "axis_index", 0;

    // ---- random numbers ----
    /// `threefry2x32(key, counter)`: the Threefry-2x32 block cipher (20 rounds) of each
    /// counter pair under its key pair; both i32 of one shape whose last dimension is 2, the
    /// words read as unsigned 32-bit. The counter-based generator of `random`.
    Threefry2x32 = "threefry2x32", 2;
}

// ---- families (pattern macros) ----------------------------------------------------------

/// Float-only elementwise functions with a derivative: sin, exp, sqrt, ...
macro_rules! smooth_unary {
    () => {
        $crate::ir::Primitive::Sin
            | $crate::ir::Primitive::Cos
            | $crate::ir::Primitive::Tan
            | $crate::ir::Primitive::Exp
            | $crate::ir::Primitive::Log
            | $crate::ir::Primitive::Log1p
            | $crate::ir::Primitive::Expm1
            | $crate::ir::Primitive::Tanh
            | $crate::ir::Primitive::Logistic
            | $crate::ir::Primitive::Sqrt
            | $crate::ir::Primitive::Rsqrt
            | $crate::ir::Primitive::Erf
            | $crate::ir::Primitive::Asin
            | $crate::ir::Primitive::Acos
            | $crate::ir::Primitive::Atan
            | $crate::ir::Primitive::Asinh
            | $crate::ir::Primitive::Acosh
            | $crate::ir::Primitive::Atanh
    };
}

/// Float-only rounding functions: piecewise constant, zero derivative where it exists.
macro_rules! rounding {
    () => {
        $crate::ir::Primitive::Floor | $crate::ir::Primitive::Ceil | $crate::ir::Primitive::Round
    };
}

/// Comparisons: two operands of equal aval, a bool result.
macro_rules! comparison {
    () => {
        $crate::ir::Primitive::Eq
            | $crate::ir::Primitive::Ne
            | $crate::ir::Primitive::Lt
            | $crate::ir::Primitive::Le
            | $crate::ir::Primitive::Gt
            | $crate::ir::Primitive::Ge
    };
}

/// Binary arithmetic on numeric operands of equal aval: add, sub, mul, div, max, min.
macro_rules! arithmetic {
    () => {
        $crate::ir::Primitive::Add
            | $crate::ir::Primitive::Sub
            | $crate::ir::Primitive::Mul
            | $crate::ir::Primitive::Div
            | $crate::ir::Primitive::Max
            | $crate::ir::Primitive::Min
            | $crate::ir::Primitive::Rem
    };
}

/// Elementwise primitives of one operand whose result has the operand's shape.
macro_rules! elementwise_unary {
    () => {
        $crate::ir::primitive::smooth_unary!()
            | $crate::ir::primitive::rounding!()
            | $crate::ir::Primitive::Neg
            | $crate::ir::Primitive::Abs
            | $crate::ir::Primitive::Sign
            | $crate::ir::Primitive::IntegerPow { .. }
            | $crate::ir::Primitive::ConvertElementType { .. }
    };
}

/// Elementwise primitives of several operands of one shape.
macro_rules! elementwise_nary {
    () => {
        $crate::ir::primitive::arithmetic!()
            | $crate::ir::primitive::comparison!()
            | $crate::ir::Primitive::Pow
            | $crate::ir::Primitive::Atan2
            | $crate::ir::Primitive::Select
    };
}

/// The primitives with sub-programs (and several outputs): interpreters route them to their
/// own rules before the per-primitive ones.
macro_rules! control_flow {
    () => {
        $crate::ir::Primitive::Cond { .. }
            | $crate::ir::Primitive::Scan { .. }
            | $crate::ir::Primitive::While { .. }
            | $crate::ir::Primitive::WhileLinear { .. }
            | $crate::ir::Primitive::Checkpoint { .. }
            | $crate::ir::Primitive::CustomJvp { .. }
            | $crate::ir::Primitive::CustomVjp { .. }
            | $crate::ir::Primitive::CustomLin { .. }
            | $crate::ir::Primitive::NamedMap { .. }
    };
}

/// Collectives over a named axis (`ir::collective`).
macro_rules! collectives {
    () => {
        $crate::ir::Primitive::Psum { .. }
            | $crate::ir::Primitive::Pmean { .. }
            | $crate::ir::Primitive::Pmax { .. }
            | $crate::ir::Primitive::Pmin { .. }
            | $crate::ir::Primitive::AllGather { .. }
            | $crate::ir::Primitive::PsumScatter { .. }
            | $crate::ir::Primitive::Ppermute { .. }
            | $crate::ir::Primitive::AllToAll { .. }
            | $crate::ir::Primitive::AxisIndex { .. }
    };
}

/// Indexing by run-time integers (`ir::indexing`): their rules live in each stage's
/// `indexing.rs`.
macro_rules! indexing_ops {
    () => {
        $crate::ir::Primitive::Gather { .. }
            | $crate::ir::Primitive::ScatterAdd { .. }
            | $crate::ir::Primitive::Scatter { .. }
            | $crate::ir::Primitive::DynamicSlice { .. }
            | $crate::ir::Primitive::DynamicUpdateSlice
    };
}

/// Linear algebra on the last two dimensions (`ir::linalg`): their rules live in each
/// stage's `linalg.rs`.
macro_rules! linalg_ops {
    () => {
        $crate::ir::Primitive::Cholesky
            | $crate::ir::Primitive::TriangularSolve { .. }
            | $crate::ir::Primitive::Solve { .. }
            | $crate::ir::Primitive::LogAbsDet
            | $crate::ir::Primitive::DetSign
            | $crate::ir::Primitive::QrQ
            | $crate::ir::Primitive::QrR
            | $crate::ir::Primitive::EighValues
            | $crate::ir::Primitive::EighVectors
            | $crate::ir::Primitive::SvdValues
            | $crate::ir::Primitive::SvdU
            | $crate::ir::Primitive::SvdVt
    };
}

pub(crate) use {
    arithmetic, collectives, comparison, control_flow, elementwise_nary, elementwise_unary,
    indexing_ops, linalg_ops, rounding, smooth_unary,
};

impl Primitive {
    /// Whether this primitive holds sub-programs (and may have several outputs).
    pub fn is_control_flow(&self) -> bool {
        matches!(self, control_flow!())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_at_its_ordinal_and_reads_back() {
        assert_eq!(PRIMITIVE_NAMES.len(), Primitive::COUNT);
        let examples = [
            Primitive::Neg,
            Primitive::IntegerPow { y: -3 },
            Primitive::Concatenate { dimension: 2 },
            Primitive::Cumsum {
                axis: 1,
                reverse: true,
            },
            Primitive::DotGeneral {
                lhs_contracting: vec![1],
                rhs_contracting: vec![0],
                lhs_batch: vec![],
                rhs_batch: vec![],
            },
        ];
        for p in examples {
            assert_eq!(PRIMITIVE_NAMES[p.ordinal()], p.name());
            let params: Vec<(String, Param)> = p
                .params()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            assert_eq!(Primitive::from_parts(p.name(), &params).unwrap(), p);
        }
        let unique: std::collections::HashSet<_> = PRIMITIVE_NAMES.iter().collect();
        assert_eq!(unique.len(), Primitive::COUNT);
    }
}
