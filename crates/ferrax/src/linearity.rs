//! Typed linearity: checking that a program is linear in its linear inputs.
//!
//! Sits after partial evaluation (every linear program it makes is checked in tests) and
//! before transposition, which relies on it. A linear program's leading inputs are
//! *residuals* (fixed values) and the rest are *linear*. Every variable gets a kind:
//!
//! * **residual**: computed from residuals, constants and literals only;
//! * **zero**: a structural copy of a literal zero (`broadcast_in_dim 0.0`), the zero map;
//! * **linear**: anything that reads a linear variable.
//!
//! An equation that reads a linear variable must use it linearly: structural primitives
//! (`neg`, `reduce_sum`, `broadcast_in_dim`, `reshape`, `transpose`, `squeeze`,
//! `expand_dims`, `slice`, `rev`, `cumsum`, float-to-float `convert_element_type`) on a
//! linear operand; `add`, `sub`, `concatenate`, `pad` (operand and padding value) and the
//! cases of `select` only of linear or zero operands (a residual there would make it
//! affine); `mul` and `dot_general` with exactly one linear operand; `div` with a linear
//! numerator. Outputs must be linear or zero: a residual output is an affine constant. Anything
//! else is rejected with the primitive and the user's source line.

use crate::dtype::Scalar;
use crate::error::{Error, Result};
use crate::primitive::Primitive;
use crate::program::{Atom, Program};

/// What a variable of a linear program is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Residual,
    Zero,
    Linear,
}

fn is_zero_literal(s: &Scalar) -> bool {
    s.to_f64() == 0.0
}

/// Checks that `p` is linear in its inputs after the first `n_residuals`.
///
/// ```
/// use ferrax::{linearity::check_linear, Program};
/// let lin = Program::parse("{ lambda ; r:f64[] t:f64[] . let u:f64[] = mul t r in (u) }").unwrap();
/// assert!(check_linear(&lin, 1).is_ok());
/// let affine = Program::parse("{ lambda ; t:f64[] . let u:f64[] = add t 1.0:f64 in (u) }").unwrap();
/// assert!(check_linear(&affine, 0).is_err());
/// ```
pub fn check_linear(p: &Program, n_residuals: usize) -> Result<()> {
    p.check()?;
    classify(p, n_residuals).map(|_| ())
}

/// The kind of every variable of a linear program (indexed by variable), or the error that
/// shows it is not linear.
pub(crate) fn classify(p: &Program, n_residuals: usize) -> Result<Vec<Kind>> {
    if n_residuals > p.inputs.len() {
        return Err(Error::input(
            "check_linear",
            format!(
                "{n_residuals} residuals declared but the program has {} inputs",
                p.inputs.len()
            ),
        ));
    }
    let mut kind = vec![Kind::Residual; p.avals.len()];
    for v in &p.inputs[n_residuals..] {
        kind[v.index()] = Kind::Linear;
    }
    let kind_of = |kind: &Vec<Kind>, a: &Atom| match a {
        Atom::Var(v) => kind[v.index()],
        Atom::Lit(s) if is_zero_literal(s) => Kind::Zero,
        Atom::Lit(_) => Kind::Residual,
    };
    for e in &p.eqns {
        let ks: Vec<Kind> = e.inputs.iter().map(|a| kind_of(&kind, a)).collect();
        let fail = |msg: String| Error::NotLinear {
            op: e.prim.name().to_string(),
            msg,
            loc: e.loc,
        };
        let any_linear = ks.contains(&Kind::Linear);
        let out = if !any_linear {
            // No linear operand: a residual, or a zero when the result is certainly zero (a
            // structural copy of zeros, a product with a zero, a choice between zeros).
            use Primitive::*;
            let all_zero = !ks.is_empty() && ks.iter().all(|k| *k == Kind::Zero);
            let zero = match &e.prim {
                Mul | DotGeneral { .. } => ks.contains(&Kind::Zero),
                Div => ks[0] == Kind::Zero,
                Select => ks[1] == Kind::Zero && ks[2] == Kind::Zero,
                Add | Sub | Concatenate { .. } | Pad { .. } => all_zero,
                p => all_zero && structural(p),
            };
            if zero {
                Kind::Zero
            } else {
                Kind::Residual
            }
        } else {
            use Primitive::*;
            let lin_or_zero = |k: &Kind| *k != Kind::Residual;
            match &e.prim {
                p if structural(p) => Kind::Linear,
                // Linear jointly in all operands: every one must be linear or zero.
                Add | Sub | Concatenate { .. } | Pad { .. } => {
                    if ks.iter().all(lin_or_zero) {
                        Kind::Linear
                    } else {
                        return Err(fail(
                            "combines a linear value with a non-zero constant (the function is affine, not linear)".into(),
                        ));
                    }
                }
                Mul | DotGeneral { .. } => {
                    if ks.iter().filter(|k| **k == Kind::Linear).count() == 1 {
                        Kind::Linear
                    } else {
                        return Err(fail("multiplies two linear values".into()));
                    }
                }
                Div => {
                    if ks[1] == Kind::Linear {
                        return Err(fail("divides by a linear value".into()));
                    }
                    Kind::Linear
                }
                Select => {
                    if ks[0] == Kind::Linear {
                        return Err(fail("uses a linear value as its predicate".into()));
                    }
                    if !lin_or_zero(&ks[1]) || !lin_or_zero(&ks[2]) {
                        return Err(fail(
                            "selects between a linear value and a non-zero constant (affine, not linear)".into(),
                        ));
                    }
                    Kind::Linear
                }
                ConvertElementType { new_dtype } => {
                    // Reached only for non-float conversions (float-to-float is structural).
                    return Err(fail(format!(
                        "converts a linear value to {new_dtype}, which is not a vector space operation"
                    )));
                }
                _ => {
                    return Err(fail(
                        "is not a linear primitive, but is applied to a linear value".into(),
                    ))
                }
            }
        };
        kind[e.out.index()] = out;
    }
    for (i, a) in p.outputs.iter().enumerate() {
        if kind_of(&kind, a) == Kind::Residual {
            return Err(Error::NotLinear {
                op: "output".into(),
                msg: format!("{i} does not depend on the linear inputs and is not zero: the function is affine, not linear"),
                loc: None,
            });
        }
    }
    Ok(kind)
}

/// Primitives that are linear in their single operand (copies, sums and rearrangements).
pub(crate) fn structural(p: &Primitive) -> bool {
    use Primitive::*;
    match p {
        Neg
        | ReduceSum { .. }
        | BroadcastInDim { .. }
        | Reshape { .. }
        | Transpose { .. }
        | Squeeze { .. }
        | ExpandDims { .. }
        | Slice { .. }
        | Rev { .. }
        | Cumsum { .. } => true,
        ConvertElementType { new_dtype } => new_dtype.is_float(),
        Sin
        | Cos
        | Tan
        | Exp
        | Log
        | Log1p
        | Expm1
        | Tanh
        | Logistic
        | Sqrt
        | Rsqrt
        | Abs
        | Sign
        | Floor
        | Ceil
        | Round
        | Erf
        | IntegerPow { .. }
        | Add
        | Sub
        | Mul
        | Div
        | Pow
        | Max
        | Min
        | Atan2
        | Eq
        | Ne
        | Lt
        | Le
        | Gt
        | Ge
        | Select
        | ReduceMax { .. }
        | ReduceMin { .. }
        | Argmax { .. }
        | Pad { .. }
        | Concatenate { .. }
        | Iota { .. }
        | DotGeneral { .. } => false,
    }
}
