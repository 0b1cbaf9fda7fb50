//! [`Vcpu`] over a VMCB. Everything except the world switch is here and
//! host-tested; the world switch is a [`VmRunner`] (bare metal: CLGI,
//! VMLOAD, VMRUN, VMSAVE, STGI around the guest GPRs).

use super::{ControlRegisters, Event, Gpr, GuestGprs, GuestMemoryFault, InjectError, Vcpu, VcpuExit, RFLAGS_IF};
use crate::event::{EventError, EventInjection};
use crate::exit::plan::{plan, ExitAction, FatalExit};
use crate::exit::{ExitDecodeError, MsrDirection, NpfStage, SvmExit};
use crate::vmcb::intercept::misc1;
use crate::vmcb::{TlbControl, VirtualInterrupt, Vmcb, EFER_SVME};

/// The world switch: the one part of the SVM backend that touches
/// hardware, supplied by the bare-metal vcpu service.
pub trait VmRunner {
    /// Enters the guest described by `vmcb`, with `gprs` in the registers
    /// VMRUN does not load (all but RAX and RSP, which live in the VMCB),
    /// and returns at the next `#VMEXIT` with the guest's GPRs saved back
    /// into `gprs`. The implementation also VMLOADs/VMSAVEs the guest's
    /// FS/GS/TR/LDTR/KernelGsBase/STAR/LSTAR/CSTAR/SFMASK/SYSENTER state
    /// around VMRUN and restores the host's.
    fn vmrun(&mut self, vmcb: &mut Vmcb, gprs: &mut GuestGprs);
}

/// A VMCB exit Sinter cannot make sense of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SvmVcpuError {
    /// EXITCODE/EXITINFO that the CPU should never produce.
    Decode(ExitDecodeError),
    /// EXITINTINFO with a reserved event type.
    ExitIntInfo(EventError),
}

/// An SVM vCPU: its VMCB, the GPRs VMRUN does not hold, and the event
/// waiting to be injected.
pub struct SvmVcpu<'v, R: VmRunner> {
    vmcb: &'v mut Vmcb,
    gprs: GuestGprs,
    runner: R,
    pending: Option<EventInjection>,
    last: Option<VcpuExit>,
    last_svm: Option<SvmExit>,
    flush_tlb: bool,
}

impl<'v, R: VmRunner> SvmVcpu<'v, R> {
    /// A vCPU over a configured VMCB ([`Vmcb::configure`]).
    pub fn new(vmcb: &'v mut Vmcb, runner: R) -> Self {
        Self { vmcb, gprs: GuestGprs::default(), runner, pending: None, last: None, last_svm: None, flush_tlb: false }
    }

    /// The VMCB (for state setup and inspection).
    pub fn vmcb(&self) -> &Vmcb {
        self.vmcb
    }

    /// The VMCB, mutably.
    pub fn vmcb_mut(&mut self) -> &mut Vmcb {
        self.vmcb
    }

    /// The runner.
    pub fn runner(&self) -> &R {
        &self.runner
    }

    /// The SVM view of the last exit.
    pub fn last_svm_exit(&self) -> Option<SvmExit> {
        self.last_svm
    }

    /// The event that will be injected on the next run, if any.
    pub fn pending_event(&self) -> Option<EventInjection> {
        self.pending
    }

    /// Flush all TLBs on the next VMRUN (after a nested table change).
    pub fn request_tlb_flush(&mut self) {
        self.flush_tlb = true;
    }

    fn exit_from(&mut self, exit: &SvmExit) -> VcpuExit {
        let g = &self.gprs;
        let (eax, ecx, edx) = (self.vmcb.save.rax as u32, g.get(Gpr::Rcx) as u32, g.get(Gpr::Rdx) as u32);
        let edx_eax = (u64::from(edx) << 32) | u64::from(eax);
        let len = exit.canonical_length().unwrap_or(0);
        match plan(exit) {
            ExitAction::Resume => VcpuExit::HostEvent,
            ExitAction::InjectPendingInterrupt => {
                self.vmcb.control.clear_virtual_interrupt();
                self.vmcb.control.intercept_misc1 &= !misc1::VINTR;
                VcpuExit::InterruptWindow
            }
            ExitAction::EmulateCpuid => VcpuExit::Cpuid { leaf: eax, subleaf: ecx, len },
            ExitAction::EmulateMsr(MsrDirection::Read) => VcpuExit::MsrRead { msr: ecx, len },
            ExitAction::EmulateMsr(MsrDirection::Write) => VcpuExit::MsrWrite { msr: ecx, value: edx_eax, len },
            ExitAction::EmulateXsetbv => VcpuExit::Xsetbv { xcr: ecx, value: edx_eax, len },
            ExitAction::PortIo(io) => VcpuExit::PortIo(io),
            ExitAction::NestedPageFault(f) => VcpuExit::GuestMemoryFault(GuestMemoryFault {
                gpa: f.gpa,
                access: f.access(),
                present: f.error.present(),
                guest_page_walk: f.stage() == NpfStage::GuestPageTable,
            }),
            ExitAction::Halt => VcpuExit::Halt { len },
            ExitAction::Hypercall => VcpuExit::Hypercall { len },
            ExitAction::SkipInstruction => VcpuExit::Skip { len },
            ExitAction::Reflect(e) | ExitAction::Inject(e) => VcpuExit::InjectException(e.into()),
            ExitAction::GuestShutdown => VcpuExit::Shutdown,
            ExitAction::HostMachineCheck => {
                VcpuExit::Fatal { why: "machine check in guest mode", code: self.vmcb.control.exit_code }
            }
            ExitAction::Fatal(f) => VcpuExit::Fatal { why: fatal_text(&f), code: self.vmcb.control.exit_code },
        }
    }
}

fn fatal_text(f: &FatalExit) -> &'static str {
    match f {
        FatalExit::InvalidVmcb => "VMRUN refused the VMCB (illegal guest state)",
        FatalExit::UnexpectedExit(_) => "exit for an event Sinter does not intercept",
        FatalExit::NestedTableReservedBit(_) => "reserved bit in a nested page table entry",
        FatalExit::TaskSwitch => "hardware task switch",
        FatalExit::FerrFreeze => "FERR_FREEZE",
        FatalExit::Rsm => "RSM outside SMM",
    }
}

impl<R: VmRunner> Vcpu for SvmVcpu<'_, R> {
    type Error = SvmVcpuError;

    fn run(&mut self) -> Result<VcpuExit, SvmVcpuError> {
        let c = &mut self.vmcb.control;
        c.set_event_injection(self.pending.take());
        if core::mem::take(&mut self.flush_tlb) {
            c.set_tlb_control(TlbControl::FlushAll);
        }
        self.runner.vmrun(self.vmcb, &mut self.gprs);
        let c = &mut self.vmcb.control;
        c.set_event_injection(None);
        c.set_tlb_control(TlbControl::DoNothing);
        // An event whose delivery the exit cut short goes in again first.
        self.pending = EventInjection::from_raw(c.exit_int_info).map_err(SvmVcpuError::ExitIntInfo)?;
        let svm = SvmExit::from_control(c).map_err(SvmVcpuError::Decode)?;
        let exit = self.exit_from(&svm);
        self.last_svm = Some(svm);
        self.last = Some(exit);
        Ok(exit)
    }

    fn exit_reason(&self) -> Option<VcpuExit> {
        self.last
    }

    fn gpr(&self, r: Gpr) -> u64 {
        match r {
            Gpr::Rax => self.vmcb.save.rax,
            Gpr::Rsp => self.vmcb.save.rsp,
            _ => self.gprs.get(r),
        }
    }

    fn set_gpr(&mut self, r: Gpr, value: u64) {
        match r {
            Gpr::Rax => self.vmcb.save.rax = value,
            Gpr::Rsp => self.vmcb.save.rsp = value,
            _ => self.gprs.set(r, value),
        }
    }

    fn rip(&self) -> u64 {
        self.vmcb.save.rip
    }

    fn set_rip(&mut self, rip: u64) {
        self.vmcb.save.rip = rip;
    }

    fn rflags(&self) -> u64 {
        self.vmcb.save.rflags
    }

    fn set_rflags(&mut self, rflags: u64) {
        self.vmcb.save.rflags = rflags;
    }

    fn control_registers(&self) -> ControlRegisters {
        let s = &self.vmcb.save;
        ControlRegisters { cr0: s.cr0, cr2: s.cr2, cr3: s.cr3, cr4: s.cr4, efer: s.efer & !EFER_SVME }
    }

    fn inject_event(&mut self, event: Event) -> Result<(), InjectError> {
        if self.pending.is_some() {
            return Err(InjectError::EventPending);
        }
        let inj = EventInjection::try_from(event).map_err(InjectError::Invalid)?;
        if matches!(event, Event::ExternalInterrupt(_)) && !self.interrupts_open() {
            return Err(InjectError::InterruptsMasked);
        }
        self.pending = Some(inj);
        Ok(())
    }

    fn interrupts_open(&self) -> bool {
        self.vmcb.save.rflags & RFLAGS_IF != 0 && !self.vmcb.control.interrupt_shadow()
    }

    fn request_interrupt_window(&mut self) {
        // As KVM does: a dummy V_IRQ that ignores V_TPR, plus the VINTR
        // intercept, exits as soon as the guest could take it.
        self.vmcb.control.set_virtual_interrupt(VirtualInterrupt { vector: 0, priority: 0xf, ignore_tpr: true });
        self.vmcb.control.intercept_misc1 |= misc1::VINTR;
    }

    fn skip_instruction(&mut self, len: u8) {
        self.vmcb.save.rip = self.vmcb.save.rip.wrapping_add(u64::from(len));
        // Completing an instruction ends an STI/MOV SS shadow.
        self.vmcb.control.int_state &= !1;
    }
}

#[cfg(test)]
mod tests;
