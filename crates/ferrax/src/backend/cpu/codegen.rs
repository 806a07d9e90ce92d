//! Code generation for fused elementwise groups: one machine-code loop per group, its
//! intermediates in vector registers.
//!
//! Sits under `fuse`: when a plan makes a [`Group`], [`compile`] tries to emit an x86-64
//! AVX-512 loop for it (assembled with `iced-x86`, placed in executable memory with
//! `memmap2`). The loop reads each input once per vector, runs every step in registers,
//! stores only the kept values and folds the reductions into accumulators, where the
//! interpreter in `fuse` runs each step over a 2048-element chunk and stores it (on this
//! project's machine the interpreter is bound by those stores: about three times the
//! loop's time on `while_newton`'s Newton step). A group gets code only when every step it
//! needs is one the loop computes with the interpreter's bits: `+ - * /`, negation,
//! absolute value, square root and its reciprocal (one IEEE operation each, operands in the
//! same order), broadcast scalars, and sums, maxima and minima of all elements (the
//! accumulators are the interpreter's sixteen f32 or eight f64 lanes). Anything else, a CPU
//! without AVX-512F, or another architecture: no code, and the interpreter runs the group.
//! A chunk whose length is not a whole number of vectors, or whose extremum needs the
//! serial fold (a NaN, or a zero whose sign depends on the order), is run by the
//! interpreter too, with the same results.

use std::sync::Arc;

use crate::backend::cpu::dispatch::Binary;
use crate::backend::cpu::fuse::{Group, GroupOp, Src};
use crate::backend::cpu::math::Unary;
use crate::ir::DType;

/// The machine code of one group, and how to call it.
pub(crate) struct Compiled {
    /// Keeps the code mapped while `entry` may be called.
    _code: memmap2::Mmap,
    entry: Entry,
    /// Elements per vector: the chunk lengths the code handles are multiples of it.
    pub lanes: usize,
    /// For every input of the group: whether the code reads only its first element (a
    /// broadcast scalar), else its elements from the chunk's start.
    pub scalar_input: Vec<bool>,
}

/// `entry(inputs, outputs, n, accumulators, nan_flags)`: `inputs[i]` points at input `i`'s
/// chunk (its only element for a scalar), `outputs[j]` at kept value `j`'s chunk; `n`
/// elements, a positive multiple of `lanes`; reduction `r` leaves its lanes at
/// `accumulators + 64 r` and, for extrema, a nonzero `nan_flags[r]` when a value was NaN.
type Entry = unsafe extern "sysv64" fn(*const *const u8, *const *mut u8, usize, *mut u8, *mut u32);

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Compiled({} lanes)", self.lanes)
    }
}

/// Whether plans may run generated code: on unless the environment says
/// `FERRAX_CODEGEN=0` (or `off`), read once; a test on one thread can turn it off with
/// [`with_interpreter`].
pub(crate) fn enabled() -> bool {
    static ENV: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let env = *ENV.get_or_init(|| {
        !matches!(
            std::env::var("FERRAX_CODEGEN").as_deref(),
            Ok("0") | Ok("off")
        )
    });
    env && !INTERPRET.with(|c| c.get())
}

thread_local! {
    static INTERPRET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with generated code turned off on this thread (plans called from `f` run their
/// groups through the interpreter): the oracle the generated code is tested against.
pub fn with_interpreter<R>(f: impl FnOnce() -> R) -> R {
    let before = INTERPRET.with(|c| c.replace(true));
    let out = f();
    INTERPRET.with(|c| c.set(before));
    out
}

impl Compiled {
    /// Runs the code over one chunk of `n` elements (a positive multiple of `lanes`).
    ///
    /// # Safety
    /// `inputs` has one pointer per group input, each valid for reading `n` elements of the
    /// group's dtype (one for a scalar input); `outputs` one per kept value, valid for
    /// writing `n`; `acc` 64 bytes per reduction; `nan` one `u32` per reduction.
    pub unsafe fn call(
        &self,
        inputs: &[*const u8],
        outputs: &[*mut u8],
        n: usize,
        acc: &mut [u8],
        nan: &mut [u32],
    ) {
        debug_assert!(n > 0 && n % self.lanes == 0);
        // SAFETY: the caller's contract; the code reads and writes only through these
        unsafe {
            (self.entry)(
                inputs.as_ptr(),
                outputs.as_ptr(),
                n,
                acc.as_mut_ptr(),
                nan.as_mut_ptr(),
            )
        }
    }
}

/// The machine code of `group`, when it has one (see the module's documentation).
pub(crate) fn compile(group: &Group, n_inputs: usize) -> Option<Arc<Compiled>> {
    #[cfg(target_arch = "x86_64")]
    {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            return None;
        }
        let f64s = match group.dtype {
            DType::F32 => false,
            DType::F64 => true,
            _ => return None,
        };
        let (bytes, scalar_input) = x86::emit(group, n_inputs, f64s)?;
        let mut map = memmap2::MmapMut::map_anon(bytes.len()).ok()?;
        map.copy_from_slice(&bytes);
        let code = map.make_exec().ok()?;
        // SAFETY: `code` holds a function assembled for the `Entry` signature (System V
        // arguments, callee-saved registers restored, AVX-512F only, checked above); it
        // stays mapped as long as the `Compiled` that holds it
        let entry: Entry = unsafe { std::mem::transmute::<*const u8, Entry>(code.as_ptr()) };
        Some(Arc::new(Compiled {
            _code: code,
            entry,
            lanes: if f64s { 8 } else { 16 },
            scalar_input,
        }))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (group, n_inputs);
        None
    }
}

/// Which steps the loop computes: those kept or reduced, and what they read.
fn needed(group: &Group) -> Vec<bool> {
    let mut needed = group.keep.clone();
    for &(_, k) in &group.reduce {
        needed[k] = true;
    }
    for k in (0..group.steps.len()).rev() {
        if needed[k] {
            for s in &group.steps[k].srcs {
                if let Src::Step(j) = s {
                    needed[*j] = true;
                }
            }
        }
    }
    needed
}

/// Whether the loop computes a step of this kind with the interpreter's bits.
fn supported(op: &GroupOp, srcs: &[Src]) -> bool {
    let srcs_ok = srcs
        .iter()
        .all(|s| matches!(s, Src::Input(_) | Src::Step(_) | Src::Tiled(_, 1)));
    srcs_ok
        && match op {
            GroupOp::Binary(b) => {
                matches!(b, Binary::Add | Binary::Sub | Binary::Mul | Binary::Div)
            }
            GroupOp::Unary(u) => matches!(u, Unary::Neg | Unary::Abs | Unary::Sqrt | Unary::Rsqrt),
            GroupOp::Broadcast => matches!(srcs, [Src::Tiled(_, 1)]),
        }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! The AVX-512 loop, assembled instruction by instruction.

    use iced_x86::code_asm::{self as asm, AsmRegister64, AsmRegisterZmm, CodeAssembler};

    use super::{needed, supported};
    use crate::backend::cpu::dispatch::Binary;
    use crate::backend::cpu::fuse::{Group, GroupOp, Reduction, Src};
    use crate::backend::cpu::math::Unary;

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
    /// Registers that hold the inputs' and outputs' addresses through the loop (`rax` is the
    /// element index, `rdx` the count, `rcx`/`r8` the reductions' destinations; the
    /// callee-saved ones are pushed first).
    const POINTERS: [AsmRegister64; 9] = [
        asm::r9,
        asm::r10,
        asm::r11,
        asm::rbx,
        asm::rbp,
        asm::r12,
        asm::r13,
        asm::r14,
        asm::r15,
    ];
    const SAVED: [AsmRegister64; 6] = [asm::rbx, asm::rbp, asm::r12, asm::r13, asm::r14, asm::r15];
    /// At most six reductions: each keeps its NaN flags in a mask register (k2 to k7).
    const MASKS: [asm::AsmRegisterK; 6] = [asm::k2, asm::k3, asm::k4, asm::k5, asm::k6, asm::k7];

    /// Vector registers: a free list.
    struct Regs(Vec<usize>);

    impl Regs {
        fn take(&mut self) -> Option<usize> {
            self.0.pop()
        }
        fn give(&mut self, r: usize) {
            self.0.push(r);
        }
    }

    /// Where a value lives in the loop: a register it owns (freed after its last use), or
    /// a shared one (a broadcast scalar, a constant).
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

    /// The loop's bytes for `group`, and which inputs it reads as scalars; `None` when the
    /// group needs something the loop does not do, or more registers than there are.
    pub(super) fn emit(group: &Group, n_inputs: usize, f64s: bool) -> Option<(Vec<u8>, Vec<bool>)> {
        let needed = needed(group);
        let n = group.steps.len();
        for k in (0..n).filter(|&k| needed[k]) {
            let st = &group.steps[k];
            if !supported(&st.op, &st.srcs) {
                return None;
            }
        }
        if group.reduce.len() > MASKS.len() {
            return None;
        }
        // how each input is read: as a scalar (first element) or elementwise
        let mut scalar_input: Vec<Option<bool>> = vec![None; n_inputs];
        for k in (0..n).filter(|&k| needed[k]) {
            for s in &group.steps[k].srcs {
                let (i, scalar) = match s {
                    Src::Input(i) => (*i, false),
                    Src::Tiled(i, _) => (*i, true),
                    _ => continue,
                };
                match scalar_input.get(i)? {
                    Some(was) if *was != scalar => return None,
                    _ => scalar_input[i] = Some(scalar),
                }
            }
        }
        let streamed: Vec<usize> = (0..n_inputs)
            .filter(|&i| scalar_input[i] == Some(false))
            .collect();
        let kept: Vec<usize> = (0..n).filter(|&k| group.keep[k]).collect();
        if streamed.len() + kept.len() > POINTERS.len() {
            return None;
        }
        // the last step reading each step's value and each streamed input (a reduced value
        // is read where it is made)
        let mut last_step = vec![0usize; n];
        let mut last_input = vec![0usize; n_inputs];
        for k in (0..n).filter(|&k| needed[k]) {
            last_step[k] = last_step[k].max(k);
            for s in &group.steps[k].srcs {
                match s {
                    Src::Step(j) => last_step[*j] = k,
                    Src::Input(i) => last_input[*i] = k,
                    _ => {}
                }
            }
        }
        let code = assemble(
            group,
            &needed,
            &scalar_input,
            &streamed,
            &kept,
            &last_step,
            &last_input,
            f64s,
        )
        .ok()??;
        Some((
            code,
            scalar_input.iter().map(|s| *s == Some(true)).collect(),
        ))
    }

    type Asm<T> = Result<T, iced_x86::IcedError>;

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        group: &Group,
        needed: &[bool],
        scalar_input: &[Option<bool>],
        streamed: &[usize],
        kept: &[usize],
        last_step: &[usize],
        last_input: &[usize],
        f64s: bool,
    ) -> Asm<Option<Vec<u8>>> {
        use asm::{qword_ptr, zmmword_ptr};
        let mut a = CodeAssembler::new(64)?;
        let scale: u32 = if f64s { 8 } else { 4 };
        let lanes: i32 = if f64s { 8 } else { 16 };
        for &r in &SAVED {
            a.push(r)?;
        }
        let mut regs = Regs((0..32).rev().collect());
        // broadcast scalars, read once
        let mut scalar_reg = vec![usize::MAX; scalar_input.len()];
        for (i, s) in scalar_input.iter().enumerate() {
            if *s == Some(true) {
                let Some(r) = regs.take() else {
                    return Ok(None);
                };
                a.mov(asm::rax, qword_ptr(asm::rdi + 8 * i as i32))?;
                if f64s {
                    a.vbroadcastsd(ZMM[r], qword_ptr(asm::rax))?;
                } else {
                    a.vbroadcastss(ZMM[r], asm::dword_ptr(asm::rax))?;
                }
                scalar_reg[i] = r;
            }
        }
        // constants the unary steps need: the sign bit, its complement, and one
        let uses = |u: Unary| {
            (0..group.steps.len())
                .any(|k| needed[k] && matches!(group.steps[k].op, GroupOp::Unary(v) if v == u))
        };
        let constant = |a: &mut CodeAssembler, bits: u64, regs: &mut Regs| -> Asm<Option<usize>> {
            let Some(r) = regs.take() else {
                return Ok(None);
            };
            a.mov(asm::rax, bits)?;
            if f64s {
                a.vpbroadcastq(ZMM[r], asm::rax)?;
            } else {
                a.vpbroadcastd(ZMM[r], asm::eax)?;
            }
            Ok(Some(r))
        };
        let (sign, one) = if f64s {
            (1u64 << 63, 1f64.to_bits())
        } else {
            (1u64 << 31, u64::from(1f32.to_bits()))
        };
        let mask = if f64s { !sign } else { !sign & 0xffff_ffff };
        let neg = if uses(Unary::Neg) {
            constant(&mut a, sign, &mut regs)?
        } else {
            None
        };
        let abs = if uses(Unary::Abs) {
            constant(&mut a, mask, &mut regs)?
        } else {
            None
        };
        let one = if uses(Unary::Rsqrt) {
            constant(&mut a, one, &mut regs)?
        } else {
            None
        };
        // accumulators: -inf for a maximum, +inf for a minimum, zero for a sum
        let inf = if f64s {
            f64::INFINITY.to_bits()
        } else {
            u64::from(f32::INFINITY.to_bits())
        };
        let mut accs = vec![];
        for (r, &(kind, _)) in group.reduce.iter().enumerate() {
            let bits = match kind {
                Reduction::Max => inf | sign,
                Reduction::Min => inf,
                Reduction::Sum => 0,
            };
            let Some(reg) = constant(&mut a, bits, &mut regs)? else {
                return Ok(None);
            };
            accs.push(reg);
            a.kxorw(MASKS[r], MASKS[r], MASKS[r])?;
        }
        // the streamed inputs' and the kept values' addresses
        let mut pointer = POINTERS.iter();
        let mut input_ptr = vec![asm::rax; scalar_input.len()];
        for &i in streamed {
            let p = *pointer.next().expect("counted above");
            a.mov(p, qword_ptr(asm::rdi + 8 * i as i32))?;
            input_ptr[i] = p;
        }
        let mut output_ptr = vec![asm::rax; group.steps.len()];
        for (j, &k) in kept.iter().enumerate() {
            let p = *pointer.next().expect("counted above");
            a.mov(p, qword_ptr(asm::rsi + 8 * j as i32))?;
            output_ptr[k] = p;
        }
        a.xor(asm::eax, asm::eax)?;
        let mut top = a.create_label();
        a.set_label(&mut top)?;
        let mut at: Vec<Option<Loc>> = vec![None; group.steps.len()];
        let mut loaded: Vec<Option<usize>> = vec![None; scalar_input.len()];
        for k in (0..group.steps.len()).filter(|&k| needed[k]) {
            let st = &group.steps[k];
            let mut operands = vec![];
            for s in &st.srcs {
                let reg = match s {
                    Src::Step(j) => at[*j].expect("an operand is made before it is read").reg(),
                    Src::Tiled(i, _) => scalar_reg[*i],
                    Src::Input(i) => match loaded[*i] {
                        Some(r) => r,
                        None => {
                            let Some(r) = regs.take() else {
                                return Ok(None);
                            };
                            a.vmovups(ZMM[r], zmmword_ptr(input_ptr[*i] + asm::rax * scale))?;
                            loaded[*i] = Some(r);
                            r
                        }
                    },
                    Src::Repeated(..) => return Ok(None),
                };
                operands.push(reg);
            }
            let loc = match st.op {
                GroupOp::Broadcast => Loc::Shared(operands[0]),
                op => {
                    let Some(di) = regs.take() else {
                        return Ok(None);
                    };
                    let (x, d) = (ZMM[operands[0]], ZMM[di]);
                    match op {
                        GroupOp::Binary(b) => {
                            let y = ZMM[operands[1]];
                            match (b, f64s) {
                                (Binary::Add, false) => a.vaddps(d, x, y)?,
                                (Binary::Add, true) => a.vaddpd(d, x, y)?,
                                (Binary::Sub, false) => a.vsubps(d, x, y)?,
                                (Binary::Sub, true) => a.vsubpd(d, x, y)?,
                                (Binary::Mul, false) => a.vmulps(d, x, y)?,
                                (Binary::Mul, true) => a.vmulpd(d, x, y)?,
                                (Binary::Div, false) => a.vdivps(d, x, y)?,
                                (Binary::Div, true) => a.vdivpd(d, x, y)?,
                                _ => return Ok(None),
                            }
                        }
                        GroupOp::Unary(u) => match (u, f64s) {
                            (Unary::Neg, false) => a.vpxord(d, x, ZMM[neg.expect("made")])?,
                            (Unary::Neg, true) => a.vpxorq(d, x, ZMM[neg.expect("made")])?,
                            (Unary::Abs, false) => a.vpandd(d, x, ZMM[abs.expect("made")])?,
                            (Unary::Abs, true) => a.vpandq(d, x, ZMM[abs.expect("made")])?,
                            (Unary::Sqrt, false) => a.vsqrtps(d, x)?,
                            (Unary::Sqrt, true) => a.vsqrtpd(d, x)?,
                            (Unary::Rsqrt, false) => {
                                a.vsqrtps(d, x)?;
                                a.vdivps(d, ZMM[one.expect("made")], d)?;
                            }
                            (Unary::Rsqrt, true) => {
                                a.vsqrtpd(d, x)?;
                                a.vdivpd(d, ZMM[one.expect("made")], d)?;
                            }
                            _ => return Ok(None),
                        },
                        GroupOp::Broadcast => unreachable!("matched above"),
                    }
                    Loc::Own(di)
                }
            };
            at[k] = Some(loc);
            let v = ZMM[loc.reg()];
            if group.keep[k] {
                a.vmovups(zmmword_ptr(output_ptr[k] + asm::rax * scale), v)?;
            }
            for (r, &(kind, _)) in group
                .reduce
                .iter()
                .enumerate()
                .filter(|(_, (_, j))| *j == k)
            {
                let acc = ZMM[accs[r]];
                // the interpreter's lanes: `acc = v > acc ? v : acc` is `vmaxps acc, v, acc`
                // (the second operand when unordered); a NaN is flagged and refolded
                match (kind, f64s) {
                    (Reduction::Sum, false) => a.vaddps(acc, acc, v)?,
                    (Reduction::Sum, true) => a.vaddpd(acc, acc, v)?,
                    (Reduction::Max, false) => a.vmaxps(acc, v, acc)?,
                    (Reduction::Max, true) => a.vmaxpd(acc, v, acc)?,
                    (Reduction::Min, false) => a.vminps(acc, v, acc)?,
                    (Reduction::Min, true) => a.vminpd(acc, v, acc)?,
                }
                if kind != Reduction::Sum {
                    // predicate 3: unordered
                    if f64s {
                        a.vcmppd(asm::k1, v, v, 3)?;
                    } else {
                        a.vcmpps(asm::k1, v, v, 3)?;
                    }
                    a.korw(MASKS[r], MASKS[r], asm::k1)?;
                }
            }
            // free what is read for the last time here
            for s in &st.srcs {
                match s {
                    Src::Step(j) if last_step[*j] == k => {
                        if let Some(Loc::Own(r)) = at[*j].take() {
                            regs.give(r);
                        }
                    }
                    Src::Input(i) if last_input[*i] == k => {
                        if let Some(r) = loaded[*i].take() {
                            regs.give(r);
                        }
                    }
                    _ => {}
                }
            }
            if last_step[k] == k {
                if let Some(Loc::Own(r)) = at[k].take() {
                    regs.give(r);
                }
            }
        }
        a.add(asm::rax, lanes)?;
        a.cmp(asm::rax, asm::rdx)?;
        a.jb(top)?;
        for (r, &acc) in accs.iter().enumerate() {
            a.vmovups(zmmword_ptr(asm::rcx + 64 * r as i32), ZMM[acc])?;
            a.kmovw(asm::eax, MASKS[r])?;
            a.mov(asm::dword_ptr(asm::r8 + 4 * r as i32), asm::eax)?;
        }
        a.vzeroupper()?;
        for &r in SAVED.iter().rev() {
            a.pop(r)?;
        }
        a.ret()?;
        Ok(Some(a.assemble(0)?))
    }
}
