//! Loom models of the MPSC ring. Run: see the crate docs.

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;

use super::MpscRing;
use crate::loom_support::{model, Event};
use crate::{CoreId, Notify, WakeTarget};

const TARGET: WakeTarget = WakeTarget::Core(CoreId(0));

/// A ring for one loom execution, shared as `&'static` (loom threads must
/// be `'static`); leaked, it is a few dozen bytes.
fn leaked<const N: usize>() -> &'static MpscRing<u32, N> {
    Box::leak(Box::new(MpscRing::new()))
}

/// Two senders, one message each; the receiver sleeps whenever
/// `try_recv_or_arm` allows. A lost wake-up shows up as a loom deadlock,
/// including the case where the later sender publishes first and the
/// receiver must wait for the earlier, slower one.
#[test]
fn loom_mpsc_no_lost_wakeup() {
    model(|| {
        let ring = leaked::<2>();
        let wake = Event::new();
        let (tx, mut rx) = ring.split(wake.clone(), TARGET).unwrap();
        let tx2 = tx.clone();
        let a = thread::spawn(move || tx.try_send(1).unwrap());
        let b = thread::spawn(move || tx2.try_send(2).unwrap());
        let mut got = Vec::new();
        while got.len() < 2 {
            match rx.try_recv_or_arm() {
                Some(v) => got.push(v),
                None => wake.sleep(),
            }
        }
        a.join().unwrap();
        b.join().unwrap();
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
        assert!(wake.sent() <= 2);
    });
}

/// Two senders race for the slots of a capacity-2 ring; A sends twice, so
/// a slot is reused a lap later and the ring can fill. A retries on full;
/// B, finding it full, keeps its message (the owner's choice) and tells the
/// receiver. Every message sent arrives once, intact, each sender's in order.
///
/// The receiver sleeps and B does not retry: loom schedules unfairly, and two
/// spinning threads could starve the one they both wait for.
#[test]
fn loom_mpsc_two_senders_through_full_ring() {
    model(|| {
        let ring = leaked::<2>();
        let wake = Event::new();
        let (tx, mut rx) = ring.split(wake.clone(), TARGET).unwrap();
        let tx2 = tx.clone();
        let b_kept = Arc::new(AtomicBool::new(false));
        let a = thread::spawn(move || {
            for v in [10, 11] {
                let mut msg = v;
                while let Err(full) = tx.try_send(msg) {
                    msg = full.into_message();
                    thread::yield_now();
                }
            }
        });
        let b_kept2 = b_kept.clone();
        let b_wake = wake.clone();
        let b = thread::spawn(move || {
            if let Err(full) = tx2.try_send(20) {
                assert_eq!(full.into_message(), 20);
                b_kept2.store(true, Ordering::SeqCst);
                b_wake.notify(TARGET);
            }
        });
        let mut got = Vec::new();
        loop {
            let expected = if b_kept.load(Ordering::SeqCst) { 2 } else { 3 };
            if got.len() == expected {
                break;
            }
            match rx.try_recv_or_arm() {
                Some(v) => got.push(v),
                None => wake.sleep(),
            }
        }
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(rx.try_recv(), None);
        let from_a: Vec<_> = got.iter().copied().filter(|v| *v < 20).collect();
        assert_eq!(from_a, [10, 11]);
        assert_eq!(got.contains(&20), !b_kept.load(Ordering::SeqCst));
    });
}
