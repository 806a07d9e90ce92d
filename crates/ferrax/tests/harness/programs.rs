//! Random well-typed programs built from the op table's generators, with shrinking (a
//! program is a recipe of small choice numbers), and the one-equation program of a row.

use super::{av, op_table, random_args, Domain, Gen, OpRow};
use ferrax::{
    Array, Atom, Aval, Closed, DType, Equation, Primitive, Program, RematPolicy, Scalar, Var,
};
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

/// A recipe: input shapes, steps of choice numbers, and control steps that put a `scan` or
/// `cond` whose sub-programs are built from steps of their own among the steps.
#[derive(Clone, Debug)]
pub struct Recipe {
    pub inputs: Vec<u8>,
    pub steps: Vec<Vec<u32>>,
    pub n_outputs: u8,
    /// Each: where among the steps it goes, which construct, its operands, and
    /// [`BODY_STEPS`] steps of [`STEP`] choice numbers for its sub-programs (see
    /// [`control_step`]).
    pub control: Vec<Vec<u32>>,
}

pub const INPUT_SHAPES: &[&[usize]] = &[&[], &[3], &[2, 3], &[3, 1]];

/// Choice numbers per step (the first picks the generator row).
pub const STEP: usize = 6;
/// Steps a control step has for its sub-programs.
pub const BODY_STEPS: usize = 4;
/// Choice numbers a control step starts with, before its sub-programs' steps.
pub const CONTROL_HEAD: usize = 8;

/// The rows the generator uses.
fn generator_rows(rows: &[OpRow]) -> Vec<&OpRow> {
    rows.iter()
        .filter(|r| !matches!(r.gen, Gen::Skip))
        .collect()
}

/// Appends the equations of `steps` to a program under construction (its variables'
/// avals and its equations). Steps whose generator finds no suitable operands are skipped.
fn build_steps(
    gens: &[&OpRow],
    avals: &mut Vec<Aval>,
    eqns: &mut Vec<Equation>,
    steps: &[Vec<u32>],
) {
    for step in steps {
        let row = gens[step[0] as usize % gens.len()];
        let mut p = Pick {
            avals,
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
}

/// A sub-program on inputs of `in_avals` made of `steps`, giving for each of `outs` the
/// last float variable of that aval (an input when no step made one), then, when
/// `extra_out`, the last variable a step made (if any). At the top level (`depth` 0), one
/// sub-program in four ends with a control step of its own, its choice numbers drawn from
/// the steps', so control flow nests two deep.
fn sub_program(
    gens: &[&OpRow],
    in_avals: &[Aval],
    steps: &[Vec<u32>],
    outs: &[Aval],
    extra_out: bool,
    depth: usize,
    computed_index: bool,
) -> Program {
    let mut avals = in_avals.to_vec();
    let mut eqns = vec![];
    build_steps(gens, &mut avals, &mut eqns, steps);
    let flat: Vec<u32> = steps.iter().flatten().copied().collect();
    if depth == 0 && flat.first().is_some_and(|c| c % 4 == 0) {
        let c: Vec<u32> = (0..CONTROL_HEAD + BODY_STEPS * STEP)
            .map(|i| {
                flat[(i + 1) % flat.len()]
                    .wrapping_mul(2_654_435_761)
                    .wrapping_add(i as u32)
            })
            .collect();
        control_step(gens, &mut avals, &mut eqns, &c, computed_index, depth + 1);
    }
    let last_like = |a: &Aval| {
        (0..avals.len())
            .rev()
            .find(|&i| avals[i] == *a)
            .map(|i| Atom::Var(Var(i as u32)))
            .expect("an input of the aval")
    };
    let mut outputs: Vec<Atom> = outs.iter().map(last_like).collect();
    let n_in = in_avals.len();
    if extra_out && avals.len() > n_in && avals.last().unwrap().dtype == DType::F64 {
        outputs.push(Atom::Var(Var(avals.len() as u32 - 1)));
    }
    Program {
        avals,
        consts: vec![],
        inputs: (0..n_in as u32).map(Var).collect(),
        eqns,
        outputs,
    }
}

/// One control step on the program so far: a `scan` (forward or reverse; a carry, maybe a
/// const, maybe xs with a leading axis that sets the length, else a length of 1 to 3; the
/// body's carry out is its last value of the carry's aval, its y the last value it made) or
/// a `cond` of two or three branches on one or two operands, each branch giving back a value
/// of each operand's aval. The index is a literal, sometimes beyond the branches (clamped),
/// or, when `computed_index`, sometimes a scalar variable converted to i32 (so vmap may
/// batch it), a jump that finite differences would trip on. Appends the equations to the
/// program under construction (its avals and equations), or nothing when the program so far
/// has nothing suitable. `depth`: how deep in control flow the program under construction
/// is (0 for the program itself).
pub fn control_step(
    gens: &[&OpRow],
    avals: &mut Vec<Aval>,
    eqns: &mut Vec<Equation>,
    c: &[u32],
    computed_index: bool,
    depth: usize,
) {
    let Some(new) = control_eqns(gens, avals, c, computed_index, depth) else {
        return;
    };
    for e in new {
        let in_avals: Vec<Aval> = e
            .inputs
            .iter()
            .map(|a| match a {
                Atom::Var(v) => avals[v.index()].clone(),
                Atom::Lit(s) => Aval::scalar(s.dtype()),
            })
            .collect();
        let refs: Vec<&Aval> = in_avals.iter().collect();
        avals.extend(e.prim.out_avals(&refs).expect("checked when made"));
        eqns.push(e);
    }
}

fn control_eqns(
    gens: &[&OpRow],
    avals: &[Aval],
    c: &[u32],
    computed_index: bool,
    depth: usize,
) -> Option<Vec<Equation>> {
    let (head, body) = c.split_at(CONTROL_HEAD);
    let steps: Vec<Vec<u32>> = body.chunks(STEP).map(|s| s.to_vec()).collect();
    let mut p = Pick {
        avals,
        choices: &head[1..],
        next: 0,
    };
    let small = |a: &Aval| a.size() <= 16 && a.ndim() <= 2;
    // equations the control equation reads (a computed index)
    let mut before = vec![];
    let (prim, inputs) = if p.num(3) < 2 {
        let carry = p.float_var_where(small)?;
        let carry_aval = p.aval(&carry);
        let consts: Vec<Atom> = if p.num(2) == 0 {
            vec![p.float_var_where(small)?]
        } else {
            vec![]
        };
        let xs: Vec<Atom> = if p.num(3) != 0 {
            p.float_var_where(|a| a.ndim() >= 1 && small(a))
                .into_iter()
                .collect()
        } else {
            vec![]
        };
        let length = match xs.first() {
            Some(x) => p.aval(x).shape[0],
            None => 1 + p.num(3),
        };
        let reverse = p.num(2) == 1;
        let mut in_avals: Vec<Aval> = consts.iter().map(|a| p.aval(a)).collect();
        in_avals.push(carry_aval.clone());
        for x in &xs {
            let a = p.aval(x);
            in_avals.push(Aval::new(a.shape[1..].to_vec(), a.dtype));
        }
        let body = sub_program(
            gens,
            &in_avals,
            &steps,
            &[carry_aval],
            true,
            depth,
            computed_index,
        );
        if xs.is_empty() && (head[0] >> 8) % 3 == 0 {
            // a counted `while` in place of a scan without xs: the same body, a counter
            // carry from 0, and, for reverse mode, 0, 1 or 2 carries kept at once
            let checkpoints = ((head[0] >> 10) % 3) as usize;
            counted_while(body, &consts, carry, length, checkpoints)
        } else {
            let prim = Primitive::Scan {
                body: Closed::new(body),
                n_consts: consts.len(),
                n_carry: 1,
                length,
                reverse,
            };
            let mut inputs = consts;
            inputs.push(carry);
            inputs.extend(xs);
            (prim, inputs)
        }
    } else {
        let x = p.float_var_where(small)?;
        let mut operands = vec![x];
        if p.num(2) == 0 {
            operands.extend(p.float_var_where(small));
        }
        let in_avals: Vec<Aval> = operands.iter().map(|a| p.aval(a)).collect();
        let n = 2 + p.num(2);
        // branch b builds from steps b and b + 1 (so neighbouring branches share one)
        let branches: Vec<Closed> = (0..n)
            .map(|b| {
                let mine = [
                    steps[b % steps.len()].clone(),
                    steps[(b + 1) % steps.len()].clone(),
                ];
                Closed::new(sub_program(
                    gens,
                    &in_avals,
                    &mine,
                    &in_avals,
                    false,
                    depth,
                    computed_index,
                ))
            })
            .collect();
        // every branch, and once in a while an index beyond them
        let index = p.num(n + 2) as i32 - 1;
        let mut inputs = vec![Atom::Lit(Scalar::I32(index))];
        if computed_index && p.num(2) == 0 {
            if let Some(s) = p.float_var_where(|a| a.ndim() == 0) {
                let v = Var(avals.len() as u32);
                before.push(Equation {
                    prim: Primitive::ConvertElementType {
                        new_dtype: DType::I32,
                    },
                    inputs: vec![s],
                    outs: vec![v],
                    loc: None,
                });
                inputs = vec![Atom::Var(v)];
            }
        }
        if (head[0] >> 12) % 4 == 0 {
            // a checkpoint of the first branch, under a policy the head picks
            let policy = match (head[0] >> 14) % 3 {
                0 => RematPolicy::Nothing,
                1 => RematPolicy::Dots,
                _ => RematPolicy::Everything,
            };
            let body = branches.into_iter().next().expect("two branches at least");
            (Primitive::Checkpoint { body, policy }, operands)
        } else {
            inputs.extend(operands);
            (Primitive::Cond { branches }, inputs)
        }
    };
    let in_avals: Vec<Aval> = inputs
        .iter()
        .map(|a| match a {
            Atom::Var(v) if v.index() >= avals.len() => Aval::scalar(DType::I32),
            a => p.aval(a),
        })
        .collect();
    let refs: Vec<&Aval> = in_avals.iter().collect();
    let outs = prim.out_avals(&refs).ok()?;
    if outs.iter().any(|o| o.size() > 64 || o.ndim() > 3) {
        return None;
    }
    let first = (avals.len() + before.len()) as u32;
    before.push(Equation {
        prim,
        inputs,
        outs: (first..first + outs.len() as u32).map(Var).collect(),
        loc: None,
    });
    Some(before)
}

/// `while k < length: (k, x) = (k + 1, body(consts, x))` from a scan body of one carry and
/// one ys (the ys dropped), and its operands: the consts, a 0 counter, the carry.
fn counted_while(
    mut body: Program,
    consts: &[Atom],
    carry: Atom,
    length: usize,
    checkpoints: usize,
) -> (Primitive, Vec<Atom>) {
    let nc = consts.len();
    body.outputs.truncate(1);
    let carry_aval = body.aval(body.inputs[nc]).clone();
    let counter = Aval::scalar(DType::I32);
    let k = Var(body.avals.len() as u32);
    body.avals.push(counter.clone());
    let k1 = Var(body.avals.len() as u32);
    body.avals.push(counter.clone());
    body.inputs.insert(nc, k);
    body.eqns.push(Equation {
        prim: Primitive::Add,
        inputs: vec![Atom::Var(k), Atom::Lit(Scalar::I32(1))],
        outs: vec![k1],
        loc: None,
    });
    body.outputs.insert(0, Atom::Var(k1));
    let cond = Program {
        avals: vec![counter, carry_aval, Aval::scalar(DType::Bool)],
        consts: vec![],
        inputs: vec![Var(0), Var(1)],
        eqns: vec![Equation {
            prim: Primitive::Lt,
            inputs: vec![Atom::Var(Var(0)), Atom::Lit(Scalar::I32(length as i32))],
            outs: vec![Var(2)],
            loc: None,
        }],
        outputs: vec![Atom::Var(Var(2))],
    };
    let prim = Primitive::While {
        cond: Closed::new(cond),
        body: Closed::new(body.dce()),
        n_cond_consts: 0,
        n_body_consts: nc,
        max_steps: 0,
        checkpoints,
    };
    let mut inputs = consts.to_vec();
    inputs.push(Atom::Lit(Scalar::I32(0)));
    inputs.push(carry);
    (prim, inputs)
}

/// Builds the program a recipe describes from the op table's generators: the steps in
/// order, each control step before the step its first number picks (after the last when
/// it picks one past them). Steps whose generator finds no suitable operands are skipped.
pub fn build_program(rows: &[OpRow], r: &Recipe) -> Program {
    let mut avals: Vec<Aval> = r
        .inputs
        .iter()
        .map(|&i| av(INPUT_SHAPES[i as usize % INPUT_SHAPES.len()], DType::F64))
        .collect();
    let inputs: Vec<Var> = (0..avals.len() as u32).map(Var).collect();
    let mut eqns = vec![];
    let gens = generator_rows(rows);
    // a computed cond index jumps: only where the programs are not meant to be smooth
    let computed_index = !rows.iter().all(|r| SMOOTH.contains(&r.name));
    let at = |c: &Vec<u32>| c[0] as usize % (r.steps.len() + 1);
    for i in 0..=r.steps.len() {
        for c in r.control.iter().filter(|c| at(c) == i) {
            control_step(&gens, &mut avals, &mut eqns, c, computed_index, 0);
        }
        if let Some(step) = r.steps.get(i) {
            build_steps(&gens, &mut avals, &mut eqns, std::slice::from_ref(step));
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

/// Recipes of 1 to 3 inputs, 1 to `max_steps` steps, 1 or 2 outputs, and in about one in
/// three a control step (rarely two). The control steps are drawn last, so a stored seed
/// still gives the steps it gave before they existed.
fn recipe(max_steps: usize) -> impl Strategy<Value = Recipe> {
    let control = prop::collection::vec(any::<u32>(), CONTROL_HEAD + BODY_STEPS * STEP);
    (
        prop::collection::vec(0u8..4, 1..=3),
        prop::collection::vec(prop::collection::vec(any::<u32>(), STEP), 1..=max_steps),
        1u8..=2,
        prop_oneof![
            4 => Just(vec![]),
            2 => prop::collection::vec(control.clone(), 1),
            1 => prop::collection::vec(control, 2),
        ],
    )
        .prop_map(|(inputs, steps, n_outputs, control)| Recipe {
            inputs,
            steps,
            n_outputs,
            control,
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
