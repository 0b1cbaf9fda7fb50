//! The guest CPU state the emulator reads and writes.

/// RFLAGS.CF.
pub const RFLAGS_CF: u64 = 1 << 0;
/// RFLAGS.PF.
pub const RFLAGS_PF: u64 = 1 << 2;
/// RFLAGS.AF.
pub const RFLAGS_AF: u64 = 1 << 4;
/// RFLAGS.ZF.
pub const RFLAGS_ZF: u64 = 1 << 6;
/// RFLAGS.SF.
pub const RFLAGS_SF: u64 = 1 << 7;
/// RFLAGS.OF.
pub const RFLAGS_OF: u64 = 1 << 11;
/// The six arithmetic flags ADD/SUB/AND/OR/XOR write.
pub const RFLAGS_ARITH: u64 = RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF;

/// The mode the faulting instruction ran in (from CS.L, CS.D and CR0.PE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuMode {
    /// 64-bit mode (CS.L = 1).
    Long64,
    /// 32-bit code: compatibility mode or 32-bit protected mode. Segment
    /// bases other than FS/GS are taken as 0 (a flat model, as Linux uses).
    Protected32,
    /// Real mode or 16-bit code: not supported (Linux does no MMIO there).
    Real16,
}

impl CpuMode {
    pub(crate) const fn bitness(self) -> u32 {
        match self {
            Self::Long64 => 64,
            Self::Protected32 => 32,
            Self::Real16 => 16,
        }
    }
}

/// General-purpose registers, RIP, RFLAGS and the segment bases an
/// effective address can use. GPRs are in encoding order: RAX, RCX, RDX,
/// RBX, RSP, RBP, RSI, RDI, R8–R15.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestCpuState {
    /// The sixteen GPRs.
    pub gprs: [u64; 16],
    /// RIP of the faulting instruction (advanced on success).
    pub rip: u64,
    /// RFLAGS (arithmetic flags updated by read-modify-write forms).
    pub rflags: u64,
    /// The mode the instruction runs in.
    pub mode: CpuMode,
    /// FS base (for `fs:` overrides).
    pub fs_base: u64,
    /// GS base (for `gs:` overrides, e.g. per-CPU data).
    pub gs_base: u64,
}

impl GuestCpuState {
    /// A 64-bit state with zeroed registers at `rip`.
    pub const fn new_long64(rip: u64) -> Self {
        Self { gprs: [0; 16], rip, rflags: 0x2, mode: CpuMode::Long64, fs_base: 0, gs_base: 0 }
    }
}
