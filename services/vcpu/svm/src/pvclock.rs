//! KVM's paravirtual clock ("kvmclock"), as far as Sinter offers it: the
//! `pvclock_vcpu_time_info` and `pvclock_wall_clock` records the guest asks
//! for through `MSR_KVM_SYSTEM_TIME_NEW` / `MSR_KVM_WALL_CLOCK_NEW`
//! (KVM_FEATURE_CLOCKSOURCE2), so that an unmodified Linux learns the TSC
//! frequency without calibrating it against the PIT.
//!
//! The guest TSC is the host TSC (invariant, the same on every vCPU), so
//! one record with `PVCLOCK_TSC_STABLE_BIT` stays valid for ever:
//! `ns = system_time + scale(tsc - tsc_timestamp)`, with
//! `scale(d) = ((d << shift) * mul) >> 32` (`>> -shift` when negative).

/// `MSR_KVM_WALL_CLOCK_NEW`.
pub const MSR_KVM_WALL_CLOCK_NEW: u32 = 0x4b56_4d00;
/// `MSR_KVM_SYSTEM_TIME_NEW`.
pub const MSR_KVM_SYSTEM_TIME_NEW: u32 = 0x4b56_4d01;
/// KVM feature bit: the `_NEW` clock MSRs.
pub const KVM_FEATURE_CLOCKSOURCE2: u32 = 1 << 3;
/// KVM feature bit: the guest may trust `PVCLOCK_TSC_STABLE_BIT`.
pub const KVM_FEATURE_CLOCKSOURCE_STABLE_BIT: u32 = 1 << 24;
/// `pvclock_vcpu_time_info.flags`: the TSC is stable across vCPUs.
pub const PVCLOCK_TSC_STABLE_BIT: u8 = 1;
/// Bit 0 of the system-time MSR value enables the record.
pub const SYSTEM_TIME_ENABLE: u64 = 1;

/// TSC → nanoseconds scale factors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeScale {
    /// `tsc_to_system_mul`.
    pub mul: u32,
    /// `tsc_shift`.
    pub shift: i8,
}

impl TimeScale {
    /// The scale for a TSC of `tsc_hz` (`None` for 0 or absurd rates).
    pub fn for_tsc_hz(tsc_hz: u64) -> Option<Self> {
        const NS: u128 = 1_000_000_000;
        if tsc_hz == 0 {
            return None;
        }
        // ns = ticks * 1e9 / hz = ((ticks << shift) * mul) >> 32, mul < 2^32.
        let mut shift: i32 = 0;
        loop {
            let base = if shift >= 0 { u128::from(tsc_hz) << shift } else { u128::from(tsc_hz) >> -shift };
            if base == 0 {
                return None;
            }
            let mul = (NS << 32) / base;
            if mul < (1u128 << 32) {
                // Keep precision: mul at least 2^31 where possible.
                if mul >= (1u128 << 31) || shift <= -31 {
                    return Some(Self { mul: mul as u32, shift: shift as i8 });
                }
                shift -= 1;
            } else {
                shift += 1;
                if shift > 31 {
                    return None;
                }
            }
        }
    }

    /// Nanoseconds for `ticks` TSC ticks.
    pub fn ticks_to_ns(&self, ticks: u64) -> u64 {
        let shifted = if self.shift >= 0 { ticks << self.shift } else { ticks >> -i32::from(self.shift) };
        ((u128::from(shifted) * u128::from(self.mul)) >> 32) as u64
    }

    /// The TSC rate in kHz as Linux's `pvclock_tsc_khz` derives it.
    pub fn linux_tsc_khz(&self) -> u64 {
        let khz = (1_000_000u64 << 32) / u64::from(self.mul.max(1));
        if self.shift < 0 {
            khz << -i32::from(self.shift)
        } else {
            khz >> self.shift
        }
    }
}

/// `struct pvclock_vcpu_time_info` (32 bytes) with an even version.
pub fn vcpu_time_info(version: u32, tsc_timestamp: u64, system_time_ns: u64, scale: TimeScale) -> [u8; 32] {
    let mut b = [0u8; 32];
    b[0..4].copy_from_slice(&version.to_le_bytes());
    b[8..16].copy_from_slice(&tsc_timestamp.to_le_bytes());
    b[16..24].copy_from_slice(&system_time_ns.to_le_bytes());
    b[24..28].copy_from_slice(&scale.mul.to_le_bytes());
    b[28] = scale.shift as u8;
    b[29] = PVCLOCK_TSC_STABLE_BIT;
    b
}

/// `struct pvclock_wall_clock` (12 bytes): the wall-clock time at guest
/// system time 0.
pub fn wall_clock(version: u32, sec: u32, nsec: u32) -> [u8; 12] {
    let mut b = [0u8; 12];
    b[0..4].copy_from_slice(&version.to_le_bytes());
    b[4..8].copy_from_slice(&sec.to_le_bytes());
    b[8..12].copy_from_slice(&nsec.to_le_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_round_trips_through_linux_formula() {
        for hz in [1_000_000u64, 100_000_000, 999_999_999, 1_000_000_000, 2_994_373_000, 3_700_000_000, 5_000_000_000] {
            let s = TimeScale::for_tsc_hz(hz).unwrap();
            let khz = s.linux_tsc_khz();
            let expected = hz / 1000;
            assert!(khz.abs_diff(expected) * 100_000 <= expected, "{hz} Hz: Linux would see {khz} kHz");
            // One second of ticks is one second, within 1 ppm.
            let ns = s.ticks_to_ns(hz);
            assert!(ns.abs_diff(1_000_000_000) <= 1_000, "{hz} Hz: {ns} ns");
        }
        assert_eq!(TimeScale::for_tsc_hz(0), None);
    }

    #[test]
    fn records_have_linux_layout() {
        let s = TimeScale { mul: 0x1234_5678, shift: -1 };
        let r = vcpu_time_info(2, 0x1111, 0x2222, s);
        assert_eq!(u32::from_le_bytes(r[0..4].try_into().unwrap()), 2);
        assert_eq!(u64::from_le_bytes(r[8..16].try_into().unwrap()), 0x1111);
        assert_eq!(u64::from_le_bytes(r[16..24].try_into().unwrap()), 0x2222);
        assert_eq!(u32::from_le_bytes(r[24..28].try_into().unwrap()), 0x1234_5678);
        assert_eq!(r[28] as i8, -1);
        assert_eq!(r[29], PVCLOCK_TSC_STABLE_BIT);
        assert_eq!(wall_clock(2, 7, 9)[4..8], 7u32.to_le_bytes());
    }
}
