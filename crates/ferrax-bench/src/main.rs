//! ferrax's side of the peer benchmark (`../shared/bench/README.md`): the same cases,
//! shapes, dtypes (f32) and call patterns as `jax_suite.py`, printing the
//! same JSON lines (one per case: `{"case": .., "metrics": {NAME: {"median_ms", "min_ms",
//! "n", ..}}}`) so that `compare.py` can pair them.
//!
//! `ferrax-bench [--quick] [--case NAME]... [--threads N] [--list]`
//!
//! Every timed function is warmed up (traced, compiled and run) before sampling, and every
//! sample ends with the result's values materialized (ferrax computes synchronously).
//! Inputs are seeded (ChaCha8), so runs repeat; they are not numpy's numbers, only the same
//! shapes and distributions.

use std::time::Instant;

use ferrax::{
    grad, jit, jit_linearize, jvp, linear_map, vjp, vmap, DType, Error, LinearMap, Result, Tensor,
};

mod scan_rnn;
mod while_newton;

static mut QUICK: bool = false;

fn quick() -> bool {
    // SAFETY: written once in main before any case runs, read-only afterwards.
    unsafe { QUICK }
}

struct Metric {
    median_ms: f64,
    min_ms: f64,
    n: usize,
    extra: Vec<(&'static str, f64)>,
}

impl Metric {
    /// Median and minimum of at least one sample (ms).
    fn of(mut samples: Vec<f64>) -> Metric {
        let min = samples.iter().cloned().fold(f64::INFINITY, f64::min);
        samples.sort_by(|a, b| a.total_cmp(b));
        let n = samples.len();
        let median = if n % 2 == 1 {
            samples[n / 2]
        } else {
            0.5 * (samples[n / 2 - 1] + samples[n / 2])
        };
        Metric {
            median_ms: median,
            min_ms: min,
            n,
            extra: vec![],
        }
    }
    fn json(&self) -> String {
        let mut s = format!(
            "{{\"median_ms\": {}, \"min_ms\": {}, \"n\": {}",
            self.median_ms, self.min_ms, self.n
        );
        for (k, v) in &self.extra {
            s.push_str(&format!(", \"{k}\": {v}"));
        }
        s.push('}');
        s
    }
    fn with(mut self, k: &'static str, v: f64) -> Metric {
        self.extra.push((k, v));
        self
    }
}

/// Times `f` (warmed up first): samples until `repeats` or `max_s` seconds (at least 5).
fn measure(mut f: impl FnMut() -> Result<()>, repeats: usize, max_s: f64) -> Result<Metric> {
    let (repeats, max_s) = if quick() {
        ((repeats / 4).max(5), max_s / 4.0)
    } else {
        (repeats, max_s)
    };
    for _ in 0..2 {
        f()?;
    }
    let mut samples = vec![];
    let start = Instant::now();
    while samples.len() < repeats {
        let t0 = Instant::now();
        f()?;
        samples.push(t0.elapsed().as_secs_f64() * 1e3);
        if samples.len() >= 5 && start.elapsed().as_secs_f64() > max_s {
            break;
        }
    }
    Ok(Metric::of(samples))
}

/// Compile time: `first_call` (which must make a fresh jitted function and call it once:
/// trace + transform + optimize + plan + run) timed 3 times (2 with `--quick`), as the peer
/// times a new `jax.jit` each repetition. The first repetition is also reported alone.
fn first_calls(mut first_call: impl FnMut() -> Result<()>) -> Result<Metric> {
    let mut firsts = vec![];
    for _ in 0..if quick() { 2 } else { 3 } {
        let t0 = Instant::now();
        first_call()?;
        firsts.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    let first_ever = firsts[0];
    Ok(Metric::of(firsts).with("first_ever_ms", first_ever))
}

fn emit(case: &str, metrics: Vec<(&str, Metric)>, extra: &str) {
    let ms: Vec<String> = metrics
        .iter()
        .map(|(k, m)| format!("\"{k}\": {}", m.json()))
        .collect();
    println!(
        "{{\"case\": \"{case}\", \"metrics\": {{{}}}{extra}}}",
        ms.join(", ")
    );
}

/// Materializes a tensor's values (the analogue of `block_until_ready`).
fn ready(t: &Tensor) -> Result<()> {
    t.array().map(|_| ())
}

fn randn(seed: u64, shape: &[usize], scale: f64) -> Tensor {
    Tensor::random_normal(seed, shape, DType::F32) * scale
}

/// Failed tensors in place of a tree of `n` leaves (so a closure can hand an error out).
fn failed(e: Error, n: usize) -> Vec<Tensor> {
    vec![Tensor::from_error(e); n]
}

// ---- models ----

fn init_mlp(seed: u64, sizes: &[usize]) -> Vec<Tensor> {
    let mut p = vec![];
    for (i, w) in sizes.windows(2).enumerate() {
        p.push(randn(
            seed * 100 + 2 * i as u64,
            &[w[0], w[1]],
            1.0 / (w[0] as f64).sqrt(),
        ));
        p.push(randn(seed * 100 + 2 * i as u64 + 1, &[w[1]], 0.1));
    }
    p
}

fn mlp_apply(params: &[Tensor], x: &Tensor) -> Tensor {
    let mut h = x.clone();
    let layers = params.len() / 2;
    for i in 0..layers {
        h = h.matmul(&params[2 * i]) + &params[2 * i + 1];
        if i < layers - 1 {
            h = h.tanh();
        }
    }
    h
}

fn mlp_loss(params: &[Tensor], x: &Tensor, y: &Tensor) -> Tensor {
    let out = mlp_apply(params, x);
    0.5 * (&out - y).powi(2).sum(&[-1]).mean(&[0])
}

fn chain_apply(params: &[Tensor], x: &Tensor) -> Tensor {
    let mut h = x.clone();
    for i in 0..params.len() / 2 {
        h = (params[2 * i].matmul(&h) + &params[2 * i + 1]).tanh();
    }
    h
}

// ---- cases ----

fn case_eager_dispatch() -> Result<()> {
    let n_ops = 1000;
    let x0 = Tensor::scalar(1.0f32);
    let a = Tensor::scalar(0.999f32);
    let b = Tensor::scalar(0.001f32);
    let eager = measure(
        || {
            let mut y = x0.clone();
            for _ in 0..n_ops / 2 {
                y = &y * &a;
                y = &y + &b;
            }
            ready(&y)
        },
        100,
        4.0,
    )?;
    let v0 = Tensor::ones(&[16], DType::F32);
    let vec16 = measure(
        || {
            let mut y = v0.clone();
            for _ in 0..n_ops / 2 {
                y = &y * &a;
                y = &y + &b;
            }
            ready(&y)
        },
        60,
        2.0,
    )?;
    let f = jit(|(y, a, b): (Tensor, Tensor, Tensor)| &y * &a + &b);
    let calls = measure(
        || {
            let mut y = x0.clone();
            for _ in 0..n_ops {
                y = f.call(&(y, a.clone(), b.clone()))?;
            }
            ready(&y)
        },
        60,
        2.0,
    )?;
    let per = |m: &Metric| m.median_ms * 1e3 / n_ops as f64;
    let (e, v, c) = (per(&eager), per(&vec16), per(&calls));
    emit(
        "eager_dispatch",
        vec![
            ("eager_1000_scalar_ops", eager.with("us_per_op", e)),
            ("eager_1000_ops_vec16", vec16.with("us_per_op", v)),
            ("jit_tiny_fn_1000_calls", calls.with("us_per_call", c)),
        ],
        &format!(", \"n_ops\": {n_ops}"),
    );
    Ok(())
}

fn mlp_setup() -> (Vec<Tensor>, Tensor, Tensor) {
    let (width, batch, depth) = (256, 128, 4);
    let params = init_mlp(1, &vec![width; depth + 1]);
    (
        params,
        randn(21, &[batch, width], 1.0),
        randn(22, &[batch, width], 1.0),
    )
}

type Args3 = (Vec<Tensor>, Tensor, Tensor);

fn case_mlp_grad_jit() -> Result<()> {
    let (params, x, y) = mlp_setup();
    let np = params.len();
    let make = move || {
        jit(move |(p, x, y): Args3| {
            grad(|p: Vec<Tensor>| mlp_loss(&p, &x, &y), &p).unwrap_or_else(|e| failed(e, np))
        })
    };
    let args = (params.clone(), x.clone(), y.clone());
    let compile = first_calls(|| {
        let out = make().call(&args)?;
        out.iter().try_for_each(ready)
    })?;
    let g = make();
    let step = measure(
        || {
            let out = g.call(&args)?;
            out.iter().try_for_each(ready)
        },
        400,
        4.0,
    )?;
    let (b, d, l) = (128.0, 256.0, 4.0);
    let gflops = 3.0 * 2.0 * b * d * d * l / (step.median_ms * 1e-3) / 1e9;
    let fwd = jit(|(p, x, y): Args3| mlp_loss(&p, &x, &y));
    let fwd_m = measure(|| ready(&fwd.call(&args)?), 400, 2.0)?;
    emit(
        "mlp_grad_jit",
        vec![
            ("grad_step", step.with("gflops_3x_fwd", gflops)),
            ("forward_loss_only", fwd_m),
            ("compile_first_call", compile),
        ],
        ", \"width\": 256, \"batch\": 128, \"layers\": 4, \"dtype\": \"f32\"",
    );
    Ok(())
}

fn chain_setup(depth: usize, width: usize, k: usize) -> (Vec<Tensor>, Tensor, Tensor) {
    let mut params = vec![];
    for i in 0..depth {
        params.push(randn(
            300 + 2 * i as u64,
            &[width, width],
            1.0 / (width as f64).sqrt(),
        ));
        params.push(randn(301 + 2 * i as u64, &[width], 0.1));
    }
    (
        params,
        randn(31, &[width], 1.0),
        randn(32, &[k, width], 1.0),
    )
}

fn case_linearize_vs_jvp() -> Result<()> {
    let (depth, width, k) = (32, 512, 32);
    let (params, x, tt) = chain_setup(depth, width, k);
    let tangents: Vec<Tensor> = (0..k).map(|i| tt.index_axis(0, i)).collect();
    // (a) k calls of jit(jvp): the primal is recomputed every call
    let jvp_fn = jit(|(p, x, t): Args3| {
        jvp(|x: Tensor| chain_apply(&p, &x), &x, &t)
            .map(|r| r.1)
            .unwrap_or_else(Tensor::from_error)
    });
    let run_a = || -> Result<Vec<Tensor>> {
        tangents
            .iter()
            .map(|t| {
                let d = jvp_fn.call(&(params.clone(), x.clone(), t.clone()))?;
                ready(&d)?;
                Ok(d)
            })
            .collect()
    };
    // (b) linearize once (compiled) + k applications of the linear map (cached plan)
    let lin_fn = jit_linearize(|x: Tensor| chain_apply(&params, &x));
    let run_b = || -> Result<Vec<Tensor>> {
        let (_, f_jvp) = lin_fn.call(&x)?;
        tangents
            .iter()
            .map(|t| {
                let d: Tensor = f_jvp.apply(t)?;
                ready(&d)?;
                Ok(d)
            })
            .collect()
    };
    // (c) all k tangents at once: vmap of jvp
    let vjvp = jit(|(p, x, t): Args3| {
        vmap(
            |t: Tensor| {
                jvp(|x: Tensor| chain_apply(&p, &x), &x, &t)
                    .map(|r| r.1)
                    .unwrap_or_else(Tensor::from_error)
            },
            &t,
        )
        .unwrap_or_else(Tensor::from_error)
    });
    // correctness cross-check
    let (ra, rb) = (run_a()?, run_b()?);
    let rc = vjvp.call(&(params.clone(), x.clone(), tt.clone()))?;
    let mut err = 0f64;
    for (i, (a, b)) in ra.iter().zip(&rb).enumerate() {
        let c = rc.index_axis(0, i);
        err = err.max((a - b).abs().max(&[0]).item()?);
        err = err.max((a - &c).abs().max(&[0]).item()?);
    }
    let m_a = measure(|| run_a().map(|_| ()), 60, 6.0)?;
    let m_b = measure(|| run_b().map(|_| ()), 60, 6.0)?;
    let m_c = measure(
        || ready(&vjvp.call(&(params.clone(), x.clone(), tt.clone()))?),
        200,
        3.0,
    )?;
    let m_lin = measure(|| lin_fn.call(&x).map(|_| ()), 200, 2.0)?;
    let (_, f_jvp0) = lin_fn.call(&x)?;
    let m_one = measure(
        || {
            let d: Tensor = f_jvp0.apply(&tangents[0])?;
            ready(&d)
        },
        300,
        2.0,
    )?;
    let m_onejvp = measure(
        || ready(&jvp_fn.call(&(params.clone(), x.clone(), tangents[0].clone()))?),
        300,
        2.0,
    )?;
    let fwd = jit(|(p, x): (Vec<Tensor>, Tensor)| chain_apply(&p, &x));
    let m_fwd = measure(|| ready(&fwd.call(&(params.clone(), x.clone()))?), 300, 2.0)?;
    emit(
        "linearize_vs_jvp",
        vec![
            ("a_32x_jit_jvp_total", m_a),
            ("b_linearize_plus_32x_fjvp_total", m_b),
            ("c_vmap_jvp_32_total", m_c),
            ("b_linearize_only", m_lin),
            ("b_one_fjvp_call", m_one),
            ("a_one_jvp_call", m_onejvp),
            ("primal_forward", m_fwd),
        ],
        &format!(", \"depth\": {depth}, \"width\": {width}, \"k\": {k}, \"dtype\": \"f32\", \"max_abs_diff\": {err}"),
    );
    Ok(())
}

fn case_gnvp() -> Result<()> {
    let (n, din, hid) = (4096, 32, 300);
    let theta = init_mlp(4, &[din, hid, 1]);
    let xdata = randn(51, &[n, din], 1.0);
    let ydata = randn(52, &[n], 1.0);
    let n_params: usize = theta
        .iter()
        .map(|t| t.shape().iter().product::<usize>())
        .sum();
    let resid = |th: Vec<Tensor>| -> Tensor { mlp_apply(&th, &xdata).index_axis(1, 0) - &ydata };
    let n_prod = 20;
    let vs: Vec<Vec<Tensor>> = (0..n_prod)
        .map(|i| {
            theta
                .iter()
                .enumerate()
                .map(|(j, t)| randn(1000 + 10 * i as u64 + j as u64, t.shape(), 1.0))
                .collect()
        })
        .collect();
    let nt = theta.len();
    // (a) naive: jvp then vjp per product (compiled)
    let naive = jit(|(th, v): (Vec<Tensor>, Vec<Tensor>)| {
        let jv = match jvp(resid, &th, &v) {
            Ok((_, jv)) => jv,
            Err(e) => return failed(e, nt),
        };
        match vjp(resid, &th).and_then(|(_, f)| f.apply::<Tensor, Vec<Tensor>>(&jv)) {
            Ok(g) => g,
            Err(e) => failed(e, nt),
        }
    });
    // (b) one compiled linearization; `Jᵀ J` composed into one linear map (as the peer's
    // `jit(f_t(f_jvp(v)))` compiles the composition once), its product reused
    let lin = jit_linearize(resid);
    let product = |j: &LinearMap, jt: &LinearMap, v: &Vec<Tensor>| -> Result<Vec<Tensor>> {
        let jv: Tensor = j.apply(v)?;
        jt.apply(&jv)
    };
    let normal = |j: &LinearMap| -> Result<LinearMap> {
        let jt = j.transpose()?;
        linear_map(
            |v: Vec<Tensor>| match product(j, &jt, &v) {
                Ok(w) => w,
                Err(e) => failed(e, nt),
            },
            &vs[0],
        )
    };
    let run_a = || -> Result<()> {
        for v in &vs {
            naive
                .call(&(theta.clone(), v.clone()))?
                .iter()
                .try_for_each(ready)?;
        }
        Ok(())
    };
    let run_b = || -> Result<()> {
        let (_, j) = lin.call(&theta)?;
        let jtj = normal(&j)?;
        for v in &vs {
            jtj.apply::<_, Vec<Tensor>>(v)?.iter().try_for_each(ready)?;
        }
        Ok(())
    };
    // cross-check
    let (_, j0) = lin.call(&theta)?;
    let jtj0 = normal(&j0)?;
    let a0 = naive.call(&(theta.clone(), vs[0].clone()))?;
    let b0: Vec<Tensor> = jtj0.apply(&vs[0])?;
    let mut err = 0f64;
    for (a, b) in a0.iter().zip(&b0) {
        err = err.max(
            (a - b)
                .abs()
                .max(&[0])
                .item()
                .or_else(|_| (a - b).abs().max(&[0, 1]).item())?,
        );
    }
    let m_a = measure(run_a, 60, 6.0)?;
    let m_b = measure(run_b, 60, 6.0)?;
    let m_a1 = measure(
        || {
            naive
                .call(&(theta.clone(), vs[0].clone()))?
                .iter()
                .try_for_each(ready)
        },
        300,
        2.0,
    )?;
    let m_b1 = measure(
        || {
            jtj0.apply::<_, Vec<Tensor>>(&vs[0])?
                .iter()
                .try_for_each(ready)
        },
        300,
        2.0,
    )?;
    let m_lin = measure(|| lin.call(&theta).map(|_| ()), 300, 2.0)?;
    let fwd = jit(resid);
    let m_fwd = measure(|| ready(&fwd.call(&theta)?), 300, 2.0)?;
    emit(
        "gnvp",
        vec![
            ("a_naive_jvp_vjp_20_total", m_a),
            ("b_linearize_transpose_20_total", m_b),
            ("a_one_product", m_a1),
            ("b_one_product", m_b1),
            ("b_linearize_only", m_lin),
            ("residual_forward", m_fwd),
        ],
        &format!(", \"n_residuals\": {n}, \"n_params\": {n_params}, \"d_in\": {din}, \"hidden\": {hid}, \"n_products\": {n_prod}, \"dtype\": \"f32\", \"max_abs_diff\": {err}"),
    );
    Ok(())
}

fn case_hvp() -> Result<()> {
    let (params, x, y) = mlp_setup();
    let np = params.len();
    let v: Vec<Tensor> = params
        .iter()
        .enumerate()
        .map(|(i, p)| randn(700 + i as u64, p.shape(), 1.0))
        .collect();
    let hvp = jit(|(p, v): (Vec<Tensor>, Vec<Tensor>)| {
        let g = |q: Vec<Tensor>| {
            grad(|q: Vec<Tensor>| mlp_loss(&q, &x, &y), &q).unwrap_or_else(|e| failed(e, np))
        };
        jvp(g, &p, &v)
            .map(|r| r.1)
            .unwrap_or_else(|e| failed(e, np))
    });
    let grad_fn = jit(|p: Vec<Tensor>| {
        grad(|q: Vec<Tensor>| mlp_loss(&q, &x, &y), &p).unwrap_or_else(|e| failed(e, np))
    });
    let m = measure(
        || {
            hvp.call(&(params.clone(), v.clone()))?
                .iter()
                .try_for_each(ready)
        },
        400,
        4.0,
    )?;
    let m_g = measure(
        || grad_fn.call(&params)?.iter().try_for_each(ready),
        400,
        2.0,
    )?;
    let ratio = m.median_ms / m_g.median_ms;
    emit(
        "hvp",
        vec![("hvp_fwd_over_rev", m), ("grad_reference", m_g)],
        &format!(", \"ratio_hvp_over_grad\": {ratio}, \"width\": 256, \"batch\": 128, \"layers\": 4, \"dtype\": \"f32\""),
    );
    Ok(())
}

fn case_elementwise_fusion() -> Result<()> {
    let n = 1usize << 22;
    let x = randn(8, &[n], 1.0);
    let f = jit(|x: Tensor| (x.sin() * x.cos() + (-(&x * &x)).exp()).sum_all());
    let m = measure(|| ready(&f.call(&x)?), 60, 5.0)?;
    let bytes = (n * 4) as f64;
    let gbps = bytes / (m.median_ms * 1e-3) / 1e9;
    let gelem = n as f64 / (m.median_ms * 1e-3) / 1e9;
    emit(
        "elementwise_fusion",
        vec![(
            "ferrax_jit",
            m.with("GBps_effective", gbps).with("Gelem_per_s", gelem),
        )],
        &format!(
            ", \"n\": {n}, \"dtype\": \"f32\", \"bytes_read\": {}",
            n * 4
        ),
    );
    Ok(())
}

fn case_matmul() -> Result<()> {
    let n = 1024;
    let a = randn(91, &[n, n], 1.0);
    let b = randn(92, &[n, n], 1.0);
    let f = jit(|(a, b): (Tensor, Tensor)| a.matmul(&b));
    let m = measure(|| ready(&f.call(&(a.clone(), b.clone()))?), 200, 4.0)?;
    let flops = 2.0 * (n as f64).powi(3);
    let (g, gb) = (
        flops / (m.median_ms * 1e-3) / 1e9,
        flops / (m.min_ms * 1e-3) / 1e9,
    );
    emit(
        "matmul",
        vec![(
            "ferrax_jit_dot",
            m.with("GFLOPs", g).with("GFLOPs_best", gb),
        )],
        &format!(", \"n\": {n}, \"dtype\": \"f32\""),
    );
    Ok(())
}

type Case = (&'static str, fn() -> Result<()>);

const CASES: &[Case] = &[
    ("eager_dispatch", case_eager_dispatch),
    ("mlp_grad_jit", case_mlp_grad_jit),
    ("linearize_vs_jvp", case_linearize_vs_jvp),
    ("gnvp", case_gnvp),
    ("hvp", case_hvp),
    ("elementwise_fusion", case_elementwise_fusion),
    ("matmul", case_matmul),
    ("scan_rnn", scan_rnn::case_scan_rnn),
    ("while_newton", while_newton::case_while_newton),
];

/// Keeps large freed blocks in the heap instead of returning them to the OS, so that the
/// multi-megabyte buffers plans allocate per call are reused without page faults (the
/// peer runs with its own caching allocator for the same reason).
fn tune_allocator() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only adjusts glibc's allocator parameters; called once at start-up,
    // before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 512 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

fn main() {
    tune_allocator();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut chosen: Vec<String> = vec![];
    let mut threads: Option<usize> = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            // SAFETY: single-threaded start-up, before any case runs.
            "--quick" => unsafe { QUICK = true },
            "--list" => {
                for (name, _) in CASES {
                    println!("{name}");
                }
                return;
            }
            "--case" if i + 1 < args.len() => {
                chosen.push(args[i + 1].clone());
                i += 1;
            }
            "--threads" if i + 1 < args.len() => {
                threads = args[i + 1].parse().ok();
                if threads.is_none() {
                    eprintln!("error: --threads needs a number, got `{}`", args[i + 1]);
                    std::process::exit(2);
                }
                i += 1;
            }
            other => {
                eprintln!("error: unknown argument `{other}` (use --quick, --case NAME, --threads N, --list)");
                std::process::exit(2);
            }
        }
        i += 1;
    }
    if let Some(n) = threads {
        if let Err(e) = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
        {
            eprintln!("error: cannot set {n} threads: {e}");
            std::process::exit(2);
        }
    }
    for c in &chosen {
        if !CASES.iter().any(|(n, _)| n == c) {
            eprintln!("error: no case `{c}` (see --list)");
            std::process::exit(2);
        }
    }
    eprintln!(
        "{{\"meta\": {{\"ferrax\": \"{}\", \"threads\": {}, \"quick\": {}}}}}",
        env!("CARGO_PKG_VERSION"),
        rayon::current_num_threads(),
        quick()
    );
    let mut failed = false;
    for (name, run) in CASES {
        if !chosen.is_empty() && !chosen.iter().any(|c| c == name) {
            continue;
        }
        // FERRAX_BENCH_PROFILE=1: the time of every plan step (fused groups by their
        // operations) over the whole case, on stderr, largest first
        let profiled = std::env::var_os("FERRAX_BENCH_PROFILE").is_some();
        if profiled {
            ferrax::profile_start();
        }
        if let Err(e) = run() {
            eprintln!("error in case {name}: {e}");
            failed = true;
        }
        if profiled {
            let mut steps = ferrax::profile_stop();
            steps.sort_by(|a, b| b.1.total_cmp(&a.1));
            let total: f64 = steps.iter().map(|s| s.1).sum();
            for (step, secs, calls) in steps.iter().take(25) {
                eprintln!(
                    "{:6.2}% {secs:9.4} s {calls:8} calls  {step}",
                    100.0 * secs / total
                );
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
}
