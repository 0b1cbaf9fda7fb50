//! The local APIC of each core: xAPIC through its MMIO page, or x2APIC
//! through MSRs when CPUID offers it. IA32_APIC_BASE.EN is never cleared
//! (QEMU cannot set it again, DESIGN.md §6).

use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use x86_64::registers::model_specific::Msr;

use crate::memory::phys_to_virt;

const IA32_APIC_BASE: u32 = 0x1b;
const APIC_BASE_ENABLE: u64 = 1 << 11;
const APIC_BASE_X2APIC: u64 = 1 << 10;
const X2APIC_MSR_BASE: u32 = 0x800;

/// Register offsets in the xAPIC page (SDM vol. 3A Table 11-1).
mod reg {
    pub const ID: u32 = 0x20;
    pub const TPR: u32 = 0x80;
    pub const EOI: u32 = 0xb0;
    pub const SVR: u32 = 0xf0;
    pub const ESR: u32 = 0x280;
    pub const ICR_LOW: u32 = 0x300;
    pub const ICR_HIGH: u32 = 0x310;
    pub const LVT_TIMER: u32 = 0x320;
    pub const LVT_LINT0: u32 = 0x350;
    pub const LVT_LINT1: u32 = 0x360;
    pub const LVT_ERROR: u32 = 0x370;
    pub const TIMER_INITIAL: u32 = 0x380;
    pub const TIMER_CURRENT: u32 = 0x390;
    pub const TIMER_DIVIDE: u32 = 0x3e0;
}

const SVR_ENABLE: u32 = 1 << 8;
const LVT_MASKED: u32 = 1 << 16;
const LVT_TIMER_PERIODIC: u32 = 1 << 17;
const DELIVERY_NMI: u32 = 0b100 << 8;
const ICR_PENDING: u32 = 1 << 12;
const ICR_ASSERT: u32 = 1 << 14;
const ICR_ALL_BUT_SELF: u32 = 0b11 << 18;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    XApic,
    X2Apic,
}

const MODE_NONE: u8 = 0;
const MODE_XAPIC: u8 = 1;
const MODE_X2APIC: u8 = 2;

static MODE: AtomicU8 = AtomicU8::new(MODE_NONE);
/// Virtual address of the xAPIC page (direct map).
static XAPIC_VIRT: AtomicU64 = AtomicU64::new(0);

/// What one IPI does at the target.
#[derive(Clone, Copy, Debug)]
pub enum Ipi {
    Fixed(u8),
    Nmi,
    Init,
    /// Start-up at physical page `vector << 12`.
    Startup(u8),
}

pub fn mode() -> Option<Mode> {
    match MODE.load(Ordering::Acquire) {
        MODE_XAPIC => Some(Mode::XApic),
        MODE_X2APIC => Some(Mode::X2Apic),
        _ => None,
    }
}

fn read_apic_base() -> u64 {
    // SAFETY: IA32_APIC_BASE exists on every x86-64 CPU; reading it has no
    // side effects.
    unsafe { Msr::new(IA32_APIC_BASE).read() }
}

fn read(offset: u32) -> u32 {
    match mode() {
        Some(Mode::X2Apic) => {
            // SAFETY: in x2APIC mode the APIC registers are MSRs 0x800 + offset/16;
            // `offset` is one of the register constants above.
            unsafe { Msr::new(X2APIC_MSR_BASE + (offset >> 4)).read() as u32 }
        }
        _ => {
            let address = XAPIC_VIRT.load(Ordering::Relaxed) + u64::from(offset);
            // SAFETY: XAPIC_VIRT is the direct-map address of this core's
            // APIC page (set in `init_this_core` before any access) and
            // `offset` a 16-byte aligned register inside it.
            unsafe { core::ptr::read_volatile(address as *const u32) }
        }
    }
}

fn write(offset: u32, value: u32) {
    match mode() {
        Some(Mode::X2Apic) => {
            let mut msr = Msr::new(X2APIC_MSR_BASE + (offset >> 4));
            // SAFETY: as in `read`; APIC register writes have no memory effects.
            unsafe { msr.write(u64::from(value)) };
        }
        _ => {
            let address = XAPIC_VIRT.load(Ordering::Relaxed) + u64::from(offset);
            // SAFETY: as in `read`.
            unsafe { core::ptr::write_volatile(address as *mut u32, value) };
        }
    }
}

fn cpu_has_x2apic() -> bool {
    core::arch::x86_64::__cpuid(1).ecx & (1 << 21) != 0
}

/// Enables and sets up the running core's local APIC: software-enabled with
/// `spurious_vector`, errors to `error_vector`, LINT0 (legacy PIC) masked,
/// LINT1 as NMI, timer masked. The first call picks the mode for all cores.
pub fn init_this_core(spurious_vector: u8, error_vector: u8) -> Mode {
    let mut base = read_apic_base();
    if MODE.load(Ordering::Acquire) == MODE_NONE {
        let mode = if cpu_has_x2apic() { MODE_X2APIC } else { MODE_XAPIC };
        XAPIC_VIRT.store(phys_to_virt(base & 0x000f_ffff_ffff_f000), Ordering::Relaxed);
        MODE.store(mode, Ordering::Release);
    }
    let want = base | APIC_BASE_ENABLE | if mode() == Some(Mode::X2Apic) { APIC_BASE_X2APIC } else { 0 };
    if want != base {
        let mut msr = Msr::new(IA32_APIC_BASE);
        // SAFETY: this only sets EN (and EXTD for x2APIC), never clears
        // EN; the APIC page stays where the firmware put it.
        unsafe { msr.write(want) };
        base = want;
    }
    let _ = base;
    write(reg::TPR, 0);
    write(reg::LVT_TIMER, LVT_MASKED);
    write(reg::LVT_LINT0, LVT_MASKED);
    write(reg::LVT_LINT1, DELIVERY_NMI);
    write(reg::LVT_ERROR, u32::from(error_vector));
    write(reg::ESR, 0);
    write(reg::ESR, 0);
    write(reg::SVR, SVR_ENABLE | u32::from(spurious_vector));
    eoi();
    mode().unwrap_or(Mode::XApic)
}

/// This core's APIC id.
pub fn id() -> u32 {
    match mode() {
        Some(Mode::X2Apic) => read(reg::ID),
        _ => read(reg::ID) >> 24,
    }
}

pub fn eoi() {
    write(reg::EOI, 0);
}

/// Reads and clears the error status register.
pub fn take_error_status() -> u32 {
    write(reg::ESR, 0);
    read(reg::ESR)
}

fn icr_low(ipi: Ipi) -> u32 {
    match ipi {
        Ipi::Fixed(vector) => ICR_ASSERT | u32::from(vector),
        Ipi::Nmi => ICR_ASSERT | DELIVERY_NMI,
        Ipi::Init => ICR_ASSERT | (0b101 << 8),
        Ipi::Startup(page) => ICR_ASSERT | (0b110 << 8) | u32::from(page),
    }
}

fn send_raw(destination: u32, low: u32) {
    x86_64::instructions::interrupts::without_interrupts(|| match mode() {
        Some(Mode::X2Apic) => {
            let mut msr = Msr::new(X2APIC_MSR_BASE + (reg::ICR_LOW >> 4));
            // SAFETY: writing the x2APIC ICR sends one IPI; no memory effects.
            unsafe { msr.write((u64::from(destination) << 32) | u64::from(low)) };
        }
        _ => {
            wait_idle();
            write(reg::ICR_HIGH, destination << 24);
            write(reg::ICR_LOW, low);
            wait_idle();
        }
    })
}

/// Bounded wait for the previous xAPIC IPI to leave.
fn wait_idle() {
    for _ in 0..1_000_000 {
        if read(reg::ICR_LOW) & ICR_PENDING == 0 {
            return;
        }
        core::hint::spin_loop();
    }
}

pub fn send_ipi(apic_id: u32, ipi: Ipi) {
    send_raw(apic_id, icr_low(ipi));
}

/// Sends `ipi` to every core but this one (no-op before the APIC is set up).
pub fn send_to_others(ipi: Ipi) {
    if mode().is_some() {
        send_raw(0, icr_low(ipi) | ICR_ALL_BUT_SELF);
    }
}

/// The timer, counting down at the APIC clock divided by `divisor`.
pub struct TimerConfig {
    pub vector: u8,
    pub periodic: bool,
    pub divide_config: u32,
    pub initial_count: u32,
    pub masked: bool,
}

pub fn program_timer(config: &TimerConfig) {
    let mut lvt = u32::from(config.vector);
    if config.periodic {
        lvt |= LVT_TIMER_PERIODIC;
    }
    if config.masked {
        lvt |= LVT_MASKED;
    }
    write(reg::TIMER_DIVIDE, config.divide_config);
    write(reg::LVT_TIMER, lvt);
    write(reg::TIMER_INITIAL, config.initial_count);
}

/// Restarts the running timer with a new initial count (mode, vector and
/// divider unchanged): one register write.
pub fn set_timer_initial_count(count: u32) {
    write(reg::TIMER_INITIAL, count);
}

pub fn timer_current_count() -> u32 {
    read(reg::TIMER_CURRENT)
}

pub fn stop_timer() {
    write(reg::LVT_TIMER, LVT_MASKED);
    write(reg::TIMER_INITIAL, 0);
}
