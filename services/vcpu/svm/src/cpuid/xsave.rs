//! XCR0: which XSAVE state components a guest may enable, and the XSAVE
//! area size CPUID reports for them. SVM does not switch XCR0, so XSETBV is
//! intercepted, checked here, and the vcpu service loads the guest's XCR0
//! before VMRUN and the host's after.

/// x87 state (must always be enabled).
pub const XCR0_X87: u64 = 1 << 0;
/// SSE state.
pub const XCR0_SSE: u64 = 1 << 1;
/// AVX (YMM upper halves) state.
pub const XCR0_AVX: u64 = 1 << 2;

/// Components Sinter may offer (then ANDed with the host's): x87, SSE,
/// AVX. No AVX-512, MPX, PKRU or supervisor states.
pub const XCR0_ALLOWED: u64 = XCR0_X87 | XCR0_SSE | XCR0_AVX;

/// Legacy area + XSAVE header.
const LEGACY_AND_HEADER: u32 = 512 + 64;
/// Standard-format offset and size of the AVX component.
pub const AVX_OFFSET: u32 = 576;
/// Size of the AVX component.
pub const AVX_SIZE: u32 = 256;

/// Bytes of the standard-format XSAVE area for the components in `xcr0`.
pub const fn xsave_size(xcr0: u64) -> u32 {
    if xcr0 & XCR0_AVX != 0 {
        AVX_OFFSET + AVX_SIZE
    } else {
        LEGACY_AND_HEADER
    }
}

/// An XSETBV the guest must get #GP for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Xcr0Error {
    /// ECX named an XCR other than XCR0.
    NotXcr0(u32),
    /// x87 cleared.
    X87Cleared,
    /// AVX without SSE.
    AvxWithoutSse,
    /// A component not offered to the guest.
    Unsupported(u64),
}

/// Checks a guest XSETBV of `value` to XCR number `xcr` against the components
/// `supported` (CPUID 0xD.0 EDX:EAX as the guest sees it).
pub fn check_xsetbv(xcr: u32, value: u64, supported: u64) -> Result<(), Xcr0Error> {
    if xcr != 0 {
        return Err(Xcr0Error::NotXcr0(xcr));
    }
    if value & !supported != 0 {
        return Err(Xcr0Error::Unsupported(value & !supported));
    }
    if value & XCR0_X87 == 0 {
        return Err(Xcr0Error::X87Cleared);
    }
    if value & XCR0_AVX != 0 && value & XCR0_SSE == 0 {
        return Err(Xcr0Error::AvxWithoutSse);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xsetbv_rules() {
        let s = XCR0_ALLOWED;
        assert_eq!(check_xsetbv(0, 0b111, s), Ok(()));
        assert_eq!(check_xsetbv(0, 0b011, s), Ok(()));
        assert_eq!(check_xsetbv(1, 0b011, s), Err(Xcr0Error::NotXcr0(1)));
        assert_eq!(check_xsetbv(0, 0b110, s), Err(Xcr0Error::X87Cleared));
        assert_eq!(check_xsetbv(0, 0b101, s), Err(Xcr0Error::AvxWithoutSse));
        assert_eq!(check_xsetbv(0, 0b111 | 1 << 5, s), Err(Xcr0Error::Unsupported(1 << 5)));
        assert_eq!(check_xsetbv(0, 0b111, 0b011), Err(Xcr0Error::Unsupported(0b100)));
        assert_eq!(xsave_size(0b011), 576);
        assert_eq!(xsave_size(0b111), 832);
    }
}
