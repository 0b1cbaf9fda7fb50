//! The frame link under the management stack, and its smoltcp adapter.

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;

use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// Largest Ethernet frame the management stack sends or takes (no FCS).
pub const MAX_FRAME: usize = 1514;

/// Something that moves whole Ethernet frames: the `nic` service's
/// management channel in the firmware, a switch host port on the host, or
/// [`LoopbackLink`] in tests.
pub trait FrameLink {
    /// Sends one frame. Returns false if it was dropped (queue full, link
    /// down); the stack's own retries cover that.
    fn transmit(&mut self, frame: &[u8]) -> bool;
    /// Copies the next received frame into `buf` and returns its length
    /// (frames longer than `buf` are dropped by the link and never seen).
    fn receive(&mut self, buf: &mut [u8]) -> Option<usize>;
}

/// Frames counted by [`LinkDevice`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LinkCounts {
    pub(crate) frames_in: u64,
    pub(crate) frames_out: u64,
    pub(crate) tx_dropped: u64,
}

/// smoltcp's view of a [`FrameLink`].
pub(crate) struct LinkDevice<'a, L: FrameLink + ?Sized> {
    pub(crate) link: &'a mut L,
    pub(crate) rx_buf: &'a mut [u8; MAX_FRAME],
    pub(crate) counts: &'a mut LinkCounts,
}

pub(crate) struct Rx<'a> {
    frame: &'a [u8],
}

pub(crate) struct Tx<'a, L: FrameLink + ?Sized> {
    link: &'a mut L,
    counts: &'a mut LinkCounts,
}

impl phy::RxToken for Rx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.frame)
    }
}

impl<L: FrameLink + ?Sized> phy::TxToken for Tx<'_, L> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = [0u8; MAX_FRAME];
        let len = len.min(MAX_FRAME);
        let result = f(&mut frame[..len]);
        if self.link.transmit(&frame[..len]) {
            self.counts.frames_out += 1;
        } else {
            self.counts.tx_dropped += 1;
        }
        result
    }
}

impl<L: FrameLink + ?Sized> phy::Device for LinkDevice<'_, L> {
    type RxToken<'b>
        = Rx<'b>
    where
        Self: 'b;
    type TxToken<'b>
        = Tx<'b, L>
    where
        Self: 'b;

    fn receive(&mut self, _timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let len = self.link.receive(&mut self.rx_buf[..])?.min(MAX_FRAME);
        self.counts.frames_in += 1;
        Some((Rx { frame: &self.rx_buf[..len] }, Tx { link: &mut *self.link, counts: &mut *self.counts }))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<Self::TxToken<'_>> {
        Some(Tx { link: &mut *self.link, counts: &mut *self.counts })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MAX_FRAME;
        caps.max_burst_size = Some(1);
        caps
    }
}

type Queue = Rc<RefCell<VecDeque<Vec<u8>>>>;

/// One end of an in-memory, lossless, bounded point-to-point link (tests,
/// and anything that needs two stacks without a NIC). Frames beyond the
/// queue's capacity are dropped, as a full NIC ring would.
pub struct LoopbackLink {
    inbox: Queue,
    outbox: Queue,
    capacity: usize,
}

impl LoopbackLink {
    /// Two connected ends, each queueing at most `capacity` frames.
    pub fn pair(capacity: usize) -> (LoopbackLink, LoopbackLink) {
        let a: Queue = Rc::default();
        let b: Queue = Rc::default();
        (LoopbackLink { inbox: a.clone(), outbox: b.clone(), capacity }, LoopbackLink { inbox: b, outbox: a, capacity })
    }

    /// Puts a raw frame into this end's receive queue, as if the peer had
    /// sent it (tests inject malformed input this way).
    pub fn inject(&self, frame: &[u8]) {
        self.inbox.borrow_mut().push_back(frame.to_vec());
    }

    /// Frames waiting to be received on this end.
    pub fn pending(&self) -> usize {
        self.inbox.borrow().len()
    }
}

impl FrameLink for LoopbackLink {
    fn transmit(&mut self, frame: &[u8]) -> bool {
        let mut out = self.outbox.borrow_mut();
        if out.len() >= self.capacity || frame.len() > MAX_FRAME {
            return false;
        }
        out.push_back(frame.to_vec());
        true
    }

    fn receive(&mut self, buf: &mut [u8]) -> Option<usize> {
        loop {
            let frame = self.inbox.borrow_mut().pop_front()?;
            if let Some(dst) = buf.get_mut(..frame.len()) {
                dst.copy_from_slice(&frame);
                return Some(frame.len());
            }
        }
    }
}
