//! `ipc` self-test and `ipc-bench`: two services exchange messages over
//! `sinter-ipc` rings and lend each other frames through a grant table,
//! checking every payload; the bench times round trips against a plain
//! atomic ping-pong between the same two cores.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use sinter_ipc::spsc::{Receiver, Sender, SpscRing};
use sinter_ipc::{
    Access, CoreId, FrameLease, FrameWindow, GrantHandle, GrantTable, PhysFrame, ServiceId, WakeTarget, FRAME_SIZE,
};
use spin::Mutex;
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

use crate::exec::{self, ExecutorNotify, ServiceSpec};
use crate::{kprintln, memory};

pub const MESSAGES: u64 = 100_000;
pub const GRANTS: u64 = 10_000;
pub const BENCH_ROUND_TRIPS: usize = 100_000;
const FRAMES_IN_FLIGHT: usize = 16;
const RING: usize = 256;

const PING: ServiceId = ServiceId(1);
const PONG: ServiceId = ServiceId(2);

#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct TestMessage {
    kind: u32,
    _pad: u32,
    seq: u64,
    check: u64,
    grant: GrantHandle,
}

impl Default for TestMessage {
    fn default() -> Self {
        Self::new_zeroed()
    }
}

const DATA: u32 = 1;
const DATA_REPLY: u32 = 2;
const GRANT: u32 = 3;
const GRANT_DONE: u32 = 4;
const STOP: u32 = 5;
const BENCH: u32 = 6;

fn check_word(seq: u64, salt: u64) -> u64 {
    // splitmix64: every seq gets a distinct, unpredictable word.
    let mut z = seq.wrapping_add(salt).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Frames are reached through the kernel's direct map.
struct DirectMap;

// SAFETY: the direct map gives every physical frame its own 4 KiB of
// virtual address space, valid for the kernel's lifetime; distinct frames
// never overlap.
unsafe impl FrameWindow for DirectMap {
    fn frame_ptr(&self, frame: PhysFrame) -> NonNull<[u8; FRAME_SIZE]> {
        NonNull::new(memory::phys_to_virt(frame.addr()) as *mut [u8; FRAME_SIZE]).unwrap_or(NonNull::dangling())
    }
}

static GRANT_TABLE: GrantTable<64> = GrantTable::new();

type Tx = Sender<'static, TestMessage, RING, ExecutorNotify>;
type Rx = Receiver<'static, TestMessage, RING>;
type Ends = (Tx, Rx);

/// How a receiver waits for its next message.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Waiting {
    /// Arm the ring and block until notified (the normal path).
    Block,
    /// Spin (the benchmark: measures the rings, not the wake-up path).
    Spin,
}

/// Endpoints waiting for the service they belong to; a service gets the
/// index of its slot as its argument and takes the ends when it starts.
static ENDS: Mutex<alloc::vec::Vec<Option<(Ends, Waiting)>>> = Mutex::new(alloc::vec::Vec::new());
static BLOCKED_RECEIVES: AtomicU64 = AtomicU64::new(0);
static FAILED: AtomicBool = AtomicBool::new(false);
static PONG_CORE: AtomicUsize = AtomicUsize::new(0);
static PINGPONG_WORD: AtomicU64 = AtomicU64::new(0);
static BENCH_DONE: AtomicBool = AtomicBool::new(false);

fn fail(what: core::fmt::Arguments<'_>) {
    FAILED.store(true, Ordering::Relaxed);
    kprintln!("selftest ipc: FAILED: {}", what);
}

fn rdtsc() -> u64 {
    // SAFETY: rdtsc has no memory effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

fn park_ends(ends: Ends, waiting: Waiting) -> usize {
    let mut slots = ENDS.lock();
    slots.push(Some((ends, waiting)));
    slots.len() - 1
}

fn take_ends(slot: usize) -> Option<(Ends, Waiting)> {
    ENDS.lock().get_mut(slot).and_then(Option::take)
}

/// A fresh pair of rings (requests, replies); returns the ping side's and
/// the pong side's endpoints. The rings live for the rest of the boot.
fn new_link(ping_core: usize, pong_core: usize) -> Option<(Ends, Ends)> {
    let to_pong = WakeTarget::Core(CoreId(pong_core as u32));
    let to_ping = WakeTarget::Core(CoreId(ping_core as u32));
    let requests: &'static SpscRing<TestMessage, RING> =
        alloc::boxed::Box::leak(alloc::boxed::Box::new(SpscRing::new()));
    let replies: &'static SpscRing<TestMessage, RING> =
        alloc::boxed::Box::leak(alloc::boxed::Box::new(SpscRing::new()));
    let (request_tx, request_rx) = requests.split(ExecutorNotify, to_pong).ok()?;
    let (reply_tx, reply_rx) = replies.split(ExecutorNotify, to_ping).ok()?;
    Some(((request_tx, reply_rx), (reply_tx, request_rx)))
}

fn spawn_pong(ping_core: usize, pong_core: usize, waiting: Waiting) -> Option<Ends> {
    let (ping_ends, pong_ends) = new_link(ping_core, pong_core)?;
    let slot = park_ends(pong_ends, waiting);
    PONG_CORE.store(pong_core, Ordering::Relaxed);
    exec::spawn_on(pong_core, ServiceSpec { name: "ipc-pong", entry: pong_service, arg: slot });
    Some(ping_ends)
}

/// Spawns the test (or, with `bench`, the benchmark) from `ping_core`
/// against a partner on `pong_core`.
pub fn spawn(ping_core: usize, pong_core: usize, bench: bool) {
    if bench {
        exec::spawn_on(ping_core, ServiceSpec { name: "ipc-bench", entry: bench_service, arg: pong_core });
        return;
    }
    let Some(ping_ends) = spawn_pong(ping_core, pong_core, Waiting::Block) else {
        return fail(format_args!("rings already split"));
    };
    let slot = park_ends(ping_ends, Waiting::Block);
    exec::spawn_on(ping_core, ServiceSpec { name: "ipc-ping", entry: ping_service, arg: slot });
}

fn send(tx: &mut Tx, msg: TestMessage) {
    let mut msg = msg;
    loop {
        match tx.try_send(msg) {
            Ok(()) => return,
            Err(full) => {
                msg = full.into_message();
                exec::yield_now();
            }
        }
    }
}

fn recv(rx: &mut Rx, waiting: Waiting) -> TestMessage {
    loop {
        match waiting {
            Waiting::Spin => {
                if let Some(msg) = rx.try_recv() {
                    return msg;
                }
                exec::yield_now();
            }
            Waiting::Block => {
                // Arm, re-check, then sleep: the sender's notification (an
                // IPI if we are on another core) makes this service ready.
                if let Some(msg) = rx.try_recv_or_arm() {
                    return msg;
                }
                BLOCKED_RECEIVES.fetch_add(1, Ordering::Relaxed);
                exec::block_until_notified();
            }
        }
    }
}

fn pong_service(slot: usize, _generation: u32) {
    let Some(((mut tx, mut rx), waiting)) = take_ends(slot) else { return fail(format_args!("pong has no ends")) };
    let window = DirectMap;
    let mut expected_seq = 0;
    loop {
        let msg = recv(&mut rx, waiting);
        match msg.kind {
            DATA => {
                if msg.seq != expected_seq || msg.check != check_word(msg.seq, 1) {
                    fail(format_args!("message {} arrived as seq {} check {:#x}", expected_seq, msg.seq, msg.check));
                }
                expected_seq += 1;
                send(&mut tx, TestMessage { kind: DATA_REPLY, seq: msg.seq, check: check_word(msg.seq, 2), ..msg });
            }
            GRANT => {
                let mut grant = match GRANT_TABLE.accept(msg.grant, PONG) {
                    Ok(grant) => grant,
                    Err(e) => {
                        fail(format_args!("accepting grant {}: {e:?}", msg.seq));
                        continue;
                    }
                };
                let bytes = grant.bytes(&window);
                let ok = bytes.chunks_exact(8).enumerate().all(|(i, word)| {
                    u64::from_le_bytes(word.try_into().unwrap_or([0; 8])) == check_word(msg.seq, i as u64 + 10)
                });
                if !ok {
                    fail(format_args!("grant {} carried the wrong bytes", msg.seq));
                }
                match grant.bytes_mut(&window) {
                    Ok(bytes) => {
                        for (i, word) in bytes.chunks_exact_mut(8).enumerate() {
                            word.copy_from_slice(&check_word(msg.seq, i as u64 + 5000).to_le_bytes());
                        }
                    }
                    Err(e) => fail(format_args!("grant {} not writable: {e:?}", msg.seq)),
                }
                grant.release();
                send(&mut tx, TestMessage { kind: GRANT_DONE, ..msg });
            }
            BENCH => send(&mut tx, msg),
            STOP => return,
            other => fail(format_args!("unknown message kind {other}")),
        }
    }
}

fn ping_service(slot: usize, _generation: u32) {
    let Some(((mut tx, mut rx), waiting)) = take_ends(slot) else { return fail(format_args!("ping has no ends")) };
    let window = DirectMap;
    let started = rdtsc();

    // Phase 1: a pipeline of small messages, each checked both ways.
    let (mut sent, mut replied) = (0u64, 0u64);
    while replied < MESSAGES {
        while sent < MESSAGES && sent - replied < RING as u64 / 2 {
            let msg = TestMessage { kind: DATA, seq: sent, check: check_word(sent, 1), ..Default::default() };
            if tx.try_send(msg).is_err() {
                break;
            }
            sent += 1;
        }
        match rx.try_recv() {
            Some(reply) => {
                if reply.kind != DATA_REPLY || reply.seq != replied || reply.check != check_word(replied, 2) {
                    fail(format_args!("reply {replied} arrived as kind {} seq {}", reply.kind, reply.seq));
                }
                replied += 1;
            }
            None => exec::yield_now(),
        }
    }

    // Phase 2: frames lent to pong, filled by both sides, checked by both.
    // Counted now that pong runs (its stack was allocated when it started).
    let free_before = memory::free_frames();
    let mut spare: alloc::vec::Vec<FrameLease> = alloc::vec::Vec::new();
    for _ in 0..FRAMES_IN_FLIGHT {
        let Ok(phys) = memory::alloc_frame() else { return fail(format_args!("no frames")) };
        let Some(frame) = PhysFrame::new(phys) else { return fail(format_args!("bad frame {phys:#x}")) };
        // SAFETY: the frame was just allocated for this test and nothing
        // else refers to it.
        spare.push(unsafe { FrameLease::assume_owned(frame) });
    }
    let (mut lent, mut returned) = (0u64, 0u64);
    while returned < GRANTS {
        while lent < GRANTS {
            let Some(mut lease) = spare.pop() else { break };
            for (i, word) in lease.bytes_mut(&window).chunks_exact_mut(8).enumerate() {
                word.copy_from_slice(&check_word(lent, i as u64 + 10).to_le_bytes());
            }
            match GRANT_TABLE.lend(lease, PING, PONG, Access::ReadWrite) {
                Ok(handle) => {
                    send(&mut tx, TestMessage { kind: GRANT, seq: lent, grant: handle, ..Default::default() });
                    lent += 1;
                }
                Err(full) => {
                    spare.push(full.0);
                    break;
                }
            }
        }
        let done = recv(&mut rx, waiting);
        if done.kind != GRANT_DONE || done.seq != returned {
            fail(format_args!("grant reply {returned} arrived as kind {} seq {}", done.kind, done.seq));
        }
        match GRANT_TABLE.reclaim(done.grant, PING) {
            Ok(lease) => {
                let ok = lease.bytes(&window).chunks_exact(8).enumerate().all(|(i, word)| {
                    u64::from_le_bytes(word.try_into().unwrap_or([0; 8])) == check_word(done.seq, i as u64 + 5000)
                });
                if !ok {
                    fail(format_args!("frame of grant {} came back with the wrong bytes", done.seq));
                }
                spare.push(lease);
            }
            Err(e) => fail(format_args!("reclaiming grant {}: {e:?}", done.seq)),
        }
        returned += 1;
    }
    // A stale handle (its lending is over) must be refused, not honoured.
    if GRANT_TABLE.accept(GrantHandle { index: 0, generation: 1 }, PONG).is_ok() {
        fail(format_args!("a stale grant handle was accepted"));
    }
    for lease in spare.drain(..) {
        let _ = memory::free_frame(lease.into_frame().addr());
    }
    send(&mut tx, TestMessage { kind: STOP, ..Default::default() });
    let cycles = rdtsc() - started;
    // Every lent frame came back and was freed: none leaked.
    if memory::free_frames() != free_before {
        fail(format_args!("{} frames free before the test, {} after", free_before, memory::free_frames()));
    }
    if !FAILED.load(Ordering::Relaxed) {
        kprintln!(
            "selftest ipc: ok: {MESSAGES} messages and {GRANTS} grants between core {} and core {}, every payload checked ({} Mcycles); receivers blocked {} times and were woken by notification ({} IPIs, {} of them to core {})",
            exec::core_index(),
            PONG_CORE.load(Ordering::Relaxed),
            cycles / 1_000_000,
            BLOCKED_RECEIVES.load(Ordering::Relaxed),
            exec::wake_ipis_sent(),
            exec::wake_ipis_sent_to(exec::core_index()),
            exec::core_index()
        );
    }
}

/// Median and p99 cycles of `BENCH_ROUND_TRIPS` message round trips.
fn time_round_trips(tx: &mut Tx, rx: &mut Rx) -> (u64, u64) {
    let mut samples = alloc::vec::Vec::with_capacity(BENCH_ROUND_TRIPS);
    for seq in 0..BENCH_ROUND_TRIPS as u64 {
        let start = rdtsc();
        send(tx, TestMessage { kind: BENCH, seq, ..Default::default() });
        let reply = recv(rx, Waiting::Spin);
        samples.push(rdtsc() - start);
        if reply.seq != seq {
            fail(format_args!("bench reply {seq} arrived as {}", reply.seq));
        }
    }
    send(tx, TestMessage { kind: STOP, ..Default::default() });
    samples.sort_unstable();
    (percentile(&samples, 50), percentile(&samples, 99))
}

fn bench_service(other_core: usize, _generation: u32) {
    let here = exec::core_index();
    let Some((mut tx, mut rx)) = spawn_pong(here, here, Waiting::Spin) else {
        return fail(format_args!("bench rings"));
    };
    let same = time_round_trips(&mut tx, &mut rx);
    kprintln!(
        "bench ipc same_core: core={here} round_trips={BENCH_ROUND_TRIPS} median_cycles={} p99_cycles={}",
        same.0,
        same.1
    );
    if other_core == here {
        kprintln!("bench ipc cross_core: skipped: only one core runs services");
        return;
    }
    let Some((mut tx, mut rx)) = spawn_pong(here, other_core, Waiting::Spin) else {
        return fail(format_args!("bench rings"));
    };
    let cross = time_round_trips(&mut tx, &mut rx);
    BENCH_DONE.store(false, Ordering::Release);
    PINGPONG_WORD.store(0, Ordering::Release);
    exec::spawn_on(other_core, ServiceSpec { name: "pingpong-responder", entry: pingpong_responder, arg: 0 });
    let atomic = atomic_pingpong_initiator(BENCH_ROUND_TRIPS);
    kprintln!(
        "bench ipc cross_core: cores={here}->{other_core} round_trips={BENCH_ROUND_TRIPS} median_cycles={} p99_cycles={}",
        cross.0,
        cross.1
    );
    kprintln!(
        "bench atomic_pingpong: cores={here}->{other_core} round_trips={BENCH_ROUND_TRIPS} median_cycles={} p99_cycles={}",
        atomic.0,
        atomic.1
    );
    // Ratio in hundredths, so the line needs no floating point.
    let ratio = |ipc: u64| ipc * 100 / atomic.0.max(1);
    kprintln!(
        "bench ipc ratio: cross_core_median_over_atomic_x100={} same_core_median_over_atomic_x100={}",
        ratio(cross.0),
        ratio(same.0)
    );
}

fn pingpong_responder(_arg: usize, _generation: u32) {
    atomic_pingpong_responder(BENCH_ROUND_TRIPS);
}

fn percentile(sorted: &[u64], p: usize) -> u64 {
    sorted.get((sorted.len() * p / 100).min(sorted.len().saturating_sub(1))).copied().unwrap_or(0)
}

/// The baseline: one cache line bounced between two cores with plain atomics.
fn atomic_pingpong_responder(rounds: usize) {
    for round in 0..rounds as u64 {
        while PINGPONG_WORD.load(Ordering::Acquire) != 2 * round + 1 {
            core::hint::spin_loop();
        }
        PINGPONG_WORD.store(2 * round + 2, Ordering::Release);
    }
}

fn atomic_pingpong_initiator(rounds: usize) -> (u64, u64) {
    let mut samples = alloc::vec::Vec::with_capacity(rounds);
    for round in 0..rounds as u64 {
        let start = rdtsc();
        PINGPONG_WORD.store(2 * round + 1, Ordering::Release);
        while PINGPONG_WORD.load(Ordering::Acquire) != 2 * round + 2 {
            core::hint::spin_loop();
        }
        samples.push(rdtsc() - start);
    }
    BENCH_DONE.store(true, Ordering::Release);
    samples.sort_unstable();
    (percentile(&samples, 50), percentile(&samples, 99))
}
