//! Tracing: staging Rust closures into programs.
//!
//! The first stage of the pipeline. [`Tensor`] is what user closures see (`tensor`); a
//! thread-local stack of traces in progress records what they do (`stack`: `bind`,
//! closure conversion, `trace_flat`/`trace_tree`, `Program::call`); trees of tensors are the
//! inputs and outputs of transformed functions (`tree`); `emit` is how transformation rules
//! bind primitives at the source location of the equation they transform. Tensors and the
//! trace stack know each other (a traced tensor names its trace; binding makes tensors):
//! that knot is intrinsic and stays inside this folder.

pub(crate) mod emit;
pub(crate) mod stack;
pub(crate) mod tensor;
pub(crate) mod tree;

pub(crate) use self::emit::*;
pub(crate) use self::stack::*;
pub(crate) use self::tensor::*;
pub(crate) use self::tree::*;
