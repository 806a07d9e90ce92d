//! Transformations as function values (issue 15, item 1) and `has_aux` (item 2): every
//! function form equals its value form, they nest without error plumbing (a Hessian as
//! `jacfwd_fn(grad_fn(f))`, per-example gradients as `vmap_fn(grad_fn(..))`), and an error
//! deep inside comes out of the outermost call as one `Err` naming the innermost cause.

use ferrax::{
    grad, grad_argnums, grad_fn, grad_with_aux, hessian, hessian_fn, hvp, hvp_fn, jacfwd_fn,
    jacrev, jacrev_fn, jit, value_and_grad, value_and_grad_fn, value_and_grad_with_aux,
    vmap_axes_fn, vmap_fn, Array, DType, Tensor, VmapAxes,
};

mod common;
use common::{close, t, vals};

fn f(x: Tensor) -> Tensor {
    (x.sin() * &x).sum_all() + (&x * &x * &x).sum_all() * 0.5
}

#[test]
fn function_forms_equal_value_forms() {
    let x = t(&[0.3, -1.2, 2.0], &[3]);
    assert_eq!(vals(&grad_fn(f)(x.clone())), vals(&grad(f, &x).unwrap()));
    let (v, g) = value_and_grad_fn(f)(x.clone());
    let (v2, g2) = value_and_grad(f, &x).unwrap();
    assert_eq!((vals(&v), vals(&g)), (vals(&v2), vals(&g2)));
    let h = hessian(f, &x).unwrap();
    assert_eq!(vals(&hessian_fn(f)(x.clone())), vals(&h));
    // the Hessian composed from function values, both ways
    assert!(close(
        &vals(&jacfwd_fn(grad_fn(f))(x.clone())),
        &vals(&h),
        1e-14
    ));
    assert!(close(
        &vals(&jacrev_fn(grad_fn(f))(x.clone())),
        &vals(&h),
        1e-14
    ));
    let sq = |x: Tensor| &x * &x.sin();
    assert_eq!(
        vals(&jacrev_fn(sq)(x.clone())),
        vals(&jacrev(sq, &x).unwrap())
    );
    let v = t(&[1.0, 0.5, -2.0], &[3]);
    assert_eq!(
        vals(&hvp_fn(f)(x.clone(), v.clone())),
        vals(&hvp(f, &x, &v).unwrap())
    );
    // third order: the gradient of a Hessian entry, functions all the way down
    let h00 = |x: Tensor| hessian_fn(f)(x).s(ferrax::s![0, 0]);
    let g3 = vals(&grad_fn(h00)(x.clone()));
    // d/dx0 of f''_00 = d/dx0 (2 cos x0 - x0 sin x0 + 3 x0) = -3 sin x0 - x0 cos x0 + 3
    let x0 = 0.3f64;
    assert!(
        close(
            &g3,
            &[-3.0 * x0.sin() - x0 * x0.cos() + 3.0, 0.0, 0.0],
            1e-13
        ),
        "{g3:?}"
    );
}

#[test]
fn per_example_gradients_with_vmap_of_grad() {
    let w = t(&[0.5, -1.0, 2.0], &[3]);
    let xs = t(
        &[1.0, 2.0, 3.0, 0.0, -1.0, 1.0, 2.0, 2.0, 2.0, -0.5, 0.5, 1.5],
        &[4, 3],
    );
    let ys = t(&[1.0, 0.0, -2.0, 0.5], &[4]);
    let per_example = vmap_fn(|(x, y): (Tensor, Tensor)| {
        grad_fn(move |w: Tensor| (x.dot(&w) - &y).powi(2))(w.clone())
    });
    let g = per_example((xs.clone(), ys.clone()));
    assert_eq!(g.shape(), &[4, 3]);
    let (xv, yv, wv) = (vals(&xs), vals(&ys), vals(&w));
    for i in 0..4 {
        let r = (0..3).map(|j| xv[i * 3 + j] * wv[j]).sum::<f64>() - yv[i];
        let want: Vec<f64> = (0..3).map(|j| 2.0 * r * xv[i * 3 + j]).collect();
        assert!(close(&vals(&g)[i * 3..i * 3 + 3], &want, 1e-14));
    }
    // with axes: the data batched along axis 1, the result along axis 0
    let by_cols = vmap_axes_fn(|x: Tensor| x.sum_all(), VmapAxes::new().in_axes(&[Some(1)]));
    assert_eq!(vals(&by_cols(xs.clone())), vec![2.5, 3.5, 7.5]);
    // and under jit
    let jitted = jit(move |(x, y): (Tensor, Tensor)| per_example((x, y)));
    assert!(close(
        &vals(&jitted.call(&(xs, ys)).unwrap()),
        &vals(&g),
        1e-15
    ));
}

#[test]
fn errors_travel_to_the_outermost_call() {
    let x = t(&[1.0, 2.0], &[2]);
    // the inner function returns a vector where grad needs a scalar
    let bad = |x: Tensor| &x * 2.0;
    let h = jacfwd_fn(grad_fn(bad))(x.clone());
    let e = h.to_vec::<f64>().unwrap_err().to_string();
    assert!(
        e.contains("must return a float scalar") && e.contains("f64[2]"),
        "{e}"
    );
    // inside jit: one Err from the call
    let j = jit(move |x: Tensor| grad_fn(bad)(x));
    let e = j.call(&x).unwrap_err().to_string();
    assert!(e.contains("must return a float scalar"), "{e}");
    // and from a value form around a function form
    let e = grad(|x: Tensor| grad_fn(bad)(x).sum_all(), &x)
        .unwrap_err()
        .to_string();
    assert!(e.contains("must return a float scalar"), "{e}");
    // vmap_fn of inputs whose sizes disagree: the leaves carry vmap's error
    let pair = vmap_fn(|(a, b): (Tensor, Tensor)| &a + &b);
    let out = pair((t(&[1.0, 2.0], &[2]), t(&[1.0, 2.0, 3.0], &[3])));
    assert!(out
        .to_vec::<f64>()
        .unwrap_err()
        .to_string()
        .contains("vmap"));
}

#[test]
fn has_aux_returns_the_aux_tree_untouched() {
    let x = t(&[3.0, -1.0], &[2]);
    let f = |x: Tensor| {
        let loss = (&x * &x).sum_all();
        (loss, (x.sin(), x.argmax(0)))
    };
    let (g, (s, i)) = grad_with_aux(f, &x).unwrap();
    assert_eq!(vals(&g), vec![6.0, -2.0]);
    assert_eq!(vals(&s), vec![3f64.sin(), (-1f64).sin()]);
    assert_eq!(i.to_vec::<i64>().unwrap(), vec![0]);
    let (v, g2, _) = value_and_grad_with_aux(f, &x).unwrap();
    assert_eq!((v.item().unwrap(), vals(&g2)), (10.0, vec![6.0, -2.0]));
    // a first output that is not a float scalar is an error naming it
    let e = grad_with_aux(|x: Tensor| (x.clone(), x), &x)
        .unwrap_err()
        .to_string();
    assert!(e.contains("first output must be a float scalar"), "{e}");
    let ints = Tensor::from_vec(vec![1i32, 2], &[2]);
    assert!(grad_with_aux(|x: Tensor| (x.astype(DType::F64).sum_all(), ()), &ints).is_err());
}

/// `Jit` and `JitLinearize` are `Send + Sync`: one compiled function serves several threads,
/// each with its own inputs and signatures, with the same results as one thread.
#[test]
fn jit_is_shared_across_threads() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    let f = jit(|x: Tensor| (x.sin() * &x).sum_all());
    let lin = ferrax::jit_linearize(|x: Tensor| x.exp() * 2.0);
    send_sync(&f);
    send_sync(&lin);
    let results: Vec<(f64, f64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|k| {
                let (f, lin) = (&f, &lin);
                s.spawn(move || {
                    // two signatures: length 3 and length 3 + k % 2
                    let n = 3 + k % 2;
                    let v: Vec<f64> = (0..n).map(|i| i as f64 * 0.1 + k as f64).collect();
                    let x = Tensor::new(Array::from_vec(v, &[n]).unwrap());
                    let y = f.call(&x).unwrap().item().unwrap();
                    let (_, map) = lin.call(&x).unwrap();
                    let d: Tensor = map.apply(&Tensor::ones(&[n], DType::F64)).unwrap();
                    (y, d.sum_all().item().unwrap())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (k, (y, d)) in results.iter().enumerate() {
        let n = 3 + k % 2;
        let xs: Vec<f64> = (0..n).map(|i| i as f64 * 0.1 + k as f64).collect();
        let want_y: f64 = xs.iter().map(|x| x.sin() * x).sum();
        let want_d: f64 = xs.iter().map(|x| 2.0 * x.exp()).sum();
        assert!(close(&[*y, *d], &[want_y, want_d], 1e-14));
    }
    assert_eq!(f.cache_size(), 2);
    assert_eq!(lin.cache_size(), 2);
}

/// argnums over a tuple: chosen positions differentiated, the others held (integers too),
/// zeros in their place; bad argnums are errors naming them.
#[test]
fn argnums_picks_positions_of_a_tuple() {
    let w = t(&[1.0, 2.0], &[2]);
    let b = Tensor::scalar(0.5f64);
    let labels = Tensor::from_vec(vec![1i64, 0], &[2]);
    let f = |(w, b, y): (Tensor, Tensor, Tensor)| ((&w - y.astype(DType::F64)) * &b).sum_all();
    let (gw, gb, gy) = grad_argnums(f, &(w.clone(), b.clone(), labels.clone()), &[0, 1]).unwrap();
    assert_eq!(vals(&gw), vec![0.5, 0.5]);
    assert_eq!(vals(&gb), vec![2.0]);
    assert_eq!(gy.to_vec::<i64>().unwrap(), vec![0, 0]);
    let (_, gb, _) = grad_argnums(f, &(w.clone(), b.clone(), labels.clone()), &[1]).unwrap();
    assert_eq!(vals(&gb), vec![2.0]);
    let x3 = (w.clone(), b.clone(), labels.clone());
    let e = grad_argnums(f, &x3, &[3]).unwrap_err().to_string();
    assert!(e.contains("3 is out of range for a tuple of 3"), "{e}");
    let e = grad_argnums(f, &x3, &[0, 0]).unwrap_err().to_string();
    assert!(e.contains("repeated"), "{e}");
    let e = grad_argnums(f, &x3, &[2]).unwrap_err().to_string();
    assert!(e.contains("float inputs only"), "{e}");
    let e = grad_argnums(|x: Tensor| x.sum_all(), &w, &[0])
        .unwrap_err()
        .to_string();
    assert!(e.contains("tuple argument"), "{e}");
}

/// The README's training step: a derived parameter struct, `grad_fn` inside `jit`, and
/// `tree_zip_with` for the update; the loss goes down and the step equals the eager one.
#[test]
fn readme_training_step_with_a_derived_struct() {
    #[derive(Clone, ferrax::Tree)]
    struct Mlp {
        layers: Vec<(Tensor, Tensor)>,
        #[tree(static)]
        activation: String,
    }
    fn loss(p: &Mlp, x: &Tensor, y: &Tensor) -> Tensor {
        let mut h = x.clone();
        for (i, (w, b)) in p.layers.iter().enumerate() {
            h = h.matmul(w) + b;
            if i + 1 < p.layers.len() && p.activation == "tanh" {
                h = h.tanh();
            }
        }
        (h - y).powi(2).mean_all()
    }
    let p = Mlp {
        layers: vec![
            (t(&[0.5, -0.3, 0.2, 0.8], &[2, 2]), t(&[0.0, 0.1], &[2])),
            (t(&[0.7, -0.4], &[2, 1]), t(&[0.05], &[1])),
        ],
        activation: "tanh".into(),
    };
    let x = t(&[1.0, 2.0, -1.0, 0.5, 0.0, -2.0], &[3, 2]);
    let y = t(&[0.5, -0.2, 1.0], &[3, 1]);
    let step = jit(|(p, x, y): (Mlp, Tensor, Tensor)| {
        let g = grad_fn(|p: Mlp| loss(&p, &x, &y))(p.clone());
        ferrax::tree_zip_with(&p, &g, |w, dw| w - dw * 0.1).unwrap()
    });
    let mut q = p.clone();
    let before = loss(&q, &x, &y).item().unwrap();
    for _ in 0..20 {
        q = step.call(&(q, x.clone(), y.clone())).unwrap();
    }
    let after = loss(&q, &x, &y).item().unwrap();
    assert!(after < 0.5 * before, "{before} -> {after}");
    assert_eq!(q.activation, "tanh");
    // one jitted step equals the eager step
    let g = grad(|p: Mlp| loss(&p, &x, &y), &p).unwrap();
    let eager = ferrax::tree_zip_with(&p, &g, |w, dw| w - dw * 0.1).unwrap();
    let jitted = step.call(&(p.clone(), x.clone(), y.clone())).unwrap();
    for (a, b) in ferrax::tree_leaves(&eager)
        .iter()
        .zip(ferrax::tree_leaves(&jitted))
    {
        assert!(close(&vals(a), &vals(&b), 1e-14));
    }
    assert_eq!(step.cache_size(), 1);
}
