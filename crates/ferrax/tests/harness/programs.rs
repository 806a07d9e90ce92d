//! Random well-typed programs built from the op table's generators, with shrinking (a
//! program is a recipe of small choice numbers), and the one-equation program of a row.

use super::{av, op_table, random_args, Domain, Gen, OpRow};
use ferrax::{Array, Atom, Aval, DType, Equation, Primitive, Program, Var};
use proptest::prelude::*;

/// A one-equation program applying a row's primitive to fresh inputs of the given avals:
/// every output of the equation is an output of the program.
pub fn single_eqn_program(prim: &Primitive, in_avals: &[Aval]) -> ferrax::Result<Program> {
    let refs: Vec<&Aval> = in_avals.iter().collect();
    let outs = prim.out_avals(&refs)?;
    let n = in_avals.len() as u32;
    let out_vars: Vec<Var> = (n..n + outs.len() as u32).map(Var).collect();
    let mut avals = in_avals.to_vec();
    avals.extend(outs);
    Ok(Program {
        avals,
        consts: vec![],
        inputs: (0..n).map(Var).collect(),
        eqns: vec![Equation {
            prim: prim.clone(),
            inputs: (0..n).map(|i| Atom::Var(Var(i))).collect(),
            outs: out_vars.clone(),
            loc: None,
        }],
        outputs: out_vars.into_iter().map(Atom::Var).collect(),
    })
}

/// The generator's view of the program so far: the variables and their avals, and a
/// stream of choice numbers from the recipe.
pub struct Pick<'a> {
    pub avals: &'a [Aval],
    choices: &'a [u32],
    next: usize,
}

impl Pick<'_> {
    /// A choice in `0..n` (0 when n is 0).
    pub fn num(&mut self, n: usize) -> usize {
        let c = self.choices.get(self.next).copied().unwrap_or(0);
        self.next += 1;
        if n == 0 {
            0
        } else {
            c as usize % n
        }
    }
    pub fn aval(&self, a: &Atom) -> Aval {
        match a {
            Atom::Var(v) => self.avals[v.index()].clone(),
            Atom::Lit(s) => Aval::scalar(s.dtype()),
        }
    }
    /// A float variable satisfying `ok`.
    pub fn float_var_where(&mut self, ok: impl Fn(&Aval) -> bool) -> Option<Atom> {
        let cands: Vec<usize> = (0..self.avals.len())
            .filter(|&i| self.avals[i].dtype == DType::F64 && ok(&self.avals[i]))
            .collect();
        if cands.is_empty() {
            return None;
        }
        let i = cands[self.num(cands.len())];
        Some(Atom::Var(Var(i as u32)))
    }
    pub fn float_var(&mut self) -> Option<Atom> {
        self.float_var_where(|_| true)
    }
    /// A float variable with the given aval, or a literal when the aval is a scalar.
    pub fn float_var_like(&mut self, aval: &Aval) -> Option<Atom> {
        if aval.ndim() == 0 && self.num(3) == 0 {
            return Some(Atom::Lit(ferrax::Scalar::F64(1.5)));
        }
        self.float_var_where(|a| a == aval)
    }
}

/// A recipe: input shapes and steps of choice numbers.
#[derive(Clone, Debug)]
pub struct Recipe {
    pub inputs: Vec<u8>,
    pub steps: Vec<Vec<u32>>,
    pub n_outputs: u8,
}

pub const INPUT_SHAPES: &[&[usize]] = &[&[], &[3], &[2, 3], &[3, 1]];

/// Builds the program a recipe describes from the op table's generators. Steps whose
/// generator finds no suitable operands are skipped.
pub fn build_program(rows: &[OpRow], r: &Recipe) -> Program {
    let mut avals: Vec<Aval> = r
        .inputs
        .iter()
        .map(|&i| av(INPUT_SHAPES[i as usize % INPUT_SHAPES.len()], DType::F64))
        .collect();
    let inputs: Vec<Var> = (0..avals.len() as u32).map(Var).collect();
    let mut eqns = vec![];
    let gens: Vec<&OpRow> = rows
        .iter()
        .filter(|r| !matches!(r.gen, Gen::Skip))
        .collect();
    for step in &r.steps {
        let row = gens[step[0] as usize % gens.len()];
        let mut p = Pick {
            avals: &avals,
            choices: &step[1..],
            next: 0,
        };
        let made = match row.gen {
            Gen::Skip => None,
            Gen::Unary => p.float_var().map(|x| (row.prim.clone(), vec![x])),
            Gen::Binary => p.float_var().and_then(|x| {
                let a = p.aval(&x);
                let y = p.float_var_like(&a)?;
                let ops = if p.num(2) == 0 {
                    vec![x, y]
                } else {
                    vec![y, x]
                };
                Some((row.prim.clone(), ops))
            }),
            Gen::Custom(f) => f(&mut p),
        };
        let Some((prim, ins)) = made else { continue };
        let in_avals: Vec<Aval> = ins.iter().map(|a| p.aval(a)).collect();
        let refs: Vec<&Aval> = in_avals.iter().collect();
        let Ok(out) = prim.abstract_eval(&refs) else {
            continue;
        };
        if out.size() > 64 || out.ndim() > 3 {
            continue;
        }
        let is_cmp = out.dtype == DType::Bool;
        avals.push(out.clone());
        let v = Var(avals.len() as u32 - 1);
        eqns.push(Equation {
            prim,
            inputs: ins.clone(),
            outs: vec![v],
            loc: None,
        });
        if is_cmp {
            // select(cmp, x, y) brings the program back to floats; x and y share an aval.
            avals.push(in_avals[0].clone());
            let s = Var(avals.len() as u32 - 1);
            let inputs = vec![Atom::Var(v), ins[0].clone(), ins[1].clone()];
            eqns.push(Equation {
                prim: Primitive::Select,
                inputs,
                outs: vec![s],
                loc: None,
            });
        }
    }
    // Outputs: the last few float variables defined (inputs when nothing was built).
    let floats: Vec<Var> = (0..avals.len() as u32)
        .map(Var)
        .filter(|v| avals[v.index()].dtype == DType::F64)
        .collect();
    let n = (r.n_outputs as usize).clamp(1, floats.len());
    let outputs = floats[floats.len() - n..]
        .iter()
        .map(|v| Atom::Var(*v))
        .collect();
    Program {
        avals,
        consts: vec![],
        inputs,
        eqns,
        outputs,
    }
}

/// Rows whose primitives are smooth and bounded on all of R (or polynomial): random programs
/// made of them can be checked against finite differences anywhere.
pub const SMOOTH: &[&str] = &[
    "neg",
    "sin",
    "cos",
    "tanh",
    "logistic",
    "erf",
    "add",
    "sub",
    "mul",
    "reduce_sum",
    "broadcast_in_dim",
    "reshape",
    "transpose",
    "squeeze",
    "expand_dims",
    "slice",
    "pad",
    "concatenate",
    "rev",
    "dot_general",
    "cumsum",
    "convert_element_type",
    "iota",
];

/// Recipes of 1 to 3 inputs, 1 to `max_steps` steps and 1 or 2 outputs.
fn recipe(max_steps: usize) -> impl Strategy<Value = Recipe> {
    (
        prop::collection::vec(0u8..4, 1..=3),
        prop::collection::vec(prop::collection::vec(any::<u32>(), 6), 1..=max_steps),
        1u8..=2,
    )
        .prop_map(|(inputs, steps, n_outputs)| Recipe {
            inputs,
            steps,
            n_outputs,
        })
}

/// A proptest strategy for random well-typed f64 programs (up to `max_steps` equations).
pub fn arb_program(max_steps: usize) -> impl Strategy<Value = Program> {
    recipe(max_steps).prop_map(|r| build_program(&op_table(), &r))
}

/// Random programs of smooth primitives only (see [`SMOOTH`]).
pub fn arb_smooth_program(max_steps: usize) -> impl Strategy<Value = Program> {
    recipe(max_steps).prop_map(|r| {
        let rows: Vec<OpRow> = op_table()
            .into_iter()
            .filter(|r| SMOOTH.contains(&r.name))
            .collect();
        build_program(&rows, &r)
    })
}

/// Random inputs for a program's inputs.
pub fn random_inputs(p: &Program, seed: u64) -> Vec<Array> {
    random_args(&p.in_avals(), seed.wrapping_mul(31), Domain::Real)
}
