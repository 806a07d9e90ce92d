//! Programs run block of rows by block of rows (`row_blocks`): a plan whose whole program
//! works row by row over large values runs it on blocks of rows, each block's values staying
//! in cache. Its row-indexed outputs agree with the whole program's (bit for bit on the
//! shapes tested), its sums over the rows agree with the whole program's and the reference
//! evaluator's to rounding, and programs
//! that do not work row by row, or are small, run whole. A seeded stream of random
//! row-by-row programs agrees blocked, whole and with the reference.

mod common;

use common::{close, same_bits};
use ferrax::{
    gauss_newton, gauss_newton_with_loss, jit_linearize, linear_map, make_jaxpr,
    without_row_blocks, Array, DType, LinearMap, Plan, Program, Result, Tensor,
};

/// The Gauss-Newton benchmark's residual: a tanh layer over `n` points of `d` inputs (its
/// width is the parameters'), a linear output, minus the targets.
fn residual(n: usize, d: usize, dtype: DType) -> impl Fn(Vec<Tensor>) -> Tensor {
    let x = Tensor::random_normal(51, &[n, d], dtype);
    let y = Tensor::random_normal(52, &[n], dtype);
    move |th: Vec<Tensor>| {
        let h = (x.matmul(&th[0]) + &th[1]).tanh();
        (h.matmul(&th[2]) + &th[3]).index_axis(1, 0) - &y
    }
}

fn params(d: usize, hidden: usize, seed: u64, dtype: DType) -> Vec<Tensor> {
    vec![
        Tensor::random_normal(seed, &[d, hidden], dtype) * (1.0 / (d as f64).sqrt()),
        Tensor::random_normal(seed + 1, &[hidden], dtype) * 0.1,
        Tensor::random_normal(seed + 2, &[hidden, 1], dtype) * (1.0 / (hidden as f64).sqrt()),
        Tensor::random_normal(seed + 3, &[1], dtype) * 0.1,
    ]
}

fn arrays(ts: &[Tensor]) -> Vec<Array> {
    ts.iter().map(|t| t.array().unwrap()).collect()
}

/// Runs `program` blocked and whole, checks the plan blocks `rows` rows, and returns both
/// runs' outputs and the reference evaluator's.
fn blocked_and_whole(
    program: &Program,
    args: &[Array],
    rows: usize,
) -> (Vec<Array>, Vec<Array>, Vec<Array>) {
    let plan = Plan::new(program).unwrap();
    let (r, block) = plan
        .row_blocks()
        .expect("the program runs by blocks of rows");
    assert_eq!(r, rows);
    assert!(
        block >= 8 && block % 8 == 0 && 2 * block <= rows,
        "block {block}"
    );
    let blocked = plan.run(args.to_vec()).unwrap();
    let whole = without_row_blocks(|| plan.run(args.to_vec())).unwrap();
    let reference = program.eval(args).unwrap();
    (blocked, whole, reference)
}

fn assert_close(got: &Array, want: &Array, tol: f64, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}");
    assert!(
        close(&got.to_f64_vec(), &want.to_f64_vec(), tol),
        "{what}: not within {tol}"
    );
}

/// A map's program with its arguments: its residuals, then `tangents`.
fn program_and_args(m: &LinearMap, tangents: &[Tensor]) -> Result<(Program, Vec<Array>)> {
    let mut args = arrays(m.residuals());
    args.extend(arrays(tangents));
    Ok((ferrax::optimize(m.program())?, args))
}

#[test]
fn a_gauss_newton_product_runs_by_blocks_of_rows() -> Result<()> {
    // 4096 rows do not divide into blocks of either dtype's size (432 and 216 rows), so the
    // last block is a short one
    for (dtype, tol) in [(DType::F64, 1e-12), (DType::F32, 2e-5)] {
        let (n, d, hidden) = (4096, 32, 300);
        let r = residual(n, d, dtype);
        let lin = jit_linearize(&r);
        let theta = params(d, hidden, 400, dtype);
        let (_, j) = lin.call(&theta)?;
        let jt: LinearMap = j.transpose()?;
        let v = params(d, hidden, 900, dtype);
        // `J` alone: every output row-indexed, no sum over the rows: it runs whole
        let (p, _) = program_and_args(&j, &v)?;
        assert_eq!(Plan::new(&p)?.row_blocks(), None, "J v runs whole");
        // `Jᵀ`: every output a sum over the rows
        let jv: Tensor = j.apply(&v)?;
        let (p, args) = program_and_args(&jt, std::slice::from_ref(&jv))?;
        let (blocked, whole, reference) = blocked_and_whole(&p, &args, n);
        assert_eq!(blocked.len(), 4);
        for (k, ((b, w), r)) in blocked.iter().zip(&whole).zip(&reference).enumerate() {
            assert_close(b, w, tol, &format!("Jᵀ u output {k} blocked against whole"));
            assert_close(b, r, tol, &format!("Jᵀ u output {k} against the reference"));
        }
        // `Jᵀ J` composed into one map: one program, the residuals read once per block
        let map_by_map = |v: &Vec<Tensor>| -> Result<Vec<Tensor>> {
            let jv: Tensor = j.apply(v)?;
            jt.apply(&jv)
        };
        let jtj = linear_map(|v: Vec<Tensor>| map_by_map(&v).unwrap(), &v)?;
        let (p, args) = program_and_args(&jtj, &v)?;
        // the two halves captured the residuals they share twice: the optimizer keeps one
        // constant per array (the points, `tanh'`, the activations and the output weights)
        assert_eq!(p.consts.len(), 4, "one constant per shared array");
        let (blocked, whole, reference) = blocked_and_whole(&p, &args, n);
        let want = map_by_map(&v)?;
        for (k, ((b, w), r)) in blocked.iter().zip(&whole).zip(&reference).enumerate() {
            assert_close(
                b,
                w,
                tol,
                &format!("Jᵀ J v output {k} blocked against whole"),
            );
            assert_close(
                b,
                r,
                tol,
                &format!("Jᵀ J v output {k} against the reference"),
            );
            let m = want[k].array()?;
            assert_close(b, &m, tol, &format!("Jᵀ J v output {k} against map by map"));
        }
        // the public operator composes the same way (its maps keep megabytes alive); a bad
        // first argument is an error and does not keep it from composing later
        let gn = gauss_newton(&r, &theta)?;
        let mut bad = v.clone();
        bad[1] = Tensor::zeros(&[hidden + 1], dtype);
        assert!(gn.apply(&bad).is_err());
        assert!(!gn.runs_composed(), "composed on the first product");
        let got: Vec<Tensor> = gn.apply(&v)?;
        assert!(gn.runs_composed());
        assert!(gn.clone().runs_composed(), "clones share the composed map");
        let again: Vec<Tensor> = without_row_blocks(|| gn.apply(&v))?;
        for (k, ((a, b), w)) in got.iter().zip(&again).zip(&want).enumerate() {
            let what = format!("gauss_newton's product, output {k}");
            assert_close(&a.array()?, &w.array()?, tol, &what);
            assert_close(&b.array()?, &w.array()?, tol, &what);
        }
        // with a loss: `Jᵀ H_L J` composed, against its maps one after the other
        let loss = |r: Tensor| (&r * &r * &r * &r).sum_all() * 0.25;
        let gl = gauss_newton_with_loss(&r, loss, &theta)?;
        let got: Vec<Tensor> = gl.apply(&v)?;
        assert!(gl.runs_composed());
        let jv: Tensor = j.apply(&v)?;
        let (_, h) = ferrax::linearize(
            |r: Tensor| ferrax::grad(loss, &r).unwrap(),
            &r(theta.clone()),
        )?;
        let hjv: Tensor = h.apply(&jv)?;
        let want: Vec<Tensor> = jt.apply(&hjv)?;
        for (k, (a, w)) in got.iter().zip(&want).enumerate() {
            let what = format!("gauss_newton_with_loss's product, output {k}");
            assert_close(&a.array()?, &w.array()?, 100.0 * tol, &what);
        }
    }
    Ok(())
}

#[test]
fn a_small_gauss_newton_operator_runs_map_by_map() -> Result<()> {
    // 64 points: the maps keep a few kilobytes; composing would cost more than the
    // products save
    let r = residual(64, 4, DType::F64);
    let theta = params(4, 8, 400, DType::F64);
    let gn = gauss_newton(&r, &theta)?;
    let v = params(4, 8, 900, DType::F64);
    let got: Vec<Tensor> = gn.apply(&v)?;
    assert!(!gn.runs_composed());
    let jv: Tensor = gn.jacobian().apply(&v)?;
    let want: Vec<Tensor> = gn.jacobian_transpose().apply(&jv)?;
    for (a, b) in got.iter().zip(&want) {
        same_bits(&a.array()?, &b.array()?, "map by map");
    }
    Ok(())
}

#[test]
fn row_by_row_outputs_are_the_whole_programs_bits_on_any_threads() -> Result<()> {
    // a residual's forward pass; a relu by comparison and `where_` (a boolean value by rows);
    // an integer input by rows converted to floats; a column sum and a product `Xᵀ G`
    let f = |(x, idx, w, b): (Tensor, Tensor, Tensor, Tensor)| {
        let z = x.matmul(&w) + &b;
        let relu = ferrax::where_(&z.greater(0.0), &z, 0.0);
        let act = &relu
            * idx
                .astype(relu.dtype().unwrap_or(DType::F64))
                .reshape(&[-1, 1]);
        (act.sum(&[1]), act.sum(&[0]), x.t().matmul(&act))
    };
    // f32 sums of 3000 terms that cancel: a looser tolerance
    for (dtype, tol) in [(DType::F64, 1e-12), (DType::F32, 5e-4)] {
        let n = 3000;
        let args = (
            Tensor::random_normal(1, &[n, 24], dtype),
            Tensor::arange(n, DType::I32).rem(7),
            Tensor::random_normal(2, &[24, 200], dtype),
            Tensor::random_normal(3, &[200], dtype),
        );
        let program = make_jaxpr(f, &args)?;
        let a = arrays(&[
            args.0.clone(),
            args.1.clone(),
            args.2.clone(),
            args.3.clone(),
        ]);
        let (blocked, whole, reference) = blocked_and_whole(&program, &a, n);
        same_bits(&blocked[0], &whole[0], "row sums blocked against whole");
        assert_close(&blocked[0], &reference[0], tol, "row sums");
        for k in 1..3 {
            assert_close(&blocked[k], &whole[k], tol, &format!("output {k}"));
            assert_close(&blocked[k], &reference[k], tol, &format!("output {k}"));
        }
        // two threads: the same bits as one
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let plan = Plan::new(&program)?;
        let two = pool.install(|| plan.run(a.clone()))?;
        let one = plan.run(a.clone())?;
        for (x, y) in two.iter().zip(&one) {
            same_bits(x, y, "two threads against one");
        }
    }
    Ok(())
}

#[test]
fn programs_that_do_not_work_row_by_row_or_are_small_run_whole() -> Result<()> {
    let x = Tensor::random_normal(1, &[4096, 300], DType::F32);
    let w = Tensor::random_normal(2, &[300, 300], DType::F32);
    let whole = |p: Program| Plan::new(&p).map(|plan| plan.row_blocks());
    // each program also has a sum over the rows as an output and narrow row-indexed ones, so
    // that only the rule named keeps it whole
    let col = |x: &Tensor| x.sum(&[0]);
    // a sum over the rows used by a later equation: broadcast back over the rows, and
    // divided (a mean)
    let centered = make_jaxpr(|x: Tensor| ((&x - x.sum(&[0])).sum(&[1]), col(&x)), &x)?;
    assert_eq!(whole(centered)?, None, "a sum read after it is made");
    let mean = make_jaxpr(|x: Tensor| ((&x - x.mean(&[0])).sum(&[1]), col(&x)), &x)?;
    assert_eq!(whole(mean)?, None, "a mean read after it is made");
    // the row-indexed value as the right operand of a product (rows mixed)
    let mixed = make_jaxpr(|x: Tensor| (w.matmul(&x.t()).sum(&[0]), col(&x)), &x)?;
    assert_eq!(whole(mixed)?, None, "rows are contracted against a weight");
    // a transpose that moves the rows
    let moved = make_jaxpr(|x: Tensor| ((x.t() * 2.0).sum(&[0]), col(&x)), &x)?;
    assert_eq!(whole(moved)?, None, "the rows are moved");
    // small: its largest value stays in cache whole
    let small = Tensor::random_normal(3, &[512, 300], DType::F32);
    let fits = make_jaxpr(|x: Tensor| ((x.clone() * &x).sum(&[1]), col(&x)), &small)?;
    assert_eq!(whole(fits)?, None, "a 600 KiB program");
    // rows of 80 KiB: eight of them would fill a block
    let wide_rows = Tensor::random_normal(4, &[64, 20_000], DType::F32);
    let too_wide = make_jaxpr(
        |x: Tensor| ((x.clone() * &x).sum(&[1]), col(&x)),
        &wide_rows,
    )?;
    assert_eq!(whole(too_wide)?, None, "rows of 80 KiB");
    // no sum over the rows
    let rows_only = make_jaxpr(|x: Tensor| (x.clone() * x).sum(&[1]), &x)?;
    assert_eq!(whole(rows_only)?, None, "no sum over the rows");
    // outputs as wide as the widest value (a linearization's primal half)
    let wide = make_jaxpr(|x: Tensor| (x.tanh(), col(&x)), &x)?;
    assert_eq!(
        whole(wide)?,
        None,
        "row-indexed outputs as wide as the values"
    );
    // the same shapes with a sum over the rows and narrow outputs are blocked
    let both = make_jaxpr(|x: Tensor| ((x.clone() * &x).sum(&[1]), col(&x)), &x)?;
    assert!(whole(both)?.is_some());
    Ok(())
}

#[test]
fn the_remainder_rows_join_the_last_block() -> Result<()> {
    // 1297 rows of 300 f32: blocks of 432 rows, 432 + 432 + 433
    let f = |(x, w): (Tensor, Tensor)| {
        let h = x.matmul(&w).tanh();
        (h.sum(&[1]), h.sum(&[0]))
    };
    for n in [1297, 1296] {
        let args = (
            Tensor::random_normal(1, &[n, 300], DType::F32),
            Tensor::random_normal(2, &[300, 300], DType::F32) * 0.05,
        );
        let program = make_jaxpr(f, &args)?;
        let a = arrays(&[args.0.clone(), args.1.clone()]);
        let (blocked, whole, reference) = blocked_and_whole(&program, &a, n);
        assert_close(&blocked[0], &whole[0], 1e-5, "row sums");
        assert_close(
            &blocked[0],
            &reference[0],
            1e-4,
            "row sums against the reference",
        );
        assert_close(&blocked[1], &whole[1], 1e-4, "column sums");
    }
    assert_eq!(
        Plan::new(&make_jaxpr(
            f,
            &(
                Tensor::zeros(&[1297, 300], DType::F32),
                Tensor::zeros(&[300, 300], DType::F32)
            )
        )?)?
        .row_blocks(),
        Some((1297, 432))
    );
    Ok(())
}

#[test]
fn random_row_by_row_programs_agree_blocked_and_whole() -> Result<()> {
    // a seeded stream of programs: a product and a bias, then a random chain of row-local
    // steps (with a second row-indexed input, a scalar, a weight), then row sums, column
    // sums, a product over the rows and a total; row counts that leave remainders
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move |n: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % n
    };
    let mut blocked_programs = 0;
    for case in 0..12 {
        let n = [1000, 1500, 2311][next(3) as usize];
        let (d, w) = (12, [140, 200][next(2) as usize]);
        let ops: Vec<u64> = (0..3 + next(3)).map(|_| next(6)).collect();
        let f = |(x, y, w1, b): (Tensor, Tensor, Tensor, Tensor)| {
            let mut h = x.matmul(&w1) + &b;
            for &op in &ops {
                h = match op {
                    0 => h.tanh(),
                    1 => &h * &y,
                    2 => &h + 2.0,
                    3 => &h * &h,
                    4 => &h - &b,
                    _ => h.abs(),
                };
            }
            (
                h.sum(&[1]),
                h.sum(&[0]),
                x.t().matmul(&h),
                (&h * &y).sum_all(),
            )
        };
        let args = (
            Tensor::random_normal(10 + case, &[n, d], DType::F64),
            Tensor::random_normal(20 + case, &[n, w], DType::F64),
            Tensor::random_normal(30 + case, &[d, w], DType::F64) * 0.3,
            Tensor::random_normal(40 + case, &[w], DType::F64),
        );
        let program = make_jaxpr(f, &args)?;
        let plan = Plan::new(&program)?;
        let a = arrays(&[args.0, args.1, args.2, args.3]);
        if plan.row_blocks().is_some() {
            blocked_programs += 1;
        }
        let blocked = plan.run(a.clone())?;
        let whole = without_row_blocks(|| plan.run(a.clone()))?;
        let reference = program.eval(&a)?;
        for k in 0..4 {
            let what = format!("program {case} ({ops:?}, {n} rows), output {k}");
            assert_close(&blocked[k], &whole[k], 1e-10, &what);
            assert_close(&blocked[k], &reference[k], 1e-10, &what);
        }
    }
    // every one of them qualifies: the test exercises the blocks, not only the whole plans
    assert_eq!(blocked_programs, 12);
    Ok(())
}
