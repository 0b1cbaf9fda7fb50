//! The guest's ACPI tables.
//!
//! Given a [`GuestMachine`] (vCPUs with their APIC IDs and NUMA nodes,
//! RAM ranges with their home nodes, NUMA distances, the I/O APIC, the
//! console UART, the emulated chipset's PM ports and the guest-physical
//! address the tables go to), [`build_tables`] returns one byte buffer
//! holding RSDP (v2) → XSDT → FADT (→ FACS, DSDT), MADT, SRAT and SLIT,
//! linked by guest-physical pointers, every checksum sealed. The buffer
//! is checked before it is returned: the input by [`validate()`], the
//! bytes by [`verify()`] (MADT, SRAT and SLIT agree with each other).
//!
//! One file per table (`rsdp.rs`, `xsdt.rs`, `fadt.rs`, `facs.rs`,
//! `dsdt.rs` with `aml.rs`, `madt.rs`, `srat.rs`, `slit.rs`), each a
//! `zerocopy` `#[repr(C, packed)]` layout with its size asserted at
//! compile time. rust-vmm's `acpi_tables` 0.2 builds for
//! `x86_64-unknown-none` but does not fit: its SRAT has no x86 processor
//! (local APIC) affinity entry and no way to add one, its MADT has no
//! interrupt source override or local APIC NMI entry and cannot set
//! `PCAT_COMPAT`, and its SLIT miscomputes the checksum when a diagonal
//! entry is set.
//!
//! This crate must never: touch hardware or guest memory (it returns
//! bytes; the platform service copies them), panic on a machine
//! description (bad input is an [`AcpiError`]), use `unsafe`, or describe
//! a device the platform service does not emulate. The fixed facts it
//! states about the chipset ([`PmRegisters::SINTER`], [`S5_SLP_TYP`],
//! SCI level/active-high, no SMI, no reset register, no RTC, no 8042)
//! are a contract with the device models.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod aml;
pub mod dsdt;
pub mod error;
pub mod facs;
pub mod fadt;
pub mod image;
pub mod machine;
pub mod madt;
pub mod rsdp;
pub mod sdt;
pub mod slit;
pub mod srat;
pub mod validate;
pub mod verify;
pub mod xsdt;

pub use error::{AcpiError, Inconsistency};
pub use image::{build_tables, AcpiImage, PlacedTable};
pub use machine::{
    GuestMachine, GuestMemoryRange, IoApic, IsaSerial, NumaDistances, PmRegisters, VcpuPlacement,
    DEFAULT_REMOTE_DISTANCE, LOCAL_APIC_ADDRESS, LOCAL_DISTANCE, S5_SLP_TYP,
};
pub use validate::validate;
pub use verify::verify;

#[cfg(test)]
mod tests;
