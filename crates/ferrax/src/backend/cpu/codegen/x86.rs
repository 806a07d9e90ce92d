//! The loop of a fused group, assembled instruction by instruction for the width `isa`
//! offers (AVX-512 or AVX2).
//!
//! Registers: `rax` counts elements, `rdx` is the chunk's length, `rdi`/`rsi` point at the
//! arrays of addresses, `r9` at the constants (read as memory operands); the reductions'
//! destinations (`rcx`, `r8`) wait on the stack until the end. The first nine streams and
//! kept values keep their addresses in `rcx`, `r10`, `r11`, `rbx`, `rbp`, `r12`-`r15` (the
//! callee-saved ones pushed first); any further one is read from its array into `r8` where
//! it is used. Vector values get registers from a free list and give them back after their
//! last use; a group that needs more at once than the width has (32 or 16) gets no code.
//! One iteration covers one AVX-512 vector's worth of elements (sixteen f32, eight f64): on
//! AVX2 the steps are emitted twice, for its two halves, and each sum has two accumulators
//! (the interpreter's lanes 0-7 and 8-15 for f32).

use iced_x86::code_asm::{self as asm, AsmRegister64};
use iced_x86::code_asm::{dword_ptr, qword_ptr};

use super::isa::{Asm, Emitter, Flags, Op, Opnd, Width, MASKS};
use super::{needed, supported, Emitted, Stream};
use crate::backend::cpu::dispatch::Binary;
use crate::backend::cpu::fuse::group::{Group, GroupOp, Reduction, Src};
use crate::backend::cpu::math::{Unary, LN2_HI32, LN2_LO32, SHIFT32, TANH_F32_EXPM1};

const POINTERS: [AsmRegister64; 9] = [
    asm::rcx,
    asm::r10,
    asm::r11,
    asm::rbx,
    asm::rbp,
    asm::r12,
    asm::r13,
    asm::r14,
    asm::r15,
];

/// Where the loop finds an address: a register, or `[base + offset]` (one of the arrays).
#[derive(Clone, Copy)]
enum Ptr {
    Reg(AsmRegister64),
    At(AsmRegister64, i32),
}

/// The address `p` in a register: itself, or loaded into `r8`.
fn addr(e: &mut Emitter, p: Ptr) -> Asm<AsmRegister64> {
    match p {
        Ptr::Reg(r) => Ok(r),
        Ptr::At(base, off) => {
            e.a.mov(asm::r8, qword_ptr(base + off))?;
            Ok(asm::r8)
        }
    }
}
const SAVED: [AsmRegister64; 6] = [asm::rbx, asm::rbp, asm::r12, asm::r13, asm::r14, asm::r15];

/// Where a value lives in the loop: a register it owns (freed after its last use), or a
/// shared one (a broadcast scalar).
#[derive(Clone, Copy)]
enum Loc {
    Own(usize),
    Shared(usize),
}

impl Loc {
    fn reg(self) -> usize {
        match self {
            Loc::Own(r) | Loc::Shared(r) => r,
        }
    }
}

/// The loop's bytes for `group` at `width`, its constants, streams and scalars; `None` when
/// the group needs something the loop does not do, or more registers than there are.
pub(super) fn emit(group: &Group, f64s: bool, width: Width) -> Option<Emitted> {
    let needed = needed(group);
    let n = group.steps.len();
    let live = || (0..n).filter(|&k| needed[k]);
    if live().any(|k| !supported(&group.steps[k].op, &group.steps[k].srcs, f64s))
        || group.reduce.len() > MASKS.len()
    {
        return None;
    }
    // what the code streams and which inputs it reads as scalars; the last step that
    // reads each stream (a broadcast step loads its own copy) and each step's value (a
    // reduced value is read where it is made)
    let (mut streams, mut scalars) = (vec![], vec![]);
    let mut last_stream: Vec<usize> = vec![];
    let mut last_step = vec![0usize; n];
    for k in live() {
        last_step[k] = last_step[k].max(k);
        for s in &group.steps[k].srcs {
            match s {
                Src::Step(j) => last_step[*j] = k,
                Src::Tiled(i, 1) => {
                    if !scalars.contains(i) {
                        scalars.push(*i);
                    }
                }
                _ => {
                    let stream = match s {
                        Src::Input(i) => Stream::Input(*i),
                        other => Stream::Tile(other.clone()),
                    };
                    let at = match streams.iter().position(|t| *t == stream) {
                        Some(at) => at,
                        None => {
                            streams.push(stream);
                            last_stream.push(0);
                            streams.len() - 1
                        }
                    };
                    last_stream[at] = k;
                }
            }
        }
    }
    let kept: Vec<usize> = (0..n).filter(|&k| group.keep[k]).collect();
    let mut e = Emitter::new(f64s, width)?;
    let plan = Layout {
        needed: &needed,
        streams: &streams,
        scalars: &scalars,
        kept: &kept,
        last_step: &last_step,
        last_stream: &last_stream,
    };
    let code = assemble(&mut e, group, &plan).ok()??;
    Some((code, e.into_consts(), streams, scalars))
}

/// What `emit` worked out before assembling.
struct Layout<'a> {
    needed: &'a [bool],
    streams: &'a [Stream],
    scalars: &'a [usize],
    kept: &'a [usize],
    last_step: &'a [usize],
    last_stream: &'a [usize],
}

/// The registers that live through the whole loop: broadcast scalars, and each
/// reduction's accumulators (one per half) and NaN flags (extrema only).
struct Fixed {
    scalar_reg: Vec<usize>,
    accs: Vec<Vec<usize>>,
    flags: Vec<Option<Flags>>,
}

fn assemble(e: &mut Emitter, group: &Group, l: &Layout<'_>) -> Asm<Option<Vec<u8>>> {
    let lanes: i32 = if e.f64s { 8 } else { 16 };
    for &r in &SAVED {
        e.a.push(r)?;
    }
    e.a.push(asm::rcx)?;
    e.a.push(asm::r8)?;
    // broadcast scalars, read once (their pointers follow the streams')
    let mut fixed = Fixed {
        scalar_reg: vec![],
        accs: vec![],
        flags: vec![],
    };
    for j in 0..l.scalars.len() {
        let Some(r) = e.take() else { return Ok(None) };
        let slot = 8 * (l.streams.len() + j) as i32;
        e.a.mov(asm::rax, qword_ptr(asm::rdi + slot))?;
        e.broadcast(r, asm::rax, 0)?;
        fixed.scalar_reg.push(r);
    }
    // accumulators: -inf for a maximum, +inf for a minimum, zero for a sum
    for (r, &(kind, _)) in group.reduce.iter().enumerate() {
        let inf = e.bits(f64::INFINITY);
        let bits = match kind {
            Reduction::Max => inf | e.sign(),
            Reduction::Min => inf,
            Reduction::Sum => 0,
        };
        let mut regs = vec![];
        for _ in 0..e.width.halves() {
            let Some(reg) = e.take() else { return Ok(None) };
            e.fill(reg, bits)?;
            regs.push(reg);
        }
        fixed.accs.push(regs);
        // a sum needs no NaN flags (its lanes are added up whatever they hold), and on AVX2
        // a flag register is one of only sixteen
        let flags = match kind {
            Reduction::Sum => None,
            Reduction::Max | Reduction::Min => {
                let Some(flags) = e.new_flags(r)? else {
                    return Ok(None);
                };
                Some(flags)
            }
        };
        fixed.flags.push(flags);
    }
    // the streams' and the kept values' addresses
    let mut pointer = POINTERS.iter().copied();
    let mut place = |e: &mut Emitter, base: AsmRegister64, off: i32| -> Asm<Ptr> {
        Ok(match pointer.next() {
            Some(p) => {
                e.a.mov(p, qword_ptr(base + off))?;
                Ptr::Reg(p)
            }
            None => Ptr::At(base, off),
        })
    };
    let mut stream_ptr = vec![];
    for j in 0..l.streams.len() {
        stream_ptr.push(place(e, asm::rdi, 8 * j as i32)?);
    }
    let mut output_ptr = vec![Ptr::Reg(asm::rax); group.steps.len()];
    for (j, &k) in l.kept.iter().enumerate() {
        output_ptr[k] = place(e, asm::rsi, 8 * j as i32)?;
    }
    e.a.xor(asm::eax, asm::eax)?;
    let mut top = e.a.create_label();
    e.a.set_label(&mut top)?;
    for half in 0..e.width.halves() {
        let ptrs = (&stream_ptr[..], &output_ptr[..]);
        if body(e, group, l, &fixed, ptrs, half)?.is_none() {
            return Ok(None);
        }
    }
    e.a.add(asm::rax, lanes)?;
    e.a.cmp(asm::rax, asm::rdx)?;
    e.a.jb(top)?;
    e.a.pop(asm::r8)?;
    e.a.pop(asm::rcx)?;
    for (r, regs) in fixed.accs.iter().enumerate() {
        for (half, &acc) in regs.iter().enumerate() {
            let off = 64 * r as i32 + e.width.bytes() * half as i32;
            e.store_at(asm::rcx, off, acc)?;
        }
        match fixed.flags[r] {
            Some(flags) => e.flags_to_eax(flags)?,
            None => e.a.xor(asm::eax, asm::eax)?,
        }
        e.a.mov(dword_ptr(asm::r8 + 4 * r as i32), asm::eax)?;
    }
    e.a.vzeroupper()?;
    for &r in SAVED.iter().rev() {
        e.a.pop(r)?;
    }
    e.a.ret()?;
    Ok(Some(e.a.assemble(0)?))
}

/// The group's steps for one register's worth of elements (`half` of the iteration's):
/// every register it takes is given back by its end.
fn body(
    e: &mut Emitter,
    group: &Group,
    l: &Layout<'_>,
    fixed: &Fixed,
    (stream_ptr, output_ptr): (&[Ptr], &[Ptr]),
    half: usize,
) -> Asm<Option<()>> {
    let off = e.width.bytes() * half as i32;
    let stream_of = |s: &Src| {
        let want = match s {
            Src::Input(i) => Stream::Input(*i),
            other => Stream::Tile(other.clone()),
        };
        l.streams.iter().position(|t| *t == want)
    };
    let scalar =
        |i: &usize| fixed.scalar_reg[l.scalars.iter().position(|s| s == i).expect("collected")];
    let mut at: Vec<Option<Loc>> = vec![None; group.steps.len()];
    let mut loaded: Vec<Option<usize>> = vec![None; l.streams.len()];
    for k in (0..group.steps.len()).filter(|&k| l.needed[k]) {
        let st = &group.steps[k];
        let loc = if let GroupOp::Broadcast = st.op {
            match &st.srcs[0] {
                Src::Tiled(i, 1) => Loc::Shared(scalar(i)),
                s => {
                    // its own copy of the generated chunk's vector
                    let Some(j) = stream_of(s) else {
                        return Ok(None);
                    };
                    let Some(r) = e.take() else { return Ok(None) };
                    let p = addr(e, stream_ptr[j])?;
                    e.load(r, p, off)?;
                    Loc::Own(r)
                }
            }
        } else {
            let mut operands = vec![];
            for s in &st.srcs {
                let reg = match s {
                    Src::Step(j) => at[*j].expect("an operand is made before it is read").reg(),
                    Src::Tiled(i, 1) => scalar(i),
                    s => {
                        let Some(j) = stream_of(s) else {
                            return Ok(None);
                        };
                        match loaded[j] {
                            Some(r) => r,
                            None => {
                                let Some(r) = e.take() else { return Ok(None) };
                                let p = addr(e, stream_ptr[j])?;
                                e.load(r, p, off)?;
                                loaded[j] = Some(r);
                                r
                            }
                        }
                    }
                };
                operands.push(reg);
            }
            let Some(d) = e.take() else { return Ok(None) };
            let done = match st.op {
                GroupOp::Binary(b) => binary(e, b, d, operands[0], operands[1])?,
                GroupOp::Unary(u) => unary(e, u, d, operands[0])?,
                GroupOp::Broadcast => unreachable!("handled above"),
            };
            if done.is_none() {
                return Ok(None);
            }
            Loc::Own(d)
        };
        at[k] = Some(loc);
        let v = loc.reg();
        if group.keep[k] {
            let p = addr(e, output_ptr[k])?;
            e.store(p, off, v)?;
        }
        for (r, &(kind, _)) in group
            .reduce
            .iter()
            .enumerate()
            .filter(|(_, (_, j))| *j == k)
        {
            let acc = fixed.accs[r][half];
            // the interpreter's lanes: `acc = v > acc ? v : acc` is `vmaxps acc, v, acc` (the
            // second operand when unordered); a NaN is flagged, and the chunk refolded
            match kind {
                Reduction::Sum => e.op(Op::Add, acc, acc, Opnd::R(v))?,
                Reduction::Max => e.op(Op::Max, acc, v, Opnd::R(acc))?,
                Reduction::Min => e.op(Op::Min, acc, v, Opnd::R(acc))?,
            }
            if let Some(flags) = fixed.flags[r] {
                if e.flag_nans(flags, v)?.is_none() {
                    return Ok(None);
                }
            }
        }
        // give back what is read for the last time here
        if !matches!(st.op, GroupOp::Broadcast) {
            for s in &st.srcs {
                match s {
                    Src::Step(j) if l.last_step[*j] == k => {
                        if let Some(Loc::Own(r)) = at[*j].take() {
                            e.give(r);
                        }
                    }
                    Src::Step(_) | Src::Tiled(_, 1) => {}
                    s => {
                        if let Some(j) = stream_of(s).filter(|&j| l.last_stream[j] == k) {
                            if let Some(r) = loaded[j].take() {
                                e.give(r);
                            }
                        }
                    }
                }
            }
        }
        if l.last_step[k] == k {
            if let Some(Loc::Own(r)) = at[k].take() {
                e.give(r);
            }
        }
    }
    Ok(Some(()))
}

/// `d = x op y`, the interpreter's operand order.
fn binary(e: &mut Emitter, b: Binary, d: usize, x: usize, y: usize) -> Asm<Option<()>> {
    match b {
        Binary::Add => e.op(Op::Add, d, x, Opnd::R(y))?,
        Binary::Sub => e.op(Op::Sub, d, x, Opnd::R(y))?,
        Binary::Mul => e.op(Op::Mul, d, x, Opnd::R(y))?,
        Binary::Div => e.op(Op::Div, d, x, Opnd::R(y))?,
        Binary::Max | Binary::Min => {
            // `max_nan(x, y)`: x if x is NaN, else y if y is NaN or y > x, else x. `vmaxps
            // d, y, x` is `y > x ? y : x` (x when unordered), then the NaNs put back, x's
            // last so that it wins (and `min` alike with `<`)
            let op = if b == Binary::Max { Op::Max } else { Op::Min };
            e.op(op, d, y, Opnd::R(x))?;
            for nan in [y, x] {
                let Some(mask) = e.compare(nan, Opnd::R(nan), 3)? else {
                    return Ok(None);
                };
                e.blend(d, d, nan, mask)?;
            }
        }
    }
    Ok(Some(()))
}

/// `d = u(x)`: one instruction, or a few (rsqrt is `1 / sqrt(x)`, as the interpreter's),
/// or f32 tanh.
fn unary(e: &mut Emitter, u: Unary, d: usize, x: usize) -> Asm<Option<()>> {
    let sign = e.sign();
    let all = if e.f64s { u64::MAX } else { 0xffff_ffff };
    match u {
        Unary::Neg => e.op(Op::Xor, d, x, Opnd::K(sign))?,
        Unary::Abs => e.op(Op::And, d, x, Opnd::K(!sign & all))?,
        Unary::Sqrt => e.sqrt(d, x)?,
        Unary::Rsqrt => {
            let Some(one) = e.take() else { return Ok(None) };
            let bits = e.bits(1.0);
            e.fill(one, bits)?;
            e.sqrt(d, x)?;
            e.op(Op::Div, d, one, Opnd::R(d))?;
            e.give(one);
        }
        Unary::Tanh if !e.f64s => return tanh_f32(e, d, x),
        _ => return Ok(None),
    }
    Ok(Some(()))
}

/// `d = tanh(x)` in f32, operation for operation `math::tanh_f32`: the same IEEE
/// operations (fused multiply-adds where it has them) on the same operands, so the same
/// bits.
fn tanh_f32(e: &mut Emitter, d: usize, x: usize) -> Asm<Option<()>> {
    let mut t = [0usize; 5];
    for slot in t.iter_mut() {
        match e.take() {
            Some(r) => *slot = r,
            None => return Ok(None),
        }
    }
    let [a, n, k, z, p] = t;
    let c = |v: f32| Opnd::K(u64::from(v.to_bits()));
    let sign = 1u64 << 31;
    // a = min(|x|, 9.5): `vminps` gives its second operand for a NaN, as f32::min does
    e.op(Op::And, a, x, Opnd::K(!sign & 0xffff_ffff))?;
    e.op(Op::Min, a, a, c(9.5))?;
    // k = a · 2 log2(e) + SHIFT: n = round(2a / ln 2) as a float, and k its integer bits
    e.fill(k, u64::from(SHIFT32.to_bits()))?;
    e.mul_acc(k, a, c(2.0 * std::f32::consts::LOG2_E))?;
    e.op(Op::Sub, n, k, c(SHIFT32))?;
    e.op(Op::SubI32, k, k, c(SHIFT32))?;
    // r = a − n · ln 2 / 2, in a
    e.mul_acc(a, n, c(-0.5 * LN2_HI32))?;
    e.mul_acc(a, n, c(-0.5 * LN2_LO32))?;
    // q = r² P(r) + 2r, in n (P by Horner's rule, highest coefficient first)
    e.op(Op::Mul, z, a, Opnd::R(a))?;
    let (&last, rest) = TANH_F32_EXPM1.split_last().expect("coefficients");
    e.fill(p, u64::from(last.to_bits()))?;
    for &coef in rest.iter().rev() {
        e.mul_add(p, a, c(coef))?;
    }
    e.op(Op::Add, n, a, Opnd::R(a))?;
    e.mul_acc(n, z, Opnd::R(p))?;
    // k = 2^n from the bits; z = expm1(2a) = k · q + (k − 1)
    e.op(Op::AddI32, k, k, Opnd::K(127))?;
    e.shift_left_i32(k, k, 23)?;
    e.op(Op::Sub, z, k, c(1.0))?;
    e.mul_acc(z, k, Opnd::R(n))?;
    // p = z / (z + 2), which is ≥ 0: copysign(p, x) sets x's sign bit
    e.op(Op::Add, p, z, c(2.0))?;
    e.op(Op::Div, p, z, Opnd::R(p))?;
    e.op(Op::And, a, x, Opnd::K(sign))?;
    e.op(Op::Or, p, p, Opnd::R(a))?;
    // x itself where x is NaN (predicate 3: unordered)
    let Some(mask) = e.compare(x, Opnd::R(x), 3)? else {
        return Ok(None);
    };
    e.blend(d, p, x, mask)?;
    for r in t {
        e.give(r);
    }
    Ok(Some(()))
}
