//! Trees of tensors: the inputs and outputs of transformed functions (JAX's pytrees).
//!
//! Sits at the API boundary of every transformation: a function's argument and result are
//! flattened into a list of tensor leaves plus a [`TreeDef`] describing their structure;
//! transformations work on the flat lists and rebuild the user's types at the end.
//! Implemented for `Tensor`, `()`, tuples of up to twelve trees, `Vec<T>`, `[T; N]`,
//! `Option<T>`, `BTreeMap` and `HashMap` (values in sorted key order), and, through
//! `#[derive(Tree)]` (the `ferrax-derive` crate), for the user's structs and enums.
//!
//! A structure may carry static data that rebuilding needs but transformations never touch
//! (a map's keys, a struct's `#[tree(static)]` fields): [`StaticData`], compared and hashed
//! by its `Debug` text, so two calls with different static values are different structures
//! (and `jit` traces each once), as JAX's auxiliary data is.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use crate::ir::{Error, Result};
use crate::trace::tensor::Tensor;

/// The structure of a tree, without its leaves.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TreeDef {
    /// A leaf: one tensor.
    Leaf,
    /// A tuple, `Vec`, array, `Option` or user type (`kind`) with its children's structures.
    Node {
        /// The node's kind: `"tuple"`, `"vec"`, `"array"`, `"some"`, `"none"`, or a user
        /// type's name (`"Type"`, `"Type::Variant"`).
        kind: &'static str,
        /// The structures of the children, in order.
        children: Vec<TreeDef>,
    },
    /// A node that also carries static data to rebuild it: a map's keys, a struct's static
    /// fields.
    Static {
        /// The node's kind: `"btree_map"`, `"hash_map"`, or a user type's name.
        kind: &'static str,
        /// The data needed to rebuild the node.
        data: StaticData,
        /// The structures of the children, in order.
        children: Vec<TreeDef>,
    },
}

impl TreeDef {
    /// The number of leaves.
    pub fn num_leaves(&self) -> usize {
        match self {
            TreeDef::Leaf => 1,
            TreeDef::Node { children, .. } | TreeDef::Static { children, .. } => {
                children.iter().map(TreeDef::num_leaves).sum()
            }
        }
    }

    /// The children of a node of this kind (and data), or an error naming what was found.
    pub fn children_of(&self, kind: &str) -> Result<&[TreeDef]> {
        match self {
            TreeDef::Node { kind: k, children }
            | TreeDef::Static {
                kind: k, children, ..
            } if *k == kind => Ok(children),
            other => Err(tree_err(format!("expected a {kind}, found {other:?}"))),
        }
    }

    /// The static data of a node of this kind, as the type it was stored as.
    pub fn static_data<T: Any + Clone>(&self, kind: &str) -> Result<T> {
        match self {
            TreeDef::Static { kind: k, data, .. } if *k == kind => data
                .value
                .downcast_ref::<T>()
                .cloned()
                .ok_or_else(|| tree_err(format!("the static data of {kind} has another type"))),
            other => Err(tree_err(format!(
                "expected a {kind} with static data, found {other:?}"
            ))),
        }
    }
}

/// Static data in a [`TreeDef`]: a value and its `Debug` text, by which it is compared and
/// hashed.
#[derive(Clone)]
pub struct StaticData {
    text: String,
    value: Arc<dyn Any + Send + Sync>,
}

impl StaticData {
    /// Static data holding `value`, compared and hashed by its `Debug` text.
    pub fn new<T: Any + Send + Sync + fmt::Debug>(value: T) -> StaticData {
        StaticData {
            text: format!("{value:?}"),
            value: Arc::new(value),
        }
    }
}

impl fmt::Debug for StaticData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for StaticData {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text && (*self.value).type_id() == (*other.value).type_id()
    }
}

impl Eq for StaticData {}

impl Hash for StaticData {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

/// A value made of tensors that transformations can take apart and rebuild.
pub trait Tree: Sized {
    /// Appends the leaves in order and returns the structure.
    fn flatten_into(&self, leaves: &mut Vec<Tensor>) -> TreeDef;
    /// Rebuilds a value of this type from a structure and the leaves, in order.
    fn unflatten_from(def: &TreeDef, leaves: &mut dyn Iterator<Item = Tensor>) -> Result<Self>;
}

/// Leaves and structure of a tree.
///
/// ```
/// use ferrax::{flatten, unflatten, Tensor};
/// let t = (Tensor::scalar(1.0f64), vec![Tensor::scalar(2.0f64), Tensor::scalar(3.0f64)]);
/// let (leaves, def) = flatten(&t);
/// assert_eq!(leaves.len(), 3);
/// let back: (Tensor, Vec<Tensor>) = unflatten(&def, leaves).unwrap();
/// assert_eq!(back.1[1].item().unwrap(), 3.0);
/// ```
pub fn flatten<T: Tree>(t: &T) -> (Vec<Tensor>, TreeDef) {
    let mut leaves = Vec::new();
    let def = t.flatten_into(&mut leaves);
    (leaves, def)
}

/// Rebuilds a tree from its structure and exactly its leaves.
pub fn unflatten<T: Tree>(def: &TreeDef, leaves: Vec<Tensor>) -> Result<T> {
    let n = leaves.len();
    if n != def.num_leaves() {
        return Err(tree_err(format!(
            "the structure has {} leaves, {n} given",
            def.num_leaves()
        )));
    }
    let mut it = leaves.into_iter();
    T::unflatten_from(def, &mut it)
}

fn tree_err(msg: String) -> Error {
    Error::tree("unflatten", msg)
}

impl Tree for Tensor {
    fn flatten_into(&self, leaves: &mut Vec<Tensor>) -> TreeDef {
        leaves.push(self.clone());
        TreeDef::Leaf
    }
    fn unflatten_from(def: &TreeDef, leaves: &mut dyn Iterator<Item = Tensor>) -> Result<Self> {
        match def {
            TreeDef::Leaf => leaves
                .next()
                .ok_or_else(|| tree_err("ran out of leaves".into())),
            other => Err(tree_err(format!("expected a tensor, found {other:?}"))),
        }
    }
}

fn node_children<'a>(def: &'a TreeDef, kind: &str, len: Option<usize>) -> Result<&'a [TreeDef]> {
    match def {
        TreeDef::Node { kind: k, children }
        | TreeDef::Static {
            kind: k, children, ..
        } if *k == kind && len.is_none_or(|n| n == children.len()) => Ok(children),
        other => Err(tree_err(format!(
            "expected a {kind}{}, found {other:?}",
            len.map(|n| format!(" of {n}")).unwrap_or_default()
        ))),
    }
}

impl Tree for () {
    fn flatten_into(&self, _: &mut Vec<Tensor>) -> TreeDef {
        TreeDef::Node {
            kind: "tuple",
            children: vec![],
        }
    }
    fn unflatten_from(def: &TreeDef, _: &mut dyn Iterator<Item = Tensor>) -> Result<Self> {
        node_children(def, "tuple", Some(0)).map(|_| ())
    }
}

macro_rules! tuple_tree {
    ($n:expr; $($t:ident $i:tt),+) => {
        impl<$($t: Tree),+> Tree for ($($t,)+) {
            fn flatten_into(&self, leaves: &mut Vec<Tensor>) -> TreeDef {
                TreeDef::Node { kind: "tuple", children: vec![$(self.$i.flatten_into(leaves)),+] }
            }
            fn unflatten_from(def: &TreeDef, leaves: &mut dyn Iterator<Item = Tensor>) -> Result<Self> {
                let c = node_children(def, "tuple", Some($n))?;
                Ok(($($t::unflatten_from(&c[$i], leaves)?,)+))
            }
        }
    };
}
tuple_tree!(1; A 0);
tuple_tree!(2; A 0, B 1);
tuple_tree!(3; A 0, B 1, C 2);
tuple_tree!(4; A 0, B 1, C 2, D 3);
tuple_tree!(5; A 0, B 1, C 2, D 3, E 4);
tuple_tree!(6; A 0, B 1, C 2, D 3, E 4, F 5);
tuple_tree!(7; A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_tree!(8; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
tuple_tree!(9; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);
tuple_tree!(10; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9);
tuple_tree!(11; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10);
tuple_tree!(12; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11);

impl<T: Tree> Tree for Option<T> {
    fn flatten_into(&self, leaves: &mut Vec<Tensor>) -> TreeDef {
        match self {
            None => TreeDef::Node {
                kind: "none",
                children: vec![],
            },
            Some(x) => TreeDef::Node {
                kind: "some",
                children: vec![x.flatten_into(leaves)],
            },
        }
    }
    fn unflatten_from(def: &TreeDef, leaves: &mut dyn Iterator<Item = Tensor>) -> Result<Self> {
        match def {
            TreeDef::Node { kind: "none", .. } => Ok(None),
            other => {
                let c = node_children(other, "some", Some(1))?;
                Ok(Some(T::unflatten_from(&c[0], leaves)?))
            }
        }
    }
}

/// Keys a map can hold in a tree's structure.
pub trait TreeKey: Ord + Clone + fmt::Debug + Send + Sync + 'static {}
impl<K: Ord + Clone + fmt::Debug + Send + Sync + 'static> TreeKey for K {}

fn map_flatten<'a, K: TreeKey, V: Tree + 'a>(
    kind: &'static str,
    entries: impl Iterator<Item = (&'a K, &'a V)>,
    leaves: &mut Vec<Tensor>,
) -> TreeDef {
    let mut entries: Vec<(&K, &V)> = entries.collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let keys: Vec<K> = entries.iter().map(|(k, _)| (*k).clone()).collect();
    TreeDef::Static {
        kind,
        data: StaticData::new(keys),
        children: entries
            .iter()
            .map(|(_, v)| v.flatten_into(leaves))
            .collect(),
    }
}

fn map_unflatten<K: TreeKey, V: Tree>(
    kind: &'static str,
    def: &TreeDef,
    leaves: &mut dyn Iterator<Item = Tensor>,
) -> Result<Vec<(K, V)>> {
    let keys: Vec<K> = def.static_data(kind)?;
    let children = def.children_of(kind)?;
    if keys.len() != children.len() {
        return Err(tree_err(format!(
            "a {kind} of {} keys and {} values",
            keys.len(),
            children.len()
        )));
    }
    keys.into_iter()
        .zip(children)
        .map(|(k, c)| Ok((k, V::unflatten_from(c, leaves)?)))
        .collect()
}

impl<K: TreeKey, V: Tree> Tree for BTreeMap<K, V> {
    fn flatten_into(&self, leaves: &mut Vec<Tensor>) -> TreeDef {
        map_flatten("btree_map", self.iter(), leaves)
    }
    fn unflatten_from(def: &TreeDef, leaves: &mut dyn Iterator<Item = Tensor>) -> Result<Self> {
        Ok(map_unflatten("btree_map", def, leaves)?
            .into_iter()
            .collect())
    }
}

/// Values in sorted key order, so the leaves' order does not depend on hashing.
impl<K: TreeKey + Hash, V: Tree> Tree for HashMap<K, V> {
    fn flatten_into(&self, leaves: &mut Vec<Tensor>) -> TreeDef {
        map_flatten("hash_map", self.iter(), leaves)
    }
    fn unflatten_from(def: &TreeDef, leaves: &mut dyn Iterator<Item = Tensor>) -> Result<Self> {
        Ok(map_unflatten("hash_map", def, leaves)?
            .into_iter()
            .collect())
    }
}

/// The leaves of a tree, in order (`jax.tree_util.tree_leaves`).
pub fn tree_leaves<T: Tree>(t: &T) -> Vec<Tensor> {
    flatten(t).0
}

/// The structure of a tree (`jax.tree_util.tree_structure`).
pub fn tree_structure<T: Tree>(t: &T) -> TreeDef {
    flatten(t).1
}

/// `f` applied to every leaf, the structure kept (`jax.tree_util.tree_map`).
pub fn tree_map<T: Tree>(t: &T, f: impl FnMut(&Tensor) -> Tensor) -> Result<T> {
    let (leaves, def) = flatten(t);
    unflatten(&def, leaves.iter().map(f).collect())
}

/// `f` applied to the leaves of two trees of the same structure, pairwise
/// (`tree_map(f, a, b)` in JAX): an error naming both structures when they differ.
pub fn tree_zip_with<T: Tree>(
    a: &T,
    b: &T,
    mut f: impl FnMut(&Tensor, &Tensor) -> Tensor,
) -> Result<T> {
    let (la, da) = flatten(a);
    let (lb, db) = flatten(b);
    if da != db {
        return Err(Error::tree(
            "tree_zip_with",
            format!("the trees differ in structure: {da:?} and {db:?}"),
        ));
    }
    unflatten(&da, la.iter().zip(&lb).map(|(x, y)| f(x, y)).collect())
}

impl<T: Tree> Tree for Vec<T> {
    fn flatten_into(&self, leaves: &mut Vec<Tensor>) -> TreeDef {
        TreeDef::Node {
            kind: "vec",
            children: self.iter().map(|x| x.flatten_into(leaves)).collect(),
        }
    }
    fn unflatten_from(def: &TreeDef, leaves: &mut dyn Iterator<Item = Tensor>) -> Result<Self> {
        node_children(def, "vec", None)?
            .iter()
            .map(|c| T::unflatten_from(c, leaves))
            .collect()
    }
}

impl<T: Tree, const N: usize> Tree for [T; N] {
    fn flatten_into(&self, leaves: &mut Vec<Tensor>) -> TreeDef {
        TreeDef::Node {
            kind: "array",
            children: self.iter().map(|x| x.flatten_into(leaves)).collect(),
        }
    }
    fn unflatten_from(def: &TreeDef, leaves: &mut dyn Iterator<Item = Tensor>) -> Result<Self> {
        let v = node_children(def, "array", Some(N))?
            .iter()
            .map(|c| T::unflatten_from(c, leaves))
            .collect::<Result<Vec<T>>>()?;
        v.try_into()
            .map_err(|_| tree_err(format!("expected {N} elements")))
    }
}
