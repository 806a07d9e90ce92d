//! Vectorization for users: `vmap` and `vmap_axes` with per-leaf in/out axes.
//!
//! `vmap(f, x)` traces `f` on one example (the mapped axes removed), then runs the batching
//! interpreter (`passes::vmap`) on the real, batched arguments: eagerly, or into an
//! enclosing trace, so vmap composes with every other transformation in either order.

use crate::ir::collective::{bad_axis_name, is_axis_name};
use crate::ir::{Aval, Error, Result, SourceLoc};
use crate::passes::vmap::collective::batching;
use crate::passes::{batch_call, norm_axis, place_output};
use crate::surface::collective::with_axis;
use crate::trace::{flatten, leaf_avals, trace_tree, unflatten, Emit, Tree};

/// The mapped axes of a vmap and its size, where they cannot be inferred.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VmapAxes {
    /// One entry per input leaf (or a single entry for all): the mapped axis (negative
    /// counts from the end), or `None` for a leaf that is not mapped. Empty means axis 0
    /// for every leaf.
    pub in_axes: Vec<Option<isize>>,
    /// One entry per output leaf (or a single entry for all): where the mapped axis goes, or
    /// `None` for an output that does not vary along it. Empty means axis 0 for every leaf.
    pub out_axes: Vec<Option<isize>>,
    /// The length of the mapped axis, needed when no input is mapped.
    pub axis_size: Option<usize>,
    /// A name for the mapped axis: collectives over it (`psum(x, name)`, `all_gather`,
    /// ...) inside the mapped function combine the values of all its members, as JAX's
    /// `vmap(.., axis_name=...)`.
    pub axis_name: Option<String>,
}

impl VmapAxes {
    /// The default: axis 0 of every input and output leaf, size inferred, no axis name.
    pub fn new() -> VmapAxes {
        VmapAxes::default()
    }
    /// Sets the mapped axis of each input leaf (one entry per leaf, or one for all).
    pub fn in_axes(mut self, axes: &[Option<isize>]) -> VmapAxes {
        self.in_axes = axes.to_vec();
        self
    }
    /// Sets where the mapped axis goes in each output leaf (one entry per leaf, or one for all).
    pub fn out_axes(mut self, axes: &[Option<isize>]) -> VmapAxes {
        self.out_axes = axes.to_vec();
        self
    }
    /// Sets the length of the mapped axis.
    pub fn axis_size(mut self, n: usize) -> VmapAxes {
        self.axis_size = Some(n);
        self
    }
    /// Names the mapped axis, for collectives over it inside the mapped function.
    pub fn axis_name(mut self, name: &str) -> VmapAxes {
        self.axis_name = Some(name.to_string());
        self
    }
}

fn per_leaf(op: &str, what: &str, axes: &[Option<isize>], n: usize) -> Result<Vec<Option<isize>>> {
    match axes.len() {
        0 => Ok(vec![Some(0); n]),
        1 => Ok(vec![axes[0]; n]),
        k if k == n => Ok(axes.to_vec()),
        k => Err(Error::input(
            op,
            format!("{k} {what} given for {n} leaves: give one per leaf, or one for all"),
        )),
    }
}

/// Maps `f` over axis 0 of every leaf of `x`, stacking every output along axis 0.
///
/// ```
/// use ferrax::{vmap, Array, Tensor};
/// let xs = Tensor::new(Array::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap());
/// let sums: Tensor = vmap(|x: Tensor| x.sum_all(), &xs).unwrap();
/// assert_eq!(sums.to_vec::<f64>().unwrap(), vec![3.0, 7.0]);
/// ```
#[track_caller]
pub fn vmap<I: Tree, O: Tree>(f: impl FnOnce(I) -> O, x: &I) -> Result<O> {
    vmap_axes(f, x, &VmapAxes::new())
}

/// Maps `f` over the given axes (see [`VmapAxes`]): the same as applying `f` to each slice
/// and stacking, computed as one batched computation.
///
/// ```
/// use ferrax::{vmap_axes, Array, Tensor, VmapAxes};
/// let w = Tensor::new(Array::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap());
/// let xs = Tensor::new(Array::from_vec(vec![1.0f64, 0.0, 1.0, 0.0, 1.0, 1.0], &[2, 3]).unwrap());
/// // columns of xs ([1,0], [0,1], [1,1]) mapped, w shared; results stacked along axis 1
/// let ys: Tensor = vmap_axes(|(w, x): (Tensor, Tensor)| w.matmul(&x), &(w, xs),
///     &VmapAxes::new().in_axes(&[None, Some(1)]).out_axes(&[Some(1)])).unwrap();
/// assert_eq!(ys.to_vec::<f64>().unwrap(), vec![1.0, 2.0, 3.0, 3.0, 4.0, 7.0]);
/// ```
#[track_caller]
pub fn vmap_axes<I: Tree, O: Tree>(f: impl FnOnce(I) -> O, x: &I, axes: &VmapAxes) -> Result<O> {
    let loc = SourceLoc::caller();
    vmap_at(f, x, axes, loc).map_err(|e| e.with_loc(loc))
}

fn vmap_at<I: Tree, O: Tree>(
    f: impl FnOnce(I) -> O,
    x: &I,
    axes: &VmapAxes,
    loc: SourceLoc,
) -> Result<O> {
    let op = "vmap";
    let (leaves, def) = flatten(x);
    let avals = leaf_avals(&leaves)?;
    let in_axes = per_leaf(op, "in_axes", &axes.in_axes, leaves.len())?;
    let mut dims = Vec::with_capacity(leaves.len());
    let mut size: Option<(usize, String)> =
        axes.axis_size.map(|n| (n, format!("axis_size is {n}")));
    let mut example = Vec::with_capacity(leaves.len());
    for (i, (a, ax)) in avals.iter().zip(&in_axes).enumerate() {
        match ax {
            None => {
                dims.push(None);
                example.push(a.clone());
            }
            Some(ax) => {
                let d = norm_axis(op, *ax, a.ndim(), format!("in_axes of input {i} ({a})"))?;
                let n = a.shape[d];
                match &size {
                    Some((m, from)) if *m != n => {
                        return Err(Error::Shape {
                            op: op.into(),
                            msg: format!(
                                "inconsistent sizes for the mapped axis: {from}, but input {i} ({a}) has size {n} along axis {d}"
                            ),
                            loc: Some(loc),
                        })
                    }
                    Some(_) => {}
                    None => size = Some((n, format!("input {i} ({a}) has size {n} along axis {d}"))),
                }
                let mut shape = a.shape.clone();
                shape.remove(d);
                example.push(Aval::new(shape, a.dtype));
                dims.push(Some(d));
            }
        }
    }
    let Some((size, _)) = size else {
        return Err(Error::input(
            op,
            "no input is mapped: give the axis size with VmapAxes::axis_size",
        ));
    };
    // the name is bound while `f` is traced (collectives read its size) and while the
    // program is batched (collectives over it become operations across the members)
    let name = axes.axis_name.as_deref();
    if let Some(n) = name.filter(|n| !is_axis_name(n)) {
        return Err(bad_axis_name(op, n));
    }
    let traced = match name {
        Some(n) => with_axis(n, size, || trace_tree(f, &def, &example))?,
        None => trace_tree(f, &def, &example)?,
    };
    let n_captured = traced.captured.len();
    let mut args = leaves;
    args.extend(traced.captured);
    dims.extend(std::iter::repeat_n(None, n_captured));
    let (outs, out_dims) = batching(name, || batch_call(&traced.program, &args, &dims, size))?;
    let out_axes = per_leaf(op, "out_axes", &axes.out_axes, outs.len())?;
    let e = Emit { loc: Some(loc) };
    let mut results = Vec::with_capacity(outs.len());
    for (k, ((t, d), ax)) in outs.iter().zip(&out_dims).zip(&out_axes).enumerate() {
        results.push(place_output(&e, k, t, *d, *ax, size)?);
    }
    unflatten(&traced.out_def, results)
}
