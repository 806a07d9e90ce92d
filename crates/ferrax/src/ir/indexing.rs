//! Indexing by values known only at run time: what `gather`, `scatter_add`, `scatter`,
//! `dynamic_slice` and `dynamic_update_slice` mean, and their shape rules.
//!
//! Part of the IR: the primitives' parameters ([`IndexMode`], [`ScatterCombine`]), the one
//! definition of how an index or a start is resolved (shared by every evaluator, so the
//! reference and the compiled plans agree), and the avals. The rules of the passes build on
//! two facts kept here: with the same indices and mode, `gather` and `scatter_add` are each
//! other's transposes, and so are `dynamic_slice` and `dynamic_update_slice` into zeros.
//!
//! **One indexed axis.** `gather[axis batch mode](x, idx)` picks, along `axis` of `x`, the
//! element at each index of `idx`; the first `batch` dimensions of `x` and `idx` are shared
//! (example `b` of `x` is indexed by example `b` of `idx`). Output shape:
//! `x.shape[..axis] ++ idx.shape[batch..] ++ x.shape[axis+1..]`. That covers `take`,
//! `take_along_axis` (every other axis shared), embedding lookups and batched gathers (which
//! is what vmap needs); several index arrays over adjacent axes are one index into their
//! flattening. XLA's general gather (windows of several axes at once) is not needed for those.

use crate::ir::aval::Aval;
use crate::ir::dtype::DType;
use crate::ir::error::{Error, Result};

/// What an index outside `0..n` means (negative indices included: the surface wraps them
/// once, numpy style, before they reach a primitive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IndexMode {
    /// Clamped into range (JAX's retrieval default): `gather` reads the nearest end and
    /// `scatter` writes there. On an empty axis nothing is in range: as `Fill`.
    Clip,
    /// Out of range reads zero (`gather`) and is dropped (`scatter`): JAX's `mode="drop"`
    /// for updates, with a zero fill for reads so that the two stay each other's transposes.
    Fill,
}

impl IndexMode {
    /// The position an index selects on an axis of length `n`, or `None` for none.
    #[inline]
    pub fn resolve(self, i: i64, n: usize) -> Option<usize> {
        if n == 0 {
            return None;
        }
        match self {
            IndexMode::Clip => Some(i.clamp(0, n as i64 - 1) as usize),
            IndexMode::Fill => (i >= 0 && (i as u64) < n as u64).then_some(i as usize),
        }
    }

    /// The name used in program text (`clip`, `fill`).
    pub fn name(self) -> &'static str {
        match self {
            IndexMode::Clip => "clip",
            IndexMode::Fill => "fill",
        }
    }
}

/// How `scatter` combines an update with the value already there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScatterCombine {
    /// The update replaces it; of several updates to one place, the last in row-major order
    /// of the updates wins (JAX leaves the winner unspecified; ours is deterministic).
    Set,
    /// Multiplied in.
    Mul,
    /// The smaller (NaN-propagating, as `min`).
    Min,
    /// The larger (NaN-propagating, as `max`).
    Max,
}

impl ScatterCombine {
    /// The name used in program text (`set`, `mul`, `min`, `max`).
    pub fn name(self) -> &'static str {
        match self {
            ScatterCombine::Set => "set",
            ScatterCombine::Mul => "mul",
            ScatterCombine::Min => "min",
            ScatterCombine::Max => "max",
        }
    }
}

/// A dynamic slice's start on an axis of length `n` for a window of `size`: clamped so the
/// window fits, as JAX (and XLA) do.
#[inline]
pub fn clamp_start(start: i64, n: usize, size: usize) -> usize {
    start.clamp(0, (n - size) as i64) as usize
}

fn require_index(op: &str, a: &Aval, what: &str) -> Result<()> {
    if matches!(a.dtype, DType::I32 | DType::I64) {
        Ok(())
    } else {
        Err(Error::dtype(
            op,
            format!("{what} must be i32 or i64, got {a}"),
        ))
    }
}

/// The aval `gather[axis batch]` gives for `x` and `idx` (also the aval of a scatter's
/// updates).
pub(crate) fn gather_aval(
    op: &str,
    x: &Aval,
    idx: &Aval,
    axis: usize,
    batch: usize,
) -> Result<Aval> {
    require_index(op, idx, "indices")?;
    if axis >= x.ndim() {
        return Err(Error::axis(
            op,
            format!("axis {axis} is out of range for the operand {x}"),
        ));
    }
    if batch > axis || batch > idx.ndim() {
        return Err(Error::axis(
            op,
            format!(
                "batch {batch}: the shared leading dimensions must come before axis {axis} and exist in the indices {idx}"
            ),
        ));
    }
    if x.shape[..batch] != idx.shape[..batch] {
        return Err(Error::shape(
            op,
            format!("the {batch} shared leading dimension(s) differ: operand {x}, indices {idx}"),
        ));
    }
    let mut shape = x.shape[..axis].to_vec();
    shape.extend_from_slice(&idx.shape[batch..]);
    shape.extend_from_slice(&x.shape[axis + 1..]);
    Ok(Aval::new(shape, x.dtype))
}

/// The aval of `scatter_add`/`scatter` (the operand's), after checking the updates.
pub(crate) fn scatter_aval(
    op: &str,
    args: &[&Aval],
    axis: usize,
    batch: usize,
    numeric: bool,
) -> Result<Aval> {
    let (x, idx, u) = (args[0], args[1], args[2]);
    if numeric && !x.dtype.is_numeric() {
        return Err(Error::dtype(
            op,
            format!("operand must be numeric, got {x}"),
        ));
    }
    let want = gather_aval(op, x, idx, axis, batch)?;
    if *u != want {
        return Err(Error::shape(
            op,
            format!("updates must be {want} for operand {x} and indices {idx}, got {u}"),
        ));
    }
    Ok(x.clone())
}

/// The start operands of a dynamic slice: one integer scalar per dimension of `x`.
fn check_starts(op: &str, x: &Aval, starts: &[&Aval]) -> Result<()> {
    if starts.len() != x.ndim() {
        return Err(Error::shape(
            op,
            format!(
                "needs one start index per dimension of {x}, got {}",
                starts.len()
            ),
        ));
    }
    for (d, s) in starts.iter().enumerate() {
        if s.ndim() != 0 {
            return Err(Error::shape(
                op,
                format!("start index {d} must be a scalar, got {s}"),
            ));
        }
        require_index(op, s, &format!("start index {d}"))?;
    }
    Ok(())
}

/// The aval of `dynamic_slice[sizes](x, starts...)`.
pub(crate) fn dynamic_slice_aval(op: &str, args: &[&Aval], sizes: &[usize]) -> Result<Aval> {
    let x = args[0];
    check_starts(op, x, &args[1..])?;
    if sizes.len() != x.ndim() || sizes.iter().zip(&x.shape).any(|(s, n)| s > n) {
        return Err(Error::shape(
            op,
            format!("sizes {sizes:?} must give one size per dimension of {x}, none larger than it"),
        ));
    }
    Ok(Aval::new(sizes.to_vec(), x.dtype))
}

/// The aval of `dynamic_update_slice(x, update, starts...)`.
pub(crate) fn dynamic_update_slice_aval(op: &str, args: &[&Aval]) -> Result<Aval> {
    if args.len() < 2 {
        return Err(Error::shape(
            op,
            format!(
                "takes an operand, an update and start indices, got {} operand(s)",
                args.len()
            ),
        ));
    }
    let (x, u) = (args[0], args[1]);
    if u.dtype != x.dtype
        || u.ndim() != x.ndim()
        || u.shape.iter().zip(&x.shape).any(|(a, b)| a > b)
    {
        return Err(Error::shape(
            op,
            format!("the update must have the operand's dtype and rank and fit inside it: operand {x}, update {u}"),
        ));
    }
    check_starts(op, x, &args[2..])?;
    Ok(x.clone())
}
