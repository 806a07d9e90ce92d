//! Bundle adjustment: the preconditioner's blocks against the dense `JᵀJ`, and a solve down
//! to the noise.

use ferrax::{jacfwd, Tensor};
use ferrax_solvers::bundle::{Bundle, CAMERA, POINT};

#[test]
fn the_blocks_from_one_batched_application_are_those_of_the_dense_jtj() {
    let b = Bundle::synthetic(4, 12, 3, 0.5, 7).unwrap();
    let dim = b.start.len();
    let x = Tensor::from_vec(b.start.clone(), &[dim]);
    let (_, lin) = ferrax::linearize(|p: Tensor| b.residual(p), &x).unwrap();
    let (cam, pt) = b.jtj_blocks(&lin).unwrap();
    let j = jacfwd(|p: Tensor| b.residual(p), &x)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    let m = 2 * b.observations();
    let jtj = |a: usize, c: usize| (0..m).map(|r| j[r * dim + a] * j[r * dim + c]).sum::<f64>();
    let close = |got: f64, want: f64| (got - want).abs() <= 1e-9 * want.abs().max(1.0);
    for c in 0..4 {
        for (k, l) in (0..CAMERA).flat_map(|k| (0..CAMERA).map(move |l| (k, l))) {
            let want = jtj(c * CAMERA + k, c * CAMERA + l);
            let got = cam[c * CAMERA * CAMERA + k * CAMERA + l];
            assert!(close(got, want), "camera {c} ({k}, {l}): {got} vs {want}");
        }
    }
    let nc = 4 * CAMERA;
    for p in 0..12 {
        for (k, l) in (0..POINT).flat_map(|k| (0..POINT).map(move |l| (k, l))) {
            let want = jtj(nc + p * POINT + k, nc + p * POINT + l);
            assert!(
                close(pt[p * POINT * POINT + k * POINT + l], want),
                "point {p}"
            );
        }
    }
}

#[test]
fn a_small_scene_is_solved_down_to_the_noise() {
    let noise = 0.5;
    let b = Bundle::synthetic(20, 300, 3, noise, 11).unwrap();
    let r = b.solve(30, 200).unwrap();
    let (m, n) = (2 * b.observations(), b.start.len());
    // at the optimum the residuals' RMS is the noise's times sqrt((m − n)/m), less the
    // gauge freedom's few degrees
    let expected = noise * ((m - n) as f64 / m as f64).sqrt();
    assert!(r.rms_start > 10.0 * noise, "{r:?}");
    assert!(
        (r.rms_end / expected - 1.0).abs() < 0.15,
        "{} vs {expected}",
        r.rms_end
    );
    assert_eq!(r.linearizations, r.steps);
    assert!(Bundle::synthetic(2, 5, 3, 0.5, 1).is_err());
    // sizes that overflow or could not be allocated are errors before any allocation
    for (c, p, v) in [(usize::MAX, 10, 1), (10, usize::MAX, 1), (100, 1 << 40, 4)] {
        let e = Bundle::synthetic(c, p, v, 0.5, 1).err().expect("too large");
        assert!(e.to_string().contains("more than"), "{e}");
    }
    // a linear map of another problem is refused, not indexed out of range
    let other = Bundle::synthetic(3, 10, 2, 0.5, 1).unwrap();
    let x = Tensor::from_vec(other.start.clone(), &[other.start.len()]);
    let (_, lin) = ferrax::linearize(|p: Tensor| other.residual(p), &x).unwrap();
    let small = Bundle::synthetic(3, 10, 3, 0.5, 1).unwrap();
    assert!(small.jtj_blocks(&lin).is_err());
}
