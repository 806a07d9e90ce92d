//! jit: compiled plans equal the reference evaluator on every op-table row and on random
//! programs; the optimization passes (simplification, constant folding, CSE, DCE); caching
//! per signature; composition with the transformations; strided matrix products; in-place
//! updates never touch the caller's arrays.

mod harness;

use std::cell::Cell;

use ferrax::{
    eval_counts, grad, jit, jit_linearize, jvp, linearize, make_jaxpr, optimize, reset_eval_counts,
    vmap, Array, DType, Plan, Program, Tensor,
};
use harness::{
    arb_program, close, close_or_in_band, magnitude_run, random_args, random_array, random_inputs,
    reference_band, single_eqn_program, Column, Tally,
};
use proptest::prelude::*;

fn tol(d: DType) -> f64 {
    if d == DType::F32 {
        1e-6
    } else {
        1e-14
    }
}

#[test]
fn plans_equal_the_reference_evaluator_for_every_row_and_dtype() {
    let mut tally = Tally::new(&[Column::Jit]);
    for row in Column::Jit.rows() {
        for &d in row.dtypes {
            let avals = (row.avals)(d);
            let p = row.program(d);
            for seed in 0..3 {
                // static operands (a cond's index) take each listed value in turn
                let args = row.args(&avals, seed, seed as usize);
                let want = p.eval(&args).unwrap();
                let got = Plan::new(&p).unwrap().run(args.clone()).unwrap();
                assert_eq!(got.len(), want.len(), "{} on {d}", row.name);
                // a loop compounds the f32 kernels' rounding over its iterations
                let loops = if d == DType::F32 && !row.prim.subprograms().is_empty() {
                    10.0
                } else {
                    1.0
                };
                for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        close(g, w, loops * tol(w.dtype())),
                        "{} on {d}, output {k}: plan {g:?} reference {w:?}",
                        row.name,
                    );
                }
                // the caller's arrays are untouched (no in-place update of shared buffers)
                let again = row.args(&avals, seed, seed as usize);
                for (a, b) in args.iter().zip(&again) {
                    assert!(a.same_values(b), "{}: an input was modified", row.name);
                }
                tally.checked(Column::Jit, &row);
            }
        }
    }
    tally.assert_every_claimed_row_checked();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: harness::cases(128), ..ProptestConfig::default() })]

    #[test]
    fn random_programs_plans_equal_the_reference(p in arb_program(14), seed in 0u64..10_000) {
        let args = random_inputs(&p, seed);
        let want = p.eval(&args).unwrap();
        let opt = optimize(&p).unwrap();
        opt.check().unwrap();
        prop_assert_eq!(Program::parse(&opt.to_string()).unwrap().to_string(), opt.to_string());
        let got = Plan::new(&p).unwrap().run(args.clone()).unwrap();
        // to rounding relative to the terms a result is made of: the plan's kernels differ
        // from the reference's in the last bits (f64 exp and expm1 by up to 3 ulp,
        // `math/accuracy.rs`), which cancellation (x - tanh x) magnifies, and so does a
        // function that multiplies relative errors: `expm1(x²)` by 2x², up to about 1400
        // before it overflows (the regressions file's case: 3 ulp become 1.0e-12); or the
        // plan's value lies between the reference's with those kernels' results moved up and
        // down by more than they differ (`reference_band`): for programs that amplify the
        // difference beyond the size of their terms (the file's third case iterates
        // `h ← log(k h)` near h = 0.05, and 3 ulp become 1.6e-10 of 0.05) or jump (its
        // fourth: `tan` of an iterated `exp`, 1e6 or more)
        let scale = magnitude_run(&p, &args);
        let band = reference_band(&p, &args);
        for (k, ((g, w), s)) in got.iter().zip(&want).zip(&scale).enumerate() {
            prop_assert!(close_or_in_band(g, w, s, band.get(k), 1e-10), "plan {:?}\nreference {:?}\n{}\noptimized\n{}", g, w, p, opt);
        }
    }
}

// ---- optimization ----

/// `(A·B + C·Dᵀ)ᵀ` becomes `Bᵀ·Aᵀ + D·Cᵀ` with no transpose left (the products write the
/// transposed layout themselves), and the plan's values stay the reference's to rounding;
/// a sum whose term is read twice keeps its transpose.
#[test]
fn a_transposed_sum_of_products_becomes_a_sum_of_swapped_products() {
    let m = |seed, shape: &[usize]| Tensor::random_uniform(seed, shape, -1.0, 1.0, DType::F64);
    let args = (m(1, &[3, 5]), m(2, &[5, 4]), m(3, &[3, 6]), m(4, &[4, 6]));
    let f = |(a, b, c, d): (Tensor, Tensor, Tensor, Tensor)| {
        (a.matmul(&b) + c.matmul(&d.transpose(&[1, 0]))).transpose(&[1, 0])
    };
    let p = make_jaxpr(f, &args).unwrap();
    assert_eq!(p.count_prim("transpose"), 2, "{p}");
    let o = optimize(&p).unwrap();
    o.check().unwrap();
    assert_eq!(o.count_prim("transpose"), 0, "{o}");
    let arrays = [&args.0, &args.1, &args.2, &args.3]
        .map(|t| t.array().unwrap())
        .to_vec();
    let want = p.eval(&arrays).unwrap();
    assert_eq!(want[0].shape(), &[4, 3]);
    let got = Plan::new(&p).unwrap().run(arrays.clone()).unwrap();
    assert!(
        close(&got[0], &want[0], 1e-14),
        "{:?} vs {:?}",
        got[0],
        want[0]
    );
    assert!(close(&o.eval(&arrays).unwrap()[0], &want[0], 1e-14));
    // a term read twice: the transpose stays (rewriting it would change the other reader)
    let g = |(a, b, c, d): (Tensor, Tensor, Tensor, Tensor)| {
        let ab = a.matmul(&b);
        let s = &ab + c.matmul(&d.transpose(&[1, 0]));
        vec![s.transpose(&[1, 0]), ab]
    };
    let o = optimize(&make_jaxpr(g, &args).unwrap()).unwrap();
    assert_eq!(o.count_prim("transpose"), 1, "{o}");
}

#[test]
fn transformations_leftovers_are_simplified_away() {
    // the vjp of x ↦ sum(sin x) seeds the cotangent with a broadcast 1.0 and multiplies by it
    let g = |x: Tensor| grad(|z: Tensor| z.sin().sum_all(), &x).unwrap();
    let p = make_jaxpr(g, &Tensor::zeros(&[4], DType::F64)).unwrap();
    assert!(p.eqns.len() > 2, "{p}");
    let o = optimize(&p).unwrap();
    assert_eq!(
        o.to_string(),
        "{ lambda ; a:f64[4] . let\n    b:f64[4] = cos a\n  in (b) }"
    );
}

#[test]
fn cse_constant_folding_and_identities() {
    let p = Program::parse(
        "{ lambda ; a:f64[3] . let
    b:f64[3] = sin a
    c:f64[3] = sin a
    d:f64[3] = add b c
    e:f64[] = mul 2.0:f64 3.0:f64
    f:f64[3] = broadcast_in_dim[shape=(3,) broadcast_dimensions=()] e
    g:f64[3] = mul d f
    h:f64[3] = reshape[new_sizes=(3,)] g
    i:f64[3] = neg h
    j:f64[3] = neg i
    k:f64[3] = transpose[permutation=(0,)] j
    m:bool[3] = gt k k
    l:f64[3] = select m k k
  in (l) }",
    );
    let p = match p {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    let o = optimize(&p).unwrap();
    assert_eq!(
        o.to_string(),
        "{ lambda a:f64[3] = [6.0, 6.0, 6.0] ; b:f64[3] . let
    c:f64[3] = sin b
    d:f64[3] = add c c
    e:f64[3] = mul d a
  in (e) }"
    );
    let x = Array::from_slice(&[0.1f64, 0.2, 0.3]);
    assert!(close(
        &o.eval(std::slice::from_ref(&x)).unwrap()[0],
        &p.eval(&[x]).unwrap()[0],
        1e-15
    ));
}

#[test]
fn pads_and_slices_that_keep_the_shape_are_removed() {
    // what a matrix product's transpose leaves around an [n, 1] value; a pad with interior
    // width in a dimension of one element keeps the shape too
    let p = Program::parse(
        "{ lambda ; a:f64[4,1] . let
    b:f64[4,1] = pad[low=(0,0) high=(0,0) interior=(0,0)] a 0.0:f64
    c:f64[4,1] = slice[start=(0,0) limit=(4,1) strides=(1,1)] b
    d:f64[4,1] = pad[low=(0,0) high=(0,0) interior=(0,3)] c 0.0:f64
    e:f64[4,1] = neg d
    f:f64[2,1] = slice[start=(0,0) limit=(4,1) strides=(2,1)] e
  in (e, f) }",
    )
    .unwrap();
    let o = optimize(&p).unwrap();
    assert_eq!(
        o.to_string(),
        "{ lambda ; a:f64[4,1] . let
    b:f64[4,1] = neg a
    c:f64[2,1] = slice[start=(0,0) limit=(4,1) strides=(2,1)] b
  in (b, c) }"
    );
    let x = Array::from_vec(vec![1.0f64, -2.0, 3.5, 0.25], &[4, 1]).unwrap();
    let want = p.eval(std::slice::from_ref(&x)).unwrap();
    let got = o.eval(&[x]).unwrap();
    for (w, g) in want.iter().zip(&got) {
        assert_eq!(w.to_f64_vec(), g.to_f64_vec());
    }
}

// ---- jit ----

#[test]
fn jit_traces_once_per_signature() {
    let traces = Cell::new(0);
    let f = jit(|x: Tensor| {
        traces.set(traces.get() + 1);
        (x.exp() + 1.0).log()
    });
    let a = Tensor::random_normal(1, &[5], DType::F64);
    let y1 = f.call(&a).unwrap();
    let y2 = f.call(&a).unwrap();
    assert_eq!(traces.get(), 1);
    assert!(y1.array().unwrap().same_values(&y2.array().unwrap()));
    let want = (a.exp() + 1.0).log().array().unwrap();
    assert!(close(&y1.array().unwrap(), &want, 1e-15));
    f.call(&Tensor::random_normal(2, &[6], DType::F64)).unwrap();
    f.call(&Tensor::random_normal(2, &[5], DType::F32)).unwrap();
    assert_eq!((traces.get(), f.cache_size()), (3, 3));
    // the caller's tensor is not updated in place
    assert!(a
        .array()
        .unwrap()
        .same_values(&Tensor::random_normal(1, &[5], DType::F64).array().unwrap()));
}

#[test]
fn jit_composes_with_the_transformations() {
    let loss = |w: Tensor| (w.sin() * &w).sum_all();
    let w = Tensor::random_normal(3, &[4], DType::F64);
    // jit of grad
    let g = jit(|w: Tensor| grad(loss, &w).unwrap());
    assert!(close(
        &g.call(&w).unwrap().array().unwrap(),
        &grad(loss, &w).unwrap().array().unwrap(),
        1e-14
    ));
    // jit of vmap of jvp
    let ts = Tensor::random_normal(4, &[3, 4], DType::F64);
    let vj = jit(|(w, ts): (Tensor, Tensor)| {
        vmap(|t: Tensor| jvp(loss, &w, &t).unwrap().1, &ts).unwrap()
    });
    let got = vj.call(&(w.clone(), ts.clone())).unwrap();
    for i in 0..3 {
        let want = jvp(loss, &w, &ts.index_axis(0, i))
            .unwrap()
            .1
            .item()
            .unwrap();
        assert!((got.to_vec::<f64>().unwrap()[i] - want).abs() < 1e-14);
    }
    // jit inside another trace is traced through
    let inner = jit(|x: Tensor| x.cos());
    let p = make_jaxpr(|x: Tensor| inner.call(&x).unwrap() * 2.0, &w).unwrap();
    assert_eq!(p.count_prim("cos"), 1);
    assert_eq!(inner.cache_size(), 0);
    // grad of a jitted function
    let jl = jit(loss);
    let gj = grad(|w: Tensor| jl.call(&w).unwrap(), &w).unwrap();
    assert!(close(
        &gj.array().unwrap(),
        &grad(loss, &w).unwrap().array().unwrap(),
        1e-15
    ));
}

#[test]
fn jit_linearize_and_linear_maps_run_cached_plans() {
    let f = |x: Tensor| (x.sin() * x.exp()).tanh();
    let lin = jit_linearize(f);
    for seed in 0..3 {
        let x = Tensor::random_normal(seed, &[6], DType::F64);
        let t = Tensor::random_normal(seed + 10, &[6], DType::F64);
        let (y, f_jvp) = lin.call(&x).unwrap();
        let (y2, d2) = jvp(f, &x, &t).unwrap();
        assert!(close(&y.array().unwrap(), &y2.array().unwrap(), 1e-14));
        reset_eval_counts();
        let d: Tensor = f_jvp.apply(&t).unwrap();
        let counts = eval_counts();
        assert!(
            counts.keys().all(|k| ["mul", "add"].contains(k)),
            "{counts:?}"
        );
        assert!(close(&d.array().unwrap(), &d2.array().unwrap(), 1e-14));
        let ct: Tensor = f_jvp.transpose().unwrap().apply(&t).unwrap();
        let (_, lin2) = linearize(f, &x).unwrap();
        let ct2: Tensor = lin2.transpose().unwrap().apply(&t).unwrap();
        assert!(close(&ct.array().unwrap(), &ct2.array().unwrap(), 1e-14));
    }
    assert_eq!(lin.cache_size(), 1);
}

#[test]
fn strided_matrix_products_equal_the_reference_for_every_layout() {
    let cases: Vec<(Vec<usize>, Vec<usize>, usize, usize)> = vec![
        (vec![3, 4], vec![4, 5], 1, 0),
        (vec![4, 3], vec![4, 5], 0, 0),
        (vec![3, 4], vec![5, 4], 1, 1),
        (vec![4, 3], vec![5, 4], 0, 1),
        (vec![4], vec![4, 5], 0, 0),
        (vec![4], vec![5, 4], 0, 1),
        (vec![3, 4], vec![4], 1, 0),
        (vec![4, 3], vec![4], 0, 0),
        (vec![4], vec![4], 0, 0),
        (vec![64, 200], vec![200, 96], 1, 0),
    ];
    for d in [DType::F64, DType::F32] {
        for (ls, rs, lc, rc) in &cases {
            let l = random_array(1, &ferrax::Aval::new(ls.clone(), d), harness::Domain::Real);
            let r = random_array(2, &ferrax::Aval::new(rs.clone(), d), harness::Domain::Real);
            let prim = ferrax::Primitive::DotGeneral {
                lhs_contracting: vec![*lc],
                rhs_contracting: vec![*rc],
                lhs_batch: vec![],
                rhs_batch: vec![],
            };
            let p = single_eqn_program(&prim, &[l.aval(), r.aval()]).unwrap();
            let want = p.eval(&[l.clone(), r.clone()]).unwrap();
            let got = Plan::new(&p).unwrap().run(vec![l, r]).unwrap();
            let t = if d == DType::F32 { 1e-4 } else { 1e-12 };
            assert!(close(&got[0], &want[0], t), "{ls:?}·{rs:?} ({lc},{rc}) {d}");
        }
    }
}

/// Matrix transposes run tile by tile (`Kernel::Transpose2`): the reference's values, on
/// shapes smaller than, equal to and larger than a tile, empty ones, and a 3-d permutation
/// (the reference's index loop in both).
#[test]
fn transposes_equal_the_reference_bit_for_bit() {
    let cases: [(&[usize], &[usize]); 7] = [
        (&[0, 3], &[1, 0]),
        (&[1, 5], &[1, 0]),
        (&[32, 32], &[1, 0]),
        (&[33, 65], &[1, 0]),
        (&[256, 128], &[1, 0]),
        (&[7, 300], &[1, 0]),
        (&[3, 4, 5], &[2, 0, 1]),
    ];
    for d in [DType::F64, DType::F32] {
        for (shape, perm) in cases {
            let x = random_array(
                3,
                &ferrax::Aval::new(shape.to_vec(), d),
                harness::Domain::Real,
            );
            let prim = ferrax::Primitive::Transpose {
                permutation: perm.to_vec(),
            };
            let p = single_eqn_program(&prim, &[x.aval()]).unwrap();
            let want = p.eval(std::slice::from_ref(&x)).unwrap();
            let got = Plan::new(&p).unwrap().run(vec![x]).unwrap();
            assert!(got[0].same_values(&want[0]), "{shape:?} {perm:?} {d}");
            assert_eq!(got[0].shape(), want[0].shape());
        }
    }
}

#[test]
fn plan_input_errors() {
    let p = Program::parse("{ lambda ; a:f64[2] . let b:f64[2] = sin a in (b) }").unwrap();
    let plan = Plan::new(&p).unwrap();
    let e = plan.run(vec![]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "bad input to `Plan::run`: the plan takes 1 input(s), 0 given"
    );
    let e = plan
        .run(vec![Array::zeros(&[3], DType::F64).unwrap()])
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "bad input to `Plan::run`: input 0 must be f64[2], got f64[3]"
    );
    // a hand-built program that does not type-check: the output variable is never defined
    let mut bad = p.clone();
    bad.outputs = vec![ferrax::Atom::Var(ferrax::Var(7))];
    let e = Plan::new(&bad).unwrap_err().to_string();
    assert_eq!(
        e,
        "ill-typed program: output 0 is variable 7, which is never defined"
    );
    assert!(optimize(&bad).is_err());
    assert!(ferrax::run_compiled(&bad, vec![Array::zeros(&[2], DType::F64).unwrap()]).is_err());
    let f = jit(|x: Tensor| x.sum(&[4]));
    let line = line!() - 1;
    let e = f.call(&Tensor::zeros(&[2], DType::F64)).unwrap_err();
    assert_eq!(e.loc().unwrap().line, line);
}

// ---- fusion (arrays large enough to be fused) ----

#[test]
fn fused_elementwise_groups_equal_the_reference() {
    let n = 5000;
    let x = Tensor::random_normal(1, &[n], DType::F64);
    let y = Tensor::random_normal(2, &[n], DType::F64);
    let bias = Tensor::random_normal(3, &[50], DType::F64);
    // a chain with an intermediate also returned, a scalar and a tiled broadcast, NaN lanes
    let f = |(x, y, bias): (Tensor, Tensor, Tensor)| {
        let u = x.sin() * y.cos() + (-(&x * &x)).exp();
        let w = (&u * 2.0 - 1.0).tanh() / (y.abs() + 1.0);
        let z = w.reshape(&[100, 50]) + &bias;
        let v = (z.logistic() + x.reshape(&[100, 50]).log()).maximum(-3.0); // log < 0 → NaN lanes
        (u, v.sum(&[0]), v)
    };
    let args = (x.clone(), y.clone(), bias.clone());
    let p = make_jaxpr(f, &args).unwrap();
    let arrays = vec![
        x.array().unwrap(),
        y.array().unwrap(),
        bias.array().unwrap(),
    ];
    let want = p.eval(&arrays).unwrap();
    let plan = Plan::new(&p).unwrap();
    let got = plan.run(arrays.clone()).unwrap();
    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
        let (gv, wv) = (g.to_f64_vec(), w.to_f64_vec());
        let bad = gv.iter().zip(&wv).position(|(a, b)| {
            !(a.is_nan() && b.is_nan()) && (a - b).abs() > 1e-12 * a.abs().max(b.abs()).max(1.0)
        });
        assert!(
            bad.is_none(),
            "output {k} element {bad:?}: fused {} reference {}",
            gv[bad.unwrap()],
            wv[bad.unwrap()]
        );
    }
    // the plan did fuse: the chain's primitives ran, fewer than one buffer each
    jit_profile_shows_fusion(&plan, arrays);
    // f32 through the same path
    let f32_args = (
        x.astype(DType::F32),
        y.astype(DType::F32),
        bias.astype(DType::F32),
    );
    let p32 = make_jaxpr(f, &f32_args).unwrap();
    let a32: Vec<Array> = [&f32_args.0, &f32_args.1, &f32_args.2]
        .iter()
        .map(|t| t.array().unwrap())
        .collect();
    let want = p32.eval(&a32).unwrap();
    let got = Plan::new(&p32).unwrap().run(a32).unwrap();
    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
        let (gv, wv) = (g.to_f64_vec(), w.to_f64_vec());
        let bad = gv.iter().zip(&wv).position(|(a, b)| {
            !(a.is_nan() && b.is_nan()) && (a - b).abs() > 1e-5 * a.abs().max(b.abs()).max(1.0)
        });
        assert!(bad.is_none(), "f32 output {k} element {bad:?}");
    }
}

#[test]
fn fused_binary_steps_with_a_broadcast_scalar_are_bit_exact() {
    // a scalar on either side of every binary kernel (read from a register, not a filled
    // buffer), NaN and signed-zero lanes, and a broadcast that is also returned
    let n = 4099;
    let mut v: Vec<f64> = (0..n).map(|i| ((i as f64) * 0.37).sin() * 3.0).collect();
    v[5] = f64::NAN;
    v[7] = -f64::NAN;
    v[11] = 0.0;
    v[13] = -0.0;
    let x = Tensor::from_vec(v, &[n]);
    let f = |x: Tensor| {
        let b = Tensor::scalar(2.5f64).broadcast_to(&[n]);
        let nan = Tensor::scalar(f64::NAN).broadcast_to(&[n]);
        vec![
            &x - &b,
            &b - &x,
            &x / &b,
            &b / &x,
            x.maximum(&b),
            b.minimum(&x),
            &nan + &x,
            &x * &nan,
            (&x + 1.0) * 0.5 - 3.0,
            b.clone(),
        ]
    };
    let p = make_jaxpr(f, &x).unwrap();
    let arrays = vec![x.array().unwrap()];
    let want = p.eval(&arrays).unwrap();
    let got = Plan::new(&p).unwrap().run(arrays).unwrap();
    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
        // bit for bit, signed zeros included; a NaN matches any NaN (Rust, like IEEE, does
        // not fix which operand's payload or sign a NaN result carries)
        let bad = g
            .to_f64_vec()
            .iter()
            .zip(w.to_f64_vec())
            .position(|(a, b)| !(a.is_nan() && b.is_nan()) && a.to_bits() != b.to_bits());
        assert!(bad.is_none(), "output {k} differs at element {bad:?}");
    }
}

fn jit_profile_shows_fusion(plan: &Plan, arrays: Vec<Array>) {
    ferrax::profile_start();
    plan.run(arrays).unwrap();
    let prof = ferrax::profile_stop();
    assert!(
        prof.iter().any(|(name, _, _)| name.starts_with("fused[")),
        "{prof:?}"
    );
}

#[test]
fn leading_broadcasts_fuse_and_run_fast_paths_correctly() {
    // an operand filling the leading dimension: each element repeated along the rows
    let p = Program::parse(
        "{ lambda ; a:f64[100] b:f64[100,50] . let
    c:f64[100,50] = broadcast_in_dim[shape=(100,50) broadcast_dimensions=(0,)] a
    d:f64[100,50] = mul c b
    e:f64[100,50] = sin d
    f:f64[100,50] = broadcast_in_dim[shape=(100,50) broadcast_dimensions=(0,)] a
  in (e, f) }",
    )
    .unwrap();
    let a = random_array(
        1,
        &ferrax::Aval::new(vec![100], DType::F64),
        harness::Domain::Real,
    );
    let b = random_array(
        2,
        &ferrax::Aval::new(vec![100, 50], DType::F64),
        harness::Domain::Real,
    );
    let want = p.eval(&[a.clone(), b.clone()]).unwrap();
    let plan = Plan::new(&p).unwrap();
    let got = plan.run(vec![a.clone(), b.clone()]).unwrap();
    for (g, w) in got.iter().zip(&want) {
        assert!(close(g, w, 1e-14), "{g:?} vs {w:?}");
    }
    jit_profile_shows_fusion(&plan, vec![a, b]);
}

#[test]
fn size_one_broadcasts_and_outer_products_run_fast_paths_bit_for_bit() {
    // `[n, 1] -> [n, k]` repeats each element, `[1, k] -> [n, k]` tiles a row, and the outer
    // product of two vectors (a matrix product's cotangent) is one multiply per element:
    // all three run kernels of their own and give the reference evaluator's bits
    let p = Program::parse(
        "{ lambda ; a:f64[300,1] b:f64[1,7] u:f64[300] v:f64[7] . let
    c:f64[300,7] = broadcast_in_dim[shape=(300,7) broadcast_dimensions=(0,1)] a
    d:f64[300,7] = broadcast_in_dim[shape=(300,7) broadcast_dimensions=(0,1)] b
    e:f64[300,7] = sub c d
    f:f64[2,300,7] = broadcast_in_dim[shape=(2,300,7) broadcast_dimensions=(1,2)] b
    o:f64[300,7] = dot_general[lhs_contracting=() rhs_contracting=() lhs_batch=() rhs_batch=()] u v
    q:f64[7,300] = dot_general[lhs_contracting=() rhs_contracting=() lhs_batch=() rhs_batch=()] v u
  in (c, d, e, f, o, q) }",
    )
    .unwrap();
    let arg = |seed, shape: &[usize]| {
        random_array(
            seed,
            &ferrax::Aval::new(shape.to_vec(), DType::F64),
            harness::Domain::Real,
        )
    };
    let args = vec![
        arg(1, &[300, 1]),
        arg(2, &[1, 7]),
        arg(3, &[300]),
        arg(4, &[7]),
    ];
    let want = p.eval(&args).unwrap();
    let plan = Plan::new(&p).unwrap();
    let got = plan.run(args).unwrap();
    for (g, w) in got.iter().zip(&want) {
        let bits = |a: &Array| {
            a.to_f64_vec()
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>()
        };
        assert_eq!(g.shape(), w.shape());
        assert_eq!(bits(g), bits(w));
    }
}

#[test]
fn recycled_buffers_never_leak_old_values() {
    // Large intermediates (above the pool's size floor) die inside the plan: a matrix
    // product's operands, fused runs, a leading-axis sum, broadcasts. The plan keeps their
    // buffers and later steps and runs reuse them; every run, with new inputs each time, must
    // still equal the reference evaluator exactly as the first did.
    let p = Program::parse(
        "{ lambda ; x:f64[96,96] w:f64[96,96] b:f64[96] . let
    h:f64[96,96] = dot_general[lhs_contracting=(1,) rhs_contracting=(0,) lhs_batch=() rhs_batch=()] x w
    bb:f64[96,96] = broadcast_in_dim[shape=(96,96) broadcast_dimensions=(1,)] b
    z:f64[96,96] = add h bb
    a:f64[96,96] = tanh z
    g:f64[96,96] = dot_general[lhs_contracting=(1,) rhs_contracting=(0,) lhs_batch=() rhs_batch=()] a w
    s:f64[96,96] = mul g g
    t:f64[96,96] = sin s
    u:f64[96,96] = dot_general[lhs_contracting=(0,) rhs_contracting=(0,) lhs_batch=() rhs_batch=()] t a
    r:f64[96] = reduce_sum[axes=(0,)] u
    q:f64[96,96] = broadcast_in_dim[shape=(96,96) broadcast_dimensions=(0,)] r
    o:f64[96,96] = sub q u
    v:f64[2,96,96] = broadcast_in_dim[shape=(2,96,96) broadcast_dimensions=(1,2)] o
    y:f64[96,96] = reduce_sum[axes=(0,)] v
  in (y, r) }",
    )
    .unwrap();
    let plan = Plan::new(&p).unwrap();
    for run in 0..4u64 {
        let args = random_args(&p.in_avals(), 10 * run, harness::Domain::Real);
        let want = p.eval(&args).unwrap();
        // a plan with nothing carried over from earlier runs computes the same bits
        let fresh = Plan::new(&p).unwrap().run(args.clone()).unwrap();
        let got = plan.run(args).unwrap();
        for (g, f) in got.iter().zip(&fresh) {
            assert!(
                g.same_values(f),
                "run {run}: a reused buffer changed a result"
            );
        }
        // and both are the reference's values up to summation order (sin of large squares
        // amplifies the products' rounding; a stale buffer would be off by O(1))
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            let (gv, wv) = (g.to_f64_vec(), w.to_f64_vec());
            let worst = gv
                .iter()
                .zip(&wv)
                .map(|(a, b)| (a - b).abs() / a.abs().max(b.abs()).max(1.0))
                .fold(0.0, f64::max);
            assert!(
                worst < 1e-9,
                "run {run}, output {k}: relative error {worst:e}"
            );
        }
        assert!(
            plan.pooled_buffers() > 0,
            "run {run}: the plan kept no freed buffer"
        );
    }
}
