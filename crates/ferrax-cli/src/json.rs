//! JSON arrays in and out of the CLI: nested JSON lists to [`Array`]s of a known aval, and
//! arrays back to nested lists with every float in shortest round-trip form.
//!
//! Non-finite floats, which JSON cannot write as numbers, travel as the strings `"nan"`,
//! `"inf"` and `"-inf"` in both directions.

use ferrax::{Array, Aval, DType, Scalar};
use serde_json::Value;

/// Reads a value of `aval` from nested JSON lists (a bare number for a scalar). The error
/// names the path inside the value (`[1][0]`) and what was wrong.
pub fn array_from_json(v: &Value, aval: &Aval) -> Result<Array, String> {
    let mut flat = Vec::with_capacity(aval.size());
    collect(v, &aval.shape, aval.dtype, &mut String::new(), &mut flat)?;
    let data = ferrax::Data::F64(flat.iter().map(|s| s.to_f64()).collect());
    // Build in the target dtype directly so integers and bools stay exact.
    let data = match aval.dtype {
        DType::F64 => data,
        DType::F32 => ferrax::Data::F32(flat.iter().map(|s| s.to_f64() as f32).collect()),
        DType::I32 => ferrax::Data::I32(
            flat.iter()
                .map(|s| match s {
                    Scalar::I64(i) => *i as i32,
                    _ => 0,
                })
                .collect(),
        ),
        DType::I64 => ferrax::Data::I64(
            flat.iter()
                .map(|s| match s {
                    Scalar::I64(i) => *i,
                    _ => 0,
                })
                .collect(),
        ),
        DType::Bool => ferrax::Data::Bool(
            flat.iter()
                .map(|s| matches!(s, Scalar::Bool(true)))
                .collect(),
        ),
    };
    Array::from_data(data, &aval.shape).map_err(|e| e.to_string())
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
                return Err(format!("{} should be a list of {n}, found {v}", here()));
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
            let s = scalar(v, dtype)
                .ok_or_else(|| format!("{} should be a {dtype} number, found {v}", here()))?;
            out.push(s);
            Ok(())
        }
    }
}

fn scalar(v: &Value, dtype: DType) -> Option<Scalar> {
    match dtype {
        DType::F32 | DType::F64 => match v {
            Value::Number(n) => n.as_f64().map(Scalar::F64),
            Value::String(s) => match s.as_str() {
                "nan" => Some(Scalar::F64(f64::NAN)),
                "inf" => Some(Scalar::F64(f64::INFINITY)),
                "-inf" => Some(Scalar::F64(f64::NEG_INFINITY)),
                _ => None,
            },
            _ => None,
        },
        DType::I32 => v
            .as_i64()
            .filter(|i| i32::try_from(*i).is_ok())
            .map(Scalar::I64),
        DType::I64 => v.as_i64().map(Scalar::I64),
        DType::Bool => v.as_bool().map(Scalar::Bool),
    }
}

/// Writes an array as nested JSON lists (a bare value for a scalar).
pub fn array_to_json(a: &Array) -> String {
    let mut s = String::new();
    let mut i = 0;
    write_nested(&mut s, a, a.shape(), &mut i);
    s
}

fn write_nested(s: &mut String, a: &Array, shape: &[usize], i: &mut usize) {
    match shape.split_first() {
        Some((&n, rest)) => {
            s.push('[');
            for k in 0..n {
                if k > 0 {
                    s.push_str(", ");
                }
                write_nested(s, a, rest, i);
            }
            s.push(']');
        }
        None => {
            let idx = unravel(*i, a.shape());
            let v = a.get(&idx).expect("index within the shape");
            *i += 1;
            let text = match v {
                Scalar::F32(x) if !x.is_finite() => quoted(x as f64),
                Scalar::F64(x) if !x.is_finite() => quoted(x),
                Scalar::F32(x) => format!("{x:?}"),
                Scalar::F64(x) => format!("{x:?}"),
                Scalar::I32(x) => x.to_string(),
                Scalar::I64(x) => x.to_string(),
                Scalar::Bool(x) => x.to_string(),
            };
            s.push_str(&text);
        }
    }
}

fn quoted(x: f64) -> String {
    if x.is_nan() {
        "\"nan\"".into()
    } else if x > 0.0 {
        "\"inf\"".into()
    } else {
        "\"-inf\"".into()
    }
}

fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = i % shape[d];
        i /= shape[d];
    }
    idx
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
