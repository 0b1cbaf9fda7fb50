//! Building and editing a four-level nested page table.

use core::fmt;

use super::entry::{NptEntry, NptPerm, PageSize};
use super::memory::TableMemory;
use crate::addr::{PAGE_SIZE_2M, PAGE_SIZE_4K};
use crate::{GuestPhysAddr, HostPhysAddr};

/// Guest-physical addresses must be below 2^48 (four levels).
pub const MAX_GPA_BITS: u32 = 48;
/// Host-physical addresses must be below 2^52.
const MAX_HPA_BITS: u32 = 52;
const ENTRIES: usize = 512;

/// Levels, leaf upwards: 0 PT, 1 PD, 2 PDPT, 3 PML4.
const fn index(gpa: GuestPhysAddr, level: u32) -> usize {
    ((gpa.get() >> (12 + 9 * level)) & 0x1ff) as usize
}

/// Something [`NestedPageTable`] refuses or cannot do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NptError {
    /// The GPA is not aligned to the page size.
    MisalignedGpa(GuestPhysAddr),
    /// The frame is not aligned to the page size.
    MisalignedFrame(HostPhysAddr),
    /// A RAM range's length is not a multiple of 4 KiB.
    MisalignedLength(u64),
    /// The GPA is at or above 2^48.
    GpaOutOfRange(GuestPhysAddr),
    /// The frame is at or above 2^52.
    FrameOutOfRange(HostPhysAddr),
    /// Something is already mapped there (unmap it first).
    AlreadyMapped(GuestPhysAddr),
    /// Nothing is mapped there.
    NotMapped(GuestPhysAddr),
    /// [`TableMemory::allocate_table`] had no frame.
    OutOfTableFrames,
    /// A 1 GiB leaf, which this builder never writes: the table was
    /// written by someone else.
    UnexpectedHugePage(GuestPhysAddr),
}

impl fmt::Display for NptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MisalignedGpa(g) => write!(f, "{g} is not aligned to the page size"),
            Self::MisalignedFrame(h) => write!(f, "{h} is not aligned to the page size"),
            Self::MisalignedLength(l) => write!(f, "RAM range length {l:#x} is not a multiple of 4 KiB"),
            Self::GpaOutOfRange(g) => write!(f, "{g} is beyond the 48-bit nested address space"),
            Self::FrameOutOfRange(h) => write!(f, "{h} is beyond 52 physical address bits"),
            Self::AlreadyMapped(g) => write!(f, "{g} is already mapped"),
            Self::NotMapped(g) => write!(f, "{g} is not mapped"),
            Self::OutOfTableFrames => write!(f, "no frame left for a nested page table"),
            Self::UnexpectedHugePage(g) => write!(f, "{g} is under a 1 GiB leaf"),
        }
    }
}

/// Every vCPU using the table must flush its TLB (VMRUN with
/// `TLB_CONTROL` = flush-all) before relying on the change.
#[must_use = "the TLB of every vCPU using this table must be flushed"]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlbFlush;

/// What an unmap removed.
#[must_use = "the TLB of every vCPU using this table must be flushed"]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unmapped {
    /// The frame that backed the page (now free to move).
    pub frame: HostPhysAddr,
    /// Its rights.
    pub perm: NptPerm,
    /// The flush this requires.
    pub flush: TlbFlush,
}

/// A resolved guest-physical address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// The host-physical address of the byte.
    pub hpa: HostPhysAddr,
    /// The leaf's rights.
    pub perm: NptPerm,
    /// The leaf's size.
    pub size: PageSize,
}

/// A run of guest RAM backed by contiguous host frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RamRange {
    /// First guest-physical address (4 KiB aligned).
    pub gpa: GuestPhysAddr,
    /// First host frame (4 KiB aligned).
    pub hpa: HostPhysAddr,
    /// Length in bytes (a multiple of 4 KiB).
    pub len: u64,
}

/// How [`NestedPageTable::map_ram`] covered the ranges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MapStats {
    /// 2 MiB leaves written.
    pub large_pages: u64,
    /// 4 KiB leaves written.
    pub small_pages: u64,
}

/// A nested page table and the memory it lives in.
pub struct NestedPageTable<M: TableMemory> {
    root: HostPhysAddr,
    mem: M,
}

impl<M: TableMemory> NestedPageTable<M> {
    /// An empty table (one zeroed PML4).
    pub fn new(mut mem: M) -> Result<Self, NptError> {
        let root = mem.allocate_table().ok_or(NptError::OutOfTableFrames)?;
        Ok(Self { root, mem })
    }

    /// The PML4's address: the VMCB's `N_CR3`.
    pub fn root(&self) -> HostPhysAddr {
        self.root
    }

    /// The backing memory.
    pub fn memory(&self) -> &M {
        &self.mem
    }

    fn entry(&self, table: HostPhysAddr, i: usize) -> NptEntry {
        NptEntry(self.mem.read_entry(table, i))
    }

    fn set(&mut self, table: HostPhysAddr, i: usize, e: NptEntry) {
        self.mem.write_entry(table, i, e.0);
    }

    fn check_gpa(gpa: GuestPhysAddr, size: PageSize) -> Result<(), NptError> {
        if gpa.get() >> MAX_GPA_BITS != 0 {
            return Err(NptError::GpaOutOfRange(gpa));
        }
        if !gpa.is_aligned(size.bytes()) {
            return Err(NptError::MisalignedGpa(gpa));
        }
        Ok(())
    }

    /// The page directory covering `gpa`, creating PDPT/PD when `create`.
    fn directory(&mut self, gpa: GuestPhysAddr, create: bool) -> Result<Option<HostPhysAddr>, NptError> {
        let mut table = self.root;
        for level in [3, 2] {
            let i = index(gpa, level);
            let e = self.entry(table, i);
            table = if e.is_present() {
                if e.is_large() {
                    return Err(NptError::UnexpectedHugePage(gpa));
                }
                e.address()
            } else if create {
                let next = self.mem.allocate_table().ok_or(NptError::OutOfTableFrames)?;
                self.set(table, i, NptEntry::table(next));
                next
            } else {
                return Ok(None);
            };
        }
        Ok(Some(table))
    }

    /// Maps one page of `size` at `gpa` to `frame` with `perm`. The slot
    /// must be empty: a 2 MiB leaf needs an empty PDE (no page table under
    /// it), a 4 KiB leaf an empty PTE not under a 2 MiB leaf.
    ///
    /// Intermediate tables created before a failure stay (empty, harmless).
    pub fn map(
        &mut self,
        gpa: GuestPhysAddr,
        frame: HostPhysAddr,
        size: PageSize,
        perm: NptPerm,
    ) -> Result<(), NptError> {
        Self::check_gpa(gpa, size)?;
        if frame.get() >> MAX_HPA_BITS != 0 {
            return Err(NptError::FrameOutOfRange(frame));
        }
        if !frame.is_aligned(size.bytes()) {
            return Err(NptError::MisalignedFrame(frame));
        }
        let pd = self.directory(gpa, true)?.ok_or(NptError::OutOfTableFrames)?;
        let pde_i = index(gpa, 1);
        let pde = self.entry(pd, pde_i);
        match size {
            PageSize::Size2M => {
                if pde.is_present() {
                    return Err(NptError::AlreadyMapped(gpa));
                }
                self.set(pd, pde_i, NptEntry::leaf(frame, size, perm));
            }
            PageSize::Size4K => {
                let pt = if !pde.is_present() {
                    let pt = self.mem.allocate_table().ok_or(NptError::OutOfTableFrames)?;
                    self.set(pd, pde_i, NptEntry::table(pt));
                    pt
                } else if pde.is_large() {
                    return Err(NptError::AlreadyMapped(gpa));
                } else {
                    pde.address()
                };
                let pte_i = index(gpa, 0);
                if self.entry(pt, pte_i).is_present() {
                    return Err(NptError::AlreadyMapped(gpa));
                }
                self.set(pt, pte_i, NptEntry::leaf(frame, size, perm));
            }
        }
        Ok(())
    }

    /// Maps guest RAM: each range with 2 MiB leaves where the GPA and the
    /// frame are both 2 MiB aligned and at least 2 MiB remain, 4 KiB leaves
    /// elsewhere.
    pub fn map_ram(&mut self, ranges: &[RamRange], perm: NptPerm) -> Result<MapStats, NptError> {
        let mut stats = MapStats::default();
        for r in ranges {
            if !r.gpa.is_aligned(PAGE_SIZE_4K) {
                return Err(NptError::MisalignedGpa(r.gpa));
            }
            if r.len % PAGE_SIZE_4K != 0 {
                return Err(NptError::MisalignedLength(r.len));
            }
            if !r.hpa.is_aligned(PAGE_SIZE_4K) {
                return Err(NptError::MisalignedFrame(r.hpa));
            }
            let end = r.gpa.checked_add(r.len).ok_or(NptError::GpaOutOfRange(r.gpa))?;
            if r.len > 0 && (end.get() - 1) >> MAX_GPA_BITS != 0 {
                return Err(NptError::GpaOutOfRange(r.gpa));
            }
            let mut off = 0;
            while off < r.len {
                let (gpa, hpa) = (GuestPhysAddr(r.gpa.get() + off), HostPhysAddr(r.hpa.get() + off));
                let large = gpa.is_aligned(PAGE_SIZE_2M) && hpa.is_aligned(PAGE_SIZE_2M) && r.len - off >= PAGE_SIZE_2M;
                let size = if large { PageSize::Size2M } else { PageSize::Size4K };
                self.map(gpa, hpa, size, perm)?;
                if large {
                    stats.large_pages += 1;
                } else {
                    stats.small_pages += 1;
                }
                off += size.bytes();
            }
        }
        Ok(stats)
    }

    /// The page table for the 4 KiB page at `gpa`, splitting a 2 MiB leaf
    /// above it into 512 small leaves with the same frames and rights.
    fn page_table_splitting(&mut self, gpa: GuestPhysAddr) -> Result<HostPhysAddr, NptError> {
        let pd = self.directory(gpa, false)?.ok_or(NptError::NotMapped(gpa))?;
        let pde_i = index(gpa, 1);
        let pde = self.entry(pd, pde_i);
        if !pde.is_present() {
            return Err(NptError::NotMapped(gpa));
        }
        if !pde.is_large() {
            return Ok(pde.address());
        }
        let pt = self.mem.allocate_table().ok_or(NptError::OutOfTableFrames)?;
        let (base, perm) = (pde.address().get(), pde.perm());
        for i in 0..ENTRIES {
            let frame = HostPhysAddr(base + i as u64 * PAGE_SIZE_4K);
            self.set(pt, i, NptEntry::leaf(frame, PageSize::Size4K, perm));
        }
        // Same translations before and after: no flush needed for the split.
        self.set(pd, pde_i, NptEntry::table(pt));
        Ok(pt)
    }

    /// Unmaps the 4 KiB page at `gpa` (splitting a 2 MiB leaf if needed).
    pub fn unmap(&mut self, gpa: GuestPhysAddr) -> Result<Unmapped, NptError> {
        Self::check_gpa(gpa, PageSize::Size4K)?;
        let pt = self.page_table_splitting(gpa)?;
        let i = index(gpa, 0);
        let e = self.entry(pt, i);
        if !e.is_present() {
            return Err(NptError::NotMapped(gpa));
        }
        self.set(pt, i, NptEntry::EMPTY);
        Ok(Unmapped { frame: e.address(), perm: e.perm(), flush: TlbFlush })
    }

    /// Unmaps the 2 MiB leaf at `gpa` (which must be one).
    pub fn unmap_large(&mut self, gpa: GuestPhysAddr) -> Result<Unmapped, NptError> {
        Self::check_gpa(gpa, PageSize::Size2M)?;
        let pd = self.directory(gpa, false)?.ok_or(NptError::NotMapped(gpa))?;
        let i = index(gpa, 1);
        let e = self.entry(pd, i);
        if !e.is_present() || !e.is_large() {
            return Err(NptError::NotMapped(gpa));
        }
        self.set(pd, i, NptEntry::EMPTY);
        Ok(Unmapped { frame: e.address(), perm: e.perm(), flush: TlbFlush })
    }

    /// Changes the rights of the 4 KiB page at `gpa` (splitting a 2 MiB
    /// leaf if needed). Widening rights needs no flush in principle, but
    /// the caller gets a [`TlbFlush`] either way: stale narrower entries
    /// would only cost a spurious NPF, stale wider ones a coherence bug.
    pub fn protect(&mut self, gpa: GuestPhysAddr, perm: NptPerm) -> Result<TlbFlush, NptError> {
        Self::check_gpa(gpa, PageSize::Size4K)?;
        let pt = self.page_table_splitting(gpa)?;
        let i = index(gpa, 0);
        let e = self.entry(pt, i);
        if !e.is_present() {
            return Err(NptError::NotMapped(gpa));
        }
        self.set(pt, i, e.with_perm(perm));
        Ok(TlbFlush)
    }

    /// Resolves `gpa` (any byte address) the way the CPU would.
    pub fn translate(&self, gpa: GuestPhysAddr) -> Option<Translation> {
        if gpa.get() >> MAX_GPA_BITS != 0 {
            return None;
        }
        let mut table = self.root;
        for level in [3, 2] {
            let e = self.entry(table, index(gpa, level));
            if !e.is_present() || e.is_large() {
                return None;
            }
            table = e.address();
        }
        let pde = self.entry(table, index(gpa, 1));
        if !pde.is_present() {
            return None;
        }
        if pde.is_large() {
            let hpa = HostPhysAddr(pde.address().get() + (gpa.get() & (PAGE_SIZE_2M - 1)));
            return Some(Translation { hpa, perm: pde.perm(), size: PageSize::Size2M });
        }
        let pte = self.entry(pde.address(), index(gpa, 0));
        pte.is_present().then(|| Translation {
            hpa: HostPhysAddr(pte.address().get() + gpa.page_offset()),
            perm: pte.perm(),
            size: PageSize::Size4K,
        })
    }
}

#[cfg(test)]
mod tests;
