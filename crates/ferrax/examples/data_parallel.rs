//! A data-parallel training step: every member of a named axis holds a shard of the batch,
//! computes the gradient of its own loss, and `pmean` averages the gradients across members.
//!
//! The step is one `named_map` over the axis `dp` (one program per member, an SPMD map);
//! `jit` runs each member on a thread of its own, the `pmean` exchanged through an
//! in-process communicator. The example checks that the data-parallel gradient is the same
//! on every member bit for bit, and equals the named `vmap` of the same step and the
//! single-process gradient of the whole batch to rounding (their matrix products run on
//! batched or whole operands, which sum in another order). Then it trains a few steps and
//! times the step for 1, 2 and 4 members.
//!
//! `cargo run --release -p ferrax --example data_parallel`

use std::time::Instant;

use ferrax::{grad, jit, named_map, pmean, vmap_axes, DType, Tensor, VmapAxes};

const INPUTS: usize = 8;
const HIDDEN: usize = 64;
const BATCH: usize = 2048;

type Params = (Tensor, Tensor, Tensor, Tensor);

/// Mean squared error of a one-hidden-layer tanh network on a shard (`x` [B, I], `y` [B]).
fn loss((w1, b1, w2, b2): Params, x: &Tensor, y: &Tensor) -> Tensor {
    let h = (x.matmul(&w1) + &b1).tanh();
    let p = h.matmul(&w2).reshape(&[-1]) + &b2;
    let e = p - y;
    (&e * &e).mean(&[0])
}

/// The averaged gradient, as every member computes it: its shard's gradient, then `pmean`.
fn member_step(params: &Params, x: &Tensor, y: &Tensor) -> Params {
    let g = grad(|p: Params| loss(p, x, y), params).expect("the loss differentiates");
    (
        pmean(&g.0, "dp"),
        pmean(&g.1, "dp"),
        pmean(&g.2, "dp"),
        pmean(&g.3, "dp"),
    )
}

/// The step on every member: the parameters (the same for all) and the members' shards;
/// every member's averaged gradient, stacked.
fn data_parallel_step((p, xs, ys): (Params, Tensor, Tensor)) -> Params {
    named_map(
        |(x, y): (Tensor, Tensor)| member_step(&p, &x, &y),
        &(xs, ys),
        "dp",
    )
    .expect("the step maps")
}

/// The batch split into `n` shards along a new leading (members') dimension.
fn shards(x: &Tensor, y: &Tensor, n: usize) -> (Tensor, Tensor) {
    let per = (BATCH / n) as isize;
    (
        x.reshape(&[n as isize, per, INPUTS as isize]),
        y.reshape(&[n as isize, per]),
    )
}

fn leaves(p: &Params) -> Vec<f64> {
    [&p.0, &p.1, &p.2, &p.3]
        .iter()
        .flat_map(|t| t.to_vec::<f64>().expect("values"))
        .collect()
}

/// Member `m`'s copy of a stacked tree (every member holds the same gradient).
fn member(p: &Params, m: usize) -> Params {
    let row = |t: &Tensor| {
        let rest: Vec<isize> = t.shape()[1..].iter().map(|&d| d as isize).collect();
        t.slice_axis(0, m, m + 1).reshape(&rest)
    };
    (row(&p.0), row(&p.1), row(&p.2), row(&p.3))
}

/// The median time of 30 calls of `f`, in milliseconds.
fn median_ms(mut f: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..30)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[15]
}

fn main() -> ferrax::Result<()> {
    let x = Tensor::random_normal(1, &[BATCH, INPUTS], DType::F64);
    // a smooth target with a little noise
    let y = (x.sum(&[1]) * 0.3).sin() + Tensor::random_normal(2, &[BATCH], DType::F64) * 0.01;
    let params: Params = (
        Tensor::random_normal(3, &[INPUTS, HIDDEN], DType::F64) * (1.0 / (INPUTS as f64).sqrt()),
        Tensor::zeros(&[HIDDEN], DType::F64),
        Tensor::random_normal(4, &[HIDDEN, 1], DType::F64) * (1.0 / (HIDDEN as f64).sqrt()),
        Tensor::zeros(&[1], DType::F64),
    );
    let single = leaves(&grad(|p: Params| loss(p, &x, &y), &params)?);
    let n_params = single.len();

    println!("data-parallel gradient of an MLP ({n_params} parameters, batch {BATCH})");
    let whole = jit(|(p, x, y): (Params, Tensor, Tensor)| {
        grad(|p: Params| loss(p, &x, &y), &p).expect("the loss differentiates")
    });
    let args = (params.clone(), x.clone(), y.clone());
    println!(
        "  one process, no map: {:.3} ms per gradient (median of 30)",
        median_ms(|| {
            let _ = whole.call(&args);
        })
    );
    for n in [1usize, 2, 4] {
        let (xs, ys) = shards(&x, &y, n);
        let step = jit(data_parallel_step);
        let args = (params.clone(), xs.clone(), ys.clone());
        let g = step.call(&args)?;
        // every member holds the same averaged gradient
        let first = leaves(&member(&g, 0));
        for m in 1..n {
            assert_eq!(leaves(&member(&g, m)), first, "member {m} differs");
        }
        // the named vmap of the same step gives the same bits
        let batched: Params = vmap_axes(
            |(x, y): (Tensor, Tensor)| member_step(&params, &x, &y),
            &(xs.clone(), ys.clone()),
            &VmapAxes::new().axis_name("dp"),
        )?;
        // the named vmap of the same step, and the single-process gradient, to rounding
        let scale = single.iter().fold(0f64, |m, v| m.max(v.abs()));
        let gap = |other: &[f64]| {
            first
                .iter()
                .zip(other)
                .map(|(a, b)| (a - b).abs() / scale)
                .fold(0f64, f64::max)
        };
        let (to_vmap, worst) = (gap(&leaves(&member(&batched, 0))), gap(&single));
        assert!(
            to_vmap < 1e-12,
            "{n} members: {to_vmap} from the named vmap"
        );
        assert!(
            worst < 1e-12,
            "{n} members: {worst} from the single-process gradient"
        );
        let ms = median_ms(|| {
            let _ = step.call(&args);
        });
        // each member hands the communicator its gradient and receives every member's
        let bytes = n * n_params * 8;
        println!(
            "  {n} member(s): {:.3} ms per step (median of 30); the gradient equal on every \
             member, within {to_vmap:.1e} of the named vmap's and {worst:.1e} of the \
             single-process one (relative to its largest entry); {bytes} bytes to every \
             member per step",
            ms
        );
    }

    // a few steps of gradient descent on two members
    let (xs, ys) = shards(&x, &y, 2);
    let step = jit(data_parallel_step);
    let mut p = params;
    let before = loss(p.clone(), &x, &y).to_vec::<f64>()?[0];
    for _ in 0..200 {
        let g = member(&step.call(&(p.clone(), xs.clone(), ys.clone()))?, 0);
        let lr = 0.2;
        p = (
            &p.0 - &g.0 * lr,
            &p.1 - &g.1 * lr,
            &p.2 - &g.2 * lr,
            &p.3 - &g.3 * lr,
        );
    }
    let after = loss(p, &x, &y).to_vec::<f64>()?[0];
    println!("training on 2 members, 200 steps: loss {before:.4} -> {after:.4}");
    assert!(
        after < 0.5 * before,
        "the loss did not fall: {before} -> {after}"
    );
    Ok(())
}
