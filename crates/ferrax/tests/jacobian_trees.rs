//! Jacobians of tree-valued functions of trees (issue 15, item 2): a block per (output leaf,
//! input leaf) of shape `out.shape ++ in.shape`, forward and reverse mode agreeing with each
//! other and with the single-tensor `jacfwd` on each block.

use ferrax::{hessian, hessian_tree, hvp, hvp_tree, jacfwd, jacfwd_tree, jacrev_tree, Tensor};

mod common;
use common::{close, t, vals};

#[test]
fn tree_jacobians_in_both_modes() {
    let m = t(&[1.0, 2.0, -1.0, 0.5, 0.3, -0.7], &[2, 3]);
    let v = t(&[0.2, -0.4, 1.1], &[3]);
    let s = Tensor::scalar(0.7f64);
    // outputs: a vector, a scalar and a matrix, from a matrix, a vector and a scalar
    let f = |(m, v, s): (Tensor, Tensor, Tensor)| {
        let y = m.matmul(&v).tanh() * &s;
        let z = (&v * &v).sum_all() * s.sin();
        let w = &m * &s;
        (y, z, w)
    };
    let x = (m.clone(), v.clone(), s.clone());
    let jf = jacfwd_tree(f, &x).unwrap();
    let jr = jacrev_tree(f, &x).unwrap();
    assert_eq!((jf.blocks.len(), jf.blocks[0].len()), (3, 3));
    let shapes = [
        [&[2usize, 2, 3][..], &[2, 3], &[2]],
        [&[2, 3][..], &[3], &[]],
        [&[2, 3, 2, 3][..], &[2, 3, 3], &[2, 3]],
    ];
    for (i, row) in shapes.iter().enumerate() {
        for (j, shape) in row.iter().enumerate() {
            let (a, b) = (jf.block(i, j).unwrap(), jr.block(i, j).unwrap());
            assert_eq!(a.shape(), *shape, "block ({i}, {j})");
            assert!(close(&vals(a), &vals(b), 1e-14), "block ({i}, {j})");
        }
    }
    // each block is the Jacobian of that output in that input alone
    let dy_dv = jacfwd(|v: Tensor| m.matmul(&v).tanh() * &s, &v).unwrap();
    assert!(close(&vals(jf.block(0, 1).unwrap()), &vals(&dy_dv), 1e-15));
    let dz_ds = vals(&v).iter().map(|x| x * x).sum::<f64>() * 0.7f64.cos();
    assert!(close(&vals(jf.block(1, 2).unwrap()), &[dz_ds], 1e-15));
    assert!(jf.block(3, 0).is_err());
    // integer leaves cannot be differentiated
    let ints = (Tensor::from_vec(vec![1i32], &[1]),);
    assert!(jacfwd_tree(|(i,): (Tensor,)| i.clone(), &ints).is_err());
}

/// The Hessian and Hessian-vector products of a function of a tree equal those of the same
/// function of the concatenated vector, block by block.
#[test]
fn tree_hessians_match_the_flat_ones() {
    let f = |(a, v): (Tensor, Tensor)| (v.sin() * &a).sum_all() + (&a * &a * &a) * v.sum_all();
    let a = Tensor::scalar(0.7f64);
    let v = t(&[0.3, -1.1], &[2]);
    let flat = |z: Tensor| f((z.index_axis(0, 0), z.slice_axis(0, 1, 3)));
    let z = t(&[0.7, 0.3, -1.1], &[3]);
    let hf = vals(&hessian(flat, &z).unwrap());
    let h = hessian_tree(f, &(a.clone(), v.clone())).unwrap();
    // blocks: (a,a) [], (a,v) [2], (v,a) [2], (v,v) [2,2]
    assert!(close(&vals(h.block(0, 0).unwrap()), &[hf[0]], 1e-14));
    assert!(close(&vals(h.block(0, 1).unwrap()), &hf[1..3], 1e-14));
    assert!(close(&vals(h.block(1, 0).unwrap()), &[hf[3], hf[6]], 1e-14));
    assert!(close(
        &vals(h.block(1, 1).unwrap()),
        &[hf[4], hf[5], hf[7], hf[8]],
        1e-14
    ));
    let dv = (Tensor::scalar(0.5f64), t(&[1.0, -2.0], &[2]));
    let (ha, hv) = hvp_tree(f, &(a, v), &dv).unwrap();
    let want = vals(&hvp(flat, &z, &t(&[0.5, 1.0, -2.0], &[3])).unwrap());
    assert!(close(&[ha.item().unwrap()], &want[..1], 1e-14));
    assert!(close(&vals(&hv), &want[1..], 1e-14));
    // a direction of another shape is an error, not a panic
    let bad = (Tensor::scalar(0.5f64), t(&[1.0, -2.0, 3.0], &[3]));
    assert!(hvp_tree(f, &(Tensor::scalar(0.7f64), t(&[0.3, -1.1], &[2])), &bad).is_err());
}
