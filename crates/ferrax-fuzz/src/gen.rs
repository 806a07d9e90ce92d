//! Random well-typed programs, written directly as canonical program text.
//!
//! The generator keeps its own small model of each primitive's shape and dtype rule (an
//! independent second reading of `docs/primitives.md`), picks a primitive from
//! `ferrax::PRIMITIVE_NAMES`, finds operands of suitable avals among the variables so far (or
//! makes a new input, constant or literal), and writes the equation. Shapes are small, with
//! zero-sized dimensions now and then; every dtype appears. The text it returns is exactly
//! what ferrax's printer would print for the program, so the driver can require that a
//! generated text parses and prints back to itself.
//!
//! It runs in the parent process, so it never calls into ferrax beyond formatting avals:
//! a generated input that crashes ferrax crashes only the worker.

use ferrax::{Aval, DType, PRIMITIVE_NAMES};
use rand::seq::SliceRandom;
use rand::Rng;

/// `named_map` and the collectives it binds: they come from the seeds.
const COLLECTIVE: &[&str] = &[
    "named_map",
    "psum",
    "pmean",
    "pmax",
    "pmin",
    "all_gather",
    "psum_scatter",
    "ppermute",
    "all_to_all",
    "axis_index",
];

/// Words the printer skips when naming variables.
const RESERVED: &[&str] = &["in", "let", "lambda", "true", "false", "inf", "nan"];

/// The `i`-th canonical variable name (`a, b, ..., z, ba, bb, ...`, skipping reserved
/// words), as ferrax's printer names variables in order of definition. Constant time per
/// name (the printer's own loop is linear in `i`, which makes printing quadratic).
pub fn name_of(i: usize) -> String {
    let mut reserved: Vec<usize> = RESERVED.iter().map(|w| spreadsheet_index(w)).collect();
    reserved.sort_unstable();
    let mut k = i;
    for r in reserved {
        if r <= k {
            k += 1;
        }
    }
    spreadsheet_name(k)
}

/// The inverse of `spreadsheet_name` for words that do not start with `a`.
fn spreadsheet_index(w: &str) -> usize {
    w.bytes().fold(0, |acc, b| acc * 26 + (b - b'a') as usize)
}

fn spreadsheet_name(mut k: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'a' + (k % 26) as u8);
        k /= 26;
        if k == 0 {
            break;
        }
    }
    s.reverse();
    String::from_utf8(s).expect("ascii")
}

/// Primitives whose compiled kernels may differ from the reference evaluator in the last
/// bits; "exact" programs leave them out so jit can be compared with eval bit for bit.
pub const INEXACT: &[&str] = &[
    "sin",
    "cos",
    "exp",
    "expm1",
    "log",
    "tanh",
    "logistic",
    "dot_general",
    "reduce_sum",
];

const FLOAT: &[DType] = &[DType::F32, DType::F64];
const NUMERIC: &[DType] = &[DType::F32, DType::F64, DType::I32, DType::I64];
const ANY: &[DType] = &[DType::F32, DType::F64, DType::I32, DType::I64, DType::Bool];

/// Formats a value of a dtype as the printer does (shortest round trip, `nan`, `inf`).
pub fn value_text(d: DType, x: f64) -> String {
    let float = |s: String, v: f64| {
        if v.is_nan() {
            "nan".to_string()
        } else if v.is_infinite() {
            if v > 0.0 { "inf" } else { "-inf" }.to_string()
        } else {
            s
        }
    };
    match d {
        DType::F32 => float(format!("{:?}", x as f32), x),
        DType::F64 => float(format!("{x:?}"), x),
        DType::I32 => format!("{}", x as i32),
        DType::I64 => format!("{}", x as i64),
        DType::Bool => format!("{}", x != 0.0),
    }
}

fn tuple(v: &[usize]) -> String {
    let items: Vec<String> = v.iter().map(|x| x.to_string()).collect();
    if v.len() == 1 {
        format!("({},)", items[0])
    } else {
        format!("({})", items.join(","))
    }
}

#[derive(Clone, Debug)]
enum Operand {
    Var(usize),
    Lit(String),
}

struct Eqn {
    /// One variable per output (several for `cond` and `scan`).
    outs: Vec<usize>,
    prim: String,
    ops: Vec<Operand>,
}

/// How deeply the generator nests control flow (programs inside programs).
const MAX_DEPTH: usize = 3;

/// A program under construction. Variables are numbered in creation order; names are given
/// at the end in the printer's order (constants, inputs, equations).
pub struct Gen<'r, R: Rng> {
    rng: &'r mut R,
    avals: Vec<Aval>,
    consts: Vec<(usize, String)>,
    inputs: Vec<usize>,
    eqns: Vec<Eqn>,
    /// Leave out the primitives of [`INEXACT`].
    exact: bool,
    /// How many programs enclose this one.
    depth: usize,
    /// A sub-program (branch, loop body): its inputs are fixed, so a value it lacks is
    /// made inside it (a constant, or a broadcast literal) instead of becoming an input.
    closed: bool,
}

/// A random well-typed program as canonical text. `exact` leaves out the primitives of
/// [`INEXACT`] (except in the reduction that makes a gradable output).
pub fn random_program(rng: &mut impl Rng, exact: bool) -> String {
    random_program_with_inputs(rng, exact).0
}

/// [`random_program`] and the avals of the program's inputs, in order.
pub fn random_program_with_inputs(rng: &mut impl Rng, exact: bool) -> (String, Vec<Aval>) {
    let mut g = Gen {
        rng,
        avals: vec![],
        consts: vec![],
        inputs: vec![],
        eqns: vec![],
        exact,
        depth: 0,
        closed: false,
    };
    let steps = match g.rng.gen_range(0..10) {
        0 => 0,
        1..=6 => g.rng.gen_range(1..6),
        _ => g.rng.gen_range(6..14),
    };
    g.equations(steps);
    let outs = g.outputs(exact);
    let avals = g.inputs.iter().map(|&v| g.avals[v].clone()).collect();
    (g.text(&outs), avals)
}

impl<R: Rng> Gen<'_, R> {
    /// Appends `steps` random equations; control flow now and then (more often than its
    /// share of the primitive names, since it exercises the most code).
    fn equations(&mut self, steps: usize) {
        for _ in 0..steps {
            let name = loop {
                let n = if self.depth < MAX_DEPTH && self.rng.gen_bool(0.08) {
                    *["cond", "scan", "while"].choose(self.rng).expect("three")
                } else {
                    *PRIMITIVE_NAMES.choose(self.rng).expect("names")
                };
                if matches!(n, "cond" | "scan" | "while") && self.depth >= MAX_DEPTH {
                    continue;
                }
                // these come from the seeds: while_linear is what linearization makes, a
                // checkpoint or a name only matters to linearization's policy, custom
                // rules hold sub-programs that must agree with each other (the API builds
                // them), and a collective means something only inside the named_map that
                // binds its axis
                if matches!(
                    n,
                    "while_linear"
                        | "checkpoint"
                        | "checkpoint_name"
                        | "custom_jvp"
                        | "custom_vjp"
                        | "custom_lin"
                ) || COLLECTIVE.contains(&n)
                {
                    continue;
                }
                if !self.exact || !INEXACT.contains(&n) {
                    break n;
                }
            };
            self.equation(name);
        }
    }

    fn dim(&mut self) -> usize {
        match self.rng.gen_range(0..100) {
            0..=5 => 0,
            6..=30 => 1,
            _ => self.rng.gen_range(2..5),
        }
    }

    fn shape(&mut self, rank: usize) -> Vec<usize> {
        (0..rank).map(|_| self.dim()).collect()
    }

    fn rank(&mut self) -> usize {
        match self.rng.gen_range(0..20) {
            0..=4 => 0,
            5..=11 => 1,
            12..=17 => 2,
            _ => 3,
        }
    }

    fn dtype(&mut self, from: &[DType]) -> DType {
        // f64 most often, bool least
        loop {
            let d = *from.choose(self.rng).expect("dtypes");
            if d == DType::F64 || self.rng.gen_bool(0.6) {
                return d;
            }
        }
    }

    fn new_var(&mut self, aval: Aval) -> usize {
        self.avals.push(aval);
        self.avals.len() - 1
    }

    fn new_input(&mut self, aval: Aval) -> usize {
        let small = aval.shape.iter().product::<usize>() <= 8;
        if self.closed && !(small && self.rng.gen_bool(0.3)) {
            // a sub-program's inputs are fixed: a broadcast literal instead
            let lit = self.literal(aval.dtype);
            return self.emit(
                format!(
                    "broadcast_in_dim[shape={} broadcast_dimensions=()]",
                    tuple(&aval.shape)
                ),
                vec![lit],
                aval,
            );
        }
        if (self.closed || self.rng.gen_bool(0.12)) && small {
            let n: usize = aval.shape.iter().product();
            let d = aval.dtype;
            let vals: Vec<String> = (0..n).map(|_| self.value(d)).collect();
            let v = self.new_var(aval);
            self.consts.push((v, format!("[{}]", vals.join(", "))));
            v
        } else {
            let v = self.new_var(aval);
            self.inputs.push(v);
            v
        }
    }

    /// A value of a dtype, ordinary or special, as text.
    fn value(&mut self, d: DType) -> String {
        let x = match self.rng.gen_range(0..12) {
            0 => 0.0,
            1 => -0.0,
            2 => 1.0,
            3 => -1.0,
            4 if d.is_float() => [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e300, 1e-300]
                [self.rng.gen_range(0..5)],
            4 if d == DType::I32 => [i32::MAX as f64, i32::MIN as f64][self.rng.gen_range(0..2)],
            4 if d == DType::I64 => {
                return [i64::MAX, i64::MIN][self.rng.gen_range(0..2)].to_string()
            }
            _ => (self.rng.gen_range(-40.0f64..40.0) * 4.0).round() / 16.0,
        };
        value_text(d, x)
    }

    fn literal(&mut self, d: DType) -> Operand {
        let v = self.value(d);
        Operand::Lit(format!("{v}:{d}"))
    }

    /// A variable whose aval satisfies `ok`, preferring recent ones; `None` now and then
    /// even when one exists, so new inputs keep appearing.
    fn var_where(&mut self, ok: impl Fn(&Aval) -> bool) -> Option<usize> {
        let c: Vec<usize> = (0..self.avals.len())
            .filter(|&v| ok(&self.avals[v]))
            .collect();
        if c.is_empty() || self.rng.gen_bool(0.15) {
            return None;
        }
        if self.rng.gen_bool(0.6) {
            let k = c.len().saturating_sub(4);
            Some(*c[k..].choose(self.rng).expect("nonempty"))
        } else {
            Some(*c.choose(self.rng).expect("nonempty"))
        }
    }

    /// An operand variable of one of `dtypes` and rank at least `min_rank`.
    fn arg(&mut self, dtypes: &[DType], min_rank: usize) -> usize {
        if let Some(v) = self.var_where(|a| dtypes.contains(&a.dtype) && a.ndim() >= min_rank) {
            return v;
        }
        let d = self.dtype(dtypes);
        let r = self.rank().max(min_rank);
        let s = self.shape(r);
        self.new_input(Aval::new(s, d))
    }

    /// An operand of exactly this aval: a variable, a literal (scalars) or a new input.
    fn operand(&mut self, aval: &Aval) -> Operand {
        if aval.ndim() == 0 && self.rng.gen_bool(0.3) {
            return self.literal(aval.dtype);
        }
        match self.var_where(|a| a == aval) {
            Some(v) => Operand::Var(v),
            None => Operand::Var(self.new_input(aval.clone())),
        }
    }

    fn emit(&mut self, prim: String, ops: Vec<Operand>, out: Aval) -> usize {
        let v = self.new_var(out);
        self.eqns.push(Eqn {
            outs: vec![v],
            prim,
            ops,
        });
        v
    }

    /// An equation of several outputs (control flow); returns their variables.
    fn emit_many(&mut self, prim: String, ops: Vec<Operand>, outs: Vec<Aval>) -> Vec<usize> {
        let vs: Vec<usize> = outs.into_iter().map(|a| self.new_var(a)).collect();
        self.eqns.push(Eqn {
            outs: vs.clone(),
            prim,
            ops,
        });
        vs
    }

    /// A sub-program (a branch or a loop body) taking `ins`: some random equations, whose
    /// text is returned with the avals of its outputs. `outs` fixes the output avals (each
    /// becomes a variable of that aval, a literal or a made value); `extra` asks for that
    /// many more outputs of any aval after them.
    fn sub_program(&mut self, ins: &[Aval], outs: &[Aval], extra: usize) -> (String, Vec<Aval>) {
        let mut g = self.child(ins);
        let steps = g.rng.gen_range(0..5);
        g.equations(steps);
        let mut ops: Vec<Operand> = outs.iter().map(|a| g.operand(a)).collect();
        let mut avals = outs.to_vec();
        for _ in 0..extra {
            if g.avals.is_empty() || g.rng.gen_bool(0.15) {
                let d = g.dtype(ANY);
                avals.push(Aval::scalar(d));
                ops.push(g.literal(d));
            } else {
                let from = g.avals.len().saturating_sub(4);
                let v = g.rng.gen_range(from..g.avals.len());
                avals.push(g.avals[v].clone());
                ops.push(Operand::Var(v));
            }
        }
        (g.text(&ops), avals)
    }

    /// An empty closed sub-program taking `ins`, one level deeper.
    fn child(&mut self, ins: &[Aval]) -> Gen<'_, R> {
        let mut g = Gen {
            rng: &mut *self.rng,
            avals: vec![],
            consts: vec![],
            inputs: vec![],
            eqns: vec![],
            exact: self.exact,
            depth: self.depth + 1,
            closed: true,
        };
        for a in ins {
            let v = g.new_var(a.clone());
            g.inputs.push(v);
        }
        g
    }

    /// `while[...]` counting from 0 to a literal bound beside zero to two carries, over zero
    /// to two consts, with a random body, a `max_steps` above the bound (so the loop ends)
    /// and 0 to 2 checkpoints for its reverse sweep.
    fn while_loop(&mut self) {
        let length: usize = match self.rng.gen_range(0..10) {
            0 => 0,
            1 => 1,
            2 => 7,
            _ => self.rng.gen_range(2..5),
        };
        let (n_consts, n_carry) = (self.rng.gen_range(0..3), self.rng.gen_range(0..3));
        let ops: Vec<usize> = (0..n_consts + n_carry).map(|_| self.arg(ANY, 0)).collect();
        let avals: Vec<Aval> = ops.iter().map(|&v| self.avals[v].clone()).collect();
        let (consts, carry) = avals.split_at(n_consts);
        let counter = Aval::scalar(DType::I32);
        let mut cond_in = vec![counter.clone()];
        cond_in.extend(carry.iter().cloned());
        let cond = {
            let mut g = self.child(&cond_in);
            let k = Operand::Var(g.inputs[0]);
            let bound = Operand::Lit(format!("{length}:i32"));
            let p = g.emit("lt".into(), vec![k, bound], Aval::scalar(DType::Bool));
            g.text(&[Operand::Var(p)])
        };
        let mut body_in = consts.to_vec();
        body_in.push(counter.clone());
        body_in.extend(carry.iter().cloned());
        let body = {
            let mut g = self.child(&body_in);
            let steps = g.rng.gen_range(0..5);
            g.equations(steps);
            let k = Operand::Var(g.inputs[n_consts]);
            let k1 = g.emit(
                "add".into(),
                vec![k, Operand::Lit("1:i32".into())],
                counter.clone(),
            );
            let mut outs = vec![Operand::Var(k1)];
            outs.extend(carry.iter().map(|a| g.operand(a)));
            g.text(&outs)
        };
        let max_steps = length + self.rng.gen_range(1..3);
        let checkpoints = self.rng.gen_range(0..3);
        let mut operands: Vec<Operand> = ops[..n_consts].iter().map(|&v| Operand::Var(v)).collect();
        operands.push(Operand::Lit("0:i32".into()));
        operands.extend(ops[n_consts..].iter().map(|&v| Operand::Var(v)));
        let mut outs = vec![counter];
        outs.extend(carry.iter().cloned());
        self.emit_many(
            format!(
                "while[cond={} body={} n_cond_consts=0 n_body_consts={n_consts} max_steps={max_steps} checkpoints={checkpoints}]",
                indent(&cond),
                indent(&body)
            ),
            operands,
            outs,
        );
    }

    /// `cond[branches=(...)] index operands...`: one to three branches over zero to three
    /// operands, the first branch choosing the outputs and the others giving the same.
    fn cond(&mut self) {
        let index = self.operand(&Aval::scalar(DType::I32));
        let n_ops = self.rng.gen_range(0..4);
        let ops: Vec<usize> = (0..n_ops).map(|_| self.arg(ANY, 0)).collect();
        let ins: Vec<Aval> = ops.iter().map(|&v| self.avals[v].clone()).collect();
        let n_outs = self.rng.gen_range(0..4);
        let (first, outs) = self.sub_program(&ins, &[], n_outs);
        let mut branches = vec![first];
        for _ in 0..self.rng.gen_range(0..3) {
            branches.push(self.sub_program(&ins, &outs, 0).0);
        }
        let branches: Vec<String> = branches.iter().map(|b| indent(b)).collect();
        let comma = if branches.len() == 1 { "," } else { "" };
        let mut operands = vec![index];
        operands.extend(ops.into_iter().map(Operand::Var));
        self.emit_many(
            format!("cond[branches=({}{comma})]", branches.join(", ")),
            operands,
            outs,
        );
    }

    /// `scan[body=... n_consts n_carry length reverse] consts... carry... xs...`, with
    /// the body's carry given back first and its ys stacked along a new axis.
    fn scan(&mut self) {
        let length = match self.rng.gen_range(0..10) {
            0 => 0,
            1 => 1,
            2 => 7,
            _ => self.rng.gen_range(2..5),
        };
        let n_consts = self.rng.gen_range(0..3);
        let n_carry = self.rng.gen_range(0..3);
        let n_xs = self.rng.gen_range(0..3);
        let mut ops: Vec<usize> = (0..n_consts + n_carry).map(|_| self.arg(ANY, 0)).collect();
        for _ in 0..n_xs {
            let x = match self.var_where(|a| a.shape.first() == Some(&length)) {
                Some(x) => x,
                None => {
                    let d = self.dtype(ANY);
                    let r = self.rank().min(2);
                    let mut s = vec![length];
                    s.extend(self.shape(r));
                    self.new_input(Aval::new(s, d))
                }
            };
            ops.push(x);
        }
        let mut ins: Vec<Aval> = ops.iter().map(|&v| self.avals[v].clone()).collect();
        for a in &mut ins[n_consts + n_carry..] {
            a.shape.remove(0);
        }
        let carry = ins[n_consts..n_consts + n_carry].to_vec();
        let n_ys = self.rng.gen_range(0..3);
        let (body, outs) = self.sub_program(&ins, &carry, n_ys);
        let mut result = outs[..n_carry].to_vec();
        for y in &outs[n_carry..] {
            let mut s = vec![length];
            s.extend_from_slice(&y.shape);
            result.push(Aval::new(s, y.dtype));
        }
        let reverse = self.rng.gen_bool(0.3);
        self.emit_many(
            format!(
                "scan[body={} n_consts={n_consts} n_carry={n_carry} length={length} reverse={reverse}]",
                indent(&body)
            ),
            ops.into_iter().map(Operand::Var).collect(),
            result,
        );
    }

    fn subset(&mut self, of: &[usize]) -> Vec<usize> {
        let mut v: Vec<usize> = of
            .iter()
            .copied()
            .filter(|_| self.rng.gen_bool(0.5))
            .collect();
        v.shuffle(self.rng);
        v
    }

    /// Appends one equation applying `name`.
    fn equation(&mut self, name: &str) {
        let av = |g: &Self, v: usize| g.avals[v].clone();
        match name {
            "sin" | "cos" | "tan" | "exp" | "log" | "log1p" | "expm1" | "tanh" | "logistic"
            | "sqrt" | "rsqrt" | "floor" | "ceil" | "round" | "erf" | "stop_gradient" | "asin"
            | "acos" | "atan" | "asinh" | "acosh" | "atanh" => {
                let x = self.arg(FLOAT, 0);
                let a = av(self, x);
                self.emit(name.into(), vec![Operand::Var(x)], a);
            }
            "neg" | "abs" | "sign" => {
                let x = self.arg(NUMERIC, 0);
                let a = av(self, x);
                self.emit(name.into(), vec![Operand::Var(x)], a);
            }
            "integer_pow" => {
                let x = self.arg(NUMERIC, 0);
                let a = av(self, x);
                let y: i32 = if a.dtype.is_float() {
                    self.rng.gen_range(-3..5)
                } else {
                    self.rng.gen_range(0..5)
                };
                self.emit(format!("integer_pow[y={y}]"), vec![Operand::Var(x)], a);
            }
            "add" | "sub" | "mul" | "div" | "max" | "min" | "pow" | "atan2" | "eq" | "ne"
            | "lt" | "le" | "gt" | "ge" | "rem" => {
                let dtypes = match name {
                    "pow" | "atan2" => FLOAT,
                    "eq" | "ne" => ANY,
                    _ => NUMERIC,
                };
                let x = self.arg(dtypes, 0);
                let a = av(self, x);
                let y = self.operand(&a);
                let mut ops = vec![Operand::Var(x), y];
                if self.rng.gen_bool(0.3) {
                    ops.swap(0, 1);
                }
                let out = if matches!(name, "eq" | "ne" | "lt" | "le" | "gt" | "ge") {
                    Aval::new(a.shape.clone(), DType::Bool)
                } else {
                    a
                };
                self.emit(name.into(), ops, out);
            }
            "select" => {
                let t = self.arg(ANY, 0);
                let a = av(self, t);
                let f = self.operand(&a);
                let p = self.operand(&Aval::new(a.shape.clone(), DType::Bool));
                self.emit(name.into(), vec![p, Operand::Var(t), f], a);
            }
            "convert_element_type" => {
                let x = self.arg(ANY, 0);
                let a = av(self, x);
                let d = self.dtype(ANY);
                self.emit(
                    format!("convert_element_type[new_dtype={d}]"),
                    vec![Operand::Var(x)],
                    Aval::new(a.shape, d),
                );
            }
            "reduce_sum" | "reduce_max" | "reduce_min" | "reduce_prod" => {
                let x = self.arg(NUMERIC, 0);
                let a = av(self, x);
                let axes = self.subset(&(0..a.ndim()).collect::<Vec<_>>());
                let shape: Vec<usize> = (0..a.ndim())
                    .filter(|d| !axes.contains(d))
                    .map(|d| a.shape[d])
                    .collect();
                self.emit(
                    format!("{name}[axes={}]", tuple(&axes)),
                    vec![Operand::Var(x)],
                    Aval::new(shape, a.dtype),
                );
            }
            "cholesky" | "log_abs_det" | "det_sign" | "eigh_values" | "eigh_vectors" | "qr_q"
            | "qr_r" | "svd_values" | "svd_u" | "svd_vt" | "solve" | "triangular_solve" => {
                self.linalg(name)
            }
            "threefry2x32" => {
                let rank = self.rng.gen_range(0..3);
                let mut shape = self.shape(rank);
                shape.push(2);
                let a = Aval::new(shape, DType::I32);
                let k = self.operand(&a);
                let c = self.operand(&a);
                self.emit(name.into(), vec![k, c], a);
            }
            "argsort" => {
                let x = self.arg(NUMERIC, 1);
                let a = av(self, x);
                let axis = self.rng.gen_range(0..a.ndim());
                let idx = *[DType::I32, DType::I64].choose(self.rng).expect("two");
                self.emit(
                    format!("argsort[axis={axis} index_dtype={idx}]"),
                    vec![Operand::Var(x)],
                    Aval::new(a.shape, idx),
                );
            }
            "argmax" | "argmin" => {
                let x = match self
                    .var_where(|a| a.dtype.is_numeric() && a.shape.iter().any(|&d| d > 0))
                {
                    Some(x) => x,
                    None => {
                        let d = self.dtype(NUMERIC);
                        let r = self.rank().max(1);
                        let s = (0..r).map(|_| self.rng.gen_range(1..5)).collect::<Vec<_>>();
                        self.new_input(Aval::new(s, d))
                    }
                };
                let a = av(self, x);
                let axes: Vec<usize> = (0..a.ndim()).filter(|&d| a.shape[d] > 0).collect();
                let axis = *axes.choose(self.rng).expect("a nonempty axis");
                let idx = *[DType::I32, DType::I64].choose(self.rng).expect("two");
                let mut shape = a.shape.clone();
                shape.remove(axis);
                self.emit(
                    format!("{name}[axis={axis} index_dtype={idx}]"),
                    vec![Operand::Var(x)],
                    Aval::new(shape, idx),
                );
            }
            "broadcast_in_dim" => {
                let x = self.arg(ANY, 0);
                let a = av(self, x);
                let r = a.ndim();
                let out_rank = (r + self.rng.gen_range(0..3)).min(4).max(r);
                let mut pos: Vec<usize> = (0..out_rank).collect();
                pos.shuffle(self.rng);
                let mut bd: Vec<usize> = pos[..r].to_vec();
                bd.sort_unstable();
                let mut shape = self.shape(out_rank);
                for (i, &d) in bd.iter().enumerate() {
                    if a.shape[i] != 1 {
                        shape[d] = a.shape[i];
                    }
                }
                self.emit(
                    format!(
                        "broadcast_in_dim[shape={} broadcast_dimensions={}]",
                        tuple(&shape),
                        tuple(&bd)
                    ),
                    vec![Operand::Var(x)],
                    Aval::new(shape, a.dtype),
                );
            }
            "reshape" => {
                let x = self.arg(ANY, 0);
                let a = av(self, x);
                let n: usize = a.shape.iter().product();
                let mut shape = vec![];
                if n == 0 {
                    let r = self.rng.gen_range(1..4);
                    shape = self.shape(r);
                    let k = self.rng.gen_range(0..shape.len());
                    shape[k] = 0;
                } else {
                    let mut m = n;
                    while m > 1 && shape.len() < 3 {
                        let divs: Vec<usize> = (2..=m).filter(|&d| m.is_multiple_of(d)).collect();
                        let d = *divs.choose(self.rng).expect("m itself");
                        shape.push(d);
                        m /= d;
                    }
                    if m > 1 {
                        shape.push(m);
                    }
                    for _ in 0..self.rng.gen_range(0..2) {
                        let k = self.rng.gen_range(0..=shape.len());
                        shape.insert(k, 1);
                    }
                    shape.shuffle(self.rng);
                }
                self.emit(
                    format!("reshape[new_sizes={}]", tuple(&shape)),
                    vec![Operand::Var(x)],
                    Aval::new(shape, a.dtype),
                );
            }
            "transpose" => {
                let x = self.arg(ANY, 0);
                let a = av(self, x);
                let mut perm: Vec<usize> = (0..a.ndim()).collect();
                perm.shuffle(self.rng);
                let shape = perm.iter().map(|&p| a.shape[p]).collect::<Vec<_>>();
                self.emit(
                    format!("transpose[permutation={}]", tuple(&perm)),
                    vec![Operand::Var(x)],
                    Aval::new(shape, a.dtype),
                );
            }
            "squeeze" => {
                let x = match self.var_where(|a| a.shape.contains(&1)) {
                    Some(x) => x,
                    None => {
                        let d = self.dtype(ANY);
                        let r = self.rng.gen_range(1..4);
                        let mut s = self.shape(r);
                        let k = self.rng.gen_range(0..r);
                        s[k] = 1;
                        self.new_input(Aval::new(s, d))
                    }
                };
                let a = av(self, x);
                let ones: Vec<usize> = (0..a.ndim()).filter(|&d| a.shape[d] == 1).collect();
                let dims = self.subset(&ones);
                let shape: Vec<usize> = (0..a.ndim())
                    .filter(|d| !dims.contains(d))
                    .map(|d| a.shape[d])
                    .collect();
                self.emit(
                    format!("squeeze[dimensions={}]", tuple(&dims)),
                    vec![Operand::Var(x)],
                    Aval::new(shape, a.dtype),
                );
            }
            "expand_dims" => {
                let x = self.arg(ANY, 0);
                let a = av(self, x);
                let k = self.rng.gen_range(1..3);
                let out_rank = a.ndim() + k;
                let mut pos: Vec<usize> = (0..out_rank).collect();
                pos.shuffle(self.rng);
                let dims = pos[..k].to_vec();
                let mut rest = a.shape.iter();
                let shape: Vec<usize> = (0..out_rank)
                    .map(|d| {
                        if dims.contains(&d) {
                            1
                        } else {
                            *rest.next().expect("counted")
                        }
                    })
                    .collect();
                self.emit(
                    format!("expand_dims[dimensions={}]", tuple(&dims)),
                    vec![Operand::Var(x)],
                    Aval::new(shape, a.dtype),
                );
            }
            "slice" => {
                let x = self.arg(ANY, 0);
                let a = av(self, x);
                let (mut start, mut limit, mut strides, mut shape) =
                    (vec![], vec![], vec![], vec![]);
                for &n in &a.shape {
                    let s = self.rng.gen_range(0..=n);
                    let l = self.rng.gen_range(s..=n);
                    let k = self.rng.gen_range(1..4);
                    start.push(s);
                    limit.push(l);
                    strides.push(k);
                    shape.push((l - s).div_ceil(k));
                }
                self.emit(
                    format!(
                        "slice[start={} limit={} strides={}]",
                        tuple(&start),
                        tuple(&limit),
                        tuple(&strides)
                    ),
                    vec![Operand::Var(x)],
                    Aval::new(shape, a.dtype),
                );
            }
            "pad" => {
                let x = self.arg(ANY, 0);
                let a = av(self, x);
                let v = self.operand(&Aval::scalar(a.dtype));
                let r = a.ndim();
                let pick = |g: &mut Self| (0..r).map(|_| g.rng.gen_range(0..3)).collect::<Vec<_>>();
                let (low, high, interior) = (pick(self), pick(self), pick(self));
                let shape = (0..r)
                    .map(|d| {
                        let n = a.shape[d];
                        low[d] + high[d] + n + n.saturating_sub(1) * interior[d]
                    })
                    .collect::<Vec<_>>();
                self.emit(
                    format!(
                        "pad[low={} high={} interior={}]",
                        tuple(&low),
                        tuple(&high),
                        tuple(&interior)
                    ),
                    vec![Operand::Var(x), v],
                    Aval::new(shape, a.dtype),
                );
            }
            "concatenate" => {
                let x = self.arg(ANY, 1);
                let a = av(self, x);
                let d = self.rng.gen_range(0..a.ndim());
                let mut ops = vec![Operand::Var(x)];
                let mut total = a.shape[d];
                for _ in 0..self.rng.gen_range(0..3) {
                    let like = |b: &Aval| {
                        b.dtype == a.dtype
                            && b.ndim() == a.ndim()
                            && (0..a.ndim()).all(|k| k == d || a.shape[k] == b.shape[k])
                    };
                    let y = match self.var_where(like) {
                        Some(y) => y,
                        None => {
                            let mut s = a.shape.clone();
                            s[d] = self.dim();
                            self.new_input(Aval::new(s, a.dtype))
                        }
                    };
                    total += self.avals[y].shape[d];
                    ops.push(Operand::Var(y));
                }
                let mut shape = a.shape.clone();
                shape[d] = total;
                self.emit(
                    format!("concatenate[dimension={d}]"),
                    ops,
                    Aval::new(shape, a.dtype),
                );
            }
            "rev" => {
                let x = self.arg(ANY, 0);
                let a = av(self, x);
                let dims = self.subset(&(0..a.ndim()).collect::<Vec<_>>());
                self.emit(
                    format!("rev[dimensions={}]", tuple(&dims)),
                    vec![Operand::Var(x)],
                    a,
                );
            }
            "iota" => {
                let d = self.dtype(NUMERIC);
                let r = self.rng.gen_range(1..4);
                let shape = self.shape(r);
                let dim = self.rng.gen_range(0..r);
                self.emit(
                    format!("iota[dtype={d} shape={} dimension={dim}]", tuple(&shape)),
                    vec![],
                    Aval::new(shape, d),
                );
            }
            "dot_general" => self.dot_general(),
            "gather" | "scatter_add" | "scatter" => self.gather_or_scatter(name),
            "dynamic_slice" | "dynamic_update_slice" => self.dynamic_slice(name),
            "cond" => self.cond(),
            "scan" => self.scan(),
            "while" => self.while_loop(),
            "cumsum" => {
                let x = self.arg(NUMERIC, 1);
                let a = av(self, x);
                let axis = self.rng.gen_range(0..a.ndim());
                let rev = self.rng.gen_bool(0.5);
                self.emit(
                    format!("cumsum[axis={axis} reverse={rev}]"),
                    vec![Operand::Var(x)],
                    a,
                );
            }
            other => unreachable!("the generator has no rule for `{other}`"),
        }
    }

    /// A linear-algebra primitive on a batch of matrices (square where it must be), with a
    /// right-hand side for the solves.
    fn linalg(&mut self, name: &str) {
        let d = self.dtype(FLOAT);
        let rank = self.rng.gen_range(0..2);
        let lead = self.shape(rank);
        let (m, n) = (self.dim(), self.dim());
        let square = !matches!(name, "qr_q" | "qr_r" | "svd_values" | "svd_u" | "svd_vt");
        let m = if square { n } else { m };
        let shaped = |tail: &[usize]| {
            let mut s = lead.clone();
            s.extend_from_slice(tail);
            Aval::new(s, d)
        };
        let a = self.operand(&shaped(&[m, n]));
        let k = m.min(n);
        let (prim, out) = match name {
            "cholesky" | "eigh_vectors" => (name.to_string(), shaped(&[n, n])),
            "eigh_values" => (name.to_string(), shaped(&[n])),
            "log_abs_det" | "det_sign" => (name.to_string(), shaped(&[])),
            "qr_q" | "svd_u" => (name.to_string(), shaped(&[m, k])),
            "qr_r" | "svd_vt" => (name.to_string(), shaped(&[k, n])),
            "svd_values" => (name.to_string(), shaped(&[k])),
            _ => {
                let cols = self.dim();
                let left = name == "solve" || self.rng.gen_bool(0.5);
                let b_aval = if left {
                    shaped(&[n, cols])
                } else {
                    shaped(&[cols, n])
                };
                let b = self.operand(&b_aval);
                let prim = if name == "solve" {
                    format!("solve[transpose_a={}]", self.rng.gen_bool(0.5))
                } else {
                    let mut flag = || self.rng.gen_bool(0.5);
                    format!(
                        "triangular_solve[left_side={left} lower={} transpose_a={} unit_diagonal={}]",
                        flag(),
                        flag(),
                        flag()
                    )
                };
                self.emit(prim, vec![a, b], b_aval);
                return;
            }
        };
        self.emit(prim, vec![a], out);
    }

    /// An index array's dtype.
    fn index_dtype(&mut self) -> DType {
        *[DType::I32, DType::I64].choose(self.rng).expect("two")
    }

    /// `gather`, `scatter_add` or `scatter` on an operand of rank >= 1 with indices (new
    /// inputs or constants, so their values are random: in range, negative, huge).
    fn gather_or_scatter(&mut self, name: &str) {
        let dtypes = match name {
            "scatter_add" => NUMERIC,
            _ => ANY,
        };
        let x = self.arg(dtypes, 1);
        let a = self.avals[x].clone();
        let axis = self.rng.gen_range(0..a.ndim());
        let batch = self.rng.gen_range(0..=axis);
        let extra = self.rng.gen_range(0..3);
        let mut ishape = a.shape[..batch].to_vec();
        ishape.extend(self.shape(extra));
        let d = self.index_dtype();
        let idx = self.operand(&Aval::new(ishape.clone(), d));
        let mode = *["clip", "fill"].choose(self.rng).expect("two");
        let mut gshape = a.shape[..axis].to_vec();
        gshape.extend_from_slice(&ishape[batch..]);
        gshape.extend_from_slice(&a.shape[axis + 1..]);
        let params = format!("axis={axis} batch={batch} mode={mode}");
        if name == "gather" {
            self.emit(
                format!("gather[{params}]"),
                vec![Operand::Var(x), idx],
                Aval::new(gshape, a.dtype),
            );
            return;
        }
        let u = self.operand(&Aval::new(gshape, a.dtype));
        let prim = if name == "scatter_add" {
            format!("scatter_add[{params}]")
        } else {
            let combines: &[&str] = if a.dtype.is_numeric() {
                &["set", "mul", "min", "max"]
            } else {
                &["set"]
            };
            let c = combines.choose(self.rng).expect("nonempty");
            format!("scatter[{params} combine={c}]")
        };
        self.emit(prim, vec![Operand::Var(x), idx, u], a);
    }

    /// `dynamic_slice` or `dynamic_update_slice` with integer scalar starts (literals or
    /// inputs, so any value).
    fn dynamic_slice(&mut self, name: &str) {
        let x = self.arg(ANY, 0);
        let a = self.avals[x].clone();
        let window: Vec<usize> = a.shape.iter().map(|&n| self.rng.gen_range(0..=n)).collect();
        let mut starts = vec![];
        for _ in 0..a.ndim() {
            let d = self.index_dtype();
            starts.push(self.operand(&Aval::scalar(d)));
        }
        if name == "dynamic_slice" {
            let mut ops = vec![Operand::Var(x)];
            ops.extend(starts);
            self.emit(
                format!("dynamic_slice[sizes={}]", tuple(&window)),
                ops,
                Aval::new(window, a.dtype),
            );
        } else {
            let u = self.operand(&Aval::new(window, a.dtype));
            let mut ops = vec![Operand::Var(x), u];
            ops.extend(starts);
            self.emit("dynamic_update_slice".into(), ops, a);
        }
    }

    fn dot_general(&mut self) {
        let l = self.arg(NUMERIC, 0);
        let a = self.avals[l].clone();
        let (mut lb, mut lc, mut lfree) = (vec![], vec![], vec![]);
        for d in 0..a.ndim() {
            match self.rng.gen_range(0..20) {
                0..=4 => lb.push(d),
                5..=11 => lc.push(d),
                _ => lfree.push(d),
            }
        }
        lb.shuffle(self.rng);
        lc.shuffle(self.rng);
        let n_free = self
            .rng
            .gen_range(0..3)
            .min(4usize.saturating_sub(lb.len() + lc.len()));
        let r_rank = lb.len() + lc.len() + n_free;
        let mut pos: Vec<usize> = (0..r_rank).collect();
        pos.shuffle(self.rng);
        let rb: Vec<usize> = pos[..lb.len()].to_vec();
        let rc: Vec<usize> = pos[lb.len()..lb.len() + lc.len()].to_vec();
        let mut rshape = self.shape(r_rank);
        for (i, &p) in rb.iter().enumerate() {
            rshape[p] = a.shape[lb[i]];
        }
        for (i, &p) in rc.iter().enumerate() {
            rshape[p] = a.shape[lc[i]];
        }
        let r = self.operand(&Aval::new(rshape.clone(), a.dtype));
        let mut shape: Vec<usize> = lb.iter().map(|&d| a.shape[d]).collect();
        shape.extend(lfree.iter().map(|&d| a.shape[d]));
        shape.extend(
            (0..r_rank)
                .filter(|p| !rb.contains(p) && !rc.contains(p))
                .map(|p| rshape[p]),
        );
        self.emit(
            format!(
                "dot_general[lhs_contracting={} rhs_contracting={} lhs_batch={} rhs_batch={}]",
                tuple(&lc),
                tuple(&rc),
                tuple(&lb),
                tuple(&rb)
            ),
            vec![Operand::Var(l), r],
            Aval::new(shape, a.dtype),
        );
    }

    /// One to three outputs, mostly recent equations; sometimes a single float scalar made
    /// by a full reduction (so the program has a gradient).
    fn outputs(&mut self, exact: bool) -> Vec<Operand> {
        if self.rng.gen_bool(0.35) {
            let x = self.arg(FLOAT, 0);
            let a = self.avals[x].clone();
            if a.ndim() == 0 {
                return vec![Operand::Var(x)];
            }
            let op = if exact { "reduce_max" } else { "reduce_sum" };
            let axes: Vec<usize> = (0..a.ndim()).collect();
            let y = self.emit(
                format!("{op}[axes={}]", tuple(&axes)),
                vec![Operand::Var(x)],
                Aval::scalar(a.dtype),
            );
            return vec![Operand::Var(y)];
        }
        let n = self.rng.gen_range(1..4);
        (0..n)
            .map(|_| {
                let k = self.rng.gen_range(0..20);
                if k < 14 && !self.eqns.is_empty() {
                    let from = self.eqns.len().saturating_sub(3);
                    let e = self.rng.gen_range(from..self.eqns.len());
                    match self.eqns[e].outs.choose(self.rng) {
                        Some(&v) => Operand::Var(v),
                        None => self.literal(DType::F64),
                    }
                } else if k < 18 && !self.avals.is_empty() {
                    Operand::Var(self.rng.gen_range(0..self.avals.len()))
                } else {
                    let d = self.dtype(ANY);
                    self.literal(d)
                }
            })
            .collect()
    }

    /// The canonical text of the program.
    fn text(&self, outs: &[Operand]) -> String {
        let order = self
            .consts
            .iter()
            .map(|(v, _)| *v)
            .chain(self.inputs.iter().copied())
            .chain(self.eqns.iter().flat_map(|e| e.outs.iter().copied()));
        let mut names = vec![String::new(); self.avals.len()];
        for (k, v) in order.enumerate() {
            names[v] = name_of(k);
        }
        let op = |o: &Operand| match o {
            Operand::Var(v) => names[*v].clone(),
            Operand::Lit(s) => s.clone(),
        };
        let mut s = String::from("{ lambda");
        for (v, vals) in &self.consts {
            s.push_str(&format!(" {}:{} = {vals}", names[*v], self.avals[*v]));
        }
        s.push_str(" ;");
        for v in &self.inputs {
            s.push_str(&format!(" {}:{}", names[*v], self.avals[*v]));
        }
        s.push_str(" . let\n");
        for e in &self.eqns {
            s.push_str("   ");
            for &v in &e.outs {
                s.push_str(&format!(" {}:{}", names[v], self.avals[v]));
            }
            // a sub-program's lines continue under the equation, as the printer does
            s.push_str(&format!(" = {}", e.prim.replace('\n', "\n      ")));
            for o in &e.ops {
                s.push(' ');
                s.push_str(&op(o));
            }
            s.push('\n');
        }
        let outs: Vec<String> = outs.iter().map(op).collect();
        s.push_str(&format!("  in ({}) }}", outs.join(", ")));
        s
    }
}

/// A program's text with its continuation lines indented four more spaces, as the printer
/// writes a program parameter.
fn indent(text: &str) -> String {
    text.replace('\n', "\n    ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn names_follow_the_printer() {
        // the printer's definition: count up, skipping reserved words
        let mut slow = vec![];
        let mut k = 0;
        while slow.len() < 20_000 {
            let n = spreadsheet_name(k);
            if !RESERVED.contains(&n.as_str()) {
                slow.push(n);
            }
            k += 1;
        }
        for (i, n) in slow.iter().enumerate() {
            assert_eq!(&name_of(i), n, "{i}");
        }
        assert_eq!(name_of(0), "a");
        assert_eq!(name_of(25), "z");
        assert_eq!(name_of(26), "ba");
        // "in" is skipped
        let names: Vec<String> = (0..300).map(name_of).collect();
        assert!(!names.iter().any(|n| RESERVED.contains(&n.as_str())));
    }

    #[test]
    fn generated_programs_parse_and_print_back_to_themselves() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut seen = std::collections::HashSet::new();
        // how many programs hold control flow, and control flow inside control flow
        let (mut control, mut nested) = (0, 0);
        fn depth(p: &ferrax::Program) -> usize {
            p.eqns
                .iter()
                .flat_map(|e| e.prim.subprograms())
                .map(|q| 1 + depth(q))
                .max()
                .unwrap_or(0)
        }
        for i in 0..400 {
            let text = random_program(&mut rng, i % 2 == 0);
            let p = ferrax::Program::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(p.to_string(), text);
            for e in &p.eqns {
                seen.insert(e.prim.name());
            }
            let d = depth(&p);
            control += (d >= 1) as usize;
            nested += (d >= 2) as usize;
            assert!(d <= MAX_DEPTH, "{text}");
        }
        assert!(control >= 80 && nested >= 10, "{control} {nested}");
        for name in PRIMITIVE_NAMES.iter().filter(|n| {
            !matches!(
                **n,
                "while"
                    | "while_linear"
                    | "checkpoint"
                    | "checkpoint_name"
                    | "custom_jvp"
                    | "custom_vjp"
                    | "custom_lin"
            ) && !COLLECTIVE.contains(n)
        }) {
            assert!(seen.contains(name), "the generator never used `{name}`");
        }
    }
}
