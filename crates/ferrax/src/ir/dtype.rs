//! Element types and scalars.
//!
//! The bottom of the pipeline: a [`DType`] names an element type, a [`Scalar`] is one
//! element (a literal inline in a program, or an element read from an array). There is no
//! silent promotion between dtypes: Rust numbers mixed with tensors adopt the tensor's dtype
//! (JAX's weak types, [`WeakScalar`]), everything else must match exactly.

use std::fmt;

use crate::ir::error::{Error, Result};

/// The element types ferrax computes with. f64 is first-class (no opt-in flag).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// 32-bit IEEE float.
    F32,
    /// 64-bit IEEE float.
    F64,
    /// 32-bit signed integer.
    I32,
    /// 64-bit signed integer.
    I64,
    /// Boolean.
    Bool,
}

impl DType {
    /// All dtypes, in a fixed order.
    pub const ALL: [DType; 5] = [DType::F32, DType::F64, DType::I32, DType::I64, DType::Bool];

    /// The name used in program text (`f32`, `f64`, `i32`, `i64`, `bool`).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::I32 => "i32",
            DType::I64 => "i64",
            DType::Bool => "bool",
        }
    }

    /// Reads a dtype name as printed by [`DType::name`].
    pub fn from_name(s: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name() == s)
    }

    /// Whether this is a float dtype (f32 or f64).
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    /// Whether this is an integer dtype (i32 or i64).
    pub fn is_int(self) -> bool {
        matches!(self, DType::I32 | DType::I64)
    }

    /// Floats and integers: the dtypes arithmetic accepts.
    pub fn is_numeric(self) -> bool {
        self.is_float() || self.is_int()
    }

    /// Bytes per element.
    pub fn size_bytes(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::F64 | DType::I64 => 8,
            DType::Bool => 1,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One element of some dtype: the literals of program text and the result of element access.
#[derive(Clone, Copy, Debug)]
pub enum Scalar {
    /// An f32 element.
    F32(f32),
    /// An f64 element.
    F64(f64),
    /// An i32 element.
    I32(i32),
    /// An i64 element.
    I64(i64),
    /// A bool element.
    Bool(bool),
}

impl PartialEq for Scalar {
    /// Bitwise equality for floats, so that a NaN literal equals itself (programs compare by
    /// structure, not by IEEE semantics).
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Scalar::F32(a), Scalar::F32(b)) => a.to_bits() == b.to_bits(),
            (Scalar::F64(a), Scalar::F64(b)) => a.to_bits() == b.to_bits(),
            (Scalar::I32(a), Scalar::I32(b)) => a == b,
            (Scalar::I64(a), Scalar::I64(b)) => a == b,
            (Scalar::Bool(a), Scalar::Bool(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Scalar {}

impl std::hash::Hash for Scalar {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match *self {
            Scalar::F32(v) => v.to_bits().hash(state),
            Scalar::F64(v) => v.to_bits().hash(state),
            Scalar::I32(v) => v.hash(state),
            Scalar::I64(v) => v.hash(state),
            Scalar::Bool(v) => v.hash(state),
        }
    }
}

impl Scalar {
    /// The dtype of this element.
    pub fn dtype(self) -> DType {
        match self {
            Scalar::F32(_) => DType::F32,
            Scalar::F64(_) => DType::F64,
            Scalar::I32(_) => DType::I32,
            Scalar::I64(_) => DType::I64,
            Scalar::Bool(_) => DType::Bool,
        }
    }

    /// The value as f64 (exact for f32, i32 and bool; i64 beyond 2^53 rounds).
    pub fn to_f64(self) -> f64 {
        match self {
            Scalar::F32(v) => v as f64,
            Scalar::F64(v) => v,
            Scalar::I32(v) => v as f64,
            Scalar::I64(v) => v as f64,
            Scalar::Bool(v) => v as u8 as f64,
        }
    }

    /// The value converted as `convert_element_type` converts it.
    pub fn cast(self, dtype: DType) -> Scalar {
        match self {
            Scalar::I64(v) => match dtype {
                DType::F32 => Scalar::F32(v as f32),
                DType::F64 => Scalar::F64(v as f64),
                DType::I32 => Scalar::I32(v as i32),
                DType::I64 => Scalar::I64(v),
                DType::Bool => Scalar::Bool(v != 0),
            },
            Scalar::Bool(v) => Scalar::I64(v as i64).cast(dtype),
            _ => {
                let x = self.to_f64();
                match dtype {
                    DType::F32 => Scalar::F32(x as f32),
                    DType::F64 => Scalar::F64(x),
                    DType::I32 => Scalar::I32(x as i32),
                    DType::I64 => Scalar::I64(x as i64),
                    DType::Bool => Scalar::Bool(x != 0.0),
                }
            }
        }
    }

    /// A Rust number given to a tensor operation, converted to the tensor's dtype (JAX's
    /// weak typing). Refused when the conversion would lose the value (2.5 to an integer),
    /// or when the tensor is boolean.
    pub(crate) fn weak(value: WeakScalar, dtype: DType, op: &str) -> Result<Scalar> {
        let s = match (value, dtype) {
            (_, DType::Bool) => {
                return Err(Error::dtype(
                    op,
                    "a Rust number cannot be combined with a bool tensor",
                ))
            }
            (WeakScalar::Float(x), DType::F32) => Scalar::F32(x as f32),
            (WeakScalar::Float(x), DType::F64) => Scalar::F64(x),
            (WeakScalar::Int(i), DType::F32) => Scalar::F32(i as f32),
            (WeakScalar::Int(i), DType::F64) => Scalar::F64(i as f64),
            (WeakScalar::Float(x), d) => {
                if x.fract() != 0.0 || !x.is_finite() {
                    return Err(Error::dtype(
                        op,
                        format!("the Rust number {x:?} has no exact value in dtype {d}"),
                    ));
                }
                WeakScalar::Int(x as i64).to_int(d, op)?
            }
            (w @ WeakScalar::Int(_), d) => w.to_int(d, op)?,
        };
        Ok(s)
    }
}

/// A Rust number before it has met a tensor and taken its dtype.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WeakScalar {
    Float(f64),
    Int(i64),
}

impl WeakScalar {
    fn to_int(self, d: DType, op: &str) -> Result<Scalar> {
        let WeakScalar::Int(i) = self else {
            unreachable!("to_int is called on integers only")
        };
        match d {
            DType::I32 => i32::try_from(i).map(Scalar::I32).map_err(|_| {
                Error::dtype(op, format!("the Rust number {i} does not fit in dtype i32"))
            }),
            _ => Ok(Scalar::I64(i)),
        }
    }
}

impl fmt::Display for Scalar {
    /// Shortest round-trip text, followed by the dtype: `2.5:f64`, `-3:i32`, `true:bool`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_value(f, *self)?;
        write!(f, ":{}", self.dtype())
    }
}

/// Writes a scalar's value without its dtype, in the shortest text that reads back exactly.
pub(crate) fn write_value(f: &mut impl fmt::Write, s: Scalar) -> fmt::Result {
    match s {
        Scalar::F32(v) => write_float(f, v as f64, format!("{v:?}")),
        Scalar::F64(v) => write_float(f, v, format!("{v:?}")),
        Scalar::I32(v) => write!(f, "{v}"),
        Scalar::I64(v) => write!(f, "{v}"),
        Scalar::Bool(v) => write!(f, "{v}"),
    }
}

fn write_float(f: &mut impl fmt::Write, v: f64, debug: String) -> fmt::Result {
    if v.is_nan() {
        // the sign survives the round trip (`-nan` reads back negative); a payload does not
        f.write_str(if v.is_sign_negative() { "-nan" } else { "nan" })
    } else if v.is_infinite() {
        f.write_str(if v > 0.0 { "inf" } else { "-inf" })
    } else {
        f.write_str(&debug)
    }
}

/// Reads one value of a dtype from its text (`1.5`, `-3`, `true`, `nan`, `-inf`).
pub(crate) fn parse_value(text: &str, dtype: DType) -> Option<Scalar> {
    let float_ok = |t: &str| {
        t.chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c == '-' || c == '+' || c == '.')
            || matches!(t, "inf" | "nan")
    };
    match dtype {
        DType::F32 if float_ok(text) => text.parse::<f32>().ok().map(Scalar::F32),
        DType::F64 if float_ok(text) => text.parse::<f64>().ok().map(Scalar::F64),
        DType::I32 => text.parse::<i32>().ok().map(Scalar::I32),
        DType::I64 => text.parse::<i64>().ok().map(Scalar::I64),
        DType::Bool => match text {
            "true" => Some(Scalar::Bool(true)),
            "false" => Some(Scalar::Bool(false)),
            _ => None,
        },
        _ => None,
    }
}
