//! Time: the TSC calibrated against the ACPI PM timer (or the PIT when the
//! FADT has none), the local APIC timer calibrated against the TSC, and
//! busy-wait delays for AP start-up.

use core::sync::atomic::{AtomicU64, Ordering};

use sinter_kerncore::clock::{
    counter_delta, lapic_divide_config, lapic_initial_count, median, ns_to_ticks, rate_hz, PIT_HZ, PM_TIMER_HZ,
};
use x86_64::instructions::port::Port;

use super::apic::{self, TimerConfig};
use crate::acpi::PmTimer;

/// The divider the local APIC timer runs behind.
const LAPIC_DIVISOR: u32 = 16;
/// Length of one calibration run, and how many runs the median is taken of.
const RUN_NS: u64 = 10_000_000;
const RUNS: usize = 5;

static TSC_HZ: AtomicU64 = AtomicU64::new(0);
static LAPIC_TIMER_HZ: AtomicU64 = AtomicU64::new(0);

/// What calibration measured, for the boot log.
#[derive(Clone, Copy, Debug)]
pub struct Calibration {
    pub tsc_hz: u64,
    pub lapic_timer_hz: u64,
    pub reference: &'static str,
}

pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc has no memory effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

pub fn tsc_hz() -> u64 {
    TSC_HZ.load(Ordering::Relaxed)
}

/// Busy-waits `ns` nanoseconds by the TSC (needs [`calibrate`] first; before
/// that it waits a generous fixed number of cycles for a 4 GHz TSC).
pub fn delay_ns(ns: u64) {
    let hz = match tsc_hz() {
        0 => 4_000_000_000,
        hz => hz,
    };
    let start = rdtsc();
    let ticks = ns_to_ticks(ns, hz);
    while rdtsc().wrapping_sub(start) < ticks {
        core::hint::spin_loop();
    }
}

/// Nanoseconds since `start_tsc`.
pub fn ns_since(start_tsc: u64) -> u64 {
    sinter_kerncore::clock::ticks_to_ns(rdtsc().wrapping_sub(start_tsc), tsc_hz())
}

fn read_pm_timer(pm: &PmTimer) -> u32 {
    let mut port = Port::<u32>::new(pm.port);
    // SAFETY: the port is the FADT's PM timer block; reading it has no side effects.
    let value = unsafe { port.read() };
    if pm.bits >= 32 {
        value
    } else {
        value & ((1 << pm.bits) - 1)
    }
}

/// One run against the PM timer: TSC ticks and PM ticks over ~RUN_NS.
fn tsc_run_pm_timer(pm: &PmTimer) -> Option<u64> {
    let target = ns_to_ticks(RUN_NS, PM_TIMER_HZ) as u32;
    // Start on a fresh PM tick so the quantisation error is at most one tick.
    let first = read_pm_timer(pm);
    let mut start = first;
    for _ in 0..10_000_000 {
        start = read_pm_timer(pm);
        if start != first {
            break;
        }
    }
    let tsc_start = rdtsc();
    for _ in 0..100_000_000u64 {
        let now = read_pm_timer(pm);
        let elapsed = counter_delta(start, now, pm.bits);
        if elapsed >= target {
            let tsc = rdtsc().wrapping_sub(tsc_start);
            return rate_hz(tsc, u64::from(elapsed), PM_TIMER_HZ);
        }
    }
    None
}

/// One run against PIT channel 2 in one-shot mode, polled through port 0x61.
fn tsc_run_pit() -> Option<u64> {
    let count = ns_to_ticks(RUN_NS, PIT_HZ) as u16;
    let mut gate = Port::<u8>::new(0x61);
    let mut command = Port::<u8>::new(0x43);
    let mut channel2 = Port::<u8>::new(0x42);
    // SAFETY: port 0x61 bit 0 gates PIT channel 2, bit 1 is the speaker
    // (kept off); the PIT ports only program the timer. No memory effects.
    let saved = unsafe { gate.read() };
    // SAFETY: as above.
    unsafe { gate.write((saved & !0x02) | 0x01) };
    // SAFETY: channel 2, lobyte/hibyte, mode 0 (interrupt on terminal count).
    unsafe { command.write(0b1011_0000) };
    // SAFETY: as above, the low byte of the count.
    unsafe { channel2.write(count as u8) };
    let tsc_start = rdtsc();
    // SAFETY: as above, the high byte; writing it starts the count.
    unsafe { channel2.write((count >> 8) as u8) };
    let mut result = None;
    for _ in 0..100_000_000u64 {
        // SAFETY: reading port 0x61 has no side effects; bit 5 is OUT2.
        if unsafe { gate.read() } & 0x20 != 0 {
            result = rate_hz(rdtsc().wrapping_sub(tsc_start), u64::from(count), PIT_HZ);
            break;
        }
    }
    // SAFETY: restores the gate register as found.
    unsafe { gate.write(saved) };
    result
}

/// The LAPIC timer's rate: count down from the top for ~RUN_NS of TSC.
fn lapic_run() -> Option<u64> {
    let divide_config = lapic_divide_config(LAPIC_DIVISOR)?;
    apic::program_timer(&TimerConfig {
        vector: super::TIMER_VECTOR,
        periodic: false,
        divide_config,
        initial_count: u32::MAX,
        masked: true,
    });
    let start = rdtsc();
    let ticks = ns_to_ticks(RUN_NS, tsc_hz());
    while rdtsc().wrapping_sub(start) < ticks {
        core::hint::spin_loop();
    }
    let counted = u32::MAX - apic::timer_current_count();
    let elapsed = rdtsc().wrapping_sub(start);
    apic::stop_timer();
    rate_hz(u64::from(counted), elapsed, tsc_hz())
}

/// Measures the TSC and the local APIC timer (on the boot core, interrupts
/// off). Each rate is the median of several short runs.
pub fn calibrate(pm_timer: Option<&PmTimer>) -> Result<Calibration, &'static str> {
    let mut samples = [0u64; RUNS];
    let mut taken = 0;
    for _ in 0..RUNS {
        let sample = match pm_timer {
            Some(pm) => tsc_run_pm_timer(pm),
            None => tsc_run_pit(),
        };
        if let Some(hz) = sample {
            samples[taken] = hz;
            taken += 1;
        }
    }
    // Against the PM timer, each run reads the reference's actual elapsed
    // ticks, so a stall (busy host) errs either way: take the median. The
    // PIT run only notices the end late, which inflates the TSC count:
    // take the smallest.
    let tsc_hz = match pm_timer {
        Some(_) => median(&mut samples[..taken]),
        None => samples[..taken].iter().copied().min(),
    }
    .ok_or("the TSC did not advance against the reference clock")?;
    TSC_HZ.store(tsc_hz, Ordering::Relaxed);
    let mut lapic = [0u64; RUNS];
    let mut taken = 0;
    for _ in 0..RUNS {
        if let Some(hz) = lapic_run() {
            lapic[taken] = hz;
            taken += 1;
        }
    }
    let lapic_timer_hz = median(&mut lapic[..taken]).ok_or("the local APIC timer did not count")?;
    LAPIC_TIMER_HZ.store(lapic_timer_hz, Ordering::Relaxed);
    Ok(Calibration { tsc_hz, lapic_timer_hz, reference: if pm_timer.is_some() { "acpi-pm-timer" } else { "pit" } })
}

/// Starts the running core's periodic LAPIC timer at `hz` on TIMER_VECTOR.
pub fn start_periodic_timer(hz: u64) -> Result<(), &'static str> {
    set_timer_period_ns(1_000_000_000 / hz.max(1))
}

/// Changes the period of the running core's periodic LAPIC timer (started
/// by [`start_periodic_timer`]) to `period_ns`, the next interrupt one
/// period from now: a single register write, for the idle loop.
pub fn retune_timer_period_ns(period_ns: u64) -> Result<(), &'static str> {
    let count = lapic_initial_count(LAPIC_TIMER_HZ.load(Ordering::Relaxed), period_ns)
        .ok_or("timer period out of range for the LAPIC timer")?;
    apic::set_timer_initial_count(count);
    Ok(())
}

/// (Re)starts the running core's periodic LAPIC timer with a period of
/// `period_ns`; the first interrupt comes one period from now.
pub fn set_timer_period_ns(period_ns: u64) -> Result<(), &'static str> {
    let divide_config = lapic_divide_config(LAPIC_DIVISOR).ok_or("bad divisor")?;
    let initial_count = lapic_initial_count(LAPIC_TIMER_HZ.load(Ordering::Relaxed), period_ns)
        .ok_or("timer period out of range for the LAPIC timer")?;
    apic::program_timer(&TimerConfig {
        vector: super::TIMER_VECTOR,
        periodic: true,
        divide_config,
        initial_count,
        masked: false,
    });
    Ok(())
}
