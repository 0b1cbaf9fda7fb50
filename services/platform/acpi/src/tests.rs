//! Whole-image tests: layouts, checksums, validation errors and the
//! cross-table check catching tampered bytes. Parsing with the `acpi`
//! crate (and `iasl`) lives in `tests/` because it needs `unsafe`.

use alloc::vec;
use alloc::vec::Vec;

use crate::sdt::{byte_sum, seal};
use crate::*;

const GIB: u64 = 1 << 30;

/// Two Sinter nodes, two vCPUs each, 1 GiB each (node 0 below the PCI
/// hole's usual start, node 1 above it); APIC IDs `node << 1 | core`.
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

/// Four nodes, one vCPU each, memory given out of order, a non-uniform
/// (ring-shaped, asymmetric) distance matrix, tables above 4 GiB.
pub fn four_nodes() -> GuestMachine {
    GuestMachine {
        vcpus: (0..4).map(|n| VcpuPlacement { apic_id: (n * 4) as u8, numa_node: n }).collect(),
        memory: vec![
            GuestMemoryRange { base: 3 * GIB, len: GIB, numa_node: 2 },
            GuestMemoryRange { base: 0, len: 0xA_0000, numa_node: 0 },
            GuestMemoryRange { base: 0x10_0000, len: GIB - 0x10_0000, numa_node: 0 },
            GuestMemoryRange { base: GIB, len: 2 * GIB, numa_node: 1 },
            GuestMemoryRange { base: 4 * GIB, len: 4 * GIB, numa_node: 3 },
        ],
        numa_distances: NumaDistances::Matrix(vec![
            vec![10, 20, 30, 20],
            vec![20, 10, 20, 30],
            vec![30, 21, 10, 20],
            vec![20, 30, 20, 10],
        ]),
        ioapic: IoApic { id: 8, ..IoApic::default() },
        uart: None,
        pm: PmRegisters::SINTER,
        legacy_pic: true,
        table_address: 0x1_0000_0000 + 0x40,
    }
}

fn every_table_sums_to_zero(image: &AcpiImage) {
    for t in &image.tables {
        let start = (t.address - image.address) as usize;
        let bytes = &image.bytes[start..start + t.len];
        if &t.signature == b"RSD " {
            assert_eq!(byte_sum(&bytes[..20]), 0, "RSDP v1 checksum");
            assert_eq!(byte_sum(bytes), 0, "RSDP extended checksum");
        } else if &t.signature != b"FACS" {
            assert_eq!(byte_sum(bytes), 0, "{} checksum", core::str::from_utf8(&t.signature).unwrap());
            let len = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
            assert_eq!(len, t.len, "header length of {:?}", t.signature);
        }
    }
}

#[test]
fn checksums_hold_for_both_layouts() {
    for machine in [two_by_two(), four_nodes()] {
        let image = build_tables(&machine).unwrap();
        every_table_sums_to_zero(&image);
        let sigs: Vec<[u8; 4]> = image.tables.iter().map(|t| t.signature).collect();
        assert_eq!(sigs, [*b"RSD ", *b"XSDT", *b"FACP", *b"FACS", *b"DSDT", *b"APIC", *b"SRAT", *b"SLIT"]);
    }
}

#[test]
fn alignment_and_placement() {
    let image = build_tables(&four_nodes()).unwrap();
    assert_eq!(image.rsdp_address(), 0x1_0000_0040);
    for t in &image.tables {
        let want = if &t.signature == b"FACS" { 64 } else { 16 };
        assert_eq!(t.address % want, 0, "{:?}", t.signature);
        assert!(t.address >= image.address && t.address + t.len as u64 <= image.address + image.bytes.len() as u64);
    }
    // No two tables overlap.
    for pair in image.tables.windows(2) {
        assert!(pair[0].address + pair[0].len as u64 <= pair[1].address);
    }
    let (start, len) = image.e820_region();
    assert_eq!((start, len), (0x1_0000_0000, 0x1000));
}

#[test]
fn summary_matches_the_machine() {
    let image = build_tables(&two_by_two()).unwrap();
    let summary = verify(&image.bytes, image.address).unwrap();
    assert_eq!(summary.apic_ids, [0, 1, 2, 3]);
    assert_eq!(summary.localities, 2);
    let slit = image.table(b"SLIT").unwrap();
    assert_eq!(&slit[36..44], &2u64.to_le_bytes());
    assert_eq!(&slit[44..], &[10, 20, 20, 10]);
}

#[test]
fn four_node_slit_keeps_the_asymmetric_matrix() {
    let image = build_tables(&four_nodes()).unwrap();
    let slit = image.table(b"SLIT").unwrap();
    assert_eq!(slit.len(), 36 + 8 + 16);
    assert_eq!(&slit[44..], &[10, 20, 30, 20, 20, 10, 20, 30, 30, 21, 10, 20, 20, 30, 20, 10]);
    // MADT flags carry PCAT_COMPAT because legacy_pic is set.
    let madt = image.table(b"APIC").unwrap();
    assert_eq!(&madt[40..44], &1u32.to_le_bytes());
}

#[test]
fn dsdt_has_s5_and_com1_only_with_a_uart() {
    let with = build_tables(&two_by_two()).unwrap();
    let dsdt = with.table(b"DSDT").unwrap();
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    assert!(find(dsdt, &[0x08, b'_', b'S', b'5', b'_', 0x12, 0x08, 0x04, 0x0A, S5_SLP_TYP, 0x0A, S5_SLP_TYP]));
    assert!(find(dsdt, b"COM1"));
    assert!(find(dsdt, &[0x47, 0x01, 0xF8, 0x03, 0xF8, 0x03, 0x00, 0x08, 0x22, 0x10, 0x00, 0x79, 0x00]));
    let without = build_tables(&four_nodes()).unwrap();
    let dsdt = without.table(b"DSDT").unwrap();
    assert!(find(dsdt, b"_S5_"));
    assert!(!find(dsdt, b"COM1"));
}

// ---- validation ----

fn err(machine: &GuestMachine) -> AcpiError {
    build_tables(machine).unwrap_err()
}

#[test]
fn vcpu_errors() {
    let mut m = two_by_two();
    m.vcpus.clear();
    assert_eq!(err(&m), AcpiError::NoVcpus);

    let mut m = two_by_two();
    m.vcpus[3].apic_id = 1;
    assert_eq!(err(&m), AcpiError::DuplicateApicId { apic_id: 1, first_vcpu: 1, second_vcpu: 3 });

    let mut m = two_by_two();
    m.vcpus[2].apic_id = 0xFF;
    assert_eq!(err(&m), AcpiError::BroadcastApicId { vcpu: 2 });

    let mut m = two_by_two();
    m.vcpus = (0..=255u32).map(|i| VcpuPlacement { apic_id: i as u8, numa_node: 0 }).collect();
    assert_eq!(err(&m), AcpiError::TooManyVcpus { count: 256 });
}

#[test]
fn memory_errors() {
    let mut m = two_by_two();
    m.memory.clear();
    assert_eq!(err(&m), AcpiError::NoMemory);

    let mut m = two_by_two();
    m.memory = (0..1025).map(|i| GuestMemoryRange { base: i * 0x1000, len: 0x1000, numa_node: 0 }).collect();
    assert_eq!(err(&m), AcpiError::TooManyMemoryRanges { count: 1025 });

    let mut m = two_by_two();
    m.memory[1].len = 0;
    assert_eq!(err(&m), AcpiError::EmptyMemoryRange { index: 1 });

    let mut m = two_by_two();
    m.memory[1].base += 0x800;
    assert!(matches!(err(&m), AcpiError::MisalignedMemoryRange { index: 1, .. }));

    let mut m = two_by_two();
    m.memory[0].len = GIB + 0x1000;
    assert_eq!(err(&m), AcpiError::OverlappingMemory { first: 0, second: 1 });

    let mut m = two_by_two();
    m.memory[1].base = u64::MAX - 0xFFF;
    m.memory[1].len = 0x2000;
    assert_eq!(err(&m), AcpiError::MemoryRangeOverflows { index: 1 });
}

#[test]
fn numa_errors() {
    // Node 1 has a vCPU but node 2 only memory and node 1 … fine; a gap is not.
    let mut m = two_by_two();
    m.memory[1].numa_node = 2;
    m.vcpus[2].numa_node = 2;
    m.vcpus[3].numa_node = 2;
    assert_eq!(err(&m), AcpiError::NumaNodeGap { missing: 1, highest: 2 });

    let mut m = two_by_two();
    m.vcpus[0].numa_node = 1000;
    assert_eq!(err(&m), AcpiError::TooManyNumaNodes { count: 1001 });

    let mut m = two_by_two();
    m.numa_distances = NumaDistances::Matrix(vec![vec![10, 20]]);
    assert_eq!(err(&m), AcpiError::DistanceMatrixShape { nodes: 2, rows: 1, bad_row: None });

    let mut m = two_by_two();
    m.numa_distances = NumaDistances::Matrix(vec![vec![10, 20], vec![20]]);
    assert_eq!(err(&m), AcpiError::DistanceMatrixShape { nodes: 2, rows: 2, bad_row: Some(1) });

    let mut m = two_by_two();
    m.numa_distances = NumaDistances::Matrix(vec![vec![10, 20], vec![20, 11]]);
    assert_eq!(err(&m), AcpiError::LocalDistanceNot10 { node: 1, distance: 11 });

    let mut m = two_by_two();
    m.numa_distances = NumaDistances::LocalRemote { remote: 10 };
    assert_eq!(err(&m), AcpiError::BadRemoteDistance { from: 0, to: 1, distance: 10 });

    let mut m = two_by_two();
    m.numa_distances = NumaDistances::Matrix(vec![vec![10, 255], vec![20, 10]]);
    assert_eq!(err(&m), AcpiError::BadRemoteDistance { from: 0, to: 1, distance: 255 });

    // A memory-only node and a CPU-only node are both fine.
    let mut m = two_by_two();
    m.vcpus[2].numa_node = 0;
    m.vcpus[3].numa_node = 0;
    build_tables(&m).unwrap();
    let mut m = two_by_two();
    m.memory[1].numa_node = 0;
    build_tables(&m).unwrap();
}

#[test]
fn interrupt_pm_and_address_errors() {
    let mut m = two_by_two();
    m.ioapic.gsi_base = 16;
    assert_eq!(err(&m), AcpiError::GsiNotOnIoApic { what: "timer (ISA IRQ 0)", gsi: 2 });

    let mut m = two_by_two();
    m.pm.sci_irq = 16;
    assert_eq!(err(&m), AcpiError::BadIsaIrq { what: "SCI", irq: 16 });

    let mut m = two_by_two();
    m.ioapic.pins = 8;
    assert_eq!(err(&m), AcpiError::GsiNotOnIoApic { what: "SCI", gsi: 9 });

    let mut m = two_by_two();
    m.uart = Some(IsaSerial { port: 0x2F8, irq: 20 });
    assert_eq!(err(&m), AcpiError::BadIsaIrq { what: "UART", irq: 20 });

    let mut m = two_by_two();
    m.pm.sci_irq = 2;
    assert_eq!(err(&m), AcpiError::IrqConflict { what: "SCI", irq: 2 });

    let mut m = two_by_two();
    m.uart = Some(IsaSerial { port: 0x3F8, irq: 9 });
    assert_eq!(err(&m), AcpiError::IrqConflict { what: "UART", irq: 9 });

    let mut m = two_by_two();
    m.pm.pm_timer = 0x605;
    assert_eq!(err(&m), AcpiError::BadPmPorts);

    let mut m = two_by_two();
    m.pm.pm1a_event = 0;
    assert_eq!(err(&m), AcpiError::BadPmPorts);

    let mut m = two_by_two();
    m.table_address = 0xE_0008;
    assert_eq!(err(&m), AcpiError::MisalignedTableAddress { address: 0xE_0008 });

    let mut m = two_by_two();
    m.table_address = u64::MAX - 0xF;
    assert!(matches!(err(&m), AcpiError::TableAddressOverflows { .. }));
}

#[test]
fn errors_display_without_panicking() {
    let e = AcpiError::DuplicateApicId { apic_id: 1, first_vcpu: 1, second_vcpu: 3 };
    assert_eq!(alloc::format!("{e}"), "vCPUs 1 and 3 share APIC ID 1");
    let e = AcpiError::Inconsistent(Inconsistency::BadChecksum { signature: *b"SRAT" });
    assert_eq!(alloc::format!("{e}"), "built tables disagree: SRAT checksum wrong");
}

// ---- the cross-table check catches tampering ----

/// Edits the table with `signature` inside `image` and reseals it.
fn tamper(image: &mut AcpiImage, signature: &[u8; 4], edit: impl FnOnce(&mut [u8])) {
    let t = *image.tables.iter().find(|t| &t.signature == signature).unwrap();
    let start = (t.address - image.address) as usize;
    let table = &mut image.bytes[start..start + t.len];
    edit(table);
    seal(table);
}

#[test]
fn verify_catches_a_bad_checksum() {
    let mut image = build_tables(&two_by_two()).unwrap();
    let srat = image.tables.iter().find(|t| &t.signature == b"SRAT").unwrap().address;
    image.bytes[(srat - image.address) as usize + 50] ^= 1;
    assert_eq!(verify(&image.bytes, image.address), Err(Inconsistency::BadChecksum { signature: *b"SRAT" }));
}

#[test]
fn verify_catches_madt_srat_disagreement() {
    // MADT: first processor's APIC ID 0 → 9: it has no SRAT entry …
    let mut image = build_tables(&two_by_two()).unwrap();
    tamper(&mut image, b"APIC", |t| t[44 + 3] = 9);
    assert_eq!(verify(&image.bytes, image.address), Err(Inconsistency::ProcessorWithoutAffinity { apic_id: 9 }));

    // … and with MADT intact, an SRAT processor entry for an unknown CPU.
    let mut image = build_tables(&two_by_two()).unwrap();
    tamper(&mut image, b"SRAT", |t| t[48 + 3] = 7);
    assert_eq!(verify(&image.bytes, image.address), Err(Inconsistency::ProcessorWithoutAffinity { apic_id: 0 }));

    // A disabled MADT processor whose SRAT affinity stays enabled.
    let mut image = build_tables(&two_by_two()).unwrap();
    tamper(&mut image, b"APIC", |t| t[44 + 4] = 0);
    assert_eq!(verify(&image.bytes, image.address), Err(Inconsistency::AffinityWithoutProcessor { apic_id: 0 }));

    // Two MADT processors with one APIC ID.
    let mut image = build_tables(&two_by_two()).unwrap();
    tamper(&mut image, b"APIC", |t| t[52 + 3] = 0);
    assert_eq!(verify(&image.bytes, image.address), Err(Inconsistency::DuplicateApicId { apic_id: 0 }));
}

#[test]
fn verify_catches_srat_slit_disagreement() {
    // An SRAT memory range in domain 5 of a 2-locality SLIT.
    let mut image = build_tables(&two_by_two()).unwrap();
    let first_memory = 48 + 4 * 16;
    tamper(&mut image, b"SRAT", |t| t[first_memory + 2] = 5);
    assert_eq!(verify(&image.bytes, image.address), Err(Inconsistency::DomainOutsideSlit { domain: 5, localities: 2 }));

    // Every entry in domain 0, SLIT still 2 × 2.
    let mut image = build_tables(&two_by_two()).unwrap();
    tamper(&mut image, b"SRAT", |t| {
        for cpu in 2..4 {
            t[48 + cpu * 16 + 2] = 0;
        }
        t[first_memory + 40 + 2] = 0;
    });
    assert_eq!(
        verify(&image.bytes, image.address),
        Err(Inconsistency::SlitLargerThanSrat { localities: 2, domains: 1 })
    );

    // A SLIT diagonal of 11 and an off-diagonal of 10.
    let mut image = build_tables(&two_by_two()).unwrap();
    tamper(&mut image, b"SLIT", |t| t[44 + 3] = 11);
    assert_eq!(verify(&image.bytes, image.address), Err(Inconsistency::BadSlitEntry { from: 1, to: 1, distance: 11 }));
    let mut image = build_tables(&two_by_two()).unwrap();
    tamper(&mut image, b"SLIT", |t| t[44 + 1] = 10);
    assert_eq!(verify(&image.bytes, image.address), Err(Inconsistency::BadSlitEntry { from: 0, to: 1, distance: 10 }));
}

#[test]
fn verify_catches_broken_pointers() {
    let image = build_tables(&two_by_two()).unwrap();
    // Wrong base: every pointer misses.
    assert_eq!(verify(&image.bytes, image.address + 16), Err(Inconsistency::MissingTable { signature: *b"XSDT" }));
    // Truncated image.
    let cut = &image.bytes[..image.bytes.len() - 4];
    assert_eq!(verify(cut, image.address), Err(Inconsistency::Truncated { signature: *b"SLIT" }));
    // Not an RSDP at all.
    assert_eq!(verify(&[0u8; 8], 0), Err(Inconsistency::MissingTable { signature: *b"RSD " }));
}

#[test]
fn verify_never_panics_on_damaged_images() {
    for machine in [two_by_two(), four_nodes()] {
        let image = build_tables(&machine).unwrap();
        // Every truncation.
        for len in 0..image.bytes.len() {
            let _ = verify(&image.bytes[..len], image.address);
        }
        // Every bit flipped, unsealed: an error whenever the bit is inside
        // a checksummed table (padding and the FACS have no checksum) …
        let checksummed = |at: usize| {
            image.tables.iter().any(|t| {
                let start = (t.address - image.address) as usize;
                &t.signature != b"FACS" && (start..start + t.len).contains(&at)
            })
        };
        for at in 0..image.bytes.len() {
            for bit in 0..8 {
                let mut bytes = image.bytes.clone();
                bytes[at] ^= 1 << bit;
                let result = verify(&bytes, image.address);
                assert!(result.is_err() || !checksummed(at), "flip at {at} bit {bit} not caught");
            }
        }
        // … and every byte set to 0x00 / 0xFF with its table resealed, so
        // the parser goes past the checksum into lengths and entries.
        for t in image.tables.clone() {
            if &t.signature == b"RSD " || &t.signature == b"FACS" {
                continue;
            }
            for offset in 0..t.len {
                if offset == crate::sdt::CHECKSUM_OFFSET {
                    continue;
                }
                for value in [0x00, 0xFF] {
                    let mut copy = image.clone();
                    tamper(&mut copy, &t.signature, |table| table[offset] = value);
                    let _ = verify(&copy.bytes, copy.address);
                }
            }
        }
    }
}

#[test]
fn largest_machine_fits() {
    let mut m = two_by_two();
    m.vcpus = (0..255u32).map(|i| VcpuPlacement { apic_id: i as u8, numa_node: i % 64 }).collect();
    m.memory =
        (0..1024u64).map(|i| GuestMemoryRange { base: i << 30, len: 1 << 30, numa_node: (i % 64) as u32 }).collect();
    let image = build_tables(&m).unwrap();
    every_table_sums_to_zero(&image);
    assert!(image.bytes.len() < 64 * 1024);
    assert_eq!(verify(&image.bytes, image.address).unwrap().localities, 64);
}
