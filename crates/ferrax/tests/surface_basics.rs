//! Small pieces of the everyday surface (issue 14, item 2): Rust scalars on the left of the
//! operators (weakly typed, as on the right), reductions over all axes, and `Display` for
//! tensors.

use ferrax::{grad, make_jaxpr, Array, DType, Tensor};

/// An f64 Rust scalar on the left of an f32 tensor is weak: the result stays f32 (`lr * g`
/// with `lr` a literal or an f64); unsuffixed literals keep inferring their type.
#[test]
fn scalars_on_the_left_take_the_tensors_dtype() {
    let g = Tensor::new(Array::from_slice(&[1.0f32, -2.0]));
    let lr = 0.5;
    let step = lr * &g;
    assert_eq!(step.dtype(), Some(DType::F32));
    assert_eq!(step.to_vec::<f32>().unwrap(), vec![0.5, -1.0]);
    assert_eq!((1.0 - &g).exp().dtype(), Some(DType::F32));
    let x = Tensor::new(Array::from_slice(&[1.5f64]));
    let d = grad(|x: Tensor| (3.0 * &x - &x * &x).sum_all(), &x).unwrap();
    assert_eq!(d.to_vec::<f64>().unwrap(), vec![0.0]);
}

#[test]
fn reductions_over_every_axis() {
    let x = Tensor::new(Array::from_vec(vec![1.0f64, -4.0, 2.5, 0.5, 3.0, -1.0], &[2, 3]).unwrap());
    assert_eq!(x.max_all().item().unwrap(), 3.0);
    assert_eq!(x.min_all().item().unwrap(), -4.0);
    assert_eq!(x.mean_all().item().unwrap(), 2.0 / 6.0);
    let nan = Tensor::new(Array::from_slice(&[1.0f64, f64::NAN]));
    assert!(nan.max_all().item().unwrap().is_nan());
    // traced, they are one reduction each
    let p = make_jaxpr(|x: Tensor| x.max_all() + x.mean_all(), &x).unwrap();
    assert_eq!(p.count_prim("reduce_max"), 1, "{p}");
    assert_eq!(p.count_prim("reduce_sum"), 1, "{p}");
    // and a scalar is its own reduction over no axes
    assert_eq!(Tensor::scalar(2.0f64).max_all().item().unwrap(), 2.0);
}

#[test]
fn tensors_display_as_nested_rows() {
    let m = Tensor::new(Array::from_vec(vec![1.0f64, 2.5, -3.0, 0.1], &[2, 2]).unwrap());
    assert_eq!(m.to_string(), "[[1.0, 2.5], [-3.0, 0.1]]");
    assert_eq!(Tensor::scalar(7i32).to_string(), "7");
    let e = Tensor::new(Array::from_vec(Vec::<f32>::new(), &[2, 0]).unwrap());
    assert_eq!(e.to_string(), "[[], []]");
    let b = Tensor::new(Array::from_slice(&[true, false]));
    assert_eq!(b.to_string(), "[true, false]");
    // traced values show their aval; failed ones their error
    let p = make_jaxpr(
        |x: Tensor| {
            assert_eq!(x.to_string(), "traced f64[2,2]");
            x
        },
        &m,
    );
    assert!(p.is_ok());
    let bad = m.reshape(&[3]);
    assert!(bad.to_string().starts_with("failed: "), "{bad}");
}
