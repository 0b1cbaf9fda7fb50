//! The hand-off record that the UEFI loader (`boot-image/loader`) gives the
//! kernel, and the virtual-memory layout both sides agree on.
//!
//! Every type is `#[repr(C)]` and `zerocopy`, so the kernel reads the record
//! as plain bytes and can check it (magic, version, size) before trusting a
//! single field. All addresses in the record are *physical*; the kernel reaches
//! them through the direct map at [`DIRECT_MAP_BASE`]. This crate holds data
//! layout only: it must never contain code that touches memory or hardware.
#![no_std]
#![forbid(unsafe_code)]

use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

/// `b"SINTERHO"` read as a little-endian u64.
pub const HANDOFF_MAGIC: u64 = u64::from_le_bytes(*b"SINTERHO");
/// Bumped whenever any type in this crate changes shape.
pub const HANDOFF_VERSION: u32 = 1;

/// The loader maps all physical memory it knows of at this virtual offset
/// (up to [`Handoff::direct_map_size`]), with 2 MiB pages, read-write, NX.
pub const DIRECT_MAP_BASE: u64 = 0xffff_8000_0000_0000;
/// The kernel ELF is linked at (and its segments mapped from) this address.
pub const KERNEL_BASE: u64 = 0xffff_ffff_8000_0000;
/// Size of the boot stack the loader gives the boot processor.
pub const BOOT_STACK_SIZE: u64 = 256 * 1024;
/// Longest payload file name, in bytes (UTF-8, NUL-padded).
pub const FILE_NAME_LEN: usize = 48;

/// Physical address and element count of an array in physical memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct PhysSlice {
    pub addr: u64,
    pub count: u64,
}

/// A half-open physical byte range `[start, end)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct PhysRange {
    pub start: u64,
    pub end: u64,
}

impl PhysRange {
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a stretch of physical memory is. Stored as a `u32` in
/// [`MemoryRegion::kind`] so that an unknown value read from memory is a
/// value to reject, not undefined behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum MemoryKind {
    /// Free RAM (UEFI conventional and boot-services memory).
    Usable = 1,
    /// RAM holding what the loader built: this record, the memory map, page
    /// tables, the boot stack, config and payload files. Reclaimable once the
    /// kernel has copied out what it needs.
    Loader = 2,
    /// RAM holding the kernel's loaded segments.
    KernelImage = 3,
    /// ACPI tables; reclaimable after the kernel has parsed them.
    AcpiReclaimable = 4,
    /// ACPI NVS: never touch.
    AcpiNvs = 5,
    /// UEFI runtime services code/data: never touch.
    FirmwareRuntime = 6,
    /// Memory-mapped I/O ranges the firmware listed.
    Mmio = 7,
    /// Anything else (reserved, unusable, persistent): never touch.
    Reserved = 8,
}

impl MemoryKind {
    pub fn from_raw(raw: u32) -> Option<Self> {
        Some(match raw {
            1 => Self::Usable,
            2 => Self::Loader,
            3 => Self::KernelImage,
            4 => Self::AcpiReclaimable,
            5 => Self::AcpiNvs,
            6 => Self::FirmwareRuntime,
            7 => Self::Mmio,
            8 => Self::Reserved,
            _ => return None,
        })
    }
}

/// One entry of the physical memory map, sorted by `start`, non-overlapping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct MemoryRegion {
    pub start: u64,
    /// Length in bytes (a multiple of 4 KiB).
    pub len: u64,
    /// A [`MemoryKind`] as `u32`.
    pub kind: u32,
    pub _reserved: u32,
}

impl MemoryRegion {
    pub fn kind(&self) -> Option<MemoryKind> {
        MemoryKind::from_raw(self.kind)
    }

    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.len)
    }
}

/// A linear framebuffer left by the firmware's graphics output protocol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct Framebuffer {
    /// Physical base; 0 means "no framebuffer".
    pub base: u64,
    pub size: u64,
    pub width: u32,
    pub height: u32,
    /// Pixels per scan line.
    pub stride: u32,
    /// 0 = RGB (red in the lowest byte), 1 = BGR, 2 = bitmask/other.
    pub pixel_format: u32,
}

/// A file the loader read from the ESP's `\sinter\payload\` folder (guest
/// kernel, initramfs, ...), placed in `Loader` memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct PayloadFile {
    /// UTF-8, NUL-padded.
    pub name: [u8; FILE_NAME_LEN],
    pub addr: u64,
    pub len: u64,
}

impl Default for PayloadFile {
    fn default() -> Self {
        Self::new_zeroed()
    }
}

impl PayloadFile {
    pub fn name(&self) -> &str {
        let end = self.name.iter().position(|&b| b == 0).unwrap_or(FILE_NAME_LEN);
        core::str::from_utf8(&self.name[..end]).unwrap_or("<non-utf8>")
    }
}

/// The record itself. The loader passes its physical address in `rdi`
/// (translated through the direct map) to the kernel's entry point.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct Handoff {
    pub magic: u64,
    pub version: u32,
    /// `size_of::<Handoff>()` as the loader saw it.
    pub size: u32,
    /// Array of [`MemoryRegion`].
    pub memory_map: PhysSlice,
    /// Physical address of the ACPI RSDP (version 2+ preferred); 0 if none.
    pub rsdp: u64,
    pub framebuffer: Framebuffer,
    /// Bytes of `\sinter\cluster.toml`.
    pub cluster_config: PhysSlice,
    /// Bytes of `\sinter\node.toml`.
    pub node_config: PhysSlice,
    /// Array of [`PayloadFile`].
    pub payload_files: PhysSlice,
    /// Where the kernel's segments were loaded.
    pub kernel_image: PhysRange,
    /// The boot processor's stack (guard page below `start` is unmapped).
    pub boot_stack: PhysRange,
    /// CR3 the loader installed: PML4 of the boot page tables.
    pub page_table_root: u64,
    /// Bytes of physical memory mapped at [`DIRECT_MAP_BASE`].
    pub direct_map_size: u64,
    /// TSC read just before the jump to the kernel.
    pub loader_exit_tsc: u64,
}

/// Why a hand-off record was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandoffError {
    TooShort,
    BadMagic,
    VersionMismatch { found: u32 },
    SizeMismatch { found: u32 },
}

impl Handoff {
    /// Checks a record read from memory before any field is used.
    pub fn check(bytes: &[u8]) -> Result<&Handoff, HandoffError> {
        let (record, _) = Handoff::ref_from_prefix(bytes).map_err(|_| HandoffError::TooShort)?;
        if record.magic != HANDOFF_MAGIC {
            return Err(HandoffError::BadMagic);
        }
        if record.version != HANDOFF_VERSION {
            return Err(HandoffError::VersionMismatch { found: record.version });
        }
        if record.size as usize != core::mem::size_of::<Handoff>() {
            return Err(HandoffError::SizeMismatch { found: record.size });
        }
        Ok(record)
    }

    /// A zeroed record with magic, version and size filled in.
    pub fn new() -> Self {
        let mut record = Handoff::new_zeroed();
        record.magic = HANDOFF_MAGIC;
        record.version = HANDOFF_VERSION;
        record.size = core::mem::size_of::<Handoff>() as u32;
        record
    }
}

impl Default for Handoff {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_stable() {
        // The loader and the kernel are built separately; a silent change of
        // shape would make one misread the other.
        assert_eq!(core::mem::size_of::<MemoryRegion>(), 24);
        assert_eq!(core::mem::size_of::<PayloadFile>(), 64);
        assert_eq!(core::mem::size_of::<Handoff>(), 176);
    }

    #[test]
    fn check_accepts_new_and_rejects_damage() {
        let record = Handoff::new();
        let bytes = record.as_bytes();
        assert!(Handoff::check(bytes).is_ok());
        assert_eq!(Handoff::check(&bytes[..10]).unwrap_err(), HandoffError::TooShort);
        let mut bad = record;
        bad.magic ^= 1;
        assert_eq!(Handoff::check(bad.as_bytes()).unwrap_err(), HandoffError::BadMagic);
        let mut bad = record;
        bad.version = 99;
        assert_eq!(Handoff::check(bad.as_bytes()).unwrap_err(), HandoffError::VersionMismatch { found: 99 });
        let mut bad = record;
        bad.size = 8;
        assert_eq!(Handoff::check(bad.as_bytes()).unwrap_err(), HandoffError::SizeMismatch { found: 8 });
    }

    #[test]
    fn memory_kind_round_trips_and_rejects_unknown() {
        for raw in 1..=8 {
            assert_eq!(MemoryKind::from_raw(raw).map(|k| k as u32), Some(raw));
        }
        assert_eq!(MemoryKind::from_raw(0), None);
        assert_eq!(MemoryKind::from_raw(9), None);
    }

    #[test]
    fn payload_name_stops_at_nul() {
        let mut file = PayloadFile::default();
        file.name[..7].copy_from_slice(b"vmlinuz");
        assert_eq!(file.name(), "vmlinuz");
        file.name = [b'a'; FILE_NAME_LEN];
        assert_eq!(file.name().len(), FILE_NAME_LEN);
    }
}
