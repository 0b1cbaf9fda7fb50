use std::collections::VecDeque;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::SpscRing;
use crate::{AlreadySplit, ChannelFull, CoreId, CountingNotify, NoNotify, Notify, WakeTarget};

const TARGET: WakeTarget = WakeTarget::Core(CoreId(1));

/// A message whose payload can be checked against its sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
struct Stamped {
    seq: u64,
    check: u64,
}

impl Stamped {
    fn new(seq: u64) -> Self {
        Self { seq, check: seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xDEAD_BEEF }
    }
    fn is_intact(&self) -> bool {
        *self == Self::new(self.seq)
    }
}

#[test]
fn fifo_order_and_full_hands_message_back() {
    let ring = SpscRing::<u32, 4>::new();
    let (mut tx, mut rx) = ring.split(NoNotify, TARGET).unwrap();
    assert_eq!(rx.try_recv(), None);
    for i in 0..4 {
        tx.try_send(i).unwrap();
    }
    assert_eq!(tx.try_send(99), Err(ChannelFull(99)));
    assert_eq!(rx.len(), 4);
    for i in 0..4 {
        assert_eq!(rx.try_recv(), Some(i));
    }
    assert!(rx.is_empty());
    tx.try_send(5).unwrap();
    assert_eq!(rx.try_recv(), Some(5));
}

#[test]
fn endpoints_move_between_threads() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    sync::<SpscRing<Stamped, 4>>();
    send::<super::Sender<'static, Stamped, 4, &'static CountingNotify>>();
    send::<super::Receiver<'static, Stamped, 4>>();
}

#[test]
fn splits_only_once() {
    let ring = SpscRing::<u32, 2>::new();
    let _endpoints = ring.split(NoNotify, TARGET).unwrap();
    assert!(matches!(ring.split(NoNotify, TARGET), Err(AlreadySplit)));
}

#[test]
fn capacity_one_works() {
    let ring = SpscRing::<u64, 1>::new();
    let (mut tx, mut rx) = ring.split(NoNotify, TARGET).unwrap();
    for i in 0..10 {
        tx.try_send(i).unwrap();
        assert!(tx.try_send(i).is_err());
        assert_eq!(rx.try_recv(), Some(i));
    }
}

#[test]
fn init_in_builds_an_empty_ring_over_garbage() {
    let mut place = MaybeUninit::<SpscRing<Stamped, 8>>::uninit();
    // SAFETY: fills the `MaybeUninit` with garbage; no value is read.
    unsafe { place.as_mut_ptr().write_bytes(0xA5, 1) };
    let ring = SpscRing::init_in(&mut place);
    let (mut tx, mut rx) = ring.split(NoNotify, TARGET).unwrap();
    assert_eq!(rx.try_recv(), None);
    tx.try_send(Stamped::new(3)).unwrap();
    assert_eq!(rx.try_recv(), Some(Stamped::new(3)));
}

#[test]
fn static_ring_across_threads() {
    static RING: SpscRing<u64, 16> = SpscRing::new();
    let (mut tx, mut rx) = RING.split(NoNotify, TARGET).unwrap();
    let producer = thread::spawn(move || {
        for i in 0..1000u64 {
            while tx.try_send(i).is_err() {
                thread::yield_now();
            }
        }
    });
    for i in 0..1000u64 {
        loop {
            if let Some(got) = rx.try_recv() {
                assert_eq!(got, i);
                break;
            }
            thread::yield_now();
        }
    }
    producer.join().unwrap();
}

#[test]
fn head_and_tail_on_separate_cache_lines() {
    let ring = SpscRing::<u8, 2>::new();
    let head = &ring.head as *const _ as usize;
    let tail = &ring.tail as *const _ as usize;
    assert!(head.abs_diff(tail) >= 64);
    assert_eq!(head % 64, 0);
    assert_eq!(tail % 64, 0);
}

#[test]
fn notifies_only_an_armed_receiver_once() {
    let counter = CountingNotify::new();
    let ring = SpscRing::<u32, 8>::new();
    let (mut tx, mut rx) = ring.split(&counter, TARGET).unwrap();

    tx.try_send(1).unwrap();
    assert_eq!(counter.count(), 0, "receiver never armed");
    assert_eq!(rx.try_recv_or_arm(), Some(1));
    assert_eq!(rx.try_recv_or_arm(), None, "armed, may sleep now");
    tx.try_send(2).unwrap();
    assert_eq!(counter.count(), 1);
    tx.try_send(3).unwrap();
    assert_eq!(counter.count(), 1, "one notification per arming");
    assert_eq!(rx.try_recv(), Some(2));
    assert_eq!(rx.try_recv(), Some(3));

    assert_eq!(rx.try_recv_or_arm(), None);
    rx.disarm();
    tx.try_send(4).unwrap();
    assert_eq!(counter.count(), 1, "disarmed receiver is not notified");
}

#[test]
fn arm_if_empty_leaves_messages_in_place_and_arms_only_when_empty() {
    let counter = CountingNotify::new();
    let ring = SpscRing::<u32, 8>::new();
    let (mut tx, mut rx) = ring.split(&counter, TARGET).unwrap();

    tx.try_send(1).unwrap();
    assert!(!rx.arm_if_empty(), "a message is waiting");
    tx.try_send(2).unwrap();
    assert_eq!(counter.count(), 0, "not armed while a message waited");
    assert_eq!(rx.try_recv(), Some(1), "the message stayed in place");
    assert_eq!(rx.try_recv(), Some(2));

    assert!(rx.arm_if_empty(), "empty: armed, may sleep now");
    tx.try_send(3).unwrap();
    assert_eq!(counter.count(), 1, "the armed receiver was notified");
    tx.try_send(4).unwrap();
    assert_eq!(counter.count(), 1, "one notification per arming");
    assert_eq!(rx.try_recv(), Some(3));
}

/// One operation of a property test.
#[derive(Clone, Debug)]
enum Op {
    Send(u32),
    Recv,
    RecvOrArm,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(prop_oneof![any::<u32>().prop_map(Op::Send), Just(Op::Recv), Just(Op::RecvOrArm)], 0..300)
}

proptest! {
    /// The ring behaves as a bounded `VecDeque`, and notifies exactly when
    /// a send lands on an armed ring.
    #[test]
    fn matches_bounded_vecdeque(ops in ops()) {
        const CAP: usize = 8;
        let counter = CountingNotify::new();
        let ring = SpscRing::<u32, CAP>::new();
        let (mut tx, mut rx) = ring.split(&counter, TARGET).unwrap();
        let mut model = VecDeque::new();
        let mut armed = false;
        let mut notifications = 0;
        for op in ops {
            match op {
                Op::Send(v) => {
                    let got = tx.try_send(v);
                    if model.len() == CAP {
                        prop_assert_eq!(got, Err(ChannelFull(v)));
                    } else {
                        prop_assert_eq!(got, Ok(()));
                        model.push_back(v);
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
            prop_assert_eq!(rx.len(), model.len());
        }
    }
}

/// Wakes a parked std thread: the test stand-in for the kernel's IPI.
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

#[test]
fn stress_two_threads_spinning() {
    let ring: &'static SpscRing<Stamped, 256> = Box::leak(Box::new(SpscRing::new()));
    let (mut tx, mut rx) = ring.split(NoNotify, TARGET).unwrap();
    let started = Instant::now();
    let producer = thread::spawn(move || {
        for seq in 0..STRESS_MESSAGES {
            let mut msg = Stamped::new(seq);
            while let Err(ChannelFull(back)) = tx.try_send(msg) {
                msg = back;
                std::hint::spin_loop();
                thread::yield_now();
            }
        }
    });
    let mut expected = 0;
    while expected < STRESS_MESSAGES {
        match rx.try_recv() {
            Some(msg) => {
                assert!(msg.is_intact(), "torn payload {msg:?}");
                assert_eq!(msg.seq, expected, "out of order");
                expected += 1;
            }
            None => thread::yield_now(),
        }
    }
    producer.join().unwrap();
    assert_eq!(rx.try_recv(), None);
    eprintln!("spsc spinning: {STRESS_MESSAGES} messages in {:?}", started.elapsed());
}

/// The receiver sleeps whenever the ring is empty; a lost wake-up would
/// leave it parked until the watchdog timeout, which the test counts.
#[test]
fn stress_two_threads_parking_loses_no_wakeup() {
    static SENT: AtomicUsize = AtomicUsize::new(0);
    let ring: &'static SpscRing<Stamped, 64> = Box::leak(Box::new(SpscRing::new()));
    let notifier = Unpark { thread: thread::current(), sent: &SENT };
    let (mut tx, mut rx) = ring.split(notifier, TARGET).unwrap();
    let started = Instant::now();
    let producer = thread::spawn(move || {
        for seq in 0..STRESS_MESSAGES {
            let mut msg = Stamped::new(seq);
            while let Err(ChannelFull(back)) = tx.try_send(msg) {
                msg = back;
                thread::yield_now();
            }
        }
    });
    let watchdog = Duration::from_secs(5);
    let mut expected = 0;
    let mut parks = 0u64;
    let mut lost_wakeups = 0u64;
    while expected < STRESS_MESSAGES {
        match rx.try_recv_or_arm() {
            Some(msg) => {
                assert!(msg.is_intact(), "torn payload {msg:?}");
                assert_eq!(msg.seq, expected, "out of order");
                expected += 1;
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
    producer.join().unwrap();
    assert_eq!(lost_wakeups, 0);
    eprintln!(
        "spsc parking: {STRESS_MESSAGES} messages in {:?}, {parks} parks, {} notifications",
        started.elapsed(),
        SENT.load(Ordering::Relaxed)
    );
}
