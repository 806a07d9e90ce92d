//! Rows of the primitives added for the jax.numpy surface: the inverse trigonometric and
//! hyperbolic functions, `rem`, `argmin`, `reduce_prod` and `argsort`. Known values: C's
//! libm through Python's `math` module, the rest worked by hand.

use super::*;
use Domain::*;

pub fn rows() -> Vec<OpRow> {
    use Primitive as P;
    let f64_ = DType::F64;
    vec![
        OpRow {
            gen: Gen::Skip,
            ..float_unary(
                "asin",
                P::Asin,
                Unit,
                [-0.5, 0.1, 0.9],
                [-0.5235987755982989, 0.1001674211615598, 1.1197695149986342],
            )
        },
        OpRow {
            gen: Gen::Skip,
            ..float_unary(
                "acos",
                P::Acos,
                Unit,
                [-0.5, 0.1, 0.9],
                [2.0943951023931957, 1.4706289056333368, 0.45102681179626236],
            )
        },
        OpRow {
            gen: Gen::Skip,
            ..float_unary(
                "atan",
                P::Atan,
                Real,
                [-2.0, 0.1, 3.0],
                [-1.1071487177940904, 0.09966865249116204, 1.2490457723982544],
            )
        },
        OpRow {
            gen: Gen::Skip,
            ..float_unary(
                "asinh",
                P::Asinh,
                Real,
                [-2.0, 0.1, 3.0],
                [-1.4436354751788103, 0.09983407889920758, 1.8184464592320668],
            )
        },
        OpRow {
            gen: Gen::Skip,
            ..float_unary(
                "acosh",
                P::Acosh,
                AboveOne,
                [1.5, 2.0, 10.0],
                [0.9624236501192069, 1.3169578969248166, 2.993222846126381],
            )
        },
        OpRow {
            gen: Gen::Skip,
            ..float_unary(
                "atanh",
                P::Atanh,
                Unit,
                [-0.5, 0.1, 0.9],
                [-0.5493061443340548, 0.10033534773107558, 1.4722194895832204],
            )
        },
        OpRow {
            // the divisor is static and larger than the dividends of the `Unit` domain: `rem`
            // jumps where x / y is a nonzero integer, which no finite difference survives
            // (the derivative in y beyond the first period: `tests/numpy_more.rs`)
            fixed: &[(1, &[0.95, -1.3, 2.9])],
            ..binary(
                "rem",
                P::Rem,
                NUMERIC,
                Unit,
                [5.5, -5.5, 5.5],
                [2.0, 2.0, -2.0],
                [1.5, -1.5, 1.5],
            )
        },
        OpRow {
            name: "argmin",
            prim: P::Argmin {
                axis: 1,
                index_dtype: DType::I64,
            },
            avals: m23,
            dtypes: NUMERIC,
            domain: Real,
            tol: (0.0, 0.0),
            known: vec![k(vec![vec![4.0, 1.0, 1.0, 2.0, 5.0, -6.0]], vec![1.0, 2.0])],
            rejects: vec![(vec![av(&[2, 0], f64_)], "axis 1 of f64[2,0] is empty")],
            prim_at: None,
            fixed: &[],
            gen: Gen::Skip,
        },
        OpRow {
            name: "reduce_prod",
            prim: P::ReduceProd { axes: vec![1] },
            avals: m23,
            dtypes: NUMERIC,
            domain: Real,
            tol: (1e-6, 1e-15),
            known: vec![k(
                vec![vec![2.0, 3.0, -4.0, 0.5, 0.0, 7.0]],
                vec![-24.0, 0.0],
            )],
            rejects: vec![(vec![av(&[3], DType::Bool)], "must be numeric")],
            prim_at: None,
            fixed: &[],
            gen: Gen::Skip,
        },
        OpRow {
            name: "argsort",
            prim: P::Argsort {
                axis: 0,
                index_dtype: DType::I32,
            },
            avals: |d| vec![av(&[5], d)],
            dtypes: NUMERIC,
            domain: Real,
            tol: (0.0, 0.0),
            // stable: the two 1s keep their order
            known: vec![k(
                vec![vec![3.0, 1.0, -2.0, 1.0, 0.5]],
                vec![2.0, 4.0, 1.0, 3.0, 0.0],
            )],
            rejects: vec![(vec![av(&[5], DType::Bool)], "must be numeric")],
            prim_at: None,
            fixed: &[],
            gen: Gen::Skip,
        },
        OpRow {
            name: "threefry2x32",
            prim: P::Threefry2x32,
            avals: |_| vec![av(&[2, 2], DType::I32), av(&[2, 2], DType::I32)],
            dtypes: &[DType::I32],
            domain: Real,
            tol: (0.0, 0.0),
            known: vec![k(
                vec![vec![0.0, 0.0, -1.0, -1.0], vec![0.0, 0.0, -1.0, -1.0]],
                vec![1797259609.0, -1715843330.0, 481924860.0, -1157616665.0],
            )],
            rejects: vec![
                (
                    vec![av(&[2], DType::I32), av(&[3], DType::I32)],
                    "last dimension of 2",
                ),
                (
                    vec![av(&[2], DType::F64), av(&[2], DType::F64)],
                    "i32 with a last dimension of 2",
                ),
            ],
            prim_at: None,
            fixed: &[],
            gen: Gen::Skip,
        },
    ]
}
