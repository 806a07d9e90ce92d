//! Linearization: `linearize` and the first-class [`LinearMap`].
//!
//! The centre of ferrax (JAX issue #526). `linearize(f, x)` traces `f`, runs the jvp pass,
//! splits the result by partial evaluation (`partial_eval`), runs the primal half once, and
//! returns `f(x)` with a [`LinearMap`]: the linear half plus the residuals it reads. Applying
//! the map to a tangent runs only the linear program, never a nonlinear primitive, and
//! reuses the stored residuals; the map can be applied as often as tangents arrive, printed,
//! measured, and applied inside other transformations. Transposition (reverse mode) and
//! batching of the map come with the next passes.

use std::fmt;
use std::sync::Arc;

use crate::dtype::Aval;
use crate::error::{Error, Result};
use crate::jvp::jvp_program;
use crate::partial_eval::{partial_eval, ResidualSource, Split};
use crate::program::Program;
use crate::tensor::Tensor;
use crate::trace::{leaf_avals, trace_tree};
use crate::tree::{flatten, unflatten, Tree, TreeDef};

struct Inner {
    /// Inputs: residuals, then one per tangent leaf; outputs: one per output tangent leaf.
    program: Program,
    residuals: Vec<Tensor>,
    /// How many residuals were forwarded primal inputs or outputs rather than computed.
    forwarded: usize,
    in_def: TreeDef,
    in_avals: Vec<Aval>,
    out_def: TreeDef,
    out_avals: Vec<Aval>,
}

/// A linear map `T a ⊸ T b`: a linear program and the residuals it reads. Cheap to clone
/// (shared).
#[derive(Clone)]
pub struct LinearMap {
    inner: Arc<Inner>,
}

impl LinearMap {
    /// Applies the map to a tangent tree with the structure, shapes and dtypes of the
    /// primal inputs; returns a tree shaped like the outputs. Runs the linear program only.
    /// Inside a trace in progress it records the linear program there.
    #[track_caller]
    pub fn apply<T: Tree, U: Tree>(&self, tangent: &T) -> Result<U> {
        let (leaves, def) = flatten(tangent);
        if def != self.inner.in_def {
            return Err(Error::Tree {
                op: "LinearMap::apply".into(),
                msg: format!(
                    "the tangent has structure {def:?}, the map takes {:?}",
                    self.inner.in_def
                ),
            });
        }
        let outs = self.apply_flat(&leaves)?;
        unflatten(&self.inner.out_def, outs)
    }

    /// Applies the map to flat tangent leaves.
    #[track_caller]
    pub fn apply_flat(&self, tangents: &[Tensor]) -> Result<Vec<Tensor>> {
        let inner = &self.inner;
        if tangents.len() != inner.in_avals.len() {
            return Err(Error::input(
                "LinearMap::apply",
                format!(
                    "the map takes {} tangent(s), {} given",
                    inner.in_avals.len(),
                    tangents.len()
                ),
            ));
        }
        for (i, (t, want)) in tangents.iter().zip(&inner.in_avals).enumerate() {
            let got = t.aval()?;
            if got != *want {
                return Err(Error::input(
                    "LinearMap::apply",
                    format!("tangent {i} must be {want}, got {got}"),
                ));
            }
        }
        let mut args = inner.residuals.clone();
        args.extend_from_slice(tangents);
        inner.program.call(&args)
    }

    /// The linear program: inputs are the residuals, then the tangents.
    pub fn program(&self) -> &Program {
        &self.inner.program
    }

    /// The stored residuals, in the order of the program's leading inputs.
    pub fn residuals(&self) -> &[Tensor] {
        &self.inner.residuals
    }

    /// Number of residuals the map holds.
    pub fn num_residuals(&self) -> usize {
        self.inner.residuals.len()
    }

    /// Number of residuals that are the function's own inputs or outputs, held by
    /// reference rather than computed for the map.
    pub fn num_forwarded(&self) -> usize {
        self.inner.forwarded
    }

    /// Bytes of all residuals the map keeps alive.
    pub fn residual_bytes(&self) -> usize {
        self.inner
            .residuals
            .iter()
            .map(|r| r.aval().map(|a| a.bytes()).unwrap_or(0))
            .sum()
    }

    /// Avals of the tangent leaves the map takes.
    pub fn in_avals(&self) -> &[Aval] {
        &self.inner.in_avals
    }

    /// Avals of the leaves it returns.
    pub fn out_avals(&self) -> &[Aval] {
        &self.inner.out_avals
    }
}

impl fmt::Display for LinearMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.inner.program)
    }
}

impl fmt::Debug for LinearMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LinearMap({} residuals, {} bytes)\n{}",
            self.num_residuals(),
            self.residual_bytes(),
            self.inner.program
        )
    }
}

/// Linearizes a program: the jvp program split into primal work and a linear program.
/// Tangents are taken for every input.
pub fn linearize_program(p: &Program) -> Result<Split> {
    let with_tangent: Vec<bool> = vec![true; p.inputs.len()];
    let j = jvp_program(p, &with_tangent)?;
    Ok(partial_eval(&j, p.inputs.len(), p.outputs.len()))
}

/// `f(primals)` and the linear map of `f` at `primals` (the pushforward), computed with one
/// pass of primal work; applying the map later does no primal work at all.
///
/// ```
/// use ferrax::{linearize, Tensor};
/// let f = |x: Tensor| 3.0 * x.sin() + (&x / 2.0).cos();
/// let (y, f_jvp) = linearize(f, &Tensor::scalar(2.0f64)).unwrap();
/// let d1: Tensor = f_jvp.apply(&Tensor::scalar(1.0f64)).unwrap();
/// let d3: Tensor = f_jvp.apply(&Tensor::scalar(3.0f64)).unwrap();
/// assert!((d3.item().unwrap() - 3.0 * d1.item().unwrap()).abs() < 1e-14);
/// ```
#[track_caller]
pub fn linearize<I: Tree, O: Tree>(f: impl FnOnce(I) -> O, primals: &I) -> Result<(O, LinearMap)> {
    let (leaves, in_def) = flatten(primals);
    let in_avals = leaf_avals(&leaves)?;
    let traced = trace_tree(f, &in_def, &in_avals)?;
    let p = &traced.program;
    let n_explicit = leaves.len();
    // Tangents for the function's own inputs; captured values are constants (zero tangent).
    let with_tangent: Vec<bool> = (0..p.inputs.len()).map(|i| i < n_explicit).collect();
    let j = jvp_program(p, &with_tangent)?;
    let split = partial_eval(&j, p.inputs.len(), p.outputs.len());
    let mut primal_args = leaves;
    primal_args.extend(traced.captured);
    let primal_outs = split.primal.call(&primal_args)?;
    let mut forwarded = 0;
    let residuals = split
        .residuals
        .iter()
        .map(|r| match *r {
            ResidualSource::Input(i) => {
                forwarded += 1;
                primal_args[i].clone()
            }
            ResidualSource::Output(k) => {
                if k < split.n_outputs {
                    forwarded += 1;
                }
                primal_outs[k].clone()
            }
        })
        .collect();
    let outs: Vec<Tensor> = primal_outs[..split.n_outputs].to_vec();
    let out_avals = p.out_avals();
    let map = LinearMap {
        inner: Arc::new(Inner {
            program: split.linear,
            residuals,
            forwarded,
            in_def,
            in_avals,
            out_def: traced.out_def.clone(),
            out_avals,
        }),
    };
    Ok((unflatten(&traced.out_def, outs)?, map))
}
