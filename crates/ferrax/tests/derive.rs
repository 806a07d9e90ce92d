//! `#[derive(Tree)]` (the `ferrax-derive` crate, re-exported as `ferrax::Tree`): named,
//! tuple and unit structs, enums with unit, tuple and named variants, generic structs and
//! `#[tree(static)]` fields. Round trips through `flatten` / `unflatten` keep values and
//! structures; the structure the derive builds is the documented one; `grad` of a loss over
//! an MLP returns an MLP of the hand-derived gradients; static fields survive unflattening
//! and are part of the structure (so `jit` traces once per static value); a mismatched
//! structure is an error naming the type.

use ferrax::{
    flatten, grad, jit, tree_structure, unflatten, Error, StaticData, Tensor, Tree, TreeDef,
};

#[derive(Debug, Clone, Tree)]
struct Layer {
    w: Tensor,
    b: Tensor,
}

#[derive(Debug, Clone, Tree)]
struct Mlp {
    layers: Vec<Layer>,
    #[tree(static)]
    activation: String,
}

/// A tuple struct with a static field between two children.
#[derive(Debug, Clone, Tree)]
struct Wrapped(Tensor, #[tree(static)] usize, Vec<Tensor>);

#[derive(Debug, Clone, PartialEq, Tree)]
struct Nothing;

#[derive(Debug, Clone, Tree)]
enum Param {
    Fixed,
    Scalar(Tensor),
    Affine {
        scale: Tensor,
        #[tree(static)]
        name: &'static str,
        shift: Tensor,
    },
}

#[derive(Debug, Clone, Tree)]
struct Pair<T> {
    a: T,
    b: T,
}

/// A type parameter only in a static field: no `Tree` bound on `K`, only the static-data
/// bounds.
#[derive(Debug, Clone, Tree)]
struct Tagged<T, K> {
    value: T,
    #[tree(static)]
    tag: K,
    #[tree(static)]
    count: u32,
}

/// A lifetime in a static field: the impl holds for `'a: 'static`.
#[derive(Debug, Clone, Tree)]
struct Named<'a> {
    x: Tensor,
    #[tree(static)]
    name: &'a str,
}

/// A const parameter and a where clause, kept.
#[derive(Debug, Clone, Tree)]
struct Stack<T, const N: usize>
where
    T: Clone,
{
    xs: [T; N],
}

/// No variants: nothing to flatten, nothing unflattens to it.
#[derive(Debug, Tree)]
enum Never {}

/// Types declared by a `macro_rules!` macro: the generated code's local names must still
/// resolve when the field types carry the macro's hygiene.
macro_rules! declare {
    ($name:ident { $($field:ident),* } $static_name:ident) => {
        #[derive(Debug, Clone, Tree)]
        struct $name {
            $($field: Tensor,)*
            #[tree(static)]
            $static_name: Vec<usize>,
        }
    };
}
declare!(Declared { p, q } sizes);

fn t(v: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape)
}

fn f64s(x: &Tensor) -> Vec<f64> {
    x.to_vec::<f64>().unwrap()
}

/// The leaves' shapes and values, for comparing trees.
fn leaves_of<T: Tree>(x: &T) -> Vec<(Vec<usize>, Vec<f64>)> {
    flatten(x)
        .0
        .iter()
        .map(|l| (l.shape().to_vec(), f64s(l)))
        .collect()
}

/// Flattens, unflattens and checks that the same leaves and structure come back.
fn round_trip<T: Tree>(x: &T) -> T {
    let (leaves, def) = flatten(x);
    let back: T = unflatten(&def, leaves).unwrap();
    assert_eq!(tree_structure(&back), def);
    assert_eq!(leaves_of(&back), leaves_of(x));
    back
}

fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= tol * x.abs().max(y.abs()).max(1.0))
}

fn mlp(activation: &str) -> Mlp {
    Mlp {
        layers: vec![
            Layer {
                w: t(&[0.5, -1.0, 0.25, 2.0, -0.75, 1.5], &[3, 2]),
                b: t(&[0.1, -0.2], &[2]),
            },
            Layer {
                w: t(&[1.25, -0.5], &[2, 1]),
                b: t(&[0.3], &[1]),
            },
        ],
        activation: activation.to_string(),
    }
}

fn inputs() -> Tensor {
    t(&[1.0, 2.0, -1.0, 0.5, -0.5, 3.0], &[2, 3])
}

/// `x·w + b` through the layers, the activation between them.
fn forward(p: &Mlp, x: &Tensor) -> Tensor {
    let mut h = x.clone();
    for (i, l) in p.layers.iter().enumerate() {
        h = h.matmul(&l.w) + &l.b;
        if i + 1 < p.layers.len() {
            h = match p.activation.as_str() {
                "linear" => h,
                "tanh" => h.tanh(),
                other => panic!("unknown activation {other}"),
            };
        }
    }
    h
}

fn loss(p: &Mlp, x: &Tensor) -> Tensor {
    let y = forward(p, x);
    (&y * &y).sum_all()
}

/// `a (n×k) · b (k×m)`, row-major.
fn mm(a: &[f64], b: &[f64], n: usize, k: usize, m: usize) -> Vec<f64> {
    (0..n * m)
        .map(|ij| (0..k).map(|l| a[ij / m * k + l] * b[l * m + ij % m]).sum())
        .collect()
}

fn transpose(a: &[f64], n: usize, m: usize) -> Vec<f64> {
    (0..n * m).map(|ji| a[ji % n * m + ji / n]).collect()
}

/// The gradient of `sum(forward(p, x)²)` by hand: forward storing each layer's input and
/// pre-activation, then backward through `z = a·w + b` (`dw = aᵀ·dz`, `db = Σ_rows dz`,
/// `da = dz·wᵀ`) and the activation (`tanh' = 1 - tanh²`); one `(dw, db)` per layer.
fn hand_gradient(p: &Mlp, x: &Tensor) -> Vec<(Vec<f64>, Vec<f64>)> {
    let n = x.shape()[0];
    let mut a = f64s(x);
    let mut saved = Vec::new(); // (input, its width, pre-activation, output width)
    for (i, l) in p.layers.iter().enumerate() {
        let (k, m) = (l.w.shape()[0], l.w.shape()[1]);
        let b = f64s(&l.b);
        let mut z = mm(&a, &f64s(&l.w), n, k, m);
        z.iter_mut().enumerate().for_each(|(ij, v)| *v += b[ij % m]);
        saved.push((a.clone(), k, z.clone(), m));
        let last = i + 1 == p.layers.len();
        a = if last || p.activation == "linear" {
            z
        } else {
            z.iter().map(|v| v.tanh()).collect()
        };
    }
    let mut dz: Vec<f64> = a.iter().map(|y| 2.0 * y).collect();
    let mut grads = vec![(Vec::new(), Vec::new()); p.layers.len()];
    for i in (0..p.layers.len()).rev() {
        let (input, k, _, m) = &saved[i];
        let dw = mm(&transpose(input, n, *k), &dz, *k, n, *m);
        let db = (0..*m)
            .map(|j| (0..n).map(|r| dz[r * m + j]).sum())
            .collect();
        if i > 0 {
            let w_t = transpose(&f64s(&p.layers[i].w), *k, *m);
            let da = mm(&dz, &w_t, n, *m, *k);
            let z_prev = &saved[i - 1].2;
            dz = if p.activation == "linear" {
                da
            } else {
                da.iter()
                    .zip(z_prev)
                    .map(|(d, z)| d * (1.0 - z.tanh().powi(2)))
                    .collect()
            };
        }
        grads[i] = (dw, db);
    }
    grads
}

#[test]
fn nested_structs_round_trip_with_the_documented_structure() {
    let p = mlp("tanh");
    let back = round_trip(&p);
    assert_eq!(back.activation, "tanh");
    // leaves in declaration order: layer 0's w, b, then layer 1's
    let (leaves, def) = flatten(&p);
    assert_eq!(leaves.len(), 4);
    assert_eq!(f64s(&leaves[1]), vec![0.1, -0.2]);
    assert_eq!(f64s(&leaves[3]), vec![0.3]);
    let layer = TreeDef::Node {
        kind: "Layer",
        children: vec![TreeDef::Leaf, TreeDef::Leaf],
    };
    let want = TreeDef::Static {
        kind: "Mlp",
        data: StaticData::new(("tanh".to_string(),)),
        children: vec![TreeDef::Node {
            kind: "vec",
            children: vec![layer.clone(), layer],
        }],
    };
    assert_eq!(def, want);
    assert_eq!(def.static_data::<(String,)>("Mlp").unwrap().0, "tanh");
    assert_eq!(def.num_leaves(), 4);
}

#[test]
fn tuple_unit_and_generic_structs_round_trip() {
    let w = Wrapped(
        t(&[1.0, 2.0], &[2]),
        7,
        vec![t(&[3.0], &[]), t(&[4.0, 5.0], &[1, 2])],
    );
    let back = round_trip(&w);
    assert_eq!(back.1, 7);
    let def = tree_structure(&w);
    assert_eq!(def.static_data::<(usize,)>("Wrapped").unwrap(), (7,));
    assert_eq!(def.children_of("Wrapped").unwrap().len(), 2);

    assert_eq!(round_trip(&Nothing), Nothing);
    assert_eq!(
        tree_structure(&Nothing),
        TreeDef::Node {
            kind: "Nothing",
            children: vec![]
        }
    );

    let pair = Pair {
        a: t(&[1.0], &[1]),
        b: t(&[2.0, 3.0], &[2]),
    };
    round_trip(&pair);
    assert_eq!(
        tree_structure(&pair),
        TreeDef::Node {
            kind: "Pair",
            children: vec![TreeDef::Leaf, TreeDef::Leaf]
        }
    );
    // a generic over a derived type and over a tuple
    let layers = Pair {
        a: mlp("linear").layers[0].clone(),
        b: mlp("linear").layers[1].clone(),
    };
    assert_eq!(round_trip(&layers).b.w.shape(), &[2, 1]);
    let tuples = Pair {
        a: (t(&[1.0], &[1]), ()),
        b: (t(&[2.0], &[1]), ()),
    };
    round_trip(&tuples);

    let tagged = Tagged {
        value: vec![t(&[1.0, 2.0], &[2])],
        tag: ('x', -3i64),
        count: 2,
    };
    let back = round_trip(&tagged);
    assert_eq!((back.tag, back.count), (('x', -3), 2));
}

#[test]
fn lifetimes_const_parameters_and_empty_enums() {
    let named = Named {
        x: t(&[1.0], &[1]),
        name: "first",
    };
    assert_eq!(round_trip(&named).name, "first");
    let stack = Stack {
        xs: [t(&[1.0], &[1]), t(&[2.0], &[1]), t(&[3.0], &[1])],
    };
    let back = round_trip(&stack);
    assert_eq!(f64s(&back.xs[2]), vec![3.0]);
    let declared = Declared {
        p: t(&[1.0], &[1]),
        q: t(&[2.0], &[1]),
        sizes: vec![1, 2],
    };
    assert_eq!(round_trip(&declared).sizes, vec![1, 2]);
    let msg = tree_error(unflatten::<Never>(&tree_structure(&Nothing), vec![]));
    assert!(msg.contains("Never"), "{msg}");
}

#[test]
fn enum_variants_round_trip_and_name_their_kind() {
    let fixed = Param::Fixed;
    let scalar = Param::Scalar(t(&[2.5], &[]));
    let affine = Param::Affine {
        scale: t(&[2.0, 3.0], &[2]),
        name: "gain",
        shift: t(&[-1.0], &[1]),
    };
    assert!(matches!(round_trip(&fixed), Param::Fixed));
    assert!(matches!(round_trip(&scalar), Param::Scalar(x) if f64s(&x) == vec![2.5]));
    match round_trip(&affine) {
        Param::Affine { scale, name, shift } => {
            assert_eq!(
                (f64s(&scale), name, f64s(&shift)),
                (vec![2.0, 3.0], "gain", vec![-1.0])
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        tree_structure(&fixed),
        TreeDef::Node {
            kind: "Param::Fixed",
            children: vec![]
        }
    );
    assert_eq!(
        tree_structure(&scalar),
        TreeDef::Node {
            kind: "Param::Scalar",
            children: vec![TreeDef::Leaf]
        }
    );
    assert_eq!(
        tree_structure(&affine),
        TreeDef::Static {
            kind: "Param::Affine",
            data: StaticData::new(("gain",)),
            children: vec![TreeDef::Leaf, TreeDef::Leaf]
        }
    );
    // a list of variants keeps each one
    let all = vec![fixed, scalar, affine];
    let back = round_trip(&all);
    assert!(matches!(
        back.as_slice(),
        [Param::Fixed, Param::Scalar(_), Param::Affine { .. }]
    ));
}

#[test]
fn grad_over_an_mlp_is_an_mlp_of_the_hand_derived_gradients() {
    let x = inputs();
    for activation in ["linear", "tanh"] {
        let p = mlp(activation);
        let g: Mlp = grad(|p: Mlp| loss(&p, &x), &p).unwrap();
        assert_eq!(g.activation, activation, "the static field comes back");
        assert_eq!(g.layers.len(), 2);
        let want = hand_gradient(&p, &x);
        for (i, (l, (dw, db))) in g.layers.iter().zip(&want).enumerate() {
            assert_eq!(l.w.shape(), p.layers[i].w.shape());
            assert_eq!(l.b.shape(), p.layers[i].b.shape());
            assert!(
                close(&f64s(&l.w), dw, 1e-12),
                "{activation} w{i}: {l:?} vs {dw:?}"
            );
            assert!(
                close(&f64s(&l.b), db, 1e-12),
                "{activation} b{i}: {l:?} vs {db:?}"
            );
        }
    }
    // the one-layer case by hand on paper: loss = Σ (x·w + b)², x = [[1, 2]], w = [[3], [4]],
    // b = [0.5]: r = 11.5, dL/dw = 2r·xᵀ = [23, 46], dL/db = 2r = 23
    let p = Mlp {
        layers: vec![Layer {
            w: t(&[3.0, 4.0], &[2, 1]),
            b: t(&[0.5], &[1]),
        }],
        activation: "linear".into(),
    };
    let x1 = t(&[1.0, 2.0], &[1, 2]);
    let g = grad(|p: Mlp| loss(&p, &x1), &p).unwrap();
    assert_eq!(f64s(&g.layers[0].w), vec![23.0, 46.0]);
    assert_eq!(f64s(&g.layers[0].b), vec![23.0]);
}

#[test]
fn grad_through_enum_and_generic_trees() {
    // d/d(scale, shift) of Σ (scale·v + shift)² at v = [1, 2]
    let v = t(&[1.0, 2.0], &[2]);
    let p = Param::Affine {
        scale: t(&[2.0, 3.0], &[2]),
        name: "gain",
        shift: t(&[0.5], &[1]),
    };
    let g = grad(
        |p: Param| match p {
            Param::Affine { scale, shift, .. } => {
                let y = &scale * &v + &shift;
                (&y * &y).sum_all()
            }
            _ => unreachable!(),
        },
        &p,
    )
    .unwrap();
    // y = [2.5, 6.5]: d/dscale = 2y·v = [5, 26], d/dshift = Σ 2y = 18
    match g {
        Param::Affine { scale, name, shift } => {
            assert_eq!(name, "gain");
            assert_eq!(f64s(&scale), vec![5.0, 26.0]);
            assert_eq!(f64s(&shift), vec![18.0]);
        }
        other => panic!("{other:?}"),
    }
    let pair = Pair {
        a: t(&[1.0, -2.0], &[2]),
        b: t(&[3.0, 0.5], &[2]),
    };
    let g = grad(|p: Pair<Tensor>| (&p.a * &p.b).sum_all(), &pair).unwrap();
    assert_eq!((f64s(&g.a), f64s(&g.b)), (vec![3.0, 0.5], vec![1.0, -2.0]));
}

#[test]
fn a_static_field_is_structure_and_jit_traces_once_per_value() {
    let linear = mlp("linear");
    let tanh = mlp("tanh");
    // same leaves, different static data: different structures
    assert_eq!(leaves_of(&linear), leaves_of(&tanh));
    assert_ne!(tree_structure(&linear), tree_structure(&tanh));
    assert_eq!(tree_structure(&linear), tree_structure(&mlp("linear")));

    let x = inputs();
    let f = jit(|p: Mlp| forward(&p, &x));
    let y1 = f.call(&linear).unwrap();
    assert_eq!(f.cache_size(), 1);
    f.call(&mlp("linear")).unwrap();
    assert_eq!(f.cache_size(), 1, "the same static value reuses the trace");
    let y2 = f.call(&tanh).unwrap();
    assert_eq!(f.cache_size(), 2, "another static value retraces");
    assert!(close(&f64s(&y1), &f64s(&forward(&linear, &x)), 1e-12));
    assert!(close(&f64s(&y2), &f64s(&forward(&tanh, &x)), 1e-12));
    assert_ne!(f64s(&y1), f64s(&y2));

    // and a jitted function returning the tree keeps the static field
    let id = jit(|p: Mlp| p);
    let back = id.call(&tanh).unwrap();
    assert_eq!(back.activation, "tanh");
    assert_eq!(leaves_of(&back), leaves_of(&tanh));
}

fn tree_error(r: Result<impl std::fmt::Debug, Error>) -> String {
    match r {
        Err(e @ Error::Tree { .. }) => e.to_string(),
        other => panic!("expected a tree error, got {other:?}"),
    }
}

#[test]
fn a_mismatched_structure_is_an_error() {
    let p = mlp("linear");
    let (leaves, def) = flatten(&p);

    // another type's structure, same number of leaves
    let pair = Pair {
        a: Layer {
            w: leaves[0].clone(),
            b: leaves[1].clone(),
        },
        b: Layer {
            w: leaves[2].clone(),
            b: leaves[3].clone(),
        },
    };
    let (pair_leaves, pair_def) = flatten(&pair);
    let msg = tree_error(unflatten::<Mlp>(&pair_def, pair_leaves.clone()));
    assert!(msg.contains("Mlp"), "{msg}");
    let msg = tree_error(unflatten::<Pair<Layer>>(&def, leaves.clone()));
    assert!(msg.contains("Pair"), "{msg}");

    // the right kind with the wrong number of children
    let short = TreeDef::Node {
        kind: "Layer",
        children: vec![TreeDef::Leaf],
    };
    let msg = tree_error(unflatten::<Layer>(&short, vec![leaves[0].clone()]));
    assert!(msg.contains("Layer") && msg.contains("2 children"), "{msg}");
    let long = TreeDef::Node {
        kind: "Layer",
        children: vec![TreeDef::Leaf; 3],
    };
    let msg = tree_error(unflatten::<Layer>(&long, leaves[..3].to_vec()));
    assert!(msg.contains("Layer"), "{msg}");

    // static data missing or of another type
    let no_static = TreeDef::Node {
        kind: "Mlp",
        children: def.children_of("Mlp").unwrap().to_vec(),
    };
    tree_error(unflatten::<Mlp>(&no_static, leaves.clone()));
    let other_static = TreeDef::Static {
        kind: "Mlp",
        data: StaticData::new((3usize,)),
        children: def.children_of("Mlp").unwrap().to_vec(),
    };
    let msg = tree_error(unflatten::<Mlp>(&other_static, leaves.clone()));
    assert!(msg.contains("Mlp"), "{msg}");

    // an enum: an unknown variant, a leaf, a variant with a wrong child count
    let unknown = TreeDef::Node {
        kind: "Param::Missing",
        children: vec![],
    };
    let msg = tree_error(unflatten::<Param>(&unknown, vec![]));
    assert!(msg.contains("Param"), "{msg}");
    tree_error(unflatten::<Param>(&TreeDef::Leaf, vec![leaves[0].clone()]));
    let wrong = TreeDef::Node {
        kind: "Param::Scalar",
        children: vec![TreeDef::Leaf, TreeDef::Leaf],
    };
    let msg = tree_error(unflatten::<Param>(&wrong, leaves[..2].to_vec()));
    assert!(msg.contains("Param::Scalar"), "{msg}");

    // a unit struct is not a tensor, nor a tensor a unit struct
    tree_error(unflatten::<Nothing>(
        &TreeDef::Leaf,
        vec![leaves[0].clone()],
    ));
    tree_error(unflatten::<Tensor>(&tree_structure(&Nothing), vec![]));
}
