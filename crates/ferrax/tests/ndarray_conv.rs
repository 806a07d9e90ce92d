//! Conversion to and from `ndarray` (cargo feature `ndarray`).
#![cfg(feature = "ndarray")]

use ferrax::{Array, DType};

#[test]
fn round_trip_through_ndarray() {
    let a = Array::random_normal(1, &[2, 3], DType::F64).unwrap();
    let nd: ndarray::ArrayD<f64> = (&a).try_into().unwrap();
    assert_eq!(nd.shape(), &[2, 3]);
    assert_eq!(nd[[1, 2]], a.to_vec::<f64>().unwrap()[5]);
    let back = Array::try_from(&nd).unwrap();
    assert_eq!(back, a);
    // row-major order is kept even for a transposed (non-contiguous) ndarray
    let t = nd.t().to_owned();
    let bt = Array::try_from(&t).unwrap();
    assert_eq!(bt.shape(), &[3, 2]);
    assert_eq!(bt.get(&[2, 1]).unwrap(), a.get(&[1, 2]).unwrap());
    // a dtype mismatch is an error, not a panic
    let e = ndarray::ArrayD::<f32>::try_from(&a).unwrap_err();
    assert!(e
        .to_string()
        .contains("asked for f32 elements of a f64 array"));
    // an empty ndarray whose other dimensions do not fit a ferrax shape is an error
    let huge = ndarray::ArrayD::<f64>::zeros(ndarray::IxDyn(&[0, 1 << 31, 1 << 31]));
    assert!(Array::try_from(&huge).is_err());
}
