//! Twelve Moré-Garbow-Hillstrom least-squares test problems (ACM TOMS 7(1), 1981), written
//! with ferrax operations from their mathematical definitions, with their standard starts
//! and known minima (`../shared/data/mgh/PROBLEMS.md`). Objective `F(x) = Σ f_i(x)²`.

use std::f64::consts::PI;

use ferrax::Tensor;

/// One problem: residuals, standard start, and the minimum a solver should reach from it.
pub struct MghProblem {
    /// MGH's problem number.
    pub number: u32,
    /// The problem's name, as MGH give it.
    pub name: &'static str,
    /// The standard starting point.
    pub x0: Vec<f64>,
    /// The minimum of `F` expected from the standard start (a documented local minimum
    /// where the problem has one that Levenberg-Marquardt reaches from there).
    pub f_min: f64,
    /// Where that minimum is, when it is a point (not at infinity).
    pub x_min: Option<Vec<f64>>,
    /// The residuals `f_i(x)` as one vector, for a parameter vector `x`.
    pub residual: fn(Tensor) -> Tensor,
}

/// Scalar residuals stacked into a vector.
fn stack(fs: Vec<Tensor>) -> Tensor {
    let parts: Vec<Tensor> = fs.iter().map(|f| f.reshape(&[1])).collect();
    Tensor::concatenate(&parts, 0)
}

fn x(v: &Tensor, i: usize) -> Tensor {
    v.index_axis(0, i)
}

fn data(v: &[f64]) -> Tensor {
    Tensor::new(ferrax::Array::from_slice(v))
}

/// The twelve problems.
pub fn problems() -> Vec<MghProblem> {
    vec![
        MghProblem {
            number: 1,
            name: "Rosenbrock",
            x0: vec![-1.2, 1.0],
            f_min: 0.0,
            x_min: Some(vec![1.0, 1.0]),
            residual: |v| {
                let (x1, x2) = (x(&v, 0), x(&v, 1));
                stack(vec![10.0 * (&x2 - &x1 * &x1), 1.0 - x1])
            },
        },
        MghProblem {
            number: 2,
            name: "Freudenstein-Roth",
            x0: vec![0.5, -2.0],
            // Levenberg-Marquardt from the standard start ends at the local minimum
            // (documented by MGH and MINPACK's test table); the global one is 0 at (5, 4).
            f_min: 48.98425367924,
            x_min: Some(vec![11.4127789869, -0.896805253274]),
            residual: |v| {
                let (x1, x2) = (x(&v, 0), x(&v, 1));
                stack(vec![
                    -13.0 + &x1 + ((5.0 - &x2) * &x2 - 2.0) * &x2,
                    -29.0 + &x1 + ((&x2 + 1.0) * &x2 - 14.0) * &x2,
                ])
            },
        },
        MghProblem {
            number: 3,
            name: "Powell badly scaled",
            x0: vec![0.0, 1.0],
            f_min: 0.0,
            x_min: Some(vec![1.0981593297e-5, 9.10614673987]),
            residual: |v| {
                let (x1, x2) = (x(&v, 0), x(&v, 1));
                stack(vec![
                    1e4 * &x1 * &x2 - 1.0,
                    (-x1).exp() + (-x2).exp() - 1.0001,
                ])
            },
        },
        MghProblem {
            number: 4,
            name: "Brown badly scaled",
            x0: vec![1.0, 1.0],
            f_min: 0.0,
            x_min: Some(vec![1e6, 2e-6]),
            residual: |v| {
                let (x1, x2) = (x(&v, 0), x(&v, 1));
                stack(vec![&x1 - 1e6, &x2 - 2e-6, x1 * x2 - 2.0])
            },
        },
        MghProblem {
            number: 5,
            name: "Beale",
            x0: vec![1.0, 1.0],
            f_min: 0.0,
            x_min: Some(vec![3.0, 0.5]),
            residual: |v| {
                let (x1, x2) = (x(&v, 0), x(&v, 1));
                let y = [1.5, 2.25, 2.625];
                stack(
                    (1..=3)
                        .map(|i| y[i - 1] - &x1 * (1.0 - x2.powi(i as i32)))
                        .collect(),
                )
            },
        },
        MghProblem {
            number: 6,
            name: "Jennrich-Sampson",
            x0: vec![0.3, 0.4],
            f_min: 124.362182355615,
            x_min: Some(vec![0.25782521367, 0.25782521367]),
            residual: |v| {
                let i = data(&(1..=10).map(|i| i as f64).collect::<Vec<_>>());
                let (x1, x2) = (x(&v, 0), x(&v, 1));
                2.0 + 2.0 * &i - ((&i * x1).exp() + (&i * x2).exp())
            },
        },
        MghProblem {
            number: 7,
            name: "Helical valley",
            x0: vec![-1.0, 0.0, 0.0],
            f_min: 0.0,
            x_min: Some(vec![1.0, 0.0, 0.0]),
            residual: |v| {
                let (x1, x2, x3) = (x(&v, 0), x(&v, 1), x(&v, 2));
                // θ = arctan(x2/x1)/2π, plus ½ when x1 < 0: a branch the derivative follows.
                let base = (&x2 / &x1).atan2(1.0) / (2.0 * PI);
                let theta = Tensor::where_(&x1.less(0.0), &base + 0.5, &base);
                stack(vec![
                    10.0 * (&x3 - 10.0 * theta),
                    10.0 * ((&x1 * &x1 + &x2 * &x2).sqrt() - 1.0),
                    x3,
                ])
            },
        },
        MghProblem {
            number: 8,
            name: "Bard",
            x0: vec![1.0, 1.0, 1.0],
            f_min: 8.21487730657898e-3,
            x_min: Some(vec![0.0824105597498, 1.13303609203, 2.34369517864]),
            residual: |v| {
                let y = data(&[
                    0.14, 0.18, 0.22, 0.25, 0.29, 0.32, 0.35, 0.39, 0.37, 0.58, 0.73, 0.96, 1.34,
                    2.10, 4.39,
                ]);
                let u: Vec<f64> = (1..=15).map(|i| i as f64).collect();
                let w: Vec<f64> = u.iter().map(|&u| u.min(16.0 - u)).collect();
                let vv: Vec<f64> = u.iter().map(|&u| 16.0 - u).collect();
                let (x1, x2, x3) = (x(&v, 0), x(&v, 1), x(&v, 2));
                y - (x1 + data(&u) / (data(&vv) * x2 + data(&w) * x3))
            },
        },
        MghProblem {
            number: 9,
            name: "Gaussian",
            x0: vec![0.4, 1.0, 0.0],
            f_min: 1.12793276961901e-8,
            x_min: Some(vec![0.398956137839, 1.00001908449, 0.0]),
            residual: |v| {
                let half = [
                    0.0009, 0.0044, 0.0175, 0.0540, 0.1295, 0.2420, 0.3521, 0.3989,
                ];
                let y: Vec<f64> = (1..=15)
                    .map(|i: usize| half[if i <= 8 { i - 1 } else { 15 - i }])
                    .collect();
                let t: Vec<f64> = (1..=15).map(|i| (8.0 - i as f64) / 2.0).collect();
                let (x1, x2, x3) = (x(&v, 0), x(&v, 1), x(&v, 2));
                x1 * (-x2 * (data(&t) - x3).powi(2) / 2.0).exp() - data(&y)
            },
        },
        MghProblem {
            number: 10,
            name: "Meyer",
            x0: vec![0.02, 4000.0, 250.0],
            f_min: 87.9458551708511,
            x_min: Some(vec![0.00560963647103, 6181.34634629, 345.223634624]),
            residual: |v| {
                let y = data(&[
                    34780.0, 28610.0, 23650.0, 19630.0, 16370.0, 13720.0, 11540.0, 9744.0, 8261.0,
                    7030.0, 6005.0, 5147.0, 4427.0, 3820.0, 3307.0, 2872.0,
                ]);
                let t: Vec<f64> = (1..=16).map(|i| 45.0 + 5.0 * i as f64).collect();
                let (x1, x2, x3) = (x(&v, 0), x(&v, 1), x(&v, 2));
                x1 * (x2 / (data(&t) + x3)).exp() - y
            },
        },
        MghProblem {
            number: 13,
            name: "Powell singular",
            x0: vec![3.0, -1.0, 0.0, 1.0],
            f_min: 0.0,
            x_min: Some(vec![0.0; 4]),
            residual: |v| {
                let (x1, x2, x3, x4) = (x(&v, 0), x(&v, 1), x(&v, 2), x(&v, 3));
                stack(vec![
                    &x1 + 10.0 * &x2,
                    5f64.sqrt() * (&x3 - &x4),
                    (&x2 - 2.0 * &x3).powi(2),
                    10f64.sqrt() * (x1 - x4).powi(2),
                ])
            },
        },
        MghProblem {
            number: 14,
            name: "Wood",
            x0: vec![-3.0, -1.0, -3.0, -1.0],
            f_min: 0.0,
            x_min: Some(vec![1.0; 4]),
            residual: |v| {
                let (x1, x2, x3, x4) = (x(&v, 0), x(&v, 1), x(&v, 2), x(&v, 3));
                stack(vec![
                    10.0 * (&x2 - &x1 * &x1),
                    1.0 - x1,
                    90f64.sqrt() * (&x4 - &x3 * &x3),
                    1.0 - x3,
                    10f64.sqrt() * (&x2 + &x4 - 2.0),
                    (x2 - x4) / 10f64.sqrt(),
                ])
            },
        },
    ]
}
