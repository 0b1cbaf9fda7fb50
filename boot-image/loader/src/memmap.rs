//! Turning the firmware's final memory map into the hand-off's regions.

use sinter_handoff::{MemoryKind, MemoryRegion, PhysRange};
use uefi::boot::{self, MemoryType};
use uefi::mem::memory_map::{MemoryMap, MemoryMapOwned};

use crate::{allocate_pages, load_error, LoadError};

/// Room for the map to grow between now and exit_boot_services, plus the
/// splits around the kernel image.
const SPARE_ENTRIES: usize = 64;

/// Highest physical address the firmware reports (RAM or MMIO it lists).
pub fn highest_address() -> Result<u64, LoadError> {
    let map = boot::memory_map(MemoryType::LOADER_DATA)
        .map_err(|e| load_error!("cannot read the memory map: {:?}", e.status()))?;
    Ok(map.entries().map(|d| d.phys_start + d.page_count * 4096).max().unwrap_or(0))
}

fn kind_of(ty: MemoryType) -> MemoryKind {
    match ty {
        MemoryType::CONVENTIONAL | MemoryType::BOOT_SERVICES_CODE | MemoryType::BOOT_SERVICES_DATA => {
            MemoryKind::Usable
        }
        MemoryType::LOADER_CODE | MemoryType::LOADER_DATA => MemoryKind::Loader,
        MemoryType::ACPI_RECLAIM => MemoryKind::AcpiReclaimable,
        MemoryType::ACPI_NON_VOLATILE => MemoryKind::AcpiNvs,
        MemoryType::RUNTIME_SERVICES_CODE | MemoryType::RUNTIME_SERVICES_DATA => MemoryKind::FirmwareRuntime,
        MemoryType::MMIO | MemoryType::MMIO_PORT_SPACE => MemoryKind::Mmio,
        _ => MemoryKind::Reserved,
    }
}

/// A pre-allocated array of regions: after exit_boot_services nothing can be
/// allocated, so the space is taken before.
pub struct RegionBuffer {
    base: *mut MemoryRegion,
    capacity: usize,
}

impl RegionBuffer {
    pub fn allocate() -> Result<Self, LoadError> {
        let map = boot::memory_map(MemoryType::LOADER_DATA)
            .map_err(|e| load_error!("cannot read the memory map: {:?}", e.status()))?;
        let capacity = map.len() + SPARE_ENTRIES;
        let pages = (capacity * core::mem::size_of::<MemoryRegion>()).div_ceil(4096);
        let base = allocate_pages(pages)?.as_ptr().cast::<MemoryRegion>();
        Ok(Self { base, capacity })
    }

    pub fn phys(&self) -> u64 {
        self.base as u64
    }

    fn push(&self, count: &mut usize, start: u64, end: u64, kind: MemoryKind) {
        if start >= end || *count >= self.capacity {
            return;
        }
        if *count > 0 {
            let last = self.base.wrapping_add(*count - 1);
            // SAFETY: index count-1 < capacity was written by a previous push.
            let previous = unsafe { core::ptr::read(last) };
            if previous.kind == kind as u32 && previous.end() == start {
                let merged = MemoryRegion { len: previous.len + (end - start), ..previous };
                // SAFETY: as above.
                unsafe { core::ptr::write(last, merged) };
                return;
            }
        }
        let slot = self.base.wrapping_add(*count);
        // SAFETY: *count < capacity, so `slot` is inside our allocation.
        unsafe { core::ptr::write(slot, MemoryRegion { start, len: end - start, kind: kind as u32, _reserved: 0 }) };
        *count += 1;
    }

    /// Writes the sorted, merged map, with the kernel image carved out of its
    /// LOADER_DATA region. Returns the entry count.
    pub fn fill(&self, map: &MemoryMapOwned, kernel: PhysRange) -> usize {
        let mut count = 0;
        // The firmware's map is not guaranteed sorted: emit in address order
        // by repeatedly taking the lowest start above the last one.
        let mut cursor = 0u64;
        loop {
            let next = map.entries().filter(|d| d.phys_start >= cursor).min_by_key(|d| d.phys_start);
            let Some(desc) = next else { break };
            let start = desc.phys_start;
            let end = start + desc.page_count * 4096;
            let kind = kind_of(desc.ty);
            if kind == MemoryKind::Loader && kernel.start < end && kernel.end > start {
                self.push(&mut count, start, kernel.start.max(start), kind);
                self.push(&mut count, kernel.start.max(start), kernel.end.min(end), MemoryKind::KernelImage);
                self.push(&mut count, kernel.end.min(end), end, kind);
            } else {
                self.push(&mut count, start, end, kind);
            }
            cursor = start + 1;
        }
        count
    }
}
