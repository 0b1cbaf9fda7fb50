//! `EXITCODE` values (APM vol. 2, Appendix C).

use core::fmt;

/// A raw `EXITCODE`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExitCode(pub u64);

#[allow(missing_docs, reason = "each constant is the APM's name for the code")]
impl ExitCode {
    pub const CR0_READ: Self = Self(0x00);
    pub const CR0_WRITE: Self = Self(0x10);
    pub const DR0_READ: Self = Self(0x20);
    pub const DR0_WRITE: Self = Self(0x30);
    pub const EXCEPTION_0: Self = Self(0x40);
    pub const INTR: Self = Self(0x60);
    pub const NMI: Self = Self(0x61);
    pub const SMI: Self = Self(0x62);
    pub const INIT: Self = Self(0x63);
    pub const VINTR: Self = Self(0x64);
    pub const CR0_SEL_WRITE: Self = Self(0x65);
    pub const RDTSC: Self = Self(0x6e);
    pub const RDPMC: Self = Self(0x6f);
    pub const PUSHF: Self = Self(0x70);
    pub const POPF: Self = Self(0x71);
    pub const CPUID: Self = Self(0x72);
    pub const RSM: Self = Self(0x73);
    pub const IRET: Self = Self(0x74);
    pub const SWINT: Self = Self(0x75);
    pub const INVD: Self = Self(0x76);
    pub const PAUSE: Self = Self(0x77);
    pub const HLT: Self = Self(0x78);
    pub const INVLPG: Self = Self(0x79);
    pub const INVLPGA: Self = Self(0x7a);
    pub const IOIO: Self = Self(0x7b);
    pub const MSR: Self = Self(0x7c);
    pub const TASK_SWITCH: Self = Self(0x7d);
    pub const FERR_FREEZE: Self = Self(0x7e);
    pub const SHUTDOWN: Self = Self(0x7f);
    pub const VMRUN: Self = Self(0x80);
    pub const VMMCALL: Self = Self(0x81);
    pub const VMLOAD: Self = Self(0x82);
    pub const VMSAVE: Self = Self(0x83);
    pub const STGI: Self = Self(0x84);
    pub const CLGI: Self = Self(0x85);
    pub const SKINIT: Self = Self(0x86);
    pub const RDTSCP: Self = Self(0x87);
    pub const ICEBP: Self = Self(0x88);
    pub const WBINVD: Self = Self(0x89);
    pub const MONITOR: Self = Self(0x8a);
    pub const MWAIT: Self = Self(0x8b);
    pub const MWAIT_CONDITIONAL: Self = Self(0x8c);
    pub const XSETBV: Self = Self(0x8d);
    pub const RDPRU: Self = Self(0x8e);
    pub const EFER_WRITE_TRAP: Self = Self(0x8f);
    pub const CR0_WRITE_TRAP: Self = Self(0x90);
    pub const NPF: Self = Self(0x400);
    pub const AVIC_INCOMPLETE_IPI: Self = Self(0x401);
    pub const AVIC_NOACCEL: Self = Self(0x402);
    pub const VMGEXIT: Self = Self(0x403);
    /// VMRUN found the VMCB's guest state illegal.
    pub const INVALID: Self = Self(u64::MAX);
    /// VMRUN found the VMSA busy (SEV-ES).
    pub const BUSY: Self = Self(u64::MAX - 1);
}

impl ExitCode {
    /// The APM's name for this code, for logs.
    pub fn name(self) -> &'static str {
        match self.0 {
            0x00..=0x0f => "CR_READ",
            0x10..=0x1f => "CR_WRITE",
            0x20..=0x2f => "DR_READ",
            0x30..=0x3f => "DR_WRITE",
            0x40..=0x5f => "EXCEPTION",
            0x60 => "INTR",
            0x61 => "NMI",
            0x62 => "SMI",
            0x63 => "INIT",
            0x64 => "VINTR",
            0x65 => "CR0_SEL_WRITE",
            0x66..=0x6d => "DESCRIPTOR_TABLE_ACCESS",
            0x6e => "RDTSC",
            0x6f => "RDPMC",
            0x70 => "PUSHF",
            0x71 => "POPF",
            0x72 => "CPUID",
            0x73 => "RSM",
            0x74 => "IRET",
            0x75 => "SWINT",
            0x76 => "INVD",
            0x77 => "PAUSE",
            0x78 => "HLT",
            0x79 => "INVLPG",
            0x7a => "INVLPGA",
            0x7b => "IOIO",
            0x7c => "MSR",
            0x7d => "TASK_SWITCH",
            0x7e => "FERR_FREEZE",
            0x7f => "SHUTDOWN",
            0x80 => "VMRUN",
            0x81 => "VMMCALL",
            0x82 => "VMLOAD",
            0x83 => "VMSAVE",
            0x84 => "STGI",
            0x85 => "CLGI",
            0x86 => "SKINIT",
            0x87 => "RDTSCP",
            0x88 => "ICEBP",
            0x89 => "WBINVD",
            0x8a => "MONITOR",
            0x8b => "MWAIT",
            0x8c => "MWAIT_CONDITIONAL",
            0x8d => "XSETBV",
            0x8e => "RDPRU",
            0x8f => "EFER_WRITE_TRAP",
            0x90..=0x9f => "CR_WRITE_TRAP",
            0x400 => "NPF",
            0x401 => "AVIC_INCOMPLETE_IPI",
            0x402 => "AVIC_NOACCEL",
            0x403 => "VMGEXIT",
            u64::MAX => "INVALID",
            0xffff_ffff_ffff_fffe => "BUSY",
            _ => "UNKNOWN",
        }
    }
}

impl fmt::Debug for ExitCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({:#x})", self.name(), self.0)
    }
}
