//! Host time per handled protocol message, against a plain hash-map lookup
//! measured in the same run. `docs/benchmarks/coherence.md` records the
//! figures.
//!
//! Run: `cargo bench -p sinter-coherence-protocol`.

use std::collections::{HashMap, VecDeque};
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use sinter_coherence_protocol::sim::SplitMix64;
use sinter_coherence_protocol::{
    Access, Action, Actions, GuestPage, Message, Node, NodeId, ProtocolConfig, StripedHomes,
};

/// Pages per home: the directory and the baseline map hold this many entries.
const PAGES: u64 = 65_536;
/// Pages visited, in a random order, so lookups miss the caches like real ones.
const WORKING_SET: usize = 4096;

fn random_pages(seed: u64) -> Vec<u64> {
    let mut rng = SplitMix64::new(seed);
    (0..WORKING_SET).map(|_| rng.below(PAGES)).collect()
}

struct Baseline {
    map: HashMap<u64, u64>,
    keys: Vec<u64>,
    i: usize,
}

impl Baseline {
    fn new() -> Self {
        let map = (0..PAGES).map(|k| (k, k * 3)).collect();
        Self { map, keys: random_pages(1), i: 0 }
    }

    fn lookup(&mut self) -> u64 {
        self.i = (self.i + 1) % WORKING_SET;
        *self.map.get(&self.keys[self.i]).unwrap_or(&0)
    }
}

/// A few engines and a FIFO network, as a shell would drive them.
struct Bed {
    nodes: Vec<Node<StripedHomes>>,
    net: VecDeque<(NodeId, NodeId, Message)>,
    out: Actions,
    pages: Vec<u64>,
    i: usize,
    handled: u64,
}

impl Bed {
    fn new(nodes: u8) -> Self {
        // One stripe of PAGES pages per node: all measured pages live at node 0.
        let homes = StripedHomes::new(nodes, PAGES, PAGES * u64::from(nodes)).unwrap();
        let mut engines: Vec<_> =
            (0..nodes).map(|i| Node::new(NodeId::new(i).unwrap(), homes, ProtocolConfig::DEFAULT)).collect();
        for p in 0..PAGES {
            // Written pages: every grant carries data, every entry exists.
            engines[0].note_preloaded(GuestPage::new(p).unwrap()).unwrap();
        }
        Self {
            nodes: engines,
            net: VecDeque::with_capacity(64),
            out: Actions::new(),
            pages: random_pages(2),
            i: 0,
            handled: 0,
        }
    }

    fn next_page(&mut self) -> GuestPage {
        self.i = (self.i + 1) % WORKING_SET;
        GuestPage::new(self.pages[self.i]).unwrap()
    }

    fn route(&mut self, at: NodeId) {
        for a in self.out.iter() {
            if let Action::Send { to, msg } = *a {
                self.net.push_back((at, to, msg));
            }
        }
        self.out.clear();
    }

    fn request(&mut self, at: u8, page: GuestPage, access: Access) {
        let id = NodeId::new(at).unwrap();
        self.nodes[usize::from(at)].request(page, access, &mut self.out).unwrap();
        self.route(id);
        self.run();
    }

    fn evict(&mut self, at: u8, page: GuestPage) {
        let id = NodeId::new(at).unwrap();
        self.nodes[usize::from(at)].evict(page, &mut self.out).unwrap();
        self.route(id);
        self.run();
    }

    fn run(&mut self) {
        while let Some((from, to, msg)) = self.net.pop_front() {
            self.nodes[to.index()].handle(from, msg, &mut self.out).unwrap();
            self.handled += 1;
            self.route(to);
        }
    }

    /// Write miss + eviction: GetM, Grant, PutM, PutAck.
    fn migrate_cycle(&mut self) {
        let page = self.next_page();
        self.request(1, page, Access::Write);
        self.evict(1, page);
    }

    /// Two read misses, a write miss invalidating both, an eviction:
    /// 2 x (GetS, Grant) + GetM, 2 Inv, 2 InvAck, Grant + PutM, PutAck.
    fn share_cycle(&mut self) {
        let page = self.next_page();
        self.request(1, page, Access::Read);
        self.request(2, page, Access::Read);
        self.request(3, page, Access::Write);
        self.evict(3, page);
    }
}

fn criterion_benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("coherence");
    g.throughput(Throughput::Elements(1));
    let mut base = Baseline::new();
    g.bench_function("hashmap_lookup (std HashMap<u64,u64>, 64Ki entries)", |b| b.iter(|| black_box(base.lookup())));
    let mut bed = Bed::new(2);
    g.throughput(Throughput::Elements(4));
    g.bench_function("write miss + eviction (4 messages)", |b| b.iter(|| bed.migrate_cycle()));
    let mut bed = Bed::new(4);
    g.throughput(Throughput::Elements(12));
    g.bench_function("2 reads + invalidating write + eviction (12 messages)", |b| b.iter(|| bed.share_cycle()));
    g.finish();
}

/// Times `f` over batches for about `budget`; returns the best ns per call.
fn best_ns(budget: Duration, per_call: u64, mut f: impl FnMut()) -> f64 {
    let started = Instant::now();
    let mut best = f64::MAX;
    while started.elapsed() < budget {
        let t = Instant::now();
        for _ in 0..10_000 {
            f();
        }
        best = best.min(t.elapsed().as_nanos() as f64 / (10_000 * per_call) as f64);
    }
    best
}

/// The acceptance ratio, measured side by side in this run.
fn ratio_summary() {
    let budget = Duration::from_secs(3);
    let mut base = Baseline::new();
    let lookup = best_ns(budget, 1, || {
        black_box(base.lookup());
    });
    let mut bed = Bed::new(2);
    let before = bed.handled;
    let migrate = best_ns(budget, 4, || bed.migrate_cycle());
    assert_eq!((bed.handled - before) % 4, 0);
    let mut bed = Bed::new(4);
    let share = best_ns(budget, 12, || bed.share_cycle());
    println!();
    println!("ratio summary (best of 10k-call batches, same process):");
    println!("  hash-map lookup               {lookup:7.1} ns");
    println!("  per message, write miss+evict {migrate:7.1} ns  = {:.2} x lookup", migrate / lookup);
    println!("  per message, share+invalidate {share:7.1} ns  = {:.2} x lookup", share / lookup);
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    criterion_benches(&mut c);
    c.final_summary();
    ratio_summary();
}
