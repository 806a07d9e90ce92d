//! vmap of control flow (`scan`, `cond`, `switch`, `fori_loop`): every batched computation
//! equals the unbatched function run on each example and stacked, both eagerly and through
//! the traced (`make_jaxpr`) program; the batched programs have the expected structure (a
//! batched predicate leaves no `cond`; an unbatched const keeps its shape; carries are
//! batched only when they vary).

use ferrax::{
    cond, fori_loop, make_jaxpr, scan, scan_with, switch, vmap, vmap_axes, vmap_program, Array,
    DType, Equation, Primitive, Program, ScanOptions, Tensor, VmapAxes,
};

type F<'a> = &'a dyn Fn(Vec<Tensor>) -> Vec<Tensor>;

fn axes(in_axes: &[Option<isize>], out_axes: &[Option<isize>]) -> VmapAxes {
    VmapAxes::new().in_axes(in_axes).out_axes(out_axes)
}

fn norm(ax: isize, rank: usize) -> usize {
    if ax < 0 {
        (ax + rank as isize) as usize
    } else {
        ax as usize
    }
}

fn close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let ok = g == w || (g - w).abs() <= 1e-12 * (1.0 + w.abs());
        assert!(ok, "{what}: element {i}: got {g}, want {w}");
    }
}

fn values(t: &Tensor) -> Vec<f64> {
    t.astype(DType::F64).to_vec::<f64>().unwrap()
}

/// `vmap_axes(f)` against `f` on each example, stacked along each output's axis: eagerly,
/// and through the program `make_jaxpr` records (evaluated by the reference evaluator).
/// Returns that program.
fn check(f: F, xs: &[Tensor], in_axes: &[Option<isize>], out_axes: &[Option<isize>]) -> Program {
    let ax = axes(in_axes, out_axes);
    // one entry for all leaves, as vmap reads it
    let in_axes: Vec<Option<isize>> = match in_axes.len() {
        1 => vec![in_axes[0]; xs.len()],
        _ => in_axes.to_vec(),
    };
    let batched: Vec<Tensor> = vmap_axes(f, &xs.to_vec(), &ax).unwrap();
    let size = xs
        .iter()
        .zip(&in_axes)
        .find_map(|(x, a)| a.map(|a| x.shape()[norm(a, x.shape().len())]))
        .expect("some input is mapped");
    // the loop over examples
    let mut per_example: Vec<Vec<Tensor>> = vec![];
    for i in 0..size {
        let args: Vec<Tensor> = xs
            .iter()
            .zip(&in_axes)
            .map(|(x, a)| match a {
                Some(a) => x.index_axis(*a, i),
                None => x.clone(),
            })
            .collect();
        per_example.push(f(args));
    }
    assert_eq!(batched.len(), per_example[0].len(), "number of outputs");
    let traced = make_jaxpr(
        |args: Vec<Tensor>| -> Vec<Tensor> { vmap_axes(f, &args, &ax).unwrap() },
        &xs.to_vec(),
    )
    .unwrap();
    let arrays: Vec<Array> = xs.iter().map(|x| x.array().unwrap()).collect();
    let evaluated = traced.eval(&arrays).unwrap();
    for (k, out) in batched.iter().enumerate() {
        let want = match out_axes[k.min(out_axes.len() - 1)] {
            None => {
                // not mapped: every example gives this value
                for (i, ex) in per_example.iter().enumerate() {
                    close(
                        &values(&ex[k]),
                        &values(out),
                        &format!("output {k}, example {i}"),
                    );
                }
                continue;
            }
            Some(a) => {
                let a = norm(a, out.shape().len());
                let rows: Vec<Tensor> = per_example
                    .iter()
                    .map(|ex| ex[k].expand_dims(&[a as isize]))
                    .collect();
                Tensor::concatenate(&rows, a as isize)
            }
        };
        assert_eq!(out.shape(), want.shape(), "output {k}: shape");
        close(&values(out), &values(&want), &format!("output {k}"));
        let ev = Tensor::new(evaluated[k].clone());
        assert_eq!(ev.shape(), want.shape(), "traced output {k}: shape");
        close(&values(&ev), &values(&want), &format!("traced output {k}"));
    }
    traced
}

/// Every equation of a program and of its sub-programs, at any depth.
fn all_eqns(p: &Program) -> Vec<&Equation> {
    let mut out = vec![];
    for e in &p.eqns {
        out.push(e);
        for sub in e.prim.subprograms() {
            out.extend(all_eqns(sub));
        }
    }
    out
}

fn count(p: &Program, name: &str) -> usize {
    all_eqns(p).iter().filter(|e| e.prim.name() == name).count()
}

/// The only scan equation at the top level of a program.
/// The number of top-level `cond`s of a batched program, checking that each is the
/// two-branch skip a batched index leaves (unbatched scalar index, first branch zeros).
fn branch_skips(p: &Program) -> usize {
    let conds: Vec<&Equation> = p.eqns.iter().filter(|e| e.prim.name() == "cond").collect();
    for c in &conds {
        assert_eq!(p.atom_aval(&c.inputs[0]).ndim(), 0, "{p}");
        assert_eq!(c.prim.subprograms().len(), 2, "{p}");
    }
    conds.len()
}

fn the_scan(p: &Program) -> &Equation {
    let scans: Vec<&Equation> = p.eqns.iter().filter(|e| e.prim.name() == "scan").collect();
    assert_eq!(scans.len(), 1, "{p}");
    scans[0]
}

fn operand_shapes(p: &Program, e: &Equation) -> Vec<Vec<usize>> {
    e.inputs.iter().map(|a| p.atom_aval(a).shape).collect()
}

fn rnd(seed: u64, shape: &[usize]) -> Tensor {
    Tensor::random_normal(seed, shape, DType::F64)
}

fn sc(x: f64) -> Tensor {
    Tensor::scalar(x)
}

#[test]
fn scan_with_only_the_xs_batched_keeps_an_independent_carry_unbatched() {
    // the carry counts steps, the ys scale each x by the count
    let f = |a: Vec<Tensor>| {
        let (n, ys): (Tensor, Tensor) =
            scan(|n: Tensor, x: Tensor| (&n + 1.0, &x * &n), &sc(0.0), &a[0]).unwrap();
        vec![n, ys]
    };
    let xs = rnd(1, &[4, 5, 3]);
    let p = check(&f, &[xs], &[Some(0)], &[None, Some(0)]);
    let e = the_scan(&p);
    // the carry operand is the unbatched scalar, the xs have the batch at axis 1
    assert_eq!(operand_shapes(&p, e), vec![vec![], vec![5, 4, 3]]);
    // no iterations: the ys are empty, still batched
    check(&f, &[rnd(1, &[4, 0, 3])], &[Some(0)], &[None, Some(0)]);
}

#[test]
fn scan_with_a_batched_init_only() {
    let (w, xs) = (rnd(2, &[3, 3]) * 0.5, rnd(3, &[6, 3]));
    let f = |a: Vec<Tensor>| {
        let (h, hs): (Tensor, Tensor) = scan(
            |h: Tensor, x: Tensor| {
                let h2 = (w.matmul(&h) + &x).tanh();
                (h2.clone(), h2)
            },
            &a[0],
            &xs,
        )
        .unwrap();
        vec![h, hs]
    };
    check(&f, &[rnd(4, &[5, 3])], &[Some(0)], &[Some(0)]);
}

#[test]
fn a_carry_batched_only_through_the_body_needs_two_rounds() {
    // b is batched by the batched const k in round one; a only once b is (round two); the
    // counter n never is
    let xs = rnd(5, &[7]);
    let f = |a: Vec<Tensor>| {
        let k = a[0].clone();
        let init = (sc(0.0), sc(1.0), sc(0.0));
        let ((a1, b1, n1), ys): ((Tensor, Tensor, Tensor), Tensor) = scan(
            |(a, b, n): (Tensor, Tensor, Tensor), x: Tensor| {
                let a2 = &a * 0.5 + &b;
                let b2 = &b * 0.9 + &k * &x;
                ((a2.clone(), b2, &n + 1.0), &a2 * &n)
            },
            &init,
            &xs,
        )
        .unwrap();
        vec![a1, b1, n1, ys]
    };
    let p = check(
        &f,
        &[rnd(6, &[4])],
        &[Some(0)],
        &[Some(0), Some(0), None, Some(0)],
    );
    let e = the_scan(&p);
    // operands: the const k, the carries a and b (broadcast to [4]) and n, the xs
    assert_eq!(
        operand_shapes(&p, e),
        vec![vec![4], vec![4], vec![4], vec![], vec![7]]
    );
    assert_eq!(p.aval(e.outs[3]).shape, vec![7, 4], "ys batched at axis 1");
}

#[test]
fn batched_consts_captured_from_a_batched_outer_value() {
    // w is mapped per example and used inside the body
    let f = |a: Vec<Tensor>| {
        let w = &a[0];
        let (h, hs): (Tensor, Tensor) = scan(
            |h: Tensor, x: Tensor| {
                let h2 = (w.matmul(&h) + &x).sin();
                (h2.clone(), h2.sum_all())
            },
            &a[1],
            &a[2],
        )
        .unwrap();
        vec![h, hs]
    };
    let xs = [rnd(7, &[3, 2, 2]) * 0.7, rnd(8, &[2]), rnd(9, &[5, 2])];
    let p = check(&f, &xs, &[Some(0), None, None], &[Some(0)]);
    let e = the_scan(&p);
    assert_eq!(
        operand_shapes(&p, e),
        vec![vec![3, 2, 2], vec![3, 2], vec![5, 2]]
    );
}

#[test]
fn reverse_scans_batch_like_forward_ones() {
    let f = |a: Vec<Tensor>| {
        let (c, ys): (Tensor, Tensor) = scan_with(
            |c: Tensor, x: Tensor| {
                let c2 = &c * 0.5 + &x;
                (c2.clone(), c2.exp())
            },
            &a[0],
            &a[1],
            &ScanOptions::new().reverse(true),
        )
        .unwrap();
        vec![c, ys]
    };
    check(
        &f,
        &[rnd(10, &[3, 2]), rnd(11, &[3, 6, 2])],
        &[Some(0)],
        &[Some(0)],
    );
    // only the xs batched, and a reverse scan in unrolled blocks
    let g = |a: Vec<Tensor>| {
        let (c, ys): (Tensor, Tensor) = scan_with(
            |c: Tensor, x: Tensor| (&c + &x, &c * &x),
            &sc(0.25),
            &a[0],
            &ScanOptions::new().reverse(true).unroll(2),
        )
        .unwrap();
        vec![c, ys]
    };
    check(&g, &[rnd(12, &[4, 5])], &[Some(0)], &[Some(0)]);
}

#[test]
fn several_carries_and_ys_of_mixed_batchedness() {
    let (u, xs) = (rnd(13, &[2]), rnd(14, &[5, 2]));
    let f = |a: Vec<Tensor>| {
        let init = (a[0].clone(), sc(0.0), Tensor::scalar(1i32));
        let ((h, s, n), (y1, y2, y3)): ((Tensor, Tensor, Tensor), (Tensor, Tensor, Tensor)) = scan(
            |(h, s, n): (Tensor, Tensor, Tensor), x: Tensor| {
                let h2 = (&h * &x + &u).cos();
                let s2 = &s + x.sum_all();
                let n2 = &n * 2i32;
                ((h2.clone(), s2.clone(), n2.clone()), (h2, n2, &s2 * 2.0))
            },
            &init,
            &xs,
        )
        .unwrap();
        vec![h, s, n, y1, y2, y3]
    };
    let p = check(
        &f,
        &[rnd(15, &[4, 2])],
        &[Some(0)],
        &[Some(0), None, None, Some(1), None, None],
    );
    let e = the_scan(&p);
    // h batched, s and the integer counter not
    assert_eq!(
        operand_shapes(&p, e),
        vec![vec![4, 2], vec![], vec![], vec![5, 2]]
    );
}

#[test]
fn mapped_axes_other_than_zero_in_and_out() {
    // the xs mapped along their last axis, the init along its first, ys out along the last
    let f = |a: Vec<Tensor>| {
        let (c, ys): (Tensor, Tensor) = scan(
            |c: Tensor, x: Tensor| {
                let c2 = (&c + &x).tanh();
                (c2.clone(), (&c2 * &x, c2.sum_all()))
            },
            &a[0],
            &a[1],
        )
        .map(|(c, (y1, y2))| (c, Tensor::concatenate(&[y1, y2.expand_dims(&[-1])], -1)))
        .unwrap();
        vec![c, ys]
    };
    let xs = [rnd(16, &[3, 4]), rnd(17, &[6, 4, 3])];
    check(&f, &xs, &[Some(0), Some(-1)], &[Some(-1), Some(1)]);
    let xs = [rnd(18, &[4, 3]), rnd(19, &[6, 3, 4])];
    check(&f, &xs, &[Some(-1), Some(1)], &[Some(0), Some(-1)]);
}

#[test]
fn cond_with_an_unbatched_predicate_stays_one_cond() {
    // the second output varies only in the false branch: broadcast in the true one
    let f = |a: Vec<Tensor>| {
        let (p, x) = (&a[0], &a[1]);
        let (y, z): (Tensor, Tensor) = cond(
            &p.greater(0.0),
            |x: Tensor| (&x * 2.0, sc(7.0)),
            |x: Tensor| (x.sin(), x.sum_all()),
            x,
        )
        .unwrap();
        vec![y, z]
    };
    for pv in [1.0, -1.0] {
        let p = check(
            &f,
            &[sc(pv), rnd(18, &[5, 3])],
            &[None, Some(0)],
            &[Some(0)],
        );
        assert_eq!(p.count_prim("cond"), 1, "{p}");
        assert_eq!(count(&p, "select"), 0, "{p}");
    }
}

#[test]
fn cond_with_a_batched_predicate_becomes_a_select() {
    // sqrt of a negative number in the branch not taken must not leak into the result
    let f = |a: Vec<Tensor>| {
        let x = &a[0];
        let y: Tensor = cond(&x.greater(0.0), |x: Tensor| x.sqrt(), |x: Tensor| -x, x).unwrap();
        vec![y]
    };
    let xs = Tensor::from_vec(vec![4.0f64, -1.0, 0.0, 2.25, -9.0], &[5]);
    let p = check(&f, &[xs], &[Some(0)], &[Some(0)]);
    // each branch runs batched inside a cond on "some example takes it" (index unbatched),
    // and a select picks each example's result
    assert_eq!(branch_skips(&p), 2, "{p}");
    assert!(count(&p, "select") >= 1, "{p}");
    // operands not batched, only the predicate: still per example
    let g = |a: Vec<Tensor>| {
        let y: (Tensor, Tensor) = cond(
            &a[0].greater(0.0),
            |x: Tensor| (x.exp(), sc(1.0)),
            |x: Tensor| (x.cos(), sc(2.0)),
            &a[1],
        )
        .unwrap();
        vec![y.0, y.1]
    };
    let ps = Tensor::from_vec(vec![1.0f64, -1.0, 3.0], &[3]);
    check(&g, &[ps, rnd(19, &[2, 2])], &[Some(0), None], &[Some(0)]);
}

#[test]
fn switch_with_batched_out_of_range_and_negative_indices() {
    let f = |a: Vec<Tensor>| {
        let b0 = |x: Tensor| (&x * 10.0, x.sum_all());
        let b1 = |x: Tensor| (x.sin(), sc(0.5));
        let b2 = |x: Tensor| (-&x, x.max(&[0]));
        let (y, z): (Tensor, Tensor) = switch(&a[0], &[&b0, &b1, &b2], &a[1]).unwrap();
        vec![y, z]
    };
    let idx = Tensor::from_vec(vec![-3i32, -1, 0, 1, 2, 3, 100, i32::MIN, i32::MAX], &[9]);
    let p = check(&f, &[idx, rnd(20, &[9, 4])], &[Some(0)], &[Some(0)]);
    assert_eq!(branch_skips(&p), 3, "{p}");
    // an i64 index, clamped before it is narrowed, and the operands unbatched
    let idx = Tensor::from_vec(vec![-5i64, 0, 1, 2, 1 << 40], &[5]);
    check(&f, &[idx, rnd(21, &[4])], &[Some(0), None], &[Some(0)]);
}

#[test]
fn fori_loop_under_vmap() {
    let f = |a: Vec<Tensor>| {
        let x = a[0].clone();
        let c: Tensor = fori_loop(
            1,
            6,
            |i: Tensor, c: Tensor| (&c * &x + i.astype(DType::F64)).sin(),
            &a[1],
        )
        .unwrap();
        vec![c]
    };
    check(&f, &[rnd(22, &[5]), sc(0.1)], &[Some(0), None], &[Some(0)]);
    check(
        &f,
        &[sc(0.7), rnd(23, &[5, 2])],
        &[None, Some(0)],
        &[Some(0)],
    );
}

#[test]
fn vmap_of_vmap_of_scan() {
    let inner = |a: Vec<Tensor>| {
        let (c, ys): (Tensor, Tensor) = scan(
            |c: Tensor, x: Tensor| {
                let c2 = (&c * &x).cos() + &x;
                (c2.clone(), c2 * 3.0)
            },
            &a[0],
            &a[1],
        )
        .unwrap();
        vec![c, ys]
    };
    // outer mapped along axis 0 of both; inner along the xs' axis 1 only
    let f = |a: Vec<Tensor>| -> Vec<Tensor> {
        vmap_axes(inner, &a, &axes(&[None, Some(1)], &[Some(0), Some(2)])).unwrap()
    };
    let p = check(
        &f,
        &[rnd(24, &[3, 2]), rnd(25, &[3, 5, 4, 2])],
        &[Some(0)],
        &[Some(0)],
    );
    assert_eq!(count(&p, "scan"), 1, "{p}");
}

#[test]
fn scan_inside_cond_inside_vmap() {
    let f = |a: Vec<Tensor>| {
        let sum = |xs: Tensor| {
            let (c, ys): (Tensor, Tensor) =
                scan(|c: Tensor, x: Tensor| (&c + &x, &c * &x), &sc(0.0), &xs).unwrap();
            (c, ys)
        };
        let prod = |xs: Tensor| {
            let (c, ys): (Tensor, Tensor) =
                scan(|c: Tensor, x: Tensor| (&c * &x, x.exp()), &sc(1.0), &xs).unwrap();
            (c, ys)
        };
        let (c, ys): (Tensor, Tensor) = cond(&a[0].greater(0.0), sum, prod, &a[1]).unwrap();
        vec![c, ys]
    };
    let xs = rnd(26, &[4, 6]);
    // the predicate unbatched: one cond, each branch a batched scan
    for pv in [1.0, -1.0] {
        let p = check(&f, &[sc(pv), xs.clone()], &[None, Some(0)], &[Some(0)]);
        assert_eq!(count(&p, "cond"), 1, "{p}");
        assert_eq!(count(&p, "scan"), 2, "{p}");
    }
    // batched: both scans run (each inside a cond that skips it when no example takes
    // it), a select picks
    let ps = Tensor::from_vec(vec![1.0f64, -1.0, -2.0, 0.5], &[4]);
    let p = check(&f, &[ps, xs], &[Some(0)], &[Some(0)]);
    assert_eq!(branch_skips(&p), 2, "{p}");
    assert_eq!(count(&p, "scan"), 2, "{p}");
}

#[test]
fn an_unbatched_const_keeps_its_shape_in_the_batched_scan() {
    let body = |(w, xs): (Tensor, Tensor)| {
        let (h, _): (Tensor, ()) = scan(
            |h: Tensor, x: Tensor| ((w.matmul(&h) + &x).tanh(), ()),
            &xs.index_axis(0, 0),
            &xs,
        )
        .unwrap();
        h
    };
    let (w, xs) = (rnd(27, &[3, 3]) * 0.5, rnd(28, &[4, 6, 3]));
    // through vmap inside make_jaxpr
    let p = make_jaxpr(
        |(w, xs): (Tensor, Tensor)| -> Tensor {
            vmap_axes(body, &(w, xs), &axes(&[None, Some(0)], &[Some(0)])).unwrap()
        },
        &(w.clone(), xs.clone()),
    )
    .unwrap();
    for p in [p.clone(), {
        // and through vmap_program on the unbatched program
        let q = make_jaxpr(body, &(w.clone(), xs.index_axis(0, 0))).unwrap();
        vmap_program(&q, &[None, Some(0)], 4).unwrap()
    }] {
        let e = the_scan(&p);
        let Primitive::Scan {
            body: inner,
            n_consts,
            ..
        } = &e.prim
        else {
            unreachable!()
        };
        assert_eq!(*n_consts, 1);
        assert_eq!(operand_shapes(&p, e)[0], vec![3, 3], "{p}");
        assert_eq!(inner.program().in_avals()[0].shape, vec![3, 3], "{p}");
        assert_eq!(inner.program().in_avals()[1].shape, vec![4, 3], "{p}");
        let out = p.eval(&[w.array().unwrap(), xs.array().unwrap()]).unwrap();
        let want: Tensor =
            vmap_axes(body, &(w.clone(), xs.clone()), &axes(&[None, Some(0)], &[])).unwrap();
        close(
            &out[0].to_vec::<f64>().unwrap(),
            &values(&want),
            "vmap_program",
        );
    }
}

#[test]
fn eager_vmap_of_a_scan_with_nothing_batched_inside() {
    // the scan reads nothing mapped: it runs once, unbatched, and the output is broadcast
    let xs = rnd(29, &[5]);
    let ys: Tensor = vmap(
        |x: Tensor| {
            let (c, ()): (Tensor, ()) =
                scan(|c: Tensor, x: Tensor| (&c + &x, ()), &sc(0.0), &xs).unwrap();
            &c + &x
        },
        &rnd(30, &[3]),
    )
    .unwrap();
    assert_eq!(ys.shape(), &[3]);
    let total: f64 = xs.to_vec::<f64>().unwrap().iter().sum();
    let x = rnd(30, &[3]).to_vec::<f64>().unwrap();
    close(
        &ys.to_vec::<f64>().unwrap(),
        &x.iter().map(|v| v + total).collect::<Vec<_>>(),
        "broadcast",
    );
}

/// The gradient of `sum(vmap(f)(xs))` for `f(x) = x > 0 ? sqrt(x) : -x`, and `vmap(grad f)`:
/// both finite and equal to each example's own derivative, although the `sqrt` branch's
/// derivative at the negative examples is NaN.
#[test]
fn gradients_through_a_batched_predicate_are_not_poisoned_by_branches_not_taken() {
    use ferrax::grad;
    let f = |x: Tensor| -> Tensor {
        cond(&x.greater(0.0), |x: Tensor| x.sqrt(), |x: Tensor| -x, &x).unwrap()
    };
    let want = |x: f64| if x > 0.0 { 0.5 / x.sqrt() } else { -1.0 };
    for xs in [
        vec![-1.0f64, 4.0, -2.0, 9.0],
        vec![-1.0, -2.0],     // no example takes the sqrt branch
        vec![0.25, 16.0],     // every example takes it
        vec![0.0, -0.0, 1.0], // sqrt's derivative at 0 is infinite; 0 takes the other branch
    ] {
        let n = xs.len();
        let x = Tensor::from_vec(xs.clone(), &[n]);
        let g = grad(|x: Tensor| vmap(f, &x).unwrap().sum_all(), &x).unwrap();
        let g2 = vmap(|x: Tensor| grad(f, &x).unwrap(), &x).unwrap();
        let expected: Vec<f64> = xs.iter().map(|&x| want(x)).collect();
        assert_eq!(values(&g), expected, "grad of vmap at {xs:?}");
        assert_eq!(values(&g2), expected, "vmap of grad at {xs:?}");
    }
}

/// A switch under vmap with a batched index: the guard gives every branch an example that
/// takes it (log and sqrt branches at negative operands of other examples), and the jvp
/// and gradient of each example equal its own.
#[test]
fn switch_guards_each_branch_with_an_example_that_takes_it() {
    use ferrax::{grad, jvp};
    let f = |(i, x): (Tensor, Tensor)| -> Tensor {
        let b0 = |x: Tensor| x.log();
        let b1 = |x: Tensor| x.sqrt() * 3.0;
        let b2 = |x: Tensor| &x * &x;
        switch(&i, &[&b0, &b1, &b2], &x).unwrap()
    };
    let idx = Tensor::from_vec(vec![2i32, 0, 1, 2, 5], &[5]);
    let xs = Tensor::from_vec(vec![-3.0f64, 2.0, 4.0, -1.0, -0.5], &[5]);
    let g = grad(
        |x: Tensor| vmap(f, &(idx.clone(), x)).unwrap().sum_all(),
        &xs,
    )
    .unwrap();
    let want = [-6.0, 0.5, 0.75, -2.0, -1.0];
    assert_eq!(values(&g), want);
    let ones = Tensor::ones(&[5], DType::F64);
    let (_, t) = jvp(|x: Tensor| vmap(f, &(idx.clone(), x)).unwrap(), &xs, &ones).unwrap();
    assert_eq!(values(&t), want);
}

/// A batched predicate over zero examples: no example to guard with, nothing to skip; the
/// result and the gradient are empty, not an error.
#[test]
fn a_batched_predicate_over_zero_examples() {
    use ferrax::grad;
    let f = |x: Tensor| -> Tensor {
        cond(&x.greater(0.0), |x: Tensor| x.sqrt(), |x: Tensor| -x, &x).unwrap()
    };
    let x = Tensor::from_vec(Vec::<f64>::new(), &[0]);
    let y = vmap(f, &x).unwrap();
    assert_eq!(y.shape(), vec![0]);
    let g = grad(|x: Tensor| vmap(f, &x).unwrap().sum_all(), &x).unwrap();
    assert_eq!(g.shape(), vec![0]);
}
