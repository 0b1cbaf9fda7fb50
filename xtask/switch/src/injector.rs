//! The fault decisions for one link, with no clock and no sockets.
//!
//! A [`FaultInjector`] is fed the frames the switch wants to send to a port,
//! each with the current time as a [`Duration`] since any fixed epoch. It
//! decides drop / duplicate / reorder / delay with its own seeded generator,
//! and keeps the surviving frames in a queue ordered by due time. The caller
//! asks [`FaultInjector::poll`] for the frames due at a given time and sends
//! them in the order given. Tests drive it with made-up times.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::Duration;

use crate::faults::{LinkFaults, Percent, MAX_REORDER};
use crate::rng::SplitMix64;

/// What the injector has done so far, cumulative.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Frames dropped by the `drop` chance.
    pub dropped_fault: u64,
    /// Frames dropped because the link was cut (on offer, or when due).
    pub dropped_cut: u64,
    /// Frames dropped because the queue was full.
    pub dropped_overflow: u64,
    /// Frames sent twice.
    pub duplicated: u64,
    /// Frames delivered after the frame that followed them.
    pub reordered: u64,
    /// Frames given a non-zero delay.
    pub delayed: u64,
}

/// What [`FaultInjector::offer`] did with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Dropped: the link is cut.
    Cut,
    /// Dropped by chance.
    Dropped,
    /// Held back to be sent after the next frame.
    Held,
    /// Queued `copies` times (1 or 2), due at `due`; the queue was full for
    /// any copy not counted in `copies`.
    Queued {
        /// When the frame is due.
        due: Duration,
        /// How many copies were queued.
        copies: u8,
    },
}

/// The frames and decisions of one link. See the module docs.
#[derive(Debug)]
pub struct FaultInjector {
    faults: LinkFaults,
    /// Chance, per eligible frame, of holding it back; derived from
    /// `faults.reorder` (see [`hold_chance`]).
    hold_ppm: u32,
    rng: SplitMix64,
    held: Option<Held>,
    queue: BinaryHeap<Reverse<Queued>>,
    capacity: usize,
    next_seq: u64,
    counts: FaultCounts,
}

#[derive(Debug)]
struct Held {
    frame: Vec<u8>,
    copies: u8,
    due: Duration,
    expires: Duration,
}

#[derive(Debug)]
struct Queued {
    due: Duration,
    seq: u64,
    frame: Vec<u8>,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

/// The per-frame hold chance q that makes a share r of all frames late.
///
/// A held frame is overtaken by the next frame, which is therefore not
/// eligible itself. With hold chance q among eligible frames, the eligible
/// share is 1/(1+q) and the late share r = q/(1+q); so q = r/(1-r).
/// r is capped at 50 %, where q = 100 %.
fn hold_chance(reorder: Percent) -> u32 {
    let r = u64::from(reorder.min(MAX_REORDER).ppm());
    let million = u64::from(Percent::HUNDRED.ppm());
    let q = r * million / (million - r);
    // r <= million/2 gives q <= million.
    u32::try_from(q.min(million)).unwrap_or(Percent::HUNDRED.ppm())
}

impl FaultInjector {
    /// Default bound on queued frames per link.
    pub const DEFAULT_CAPACITY: usize = 65_536;

    /// An injector whose random decisions are fixed by `seed`.
    pub fn new(faults: LinkFaults, seed: u64) -> Self {
        Self::with_capacity(faults, seed, Self::DEFAULT_CAPACITY)
    }

    /// Like [`FaultInjector::new`], queueing at most `capacity` frames;
    /// frames beyond that are dropped and counted.
    pub fn with_capacity(faults: LinkFaults, seed: u64, capacity: usize) -> Self {
        Self {
            hold_ppm: hold_chance(faults.reorder),
            faults,
            rng: SplitMix64::new(seed),
            held: None,
            queue: BinaryHeap::new(),
            capacity,
            next_seq: 0,
            counts: FaultCounts::default(),
        }
    }

    /// The faults in force.
    pub fn faults(&self) -> LinkFaults {
        self.faults
    }

    /// Changes the faults. Frames already queued keep their due times; a
    /// held frame is released (due at its original time) if reordering is
    /// switched off. A reorder above 50 % is treated as 50 %.
    pub fn set_faults(&mut self, faults: LinkFaults) {
        self.faults = faults;
        self.hold_ppm = hold_chance(faults.reorder);
        if self.hold_ppm == 0 {
            if let Some(held) = self.held.take() {
                self.enqueue(held.frame, held.copies, held.due);
            }
        }
    }

    /// What has happened so far.
    pub fn counts(&self) -> FaultCounts {
        self.counts
    }

    /// Frames waiting (queued or held).
    pub fn pending(&self) -> usize {
        self.queue.len() + usize::from(self.held.is_some())
    }

    /// The earliest time at which [`FaultInjector::poll`] has something to
    /// do, if any.
    pub fn next_deadline(&self) -> Option<Duration> {
        let queued = self.queue.peek().map(|q| q.0.due);
        let held = self.held.as_ref().map(|h| h.expires);
        match (queued, held) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn roll(&mut self, chance: u32) -> bool {
        match chance {
            0 => false,
            c if c >= Percent::HUNDRED.ppm() => true,
            c => self.rng.below(u64::from(Percent::HUNDRED.ppm())) < u64::from(c),
        }
    }

    fn sample_delay(&mut self) -> Duration {
        let jitter_ns = u64::try_from(self.faults.jitter.as_nanos()).unwrap_or(u64::MAX);
        let extra = if jitter_ns == 0 { 0 } else { self.rng.below(jitter_ns.saturating_add(1)) };
        self.faults.delay.saturating_add(Duration::from_nanos(extra))
    }

    fn enqueue(&mut self, frame: Vec<u8>, copies: u8, due: Duration) -> u8 {
        let mut queued = 0;
        let mut frame = Some(frame);
        for copy in 0..copies {
            if self.queue.len() >= self.capacity {
                self.counts.dropped_overflow += 1;
                continue;
            }
            let body =
                if copy + 1 == copies { frame.take().unwrap_or_default() } else { frame.clone().unwrap_or_default() };
            self.queue.push(Reverse(Queued { due, seq: self.next_seq, frame: body }));
            self.next_seq += 1;
            queued += 1;
        }
        queued
    }

    /// Takes a frame to be sent at `now` and decides its fate. Surviving
    /// frames come out of [`FaultInjector::poll`]; call it after this.
    pub fn offer(&mut self, frame: Vec<u8>, now: Duration) -> Fate {
        if self.faults.cut {
            self.counts.dropped_cut += 1;
            return Fate::Cut;
        }
        if self.roll(self.faults.drop.ppm()) {
            self.counts.dropped_fault += 1;
            return Fate::Dropped;
        }
        let copies = if self.roll(self.faults.duplicate.ppm()) {
            self.counts.duplicated += 1;
            2
        } else {
            1
        };
        let due = now.saturating_add(self.sample_delay());
        if due > now {
            self.counts.delayed += 1;
        }
        if let Some(held) = self.held.take() {
            // This frame overtakes the held one.
            let queued = self.enqueue(frame, copies, due);
            self.enqueue(held.frame, held.copies, held.due.max(due));
            self.counts.reordered += 1;
            return Fate::Queued { due, copies: queued };
        }
        if self.roll(self.hold_ppm) {
            self.held = Some(Held { frame, copies, due, expires: now.saturating_add(self.faults.reorder_hold) });
            return Fate::Held;
        }
        let queued = self.enqueue(frame, copies, due);
        Fate::Queued { due, copies: queued }
    }

    /// The frames due at `now`, in the order to send them. A held frame
    /// whose hold has expired is queued first (late, but not reordered). If
    /// the link is cut, due frames are dropped and counted instead.
    pub fn poll(&mut self, now: Duration) -> Vec<Vec<u8>> {
        if self.held.as_ref().is_some_and(|h| h.expires <= now) {
            if let Some(held) = self.held.take() {
                self.enqueue(held.frame, held.copies, held.due.max(held.expires));
            }
        }
        let mut out = Vec::new();
        while self.queue.peek().is_some_and(|q| q.0.due <= now) {
            let Some(Reverse(next)) = self.queue.pop() else {
                break;
            };
            if self.faults.cut {
                self.counts.dropped_cut += 1;
            } else {
                out.push(next.frame);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEEDS: [u64; 4] = [1, 2, 42, 0xdead_beef];
    const N: u32 = 10_000;

    fn faults(spec: &str) -> LinkFaults {
        spec.parse().unwrap()
    }

    fn tagged(i: u32) -> Vec<u8> {
        let mut frame = vec![0u8; 14];
        frame.extend_from_slice(&i.to_be_bytes());
        frame
    }

    fn tag(frame: &[u8]) -> u32 {
        u32::from_be_bytes(frame[14..18].try_into().unwrap())
    }

    /// Offers N tagged frames 1 us apart, polling after each, then drains.
    fn run(spec: &str, seed: u64) -> (Vec<u32>, FaultInjector) {
        let mut inj = FaultInjector::new(faults(spec), seed);
        let mut out = Vec::new();
        for i in 0..N {
            let now = Duration::from_micros(u64::from(i));
            inj.offer(tagged(i), now);
            out.extend(inj.poll(now).iter().map(|f| tag(f)));
        }
        out.extend(inj.poll(Duration::from_secs(3600)).iter().map(|f| tag(f)));
        assert_eq!(inj.pending(), 0);
        (out, inj)
    }

    fn assert_share(what: &str, count: u64, low_pct: f64, high_pct: f64, seed: u64) {
        let pct = count as f64 * 100.0 / f64::from(N);
        assert!((low_pct..=high_pct).contains(&pct), "{what}: {pct}% outside {low_pct}..{high_pct}% (seed {seed})");
    }

    #[test]
    fn no_faults_passes_everything_in_order() {
        for seed in SEEDS {
            let (out, inj) = run("none", seed);
            assert_eq!(out, (0..N).collect::<Vec<_>>());
            assert_eq!(inj.counts(), FaultCounts::default());
        }
    }

    #[test]
    fn drop_ten_percent() {
        for seed in SEEDS {
            let (out, inj) = run("drop=10", seed);
            let dropped = u64::from(N) - out.len() as u64;
            assert_eq!(dropped, inj.counts().dropped_fault);
            assert_share("drop", dropped, 8.5, 11.5, seed);
            // Survivors keep their order.
            assert!(out.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn duplicate_five_percent() {
        for seed in SEEDS {
            let (out, inj) = run("dup=5", seed);
            let extra = out.len() as u64 - u64::from(N);
            assert_eq!(extra, inj.counts().duplicated);
            assert_share("dup", extra, 4.0, 6.0, seed);
            // Each copy follows its original at once; nothing is lost.
            assert!(out.windows(2).all(|w| w[0] <= w[1]));
            let mut unique = out.clone();
            unique.dedup();
            assert_eq!(unique, (0..N).collect::<Vec<_>>());
        }
    }

    #[test]
    fn reorder_ten_percent_loses_nothing() {
        for seed in SEEDS {
            let (out, inj) = run("reorder=10", seed);
            let mut sorted = out.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..N).collect::<Vec<_>>(), "lost or duplicated");
            // A frame is late if a higher tag went out before it.
            let mut max_seen = None;
            let mut late = 0u64;
            for &t in &out {
                match max_seen {
                    Some(m) if t < m => late += 1,
                    _ => max_seen = Some(t),
                }
            }
            assert_eq!(late, inj.counts().reordered);
            assert_share("reorder", late, 8.5, 11.5, seed);
        }
    }

    #[test]
    fn reorder_fifty_percent_swaps_every_pair() {
        let mut inj = FaultInjector::new(faults("reorder=50"), 3);
        let mut out = Vec::new();
        for i in 0..6 {
            let now = Duration::from_micros(i.into());
            inj.offer(tagged(i), now);
            out.extend(inj.poll(now).iter().map(|f| tag(f)));
        }
        assert_eq!(out, [1, 0, 3, 2, 5, 4]);
    }

    #[test]
    fn held_frame_goes_out_after_the_hold_if_nothing_follows() {
        let mut inj = FaultInjector::new(faults("reorder=50,hold=5ms"), 3);
        let t0 = Duration::from_secs(1);
        assert_eq!(inj.offer(tagged(7), t0), Fate::Held);
        assert_eq!(inj.next_deadline(), Some(t0 + Duration::from_millis(5)));
        assert!(inj.poll(t0 + Duration::from_micros(4999)).is_empty());
        let out = inj.poll(t0 + Duration::from_millis(5));
        assert_eq!(out.iter().map(|f| tag(f)).collect::<Vec<_>>(), [7]);
        assert_eq!(inj.counts().reordered, 0);
        assert_eq!(inj.next_deadline(), None);
    }

    #[test]
    fn switching_reorder_off_releases_the_held_frame() {
        let mut inj = FaultInjector::new(faults("reorder=50"), 3);
        assert_eq!(inj.offer(tagged(1), Duration::ZERO), Fate::Held);
        inj.set_faults(LinkFaults::NONE);
        assert_eq!(inj.poll(Duration::ZERO).len(), 1);
    }

    #[test]
    fn delay_holds_each_frame_until_due() {
        let delay = Duration::from_millis(10);
        let jitter = Duration::from_millis(5);
        let step = Duration::from_micros(100);
        for seed in SEEDS {
            let mut inj = FaultInjector::new(faults("delay=10ms,jitter=5ms"), seed);
            let mut released_at = vec![None; 1000];
            let mut now = Duration::ZERO;
            for tick in 0..2000u32 {
                now = step * tick;
                if tick < 1000 {
                    match inj.offer(tagged(tick), now) {
                        Fate::Queued { due, copies: 1 } => {
                            assert!(due >= now + delay && due <= now + delay + jitter);
                            assert!(inj.next_deadline().unwrap() <= due);
                        }
                        other => panic!("unexpected {other:?}"),
                    }
                }
                for f in inj.poll(now) {
                    released_at[usize::try_from(tag(&f)).unwrap()] = Some(now);
                }
            }
            assert!(now > step * 1000 + delay + jitter);
            for (i, at) in released_at.iter().enumerate() {
                let sent = step * u32::try_from(i).unwrap();
                let at = at.unwrap_or_else(|| panic!("frame {i} never released"));
                assert!(at >= sent + delay, "frame {i} early");
                assert!(at < sent + delay + jitter + step, "frame {i} late");
            }
            assert_eq!(inj.counts().delayed, 1000);
        }
    }

    #[test]
    fn fixed_delay_is_exact_and_keeps_order() {
        let mut inj = FaultInjector::new(faults("delay=2ms"), 1);
        let t0 = Duration::from_millis(100);
        inj.offer(tagged(0), t0);
        inj.offer(tagged(1), t0 + Duration::from_micros(1));
        assert!(inj.poll(t0 + Duration::from_micros(1999)).is_empty());
        assert_eq!(inj.poll(t0 + Duration::from_millis(2)).len(), 1);
        assert_eq!(inj.next_deadline(), Some(t0 + Duration::from_micros(2001)));
        let rest = inj.poll(t0 + Duration::from_secs(1));
        assert_eq!(rest.iter().map(|f| tag(f)).collect::<Vec<_>>(), [1]);
    }

    #[test]
    fn cut_drops_everything_including_queued_frames() {
        for seed in SEEDS {
            let (out, inj) = run("cut,dup=50,delay=1ms", seed);
            assert!(out.is_empty());
            assert_eq!(inj.counts().dropped_cut, u64::from(N));
        }
        let mut inj = FaultInjector::new(faults("delay=1ms"), 1);
        inj.offer(tagged(0), Duration::ZERO);
        inj.set_faults(LinkFaults::CUT);
        assert!(inj.poll(Duration::from_secs(1)).is_empty());
        assert_eq!(inj.counts().dropped_cut, 1);
    }

    #[test]
    fn everything_at_once_is_reproducible_per_seed() {
        let spec = "drop=10,dup=5,reorder=5,delay=2ms,jitter=1ms";
        let (a, ca) = run(spec, 99);
        let (b, cb) = run(spec, 99);
        let (c, _) = run(spec, 100);
        assert_eq!(a, b);
        assert_eq!(ca.counts(), cb.counts());
        assert_ne!(a, c);
    }

    #[test]
    fn queue_is_bounded() {
        let mut inj = FaultInjector::with_capacity(faults("delay=1s"), 1, 4);
        for i in 0..10 {
            inj.offer(tagged(i), Duration::ZERO);
        }
        assert_eq!(inj.pending(), 4);
        assert_eq!(inj.counts().dropped_overflow, 6);
        assert_eq!(inj.poll(Duration::from_secs(1)).len(), 4);
    }

    #[test]
    fn absurd_unvalidated_durations_do_not_panic() {
        let huge = LinkFaults {
            delay: Duration::MAX,
            jitter: Duration::MAX,
            reorder_hold: Duration::MAX,
            reorder: Percent::HUNDRED,
            ..LinkFaults::NONE
        };
        let mut inj = FaultInjector::new(huge, 5);
        let now = Duration::from_secs(1);
        assert_eq!(inj.offer(tagged(0), now), Fate::Held);
        assert!(matches!(inj.offer(tagged(1), now), Fate::Queued { .. }));
        assert!(inj.poll(now).is_empty());
        assert_eq!(inj.next_deadline(), Some(Duration::MAX));
    }

    #[test]
    fn hold_chance_inverts_the_late_share() {
        assert_eq!(hold_chance(Percent::ZERO), 0);
        assert_eq!(hold_chance(MAX_REORDER), 1_000_000);
        assert_eq!(hold_chance(Percent::HUNDRED), 1_000_000);
        // 10 % late needs 11.11 % holds.
        assert_eq!(hold_chance(Percent::new(10.0).unwrap()), 111_111);
    }
}
