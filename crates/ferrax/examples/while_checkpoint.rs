//! Reverse mode through `while_loop`, and the memory it takes.
//!
//! 1. The gradient of Newton's iteration for √a, a loop whose trip count depends on `a`,
//!    against the implicit derivative 1 / (2√a) (JAX refuses this gradient).
//! 2. A 10,000-step loop on a 256-float carry, differentiated keeping everything (a tape of
//!    each step's residuals), then at most 100 and 10 carries: what linearization stores,
//!    how many carries the reverse sweep holds at once, how many times it runs the body,
//!    and that the gradients agree bit for bit.
//! 3. `checkpoint` around an RNN step inside `scan`: the residuals the loop stacks, with and
//!    without it.
//!
//! Run with `cargo run --release -p ferrax --example while_checkpoint`; it asserts what it
//! prints.

use std::time::Instant;

use ferrax::{
    checkpoint, grad, linearize, reset_while_linear_stats, scan, while_linear_stats, while_loop,
    while_loop_with, Array, RematPolicy, Result, Tensor, WhileOptions,
};

fn newton_sqrt(a: Tensor) -> Tensor {
    let a = &a;
    let out: Result<(Tensor, Tensor)> = while_loop(
        |(_, step): (Tensor, Tensor)| step.abs().greater(1e-13),
        |(x, _): (Tensor, Tensor)| {
            let next = (&x + a / &x) * 0.5;
            let step = &next - &x;
            (next, step)
        },
        &(a.clone(), Tensor::scalar(1.0f64)),
    );
    out.map(|(x, _)| x).unwrap_or_else(Tensor::from_error)
}

const STEPS: i32 = 10_000;
const WIDTH: usize = 256;

/// sum(y_n) for y ← sin(0.999 y) + 0.001 y, STEPS times, keeping at most `c` carries.
fn long_loop(c: Option<usize>) -> impl Fn(Tensor) -> Tensor {
    move |x: Tensor| {
        let opts = WhileOptions {
            max_checkpoints: c,
            ..WhileOptions::default()
        };
        let out: Result<(Tensor, Tensor)> = while_loop_with(
            |(_, k): (Tensor, Tensor)| k.less(STEPS),
            |(y, k): (Tensor, Tensor)| ((&y * 0.999).sin() + &y * 0.001, k + 1),
            &(x, Tensor::scalar(0i32)),
            opts,
        );
        out.map(|(y, _)| y.sum_all())
            .unwrap_or_else(Tensor::from_error)
    }
}

fn main() -> Result<()> {
    println!("1. grad of Newton's iteration for sqrt(a)");
    for a in [2.0f64, 9.0, 1e4] {
        let g = grad(newton_sqrt, &Tensor::scalar(a))?.item()?;
        let want = 0.5 / a.sqrt();
        println!("   a = {a:>7}: grad {g:.15}  1/(2 sqrt a) {want:.15}");
        assert!((g - want).abs() <= 1e-12 * want);
    }

    println!("2. {STEPS} steps of a {WIDTH}-float carry, reversed");
    let x = Tensor::new(Array::from_vec(
        (0..WIDTH).map(|i| 0.004 * i as f64).collect(),
        &[WIDTH],
    )?);
    let carry_bytes = WIDTH * 8 + 4;
    let mut grads = vec![];
    for c in [None, Some(100), Some(10)] {
        let (_, lin) = linearize(long_loop(c), &x)?;
        reset_while_linear_stats();
        let t = Instant::now();
        let g = grad(long_loop(c), &x)?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let s = while_linear_stats();
        let label = c.map_or("no bound, tape".to_string(), |c| format!("at most {c}"));
        println!(
            "   {label:>12}: stored {} bytes ({:.2} carries), peak {} carries in the sweep, \
             {} body evaluations ({:.2} per step), {} linear steps, grad {ms:.0} ms",
            lin.residual_bytes(),
            lin.residual_bytes() as f64 / carry_bytes as f64,
            s.peak_carries,
            s.body_evals,
            s.body_evals as f64 / STEPS as f64,
            s.linear_steps,
        );
        match c {
            None => {
                // the tape: one cosine of the carry per step, read by the reverse scan
                assert_eq!(lin.residual_bytes(), STEPS as usize * WIDTH * 8);
                assert_eq!(s.body_evals + s.linear_steps, 0);
            }
            Some(c) => {
                assert!(lin.residual_bytes() <= 2 * carry_bytes);
                assert_eq!(s.linear_steps, STEPS as u64);
                assert!(s.peak_carries <= c as u64);
                // r: the least with C(c - 1 + r, r) >= STEPS
                let r = (1u64..)
                    .find(|&r| {
                        let mut b = 1u128;
                        for i in 1..=r {
                            b = b * u128::from(c as u64 - 1 + i) / u128::from(i);
                        }
                        b >= STEPS as u128
                    })
                    .unwrap_or(1);
                println!(
                    "      bound: r = {r}, at most {} body evaluations",
                    r * STEPS as u64
                );
                assert!(s.body_evals <= r * STEPS as u64);
            }
        }
        grads.push(g.array()?);
    }
    assert!(grads.windows(2).all(|w| w[0].same_values(&w[1])));
    println!("   the three gradients agree bit for bit");

    println!("3. checkpoint around an RNN step in a scan of 100 steps");
    let w = Tensor::new(Array::from_vec(
        (0..64 * 64)
            .map(|i| ((i * 37) % 101) as f64 / 1010.0 - 0.05)
            .collect(),
        &[64, 64],
    )?);
    let xs = Tensor::new(Array::from_vec(
        (0..100 * 64)
            .map(|i| ((i * 13) % 29) as f64 / 29.0 - 0.5)
            .collect(),
        &[100, 64],
    )?);
    let step = |w: &Tensor, h: Tensor, x: Tensor| {
        let h = (w.matmul(&h) + &x).tanh();
        let y = (&h * &h).sum_all();
        (h, y)
    };
    let run = |policy: Option<RematPolicy>| {
        let (w, xs) = (w.clone(), xs.clone());
        move |h0: Tensor| -> Tensor {
            let out: Result<(Tensor, Tensor)> = scan(
                |h: Tensor, x: Tensor| match &policy {
                    Some(p) => checkpoint(|(h, x)| step(&w, h, x), p.clone(), &(h, x))
                        .unwrap_or_else(|e| (Tensor::from_error(e.clone()), Tensor::from_error(e))),
                    None => step(&w, h, x),
                },
                &h0,
                &xs,
            );
            out.map(|(_, ys)| ys.sum_all())
                .unwrap_or_else(Tensor::from_error)
        }
    };
    let h0 = Tensor::new(Array::from_vec(vec![0.1; 64], &[64])?);
    let mut sizes = vec![];
    for (name, policy) in [
        ("no checkpoint", None),
        ("save nothing", Some(RematPolicy::Nothing)),
        ("save dots", Some(RematPolicy::Dots)),
    ] {
        let (_, lin) = linearize(run(policy.clone()), &h0)?;
        let g = grad(run(policy), &h0)?.to_vec::<f64>()?;
        println!(
            "   {name:>13}: {} residual bytes, grad[0] {:.15}",
            lin.residual_bytes(),
            g[0]
        );
        sizes.push((lin.residual_bytes(), g));
    }
    assert!(sizes[1].0 < sizes[2].0 && sizes[2].0 <= sizes[0].0);
    for (_, g) in &sizes[1..] {
        for (a, b) in g.iter().zip(&sizes[0].1) {
            assert!((a - b).abs() <= 1e-13 * b.abs().max(1.0));
        }
    }
    Ok(())
}
