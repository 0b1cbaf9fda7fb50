//! Where nested page tables live.

use crate::HostPhysAddr;

/// Frames for nested page tables, and access to their entries.
///
/// The bare-metal implementation hands out zeroed 4 KiB frames from the
/// frame allocator and reads/writes entries through the kernel's direct
/// map (with volatile, naturally aligned 64-bit accesses, since the CPU
/// walks and updates A/D bits concurrently). Tests use plain memory.
pub trait TableMemory {
    /// A zeroed 4 KiB, 4 KiB-aligned table frame, or `None` when out of
    /// frames.
    fn allocate_table(&mut self) -> Option<HostPhysAddr>;
    /// Returns a table frame that is no longer referenced.
    fn free_table(&mut self, table: HostPhysAddr);
    /// Reads entry `index` (0–511) of the table at `table`.
    fn read_entry(&self, table: HostPhysAddr, index: usize) -> u64;
    /// Writes entry `index` (0–511) of the table at `table`.
    fn write_entry(&mut self, table: HostPhysAddr, index: usize, value: u64);
}
