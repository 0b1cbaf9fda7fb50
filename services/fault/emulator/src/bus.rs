//! Where emulated accesses go.

use core::fmt;

/// Width of one MMIO access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum AccessSize {
    /// 1 byte.
    Byte = 1,
    /// 2 bytes.
    Word = 2,
    /// 4 bytes.
    Dword = 4,
    /// 8 bytes.
    Qword = 8,
}

impl AccessSize {
    /// Bytes.
    pub const fn bytes(self) -> u8 {
        self as u8
    }

    /// All ones over the access width.
    pub const fn mask(self) -> u64 {
        match self {
            Self::Qword => u64::MAX,
            s => (1u64 << (s as u32 * 8)) - 1,
        }
    }
}

/// Why the device side refused an access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BusError {
    /// No device decodes this address.
    NoDevice,
    /// The device does not accept this width or offset.
    Refused,
}

impl fmt::Display for BusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoDevice => write!(f, "no device at this address"),
            Self::Refused => write!(f, "device refused the access"),
        }
    }
}

/// The guest's MMIO devices (on this node, or an RPC to the boot node).
/// Values are little-endian, in the low `size` bytes.
pub trait MmioBus {
    /// Reads `size` bytes at guest-physical `gpa`.
    fn read(&mut self, gpa: u64, size: AccessSize) -> Result<u64, BusError>;
    /// Writes the low `size` bytes of `value` at guest-physical `gpa`.
    fn write(&mut self, gpa: u64, size: AccessSize, value: u64) -> Result<(), BusError>;
}
