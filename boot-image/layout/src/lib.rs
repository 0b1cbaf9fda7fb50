//! Sinter's bootable image: a raw GPT disk whose one partition is a FAT32 EFI
//! system partition holding the loader, the kernel, the configs and payload.
//!
//! The result is a plain disk image that `dd` writes to a USB stick and that
//! QEMU attaches as `usb-storage`. This crate only builds images on the host;
//! it must never write anywhere but the output path it is given.
#![forbid(unsafe_code)]

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Where the UEFI firmware looks for a removable medium's boot loader.
pub const UEFI_BOOT_PATH: &str = "EFI/BOOT/BOOTX64.EFI";
/// Sinter's own files on the ESP (the loader's `\sinter\...`).
pub const KERNEL_PATH: &str = "sinter/kernel.elf";
pub const CLUSTER_CONFIG_PATH: &str = "sinter/cluster.toml";
pub const NODE_CONFIG_PATH: &str = "sinter/node.toml";
pub const PAYLOAD_DIR: &str = "sinter/payload";

const SECTOR: u64 = 512;
const MIB: u64 = 1 << 20;
/// FAT32 needs at least 65,525 clusters; with 512-byte clusters that is
/// about 33 MiB, so the ESP is never smaller than this.
const MIN_ESP_BYTES: u64 = 40 * MIB;
/// Room at both ends of the disk for the protective MBR and both GPTs.
const GPT_OVERHEAD: u64 = 2 * MIB;

/// One file to place on the ESP, at a `/`-separated path.
#[derive(Debug, Clone)]
pub struct EspFile {
    pub path: String,
    pub contents: Vec<u8>,
}

impl EspFile {
    pub fn new(path: impl Into<String>, contents: Vec<u8>) -> Self {
        Self { path: path.into(), contents }
    }
}

#[derive(Debug)]
pub enum ImageError {
    Io { what: String, source: io::Error },
    Gpt(String),
    BadPath(String),
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageError::Io { what, source } => write!(f, "{what}: {source}"),
            ImageError::Gpt(why) => write!(f, "GPT: {why}"),
            ImageError::BadPath(path) => write!(f, "bad ESP path `{path}`"),
        }
    }
}

impl std::error::Error for ImageError {}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> ImageError {
    let what = what.into();
    move |source| ImageError::Io { what, source }
}

/// What was written.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    pub path: PathBuf,
    pub disk_bytes: u64,
    pub esp_offset: u64,
    pub esp_bytes: u64,
}

/// Builds a FAT32 volume holding `files`, in memory.
pub fn build_esp(files: &[EspFile]) -> Result<Vec<u8>, ImageError> {
    let payload: u64 = files.iter().map(|f| f.contents.len() as u64).sum();
    // FAT tables, directories and cluster slack: 10% plus a fixed margin.
    let size = (payload + payload / 10 + 8 * MIB).max(MIN_ESP_BYTES).div_ceil(MIB) * MIB;
    let mut volume = Cursor::new(vec![0u8; size as usize]);
    let options = fatfs::FormatVolumeOptions::new().fat_type(fatfs::FatType::Fat32).volume_label(*b"SINTER     ");
    fatfs::format_volume(&mut volume, options).map_err(io_err("formatting the ESP"))?;
    {
        let fs = fatfs::FileSystem::new(&mut volume, fatfs::FsOptions::new()).map_err(io_err("opening the new ESP"))?;
        let root = fs.root_dir();
        for file in files {
            let parts: Vec<&str> = file.path.split('/').collect();
            if parts.iter().any(|p| p.is_empty() || *p == "." || *p == "..") {
                return Err(ImageError::BadPath(file.path.clone()));
            }
            let mut dir = root.clone();
            for part in &parts[..parts.len() - 1] {
                dir = match dir.open_dir(part) {
                    Ok(existing) => existing,
                    Err(_) => dir.create_dir(part).map_err(io_err(format!("creating {part}")))?,
                };
            }
            let name = parts[parts.len() - 1];
            let mut out = dir.create_file(name).map_err(io_err(format!("creating {}", file.path)))?;
            out.truncate().map_err(io_err(format!("truncating {}", file.path)))?;
            out.write_all(&file.contents).map_err(io_err(format!("writing {}", file.path)))?;
        }
    }
    Ok(volume.into_inner())
}

/// Writes a GPT disk image at `path` whose single EFI system partition holds
/// `files`. The image is complete and self-contained: `dd if=... of=/dev/sdX`.
pub fn write_disk_image(path: &Path, files: &[EspFile]) -> Result<ImageInfo, ImageError> {
    let esp = build_esp(files)?;
    let esp_bytes = esp.len() as u64;
    let disk_bytes = esp_bytes + GPT_OVERHEAD;
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io_err(format!("creating {}", parent.display())))?;
    }
    let mut disk = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_err(format!("creating {}", path.display())))?;
    disk.set_len(disk_bytes).map_err(io_err("sizing the disk"))?;

    let sectors = u32::try_from(disk_bytes / SECTOR - 1).unwrap_or(u32::MAX);
    gpt::mbr::ProtectiveMBR::with_lb_size(sectors)
        .overwrite_lba0(&mut disk)
        .map_err(|e| ImageError::Gpt(format!("protective MBR: {e}")))?;
    let block = gpt::disk::LogicalBlockSize::Lb512;
    let mut table = gpt::GptConfig::new()
        .writable(true)
        .logical_block_size(block)
        .create_from_device(&mut disk, None)
        .map_err(|e| ImageError::Gpt(e.to_string()))?;
    table.update_partitions(Default::default()).map_err(|e| ImageError::Gpt(e.to_string()))?;
    let id = table
        .add_partition("SINTER-ESP", esp_bytes, gpt::partition_types::EFI, 0, None)
        .map_err(|e| ImageError::Gpt(e.to_string()))?;
    let esp_offset = table
        .partitions()
        .get(&id)
        .ok_or_else(|| ImageError::Gpt("new partition missing".into()))?
        .bytes_start(block)
        .map_err(|e| ImageError::Gpt(e.to_string()))?;
    table.write().map_err(|e| ImageError::Gpt(e.to_string()))?;
    disk.seek(SeekFrom::Start(esp_offset)).map_err(io_err("seeking to the ESP"))?;
    disk.write_all(&esp).map_err(io_err("writing the ESP"))?;
    disk.sync_all().map_err(io_err("syncing the image"))?;
    Ok(ImageInfo { path: path.to_path_buf(), disk_bytes, esp_offset, esp_bytes })
}

/// Reads a file back from an image's ESP (used by tests and `xtask` checks).
pub fn read_esp_file(image: &Path, esp_path: &str) -> Result<Vec<u8>, ImageError> {
    let mut disk = File::open(image).map_err(io_err(format!("opening {}", image.display())))?;
    let table = gpt::GptConfig::new()
        .writable(false)
        .open_from_device(&mut disk)
        .map_err(|e| ImageError::Gpt(e.to_string()))?;
    let block = *table.logical_block_size();
    let esp = table
        .partitions()
        .values()
        .find(|p| p.part_type_guid == gpt::partition_types::EFI)
        .ok_or_else(|| ImageError::Gpt("no EFI system partition".into()))?;
    let start = esp.bytes_start(block).map_err(|e| ImageError::Gpt(e.to_string()))?;
    let len = esp.bytes_len(block).map_err(|e| ImageError::Gpt(e.to_string()))?;
    drop(table);
    let mut volume = vec![0u8; len as usize];
    disk.seek(SeekFrom::Start(start)).map_err(io_err("seeking to the ESP"))?;
    disk.read_exact(&mut volume).map_err(io_err("reading the ESP"))?;
    let mut cursor = Cursor::new(volume);
    let fs = fatfs::FileSystem::new(&mut cursor, fatfs::FsOptions::new()).map_err(io_err("opening the ESP"))?;
    let mut file = fs.root_dir().open_file(esp_path).map_err(io_err(format!("opening {esp_path}")))?;
    let mut contents = Vec::new();
    file.read_to_end(&mut contents).map_err(io_err(format!("reading {esp_path}")))?;
    if fs.fat_type() != fatfs::FatType::Fat32 {
        return Err(ImageError::Gpt("ESP is not FAT32".into()));
    }
    Ok(contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_through_gpt_and_fat32() {
        let dir = std::env::temp_dir().join(format!("sinter-image-test-{}", std::process::id()));
        let image = dir.join("node0.img");
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let files = vec![
            EspFile::new(UEFI_BOOT_PATH, b"MZ-loader".to_vec()),
            EspFile::new(KERNEL_PATH, big.clone()),
            EspFile::new(NODE_CONFIG_PATH, b"node = 1\n".to_vec()),
            EspFile::new(format!("{PAYLOAD_DIR}/vmlinuz"), vec![1, 2, 3]),
        ];
        let info = write_disk_image(&image, &files).unwrap();
        assert_eq!(info.disk_bytes, std::fs::metadata(&image).unwrap().len());
        assert!(info.esp_bytes >= MIN_ESP_BYTES);
        assert_eq!(read_esp_file(&image, UEFI_BOOT_PATH).unwrap(), b"MZ-loader");
        assert_eq!(read_esp_file(&image, KERNEL_PATH).unwrap(), big);
        assert_eq!(read_esp_file(&image, "sinter/payload/vmlinuz").unwrap(), vec![1, 2, 3]);
        assert!(read_esp_file(&image, "sinter/missing").is_err());

        // LBA 0 is a protective MBR: signature and one 0xEE partition.
        let raw = std::fs::read(&image).unwrap();
        assert_eq!(&raw[510..512], &[0x55, 0xaa]);
        assert_eq!(raw[446 + 4], 0xee);
        // LBA 1 is the GPT header.
        assert_eq!(&raw[512..520], b"EFI PART");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rejects_bad_paths() {
        for bad in ["", "a//b", "../x", "sinter/./x"] {
            assert!(matches!(build_esp(&[EspFile::new(bad, vec![])]), Err(ImageError::BadPath(_))), "{bad}");
        }
    }
}
