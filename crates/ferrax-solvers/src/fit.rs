//! Fitting a [`Model`] to a [`Table`]: the estimates, their standard errors and confidence
//! intervals, and the residuals' statistics. What `ferrax fit` prints, plots and writes.
//!
//! Between the model language and the solvers: the model is bound to the table's columns
//! and the parameters given starting values, checked at the start (finite everywhere, and
//! depending on every parameter: a parameter whose Jacobian column is zero at every data
//! point cannot be fitted), and handed to [`least_squares`] as the residual function
//! `observed − model`. Standard errors come from the solver (`sqrt(diag((JᵀJ)⁻¹) · s²)`,
//! `s² = RSS / (m − n)`), and the intervals from Student's t with `m − n` degrees of
//! freedom, as SciPy's `curve_fit`, R's `nls` and NIST report them.

use ferrax::Tensor;
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::error::{input, Result};
use crate::least_squares::{least_squares, LsqOptions, LsqResult};
use crate::model::{BoundModel, Model};
use crate::table::Table;

/// One fitted parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    /// The parameter's name, as given with its starting value.
    pub name: String,
    /// The fitted value.
    pub value: f64,
    /// Infinite when the data do not determine it; `None` when there are no more rows than
    /// parameters.
    pub std_error: Option<f64>,
    /// The confidence interval at [`ModelFit::confidence`].
    pub interval: Option<(f64, f64)>,
}

/// A fitted model, its data and its statistics.
#[derive(Clone, Debug)]
pub struct ModelFit {
    /// The model bound to the table's columns and to the parameters.
    pub model: BoundModel,
    /// One per parameter, in the order of the starting values.
    pub estimates: Vec<Estimate>,
    /// The level of the intervals (0.95).
    pub confidence: f64,
    /// Data rows (residuals) `m`.
    pub rows: usize,
    /// Degrees of freedom `m − n`.
    pub dof: usize,
    /// The residual sum of squares.
    pub rss: f64,
    /// The residual standard error `sqrt(RSS / (m − n))` (`None` when `m ≤ n`).
    pub sigma: Option<f64>,
    /// `sqrt(RSS / m)`.
    pub rms: f64,
    /// `1 − RSS / Σ (y − ȳ)²` (`None` for a constant response).
    pub r_squared: Option<f64>,
    /// The largest absolute residual.
    pub max_abs_residual: f64,
    /// The model at the estimates, row by row.
    pub fitted: Vec<f64>,
    /// Observed minus fitted, row by row.
    pub residuals: Vec<f64>,
    /// The solver's report: termination, iterations, history.
    pub solve: LsqResult,
}

/// The parameter vector as a tensor.
fn vector(p: &[f64]) -> Tensor {
    Tensor::from_vec(p.to_vec(), &[p.len()])
}

/// Fits `model` to `table` from the starting values `start` (one per parameter, by name;
/// every name must appear in the model).
pub fn fit_model(
    model: &Model,
    table: &Table,
    start: &[(String, f64)],
    opts: &LsqOptions,
) -> Result<ModelFit> {
    const OP: &str = "fit";
    if start.is_empty() {
        return Err(input(
            OP,
            "no parameters: give each one a starting value (--start a=1,b=0.5)",
        ));
    }
    let names: Vec<String> = start.iter().map(|(n, _)| n.clone()).collect();
    let x0: Vec<f64> = start.iter().map(|(_, v)| *v).collect();
    if let Some((n, v)) = start.iter().find(|(_, v)| !v.is_finite()) {
        return Err(input(
            OP,
            format!("the start of `{n}` is {v}, not a finite number"),
        ));
    }
    let bound = model.bind(&table.names, &names)?;
    let m = table.rows();
    let columns: Vec<Tensor> = table
        .columns
        .iter()
        .map(|c| Tensor::from_vec(c.clone(), &[m]))
        .collect();
    let observed = columns[bound.response()].clone();
    let residual = |p: Tensor| &observed - &bound.eval(&p, &columns, m);

    // checked at the start: finite, and depending on every parameter
    let at_start = residual(vector(&x0)).to_vec::<f64>()?;
    if let Some(i) = at_start.iter().position(|v| !v.is_finite()) {
        return Err(input(
            OP,
            format!(
                "the model is not finite at the starting values on data row {} (of {m}): \
                 choose other starting values",
                i + 1
            ),
        ));
    }
    let overflow = |what: &str| {
        input(
            OP,
            format!(
                "the sum of squared residuals {what} overflows f64: rescale the data (or \
                 the model) so its values stay well below 1e150"
            ),
        )
    };
    if !at_start.iter().map(|r| r * r).sum::<f64>().is_finite() {
        return Err(overflow("at the starting values"));
    }
    let jac = ferrax::jacfwd(residual, &vector(&x0))?.to_vec::<f64>()?;
    let n = x0.len();
    for (k, name) in names.iter().enumerate() {
        if (0..m).all(|i| jac[i * n + k] == 0.0) {
            return Err(input(
                OP,
                format!(
                    "the model does not depend on the parameter `{name}` at its starting \
                     value: its derivative is zero on every data row"
                ),
            ));
        }
    }

    let solve = least_squares(residual, &x0, opts)?;
    let y: Vec<f64> = table.columns[bound.response()].clone();
    let mean = y.iter().sum::<f64>() / m as f64;
    let tss: f64 = y.iter().map(|v| (v - mean).powi(2)).sum();
    if !(solve.rss.is_finite() && tss.is_finite()) {
        return Err(overflow("of the fit"));
    }
    let residuals = solve.residuals.clone();
    let fitted: Vec<f64> = y.iter().zip(&residuals).map(|(y, r)| y - r).collect();
    let dof = m.saturating_sub(n);
    let rss = solve.rss;
    let t = (dof > 0)
        .then(|| StudentsT::new(0.0, 1.0, dof as f64).ok())
        .flatten()
        .map(|d| d.inverse_cdf(0.975));
    let estimates = names
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let value = solve.params[k];
            let std_error = solve.standard_errors.as_ref().map(|s| s[k]);
            let interval = std_error
                .zip(t)
                .map(|(s, t)| (value - t * s, value + t * s));
            Estimate {
                name: name.clone(),
                value,
                std_error,
                interval,
            }
        })
        .collect();
    Ok(ModelFit {
        model: bound,
        estimates,
        confidence: 0.95,
        rows: m,
        dof,
        rss,
        sigma: (dof > 0).then(|| (rss / dof as f64).sqrt()),
        rms: (rss / m as f64).sqrt(),
        r_squared: (tss > 0.0).then(|| 1.0 - rss / tss),
        max_abs_residual: residuals.iter().fold(0.0, |a: f64, r| a.max(r.abs())),
        fitted,
        residuals,
        solve,
    })
}

impl ModelFit {
    /// The fitted model on other values of its columns (`columns[c]`: `len` values of the
    /// table's column `c`; the response's is not read): what a plot draws as the curve.
    pub fn predict(&self, columns: &[Vec<f64>], len: usize) -> Result<Vec<f64>> {
        let cols: Vec<Tensor> = columns
            .iter()
            .map(|c| Tensor::from_vec(c.clone(), &[c.len()]))
            .collect();
        let p: Vec<f64> = self.estimates.iter().map(|e| e.value).collect();
        Ok(self.model.eval(&vector(&p), &cols, len).to_vec::<f64>()?)
    }
}
