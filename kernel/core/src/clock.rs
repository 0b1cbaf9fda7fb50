//! Clock arithmetic for calibrating the TSC and the local APIC timer against
//! a reference of known frequency (ACPI PM timer, PIT): counter wrap-around,
//! rates from counts, robust medians and timer programming values.
//! Everything is integer maths on numbers the kernel read from hardware.

/// The ACPI power-management timer runs at 3.579545 MHz (ACPI 6.5 §4.8.3.3).
pub const PM_TIMER_HZ: u64 = 3_579_545;
/// The 8254 PIT's input clock.
pub const PIT_HZ: u64 = 1_193_182;

/// Ticks from `start` to `end` of a free-running up-counter that is 24 or 32
/// bits wide, assuming it wrapped at most once.
pub fn counter_delta(start: u32, end: u32, bits: u32) -> u32 {
    let mask = if bits >= 32 { u32::MAX } else { (1u32 << bits) - 1 };
    end.wrapping_sub(start) & mask
}

/// The rate of a counter that advanced `counted` while the reference advanced
/// `reference_ticks` at `reference_hz`. `None` when nothing was measured.
pub fn rate_hz(counted: u64, reference_ticks: u64, reference_hz: u64) -> Option<u64> {
    if reference_ticks == 0 || counted == 0 {
        return None;
    }
    let hz = u128::from(counted) * u128::from(reference_hz) / u128::from(reference_ticks);
    u64::try_from(hz).ok()
}

/// The median of `samples` (the lower middle one for an even count), which
/// discards the runs a busy host stretched. Sorts in place.
pub fn median(samples: &mut [u64]) -> Option<u64> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    Some(samples[(samples.len() - 1) / 2])
}

/// Rounded to the nearest MHz.
pub fn to_mhz(hz: u64) -> u64 {
    (hz + 500_000) / 1_000_000
}

/// Ticks of a `hz` clock in `ns` nanoseconds (saturating).
pub fn ns_to_ticks(ns: u64, hz: u64) -> u64 {
    let ticks = u128::from(ns) * u128::from(hz) / 1_000_000_000;
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

/// Nanoseconds that `ticks` of a `hz` clock take (saturating; 0 for hz 0).
pub fn ticks_to_ns(ticks: u64, hz: u64) -> u64 {
    if hz == 0 {
        return 0;
    }
    u64::try_from(u128::from(ticks) * 1_000_000_000 / u128::from(hz)).unwrap_or(u64::MAX)
}

/// Local APIC timer Divide Configuration Register value for `divisor`
/// (SDM vol. 3A Figure 11-10): bits 0, 1 and 3.
pub fn lapic_divide_config(divisor: u32) -> Option<u32> {
    Some(match divisor {
        1 => 0b1011,
        2 => 0b0000,
        4 => 0b0001,
        8 => 0b0010,
        16 => 0b0011,
        32 => 0b1000,
        64 => 0b1001,
        128 => 0b1010,
        _ => return None,
    })
}

/// Initial-count value for a timer period of `period_ns` when the timer
/// counts at `timer_hz` (after the divider). `None` when the period is too
/// short for one tick or too long for the 32-bit counter.
pub fn lapic_initial_count(timer_hz: u64, period_ns: u64) -> Option<u32> {
    let ticks = ns_to_ticks(period_ns, timer_hz);
    u32::try_from(ticks).ok().filter(|&t| t > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pm_timer_wraps_at_24_or_32_bits() {
        assert_eq!(counter_delta(10, 30, 24), 20);
        assert_eq!(counter_delta(0xff_fff0, 0x10, 24), 0x20);
        assert_eq!(counter_delta(0xffff_fff0, 0x10, 32), 0x20);
        // A 24-bit counter's reads never have the top byte set, but be safe.
        assert_eq!(counter_delta(0xff_fff0, 0x0100_0010, 24), 0x20);
    }

    #[test]
    fn rates_from_counts() {
        // 10 ms of PM timer, 30 M TSC ticks: a 3 GHz TSC.
        assert_eq!(rate_hz(30_000_000, PM_TIMER_HZ / 100, PM_TIMER_HZ), Some(3_000_037_714));
        assert_eq!(to_mhz(3_000_037_714), 3000);
        assert_eq!(rate_hz(1, 0, PM_TIMER_HZ), None);
        assert_eq!(rate_hz(0, 5, PM_TIMER_HZ), None);
        assert_eq!(rate_hz(u64::MAX, 1, u64::MAX), None);
    }

    #[test]
    fn median_ignores_outliers() {
        assert_eq!(median(&mut [3_000, 2_990, 9_999, 3_010, 10]), Some(3_000));
        assert_eq!(median(&mut [2, 1]), Some(1));
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn lapic_timer_values() {
        assert_eq!(lapic_divide_config(16), Some(0b0011));
        assert_eq!(lapic_divide_config(1), Some(0b1011));
        assert_eq!(lapic_divide_config(3), None);
        // QEMU's APIC timer: 1 GHz / 16; 10 ms is 625_000 ticks.
        assert_eq!(lapic_initial_count(62_500_000, 10_000_000), Some(625_000));
        assert_eq!(lapic_initial_count(62_500_000, 1), None);
        assert_eq!(lapic_initial_count(1_000_000_000, 10_000_000_000), None);
    }

    proptest! {
        #[test]
        fn ns_and_ticks_round_trip_within_one_tick(ns in 0u64..1_000_000_000_000, hz in 1_000u64..10_000_000_000) {
            let back = ticks_to_ns(ns_to_ticks(ns, hz), hz);
            prop_assert!(back <= ns);
            prop_assert!(ns - back <= 1_000_000_000 / hz + 1);
        }

        #[test]
        fn delta_is_exact_below_one_wrap(start in 0u32..(1 << 24), step in 0u32..(1 << 24)) {
            let end = (start + step) & 0xff_ffff;
            prop_assert_eq!(counter_delta(start, end, 24), step);
        }
    }
}
