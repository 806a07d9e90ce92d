//! The reference kernels of `argsort` and `rem`: orderings and remainders, kept apart from
//! `kernels.rs` so that each file stays short.

use super::kernels::{flat, for_each_index, Num};
use crate::ir::strides;

/// The stable ascending order along `axis` (NaNs last, in their order), as indices.
pub(super) fn argsort<T: Num>(x: &[T], shape: &[usize], axis: usize) -> Vec<i64> {
    if x.is_empty() {
        // no lanes to sort (and no loop over the extents of an empty array)
        return vec![];
    }
    let st = strides(shape);
    let n = shape[axis];
    let mut out = vec![0i64; x.len()];
    let mut lanes = shape.to_vec();
    lanes[axis] = 1;
    let mut order: Vec<usize> = Vec::with_capacity(n);
    for_each_index(&lanes, |o| {
        let base = flat(o, &st);
        order.clear();
        order.extend(0..n);
        let at = |k: usize| x[base + k * st[axis]];
        order.sort_by(|&a, &b| {
            let (u, v) = (at(a), at(b));
            match (u.is_nan(), v.is_nan()) {
                (false, false) => u.partial_cmp(&v).expect("neither is NaN"),
                (nu, nv) => nu.cmp(&nv),
            }
        });
        for (k, &i) in order.iter().enumerate() {
            out[base + k * st[axis]] = i as i64;
        }
    });
    out
}

/// Remainder with the sign of the dividend; an integer remainder by zero is the dividend.
pub(super) fn rem_int<T: Copy + PartialEq + Default>(x: T, y: T, rem: impl Fn(T, T) -> T) -> T {
    if y == T::default() {
        x
    } else {
        rem(x, y)
    }
}
