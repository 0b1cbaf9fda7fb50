//! A bounded, lock-free ring from one sender to one receiver.
//!
//! Indices run freely (wrapping `usize`); a slot is `index & (N - 1)`. The
//! sender owns `tail`, the receiver owns `head`, each on its own cache line;
//! each endpoint keeps a private copy of the other's index and re-reads the
//! shared one only when its copy says the ring is full (sender) or empty
//! (receiver), so the common case touches one shared line per message.

use core::mem::MaybeUninit;

use crate::doorbell::{Doorbell, Wakeup};
use crate::message::zeroed;
use crate::sync::{loom_const_fn, repeat_array, AtomicUsize, CachePadded, Ordering, UnsafeCell};
use crate::{AlreadySplit, ChannelFull, Message, NoNotify, Notify, WakeTarget};

/// Storage of a single-producer, single-consumer channel of `N` messages.
///
/// `N` must be a power of two (checked at compile time). Build it in a
/// `static` with [`SpscRing::new`], or in kernel-provided memory with
/// [`SpscRing::init_in`]; then [`split`](SpscRing::split) it, once, into a
/// [`Sender`] and a [`Receiver`].
pub struct SpscRing<T: Message, const N: usize> {
    /// Next index the receiver reads. Written only by the receiver.
    head: CachePadded<AtomicUsize>,
    /// Next index the sender writes. Written only by the sender.
    tail: CachePadded<AtomicUsize>,
    doorbell: CachePadded<Doorbell>,
    slots: [UnsafeCell<T>; N],
}

// SAFETY: the ring is shared only through its two endpoints, handed out once
// (`Doorbell::claim`). The slot at index `i` is written only by the sender
// while `i` is outside `head..tail` and read only by the receiver while it is
// inside; the Release stores and Acquire loads of `head` and `tail` order each
// write before the matching read and each read before the next overwrite.
// Messages cross threads by value, which `T: Send` allows.
unsafe impl<T: Message + Send, const N: usize> Sync for SpscRing<T, N> {}

impl<T: Message, const N: usize> SpscRing<T, N> {
    const MASK: usize = {
        assert!(N.is_power_of_two(), "ring capacity must be a power of two");
        N - 1
    };

    loom_const_fn! {
        /// An empty ring, not yet split.
        pub fn new() -> Self {
            let _ = Self::MASK;
            Self {
                head: CachePadded(AtomicUsize::new(0)),
                tail: CachePadded(AtomicUsize::new(0)),
                doorbell: CachePadded(Doorbell::new()),
                slots: repeat_array!(N, UnsafeCell::new(zeroed::<T>())),
            }
        }
    }

    /// Builds an empty ring in memory the kernel provides (e.g. carved from a
    /// frame and mapped `&'static mut`), without building it on the stack.
    pub fn init_in(place: &mut MaybeUninit<Self>) -> &mut Self {
        #[cfg(not(loom))]
        {
            let _ = Self::MASK;
            // SAFETY: `place` is valid for writes of one `Self`.
            unsafe { place.as_mut_ptr().write_bytes(0, 1) };
            // SAFETY: all-zero bytes are a valid, empty ring, equal to
            // `new()`: atomics of 0/false, slots of `T: FromBytes`, padding.
            unsafe { place.assume_init_mut() }
        }
        #[cfg(loom)]
        {
            place.write(Self::new())
        }
    }

    /// How many messages the ring holds when full.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Hands out the ring's two endpoints. `notifier` is how the sender
    /// wakes the receiver, `target` names the receiver for it.
    pub fn split<W: Notify>(
        &self,
        notifier: W,
        target: WakeTarget,
    ) -> Result<(Sender<'_, T, N, W>, Receiver<'_, T, N>), AlreadySplit> {
        if !self.doorbell.claim() {
            return Err(AlreadySplit);
        }
        let head = self.head.load(Ordering::Acquire);
        let tail = self.tail.load(Ordering::Acquire);
        let sender = Sender { ring: self, wake: Wakeup { notifier, target }, tail, head_seen: head };
        let receiver = Receiver { ring: self, head, tail_seen: tail };
        Ok((sender, receiver))
    }
}

impl<T: Message, const N: usize> Default for SpscRing<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

/// The sending end of an [`SpscRing`]. Not `Clone`: there is one sender.
pub struct Sender<'a, T: Message, const N: usize, W: Notify = NoNotify> {
    ring: &'a SpscRing<T, N>,
    wake: Wakeup<W>,
    /// Our copy of `ring.tail` (only we write it).
    tail: usize,
    /// The receiver's `head` as last read; re-read only when the ring looks full.
    head_seen: usize,
}

impl<T: Message, const N: usize, W: Notify> Sender<'_, T, N, W> {
    /// Queues `msg`, or hands it back if the ring is full. Wakes the
    /// receiver if it armed itself to sleep.
    pub fn try_send(&mut self, msg: T) -> Result<(), ChannelFull<T>> {
        if self.tail.wrapping_sub(self.head_seen) == N {
            self.head_seen = self.ring.head.load(Ordering::Acquire);
            if self.tail.wrapping_sub(self.head_seen) == N {
                return Err(ChannelFull(msg));
            }
        }
        let slot = &self.ring.slots[self.tail & SpscRing::<T, N>::MASK];
        slot.with_mut(|p| {
            // SAFETY: `tail` is outside `head..tail`, so the receiver is not
            // reading this slot, and the Acquire load of `head` that showed it
            // free ordered the receiver's last read of it before this write.
            // We are the only sender.
            unsafe { p.write(msg) }
        });
        self.tail = self.tail.wrapping_add(1);
        self.ring.tail.store(self.tail, Ordering::Release);
        self.ring.doorbell.ring_if_armed(&self.wake);
        Ok(())
    }

    /// How many messages the ring holds when full.
    pub const fn capacity(&self) -> usize {
        N
    }
}

/// The receiving end of an [`SpscRing`]. Not `Clone`: there is one receiver.
pub struct Receiver<'a, T: Message, const N: usize> {
    ring: &'a SpscRing<T, N>,
    /// Our copy of `ring.head` (only we write it).
    head: usize,
    /// The sender's `tail` as last read; re-read only when the ring looks empty.
    tail_seen: usize,
}

impl<T: Message, const N: usize> Receiver<'_, T, N> {
    /// Takes the oldest message, if any.
    pub fn try_recv(&mut self) -> Option<T> {
        if self.head == self.tail_seen {
            self.tail_seen = self.ring.tail.load(Ordering::Acquire);
            if self.head == self.tail_seen {
                return None;
            }
        }
        let slot = &self.ring.slots[self.head & SpscRing::<T, N>::MASK];
        let msg = slot.with(|p| {
            // SAFETY: `head` is inside `head..tail`, so the sender published
            // this slot (the Acquire load of `tail` ordered its write before
            // this read) and will not touch it again until we move `head` on.
            unsafe { p.read() }
        });
        self.head = self.head.wrapping_add(1);
        self.ring.head.store(self.head, Ordering::Release);
        Some(msg)
    }

    /// Takes the oldest message or, if there is none, arms the ring so the
    /// next send notifies this receiver. After `None` the caller may sleep
    /// until notified; no message sent after this call can go unnoticed.
    pub fn try_recv_or_arm(&mut self) -> Option<T> {
        if let Some(msg) = self.try_recv() {
            return Some(msg);
        }
        self.ring.doorbell.arm();
        let msg = self.try_recv();
        if msg.is_some() {
            self.ring.doorbell.disarm();
        }
        msg
    }

    /// Arms the ring if it is empty, leaving any message in place: true
    /// means "empty and armed" (the caller may sleep until notified; no
    /// message sent after this call can go unnoticed), false means a
    /// message is waiting (and the ring is left disarmed). For receivers
    /// that watch several rings and sleep only when all are empty.
    pub fn arm_if_empty(&mut self) -> bool {
        if !self.is_empty() {
            return false;
        }
        self.ring.doorbell.arm();
        if self.is_empty() {
            return true;
        }
        self.ring.doorbell.disarm();
        false
    }

    /// Cancels an arming, e.g. after waking for another reason; saves the
    /// next sender a needless notification.
    pub fn disarm(&mut self) {
        self.ring.doorbell.disarm();
    }

    /// Messages waiting now (a lower bound while the sender is active).
    pub fn len(&self) -> usize {
        self.ring.tail.load(Ordering::Acquire).wrapping_sub(self.head)
    }

    /// `true` if no message is waiting now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many messages the ring holds when full.
    pub const fn capacity(&self) -> usize {
        N
    }
}

#[cfg(all(test, not(loom)))]
mod tests;

#[cfg(all(test, loom))]
mod loom_tests;
