//! Structural rows: copies and rearrangements (`broadcast_in_dim`, `reshape`, `transpose`,
//! `squeeze`, `expand_dims`, `slice`, `pad`, `concatenate`, `rev`) and `iota`.

use super::*;

/// The structural rows, in table order.
pub(super) fn rows() -> Vec<OpRow> {
    use Domain::*;
    use Primitive as P;
    let f64_ = DType::F64;
    vec![
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
            prim_at: None,
            fixed: &[],
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
            prim_at: None,
            fixed: &[],
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
            prim_at: None,
            fixed: &[],
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
            prim_at: None,
            fixed: &[],
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
            prim_at: None,
            fixed: &[],
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
            prim_at: None,
            fixed: &[],
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
            prim_at: None,
            fixed: &[],
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
            prim_at: None,
            fixed: &[],
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
            prim_at: None,
            fixed: &[],
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
            prim_at: None,
            fixed: &[],
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
            prim_at: None,
            fixed: &[],
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
            prim_at: None,
            fixed: &[],
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
            prim_at: None,
            fixed: &[],
            gen: Gen::Skip,
        },
    ]
}
