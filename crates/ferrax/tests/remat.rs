//! `checkpoint` (remat) and `checkpoint_name`: every policy gives the same values and
//! derivatives as the plain function, stores what it says (`residual_bytes`), and the
//! linear map recomputes the rest when applied (counted with `eval_counts`); a checkpointed
//! scan body cuts the loop's stacked residuals; checkpoints compose with vmap, jit, hessian
//! and the text form; bad names are errors.

use ferrax::{
    checkpoint, checkpoint_name, eval_counts, grad, hessian, jit, jvp, linearize, make_jaxpr,
    reset_eval_counts, scan, vmap, Array, Program, RematPolicy, Tensor,
};

fn w() -> Tensor {
    Tensor::new(
        Array::from_vec((0..16).map(|i| 0.1 * (i as f64 - 7.5)).collect(), &[4, 4]).unwrap(),
    )
}

/// Two layers: tanh(W tanh(W x)), the first hidden layer named "h1".
fn layers(x: Tensor) -> Tensor {
    let w = w();
    let h1 = checkpoint_name(&w.matmul(&x).tanh(), "h1").unwrap();
    w.matmul(&h1).tanh()
}

fn with(policy: RematPolicy) -> impl Fn(Tensor) -> Tensor + Clone {
    move |x: Tensor| {
        let p = policy.clone();
        checkpoint(layers, p, &x).unwrap()
    }
}

fn policies() -> Vec<RematPolicy> {
    vec![
        RematPolicy::Nothing,
        RematPolicy::Dots,
        RematPolicy::Names(vec!["h1".into()]),
        RematPolicy::Everything,
    ]
}

/// Equal to a few units in the last place.
fn near(a: &Tensor, b: &Tensor) -> bool {
    let (a, b) = (a.to_vec::<f64>().unwrap(), b.to_vec::<f64>().unwrap());
    a.len() == b.len()
        && a.iter()
            .zip(&b)
            .all(|(x, y)| (x - y).abs() <= 4e-16 * x.abs().max(y.abs()))
}

fn x0() -> Tensor {
    Tensor::new(Array::from_slice(&[0.3f64, -0.2, 0.5, 0.1]))
}

#[test]
fn every_policy_gives_the_plain_values_and_derivatives() {
    let x = x0();
    let t = Tensor::new(Array::from_slice(&[1.0f64, 0.5, -0.5, 2.0]));
    let (y, dy) = jvp(layers, &x, &t).unwrap();
    let g = grad(|x: Tensor| layers(x).sum_all(), &x).unwrap();
    for policy in policies() {
        let f = with(policy.clone());
        let (y2, dy2) = jvp(f.clone(), &x, &t).unwrap();
        assert!(
            y2.array().unwrap().same_values(&y.array().unwrap()),
            "{policy:?}"
        );
        assert!(
            dy2.array().unwrap().same_values(&dy.array().unwrap()),
            "{policy:?}"
        );
        let (_, lin) = linearize(f.clone(), &x).unwrap();
        let lt: Tensor = lin.apply(&t).unwrap();
        assert!(
            lt.array().unwrap().same_values(&dy.array().unwrap()),
            "{policy:?}"
        );
        // the transposed checkpoint sums the cotangents in its own order: to rounding
        let g2 = grad(|x: Tensor| f(x).sum_all(), &x).unwrap();
        assert!(near(&g2, &g), "{policy:?}: {g2:?} vs {g:?}");
    }
}

#[test]
fn policies_store_what_they_say_and_the_map_recomputes_the_rest() {
    let x = x0();
    let bytes = |policy: RematPolicy| linearize(with(policy), &x).unwrap().1.residual_bytes();
    let plain = linearize(layers, &x).unwrap().1.residual_bytes();
    let nothing = bytes(RematPolicy::Nothing);
    let dots = bytes(RematPolicy::Dots);
    let named = bytes(RematPolicy::Names(vec!["h1".into()]));
    let everything = bytes(RematPolicy::Everything);
    // nothing: x only (w is a constant of the program); one named vector: x and h1
    assert_eq!(nothing, 4 * 8, "nothing stores x");
    assert_eq!(named, 2 * 4 * 8, "names store x and h1");
    assert!(
        nothing < dots && dots <= everything,
        "{nothing} {dots} {everything}"
    );
    assert!(
        named <= everything && everything <= plain + 4 * 8,
        "{everything} {plain}"
    );
    // applying the map: with nothing stored, the first layer's tanh runs again (twice per
    // application: both layers' derivatives need a tanh); with everything stored, never
    let t = Tensor::new(Array::from_slice(&[1.0f64, 0.5, -0.5, 2.0]));
    for (policy, tanhs) in [(RematPolicy::Nothing, 2), (RematPolicy::Everything, 0)] {
        let (_, lin) = linearize(with(policy.clone()), &x).unwrap();
        let lt = lin.transpose().unwrap();
        for _ in 0..2 {
            reset_eval_counts();
            let _: Tensor = lin.apply(&t).unwrap();
            let forward = eval_counts().get("tanh").copied().unwrap_or(0);
            reset_eval_counts();
            let _: Tensor = lt.apply(&t).unwrap();
            let backward = eval_counts().get("tanh").copied().unwrap_or(0);
            assert_eq!((forward, backward), (tanhs, tanhs), "{policy:?}");
        }
    }
}

#[test]
fn a_checkpointed_scan_body_stacks_fewer_residuals() {
    let xs = Tensor::new(
        Array::from_vec(
            (0..40).map(|i| ((i * 7) % 11) as f64 * 0.1 - 0.5).collect(),
            &[10, 4],
        )
        .unwrap(),
    );
    let step = |h: Tensor, x: Tensor| {
        let h = (w().matmul(&h) + &x).tanh();
        (h.clone(), h.sin())
    };
    let run = |remat: bool| {
        let xs = xs.clone();
        move |h0: Tensor| -> Tensor {
            let (h, ys): (Tensor, Tensor) = scan(
                |h: Tensor, x: Tensor| match remat {
                    true => checkpoint(|(h, x)| step(h, x), RematPolicy::Nothing, &(h, x)).unwrap(),
                    false => step(h, x),
                },
                &h0,
                &xs,
            )
            .unwrap();
            h.sum_all() + ys.sum_all()
        }
    };
    let h0 = x0();
    let (v1, lin1) = linearize(run(false), &h0).unwrap();
    let (v2, lin2) = linearize(run(true), &h0).unwrap();
    assert_eq!(v1.item().unwrap(), v2.item().unwrap());
    // plain: per step the carry and tanh's derivative; checkpointed: the carry alone
    assert_eq!(lin2.residual_bytes(), 10 * 4 * 8);
    assert_eq!(lin1.residual_bytes(), 2 * 10 * 4 * 8);
    let g1 = grad(run(false), &h0).unwrap().to_vec::<f64>().unwrap();
    let g2 = grad(run(true), &h0).unwrap().to_vec::<f64>().unwrap();
    for (a, b) in g1.iter().zip(&g2) {
        assert!((a - b).abs() <= 1e-14 * a.abs().max(1.0), "{a} vs {b}");
    }
}

#[test]
fn checkpoints_compose_with_vmap_jit_hessian_and_the_text_form() {
    let f = with(RematPolicy::Dots);
    let xs =
        Tensor::new(Array::from_vec((0..12).map(|i| 0.05 * i as f64).collect(), &[3, 4]).unwrap());
    let batched = vmap(f.clone(), &xs).unwrap().to_vec::<f64>().unwrap();
    let looped: Vec<f64> = (0..3)
        .flat_map(|i| layers(xs.index_axis(0, i)).to_vec::<f64>().unwrap())
        .collect();
    for (a, b) in batched.iter().zip(&looped) {
        assert!((a - b).abs() <= 1e-15, "{a} vs {b}");
    }
    let fj = f.clone();
    let jf = jit(move |x: Tensor| {
        grad(|x: Tensor| fj(x).sum_all(), &x).unwrap_or_else(Tensor::from_error)
    });
    let g = grad(|x: Tensor| layers(x).sum_all(), &x0()).unwrap();
    let gj = jf.call(&x0()).unwrap();
    assert!(near(&gj, &g), "{gj:?} vs {g:?}");
    let h1 = hessian(|x: Tensor| f(x).sum_all(), &x0()).unwrap();
    let h2 = hessian(|x: Tensor| layers(x).sum_all(), &x0()).unwrap();
    assert!(near(&h1, &h2), "{h1:?} vs {h2:?}");
    // print -> parse -> print, with a names policy
    let p = make_jaxpr(
        with(RematPolicy::Names(vec!["h1".into(), "h2".into()])),
        &x0(),
    )
    .unwrap();
    let text = p.to_string();
    assert!(
        text.contains("checkpoint[body=") && text.contains("policy=(h1,h2)"),
        "{text}"
    );
    assert!(text.contains("checkpoint_name[name=h1]"), "{text}");
    let q = Program::parse(&text).unwrap();
    assert_eq!(q.to_string(), text);
    let input = [Array::from_slice(&[0.3f64, -0.2, 0.5, 0.1])];
    assert!(q.eval(&input).unwrap()[0].same_values(&p.eval(&input).unwrap()[0]));
    for policy in ["nothing", "everything", "dots"] {
        let t = text.replace("policy=(h1,h2)", &format!("policy={policy}"));
        assert_eq!(Program::parse(&t).unwrap().to_string(), t);
    }
}

#[test]
fn bad_names_and_policies_are_errors() {
    let x = x0();
    for bad in ["", "1a", "a-b", "dots", "nothing", "h 1"] {
        let e = checkpoint_name(&x, bad).unwrap_err();
        assert!(e.to_string().contains("cannot name"), "{bad}: {e}");
        assert!(e.to_string().contains("remat.rs"), "{e}");
        let e = checkpoint(layers, RematPolicy::Names(vec![bad.into()]), &x).unwrap_err();
        assert!(e.to_string().contains("checkpoint"), "{e}");
    }
    let p = make_jaxpr(with(RematPolicy::Nothing), &x)
        .unwrap()
        .to_string();
    for (from, to) in [
        ("policy=nothing", "policy=sometimes"),
        ("policy=nothing", "policy=(1a)"),
    ] {
        assert!(Program::parse(&p.replace(from, to)).is_err());
    }
}
