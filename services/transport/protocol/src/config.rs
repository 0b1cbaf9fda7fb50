//! What a [`crate::Transport`] is built from, and the checks that make a
//! bad configuration an error at construction instead of a stall later.

use core::fmt;

use crate::ids::{MacAddr, NodeId};
use crate::wire::{FRAME_OVERHEAD, HELLO_LEN};

/// Smallest MTU accepted: room for a handshake and a useful payload.
pub const MIN_MTU: u16 = 256;
/// Largest MTU accepted: a 9216-byte jumbo frame.
pub const MAX_MTU: u16 = 9216;
/// Largest window accepted, in frames.
pub const MAX_WINDOW: u16 = 4096;
/// Most members a cluster may have.
pub const MAX_MEMBERS: usize = 1024;

/// Everything a transport needs. Build one with [`TransportConfig::new`]
/// and change the fields that differ from the defaults.
#[derive(Clone)]
pub struct TransportConfig<'a> {
    /// This node.
    pub local: NodeId,
    /// Every member of the cluster with the address of its cluster NIC,
    /// this node included. Frames from anyone else are dropped.
    pub members: &'a [(NodeId, MacAddr)],
    /// The 256-bit cluster key (`cluster.key`).
    pub key: [u8; 32],
    /// Tells clusters sharing a segment apart; every member must use the
    /// same value (the shell derives it from the cluster's name).
    pub cluster_id: u32,
    /// This boot's epoch: non-zero and different on every boot of this node
    /// (the shell takes it from RDRAND/RDSEED or the TSC). Peers learn it in
    /// the handshake; frames of any other epoch are refused.
    pub epoch: u64,
    /// Ethernet payload size the NIC carries: 1500, or 9000 for jumbo frames.
    pub mtu: u16,
    /// Frames in flight to one peer, and frames one peer may have buffered
    /// here (the receive window). Every member must use the same value.
    pub window: u16,
    /// Frames queued or in flight to one peer before `send` pushes back.
    pub send_buffer_frames: u32,
    /// Largest message, in bytes.
    pub max_message_len: u32,
    /// Retransmission timeout before the first round-trip sample.
    pub rto_initial_ns: u64,
    /// Lower bound of the retransmission timeout.
    pub rto_min_ns: u64,
    /// Upper bound of the retransmission timeout, back-off included.
    pub rto_max_ns: u64,
    /// Longest an acknowledgement waits for a frame to ride on.
    pub ack_delay_ns: u64,
    /// In-order data frames after which an ack leaves at once instead of
    /// waiting up to `ack_delay_ns` (gaps, retransmissions and window
    /// probes are always acked at once). TCP's 2 would put an ack frame
    /// between the fragments of every 4 KiB message; 8 lets a request's
    /// ack ride on its reply and still returns the window in eighths.
    pub ack_every: u16,
}

impl fmt::Debug for TransportConfig<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportConfig")
            .field("local", &self.local)
            .field("members", &self.members)
            .field("key", &"<redacted>")
            .field("cluster_id", &self.cluster_id)
            .field("epoch", &self.epoch)
            .field("mtu", &self.mtu)
            .field("window", &self.window)
            .field("send_buffer_frames", &self.send_buffer_frames)
            .field("max_message_len", &self.max_message_len)
            .field("rto_initial_ns", &self.rto_initial_ns)
            .field("rto_min_ns", &self.rto_min_ns)
            .field("rto_max_ns", &self.rto_max_ns)
            .field("ack_delay_ns", &self.ack_delay_ns)
            .field("ack_every", &self.ack_every)
            .finish()
    }
}

impl<'a> TransportConfig<'a> {
    /// A configuration with the defaults: MTU 1500, window 64 frames,
    /// 256 frames of send buffer per peer, messages up to 16 KiB, RTO from
    /// 1 ms (initial 5 ms) to 500 ms, acks delayed at most 200 µs or until
    /// 8 frames wait for one.
    pub fn new(local: NodeId, members: &'a [(NodeId, MacAddr)], key: [u8; 32], epoch: u64) -> Self {
        Self {
            local,
            members,
            key,
            cluster_id: 0,
            epoch,
            mtu: 1500,
            window: 64,
            send_buffer_frames: 256,
            max_message_len: 16 * 1024,
            rto_initial_ns: 5_000_000,
            rto_min_ns: 1_000_000,
            rto_max_ns: 500_000_000,
            ack_delay_ns: 200_000,
            ack_every: 8,
        }
    }

    /// Payload bytes one frame carries at this MTU.
    pub const fn fragment_payload(&self) -> usize {
        self.mtu as usize + crate::wire::ETH_HEADER_LEN - FRAME_OVERHEAD
    }

    /// Fragments of the largest message.
    pub const fn max_fragments(&self) -> usize {
        fragments_for(self.max_message_len as usize, self.fragment_payload())
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if !(MIN_MTU..=MAX_MTU).contains(&self.mtu) {
            return Err(ConfigError::MtuOutOfRange { mtu: self.mtu });
        }
        debug_assert!(self.fragment_payload() >= HELLO_LEN);
        if self.key == [0; 32] {
            return Err(ConfigError::ZeroKey);
        }
        if self.epoch == 0 {
            return Err(ConfigError::ZeroEpoch);
        }
        let frags = self.max_fragments();
        if frags > usize::from(u16::MAX) {
            return Err(ConfigError::MessageTooLarge { max_message_len: self.max_message_len });
        }
        if self.window == 0 || self.window > MAX_WINDOW || usize::from(self.window) < frags {
            return Err(ConfigError::WindowOutOfRange { window: self.window, needed: frags });
        }
        if (self.send_buffer_frames as usize) < frags {
            return Err(ConfigError::SendBufferTooSmall { frames: self.send_buffer_frames, needed: frags });
        }
        if self.rto_min_ns == 0 || self.rto_min_ns > self.rto_initial_ns || self.rto_initial_ns > self.rto_max_ns {
            return Err(ConfigError::RtoBounds);
        }
        if self.ack_delay_ns >= self.rto_min_ns {
            return Err(ConfigError::AckDelayNotBelowRtoMin);
        }
        if self.ack_every == 0 || self.ack_every > self.window {
            return Err(ConfigError::AckEveryOutOfRange { ack_every: self.ack_every, window: self.window });
        }
        if self.members.len() > MAX_MEMBERS {
            return Err(ConfigError::TooManyMembers { count: self.members.len() });
        }
        for (i, (id, mac)) in self.members.iter().enumerate() {
            if !mac.is_unicast() {
                return Err(ConfigError::GroupAddress { node: *id });
            }
            for (other, other_mac) in &self.members[..i] {
                if other == id {
                    return Err(ConfigError::DuplicateMember { node: *id });
                }
                if other_mac == mac {
                    return Err(ConfigError::DuplicateAddress { node: *id });
                }
            }
        }
        if !self.members.iter().any(|(id, _)| *id == self.local) {
            return Err(ConfigError::LocalNotMember { node: self.local });
        }
        Ok(())
    }
}

/// Fragments a message of `len` bytes needs (an empty message is one frame).
pub(crate) const fn fragments_for(len: usize, per_frame: usize) -> usize {
    if len == 0 {
        1
    } else {
        len.div_ceil(per_frame)
    }
}

/// A configuration that cannot work, naming the field at fault.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ConfigError {
    /// `mtu` is outside [`MIN_MTU`]..=[`MAX_MTU`].
    MtuOutOfRange {
        /// The value given.
        mtu: u16,
    },
    /// `key` is all zeros.
    ZeroKey,
    /// `epoch` is zero (zero means "unknown" on the wire).
    ZeroEpoch,
    /// `max_message_len` needs more than 65535 fragments.
    MessageTooLarge {
        /// The value given.
        max_message_len: u32,
    },
    /// `window` is 0, above [`MAX_WINDOW`], or smaller than the fragments
    /// of the largest message (which could then never be reassembled).
    WindowOutOfRange {
        /// The value given.
        window: u16,
        /// Fragments of the largest message.
        needed: usize,
    },
    /// `send_buffer_frames` cannot hold the largest message.
    SendBufferTooSmall {
        /// The value given.
        frames: u32,
        /// Fragments of the largest message.
        needed: usize,
    },
    /// Not `0 < rto_min_ns <= rto_initial_ns <= rto_max_ns`.
    RtoBounds,
    /// `ack_delay_ns` must be below `rto_min_ns`, or delayed acks would
    /// cause spurious retransmissions.
    AckDelayNotBelowRtoMin,
    /// `ack_every` must be between 1 and the window.
    AckEveryOutOfRange {
        /// Given.
        ack_every: u16,
        /// The configured window.
        window: u16,
    },
    /// More than [`MAX_MEMBERS`] members.
    TooManyMembers {
        /// Members given.
        count: usize,
    },
    /// A member's address is a group (multicast/broadcast) address.
    GroupAddress {
        /// The member.
        node: NodeId,
    },
    /// A node id appears twice in `members`.
    DuplicateMember {
        /// The repeated id.
        node: NodeId,
    },
    /// Two members share an Ethernet address.
    DuplicateAddress {
        /// The second member with that address.
        node: NodeId,
    },
    /// `local` is not in `members`.
    LocalNotMember {
        /// `local`.
        node: NodeId,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MtuOutOfRange { mtu } => write!(f, "`mtu` {mtu} is outside {MIN_MTU}..={MAX_MTU}"),
            Self::ZeroKey => f.write_str("`key` is all zeros"),
            Self::ZeroEpoch => f.write_str("`epoch` must be non-zero"),
            Self::MessageTooLarge { max_message_len } => {
                write!(f, "`max_message_len` {max_message_len} needs more than 65535 fragments")
            }
            Self::WindowOutOfRange { window, needed } => {
                write!(
                    f,
                    "`window` {window} must be in {needed}..={MAX_WINDOW} (the largest message has {needed} fragments)"
                )
            }
            Self::SendBufferTooSmall { frames, needed } => {
                write!(f, "`send_buffer_frames` {frames} cannot hold the largest message ({needed} frames)")
            }
            Self::RtoBounds => f.write_str("need 0 < `rto_min_ns` <= `rto_initial_ns` <= `rto_max_ns`"),
            Self::AckDelayNotBelowRtoMin => f.write_str("`ack_delay_ns` must be below `rto_min_ns`"),
            Self::AckEveryOutOfRange { ack_every, window } => {
                write!(f, "`ack_every` {ack_every} must be between 1 and the window ({window})")
            }
            Self::TooManyMembers { count } => write!(f, "{count} members; at most {MAX_MEMBERS}"),
            Self::GroupAddress { node } => write!(f, "`members`: {node:?} has a group address"),
            Self::DuplicateMember { node } => write!(f, "`members`: {node:?} appears twice"),
            Self::DuplicateAddress { node } => write!(f, "`members`: {node:?} reuses another member's address"),
            Self::LocalNotMember { node } => write!(f, "`local` {node:?} is not in `members`"),
        }
    }
}
