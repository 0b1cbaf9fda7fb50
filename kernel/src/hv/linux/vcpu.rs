//! The vcpu service: one per vCPU, on its own host core, running the exit
//! loop of an `SvmVcpu<BareMetalRunner>` for the Linux guest.
//!
//! Per exit: CPUID from the vCPU's `GuestCpuid`; MSRs from `VcpuMsrs`
//! plus the three this service owns (`IA32_TSC_DEADLINE` and the kvmclock
//! pair); port I/O and the I/O APIC page to the shared `Platform`; the
//! xAPIC page to this vCPU's `Lapic`; other unbacked guest-physical
//! addresses read as all ones. MMIO instructions are fetched through the
//! guest's own page tables and emulated by `sinter-mmio-emulator`. Before
//! each VMRUN the service polls the timer and injects the highest
//! deliverable interrupt (or opens an interrupt window). HLT waits on the
//! host (`sti; hlt`, woken by the 1 kHz host tick or by an IPI another
//! vCPU or device sends this core).

use alloc::format;
use alloc::string::String;

use sinter_mmio_emulator::walk::{translate, PagingState};
use sinter_mmio_emulator::{emulate_mmio, AccessSize, BusError, CpuMode, GuestCpuState, MmioBus};
use sinter_svm::cpuid::{CpuModel, CpuidDynamic, CpuidResult, CpuidSource, GuestCpuid, HostFeatures, Topology};
use sinter_svm::exit::IoDirection;
use sinter_svm::msr::{MsrContext, MsrWrite, VcpuMsrs};
use sinter_svm::pvclock::{self, TimeScale};
use sinter_svm::vcpu::{Event, Gpr, SvmVcpu, Vcpu, VcpuExit};
use sinter_svm::vmcb::{VmcbSegment, VmcbSetup};
use sinter_svm::{HostPhysAddr, Vmcb};
use x86_64::registers::model_specific::Msr;

use super::devices::{Deliveries, Delivery, PlatformEvent, FLAG_INIT, FLAG_NMI, FLAG_SIPI, IOAPIC_BASE};
use super::lapic::{Ipi, Lapic, LapicEffect, APIC_BASE};
use super::vm::{Vm, VmState};
use crate::arch::time::rdtsc;
use crate::hv::svm::BareMetalRunner;
use crate::kprintln;
use crate::memory::{self, phys_to_virt};

const MSR_TSC_DEADLINE: u32 = 0x6e0;
const MSR_TSC_AUX: u32 = 0xc000_0103;
/// The virtual APIC timer's input clock (CPUID 0x4000_0010 EBX, kHz).
const APIC_BUS_KHZ: u32 = 1_000_000;
/// Host tick on vCPU cores: bounds how late a guest timer can fire.
const HOST_TICK_HZ: u64 = 1000;
/// Log at most this many lines per kind of guest oddity.
const LOG_LIMIT: u32 = 12;

struct HostCpuid;

impl CpuidSource for HostCpuid {
    fn cpuid(&self, leaf: u32, subleaf: u32) -> CpuidResult {
        let r = core::arch::x86_64::__cpuid_count(leaf, subleaf);
        CpuidResult { eax: r.eax, ebx: r.ebx, ecx: r.ecx, edx: r.edx }
    }
}

#[derive(Default)]
struct Counts {
    exits: u64,
    msr_faults: u32,
    msr_ignored: u32,
    unbacked: u32,
    injected: u64,
    halts: u64,
}

/// The guest model: Sinter's EPYC-class vCPU with kvmclock (so Linux
/// knows the TSC rate without PIT calibration), the TSC-deadline timer,
/// and no XSAVE (the world switch does not load the guest's XCR0 yet).
pub fn cpu_model(tsc_hz: u64) -> CpuModel {
    CpuModel {
        tsc_khz: (tsc_hz / 1000) as u32,
        apic_bus_khz: APIC_BUS_KHZ,
        kvm_features: Some(pvclock::KVM_FEATURE_CLOCKSOURCE2 | pvclock::KVM_FEATURE_CLOCKSOURCE_STABLE_BIT),
        tsc_deadline: true,
        xsave: false,
        ..CpuModel::SINTER_EPYC
    }
}

/// Sends this VM's wake-up to the core running vCPU `target`.
fn kick(vm: &Vm, target: usize, me: usize) {
    if target != me {
        if let Some(&core) = vm.cores.get(target) {
            crate::arch::apic::send_ipi(core as u32, crate::arch::apic::Ipi::Fixed(crate::arch::IPI_VECTOR));
        }
    }
}

/// Posts an I/O APIC delivery to the vCPUs it names.
pub fn deliver(vm: &Vm, d: Delivery, me: usize) {
    for i in 0..vm.vcpus {
        if vm.mailboxes[i].matches(d.destination, d.logical) {
            vm.mailboxes[i].post(d.vector, d.level);
            kick(vm, i, me);
            if d.lowest_priority {
                break;
            }
        }
    }
}

fn send_ipi(vm: &Vm, ipi: Ipi, me: usize) {
    for i in 0..vm.vcpus {
        let m = &vm.mailboxes[i];
        let target = match ipi.shorthand {
            1 => i == me,
            2 => true,
            3 => i != me,
            _ => m.matches(ipi.destination, ipi.logical),
        };
        if !target {
            continue;
        }
        match ipi.mode {
            0 | 1 => m.post(ipi.vector, false),
            4 => {
                m.flags.fetch_or(FLAG_NMI, core::sync::atomic::Ordering::AcqRel);
            }
            5 if !ipi.deassert => {
                m.flags.fetch_or(FLAG_INIT, core::sync::atomic::Ordering::AcqRel);
            }
            6 => {
                if m.flags.load(core::sync::atomic::Ordering::Acquire) & FLAG_INIT != 0 {
                    m.sipi.store(u32::from(ipi.vector), core::sync::atomic::Ordering::Release);
                    m.flags.fetch_or(FLAG_SIPI, core::sync::atomic::Ordering::AcqRel);
                }
            }
            _ => continue,
        }
        kick(vm, i, me);
    }
}

/// Halts this core until an interrupt arrives (the host tick at the latest),
/// unless `ready` already holds.
fn wait_on_host(ready: impl Fn() -> bool) {
    x86_64::instructions::interrupts::disable();
    if !ready() {
        x86_64::instructions::interrupts::enable_and_hlt();
    }
    x86_64::instructions::interrupts::enable();
}

/// The service body: `arg` is the vCPU index.
pub fn run(vm: &'static Vm, index: usize) -> Result<(), String> {
    x86_64::instructions::interrupts::enable();
    crate::arch::time::start_periodic_timer(HOST_TICK_HZ).map_err(|e| format!("host tick: {e}"))?;
    let mailbox = &vm.mailboxes[index];
    let mut sipi_vector = None;
    if index != 0 {
        // An application processor waits for INIT + SIPI from the guest.
        loop {
            if vm.state() != VmState::Running {
                return Ok(());
            }
            let flags = mailbox.flags.load(core::sync::atomic::Ordering::Acquire);
            if flags & FLAG_SIPI != 0 {
                mailbox.flags.fetch_and(!(FLAG_SIPI | FLAG_INIT), core::sync::atomic::Ordering::AcqRel);
                sipi_vector = Some(mailbox.sipi.load(core::sync::atomic::Ordering::Acquire) as u8);
                break;
            }
            wait_on_host(|| mailbox.flags.load(core::sync::atomic::Ordering::Acquire) & FLAG_SIPI != 0);
        }
    }

    let vmcb_phys = memory::alloc_frame().map_err(|e| format!("no frame for the VMCB: {e:?}"))?;
    // SAFETY: a zeroed, 4 KiB-aligned frame owned by this vCPU for the
    // life of the VM (never freed: the VM lives until the node stops);
    // all-zero bytes are a valid `Vmcb`, and this is the only reference.
    let vmcb = unsafe { &mut *(phys_to_virt(vmcb_phys) as *mut Vmcb) };
    match sipi_vector {
        None => init_boot_state(vm, vmcb),
        Some(v) => init_sipi_state(vmcb, v),
    }
    vmcb.configure(&VmcbSetup {
        iopm: HostPhysAddr(vm.iopm_phys),
        msrpm: HostPhysAddr(vm.msrpm_phys),
        nested_cr3: vm.npt.root(),
        asid: 1,
        tsc_offset: 0,
    })
    .map_err(|e| format!("VMCB: {e:?}"))?;

    let host = HostFeatures::read(&HostCpuid);
    let topology = Topology::new(&[vm.vcpus as u8]).map_err(|e| format!("topology: {e:?}"))?;
    let cpuid = alloc::boxed::Box::new(
        GuestCpuid::build(&cpu_model(vm.tsc_hz), &host, &topology, index as u16)
            .map_err(|e| format!("CPUID model: {e:?}"))?,
    );
    let phys_bits = cpuid.lookup(0x8000_0008, 0, &CpuidDynamic::RESET).eax as u8;
    let mut msrs = VcpuMsrs::new(index == 0);
    let mut lapic = Lapic::new(mailbox, vm.tsc_hz, u64::from(APIC_BUS_KHZ) * 1000);
    let scale = TimeScale::for_tsc_hz(vm.tsc_hz).ok_or("TSC rate unknown")?;
    let runner = BareMetalRunner::new(vmcb_phys).map_err(|e| format!("SVM: {e:?}"))?;
    let mut vcpu = SvmVcpu::new(vmcb, runner);
    vcpu.vmcb_mut().save.g_pat = msrs.pat();
    if sipi_vector.is_none() {
        // The boot protocol's RSI: the zero page.
        vcpu.set_gpr(Gpr::Rsi, vm.boot.rsi);
    }
    vcpu.request_tlb_flush();
    let mut counts = Counts::default();
    let mut tsc_aux_loaded = None;
    kprintln!(
        "vcpu {index}: running on core {} from rip={:#x}{}",
        crate::exec::core_index(),
        vcpu.rip(),
        if let Some(v) = sipi_vector { format!(" (SIPI vector {v:#x})") } else { String::new() }
    );

    loop {
        if vm.state() != VmState::Running {
            kprintln!(
                "vcpu {index}: stopped after {} exits ({} interrupts injected, {} HLTs, {} timer events)",
                counts.exits,
                counts.injected,
                counts.halts,
                lapic.timer_fired
            );
            return Ok(());
        }
        let flags = mailbox.flags.load(core::sync::atomic::Ordering::Acquire);
        if flags & (FLAG_INIT | FLAG_SIPI) != 0 {
            mailbox.flags.fetch_and(!(FLAG_INIT | FLAG_SIPI), core::sync::atomic::Ordering::AcqRel);
        }
        lapic.poll_timer(rdtsc());
        if vcpu.pending_event().is_none() {
            if flags & FLAG_NMI != 0 {
                mailbox.flags.fetch_and(!FLAG_NMI, core::sync::atomic::Ordering::AcqRel);
                let _ = vcpu.inject_event(Event::Nmi);
            } else if let Some(v) = lapic.deliverable() {
                if vcpu.interrupts_open() {
                    if vcpu.inject_event(Event::ExternalInterrupt(v)).is_ok() {
                        lapic.accept(v);
                        counts.injected += 1;
                    }
                } else {
                    vcpu.request_interrupt_window();
                }
            }
        }
        let aux = msrs.tsc_aux();
        if tsc_aux_loaded != Some(aux) {
            let mut m = Msr::new(MSR_TSC_AUX);
            // SAFETY: TSC_AUX only feeds RDTSCP/RDPID, which the host
            // kernel never uses; the guest reads its own value through them.
            unsafe { m.write(aux) };
            tsc_aux_loaded = Some(aux);
        }

        counts.exits += 1;
        let exit =
            vcpu.run().map_err(|e| format!("exit decode: {e:?} (exit code {:#x})", vcpu.vmcb().control.exit_code))?;
        let rip = vcpu.rip();
        match exit {
            VcpuExit::HostEvent | VcpuExit::InterruptWindow => {}
            VcpuExit::Cpuid { leaf, subleaf, len } => {
                let now =
                    CpuidDynamic { cr4: vcpu.control_registers().cr4, apic_enabled: msrs.apic_enabled(), xcr0: 1 };
                let r = cpuid.lookup(leaf, subleaf, &now);
                vcpu.set_gpr(Gpr::Rax, u64::from(r.eax));
                vcpu.set_gpr(Gpr::Rbx, u64::from(r.ebx));
                vcpu.set_gpr(Gpr::Rcx, u64::from(r.ecx));
                vcpu.set_gpr(Gpr::Rdx, u64::from(r.edx));
                vcpu.skip_instruction(len);
            }
            VcpuExit::MsrRead { msr, len } => {
                let value = match msr {
                    MSR_TSC_DEADLINE => Some(lapic.tsc_deadline),
                    pvclock::MSR_KVM_SYSTEM_TIME_NEW | pvclock::MSR_KVM_WALL_CLOCK_NEW => Some(0),
                    _ => {
                        let ctx = msr_context(&vcpu, phys_bits);
                        match msrs.read(msr, &ctx) {
                            Ok(r) => {
                                if r.log {
                                    counts.msr_ignored += 1;
                                    if counts.msr_ignored <= LOG_LIMIT {
                                        kprintln!("vcpu {index}: rdmsr {msr:#x} ignored (reads 0) at rip={rip:#x}");
                                    }
                                }
                                Some(r.value)
                            }
                            Err(f) => {
                                counts.msr_faults += 1;
                                if counts.msr_faults <= LOG_LIMIT {
                                    kprintln!("vcpu {index}: rdmsr at rip={rip:#x}: {f} -> #GP");
                                }
                                None
                            }
                        }
                    }
                };
                match value {
                    Some(v) => {
                        vcpu.set_gpr(Gpr::Rax, v & 0xffff_ffff);
                        vcpu.set_gpr(Gpr::Rdx, v >> 32);
                        vcpu.skip_instruction(len);
                    }
                    None => {
                        let _ = vcpu.inject_event(Event::Exception { vector: 13, error_code: Some(0) });
                    }
                }
            }
            VcpuExit::MsrWrite { msr, value, len } => {
                let ok = match msr {
                    MSR_TSC_DEADLINE => {
                        lapic.write_tsc_deadline(value);
                        true
                    }
                    pvclock::MSR_KVM_SYSTEM_TIME_NEW => {
                        if value & pvclock::SYSTEM_TIME_ENABLE != 0 {
                            let record = pvclock::vcpu_time_info(2, vm.tsc_base, 0, scale);
                            vm.write(value & !pvclock::SYSTEM_TIME_ENABLE, &record)
                        } else {
                            true
                        }
                    }
                    pvclock::MSR_KVM_WALL_CLOCK_NEW => vm.write(value, &pvclock::wall_clock(2, 0, 0)),
                    _ => {
                        let ctx = msr_context(&vcpu, phys_bits);
                        match msrs.write(msr, value, &ctx) {
                            Ok(MsrWrite::Efer { vmcb_efer }) => {
                                vcpu.vmcb_mut().save.efer = vmcb_efer;
                                true
                            }
                            Ok(MsrWrite::Pat { g_pat }) => {
                                vcpu.vmcb_mut().save.g_pat = g_pat;
                                true
                            }
                            Ok(MsrWrite::Ignored) => {
                                counts.msr_ignored += 1;
                                if counts.msr_ignored <= LOG_LIMIT {
                                    kprintln!("vcpu {index}: wrmsr {msr:#x} <- {value:#x} ignored at rip={rip:#x}");
                                }
                                true
                            }
                            Ok(_) => true,
                            Err(f) => {
                                counts.msr_faults += 1;
                                if counts.msr_faults <= LOG_LIMIT {
                                    kprintln!("vcpu {index}: wrmsr {value:#x} at rip={rip:#x}: {f} -> #GP");
                                }
                                false
                            }
                        }
                    }
                };
                if ok {
                    vcpu.skip_instruction(len);
                } else {
                    let _ = vcpu.inject_event(Event::Exception { vector: 13, error_code: Some(0) });
                }
            }
            VcpuExit::Xsetbv { .. } => {
                // XSAVE is not offered (CPUID), so XSETBV is #UD.
                let _ = vcpu.inject_event(Event::Exception { vector: 6, error_code: None });
            }
            VcpuExit::PortIo(io) => {
                if io.string || io.rep {
                    return Err(format!("string port I/O {io:?} at rip={rip:#x} is not emulated"));
                }
                let size = io.size.bytes();
                let mask = if size == 4 { 0xffff_ffff } else { (1u64 << (8 * u32::from(size))) - 1 };
                let mut out = Deliveries::default();
                let mut event = PlatformEvent::None;
                {
                    let mut platform = vm.platform.lock();
                    match io.direction {
                        IoDirection::In => {
                            let v = u64::from(platform.port_read(io.port, size, rdtsc(), vm.tsc_hz, &mut out)) & mask;
                            let rax = vcpu.gpr(Gpr::Rax);
                            let new = if size == 4 { v } else { (rax & !mask) | v };
                            vcpu.set_gpr(Gpr::Rax, new);
                        }
                        IoDirection::Out => {
                            let v = (vcpu.gpr(Gpr::Rax) & mask) as u32;
                            event = platform.port_write(io.port, size, v, &mut out);
                        }
                    }
                }
                for d in out.0.into_iter().flatten() {
                    deliver(vm, d, index);
                }
                match event {
                    PlatformEvent::PowerOff => {
                        kprintln!("vm: guest requested ACPI S5 (power off) on vCPU {index}");
                        vm.stop(VmState::PoweredOff);
                    }
                    PlatformEvent::Reset => {
                        kprintln!("vm: guest requested a reset (port {:#x}) on vCPU {index}", io.port);
                        vm.stop(VmState::Reset);
                    }
                    PlatformEvent::None => {}
                }
                vcpu.set_rip(io.next_rip);
            }
            VcpuExit::GuestMemoryFault(f) => {
                let gpa = f.gpa.get();
                let page = gpa & !0xfff;
                if vm.gpa_to_hpa(gpa).is_some() {
                    return Err(format!("nested page fault on mapped guest RAM gpa={gpa:#x} ({f:?}) at rip={rip:#x}"));
                }
                let now = rdtsc();
                let mut out = Deliveries::default();
                let mut effect = LapicEffect::None;
                let result = if page == APIC_BASE {
                    let mut bus = LapicBus { lapic: &mut lapic, now, effect: &mut effect };
                    emulate(vm, &mut vcpu, gpa, &mut bus)
                } else if page == IOAPIC_BASE {
                    let mut platform = vm.platform.lock();
                    let mut bus = IoApicBus { platform: &mut platform, out: &mut out };
                    emulate(vm, &mut vcpu, gpa, &mut bus)
                } else {
                    counts.unbacked += 1;
                    if counts.unbacked <= LOG_LIMIT {
                        kprintln!(
                            "vcpu {index}: access to unbacked gpa={gpa:#x} ({:?}) at rip={rip:#x}: reads all ones",
                            f.access
                        );
                    }
                    emulate(vm, &mut vcpu, gpa, &mut Unbacked)
                };
                result?;
                match effect {
                    LapicEffect::Ipi(ipi) => send_ipi(vm, ipi, index),
                    LapicEffect::LevelEoi(v) => {
                        let again = vm.platform.lock().ioapic.eoi(v);
                        out.push(again);
                    }
                    LapicEffect::None => {}
                }
                for d in out.0.into_iter().flatten() {
                    deliver(vm, d, index);
                }
            }
            VcpuExit::Halt { len } => {
                vcpu.skip_instruction(len);
                counts.halts += 1;
                let if_set = vcpu.rflags() & sinter_svm::vcpu::RFLAGS_IF != 0;
                loop {
                    if vm.state() != VmState::Running {
                        break;
                    }
                    let next = lapic.poll_timer(rdtsc());
                    let _ = next;
                    let flags = mailbox.flags.load(core::sync::atomic::Ordering::Acquire);
                    if flags & FLAG_NMI != 0 || (if_set && lapic.deliverable().is_some()) {
                        break;
                    }
                    wait_on_host(|| {
                        vm.state() != VmState::Running
                            || mailbox.flags.load(core::sync::atomic::Ordering::Acquire) & FLAG_NMI != 0
                            || (if_set && lapic.deliverable().is_some())
                    });
                }
            }
            VcpuExit::Hypercall { len } => {
                // No hypercalls are offered: KVM's -KVM_ENOSYS.
                vcpu.set_gpr(Gpr::Rax, (-1000i64) as u64);
                vcpu.skip_instruction(len);
            }
            VcpuExit::Skip { len } => vcpu.skip_instruction(len),
            VcpuExit::InjectException(e) => {
                let _ = vcpu.inject_event(e);
            }
            VcpuExit::Shutdown => {
                kprintln!("vm: guest triple fault (shutdown) on vCPU {index} at rip={rip:#x}");
                vm.stop(VmState::Reset);
            }
            VcpuExit::Fatal { why, code } => {
                return Err(format!("fatal exit {code:#x}: {why} at rip={rip:#x}"));
            }
        }
    }
}

fn msr_context(vcpu: &SvmVcpu<'_, BareMetalRunner>, phys_bits: u8) -> MsrContext {
    let v = vcpu.vmcb();
    MsrContext {
        vmcb_efer: v.save.efer,
        cr0: v.save.cr0,
        host_tsc: rdtsc(),
        tsc_offset: v.control.tsc_offset,
        phys_addr_bits: phys_bits,
    }
}

fn guest_mode(vmcb: &Vmcb) -> CpuMode {
    if vmcb.save.cr0 & 1 == 0 {
        CpuMode::Real16
    } else if vmcb.save.cs.is_long() && vmcb.save.efer & (1 << 10) != 0 {
        CpuMode::Long64
    } else {
        CpuMode::Protected32
    }
}

/// Fetches the instruction at RIP through the guest's page tables and
/// emulates it against `bus`.
fn emulate(vm: &Vm, vcpu: &mut SvmVcpu<'_, BareMetalRunner>, gpa: u64, bus: &mut impl MmioBus) -> Result<(), String> {
    let s = &vcpu.vmcb().save;
    let paging = PagingState { cr0: s.cr0, cr3: s.cr3, cr4: s.cr4, efer: s.efer };
    let mode = guest_mode(vcpu.vmcb());
    let linear = if mode == CpuMode::Long64 { s.rip } else { s.cs.base.wrapping_add(s.rip) };
    let mut bytes = [0u8; 15];
    let mut n = 0;
    while n < bytes.len() {
        let at = linear.wrapping_add(n as u64);
        let Ok(phys) = translate(&paging, at, |g| vm.read_u64(g)) else { break };
        let in_page = (4096 - (at & 0xfff)) as usize;
        let take = in_page.min(bytes.len() - n);
        if !vm.read(phys, &mut bytes[n..n + take]) {
            break;
        }
        n += take;
    }
    if n == 0 {
        return Err(format!("cannot fetch the instruction at rip={:#x} (linear {linear:#x})", s.rip));
    }
    let mut state = GuestCpuState {
        gprs: Gpr::ALL.map(|r| vcpu.gpr(r)),
        rip: s.rip,
        rflags: s.rflags,
        mode,
        fs_base: s.fs.base,
        gs_base: s.gs.base,
    };
    let done = emulate_mmio(&mut state, &bytes[..n], gpa, bus).map_err(|e| format!("MMIO at gpa={gpa:#x}: {e}"))?;
    for r in Gpr::ALL {
        vcpu.set_gpr(r, state.gprs[r as usize]);
    }
    vcpu.set_rflags(state.rflags);
    vcpu.set_rip(done.next_rip);
    // The instruction completed: an STI/MOV SS shadow is over.
    vcpu.vmcb_mut().control.int_state &= !1;
    Ok(())
}

struct LapicBus<'a> {
    lapic: &'a mut Lapic,
    now: u64,
    effect: &'a mut LapicEffect,
}

impl MmioBus for LapicBus<'_> {
    fn read(&mut self, gpa: u64, size: AccessSize) -> Result<u64, BusError> {
        let offset = gpa - APIC_BASE;
        if size != AccessSize::Dword || !offset.is_multiple_of(16) {
            return Err(BusError::Refused);
        }
        Ok(u64::from(self.lapic.read(offset, self.now)))
    }

    fn write(&mut self, gpa: u64, size: AccessSize, value: u64) -> Result<(), BusError> {
        let offset = gpa - APIC_BASE;
        if size != AccessSize::Dword || !offset.is_multiple_of(16) {
            return Err(BusError::Refused);
        }
        *self.effect = self.lapic.write(offset, value as u32, self.now);
        Ok(())
    }
}

struct IoApicBus<'a, 'p> {
    platform: &'a mut spin::MutexGuard<'p, super::devices::Platform>,
    out: &'a mut Deliveries,
}

impl MmioBus for IoApicBus<'_, '_> {
    fn read(&mut self, gpa: u64, size: AccessSize) -> Result<u64, BusError> {
        if size != AccessSize::Dword {
            return Err(BusError::Refused);
        }
        Ok(u64::from(self.platform.ioapic_read(gpa - IOAPIC_BASE)))
    }

    fn write(&mut self, gpa: u64, size: AccessSize, value: u64) -> Result<(), BusError> {
        if size != AccessSize::Dword {
            return Err(BusError::Refused);
        }
        self.platform.ioapic_write(gpa - IOAPIC_BASE, value as u32, self.out);
        Ok(())
    }
}

/// Guest-physical space with nothing behind it.
struct Unbacked;

impl MmioBus for Unbacked {
    fn read(&mut self, _gpa: u64, size: AccessSize) -> Result<u64, BusError> {
        Ok(size.mask())
    }

    fn write(&mut self, _gpa: u64, _size: AccessSize, _value: u64) -> Result<(), BusError> {
        Ok(())
    }
}

/// vCPU 0: the kernel's 64-bit entry state from the boot protocol.
fn init_boot_state(vm: &Vm, vmcb: &mut Vmcb) {
    let b = &vm.boot;
    let seg = |s: sinter_linux_boot::SegmentState| VmcbSegment {
        selector: s.selector,
        attrib: s.attributes,
        limit: s.limit,
        base: s.base,
    };
    let sv = &mut vmcb.save;
    sv.cs = seg(b.cs);
    for s in [&mut sv.ds, &mut sv.es, &mut sv.ss, &mut sv.fs, &mut sv.gs] {
        *s = seg(b.data);
    }
    sv.gdtr = VmcbSegment { selector: 0, attrib: 0, limit: u32::from(b.gdt_limit), base: b.gdt_base };
    sv.idtr = VmcbSegment::default();
    sv.ldtr = VmcbSegment { selector: 0, attrib: 0x82, limit: 0, base: 0 };
    sv.tr = VmcbSegment { selector: 0, attrib: 0x8b, limit: 0x67, base: 0 };
    sv.cpl = 0;
    sv.cr0 = b.cr0;
    sv.cr3 = b.cr3;
    sv.cr4 = b.cr4;
    sv.efer = b.efer;
    sv.dr6 = 0xffff_0ff0;
    sv.dr7 = 0x400;
    sv.rflags = b.rflags;
    sv.rip = b.rip;
    sv.rsp = b.rsp;
    sv.rax = 0;
}

/// An application processor after INIT + SIPI: real mode at `vector << 12`.
fn init_sipi_state(vmcb: &mut Vmcb, vector: u8) {
    let sv = &mut vmcb.save;
    let base = u64::from(vector) << 12;
    sv.cs = VmcbSegment { selector: u16::from(vector) << 8, attrib: 0x9b, limit: 0xffff, base };
    for s in [&mut sv.ds, &mut sv.es, &mut sv.ss, &mut sv.fs, &mut sv.gs] {
        *s = VmcbSegment { selector: 0, attrib: 0x93, limit: 0xffff, base: 0 };
    }
    sv.gdtr = VmcbSegment { selector: 0, attrib: 0, limit: 0xffff, base: 0 };
    sv.idtr = VmcbSegment { selector: 0, attrib: 0, limit: 0xffff, base: 0 };
    sv.ldtr = VmcbSegment { selector: 0, attrib: 0x82, limit: 0xffff, base: 0 };
    sv.tr = VmcbSegment { selector: 0, attrib: 0x8b, limit: 0xffff, base: 0 };
    sv.cpl = 0;
    sv.cr0 = 0x10; // ET
    sv.cr3 = 0;
    sv.cr4 = 0;
    sv.efer = 0;
    sv.dr6 = 0xffff_0ff0;
    sv.dr7 = 0x400;
    sv.rflags = 2;
    sv.rip = 0;
    sv.rsp = 0;
    sv.rax = 0;
}
