//! Trees of tensors: the inputs and outputs of transformed functions (JAX's pytrees).
//!
//! Sits at the API boundary of every transformation: a function's argument and result are
//! flattened into a list of tensor leaves plus a [`TreeDef`] describing their structure;
//! transformations work on the flat lists and rebuild the user's types at the end.
//! Implemented for `Tensor`, `()`, tuples of up to four trees, `Vec<T>` and `[T; N]`.

use crate::ir::{Error, Result};
use crate::trace::tensor::Tensor;

/// The structure of a tree, without its leaves.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TreeDef {
    Leaf,
    /// A tuple, `Vec` or array (`kind`) with its children's structures.
    Node {
        kind: &'static str,
        children: Vec<TreeDef>,
    },
}

impl TreeDef {
    /// The number of leaves.
    pub fn num_leaves(&self) -> usize {
        match self {
            TreeDef::Leaf => 1,
            TreeDef::Node { children, .. } => children.iter().map(TreeDef::num_leaves).sum(),
        }
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
            if *k == kind && len.is_none_or(|n| n == children.len()) =>
        {
            Ok(children)
        }
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
