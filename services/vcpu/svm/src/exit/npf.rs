//! Nested page fault exits (`#VMEXIT(NPF)`, code 0x400): `EXITINFO2` is
//! the faulting guest-physical address, `EXITINFO1` a page-fault-style
//! error code plus two bits saying which walk faulted (APM vol. 2 §15.25.6).

use crate::GuestPhysAddr;

/// The NPF error code (`EXITINFO1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NpfErrorCode(pub u64);

impl NpfErrorCode {
    /// Bit 0: the nested entry was present (a protection fault), else the
    /// GPA is not mapped.
    pub const PRESENT: u64 = 1 << 0;
    /// Bit 1: the access was a write.
    pub const WRITE: u64 = 1 << 1;
    /// Bit 2: user access. Nested walks are always user accesses, so this
    /// is normally set and says nothing about the guest's CPL.
    pub const USER: u64 = 1 << 2;
    /// Bit 3: a reserved bit was set in a nested entry (a Sinter bug).
    pub const RESERVED: u64 = 1 << 3;
    /// Bit 4: instruction fetch.
    pub const FETCH: u64 = 1 << 4;
    /// Bit 32: the fault hit the final translation of the guest's access.
    pub const FINAL_TRANSLATION: u64 = 1 << 32;
    /// Bit 33: the fault hit while translating a guest page-table access.
    pub const GUEST_PAGE_TABLE: u64 = 1 << 33;

    const fn has(self, bit: u64) -> bool {
        self.0 & bit != 0
    }

    /// See [`Self::PRESENT`].
    pub const fn present(self) -> bool {
        self.has(Self::PRESENT)
    }
    /// See [`Self::WRITE`].
    pub const fn write(self) -> bool {
        self.has(Self::WRITE)
    }
    /// See [`Self::USER`].
    pub const fn user(self) -> bool {
        self.has(Self::USER)
    }
    /// See [`Self::RESERVED`].
    pub const fn reserved_bit(self) -> bool {
        self.has(Self::RESERVED)
    }
    /// See [`Self::FETCH`].
    pub const fn fetch(self) -> bool {
        self.has(Self::FETCH)
    }
}

/// Which walk faulted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NpfStage {
    /// The guest's data/code access itself (its final GPA).
    FinalTranslation,
    /// The CPU's read or A/D-bit update of a guest page-table entry.
    GuestPageTable,
    /// Neither bit set (should not happen; reported as is).
    Unknown,
}

/// What kind of access faulted, as the fault service needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NpfAccess {
    /// Data read.
    Read,
    /// Data write (or a page-table A/D update).
    Write,
    /// Instruction fetch.
    Fetch,
}

/// A decoded nested page fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NestedPageFault {
    /// The faulting guest-physical address (byte-exact).
    pub gpa: GuestPhysAddr,
    /// The raw error code.
    pub error: NpfErrorCode,
}

impl NestedPageFault {
    /// Decodes `EXITINFO1`/`EXITINFO2`.
    pub const fn decode(info1: u64, info2: u64) -> Self {
        Self { gpa: GuestPhysAddr(info2), error: NpfErrorCode(info1) }
    }

    /// Which walk faulted.
    pub const fn stage(&self) -> NpfStage {
        // Bit 32 takes precedence when (impossibly) both are set.
        if self.error.has(NpfErrorCode::FINAL_TRANSLATION) {
            NpfStage::FinalTranslation
        } else if self.error.has(NpfErrorCode::GUEST_PAGE_TABLE) {
            NpfStage::GuestPageTable
        } else {
            NpfStage::Unknown
        }
    }

    /// Read, write or fetch.
    pub const fn access(&self) -> NpfAccess {
        if self.error.fetch() {
            NpfAccess::Fetch
        } else if self.error.write() {
            NpfAccess::Write
        } else {
            NpfAccess::Read
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_to_unmapped_page() {
        // What QEMU TCG reports for a store to an unmapped GPA: RW|US, final walk.
        let f = NestedPageFault::decode(NpfErrorCode::WRITE | NpfErrorCode::USER | (1 << 32), 0xfee0_0300);
        assert_eq!(f.gpa, GuestPhysAddr(0xfee0_0300));
        assert!(!f.error.present());
        assert!(f.error.user());
        assert_eq!(f.access(), NpfAccess::Write);
        assert_eq!(f.stage(), NpfStage::FinalTranslation);
    }

    #[test]
    fn guest_page_table_walk_and_protection() {
        let f = NestedPageFault::decode(NpfErrorCode::PRESENT | NpfErrorCode::WRITE | (1 << 33), 0x7000);
        assert!(f.error.present());
        assert_eq!(f.stage(), NpfStage::GuestPageTable);
        let fetch = NestedPageFault::decode(NpfErrorCode::FETCH | NpfErrorCode::PRESENT | (1 << 32), 0x1000);
        assert_eq!(fetch.access(), NpfAccess::Fetch);
        let rsvd = NestedPageFault::decode(NpfErrorCode::RESERVED | NpfErrorCode::PRESENT, 0);
        assert!(rsvd.error.reserved_bit());
        assert_eq!(rsvd.stage(), NpfStage::Unknown);
    }
}
