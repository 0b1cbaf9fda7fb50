//! Nested page tables (AMD NPT): the guest-physical → host-physical map
//! that `N_CR3` points at. Four levels, so guest-physical addresses below
//! 2^48; leaves of 4 KiB and 2 MiB (no 1 GiB leaves).
//!
//! [`NestedPageTable`] builds and edits a table through [`TableMemory`],
//! which owns the frames; tests back it with plain memory. Coherence works
//! on 4 KiB pages, so unmapping or protecting one 4 KiB page inside a
//! 2 MiB leaf first splits the leaf into 512 small ones with the same
//! frames and rights.
//!
//! Every change that removes or narrows a translation returns a
//! [`TlbFlush`]: each vCPU running on this table must VMRUN with
//! `TLB_CONTROL` = flush-all before it can rely on the change (QEMU TCG has
//! no flush-by-ASID). Memory types: entries leave PAT/PCD/PWT clear (host
//! PAT entry 0, write-back) and combine with the guest's own PAT. The NX
//! bit is only honoured with host `EFER.NXE` set, which Sinter's loader
//! sets.

mod entry;
mod memory;
mod table;

pub use entry::{NptEntry, NptPerm, PageSize};
pub use memory::TableMemory;
pub use table::{MapStats, NestedPageTable, NptError, RamRange, TlbFlush, Translation, Unmapped, MAX_GPA_BITS};
