//! What every table shares: the 36-byte system description table header
//! (ACPI 6.5 §5.2.6), the generic address structure (§5.2.3.2), the
//! checksum rule and the OEM strings Sinter signs its tables with.

use zerocopy::little_endian::{U32, U64};
use zerocopy::{Immutable, IntoBytes, KnownLayout, Unaligned};

/// OEM ID in every header and in the RSDP.
pub const OEM_ID: [u8; 6] = *b"SINTER";
/// OEM table ID in every header.
pub const OEM_TABLE_ID: [u8; 8] = *b"SINTERVM";
/// OEM revision in every header.
pub const OEM_REVISION: u32 = 1;
/// Creator ID (the "ASL compiler" field): Sinter built these by hand.
pub const CREATOR_ID: [u8; 4] = *b"SNTR";
/// Creator revision: bump when the table layout Sinter emits changes.
pub const CREATOR_REVISION: u32 = 1;

/// Offset of the checksum byte inside an SDT header.
pub const CHECKSUM_OFFSET: usize = 9;

/// The common header of every table except the RSDP and the FACS.
#[repr(C, packed)]
#[derive(Clone, Copy, Debug, IntoBytes, Immutable, KnownLayout, Unaligned)]
pub struct SdtHeader {
    pub signature: [u8; 4],
    pub length: U32,
    pub revision: u8,
    pub checksum: u8,
    pub oem_id: [u8; 6],
    pub oem_table_id: [u8; 8],
    pub oem_revision: U32,
    pub creator_id: [u8; 4],
    pub creator_revision: U32,
}

const _: () = assert!(size_of::<SdtHeader>() == 36);

impl SdtHeader {
    /// A header with Sinter's OEM strings and a zero checksum; the
    /// checksum is set by [`seal`] once the whole table is in bytes.
    pub fn new(signature: [u8; 4], revision: u8, length: u32) -> Self {
        Self {
            signature,
            length: length.into(),
            revision,
            checksum: 0,
            oem_id: OEM_ID,
            oem_table_id: OEM_TABLE_ID,
            oem_revision: OEM_REVISION.into(),
            creator_id: CREATOR_ID,
            creator_revision: CREATOR_REVISION.into(),
        }
    }
}

/// Address space IDs of a [`GenericAddress`] that Sinter uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum AddressSpace {
    SystemIo = 1,
}

/// Access sizes of a [`GenericAddress`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum AccessSize {
    Word = 2,
    Dword = 3,
}

/// Generic Address Structure (12 bytes).
#[repr(C, packed)]
#[derive(Clone, Copy, Debug, Default, IntoBytes, Immutable, KnownLayout, Unaligned)]
pub struct GenericAddress {
    pub address_space: u8,
    pub bit_width: u8,
    pub bit_offset: u8,
    pub access_size: u8,
    pub address: U64,
}

const _: () = assert!(size_of::<GenericAddress>() == 12);

impl GenericAddress {
    /// An I/O port register block of `len` bytes.
    pub fn io(port: u16, len: u8, access: AccessSize) -> Self {
        Self {
            address_space: AddressSpace::SystemIo as u8,
            bit_width: len * 8,
            bit_offset: 0,
            access_size: access as u8,
            address: u64::from(port).into(),
        }
    }
}

/// The byte that makes `bytes` (with that byte counted as zero) sum to 0.
pub fn checksum(bytes: &[u8]) -> u8 {
    0u8.wrapping_sub(bytes.iter().fold(0u8, |sum, b| sum.wrapping_add(*b)))
}

/// Writes the checksum of a whole table (header included) into its header.
pub fn seal(table: &mut [u8]) {
    table[CHECKSUM_OFFSET] = 0;
    table[CHECKSUM_OFFSET] = checksum(table);
}

/// Sum of all bytes mod 256: 0 for a correctly sealed table.
pub fn byte_sum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |sum, b| sum.wrapping_add(*b))
}

/// Appends a zerocopy structure's bytes.
pub fn push<T: IntoBytes + Immutable + ?Sized>(out: &mut alloc::vec::Vec<u8>, value: &T) {
    out.extend_from_slice(value.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_bytes_sum_to_zero() {
        let mut table = alloc::vec![0u8; 40];
        table[..4].copy_from_slice(b"TEST");
        table[20] = 0xAB;
        table[39] = 0x77;
        seal(&mut table);
        assert_eq!(byte_sum(&table), 0);
        // Sealing twice is idempotent.
        let before = table[CHECKSUM_OFFSET];
        seal(&mut table);
        assert_eq!(table[CHECKSUM_OFFSET], before);
    }

    #[test]
    fn header_layout() {
        let h = SdtHeader::new(*b"APIC", 5, 0x1234);
        let b = h.as_bytes();
        assert_eq!(&b[0..4], b"APIC");
        assert_eq!(&b[4..8], &0x1234u32.to_le_bytes());
        assert_eq!(b[8], 5);
        assert_eq!(&b[10..16], b"SINTER");
        assert_eq!(&b[16..24], b"SINTERVM");
        assert_eq!(&b[28..32], b"SNTR");
    }

    #[test]
    fn generic_address_io() {
        let g = GenericAddress::io(0x604, 2, AccessSize::Word);
        assert_eq!(g.as_bytes(), &[1, 16, 0, 2, 0x04, 0x06, 0, 0, 0, 0, 0, 0]);
    }
}
