//! What the kernel needs from the firmware's ACPI tables: the processors in
//! the MADT (kept whole for `arch`), the PM timer and the registers for S5
//! power-off (FADT + the DSDT's `_S5_`).

use core::ptr::NonNull;

use acpi::fadt::Fadt;
use acpi::madt::{Madt, MadtEntry};
use acpi::{AcpiHandler, AcpiTables, PhysicalMapping};
use sinter_kerncore::power::{find_s5, SleepTypes};

use crate::handoff::phys_to_virt;

/// Maps ACPI tables through the loader's direct map: nothing to map or unmap.
#[derive(Clone, Copy)]
struct DirectMap;

impl AcpiHandler for DirectMap {
    unsafe fn map_physical_region<T>(&self, physical_address: usize, size: usize) -> PhysicalMapping<Self, T> {
        let virt = phys_to_virt(physical_address as u64) as *mut T;
        // The direct map starts far above 0, so the pointer is never null.
        let virt = NonNull::new(virt).unwrap_or(NonNull::dangling());
        // SAFETY: ACPI tables lie in RAM the loader direct-mapped; the address
        // comes from a checksummed RSDP/XSDT, and `new` only records it.
        unsafe { PhysicalMapping::new(physical_address, virt, size, size, *self) }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

/// Registers and values for ACPI S5.
pub struct PowerInfo {
    pub pm1a_control: Option<u16>,
    pub pm1b_control: Option<u16>,
    pub sleep_types: Option<SleepTypes>,
    pub smi_command: u16,
    pub acpi_enable: u8,
}

/// The ACPI PM timer's I/O port and counter width (24 or 32 bits).
pub struct PmTimer {
    pub port: u16,
    pub bits: u32,
}

pub struct Platform {
    /// Enabled (or online-capable) local APICs in the MADT.
    pub cpu_count: usize,
    pub power: PowerInfo,
    /// A copy of the whole MADT (read with `sinter_kerncore::madt`).
    pub madt_bytes: alloc::vec::Vec<u8>,
    pub pm_timer: Option<PmTimer>,
}

impl Platform {
    /// The MADT, parsed; `None` if its bytes are malformed.
    pub fn madt(&self) -> Option<sinter_kerncore::madt::Madt<'_>> {
        sinter_kerncore::madt::Madt::parse(&self.madt_bytes).ok()
    }

    pub fn discover(rsdp: u64) -> Result<Self, &'static str> {
        if rsdp == 0 {
            return Err("the firmware gave no RSDP");
        }
        // SAFETY: the RSDP address comes from the UEFI configuration table;
        // the crate validates its signature and checksum before use.
        let tables = unsafe { AcpiTables::from_rsdp(DirectMap, rsdp as usize) }.map_err(|_| "RSDP/XSDT invalid")?;
        let madt = tables.find_table::<Madt>().map_err(|_| "no MADT")?;
        let madt_len = madt.get().header.length as usize;
        // SAFETY: the MADT lies in ACPI memory covered by the direct map; its
        // length comes from the header the acpi crate checksummed.
        let madt_bytes =
            unsafe { core::slice::from_raw_parts(phys_to_virt(madt.physical_start() as u64) as *const u8, madt_len) }
                .to_vec();
        let cpu_count = madt
            .get()
            .entries()
            .filter(|entry| match entry {
                MadtEntry::LocalApic(lapic) => {
                    let flags = lapic.flags;
                    flags & 0b11 != 0
                }
                MadtEntry::LocalX2Apic(x2) => {
                    let flags = x2.flags;
                    flags & 0b11 != 0
                }
                _ => false,
            })
            .count();
        let fadt = tables.find_table::<Fadt>().map_err(|_| "no FADT")?;
        let io_port = |block: Option<acpi::address::GenericAddress>| block.and_then(|b| u16::try_from(b.address).ok());
        let sleep_types = tables.dsdt().ok().and_then(|dsdt| {
            // SAFETY: the DSDT body lies in ACPI memory mapped by the direct
            // map; the length comes from its checksummed header.
            let aml = unsafe {
                core::slice::from_raw_parts(phys_to_virt(dsdt.address as u64) as *const u8, dsdt.length as usize)
            };
            find_s5(aml)
        });
        let power = PowerInfo {
            pm1a_control: io_port(fadt.pm1a_control_block().ok()),
            pm1b_control: io_port(fadt.pm1b_control_block().ok().flatten()),
            sleep_types,
            smi_command: u16::try_from(fadt.smi_cmd_port).unwrap_or(0),
            acpi_enable: fadt.acpi_enable,
        };
        let pm_timer = fadt
            .pm_timer_block()
            .ok()
            .flatten()
            .filter(|b| b.address_space == acpi::address::AddressSpace::SystemIo)
            .and_then(|b| u16::try_from(b.address).ok())
            .map(|port| {
                let flags = fadt.flags;
                PmTimer { port, bits: if flags.pm_timer_is_32_bit() { 32 } else { 24 } }
            });
        Ok(Self { cpu_count, power, madt_bytes, pm_timer })
    }
}
