//! MADT (ACPI 6.5 §5.2.12): one enabled xAPIC per vCPU, the I/O APIC,
//! interrupt source overrides for ISA IRQ 0 → GSI 2 and for the SCI, and
//! the local APIC NMI on LINT1 of every processor.

use alloc::vec::Vec;

use zerocopy::little_endian::{U16, U32};
use zerocopy::{Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::machine::{GuestMachine, LOCAL_APIC_ADDRESS};
use crate::sdt::{push, seal, SdtHeader};

/// MADT flag: the machine also has dual 8259 PICs.
pub const PCAT_COMPAT: u32 = 1;

/// Entry type numbers (ACPI 6.5 table 5.21).
pub mod entry {
    pub const LOCAL_APIC: u8 = 0;
    pub const IO_APIC: u8 = 1;
    pub const INTERRUPT_SOURCE_OVERRIDE: u8 = 2;
    pub const LOCAL_APIC_NMI: u8 = 4;
}

/// MPS INTI flags (ACPI 6.5 table 5.26).
pub mod inti {
    pub const ACTIVE_HIGH: u16 = 0b01;
    pub const EDGE: u16 = 0b01 << 2;
    pub const LEVEL: u16 = 0b11 << 2;
}

/// Local APIC enabled flag.
pub const LAPIC_ENABLED: u32 = 1;

/// The MADT's fixed part after the SDT header.
#[repr(C, packed)]
#[derive(Clone, Copy, Debug, IntoBytes, Immutable, KnownLayout, Unaligned)]
pub struct MadtFixed {
    pub local_apic_address: U32,
    pub flags: U32,
}

/// Processor Local APIC (type 0, 8 bytes).
#[repr(C, packed)]
#[derive(Clone, Copy, Debug, IntoBytes, Immutable, KnownLayout, Unaligned)]
pub struct LocalApic {
    pub kind: u8,
    pub length: u8,
    pub processor_uid: u8,
    pub apic_id: u8,
    pub flags: U32,
}

/// I/O APIC (type 1, 12 bytes).
#[repr(C, packed)]
#[derive(Clone, Copy, Debug, IntoBytes, Immutable, KnownLayout, Unaligned)]
pub struct IoApicEntry {
    pub kind: u8,
    pub length: u8,
    pub id: u8,
    pub reserved: u8,
    pub address: U32,
    pub gsi_base: U32,
}

/// Interrupt Source Override (type 2, 10 bytes).
#[repr(C, packed)]
#[derive(Clone, Copy, Debug, IntoBytes, Immutable, KnownLayout, Unaligned)]
pub struct InterruptSourceOverride {
    pub kind: u8,
    pub length: u8,
    /// 0: ISA.
    pub bus: u8,
    pub source_irq: u8,
    pub gsi: U32,
    pub flags: U16,
}

/// Local APIC NMI (type 4, 6 bytes).
#[repr(C, packed)]
#[derive(Clone, Copy, Debug, IntoBytes, Immutable, KnownLayout, Unaligned)]
pub struct LocalApicNmi {
    pub kind: u8,
    pub length: u8,
    /// 0xFF: all processors.
    pub processor_uid: u8,
    pub flags: U16,
    pub lint: u8,
}

const _: () = assert!(size_of::<MadtFixed>() == 8);
const _: () = assert!(size_of::<LocalApic>() == 8);
const _: () = assert!(size_of::<IoApicEntry>() == 12);
const _: () = assert!(size_of::<InterruptSourceOverride>() == 10);
const _: () = assert!(size_of::<LocalApicNmi>() == 6);

fn iso(source_irq: u8, gsi: u32, flags: u16) -> InterruptSourceOverride {
    InterruptSourceOverride {
        kind: entry::INTERRUPT_SOURCE_OVERRIDE,
        length: size_of::<InterruptSourceOverride>() as u8,
        bus: 0,
        source_irq,
        gsi: gsi.into(),
        flags: flags.into(),
    }
}

/// A sealed MADT for a validated `machine`.
pub fn build(machine: &GuestMachine) -> Vec<u8> {
    let mut out = Vec::new();
    push(&mut out, &SdtHeader::new(*b"APIC", 5, 0));
    let flags = if machine.legacy_pic { PCAT_COMPAT } else { 0 };
    push(&mut out, &MadtFixed { local_apic_address: LOCAL_APIC_ADDRESS.into(), flags: flags.into() });
    for (uid, vcpu) in machine.vcpus.iter().enumerate() {
        push(
            &mut out,
            &LocalApic {
                kind: entry::LOCAL_APIC,
                length: size_of::<LocalApic>() as u8,
                // Validation keeps the vCPU count ≤ 255.
                processor_uid: uid as u8,
                apic_id: vcpu.apic_id,
                flags: LAPIC_ENABLED.into(),
            },
        );
    }
    let io = &machine.ioapic;
    push(
        &mut out,
        &IoApicEntry {
            kind: entry::IO_APIC,
            length: size_of::<IoApicEntry>() as u8,
            id: io.id,
            reserved: 0,
            address: io.address.into(),
            gsi_base: io.gsi_base.into(),
        },
    );
    // The PIT's IRQ 0 is wired to pin 2, as on every PC since the MPS.
    push(&mut out, &iso(0, 2, inti::ACTIVE_HIGH | inti::EDGE));
    // The SCI is level triggered; Sinter's is active high.
    let sci = machine.pm.sci_irq;
    push(&mut out, &iso(sci, u32::from(sci), inti::ACTIVE_HIGH | inti::LEVEL));
    push(
        &mut out,
        &LocalApicNmi {
            kind: entry::LOCAL_APIC_NMI,
            length: size_of::<LocalApicNmi>() as u8,
            processor_uid: 0xFF,
            flags: 0.into(),
            lint: 1,
        },
    );
    let len = out.len() as u32;
    out[4..8].copy_from_slice(&len.to_le_bytes());
    seal(&mut out);
    out
}
