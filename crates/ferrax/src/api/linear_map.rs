//! Linearization: `linearize` and the first-class [`LinearMap`].
//!
//! The centre of ferrax (JAX issue #526). `linearize(f, x)` traces `f`, runs the jvp pass,
//! splits the result by partial evaluation (`partial_eval`), runs the primal half once (a
//! `while` loop's live prefix twice: its steps are counted first, `while_tape.rs`), and
//! returns `f(x)` with a [`LinearMap`]: the linear half plus the residuals it reads. Applying
//! the map to a tangent runs only the linear program, never a nonlinear primitive, and
//! reuses the stored residuals; the map can be applied as often as tangents arrive, printed,
//! measured, applied inside other transformations, and **transposed** without
//! re-linearizing or re-tracing: the transposed map shares the same residuals, its program
//! is the transpose pass (`transpose`) applied to the linear program once, and transposing
//! again gives back the very same map.

use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::api::while_tape::loops_as_scans;
use crate::backend::Plan;
use crate::ir::{Array, Aval, Error, Program, Result, SourceLoc};
use crate::passes::{
    check_linear, jvp_program, jvp_program_checked, partial_eval, transpose_program,
    ResidualSource, Split,
};
use crate::trace::{
    fail, flatten, is_tracing, leaf_avals, trace_tree, unflatten, Tensor, Tree, TreeDef,
};

/// The code of a linear map, shareable between maps that differ only in their residuals
/// (as the maps a jitted linearization returns do).
pub(crate) struct LinearCode {
    /// Inputs: residuals, then one per tangent leaf; outputs: one per output tangent leaf.
    program: Program,
    /// The transpose of `program` (residuals, then one cotangent per output leaf, to one
    /// cotangent per input leaf), made on the first `transpose`.
    transposed: OnceLock<Program>,
    /// Compiled plans of the two programs, made on first concrete use.
    plan: OnceLock<Plan>,
    transposed_plan: OnceLock<Plan>,
}

impl LinearCode {
    pub(crate) fn new(program: Program) -> Arc<LinearCode> {
        Arc::new(LinearCode {
            program,
            transposed: OnceLock::new(),
            plan: OnceLock::new(),
            transposed_plan: OnceLock::new(),
        })
    }
}

struct Inner {
    code: Arc<LinearCode>,
    residuals: Vec<Tensor>,
    /// Bytes of the buffers that only this map held when it was made (`added_bytes`).
    added: usize,
    /// How many residuals were forwarded primal inputs or outputs rather than computed.
    forwarded: usize,
    in_def: TreeDef,
    in_avals: Vec<Aval>,
    out_def: TreeDef,
    out_avals: Vec<Aval>,
}

/// A linear map `T a ⊸ T b`: a linear program and the residuals it reads, or the transpose
/// of one (`T b ⊸ T a`). Cheap to clone (shared).
#[derive(Clone)]
pub struct LinearMap {
    inner: Arc<Inner>,
    /// Whether this is the transpose of `inner.program`.
    transposed: bool,
}

impl LinearMap {
    fn new(program: Program, residuals: Vec<Tensor>, forwarded: usize, defs: Defs) -> LinearMap {
        LinearMap::with_code(LinearCode::new(program), residuals, forwarded, defs)
    }

    pub(crate) fn with_code(
        code: Arc<LinearCode>,
        residuals: Vec<Tensor>,
        forwarded: usize,
        defs: Defs,
    ) -> LinearMap {
        let added = added_bytes(&code.program, &residuals);
        LinearMap {
            inner: Arc::new(Inner {
                code,
                residuals,
                added,
                forwarded,
                in_def: defs.0,
                in_avals: defs.1,
                out_def: defs.2,
                out_avals: defs.3,
            }),
            transposed: false,
        }
    }

    /// The transposed map (`T b ⊸ T a`): same residuals, no re-linearization, no
    /// re-tracing. Transposing twice gives back this map. An error if the map's program is
    /// not linear (possible only for maps built from user functions).
    ///
    /// ```
    /// use ferrax::{linearize, Tensor};
    /// let (_, j) = linearize(|x: Tensor| x.sin(), &Tensor::scalar(0.5f64)).unwrap();
    /// let jt = j.transpose().unwrap();
    /// let ct: Tensor = jt.apply(&Tensor::scalar(1.0f64)).unwrap();
    /// assert_eq!(ct.item().unwrap(), 0.5f64.cos());
    /// assert!(jt.transpose().unwrap().same_map(&j));
    /// ```
    pub fn transpose(&self) -> Result<LinearMap> {
        let code = &self.inner.code;
        if !self.transposed && code.transposed.get().is_none() {
            let t = transpose_program(&code.program, self.inner.residuals.len())?;
            let _ = code.transposed.set(t);
        }
        Ok(LinearMap {
            inner: self.inner.clone(),
            transposed: !self.transposed,
        })
    }

    /// Whether two maps are the same map in the same direction (sharing program and
    /// residuals), as a map and the transpose of its transpose are.
    pub fn same_map(&self, other: &LinearMap) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner) && self.transposed == other.transposed
    }

    /// Whether this map is the transpose of a linearized (or declared linear) function.
    pub fn is_transposed(&self) -> bool {
        self.transposed
    }

    pub(crate) fn in_def(&self) -> &TreeDef {
        if self.transposed {
            &self.inner.out_def
        } else {
            &self.inner.in_def
        }
    }

    pub(crate) fn out_def(&self) -> &TreeDef {
        if self.transposed {
            &self.inner.in_def
        } else {
            &self.inner.out_def
        }
    }

    /// Applies the map to a tangent tree with the structure, shapes and dtypes of the
    /// primal inputs; returns a tree shaped like the outputs. Runs the linear program only.
    /// Inside a trace in progress it records the linear program there.
    #[track_caller]
    pub fn apply<T: Tree, U: Tree>(&self, tangent: &T) -> Result<U> {
        let loc = SourceLoc::caller();
        let (leaves, def) = flatten(tangent);
        if def != *self.in_def() {
            return Err(Error::Tree {
                op: "LinearMap::apply".into(),
                msg: format!(
                    "the argument has structure {def:?}, the map takes {:?}",
                    self.in_def()
                ),
                loc: Some(loc),
            });
        }
        let outs = self.apply_flat(&leaves)?;
        unflatten(self.out_def(), outs).map_err(|e| e.with_loc(loc))
    }

    /// Applies the map to a whole batch at once: every leaf of `batch` carries the batch
    /// along axis 0, and so does every leaf of the result. The same as applying the map to
    /// each slice and stacking, computed as one batched linear program (a batch of
    /// matrix-vector products becomes one matrix-matrix product).
    ///
    /// ```
    /// use ferrax::{linearize, Array, Tensor};
    /// let w = Tensor::new(Array::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap());
    /// let (_, lin) = linearize(|x: Tensor| w.matmul(&x), &Tensor::zeros(&[2], ferrax::DType::F64)).unwrap();
    /// let ts = Tensor::new(Array::from_vec(vec![1.0f64, 0.0, 0.0, 1.0, 1.0, 1.0], &[3, 2]).unwrap());
    /// let ys: Tensor = lin.apply_batch(&ts).unwrap();
    /// assert_eq!(ys.to_vec::<f64>().unwrap(), vec![1.0, 3.0, 2.0, 4.0, 3.0, 7.0]);
    /// ```
    #[track_caller]
    pub fn apply_batch<T: Tree, U: Tree>(&self, batch: &T) -> Result<U> {
        crate::api::vmap(
            |t: T| -> U {
                match self.apply::<T, U>(&t) {
                    Ok(u) => u,
                    Err(e) => {
                        // Record the error in the vmap's trace and return failed leaves of
                        // the right structure, so vmap reports it.
                        let failed = fail(e);
                        let leaves = vec![failed; self.out_def().num_leaves()];
                        unflatten(self.out_def(), leaves).expect("leaf count matches")
                    }
                }
            },
            batch,
        )
    }

    /// Applies the map to flat tangent leaves.
    #[track_caller]
    pub fn apply_flat(&self, tangents: &[Tensor]) -> Result<Vec<Tensor>> {
        let loc = SourceLoc::caller();
        self.apply_flat_at(tangents, loc)
            .map_err(|e| e.with_loc(loc))
    }

    fn apply_flat_at(&self, tangents: &[Tensor], loc: SourceLoc) -> Result<Vec<Tensor>> {
        let what = if self.transposed {
            "cotangent"
        } else {
            "tangent"
        };
        let want_avals = self.in_avals();
        if tangents.len() != want_avals.len() {
            return Err(Error::input(
                "LinearMap::apply",
                format!(
                    "the map takes {} {what}(s), {} given",
                    want_avals.len(),
                    tangents.len()
                ),
            ));
        }
        for (i, (t, want)) in tangents.iter().zip(want_avals).enumerate() {
            let got = t.aval()?;
            if got != *want {
                return Err(Error::input(
                    "LinearMap::apply",
                    format!("{what} {i} must be {want}, got {got}"),
                ));
            }
        }
        let mut args = self.inner.residuals.clone();
        args.extend_from_slice(tangents);
        // Concrete arguments outside any trace: run the cached compiled plan.
        if !is_tracing() && args.iter().all(|t| !t.is_traced() && t.error().is_none()) {
            let code = &self.inner.code;
            let cell = if self.transposed {
                &code.transposed_plan
            } else {
                &code.plan
            };
            let plan = cell.get_or_init(|| Plan::from_checked(self.program()));
            let arrays = args.iter().map(|t| t.array()).collect::<Result<Vec<_>>>()?;
            return Ok(plan.run(arrays)?.into_iter().map(Tensor::new).collect());
        }
        self.program().call_at(&args, loc)
    }

    /// This (untransposed) map with its argument's structure replaced by `in_def` (the same
    /// leaves) and only its first `n_out` output leaves kept, of structure `out_def`: how
    /// `has_aux` drops the aux outputs and `argnums` names the chosen positions.
    pub(crate) fn restructured(
        &self,
        in_def: TreeDef,
        n_out: usize,
        out_def: TreeDef,
    ) -> Result<LinearMap> {
        let inner = &self.inner;
        if self.transposed
            || in_def.num_leaves() != inner.in_avals.len()
            || out_def.num_leaves() != n_out
            || n_out > inner.out_avals.len()
        {
            return Err(Error::internal(
                "LinearMap::restructured: structures disagree",
            ));
        }
        let mut p = inner.code.program.clone();
        p.outputs.truncate(n_out);
        let defs = (
            in_def,
            inner.in_avals.clone(),
            out_def,
            inner.out_avals[..n_out].to_vec(),
        );
        Ok(LinearMap::new(
            p.dce(),
            inner.residuals.clone(),
            inner.forwarded,
            defs,
        ))
    }

    /// The program this map runs: inputs are the residuals, then the map's arguments.
    pub fn program(&self) -> &Program {
        if self.transposed {
            self.inner
                .code
                .transposed
                .get()
                .expect("made when the transposed map was made")
        } else {
            &self.inner.code.program
        }
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

    /// Bytes of every array the map keeps alive, each buffer counted once: its residuals
    /// and the constants of its program (a weight the function captured, say). Compare
    /// [`residual_bytes`](Self::residual_bytes), which counts the residuals only.
    ///
    /// ```
    /// use ferrax::{linearize, Tensor};
    /// let w = Tensor::random_normal(1, &[256, 256], ferrax::DType::F64);
    /// let (_, lin) = linearize(|x: Tensor| w.matmul(&x).tanh(), &Tensor::zeros(&[256], ferrax::DType::F64)).unwrap();
    /// // the map keeps the captured weight alive, but it is the caller's: nothing added
    /// assert!(lin.kept_bytes() >= 256 * 256 * 8);
    /// assert!(lin.added_bytes() < 8 * 1024);
    /// ```
    pub fn kept_bytes(&self) -> usize {
        held_buffers(&self.inner.code.program, &self.inner.residuals)
            .iter()
            .map(|(bytes, _, _)| bytes)
            .sum()
    }

    /// Bytes the map added to what existed without it: those of [`kept_bytes`](Self::kept_bytes)
    /// whose buffers nothing but the map held when it was made (residuals it computed,
    /// constants made while tracing). Inputs and outputs it forwards, and values the function
    /// captured, are the caller's and do not count; nor do the constants a jitted
    /// linearization's maps share with each other. Dropping the map frees at most this much
    /// (and more if the caller has since dropped what it shared).
    pub fn added_bytes(&self) -> usize {
        self.inner.added
    }

    /// Avals of the leaves the map takes.
    pub fn in_avals(&self) -> &[Aval] {
        if self.transposed {
            &self.inner.out_avals
        } else {
            &self.inner.in_avals
        }
    }

    /// Avals of the leaves it returns.
    pub fn out_avals(&self) -> &[Aval] {
        if self.transposed {
            &self.inner.in_avals
        } else {
            &self.inner.out_avals
        }
    }
}

/// Input structure and avals, output structure and avals.
pub(crate) type Defs = (TreeDef, Vec<Aval>, TreeDef, Vec<Aval>);

/// Every buffer a map's residuals and program constants (sub-programs included) hold, each
/// once: (bytes, how many times the map refers to it, how many arrays hold it now). Linear
/// in their number (a map of a long program holds thousands), by buffer identity.
fn held_buffers(program: &Program, residuals: &[Tensor]) -> Vec<(usize, usize, usize)> {
    use std::collections::hash_map::{Entry, HashMap};
    let mut index: HashMap<usize, usize> = HashMap::new();
    let mut seen: Vec<(usize, usize, usize)> = Vec::new();
    let arrays = residuals
        .iter()
        .filter_map(Tensor::concrete_array)
        .chain(all_consts(program));
    for a in arrays {
        match index.entry(a.buffer_id()) {
            Entry::Occupied(k) => seen[*k.get()].1 += 1,
            Entry::Vacant(k) => {
                k.insert(seen.len());
                seen.push((a.aval().bytes(), 1, a.buffer_holders()));
            }
        }
    }
    seen
}

/// Bytes of the buffers nobody but these residuals and this program holds (at this moment).
fn added_bytes(program: &Program, residuals: &[Tensor]) -> usize {
    held_buffers(program, residuals)
        .into_iter()
        .filter(|&(_, refs, holders)| holders <= refs)
        .map(|(bytes, _, _)| bytes)
        .sum()
}

/// The constants of a program and of its sub-programs.
fn all_consts(p: &Program) -> Vec<&crate::ir::Array> {
    let mut out: Vec<&crate::ir::Array> = p.consts.iter().map(|(_, a)| a).collect();
    for e in &p.eqns {
        for q in e.prim.subprograms() {
            out.extend(all_consts(q));
        }
    }
    out
}

impl fmt::Display for LinearMap {
    /// Comment lines (program text skips them) with the map's memory and which inputs are
    /// residuals and which tangents (cotangents, transposed), then its program.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "# linear map: {} residual(s) of {} bytes ({} forwarded); keeps {} bytes alive, adds {}",
            self.num_residuals(),
            self.residual_bytes(),
            self.num_forwarded(),
            self.kept_bytes(),
            self.added_bytes()
        )?;
        let text = self.program().to_string();
        // the inputs' names as printed: `{ lambda ; a:f64[] b:f64[] . let`
        let names: Vec<&str> = text
            .split_once(';')
            .and_then(|(_, rest)| rest.split_once(" ."))
            .map(|(ins, _)| {
                ins.split_whitespace()
                    .filter_map(|v| v.split(':').next())
                    .collect()
            })
            .unwrap_or_default();
        let k = self.num_residuals().min(names.len());
        let list = |v: &[&str]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(" ")
            }
        };
        writeln!(
            f,
            "# inputs: residuals {}; {} {}",
            list(&names[..k]),
            if self.transposed {
                "cotangents"
            } else {
                "tangents"
            },
            list(&names[k..])
        )?;
        write!(f, "{text}")
    }
}

impl fmt::Debug for LinearMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LinearMap({} residuals, {} bytes; keeps {} bytes alive, adds {})\n{}",
            self.num_residuals(),
            self.residual_bytes(),
            self.kept_bytes(),
            self.added_bytes(),
            self.program()
        )
    }
}

/// Linearizes a program: the jvp program split into primal work and a linear program.
/// Tangents are taken for every input.
pub fn linearize_program(p: &Program) -> Result<Split> {
    let with_tangent: Vec<bool> = vec![true; p.inputs.len()];
    let j = jvp_program(p, &with_tangent)?;
    partial_eval(&j, p.inputs.len(), p.outputs.len())
}

/// `f(primals)` and the linear map of `f` at `primals` (the pushforward), computed with one
/// pass of primal work (two up to the last top-level `while` loop, whose steps are counted
/// first); applying the map later does no primal work at all (except through a loop with
/// `max_checkpoints`, which recomputes its carries).
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
    let n_explicit = leaves.len();
    let mut primal_args = leaves;
    primal_args.extend(traced.captured);
    // on arrays, a while loop's trip count is found first and the loop linearized as a scan
    // of that many steps: a tape of residuals rather than a recomputation (`while_tape.rs`)
    let arrays: Option<Vec<Array>> = match is_tracing() {
        true => None,
        false => primal_args
            .iter()
            .map(|t| t.concrete_array().cloned())
            .collect(),
    };
    let counted = match arrays {
        Some(a) => loops_as_scans(&traced.program, &a, SourceLoc::caller())?,
        None => None,
    };
    let p = counted.as_ref().unwrap_or(&traced.program);
    // Tangents for the function's own inputs; captured values are constants (zero tangent).
    let with_tangent: Vec<bool> = (0..p.inputs.len()).map(|i| i < n_explicit).collect();
    let j = jvp_program_checked(p, &with_tangent)?;
    let split = partial_eval(&j, p.inputs.len(), p.outputs.len())?;
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
    let defs = (in_def, in_avals, traced.out_def.clone(), p.out_avals());
    let outs: O = unflatten(&traced.out_def, outs)?;
    // the temporaries go first, so that the map counts as added only what it alone holds
    let linear = split.linear;
    drop((
        split.primal,
        j,
        traced.program,
        counted,
        primal_args,
        primal_outs,
    ));
    let map = LinearMap::new(linear, residuals, forwarded, defs);
    Ok((outs, map))
}

/// The linear map of a function the caller declares linear, at arguments shaped like
/// `example` (their values are not used). Values the function captures from an enclosing
/// trace become the map's residuals. An error names the primitive and source line if the
/// function is not linear: a product of inputs (`x * x`), a nonlinear function of an input,
/// or an added constant (`x + 1`, which is affine; JAX would silently drop the constant).
///
/// ```
/// use ferrax::{linear_map, Tensor};
/// let a = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[2, 2]);
/// let m = linear_map(|x: Tensor| a.matmul(&x) * 2.0, &Tensor::zeros(&[2], ferrax::DType::F64)).unwrap();
/// let y: Tensor = m.apply(&Tensor::from_vec(vec![1.0f64, 1.0], &[2])).unwrap();
/// assert_eq!(y.to_vec::<f64>().unwrap(), vec![6.0, 14.0]);
/// // affine is not linear: an error, not a silently dropped constant
/// assert!(linear_map(|x: Tensor| x + 1.0, &Tensor::scalar(0.0f64)).is_err());
/// ```
#[track_caller]
pub fn linear_map<I: Tree, O: Tree>(f: impl FnOnce(I) -> O, example: &I) -> Result<LinearMap> {
    let (leaves, in_def) = flatten(example);
    let in_avals = leaf_avals(&leaves)?;
    let traced = trace_tree(f, &in_def, &in_avals)?;
    let mut p = traced.program;
    // Residuals (the captured values) first, then the linear inputs.
    let n = leaves.len();
    let mut inputs = p.inputs.split_off(n);
    inputs.extend(p.inputs);
    p.inputs = inputs;
    let n_res = traced.captured.len();
    check_linear(&p, n_res)?;
    let defs = (in_def, in_avals, traced.out_def, p.out_avals());
    Ok(LinearMap::new(p, traced.captured, 0, defs))
}

/// The transpose of a function the caller declares linear (see [`linear_map`]).
///
/// ```
/// use ferrax::{linear_transpose, Array, Tensor};
/// let a = Tensor::new(Array::from_vec(vec![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap());
/// let at = linear_transpose(|x: Tensor| a.matmul(&x), &Tensor::zeros(&[3], ferrax::DType::F64)).unwrap();
/// let y: Tensor = at.apply(&Tensor::new(Array::from_slice(&[1.0f64, 1.0]))).unwrap();
/// assert_eq!(y.to_vec::<f64>().unwrap(), vec![5.0, 7.0, 9.0]);
/// assert!(linear_transpose(|x: Tensor| &x + 1.0, &Tensor::scalar(0.0f64)).is_err());
/// ```
#[track_caller]
pub fn linear_transpose<I: Tree, O: Tree>(
    f: impl FnOnce(I) -> O,
    example: &I,
) -> Result<LinearMap> {
    linear_map(f, example)?.transpose()
}
