//! Behaviour of a pair of transports over a scripted link: handshake,
//! authentication, replay protection, reliability, flow control,
//! fragmentation, restart.

use std::collections::VecDeque;

use crate::wire::{self, FrameKind, FRAME_OVERHEAD};
use crate::*;

pub(crate) const KEY: [u8; 32] = [0x5a; 32];
pub(crate) const MS: u64 = 1_000_000;
pub(crate) const US: u64 = 1_000;

pub(crate) const A: NodeId = NodeId(0);
pub(crate) const B: NodeId = NodeId(1);

pub(crate) fn mac(i: u8) -> MacAddr {
    MacAddr([0x02, 0, 0, 0, 0, i])
}

/// Nodes 0, 1 and 2 (2 never runs: a member that is down).
pub(crate) static MEMBERS: [(NodeId, MacAddr); 3] = [
    (NodeId(0), MacAddr([0x02, 0, 0, 0, 0, 0])),
    (NodeId(1), MacAddr([0x02, 0, 0, 0, 0, 1])),
    (NodeId(2), MacAddr([0x02, 0, 0, 0, 0, 2])),
];

pub(crate) fn config(local: NodeId, epoch: u64) -> TransportConfig<'static> {
    let mut c = TransportConfig::new(local, &MEMBERS, KEY, epoch);
    c.cluster_id = 7;
    c
}

pub(crate) fn transport(local: NodeId, epoch: u64) -> Transport {
    Transport::new(&config(local, epoch)).unwrap()
}

type DropRule = Box<dyn FnMut(usize, &[u8]) -> bool>;

/// Two transports joined by a link with fixed latency; `drop` decides which
/// frames are lost; every frame sent is recorded in `tap`.
pub(crate) struct Link {
    pub(crate) t: [Transport; 2],
    pub(crate) now: u64,
    latency: u64,
    wire: VecDeque<(u64, usize, Vec<u8>)>,
    pub(crate) tap: Vec<(usize, Vec<u8>)>,
    pub(crate) drop: DropRule,
    pub(crate) verdicts: Vec<(usize, Option<FrameKind>, Verdict)>,
}

impl Link {
    pub(crate) fn new(a: Transport, b: Transport) -> Self {
        Self {
            t: [a, b],
            now: 0,
            latency: 50 * US,
            wire: VecDeque::new(),
            tap: Vec::new(),
            drop: Box::new(|_, _| false),
            verdicts: Vec::new(),
        }
    }

    pub(crate) fn pair() -> Self {
        Self::new(transport(A, 0xa1), transport(B, 0xb1))
    }

    fn pump_out(&mut self) {
        for i in 0..2 {
            while let Some(f) = self.t[i].pop_frame() {
                self.tap.push((i, f.clone()));
                if !(self.drop)(i, &f) {
                    self.wire.push_back((self.now + self.latency, 1 - i, f));
                }
            }
        }
    }

    /// Advances to the next arrival or timer and handles it. False when idle.
    pub(crate) fn step(&mut self) -> bool {
        self.pump_out();
        let next = [self.wire.front().map(|w| w.0), self.t[0].next_deadline(), self.t[1].next_deadline()]
            .into_iter()
            .flatten()
            .min();
        let Some(next) = next else { return false };
        self.now = self.now.max(next);
        while self.wire.front().is_some_and(|w| w.0 <= self.now) {
            let Some((_, to, frame)) = self.wire.pop_front() else { break };
            let v = self.t[to].on_frame(&frame, self.now);
            self.verdicts.push((to, wire::parse(&frame).ok().map(|p| p.kind), v));
        }
        for i in 0..2 {
            if self.t[i].next_deadline().is_some_and(|d| d <= self.now) {
                self.t[i].poll(self.now);
            }
        }
        self.pump_out();
        true
    }

    /// Runs until idle or `duration` has passed.
    pub(crate) fn run_for(&mut self, duration: u64) {
        let end = self.now + duration;
        while self.now < end && self.step() {}
    }

    pub(crate) fn messages(&mut self, i: usize) -> Vec<Delivery> {
        let mut out = Vec::new();
        while let Some(e) = self.t[i].recv() {
            if let Event::Message(d) = e {
                out.push(d);
            }
        }
        out
    }

    pub(crate) fn events(&mut self, i: usize) -> Vec<Event> {
        core::iter::from_fn(|| self.t[i].recv()).collect()
    }

    /// Frames `from` sent, of `kind`.
    pub(crate) fn sent(&self, from: usize, kind: FrameKind) -> Vec<Vec<u8>> {
        self.tap
            .iter()
            .filter(|(f, bytes)| *f == from && wire::parse(bytes).is_ok_and(|p| p.kind == kind))
            .map(|(_, b)| b.clone())
            .collect()
    }
}

fn page(seed: u8) -> Vec<u8> {
    (0..4096u32).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[test]
fn handshake_verifies_both_epochs_in_three_hellos_and_reports_peer_up() {
    let mut link = Link::pair();
    link.t[0].connect(B, 0).unwrap();
    link.run_for(10 * MS);
    assert_eq!(link.sent(0, FrameKind::Hello).len() + link.sent(1, FrameKind::Hello).len(), 3);
    assert_eq!(link.t[0].peer_stats(B).unwrap().epoch, Some(0xb1));
    assert_eq!(link.t[1].peer_stats(A).unwrap().epoch, Some(0xa1));
    assert_eq!(link.events(0), vec![Event::PeerUp { peer: B, epoch: 0xb1 }]);
    assert_eq!(link.events(1), vec![Event::PeerUp { peer: A, epoch: 0xa1 }]);
    assert_eq!(link.t[0].next_deadline(), None, "nothing left to do");
}

#[test]
fn handshake_survives_lost_hellos_by_retrying_with_backoff() {
    let mut link = Link::pair();
    let mut dropped = 0;
    link.drop = Box::new(move |_, f| {
        let hello = wire::parse(f).is_ok_and(|p| p.kind == FrameKind::Hello);
        if hello && dropped < 3 {
            dropped += 1;
            return true;
        }
        false
    });
    let id = link.t[0].send(B, b"after a rough start", 0).unwrap();
    link.run_for(200 * MS);
    let got = link.messages(1);
    assert_eq!(got, vec![Delivery { from: A, id, data: b"after a rough start".to_vec() }]);
}

#[test]
fn messages_arrive_once_in_order_and_intact_both_ways() {
    let mut link = Link::pair();
    let mut sent = Vec::new();
    let (mut to_a, mut to_b) = (Vec::new(), Vec::new());
    for k in 0..50u8 {
        let body: Vec<u8> = if k % 3 == 0 { page(k) } else { vec![k; usize::from(k) * 7] };
        let id = link.t[0].send(B, &body, link.now).unwrap();
        link.t[1].send(A, &body, link.now).unwrap();
        sent.push((id, body));
        link.run_for(20 * US);
        to_b.extend(link.messages(1).into_iter().map(|d| (d.id, d.data)));
        to_a.extend(link.messages(0).into_iter().map(|d| (d.id, d.data)));
    }
    link.run_for(100 * MS);
    to_b.extend(link.messages(1).into_iter().map(|d| (d.id, d.data)));
    to_a.extend(link.messages(0).into_iter().map(|d| (d.id, d.data)));
    let summary = |v: &[(MessageId, Vec<u8>)]| v.iter().map(|(id, d)| (id.0, d.len())).collect::<Vec<_>>();
    assert_eq!(summary(&to_b), summary(&sent));
    assert_eq!(summary(&to_a), summary(&sent));
    assert!(to_b == sent && to_a == sent, "contents differ");
    assert_eq!(link.t[0].stats().retransmitted, 0);
}

#[test]
fn empty_message_is_one_frame_and_is_delivered() {
    let mut link = Link::pair();
    let id = link.t[0].send(B, &[], 0).unwrap();
    link.run_for(10 * MS);
    assert_eq!(link.messages(1), vec![Delivery { from: A, id, data: Vec::new() }]);
    assert_eq!(link.sent(0, FrameKind::Data).len(), 1);
}

/// Bytes on the wire for one 4 KiB page (Ethernet header + transport
/// header + tag per frame; preamble, FCS and gap excluded), printed for
/// `docs/transport.md`.
#[test]
fn page_costs_three_frames_at_mtu_1500_and_one_at_jumbo_9000() {
    for (mtu, frames, bytes) in [(1500u16, 3usize, 4096 + 3 * FRAME_OVERHEAD), (9000, 1, 4096 + FRAME_OVERHEAD)] {
        let mut a = config(A, 0xa1);
        a.mtu = mtu;
        let mut b = config(B, 0xb1);
        b.mtu = mtu;
        let mut link = Link::new(Transport::new(&a).unwrap(), Transport::new(&b).unwrap());
        link.t[0].connect(B, 0).unwrap();
        link.run_for(MS);
        link.t[0].send(B, &page(1), link.now).unwrap();
        link.run_for(10 * MS);
        assert_eq!(link.messages(1).len(), 1);
        let data = link.sent(0, FrameKind::Data);
        let total: usize = data.iter().map(Vec::len).sum();
        assert_eq!(data.len(), frames, "MTU {mtu}");
        assert_eq!(total, bytes, "MTU {mtu}");
        assert!(data.iter().all(|f| f.len() <= usize::from(mtu) + 14));
        eprintln!(
            "MTU {mtu}: 4096-byte page = {frames} frame(s), {total} bytes on the wire, overhead {} bytes ({:.2}%), efficiency {:.2}%",
            total - 4096,
            100.0 * (total - 4096) as f64 / 4096.0,
            100.0 * 4096.0 / total as f64
        );
    }
}

#[test]
fn wrong_key_forgeries_are_dropped_as_bad_mac_and_deliver_nothing() {
    // An impostor on the segment claims to be node 0 (same id, same
    // Ethernet address) but does not hold the cluster key.
    let mut forged = config(A, 0xbad);
    forged.key = [0x77; 32];
    let mut link = Link::new(Transport::new(&forged).unwrap(), transport(B, 0xb1));
    link.t[0].send(B, b"open the pod bay doors", 0).unwrap();
    link.run_for(50 * MS);
    assert!(link.messages(1).is_empty());
    assert!(link.events(1).is_empty());
    let s = link.t[1].stats();
    assert!(s.dropped_bad_mac > 0);
    assert_eq!(s.frames_accepted, 0);
    assert_eq!(s.dropped_total(), s.dropped_bad_mac);
    assert_eq!(link.t[1].peer_stats(A).unwrap().epoch, None, "no session with a forger");
    // And B never answered: every frame B sent would be a reply to something.
    assert!(link.tap.iter().all(|(from, _)| *from == 0));
}

#[test]
fn replayed_frames_of_the_current_session_are_suppressed_not_redelivered() {
    let mut link = Link::pair();
    for k in 0..5u8 {
        link.t[0].send(B, &page(k), link.now).unwrap();
    }
    link.run_for(50 * MS);
    assert_eq!(link.messages(1).len(), 5);
    let captured: Vec<Vec<u8>> = link.tap.iter().filter(|(f, _)| *f == 0).map(|(_, b)| b.clone()).collect();
    let before = *link.t[1].stats();
    for frame in &captured {
        let v = link.t[1].on_frame(frame, link.now);
        assert!(!matches!(v, Verdict::Accepted(FrameKind::Data)), "a replayed data frame was accepted: {v:?}");
    }
    link.run_for(50 * MS);
    assert!(link.messages(1).is_empty(), "nothing delivered twice");
    assert_eq!(link.t[1].stats().messages_delivered, before.messages_delivered);
    assert!(link.t[1].stats().dup_suppressed >= before.dup_suppressed + 15);
    assert_eq!(link.t[1].peer_stats(A).unwrap().epoch, Some(0xa1));
}

#[test]
fn restarted_peer_gets_a_new_session_and_its_old_frames_are_refused() {
    let mut link = Link::pair();
    for k in 0..3u8 {
        link.t[0].send(B, &[k; 100], link.now).unwrap();
        link.t[1].send(A, &[k; 100], link.now).unwrap();
    }
    link.run_for(50 * MS);
    assert_eq!(link.messages(1).len(), 3);
    assert_eq!(link.messages(0).len(), 3);
    let old_from_a: Vec<Vec<u8>> = link.tap.iter().filter(|(f, _)| *f == 0).map(|(_, b)| b.clone()).collect();
    let old_from_b: Vec<Vec<u8>> = link.tap.iter().filter(|(f, _)| *f == 1).map(|(_, b)| b.clone()).collect();

    // Node 0 reboots: a new transport, a new epoch.
    link.t[0] = transport(A, 0xa2);
    link.tap.clear();
    let id = link.t[0].send(B, b"I am back", link.now).unwrap();
    link.run_for(50 * MS);
    assert_eq!(link.messages(1), vec![Delivery { from: A, id, data: b"I am back".to_vec() }]);
    assert_eq!(link.t[1].peer_stats(A).unwrap().epoch, Some(0xa2));
    assert_eq!(link.t[1].stats().peer_restarts, 1);

    // The old boot's frames, replayed to B, are refused...
    let delivered = link.t[1].stats().messages_delivered;
    for frame in &old_from_a {
        let v = link.t[1].on_frame(frame, link.now);
        assert!(!matches!(v, Verdict::Accepted(FrameKind::Data) | Verdict::Duplicate), "{v:?}");
    }
    // ...and B's frames to the old boot (its data included: same sender
    // epoch, sequence numbers the new session has not reached) are refused
    // by the new one.
    assert!(old_from_b.iter().any(|f| wire::parse(f).is_ok_and(|p| p.kind == FrameKind::Data)));
    for frame in &old_from_b {
        let v = link.t[0].on_frame(frame, link.now);
        assert!(!matches!(v, Verdict::Accepted(FrameKind::Data | FrameKind::Ack) | Verdict::Duplicate), "{v:?}");
    }
    link.run_for(50 * MS);
    assert!(link.messages(1).is_empty());
    assert!(link.messages(0).is_empty(), "nothing of the old session reached the new boot");
    assert_eq!(link.t[1].stats().messages_delivered, delivered);
    assert_eq!(link.t[1].peer_stats(A).unwrap().epoch, Some(0xa2), "the replay did not bring the old boot back");
    assert_eq!(link.t[0].peer_stats(B).unwrap().epoch, Some(0xb1));
    assert!(link.t[1].stats().dropped_replay + link.t[1].stats().dropped_no_session > 0);
    // Still working afterwards.
    let id = link.t[0].send(B, b"still here", link.now).unwrap();
    link.run_for(50 * MS);
    assert_eq!(link.messages(1), vec![Delivery { from: A, id, data: b"still here".to_vec() }]);
}

#[test]
fn messages_to_a_peer_that_rebooted_are_abandoned_and_reported() {
    let mut link = Link::pair();
    link.t[0].connect(B, 0).unwrap();
    link.run_for(10 * MS);
    link.events(0);
    // Node 1 goes silent; node 0 queues three messages it cannot confirm.
    link.drop = Box::new(|_, _| true);
    let ids: Vec<MessageId> = (0..3).map(|k| link.t[0].send(B, &[k; 10], link.now).unwrap()).collect();
    link.run_for(5 * MS);
    link.drop = Box::new(|_, _| false);
    link.t[1] = transport(B, 0xb2);
    let fresh = link.t[0].send(B, b"to the new boot", link.now).unwrap();
    link.run_for(100 * MS);
    let events = link.events(0);
    assert!(events.contains(&Event::PeerRestarted { peer: B, epoch: 0xb2, abandoned: [ids, vec![fresh]].concat() }));
    // After the restart report, sending works with the new boot.
    let id = link.t[0].send(B, b"hello again", link.now).unwrap();
    link.run_for(100 * MS);
    assert_eq!(link.messages(1), vec![Delivery { from: A, id, data: b"hello again".to_vec() }]);
}

fn forge(frame: &[u8], edit: impl FnOnce(&mut wire::FrameHeader, &mut [u8; 14]), key: &[u8; 32]) -> Vec<u8> {
    let mut f = frame.to_vec();
    let mut eth = [0u8; 14];
    eth.copy_from_slice(&f[..14]);
    let h = wire::header_mut(&mut f).unwrap();
    edit(h, &mut eth);
    f[..14].copy_from_slice(&eth);
    crate::auth::FrameAuth::new(key).seal_as_is(&mut f);
    f
}

#[test]
fn frames_from_non_members_other_clusters_or_for_other_nodes_are_dropped_per_reason() {
    let mut link = Link::pair();
    link.t[0].send(B, b"x", 0).unwrap();
    link.run_for(10 * MS);
    let data = link.sent(0, FrameKind::Data).remove(0);
    let b = &mut link.t[1];
    // Correctly keyed (an insider mistake, not a forgery), but wrong fields.
    let non_member = forge(&data, |h, _| h.src_node.set(9), &KEY);
    let spoofed_eth = forge(&data, |_, e| e[6..12].copy_from_slice(&mac(2).0), &KEY);
    let other_cluster = forge(&data, |h, _| h.cluster.set(8), &KEY);
    let misdirected = forge(&data, |h, _| h.dst_node.set(2), &KEY);
    let from_self = forge(
        &data,
        |h, e| {
            h.src_node.set(1);
            e[6..12].copy_from_slice(&mac(1).0);
        },
        &KEY,
    );
    assert_eq!(b.on_frame(&non_member, 1), Verdict::Dropped(DropReason::NonMember));
    assert_eq!(b.on_frame(&spoofed_eth, 1), Verdict::Dropped(DropReason::NonMember));
    assert_eq!(b.on_frame(&from_self, 1), Verdict::Dropped(DropReason::NonMember));
    assert_eq!(b.on_frame(&other_cluster, 1), Verdict::Dropped(DropReason::WrongCluster));
    assert_eq!(b.on_frame(&misdirected, 1), Verdict::Dropped(DropReason::Misdirected));
    let mut tampered = data.clone();
    tampered[wire::PAYLOAD_OFFSET] ^= 1;
    assert_eq!(b.on_frame(&tampered, 1), Verdict::Dropped(DropReason::BadMac));
    assert_eq!(b.on_frame(&data[..40], 1), Verdict::Dropped(DropReason::Malformed(Malformed::TooShort)));
    let s = b.stats();
    assert_eq!(
        (s.dropped_non_member, s.dropped_wrong_cluster, s.dropped_misdirected, s.dropped_bad_mac, s.dropped_malformed),
        (3, 1, 1, 1, 1)
    );
}

#[test]
fn lost_frame_is_retransmitted_with_doubling_timeout_bounded_by_rto_max() {
    let mut a = config(A, 0xa1);
    a.rto_max_ns = 40 * MS;
    let mut link = Link::new(Transport::new(&a).unwrap(), transport(B, 0xb1));
    link.t[0].connect(B, 0).unwrap();
    link.run_for(10 * MS);
    // Every data frame from node 0 is lost until t = 300 ms.
    let start = link.now;
    link.drop = Box::new(|from, f| from == 0 && wire::parse(f).is_ok_and(|p| p.kind == FrameKind::Data));
    link.t[0].send(B, b"persistent", link.now).unwrap();
    let mut sends = Vec::new();
    while link.now < start + 300 * MS {
        let before = link.t[0].stats().frames_sent;
        if !link.step() {
            break;
        }
        if link.t[0].stats().frames_sent > before {
            sends.push(link.now - start);
        }
    }
    let gaps: Vec<u64> = sends.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.len() >= 5, "{sends:?}");
    for w in gaps.windows(2) {
        assert!(w[1] == 2 * w[0] || w[1] == 40 * MS, "back-off must double up to rto_max: {gaps:?}");
    }
    assert_eq!(*gaps.last().unwrap(), 40 * MS);
    let ps = link.t[0].peer_stats(B).unwrap();
    assert!(ps.consecutive_timeouts >= 5);
    link.drop = Box::new(|_, _| false);
    link.run_for(100 * MS);
    assert_eq!(link.messages(1).len(), 1);
    assert_eq!(link.t[0].peer_stats(B).unwrap().consecutive_timeouts, 0);
}

#[test]
fn karn_rule_takes_no_rtt_sample_from_a_retransmitted_frame() {
    let mut link = Link::pair();
    link.t[0].connect(B, 0).unwrap();
    link.run_for(10 * MS);
    let mut first = true;
    link.drop = Box::new(move |from, f| {
        let data = from == 0 && wire::parse(f).is_ok_and(|p| p.kind == FrameKind::Data);
        if data && first {
            first = false;
            return true;
        }
        false
    });
    link.t[0].send(B, b"retransmitted once", link.now).unwrap();
    link.run_for(50 * MS);
    assert_eq!(link.messages(1).len(), 1);
    assert_eq!(link.t[0].stats().retransmitted, 1);
    assert_eq!(link.t[0].peer_stats(B).unwrap().srtt_ns, None, "ambiguous sample must be ignored");
    link.t[0].send(B, b"sent once", link.now).unwrap();
    link.run_for(50 * MS);
    let srtt = link.t[0].peer_stats(B).unwrap().srtt_ns.expect("a clean sample");
    // 50 µs each way, plus at most the receiver's ack delay (200 µs).
    assert!((100 * US..=300 * US).contains(&srtt), "{srtt}");
}

#[test]
fn rtt_estimate_tracks_the_link_and_sets_the_timeout() {
    let mut link = Link::pair();
    for k in 0..40u8 {
        // Eight-frame messages: the eighth frame is acked at once.
        link.t[0].send(B, &[k; 8 * 1300], link.now).unwrap();
        link.run_for(5 * MS);
    }
    let ps = link.t[0].peer_stats(B).unwrap();
    let srtt = ps.srtt_ns.unwrap();
    assert!((100 * US..=110 * US).contains(&srtt), "srtt {srtt}");
    assert_eq!(ps.rto_ns, MS, "floor at rto_min: {ps:?}");
}

#[test]
fn send_pushes_back_when_the_buffer_is_full_and_recovers_after_acks() {
    let mut c = config(A, 0xa1);
    c.send_buffer_frames = 24;
    let mut link = Link::new(Transport::new(&c).unwrap(), transport(B, 0xb1));
    let mut ids = Vec::new();
    loop {
        match link.t[0].send(B, &page(0), 0) {
            Ok(id) => ids.push(id),
            Err(e) => {
                assert_eq!(e, SendError::Backpressure);
                break;
            }
        }
    }
    assert_eq!(ids.len(), 8, "8 pages of 3 frames fill 24 frames");
    assert_eq!(link.t[0].stats().send_backpressure, 1);
    link.run_for(20 * MS);
    assert!(link.t[0].send(B, &page(0), link.now).is_ok());
    link.run_for(20 * MS);
    assert_eq!(link.messages(1).len(), 9);
}

#[test]
fn receiver_that_does_not_read_stops_the_sender_at_its_window() {
    let mut a = config(A, 0xa1);
    a.window = 16;
    a.send_buffer_frames = 100;
    let mut b = config(B, 0xb1);
    b.window = 16;
    let mut link = Link::new(Transport::new(&a).unwrap(), Transport::new(&b).unwrap());
    for k in 0..30u8 {
        link.t[0].send(B, &[k; 50], 0).unwrap();
    }
    link.run_for(50 * MS);
    assert_eq!(link.t[1].pending_events(), 16 + 1, "16 messages (+ PeerUp) fill B's window");
    let ps = link.t[0].peer_stats(B).unwrap();
    assert_eq!((ps.in_flight, ps.queued), (0, 14), "the rest waits at the sender: {ps:?}");
    assert_eq!(link.t[1].peer_stats(A).unwrap().receive_window, 0);
    // Lose the window update; the sender's persist probe must recover.
    link.drop = Box::new(|from, f| from == 1 && wire::parse(f).is_ok_and(|p| p.kind == FrameKind::Ack));
    let got = link.messages(1);
    assert_eq!(got.len(), 16);
    link.run_for(MS / 2);
    link.drop = Box::new(|_, _| false);
    link.run_for(500 * MS);
    let rest = link.messages(1);
    let all: Vec<u8> = got.iter().chain(&rest).map(|d| d.data[0]).collect();
    assert_eq!(all, (0..30).collect::<Vec<u8>>());
}

#[test]
fn lone_frame_is_acked_after_the_ack_delay_and_ack_every_frames_at_once() {
    let mut link = Link::pair();
    link.t[0].connect(B, 0).unwrap();
    link.run_for(10 * MS);
    link.t[0].send(B, b"one", link.now).unwrap();
    link.step(); // data arrives at B
    let arrived = link.now;
    assert_eq!(link.t[1].next_deadline(), Some(arrived + 200 * US));
    link.run_for(10 * MS);
    let acks = link.sent(1, FrameKind::Ack);
    assert_eq!(acks.len(), 1);
    assert_eq!(link.messages(1).len(), 1);
    link.tap.clear();
    // A 4 KiB message (3 frames): fewer than `ack_every` (8), so no ack
    // between its fragments; the ack waits for a reply to ride on.
    link.t[0].send(B, &[0; 4096], link.now).unwrap();
    let mut got = Vec::new();
    while got.is_empty() && link.step() {
        got = link.messages(1);
    }
    assert_eq!(got.len(), 1);
    assert!(link.sent(1, FrameKind::Ack).is_empty(), "no ack inside a message");
    let reply = link.t[1].send(A, b"reply", link.now).unwrap();
    let mut got = Vec::new();
    while got.is_empty() && link.step() {
        got = link.messages(0);
    }
    assert_eq!(got[0].id, reply);
    assert!(link.sent(1, FrameKind::Ack).is_empty(), "the ack rode on the reply");
    assert_eq!(link.t[1].next_deadline().filter(|d| *d <= link.now + 200 * US), None, "no ack owed any more");
    link.tap.clear();
    link.t[0].send(B, &[0; 8 * 1300], link.now).unwrap(); // eight frames
    link.step();
    assert_eq!(link.sent(1, FrameKind::Ack).len(), 1, "eighth in-order frame: ack at once");
    assert_eq!(link.t[1].next_deadline(), None, "no delayed ack left");
}

#[test]
fn send_rejects_unknown_peers_self_and_oversized_messages() {
    let mut t = transport(A, 1);
    assert_eq!(t.send(NodeId(9), b"x", 0), Err(SendError::UnknownPeer(NodeId(9))));
    assert_eq!(t.send(A, b"x", 0), Err(SendError::ToSelf));
    let big = vec![0; 16 * 1024 + 1];
    assert_eq!(t.send(B, &big, 0), Err(SendError::TooLarge { len: 16 * 1024 + 1, max: 16 * 1024 }));
    assert!(t.send(NodeId(2), b"to a member that is down", 0).is_ok());
}

#[test]
fn bad_configurations_are_refused_naming_the_field() {
    let check = |edit: &dyn Fn(&mut TransportConfig<'static>), want: ConfigError| {
        let mut c = config(A, 1);
        edit(&mut c);
        assert_eq!(Transport::new(&c).unwrap_err(), want);
    };
    check(&|c| c.mtu = 100, ConfigError::MtuOutOfRange { mtu: 100 });
    check(&|c| c.key = [0; 32], ConfigError::ZeroKey);
    check(&|c| c.epoch = 0, ConfigError::ZeroEpoch);
    check(&|c| c.window = 4, ConfigError::WindowOutOfRange { window: 4, needed: 12 });
    check(&|c| c.send_buffer_frames = 3, ConfigError::SendBufferTooSmall { frames: 3, needed: 12 });
    check(&|c| c.rto_min_ns = 0, ConfigError::RtoBounds);
    check(&|c| c.ack_delay_ns = c.rto_min_ns, ConfigError::AckDelayNotBelowRtoMin);
    check(&|c| c.ack_every = 0, ConfigError::AckEveryOutOfRange { ack_every: 0, window: 64 });
    check(&|c| c.ack_every = 65, ConfigError::AckEveryOutOfRange { ack_every: 65, window: 64 });
    check(&|c| c.local = NodeId(5), ConfigError::LocalNotMember { node: NodeId(5) });
    static DUP: [(NodeId, MacAddr); 2] =
        [(NodeId(0), MacAddr([2, 0, 0, 0, 0, 0])), (NodeId(0), MacAddr([2, 0, 0, 0, 0, 1]))];
    check(&|c| c.members = &DUP, ConfigError::DuplicateMember { node: NodeId(0) });
    static GROUP: [(NodeId, MacAddr); 1] = [(NodeId(0), MacAddr([1, 0, 0, 0, 0, 0]))];
    check(&|c| c.members = &GROUP, ConfigError::GroupAddress { node: NodeId(0) });
    let shown = format!("{:?}", config(A, 1));
    assert!(!shown.contains("90") && shown.contains("<redacted>"), "key must not be printed: {shown}");
}

#[test]
fn hello_from_a_peer_with_another_mtu_or_window_is_refused_as_incompatible() {
    let edits: [&dyn Fn(&mut TransportConfig<'static>); 3] =
        [&|c| c.mtu = 9000, &|c| c.window = 32, &|c| c.max_message_len = 8192];
    for edit in edits {
        let mut a = config(A, 0xa1);
        edit(&mut a);
        let mut link = Link::new(Transport::new(&a).unwrap(), transport(B, 0xb1));
        link.t[0].connect(B, 0).unwrap();
        link.run_for(10 * MS);
        assert!(link.t[1].stats().dropped_incompatible > 0);
        assert_eq!(link.t[1].peer_stats(A).unwrap().epoch, None);
        assert_eq!(link.t[0].peer_stats(B).unwrap().epoch, None);
    }
}

#[test]
fn per_peer_counters_add_up_to_the_traffic_on_the_link() {
    let mut link = Link::pair();
    // Every third data frame from node 0 is lost once: retransmissions happen.
    let mut n = 0;
    link.drop = Box::new(move |from, f| {
        let data = from == 0 && wire::parse(f).is_ok_and(|p| p.kind == FrameKind::Data);
        n += usize::from(data);
        data && n % 3 == 0 && n < 30
    });
    for k in 0..8u8 {
        link.t[0].send(B, &page(k), link.now).unwrap();
    }
    link.run_for(2_000 * MS);
    assert_eq!(link.messages(1).len(), 8);
    let a = link.t[0].peer_stats(B).unwrap().counts;
    let b = link.t[1].peer_stats(A).unwrap().counts;
    let sent_by = |from: usize| link.tap.iter().filter(move |(f, _)| *f == from);
    assert_eq!(a.frames_sent, sent_by(0).count() as u64);
    assert_eq!(a.bytes_sent, sent_by(0).map(|(_, f)| f.len() as u64).sum::<u64>());
    assert_eq!(b.frames_sent, sent_by(1).count() as u64);
    assert_eq!(a.frames_sent, link.t[0].stats().frames_sent, "one peer: per-peer equals total");
    assert_eq!(a.retransmits, link.t[0].stats().retransmitted);
    assert!(a.retransmits >= 1);
    assert_eq!(b.messages_delivered, 8);
    assert_eq!(a.messages_delivered, 0);
    // Everything node 0 sent arrived except what the link dropped.
    let arrived_at_1 = link.verdicts.iter().filter(|(to, _, v)| *to == 1 && !matches!(v, Verdict::Dropped(_))).count();
    assert_eq!(b.frames_received, arrived_at_1 as u64);
    assert!(b.bytes_received > 8 * 4096);
    // A frame that is not authentic counts for nobody.
    let before = link.t[1].peer_stats(A).unwrap().counts;
    let mut forged = link.sent(0, FrameKind::Data)[0].clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert_eq!(link.t[1].on_frame(&forged, link.now), Verdict::Dropped(DropReason::BadMac));
    assert_eq!(link.t[1].peer_stats(A).unwrap().counts, before);
}

/// `pop_frame_with` hands out the same frames, one per call, as
/// `pop_frame` would (the bare-metal service takes one frame per free NIC
/// buffer).
#[test]
fn pop_frame_with_yields_one_frame_per_call_like_pop_frame() {
    let build = || {
        let mut t = transport(A, 0xa1);
        t.connect(B, 0).unwrap();
        t.connect(NodeId(2), 0).unwrap();
        t
    };
    let (mut one, mut other) = (build(), build());
    let mut seen = Vec::new();
    while one.pop_frame_with(|f| seen.push(f.to_vec())) {}
    let expected: Vec<Vec<u8>> = core::iter::from_fn(|| other.pop_frame()).collect();
    assert_eq!(seen.len(), 2, "two Hellos");
    // Hellos carry a per-transport challenge counter, equal in both runs.
    assert_eq!(seen, expected);
    assert!(!one.pop_frame_with(|_| panic!("nothing left")));
}
