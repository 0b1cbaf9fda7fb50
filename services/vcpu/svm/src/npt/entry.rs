//! One nested page table entry (the long-mode page table format; every
//! nested access counts as a user access, so U/S is set at every level).

use crate::addr::{PAGE_SIZE_2M, PAGE_SIZE_4K};
use crate::HostPhysAddr;

/// Bits 51:12: the frame or next-table address.
pub const ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;

/// Size of a leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageSize {
    /// A page-table entry.
    Size4K,
    /// A page-directory entry with PS set.
    Size2M,
}

impl PageSize {
    /// Bytes covered.
    pub const fn bytes(self) -> u64 {
        match self {
            Self::Size4K => PAGE_SIZE_4K,
            Self::Size2M => PAGE_SIZE_2M,
        }
    }
}

/// What the guest may do with a mapped page. Reading is implied by being
/// mapped (nested tables cannot express write-only or execute-only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NptPerm {
    /// Writes allowed (a coherence Exclusive/Modified page).
    pub write: bool,
    /// Instruction fetches allowed.
    pub execute: bool,
}

impl NptPerm {
    /// Read-only, executable (a coherence Shared page of RAM).
    pub const READ_EXECUTE: Self = Self { write: false, execute: true };
    /// Read, write and execute (guest RAM held exclusively).
    pub const READ_WRITE_EXECUTE: Self = Self { write: true, execute: true };
    /// Read-only, not executable.
    pub const READ_ONLY: Self = Self { write: false, execute: false };
    /// Read-write, not executable.
    pub const READ_WRITE: Self = Self { write: true, execute: false };
}

/// A raw nested page table entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct NptEntry(pub u64);

impl NptEntry {
    /// P.
    pub const PRESENT: u64 = 1 << 0;
    /// R/W.
    pub const WRITABLE: u64 = 1 << 1;
    /// U/S (required on every nested entry).
    pub const USER: u64 = 1 << 2;
    /// A (set by the CPU).
    pub const ACCESSED: u64 = 1 << 5;
    /// D (set by the CPU, leaves only).
    pub const DIRTY: u64 = 1 << 6;
    /// PS: this PDE maps a 2 MiB page.
    pub const LARGE: u64 = 1 << 7;
    /// NX.
    pub const NO_EXECUTE: u64 = 1 << 63;

    /// An empty (not present) entry.
    pub const EMPTY: Self = Self(0);

    /// A non-leaf entry pointing at the table at `table`. Non-leaf entries
    /// grant everything; rights live in the leaves.
    pub const fn table(table: HostPhysAddr) -> Self {
        Self((table.get() & ADDRESS_MASK) | Self::PRESENT | Self::WRITABLE | Self::USER)
    }

    /// A leaf mapping `frame` (aligned to `size`, checked by the caller).
    pub const fn leaf(frame: HostPhysAddr, size: PageSize, perm: NptPerm) -> Self {
        let mut v = (frame.get() & ADDRESS_MASK) | Self::PRESENT | Self::USER;
        if perm.write {
            v |= Self::WRITABLE;
        }
        if !perm.execute {
            v |= Self::NO_EXECUTE;
        }
        if let PageSize::Size2M = size {
            v |= Self::LARGE;
        }
        Self(v)
    }

    /// P is set.
    pub const fn is_present(self) -> bool {
        self.0 & Self::PRESENT != 0
    }

    /// PS is set (only meaningful above the last level).
    pub const fn is_large(self) -> bool {
        self.0 & Self::LARGE != 0
    }

    /// The frame or table address.
    pub const fn address(self) -> HostPhysAddr {
        HostPhysAddr(self.0 & ADDRESS_MASK)
    }

    /// The rights of a leaf.
    pub const fn perm(self) -> NptPerm {
        NptPerm { write: self.0 & Self::WRITABLE != 0, execute: self.0 & Self::NO_EXECUTE == 0 }
    }

    /// The same leaf with other rights (A/D and the frame kept).
    pub const fn with_perm(self, perm: NptPerm) -> Self {
        let mut v = self.0 & !(Self::WRITABLE | Self::NO_EXECUTE);
        if perm.write {
            v |= Self::WRITABLE;
        }
        if !perm.execute {
            v |= Self::NO_EXECUTE;
        }
        Self(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_bits() {
        let e = NptEntry::leaf(HostPhysAddr(0x1234_5000), PageSize::Size4K, NptPerm::READ_WRITE_EXECUTE);
        assert_eq!(e.0, 0x1234_5000 | 0b111);
        let ro = NptEntry::leaf(HostPhysAddr(0x40_0000), PageSize::Size2M, NptPerm::READ_ONLY);
        assert_eq!(ro.0, (1 << 63) | 0x40_0000 | 0x80 | 0b101);
        assert!(ro.is_large());
        assert_eq!(ro.perm(), NptPerm::READ_ONLY);
        assert_eq!(ro.with_perm(NptPerm::READ_WRITE_EXECUTE).0, 0x40_0000 | 0x80 | 0b111);
        assert_eq!(NptEntry::table(HostPhysAddr(0x9000)).0, 0x9007);
        assert!(!NptEntry::EMPTY.is_present());
    }
}
