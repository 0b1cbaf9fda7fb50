//! x86-64 mechanism: descriptor tables, exceptions, interrupt controllers,
//! time, and bringing the other cores up.
//!
//! [`init`] runs once on the boot core after ACPI discovery: per-core GDT/TSS
//! with IST stacks, the IDT, the local APIC, IOAPICs masked, TSC and APIC
//! timer calibrated, every AP in the MADT started, and a check that each
//! core takes timer interrupts and IPIs. Each core's record is reachable
//! through [`current_core`].

pub(crate) mod apic;
mod cpu;
mod gdt;
mod idt;
mod ioapic;
pub mod selftest;
mod smp;
pub(crate) mod time;
pub mod trap;

use core::sync::atomic::Ordering;

pub use cpu::{current_core, Core, CoreState};

use crate::acpi::Platform;
use crate::kprintln;
use crate::memory::{self, Stack};

/// Interrupt vectors the kernel owns. 0x20..0xef stay free for devices.
pub const TIMER_VECTOR: u8 = 0xf0;
/// A test/wake-up IPI: the target counts it.
pub const IPI_VECTOR: u8 = 0xf1;
/// The NIC's receive interrupt (MSI/MSI-X): wakes the core the nic runs on.
pub const NIC_VECTOR: u8 = 0x40;
/// Where the boot check routes the PIT (ISA IRQ 0) through the IOAPIC.
pub const PIT_CHECK_VECTOR: u8 = 0x30;
pub const ERROR_VECTOR: u8 = 0xfe;
pub const SPURIOUS_VECTOR: u8 = 0xff;

/// Every core's periodic timer rate.
pub const TIMER_HZ: u64 = 100;

/// The loader's boot stack (`boot-image/loader/src/paging.rs`, kept by the
/// kernel's tables with its guard page): the boot core keeps running on it.
const BOOT_STACK_BOTTOM: u64 = 0xffff_ffff_c000_1000;
const BOOT_STACK_TOP: u64 = BOOT_STACK_BOTTOM + memory::BOOT_STACK_BYTES;

/// What bring-up found, for the banner.
#[derive(Clone, Copy, Debug)]
pub struct CpuSummary {
    /// Cores running the kernel, the boot core included.
    pub cores_online: usize,
}

/// Gives `core` its IST stacks (recorded in the core and later put in its
/// TSS) and records `stack` as its kernel stack.
fn give_stacks(core: &'static Core, stack: Stack) -> Result<(), &'static str> {
    core.set_stack(stack);
    for slot in 0..cpu::IST_COUNT {
        let ist = memory::alloc_stack(smp::IST_STACK_BYTES).map_err(|_| "no memory for its IST stacks")?;
        core.set_ist(slot, ist);
    }
    Ok(())
}

/// Everything a core does for itself: per-core data, GDT/TSS, IDT, local
/// APIC, periodic timer. Interrupts stay off.
fn bring_up_this_core(core: &'static Core) {
    gdt::load(core);
    cpu::install(core);
    idt::load();
    apic::init_this_core(SPURIOUS_VECTOR, ERROR_VECTOR);
    if let Err(why) = time::start_periodic_timer(TIMER_HZ) {
        kprintln!("warning: core {}: no periodic timer: {why}", core.index());
    }
}

/// Brings up the CPU side of the node on the boot core: see the module doc.
/// Failures that leave the boot core usable are reported and skipped.
pub fn init(platform: &Platform) -> CpuSummary {
    let bsp_apic_id = cpu::cpuid_apic_id();
    let Some(bsp) = cpu::claim(bsp_apic_id) else { crate::fatal(format_args!("no core record for the boot core")) };
    let here = current_stack_pointer();
    let boot_stack = if (BOOT_STACK_BOTTOM..BOOT_STACK_TOP).contains(&here) {
        Stack { bottom: BOOT_STACK_BOTTOM, top: BOOT_STACK_TOP }
    } else {
        kprintln!("warning: boot core runs on an unknown stack at {here:#x}; backtraces will be short");
        Stack { bottom: here & !0xfff, top: (here & !0xfff) + 4096 }
    };
    if let Err(why) = give_stacks(bsp, boot_stack) {
        crate::fatal(format_args!("boot core: {why}"));
    }
    idt::build();
    ioapic::mask_legacy_pic();
    gdt::load(bsp);
    cpu::install(bsp);
    idt::load();
    let mode = apic::init_this_core(SPURIOUS_VECTOR, ERROR_VECTOR);
    bsp.set_state(CoreState::Online);
    let madt = platform.madt();
    let io_apics: alloc::vec::Vec<_> = madt.as_ref().map(|m| m.io_apics().collect()).unwrap_or_default();
    let pins = ioapic::init(&io_apics);

    let calibration = match time::calibrate(platform.pm_timer.as_ref()) {
        Ok(c) => c,
        Err(why) => crate::fatal(format_args!("time calibration: {why}")),
    };
    kprintln!(
        "cpu: tsc_mhz={} lapic_timer_mhz={} reference={} apic={} apic_id={} ioapics={} ioapic_pins={} invariant_tsc={}",
        sinter_kerncore::clock::to_mhz(calibration.tsc_hz),
        sinter_kerncore::clock::to_mhz(calibration.lapic_timer_hz),
        calibration.reference,
        match mode {
            apic::Mode::XApic => "xapic",
            apic::Mode::X2Apic => "x2apic",
        },
        apic::id(),
        io_apics.len(),
        pins,
        invariant_tsc()
    );
    if let Err(why) = time::start_periodic_timer(TIMER_HZ) {
        kprintln!("warning: boot core: no periodic timer: {why}");
    }

    let apic_ids: alloc::vec::Vec<u32> =
        madt.as_ref().map(|m| m.enabled_local_apics().map(|l| l.apic_id).collect()).unwrap_or_default();
    let started = match smp::start_aps(&apic_ids) {
        Ok(n) => n,
        Err(why) => {
            kprintln!("warning: application processors not started: {why:?}");
            0
        }
    };
    let cores_online = 1 + started;
    check_interrupts(cores_online);
    if let Some(madt) = &madt {
        check_ioapic_routing(madt, bsp_apic_id);
    }
    CpuSummary { cores_online }
}

fn current_stack_pointer() -> u64 {
    let marker = 0u8;
    core::hint::black_box(&marker) as *const u8 as u64
}

fn invariant_tsc() -> bool {
    let max = core::arch::x86_64::__cpuid(0x8000_0000).eax;
    max >= 0x8000_0007 && core::arch::x86_64::__cpuid(0x8000_0007).edx & (1 << 8) != 0
}

/// Lets the boot core take timer interrupts for a moment and pings every
/// AP with an IPI; prints one `cores:` line with what each core counted.
fn check_interrupts(cores_online: usize) {
    let online = || cpu::cores().iter().filter(|c| c.state() == CoreState::Online);
    for core in online().filter(|c| c.index() != 0) {
        apic::send_ipi(core.apic_id(), apic::Ipi::Fixed(IPI_VECTOR));
    }
    let start = time::rdtsc();
    let bsp = current_core();
    let done = || {
        bsp.timer_ticks.load(Ordering::Relaxed) >= 3
            && online().all(|c| c.timer_ticks.load(Ordering::Relaxed) >= 1)
            && online().filter(|c| c.index() != 0).all(|c| c.ipis_received.load(Ordering::Relaxed) >= 1)
    };
    while !done() && time::ns_since(start) < 2_000_000_000 {
        x86_64::instructions::interrupts::enable_and_hlt();
    }
    x86_64::instructions::interrupts::disable();
    let mut line = alloc::string::String::new();
    for core in online() {
        use core::fmt::Write;
        let _ = write!(
            line,
            " core{}=apic:{},ticks:{},ipis:{}",
            core.index(),
            core.apic_id(),
            core.timer_ticks.load(Ordering::Relaxed),
            core.ipis_received.load(Ordering::Relaxed)
        );
    }
    let (unexpected, apic_errors) = trap::unexpected_counts();
    kprintln!(
        "cores: online={cores_online} timer_hz={TIMER_HZ} all_ticking={} unexpected_irqs={unexpected} apic_errors={apic_errors}{line}",
        done()
    );
}

/// Routes the PIT's IRQ 0 through the IOAPIC to the boot core for a few
/// milliseconds and counts what arrives: proof that redirection entries,
/// the MADT's source overrides and EOI work. Prints one `ioapic:` line.
fn check_ioapic_routing(madt: &sinter_kerncore::madt::Madt<'_>, bsp_apic_id: u32) {
    use x86_64::instructions::port::Port;
    let irq0 = madt.isa_irq(0);
    let mut command = Port::<u8>::new(0x43);
    let mut channel0 = Port::<u8>::new(0x40);
    let count = (sinter_kerncore::clock::PIT_HZ / 1000) as u16;
    // SAFETY: PIT channel 0, lobyte/hibyte, mode 2 (rate generator) at
    // 1 kHz; programming the PIT has no memory effects.
    unsafe { command.write(0b0011_0100) };
    // SAFETY: as above, the count's low byte.
    unsafe { channel0.write(count as u8) };
    // SAFETY: as above, the high byte.
    unsafe { channel0.write((count >> 8) as u8) };
    let before = trap::pit_check_irqs();
    let routed = ioapic::route(irq0.gsi, PIT_CHECK_VECTOR, bsp_apic_id, irq0.trigger, irq0.polarity);
    let start = time::rdtsc();
    if routed.is_ok() {
        while trap::pit_check_irqs() - before < 10 && time::ns_since(start) < 1_000_000_000 {
            x86_64::instructions::interrupts::enable_and_hlt();
        }
    }
    x86_64::instructions::interrupts::disable();
    let _ = ioapic::mask(irq0.gsi);
    match routed {
        Ok(()) => kprintln!(
            "ioapic: isa_irq0 -> gsi {} vector {PIT_CHECK_VECTOR:#x} delivered={} in {} us",
            irq0.gsi,
            trap::pit_check_irqs() - before,
            time::ns_since(start) / 1000
        ),
        Err(why) => kprintln!("ioapic: isa_irq0 -> gsi {} not routed: {why:?}", irq0.gsi),
    }
}
