//! numpy's basic slicing with static bounds: `x.s(s![.., 1..-1;2, NewAxis, -1])` is
//! `x[:, 1:-1:2, None, -1]`.
//!
//! Each item of [`s!`](crate::s) is a [`SliceItem`]: a range (open or negative bounds, and
//! a step after `;`, which may be negative), an integer (removes the dimension; negative
//! counts from the end; out of range is an error, as in JAX), [`NewAxis`] (a new dimension
//! of size 1) or [`Ellipsis`] (as many full ranges as needed). Dimensions not named are
//! taken whole. The result is one `slice` (after a `rev` of the dimensions with negative
//! steps), a `squeeze` and an `expand_dims`: static, so it differentiates and batches with
//! those primitives' rules.

use std::ops::{Range, RangeFrom, RangeFull, RangeInclusive, RangeTo, RangeToInclusive};

use crate::ir::{Error, Primitive, Result, SourceLoc};
use crate::trace::{bind, try_t, Tensor};

/// One item of a numpy-style index (see [`s!`](crate::s)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SliceItem {
    /// `start:stop:step` (Python's rules for open and negative bounds).
    Range {
        /// The first position, negative counting from the end (`None`: the first in the step's
        /// direction).
        start: Option<isize>,
        /// The position where the range stops, excluded (`None`: run to the end in the step's
        /// direction).
        stop: Option<isize>,
        /// The stride between positions; negative walks backwards, and 0 is a shape error.
        step: isize,
    },
    /// One position: the dimension is removed.
    Index(isize),
    /// `None`/`np.newaxis`: a new dimension of size 1.
    NewAxis,
    /// `...`: full ranges for every dimension not otherwise named.
    Ellipsis,
}

/// `np.newaxis` in [`s!`](crate::s).
#[derive(Clone, Copy, Debug)]
pub struct NewAxis;

/// `...` in [`s!`](crate::s).
#[derive(Clone, Copy, Debug)]
pub struct Ellipsis;

impl SliceItem {
    /// The range with another step (`s![a..b; step]`). An integer item is not a range: the
    /// step makes it `i..i+1` with that step.
    pub fn step(self, step: isize) -> SliceItem {
        match self {
            SliceItem::Range { start, stop, .. } => SliceItem::Range { start, stop, step },
            SliceItem::Index(i) => SliceItem::Range {
                start: Some(i),
                stop: Some(i.saturating_add(1)),
                step,
            },
            other => other,
        }
    }
}

impl From<NewAxis> for SliceItem {
    fn from(_: NewAxis) -> SliceItem {
        SliceItem::NewAxis
    }
}
impl From<Ellipsis> for SliceItem {
    fn from(_: Ellipsis) -> SliceItem {
        SliceItem::Ellipsis
    }
}
impl From<RangeFull> for SliceItem {
    fn from(_: RangeFull) -> SliceItem {
        SliceItem::Range {
            start: None,
            stop: None,
            step: 1,
        }
    }
}

/// A Rust integer as an index bound: a `usize` beyond `isize::MAX` saturates (it is past the
/// end of any dimension either way) instead of wrapping to a negative index.
fn bound<T: TryInto<isize>>(v: T) -> isize {
    v.try_into().unwrap_or(isize::MAX)
}

macro_rules! slice_item_from_ints {
    ($($t:ty),*) => {$(
        impl From<$t> for SliceItem {
            fn from(i: $t) -> SliceItem {
                SliceItem::Index(bound(i))
            }
        }
        impl From<Range<$t>> for SliceItem {
            fn from(r: Range<$t>) -> SliceItem {
                SliceItem::Range { start: Some(bound(r.start)), stop: Some(bound(r.end)), step: 1 }
            }
        }
        impl From<RangeInclusive<$t>> for SliceItem {
            fn from(r: RangeInclusive<$t>) -> SliceItem {
                // `a..=-1` is "to the end", not an empty range
                let stop = bound(*r.end()).checked_add(1).filter(|&s| s != 0);
                SliceItem::Range { start: Some(bound(*r.start())), stop, step: 1 }
            }
        }
        impl From<RangeFrom<$t>> for SliceItem {
            fn from(r: RangeFrom<$t>) -> SliceItem {
                SliceItem::Range { start: Some(bound(r.start)), stop: None, step: 1 }
            }
        }
        impl From<RangeTo<$t>> for SliceItem {
            fn from(r: RangeTo<$t>) -> SliceItem {
                SliceItem::Range { start: None, stop: Some(bound(r.end)), step: 1 }
            }
        }
        impl From<RangeToInclusive<$t>> for SliceItem {
            fn from(r: RangeToInclusive<$t>) -> SliceItem {
                let stop = bound(r.end).checked_add(1).filter(|&s| s != 0);
                SliceItem::Range { start: None, stop, step: 1 }
            }
        }
    )*};
}
slice_item_from_ints!(i32, i64, isize, usize);

/// A numpy-style index for [`Tensor::s`]: `s![.., 1..-1;2, NewAxis, -1, Ellipsis]`, each item
/// a range (`a..b`, `a..`, `..b`, `..`, `a..=b`; a step after `;`), an integer, [`NewAxis`]
/// or [`Ellipsis`].
///
/// A range with a negative end (`1..-1`) reads as numpy's `1:-1`; clippy's
/// `reversed_empty_ranges` lint does not know that, so a crate that writes one allows it.
///
/// ```
/// use ferrax::{s, Tensor, NewAxis};
/// let x = Tensor::from_vec((0..12).map(f64::from).collect(), &[3, 4]);
/// // x[1:, ::-2] and x[-1, None]
/// assert_eq!(x.s(s![1.., ..;-2]).to_vec::<f64>().unwrap(), vec![7.0, 5.0, 11.0, 9.0]);
/// assert_eq!(x.s(s![-1, NewAxis]).shape(), &[1, 4]);
/// ```
#[macro_export]
macro_rules! s {
    ($($item:expr $(; $step:expr)?),* $(,)?) => {
        &[$($crate::SliceItem::from($item)$(.step($step))?),*][..]
    };
}

/// A dimension's slice after Python's rules: first index, count, step (non-zero).
fn resolve(start: Option<isize>, stop: Option<isize>, step: isize, n: usize) -> (isize, usize) {
    let n = n as isize;
    let norm = |i: isize, lo: isize, hi: isize| {
        let i = if i < 0 { i + n } else { i };
        i.clamp(lo, hi)
    };
    let (first, end) = if step > 0 {
        (
            start.map_or(0, |s| norm(s, 0, n)),
            stop.map_or(n, |s| norm(s, 0, n)),
        )
    } else {
        (
            start.map_or(n - 1, |s| norm(s, -1, n - 1)),
            stop.map_or(-1, |s| norm(s, -1, n - 1)),
        )
    };
    let span = if step > 0 { end - first } else { first - end };
    // ceil(span / |step|), without overflow for any step (isize::MIN included)
    let count = if span <= 0 {
        0
    } else {
        ((span as usize - 1) / step.unsigned_abs() + 1) as isize
    };
    (first, count as usize)
}

/// The slice, reversal, squeeze and new axes an index asks of a shape.
struct Plan {
    start: Vec<usize>,
    limit: Vec<usize>,
    strides: Vec<usize>,
    reversed: Vec<usize>,
    squeezed: Vec<usize>,
    new_axes: Vec<usize>,
}

fn plan(items: &[SliceItem], shape: &[usize]) -> Result<Plan> {
    let op = "s";
    let named = items
        .iter()
        .filter(|i| matches!(i, SliceItem::Range { .. } | SliceItem::Index(_)))
        .count();
    let ellipses = items.iter().filter(|i| **i == SliceItem::Ellipsis).count();
    if ellipses > 1 {
        return Err(Error::shape(op, "an index may have one Ellipsis only"));
    }
    if named > shape.len() {
        return Err(Error::shape(
            op,
            format!("too many indices: {named} for a tensor of shape {shape:?}"),
        ));
    }
    let full = SliceItem::Range {
        start: None,
        stop: None,
        step: 1,
    };
    // the items with the ellipsis (or the end) expanded to full ranges
    let mut expanded = vec![];
    for it in items {
        match it {
            SliceItem::Ellipsis => expanded.extend(std::iter::repeat_n(full, shape.len() - named)),
            other => expanded.push(*other),
        }
    }
    if ellipses == 0 {
        expanded.extend(std::iter::repeat_n(full, shape.len() - named));
    }
    let mut p = Plan {
        start: vec![],
        limit: vec![],
        strides: vec![],
        reversed: vec![],
        squeezed: vec![],
        new_axes: vec![],
    };
    let (mut d, mut out_pos) = (0, 0);
    for it in expanded {
        match it {
            SliceItem::NewAxis => {
                p.new_axes.push(out_pos);
                out_pos += 1;
            }
            SliceItem::Index(i) => {
                let n = shape[d] as isize;
                let k = if i < 0 { i + n } else { i };
                if k < 0 || k >= n {
                    return Err(Error::shape(
                        op,
                        format!("index {i} is out of range for dimension {d} of size {n}"),
                    ));
                }
                p.start.push(k as usize);
                p.limit.push(k as usize + 1);
                p.strides.push(1);
                p.squeezed.push(d);
                d += 1;
            }
            SliceItem::Range { start, stop, step } => {
                if step == 0 {
                    return Err(Error::shape(op, format!("dimension {d}: the step is 0")));
                }
                let n = shape[d];
                let (first, count) = resolve(start, stop, step, n);
                // a negative step reads the reversed dimension forwards
                let (first, stride) = if step < 0 {
                    p.reversed.push(d);
                    (
                        (n as isize - 1 - first).max(0) as usize,
                        step.unsigned_abs(),
                    )
                } else {
                    (first.max(0) as usize, step as usize)
                };
                let first = if count == 0 { first.min(n) } else { first };
                p.start.push(first);
                p.limit.push(if count == 0 {
                    first
                } else {
                    first + (count - 1) * stride + 1
                });
                p.strides.push(stride);
                d += 1;
                out_pos += 1;
            }
            SliceItem::Ellipsis => unreachable!("expanded above"),
        }
    }
    Ok(p)
}

impl Tensor {
    /// numpy's basic indexing with static bounds (see [`s!`](crate::s)): `x.s(s![1.., -1])`
    /// is `x[1:, -1]`.
    #[track_caller]
    pub fn s(&self, items: &[SliceItem]) -> Tensor {
        let loc = SourceLoc::caller();
        if let Some(e) = self.error() {
            return Tensor::failed(e.clone());
        }
        let p = try_t!(plan(items, self.shape()), loc);
        let mut t = self.clone();
        if !p.reversed.is_empty() {
            t = bind(
                Primitive::Rev {
                    dimensions: p.reversed,
                },
                &[&t],
                loc,
            );
        }
        t = bind(
            Primitive::Slice {
                start: p.start,
                limit: p.limit,
                strides: p.strides,
            },
            &[&t],
            loc,
        );
        if !p.squeezed.is_empty() {
            t = bind(
                Primitive::Squeeze {
                    dimensions: p.squeezed,
                },
                &[&t],
                loc,
            );
        }
        if !p.new_axes.is_empty() {
            t = bind(
                Primitive::ExpandDims {
                    dimensions: p.new_axes,
                },
                &[&t],
                loc,
            );
        }
        t
    }
}
