//! Incoming frames: checks in order of cost (structure, cluster, address,
//! membership, then the MAC), then the handshake or the session.

use super::{OutFrame, Pending, Transport};
use crate::event::{Delivery, Event, Verdict};
use crate::ids::NodeId;
use crate::recv::{FragmentRef, RxOutcome};
use crate::stats::DropReason;
use crate::wire::{self, FrameKind, Malformed, ParsedFrame, FLAG_ACK_NOW};

impl Transport {
    /// Handles one frame from the NIC. Whatever `frame` holds, this never
    /// panics; a frame that is not authentic, fresh and well-formed changes
    /// nothing but a counter.
    pub fn on_frame(&mut self, frame: &[u8], now: u64) -> Verdict {
        let verdict = self.check_and_handle(frame, now);
        match verdict {
            Verdict::Dropped(reason) => self.stats.count_drop(reason),
            Verdict::Duplicate => self.stats.dup_suppressed += 1,
            Verdict::Accepted(_) => self.stats.frames_accepted += 1,
        }
        if !matches!(verdict, Verdict::Dropped(_)) {
            // Authentic, so the source node field is the sender's.
            let src = frame.get(22..24).map(|b| NodeId(u16::from_be_bytes([b[0], b[1]])));
            if let Some(i) = src.and_then(|src| self.peer_index(src)) {
                self.peers[i].counts.frames_received += 1;
                self.peers[i].counts.bytes_received += frame.len() as u64;
            }
        }
        verdict
    }

    fn check_and_handle(&mut self, frame: &[u8], now: u64) -> Verdict {
        let parsed = match wire::parse(frame) {
            Ok(parsed) => parsed,
            Err(m) => return m.into(),
        };
        let h = &parsed.header;
        if h.cluster.get() != self.cluster_id {
            return Verdict::Dropped(DropReason::WrongCluster);
        }
        if h.dst_node.get() != self.local.0 {
            return Verdict::Dropped(DropReason::Misdirected);
        }
        let Some(i) = self.peer_index(NodeId(h.src_node.get())) else {
            return Verdict::Dropped(DropReason::NonMember);
        };
        if parsed.eth.src != self.peers[i].mac.0 {
            return Verdict::Dropped(DropReason::NonMember);
        }
        if parsed.kind == FrameKind::Data
            && (parsed.payload.len() > self.fragment_payload || usize::from(h.frag_count.get()) > self.max_fragments)
        {
            return Malformed::TooLarge.into();
        }
        if !self.auth.verify(parsed.covered, parsed.tag) {
            return Verdict::Dropped(DropReason::BadMac);
        }
        // Authentic from here on.
        self.peers[i].epoch_hint = h.src_epoch.get();
        match parsed.kind {
            FrameKind::Hello => self.on_hello(i, &parsed, now),
            FrameKind::Data | FrameKind::Ack => self.on_sequenced(i, &parsed, now),
        }
    }

    fn on_hello(&mut self, i: usize, parsed: &ParsedFrame<'_>, now: u64) -> Verdict {
        let Some(body) = parsed.hello() else { return Malformed::BadField.into() };
        let agrees = body.mtu.get() == self.mtu
            && body.window.get() == self.window
            && body.max_message_len.get() == self.max_message_len;
        if !agrees {
            return Verdict::Dropped(DropReason::Incompatible);
        }
        let src_epoch = parsed.header.src_epoch.get();
        let (challenge, echo) = (body.challenge.get(), body.echo.get());
        let mut verified = false;
        if echo != 0 {
            let p = &self.peers[i];
            if p.challenge != 0 && echo == p.challenge && parsed.header.dst_epoch.get() == self.epoch {
                // Only a key holder that saw our current challenge, sent to
                // this boot, can produce this: the peer's epoch is live.
                verified = true;
            } else if challenge == 0 {
                return Verdict::Dropped(DropReason::Replay);
            }
        }
        if verified {
            let p = &mut self.peers[i];
            p.challenge = 0;
            p.hello_deadline = None;
            p.hello_rounds = 0;
        }
        if challenge != 0 {
            // Answer first, so the peer can verify us before our data arrives.
            // If its epoch is not (being) verified, challenge back.
            let known = verified || self.peers[i].session == Some(src_epoch);
            if !known && self.peers[i].challenge == 0 {
                let c = self.new_challenge();
                self.peers[i].challenge = c;
                self.peers[i].hello_rounds = 0;
            }
            self.queue_hello(i, now, challenge, src_epoch);
        } else if !verified && self.peers[i].session != Some(src_epoch) {
            // An announcement of an epoch we have not verified.
            self.challenge_peer(i, now);
        }
        if verified {
            self.commit(i, src_epoch, now);
        }
        Verdict::Accepted(FrameKind::Hello)
    }

    /// Starts or repeats (at most once per `rto_min`) a challenge to `i`.
    fn challenge_peer(&mut self, i: usize, now: u64) {
        if self.peers[i].challenge == 0 {
            self.start_handshake(i, now);
        } else if self.hello_allowed(i, now) {
            let hint = self.peers[i].epoch_hint;
            self.queue_hello(i, now, 0, hint);
        }
    }

    fn hello_allowed(&self, i: usize, now: u64) -> bool {
        self.peers[i].last_hello.is_none_or(|t| now >= t.saturating_add(self.rto_min))
    }

    /// A handshake verified `epoch` for peer `i`.
    fn commit(&mut self, i: usize, epoch: u64, now: u64) {
        let peer = self.peers[i].id;
        match self.peers[i].session {
            Some(current) if current == epoch => {}
            None => {
                let p = &mut self.peers[i];
                p.session = Some(epoch);
                p.generation = p.generation.wrapping_add(1);
                self.stats.sessions_established += 1;
                self.events.push_back(Pending { event: Event::PeerUp { peer, epoch }, holds: None });
            }
            Some(_) => {
                let sender = self.new_sender();
                let receiver = crate::recv::Receiver::new(self.window, self.max_message_len);
                let p = &mut self.peers[i];
                let abandoned = p.tx.unconfirmed_messages();
                p.tx = sender;
                p.rx = receiver;
                p.session = Some(epoch);
                p.generation = p.generation.wrapping_add(1);
                self.stats.sessions_established += 1;
                self.stats.peer_restarts += 1;
                self.stats.messages_abandoned += abandoned.len() as u64;
                self.events.push_back(Pending { event: Event::PeerRestarted { peer, epoch, abandoned }, holds: None });
            }
        }
        self.pump(i, now);
    }

    /// Data and ack frames: only within the verified session.
    fn on_sequenced(&mut self, i: usize, parsed: &ParsedFrame<'_>, now: u64) -> Verdict {
        let h = &parsed.header;
        if h.dst_epoch.get() != self.epoch {
            // Made for an earlier boot of ours (or by a peer that has not
            // learnt this one yet): tell the peer who we are now.
            if self.hello_allowed(i, now) {
                let p = &self.peers[i];
                let target = h.src_epoch.get();
                if p.session.is_none() || p.challenge != 0 {
                    self.challenge_peer(i, now);
                } else {
                    self.queue_hello(i, now, 0, target);
                }
            }
            return Verdict::Dropped(DropReason::Replay);
        }
        if self.peers[i].session != Some(h.src_epoch.get()) {
            self.challenge_peer(i, now);
            return Verdict::Dropped(DropReason::NoSession);
        }
        let (ack, sack, window) = (h.ack.get(), h.sack.get(), h.window.get());
        if !self.peers[i].tx.ack_is_valid(ack, sack) {
            return Verdict::Dropped(DropReason::OutOfWindow);
        }
        let seq = h.seq.get();
        if parsed.kind == FrameKind::Data && self.peers[i].rx.classify(seq) == RxOutcome::OutOfWindow {
            return Verdict::Dropped(DropReason::OutOfWindow);
        }
        let ack_now = h.flags.get() & FLAG_ACK_NOW != 0;
        let acked = {
            let Self { peers, stats, out, .. } = self;
            let p = &mut peers[i];
            let generation = p.generation;
            let before = stats.retransmitted;
            let acked = p.tx.on_ack(ack, sack, window, now, stats, &mut |seq| {
                out.push_back(OutFrame::Data { peer: i, generation, seq });
            });
            p.counts.retransmits += stats.retransmitted - before;
            acked
        };
        if parsed.kind == FrameKind::Ack {
            if ack_now {
                // A window probe: answer with the current window.
                self.queue_ack(i);
                return Verdict::Accepted(FrameKind::Ack);
            }
            // An ack that tells nothing new (a duplicate, or a replay of an
            // old one) is harmless: acks only ever move forward.
            return if acked.is_news() { Verdict::Accepted(FrameKind::Ack) } else { Verdict::Duplicate };
        }
        let fragment = FragmentRef {
            msg_id: h.msg_id.get(),
            index: h.frag_index.get(),
            count: h.frag_count.get(),
            payload: parsed.payload,
        };
        let outcome = {
            let Self { peers, stats, events, .. } = self;
            let p = &mut peers[i];
            let (from, generation) = (p.id, p.generation);
            let errors_before = p.rx.reassembly_errors;
            let counts = &mut p.counts;
            let outcome = p.rx.accept(seq, fragment, &mut |done| {
                counts.messages_delivered += 1;
                stats.messages_delivered += 1;
                stats.bytes_delivered += done.data.len() as u64;
                events.push_back(Pending {
                    event: Event::Message(Delivery { from, id: done.id, data: done.data }),
                    holds: Some((i, generation, done.frames)),
                });
            });
            stats.reassembly_errors += p.rx.reassembly_errors - errors_before;
            outcome
        };
        let p = &mut self.peers[i];
        match outcome {
            RxOutcome::Duplicate => {
                self.queue_ack(i);
                Verdict::Duplicate
            }
            RxOutcome::OutOfWindow => Verdict::Dropped(DropReason::OutOfWindow),
            RxOutcome::Buffered => {
                // A gap: tell the sender at once what arrived.
                self.queue_ack(i);
                Verdict::Accepted(FrameKind::Data)
            }
            RxOutcome::InOrder => {
                p.rx.unacked += 1;
                let gap_remains = p.rx.ack_fields().1 != 0;
                if ack_now || p.rx.unacked >= self.ack_every || gap_remains {
                    self.queue_ack(i);
                } else if p.rx.ack_deadline.is_none() {
                    p.rx.ack_owed = true;
                    p.rx.ack_deadline = Some(now + self.ack_delay);
                }
                Verdict::Accepted(FrameKind::Data)
            }
        }
    }
}
