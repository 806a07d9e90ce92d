//! Training a recurrent network with `grad` of a `scan`.
//!
//! A tanh RNN (16 hidden units) reads noisy sine waves of random phase and frequency one
//! sample at a time and predicts the next sample. The forward pass is one `scan` over the
//! 60 time steps (a loop in the program, never unrolled in Rust), batched over 32
//! sequences. `jit(value_and_grad)` compiles the loss and its gradient once: the gradient
//! runs a primal loop that stacks what each step's derivative needs and a loop in the other
//! direction that carries the hidden state's cotangent, and the optimizer turns the per-step
//! weight-gradient updates into one matrix product after that loop. Adam updates the
//! weights in plain Rust between compiled calls.
//!
//! `cargo run --release -p ferrax --example rnn_train [-- STEPS]`

use ferrax::{jit, make_jaxpr, scan, value_and_grad, Array, DType, Tensor};

const HIDDEN: usize = 16;
const STEPS: usize = 60;
const BATCH: usize = 32;

/// (W [H,H], U [H,1], b [H], V [1,H], c [1]).
type Params = [Tensor; 5];

/// Mean squared error of the one-step-ahead predictions over `xs` ([STEPS+1, BATCH, 1]).
fn loss([w, u, b, v, c]: Params, xs: &Tensor) -> Tensor {
    let inputs = xs.slice_axis(0, 0, STEPS);
    let targets = xs.slice_axis(0, 1, STEPS + 1);
    let h0 = Tensor::zeros(&[BATCH, HIDDEN], DType::F64);
    // one step for the whole batch: h' = tanh(h Wᵀ + x Uᵀ + b), prediction h' Vᵀ + c
    let step = |h: Tensor, x: Tensor| {
        let h = (h.matmul(&w.t()) + x.matmul(&u.t()) + &b).tanh();
        let y = h.matmul(&v.t()) + &c;
        (h, y)
    };
    match scan(step, &h0, &inputs) {
        Ok((_, predictions)) => {
            let e = predictions - targets;
            (&e * &e).mean(&[0, 1, 2])
        }
        Err(e) => Tensor::from_error(e),
    }
}

/// Noisy sine waves `sin(ω t + φ)`, one per column, with ω and φ drawn per sequence.
fn data(seed: u64) -> ferrax::Result<Tensor> {
    let u = Array::random_uniform(seed, &[2, BATCH], 0.0, 1.0, DType::F64)?.to_vec::<f64>()?;
    let noise = Array::random_normal(seed + 1, &[STEPS + 1, BATCH], DType::F64)?.to_vec::<f64>()?;
    let mut v = vec![0.0; (STEPS + 1) * BATCH];
    for t in 0..=STEPS {
        for s in 0..BATCH {
            let (omega, phase) = (0.2 + 0.3 * u[s], std::f64::consts::TAU * u[BATCH + s]);
            v[t * BATCH + s] = (omega * t as f64 + phase).sin() + 0.02 * noise[t * BATCH + s];
        }
    }
    Ok(Tensor::new(Array::from_slice(&v)).reshape(&[STEPS as isize + 1, BATCH as isize, 1]))
}

fn init() -> Params {
    let normal =
        |seed, shape: &[usize], scale: f64| Tensor::random_normal(seed, shape, DType::F64) * scale;
    [
        normal(1, &[HIDDEN, HIDDEN], 0.5 / (HIDDEN as f64).sqrt()),
        normal(2, &[HIDDEN, 1], 0.5),
        Tensor::zeros(&[HIDDEN], DType::F64),
        normal(3, &[1, HIDDEN], 0.5 / (HIDDEN as f64).sqrt()),
        Tensor::zeros(&[1], DType::F64),
    ]
}

/// Adam's moment estimates, one pair per parameter array.
struct Adam {
    m: Vec<Vec<f64>>,
    v: Vec<Vec<f64>>,
    t: i32,
}

impl Adam {
    fn step(&mut self, params: &Params, grads: &Params, lr: f64) -> ferrax::Result<Params> {
        let (b1, b2, eps) = (0.9, 0.999, 1e-8);
        self.t += 1;
        let mut out = params.clone();
        for (i, (p, g)) in params.iter().zip(grads).enumerate() {
            let (mut x, g) = (p.to_vec::<f64>()?, g.to_vec::<f64>()?);
            if self.m.len() <= i {
                self.m.push(vec![0.0; x.len()]);
                self.v.push(vec![0.0; x.len()]);
            }
            let (m, v) = (&mut self.m[i], &mut self.v[i]);
            for k in 0..x.len() {
                m[k] = b1 * m[k] + (1.0 - b1) * g[k];
                v[k] = b2 * v[k] + (1.0 - b2) * g[k] * g[k];
                let mh = m[k] / (1.0 - b1.powi(self.t));
                let vh = v[k] / (1.0 - b2.powi(self.t));
                x[k] -= lr * mh / (vh.sqrt() + eps);
            }
            let shape: Vec<isize> = p.shape().iter().map(|&d| d as isize).collect();
            out[i] = Tensor::new(Array::from_slice(&x)).reshape(&shape);
        }
        Ok(out)
    }
}

fn main() -> ferrax::Result<()> {
    let iterations: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let xs = data(7)?;
    let mut params = init();
    let program = make_jaxpr(|p: Params| loss(p, &xs), &params)?;
    let loops = program
        .eqns
        .iter()
        .filter(|e| e.prim.is_control_flow())
        .count();
    println!(
        "RNN: {HIDDEN} hidden units, {STEPS} steps, batch {BATCH}; the traced loss has {} equations \
         ({loops} of them a scan), whatever the number of steps",
        program.eqns.len()
    );
    let step = jit(|(p, xs): (Params, Tensor)| {
        value_and_grad(|p: Params| loss(p, &xs), &p).unwrap_or_else(|e| {
            let f = Tensor::from_error(e);
            (f.clone(), [f.clone(), f.clone(), f.clone(), f.clone(), f])
        })
    });
    let mut adam = Adam {
        m: vec![],
        v: vec![],
        t: 0,
    };
    let t0 = std::time::Instant::now();
    let mut first = None;
    let mut last = 0.0;
    for it in 0..iterations {
        let (l, g) = step.call(&(params.clone(), xs.clone()))?;
        last = l.item()?;
        first.get_or_insert(last);
        if it % 50 == 0 || it + 1 == iterations {
            println!("step {it:4}: loss {last:.6}");
        }
        params = adam.step(&params, &g, 0.01)?;
    }
    let first = first.unwrap_or(last);
    println!(
        "loss {first:.5} -> {last:.5} in {iterations} steps ({:.2}s, compiled once)",
        t0.elapsed().as_secs_f64()
    );
    // predicting "the next sample equals this one" scores this, for comparison
    let persistence = {
        let (a, b) = (xs.slice_axis(0, 0, STEPS), xs.slice_axis(0, 1, STEPS + 1));
        let e = a - b;
        (&e * &e).mean(&[0, 1, 2]).item()?
    };
    println!("the persistence baseline (predict the current sample) scores {persistence:.5}");
    if iterations >= 300 {
        assert!(
            last < first / 10.0 && last < persistence,
            "the RNN did not learn"
        );
    }
    Ok(())
}
