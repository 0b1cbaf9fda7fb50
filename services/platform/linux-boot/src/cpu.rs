//! The vCPU state at the kernel's 64-bit entry point, and the GDT and
//! identity page tables that state refers to.

/// Selectors the boot protocol requires (`__BOOT_CS`, `__BOOT_DS`).
pub const BOOT_CS: u16 = 0x10;
pub const BOOT_DS: u16 = 0x18;

/// GDT: null, null, 64-bit code (0x10), flat data (0x18).
pub const GDT: [u64; 4] = [0, 0, 0x00af_9b00_0000_ffff, 0x00cf_9300_0000_ffff];

/// A segment register as SVM's VMCB (and VMX, after repacking) holds it;
/// `attributes` uses the VMCB layout: type[3:0] S[4] DPL[6:5] P[7] AVL[8]
/// L[9] D/B[10] G[11].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentState {
    pub selector: u16,
    pub attributes: u16,
    pub limit: u32,
    pub base: u64,
}

pub const CODE64: SegmentState = SegmentState { selector: BOOT_CS, attributes: 0xa9b, limit: 0xffff_ffff, base: 0 };
pub const DATA: SegmentState = SegmentState { selector: BOOT_DS, attributes: 0xc93, limit: 0xffff_ffff, base: 0 };

pub const CR0_PE: u64 = 1 << 0;
pub const CR0_ET: u64 = 1 << 4;
pub const CR0_PG: u64 = 1 << 31;
pub const CR4_PAE: u64 = 1 << 5;
pub const EFER_LME: u64 = 1 << 8;
pub const EFER_LMA: u64 = 1 << 10;

/// What a vCPU must hold when it starts the kernel (boot.rst, "64-bit Boot
/// Protocol"): long mode, paging on with the boot tables, the boot GDT,
/// interrupts off, RSI = the zero page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InitialCpuState {
    pub rip: u64,
    pub rsi: u64,
    pub rsp: u64,
    pub rflags: u64,
    pub cr0: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub efer: u64,
    pub cs: SegmentState,
    pub data: SegmentState,
    pub gdt_base: u64,
    pub gdt_limit: u16,
}

/// Pages the identity map of the first 4 GiB takes: PML4, PDPT, 4 PDs.
pub const PAGE_TABLE_PAGES: u64 = 6;

/// The boot page tables placed at `base` (4 KiB aligned): the first 4 GiB
/// identity-mapped with 2 MiB pages. Returns (guest address, 4 KiB page)
/// pairs to write.
pub fn identity_page_tables(base: u64) -> impl Iterator<Item = (u64, [u8; 4096])> {
    (0..PAGE_TABLE_PAGES).map(move |page| {
        let mut bytes = [0u8; 4096];
        let mut put = |index: usize, value: u64| bytes[index * 8..index * 8 + 8].copy_from_slice(&value.to_le_bytes());
        const PRESENT_WRITABLE: u64 = 0b11;
        match page {
            0 => put(0, (base + 0x1000) | PRESENT_WRITABLE),
            1 => {
                for gib in 0..4 {
                    put(gib, (base + 0x2000 + 0x1000 * gib as u64) | PRESENT_WRITABLE);
                }
            }
            pd => {
                let gib = pd - 2;
                for slot in 0..512 {
                    let phys = (gib << 30) + ((slot as u64) << 21);
                    put(slot, phys | PRESENT_WRITABLE | (1 << 7));
                }
            }
        }
        (base + page * 0x1000, bytes)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(page: &[u8; 4096], index: usize) -> u64 {
        u64::from_le_bytes(page[index * 8..index * 8 + 8].try_into().unwrap())
    }

    #[test]
    fn identity_map_covers_four_gib_with_large_pages() {
        let pages: std::vec::Vec<_> = identity_page_tables(0x9000).collect();
        assert_eq!(pages.len(), 6);
        assert_eq!(entry(&pages[0].1, 0), 0xa000 | 3);
        assert_eq!(entry(&pages[1].1, 3), 0xe000 | 3);
        // Last 2 MiB page of the 4th GiB maps to itself.
        assert_eq!(entry(&pages[5].1, 511), ((3u64 << 30) + (511 << 21)) | 0x83);
    }

    #[test]
    fn gdt_descriptors_match_segment_attributes() {
        // Access byte = attributes[7:0], flags nibble = attributes[11:8].
        for (descriptor, segment) in [(GDT[2], CODE64), (GDT[3], DATA)] {
            let access = (descriptor >> 40) & 0xff;
            let flags = (descriptor >> 52) & 0xf;
            assert_eq!(u64::from(segment.attributes), access | (flags << 8));
        }
    }
}
