//! [`Transport`]: one node's end of every peer session, and the only type
//! a shell drives. Incoming frames are handled in `inbound`, outgoing frames
//! are sealed in `outbound`.

mod inbound;
mod outbound;

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use zerocopy::byteorder::network_endian::{U16, U32, U64};

use crate::auth::FrameAuth;
use crate::config::{fragments_for, ConfigError, TransportConfig};
use crate::event::{Event, SendError};
use crate::ids::{MacAddr, MessageId, NodeId};
use crate::recv::Receiver;
use crate::rtt::RttEstimator;
use crate::send::Sender;
use crate::stats::{PeerCounters, PeerStats, Stats};
use crate::wire::{build_frame, EthernetHeader, FrameHeader, FrameKind, ETHERTYPE, VERSION};

/// The reliable, authenticated transport of one node. See the crate docs
/// for how a shell drives it.
pub struct Transport {
    local: NodeId,
    local_mac: MacAddr,
    cluster_id: u32,
    epoch: u64,
    mtu: u16,
    window: u16,
    max_message_len: u32,
    fragment_payload: usize,
    max_fragments: usize,
    send_buffer_frames: u32,
    rto_initial: u64,
    rto_min: u64,
    rto_max: u64,
    ack_delay: u64,
    ack_every: u32,
    auth: FrameAuth,
    /// Every member but this node, sorted by id.
    peers: Vec<Peer>,
    out: VecDeque<OutFrame>,
    events: VecDeque<Pending>,
    /// Last handshake challenge issued; unique within this boot.
    last_challenge: u64,
    stats: Stats,
    scratch: Vec<u8>,
}

impl core::fmt::Debug for Transport {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Transport")
            .field("local", &self.local)
            .field("epoch", &self.epoch)
            .field("peers", &self.peers.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Everything about one peer.
#[derive(Debug)]
struct Peer {
    id: NodeId,
    mac: MacAddr,
    /// The peer's boot epoch, verified by a handshake.
    session: Option<u64>,
    /// Bumped whenever `session` changes; stale queue entries are ignored.
    generation: u32,
    /// Our outstanding handshake challenge to this peer (0: none).
    challenge: u64,
    hello_deadline: Option<u64>,
    hello_rounds: u32,
    last_hello: Option<u64>,
    /// The peer's epoch as last seen on an authentic frame (unverified).
    epoch_hint: u64,
    /// The user asked for a session even with nothing to send.
    wanted: bool,
    next_msg_id: u64,
    /// An `OutFrame::Ack` for this peer is in the outgoing queue.
    ack_queued: bool,
    tx: Sender,
    rx: Receiver,
    counts: PeerCounters,
}

/// A frame waiting for the driver; encoded and sealed when drained, so it
/// carries the freshest acknowledgement.
#[derive(Clone, Copy, Debug)]
enum OutFrame {
    Data { peer: usize, generation: u32, seq: u64 },
    Ack { peer: usize, probe: bool },
    Hello { peer: usize, dst_epoch: u64, challenge: u64, echo: u64 },
}

/// An event, with the window space it holds until the user takes it.
#[derive(Debug)]
struct Pending {
    event: Event,
    holds: Option<(usize, u32, u32)>,
}

impl Transport {
    /// A transport for `config.local`, with no sessions yet.
    pub fn new(config: &TransportConfig<'_>) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut members: Vec<(NodeId, MacAddr)> = config.members.to_vec();
        members.sort_unstable_by_key(|(id, _)| *id);
        let local_mac = members.iter().find(|(id, _)| *id == config.local).map(|(_, mac)| *mac);
        let local_mac = local_mac.ok_or(ConfigError::LocalNotMember { node: config.local })?;
        let mut transport = Self {
            local: config.local,
            local_mac,
            cluster_id: config.cluster_id,
            epoch: config.epoch,
            mtu: config.mtu,
            window: config.window,
            max_message_len: config.max_message_len,
            fragment_payload: config.fragment_payload(),
            max_fragments: config.max_fragments(),
            send_buffer_frames: config.send_buffer_frames,
            rto_initial: config.rto_initial_ns,
            rto_min: config.rto_min_ns,
            rto_max: config.rto_max_ns,
            ack_delay: config.ack_delay_ns,
            ack_every: u32::from(config.ack_every),
            auth: FrameAuth::new(&config.key),
            peers: Vec::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            last_challenge: 0,
            stats: Stats::default(),
            scratch: Vec::new(),
        };
        for (id, mac) in members.into_iter().filter(|(id, _)| *id != config.local) {
            let peer = Peer {
                id,
                mac,
                session: None,
                generation: 0,
                challenge: 0,
                hello_deadline: None,
                hello_rounds: 0,
                last_hello: None,
                epoch_hint: 0,
                wanted: false,
                next_msg_id: 1,
                ack_queued: false,
                tx: transport.new_sender(),
                rx: Receiver::new(transport.window, transport.max_message_len),
                counts: PeerCounters::default(),
            };
            transport.peers.push(peer);
        }
        Ok(transport)
    }

    fn new_sender(&self) -> Sender {
        Sender::new(
            self.window,
            self.send_buffer_frames,
            RttEstimator::new(self.rto_initial, self.rto_min, self.rto_max),
        )
    }

    /// This node.
    pub fn local(&self) -> NodeId {
        self.local
    }

    /// This boot's epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Payload bytes per frame at the configured MTU.
    pub fn fragment_payload(&self) -> usize {
        self.fragment_payload
    }

    /// Counters since construction.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The state of one peer, or `None` if it is not a member.
    pub fn peer_stats(&self, peer: NodeId) -> Option<PeerStats> {
        let p = &self.peers[self.peer_index(peer)?];
        Some(PeerStats {
            epoch: p.session,
            srtt_ns: p.tx.rtt.srtt(),
            rttvar_ns: p.tx.rtt.rttvar(),
            rto_ns: p.tx.rtt.rto(),
            in_flight: p.tx.in_flight(),
            queued: p.tx.queued(),
            consecutive_timeouts: p.tx.consecutive_timeouts,
            receive_window: p.rx.receive_window(),
            counts: p.counts,
        })
    }

    fn peer_index(&self, peer: NodeId) -> Option<usize> {
        self.peers.binary_search_by_key(&peer, |p| p.id).ok()
    }

    /// Queues `payload` for `peer`: it will be delivered to the peer's user
    /// exactly once, in order with every other message to that peer, or
    /// reported in [`Event::PeerRestarted`] if the peer reboots first.
    /// Starts a handshake if there is no session yet.
    pub fn send(&mut self, peer: NodeId, payload: &[u8], now: u64) -> Result<MessageId, SendError> {
        if peer == self.local {
            return Err(SendError::ToSelf);
        }
        let i = self.peer_index(peer).ok_or(SendError::UnknownPeer(peer))?;
        let max = self.max_message_len as usize;
        if payload.len() > max {
            return Err(SendError::TooLarge { len: payload.len(), max });
        }
        let count = fragments_for(payload.len(), self.fragment_payload);
        if self.peers[i].tx.free_slots() < count {
            self.stats.send_backpressure += 1;
            return Err(SendError::Backpressure);
        }
        let eth = self.eth_header(i);
        let p = &mut self.peers[i];
        let id = MessageId(p.next_msg_id);
        p.next_msg_id += 1;
        let mut chunks = payload.chunks(self.fragment_payload);
        for index in 0..count {
            let chunk = chunks.next().unwrap_or(&[]);
            let mut header = Self::header(self.cluster_id, self.local, self.epoch, p.id, FrameKind::Data, 0);
            header.seq = U64::new(p.tx.next_seq());
            header.msg_id = U64::new(id.0);
            // `count` fits: the config keeps max_fragments within u16.
            header.frag_index = U16::new(index as u16);
            header.frag_count = U16::new(count as u16);
            header.payload_len = U16::new(chunk.len() as u16);
            let mut frame = Vec::new();
            build_frame(&mut frame, &eth, &header, chunk);
            p.tx.push(id, frame);
        }
        self.stats.messages_sent += 1;
        if self.peers[i].session.is_none() {
            self.start_handshake(i, now);
        } else {
            self.pump(i, now);
        }
        Ok(id)
    }

    /// Starts a handshake with `peer` now, so a session exists before the
    /// first message. Nothing happens if one exists or is being set up.
    pub fn connect(&mut self, peer: NodeId, now: u64) -> Result<(), SendError> {
        if peer == self.local {
            return Err(SendError::ToSelf);
        }
        let i = self.peer_index(peer).ok_or(SendError::UnknownPeer(peer))?;
        self.peers[i].wanted = true;
        if self.peers[i].session.is_none() {
            self.start_handshake(i, now);
        }
        Ok(())
    }

    /// The next event for the user: a delivered message, or a change of a
    /// peer's session. Taking a message frees its space in the window.
    pub fn recv(&mut self) -> Option<Event> {
        let pending = self.events.pop_front()?;
        if let Some((i, generation, frames)) = pending.holds {
            let p = &mut self.peers[i];
            if p.generation == generation && p.rx.release(frames) {
                self.queue_ack(i);
            }
        }
        Some(pending.event)
    }

    /// Events waiting in [`Self::recv`]'s queue.
    pub fn pending_events(&self) -> usize {
        self.events.len()
    }

    /// Runs the timers due at `now`: handshake retries, retransmissions,
    /// window probes, delayed acks. Call it at [`Self::next_deadline`].
    pub fn poll(&mut self, now: u64) {
        for i in 0..self.peers.len() {
            let p = &self.peers[i];
            if p.challenge != 0 && p.hello_deadline.is_some_and(|d| d <= now) {
                let p = &mut self.peers[i];
                p.hello_rounds = p.hello_rounds.saturating_add(1);
                self.queue_hello(i, now, 0, self.peers[i].epoch_hint);
            }
            let p = &self.peers[i];
            if p.session.is_none() && p.challenge == 0 && (p.wanted || p.tx.has_unsent()) {
                self.start_handshake(i, now);
            }
            let Self { peers, stats, out, .. } = self;
            let p = &mut peers[i];
            if p.session.is_some() {
                let generation = p.generation;
                let mut queue = |seq| out.push_back(OutFrame::Data { peer: i, generation, seq });
                let before = stats.retransmitted;
                if p.tx.on_timer(now, stats, &mut queue) {
                    out.push_back(OutFrame::Ack { peer: i, probe: true });
                }
                p.counts.retransmits += stats.retransmitted - before;
            }
            if self.peers[i].rx.ack_deadline.is_some_and(|d| d <= now) {
                self.queue_ack(i);
            }
        }
    }

    /// The earliest time [`Self::poll`] has work, if any timer is running.
    pub fn next_deadline(&self) -> Option<u64> {
        let mut next: Option<u64> = None;
        let mut consider = |t: Option<u64>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        for p in &self.peers {
            if p.challenge != 0 {
                consider(p.hello_deadline);
            }
            if p.session.is_some() {
                consider(p.tx.deadline());
            }
            consider(p.rx.ack_deadline);
        }
        next
    }

    /// Frames waiting for the driver (some may turn out to be unnecessary
    /// when drained, e.g. a retransmission acknowledged meanwhile).
    pub fn frames_waiting(&self) -> usize {
        self.out.len()
    }

    /// Sends waiting data frames the window allows.
    fn pump(&mut self, i: usize, now: u64) {
        let Self { peers, stats, out, .. } = self;
        let p = &mut peers[i];
        if p.session.is_none() {
            return;
        }
        let generation = p.generation;
        p.tx.transmit_new(now, stats, &mut |seq| out.push_back(OutFrame::Data { peer: i, generation, seq }));
    }

    /// An ack is due to peer `i` as soon as possible.
    fn queue_ack(&mut self, i: usize) {
        let p = &mut self.peers[i];
        p.rx.ack_owed = true;
        p.rx.ack_deadline = None;
        if !p.ack_queued {
            p.ack_queued = true;
            self.out.push_back(OutFrame::Ack { peer: i, probe: false });
        }
    }

    fn new_challenge(&mut self) -> u64 {
        self.last_challenge += 1;
        self.last_challenge
    }

    /// Issues a challenge to peer `i` unless one is outstanding, and sends it.
    fn start_handshake(&mut self, i: usize, now: u64) {
        if self.peers[i].challenge == 0 {
            let challenge = self.new_challenge();
            let p = &mut self.peers[i];
            p.challenge = challenge;
            p.hello_rounds = 0;
            let hint = p.epoch_hint;
            self.queue_hello(i, now, 0, hint);
        }
    }

    /// Queues a Hello carrying our outstanding challenge (if any) and
    /// `echo`, and re-arms the handshake retry timer.
    fn queue_hello(&mut self, i: usize, now: u64, echo: u64, dst_epoch: u64) {
        let p = &mut self.peers[i];
        self.out.push_back(OutFrame::Hello { peer: i, dst_epoch, challenge: p.challenge, echo });
        p.last_hello = Some(now);
        p.hello_deadline = (p.challenge != 0).then(|| {
            let factor = 1u64.checked_shl(p.hello_rounds.min(32)).unwrap_or(u64::MAX);
            now + self.rto_initial.saturating_mul(factor).min(self.rto_max)
        });
    }

    fn eth_header(&self, i: usize) -> EthernetHeader {
        EthernetHeader { dst: self.peers[i].mac.0, src: self.local_mac.0, ether_type: U16::new(ETHERTYPE) }
    }

    fn header(cluster: u32, local: NodeId, epoch: u64, peer: NodeId, kind: FrameKind, dst_epoch: u64) -> FrameHeader {
        FrameHeader {
            version: VERSION,
            kind: kind as u8,
            flags: U16::new(0),
            cluster: U32::new(cluster),
            src_node: U16::new(local.0),
            dst_node: U16::new(peer.0),
            src_epoch: U64::new(epoch),
            dst_epoch: U64::new(dst_epoch),
            seq: U64::new(0),
            ack: U64::new(0),
            sack: U64::new(0),
            window: U16::new(0),
            msg_id: U64::new(0),
            frag_index: U16::new(0),
            frag_count: U16::new(0),
            payload_len: U16::new(0),
            // Set when the frame is sealed.
            nonce: U64::new(0),
        }
    }
}
