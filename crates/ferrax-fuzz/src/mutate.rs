//! Mutations of texts: byte-level, token-level, line-level and splicing.
//!
//! Used on program texts (`programs` target) and NIST files (`nist` target). Byte-level
//! mutations flip bits, insert and delete bytes (the result is read as UTF-8 with
//! replacement characters where it is not). Token-level ones replace an identifier with
//! another of the text's identifiers, a primitive name or a dtype, replace a number with an
//! interesting one (0, 1, -1, 2^32, 2^64 - 1, i64::MAX, ...), or add and remove tuple
//! entries and dimensions. Line-level ones duplicate, delete, swap and move lines; splicing
//! joins the head of one text to the tail of another. Each mutation says what it did, so a
//! finding can be shrunk by leaving mutations out.

use ferrax::PRIMITIVE_NAMES;
use rand::seq::SliceRandom;
use rand::Rng;

/// Numbers that sit on the edges of the integer types and of sizes.
pub const INTERESTING_NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "3",
    "7",
    "255",
    "65536",
    "2147483647",
    "2147483648",
    "-2147483648",
    "4294967295",
    "4294967296",
    "99999999999",
    "1099511627776",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
    "0.0",
    "-0.0",
    "1e308",
    "1e309",
    "-1e400",
    "5e-324",
    "1e-400",
    "nan",
    "inf",
    "-inf",
    "0x10",
    "1_000",
    "+1",
    "1.5e3",
    ".5",
    "5.",
];

const DTYPES: &[&str] = &["f32", "f64", "i32", "i64", "bool", "f16", "u8", "F64"];

const KEYWORDS: &[&str] = &[
    "lambda", "let", "in", "true", "false", "nan", "inf", "y", "axes", "axis", "shape", "branches",
    "body", "n_consts", "n_carry", "length", "reverse", "cond", "scan",
];

const SNIPPETS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    "=",
    ":",
    ",",
    ";",
    ".",
    "#",
    "\n",
    " ",
    "-",
    "0",
    "9",
    "e",
    "_",
    "a",
    ":f64",
    "f64[",
    "[]",
    "()",
    "(,)",
    "let",
    "in",
    "lambda",
    "é",
    "\u{0}",
    "\t",
    "\r",
    "99999999999",
    "18446744073709551615",
    "\u{feff}",
    "::",
    "==",
    "[=]",
    "(0,0)",
    "x:f64[]",
    "{ lambda ; . let in () }",
    "({ lambda ; . let in () },)",
    "()",
    "x:f64[] y:f64[]",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Ident,
    Number,
    Space,
    Punct,
}

/// A token: byte range and class.
#[derive(Clone, Copy, Debug)]
struct Tok {
    start: usize,
    end: usize,
    class: Class,
}

fn tokens(s: &str) -> Vec<Tok> {
    let b = s.as_bytes();
    let mut out = vec![];
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        let class = if c.is_ascii_alphabetic() || c == b'_' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            Class::Ident
        } else if c.is_ascii_digit() || (c == b'-' && i + 1 < b.len() && b[i + 1].is_ascii_digit())
        {
            i += 1;
            while i < b.len()
                && (b[i].is_ascii_digit()
                    || b[i] == b'.'
                    || b[i] == b'e'
                    || b[i] == b'E'
                    || ((b[i] == b'-' || b[i] == b'+') && matches!(b[i - 1], b'e' | b'E')))
            {
                i += 1;
            }
            Class::Number
        } else if c.is_ascii_whitespace() {
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            Class::Space
        } else {
            // one character (UTF-8 aware)
            i += 1;
            while i < b.len() && (b[i] & 0xC0) == 0x80 {
                i += 1;
            }
            Class::Punct
        };
        out.push(Tok {
            start,
            end: i,
            class,
        });
    }
    out
}

fn replace(s: &str, t: Tok, with: &str) -> String {
    format!("{}{}{}", &s[..t.start], with, &s[t.end..])
}

fn pick_tok(toks: &[Tok], class: Class, rng: &mut impl Rng) -> Option<Tok> {
    let c: Vec<&Tok> = toks.iter().filter(|t| t.class == class).collect();
    c.choose(rng).map(|t| **t)
}

/// A byte position on a character boundary.
fn boundary(s: &str, rng: &mut impl Rng) -> usize {
    let mut i = rng.gen_range(0..=s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The byte ranges of the balanced `{ ... }` blocks of a text (programs, nested ones
/// included), outermost first; comments are skipped.
fn blocks(s: &str) -> Vec<(usize, usize)> {
    let b = s.as_bytes();
    let (mut open, mut out) = (vec![], vec![]);
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'{' => open.push(i),
            b'}' => {
                if let Some(start) = open.pop() {
                    out.push((start, i + 1));
                }
            }
            _ => {}
        }
        i += 1;
    }
    out.sort_unstable();
    out
}

/// Applies one random mutation. Returns the new text and a short description, or `None`
/// when the chosen mutation does not apply (e.g. no number to change).
pub fn mutate_once(s: &str, others: &[String], rng: &mut impl Rng) -> Option<(String, String)> {
    let toks = tokens(s);
    Some(match rng.gen_range(0..20) {
        0 => {
            // flip one bit
            if s.is_empty() {
                return None;
            }
            let mut b = s.as_bytes().to_vec();
            let i = rng.gen_range(0..b.len());
            b[i] ^= 1 << rng.gen_range(0..8);
            (
                String::from_utf8_lossy(&b).into_owned(),
                format!("flip a bit of byte {i}"),
            )
        }
        1 => {
            let i = boundary(s, rng);
            let ins = SNIPPETS.choose(rng).expect("snippets");
            (
                format!("{}{}{}", &s[..i], ins, &s[i..]),
                format!("insert {ins:?} at {i}"),
            )
        }
        2 => {
            let i = boundary(s, rng);
            let j = (i + rng.gen_range(1..8)).min(s.len());
            let j = (j..=s.len()).find(|&k| s.is_char_boundary(k))?;
            (
                format!("{}{}", &s[..i], &s[j..]),
                format!("delete bytes {i}..{j}"),
            )
        }
        3 => {
            let i = boundary(s, rng);
            let j = (i + rng.gen_range(1..30)).min(s.len());
            let j = (j..=s.len()).find(|&k| s.is_char_boundary(k))?;
            (
                format!("{}{}{}", &s[..j], &s[i..j], &s[j..]),
                format!("duplicate bytes {i}..{j}"),
            )
        }
        4 | 5 => {
            // a number becomes an interesting one, or a neighbour
            let t = pick_tok(&toks, Class::Number, rng)?;
            let old = &s[t.start..t.end];
            let new = match (rng.gen_range(0..3), old.parse::<i128>()) {
                (0, Ok(n)) => n
                    .saturating_add([1i128, -1, 2, -2][rng.gen_range(0..4)])
                    .to_string(),
                (1, Ok(n)) => n
                    .saturating_mul([2i128, 1 << 16, -1][rng.gen_range(0..3)])
                    .to_string(),
                _ => INTERESTING_NUMBERS
                    .choose(rng)
                    .expect("numbers")
                    .to_string(),
            };
            (replace(s, t, &new), format!("number {old} -> {new}"))
        }
        6 => {
            // a variable name becomes another name from the text
            let idents: Vec<Tok> = toks
                .iter()
                .filter(|t| t.class == Class::Ident)
                .copied()
                .collect();
            let t = *idents.choose(rng)?;
            let o = *idents.choose(rng)?;
            let new = &s[o.start..o.end];
            (
                replace(s, t, new),
                format!("name {} -> {new}", &s[t.start..t.end]),
            )
        }
        7 => {
            let t = pick_tok(&toks, Class::Ident, rng)?;
            let new = PRIMITIVE_NAMES.choose(rng).expect("names");
            (
                replace(s, t, new),
                format!("{} -> primitive {new}", &s[t.start..t.end]),
            )
        }
        8 => {
            let c: Vec<Tok> = toks
                .iter()
                .filter(|t| DTYPES.contains(&&s[t.start..t.end]))
                .copied()
                .collect();
            let t = *c.choose(rng)?;
            let new = DTYPES.choose(rng).expect("dtypes");
            (
                replace(s, t, new),
                format!("dtype {} -> {new}", &s[t.start..t.end]),
            )
        }
        9 => {
            let t = pick_tok(&toks, Class::Ident, rng)?;
            let new = KEYWORDS.choose(rng).expect("keywords");
            (
                replace(s, t, new),
                format!("{} -> keyword {new}", &s[t.start..t.end]),
            )
        }
        10 => {
            // delete or duplicate a punctuation token
            let t = pick_tok(&toks, Class::Punct, rng)?;
            let p = &s[t.start..t.end];
            if rng.gen_bool(0.5) {
                (replace(s, t, ""), format!("delete {p:?} at {}", t.start))
            } else {
                (
                    replace(s, t, &format!("{p}{p}")),
                    format!("double {p:?} at {}", t.start),
                )
            }
        }
        11 => {
            // a tuple or shape gains or loses an entry
            let opens: Vec<Tok> = toks
                .iter()
                .filter(|t| matches!(&s[t.start..t.end], "(" | "["))
                .copied()
                .collect();
            let t = *opens.choose(rng)?;
            let n = INTERESTING_NUMBERS[..6].choose(rng).expect("numbers");
            if rng.gen_bool(0.6) {
                (
                    format!("{}{n},{}", &s[..t.end], &s[t.end..]),
                    format!("entry {n} added at {}", t.end),
                )
            } else {
                let close = s[t.end..].find([',', ')', ']'])? + t.end;
                let cut = if s[close..].starts_with(',') {
                    close + 1
                } else {
                    close
                };
                (
                    format!("{}{}", &s[..t.end], &s[cut..]),
                    format!("first entry removed at {}", t.end),
                )
            }
        }
        12 | 13 => {
            let lines: Vec<&str> = s.split('\n').collect();
            let mut l: Vec<String> = lines.iter().map(|x| x.to_string()).collect();
            let i = rng.gen_range(0..l.len());
            let j = rng.gen_range(0..l.len());
            let what = match rng.gen_range(0..4) {
                0 => {
                    l.insert(j, l[i].clone());
                    format!("duplicate line {i} to {j}")
                }
                1 if l.len() > 1 => {
                    l.remove(i);
                    format!("delete line {i}")
                }
                2 => {
                    l.swap(i, j);
                    format!("swap lines {i} and {j}")
                }
                _ => {
                    let x = l.remove(i);
                    l.insert(j.min(l.len()), x);
                    format!("move line {i} to {j}")
                }
            };
            (l.join("\n"), what)
        }
        14 => {
            // splice: head of this text, tail of another, at line boundaries
            let o = others.choose(rng)?;
            let a: Vec<&str> = s.split('\n').collect();
            let b: Vec<&str> = o.split('\n').collect();
            let i = rng.gen_range(0..=a.len());
            let j = rng.gen_range(0..=b.len());
            let mut l: Vec<&str> = a[..i].to_vec();
            l.extend_from_slice(&b[j..]);
            (
                l.join("\n"),
                format!("splice lines ..{i} with another text's {j}.."),
            )
        }
        15 => {
            // swap two identifiers of the text everywhere they appear as whole tokens
            let idents: Vec<Tok> = toks
                .iter()
                .filter(|t| t.class == Class::Ident && t.end - t.start <= 2)
                .copied()
                .collect();
            let a = *idents.choose(rng)?;
            let b = *idents.choose(rng)?;
            let (x, y) = (&s[a.start..a.end], &s[b.start..b.end]);
            let mut out = String::new();
            for t in &toks {
                let w = &s[t.start..t.end];
                out.push_str(if t.class == Class::Ident && w == x {
                    y
                } else if t.class == Class::Ident && w == y {
                    x
                } else {
                    w
                });
            }
            (out, format!("swap names {x} and {y}"))
        }
        17 | 18 => {
            // nested programs: one replaced by a block of another text (or of this one),
            // repeated (a branch more), deleted, or wrapped in a scan or a cond of itself
            let bs = blocks(s);
            let &(i, j) = bs.choose(rng)?;
            let block = &s[i..j];
            match rng.gen_range(0..4) {
                0 => {
                    let o = others.choose(rng)?;
                    let theirs = blocks(o);
                    let &(a, b) = theirs.choose(rng)?;
                    (
                        format!("{}{}{}", &s[..i], &o[a..b], &s[j..]),
                        format!("block {i}..{j} replaced by another text's {a}..{b}"),
                    )
                }
                1 => (
                    format!("{}{block}, {block}{}", &s[..i], &s[j..]),
                    format!("block {i}..{j} repeated"),
                ),
                2 => (
                    format!("{}{}", &s[..i], &s[j..]),
                    format!("block {i}..{j} deleted"),
                ),
                _ => {
                    let n = INTERESTING_NUMBERS[..8].choose(rng).expect("numbers");
                    let wrap = if rng.gen_bool(0.5) {
                        format!(
                            "{{ lambda ; . let a:f64[] = scan[body={block} n_consts=0 n_carry=0 length={n} reverse=false] in () }}"
                        )
                    } else {
                        format!("{{ lambda ; . let a:f64[] = cond[branches=({block},)] {n}:i32 in (a) }}")
                    };
                    (
                        format!("{}{wrap}{}", &s[..i], &s[j..]),
                        format!("block {i}..{j} wrapped"),
                    )
                }
            }
        }
        _ => {
            // truncate
            let i = boundary(s, rng);
            (s[..i].to_string(), format!("truncate at {i}"))
        }
    })
}

/// One to four stacked mutations of `s`, with their descriptions.
pub fn mutate(s: &str, others: &[String], rng: &mut impl Rng) -> (String, Vec<String>) {
    let n = match rng.gen_range(0..10) {
        0..=4 => 1,
        5..=7 => 2,
        8 => 3,
        _ => 4,
    };
    let mut cur = s.to_string();
    let mut what = vec![];
    let mut tries = 0;
    while what.len() < n && tries < 20 {
        tries += 1;
        if let Some((t, w)) = mutate_once(&cur, others, rng) {
            cur = t;
            what.push(w);
        }
    }
    (cur, what)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn tokens_cover_the_text() {
        let s = "{ lambda ; a:f64[3] . let\n    b:f64[3] = mul a -2.5e-3:f64 # é\n  in (b) }";
        let t = tokens(s);
        let joined: String = t.iter().map(|t| &s[t.start..t.end]).collect();
        assert_eq!(joined, s);
        assert!(t
            .iter()
            .any(|t| t.class == Class::Number && &s[t.start..t.end] == "-2.5e-3"));
    }

    #[test]
    fn mutations_always_give_valid_utf8_and_usually_change_the_text() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let s = "{ lambda ; a:f64[3] . let\n    b:f64[3] = sin a\n  in (b) }".to_string();
        let mut changed = 0;
        for _ in 0..2000 {
            let (t, _) = mutate(&s, std::slice::from_ref(&s), &mut rng);
            changed += (t != s) as usize;
        }
        assert!(changed > 1500, "{changed}");
    }
}
