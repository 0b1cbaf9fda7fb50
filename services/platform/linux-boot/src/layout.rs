//! Where each piece goes in guest RAM.
//!
//! The low area is fixed (below 1 MiB, in RAM every guest has):
//!
//! | guest address | what |
//! |---|---|
//! | 0x1000 | boot GDT |
//! | 0x6ff0 | initial stack pointer (grows down from the zero page) |
//! | 0x7000 | zero page (`struct boot_params`) |
//! | 0x9000–0xefff | identity page tables for the first 4 GiB |
//! | 0x20000 | kernel command line |
//!
//! The kernel goes at its preferred address (16 MiB for Debian's) or the
//! next aligned place in RAM that holds `init_size`; the initrd goes as high
//! as `initrd_addr_max` and the 4 GiB identity map allow, clear of the kernel.

use crate::cpu::PAGE_TABLE_PAGES;
use crate::header::SetupHeader;
use crate::BootError;

pub const GDT_ADDR: u64 = 0x1000;
pub const STACK_TOP: u64 = 0x6ff0;
pub const ZERO_PAGE_ADDR: u64 = 0x7000;
pub const PAGE_TABLES_ADDR: u64 = 0x9000;
pub const CMDLINE_ADDR: u64 = 0x2_0000;
/// End of the fixed low area: the guest must have RAM up to here.
pub const LOW_AREA_END: u64 = 0x3_0000;
const FOUR_GIB: u64 = 1 << 32;
// The boot page tables must end before the command line starts.
const _: () = assert!(PAGE_TABLES_ADDR + PAGE_TABLE_PAGES * 0x1000 <= CMDLINE_ADDR);
const SIXTEEN_MIB: u64 = 16 << 20;

/// A stretch of guest RAM (guest-physical).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestRamRange {
    pub start: u64,
    pub len: u64,
}

impl GuestRamRange {
    fn end(&self) -> u64 {
        self.start.saturating_add(self.len)
    }

    fn holds(&self, start: u64, len: u64) -> bool {
        start >= self.start && start.checked_add(len).is_some_and(|end| end <= self.end())
    }
}

/// The decided placement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootPlan {
    pub gdt: u64,
    pub stack_top: u64,
    pub zero_page: u64,
    pub page_tables: u64,
    pub cmdline: u64,
    /// Load address of the protected-mode kernel; it needs
    /// `kernel_extent` bytes from there while it decompresses itself.
    pub kernel: u64,
    pub kernel_extent: u64,
    /// (address, length) of the initrd, if any.
    pub initrd: Option<(u64, u64)>,
}

fn align_up(value: u64, align: u64) -> Option<u64> {
    let align = align.max(1);
    value.checked_add(align - 1).map(|v| v / align * align)
}

fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.0.saturating_add(b.1) && b.0 < a.0.saturating_add(a.1)
}

pub fn plan(
    header: &SetupHeader,
    ram: &[GuestRamRange],
    cmdline_len: usize,
    initrd_len: Option<u64>,
) -> Result<BootPlan, BootError> {
    if cmdline_len > header.cmdline_size as usize {
        return Err(BootError::CmdlineTooLong { len: cmdline_len, max: header.cmdline_size });
    }
    if !ram.first().is_some_and(|r| r.holds(0, LOW_AREA_END)) {
        return Err(BootError::NoLowMemory);
    }
    if ram.windows(2).any(|w| w[0].end() > w[1].start) {
        return Err(BootError::TooManyMemoryRanges);
    }

    let extent = u64::from(header.init_size);
    let align = u64::from(header.kernel_alignment).max(0x1000);
    let kernel = if header.relocatable {
        let preferred = align_up(header.pref_address.max(SIXTEEN_MIB), align)
            .ok_or(BootError::KernelDoesNotFit { needed: extent })?;
        ram.iter()
            .filter_map(|r| {
                let at = align_up(r.start.max(preferred), align)?;
                r.holds(at, extent).then_some(at)
            })
            .next()
    } else {
        let fixed = if header.pref_address != 0 { header.pref_address } else { 0x10_0000 };
        ram.iter().any(|r| r.holds(fixed, extent)).then_some(fixed)
    }
    .ok_or(BootError::KernelDoesNotFit { needed: extent })?;

    let initrd = match initrd_len {
        None | Some(0) => None,
        Some(len) => {
            let ceiling = (u64::from(header.initrd_addr_max) + 1).min(FOUR_GIB);
            let fits = |end: u64, floor: u64| -> Option<u64> {
                let start = end.checked_sub(len)? & !0xfff;
                (start >= floor).then_some(start)
            };
            let mut found = None;
            for range in ram.iter().rev() {
                let floor = range.start.max(0x10_0000);
                let end = range.end().min(ceiling);
                // Highest spot in this range, or just below the kernel.
                for candidate_end in [end, kernel.min(end)] {
                    if let Some(start) = fits(candidate_end, floor) {
                        if !overlaps((start, len), (kernel, extent)) {
                            found = Some(start);
                            break;
                        }
                    }
                }
                if found.is_some() {
                    break;
                }
            }
            Some((found.ok_or(BootError::InitrdDoesNotFit { len })?, len))
        }
    };

    Ok(BootPlan {
        gdt: GDT_ADDR,
        stack_top: STACK_TOP,
        zero_page: ZERO_PAGE_ADDR,
        page_tables: PAGE_TABLES_ADDR,
        cmdline: CMDLINE_ADDR,
        kernel,
        kernel_extent: extent,
        initrd,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::tests::synthetic_bzimage;
    use proptest::prelude::*;

    fn header() -> SetupHeader {
        SetupHeader::parse(&synthetic_bzimage()).unwrap()
    }

    const GIB: u64 = 1 << 30;

    #[test]
    fn one_gib_guest_gets_kernel_at_16_mib_and_initrd_high() {
        let ram = [GuestRamRange { start: 0, len: GIB }];
        let plan = plan(&header(), &ram, 100, Some(20 << 20)).unwrap();
        assert_eq!(plan.kernel, 16 << 20);
        let (initrd, len) = plan.initrd.unwrap();
        assert_eq!(initrd + len, GIB);
        assert_eq!(initrd % 4096, 0);
    }

    #[test]
    fn errors_are_typed() {
        let h = header();
        let small = [GuestRamRange { start: 0, len: 64 << 20 }];
        assert!(matches!(plan(&h, &small, 10, None), Err(BootError::KernelDoesNotFit { .. })));
        let no_low = [GuestRamRange { start: 1 << 20, len: GIB }];
        assert_eq!(plan(&h, &no_low, 10, None), Err(BootError::NoLowMemory));
        let ram = [GuestRamRange { start: 0, len: GIB }];
        assert!(matches!(plan(&h, &ram, 5000, None), Err(BootError::CmdlineTooLong { .. })));
        assert!(matches!(plan(&h, &ram, 10, Some(2 * GIB)), Err(BootError::InitrdDoesNotFit { .. })));
        let overlapping = [GuestRamRange { start: 0, len: GIB }, GuestRamRange { start: GIB / 2, len: GIB }];
        assert_eq!(plan(&h, &overlapping, 10, None), Err(BootError::TooManyMemoryRanges));
    }

    proptest! {
        #[test]
        fn any_plan_it_makes_is_sound(
            first_mib in 96u64..8192,
            gap_mib in 0u64..4096,
            second_mib in 0u64..4096,
            initrd in proptest::option::of(1u64..(300 << 20)),
            cmdline in 0usize..2100,
        ) {
            let mut ram = vec![GuestRamRange { start: 0, len: first_mib << 20 }];
            if second_mib > 0 {
                ram.push(GuestRamRange { start: (first_mib + gap_mib) << 20, len: second_mib << 20 });
            }
            let h = header();
            match plan(&h, &ram, cmdline, initrd) {
                Ok(p) => {
                    prop_assert!(ram.iter().any(|r| r.holds(p.kernel, p.kernel_extent)));
                    prop_assert_eq!(p.kernel % u64::from(h.kernel_alignment), 0);
                    if let Some((at, len)) = p.initrd {
                        prop_assert!(ram.iter().any(|r| r.holds(at, len)));
                        prop_assert!(at + len <= (u64::from(h.initrd_addr_max) + 1).min(FOUR_GIB));
                        prop_assert!(!overlaps((at, len), (p.kernel, p.kernel_extent)));
                        prop_assert!(at >= 1 << 20);
                    }
                    prop_assert!(cmdline <= h.cmdline_size as usize);
                }
                Err(e) => prop_assert!(matches!(
                    e,
                    BootError::KernelDoesNotFit { .. } | BootError::InitrdDoesNotFit { .. } | BootError::CmdlineTooLong { .. }
                ), "unexpected {:?}", e),
            }
        }
    }
}
