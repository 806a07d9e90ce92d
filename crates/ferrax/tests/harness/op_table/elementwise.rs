//! Elementwise rows: unary and binary arithmetic, transcendental functions, rounding,
//! comparisons, `select` and `convert_element_type`.

use super::*;

/// The elementwise rows, in table order.
pub(super) fn rows() -> Vec<OpRow> {
    use Domain::*;
    use Primitive as P;
    let f64_ = DType::F64;
    vec![
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
            prim_at: None,
            fixed: &[],
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
            prim_at: None,
            fixed: &[],
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
            prim_at: None,
            fixed: &[],
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
            prim_at: None,
            fixed: &[],
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
            prim_at: None,
            fixed: &[],
            gen: Gen::Skip,
        },
    ]
}

/// A comparison row: every dtype for `eq` and `ne`, numeric ones for the orderings.
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
