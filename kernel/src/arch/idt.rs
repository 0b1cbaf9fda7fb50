//! The interrupt descriptor table and the assembly entry stubs. All 256
//! vectors have a stub: it pushes a dummy error code where the CPU pushes
//! none, then the vector number, saves every general register into a
//! [`TrapFrame`] and calls `trap::dispatch`. One IDT serves every core.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

use x86_64::instructions::tables::lidt;
use x86_64::structures::DescriptorTablePointer;
use x86_64::VirtAddr;

use super::cpu::{IST_DOUBLE_FAULT, IST_MACHINE_CHECK, IST_NMI};
use super::gdt::KERNEL_CODE;
use super::trap;

/// Bytes between two entry stubs (each is padded to this).
const STUB_SIZE: u64 = 16;

/// The interrupted context as the entry stub leaves it on the stack.
#[repr(C)]
#[derive(Debug)]
pub struct TrapFrame {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub vector: u64,
    /// The CPU's error code, or 0 for vectors without one.
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

// Entry stubs, one per vector, each 16-byte aligned so stub N sits at
// `sinter_trap_stubs + 16 * N`. Vectors 8, 10-14, 17, 21, 29 and 30 get an
// error code from the CPU; every other stub pushes a 0 in its place.
core::arch::global_asm!(
    ".pushsection .text.sinter_trap_stubs,\"ax\",@progbits",
    ".balign 16",
    ".globl sinter_trap_stubs",
    "sinter_trap_stubs:",
    ".set sinter_vector, 0",
    ".rept 256",
    ".balign 16",
    ".if (sinter_vector == 8) || ((sinter_vector >= 10) && (sinter_vector <= 14)) || (sinter_vector == 17) || (sinter_vector == 21) || (sinter_vector == 29) || (sinter_vector == 30)",
    ".else",
    "pushq $0",
    ".endif",
    "pushq $sinter_vector",
    "jmp sinter_trap_common",
    ".set sinter_vector, sinter_vector + 1",
    ".endr",
    "",
    // The CPU aligned rsp to 16 before pushing its 5-word frame; with the
    // error code, the vector and 15 registers the stack is 16-aligned again
    // at the call, as the SysV ABI wants.
    "sinter_trap_common:",
    "pushq %r15",
    "pushq %r14",
    "pushq %r13",
    "pushq %r12",
    "pushq %r11",
    "pushq %r10",
    "pushq %r9",
    "pushq %r8",
    "pushq %rbp",
    "pushq %rdi",
    "pushq %rsi",
    "pushq %rdx",
    "pushq %rcx",
    "pushq %rbx",
    "pushq %rax",
    "cld",
    "movq %rsp, %rdi",
    "call {dispatch}",
    "popq %rax",
    "popq %rbx",
    "popq %rcx",
    "popq %rdx",
    "popq %rsi",
    "popq %rdi",
    "popq %rbp",
    "popq %r8",
    "popq %r9",
    "popq %r10",
    "popq %r11",
    "popq %r12",
    "popq %r13",
    "popq %r14",
    "popq %r15",
    "addq $16, %rsp",
    "iretq",
    ".popsection",
    dispatch = sym trap::dispatch,
    options(att_syntax)
);

extern "C" {
    /// The first entry stub (not callable: an address for the IDT).
    fn sinter_trap_stubs();
}

/// An interrupt-gate descriptor (SDM vol. 3A Figure 6-8).
#[derive(Clone, Copy)]
#[repr(C)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attributes: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

impl Gate {
    const MISSING: Gate =
        Gate { offset_low: 0, selector: 0, ist: 0, type_attributes: 0, offset_mid: 0, offset_high: 0, reserved: 0 };

    /// Present, DPL 0, 64-bit interrupt gate (IF cleared on entry).
    fn interrupt(handler: u64, ist: u8) -> Gate {
        Gate {
            offset_low: handler as u16,
            selector: KERNEL_CODE.0,
            ist,
            type_attributes: 0x8e,
            offset_mid: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        }
    }
}

#[repr(C, align(16))]
struct Idt(UnsafeCell<[Gate; 256]>);

// SAFETY: the table is written only by `build`, once (guarded by BUILT),
// on the boot core before any core loads it; afterwards it is only read.
unsafe impl Sync for Idt {}

static IDT: Idt = Idt(UnsafeCell::new([Gate::MISSING; 256]));
static BUILT: AtomicBool = AtomicBool::new(false);

/// Which IST slot (1-based; 0 = none) a vector's gate uses.
fn ist_for(vector: u8) -> u8 {
    let slot = match vector {
        sinter_kerncore::exception::IST_DOUBLE_FAULT => IST_DOUBLE_FAULT,
        sinter_kerncore::exception::IST_NMI => IST_NMI,
        sinter_kerncore::exception::IST_MACHINE_CHECK => IST_MACHINE_CHECK,
        _ => return 0,
    };
    slot as u8 + 1
}

/// Fills the IDT. Boot core only, before any [`load`].
pub fn build() {
    if BUILT.swap(true, Ordering::AcqRel) {
        return;
    }
    let stubs = sinter_trap_stubs as *const () as u64;
    let mut gates = [Gate::MISSING; 256];
    for (vector, gate) in gates.iter_mut().enumerate() {
        *gate = Gate::interrupt(stubs + STUB_SIZE * vector as u64, ist_for(vector as u8));
    }
    // SAFETY: BUILT guarantees this is the only write, and no core has
    // loaded the table yet, so nothing reads it concurrently.
    unsafe { IDT.0.get().write(gates) };
}

/// Loads the IDT on the running core.
pub fn load() {
    let pointer = DescriptorTablePointer {
        limit: (core::mem::size_of::<[Gate; 256]>() - 1) as u16,
        base: VirtAddr::from_ptr(IDT.0.get()),
    };
    // SAFETY: the IDT is a static filled by `build` with gates to the stubs
    // above, which stay valid for the life of the kernel.
    unsafe { lidt(&pointer) };
}
