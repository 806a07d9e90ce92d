//! Data parallelism across processes (feature `mpi`): every process of an MPI job holds a
//! slice of the data and the collectives (`psum`) cross processes.
//!
//! 1. **An MLP training step**: each process computes the gradient of its shard's loss and
//!    `psum` adds the gradients. Checked on every process: the gradient equals, bit for
//!    bit, member `rank` of the in-process `named_map` of the same step (threads), and the
//!    whole batch's gradient to rounding; then a few steps train, timed.
//! 2. **A Gauss-Newton-CG fit** of a sum of Gaussian peaks to 131,072 noisy samples: each
//!    process holds a slice of the residuals and linearizes its residual function once per
//!    outer step; conjugate gradients solve `(Σ Jᵣᵀ Jᵣ + λ I) δ = −Σ Jᵣᵀ rᵣ`, every product
//!    summed across processes with `psum`. Checked: the parameters agree with the same
//!    solve in one process, and with the true ones to the noise.
//!
//! Each part prints its timings and the bytes this process's collectives moved per step.
//!
//! ```sh
//! cargo build --release -p ferrax-solvers --features mpi --example mpi_data_parallel
//! mpirun --allow-run-as-root --oversubscribe -np 2 target/release/examples/mpi_data_parallel
//! ```

use std::time::Instant;

use ferrax::{gauss_newton, grad, jit, named_map, psum, DType, MpiAxis, Tensor};
use ferrax_solvers::{conjugate_gradient, CgOptions, LinearOperator, Result};

const INPUTS: usize = 8;
const HIDDEN: usize = 64;
const BATCH: usize = 4096;

type Params = (Tensor, Tensor, Tensor, Tensor);

/// The squared error of a one-hidden-layer tanh network on a shard, over the whole batch's
/// size (so the shards' losses add up to the batch's mean).
fn loss((w1, b1, w2, b2): Params, x: &Tensor, y: &Tensor) -> Tensor {
    let h = (x.matmul(&w1) + &b1).tanh();
    let e = h.matmul(&w2).reshape(&[-1]) + &b2 - y;
    (&e * &e).sum_all() * (1.0 / BATCH as f64)
}

/// One member's step: the batch's loss and gradient, summed over the members.
fn member_step(p: &Params, x: &Tensor, y: &Tensor) -> (Tensor, Params) {
    let l = loss(p.clone(), x, y);
    let g = grad(|p: Params| loss(p, x, y), p).expect("the loss differentiates");
    let s = |t: &Tensor| psum(t, "dp");
    (s(&l), (s(&g.0), s(&g.1), s(&g.2), s(&g.3)))
}

fn flat(p: &Params) -> Vec<f64> {
    [&p.0, &p.1, &p.2, &p.3]
        .iter()
        .flat_map(|t| t.to_vec::<f64>().expect("f64 values"))
        .collect()
}

/// Row `m` of a stacked value.
fn row(t: &Tensor, m: usize) -> Tensor {
    let rest: Vec<isize> = t.shape()[1..].iter().map(|&d| d as isize).collect();
    t.slice_axis(0, m, m + 1).reshape(&rest)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn mlp_step(axis: &MpiAxis) -> Result<()> {
    let (n, rank) = (axis.size(), axis.rank());
    let x = Tensor::random_normal(1, &[BATCH, INPUTS], DType::F64);
    let y = (x.sum(&[1]) * 0.3).sin() + Tensor::random_normal(2, &[BATCH], DType::F64) * 0.01;
    let mut params: Params = (
        Tensor::random_normal(3, &[INPUTS, HIDDEN], DType::F64) * (1.0 / (INPUTS as f64).sqrt()),
        Tensor::zeros(&[HIDDEN], DType::F64),
        Tensor::random_normal(4, &[HIDDEN, 1], DType::F64) * (1.0 / (HIDDEN as f64).sqrt()),
        Tensor::zeros(&[1], DType::F64),
    );
    let rows = axis.rows(BATCH);
    let shard = (
        x.slice_axis(0, rows.start, rows.end),
        y.slice_axis(0, rows.start, rows.end),
    );
    let step = axis.jit(|(p, x, y): (Params, Tensor, Tensor)| member_step(&p, &x, &y));
    let (_, g) = step.call(&(params.clone(), shard.0.clone(), shard.1.clone()))?;

    // the in-process map of the same step (members on threads): the same bits
    let per = (BATCH / n) as isize;
    let stacked = (
        x.reshape(&[n as isize, per, INPUTS as isize]),
        y.reshape(&[n as isize, per]),
    );
    let map = jit(|(p, xs, ys): (Params, Tensor, Tensor)| {
        named_map(
            |(x, y): (Tensor, Tensor)| member_step(&p, &x, &y),
            &(xs, ys),
            "dp",
        )
        .expect("the step maps")
    });
    let (_, gm) = map.call(&(params.clone(), stacked.0, stacked.1))?;
    let member = (
        row(&gm.0, rank),
        row(&gm.1, rank),
        row(&gm.2, rank),
        row(&gm.3, rank),
    );
    let bits = |v: Vec<f64>| v.into_iter().map(f64::to_bits).collect::<Vec<_>>();
    assert_eq!(
        bits(flat(&g)),
        bits(flat(&member)),
        "process {rank}: MPI vs threads"
    );
    // and the whole batch's gradient in one process, to rounding
    let whole = flat(&grad(|p: Params| loss(p, &x, &y), &params)?);
    let scale = whole.iter().fold(0f64, |m, v| m.max(v.abs()));
    let gap = flat(&g)
        .iter()
        .zip(&whole)
        .fold(0f64, |m, (a, b)| m.max((a - b).abs() / scale));
    assert!(
        gap < 1e-13,
        "process {rank}: {gap:e} from the whole batch's gradient"
    );

    // train: every process applies the same summed gradient, so the parameters stay equal
    let mut times = vec![];
    let mut first_loss = None;
    let mut last_loss = 0.0;
    let before = axis.traffic();
    const STEPS: usize = 30;
    for _ in 0..STEPS {
        let t = Instant::now();
        let (l, g) = step.call(&(params.clone(), shard.0.clone(), shard.1.clone()))?;
        let lr = 0.1;
        params = (
            &params.0 - &g.0 * lr,
            &params.1 - &g.1 * lr,
            &params.2 - &g.2 * lr,
            &params.3 - &g.3 * lr,
        );
        times.push(t.elapsed().as_secs_f64() * 1e3);
        last_loss = l.item()?;
        first_loss.get_or_insert(last_loss);
    }
    let moved = axis.traffic();
    let first_loss = first_loss.unwrap_or(last_loss);
    assert!(
        last_loss < 0.8 * first_loss,
        "training lowers the loss: {first_loss} -> {last_loss}"
    );
    if rank == 0 {
        println!(
            "MLP step, {n} process(es), batch {BATCH} ({} rows each), {} parameters:",
            rows.len(),
            flat(&params).len()
        );
        println!(
            "  gradient = in-process named_map bit for bit, whole batch to {gap:.1e}; \
             loss {first_loss:.4} -> {last_loss:.4} in {STEPS} steps"
        );
        println!(
            "  step {:.3} ms (median of {STEPS}); per step {} collectives, {} bytes sent, {} \
             received by each process",
            median(times),
            (moved.collectives - before.collectives) / STEPS as u64,
            (moved.bytes_sent - before.bytes_sent) / STEPS as u64,
            (moved.bytes_received - before.bytes_received) / STEPS as u64,
        );
    }
    Ok(())
}

// ---------------------------------------------------------------- Gauss-Newton-CG

const PEAKS: usize = 4;
const SAMPLES: usize = 131_072;

/// A sum of Gaussian peaks at `t`: parameters `[height, centre, log width]` per peak.
fn peaks(p: &Tensor, t: &Tensor) -> Tensor {
    let p = p.reshape(&[PEAKS as isize, 3]);
    let (a, mu, s) = (p.index_axis(1, 0), p.index_axis(1, 1), p.index_axis(1, 2));
    let d = (t.reshape(&[-1, 1]) - mu.reshape(&[1, -1])) / s.exp().reshape(&[1, -1]);
    ((&d * &d) * -0.5).exp().matmul(&a)
}

/// `(Σ Jᵣᵀ Jᵣ + λ I) v`: the local Gauss-Newton product, summed across processes.
struct Damped<'a> {
    gn: &'a ferrax::GaussNewton,
    sum: &'a dyn Fn(Tensor) -> ferrax::Result<Tensor>,
    lambda: f64,
}

impl LinearOperator for Damped<'_> {
    fn dim(&self) -> usize {
        3 * PEAKS
    }
    fn apply(&self, v: &[f64]) -> Result<Vec<f64>> {
        let jtjv: Tensor = self.gn.apply(&Tensor::from_vec(v.to_vec(), &[v.len()]))?;
        let s = (self.sum)(jtjv)?.to_vec::<f64>()?;
        Ok(s.iter().zip(v).map(|(a, b)| a + self.lambda * b).collect())
    }
}

struct Fit {
    params: Vec<f64>,
    cost: f64,
    steps: usize,
    linearizations: usize,
    products: usize,
}

/// Levenberg-damped Gauss-Newton with CG inner solves on this process's samples; `sum` adds
/// a value over the processes (the identity in one process).
fn fit(
    t: &Tensor,
    y: &Tensor,
    start: &[f64],
    sum: &dyn Fn(Tensor) -> ferrax::Result<Tensor>,
) -> Result<Fit> {
    let residual = |p: Tensor| peaks(&p, t) - y;
    let half_sq = jit(|p: Tensor| {
        let r = peaks(&p, t) - y;
        (&r * &r).sum_all() * 0.5
    });
    let cost = |p: &[f64]| -> Result<f64> {
        let local = half_sq.call(&Tensor::from_vec(p.to_vec(), &[p.len()]))?;
        Ok(sum(local)?.item()?)
    };
    let (mut p, mut lambda) = (start.to_vec(), 1e-3);
    let mut c = cost(&p)?;
    let (mut steps, mut linearizations, mut products) = (0, 0, 0);
    // an inexact Newton step: CG to 1e-8 of the gradient, at most 4 × 12 products
    let opts = CgOptions {
        tol: 1e-8,
        max_iterations: 48,
    };
    while steps < 50 {
        steps += 1;
        let x = Tensor::from_vec(p.clone(), &[p.len()]);
        let gn = gauss_newton(residual, &x)?; // one linearization per process per step
        linearizations += 1;
        let g = sum(gn.gradient::<Tensor>()?)?.to_vec::<f64>()?;
        let b: Vec<f64> = g.iter().map(|v| -v).collect();
        // retry with more damping until the cost falls; the linearization is reused
        let mut improved = None;
        for _ in 0..20 {
            let op = Damped {
                gn: &gn,
                sum,
                lambda,
            };
            let solve = conjugate_gradient(&op, &b, &opts)?;
            products += solve.products;
            let trial: Vec<f64> = p.iter().zip(&solve.x).map(|(a, d)| a + d).collect();
            let ct = cost(&trial)?;
            if ct < c {
                lambda = (lambda / 3.0).max(1e-12);
                improved = Some((trial, ct));
                break;
            }
            lambda *= 4.0;
        }
        let Some((trial, ct)) = improved else { break };
        let done = (c - ct) <= 1e-12 * c;
        (p, c) = (trial, ct);
        if done {
            break;
        }
    }
    Ok(Fit {
        params: p,
        cost: c,
        steps,
        linearizations,
        products,
    })
}

fn gauss_newton_cg(axis: &MpiAxis) -> Result<()> {
    let rank = axis.rank();
    let truth: Vec<f64> = [
        [1.0, 2.0, -1.2],
        [0.6, 4.0, -0.5],
        [1.4, 6.5, -1.6],
        [0.8, 8.0, -0.9],
    ]
    .concat();
    let t = Tensor::linspace(0.0, 10.0, SAMPLES, DType::F64);
    let noise = Tensor::random_normal(21, &[SAMPLES], DType::F64) * 0.01;
    let y = peaks(&Tensor::from_vec(truth.clone(), &[truth.len()]), &t) + noise;
    let start: Vec<f64> = truth
        .chunks(3)
        .flat_map(|q| [q[0] * 0.7, q[1] + 0.25, q[2] + 0.3])
        .collect();

    let rows = axis.rows(SAMPLES);
    let (tl, yl) = (
        t.slice_axis(0, rows.start, rows.end),
        y.slice_axis(0, rows.start, rows.end),
    );
    let all_sum = axis.jit(|v: Tensor| psum(&v, "dp"));
    let sum = |v: Tensor| all_sum.call(&v);
    let before = axis.traffic();
    let clock = Instant::now();
    let here = fit(&tl, &yl, &start, &sum)?;
    let took = clock.elapsed().as_secs_f64();
    let moved = axis.traffic();

    // the same solve in one process, on every sample
    let clock = Instant::now();
    let single = fit(&t, &y, &start, &|v| Ok(v))?;
    let took_single = clock.elapsed().as_secs_f64();
    let gap = here
        .params
        .iter()
        .zip(&single.params)
        .fold(0f64, |m, (a, b)| m.max((a - b).abs() / b.abs().max(1.0)));
    assert!(
        gap < 1e-7,
        "process {rank}: {gap:e} from the one-process fit"
    );
    let err = here
        .params
        .iter()
        .zip(&truth)
        .fold(0f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(err < 0.01, "process {rank}: {err} from the true parameters");
    // the cost is at the noise floor: ½ Σ ε² ≈ ½ N σ²
    let floor = 0.5 * SAMPLES as f64 * 1e-4;
    assert!(
        (here.cost / floor - 1.0).abs() < 0.05,
        "cost {} vs noise {floor}",
        here.cost
    );
    if rank == 0 {
        println!(
            "Gauss-Newton-CG fit, {} process(es), {SAMPLES} residuals ({} each), {} parameters:",
            axis.size(),
            rows.len(),
            truth.len()
        );
        println!(
            "  {} outer steps, {} linearizations per process, {} CG products; cost {:.4} \
             (noise floor {floor:.4}); max error {err:.1e}; one-process fit {gap:.1e} away",
            here.steps, here.linearizations, here.products, here.cost
        );
        let per = (moved.bytes_received - before.bytes_received) / here.steps as u64;
        println!(
            "  {:.1} ms in all, {:.2} ms per CG product (one process on every sample, no MPI: \
             {:.1} ms, {:.2} ms per product); {} collectives, {per} bytes received by each \
             process per outer step",
            took * 1e3,
            took * 1e3 / here.products as f64,
            took_single * 1e3,
            took_single * 1e3 / single.products as f64,
            moved.collectives - before.collectives
        );
    }
    Ok(())
}

fn main() {
    let axis = match MpiAxis::init("dp") {
        Ok(a) => a,
        Err(e) => {
            eprintln!("MPI did not start: {e}");
            std::process::exit(2);
        }
    };
    if !BATCH.is_multiple_of(axis.size()) {
        eprintln!("run with a number of processes that divides {BATCH} (1, 2, 4, ...)");
        axis.abort(2);
    }
    let run = mlp_step(&axis).and_then(|()| gauss_newton_cg(&axis));
    if let Err(e) = run {
        eprintln!("process {}: {e}", axis.rank());
        axis.abort(1);
    }
}
