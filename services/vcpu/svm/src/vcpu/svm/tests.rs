use std::vec::Vec;

use super::*;
use crate::exit::{ExitCode, IoDirection, NpfAccess, NpfErrorCode};
use crate::vmcb::int_ctl;

/// What one simulated VMRUN does to the VMCB before "exiting".
#[derive(Clone, Copy, Default)]
struct Step {
    code: u64,
    info1: u64,
    info2: u64,
    exit_int_info: u64,
    rcx: u64,
    rdx: u64,
    rax: u64,
}

/// A fake world switch: records what VMRUN was entered with and writes
/// the next scripted exit into the VMCB.
#[derive(Default)]
struct ScriptedRunner {
    steps: Vec<Step>,
    seen_eventinj: Vec<u64>,
    seen_tlb: Vec<u8>,
}

impl VmRunner for ScriptedRunner {
    fn vmrun(&mut self, vmcb: &mut Vmcb, gprs: &mut GuestGprs) {
        self.seen_eventinj.push(vmcb.control.event_injection);
        self.seen_tlb.push(vmcb.control.tlb_control);
        let s = self.steps.remove(0);
        let c = &mut vmcb.control;
        c.exit_code = s.code;
        c.exit_info_1 = s.info1;
        c.exit_info_2 = s.info2;
        c.exit_int_info = s.exit_int_info;
        gprs.set(Gpr::Rcx, s.rcx);
        gprs.set(Gpr::Rdx, s.rdx);
        vmcb.save.rax = s.rax;
    }
}

fn vcpu_with(vmcb: &mut Vmcb, steps: Vec<Step>) -> SvmVcpu<'_, ScriptedRunner> {
    SvmVcpu::new(vmcb, ScriptedRunner { steps, ..Default::default() })
}

#[test]
fn cpuid_and_msr_exits_carry_register_operands() {
    let mut vmcb = Vmcb::zeroed();
    let steps = vec![
        Step { code: 0x72, rax: 0x8000_0001, rcx: 0, ..Default::default() },
        Step { code: 0x7c, info1: 1, rcx: 0xc000_0080, rdx: 0, rax: 0x501, ..Default::default() },
        Step { code: 0x7c, info1: 0, rcx: 0x1b, ..Default::default() },
    ];
    let mut v = vcpu_with(&mut vmcb, steps);
    assert_eq!(v.run().unwrap(), VcpuExit::Cpuid { leaf: 0x8000_0001, subleaf: 0, len: 2 });
    assert_eq!(v.run().unwrap(), VcpuExit::MsrWrite { msr: 0xc000_0080, value: 0x501, len: 2 });
    assert_eq!(v.run().unwrap(), VcpuExit::MsrRead { msr: 0x1b, len: 2 });
    assert_eq!(v.exit_reason(), Some(VcpuExit::MsrRead { msr: 0x1b, len: 2 }));
}

#[test]
fn io_and_npf_exits() {
    let mut vmcb = Vmcb::zeroed();
    let steps = vec![
        Step { code: 0x7b, info1: (0x3f8 << 16) | (1 << 4), info2: 0x1_0002, ..Default::default() },
        Step {
            code: 0x400,
            info1: NpfErrorCode::WRITE | NpfErrorCode::USER | (1 << 32),
            info2: 0xfee0_0080,
            ..Default::default()
        },
    ];
    let mut v = vcpu_with(&mut vmcb, steps);
    match v.run().unwrap() {
        VcpuExit::PortIo(io) => {
            assert_eq!((io.port, io.direction, io.next_rip), (0x3f8, IoDirection::Out, 0x1_0002));
        }
        other => panic!("{other:?}"),
    }
    match v.run().unwrap() {
        VcpuExit::GuestMemoryFault(f) => {
            assert_eq!(f.gpa.get(), 0xfee0_0080);
            assert_eq!(f.access, NpfAccess::Write);
            assert!(!f.present && !f.guest_page_walk);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn injection_is_written_once_and_interrupted_delivery_is_retried() {
    let mut vmcb = Vmcb::zeroed();
    vmcb.save.rflags = RFLAGS_IF;
    let pf = EventInjection::exception(14, Some(2)).unwrap();
    let steps = vec![
        // Delivery of the #PF hit an NPF on the guest's IDT/stack page.
        Step {
            code: 0x400,
            info1: NpfErrorCode::WRITE | (1 << 32),
            info2: 0x9000,
            exit_int_info: pf.raw(),
            ..Default::default()
        },
        Step { code: 0x78, ..Default::default() },
        Step { code: 0x78, ..Default::default() },
    ];
    let mut v = vcpu_with(&mut vmcb, steps);
    v.inject_event(Event::Exception { vector: 14, error_code: Some(2) }).unwrap();
    assert!(matches!(v.run().unwrap(), VcpuExit::GuestMemoryFault(_)));
    assert_eq!(v.pending_event(), Some(pf), "requeued from EXITINTINFO");
    assert_eq!(v.inject_event(Event::ExternalInterrupt(0x30)), Err(InjectError::EventPending));
    assert_eq!(v.run().unwrap(), VcpuExit::Halt { len: 1 });
    assert_eq!(v.pending_event(), None);
    v.run().unwrap();
    assert_eq!(v.runner().seen_eventinj, vec![pf.raw(), pf.raw(), 0]);
    assert_eq!(v.vmcb().control.event_injection, 0, "EVENTINJ cleared after each run");
}

#[test]
fn maskable_interrupts_need_an_open_window() {
    let mut vmcb = Vmcb::zeroed();
    vmcb.save.rflags = 0x2; // IF=0
    let steps = vec![Step { code: 0x64, ..Default::default() }];
    let mut v = vcpu_with(&mut vmcb, steps);
    assert_eq!(v.inject_event(Event::ExternalInterrupt(0x30)), Err(InjectError::InterruptsMasked));
    assert!(matches!(v.inject_event(Event::ExternalInterrupt(3)), Err(InjectError::Invalid(_))));
    v.request_interrupt_window();
    assert_ne!(v.vmcb().control.intercept_misc1 & misc1::VINTR, 0);
    assert_ne!(v.vmcb().control.int_ctl & int_ctl::V_IRQ, 0);
    assert_eq!(v.run().unwrap(), VcpuExit::InterruptWindow);
    assert_eq!(v.vmcb().control.intercept_misc1 & misc1::VINTR, 0);
    assert_eq!(v.vmcb().control.int_ctl & int_ctl::V_IRQ, 0);
    v.set_rflags(0x202);
    v.inject_event(Event::ExternalInterrupt(0x30)).unwrap();
    // An NMI or exception does not depend on IF, but one event at a time.
    assert_eq!(v.inject_event(Event::Nmi), Err(InjectError::EventPending));
}

#[test]
fn interrupt_shadow_blocks_and_skip_clears_it() {
    let mut vmcb = Vmcb::zeroed();
    vmcb.save.rflags = RFLAGS_IF;
    vmcb.control.int_state = 1;
    vmcb.save.rip = 0x1000;
    let mut v = vcpu_with(&mut vmcb, vec![]);
    assert!(!v.interrupts_open());
    v.skip_instruction(2);
    assert_eq!(v.rip(), 0x1002);
    assert!(v.interrupts_open());
}

#[test]
fn tlb_flush_is_requested_for_one_run() {
    let mut vmcb = Vmcb::zeroed();
    let steps = vec![Step { code: 0x60, ..Default::default() }, Step { code: 0x60, ..Default::default() }];
    let mut v = vcpu_with(&mut vmcb, steps);
    v.request_tlb_flush();
    assert_eq!(v.run().unwrap(), VcpuExit::HostEvent);
    assert_eq!(v.run().unwrap(), VcpuExit::HostEvent);
    assert_eq!(v.runner().seen_tlb, vec![TlbControl::FlushAll as u8, TlbControl::DoNothing as u8]);
}

#[test]
fn registers_map_onto_vmcb_and_gpr_file() {
    let mut vmcb = Vmcb::zeroed();
    vmcb.save.efer = 0xd01 | EFER_SVME;
    let mut v = vcpu_with(&mut vmcb, vec![]);
    for (i, r) in Gpr::ALL.into_iter().enumerate() {
        v.set_gpr(r, 0x100 + i as u64);
    }
    for (i, r) in Gpr::ALL.into_iter().enumerate() {
        assert_eq!(v.gpr(r), 0x100 + i as u64);
    }
    assert_eq!(v.vmcb().save.rax, 0x100);
    assert_eq!(v.vmcb().save.rsp, 0x104);
    assert_eq!(v.control_registers().efer, 0xd01, "SVME hidden from the guest view");
}

#[test]
fn fatal_and_malformed_exits() {
    let mut vmcb = Vmcb::zeroed();
    let steps = vec![
        Step { code: u64::MAX, ..Default::default() },
        Step { code: 0x7c, info1: 7, ..Default::default() },
        Step { code: 0x60, exit_int_info: 0x8000_0100, ..Default::default() },
        Step { code: 0x80, ..Default::default() },
    ];
    let mut v = vcpu_with(&mut vmcb, steps);
    assert!(matches!(v.run().unwrap(), VcpuExit::Fatal { code: u64::MAX, .. }));
    assert_eq!(v.run(), Err(SvmVcpuError::Decode(ExitDecodeError::MalformedMsr(7))));
    assert!(matches!(v.run(), Err(SvmVcpuError::ExitIntInfo(_))));
    assert_eq!(v.run().unwrap(), VcpuExit::InjectException(Event::Exception { vector: 6, error_code: None }));
    assert_eq!(v.last_svm_exit(), Some(SvmExit::SvmInstruction(ExitCode::VMRUN)));
}
