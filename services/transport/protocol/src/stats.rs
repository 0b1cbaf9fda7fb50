//! What the transport counts. Every frame that is not acted on is counted
//! under exactly one [`DropReason`].

use crate::wire::Malformed;

/// Why an incoming frame was dropped without being acted on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DropReason {
    /// Not a well-formed Sinter frame of this version.
    Malformed(Malformed),
    /// Another cluster's id.
    WrongCluster,
    /// The source node is not a member, is this node, or sent from an
    /// Ethernet address that is not the one configured for it.
    NonMember,
    /// Addressed to another node.
    Misdirected,
    /// The tag does not match: forged, corrupted, or another key.
    BadMac,
    /// Authentic but stale: addressed to an earlier boot of this node, or
    /// answering a handshake challenge that is no longer outstanding.
    Replay,
    /// Authentic and addressed to this boot, but the sender's epoch has not
    /// been verified by a handshake yet; a handshake is started instead.
    NoSession,
    /// Authentic, but a sequence number beyond the receive window or an
    /// acknowledgement of frames never sent. A correct peer never sends it.
    OutOfWindow,
    /// A handshake from a peer whose MTU, window or message limit differs
    /// from ours.
    Incompatible,
}

/// Counters of one [`crate::Transport`], since construction.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Stats {
    /// Messages accepted by `send`.
    pub messages_sent: u64,
    /// `send` calls refused because the peer's send buffer was full.
    pub send_backpressure: u64,
    /// Frames handed to the driver, of every kind.
    pub frames_sent: u64,
    /// Data frames sent for the first time.
    pub data_frames_sent: u64,
    /// Data frames sent again (timeout or fast retransmit).
    pub retransmitted: u64,
    /// Of those, retransmissions triggered by selective acks.
    pub fast_retransmits: u64,
    /// Retransmission timer expiries.
    pub timeouts: u64,
    /// Stand-alone ack frames sent (window probes included).
    pub acks_sent: u64,
    /// Handshake frames sent.
    pub hellos_sent: u64,
    /// Authentic, fresh frames acted on.
    pub frames_accepted: u64,
    /// Authentic frames of the current session that brought nothing new:
    /// data frames already received, acks that acknowledge nothing new.
    pub dup_suppressed: u64,
    /// Messages complete and handed to the user queue.
    pub messages_delivered: u64,
    /// Payload bytes of those messages.
    pub bytes_delivered: u64,
    /// Sessions established (first contact with a peer's boot).
    pub sessions_established: u64,
    /// Established sessions replaced because the peer rebooted.
    pub peer_restarts: u64,
    /// Messages never confirmed to a peer that rebooted, given up.
    pub messages_abandoned: u64,
    /// Fragments that did not continue the message being reassembled (a
    /// broken peer; the partial message is discarded).
    pub reassembly_errors: u64,
    /// Dropped: malformed.
    pub dropped_malformed: u64,
    /// Dropped: another cluster id.
    pub dropped_wrong_cluster: u64,
    /// Dropped: not from a member.
    pub dropped_non_member: u64,
    /// Dropped: addressed to another node.
    pub dropped_misdirected: u64,
    /// Dropped: tag mismatch.
    pub dropped_bad_mac: u64,
    /// Dropped: stale epoch or handshake answer.
    pub dropped_replay: u64,
    /// Dropped: sender's epoch not verified yet.
    pub dropped_no_session: u64,
    /// Dropped: outside the sequence window.
    pub dropped_out_of_window: u64,
    /// Dropped: incompatible peer configuration.
    pub dropped_incompatible: u64,
}

impl Stats {
    pub(crate) fn count_drop(&mut self, reason: DropReason) {
        let counter = match reason {
            DropReason::Malformed(_) => &mut self.dropped_malformed,
            DropReason::WrongCluster => &mut self.dropped_wrong_cluster,
            DropReason::NonMember => &mut self.dropped_non_member,
            DropReason::Misdirected => &mut self.dropped_misdirected,
            DropReason::BadMac => &mut self.dropped_bad_mac,
            DropReason::Replay => &mut self.dropped_replay,
            DropReason::NoSession => &mut self.dropped_no_session,
            DropReason::OutOfWindow => &mut self.dropped_out_of_window,
            DropReason::Incompatible => &mut self.dropped_incompatible,
        };
        *counter += 1;
    }

    /// Frames dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        self.drops().iter().map(|(_, n)| n).sum()
    }

    /// The drop counters by reason, `(name, count)` in the order of the
    /// fields (names as reports print them: `bad-mac`, `out-of-window`...).
    /// The one list every report iterates, so none can miss a reason.
    pub fn drops(&self) -> [(&'static str, u64); 9] {
        [
            ("malformed", self.dropped_malformed),
            ("wrong-cluster", self.dropped_wrong_cluster),
            ("non-member", self.dropped_non_member),
            ("misdirected", self.dropped_misdirected),
            ("bad-mac", self.dropped_bad_mac),
            ("replay", self.dropped_replay),
            ("no-session", self.dropped_no_session),
            ("out-of-window", self.dropped_out_of_window),
            ("incompatible", self.dropped_incompatible),
        ]
    }
}

/// The state of one peer, for status displays and tests.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PeerStats {
    /// The peer's verified boot epoch, once a handshake has completed.
    pub epoch: Option<u64>,
    /// Smoothed round-trip time, once measured (ns).
    pub srtt_ns: Option<u64>,
    /// Round-trip variation (ns).
    pub rttvar_ns: u64,
    /// Current retransmission timeout, back-off included (ns).
    pub rto_ns: u64,
    /// Data frames sent and not yet acknowledged.
    pub in_flight: u64,
    /// Data frames built but waiting for the window.
    pub queued: u64,
    /// Retransmission timeouts in a row without progress.
    pub consecutive_timeouts: u32,
    /// Frames the peer may still send us beyond the cumulative ack.
    pub receive_window: u64,
    /// Traffic with this peer since construction (across its restarts).
    pub counts: PeerCounters,
}

/// What went to and came from one peer, since the transport was built.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct PeerCounters {
    /// Frames of every kind handed to the driver for this peer.
    pub frames_sent: u64,
    /// Their bytes (Ethernet header to tag).
    pub bytes_sent: u64,
    /// Authentic frames from this peer (accepted or duplicate).
    pub frames_received: u64,
    /// Their bytes.
    pub bytes_received: u64,
    /// Data frames sent to it again (timeouts and fast retransmits).
    pub retransmits: u64,
    /// Messages from it delivered to the user queue.
    pub messages_delivered: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_drop_reason_is_counted_once_under_its_own_name() {
        let reasons = [
            (DropReason::Malformed(Malformed::TooShort), "malformed"),
            (DropReason::WrongCluster, "wrong-cluster"),
            (DropReason::NonMember, "non-member"),
            (DropReason::Misdirected, "misdirected"),
            (DropReason::BadMac, "bad-mac"),
            (DropReason::Replay, "replay"),
            (DropReason::NoSession, "no-session"),
            (DropReason::OutOfWindow, "out-of-window"),
            (DropReason::Incompatible, "incompatible"),
        ];
        let mut names: Vec<&str> = reasons.iter().map(|(_, name)| *name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), reasons.len());
        for (reason, name) in reasons {
            let mut stats = Stats::default();
            stats.count_drop(reason);
            let counted: Vec<_> = stats.drops().into_iter().filter(|(_, n)| *n > 0).collect();
            assert_eq!(counted, [(name, 1)], "{reason:?}");
            assert_eq!(stats.dropped_total(), 1);
        }
    }
}
