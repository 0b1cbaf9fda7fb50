//! Reading files out of a Debian package without dpkg.
//!
//! A `.deb` is an `ar` archive of `debian-binary` ("2.0"), `control.tar.*`
//! and `data.tar.*`; Debian compresses `data.tar` with xz (gzip and no
//! compression are also legal and handled; zstd is not, and says so). The
//! data archive is streamed: reading stops at the first matching file, so
//! pulling `/boot/vmlinuz-*` out of a 70 MB kernel package decompresses
//! only the few megabytes in front of it.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use anyhow::{bail, Context, Result};

/// A file taken out of a package's data archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractedFile {
    /// Its path in the package, without a leading `./` or `/`
    /// (e.g. `boot/vmlinuz-6.1.0-56-amd64`).
    pub path: String,
    pub mode: u32,
    pub data: Vec<u8>,
}

/// Returns the first regular file of `deb`'s data archive whose path
/// (normalised as in [`ExtractedFile::path`]) satisfies `pick`.
pub fn extract(deb: &Path, pick: impl Fn(&str) -> bool) -> Result<ExtractedFile> {
    let file = File::open(deb).with_context(|| format!("opening {}", deb.display()))?;
    extract_from(BufReader::new(file), pick).with_context(|| format!("reading {}", deb.display()))
}

/// [`extract`] from any reader holding a `.deb`.
pub fn extract_from(reader: impl Read, pick: impl Fn(&str) -> bool) -> Result<ExtractedFile> {
    let mut archive = ar::Archive::new(reader);
    let mut saw_version = false;
    while let Some(entry) = archive.next_entry() {
        let mut entry = entry.context("not a Debian package (bad ar archive)")?;
        let name = String::from_utf8_lossy(entry.header().identifier()).trim_end_matches('/').to_string();
        match name.as_str() {
            "debian-binary" => {
                let mut version = String::new();
                entry.read_to_string(&mut version).context("reading debian-binary")?;
                if !version.starts_with("2.") {
                    bail!("unsupported .deb format version {:?}", version.trim());
                }
                saw_version = true;
            }
            "data.tar.xz" => return find_in_tar(lzma_rust2::XzReader::new(entry, true), &pick),
            "data.tar.gz" => return find_in_tar(flate2::read::GzDecoder::new(entry), &pick),
            "data.tar" => return find_in_tar(entry, &pick),
            other if other.starts_with("data.tar.") => {
                bail!("{other}: unsupported compression (xz, gz and none are handled)")
            }
            _ => {} // control.tar.*, signatures
        }
    }
    if !saw_version {
        bail!("not a Debian package (no debian-binary member)");
    }
    bail!("package has no data.tar member")
}

fn find_in_tar(data: impl Read, pick: &dyn Fn(&str) -> bool) -> Result<ExtractedFile> {
    let mut archive = tar::Archive::new(data);
    for entry in archive.entries().context("reading data.tar")? {
        let mut entry = entry.context("reading data.tar")?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let raw = entry.path().context("bad path in data.tar")?.to_string_lossy().into_owned();
        let path = raw.trim_start_matches("./").trim_start_matches('/').to_string();
        if !pick(&path) {
            continue;
        }
        let mode = entry.header().mode().unwrap_or(0o644);
        let mut data = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut data).with_context(|| format!("reading {path} from data.tar"))?;
        return Ok(ExtractedFile { path, mode, data });
    }
    bail!("no matching file in data.tar")
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;

    use super::*;

    /// Builds a small .deb: `files` are (path, mode, contents) in data.tar;
    /// `compression` is "xz", "gz", "" (plain) or anything else (the member
    /// is then named data.tar.<that> and holds garbage).
    pub(crate) fn build_deb(files: &[(&str, u32, &[u8])], symlinks: &[(&str, &str)], compression: &str) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        let mut dirs = std::collections::BTreeSet::new();
        for (path, _, _) in files {
            let mut parent = Path::new(path).parent();
            while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
                dirs.insert(p.to_path_buf());
                parent = p.parent();
            }
        }
        for dir in dirs {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            tar.append_data(&mut h, format!("./{}/", dir.display()), &[][..]).unwrap();
        }
        for (target_path, target) in symlinks {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            h.set_mode(0o777);
            tar.append_link(&mut h, format!("./{target_path}"), target).unwrap();
        }
        for (path, mode, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_mode(*mode);
            h.set_size(data.len() as u64);
            tar.append_data(&mut h, format!("./{path}"), *data).unwrap();
        }
        let data_tar = tar.into_inner().unwrap();
        let (member, data) = match compression {
            "xz" => {
                let mut w = lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::with_preset(1)).unwrap();
                w.write_all(&data_tar).unwrap();
                ("data.tar.xz".to_string(), w.finish().unwrap())
            }
            "gz" => {
                let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                w.write_all(&data_tar).unwrap();
                ("data.tar.gz".to_string(), w.finish().unwrap())
            }
            "" => ("data.tar".to_string(), data_tar),
            other => (format!("data.tar.{other}"), b"not really compressed".to_vec()),
        };
        let mut deb = ar::Builder::new(Vec::new());
        let mut append = |name: &str, data: &[u8]| {
            deb.append(&ar::Header::new(name.as_bytes().to_vec(), data.len() as u64), data).unwrap();
        };
        append("debian-binary", b"2.0\n");
        append("control.tar.xz", b"(control archive, not read)");
        append(&member, &data);
        deb.into_inner().unwrap()
    }

    fn kernel_like_deb(compression: &str) -> Vec<u8> {
        // Incompressible, so that it fills the middle of the archive.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let modules: Vec<u8> = (0..300_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        build_deb(
            &[
                ("boot/System.map-1.2.3-amd64", 0o644, b"ffffffff81000000 T _text\n"),
                ("boot/vmlinuz-1.2.3-amd64", 0o644, b"MZ fake bzImage"),
                ("lib/modules/1.2.3-amd64/kernel/big.ko", 0o644, &modules),
                ("bin/busybox", 0o755, b"\x7fELF busybox"),
            ],
            &[("boot/vmlinuz", "vmlinuz-1.2.3-amd64")],
            compression,
        )
    }

    #[test]
    fn extracts_from_xz_gz_and_plain_data_archives() {
        for compression in ["xz", "gz", ""] {
            let deb = kernel_like_deb(compression);
            let kernel = extract_from(&deb[..], |p| p.starts_with("boot/vmlinuz-")).unwrap();
            assert_eq!(kernel.path, "boot/vmlinuz-1.2.3-amd64", "{compression}");
            assert_eq!(kernel.data, b"MZ fake bzImage");
            let busybox = extract_from(&deb[..], |p| p == "bin/busybox").unwrap();
            assert_eq!(busybox.data, b"\x7fELF busybox");
            assert_eq!(busybox.mode & 0o777, 0o755);
            let module = extract_from(&deb[..], |p| p.ends_with(".ko")).unwrap();
            assert_eq!(module.data.len(), 300_000);
        }
    }

    #[test]
    fn symlinks_are_not_taken_for_files() {
        // `boot/vmlinuz` is a symlink: only the regular file matches.
        let deb = kernel_like_deb("xz");
        let kernel = extract_from(&deb[..], |p| p.starts_with("boot/vmlinuz")).unwrap();
        assert_eq!(kernel.path, "boot/vmlinuz-1.2.3-amd64");
    }

    #[test]
    fn clear_errors() {
        let deb = kernel_like_deb("xz");
        let err = extract_from(&deb[..], |p| p == "no/such/file").unwrap_err();
        assert!(format!("{err:#}").contains("no matching file in data.tar"), "{err:#}");
        let zst = kernel_like_deb("zst");
        let err = extract_from(&zst[..], |_| true).unwrap_err();
        assert!(format!("{err:#}").contains("data.tar.zst: unsupported compression"), "{err:#}");
        let err = extract_from(&b"this is not an ar archive"[..], |_| true).unwrap_err();
        assert!(format!("{err:#}").contains("not a Debian package"), "{err:#}");
        // A truncated package fails, it does not return a short file.
        let cut = &deb[..deb.len() / 2];
        assert!(extract_from(cut, |p| p.ends_with(".ko")).is_err());
    }

    #[test]
    fn extract_reads_a_file_on_disk() {
        let dir = std::env::temp_dir().join(format!("sinter-deb-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pkg_1.0_amd64.deb");
        std::fs::write(&path, kernel_like_deb("xz")).unwrap();
        let busybox = extract(&path, |p| p == "bin/busybox").unwrap();
        assert_eq!(busybox.data, b"\x7fELF busybox");
        let err = extract(&dir.join("missing.deb"), |_| true).unwrap_err();
        assert!(format!("{err:#}").contains("missing.deb"), "{err:#}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
