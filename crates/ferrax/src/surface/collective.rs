//! Collectives over named axes, as JAX's `lax.psum`, `lax.all_gather`, `lax.ppermute` and
//! the others: functions a mapped function calls to combine the values of all the members
//! of an axis.
//!
//! A map binds an axis name to a number of members (`vmap_axes` with
//! `VmapAxes::axis_name`); while it traces the function it maps, the name is in a
//! thread-local stack of bound axes, which the functions here read to record the axis's
//! size in the primitive. A collective over a name no enclosing map binds is an error naming
//! it. The primitives, their shape rules and transposes are in `ir::collective`; batching
//! gives them their values (`passes::vmap::collective`).

use std::cell::RefCell;

use crate::ir::{Error, Primitive, SourceLoc};
use crate::trace::{bind, fail, Tensor};

thread_local! {
    static AXES: RefCell<Vec<(String, usize)>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` (which traces a mapped function) with `name` bound to an axis of `size`
/// members; an inner binding of the same name hides an outer one.
pub(crate) fn with_axis<R>(name: &str, size: usize, f: impl FnOnce() -> R) -> R {
    AXES.with(|a| a.borrow_mut().push((name.to_string(), size)));
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            AXES.with(|a| a.borrow_mut().pop());
        }
    }
    let _pop = Pop;
    f()
}

/// The number of members of the innermost axis bound to `name`.
fn bound(op: &str, name: &str) -> Result<usize, Error> {
    AXES.with(|a| {
        a.borrow()
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, size)| *size)
    })
    .ok_or_else(|| {
        Error::input(
            op,
            format!(
                "no map binds the axis name `{name}`: call it inside a function mapped with \
                 `vmap_axes(.., &VmapAxes::new().axis_name(\"{name}\"))`"
            ),
        )
    })
}

/// Binds the collective `make(axis_size)` over `name` on `args`.
fn collective(
    op: &str,
    name: &str,
    args: &[&Tensor],
    loc: SourceLoc,
    make: impl FnOnce(String, usize) -> Primitive,
) -> Tensor {
    match bound(op, name) {
        Ok(n) => bind(make(name.to_string(), n), args, loc),
        Err(e) => fail(e.with_loc(loc)),
    }
}

/// The sum of `x` over the members of the axis `axis_name`, on every member (JAX's
/// `lax.psum`). Members are added in member order.
///
/// ```
/// use ferrax::{psum, vmap_axes, Tensor, VmapAxes};
/// let xs = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3]);
/// let sums: Tensor =
///     vmap_axes(|x: Tensor| psum(&x, "i"), &xs, &VmapAxes::new().axis_name("i")).unwrap();
/// assert_eq!(sums.to_vec::<f64>().unwrap(), vec![6.0, 6.0, 6.0]);
/// ```
#[track_caller]
pub fn psum(x: &Tensor, axis_name: &str) -> Tensor {
    let loc = SourceLoc::caller();
    collective("psum", axis_name, &[x], loc, |axis_name, axis_size| {
        Primitive::Psum {
            axis_name,
            axis_size,
        }
    })
}

/// The mean of `x` over the members of `axis_name` (JAX's `lax.pmean`). Float only.
#[track_caller]
pub fn pmean(x: &Tensor, axis_name: &str) -> Tensor {
    let loc = SourceLoc::caller();
    collective("pmean", axis_name, &[x], loc, |axis_name, axis_size| {
        Primitive::Pmean {
            axis_name,
            axis_size,
        }
    })
}

/// The elementwise maximum of `x` over the members of `axis_name` (JAX's `lax.pmax`).
#[track_caller]
pub fn pmax(x: &Tensor, axis_name: &str) -> Tensor {
    let loc = SourceLoc::caller();
    collective("pmax", axis_name, &[x], loc, |axis_name, axis_size| {
        Primitive::Pmax {
            axis_name,
            axis_size,
        }
    })
}

/// The elementwise minimum of `x` over the members of `axis_name` (JAX's `lax.pmin`).
#[track_caller]
pub fn pmin(x: &Tensor, axis_name: &str) -> Tensor {
    let loc = SourceLoc::caller();
    collective("pmin", axis_name, &[x], loc, |axis_name, axis_size| {
        Primitive::Pmin {
            axis_name,
            axis_size,
        }
    })
}

/// The members' `x` stacked in member order along a new dimension `axis`, on every member
/// (JAX's `lax.all_gather` with `tiled=False`).
///
/// ```
/// use ferrax::{all_gather, vmap_axes, Tensor, VmapAxes};
/// let xs = Tensor::from_vec(vec![1.0f64, 2.0], &[2]);
/// let all: Tensor =
///     vmap_axes(|x: Tensor| all_gather(&x, "i", 0), &xs, &VmapAxes::new().axis_name("i"))
///         .unwrap();
/// assert_eq!(all.to_vec::<f64>().unwrap(), vec![1.0, 2.0, 1.0, 2.0]);
/// ```
#[track_caller]
pub fn all_gather(x: &Tensor, axis_name: &str, axis: usize) -> Tensor {
    let loc = SourceLoc::caller();
    collective(
        "all_gather",
        axis_name,
        &[x],
        loc,
        |axis_name, axis_size| Primitive::AllGather {
            axis_name,
            axis_size,
            axis,
        },
    )
}

/// Member `i` gets index `i` along dimension `axis` (one index per member, removed) of the
/// sum of the members' `x` (JAX's `lax.psum_scatter` with `tiled=False`): `all_gather`'s
/// transpose.
#[track_caller]
pub fn psum_scatter(x: &Tensor, axis_name: &str, axis: usize) -> Tensor {
    let loc = SourceLoc::caller();
    collective(
        "psum_scatter",
        axis_name,
        &[x],
        loc,
        |axis_name, axis_size| Primitive::PsumScatter {
            axis_name,
            axis_size,
            axis,
        },
    )
}

/// Sends each member's `x` along the pairs `(source, destination)` of `perm` (JAX's
/// `lax.ppermute`); a member that receives nothing gets zeros.
///
/// ```
/// use ferrax::{ppermute, vmap_axes, Tensor, VmapAxes};
/// let xs = Tensor::from_vec(vec![10.0f64, 20.0, 30.0], &[3]);
/// // a ring: member i sends to member i + 1
/// let shifted: Tensor = vmap_axes(
///     |x: Tensor| ppermute(&x, "i", &[(0, 1), (1, 2), (2, 0)]),
///     &xs,
///     &VmapAxes::new().axis_name("i"),
/// )
/// .unwrap();
/// assert_eq!(shifted.to_vec::<f64>().unwrap(), vec![30.0, 10.0, 20.0]);
/// ```
#[track_caller]
pub fn ppermute(x: &Tensor, axis_name: &str, perm: &[(usize, usize)]) -> Tensor {
    let loc = SourceLoc::caller();
    let (src, dst) = perm.iter().copied().unzip();
    collective("ppermute", axis_name, &[x], loc, |axis_name, axis_size| {
        Primitive::Ppermute {
            axis_name,
            axis_size,
            src,
            dst,
        }
    })
}

/// `x` split along `split_axis` into one block per member; member `j` gets block `j` of
/// every member, joined in member order along `concat_axis` (JAX's `lax.all_to_all`).
#[track_caller]
pub fn all_to_all(x: &Tensor, axis_name: &str, split_axis: usize, concat_axis: usize) -> Tensor {
    let loc = SourceLoc::caller();
    collective(
        "all_to_all",
        axis_name,
        &[x],
        loc,
        |axis_name, axis_size| Primitive::AllToAll {
            axis_name,
            axis_size,
            split_axis,
            concat_axis,
        },
    )
}

/// The member's index along `axis_name`, an i32 scalar (JAX's `lax.axis_index`).
#[track_caller]
pub fn axis_index(axis_name: &str) -> Tensor {
    let loc = SourceLoc::caller();
    collective("axis_index", axis_name, &[], loc, |axis_name, axis_size| {
        Primitive::AxisIndex {
            axis_name,
            axis_size,
        }
    })
}
