//! The `waiting` flag shared by a ring's receiver and its senders (see
//! [`crate::notify`] for the handshake), and the one-time split claim.

use crate::sync::{fence, loom_const_fn, AtomicBool, Ordering};
use crate::{Notify, WakeTarget};

/// Per-ring control words, written rarely: by a receiver about to sleep, and
/// once at split.
///
/// Every write to `waiting` is a read-modify-write (`swap`), never a plain
/// store. Then the flag's history is one chain in which each write follows
/// the one it read, which is what loom needs to check the handshake exactly
/// (it models modification order as a partial order, and with plain stores
/// racing a sender's `swap` it reports lost wake-ups that C11 rules out). On
/// x86 a `swap` is one `xchg`, no dearer than the fence beside it.
pub(crate) struct Doorbell {
    /// Set by the receiver before it sleeps; cleared by the sender that wakes it.
    waiting: AtomicBool,
    /// Set once, when the ring is split into endpoints.
    claimed: AtomicBool,
}

impl Doorbell {
    loom_const_fn! {
        pub(crate) fn new() -> Self {
            Self {
                waiting: AtomicBool::new(false),
                claimed: AtomicBool::new(false),
            }
        }
    }

    /// Claims the ring for its one pair of endpoints. `false` if already claimed.
    pub(crate) fn claim(&self) -> bool {
        !self.claimed.swap(true, Ordering::AcqRel)
    }

    /// Receiver side: announce that it is about to sleep. The caller must
    /// look at the ring once more after this returns, and sleep only if it
    /// is still empty.
    pub(crate) fn arm(&self) {
        self.waiting.swap(true, Ordering::Relaxed);
        // Pairs with the fence in `ring_if_armed`: either this thread's
        // re-check sees the sender's published message, or the sender's
        // load sees `waiting == true`.
        fence(Ordering::SeqCst);
    }

    /// Receiver side: it found work after arming, or woke for another reason.
    pub(crate) fn disarm(&self) {
        self.waiting.swap(false, Ordering::Relaxed);
    }

    /// Sender side, after publishing a message: wake the receiver if armed.
    /// Only one of several racing senders sends the notification.
    pub(crate) fn ring_if_armed<W: Notify>(&self, wake: &Wakeup<W>) {
        fence(Ordering::SeqCst);
        if self.waiting.swap(false, Ordering::Relaxed) {
            wake.notifier.notify(wake.target);
        }
    }
}

/// What a sender needs to wake its receiver.
#[derive(Clone)]
pub(crate) struct Wakeup<W> {
    pub(crate) notifier: W,
    pub(crate) target: WakeTarget,
}
