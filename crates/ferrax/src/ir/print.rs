//! The text form of programs, printed: a jaxpr-like `Display` for [`Program`].
//!
//! Sits beside the IR: every pass's output can be printed, pinned in golden tests and read
//! back (`parse`). Printing is canonical (variables are renamed `a, b, ..., z, ba, bb, ...`
//! in order of definition, skipping the words the parser reserves), so print → parse →
//! print is the identity. The grammar is written down in `docs/program-text.md`.

use std::collections::HashMap;
use std::fmt::{self, Write as _};

use crate::ir::array::write_values;
use crate::ir::program::{Atom, Equation, Program, Var};

/// The file name in the source location of a parsed equation: errors about it (a type
/// error when it runs, a nonlinearity found by `transpose`) give its line and column in the
/// text, as `<program text>:LINE:COL`.
pub const PROGRAM_TEXT: &str = "<program text>";

/// Words the printer never uses as variable names, because the parser reads them otherwise.
pub(crate) const RESERVED: &[&str] = &["in", "let", "lambda", "true", "false", "inf", "nan"];

/// a..z, ba..bz, ca.. : base 26 with `a` as the digit zero and no leading zero.
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
    String::from_utf8(s).expect("ascii letters")
}

/// The canonical variable names in order, skipping reserved words. Names are handed out in
/// sequence, so naming a program costs O(1) per variable.
struct NameGen {
    next: usize,
}

impl NameGen {
    fn next(&mut self) -> String {
        loop {
            let n = spreadsheet_name(self.next);
            self.next += 1;
            if !RESERVED.contains(&n.as_str()) {
                return n;
            }
        }
    }
}

struct Names(HashMap<Var, String>);

impl Names {
    fn new(p: &Program) -> Names {
        let order = p
            .consts
            .iter()
            .map(|(v, _)| *v)
            .chain(p.inputs.iter().copied())
            .chain(p.eqns.iter().flat_map(|e| e.outs.iter().copied()));
        let mut m = HashMap::new();
        let mut gen = NameGen { next: 0 };
        for v in order {
            m.entry(v).or_insert_with(|| gen.next());
        }
        Names(m)
    }
    fn var(&self, v: Var) -> String {
        self.0
            .get(&v)
            .cloned()
            .unwrap_or_else(|| format!("undefined_{}", v.0))
    }
    fn atom(&self, a: &Atom) -> String {
        match a {
            Atom::Var(v) => self.var(*v),
            Atom::Lit(s) => s.to_string(),
        }
    }
}

/// A variable's aval for printing: a hand-built program may name a variable beyond its
/// table, and printing it must still work (`check` reports the problem).
struct AvalOf<'a>(&'a Program, Var);

impl fmt::Display for AvalOf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.avals.get(self.1.index()) {
            Some(a) => write!(f, "{a}"),
            None => f.write_str("?[]"),
        }
    }
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = Names::new(self);
        f.write_str("{ lambda")?;
        for (v, arr) in &self.consts {
            write!(f, " {}:{} = ", names.var(*v), AvalOf(self, *v))?;
            write_values(f, arr)?;
        }
        f.write_str(" ;")?;
        for v in &self.inputs {
            write!(f, " {}:{}", names.var(*v), AvalOf(self, *v))?;
        }
        f.write_str(" . let\n")?;
        for e in &self.eqns {
            f.write_str("   ")?;
            for v in &e.outs {
                write!(f, " {}:{}", names.var(*v), AvalOf(self, *v))?;
            }
            // a sub-program's lines continue under the equation, indented one level deeper
            let prim = e.prim.to_string().replace('\n', "\n      ");
            write!(f, " = {prim}")?;
            for a in &e.inputs {
                write!(f, " {}", names.atom(a))?;
            }
            f.write_str("\n")?;
        }
        f.write_str("  in (")?;
        for (i, a) in self.outputs.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(&names.atom(a))?;
        }
        f.write_str(") }")
    }
}

impl Equation {
    /// One equation as program text, with variables named by their index (`v12`): for
    /// messages about a single equation outside its program.
    pub fn describe(&self, p: &Program) -> String {
        let mut s = String::new();
        for v in &self.outs {
            write!(s, "v{}:{} ", v.0, AvalOf(p, *v)).expect("writing to a String");
        }
        write!(s, "= {}", self.prim).expect("writing to a String");
        for a in &self.inputs {
            match a {
                Atom::Var(v) => write!(s, " v{}", v.0),
                Atom::Lit(l) => write!(s, " {l}"),
            }
            .expect("writing to a String");
        }
        s
    }
}
