//! The Linux x86 boot protocol (Documentation/arch/x86/boot.rst), 64-bit
//! entry, as Sinter's platform service uses it to start an unmodified
//! guest kernel without a BIOS.
//!
//! - [`header`]: reads and checks a bzImage's setup header;
//! - [`layout`]: decides where kernel, initrd, command line, zero page, GDT
//!   and boot page tables go in guest RAM;
//! - [`e820`] and [`zero_page`]: build `struct boot_params`;
//! - [`load`]: writes everything through a [`GuestMemory`] and returns the
//!   vCPU state the 64-bit entry point expects.
//!
//! The kernel image and initrd come from a file on the USB stick: every
//! field is checked and every failure is a [`BootError`]. This crate must
//! never panic on a malformed image and never touch memory except through
//! [`GuestMemory`].
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod cpu;
pub mod e820;
pub mod header;
pub mod layout;
pub mod load;
pub mod zero_page;

pub use cpu::{InitialCpuState, SegmentState};
pub use e820::{E820Entry, E820Type};
pub use header::SetupHeader;
pub use layout::{BootPlan, GuestRamRange};
pub use load::{load, GuestMemory};

/// Why a guest cannot be started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootError {
    /// Shorter than the setup header or than its own `setup_sects` claim.
    ImageTruncated,
    /// No 0xAA55 boot flag or no `HdrS` magic: not a bzImage.
    NotABzImage,
    /// Boot protocol older than 2.12 (no 64-bit entry description).
    ProtocolTooOld { version: u16 },
    /// `xloadflags` lacks XLF_KERNEL_64.
    No64BitEntry,
    /// The kernel is not relocatable and its fixed address does not fit.
    KernelDoesNotFit { needed: u64 },
    /// No room for the initrd under `initrd_addr_max`.
    InitrdDoesNotFit { len: u64 },
    /// The command line is longer than `cmdline_size`.
    CmdlineTooLong { len: usize, max: u32 },
    /// Guest RAM does not cover the low area (below 1 MiB) the boot data needs.
    NoLowMemory,
    /// More memory ranges than `boot_params` has e820 slots (128).
    TooManyMemoryRanges,
    /// The guest memory writer refused a write.
    GuestWrite { gpa: u64 },
}
