//! A simulated Ethernet segment: every frame is delayed, and may be
//! dropped, duplicated, reordered, or lost to a cut, all decided by one
//! seeded generator.

use alloc::collections::BinaryHeap;
use alloc::vec::Vec;
use core::cmp::Ordering;

use super::rng::SplitMix64;

/// Faults the segment injects. Probabilities are per million frames.
#[derive(Clone, Debug)]
pub struct Faults {
    /// Frames lost.
    pub drop_ppm: u32,
    /// Frames delivered twice (independent delays).
    pub duplicate_ppm: u32,
    /// Frames held back by up to `reorder_extra_ns`, so later ones overtake.
    pub reorder_ppm: u32,
    /// Latency of every frame.
    pub delay_ns: u64,
    /// Extra latency, uniform in `0..=jitter_ns`.
    pub jitter_ns: u64,
    /// Most a reordered frame is held back.
    pub reorder_extra_ns: u64,
    /// Nodes cut off (both directions) for a while.
    pub cuts: Vec<Cut>,
}

impl Faults {
    /// A perfect segment with `delay_ns` latency.
    pub fn none(delay_ns: u64) -> Self {
        Self {
            drop_ppm: 0,
            duplicate_ppm: 0,
            reorder_ppm: 0,
            delay_ns,
            jitter_ns: 0,
            reorder_extra_ns: 0,
            cuts: Vec::new(),
        }
    }
}

/// Node `node` can neither send nor receive in `from_ns..until_ns`.
#[derive(Clone, Copy, Debug)]
pub struct Cut {
    /// Index of the node cut off.
    pub node: usize,
    /// Start of the cut.
    pub from_ns: u64,
    /// End of the cut (exclusive).
    pub until_ns: u64,
}

/// What the segment did, for reports.
#[derive(Clone, Copy, Default, Debug)]
pub struct WireCounts {
    /// Frames offered by nodes.
    pub frames_offered: u64,
    /// Bytes offered by nodes.
    pub bytes_offered: u64,
    /// Frames dropped at random.
    pub dropped: u64,
    /// Frames lost to cuts.
    pub cut: u64,
    /// Extra copies made.
    pub duplicated: u64,
    /// Frames held back to reorder.
    pub reordered: u64,
}

struct InFlight {
    at: u64,
    order: u64,
    to: usize,
    frame: Vec<u8>,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap and we want the earliest.
        (other.at, other.order).cmp(&(self.at, self.order))
    }
}

/// The segment.
pub struct Network {
    faults: Faults,
    rng: SplitMix64,
    queue: BinaryHeap<InFlight>,
    order: u64,
    /// What happened so far.
    pub counts: WireCounts,
}

impl core::fmt::Debug for Network {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Network").field("in_flight", &self.queue.len()).field("counts", &self.counts).finish()
    }
}

impl Network {
    /// A segment with `faults`, its randomness from `seed`.
    pub fn new(faults: Faults, seed: u64) -> Self {
        Self { faults, rng: SplitMix64::new(seed), queue: BinaryHeap::new(), order: 0, counts: WireCounts::default() }
    }

    /// Whether `node` is cut off at `now`.
    pub fn is_cut(&self, node: usize, now: u64) -> bool {
        self.faults.cuts.iter().any(|c| c.node == node && (c.from_ns..c.until_ns).contains(&now))
    }

    /// When the last cut ends.
    pub fn cuts_end(&self) -> u64 {
        self.faults.cuts.iter().map(|c| c.until_ns).max().unwrap_or(0)
    }

    /// `from` puts `frame` on the wire for `to` at `now`.
    pub fn transmit(&mut self, from: usize, to: usize, frame: &[u8], now: u64) {
        self.counts.frames_offered += 1;
        self.counts.bytes_offered += frame.len() as u64;
        if self.is_cut(from, now) || self.is_cut(to, now) {
            self.counts.cut += 1;
            return;
        }
        if self.rng.chance_ppm(self.faults.drop_ppm) {
            self.counts.dropped += 1;
            return;
        }
        let copies = if self.rng.chance_ppm(self.faults.duplicate_ppm) {
            self.counts.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut at = now + self.faults.delay_ns + self.rng.below(self.faults.jitter_ns + 1);
            if self.rng.chance_ppm(self.faults.reorder_ppm) {
                self.counts.reordered += 1;
                at += self.rng.below(self.faults.reorder_extra_ns + 1);
            }
            self.order += 1;
            self.queue.push(InFlight { at, order: self.order, to, frame: frame.to_vec() });
        }
    }

    /// When the next frame arrives.
    pub fn next_arrival(&self) -> Option<u64> {
        self.queue.peek().map(|f| f.at)
    }

    /// The next frame due by `now`: `(to, frame)`. Frames to a node cut off
    /// on arrival are lost.
    pub fn arrive(&mut self, now: u64) -> Option<(usize, Vec<u8>)> {
        while self.queue.peek().is_some_and(|f| f.at <= now) {
            let f = self.queue.pop()?;
            if self.is_cut(f.to, now) {
                self.counts.cut += 1;
                continue;
            }
            return Some((f.to, f.frame));
        }
        None
    }

    /// Frames still on the wire.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }
}
