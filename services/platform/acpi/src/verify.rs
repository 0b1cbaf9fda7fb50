//! Reads a finished image back, independently of how it was written, and
//! checks what the guest will rely on: every checksum, every pointer,
//! and that MADT, SRAT and SLIT agree with each other (each MADT
//! processor has exactly one SRAT affinity and vice versa; the SLIT is
//! nodes × nodes for exactly the proximity domains SRAT uses; 10 on its
//! diagonal and 11..=254 elsewhere; no APIC ID twice).

use alloc::collections::BTreeSet;
use alloc::vec::Vec;

use crate::error::Inconsistency;
use crate::sdt::byte_sum;

const HEADER: usize = 36;

/// `b[at..at + len]`, or `None` if out of range (never overflows).
fn slice(b: &[u8], at: usize, len: usize) -> Option<&[u8]> {
    b.get(at..at.checked_add(len)?)
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(slice(b, at, 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(slice(b, at, 8)?.try_into().ok()?))
}

/// The image seen as guest memory from `base`.
struct Memory<'a> {
    bytes: &'a [u8],
    base: u64,
}

impl<'a> Memory<'a> {
    fn signature_at(&self, address: u64) -> Option<[u8; 4]> {
        let at = usize::try_from(address.checked_sub(self.base)?).ok()?;
        slice(self.bytes, at, 4)?.try_into().ok()
    }

    /// The whole table with `signature` at `address`, checksum checked.
    fn table(&self, address: u64, signature: [u8; 4]) -> Result<&'a [u8], Inconsistency> {
        let missing = Inconsistency::MissingTable { signature };
        let at = address.checked_sub(self.base).and_then(|o| usize::try_from(o).ok()).ok_or(missing)?;
        let header = slice(self.bytes, at, HEADER).ok_or(missing)?;
        if header[..4] != signature {
            return Err(missing);
        }
        let len = u32_at(header, 4).ok_or(missing)? as usize;
        let table =
            slice(self.bytes, at, len).filter(|_| len >= HEADER).ok_or(Inconsistency::Truncated { signature })?;
        if byte_sum(table) != 0 {
            return Err(Inconsistency::BadChecksum { signature });
        }
        Ok(table)
    }
}

/// Type/length-prefixed entries from `start` to the end of `table`.
fn entries(table: &[u8], start: usize, signature: [u8; 4]) -> Result<Vec<&[u8]>, Inconsistency> {
    let mut out = Vec::new();
    let mut at = start;
    while at < table.len() {
        let len =
            usize::from(*slice(table, at, 2).and_then(|h| h.get(1)).ok_or(Inconsistency::Truncated { signature })?);
        let entry = slice(table, at, len).filter(|_| len >= 2).ok_or(Inconsistency::Truncated { signature })?;
        out.push(entry);
        at += len;
    }
    Ok(out)
}

/// What the verified image says, for callers and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Enabled MADT local APIC IDs, in table order.
    pub apic_ids: Vec<u8>,
    /// SLIT localities (= NUMA nodes).
    pub localities: u64,
}

/// Checks an image laid out at guest-physical `base` (RSDP first).
pub fn verify(bytes: &[u8], base: u64) -> Result<Summary, Inconsistency> {
    let mem = Memory { bytes, base };
    let rsdp_missing = Inconsistency::MissingTable { signature: *b"RSD " };
    let rsdp = bytes.get(..36).filter(|r| &r[..8] == b"RSD PTR ").ok_or(rsdp_missing)?;
    if byte_sum(&rsdp[..20]) != 0 || byte_sum(rsdp) != 0 {
        return Err(Inconsistency::BadChecksum { signature: *b"RSD " });
    }
    let xsdt = mem.table(u64_at(rsdp, 24).ok_or(rsdp_missing)?, *b"XSDT")?;
    let pointers: Vec<u64> = xsdt[HEADER..].chunks_exact(8).filter_map(|c| u64_at(c, 0)).collect();
    // The first XSDT pointer whose target carries `signature`; that
    // table's own faults (length, checksum) are reported as such.
    let find = |signature: [u8; 4]| {
        let pointer = pointers.iter().copied().find(|&p| mem.signature_at(p) == Some(signature));
        mem.table(pointer.ok_or(Inconsistency::MissingTable { signature })?, signature)
    };
    let fadt = find(*b"FACP")?;
    let madt = find(*b"APIC")?;
    let srat = find(*b"SRAT")?;
    let slit = find(*b"SLIT")?;

    // FADT → DSDT and FACS (64-bit fields at 140 and 132).
    let fadt_short = Inconsistency::Truncated { signature: *b"FACP" };
    mem.table(u64_at(fadt, 140).ok_or(fadt_short)?, *b"DSDT")?;
    let facs = u64_at(fadt, 132).ok_or(fadt_short)?;
    let facs_missing = Inconsistency::MissingTable { signature: *b"FACS" };
    let facs_at = facs.checked_sub(base).and_then(|o| usize::try_from(o).ok()).ok_or(facs_missing)?;
    if !facs.is_multiple_of(64) || slice(bytes, facs_at, 4) != Some(b"FACS") {
        return Err(facs_missing);
    }

    // MADT: enabled local APICs.
    let mut apic_ids = Vec::new();
    let mut madt_set = BTreeSet::new();
    for e in entries(madt, HEADER + 8, *b"APIC")? {
        if e[0] == crate::madt::entry::LOCAL_APIC && e.len() >= 8 && u32_at(e, 4).is_some_and(|f| f & 1 != 0) {
            if !madt_set.insert(e[3]) {
                return Err(Inconsistency::DuplicateApicId { apic_id: e[3] });
            }
            apic_ids.push(e[3]);
        }
    }

    // SRAT: processor and memory affinities (enabled ones).
    let mut srat_cpus = BTreeSet::new();
    let mut domains = BTreeSet::new();
    let srat_short = Inconsistency::Truncated { signature: *b"SRAT" };
    for e in entries(srat, HEADER + 12, *b"SRAT")? {
        match e[0] {
            crate::srat::entry::PROCESSOR_LOCAL_APIC_AFFINITY => {
                let flags = u32_at(e, 4).ok_or(srat_short)?;
                if flags & 1 == 0 {
                    continue;
                }
                let hi = e.get(9..12).ok_or(srat_short)?;
                domains.insert(u32::from_le_bytes([e[2], hi[0], hi[1], hi[2]]));
                if !srat_cpus.insert(e[3]) {
                    return Err(Inconsistency::DuplicateApicId { apic_id: e[3] });
                }
            }
            crate::srat::entry::MEMORY_AFFINITY if u32_at(e, 28).ok_or(srat_short)? & 1 != 0 => {
                domains.insert(u32_at(e, 2).ok_or(srat_short)?);
            }
            _ => {}
        }
    }
    if let Some(&apic_id) = madt_set.difference(&srat_cpus).next() {
        return Err(Inconsistency::ProcessorWithoutAffinity { apic_id });
    }
    if let Some(&apic_id) = srat_cpus.difference(&madt_set).next() {
        return Err(Inconsistency::AffinityWithoutProcessor { apic_id });
    }

    // SLIT: dimension = the number of SRAT domains, each domain inside it.
    let slit_short = Inconsistency::Truncated { signature: *b"SLIT" };
    let localities = u64_at(slit, HEADER).ok_or(slit_short)?;
    if let Some(&domain) = domains.iter().find(|&&d| u64::from(d) >= localities) {
        return Err(Inconsistency::DomainOutsideSlit { domain, localities });
    }
    if localities != domains.len() as u64 {
        return Err(Inconsistency::SlitLargerThanSrat { localities, domains: domains.len() as u64 });
    }
    // `localities` = the number of distinct domains, so it is small.
    let n = usize::try_from(localities).map_err(|_| slit_short)?;
    let matrix = n.checked_mul(n).and_then(|cells| slice(slit, HEADER + 8, cells)).ok_or(slit_short)?;
    for from in 0..n {
        for to in 0..n {
            let distance = matrix[from * n + to];
            let ok = if from == to { distance == 10 } else { distance > 10 && distance != 0xFF };
            if !ok {
                return Err(Inconsistency::BadSlitEntry { from: from as u64, to: to as u64, distance });
            }
        }
    }
    Ok(Summary { apic_ids, localities })
}
