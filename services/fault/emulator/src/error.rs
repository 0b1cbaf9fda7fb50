//! What the emulator refuses, with the instruction it refused.

use core::fmt;

use iced_x86::Mnemonic;

use crate::bus::BusError;

/// Why an instruction was not emulated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// The bytes ended mid-instruction (the fetch stopped at a page the
    /// caller could not read, or it passed too few bytes).
    Truncated,
    /// Not a valid x86 instruction in this mode.
    InvalidInstruction,
    /// Real mode or 16-bit code.
    UnsupportedMode,
    /// A valid instruction outside the supported set (see the crate docs).
    UnsupportedInstruction,
    /// A supported mnemonic in an unsupported form (memory as the source of
    /// an ALU operation, a segment register, an odd access width).
    UnsupportedOperands,
    /// The instruction does not access memory through a ModRM/moffs
    /// operand, so it cannot be the one that faulted.
    NoMemoryOperand,
    /// The operand's address cannot be computed (an unexpected register).
    UnresolvableAddress,
    /// The operand's linear address and the faulting GPA are in different
    /// places of their pages: this is not the instruction that faulted
    /// (or the guest changed it since).
    AddressMismatch {
        /// The linear address the instruction computes.
        linear: u64,
        /// The faulting guest-physical address.
        gpa: u64,
    },
    /// The access would cross a 4 KiB page boundary.
    PageCrossing,
    /// The device refused the access.
    Bus(BusError),
}

/// An instruction the emulator did not run; guest state is unchanged
/// (except for side effects of a device read when a read-modify-write's
/// write was refused).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmulationError {
    /// RIP of the instruction.
    pub rip: u64,
    /// The instruction bytes the caller supplied (first `len`).
    pub bytes: [u8; 15],
    /// How many of `bytes` are meaningful.
    pub len: u8,
    /// The decoded mnemonic, when decoding got that far.
    pub mnemonic: Option<Mnemonic>,
    /// Why.
    pub why: Why,
}

impl EmulationError {
    pub(crate) fn new(rip: u64, bytes: &[u8], mnemonic: Option<Mnemonic>, why: Why) -> Self {
        let len = bytes.len().min(15);
        let mut b = [0; 15];
        b[..len].copy_from_slice(&bytes[..len]);
        Self { rip, bytes: b, len: len as u8, mnemonic, why }
    }

    /// The supplied instruction bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl fmt::Display for EmulationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MMIO instruction at RIP {:#x} [", self.rip)?;
        for (i, b) in self.bytes().iter().enumerate() {
            write!(f, "{}{b:02x}", if i == 0 { "" } else { " " })?;
        }
        write!(f, "]")?;
        if let Some(m) = self.mnemonic {
            write!(f, " ({m:?})")?;
        }
        match self.why {
            Why::AddressMismatch { linear, gpa } => {
                write!(f, ": operand address {linear:#x} does not match faulting GPA {gpa:#x}")
            }
            Why::Bus(e) => write!(f, ": {e}"),
            why => write!(f, ": {why:?}"),
        }
    }
}
