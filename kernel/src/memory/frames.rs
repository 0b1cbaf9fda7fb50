//! The kernel's frame allocator (hypervisor pool only) behind a lock.

use sinter_kerncore::frames::{FrameAllocator, FrameSize};
use x86_64::structures::paging::{self, PhysFrame, Size4KiB};
use x86_64::PhysAddr;

use crate::handoff::phys_to_virt;

pub struct KernelFrames {
    pub allocator: FrameAllocator<'static>,
}

impl KernelFrames {
    /// A zeroed 4 KiB frame's physical address.
    pub fn alloc_zeroed_4k(&mut self) -> Option<u64> {
        let frame = self.allocator.alloc(FrameSize::Size4K).ok()?;
        let phys = frame.start().as_u64();
        // SAFETY: a frame just taken from the allocator is ours alone, and the
        // direct map covers all memory the allocator manages.
        unsafe { core::ptr::write_bytes(phys_to_virt(phys) as *mut u8, 0, 4096) };
        Some(phys)
    }
}

// SAFETY: every frame handed out is fresh from the allocator, unused and
// zeroed, so page-table code may own it.
unsafe impl paging::FrameAllocator<Size4KiB> for KernelFrames {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        self.alloc_zeroed_4k().map(|phys| PhysFrame::containing_address(PhysAddr::new(phys)))
    }
}
