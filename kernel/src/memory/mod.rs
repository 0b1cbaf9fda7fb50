//! Physical and virtual memory for the kernel: the node's memory plan
//! (hypervisor pool vs guest RAM), the frame allocator over the hypervisor
//! pool, the kernel's own page tables, and guarded kernel stacks.
//!
//! The policy-free logic (plan, allocator) is `sinter-kerncore::frames`;
//! this module feeds it the boot memory map and touches the page tables.

mod frames;
mod paging;

use core::sync::atomic::{AtomicU64, Ordering};

use sinter_handoff::{MemoryKind, MemoryRegion, BOOT_STACK_SIZE};
use sinter_kerncore::frames::{FrameAllocator, MemoryPlan, PhysRange};
use spin::Mutex;
use x86_64::structures::paging::PageTableFlags as Flags;

pub use crate::handoff::phys_to_virt;
use crate::handoff::BootInfo;
use frames::KernelFrames;
use paging::{KernelPageTables, Layout, MMIO_AREA_BASE, MMIO_AREA_SIZE, STACK_AREA_BASE, STACK_AREA_SIZE};

/// A kernel stack: `[bottom, top)` is mapped; the page below `bottom` is an
/// unmapped guard page, so an overflow faults instead of corrupting memory.
#[derive(Clone, Copy, Debug)]
pub struct Stack {
    pub bottom: u64,
    pub top: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryError {
    NotInitialised,
    OutOfFrames,
    OutOfStackSpace,
    NoLowMemory,
    Plan(sinter_kerncore::frames::FrameError),
    Paging,
}

/// What `init` found, for the banner.
#[derive(Clone, Copy, Debug)]
pub struct MemorySummary {
    pub hypervisor_bytes: u64,
    pub guest_bytes: u64,
    pub free_frames: usize,
}

static FRAMES: Mutex<Option<KernelFrames>> = Mutex::new(None);
static TABLES: Mutex<Option<KernelPageTables>> = Mutex::new(None);
static STACK_CURSOR: AtomicU64 = AtomicU64::new(STACK_AREA_BASE);
static TRAMPOLINE_PAGE: AtomicU64 = AtomicU64::new(0);
static DIRECT_MAP_BYTES: AtomicU64 = AtomicU64::new(0);
static MMIO_CURSOR: AtomicU64 = AtomicU64::new(MMIO_AREA_BASE);
static GUEST_RAM: Mutex<heapless_ranges::Ranges> = Mutex::new(heapless_ranges::Ranges::new());

mod heapless_ranges {
    use sinter_kerncore::frames::PhysRange;

    /// Guest RAM ranges, kept for the hypervisor (fixed capacity).
    pub struct Ranges {
        pub items: [Option<PhysRange>; 64],
    }

    impl Ranges {
        pub const fn new() -> Self {
            Self { items: [None; 64] }
        }
    }
}

/// Picks the page the application processors start in (real mode needs it
/// below 1 MiB). Call once, before [`init`], with the boot memory map.
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
/// or 0 if none was found.
pub fn trampoline_page() -> u64 {
    TRAMPOLINE_PAGE.load(Ordering::Relaxed)
}

/// Splits memory, builds the frame allocator and the kernel's page tables,
/// and switches this core to them.
pub fn init(boot: &BootInfo, reserved_for_hypervisor_mib: u32) -> Result<MemorySummary, MemoryError> {
    let mut usable = alloc::vec::Vec::new();
    for region in boot.memory_map() {
        if region.kind() == Some(MemoryKind::Usable) {
            usable.push(PhysRange::new(region.start, region.end()));
        }
    }
    let plan =
        MemoryPlan::new(&usable, &[], u64::from(reserved_for_hypervisor_mib) << 20).map_err(MemoryError::Plan)?;
    let pool = plan.hypervisor_pool();
    let metadata_home = FrameAllocator::metadata_home(pool, &[]).map_err(MemoryError::Plan)?;
    let words = (metadata_home.len() / 8) as usize;
    // SAFETY: `metadata_home` is usable RAM in the hypervisor pool, reached
    // through the direct map, and excluded from the allocator below, so the
    // slice is the only reference to it for the life of the kernel.
    let metadata =
        unsafe { core::slice::from_raw_parts_mut(phys_to_virt(metadata_home.start.as_u64()) as *mut u64, words) };
    let allocator = FrameAllocator::new(pool, &[metadata_home], metadata).map_err(MemoryError::Plan)?;
    let mut kernel_frames = KernelFrames { allocator };

    let record = boot.record();
    let layout = Layout {
        direct_map_bytes: record.direct_map_size,
        kernel_phys_start: record.kernel_image.start,
        boot_stack_phys: (record.boot_stack.start, record.boot_stack.end),
        boot_stack_virt: boot_stack_virt_base(),
        trampoline_page: trampoline_page(),
    };
    let tables = KernelPageTables::build(&layout, &mut kernel_frames).map_err(|_| MemoryError::Paging)?;
    DIRECT_MAP_BYTES.store(record.direct_map_size, Ordering::Relaxed);
    tables.activate();

    let mut guest = GUEST_RAM.lock();
    for (slot, range) in guest.items.iter_mut().zip(plan.guest_ram()) {
        *slot = Some(*range);
    }
    let summary = MemorySummary {
        hypervisor_bytes: plan.hypervisor_bytes(),
        guest_bytes: plan.guest_bytes(),
        free_frames: kernel_frames.allocator.free_4k_frames(),
    };
    *FRAMES.lock() = Some(kernel_frames);
    *TABLES.lock() = Some(tables);
    Ok(summary)
}

/// The loader's boot stack mapping (see boot-image/loader/src/paging.rs):
/// one guard page, then the stack.
fn boot_stack_virt_base() -> u64 {
    0xffff_ffff_c000_0000 + 4096
}

/// Loads the kernel's page tables on the calling core (APs call this).
pub fn activate_on_this_core() -> Result<(), MemoryError> {
    let tables = TABLES.lock();
    tables.as_ref().ok_or(MemoryError::NotInitialised)?.activate();
    Ok(())
}

/// Physical address of the kernel's PML4 (for AP start-up), or 0.
pub fn kernel_page_table_root() -> u64 {
    TABLES.lock().as_ref().map(KernelPageTables::root).unwrap_or(0)
}

/// Allocates a kernel stack of at least `bytes` (rounded up to 4 KiB) in the
/// stack area, with an unmapped guard page below it.
pub fn alloc_stack(bytes: usize) -> Result<Stack, MemoryError> {
    let pages = bytes.div_ceil(4096).max(1) as u64;
    let span = (pages + 1) * 4096;
    let base = STACK_CURSOR.fetch_add(span, Ordering::Relaxed);
    if base + span > STACK_AREA_BASE + STACK_AREA_SIZE {
        return Err(MemoryError::OutOfStackSpace);
    }
    let bottom = base + 4096;
    let mut frames = FRAMES.lock();
    let frames = frames.as_mut().ok_or(MemoryError::NotInitialised)?;
    let mut tables = TABLES.lock();
    let tables = tables.as_mut().ok_or(MemoryError::NotInitialised)?;
    for page in 0..pages {
        let phys = frames.alloc_zeroed_4k().ok_or(MemoryError::OutOfFrames)?;
        tables
            .map_4k(bottom + page * 4096, phys, Flags::PRESENT | Flags::WRITABLE | Flags::NO_EXECUTE, frames)
            .map_err(|_| MemoryError::Paging)?;
    }
    Ok(Stack { bottom, top: bottom + pages * 4096 })
}

/// A zeroed 4 KiB frame from the hypervisor pool (physical address).
pub fn alloc_frame() -> Result<u64, MemoryError> {
    FRAMES.lock().as_mut().ok_or(MemoryError::NotInitialised)?.alloc_zeroed_4k().ok_or(MemoryError::OutOfFrames)
}

/// A zeroed, physically contiguous 2 MiB frame (physical address), for DMA
/// areas of more than one page.
pub fn alloc_frame_2m() -> Result<u64, MemoryError> {
    use sinter_kerncore::frames::FrameSize;
    let mut frames = FRAMES.lock();
    let frames = frames.as_mut().ok_or(MemoryError::NotInitialised)?;
    let frame = frames.allocator.alloc(FrameSize::Size2M).map_err(|_| MemoryError::OutOfFrames)?;
    let phys = frame.start().as_u64();
    // SAFETY: a frame just taken from the allocator is ours alone, and the
    // direct map covers all memory the allocator manages.
    unsafe { core::ptr::write_bytes(phys_to_virt(phys) as *mut u8, 0, 2 << 20) };
    Ok(phys)
}

/// Bytes of physical memory the direct map covers (0 before [`init`]).
pub fn direct_map_bytes() -> u64 {
    DIRECT_MAP_BYTES.load(Ordering::Relaxed)
}

/// A virtual address for `len` bytes of device memory (a PCI BAR) at
/// `phys`: the direct map if it covers the range, else a fresh uncached
/// mapping in the MMIO area (BARs above the direct map, e.g. 64-bit BARs
/// OVMF places above 4 GiB).
pub fn map_mmio(phys: u64, len: u64) -> Result<u64, MemoryError> {
    let end = phys.checked_add(len).ok_or(MemoryError::Paging)?;
    if end <= direct_map_bytes() {
        return Ok(phys_to_virt(phys));
    }
    let first = phys & !0xfff;
    let pages = (end - first).div_ceil(4096);
    let base = MMIO_CURSOR.fetch_add(pages * 4096, Ordering::Relaxed);
    if base + pages * 4096 > MMIO_AREA_BASE + MMIO_AREA_SIZE {
        return Err(MemoryError::OutOfStackSpace);
    }
    let mut frames = FRAMES.lock();
    let frames = frames.as_mut().ok_or(MemoryError::NotInitialised)?;
    let mut tables = TABLES.lock();
    let tables = tables.as_mut().ok_or(MemoryError::NotInitialised)?;
    let flags = Flags::PRESENT | Flags::WRITABLE | Flags::NO_EXECUTE | Flags::NO_CACHE | Flags::WRITE_THROUGH;
    for page in 0..pages {
        tables.map_4k(base + page * 4096, first + page * 4096, flags, frames).map_err(|_| MemoryError::Paging)?;
    }
    Ok(base + (phys - first))
}

/// Returns a frame from `alloc_frame_2m`.
pub fn free_frame_2m(phys: u64) -> Result<(), MemoryError> {
    use sinter_kerncore::frames::{Frame, FrameSize, PhysAddr};
    let frame = Frame::new(PhysAddr::new(phys), FrameSize::Size2M).ok_or(MemoryError::OutOfFrames)?;
    let mut frames = FRAMES.lock();
    frames.as_mut().ok_or(MemoryError::NotInitialised)?.allocator.free(frame).map_err(MemoryError::Plan)
}

/// Returns a frame from [`alloc_frame`].
pub fn free_frame(phys: u64) -> Result<(), MemoryError> {
    use sinter_kerncore::frames::{Frame, FrameSize, PhysAddr};
    let frame = Frame::new(PhysAddr::new(phys), FrameSize::Size4K).ok_or(MemoryError::OutOfFrames)?;
    let mut frames = FRAMES.lock();
    frames.as_mut().ok_or(MemoryError::NotInitialised)?.allocator.free(frame).map_err(MemoryError::Plan)
}

/// Free 4 KiB frames left in the hypervisor pool.
pub fn free_frames() -> usize {
    FRAMES.lock().as_ref().map(|f| f.allocator.free_4k_frames()).unwrap_or(0)
}

/// Bytes of the boot stack (for reports).
pub const BOOT_STACK_BYTES: u64 = BOOT_STACK_SIZE;

/// The guest RAM ranges of the memory plan (host-physical, in plan order):
/// memory the hypervisor pool does not use, handed to the guest.
pub fn guest_ram() -> alloc::vec::Vec<PhysRange> {
    GUEST_RAM.lock().items.iter().flatten().copied().collect()
}
