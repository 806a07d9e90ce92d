//! Reductions over axes: `reduce_sum`, `reduce_max`, `reduce_min` and `argmax`.

use super::*;

/// The reduction rows, in table order.
pub(super) fn rows() -> Vec<OpRow> {
    use Domain::*;
    use Primitive as P;
    let f64_ = DType::F64;
    vec![
        OpRow {
            name: "reduce_sum",
            prim: P::ReduceSum { axes: vec![1] },
            avals: m23,
            dtypes: NUMERIC,
            domain: Real,
            tol: (1e-7, 1e-16),
            known: vec![k(vec![vec![1.0, 5.0, 3.0, 4.0, 2.0, 6.0]], vec![9.0, 12.0])],
            rejects: vec![(vec![av(&[2, 3], DType::Bool)], "must be numeric")],
            prim_at: None,
            fixed: &[],
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
            prim_at: None,
            fixed: &[],
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
            prim_at: None,
            fixed: &[],
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
            prim_at: None,
            fixed: &[],
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
            prim_at: None,
            fixed: &[],
            gen: Gen::Skip, // integer output: used in tests, not in float programs
        },
    ]
}

fn gen_reduce(p: &mut Pick, mk: fn(Vec<usize>) -> Primitive) -> Option<(Primitive, Vec<Atom>)> {
    let x = p.float_var_where(|a| a.ndim() >= 1)?;
    let r = p.aval(&x).ndim();
    let mask = 1 + p.num((1 << r) - 1);
    let axes = (0..r).filter(|d| mask & (1 << d) != 0).collect();
    Some((mk(axes), vec![x]))
}
