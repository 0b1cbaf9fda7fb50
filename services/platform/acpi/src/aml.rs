//! The few AML encodings (ACPI 6.5 §20) the DSDT needs: names, integers,
//! packages, buffers, scopes, devices, EISA IDs and two small resource
//! descriptors. Each function returns the encoded bytes of one term.

use alloc::vec::Vec;

const ZERO_OP: u8 = 0x00;
const ONE_OP: u8 = 0x01;
const NAME_OP: u8 = 0x08;
const BYTE_PREFIX: u8 = 0x0A;
const WORD_PREFIX: u8 = 0x0B;
const DWORD_PREFIX: u8 = 0x0C;
const QWORD_PREFIX: u8 = 0x0E;
const SCOPE_OP: u8 = 0x10;
const BUFFER_OP: u8 = 0x11;
const PACKAGE_OP: u8 = 0x12;
const EXT_OP_PREFIX: u8 = 0x5B;
const DEVICE_OP: u8 = 0x82;
const ROOT_CHAR: u8 = b'\\';

/// A four-character AML name segment (`_S5_`, `COM1`, `_HID`).
pub type NameSeg = [u8; 4];

/// PkgLength (§20.2.4) for a package whose contents (after the PkgLength
/// itself) are `contents` bytes long.
pub fn pkg_length(contents: usize) -> Vec<u8> {
    // One byte holds 6 bits; n > 1 bytes hold 4 + 8·(n−1) bits.
    if contents + 1 < 1 << 6 {
        return alloc::vec![(contents + 1) as u8];
    }
    let mut extra = 1;
    while contents + 1 + extra >= 1 << (4 + 8 * extra) {
        extra += 1;
    }
    let total = contents + 1 + extra;
    let mut out = alloc::vec![((extra as u8) << 6) | (total & 0xF) as u8];
    for i in 0..extra {
        out.push((total >> (4 + 8 * i)) as u8);
    }
    out
}

/// The smallest encoding of an integer constant.
pub fn integer(value: u64) -> Vec<u8> {
    match value {
        0 => alloc::vec![ZERO_OP],
        1 => alloc::vec![ONE_OP],
        2..=0xFF => alloc::vec![BYTE_PREFIX, value as u8],
        0x100..=0xFFFF => [&[WORD_PREFIX][..], &(value as u16).to_le_bytes()].concat(),
        0x1_0000..=0xFFFF_FFFF => [&[DWORD_PREFIX][..], &(value as u32).to_le_bytes()].concat(),
        _ => [&[QWORD_PREFIX][..], &value.to_le_bytes()].concat(),
    }
}

/// `Name(seg, value)`.
pub fn name(seg: NameSeg, value: &[u8]) -> Vec<u8> {
    [&[NAME_OP][..], &seg, value].concat()
}

/// `Package(n) { elements… }` with n = the number of elements (< 256).
pub fn package(elements: &[Vec<u8>]) -> Vec<u8> {
    let mut body = alloc::vec![elements.len() as u8];
    for e in elements {
        body.extend_from_slice(e);
    }
    [&[PACKAGE_OP][..], &pkg_length(body.len()), &body].concat()
}

/// `Buffer() { bytes… }`.
pub fn buffer(bytes: &[u8]) -> Vec<u8> {
    let body = [&integer(bytes.len() as u64)[..], bytes].concat();
    [&[BUFFER_OP][..], &pkg_length(body.len()), &body].concat()
}

/// `Scope(\seg) { terms }` for a root-level name.
pub fn root_scope(seg: NameSeg, terms: &[u8]) -> Vec<u8> {
    let body = [&[ROOT_CHAR][..], &seg, terms].concat();
    [&[SCOPE_OP][..], &pkg_length(body.len()), &body].concat()
}

/// `Device(seg) { terms }`.
pub fn device(seg: NameSeg, terms: &[u8]) -> Vec<u8> {
    let body = [&seg[..], terms].concat();
    [&[EXT_OP_PREFIX, DEVICE_OP][..], &pkg_length(body.len()), &body].concat()
}

/// `EisaId("PNP0501")`: three letters in 5 bits each, then four hex
/// digits, stored big-endian (so PNP0501 is the integer 0x0105_D041).
/// `None` if `id` is not three capitals and four hex digits.
pub fn eisa_id(id: &[u8; 7]) -> Option<u32> {
    let mut value: u32 = 0;
    for &c in &id[..3] {
        if !c.is_ascii_uppercase() {
            return None;
        }
        value = (value << 5) | u32::from(c - 0x40);
    }
    for &c in &id[3..] {
        value = (value << 4) | (c as char).to_digit(16)?;
    }
    Some(value.swap_bytes())
}

/// Resource descriptors (§6.4) for a `_CRS` buffer.
pub mod resource {
    use alloc::vec::Vec;

    /// `IO(Decode16, min, max, align, len)`: small item 0x47.
    pub fn io_decode16(min: u16, max: u16, align: u8, len: u8) -> Vec<u8> {
        let [min_lo, min_hi] = min.to_le_bytes();
        let [max_lo, max_hi] = max.to_le_bytes();
        alloc::vec![0x47, 0x01, min_lo, min_hi, max_lo, max_hi, align, len]
    }

    /// `IRQNoFlags() { irq }`: small item 0x22, edge, active high.
    /// `irq` must be below 16 (validation checks); otherwise the mask is empty.
    pub fn irq_no_flags(irq: u8) -> Vec<u8> {
        let [lo, hi] = 1u16.checked_shl(u32::from(irq)).unwrap_or(0).to_le_bytes();
        alloc::vec![0x22, lo, hi]
    }

    /// End tag with a zero checksum ("treat as valid").
    pub fn end_tag() -> Vec<u8> {
        alloc::vec![0x79, 0x00]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkg_length_sizes() {
        assert_eq!(pkg_length(0), [1]);
        assert_eq!(pkg_length(62), [63]);
        // 63 + 2 = 65 = 0x41: lead 0x41 (one follow byte, low nibble 1), then 0x04.
        assert_eq!(pkg_length(63), [0x41, 0x04]);
        assert_eq!(pkg_length(0xFFD), [0x4F, 0xFF]);
        assert_eq!(pkg_length(0xFFE), [0x81, 0x00, 0x01]);
    }

    #[test]
    fn integers() {
        assert_eq!(integer(0), [0x00]);
        assert_eq!(integer(1), [0x01]);
        assert_eq!(integer(5), [0x0A, 5]);
        assert_eq!(integer(0x3F8), [0x0B, 0xF8, 0x03]);
        assert_eq!(integer(0x1_0000), [0x0C, 0, 0, 1, 0]);
        assert_eq!(integer(1 << 40), [0x0E, 0, 0, 0, 0, 0, 1, 0, 0]);
    }

    #[test]
    fn eisa_ids_match_iasl() {
        assert_eq!(eisa_id(b"PNP0501"), Some(0x0105_D041));
        assert_eq!(eisa_id(b"PNP0A03"), Some(0x030A_D041));
        assert_eq!(eisa_id(b"pnp0501"), None);
        assert_eq!(eisa_id(b"PNP05G1"), None);
    }

    #[test]
    fn s5_package_bytes() {
        let s5 = name(*b"_S5_", &package(&[integer(5), integer(5), integer(0), integer(0)]));
        assert_eq!(s5, [0x08, b'_', b'S', b'5', b'_', 0x12, 0x08, 0x04, 0x0A, 5, 0x0A, 5, 0x00, 0x00]);
    }
}
