//! The jvp rules of the indexing primitives (`gather`, the scatters, the dynamic slices).
//!
//! The linear ones apply themselves to the tangents with the primal indices. The
//! nonlinear scatters are written, as every jvp rule is, with coefficients computed from
//! primals and only linear primitives touching tangents:
//!
//! * `scatter` with `mul`: `out = x · Π u` over the updates landing on a place, so
//!   `dout = dx · Π u + Σ_k x · P_k · du_k` with `P_k` the product of the *other* updates on
//!   `u_k`'s place. `P_k` is found exactly, zeros included: with `Z` the count of zero updates
//!   on the place and `Q` the product of its nonzero ones, `P_k = Q / u_k` if `Z = 0`, `Q` if
//!   `u_k` is the only zero, and `0` otherwise.
//! * `scatter` with `min`/`max`: the tangent of whichever of `x` and the updates attains the
//!   result, averaged over ties (as `reduce_max` and `max` do).

use super::aval;
use crate::ir::{Primitive, ScatterCombine};
use crate::trace::{Emit, Tensor};

/// The tangent of an indexing primitive's output (`None`: zero). `x` are the primal
/// operands, `t` their tangents (indices have none), `out` the primal output.
pub(crate) fn jvp_indexing(
    e: &Emit,
    prim: &Primitive,
    x: &[Tensor],
    t: &[Option<Tensor>],
    out: &Tensor,
) -> Option<Tensor> {
    let inst = |i: usize| t[i].clone().unwrap_or_else(|| e.zeros(&aval(&x[i])));
    // the same primitive on the data operands' tangents, the indices as they are
    let linear = |data: &[usize]| {
        if data.iter().all(|&i| t[i].is_none()) {
            return None;
        }
        let ops: Vec<Tensor> = (0..x.len())
            .map(|i| match data.contains(&i) {
                true => inst(i),
                false => x[i].clone(),
            })
            .collect();
        Some(e.op(prim.clone(), &ops.iter().collect::<Vec<_>>()))
    };
    match prim {
        Primitive::Gather { .. } | Primitive::DynamicSlice { .. } => linear(&[0]),
        Primitive::ScatterAdd { .. } => linear(&[0, 2]),
        Primitive::DynamicUpdateSlice => linear(&[0, 1]),
        Primitive::Scatter {
            axis,
            batch,
            mode,
            combine,
        } => {
            let like = |combine| Primitive::Scatter {
                axis: *axis,
                batch: *batch,
                mode: *mode,
                combine,
            };
            let add = Primitive::ScatterAdd {
                axis: *axis,
                batch: *batch,
                mode: *mode,
            };
            let gather = Primitive::Gather {
                axis: *axis,
                batch: *batch,
                mode: *mode,
            };
            let (xv, idx, u) = (&x[0], &x[1], &x[2]);
            let (xa, ua) = (aval(xv), aval(u));
            match combine {
                ScatterCombine::Set => linear(&[0, 2]),
                ScatterCombine::Mul => {
                    let dt = xa.dtype;
                    let prod_u = e.op(like(ScatterCombine::Mul), &[&e.full(1.0, &xa), idx, u]);
                    let dx = t[0].as_ref().map(|tx| e.mul(tx, &prod_u));
                    let du = t[2].as_ref().map(|tu| {
                        let zero_u = e.op(Primitive::Eq, &[u, &e.zeros(&ua)]);
                        let one_u = e.full(1.0, &ua);
                        let safe_u = e.op(Primitive::Select, &[&zero_u, &one_u, u]);
                        let zeros_on =
                            e.op(add.clone(), &[&e.zeros(&xa), idx, &e.convert(&zero_u, dt)]);
                        let q = e.op(
                            like(ScatterCombine::Mul),
                            &[&e.full(1.0, &xa), idx, &safe_u],
                        );
                        let (zk, qk) = (
                            e.op(gather.clone(), &[&zeros_on, idx]),
                            e.op(gather.clone(), &[&q, idx]),
                        );
                        let zero_k = e.zeros(&ua);
                        let if_nonzero = e.op(
                            Primitive::Select,
                            &[
                                &e.op(Primitive::Eq, &[&zk, &zero_k]),
                                &e.div(&qk, &safe_u),
                                &zero_k,
                            ],
                        );
                        let if_zero = e.op(
                            Primitive::Select,
                            &[&e.op(Primitive::Eq, &[&zk, &one_u]), &qk, &zero_k],
                        );
                        let others = e.op(Primitive::Select, &[&zero_u, &if_zero, &if_nonzero]);
                        let coef = e.mul(&e.op(gather.clone(), &[xv, idx]), &others);
                        e.op(add.clone(), &[&e.zeros(&xa), idx, &e.mul(tu, &coef)])
                    });
                    match (dx, du) {
                        (Some(a), Some(b)) => Some(e.add(&a, &b)),
                        (a, b) => a.or(b),
                    }
                }
                ScatterCombine::Min | ScatterCombine::Max => {
                    // which of x and the updates attain the result, as 0/1 in the dtype
                    let attains = |v: &Tensor, at: &Tensor| {
                        e.convert(&e.op(Primitive::Eq, &[v, at]), xa.dtype)
                    };
                    let ex = attains(xv, out);
                    let eu = attains(u, &e.op(gather, &[out, idx]));
                    let count = e.op(add.clone(), &[&ex, idx, &eu]);
                    let tx = t[0]
                        .as_ref()
                        .map(|tx| e.mul(tx, &ex))
                        .unwrap_or_else(|| e.zeros(&xa));
                    let tu = t[2]
                        .as_ref()
                        .map(|tu| e.mul(tu, &eu))
                        .unwrap_or_else(|| e.zeros(&ua));
                    let num = e.op(add, &[&tx, idx, &tu]);
                    Some(e.div(&num, &count))
                }
            }
        }
        other => Some(crate::trace::fail(crate::ir::Error::internal(format!(
            "`{}` is not an indexing primitive",
            other.name()
        )))),
    }
}
