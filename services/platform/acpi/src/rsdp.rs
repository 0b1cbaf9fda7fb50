//! RSDP, revision 2 (ACPI 6.5 §5.2.5.3): points at the XSDT only.

use zerocopy::little_endian::{U32, U64};
use zerocopy::{Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::sdt::{checksum, OEM_ID};

/// Root System Description Pointer (36 bytes).
#[repr(C, packed)]
#[derive(Clone, Copy, Debug, IntoBytes, Immutable, KnownLayout, Unaligned)]
pub struct Rsdp {
    pub signature: [u8; 8],
    /// Makes bytes 0..20 sum to 0.
    pub checksum: u8,
    pub oem_id: [u8; 6],
    pub revision: u8,
    /// 0: Sinter has no RSDT; an ACPI 2.0+ guest uses the XSDT.
    pub rsdt_address: U32,
    pub length: U32,
    pub xsdt_address: U64,
    /// Makes all 36 bytes sum to 0.
    pub extended_checksum: u8,
    pub reserved: [u8; 3],
}

const _: () = assert!(size_of::<Rsdp>() == 36);

/// Length of the first-revision part covered by `checksum`.
const V1_LEN: usize = 20;

impl Rsdp {
    /// A sealed RSDP pointing at the XSDT.
    pub fn new(xsdt_address: u64) -> Self {
        let mut rsdp = Self {
            signature: *b"RSD PTR ",
            checksum: 0,
            oem_id: OEM_ID,
            revision: 2,
            rsdt_address: 0.into(),
            length: (size_of::<Self>() as u32).into(),
            xsdt_address: xsdt_address.into(),
            extended_checksum: 0,
            reserved: [0; 3],
        };
        rsdp.checksum = checksum(&rsdp.as_bytes()[..V1_LEN]);
        rsdp.extended_checksum = checksum(rsdp.as_bytes());
        rsdp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdt::byte_sum;

    #[test]
    fn both_checksums_hold() {
        let rsdp = Rsdp::new(0x1234_5678_9ABC);
        assert_eq!(byte_sum(&rsdp.as_bytes()[..V1_LEN]), 0);
        assert_eq!(byte_sum(rsdp.as_bytes()), 0);
        assert_eq!(&rsdp.as_bytes()[24..32], &0x1234_5678_9ABCu64.to_le_bytes());
    }
}
