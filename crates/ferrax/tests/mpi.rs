//! The MPI backend against the in-process one (feature `mpi`).
//!
//! Run by `cargo test -p ferrax --features mpi --test mpi`, this binary is first a driver:
//! it starts itself under `mpirun` with 1, 2 and 4 processes (as root, oversubscribed, as
//! on a 2-core CI machine), each run bounded by a timeout, and checks what they print and
//! how they end. Under `mpirun` (`OMPI_COMM_WORLD_SIZE` set) it is a worker running one
//! case, named by `FERRAX_MPI_CASE`:
//!
//! * `checks`: every collective, and a data-parallel gradient, bit for bit against member
//!   `rank` of a compiled in-process `named_map` over the stacked shards (which runs its
//!   members on threads); the gradient also against the whole batch's to rounding; then the
//!   failures that must be errors on every process and leave the job usable: a process whose
//!   function fails to trace, one that panics, shapes that differ between processes, an
//!   unknown axis name.
//! * `stall`: process 1 never reaches the collective; process 0 must return an error within
//!   its wait bound (2 s), print it, and end the job with `abort`.
//! * `crash`: process 1 exits (without finalizing MPI) before the collective; the job must
//!   end, with an error status, within the timeout.
//!
//! No libtest harness: MPI is initialized once per process and its collectives must run
//! in the same order on every process, so the checks run in sequence.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferrax::{
    all_gather, all_to_all, axis_index, grad, jit, named_map, pmax, pmean, ppermute, psum,
    psum_scatter, DType, MpiAxis, Tensor,
};

fn main() {
    match std::env::var("FERRAX_MPI_CASE") {
        Ok(case) if std::env::var_os("OMPI_COMM_WORLD_SIZE").is_some() => worker(&case),
        _ => driver(),
    }
}

// ---------------------------------------------------------------- driver

/// Runs this binary under `mpirun -np n` with `case`; its exit status (None if it was
/// killed at the timeout) and what it printed.
fn mpirun(n: usize, case: &str, timeout: Duration) -> (Option<i32>, String) {
    let me = std::env::current_exe().expect("the test binary's path");
    let mut child = Command::new("mpirun")
        .args([
            "--allow-run-as-root",
            "--oversubscribe",
            "-np",
            &n.to_string(),
        ])
        .arg(me)
        .env("FERRAX_MPI_CASE", case)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mpirun runs (the `mpi` feature needs an MPI installation: openmpi-bin)");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("mpirun's status") {
            break s.code();
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = reader.join().unwrap_or_default() + &err_reader.join().unwrap_or_default();
    (status, text)
}

fn driver() {
    // a bad axis name is refused before MPI starts
    let e = MpiAxis::init("1 bad").err().expect("not an identifier");
    assert!(e.to_string().contains("1 bad"), "{e}");
    for n in [1, 2, 4] {
        let (status, text) = mpirun(n, "checks", Duration::from_secs(240));
        assert_eq!(
            status,
            Some(0),
            "mpirun -np {n} (checks) failed or timed out:\n{text}"
        );
        let passed = text.matches("CHECKS PASSED").count();
        assert_eq!(passed, n, "every process reports its checks:\n{text}");
        println!("mpirun -np {n}: {passed} processes passed every check");
    }
    let start = Instant::now();
    let (status, text) = mpirun(2, "stall", Duration::from_secs(60));
    let took = start.elapsed();
    assert!(
        status.is_some(),
        "the stalled job must end, not hang:\n{text}"
    );
    assert_ne!(
        status,
        Some(0),
        "an aborted job ends with an error status:\n{text}"
    );
    assert!(
        text.contains("STALL ERROR")
            && text.contains("never reached it")
            && text.contains("STALL REFUSED"),
        "process 0 reports the collective process 1 never reached:\n{text}"
    );
    println!("mpirun -np 2 (a process that never arrives): error and abort after {took:?}");

    let start = Instant::now();
    let (status, text) = mpirun(2, "crash", Duration::from_secs(60));
    let took = start.elapsed();
    assert!(
        status.is_some(),
        "a job whose process exits early must end:\n{text}"
    );
    assert_ne!(status, Some(0), "and end with an error status:\n{text}");
    assert!(!text.contains("CHECKS PASSED"), "{text}");
    println!(
        "mpirun -np 2 (a process that exits before a collective): the job ended after {took:?}"
    );
}

// ---------------------------------------------------------------- worker

fn worker(case: &str) {
    let axis = MpiAxis::init("dp")
        .expect("MPI starts")
        .with_wait(Duration::from_secs(if case == "checks" { 60 } else { 2 }));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match case {
        "checks" => checks(&axis),
        "stall" => stall(&axis),
        "crash" => crash(&axis),
        other => panic!("unknown case {other}"),
    }));
    if r.is_err() {
        eprintln!("process {} failed its checks", axis.rank());
        axis.abort(1);
    }
    println!("CHECKS PASSED on process {}", axis.rank());
}

fn stall(axis: &MpiAxis) {
    if axis.rank() == 1 {
        // never reaches the collective; waits for the job to be aborted
        std::thread::sleep(Duration::from_secs(30));
        return;
    }
    let x = Tensor::scalar(1.0f64);
    let err = axis
        .spmd(|x: Tensor| psum(&x, "dp"), &x)
        .expect_err("a process that never arrives is an error");
    println!("STALL ERROR on process {}: {err}", axis.rank());
    // the axis refuses to run again (a late process could answer the abandoned round)
    let again = axis
        .spmd(|x: Tensor| psum(&x, "dp"), &x)
        .expect_err("a broken axis");
    assert!(again.to_string().contains("cannot run again"), "{again}");
    println!("STALL REFUSED on process {}", axis.rank());
    axis.abort(3);
}

fn crash(axis: &MpiAxis) {
    if axis.rank() == 1 {
        // exits without finalizing MPI, before the collective the others wait in
        std::process::exit(5);
    }
    let r = axis.spmd(|x: Tensor| psum(&x, "dp"), &Tensor::scalar(1.0f64));
    // Open MPI ends the job when a process exits early; should this process see an error
    // first (its wait bound), it ends the job itself
    println!("CRASH ERROR on process {}: {r:?}", axis.rank());
    axis.abort(4);
}

/// Deterministic values, the same on every process.
fn values(seed: u64, shape: &[usize]) -> Tensor {
    Tensor::random_normal(seed, shape, DType::F64)
}

/// Row `m` of a stacked value.
fn row(t: &Tensor, m: usize) -> Tensor {
    let rest: Vec<isize> = t.shape()[1..].iter().map(|&d| d as isize).collect();
    t.slice_axis(0, m, m + 1).reshape(&rest)
}

fn bits(t: &Tensor) -> Vec<u64> {
    t.to_vec::<f64>()
        .expect("f64 values")
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

fn checks(axis: &MpiAxis) {
    let (n, rank) = (axis.size(), axis.rank());
    let stacked = values(7, &[n, n, 3]);
    let mine = row(&stacked, rank);

    // every collective, bit for bit against the in-process map (compiled: threads)
    let ring: Vec<(usize, usize)> = (0..n).map(|i| (i, (i + 1) % n)).collect();
    let f = move |x: Tensor| {
        let k = axis_index("dp").astype(DType::F64);
        vec![
            psum(&(&x * &x), "dp"),
            pmean(&x.sin(), "dp"),
            pmax(&x, "dp"),
            all_gather(&x, "dp", 1),
            psum_scatter(&x, "dp", 0),
            ppermute(&(&x + &k), "dp", &ring),
            all_to_all(&x, "dp", 0, 1),
        ]
    };
    let here: Vec<Tensor> = axis.spmd(f.clone(), &mine).expect("the collectives run");
    let threads = jit(|xs: Tensor| named_map(f.clone(), &xs, "dp").expect("maps"));
    let reference = threads.call(&stacked).expect("the in-process map runs");
    for (i, (a, b)) in here.iter().zip(&reference).enumerate() {
        assert_eq!(
            bits(a),
            bits(&row(b, rank)),
            "collective {i} on process {rank}"
        );
    }

    // a data-parallel gradient: each process's shard, the gradients summed with psum
    let (batch, inputs) = (64 * n, 5);
    let x = values(11, &[batch, inputs]);
    let y = values(12, &[batch]);
    let w = values(13, &[inputs]);
    let loss = |w: Tensor, x: &Tensor, y: &Tensor| {
        let e = x.matmul(&w).tanh() - y;
        (&e * &e).sum_all()
    };
    let step = |w: &Tensor| {
        let w = w.clone();
        move |(x, y): (Tensor, Tensor)| {
            let g = grad(|w: Tensor| loss(w, &x, &y), &w).expect("differentiates");
            psum(&g, "dp")
        }
    };
    let per = batch / n;
    let (xs, ys) = (
        x.reshape(&[n as isize, per as isize, inputs as isize]),
        y.reshape(&[n as isize, per as isize]),
    );
    let shard = (row(&xs, rank), row(&ys, rank));
    assert_eq!(axis.rows(batch), rank * per..(rank + 1) * per);
    let g = axis.spmd(step(&w), &shard).expect("the gradient runs");
    let in_process =
        jit(|(xs, ys): (Tensor, Tensor)| named_map(step(&w), &(xs, ys), "dp").unwrap())
            .call(&(xs.clone(), ys.clone()))
            .expect("the in-process map runs");
    assert_eq!(
        bits(&g),
        bits(&row(&in_process, rank)),
        "gradient, process {rank}"
    );
    // compiled once, the same bits at every call
    let compiled = axis.jit(step(&w));
    for _ in 0..3 {
        assert_eq!(bits(&compiled.call(&shard).expect("runs")), bits(&g));
    }
    assert_eq!(compiled.cache_size(), 1);
    let whole = grad(|w: Tensor| loss(w, &x, &y), &w).expect("the whole batch differentiates");
    let (a, b) = (g.to_vec::<f64>().unwrap(), whole.to_vec::<f64>().unwrap());
    for (p, q) in a.iter().zip(&b) {
        assert!(
            (p - q).abs() <= 1e-12 * q.abs().max(1.0),
            "{p} vs the whole batch's {q}"
        );
    }

    // failures: an error on every process, and the job goes on
    let sum = |x: Tensor| psum(&x, "dp");
    if n > 1 {
        // process 1 fails to trace (a product of mismatched shapes); the others wait in psum
        let v = if rank == 1 {
            values(1, &[3, 2])
        } else {
            values(1, &[2, 2])
        };
        let err = axis
            .spmd(|v: Tensor| psum(&v.matmul(&v), "dp"), &v)
            .expect_err("a process that fails to trace fails every process");
        let msg = err.to_string();
        if rank != 1 {
            assert!(msg.contains("MPI process 1 failed"), "{msg}");
        }
        // process 0 panics while tracing
        let err = axis
            .spmd(
                |v: Tensor| {
                    if rank == 0 {
                        panic!("a deliberate panic on process 0");
                    }
                    psum(&v, "dp")
                },
                &values(2, &[2]),
            )
            .expect_err("a panic on one process fails every process");
        assert!(err.to_string().contains("panicked"), "{err}");
        // shapes that differ between processes
        let v = values(3, &[rank + 1]);
        let err = axis.spmd(sum, &v).expect_err("different shapes fail");
        let msg = err.to_string();
        assert!(
            msg.contains("psum")
                && msg.contains("process 0: f64[1]")
                && msg.contains("process 1: f64[2]"),
            "{msg}"
        );
    }
    // an axis no process binds
    let err = axis
        .spmd(|x: Tensor| psum(&x, "model"), &values(4, &[2]))
        .expect_err("an unknown axis name");
    assert!(err.to_string().contains("model"), "{err}");
    // the job is still usable: the members agree again
    let before = axis.traffic();
    let total = axis
        .spmd(sum, &Tensor::scalar(rank as f64 + 1.0))
        .expect("the job goes on after the failures");
    assert_eq!(total.item().unwrap(), (n * (n + 1) / 2) as f64);
    // what one psum of a scalar moves: a 16-byte header and the 13-byte value (dtype,
    // rank, 8 bytes), then the end of the run's 16-byte header and no value
    let after = axis.traffic();
    assert_eq!(after.collectives - before.collectives, 1);
    assert_eq!(after.rounds - before.rounds, 4);
    assert_eq!(after.bytes_sent - before.bytes_sent, 16 + 13 + 16);
    assert_eq!(after.bytes_received - before.bytes_received, 45 * n as u64);
}
