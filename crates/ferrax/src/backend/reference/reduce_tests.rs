//! The reduction kernel's fast paths (trailing axes, leading axes, every axis) give the
//! bits of its general loop: the same order of accumulation for every output element,
//! including the first NaN kept by `max`/`min` and the sign of a zero sum.

use super::kernels::{reduce, reduce_general, Num};

fn values(n: usize, seed: u64) -> Vec<f64> {
    // a spread of magnitudes, both zeros and a NaN or two, deterministic
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..n)
        .map(|i| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            match (s >> 33) % 17 {
                0 => -0.0,
                1 => 0.0,
                2 if i % 5 == 0 => f64::NAN,
                k => ((s >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 10f64.powi(k as i32 - 8),
            }
        })
        .collect()
}

fn same(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

#[test]
fn fast_paths_give_the_general_loops_bits() {
    let shapes: [&[usize]; 5] = [&[7], &[3, 5], &[2, 3, 4], &[4, 1, 6], &[2, 0, 3]];
    for (k, shape) in shapes.iter().enumerate() {
        let n: usize = shape.iter().product();
        let x = values(n, k as u64);
        let rank = shape.len();
        // every prefix and suffix of the axes (the fast paths), and all of them
        let mut cases: Vec<Vec<usize>> = vec![];
        for m in 1..=rank {
            cases.push((0..m).collect());
            cases.push((rank - m..rank).collect());
        }
        for axes in cases {
            let out_shape: Vec<usize> = (0..rank)
                .filter(|d| !axes.contains(d))
                .map(|d| shape[d])
                .collect();
            type Op = fn(f64, f64) -> f64;
            let ops: [(f64, Op); 3] = [
                (<f64 as Num>::ZERO, <f64 as Num>::add),
                (<f64 as Num>::LOWEST, <f64 as Num>::max_nan),
                (<f64 as Num>::HIGHEST, <f64 as Num>::min_nan),
            ];
            for (init, f) in ops {
                let fast = reduce(&x, shape, &axes, init, f);
                let general = reduce_general(&x, shape, &axes, &out_shape, init, f);
                assert!(
                    same(&fast, &general),
                    "{shape:?} {axes:?}: {fast:?} vs {general:?}"
                );
            }
        }
    }
}

/// The lane-wise maximum and minimum give the serial fold's bits: with and without NaNs,
/// with zeros of both signs as the extremum, blocks longer and shorter than the lanes.
#[test]
fn lane_extremum_gives_the_serial_bits() {
    use super::extremum::reduce_extremum;
    let shapes: [&[usize]; 5] = [&[100], &[3, 40], &[2, 5, 17], &[4, 3], &[1, 64]];
    for (k, shape) in shapes.iter().enumerate() {
        let n: usize = shape.iter().product();
        for variant in 0..4 {
            let mut x = values(n, 10 + k as u64 * 4 + variant);
            match variant {
                // no NaN
                0 => x.iter_mut().filter(|v| v.is_nan()).for_each(|v| *v = 1.5),
                // the maximum is a zero: negatives and zeros of both signs
                1 => x.iter_mut().enumerate().for_each(|(i, v)| {
                    *v = if v.is_nan() || *v > 0.0 {
                        [-0.0, 0.0][i % 2]
                    } else {
                        *v
                    }
                }),
                // the minimum is a zero
                2 => x.iter_mut().enumerate().for_each(|(i, v)| {
                    *v = if v.is_nan() || *v < 0.0 {
                        [0.0, -0.0][i % 2]
                    } else {
                        *v
                    }
                }),
                _ => {}
            }
            let rank = shape.len();
            for m in 1..=rank {
                let axes: Vec<usize> = (rank - m..rank).collect();
                let out_shape = shape[..rank - m].to_vec();
                let max = reduce_extremum(
                    &x,
                    shape,
                    &axes,
                    f64::NEG_INFINITY,
                    <f64 as Num>::max_nan,
                    |v, a| v > a,
                );
                let want = reduce_general(
                    &x,
                    shape,
                    &axes,
                    &out_shape,
                    f64::NEG_INFINITY,
                    <f64 as Num>::max_nan,
                );
                assert!(
                    same(&max, &want),
                    "max {shape:?} {axes:?} {variant}: {max:?} vs {want:?}"
                );
                let min = reduce_extremum(
                    &x,
                    shape,
                    &axes,
                    f64::INFINITY,
                    <f64 as Num>::min_nan,
                    |v, a| v < a,
                );
                let want = reduce_general(
                    &x,
                    shape,
                    &axes,
                    &out_shape,
                    f64::INFINITY,
                    <f64 as Num>::min_nan,
                );
                assert!(
                    same(&min, &want),
                    "min {shape:?} {axes:?} {variant}: {min:?} vs {want:?}"
                );
            }
        }
    }
}
