//! `transport-soak`: every node sends [`COUNT`] messages to every other
//! node through the fabric's transport service (`[cluster] fabric = true`)
//! and checks every message it receives. One message in [`LARGE_EVERY`] is
//! 4 KiB (three frames at MTU 1500), the others 19–63 bytes.
//!
//! A message carries the soak's port byte, the sender's id, a sequence
//! number, its length, a pattern derived from all three, and an FNV-1a
//! checksum of everything before it. The receiver checks, per sender, that
//! sequence numbers arrive as 0, 1, 2, … (a lower one is a duplicate, a
//! higher one is out of order), that the length and sender match and that
//! the checksum holds (else corrupt). When all is sent and received it
//! prints one line per sender and a summary:
//!
//! ```text
//! transport-soak: from 1: 100000 received, 0 out of order, 0 corrupt, 0 duplicate
//! selftest transport-soak: ok: …
//! ```

use alloc::vec;
use alloc::vec::Vec;

use sinter_config::ClusterConfig;

use crate::exec::{self, ServiceSpec};
use crate::fabric::transport::{self, ClientEvent, PORT_SOAK};
use crate::fabric::{now_ns, query, status};
use crate::kprintln;

/// Messages each node sends to each other node.
pub const COUNT: u64 = 100_000;
/// One message in this many is a 4 KiB page.
pub const LARGE_EVERY: u64 = 16;
const LARGE: usize = 4096;
const HEADER: usize = 1 + 2 + 8 + 4;
const CHECKSUM: usize = 4;
/// Progress lines this often.
const PROGRESS_NS: u64 = 10_000_000_000;

pub fn spawn(config: &ClusterConfig, node: u16, core: usize) {
    let peers: Vec<u16> = config.nodes.iter().map(|n| n.id).filter(|&id| id != node).collect();
    if peers.is_empty() {
        kprintln!("selftest transport-soak: FAILED: needs at least two nodes");
        return;
    }
    let arg = usize::from(node) | (config.nodes.len() << 16);
    exec::spawn_on(core, ServiceSpec { name: "selftest-transport-soak", entry: service, arg });
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, &b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// Length of message `seq` from `sender` (same formula on both ends).
fn length(sender: u16, seq: u64) -> usize {
    if seq % LARGE_EVERY == LARGE_EVERY - 1 {
        LARGE
    } else {
        HEADER + CHECKSUM + ((seq.wrapping_mul(7) + u64::from(sender)) % 45) as usize
    }
}

fn pattern(sender: u16, seq: u64, j: usize) -> u8 {
    (seq.wrapping_mul(31).wrapping_add(j as u64 * 7).wrapping_add(u64::from(sender) * 13)) as u8
}

fn fill(buf: &mut [u8], sender: u16, seq: u64) {
    let len = buf.len();
    buf[0] = PORT_SOAK;
    buf[1..3].copy_from_slice(&sender.to_le_bytes());
    buf[3..11].copy_from_slice(&seq.to_le_bytes());
    buf[11..15].copy_from_slice(&(len as u32).to_le_bytes());
    for (j, b) in buf[HEADER..len - CHECKSUM].iter_mut().enumerate() {
        *b = pattern(sender, seq, j);
    }
    let sum = fnv1a(&buf[..len - CHECKSUM]);
    buf[len - CHECKSUM..].copy_from_slice(&sum.to_le_bytes());
}

/// Sequence number of an intact message from `from`, or `None` if any
/// check fails.
fn check(data: &[u8], from: u16) -> Option<u64> {
    let len = data.len();
    if len < HEADER + CHECKSUM || data[0] != PORT_SOAK {
        return None;
    }
    let sum = u32::from_le_bytes(data[len - CHECKSUM..].try_into().ok()?);
    if fnv1a(&data[..len - CHECKSUM]) != sum {
        return None;
    }
    let sender = u16::from_le_bytes(data[1..3].try_into().ok()?);
    let seq = u64::from_le_bytes(data[3..11].try_into().ok()?);
    let claimed = u32::from_le_bytes(data[11..15].try_into().ok()?) as usize;
    let pattern_ok = data[HEADER..len - CHECKSUM].iter().enumerate().all(|(j, &b)| b == pattern(sender, seq, j));
    (sender == from && claimed == len && len == length(sender, seq) && pattern_ok).then_some(seq)
}

#[derive(Clone, Copy, Default)]
struct FromPeer {
    /// Next sequence number expected.
    next: u64,
    received: u64,
    out_of_order: u64,
    corrupt: u64,
    duplicate: u64,
}

fn service(arg: usize, _generation: u32) {
    let node = (arg & 0xffff) as u16;
    let nodes = (arg >> 16) as u16;
    let peers: Vec<u16> = (0..nodes).filter(|&p| p != node).collect();
    let Some(mut client) = transport::attach(PORT_SOAK) else {
        kprintln!("selftest transport-soak: FAILED: the transport service is not running");
        return;
    };
    kprintln!(
        "transport-soak: node {node} sends {COUNT} messages to each of {:?} (1 in {LARGE_EVERY} is {LARGE} bytes)",
        peers
    );
    let mut next_seq = vec![0u64; usize::from(nodes)];
    let mut from = vec![FromPeer::default(); usize::from(nodes)];
    let (mut refused, mut bytes_sent) = (0u64, 0u64);
    let started = now_ns();
    let mut progress_at = started;
    let mut turn = 0usize;
    loop {
        // Send round-robin over the peers while client frames are free.
        let mut blocked = 0;
        while blocked < peers.len() {
            let peer = peers[turn % peers.len()];
            turn += 1;
            let seq = next_seq[usize::from(peer)];
            if seq >= COUNT {
                blocked += 1;
                continue;
            }
            let len = length(node, seq);
            if client.try_send(peer, len, |buf| fill(buf, node, seq)).is_err() {
                break;
            }
            next_seq[usize::from(peer)] += 1;
            bytes_sent += len as u64;
            blocked = 0;
        }
        client.poll(&mut |event| match event {
            ClientEvent::Message { from: sender, data, .. } => {
                let Some(stats) = from.get_mut(usize::from(sender)) else { return };
                match check(data, sender) {
                    None => stats.corrupt += 1,
                    Some(seq) if seq < stats.next => stats.duplicate += 1,
                    Some(seq) => {
                        if seq > stats.next {
                            stats.out_of_order += 1;
                        }
                        stats.next = seq + 1;
                        stats.received += 1;
                    }
                }
            }
            ClientEvent::SendRefused { .. } => refused += 1,
            ClientEvent::PeerUp { .. } | ClientEvent::PeerRestarted { .. } => {}
        });
        let sent_all = peers.iter().all(|&p| next_seq[usize::from(p)] >= COUNT);
        let received_all = peers.iter().all(|&p| from[usize::from(p)].next >= COUNT);
        if sent_all && received_all {
            break;
        }
        let now = now_ns();
        if now.saturating_sub(progress_at) >= PROGRESS_NS {
            progress_at = now;
            let sent: u64 = peers.iter().map(|&p| next_seq[usize::from(p)]).sum();
            let received: u64 = peers.iter().map(|&p| from[usize::from(p)].received).sum();
            kprintln!("transport-soak: {} s: sent {sent}, received {received}", (now - started) / 1_000_000_000);
        }
        exec::yield_now();
    }
    let elapsed_ms = (now_ns() - started) / 1_000_000;
    let mut failed = refused != 0;
    for &p in &peers {
        let s = from[usize::from(p)];
        kprintln!(
            "transport-soak: from {p}: {} received, {} out of order, {} corrupt, {} duplicate",
            s.received,
            s.out_of_order,
            s.corrupt,
            s.duplicate
        );
        failed |= s.received != COUNT || s.out_of_order != 0 || s.corrupt != 0 || s.duplicate != 0;
    }
    report_status_over_ipc();
    let t = status::transport_view().unwrap_or_default().stats;
    kprintln!(
        "transport-soak: transport: {} frames sent, {} retransmitted, {} duplicates suppressed, {} dropped (malformed {}, bad mac {}, replay {}, no session {}, out of window {})",
        t.frames_sent,
        t.retransmitted,
        t.dup_suppressed,
        t.dropped_total(),
        t.dropped_malformed,
        t.dropped_bad_mac,
        t.dropped_replay,
        t.dropped_no_session,
        t.dropped_out_of_window
    );
    if failed {
        kprintln!("selftest transport-soak: FAILED ({refused} sends refused)");
    } else {
        kprintln!(
            "selftest transport-soak: ok: {} messages ({} KiB) sent to {} peers and {} received, every one once, in order, intact, in {elapsed_ms} ms",
            COUNT * peers.len() as u64,
            bytes_sent / 1024,
            peers.len(),
            COUNT * peers.len() as u64
        );
    }
}

/// Asks the cluster service for its status over IPC, as the management
/// plane does, and prints what came back.
fn report_status_over_ipc() {
    let Some(record) = query::attach_status().and_then(|mut client| client.query()) else {
        kprintln!("transport-soak: status over IPC: no answer");
        return;
    };
    let mut members = alloc::string::String::new();
    for m in &record.members {
        let state = match m.state {
            query::MEMBER_LOCAL => "local",
            query::MEMBER_ALIVE => "alive",
            query::MEMBER_DEAD => "dead",
            _ => "unknown",
        };
        members.push_str(&alloc::format!(" {}={state}", m.id));
    }
    let counter = |name: &str| record.transport(name).unwrap_or(u64::MAX);
    let dropped: u64 = query::TRANSPORT_COUNTERS
        .iter()
        .filter(|n| n.starts_with("dropped_"))
        .filter_map(|n| record.transport(n))
        .sum();
    kprintln!(
        "transport-soak: status over IPC: node {} formed={} members:{members}; messages_delivered {} retransmitted {} dropped {dropped}; nic rx_frames {} tx_frames {}",
        record.header.local,
        record.header.formed == 1,
        counter("messages_delivered"),
        counter("retransmitted"),
        record.nic("rx_frames").unwrap_or(u64::MAX),
        record.nic("tx_frames").unwrap_or(u64::MAX)
    );
}
