//! Host time per frame and per 4 KiB page through two transports (seal,
//! verify, ack, reassembly), against the MAC alone (XChaCha20-Poly1305 over
//! the same bytes as associated data) measured in the same run, and the wire bytes per page at MTU 1500 and
//! 9000. `docs/transport.md` records the figures.
//!
//! Run: `CARGO_TARGET_DIR=target-transport cargo bench -p sinter-transport-protocol`.
//! The kernel builds chacha20 and poly1305 with their portable backends; to
//! measure those on the host too, add
//! `RUSTFLAGS='--cfg chacha20_backend="soft" --cfg poly1305_backend="soft"'`.

use std::hint::black_box;

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use criterion::{Criterion, Throughput};
use sinter_transport_protocol::wire::{self, FrameKind};
use sinter_transport_protocol::{Event, MacAddr, NodeId, Transport, TransportConfig, Verdict};

static MEMBERS: [(NodeId, MacAddr); 2] =
    [(NodeId(0), MacAddr([2, 0, 0, 0, 0, 0])), (NodeId(1), MacAddr([2, 0, 0, 0, 0, 1]))];
const KEY: [u8; 32] = [0x5a; 32];

/// Two transports wired back to back; time advances 1 µs per page.
struct Pair {
    a: Transport,
    b: Transport,
    now: u64,
    page: Vec<u8>,
    wire_bytes: u64,
    frames: u64,
}

impl Pair {
    fn new(mtu: u16) -> Self {
        let config = |local, epoch| {
            let mut c = TransportConfig::new(local, &MEMBERS, KEY, epoch);
            c.mtu = mtu;
            c
        };
        let mut pair = Self {
            a: Transport::new(&config(NodeId(0), 1)).unwrap(),
            b: Transport::new(&config(NodeId(1), 2)).unwrap(),
            now: 0,
            page: (0..4096u32).map(|i| i as u8).collect(),
            wire_bytes: 0,
            frames: 0,
        };
        pair.a.connect(NodeId(1), 0).unwrap();
        for _ in 0..4 {
            pair.exchange();
        }
        while pair.b.recv().is_some() {}
        while pair.a.recv().is_some() {}
        pair.wire_bytes = 0;
        pair.frames = 0;
        pair
    }

    fn exchange(&mut self) {
        let Self { a, b, now, wire_bytes, frames, .. } = self;
        a.drain_frames(|f| {
            *wire_bytes += f.len() as u64;
            *frames += 1;
            b.on_frame(f, *now);
        });
        b.drain_frames(|f| {
            *wire_bytes += f.len() as u64;
            *frames += 1;
            a.on_frame(f, *now);
        });
    }

    /// One page from a to b, delivered and taken by b's user.
    fn page(&mut self) {
        self.now += 1_000;
        self.a.send(NodeId(1), &self.page, self.now).unwrap();
        self.exchange();
        let Some(Event::Message(d)) = self.b.recv() else { panic!("page not delivered") };
        black_box(d);
        for t in [&mut self.a, &mut self.b] {
            if t.next_deadline().is_some_and(|d| d <= self.now) {
                t.poll(self.now);
            }
        }
        self.exchange();
    }
}

fn wire_report() {
    for mtu in [1500u16, 9000] {
        let mut pair = Pair::new(mtu);
        let mut data_bytes = 0u64;
        let mut data_frames = 0u64;
        pair.now += 1_000;
        pair.a.send(NodeId(1), &pair.page.clone(), pair.now).unwrap();
        pair.a.drain_frames(|f| {
            if wire::parse(f).is_ok_and(|p| p.kind == FrameKind::Data) {
                data_bytes += f.len() as u64;
                data_frames += 1;
            }
        });
        let mut steady = Pair::new(mtu);
        for _ in 0..10_000 {
            steady.page();
        }
        println!(
            "wire, MTU {mtu}: a 4096-byte page = {data_frames} data frame(s), {data_bytes} bytes (minimum {} = page + {} per frame); \
             steady state with acks: {:.1} frames, {:.0} bytes per page",
            4096 + data_frames * wire::FRAME_OVERHEAD as u64,
            wire::FRAME_OVERHEAD,
            steady.frames as f64 / 10_000.0,
            steady.wire_bytes as f64 / 10_000.0,
        );
    }
}

fn main() {
    wire_report();
    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("transport");
    group.throughput(Throughput::Bytes(4096));
    for mtu in [1500u16, 9000] {
        let mut pair = Pair::new(mtu);
        group.bench_function(format!("page_a_to_b_mtu{mtu}"), |bench| bench.iter(|| pair.page()));
    }
    // Baselines in the same run: the MAC alone over what one page costs.
    let aead = XChaCha20Poly1305::new(&KEY.into());
    for len in [1500usize, 4194] {
        group.throughput(Throughput::Bytes(len as u64));
        let bytes = vec![0xa5u8; len];
        let mut counter = 0u64;
        group.bench_function(format!("baseline_xchacha20poly1305_{len}B"), |bench| {
            bench.iter(|| {
                counter += 1;
                let mut nonce = XNonce::default();
                nonce[14..22].copy_from_slice(&counter.to_be_bytes());
                let tag = aead.encrypt_inout_detached(&nonce, black_box(&bytes), (&mut [][..]).into());
                black_box(tag.ok());
            })
        });
    }
    // Rejecting a forged full-size frame: what a flood costs the receiver.
    let mut victim = Pair::new(1500);
    victim.now += 1_000;
    victim.a.send(NodeId(1), &victim.page.clone(), victim.now).unwrap();
    let mut forged = victim.a.pop_frame().unwrap();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    group.throughput(Throughput::Bytes(forged.len() as u64));
    group.bench_function("reject_forged_1514B_frame", |bench| {
        bench.iter(|| assert!(matches!(victim.b.on_frame(black_box(&forged), 1), Verdict::Dropped(_))))
    });
    group.finish();
    c.final_summary();
}
