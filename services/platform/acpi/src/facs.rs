//! FACS (ACPI 6.5 §5.2.10): required because the FADT is not
//! hardware-reduced. It has no checksum and must be 64-byte aligned.
//! Sinter offers no S4BIOS, no 64-bit wake vector and no global lock
//! hardware; the guest owns the fields it writes (waking vector, lock).

use zerocopy::little_endian::{U32, U64};
use zerocopy::{Immutable, IntoBytes, KnownLayout, Unaligned};

/// Firmware ACPI Control Structure (64 bytes).
#[repr(C, packed)]
#[derive(Clone, Copy, Debug, IntoBytes, Immutable, KnownLayout, Unaligned)]
pub struct Facs {
    pub signature: [u8; 4],
    pub length: U32,
    pub hardware_signature: U32,
    pub firmware_waking_vector: U32,
    pub global_lock: U32,
    pub flags: U32,
    pub x_firmware_waking_vector: U64,
    pub version: u8,
    pub reserved: [u8; 3],
    pub ospm_flags: U32,
    pub reserved2: [u8; 24],
}

const _: () = assert!(size_of::<Facs>() == 64);

/// Required alignment of the FACS in guest-physical memory.
pub const ALIGN: u64 = 64;

impl Facs {
    pub fn new() -> Self {
        Self {
            signature: *b"FACS",
            length: (size_of::<Self>() as u32).into(),
            hardware_signature: 0.into(),
            firmware_waking_vector: 0.into(),
            global_lock: 0.into(),
            flags: 0.into(),
            x_firmware_waking_vector: 0.into(),
            version: 2,
            reserved: [0; 3],
            ospm_flags: 0.into(),
            reserved2: [0; 24],
        }
    }
}

impl Default for Facs {
    fn default() -> Self {
        Self::new()
    }
}
