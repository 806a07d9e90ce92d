//! The `scan_rnn` case: an RNN `h = tanh(W h + U x_t + b)` over T = 1000 steps (hidden 128,
//! input 32, f32) through `ferrax::scan` (a loop in the program, never unrolled in Rust), as
//! `jax_suite.py`'s `case_scan_rnn` runs it through `lax.scan`.
//!
//! Metrics, with the peer's names and call pattern: `grad_step` (a jitted gradient of
//! `0.5*sum(h_T^2)` with respect to (W, U, b), xs an argument), `forward_only` (the jitted
//! loss) and `compile_first_call` (a fresh jit's first call: trace + transform + compile +
//! run). Extra fields the pairing script ignores say what `linearize` of the loss keeps:
//! `residual_bytes`, against the reference figure of the stacked carries plus what the body
//! needs per step (`2 * T * H * 4` bytes: the carry entering each step and tanh's derivative
//! at each step), with the residuals that are the function's own inputs (W) counted apart,
//! so the ratio can be read honestly; the full list goes to stderr.

use ferrax::{grad, jit, linearize, scan, DType, Result, Tensor};

use crate::{emit, failed, first_calls, measure, randn, ready};

const T: usize = 1000;
const H: usize = 128;
const D: usize = 32;

type Params = (Tensor, Tensor, Tensor);

/// `0.5 * sum(h_T^2)` where `h_{t+1} = tanh(W h_t + U x_t + b)` from `h_0 = 0`.
fn loss(p: Params, xs: &Tensor) -> Tensor {
    let (w, u, b) = p;
    let h0 = Tensor::zeros(&[H], DType::F32);
    let step = |h: Tensor, x: Tensor| ((w.matmul(&h) + u.matmul(&x) + &b).tanh(), ());
    match scan(step, &h0, xs) {
        Ok((h, ())) => 0.5 * (&h * &h).sum_all(),
        Err(e) => Tensor::from_error(e),
    }
}

/// The largest absolute difference between two trees of tensors of equal shapes.
fn max_abs_diff(a: &Params, b: &Params) -> Result<f64> {
    let pairs = [(&a.0, &b.0), (&a.1, &b.1), (&a.2, &b.2)];
    let mut err = 0f64;
    for (x, y) in pairs {
        let (x, y) = (x.to_vec::<f32>()?, y.to_vec::<f32>()?);
        for (p, q) in x.iter().zip(&y) {
            err = err.max((p - q).abs() as f64);
        }
    }
    Ok(err)
}

pub(crate) fn case_scan_rnn() -> Result<()> {
    let params: Params = (
        randn(71, &[H, H], 0.9 / (H as f64).sqrt()),
        randn(72, &[H, D], 1.0 / (D as f64).sqrt()),
        randn(73, &[H], 0.1),
    );
    let xs = randn(74, &[T, D], 1.0);
    let args = (params.clone(), xs.clone());
    let make = || {
        jit(|(p, xs): (Params, Tensor)| {
            grad(|p: Params| loss(p, &xs), &p).unwrap_or_else(|e| {
                let f = failed(e, 3);
                (f[0].clone(), f[1].clone(), f[2].clone())
            })
        })
    };
    let compile = first_calls(|| {
        let (gw, gu, gb) = make().call(&args)?;
        [gw, gu, gb].iter().try_for_each(ready)
    })?;
    let g = make();
    let step = measure(
        || {
            let (gw, gu, gb) = g.call(&args)?;
            [gw, gu, gb].iter().try_for_each(ready)
        },
        100,
        4.0,
    )?;
    let fwd = jit(|(p, xs): (Params, Tensor)| loss(p, &xs));
    let forward = measure(|| ready(&fwd.call(&args)?), 100, 2.0)?;
    // the compiled gradient against the reference evaluator's (eager) gradient
    let eager = grad(|p: Params| loss(p, &xs), &params)?;
    let err = max_abs_diff(&g.call(&args)?, &eager)?;
    if err > 1e-4 {
        // gradients are O(1) here; f32 rounding over 1000 steps stays near 1e-6
        eprintln!("scan_rnn: compiled and eager gradients differ by {err}");
    }
    // what linearize keeps: stacked per-step values, and the inputs it forwards
    let (_, lin) = linearize(|p: Params| loss(p, &xs), &params)?;
    let bytes = |t: &Tensor| t.aval().map(|a| a.bytes()).unwrap_or(0);
    let inputs = [
        ("W", &params.0),
        ("U", &params.1),
        ("b", &params.2),
        ("xs", &xs),
    ];
    // A residual that shares its buffer with one of the inputs is that input, held by
    // reference (not computed for the map); `num_forwarded` must agree with the count.
    let (mut forwarded, mut n_forwarded) = (0, 0);
    for r in lin.residuals() {
        let ra = r.array()?;
        let mut name = "computed";
        for (n, x) in inputs {
            if ra.shares_buffer(&x.array()?) {
                name = n;
                forwarded += bytes(r);
                n_forwarded += 1;
                break;
            }
        }
        eprintln!(
            "scan_rnn residual {:?} ({name}): {} bytes",
            r.shape(),
            bytes(r)
        );
    }
    if n_forwarded != lin.num_forwarded() {
        eprintln!(
            "scan_rnn: {n_forwarded} residuals share an input's buffer but linearize reports \
             {} forwarded",
            lin.num_forwarded()
        );
    }
    let residual_bytes = lin.residual_bytes();
    let reference = 2 * T * H * 4;
    eprintln!(
        "scan_rnn residual_bytes {residual_bytes} (forwarded inputs {forwarded}); reference \
         2*T*H*4 = {reference}; ratio {:.3} (excluding forwarded {:.3})",
        residual_bytes as f64 / reference as f64,
        (residual_bytes - forwarded) as f64 / reference as f64
    );
    emit(
        "scan_rnn",
        vec![
            ("grad_step", step),
            ("forward_only", forward),
            ("compile_first_call", compile),
        ],
        &format!(
            ", \"T\": {T}, \"hidden\": {H}, \"input\": {D}, \"dtype\": \"f32\", \
             \"max_abs_diff\": {err}, \"residual_bytes\": {residual_bytes}, \
             \"residual_forwarded_bytes\": {forwarded}, \"residual_reference_bytes\": {reference}"
        ),
    );
    Ok(())
}
