//! The data-fitting problems of the MINPACK-2 test problem collection (Averick, Carter,
//! Moré and Xue, 1992) that SciPy's least-squares benchmark suite runs, with their standard
//! starts and optimal sums of squares: exponential data fitting I (MGH's Osborne 1),
//! Gaussian data fitting (Osborne 2), enzyme reaction (Kowalik-Osborne), Chebyshev
//! quadrature for 8, 9 and 10 nodes, and coating thickness standardization (134
//! parameters, 252 residuals). Thermistor resistance is MGH's Meyer problem, in [`mgh`].
//!
//! The optima `F* = Σ fᵢ(x*)²` are the published ones (Moré, Garbow and Hillstrom, ACM TOMS
//! 7(1), 1981, for the MGH problems), given here to the digits SciPy's `least_squares`
//! (`method='lm'`, tolerances 1e-15) reproduces them; coating thickness has no value in MGH,
//! and its `F*` is SciPy's optimum from the standard start, which ferrax's solvers reach too.
//!
//! [`mgh`]: crate::mgh

use ferrax::Tensor;

use crate::mgh::MghProblem;

fn data(v: &[f64]) -> Tensor {
    Tensor::new(ferrax::Array::from_slice(v))
}

fn x(v: &Tensor, i: usize) -> Tensor {
    v.index_axis(0, i)
}

const OSBORNE1_Y: [f64; 33] = [
    0.844, 0.908, 0.932, 0.936, 0.925, 0.908, 0.881, 0.850, 0.818, 0.784, 0.751, 0.718, 0.685,
    0.658, 0.628, 0.603, 0.580, 0.558, 0.538, 0.522, 0.506, 0.490, 0.478, 0.467, 0.457, 0.448,
    0.438, 0.431, 0.424, 0.420, 0.414, 0.411, 0.406,
];

const OSBORNE2_Y: [f64; 65] = [
    1.366, 1.191, 1.112, 1.013, 0.991, 0.885, 0.831, 0.847, 0.786, 0.725, 0.746, 0.679, 0.608,
    0.655, 0.616, 0.606, 0.602, 0.626, 0.651, 0.724, 0.649, 0.649, 0.694, 0.644, 0.624, 0.661,
    0.612, 0.558, 0.533, 0.495, 0.500, 0.423, 0.395, 0.375, 0.372, 0.391, 0.396, 0.405, 0.428,
    0.429, 0.523, 0.562, 0.607, 0.653, 0.672, 0.708, 0.633, 0.668, 0.645, 0.632, 0.591, 0.559,
    0.597, 0.625, 0.739, 0.710, 0.729, 0.720, 0.636, 0.581, 0.428, 0.292, 0.162, 0.098, 0.054,
];

const KOWALIK_U: [f64; 11] = [
    4.0, 2.0, 1.0, 0.5, 0.25, 0.167, 0.125, 0.1, 0.0833, 0.0714, 0.0625,
];
const KOWALIK_Y: [f64; 11] = [
    0.1957, 0.1947, 0.1735, 0.1600, 0.0844, 0.0627, 0.0456, 0.0342, 0.0323, 0.0235, 0.0246,
];

/// Coating thickness: the two measured coordinates of 63 points, and the 126 thicknesses.
const COATING_XI: [[f64; 63]; 2] = [
    [
        0.7140, 0.7169, 0.7232, 0.7151, 0.6848, 0.7070, 0.7177, 0.7073, 0.6734, 0.7174, 0.7125,
        0.6947, 0.7121, 0.7166, 0.6894, 0.6897, 0.7024, 0.7026, 0.6800, 0.6957, 0.6987, 0.7111,
        0.7097, 0.6809, 0.7139, 0.7046, 0.6950, 0.7032, 0.7019, 0.6975, 0.6955, 0.7056, 0.6965,
        0.6848, 0.6995, 0.6105, 0.6027, 0.6084, 0.6081, 0.6057, 0.6116, 0.6052, 0.6136, 0.6032,
        0.6081, 0.6092, 0.6122, 0.6157, 0.6191, 0.6169, 0.5483, 0.5371, 0.5576, 0.5521, 0.5495,
        0.5499, 0.4937, 0.5092, 0.5433, 0.5018, 0.5363, 0.4977, 0.5296,
    ],
    [
        5.145, 5.241, 5.389, 5.211, 5.154, 5.105, 5.191, 5.013, 5.582, 5.208, 5.142, 5.284, 5.262,
        6.838, 6.215, 6.817, 6.889, 6.732, 6.717, 6.468, 6.776, 6.574, 6.465, 6.090, 6.350, 4.255,
        4.154, 4.211, 4.287, 4.104, 4.007, 4.261, 4.150, 4.040, 4.155, 5.086, 5.021, 5.040, 5.247,
        5.125, 5.136, 4.949, 5.253, 5.154, 5.227, 5.120, 5.291, 5.294, 5.304, 5.209, 5.384, 5.490,
        5.563, 5.532, 5.372, 5.423, 7.237, 6.944, 6.957, 7.138, 7.009, 7.074, 7.046,
    ],
];
const COATING_Y: [f64; 126] = [
    9.3636, 9.3512, 9.4891, 9.1888, 9.3161, 9.2585, 9.2913, 9.3914, 9.4524, 9.4995, 9.4179, 9.4680,
    9.4799, 11.2917, 11.5062, 11.4579, 11.3977, 11.3688, 11.3897, 11.3104, 11.3882, 11.3629,
    11.3149, 11.2474, 11.2507, 8.1678, 8.1017, 8.3506, 8.3651, 8.2994, 8.1514, 8.2229, 8.1027,
    8.3785, 8.4118, 8.0955, 8.0613, 8.0979, 8.1364, 8.1700, 8.1684, 8.0885, 8.1839, 8.1478, 8.1827,
    8.0290, 8.1000, 8.2579, 8.2248, 8.2540, 6.8518, 6.8547, 6.8831, 6.9137, 6.8984, 6.8888, 8.5189,
    8.5308, 8.5184, 8.5222, 8.5705, 8.5353, 8.5213, 8.3158, 8.1995, 8.2283, 8.1857, 8.2738, 8.2131,
    8.2613, 8.2315, 8.2078, 8.2996, 8.3026, 8.0995, 8.2990, 9.6753, 9.6687, 9.5704, 9.5435, 9.6780,
    9.7668, 9.7827, 9.7844, 9.7011, 9.8006, 9.7610, 9.7813, 7.3073, 7.2572, 7.4686, 7.3659, 7.3587,
    7.3132, 7.3542, 7.2339, 7.4375, 7.4022, 10.7914, 10.6554, 10.7359, 10.7583, 10.7735, 10.7907,
    10.6465, 10.6994, 10.7756, 10.7402, 10.6800, 10.7000, 10.8160, 10.6921, 10.8677, 12.3495,
    12.4424, 12.4303, 12.5086, 12.4513, 12.4625, 16.2290, 16.2781, 16.2082, 16.2715, 16.2464,
    16.1626, 16.1568,
];

/// Chebyshev quadrature with `n` nodes: `fᵢ = (1/n) Σⱼ Tᵢ(xⱼ) − ∫₀¹ Tᵢ` for the shifted
/// Chebyshev polynomials `Tᵢ(x) = cos(i arccos(2x − 1))`, `i = 1..n` (the integral is 0
/// for odd `i`, `−1/(i² − 1)` for even).
fn chebyquad(v: Tensor) -> Tensor {
    let n = v.shape()[0];
    let y = &v * 2.0 - 1.0;
    let (mut prev, mut cur) = (Tensor::ones(&[n], ferrax::DType::F64), y.clone());
    let mut rows = Vec::with_capacity(n);
    for i in 1..=n {
        let integral = if i % 2 == 0 {
            -1.0 / ((i * i) as f64 - 1.0)
        } else {
            0.0
        };
        rows.push((cur.mean(&[0]) - integral).reshape(&[1]));
        let next = &y * &cur * 2.0 - &prev;
        (prev, cur) = (cur, next);
    }
    Tensor::concatenate(&rows, 0)
}

fn chebyquad_problem(n: usize, f_min: f64) -> MghProblem {
    MghProblem {
        number: 35,
        name: match n {
            8 => "Chebyshev quadrature (n = 8)",
            9 => "Chebyshev quadrature (n = 9)",
            _ => "Chebyshev quadrature (n = 10)",
        },
        x0: (1..=n).map(|j| j as f64 / (n + 1) as f64).collect(),
        f_min,
        x_min: None,
        residual: chebyquad,
    }
}

/// The problems, each with MGH's number where it has one (0 for coating thickness).
pub fn problems() -> Vec<MghProblem> {
    vec![
        MghProblem {
            number: 17,
            name: "Exponential data fitting I (Osborne 1)",
            x0: vec![0.5, 1.5, -1.0, 0.01, 0.02],
            f_min: 5.464894697482836e-5,
            x_min: None,
            residual: |v| {
                let t: Vec<f64> = (0..33).map(|i| 10.0 * i as f64).collect();
                let t = data(&t);
                x(&v, 0) + x(&v, 1) * (-x(&v, 3) * &t).exp() + x(&v, 2) * (-x(&v, 4) * &t).exp()
                    - data(&OSBORNE1_Y)
            },
        },
        MghProblem {
            number: 19,
            name: "Gaussian data fitting (Osborne 2)",
            x0: vec![1.3, 0.65, 0.65, 0.7, 0.6, 3.0, 5.0, 7.0, 2.0, 4.5, 5.5],
            f_min: 4.013773629354771e-2,
            x_min: None,
            residual: |v| {
                let t: Vec<f64> = (0..65).map(|i| 0.1 * i as f64).collect();
                let t = data(&t);
                let bump = |a: usize, w: usize, c: usize| {
                    let d = &t - x(&v, c);
                    x(&v, a) * (-x(&v, w) * &d * &d).exp()
                };
                x(&v, 0) * (-x(&v, 4) * &t).exp() + bump(1, 5, 8) + bump(2, 6, 9) + bump(3, 7, 10)
                    - data(&OSBORNE2_Y)
            },
        },
        MghProblem {
            number: 15,
            name: "Enzyme reaction (Kowalik-Osborne)",
            x0: vec![0.25, 0.39, 0.415, 0.39],
            f_min: 3.0750560384923745e-4,
            x_min: None,
            residual: |v| {
                let u = data(&KOWALIK_U);
                let num = &u * &u + x(&v, 1) * &u;
                let den = &u * &u + x(&v, 2) * &u + x(&v, 3);
                x(&v, 0) * num / den - data(&KOWALIK_Y)
            },
        },
        chebyquad_problem(8, 3.516873725678417e-3),
        chebyquad_problem(9, 0.0),
        chebyquad_problem(10, 6.503954800882964e-3),
        MghProblem {
            number: 0,
            name: "Coating thickness standardization",
            x0: [-8.0, 13.0, 1.2, 0.2, 0.1, 6.0, 5.5, -5.2]
                .into_iter()
                .chain(std::iter::repeat_n(0.0, 126))
                .collect(),
            f_min: 0.5054986186685305,
            x_min: None,
            residual: |v| {
                // 8 model coefficients, then corrections to the 63 + 63 measured coordinates
                let a = data(&COATING_XI[0]) + v.slice_axis(0, 8, 71);
                let b = data(&COATING_XI[1]) + v.slice_axis(0, 71, 134);
                let plane = |k: usize| {
                    x(&v, k) + x(&v, k + 1) * &a + x(&v, k + 2) * &b + x(&v, k + 3) * &a * &b
                };
                let y = data(&COATING_Y);
                Tensor::concatenate(
                    &[
                        plane(0) - y.slice_axis(0, 0, 63),
                        plane(4) - y.slice_axis(0, 63, 126),
                        v.slice_axis(0, 8, 71) * 4.08,
                        v.slice_axis(0, 71, 134) * 0.417,
                    ],
                    0,
                )
            },
        },
    ]
}
