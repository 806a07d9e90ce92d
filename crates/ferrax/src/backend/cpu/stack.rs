//! The stacked ys of a scan: one buffer for all the rows, allocated (fallibly) before the
//! loop runs and filled row by row, by `control`'s loop over the body's plan or by a fixed
//! body (`fixed_body`).

use crate::backend::cpu::buffers;
use crate::backend::cpu::dispatch::Float;
use crate::ir::{try_vec, Array, Aval, DType, Data, Error, Result};

/// The stacked ys of a scan, filled row by row in iteration order into a buffer allocated
/// once (fallibly) for all the rows.
pub(crate) struct Stack {
    data: Data,
    shape: Vec<usize>,
    /// Elements per row.
    row: usize,
}

impl Stack {
    pub(crate) fn new(aval: &Aval) -> Result<Stack> {
        let n = aval.size();
        let refused = |_| {
            Error::exhausted(
                "scan",
                format!(
                    "cannot allocate {} bytes for a value of {aval}",
                    aval.bytes()
                ),
            )
        };
        let data = match aval.dtype {
            DType::F32 => Data::F32(buffers::with_capacity(n).map_err(refused)?),
            DType::F64 => Data::F64(buffers::with_capacity(n).map_err(refused)?),
            DType::I32 => Data::I32(try_vec("scan", aval, n)?),
            DType::I64 => Data::I64(try_vec("scan", aval, n)?),
            DType::Bool => Data::Bool(try_vec("scan", aval, n)?),
        };
        Ok(Stack {
            data,
            shape: aval.shape.clone(),
            row: aval.shape[1..].iter().product(),
        })
    }

    /// Appends one row. The buffer has room for every row, so this never reallocates.
    pub(crate) fn push(&mut self, y: &Array) -> Result<()> {
        fn append<T: Copy>(v: &mut Vec<T>, row: &[T], n: usize) -> Result<()> {
            if v.len() + row.len() > n || v.capacity() < n {
                return Err(Error::internal("a scan's ys outgrew their stacked buffer"));
            }
            v.extend_from_slice(row);
            Ok(())
        }
        let n = self.row * self.shape[0];
        if y.size() != self.row {
            return Err(Error::internal(format!(
                "a scan body gave a y of {} elements for rows of {}",
                y.size(),
                self.row
            )));
        }
        match (&mut self.data, y.data()) {
            (Data::F32(v), Data::F32(r)) => append(v, r, n),
            (Data::F64(v), Data::F64(r)) => append(v, r, n),
            (Data::I32(v), Data::I32(r)) => append(v, r, n),
            (Data::I64(v), Data::I64(r)) => append(v, r, n),
            (Data::Bool(v), Data::Bool(r)) => append(v, r, n),
            _ => Err(Error::internal("a scan body gave a y of another dtype")),
        }
    }

    /// Appends one row of float elements (a fixed body's y, see `fixed_body`).
    pub(crate) fn push_row<T: Float>(&mut self, y: &[T]) -> Result<()> {
        let n = self.row * self.shape[0];
        let data = std::mem::replace(&mut self.data, Data::F32(vec![]));
        let mut v = T::take(data).ok_or_else(|| Error::internal("a scan's y of another dtype"))?;
        if y.len() != self.row || v.len() + y.len() > n || v.capacity() < n {
            return Err(Error::internal("a scan's ys outgrew their stacked buffer"));
        }
        v.extend_from_slice(y);
        self.data = T::wrap(v);
        Ok(())
    }

    /// The stacked array; a reverse scan filled its rows from the last one, so they are put
    /// back in the order of the xs.
    pub(crate) fn finish(mut self, reverse: bool) -> Result<Array> {
        fn reverse_rows<T>(v: &mut [T], row: usize) {
            let n = v.len().checked_div(row).unwrap_or(0);
            for r in 0..n / 2 {
                let (head, tail) = v.split_at_mut((n - 1 - r) * row);
                head[r * row..(r + 1) * row].swap_with_slice(&mut tail[..row]);
            }
        }
        if reverse {
            let row = self.row;
            match &mut self.data {
                Data::F32(v) => reverse_rows(v, row),
                Data::F64(v) => reverse_rows(v, row),
                Data::I32(v) => reverse_rows(v, row),
                Data::I64(v) => reverse_rows(v, row),
                Data::Bool(v) => reverse_rows(v, row),
            }
        }
        Array::from_data(self.data, &self.shape)
    }
}
