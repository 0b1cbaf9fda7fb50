//! Writing a bootable guest into guest memory.

use crate::cpu::{self, InitialCpuState, CODE64, DATA, GDT};
use crate::e820::E820Map;
use crate::header::SetupHeader;
use crate::layout::{self, BootPlan, GuestRamRange};
use crate::{zero_page, BootError};

/// Guest-physical memory as the loader may write it.
pub trait GuestMemory {
    /// Writes `bytes` at `gpa`; `Err(())` if any byte is not guest RAM.
    #[allow(clippy::result_unit_err, reason = "the caller turns it into BootError::GuestWrite with the address")]
    fn write(&mut self, gpa: u64, bytes: &[u8]) -> Result<(), ()>;
}

/// Where the guest's ACPI tables are (built elsewhere).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcpiPlacement {
    pub rsdp: u64,
    /// (address, length) of the table region, reported as ACPI in e820.
    pub region: (u64, u64),
}

fn write(memory: &mut impl GuestMemory, gpa: u64, bytes: &[u8]) -> Result<(), BootError> {
    memory.write(gpa, bytes).map_err(|()| BootError::GuestWrite { gpa })
}

/// Loads `image` (a bzImage) with `initrd` and `cmdline` into `ram` and
/// returns the plan and the state vCPU 0 must start in.
pub fn load(
    image: &[u8],
    initrd: Option<&[u8]>,
    cmdline: &str,
    ram: &[GuestRamRange],
    acpi: Option<AcpiPlacement>,
    memory: &mut impl GuestMemory,
) -> Result<(BootPlan, InitialCpuState), BootError> {
    let header = SetupHeader::parse(image)?;
    let plan = layout::plan(&header, ram, cmdline.len(), initrd.map(|i| i.len() as u64))?;
    let e820 = E820Map::build(ram, acpi.map(|a| a.region))?;

    let mut gdt = [0u8; 32];
    for (i, descriptor) in GDT.iter().enumerate() {
        gdt[i * 8..i * 8 + 8].copy_from_slice(&descriptor.to_le_bytes());
    }
    write(memory, plan.gdt, &gdt)?;
    for (gpa, page) in cpu::identity_page_tables(plan.page_tables) {
        write(memory, gpa, &page)?;
    }
    let zero_page = zero_page::build(image, &header, &plan, &e820, acpi.map(|a| a.rsdp));
    write(memory, plan.zero_page, &zero_page)?;
    write(memory, plan.cmdline, cmdline.as_bytes())?;
    write(memory, plan.cmdline + cmdline.len() as u64, &[0])?;
    write(memory, plan.kernel, &image[header.kernel_offset..])?;
    if let (Some(bytes), Some((at, _))) = (initrd, plan.initrd) {
        write(memory, at, bytes)?;
    }

    let state = InitialCpuState {
        // The 64-bit entry is 0x200 past the protected-mode kernel's start.
        rip: plan.kernel + 0x200,
        rsi: plan.zero_page,
        rsp: plan.stack_top,
        rflags: 0x2,
        cr0: cpu::CR0_PE | cpu::CR0_ET | cpu::CR0_PG,
        cr3: plan.page_tables,
        cr4: cpu::CR4_PAE,
        efer: cpu::EFER_LME | cpu::EFER_LMA,
        cs: CODE64,
        data: DATA,
        gdt_base: plan.gdt,
        gdt_limit: (GDT.len() * 8 - 1) as u16,
    };
    Ok((plan, state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::tests::synthetic_bzimage;
    use std::collections::BTreeMap;
    use std::vec::Vec;

    /// Records every write; refuses writes outside `ram`.
    struct RecordingMemory {
        ram: Vec<GuestRamRange>,
        writes: BTreeMap<u64, Vec<u8>>,
    }

    impl GuestMemory for RecordingMemory {
        fn write(&mut self, gpa: u64, bytes: &[u8]) -> Result<(), ()> {
            let inside = self.ram.iter().any(|r| gpa >= r.start && gpa + bytes.len() as u64 <= r.start + r.len);
            if !inside {
                return Err(());
            }
            self.writes.insert(gpa, bytes.to_vec());
            Ok(())
        }
    }

    #[test]
    fn loads_without_overlap_and_starts_in_long_mode() {
        let image = synthetic_bzimage();
        let initrd = std::vec![0x5a; 3 << 20];
        let ram = std::vec![GuestRamRange { start: 0, len: 1 << 30 }];
        let mut memory = RecordingMemory { ram: ram.clone(), writes: BTreeMap::new() };
        let acpi = AcpiPlacement { rsdp: 0xe_0000, region: (0xe_0000, 0x1_0000) };
        let (plan, state) = load(&image, Some(&initrd), "console=ttyS0", &ram, Some(acpi), &mut memory).unwrap();

        // No two writes overlap.
        let spans: Vec<(u64, u64)> = memory.writes.iter().map(|(a, b)| (*a, *a + b.len() as u64)).collect();
        for pair in spans.windows(2) {
            assert!(pair[0].1 <= pair[1].0, "writes overlap: {pair:?}");
        }
        assert_eq!(memory.writes[&plan.kernel], image[5 * 512..].to_vec());
        assert_eq!(memory.writes[&plan.initrd.unwrap().0], initrd);
        assert_eq!(memory.writes[&plan.cmdline], b"console=ttyS0".to_vec());
        assert_eq!(memory.writes[&(plan.cmdline + 13)], std::vec![0]);
        assert_eq!(state.rip, (16 << 20) + 0x200);
        assert_eq!(state.rsi, 0x7000);
        assert_eq!(state.efer & cpu::EFER_LMA, cpu::EFER_LMA);
        assert_eq!(state.cs.selector, 0x10);
        // The identity map covers the kernel's whole extent and the initrd.
        assert!(plan.kernel + plan.kernel_extent <= 1 << 32);
    }

    #[test]
    fn memory_that_refuses_a_write_gives_its_address() {
        let image = synthetic_bzimage();
        let ram = std::vec![GuestRamRange { start: 0, len: 1 << 30 }];
        let mut memory =
            RecordingMemory { ram: std::vec![GuestRamRange { start: 0, len: 0x1_0000 }], writes: BTreeMap::new() };
        assert_eq!(
            load(&image, None, "", &ram, None, &mut memory).unwrap_err(),
            BootError::GuestWrite { gpa: 0x2_0000 }
        );
    }
}
