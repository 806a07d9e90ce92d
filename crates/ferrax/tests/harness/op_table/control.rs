//! Control-flow rows: `cond` (two branches), `switch` (a `cond` of three), and `scan`
//! forward, in reverse and without xs. Their sub-programs are traced for each dtype (a
//! sub-program is typed, so the row's primitive depends on the dtype: `OpRow::prim_at`), and
//! their index is a static operand (`OpRow::fixed`) that takes every branch's value, and
//! values beyond the branches (the index is clamped). Known values: libm's sin/cos/tanh via
//! Python, the loops written out there in plain floats.

use super::*;
use ferrax::{make_jaxpr, Closed, Tensor};

/// The index operand: an i32 scalar.
fn index() -> Aval {
    av(&[], DType::I32)
}

/// A sub-program traced from `f` on operands of `avals`.
fn traced<O: ferrax::Tree>(f: impl FnOnce(Vec<Tensor>) -> O, avals: &[Aval]) -> Closed {
    let example: Vec<Tensor> = avals
        .iter()
        .map(|a| Tensor::zeros(&a.shape, a.dtype))
        .collect();
    Closed::new(make_jaxpr(f, &example).expect("a row's sub-program traces"))
}

fn cond_avals(d: DType) -> Vec<Aval> {
    vec![index(), av(&[3], d), av(&[3], d)]
}

/// Two branches of two outputs each: (sin x, x + y) and (x y, x - y).
fn cond_prim(d: DType) -> Primitive {
    let ops = &cond_avals(d)[1..];
    Primitive::Cond {
        branches: vec![
            traced(|v| (v[0].sin(), &v[0] + &v[1]), ops),
            traced(|v| (&v[0] * &v[1], &v[0] - &v[1]), ops),
        ],
    }
}

/// Three branches: sin(x) y, x y, tanh(x) - y.
fn switch_prim(d: DType) -> Primitive {
    let ops = &cond_avals(d)[1..];
    Primitive::Cond {
        branches: vec![
            traced(|v| v[0].sin() * &v[1], ops),
            traced(|v| &v[0] * &v[1], ops),
            traced(|v| v[0].tanh() - &v[1], ops),
        ],
    }
}

/// An RNN step with a const weight: h' = tanh(w h + x), y = h' x.
fn scan_avals(d: DType) -> Vec<Aval> {
    vec![av(&[3, 3], d), av(&[3], d), av(&[4, 3], d)]
}

fn rnn_body(d: DType) -> Closed {
    traced(
        |v| {
            let h = (v[0].matmul(&v[1]) + &v[2]).tanh();
            (h.clone(), &h * &v[2])
        },
        &[av(&[3, 3], d), av(&[3], d), av(&[3], d)],
    )
}

fn scan_prim(d: DType) -> Primitive {
    Primitive::Scan {
        body: rnn_body(d),
        n_consts: 1,
        n_carry: 1,
        length: 4,
        reverse: false,
    }
}

/// Two carries (s, h), no consts, run from the end: h' = sin(h x) + s,
/// s' = s / 2 + Σ h' x, y = h'.
fn scan_rev_avals(d: DType) -> Vec<Aval> {
    vec![av(&[], d), av(&[3], d), av(&[4, 3], d)]
}

fn scan_rev_prim(d: DType) -> Primitive {
    let body = traced(
        |v| {
            let h = (&v[1] * &v[2]).sin() + &v[0];
            let s = &v[0] * 0.5 + (&h * &v[2]).sum_all();
            (s, h.clone(), h)
        },
        &[av(&[], d), av(&[3], d), av(&[3], d)],
    );
    Primitive::Scan {
        body,
        n_consts: 0,
        n_carry: 2,
        length: 4,
        reverse: true,
    }
}

/// No xs (a fori_loop): x' = sin(x a) + x / 2, y = x a, three times.
fn scan_no_xs_avals(d: DType) -> Vec<Aval> {
    vec![av(&[3], d), av(&[3], d)]
}

fn scan_no_xs_prim(d: DType) -> Primitive {
    let body = traced(
        |v| {
            let xa = &v[1] * &v[0];
            (xa.sin() + &v[1] * 0.5, xa)
        },
        &scan_no_xs_avals(d),
    );
    Primitive::Scan {
        body,
        n_consts: 1,
        n_carry: 1,
        length: 3,
        reverse: false,
    }
}

const XS: [f64; 12] = [
    0.5, -1.0, 0.25, 1.5, 0.0, -0.5, -0.75, 2.0, 1.0, 0.2, 0.4, -1.2,
];

/// The control-flow rows, in table order.
pub(super) fn rows() -> Vec<OpRow> {
    use Domain::*;
    let f64_ = DType::F64;
    let x = vec![0.5, 1.0, 2.0];
    let y = vec![1.0, 2.0, 3.0];
    let sin = [0.479425538604203, 0.8414709848078965, 0.9092974268256817];
    let tanh = [0.46211715726000974, 0.7615941559557649, 0.9640275800758169];
    let cond_known = |i: f64, expected: Vec<f64>| k(vec![vec![i], x.clone(), y.clone()], expected);
    let branch0 = [sin.to_vec(), vec![1.5, 3.0, 5.0]].concat();
    let branch1 = vec![0.5, 2.0, 6.0, -0.5, -1.0, -1.0];
    let sin_y: Vec<f64> = (0..3).map(|i| sin[i] * y[i]).collect();
    let tanh_y: Vec<f64> = (0..3).map(|i| tanh[i] - y[i]).collect();
    let w = vec![0.5, -0.25, 0.0, 0.1, 0.2, 0.3, -0.3, 0.0, 0.4];
    let h0 = vec![0.1, -0.2, 0.3];
    vec![
        OpRow {
            name: "cond",
            prim: cond_prim(f64_),
            avals: cond_avals,
            dtypes: FLOATS,
            domain: Real,
            tol: (2e-6, 1e-15),
            known: vec![
                cond_known(0.0, branch0.clone()),
                cond_known(1.0, branch1.clone()),
                // the index is clamped to the branches
                cond_known(-3.0, branch0),
                cond_known(4.0, branch1),
            ],
            rejects: vec![
                (
                    vec![av(&[], f64_), av(&[3], f64_), av(&[3], f64_)],
                    "the index must be an i32 scalar, got f64[]",
                ),
                (
                    vec![index(), av(&[4], f64_), av(&[3], f64_)],
                    "branch 0 takes (f64[3], f64[3]) but the operands are (f64[4], f64[3])",
                ),
                (vec![], "takes an index operand, got none"),
            ],
            prim_at: Some(cond_prim),
            fixed: &[(0, &[0.0, 1.0])],
            gen: Gen::Skip,
        },
        OpRow {
            name: "switch",
            prim: switch_prim(f64_),
            avals: cond_avals,
            dtypes: FLOATS,
            domain: Real,
            tol: (2e-6, 1e-15),
            known: vec![
                cond_known(0.0, sin_y.clone()),
                cond_known(1.0, vec![0.5, 2.0, 6.0]),
                cond_known(2.0, tanh_y.clone()),
                cond_known(-1.0, sin_y),
                cond_known(7.0, tanh_y),
            ],
            rejects: vec![(
                vec![index(), av(&[3], f64_)],
                "branch 0 takes (f64[3], f64[3]) but the operands are (f64[3])",
            )],
            prim_at: Some(switch_prim),
            // every branch, and beyond both ends
            fixed: &[(0, &[0.0, 1.0, 2.0, -1.0, 5.0])],
            gen: Gen::Skip,
        },
        OpRow {
            name: "scan",
            prim: scan_prim(f64_),
            avals: scan_avals,
            dtypes: FLOATS,
            domain: Real,
            tol: (2e-6, 1e-14),
            known: vec![k(
                vec![w.clone(), h0.clone(), XS.to_vec()],
                vec![
                    -0.1706859319821407,
                    0.6096723366189186,
                    -0.7307260728895119,
                    0.26852478349901765,
                    0.7352222529158692,
                    0.08186934870217633,
                    1.4407503800516475,
                    0.0,
                    0.2427379020098103,
                    0.19839943535567778,
                    1.92085442857069,
                    0.4758916685306283,
                    -0.03413718639642814,
                    0.24386893464756745,
                    0.8768712874674142,
                ],
            )],
            rejects: vec![
                (
                    vec![av(&[3, 3], f64_), av(&[3], f64_), av(&[5, 3], f64_)],
                    "xs 0 is f64[5,3], but the scan's length is 4",
                ),
                (
                    vec![av(&[3, 3], f64_), av(&[3], DType::F32), av(&[4, 3], f64_)],
                    "the body takes (f64[3,3], f64[3], f64[3]) but the consts, carry and slices of the xs are (f64[3,3], f32[3], f64[3])",
                ),
                (vec![av(&[3, 3], f64_)], "1 consts and 1 carries asked of 1 operands"),
            ],
            prim_at: Some(scan_prim),
            fixed: &[],
            gen: Gen::Skip,
        },
        OpRow {
            name: "scan_reverse",
            prim: scan_rev_prim(f64_),
            avals: scan_rev_avals,
            dtypes: FLOATS,
            domain: Real,
            tol: (2e-6, 1e-14),
            known: vec![k(
                vec![vec![0.25], h0.clone(), XS.to_vec()],
                vec![
                    2.263027716377249,
                    3.878356997770357,
                    2.054571748563299,
                    3.4307560636102377,
                    3.878356997770357,
                    2.054571748563299,
                    3.4307560636102377,
                    1.9831645043705701,
                    1.7328863309523213,
                    1.5994520434527908,
                    0.16864504138238418,
                    0.7034108682846094,
                    0.26766690757933764,
                    0.26999866669333306,
                    0.17008530603082728,
                    -0.10227423327508994,
                ],
            )],
            rejects: vec![(
                vec![av(&[], f64_), av(&[3], f64_), av(&[4, 2], f64_)],
                "the body takes (f64[], f64[3], f64[3]) but the consts, carry and slices of the xs are (f64[], f64[3], f64[2])",
            )],
            prim_at: Some(scan_rev_prim),
            fixed: &[],
            gen: Gen::Skip,
        },
        OpRow {
            name: "scan_no_xs",
            prim: scan_no_xs_prim(f64_),
            avals: scan_no_xs_avals,
            dtypes: FLOATS,
            domain: Real,
            tol: (2e-6, 1e-14),
            known: vec![k(
                vec![vec![0.5, -1.0, 2.0], vec![0.3, 0.6, -0.9]],
                vec![
                    0.2983238141716864,
                    -0.0642619776947796,
                    -1.408758225782639,
                    0.15,
                    -0.6,
                    -1.8,
                    0.1497190662367996,
                    0.2646424733950354,
                    -2.84769526175639,
                    0.1494397068185367,
                    -0.12924296847472908,
                    -2.0032170223757113,
                ],
            )],
            rejects: vec![(
                vec![av(&[3], f64_), av(&[2], f64_)],
                "the body takes (f64[3], f64[3]) but the consts, carry and slices of the xs are (f64[3], f64[2])",
            )],
            prim_at: Some(scan_no_xs_prim),
            fixed: &[],
            gen: Gen::Skip,
        },
    ]
}
