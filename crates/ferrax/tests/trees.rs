//! Trees (issue 15, item 3): `Option`, `BTreeMap`, `HashMap` (values in sorted key order,
//! keys in the structure), tuples up to twelve, and the utilities `tree_map`,
//! `tree_zip_with`, `tree_leaves`, `tree_structure`, through a gradient and `jit`.

use std::collections::{BTreeMap, HashMap};

use ferrax::{
    flatten, grad, jit, tree_leaves, tree_map, tree_structure, tree_zip_with, unflatten, Tensor,
};

fn s(v: f64) -> Tensor {
    Tensor::scalar(v)
}

fn val(t: &Tensor) -> f64 {
    t.item().unwrap()
}

#[test]
fn maps_options_and_long_tuples_are_trees() {
    let mut params: HashMap<String, Tensor> = HashMap::new();
    params.insert("w".into(), s(2.0));
    params.insert("b".into(), s(-1.0));
    // leaves in key order: b, w
    assert_eq!(
        tree_leaves(&params).iter().map(val).collect::<Vec<_>>(),
        vec![-1.0, 2.0]
    );
    let g = grad(
        |p: HashMap<String, Tensor>| &p["w"] * &p["w"] * 3.0 + &p["b"],
        &params,
    )
    .unwrap();
    assert_eq!((val(&g["w"]), val(&g["b"])), (12.0, 1.0));
    let b: BTreeMap<u32, Option<Tensor>> = [(1, Some(s(1.0))), (0, None)].into_iter().collect();
    let (leaves, def) = flatten(&b);
    assert_eq!(leaves.len(), 1);
    let back: BTreeMap<u32, Option<Tensor>> = unflatten(&def, leaves).unwrap();
    assert!(back[&0].is_none() && val(back[&1].as_ref().unwrap()) == 1.0);
    // different keys: different structures (jit compiles each)
    let mut other = b.clone();
    other.insert(2, None);
    assert_ne!(tree_structure(&b), tree_structure(&other));
    let f = jit(|m: BTreeMap<u32, Option<Tensor>>| {
        tree_leaves(&m).into_iter().fold(s(0.0), |a, x| a + x)
    });
    f.call(&b).unwrap();
    f.call(&other).unwrap();
    assert_eq!(f.cache_size(), 2);
    // twelve
    let t12 = (
        s(1.0),
        s(2.0),
        s(3.0),
        s(4.0),
        s(5.0),
        s(6.0),
        s(7.0),
        s(8.0),
        s(9.0),
        s(10.0),
        s(11.0),
        s(12.0),
    );
    let doubled = tree_map(&t12, |x| x * 2.0).unwrap();
    assert_eq!(val(&doubled.11), 24.0);
    let summed = tree_zip_with(&t12, &doubled, |a, b| a + b).unwrap();
    assert_eq!(val(&summed.0), 3.0);
    // mismatched structures are an error naming both
    let a: Vec<Tensor> = vec![s(1.0)];
    let c: Vec<Tensor> = vec![s(1.0), s(2.0)];
    let e = tree_zip_with(&a, &c, |x, y| x + y).unwrap_err().to_string();
    assert!(e.contains("differ in structure"), "{e}");
    let bad: ferrax::Result<HashMap<String, Tensor>> = unflatten(&tree_structure(&b), vec![s(1.0)]);
    assert!(bad.is_err());
    // ravel_tree: mixed dtypes refused; Unravel refuses a vector of another length or dtype
    let mixed = (s(1.0), Tensor::from_vec(vec![1i32], &[1]));
    let e = ferrax::ravel_tree(&mixed).unwrap_err().to_string();
    assert!(e.contains("one float dtype") && e.contains("leaf 1"), "{e}");
    let (flat, back) = ferrax::ravel_tree(&(s(1.0), s(2.0))).unwrap();
    assert_eq!(back.len(), 2);
    let e = back
        .apply(&Tensor::from_vec(vec![1.0f64; 3], &[3]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("needs a f64[2] vector"), "{e}");
    assert!(back.apply(&flat.astype(ferrax::DType::F32)).is_err());
}
