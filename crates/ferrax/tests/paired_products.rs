//! Two products of one matrix by a vector each, adjacent in a plan (`W x` and `W t` in the
//! jvp of a layer), run reading the matrix once: the same bits as the reference evaluator,
//! on widths that are and are not multiples of the kernels' blocks (from matvec's 16 terms),
//! in f32 and f64, with a transposed matrix (a layout that runs the two products apart),
//! with the weights as inputs or as constants, and below 16 terms (apart, through `gemm`).

mod harness;

use ferrax::{eval_counts, jvp, make_jaxpr, reset_eval_counts, DType, Plan, Tensor};

/// `u · (1 - u / 4)` with `u = W_i x + b_i` through the layers, the weights transposed or
/// not (operations with one IEEE result, so the reference evaluator's bits are the plan's
/// wherever the products agree).
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
    let depth = 3;
    for dtype in [DType::F32, DType::F64] {
        for width in [8usize, 16, 37, 64, 203] {
            for (transposed, captured) in [(false, false), (true, false), (false, true)] {
                let ws: Vec<Tensor> = (0..depth)
                    .map(|i| Tensor::random_uniform(i, &[width, width], -0.5, 0.5, dtype))
                    .collect();
                let bs: Vec<Tensor> = (0..depth)
                    .map(|i| Tensor::random_uniform(50 + i, &[width], -0.5, 0.5, dtype))
                    .collect();
                let x = Tensor::random_uniform(98, &[width], -1.0, 1.0, dtype);
                let t = Tensor::random_uniform(99, &[width], -1.0, 1.0, dtype);
                // the weights are inputs of the program (a jitted function of them), or
                // constants it captured (each product then reads the same buffer)
                let (p, mut args) = if captured {
                    let f = |(x, t): (Tensor, Tensor)| {
                        let (y, dy) = jvp(|x: Tensor| chain(&ws, &bs, x, false), &x, &t).unwrap();
                        vec![y, dy]
                    };
                    (make_jaxpr(f, &(x.clone(), t.clone())).unwrap(), vec![])
                } else {
                    let f = |(ws, x, t): (Vec<Tensor>, Tensor, Tensor)| {
                        let (y, dy) =
                            jvp(|x: Tensor| chain(&ws, &bs, x, transposed), &x, &t).unwrap();
                        vec![y, dy]
                    };
                    let p = make_jaxpr(f, &(ws.clone(), x.clone(), t.clone())).unwrap();
                    (p, ws.iter().map(|w| w.array().unwrap()).collect())
                };
                args.extend([x.array().unwrap(), t.array().unwrap()]);
                let plan = Plan::new(&p).unwrap();
                let what = format!("{dtype} width {width} transposed {transposed} {captured}");
                // each layer's product is paired with its tangent's (with the matrix's
                // columns contiguous, or below 16 terms, the two then run apart)
                assert_eq!(plan.paired_products(), depth as usize, "{what}");
                reset_eval_counts();
                let got = plan.run(args.clone()).unwrap();
                assert_eq!(eval_counts()["dot_general"], 2 * depth, "{what}");
                let want = p.eval(&args).unwrap();
                for (g, w) in got.iter().zip(&want) {
                    // from 16 terms the reference and plans share matvec's summation order;
                    // below, plans multiply through `gemm`, the reference by its own loop
                    let same = match width >= 16 {
                        true => g.same_values(w),
                        false => harness::close(g, w, 1e-5),
                    };
                    assert!(same, "{what}: {g:?} vs {w:?}");
                }
            }
        }
    }
}

/// Products of one vector by two matrices share an operand too, but are not a matrix times
/// a vector each: they stay single steps.
#[test]
fn a_shared_vector_is_not_paired() {
    let w1 = Tensor::random_uniform(1, &[64, 64], -1.0, 1.0, DType::F32);
    let w2 = Tensor::random_uniform(2, &[64, 64], -1.0, 1.0, DType::F32);
    let x = Tensor::random_uniform(3, &[64], -1.0, 1.0, DType::F32);
    let p = make_jaxpr(
        |(w1, w2, x): (Tensor, Tensor, Tensor)| vec![x.matmul(&w1), x.matmul(&w2)],
        &(w1, w2, x),
    )
    .unwrap();
    assert_eq!(Plan::new(&p).unwrap().paired_products(), 0);
}
