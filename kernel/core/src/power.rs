//! ACPI power-off: finding the S5 (soft-off) sleep type in the DSDT's AML.
//!
//! Full AML interpretation is not needed to power off: the DSDT declares
//! `Name (_S5, Package () { SLP_TYPa, SLP_TYPb, ... })` as a constant, and the
//! two values go into PM1a/PM1b_CNT with SLP_EN. This is the same shortcut
//! small kernels take; it is checked against QEMU's and real tables' encodings.

/// The SLP_TYP values for S5 from the `_S5_` package.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SleepTypes {
    pub pm1a: u8,
    pub pm1b: u8,
}

/// PM1 control register bits (ACPI 6.5 §4.8.3.2.1).
pub const SLP_EN: u16 = 1 << 13;
pub const SLP_TYP_SHIFT: u16 = 10;
pub const SCI_EN: u16 = 1;

/// The value to write to PM1x_CNT to enter S5 with `slp_typ`.
pub fn pm1_sleep_value(current: u16, slp_typ: u8) -> u16 {
    (current & !(0b111 << SLP_TYP_SHIFT)) | (u16::from(slp_typ & 0b111) << SLP_TYP_SHIFT) | SLP_EN
}

const NAME_OP: u8 = 0x08;
const PACKAGE_OP: u8 = 0x12;
const ZERO_OP: u8 = 0x00;
const ONE_OP: u8 = 0x01;
const ONES_OP: u8 = 0xff;
const BYTE_PREFIX: u8 = 0x0a;
const WORD_PREFIX: u8 = 0x0b;
const DWORD_PREFIX: u8 = 0x0c;

/// Finds `_S5_` in an AML byte stream (the DSDT body). Returns `None` if it
/// is missing or not a constant package; never panics on any input.
pub fn find_s5(aml: &[u8]) -> Option<SleepTypes> {
    let mut from = 0;
    while let Some(found) = find(&aml[from..], b"_S5_") {
        let at = from + found;
        from = at + 1;
        // Must be a Name declaration: NameOp, optionally a root prefix '\'.
        let is_name = match at {
            0 => false,
            _ if aml[at - 1] == NAME_OP => true,
            _ if at >= 2 && aml[at - 1] == b'\\' && aml[at - 2] == NAME_OP => true,
            _ => false,
        };
        if !is_name {
            continue;
        }
        if let Some(types) = parse_package(aml.get(at + 4..)?) {
            return Some(types);
        }
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn parse_package(bytes: &[u8]) -> Option<SleepTypes> {
    if *bytes.first()? != PACKAGE_OP {
        return None;
    }
    // PkgLength: bits 7..6 of the lead byte count the bytes that follow.
    let lead = *bytes.get(1)?;
    let follow = usize::from(lead >> 6);
    let mut at = 2 + follow;
    let num_elements = *bytes.get(at)?;
    at += 1;
    if num_elements < 2 {
        return None;
    }
    let (pm1a, used) = integer(bytes.get(at..)?)?;
    at += used;
    let (pm1b, _) = integer(bytes.get(at..)?)?;
    Some(SleepTypes { pm1a, pm1b })
}

/// An AML integer constant; returns its low byte and the bytes it used.
fn integer(bytes: &[u8]) -> Option<(u8, usize)> {
    Some(match *bytes.first()? {
        ZERO_OP => (0, 1),
        ONE_OP => (1, 1),
        ONES_OP => (0xff, 1),
        BYTE_PREFIX => (*bytes.get(1)?, 2),
        WORD_PREFIX => (*bytes.get(1)?, 3),
        DWORD_PREFIX => (*bytes.get(1)?, 5),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_style_zero_ops() {
        // QEMU q35: Name (_S5, Package (0x04) { Zero, Zero, Zero, Zero })
        let aml = [0x10, 0x20, NAME_OP, b'_', b'S', b'5', b'_', PACKAGE_OP, 0x06, 0x04, 0, 0, 0, 0];
        assert_eq!(find_s5(&aml), Some(SleepTypes { pm1a: 0, pm1b: 0 }));
    }

    #[test]
    fn byte_prefixed_values_and_root_prefix() {
        // Typical real firmware: Name (\_S5, Package () { 0x07, 0x07, Zero, Zero })
        let aml = [NAME_OP, b'\\', b'_', b'S', b'5', b'_', PACKAGE_OP, 0x0a, 0x04, 0x0a, 0x07, 0x0a, 0x07, 0, 0];
        assert_eq!(find_s5(&aml), Some(SleepTypes { pm1a: 7, pm1b: 7 }));
    }

    #[test]
    fn skips_references_that_are_not_declarations() {
        // A method body mentioning _S5_ before the real declaration.
        let mut aml = vec![0x70, b'_', b'S', b'5', b'_', 0x60];
        aml.extend_from_slice(&[NAME_OP, b'_', b'S', b'5', b'_', PACKAGE_OP, 0x05, 0x02, 0x0a, 0x05, ONE_OP]);
        assert_eq!(find_s5(&aml), Some(SleepTypes { pm1a: 5, pm1b: 1 }));
    }

    #[test]
    fn multi_byte_pkg_length() {
        let aml = [NAME_OP, b'_', b'S', b'5', b'_', PACKAGE_OP, 0x40 | 0x05, 0x00, 0x02, ZERO_OP, ZERO_OP];
        assert_eq!(find_s5(&aml), Some(SleepTypes { pm1a: 0, pm1b: 0 }));
    }

    #[test]
    fn missing_or_truncated_is_none() {
        assert_eq!(find_s5(&[]), None);
        assert_eq!(find_s5(b"_S5_"), None);
        assert_eq!(find_s5(&[NAME_OP, b'_', b'S', b'5', b'_', PACKAGE_OP, 0x05, 0x02, 0x0a]), None);
        assert_eq!(find_s5(&[NAME_OP, b'_', b'S', b'5', b'_', 0x0a, 0x05]), None);
    }

    #[test]
    fn never_panics_on_arbitrary_bytes() {
        let mut state = 0x1234_5678_u32;
        let mut buf = [0u8; 64];
        for _ in 0..20_000 {
            for b in buf.iter_mut() {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                *b = (state % 24) as u8 + if state & 1 == 0 { 0x5f } else { 0 };
            }
            buf[5..9].copy_from_slice(b"_S5_");
            let _ = find_s5(&buf);
        }
    }

    #[test]
    fn sleep_value_sets_type_and_enable() {
        assert_eq!(pm1_sleep_value(0x0001, 0), SCI_EN | SLP_EN);
        assert_eq!(pm1_sleep_value(0x1c01, 5), SCI_EN | (5 << SLP_TYP_SHIFT) | SLP_EN);
    }
}
