//! `nic-ping`: raw frames between node 0 and node 1 through the real NIC
//! drivers and the harness switch. Node 0 sends `COUNT` numbered frames
//! (EtherType 0x88B5, a pattern derived from the sequence number and an
//! FNV-1a checksum) one at a time to node 1's MAC; node 1 checks each and
//! echoes it; node 0 checks every echo and retransmits a frame whose echo
//! does not come back in time (lost frames, or node 1 still booting). A
//! `done` frame, acknowledged, ends node 1's loop. Both print one line.

use alloc::vec;
use alloc::vec::Vec;
use core::cell::Cell;

use sinter_config::{ClusterConfig, NicModel};
use spin::Mutex;

use crate::arch::time;
use crate::exec::{self, ServiceSpec};
use crate::kprintln;
use crate::nic::{self, FrameNic, Mac, Nic, NicError};

const ETHERTYPE: u16 = 0x88b5;
const MAGIC: &[u8; 4] = b"SNPG";
const COUNT: u32 = 1000;
const PATTERN: usize = 32;
const PAYLOAD: usize = 16 + PATTERN + 4;
const FRAME: usize = 14 + PAYLOAD;
const KIND_REQUEST: u8 = 1;
const KIND_ECHO: u8 = 2;
const KIND_DONE: u8 = 3;
const KIND_DONE_ACK: u8 = 4;
/// Wait for an echo before sending again, once the peer has answered.
const RETRANSMIT_NS: u64 = 20_000_000;
/// Same, while the peer may still be booting.
const PROBE_NS: u64 = 50_000_000;
/// The whole test on either node, from when its NIC is up.
const DEADLINE_NS: u64 = 60_000_000_000;
/// Node 1 keeps answering `done` this long after the first one.
const LINGER_NS: u64 = 1_000_000_000;

struct Plan {
    node: u16,
    model: NicModel,
    mac: [u8; 6],
    peer: [u8; 6],
}

static PLAN: Mutex<Option<Plan>> = Mutex::new(None);

pub fn spawn(config: &ClusterConfig, node: u16, core: usize) {
    let (Some(me), peer_id) = (config.node(node), if node == 0 { 1 } else { 0 }) else { return };
    if node > 1 {
        kprintln!("selftest nic-ping: node {node} takes no part (nodes 0 and 1 do)");
        return;
    }
    let Some(peer) = config.node(peer_id) else {
        kprintln!("selftest nic-ping: FAILED: needs nodes 0 and 1 in the config");
        return;
    };
    *PLAN.lock() = Some(Plan { node, model: me.nic, mac: me.mac.0, peer: peer.mac.0 });
    exec::spawn_on(core, ServiceSpec { name: "selftest-nic-ping", entry: service, arg: 0 });
}

fn service(_arg: usize, _generation: u32) {
    let Some(plan) = PLAN.lock().take() else { return };
    let interrupt = (crate::arch::NIC_VECTOR, crate::arch::apic::id());
    let mut nic = match nic::open(plan.model, plan.mac, interrupt) {
        Ok((nic, _)) => nic,
        Err(why) => {
            kprintln!("selftest nic-ping: FAILED: NIC not usable: {why:?}");
            return;
        }
    };
    if plan.node == 0 {
        pinger(&mut nic, &plan);
    } else {
        echoer(&mut nic, &plan);
    }
    if let Some(counters) = nic.counters() {
        kprintln!("nic: device counters: {counters}");
    }
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, &b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

fn build(dst: [u8; 6], src: [u8; 6], kind: u8, seq: u32, total: u32) -> [u8; FRAME] {
    let mut f = [0u8; FRAME];
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&ETHERTYPE.to_be_bytes());
    let p = &mut f[14..];
    p[0..4].copy_from_slice(MAGIC);
    p[4] = kind;
    p[8..12].copy_from_slice(&seq.to_le_bytes());
    p[12..16].copy_from_slice(&total.to_le_bytes());
    for (j, b) in p[16..16 + PATTERN].iter_mut().enumerate() {
        *b = (seq.wrapping_mul(31).wrapping_add(j as u32 * 7)) as u8;
    }
    let sum = fnv1a(&p[..16 + PATTERN]);
    p[16 + PATTERN..PAYLOAD].copy_from_slice(&sum.to_le_bytes());
    f
}

/// A checked frame: kind, sequence number, total, source MAC.
type Parsed = (u8, u32, u32, [u8; 6]);

/// A checked frame of ours. `Err(())` for a frame of our EtherType that
/// fails a check; `Ok(None)` for other traffic.
fn parse(frame: &[u8], me: [u8; 6]) -> Result<Option<Parsed>, ()> {
    if frame.len() < 14 || frame[12..14] != ETHERTYPE.to_be_bytes() || frame[0..6] != me {
        return Ok(None);
    }
    if frame.len() < FRAME || &frame[14..18] != MAGIC {
        return Err(());
    }
    let p = &frame[14..FRAME];
    let seq = u32::from_le_bytes([p[8], p[9], p[10], p[11]]);
    let total = u32::from_le_bytes([p[12], p[13], p[14], p[15]]);
    let mut src = [0u8; 6];
    src.copy_from_slice(&frame[6..12]);
    let expected = build(me, src, p[4], seq, total);
    if frame[..FRAME] != expected[..] {
        return Err(());
    }
    Ok(Some((p[4], seq, total, src)))
}

/// Sends, polling receive (into `sink`) while the transmit ring is full.
fn send(nic: &mut Nic, frame: &[u8], sink: &mut dyn FnMut(&[u8])) -> Result<(), NicError> {
    let start = time::rdtsc();
    loop {
        match nic.transmit(frame) {
            Err(NicError::TxFull) if time::ns_since(start) < 1_000_000_000 => {
                nic.receive(sink);
            }
            other => return other,
        }
    }
}

fn pinger(nic: &mut Nic, plan: &Plan) {
    let start = time::rdtsc();
    let (me, peer) = (plan.mac, plan.peer);
    let mut probes = 0u64;
    let mut retransmits = 0u64;
    let mut stale = 0u64;
    let mut bad = 0u64;
    let mut first_answer_ms = None;
    let mut rtt_total_ns = 0u64;
    for seq in 0..COUNT {
        let request = build(peer, me, KIND_REQUEST, seq, COUNT);
        loop {
            let answered = Cell::new(false);
            let mut sink = |f: &[u8]| match parse(f, me) {
                Ok(Some((KIND_ECHO, s, _, src))) if src == peer && s == seq => answered.set(true),
                Ok(Some(_)) => stale += 1,
                Ok(None) => {}
                Err(()) => bad += 1,
            };
            if let Err(why) = send(nic, &request, &mut sink) {
                kprintln!("selftest nic-ping: FAILED: transmit of frame {seq}: {why:?}");
                return;
            }
            let sent = time::rdtsc();
            let wait = if first_answer_ms.is_some() { RETRANSMIT_NS } else { PROBE_NS };
            while !answered.get() && time::ns_since(sent) < wait {
                nic.receive(&mut sink);
            }
            if answered.get() {
                rtt_total_ns += time::ns_since(sent);
                first_answer_ms.get_or_insert(time::ns_since(start) / 1_000_000);
                break;
            }
            if first_answer_ms.is_some() {
                retransmits += 1;
            } else {
                probes += 1;
            }
            if time::ns_since(start) > DEADLINE_NS {
                kprintln!(
                    "selftest nic-ping: FAILED: frame {seq} of {COUNT} never echoed by {} ({} probes, {} retransmissions)",
                    Mac(peer),
                    probes,
                    retransmits
                );
                return;
            }
        }
    }
    // Tell node 1 to stop; it lingers, so a lost ack only costs a retry.
    let done = build(peer, me, KIND_DONE, COUNT, COUNT);
    let acked = Cell::new(false);
    let done_start = time::rdtsc();
    while !acked.get() && time::ns_since(done_start) < 5_000_000_000 {
        let mut sink = |f: &[u8]| {
            if let Ok(Some((KIND_DONE_ACK, _, _, src))) = parse(f, me) {
                acked.set(acked.get() || src == peer);
            }
        };
        if send(nic, &done, &mut sink).is_err() {
            break;
        }
        let sent = time::rdtsc();
        while !acked.get() && time::ns_since(sent) < RETRANSMIT_NS {
            nic.receive(&mut sink);
        }
    }
    kprintln!(
        "selftest nic-ping: ok: {COUNT} frames to {} echoed back and checked, {} retransmissions, \
         {} probes before the peer answered after {} ms, {} stale and {} bad frames ignored, \
         {} us average round trip, done {}",
        Mac(peer),
        retransmits,
        probes,
        first_answer_ms.unwrap_or(0),
        stale,
        bad,
        rtt_total_ns / u64::from(COUNT) / 1000,
        if acked.get() { "acknowledged" } else { "NOT acknowledged" }
    );
}

fn echoer(nic: &mut Nic, plan: &Plan) {
    let start = time::rdtsc();
    let me = plan.mac;
    let mut seen: Vec<bool> = Vec::new();
    let mut total = 0u32;
    let mut echoes = 0u64;
    let mut repeats = 0u64;
    let mut bad = 0u64;
    let mut done_at: Option<u64> = None;
    let mut replies: Vec<[u8; FRAME]> = vec![];
    loop {
        let mut sink = |f: &[u8]| match parse(f, me) {
            Ok(Some((KIND_REQUEST, seq, count, src))) => {
                if seen.is_empty() {
                    total = count.min(1_000_000);
                    seen = vec![false; total as usize];
                }
                match seen.get_mut(seq as usize) {
                    Some(flag) if *flag => repeats += 1,
                    Some(flag) => *flag = true,
                    None => bad += 1,
                }
                replies.push(build(src, me, KIND_ECHO, seq, count));
            }
            Ok(Some((KIND_DONE, _, count, src))) => {
                done_at.get_or_insert(time::rdtsc());
                replies.push(build(src, me, KIND_DONE_ACK, count, count));
            }
            Ok(Some(_)) | Ok(None) => {}
            Err(()) => bad += 1,
        };
        nic.receive(&mut sink);
        for reply in replies.drain(..) {
            let mut ignore = |_: &[u8]| {};
            if let Err(why) = send(nic, &reply, &mut ignore) {
                kprintln!("selftest nic-ping: FAILED: echo transmit: {why:?}");
                return;
            }
            if reply[18] == KIND_ECHO {
                echoes += 1;
            }
        }
        if done_at.is_some_and(|at| time::ns_since(at) > LINGER_NS) {
            break;
        }
        if time::ns_since(start) > DEADLINE_NS {
            kprintln!("selftest nic-ping: FAILED: no `done` from node 0 within 60 s");
            return;
        }
    }
    let distinct = seen.iter().filter(|&&s| s).count();
    if distinct != total as usize || total == 0 {
        kprintln!("selftest nic-ping: FAILED: echoed {distinct} of {total} distinct frames");
        return;
    }
    kprintln!(
        "selftest nic-ping: ok: echoed {distinct} of {total} frames ({echoes} echoes sent, {repeats} repeats, {bad} bad)"
    );
}
