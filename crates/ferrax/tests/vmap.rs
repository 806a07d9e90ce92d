//! vmap: equals a loop over slices followed by a stack, for every op-table row and random
//! programs with random in/out axes; composes with every transformation in both orders;
//! jacfwd/jacrev through vmap equal column-by-column ones; a batched linear map is one
//! dot_general with the batch folded in; error paths.

mod harness;

use ferrax::{
    gauss_newton, grad, jacfwd, jacrev, jvp, linearize, make_jaxpr, vjp, vmap, vmap_axes,
    vmap_program, Array, Aval, DType, Error, Program, Tensor, VmapAxes,
};
use harness::{agree, arb_program, random_args, Column, Domain, Tally};
use proptest::prelude::*;

fn take(a: &Array, axis: usize, i: usize) -> Array {
    Tensor::new(a.clone())
        .index_axis(axis as isize, i)
        .array()
        .unwrap()
}

fn stack(xs: &[Array], axis: usize) -> Array {
    let parts: Vec<Tensor> = xs
        .iter()
        .map(|a| Tensor::new(a.clone()).expand_dims(&[axis as isize]))
        .collect();
    Tensor::concatenate(&parts, axis as isize).array().unwrap()
}

fn batched_aval(a: &Aval, axis: Option<usize>, size: usize) -> Aval {
    let mut s = a.shape.clone();
    if let Some(d) = axis {
        s.insert(d, size);
    }
    Aval::new(s, a.dtype)
}

/// vmap of a program with the given axes against the loop over slices.
fn check_vmap(
    p: &Program,
    in_axes: &[Option<usize>],
    out_axis: usize,
    size: usize,
    seed: u64,
    domain: Domain,
    fix: &dyn Fn(&mut [Array]),
) {
    let batched: Vec<Aval> = p
        .in_avals()
        .iter()
        .zip(in_axes)
        .map(|(a, ax)| batched_aval(a, *ax, size))
        .collect();
    let mut args = random_args(&batched, seed, domain);
    // static operands (a cond's index): listed values, varying along a mapped axis
    fix(&mut args);
    let leaves: Vec<Tensor> = args.iter().cloned().map(Tensor::new).collect();
    let axes = VmapAxes::new()
        .in_axes(
            &in_axes
                .iter()
                .map(|a| a.map(|d| d as isize))
                .collect::<Vec<_>>(),
        )
        .out_axes(&[Some(out_axis as isize)])
        .axis_size(size);
    let got: Vec<Tensor> = vmap_axes(|xs: Vec<Tensor>| p.call(&xs).unwrap(), &leaves, &axes)
        .unwrap_or_else(|e| panic!("{e}\n{p}\nin_axes {in_axes:?}"));
    for (k, g) in got.iter().enumerate() {
        let slices: Vec<Array> = (0..size)
            .map(|i| {
                let xs: Vec<Array> = args
                    .iter()
                    .zip(in_axes)
                    .map(|(a, ax)| match ax {
                        Some(d) => take(a, *d, i),
                        None => a.clone(),
                    })
                    .collect();
                p.eval(&xs).unwrap()[k].clone()
            })
            .collect();
        let want = stack(&slices, out_axis);
        let g = g.array().unwrap();
        // Contractions may sum in another order when batched: equal to rounding.
        let tol = if g.dtype() == DType::F32 { 1e-5 } else { 1e-12 };
        assert!(
            harness::close(&g, &want, tol),
            "output {k}: vmap {g:?}\nloop {want:?}\n{p}\nin_axes {in_axes:?} out {out_axis}"
        );
    }
}

#[test]
fn every_row_vmap_equals_the_loop_for_all_axis_choices() {
    let mut tally = Tally::new(&[Column::Vmap]);
    for row in Column::Vmap.rows() {
        let d = row.dtypes[0];
        let avals = (row.avals)(d);
        let p = row.program(d);
        // one out axis for every output: valid for the one of least rank
        let out_rank = p.out_avals().iter().map(|a| a.ndim()).min().unwrap();
        // every combination of (no axis / first / last axis) per operand
        let choices = |a: &Aval| {
            let mut c = vec![None, Some(0)];
            if a.ndim() > 0 {
                c.push(Some(a.ndim()));
            }
            c
        };
        let mut combos: Vec<Vec<Option<usize>>> = vec![vec![]];
        for a in &avals {
            combos = combos
                .into_iter()
                .flat_map(|c| {
                    choices(a).into_iter().map(move |x| {
                        let mut c = c.clone();
                        c.push(x);
                        c
                    })
                })
                .collect();
        }
        for (n, combo) in combos.iter().enumerate() {
            let out_axis = n % (out_rank + 1);
            check_vmap(&p, combo, out_axis, 3, n as u64, row.domain, &|args| {
                row.fix_args(args, n)
            });
            tally.checked(Column::Vmap, &row);
        }
    }
    tally.assert_every_claimed_row_checked();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: harness::cases(96), ..ProptestConfig::default() })]

    #[test]
    fn random_programs_vmap_equals_the_loop(p in arb_program(10), choice in prop::collection::vec(0usize..4, 3), out in 0usize..4, seed in 0u64..1000) {
        let in_axes: Vec<Option<usize>> = p.in_avals().iter().zip(&choice).map(|(a, c)| match c {
            0 => None,
            c => Some((c - 1).min(a.ndim())),
        }).collect();
        let out_rank = p.out_avals().iter().map(|a| a.ndim()).min().unwrap();
        check_vmap(&p, &in_axes, out % (out_rank + 1), 2, seed, Domain::Real, &|_| {});
    }
}

// ---- compositions ----

fn f(x: Tensor) -> Tensor {
    (x.sin() * x.sum_all()).tanh()
}

fn loop_stack(n: usize, g: impl Fn(usize) -> Tensor) -> Array {
    let parts: Vec<Array> = (0..n).map(|i| g(i).array().unwrap()).collect();
    stack(&parts, 0)
}

fn row(a: &Tensor, i: usize) -> Tensor {
    a.index_axis(0, i)
}

#[test]
fn vmap_of_jvp_and_jvp_of_vmap() {
    let x = Tensor::random_normal(1, &[4], DType::F64);
    let ts = Tensor::random_normal(2, &[5, 4], DType::F64);
    // the seed of JAX #526: vmap(pushfwd, out_axes=(None, 0))
    let pushfwd = |t: Tensor| jvp(f, &x, &t).unwrap();
    let (y, dys): (Tensor, Tensor) =
        vmap_axes(pushfwd, &ts, &VmapAxes::new().out_axes(&[None, Some(0)])).unwrap();
    assert_eq!(
        y.shape(),
        &[4],
        "the primal output does not vary: not batched"
    );
    let want = loop_stack(5, |i| jvp(f, &x, &row(&ts, i)).unwrap().1);
    assert!(agree(
        &dys.array().unwrap().to_f64_vec(),
        &want.to_f64_vec(),
        1e-14
    ));
    // jvp of vmap: batched primals and tangents
    let xs = Tensor::random_normal(3, &[5, 4], DType::F64);
    let (_, d) = jvp(|xs: Tensor| vmap(f, &xs).unwrap(), &xs, &ts).unwrap();
    let want = loop_stack(5, |i| jvp(f, &row(&xs, i), &row(&ts, i)).unwrap().1);
    assert!(agree(
        &d.array().unwrap().to_f64_vec(),
        &want.to_f64_vec(),
        1e-14
    ));
}

#[test]
fn vmap_of_a_linear_map_is_one_dot_general_with_the_batch_folded_in() {
    // the benchmark's linearize_vs_jvp case, small: a chain of tanh(W x + b) layers
    let (layers, n, t) = (3usize, 6usize, 4usize);
    let ws: Vec<Tensor> = (0..layers)
        .map(|i| Tensor::random_normal(10 + i as u64, &[n, n], DType::F64))
        .collect();
    let bs: Vec<Tensor> = (0..layers)
        .map(|i| Tensor::random_normal(20 + i as u64, &[n], DType::F64))
        .collect();
    let chain = |x: Tensor| {
        let mut h = x;
        for (w, b) in ws.iter().zip(&bs) {
            h = (w.matmul(&h) + b).tanh();
        }
        h
    };
    let x = Tensor::random_normal(1, &[n], DType::F64);
    let (_, lin) = linearize(chain, &x).unwrap();
    let ts = Tensor::random_normal(2, &[t, n], DType::F64);
    let batched: Tensor = lin.apply_batch(&ts).unwrap();
    let want = loop_stack(t, |i| lin.apply(&row(&ts, i)).unwrap());
    assert!(agree(
        &batched.array().unwrap().to_f64_vec(),
        &want.to_f64_vec(),
        1e-14
    ));
    // the batched program: as many dot_generals as the unbatched one, none with a batch
    // dimension (the tangents' batch is a free dimension: matrix-matrix products)
    let p = make_jaxpr(
        |ts: Tensor| -> Tensor { lin.apply_batch(&ts).unwrap() },
        &ts,
    )
    .unwrap();
    assert_eq!(
        p.count_prim("dot_general"),
        lin.program().count_prim("dot_general")
    );
    assert_eq!(p.count_prim("dot_general"), layers);
    for e in p.eqns.iter().filter(|e| e.prim.name() == "dot_general") {
        match &e.prim {
            ferrax::Primitive::DotGeneral { lhs_batch, .. } => {
                assert!(lhs_batch.is_empty(), "{}", e.prim)
            }
            _ => unreachable!(),
        }
        assert_eq!(
            p.avals[e.outs[0].index()].ndim(),
            2,
            "a matrix-matrix product"
        );
    }
    // and vmap of jvp (all tangents up front) gives the same numbers
    let dys: Tensor = vmap(|t: Tensor| jvp(chain, &x, &t).unwrap().1, &ts).unwrap();
    assert!(agree(
        &dys.array().unwrap().to_f64_vec(),
        &want.to_f64_vec(),
        1e-13
    ));
}

#[test]
fn per_example_gradients_and_grad_of_vmap() {
    let w = Tensor::random_normal(3, &[3], DType::F64);
    let data = Tensor::random_normal(4, &[6, 3], DType::F64);
    let loss = |w: Tensor, x: Tensor| (w.dot(&x).tanh() - 0.5).powi(2);
    // vmap of grad: one gradient per example
    let per: Tensor = vmap(
        |x: Tensor| grad(|w: Tensor| loss(w, x.clone()), &w).unwrap(),
        &data,
    )
    .unwrap();
    assert_eq!(per.shape(), &[6, 3]);
    let want = loop_stack(6, |i| grad(|w: Tensor| loss(w, row(&data, i)), &w).unwrap());
    assert!(agree(
        &per.array().unwrap().to_f64_vec(),
        &want.to_f64_vec(),
        1e-14
    ));
    // grad of vmap: the gradient of the summed batch loss is the sum of per-example ones
    let g = grad(
        |w: Tensor| {
            vmap(|x: Tensor| loss(w.clone(), x), &data)
                .unwrap()
                .sum_all()
        },
        &w,
    )
    .unwrap();
    let sum = per.sum(&[0]);
    assert!(agree(
        &g.to_vec::<f64>().unwrap(),
        &sum.to_vec::<f64>().unwrap(),
        1e-14
    ));
}

#[test]
fn vmap_of_vmap_equals_the_double_loop() {
    let xs = Tensor::random_normal(5, &[3, 4, 2], DType::F64);
    let w = Tensor::random_normal(6, &[2, 2], DType::F64);
    let g = |x: Tensor| w.matmul(&x).sin().sum_all();
    let out: Tensor = vmap(|row: Tensor| vmap(g, &row).unwrap(), &xs).unwrap();
    assert_eq!(out.shape(), &[3, 4]);
    let v = out.to_vec::<f64>().unwrap();
    for i in 0..3 {
        for j in 0..4 {
            let want = g(xs.index_axis(0, i).index_axis(0, j)).item().unwrap();
            assert!((v[i * 4 + j] - want).abs() < 1e-14);
        }
    }
    // inner axis mapped along 1, outer along 0 of a transposed layout
    let out2: Tensor = vmap_axes(
        |m: Tensor| vmap_axes(g, &m, &VmapAxes::new().in_axes(&[Some(1)])).unwrap(),
        &xs.transpose(&[2, 1, 0]),
        &VmapAxes::new().in_axes(&[Some(2)]),
    )
    .unwrap();
    assert!(agree(&out2.to_vec::<f64>().unwrap(), &v, 1e-14));
}

#[test]
fn vmap_of_the_gauss_newton_operator() {
    let t = Tensor::new(Array::from_slice(&[0.0f64, 1.0, 2.0, 3.0]));
    let r = |p: Tensor| p.index_axis(0, 0) * (-p.index_axis(0, 1) * &t).exp() - 1.0;
    let gn = gauss_newton(r, &Tensor::new(Array::from_slice(&[1.0f64, 0.5]))).unwrap();
    let vs = Tensor::random_normal(9, &[5, 2], DType::F64);
    let batched: Tensor = vmap(|v: Tensor| -> Tensor { gn.apply(&v).unwrap() }, &vs).unwrap();
    let want = loop_stack(5, |i| gn.apply(&row(&vs, i)).unwrap());
    assert!(agree(
        &batched.array().unwrap().to_f64_vec(),
        &want.to_f64_vec(),
        1e-14
    ));
    // and vmap of the transposed map (a batch of vjps)
    let (_, f_vjp) = vjp(r, &Tensor::new(Array::from_slice(&[1.0f64, 0.5]))).unwrap();
    let cts = Tensor::random_normal(10, &[3, 4], DType::F64);
    let g: Tensor = f_vjp.apply_batch(&cts).unwrap();
    let want = loop_stack(3, |i| f_vjp.apply(&row(&cts, i)).unwrap());
    assert!(agree(
        &g.array().unwrap().to_f64_vec(),
        &want.to_f64_vec(),
        1e-14
    ));
}

// ---- Jacobians through vmap against column-by-column ----

#[test]
fn jacobians_through_vmap_equal_column_by_column_ones() {
    let w = Tensor::random_normal(7, &[3, 4], DType::F64);
    let g = |x: Tensor| w.matmul(&x).tanh() * x.sum_all();
    let x = Tensor::random_normal(8, &[4], DType::F64);
    let jf = jacfwd(g, &x).unwrap();
    let jr = jacrev(g, &x).unwrap();
    // column by column: one jvp per basis vector
    let mut by_col = vec![0.0; 12];
    for k in 0..4 {
        let mut e = vec![0.0f64; 4];
        e[k] = 1.0;
        let col = jvp(g, &x, &Tensor::new(Array::from_slice(&e)))
            .unwrap()
            .1
            .to_vec::<f64>()
            .unwrap();
        for i in 0..3 {
            by_col[i * 4 + k] = col[i];
        }
    }
    // row by row: one vjp per output
    let (_, f_vjp) = vjp(g, &x).unwrap();
    let mut by_row = vec![];
    for i in 0..3 {
        let mut e = vec![0.0f64; 3];
        e[i] = 1.0;
        let r: Tensor = f_vjp.apply(&Tensor::new(Array::from_slice(&e))).unwrap();
        by_row.extend(r.to_vec::<f64>().unwrap());
    }
    assert!(agree(&jf.to_vec::<f64>().unwrap(), &by_col, 1e-14));
    assert!(agree(&jr.to_vec::<f64>().unwrap(), &by_row, 1e-14));
    assert!(agree(&by_col, &by_row, 1e-14));
}

// ---- errors ----

#[test]
fn mismatched_batch_sizes_name_the_inputs() {
    let a = Tensor::zeros(&[3, 2], DType::F64);
    let b = Tensor::zeros(&[2, 4], DType::F64);
    let e = vmap_axes(
        |(a, b): (Tensor, Tensor)| a.sum_all() + b.sum_all(),
        &(a, b),
        &VmapAxes::new().in_axes(&[Some(0), Some(1)]),
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::Shape { ref op, .. } if op == "vmap"),
        "{e:?}"
    );
    assert!(e.to_string().starts_with(
        "shape error in `vmap`: inconsistent sizes for the mapped axis: input 0 (f64[3,2]) has size 3 along axis 0, but input 1 (f64[2,4]) has size 4 along axis 1"
    ), "{e}");
    let e = vmap_axes(
        |a: Tensor| a,
        &Tensor::zeros(&[3], DType::F64),
        &VmapAxes::new().axis_size(4),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("axis_size is 4, but input 0 (f64[3]) has size 3 along axis 0"),
        "{e}"
    );
}

#[test]
fn an_unmapped_output_that_varies_is_an_error() {
    let e = vmap_axes(
        |x: Tensor| x.sin(),
        &Tensor::zeros(&[3, 2], DType::F64),
        &VmapAxes::new().out_axes(&[None]),
    )
    .unwrap_err();
    assert!(
        e.to_string().starts_with("bad input to `vmap`: output 0 varies along the mapped axis but its out_axes entry is None"),
        "{e}"
    );
    // an output that does not vary may be unmapped, or broadcast when mapped
    let c = Tensor::new(Array::from_slice(&[1.0f64, 2.0]));
    let (a, b): (Tensor, Tensor) = vmap_axes(
        |x: Tensor| (c.clone(), &x * 2.0),
        &Tensor::zeros(&[3], DType::F64),
        &VmapAxes::new().out_axes(&[None, Some(0)]),
    )
    .unwrap();
    assert_eq!(a.shape(), &[2]);
    assert_eq!(b.shape(), &[3]);
    let bc: Tensor = vmap_axes(
        |_x: Tensor| c.clone(),
        &Tensor::zeros(&[3], DType::F64),
        &VmapAxes::new().out_axes(&[Some(1)]),
    )
    .unwrap();
    assert_eq!(
        bc.to_vec::<f64>().unwrap(),
        vec![1.0, 1.0, 1.0, 2.0, 2.0, 2.0]
    );
}

#[test]
fn bad_axes_and_missing_sizes() {
    let x = Tensor::zeros(&[3, 2], DType::F64);
    let e = vmap_axes(|x: Tensor| x, &x, &VmapAxes::new().in_axes(&[Some(2)])).unwrap_err();
    assert!(matches!(e, Error::Axis { .. }));
    assert!(
        e.to_string().starts_with("axis error in `vmap`: in_axes of input 0 (f64[3,2]): axis 2 is out of range for rank 2"),
        "{e}"
    );
    let e = vmap_axes(|x: Tensor| x, &x, &VmapAxes::new().out_axes(&[Some(-3)])).unwrap_err();
    assert!(
        e.to_string().starts_with(
            "axis error in `vmap`: out_axes of output 0: axis -3 is out of range for rank 2"
        ),
        "{e}"
    );
    let e = vmap_axes(|x: Tensor| x, &x, &VmapAxes::new().in_axes(&[None])).unwrap_err();
    assert!(e.loc().is_some_and(|l| l.file.ends_with("vmap.rs")), "{e}");
    assert!(
        e.to_string().starts_with(
            "bad input to `vmap`: no input is mapped: give the axis size with VmapAxes::axis_size"
        ),
        "{e}"
    );
    let e = vmap_axes(
        |(a, _b): (Tensor, Tensor)| a,
        &(x.clone(), x.clone()),
        &VmapAxes::new().in_axes(&[Some(0), None, None]),
    )
    .unwrap_err();
    assert!(
        e.to_string().starts_with(
            "bad input to `vmap`: 3 in_axes given for 2 leaves: give one per leaf, or one for all"
        ),
        "{e}"
    );
    // negative axes count from the end
    let s: Tensor = vmap_axes(
        |c: Tensor| c.sum_all(),
        &x,
        &VmapAxes::new().in_axes(&[Some(-1)]),
    )
    .unwrap();
    assert_eq!(s.shape(), &[2]);
    // with an axis size, nothing needs to be mapped
    let k: Tensor = vmap_axes(
        |x: Tensor| x.sum_all(),
        &x,
        &VmapAxes::new().in_axes(&[None]).axis_size(4),
    )
    .unwrap();
    assert_eq!(k.shape(), &[4]);
    // errors inside the mapped function come back with their line
    let line = line!() + 1;
    let bad = |x: Tensor| x.sum(&[5]);
    let e = vmap(bad, &x).unwrap_err();
    assert_eq!(e.loc().unwrap().line, line);
}

#[test]
fn vmap_program_text() {
    let p = Program::parse("{ lambda ; a:f64[3] b:f64[3] . let c:f64[] = dot_general[lhs_contracting=(0,) rhs_contracting=(0,) lhs_batch=() rhs_batch=()] a b in (c) }").unwrap();
    let v = vmap_program(&p, &[Some(0), None], 5).unwrap();
    v.check().unwrap();
    assert_eq!(
        v.to_string(),
        "{ lambda ; a:f64[5,3] b:f64[3] . let
    c:f64[5] = dot_general[lhs_contracting=(1,) rhs_contracting=(0,) lhs_batch=() rhs_batch=()] a b
  in (c) }"
    );
    let e = vmap_program(&p, &[Some(3), None], 5).unwrap_err();
    assert!(matches!(e, Error::Axis { .. }));
}
