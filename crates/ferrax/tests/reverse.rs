//! Transposition and reverse mode: the adjoint identity ⟨c, J t⟩ = ⟨Jᵀ c, t⟩ to rounding for
//! every op-table row and random programs; transpose twice equals the original; vjp is the
//! transpose of linearize; gradients against finite differences; Hessians of known
//! functions; Gauss-Newton products from one linearization with no nonlinear work; and
//! every rejection (nonlinear use, affine constant, wrong cotangents).

mod harness;

use ferrax::check_linear;
use ferrax::{
    eval_counts, gauss_newton, gauss_newton_with_loss, grad, hessian, hvp, jacfwd, jacrev,
    linear_map, linearize, linearize_program, make_jaxpr, reset_eval_counts, transpose_program,
    value_and_grad, value_and_grad_with, Array, DType, Program, Tensor,
};
use ferrax::{ResidualSource, Split};
use harness::{
    agree, arb_program, arb_smooth_program, magnitude_run, perturb, random_args,
    richardson_converged, Column, Domain, Tally,
};
use proptest::prelude::*;

fn residual_values(s: &Split, primals: &[Array]) -> Vec<Array> {
    let outs = s.primal.eval(primals).unwrap();
    s.residuals
        .iter()
        .map(|r| match *r {
            ResidualSource::Input(i) => primals[i].clone(),
            ResidualSource::Output(k) => outs[k].clone(),
        })
        .collect()
}

fn dot(a: &[Array], b: &[Array]) -> (f64, f64) {
    // (⟨a, b⟩, Σ|a_i b_i|): the scale that rounding errors are relative to
    let mut s = 0.0;
    let mut m = 0.0;
    for (x, y) in a.iter().zip(b) {
        for (p, q) in x.to_f64_vec().iter().zip(y.to_f64_vec()) {
            s += p * q;
            m += (p * q).abs();
        }
    }
    (s, m)
}

/// Checks ⟨c, J t⟩ = ⟨Jᵀ c, t⟩ and Jᵀᵀ = J for a program at random points; returns the
/// linear program it checked, or `None` when the point gives non-finite values (skipped).
fn check_adjoint(p: &Program, primals: &[Array], seed: u64, what: &str) -> Option<Program> {
    let s = linearize_program(p).unwrap();
    let nres = s.residuals.len();
    check_linear(&s.linear, nres).unwrap();
    let t_prog =
        transpose_program(&s.linear, nres).unwrap_or_else(|e| panic!("{what}: {e}\n{}", s.linear));
    t_prog.check().unwrap();
    check_linear(&t_prog, nres)
        .unwrap_or_else(|e| panic!("{what}: transposed not linear: {e}\n{t_prog}"));
    let res = residual_values(&s, primals);
    if res
        .iter()
        .any(|r| r.to_f64_vec().iter().any(|v| !v.is_finite()))
    {
        return None;
    }
    let tangents = random_args(&p.in_avals(), seed + 50, Domain::Real);
    let cts = random_args(&p.out_avals(), seed + 90, Domain::Real);
    let mut args = res.clone();
    args.extend(tangents.iter().cloned());
    let jt = s.linear.eval(&args).unwrap();
    let jt_mag = magnitude_run(&s.linear, &args);
    let mut args = res.clone();
    args.extend(cts.iter().cloned());
    let jtc = t_prog.eval(&args).unwrap();
    let jtc_mag = magnitude_run(&t_prog, &args);
    // Only float leaves carry tangents; integer/bool leaves contribute zero on both sides.
    let floats = |xs: &[Array]| -> Vec<Array> {
        xs.iter()
            .map(|a| {
                if a.dtype().is_float() {
                    a.clone()
                } else {
                    Array::zeros(a.shape(), DType::F64).unwrap()
                }
            })
            .collect()
    };
    let (lhs, _) = dot(&floats(&cts), &floats(&jt));
    let (rhs, _) = dot(&floats(&jtc), &floats(&tangents));
    if !(lhs.is_finite() && rhs.is_finite()) {
        return None;
    }
    let (_, m1) = dot(&floats(&cts), &floats(&jt_mag));
    let (_, m2) = dot(&floats(&jtc_mag), &floats(&tangents));
    // The magnitude run bounds the terms' sizes, except where a comparison or `select`
    // takes another branch on magnitudes than on the values (a `le` then `integer_pow`
    // chain grew to 1e14 while its magnitude run stayed near 500): the sums themselves are
    // at most the sizes of their terms, so they bound the scale from below.
    let scale = m1
        .max(m2)
        .max(lhs.abs())
        .max(rhs.abs())
        .max(f64::MIN_POSITIVE);
    // to rounding: of f64, or of f32 where the map computes in f32
    let any_f32 = p.avals.iter().any(|a| a.dtype == DType::F32);
    let tol = if any_f32 { 1e-6 } else { 1e-12 };
    assert!(
        (lhs - rhs).abs() <= tol * scale,
        "{what}: <c, J t> = {lhs} but <J^T c, t> = {rhs} (scale {scale})\nlinear:\n{}\ntransposed:\n{t_prog}",
        s.linear
    );
    // transposing twice gives the same map
    let tt = transpose_program(&t_prog, nres).unwrap();
    let mut args = res;
    args.extend(tangents.iter().cloned());
    let jt2 = tt.eval(&args).unwrap();
    let a: Vec<f64> = floats(&jt).iter().flat_map(|x| x.to_f64_vec()).collect();
    let b: Vec<f64> = floats(&jt2).iter().flat_map(|x| x.to_f64_vec()).collect();
    assert!(
        agree(&a, &b, 1e-12),
        "{what}: (J^T)^T t = {b:?} but J t = {a:?}"
    );
    Some(s.linear)
}

#[test]
fn adjoint_identity_and_double_transpose_for_every_row() {
    let mut tally = Tally::new(&[Column::Adjoint, Column::TransposeRule]);
    let mut checked = 0;
    for row in Column::Adjoint.rows() {
        let p = row.program(DType::F64);
        for seed in 0..3u64 {
            // static operands (a cond's index) take each listed value in turn
            let primals = row.args(&p.in_avals(), seed * 7, seed as usize);
            let (q, primals) = row.without_static_floats(&p, &primals);
            let Some(linear) = check_adjoint(&q, &primals, seed * 1000, row.name) else {
                continue;
            };
            checked += 1;
            tally.checked(Column::Adjoint, &row);
            // The check transposed the linear program; the primitive's own rule ran if the
            // program applies it (a collective's, inside the map that binds its axis).
            if Column::TransposeRule.claims(&row) && applies(&linear, row.prim.name()) {
                tally.checked(Column::TransposeRule, &row);
            }
        }
    }
    tally.assert_every_claimed_row_checked();
    assert!(checked > 150, "only {checked} row checks ran");
}

/// Whether `p` or a program nested in it applies the primitive `name`.
fn applies(p: &ferrax::Program, name: &str) -> bool {
    p.count_prim(name) > 0
        || p.eqns
            .iter()
            .any(|e| e.prim.subprograms().into_iter().any(|s| applies(s, name)))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: harness::cases(128), ..ProptestConfig::default() })]

    #[test]
    fn adjoint_identity_on_random_programs(p in arb_program(12), seed in 0u64..100_000) {
        let primals = random_args(&p.in_avals(), seed, Domain::Real);
        check_adjoint(&p, &primals, seed, &p.to_string());
    }

    #[test]
    fn grad_matches_finite_differences_on_random_programs(p in arb_smooth_program(10), seed in 0u64..100_000) {
        // f_k(xs) = sum(out_k), one output at a time: summed together, a small output that
        // oscillates too fast for finite differences (sin of a squared-and-squared carry)
        // would hide under a large smooth one, where each alone is either checked or seen
        // not to converge
        let prog = &p;
        let f = move |k: usize| move |xs: Vec<Tensor>| -> Tensor { prog.call(&xs).unwrap()[k].sum_all() };
        let xs = random_args(&p.in_avals(), seed, Domain::Real);
        let ts = random_args(&p.in_avals(), seed + 40, Domain::Real);
        let x: Vec<Tensor> = xs.iter().cloned().map(Tensor::new).collect();
        for k in 0..p.outputs.len() {
            let (v, g) = value_and_grad(f(k), &x).unwrap();
            if !v.item().unwrap().is_finite() {
                continue;
            }
            let gs: Vec<Array> = g.iter().map(|t| t.array().unwrap()).collect();
            let (dir, _) = dot(&gs, &ts);
            let fd = richardson_converged(&|eps| {
                let xe: Vec<Tensor> = xs.iter().zip(&ts).map(|(a, t)| Tensor::new(perturb(a, t, eps))).collect();
                vec![f(k)(xe).item().unwrap()]
            }, 1e-4, 1e-8);
            if let Some(fd) = fd {
                prop_assert!(agree(&[dir], &fd, 1e-8), "output {}: grad·t = {} fd = {:?}\n{}", k, dir, fd, p);
            }
            // vjp is the transpose of linearize, bit for bit
            let (_, lin) = linearize(f(k), &x).unwrap();
            let g2: Vec<Tensor> = lin.transpose().unwrap().apply(&Tensor::scalar(1.0f64)).unwrap();
            for (a, b) in g.iter().zip(&g2) {
                prop_assert!(a.array().unwrap().same_values(&b.array().unwrap()));
            }
        }
    }
}

// ---- the linear map and its transpose ----

#[test]
fn transposed_map_shares_residuals_and_transposes_back_to_itself() {
    let f = |x: Tensor| (x.sin() * &x).tanh();
    let x = Tensor::random_normal(3, &[4], DType::F64);
    let (_, j) = linearize(f, &x).unwrap();
    let jt = j.transpose().unwrap();
    assert!(jt.is_transposed());
    assert_eq!(jt.num_residuals(), j.num_residuals());
    for (a, b) in j.residuals().iter().zip(jt.residuals()) {
        assert!(a.array().unwrap().shares_buffer(&b.array().unwrap()));
    }
    assert!(jt.transpose().unwrap().same_map(&j));
    assert!(!jt.same_map(&j));
    // transposing evaluates no nonlinear primitive and re-traces nothing
    reset_eval_counts();
    let jt2 = j.transpose().unwrap();
    let _: Tensor = jt2.apply(&Tensor::ones(&[4], DType::F64)).unwrap();
    let counts = eval_counts();
    assert!(
        counts.keys().all(|k| ["mul", "add"].contains(k)),
        "{counts:?}"
    );
    // the maps are adjoint
    let t = Tensor::random_normal(5, &[4], DType::F64);
    let c = Tensor::random_normal(6, &[4], DType::F64);
    let jt_t: Tensor = j.apply(&t).unwrap();
    let jtc: Tensor = jt.apply(&c).unwrap();
    let l = (&c * &jt_t).sum_all().item().unwrap();
    let r = (&jtc * &t).sum_all().item().unwrap();
    assert!((l - r).abs() < 1e-14 * l.abs().max(1.0));
}

#[test]
fn golden_transposed_program() {
    let p = make_jaxpr(
        |x: Tensor| -> Tensor { 3.0 * x.sin() + (&x / 2.0).cos() },
        &Tensor::scalar(2.0f64),
    )
    .unwrap();
    let s = linearize_program(&p).unwrap();
    assert_eq!(
        transpose_program(&s.linear, 2).unwrap().to_string(),
        "{ lambda ; a:f64[] b:f64[] c:f64[] . let
    d:f64[] = mul c b
    e:f64[] = div d 2.0:f64
    f:f64[] = mul 3.0:f64 c
    g:f64[] = mul f a
    h:f64[] = add e g
  in (h) }"
    );
}

#[test]
fn transposes_of_structural_primitives_by_hand() {
    // The transpose of broadcasting with a size-1 dimension sums over it; of a strided slice,
    // pads with zeros between; of pad, slices (and sums the padding for the padding value).
    let lin = Program::parse(
        "{ lambda ; t:f64[2,1] v:f64[] . let
    b:f64[2,3] = broadcast_in_dim[shape=(2,3) broadcast_dimensions=(0,1)] t
    s:f64[2,2] = slice[start=(0,0) limit=(2,3) strides=(1,2)] b
    p:f64[2,5] = pad[low=(0,1) high=(0,1) interior=(0,1)] s v
  in (p) }",
    )
    .unwrap();
    let tr = transpose_program(&lin, 0).unwrap();
    let c = Array::from_vec((1..=10).map(|i| i as f64).collect::<Vec<_>>(), &[2, 5]).unwrap();
    let out = tr.eval(&[c]).unwrap();
    // pad^T: s = c[:, 1::2] = [[2,4],[7,9]], v gets the rest: 55 - 22 = 33
    // slice^T: b = [[2,0,4],[7,0,9]]; broadcast^T: t = row sums = [[6],[16]]
    assert_eq!(out[0].to_vec::<f64>().unwrap(), vec![6.0, 16.0]);
    assert_eq!(out[1].to_vec::<f64>().unwrap(), vec![33.0]);
}

#[test]
fn dot_general_transposes_with_batch_and_permuted_dimensions() {
    // lhs [k, b, m] contracted on 0, batch 1; rhs [b, n, k] contracted on 2, batch 0.
    let l = Tensor::random_normal(1, &[3, 2, 4], DType::F64);
    let r = Tensor::random_normal(2, &[2, 5, 3], DType::F64);
    let f = |(l, r): (Tensor, Tensor)| l.dot_general(&r, (&[0], &[2]), (&[1], &[0])).sin();
    let x = (l, r);
    let p = make_jaxpr(f, &x).unwrap();
    let primals = vec![x.0.array().unwrap(), x.1.array().unwrap()];
    assert!(check_adjoint(&p, &primals, 77, "dot_general batch").is_some());
}

// ---- gradients, Jacobians, Hessians ----

fn rosenbrock(x: Tensor) -> Tensor {
    let n = x.shape()[0];
    let a = x.slice_axis(0, 0, n - 1);
    let b = x.slice_axis(0, 1, n);
    (100.0 * (&b - &a * &a).powi(2) + (1.0 - &a).powi(2)).sum_all()
}

fn rosenbrock_hessian(x: &[f64]) -> Vec<f64> {
    let n = x.len();
    let mut h = vec![0.0; n * n];
    for i in 0..n - 1 {
        h[i * n + i] += 1200.0 * x[i] * x[i] - 400.0 * x[i + 1] + 2.0;
        h[(i + 1) * n + i + 1] += 200.0;
        h[i * n + i + 1] -= 400.0 * x[i];
        h[(i + 1) * n + i] -= 400.0 * x[i];
    }
    h
}

#[test]
fn rosenbrock_gradient_and_hessian_are_analytic() {
    let xs = [-1.2f64, 1.0, 0.5, 2.0];
    let x = Tensor::new(Array::from_slice(&xs));
    let g = grad(rosenbrock, &x).unwrap().to_vec::<f64>().unwrap();
    let n = xs.len();
    let mut want = vec![0.0; n];
    for i in 0..n - 1 {
        want[i] += -400.0 * xs[i] * (xs[i + 1] - xs[i] * xs[i]) - 2.0 * (1.0 - xs[i]);
        want[i + 1] += 200.0 * (xs[i + 1] - xs[i] * xs[i]);
    }
    assert!(agree(&g, &want, 1e-14), "{g:?} vs {want:?}");
    let h = hessian(rosenbrock, &x).unwrap();
    assert_eq!(h.shape(), &[4, 4]);
    assert!(agree(
        &h.to_vec::<f64>().unwrap(),
        &rosenbrock_hessian(&xs),
        1e-14
    ));
    // hvp is the Hessian times v, without the Hessian
    let v = Tensor::new(Array::from_slice(&[0.3f64, -1.0, 2.0, 0.5]));
    let hv = hvp(rosenbrock, &x, &v).unwrap().to_vec::<f64>().unwrap();
    let hm = rosenbrock_hessian(&xs);
    let vv = [0.3, -1.0, 2.0, 0.5];
    let want: Vec<f64> = (0..4)
        .map(|i| (0..4).map(|k| hm[i * 4 + k] * vv[k]).sum())
        .collect();
    assert!(agree(&hv, &want, 1e-14));
}

#[test]
fn hessians_of_other_known_functions() {
    // f(x) = log(sum(exp(x))): H = diag(p) - p pᵀ with p = softmax(x)
    let xs = [0.1f64, -0.5, 1.5];
    let x = Tensor::new(Array::from_slice(&xs));
    let h = hessian(|x: Tensor| x.exp().sum_all().log(), &x)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    let z: f64 = xs.iter().map(|v| v.exp()).sum();
    let p: Vec<f64> = xs.iter().map(|v| v.exp() / z).collect();
    for i in 0..3 {
        for k in 0..3 {
            let want = if i == k { p[i] } else { 0.0 } - p[i] * p[k];
            assert!((h[i * 3 + k] - want).abs() < 1e-15, "({i},{k})");
        }
    }
    // f(x) = xᵀ A x: H = A + Aᵀ
    let a = Tensor::random_normal(9, &[3, 3], DType::F64);
    let h = hessian(|x: Tensor| x.matmul(&a.matmul(&x)), &x).unwrap();
    let at = a.t();
    let want = (&a + &at).to_vec::<f64>().unwrap();
    assert!(agree(&h.to_vec::<f64>().unwrap(), &want, 1e-14));
}

#[test]
fn jacrev_equals_jacfwd() {
    let w = Tensor::random_normal(4, &[3, 2], DType::F64);
    let f = |x: Tensor| w.matmul(&x).tanh() * x.sum(&[0]).sin();
    let x = Tensor::random_normal(5, &[2, 4], DType::F64);
    let a = jacfwd(f, &x).unwrap();
    let b = jacrev(f, &x).unwrap();
    assert_eq!(a.shape(), &[3, 4, 2, 4]);
    assert_eq!(b.shape(), a.shape());
    assert!(agree(
        &a.to_vec::<f64>().unwrap(),
        &b.to_vec::<f64>().unwrap(),
        1e-14
    ));
}

#[test]
fn grad_of_grad_and_grad_inside_a_trace() {
    // d²/dx² x³ = 6x by reverse over reverse
    let g2 = grad(
        |x: Tensor| grad(|z: Tensor| z.powi(3), &x).unwrap(),
        &Tensor::scalar(2.0f64),
    )
    .unwrap();
    assert_eq!(g2.item().unwrap(), 12.0);
    // grad inside make_jaxpr: one program computing the gradient
    let p = make_jaxpr(
        |x: Tensor| grad(|z: Tensor| (z.sin() * &z).sum_all(), &x).unwrap(),
        &Tensor::zeros(&[3], DType::F64),
    )
    .unwrap();
    let xs = Array::from_slice(&[0.1f64, 0.2, 0.3]);
    let g = p.eval(std::slice::from_ref(&xs)).unwrap()[0]
        .to_vec::<f64>()
        .unwrap();
    for (gi, xi) in g.iter().zip([0.1f64, 0.2, 0.3]) {
        assert!((gi - (xi.sin() + xi * xi.cos())).abs() < 1e-15);
    }
}

#[test]
fn value_and_grad_with_holds_the_fixed_argument_constant() {
    let w = Tensor::new(Array::from_slice(&[1.0f64, -2.0]));
    let x = Tensor::new(Array::from_slice(&[3.0f64, 4.0]));
    let f = |w: Tensor, x: Tensor| (&w * &x).sum_all().powi(2);
    let (v, gw) = value_and_grad_with(f, &w, &x).unwrap();
    assert_eq!(v.item().unwrap(), 25.0);
    // d/dw (w·x)² = 2 (w·x) x = -10 * [3, 4]
    assert_eq!(gw.to_vec::<f64>().unwrap(), vec![-30.0, -40.0]);
    // trees: gradient of every leaf of a tuple
    let (v, (ga, gb)) = value_and_grad(
        |(a, b): (Tensor, Tensor)| (&a * &b).sum_all(),
        &(w.clone(), x.clone()),
    )
    .unwrap();
    assert_eq!(v.item().unwrap(), -5.0);
    assert_eq!(ga.to_vec::<f64>().unwrap(), vec![3.0, 4.0]);
    assert_eq!(gb.to_vec::<f64>().unwrap(), vec![1.0, -2.0]);
}

// ---- Gauss-Newton ----

/// A small least-squares model: r_i = a exp(-b t_i) + c - y_i, parameters (a, b, c).
fn model_residual(t: &Tensor, y: &Tensor) -> impl Fn(Tensor) -> Tensor + Clone {
    let (t, y) = (t.clone(), y.clone());
    move |p: Tensor| {
        let a = p.index_axis(0, 0);
        let b = p.index_axis(0, 1);
        let c = p.index_axis(0, 2);
        &a * (-&b * &t).exp() + &c - &y
    }
}

fn matvec(m: &[f64], v: &[f64], rows: usize, cols: usize, transpose: bool) -> Vec<f64> {
    if transpose {
        (0..cols)
            .map(|j| (0..rows).map(|i| m[i * cols + j] * v[i]).sum())
            .collect()
    } else {
        (0..rows)
            .map(|i| (0..cols).map(|j| m[i * cols + j] * v[j]).sum())
            .collect()
    }
}

#[test]
fn gauss_newton_product_equals_explicit_jt_j_v_and_does_no_primal_work() {
    let t = Tensor::new(Array::from_slice(&[0.0f64, 0.5, 1.0, 1.5, 2.0, 3.0]));
    let y = Tensor::new(Array::from_slice(&[3.1f64, 2.2, 1.7, 1.3, 1.1, 0.9]));
    let r = model_residual(&t, &y);
    let p = Tensor::new(Array::from_slice(&[2.5f64, 0.8, 0.6]));
    let gn = gauss_newton(r.clone(), &p).unwrap();
    let jac = jacfwd(r.clone(), &p).unwrap().to_vec::<f64>().unwrap();
    for seed in 0..3 {
        let v = Tensor::random_normal(seed, &[3], DType::F64);
        let vv = v.to_vec::<f64>().unwrap();
        reset_eval_counts();
        let got: Tensor = gn.apply(&v).unwrap();
        let counts = eval_counts();
        for k in counts.keys() {
            assert!(
                [
                    "mul",
                    "add",
                    "neg",
                    "sub",
                    "broadcast_in_dim",
                    "reduce_sum",
                    "squeeze",
                    "reshape",
                    "slice",
                    "pad",
                    "concatenate",
                    "dot_general",
                    "expand_dims"
                ]
                .contains(k),
                "a Gauss-Newton product evaluated `{k}`: {counts:?}"
            );
        }
        assert!(!counts.contains_key("exp"));
        let jv = matvec(&jac, &vv, 6, 3, false);
        let want = matvec(&jac, &jv, 6, 3, true);
        assert!(agree(&got.to_vec::<f64>().unwrap(), &want, 1e-13));
    }
    // the gradient of ½‖r‖² is Jᵀ r
    let g: Tensor = gn.gradient().unwrap();
    let rv = gn.residual().to_vec::<f64>().unwrap();
    assert!(agree(
        &g.to_vec::<f64>().unwrap(),
        &matvec(&jac, &rv, 6, 3, true),
        1e-13
    ));
    let g2 = grad(|p: Tensor| 0.5 * r(p).powi(2).sum_all(), &p).unwrap();
    assert!(agree(
        &g.to_vec::<f64>().unwrap(),
        &g2.to_vec::<f64>().unwrap(),
        1e-14
    ));
}

#[test]
fn generalized_gauss_newton_with_a_robust_loss() {
    // L(r) = Σ log(1 + r²): H_L = diag((2 - 2 r²) / (1 + r²)²)
    let t = Tensor::new(Array::from_slice(&[0.0f64, 1.0, 2.0, 3.0]));
    let y = Tensor::new(Array::from_slice(&[2.0f64, 1.0, 0.7, 0.2]));
    let r = model_residual(&t, &y);
    let p = Tensor::new(Array::from_slice(&[1.5f64, 0.4, 0.1]));
    let loss = |r: Tensor| (r.powi(2) + 1.0).log().sum_all();
    let gn = gauss_newton_with_loss(r.clone(), loss, &p).unwrap();
    let jac = jacfwd(r.clone(), &p).unwrap().to_vec::<f64>().unwrap();
    let rv = r(p.clone()).to_vec::<f64>().unwrap();
    let hl: Vec<f64> = rv
        .iter()
        .map(|r| (2.0 - 2.0 * r * r) / (1.0 + r * r).powi(2))
        .collect();
    let v = Tensor::new(Array::from_slice(&[0.2f64, -0.7, 1.1]));
    reset_eval_counts();
    let got: Tensor = gn.apply(&v).unwrap();
    assert!(!eval_counts().contains_key("log") && !eval_counts().contains_key("exp"));
    let jv = matvec(&jac, &v.to_vec::<f64>().unwrap(), 4, 3, false);
    let hjv: Vec<f64> = jv.iter().zip(&hl).map(|(a, b)| a * b).collect();
    let want = matvec(&jac, &hjv, 4, 3, true);
    assert!(
        agree(&got.to_vec::<f64>().unwrap(), &want, 1e-13),
        "{got:?} {want:?}"
    );
    // its gradient is the loss gradient
    let g: Tensor = gn.gradient().unwrap();
    let g2 = grad(|p: Tensor| loss(r(p)), &p).unwrap();
    assert!(agree(
        &g.to_vec::<f64>().unwrap(),
        &g2.to_vec::<f64>().unwrap(),
        1e-14
    ));
}

// ---- rejections ----

#[test]
fn linear_maps_of_user_functions_capture_outer_values_as_residuals() {
    // inside a trace, a linear function of x that scales by an outer traced value w
    let p = make_jaxpr(
        |(w, c): (Tensor, Tensor)| {
            let a = linear_map(|x: Tensor| &x * &w, &c).unwrap();
            assert_eq!(a.num_residuals(), 1);
            let at = a.transpose().unwrap();
            let out: Tensor = at.apply(&c).unwrap();
            out
        },
        &(Tensor::scalar(3.0f64), Tensor::scalar(5.0f64)),
    )
    .unwrap();
    let out = p
        .eval(&[Array::scalar(3.0f64), Array::scalar(5.0f64)])
        .unwrap();
    assert_eq!(out[0].item().unwrap().to_f64(), 15.0);
}

/// `linearize` on arrays turns a top-level loop that keeps every carry into a scan of its
/// counted steps (a tape): on random programs with such loops, its map and its transpose
/// equal the recomputing `while_linear` map `linearize_program` makes, to rounding.
#[test]
fn a_loop_linearized_on_arrays_as_a_tape_equals_the_recomputing_map() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strat = arb_smooth_program(10);
    let taped =
        |e: &ferrax::Equation| matches!(e.prim, ferrax::Primitive::While { checkpoints: 0, .. });
    // loops with a bound or inside other control flow keep the recomputing map: left out
    fn other_loops(p: &Program, top: bool) -> bool {
        p.eqns.iter().any(|e| {
            let here = match e.prim {
                ferrax::Primitive::While { checkpoints, .. } => !top || checkpoints > 0,
                _ => false,
            };
            here || e
                .prim
                .subprograms()
                .into_iter()
                .any(|s| other_loops(s, false))
        })
    }
    let mut checked = 0;
    for seed in 0..1500u64 {
        let p = strat.new_tree(&mut runner).unwrap().current();
        if !p.eqns.iter().any(taped)
            || other_loops(&p, true)
            || p.in_avals().iter().any(|a| !a.dtype.is_float())
        {
            continue;
        }
        let s = linearize_program(&p).unwrap();
        let nres = s.residuals.len();
        let t_prog = transpose_program(&s.linear, nres).unwrap();
        let res = residual_values(&s, &random_args(&p.in_avals(), seed, Domain::Real));
        let (ts, cs) = (
            random_args(&p.in_avals(), seed + 50, Domain::Real),
            random_args(&p.out_avals(), seed + 90, Domain::Real),
        );
        let with = |xs: &[Array]| [res.clone(), xs.to_vec()].concat();
        let (jt, jtc) = (
            s.linear.eval(&with(&ts)).unwrap(),
            t_prog.eval(&with(&cs)).unwrap(),
        );
        let finite = |xs: &[Array]| {
            xs.iter()
                .all(|a| a.to_f64_vec().iter().all(|v| v.is_finite()))
        };
        if !finite(&res) || !finite(&jt) || !finite(&jtc) {
            continue;
        }
        let (jt_mag, jtc_mag) = (
            magnitude_run(&s.linear, &with(&ts)),
            magnitude_run(&t_prog, &with(&cs)),
        );
        let prog = &p;
        let tensors =
            |xs: &[Array]| -> Vec<Tensor> { xs.iter().cloned().map(Tensor::new).collect() };
        let x = tensors(&random_args(&p.in_avals(), seed, Domain::Real));
        let (_, lin) = linearize(|xs: Vec<Tensor>| prog.call(&xs).unwrap(), &x).unwrap();
        assert!(!lin.program().to_string().contains("while_linear"), "{p}");
        let got: Vec<Tensor> = lin.apply(&tensors(&ts)).unwrap();
        let got_t: Vec<Tensor> = lin.transpose().unwrap().apply(&tensors(&cs)).unwrap();
        for (got, want, mag) in [(got, &jt, &jt_mag), (got_t, &jtc, &jtc_mag)] {
            assert_eq!(got.len(), want.len());
            for ((g, w), m) in got.iter().zip(want).zip(mag) {
                let g = g.array().unwrap();
                assert!(
                    harness::close_at_scale(&g, w, m, 1e-10),
                    "{g:?} vs {w:?}\n{p}"
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 40, "{checked} programs with a loop checked");
}
