//! The image read back by a third-party parser: the `acpi` crate 5.x (the
//! one Sinter's kernel uses on the host's tables), through an
//! `AcpiHandler` whose "physical memory" is the built image.
//! SRAT and SLIT, which `acpi` 5 does not decode, are found through its
//! table iterator and decoded here by hand.

mod common;

use core::ptr::NonNull;

use acpi::address::AddressSpace;
use acpi::madt::{Madt, MadtEntry};
use acpi::sdt::Signature;
use acpi::{AcpiHandler, AcpiTables, PhysicalMapping};
use common::{four_nodes, table, two_by_two};
use sinter_guest_acpi::*;

/// Guest memory holding just the image, at its guest-physical address.
#[derive(Clone, Copy, Debug)]
struct ImageMemory {
    base: usize,
    bytes: &'static [u8],
}

impl ImageMemory {
    /// Copies the image into a 16-byte aligned, leaked buffer, so that
    /// every table keeps the alignment it has in guest memory.
    fn new(image: &AcpiImage) -> Self {
        let words = vec![0u128; image.bytes.len().div_ceil(16)].leak();
        let bytes: &'static mut [u8] = zerocopy::IntoBytes::as_mut_bytes(words);
        bytes[..image.bytes.len()].copy_from_slice(&image.bytes);
        Self { base: image.address as usize, bytes: &bytes[..image.bytes.len()] }
    }
}

impl AcpiHandler for ImageMemory {
    unsafe fn map_physical_region<T>(&self, physical_address: usize, size: usize) -> PhysicalMapping<Self, T> {
        let offset = physical_address.checked_sub(self.base).expect("mapping below the image");
        assert!(offset + size <= self.bytes.len(), "mapping {physical_address:#x}+{size:#x} past the image");
        let start = NonNull::from(&self.bytes[offset]).cast::<T>();
        // SAFETY: `start..start + size` lies inside `self.bytes` (checked
        // above), which is leaked and so lives forever and is never written
        // again; the `acpi` crate only reads through the mapping.
        unsafe { PhysicalMapping::new(physical_address, start, size, size, *self) }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

fn parse(image: &AcpiImage) -> AcpiTables<ImageMemory> {
    let memory = ImageMemory::new(image);
    // SAFETY: the RSDP is at the start of the image and every address the
    // crate follows is range-checked by `map_physical_region`.
    unsafe { AcpiTables::from_rsdp(memory, image.rsdp_address() as usize) }.expect("acpi crate accepts the RSDP")
}

fn check_machine(machine: &GuestMachine) {
    let image = build_tables(machine).unwrap();
    let tables = parse(&image);

    // Every XSDT entry validates (signature, OEM strings, checksum).
    let signatures: Vec<Signature> = tables.headers().map(|h| h.signature).collect();
    assert_eq!(signatures.len(), 4);
    for s in [Signature::FADT, Signature::MADT, Signature::SRAT, Signature::SLIT] {
        assert!(signatures.contains(&s), "{s} missing from the XSDT");
    }

    // FADT.
    let fadt = tables.find_table::<acpi::fadt::Fadt>().unwrap();
    let flags = fadt.flags;
    assert!(!flags.system_is_hw_reduced_acpi());
    assert!(flags.pm_timer_is_32_bit());
    assert!(flags.all_procs_support_c1_power_state());
    assert!(flags.local_xapics_must_use_physical_destination_mode());
    assert!(!flags.supports_system_reset_via_fadt());
    let (sci, smi, century) = (fadt.sci_interrupt, fadt.smi_cmd_port, fadt.century);
    assert_eq!((sci, smi, century), (9, 0, 0));
    let pm1a_evt = fadt.pm1a_event_block().unwrap();
    assert_eq!((pm1a_evt.address, pm1a_evt.bit_width), (0x600, 32));
    assert!(matches!(pm1a_evt.address_space, AddressSpace::SystemIo));
    let pm1a_cnt = fadt.pm1a_control_block().unwrap();
    assert_eq!((pm1a_cnt.address, pm1a_cnt.bit_width), (0x604, 16));
    assert!(matches!(pm1a_cnt.address_space, AddressSpace::SystemIo));
    let timer = fadt.pm_timer_block().unwrap().expect("PM timer");
    assert_eq!((timer.address, timer.bit_width), (0x608, 32));
    assert!(fadt.pm1b_event_block().unwrap().is_none());
    assert!(fadt.gpe0_block().unwrap().is_none());
    let facs = fadt.facs_address().unwrap();
    assert_eq!(facs % 64, 0);
    assert_eq!(&image.bytes[facs - image.address as usize..][..4], b"FACS");
    let boot_arch = fadt.iapc_boot_arch;
    assert!(boot_arch.legacy_devices_are_accessible());
    assert!(!boot_arch.motherboard_implements_8042());
    drop(fadt);

    // DSDT: \_S5_ with Sinter's SLP_TYP, COM1 when there is a UART.
    let dsdt = tables.dsdt().unwrap();
    let start = dsdt.address - image.address as usize;
    let aml = &image.bytes[start..start + dsdt.length as usize];
    let has = |needle: &[u8]| aml.windows(needle.len()).any(|w| w == needle);
    assert!(has(b"_S5_"));
    assert!(has(&[0x12, 0x08, 0x04, 0x0A, S5_SLP_TYP, 0x0A, S5_SLP_TYP, 0x00, 0x00]));
    assert_eq!(has(b"COM1"), machine.uart.is_some());

    // MADT.
    let madt = tables.find_table::<Madt>().unwrap();
    let lapic_address = madt.get().local_apic_address;
    assert_eq!(lapic_address, LOCAL_APIC_ADDRESS);
    assert_eq!(madt.get().supports_8259(), machine.legacy_pic);
    let mut lapics = Vec::new();
    let mut ioapics = Vec::new();
    let mut overrides = Vec::new();
    let mut nmis = Vec::new();
    for entry in madt.get().entries() {
        match entry {
            MadtEntry::LocalApic(e) => {
                let flags = e.flags;
                assert_eq!(flags & 1, 1, "processor enabled");
                lapics.push((e.processor_id, e.apic_id));
            }
            MadtEntry::IoApic(e) => {
                ioapics.push((e.io_apic_id, e.io_apic_address, e.global_system_interrupt_base));
            }
            MadtEntry::InterruptSourceOverride(e) => {
                overrides.push((e.bus, e.irq, e.global_system_interrupt, e.flags));
            }
            MadtEntry::LocalApicNmi(e) => nmis.push((e.processor_id, e.flags, e.nmi_line)),
            other => panic!("unexpected MADT entry {other:?}"),
        }
    }
    let want: Vec<(u8, u8)> = machine.vcpus.iter().enumerate().map(|(i, v)| (i as u8, v.apic_id)).collect();
    assert_eq!(lapics, want);
    assert_eq!(ioapics, [(machine.ioapic.id, 0xFEC0_0000, 0)]);
    // IRQ0 → GSI2 edge/high; SCI 9 → GSI 9 level/high.
    assert_eq!(overrides, [(0, 0, 2, 0b0101), (0, 9, 9, 0b1101)]);
    assert_eq!(nmis, [(0xFF, 0, 1)]);
    drop(madt);

    // SRAT: decoded by hand from the bytes the crate located.
    let srat = table(&image, b"SRAT");
    let mut cpus = Vec::new();
    let mut memory = Vec::new();
    let mut at = 48;
    while at < srat.len() {
        let (kind, len) = (srat[at], srat[at + 1] as usize);
        let e = &srat[at..at + len];
        match kind {
            0 => {
                assert_eq!(len, 16);
                let domain = u32::from_le_bytes([e[2], e[9], e[10], e[11]]);
                assert_eq!(u32::from_le_bytes(e[4..8].try_into().unwrap()), 1);
                cpus.push((e[3], domain));
            }
            1 => {
                assert_eq!(len, 40);
                let domain = u32::from_le_bytes(e[2..6].try_into().unwrap());
                let base = u64::from_le_bytes(e[8..16].try_into().unwrap());
                let size = u64::from_le_bytes(e[16..24].try_into().unwrap());
                assert_eq!(u32::from_le_bytes(e[28..32].try_into().unwrap()), 1);
                memory.push(GuestMemoryRange { base, len: size, numa_node: domain });
            }
            other => panic!("unexpected SRAT entry {other}"),
        }
        at += len;
    }
    let want: Vec<(u8, u32)> = machine.vcpus.iter().map(|v| (v.apic_id, v.numa_node)).collect();
    assert_eq!(cpus, want);
    assert_eq!(memory, machine.memory);

    // SLIT.
    let slit = table(&image, b"SLIT");
    let n = u64::from_le_bytes(slit[36..44].try_into().unwrap()) as usize;
    let want: Vec<u8> = match &machine.numa_distances {
        NumaDistances::LocalRemote { remote } => {
            (0..n * n).map(|i| if i / n == i % n { LOCAL_DISTANCE } else { *remote }).collect()
        }
        NumaDistances::Matrix(rows) => rows.concat(),
    };
    assert_eq!(&slit[44..], &want[..]);
}

#[test]
fn two_nodes_two_vcpus_each() {
    check_machine(&two_by_two());
}

#[test]
fn four_nodes_asymmetric_distances() {
    check_machine(&four_nodes());
}

#[test]
fn without_uart_or_pic() {
    let mut m = four_nodes();
    m.uart = None;
    m.legacy_pic = false;
    check_machine(&m);
}

#[test]
fn the_acpi_crate_rejects_a_tampered_image() {
    let mut image = build_tables(&two_by_two()).unwrap();
    // Corrupt one MADT byte without resealing.
    let madt = image.tables.iter().find(|t| &t.signature == b"APIC").unwrap().address;
    image.bytes[(madt - image.address) as usize + 50] ^= 0x40;
    let tables = parse(&image);
    assert!(tables.find_table::<Madt>().is_err());
    assert_eq!(verify(&image.bytes, image.address), Err(Inconsistency::BadChecksum { signature: *b"APIC" }));
}
