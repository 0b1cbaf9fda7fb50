//! The kernel's own page tables, replacing the loader's: a direct map of
//! physical memory (NX), the kernel image with W^X per section, the boot
//! stack, the AP start-up page (identity, for the instant paging turns on)
//! and a stack area where every stack has an unmapped guard page below it.

use sinter_handoff::{DIRECT_MAP_BASE, KERNEL_BASE};
use x86_64::registers::control::{Cr0, Cr0Flags, Cr3, Cr3Flags};
use x86_64::structures::paging::mapper::MapToError;
use x86_64::structures::paging::{
    FrameAllocator, Mapper, OffsetPageTable, Page, PageTable, PageTableFlags as Flags, PhysFrame, Size2MiB, Size4KiB,
};
use x86_64::{PhysAddr, VirtAddr};

use super::frames::KernelFrames;

/// Kernel stacks live here, each with a guard page below it.
pub const STACK_AREA_BASE: u64 = 0xffff_ff00_0000_0000;
pub const STACK_AREA_SIZE: u64 = 1 << 39;
/// Device memory (PCI BARs) above the direct map is mapped here, uncached.
pub const MMIO_AREA_BASE: u64 = 0xffff_fe00_0000_0000;
pub const MMIO_AREA_SIZE: u64 = 1 << 39;

extern "C" {
    static __text_start: u8;
    static __text_end: u8;
    static __rodata_start: u8;
    static __rodata_end: u8;
    static __data_start: u8;
    static __data_end: u8;
}

fn symbol(s: &u8) -> u64 {
    s as *const u8 as u64
}

/// Where a kernel section sits and how it may be used.
struct Section {
    start: u64,
    end: u64,
    flags: Flags,
}

fn kernel_sections() -> [Section; 3] {
    // SAFETY: the linker script defines these symbols; only their addresses
    // are taken, never their contents.
    let (text, rodata, data) = unsafe {
        (
            (symbol(&__text_start), symbol(&__text_end)),
            (symbol(&__rodata_start), symbol(&__rodata_end)),
            (symbol(&__data_start), symbol(&__data_end)),
        )
    };
    [
        Section { start: text.0, end: text.1, flags: Flags::PRESENT },
        Section { start: rodata.0, end: rodata.1, flags: Flags::PRESENT | Flags::NO_EXECUTE },
        Section { start: data.0, end: data.1, flags: Flags::PRESENT | Flags::WRITABLE | Flags::NO_EXECUTE },
    ]
}

#[derive(Debug, Clone, Copy)]
pub enum PagingError {
    OutOfFrames,
    /// The virtual address was mapped already (reported when it happens).
    AlreadyMapped,
}

fn mapping_error<S: x86_64::structures::paging::PageSize>(e: MapToError<S>, at: u64) -> PagingError {
    match e {
        MapToError::FrameAllocationFailed => PagingError::OutOfFrames,
        _ => {
            crate::kprintln!("memory: cannot map {at:#x}: already mapped");
            PagingError::AlreadyMapped
        }
    }
}

pub struct KernelPageTables {
    mapper: OffsetPageTable<'static>,
    root: PhysFrame,
}

/// What the new tables must cover besides the kernel image.
pub struct Layout {
    pub direct_map_bytes: u64,
    pub kernel_phys_start: u64,
    pub boot_stack_phys: (u64, u64),
    pub boot_stack_virt: u64,
    pub trampoline_page: u64,
}

impl KernelPageTables {
    /// Builds the tables in fresh frames (through the loader's direct map,
    /// which sits at the same offset as ours). Does not load them.
    pub fn build(layout: &Layout, frames: &mut KernelFrames) -> Result<Self, PagingError> {
        let root_frame = frames.allocate_frame().ok_or(PagingError::OutOfFrames)?;
        let root_virt = DIRECT_MAP_BASE + root_frame.start_address().as_u64();
        // SAFETY: a fresh frame, zeroed by `allocate_frame`, reachable through
        // the direct map, and referenced by nothing else.
        let root_table = unsafe { &mut *(root_virt as *mut PageTable) };
        // SAFETY: every table frame is reached through the direct map at
        // DIRECT_MAP_BASE, which both the loader's and our tables provide.
        let mapper = unsafe { OffsetPageTable::new(root_table, VirtAddr::new(DIRECT_MAP_BASE)) };
        let mut tables = Self { mapper, root: root_frame };

        let rw_nx = Flags::PRESENT | Flags::WRITABLE | Flags::NO_EXECUTE | Flags::GLOBAL;
        for offset in (0..layout.direct_map_bytes).step_by(2 << 20) {
            let page = Page::<Size2MiB>::containing_address(VirtAddr::new(DIRECT_MAP_BASE + offset));
            let frame = PhysFrame::<Size2MiB>::containing_address(PhysAddr::new(offset));
            // SAFETY: the direct map aliases physical memory on purpose; the
            // kernel reaches frames only through owners (allocator, grants).
            let flush = unsafe { tables.mapper.map_to(page, frame, rw_nx, frames) }
                .map_err(|e| mapping_error(e, page.start_address().as_u64()))?;
            flush.ignore();
        }
        for section in kernel_sections() {
            for virt in (section.start..section.end).step_by(4096) {
                let phys = layout.kernel_phys_start + (virt - KERNEL_BASE);
                tables.map_4k(virt, phys, section.flags | Flags::GLOBAL, frames)?;
            }
        }
        let (stack_start, stack_end) = layout.boot_stack_phys;
        for (i, phys) in (stack_start..stack_end).step_by(4096).enumerate() {
            tables.map_4k(layout.boot_stack_virt + 4096 * i as u64, phys, rw_nx, frames)?;
        }
        if layout.trampoline_page != 0 {
            // Executable and writable: the APs run 16- and 32-bit code here
            // and write their hand-over words; it is one page below 1 MiB.
            tables.map_4k(layout.trampoline_page, layout.trampoline_page, Flags::PRESENT | Flags::WRITABLE, frames)?;
        }
        Ok(tables)
    }

    pub fn map_4k(&mut self, virt: u64, phys: u64, flags: Flags, frames: &mut KernelFrames) -> Result<(), PagingError> {
        let page = Page::<Size4KiB>::containing_address(VirtAddr::new(virt));
        let frame = PhysFrame::<Size4KiB>::containing_address(PhysAddr::new(phys));
        // SAFETY: callers map frames they own (fresh frames, the kernel image,
        // the boot stack) at addresses nothing else uses.
        let flush = unsafe { self.mapper.map_to(page, frame, flags, frames) }.map_err(|e| mapping_error(e, virt))?;
        flush.flush();
        Ok(())
    }

    /// Loads these tables on this core, with CR0.WP so read-only pages bind
    /// the kernel too.
    pub fn activate(&self) {
        // SAFETY: the tables map everything the kernel uses: its image (same
        // virtual addresses), the current stack, the direct map.
        unsafe { Cr0::update(|flags| flags.insert(Cr0Flags::WRITE_PROTECT)) };
        // SAFETY: as above.
        unsafe { Cr3::write(self.root, Cr3Flags::empty()) };
    }

    pub fn root(&self) -> u64 {
        self.root.start_address().as_u64()
    }
}
