//! XSDT (ACPI 6.5 §5.2.8): the header and one 64-bit pointer per table.

use alloc::vec::Vec;

use crate::sdt::{seal, SdtHeader};

/// Length of an XSDT with `entries` pointers.
pub fn len(entries: usize) -> usize {
    size_of::<SdtHeader>() + 8 * entries
}

/// A sealed XSDT pointing at `tables` (in that order).
pub fn build(tables: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(len(tables.len()));
    crate::sdt::push(&mut out, &SdtHeader::new(*b"XSDT", 1, len(tables.len()) as u32));
    for address in tables {
        // Pointers are unaligned inside the table (offset 36).
        out.extend_from_slice(&address.to_le_bytes());
    }
    seal(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdt::byte_sum;

    #[test]
    fn pointers_follow_the_header() {
        let x = build(&[0x1000, 0x2000_0000_0000]);
        assert_eq!(x.len(), 52);
        assert_eq!(byte_sum(&x), 0);
        assert_eq!(&x[36..44], &0x1000u64.to_le_bytes());
        assert_eq!(&x[44..52], &0x2000_0000_0000u64.to_le_bytes());
    }
}
