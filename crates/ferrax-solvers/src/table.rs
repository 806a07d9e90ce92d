//! Tables of numbers from text: CSV or whitespace-separated columns, with or without a
//! header row. What `ferrax fit` reads its data from.
//!
//! Rules, strict so that a malformed file is an error and never a silently different fit:
//! blank lines and lines starting with `#` are skipped; a line holding a comma makes the
//! file comma-separated (fields trimmed), else fields are separated by whitespace; the
//! first line is a header when any of its fields is not a number (its names must be
//! identifiers, distinct, so that a model can use them), else the columns are named `x`
//! and `y` (two columns) or `x1`, `x2`, ..., `y` (more); every row has as many fields as
//! the first; every value is a finite number. Errors name the file, the line and the
//! column (field) at fault.

use std::path::Path;

use crate::error::{Result, SolverError};

/// Columns of `f64` values with names.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// The columns' names, in the file's order.
    pub names: Vec<String>,
    /// `columns[c][i]`: row `i` of column `c`.
    pub columns: Vec<Vec<f64>>,
}

impl Table {
    /// The number of rows.
    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, Vec::len)
    }

    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<&[f64]> {
        let c = self.names.iter().position(|n| n == name)?;
        Some(&self.columns[c])
    }
}

fn data_error(file: &str, line: usize, msg: impl Into<String>) -> SolverError {
    SolverError::Data {
        file: file.to_string(),
        line,
        msg: msg.into(),
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}

/// Reads a table from a file (see the module's rules).
pub fn read_table(path: &Path) -> Result<Table> {
    let file = path.display().to_string();
    let bytes =
        std::fs::read(path).map_err(|e| data_error(&file, 0, format!("cannot read: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        data_error(&file, line, "not UTF-8 text")
    })?;
    parse_table(&text, &file)
}

/// Parses a table's text; `file` names it in errors.
pub fn parse_table(text: &str, file: &str) -> Result<Table> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
    let Some((first_no, first)) = lines.next() else {
        return Err(data_error(file, 0, "no data: the file holds no rows"));
    };
    let comma = first.contains(',');
    let split = |l: &'_ str| -> Vec<String> {
        if comma {
            l.split(',').map(|f| f.trim().to_string()).collect()
        } else {
            l.split_whitespace().map(str::to_string).collect()
        }
    };
    let fields = split(first);
    let width = fields.len();
    let header = fields.iter().any(|f| f.parse::<f64>().is_err());
    let names: Vec<String> = if header {
        for (k, f) in fields.iter().enumerate() {
            if !is_identifier(f) {
                return Err(data_error(
                    file,
                    first_no,
                    format!(
                        "column {}: the header's name `{f}` is not an identifier (letters, \
                         digits and `_`, not starting with a digit)",
                        k + 1
                    ),
                ));
            }
            if fields[..k].contains(f) {
                return Err(data_error(
                    file,
                    first_no,
                    format!("column {}: the name `{f}` is used twice", k + 1),
                ));
            }
        }
        fields.clone()
    } else if width == 2 {
        vec!["x".into(), "y".into()]
    } else if width == 1 {
        vec!["y".into()]
    } else {
        (1..width)
            .map(|k| format!("x{k}"))
            .chain(["y".to_string()])
            .collect()
    };
    let mut columns = vec![Vec::new(); width];
    let rows = (!header)
        .then_some((first_no, first))
        .into_iter()
        .chain(lines);
    for (no, line) in rows {
        let fields = split(line);
        if fields.len() != width {
            return Err(data_error(
                file,
                no,
                format!(
                    "{} fields, expected {width} (as the first row)",
                    fields.len()
                ),
            ));
        }
        for (k, f) in fields.iter().enumerate() {
            let v: f64 = f.parse().map_err(|_| {
                data_error(file, no, format!("column {}: `{f}` is not a number", k + 1))
            })?;
            if !v.is_finite() {
                return Err(data_error(
                    file,
                    no,
                    format!("column {}: `{f}` is not a finite number", k + 1),
                ));
            }
            columns[k].push(v);
        }
    }
    if columns[0].is_empty() {
        return Err(data_error(file, first_no, "a header and no rows of data"));
    }
    Ok(Table { names, columns })
}
