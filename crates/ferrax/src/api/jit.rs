//! Compilation for users: `jit`, `jit_linearize` and `run_compiled`.
//!
//! `jit(f)` traces `f` once per input signature (tree structure, shapes and dtypes), turns
//! the program into a CPU [`Plan`] (optimized, see `passes::optimize` and `backend::cpu`)
//! and caches it; later calls with the same signature only run the plan. Inside a trace in
//! progress a jitted function is simply traced through, so `jit` composes with every
//! transformation. `jit_linearize` caches a linearization's primal plan and linear code.
//!
//! Both are `Send + Sync` when `f` is: the cache sits behind a mutex (held only to look up
//! or insert, never while tracing, so a thread compiling a new signature does not stop the
//! others from running compiled ones), and the plans are shared through `Arc`. Two threads
//! that miss on the same signature at once may both trace it; the first insert wins.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::api::linear_map::{linearize, Defs, LinearCode, LinearMap};
use crate::backend::Plan;
use crate::ir::{same_shape, Array, Aval, Program, Result};
use crate::passes::{jvp_program_checked, partial_eval, ResidualSource};
use crate::trace::{flatten, is_tracing, leaf_avals, trace_tree, unflatten, Tensor, Tree, TreeDef};

type Signature = (TreeDef, Vec<Aval>);

struct Compiled {
    plan: Plan,
    out_def: TreeDef,
}

/// A function compiled per input signature. See [`jit`].
pub struct Jit<I, O, F> {
    f: F,
    cache: Mutex<HashMap<Signature, Arc<Compiled>>>,
    /// The signature of the last call and its plan: checked first, without allocating.
    last: Mutex<Option<(Signature, Arc<Compiled>)>>,
    _types: PhantomData<fn(I) -> O>,
}

/// The guarded value; a lock poisoned by a panic elsewhere still holds a consistent cache
/// (entries are inserted whole), so it is used as it is.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Compiles `f`: traced once per input signature (tree structure, shapes, dtypes), optimized
/// and run through a cached plan on later calls. Inside another transformation the jitted
/// function is traced through like any other.
///
/// ```
/// use ferrax::{grad, jit, Array, Tensor};
/// let f = jit(|x: Tensor| grad(|z: Tensor| (z.sin() * &z).sum_all(), &x).unwrap());
/// let x = Tensor::new(Array::from_slice(&[0.5f64, 1.0]));
/// let g = f.call(&x).unwrap();
/// assert!((g.to_vec::<f64>().unwrap()[0] - (0.5f64.sin() + 0.5 * 0.5f64.cos())).abs() < 1e-15);
/// f.call(&x).unwrap(); // cached: no tracing
/// assert_eq!(f.cache_size(), 1);
/// ```
pub fn jit<I: Tree, O: Tree, F: Fn(I) -> O>(f: F) -> Jit<I, O, F> {
    Jit {
        f,
        cache: Mutex::new(HashMap::new()),
        last: Mutex::new(None),
        _types: PhantomData,
    }
}

impl<I: Tree, O: Tree, F: Fn(I) -> O> Jit<I, O, F> {
    fn compiled(&self, def: &TreeDef, avals: &[Aval]) -> Result<Arc<Compiled>> {
        let key = (def.clone(), avals.to_vec());
        if let Some(c) = lock(&self.cache).get(&key) {
            return Ok(c.clone());
        }
        // traced without the lock held: other threads keep running their compiled plans
        let traced = trace_tree(&self.f, def, avals)?;
        let c = Arc::new(Compiled {
            plan: Plan::from_checked(&traced.program),
            out_def: traced.out_def,
        });
        Ok(lock(&self.cache).entry(key).or_insert(c).clone())
    }

    /// Calls the compiled function.
    pub fn call(&self, x: &I) -> Result<O> {
        let (leaves, def) = flatten(x);
        if is_tracing() {
            // Inside another transformation: trace through.
            let arg = unflatten::<I>(&def, leaves)?;
            return Ok((self.f)(arg));
        }
        // Fast path: the same signature as the last call (compared in place).
        let hit = lock(&self.last).as_ref().and_then(|((d, avals), c)| {
            let same = *d == def
                && avals.len() == leaves.len()
                && leaves
                    .iter()
                    .zip(avals)
                    .all(|(t, a)| same_shape(t.shape(), &a.shape) && t.dtype() == Some(a.dtype));
            same.then(|| c.clone())
        });
        let c = match hit {
            Some(c) => c,
            None => {
                let avals = leaf_avals(&leaves)?;
                let c = self.compiled(&def, &avals)?;
                *lock(&self.last) = Some(((def, avals), c.clone()));
                c
            }
        };
        let arrays = leaves
            .iter()
            .map(|t| t.array())
            .collect::<Result<Vec<_>>>()?;
        let outs = c.plan.run(arrays)?;
        unflatten(&c.out_def, outs.into_iter().map(Tensor::new).collect())
    }

    /// The optimized program for arguments shaped like `x` (compiling it if needed).
    pub fn program(&self, x: &I) -> Result<Program> {
        let (leaves, def) = flatten(x);
        let avals = leaf_avals(&leaves)?;
        Ok(self.compiled(&def, &avals)?.plan.program().clone())
    }

    /// How many signatures have been compiled.
    pub fn cache_size(&self) -> usize {
        lock(&self.cache).len()
    }
}

/// Runs a program through a fresh plan (optimize + plan + run): for one-off evaluations
/// that should take the fast kernels.
pub fn run_compiled(p: &Program, args: Vec<Array>) -> Result<Vec<Array>> {
    Plan::new(p)?.run(args)
}

/// A compiled linearization (JAX's `jit(linearize)`): per input signature, `f` is traced,
/// linearized and split once; each call then runs only the compiled primal plan and
/// returns the outputs with a linear map whose code (and compiled plans) all calls share.
pub struct JitLinearize<I, O, F> {
    f: F,
    cache: Mutex<LinCache>,
    _types: PhantomData<fn(I) -> O>,
}

type LinCache = HashMap<(TreeDef, Vec<Aval>), Arc<LinCompiled>>;

struct LinCompiled {
    primal: Plan,
    residuals: Vec<ResidualSource>,
    n_outputs: usize,
    code: Arc<LinearCode>,
    defs: Defs,
}

/// Compiles the linearization of `f` (see [`JitLinearize`]).
///
/// ```
/// use ferrax::{jit_linearize, Tensor};
/// let lin = jit_linearize(|x: Tensor| x.sin() * 2.0);
/// for x in [0.1f64, 0.2] {
///     let (y, f_jvp) = lin.call(&Tensor::scalar(x)).unwrap();
///     let d: Tensor = f_jvp.apply(&Tensor::scalar(1.0f64)).unwrap();
///     assert!((d.item().unwrap() - 2.0 * x.cos()).abs() < 1e-15);
///     assert_eq!(y.item().unwrap(), x.sin() * 2.0);
/// }
/// assert_eq!(lin.cache_size(), 1);
/// ```
pub fn jit_linearize<I: Tree, O: Tree, F: Fn(I) -> O>(f: F) -> JitLinearize<I, O, F> {
    JitLinearize {
        f,
        cache: Default::default(),
        _types: PhantomData,
    }
}

impl<I: Tree, O: Tree, F: Fn(I) -> O> JitLinearize<I, O, F> {
    /// `f(x)` and the linear map of `f` at `x`.
    pub fn call(&self, x: &I) -> Result<(O, LinearMap)> {
        if is_tracing() {
            return linearize(&self.f, x);
        }
        let (leaves, in_def) = flatten(x);
        let in_avals = leaf_avals(&leaves)?;
        let key = (in_def.clone(), in_avals.clone());
        let cached = lock(&self.cache).get(&key).cloned();
        let compiled = match cached {
            Some(c) => c,
            None => {
                let traced = trace_tree(&self.f, &in_def, &in_avals)?;
                let p = &traced.program;
                let n = leaves.len();
                let with_tangent: Vec<bool> = (0..p.inputs.len()).map(|i| i < n).collect();
                let j = jvp_program_checked(p, &with_tangent)?;
                let split = partial_eval(&j, p.inputs.len(), p.outputs.len())?;
                let c = Arc::new(LinCompiled {
                    primal: Plan::from_checked(&split.primal),
                    residuals: split.residuals.clone(),
                    n_outputs: split.n_outputs,
                    code: LinearCode::new(split.linear),
                    defs: (
                        in_def.clone(),
                        in_avals.clone(),
                        traced.out_def.clone(),
                        p.out_avals(),
                    ),
                });
                lock(&self.cache).entry(key).or_insert(c).clone()
            }
        };
        let arrays = leaves
            .iter()
            .map(|t| t.array())
            .collect::<Result<Vec<_>>>()?;
        let outs = compiled.primal.run(arrays.clone())?;
        let mut forwarded = 0;
        let residuals = compiled
            .residuals
            .iter()
            .map(|r| match *r {
                ResidualSource::Input(i) => {
                    forwarded += 1;
                    Tensor::new(arrays[i].clone())
                }
                ResidualSource::Output(k) => {
                    if k < compiled.n_outputs {
                        forwarded += 1;
                    }
                    Tensor::new(outs[k].clone())
                }
            })
            .collect();
        let map = LinearMap::with_code(
            compiled.code.clone(),
            residuals,
            forwarded,
            compiled.defs.clone(),
        );
        let y: Vec<Tensor> = outs[..compiled.n_outputs]
            .iter()
            .cloned()
            .map(Tensor::new)
            .collect();
        Ok((unflatten(&compiled.defs.2, y)?, map))
    }

    /// How many signatures have been compiled.
    pub fn cache_size(&self) -> usize {
        lock(&self.cache).len()
    }
}
