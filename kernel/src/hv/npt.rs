//! `sinter_svm::npt::TableMemory` on the kernel's frame allocator and
//! direct map.

use alloc::vec::Vec;

use sinter_svm::npt::TableMemory;
use sinter_svm::HostPhysAddr;

use crate::memory::{self, phys_to_virt};

/// Nested-table frames from the hypervisor pool; remembers every frame it
/// handed out so the VM's teardown can return them all.
#[derive(Default)]
pub struct DirectMapTables {
    frames: Vec<u64>,
}

impl DirectMapTables {
    /// Every table frame still in use.
    pub fn frames(&self) -> &[u64] {
        &self.frames
    }
}

fn entry_ptr(table: HostPhysAddr, index: usize) -> *mut u64 {
    assert!(index < 512, "nested table index {index} out of range");
    assert!(table.get().is_multiple_of(4096), "nested table {:#x} misaligned", table.get());
    (phys_to_virt(table.get()) as *mut u64).wrapping_add(index)
}

impl TableMemory for DirectMapTables {
    fn allocate_table(&mut self) -> Option<HostPhysAddr> {
        let frame = memory::alloc_frame().ok()?;
        self.frames.push(frame);
        Some(HostPhysAddr(frame))
    }

    fn free_table(&mut self, table: HostPhysAddr) {
        if let Some(i) = self.frames.iter().position(|&f| f == table.get()) {
            self.frames.swap_remove(i);
            let _ = memory::free_frame(table.get());
        }
    }

    fn read_entry(&self, table: HostPhysAddr, index: usize) -> u64 {
        // SAFETY: `table` is a table frame this allocator handed out (the
        // NPT builder only passes those), reached through the direct map;
        // the entry is an aligned u64 inside it (index < 512, checked). The
        // read is volatile since the CPU's nested walk updates A/D bits.
        unsafe { core::ptr::read_volatile(entry_ptr(table, index)) }
    }

    fn write_entry(&mut self, table: HostPhysAddr, index: usize, value: u64) {
        // SAFETY: as in `read_entry`; the frame is ours alone.
        unsafe { core::ptr::write_volatile(entry_ptr(table, index), value) }
    }
}
