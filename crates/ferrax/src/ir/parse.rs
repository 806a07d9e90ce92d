//! The text form of programs, read back: [`Program::parse`].
//!
//! The inverse of the printer (`print`): a lexer and a recursive reader for the grammar in
//! `docs/program-text.md`. It checks names and types as it reads, so an error in hand-written
//! text is reported at its line and column, and each equation it reads remembers its
//! position (`<program text>:LINE:COL`) for errors found later.

use std::collections::HashMap;

use crate::ir::array::{Array, Data};
use crate::ir::aval::Aval;
use crate::ir::dtype::{parse_value, DType, Scalar};
use crate::ir::error::{Error, Result, SourceLoc};
use crate::ir::param::Param;
use crate::ir::primitive::{Closed, Primitive};
use crate::ir::print::{PROGRAM_TEXT, RESERVED};
use crate::ir::program::{Atom, Equation, Program, Var, MAX_NESTING};

impl Program {
    /// Reads program text (as printed by `Display`), checking names and types as it goes.
    /// Errors give the line and column.
    ///
    /// ```
    /// let text = "{ lambda ; a:f64[] . let\n    b:f64[] = sin a\n  in (b) }";
    /// let p = ferrax::Program::parse(text).unwrap();
    /// assert_eq!(p.to_string(), text);
    /// let err = ferrax::Program::parse("{ lambda ; a:f64[] . let b:f32[] = sin a in (b) }").unwrap_err();
    /// assert!(err.to_string().contains("line 1, column 26"));
    /// ```
    pub fn parse(text: &str) -> Result<Program> {
        let toks = lex(text)?;
        let mut p = Parser {
            toks,
            pos: 0,
            names: HashMap::new(),
            prog: empty_program(),
            depth: 0,
        };
        p.program()?;
        if *p.peek() != Tok::End {
            return p.err(format!(
                "unexpected {} after the program",
                describe(p.peek())
            ));
        }
        Ok(p.prog)
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Sym(char),
    Ident(String),
    Num(String),
    End,
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    line: usize,
    col: usize,
}

fn lex(text: &str) -> Result<Vec<Token>> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let (mut i, mut line, mut col) = (0, 1, 1);
    while i < chars.len() {
        let c = chars[i];
        let (l0, c0) = (line, col);
        if c == '\n' {
            i += 1;
            line += 1;
            col = 1;
            continue;
        }
        if c.is_whitespace() {
            i += 1;
            col += 1;
            continue;
        }
        if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        let start = i;
        let tok = if "{}()[];.,:=".contains(c) {
            i += 1;
            Tok::Sym(c)
        } else if c.is_ascii_alphabetic() || c == '_' {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            Tok::Ident(chars[start..i].iter().collect())
        } else if c.is_ascii_digit() || c == '-' || c == '+' {
            i += 1;
            while i < chars.len() {
                let d = chars[i];
                let after_exp = matches!(chars[i - 1], 'e' | 'E');
                if d.is_ascii_alphanumeric() || d == '.' || ((d == '-' || d == '+') && after_exp) {
                    i += 1;
                } else {
                    break;
                }
            }
            Tok::Num(chars[start..i].iter().collect())
        } else {
            return Err(Error::Parse {
                line: l0,
                col: c0,
                msg: format!("unexpected character `{c}`"),
            });
        };
        col += i - start;
        out.push(Token {
            tok,
            line: l0,
            col: c0,
        });
    }
    out.push(Token {
        tok: Tok::End,
        line,
        col,
    });
    Ok(out)
}

fn empty_program() -> Program {
    Program {
        avals: vec![],
        consts: vec![],
        inputs: vec![],
        eqns: vec![],
        outputs: vec![],
    }
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    names: HashMap<String, Var>,
    prog: Program,
    /// How many programs enclose the one being read.
    depth: usize,
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Sym(c) => format!("`{c}`"),
        Tok::Ident(s) => format!("`{s}`"),
        Tok::Num(s) => format!("number `{s}`"),
        Tok::End => "the end of the text".to_string(),
    }
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].tok
    }
    fn peek2(&self) -> &Tok {
        &self.toks[(self.pos + 1).min(self.toks.len() - 1)].tok
    }
    fn err_at<T>(&self, k: usize, msg: impl Into<String>) -> Result<T> {
        let t = &self.toks[k.min(self.toks.len() - 1)];
        Err(Error::Parse {
            line: t.line,
            col: t.col,
            msg: msg.into(),
        })
    }
    fn err<T>(&self, msg: impl Into<String>) -> Result<T> {
        self.err_at(self.pos, msg)
    }
    fn next(&mut self) -> Tok {
        let t = self.toks[self.pos].tok.clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }
    fn expect_sym(&mut self, c: char) -> Result<()> {
        if *self.peek() == Tok::Sym(c) {
            self.next();
            Ok(())
        } else {
            self.err(format!("expected `{c}`, found {}", describe(self.peek())))
        }
    }
    fn expect_word(&mut self, w: &str) -> Result<()> {
        if *self.peek() == Tok::Ident(w.to_string()) {
            self.next();
            Ok(())
        } else {
            self.err(format!("expected `{w}`, found {}", describe(self.peek())))
        }
    }
    fn ident(&mut self, what: &str) -> Result<String> {
        match self.peek().clone() {
            Tok::Ident(s) => {
                self.next();
                Ok(s)
            }
            t => self.err(format!("expected {what}, found {}", describe(&t))),
        }
    }
    fn uint(&mut self, what: &str) -> Result<usize> {
        match self.peek().clone() {
            Tok::Num(s) => match s.parse::<usize>() {
                Ok(n) => {
                    self.next();
                    Ok(n)
                }
                Err(_) => self.err(format!(
                    "expected {what} (a non-negative integer), found `{s}`"
                )),
            },
            t => self.err(format!("expected {what}, found {}", describe(&t))),
        }
    }

    /// `dtype[d0,d1,...]`
    fn aval(&mut self) -> Result<Aval> {
        let k = self.pos;
        let name = self.ident("a dtype")?;
        let Some(dtype) = DType::from_name(&name) else {
            return self.err_at(
                k,
                format!("unknown dtype `{name}` (expected f32, f64, i32, i64 or bool)"),
            );
        };
        self.expect_sym('[')?;
        let shape = self.uints_until(']', "a dimension size")?;
        Ok(Aval::new(shape, dtype))
    }

    /// Comma-separated non-negative integers up to the closing symbol `close` (consumed),
    /// a trailing comma allowed: a shape's `2,3]` or a tuple's `0,1)`.
    fn uints_until(&mut self, close: char, what: &str) -> Result<Vec<usize>> {
        let mut v = vec![];
        while *self.peek() != Tok::Sym(close) {
            v.push(self.uint(what)?);
            if *self.peek() == Tok::Sym(',') {
                self.next();
            } else if *self.peek() != Tok::Sym(close) {
                return self.err(format!(
                    "expected `,` or `{close}`, found {}",
                    describe(self.peek())
                ));
            }
        }
        self.next();
        Ok(v)
    }

    /// `name:aval`, defining a new variable.
    fn binder(&mut self) -> Result<Var> {
        let (name, aval) = self.binder_parts()?;
        Ok(self.define(name, aval))
    }

    /// `name:aval` read but not yet defined: an equation defines its output only after its
    /// operands are read, so `b = exp b` is an undefined-variable error.
    fn binder_parts(&mut self) -> Result<(String, Aval)> {
        let k = self.pos;
        let name = self.ident("a variable name")?;
        if RESERVED.contains(&name.as_str()) {
            return self.err_at(
                k,
                format!("`{name}` is a reserved word, not a variable name"),
            );
        }
        if self.names.contains_key(&name) {
            return self.err_at(k, format!("variable `{name}` is defined twice"));
        }
        self.expect_sym(':')?;
        let ka = self.pos;
        let aval = self.aval()?;
        if let Err(e) = aval.validate("program text") {
            return self.err_at(ka, e.to_string());
        }
        Ok((name, aval))
    }

    fn define(&mut self, name: String, aval: Aval) -> Var {
        let v = Var(self.prog.avals.len() as u32);
        self.prog.avals.push(aval);
        self.names.insert(name, v);
        v
    }

    /// A literal's value text (a number or `true`/`false`/`inf`/`nan`), then `:dtype`.
    fn literal(&mut self) -> Result<Scalar> {
        let k = self.pos;
        let text = match self.next() {
            Tok::Num(s) | Tok::Ident(s) => s,
            t => return self.err_at(k, format!("expected a literal, found {}", describe(&t))),
        };
        self.expect_sym(':')?;
        let kd = self.pos;
        let dname = self.ident("a dtype")?;
        let Some(dtype) = DType::from_name(&dname) else {
            return self.err_at(kd, format!("unknown dtype `{dname}`"));
        };
        match parse_value(&text, dtype) {
            Some(s) => Ok(s),
            None => self.err_at(k, format!("`{text}` is not a value of dtype {dtype}")),
        }
    }

    fn atom(&mut self) -> Result<Atom> {
        let k = self.pos;
        match self.peek().clone() {
            Tok::Num(_) => Ok(Atom::Lit(self.literal()?)),
            Tok::Ident(s) if RESERVED.contains(&s.as_str()) && *self.peek2() == Tok::Sym(':') => {
                Ok(Atom::Lit(self.literal()?))
            }
            Tok::Ident(s) => {
                self.next();
                match self.names.get(&s) {
                    Some(v) => Ok(Atom::Var(*v)),
                    None => self.err_at(k, format!("variable `{s}` is not defined")),
                }
            }
            t => self.err(format!(
                "expected a variable or literal, found {}",
                describe(&t)
            )),
        }
    }

    fn param_value(&mut self) -> Result<Param> {
        let k = self.pos;
        match self.next() {
            Tok::Num(s) => s
                .parse::<i64>()
                .map(Param::Int)
                .or_else(|_| self.err_at(k, format!("expected an integer, found `{s}`"))),
            Tok::Ident(s) if s == "true" => Ok(Param::Bool(true)),
            Tok::Ident(s) if s == "false" => Ok(Param::Bool(false)),
            Tok::Ident(s) => match DType::from_name(&s) {
                Some(d) => Ok(Param::DType(d)),
                None => Ok(Param::Name(s)),
            },
            Tok::Sym('{') => {
                self.pos = k;
                Ok(Param::Program(Closed::new(self.nested_program()?)))
            }
            // a tuple of programs: `({ lambda ... }, { lambda ... })`
            Tok::Sym('(') if *self.peek() == Tok::Sym('{') => {
                let mut v = vec![];
                while *self.peek() != Tok::Sym(')') {
                    v.push(Closed::new(self.nested_program()?));
                    if *self.peek() == Tok::Sym(',') {
                        self.next();
                    } else if *self.peek() != Tok::Sym(')') {
                        return self.err(format!(
                            "expected `,` or `)`, found {}",
                            describe(self.peek())
                        ));
                    }
                }
                self.next();
                Ok(Param::Programs(v))
            }
            // a tuple of names: `(h1,h2)`
            Tok::Sym('(') if matches!(self.peek(), Tok::Ident(_)) => {
                let mut v = vec![];
                loop {
                    let end = match (self.next(), self.next()) {
                        (Tok::Ident(n), Tok::Sym(')')) => {
                            v.push(n);
                            true
                        }
                        (Tok::Ident(n), Tok::Sym(',')) => {
                            v.push(n);
                            *self.peek() == Tok::Sym(')') && self.next() == Tok::Sym(')')
                        }
                        (a, b) => {
                            let (a, b) = (describe(&a), describe(&b));
                            return self
                                .err(format!("expected a name and `,` or `)`, found {a} {b}"));
                        }
                    };
                    if end {
                        return Ok(Param::Names(v));
                    }
                }
            }
            Tok::Sym('(') => Ok(Param::Ints(self.uints_until(')', "a tuple element")?)),
            t => self.err_at(
                k,
                format!("expected a parameter value, found {}", describe(&t)),
            ),
        }
    }

    fn equation(&mut self) -> Result<()> {
        let start = self.pos;
        // one binder per output: `b:f64[] c:f64[3] = scan[...] ...`; none for a control-flow
        // equation without outputs (a scan with neither carry nor ys prints as `= scan[...]`)
        let mut outs: Vec<(String, Aval)> = vec![];
        while *self.peek() != Tok::Sym('=') {
            let k = self.pos;
            let (name, aval) = self.binder_parts()?;
            if outs.iter().any(|(n, _)| *n == name) {
                return self.err_at(k, format!("variable `{name}` is defined twice"));
            }
            outs.push((name, aval));
        }
        self.expect_sym('=')?;
        let kp = self.pos;
        let name = self.ident("a primitive name")?;
        let mut params = vec![];
        if *self.peek() == Tok::Sym('[') {
            self.next();
            while *self.peek() != Tok::Sym(']') {
                let key = self.ident("a parameter name")?;
                self.expect_sym('=')?;
                params.push((key, self.param_value()?));
            }
            self.next();
        }
        let prim = match Primitive::from_parts(&name, &params) {
            Ok(p) => p,
            Err(msg) => return self.err_at(kp, msg),
        };
        let mut inputs = vec![];
        // Operands run until the next equation (`name:`) or `in`.
        loop {
            match (self.peek(), self.peek2()) {
                (Tok::Ident(s), _) if s == "in" => break,
                (Tok::Ident(s), Tok::Sym(':')) if !RESERVED.contains(&s.as_str()) => break,
                (Tok::Ident(_), _) | (Tok::Num(_), _) => inputs.push(self.atom()?),
                _ => break,
            }
        }
        let avals: Vec<Aval> = inputs.iter().map(|a| self.prog.atom_aval(a)).collect();
        let refs: Vec<&Aval> = avals.iter().collect();
        let declared: Vec<Aval> = outs.iter().map(|(_, a)| a.clone()).collect();
        match prim.out_avals(&refs) {
            Err(e) => return self.err_at(kp, e.to_string()),
            Ok(got) if got != declared => {
                let list = |v: &[Aval]| {
                    if v.is_empty() {
                        return "no outputs".to_string();
                    }
                    v.iter()
                        .map(|a| a.to_string())
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                return self.err_at(
                    start,
                    format!(
                        "declared {} but `{}` of these operands gives {}",
                        list(&declared),
                        prim.name(),
                        list(&got)
                    ),
                );
            }
            Ok(_) => {}
        }
        let outs = outs
            .into_iter()
            .map(|(name, aval)| self.define(name, aval))
            .collect();
        let at = &self.toks[start];
        self.prog.eqns.push(Equation {
            prim,
            inputs,
            outs,
            loc: Some(SourceLoc {
                file: PROGRAM_TEXT,
                line: at.line as u32,
                col: at.col as u32,
            }),
        });
        Ok(())
    }

    /// A program inside a parameter: its own names (it is closed: it cannot name the
    /// enclosing program's variables), read with the same tokens.
    fn nested_program(&mut self) -> Result<Program> {
        if self.depth >= MAX_NESTING {
            return self.err(format!("programs nested more than {MAX_NESTING} deep"));
        }
        let names = std::mem::take(&mut self.names);
        let outer = std::mem::replace(&mut self.prog, empty_program());
        self.depth += 1;
        let result = self.program();
        self.depth -= 1;
        let inner = std::mem::replace(&mut self.prog, outer);
        self.names = names;
        result?;
        if let Err(e) = inner.check() {
            return self.err(format!("the nested program is ill-typed: {e}"));
        }
        Ok(inner)
    }

    fn program(&mut self) -> Result<()> {
        self.expect_sym('{')?;
        self.expect_word("lambda")?;
        while *self.peek() != Tok::Sym(';') {
            let v = self.binder()?;
            self.expect_sym('=')?;
            let aval = self.prog.aval(v).clone();
            let kv = self.pos;
            self.expect_sym('[')?;
            let mut vals = vec![];
            while *self.peek() != Tok::Sym(']') {
                let kt = self.pos;
                let text = match self.next() {
                    Tok::Num(s) | Tok::Ident(s) => s,
                    t => {
                        return self.err_at(kt, format!("expected a value, found {}", describe(&t)))
                    }
                };
                match parse_value(&text, aval.dtype) {
                    Some(s) => vals.push(s),
                    None => {
                        return self.err_at(
                            kt,
                            format!("`{text}` is not a value of dtype {}", aval.dtype),
                        )
                    }
                }
                if *self.peek() == Tok::Sym(',') {
                    self.next();
                }
            }
            self.next();
            if vals.len() != aval.size() {
                return self.err_at(
                    kv,
                    format!(
                        "constant declared {aval} needs {} values, found {}",
                        aval.size(),
                        vals.len()
                    ),
                );
            }
            let value = array_of(&vals, &aval).or_else(|e| self.err_at(kv, e.to_string()))?;
            self.prog.consts.push((v, value));
        }
        self.next();
        while *self.peek() != Tok::Sym('.') {
            let v = self.binder()?;
            self.prog.inputs.push(v);
        }
        self.next();
        self.expect_word("let")?;
        while *self.peek() != Tok::Ident("in".into()) {
            if *self.peek() == Tok::End {
                return self.err("expected an equation or `in`, found the end of the text");
            }
            self.equation()?;
        }
        self.next();
        self.expect_sym('(')?;
        while *self.peek() != Tok::Sym(')') {
            let a = self.atom()?;
            self.prog.outputs.push(a);
            if *self.peek() == Tok::Sym(',') {
                self.next();
            } else if *self.peek() != Tok::Sym(')') {
                return self.err(format!(
                    "expected `,` or `)`, found {}",
                    describe(self.peek())
                ));
            }
        }
        self.next();
        self.expect_sym('}')?;
        Ok(())
    }
}

/// An array of an aval from scalars already known to be of its dtype.
pub(crate) fn array_of(vals: &[Scalar], aval: &Aval) -> Result<Array> {
    macro_rules! collect {
        ($v:ident) => {
            vals.iter()
                .map(|s| match s {
                    Scalar::$v(x) => *x,
                    _ => unreachable!("values were parsed with the constant's dtype"),
                })
                .collect()
        };
    }
    let data = match aval.dtype {
        DType::F32 => Data::F32(collect!(F32)),
        DType::F64 => Data::F64(collect!(F64)),
        DType::I32 => Data::I32(collect!(I32)),
        DType::I64 => Data::I64(collect!(I64)),
        DType::Bool => Data::Bool(collect!(Bool)),
    };
    Array::from_data(data, &aval.shape)
}
