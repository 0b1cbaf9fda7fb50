//! What a node reports about itself. Field order is the wire order of the
//! postcard encoding ([`crate::codec`]): adding, removing or reordering a
//! field is a new [`crate::codec::VERSION`].

use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// One node's status, as `cargo xtask status` prints it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    /// The answering node.
    pub node_id: u16,
    /// `[cluster] name` of its config.
    pub cluster: String,
    /// Milliseconds since the node's kernel started.
    pub uptime_ms: u64,
    /// The node's boot epoch (its transport/membership session identity).
    pub boot_epoch: u64,
    /// Every configured member is alive, as this node sees it.
    pub formed: bool,
    /// Every configured member, this node included, by node id.
    pub members: Vec<MemberStatus>,
    /// Transport totals over all peers.
    pub transport: TransportTotals,
    /// Frames the transport refused, by reason.
    pub drops: DropCounters,
    /// The management endpoint's own counters.
    pub mgmt: MgmtCounters,
    /// The node's cores that run an executor, by index, each with the share
    /// of the node's last load window (about a second) it spent halted.
    /// Empty until the first window has ended.
    pub cores: Vec<CoreLoad>,
    /// Receive interrupts the node's NIC raised since boot (0 while it is
    /// polled: `nic: ... receive interrupt off (polling)` on its console).
    pub nic_interrupts: u64,
}

/// How busy one core of a node was.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoreLoad {
    /// Core index (its initial local APIC id).
    pub core: u16,
    /// Thousandths of the window the core spent halted with nothing to
    /// run (1000: idle throughout; 0: never halted, e.g. a polling loop).
    pub halted_permille: u16,
}

/// A member as this node sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    pub node: u16,
    pub state: MemberState,
    /// Milliseconds since this node last heard from it (None: never, or
    /// the member is this node).
    pub last_contact_ms_ago: Option<u64>,
    /// Its boot epoch, once verified.
    pub epoch: Option<u64>,
    /// The transport link to it (None for this node itself).
    pub link: Option<LinkStats>,
}

/// Membership state of one member.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberState {
    /// The answering node itself.
    Local,
    /// Never heard from since this node booted.
    Unknown,
    /// Heard from within the failure timeout.
    Alive,
    /// Silent for longer than the failure timeout.
    Dead,
}

impl MemberState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Unknown => "unknown",
            Self::Alive => "alive",
            Self::Dead => "dead",
        }
    }
}

/// Transport counters of the link to one peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkStats {
    pub frames_sent: u64,
    pub bytes_sent: u64,
    pub frames_received: u64,
    pub bytes_received: u64,
    /// Data frames sent again (timeouts and fast retransmits).
    pub retransmits: u64,
    /// Messages delivered from this peer.
    pub messages_delivered: u64,
    /// Smoothed round-trip time (µs), once measured.
    pub srtt_us: Option<u64>,
    /// Round-trip variation (µs).
    pub rttvar_us: u64,
    /// Current retransmission timeout (µs).
    pub rto_us: u64,
    /// Data frames sent and not yet acknowledged.
    pub in_flight: u64,
}

/// Transport totals of one node, over every peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransportTotals {
    pub messages_sent: u64,
    pub messages_delivered: u64,
    pub bytes_delivered: u64,
    pub frames_sent: u64,
    pub frames_accepted: u64,
    /// Authentic frames of a current session that brought nothing new
    /// (duplicates, replays of frames already received): not delivered.
    pub duplicates: u64,
    pub retransmitted: u64,
    pub sessions_established: u64,
    pub peer_restarts: u64,
}

/// Frames the transport dropped without acting on them, by reason (the
/// transport counts each dropped frame under exactly one).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropCounters {
    /// Not a well-formed Sinter frame (short, truncated, bad version...).
    pub malformed: u64,
    /// Another cluster id.
    pub wrong_cluster: u64,
    /// Not from a configured member (or from the wrong MAC for it).
    pub non_member: u64,
    /// Addressed to another node.
    pub misdirected: u64,
    /// Tag mismatch: forged, corrupted, or another key.
    pub bad_mac: u64,
    /// Authentic but stale (an earlier boot's session, an old challenge).
    pub replay: u64,
    /// Sender's epoch not verified yet.
    pub no_session: u64,
    /// Beyond the receive window, or acking frames never sent.
    pub out_of_window: u64,
    /// Handshake from a peer with different limits.
    pub incompatible: u64,
}

impl DropCounters {
    pub fn total(&self) -> u64 {
        self.malformed
            + self.wrong_cluster
            + self.non_member
            + self.misdirected
            + self.bad_mac
            + self.replay
            + self.no_session
            + self.out_of_window
            + self.incompatible
    }

    /// `(name, value)` pairs in wire order, for printing.
    pub fn named(&self) -> [(&'static str, u64); 9] {
        [
            ("malformed", self.malformed),
            ("wrong_cluster", self.wrong_cluster),
            ("non_member", self.non_member),
            ("misdirected", self.misdirected),
            ("bad_mac", self.bad_mac),
            ("replay", self.replay),
            ("no_session", self.no_session),
            ("out_of_window", self.out_of_window),
            ("incompatible", self.incompatible),
        ]
    }
}

/// The management endpoint's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MgmtCounters {
    /// Status queries answered.
    pub queries_answered: u64,
    /// Datagrams to the management port that were not a well-formed query.
    pub queries_malformed: u64,
    /// Well-formed queries of a version this node does not speak (answered
    /// with an "unsupported version" reply).
    pub queries_unsupported: u64,
    /// Replies that did not fit the socket's send buffer.
    pub replies_dropped: u64,
    /// Frames the management stack received and sent.
    pub frames_in: u64,
    pub frames_out: u64,
}
