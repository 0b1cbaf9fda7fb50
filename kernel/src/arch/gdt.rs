//! Per-core GDT and TSS. The TSS carries the IST stacks that the double
//! fault, NMI and machine check handlers run on, so a blown or corrupt stack
//! still gets a report.

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, Ordering};

use x86_64::instructions::segmentation::{Segment, CS, DS, ES, FS, GS, SS};
use x86_64::instructions::tables::load_tss;
use x86_64::registers::segmentation::SegmentSelector;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::{PrivilegeLevel, VirtAddr};

use super::cpu::{Core, IST_COUNT, MAX_CORES};

/// The selectors every core's GDT has (the AP trampoline's GDT uses the same
/// code/data numbers so nothing changes when the real GDT is loaded).
pub const KERNEL_CODE: SegmentSelector = SegmentSelector::new(1, PrivilegeLevel::Ring0);
pub const KERNEL_DATA: SegmentSelector = SegmentSelector::new(2, PrivilegeLevel::Ring0);

struct Tables {
    tss: TaskStateSegment,
    gdt: GlobalDescriptorTable,
}

/// One core's tables, written once by that core before it loads them.
struct Slot {
    taken: AtomicBool,
    tables: UnsafeCell<MaybeUninit<Tables>>,
}

// SAFETY: `tables` is written only by the one caller that flipped `taken`
// (see `load`), before any shared reference to it exists; afterwards it is
// only read (by that core's CPU through GDTR/TR).
unsafe impl Sync for Slot {}

static SLOTS: [Slot; MAX_CORES] =
    [const { Slot { taken: AtomicBool::new(false), tables: UnsafeCell::new(MaybeUninit::uninit()) } }; MAX_CORES];

/// Builds `core`'s TSS (with its IST stacks, already recorded in `core`) and
/// GDT, and loads them on the running core. Call once per core, on that core.
pub fn load(core: &'static Core) {
    let slot = &SLOTS[core.index()];
    if slot.taken.swap(true, Ordering::AcqRel) {
        panic!("GDT for core {} loaded twice", core.index());
    }
    let mut tss = TaskStateSegment::new();
    for ist in 0..IST_COUNT {
        tss.interrupt_stack_table[ist] = VirtAddr::new(core.ist_top(ist));
    }
    let cell = slot.tables.get();
    // SAFETY: this caller won `taken`, so nobody else writes or reads the
    // slot; the pointer comes from a static and is valid and aligned.
    let Tables { tss, gdt } = unsafe { (*cell).write(Tables { tss, gdt: GlobalDescriptorTable::new() }) };
    let tss: &'static TaskStateSegment = tss;
    let code = gdt.append(Descriptor::kernel_code_segment());
    let data = gdt.append(Descriptor::kernel_data_segment());
    let tss_selector = gdt.append(Descriptor::tss_segment(tss));
    debug_assert_eq!((code, data), (KERNEL_CODE, KERNEL_DATA));
    let gdt: &'static GlobalDescriptorTable = gdt;
    gdt.load();
    // SAFETY: KERNEL_CODE is the 64-bit code segment of the GDT just loaded.
    unsafe { CS::set_reg(KERNEL_CODE) };
    // SAFETY: KERNEL_DATA is a flat writable data segment in this GDT.
    unsafe { SS::set_reg(KERNEL_DATA) };
    // SAFETY: as above.
    unsafe { DS::set_reg(KERNEL_DATA) };
    // SAFETY: as above.
    unsafe { ES::set_reg(KERNEL_DATA) };
    // SAFETY: a null selector in FS/GS is valid in 64-bit mode; the GS
    // base (per-core data) is written after this.
    unsafe { FS::set_reg(SegmentSelector(0)) };
    // SAFETY: as above.
    unsafe { GS::set_reg(SegmentSelector(0)) };
    // SAFETY: the selector names the TSS descriptor just appended; the TSS
    // lives in a static that is never freed or changed again.
    unsafe { load_tss(tss_selector) };
}
