//! A fixed boot heap in .bss for config parsing and tables. The frame
//! allocator (issue "microkernel core") will back a growable heap later.

use linked_list_allocator::LockedHeap;

const BOOT_HEAP_SIZE: usize = 4 << 20;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

static mut HEAP_AREA: [u8; BOOT_HEAP_SIZE] = [0; BOOT_HEAP_SIZE];

pub fn init() {
    let area = core::ptr::addr_of_mut!(HEAP_AREA).cast::<u8>();
    // SAFETY: called once on the boot core before any allocation; HEAP_AREA is
    // used by nothing but the allocator, which owns it from here on.
    unsafe { HEAP.lock().init(area, BOOT_HEAP_SIZE) };
}
