//! ferrax's main demonstration (the README's first command).
//!
//! JAX issue #526's function `f(x) = 3 sin(x) + cos(x/2)` at `x = 2` in f64: its value at full
//! precision (shortest round-trip form), the program traced from the Rust closure, then the
//! issue's point: `jvp` at tangents 1 and 3 redoes the primal work each time, while
//! `linearize` does it once and returns a linear map applied to each tangent as it arrives,
//! with the same numbers.

use ferrax::{jvp, linearize, make_jaxpr, Array, Program, Tensor};

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
    Ok(())
}
