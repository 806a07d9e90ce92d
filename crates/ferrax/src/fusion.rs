//! Elementwise fusion for compiled plans.
//!
//! Part of the last stage (`jit`): a run of consecutive elementwise steps over arrays of the
//! same size becomes one *group*, executed chunk by chunk (2048 elements at a time, chunks
//! spread over threads): every step of the group computes its chunk into a small scratch
//! buffer that stays in cache, and only the values needed after the group are written to
//! memory. Broadcasts of a scalar, or of an array along leading dimensions (a bias), are
//! generated per chunk instead of being materialized. What a group computes is exactly what
//! its steps compute one by one (same kernels, same operation order per element).

use crate::array::{Array, Data};
use crate::dtype::{Aval, DType};
use crate::error::{Error, Result};
use crate::eval::{max_nan, min_nan};
use crate::primitive::Primitive;

const CHUNK: usize = 2048;

/// Where a group step reads an operand from.
#[derive(Clone, Debug)]
pub(crate) enum Src {
    /// An array given to the group (index into its inputs), the group's full size.
    Input(usize),
    /// An earlier step of the same group.
    Step(usize),
    /// An input repeated along leading dimensions: element i is `input[i % period]`.
    Tiled(usize, usize),
    /// An input whose elements are each repeated along trailing dimensions: element i is
    /// `input[i / run]`.
    Repeated(usize, usize),
}

#[derive(Clone, Debug)]
pub(crate) struct GroupStep {
    pub prim: Primitive,
    pub srcs: Vec<Src>,
}

/// A fused run of elementwise steps.
#[derive(Clone, Debug)]
pub(crate) struct Group {
    pub steps: Vec<GroupStep>,
    /// For every step: whether its value is needed after the group (then written out).
    pub keep: Vec<bool>,
    pub size: usize,
    pub dtype: DType,
    /// The shape of every step's output.
    pub shapes: Vec<Vec<usize>>,
}

/// Whether a primitive can be part of a group (elementwise on float arrays of one size).
pub(crate) fn fusible(prim: &Primitive, out: &Aval, in_avals: &[Aval]) -> bool {
    use Primitive::*;
    if !out.dtype.is_float() || out.size() < CHUNK {
        return false;
    }
    match prim {
        Neg | Abs | Sqrt | Rsqrt | Exp | Expm1 | Log | Tanh | Logistic | Sin | Cos | Add | Sub
        | Mul | Div | Max | Min => in_avals.iter().all(|a| a.size() == out.size()),
        BroadcastInDim { .. } => broadcast_kind(prim, &in_avals[0]).is_some(),
        _ => false,
    }
}

/// How a broadcast maps its operand onto the output: `Tile(period)` when the operand fills
/// the trailing dimensions (a scalar is a tile of period 1), `Repeat(run)` when it fills the
/// leading ones (each element repeated `run` times); `None` otherwise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum BroadcastKind {
    Tile(usize),
    Repeat(usize),
}

pub(crate) fn broadcast_kind(prim: &Primitive, operand: &Aval) -> Option<BroadcastKind> {
    let Primitive::BroadcastInDim {
        shape,
        broadcast_dimensions: bd,
    } = prim
    else {
        return None;
    };
    let r = operand.ndim();
    if operand.size() == 1 {
        return Some(BroadcastKind::Tile(1));
    }
    let out: usize = shape.iter().product();
    let trailing = crate::dtype::same_shape(&operand.shape, &shape[shape.len() - r..])
        && bd
            .iter()
            .enumerate()
            .all(|(i, &d)| d == shape.len() - r + i);
    if trailing {
        return Some(BroadcastKind::Tile(operand.size()));
    }
    let leading = crate::dtype::same_shape(&operand.shape, &shape[..r])
        && bd.iter().enumerate().all(|(i, &d)| d == i);
    if leading {
        return Some(BroadcastKind::Repeat(out / operand.size()));
    }
    None
}

trait Elem: crate::buffers::Pooled + Send + Sync + 'static {
    fn zero() -> Self;
    fn unary(prim: &Primitive, xs: &[Self], out: &mut [Self]);
    fn binary(prim: &Primitive, a: &[Self], b: &[Self], out: &mut [Self]);
    fn slice(d: &Data) -> Option<&[Self]>;
    fn wrap(v: Vec<Self>) -> Data;
}

macro_rules! elem {
    ($t:ty, $variant:ident, $pick:tt) => {
        impl Elem for $t {
            fn zero() -> Self {
                0.0
            }
            fn unary(prim: &Primitive, xs: &[Self], out: &mut [Self]) {
                use Primitive::*;
                // one monomorphized loop per operation (no call per element)
                let z = out.iter_mut().zip(xs);
                match prim {
                    Neg => z.for_each(|(o, &x)| *o = -x),
                    Abs => z.for_each(|(o, &x)| *o = x.abs()),
                    Sqrt => z.for_each(|(o, &x)| *o = x.sqrt()),
                    Rsqrt => z.for_each(|(o, &x)| *o = 1.0 / x.sqrt()),
                    _ => {
                        let k = crate::kernels::fast_unary(prim.name())
                            .expect("fusible unary primitives have kernels");
                        (k.$pick)(xs, out);
                    }
                }
            }
            fn binary(prim: &Primitive, a: &[Self], b: &[Self], out: &mut [Self]) {
                use Primitive::*;
                // one monomorphized loop per operation (no call per element)
                let z = out.iter_mut().zip(a.iter().zip(b));
                match prim {
                    Add => z.for_each(|(o, (&x, &y))| *o = x + y),
                    Sub => z.for_each(|(o, (&x, &y))| *o = x - y),
                    Mul => z.for_each(|(o, (&x, &y))| *o = x * y),
                    Div => z.for_each(|(o, (&x, &y))| *o = x / y),
                    Max => z.for_each(|(o, (&x, &y))| *o = max_nan(x, y)),
                    Min => z.for_each(|(o, (&x, &y))| *o = min_nan(x, y)),
                    _ => unreachable!("fusible binary primitives are add, sub, mul, div, max, min"),
                }
            }
            fn slice(d: &Data) -> Option<&[Self]> {
                match d {
                    Data::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn wrap(v: Vec<Self>) -> Data {
                Data::$variant(v)
            }
        }
    };
}
elem!(f32, F32, 0);
elem!(f64, F64, 1);

impl Group {
    /// Runs the group on its inputs; returns one array per kept step, in step order.
    pub fn run(&self, inputs: &[Array]) -> Result<Vec<Array>> {
        match self.dtype {
            DType::F32 => self.run_typed::<f32>(inputs),
            DType::F64 => self.run_typed::<f64>(inputs),
            d => Err(Error::check(format!("a fused group of dtype {d}"))),
        }
    }

    fn run_typed<T: Elem>(&self, inputs: &[Array]) -> Result<Vec<Array>> {
        use rayon::prelude::*;
        let ins: Vec<&[T]> = inputs
            .iter()
            .map(|a| {
                T::slice(a.data())
                    .ok_or_else(|| Error::check("a fused group's input has another dtype"))
            })
            .collect::<Result<_>>()?;
        let kept: Vec<usize> = (0..self.steps.len()).filter(|&k| self.keep[k]).collect();
        let mut outs: Vec<Vec<T>> = kept
            .iter()
            .map(|&k| {
                crate::buffers::zeroed::<T>(self.size).map_err(|_| {
                    Error::exhausted(
                        "fused elementwise group",
                        format!(
                            "cannot allocate {} bytes for a value of {}",
                            self.size.saturating_mul(std::mem::size_of::<T>()),
                            Aval::new(self.shapes[k].clone(), self.dtype)
                        ),
                    )
                })
            })
            .collect::<Result<_>>()?;
        let n_chunks = self.size.div_ceil(CHUNK);
        // Split every output into chunk slices so chunks can be written in parallel.
        let mut per_chunk: Vec<Vec<&mut [T]>> = (0..n_chunks).map(|_| Vec::new()).collect();
        for o in outs.iter_mut() {
            for (c, part) in o.chunks_mut(CHUNK).enumerate() {
                per_chunk[c].push(part);
            }
        }
        type Scratch<T> = (Vec<Vec<T>>, [Vec<T>; 2]);
        let new_scratch = || -> Scratch<T> {
            (
                vec![vec![T::zero(); CHUNK]; self.steps.len()],
                [vec![T::zero(); CHUNK], vec![T::zero(); CHUNK]],
            )
        };
        // scratch buffers are made once per worker, not per chunk
        let work = |bufs: &mut Scratch<T>, (c, targets): (usize, Vec<&mut [T]>)| {
            let start = c * CHUNK;
            let len = CHUNK.min(self.size - start);
            let (scratch, tiles) = bufs;
            for (k, st) in self.steps.iter().enumerate() {
                for (slot, s) in st.srcs.iter().enumerate() {
                    if let Src::Repeated(i, run) = s {
                        // element i is input[i / run]: fill whole runs
                        let src = ins[*i];
                        let (mut j, mut off, mut filled) = (start / run, start % run, 0);
                        while filled < len {
                            let n = (run - off).min(len - filled);
                            tiles[slot][filled..filled + n].fill(src[j]);
                            filled += n;
                            j += 1;
                            off = 0;
                        }
                        continue;
                    }
                    if let Src::Tiled(i, period) = s {
                        // a scalar is a fill; otherwise copy whole runs of the period (no
                        // division per element)
                        let src = ins[*i];
                        if *period == 1 {
                            tiles[slot][..len].fill(src[0]);
                            continue;
                        }
                        let (mut pos, mut filled) = (start % period, 0);
                        while filled < len {
                            let run = (period - pos).min(len - filled);
                            tiles[slot][filled..filled + run].copy_from_slice(&src[pos..pos + run]);
                            filled += run;
                            pos = 0;
                        }
                    }
                }
                let (done, rest) = scratch.split_at_mut(k);
                let out = &mut rest[0][..len];
                let operand = |slot: usize| -> &[T] {
                    match &st.srcs[slot] {
                        Src::Input(i) => &ins[*i][start..start + len],
                        Src::Step(j) => &done[*j][..len],
                        Src::Tiled(..) | Src::Repeated(..) => &tiles[slot][..len],
                    }
                };
                match &st.prim {
                    Primitive::BroadcastInDim { .. } => out.copy_from_slice(operand(0)),
                    p if st.srcs.len() == 1 => T::unary(p, operand(0), out),
                    p => T::binary(p, operand(0), operand(1), out),
                }
            }
            for (t, &k) in targets.into_iter().zip(&kept) {
                t.copy_from_slice(&scratch[k][..len]);
            }
        };
        let chunks: Vec<(usize, Vec<&mut [T]>)> = per_chunk.into_iter().enumerate().collect();
        if n_chunks > 8 && rayon::current_num_threads() > 1 {
            chunks.into_par_iter().for_each_init(new_scratch, work);
        } else {
            let mut bufs = new_scratch();
            chunks.into_iter().for_each(|item| work(&mut bufs, item));
        }
        kept.iter()
            .zip(outs)
            .map(|(&k, v)| Array::from_data(T::wrap(v), &self.shapes[k]))
            .collect()
    }
}
