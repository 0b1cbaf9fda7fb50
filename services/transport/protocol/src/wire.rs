//! The frame format, byte by byte (`docs/transport.md` draws it).
//!
//! ```text
//! offset  size  field
//!  0       6    Ethernet destination
//!  6       6    Ethernet source
//! 12       2    EtherType 0x88B5 (IEEE 802 local experimental 1)
//! 14      76    FrameHeader (all integers big-endian)
//! 90       L    payload (L = header.payload_len)
//! 90+L    16    tag: XChaCha20-Poly1305(cluster key, nonce from the header,
//!               associated data = bytes 0 .. 90+L, empty plaintext)
//! ```
//!
//! Bytes after the tag (Ethernet minimum-size padding) are ignored. Parsing
//! checks structure only; whether a frame is authentic, addressed to us and
//! fresh is decided by [`crate::Transport`].

use alloc::vec::Vec;
use zerocopy::byteorder::network_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Sinter's EtherType: the first of the two IEEE 802 "local experimental"
/// values (IEEE Std 802-2014 §9.2.4). It never leaves the cluster segment.
pub const ETHERTYPE: u16 = 0x88B5;
/// Version in every header; a frame of another version is malformed.
pub const VERSION: u8 = 2;
/// Ethernet destination, source and EtherType.
pub const ETH_HEADER_LEN: usize = 14;
/// [`FrameHeader`] on the wire.
pub const HEADER_LEN: usize = 76;
/// Poly1305 tag at the end of every frame.
pub const TAG_LEN: usize = 16;
/// Bytes of every frame that are not payload: Ethernet header, frame
/// header, tag. (The NIC adds preamble, FCS and inter-frame gap on the
/// line; they are the same for any protocol and are not counted here.)
pub const FRAME_OVERHEAD: usize = ETH_HEADER_LEN + HEADER_LEN + TAG_LEN;
/// [`HelloBody`] on the wire.
pub const HELLO_LEN: usize = 24;
/// Where the payload starts in a frame.
pub const PAYLOAD_OFFSET: usize = ETH_HEADER_LEN + HEADER_LEN;

/// Flag: the receiver should acknowledge this frame at once instead of
/// delaying the ack (set on retransmissions, window probes, and on the frame
/// that fills the sender's window).
pub const FLAG_ACK_NOW: u16 = 1 << 0;
/// Every flag this version knows; any other bit makes a frame malformed.
pub const KNOWN_FLAGS: u16 = FLAG_ACK_NOW;

/// The Ethernet header as it sits at the start of a frame.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct EthernetHeader {
    /// Destination hardware address.
    pub dst: [u8; 6],
    /// Source hardware address.
    pub src: [u8; 6],
    /// [`ETHERTYPE`].
    pub ether_type: U16,
}

/// The transport header, right after the Ethernet header.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct FrameHeader {
    /// [`VERSION`].
    pub version: u8,
    /// [`FrameKind`] as a byte.
    pub kind: u8,
    /// [`FLAG_ACK_NOW`]; other bits must be zero.
    pub flags: U16,
    /// Which cluster this frame belongs to (from the config).
    pub cluster: U32,
    /// Sending node.
    pub src_node: U16,
    /// Receiving node.
    pub dst_node: U16,
    /// The sender's boot epoch (its session identity).
    pub src_epoch: U64,
    /// The receiver's boot epoch as the sender knows it (0: unknown).
    pub dst_epoch: U64,
    /// Data: sequence number, from 1 in each session. Others: 0.
    pub seq: U64,
    /// Cumulative ack: every sequence number up to this one has arrived.
    pub ack: U64,
    /// Selective ack: bit `i` set means `ack + 2 + i` has arrived.
    pub sack: U64,
    /// Receive window: the sender of this header accepts sequence numbers
    /// up to `ack + window`.
    pub window: U16,
    /// Data: the message this fragment belongs to. Others: 0.
    pub msg_id: U64,
    /// Data: which fragment of the message, from 0. Others: 0.
    pub frag_index: U16,
    /// Data: how many fragments the message has, at least 1. Others: 0.
    pub frag_count: U16,
    /// Payload bytes after the header.
    pub payload_len: U16,
    /// The sender's count of frames sealed in this epoch, from 1: with
    /// `cluster`, `src_node` and `src_epoch` it makes the MAC's nonce, so
    /// no two frames ever sent under one key share a nonce (see
    /// [`crate::auth`]).
    pub nonce: U64,
}

/// The payload of a [`FrameKind::Hello`] frame: the handshake.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct HelloBody {
    /// A nonce the sender wants echoed back (0: it wants nothing).
    pub challenge: U64,
    /// The receiver's challenge that this frame answers (0: none).
    pub echo: U64,
    /// The sender's MTU; peers must agree.
    pub mtu: U16,
    /// The sender's window in frames; peers must agree.
    pub window: U16,
    /// The sender's largest message; peers must agree.
    pub max_message_len: U32,
}

/// What a frame is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum FrameKind {
    /// One fragment of a message, sequenced and acknowledged.
    Data = 1,
    /// Acknowledgement and window update only (or a window probe with
    /// [`FLAG_ACK_NOW`]).
    Ack = 2,
    /// Handshake: announces the sender's epoch, challenges and answers.
    Hello = 3,
}

impl FrameKind {
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::Data),
            2 => Some(Self::Ack),
            3 => Some(Self::Hello),
            _ => None,
        }
    }
}

/// Why a frame is not a well-formed Sinter frame.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Malformed {
    /// Shorter than the smallest frame.
    TooShort,
    /// Another EtherType.
    NotSinter,
    /// Another header version.
    BadVersion,
    /// Unknown frame kind.
    BadKind,
    /// A flag this version does not know.
    ReservedFlags,
    /// `payload_len` points past the end of the frame.
    Truncated,
    /// A field that must be zero (or non-zero) for this kind is not.
    BadField,
    /// Fragment index/count out of range.
    BadFragment,
    /// Payload or message larger than the configured limits allow.
    TooLarge,
}

/// A structurally valid frame, borrowed from the receive buffer.
#[derive(Clone, Copy, Debug)]
pub struct ParsedFrame<'a> {
    /// Ethernet header.
    pub eth: EthernetHeader,
    /// Transport header.
    pub header: FrameHeader,
    /// The kind, decoded.
    pub kind: FrameKind,
    /// Payload bytes.
    pub payload: &'a [u8],
    /// The bytes the tag covers.
    pub covered: &'a [u8],
    /// The tag.
    pub tag: &'a [u8],
}

impl ParsedFrame<'_> {
    /// The handshake body of a Hello frame.
    pub fn hello(&self) -> Option<HelloBody> {
        match self.kind {
            FrameKind::Hello => HelloBody::read_from_bytes(self.payload).ok(),
            _ => None,
        }
    }
}

/// Checks a frame's structure. Never panics, whatever `frame` holds.
pub fn parse(frame: &[u8]) -> Result<ParsedFrame<'_>, Malformed> {
    if frame.len() < FRAME_OVERHEAD {
        return Err(Malformed::TooShort);
    }
    let (eth, rest) = EthernetHeader::read_from_prefix(frame).map_err(|_| Malformed::TooShort)?;
    if eth.ether_type.get() != ETHERTYPE {
        return Err(Malformed::NotSinter);
    }
    let (header, _) = FrameHeader::read_from_prefix(rest).map_err(|_| Malformed::TooShort)?;
    if header.version != VERSION {
        return Err(Malformed::BadVersion);
    }
    let kind = FrameKind::from_byte(header.kind).ok_or(Malformed::BadKind)?;
    if header.flags.get() & !KNOWN_FLAGS != 0 {
        return Err(Malformed::ReservedFlags);
    }
    let end = PAYLOAD_OFFSET + usize::from(header.payload_len.get());
    if frame.len() < end + TAG_LEN {
        return Err(Malformed::Truncated);
    }
    let payload = &frame[PAYLOAD_OFFSET..end];
    let parsed = ParsedFrame { eth, header, kind, payload, covered: &frame[..end], tag: &frame[end..end + TAG_LEN] };
    let h = &header;
    let no_data_fields = h.seq.get() == 0 && h.msg_id.get() == 0 && h.frag_index.get() == 0 && h.frag_count.get() == 0;
    match kind {
        FrameKind::Data => {
            if h.seq.get() == 0 {
                return Err(Malformed::BadField);
            }
            if h.frag_count.get() == 0 || h.frag_index.get() >= h.frag_count.get() {
                return Err(Malformed::BadFragment);
            }
        }
        FrameKind::Ack => {
            if !no_data_fields || !payload.is_empty() {
                return Err(Malformed::BadField);
            }
        }
        FrameKind::Hello => {
            let no_ack_fields = h.ack.get() == 0 && h.sack.get() == 0 && h.window.get() == 0;
            if !no_data_fields || !no_ack_fields || payload.len() != HELLO_LEN || h.flags.get() != 0 {
                return Err(Malformed::BadField);
            }
            if HelloBody::read_from_bytes(payload).is_err() {
                return Err(Malformed::BadField);
            }
        }
    }
    Ok(parsed)
}

/// Replaces `buf` with a complete frame whose tag is still zero; seal it
/// with [`crate::auth`] after the last header change.
pub(crate) fn build_frame(buf: &mut Vec<u8>, eth: &EthernetHeader, header: &FrameHeader, payload: &[u8]) {
    buf.clear();
    buf.reserve_exact(FRAME_OVERHEAD + payload.len());
    buf.extend_from_slice(eth.as_bytes());
    buf.extend_from_slice(header.as_bytes());
    buf.extend_from_slice(payload);
    buf.extend_from_slice(&[0u8; TAG_LEN]);
}

/// A whole frame sealed under `key`, exactly as a member holding that key
/// would send it, with the nonce in `header` (a real sender never uses a
/// nonce twice; a tool that does under a real key weakens the MAC for the
/// frames involved). For tools and tests that speak the wire format from
/// outside a [`crate::Transport`] (the forged-frame system test builds its
/// frames with this, some under the wrong key); a transport builds its own.
pub fn encode_sealed(eth: &EthernetHeader, header: &FrameHeader, payload: &[u8], key: &[u8; 32]) -> Vec<u8> {
    let mut frame = Vec::new();
    build_frame(&mut frame, eth, header, payload);
    crate::auth::FrameAuth::new(key).seal_as_is(&mut frame);
    frame
}

/// Re-seals a frame after its header or payload was changed: recomputes the
/// tag under `key` over the bytes [`parse`] says it covers. Returns false
/// (and leaves the frame alone) if it is not structurally a Sinter frame.
pub fn reseal(frame: &mut [u8], key: &[u8; 32]) -> bool {
    let covered = match parse(frame) {
        Ok(parsed) => parsed.covered.len(),
        Err(_) => return false,
    };
    let Some(tag) = crate::auth::FrameAuth::new(key).tag(&frame[..covered]) else { return false };
    frame[covered..covered + TAG_LEN].copy_from_slice(&tag);
    true
}

/// Whether `frame` is well-formed and its tag verifies under `key`.
pub fn verify(frame: &[u8], key: &[u8; 32]) -> bool {
    parse(frame).is_ok_and(|parsed| crate::auth::FrameAuth::new(key).verify(parsed.covered, parsed.tag))
}

/// The header of a frame built by [`build_frame`], for patching before it
/// is sealed.
pub(crate) fn header_mut(frame: &mut [u8]) -> Option<&mut FrameHeader> {
    let bytes = frame.get_mut(ETH_HEADER_LEN..PAYLOAD_OFFSET)?;
    FrameHeader::mut_from_bytes(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::size_of;

    #[test]
    fn layout_sizes_match_the_documented_byte_map() {
        assert_eq!(size_of::<EthernetHeader>(), ETH_HEADER_LEN);
        assert_eq!(size_of::<FrameHeader>(), HEADER_LEN);
        assert_eq!(size_of::<HelloBody>(), HELLO_LEN);
        assert_eq!(FRAME_OVERHEAD, 106);
        assert_eq!(PAYLOAD_OFFSET, 90);
    }

    fn data_header() -> FrameHeader {
        FrameHeader {
            version: VERSION,
            kind: FrameKind::Data as u8,
            flags: U16::new(FLAG_ACK_NOW),
            cluster: U32::new(0x0102_0304),
            src_node: U16::new(0x0506),
            dst_node: U16::new(0x0708),
            src_epoch: U64::new(0x1111_2222_3333_4444),
            dst_epoch: U64::new(0x5555_6666_7777_8888),
            seq: U64::new(9),
            ack: U64::new(10),
            sack: U64::new(0xa5),
            window: U16::new(64),
            msg_id: U64::new(77),
            frag_index: U16::new(1),
            frag_count: U16::new(3),
            payload_len: U16::new(5),
            nonce: U64::new(0x0123_4567_89ab_cdef),
        }
    }

    fn eth() -> EthernetHeader {
        EthernetHeader { dst: [2, 0, 0, 0, 0, 1], src: [2, 0, 0, 0, 0, 2], ether_type: U16::new(ETHERTYPE) }
    }

    #[test]
    fn header_fields_sit_at_the_documented_offsets_in_network_order() {
        let mut buf = Vec::new();
        build_frame(&mut buf, &eth(), &data_header(), b"hello");
        assert_eq!(buf.len(), FRAME_OVERHEAD + 5);
        assert_eq!(&buf[12..14], &[0x88, 0xb5]);
        assert_eq!(buf[14], VERSION);
        assert_eq!(buf[15], 1);
        assert_eq!(&buf[16..18], &[0, 1]);
        assert_eq!(&buf[18..22], &[1, 2, 3, 4]);
        assert_eq!(&buf[22..24], &[5, 6]);
        assert_eq!(&buf[24..26], &[7, 8]);
        assert_eq!(&buf[26..34], &0x1111_2222_3333_4444u64.to_be_bytes());
        assert_eq!(&buf[34..42], &0x5555_6666_7777_8888u64.to_be_bytes());
        assert_eq!(&buf[42..50], &9u64.to_be_bytes());
        assert_eq!(&buf[50..58], &10u64.to_be_bytes());
        assert_eq!(&buf[58..66], &0xa5u64.to_be_bytes());
        assert_eq!(&buf[66..68], &64u16.to_be_bytes());
        assert_eq!(&buf[68..76], &77u64.to_be_bytes());
        assert_eq!(&buf[76..78], &1u16.to_be_bytes());
        assert_eq!(&buf[78..80], &3u16.to_be_bytes());
        assert_eq!(&buf[80..82], &5u16.to_be_bytes());
        assert_eq!(&buf[82..90], &0x0123_4567_89ab_cdefu64.to_be_bytes());
        assert_eq!(&buf[90..95], b"hello");
    }

    #[test]
    fn parse_round_trips_a_built_frame_and_ignores_trailing_padding() {
        let mut buf = Vec::new();
        build_frame(&mut buf, &eth(), &data_header(), b"hello");
        buf.extend_from_slice(&[0xee; 7]);
        let parsed = parse(&buf).unwrap();
        assert_eq!(parsed.header, data_header());
        assert_eq!(parsed.kind, FrameKind::Data);
        assert_eq!(parsed.payload, b"hello");
        assert_eq!(parsed.covered.len(), PAYLOAD_OFFSET + 5);
        assert_eq!(parsed.tag, &[0u8; TAG_LEN]);
    }

    #[test]
    fn parse_rejects_each_structural_fault() {
        let mut good = Vec::new();
        build_frame(&mut good, &eth(), &data_header(), b"hello");
        assert_eq!(parse(&good[..FRAME_OVERHEAD - 1]).unwrap_err(), Malformed::TooShort);
        assert_eq!(parse(&good[..good.len() - 1]).unwrap_err(), Malformed::Truncated);
        let mut bad = good.clone();
        bad[12] = 0x08;
        assert_eq!(parse(&bad).unwrap_err(), Malformed::NotSinter);
        let mut bad = good.clone();
        bad[14] = 1;
        assert_eq!(parse(&bad).unwrap_err(), Malformed::BadVersion);
        let mut bad = good.clone();
        bad[15] = 9;
        assert_eq!(parse(&bad).unwrap_err(), Malformed::BadKind);
        let mut bad = good.clone();
        bad[16] = 0x80;
        assert_eq!(parse(&bad).unwrap_err(), Malformed::ReservedFlags);
        let mut h = data_header();
        h.seq = U64::new(0);
        build_frame(&mut bad, &eth(), &h, b"hello");
        assert_eq!(parse(&bad).unwrap_err(), Malformed::BadField);
        let mut h = data_header();
        h.frag_index = U16::new(3);
        build_frame(&mut bad, &eth(), &h, b"hello");
        assert_eq!(parse(&bad).unwrap_err(), Malformed::BadFragment);
        let mut h = data_header();
        h.kind = FrameKind::Ack as u8;
        build_frame(&mut bad, &eth(), &h, b"hello");
        assert_eq!(parse(&bad).unwrap_err(), Malformed::BadField);
    }

    #[test]
    fn sealed_frames_verify_only_under_their_key_and_reseal_after_changes() {
        let key = [0x5a; 32];
        let mut frame = encode_sealed(&eth(), &data_header(), b"hello", &key);
        assert!(verify(&frame, &key));
        assert!(!verify(&frame, &[0x5b; 32]));
        frame[PAYLOAD_OFFSET] ^= 1;
        assert!(!verify(&frame, &key), "a changed payload breaks the tag");
        assert!(reseal(&mut frame, &key));
        assert!(verify(&frame, &key));
        let mut short = frame[..20].to_vec();
        assert!(!reseal(&mut short, &key));
        assert_eq!(short, frame[..20]);
    }

    #[test]
    fn parse_never_panics_on_any_prefix_of_a_frame() {
        let mut good = Vec::new();
        build_frame(&mut good, &eth(), &data_header(), b"hello");
        for len in 0..good.len() {
            assert!(parse(&good[..len]).is_err());
        }
    }
}
