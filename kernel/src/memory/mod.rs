//! Physical and virtual memory for the kernel.
//!
//! INTERIM: stacks come from a bump pool in .bss, without guard pages. The
//! frame allocator (`sinter-kerncore::frames`) and the kernel's own page
//! tables replace this; the function signatures below are the contract the
//! rest of the kernel uses and will not change.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use sinter_handoff::{MemoryKind, MemoryRegion};

pub use crate::handoff::phys_to_virt;

/// A kernel stack: `[bottom, top)` is usable, the page below `bottom` is a
/// guard page once the kernel's page tables exist.
#[derive(Clone, Copy, Debug)]
pub struct Stack {
    pub bottom: u64,
    pub top: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryError {
    OutOfStackMemory,
    NoLowMemory,
}

const STACK_POOL_SIZE: usize = 4 << 20;

#[repr(align(4096))]
struct StackPool([u8; STACK_POOL_SIZE]);

static mut STACK_POOL: StackPool = StackPool([0; STACK_POOL_SIZE]);
static STACK_POOL_USED: AtomicUsize = AtomicUsize::new(0);
static TRAMPOLINE_PAGE: AtomicU64 = AtomicU64::new(0);

/// Allocates a kernel stack of at least `bytes` (rounded up to 4 KiB).
pub fn alloc_stack(bytes: usize) -> Result<Stack, MemoryError> {
    let size = bytes.div_ceil(4096) * 4096;
    let offset = STACK_POOL_USED.fetch_add(size, Ordering::Relaxed);
    if offset + size > STACK_POOL_SIZE {
        STACK_POOL_USED.fetch_sub(size, Ordering::Relaxed);
        return Err(MemoryError::OutOfStackMemory);
    }
    let base = core::ptr::addr_of!(STACK_POOL) as u64 + offset as u64;
    Ok(Stack { bottom: base, top: base + size as u64 })
}

/// Picks the page the application processors start in (real mode needs it
/// below 1 MiB). Call once, early, with the boot memory map.
pub fn reserve_trampoline_page(map: &[MemoryRegion]) -> Result<u64, MemoryError> {
    let page = map
        .iter()
        .filter(|r| r.kind() == Some(MemoryKind::Usable))
        .flat_map(|r| (r.start..r.end()).step_by(4096))
        .find(|&p| (0x1000..0x9f000).contains(&p) && p % 4096 == 0)
        .ok_or(MemoryError::NoLowMemory)?;
    TRAMPOLINE_PAGE.store(page, Ordering::Relaxed);
    Ok(page)
}

/// Physical address of the AP start-up page (identity-mapped, below 1 MiB),
/// or 0 before [`reserve_trampoline_page`].
pub fn trampoline_page() -> u64 {
    TRAMPOLINE_PAGE.load(Ordering::Relaxed)
}
