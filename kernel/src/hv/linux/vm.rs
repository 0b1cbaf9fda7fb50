//! The Linux VM's shared state and its construction: guest RAM (backed by
//! the memory plan's guest ranges), the nested table over it, the ACPI
//! tables, the loaded bzImage/initrd/command line, the permission maps,
//! the devices and the per-vCPU interrupt mailboxes.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use sinter_config::UnbackedMmio;

use sinter_guest_acpi::{GuestMachine, GuestMemoryRange, IoApic, IsaSerial, NumaDistances, PmRegisters, VcpuPlacement};
use sinter_linux_boot::load::AcpiPlacement;
use sinter_linux_boot::{GuestMemory, GuestRamRange, InitialCpuState};
use sinter_svm::npt::{NestedPageTable, NptPerm, RamRange};
use sinter_svm::{GuestPhysAddr, HostPhysAddr};
use spin::Mutex;

use sinter_guest_devices::{ApicTarget, LapicConfig, LocalApic, PlatformBus};

use super::platform::{ConsoleSink, Inbox, Targets};
use crate::hv::npt::DirectMapTables;
use crate::memory::{self, phys_to_virt};

/// Where the guest ACPI tables go (inside the reserved legacy hole; the
/// e820 map marks the region ACPI).
const ACPI_TABLES_GPA: u64 = 0xe_0000;
pub const MAX_VCPUS: usize = 8;
const TWO_MIB: u64 = 2 << 20;

/// One piece of guest RAM: `len` bytes at `gpa` backed by host frames at `hpa`.
#[derive(Clone, Copy, Debug)]
pub struct RamChunk {
    pub gpa: u64,
    pub hpa: u64,
    pub len: u64,
}

/// How the VM ended (or that it has not).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum VmState {
    Running = 0,
    PoweredOff = 1,
    Reset = 2,
    Failed = 3,
}

pub struct Vm {
    pub ram: Vec<RamChunk>,
    pub npt: NestedPageTable<DirectMapTables>,
    pub iopm_phys: u64,
    pub msrpm_phys: u64,
    pub vcpus: usize,
    /// Host core of each vCPU.
    pub cores: Vec<usize>,
    pub boot: InitialCpuState,
    /// The shared devices (UART, I/O APIC, PM, PIT, PIC, RTC, reset).
    pub platform: Mutex<PlatformBus<ConsoleSink>>,
    /// Interrupt messages waiting for each vCPU, and where each vCPU's
    /// APIC answers.
    pub inboxes: [Inbox; MAX_VCPUS],
    pub targets: Targets,
    /// The APIC timer's input clock (also in CPUID 0x4000_0010).
    pub lapic_config: LapicConfig,
    state: AtomicU8,
    pub stopped_vcpus: AtomicU32,
    pub tsc_hz: u64,
    /// TSC when the VM was built (guest kvmclock time 0).
    pub tsc_base: u64,
    /// `[hypervisor] unbacked_mmio`: stop the VM, or read all ones.
    pub unbacked_mmio: UnbackedMmio,
}

impl Vm {
    pub fn state(&self) -> VmState {
        match self.state.load(Ordering::Acquire) {
            0 => VmState::Running,
            1 => VmState::PoweredOff,
            2 => VmState::Reset,
            _ => VmState::Failed,
        }
    }

    /// Records how the VM ended (the first reason wins) and wakes every vCPU.
    pub fn stop(&self, why: VmState) {
        let _ = self.state.compare_exchange(0, why as u8, Ordering::AcqRel, Ordering::Acquire);
        for &core in &self.cores {
            crate::exec::wake_core(core);
        }
    }

    /// The host-physical address of guest-physical `gpa`, and the bytes
    /// left in its chunk.
    pub fn gpa_to_hpa(&self, gpa: u64) -> Option<(u64, u64)> {
        let c = self.ram.iter().find(|c| gpa >= c.gpa && gpa - c.gpa < c.len)?;
        Some((c.hpa + (gpa - c.gpa), c.len - (gpa - c.gpa)))
    }

    /// Copies guest RAM at `gpa` into `buf`; false if any byte is not RAM.
    pub fn read(&self, gpa: u64, buf: &mut [u8]) -> bool {
        let mut done = 0;
        while done < buf.len() {
            let Some((hpa, left)) = self.gpa_to_hpa(gpa + done as u64) else { return false };
            let n = (left as usize).min(buf.len() - done);
            // SAFETY: `hpa..hpa + n` lies inside one guest RAM chunk, host
            // memory the memory plan gave to the guest and the direct map
            // covers; the guest may change it concurrently, so the copy is
            // of plain bytes with no validity requirement.
            unsafe { core::ptr::copy_nonoverlapping(phys_to_virt(hpa) as *const u8, buf[done..].as_mut_ptr(), n) };
            done += n;
        }
        true
    }

    /// Copies `bytes` into guest RAM at `gpa`; false if any byte is not RAM.
    pub fn write(&self, gpa: u64, bytes: &[u8]) -> bool {
        let mut done = 0;
        while done < bytes.len() {
            let Some((hpa, left)) = self.gpa_to_hpa(gpa + done as u64) else { return false };
            let n = (left as usize).min(bytes.len() - done);
            // SAFETY: as in `read`; guest RAM is not used by the host for
            // anything else, so writing it can only affect the guest.
            unsafe { core::ptr::copy_nonoverlapping(bytes[done..].as_ptr(), phys_to_virt(hpa) as *mut u8, n) };
            done += n;
        }
        true
    }

    pub fn read_u64(&self, gpa: u64) -> Option<u64> {
        let mut b = [0u8; 8];
        self.read(gpa, &mut b).then(|| u64::from_le_bytes(b))
    }
}

struct Loader<'a>(&'a Vm);

impl GuestMemory for Loader<'_> {
    fn write(&mut self, gpa: u64, bytes: &[u8]) -> Result<(), ()> {
        if self.0.write(gpa, bytes) {
            Ok(())
        } else {
            Err(())
        }
    }
}

/// Guest RAM the memory plan can back with 2 MiB-aligned runs (what
/// `[guest] memory_mib` may ask for at most).
pub fn available_ram() -> u64 {
    memory::guest_ram()
        .iter()
        .map(|r| {
            let start = r.start.as_u64().div_ceil(TWO_MIB) * TWO_MIB;
            (r.end.as_u64() / TWO_MIB * TWO_MIB).saturating_sub(start)
        })
        .sum()
}

/// Picks 2 MiB-aligned host memory for `bytes` of guest RAM from the
/// memory plan's guest ranges.
fn back_guest_ram(bytes: u64) -> Result<Vec<RamChunk>, String> {
    let mut chunks = Vec::new();
    let mut gpa = 0;
    for range in memory::guest_ram() {
        if gpa >= bytes {
            break;
        }
        let start = range.start.as_u64().div_ceil(TWO_MIB) * TWO_MIB;
        let end = range.end.as_u64() / TWO_MIB * TWO_MIB;
        if end <= start {
            continue;
        }
        let len = (end - start).min(bytes - gpa);
        chunks.push(RamChunk { gpa, hpa: start, len });
        gpa += len;
    }
    if gpa < bytes {
        return Err(format!("guest RAM: {} MiB asked, the memory plan has {} MiB", bytes >> 20, gpa >> 20));
    }
    Ok(chunks)
}

/// Builds the VM and loads the guest. `cores`: the host core of each vCPU.
pub fn build(
    kernel: &[u8],
    initrd: Option<&[u8]>,
    cmdline: &str,
    ram_bytes: u64,
    cores: Vec<usize>,
    unbacked_mmio: UnbackedMmio,
) -> Result<&'static Vm, String> {
    let vcpus = cores.len();
    if vcpus == 0 || vcpus > MAX_VCPUS {
        return Err(format!("{vcpus} vCPUs (1..={MAX_VCPUS} supported)"));
    }
    let ram = back_guest_ram(ram_bytes)?;

    // IOPM (12 KiB) and MSRPM (8 KiB) need contiguous frames: one 2 MiB run.
    let maps = memory::alloc_frame_2m().map_err(|e| format!("no 2 MiB frame for the permission maps: {e:?}"))?;
    let iopm = sinter_svm::iopm::IoPermissionMap::intercept_all();
    let msrpm = sinter_svm::msr::permission_map();
    let msrpm_phys = maps + 0x3000;
    // SAFETY: `maps` is a fresh 2 MiB frame owned by this VM for ever,
    // reached through the direct map; the maps do not overlap (12 KiB at
    // 0, 8 KiB at 0x3000).
    unsafe { core::ptr::copy_nonoverlapping(iopm.bytes().as_ptr(), phys_to_virt(maps) as *mut u8, iopm.bytes().len()) };
    let msrpm_bytes = msrpm.bytes();
    // SAFETY: as above.
    unsafe {
        core::ptr::copy_nonoverlapping(msrpm_bytes.as_ptr(), phys_to_virt(msrpm_phys) as *mut u8, msrpm_bytes.len())
    };

    let mut npt = NestedPageTable::new(DirectMapTables::default()).map_err(|e| format!("nested table: {e}"))?;
    let ranges: Vec<RamRange> =
        ram.iter().map(|c| RamRange { gpa: GuestPhysAddr(c.gpa), hpa: HostPhysAddr(c.hpa), len: c.len }).collect();
    let stats = npt.map_ram(&ranges, NptPerm::READ_WRITE_EXECUTE).map_err(|e| format!("mapping guest RAM: {e}"))?;

    let machine = GuestMachine {
        vcpus: (0..vcpus).map(|i| VcpuPlacement { apic_id: i as u8, numa_node: 0 }).collect(),
        memory: alloc::vec![GuestMemoryRange { base: 0, len: ram_bytes, numa_node: 0 }],
        numa_distances: NumaDistances::default(),
        ioapic: IoApic::default(),
        uart: Some(IsaSerial::COM1),
        pm: PmRegisters::SINTER,
        legacy_pic: false,
        table_address: ACPI_TABLES_GPA,
    };
    let lapic_config = LapicConfig::default();
    let vm: &'static mut Vm = Box::leak(Box::new(Vm {
        ram,
        npt,
        iopm_phys: maps,
        msrpm_phys,
        vcpus,
        cores,
        boot: InitialCpuState {
            rip: 0,
            rsi: 0,
            rsp: 0,
            rflags: 2,
            cr0: 0,
            cr3: 0,
            cr4: 0,
            efer: 0,
            cs: sinter_linux_boot::cpu::CODE64,
            data: sinter_linux_boot::cpu::DATA,
            gdt_base: 0,
            gdt_limit: 0,
        },
        platform: Mutex::new(PlatformBus::new(&machine, ConsoleSink::default(), 0, 0)),
        inboxes: [const { Inbox::new() }; MAX_VCPUS],
        targets: Targets(Mutex::new(core::array::from_fn(|i| {
            if i < vcpus {
                LocalApic::new(i as u8, i == 0, lapic_config).target()
            } else {
                ApicTarget { apic_id: 0xff, logical_id: 0, cluster_model: false, enabled: false }
            }
        }))),
        lapic_config,
        state: AtomicU8::new(0),
        stopped_vcpus: AtomicU32::new(0),
        tsc_hz: crate::arch::time::tsc_hz(),
        tsc_base: crate::arch::time::rdtsc(),
        unbacked_mmio,
    }));

    // The low megabyte holds the boot structures: start it zeroed.
    let zeros = alloc::vec![0u8; 1 << 20];
    vm.write(0, &zeros);

    let acpi = sinter_guest_acpi::build_tables(&machine).map_err(|e| format!("guest ACPI tables: {e:?}"))?;
    if !vm.write(ACPI_TABLES_GPA, &acpi.bytes) {
        return Err(String::from("guest ACPI tables do not fit in guest RAM"));
    }
    let placement = AcpiPlacement { rsdp: acpi.rsdp_address(), region: acpi.e820_region() };
    let ram_ranges = [GuestRamRange { start: 0, len: ram_bytes }];
    let (plan, state) =
        sinter_linux_boot::load(kernel, initrd, cmdline, &ram_ranges, Some(placement), &mut Loader(&*vm))
            .map_err(|e| format!("loading the guest kernel: {e:?}"))?;
    crate::kprintln!(
        "vm: {} MiB guest RAM in {} chunk(s) ({} 2 MiB + {} 4 KiB nested pages), {} vCPUs, ACPI at {:#x} ({} bytes), kernel at {:#x}, initrd {:x?}, entry {:#x}",
        ram_bytes >> 20,
        vm.ram.len(),
        stats.large_pages,
        stats.small_pages,
        vcpus,
        ACPI_TABLES_GPA,
        acpi.bytes.len(),
        plan.kernel,
        plan.initrd,
        state.rip
    );
    vm.boot = state;
    Ok(vm)
}
