//! Indexing (issue 14, item 1): `take`, `take_along_axis`, the `.at(idx)` updates, dynamic
//! slices and numpy slicing, against values worked by hand; an embedding lookup and a
//! cross-entropy with integer labels with their gradients against closed forms; the
//! derivative of `at().mul` with zero updates against finite differences; batched starts
//! against a loop; bad input as errors.

// `1..-1` is numpy's `1:-1` inside `s!`, not an empty Rust range
#![allow(clippy::reversed_empty_ranges)]

use ferrax::{grad, jit, jvp, s, vjp, vmap, Array, Ellipsis, NewAxis, Tensor};

mod common;
use common::{close, t, vals};

fn ints(v: &[i32]) -> Tensor {
    Tensor::new(Array::from_slice(v))
}

fn grid(rows: usize, cols: usize) -> Tensor {
    let v: Vec<f64> = (0..rows * cols).map(|i| i as f64).collect();
    t(&v, &[rows, cols])
}

#[test]
fn take_and_take_along_axis() {
    let x = grid(3, 4);
    // rows 2, last (-1), and 7 clamped to the last
    let r = x.take(&ints(&[2, -1, 7]), 0);
    assert_eq!(r.shape(), &[3, 4]);
    assert_eq!(
        vals(&r),
        vec![8., 9., 10., 11., 8., 9., 10., 11., 8., 9., 10., 11.]
    );
    // columns, with a 2-d index array: its shape replaces the axis
    let idx = Tensor::new(Array::from_vec(vec![0i32, 3, 1, 1], &[2, 2]).unwrap());
    let c = x.take(&idx, 1);
    assert_eq!(c.shape(), &[3, 2, 2]);
    assert_eq!(&vals(&c)[..4], &[0., 3., 1., 1.]);
    // take_along_axis: one column per row, as a cross-entropy picks its labels
    let labels = Tensor::new(Array::from_vec(vec![3i32, 0, -2], &[3, 1]).unwrap());
    let picked = x.take_along_axis(&labels, -1);
    assert_eq!(picked.shape(), &[3, 1]);
    assert_eq!(vals(&picked), vec![3., 4., 10.]);
    // along axis 0 with broadcast columns
    let rows = Tensor::new(Array::from_vec(vec![2i32, 0], &[2, 1]).unwrap());
    let g = x.take_along_axis(&rows, 0);
    assert_eq!(g.shape(), &[2, 4]);
    assert_eq!(vals(&g), vec![8., 9., 10., 11., 0., 1., 2., 3.]);
}

#[test]
fn at_updates_drop_out_of_range_and_get_clamps() {
    let x = t(&[1., 2., 3., 4.], &[4]);
    let idx = ints(&[0, 0, -1, 9]);
    // repeats add; -1 is the last; 9 is dropped
    assert_eq!(vals(&x.at(&idx).add(1.0)), vec![3., 2., 3., 5.]);
    let u = t(&[10., 20., 30., 40.], &[4]);
    // the last of repeated sets wins
    assert_eq!(vals(&x.at(&idx).set(&u)), vec![20., 2., 3., 30.]);
    assert_eq!(vals(&x.at(&idx).mul(&u)), vec![200., 2., 3., 120.]);
    assert_eq!(vals(&x.at(&idx).min(u.neg())), vec![-20., 2., 3., -30.]);
    assert_eq!(vals(&x.at(&idx).max(&u)), vec![20., 2., 3., 30.]);
    assert_eq!(vals(&x.at(&idx).get()), vec![1., 1., 4., 4.]);
    // along another axis, a row of updates broadcast
    let m = grid(2, 3);
    let r = m.at_axis(&ints(&[1]), 1).set(t(&[-1., -2.], &[2, 1]));
    assert_eq!(vals(&r), vec![0., -1., 2., 3., -2., 5.]);
}

#[test]
fn numpy_slicing() {
    let x = grid(3, 4);
    assert_eq!(vals(&x.s(s![1.., ..;-2])), vec![7., 5., 11., 9.]);
    assert_eq!(vals(&x.s(s![-1])), vec![8., 9., 10., 11.]);
    assert_eq!(vals(&x.s(s![.., -1])), vec![3., 7., 11.]);
    assert_eq!(vals(&x.s(s![..;-1, 1..3])), vec![9., 10., 5., 6., 1., 2.]);
    assert_eq!(vals(&x.s(s![0, 1..-1;2])), vec![1.]);
    assert_eq!(vals(&x.s(s![0, 1..=-1])), vec![1., 2., 3.]);
    assert_eq!(x.s(s![Ellipsis, NewAxis]).shape(), &[3, 4, 1]);
    assert_eq!(x.s(s![NewAxis, .., 2]).shape(), &[1, 3]);
    assert_eq!(x.s(s![5.., ..]).shape(), &[0, 4]);
    assert_eq!(x.s(s![1..1]).shape(), &[0, 4]);
    assert_eq!(vals(&x.s(s![2..0;-1, 0])), vec![8., 4.]);
    // a slice differentiates: its gradient lands where it read
    let g = grad(|x: Tensor| x.s(s![..;-2, -1]).sum_all(), &x).unwrap();
    assert_eq!(
        vals(&g),
        vec![0., 0., 0., 1., 0., 0., 0., 0., 0., 0., 0., 1.]
    );
    // bad indices are errors naming what is wrong
    let msg = |t: Tensor| t.error().expect("an error").to_string();
    assert!(msg(x.s(s![0, 0, 0])).contains("too many indices"));
    assert!(msg(x.s(s![3])).contains("index 3 is out of range for dimension 0 of size 3"));
    assert!(msg(x.s(s![..;0])).contains("the step is 0"));
    assert!(msg(x.s(s![Ellipsis, Ellipsis])).contains("one Ellipsis"));
}

/// An embedding lookup: the gradient of the table is the output cotangent's rows summed
/// into the looked-up rows (a repeated id receives both).
#[test]
fn embedding_lookup_and_its_gradient() {
    let table = grid(5, 3);
    let ids = ints(&[4, 1, 4]);
    let w = t(&[1., 2., 3., 4., 5., 6., 7., 8., 9.], &[3, 3]);
    let loss = |table: Tensor| (table.take(&ids, 0) * &w).sum_all();
    let g = grad(loss, &table).unwrap();
    let mut want = vec![0.0; 15];
    for (k, &id) in [4usize, 1, 4].iter().enumerate() {
        for c in 0..3 {
            want[id * 3 + c] += (k * 3 + c + 1) as f64;
        }
    }
    assert_eq!(vals(&g), want);
    // under jit the same
    let jg = jit(|table: Tensor| grad(loss, &table).unwrap());
    assert_eq!(vals(&jg.call(&table).unwrap()), want);
}

/// Cross-entropy with integer labels: `-mean(log_softmax(z)[i, y_i])`, whose gradient is
/// `(softmax(z) - onehot(y)) / n`.
#[test]
fn cross_entropy_with_integer_labels() {
    let z = t(
        &[
            0.5, -1.0, 2.0, 0.0, 1.5, 0.3, -0.7, 2.2, -2.0, 0.1, 0.9, 1.0,
        ],
        &[3, 4],
    );
    let labels = ints(&[2, 0, 3]);
    let ce = |z: Tensor| {
        let y = labels.s(s![.., NewAxis]);
        z.log_softmax(-1).take_along_axis(&y, -1).mean_all().neg()
    };
    let loss = ce(z.clone()).item().unwrap();
    let zv = vals(&z);
    let mut want_loss = 0.0;
    let mut want_grad = vec![0.0; 12];
    for (i, &y) in [2usize, 0, 3].iter().enumerate() {
        let row = &zv[i * 4..i * 4 + 4];
        let lse = row.iter().map(|v| v.exp()).sum::<f64>().ln();
        want_loss -= (row[y] - lse) / 3.0;
        for c in 0..4 {
            let p = (row[c] - lse).exp();
            want_grad[i * 4 + c] = (p - if c == y { 1.0 } else { 0.0 }) / 3.0;
        }
    }
    assert!(close(&[loss], &[want_loss], 1e-14), "{loss} vs {want_loss}");
    let g = grad(ce, &z).unwrap();
    assert!(close(&vals(&g), &want_grad, 1e-13), "{:?}", vals(&g));
}

/// `at().mul` with zero updates on a place: the derivative with respect to each update is
/// the product of everything else there (finite differences are exact for a product).
#[test]
fn scatter_mul_derivative_with_zero_updates() {
    let x = t(&[2.0, 3.0, 5.0], &[3]);
    let idx = ints(&[0, 0, 1, 1, 2]);
    let f = |(x, u): (Tensor, Tensor)| x.at(&idx).mul(&u);
    for u in [
        [0.0, 4.0, 0.0, 0.0, 7.0],
        [1.5, -2.0, 0.0, 3.0, 0.5],
        [1.5, -2.0, 4.0, 3.0, 0.0],
    ] {
        let uv = t(&u, &[5]);
        for k in 0..5 {
            let mut du = vec![0.0; 5];
            du[k] = 1.0;
            let (_, dt) = jvp(
                f,
                &(x.clone(), uv.clone()),
                &(t(&[0.0; 3], &[3]), t(&du, &[5])),
            )
            .unwrap();
            let mut hi = u;
            hi[k] += 1.0;
            let mut lo = u;
            lo[k] -= 1.0;
            let fd: Vec<f64> = vals(&f((x.clone(), t(&hi, &[5]))))
                .iter()
                .zip(vals(&f((x.clone(), t(&lo, &[5])))))
                .map(|(a, b)| (a - b) / 2.0)
                .collect();
            assert!(
                close(&vals(&dt), &fd, 1e-14),
                "u {u:?} k {k}: {:?} vs {fd:?}",
                vals(&dt)
            );
        }
    }
}

/// The reverse mode of `set` with repeated indices: only the update that stays receives
/// a cotangent, and the overwritten places of the operand receive none.
#[test]
fn set_with_repeats_in_reverse() {
    let x = t(&[1., 2., 3.], &[3]);
    let u = t(&[10., 20., 30.], &[3]);
    let idx = ints(&[1, 1, 2]);
    let (out, back) = vjp(|(x, u): (Tensor, Tensor)| x.at(&idx).set(&u), &(x, u)).unwrap();
    assert_eq!(vals(&out), vec![1., 20., 30.]);
    let (cx, cu): (Tensor, Tensor) = back.apply(&t(&[1., 2., 3.], &[3])).unwrap();
    assert_eq!(vals(&cx), vec![1., 0., 0.]);
    assert_eq!(vals(&cu), vec![0., 2., 3.]);
}

/// Dynamic slices whose starts vary across a vmap: each example its own window, as a loop
/// gives, in both directions.
#[test]
fn dynamic_slices_with_batched_starts() {
    let x = grid(4, 5);
    let starts: Vec<i32> = vec![0, 3, -1, 2];
    let s0 = ints(&starts);
    let s1 = ints(&[4, 1, 2, 0]);
    let out = vmap(
        |(a, b): (Tensor, Tensor)| x.dynamic_slice(&[a, b], &[2, 3]),
        &(s0.clone(), s1.clone()),
    )
    .unwrap();
    assert_eq!(out.shape(), &[4, 2, 3]);
    let u = t(&[-1., -2., -3., -4., -5., -6.], &[2, 3]);
    let upd = vmap(
        |(a, b): (Tensor, Tensor)| x.dynamic_update_slice(&u, &[a, b]),
        &(s0.clone(), s1.clone()),
    )
    .unwrap();
    for k in 0..4 {
        let (a, b) = (Tensor::scalar(starts[k]), Tensor::scalar([4, 1, 2, 0][k]));
        let one = x.dynamic_slice(&[a.clone(), b.clone()], &[2, 3]);
        assert_eq!(vals(&one), vals(&out.index_axis(0, k)));
        let one = x.dynamic_update_slice(&u, &[a, b]);
        assert_eq!(vals(&one), vals(&upd.index_axis(0, k)));
    }
    // clamped: a start of 3 in a length-4 axis for a window of 2 starts at 2
    assert_eq!(&vals(&out.index_axis(0, 1))[..3], &[11., 12., 13.]);
    // the gradient of a traced-start slice lands in the window
    let g = grad(
        |x: Tensor| {
            x.dynamic_slice(&[Tensor::scalar(1i32), Tensor::scalar(9i32)], &[1, 2])
                .sum_all()
        },
        &x,
    )
    .unwrap();
    let mut want = vec![0.0; 20];
    want[8] = 1.0;
    want[9] = 1.0;
    assert_eq!(vals(&g), want);
}

#[test]
fn bad_indices_are_errors() {
    let x = grid(3, 4);
    let msg = |t: Tensor| t.error().expect("an error").to_string();
    let float_idx = t(&[0.0, 1.0], &[2]);
    assert!(msg(x.take(&float_idx, 0)).contains("indices must be i32 or i64, got f64[2]"));
    assert!(msg(x.take(&ints(&[0]), 2)).contains("axis 2 is out of range"));
    let bad = Tensor::new(Array::from_vec(vec![0i32, 1, 2], &[3]).unwrap());
    assert!(msg(x.take_along_axis(&bad, 1)).contains("must have the rank"));
    let bad = Tensor::new(Array::from_vec(vec![0i32, 1], &[2, 1]).unwrap());
    assert!(msg(x.take_along_axis(&bad, 1)).contains("does not match"));
    assert!(msg(x.at(&ints(&[0])).add(t(&[1.0, 2.0], &[2]))).contains("broadcast"));
    assert!(msg(x.dynamic_slice(&[Tensor::scalar(0i32)], &[1, 1]))
        .contains("one start index per dimension"));
    assert!(
        msg(x.dynamic_slice(&[Tensor::scalar(0i32), Tensor::scalar(0.5)], &[1, 1]))
            .contains("start index 1 must be i32 or i64")
    );
    assert!(
        msg(x.dynamic_slice(&[Tensor::scalar(0i32), Tensor::scalar(0i32)], &[4, 1]))
            .contains("none larger")
    );
    // the error names the user's line
    let e = x.take(&float_idx, 0);
    assert!(
        e.error().unwrap().to_string().contains("indexing.rs"),
        "{}",
        msg(e)
    );
}

/// Slices at the ends of the integer types: no overflow, Python's answers.
#[test]
fn slices_with_extreme_bounds_and_steps() {
    let x = t(&[0., 1., 2., 3., 4.], &[5]);
    assert_eq!(vals(&x.s(s![..;isize::MAX])), vec![0.]);
    assert_eq!(vals(&x.s(s![..;isize::MIN])), vec![4.]);
    assert_eq!(vals(&x.s(s![isize::MIN..isize::MAX])), vals(&x));
    assert_eq!(vals(&x.s(s![2..usize::MAX])), vec![2., 3., 4.]);
    assert_eq!(x.s(s![usize::MAX..]).shape(), &[0]);
    let e = x.s(s![usize::MAX]).error().expect("an error").to_string();
    assert!(e.contains("out of range"), "{e}");
    assert_eq!(vals(&x.s(s![isize::MAX; -1])), Vec::<f64>::new());
}
