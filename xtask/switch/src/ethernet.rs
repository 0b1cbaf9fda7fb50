//! Ethernet frame layout as QEMU's `dgram`/`socket` netdevs carry it: one
//! UDP datagram is one frame, `dst MAC | src MAC | ethertype | payload`, with
//! no FCS and no length prefix.

use std::fmt;

/// Length of the Ethernet header: two MAC addresses and the ethertype.
pub const ETHERNET_HEADER_LEN: usize = 14;

/// A 48-bit Ethernet MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

    /// True for group addresses (multicast and broadcast): the I/G bit, the
    /// lowest bit of the first octet, is set.
    pub fn is_multicast(self) -> bool {
        self.0[0] & 1 == 1
    }

    /// True for `ff:ff:ff:ff:ff:ff`.
    pub fn is_broadcast(self) -> bool {
        self == Self::BROADCAST
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The addresses of a frame, or `None` if it is shorter than a header.
pub fn frame_macs(frame: &[u8]) -> Option<(MacAddr, MacAddr)> {
    if frame.len() < ETHERNET_HEADER_LEN {
        return None;
    }
    let dst: [u8; 6] = frame.get(0..6)?.try_into().ok()?;
    let src: [u8; 6] = frame.get(6..12)?.try_into().ok()?;
    Some((MacAddr(dst), MacAddr(src)))
}

/// Builds a frame from its parts (handy for tests and probes).
pub fn build_frame(dst: MacAddr, src: MacAddr, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(ETHERNET_HEADER_LEN + payload.len());
    frame.extend_from_slice(&dst.0);
    frame.extend_from_slice(&src.0);
    frame.extend_from_slice(&ethertype.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses_and_rejects_short_frames() {
        let a = MacAddr([2, 0, 0, 0, 0, 1]);
        let b = MacAddr([2, 0, 0, 0, 0, 2]);
        let frame = build_frame(b, a, 0x88b5, b"hi");
        assert_eq!(frame.len(), 16);
        assert_eq!(frame_macs(&frame), Some((b, a)));
        assert_eq!(frame_macs(&frame[..13]), None);
        assert_eq!(frame_macs(&frame[..14]), Some((b, a)));
        assert_eq!(frame_macs(&[]), None);
    }

    #[test]
    fn group_bits() {
        assert!(MacAddr::BROADCAST.is_multicast());
        assert!(MacAddr::BROADCAST.is_broadcast());
        assert!(MacAddr([0x01, 0x00, 0x5e, 0, 0, 1]).is_multicast());
        assert!(!MacAddr([0x02, 0, 0, 0, 0, 1]).is_multicast());
        assert_eq!(MacAddr([0x02, 0xab, 0, 0, 0, 1]).to_string(), "02:ab:00:00:00:01");
    }
}
