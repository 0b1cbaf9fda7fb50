//! `nic-bench`: raw frames against transport messages through the same
//! fabric (`[cluster] fabric = true`, 2 nodes), for `cargo xtask bench
//! --only nic`. Node 0 drives, node 1 echoes and counts.
//!
//! - Round trips, three kinds, interleaved in [`BLOCKS`] blocks of
//!   [`PER_BLOCK`] rounds of each kind (the order rotated per block) so that
//!   host-load drift hits all three alike:
//!   - raw 4 KiB ping-pong (the baseline): a burst of three unauthenticated
//!     frames of EtherType 0x88B6 through the nic's management port (1400 +
//!     1400 + 1296 payload bytes); node 1 answers only once all three have
//!     arrived, with three pongs of the same sizes. Pings whose pongs are
//!     not back within [`RAW_RETRY_NS`] are sent again; node 1 answers a
//!     ping of a round it has already answered with that one pong again.
//!   - raw pipelined (for reference only): the same burst, each frame
//!     echoed by node 1 as it arrives, so the echoes overlap the burst.
//!   - a 4096-byte transport message to node 1's bench user, echoed back
//!     as a 4096-byte message.
//! - One way, [`PASSES`] times each, alternating: [`BULK_FRAMES`] raw
//!   1400-byte frames as fast as the nic takes them (node 1 counts what
//!   arrives; lost frames stay lost), then [`BULK_MESSAGES`] 4096-byte
//!   messages (reliable; node 1 reports its count through the transport, in
//!   order after the last one). The sums over the passes are reported.
//!
//! Node 0 prints one `bench nic …: key=value` line per measurement (TSC
//! cycles and rates), which xtask parses. The mgmt service does not run in
//! this self-test: the bench owns the management port.

use alloc::vec::Vec;

use sinter_config::ClusterConfig;

use crate::arch::time;
use crate::exec::{self, ServiceSpec};
use crate::fabric::port::{attach_management, FramePort};
use crate::fabric::transport::{self, ClientEvent, TransportClient, PORT_BENCH};
use crate::fabric::{now_ns, sleep_until_ns};
use crate::kprintln;

/// Raw bench frames: IEEE 802 local experimental 2 (the transport has 1).
const ETHERTYPE_RAW: u16 = 0x88b6;
/// Blocks of round trips; each has [`PER_BLOCK`] rounds of every kind.
pub const BLOCKS: usize = 30;
pub const PER_BLOCK: usize = 10;
/// Rounds of each kind in all.
pub const ROUNDS: usize = BLOCKS * PER_BLOCK;
/// One-way passes (raw, then messages), each of the sizes below.
pub const PASSES: u32 = 2;
pub const BULK_FRAMES: u32 = 6000;
pub const BULK_MESSAGES: u32 = 2000;
const BURST: [usize; 3] = [1400, 1400, 1296];
const MESSAGE: usize = 4096;
const RAW_RETRY_NS: u64 = 50_000_000;
const DEADLINE_NS: u64 = 600_000_000_000;
/// Longest a waiting bench sleeps before it looks at its deadlines again.
const WAIT_MAX_NS: u64 = 10_000_000;

const RAW_PING: u8 = 1;
const RAW_PONG: u8 = 2;
const RAW_BULK: u8 = 3;
const RAW_QUERY: u8 = 4;
const RAW_COUNT: u8 = 5;
/// Node 1's answer to a query, after the count: µs from the first to the
/// last bulk frame of the pass it received (its own clock).
const RAW_SPAN: u8 = 6;
const RAW_ECHO: u8 = 6;
const RAW_ECHOED: u8 = 7;
const MSG_PING: u8 = 11;
const MSG_PONG: u8 = 12;
const MSG_BULK: u8 = 13;
const MSG_QUERY: u8 = 14;
const MSG_COUNT: u8 = 15;
const MSG_SPAN: u8 = 16;

struct Plan {
    node: u16,
    mac: [u8; 6],
    peer_mac: [u8; 6],
}

static PLAN: spin::Mutex<Option<Plan>> = spin::Mutex::new(None);

pub fn spawn(config: &ClusterConfig, node: u16, core: usize) {
    let (Some(me), Some(peer)) = (config.node(node), config.node(if node == 0 { 1 } else { 0 })) else {
        kprintln!("selftest nic-bench: FAILED: needs nodes 0 and 1");
        return;
    };
    if node > 1 {
        return;
    }
    *PLAN.lock() = Some(Plan { node, mac: me.mac.0, peer_mac: peer.mac.0 });
    exec::spawn_on(core, ServiceSpec { name: "selftest-nic-bench", entry: service, arg: 0 });
}

struct Bench {
    raw: FramePort,
    client: TransportClient,
    mac: [u8; 6],
    peer_mac: [u8; 6],
    peer: u16,
}

/// A raw frame: header, kind, a 32-bit number, then `len` payload bytes.
fn raw_frame(buf: &mut [u8], dst: [u8; 6], src: [u8; 6], kind: u8, number: u32) {
    buf[0..6].copy_from_slice(&dst);
    buf[6..12].copy_from_slice(&src);
    buf[12..14].copy_from_slice(&ETHERTYPE_RAW.to_be_bytes());
    buf[14] = kind;
    buf[15..19].copy_from_slice(&number.to_le_bytes());
    for (i, b) in buf[19..].iter_mut().enumerate() {
        *b = (i as u8) ^ (number as u8);
    }
}

/// Kind and number of a raw bench frame.
fn parse_raw(frame: &[u8]) -> Option<(u8, u32)> {
    if frame.len() < 19 || frame[12..14] != ETHERTYPE_RAW.to_be_bytes() {
        return None;
    }
    Some((frame[14], u32::from_le_bytes([frame[15], frame[16], frame[17], frame[18]])))
}

impl Bench {
    fn send_raw(&mut self, kind: u8, number: u32, payload: usize) {
        let (dst, src) = (self.peer_mac, self.mac);
        while self.raw.transmit(14 + payload, |buf| raw_frame(buf, dst, src, kind, number)).is_err() {
            exec::yield_now();
        }
    }

    /// Raw frames received: (kind, number, length).
    fn recv_raw(&mut self, out: &mut Vec<(u8, u32, usize)>) {
        while self.raw.receive(|f| {
            if let Some((kind, number)) = parse_raw(f) {
                out.push((kind, number, f.len()));
            }
        }) {}
    }

    fn send_msg(&mut self, kind: u8, number: u32, len: usize) {
        let peer = self.peer;
        loop {
            let sent = self.client.try_send(peer, len, |buf| {
                buf[0] = PORT_BENCH;
                buf[1] = kind;
                buf[2..6].copy_from_slice(&number.to_le_bytes());
            });
            if sent.is_ok() {
                return;
            }
            self.client.poll(&mut |_| {});
            self.wait(now_ns() + WAIT_MAX_NS);
        }
    }

    /// Sleeps until a raw frame or a transport message comes for this
    /// bench, or `deadline_ns`: a waiting bench must not keep its core
    /// busy, or the fabric services sharing it could never let it halt.
    fn wait(&mut self, deadline_ns: u64) {
        if self.raw.arm_if_idle() && self.client.arm_if_idle() {
            sleep_until_ns(deadline_ns);
        } else {
            exec::yield_now();
        }
    }

    /// Messages received: (kind, number).
    fn recv_msgs(&mut self, out: &mut Vec<(u8, u32)>) {
        self.client.poll(&mut |event| {
            if let ClientEvent::Message { data, .. } = event {
                if data.len() >= 6 && data[0] == PORT_BENCH {
                    out.push((data[1], u32::from_le_bytes([data[2], data[3], data[4], data[5]])));
                }
            }
        });
    }
}

fn service(_arg: usize, _generation: u32) {
    let Some(plan) = PLAN.lock().take() else { return };
    let Some(raw) = attach_management() else {
        kprintln!("selftest nic-bench: FAILED: no management port (is the fabric on?)");
        return;
    };
    let Some(client) = transport::attach(PORT_BENCH) else {
        kprintln!("selftest nic-bench: FAILED: the transport service is not running");
        return;
    };
    let mut bench = Bench { raw, client, mac: plan.mac, peer_mac: plan.peer_mac, peer: 1 - plan.node };
    if plan.node == 1 {
        echo(&mut bench);
    } else {
        drive(&mut bench);
    }
}

/// Where this core's cycles went since the last [`Profile::report`]: one
/// `bench nic profile:` line per one-way pass on each node, so the cost
/// of each service on the sender and the receiver is on record beside
/// the rates.
struct Profile {
    at: u64,
    services: Vec<(&'static str, u64)>,
    idle: u64,
    rounds: u64,
    nic_irqs: u64,
}

impl Profile {
    fn start() -> Self {
        let (services, idle, rounds) = exec::cycles_by_service();
        for (cycles, items) in &transport::PHASES {
            cycles.store(0, core::sync::atomic::Ordering::Relaxed);
            items.store(0, core::sync::atomic::Ordering::Relaxed);
        }
        Self { at: time::rdtsc(), services, idle, rounds, nic_irqs: crate::arch::trap::nic_irqs() }
    }

    fn report(&mut self, node: u16, what: &str, pass: u32) {
        // The transport's loop, phase by phase: kilocycles, items handled,
        // cycles per item since the last start (one pass).
        let mut phases = alloc::string::String::new();
        for (name, (cycles, items)) in transport::PHASE_NAMES.iter().zip(&transport::PHASES) {
            let cycles = cycles.swap(0, core::sync::atomic::Ordering::Relaxed);
            let items = items.swap(0, core::sync::atomic::Ordering::Relaxed);
            let _ = core::fmt::Write::write_fmt(
                &mut phases,
                format_args!(" {name}={}k/{items}/{}", cycles / 1000, cycles / items.max(1)),
            );
        }
        let now = Self::start();
        let total = now.at.wrapping_sub(self.at).max(1);
        let mut line = alloc::string::String::new();
        for (name, cycles) in &now.services {
            let before = self.services.iter().find(|(n, _)| n == name).map_or(0, |(_, c)| *c);
            let used = cycles.saturating_sub(before);
            let _ = core::fmt::Write::write_fmt(&mut line, format_args!(" {name}={}", used * 1000 / total));
        }
        kprintln!(
            "bench nic profile: node={node} after={what} pass={pass} mcycles={} rounds={} nic_irqs={} permille:{line} halted={}",
            total / 1_000_000,
            now.rounds.saturating_sub(self.rounds),
            now.nic_irqs.saturating_sub(self.nic_irqs),
            now.idle.saturating_sub(self.idle) * 1000 / total
        );
        kprintln!("bench nic phases: node={node} after={what} pass={pass} kcycles/items/per_item:{phases}");
        *self = now;
    }
}

/// When the first and the last bulk frame of a pass arrived at node 1.
#[derive(Clone, Copy, Default)]
struct Span {
    first: Option<u64>,
    last: u64,
}

impl Span {
    fn arrived(&mut self, now: u64) {
        self.first.get_or_insert(now);
        self.last = now;
    }

    /// First to last arrival in µs (fits the 24 bits of a tagged number
    /// for passes up to 16 s).
    fn micros(&self) -> u32 {
        let ns = self.first.map_or(0, |first| self.last.saturating_sub(first));
        (ns / 1000).min(0xff_ffff) as u32
    }
}

/// A one-way pass and a count or index within it, in one frame number.
fn tag(pass: u32, n: u32) -> u32 {
    (pass << 24) | (n & 0xff_ffff)
}

fn untag(number: u32) -> (usize, u32) {
    ((number >> 24) as usize, number & 0xff_ffff)
}

/// Node 1's side of the raw 4 KiB ping-pong: the pings of the current
/// round it has, and whether it has answered the round.
#[derive(Default)]
struct PingPong {
    round: Option<u32>,
    have: [bool; BURST.len()],
    answered: bool,
}

impl PingPong {
    /// Ping `index` of `round` arrived: the pongs to send now, as a mask of
    /// burst indices (all three once the burst is complete; that one again
    /// for a round already answered, whose pong was lost; none otherwise).
    fn ping(&mut self, round: u32, index: usize) -> [bool; BURST.len()] {
        let mut send = [false; BURST.len()];
        match self.round {
            Some(r) if r > round => return send, // a stale copy of an earlier round
            Some(r) if r == round => {}
            _ => *self = PingPong { round: Some(round), ..PingPong::default() },
        }
        if self.answered {
            send[index] = true;
        } else {
            self.have[index] = true;
            if self.have.iter().all(|&h| h) {
                self.answered = true;
                send = [true; BURST.len()];
            }
        }
        send
    }
}

/// Node 1: answers pings, counts bulk, answers queries; runs until the node stops.
fn echo(b: &mut Bench) {
    kprintln!("selftest nic-bench: node 1 echoing");
    let (mut raw_bulk, mut msg_bulk) = ([0u32; PASSES as usize], [0u32; PASSES as usize]);
    // Per pass: when the first and the last bulk frame or message arrived.
    let (mut raw_seen, mut msg_seen) = ([Span::default(); PASSES as usize], [Span::default(); PASSES as usize]);
    let (mut raws, mut msgs) = (Vec::new(), Vec::new());
    let mut pingpong = PingPong::default();
    let mut profile = Profile::start();
    let (mut raw_reported, mut msg_reported) = ([false; PASSES as usize], [false; PASSES as usize]);
    loop {
        b.recv_raw(&mut raws);
        let idle = raws.is_empty();
        for (kind, number, len) in raws.drain(..) {
            match kind {
                RAW_PING => {
                    let (round, index) = (number / 4, (number % 4) as usize);
                    if index >= BURST.len() {
                        continue;
                    }
                    let send = pingpong.ping(round, index);
                    for (i, len) in BURST.iter().enumerate() {
                        if send[i] {
                            b.send_raw(RAW_PONG, round * 4 + i as u32, *len);
                        }
                    }
                }
                RAW_ECHO => b.send_raw(RAW_ECHOED, number, len - 14),
                RAW_BULK => {
                    let pass = untag(number).0;
                    if let (Some(n), Some(seen)) = (raw_bulk.get_mut(pass), raw_seen.get_mut(pass)) {
                        if seen.first.is_none() {
                            profile = Profile::start();
                        }
                        *n += 1;
                        seen.arrived(now_ns());
                    }
                }
                RAW_QUERY => {
                    if let Some(done) = raw_reported.get_mut(number as usize).filter(|d| !**d) {
                        *done = true;
                        profile.report(1, "raw_oneway", number);
                    }
                    let count = raw_bulk.get(number as usize).copied().unwrap_or(0);
                    let span = raw_seen.get(number as usize).map_or(0, Span::micros);
                    b.send_raw(RAW_COUNT, tag(number, count), 64);
                    b.send_raw(RAW_SPAN, tag(number, span), 64);
                }
                _ => {}
            }
        }
        b.recv_msgs(&mut msgs);
        let idle = idle && msgs.is_empty();
        for (kind, number) in msgs.drain(..) {
            match kind {
                MSG_PING => b.send_msg(MSG_PONG, number, MESSAGE),
                MSG_BULK => {
                    let pass = untag(number).0;
                    if let (Some(n), Some(seen)) = (msg_bulk.get_mut(pass), msg_seen.get_mut(pass)) {
                        if seen.first.is_none() {
                            profile = Profile::start();
                        }
                        *n += 1;
                        seen.arrived(now_ns());
                    }
                }
                MSG_QUERY => {
                    if let Some(done) = msg_reported.get_mut(number as usize).filter(|d| !**d) {
                        *done = true;
                        profile.report(1, "msg_oneway", number);
                    }
                    let count = msg_bulk.get(number as usize).copied().unwrap_or(0);
                    let span = msg_seen.get(number as usize).map_or(0, Span::micros);
                    b.send_msg(MSG_COUNT, tag(number, count), 8);
                    b.send_msg(MSG_SPAN, tag(number, span), 8);
                }
                _ => {}
            }
        }
        if idle {
            b.wait(now_ns() + WAIT_MAX_NS);
        } else {
            exec::yield_now();
        }
    }
}

fn median_p99(samples: &mut [u64]) -> (u64, u64) {
    samples.sort_unstable();
    let at = |q: usize| samples.get((samples.len() * q / 100).min(samples.len().saturating_sub(1))).copied();
    (at(50).unwrap_or(0), at(99).unwrap_or(0))
}

/// Node 0's deadline for the whole bench, from `start`.
fn late(start: u64) -> bool {
    now_ns().saturating_sub(start) > DEADLINE_NS
}

/// One raw round trip of the burst (pings of `ping`, answers of `pong`):
/// cycles from the first ping sent to the last answer back, resending the
/// pings whose answers are missing after [`RAW_RETRY_NS`]. `None` past the
/// deadline.
fn raw_round(
    b: &mut Bench,
    (ping, pong): (u8, u8),
    round: u32,
    resends: &mut u64,
    raws: &mut Vec<(u8, u32, usize)>,
    start: u64,
) -> Option<u64> {
    let t0 = time::rdtsc();
    let mut back = [false; BURST.len()];
    loop {
        for (i, len) in BURST.iter().enumerate() {
            if !back[i] {
                b.send_raw(ping, round * 4 + i as u32, *len);
            }
        }
        let sent = now_ns();
        while now_ns() - sent < RAW_RETRY_NS {
            b.recv_raw(raws);
            for (kind, number, _) in raws.drain(..) {
                if kind == pong && number / 4 == round {
                    if let Some(slot) = back.get_mut((number % 4) as usize) {
                        *slot = true;
                    }
                }
            }
            if back.iter().all(|&x| x) {
                return Some(time::rdtsc() - t0);
            }
            b.wait(sent + RAW_RETRY_NS);
        }
        *resends += 1;
        if late(start) {
            return None;
        }
    }
}

/// One 4096-byte message round trip: cycles. `None` past the deadline.
fn msg_round(b: &mut Bench, round: u32, msgs: &mut Vec<(u8, u32)>, start: u64) -> Option<u64> {
    let t0 = time::rdtsc();
    b.send_msg(MSG_PING, round, MESSAGE);
    loop {
        b.recv_msgs(msgs);
        if msgs.drain(..).any(|(k, n)| k == MSG_PONG && n == round) {
            return Some(time::rdtsc() - t0);
        }
        if late(start) {
            return None;
        }
        b.wait(now_ns() + WAIT_MAX_NS);
    }
}

/// What one one-way pass measured.
#[derive(Clone, Copy, Default)]
struct Pass {
    /// Frames or messages node 1 counted.
    received: u64,
    /// ns on node 0 from the first send to node 1's count back.
    ns: u64,
    /// µs on node 1 from the first to the last arrival.
    receiver_us: u64,
}

/// One-way raw pass. `None` past the deadline.
fn raw_oneway(b: &mut Bench, pass: u32, raws: &mut Vec<(u8, u32, usize)>, start: u64) -> Option<Pass> {
    let t0 = now_ns();
    for i in 0..BULK_FRAMES {
        b.send_raw(RAW_BULK, tag(pass, i), 1400);
        b.recv_raw(raws);
        raws.clear();
    }
    let (mut count, mut span) = (None, None);
    loop {
        b.send_raw(RAW_QUERY, pass, 64);
        let sent = now_ns();
        while now_ns() - sent < RAW_RETRY_NS {
            b.recv_raw(raws);
            for &(kind, number, _) in raws.iter().filter(|(_, n, _)| untag(*n).0 == pass as usize) {
                match kind {
                    RAW_COUNT => count = Some(untag(number).1),
                    RAW_SPAN => span = Some(untag(number).1),
                    _ => {}
                }
            }
            raws.clear();
            if let (Some(n), Some(us)) = (count, span) {
                return Some(Pass { received: n.into(), ns: now_ns() - t0, receiver_us: us.into() });
            }
            b.wait(sent + RAW_RETRY_NS);
        }
        if late(start) {
            return None;
        }
    }
}

/// One-way message pass. `None` past the deadline.
fn msg_oneway(b: &mut Bench, pass: u32, msgs: &mut Vec<(u8, u32)>, start: u64) -> Option<Pass> {
    let t0 = now_ns();
    for i in 0..BULK_MESSAGES {
        b.send_msg(MSG_BULK, tag(pass, i), MESSAGE);
        b.recv_msgs(msgs);
        msgs.clear();
    }
    b.send_msg(MSG_QUERY, pass, 8);
    let (mut count, mut span) = (None, None);
    loop {
        b.recv_msgs(msgs);
        for &(kind, number) in msgs.iter().filter(|(_, n)| untag(*n).0 == pass as usize) {
            match kind {
                MSG_COUNT => count = Some(untag(number).1),
                MSG_SPAN => span = Some(untag(number).1),
                _ => {}
            }
        }
        msgs.clear();
        if let (Some(n), Some(us)) = (count, span) {
            return Some(Pass { received: n.into(), ns: now_ns() - t0, receiver_us: us.into() });
        }
        if late(start) {
            return None;
        }
        b.wait(now_ns() + WAIT_MAX_NS);
    }
}

/// The three round-trip kinds, in the order of their results.
const RAW_4K: usize = 0;
const RAW_PIPELINED: usize = 1;
const KIND_NAMES: [&str; 3] = ["raw 4 KiB ping-pong", "raw pipelined echo", "message round trip"];

fn drive(b: &mut Bench) {
    let start = now_ns();
    let (mut raws, mut msgs) = (Vec::new(), Vec::new());
    // Warm-up: a message round trip, resent until node 1's bench user is up
    // (a message for a user not attached yet is dropped as undeliverable).
    'warm: loop {
        b.send_msg(MSG_PING, u32::MAX, MESSAGE);
        let sent = now_ns();
        while now_ns() - sent < 500_000_000 {
            b.recv_msgs(&mut msgs);
            if msgs.drain(..).any(|(k, n)| k == MSG_PONG && n == u32::MAX) {
                break 'warm;
            }
            if late(start) {
                kprintln!("selftest nic-bench: FAILED: node 1 never answered");
                return;
            }
            b.wait(sent + 500_000_000);
        }
    }
    // (a) Round trips, the three kinds interleaved block by block, the
    // order rotated per block.
    let mut rtt: [Vec<u64>; 3] = core::array::from_fn(|_| Vec::with_capacity(ROUNDS));
    let mut resends = [0u64; 3];
    for block in 0..BLOCKS {
        for k in 0..3 {
            let kind = (block + k) % 3;
            for _ in 0..PER_BLOCK {
                let round = rtt[kind].len() as u32;
                let cycles = match kind {
                    RAW_4K => raw_round(b, (RAW_PING, RAW_PONG), round, &mut resends[kind], &mut raws, start),
                    RAW_PIPELINED => raw_round(b, (RAW_ECHO, RAW_ECHOED), round, &mut resends[kind], &mut raws, start),
                    _ => msg_round(b, round, &mut msgs, start), // the message round trip
                };
                let Some(cycles) = cycles else {
                    kprintln!("selftest nic-bench: FAILED: {} stalled at round {round}", KIND_NAMES[kind]);
                    return;
                };
                rtt[kind].push(cycles);
            }
        }
    }
    let [(raw_med, raw_p99), (pipe_med, pipe_p99), (msg_med, msg_p99)] = rtt.each_mut().map(|r| median_p99(r));
    let (raw_resends, pipe_resends) = (resends[RAW_4K], resends[RAW_PIPELINED]);
    kprintln!(
        "bench nic raw_rtt: rounds={ROUNDS} blocks={BLOCKS} bytes=4096 frames=3 answer=after_burst median_cycles={raw_med} p99_cycles={raw_p99} resends={raw_resends}"
    );
    kprintln!(
        "bench nic raw_pipelined_rtt: rounds={ROUNDS} blocks={BLOCKS} bytes=4096 frames=3 answer=per_frame median_cycles={pipe_med} p99_cycles={pipe_p99} resends={pipe_resends}"
    );
    kprintln!(
        "bench nic msg_rtt: rounds={ROUNDS} blocks={BLOCKS} bytes={MESSAGE} median_cycles={msg_med} p99_cycles={msg_p99}"
    );
    // (b) One way, raw then messages, PASSES times; sums over the passes.
    let (mut raw, mut msg) = (Pass::default(), Pass::default());
    let mut profile = Profile::start();
    for pass in 0..PASSES {
        let Some(p) = raw_oneway(b, pass, &mut raws, start) else {
            kprintln!("selftest nic-bench: FAILED: no raw count from node 1 (pass {pass})");
            return;
        };
        raw = Pass {
            received: raw.received + p.received,
            ns: raw.ns + p.ns,
            receiver_us: raw.receiver_us + p.receiver_us,
        };
        profile.report(0, "raw_oneway", pass);
        let Some(p) = msg_oneway(b, pass, &mut msgs, start) else {
            kprintln!("selftest nic-bench: FAILED: no message count from node 1 (pass {pass})");
            return;
        };
        msg = Pass {
            received: msg.received + p.received,
            ns: msg.ns + p.ns,
            receiver_us: msg.receiver_us + p.receiver_us,
        };
        profile.report(0, "msg_oneway", pass);
    }
    let per_s = |n: u64, ns: u64| n * 1_000_000_000 / ns.max(1);
    let (frames_sent, messages_sent) = (u64::from(PASSES * BULK_FRAMES), u64::from(PASSES * BULK_MESSAGES));
    // Two rates each: over node 0's time from the first send to the count
    // (includes the query's round trip, and a 50 ms retry if a raw query is
    // lost), and over node 1's time from the first to the last arrival, the
    // rate the path carried, which the ratio uses.
    kprintln!(
        "bench nic raw_oneway: passes={PASSES} sent={frames_sent} received={} frame_bytes=1400 ns={} frames_per_s={} receiver_us={} receiver_frames_per_s={}",
        raw.received,
        raw.ns,
        per_s(raw.received, raw.ns),
        raw.receiver_us,
        per_s(raw.received, raw.receiver_us * 1000)
    );
    kprintln!(
        "bench nic msg_oneway: passes={PASSES} sent={messages_sent} delivered={} message_bytes={MESSAGE} ns={} messages_per_s={} receiver_us={} receiver_messages_per_s={}",
        msg.received,
        msg.ns,
        per_s(msg.received, msg.ns),
        msg.receiver_us,
        per_s(msg.received, msg.receiver_us * 1000)
    );
    let delivered = msg.received;
    if delivered == messages_sent {
        // The cluster service publishes its snapshot every 100 ms: wait for
        // one that includes the run, so retransmissions and drops are on
        // record next to the figures.
        let published = now_ns();
        while now_ns() - published < 300_000_000 {
            sleep_until_ns(published + 300_000_000);
        }
        if let Some(status) = crate::fabric::status::snapshot() {
            kprintln!("nic-bench: status after the run: {status}");
        }
        kprintln!("selftest nic-bench: ok");
    } else {
        kprintln!("selftest nic-bench: FAILED: {delivered} of {messages_sent} messages delivered");
    }
}
