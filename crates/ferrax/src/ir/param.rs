//! Static parameters of primitives as program text shows them: [`Param`], and how each Rust
//! parameter type prints and reads back (`ParamValue`).
//!
//! Part of the IR, beside the primitive table (`primitive.rs`), which prints every
//! primitive's parameters with these and reads them back with [`ParamReader`].

use std::fmt;

use crate::ir::dtype::DType;
use crate::ir::indexing::{IndexMode, ScatterCombine};
use crate::ir::program::Closed;
use crate::ir::remat::{is_checkpoint_name, RematPolicy};

/// A parameter value, as it appears in program text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Param {
    /// An integer: `3`, `-1`.
    Int(i64),
    /// A boolean: `true`, `false`.
    Bool(bool),
    /// A dtype: `f32`.
    DType(DType),
    /// A tuple of sizes or axes: `(0,1)`.
    Ints(Vec<usize>),
    /// A nested program: `{ lambda ... }`.
    Program(Closed),
    /// A tuple of nested programs: `({ lambda ... }, { lambda ... })`.
    Programs(Vec<Closed>),
    /// An identifier: `dots`, a checkpoint's name.
    Name(String),
    /// A tuple of identifiers: `(h1,h2)`.
    Names(Vec<String>),
}

/// A static parameter's Rust type: how it prints in program text and how it is read back.
pub(crate) trait ParamValue: Sized {
    fn to_param(&self) -> Param;
    fn from_param(key: &str, p: &Param) -> Result<Self, String>;
}

impl ParamValue for i32 {
    fn to_param(&self) -> Param {
        Param::Int(*self as i64)
    }
    fn from_param(key: &str, p: &Param) -> Result<Self, String> {
        match p {
            Param::Int(i) => {
                i32::try_from(*i).map_err(|_| format!("{key}={i} does not fit in i32"))
            }
            p => Err(format!("parameter `{key}` must be an integer, got `{p}`")),
        }
    }
}

impl ParamValue for usize {
    fn to_param(&self) -> Param {
        Param::Int(*self as i64)
    }
    fn from_param(key: &str, p: &Param) -> Result<Self, String> {
        match p {
            Param::Int(i) => usize::try_from(*i)
                .map_err(|_| format!("parameter `{key}` must be non-negative, got {i}")),
            p => Err(format!("parameter `{key}` must be an integer, got `{p}`")),
        }
    }
}

impl ParamValue for bool {
    fn to_param(&self) -> Param {
        Param::Bool(*self)
    }
    fn from_param(key: &str, p: &Param) -> Result<Self, String> {
        match p {
            Param::Bool(b) => Ok(*b),
            p => Err(format!(
                "parameter `{key}` must be true or false, got `{p}`"
            )),
        }
    }
}

impl ParamValue for DType {
    fn to_param(&self) -> Param {
        Param::DType(*self)
    }
    fn from_param(key: &str, p: &Param) -> Result<Self, String> {
        match p {
            Param::DType(d) => Ok(*d),
            p => Err(format!("parameter `{key}` must be a dtype, got `{p}`")),
        }
    }
}

impl ParamValue for Vec<usize> {
    fn to_param(&self) -> Param {
        Param::Ints(self.clone())
    }
    fn from_param(key: &str, p: &Param) -> Result<Self, String> {
        match p {
            Param::Ints(v) => Ok(v.clone()),
            p => Err(format!(
                "parameter `{key}` must be a tuple of integers like (0,1), got `{p}`"
            )),
        }
    }
}

impl ParamValue for Closed {
    fn to_param(&self) -> Param {
        Param::Program(self.clone())
    }
    fn from_param(key: &str, p: &Param) -> Result<Self, String> {
        match p {
            Param::Program(c) => Ok(c.clone()),
            p => Err(format!(
                "parameter `{key}` must be a program {{ lambda ... }}, got `{p}`"
            )),
        }
    }
}

impl ParamValue for Vec<Closed> {
    fn to_param(&self) -> Param {
        Param::Programs(self.clone())
    }
    fn from_param(key: &str, p: &Param) -> Result<Self, String> {
        match p {
            Param::Programs(v) => Ok(v.clone()),
            Param::Program(c) => Ok(vec![c.clone()]),
            p => Err(format!(
                "parameter `{key}` must be a tuple of programs, got `{p}`"
            )),
        }
    }
}

impl ParamValue for String {
    fn to_param(&self) -> Param {
        Param::Name(self.clone())
    }
    fn from_param(key: &str, p: &Param) -> Result<Self, String> {
        match p {
            Param::Name(n) => Ok(n.clone()),
            p => Err(format!("parameter `{key}` must be a name, got `{p}`")),
        }
    }
}

/// The parameters given in program text, each to be used exactly once.
pub(crate) struct ParamReader<'a> {
    pub(crate) name: &'a str,
    pub(crate) params: &'a [(String, Param)],
    pub(crate) used: Vec<bool>,
}

impl ParamReader<'_> {
    pub(crate) fn read<T: ParamValue>(&mut self, key: &str) -> Result<T, String> {
        match self.params.iter().position(|(k, _)| k == key) {
            Some(i) => {
                self.used[i] = true;
                T::from_param(key, &self.params[i].1)
            }
            None => Err(format!("`{}` needs the parameter `{key}`", self.name)),
        }
    }
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // a nested program's lines are indented one level deeper than the equation's
            Param::Program(c) => write!(f, "{}", indent(&c.0.to_string())),
            Param::Programs(v) => {
                f.write_str("(")?;
                for (i, c) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", indent(&c.0.to_string()))?;
                }
                if v.len() == 1 {
                    f.write_str(",")?;
                }
                f.write_str(")")
            }
            Param::Int(i) => write!(f, "{i}"),
            Param::Name(n) => f.write_str(n),
            Param::Names(v) => write!(f, "({})", v.join(",")),
            Param::Bool(b) => write!(f, "{b}"),
            Param::DType(d) => write!(f, "{d}"),
            Param::Ints(v) => {
                f.write_str("(")?;
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{x}")?;
                }
                if v.len() == 1 {
                    f.write_str(",")?;
                }
                f.write_str(")")
            }
        }
    }
}

/// A program's text with its continuation lines indented four more spaces.
fn indent(text: &str) -> String {
    text.replace('\n', "\n    ")
}

impl ParamValue for RematPolicy {
    fn to_param(&self) -> Param {
        match self {
            RematPolicy::Nothing => Param::Name("nothing".into()),
            RematPolicy::Everything => Param::Name("everything".into()),
            RematPolicy::Dots => Param::Name("dots".into()),
            RematPolicy::Names(v) => Param::Names(v.clone()),
        }
    }
    fn from_param(key: &str, p: &Param) -> Result<Self, String> {
        match p {
            Param::Name(n) if n == "nothing" => Ok(RematPolicy::Nothing),
            Param::Name(n) if n == "everything" => Ok(RematPolicy::Everything),
            Param::Name(n) if n == "dots" => Ok(RematPolicy::Dots),
            Param::Names(v) if v.iter().all(|n| is_checkpoint_name(n)) => {
                Ok(RematPolicy::Names(v.clone()))
            }
            // `()`: no names, so nothing saved by name
            Param::Ints(v) if v.is_empty() => Ok(RematPolicy::Names(vec![])),
            p => Err(format!(
                "parameter `{key}` must be nothing, everything, dots or a tuple of names, got `{p}`"
            )),
        }
    }
}

impl ParamValue for IndexMode {
    fn to_param(&self) -> Param {
        Param::Name(self.name().into())
    }
    fn from_param(key: &str, p: &Param) -> Result<Self, String> {
        match p {
            Param::Name(n) if n == "clip" => Ok(IndexMode::Clip),
            Param::Name(n) if n == "fill" => Ok(IndexMode::Fill),
            p => Err(format!("parameter `{key}` must be clip or fill, got `{p}`")),
        }
    }
}

impl ParamValue for ScatterCombine {
    fn to_param(&self) -> Param {
        Param::Name(self.name().into())
    }
    fn from_param(key: &str, p: &Param) -> Result<Self, String> {
        let all = [
            ScatterCombine::Set,
            ScatterCombine::Mul,
            ScatterCombine::Min,
            ScatterCombine::Max,
        ];
        match p {
            Param::Name(n) => all.into_iter().find(|c| c.name() == n),
            _ => None,
        }
        .ok_or_else(|| format!("parameter `{key}` must be set, mul, min or max, got `{p}`"))
    }
}
