//! The data of a fused elementwise group: its steps, where they read their operands, what
//! it keeps and reduces.
//!
//! Sits under both `fuse` (which makes groups) and `codegen` (which compiles them), so the
//! two need not import each other.

use crate::backend::cpu::dispatch::Binary;
use crate::backend::cpu::math::Unary;
use crate::ir::DType;

/// What one step of a group computes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum GroupOp {
    Unary(Unary),
    Binary(Binary),
    /// A broadcast whose operand the group generates per chunk (`Src::Tiled`/`Repeated`).
    Broadcast,
}

/// Where a group step reads an operand from.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Src {
    /// An array given to the group (index into its inputs), the group's full size.
    Input(usize),
    /// An earlier step of the same group.
    Step(usize),
    /// An input repeated along leading dimensions: element i is `input[i % period]`.
    Tiled(usize, usize),
    /// An input whose elements are each repeated along trailing dimensions: element i is
    /// `input[i / run]`.
    Repeated(usize, usize),
}

#[derive(Clone, Debug)]
pub(crate) struct GroupStep {
    pub op: GroupOp,
    pub srcs: Vec<Src>,
}

/// A fused run of elementwise steps.
#[derive(Clone, Debug)]
pub(crate) struct Group {
    pub steps: Vec<GroupStep>,
    /// For every step: whether its value is needed after the group (then written out).
    pub keep: Vec<bool>,
    pub size: usize,
    pub dtype: DType,
    /// The shape of every step's output.
    pub shapes: Vec<Vec<usize>>,
    /// Reductions of every element of a step's values (`.1`): the group's last outputs.
    pub reduce: Vec<(Reduction, usize)>,
    /// A matrix-vector product of one of its values, taken into the group: its last output.
    pub rows: Option<RowProduct>,
}

/// The product of a group's value, a matrix of `cols` columns with its rows contiguous, by a
/// vector (an input of the group), computed chunk by chunk of whole rows while the chunk is
/// in cache: the value itself, read by nothing else, is never written out (an activation
/// `tanh(x W + b)` times the next layer's weight vector).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RowProduct {
    /// The step whose values are the matrix.
    pub value: usize,
    pub cols: usize,
    /// The input that is the vector.
    pub vector: usize,
}

/// A reduction a group can end with.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Reduction {
    Sum,
    Max,
    Min,
}
