//! A small language for models of data: `y ~ a * exp(-b * x) + c`.
//!
//! What `ferrax fit` reads, and what a program can use to fit a formula typed by a person.
//! The text is parsed into a tree (numbers, names, `+ - * / ^`, function calls), its names
//! are then bound to the columns of a [`Table`](crate::table::Table) and to the parameters
//! being fitted, and the bound model is evaluated on tensors, so every transformation of
//! ferrax applies to it (the solvers linearize it like any residual function).
//!
//! Why a language of its own rather than ferrax's program text: the program text is typed
//! (every value's shape and dtype written out) and made for transformations to print; a
//! person fitting data writes `b1 * (1 - exp(-b2 * x))`, the form NIST, SciPy and R use.
//!
//! Grammar (whitespace and newlines are free; `#` starts a comment to the end of the line):
//!
//! ```text
//! model  := [name '~'] expr
//! expr   := term (('+' | '-') term)*
//! term   := unary (('*' | '/') unary)*
//! unary  := '-' unary | '+' unary | power
//! power  := atom [('^' | '**') unary]          (right-associative: 2^3^2 = 2^9)
//! atom   := number | name | name '(' expr (',' expr)* ')' | '(' expr ')'
//! ```
//!
//! Functions: `exp log ln log10 sqrt abs sin cos tan asin acos atan arctan sinh cosh tanh
//! erf` of one argument, `pow atan2 min max` of two; the constant `pi`. A power whose
//! exponent is an integer literal (`x^2`, `x^-1`) is an integer power, defined for a
//! negative base. Every error names the line and column (1-based) where it was found.

use ferrax::Tensor;

use crate::error::{Result, SolverError};

/// How deep parentheses, powers and signs may nest: far beyond any formula, and a bound
/// on the parser's recursion for text that is not one.
const MAX_DEPTH: usize = 200;

/// How many operations and calls a model may hold: far beyond any formula, and a bound on
/// the depth of the left-leaning trees a long sum builds (walked recursively).
const MAX_NODES: usize = 2000;

/// A position in the model's text (1-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pos {
    /// The line, from 1.
    pub line: usize,
    /// The column, from 1, counted in characters.
    pub column: usize,
}

fn error(at: Pos, msg: impl Into<String>) -> SolverError {
    SolverError::Syntax {
        what: "model".into(),
        line: at.line,
        column: at.column,
        msg: msg.into(),
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Num(f64),
    Name(String),
    Op(&'static str),
    End,
}

fn tokenize(text: &str) -> Result<Vec<(Token, Pos)>> {
    let mut out = vec![];
    let chars: Vec<char> = text.chars().collect();
    let (mut i, mut line, mut col) = (0, 1, 1);
    while i < chars.len() {
        let c = chars[i];
        let at = Pos { line, column: col };
        let start = i;
        if c == '\n' {
            (i, line, col) = (i + 1, line + 1, 1);
            continue;
        }
        if c.is_whitespace() {
            (i, col) = (i + 1, col + 1);
            continue;
        }
        if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    i = j;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let s: String = chars[start..i].iter().collect();
            let v: f64 = s
                .parse()
                .map_err(|_| error(at, format!("`{s}` is not a number")))?;
            if !v.is_finite() {
                return Err(error(at, format!("`{s}` is not a finite number")));
            }
            out.push((Token::Num(v), at));
        } else if c.is_alphabetic() || c == '_' {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((Token::Name(chars[start..i].iter().collect()), at));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let op = if two == "**" {
                "**"
            } else {
                match c {
                    '+' => "+",
                    '-' => "-",
                    '*' => "*",
                    '/' => "/",
                    '^' => "^",
                    '(' => "(",
                    ')' => ")",
                    ',' => ",",
                    '~' => "~",
                    _ => return Err(error(at, format!("unexpected character `{c}`"))),
                }
            };
            i += op.len();
            out.push((Token::Op(op), at));
        }
        col += i - start;
    }
    out.push((Token::End, Pos { line, column: col }));
    Ok(out)
}

/// The functions of the language: name, arity.
const FUNCTIONS: &[(&str, usize)] = &[
    ("exp", 1),
    ("log", 1),
    ("ln", 1),
    ("log10", 1),
    ("sqrt", 1),
    ("abs", 1),
    ("sin", 1),
    ("cos", 1),
    ("tan", 1),
    ("asin", 1),
    ("acos", 1),
    ("atan", 1),
    ("arctan", 1),
    ("sinh", 1),
    ("cosh", 1),
    ("tanh", 1),
    ("erf", 1),
    ("pow", 2),
    ("atan2", 2),
    ("min", 2),
    ("max", 2),
];

/// A parsed expression.
#[derive(Clone, Debug, PartialEq)]
enum Node {
    Num(f64),
    Name(String, Pos),
    Neg(Box<Node>),
    Bin(&'static str, Box<Node>, Box<Node>),
    /// A power with an integer literal exponent.
    Powi(Box<Node>, i32),
    Call(&'static str, Vec<Node>),
}

struct Parser {
    tokens: Vec<(Token, Pos)>,
    at: usize,
    depth: usize,
    nodes: usize,
}

impl Parser {
    fn peek(&self) -> &(Token, Pos) {
        &self.tokens[self.at.min(self.tokens.len() - 1)]
    }

    fn next(&mut self) -> (Token, Pos) {
        let t = self.peek().clone();
        self.at += 1;
        t
    }

    fn eat(&mut self, op: &'static str) -> bool {
        if self.peek().0 == Token::Op(op) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, op: &'static str, context: &str) -> Result<()> {
        let (t, at) = self.next();
        if t == Token::Op(op) {
            Ok(())
        } else {
            Err(error(
                at,
                format!("expected `{op}` {context}, found {}", describe(&t)),
            ))
        }
    }

    fn nested<T>(&mut self, at: Pos, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(error(at, format!("nested more than {MAX_DEPTH} deep")));
        }
        let r = f(self);
        self.depth -= 1;
        r
    }

    /// Counts one more operation or call against [`MAX_NODES`].
    fn count(&mut self, at: Pos) -> Result<()> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(error(at, format!("more than {MAX_NODES} operations")));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Node> {
        let mut lhs = self.term()?;
        loop {
            let at = self.peek().1;
            let op = if self.eat("+") {
                "+"
            } else if self.eat("-") {
                "-"
            } else {
                return Ok(lhs);
            };
            self.count(at)?;
            let rhs = self.term()?;
            lhs = Node::Bin(op, Box::new(lhs), Box::new(rhs));
        }
    }

    fn term(&mut self) -> Result<Node> {
        let mut lhs = self.unary()?;
        loop {
            let at = self.peek().1;
            let op = if self.eat("*") {
                "*"
            } else if self.eat("/") {
                "/"
            } else {
                return Ok(lhs);
            };
            self.count(at)?;
            let rhs = self.unary()?;
            lhs = Node::Bin(op, Box::new(lhs), Box::new(rhs));
        }
    }

    fn unary(&mut self) -> Result<Node> {
        let at = self.peek().1;
        if self.eat("-") {
            return self.nested(at, |p| Ok(Node::Neg(Box::new(p.unary()?))));
        }
        if self.eat("+") {
            return self.nested(at, |p| p.unary());
        }
        self.power()
    }

    fn power(&mut self) -> Result<Node> {
        let base = self.atom()?;
        let at = self.peek().1;
        if !(self.eat("^") || self.eat("**")) {
            return Ok(base);
        }
        let exponent = self.nested(at, |p| p.unary())?;
        let integer = match &exponent {
            Node::Num(v) => Some(*v),
            Node::Neg(e) => match **e {
                Node::Num(v) => Some(-v),
                _ => None,
            },
            _ => None,
        }
        .filter(|v| v.fract() == 0.0 && v.abs() <= 1e6);
        Ok(match integer {
            Some(k) => Node::Powi(Box::new(base), k as i32),
            None => Node::Bin("^", Box::new(base), Box::new(exponent)),
        })
    }

    fn atom(&mut self) -> Result<Node> {
        let (t, at) = self.next();
        match t {
            Token::Num(v) => Ok(Node::Num(v)),
            Token::Op("(") => {
                let e = self.nested(at, |p| p.expr())?;
                self.expect(")", "to close the `(`")?;
                Ok(e)
            }
            Token::Name(name) => {
                if self.peek().0 != Token::Op("(") {
                    return Ok(Node::Name(name, at));
                }
                self.at += 1;
                let Some(&(f, arity)) = FUNCTIONS.iter().find(|(f, _)| *f == name) else {
                    let known: Vec<&str> = FUNCTIONS.iter().map(|f| f.0).collect();
                    return Err(error(
                        at,
                        format!("unknown function `{name}` (known: {})", known.join(", ")),
                    ));
                };
                let mut args = vec![self.nested(at, |p| p.expr())?];
                while self.eat(",") {
                    args.push(self.nested(at, |p| p.expr())?);
                }
                self.expect(")", &format!("to close `{f}(`"))?;
                if args.len() != arity {
                    return Err(error(
                        at,
                        format!("`{f}` takes {arity} argument(s), given {}", args.len()),
                    ));
                }
                Ok(Node::Call(f, args))
            }
            other => Err(error(
                at,
                format!("expected a value, found {}", describe(&other)),
            )),
        }
    }
}

fn describe(t: &Token) -> String {
    match t {
        Token::Num(v) => format!("the number {v}"),
        Token::Name(n) => format!("`{n}`"),
        Token::Op(o) => format!("`{o}`"),
        Token::End => "the end of the model".into(),
    }
}

/// A parsed model: the response it describes (the left of `~`, if written) and the
/// formula.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    response: Option<(String, Pos)>,
    formula: Node,
}

impl Model {
    /// Parses a model's text; an error names the line and column of what is wrong.
    pub fn parse(text: &str) -> Result<Model> {
        let tokens = tokenize(text)?;
        let mut p = Parser {
            tokens,
            at: 0,
            depth: 0,
            nodes: 0,
        };
        let response = match (&p.tokens[0], p.tokens.get(1)) {
            ((Token::Name(n), at), Some((Token::Op("~"), _))) => {
                let r = (n.clone(), *at);
                p.at = 2;
                Some(r)
            }
            _ => None,
        };
        if p.peek().0 == Token::End {
            return Err(error(p.peek().1, "the model is empty"));
        }
        let formula = p.expr()?;
        let (t, at) = p.next();
        if t != Token::End {
            let hint = if t == Token::Op("~") {
                ": `~` comes once, after the response's name (`y ~ a * x`)"
            } else {
                ""
            };
            return Err(error(at, format!("unexpected {}{hint}", describe(&t))));
        }
        Ok(Model { response, formula })
    }

    /// The response's name, if the model names it (`y ~ ...`).
    pub fn response(&self) -> Option<&str> {
        self.response.as_ref().map(|(n, _)| n.as_str())
    }

    /// The names the formula uses (columns, parameters, constants), each once, in the
    /// order they first appear, with where.
    pub fn names(&self) -> Vec<(String, Pos)> {
        fn walk(n: &Node, out: &mut Vec<(String, Pos)>) {
            match n {
                Node::Num(_) => {}
                Node::Name(s, at) => {
                    if !out.iter().any(|(o, _)| o == s) {
                        out.push((s.clone(), *at));
                    }
                }
                Node::Neg(a) | Node::Powi(a, _) => walk(a, out),
                Node::Bin(_, a, b) => {
                    walk(a, out);
                    walk(b, out);
                }
                Node::Call(_, args) => args.iter().for_each(|a| walk(a, out)),
            }
        }
        let mut out = vec![];
        walk(&self.formula, &mut out);
        out
    }

    /// Binds the formula's names: each must be a column of `columns` or one of `params`
    /// (or `pi`). The response is the named one, else a column named `y`, else the last
    /// column; it cannot be a parameter. Every parameter must appear in the formula.
    pub fn bind(&self, columns: &[String], params: &[String]) -> Result<BoundModel> {
        let start = Pos { line: 1, column: 1 };
        let response = match &self.response {
            Some((name, at)) => columns.iter().position(|c| c == name).ok_or_else(|| {
                error(
                    *at,
                    format!(
                        "the response `{name}` is not a column of the data (columns: {})",
                        columns.join(", ")
                    ),
                )
            })?,
            None => match columns.iter().position(|c| c == "y") {
                Some(i) => i,
                None if !columns.is_empty() => columns.len() - 1,
                None => return Err(error(start, "the data has no columns")),
            },
        };
        for (i, p) in params.iter().enumerate() {
            if columns.contains(p) {
                return Err(error(
                    start,
                    format!("`{p}` is both a column of the data and a parameter"),
                ));
            }
            if params[..i].contains(p) {
                return Err(error(start, format!("the parameter `{p}` is given twice")));
            }
        }
        let names = self.names();
        for (name, at) in &names {
            let known = columns.contains(name) || params.contains(name) || name == "pi";
            if !known {
                return Err(error(
                    *at,
                    format!(
                        "unknown variable `{name}`: not a column of the data ({}) nor a \
                         parameter ({}); give parameters starting values with --start",
                        columns.join(", "),
                        if params.is_empty() {
                            "none given".to_string()
                        } else {
                            params.join(", ")
                        }
                    ),
                ));
            }
            if columns.get(response) == Some(name) {
                return Err(error(
                    *at,
                    format!("the response `{name}` cannot appear in its own formula"),
                ));
            }
        }
        if let Some(p) = params.iter().find(|p| !names.iter().any(|(n, _)| n == *p)) {
            return Err(error(
                start,
                format!("the model does not depend on the parameter `{p}`: it does not appear in the formula"),
            ));
        }
        let predictors: Vec<usize> = (0..columns.len())
            .filter(|&c| names.iter().any(|(n, _)| *n == columns[c]))
            .collect();
        Ok(BoundModel {
            formula: self.formula.clone(),
            columns: columns.to_vec(),
            params: params.to_vec(),
            response,
            predictors,
        })
    }
}

/// A model whose names are bound to data columns and parameters.
#[derive(Clone, Debug)]
pub struct BoundModel {
    formula: Node,
    columns: Vec<String>,
    params: Vec<String>,
    response: usize,
    predictors: Vec<usize>,
}

impl BoundModel {
    /// The parameters, in the order of the parameter vector.
    pub fn params(&self) -> &[String] {
        &self.params
    }

    /// The response's column.
    pub fn response(&self) -> usize {
        self.response
    }

    /// The columns the formula reads, in the table's order.
    pub fn predictors(&self) -> &[usize] {
        &self.predictors
    }

    /// The formula at parameters `p` (a vector, in [`params`](Self::params) order) on the
    /// table's columns (`columns[c]` a vector of `m` values; the response is not read):
    /// `m` predictions.
    /// Fewer or more columns than the table has, or a parameter vector of another length,
    /// give a tensor holding the error (found on a second read: the columns were indexed
    /// unchecked).
    pub fn eval(&self, p: &Tensor, columns: &[Tensor], m: usize) -> Tensor {
        let wrong = |msg: String| {
            Tensor::from_error(ferrax::Error::Shape {
                op: "model".into(),
                msg,
                loc: None,
            })
        };
        if columns.len() != self.columns.len() {
            return wrong(format!(
                "{} columns given, the model is bound to {} ({})",
                columns.len(),
                self.columns.len(),
                self.columns.join(", ")
            ));
        }
        if p.shape() != [self.params.len()] {
            return wrong(format!(
                "parameters of shape {:?}, the model has {} ({})",
                p.shape(),
                self.params.len(),
                self.params.join(", ")
            ));
        }
        let y = self.node(&self.formula, p, columns);
        y.broadcast_to(&[m])
    }

    fn node(&self, n: &Node, p: &Tensor, cols: &[Tensor]) -> Tensor {
        let go = |n: &Node| self.node(n, p, cols);
        match n {
            Node::Num(v) => Tensor::scalar(*v),
            Node::Name(s, _) => {
                if let Some(i) = self.params.iter().position(|q| q == s) {
                    p.index_axis(0, i)
                } else if let Some(c) = self.columns.iter().position(|q| q == s) {
                    cols[c].clone()
                } else {
                    Tensor::scalar(std::f64::consts::PI)
                }
            }
            Node::Neg(a) => -go(a),
            Node::Powi(a, k) => go(a).powi(*k),
            Node::Bin(op, a, b) => {
                let (a, b) = (go(a), go(b));
                match *op {
                    "+" => a + b,
                    "-" => a - b,
                    "*" => a * b,
                    "/" => a / b,
                    _ => a.pow(&b),
                }
            }
            Node::Call(f, args) => {
                let a = go(&args[0]);
                match *f {
                    "exp" => a.exp(),
                    "log" | "ln" => a.log(),
                    "log10" => a.log10(),
                    "sqrt" => a.sqrt(),
                    "abs" => a.abs(),
                    "sin" => a.sin(),
                    "cos" => a.cos(),
                    "tan" => a.tan(),
                    "asin" => a.asin(),
                    "acos" => a.acos(),
                    "atan" | "arctan" => a.atan(),
                    "sinh" => a.sinh(),
                    "cosh" => a.cosh(),
                    "tanh" => a.tanh(),
                    "erf" => a.erf(),
                    two => {
                        let b = go(&args[1]);
                        match two {
                            "pow" => a.pow(&b),
                            "atan2" => a.atan2(&b),
                            "min" => a.minimum(&b),
                            _ => a.maximum(&b),
                        }
                    }
                }
            }
        }
    }
}
