//! Starting the application processors: INIT-SIPI-SIPI into a real-mode
//! trampoline copied to `memory::trampoline_page()`, which climbs to long
//! mode on the boot core's page tables and calls [`ap_entry`] on a stack of
//! the AP's own. APs start one at a time, so one page of parameters serves.

use core::mem::offset_of;
use core::sync::atomic::Ordering;

use x86_64::registers::control::Cr3;

use super::apic::{self, Ipi};
use super::cpu::{self, Core, CoreState};
use super::{bring_up_this_core, time};
use crate::kprintln;
use crate::memory::{self, phys_to_virt};

/// Where the parameter block sits in the trampoline page.
const PARAMS_OFFSET: usize = 0xf00;
/// Selectors of the trampoline's own GDT.
const TRAMPOLINE_CODE32: u16 = 0x08;
const TRAMPOLINE_DATA: u16 = 0x10;
const TRAMPOLINE_CODE64: u16 = 0x18;
/// How long an AP gets to reach Rust.
const START_TIMEOUT_NS: u64 = 2_000_000_000;

/// A far pointer (m16:32) as `ljmpl *mem` reads it.
#[repr(C)]
#[derive(Clone, Copy)]
struct FarPointer {
    offset: u32,
    selector: u16,
    pad: u16,
}

/// Written by the boot core at PARAMS_OFFSET; read by the trampoline.
#[repr(C)]
#[derive(Clone, Copy)]
struct TrampolineParams {
    gdt: [u64; 4],
    /// limit, base low, base high, unused (`lgdtl` reads 6 bytes).
    gdtr: [u16; 4],
    jump32: FarPointer,
    jump64: FarPointer,
    cr3: u64,
    stack_top: u64,
    entry: u64,
    arg: u64,
}

const P: usize = PARAMS_OFFSET;

// The trampoline. It runs at physical address T (the SIPI page), first in
// real mode with CS = T >> 4, so every access is relative to the page:
// 16-bit code uses DS = CS, 32- and 64-bit code uses ebx = T.
core::arch::global_asm!(
    ".pushsection .text.sinter_ap_trampoline,\"ax\",@progbits",
    ".balign 16",
    ".globl sinter_ap_trampoline_start",
    "sinter_ap_trampoline_start:",
    ".code16",
    "cli",
    "cld",
    "movw %cs, %ax",
    "movw %ax, %ds",
    "movw %ax, %es",
    "movw %ax, %ss",
    "xorl %ebx, %ebx",
    "movw %ax, %bx",
    "shll $4, %ebx",
    "lgdtl {gdtr}",
    "movl %cr0, %eax",
    "orl $1, %eax",
    "movl %eax, %cr0",
    "ljmpl *{jump32}",
    ".code32",
    ".globl sinter_ap_trampoline_32",
    "sinter_ap_trampoline_32:",
    "movw ${data}, %ax",
    "movw %ax, %ds",
    "movw %ax, %es",
    "movw %ax, %ss",
    // CR4.PAE, then the boot core's page tables.
    "movl %cr4, %eax",
    "orl $0x20, %eax",
    "movl %eax, %cr4",
    "movl {cr3}(%ebx), %eax",
    "movl %eax, %cr3",
    // EFER.LME and EFER.NXE (the kernel's tables use NX).
    "movl $0xc0000080, %ecx",
    "rdmsr",
    "orl $0x900, %eax",
    "wrmsr",
    // CR0.PG and CR0.WP: long mode is active after this.
    "movl %cr0, %eax",
    "orl $0x80010000, %eax",
    "movl %eax, %cr0",
    "ljmpl *{jump64}(%ebx)",
    ".code64",
    ".globl sinter_ap_trampoline_64",
    "sinter_ap_trampoline_64:",
    "movl %ebx, %ebx",
    "movw ${data}, %ax",
    "movw %ax, %ds",
    "movw %ax, %es",
    "movw %ax, %ss",
    "movq {stack}(%rbx), %rsp",
    "movq {arg}(%rbx), %rdi",
    "movq {entry}(%rbx), %rax",
    // rbp = 0 ends backtraces; the pushed 0 stands in for a return address.
    "xorl %ebp, %ebp",
    "pushq $0",
    "jmpq *%rax",
    ".globl sinter_ap_trampoline_end",
    "sinter_ap_trampoline_end:",
    ".popsection",
    gdtr = const P + offset_of!(TrampolineParams, gdtr),
    jump32 = const P + offset_of!(TrampolineParams, jump32),
    jump64 = const P + offset_of!(TrampolineParams, jump64),
    cr3 = const P + offset_of!(TrampolineParams, cr3),
    stack = const P + offset_of!(TrampolineParams, stack_top),
    arg = const P + offset_of!(TrampolineParams, arg),
    entry = const P + offset_of!(TrampolineParams, entry),
    data = const TRAMPOLINE_DATA,
    options(att_syntax)
);

extern "C" {
    fn sinter_ap_trampoline_start();
    fn sinter_ap_trampoline_32();
    fn sinter_ap_trampoline_64();
    fn sinter_ap_trampoline_end();
}

/// Stack for each AP's kernel code, and each IST stack.
pub const KERNEL_STACK_BYTES: usize = 64 * 1024;
pub const IST_STACK_BYTES: usize = 16 * 1024;

/// The first Rust code an AP runs: on its own stack, interrupts off, on the
/// trampoline's GDT. `index` is its slot in the core table. Ends in the
/// core's service executor.
extern "sysv64" fn ap_entry(index: u64) -> ! {
    let Some(core) = cpu::cores().get(index as usize) else { crate::power::halt_forever() };
    if let Err(why) = memory::activate_on_this_core() {
        kprintln!("warning: core {index}: kernel page tables not activated: {why:?}");
    }
    bring_up_this_core(core);
    core.set_state(CoreState::Online);
    // Interrupts on for good: the timer and IPIs are counted on this core
    // while its executor runs the services queued for it.
    x86_64::instructions::interrupts::enable();
    crate::exec::run_ap()
}

/// Why APs could not be started at all.
#[derive(Clone, Copy, Debug)]
pub enum SmpError {
    NoTrampolinePage,
    TrampolineTooBig,
    PageTablesAbove4GiB,
}

/// Starts every core in `apic_ids` other than the running one. Returns how
/// many came online; a core that does not is reported and skipped.
pub fn start_aps(apic_ids: &[u32]) -> Result<usize, SmpError> {
    let page = memory::trampoline_page();
    if page == 0 || page >= 0x10_0000 || !page.is_multiple_of(4096) {
        return Err(SmpError::NoTrampolinePage);
    }
    let start = sinter_ap_trampoline_start as *const () as usize;
    let code_len = (sinter_ap_trampoline_end as *const () as usize) - start;
    if code_len > PARAMS_OFFSET {
        return Err(SmpError::TrampolineTooBig);
    }
    // The kernel's own tables (they identity-map the trampoline page); the
    // running ones if the memory module has none yet.
    let cr3 = match memory::kernel_page_table_root() {
        0 => Cr3::read_raw().0.start_address().as_u64(),
        root => root,
    };
    if cr3 >= 1 << 32 {
        return Err(SmpError::PageTablesAbove4GiB);
    }
    let page_virt = phys_to_virt(page);
    // SAFETY: the trampoline page is reserved for this (memory::
    // reserve_trampoline_page), mapped writable by the direct map, and no
    // AP runs from it yet; the source is the assembled code above.
    unsafe { core::ptr::copy_nonoverlapping(start as *const u8, page_virt as *mut u8, code_len) };

    let bsp = cpu::current_core().apic_id();
    let mut online = 0;
    for &apic_id in apic_ids.iter().filter(|&&id| id != bsp) {
        let Some(core) = cpu::claim(apic_id) else {
            kprintln!("warning: more cores than the kernel supports ({}); apic id {apic_id} stays off", cpu::MAX_CORES);
            continue;
        };
        match start_one(core, page, cr3, start) {
            Ok(()) => online += 1,
            Err(why) => {
                core.set_state(CoreState::Failed);
                kprintln!("warning: core {} (apic id {apic_id}) did not start: {why}", core.index());
            }
        }
    }
    Ok(online)
}

fn start_one(core: &'static Core, page: u64, cr3: u64, start: usize) -> Result<(), &'static str> {
    let stack = memory::alloc_stack(KERNEL_STACK_BYTES).map_err(|_| "no memory for its stack")?;
    super::give_stacks(core, stack)?;
    let page32 = page as u32;
    let params = TrampolineParams {
        gdt: [0, 0x00cf_9a00_0000_ffff, 0x00cf_9200_0000_ffff, 0x00af_9a00_0000_ffff],
        gdtr: [
            31,
            (page32 + (P + offset_of!(TrampolineParams, gdt)) as u32) as u16,
            ((page32 + (P + offset_of!(TrampolineParams, gdt)) as u32) >> 16) as u16,
            0,
        ],
        jump32: FarPointer {
            offset: page32 + ((sinter_ap_trampoline_32 as *const () as usize) - start) as u32,
            selector: TRAMPOLINE_CODE32,
            pad: 0,
        },
        jump64: FarPointer {
            offset: page32 + ((sinter_ap_trampoline_64 as *const () as usize) - start) as u32,
            selector: TRAMPOLINE_CODE64,
            pad: 0,
        },
        cr3,
        stack_top: stack.top,
        entry: ap_entry as *const () as u64,
        arg: core.index() as u64,
    };
    let params_virt = phys_to_virt(page) + P as u64;
    // SAFETY: PARAMS_OFFSET + size_of::<TrampolineParams>() lies inside the
    // reserved trampoline page (checked by the const assertion below), and
    // no AP reads it until the SIPI that follows.
    unsafe { core::ptr::write_volatile(params_virt as *mut TrampolineParams, params) };
    core.set_state(CoreState::Starting);
    core::sync::atomic::fence(Ordering::SeqCst);

    // INIT, 10 ms, SIPI, 200 us, SIPI (SDM vol. 3A §8.4.4.1).
    let apic_id = core.apic_id();
    apic::send_ipi(apic_id, Ipi::Init);
    time::delay_ns(10_000_000);
    let vector = (page >> 12) as u8;
    apic::send_ipi(apic_id, Ipi::Startup(vector));
    time::delay_ns(200_000);
    if core.state() != CoreState::Online {
        apic::send_ipi(apic_id, Ipi::Startup(vector));
    }
    let waiting = time::rdtsc();
    while core.state() != CoreState::Online {
        if time::ns_since(waiting) > START_TIMEOUT_NS {
            return Err("not online 2 s after INIT-SIPI-SIPI");
        }
        core::hint::spin_loop();
    }
    Ok(())
}

const _: () = assert!(PARAMS_OFFSET + core::mem::size_of::<TrampolineParams>() <= 4096);
const _: () = assert!(TRAMPOLINE_DATA == 0x10 && TRAMPOLINE_CODE32 == 0x08);
