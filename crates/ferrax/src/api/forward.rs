//! Forward mode for users: `jvp` and `jacfwd`.
//!
//! Built on the jvp pass (`passes::jvp`): the function is traced, its program run through the
//! jvp interpreter on the given primals and tangents; `jacfwd` linearizes once and applies
//! the linear map to the whole identity basis at once (vmap).

use crate::api::linear_map::linearize;
use crate::ir::{Error, Result, SourceLoc};
use crate::passes::jvp_call;
use crate::trace::{
    flatten, identity, leaf_avals, materialize, trace_tree, unflatten, Tensor, Tree,
};

/// Checks that a tangent tree matches the primal tree (structure, shapes and dtypes).
pub(crate) fn check_tangents(op: &str, primals: &[Tensor], tangents: &[Tensor]) -> Result<()> {
    if primals.len() != tangents.len() {
        return Err(Error::input(
            op,
            format!(
                "{} primal leaves but {} tangent leaves",
                primals.len(),
                tangents.len()
            ),
        ));
    }
    for (i, (p, t)) in primals.iter().zip(tangents).enumerate() {
        let (pa, ta) = (p.aval()?, t.aval()?);
        if pa != ta {
            return Err(Error::input(
                op,
                format!("tangent {i} is {ta} but its primal is {pa}: they must match"),
            ));
        }
    }
    Ok(())
}

/// Forward-mode derivative: `f(primals)` and the directional derivative of `f` at
/// `primals` along `tangents` (a tree of the same structure, shapes and dtypes).
///
/// Tangents of integer and boolean inputs are ignored (they are zero); tangents of integer
/// and boolean outputs are zeros. Works eagerly and inside other transformations.
///
/// ```
/// use ferrax::{jvp, Tensor};
/// let f = |x: Tensor| 3.0 * x.sin() + (&x / 2.0).cos();
/// let (y, dy) = jvp(f, &Tensor::scalar(2.0f64), &Tensor::scalar(1.0f64)).unwrap();
/// let want = 3.0 * 2f64.cos() - 0.5 * 1f64.sin();
/// assert!((dy.item().unwrap() - want).abs() < 1e-15);
/// ```
#[track_caller]
pub fn jvp<I: Tree, O: Tree>(f: impl FnOnce(I) -> O, primals: &I, tangents: &I) -> Result<(O, O)> {
    let loc = SourceLoc::caller();
    jvp_at(f, primals, tangents).map_err(|e| e.with_loc(loc))
}

fn jvp_at<I: Tree, O: Tree>(f: impl FnOnce(I) -> O, primals: &I, tangents: &I) -> Result<(O, O)> {
    let (pleaves, def) = flatten(primals);
    let (tleaves, tdef) = flatten(tangents);
    if def != tdef {
        return Err(Error::tree(
            "jvp",
            format!("tangents have structure {tdef:?} but primals have {def:?}"),
        ));
    }
    check_tangents("jvp", &pleaves, &tleaves)?;
    let avals = leaf_avals(&pleaves)?;
    let traced = trace_tree(f, &def, &avals)?;
    let n_captured = traced.captured.len();
    let mut primals_all = pleaves;
    primals_all.extend(traced.captured);
    // Captured values are constants for this transformation: zero tangents.
    let mut tangents_all: Vec<Option<Tensor>> = tleaves.into_iter().map(Some).collect();
    tangents_all.extend(std::iter::repeat_n(None, n_captured));
    let (outs, touts) = jvp_call(&traced.program, &primals_all, &tangents_all)?;
    let touts = materialize(touts, &traced.program.out_avals());
    Ok((
        unflatten(&traced.out_def, outs)?,
        unflatten(&traced.out_def, touts)?,
    ))
}

/// The Jacobian of `f` at `x` by forward mode: shape `out.shape ++ x.shape`. One
/// linearization, then the linear map applied to the whole identity basis at once (vmap:
/// one batched linear program, matrix-matrix work).
///
/// ```
/// use ferrax::{jacfwd, Array, Tensor};
/// let x = Tensor::new(Array::from_slice(&[1.0f64, 2.0]));
/// let j = jacfwd(|x: Tensor| &x * &x, &x).unwrap();
/// assert_eq!(j.to_vec::<f64>().unwrap(), vec![2.0, 0.0, 0.0, 4.0]);
/// ```
#[track_caller]
pub fn jacfwd(f: impl FnOnce(Tensor) -> Tensor, x: &Tensor) -> Result<Tensor> {
    let xa = x.aval()?;
    if !xa.dtype.is_float() {
        return Err(Error::DType {
            op: "jacfwd".into(),
            msg: format!("differentiates with respect to float inputs only, got {xa}"),
            loc: Some(SourceLoc::caller()),
        });
    }
    let (y, lin) = linearize(f, x)?;
    let ya = y.aval()?;
    let n = xa.size();
    // The basis: n tangents stacked along axis 0.
    let mut shape = vec![n];
    shape.extend(&xa.shape);
    let basis = Tensor::new(identity(n, &shape, xa.dtype)?);
    let cols: Tensor = if n == 0 {
        Tensor::zeros(&[ya.size(), 0], ya.dtype)
    } else {
        let c: Tensor = lin.apply_batch(&basis)?; // [n, ...y.shape]
        c.reshape(&[n as isize, ya.size() as isize]).t()
    };
    let mut out: Vec<isize> = ya.shape.iter().map(|&d| d as isize).collect();
    out.extend(xa.shape.iter().map(|&d| d as isize));
    let jac = cols.reshape(&out);
    jac.aval()?;
    Ok(jac)
}
