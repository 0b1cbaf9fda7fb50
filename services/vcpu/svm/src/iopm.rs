//! The I/O permission map (APM vol. 2 §15.10.1): 12 KiB, one bit per port,
//! bit set = intercept. A multi-byte access is intercepted if the bit of any
//! port it touches is set, so the map runs past port 0xFFFF.
//!
//! Sinter intercepts every port: all of the guest's devices are emulated
//! (on the boot node), none is passed through. The builder still supports
//! ranges so a later platform can open some.

use core::ops::RangeInclusive;

use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

/// Size of the IOPM in bytes (three pages).
pub const IOPM_SIZE: usize = 3 * 4096;

/// The I/O permission map, laid out as the CPU reads it.
#[derive(Clone, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C, align(4096))]
pub struct IoPermissionMap([u8; IOPM_SIZE]);

const _: () = assert!(size_of::<IoPermissionMap>() == IOPM_SIZE);

impl IoPermissionMap {
    /// A map that intercepts every port (Sinter's policy).
    pub fn intercept_all() -> Self {
        let mut m = Self::new_zeroed();
        m.0.fill(0xff);
        m
    }

    /// A map that intercepts nothing.
    pub fn allow_all() -> Self {
        Self::new_zeroed()
    }

    /// Sets or clears the intercept for one port.
    pub fn set_port(&mut self, port: u16, intercept: bool) {
        let (byte, bit) = (usize::from(port) / 8, port % 8);
        if intercept {
            self.0[byte] |= 1 << bit;
        } else {
            self.0[byte] &= !(1 << bit);
        }
    }

    /// Sets or clears the intercept for every port in `ports`.
    pub fn set_range(&mut self, ports: RangeInclusive<u16>, intercept: bool) {
        for port in ports {
            self.set_port(port, intercept);
        }
    }

    /// Whether an access of `size` bytes (1, 2 or 4) at `port` exits. The
    /// bits past 0xFFFF (set in both constructors' sense of the policy)
    /// cover accesses that wrap.
    pub fn intercepts(&self, port: u16, size: u8) -> bool {
        (0..usize::from(size.clamp(1, 4))).any(|i| {
            let p = usize::from(port) + i;
            self.0[p / 8] & (1 << (p % 8)) != 0
        })
    }

    /// The raw bytes, for copying into the frame the VMCB points at.
    pub fn bytes(&self) -> &[u8; IOPM_SIZE] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sinter_policy_intercepts_everything() {
        let m = IoPermissionMap::intercept_all();
        for port in [0u16, 0x3f8, 0xcf8, 0xffff] {
            for size in [1, 2, 4] {
                assert!(m.intercepts(port, size));
            }
        }
    }

    #[test]
    fn ranges_and_multi_byte_accesses() {
        let mut m = IoPermissionMap::allow_all();
        m.set_range(0x3f8..=0x3ff, true);
        assert!(m.intercepts(0x3f8, 1));
        assert!(m.intercepts(0x3ff, 1));
        assert!(!m.intercepts(0x3f7, 1));
        assert!(m.intercepts(0x3f6, 4), "a dword at 0x3f6 touches 0x3f8");
        assert!(!m.intercepts(0x400, 4));
        m.set_port(0x3f8, false);
        assert!(!m.intercepts(0x3f8, 1));
        assert_eq!(m.bytes()[0x3f8 / 8], 0xfe);
    }

    #[test]
    fn top_port_does_not_overflow() {
        let mut m = IoPermissionMap::allow_all();
        assert!(!m.intercepts(0xffff, 4));
        m.set_port(0xffff, true);
        assert!(m.intercepts(0xfffe, 2));
    }
}
