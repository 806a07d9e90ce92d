//! Collectives over named axes under `vmap` with an axis name (issue 17, item 1): each
//! collective against the same computation written member by member in Rust; values that
//! do not vary along the axis; nested axes; and the transformations through them (jvp
//! against finite differences and against the jvp of the mapped function, vjp through the
//! collectives' transpose rules against the vjp of the mapped function and the adjoint
//! identity, vmap of a collective over an outer axis against the loop, jit against eager),
//! then the errors.

use ferrax::{
    all_gather, all_to_all, axis_index, checkpoint, fori_loop, jit, jvp, make_jaxpr, named_map,
    pmax, pmean, pmin, ppermute, psum, psum_scatter, vjp, vmap, vmap_axes, while_loop_with, DType,
    Program, RematPolicy, Tensor, VmapAxes, WhileOptions,
};

const N: usize = 4;
const NI: isize = N as isize;

fn named(name: &str) -> VmapAxes {
    VmapAxes::new().axis_name(name)
}

/// `N` members' values, each of `shape`: distinct, with a few ties across members.
fn members(seed: u64, shape: &[usize]) -> Tensor {
    let mut full = vec![N];
    full.extend(shape);
    let t = Tensor::random_uniform(seed, &full, -2.0, 2.0, DType::F64);
    // member 2 repeats member 0 at element 0 (a tie for pmax/pmin)
    let mut v = t.to_vec::<f64>().unwrap();
    let per: usize = shape.iter().product();
    v[2 * per] = v[0];
    Tensor::from_vec(v, &full)
}

fn values(t: &Tensor) -> Vec<f64> {
    t.to_vec::<f64>().unwrap()
}

/// Member `i`'s values of a stack along axis 0.
fn member(all: &[f64], i: usize) -> &[f64] {
    let per = all.len() / N;
    &all[i * per..(i + 1) * per]
}

fn map(f: impl FnOnce(Tensor) -> Tensor, xs: &Tensor) -> Vec<f64> {
    values(&vmap_axes(f, xs, &named("i")).unwrap())
}

#[test]
fn reductions_across_members_give_every_member_the_member_order_result() {
    let xs = members(1, &[3, 2]);
    let all = values(&xs);
    let per = 6;
    let (mut sum, mut max, mut min) = (vec![0.0; per], vec![f64::MIN; per], vec![f64::MAX; per]);
    for i in 0..N {
        for (k, &v) in member(&all, i).iter().enumerate() {
            sum[k] += v;
            max[k] = max[k].max(v);
            min[k] = min[k].min(v);
        }
    }
    let mean: Vec<f64> = sum.iter().map(|s| s / N as f64).collect();
    for (what, got, want) in [
        ("psum", map(|x| psum(&x, "i"), &xs), &sum),
        ("pmean", map(|x| pmean(&x, "i"), &xs), &mean),
        ("pmax", map(|x| pmax(&x, "i"), &xs), &max),
        ("pmin", map(|x| pmin(&x, "i"), &xs), &min),
    ] {
        for i in 0..N {
            assert_eq!(member(&got, i), &want[..], "{what}, member {i}");
        }
    }
}

#[test]
fn all_gather_stacks_the_members_along_the_new_axis() {
    let xs = members(2, &[3, 2]);
    let all = values(&xs);
    for axis in 0..=2 {
        let got = map(|x| all_gather(&x, "i", axis), &xs);
        // member i's result: shape [3, 2] with N inserted at `axis`
        let mut shape = vec![3, 2];
        shape.insert(axis, N);
        for i in 0..N {
            let g = member(&got, i);
            for (flat, &v) in g.iter().enumerate() {
                // unravel in `shape`, read which member and which element it is
                let mut idx = vec![0; 3];
                let mut r = flat;
                for d in (0..3).rev() {
                    idx[d] = r % shape[d];
                    r /= shape[d];
                }
                let m = idx.remove(axis);
                assert_eq!(v, member(&all, m)[idx[0] * 2 + idx[1]], "axis {axis}");
            }
        }
    }
}

#[test]
fn psum_scatter_gives_member_i_the_sum_of_index_i() {
    let xs = members(3, &[2, N]);
    let all = values(&xs);
    let got = map(|x| psum_scatter(&x, "i", 1), &xs);
    for i in 0..N {
        for r in 0..2 {
            let mut want = 0.0;
            for m in 0..N {
                want += member(&all, m)[r * N + i];
            }
            assert_eq!(member(&got, i)[r], want, "member {i}, row {r}");
        }
    }
}

#[test]
fn ppermute_sends_along_the_pairs_and_zeros_the_rest() {
    let xs = members(4, &[3]);
    let all = values(&xs);
    // 0 → 2, 3 → 0, 2 → 3; member 1 receives nothing
    let got = map(|x| ppermute(&x, "i", &[(0, 2), (3, 0), (2, 3)]), &xs);
    assert_eq!(member(&got, 2), member(&all, 0));
    assert_eq!(member(&got, 0), member(&all, 3));
    assert_eq!(member(&got, 3), member(&all, 2));
    assert_eq!(member(&got, 1), &[0.0; 3]);
}

/// Member `j`'s result of `all_to_all` on members' `r × c` matrices (row-major in `all`),
/// written out: block `j` of each member along `split`, joined along `concat`.
fn all_to_all_ref(
    all: &[f64],
    (r, c): (usize, usize),
    split: usize,
    concat: usize,
    j: usize,
) -> Vec<f64> {
    let blocks: Vec<Vec<Vec<f64>>> = (0..N)
        .map(|i| {
            let m = member(all, i);
            let (rows, cols) = if split == 0 {
                (j * r / N..(j + 1) * r / N, 0..c)
            } else {
                (0..r, j * c / N..(j + 1) * c / N)
            };
            rows.map(|a| cols.clone().map(|b| m[a * c + b]).collect())
                .collect()
        })
        .collect();
    if concat == 0 {
        blocks.into_iter().flatten().flatten().collect()
    } else {
        let n_rows = blocks[0].len();
        (0..n_rows)
            .flat_map(|a| blocks.iter().flat_map(move |b| b[a].clone()))
            .collect()
    }
}

#[test]
fn all_to_all_exchanges_blocks() {
    for (split, concat, r, c) in [
        (0, 1, 2 * N, 3),
        (1, 0, 3, 2 * N),
        (0, 0, 2 * N, 3),
        (1, 1, 3, N),
    ] {
        let xs = members(5, &[r, c]);
        let all = values(&xs);
        let got = map(|x| all_to_all(&x, "i", split, concat), &xs);
        for j in 0..N {
            let want = all_to_all_ref(&all, (r, c), split, concat, j);
            assert_eq!(
                member(&got, j),
                &want[..],
                "split {split}, concat {concat}, member {j}"
            );
        }
    }
}

#[test]
fn axis_index_numbers_the_members() {
    let xs = members(6, &[2]);
    let got = vmap_axes(
        |x: Tensor| &x * 0.0 + axis_index("i").astype(DType::F64),
        &xs,
        &named("i"),
    )
    .unwrap();
    let g = values(&got);
    for i in 0..N {
        assert_eq!(member(&g, i), &[i as f64; 2]);
    }
}

#[test]
fn a_value_that_does_not_vary_is_summed_over_the_members_too() {
    let xs = members(7, &[3]);
    let w = Tensor::from_vec(vec![0.1f64, 0.2, 0.3], &[3]);
    // w is captured: the same on every member; its psum adds it N times, in order
    let got = map(|x| &x * 0.0 + psum(&w, "i"), &xs);
    let want: Vec<f64> = [0.1f64, 0.2, 0.3]
        .iter()
        .map(|v| ((v + v) + v) + v)
        .collect();
    for i in 0..N {
        assert_eq!(member(&got, i), &want[..]);
    }
    // and an unmapped input (in_axes None) likewise
    let got = vmap_axes(
        |(x, w): (Tensor, Tensor)| &x * 0.0 + pmean(&w, "i"),
        &(xs.clone(), w.clone()),
        &named("i").in_axes(&[Some(0), None]),
    )
    .unwrap();
    let want_mean: Vec<f64> = want.iter().map(|s| s / N as f64).collect();
    assert_eq!(member(&values(&got), 1), &want_mean[..]);
}

#[test]
fn nested_axes_each_reduce_their_own_members() {
    // 2 × N members: outer axis "i" of 2, inner "j" of N
    let xs = Tensor::random_uniform(8, &[2, N, 3], -1.0, 1.0, DType::F64);
    let all = values(&xs);
    let f = |x: Tensor| {
        vmap_axes(
            |y: Tensor| (psum(&y, "j"), psum(&y, "i"), psum(&psum(&y, "i"), "j")),
            &x,
            &named("j"),
        )
        .unwrap()
    };
    let (over_j, over_i, over_both): (Tensor, Tensor, Tensor) =
        vmap_axes(f, &xs, &named("i")).unwrap();
    let at = |a: usize, b: usize, c: usize| all[(a * N + b) * 3 + c];
    let (oj, oi, ob) = (values(&over_j), values(&over_i), values(&over_both));
    for a in 0..2 {
        for b in 0..N {
            for c in 0..3 {
                let k = (a * N + b) * 3 + c;
                let sum_j: f64 = (0..N).map(|m| at(a, m, c)).fold(0.0, |s, v| s + v);
                let sum_i: f64 = (0..2).map(|m| at(m, b, c)).fold(0.0, |s, v| s + v);
                assert_eq!(oj[k], sum_j);
                assert_eq!(oi[k], sum_i);
                let both: f64 = (0..N)
                    .map(|m| (0..2).map(|l| at(l, m, c)).fold(0.0, |s, v| s + v))
                    .fold(0.0, |s, v| s + v);
                assert_eq!(ob[k], both);
            }
        }
    }
}

/// A function of every kind of collective, nonlinear around them.
fn body(x: Tensor) -> Tensor {
    let g = all_gather(&x.sin(), "i", 0); // [N, 2N]
    let s = psum_scatter(&(&g * &g), "i", 0); // [2N]
    let p = ppermute(&s, "i", &[(0, 1), (1, 2), (2, 3), (3, 0)]);
    let a = all_to_all(&p.reshape(&[NI, 2]), "i", 0, 1); // [1, 2N]
    let m = pmax(&x, "i") + pmean(&(&x * &x), "i") + pmin(&x.cos(), "i");
    a.reshape(&[2 * NI]) * psum(&m, "i").tanh() + &x * axis_index("i").astype(DType::F64)
}

#[test]
fn jvp_through_collectives_matches_finite_differences_and_the_mapped_jvp() {
    let xs = members(9, &[2 * N]);
    let ts = Tensor::random_uniform(10, &[N, 2 * N], -1.0, 1.0, DType::F64);
    let mapped = |x: Tensor| vmap_axes(body, &x, &named("i")).unwrap();
    // jvp of the mapped function (no collective left) ...
    let (y, dy) = jvp(mapped, &xs, &ts).unwrap();
    // ... equals the mapped jvp, whose body differentiates the collectives themselves
    let (y2, dy2): (Tensor, Tensor) = vmap_axes(
        |(x, t): (Tensor, Tensor)| jvp(body, &x, &t).unwrap(),
        &(xs.clone(), ts.clone()),
        &named("i"),
    )
    .unwrap();
    assert_eq!(values(&y), values(&y2));
    for (a, b) in values(&dy).iter().zip(values(&dy2)) {
        assert!((a - b).abs() <= 1e-12 * (1.0 + a.abs()), "{a} vs {b}");
    }
    // and finite differences (pmax/pmin without ties near the sample)
    let eps = 1e-6;
    let at = |s: f64| values(&mapped(&xs + &ts * s));
    let (up, down) = (at(eps), at(-eps));
    for ((u, d), g) in up.iter().zip(&down).zip(values(&dy)) {
        let fd = (u - d) / (2.0 * eps);
        assert!((fd - g).abs() <= 1e-6 * (1.0 + g.abs()), "{fd} vs {g}");
    }
}

#[test]
fn reverse_mode_through_the_collectives_transposes_agrees_with_the_mapped_vjp() {
    let xs = members(11, &[2 * N]);
    let cts = Tensor::random_uniform(12, &[N, 2 * N], -1.0, 1.0, DType::F64);
    let mapped = |x: Tensor| vmap_axes(body, &x, &named("i")).unwrap();
    let (_, pull) = vjp(mapped, &xs).unwrap();
    let want = values(&pull.apply::<Tensor, Tensor>(&cts).unwrap());
    // vjp inside the map: the body's linear program holds the collectives, transposed by
    // their own rules (psum to psum, all_gather to psum_scatter, ...)
    let got: Tensor = vmap_axes(
        |(x, c): (Tensor, Tensor)| {
            let (_, pull) = vjp(body, &x).unwrap();
            pull.apply::<Tensor, Tensor>(&c).unwrap()
        },
        &(xs.clone(), cts.clone()),
        &named("i"),
    )
    .unwrap();
    for (a, b) in values(&got).iter().zip(&want) {
        assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "{a} vs {b}");
    }
}

#[test]
fn linear_collectives_satisfy_the_adjoint_identity_member_by_member() {
    // f is linear: the transpose of its collectives alone gives its vjp
    let lin = |x: Tensor| {
        let g = all_gather(&x, "i", 1); // [2N, N]
        let s = psum_scatter(&g, "i", 1); // [2N]
        let p = ppermute(
            &(&s + psum(&x, "i") + pmean(&x, "i")),
            "i",
            &[(0, 3), (3, 1), (1, 0)],
        );
        all_to_all(&p.reshape(&[2, NI]), "i", 1, 0).reshape(&[2 * NI])
    };
    let xs = members(13, &[2 * N]);
    let cts = Tensor::random_uniform(14, &[N, 2 * N], -1.0, 1.0, DType::F64);
    let fx = vmap_axes(lin, &xs, &named("i")).unwrap();
    let ftc: Tensor = vmap_axes(
        |(x, c): (Tensor, Tensor)| vjp(lin, &x).unwrap().1.apply::<Tensor, Tensor>(&c).unwrap(),
        &(xs.clone(), cts.clone()),
        &named("i"),
    )
    .unwrap();
    let dot = |a: &Tensor, b: &Tensor| -> f64 {
        values(a).iter().zip(values(b)).map(|(p, q)| p * q).sum()
    };
    let (l, r) = (dot(&fx, &cts), dot(&xs, &ftc));
    assert!((l - r).abs() <= 1e-12 * l.abs().max(1.0), "{l} vs {r}");
}

#[test]
fn a_collective_over_an_outer_axis_batches_like_the_loop() {
    // inside the map over "i", an unnamed vmap over rows: psum over "i" of a batch of rows
    let xs = Tensor::random_uniform(15, &[N, 3, 2 * N], -1.0, 1.0, DType::F64);
    let f = |x: Tensor| {
        vmap(
            |row: Tensor| {
                let g = all_gather(&row, "i", 0);
                psum_scatter(&g, "i", 0)
                    + all_to_all(&row.reshape(&[NI, 2]), "i", 0, 1).reshape(&[2 * NI])
                    + pmax(&row, "i")
            },
            &x,
        )
        .unwrap()
    };
    let got = values(&vmap_axes(f, &xs, &named("i")).unwrap());
    // the loop: each row index r on its own, mapped over "i"
    for r in 0..3 {
        let rows = xs.slice_axis(1, r, r + 1).reshape(&[NI, 2 * NI]);
        let one = values(
            &vmap_axes(
                |row: Tensor| {
                    let g = all_gather(&row, "i", 0);
                    psum_scatter(&g, "i", 0)
                        + all_to_all(&row.reshape(&[NI, 2]), "i", 0, 1).reshape(&[2 * NI])
                        + pmax(&row, "i")
                },
                &rows,
                &named("i"),
            )
            .unwrap(),
        );
        for i in 0..N {
            for c in 0..2 * N {
                assert_eq!(got[(i * 3 + r) * 2 * N + c], one[i * 2 * N + c]);
            }
        }
    }
}

#[test]
fn jit_of_a_named_map_equals_eager() {
    let xs = members(16, &[2 * N]);
    let eager = values(&vmap_axes(body, &xs, &named("i")).unwrap());
    let f = jit(|x: Tensor| vmap_axes(body, &x, &named("i")).unwrap());
    assert_eq!(values(&f.call(&xs).unwrap()), eager);
}

#[test]
fn collectives_outside_a_map_binding_their_name_are_errors() {
    let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2]);
    let e = psum(&x, "i").to_vec::<f64>().unwrap_err().to_string();
    assert!(e.contains("psum") && e.contains("`i`"), "{e}");
    // a map binding another name
    let e = vmap_axes(|x: Tensor| psum(&x, "k"), &x, &named("i"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("axis name `k`"), "{e}");
    // a program holding a collective evaluated outside any map
    let p = Program::parse(
        "{ lambda ; a:f64[2] . let b:f64[2] = psum[axis_name=i axis_size=4] a in (b) }",
    )
    .unwrap();
    let e = p.eval(&[x.array().unwrap()]).unwrap_err().to_string();
    assert!(e.contains("no map binds the axis name `i`"), "{e}");
}

#[test]
fn bad_collective_arguments_are_errors_naming_the_collective() {
    let xs = members(17, &[3]);
    let err =
        |f: &dyn Fn(Tensor) -> Tensor| vmap_axes(f, &xs, &named("i")).unwrap_err().to_string();
    let e = err(&|x| psum_scatter(&x, "i", 0));
    assert!(e.contains("psum_scatter") && e.contains("size 4"), "{e}");
    let e = err(&|x| ppermute(&x, "i", &[(0, 1), (2, 1)]));
    assert!(e.contains("ppermute") && e.contains("twice"), "{e}");
    let e = err(&|x| ppermute(&x, "i", &[(0, 7)]));
    assert!(e.contains("not a member"), "{e}");
    let e = err(&|x| all_to_all(&x, "i", 0, 0));
    assert!(
        e.contains("all_to_all") && e.contains("equal blocks"),
        "{e}"
    );
    let e = err(&|x| all_gather(&x, "i", 5));
    assert!(
        e.contains("all_gather") && e.contains("out of range"),
        "{e}"
    );
    let e = err(&|x| pmean(&x.astype(DType::I32), "i").astype(DType::F64));
    assert!(e.contains("pmean") && e.contains("f32 or f64"), "{e}");
    for bad in ["", "1i", "a b", "f32", "true"] {
        let e = vmap_axes(|x: Tensor| psum(&x, bad), &xs, &named(bad))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot name an axis"), "{bad:?}: {e}");
    }
}

#[test]
fn programs_with_collectives_print_and_parse_back() {
    let xs = members(18, &[2 * N]);
    // the body as traced inside the map: its program holds the collectives
    let mut text = String::new();
    vmap_axes(
        |x: Tensor| {
            text = make_jaxpr(body, &x).unwrap().to_string();
            x
        },
        &xs,
        &named("i"),
    )
    .unwrap();
    for name in [
        "psum[",
        "all_gather[",
        "psum_scatter[",
        "ppermute[",
        "all_to_all[",
        "pmax[",
        "axis_index[",
    ] {
        assert!(text.contains(name), "{name} missing from {text}");
    }
    let p = Program::parse(&text).unwrap();
    assert_eq!(p.to_string(), text);
}

/// The mapped function as a `named_map`, and as a named `vmap`.
fn as_map(x: &Tensor) -> Tensor {
    named_map(body, x, "i").unwrap()
}
fn as_vmap(x: &Tensor) -> Tensor {
    vmap_axes(body, x, &named("i")).unwrap()
}

#[test]
fn named_map_evaluates_in_lockstep_to_the_batched_bits() {
    let xs = members(19, &[2 * N]);
    assert_eq!(values(&as_map(&xs)), values(&as_vmap(&xs)));
    // the program keeps the map, with the collectives in its body
    let p = make_jaxpr(|x: Tensor| as_map(&x), &xs).unwrap();
    assert_eq!(p.count_prim("named_map"), 1, "{p}");
    assert_eq!(
        p.eqns
            .iter()
            .find(|e| e.prim.name() == "named_map")
            .unwrap()
            .prim
            .subprograms()[0]
            .count_prim("psum"),
        1
    );
    // evaluated by a compiled plan too, and printed and parsed back
    let f = jit(|x: Tensor| as_map(&x));
    assert_eq!(values(&f.call(&xs).unwrap()), values(&as_vmap(&xs)));
    let q = Program::parse(&p.to_string()).unwrap();
    assert_eq!(
        values(&Tensor::new(
            q.eval(&[xs.array().unwrap()]).unwrap().remove(0)
        )),
        values(&as_vmap(&xs))
    );
}

#[test]
fn named_map_transforms_member_by_member() {
    let xs = members(20, &[2 * N]);
    let ts = Tensor::random_uniform(21, &[N, 2 * N], -1.0, 1.0, DType::F64);
    let close = |a: &[f64], b: &[f64]| {
        for (p, q) in a.iter().zip(b) {
            assert!((p - q).abs() <= 1e-12 * (1.0 + q.abs()), "{p} vs {q}");
        }
    };
    // jvp and linearize of the map against those of the batched function
    let (y, dy) = jvp(|x: Tensor| as_map(&x), &xs, &ts).unwrap();
    let (y2, dy2) = jvp(|x: Tensor| as_vmap(&x), &xs, &ts).unwrap();
    assert_eq!(values(&y), values(&y2));
    close(&values(&dy), &values(&dy2));
    let (_, lin) = ferrax::linearize(|x: Tensor| as_map(&x), &xs).unwrap();
    close(
        &values(&lin.apply::<Tensor, Tensor>(&ts).unwrap()),
        &values(&dy2),
    );
    // vjp: the transposed map, each member's collectives transposed by their rules
    let (_, pull) = vjp(|x: Tensor| as_map(&x), &xs).unwrap();
    let (_, pull2) = vjp(|x: Tensor| as_vmap(&x), &xs).unwrap();
    close(
        &values(&pull.apply::<Tensor, Tensor>(&ts).unwrap()),
        &values(&pull2.apply::<Tensor, Tensor>(&ts).unwrap()),
    );
    // vmap of the map over a batch of inputs against the loop
    let batch = Tensor::random_uniform(22, &[3, N, 2 * N], -1.0, 1.0, DType::F64);
    let got = values(&vmap(|x: Tensor| as_map(&x), &batch).unwrap());
    for b in 0..3 {
        let one = batch.slice_axis(0, b, b + 1).reshape(&[NI, 2 * NI]);
        let want = values(&as_vmap(&one));
        assert_eq!(
            &got[b * N * 2 * N..(b + 1) * N * 2 * N],
            &want[..],
            "batch {b}"
        );
    }
}

#[test]
fn named_map_rejects_bad_inputs() {
    let xs = members(23, &[3]);
    let e = named_map(|x: Tensor| x, &xs, "1bad")
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot name an axis"), "{e}");
    let e = named_map(
        |(x, y): (Tensor, Tensor)| &x + &y.sum_all(),
        &(xs.clone(), Tensor::zeros(&[2, 3], DType::F64)),
        "i",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("named_map") && e.contains("dimension 0"), "{e}");
    let e = named_map(|x: Tensor| x, &Tensor::scalar(1.0f64), "i")
        .unwrap_err()
        .to_string();
    assert!(e.contains("dimension 0"), "{e}");
}

#[test]
fn control_flow_that_does_not_vary_still_sees_the_mapped_axis() {
    // a checkpoint and a loop whose operands are constants, using the axis inside: their
    // collectives still combine the members (found by review: they were left unbatched)
    let xs = members(24, &[2]);
    let got = vmap_axes(
        |x: Tensor| {
            let zero = Tensor::zeros(&[2], DType::F64);
            let c = checkpoint(
                |c: Tensor| &c + axis_index("i").astype(DType::F64),
                RematPolicy::Nothing,
                &zero,
            )
            .unwrap();
            // three steps of adding every member's index: 3 * (0 + 1 + 2 + 3)
            let l = fori_loop(
                0,
                3,
                |_, acc: Tensor| &acc + psum(&axis_index("i").astype(DType::F64), "i"),
                &Tensor::scalar(0.0f64),
            )
            .unwrap();
            &x * 0.0 + c + l
        },
        &xs,
        &named("i"),
    )
    .unwrap();
    let g = values(&got);
    for i in 0..N {
        assert_eq!(member(&g, i), &[i as f64 + 18.0; 2], "member {i}");
    }
}

#[test]
fn a_map_whose_collectives_count_other_members_is_an_error_not_a_crash() {
    let p = Program::parse(
        "{ lambda ; a:f64[2,3] . let
    b:f64[2,3] = named_map[body={ lambda ; x:f64[3] . let
        y:f64[3] = ppermute[axis_name=i axis_size=4 src=(3) dst=(0)] x
      in (y) } axis_name=i axis_size=2] a
  in (b) }",
    );
    let e = match p {
        Err(e) => e.to_string(),
        Ok(p) => p.check().unwrap_err().to_string(),
    };
    assert!(
        e.contains("counts 4 members of `i`, but the map has 2"),
        "{e}"
    );
}

#[test]
fn an_inner_map_over_the_same_name_hides_the_outer_one() {
    // inside, `i` is the inner axis (of 2), as with nested vmaps of the same name
    let xs = Tensor::random_uniform(25, &[N, 2, 3], -1.0, 1.0, DType::F64);
    let inner = |x: Tensor| named_map(|y: Tensor| psum(&y, "i"), &x, "i").unwrap();
    let want = values(
        &vmap_axes(
            |x: Tensor| vmap_axes(|y: Tensor| psum(&y, "i"), &x, &named("i")).unwrap(),
            &xs,
            &named("i"),
        )
        .unwrap(),
    );
    assert_eq!(values(&named_map(inner, &xs, "i").unwrap()), want);
    let f = jit(|x: Tensor| named_map(inner, &x, "i").unwrap());
    assert_eq!(values(&f.call(&xs).unwrap()), want);
}

#[test]
fn compiled_maps_run_members_on_threads_and_loops_may_use_the_axis() {
    // jit runs each member on a thread of its own; a loop in the body calls psum over the
    // map's axis every step (the lockstep evaluator refuses that; vmap is the oracle)
    let xs = members(26, &[3]);
    let body =
        |x: Tensor| fori_loop(0, 4, |_, c: Tensor| (&c * 0.5 + psum(&c, "i")).tanh(), &x).unwrap();
    let want = values(&vmap_axes(body, &xs, &named("i")).unwrap());
    let f = jit(|x: Tensor| named_map(body, &x, "i").unwrap());
    assert_eq!(values(&f.call(&xs).unwrap()), want);
    let e = named_map(body, &xs, "i").unwrap_err().to_string();
    assert!(e.contains("not evaluated yet"), "{e}");
}

#[test]
fn a_failing_member_stops_every_member_with_its_error_not_a_hang() {
    // member 2 counts up from -100 and runs past its loop's bound, while the others (from
    // 1) finish and wait for it at the psum after the loop
    let body = |x: Tensor| {
        let counted = while_loop_with(
            |c: Tensor| c.less(10.0),
            |c: Tensor| c + 1.0,
            &x,
            WhileOptions {
                max_steps: Some(12),
                max_checkpoints: None,
            },
        );
        match counted {
            Ok(c) => psum(&c, "i"),
            Err(e) => Tensor::from_error(e),
        }
    };
    let f = jit(|x: Tensor| named_map(body, &x, "i").unwrap_or_else(Tensor::from_error));
    let good = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[N]);
    assert_eq!(values(&f.call(&good).unwrap()), vec![40.0; N]);
    let started = std::time::Instant::now();
    let bad = Tensor::from_vec(vec![1.0f64, 1.0, -100.0, 1.0], &[N]);
    let e = f.call(&bad).unwrap_err().to_string();
    assert!(
        e.contains("member 2 failed") && e.contains("max_steps = 12"),
        "{e}"
    );
    // released at once, not after the communicator's wait bound
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "it waited"
    );
}

#[test]
fn maps_and_collectives_naming_enormous_axes_are_errors_not_aborts() {
    // found by the fuzzer: a ppermute over an axis of 4e11 members allocated a flag per
    // member in its shape rule
    let e = Program::parse(
        "{ lambda ; a:f64[3,6] . let
    b:f64[3,6] = named_map[body={ lambda ; x:f64[6] . let
        p:f64[6] = ppermute[axis_name=i axis_size=399999999999 src=(0,1,2) dst=(1,2,0)] x
      in (p) } axis_name=i axis_size=3] a
  in (b) }",
    )
    .and_then(|p| p.check())
    .unwrap_err()
    .to_string();
    assert!(e.contains("counts 399999999999 members"), "{e}");
    // a map without operands over an axis far too large to hold its outputs
    let p = Program::parse(
        "{ lambda ; . let
    b:i32[100000000000] = named_map[body={ lambda ; . let
        k:i32[] = axis_index[axis_name=i axis_size=100000000000]
      in (k) } axis_name=i axis_size=100000000000]
  in (b) }",
    )
    .unwrap();
    let e = p.eval(&[]).unwrap_err().to_string();
    assert!(e.contains("named_map"), "{e}");
    let e = ferrax::Plan::new(&p)
        .unwrap()
        .run(vec![])
        .unwrap_err()
        .to_string();
    assert!(e.contains("named_map"), "{e}");
}

#[test]
fn pmax_and_pmin_split_the_tangent_evenly_between_tied_members() {
    // members 1 and 2 tie for the maximum; members 0 and 3 for the minimum
    let xs = Tensor::from_vec(vec![0.0f64, 3.0, 3.0, 0.0], &[N]);
    let ts = Tensor::from_vec(vec![10.0f64, 20.0, 40.0, 80.0], &[N]);
    for (f, want) in [
        (pmax as fn(&Tensor, &str) -> Tensor, 30.0),
        (pmin as fn(&Tensor, &str) -> Tensor, 45.0),
    ] {
        // the jvp taken inside the map, so the collective's own rule runs
        let (_, dy): (Tensor, Tensor) = vmap_axes(
            |(x, t): (Tensor, Tensor)| jvp(|x: Tensor| f(&x, "i"), &x, &t).unwrap(),
            &(xs.clone(), ts.clone()),
            &named("i"),
        )
        .unwrap();
        assert_eq!(values(&dy), vec![want; N]);
    }
}
