//! SLIT (ACPI 6.5 §5.2.17): the relative distance between NUMA nodes,
//! indexed by proximity domain, so the node numbers must be 0..count.

use alloc::vec::Vec;

use crate::sdt::{seal, SdtHeader};

/// A sealed SLIT for `localities` nodes from a validated row-major
/// `localities × localities` matrix.
pub fn build(localities: u32, distances: &[u8]) -> Vec<u8> {
    let len = size_of::<SdtHeader>() + 8 + distances.len();
    let mut out = Vec::with_capacity(len);
    crate::sdt::push(&mut out, &SdtHeader::new(*b"SLIT", 1, len as u32));
    out.extend_from_slice(&u64::from(localities).to_le_bytes());
    out.extend_from_slice(distances);
    seal(&mut out);
    out
}
