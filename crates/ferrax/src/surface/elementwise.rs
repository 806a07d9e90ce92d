//! Elementwise operations: unary functions, binary arithmetic and comparisons with numpy
//! broadcasting, the Rust operators, conversions and `where_`.

use std::ops;

use crate::ir::{DType, Primitive, SourceLoc};
use crate::surface::{binary, broadcast_shapes, weak_pair, Operand};
use crate::trace::{bind, try_t, Tensor};

macro_rules! unary_methods {
    ($($(#[$doc:meta])* $name:ident => $prim:ident),* $(,)?) => {
        $(
            $(#[$doc])*
            #[track_caller]
            pub fn $name(&self) -> Tensor {
                bind(Primitive::$prim, &[self], SourceLoc::caller())
            }
        )*
    };
}

macro_rules! binary_methods {
    ($($(#[$doc:meta])* $name:ident => $prim:ident),* $(,)?) => {
        $(
            $(#[$doc])*
            #[track_caller]
            pub fn $name(&self, other: impl Into<Operand>) -> Tensor {
                binary(Primitive::$prim, self.clone().into(), other.into(), SourceLoc::caller())
            }
        )*
    };
}

impl Tensor {
    // ---- elementwise ----

    unary_methods! {
        /// `-x`.
        neg => Neg,
        /// Sine (floats).
        sin => Sin,
        /// Cosine (floats).
        cos => Cos,
        /// Tangent (floats).
        tan => Tan,
        /// `e^x` (floats).
        exp => Exp,
        /// Natural logarithm.
        log => Log,
        /// `log(1 + x)`, accurate near 0 (floats).
        log1p => Log1p,
        /// `exp(x) - 1`, accurate near 0 (floats).
        expm1 => Expm1,
        /// Hyperbolic tangent (floats).
        tanh => Tanh,
        /// `1 / (1 + exp(-x))`.
        logistic => Logistic,
        /// Square root (floats).
        sqrt => Sqrt,
        /// `1 / sqrt(x)`.
        rsqrt => Rsqrt,
        /// Absolute value.
        abs => Abs,
        /// -1, 0 or 1 by the sign of `x` (NaN for NaN).
        sign => Sign,
        /// Rounds down to an integer value (floats).
        floor => Floor,
        /// Rounds up to an integer value (floats).
        ceil => Ceil,
        /// Rounds half away from zero.
        round => Round,
        /// The error function (floats).
        erf => Erf,
        /// Inverse sine (`jnp.arcsin`).
        asin => Asin,
        /// Inverse cosine (`jnp.arccos`).
        acos => Acos,
        /// Inverse tangent (`jnp.arctan`).
        atan => Atan,
        /// Inverse hyperbolic sine.
        asinh => Asinh,
        /// Inverse hyperbolic cosine.
        acosh => Acosh,
        /// Inverse hyperbolic tangent.
        atanh => Atanh,
    }

    binary_methods! {
        /// `x^y` elementwise (floats).
        pow => Pow,
        /// Elementwise maximum (NaN-propagating).
        maximum => Max,
        /// Elementwise minimum (NaN-propagating).
        minimum => Min,
        /// `atan2(self, other)`: the angle of the point `(other, self)`.
        atan2 => Atan2,
        /// `self == other` elementwise (bool).
        equal => Eq,
        /// `self != other` elementwise (bool).
        not_equal => Ne,
        /// `self < other` elementwise (bool).
        less => Lt,
        /// `self <= other` elementwise (bool).
        less_equal => Le,
        /// `self > other` elementwise (bool).
        greater => Gt,
        /// `self >= other` elementwise (bool).
        greater_equal => Ge,
        /// Remainder with the sign of `self` (`jnp.fmod`, `lax.rem`; also the `%` operator).
        /// An integer remainder by zero is `self`.
        rem => Rem,
    }

    /// `x^n` for a static integer `n` (the `integer_pow` primitive).
    #[track_caller]
    pub fn powi(&self, n: i32) -> Tensor {
        bind(Primitive::IntegerPow { y: n }, &[self], SourceLoc::caller())
    }

    /// Converts to another dtype (the `convert_element_type` primitive).
    #[track_caller]
    pub fn astype(&self, dtype: DType) -> Tensor {
        bind(
            Primitive::ConvertElementType { new_dtype: dtype },
            &[self],
            SourceLoc::caller(),
        )
    }

    /// `on_true` where `cond` holds, else `on_false`, with broadcasting; Rust numbers take
    /// the other branch's dtype.
    #[track_caller]
    pub fn where_(
        cond: &Tensor,
        on_true: impl Into<Operand>,
        on_false: impl Into<Operand>,
    ) -> Tensor {
        let loc = SourceLoc::caller();
        let op = "where";
        let (t, f) = try_t!(weak_pair(op, on_true.into(), on_false.into()), loc);
        if let Some(e) = [cond, &t, &f].iter().find_map(|x| x.error()) {
            return Tensor::failed(e.clone());
        }
        let shape = try_t!(
            broadcast_shapes(op, cond.shape(), t.shape()).and_then(|s| broadcast_shapes(
                op,
                &s,
                f.shape()
            )),
            loc
        );
        let (c, t, f) = (
            cond.broadcast_to_at(&shape, loc),
            t.broadcast_to_at(&shape, loc),
            f.broadcast_to_at(&shape, loc),
        );
        bind(Primitive::Select, &[&c, &t, &f], loc)
    }
}

impl Tensor {
    /// Remainder of floor division, with the sign of `other` (`jnp.remainder`, Python's
    /// `%`): `rem` moved by one `other` where the signs differ. (`rem` and the `%` operator
    /// follow Rust and C: the sign of `self`.)
    #[track_caller]
    pub fn remainder(&self, other: impl Into<Operand>) -> Tensor {
        let loc = SourceLoc::caller();
        let (x, y) = try_t!(
            weak_pair("remainder", self.clone().into(), other.into()),
            loc
        );
        let r = x.rem(&y);
        let zero = Tensor::zeros(&[], try_t!(r.aval(), loc).dtype);
        let differ = r.less(&zero).not_equal(y.less(&zero));
        let moved = r.not_equal(&zero).logical_and(&differ);
        Tensor::where_(&moved, &r + &y, &r)
    }

    /// The truth of each element: itself for bools, `!= 0` otherwise.
    #[track_caller]
    fn truth(&self) -> Tensor {
        match self.dtype() {
            Some(DType::Bool) | None => self.clone(),
            Some(_) => self.not_equal(0i64),
        }
    }

    /// Elementwise `and` of the elements' truth (`jnp.logical_and`), broadcasting.
    #[track_caller]
    pub fn logical_and(&self, other: &Tensor) -> Tensor {
        Tensor::where_(&self.truth(), other.truth(), Tensor::scalar(false))
    }

    /// Elementwise `or` of the elements' truth (`jnp.logical_or`), broadcasting.
    #[track_caller]
    pub fn logical_or(&self, other: &Tensor) -> Tensor {
        Tensor::where_(&self.truth(), Tensor::scalar(true), other.truth())
    }

    /// Elementwise `xor` of the elements' truth (`jnp.logical_xor`), broadcasting.
    #[track_caller]
    pub fn logical_xor(&self, other: &Tensor) -> Tensor {
        self.truth().not_equal(other.truth())
    }

    /// Elementwise `not` of the elements' truth (`jnp.logical_not`).
    #[track_caller]
    pub fn logical_not(&self) -> Tensor {
        self.truth().equal(Tensor::scalar(false))
    }
}

macro_rules! operator {
    ($trait:ident, $method:ident, $prim:ident) => {
        impl<R: Into<Operand>> ops::$trait<R> for Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: R) -> Tensor {
                binary(Primitive::$prim, self.into(), rhs.into(), SourceLoc::caller())
            }
        }
        impl<R: Into<Operand>> ops::$trait<R> for &Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: R) -> Tensor {
                binary(Primitive::$prim, self.into(), rhs.into(), SourceLoc::caller())
            }
        }
        // f64 and i64 only: with f32 and i32 too, an unsuffixed literal on the left
        // (`1.0 - x`) would no longer infer its type, and `(1.0 - x).exp()` would not compile
        operator!(@scalar $trait, $method, $prim, f64, i64);
    };
    (@scalar $trait:ident, $method:ident, $prim:ident, $($s:ty),*) => {
        $(
            impl ops::$trait<Tensor> for $s {
                type Output = Tensor;
                #[track_caller]
                fn $method(self, rhs: Tensor) -> Tensor {
                    binary(Primitive::$prim, self.into(), rhs.into(), SourceLoc::caller())
                }
            }
            impl ops::$trait<&Tensor> for $s {
                type Output = Tensor;
                #[track_caller]
                fn $method(self, rhs: &Tensor) -> Tensor {
                    binary(Primitive::$prim, self.into(), rhs.into(), SourceLoc::caller())
                }
            }
        )*
    };
}
operator!(Add, add, Add);
operator!(Sub, sub, Sub);
operator!(Mul, mul, Mul);
operator!(Div, div, Div);
operator!(Rem, rem, Rem);

impl ops::Neg for Tensor {
    type Output = Tensor;
    #[track_caller]
    fn neg(self) -> Tensor {
        bind(Primitive::Neg, &[&self], SourceLoc::caller())
    }
}

impl ops::Neg for &Tensor {
    type Output = Tensor;
    #[track_caller]
    fn neg(self) -> Tensor {
        bind(Primitive::Neg, &[self], SourceLoc::caller())
    }
}

/// `where_(cond, on_true, on_false)`: see [`Tensor::where_`].
///
/// ```
/// use ferrax::{grad, where_, Tensor};
/// let x = Tensor::from_vec(vec![-2.0f64, 3.0], &[2]);
/// let relu = |x: Tensor| where_(&x.greater(Tensor::scalar(0.0f64)), &x, 0.0);
/// assert_eq!(relu(x.clone()).to_vec::<f64>().unwrap(), vec![0.0, 3.0]);
/// // the gradient flows through the branch taken
/// let g = grad(|x: Tensor| relu(x).sum_all(), &x).unwrap();
/// assert_eq!(g.to_vec::<f64>().unwrap(), vec![0.0, 1.0]);
/// ```
#[track_caller]
pub fn where_(cond: &Tensor, on_true: impl Into<Operand>, on_false: impl Into<Operand>) -> Tensor {
    Tensor::where_(cond, on_true, on_false)
}
