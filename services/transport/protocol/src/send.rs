//! The sending half of one peer session: frames numbered and buffered,
//! sent within the window, acknowledged cumulatively and selectively,
//! retransmitted on timeout or when selective acks show a loss.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::ids::MessageId;
use crate::rtt::RttEstimator;
use crate::stats::Stats;

/// Selectively acknowledged frames above a hole that declare it lost
/// (RFC 6675's DupThresh).
const DUP_THRESH: usize = 3;

/// One data frame, from the moment `send` built it until it is acked.
#[derive(Debug)]
pub(crate) struct TxFrame {
    pub(crate) seq: u64,
    pub(crate) msg_id: MessageId,
    /// The whole frame; ack fields and tag are refreshed at each transmission.
    pub(crate) frame: Vec<u8>,
    /// When it was last handed out for transmission (ns).
    last_sent: u64,
    /// Transmissions so far; Karn's rule samples only frames sent once.
    pub(crate) tx_count: u32,
    /// Selectively acknowledged (cumulatively acked frames are removed).
    pub(crate) sacked: bool,
    /// A transmission is waiting in the outgoing queue.
    pub(crate) queued: bool,
    /// Ask the receiver for an immediate ack on this transmission.
    pub(crate) ack_now: bool,
}

/// What an acknowledgement changed.
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct AckOutcome {
    /// The cumulative ack advanced.
    pub(crate) progressed: bool,
    /// A frame was selectively acknowledged for the first time.
    pub(crate) new_sacks: bool,
    /// The peer's window reaches further than before.
    pub(crate) window_grew: bool,
}

impl AckOutcome {
    /// Whether the ack told the sender anything it did not know.
    pub(crate) fn is_news(&self) -> bool {
        self.progressed || self.new_sacks || self.window_grew
    }
}

/// Sender state for one peer session.
#[derive(Debug)]
pub(crate) struct Sender {
    /// Frames `snd_una .. next_seq`: in flight, then waiting for the window.
    frames: VecDeque<TxFrame>,
    /// Oldest unacknowledged sequence number.
    snd_una: u64,
    /// Next sequence number to transmit for the first time.
    snd_nxt: u64,
    /// Next sequence number to assign.
    next_seq: u64,
    /// Highest sequence number the peer has said it accepts.
    right_edge: u64,
    window: u64,
    buffer_limit: usize,
    pub(crate) rtt: RttEstimator,
    rto_deadline: Option<u64>,
    persist_deadline: Option<u64>,
    persist_rounds: u32,
    pub(crate) consecutive_timeouts: u32,
}

impl Sender {
    pub(crate) fn new(window: u16, buffer_limit: u32, rtt: RttEstimator) -> Self {
        Self {
            frames: VecDeque::new(),
            snd_una: 1,
            snd_nxt: 1,
            next_seq: 1,
            // A new session starts with the peer's whole window open.
            right_edge: u64::from(window),
            window: u64::from(window),
            buffer_limit: buffer_limit as usize,
            rtt,
            rto_deadline: None,
            persist_deadline: None,
            persist_rounds: 0,
            consecutive_timeouts: 0,
        }
    }

    /// Frames `send` may still add.
    pub(crate) fn free_slots(&self) -> usize {
        self.buffer_limit.saturating_sub(self.frames.len())
    }

    pub(crate) fn has_unsent(&self) -> bool {
        self.snd_nxt < self.next_seq
    }

    pub(crate) fn in_flight(&self) -> u64 {
        self.snd_nxt - self.snd_una
    }

    pub(crate) fn queued(&self) -> u64 {
        self.next_seq - self.snd_nxt
    }

    /// Adds a frame built by the caller; returns its sequence number.
    pub(crate) fn push(&mut self, msg_id: MessageId, frame: Vec<u8>) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.frames.push_back(TxFrame {
            seq,
            msg_id,
            frame,
            last_sent: 0,
            tx_count: 0,
            sacked: false,
            queued: false,
            ack_now: false,
        });
        seq
    }

    /// The next sequence number `push` will assign.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub(crate) fn frame_mut(&mut self, seq: u64) -> Option<&mut TxFrame> {
        let index = usize::try_from(seq.checked_sub(self.snd_una)?).ok()?;
        self.frames.get_mut(index)
    }

    /// Messages with a frame not yet acknowledged, oldest first (once each).
    pub(crate) fn unconfirmed_messages(&self) -> Vec<MessageId> {
        let mut ids: Vec<MessageId> = Vec::new();
        for f in &self.frames {
            if ids.last() != Some(&f.msg_id) {
                ids.push(f.msg_id);
            }
        }
        ids
    }

    /// Sends every waiting frame the window allows; `queue(seq)` puts one
    /// in the outgoing queue.
    pub(crate) fn transmit_new(&mut self, now: u64, stats: &mut Stats, queue: &mut dyn FnMut(u64)) {
        while self.snd_nxt < self.next_seq
            && self.snd_nxt - self.snd_una < self.window
            && self.snd_nxt <= self.right_edge
        {
            let seq = self.snd_nxt;
            let fills_window = seq + 1 - self.snd_una >= self.window || seq >= self.right_edge;
            let Some(frame) = self.frame_mut(seq) else { break };
            frame.last_sent = now;
            frame.tx_count = 1;
            frame.queued = true;
            frame.ack_now = fills_window;
            queue(seq);
            stats.data_frames_sent += 1;
            self.snd_nxt += 1;
            if self.rto_deadline.is_none() {
                self.rto_deadline = Some(now + self.rtt.rto());
            }
        }
        self.update_persist(now);
    }

    /// Whether `ack`/`sack` only mention frames that were sent.
    pub(crate) fn ack_is_valid(&self, ack: u64, sack: u64) -> bool {
        if ack >= self.snd_nxt {
            return false;
        }
        if sack == 0 {
            return true;
        }
        // Highest sequence number the bitmap names: ack + 2 + (index of top bit).
        let top = ack + 2 + u64::from(63 - sack.leading_zeros());
        top < self.snd_nxt
    }

    /// Applies an acknowledgement that [`Self::ack_is_valid`] accepted.
    pub(crate) fn on_ack(
        &mut self,
        ack: u64,
        sack: u64,
        window: u16,
        now: u64,
        stats: &mut Stats,
        queue: &mut dyn FnMut(u64),
    ) -> AckOutcome {
        let mut outcome = AckOutcome::default();
        // Karn: the newest frame sent once among those this ack covers.
        let mut rtt_sample: Option<u64> = None;
        let mut note = |f: &TxFrame| {
            if f.tx_count == 1 && !f.sacked {
                let r = now.saturating_sub(f.last_sent);
                rtt_sample = Some(rtt_sample.map_or(r, |s: u64| s.min(r)));
            }
        };
        while self.snd_una <= ack {
            match self.frames.pop_front() {
                Some(f) => note(&f),
                None => break,
            }
            self.snd_una += 1;
            outcome.progressed = true;
        }
        let mut bits = sack;
        while bits != 0 {
            let i = u64::from(bits.trailing_zeros());
            bits &= bits - 1;
            let seq = ack + 2 + i;
            if let Some(f) = self.frame_mut(seq) {
                if !f.sacked {
                    note(f);
                    f.sacked = true;
                    outcome.new_sacks = true;
                }
            }
        }
        if let Some(r) = rtt_sample {
            self.rtt.sample(r);
        }
        let edge = ack + u64::from(window);
        if edge > self.right_edge {
            self.right_edge = edge;
            outcome.window_grew = true;
        }
        if outcome.progressed {
            self.consecutive_timeouts = 0;
            self.persist_rounds = 0;
            // RFC 6298 §5.3: restart the timer when new data is acked.
            self.rto_deadline = (self.snd_una < self.snd_nxt).then(|| now + self.rtt.rto());
        }
        if sack != 0 {
            self.fast_retransmit(now, stats, queue);
        }
        self.transmit_new(now, stats, queue);
        outcome
    }

    /// RFC 6675-style loss detection: a frame with `DUP_THRESH` selectively
    /// acked frames above it is lost. Resent at most once per round trip.
    fn fast_retransmit(&mut self, now: u64, stats: &mut Stats, queue: &mut dyn FnMut(u64)) {
        // A frame overtaken by DUP_THRESH later ones is presumed lost once it
        // is older than a round trip plus the usual variation; the allowance
        // keeps plain reordering from causing spurious resends.
        let min_gap = match self.rtt.srtt() {
            Some(srtt) => srtt + self.rtt.rttvar().max(srtt / 4),
            None => self.rtt.rto(),
        };
        let in_flight = (self.snd_nxt - self.snd_una) as usize;
        let mut sacked_above = 0usize;
        for f in self.frames.range_mut(..in_flight).rev() {
            if f.sacked {
                sacked_above += 1;
                continue;
            }
            if sacked_above >= DUP_THRESH && !f.queued && now.saturating_sub(f.last_sent) >= min_gap {
                resend(f, now, queue);
                stats.retransmitted += 1;
                stats.fast_retransmits += 1;
            }
        }
    }

    pub(crate) fn deadline(&self) -> Option<u64> {
        match (self.rto_deadline, self.persist_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Retransmission and persist timers. Returns whether a window probe
    /// should be sent.
    pub(crate) fn on_timer(&mut self, now: u64, stats: &mut Stats, queue: &mut dyn FnMut(u64)) -> bool {
        let mut probe = false;
        if self.rto_deadline.is_some_and(|d| d <= now) {
            stats.timeouts += 1;
            self.consecutive_timeouts = self.consecutive_timeouts.saturating_add(1);
            let rto = self.rtt.rto();
            let in_flight = (self.snd_nxt - self.snd_una) as usize;
            let mut first = true;
            for f in self.frames.range_mut(..in_flight) {
                if f.sacked || f.queued {
                    continue;
                }
                // The oldest hole always; any other frame already as overdue.
                if first || now.saturating_sub(f.last_sent) >= rto {
                    resend(f, now, queue);
                    stats.retransmitted += 1;
                }
                first = false;
            }
            self.rtt.back_off();
            self.rto_deadline = (self.snd_una < self.snd_nxt).then(|| now + self.rtt.rto());
        }
        if self.persist_deadline.is_some_and(|d| d <= now) {
            probe = true;
            self.persist_rounds = self.persist_rounds.saturating_add(1);
            self.persist_deadline = None;
            self.update_persist(now);
        }
        probe
    }

    /// Arms the persist timer when the peer's window alone holds back
    /// waiting frames and nothing is in flight to bring a window update.
    fn update_persist(&mut self, now: u64) {
        let blocked = self.snd_nxt < self.next_seq && self.snd_nxt > self.right_edge && self.snd_una == self.snd_nxt;
        if !blocked {
            self.persist_deadline = None;
        } else if self.persist_deadline.is_none() {
            let factor = 1u64.checked_shl(self.persist_rounds.min(16)).unwrap_or(u64::MAX);
            let wait = self.rtt.rto().saturating_mul(factor).min(self.rtt.max());
            self.persist_deadline = Some(now + wait);
        }
    }
}

fn resend(f: &mut TxFrame, now: u64, queue: &mut dyn FnMut(u64)) {
    f.last_sent = now;
    f.tx_count = f.tx_count.saturating_add(1);
    f.queued = true;
    f.ack_now = true;
    queue(f.seq);
}
