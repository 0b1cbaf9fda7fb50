//! A writer for "newc" cpio archives (the format Linux unpacks an initramfs
//! from, `Documentation/driver-api/early-userspace/buffer-format.rst`).
//!
//! Every header is `070701` followed by thirteen 8-digit hex fields; the name
//! (NUL-terminated) is padded so that header + name is a multiple of 4
//! bytes, and so is the data. The archive ends with an entry named
//! `TRAILER!!!`. Owners are root and times are 0, so the output depends only
//! on what is put in.

use std::io::{self, Write};

/// File type bits of `st_mode`.
pub const S_IFDIR: u32 = 0o040_000;
pub const S_IFREG: u32 = 0o100_000;
pub const S_IFLNK: u32 = 0o120_000;
pub const S_IFCHR: u32 = 0o020_000;

pub const MAGIC: &[u8; 6] = b"070701";
pub const TRAILER: &str = "TRAILER!!!";
/// Size of the fixed part of a header.
pub const HEADER_LEN: usize = 110;

/// Writes a newc archive entry by entry. Parents must be added before
/// their children (the kernel does not create missing folders).
pub struct CpioWriter<W: Write> {
    out: W,
    next_ino: u32,
    offset: u64,
}

/// The fields of one header, in the order they are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Header {
    pub ino: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub mtime: u32,
    pub filesize: u32,
    pub devmajor: u32,
    pub devminor: u32,
    pub rdevmajor: u32,
    pub rdevminor: u32,
    pub namesize: u32,
    pub check: u32,
}

impl Header {
    pub fn fields(&self) -> [u32; 13] {
        [
            self.ino,
            self.mode,
            self.uid,
            self.gid,
            self.nlink,
            self.mtime,
            self.filesize,
            self.devmajor,
            self.devminor,
            self.rdevmajor,
            self.rdevminor,
            self.namesize,
            self.check,
        ]
    }

    pub fn from_fields(f: [u32; 13]) -> Self {
        Header {
            ino: f[0],
            mode: f[1],
            uid: f[2],
            gid: f[3],
            nlink: f[4],
            mtime: f[5],
            filesize: f[6],
            devmajor: f[7],
            devminor: f[8],
            rdevmajor: f[9],
            rdevminor: f[10],
            namesize: f[11],
            check: f[12],
        }
    }
}

/// Bytes of padding after `len` bytes to reach a multiple of 4.
pub fn pad4(len: usize) -> usize {
    (4 - len % 4) % 4
}

impl<W: Write> CpioWriter<W> {
    pub fn new(out: W) -> Self {
        CpioWriter { out, next_ino: 1, offset: 0 }
    }

    /// A folder, e.g. `dir("bin", 0o755)`.
    pub fn dir(&mut self, path: &str, perm: u32) -> io::Result<()> {
        self.entry(path, S_IFDIR | (perm & 0o7777), 2, (0, 0), &[])
    }

    /// A regular file.
    pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) -> io::Result<()> {
        self.entry(path, S_IFREG | (perm & 0o7777), 1, (0, 0), data)
    }

    /// A symbolic link to `target` (stored as the entry's data).
    pub fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        self.entry(path, S_IFLNK | 0o777, 1, (0, 0), target.as_bytes())
    }

    /// A character device node, e.g. `/dev/console` is (5, 1).
    pub fn char_device(&mut self, path: &str, perm: u32, major: u32, minor: u32) -> io::Result<()> {
        self.entry(path, S_IFCHR | (perm & 0o7777), 1, (major, minor), &[])
    }

    fn entry(&mut self, path: &str, mode: u32, nlink: u32, rdev: (u32, u32), data: &[u8]) -> io::Result<()> {
        let name = path.trim_start_matches('/');
        if name.is_empty() || name.contains('\0') || name == TRAILER {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("bad cpio entry name {path:?}")));
        }
        let filesize = u32::try_from(data.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("{path}: larger than 4 GiB")))?;
        let ino = self.next_ino;
        self.next_ino += 1;
        let header = Header {
            ino,
            mode,
            nlink,
            filesize,
            rdevmajor: rdev.0,
            rdevminor: rdev.1,
            namesize: name.len() as u32 + 1,
            ..Header::default()
        };
        self.write_entry(&header, name, data)
    }

    fn write_entry(&mut self, header: &Header, name: &str, data: &[u8]) -> io::Result<()> {
        let mut head = Vec::with_capacity(HEADER_LEN + name.len() + 4);
        head.extend_from_slice(MAGIC);
        for field in header.fields() {
            head.extend_from_slice(format!("{field:08X}").as_bytes());
        }
        head.extend_from_slice(name.as_bytes());
        head.push(0);
        head.resize(head.len() + pad4(head.len()), 0);
        self.out.write_all(&head)?;
        self.out.write_all(data)?;
        self.out.write_all(&[0u8; 3][..pad4(data.len())])?;
        self.offset += (head.len() + data.len() + pad4(data.len())) as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Writes the trailer and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        let header = Header { nlink: 1, namesize: TRAILER.len() as u32 + 1, ..Header::default() };
        self.write_entry(&header, TRAILER, &[])?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// One entry read back by [`parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub header: Header,
    pub data: Vec<u8>,
}

/// Reads a newc archive (up to and excluding the trailer), checking magic,
/// hex fields and alignment. Used by the tests and by `prepare()` to check
/// what it wrote.
pub fn parse(mut bytes: &[u8]) -> Result<Vec<Entry>, String> {
    let start_len = bytes.len();
    let mut entries = Vec::new();
    loop {
        let at = start_len - bytes.len();
        if pad4(at) != 0 {
            return Err(format!("entry at {at} is not 4-byte aligned"));
        }
        if bytes.len() < HEADER_LEN || &bytes[..6] != MAGIC {
            return Err(format!("no newc header at offset {at}"));
        }
        let mut fields = [0u32; 13];
        for (i, field) in fields.iter_mut().enumerate() {
            let hex = std::str::from_utf8(&bytes[6 + 8 * i..14 + 8 * i]).map_err(|_| format!("bad header at {at}"))?;
            *field = u32::from_str_radix(hex, 16).map_err(|_| format!("bad hex field {hex:?} at {at}"))?;
        }
        let header = Header::from_fields(fields);
        let namesize = header.namesize as usize;
        let name_end = HEADER_LEN + namesize;
        let data_start = name_end + pad4(name_end);
        let data_end = data_start + header.filesize as usize;
        if namesize == 0 || bytes.len() < data_end {
            return Err(format!("entry at {at} runs past the end"));
        }
        if bytes[name_end - 1] != 0 {
            return Err(format!("name of entry at {at} is not NUL-terminated"));
        }
        let name = String::from_utf8(bytes[HEADER_LEN..name_end - 1].to_vec())
            .map_err(|_| format!("name of entry at {at} is not UTF-8"))?;
        if name == TRAILER {
            return Ok(entries);
        }
        entries.push(Entry { name, header, data: bytes[data_start..data_end].to_vec() });
        let next = (data_end + pad4(data_end)).min(bytes.len());
        bytes = &bytes[next..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_file_is_byte_exact() {
        let mut w = CpioWriter::new(Vec::new());
        w.file("/init", 0o755, b"hi\n").unwrap();
        let bytes = w.finish().unwrap();
        // ino, mode (regular file 0755), uid, gid, nlink, mtime, filesize,
        // devmajor, devminor, rdevmajor, rdevminor, namesize ("init" + NUL), check
        let fields = [
            "00000001", "000081ED", "00000000", "00000000", "00000001", "00000000", "00000003", "00000000", "00000000",
            "00000000", "00000000", "00000005", "00000000",
        ];
        let expected_head = format!("070701{}init\0", fields.concat());
        // 110 + 5 = 115 -> one byte of padding; data 3 -> one byte.
        assert_eq!(&bytes[..115], expected_head.as_bytes());
        assert_eq!(&bytes[115..120], b"\0hi\n\0");
        assert_eq!(&bytes[120..126], b"070701");
        assert!(bytes.windows(10).any(|w| w == TRAILER.as_bytes()));
        assert_eq!(bytes.len() % 4, 0);
    }

    #[test]
    fn every_kind_round_trips() {
        let mut w = CpioWriter::new(Vec::new());
        w.dir("bin", 0o755).unwrap();
        w.dir("dev", 0o755).unwrap();
        w.char_device("dev/console", 0o600, 5, 1).unwrap();
        w.file("bin/busybox", 0o755, &[0xAB; 1001]).unwrap();
        w.symlink("bin/sh", "busybox").unwrap();
        w.file("empty", 0o644, &[]).unwrap();
        let offset = w.offset();
        let bytes = w.finish().unwrap();
        assert!(offset > 0 && (offset as usize) < bytes.len());
        let entries = parse(&bytes).unwrap();
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["bin", "dev", "dev/console", "bin/busybox", "bin/sh", "empty"]);
        assert_eq!(entries[0].header.mode, S_IFDIR | 0o755);
        assert_eq!(entries[0].header.nlink, 2);
        assert_eq!(entries[2].header.mode, S_IFCHR | 0o600);
        assert_eq!((entries[2].header.rdevmajor, entries[2].header.rdevminor), (5, 1));
        assert_eq!(entries[3].data, vec![0xAB; 1001]);
        assert_eq!(entries[4].header.mode, S_IFLNK | 0o777);
        assert_eq!(entries[4].data, b"busybox");
        assert!(entries[5].data.is_empty());
        // Distinct inode numbers (the kernel links entries with equal ones).
        let mut inos: Vec<u32> = entries.iter().map(|e| e.header.ino).collect();
        inos.dedup();
        assert_eq!(inos.len(), entries.len());
    }

    #[test]
    fn bad_names_are_refused() {
        let mut w = CpioWriter::new(Vec::new());
        assert!(w.file("", 0o644, b"").is_err());
        assert!(w.file("/", 0o644, b"").is_err());
        assert!(w.file("a\0b", 0o644, b"").is_err());
        assert!(w.file(TRAILER, 0o644, b"").is_err());
    }

    #[test]
    fn parse_rejects_damage() {
        let mut w = CpioWriter::new(Vec::new());
        w.file("a", 0o644, b"abc").unwrap();
        let bytes = w.finish().unwrap();
        assert!(parse(&bytes[..50]).is_err());
        let mut bad = bytes.clone();
        bad[0] = b'1';
        assert!(parse(&bad).unwrap_err().contains("no newc header"));
        let mut bad = bytes;
        bad[10] = b'Z';
        assert!(parse(&bad).unwrap_err().contains("bad hex field"));
    }

    #[test]
    fn system_cpio_lists_the_archive_if_installed() {
        // A second opinion from GNU cpio where it exists (it is not a
        // prerequisite).
        use std::process::{Command, Stdio};
        let Ok(mut child) = Command::new("cpio")
            .args(["-t", "--quiet"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
        else {
            return;
        };
        let mut w = CpioWriter::new(Vec::new());
        w.dir("bin", 0o755).unwrap();
        w.file("bin/x", 0o755, b"12345").unwrap();
        w.symlink("bin/y", "x").unwrap();
        let bytes = w.finish().unwrap();
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout), "bin\nbin/x\nbin/y\n");
    }
}
