//! JSON arrays in and out of the CLI: nested JSON lists to [`Array`]s of a known aval, and
//! arrays back to nested lists with every float in shortest round-trip form.
//!
//! Non-finite floats, which JSON cannot write as numbers, travel as the strings `"nan"`,
//! `"inf"` and `"-inf"` in both directions.

use std::io::{self, Write};

use ferrax::{Array, Aval, DType, Data, Scalar};
use serde_json::Value;

/// Reads a value of `aval` from nested JSON lists (a bare number for a scalar). The error
/// names the path inside the value (`[1][0]`) and what was wrong.
pub fn array_from_json(v: &Value, aval: &Aval) -> Result<Array, String> {
    // No capacity from `aval`: its element count is the program text's and may be huge or
    // overflow; the JSON value, which must match it entry for entry, bounds what is read.
    let mut flat = Vec::new();
    collect(v, &aval.shape, aval.dtype, &mut String::new(), &mut flat)?;
    // Build in the target dtype directly so integers and bools stay exact.
    let data = match aval.dtype {
        DType::F64 => Data::F64(flat.iter().map(|s| s.to_f64()).collect()),
        DType::F32 => Data::F32(flat.iter().map(|s| s.to_f64() as f32).collect()),
        DType::I32 => Data::I32(
            flat.iter()
                .map(|s| match s {
                    Scalar::I32(i) => *i,
                    _ => 0,
                })
                .collect(),
        ),
        DType::I64 => Data::I64(
            flat.iter()
                .map(|s| match s {
                    Scalar::I64(i) => *i,
                    _ => 0,
                })
                .collect(),
        ),
        DType::Bool => Data::Bool(
            flat.iter()
                .map(|s| matches!(s, Scalar::Bool(true)))
                .collect(),
        ),
    };
    Array::from_data(data, &aval.shape).map_err(|e| e.to_string())
}

/// A JSON value for an error message, cut short: the value may be a whole list of
/// thousands of entries given where a number was expected.
fn shown(v: &Value) -> String {
    let t = v.to_string();
    match t.char_indices().nth(60) {
        Some((cut, _)) => format!("{}...", &t[..cut]),
        None => t,
    }
}

fn collect(
    v: &Value,
    shape: &[usize],
    dtype: DType,
    path: &mut String,
    out: &mut Vec<Scalar>,
) -> Result<(), String> {
    let here = || {
        if path.is_empty() {
            "the value".to_string()
        } else {
            format!("element {path}")
        }
    };
    match shape.split_first() {
        Some((&n, rest)) => {
            let Value::Array(items) = v else {
                return Err(format!(
                    "{} should be a list of {n}, found {}",
                    here(),
                    shown(v)
                ));
            };
            if items.len() != n {
                return Err(format!(
                    "{} should have {n} entries, found {}",
                    here(),
                    items.len()
                ));
            }
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                collect(item, rest, dtype, path, out)?;
                path.truncate(len);
            }
            Ok(())
        }
        None => {
            let s = scalar(v, dtype).ok_or_else(|| {
                let beyond = match v.as_f64() {
                    Some(x) if dtype == DType::F32 && x.is_finite() => ", beyond the range of f32",
                    _ => "",
                };
                format!(
                    "{} should be a {dtype} number, found {}{beyond}",
                    here(),
                    shown(v)
                )
            })?;
            out.push(s);
            Ok(())
        }
    }
}

fn scalar(v: &Value, dtype: DType) -> Option<Scalar> {
    match dtype {
        DType::F32 | DType::F64 => {
            let x = match v {
                Value::Number(n) => n.as_f64()?,
                Value::String(s) => match s.as_str() {
                    "nan" => f64::NAN,
                    "inf" => f64::INFINITY,
                    "-inf" => f64::NEG_INFINITY,
                    _ => return None,
                },
                _ => return None,
            };
            // A finite number beyond f32's range would silently become infinity: refuse
            // it (infinity is written "inf").
            if dtype == DType::F32 && x.is_finite() && !(x as f32).is_finite() {
                return None;
            }
            Some(Scalar::F64(x))
        }
        DType::I32 => v
            .as_i64()
            .and_then(|i| i32::try_from(i).ok())
            .map(Scalar::I32),
        DType::I64 => v.as_i64().map(Scalar::I64),
        DType::Bool => v.as_bool().map(Scalar::Bool),
    }
}

/// Writes an array as nested JSON lists (a bare value for a scalar), element by element.
///
/// Iterative, not recursive: the rank is the program's, and a deep recursion over a
/// rank-100,000 array of one element would overflow the stack.
pub fn write_json(out: &mut dyn Write, a: &Array) -> io::Result<()> {
    let shape = a.shape();
    // A zero-size array is its leading nonzero dimensions of empty lists: f64[2,0,3] is
    // `[[], []]`. Only the dimensions up to the first zero are written.
    let (dims, empty) = match shape.iter().position(|&d| d == 0) {
        Some(z) => (&shape[..z], true),
        None => (shape, false),
    };
    // suffix[k]: the number of leaves in one entry at depth k (the product of dims[k..]).
    let mut suffix = vec![1usize; dims.len() + 1];
    for k in (0..dims.len()).rev() {
        suffix[k] = suffix[k + 1].checked_mul(dims[k]).ok_or_else(|| {
            io::Error::other(format!(
                "the output {} has too many entries to write",
                a.aval()
            ))
        })?;
    }
    let leaves = suffix[0];
    for i in 0..leaves {
        if i > 0 {
            out.write_all(b", ")?;
        }
        // one `[` for each depth whose entry starts at this leaf
        for s in &suffix[..dims.len()] {
            if i % s == 0 {
                out.write_all(b"[")?;
            }
        }
        if empty {
            out.write_all(b"[]")?;
        } else {
            write_element(out, a.data(), i)?;
        }
        for s in suffix[..dims.len()].iter().rev() {
            if (i + 1) % s == 0 {
                out.write_all(b"]")?;
            }
        }
    }
    Ok(())
}

fn write_element(out: &mut dyn Write, data: &Data, i: usize) -> io::Result<()> {
    let missing = || io::Error::other("an output array has fewer elements than its shape");
    match data {
        Data::F32(v) => write_float(out, *v.get(i).ok_or_else(missing)? as f64, true),
        Data::F64(v) => write_float(out, *v.get(i).ok_or_else(missing)?, false),
        Data::I32(v) => write!(out, "{}", v.get(i).ok_or_else(missing)?),
        Data::I64(v) => write!(out, "{}", v.get(i).ok_or_else(missing)?),
        Data::Bool(v) => write!(out, "{}", v.get(i).ok_or_else(missing)?),
    }
}

/// Shortest round-trip form (of the f32 for an f32 element); non-finite values quoted.
fn write_float(out: &mut dyn Write, x: f64, f32_: bool) -> io::Result<()> {
    if x.is_nan() {
        out.write_all(b"\"nan\"")
    } else if x.is_infinite() {
        out.write_all(if x > 0.0 { b"\"inf\"" } else { b"\"-inf\"" })
    } else if f32_ {
        write!(out, "{:?}", x as f32)
    } else {
        write!(out, "{x:?}")
    }
}

/// An array as nested JSON lists, as a string.
#[cfg(test)]
pub fn array_to_json(a: &Array) -> String {
    let mut v = Vec::new();
    write_json(&mut v, a).expect("writing to a Vec");
    String::from_utf8(v).expect("JSON is UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_nested() {
        let aval = Aval::new(vec![2, 2], DType::F64);
        let v: Value = serde_json::from_str("[[1, 2.5], [\"nan\", -0.1]]").unwrap();
        let a = array_from_json(&v, &aval).unwrap();
        assert_eq!(array_to_json(&a), "[[1.0, 2.5], [\"nan\", -0.1]]");
    }

    #[test]
    fn f32_prints_shortest() {
        let a = Array::from_vec(vec![0.1f32], &[1]).unwrap();
        assert_eq!(array_to_json(&a), "[0.1]");
    }

    #[test]
    fn errors_name_the_element() {
        let aval = Aval::new(vec![2, 2], DType::I32);
        let v: Value = serde_json::from_str("[[1, 2], [3, 4.5]]").unwrap();
        let e = array_from_json(&v, &aval).unwrap_err();
        assert_eq!(e, "element [1][1] should be a i32 number, found 4.5");
        let v: Value = serde_json::from_str("[[1, 2]]").unwrap();
        let e = array_from_json(&v, &aval).unwrap_err();
        assert_eq!(e, "the value should have 2 entries, found 1");
    }
}
