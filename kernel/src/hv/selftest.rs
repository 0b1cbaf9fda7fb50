//! `[debug] selftests = ["svm-guest"]` / `["svm-guest-triple-fault"]`: run a
//! test guest (`guest.rs`) under VMRUN with nested paging on the boot core
//! and handle its exits with the `sinter-svm` logic and the MMIO emulator.
//!
//! Prints a line for the first exit of each kind it handles (and for every
//! MMIO access), the guest's console output line by line, and finally
//! `selftest svm-guest: ok: exits ioio=N cpuid=N npf=N mmio=N vmmcall=N hlt=1`
//! (or `selftest NAME: FAILED: why`). A guest that triple-faults is
//! reported as `guest error: shutdown (triple fault) at rip=...` and its
//! vCPU stops; the node goes on.
//!
//! `["svm-npf-bench"]` runs the bench guest instead and prints
//! `bench svm-npf: iterations=N null-exit=C ram-npf=C mapped-write=C
//! mmio-read=C` (guest TSC cycles per operation) for `cargo xtask bench`.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use sinter_config::ClusterConfig;
use sinter_mmio_emulator::{emulate_mmio, AccessSize, BusError, GuestCpuState, MmioBus};
use sinter_svm::cpuid::{CpuModel, CpuidDynamic, GuestCpuid, HostFeatures, Topology};
use sinter_svm::exit::{IoDirection, IoSize};
use sinter_svm::npt::{NestedPageTable, NptPerm, PageSize};
use sinter_svm::vcpu::{Gpr, SvmVcpu, Vcpu, VcpuExit};
use sinter_svm::vmcb::{VmcbSegment, VmcbSetup};
use sinter_svm::{GuestPhysAddr, HostPhysAddr, Vmcb};

use super::guest::{self, TestGuest};
use super::npt::DirectMapTables;
use super::svm::{self, BareMetalRunner};
use super::{guest_mode, HostCpuid};
use crate::exec::{self, ServiceSpec};
use crate::kprintln;
use crate::memory::{self, phys_to_virt};

/// Queues the requested SVM self-tests on `core` (the triple fault first,
/// so a run asking for both shows the hypervisor surviving it).
pub fn spawn_requested(config: &ClusterConfig, core: usize) {
    if config.debug.wants("svm-guest-triple-fault") {
        exec::spawn_on(core, ServiceSpec { name: "selftest-svm-triple-fault", entry: service, arg: 1 });
    }
    if config.debug.wants("svm-guest") {
        exec::spawn_on(core, ServiceSpec { name: "selftest-svm-guest", entry: service, arg: 0 });
    }
    if config.debug.wants("svm-npf-bench") {
        exec::spawn_on(core, ServiceSpec { name: "selftest-svm-npf-bench", entry: service, arg: 2 });
    }
}

fn service(arg: usize, _generation: u32) {
    let (guest, name) = match arg {
        1 => (TestGuest::TripleFault, "svm-guest-triple-fault"),
        2 => (TestGuest::NpfBench, "svm-npf-bench"),
        _ => (TestGuest::Hello, "svm-guest"),
    };
    match run(guest, name) {
        Ok(line) => kprintln!("selftest {name}: ok: {line}"),
        Err(why) => kprintln!("selftest {name}: FAILED: {why}"),
    }
}

/// The fake device at `guest::MMIO_GPA`: a read-only magic register at
/// +0x10 and a write-only command register at +0.
#[derive(Default)]
struct FakeDevice {
    command: Option<u64>,
}

const MAGIC: u64 = 0x5EED_F00D;

impl MmioBus for FakeDevice {
    fn read(&mut self, gpa: u64, size: AccessSize) -> Result<u64, BusError> {
        match (gpa.checked_sub(guest::MMIO_GPA), size) {
            (Some(0x10), AccessSize::Dword) => Ok(MAGIC),
            _ => Err(BusError::Refused),
        }
    }

    fn write(&mut self, gpa: u64, size: AccessSize, value: u64) -> Result<(), BusError> {
        match (gpa.checked_sub(guest::MMIO_GPA), size) {
            (Some(0), AccessSize::Dword) => {
                self.command = Some(value);
                Ok(())
            }
            _ => Err(BusError::Refused),
        }
    }
}

/// Frames the test VM owns; all returned on drop.
#[derive(Default)]
struct OwnedFrames {
    small: Vec<u64>,
    large: Vec<u64>,
}

impl OwnedFrames {
    fn small(&mut self) -> Result<u64, String> {
        let frame = memory::alloc_frame().map_err(|e| format!("out of frames: {e:?}"))?;
        self.small.push(frame);
        Ok(frame)
    }
}

impl Drop for OwnedFrames {
    fn drop(&mut self) {
        for &f in &self.small {
            let _ = memory::free_frame(f);
        }
        for &f in &self.large {
            let _ = memory::free_frame_2m(f);
        }
    }
}

/// Reads guest-physical memory through the nested table, stopping at the
/// first byte that is not mapped; returns how many bytes were read.
fn read_guest(npt: &NestedPageTable<DirectMapTables>, gpa: u64, buf: &mut [u8]) -> usize {
    for (i, slot) in buf.iter_mut().enumerate() {
        let Some(t) = npt.translate(GuestPhysAddr(gpa.wrapping_add(i as u64))) else { return i };
        // SAFETY: `t.hpa` lies in a frame this VM mapped for the guest (a
        // frame from the allocator), reached through the direct map; a
        // byte read has no alignment requirement.
        *slot = unsafe { core::ptr::read_volatile(phys_to_virt(t.hpa.get()) as *const u8) };
    }
    buf.len()
}

#[derive(Default)]
struct Counts {
    ioio: u32,
    cpuid: u32,
    npf: u32,
    mmio: u32,
    vmmcall: u32,
    hlt: u32,
    host: u32,
    total: u32,
}

/// Sets up the guest's registers: 32-bit protected mode, flat 4 GiB
/// segments, paging off, interrupts off, an IDT of limit 0.
fn init_guest_state(vmcb: &mut Vmcb) {
    let code = VmcbSegment { selector: 0x08, attrib: 0xC9B, limit: 0xFFFF_FFFF, base: 0 };
    let data = VmcbSegment { selector: 0x10, attrib: 0xC93, limit: 0xFFFF_FFFF, base: 0 };
    let s = &mut vmcb.save;
    s.cs = code;
    for seg in [&mut s.ds, &mut s.es, &mut s.ss, &mut s.fs, &mut s.gs] {
        *seg = data;
    }
    s.gdtr = VmcbSegment::default();
    s.idtr = VmcbSegment::default();
    s.ldtr = VmcbSegment { selector: 0, attrib: 0x82, limit: 0, base: 0 };
    s.tr = VmcbSegment { selector: 0x18, attrib: 0x8B, limit: 0x67, base: 0 };
    s.cpl = 0;
    s.cr0 = 0x11; // PE | ET
    s.cr3 = 0;
    s.cr4 = 0;
    s.efer = 0;
    s.dr6 = 0xFFFF_0FF0;
    s.dr7 = 0x400;
    s.rflags = 0x2;
    s.rip = guest::CODE_GPA;
    s.rsp = guest::STACK_TOP_GPA;
    s.rax = 0;
    s.g_pat = 0x0007_0406_0007_0406;
}

const MAX_EXITS: u32 = 10_000;

/// Guest-physical RAM mapped on its first touch: one page for `hello`,
/// one per iteration for the bench.
fn on_demand_ram(which: TestGuest) -> core::ops::Range<u64> {
    let pages = if which == TestGuest::NpfBench { guest::BENCH_ITERATIONS } else { 1 };
    guest::PROBE_GPA..guest::PROBE_GPA + pages * 4096
}

fn run(which: TestGuest, name: &str) -> Result<String, String> {
    let info = svm::probe().map_err(|e| format!("SVM unavailable: {e:?}"))?;
    kprintln!(
        "{name}: SVM revision {} asids={} nrip_save={} decode_assists={} vmcb_clean={} flush_by_asid={}",
        info.revision,
        info.asids,
        info.nrip_save(),
        info.decode_assists(),
        info.vmcb_clean(),
        info.flush_by_asid()
    );
    let mut frames = OwnedFrames::default();

    // IOPM (12 KiB) and MSRPM (8 KiB) need contiguous frames: one 2 MiB run.
    let maps = memory::alloc_frame_2m().map_err(|e| format!("no 2 MiB frame for the permission maps: {e:?}"))?;
    frames.large.push(maps);
    let iopm = sinter_svm::iopm::IoPermissionMap::intercept_all();
    let msrpm = sinter_svm::msr::permission_map();
    let msrpm_phys = maps + 0x3000;
    // SAFETY: `maps` is a fresh 2 MiB frame owned by this VM, reached
    // through the direct map; both maps fit in it without overlapping
    // (12 KiB at 0, 8 KiB at 0x3000).
    unsafe { core::ptr::copy_nonoverlapping(iopm.bytes().as_ptr(), phys_to_virt(maps) as *mut u8, iopm.bytes().len()) };
    let msrpm_bytes = msrpm.bytes();
    // SAFETY: as above.
    unsafe {
        core::ptr::copy_nonoverlapping(msrpm_bytes.as_ptr(), phys_to_virt(msrpm_phys) as *mut u8, msrpm_bytes.len())
    };

    let mut npt = NestedPageTable::new(DirectMapTables::default()).map_err(|e| format!("nested table: {e}"))?;
    let result = run_with_table(which, name, &mut frames, &mut npt, maps, msrpm_phys);
    for &table in npt.memory().frames() {
        let _ = memory::free_frame(table);
    }
    result
}

fn run_with_table(
    which: TestGuest,
    name: &str,
    frames: &mut OwnedFrames,
    npt: &mut NestedPageTable<DirectMapTables>,
    iopm_phys: u64,
    msrpm_phys: u64,
) -> Result<String, String> {
    // Guest RAM [0, RAM_BYTES), one 4 KiB frame per page, the code at CODE_GPA.
    for gpa in (0..guest::RAM_BYTES).step_by(4096) {
        let frame = frames.small()?;
        npt.map(GuestPhysAddr(gpa), HostPhysAddr(frame), PageSize::Size4K, NptPerm::READ_WRITE_EXECUTE)
            .map_err(|e| format!("mapping guest RAM: {e}"))?;
    }
    let code = which.code();
    let code_hpa = npt.translate(GuestPhysAddr(guest::CODE_GPA)).ok_or("code page not mapped")?.hpa.get();
    if code.len() > 4096 {
        return Err(format!("guest code is {} bytes", code.len()));
    }
    // SAFETY: `code_hpa` is the start of a 4 KiB guest RAM frame owned by
    // this VM; `code` (≤ 4 KiB, checked) is kernel rodata, no overlap.
    unsafe { core::ptr::copy_nonoverlapping(code.as_ptr(), phys_to_virt(code_hpa) as *mut u8, code.len()) };

    let vmcb_phys = frames.small()?;
    // SAFETY: a zeroed, 4 KiB-aligned frame owned by this VM (freed only
    // when `frames` drops, after the vCPU below is gone); all-zero bytes
    // are a valid `Vmcb`, and this is the only reference to it.
    let vmcb = unsafe { &mut *(phys_to_virt(vmcb_phys) as *mut Vmcb) };
    init_guest_state(vmcb);
    vmcb.configure(&VmcbSetup {
        iopm: HostPhysAddr(iopm_phys),
        msrpm: HostPhysAddr(msrpm_phys),
        nested_cr3: npt.root(),
        asid: 1,
        tsc_offset: 0,
    })
    .map_err(|e| format!("VMCB: {e:?}"))?;

    let host = HostFeatures::read(&HostCpuid);
    let topology = Topology::new(&[1]).map_err(|e| format!("topology: {e:?}"))?;
    let cpuid = Box::new(
        GuestCpuid::build(&CpuModel::SINTER_EPYC, &host, &topology, 0).map_err(|e| format!("CPUID model: {e:?}"))?,
    );

    let runner = BareMetalRunner::new(vmcb_phys).map_err(|e| format!("SVM: {e:?}"))?;
    let mut vcpu = SvmVcpu::new(vmcb, runner);
    vcpu.request_tlb_flush();
    kprintln!(
        "{name}: guest loaded: {} bytes of 32-bit code at {:#x}, {} KiB RAM, ASID 1, nested CR3 {:#x}",
        code.len(),
        guest::CODE_GPA,
        guest::RAM_BYTES / 1024,
        npt.root().get()
    );

    let bench = which == TestGuest::NpfBench;
    let max_exits = if bench { MAX_EXITS + 4 * guest::BENCH_ITERATIONS as u32 } else { MAX_EXITS };
    let mut timings = [None::<u64>; guest::BENCH_PHASES.len()];
    let on_demand = on_demand_ram(which);
    let mut device = FakeDevice::default();
    let mut counts = Counts::default();
    let mut console = String::new();
    let mut reported = false;
    loop {
        if counts.total >= max_exits {
            return Err(format!("no HLT after {max_exits} exits"));
        }
        counts.total += 1;
        let exit =
            vcpu.run().map_err(|e| format!("exit decode: {e:?} (exit code {:#x})", vcpu.vmcb().control.exit_code))?;
        let rip = vcpu.rip();
        // Without nrip-save, instructions are stepped over by their
        // canonical length: check the guest's bytes really are that form.
        if let Some(expected) = vcpu.last_svm_exit().and_then(|e| e.canonical_encoding()) {
            let mut bytes = [0u8; 3];
            let n = read_guest(npt, rip, &mut bytes[..expected.len()]);
            if bytes[..n] != *expected {
                return Err(format!(
                    "exit {exit:?} at rip={rip:#x}: guest bytes {:02x?} are not the canonical form",
                    &bytes[..n]
                ));
            }
        }
        match exit {
            VcpuExit::HostEvent => counts.host += 1,
            VcpuExit::PortIo(io) => {
                if io.port != 0x3f8 || io.direction != IoDirection::Out || io.string || io.size != IoSize::Byte {
                    return Err(format!("unexpected port access {io:?} at rip={rip:#x}"));
                }
                let byte = vcpu.gpr(Gpr::Rax) as u8;
                if counts.ioio == 0 {
                    kprintln!(
                        "{name}: exit ioio: out port={:#x} size=1 at rip={rip:#x}, next rip={:#x} (EXITINFO2) -> node console",
                        io.port,
                        io.next_rip
                    );
                }
                counts.ioio += 1;
                if byte == b'\n' {
                    kprintln!("guest console: {console}");
                    console.clear();
                } else {
                    console.push(char::from(byte));
                }
                vcpu.set_rip(io.next_rip);
            }
            VcpuExit::Cpuid { leaf, subleaf, len } => {
                let cr4 = vcpu.control_registers().cr4;
                let r = cpuid.lookup(leaf, subleaf, &CpuidDynamic { cr4, ..CpuidDynamic::RESET });
                vcpu.set_gpr(Gpr::Rax, u64::from(r.eax));
                vcpu.set_gpr(Gpr::Rbx, u64::from(r.ebx));
                vcpu.set_gpr(Gpr::Rcx, u64::from(r.ecx));
                vcpu.set_gpr(Gpr::Rdx, u64::from(r.edx));
                if counts.cpuid == 0 {
                    let mut vendor = [0u8; 12];
                    vendor[..4].copy_from_slice(&r.ebx.to_le_bytes());
                    vendor[4..8].copy_from_slice(&r.edx.to_le_bytes());
                    vendor[8..].copy_from_slice(&r.ecx.to_le_bytes());
                    kprintln!(
                        "{name}: exit cpuid: leaf={leaf:#x} subleaf={subleaf:#x} at rip={rip:#x} -> eax={:#x} vendor \"{}\" (sinter_svm::cpuid)",
                        r.eax,
                        core::str::from_utf8(&vendor).unwrap_or("?")
                    );
                }
                counts.cpuid += 1;
                vcpu.skip_instruction(len);
            }
            VcpuExit::GuestMemoryFault(f) => {
                let gpa = f.gpa.get();
                if gpa & !0xfff == guest::MMIO_GPA {
                    let mut state = GuestCpuState {
                        gprs: Gpr::ALL.map(|r| vcpu.gpr(r)),
                        rip,
                        rflags: vcpu.rflags(),
                        mode: guest_mode(vcpu.vmcb()),
                        fs_base: vcpu.vmcb().save.fs.base,
                        gs_base: vcpu.vmcb().save.gs.base,
                    };
                    let mut bytes = [0u8; 15];
                    let n = read_guest(npt, rip, &mut bytes);
                    let done = emulate_mmio(&mut state, &bytes[..n], gpa, &mut device)
                        .map_err(|e| format!("MMIO emulation at gpa={gpa:#x}: {e}"))?;
                    for r in Gpr::ALL {
                        vcpu.set_gpr(r, state.gprs[r as usize]);
                    }
                    vcpu.set_rflags(state.rflags);
                    vcpu.set_rip(done.next_rip);
                    let a = done.access;
                    counts.mmio += 1;
                    if bench {
                        continue;
                    }
                    kprintln!(
                        "{name}: exit npf (mmio): gpa={gpa:#x} {:?} at rip={rip:#x} -> emulated {:?} size={} read={:x?} written={:x?}, next rip={:#x}",
                        f.access,
                        a.kind,
                        a.size.bytes(),
                        a.read,
                        a.written,
                        done.next_rip
                    );
                } else if on_demand.contains(&gpa) && !f.present {
                    let frame = frames.small()?;
                    npt.map(GuestPhysAddr(gpa & !0xfff), HostPhysAddr(frame), PageSize::Size4K, NptPerm::READ_WRITE)
                        .map_err(|e| format!("mapping {gpa:#x}: {e}"))?;
                    vcpu.request_tlb_flush();
                    counts.npf += 1;
                    if !bench {
                        kprintln!(
                            "{name}: exit npf: gpa={gpa:#x} {:?} not-present at rip={rip:#x} -> mapped a fresh frame, retry",
                            f.access
                        );
                    }
                } else {
                    return Err(format!("nested page fault at gpa={gpa:#x} ({f:?}) at rip={rip:#x}"));
                }
            }
            VcpuExit::Hypercall { len } if bench => {
                counts.vmmcall += 1;
                vcpu.skip_instruction(len);
                let nr = vcpu.gpr(Gpr::Rax) & 0xffff_ffff;
                if nr == guest::HYPERCALL_TIMING {
                    let phase = vcpu.gpr(Gpr::Rbx) & 0xffff_ffff;
                    let cycles = (vcpu.gpr(Gpr::Rdx) & 0xffff_ffff) << 32 | (vcpu.gpr(Gpr::Rcx) & 0xffff_ffff);
                    let slot = usize::try_from(phase).ok().and_then(|p| p.checked_sub(1));
                    match slot.and_then(|i| timings.get_mut(i)) {
                        Some(t @ None) => *t = Some(cycles),
                        _ => return Err(format!("bench guest reported phase {phase} out of order")),
                    }
                } else if nr != guest::HYPERCALL_NULL {
                    return Err(format!("bench guest made hypercall {nr:#x}"));
                }
                vcpu.set_gpr(Gpr::Rax, 0);
            }
            VcpuExit::Hypercall { len } => {
                let regs = [Gpr::Rax, Gpr::Rbx, Gpr::Rcx, Gpr::Rdx].map(|r| vcpu.gpr(r) & 0xffff_ffff);
                kprintln!(
                    "{name}: exit vmmcall: rax={:#x} rbx={:#x} rcx={:#x} rdx={:#x} at rip={rip:#x}",
                    regs[0],
                    regs[1],
                    regs[2],
                    regs[3]
                );
                let expected = [guest::HYPERCALL_REPORT, 0x6874_7541, MAGIC, u64::from(guest::PROBE_VALUE)];
                if regs != expected {
                    return Err(format!("guest report {regs:x?}, expected {expected:x?} (nr, \"Auth\", magic, probe)"));
                }
                vcpu.set_gpr(Gpr::Rax, 0);
                counts.vmmcall += 1;
                reported = true;
                vcpu.skip_instruction(len);
            }
            VcpuExit::Halt { len } => {
                counts.hlt += 1;
                kprintln!("{name}: exit hlt at rip={rip:#x} -> run ends");
                vcpu.skip_instruction(len);
                break;
            }
            VcpuExit::Shutdown => {
                kprintln!("guest error: shutdown (triple fault) at rip={rip:#x}; vCPU stopped");
                if which == TestGuest::TripleFault {
                    return Ok(format!(
                        "shutdown exit handled, vCPU stopped cleanly after {} exits ({} VMRUNs)",
                        counts.total,
                        vcpu.runner().runs
                    ));
                }
                return Err(format!("guest triple-faulted at rip={rip:#x}"));
            }
            VcpuExit::Fatal { why, code } => {
                kprintln!("guest error: {why} (exit code {code:#x}) at rip={rip:#x}; vCPU stopped");
                return Err(format!("fatal exit {code:#x}: {why}"));
            }
            other => {
                kprintln!("guest error: unexpected exit {other:?} at rip={rip:#x}; vCPU stopped");
                return Err(format!("unexpected exit {other:?}"));
            }
        }
    }
    if which == TestGuest::TripleFault {
        return Err(String::from("the guest halted instead of triple-faulting"));
    }
    if bench {
        return bench_report(&timings, &counts);
    }
    if !reported {
        return Err(String::from("the guest halted without its VMMCALL report"));
    }
    if device.command != Some(u64::from(guest::MMIO_COMMAND)) {
        return Err(format!("device command register holds {:x?}", device.command));
    }
    if !console.is_empty() || counts.ioio as usize != guest::MESSAGE.len() {
        return Err(format!("guest console: {} bytes, {:?} left unterminated", counts.ioio, console));
    }
    kprintln!("{name}: {} host-event exits (interrupts taken between runs)", counts.host);
    Ok(format!(
        "exits ioio={} cpuid={} npf={} mmio={} vmmcall={} hlt={}",
        counts.ioio, counts.cpuid, counts.npf, counts.mmio, counts.vmmcall, counts.hlt
    ))
}

/// Prints the bench line: guest TSC cycles per operation of each phase.
fn bench_report(timings: &[Option<u64>], counts: &Counts) -> Result<String, String> {
    let expected_npf = guest::BENCH_ITERATIONS as u32;
    if counts.npf != expected_npf || counts.mmio != expected_npf {
        return Err(format!(
            "bench took {} RAM faults and {} MMIO exits, expected {expected_npf} each",
            counts.npf, counts.mmio
        ));
    }
    let mut line = format!("iterations={}", guest::BENCH_ITERATIONS);
    for (phase, cycles) in guest::BENCH_PHASES.iter().zip(timings) {
        let cycles = cycles.ok_or_else(|| format!("the bench guest never reported phase {phase}"))?;
        line.push_str(&format!(" {phase}={}", cycles / guest::BENCH_ITERATIONS));
    }
    kprintln!("bench svm-npf: {line}");
    Ok(format!("{line} (guest TSC cycles per operation), {} host-event exits", counts.host))
}
