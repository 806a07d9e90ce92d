//! The vector instructions the loop of a fused group is made of, for either register width
//! the CPU offers: AVX-512 (`zmm`, sixteen f32 lanes, mask registers) or AVX2 (`ymm`, eight
//! f32 lanes, masks held in vector registers).
//!
//! `x86` schedules a group's steps onto numbered vector registers and asks this file for
//! each instruction by what it computes; this file picks the encoding. Both widths perform
//! the same IEEE operation on every lane, so the loop's bits do not depend on the width:
//! an AVX2 loop handles the sixteen (f32) or eight (f64) elements of one AVX-512 vector as
//! two halves, so its sum accumulators are the same lanes too.

use iced_x86::code_asm::CodeAssembler;
use iced_x86::code_asm::{self as asm, AsmMemoryOperand, AsmRegisterYmm, AsmRegisterZmm};
use iced_x86::code_asm::{dword_bcst, dword_ptr, qword_bcst, qword_ptr, ymmword_ptr, zmmword_ptr};

pub(super) type Asm<T> = Result<T, iced_x86::IcedError>;

/// The register width a loop is assembled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Width {
    /// AVX-512F: 32 `zmm` registers, constants as broadcast memory operands, compare
    /// results in mask registers.
    Zmm,
    /// AVX2: 16 `ymm` registers, constants read as whole vectors, compare results in vector
    /// registers; each AVX-512 vector's worth of elements is two halves.
    Ymm,
}

impl Width {
    /// Vector registers there are.
    pub(super) fn registers(self) -> usize {
        match self {
            Width::Zmm => 32,
            Width::Ymm => 16,
        }
    }
    /// Bytes per register.
    pub(super) fn bytes(self) -> i32 {
        match self {
            Width::Zmm => 64,
            Width::Ymm => 32,
        }
    }
    /// Registers' worth of elements per AVX-512 vector (per loop iteration).
    pub(super) fn halves(self) -> usize {
        match self {
            Width::Zmm => 1,
            Width::Ymm => 2,
        }
    }
}

/// A second operand: a register, or a constant (raw bits of one element) read from memory.
#[derive(Clone, Copy)]
pub(super) enum Opnd {
    R(usize),
    K(u64),
}

/// A two-operand vector operation, `d = x op y`.
#[derive(Clone, Copy)]
pub(super) enum Op {
    Add,
    Sub,
    Mul,
    Div,
    /// `x > y ? x : y`, `y` when unordered (`vmaxps`).
    Max,
    /// `x < y ? x : y`, `y` when unordered (`vminps`).
    Min,
    And,
    Or,
    Xor,
    /// 32-bit integer lanes.
    AddI32,
    SubI32,
}

/// Where a compare left its lanes: `k1`, or a vector register (taken for it, given back by
/// the blend that reads it).
#[derive(Clone, Copy)]
pub(super) enum Mask {
    K1,
    V(usize),
}

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
const YMM: [AsmRegisterYmm; 16] = [
    asm::ymm0,
    asm::ymm1,
    asm::ymm2,
    asm::ymm3,
    asm::ymm4,
    asm::ymm5,
    asm::ymm6,
    asm::ymm7,
    asm::ymm8,
    asm::ymm9,
    asm::ymm10,
    asm::ymm11,
    asm::ymm12,
    asm::ymm13,
    asm::ymm14,
    asm::ymm15,
];

/// The assembler, the vector registers free now, the constants the code reads, the element
/// type and the width.
pub(super) struct Emitter {
    pub a: CodeAssembler,
    free: Vec<usize>,
    consts: Vec<u64>,
    pub f64s: bool,
    pub width: Width,
}

/// `d = x op y` in `zmm` registers (`y` a register or a broadcast constant).
macro_rules! zmm3 {
    ($e:expr, $m:ident, $d:expr, $x:expr, $y:expr) => {
        match $y {
            Opnd::R(y) => $e.a.$m(ZMM[$d], ZMM[$x], ZMM[y]),
            Opnd::K(bits) => {
                let m = $e.bcst(bits);
                $e.a.$m(ZMM[$d], ZMM[$x], m)
            }
        }
    };
}

/// `d = x op y` in `ymm` registers (`y` a register or a constant vector).
macro_rules! ymm3 {
    ($e:expr, $m:ident, $d:expr, $x:expr, $y:expr) => {
        match $y {
            Opnd::R(y) => $e.a.$m(YMM[$d], YMM[$x], YMM[y]),
            Opnd::K(bits) => {
                let m = $e.whole(bits);
                $e.a.$m(YMM[$d], YMM[$x], m)
            }
        }
    };
}

/// `d = x op y` for the width, one instruction name for both.
macro_rules! three {
    ($e:expr, $m:ident, $d:expr, $x:expr, $y:expr) => {
        match $e.width {
            Width::Zmm => zmm3!($e, $m, $d, $x, $y),
            Width::Ymm => ymm3!($e, $m, $d, $x, $y),
        }
    };
}

impl Emitter {
    pub(super) fn new(f64s: bool, width: Width) -> Option<Emitter> {
        Some(Emitter {
            a: CodeAssembler::new(64).ok()?,
            free: (0..width.registers()).rev().collect(),
            consts: vec![],
            f64s,
            width,
        })
    }
    pub(super) fn take(&mut self) -> Option<usize> {
        self.free.pop()
    }
    pub(super) fn give(&mut self, r: usize) {
        self.free.push(r);
    }
    /// The constant table the code reads through `r9`: each constant a whole `ymm`
    /// register's worth (its element repeated), so either width reads it as one operand.
    pub(super) fn into_consts(self) -> Vec<u64> {
        self.consts
    }
    /// The offset of a constant (raw bits of one element) in the table.
    fn konst(&mut self, bits: u64) -> i32 {
        let word = if self.f64s {
            bits
        } else {
            (bits & 0xffff_ffff) | (bits << 32)
        };
        let at = match self.consts.chunks(4).position(|c| c[0] == word) {
            Some(at) => at,
            None => {
                self.consts.extend([word; 4]);
                self.consts.len() / 4 - 1
            }
        };
        32 * at as i32
    }
    /// A constant as an AVX-512 broadcast memory operand.
    fn bcst(&mut self, bits: u64) -> AsmMemoryOperand {
        let off = self.konst(bits);
        if self.f64s {
            qword_bcst(asm::r9 + off)
        } else {
            dword_bcst(asm::r9 + off)
        }
    }
    /// A constant as a whole `ymm` memory operand.
    fn whole(&mut self, bits: u64) -> AsmMemoryOperand {
        let off = self.konst(bits);
        ymmword_ptr(asm::r9 + off)
    }
    /// Fills register `r` with the constant `bits` in every lane.
    pub(super) fn fill(&mut self, r: usize, bits: u64) -> Asm<()> {
        let off = self.konst(bits);
        self.broadcast(r, asm::r9, off)
    }
    /// Fills register `r` with the element at `[base + off]` in every lane.
    pub(super) fn broadcast(&mut self, r: usize, base: asm::AsmRegister64, off: i32) -> Asm<()> {
        match (self.width, self.f64s) {
            (Width::Zmm, false) => self.a.vbroadcastss(ZMM[r], dword_ptr(base + off)),
            (Width::Zmm, true) => self.a.vbroadcastsd(ZMM[r], qword_ptr(base + off)),
            (Width::Ymm, false) => self.a.vbroadcastss(YMM[r], dword_ptr(base + off)),
            (Width::Ymm, true) => self.a.vbroadcastsd(YMM[r], qword_ptr(base + off)),
        }
    }
    /// The raw bits of `v` in the element type.
    pub(super) fn bits(&self, v: f64) -> u64 {
        if self.f64s {
            v.to_bits()
        } else {
            u64::from((v as f32).to_bits())
        }
    }
    /// The sign bit of the element type.
    pub(super) fn sign(&self) -> u64 {
        if self.f64s {
            1 << 63
        } else {
            1 << 31
        }
    }
    /// Loads register `r` from `[p + rax * scale + off]`.
    pub(super) fn load(&mut self, r: usize, p: asm::AsmRegister64, off: i32) -> Asm<()> {
        let scale = if self.f64s { 8 } else { 4 };
        match self.width {
            Width::Zmm => self
                .a
                .vmovups(ZMM[r], zmmword_ptr(p + asm::rax * scale + off)),
            Width::Ymm => self
                .a
                .vmovups(YMM[r], ymmword_ptr(p + asm::rax * scale + off)),
        }
    }
    /// Stores register `r` to `[p + rax * scale + off]`.
    pub(super) fn store(&mut self, p: asm::AsmRegister64, off: i32, r: usize) -> Asm<()> {
        let scale = if self.f64s { 8 } else { 4 };
        match self.width {
            Width::Zmm => self
                .a
                .vmovups(zmmword_ptr(p + asm::rax * scale + off), ZMM[r]),
            Width::Ymm => self
                .a
                .vmovups(ymmword_ptr(p + asm::rax * scale + off), YMM[r]),
        }
    }
    /// Stores register `r` to `[p + off]`.
    pub(super) fn store_at(&mut self, p: asm::AsmRegister64, off: i32, r: usize) -> Asm<()> {
        match self.width {
            Width::Zmm => self.a.vmovups(zmmword_ptr(p + off), ZMM[r]),
            Width::Ymm => self.a.vmovups(ymmword_ptr(p + off), YMM[r]),
        }
    }
    /// `d = x op y`.
    pub(super) fn op(&mut self, op: Op, d: usize, x: usize, y: Opnd) -> Asm<()> {
        let f = self.f64s;
        let zmm = self.width == Width::Zmm;
        match op {
            Op::Add if f => three!(self, vaddpd, d, x, y),
            Op::Add => three!(self, vaddps, d, x, y),
            Op::Sub if f => three!(self, vsubpd, d, x, y),
            Op::Sub => three!(self, vsubps, d, x, y),
            Op::Mul if f => three!(self, vmulpd, d, x, y),
            Op::Mul => three!(self, vmulps, d, x, y),
            Op::Div if f => three!(self, vdivpd, d, x, y),
            Op::Div => three!(self, vdivps, d, x, y),
            Op::Max if f => three!(self, vmaxpd, d, x, y),
            Op::Max => three!(self, vmaxps, d, x, y),
            Op::Min if f => three!(self, vminpd, d, x, y),
            Op::Min => three!(self, vminps, d, x, y),
            // bitwise: the AVX-512 forms name the lane size (for broadcasts), AVX2's do not
            Op::And if zmm && f => zmm3!(self, vpandq, d, x, y),
            Op::And if zmm => zmm3!(self, vpandd, d, x, y),
            Op::And => ymm3!(self, vpand, d, x, y),
            Op::Or if zmm && f => zmm3!(self, vporq, d, x, y),
            Op::Or if zmm => zmm3!(self, vpord, d, x, y),
            Op::Or => ymm3!(self, vpor, d, x, y),
            Op::Xor if zmm && f => zmm3!(self, vpxorq, d, x, y),
            Op::Xor if zmm => zmm3!(self, vpxord, d, x, y),
            Op::Xor => ymm3!(self, vpxor, d, x, y),
            Op::AddI32 => three!(self, vpaddd, d, x, y),
            Op::SubI32 => three!(self, vpsubd, d, x, y),
        }
    }
    /// `d = d · x + y`, one rounding (`vfmadd213`).
    pub(super) fn mul_add(&mut self, d: usize, x: usize, y: Opnd) -> Asm<()> {
        if self.f64s {
            three!(self, vfmadd213pd, d, x, y)
        } else {
            three!(self, vfmadd213ps, d, x, y)
        }
    }
    /// `d = x · y + d`, one rounding (`vfmadd231`).
    pub(super) fn mul_acc(&mut self, d: usize, x: usize, y: Opnd) -> Asm<()> {
        if self.f64s {
            three!(self, vfmadd231pd, d, x, y)
        } else {
            three!(self, vfmadd231ps, d, x, y)
        }
    }
    /// `d = sqrt(x)`.
    pub(super) fn sqrt(&mut self, d: usize, x: usize) -> Asm<()> {
        match (self.width, self.f64s) {
            (Width::Zmm, false) => self.a.vsqrtps(ZMM[d], ZMM[x]),
            (Width::Zmm, true) => self.a.vsqrtpd(ZMM[d], ZMM[x]),
            (Width::Ymm, false) => self.a.vsqrtps(YMM[d], YMM[x]),
            (Width::Ymm, true) => self.a.vsqrtpd(YMM[d], YMM[x]),
        }
    }
    /// `d = x << n` in 32-bit integer lanes.
    pub(super) fn shift_left_i32(&mut self, d: usize, x: usize, n: i32) -> Asm<()> {
        match self.width {
            Width::Zmm => self.a.vpslld(ZMM[d], ZMM[x], n),
            Width::Ymm => self.a.vpslld(YMM[d], YMM[x], n),
        }
    }
    /// The lanes where `x pred y` holds (`vcmpps` predicate numbers: 1 less than, 3
    /// unordered); `None` when AVX2 has no register left to hold them.
    pub(super) fn compare(&mut self, x: usize, y: Opnd, pred: i32) -> Asm<Option<Mask>> {
        if self.width == Width::Zmm {
            let k = asm::k1;
            match (self.f64s, y) {
                (false, Opnd::R(y)) => self.a.vcmpps(k, ZMM[x], ZMM[y], pred)?,
                (true, Opnd::R(y)) => self.a.vcmppd(k, ZMM[x], ZMM[y], pred)?,
                (false, Opnd::K(b)) => {
                    let m = self.bcst(b);
                    self.a.vcmpps(k, ZMM[x], m, pred)?
                }
                (true, Opnd::K(b)) => {
                    let m = self.bcst(b);
                    self.a.vcmppd(k, ZMM[x], m, pred)?
                }
            }
            return Ok(Some(Mask::K1));
        }
        let Some(m) = self.take() else {
            return Ok(None);
        };
        match (self.f64s, y) {
            (false, Opnd::R(y)) => self.a.vcmpps(YMM[m], YMM[x], YMM[y], pred)?,
            (true, Opnd::R(y)) => self.a.vcmppd(YMM[m], YMM[x], YMM[y], pred)?,
            (false, Opnd::K(b)) => {
                let w = self.whole(b);
                self.a.vcmpps(YMM[m], YMM[x], w, pred)?
            }
            (true, Opnd::K(b)) => {
                let w = self.whole(b);
                self.a.vcmppd(YMM[m], YMM[x], w, pred)?
            }
        }
        Ok(Some(Mask::V(m)))
    }
    /// `d = mask ? y : x` lane by lane; gives back the mask's register.
    pub(super) fn blend(&mut self, d: usize, x: usize, y: usize, mask: Mask) -> Asm<()> {
        match (mask, self.f64s) {
            (Mask::K1, false) => self.a.vblendmps(ZMM[d].k1(), ZMM[x], ZMM[y]),
            (Mask::K1, true) => self.a.vblendmpd(ZMM[d].k1(), ZMM[x], ZMM[y]),
            (Mask::V(m), f) => {
                if f {
                    self.a.vblendvpd(YMM[d], YMM[x], YMM[y], YMM[m])?;
                } else {
                    self.a.vblendvps(YMM[d], YMM[x], YMM[y], YMM[m])?;
                }
                self.give(m);
                Ok(())
            }
        }
    }
}

/// Where a reduction collects its NaN flags: mask register `k2 + r` (AVX-512), or a vector
/// register (AVX2) whose lanes are all ones where a NaN was seen.
#[derive(Clone, Copy)]
pub(super) enum Flags {
    K(usize),
    V(usize),
}

/// At most six reductions flag NaNs in mask registers (k2 to k7; k1 is the compares').
pub(super) const MASKS: [asm::AsmRegisterK; 6] =
    [asm::k2, asm::k3, asm::k4, asm::k5, asm::k6, asm::k7];

impl Emitter {
    /// Cleared NaN flags for reduction `r`; `None` when AVX2 has no register left.
    pub(super) fn new_flags(&mut self, r: usize) -> Asm<Option<Flags>> {
        if self.width == Width::Zmm {
            self.a.kxorw(MASKS[r], MASKS[r], MASKS[r])?;
            return Ok(Some(Flags::K(r)));
        }
        let Some(f) = self.take() else {
            return Ok(None);
        };
        self.a.vpxor(YMM[f], YMM[f], YMM[f])?;
        Ok(Some(Flags::V(f)))
    }
    /// Sets the flags of the lanes where `v` is NaN; `None` when AVX2 has no register left.
    pub(super) fn flag_nans(&mut self, flags: Flags, v: usize) -> Asm<Option<()>> {
        let Some(mask) = self.compare(v, Opnd::R(v), 3)? else {
            return Ok(None);
        };
        match (flags, mask) {
            (Flags::K(r), _) => self.a.korw(MASKS[r], MASKS[r], asm::k1)?,
            (Flags::V(f), Mask::V(m)) => {
                self.a.vpor(YMM[f], YMM[f], YMM[m])?;
                self.give(m);
            }
            (Flags::V(_), Mask::K1) => unreachable!("AVX2 compares into registers"),
        }
        Ok(Some(()))
    }
    /// `eax` = nonzero when a flag is set.
    pub(super) fn flags_to_eax(&mut self, flags: Flags) -> Asm<()> {
        match flags {
            Flags::K(r) => self.a.kmovw(asm::eax, MASKS[r]),
            Flags::V(f) => self.a.vmovmskps(asm::eax, YMM[f]),
        }
    }
}
