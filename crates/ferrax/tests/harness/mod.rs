//! The test harness every transformation plugs into.
//!
//! * [`op_table`]: one row per primitive (several for some): example operand avals for a
//!   dtype, the dtypes it accepts, an input domain, tolerances, known values (independent
//!   reference numbers, from C's libm via Python or worked by hand), operand avals its shape
//!   rule must reject, and how the random-program generator may use it.
//! * [`arb_program`]: a proptest strategy for random well-typed programs built from the
//!   table's rows, with shrinking (a program is a recipe of small choice numbers).
//!
//! A new primitive gets one row here and is then covered by every per-primitive test and by
//! the random programs; later issues add their checks (jvp, transpose, vmap) as loops over
//! the same rows and programs.

#![allow(dead_code)]
// each test binary uses a different part of the harness
// Known values are literal reference numbers from an independent implementation, written
// out in full on purpose, even where they equal a named constant such as LN_2.
#![allow(clippy::approx_constant)]

use ferrax::{Array, Atom, Aval, DType, Equation, Primitive, Program, Var};
use proptest::prelude::*;

/// The number of proptest cases: `default`, or `PROPTEST_CASES` when set (for long stress
/// runs, e.g. `PROPTEST_CASES=5000 cargo test --release`).
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Where random inputs for a row should come from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Domain {
    /// Any real number (standard normal samples).
    Real,
    /// Strictly positive numbers (log, sqrt, pow base).
    Positive,
    /// Inside (-1, 1).
    Unit,
    /// Away from the points where the function jumps (floor, round, sign, comparisons).
    Real2,
}

/// Builds one equation's primitive and operands from the program so far, or gives up.
pub type GenFn = fn(&mut Pick) -> Option<(Primitive, Vec<Atom>)>;

/// How the random-program generator may use a row.
#[derive(Clone, Copy)]
pub enum Gen {
    /// Not used by the generator.
    Skip,
    /// Elementwise on one float variable.
    Unary,
    /// Elementwise on two float variables of equal aval.
    Binary,
    /// A row-specific builder.
    Custom(GenFn),
}

/// One known value: operand values (converted to the operands' dtypes) and the expected
/// output values (compared with the row's tolerance; exactly for integers and bools).
pub struct Known {
    pub inputs: Vec<Vec<f64>>,
    pub expected: Vec<f64>,
}

pub struct OpRow {
    /// Test name of the row (the primitive's name, or name_variant).
    pub name: &'static str,
    pub prim: Primitive,
    /// Example operand avals for a dtype.
    pub avals: fn(DType) -> Vec<Aval>,
    /// Dtypes the primitive accepts for this example (the first is the main one).
    pub dtypes: &'static [DType],
    pub domain: Domain,
    /// Relative tolerance for known values in (f32, f64).
    pub tol: (f64, f64),
    pub known: Vec<Known>,
    /// Operand avals that the shape rule must reject, with a fragment of the message.
    pub rejects: Vec<(Vec<Aval>, &'static str)>,
    pub gen: Gen,
}

pub fn av(shape: &[usize], d: DType) -> Aval {
    Aval::new(shape.to_vec(), d)
}

const FLOATS: &[DType] = &[DType::F64, DType::F32];
const NUMERIC: &[DType] = &[DType::F64, DType::F32, DType::I32, DType::I64];
const ALL: &[DType] = &[DType::F64, DType::F32, DType::I32, DType::I64, DType::Bool];

fn k(inputs: Vec<Vec<f64>>, expected: Vec<f64>) -> Known {
    Known { inputs, expected }
}

fn v3(d: DType) -> Vec<Aval> {
    vec![av(&[3], d)]
}
fn vv3(d: DType) -> Vec<Aval> {
    vec![av(&[3], d), av(&[3], d)]
}
fn m23(d: DType) -> Vec<Aval> {
    vec![av(&[2, 3], d)]
}

/// A float-only unary row with known values at three points.
fn float_unary(
    name: &'static str,
    prim: Primitive,
    domain: Domain,
    x: [f64; 3],
    y: [f64; 3],
) -> OpRow {
    OpRow {
        name,
        prim,
        avals: v3,
        dtypes: FLOATS,
        domain,
        tol: (2e-6, 1e-15),
        known: vec![k(vec![x.to_vec()], y.to_vec())],
        rejects: vec![
            (vec![av(&[3], DType::I32)], "must be f32 or f64"),
            (vec![av(&[3], DType::Bool)], "must be f32 or f64"),
            (vec![], "takes 1 operand(s), got 0"),
        ],
        gen: Gen::Unary,
    }
}

fn numeric_unary(name: &'static str, prim: Primitive, x: [f64; 3], y: [f64; 3]) -> OpRow {
    OpRow {
        name,
        prim,
        avals: v3,
        dtypes: NUMERIC,
        domain: Domain::Real2,
        tol: (0.0, 0.0),
        known: vec![k(vec![x.to_vec()], y.to_vec())],
        rejects: vec![(vec![av(&[3], DType::Bool)], "must be numeric")],
        gen: Gen::Unary,
    }
}

fn binary(
    name: &'static str,
    prim: Primitive,
    dtypes: &'static [DType],
    domain: Domain,
    x: [f64; 3],
    y: [f64; 3],
    z: [f64; 3],
) -> OpRow {
    OpRow {
        name,
        prim,
        avals: vv3,
        dtypes,
        domain,
        tol: (2e-6, 1e-15),
        known: vec![k(vec![x.to_vec(), y.to_vec()], z.to_vec())],
        rejects: vec![
            (
                vec![av(&[3], DType::F64), av(&[4], DType::F64)],
                "different shapes",
            ),
            (
                vec![av(&[3], DType::F64), av(&[3], DType::F32)],
                "different dtypes",
            ),
            (vec![av(&[3], DType::F64)], "takes 2 operand(s), got 1"),
        ],
        gen: Gen::Binary,
    }
}

fn comparison(name: &'static str, prim: Primitive, z: [f64; 3]) -> OpRow {
    let mut r = binary(
        name,
        prim,
        ALL,
        Domain::Real2,
        [1.0, 2.0, 3.0],
        [2.0, 2.0, 2.0],
        z,
    );
    if !matches!(name, "eq" | "ne") {
        r.dtypes = NUMERIC;
        r.rejects.push((
            vec![av(&[3], DType::Bool), av(&[3], DType::Bool)],
            "must be numeric",
        ));
    }
    r.gen = Gen::Custom(gen_compare_select);
    r
}

/// The op table: every primitive, at least once.
pub fn op_table() -> Vec<OpRow> {
    use Domain::*;
    use Primitive as P;
    let f64_ = DType::F64;
    let mut rows = vec![
        numeric_unary("neg", P::Neg, [1.5, -2.0, 0.0], [-1.5, 2.0, 0.0]),
        float_unary(
            "sin",
            P::Sin,
            Real,
            [0.0, 0.5, -2.0],
            [0.0, 0.479425538604203, -0.9092974268256817],
        ),
        float_unary(
            "cos",
            P::Cos,
            Real,
            [0.0, 0.5, -2.0],
            [1.0, 0.8775825618903728, -0.4161468365471424],
        ),
        float_unary(
            "tan",
            P::Tan,
            Unit,
            [0.0, 0.5, -2.0],
            [0.0, 0.5463024898437905, 2.185039863261519],
        ),
        float_unary(
            "exp",
            P::Exp,
            Real,
            [0.0, 0.5, -2.0],
            [1.0, 1.6487212707001282, 0.1353352832366127],
        ),
        float_unary(
            "log",
            P::Log,
            Positive,
            [0.5, 1.0, 10.0],
            [-0.6931471805599453, 0.0, 2.302585092994046],
        ),
        float_unary(
            "log1p",
            P::Log1p,
            Positive,
            [1e-10, 0.5, -0.5],
            [
                9.999999999500001e-11,
                0.4054651081081644,
                -0.6931471805599453,
            ],
        ),
        float_unary(
            "expm1",
            P::Expm1,
            Real,
            [1e-10, 0.5, -1.0],
            [1.00000000005e-10, 0.6487212707001282, -0.6321205588285577],
        ),
        float_unary(
            "tanh",
            P::Tanh,
            Real,
            [0.0, 0.5, -3.0],
            [0.0, 0.46211715726000974, -0.9950547536867305],
        ),
        float_unary(
            "logistic",
            P::Logistic,
            Real,
            [0.0, 2.0, -3.0],
            [0.5, 0.8807970779778823, 0.04742587317756678],
        ),
        float_unary(
            "sqrt",
            P::Sqrt,
            Positive,
            [0.0, 2.0, 9.0],
            [0.0, 1.4142135623730951, 3.0],
        ),
        float_unary(
            "rsqrt",
            P::Rsqrt,
            Positive,
            [0.25, 2.0, 9.0],
            [2.0, 0.7071067811865475, 0.3333333333333333],
        ),
        numeric_unary("abs", P::Abs, [-1.5, 0.0, 2.0], [1.5, 0.0, 2.0]),
        numeric_unary("sign", P::Sign, [-3.0, 0.0, 2.0], [-1.0, 0.0, 1.0]),
        float_unary("floor", P::Floor, Real2, [-1.5, 0.5, 2.0], [-2.0, 0.0, 2.0]),
        float_unary("ceil", P::Ceil, Real2, [-1.5, 0.5, 2.0], [-1.0, 1.0, 2.0]),
        float_unary("round", P::Round, Real2, [-2.5, 0.5, 1.4], [-3.0, 1.0, 1.0]),
        float_unary(
            "erf",
            P::Erf,
            Real,
            [0.0, 0.5, -1.5],
            [0.0, 0.5204998778130465, -0.9661051464753108],
        ),
        OpRow {
            name: "integer_pow",
            prim: P::IntegerPow { y: 3 },
            avals: v3,
            dtypes: NUMERIC,
            domain: Real,
            tol: (1e-7, 1e-16),
            known: vec![k(vec![vec![2.0, -1.5, 0.5]], vec![8.0, -3.375, 0.125])],
            rejects: vec![(vec![av(&[3], DType::Bool)], "must be numeric")],
            gen: Gen::Custom(|p| {
                let x = p.float_var()?;
                let y = [2, 3, -1][p.num(3)];
                Some((Primitive::IntegerPow { y }, vec![x]))
            }),
        },
        OpRow {
            name: "integer_pow_negative",
            prim: P::IntegerPow { y: -2 },
            avals: v3,
            dtypes: FLOATS,
            domain: Positive,
            tol: (1e-7, 1e-16),
            known: vec![k(vec![vec![2.0, -0.5, 4.0]], vec![0.25, 4.0, 0.0625])],
            rejects: vec![(
                vec![av(&[3], DType::I32)],
                "negative exponent y=-2 needs a float operand",
            )],
            gen: Gen::Skip,
        },
        binary(
            "add",
            P::Add,
            NUMERIC,
            Real,
            [1.0, 2.0, 3.0],
            [0.5, -2.0, 10.0],
            [1.5, 0.0, 13.0],
        ),
        binary(
            "sub",
            P::Sub,
            NUMERIC,
            Real,
            [1.0, 2.0, 3.0],
            [0.5, -2.0, 10.0],
            [0.5, 4.0, -7.0],
        ),
        binary(
            "mul",
            P::Mul,
            NUMERIC,
            Real,
            [1.0, 2.0, 3.0],
            [0.5, -2.0, 10.0],
            [0.5, -4.0, 30.0],
        ),
        binary(
            "div",
            P::Div,
            NUMERIC,
            Real,
            [1.0, 3.0, -3.0],
            [4.0, -2.0, 0.5],
            [0.25, -1.5, -6.0],
        ),
        binary(
            "pow",
            P::Pow,
            FLOATS,
            Positive,
            [2.0, 9.0, 0.5],
            [3.0, 0.5, -1.0],
            [8.0, 3.0, 2.0],
        ),
        binary(
            "max",
            P::Max,
            NUMERIC,
            Real2,
            [1.0, -2.0, 3.0],
            [0.5, 2.0, 3.0],
            [1.0, 2.0, 3.0],
        ),
        binary(
            "min",
            P::Min,
            NUMERIC,
            Real2,
            [1.0, -2.0, 3.0],
            [0.5, 2.0, 3.0],
            [0.5, -2.0, 3.0],
        ),
        binary(
            "atan2",
            P::Atan2,
            FLOATS,
            Real2,
            [1.0, -1.0, 0.5],
            [1.0, -1.0, -2.0],
            [0.7853981633974483, -2.356194490192345, 2.896613990462929],
        ),
        comparison("eq", P::Eq, [0.0, 1.0, 0.0]),
        comparison("ne", P::Ne, [1.0, 0.0, 1.0]),
        comparison("lt", P::Lt, [1.0, 0.0, 0.0]),
        comparison("le", P::Le, [1.0, 1.0, 0.0]),
        comparison("gt", P::Gt, [0.0, 0.0, 1.0]),
        comparison("ge", P::Ge, [0.0, 1.0, 1.0]),
        OpRow {
            name: "select",
            prim: P::Select,
            avals: |d| vec![av(&[3], DType::Bool), av(&[3], d), av(&[3], d)],
            dtypes: ALL,
            domain: Real,
            tol: (0.0, 0.0),
            known: vec![k(
                vec![
                    vec![1.0, 0.0, 1.0],
                    vec![1.0, 2.0, 3.0],
                    vec![10.0, 20.0, 30.0],
                ],
                vec![1.0, 20.0, 3.0],
            )],
            rejects: vec![
                (
                    vec![av(&[3], f64_), av(&[3], f64_), av(&[3], f64_)],
                    "predicate must be bool",
                ),
                (
                    vec![av(&[2], DType::Bool), av(&[3], f64_), av(&[3], f64_)],
                    "different shapes",
                ),
                (
                    vec![av(&[3], DType::Bool), av(&[3], f64_), av(&[3], DType::F32)],
                    "on_true f64[3] and on_false f32[3] differ",
                ),
            ],
            gen: Gen::Skip, // produced by the comparison rows' generator
        },
        OpRow {
            name: "convert_element_type",
            prim: P::ConvertElementType {
                new_dtype: DType::I32,
            },
            avals: v3,
            dtypes: ALL,
            domain: Real,
            tol: (0.0, 0.0),
            known: vec![k(vec![vec![1.7, -2.2, 3.0]], vec![1.0, -2.0, 3.0])],
            rejects: vec![(vec![], "takes 1 operand(s), got 0")],
            gen: Gen::Custom(|p| {
                // f64 -> f32 -> f64 keeps the generated program in f64.
                let x = p.float_var()?;
                Some((
                    Primitive::ConvertElementType {
                        new_dtype: DType::F64,
                    },
                    vec![x],
                ))
            }),
        },
        OpRow {
            name: "convert_element_type_f32",
            prim: P::ConvertElementType {
                new_dtype: DType::F32,
            },
            avals: v3,
            dtypes: FLOATS,
            domain: Real,
            tol: (0.0, 0.0),
            known: vec![k(vec![vec![0.5, -2.0, 3.0]], vec![0.5, -2.0, 3.0])],
            rejects: vec![(
                vec![av(&[3], f64_), av(&[3], f64_)],
                "takes 1 operand(s), got 2",
            )],
            gen: Gen::Skip,
        },
        OpRow {
            name: "reduce_sum",
            prim: P::ReduceSum { axes: vec![1] },
            avals: m23,
            dtypes: NUMERIC,
            domain: Real,
            tol: (1e-7, 1e-16),
            known: vec![k(vec![vec![1.0, 5.0, 3.0, 4.0, 2.0, 6.0]], vec![9.0, 12.0])],
            rejects: vec![(vec![av(&[2, 3], DType::Bool)], "must be numeric")],
            gen: Gen::Custom(|p| gen_reduce(p, |axes| Primitive::ReduceSum { axes })),
        },
        OpRow {
            name: "reduce_max",
            prim: P::ReduceMax { axes: vec![1] },
            avals: m23,
            dtypes: NUMERIC,
            domain: Real,
            tol: (0.0, 0.0),
            known: vec![k(vec![vec![1.0, 5.0, 3.0, 4.0, 2.0, 6.0]], vec![5.0, 6.0])],
            rejects: vec![(vec![av(&[2, 3], DType::Bool)], "must be numeric")],
            gen: Gen::Custom(|p| gen_reduce(p, |axes| Primitive::ReduceMax { axes })),
        },
        OpRow {
            name: "reduce_min",
            prim: P::ReduceMin { axes: vec![1] },
            avals: m23,
            dtypes: NUMERIC,
            domain: Real,
            tol: (0.0, 0.0),
            known: vec![k(vec![vec![1.0, 5.0, 3.0, 4.0, 2.0, 6.0]], vec![1.0, 2.0])],
            rejects: vec![(vec![av(&[2, 3], DType::Bool)], "must be numeric")],
            gen: Gen::Custom(|p| gen_reduce(p, |axes| Primitive::ReduceMin { axes })),
        },
        OpRow {
            name: "reduce_sum_all",
            prim: P::ReduceSum { axes: vec![0, 1] },
            avals: m23,
            dtypes: NUMERIC,
            domain: Real,
            tol: (1e-7, 1e-16),
            known: vec![k(vec![vec![1.0, 5.0, 3.0, 4.0, 2.0, 6.0]], vec![21.0])],
            rejects: vec![],
            gen: Gen::Skip,
        },
        OpRow {
            name: "argmax",
            prim: P::Argmax {
                axis: 1,
                index_dtype: DType::I32,
            },
            avals: m23,
            dtypes: NUMERIC,
            domain: Real,
            tol: (0.0, 0.0),
            known: vec![k(vec![vec![1.0, 5.0, 3.0, 4.0, 2.0, 6.0]], vec![1.0, 2.0])],
            rejects: vec![
                (vec![av(&[2, 0], f64_)], "axis 1 of f64[2,0] is empty"),
                (vec![av(&[3], f64_)], "out of range for rank 1"),
            ],
            gen: Gen::Skip, // integer output: used in tests, not in float programs
        },
        OpRow {
            name: "broadcast_in_dim",
            prim: P::BroadcastInDim {
                shape: vec![2, 3],
                broadcast_dimensions: vec![1],
            },
            avals: v3,
            dtypes: ALL,
            domain: Real,
            tol: (0.0, 0.0),
            known: vec![k(
                vec![vec![1.0, 2.0, 3.0]],
                vec![1.0, 2.0, 3.0, 1.0, 2.0, 3.0],
            )],
            rejects: vec![
                (
                    vec![av(&[4], f64_)],
                    "cannot broadcast to output dimension 1",
                ),
                (
                    vec![av(&[3, 1], f64_)],
                    "must name one output dimension for each",
                ),
            ],
            gen: Gen::Custom(|p| {
                let x = p.float_var()?;
                let a = p.aval(&x);
                // Add a leading dimension of size 2.
                let mut shape = vec![2];
                shape.extend(&a.shape);
                if shape.len() > 3 {
                    return None;
                }
                let bd = (1..shape.len()).collect();
                Some((
                    Primitive::BroadcastInDim {
                        shape,
                        broadcast_dimensions: bd,
                    },
                    vec![x],
                ))
            }),
        },
        OpRow {
            name: "broadcast_in_dim_size1",
            prim: P::BroadcastInDim {
                shape: vec![2, 3],
                broadcast_dimensions: vec![0, 1],
            },
            avals: |d| vec![av(&[2, 1], d)],
            dtypes: ALL,
            domain: Real,
            tol: (0.0, 0.0),
            known: vec![k(vec![vec![1.0, 2.0]], vec![1.0, 1.0, 1.0, 2.0, 2.0, 2.0])],
            rejects: vec![(vec![av(&[2, 2], f64_)], "cannot broadcast")],
            gen: Gen::Skip,
        },
        OpRow {
            name: "reshape",
            prim: P::Reshape {
                new_sizes: vec![3, 2],
            },
            avals: m23,
            dtypes: ALL,
            domain: Real,
            tol: (0.0, 0.0),
            known: vec![k(
                vec![vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]],
                vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            )],
            rejects: vec![(
                vec![av(&[7], f64_)],
                "cannot reshape f64[7] (7 elements) to [3, 2] (6 elements)",
            )],
            gen: Gen::Custom(|p| {
                let x = p.float_var()?;
                let a = p.aval(&x);
                let new_sizes = match a.shape.as_slice() {
                    [2, 3] => vec![6],
                    [3] => vec![3, 1],
                    [6] => vec![2, 3],
                    [3, 1] => vec![3],
                    _ => return None,
                };
                Some((Primitive::Reshape { new_sizes }, vec![x]))
            }),
        },
        OpRow {
            name: "transpose",
            prim: P::Transpose {
                permutation: vec![1, 0],
            },
            avals: m23,
            dtypes: ALL,
            domain: Real,
            tol: (0.0, 0.0),
            known: vec![k(
                vec![vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]],
                vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0],
            )],
            rejects: vec![(
                vec![av(&[2, 3, 4], f64_)],
                "is not a permutation of the 3 dimensions",
            )],
            gen: Gen::Custom(|p| {
                let x = p.float_var_where(|a| a.ndim() >= 2)?;
                let r = p.aval(&x).ndim();
                let permutation = (0..r).rev().collect();
                Some((Primitive::Transpose { permutation }, vec![x]))
            }),
        },
        OpRow {
            name: "squeeze",
            prim: P::Squeeze {
                dimensions: vec![0],
            },
            avals: |d| vec![av(&[1, 3], d)],
            dtypes: ALL,
            domain: Real,
            tol: (0.0, 0.0),
            known: vec![k(vec![vec![1.0, 2.0, 3.0]], vec![1.0, 2.0, 3.0])],
            rejects: vec![(
                vec![av(&[2, 3], f64_)],
                "dimension 0 of f64[2,3] has size 2, not 1",
            )],
            gen: Gen::Custom(|p| {
                let x = p.float_var_where(|a| a.shape.contains(&1))?;
                let d = p.aval(&x).shape.iter().position(|&s| s == 1)?;
                Some((
                    Primitive::Squeeze {
                        dimensions: vec![d],
                    },
                    vec![x],
                ))
            }),
        },
        OpRow {
            name: "expand_dims",
            prim: P::ExpandDims {
                dimensions: vec![0],
            },
            avals: v3,
            dtypes: ALL,
            domain: Real,
            tol: (0.0, 0.0),
            known: vec![k(vec![vec![1.0, 2.0, 3.0]], vec![1.0, 2.0, 3.0])],
            rejects: vec![],
            gen: Gen::Custom(|p| {
                let x = p.float_var_where(|a| a.ndim() <= 2)?;
                let r = p.aval(&x).ndim();
                let d = p.num(r + 1);
                Some((
                    Primitive::ExpandDims {
                        dimensions: vec![d],
                    },
                    vec![x],
                ))
            }),
        },
        OpRow {
            name: "slice",
            prim: P::Slice {
                start: vec![0, 1],
                limit: vec![2, 3],
                strides: vec![1, 1],
            },
            avals: m23,
            dtypes: ALL,
            domain: Real,
            tol: (0.0, 0.0),
            known: vec![k(
                vec![vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]],
                vec![2.0, 3.0, 5.0, 6.0],
            )],
            rejects: vec![
                (vec![av(&[2, 2], f64_)], "need start <= limit <= size"),
                (
                    vec![av(&[6], f64_)],
                    "must each have one entry per dimension",
                ),
            ],
            gen: Gen::Custom(|p| {
                let x = p.float_var_where(|a| a.ndim() >= 1 && a.shape[0] >= 2)?;
                let a = p.aval(&x);
                let r = a.ndim();
                let mut start = vec![0; r];
                let limit = a.shape.clone();
                let mut strides = vec![1; r];
                start[0] = p.num(2);
                strides[0] = 1 + p.num(2);
                Some((
                    Primitive::Slice {
                        start,
                        limit,
                        strides,
                    },
                    vec![x],
                ))
            }),
        },
        OpRow {
            name: "slice_strided",
            prim: P::Slice {
                start: vec![1],
                limit: vec![6],
                strides: vec![2],
            },
            avals: |d| vec![av(&[6], d)],
            dtypes: ALL,
            domain: Real,
            tol: (0.0, 0.0),
            known: vec![k(
                vec![vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]],
                vec![1.0, 3.0, 5.0],
            )],
            rejects: vec![(vec![av(&[5], f64_)], "need start <= limit <= size")],
            gen: Gen::Skip,
        },
        OpRow {
            name: "pad",
            prim: P::Pad {
                low: vec![1],
                high: vec![2],
                interior: vec![1],
            },
            avals: |d| vec![av(&[3], d), av(&[], d)],
            dtypes: ALL,
            domain: Real,
            tol: (0.0, 0.0),
            known: vec![k(
                vec![vec![1.0, 2.0, 3.0], vec![0.0]],
                vec![0.0, 1.0, 0.0, 2.0, 0.0, 3.0, 0.0, 0.0],
            )],
            rejects: vec![
                (
                    vec![av(&[3], f64_), av(&[1], f64_)],
                    "padding value must be a scalar of dtype f64",
                ),
                (
                    vec![av(&[3], f64_), av(&[], DType::F32)],
                    "padding value must be a scalar of dtype f64",
                ),
                (
                    vec![av(&[3, 1], f64_), av(&[], f64_)],
                    "must each have one entry per dimension",
                ),
            ],
            gen: Gen::Custom(|p| {
                let x = p.float_var_where(|a| a.ndim() == 1)?;
                let lo = p.num(2);
                let hi = p.num(2);
                let it = p.num(2);
                let fill = Atom::Lit(ferrax::Scalar::F64(0.5));
                Some((
                    Primitive::Pad {
                        low: vec![lo],
                        high: vec![hi],
                        interior: vec![it],
                    },
                    vec![x, fill],
                ))
            }),
        },
        OpRow {
            name: "concatenate",
            prim: P::Concatenate { dimension: 0 },
            avals: |d| vec![av(&[2], d), av(&[3], d)],
            dtypes: ALL,
            domain: Real,
            tol: (0.0, 0.0),
            known: vec![k(
                vec![vec![1.0, 2.0], vec![3.0, 4.0, 5.0]],
                vec![1.0, 2.0, 3.0, 4.0, 5.0],
            )],
            rejects: vec![
                (
                    vec![av(&[2], f64_), av(&[3], DType::F32)],
                    "operand 1 is f32[3] but operand 0 is f64[2]",
                ),
                (
                    vec![av(&[2], f64_), av(&[3, 1], f64_)],
                    "shapes may differ only in dimension 0",
                ),
                (vec![], "takes at least one operand, got none"),
            ],
            gen: Gen::Custom(|p| {
                let x = p.float_var_where(|a| a.ndim() >= 1)?;
                let a = p.aval(&x);
                let y =
                    p.float_var_where(|b| b.ndim() == a.ndim() && b.shape[1..] == a.shape[1..])?;
                Some((Primitive::Concatenate { dimension: 0 }, vec![x, y]))
            }),
        },
        OpRow {
            name: "rev",
            prim: P::Rev {
                dimensions: vec![0],
            },
            avals: v3,
            dtypes: ALL,
            domain: Real,
            tol: (0.0, 0.0),
            known: vec![k(vec![vec![1.0, 2.0, 3.0]], vec![3.0, 2.0, 1.0])],
            rejects: vec![(vec![av(&[], f64_)], "out of range for rank 0")],
            gen: Gen::Custom(|p| {
                let x = p.float_var_where(|a| a.ndim() >= 1)?;
                let d = p.num(p.aval(&x).ndim());
                Some((
                    Primitive::Rev {
                        dimensions: vec![d],
                    },
                    vec![x],
                ))
            }),
        },
        OpRow {
            name: "iota",
            prim: P::Iota {
                dtype: DType::F64,
                shape: vec![2, 3],
                dimension: 1,
            },
            avals: |_| vec![],
            dtypes: &[DType::F64],
            domain: Real,
            tol: (0.0, 0.0),
            known: vec![k(vec![], vec![0.0, 1.0, 2.0, 0.0, 1.0, 2.0])],
            rejects: vec![(vec![av(&[3], f64_)], "takes 0 operand(s), got 1")],
            gen: Gen::Custom(|p| {
                let shape = [vec![3], vec![2, 3]][p.num(2)].clone();
                let dimension = p.num(shape.len());
                Some((
                    Primitive::Iota {
                        dtype: DType::F64,
                        shape,
                        dimension,
                    },
                    vec![],
                ))
            }),
        },
        OpRow {
            name: "iota_f32",
            prim: P::Iota {
                dtype: DType::F32,
                shape: vec![3],
                dimension: 0,
            },
            avals: |_| vec![],
            dtypes: &[DType::F32],
            domain: Real,
            tol: (0.0, 0.0),
            known: vec![k(vec![], vec![0.0, 1.0, 2.0])],
            rejects: vec![(vec![av(&[3], f64_)], "takes 0 operand(s), got 1")],
            gen: Gen::Skip,
        },
        OpRow {
            name: "dot_general",
            prim: P::DotGeneral {
                lhs_contracting: vec![1],
                rhs_contracting: vec![0],
                lhs_batch: vec![],
                rhs_batch: vec![],
            },
            avals: |d| vec![av(&[2, 3], d), av(&[3, 2], d)],
            dtypes: NUMERIC,
            domain: Real,
            tol: (1e-7, 1e-16),
            known: vec![k(
                vec![
                    vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
                    vec![7.0, 8.0, 9.0, 10.0, 11.0, 12.0],
                ],
                vec![58.0, 64.0, 139.0, 154.0],
            )],
            rejects: vec![
                (
                    vec![av(&[2, 3], f64_), av(&[2, 2], f64_)],
                    "lhs dimension 1 of f64[2,3] (size 3) does not match rhs dimension 0",
                ),
                (
                    vec![av(&[2, 3], f64_), av(&[3, 2], DType::F32)],
                    "different dtypes",
                ),
                (
                    vec![av(&[2, 3], DType::Bool), av(&[3, 2], DType::Bool)],
                    "must be numeric",
                ),
            ],
            gen: Gen::Custom(gen_dot),
        },
        OpRow {
            name: "dot_general_batch",
            prim: P::DotGeneral {
                lhs_contracting: vec![2],
                rhs_contracting: vec![1],
                lhs_batch: vec![0],
                rhs_batch: vec![0],
            },
            avals: |d| vec![av(&[2, 1, 2], d), av(&[2, 2, 1], d)],
            dtypes: NUMERIC,
            domain: Real,
            tol: (1e-7, 1e-16),
            // batch 0: [1,2]·[5,6] = 17; batch 1: [3,4]·[7,8] = 53
            known: vec![k(
                vec![vec![1.0, 2.0, 3.0, 4.0], vec![5.0, 6.0, 7.0, 8.0]],
                vec![17.0, 53.0],
            )],
            rejects: vec![(
                vec![av(&[2, 1, 2], f64_), av(&[3, 2, 1], f64_)],
                "lhs dimension 0 of f64[2,1,2] (size 2) does not match rhs dimension 0",
            )],
            gen: Gen::Skip,
        },
        OpRow {
            name: "cumsum",
            prim: P::Cumsum {
                axis: 0,
                reverse: false,
            },
            avals: |d| vec![av(&[4], d)],
            dtypes: NUMERIC,
            domain: Real,
            tol: (1e-7, 1e-16),
            known: vec![k(vec![vec![1.0, 2.0, 3.0, 4.0]], vec![1.0, 3.0, 6.0, 10.0])],
            rejects: vec![
                (vec![av(&[4], DType::Bool)], "must be numeric"),
                (vec![av(&[], f64_)], "out of range for rank 0"),
            ],
            gen: Gen::Custom(|p| {
                let x = p.float_var_where(|a| a.ndim() >= 1)?;
                let axis = p.num(p.aval(&x).ndim());
                let reverse = p.num(2) == 1;
                Some((Primitive::Cumsum { axis, reverse }, vec![x]))
            }),
        },
        OpRow {
            name: "cumsum_reverse",
            prim: P::Cumsum {
                axis: 0,
                reverse: true,
            },
            avals: |d| vec![av(&[4], d)],
            dtypes: NUMERIC,
            domain: Real,
            tol: (1e-7, 1e-16),
            known: vec![k(vec![vec![1.0, 2.0, 3.0, 4.0]], vec![10.0, 9.0, 7.0, 4.0])],
            rejects: vec![],
            gen: Gen::Skip,
        },
    ];
    // Common rejections for rows that take operands: a wrong count.
    for r in rows.iter_mut() {
        if r.rejects.is_empty() {
            r.rejects.push((vec![av(&[3], f64_); 4], "operand"));
        }
    }
    rows
}

// ---------------------------------------------------------------------------------------
// Building programs and values from rows.

/// A one-equation program applying a row's primitive to fresh inputs of the given avals.
pub fn single_eqn_program(prim: &Primitive, in_avals: &[Aval]) -> ferrax::Result<Program> {
    let refs: Vec<&Aval> = in_avals.iter().collect();
    let out = prim.abstract_eval(&refs)?;
    let mut avals = in_avals.to_vec();
    avals.push(out);
    let n = in_avals.len() as u32;
    Ok(Program {
        avals,
        consts: vec![],
        inputs: (0..n).map(Var).collect(),
        eqns: vec![Equation {
            prim: prim.clone(),
            inputs: (0..n).map(|i| Atom::Var(Var(i))).collect(),
            out: Var(n),
            loc: None,
        }],
        outputs: vec![Atom::Var(Var(n))],
    })
}

/// An array of an aval holding the given values (converted to its dtype).
pub fn array_from_f64(vals: &[f64], aval: &Aval) -> Array {
    let data = match aval.dtype {
        DType::F32 => ferrax::Data::F32(vals.iter().map(|&v| v as f32).collect()),
        DType::F64 => ferrax::Data::F64(vals.to_vec()),
        DType::I32 => ferrax::Data::I32(vals.iter().map(|&v| v as i32).collect()),
        DType::I64 => ferrax::Data::I64(vals.iter().map(|&v| v as i64).collect()),
        DType::Bool => ferrax::Data::Bool(vals.iter().map(|&v| v != 0.0).collect()),
    };
    Array::from_data(data, &aval.shape).expect("value count matches the aval")
}

/// Random values for an aval from a domain (seeded, so failures reproduce).
pub fn random_array(seed: u64, aval: &Aval, domain: Domain) -> Array {
    let n = aval.size();
    let raw = Array::random_normal(seed, &[n], DType::F64)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    let vals: Vec<f64> = raw
        .iter()
        .map(|&z| match domain {
            Domain::Real => z,
            Domain::Positive => 0.1 + z.abs(),
            Domain::Unit => z.tanh() * 0.9,
            // Quarter-integers plus a little: away from jumps at integers and halves.
            Domain::Real2 => (z * 4.0).round() / 4.0 + 0.1,
        })
        .collect();
    let vals: Vec<f64> = match aval.dtype {
        DType::I32 | DType::I64 => vals.iter().map(|v| (v * 3.0).round()).collect(),
        DType::Bool => vals.iter().map(|v| (*v > 0.0) as u8 as f64).collect(),
        _ => vals,
    };
    array_from_f64(&vals, aval)
}

/// Whether two arrays agree to a relative tolerance (exactly, NaN = NaN, when tol = 0).
pub fn close(a: &Array, b: &Array, tol: f64) -> bool {
    if a.shape() != b.shape() || a.dtype() != b.dtype() {
        return false;
    }
    a.to_f64_vec().iter().zip(b.to_f64_vec()).all(|(x, y)| {
        (x.is_nan() && y.is_nan())
            || x == &y
            || (x - y).abs() <= tol * x.abs().max(y.abs()).max(f64::MIN_POSITIVE)
    })
}

// ---------------------------------------------------------------------------------------
// Random programs.

/// The generator's view of the program so far: the variables and their avals, and a
/// stream of choice numbers from the recipe.
pub struct Pick<'a> {
    pub avals: &'a [Aval],
    choices: &'a [u32],
    next: usize,
}

impl Pick<'_> {
    /// A choice in `0..n` (0 when n is 0).
    pub fn num(&mut self, n: usize) -> usize {
        let c = self.choices.get(self.next).copied().unwrap_or(0);
        self.next += 1;
        if n == 0 {
            0
        } else {
            c as usize % n
        }
    }
    pub fn aval(&self, a: &Atom) -> Aval {
        match a {
            Atom::Var(v) => self.avals[v.index()].clone(),
            Atom::Lit(s) => Aval::scalar(s.dtype()),
        }
    }
    /// A float variable satisfying `ok`.
    pub fn float_var_where(&mut self, ok: impl Fn(&Aval) -> bool) -> Option<Atom> {
        let cands: Vec<usize> = (0..self.avals.len())
            .filter(|&i| self.avals[i].dtype == DType::F64 && ok(&self.avals[i]))
            .collect();
        if cands.is_empty() {
            return None;
        }
        let i = cands[self.num(cands.len())];
        Some(Atom::Var(Var(i as u32)))
    }
    pub fn float_var(&mut self) -> Option<Atom> {
        self.float_var_where(|_| true)
    }
    /// A float variable with the given aval, or a literal when the aval is a scalar.
    pub fn float_var_like(&mut self, aval: &Aval) -> Option<Atom> {
        if aval.ndim() == 0 && self.num(3) == 0 {
            return Some(Atom::Lit(ferrax::Scalar::F64(1.5)));
        }
        self.float_var_where(|a| a == aval)
    }
}

fn gen_reduce(p: &mut Pick, mk: fn(Vec<usize>) -> Primitive) -> Option<(Primitive, Vec<Atom>)> {
    let x = p.float_var_where(|a| a.ndim() >= 1)?;
    let r = p.aval(&x).ndim();
    let mask = 1 + p.num((1 << r) - 1);
    let axes = (0..r).filter(|d| mask & (1 << d) != 0).collect();
    Some((mk(axes), vec![x]))
}

fn gen_dot(p: &mut Pick) -> Option<(Primitive, Vec<Atom>)> {
    let x = p.float_var_where(|a| a.ndim() >= 1)?;
    let ax = p.aval(&x);
    let lc = p.num(ax.ndim());
    let n = ax.shape[lc];
    let y = p.float_var_where(|a| a.shape.contains(&n) && a.ndim() + ax.ndim() <= 5)?;
    let ay = p.aval(&y);
    let rc = ay.shape.iter().position(|&s| s == n)?;
    Some((
        Primitive::DotGeneral {
            lhs_contracting: vec![lc],
            rhs_contracting: vec![rc],
            lhs_batch: vec![],
            rhs_batch: vec![],
        },
        vec![x, y],
    ))
}

/// Comparisons produce bools; the generator follows one with a `select` so the program
/// stays in floats. Returns the comparison; `arb_program` adds the select.
fn gen_compare_select(p: &mut Pick) -> Option<(Primitive, Vec<Atom>)> {
    let x = p.float_var()?;
    let a = p.aval(&x);
    let y = p.float_var_like(&a)?;
    let prim = [
        Primitive::Lt,
        Primitive::Gt,
        Primitive::Le,
        Primitive::Ge,
        Primitive::Eq,
        Primitive::Ne,
    ][p.num(6)]
    .clone();
    Some((prim, vec![x, y]))
}

/// A recipe: input shapes and steps of choice numbers.
#[derive(Clone, Debug)]
pub struct Recipe {
    pub inputs: Vec<u8>,
    pub steps: Vec<Vec<u32>>,
    pub n_outputs: u8,
}

pub const INPUT_SHAPES: &[&[usize]] = &[&[], &[3], &[2, 3], &[3, 1]];

/// Builds the program a recipe describes from the op table's generators. Steps whose
/// generator finds no suitable operands are skipped.
pub fn build_program(rows: &[OpRow], r: &Recipe) -> Program {
    let mut avals: Vec<Aval> = r
        .inputs
        .iter()
        .map(|&i| av(INPUT_SHAPES[i as usize % INPUT_SHAPES.len()], DType::F64))
        .collect();
    let inputs: Vec<Var> = (0..avals.len() as u32).map(Var).collect();
    let mut eqns = vec![];
    let gens: Vec<&OpRow> = rows
        .iter()
        .filter(|r| !matches!(r.gen, Gen::Skip))
        .collect();
    for step in &r.steps {
        let row = gens[step[0] as usize % gens.len()];
        let mut p = Pick {
            avals: &avals,
            choices: &step[1..],
            next: 0,
        };
        let made = match row.gen {
            Gen::Skip => None,
            Gen::Unary => p.float_var().map(|x| (row.prim.clone(), vec![x])),
            Gen::Binary => p.float_var().and_then(|x| {
                let a = p.aval(&x);
                let y = p.float_var_like(&a)?;
                let ops = if p.num(2) == 0 {
                    vec![x, y]
                } else {
                    vec![y, x]
                };
                Some((row.prim.clone(), ops))
            }),
            Gen::Custom(f) => f(&mut p),
        };
        let Some((prim, ins)) = made else { continue };
        let in_avals: Vec<Aval> = ins.iter().map(|a| p.aval(a)).collect();
        let refs: Vec<&Aval> = in_avals.iter().collect();
        let Ok(out) = prim.abstract_eval(&refs) else {
            continue;
        };
        if out.size() > 64 || out.ndim() > 3 {
            continue;
        }
        let is_cmp = out.dtype == DType::Bool;
        avals.push(out.clone());
        let v = Var(avals.len() as u32 - 1);
        eqns.push(Equation {
            prim,
            inputs: ins.clone(),
            out: v,
            loc: None,
        });
        if is_cmp {
            // select(cmp, x, y) brings the program back to floats; x and y share an aval.
            avals.push(in_avals[0].clone());
            let s = Var(avals.len() as u32 - 1);
            let inputs = vec![Atom::Var(v), ins[0].clone(), ins[1].clone()];
            eqns.push(Equation {
                prim: Primitive::Select,
                inputs,
                out: s,
                loc: None,
            });
        }
    }
    // Outputs: the last few float variables defined (inputs when nothing was built).
    let floats: Vec<Var> = (0..avals.len() as u32)
        .map(Var)
        .filter(|v| avals[v.index()].dtype == DType::F64)
        .collect();
    let n = (r.n_outputs as usize).clamp(1, floats.len());
    let outputs = floats[floats.len() - n..]
        .iter()
        .map(|v| Atom::Var(*v))
        .collect();
    Program {
        avals,
        consts: vec![],
        inputs,
        eqns,
        outputs,
    }
}

/// Rows whose primitives are smooth and bounded on all of R (or polynomial): random programs
/// made of them can be checked against finite differences anywhere.
pub const SMOOTH: &[&str] = &[
    "neg",
    "sin",
    "cos",
    "tanh",
    "logistic",
    "erf",
    "add",
    "sub",
    "mul",
    "reduce_sum",
    "broadcast_in_dim",
    "reshape",
    "transpose",
    "squeeze",
    "expand_dims",
    "slice",
    "pad",
    "concatenate",
    "rev",
    "dot_general",
    "cumsum",
    "convert_element_type",
    "iota",
];

fn recipe(max_steps: usize) -> impl Strategy<Value = Recipe> {
    (
        prop::collection::vec(0u8..4, 1..=3),
        prop::collection::vec(prop::collection::vec(any::<u32>(), 6), 1..=max_steps),
        1u8..=2,
    )
        .prop_map(|(inputs, steps, n_outputs)| Recipe {
            inputs,
            steps,
            n_outputs,
        })
}

/// Random programs of smooth primitives only (see [`SMOOTH`]).
pub fn arb_smooth_program(max_steps: usize) -> impl Strategy<Value = Program> {
    recipe(max_steps).prop_map(|r| {
        let rows: Vec<OpRow> = op_table()
            .into_iter()
            .filter(|r| SMOOTH.contains(&r.name))
            .collect();
        build_program(&rows, &r)
    })
}

/// Central differences with one step of Richardson extrapolation: error O(h^4), so the
/// tolerance against an exact derivative can be tight. `f(eps)` evaluates the function at
/// `x + eps * t`.
pub fn richardson(f: &dyn Fn(f64) -> Vec<f64>, h: f64) -> Vec<f64> {
    let d = |h: f64| -> Vec<f64> {
        let (a, b) = (f(h), f(-h));
        a.iter().zip(&b).map(|(x, y)| (x - y) / (2.0 * h)).collect()
    };
    let (d1, d2) = (d(h), d(h / 2.0));
    d1.iter()
        .zip(&d2)
        .map(|(a, b)| (4.0 * b - a) / 3.0)
        .collect()
}

/// `x + eps * t`, elementwise, for f64 arrays (other dtypes are returned unchanged).
pub fn perturb(x: &Array, t: &Array, eps: f64) -> Array {
    if x.dtype() != DType::F64 {
        return x.clone();
    }
    let v: Vec<f64> = x
        .to_f64_vec()
        .iter()
        .zip(t.to_f64_vec())
        .map(|(a, b)| a + eps * b)
        .collect();
    Array::from_vec(v, x.shape()).unwrap()
}

/// Whether two f64 vectors agree to `rtol` relative to the larger magnitude (at least 1).
pub fn agree(a: &[f64], b: &[f64], rtol: f64) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            (x.is_nan() && y.is_nan()) || (x - y).abs() <= rtol * x.abs().max(y.abs()).max(1.0)
        })
}

/// A proptest strategy for random well-typed f64 programs (up to `max_steps` equations).
pub fn arb_program(max_steps: usize) -> impl Strategy<Value = Program> {
    let recipe = (
        prop::collection::vec(0u8..4, 1..=3),
        prop::collection::vec(prop::collection::vec(any::<u32>(), 6), 1..=max_steps),
        1u8..=2,
    )
        .prop_map(|(inputs, steps, n_outputs)| Recipe {
            inputs,
            steps,
            n_outputs,
        });
    recipe.prop_map(|r| build_program(&op_table(), &r))
}

/// Random inputs for a program's inputs.
pub fn random_inputs(p: &Program, seed: u64) -> Vec<Array> {
    p.in_avals()
        .iter()
        .enumerate()
        .map(|(i, a)| {
            random_array(
                seed.wrapping_mul(31).wrapping_add(i as u64),
                a,
                Domain::Real,
            )
        })
        .collect()
}
