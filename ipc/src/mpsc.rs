//! A bounded, lock-free ring from many senders to one receiver.
//!
//! Dmitry Vyukov's bounded queue: each slot carries a sequence number that
//! says whose turn it is. For the slot of position `pos` (`pos & (N - 1)`):
//! sequence `pos` means free for the sender that claims `pos`; `pos + 1` means
//! filled, for the receiver at `pos`; the receiver then sets `pos + N`, which
//! frees it for the sender one lap later. Senders claim positions with a CAS
//! on `enqueue`; the single receiver needs no CAS.
//!
//! A slot stores its sequence *minus its own index*, so a ring of all-zero
//! bytes is a valid empty ring: it can be a `const`-built `static` or zeroed
//! kernel memory.
//!
//! Unlike the SPSC ring this one is not linearizable: while a slow sender
//! holds the oldest claimed position, the receiver sees the ring empty even if
//! later senders finished. That sender wakes the receiver when it publishes.

use core::mem::MaybeUninit;

use crate::doorbell::{Doorbell, Wakeup};
use crate::message::zeroed;
use crate::sync::{loom_const_fn, repeat_array, AtomicUsize, CachePadded, Ordering, UnsafeCell};
use crate::{AlreadySplit, ChannelFull, Message, NoNotify, Notify, WakeTarget};

struct Slot<T> {
    /// The slot's sequence number minus the slot's index (see module docs).
    seq: AtomicUsize,
    value: UnsafeCell<T>,
}

impl<T: Message> Slot<T> {
    loom_const_fn! {
        fn new() -> Self {
            Self {
                seq: AtomicUsize::new(0),
                value: UnsafeCell::new(zeroed::<T>()),
            }
        }
    }
}

/// Storage of a many-producer, single-consumer channel of `N` messages.
///
/// `N` must be a power of two, at least 2 (checked at compile time). Build it
/// in a `static` with [`MpscRing::new`] or in kernel-provided memory with
/// [`MpscRing::init_in`], then [`split`](MpscRing::split) it once; clone the
/// [`Sender`] for each producer.
pub struct MpscRing<T: Message, const N: usize> {
    /// Next position a sender claims. (The receiver's position lives in
    /// its [`Receiver`]: nobody else needs it.)
    enqueue: CachePadded<AtomicUsize>,
    doorbell: CachePadded<Doorbell>,
    slots: [Slot<T>; N],
}

// SAFETY: a slot's value is written only by the sender whose CAS on `enqueue`
// claimed that position while the slot's sequence said "free", and read only
// by the single receiver (endpoints are handed out once, and `Receiver` is not
// `Clone`) after the sequence said "filled". The Release store and Acquire
// load of each slot's sequence order the write before the read and the read
// before the next lap's write. Messages cross threads by value (`T: Send`).
unsafe impl<T: Message + Send, const N: usize> Sync for MpscRing<T, N> {}

impl<T: Message, const N: usize> MpscRing<T, N> {
    const MASK: usize = {
        assert!(N.is_power_of_two() && N >= 2, "MPSC ring capacity must be a power of two, at least 2");
        N - 1
    };

    loom_const_fn! {
        /// An empty ring, not yet split.
        pub fn new() -> Self {
            let _ = Self::MASK;
            Self {
                enqueue: CachePadded(AtomicUsize::new(0)),
                doorbell: CachePadded(Doorbell::new()),
                slots: repeat_array!(N, Slot::new()),
            }
        }
    }

    /// Builds an empty ring in memory the kernel provides, without building
    /// it on the stack.
    pub fn init_in(place: &mut MaybeUninit<Self>) -> &mut Self {
        #[cfg(not(loom))]
        {
            let _ = Self::MASK;
            // SAFETY: `place` is valid for writes of one `Self`.
            unsafe { place.as_mut_ptr().write_bytes(0, 1) };
            // SAFETY: all-zero bytes are a valid, empty ring, equal to
            // `new()`: atomics of 0/false, slot sequences stored relative to
            // the slot index (0 = free for lap 0), slots of `T: FromBytes`.
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

    /// Hands out the ring's endpoints. `notifier` is how senders wake the
    /// receiver, `target` names the receiver for it.
    pub fn split<W: Notify + Clone>(
        &self,
        notifier: W,
        target: WakeTarget,
    ) -> Result<(Sender<'_, T, N, W>, Receiver<'_, T, N>), AlreadySplit> {
        if !self.doorbell.claim() {
            return Err(AlreadySplit);
        }
        let sender = Sender { ring: self, wake: Wakeup { notifier, target } };
        let receiver = Receiver { ring: self, pos: 0 };
        Ok((sender, receiver))
    }

    /// The sequence number of the slot for position `pos`.
    fn sequence(&self, pos: usize) -> usize {
        let index = pos & Self::MASK;
        self.slots[index].seq.load(Ordering::Acquire).wrapping_add(index)
    }

    /// Sets the sequence number of the slot for position `pos`.
    fn set_sequence(&self, pos: usize, seq: usize) {
        let index = pos & Self::MASK;
        self.slots[index].seq.store(seq.wrapping_sub(index), Ordering::Release);
    }
}

impl<T: Message, const N: usize> Default for MpscRing<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

/// A sending end of an [`MpscRing`]; clone it for each producer.
#[derive(Clone)]
pub struct Sender<'a, T: Message, const N: usize, W: Notify + Clone = NoNotify> {
    ring: &'a MpscRing<T, N>,
    wake: Wakeup<W>,
}

impl<T: Message, const N: usize, W: Notify + Clone> Sender<'_, T, N, W> {
    /// Queues `msg`, or hands it back if the ring is full. Wakes the
    /// receiver if it armed itself to sleep.
    pub fn try_send(&self, msg: T) -> Result<(), ChannelFull<T>> {
        let ring = self.ring;
        let mut pos = ring.enqueue.load(Ordering::Relaxed);
        loop {
            let seq = ring.sequence(pos);
            // Signed distance between the slot's turn and ours.
            let lag = seq.wrapping_sub(pos) as isize;
            if lag == 0 {
                match ring.enqueue.compare_exchange_weak(pos, pos.wrapping_add(1), Ordering::Relaxed, Ordering::Relaxed)
                {
                    Ok(_) => break,
                    Err(now) => pos = now,
                }
            } else if lag < 0 {
                // The slot still holds the message of the previous lap.
                return Err(ChannelFull(msg));
            } else {
                // Another sender claimed `pos` since we read `enqueue`.
                pos = ring.enqueue.load(Ordering::Relaxed);
            }
        }
        ring.slots[pos & MpscRing::<T, N>::MASK].value.with_mut(|p| {
            // SAFETY: our CAS claimed `pos` while the slot's sequence was
            // `pos` (free): no other sender can claim it this lap, and the
            // receiver does not read it until we publish `pos + 1` below.
            // The Acquire load of the sequence ordered the receiver's last
            // read of this slot before this write.
            unsafe { p.write(msg) }
        });
        ring.set_sequence(pos, pos.wrapping_add(1));
        ring.doorbell.ring_if_armed(&self.wake);
        Ok(())
    }

    /// How many messages the ring holds when full.
    pub const fn capacity(&self) -> usize {
        N
    }
}

/// The receiving end of an [`MpscRing`]. Not `Clone`: there is one receiver.
pub struct Receiver<'a, T: Message, const N: usize> {
    ring: &'a MpscRing<T, N>,
    /// Next position to read.
    pos: usize,
}

impl<T: Message, const N: usize> Receiver<'_, T, N> {
    /// Takes the oldest published message, if any.
    pub fn try_recv(&mut self) -> Option<T> {
        let ring = self.ring;
        let pos = self.pos;
        if ring.sequence(pos) != pos.wrapping_add(1) {
            return None;
        }
        let msg = ring.slots[pos & MpscRing::<T, N>::MASK].value.with(|p| {
            // SAFETY: the slot's sequence is `pos + 1`: the sender that
            // claimed `pos` published it (the Acquire load ordered its write
            // before this read), and no sender reuses it until we set `pos + N`.
            unsafe { p.read() }
        });
        ring.set_sequence(pos, pos.wrapping_add(N));
        self.pos = pos.wrapping_add(1);
        Some(msg)
    }

    /// Takes the oldest message or, if there is none, arms the ring so the
    /// next publishing sender notifies this receiver. After `None` the caller
    /// may sleep until notified; no message published after this call can go
    /// unnoticed.
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

    /// Cancels an arming; saves the next sender a needless notification.
    pub fn disarm(&mut self) {
        self.ring.doorbell.disarm();
    }

    /// `true` if the oldest claimed position is not yet published.
    pub fn is_empty(&self) -> bool {
        self.ring.sequence(self.pos) != self.pos.wrapping_add(1)
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
