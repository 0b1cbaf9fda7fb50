//! What the transport hands to its user.

use alloc::vec::Vec;

use crate::ids::{MessageId, NodeId};
use crate::stats::DropReason;
use crate::wire::{FrameKind, Malformed};

/// A message, complete and intact, delivered exactly once and in the order
/// its sender sent it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Delivery {
    /// Who sent it.
    pub from: NodeId,
    /// The id `send` returned to the sender.
    pub id: MessageId,
    /// The bytes given to `send`.
    pub data: Vec<u8>,
}

/// Something the user should know about, in the order it happened.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Event {
    /// A message arrived.
    Message(Delivery),
    /// A handshake verified a peer's boot epoch for the first time.
    PeerUp {
        /// The peer.
        peer: NodeId,
        /// Its verified epoch.
        epoch: u64,
    },
    /// A peer proved a new boot epoch: it restarted. Its old session is
    /// gone; the listed messages were never confirmed to it and will not be
    /// sent (some may have reached the old boot). Later sends go to the new
    /// boot.
    PeerRestarted {
        /// The peer.
        peer: NodeId,
        /// Its new epoch.
        epoch: u64,
        /// Messages given up, oldest first.
        abandoned: Vec<MessageId>,
    },
}

/// Why `send` refused a message.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SendError {
    /// Not a member of the cluster.
    UnknownPeer(NodeId),
    /// The local node itself.
    ToSelf,
    /// Larger than `max_message_len`.
    TooLarge {
        /// Bytes given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The peer's send buffer is full: try again after acks arrive (after
    /// `on_frame`/`poll`). Nothing was queued.
    Backpressure,
}

/// What [`crate::Transport::on_frame`] did with a frame.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Verdict {
    /// Authentic, fresh, and acted on.
    Accepted(FrameKind),
    /// An authentic frame of the current session that brought nothing new:
    /// a data frame that had already arrived (a network duplicate, a
    /// retransmission after a lost ack, a replay of a recent frame), which is
    /// acknowledged again and never delivered again; or an ack that
    /// acknowledges nothing new.
    Duplicate,
    /// Not acted on; counted under this reason.
    Dropped(DropReason),
}

impl Verdict {
    /// Whether the frame changed any state.
    pub fn is_accepted(&self) -> bool {
        matches!(self, Verdict::Accepted(_))
    }
}

impl From<Malformed> for Verdict {
    fn from(m: Malformed) -> Self {
        Verdict::Dropped(DropReason::Malformed(m))
    }
}
