//! Collectives over a named axis: what `psum`, `all_gather`, `ppermute` and the others are.
//!
//! Part of the IR, beside the primitive table. A collective names an axis and its number of
//! members, fixed when it is traced: inside a map that binds the name (`vmap` with an axis
//! name), every member runs the same program, and a collective combines the members'
//! values (a sum, a gather, a permutation). This module has their shape rules, the
//! parameters every rule reads ([`Primitive::collective_axis`]) and the primitive each one
//! transposes to. Its semantics, member by member, is the lockstep evaluation a map gives
//! it; on its own (outside any map binding the name) a collective has no value, and
//! evaluating it is an error.
//!
//! Transposes are those of the linear map on all members' values at once, every member's
//! output counted: `psum` ↔ `psum` (the map `x ↦ (Σ_j x_j)_i` is symmetric), `pmean` ↔
//! `pmean`, `all_gather` ↔ `psum_scatter`, `ppermute` ↔ the inverse permutation,
//! `all_to_all(split, concat)` ↔ `all_to_all(concat, split)`.

use crate::ir::aval::Aval;
use crate::ir::dtype::DType;
use crate::ir::error::{Error, Result};
use crate::ir::primitive::Primitive;

impl Primitive {
    /// The named axis a collective runs over and its number of members (`None` for every
    /// other primitive).
    pub fn collective_axis(&self) -> Option<(&str, usize)> {
        use Primitive::*;
        match self {
            Psum {
                axis_name,
                axis_size,
            }
            | Pmean {
                axis_name,
                axis_size,
            }
            | Pmax {
                axis_name,
                axis_size,
            }
            | Pmin {
                axis_name,
                axis_size,
            }
            | AllGather {
                axis_name,
                axis_size,
                ..
            }
            | PsumScatter {
                axis_name,
                axis_size,
                ..
            }
            | Ppermute {
                axis_name,
                axis_size,
                ..
            }
            | AllToAll {
                axis_name,
                axis_size,
                ..
            }
            | AxisIndex {
                axis_name,
                axis_size,
            } => Some((axis_name, *axis_size)),
            _ => None,
        }
    }

    /// The collective that transposes a linear one (`None` for `pmax`, `pmin`,
    /// `axis_index` and every other primitive).
    pub(crate) fn collective_transpose(&self) -> Option<Primitive> {
        use Primitive::*;
        Some(match self {
            Psum { .. } | Pmean { .. } => self.clone(),
            AllGather {
                axis_name,
                axis_size,
                axis,
            } => PsumScatter {
                axis_name: axis_name.clone(),
                axis_size: *axis_size,
                axis: *axis,
            },
            PsumScatter {
                axis_name,
                axis_size,
                axis,
            } => AllGather {
                axis_name: axis_name.clone(),
                axis_size: *axis_size,
                axis: *axis,
            },
            Ppermute {
                axis_name,
                axis_size,
                src,
                dst,
            } => Ppermute {
                axis_name: axis_name.clone(),
                axis_size: *axis_size,
                src: dst.clone(),
                dst: src.clone(),
            },
            AllToAll {
                axis_name,
                axis_size,
                split_axis,
                concat_axis,
            } => AllToAll {
                axis_name: axis_name.clone(),
                axis_size: *axis_size,
                split_axis: *concat_axis,
                concat_axis: *split_axis,
            },
            _ => return None,
        })
    }
}

/// The shape rule of a collective (`args` checked for the arity already).
pub(crate) fn collective_aval(prim: &Primitive, args: &[&Aval]) -> Result<Aval> {
    use Primitive::*;
    let op = prim.name();
    let Some((name, n)) = prim.collective_axis() else {
        return Err(Error::internal(format!("`{op}` is not a collective")));
    };
    if !is_axis_name(name) {
        return Err(bad_axis_name(op, name));
    }
    if n == 0 {
        return Err(Error::shape(
            op,
            format!("the axis `{name}` has no members (axis_size 0)"),
        ));
    }
    let axis_in = |axis: usize, x: &Aval, what: &str| -> Result<()> {
        if axis < x.ndim() {
            Ok(())
        } else {
            Err(Error::shape(
                op,
                format!("{what} {axis} is out of range for the operand {x}"),
            ))
        }
    };
    match prim {
        AxisIndex { .. } => Ok(Aval::new(vec![], DType::I32)),
        // their dtypes are checked by the caller (`shape_rules`)
        Psum { .. } | Pmax { .. } | Pmin { .. } | Pmean { .. } => Ok(args[0].clone()),
        AllGather { axis, .. } => {
            let x = args[0];
            if *axis > x.ndim() {
                return Err(Error::shape(
                    op,
                    format!("axis {axis} is out of range for a new dimension of {x}"),
                ));
            }
            let mut shape = x.shape.clone();
            shape.insert(*axis, n);
            Ok(Aval::new(shape, x.dtype))
        }
        PsumScatter { axis, .. } => {
            let x = args[0];
            axis_in(*axis, x, "axis")?;
            if x.shape[*axis] != n {
                return Err(Error::shape(
                    op,
                    format!(
                        "dimension {axis} of {x} must have the axis `{name}`'s size {n}, one \
                         index per member"
                    ),
                ));
            }
            let mut shape = x.shape.clone();
            shape.remove(*axis);
            Ok(Aval::new(shape, x.dtype))
        }
        Ppermute { src, dst, .. } => {
            if src.len() != dst.len() {
                return Err(Error::shape(
                    op,
                    format!(
                        "{} source(s) for {} destination(s): give one pair per message",
                        src.len(),
                        dst.len()
                    ),
                ));
            }
            for (what, members) in [("source", src), ("destination", dst)] {
                // by the members named (an axis may be far larger than the list)
                let mut seen = std::collections::HashSet::new();
                for &m in members.iter() {
                    if m >= n {
                        return Err(Error::shape(
                            op,
                            format!("{what} {m} is not a member of the axis `{name}` of size {n}"),
                        ));
                    }
                    if !seen.insert(m) {
                        return Err(Error::shape(
                            op,
                            format!("member {m} appears twice as a {what}"),
                        ));
                    }
                }
            }
            Ok(args[0].clone())
        }
        AllToAll {
            split_axis,
            concat_axis,
            ..
        } => {
            let x = args[0];
            axis_in(*split_axis, x, "split_axis")?;
            axis_in(*concat_axis, x, "concat_axis")?;
            if !x.shape[*split_axis].is_multiple_of(n) {
                return Err(Error::shape(
                    op,
                    format!(
                        "dimension {split_axis} of {x} does not split into {n} equal blocks \
                         (the axis `{name}`'s size)"
                    ),
                ));
            }
            let mut shape = x.shape.clone();
            shape[*split_axis] /= n;
            shape[*concat_axis] = shape[*concat_axis].checked_mul(n).ok_or_else(|| {
                Error::shape(
                    op,
                    format!("the result's dimension {concat_axis} overflows"),
                )
            })?;
            Ok(Aval::new(shape, x.dtype))
        }
        _ => Err(Error::internal(format!("`{op}` is not a collective"))),
    }
}

/// How `all_to_all` over `n` members rearranges the members' values stacked along a leading
/// dimension (each member's shape `member`): reshape to `.0` (the split dimension cut into
/// the receiving member and the block), transpose by `.1`, reshape to `.2` (the results
/// stacked the same way: member `j` gets block `j` of every member `i`, joined in member
/// order along `concat`). One plan for the batching rule and the evaluation of a map, so
/// both move the same elements.
pub(crate) fn all_to_all_plan(
    member: &[usize],
    split: usize,
    concat: usize,
    n: usize,
) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
    let blk = member[split] / n;
    // [i, member's shape with `split` cut into (j, blk)]
    let mut cut = vec![n];
    for (d, &len) in member.iter().enumerate() {
        if d == split {
            cut.extend([n, blk]);
        } else {
            cut.push(len);
        }
    }
    // where each of a result's dimensions sits in `cut`: j first, then the member's
    // dimensions (blk at `split`) with i placed just before `concat`
    let mut perm = vec![split + 1];
    for d in 0..member.len() {
        if d == concat {
            perm.push(0);
        }
        perm.push(if d < split { d + 1 } else { d + 2 });
    }
    let mut out = vec![n];
    for (d, &len) in member.iter().enumerate() {
        let len = if d == split { blk } else { len };
        out.push(if d == concat { n * len } else { len });
    }
    (cut, perm, out)
}

/// Whether `s` can name an axis: an identifier (letters, digits and `_`, not starting with
/// a digit) that program text reads back as a name (not a dtype, `true` or `false`).
pub(crate) fn is_axis_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && DType::from_name(s).is_none()
        && s != "true"
        && s != "false"
}

/// The error for a string that cannot name an axis.
pub(crate) fn bad_axis_name(op: &str, name: &str) -> Error {
    Error::input(
        op,
        format!(
            "`{name}` cannot name an axis: a name is letters, digits and `_`, not starting with \
             a digit, and not a dtype, `true` or `false`"
        ),
    )
}

/// The error of evaluating a collective where no map binds its axis name.
pub(crate) fn unbound(prim: &Primitive) -> Error {
    let name = prim.collective_axis().map_or("", |(n, _)| n);
    Error::input(
        prim.name(),
        format!(
            "no map binds the axis name `{name}` here: a collective runs inside a map over \
             that axis (`vmap_axes` with `VmapAxes::axis_name(\"{name}\")`, or `named_map`)"
        ),
    )
}
