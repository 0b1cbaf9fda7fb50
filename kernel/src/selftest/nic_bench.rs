//! `nic-bench`: raw frames against transport messages through the same
//! fabric (`[cluster] fabric = true`, 2 nodes), for `cargo xtask bench
//! --only nic`. Node 0 drives, node 1 echoes and counts.
//!
//! - Round trips: [`ROUNDS`] raw ping-pongs of one 4 KiB-equivalent burst
//!   (three unauthenticated frames of EtherType 0x88B6 through the nic's
//!   management port, 1400 + 1400 + 1296 payload bytes, each echoed; a
//!   burst not fully back within [`RAW_RETRY_NS`] is sent again), then
//!   [`ROUNDS`] round trips of a 4096-byte transport message (sent to node
//!   1's bench user, echoed back).
//! - One way: [`BULK_FRAMES`] raw 1400-byte frames as fast as the nic takes
//!   them (node 1 counts what arrives; lost frames stay lost), then
//!   [`BULK_MESSAGES`] 4096-byte messages (reliable; node 1 reports its
//!   count through the transport, in order after the last one).
//!
//! Node 0 prints one `bench nic …: key=value` line per measurement (TSC
//! cycles and rates), which xtask parses. The mgmt service does not run in
//! this self-test: the bench owns the management port.

use alloc::vec::Vec;

use sinter_config::ClusterConfig;

use crate::arch::time;
use crate::exec::{self, ServiceSpec};
use crate::fabric::now_ns;
use crate::fabric::port::{attach_management, FramePort};
use crate::fabric::transport::{self, ClientEvent, TransportClient, PORT_BENCH};
use crate::kprintln;

/// Raw bench frames: IEEE 802 local experimental 2 (the transport has 1).
const ETHERTYPE_RAW: u16 = 0x88b6;
pub const ROUNDS: usize = 300;
pub const BULK_FRAMES: u64 = 6000;
pub const BULK_MESSAGES: u64 = 2000;
const BURST: [usize; 3] = [1400, 1400, 1296];
const MESSAGE: usize = 4096;
const RAW_RETRY_NS: u64 = 50_000_000;
const DEADLINE_NS: u64 = 600_000_000_000;

const RAW_PING: u8 = 1;
const RAW_PONG: u8 = 2;
const RAW_BULK: u8 = 3;
const RAW_QUERY: u8 = 4;
const RAW_COUNT: u8 = 5;
const MSG_PING: u8 = 11;
const MSG_PONG: u8 = 12;
const MSG_BULK: u8 = 13;
const MSG_QUERY: u8 = 14;
const MSG_COUNT: u8 = 15;

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

/// Node 1: echoes pings, counts bulk, answers queries; runs until the node stops.
fn echo(b: &mut Bench) {
    kprintln!("selftest nic-bench: node 1 echoing");
    let (mut raw_bulk, mut msg_bulk) = (0u32, 0u32);
    let (mut raws, mut msgs) = (Vec::new(), Vec::new());
    loop {
        b.recv_raw(&mut raws);
        for (kind, number, len) in raws.drain(..) {
            match kind {
                RAW_PING => b.send_raw(RAW_PONG, number, len - 14),
                RAW_BULK => raw_bulk += 1,
                RAW_QUERY => b.send_raw(RAW_COUNT, raw_bulk, 64),
                _ => {}
            }
        }
        b.recv_msgs(&mut msgs);
        for (kind, number) in msgs.drain(..) {
            match kind {
                MSG_PING => b.send_msg(MSG_PONG, number, MESSAGE),
                MSG_BULK => msg_bulk += 1,
                MSG_QUERY => b.send_msg(MSG_COUNT, msg_bulk, 8),
                _ => {}
            }
        }
        exec::yield_now();
    }
}

fn median_p99(samples: &mut [u64]) -> (u64, u64) {
    samples.sort_unstable();
    let at = |q: usize| samples.get((samples.len() * q / 100).min(samples.len().saturating_sub(1))).copied();
    (at(50).unwrap_or(0), at(99).unwrap_or(0))
}

fn drive(b: &mut Bench) {
    let start = now_ns();
    let late = || now_ns().saturating_sub(start) > DEADLINE_NS;
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
            if late() {
                kprintln!("selftest nic-bench: FAILED: node 1 never answered");
                return;
            }
            exec::yield_now();
        }
    }
    // (a) Raw 4 KiB-equivalent ping-pong.
    let mut raw_rtt = Vec::with_capacity(ROUNDS);
    let mut raw_resends = 0u64;
    for round in 0..ROUNDS as u32 {
        let t0 = time::rdtsc();
        let mut back = [false; 3];
        'round: loop {
            for (i, len) in BURST.iter().enumerate() {
                if !back[i] {
                    b.send_raw(RAW_PING, round * 4 + i as u32, *len);
                }
            }
            let sent = now_ns();
            while now_ns() - sent < RAW_RETRY_NS {
                b.recv_raw(&mut raws);
                for (kind, number, _) in raws.drain(..) {
                    if kind == RAW_PONG && number / 4 == round {
                        back[(number % 4).min(2) as usize] = true;
                    }
                }
                if back.iter().all(|&x| x) {
                    break 'round;
                }
                exec::yield_now();
            }
            raw_resends += 1;
            if late() {
                kprintln!("selftest nic-bench: FAILED: raw ping-pong stalled at round {round}");
                return;
            }
        }
        raw_rtt.push(time::rdtsc() - t0);
    }
    // (a) 4 KiB transport message round trip.
    let mut msg_rtt = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS as u32 {
        let t0 = time::rdtsc();
        b.send_msg(MSG_PING, round, MESSAGE);
        'wait: loop {
            b.recv_msgs(&mut msgs);
            if msgs.drain(..).any(|(k, n)| k == MSG_PONG && n == round) {
                break 'wait;
            }
            if late() {
                kprintln!("selftest nic-bench: FAILED: message round trip stalled at round {round}");
                return;
            }
            exec::yield_now();
        }
        msg_rtt.push(time::rdtsc() - t0);
    }
    let (raw_med, raw_p99) = median_p99(&mut raw_rtt);
    let (msg_med, msg_p99) = median_p99(&mut msg_rtt);
    kprintln!(
        "bench nic raw_rtt: rounds={ROUNDS} bytes=4096 frames=3 median_cycles={raw_med} p99_cycles={raw_p99} resends={raw_resends}"
    );
    kprintln!("bench nic msg_rtt: rounds={ROUNDS} bytes={MESSAGE} median_cycles={msg_med} p99_cycles={msg_p99}");
    // (b) One way: raw frames.
    let t0 = now_ns();
    for i in 0..BULK_FRAMES as u32 {
        b.send_raw(RAW_BULK, i, 1400);
        b.recv_raw(&mut raws);
        raws.clear();
    }
    let received = 'count: loop {
        b.send_raw(RAW_QUERY, 0, 64);
        let sent = now_ns();
        while now_ns() - sent < RAW_RETRY_NS {
            b.recv_raw(&mut raws);
            if let Some(&(_, n, _)) = raws.iter().find(|(k, _, _)| *k == RAW_COUNT) {
                break 'count n;
            }
            raws.clear();
            exec::yield_now();
        }
        if late() {
            kprintln!("selftest nic-bench: FAILED: no raw count from node 1");
            return;
        }
    };
    let raw_ns = now_ns() - t0;
    // (b) One way: 4 KiB messages.
    let t0 = now_ns();
    for i in 0..BULK_MESSAGES as u32 {
        b.send_msg(MSG_BULK, i, MESSAGE);
        b.recv_msgs(&mut msgs);
        msgs.clear();
    }
    b.send_msg(MSG_QUERY, 0, 8);
    let delivered = 'count: loop {
        b.recv_msgs(&mut msgs);
        if let Some(&(_, n)) = msgs.iter().find(|(k, _)| *k == MSG_COUNT) {
            break 'count n;
        }
        msgs.clear();
        if late() {
            kprintln!("selftest nic-bench: FAILED: no message count from node 1");
            return;
        }
        exec::yield_now();
    };
    let msg_ns = now_ns() - t0;
    let per_s = |n: u64, ns: u64| n * 1_000_000_000 / ns.max(1);
    kprintln!(
        "bench nic raw_oneway: sent={BULK_FRAMES} received={received} frame_bytes=1400 ns={raw_ns} frames_per_s={}",
        per_s(u64::from(received), raw_ns)
    );
    kprintln!(
        "bench nic msg_oneway: sent={BULK_MESSAGES} delivered={delivered} message_bytes={MESSAGE} ns={msg_ns} messages_per_s={}",
        per_s(u64::from(delivered), msg_ns)
    );
    if delivered == BULK_MESSAGES as u32 {
        kprintln!("selftest nic-bench: ok");
    } else {
        kprintln!("selftest nic-bench: FAILED: {delivered} of {BULK_MESSAGES} messages delivered");
    }
}
