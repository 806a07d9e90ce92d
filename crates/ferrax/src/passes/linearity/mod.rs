//! Typed linearity: which primitives are linear and how, and checking that a program is
//! linear in its linear inputs.
//!
//! Sits after partial evaluation (every linear program it makes is checked in tests) and
//! before transposition, which relies on it. [`Primitive::linearity`] says, for every
//! primitive in one exhaustive `match`, how it may use a linear operand; the checker and the
//! coverage test both read it. A linear program's leading inputs are *residuals* (fixed
//! values) and the rest are *linear*. Every variable gets a kind:
//!
//! * **residual**: computed from residuals, constants and literals only;
//! * **zero**: certainly zero (a zero literal, a structural copy of one, a product with one,
//!   an integer or bool input, which has no tangent space);
//! * **linear**: anything that reads a linear variable.
//!
//! An equation that reads a linear variable must use it as its primitive's linearity
//! allows. Outputs must be linear or zero: a residual output is an affine constant.
//! Anything else is rejected with the primitive and the user's source line.

pub(crate) mod control;

use crate::ir::{control_flow, Atom, Error, Primitive, Program, Result};
pub(crate) use crate::passes::linearity::control::control_kinds;

/// How a primitive may use linear operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Linearity {
    /// Linear in its single operand: copies, sums and rearrangements (`neg`, `reduce_sum`,
    /// `broadcast_in_dim`, `reshape`, `transpose`, `squeeze`, `expand_dims`, `slice`, `rev`,
    /// `cumsum`).
    Structural,
    /// Linear jointly in all operands, each of which must be linear or zero (a residual
    /// would make it affine): `add`, `sub`, `concatenate`, `pad`.
    Joint,
    /// Bilinear: linear in exactly one operand, the other a residual or zero (`mul`,
    /// `dot_general`).
    OneOperand,
    /// Linear in the numerator only (`div`).
    Numerator,
    /// `select` on a known predicate between cases that are linear or zero.
    Select,
    /// `convert_element_type`: linear from a float to a float, not otherwise.
    FloatConvert,
    /// Not linear in any operand.
    NotLinear,
    /// Indexing by integer operands (`gather`, `scatter_add`, `scatter` with `set`, the
    /// dynamic slices): linear jointly in the data operands, each linear or zero; the
    /// indices, never linear (integers), may be anything.
    Indexed,
    /// Linear in the right-hand side only (operand 1), the matrix a residual or zero:
    /// `solve`, `triangular_solve`.
    Rhs,
    /// Control flow: linear as its sub-programs are (the checker looks inside them).
    SubPrograms,
}

/// Whether operand `i` of an indexing primitive is an index (not data).
pub(crate) fn is_index_operand(prim: &Primitive, i: usize) -> bool {
    match prim {
        Primitive::Gather { .. } | Primitive::ScatterAdd { .. } | Primitive::Scatter { .. } => {
            i == 1
        }
        Primitive::DynamicSlice { .. } => i >= 1,
        Primitive::DynamicUpdateSlice => i >= 2,
        _ => false,
    }
}

/// The primitives that are linear in no operand: the family whose [`Linearity`] is
/// `NotLinear`, and whose transpose rule is an error.
macro_rules! nonlinear {
    () => {
        $crate::ir::smooth_unary!()
            | $crate::ir::rounding!()
            | $crate::ir::comparison!()
            | $crate::ir::Primitive::Abs
            | $crate::ir::Primitive::Sign
            | $crate::ir::Primitive::IntegerPow { .. }
            | $crate::ir::Primitive::Pow
            | $crate::ir::Primitive::Max
            | $crate::ir::Primitive::Min
            | $crate::ir::Primitive::Atan2
            | $crate::ir::Primitive::ReduceMax { .. }
            | $crate::ir::Primitive::ReduceMin { .. }
            | $crate::ir::Primitive::Argmax { .. }
            | $crate::ir::Primitive::Iota { .. }
            | $crate::ir::Primitive::StopGradient
            | $crate::ir::Primitive::Rem
            | $crate::ir::Primitive::Threefry2x32
            | $crate::ir::Primitive::Pmax { .. }
            | $crate::ir::Primitive::Pmin { .. }
            | $crate::ir::Primitive::AxisIndex { .. }
            | $crate::ir::Primitive::Cholesky
            | $crate::ir::Primitive::LogAbsDet
            | $crate::ir::Primitive::DetSign
            | $crate::ir::Primitive::QrQ
            | $crate::ir::Primitive::QrR
            | $crate::ir::Primitive::EighValues
            | $crate::ir::Primitive::EighVectors
            | $crate::ir::Primitive::SvdValues
            | $crate::ir::Primitive::SvdU
            | $crate::ir::Primitive::SvdVt
            | $crate::ir::Primitive::Argmin { .. }
            | $crate::ir::Primitive::Argsort { .. }
            | $crate::ir::Primitive::ReduceProd { .. }
            | $crate::ir::Primitive::Scatter {
                combine: $crate::ir::ScatterCombine::Mul
                    | $crate::ir::ScatterCombine::Min
                    | $crate::ir::ScatterCombine::Max,
                ..
            }
    };
}
pub(crate) use nonlinear;

impl Primitive {
    /// How this primitive may use linear operands (see [`Linearity`]).
    pub fn linearity(&self) -> Linearity {
        use Primitive::*;
        match self {
            Neg
            | ReduceSum { .. }
            | BroadcastInDim { .. }
            | Reshape { .. }
            | Transpose { .. }
            | Squeeze { .. }
            | ExpandDims { .. }
            | Slice { .. }
            | Rev { .. }
            | CheckpointName { .. }
            | Cumsum { .. }
            | Psum { .. }
            | Pmean { .. }
            | AllGather { .. }
            | PsumScatter { .. }
            | Ppermute { .. }
            | AllToAll { .. } => Linearity::Structural,
            Add | Sub | Concatenate { .. } | Pad { .. } => Linearity::Joint,
            Mul | DotGeneral { .. } => Linearity::OneOperand,
            Gather { .. }
            | ScatterAdd { .. }
            | Scatter {
                combine: crate::ir::ScatterCombine::Set,
                ..
            }
            | DynamicSlice { .. }
            | DynamicUpdateSlice => Linearity::Indexed,
            Div => Linearity::Numerator,
            Solve { .. } | TriangularSolve { .. } => Linearity::Rhs,
            Select => Linearity::Select,
            ConvertElementType { .. } => Linearity::FloatConvert,
            nonlinear!() => Linearity::NotLinear,
            control_flow!() => Linearity::SubPrograms,
        }
    }
}

/// What a variable of a linear program is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Residual,
    Zero,
    Linear,
}

/// The kind of an atom, given the kinds of the program's variables: a literal is a zero or
/// a residual by its value.
pub(crate) fn kind_of(kinds: &[Kind], a: &Atom) -> Kind {
    match a {
        Atom::Var(v) => kinds[v.index()],
        Atom::Lit(s) if s.to_f64() == 0.0 => Kind::Zero,
        Atom::Lit(_) => Kind::Residual,
    }
}

/// Checks that `p` is linear in its inputs after the first `n_residuals`.
///
/// ```
/// use ferrax::{check_linear, Program};
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
    let in_kinds: Vec<Kind> = p
        .inputs
        .iter()
        .enumerate()
        .map(|(i, v)| match i < n_residuals {
            true => Kind::Residual,
            // An integer or bool input has no tangent space: its tangent is zero (as the jvp
            // pass treats it), so it is a zero, never a linear value to transpose.
            false if p.aval(*v).dtype.is_float() => Kind::Linear,
            false => Kind::Zero,
        })
        .collect();
    let kinds = classify_kinds(p, &in_kinds)?;
    for (i, a) in p.outputs.iter().enumerate() {
        if kind_of(&kinds, a) == Kind::Residual {
            return Err(Error::NotLinear {
                op: "output".into(),
                msg: format!("{i} does not depend on the linear inputs and is not zero: the function is affine, not linear"),
                loc: None,
            });
        }
    }
    Ok(kinds)
}

/// The kind of every variable given the kinds of the inputs (a sub-program's inputs may be
/// of any kind), or the error that shows a linear value used non-linearly. Outputs may be of
/// any kind: whether a residual output is allowed is the caller's question.
pub(crate) fn classify_kinds(p: &Program, in_kinds: &[Kind]) -> Result<Vec<Kind>> {
    let mut kinds = vec![Kind::Residual; p.avals.len()];
    for (v, k) in p.inputs.iter().zip(in_kinds) {
        kinds[v.index()] = *k;
    }
    for e in &p.eqns {
        let ks: Vec<Kind> = e.inputs.iter().map(|a| kind_of(&kinds, a)).collect();
        if e.prim.is_control_flow() {
            for (v, k) in e.outs.iter().zip(control_kinds(e, &ks)?) {
                kinds[v.index()] = k;
            }
            continue;
        }
        let kind = if ks.contains(&Kind::Linear) {
            linear_use(&e.prim, &ks).map_err(|msg| Error::NotLinear {
                op: e.prim.name().to_string(),
                msg,
                loc: e.loc,
            })?
        } else if certainly_zero(&e.prim, &ks) {
            Kind::Zero
        } else {
            Kind::Residual
        };
        kinds[e.out().index()] = kind;
    }
    Ok(kinds)
}

/// Whether an equation with no linear operand certainly gives zero: a copy of zeros, a
/// product with a zero, a choice between zeros. (Conservative: `sin 0` is a residual.)
fn certainly_zero(prim: &Primitive, ks: &[Kind]) -> bool {
    let all_zero = !ks.is_empty() && ks.iter().all(|k| *k == Kind::Zero);
    match prim.linearity() {
        Linearity::OneOperand => ks.contains(&Kind::Zero),
        Linearity::Numerator => ks[0] == Kind::Zero,
        Linearity::Rhs => ks[1] == Kind::Zero,
        Linearity::Select => ks[1] == Kind::Zero && ks[2] == Kind::Zero,
        Linearity::Structural | Linearity::Joint | Linearity::FloatConvert => all_zero,
        Linearity::Indexed => data_kinds(prim, ks).all(|k| k == Kind::Zero),
        Linearity::NotLinear | Linearity::SubPrograms => false,
    }
}

/// The kinds of an indexing primitive's data operands (its indices left out).
fn data_kinds<'a>(prim: &'a Primitive, ks: &'a [Kind]) -> impl Iterator<Item = Kind> + 'a {
    ks.iter()
        .enumerate()
        .filter(|(i, _)| !is_index_operand(prim, *i))
        .map(|(_, k)| *k)
}

/// The kind of an equation's output given its operands' kinds, at least one linear; a
/// message saying why when the use is not linear.
fn linear_use(prim: &Primitive, ks: &[Kind]) -> std::result::Result<Kind, String> {
    let lin_or_zero = |k: &Kind| *k != Kind::Residual;
    match prim.linearity() {
        Linearity::Structural => Ok(Kind::Linear),
        Linearity::Joint if ks.iter().all(lin_or_zero) => Ok(Kind::Linear),
        Linearity::Joint => Err(
            "combines a linear value with a non-zero constant (the function is affine, not linear)"
                .into(),
        ),
        Linearity::OneOperand if ks.iter().filter(|k| **k == Kind::Linear).count() == 1 => {
            Ok(Kind::Linear)
        }
        Linearity::OneOperand => Err("multiplies two linear values".into()),
        Linearity::Numerator if ks[1] == Kind::Linear => Err("divides by a linear value".into()),
        Linearity::Rhs if ks[0] == Kind::Linear => {
            Err("solves with a linear matrix (linear in the right-hand side only)".into())
        }
        Linearity::Rhs => Ok(Kind::Linear),
        Linearity::Numerator => Ok(Kind::Linear),
        Linearity::Select if ks[0] == Kind::Linear => {
            Err("uses a linear value as its predicate".into())
        }
        Linearity::Select if !lin_or_zero(&ks[1]) || !lin_or_zero(&ks[2]) => Err(
            "selects between a linear value and a non-zero constant (affine, not linear)".into(),
        ),
        Linearity::Select => Ok(Kind::Linear),
        Linearity::FloatConvert => match prim {
            Primitive::ConvertElementType { new_dtype } if new_dtype.is_float() => Ok(Kind::Linear),
            Primitive::ConvertElementType { new_dtype } => Err(format!(
                "converts a linear value to {new_dtype}, which is not a vector space operation"
            )),
            other => Err(format!("`{}` is not a conversion", other.name())),
        },
        Linearity::Indexed if data_kinds(prim, ks).all(|k| k != Kind::Residual) => Ok(Kind::Linear),
        Linearity::Indexed => Err(
            "combines a linear value with a non-zero constant (the function is affine, not linear)"
                .into(),
        ),
        Linearity::NotLinear => {
            Err("is not a linear primitive, but is applied to a linear value".into())
        }
        // routed to `control_kinds` before this is asked
        Linearity::SubPrograms => {
            Err("is control flow, whose kinds come from its sub-programs".into())
        }
    }
}
