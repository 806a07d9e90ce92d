//! Scan bodies run on buffers fixed for the whole loop (`Plan::fixed_bodies`): an RNN
//! cell's body of products with a vector, elementwise arithmetic and tanh gives, bit for
//! bit, what its own compiled step gives when a Rust loop calls it once per row (the general
//! route's kernels), in every form the route takes: f32 and f64, each product layout (a
//! matrix times the carry, its transpose times the carry, the carry times a matrix, two
//! products of one matrix paired), each binary operation, carries that swap places, ys
//! (among them a const and a value given twice), reverse scans, zero length, empty values,
//! literals and weights captured from outside; it counts what that loop counts; and bodies
//! the route does not take (a `gemm` product, a reduction, an integer carry, a computed
//! value over the size limit) keep the general one, with the same results.

use ferrax::{
    eval_counts, jit, make_jaxpr, reset_eval_counts, scan, scan_with, Array, DType, Plan,
    ScanOptions, Tensor,
};

fn random(seed: u64, shape: &[usize], dtype: DType) -> Tensor {
    Tensor::random_uniform(seed, shape, -1.0, 1.0, dtype)
}

fn bits(a: &Array) -> Vec<u64> {
    match a.dtype() {
        DType::F32 => a
            .to_vec::<f32>()
            .unwrap()
            .iter()
            .map(|x| x.to_bits() as u64)
            .collect(),
        _ => a
            .to_vec::<f64>()
            .unwrap()
            .iter()
            .map(|x| x.to_bits())
            .collect(),
    }
}

fn same_bits(got: &Array, want: &Array, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}");
    assert_eq!(bits(got), bits(want), "{what}: {got:?}\n{want:?}");
}

/// The plan of `f` at `args`, checked to run `fixed` scans on fixed buffers.
fn plan<I: ferrax::Tree, O: ferrax::Tree>(f: impl Fn(I) -> O, args: &I, fixed: usize) -> Plan {
    let p = make_jaxpr(f, args).unwrap();
    let plan = Plan::new(&p).unwrap();
    let text = plan.program().to_string();
    assert_eq!(
        plan.fixed_bodies(),
        fixed,
        "{}",
        &text[..text.len().min(3000)]
    );
    plan
}

fn arrays(ts: &[&Tensor]) -> Vec<Array> {
    ts.iter().map(|t| t.array().unwrap()).collect()
}

/// h' = tanh(W h + x + b), and the y h' - h.
fn cell(w: &Tensor, b: &Tensor, h: &Tensor, x: &Tensor) -> (Tensor, Tensor) {
    let h2 = (w.matmul(h) + x + b).tanh();
    let y = &h2 - h;
    (h2, y)
}

fn rnn(dtype: DType, t: usize, n: usize) {
    let (w, b) = (random(1, &[n, n], dtype) * 0.3, random(2, &[n], dtype));
    let (h0, xs) = (random(3, &[n], dtype), random(4, &[t, n], dtype));
    let f = |(w, b, h0, xs): (Tensor, Tensor, Tensor, Tensor)| {
        scan(|h: Tensor, x: Tensor| cell(&w, &b, &h, &x), &h0, &xs).unwrap()
    };
    let args = (w.clone(), b.clone(), h0.clone(), xs.clone());
    let got = plan(f, &args, 1).run(arrays(&[&w, &b, &h0, &xs])).unwrap();
    // the oracle: the compiled step, called once per row
    let step = jit(|(w, b, h, x): (Tensor, Tensor, Tensor, Tensor)| cell(&w, &b, &h, &x));
    let (mut h, mut ys) = (h0, vec![]);
    for i in 0..t {
        let (h2, y) = step
            .call(&(w.clone(), b.clone(), h, xs.index_axis(0, i)))
            .unwrap();
        ys.push(y);
        h = h2;
    }
    same_bits(&got[0], &h.array().unwrap(), "final carry");
    let ys = Tensor::stack(&ys, 0);
    same_bits(&got[1], &ys.array().unwrap(), "stacked ys");
}

#[test]
fn an_rnn_cell_gives_its_compiled_steps_bits_in_f32_and_f64() {
    rnn(DType::F32, 30, 40);
    rnn(DType::F64, 30, 40);
    // rows not a multiple of the product's blocks, more than one tanh block
    rnn(DType::F32, 7, 300);
    rnn(DType::F64, 5, 17);
}

#[test]
fn swapping_carries_vector_times_matrix_reverse_and_literals() {
    for dtype in [DType::F32, DType::F64] {
        let (t, n) = (12, 24);
        let w = random(5, &[n, n], dtype) * 0.2;
        let (a0, c0, xs) = (
            random(6, &[n], dtype),
            random(7, &[n], dtype),
            random(8, &[t, n], dtype),
        );
        // the carry times a matrix, its carries swapped each step, a literal, W captured
        let body = |(a, c): (Tensor, Tensor), x: Tensor| {
            let next = (a.matmul(&w).tanh() * 0.5 + &c) / (x.abs() + 2.0);
            ((c, next.clone()), next)
        };
        let options = ScanOptions::new().reverse(true);
        let f = |(a0, c0, xs): (Tensor, Tensor, Tensor)| {
            scan_with(body, &(a0, c0), &xs, &options).unwrap()
        };
        let args = (a0.clone(), c0.clone(), xs.clone());
        let got = plan(f, &args, 1).run(arrays(&[&a0, &c0, &xs])).unwrap();
        let step = jit(|(a, c, x): (Tensor, Tensor, Tensor)| body((a, c), x));
        let (mut carry, mut ys) = ((a0, c0), vec![None; t]);
        for i in (0..t).rev() {
            let ((a, c), y) = step.call(&(carry.0, carry.1, xs.index_axis(0, i))).unwrap();
            ys[i] = Some(y);
            carry = (a, c);
        }
        same_bits(&got[0], &carry.0.array().unwrap(), "first carry");
        same_bits(&got[1], &carry.1.array().unwrap(), "second carry");
        let ys: Vec<Tensor> = ys.into_iter().map(Option::unwrap).collect();
        same_bits(&got[2], &Tensor::stack(&ys, 0).array().unwrap(), "ys");
    }
}

/// The final carry and stacked ys of `body` scanned over `xs` from `h0` by a plan that runs
/// `fixed` scans on the route, checked bit for bit against the compiled step called once per
/// row.
fn route(
    what: &str,
    body: &dyn Fn(Tensor, Tensor) -> (Tensor, (Tensor, Tensor)),
    (h0, xs): (&Tensor, &Tensor),
    fixed: usize,
) {
    let f = |(h0, xs): (Tensor, Tensor)| scan(body, &h0, &xs).unwrap();
    let got = plan(f, &(h0.clone(), xs.clone()), fixed)
        .run(arrays(&[h0, xs]))
        .unwrap();
    let step = jit(|(h, x): (Tensor, Tensor)| body(h, x));
    let (mut h, mut y0, mut y1) = (h0.clone(), vec![], vec![]);
    for i in 0..xs.shape()[0] {
        let (h2, (a, b)) = step.call(&(h, xs.index_axis(0, i))).unwrap();
        y0.push(a);
        y1.push(b);
        h = h2;
    }
    same_bits(&got[0], &h.array().unwrap(), what);
    for (k, ys) in [y0, y1].iter().enumerate() {
        let want = Tensor::stack(ys, 0).array().unwrap();
        same_bits(&got[1 + k], &want, &format!("{what}: ys {k}"));
    }
}

#[test]
fn every_product_layout_binary_operation_and_output_kind() {
    for dtype in [DType::F32, DType::F64] {
        let n = 20;
        let (w, b) = (random(1, &[n, n], dtype) * 0.3, random(2, &[n], dtype));
        let (h0, xs) = (random(3, &[n], dtype), random(4, &[9, n], dtype));
        // the transposed matrix times the carry (columns contiguous), the carry times the
        // matrix, max, min, sub, div, exp; a const and a value output twice among the ys
        let body = |h: Tensor, x: Tensor| {
            let a = w.transpose(&[1, 0]).matmul(&h);
            let c = h.matmul(&w);
            let d = a.maximum(&c) - a.minimum(&x);
            let h2 = (d / (c.abs() + 1.0)).exp().tanh();
            (h2.clone(), (h2, b.clone()))
        };
        route("layouts", &body, (&h0, &xs), 1);
        // two adjacent products of one matrix by values of the carry (a product by the xs
        // alone would be taken out of the loop as one matrix product): the plan pairs them,
        // and so does the body
        let paired = |h: Tensor, x: Tensor| {
            let hx = &h * &x;
            let h2 = (w.matmul(&h) + w.matmul(&hx) + &b).tanh();
            (h2.clone(), (h2, x))
        };
        route("paired products", &paired, (&h0, &xs), 1);
        let f = |(h0, xs): (Tensor, Tensor)| scan(paired, &h0, &xs).unwrap();
        let p = plan(f, &(h0.clone(), xs.clone()), 1);
        assert_eq!(p.nested()[0].paired_products(), 1);
        reset_eval_counts();
        p.run(arrays(&[&h0, &xs])).unwrap();
        assert_eq!(eval_counts().get("dot_general"), Some(&18));
    }
}

#[test]
fn the_size_limit_is_on_computed_values_and_zero_sizes_run() {
    // one step (nothing to fuse): the route below the limit, the general one above it
    let body = |h: Tensor, x: Tensor| {
        let h2 = &h + &x;
        (h2.clone(), (h2.clone(), h2))
    };
    for (n, fixed) in [(1 << 10, 1), (1 << 15, 0)] {
        let (h0, xs) = (random(5, &[n], DType::F32), random(6, &[3, n], DType::F32));
        let f = |(h0, xs): (Tensor, Tensor)| scan(body, &h0, &xs).unwrap();
        let got = plan(f, &(h0.clone(), xs.clone()), fixed)
            .run(arrays(&[&h0, &xs]))
            .unwrap();
        let want = &h0 + xs.sum(&[0]);
        let (g, w) = (
            got[0].to_vec::<f32>().unwrap(),
            want.to_vec::<f32>().unwrap(),
        );
        assert!(g.iter().zip(&w).all(|(a, b)| (a - b).abs() <= 1e-5), "{n}");
    }
    // empty values
    let (h0, xs) = (
        Tensor::zeros(&[0], DType::F64),
        Tensor::zeros(&[4, 0], DType::F64),
    );
    route("empty values", &body, (&h0, &xs), 1);
}

#[test]
fn a_zero_length_scan_gives_its_carry_and_no_rows() {
    let (w, b) = (
        random(1, &[20, 20], DType::F32),
        random(2, &[20], DType::F32),
    );
    let (h0, xs) = (
        random(3, &[20], DType::F32),
        Tensor::zeros(&[0, 20], DType::F32),
    );
    let f = |(h0, xs): (Tensor, Tensor)| {
        scan(|h: Tensor, x: Tensor| cell(&w, &b, &h, &x), &h0, &xs).unwrap()
    };
    let got = plan(f, &(h0.clone(), xs.clone()), 1)
        .run(arrays(&[&h0, &xs]))
        .unwrap();
    same_bits(&got[0], &h0.array().unwrap(), "carry");
    assert_eq!(got[1].shape(), &[0, 20]);
}

#[test]
fn a_fixed_body_counts_what_its_steps_count() {
    let (t, n) = (25, 32);
    let (w, b) = (random(1, &[n, n], DType::F32), random(2, &[n], DType::F32));
    let (h0, xs) = (random(3, &[n], DType::F32), random(4, &[t, n], DType::F32));
    let f = |(h0, xs): (Tensor, Tensor)| {
        scan(|h: Tensor, x: Tensor| cell(&w, &b, &h, &x), &h0, &xs).unwrap()
    };
    let p = plan(f, &(h0.clone(), xs.clone()), 1);
    reset_eval_counts();
    p.run(arrays(&[&h0, &xs])).unwrap();
    let counts = eval_counts();
    for (name, per_step) in [("dot_general", 1), ("add", 2), ("tanh", 1), ("sub", 1)] {
        assert_eq!(
            counts.get(name),
            Some(&(per_step * t as u64)),
            "{name}: {counts:?}"
        );
    }
}

/// [`route`] for a body of one y, checked not to take the route.
fn general_route(
    what: &str,
    body: &dyn Fn(Tensor, Tensor) -> (Tensor, Tensor),
    h0: &Tensor,
    xs: &Tensor,
) {
    let twice = |h: Tensor, x: Tensor| {
        let (c, y) = body(h, x);
        (c, (y.clone(), y))
    };
    route(what, &twice, (h0, xs), 0);
}

#[test]
fn bodies_the_route_does_not_take_keep_the_general_one() {
    let n = 8;
    let h0 = random(3, &[n], DType::F64);
    let xs = random(4, &[6, n], DType::F64);
    // a product too short for `matvec` (it goes through `gemm`)
    let w = random(1, &[n, n], DType::F64);
    let short_product = |h: Tensor, x: Tensor| {
        let h2 = (w.matmul(&h) + &x).tanh();
        (h2.clone(), h2)
    };
    general_route("short product", &short_product, &h0, &xs);
    // a reduction
    let reduction = |h: Tensor, x: Tensor| {
        let h2 = &h * &x + h.sum_all();
        (h2.clone(), h2)
    };
    general_route("reduction", &reduction, &h0, &xs);
    // an integer carry beside a float one
    let f = |(h0, xs): (Tensor, Tensor)| {
        let k0 = Tensor::scalar(0i32);
        scan(
            |(h, k): (Tensor, Tensor), x: Tensor| ((&h + &x, k + 1), ()),
            &(h0, k0),
            &xs,
        )
        .unwrap()
        .0
    };
    let got = plan(f, &(h0.clone(), xs.clone()), 0)
        .run(arrays(&[&h0, &xs]))
        .unwrap();
    assert_eq!(got[1].to_vec::<i32>().unwrap(), vec![6]);
}
