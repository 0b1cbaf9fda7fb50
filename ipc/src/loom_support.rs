//! Shared pieces of the loom models (compiled only under `cfg(all(test, loom))`).

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{Arc, Condvar, Mutex};

use crate::{Notify, WakeTarget};

/// Runs a model with a preemption bound, so every model ends in seconds.
/// Bugs that need more than 3 preemptions to show are not explored.
pub(crate) fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(f);
}

/// A sticky wake-up, standing in for the kernel's IPI: a `notify` that
/// comes before `sleep` makes `sleep` return at once. (Loom's own
/// `unpark` would also wake a thread blocked in `join`, which loom rejects.)
#[derive(Clone)]
pub(crate) struct Event {
    inner: Arc<(Mutex<bool>, Condvar, AtomicUsize)>,
}

impl Event {
    pub(crate) fn new() -> Self {
        Self { inner: Arc::new((Mutex::new(false), Condvar::new(), AtomicUsize::new(0))) }
    }

    /// Sleeps until notified (or returns at once if a notification is pending).
    pub(crate) fn sleep(&self) {
        let (pending, condvar, _) = &*self.inner;
        let mut pending = pending.lock().unwrap();
        while !*pending {
            pending = condvar.wait(pending).unwrap();
        }
        *pending = false;
    }

    /// Notifications sent so far.
    pub(crate) fn sent(&self) -> usize {
        self.inner.2.load(Ordering::SeqCst)
    }
}

impl Notify for Event {
    fn notify(&self, _target: WakeTarget) {
        let (pending, condvar, sent) = &*self.inner;
        sent.fetch_add(1, Ordering::SeqCst);
        *pending.lock().unwrap() = true;
        condvar.notify_one();
    }
}
