//! ferrax's main demonstration (the README's first command).
//!
//! JAX issue #526's function `f(x) = 3 sin(x) + cos(x/2)` at `x = 2` in f64: its value at full
//! precision (shortest round-trip form) and the program traced from the Rust closure, printed
//! in ferrax's jaxpr-like text and read back.

use ferrax::{make_jaxpr, Array, Program, Tensor};

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
    Ok(())
}
