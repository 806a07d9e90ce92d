//! Maximum and minimum reductions over trailing axes, in independent lanes.
//!
//! Part of the reference evaluator's kernels (`kernels.rs` has the general `reduce`). The
//! NaN rule of `max`/`min` (the first NaN wins, then the first of equal values) makes the
//! plain fold one long dependency chain, with a NaN test in it, that does not vectorize;
//! a reduction of 65,536 values per loop iteration (a convergence test) spent most of its
//! time there. Here each block is folded in sixteen lanes with a plain comparison and a
//! NaN flag beside it, then the lanes are combined. The result is the serial fold's, bit
//! for bit: without a NaN, equal values have equal bits except for zeros, so the lanes'
//! winner is the first one's; a block with a NaN, or whose extremum is a zero (whose sign
//! depends on which came first), is folded again serially.

use super::kernels::{reduce, Num};

/// [`reduce`] with `max_nan` or `min_nan` (`f`), `better(v, acc)` saying whether `v`
/// replaces `acc` when neither is NaN (`v > acc` for a maximum): the same bits.
pub(super) fn reduce_extremum<T: Num>(
    x: &[T],
    shape: &[usize],
    axes: &[usize],
    init: T,
    f: impl Fn(T, T) -> T + Copy,
    better: impl Fn(T, T) -> bool + Copy,
) -> Vec<T> {
    let r = axes.len();
    let mut sorted = axes.to_vec();
    sorted.sort_unstable();
    let trailing = r > 0
        && r <= shape.len()
        && sorted
            .iter()
            .enumerate()
            .all(|(k, &d)| d == shape.len() - r + k);
    if !trailing || x.is_empty() {
        return reduce(x, shape, axes, init, f);
    }
    let n_out: usize = shape[..shape.len() - r].iter().product();
    let block = x.len() / n_out.max(1);
    x.chunks(block).map(|c| fold(c, init, f, better)).collect()
}

fn fold<T: Num>(x: &[T], init: T, f: impl Fn(T, T) -> T, better: impl Fn(T, T) -> bool) -> T {
    const LANES: usize = 16;
    let serial = || x.iter().fold(init, |a, &v| f(a, v));
    let mut acc = [init; LANES];
    let mut nan = false;
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for j in 0..LANES {
            let v = c[j];
            nan |= v.is_nan();
            if better(v, acc[j]) {
                acc[j] = v;
            }
        }
    }
    if nan {
        return serial();
    }
    let m = acc.iter().fold(init, |a, &v| f(a, v));
    let m = chunks.remainder().iter().fold(m, |a, &v| f(a, v));
    if m == T::ZERO {
        return serial();
    }
    m
}
