//! Lays every table out in one buffer at the guest-physical table address
//! and links them: RSDP → XSDT → {FADT, MADT, SRAT, SLIT}, FADT → {DSDT,
//! FACS}.
//!
//! ```text
//! table_address + 0   RSDP (36)      16-byte aligned, as the spec wants
//!                     XSDT (68)      each table 16-byte aligned
//!                     FADT (276)
//!                     FACS (64)      64-byte aligned
//!                     DSDT, MADT, SRAT, SLIT
//! ```

use alloc::vec::Vec;

use zerocopy::IntoBytes;

use crate::error::AcpiError;
use crate::facs::{self, Facs};
use crate::fadt::Fadt;
use crate::machine::GuestMachine;
use crate::rsdp::Rsdp;
use crate::validate::{validate, Validated};
use crate::{dsdt, madt, slit, srat, verify, xsdt};

/// Where one table ended up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlacedTable {
    /// `RSD ` for the RSDP (its real signature is 8 bytes), else the SDT
    /// signature (`FACP` for the FADT).
    pub signature: [u8; 4],
    /// Guest-physical address.
    pub address: u64,
    pub len: usize,
}

/// The finished tables: copy `bytes` to guest-physical `address`, hand
/// the guest [`AcpiImage::rsdp_address`] and mark [`AcpiImage::e820_region`]
/// as ACPI in the e820 map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcpiImage {
    pub address: u64,
    pub bytes: Vec<u8>,
    /// Every table in layout order, RSDP first.
    pub tables: Vec<PlacedTable>,
}

impl AcpiImage {
    /// The RSDP's guest-physical address (the start of the image).
    pub fn rsdp_address(&self) -> u64 {
        self.address
    }

    /// (address, length) of the image rounded out to whole 4 KiB pages.
    pub fn e820_region(&self) -> (u64, u64) {
        let start = self.address & !0xFFF;
        let end = (self.address + self.bytes.len() as u64 + 0xFFF) & !0xFFF;
        (start, end - start)
    }

    /// The bytes of the table with `signature`, if present.
    pub fn table(&self, signature: &[u8; 4]) -> Option<&[u8]> {
        let t = self.tables.iter().find(|t| &t.signature == signature)?;
        let start = usize::try_from(t.address - self.address).ok()?;
        self.bytes.get(start..start + t.len)
    }
}

fn align(offset: usize, base: u64, to: u64) -> usize {
    let at = base + offset as u64;
    offset + ((to - at % to) % to) as usize
}

/// Validates `machine` and builds its tables; the result is checked
/// again by [`verify::verify`] (MADT, SRAT and SLIT agree, every checksum
/// holds, every pointer lands on its table) before it is returned.
pub fn build_tables(machine: &GuestMachine) -> Result<AcpiImage, AcpiError> {
    let Validated { nodes, distances } = validate(machine)?;
    let base = machine.table_address;

    // Tables whose bytes do not depend on where anything is.
    let dsdt = dsdt::build(machine);
    let madt = madt::build(machine);
    let srat = srat::build(machine);
    let slit = slit::build(nodes, &distances);
    let facs = Facs::new();

    // Offsets.
    const XSDT_ENTRIES: usize = 4;
    let rsdp_at = 0;
    let xsdt_at = align(rsdp_at + size_of::<Rsdp>(), base, 16);
    let fadt_at = align(xsdt_at + xsdt::len(XSDT_ENTRIES), base, 16);
    let facs_at = align(fadt_at + size_of::<Fadt>(), base, facs::ALIGN);
    let dsdt_at = align(facs_at + size_of::<Facs>(), base, 16);
    let madt_at = align(dsdt_at + dsdt.len(), base, 16);
    let srat_at = align(madt_at + madt.len(), base, 16);
    let slit_at = align(srat_at + srat.len(), base, 16);
    let end = slit_at + slit.len();
    let gpa = |offset: usize| base + offset as u64;

    // Tables that point at others.
    let fadt = Fadt::new(&machine.pm, gpa(dsdt_at), gpa(facs_at));
    let xsdt = xsdt::build(&[gpa(fadt_at), gpa(madt_at), gpa(srat_at), gpa(slit_at)]);
    let rsdp = Rsdp::new(gpa(xsdt_at));

    let mut bytes = alloc::vec![0u8; end];
    let mut tables = Vec::with_capacity(8);
    let pieces: [(&[u8; 4], usize, &[u8]); 8] = [
        (b"RSD ", rsdp_at, rsdp.as_bytes()),
        (b"XSDT", xsdt_at, &xsdt),
        (b"FACP", fadt_at, fadt.as_bytes()),
        (b"FACS", facs_at, facs.as_bytes()),
        (b"DSDT", dsdt_at, &dsdt),
        (b"APIC", madt_at, &madt),
        (b"SRAT", srat_at, &srat),
        (b"SLIT", slit_at, &slit),
    ];
    for (signature, at, table) in pieces {
        bytes[at..at + table.len()].copy_from_slice(table);
        tables.push(PlacedTable { signature: *signature, address: gpa(at), len: table.len() });
    }
    verify::verify(&bytes, base)?;
    Ok(AcpiImage { address: base, bytes, tables })
}
