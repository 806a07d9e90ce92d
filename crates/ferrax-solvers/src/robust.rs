//! Robust losses and bounds for [`least_squares`](crate::least_squares()): both are
//! rewritings of the problem, so the two methods (dense Levenberg-Marquardt and matrix-free
//! Gauss-Newton-CG) solve them unchanged.
//!
//! **Losses.** With `z = (r/C)²` for a residual `r` and scale `C`, the objective is
//! `½ Σ C² ρ(z)` (SciPy's convention: `ρ(z) = z` is least squares). It is minimized as the
//! least squares of the *rescaled residuals* `r̃ = r · sqrt(ρ(z)/z)` (so `½ Σ r̃² = ½ Σ C² ρ(z)`
//! exactly), whose Jacobian ferrax differentiates like any other. Why not the generalized
//! Gauss-Newton operator `Jᵀ H_ρ J` of `gauss_newton_with_loss`: beyond its threshold the
//! Cauchy and arctan losses have `ρ'' < 0`, so that operator is indefinite and the dense
//! method's model breaks; the Gauss-Newton model of `r̃` is positive semi-definite for every
//! loss and has the same minimizer. Near `r = 0`, `sqrt(ρ(z)/z) → 1`; the formula is taken
//! on a safe `z` there so that neither its value nor its derivative is NaN.
//!
//! **Bounds** (`lo ≤ xᵢ ≤ hi`, either side infinite) by a change of variables, as MINUIT
//! and lmfit do: `x = lo + (hi − lo)(sin u + 1)/2` between two bounds, `x = lo − 1 +
//! sqrt(u² + 1)` above a lower one, `x = hi + 1 − sqrt(u² + 1)` below an upper one. The solve
//! runs over the unbounded `u`; standard errors are those of `x` at the solution (the
//! Jacobian with respect to `x`, as lmfit reports them), and are meaningful when the solution
//! is inside the bounds, not on one.

use ferrax::{where_, Tensor};

use crate::error::{input, Result};

/// A robust loss `ρ` and its scale `C` (residuals much smaller than `C` count as in least
/// squares; larger ones count less).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Loss {
    /// `ρ(z) = z`: least squares.
    #[default]
    Linear,
    /// `ρ(z) = 2(sqrt(1 + z) − 1)`: a smooth L1.
    SoftL1(f64),
    /// `ρ(z) = z` for `z ≤ 1`, `2 sqrt(z) − 1` beyond: quadratic, then linear.
    Huber(f64),
    /// `ρ(z) = ln(1 + z)`: outliers count very little.
    Cauchy(f64),
    /// `ρ(z) = arctan(z)`: bounded, outliers count at most `C²π/4`.
    Arctan(f64),
}

impl Loss {
    /// The loss by name (`linear`, `soft_l1`, `huber`, `cauchy`, `arctan`) and scale.
    pub fn from_name(name: &str, scale: f64) -> Result<Loss> {
        let loss = match name {
            "linear" => Loss::Linear,
            "soft_l1" | "soft-l1" => Loss::SoftL1(scale),
            "huber" => Loss::Huber(scale),
            "cauchy" => Loss::Cauchy(scale),
            "arctan" => Loss::Arctan(scale),
            other => {
                return Err(input(
                    "loss",
                    format!("unknown loss `{other}` (linear, soft_l1, huber, cauchy, arctan)"),
                ))
            }
        };
        loss.check()?;
        Ok(loss)
    }

    fn scale(self) -> Option<f64> {
        match self {
            Loss::Linear => None,
            Loss::SoftL1(c) | Loss::Huber(c) | Loss::Cauchy(c) | Loss::Arctan(c) => Some(c),
        }
    }

    /// An error unless the scale is a finite number > 0.
    pub fn check(self) -> Result<()> {
        match self.scale() {
            Some(c) if !(c.is_finite() && c > 0.0) => Err(input(
                "loss",
                format!("the loss's scale must be a finite number > 0, got {c}"),
            )),
            _ => Ok(()),
        }
    }

    /// `ρ(z)` of plain numbers.
    pub fn rho(self, z: f64) -> f64 {
        match self {
            Loss::Linear => z,
            // 2(√(1+z) − 1) without the cancellation for small z
            Loss::SoftL1(_) => 2.0 * z / ((1.0 + z).sqrt() + 1.0),
            Loss::Huber(_) => {
                if z <= 1.0 {
                    z
                } else {
                    2.0 * z.sqrt() - 1.0
                }
            }
            Loss::Cauchy(_) => z.ln_1p(),
            Loss::Arctan(_) => z.atan(),
        }
    }

    /// The objective `½ Σ C² ρ((r/C)²)` of plain residuals.
    pub fn cost(self, r: &[f64]) -> f64 {
        match self.scale() {
            None => 0.5 * r.iter().map(|v| v * v).sum::<f64>(),
            Some(c) => 0.5 * c * c * r.iter().map(|v| self.rho((v / c) * (v / c))).sum::<f64>(),
        }
    }

    /// The rescaled residuals `r · sqrt(ρ(z)/z)`, traced: their least squares is this
    /// loss's objective.
    pub fn rescale(self, r: &Tensor) -> Tensor {
        let Some(c) = self.scale() else {
            return r.clone();
        };
        let z = (r / c) * (r / c);
        // below `tiny`, ρ(z)/z is 1 to rounding; the safe z keeps both branches finite
        let tiny = 1e-12;
        let small = z.less(Tensor::scalar(tiny));
        let zs = where_(&small, 1.0, &z);
        let rho = match self {
            Loss::SoftL1(_) => &zs * 2.0 / ((&zs + 1.0).sqrt() + 1.0),
            Loss::Huber(_) => where_(
                &zs.less_equal(Tensor::scalar(1.0)),
                &zs,
                zs.sqrt() * 2.0 - 1.0,
            ),
            Loss::Cauchy(_) => zs.log1p(),
            _ => zs.atan(),
        };
        let w = where_(&small, 1.0, (rho / &zs).sqrt());
        r * w
    }
}

/// Bounds of one parameter (either side may be infinite).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bound {
    /// The lower bound (`f64::NEG_INFINITY` for none).
    pub lo: f64,
    /// The upper bound (`f64::INFINITY` for none); `least_squares` requires `lo < hi`.
    pub hi: f64,
}

/// Checks bounds against the start: one pair per parameter, `lo < hi`, no NaN, the start
/// within.
pub(crate) fn check_bounds(bounds: &[Bound], x0: &[f64]) -> Result<()> {
    const OP: &str = "least_squares";
    if bounds.len() != x0.len() {
        return Err(input(
            OP,
            format!("{} bounds for {} parameters", bounds.len(), x0.len()),
        ));
    }
    for (k, (b, x)) in bounds.iter().zip(x0).enumerate() {
        if b.lo.is_nan()
            || b.hi.is_nan()
            || b.lo >= b.hi
            || b.lo == f64::INFINITY
            || b.hi == f64::NEG_INFINITY
        {
            return Err(input(
                OP,
                format!(
                    "parameter {k}: the bounds [{}, {}] hold no number",
                    b.lo, b.hi
                ),
            ));
        }
        if !(b.lo <= *x && *x <= b.hi) {
            return Err(input(
                OP,
                format!(
                    "parameter {k}: the start {x} is outside its bounds [{}, {}]",
                    b.lo, b.hi
                ),
            ));
        }
        // on a bound, the change of variables has a zero derivative: the parameter could
        // never move (found in review), so the start must be strictly inside
        if *x == b.lo || *x == b.hi {
            return Err(input(
                OP,
                format!(
                    "parameter {k}: the start {x} is on its bound; start strictly inside [{}, {}]",
                    b.lo, b.hi
                ),
            ));
        }
    }
    Ok(())
}

/// The internal (unbounded) value of `x` within `b`.
pub(crate) fn to_internal(b: Bound, x: f64) -> f64 {
    match (b.lo.is_finite(), b.hi.is_finite()) {
        (true, true) => (2.0 * (x - b.lo) / (b.hi - b.lo) - 1.0)
            .clamp(-1.0, 1.0)
            .asin(),
        (true, false) => ((x - b.lo + 1.0).powi(2) - 1.0).max(0.0).sqrt(),
        (false, true) => ((b.hi - x + 1.0).powi(2) - 1.0).max(0.0).sqrt(),
        (false, false) => x,
    }
}

/// The bounded value of the internal `u`, of plain numbers.
pub(crate) fn to_external(b: Bound, u: f64) -> f64 {
    match (b.lo.is_finite(), b.hi.is_finite()) {
        (true, true) => (b.lo + (b.hi - b.lo) * (u.sin() + 1.0) / 2.0).clamp(b.lo, b.hi),
        (true, false) => b.lo - 1.0 + (u * u + 1.0).sqrt(),
        (false, true) => b.hi + 1.0 - (u * u + 1.0).sqrt(),
        (false, false) => u,
    }
}

/// The bounded parameters of the internal vector `u`, traced.
pub(crate) fn external(bounds: &[Bound], u: &Tensor) -> Tensor {
    let parts: Vec<Tensor> = bounds
        .iter()
        .enumerate()
        .map(|(k, &b)| {
            let uk = u.index_axis(0, k);
            let x = match (b.lo.is_finite(), b.hi.is_finite()) {
                (true, true) => (uk.sin() + 1.0) * ((b.hi - b.lo) / 2.0) + b.lo,
                (true, false) => (&uk * &uk + 1.0).sqrt() + (b.lo - 1.0),
                (false, true) => -(&uk * &uk + 1.0).sqrt() + (b.hi + 1.0),
                (false, false) => uk,
            };
            x.reshape(&[1])
        })
        .collect();
    Tensor::concatenate(&parts, 0)
}
