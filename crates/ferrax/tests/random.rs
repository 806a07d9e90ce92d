//! Random numbers from keys (issue 14, item 3): Random123's known answer through `split`,
//! bit-exact reproducibility, draws that stay traced inside `jit`, `vmap` of `split` as a
//! loop of splits, the samplers' statistics (within five standard errors, so a correct
//! generator fails about once in millions of runs), a dropout layer under `jit` with its
//! gradient, and bad keys as errors.

use ferrax::{fori_loop, grad, jit, random, scan, vmap, Array, DType, Tensor};

fn f64s(x: &Tensor) -> Vec<f64> {
    x.astype(DType::F64).to_vec::<f64>().unwrap()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn keys_split_fold_in_and_reproduce() {
    let k = random::key(0);
    assert_eq!(k.to_vec::<i32>().unwrap(), vec![0, 0]);
    // Threefry-2x32-20 of counter (0, 0) under key (0, 0): Random123's known answer
    let ks = random::split(&k, 2);
    assert_eq!(ks.shape(), &[2, 2]);
    let first = ks.index_axis(0, 0).to_vec::<i32>().unwrap();
    assert_eq!(first, vec![0x6b20_0159, 0x99ba_4efe_u32 as i32]);
    assert_ne!(ks.index_axis(0, 1).to_vec::<i32>().unwrap(), first);
    // a seed's two words
    assert_eq!(
        random::key(0x1234_5678_9abc_def0).to_vec::<i32>().unwrap(),
        vec![0x1234_5678, 0x9abc_def0_u32 as i32]
    );
    // the same key gives the same bits; fold_in gives new keys per value
    let a = random::uniform(&k, &[1000], 0.0, 1.0, DType::F64);
    let b = random::uniform(&k, &[1000], 0.0, 1.0, DType::F64);
    assert!(a.array().unwrap().same_values(&b.array().unwrap()));
    let f1 = random::fold_in(&k, &Tensor::scalar(1i32));
    let f2 = random::fold_in(&k, &Tensor::scalar(2i32));
    assert_ne!(f1.to_vec::<i32>().unwrap(), f2.to_vec::<i32>().unwrap());
    // vmap of fold_in over data, and of split over keys: as a loop
    let data = Tensor::from_vec(vec![1i32, 2, 7], &[3]);
    let folded = vmap(|d: Tensor| random::fold_in(&k, &d), &data).unwrap();
    assert_eq!(
        folded.index_axis(0, 1).to_vec::<i32>().unwrap(),
        f2.to_vec::<i32>().unwrap()
    );
    let keys = random::split(&random::key(42), 4);
    let split_all = vmap(|k: Tensor| random::split(&k, 3), &keys).unwrap();
    assert_eq!(split_all.shape(), &[4, 3, 2]);
    for i in 0..4 {
        let one = random::split(&keys.index_axis(0, i), 3);
        assert_eq!(
            split_all.index_axis(0, i).to_vec::<i32>().unwrap(),
            one.to_vec::<i32>().unwrap()
        );
    }
}

#[test]
fn draws_inside_jit_are_traced_not_frozen() {
    let draw = jit(|k: Tensor| random::normal(&k, &[5], DType::F64));
    let (k1, k2) = (random::key(1), random::key(2));
    let j1 = draw.call(&k1).unwrap();
    let j2 = draw.call(&k2).unwrap();
    assert_ne!(f64s(&j1), f64s(&j2));
    // one compiled program for both keys, and the eager draw bit for bit
    assert_eq!(draw.cache_size(), 1);
    let eager = random::normal(&k1, &[5], DType::F64);
    assert!(j1.array().unwrap().same_values(&eager.array().unwrap()));
    // the program holds the generator, not the numbers
    let p = draw.program(&k1).unwrap().to_string();
    assert!(p.contains("threefry2x32"), "{p}");
}

/// A key carried through `scan` (split at every step) and folded in with `fori_loop`'s
/// traced index: the same draws as the loop written out in Rust.
#[test]
fn keys_in_loops() {
    let k0 = random::key(21);
    let steps = Tensor::zeros(&[4], DType::F64);
    let (_, draws): (Tensor, Tensor) = scan(
        |k: Tensor, _x: Tensor| {
            let ks = random::split(&k, 2);
            let (next, sub) = (ks.index_axis(0, 0), ks.index_axis(0, 1));
            (next, random::uniform(&sub, &[], 0.0, 1.0, DType::F64))
        },
        &k0,
        &steps,
    )
    .unwrap();
    let mut k = k0.clone();
    let mut want = vec![];
    for _ in 0..4 {
        let ks = random::split(&k, 2);
        want.push(
            random::uniform(&ks.index_axis(0, 1), &[], 0.0, 1.0, DType::F64)
                .item()
                .unwrap(),
        );
        k = ks.index_axis(0, 0);
    }
    assert_eq!(f64s(&draws), want);
    let total: Tensor = fori_loop(
        0,
        3,
        |i: Tensor, acc: Tensor| &acc + random::normal(&random::fold_in(&k0, &i), &[2], DType::F64),
        &Tensor::zeros(&[2], DType::F64),
    )
    .unwrap();
    let mut sum = vec![0.0, 0.0];
    for i in 0..3 {
        let z = f64s(&random::normal(
            &random::fold_in(&k0, &Tensor::scalar(i)),
            &[2],
            DType::F64,
        ));
        sum[0] += z[0];
        sum[1] += z[1];
    }
    assert_eq!(f64s(&total), sum);
}

#[test]
fn samplers_have_their_distributions() {
    let n = 200_000;
    let k = random::key(7);
    let u = f64s(&random::uniform(&k, &[n], 0.0, 1.0, DType::F64));
    assert!(u.iter().all(|&x| (0.0..1.0).contains(&x)));
    let se = (1.0 / 12.0 / n as f64).sqrt();
    assert!((mean(&u) - 0.5).abs() < 5.0 * se, "{}", mean(&u));
    let u32s = random::uniform(&k, &[n], -2.0, 2.0, DType::F32);
    assert_eq!(u32s.dtype(), Some(DType::F32));
    let v = f64s(&u32s);
    assert!(v.iter().all(|&x| (-2.0..2.0).contains(&x)));
    assert!(mean(&v).abs() < 5.0 * 4.0 * se);
    let z = f64s(&random::normal(&random::key(8), &[n], DType::F64));
    let m = mean(&z);
    let var = z.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n as f64;
    assert!(m.abs() < 5.0 / (n as f64).sqrt(), "{m}");
    assert!((var - 1.0).abs() < 5.0 * (2.0 / n as f64).sqrt(), "{var}");
    // a tail: about 4.55% beyond two standard deviations
    let tail = z.iter().filter(|x| x.abs() > 2.0).count() as f64 / n as f64;
    assert!(
        (tail - 0.0455).abs() < 5.0 * (0.0455 * 0.9545 / n as f64).sqrt(),
        "{tail}"
    );
    let b = random::bernoulli(&random::key(9), 0.3, &[n])
        .to_vec::<bool>()
        .unwrap();
    let frac = b.iter().filter(|&&x| x).count() as f64 / n as f64;
    assert!(
        (frac - 0.3).abs() < 5.0 * (0.21 / n as f64).sqrt(),
        "{frac}"
    );
    // categorical: frequencies follow the softmax of the logits
    let logits = Tensor::from_vec(vec![0.0f64, 1.0, 2.0], &[3]);
    let rows = logits.reshape(&[1, 3]).broadcast_to(&[n, 3]);
    let c = random::categorical(&random::key(10), &rows, -1)
        .to_vec::<i64>()
        .unwrap();
    let z: f64 = (0..3).map(|i| (i as f64).exp()).sum();
    for class in 0..3 {
        let p = (class as f64).exp() / z;
        let f = c.iter().filter(|&&x| x == class).count() as f64 / n as f64;
        assert!(
            (f - p).abs() < 5.0 * (p * (1.0 - p) / n as f64).sqrt(),
            "{class}: {f} vs {p}"
        );
    }
    // randint: every value in range, each of 7 about equally often, both i32 and i64
    let r = random::randint(&random::key(13), &[n], -3, 4, DType::I32)
        .to_vec::<i32>()
        .unwrap();
    assert!(r.iter().all(|v| (-3..4).contains(v)));
    for v in -3..4 {
        let f = r.iter().filter(|&&x| x == v).count() as f64 / n as f64;
        let p = 1.0 / 7.0;
        assert!(
            (f - p).abs() < 5.0 * (p * (1.0 - p) / n as f64).sqrt(),
            "{v}: {f}"
        );
    }
    // all of i64: both halves, in range
    let big = random::randint(&random::key(14), &[1000], i64::MIN, i64::MAX, DType::I64)
        .to_vec::<i64>()
        .unwrap();
    let negative = big.iter().filter(|&&v| v < 0).count();
    assert!(
        (400..600).contains(&negative),
        "{negative} of 1000 below zero"
    );
    assert!(big.iter().all(|&v| v < i64::MAX));
    // exponential: mean 1, variance 1; laplace: mean 0, variance 2
    let e = f64s(&random::exponential(&random::key(15), &[n], DType::F64));
    assert!(e.iter().all(|&x| x >= 0.0));
    assert!(
        (mean(&e) - 1.0).abs() < 5.0 / (n as f64).sqrt(),
        "{}",
        mean(&e)
    );
    let l = f64s(&random::laplace(&random::key(16), &[n], DType::F64));
    let var = l.iter().map(|x| x * x).sum::<f64>() / n as f64;
    assert!(
        mean(&l).abs() < 5.0 * (2.0 / n as f64).sqrt()
            && (var - 2.0).abs() < 5.0 * (20.0 / n as f64).sqrt(),
        "{var}"
    );
    // permutation and shuffle
    let mut perm = random::permutation(&random::key(11), 50)
        .to_vec::<i64>()
        .unwrap();
    assert_ne!(perm, (0..50).collect::<Vec<i64>>());
    perm.sort();
    assert_eq!(perm, (0..50).collect::<Vec<i64>>());
    let x = Tensor::from_vec((0..12).map(f64::from).collect(), &[6, 2]);
    let s = random::shuffle(&random::key(12), &x, 0);
    let mut rows: Vec<(f64, f64)> = f64s(&s).chunks(2).map(|r| (r[0], r[1])).collect();
    rows.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(
        rows,
        (0..6)
            .map(|i| (2.0 * i as f64, 2.0 * i as f64 + 1.0))
            .collect::<Vec<_>>()
    );
}

/// Dropout: keep each unit with probability `1 - rate`, scaled by `1 / (1 - rate)`.
fn dropout(x: &Tensor, key: &Tensor, rate: f64) -> Tensor {
    let keep = random::bernoulli(key, 1.0 - rate, x.shape());
    Tensor::where_(&keep, x / (1.0 - rate), 0.0)
}

#[test]
fn dropout_under_jit_with_its_gradient() {
    let x = Tensor::new(Array::from_vec((1..=1000).map(f64::from).collect(), &[1000]).unwrap());
    let layer = jit(|(x, k): (Tensor, Tensor)| dropout(&x, &k, 0.25));
    let (k1, k2) = (random::key(3), random::key(4));
    let y1 = f64s(&layer.call(&(x.clone(), k1.clone())).unwrap());
    let y2 = f64s(&layer.call(&(x.clone(), k2.clone())).unwrap());
    assert_ne!(y1, y2);
    assert_eq!(y1, f64s(&dropout(&x, &k1, 0.25)));
    let kept: Vec<usize> = (0..1000).filter(|&i| y1[i] != 0.0).collect();
    for &i in &kept {
        assert_eq!(y1[i], (i + 1) as f64 / 0.75);
    }
    let frac = kept.len() as f64 / 1000.0;
    assert!(
        (frac - 0.75).abs() < 5.0 * (0.75 * 0.25 / 1000.0f64).sqrt(),
        "{frac}"
    );
    // the gradient is the mask, scaled
    let g = f64s(&grad(|x: Tensor| dropout(&x, &k1, 0.25).sum_all(), &x).unwrap());
    for (i, gi) in g.iter().enumerate() {
        let want = if kept.contains(&i) { 1.0 / 0.75 } else { 0.0 };
        assert_eq!(*gi, want);
    }
}

#[test]
fn bad_keys_are_errors() {
    let msg = |t: Tensor| t.error().expect("an error").to_string();
    let f = Tensor::from_vec(vec![0.0f64, 1.0], &[2]);
    assert!(msg(random::uniform(&f, &[3], 0.0, 1.0, DType::F64)).contains("a PRNG key is i32[2]"));
    let three = Tensor::from_vec(vec![0i32, 1, 2], &[3]);
    assert!(msg(random::split(&three, 2)).contains("got i32[3]"));
    assert!(msg(random::fold_in(&random::key(0), &Tensor::scalar(1.5)))
        .contains("folds in an i32 scalar"));
    assert!(
        msg(random::uniform(&random::key(0), &[2], 0.0, 1.0, DType::I32)).contains("draws floats")
    );
    assert!(msg(random::normal(&random::key(0), &[2], DType::Bool)).contains("draws floats"));
    assert!(
        msg(random::randint(&random::key(0), &[2], 3, 3, DType::I32)).contains("nonempty range")
    );
    assert!(msg(random::randint(&random::key(0), &[2], 0, 3, DType::F64)).contains("i32 or i64"));
    assert!(msg(random::randint(
        &random::key(0),
        &[2],
        0,
        1 << 40,
        DType::I32
    ))
    .contains("i32 or i64"));
}
