//! From instruction bytes to one of the supported MMIO forms.

use iced_x86::{Decoder, DecoderError, DecoderOptions, Instruction, MemorySize, Mnemonic, OpKind, Register};

use crate::bus::AccessSize;
use crate::error::{EmulationError, Why};
use crate::flags::AluOp;
use crate::state::{CpuMode, GuestCpuState};

/// The part of a GPR an operand names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegPart {
    /// Bits 7:0 (AL, CL, …, SPL, …, R15B).
    Low8,
    /// Bits 15:8 (AH, CH, DH, BH).
    High8,
    /// Bits 15:0.
    Word,
    /// Bits 31:0; a write zero-extends to 64 bits.
    Dword,
    /// All 64 bits.
    Qword,
}

impl RegPart {
    /// Width in bits.
    pub const fn bits(self) -> u32 {
        match self {
            Self::Low8 | Self::High8 => 8,
            Self::Word => 16,
            Self::Dword => 32,
            Self::Qword => 64,
        }
    }
}

/// A register operand: GPR number (encoding order) and part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegOperand {
    /// 0 = RAX … 15 = R15.
    pub gpr: u8,
    /// Which bits.
    pub part: RegPart,
}

/// The non-memory operand of a store or read-modify-write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A register.
    Reg(RegOperand),
    /// An immediate, already sign-extended as the encoding says.
    Imm(u64),
}

/// How a loaded value reaches the destination register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extend {
    /// `mov`: same width.
    None,
    /// `movzx`.
    Zero,
    /// `movsx`, `movsxd`.
    Sign,
}

/// What the instruction does with its memory operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmioOp {
    /// Read memory into a register.
    Load {
        /// Destination.
        dst: RegOperand,
        /// Extension.
        extend: Extend,
    },
    /// Write a register or immediate to memory.
    Store {
        /// The value's source.
        src: Source,
    },
    /// `op [mem], src`: read, compute, write back, set flags.
    ReadModifyWrite {
        /// The operation.
        op: AluOp,
        /// The second operand.
        src: Source,
    },
}

/// A decoded, supported MMIO instruction.
#[derive(Clone, Copy, Debug)]
pub struct MmioInstruction {
    instr: Instruction,
    mem_operand: u32,
    /// What it does.
    pub op: MmioOp,
    /// Width of the memory access.
    pub size: AccessSize,
}

impl MmioInstruction {
    /// Length in bytes.
    pub fn instruction_len(&self) -> u8 {
        self.instr.len() as u8
    }

    /// RIP of the next instruction.
    pub fn next_rip(&self) -> u64 {
        self.instr.next_ip()
    }

    /// The mnemonic.
    pub fn mnemonic(&self) -> Mnemonic {
        self.instr.mnemonic()
    }

    /// The linear address of the memory operand in `state` (segment base
    /// included: FS/GS from the state, others 0).
    pub fn linear_address(&self, state: &GuestCpuState) -> Option<u64> {
        self.instr.virtual_address(self.mem_operand, 0, |reg, _, _| register_value(state, reg))
    }
}

fn register_value(state: &GuestCpuState, reg: Register) -> Option<u64> {
    match reg {
        Register::FS => return Some(state.fs_base),
        Register::GS => return Some(state.gs_base),
        Register::ES | Register::CS | Register::SS | Register::DS => return Some(0),
        _ => {}
    }
    let r = gpr_operand(reg)?;
    Some(crate::execute::read_reg(state, r))
}

/// Maps an iced GPR to our operand form; `None` for anything else.
///
/// Relies on iced's register order (checked by the constant assertions
/// below): AL, CL, DL, BL, AH, CH, DH, BH, SPL, BPL, SIL, DIL, R8L–R15L,
/// then AX–R15W, EAX–R15D, RAX–R15, each in encoding order.
pub(crate) fn gpr_operand(reg: Register) -> Option<RegOperand> {
    let n = reg as u32;
    let in_range = |first: Register, last: Register| (first as u32..=last as u32).contains(&n);
    let (gpr, part) = if in_range(Register::AL, Register::R15L) {
        match n - Register::AL as u32 {
            i @ 0..=3 => (i, RegPart::Low8),
            i @ 4..=7 => (i - 4, RegPart::High8),
            i => (i - 4, RegPart::Low8),
        }
    } else if in_range(Register::AX, Register::R15W) {
        (n - Register::AX as u32, RegPart::Word)
    } else if in_range(Register::EAX, Register::R15D) {
        (n - Register::EAX as u32, RegPart::Dword)
    } else if in_range(Register::RAX, Register::R15) {
        (n - Register::RAX as u32, RegPart::Qword)
    } else {
        return None;
    };
    Some(RegOperand { gpr: gpr as u8, part })
}

const _: () = {
    assert!(Register::BH as u32 == Register::AL as u32 + 7);
    assert!(Register::SPL as u32 == Register::AL as u32 + 8);
    assert!(Register::R15L as u32 == Register::AL as u32 + 19);
    assert!(Register::R15W as u32 == Register::AX as u32 + 15);
    assert!(Register::R15D as u32 == Register::EAX as u32 + 15);
    assert!(Register::R15 as u32 == Register::RAX as u32 + 15);
    assert!(Register::RSP as u32 == Register::RAX as u32 + 4);
};

/// Width of the memory operand of the forms we accept (iced's
/// `MemorySize::size` needs its `instr_info` feature, which firmware does
/// not need otherwise).
fn access_size(m: MemorySize) -> Option<AccessSize> {
    match m {
        MemorySize::UInt8 | MemorySize::Int8 => Some(AccessSize::Byte),
        MemorySize::UInt16 | MemorySize::Int16 => Some(AccessSize::Word),
        MemorySize::UInt32 | MemorySize::Int32 => Some(AccessSize::Dword),
        MemorySize::UInt64 | MemorySize::Int64 => Some(AccessSize::Qword),
        _ => None,
    }
}

fn source(instr: &Instruction, operand: u32) -> Option<Source> {
    match instr.op_kind(operand) {
        OpKind::Register => gpr_operand(instr.op_register(operand)).map(Source::Reg),
        OpKind::Immediate8
        | OpKind::Immediate16
        | OpKind::Immediate32
        | OpKind::Immediate64
        | OpKind::Immediate8to16
        | OpKind::Immediate8to32
        | OpKind::Immediate8to64
        | OpKind::Immediate32to64 => instr.try_immediate(operand).ok().map(Source::Imm),
        _ => None,
    }
}

/// Decodes the instruction at the start of `bytes` (the guest's bytes at
/// `rip`, up to 15) and checks it is a supported MMIO form.
pub fn decode_mmio(bytes: &[u8], rip: u64, mode: CpuMode) -> Result<MmioInstruction, EmulationError> {
    let err = |m, why| EmulationError::new(rip, bytes, m, why);
    if mode == CpuMode::Real16 {
        return Err(err(None, Why::UnsupportedMode));
    }
    let bytes15 = &bytes[..bytes.len().min(15)];
    let mut decoder = Decoder::with_ip(mode.bitness(), bytes15, rip, DecoderOptions::NONE);
    let instr = decoder.decode();
    if instr.is_invalid() {
        let why = match decoder.last_error() {
            // Running out of bytes within 15 is a short fetch; at 15 the
            // instruction is too long, i.e. invalid.
            DecoderError::NoMoreBytes if bytes15.len() < 15 => Why::Truncated,
            _ => Why::InvalidInstruction,
        };
        return Err(err(None, why));
    }
    let m = Some(instr.mnemonic());
    let extend = match instr.mnemonic() {
        Mnemonic::Mov => Extend::None,
        Mnemonic::Movzx => Extend::Zero,
        Mnemonic::Movsx | Mnemonic::Movsxd => Extend::Sign,
        Mnemonic::Add | Mnemonic::Sub | Mnemonic::And | Mnemonic::Or | Mnemonic::Xor => Extend::None,
        _ => return Err(err(m, Why::UnsupportedInstruction)),
    };
    let mem_operand =
        (0..instr.op_count()).find(|&i| instr.op_kind(i) == OpKind::Memory).ok_or(err(m, Why::NoMemoryOperand))?;
    let size = access_size(instr.memory_size()).ok_or(err(m, Why::UnsupportedOperands))?;
    let unsupported = err(m, Why::UnsupportedOperands);
    let op = match (instr.mnemonic(), mem_operand) {
        (Mnemonic::Mov | Mnemonic::Movzx | Mnemonic::Movsx | Mnemonic::Movsxd, 1) => {
            if instr.op_kind(0) != OpKind::Register {
                return Err(unsupported);
            }
            let dst = gpr_operand(instr.op_register(0)).ok_or(unsupported)?;
            MmioOp::Load { dst, extend }
        }
        (Mnemonic::Mov, 0) => MmioOp::Store { src: source(&instr, 1).ok_or(unsupported)? },
        (mnemonic, 0) => {
            let op = match mnemonic {
                Mnemonic::Add => AluOp::Add,
                Mnemonic::Sub => AluOp::Sub,
                Mnemonic::And => AluOp::And,
                Mnemonic::Or => AluOp::Or,
                Mnemonic::Xor => AluOp::Xor,
                _ => return Err(unsupported),
            };
            MmioOp::ReadModifyWrite { op, src: source(&instr, 1).ok_or(unsupported)? }
        }
        _ => return Err(unsupported),
    };
    Ok(MmioInstruction { instr, mem_operand, op, size })
}
