//! The optimizer's loop restructuring (`passes/optimize/loops.rs`, `ys_after.rs`) on the
//! gradient of an RNN: the forward loop keeps only the recurrence's product, the input
//! projection runs once before the loop as a matrix product, the weight cotangents are one
//! contraction after the backward loop and the inputs' cotangents one product after it, and
//! the restructured program computes what the unoptimized one does (to rounding: the
//! rewrites reassociate sums over iterations).

use ferrax::{
    grad_program, make_jaxpr, optimize, scan, Array, DType, Plan, Primitive, Program, Tensor,
};

fn normal(seed: u64, shape: &[usize]) -> Tensor {
    Tensor::random_normal(seed, shape, DType::F64)
}

/// `0.5 |h_T|²` of `h' = tanh(W h + U x + b)` from `h_0 = 0`, as a program of (W, U, b, xs).
fn rnn_loss_program(t: usize, h: usize, d: usize) -> (Program, Vec<Array>) {
    let args = (
        normal(1, &[h, h]) * (0.9 / (h as f64).sqrt()),
        normal(2, &[h, d]) * (1.0 / (d as f64).sqrt()),
        normal(3, &[h]) * 0.1,
        normal(4, &[t, d]),
    );
    let loss = |(w, u, b, xs): (Tensor, Tensor, Tensor, Tensor)| {
        let h0 = Tensor::zeros(&[h], DType::F64);
        let (h, ()): (Tensor, ()) = scan(
            |h: Tensor, x: Tensor| ((w.matmul(&h) + u.matmul(&x) + &b).tanh(), ()),
            &h0,
            &xs,
        )
        .unwrap();
        (&h * &h).sum_all() * 0.5
    };
    let p = make_jaxpr(loss, &args).unwrap();
    let arrays = [args.0, args.1, args.2, args.3]
        .iter()
        .map(|x| x.array().unwrap())
        .collect();
    (p, arrays)
}

/// The number of `dot_general`s in each scan body of `p`, in order.
fn products_per_loop(p: &Program) -> Vec<usize> {
    p.eqns
        .iter()
        .filter_map(|e| match &e.prim {
            Primitive::Scan { .. } => Some(
                e.prim.subprograms()[0]
                    .eqns
                    .iter()
                    .filter(|b| matches!(b.prim, Primitive::DotGeneral { .. }))
                    .count(),
            ),
            _ => None,
        })
        .collect()
}

fn products_outside_loops(p: &Program) -> usize {
    p.eqns
        .iter()
        .filter(|e| matches!(e.prim, Primitive::DotGeneral { .. }))
        .count()
}

fn assert_close(got: &[Array], want: &[Array], tol: f64) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        let (g, w) = (g.to_vec::<f64>().unwrap(), w.to_vec::<f64>().unwrap());
        assert_eq!(g.len(), w.len());
        let scale = w.iter().fold(1e-300f64, |m, x| m.max(x.abs()));
        for (a, b) in g.iter().zip(&w) {
            assert!((a - b).abs() <= tol * scale, "{a} vs {b} (scale {scale})");
        }
    }
}

#[test]
fn rnn_gradient_loops_keep_only_matrix_vector_work_of_the_recurrence() {
    let (p, args) = rnn_loss_program(20, 6, 3);
    let g = grad_program(&p).unwrap();
    let before = products_per_loop(&g);
    let o = optimize(&g).unwrap();
    let after = products_per_loop(&o);
    // unoptimized: forward W h and U x; backward Wᵀ ct, the outer products for dW and dU
    assert!(before.iter().sum::<usize>() >= 5, "{before:?}\n{g}");
    // optimized: the forward loop keeps W h, the backward loop Wᵀ ct
    assert_eq!(after, vec![1, 1], "{o}");
    // U X before the loop; dW and dU as contractions after it, and the xs' cotangent
    // Uᵀ ct_t (a per-step output the recurrence does not read) as one product after it
    assert!(products_outside_loops(&o) >= 4, "{o}");
    o.check().unwrap();
    // the same gradient, by the reference evaluator and by the compiled plan
    let want = g.eval(&args).unwrap();
    assert_close(&o.eval(&args).unwrap(), &want, 1e-12);
    assert_close(
        &Plan::new(&o).unwrap().run(args.clone()).unwrap(),
        &want,
        1e-12,
    );
}

#[test]
fn restructuring_keeps_a_forward_loop_and_its_text_round_trips() {
    let (p, args) = rnn_loss_program(9, 4, 2);
    let o = optimize(&p).unwrap();
    assert_eq!(products_per_loop(&o), vec![1], "{o}");
    let text = o.to_string();
    let back = Program::parse(&text).unwrap();
    assert_eq!(back.to_string(), text);
    assert_close(&o.eval(&args).unwrap(), &p.eval(&args).unwrap(), 1e-12);
}

#[test]
fn restructuring_is_a_no_op_without_products_in_the_loop() {
    let xs = normal(7, &[5, 3]);
    let p = make_jaxpr(
        |xs: Tensor| {
            let (c, ys): (Tensor, Tensor) = scan(
                |c: Tensor, x: Tensor| (&c * 0.5 + x.sin(), c.cos()),
                &Tensor::zeros(&[3], DType::F64),
                &xs,
            )
            .unwrap();
            c.sum_all() + ys.sum_all()
        },
        &xs,
    )
    .unwrap();
    let o = optimize(&p).unwrap();
    let args = vec![xs.array().unwrap()];
    // no batched work was hoisted: the sin stays in the loop and results are bit-identical
    let want = p.eval(&args).unwrap();
    let got = o.eval(&args).unwrap();
    assert!(got[0].same_values(&want[0]), "{o}");
}

/// Per-step outputs the carry does not need move after the loop whatever they read: an xs
/// row, the carry entering the step (stacked as a new ys) and a value that is already a ys,
/// in both directions; the loop keeps the recurrence's product only.
#[test]
fn ys_work_the_carry_does_not_need_runs_after_the_loop() {
    use ferrax::{scan_with, ScanOptions};
    for reverse in [false, true] {
        let args = (
            normal(11, &[4, 4]) * 0.4,
            normal(12, &[2, 4]),
            normal(13, &[6, 4]),
        );
        let f = |(w, v, xs): (Tensor, Tensor, Tensor)| {
            let (c, (hs, a, b)): (Tensor, (Tensor, Tensor, Tensor)) = scan_with(
                |c: Tensor, x: Tensor| {
                    let next = (w.matmul(&c) + &x).tanh();
                    let a = v.matmul(&(&c * &x));
                    let b = v.matmul(&next);
                    (next.clone(), (next, a, b))
                },
                &Tensor::ones(&[4], DType::F64),
                &xs,
                &ScanOptions::new().reverse(reverse),
            )
            .unwrap();
            (c, hs, a, b)
        };
        let p = make_jaxpr(f, &args).unwrap();
        let o = optimize(&p).unwrap();
        assert_eq!(products_per_loop(&o), vec![1], "{o}");
        assert_eq!(products_outside_loops(&o), 2, "{o}");
        let arrays: Vec<Array> = [args.0, args.1, args.2]
            .iter()
            .map(|x| x.array().unwrap())
            .collect();
        let want = p.eval(&arrays).unwrap();
        assert_close(&o.eval(&arrays).unwrap(), &want, 1e-13);
        assert_close(&Plan::new(&o).unwrap().run(arrays).unwrap(), &want, 1e-13);
    }
}
