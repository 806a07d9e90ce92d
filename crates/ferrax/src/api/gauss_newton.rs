//! Gauss-Newton operators from one linearization (JAX issue #529's use case).
//!
//! Built on `linearize` and `transpose`: for a residual function `r` at `x`, the Jacobian `J`
//! is the linear map of one linearization and `Jᵀ` its transpose, sharing the residuals.
//! A product `Jᵀ J v` then runs the linear program and its transpose only: no primal work,
//! however many products a solver asks for. For a loss `L` of the residuals the generalized
//! product `Jᵀ H_L J v` uses `H_L`, itself a linear map (the linearization of `∇L` at
//! `r(x)`), so it too costs linear work only.

use std::cell::RefCell;
use std::sync::{Arc, OnceLock};

use crate::api::linear_map::{linear_map, linearize, LinearMap};
use crate::api::reverse::grad;
use crate::ir::{Error, Result};
use crate::trace::{fail, flatten, is_tracing, leaf_avals, Tensor, Tree};

/// The bytes the maps must keep alive for a product to run them composed into one map.
const COMPOSE_BYTES: usize = 1 << 20;

/// The Gauss-Newton operator of a residual function at a point.
#[derive(Clone)]
pub struct GaussNewton {
    residual: Tensor,
    j: LinearMap,
    jt: LinearMap,
    /// The loss gradient and Hessian at the residual, for the generalized operator.
    loss: Option<(Tensor, LinearMap)>,
    /// The whole product `v ↦ Jᵀ J v` (or `Jᵀ H_L J v`) as one linear map, made on the first
    /// concrete product (`None` if it could not be: products then run map by map). Shared
    /// by clones.
    normal: Arc<OnceLock<Option<LinearMap>>>,
    /// Whether concrete products run composed (`J` keeps at least `COMPOSE_BYTES` alive).
    compose: bool,
}

/// The Gauss-Newton operator `v ↦ Jᵀ J v` of the residual function `r` at `x` (the
/// Hessian approximation of `½‖r(x)‖²`), from one linearization.
///
/// ```
/// use ferrax::{gauss_newton, Array, Tensor};
/// // r(x) = [x0 * x1, x1]: J = [[x1, x0], [0, 1]]
/// let x = Tensor::new(Array::from_slice(&[2.0f64, 3.0]));
/// let gn = gauss_newton(|x: Tensor| Tensor::concatenate(&[(x.index_axis(0, 0) * x.index_axis(0, 1)).reshape(&[1]), x.slice_axis(0, 1, 2)], 0), &x).unwrap();
/// let v: Tensor = gn.apply(&Tensor::new(Array::from_slice(&[1.0f64, 0.0]))).unwrap();
/// assert_eq!(v.to_vec::<f64>().unwrap(), vec![9.0, 6.0]); // Jᵀ J e0 = [x1², x0 x1]
/// ```
#[track_caller]
pub fn gauss_newton<I: Tree>(r: impl FnOnce(I) -> Tensor, x: &I) -> Result<GaussNewton> {
    let (residual, j) = linearize(r, x)?;
    check_residual(&residual)?;
    let jt = j.transpose()?;
    Ok(GaussNewton {
        residual,
        compose: j.kept_bytes() >= COMPOSE_BYTES,
        j,
        jt,
        loss: None,
        normal: Arc::default(),
    })
}

/// The generalized Gauss-Newton operator `v ↦ Jᵀ H_L J v` for a loss `L` of the residuals
/// (`H_L` its Hessian at `r(x)`), from one linearization of `r` and one of `∇L`.
///
/// ```
/// use ferrax::{gauss_newton_with_loss, Tensor};
/// // r(x) = x (J = I) and L(r) = Σ r⁴/4, whose Hessian is diag(3 r²)
/// let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2]);
/// let loss = |r: Tensor| (&r * &r * &r * &r).sum_all() * 0.25;
/// let gn = gauss_newton_with_loss(|x: Tensor| x, loss, &x).unwrap();
/// let v: Tensor = gn.apply(&Tensor::from_vec(vec![1.0f64, 1.0], &[2])).unwrap();
/// assert_eq!(v.to_vec::<f64>().unwrap(), vec![3.0, 12.0]);
/// let g: Tensor = gn.gradient().unwrap(); // Jᵀ ∇L = r³
/// assert_eq!(g.to_vec::<f64>().unwrap(), vec![1.0, 8.0]);
/// ```
#[track_caller]
pub fn gauss_newton_with_loss<I: Tree>(
    r: impl FnOnce(I) -> Tensor,
    loss: impl Fn(Tensor) -> Tensor,
    x: &I,
) -> Result<GaussNewton> {
    let mut gn = gauss_newton(r, x)?;
    let (g, h) = linearize(
        |r: Tensor| match grad(&loss, &r) {
            Ok(g) => g,
            Err(e) => fail(e),
        },
        &gn.residual,
    )?;
    gn.loss = Some((g, h));
    Ok(gn)
}

fn check_residual(r: &Tensor) -> Result<()> {
    let a = r.aval()?;
    if !a.dtype.is_float() {
        return Err(Error::DType {
            op: "gauss_newton".into(),
            msg: format!("the residual function must return floats, got {a}"),
            loc: None,
        });
    }
    Ok(())
}

impl GaussNewton {
    /// `r(x)`.
    pub fn residual(&self) -> &Tensor {
        &self.residual
    }

    /// The Jacobian `J` of `r` at `x`, as a linear map.
    pub fn jacobian(&self) -> &LinearMap {
        &self.j
    }

    /// Its transpose `Jᵀ` (same residuals).
    pub fn jacobian_transpose(&self) -> &LinearMap {
        &self.jt
    }

    /// `Jᵀ J v`, or `Jᵀ H_L J v` for the generalized operator. Linear work only.
    ///
    /// When the maps keep at least 1 MiB alive, concrete products run their composition as
    /// one linear map, made on the first product: one compiled program, so the residuals
    /// `J` and `Jᵀ` share are read once per product, block of rows by block of rows where
    /// the program allows (ARCHITECTURE.md). Smaller operators, products inside a trace,
    /// and arguments the composed map does not take run the maps one after the other (for
    /// a few kilobytes, making the composition would cost more than it saves).
    #[track_caller]
    pub fn apply<I: Tree>(&self, v: &I) -> Result<I> {
        if !is_tracing() && self.compose && self.takes(v) {
            // made from an argument `J` takes, so a failure says the maps cannot be
            // composed (then they never are), not that this argument was bad
            let normal = self.normal.get_or_init(|| self.composed(v).ok());
            if let Some(Ok(w)) = normal.as_ref().map(|m| m.apply(v)) {
                return Ok(w);
            }
        }
        self.map_by_map(v)
    }

    /// Whether concrete products run the maps composed into one linear map (made by the
    /// first product of an operator whose maps keep at least 1 MiB alive; see
    /// [`GaussNewton::apply`]). A diagnostic.
    pub fn runs_composed(&self) -> bool {
        self.normal.get().is_some_and(Option::is_some)
    }

    /// Whether `v`'s leaves are concrete and have the avals `J` takes.
    fn takes<I: Tree>(&self, v: &I) -> bool {
        let (leaves, _) = flatten(v);
        leaf_avals(&leaves).is_ok_and(|a| a == self.j.in_avals())
    }

    /// The product as one linear map, traced from [`GaussNewton::map_by_map`] at `v`'s
    /// structure.
    fn composed<I: Tree>(&self, v: &I) -> Result<LinearMap> {
        let failure = RefCell::new(None);
        let m = linear_map(
            |v: I| match self.map_by_map(&v) {
                Ok(w) => w,
                Err(e) => {
                    // the closure must return a tree; the error is returned below
                    *failure.borrow_mut() = Some(e);
                    v
                }
            },
            v,
        )?;
        match failure.into_inner() {
            Some(e) => Err(e),
            None => Ok(m),
        }
    }

    /// The product applying `J`, then `H_L`, then `Jᵀ`, each map's own program in turn.
    #[track_caller]
    fn map_by_map<I: Tree>(&self, v: &I) -> Result<I> {
        let jv: Tensor = self.j.apply(v)?;
        let w = match &self.loss {
            Some((_, h)) => h.apply(&jv)?,
            None => jv,
        };
        self.jt.apply(&w)
    }

    /// The gradient of the objective at `x`: `Jᵀ r` for `½‖r‖²`, or `Jᵀ ∇L(r)` for a
    /// loss (`∇L(r)` was computed with the operator).
    pub fn gradient<I: Tree>(&self) -> Result<I> {
        match &self.loss {
            Some((g, _)) => self.jt.apply(g),
            None => self.jt.apply(&self.residual),
        }
    }
}
