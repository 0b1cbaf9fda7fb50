//! `struct boot_params` (the "zero page"), 4 KiB.

use crate::e820::E820Map;
use crate::header::{offset, SetupHeader, CAN_USE_HEAP};
use crate::layout::BootPlan;

/// Offsets of the fields the loader fills outside the setup header.
mod field {
    pub const ACPI_RSDP_ADDR: usize = 0x070;
    pub const EXT_RAMDISK_IMAGE: usize = 0x0c0;
    pub const EXT_RAMDISK_SIZE: usize = 0x0c4;
    pub const EXT_CMD_LINE_PTR: usize = 0x0c8;
    pub const E820_ENTRIES: usize = 0x1e8;
    pub const E820_TABLE: usize = 0x2d0;
}

/// "Undefined" boot loader id (boot.rst: 0xff).
const LOADER_UNDEFINED: u8 = 0xff;

fn put_u32(page: &mut [u8; 4096], at: usize, value: u32) {
    page[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

fn put_u64(page: &mut [u8; 4096], at: usize, value: u64) {
    page[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

/// Builds the zero page: the image's own setup header, then what the loader
/// decided (command line, initrd, e820, RSDP).
pub fn build(image: &[u8], header: &SetupHeader, plan: &BootPlan, e820: &E820Map, rsdp: Option<u64>) -> [u8; 4096] {
    let mut page = [0u8; 4096];
    let end = header.header_end.min(image.len()).min(4096);
    page[offset::SETUP_SECTS..end].copy_from_slice(&image[offset::SETUP_SECTS..end]);
    page[offset::TYPE_OF_LOADER] = LOADER_UNDEFINED;
    page[offset::LOADFLAGS] |= CAN_USE_HEAP;
    page[offset::HEAP_END_PTR..offset::HEAP_END_PTR + 2].copy_from_slice(&0xfe00u16.to_le_bytes());
    put_u32(&mut page, offset::CMD_LINE_PTR, plan.cmdline as u32);
    put_u32(&mut page, field::EXT_CMD_LINE_PTR, (plan.cmdline >> 32) as u32);
    let (initrd, initrd_len) = plan.initrd.unwrap_or((0, 0));
    put_u32(&mut page, offset::RAMDISK_IMAGE, initrd as u32);
    put_u32(&mut page, offset::RAMDISK_SIZE, initrd_len as u32);
    put_u32(&mut page, field::EXT_RAMDISK_IMAGE, (initrd >> 32) as u32);
    put_u32(&mut page, field::EXT_RAMDISK_SIZE, (initrd_len >> 32) as u32);
    if let Some(rsdp) = rsdp {
        put_u64(&mut page, field::ACPI_RSDP_ADDR, rsdp);
    }
    page[field::E820_ENTRIES] = e820.len() as u8;
    for (i, entry) in e820.entries().enumerate() {
        let at = field::E820_TABLE + 20 * i;
        page[at..at + 20].copy_from_slice(&entry.to_bytes());
    }
    page
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::tests::synthetic_bzimage;
    use crate::layout::{plan, GuestRamRange};

    #[test]
    fn fields_land_at_their_documented_offsets() {
        let image = synthetic_bzimage();
        let header = SetupHeader::parse(&image).unwrap();
        let ram = [GuestRamRange { start: 0, len: 1 << 30 }];
        let p = plan(&header, &ram, 20, Some(1 << 20)).unwrap();
        let e820 = E820Map::build(&ram, None).unwrap();
        let page = build(&image, &header, &p, &e820, Some(0xe_0000));
        let u32_at = |at: usize| u32::from_le_bytes(page[at..at + 4].try_into().unwrap());
        assert_eq!(&page[0x202..0x206], b"HdrS");
        assert_eq!(page[0x210], 0xff);
        assert_eq!(page[0x211] & CAN_USE_HEAP, CAN_USE_HEAP);
        assert_eq!(u32_at(0x228), 0x2_0000);
        assert_eq!(u64::from(u32_at(0x218)), p.initrd.unwrap().0);
        assert_eq!(u32_at(0x21c), 1 << 20);
        assert_eq!(u64::from_le_bytes(page[0x70..0x78].try_into().unwrap()), 0xe_0000);
        assert_eq!(page[0x1e8] as usize, e820.len());
        assert_eq!(u64::from_le_bytes(page[0x2d0 + 20..0x2d0 + 28].try_into().unwrap()), 0x9_fc00);
        // Nothing past the header end is copied from the image.
        assert!(page[header.header_end..0x2d0].iter().all(|&b| b == 0));
    }
}
