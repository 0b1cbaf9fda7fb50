//! Waking a receiver that may be asleep.
//!
//! A receiver that finds its ring empty *arms* it (sets the ring's `waiting`
//! flag), checks the ring once more, and only then sleeps. A sender checks the
//! flag after publishing a message and, if it is set, clears it and calls
//! [`Notify::notify`]. A sequentially consistent fence on both sides makes the
//! pair a Dekker handshake: either the receiver's re-check sees the message, or
//! the sender sees the flag. So no wake-up is lost, and a busy receiver (never
//! armed) costs its senders one fence and one load per message, no notification.

use core::sync::atomic::{AtomicUsize, Ordering};

use crate::WakeTarget;

/// How the kernel wakes a receiver: an IPI to its core, or marking its
/// service runnable on its executor.
///
/// An implementation must be *sticky*: a notification that arrives after the
/// receiver armed its ring but before it actually went to sleep must stop that
/// sleep (a pending flag checked before `hlt`, `sti; hlt`, an unpark token).
pub trait Notify {
    /// Wake `target`. Called by a sender, at most once per arming.
    fn notify(&self, target: WakeTarget);
}

impl<N: Notify + ?Sized> Notify for &N {
    fn notify(&self, target: WakeTarget) {
        (**self).notify(target);
    }
}

/// A notifier that never wakes anyone, for receivers that only poll.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoNotify;

impl Notify for NoNotify {
    fn notify(&self, _target: WakeTarget) {}
}

/// A fake notifier for tests: counts the notifications it was asked to send.
#[derive(Debug, Default)]
pub struct CountingNotify {
    count: AtomicUsize,
}

impl CountingNotify {
    /// A counter at zero.
    pub const fn new() -> Self {
        Self { count: AtomicUsize::new(0) }
    }

    /// How many notifications were sent so far.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

impl Notify for CountingNotify {
    fn notify(&self, _target: WakeTarget) {
        self.count.fetch_add(1, Ordering::SeqCst);
    }
}
