//! The reference kernels of the indexing primitives: `gather`, `scatter_add`, `scatter`,
//! `dynamic_slice`, `dynamic_update_slice` (their meaning is in `ir::indexing`).
//!
//! A gather or scatter views its operand as `[batch, mid, n, inner]` (the shared leading
//! dimensions, those before the indexed axis, the axis, those after it) and its indices as
//! `[batch, k]`; the gathered array (a scatter's updates) is then `[batch, mid, k, inner]`,
//! walked in row-major order, which is the order in which `scatter` applies its updates (so
//! the last of several `set`s to one place wins). Dynamic slices copy rows of the innermost
//! dimension between the window and the operand.

use super::kernels::{gather_data, Num};
use crate::ir::{clamp_start, strides, Array, Data, IndexMode, Primitive, ScatterCombine};

/// The indices as `i64`, whatever their integer dtype.
fn index_values(idx: &Array) -> Vec<i64> {
    match idx.data() {
        Data::I32(v) => v.iter().map(|&i| i as i64).collect(),
        Data::I64(v) => v.clone(),
        _ => unreachable!("the shape rule admits i32 or i64 indices only"),
    }
}

/// The `[batch, mid, n, inner]` view of a gather's or scatter's operand, and `k`.
struct View {
    batch: usize,
    mid: usize,
    n: usize,
    inner: usize,
    k: usize,
}

fn view(x: &[usize], idx: &[usize], axis: usize, batch: usize) -> View {
    let p = |s: &[usize]| s.iter().product::<usize>();
    View {
        batch: p(&x[..batch]),
        mid: p(&x[batch..axis]),
        n: x[axis],
        inner: p(&x[axis + 1..]),
        k: p(&idx[batch..]),
    }
}

impl View {
    /// Calls `f(operand offset, gathered offset)` for every indexed row of `inner` elements
    /// (the operand offset `None` where the index selects nothing), in row-major order.
    fn rows(&self, idx: &[i64], mode: IndexMode, mut f: impl FnMut(Option<usize>, usize)) {
        // empty rows move nothing: no loop over (perhaps very many) of them
        if self.inner == 0 {
            return;
        }
        for b in 0..self.batch {
            for m in 0..self.mid {
                for j in 0..self.k {
                    let pos = mode.resolve(idx[b * self.k + j], self.n);
                    let src = pos.map(|p| ((b * self.mid + m) * self.n + p) * self.inner);
                    f(src, ((b * self.mid + m) * self.k + j) * self.inner);
                }
            }
        }
    }
}

fn gather_rows<T: Copy + Default>(x: &[T], v: &View, idx: &[i64], mode: IndexMode) -> Vec<T> {
    let mut out = vec![T::default(); v.batch * v.mid * v.k * v.inner];
    v.rows(idx, mode, |src, dst| {
        if let Some(s) = src {
            out[dst..dst + v.inner].copy_from_slice(&x[s..s + v.inner]);
        }
    });
    out
}

fn scatter_rows<T: Copy>(
    x: &[T],
    u: &[T],
    v: &View,
    idx: &[i64],
    mode: IndexMode,
    combine: impl Fn(T, T) -> T,
) -> Vec<T> {
    let mut out = x.to_vec();
    v.rows(idx, mode, |dst, src| {
        if let Some(d) = dst {
            for t in 0..v.inner {
                out[d + t] = combine(out[d + t], u[src + t]);
            }
        }
    });
    out
}

fn scatter_num<T: Num>(x: &[T], u: &[T], v: &View, idx: &[i64], prim: &Primitive) -> Vec<T> {
    match prim {
        Primitive::ScatterAdd { mode, .. } => scatter_rows(x, u, v, idx, *mode, T::add),
        Primitive::Scatter { mode, combine, .. } => match combine {
            ScatterCombine::Set => scatter_rows(x, u, v, idx, *mode, |_, b| b),
            ScatterCombine::Mul => scatter_rows(x, u, v, idx, *mode, T::mul),
            ScatterCombine::Min => scatter_rows(x, u, v, idx, *mode, T::min_nan),
            ScatterCombine::Max => scatter_rows(x, u, v, idx, *mode, T::max_nan),
        },
        _ => unreachable!("only scatters come here"),
    }
}

/// `gather`, `scatter_add`, `scatter`, `dynamic_slice` or `dynamic_update_slice` on
/// operands that passed the shape rule, giving an array of `out_shape`.
pub(super) fn eval_indexing(prim: &Primitive, args: &[&Array], out_shape: &[usize]) -> Data {
    let x = args[0];
    match prim {
        Primitive::Gather { axis, batch, mode } => {
            let v = view(x.shape(), args[1].shape(), *axis, *batch);
            let idx = index_values(args[1]);
            match x.data() {
                Data::F32(d) => Data::F32(gather_rows(d, &v, &idx, *mode)),
                Data::F64(d) => Data::F64(gather_rows(d, &v, &idx, *mode)),
                Data::I32(d) => Data::I32(gather_rows(d, &v, &idx, *mode)),
                Data::I64(d) => Data::I64(gather_rows(d, &v, &idx, *mode)),
                Data::Bool(d) => Data::Bool(gather_rows(d, &v, &idx, *mode)),
            }
        }
        Primitive::ScatterAdd { axis, batch, .. } | Primitive::Scatter { axis, batch, .. } => {
            let v = view(x.shape(), args[1].shape(), *axis, *batch);
            let idx = index_values(args[1]);
            match (x.data(), args[2].data()) {
                (Data::F32(a), Data::F32(u)) => Data::F32(scatter_num(a, u, &v, &idx, prim)),
                (Data::F64(a), Data::F64(u)) => Data::F64(scatter_num(a, u, &v, &idx, prim)),
                (Data::I32(a), Data::I32(u)) => Data::I32(scatter_num(a, u, &v, &idx, prim)),
                (Data::I64(a), Data::I64(u)) => Data::I64(scatter_num(a, u, &v, &idx, prim)),
                // only `set` admits bools (the shape rule)
                (Data::Bool(a), Data::Bool(u)) => {
                    let mode = match prim {
                        Primitive::Scatter { mode, .. } => *mode,
                        _ => unreachable!("scatter_add admits numeric operands only"),
                    };
                    Data::Bool(scatter_rows(a, u, &v, &idx, mode, |_, b| b))
                }
                _ => unreachable!("the shape rule admits updates of the operand's dtype only"),
            }
        }
        Primitive::DynamicSlice { .. } => {
            let starts = window_starts(x.shape(), out_shape, &args[1..]);
            let mut src = Vec::with_capacity(out_shape.iter().product());
            copy_window(x.shape(), out_shape, &starts, |big, _, len| {
                src.extend(big..big + len)
            });
            gather_data(x.data(), &src)
        }
        Primitive::DynamicUpdateSlice => {
            let u = args[1];
            let starts = window_starts(x.shape(), u.shape(), &args[2..]);
            macro_rules! update {
                ($($t:ident),*) => {
                    match (x.data(), u.data()) {
                        $((Data::$t(a), Data::$t(b)) => {
                            let mut out = a.clone();
                            copy_window(x.shape(), u.shape(), &starts, |big, small, len| {
                                out[big..big + len].copy_from_slice(&b[small..small + len])
                            });
                            Data::$t(out)
                        })*
                        _ => unreachable!("the shape rule admits an update of the operand's dtype only"),
                    }
                };
            }
            update!(F32, F64, I32, I64, Bool)
        }
        _ => unreachable!("only indexing primitives come here"),
    }
}

/// The clamped start of the window of `window` in `shape` on each dimension.
fn window_starts(shape: &[usize], window: &[usize], starts: &[&Array]) -> Vec<usize> {
    shape
        .iter()
        .zip(window)
        .zip(starts)
        .map(|((&n, &w), s)| clamp_start(index_values(s)[0], n, w))
        .collect()
}

/// Calls `f(offset in the big array, offset in the window, len)` for each innermost row of
/// the window placed at `starts`, in row-major order.
fn copy_window(
    shape: &[usize],
    window: &[usize],
    starts: &[usize],
    mut f: impl FnMut(usize, usize, usize),
) {
    let r = shape.len();
    if window.contains(&0) {
        return;
    }
    if r == 0 {
        f(0, 0, 1);
        return;
    }
    let (big, small) = (strides(shape), strides(window));
    let len = window[r - 1];
    let rows: usize = window[..r - 1].iter().product();
    let mut at = vec![0; r - 1];
    for _ in 0..rows {
        let mut b = starts[r - 1];
        let mut s = 0;
        for d in 0..r - 1 {
            b += (starts[d] + at[d]) * big[d];
            s += at[d] * small[d];
        }
        f(b, s, len);
        // the next row index, last dimension fastest
        for d in (0..r - 1).rev() {
            at[d] += 1;
            if at[d] < window[d] {
                break;
            }
            at[d] = 0;
        }
    }
}
