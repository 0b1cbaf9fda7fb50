//! Loom models of the SPSC ring. Run: see the crate docs.

use loom::thread;

use super::SpscRing;
use crate::loom_support::{model, Event};
use crate::{CoreId, NoNotify, WakeTarget};

const TARGET: WakeTarget = WakeTarget::Core(CoreId(0));

/// A ring on the heap for one loom execution, shared as `&'static`. Leaked:
/// loom threads must be `'static`, and the ring is a few dozen bytes.
fn leaked<const N: usize>() -> &'static SpscRing<u32, N> {
    Box::leak(Box::new(SpscRing::new()))
}

/// Messages cross intact and in order, with the ring filling up (capacity 2,
/// three messages) so the sender sees `Full` and the slot reuse is checked.
#[test]
fn loom_spsc_fifo_through_full_ring() {
    model(|| {
        let ring = leaked::<2>();
        let (mut tx, mut rx) = ring.split(NoNotify, TARGET).unwrap();
        let producer = thread::spawn(move || {
            for v in 1..=3 {
                let mut msg = v;
                while let Err(full) = tx.try_send(msg) {
                    msg = full.into_message();
                    thread::yield_now();
                }
            }
        });
        for expected in 1..=3 {
            loop {
                if let Some(got) = rx.try_recv() {
                    assert_eq!(got, expected);
                    break;
                }
                thread::yield_now();
            }
        }
        producer.join().unwrap();
        assert_eq!(rx.try_recv(), None);
    });
}

/// The receiver sleeps whenever `try_recv_or_arm` says it may. If a wake-up
/// could be lost, loom finds an execution where the receiver stays asleep
/// while the sender has finished: a deadlock, which fails the model.
#[test]
fn loom_spsc_no_lost_wakeup() {
    model(|| {
        let ring = leaked::<2>();
        let wake = Event::new();
        let (mut tx, mut rx) = ring.split(wake.clone(), TARGET).unwrap();
        let producer = thread::spawn(move || {
            tx.try_send(1).unwrap();
            tx.try_send(2).unwrap();
        });
        let mut got = Vec::new();
        let mut parks = 0;
        while got.len() < 2 {
            match rx.try_recv_or_arm() {
                Some(v) => got.push(v),
                None => {
                    parks += 1;
                    wake.sleep();
                }
            }
        }
        producer.join().unwrap();
        assert_eq!(got, [1, 2]);
        // At most one notification per send; at least one park was woken.
        let sent = wake.sent();
        assert!(sent <= 2);
        assert!(parks == 0 || sent >= 1);
    });
}
