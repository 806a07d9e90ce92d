//! The AVX-512 loop of a fused group, assembled instruction by instruction.
//!
//! Registers: `rax` counts elements, `rdx` is the chunk's length, `rdi`/`rsi` point at the
//! arrays of addresses, `r9` at the constants (read as broadcast memory operands); the
//! reductions' destinations (`rcx`, `r8`) wait on the stack until the end. The first nine
//! streams and kept values keep their addresses in `rcx`, `r10`, `r11`, `rbx`, `rbp`,
//! `r12`-`r15` (the callee-saved ones pushed first); any further one is read from its array
//! into `r8` where it is used. Vector values get `zmm` registers from a free list and give
//! them back after their last use; a group that needs more than 32 at once gets no code.

use iced_x86::code_asm::CodeAssembler;
use iced_x86::code_asm::{self as asm, AsmMemoryOperand, AsmRegister64, AsmRegisterZmm};
use iced_x86::code_asm::{dword_bcst, dword_ptr, qword_bcst, qword_ptr, zmmword_ptr};

use super::{needed, supported, Emitted, Stream};
use crate::backend::cpu::dispatch::Binary;
use crate::backend::cpu::fuse::group::{Group, GroupOp, Reduction, Src};
use crate::backend::cpu::math::{Unary, LN2_HI32, LN2_LO32, SHIFT32, TANH_F32_TAYLOR};

const ZMM: [AsmRegisterZmm; 32] = [
    asm::zmm0,
    asm::zmm1,
    asm::zmm2,
    asm::zmm3,
    asm::zmm4,
    asm::zmm5,
    asm::zmm6,
    asm::zmm7,
    asm::zmm8,
    asm::zmm9,
    asm::zmm10,
    asm::zmm11,
    asm::zmm12,
    asm::zmm13,
    asm::zmm14,
    asm::zmm15,
    asm::zmm16,
    asm::zmm17,
    asm::zmm18,
    asm::zmm19,
    asm::zmm20,
    asm::zmm21,
    asm::zmm22,
    asm::zmm23,
    asm::zmm24,
    asm::zmm25,
    asm::zmm26,
    asm::zmm27,
    asm::zmm28,
    asm::zmm29,
    asm::zmm30,
    asm::zmm31,
];
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
/// At most six reductions: each keeps its NaN flags in a mask register (k2 to k7; k1 is
/// scratch).
const MASKS: [asm::AsmRegisterK; 6] = [asm::k2, asm::k3, asm::k4, asm::k5, asm::k6, asm::k7];

type Asm<T> = Result<T, iced_x86::IcedError>;

/// What the assembler needs besides the group: registers, constants, the element type.
struct Emitter {
    a: CodeAssembler,
    free: Vec<usize>,
    consts: Vec<u64>,
    f64s: bool,
}

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

impl Emitter {
    fn take(&mut self) -> Option<usize> {
        self.free.pop()
    }
    fn give(&mut self, r: usize) {
        self.free.push(r);
    }
    /// The offset of a constant (raw bits of one element) in the table `r9` points at.
    fn konst(&mut self, bits: u64) -> i32 {
        let at = match self.consts.iter().position(|&c| c == bits) {
            Some(at) => at,
            None => {
                self.consts.push(bits);
                self.consts.len() - 1
            }
        };
        8 * at as i32
    }
    /// A constant (raw bits of one element), as a broadcast memory operand.
    fn raw(&mut self, bits: u64) -> AsmMemoryOperand {
        let off = self.konst(bits);
        if self.f64s {
            qword_bcst(asm::r9 + off)
        } else {
            dword_bcst(asm::r9 + off)
        }
    }
    /// Fills register `r` with the constant `bits` in every lane.
    fn fill(&mut self, r: usize, bits: u64) -> Asm<()> {
        let off = self.konst(bits);
        if self.f64s {
            self.a.vbroadcastsd(ZMM[r], qword_ptr(asm::r9 + off))
        } else {
            self.a.vbroadcastss(ZMM[r], dword_ptr(asm::r9 + off))
        }
    }
    fn bits(&self, v: f64) -> u64 {
        if self.f64s {
            v.to_bits()
        } else {
            u64::from((v as f32).to_bits())
        }
    }
    fn sign(&self) -> u64 {
        if self.f64s {
            1 << 63
        } else {
            1 << 31
        }
    }
}

/// The loop's bytes for `group`, its constants, streams and scalars; `None` when the group
/// needs something the loop does not do, or more registers than there are.
pub(super) fn emit(group: &Group, f64s: bool) -> Option<Emitted> {
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
    let mut e = Emitter {
        a: CodeAssembler::new(64).ok()?,
        free: (0..32).rev().collect(),
        consts: vec![],
        f64s,
    };
    let plan = Layout {
        needed: &needed,
        streams: &streams,
        scalars: &scalars,
        kept: &kept,
        last_step: &last_step,
        last_stream: &last_stream,
    };
    let code = assemble(&mut e, group, &plan).ok()??;
    Some((code, e.consts, streams, scalars))
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

fn assemble(e: &mut Emitter, group: &Group, l: &Layout<'_>) -> Asm<Option<Vec<u8>>> {
    let (scale, lanes): (u32, i32) = if e.f64s { (8, 8) } else { (4, 16) };
    for &r in &SAVED {
        e.a.push(r)?;
    }
    e.a.push(asm::rcx)?;
    e.a.push(asm::r8)?;
    // broadcast scalars, read once (their pointers follow the streams')
    let mut scalar_reg = vec![];
    for j in 0..l.scalars.len() {
        let Some(r) = e.take() else { return Ok(None) };
        let slot = 8 * (l.streams.len() + j) as i32;
        e.a.mov(asm::rax, qword_ptr(asm::rdi + slot))?;
        if e.f64s {
            e.a.vbroadcastsd(ZMM[r], qword_ptr(asm::rax))?;
        } else {
            e.a.vbroadcastss(ZMM[r], dword_ptr(asm::rax))?;
        }
        scalar_reg.push(r);
    }
    // accumulators: -inf for a maximum, +inf for a minimum, zero for a sum
    let mut accs = vec![];
    for (r, &(kind, _)) in group.reduce.iter().enumerate() {
        let inf = e.bits(f64::INFINITY);
        let bits = match kind {
            Reduction::Max => inf | e.sign(),
            Reduction::Min => inf,
            Reduction::Sum => 0,
        };
        let Some(reg) = e.take() else { return Ok(None) };
        e.fill(reg, bits)?;
        accs.push(reg);
        e.a.kxorw(MASKS[r], MASKS[r], MASKS[r])?;
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
    let stream_of = |s: &Src| {
        let want = match s {
            Src::Input(i) => Stream::Input(*i),
            other => Stream::Tile(other.clone()),
        };
        l.streams.iter().position(|t| *t == want)
    };
    let mut at: Vec<Option<Loc>> = vec![None; group.steps.len()];
    let mut loaded: Vec<Option<usize>> = vec![None; l.streams.len()];
    for k in (0..group.steps.len()).filter(|&k| l.needed[k]) {
        let st = &group.steps[k];
        let loc = if let GroupOp::Broadcast = st.op {
            match &st.srcs[0] {
                Src::Tiled(i, 1) => {
                    let j = l.scalars.iter().position(|s| s == i).expect("collected");
                    Loc::Shared(scalar_reg[j])
                }
                s => {
                    // its own copy of the generated chunk's vector
                    let Some(j) = stream_of(s) else {
                        return Ok(None);
                    };
                    let Some(r) = e.take() else { return Ok(None) };
                    let p = addr(e, stream_ptr[j])?;
                    e.a.vmovups(ZMM[r], zmmword_ptr(p + asm::rax * scale))?;
                    Loc::Own(r)
                }
            }
        } else {
            let mut operands = vec![];
            for s in &st.srcs {
                let reg = match s {
                    Src::Step(j) => at[*j].expect("an operand is made before it is read").reg(),
                    Src::Tiled(i, 1) => {
                        scalar_reg[l.scalars.iter().position(|s| s == i).expect("collected")]
                    }
                    s => {
                        let Some(j) = stream_of(s) else {
                            return Ok(None);
                        };
                        match loaded[j] {
                            Some(r) => r,
                            None => {
                                let Some(r) = e.take() else { return Ok(None) };
                                let p = addr(e, stream_ptr[j])?;
                                e.a.vmovups(ZMM[r], zmmword_ptr(p + asm::rax * scale))?;
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
        let v = ZMM[loc.reg()];
        if group.keep[k] {
            let p = addr(e, output_ptr[k])?;
            e.a.vmovups(zmmword_ptr(p + asm::rax * scale), v)?;
        }
        for (r, &(kind, _)) in group
            .reduce
            .iter()
            .enumerate()
            .filter(|(_, (_, j))| *j == k)
        {
            let acc = ZMM[accs[r]];
            // the interpreter's lanes: `acc = v > acc ? v : acc` is `vmaxps acc, v, acc` (the
            // second operand when unordered); a NaN is flagged, and the chunk refolded
            match (kind, e.f64s) {
                (Reduction::Sum, false) => e.a.vaddps(acc, acc, v)?,
                (Reduction::Sum, true) => e.a.vaddpd(acc, acc, v)?,
                (Reduction::Max, false) => e.a.vmaxps(acc, v, acc)?,
                (Reduction::Max, true) => e.a.vmaxpd(acc, v, acc)?,
                (Reduction::Min, false) => e.a.vminps(acc, v, acc)?,
                (Reduction::Min, true) => e.a.vminpd(acc, v, acc)?,
            }
            if kind != Reduction::Sum {
                unordered(e, v, v)?;
                e.a.korw(MASKS[r], MASKS[r], asm::k1)?;
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
    e.a.add(asm::rax, lanes)?;
    e.a.cmp(asm::rax, asm::rdx)?;
    e.a.jb(top)?;
    e.a.pop(asm::r8)?;
    e.a.pop(asm::rcx)?;
    for (r, &acc) in accs.iter().enumerate() {
        e.a.vmovups(zmmword_ptr(asm::rcx + 64 * r as i32), ZMM[acc])?;
        e.a.kmovw(asm::eax, MASKS[r])?;
        e.a.mov(dword_ptr(asm::r8 + 4 * r as i32), asm::eax)?;
    }
    e.a.vzeroupper()?;
    for &r in SAVED.iter().rev() {
        e.a.pop(r)?;
    }
    e.a.ret()?;
    Ok(Some(e.a.assemble(0)?))
}

/// `k1` = the lanes where `x` or `y` is NaN (predicate 3, unordered).
fn unordered(e: &mut Emitter, x: AsmRegisterZmm, y: AsmRegisterZmm) -> Asm<()> {
    if e.f64s {
        e.a.vcmppd(asm::k1, x, y, 3)
    } else {
        e.a.vcmpps(asm::k1, x, y, 3)
    }
}

/// `d = x op y`, the interpreter's operand order.
fn binary(e: &mut Emitter, b: Binary, d: usize, x: usize, y: usize) -> Asm<Option<()>> {
    let (d, x, y) = (ZMM[d], ZMM[x], ZMM[y]);
    match (b, e.f64s) {
        (Binary::Add, false) => e.a.vaddps(d, x, y)?,
        (Binary::Add, true) => e.a.vaddpd(d, x, y)?,
        (Binary::Sub, false) => e.a.vsubps(d, x, y)?,
        (Binary::Sub, true) => e.a.vsubpd(d, x, y)?,
        (Binary::Mul, false) => e.a.vmulps(d, x, y)?,
        (Binary::Mul, true) => e.a.vmulpd(d, x, y)?,
        (Binary::Div, false) => e.a.vdivps(d, x, y)?,
        (Binary::Div, true) => e.a.vdivpd(d, x, y)?,
        (Binary::Max | Binary::Min, _) => {
            // `max_nan(x, y)`: x if x is NaN, else y if y is NaN or y > x, else x. `vmaxps
            // d, y, x` is `y > x ? y : x` (x when unordered), then the NaNs put back, x's
            // last so that it wins (and `min` alike with `<`)
            match (b, e.f64s) {
                (Binary::Max, false) => e.a.vmaxps(d, y, x)?,
                (Binary::Max, true) => e.a.vmaxpd(d, y, x)?,
                (_, false) => e.a.vminps(d, y, x)?,
                (_, true) => e.a.vminpd(d, y, x)?,
            }
            for nan in [y, x] {
                unordered(e, nan, nan)?;
                if e.f64s {
                    e.a.vblendmpd(d.k1(), d, nan)?;
                } else {
                    e.a.vblendmps(d.k1(), d, nan)?;
                }
            }
        }
    }
    Ok(Some(()))
}

/// `d = u(x)`: one instruction, or a few (rsqrt is `1 / sqrt(x)`, as the interpreter's),
/// or f32 tanh.
fn unary(e: &mut Emitter, u: Unary, d: usize, x: usize) -> Asm<Option<()>> {
    let (dr, xr) = (ZMM[d], ZMM[x]);
    let sign = e.sign();
    match (u, e.f64s) {
        (Unary::Neg, false) => {
            let m = e.raw(sign);
            e.a.vpxord(dr, xr, m)?
        }
        (Unary::Neg, true) => {
            let m = e.raw(sign);
            e.a.vpxorq(dr, xr, m)?
        }
        (Unary::Abs, false) => {
            let m = e.raw(!sign & 0xffff_ffff);
            e.a.vpandd(dr, xr, m)?
        }
        (Unary::Abs, true) => {
            let m = e.raw(!sign);
            e.a.vpandq(dr, xr, m)?
        }
        (Unary::Sqrt, false) => e.a.vsqrtps(dr, xr)?,
        (Unary::Sqrt, true) => e.a.vsqrtpd(dr, xr)?,
        (Unary::Rsqrt, _) => {
            let Some(one) = e.take() else { return Ok(None) };
            let bits = e.bits(1.0);
            e.fill(one, bits)?;
            if e.f64s {
                e.a.vsqrtpd(dr, xr)?;
                e.a.vdivpd(dr, ZMM[one], dr)?;
            } else {
                e.a.vsqrtps(dr, xr)?;
                e.a.vdivps(dr, ZMM[one], dr)?;
            }
            e.give(one);
        }
        (Unary::Tanh, false) => return tanh_f32(e, d, x),
        _ => return Ok(None),
    }
    Ok(Some(()))
}

/// `d = tanh(x)` in f32, operation for operation `math::tanh_f32` (and the
/// `exp_f32_small` it calls): the same IEEE operations on the same operands, so the same
/// bits.
fn tanh_f32(e: &mut Emitter, d: usize, x: usize) -> Asm<Option<()>> {
    let mut t = [0usize; 6];
    for slot in t.iter_mut() {
        match e.take() {
            Some(r) => *slot = r,
            None => return Ok(None),
        }
    }
    let [a, z, p, s, r, h] = t.map(|i| ZMM[i]);
    let (x, d) = (ZMM[x], ZMM[d]);
    let c = |e: &mut Emitter, v: f32| e.raw(u64::from(v.to_bits()));
    // a = min(|x|, 9.5): `vminps` gives its second operand for a NaN, as f32::min does
    let m = e.raw(u64::from(!(1u32 << 31)));
    e.a.vpandd(a, x, m)?;
    let k = c(e, 9.5);
    e.a.vminps(a, a, k)?;
    e.a.vmulps(z, a, a)?;
    // p = Horner's rule over the Taylor coefficients, highest first
    let (&last, rest) = TANH_F32_TAYLOR.split_last().expect("coefficients");
    let off = e.konst(u64::from(last.to_bits()));
    e.a.vbroadcastss(p, dword_ptr(asm::r9 + off))?;
    for &coef in rest.iter().rev() {
        e.a.vmulps(p, p, z)?;
        let k = c(e, coef);
        e.a.vaddps(p, p, k)?;
    }
    // small = a + a * z * p
    e.a.vmulps(s, a, z)?;
    e.a.vmulps(s, s, p)?;
    e.a.vaddps(s, a, s)?;
    // e = exp(2a): y = 2a, t = y log2(e) + SHIFT, n = t - SHIFT, r = (y - n hi) - n lo
    let k = c(e, 2.0);
    e.a.vmulps(z, a, k)?; // y (z is free now)
    let k = c(e, std::f32::consts::LOG2_E);
    e.a.vmulps(p, z, k)?; // t (p is free now)
    let k = c(e, SHIFT32);
    e.a.vaddps(p, p, k)?;
    e.a.vsubps(h, p, k)?; // n
    let k = e.raw(u64::from(SHIFT32.to_bits()));
    e.a.vpsubd(p, p, k)?; // ni, the integer bits' difference
    let k = c(e, LN2_HI32);
    e.a.vmulps(r, h, k)?;
    e.a.vsubps(r, z, r)?;
    let k = c(e, LN2_LO32);
    e.a.vmulps(z, h, k)?;
    e.a.vsubps(r, r, z)?;
    // q = 1 + r (1 + r (1/2 + r (1/6 + r (1/24 + r (1/120 + r (1/720 + r / 5040))))))
    let k = c(e, 1.0 / 5040.0);
    e.a.vmulps(h, r, k)?;
    for coef in [1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0] {
        let k = c(e, coef);
        e.a.vaddps(h, h, k)?;
        e.a.vmulps(h, r, h)?;
    }
    let k = c(e, 1.0);
    e.a.vaddps(h, h, k)?;
    // e = q · 2^ni, the exponent built from the bits
    let k = e.raw(127);
    e.a.vpaddd(p, p, k)?;
    e.a.vpslld(p, p, 23)?;
    e.a.vmulps(h, h, p)?;
    // large = 1 - 2 / (e + 1)
    let k = c(e, 1.0);
    e.a.vaddps(h, h, k)?;
    let off = e.konst(u64::from(2f32.to_bits()));
    e.a.vbroadcastss(z, dword_ptr(asm::r9 + off))?;
    e.a.vdivps(h, z, h)?;
    let off = e.konst(u64::from(1f32.to_bits()));
    e.a.vbroadcastss(z, dword_ptr(asm::r9 + off))?;
    e.a.vsubps(h, z, h)?;
    // t = a < 0.625 ? small : large (predicate 1: less than, ordered)
    let k = c(e, 0.625);
    e.a.vcmpps(asm::k1, a, k, 1)?;
    e.a.vblendmps(d.k1(), h, s)?;
    // copysign(t, x), then x itself where x is NaN
    let m = e.raw(u64::from(!(1u32 << 31)));
    e.a.vpandd(d, d, m)?;
    let m = e.raw(1 << 31);
    e.a.vpandd(z, x, m)?;
    e.a.vpord(d, d, z)?;
    unordered(e, x, x)?;
    e.a.vblendmps(d.k1(), d, x)?;
    for r in t {
        e.give(r);
    }
    Ok(Some(()))
}
