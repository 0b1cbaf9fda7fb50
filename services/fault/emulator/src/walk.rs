//! Guest linear → guest-physical translation by walking the guest's own
//! page tables, as the fault service needs to fetch the instruction bytes
//! at RIP (no decode assists on QEMU TCG).
//!
//! Supported: paging off (linear = physical), 32-bit paging (4 KiB and
//! 4 MiB pages with PSE), PAE paging (4 KiB and 2 MiB pages) and 4-level
//! long-mode paging (4 KiB, 2 MiB and 1 GiB pages). Five-level paging is
//! hidden from guests (CPUID 7 ECX LA57), so it is refused. Only presence
//! is checked: the walk is a fetch on behalf of the hypervisor, not an
//! access check, and it never sets A/D bits. Table reads go through a
//! caller-supplied reader so a missing or non-RAM table is an error, not
//! a crash.

/// The guest paging state the walk depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PagingState {
    /// CR0 (PG, bit 31).
    pub cr0: u64,
    /// CR3 (table base).
    pub cr3: u64,
    /// CR4 (PSE bit 4, PAE bit 5, LA57 bit 12).
    pub cr4: u64,
    /// EFER (LMA, bit 10).
    pub efer: u64,
}

/// Why a linear address could not be translated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkError {
    /// An entry on the way is not present (`level`: 4 = PML4 … 1 = PTE).
    NotPresent {
        /// Table level of the entry.
        level: u8,
    },
    /// A table entry could not be read (not guest RAM).
    TableUnreadable {
        /// Guest-physical address of the entry.
        gpa: u64,
    },
    /// The guest uses a paging mode the walker does not model (LA57).
    UnsupportedMode,
    /// The linear address is not canonical (long mode).
    NonCanonical,
}

const CR0_PG: u64 = 1 << 31;
const CR4_PSE: u64 = 1 << 4;
const CR4_PAE: u64 = 1 << 5;
const CR4_LA57: u64 = 1 << 12;
const EFER_LMA: u64 = 1 << 10;
const PRESENT: u64 = 1;
const PAGE_SIZE_BIT: u64 = 1 << 7;
/// Physical-address bits 51:12 of a 64-bit entry.
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

/// Translates `linear` to a guest-physical address. `read_u64(gpa)` reads
/// an aligned 8-byte table entry from guest RAM (`None` if `gpa` is not
/// RAM); 32-bit tables use its low half.
pub fn translate(
    paging: &PagingState,
    linear: u64,
    mut read_u64: impl FnMut(u64) -> Option<u64>,
) -> Result<u64, WalkError> {
    if paging.cr0 & CR0_PG == 0 {
        return Ok(linear);
    }
    let mut read = |gpa: u64| read_u64(gpa).ok_or(WalkError::TableUnreadable { gpa });
    if paging.efer & EFER_LMA != 0 {
        if paging.cr4 & CR4_LA57 != 0 {
            return Err(WalkError::UnsupportedMode);
        }
        let top = linear >> 47;
        if top != 0 && top != 0x1_ffff {
            return Err(WalkError::NonCanonical);
        }
        let mut table = paging.cr3 & ADDR_MASK;
        for level in (1..=4u8).rev() {
            let shift = 12 + 9 * u32::from(level - 1);
            let index = (linear >> shift) & 0x1ff;
            let entry = read(table + index * 8)?;
            if entry & PRESENT == 0 {
                return Err(WalkError::NotPresent { level });
            }
            if level == 1 || (level <= 3 && entry & PAGE_SIZE_BIT != 0) {
                let offset_mask = (1u64 << shift) - 1;
                return Ok((entry & ADDR_MASK & !offset_mask) | (linear & offset_mask));
            }
            table = entry & ADDR_MASK;
        }
        unreachable!("the level-1 entry always ends the walk");
    }
    let linear = linear & 0xffff_ffff;
    if paging.cr4 & CR4_PAE != 0 {
        // PAE: a 4-entry PDPT at CR3[31:5], then PD and PT of 64-bit entries.
        let pdpte = read((paging.cr3 & 0xffff_ffe0) + ((linear >> 30) & 3) * 8)?;
        if pdpte & PRESENT == 0 {
            return Err(WalkError::NotPresent { level: 3 });
        }
        let pde = read((pdpte & ADDR_MASK) + ((linear >> 21) & 0x1ff) * 8)?;
        if pde & PRESENT == 0 {
            return Err(WalkError::NotPresent { level: 2 });
        }
        if pde & PAGE_SIZE_BIT != 0 {
            return Ok((pde & ADDR_MASK & !0x1f_ffff) | (linear & 0x1f_ffff));
        }
        let pte = read((pde & ADDR_MASK) + ((linear >> 12) & 0x1ff) * 8)?;
        if pte & PRESENT == 0 {
            return Err(WalkError::NotPresent { level: 1 });
        }
        return Ok((pte & ADDR_MASK) | (linear & 0xfff));
    }
    // 32-bit paging: 4-byte entries.
    let mut read32 = |gpa: u64| -> Result<u64, WalkError> {
        let aligned = gpa & !7;
        let word = read(aligned)?;
        Ok(if gpa & 4 != 0 { word >> 32 } else { word & 0xffff_ffff })
    };
    let pde = read32((paging.cr3 & 0xffff_f000) + (linear >> 22) * 4)?;
    if pde & PRESENT == 0 {
        return Err(WalkError::NotPresent { level: 2 });
    }
    if pde & PAGE_SIZE_BIT != 0 && paging.cr4 & CR4_PSE != 0 {
        // PSE-36 bits 20:13 are address bits 39:32.
        let high = ((pde >> 13) & 0xff) << 32;
        return Ok(high | (pde & 0xffc0_0000) | (linear & 0x3f_ffff));
    }
    let pte = read32((pde & 0xffff_f000) + ((linear >> 12) & 0x3ff) * 4)?;
    if pte & PRESENT == 0 {
        return Err(WalkError::NotPresent { level: 1 });
    }
    Ok((pte & 0xffff_f000) | (linear & 0xfff))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Sparse guest RAM of 8-byte words.
    #[derive(Default)]
    struct Ram(BTreeMap<u64, u64>);

    impl Ram {
        fn set(&mut self, gpa: u64, value: u64) {
            self.0.insert(gpa, value);
        }
        fn set32(&mut self, gpa: u64, value: u32) {
            let word = self.0.entry(gpa & !7).or_insert(0);
            if gpa & 4 != 0 {
                *word = (*word & 0xffff_ffff) | (u64::from(value) << 32);
            } else {
                *word = (*word & !0xffff_ffff) | u64::from(value);
            }
        }
        fn reader(&self) -> impl FnMut(u64) -> Option<u64> + '_ {
            |gpa| self.0.get(&gpa).copied().or(if gpa < (1 << 30) { Some(0) } else { None })
        }
    }

    const LONG: PagingState = PagingState { cr0: CR0_PG | 1, cr3: 0x1000, cr4: CR4_PAE, efer: EFER_LMA | (1 << 8) };

    #[test]
    fn paging_off_is_identity() {
        let off = PagingState { cr0: 1, cr3: 0, cr4: 0, efer: 0 };
        assert_eq!(translate(&off, 0x1234_5678, |_| None), Ok(0x1234_5678));
    }

    #[test]
    fn long_mode_four_kib_two_mib_and_one_gib_pages() {
        let mut ram = Ram::default();
        // Linux's kernel text mapping: 0xffffffff81000000 → 0x1000000 (2 MiB page),
        // the direct map at 0xffff888000000000 with a 1 GiB page, and a 4 KiB page.
        let text: u64 = 0xffff_ffff_8100_0123;
        ram.set(0x1000 + 511 * 8, 0x2000 | 3);
        ram.set(0x2000 + 510 * 8, 0x3000 | 3);
        ram.set(0x3000 + 8 * 8, 0x0100_0000 | 0x83);
        assert_eq!(translate(&LONG, text, ram.reader()), Ok(0x0100_0123));

        let direct: u64 = 0xffff_8880_0000_0000 + 0x4000_5678;
        ram.set(0x1000 + 273 * 8, 0x4000 | 3);
        ram.set(0x4000 + 8, 0x8000_0000 | 0x83);
        assert_eq!(translate(&LONG, direct, ram.reader()), Ok(0x8000_5678));

        let small: u64 = 0x0000_0000_0040_1abc;
        ram.set(0x1000, 0x5000 | 3);
        ram.set(0x5000, 0x6000 | 3);
        ram.set(0x6000 + 2 * 8, 0x7000 | 3);
        ram.set(0x7000 + 8, 0x00ab_c000 | 3);
        assert_eq!(translate(&LONG, small, ram.reader()), Ok(0x00ab_cabc));
        // The NX bit and other high flag bits do not leak into the address.
        ram.set(0x7000 + 8, (1 << 63) | 0x00ab_c000 | 3);
        assert_eq!(translate(&LONG, small, ram.reader()), Ok(0x00ab_cabc));
    }

    #[test]
    fn long_mode_errors() {
        let mut ram = Ram::default();
        assert_eq!(translate(&LONG, 0x1000, ram.reader()), Err(WalkError::NotPresent { level: 4 }));
        assert_eq!(translate(&LONG, 0x0000_8000_0000_0000, ram.reader()), Err(WalkError::NonCanonical));
        ram.set(0x1000, 0x4000_0000_0000 | 3); // a PDPT outside RAM
        assert_eq!(translate(&LONG, 0x1000, ram.reader()), Err(WalkError::TableUnreadable { gpa: 0x4000_0000_0000 }));
        let la57 = PagingState { cr4: CR4_PAE | CR4_LA57, ..LONG };
        assert_eq!(translate(&la57, 0, ram.reader()), Err(WalkError::UnsupportedMode));
    }

    #[test]
    fn pae_and_32_bit_paging() {
        let mut ram = Ram::default();
        let pae = PagingState { cr0: CR0_PG | 1, cr3: 0x1020, cr4: CR4_PAE, efer: 0 };
        ram.set(0x1020 + 3 * 8, 0x2000 | 1);
        ram.set(0x2000 + 511 * 8, 0x0020_0000 | 0x83);
        assert_eq!(translate(&pae, 0xffff_f123, ram.reader()), Ok(0x003f_f123));

        let mut ram = Ram::default();
        let legacy = PagingState { cr0: CR0_PG | 1, cr3: 0x3000, cr4: CR4_PSE, efer: 0 };
        ram.set32(0x3000 + 4, 0x0040_0000 | 0x83); // 4 MiB page
        assert_eq!(translate(&legacy, 0x0045_6789, ram.reader()), Ok(0x0045_6789));
        ram.set32(0x3000 + 3 * 4, 0x5000 | 3);
        ram.set32(0x5000 + 5 * 4, 0x0009_9000 | 3);
        assert_eq!(translate(&legacy, 0x00c0_5abc, ram.reader()), Ok(0x0009_9abc));
        assert_eq!(translate(&legacy, 0x0100_0000, ram.reader()), Err(WalkError::NotPresent { level: 2 }));
    }
}
