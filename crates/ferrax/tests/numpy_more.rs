//! The jax.numpy additions of issue 14, item 2: inverse trigonometry, `rem` (and `%`),
//! logical operations, `prod`, `argmin`, `sort`/`argsort`, the cumulative products and
//! extrema, `diagonal`, `trace`, `tri`/`tril`/`triu`, norms and `einsum`: values against
//! numbers worked by hand or by libm, derivatives against closed forms, bad input as errors.

use ferrax::{grad, jvp, DType, Tensor};

mod common;
use common::{close, t, vals};

fn msg(x: Tensor) -> String {
    x.error().expect("an error").to_string()
}

#[test]
fn inverse_functions_and_their_derivatives() {
    let x = t(&[-0.5, 0.25, 0.75], &[3]);
    let xs = [-0.5f64, 0.25, 0.75];
    type Case = (fn(&Tensor) -> Tensor, fn(f64) -> f64, fn(f64) -> f64);
    let cases: Vec<Case> = vec![
        (|x| x.asin(), f64::asin, |x| 1.0 / (1.0 - x * x).sqrt()),
        (|x| x.acos(), f64::acos, |x| -1.0 / (1.0 - x * x).sqrt()),
        (|x| x.atan(), f64::atan, |x| 1.0 / (1.0 + x * x)),
        (|x| x.asinh(), f64::asinh, |x| 1.0 / (x * x + 1.0).sqrt()),
        (|x| x.atanh(), f64::atanh, |x| 1.0 / (1.0 - x * x)),
        (
            |x| (x + 2.0).acosh(),
            |x| (x + 2.0).acosh(),
            |x| 1.0 / ((x + 2.0).powi(2) - 1.0).sqrt(),
        ),
    ];
    for (f, v, d) in cases {
        let want: Vec<f64> = xs.iter().map(|&x| v(x)).collect();
        assert!(close(&vals(&f(&x)), &want, 1e-15));
        let g = grad(|x: Tensor| f(&x).sum_all(), &x).unwrap();
        let want: Vec<f64> = xs.iter().map(|&x| d(x)).collect();
        assert!(close(&vals(&g), &want, 1e-14), "{:?} vs {want:?}", vals(&g));
    }
}

#[test]
fn rem_follows_the_dividend_and_differentiates() {
    let x = t(&[5.5, -5.5, 5.5, 1.0], &[4]);
    let y = t(&[2.0, 2.0, -2.0, 3.0], &[4]);
    assert_eq!(vals(&(&x % &y)), vec![1.5, -1.5, 1.5, 1.0]);
    let xi = Tensor::from_vec(vec![7i32, -7, 7, i32::MIN], &[4]);
    let yi = Tensor::from_vec(vec![3i32, 3, 0, -1], &[4]);
    // by zero: the dividend (as XLA); MIN rem -1: 0
    assert_eq!(xi.rem(&yi).to_vec::<i32>().unwrap(), vec![1, -1, 7, 0]);
    // floor remainder: the sign of the divisor (Python's %)
    assert_eq!(vals(&x.remainder(&y)), vec![1.5, 0.5, -0.5, 1.0]);
    assert_eq!(xi.remainder(&yi).to_vec::<i32>().unwrap()[..2], [1, 2]);
    // d/dy (x rem y) = -trunc(x / y)
    let g = grad(|y: Tensor| (&x % &y).sum_all(), &y).unwrap();
    assert_eq!(vals(&g), vec![-2.0, 2.0, 2.0, -0.0]);
}

#[test]
fn logical_operations_use_truth() {
    let a = Tensor::from_vec(vec![true, true, false, false], &[4]);
    let b = Tensor::from_vec(vec![1.0, 0.0, 2.0, 0.0], &[4]);
    let bools = |x: Tensor| x.to_vec::<bool>().unwrap();
    assert_eq!(bools(a.logical_and(&b)), vec![true, false, false, false]);
    assert_eq!(bools(a.logical_or(&b)), vec![true, true, true, false]);
    assert_eq!(bools(a.logical_xor(&b)), vec![false, true, true, false]);
    assert_eq!(bools(b.logical_not()), vec![false, true, false, true]);
}

#[test]
fn products_and_their_exact_derivatives() {
    let x = t(&[2.0, 3.0, -4.0, 0.5, 0.0, 7.0, 0.0, 0.0, 1.0], &[3, 3]);
    assert_eq!(vals(&x.prod(&[1])), vec![-24.0, 0.0, 0.0]);
    // the product of the others in each row, zeros included
    let g = grad(|x: Tensor| x.prod(&[1]).sum_all(), &x).unwrap();
    assert_eq!(
        vals(&g),
        vec![-12.0, -8.0, 6.0, 0.0, 3.5, 0.0, 0.0, 0.0, 0.0]
    );
    assert_eq!(x.argmin(1).to_vec::<i64>().unwrap(), vec![2, 1, 0]);
    let nan = t(&[1.0, f64::NAN, -1.0], &[3]);
    assert_eq!(nan.argmin(0).to_vec::<i64>().unwrap(), vec![1]);
    // cumulative product, forwards and from the end, and its derivative
    let v = t(&[2.0, 3.0, 0.0, 5.0, -1.0], &[5]);
    assert_eq!(vals(&v.cumprod(0, false)), vec![2.0, 6.0, 0.0, 0.0, -0.0]);
    assert_eq!(vals(&v.cumprod(0, true)), vec![0.0, 0.0, 0.0, -5.0, -1.0]);
    let (_, dt) = jvp(
        |v: Tensor| v.cumprod(0, false),
        &v,
        &t(&[1.0, 0.0, 0.0, 0.0, 0.0], &[5]),
    )
    .unwrap();
    assert_eq!(vals(&dt), vec![1.0, 3.0, 0.0, 0.0, 0.0]);
    let (_, dt) = jvp(
        |v: Tensor| v.cumprod(0, false),
        &v,
        &t(&[0.0, 0.0, 1.0, 0.0, 0.0], &[5]),
    )
    .unwrap();
    assert_eq!(vals(&dt), vec![0.0, 0.0, 6.0, 30.0, -30.0]);
    let m = t(&[1.0, 3.0, 2.0, 5.0, 4.0], &[5]);
    assert_eq!(vals(&m.cummax(0, false)), vec![1.0, 3.0, 3.0, 5.0, 5.0]);
    assert_eq!(vals(&m.cummin(0, true)), vec![1.0, 2.0, 2.0, 4.0, 4.0]);
    let i = Tensor::from_vec(vec![3i32, -1, 4, i32::MIN], &[4]);
    assert_eq!(
        i.cummax(0, false).to_vec::<i32>().unwrap(),
        vec![3, 3, 4, 4]
    );
    assert_eq!(
        i.cummin(0, false).to_vec::<i32>().unwrap(),
        vec![3, -1, -1, i32::MIN]
    );
    // the running maximum's derivative follows the element that holds it
    let g = grad(|m: Tensor| m.cummax(0, false).sum_all(), &m).unwrap();
    assert_eq!(vals(&g), vec![1.0, 2.0, 0.0, 2.0, 0.0]);
}

#[test]
fn sort_argsort_and_the_derivative_through_the_permutation() {
    let x = t(&[3.0, 1.0, f64::NAN, -2.0, 1.0], &[5]);
    assert_eq!(x.argsort(0).to_vec::<i64>().unwrap(), vec![3, 1, 4, 0, 2]);
    let s = vals(&x.sort(0));
    assert_eq!(&s[..4], &[-2.0, 1.0, 1.0, 3.0]);
    assert!(s[4].is_nan());
    // weights by rank: each element's gradient is the weight of the place it sorts to
    let y = t(&[0.3, -1.0, 2.0, 0.1], &[4]);
    let w = t(&[1.0, 2.0, 3.0, 4.0], &[4]);
    let g = grad(|y: Tensor| (y.sort(0) * &w).sum_all(), &y).unwrap();
    assert_eq!(vals(&g), vec![3.0, 1.0, 4.0, 2.0]);
    // along an axis of a matrix
    let m = t(&[3.0, 1.0, 2.0, 0.0, 5.0, -1.0], &[2, 3]);
    assert_eq!(vals(&m.sort(1)), vec![1.0, 2.0, 3.0, -1.0, 0.0, 5.0]);
    assert_eq!(vals(&m.sort(0)), vec![0.0, 1.0, -1.0, 3.0, 5.0, 2.0]);
}

#[test]
fn matrix_structure() {
    let a = t(&(0..12).map(f64::from).collect::<Vec<_>>(), &[3, 4]);
    assert_eq!(vals(&a.diagonal(0, 0, 1)), vec![0.0, 5.0, 10.0]);
    assert_eq!(vals(&a.diagonal(1, 0, 1)), vec![1.0, 6.0, 11.0]);
    assert_eq!(vals(&a.diagonal(-1, 0, 1)), vec![4.0, 9.0]);
    assert_eq!(vals(&a.diagonal(0, 1, 0)), vec![0.0, 5.0, 10.0]);
    assert_eq!(a.diagonal(9, 0, 1).shape(), &[0]);
    assert_eq!(a.trace(0, 0, 1).item().unwrap(), 15.0);
    // a batch of matrices: the diagonal is the last axis
    let b = t(&(0..8).map(f64::from).collect::<Vec<_>>(), &[2, 2, 2]);
    assert_eq!(vals(&b.diagonal(0, -2, -1)), vec![0.0, 3.0, 4.0, 7.0]);
    // the trace's gradient is the identity
    let sq = t(&[1.0, 2.0, 3.0, 4.0], &[2, 2]);
    assert_eq!(
        vals(&grad(|x: Tensor| x.trace(0, 0, 1), &sq).unwrap()),
        vec![1.0, 0.0, 0.0, 1.0]
    );
    assert_eq!(
        vals(&Tensor::tri(2, 3, 0, DType::F64)),
        vec![1.0, 0.0, 0.0, 1.0, 1.0, 0.0]
    );
    assert_eq!(
        vals(&a.tril(0)),
        vec![0., 0., 0., 0., 4., 5., 0., 0., 8., 9., 10., 0.]
    );
    assert_eq!(
        vals(&a.triu(1)),
        vec![0., 1., 2., 3., 0., 0., 6., 7., 0., 0., 0., 11.]
    );
    assert_eq!(
        vals(&a.tril(-1)),
        vec![0., 0., 0., 0., 4., 0., 0., 0., 8., 9., 0., 0.]
    );
    // norms
    let v = t(&[3.0, -4.0, 0.0], &[3]);
    assert_eq!(v.norm(&[0]).item().unwrap(), 5.0);
    assert_eq!(v.vector_norm(1.0, &[0]).item().unwrap(), 7.0);
    assert_eq!(v.vector_norm(f64::INFINITY, &[0]).item().unwrap(), 4.0);
    assert_eq!(v.vector_norm(f64::NEG_INFINITY, &[0]).item().unwrap(), 0.0);
    assert_eq!(v.vector_norm(0.0, &[0]).item().unwrap(), 2.0);
    assert!(close(
        &[v.vector_norm(3.0, &[0]).item().unwrap()],
        &[91f64.cbrt()],
        1e-15
    ));
    let g = grad(|v: Tensor| v.norm(&[0]), &v).unwrap();
    assert!(close(&vals(&g), &[0.6, -0.8, 0.0], 1e-15));
    // bad input
    assert!(msg(a.diagonal(0, 1, -1)).contains("axis1 and axis2 are both 1"));
    assert!(msg(v.tril(0)).contains("needs at least two dimensions"));
}

#[test]
fn einsum_against_the_products_it_names() {
    let a = t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    let b = t(&[0.5, -1.0, 2.0, 1.5, 0.0, 3.0], &[3, 2]);
    let mm = vals(&a.matmul(&b));
    assert_eq!(vals(&Tensor::einsum("ij,jk->ik", &[&a, &b])), mm);
    assert_eq!(vals(&Tensor::einsum("ij,jk", &[&a, &b])), mm);
    let mt = vals(&a.matmul(&b).t());
    assert_eq!(vals(&Tensor::einsum("ij,jk->ki", &[&a, &b])), mt);
    assert_eq!(vals(&Tensor::einsum("ij->ji", &[&a])), vals(&a.t()));
    assert_eq!(vals(&Tensor::einsum("ij->", &[&a])), vec![21.0]);
    assert_eq!(vals(&Tensor::einsum("ij->j", &[&a])), vec![5.0, 7.0, 9.0]);
    let sq = t(&[1.0, 2.0, 3.0, 4.0], &[2, 2]);
    assert_eq!(vals(&Tensor::einsum("ii", &[&sq])), vec![5.0]);
    assert_eq!(vals(&Tensor::einsum("ii->i", &[&sq])), vec![1.0, 4.0]);
    let u = t(&[1.0, 2.0], &[2]);
    let w = t(&[3.0, 4.0, 5.0], &[3]);
    assert_eq!(
        vals(&Tensor::einsum("i,j->ij", &[&u, &w])),
        vec![3., 4., 5., 6., 8., 10.]
    );
    assert_eq!(vals(&Tensor::einsum("i,i->", &[&u, &u])), vec![5.0]);
    // batched, and three operands: u^T A B u' per the letters
    let ab = t(&(0..12).map(f64::from).collect::<Vec<_>>(), &[2, 2, 3]);
    let bb = t(
        &(0..12).map(|i| i as f64 * 0.5).collect::<Vec<_>>(),
        &[2, 3, 2],
    );
    let want = vals(&ab.matmul(&bb));
    assert_eq!(vals(&Tensor::einsum("bij,bjk->bik", &[&ab, &bb])), want);
    let three = Tensor::einsum("i,ij,jk->k", &[&u, &a, &b]);
    let direct = u.reshape(&[1, 2]).matmul(&a).matmul(&b).reshape(&[2]);
    assert_eq!(vals(&three), vals(&direct));
    // its gradient is the transposed products
    let g = grad(|a: Tensor| Tensor::einsum("ij,jk->", &[&a, &b]), &a).unwrap();
    assert_eq!(
        vals(&g),
        vals(&b.sum(&[1]).reshape(&[1, 3]).broadcast_to(&[2, 3]))
    );
    // bad subscripts
    assert!(msg(Tensor::einsum("ij,jk->ik", &[&a])).contains("name 2 operand(s), 1 given"));
    assert!(msg(Tensor::einsum("ijk->i", &[&a])).contains("names 3 axes"));
    assert!(msg(Tensor::einsum("ij,ij->i", &[&a, &b])).contains("sizes"));
    assert!(msg(Tensor::einsum("ij->iz", &[&a])).contains("`z` names no input axis"));
    assert!(msg(Tensor::einsum("...i->i", &[&a])).contains("ellipses"));
    assert!(msg(Tensor::einsum("i1->i", &[&a])).contains("not a letter"));
}

/// Extreme offsets and more bad input: no overflow, the answer numpy gives, or an error
/// naming the operation.
#[test]
fn extreme_offsets_and_bad_input() {
    let a = t(&(0..6).map(f64::from).collect::<Vec<_>>(), &[2, 3]);
    assert_eq!(a.diagonal(isize::MIN, 0, 1).shape(), &[0]);
    assert_eq!(a.diagonal(isize::MAX, 0, 1).shape(), &[0]);
    assert_eq!(vals(&a.tril(isize::MAX)), vals(&a));
    assert_eq!(vals(&a.triu(isize::MIN)), vals(&a));
    assert!(vals(&a.tril(isize::MIN)).iter().all(|&v| v == 0.0));
    assert!(vals(&a.triu(isize::MAX)).iter().all(|&v| v == 0.0));
    assert_eq!(
        vals(&Tensor::tri(2, 2, isize::MAX, DType::F64)),
        vec![1.0; 4]
    );
    let flags = Tensor::from_vec(vec![true, false], &[2]);
    assert!(msg(flags.cumprod(0, false)).contains("needs a numeric tensor"));
    assert!(msg(a.cummax(2, false)).contains("out of range"));
    assert!(msg(a.vector_norm(2.0, &[0, 0])).contains("repeat"));
    assert!(msg(a.diagonal(0, 0, 5)).contains("out of range"));
    assert!(msg(a.argsort(3)).contains("out of range"));
    assert!(msg(a.prod(&[4])).contains("out of range"));
}
