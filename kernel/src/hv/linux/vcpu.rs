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
//!
//! Every exit is counted by reason (`sinter_svm::exit::ExitCounts`: plain
//! integers, nothing logged on the way); when the VM stops each vCPU prints
//! them as one `bench vm-exits: vcpu=N run_ms=.. halted_ms=.. injected=..
//! timer_events=.. total=.. ioio=.. ...` line, which `cargo xtask bench
//! --only guest` reads.

use alloc::format;
use alloc::string::String;
use sinter_config::UnbackedMmio;

use sinter_mmio_emulator::walk::{translate, PagingState};
use sinter_mmio_emulator::{emulate_mmio, AccessSize, BusError, CpuMode, GuestCpuState, MmioBus};
use sinter_svm::cpuid::{CpuModel, CpuidDynamic, GuestCpuid, HostFeatures, Topology};
use sinter_svm::exit::{ExitCounts, ExitReason, IoDirection};
use sinter_svm::msr::{MsrContext, MsrWrite, VcpuMsrs};
use sinter_svm::pvclock::{self, TimeScale};
use sinter_svm::vcpu::{Event, Gpr, SvmVcpu, Vcpu, VcpuExit};
use sinter_svm::vmcb::{VmcbSegment, VmcbSetup};
use sinter_svm::{HostPhysAddr, Vmcb};
use x86_64::registers::model_specific::Msr;

use sinter_guest_devices::{IoOutcome, LapicEffect, LocalApic, PowerEvent, Received};

use super::platform::{route, route_all};
use super::vm::{Vm, VmState};
use crate::arch::time::rdtsc;
use crate::hv::svm::BareMetalRunner;
use crate::hv::{guest_mode, HostCpuid};
use crate::kprintln;
use crate::memory::{self, phys_to_virt};

const MSR_TSC_DEADLINE: u32 = sinter_guest_devices::MSR_TSC_DEADLINE;
/// The guest's xAPIC page (never mapped: every access faults to emulation).
const APIC_BASE: u64 = sinter_guest_acpi::LOCAL_APIC_ADDRESS as u64;
const MSR_TSC_AUX: u32 = 0xc000_0103;
/// Host tick on vCPU cores: bounds how late a guest timer can fire.
const HOST_TICK_HZ: u64 = 1000;
/// Log at most this many lines per kind of guest oddity.
const LOG_LIMIT: u32 = 12;

#[derive(Default)]
struct Counts {
    /// Exits by reason (printed as `bench vm-exits:` when the VM stops).
    exits: ExitCounts,
    /// TSC ticks spent waiting on the host in HLT.
    halted_ticks: u64,
    msr_faults: u32,
    msr_ignored: u32,
    unbacked: u32,
    unhandled_ports: u32,
    injected: u64,
    halts: u64,
}

/// The guest model: Sinter's EPYC-class vCPU with kvmclock (so Linux
/// knows the TSC rate without PIT calibration), the TSC-deadline timer,
/// and no XSAVE (the world switch does not load the guest's XCR0 yet).
pub fn cpu_model(tsc_hz: u64, apic_bus_hz: u64) -> CpuModel {
    CpuModel {
        tsc_khz: (tsc_hz / 1000) as u32,
        apic_bus_khz: (apic_bus_hz / 1000) as u32,
        kvm_features: Some(pvclock::KVM_FEATURE_CLOCKSOURCE2 | pvclock::KVM_FEATURE_CLOCKSOURCE_STABLE_BIT),
        tsc_deadline: true,
        xsave: false,
        ..CpuModel::SINTER_EPYC
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
    let inbox = &vm.inboxes[index];
    let scale = TimeScale::for_tsc_hz(vm.tsc_hz).ok_or("TSC rate unknown")?;
    // Device time: nanoseconds since the VM was built, from the TSC.
    let now_ns = || scale.ticks_to_ns(rdtsc().wrapping_sub(vm.tsc_base));
    let mut lapic = LocalApic::new(index as u8, index == 0, vm.lapic_config);
    let mut sipi_vector = None;
    if index != 0 {
        // An application processor waits for INIT, then a start-up IPI.
        let mut got_init = false;
        while sipi_vector.is_none() {
            if vm.state() != VmState::Running {
                return Ok(());
            }
            for msg in inbox.drain() {
                match lapic.receive(&msg) {
                    Received::Init => got_init = true,
                    Received::StartUp { vector } if got_init => sipi_vector = Some(vector),
                    _ => {}
                }
            }
            publish_target(vm, index, &lapic);
            if sipi_vector.is_none() {
                wait_on_host(|| vm.state() != VmState::Running || inbox.pending());
            }
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
        GuestCpuid::build(&cpu_model(vm.tsc_hz, vm.lapic_config.bus_hz), &host, &topology, index as u16)
            .map_err(|e| format!("CPUID model: {e:?}"))?,
    );
    let phys_bits = cpuid.lookup(0x8000_0008, 0, &CpuidDynamic::RESET).eax as u8;
    let mut msrs = VcpuMsrs::new(index == 0);
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
    let mut nmi_pending = false;
    kprintln!(
        "vcpu {index}: running on core {} from rip={:#x}{}",
        crate::exec::core_index(),
        vcpu.rip(),
        if let Some(v) = sipi_vector { format!(" (SIPI vector {v:#x})") } else { String::new() }
    );

    let started = rdtsc();
    loop {
        if vm.state() != VmState::Running {
            kprintln!(
                "vcpu {index}: stopped after {} exits ({} interrupts injected, {} HLTs, {} timer events)",
                counts.exits.runs(),
                counts.injected,
                counts.halts,
                lapic.stats().timer_fires
            );
            let ms = |ticks: u64| scale.ticks_to_ns(ticks) / 1_000_000;
            kprintln!(
                "bench vm-exits: vcpu={index} run_ms={} halted_ms={} injected={} timer_events={} {}",
                ms(rdtsc().wrapping_sub(started)),
                ms(counts.halted_ticks),
                counts.injected,
                lapic.stats().timer_fires,
                counts.exits.fields()
            );
            return Ok(());
        }
        take_messages(index, inbox, &mut lapic, &mut nmi_pending);
        lapic.tick(now_ns(), rdtsc());
        if index == 0 {
            tick_platform(vm, now_ns());
        }
        if vcpu.pending_event().is_none() {
            if nmi_pending {
                nmi_pending = false;
                let _ = vcpu.inject_event(Event::Nmi);
            } else if let Some(v) = lapic.pending_interrupt() {
                if vcpu.interrupts_open() {
                    if vcpu.inject_event(Event::ExternalInterrupt(v)).is_ok() {
                        lapic.ack(v);
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

        counts.exits.vmrun();
        let exit =
            vcpu.run().map_err(|e| format!("exit decode: {e:?} (exit code {:#x})", vcpu.vmcb().control.exit_code))?;
        let rip = vcpu.rip();
        // Nested page faults are classified below, by what the address is.
        let mut reason = vcpu.last_svm_exit().and_then(|e| ExitReason::of(&e));
        // Without nrip-save, CPUID/RDMSR/WRMSR/HLT/... are stepped over by
        // their canonical length: check the guest's bytes are that form.
        if let Some(expected) = vcpu.last_svm_exit().and_then(|e| e.canonical_encoding()) {
            let mut bytes = [0u8; 3];
            let n = fetch_at_rip(vm, vcpu.vmcb(), &mut bytes[..expected.len()]);
            if bytes[..n] != *expected {
                return Err(format!(
                    "exit {exit:?} at rip={rip:#x}: guest bytes {:02x?} are not the canonical form (prefixed forms are not emulated)",
                    &bytes[..n]
                ));
            }
        }
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
                    MSR_TSC_DEADLINE => Some(lapic.read_tsc_deadline()),
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
                        lapic.write_tsc_deadline(value, rdtsc());
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
                            Ok(MsrWrite::ApicBase { .. }) => {
                                lapic.write_apic_base_msr(value);
                                publish_target(vm, index, &lapic);
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
                let outcome = {
                    let mut platform = vm.platform.lock();
                    match io.direction {
                        IoDirection::In => {
                            let o = platform.port_read(io.port, size, now_ns());
                            let v = o.value & mask;
                            let rax = vcpu.gpr(Gpr::Rax);
                            vcpu.set_gpr(Gpr::Rax, if size == 4 { v } else { (rax & !mask) | v });
                            o
                        }
                        IoDirection::Out => {
                            let v = (vcpu.gpr(Gpr::Rax) & mask) as u32;
                            platform.port_write(io.port, size, v, now_ns())
                        }
                    }
                };
                if !outcome.handled {
                    counts.unhandled_ports += 1;
                    if counts.unhandled_ports <= LOG_LIMIT {
                        kprintln!(
                            "vcpu {index}: port {:?} {:#x} size {size}: no device (all ones / dropped)",
                            io.direction,
                            io.port
                        );
                    }
                }
                finish_io(vm, index, &outcome, &format!("port {:#x}", io.port));
                vcpu.set_rip(io.next_rip);
            }
            VcpuExit::GuestMemoryFault(f) => {
                let gpa = f.gpa.get();
                let page = gpa & !0xfff;
                if vm.gpa_to_hpa(gpa).is_some() {
                    return Err(format!("nested page fault on mapped guest RAM gpa={gpa:#x} ({f:?}) at rip={rip:#x}"));
                }
                let now = now_ns();
                let mut effect = LapicEffect::None;
                let mut outcome = None;
                let result = if page == APIC_BASE {
                    reason = Some(ExitReason::NpfLapic);
                    let mut bus = LapicBus { lapic: &mut lapic, now, effect: &mut effect };
                    emulate(vm, &mut vcpu, gpa, &mut bus)
                } else if vm.platform.lock().claims_mmio(gpa) {
                    reason = Some(ExitReason::NpfIoapic);
                    let mut bus = PlatformMmio { vm, now, outcome: &mut outcome };
                    emulate(vm, &mut vcpu, gpa, &mut bus)
                } else if vm.unbacked_mmio == UnbackedMmio::Stop {
                    return Err(format!(
                        "access to unbacked guest-physical address gpa={gpa:#x} ({:?}{}) at rip={rip:#x}: \
                         neither RAM nor a device is there ([hypervisor] unbacked_mmio = \"stop\")",
                        f.access,
                        if f.present { ", present" } else { "" }
                    ));
                } else {
                    reason = Some(ExitReason::NpfUnbacked);
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
                if page == APIC_BASE {
                    publish_target(vm, index, &lapic);
                }
                match effect {
                    LapicEffect::Ipi(ipi) => route(vm, ipi, Some(index)),
                    LapicEffect::Eoi { vector, level_triggered: true } => {
                        let o = vm.platform.lock().eoi(vector, now);
                        finish_io(vm, index, &o, "EOI");
                    }
                    LapicEffect::Eoi { .. } | LapicEffect::None => {}
                }
                if let Some(o) = outcome {
                    finish_io(vm, index, &o, "I/O APIC");
                }
            }
            VcpuExit::Halt { len } => {
                vcpu.skip_instruction(len);
                counts.halts += 1;
                let if_set = vcpu.rflags() & sinter_svm::vcpu::RFLAGS_IF != 0;
                let halted = rdtsc();
                loop {
                    if vm.state() != VmState::Running {
                        break;
                    }
                    take_messages(index, inbox, &mut lapic, &mut nmi_pending);
                    lapic.tick(now_ns(), rdtsc());
                    if index == 0 {
                        tick_platform(vm, now_ns());
                    }
                    if nmi_pending || (if_set && lapic.pending_interrupt().is_some()) {
                        break;
                    }
                    wait_on_host(|| vm.state() != VmState::Running || inbox.pending());
                }
                counts.halted_ticks += rdtsc().wrapping_sub(halted);
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
        counts.exits.record(reason.unwrap_or(ExitReason::Other));
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

/// Copies the guest's bytes at CS:RIP into `buf`, walking the guest's own
/// page tables; returns how many could be read (0 if none).
fn fetch_at_rip(vm: &Vm, vmcb: &Vmcb, buf: &mut [u8]) -> usize {
    let s = &vmcb.save;
    let paging = PagingState { cr0: s.cr0, cr3: s.cr3, cr4: s.cr4, efer: s.efer };
    let linear = if guest_mode(vmcb) == CpuMode::Long64 { s.rip } else { s.cs.base.wrapping_add(s.rip) };
    let mut n = 0;
    while n < buf.len() {
        let at = linear.wrapping_add(n as u64);
        let Ok(phys) = translate(&paging, at, |g| vm.read_u64(g)) else { break };
        let in_page = (4096 - (at & 0xfff)) as usize;
        let take = in_page.min(buf.len() - n);
        if !vm.read(phys, &mut buf[n..n + take]) {
            break;
        }
        n += take;
    }
    n
}

/// Fetches the instruction at RIP through the guest's page tables and
/// emulates it against `bus`.
fn emulate(vm: &Vm, vcpu: &mut SvmVcpu<'_, BareMetalRunner>, gpa: u64, bus: &mut impl MmioBus) -> Result<(), String> {
    let mut bytes = [0u8; 15];
    let n = fetch_at_rip(vm, vcpu.vmcb(), &mut bytes);
    let s = &vcpu.vmcb().save;
    let mode = guest_mode(vcpu.vmcb());
    if n == 0 {
        return Err(format!("cannot fetch the instruction at rip={:#x}", s.rip));
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
    lapic: &'a mut LocalApic,
    now: u64,
    effect: &'a mut LapicEffect,
}

impl MmioBus for LapicBus<'_> {
    fn read(&mut self, gpa: u64, size: AccessSize) -> Result<u64, BusError> {
        Ok(self.lapic.read(gpa - APIC_BASE, size.bytes(), self.now))
    }

    fn write(&mut self, gpa: u64, size: AccessSize, value: u64) -> Result<(), BusError> {
        *self.effect = self.lapic.write(gpa - APIC_BASE, size.bytes(), value, self.now);
        Ok(())
    }
}

/// The platform's MMIO (the I/O APIC page).
struct PlatformMmio<'a> {
    vm: &'a Vm,
    now: u64,
    outcome: &'a mut Option<IoOutcome>,
}

impl MmioBus for PlatformMmio<'_> {
    fn read(&mut self, gpa: u64, size: AccessSize) -> Result<u64, BusError> {
        let o = self.vm.platform.lock().mmio_read(gpa, size.bytes(), self.now);
        let value = o.value;
        *self.outcome = Some(o);
        Ok(value)
    }

    fn write(&mut self, gpa: u64, size: AccessSize, value: u64) -> Result<(), BusError> {
        *self.outcome = Some(self.vm.platform.lock().mmio_write(gpa, size.bytes(), value, self.now));
        Ok(())
    }
}

/// Routes a device outcome's interrupts and acts on a power event.
fn finish_io(vm: &Vm, index: usize, outcome: &IoOutcome, what: &str) {
    route_all(vm, &outcome.interrupts, None);
    match outcome.power {
        Some(PowerEvent::Off { .. }) => {
            kprintln!("vm: guest requested ACPI S5 (power off) on vCPU {index}");
            vm.stop(VmState::PoweredOff);
        }
        Some(PowerEvent::Reset) => {
            kprintln!("vm: guest requested a reset ({what}) on vCPU {index}");
            vm.stop(VmState::Reset);
        }
        None => {}
    }
}

/// Runs the platform's timers (PIT, PM timer overflow) when one is due.
fn tick_platform(vm: &Vm, now: u64) {
    let mut platform = vm.platform.lock();
    if platform.next_deadline().is_some_and(|d| now >= d) {
        let o = platform.tick(now);
        drop(platform);
        finish_io(vm, 0, &o, "timer");
    }
}

/// Hands this vCPU's waiting interrupt messages to its APIC.
fn take_messages(index: usize, inbox: &super::platform::Inbox, lapic: &mut LocalApic, nmi: &mut bool) {
    for msg in inbox.drain() {
        match lapic.receive(&msg) {
            Received::Nmi => *nmi = true,
            Received::Init | Received::StartUp { .. } => {
                kprintln!("vcpu {index}: INIT/SIPI to a running vCPU ignored");
            }
            _ => {}
        }
    }
}

fn publish_target(vm: &Vm, index: usize, lapic: &LocalApic) {
    if let Some(t) = vm.targets.0.lock().get_mut(index) {
        *t = lapic.target();
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
