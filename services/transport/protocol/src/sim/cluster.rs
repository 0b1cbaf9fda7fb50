//! The simulation loop and its checks.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use super::network::{Faults, Network, WireCounts};
use super::rng::{mix, SplitMix64};
use crate::event::{Event, SendError};
use crate::ids::{MacAddr, NodeId};
use crate::stats::Stats;
use crate::{Transport, TransportConfig};

/// Which message sizes the workload sends, in percent (the rest are small).
#[derive(Clone, Copy, Debug)]
pub struct SizeMix {
    /// Exactly one 4 KiB page.
    pub page_pct: u8,
    /// A page plus a 32-byte message header (what coherence sends).
    pub page_and_header_pct: u8,
    /// Any size up to the maximum message.
    pub any_pct: u8,
    /// Largest "small" message (the rest of the mix is `0..=small_max`).
    pub small_max: usize,
}

impl SizeMix {
    /// Half small (≤ 200 bytes), a fifth pages, a fifth page + header,
    /// a tenth any size.
    pub const MIXED: SizeMix = SizeMix { page_pct: 20, page_and_header_pct: 20, any_pct: 10, small_max: 200 };
}

/// One simulated run.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Every random choice (network and workload) derives from it.
    pub seed: u64,
    /// Nodes in the cluster (at least 2).
    pub nodes: usize,
    /// Messages to send in total, spread over all ordered pairs.
    pub messages: u64,
    /// Sizes of those messages.
    pub sizes: SizeMix,
    /// The segment's faults.
    pub faults: Faults,
    /// Interval between a node's send attempts (ns).
    pub send_interval_ns: u64,
    /// Send attempts per node per interval.
    pub burst: u32,
    /// Transport MTU.
    pub mtu: u16,
    /// Transport window.
    pub window: u16,
    /// Largest message.
    pub max_message_len: u32,
    /// Bounds of the retransmission timeout.
    pub rto_min_ns: u64,
    /// Upper bound of the retransmission timeout.
    pub rto_max_ns: u64,
    /// How many messages a node's user takes per send interval (`None`:
    /// all of them at once). A slow reader exercises flow control.
    pub reader_budget: Option<u32>,
    /// Virtual time after which an unfinished run is a liveness failure.
    pub deadline_ns: u64,
}

impl SimConfig {
    /// `nodes` nodes, `messages` mixed messages, MTU 1500, 1% loss,
    /// 1% duplication, 5% reordering, 20 µs ± 10 µs latency.
    pub fn lossy(seed: u64, nodes: usize, messages: u64) -> Self {
        Self {
            seed,
            nodes,
            messages,
            sizes: SizeMix::MIXED,
            faults: Faults {
                drop_ppm: 10_000,
                duplicate_ppm: 10_000,
                reorder_ppm: 50_000,
                delay_ns: 20_000,
                jitter_ns: 10_000,
                reorder_extra_ns: 100_000,
                cuts: Vec::new(),
            },
            send_interval_ns: 10_000,
            burst: 4,
            mtu: 1500,
            window: 64,
            max_message_len: 16 * 1024,
            rto_min_ns: 200_000,
            rto_max_ns: 20_000_000,
            reader_budget: None,
            deadline_ns: 3_600_000_000_000,
        }
    }
}

/// What a successful run did.
#[derive(Clone, Debug)]
pub struct SimReport {
    /// Messages sent (== delivered, checked).
    pub messages: u64,
    /// Payload bytes delivered.
    pub bytes_delivered: u64,
    /// Virtual time at the end (ns).
    pub virtual_ns: u64,
    /// What the segment did.
    pub wire: WireCounts,
    /// Counters of all transports added up.
    pub totals: Stats,
    /// `send` calls refused with backpressure.
    pub backpressure: u64,
}

/// A run that broke an invariant. Rerun with the same config to reproduce.
#[derive(Clone, Debug)]
pub struct SimFailure {
    /// The seed of the run.
    pub seed: u64,
    /// Virtual time of the failure (ns).
    pub at_ns: u64,
    /// What went wrong.
    pub what: String,
}

impl fmt::Display for SimFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seed {:#x} at {} ns: {} (rerun the same SimConfig to reproduce)", self.seed, self.at_ns, self.what)
    }
}

/// The content of message `k` from `src` to `dst`: a 16-byte stamp
/// (src, dst, k, len) then seeded bytes, so a receiver can check it
/// without a copy of what was sent.
pub fn message_bytes(seed: u64, sizes: SizeMix, max: usize, src: usize, dst: usize, k: u64, out: &mut Vec<u8>) {
    let h = mix(&[seed, src as u64, dst as u64, k]);
    let mut rng = SplitMix64::new(h);
    let roll = rng.below(100) as u8;
    let len = if roll < sizes.page_pct {
        4096
    } else if roll < sizes.page_pct + sizes.page_and_header_pct {
        4096 + 32
    } else if roll < sizes.page_pct + sizes.page_and_header_pct + sizes.any_pct {
        rng.below(max as u64 + 1) as usize
    } else {
        rng.below(sizes.small_max as u64 + 1) as usize
    };
    let len = len.min(max);
    out.clear();
    out.resize(len, 0);
    let mut stamp = [0u8; 16];
    stamp[0..2].copy_from_slice(&(src as u16).to_le_bytes());
    stamp[2..4].copy_from_slice(&(dst as u16).to_le_bytes());
    stamp[4..12].copy_from_slice(&k.to_le_bytes());
    stamp[12..16].copy_from_slice(&(len as u32).to_le_bytes());
    let n = len.min(16);
    out[..n].copy_from_slice(&stamp[..n]);
    rng.fill(&mut out[n..]);
}

struct Sim {
    cfg: SimConfig,
    net: Network,
    nodes: Vec<Transport>,
    /// `next_to_send[s][d]`: index of the next message from s to d.
    next_to_send: Vec<Vec<u64>>,
    /// `next_expected[d][s]`: index of the next message d must get from s.
    next_expected: Vec<Vec<u64>>,
    sent: u64,
    delivered: u64,
    bytes_delivered: u64,
    backpressure: u64,
    workload_rng: SplitMix64,
    next_tick: u64,
    scratch: Vec<u8>,
    expected: Vec<u8>,
}

fn mac_of(node: usize) -> MacAddr {
    MacAddr([0x02, 0x53, 0x4e, 0x00, (node >> 8) as u8, node as u8])
}

fn node_of(mac: &[u8]) -> Option<usize> {
    (mac.len() >= 6 && mac[..4] == [0x02, 0x53, 0x4e, 0x00]).then(|| usize::from(mac[4]) << 8 | usize::from(mac[5]))
}

/// Runs `cfg` to the end: every message sent and delivered, the segment
/// empty and nothing in flight.
pub fn run(cfg: &SimConfig) -> Result<SimReport, SimFailure> {
    let members: Vec<(NodeId, MacAddr)> = (0..cfg.nodes).map(|i| (NodeId(i as u16), mac_of(i))).collect();
    let mut key = [0u8; 32];
    SplitMix64::new(cfg.seed ^ 0x006b_6579).fill(&mut key);
    let mut nodes = Vec::new();
    for i in 0..cfg.nodes {
        let mut tc = TransportConfig::new(NodeId(i as u16), &members, key, mix(&[cfg.seed, i as u64, 0xe90c]) | 1);
        tc.cluster_id = 0x5137_e500;
        tc.mtu = cfg.mtu;
        tc.window = cfg.window;
        tc.send_buffer_frames = u32::from(cfg.window) * 4;
        tc.max_message_len = cfg.max_message_len;
        tc.rto_min_ns = cfg.rto_min_ns;
        tc.rto_initial_ns = cfg.rto_min_ns * 5;
        tc.rto_max_ns = cfg.rto_max_ns;
        tc.ack_delay_ns = cfg.rto_min_ns / 4;
        let t = Transport::new(&tc).map_err(|e| SimFailure {
            seed: cfg.seed,
            at_ns: 0,
            what: format!("bad transport config: {e}"),
        })?;
        nodes.push(t);
    }
    let n = cfg.nodes;
    let mut sim = Sim {
        cfg: cfg.clone(),
        net: Network::new(cfg.faults.clone(), mix(&[cfg.seed, 0x6e6574])),
        nodes,
        next_to_send: vec![vec![0; n]; n],
        next_expected: vec![vec![0; n]; n],
        sent: 0,
        delivered: 0,
        bytes_delivered: 0,
        backpressure: 0,
        workload_rng: SplitMix64::new(mix(&[cfg.seed, 0x776f726b])),
        next_tick: 0,
        scratch: Vec::new(),
        expected: Vec::new(),
    };
    sim.run_loop()
}

impl Sim {
    fn fail(&self, now: u64, what: String) -> SimFailure {
        SimFailure { seed: self.cfg.seed, at_ns: now, what }
    }

    fn run_loop(&mut self) -> Result<SimReport, SimFailure> {
        let mut now = 0u64;
        loop {
            let workload_active = self.sent < self.cfg.messages || self.cfg.reader_budget.is_some();
            let ticks = if workload_active { Some(self.next_tick) } else { None };
            let timers = self.nodes.iter().filter_map(Transport::next_deadline).min();
            let next = [self.net.next_arrival(), timers, ticks].into_iter().flatten().min();
            if self.finished() {
                break;
            }
            let Some(next) = next else {
                return Err(self.fail(now, format!("stalled: {} of {} delivered", self.delivered, self.cfg.messages)));
            };
            now = now.max(next);
            if now > self.cfg.deadline_ns {
                return Err(self.fail(
                    now,
                    format!("liveness: {} of {} messages delivered by the deadline", self.delivered, self.cfg.messages),
                ));
            }
            while let Some((to, frame)) = self.net.arrive(now) {
                self.nodes[to].on_frame(&frame, now);
                self.flush(to, now)?;
            }
            for i in 0..self.nodes.len() {
                if self.nodes[i].next_deadline().is_some_and(|d| d <= now) {
                    self.nodes[i].poll(now);
                    self.flush(i, now)?;
                }
            }
            if workload_active && self.next_tick <= now {
                self.tick(now)?;
                self.next_tick = now + self.cfg.send_interval_ns;
            }
        }
        let mut totals = Stats::default();
        for t in &self.nodes {
            add_stats(&mut totals, t.stats());
        }
        let bad = totals.dropped_bad_mac
            + totals.dropped_malformed
            + totals.dropped_non_member
            + totals.dropped_misdirected
            + totals.dropped_wrong_cluster
            + totals.dropped_out_of_window
            + totals.dropped_incompatible
            + totals.reassembly_errors;
        if bad != 0 {
            return Err(self.fail(now, format!("frames between honest nodes were refused: {totals:?}")));
        }
        Ok(SimReport {
            messages: self.delivered,
            bytes_delivered: self.bytes_delivered,
            virtual_ns: now,
            wire: self.net.counts,
            totals,
            backpressure: self.backpressure,
        })
    }

    fn finished(&self) -> bool {
        self.sent == self.cfg.messages
            && self.delivered == self.cfg.messages
            && self.net.in_flight() == 0
            && self.nodes.iter().all(|t| t.pending_events() == 0)
    }

    /// The workload: each node tries `burst` sends to random peers, and a
    /// slow reader takes its budget of messages.
    fn tick(&mut self, now: u64) -> Result<(), SimFailure> {
        let n = self.nodes.len();
        for src in 0..n {
            for _ in 0..self.cfg.burst {
                if self.sent >= self.cfg.messages {
                    break;
                }
                let dst = (src + 1 + self.workload_rng.below(n as u64 - 1) as usize) % n;
                let k = self.next_to_send[src][dst];
                let max = self.cfg.max_message_len as usize;
                message_bytes(self.cfg.seed, self.cfg.sizes, max, src, dst, k, &mut self.scratch);
                match self.nodes[src].send(NodeId(dst as u16), &self.scratch, now) {
                    Ok(id) => {
                        if id.0 != k + 1 {
                            return Err(self.fail(now, format!("n{src}->n{dst}: message {k} got id {}", id.0)));
                        }
                        self.next_to_send[src][dst] += 1;
                        self.sent += 1;
                    }
                    Err(SendError::Backpressure) => self.backpressure += 1,
                    Err(e) => return Err(self.fail(now, format!("n{src}->n{dst}: send refused: {e:?}"))),
                }
            }
            self.flush(src, now)?;
            if let Some(budget) = self.cfg.reader_budget {
                self.read(src, now, budget as usize)?;
                self.flush(src, now)?;
            }
        }
        Ok(())
    }

    /// Moves a node's frames onto the wire and, unless the reader is slow,
    /// takes its events.
    fn flush(&mut self, i: usize, now: u64) -> Result<(), SimFailure> {
        self.transmit_all(i, now);
        if self.cfg.reader_budget.is_none() {
            self.read(i, now, usize::MAX)?;
            // Taking messages may have queued a window update.
            self.transmit_all(i, now);
        }
        Ok(())
    }

    fn transmit_all(&mut self, i: usize, now: u64) {
        let n = self.nodes.len();
        let Self { nodes, net, .. } = self;
        nodes[i].drain_frames(|frame| {
            if let Some(to) = node_of(&frame[..6]).filter(|&to| to < n) {
                net.transmit(i, to, frame, now);
            }
        });
    }

    fn read(&mut self, i: usize, now: u64, budget: usize) -> Result<(), SimFailure> {
        for _ in 0..budget {
            let Some(event) = self.nodes[i].recv() else { break };
            match event {
                Event::Message(d) => {
                    let src = usize::from(d.from.0);
                    let k = self.next_expected[i][src];
                    let max = self.cfg.max_message_len as usize;
                    message_bytes(self.cfg.seed, self.cfg.sizes, max, src, i, k, &mut self.expected);
                    if d.id.0 != k + 1 || d.data != self.expected {
                        let got_k = d.data.get(4..12).map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])));
                        return Err(self.fail(
                            now,
                            format!(
                                "n{src}->n{i}: expected message {k} (id {}, {} bytes), got id {} ({} bytes, stamp k={got_k:?})",
                                k + 1,
                                self.expected.len(),
                                d.id.0,
                                d.data.len()
                            ),
                        ));
                    }
                    self.next_expected[i][src] += 1;
                    self.delivered += 1;
                    self.bytes_delivered += d.data.len() as u64;
                }
                Event::PeerUp { .. } => {}
                Event::PeerRestarted { peer, .. } => {
                    return Err(self.fail(now, format!("n{i}: {peer:?} reported restarted, but nothing restarted")));
                }
            }
        }
        Ok(())
    }
}

fn add_stats(total: &mut Stats, s: &Stats) {
    macro_rules! add {
        ($($f:ident),*) => { $( total.$f += s.$f; )* };
    }
    add!(
        messages_sent,
        send_backpressure,
        frames_sent,
        data_frames_sent,
        retransmitted,
        fast_retransmits,
        timeouts,
        acks_sent,
        hellos_sent,
        frames_accepted,
        dup_suppressed,
        messages_delivered,
        bytes_delivered,
        sessions_established,
        peer_restarts,
        messages_abandoned,
        reassembly_errors,
        dropped_malformed,
        dropped_wrong_cluster,
        dropped_non_member,
        dropped_misdirected,
        dropped_bad_mac,
        dropped_replay,
        dropped_no_session,
        dropped_out_of_window,
        dropped_incompatible
    );
}
