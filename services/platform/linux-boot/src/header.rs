//! The bzImage setup header, read from the image file.

use crate::BootError;

/// Offsets in the image (= offsets in `struct boot_params`).
pub(crate) mod offset {
    pub const SETUP_SECTS: usize = 0x1f1;
    pub const BOOT_FLAG: usize = 0x1fe;
    pub const HEADER_END_BYTE: usize = 0x201;
    pub const HEADER: usize = 0x202;
    pub const VERSION: usize = 0x206;
    pub const TYPE_OF_LOADER: usize = 0x210;
    pub const LOADFLAGS: usize = 0x211;
    pub const RAMDISK_IMAGE: usize = 0x218;
    pub const RAMDISK_SIZE: usize = 0x21c;
    pub const HEAP_END_PTR: usize = 0x224;
    pub const CMD_LINE_PTR: usize = 0x228;
    pub const INITRD_ADDR_MAX: usize = 0x22c;
    pub const KERNEL_ALIGNMENT: usize = 0x230;
    pub const RELOCATABLE_KERNEL: usize = 0x234;
    pub const XLOADFLAGS: usize = 0x236;
    pub const CMDLINE_SIZE: usize = 0x238;
    pub const PREF_ADDRESS: usize = 0x258;
    pub const INIT_SIZE: usize = 0x260;
}

pub const LOADED_HIGH: u8 = 1 << 0;
pub const CAN_USE_HEAP: u8 = 1 << 7;
pub const XLF_KERNEL_64: u16 = 1 << 0;
const HDRS: &[u8; 4] = b"HdrS";

/// What the loader needs from the header, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetupHeader {
    pub setup_sects: u8,
    pub version: u16,
    pub loadflags: u8,
    pub initrd_addr_max: u32,
    pub kernel_alignment: u32,
    pub relocatable: bool,
    pub xloadflags: u16,
    pub cmdline_size: u32,
    pub pref_address: u64,
    /// Bytes the kernel needs from its load address while it decompresses.
    pub init_size: u32,
    /// Where the protected-mode kernel starts in the file.
    pub kernel_offset: usize,
    /// One past the last header byte (`0x202 + image[0x201]`).
    pub header_end: usize,
}

fn u16_at(image: &[u8], at: usize) -> Result<u16, BootError> {
    let bytes = image.get(at..at + 2).ok_or(BootError::ImageTruncated)?;
    Ok(u16::from_le_bytes([bytes[0], bytes[1]]))
}

fn u32_at(image: &[u8], at: usize) -> Result<u32, BootError> {
    let bytes = image.get(at..at + 4).ok_or(BootError::ImageTruncated)?;
    Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

fn u64_at(image: &[u8], at: usize) -> Result<u64, BootError> {
    Ok(u64::from(u32_at(image, at)?) | (u64::from(u32_at(image, at + 4)?) << 32))
}

impl SetupHeader {
    pub fn parse(image: &[u8]) -> Result<Self, BootError> {
        use offset::*;
        if image.len() < INIT_SIZE + 4 {
            return Err(BootError::ImageTruncated);
        }
        if u16_at(image, BOOT_FLAG)? != 0xaa55 || image.get(HEADER..HEADER + 4) != Some(&HDRS[..]) {
            return Err(BootError::NotABzImage);
        }
        let version = u16_at(image, VERSION)?;
        if version < 0x020c {
            return Err(BootError::ProtocolTooOld { version });
        }
        let xloadflags = u16_at(image, XLOADFLAGS)?;
        if xloadflags & XLF_KERNEL_64 == 0 {
            return Err(BootError::No64BitEntry);
        }
        let setup_sects = match image[SETUP_SECTS] {
            0 => 4,
            n => n,
        };
        let kernel_offset = (usize::from(setup_sects) + 1) * 512;
        if image.len() <= kernel_offset {
            return Err(BootError::ImageTruncated);
        }
        Ok(Self {
            setup_sects,
            version,
            loadflags: image[LOADFLAGS],
            initrd_addr_max: u32_at(image, INITRD_ADDR_MAX)?,
            kernel_alignment: u32_at(image, KERNEL_ALIGNMENT)?,
            relocatable: image[RELOCATABLE_KERNEL] != 0,
            xloadflags,
            cmdline_size: u32_at(image, CMDLINE_SIZE)?,
            pref_address: u64_at(image, PREF_ADDRESS)?,
            init_size: u32_at(image, INIT_SIZE)?,
            kernel_offset,
            header_end: (HEADER + usize::from(image[HEADER_END_BYTE])).min(kernel_offset),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal but well-formed bzImage: header fields like Debian's 6.1
    /// kernel, a 1 MiB "kernel" after four setup sectors.
    pub fn synthetic_bzimage() -> std::vec::Vec<u8> {
        let mut image = std::vec![0u8; 5 * 512 + (1 << 20)];
        image[offset::SETUP_SECTS] = 4;
        image[offset::BOOT_FLAG..offset::BOOT_FLAG + 2].copy_from_slice(&0xaa55u16.to_le_bytes());
        image[offset::HEADER_END_BYTE] = 106;
        image[offset::HEADER..offset::HEADER + 4].copy_from_slice(b"HdrS");
        image[offset::VERSION..offset::VERSION + 2].copy_from_slice(&0x020fu16.to_le_bytes());
        image[offset::LOADFLAGS] = LOADED_HIGH;
        image[offset::INITRD_ADDR_MAX..offset::INITRD_ADDR_MAX + 4].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
        image[offset::KERNEL_ALIGNMENT..offset::KERNEL_ALIGNMENT + 4].copy_from_slice(&0x20_0000u32.to_le_bytes());
        image[offset::RELOCATABLE_KERNEL] = 1;
        image[offset::XLOADFLAGS..offset::XLOADFLAGS + 2].copy_from_slice(&0x7fu16.to_le_bytes());
        image[offset::CMDLINE_SIZE..offset::CMDLINE_SIZE + 4].copy_from_slice(&2047u32.to_le_bytes());
        image[offset::PREF_ADDRESS..offset::PREF_ADDRESS + 8].copy_from_slice(&0x100_0000u64.to_le_bytes());
        image[offset::INIT_SIZE..offset::INIT_SIZE + 4].copy_from_slice(&0x3f9_8000u32.to_le_bytes());
        image
    }

    #[test]
    fn parses_a_well_formed_header() {
        let header = SetupHeader::parse(&synthetic_bzimage()).unwrap();
        assert_eq!(header.version, 0x020f);
        assert_eq!(header.kernel_offset, 5 * 512);
        assert_eq!(header.header_end, 0x202 + 106);
        assert_eq!(header.pref_address, 0x100_0000);
        assert!(header.relocatable);
    }

    #[test]
    fn rejects_what_is_not_a_usable_bzimage() {
        let good = synthetic_bzimage();
        assert_eq!(SetupHeader::parse(&good[..0x200]), Err(BootError::ImageTruncated));
        let mut bad = good.clone();
        bad[offset::HEADER] = b'X';
        assert_eq!(SetupHeader::parse(&bad), Err(BootError::NotABzImage));
        let mut old = good.clone();
        old[offset::VERSION..offset::VERSION + 2].copy_from_slice(&0x0208u16.to_le_bytes());
        assert_eq!(SetupHeader::parse(&old), Err(BootError::ProtocolTooOld { version: 0x0208 }));
        let mut no64 = good.clone();
        no64[offset::XLOADFLAGS] = 0;
        assert_eq!(SetupHeader::parse(&no64), Err(BootError::No64BitEntry));
        let mut short = good;
        short.truncate(5 * 512);
        assert_eq!(SetupHeader::parse(&short), Err(BootError::ImageTruncated));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for len in [0usize, 1, 0x1f0, 0x264, 0x400, 4096] {
            for _ in 0..2000 {
                let mut image = std::vec![0u8; len];
                for b in image.iter_mut() {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    *b = state as u8;
                }
                if len > 0x206 {
                    image[0x1fe] = 0x55;
                    image[0x1ff] = 0xaa;
                    image[0x202..0x206].copy_from_slice(b"HdrS");
                }
                let _ = SetupHeader::parse(&image);
            }
        }
    }

    /// The real Debian kernel the guest payload uses, when xtask has fetched
    /// it (`cargo xtask guest`); the synthetic tests above always run.
    #[test]
    fn debian_kernel_header_when_cached() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../target/sinter/cache");
        let Some(vmlinuz) = std::fs::read_dir(path)
            .ok()
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|e| e.path().join("vmlinuz"))
            .find(|p| p.exists())
        else {
            std::println!("note: no cached Debian kernel under {path}; only synthetic images were checked");
            return;
        };
        let image = std::fs::read(&vmlinuz).unwrap();
        let header = SetupHeader::parse(&image).unwrap();
        assert!(header.version >= 0x020c);
        assert!(header.relocatable);
        assert_eq!(header.kernel_alignment, 0x20_0000);
        assert!(header.init_size as usize > image.len() - header.kernel_offset);
    }
}
