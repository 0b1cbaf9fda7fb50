//! Classic pcap output (the libpcap format, not pcapng), link type 1
//! (Ethernet), microsecond timestamps. Wireshark and tcpdump read it.

use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

/// Link type for Ethernet frames.
pub const LINKTYPE_ETHERNET: u32 = 1;

/// Bytes of each frame kept in the file; longer frames are cut, and the
/// record says how long they were.
pub const SNAPLEN: u32 = 65_535;

/// Writes frames to a pcap stream.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header.
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut header = Vec::with_capacity(24);
        header.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        header.extend_from_slice(&2u16.to_le_bytes());
        header.extend_from_slice(&4u16.to_le_bytes());
        header.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        header.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        header.extend_from_slice(&SNAPLEN.to_le_bytes());
        header.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&header)?;
        out.flush()?;
        Ok(Self { out })
    }

    /// Appends one frame seen at `when` and flushes, so the file is
    /// readable while the switch runs.
    pub fn write_frame(&mut self, when: SystemTime, frame: &[u8]) -> io::Result<()> {
        let since = when.duration_since(UNIX_EPOCH).unwrap_or_default();
        // pcap's 32-bit seconds run out in 2106.
        let secs = u32::try_from(since.as_secs()).unwrap_or(u32::MAX);
        let orig_len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        let incl_len = orig_len.min(SNAPLEN);
        let mut record = Vec::with_capacity(16);
        record.extend_from_slice(&secs.to_le_bytes());
        record.extend_from_slice(&since.subsec_micros().to_le_bytes());
        record.extend_from_slice(&incl_len.to_le_bytes());
        record.extend_from_slice(&orig_len.to_le_bytes());
        self.out.write_all(&record)?;
        // incl_len <= frame.len() by construction.
        self.out.write_all(&frame[..incl_len as usize])?;
        self.out.flush()
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Reads back the frames of a pcap file written by [`PcapWriter`]
/// (little-endian, microseconds). For tests and tools; `None` if the bytes
/// are not such a file.
pub fn read_frames(bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
    let u32_at = |at: usize| -> Option<u32> { Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?)) };
    if u32_at(0)? != 0xa1b2_c3d4 || u32_at(20)? != LINKTYPE_ETHERNET {
        return None;
    }
    let mut frames = Vec::new();
    let mut at = 24;
    while at < bytes.len() {
        let incl = usize::try_from(u32_at(at + 8)?).ok()?;
        let start = at + 16;
        frames.push(bytes.get(start..start + incl)?.to_vec());
        at = start + incl;
    }
    Some(frames)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn header_and_records_are_classic_pcap() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        let when = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        w.write_frame(when, &[1u8; 20]).unwrap();
        w.write_frame(when, &[2u8; 14]).unwrap();
        let bytes = w.into_inner();
        assert_eq!(&bytes[0..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(&bytes[4..8], &[2, 0, 4, 0]);
        assert_eq!(&bytes[16..20], &65_535u32.to_le_bytes());
        assert_eq!(&bytes[20..24], &1u32.to_le_bytes());
        assert_eq!(&bytes[24..28], &1_700_000_000u32.to_le_bytes());
        assert_eq!(&bytes[28..32], &123_456u32.to_le_bytes());
        assert_eq!(&bytes[32..36], &20u32.to_le_bytes());
        assert_eq!(&bytes[36..40], &20u32.to_le_bytes());
        assert_eq!(bytes.len(), 24 + 16 + 20 + 16 + 14);
        assert_eq!(read_frames(&bytes).unwrap(), vec![vec![1u8; 20], vec![2u8; 14]]);
    }

    #[test]
    fn oversized_frames_are_cut_to_snaplen() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write_frame(UNIX_EPOCH, &vec![0u8; 70_000]).unwrap();
        let bytes = w.into_inner();
        assert_eq!(&bytes[32..36], &SNAPLEN.to_le_bytes());
        assert_eq!(&bytes[36..40], &70_000u32.to_le_bytes());
        assert_eq!(read_frames(&bytes).unwrap()[0].len(), 65_535);
    }

    #[test]
    fn reader_rejects_garbage() {
        assert_eq!(read_frames(b"not a pcap file at all, clearly"), None);
        assert_eq!(read_frames(&[]), None);
    }
}
