//! Running a decoded MMIO instruction against the guest state and the bus.

use crate::bus::{AccessSize, MmioBus};
use crate::decode::{decode_mmio, Extend, MmioInstruction, MmioOp, RegOperand, RegPart, Source};
use crate::error::{EmulationError, Why};
use crate::flags::alu;
use crate::state::{GuestCpuState, RFLAGS_ARITH};

/// What the emulated instruction did on the bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmioAccessKind {
    /// A read.
    Read,
    /// A write.
    Write,
    /// A read followed by a write.
    ReadModifyWrite,
}

/// One emulated access (for traces and counters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioAccess {
    /// The guest-physical address.
    pub gpa: u64,
    /// Width.
    pub size: AccessSize,
    /// Kind.
    pub kind: MmioAccessKind,
    /// The value read, if any.
    pub read: Option<u64>,
    /// The value written, if any.
    pub written: Option<u64>,
}

/// A completed emulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Emulated {
    /// RIP after the instruction (also written to the state).
    pub next_rip: u64,
    /// Length of the instruction.
    pub len: u8,
    /// The access performed.
    pub access: MmioAccess,
}

pub(crate) fn read_reg(state: &GuestCpuState, r: RegOperand) -> u64 {
    let v = state.gprs[usize::from(r.gpr & 15)];
    match r.part {
        RegPart::Low8 => v & 0xff,
        RegPart::High8 => (v >> 8) & 0xff,
        RegPart::Word => v & 0xffff,
        RegPart::Dword => v & 0xffff_ffff,
        RegPart::Qword => v,
    }
}

fn write_reg(state: &mut GuestCpuState, r: RegOperand, value: u64) {
    let slot = &mut state.gprs[usize::from(r.gpr & 15)];
    *slot = match r.part {
        RegPart::Low8 => (*slot & !0xff) | (value & 0xff),
        RegPart::High8 => (*slot & !0xff00) | ((value & 0xff) << 8),
        RegPart::Word => (*slot & !0xffff) | (value & 0xffff),
        RegPart::Dword => value & 0xffff_ffff,
        RegPart::Qword => value,
    };
}

fn sign_extend(value: u64, from_bits: u32) -> u64 {
    let shift = 64 - from_bits;
    (((value << shift) as i64) >> shift) as u64
}

fn source_value(state: &GuestCpuState, src: Source, size: AccessSize) -> u64 {
    let value = match src {
        Source::Reg(r) => read_reg(state, r),
        Source::Imm(v) => v,
    };
    value & size.mask()
}

/// Emulates the MMIO instruction at `state.rip`, whose bytes (fetched by
/// the caller from guest memory, up to 15) are `bytes`, and which faulted
/// on guest-physical address `gpa`.
///
/// The instruction's own operand address is computed and must have the
/// same offset within its page as `gpa` (the translation the guest's page
/// tables did keeps page offsets); the access itself goes to `gpa`. On
/// success the destination register or RFLAGS and RIP are updated; on
/// error nothing is.
pub fn emulate_mmio(
    state: &mut GuestCpuState,
    bytes: &[u8],
    gpa: u64,
    bus: &mut impl MmioBus,
) -> Result<Emulated, EmulationError> {
    let insn = decode_mmio(bytes, state.rip, state.mode)?;
    let rip = state.rip;
    let err = |why| EmulationError::new(rip, bytes, Some(insn.mnemonic()), why);
    let linear = insn.linear_address(state).ok_or(err(Why::UnresolvableAddress))?;
    if (linear ^ gpa) & 0xfff != 0 {
        return Err(err(Why::AddressMismatch { linear, gpa }));
    }
    if (gpa & 0xfff) + u64::from(insn.size.bytes()) > 0x1000 {
        return Err(err(Why::PageCrossing));
    }
    let access = run(state, &insn, gpa, bus).map_err(|e| err(Why::Bus(e)))?;
    state.rip = insn.next_rip();
    Ok(Emulated { next_rip: state.rip, len: insn.instruction_len(), access })
}

fn run(
    state: &mut GuestCpuState,
    insn: &MmioInstruction,
    gpa: u64,
    bus: &mut impl MmioBus,
) -> Result<MmioAccess, crate::bus::BusError> {
    let size = insn.size;
    let bits = u32::from(size.bytes()) * 8;
    let access = |kind, read, written| MmioAccess { gpa, size, kind, read, written };
    match insn.op {
        MmioOp::Load { dst, extend } => {
            let raw = bus.read(gpa, size)? & size.mask();
            let value = match extend {
                Extend::None | Extend::Zero => raw,
                Extend::Sign => sign_extend(raw, bits),
            };
            write_reg(state, dst, value);
            Ok(access(MmioAccessKind::Read, Some(raw), None))
        }
        MmioOp::Store { src } => {
            let value = source_value(state, src, size);
            bus.write(gpa, size, value)?;
            Ok(access(MmioAccessKind::Write, None, Some(value)))
        }
        MmioOp::ReadModifyWrite { op, src } => {
            let old = bus.read(gpa, size)? & size.mask();
            let (new, flags) = alu(op, old, source_value(state, src, size), bits);
            bus.write(gpa, size, new)?;
            state.rflags = (state.rflags & !RFLAGS_ARITH) | flags;
            Ok(access(MmioAccessKind::ReadModifyWrite, Some(old), Some(new)))
        }
    }
}

#[cfg(test)]
mod tests;
