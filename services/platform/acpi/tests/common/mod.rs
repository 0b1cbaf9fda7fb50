//! Machines shared by the integration tests (the unit tests in
//! `src/tests.rs` have the same two).

#![allow(dead_code, reason = "each test binary uses a subset")]

use sinter_guest_acpi::*;

pub const GIB: u64 = 1 << 30;

/// Two nodes × two vCPUs, 1 GiB per node, COM1, tables at 0xE0000.
pub fn two_by_two() -> GuestMachine {
    GuestMachine {
        vcpus: vec![
            VcpuPlacement { apic_id: 0, numa_node: 0 },
            VcpuPlacement { apic_id: 1, numa_node: 0 },
            VcpuPlacement { apic_id: 2, numa_node: 1 },
            VcpuPlacement { apic_id: 3, numa_node: 1 },
        ],
        memory: vec![
            GuestMemoryRange { base: 0, len: GIB, numa_node: 0 },
            GuestMemoryRange { base: GIB, len: GIB, numa_node: 1 },
        ],
        numa_distances: NumaDistances::default(),
        ioapic: IoApic::default(),
        uart: Some(IsaSerial::COM1),
        pm: PmRegisters::SINTER,
        legacy_pic: false,
        table_address: 0xE_0000,
    }
}

/// Four nodes, two vCPUs each (APIC IDs `node << 1 | core`), an
/// asymmetric distance matrix, COM1, tables at 0xF0000.
pub fn four_nodes() -> GuestMachine {
    GuestMachine {
        vcpus: (0..8u32).map(|i| VcpuPlacement { apic_id: i as u8, numa_node: i / 2 }).collect(),
        memory: (0..4u32).map(|n| GuestMemoryRange { base: u64::from(n) * GIB, len: GIB, numa_node: n }).collect(),
        numa_distances: NumaDistances::Matrix(vec![
            vec![10, 20, 30, 20],
            vec![20, 10, 20, 30],
            vec![30, 21, 10, 20],
            vec![20, 30, 20, 10],
        ]),
        ioapic: IoApic { id: 8, ..IoApic::default() },
        uart: Some(IsaSerial::COM1),
        pm: PmRegisters::SINTER,
        legacy_pic: true,
        table_address: 0xF_0000,
    }
}

/// The table with `signature` (as placed by the builder).
pub fn table<'a>(image: &'a AcpiImage, signature: &[u8; 4]) -> &'a [u8] {
    image.table(signature).unwrap_or_else(|| panic!("no {signature:?}"))
}
