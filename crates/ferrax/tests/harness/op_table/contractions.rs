//! Contractions and scans: `dot_general` and `cumsum` (a sum against a triangular matrix).

use super::*;

/// The contraction and scan rows, in table order.
pub(super) fn rows() -> Vec<OpRow> {
    use Domain::*;
    use Primitive as P;
    let f64_ = DType::F64;
    vec![
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
            prim_at: None,
            fixed: &[],
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
            prim_at: None,
            fixed: &[],
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
            prim_at: None,
            fixed: &[],
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
            prim_at: None,
            fixed: &[],
            gen: Gen::Skip,
        },
    ]
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
