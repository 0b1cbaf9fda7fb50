//! The boot page tables the kernel starts on. All table pages come from
//! LOADER_DATA and are written through UEFI's identity map.

use crate::{allocate_pages, load_error, LoadError};
use sinter_handoff::DIRECT_MAP_BASE;

const PRESENT: u64 = 1;
const WRITABLE: u64 = 1 << 1;
const HUGE: u64 = 1 << 7;
const NO_EXECUTE: u64 = 1 << 63;
const ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;
const GIB: u64 = 1 << 30;
const TWO_MIB: u64 = 2 << 20;
/// The identity map and the direct map each use one PML4 slot.
const MAX_MAPPED: u64 = 512 * GIB;

/// The boot stack sits in its own 1 GiB slot above the kernel image window,
/// so the page under it can stay unmapped (a guard).
pub const BOOT_STACK_VIRT_BASE: u64 = 0xffff_ffff_c000_0000;

pub struct BootPageTables {
    pml4: u64,
}

/// Reads entry `index` of the table page at `table`.
fn read_entry(table: u64, index: usize) -> u64 {
    debug_assert!(index < 512);
    // SAFETY: `table` is one of our zeroed, identity-mapped 4 KiB table pages
    // and index < 512 keeps the read inside it.
    unsafe { core::ptr::read((table as *const u64).wrapping_add(index)) }
}

/// Writes entry `index` of the table page at `table`.
fn write_entry(table: u64, index: usize, value: u64) {
    debug_assert!(index < 512);
    // SAFETY: as for `read_entry`; the page is ours alone until the kernel
    // takes the tables over.
    unsafe { core::ptr::write((table as *mut u64).wrapping_add(index), value) }
}

fn new_table() -> Result<u64, LoadError> {
    Ok(allocate_pages(1)?.as_ptr() as u64)
}

impl BootPageTables {
    pub fn new() -> Result<Self, LoadError> {
        Ok(Self { pml4: new_table()? })
    }

    pub fn root(&self) -> u64 {
        self.pml4
    }

    /// Returns the table that `table[index]` points to, creating it if absent.
    fn next_level(table: u64, index: usize) -> Result<u64, LoadError> {
        let value = read_entry(table, index);
        if value & PRESENT != 0 {
            if value & HUGE != 0 {
                return Err(load_error!("page table conflict: huge page where a table was expected"));
            }
            return Ok(value & ADDRESS_MASK);
        }
        let next = new_table()?;
        // Upper levels are permissive; leaves decide.
        write_entry(table, index, next | PRESENT | WRITABLE);
        Ok(next)
    }

    /// Identity map (executable, for the hand-over instant) and the kernel's
    /// direct map at [`DIRECT_MAP_BASE`] (NX) of `[0, size)`, with 2 MiB pages.
    pub fn map_identity_and_direct(&mut self, size: u64) -> Result<(), LoadError> {
        let size = size.min(MAX_MAPPED);
        let direct_slot = ((DIRECT_MAP_BASE >> 39) & 511) as usize;
        let identity_pdpt = Self::next_level(self.pml4, 0)?;
        let direct_pdpt = Self::next_level(self.pml4, direct_slot)?;
        for gib in 0..size.div_ceil(GIB) {
            let identity_pd = Self::next_level(identity_pdpt, gib as usize)?;
            let direct_pd = Self::next_level(direct_pdpt, gib as usize)?;
            for slot in 0..512u64 {
                let phys = gib * GIB + slot * TWO_MIB;
                write_entry(identity_pd, slot as usize, phys | PRESENT | WRITABLE | HUGE);
                write_entry(direct_pd, slot as usize, phys | PRESENT | WRITABLE | HUGE | NO_EXECUTE);
            }
        }
        Ok(())
    }

    /// Maps `len` bytes at `virt` to `phys` with 4 KiB pages.
    pub fn map_kernel_range(
        &mut self,
        virt: u64,
        phys: u64,
        len: u64,
        writable: bool,
        executable: bool,
    ) -> Result<(), LoadError> {
        if virt & 0xfff != 0 || phys & 0xfff != 0 {
            return Err(load_error!("unaligned kernel mapping {virt:#x} -> {phys:#x}"));
        }
        let mut flags = PRESENT;
        if writable {
            flags |= WRITABLE;
        }
        if !executable {
            flags |= NO_EXECUTE;
        }
        for offset in (0..len).step_by(4096) {
            let va = virt + offset;
            let pdpt = Self::next_level(self.pml4, ((va >> 39) & 511) as usize)?;
            let pd = Self::next_level(pdpt, ((va >> 30) & 511) as usize)?;
            let pt = Self::next_level(pd, ((va >> 21) & 511) as usize)?;
            write_entry(pt, ((va >> 12) & 511) as usize, (phys + offset) | flags);
        }
        Ok(())
    }
}
