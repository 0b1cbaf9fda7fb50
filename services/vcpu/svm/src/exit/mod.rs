//! `#VMEXIT` decoding: `EXITCODE`, `EXITINFO1` and `EXITINFO2` become an
//! [`SvmExit`]; [`plan`] says what the vcpu service does with each.
//!
//! Nothing here reads the VMCB's `next_rip` or instruction bytes: QEMU TCG
//! fills neither (no nrip-save, no decode assists). Instructions that exit
//! before retiring are stepped over by their canonical length
//! ([`SvmExit::canonical_encoding`]), IN/OUT by `EXITINFO2`, and MMIO
//! instructions are fetched and decoded by the fault service.

mod code;
mod io;
mod npf;
pub mod plan;
pub mod stats;

use core::fmt;

pub use code::ExitCode;
pub use io::{IoAccess, IoAddressSize, IoDirection, IoSize, MalformedIoInfo};
pub use npf::{NestedPageFault, NpfAccess, NpfErrorCode, NpfStage};
pub use plan::{ExitAction, FatalExit};
pub use stats::{ExitCounts, ExitReason};

use crate::event::pushes_error_code;
use crate::vmcb::VmcbControl;

/// RDMSR or WRMSR (`EXITINFO1` 0 or 1). The MSR number is the guest's ECX
/// and a written value its EDX:EAX; they live in the register file, not in
/// the VMCB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsrDirection {
    /// RDMSR.
    Read,
    /// WRMSR.
    Write,
}

/// An intercepted exception.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExceptionExit {
    /// The vector (0–31).
    pub vector: u8,
    /// The error code from `EXITINFO1`, for vectors that push one.
    pub error_code: Option<u32>,
    /// For #PF, the faulting linear address from `EXITINFO2` (CR2 is not
    /// written on an intercepted #PF).
    pub fault_address: Option<u64>,
}

/// A decoded `#VMEXIT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SvmExit {
    /// Read of CRn (not intercepted by Sinter).
    CrRead(u8),
    /// Write of CRn (not intercepted by Sinter).
    CrWrite(u8),
    /// Read of DRn (not intercepted by Sinter).
    DrRead(u8),
    /// Write of DRn (not intercepted by Sinter).
    DrWrite(u8),
    /// An intercepted exception.
    Exception(ExceptionExit),
    /// A physical interrupt arrived while the guest ran.
    PhysicalInterrupt,
    /// A physical NMI.
    Nmi,
    /// A physical SMI.
    Smi,
    /// A physical INIT.
    Init,
    /// The guest can now take the pending virtual interrupt (V_IRQ).
    VirtualInterrupt,
    /// CPUID.
    Cpuid,
    /// HLT.
    Hlt,
    /// IN/OUT/INS/OUTS.
    Io(IoAccess),
    /// RDMSR/WRMSR.
    Msr(MsrDirection),
    /// VMMCALL (the guest's hypercall).
    Vmmcall,
    /// A nested page fault.
    NestedPageFault(NestedPageFault),
    /// The guest triple-faulted (VMCB state is undefined).
    Shutdown,
    /// RDPMC.
    Rdpmc,
    /// INVD.
    Invd,
    /// WBINVD/WBNOINVD.
    Wbinvd,
    /// XSETBV (the new XCR0 is EDX:EAX, ECX selects the XCR).
    Xsetbv,
    /// A hardware task switch.
    TaskSwitch,
    /// FERR_FREEZE.
    FerrFreeze,
    /// RSM.
    Rsm,
    /// VMRUN, VMLOAD, VMSAVE, STGI, CLGI, SKINIT, INVLPGA: SVM
    /// instructions the guest cannot use (SVM is hidden from it).
    SvmInstruction(ExitCode),
    /// MONITOR, MWAIT, MWAIT (armed), RDPRU: hidden from the guest.
    HiddenInstruction(ExitCode),
    /// VMRUN refused the VMCB (illegal guest state): a Sinter bug.
    Invalid,
    /// Any other code (not intercepted by Sinter, or unknown).
    Other(ExitCode),
}

/// An exit the CPU should not produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitDecodeError {
    /// `EXITINFO1` of an IOIO exit names no or several sizes.
    MalformedIo(MalformedIoInfo),
    /// `EXITINFO1` of an MSR exit is neither 0 nor 1.
    MalformedMsr(u64),
}

impl fmt::Display for ExitDecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MalformedIo(i) => write!(f, "IOIO exit with malformed EXITINFO1 {:#x}", i.0),
            Self::MalformedMsr(i) => write!(f, "MSR exit with EXITINFO1 {i:#x}"),
        }
    }
}

impl SvmExit {
    /// Decodes the exit recorded in `control`.
    pub fn from_control(control: &VmcbControl) -> Result<Self, ExitDecodeError> {
        Self::decode(control.exit(), control.exit_info_1, control.exit_info_2)
    }

    /// Decodes an exit code and its two info words.
    pub fn decode(code: ExitCode, info1: u64, info2: u64) -> Result<Self, ExitDecodeError> {
        Ok(match code.0 {
            c @ 0x00..=0x0f => Self::CrRead(c as u8),
            c @ 0x10..=0x1f => Self::CrWrite((c - 0x10) as u8),
            c @ 0x20..=0x2f => Self::DrRead((c - 0x20) as u8),
            c @ 0x30..=0x3f => Self::DrWrite((c - 0x30) as u8),
            c @ 0x40..=0x5f => {
                let vector = (c - 0x40) as u8;
                Self::Exception(ExceptionExit {
                    vector,
                    error_code: pushes_error_code(vector).then_some(info1 as u32),
                    fault_address: (vector == crate::event::vector::PAGE_FAULT).then_some(info2),
                })
            }
            0x60 => Self::PhysicalInterrupt,
            0x61 => Self::Nmi,
            0x62 => Self::Smi,
            0x63 => Self::Init,
            0x64 => Self::VirtualInterrupt,
            0x6f => Self::Rdpmc,
            0x72 => Self::Cpuid,
            0x73 => Self::Rsm,
            0x76 => Self::Invd,
            0x78 => Self::Hlt,
            0x7b => Self::Io(IoAccess::decode(info1, info2).map_err(ExitDecodeError::MalformedIo)?),
            0x7c => Self::Msr(match info1 {
                0 => MsrDirection::Read,
                1 => MsrDirection::Write,
                other => return Err(ExitDecodeError::MalformedMsr(other)),
            }),
            0x7d => Self::TaskSwitch,
            0x7e => Self::FerrFreeze,
            0x7f => Self::Shutdown,
            0x80 | 0x82..=0x86 | 0x7a => Self::SvmInstruction(code),
            0x81 => Self::Vmmcall,
            0x89 => Self::Wbinvd,
            0x8a..=0x8c | 0x8e => Self::HiddenInstruction(code),
            0x8d => Self::Xsetbv,
            0x400 => Self::NestedPageFault(NestedPageFault::decode(info1, info2)),
            u64::MAX => Self::Invalid,
            _ => Self::Other(code),
        })
    }

    /// The bytes of the canonical (prefix-free) encoding of the intercepted
    /// instruction, for exits that leave RIP on it and that Sinter
    /// completes by stepping over it. Without nrip-save this is how the next
    /// RIP is found; the service compares these bytes with the guest's at
    /// RIP and falls back to decoding when they differ (a prefixed form).
    pub const fn canonical_encoding(&self) -> Option<&'static [u8]> {
        match self {
            Self::Cpuid => Some(&[0x0f, 0xa2]),
            Self::Msr(MsrDirection::Read) => Some(&[0x0f, 0x32]),
            Self::Msr(MsrDirection::Write) => Some(&[0x0f, 0x30]),
            Self::Hlt => Some(&[0xf4]),
            Self::Vmmcall => Some(&[0x0f, 0x01, 0xd9]),
            Self::Xsetbv => Some(&[0x0f, 0x01, 0xd1]),
            Self::Invd => Some(&[0x0f, 0x08]),
            Self::Wbinvd => Some(&[0x0f, 0x09]),
            _ => None,
        }
    }

    /// Length of [`Self::canonical_encoding`].
    pub const fn canonical_length(&self) -> Option<u8> {
        match self.canonical_encoding() {
            Some(b) => Some(b.len() as u8),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(code: u64, i1: u64, i2: u64) -> SvmExit {
        SvmExit::decode(ExitCode(code), i1, i2).unwrap()
    }

    #[test]
    fn decodes_the_exits_sinter_handles() {
        assert_eq!(d(0x72, 0, 0), SvmExit::Cpuid);
        assert_eq!(d(0x78, 0, 0), SvmExit::Hlt);
        assert_eq!(d(0x81, 0, 0), SvmExit::Vmmcall);
        assert_eq!(d(0x60, 0, 0), SvmExit::PhysicalInterrupt);
        assert_eq!(d(0x7f, 0, 0), SvmExit::Shutdown);
        assert_eq!(d(0x7c, 0, 0), SvmExit::Msr(MsrDirection::Read));
        assert_eq!(d(0x7c, 1, 0), SvmExit::Msr(MsrDirection::Write));
        assert_eq!(d(0x13, 0, 0), SvmExit::CrWrite(3));
        assert_eq!(d(0x80, 0, 0), SvmExit::SvmInstruction(ExitCode::VMRUN));
        assert_eq!(d(0x8b, 0, 0), SvmExit::HiddenInstruction(ExitCode::MWAIT));
        assert_eq!(d(u64::MAX, 0, 0), SvmExit::Invalid);
        assert_eq!(d(0x401, 0, 0), SvmExit::Other(ExitCode::AVIC_INCOMPLETE_IPI));
        match d(0x7b, (0x3f8 << 16) | (1 << 4), 0x1002) {
            SvmExit::Io(io) => assert_eq!((io.port, io.next_rip), (0x3f8, 0x1002)),
            other => panic!("{other:?}"),
        }
        match d(0x400, NpfErrorCode::WRITE | (1 << 32), 0xfee0_00b0) {
            SvmExit::NestedPageFault(f) => assert_eq!(f.gpa.get(), 0xfee0_00b0),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn exceptions_carry_error_code_and_cr2() {
        assert_eq!(
            d(0x40 + 14, 0x2, 0xdead_b000),
            SvmExit::Exception(ExceptionExit { vector: 14, error_code: Some(2), fault_address: Some(0xdead_b000) })
        );
        assert_eq!(
            d(0x40 + 1, 0x55, 0x66),
            SvmExit::Exception(ExceptionExit { vector: 1, error_code: None, fault_address: None })
        );
        assert_eq!(
            d(0x40 + 17, 0, 0),
            SvmExit::Exception(ExceptionExit { vector: 17, error_code: Some(0), fault_address: None })
        );
    }

    #[test]
    fn malformed_exits_are_errors() {
        assert!(matches!(SvmExit::decode(ExitCode::MSR, 2, 0), Err(ExitDecodeError::MalformedMsr(2))));
        assert!(matches!(SvmExit::decode(ExitCode::IOIO, 0, 0), Err(ExitDecodeError::MalformedIo(_))));
    }

    #[test]
    fn canonical_lengths() {
        assert_eq!(SvmExit::Cpuid.canonical_length(), Some(2));
        assert_eq!(SvmExit::Hlt.canonical_length(), Some(1));
        assert_eq!(SvmExit::Vmmcall.canonical_length(), Some(3));
        assert_eq!(SvmExit::Xsetbv.canonical_length(), Some(3));
        assert_eq!(SvmExit::Shutdown.canonical_length(), None);
    }

    #[test]
    fn names() {
        assert_eq!(ExitCode::NPF.name(), "NPF");
        assert_eq!(format!("{:?}", ExitCode(0x7b)), "IOIO(0x7b)");
        assert_eq!(ExitCode(0x1234).name(), "UNKNOWN");
    }

    proptest! {
        #[test]
        fn decode_never_panics(code in prop_oneof![0u64..0x500, any::<u64>()], i1 in any::<u64>(), i2 in any::<u64>()) {
            let _ = SvmExit::decode(ExitCode(code), i1, i2);
        }
    }
}
