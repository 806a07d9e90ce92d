//! The `while_newton` case: elementwise Newton iteration for `sqrt(a)` over 2^16 f32 values
//! with `while_loop`, until `max |x² - a| <= 1e-5` or 50 steps, as `jax_suite.py`'s
//! `case_while_newton` runs it through `lax.while_loop`.
//!
//! Metrics with the peer's names: `forward` (the jitted loop) and `jvp` (the jitted jvp
//! through the loop, with a tangent of ones; JAX differentiates `while_loop` in forward mode
//! only). The loop's trip count is known only when it runs. One metric JAX cannot produce:
//! `grad`, the jitted gradient of the sum of the roots through the loop (reverse mode
//! inside a trace: a counting primal loop, then the transposed `while_linear`, which
//! recomputes the carries it needs), reported beside JAX's `forward`.

use ferrax::{grad, jit, jvp, where_, while_loop, DType, Error, Result, Tensor};

use crate::{emit, measure, ready};

const N: usize = 1 << 16;

fn newton_sqrt(a: &Tensor) -> Tensor {
    let out = while_loop(
        |(x, k): (Tensor, Tensor)| {
            let far = (&x * &x - a).abs().max(&[0]).greater(1e-5);
            where_(&far, k.less(50), Tensor::scalar(false))
        },
        |(x, k): (Tensor, Tensor)| ((&x + a / &x) * 0.5, k + 1),
        &(a.clone(), Tensor::scalar(0i32)),
    );
    match out {
        Ok((x, _)) => x,
        Err(e) => Tensor::from_error(e),
    }
}

pub(crate) fn case_while_newton() -> Result<()> {
    let a = Tensor::random_uniform(11, &[N], 0.5, 4.0, DType::F32);
    let f = jit(|a: Tensor| newton_sqrt(&a));
    let x = f.call(&a)?;
    // every value converged: |x² - a| <= 1e-5 (f32)
    let (xv, av) = (x.to_vec::<f32>()?, a.to_vec::<f32>()?);
    let worst = xv
        .iter()
        .zip(&av)
        .map(|(x, a)| (x * x - a).abs())
        .fold(0f32, f32::max);
    let forward = measure(|| ready(&f.call(&a)?), 200, 3.0)?;
    let t = Tensor::ones(&[N], DType::F32);
    let fj = jit(|(a, t): (Tensor, Tensor)| {
        jvp(|a: Tensor| newton_sqrt(&a), &a, &t)
            .unwrap_or_else(|e| (Tensor::from_error(e.clone()), Tensor::from_error(e)))
    });
    let jvp_m = measure(
        || {
            let (y, dy) = fj.call(&(a.clone(), t.clone()))?;
            ready(&y)?;
            ready(&dy)
        },
        200,
        3.0,
    )?;
    let fg = jit(|a: Tensor| {
        grad(|a: Tensor| newton_sqrt(&a).sum_all(), &a).unwrap_or_else(Tensor::from_error)
    });
    // d/da sqrt(a) = 1 / (2 sqrt(a)), to f32 rounding
    let g = fg.call(&a)?.to_vec::<f32>()?;
    let grad_err = g
        .iter()
        .zip(&av)
        .map(|(g, a)| (g - 0.5 / a.sqrt()).abs() * 2.0 * a.sqrt())
        .fold(0f32, f32::max);
    if grad_err > 1e-3 {
        return Err(Error::Input {
            op: "while_newton".into(),
            msg: format!("the gradient is off by {grad_err} (relative)"),
            loc: None,
        });
    }
    let grad_m = measure(|| ready(&fg.call(&a)?), 200, 3.0)?;
    emit(
        "while_newton",
        vec![("forward", forward), ("jvp", jvp_m), ("grad", grad_m)],
        &format!(", \"n\": {N}, \"dtype\": \"f32\", \"max_residual\": {worst}"),
    );
    Ok(())
}
