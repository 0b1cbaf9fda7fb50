//! The MSR permission map (APM vol. 2 §15.11): 8 KiB, two bits per MSR
//! (bit 2n intercepts RDMSR, bit 2n+1 WRMSR) in three 2 KiB ranges:
//!
//! | bytes         | MSRs                      |
//! |---------------|---------------------------|
//! | 0x0000–0x07FF | 0x0000_0000–0x0000_1FFF   |
//! | 0x0800–0x0FFF | 0xC000_0000–0xC000_1FFF   |
//! | 0x1000–0x17FF | 0xC001_0000–0xC001_1FFF   |
//! | 0x1800–0x1FFF | reserved                  |
//!
//! An MSR outside the ranges is always intercepted.

use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

/// Size of the MSRPM in bytes (two pages).
pub const MSRPM_SIZE: usize = 2 * 4096;

/// Bases of the three MSR ranges the map covers.
pub const MSRPM_RANGES: [u32; 3] = [0x0000_0000, 0xc000_0000, 0xc001_0000];

/// MSRs per range.
pub const MSRS_PER_RANGE: u32 = 0x2000;

/// Which accesses of one MSR exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsrIntercept {
    /// RDMSR exits.
    pub read: bool,
    /// WRMSR exits.
    pub write: bool,
}

impl MsrIntercept {
    /// Both directions exit.
    pub const ALL: Self = Self { read: true, write: true };
    /// Neither exits.
    pub const NONE: Self = Self { read: false, write: false };
}

/// The MSR is outside the three ranges: it always exits and cannot be
/// opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsrOutOfRange(pub u32);

/// The MSR permission map, laid out as the CPU reads it.
#[derive(Clone, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C, align(4096))]
pub struct MsrPermissionMap([u8; MSRPM_SIZE]);

const _: () = assert!(size_of::<MsrPermissionMap>() == MSRPM_SIZE);

/// Bit index of the read-intercept bit of `msr`, if the map covers it.
pub fn bit_index(msr: u32) -> Option<usize> {
    MSRPM_RANGES.iter().enumerate().find_map(|(range, &base)| {
        let off = msr.checked_sub(base).filter(|&o| o < MSRS_PER_RANGE)?;
        Some((range * MSRS_PER_RANGE as usize + off as usize) * 2)
    })
}

impl MsrPermissionMap {
    /// A map intercepting every access.
    pub fn intercept_all() -> Self {
        let mut m = Self::new_zeroed();
        m.0.fill(0xff);
        m
    }

    /// Sets the intercepts of `msr`.
    pub fn set(&mut self, msr: u32, intercept: MsrIntercept) -> Result<(), MsrOutOfRange> {
        let bit = bit_index(msr).ok_or(MsrOutOfRange(msr))?;
        for (b, on) in [(bit, intercept.read), (bit + 1, intercept.write)] {
            if on {
                self.0[b / 8] |= 1 << (b % 8);
            } else {
                self.0[b / 8] &= !(1 << (b % 8));
            }
        }
        Ok(())
    }

    /// The intercepts of `msr` (all, outside the ranges).
    pub fn get(&self, msr: u32) -> MsrIntercept {
        match bit_index(msr) {
            None => MsrIntercept::ALL,
            Some(bit) => MsrIntercept {
                read: self.0[bit / 8] & (1 << (bit % 8)) != 0,
                write: self.0[(bit + 1) / 8] & (1 << ((bit + 1) % 8)) != 0,
            },
        }
    }

    /// The raw bytes.
    pub fn bytes(&self) -> &[u8; MSRPM_SIZE] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn layout_matches_the_apm() {
        assert_eq!(bit_index(0), Some(0));
        assert_eq!(bit_index(0x1fff), Some(0x3ffe));
        assert_eq!(bit_index(0x2000), None);
        // LSTAR: byte 0x800 + (0x82*2)/8 = 0x820, bits 4 (read) and 5 (write).
        assert_eq!(bit_index(0xc000_0082), Some(0x820 * 8 + 4));
        assert_eq!(bit_index(0xc001_0000), Some(0x1000 * 8));
        assert_eq!(bit_index(0xc001_2000), None);
        assert_eq!(bit_index(0x4000_0000), None);
    }

    #[test]
    fn set_and_get() {
        let mut m = MsrPermissionMap::intercept_all();
        m.set(0xc000_0082, MsrIntercept::NONE).unwrap();
        assert_eq!(m.bytes()[0x820], !(0b11u8 << 4));
        assert_eq!(m.get(0xc000_0082), MsrIntercept::NONE);
        m.set(0x10, MsrIntercept { read: false, write: true }).unwrap();
        assert_eq!(m.get(0x10), MsrIntercept { read: false, write: true });
        assert_eq!(m.get(0x11), MsrIntercept::ALL);
        assert_eq!(m.set(0x4000_0000, MsrIntercept::NONE), Err(MsrOutOfRange(0x4000_0000)));
        assert_eq!(m.get(0x4000_0000), MsrIntercept::ALL);
        assert!(m.bytes()[0x1800..].iter().all(|&b| b == 0xff), "reserved range stays set");
    }

    proptest! {
        #[test]
        fn setting_one_msr_touches_only_its_bits(msr in prop_oneof![0u32..0x2000, 0xc000_0000u32..0xc000_2000, 0xc001_0000u32..0xc001_2000], other in any::<u32>(), r: bool, w: bool) {
            let mut m = MsrPermissionMap::intercept_all();
            let before = m.get(other);
            m.set(msr, MsrIntercept { read: r, write: w }).unwrap();
            prop_assert_eq!(m.get(msr), MsrIntercept { read: r, write: w });
            if other != msr {
                prop_assert_eq!(m.get(other), before);
            }
        }
    }
}
