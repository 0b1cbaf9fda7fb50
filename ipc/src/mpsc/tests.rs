use std::collections::VecDeque;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::MpscRing;
use crate::{AlreadySplit, ChannelFull, CountingNotify, NoNotify, Notify, ServiceId, WakeTarget};

const TARGET: WakeTarget = WakeTarget::Service(ServiceId(7));

/// A message that says who sent it and carries a checkable payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct Stamped {
    producer: u32,
    _pad: u32,
    seq: u64,
    check: u64,
}

impl Stamped {
    fn new(producer: u32, seq: u64) -> Self {
        Self { producer, _pad: 0, seq, check: (seq ^ u64::from(producer) << 48).wrapping_mul(0x9E37_79B9_7F4A_7C15) }
    }
    fn is_intact(&self) -> bool {
        *self == Self::new(self.producer, self.seq)
    }
}

#[test]
fn fifo_from_several_senders_and_full_hands_message_back() {
    let ring = MpscRing::<u32, 4>::new();
    let (tx, mut rx) = ring.split(NoNotify, TARGET).unwrap();
    let tx2 = tx.clone();
    tx.try_send(1).unwrap();
    tx2.try_send(2).unwrap();
    tx.try_send(3).unwrap();
    tx2.try_send(4).unwrap();
    assert_eq!(tx2.try_send(5), Err(ChannelFull(5)));
    for v in 1..=4 {
        assert_eq!(rx.try_recv(), Some(v));
    }
    assert!(rx.is_empty());
    assert_eq!(rx.try_recv(), None);
}

#[test]
fn endpoints_move_between_threads() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    sync::<MpscRing<Stamped, 4>>();
    send::<super::Sender<'static, Stamped, 4, &'static CountingNotify>>();
    sync::<super::Sender<'static, Stamped, 4, &'static CountingNotify>>();
    send::<super::Receiver<'static, Stamped, 4>>();
}

#[test]
fn splits_only_once() {
    let ring = MpscRing::<u32, 2>::new();
    let _endpoints = ring.split(NoNotify, TARGET).unwrap();
    assert!(matches!(ring.split(NoNotify, TARGET), Err(AlreadySplit)));
}

#[test]
fn init_in_builds_an_empty_ring_over_garbage() {
    let mut place = MaybeUninit::<MpscRing<Stamped, 4>>::uninit();
    // SAFETY: fills the `MaybeUninit` with garbage; no value is read.
    unsafe { place.as_mut_ptr().write_bytes(0x5A, 1) };
    let ring = MpscRing::init_in(&mut place);
    let (tx, mut rx) = ring.split(NoNotify, TARGET).unwrap();
    assert_eq!(rx.try_recv(), None);
    for lap in 0..3 {
        for i in 0..4 {
            tx.try_send(Stamped::new(lap, i)).unwrap();
        }
        for i in 0..4 {
            assert_eq!(rx.try_recv(), Some(Stamped::new(lap, i)));
        }
    }
}

#[test]
fn notifies_an_armed_receiver_once_across_senders() {
    let counter = CountingNotify::new();
    let ring = MpscRing::<u32, 8>::new();
    let (tx, mut rx) = ring.split(&counter, TARGET).unwrap();
    let tx2 = tx.clone();
    tx.try_send(1).unwrap();
    assert_eq!(counter.count(), 0);
    assert_eq!(rx.try_recv_or_arm(), Some(1));
    assert_eq!(rx.try_recv_or_arm(), None);
    tx2.try_send(2).unwrap();
    tx.try_send(3).unwrap();
    assert_eq!(counter.count(), 1);
}

#[derive(Clone, Debug)]
enum Op {
    Send { sender: usize, value: u32 },
    Recv,
    RecvOrArm,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            (0..3usize, any::<u32>()).prop_map(|(sender, value)| Op::Send { sender, value }),
            Just(Op::Recv),
            Just(Op::RecvOrArm)
        ],
        0..300,
    )
}

proptest! {
    /// With three sender clones used in one thread, the ring behaves as a
    /// bounded `VecDeque` and notifies exactly when a send lands on an
    /// armed ring.
    #[test]
    fn matches_bounded_vecdeque(ops in ops()) {
        const CAP: usize = 8;
        let counter = CountingNotify::new();
        let ring = MpscRing::<u32, CAP>::new();
        let (tx, mut rx) = ring.split(&counter, TARGET).unwrap();
        let senders = [tx.clone(), tx.clone(), tx];
        let mut model = VecDeque::new();
        let mut armed = false;
        let mut notifications = 0;
        for op in ops {
            match op {
                Op::Send { sender, value } => {
                    let got = senders[sender].try_send(value);
                    if model.len() == CAP {
                        prop_assert_eq!(got, Err(ChannelFull(value)));
                    } else {
                        prop_assert_eq!(got, Ok(()));
                        model.push_back(value);
                        if armed {
                            armed = false;
                            notifications += 1;
                        }
                    }
                }
                Op::Recv => prop_assert_eq!(rx.try_recv(), model.pop_front()),
                Op::RecvOrArm => {
                    let expected = model.pop_front();
                    prop_assert_eq!(rx.try_recv_or_arm(), expected);
                    armed = expected.is_none() || armed;
                }
            }
            prop_assert_eq!(counter.count(), notifications);
            prop_assert_eq!(rx.is_empty(), model.is_empty());
        }
    }
}

#[derive(Clone)]
struct Unpark {
    thread: thread::Thread,
    sent: &'static AtomicUsize,
}

impl Notify for Unpark {
    fn notify(&self, _target: WakeTarget) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.thread.unpark();
    }
}

const STRESS_MESSAGES: u64 = 1_000_000;

/// `producers` threads send `STRESS_MESSAGES` in total to one receiver that
/// parks whenever the ring is empty; checks every payload, per-producer
/// order, and that no wake-up was lost (the watchdog never fires).
fn stress(producers: u32) {
    let sent: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
    let ring: &'static MpscRing<Stamped, 256> = Box::leak(Box::new(MpscRing::new()));
    let notifier = Unpark { thread: thread::current(), sent };
    let (tx, mut rx) = ring.split(notifier, TARGET).unwrap();
    let per_producer = STRESS_MESSAGES / u64::from(producers);
    let started = Instant::now();
    let handles: Vec<_> = (0..producers)
        .map(|p| {
            let tx = tx.clone();
            thread::spawn(move || {
                for seq in 0..per_producer {
                    let mut msg = Stamped::new(p, seq);
                    while let Err(ChannelFull(back)) = tx.try_send(msg) {
                        msg = back;
                        thread::yield_now();
                    }
                }
            })
        })
        .collect();
    drop(tx);
    let watchdog = Duration::from_secs(5);
    let mut next = vec![0u64; producers as usize];
    let mut received = 0;
    let mut lost_wakeups = 0;
    let mut parks = 0u64;
    while received < per_producer * u64::from(producers) {
        match rx.try_recv_or_arm() {
            Some(msg) => {
                assert!(msg.is_intact(), "torn payload {msg:?}");
                let expected = &mut next[msg.producer as usize];
                assert_eq!(msg.seq, *expected, "out of order from {}", msg.producer);
                *expected += 1;
                received += 1;
            }
            None => {
                parks += 1;
                let slept = Instant::now();
                thread::park_timeout(watchdog);
                if slept.elapsed() >= watchdog {
                    lost_wakeups += 1;
                }
            }
        }
    }
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(lost_wakeups, 0);
    assert_eq!(rx.try_recv(), None);
    eprintln!(
        "mpsc {producers} producer(s): {received} messages in {:?}, {parks} parks, {} notifications",
        started.elapsed(),
        sent.load(Ordering::Relaxed)
    );
}

#[test]
fn stress_one_producer_parking_receiver() {
    stress(1);
}

#[test]
fn stress_four_producers_parking_receiver() {
    stress(4);
}
