//! What the vcpu service does with each exit: a plain function from a
//! decoded exit to an [`ExitAction`], so the dispatch policy is tested with
//! synthetic exits (the table in `docs/hypervisor.md` is this function).

use super::{ExitCode, IoAccess, MsrDirection, NestedPageFault, SvmExit};
use crate::event::{vector, EventInjection};

/// Why an exit stops the VM (a guest that cannot continue, or a bug in
/// Sinter's VMCB setup). Reported with the vCPU, RIP and exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FatalExit {
    /// VMRUN refused the VMCB: Sinter wrote an illegal guest state.
    InvalidVmcb,
    /// An exit Sinter never intercepts.
    UnexpectedExit(ExitCode),
    /// A nested entry had a reserved bit set: Sinter built a bad table.
    NestedTableReservedBit(NestedPageFault),
    /// A hardware task switch (not supported for 64-bit guests).
    TaskSwitch,
    /// FERR_FREEZE (legacy x87 error reporting, CR0.NE=0).
    FerrFreeze,
    /// RSM outside SMM.
    Rsm,
}

/// What to do about one exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitAction {
    /// The exit was for the host (physical interrupt, NMI, SMI, INIT): the
    /// kernel takes it once GIF/IF open; then VMRUN again, guest untouched.
    Resume,
    /// V_IRQ was taken: clear it and the VINTR intercept, inject the
    /// virtual interrupt that was waiting for the window.
    InjectPendingInterrupt,
    /// Answer from the CPUID model, then step over the instruction.
    EmulateCpuid,
    /// Apply the MSR policy (`crate::msr`); step over, or inject #GP.
    EmulateMsr(MsrDirection),
    /// Validate and record the guest's XCR0; step over, or inject #GP.
    EmulateXsetbv,
    /// Forward to the platform service (the boot node's devices); when it
    /// answers, set RIP to `io.next_rip` (from `EXITINFO2`).
    PortIo(IoAccess),
    /// Send to the fault service: RAM (coherence) or MMIO (fetch, decode,
    /// emulate).
    NestedPageFault(NestedPageFault),
    /// Step over HLT; the vCPU sleeps until an interrupt is pending.
    Halt,
    /// Step over VMMCALL and run the hypercall in RAX (unknown numbers
    /// return -1000, KVM's `-KVM_ENOSYS`).
    Hypercall,
    /// Step over a cache-control no-op (INVD, WBINVD: coherence works on
    /// pages, and caches are coherent within a node).
    SkipInstruction,
    /// Reflect an intercepted exception back into the guest unchanged.
    Reflect(EventInjection),
    /// Inject this exception instead of completing the instruction.
    Inject(EventInjection),
    /// The guest triple-faulted: stop (or reset) the VM and report.
    GuestShutdown,
    /// A machine check in guest mode: the host's problem; report and stop.
    HostMachineCheck,
    /// Stop the VM and report.
    Fatal(FatalExit),
}

/// The action for `exit`.
pub fn plan(exit: &SvmExit) -> ExitAction {
    use ExitAction as A;
    match *exit {
        SvmExit::PhysicalInterrupt | SvmExit::Nmi | SvmExit::Smi | SvmExit::Init => A::Resume,
        SvmExit::VirtualInterrupt => A::InjectPendingInterrupt,
        SvmExit::Cpuid => A::EmulateCpuid,
        SvmExit::Msr(dir) => A::EmulateMsr(dir),
        SvmExit::Xsetbv => A::EmulateXsetbv,
        SvmExit::Io(io) => A::PortIo(io),
        SvmExit::NestedPageFault(f) if f.error.reserved_bit() => A::Fatal(FatalExit::NestedTableReservedBit(f)),
        SvmExit::NestedPageFault(f) => A::NestedPageFault(f),
        SvmExit::Hlt => A::Halt,
        SvmExit::Vmmcall => A::Hypercall,
        SvmExit::Invd | SvmExit::Wbinvd => A::SkipInstruction,
        SvmExit::Exception(e) if e.vector == vector::MACHINE_CHECK => A::HostMachineCheck,
        SvmExit::Exception(e) if e.vector == vector::DEBUG || e.vector == vector::ALIGNMENT_CHECK => {
            // The decoder attaches an error code exactly when the vector has
            // one, so this cannot fail; if it did, stopping is the safe answer.
            match EventInjection::exception(e.vector, e.error_code) {
                Ok(event) => A::Reflect(event),
                Err(_) => A::Fatal(FatalExit::UnexpectedExit(ExitCode(0x40 + u64::from(e.vector)))),
            }
        }
        SvmExit::Exception(e) => A::Fatal(FatalExit::UnexpectedExit(ExitCode(0x40 + u64::from(e.vector)))),
        SvmExit::SvmInstruction(_) | SvmExit::HiddenInstruction(_) => A::Inject(EventInjection::INVALID_OPCODE),
        SvmExit::Rdpmc => A::Inject(EventInjection::GENERAL_PROTECTION_0),
        SvmExit::Shutdown => A::GuestShutdown,
        SvmExit::TaskSwitch => A::Fatal(FatalExit::TaskSwitch),
        SvmExit::FerrFreeze => A::Fatal(FatalExit::FerrFreeze),
        SvmExit::Rsm => A::Fatal(FatalExit::Rsm),
        SvmExit::Invalid => A::Fatal(FatalExit::InvalidVmcb),
        SvmExit::CrRead(n) => A::Fatal(FatalExit::UnexpectedExit(ExitCode(u64::from(n)))),
        SvmExit::CrWrite(n) => A::Fatal(FatalExit::UnexpectedExit(ExitCode(0x10 + u64::from(n)))),
        SvmExit::DrRead(n) => A::Fatal(FatalExit::UnexpectedExit(ExitCode(0x20 + u64::from(n)))),
        SvmExit::DrWrite(n) => A::Fatal(FatalExit::UnexpectedExit(ExitCode(0x30 + u64::from(n)))),
        SvmExit::Other(code) => A::Fatal(FatalExit::UnexpectedExit(code)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::{ExceptionExit, NpfErrorCode};
    use crate::vmcb::intercept::{misc1, misc2, Intercepts};

    #[test]
    fn routine_exits() {
        assert_eq!(plan(&SvmExit::PhysicalInterrupt), ExitAction::Resume);
        assert_eq!(plan(&SvmExit::Cpuid), ExitAction::EmulateCpuid);
        assert_eq!(plan(&SvmExit::Hlt), ExitAction::Halt);
        assert_eq!(plan(&SvmExit::Vmmcall), ExitAction::Hypercall);
        assert_eq!(plan(&SvmExit::Wbinvd), ExitAction::SkipInstruction);
        assert_eq!(plan(&SvmExit::Shutdown), ExitAction::GuestShutdown);
        assert_eq!(plan(&SvmExit::Invalid), ExitAction::Fatal(FatalExit::InvalidVmcb));
    }

    #[test]
    fn hidden_features_fault_like_absent_hardware() {
        let ud = ExitAction::Inject(EventInjection::exception(6, None).unwrap());
        assert_eq!(plan(&SvmExit::SvmInstruction(ExitCode::VMRUN)), ud);
        assert_eq!(plan(&SvmExit::HiddenInstruction(ExitCode::MWAIT)), ud);
        assert_eq!(plan(&SvmExit::Rdpmc), ExitAction::Inject(EventInjection::exception(13, Some(0)).unwrap()));
    }

    #[test]
    fn exceptions() {
        let db = SvmExit::Exception(ExceptionExit { vector: 1, error_code: None, fault_address: None });
        assert_eq!(plan(&db), ExitAction::Reflect(EventInjection::exception(1, None).unwrap()));
        let ac = SvmExit::Exception(ExceptionExit { vector: 17, error_code: Some(0), fault_address: None });
        assert_eq!(plan(&ac), ExitAction::Reflect(EventInjection::exception(17, Some(0)).unwrap()));
        let mc = SvmExit::Exception(ExceptionExit { vector: 18, error_code: None, fault_address: None });
        assert_eq!(plan(&mc), ExitAction::HostMachineCheck);
        let pf = SvmExit::Exception(ExceptionExit { vector: 14, error_code: Some(0), fault_address: Some(0) });
        assert!(matches!(plan(&pf), ExitAction::Fatal(FatalExit::UnexpectedExit(ExitCode(0x4e)))));
    }

    #[test]
    fn npf_with_reserved_bit_is_a_sinter_bug() {
        let bad = NestedPageFault::decode(NpfErrorCode::RESERVED | NpfErrorCode::PRESENT, 0x1000);
        assert_eq!(plan(&SvmExit::NestedPageFault(bad)), ExitAction::Fatal(FatalExit::NestedTableReservedBit(bad)));
        let ok = NestedPageFault::decode(NpfErrorCode::WRITE, 0x1000);
        assert_eq!(plan(&SvmExit::NestedPageFault(ok)), ExitAction::NestedPageFault(ok));
    }

    /// Every exit the Sinter intercept set can produce has a non-fatal plan.
    #[test]
    fn every_intercepted_exit_is_handled() {
        let i = Intercepts::sinter();
        let mut codes = std::vec::Vec::new();
        for bit in 0..32u64 {
            if i.misc1 & (1 << bit) != 0 {
                codes.push(0x60 + bit);
            }
            if i.misc2 & (1 << bit) != 0 {
                codes.push(0x80 + bit);
            }
            if i.exceptions & (1 << bit) != 0 {
                codes.push(0x40 + bit);
            }
        }
        assert!(i.misc1 & misc1::MSR_PROT != 0 && i.misc2 & misc2::VMRUN != 0);
        for code in codes {
            let info1 = match code {
                0x7b => (0x60 << 16) | (1 << 4),
                _ => 0,
            };
            let exit = SvmExit::decode(ExitCode(code), info1, 0).unwrap();
            assert!(!matches!(plan(&exit), ExitAction::Fatal(FatalExit::UnexpectedExit(_))), "{exit:?}");
        }
    }
}
