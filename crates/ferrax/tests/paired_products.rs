//! Two products of one matrix by a vector each, adjacent in a plan (`W x` and `W t` in the
//! jvp of a layer), run reading the matrix once: the same bits as the reference evaluator,
//! on widths that are and are not multiples of the kernels' blocks (from matvec's 16 terms), in f32 and f64, and
//! with a transposed matrix (a layout that runs the two products apart).

use ferrax::{jvp, make_jaxpr, Array, DType, Plan, Tensor};

/// `u · (1 - u / 4)` with `u = W_i x + b_i` through `depth` layers, the weights transposed
/// or not (operations with one IEEE result, so the reference evaluator's bits are the
/// plan's wherever the products agree).
fn chain(ws: &[Tensor], bs: &[Tensor], x: Tensor, transposed: bool) -> Tensor {
    let mut h = x;
    for (w, b) in ws.iter().zip(bs) {
        let w = if transposed {
            w.transpose(&[1, 0])
        } else {
            w.clone()
        };
        let u = w.matmul(&h) + b;
        h = &u * (1.0 - &u * 0.25);
    }
    h
}

#[test]
fn paired_products_equal_the_reference_bit_for_bit() {
    for dtype in [DType::F32, DType::F64] {
        for width in [16usize, 37, 64, 203] {
            for transposed in [false, true] {
                let depth = 3;
                let ws: Vec<Tensor> = (0..depth)
                    .map(|i| Tensor::random_uniform(i, &[width, width], -0.5, 0.5, dtype))
                    .collect();
                let bs: Vec<Tensor> = (0..depth)
                    .map(|i| Tensor::random_uniform(50 + i, &[width], -0.5, 0.5, dtype))
                    .collect();
                let x = Tensor::random_uniform(98, &[width], -1.0, 1.0, dtype);
                let t = Tensor::random_uniform(99, &[width], -1.0, 1.0, dtype);
                // the weights are inputs of the program, as in a jitted function of them
                let f = |(ws, x, t): (Vec<Tensor>, Tensor, Tensor)| {
                    let (y, dy) = jvp(|x: Tensor| chain(&ws, &bs, x, transposed), &x, &t).unwrap();
                    vec![y, dy]
                };
                let p = make_jaxpr(f, &(ws.clone(), x.clone(), t.clone())).unwrap();
                let mut args: Vec<Array> = ws.iter().map(|w| w.array().unwrap()).collect();
                args.extend([x.array().unwrap(), t.array().unwrap()]);
                let plan = Plan::new(&p).unwrap();
                let what = format!("{dtype} width {width} transposed {transposed}");
                // the product by each layer's matrix is paired with its tangent's (with the
                // matrix's columns contiguous, the two then run apart); from 16 terms the
                // reference evaluator and plans share matvec's summation order
                assert_eq!(plan.paired_products(), depth as usize, "{what}");
                let got = plan.run(args.clone()).unwrap();
                let want = p.eval(&args).unwrap();
                for (g, w) in got.iter().zip(&want) {
                    assert!(g.same_values(w), "{what}: {g:?} vs {w:?}");
                }
            }
        }
    }
}
