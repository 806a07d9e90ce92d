//! Jacobians of tree-valued functions of trees: `jacfwd_tree`, `jacrev_tree`, and the
//! second-order `hessian_tree`, `hvp_tree`.
//!
//! JAX returns the Jacobian of a pytree output with respect to a pytree input as a nested
//! pytree (the output's structure, each leaf holding the input's structure). A Rust type
//! cannot be built from two tree types that way without higher-kinded types, so a
//! [`Jacobian`] holds the two structures and one block per (output leaf, input leaf): block
//! `(i, j)` has shape `out_leaf_i.shape ++ in_leaf_j.shape`, as JAX's leaves do. Forward mode
//! pushes one identity basis per input leaf through one linearization; reverse mode pulls
//! one per output leaf through its transpose; each is one batched linear program.

use crate::api::linear_map::{linearize, LinearMap};
use crate::ir::{Aval, Error, Result};
use crate::trace::{fail, flatten, identity, Tensor, Tree, TreeDef};

/// The Jacobian of a function from trees to trees: a block per (output leaf, input leaf).
#[derive(Clone, Debug)]
pub struct Jacobian {
    /// The output's structure.
    pub out_def: TreeDef,
    /// The input's structure.
    pub in_def: TreeDef,
    /// `blocks[i][j]`: the derivative of output leaf `i` with respect to input leaf `j`,
    /// of shape `out_i.shape ++ in_j.shape`.
    pub blocks: Vec<Vec<Tensor>>,
}

impl Jacobian {
    /// The block of output leaf `i` and input leaf `j` (an error naming both counts when out
    /// of range).
    pub fn block(&self, i: usize, j: usize) -> Result<&Tensor> {
        self.blocks.get(i).and_then(|r| r.get(j)).ok_or_else(|| {
            Error::input(
                "Jacobian::block",
                format!(
                    "({i}, {j}) is outside {} output leaves × {} input leaves",
                    self.blocks.len(),
                    self.blocks.first().map_or(0, Vec::len)
                ),
            )
        })
    }
}

fn avals(leaves: &[Tensor]) -> Result<Vec<Aval>> {
    leaves.iter().map(|t| t.aval()).collect()
}

fn float_leaves(op: &str, avals: &[Aval]) -> Result<()> {
    match avals.iter().position(|a| !a.dtype.is_float()) {
        Some(j) => Err(Error::dtype(
            op,
            format!(
                "differentiates with respect to float leaves only, leaf {j} is {}",
                avals[j]
            ),
        )),
        None => Ok(()),
    }
}

/// A batch of `n` tangents for a tree of `avals`: the identity basis in leaf `j` (its
/// elements, in order), zeros in every other leaf.
fn basis(avals: &[Aval], j: usize, n: usize) -> Result<Vec<Tensor>> {
    avals
        .iter()
        .enumerate()
        .map(|(k, a)| {
            let mut shape = vec![n];
            shape.extend(&a.shape);
            Ok(match k == j {
                true => Tensor::new(identity(n, &shape, a.dtype)?),
                false => Tensor::zeros(&shape, a.dtype),
            })
        })
        .collect()
}

/// A batch of basis images (batch axis first) as a block of shape `front ++ back`: the
/// batch axis stands for the `back` (input) elements in forward mode, for the `front`
/// (output) elements in reverse mode.
fn block(batch: &Tensor, front: &[usize], back: &[usize], batch_is_back: bool) -> Tensor {
    let (n, m) = (
        back.iter().product::<usize>(),
        front.iter().product::<usize>(),
    );
    let flat = match batch_is_back {
        true => batch.reshape(&[n as isize, m as isize]).t(),
        false => batch.reshape(&[m as isize, n as isize]),
    };
    let shape: Vec<isize> = front.iter().chain(back).map(|&d| d as isize).collect();
    flat.reshape(&shape)
}

/// The Jacobian of `f` at `x` by forward mode (see [`Jacobian`]).
///
/// ```
/// use ferrax::{jacfwd_tree, Tensor};
/// let x = (Tensor::scalar(2.0f64), Tensor::from_vec(vec![1.0f64, 3.0], &[2]));
/// let j = jacfwd_tree(|(a, v): (Tensor, Tensor)| (&v * &a, a.sin()), &x).unwrap();
/// // d(v a)/da = v, d(v a)/dv = a I, d(sin a)/da = cos a
/// assert_eq!(j.block(0, 0).unwrap().to_vec::<f64>().unwrap(), vec![1.0, 3.0]);
/// assert_eq!(j.block(0, 1).unwrap().to_vec::<f64>().unwrap(), vec![2.0, 0.0, 0.0, 2.0]);
/// assert_eq!(j.block(1, 0).unwrap().item().unwrap(), 2.0f64.cos());
/// ```
#[track_caller]
pub fn jacfwd_tree<I: Tree, O: Tree>(f: impl FnOnce(I) -> O, x: &I) -> Result<Jacobian> {
    let (x_leaves, _) = flatten(x);
    float_leaves("jacfwd_tree", &avals(&x_leaves)?)?;
    let (_, lin) = linearize(f, x)?;
    jacobian_forward(&lin)
}

/// The Jacobian of `f` at `x` by reverse mode (see [`Jacobian`]): one transposed map,
/// pulled back through an identity basis per output leaf.
#[track_caller]
pub fn jacrev_tree<I: Tree, O: Tree>(f: impl FnOnce(I) -> O, x: &I) -> Result<Jacobian> {
    let (x_leaves, _) = flatten(x);
    float_leaves("jacrev_tree", &avals(&x_leaves)?)?;
    let (_, lin) = linearize(f, x)?;
    jacobian_reverse(&lin)
}

/// The map applied to a batch of flat leaves (batch axis first in each).
fn apply_batch_flat(lin: &LinearMap, batch: Vec<Tensor>) -> Result<Vec<Tensor>> {
    let n_out = lin.out_avals().len();
    crate::api::vmap(
        |t: Vec<Tensor>| match lin.apply_flat(&t) {
            Ok(u) => u,
            // recorded in the vmap's trace, which reports it
            Err(e) => vec![fail(e); n_out],
        },
        &batch,
    )
}

/// The Jacobian of a linear map, one identity basis per input leaf pushed forward.
pub(crate) fn jacobian_forward(lin: &LinearMap) -> Result<Jacobian> {
    let (in_avals, out_avals) = (lin.in_avals(), lin.out_avals());
    let mut blocks = vec![Vec::with_capacity(in_avals.len()); out_avals.len()];
    for (j, a) in in_avals.iter().enumerate() {
        let n = a.size();
        let cols: Vec<Tensor> = match n {
            0 => out_avals.iter().map(empty_batch).collect(),
            _ => apply_batch_flat(lin, basis(in_avals, j, n)?)?,
        };
        for (i, (c, o)) in cols.iter().zip(out_avals).enumerate() {
            let b = block(c, &o.shape, &a.shape, true);
            b.aval()?;
            blocks[i].push(b);
        }
    }
    Ok(Jacobian {
        out_def: lin.out_def().clone(),
        in_def: lin.in_def().clone(),
        blocks,
    })
}

/// The Jacobian of a linear map, one identity basis per output leaf pulled back through its
/// transpose.
pub(crate) fn jacobian_reverse(lin: &LinearMap) -> Result<Jacobian> {
    let (in_avals, out_avals) = (lin.in_avals(), lin.out_avals());
    float_leaves("jacrev (its outputs)", out_avals)?;
    let back = lin.transpose()?;
    let mut blocks = Vec::with_capacity(out_avals.len());
    for (i, o) in out_avals.iter().enumerate() {
        let m = o.size();
        let rows: Vec<Tensor> = match m {
            0 => in_avals.iter().map(empty_batch).collect(),
            _ => apply_batch_flat(&back, basis(out_avals, i, m)?)?,
        };
        let row = rows
            .iter()
            .zip(in_avals)
            .map(|(r, a)| {
                let b = block(r, &o.shape, &a.shape, false);
                b.aval()?;
                Ok(b)
            })
            .collect::<Result<Vec<_>>>()?;
        blocks.push(row);
    }
    Ok(Jacobian {
        out_def: lin.out_def().clone(),
        in_def: lin.in_def().clone(),
        blocks,
    })
}

/// An empty batch of values of aval `a` (a leaf with no elements has no basis).
fn empty_batch(a: &Aval) -> Tensor {
    let mut s = vec![0];
    s.extend(&a.shape);
    Tensor::zeros(&s, a.dtype)
}

/// The Hessian of a scalar function of a tree (forward over reverse: `jacfwd_tree` of the
/// gradient): block `(i, j)` is `∂²f / ∂x_i ∂x_j`, of shape `x_i.shape ++ x_j.shape`.
///
/// ```
/// use ferrax::{hessian_tree, Tensor};
/// let x = (Tensor::scalar(1.0f64), Tensor::scalar(2.0f64));
/// let h = hessian_tree(|(a, b): (Tensor, Tensor)| &a * &a * &b, &x).unwrap();
/// // f = a² b: f_aa = 2b, f_ab = 2a, f_bb = 0
/// assert_eq!(h.block(0, 0).unwrap().item().unwrap(), 4.0);
/// assert_eq!(h.block(0, 1).unwrap().item().unwrap(), 2.0);
/// assert_eq!(h.block(1, 1).unwrap().item().unwrap(), 0.0);
/// ```
#[track_caller]
pub fn hessian_tree<I: Tree>(f: impl Fn(I) -> Tensor, x: &I) -> Result<Jacobian> {
    let g = crate::api::functions::grad_fn(f);
    jacfwd_tree(g, x)
}

/// A Hessian-vector product of a scalar function of a tree, the vector a tree like `x`
/// (forward over reverse: the jvp of the gradient).
#[track_caller]
pub fn hvp_tree<I: Tree>(f: impl Fn(I) -> Tensor, x: &I, v: &I) -> Result<I> {
    let g = crate::api::functions::grad_fn(f);
    Ok(crate::api::forward::jvp(g, x, v)?.1)
}
