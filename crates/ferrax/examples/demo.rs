//! ferrax's main demonstration (the README's first command).
//!
//! JAX issue #526's function `f(x) = 3 sin(x) + cos(x/2)` at `x = 2` in f64: its value at full
//! precision (shortest round-trip form), the program traced from the Rust closure, then the
//! issue's point: `jvp` at tangents 1 and 3 redoes the primal work each time, while
//! `linearize` does it once and returns a linear map applied to each tangent as it arrives,
//! with the same numbers. Then reverse mode as JAX #529 wanted it: the vjp is the transpose
//! of that same linear map (no re-linearization), and a Gauss-Newton product `Jᵀ J v` for a
//! small least-squares model costs linear work only, checked against the explicit `Jᵀ J`.
//! And when all tangents are known up front, `vmap(pushfwd, out_axes=(None, 0))` computes
//! them in one batched pass, with the same numbers as the linear map applied in a loop.

use ferrax::{
    eval_counts, gauss_newton, grad, jacfwd, jvp, linearize, make_jaxpr, reset_eval_counts,
    vmap_axes, Array, Program, Tensor, VmapAxes,
};

fn f(x: Tensor) -> Tensor {
    3.0 * x.sin() + (&x / 2.0).cos()
}

fn main() -> ferrax::Result<()> {
    let x = Tensor::scalar(2.0f64);
    println!("f(x) = 3 sin(x) + cos(x/2)   at x = 2 (f64)");
    let eager = f(x.clone()).item()?;
    println!("f(2) eager             = {eager:?}");

    let program = make_jaxpr(f, &x)?;
    println!("\ntraced program:\n{program}");
    let traced = program.eval(&[Array::scalar(2.0f64)])?[0].item()?.to_f64();
    println!("\nf(2) from the program  = {traced:?}");
    let reread = Program::parse(&program.to_string())?;
    println!(
        "program text reads back identically: {}",
        reread.to_string() == program.to_string()
    );
    assert_eq!(
        eager.to_bits(),
        traced.to_bits(),
        "eager and traced agree bit for bit"
    );

    println!("\n-- jvp: the pushforward, primal work redone for each tangent --");
    let mut by_jvp = vec![];
    for t in [1.0f64, 3.0] {
        let (y, dy) = jvp(f, &x, &Tensor::scalar(t))?;
        println!(
            "jvp(f, 2, {t:?})       = ({:?}, {:?})",
            y.item()?,
            dy.item()?
        );
        by_jvp.push(dy.item()?);
    }

    println!("\n-- linearize once, then apply the linear map to each tangent --");
    let (y, f_jvp) = linearize(f, &x)?;
    println!("f(2)                   = {:?}", y.item()?);
    println!(
        "linear map: {} residual(s), {} bytes; its program:\n{f_jvp}",
        f_jvp.num_residuals(),
        f_jvp.residual_bytes()
    );
    for (t, want) in [1.0f64, 3.0].into_iter().zip(&by_jvp) {
        let dy: Tensor = f_jvp.apply(&Tensor::scalar(t))?;
        println!("f_jvp({t:?})            = {:?}", dy.item()?);
        assert_eq!(
            dy.item()?.to_bits(),
            want.to_bits(),
            "linearize agrees with jvp"
        );
    }
    println!(
        "analytic f'(2)         = {:?}",
        3.0 * 2f64.cos() - 0.5 * 1f64.sin()
    );

    println!("\n-- all tangents up front: vmap(pushfwd, out_axes=(None, 0)) --");
    // A failure inside the mapped function comes back from vmap_axes as an Err.
    let pushfwd = |t: Tensor| {
        jvp(f, &x, &t).unwrap_or_else(|e| (Tensor::from_error(e.clone()), Tensor::from_error(e)))
    };
    let tangents = Tensor::new(Array::from_slice(&[1.0f64, 3.0]));
    let axes = VmapAxes::new().out_axes(&[None, Some(0)]);
    let (y_once, dys): (Tensor, Tensor) = vmap_axes(pushfwd, &tangents, &axes)?;
    println!(
        "vmap(pushfwd)([1, 3])  = ({:?}, {:?})",
        y_once.item()?,
        dys.to_vec::<f64>()?
    );
    let looped: Vec<f64> = [1.0f64, 3.0]
        .iter()
        .map(|&t| {
            let d: Tensor = f_jvp.apply(&Tensor::scalar(t))?;
            d.item()
        })
        .collect::<ferrax::Result<_>>()?;
    println!("f_jvp in a loop        = {looped:?}");
    assert_eq!(dys.to_vec::<f64>()?, looped, "vmap agrees with the loop");

    println!("\n-- reverse mode: the vjp is the transpose of the same linear map --");
    let f_vjp = f_jvp.transpose()?;
    println!(
        "transposed program (same {} residuals):\n{f_vjp}",
        f_vjp.num_residuals()
    );
    let ct: Tensor = f_vjp.apply(&Tensor::scalar(1.0f64))?;
    let g = grad(f, &x)?;
    println!("f_vjp(1.0)             = {:?}", ct.item()?);
    println!("grad(f)(2)             = {:?}", g.item()?);
    println!(
        "transposing again gives back the original map: {}",
        f_vjp.transpose()?.same_map(&f_jvp)
    );

    println!("\n-- Gauss-Newton product Jᵀ J v from one linearization --");
    // r_i(p) = a exp(-b t_i) + c - y_i, three parameters, six observations.
    let t = Tensor::new(Array::from_slice(&[0.0f64, 0.5, 1.0, 1.5, 2.0, 3.0]));
    let y = Tensor::new(Array::from_slice(&[3.1f64, 2.2, 1.7, 1.3, 1.1, 0.9]));
    let residual =
        |p: Tensor| p.index_axis(0, 0) * (-p.index_axis(0, 1) * &t).exp() + p.index_axis(0, 2) - &y;
    let p = Tensor::new(Array::from_slice(&[2.5f64, 0.8, 0.6]));
    let gn = gauss_newton(residual, &p)?;
    let v = Tensor::new(Array::from_slice(&[1.0f64, -0.5, 0.25]));
    reset_eval_counts();
    let jtjv: Tensor = gn.apply(&v)?;
    let exps = eval_counts().get("exp").copied().unwrap_or(0);
    let j = jacfwd(residual, &p)?;
    let explicit = j.t().matmul(&j).matmul(&v);
    println!("Jᵀ J v (one linearization) = {:?}", jtjv.to_vec::<f64>()?);
    println!(
        "Jᵀ J v (explicit jacfwd)   = {:?}",
        explicit.to_vec::<f64>()?
    );
    println!("exp evaluated during the product: {exps} times");
    let diff = (&jtjv - &explicit).abs().max(&[0]).item()?;
    assert!(diff < 1e-12, "Gauss-Newton product disagrees by {diff}");
    assert_eq!(exps, 0, "the product does no primal work");
    Ok(())
}
