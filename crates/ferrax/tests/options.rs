//! `argnums` and `has_aux` beyond `grad`: every form against the value forms it stands for
//! (a closure holding the other positions; the function without its aux), and the bad
//! input each rejects.

mod common;

use common::{close, t, vals};
use ferrax::{
    hessian, hessian_argnums, hessian_tree, hessian_with_aux, hvp, hvp_argnums, hvp_tree,
    hvp_with_aux, jacfwd, jacfwd_argnums, jacfwd_tree, jacfwd_with_aux, jacrev, jacrev_argnums,
    jacrev_tree, jacrev_with_aux, linearize, linearize_with_aux, vjp, vjp_argnums, vjp_with_aux,
    DType, Tensor,
};

/// A function of three positions, the middle one an integer count.
fn f3((a, k, b): (Tensor, Tensor, Tensor)) -> (Tensor, Tensor) {
    let kf = k.astype(DType::F64);
    (
        (&a * &b).sin() * &kf,
        (&a * &a).sum_all() + b.sum_all() * 2.0,
    )
}

fn args() -> (Tensor, Tensor, Tensor) {
    (
        t(&[0.3, -0.7], &[2]),
        Tensor::scalar(3i32),
        t(&[1.1, 0.4], &[2]),
    )
}

fn same(a: &Tensor, b: &Tensor) {
    assert_eq!(a.shape(), b.shape());
    assert!(
        close(&vals(a), &vals(b), 1e-15),
        "{:?} vs {:?}",
        vals(a),
        vals(b)
    );
}

#[test]
fn argnums_forms_equal_the_closure_that_holds_the_rest() {
    let (a, k, b) = args();
    // with respect to position 2 (b), a and k held
    let held = |b: Tensor| f3((a.clone(), k.clone(), b));
    let jf = jacfwd_argnums(f3, &args(), &[2]).unwrap();
    let want = jacfwd_tree(held, &b).unwrap();
    assert_eq!(jf.blocks.len(), 2);
    for i in 0..2 {
        same(jf.block(i, 0).unwrap(), want.block(i, 0).unwrap());
    }
    let jr = jacrev_argnums(f3, &args(), &[2]).unwrap();
    for i in 0..2 {
        same(jr.block(i, 0).unwrap(), want.block(i, 0).unwrap());
    }
    // two positions: blocks over (a, b), the tuple of the chosen ones
    let both = |(a, b): (Tensor, Tensor)| f3((a, k.clone(), b));
    let jf = jacfwd_argnums(f3, &args(), &[0, 2]).unwrap();
    let want = jacrev_tree(both, &(a.clone(), b.clone())).unwrap();
    assert_eq!(jf.in_def, want.in_def);
    for i in 0..2 {
        for j in 0..2 {
            same(jf.block(i, j).unwrap(), want.block(i, j).unwrap());
        }
    }
    // vjp: the map gives the chosen positions' cotangents
    let (y, back) = vjp_argnums(f3, &args(), &[0, 2]).unwrap();
    let (y2, back2) = vjp(both, &(a.clone(), b.clone())).unwrap();
    same(&y.0, &y2.0);
    let ct = (t(&[1.0, -2.0], &[2]), Tensor::scalar(0.5f64));
    let (ga, gb): (Tensor, Tensor) = back.apply(&ct).unwrap();
    let (wa, wb): (Tensor, Tensor) = back2.apply(&ct).unwrap();
    same(&ga, &wa);
    same(&gb, &wb);
}

#[test]
fn second_order_argnums_forms() {
    let (a, k, b) = args();
    let scalar = |x: (Tensor, Tensor, Tensor)| {
        let (y, z) = f3(x);
        y.sum_all() * &z
    };
    let both = |(a, b): (Tensor, Tensor)| scalar((a, k.clone(), b));
    let h = hessian_argnums(scalar, &args(), &[0, 2]).unwrap();
    let want = hessian_tree(both, &(a.clone(), b.clone())).unwrap();
    for i in 0..2 {
        for j in 0..2 {
            same(h.block(i, j).unwrap(), want.block(i, j).unwrap());
        }
    }
    let v = (
        t(&[0.2, 0.9], &[2]),
        Tensor::scalar(0i32),
        t(&[-1.0, 0.5], &[2]),
    );
    let (hva, hvk, hvb) = hvp_argnums(scalar, &args(), &v, &[0, 2]).unwrap();
    let (wa, wb) = hvp_tree(both, &(a, b), &(v.0.clone(), v.2.clone())).unwrap();
    same(&hva, &wa);
    same(&hvb, &wb);
    assert_eq!(
        hvk.dtype(),
        Some(DType::I32),
        "the held position keeps its type"
    );
    // only position 2: position 0 comes back zero
    let (z, _, _) = hvp_argnums(scalar, &args(), &v, &[2]).unwrap();
    assert_eq!(vals(&z), vec![0.0, 0.0]);
}

#[test]
fn has_aux_forms_equal_the_function_without_its_aux() {
    let x = t(&[0.3, -0.7, 1.5], &[3]);
    // aux: a tree with an integer leaf, returned untouched
    let f = |x: Tensor| (x.sin() * &x, (x.cos(), Tensor::scalar(7i32)));
    let value = |x: Tensor| x.sin() * &x;
    let check_aux = |aux: &(Tensor, Tensor)| {
        same(&aux.0, &x.cos());
        assert_eq!(vals(&aux.1), vec![7.0]);
    };
    let (y, lin, aux) = linearize_with_aux(f, &x).unwrap();
    let (y2, lin2) = linearize(value, &x).unwrap();
    same(&y, &y2);
    check_aux(&aux);
    let tv = t(&[1.0, 0.5, -2.0], &[3]);
    let a: Tensor = lin.apply(&tv).unwrap();
    let b: Tensor = lin2.apply(&tv).unwrap();
    same(&a, &b);
    let (_, back, aux) = vjp_with_aux(f, &x).unwrap();
    check_aux(&aux);
    let (_, back2) = vjp(value, &x).unwrap();
    let a: Tensor = back.apply(&tv).unwrap();
    let b: Tensor = back2.apply(&tv).unwrap();
    same(&a, &b);
    let (j, aux) = jacfwd_with_aux(f, &x).unwrap();
    check_aux(&aux);
    same(&j, &jacfwd(value, &x).unwrap());
    let (j, aux) = jacrev_with_aux(f, &x).unwrap();
    check_aux(&aux);
    same(&j, &jacrev(value, &x).unwrap());
    let scalar = |x: Tensor| ((x.sin() * &x).sum_all(), (x.cos(), Tensor::scalar(7i32)));
    let scalar_value = |x: Tensor| (x.sin() * &x).sum_all();
    let (h, aux) = hessian_with_aux(scalar, &x).unwrap();
    check_aux(&aux);
    same(&h, &hessian(scalar_value, &x).unwrap());
    let (hv, aux) = hvp_with_aux(scalar, &x, &tv).unwrap();
    check_aux(&aux);
    same(&hv, &hvp(scalar_value, &x, &tv).unwrap());
}

#[test]
fn bad_argnums_are_errors_naming_the_form_and_the_line() {
    let line = line!() + 1;
    let e = jacfwd_argnums(f3, &args(), &[3]).unwrap_err().to_string();
    assert!(
        e.contains("jacfwd_argnums") && e.contains("3 is out of range for a tuple of 3"),
        "{e}"
    );
    assert!(e.contains(&format!("options.rs:{line}")), "{e}");
    let e = jacrev_argnums(f3, &args(), &[0, 0])
        .unwrap_err()
        .to_string();
    assert!(e.contains("0 is repeated"), "{e}");
    // the integer position cannot be differentiated
    let e = vjp_argnums(f3, &args(), &[1]).unwrap_err().to_string();
    assert!(e.contains("vjp_argnums") && e.contains("i32"), "{e}");
    // not a tuple
    let e = hessian_argnums(
        |x: Vec<Tensor>| x[0].sum_all(),
        &vec![t(&[1.0], &[1])],
        &[0],
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("argnums picks positions of a tuple argument"),
        "{e}"
    );
    // a tangent whose structure is not the argument's
    let two = (t(&[1.0], &[1]), t(&[2.0], &[1]));
    let e = hvp_argnums(
        |(a, b): (Tensor, Tensor)| (&a * &b).sum_all(),
        &two,
        &(t(&[1.0], &[1]), t(&[2.0, 3.0], &[2])),
        &[0],
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("hvp_argnums") && e.contains("leaf 1 of v is f64[2] but that of x is f64[1]"),
        "{e}"
    );
}

#[test]
fn bad_input_to_the_has_aux_forms_is_an_error() {
    let k = Tensor::scalar(3i32);
    let e = jacfwd_with_aux(|x: Tensor| (x.clone(), x), &k)
        .unwrap_err()
        .to_string();
    assert!(e.contains("jacfwd_with_aux") && e.contains("i32"), "{e}");
    let e = jacrev_with_aux(|x: Tensor| (x.clone(), x), &k)
        .unwrap_err()
        .to_string();
    assert!(e.contains("jacrev_with_aux") && e.contains("i32"), "{e}");
    // an integer value has no cotangent
    let x = t(&[1.0, 2.0], &[2]);
    let e = jacrev_with_aux(|x: Tensor| (x.astype(DType::I32), x), &x)
        .unwrap_err()
        .to_string();
    assert!(e.contains("float"), "{e}");
    // a Hessian of a value that is not a scalar
    let e = hessian_with_aux(|x: Tensor| (x.sin(), ()), &x)
        .unwrap_err()
        .to_string();
    assert!(e.contains("float scalar"), "{e}");
    let e = hvp_with_aux(|x: Tensor| (x.sin(), ()), &x, &x)
        .unwrap_err()
        .to_string();
    assert!(e.contains("float scalar"), "{e}");
    // a tangent of another shape
    let e = ferrax::jvp_with_aux(|x: Tensor| (x.sin(), ()), &x, &t(&[1.0], &[1]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("f64[1]") || e.contains("tangent"), "{e}");
}
