//! SRAT (ACPI 6.5 §5.2.16): which NUMA node (proximity domain) each vCPU
//! and each range of guest RAM belongs to. The node of a RAM range is its
//! home node, so an unmodified Linux allocates node-local memory and most
//! coherence faults never leave the node.

use alloc::vec::Vec;

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::machine::GuestMachine;
use crate::sdt::{push, seal, SdtHeader};

/// Entry type numbers (ACPI 6.5 §5.2.16).
pub mod entry {
    pub const PROCESSOR_LOCAL_APIC_AFFINITY: u8 = 0;
    pub const MEMORY_AFFINITY: u8 = 1;
}

/// "Enabled" in both entry kinds.
pub const ENABLED: u32 = 1;

/// The SRAT's fixed part after the SDT header.
#[repr(C, packed)]
#[derive(Clone, Copy, Debug, IntoBytes, Immutable, KnownLayout, Unaligned)]
pub struct SratFixed {
    /// Must be 1 for backward compatibility.
    pub reserved1: U32,
    pub reserved2: U64,
}

/// Processor Local APIC/SAPIC Affinity (type 0, 16 bytes).
#[repr(C, packed)]
#[derive(Clone, Copy, Debug, IntoBytes, Immutable, KnownLayout, Unaligned)]
pub struct ProcessorAffinity {
    pub kind: u8,
    pub length: u8,
    /// Bits 7:0 of the proximity domain.
    pub proximity_domain_lo: u8,
    pub apic_id: u8,
    pub flags: U32,
    pub local_sapic_eid: u8,
    /// Bits 31:8 of the proximity domain.
    pub proximity_domain_hi: [u8; 3],
    pub clock_domain: U32,
}

/// Memory Affinity (type 1, 40 bytes).
#[repr(C, packed)]
#[derive(Clone, Copy, Debug, IntoBytes, Immutable, KnownLayout, Unaligned)]
pub struct MemoryAffinity {
    pub kind: u8,
    pub length: u8,
    pub proximity_domain: U32,
    pub reserved1: U16,
    pub base: U64,
    pub len: U64,
    pub reserved2: U32,
    pub flags: U32,
    pub reserved3: U64,
}

const _: () = assert!(size_of::<SratFixed>() == 12);
const _: () = assert!(size_of::<ProcessorAffinity>() == 16);
const _: () = assert!(size_of::<MemoryAffinity>() == 40);

/// A sealed SRAT for a validated `machine`.
pub fn build(machine: &GuestMachine) -> Vec<u8> {
    let mut out = Vec::new();
    push(&mut out, &SdtHeader::new(*b"SRAT", 3, 0));
    push(&mut out, &SratFixed { reserved1: 1.into(), reserved2: 0.into() });
    for vcpu in &machine.vcpus {
        let domain = vcpu.numa_node.to_le_bytes();
        push(
            &mut out,
            &ProcessorAffinity {
                kind: entry::PROCESSOR_LOCAL_APIC_AFFINITY,
                length: size_of::<ProcessorAffinity>() as u8,
                proximity_domain_lo: domain[0],
                apic_id: vcpu.apic_id,
                flags: ENABLED.into(),
                local_sapic_eid: 0,
                proximity_domain_hi: [domain[1], domain[2], domain[3]],
                clock_domain: 0.into(),
            },
        );
    }
    for range in &machine.memory {
        push(
            &mut out,
            &MemoryAffinity {
                kind: entry::MEMORY_AFFINITY,
                length: size_of::<MemoryAffinity>() as u8,
                proximity_domain: range.numa_node.into(),
                reserved1: 0.into(),
                base: range.base.into(),
                len: range.len.into(),
                reserved2: 0.into(),
                flags: ENABLED.into(),
                reserved3: 0.into(),
            },
        );
    }
    let len = out.len() as u32;
    out[4..8].copy_from_slice(&len.to_le_bytes());
    seal(&mut out);
    out
}
