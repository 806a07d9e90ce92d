//! `einsum`: Einstein summation, lowered to `dot_general`, diagonals, sums and transposes.
//!
//! The subscripts name each operand's axes by letters (`"ij,jk->ik"`); without `->` the
//! output is the letters that appear once, in alphabetical order (numpy's implicit mode).
//! The lowering, left to right as `jnp.einsum` does without an optimizer:
//!
//! 1. a letter repeated inside one operand (`"ii->i"`) takes that diagonal;
//! 2. a letter no other operand and not the output names is summed out at once;
//! 3. operands are folded pairwise with one `dot_general`: letters both share are batch
//!    dimensions if later operands or the output still need them, contracted otherwise;
//! 4. the result's letters are put in the output's order by one transpose.
//!
//! So every einsum differentiates, batches and compiles with those primitives' rules.

use std::collections::BTreeMap;

use crate::ir::{Error, Primitive, Result, SourceLoc};
use crate::trace::{bind, try_t, Tensor};

/// Letters per operand and the output's letters.
fn parse(spec: &str, n: usize) -> Result<(Vec<Vec<char>>, Vec<char>)> {
    let op = "einsum";
    let spec: String = spec.chars().filter(|c| !c.is_whitespace()).collect();
    if spec.contains("...") {
        return Err(Error::input(
            op,
            "ellipses (`...`) are not supported: name every axis",
        ));
    }
    let (ins, out) = match spec.split_once("->") {
        Some((i, o)) => (i.to_string(), Some(o.to_string())),
        None => (spec.clone(), None),
    };
    let ins: Vec<Vec<char>> = ins.split(',').map(|s| s.chars().collect()).collect();
    if ins.len() != n {
        return Err(Error::input(
            op,
            format!(
                "the subscripts `{spec}` name {} operand(s), {n} given",
                ins.len()
            ),
        ));
    }
    let out_chars: Vec<char> = out.iter().flat_map(|o| o.chars()).collect();
    for c in ins.iter().flatten().chain(&out_chars) {
        if !c.is_ascii_alphabetic() {
            return Err(Error::input(
                op,
                format!("`{c}` in `{spec}` is not a letter naming an axis"),
            ));
        }
    }
    let mut count: BTreeMap<char, usize> = BTreeMap::new();
    for c in ins.iter().flatten() {
        *count.entry(*c).or_default() += 1;
    }
    let out: Vec<char> = match out {
        Some(o) => o.chars().collect(),
        None => count
            .iter()
            .filter(|(_, &k)| k == 1)
            .map(|(c, _)| *c)
            .collect(),
    };
    for (i, c) in out.iter().enumerate() {
        if !count.contains_key(c) {
            return Err(Error::input(
                op,
                format!("the output letter `{c}` names no input axis in `{spec}`"),
            ));
        }
        if out[..i].contains(c) {
            return Err(Error::input(
                op,
                format!("the output repeats `{c}` in `{spec}`"),
            ));
        }
    }
    Ok((ins, out))
}

/// One operand with the letters of its axes.
struct Term {
    t: Tensor,
    letters: Vec<char>,
}

impl Term {
    /// Sums out the letters `keep` rejects.
    fn keep_only(self, keep: impl Fn(char) -> bool) -> Term {
        let drop: Vec<isize> = (0..self.letters.len())
            .filter(|&d| !keep(self.letters[d]))
            .map(|d| d as isize)
            .collect();
        if drop.is_empty() {
            return self;
        }
        let letters = self.letters.iter().copied().filter(|&c| keep(c)).collect();
        Term {
            t: self.t.sum(&drop),
            letters,
        }
    }
}

impl Tensor {
    /// Einstein summation over `operands` (`jnp.einsum`): `Tensor::einsum("ij,jk->ik", &[a,
    /// b])` is a matrix product, `"ii->"` a trace, `"bij,bjk->bik"` a batched product,
    /// `"i,j->ij"` an outer product. See the module documentation for the lowering.
    ///
    /// ```
    /// use ferrax::Tensor;
    /// let a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
    /// let t = Tensor::einsum("ii->", &[&a]);
    /// assert_eq!(t.item().unwrap(), 5.0);
    /// ```
    #[track_caller]
    pub fn einsum(spec: &str, operands: &[&Tensor]) -> Tensor {
        let loc = SourceLoc::caller();
        if let Some(e) = operands.iter().find_map(|t| t.error()) {
            return Tensor::failed(e.clone());
        }
        let (ins, out) = try_t!(parse(spec, operands.len()), loc);
        let mut size: BTreeMap<char, usize> = BTreeMap::new();
        for (k, (t, letters)) in operands.iter().zip(&ins).enumerate() {
            if t.ndim() != letters.len() {
                return try_t!(
                    Err(Error::shape(
                        "einsum",
                        format!(
                            "operand {k} has shape {:?} but `{}` names {} axes",
                            t.shape(),
                            letters.iter().collect::<String>(),
                            letters.len()
                        ),
                    )),
                    loc
                );
            }
            for (d, c) in letters.iter().enumerate() {
                let n = t.shape()[d];
                if *size.entry(*c).or_insert(n) != n {
                    return try_t!(
                        Err(Error::shape(
                            "einsum",
                            format!("`{c}` names axes of sizes {} and {n}", size[c]),
                        )),
                        loc
                    );
                }
            }
        }
        let mut terms: Vec<Term> = operands
            .iter()
            .zip(&ins)
            .map(|(t, l)| diagonals((*t).clone(), l.clone()))
            .collect();
        // letters that the output or an operand from `from` on names
        let needed = |terms: &[Term], from: usize, c: char| {
            out.contains(&c) || terms[from..].iter().any(|t| t.letters.contains(&c))
        };
        for k in 0..terms.len() {
            let others: Vec<char> = terms
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != k)
                .flat_map(|(_, t)| t.letters.clone())
                .collect();
            let t = std::mem::replace(
                &mut terms[k],
                Term {
                    t: Tensor::scalar(0.0),
                    letters: vec![],
                },
            );
            terms[k] = t.keep_only(|c| out.contains(&c) || others.contains(&c));
        }
        let mut rest = terms.into_iter();
        let mut acc = rest.next().expect("parse checked the operand count");
        let rest: Vec<Term> = rest.collect();
        for (k, op) in rest.iter().enumerate() {
            let later = |c: char| needed(&rest, k + 1, c);
            let shared: Vec<char> = acc
                .letters
                .iter()
                .copied()
                .filter(|c| op.letters.contains(c))
                .collect();
            let (batch, contract): (Vec<char>, Vec<char>) = shared.iter().partition(|&&c| later(c));
            let pos = |letters: &[char], cs: &[char]| -> Vec<usize> {
                cs.iter()
                    .map(|c| letters.iter().position(|l| l == c).expect("shared"))
                    .collect()
            };
            let p = Primitive::DotGeneral {
                lhs_contracting: pos(&acc.letters, &contract),
                rhs_contracting: pos(&op.letters, &contract),
                lhs_batch: pos(&acc.letters, &batch),
                rhs_batch: pos(&op.letters, &batch),
            };
            let free = |letters: &[char]| -> Vec<char> {
                letters
                    .iter()
                    .copied()
                    .filter(|c| !shared.contains(c))
                    .collect()
            };
            let mut letters = batch.clone();
            letters.extend(free(&acc.letters));
            letters.extend(free(&op.letters));
            acc = Term {
                t: bind(p, &[&acc.t, &op.t], loc),
                letters,
            }
            .keep_only(later);
        }
        let acc = acc.keep_only(|c| out.contains(&c));
        let perm: Vec<usize> = out
            .iter()
            .map(|c| acc.letters.iter().position(|l| l == c).expect("kept"))
            .collect();
        if perm.iter().enumerate().all(|(i, &p)| i == p) {
            acc.t
        } else {
            bind(Primitive::Transpose { permutation: perm }, &[&acc.t], loc)
        }
    }
}

/// The operand with every letter repeated inside it reduced to its diagonal.
fn diagonals(mut t: Tensor, mut letters: Vec<char>) -> Term {
    while let Some((p, q)) = (0..letters.len()).find_map(|p| {
        (p + 1..letters.len())
            .find(|&q| letters[q] == letters[p])
            .map(|q| (p, q))
    }) {
        let c = letters[p];
        t = t.diagonal(0, p as isize, q as isize);
        letters.remove(q);
        letters.remove(p);
        letters.push(c);
    }
    Term { t, letters }
}
