//! The e820 memory map the guest reads from `boot_params`.

use crate::layout::GuestRamRange;
use crate::BootError;

/// Slots in `boot_params.e820_table`.
pub const MAX_E820_ENTRIES: usize = 128;
/// Top of conventional low memory; the EBDA/BIOS area above is reserved.
pub const LOW_RAM_END: u64 = 0x9_fc00;
pub const ONE_MIB: u64 = 0x10_0000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum E820Type {
    Ram = 1,
    Reserved = 2,
    Acpi = 3,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct E820Entry {
    pub addr: u64,
    pub size: u64,
    pub kind: E820Type,
}

impl E820Entry {
    pub fn end(&self) -> u64 {
        self.addr + self.size
    }

    /// The 20-byte packed layout of `struct boot_e820_entry`.
    pub fn to_bytes(self) -> [u8; 20] {
        let mut bytes = [0u8; 20];
        bytes[..8].copy_from_slice(&self.addr.to_le_bytes());
        bytes[8..16].copy_from_slice(&self.size.to_le_bytes());
        bytes[16..].copy_from_slice(&(self.kind as u32).to_le_bytes());
        bytes
    }
}

/// Fixed-capacity, sorted e820 map.
#[derive(Clone, Debug)]
pub struct E820Map {
    entries: [Option<E820Entry>; MAX_E820_ENTRIES],
    len: usize,
}

impl E820Map {
    /// Guest RAM as usable RAM, with the legacy hole 0x9fc00..1 MiB
    /// reserved and `acpi` (the guest ACPI tables, if any) marked ACPI.
    /// `ram` must be sorted and non-overlapping (the layout checks it).
    pub fn build(ram: &[GuestRamRange], acpi: Option<(u64, u64)>) -> Result<Self, BootError> {
        let mut map = Self { entries: [None; MAX_E820_ENTRIES], len: 0 };
        for range in ram {
            let (start, end) = (range.start, range.start + range.len);
            // Split around the legacy hole and the ACPI region.
            let mut cuts = [start, end, LOW_RAM_END, ONE_MIB, 0, 0];
            let mut n = 4;
            if let Some((a, b)) = acpi {
                cuts[4] = a;
                cuts[5] = a + b;
                n = 6;
            }
            let cuts = &mut cuts[..n];
            cuts.sort_unstable();
            for pair in cuts.windows(2) {
                let (a, b) = (pair[0].max(start), pair[1].min(end));
                if a >= b {
                    continue;
                }
                let in_acpi = acpi.is_some_and(|(s, l)| a >= s && b <= s + l);
                let kind = if in_acpi {
                    E820Type::Acpi
                } else if a >= LOW_RAM_END && b <= ONE_MIB {
                    E820Type::Reserved
                } else {
                    E820Type::Ram
                };
                map.push(E820Entry { addr: a, size: b - a, kind })?;
            }
        }
        Ok(map)
    }

    fn push(&mut self, entry: E820Entry) -> Result<(), BootError> {
        if let Some(last) = self.len.checked_sub(1).and_then(|i| self.entries[i].as_mut()) {
            if last.kind == entry.kind && last.end() == entry.addr {
                last.size += entry.size;
                return Ok(());
            }
        }
        let slot = self.entries.get_mut(self.len).ok_or(BootError::TooManyMemoryRanges)?;
        *slot = Some(entry);
        self.len += 1;
        Ok(())
    }

    pub fn entries(&self) -> impl Iterator<Item = E820Entry> + '_ {
        self.entries[..self.len].iter().flatten().copied()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_gib_guest_with_acpi_in_the_bios_area() {
        let ram = [GuestRamRange { start: 0, len: 1 << 30 }];
        let map = E820Map::build(&ram, Some((0xe_0000, 0x1_0000))).unwrap();
        let entries: std::vec::Vec<_> = map.entries().collect();
        assert_eq!(
            entries,
            std::vec![
                E820Entry { addr: 0, size: LOW_RAM_END, kind: E820Type::Ram },
                E820Entry { addr: LOW_RAM_END, size: 0xe_0000 - LOW_RAM_END, kind: E820Type::Reserved },
                E820Entry { addr: 0xe_0000, size: 0x1_0000, kind: E820Type::Acpi },
                E820Entry { addr: 0xf_0000, size: 0x1_0000, kind: E820Type::Reserved },
                E820Entry { addr: ONE_MIB, size: (1 << 30) - ONE_MIB, kind: E820Type::Ram },
            ]
        );
        assert_eq!(entries[2].to_bytes()[16], 3);
    }

    #[test]
    fn numa_ranges_stay_separate_entries_only_when_not_adjacent() {
        let ram = [GuestRamRange { start: 0, len: 1 << 30 }, GuestRamRange { start: 1 << 32, len: 1 << 30 }];
        let map = E820Map::build(&ram, None).unwrap();
        let last = map.entries().last().unwrap();
        assert_eq!((last.addr, last.size, last.kind), (1 << 32, 1 << 30, E820Type::Ram));
        assert_eq!(map.len(), 4);
    }
}
