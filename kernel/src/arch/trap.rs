//! Where every vector lands: exceptions get a report and stop the node;
//! the timer, IPI, APIC error and spurious vectors are counted.

use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use sinter_kerncore::backtrace::{walk_frame_pointers, FrameLine, StackBounds, WalkEnd};
use sinter_kerncore::exception::{exception, PageFaultCode};
use x86_64::registers::control::{Cr2, Cr3};

use super::apic;
use super::cpu::{cpuid_apic_id, try_current_core};
use super::idt::TrapFrame;
use super::{ERROR_VECTOR, IPI_VECTOR, NIC_VECTOR, PIT_CHECK_VECTOR, SPURIOUS_VECTOR, TIMER_VECTOR};
use crate::{memory, power, serial};

/// Set once a core has decided to stop the node: other cores that get the
/// stop NMI halt quietly instead of reporting it.
static STOPPING: AtomicBool = AtomicBool::new(false);
/// APIC id of the core printing an exception report.
static REPORTER: AtomicU32 = AtomicU32::new(u32::MAX);
static UNEXPECTED: AtomicU64 = AtomicU64::new(0);
static APIC_ERRORS: AtomicU64 = AtomicU64::new(0);
static PIT_CHECK_IRQS: AtomicU64 = AtomicU64::new(0);
static NIC_IRQS: AtomicU64 = AtomicU64::new(0);

/// Called by the entry stubs with the saved context (interrupts are off).
pub extern "sysv64" fn dispatch(frame: &mut TrapFrame) {
    let vector = frame.vector;
    if vector == 2 && STOPPING.load(Ordering::Acquire) {
        power::halt_forever();
    }
    if vector < 32 {
        exception_report_and_stop(frame);
    }
    let core = try_current_core();
    match vector as u8 {
        TIMER_VECTOR => {
            if let Some(core) = core {
                core.timer_ticks.fetch_add(1, Ordering::Relaxed);
            }
            apic::eoi();
        }
        IPI_VECTOR => {
            if let Some(core) = core {
                core.ipis_received.fetch_add(1, Ordering::Relaxed);
            }
            apic::eoi();
        }
        NIC_VECTOR => {
            NIC_IRQS.fetch_add(1, Ordering::Relaxed);
            crate::exec::wake_this_core_from_interrupt();
            apic::eoi();
        }
        PIT_CHECK_VECTOR => {
            PIT_CHECK_IRQS.fetch_add(1, Ordering::Relaxed);
            apic::eoi();
        }
        ERROR_VECTOR => {
            APIC_ERRORS.fetch_add(1, Ordering::Relaxed);
            let _ = apic::take_error_status();
            apic::eoi();
        }
        // A spurious interrupt is not in service: no EOI.
        SPURIOUS_VECTOR => {
            if let Some(core) = core {
                core.spurious.fetch_add(1, Ordering::Relaxed);
            }
        }
        _ => {
            UNEXPECTED.fetch_add(1, Ordering::Relaxed);
            apic::eoi();
        }
    }
}

/// Interrupts on vectors nothing was routed to, and APIC errors, so far.
pub fn unexpected_counts() -> (u64, u64) {
    (UNEXPECTED.load(Ordering::Relaxed), APIC_ERRORS.load(Ordering::Relaxed))
}

/// NIC interrupts taken so far (all cores).
pub fn nic_irqs() -> u64 {
    NIC_IRQS.load(Ordering::Relaxed)
}

pub fn pit_check_irqs() -> u64 {
    PIT_CHECK_IRQS.load(Ordering::Relaxed)
}

/// Kernel image bounds from the linker script.
fn kernel_image() -> core::ops::Range<u64> {
    extern "C" {
        static __kernel_start: u8;
        static __kernel_end: u8;
    }
    (&raw const __kernel_start) as u64..(&raw const __kernel_end) as u64
}

/// Prints the report for an exception and stops the node. Writes without
/// the console lock (the faulting code may hold it) and touches no memory
/// it has not bounds-checked, so it cannot fault itself.
fn exception_report_and_stop(frame: &TrapFrame) -> ! {
    let core = try_current_core();
    let apic_id = cpuid_apic_id();
    // One report at a time: the first core to fault reports and stops the
    // node; another core faulting meanwhile halts quietly. A fault inside
    // the report itself gets one line and stops at once.
    if STOPPING.swap(true, Ordering::AcqRel) {
        if REPORTER.load(Ordering::Acquire) == apic_id {
            serial::emergency_writer(|w| {
                let _ = writeln!(
                    w,
                    "sinter: EXCEPTION vector {} at rip={:#018x} while reporting another on apic id {apic_id}",
                    frame.vector, frame.rip
                );
            });
            power::fail_stop();
        }
        power::halt_forever();
    }
    REPORTER.store(apic_id, Ordering::Release);
    apic::send_to_others(apic::Ipi::Nmi);
    let kind = exception(frame.vector);
    let (mnemonic, name) = kind.map_or(("?", "unknown"), |k| (k.mnemonic, k.name));
    let core_index = core.map(|c| c.index());
    serial::emergency_writer(|w| {
        let _ = writeln!(w);
        match core_index {
            Some(index) => {
                let _ = writeln!(w, "sinter: EXCEPTION {mnemonic} ({name}) on core {index} (apic id {apic_id})");
            }
            None => {
                let _ = writeln!(w, "sinter: EXCEPTION {mnemonic} ({name}) on apic id {apic_id} (before bring-up)");
            }
        }
        if kind.is_some_and(|k| k.has_error_code) {
            if frame.vector == 14 {
                let _ = writeln!(w, "  error_code={:#x} ({})", frame.error_code, PageFaultCode(frame.error_code));
            } else {
                let _ = writeln!(w, "  error_code={:#x}", frame.error_code);
            }
        }
        if frame.vector == 14 {
            let _ = writeln!(w, "  cr2={:#018x} (faulting address)", Cr2::read_raw());
        }
        let (cr3, _) = Cr3::read_raw();
        let _ = writeln!(
            w,
            "  rip={:#018x} cs={:#06x} rflags={:#010x} rsp={:#018x} ss={:#06x} cr3={:#x}",
            frame.rip,
            frame.cs,
            frame.rflags,
            frame.rsp,
            frame.ss,
            cr3.start_address().as_u64()
        );
        let regs = [
            ("rax", frame.rax),
            ("rbx", frame.rbx),
            ("rcx", frame.rcx),
            ("rdx", frame.rdx),
            ("rsi", frame.rsi),
            ("rdi", frame.rdi),
            ("rbp", frame.rbp),
            ("r8", frame.r8),
            ("r9", frame.r9),
            ("r10", frame.r10),
            ("r11", frame.r11),
            ("r12", frame.r12),
            ("r13", frame.r13),
            ("r14", frame.r14),
            ("r15", frame.r15),
        ];
        for row in regs.chunks(4) {
            let _ = w.write_str(" ");
            for (name, value) in row {
                let _ = write!(w, " {name:>3}={value:#018x}");
            }
            let _ = writeln!(w);
        }
        write_backtrace(w, frame, core);
        let _ = writeln!(w, "sinter: node stopped by an exception");
    });
    power::fail_stop()
}

/// True when `virt` is mapped by the running page tables (read through the
/// direct map), so the backtrace can read a stack word there without
/// faulting inside the handler.
fn is_mapped(virt: u64) -> bool {
    const PRESENT: u64 = 1;
    const HUGE: u64 = 1 << 7;
    const ADDRESS: u64 = 0x000f_ffff_ffff_f000;
    let canonical = (virt >> 47) == 0 || (virt >> 47) == 0x1_ffff;
    if !canonical {
        return false;
    }
    let (root, _) = Cr3::read_raw();
    let mut table = root.start_address().as_u64();
    for level in (0..4).rev() {
        let index = (virt >> (12 + 9 * level)) & 0x1ff;
        let slot = memory::phys_to_virt(table + index * 8);
        // SAFETY: `table` is a page-table frame named by CR3 or by a present
        // entry above it; every frame lies inside the direct map.
        let entry = unsafe { core::ptr::read_volatile(slot as *const u64) };
        if entry & PRESENT == 0 {
            return false;
        }
        if level == 0 || (entry & HUGE != 0 && level <= 2) {
            return true;
        }
        table = entry & ADDRESS;
    }
    true
}

/// Frames beyond #0. The chain must stay inside the stack that holds rsp
/// (or rbp: after an overflow rsp sits in a guard page) when it is one this
/// core knows; on other stacks (service stacks) inside a window above rsp,
/// reading only mapped words.
fn write_backtrace(w: &mut serial::Uart, frame: &TrapFrame, core: Option<&'static super::cpu::Core>) {
    const UNKNOWN_STACK_WINDOW: u64 = 1 << 20;
    let _ = writeln!(w, "  backtrace:");
    let _ = writeln!(w, "{}", FrameLine { index: 0, address: frame.rip });
    let known = core.and_then(|c| c.stack_holding(frame.rsp).or_else(|| c.stack_holding(frame.rbp)));
    let (low, high) = known.unwrap_or((frame.rsp, frame.rsp.saturating_add(UNKNOWN_STACK_WINDOW)));
    let image = kernel_image();
    let mut index = 1;
    let end = walk_frame_pointers(
        frame.rbp,
        StackBounds { low, high },
        |address| {
            if !is_mapped(address) {
                return None;
            }
            // SAFETY: the walker asks only for 8-aligned words inside the
            // stack bounds, and the page holding this one is mapped.
            Some(unsafe { core::ptr::read_volatile(address as *const u64) })
        },
        |address| image.contains(&address),
        |address| {
            let _ = writeln!(w, "{}", FrameLine { index, address });
            index += 1;
        },
    );
    if end != WalkEnd::ChainEnd {
        let _ = writeln!(w, "  backtrace ends: {end}");
    }
}
