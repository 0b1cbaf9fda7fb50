//! The receiving half of one peer session: duplicate suppression, a
//! bounded out-of-order buffer, in-order reassembly of fragments, and the
//! acknowledgement and window it advertises.
//!
//! Space is counted in frames. `held` is what the user has not taken yet:
//! fragments of the message being reassembled plus fragments of complete
//! messages still in the user's queue. The right edge of the window is
//! `cum + window - held`; frames out of order occupy slots below it. So the
//! whole buffer never exceeds `window` frames, and the edge never moves
//! left (a frame that becomes held also advances `cum`).

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::ids::MessageId;

/// A fragment that arrived before its predecessors.
#[derive(Debug)]
struct Fragment {
    msg_id: u64,
    index: u16,
    count: u16,
    payload: Vec<u8>,
}

/// The message being put back together.
#[derive(Debug)]
struct Reassembly {
    msg_id: u64,
    count: u16,
    next_index: u16,
    data: Vec<u8>,
}

/// A fragment as it arrives, borrowed from the frame.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FragmentRef<'a> {
    pub(crate) msg_id: u64,
    pub(crate) index: u16,
    pub(crate) count: u16,
    pub(crate) payload: &'a [u8],
}

/// A message whose last fragment arrived.
#[derive(Debug)]
pub(crate) struct Completed {
    pub(crate) id: MessageId,
    pub(crate) data: Vec<u8>,
    /// Frames it held in the window until the user takes it.
    pub(crate) frames: u32,
}

/// What became of a data frame.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum RxOutcome {
    /// It was the next expected frame (and may have released buffered ones).
    InOrder,
    /// Stored until the gap before it is filled.
    Buffered,
    /// Already received.
    Duplicate,
    /// Beyond the advertised window.
    OutOfWindow,
}

/// Receiver state for one peer session.
#[derive(Debug)]
pub(crate) struct Receiver {
    /// Every sequence number up to here has arrived.
    cum: u64,
    /// Slot `i` holds sequence number `cum + 1 + i`, if it arrived.
    out_of_order: VecDeque<Option<Fragment>>,
    reassembly: Option<Reassembly>,
    held: u32,
    window: u32,
    max_message_len: usize,
    /// Frames accepted since the last ack left.
    pub(crate) unacked: u32,
    /// When a delayed ack must leave.
    pub(crate) ack_deadline: Option<u64>,
    /// An ack is due and no data frame has carried it yet.
    pub(crate) ack_owed: bool,
    /// The right edge in the last ack sent.
    advertised_edge: u64,
    pub(crate) reassembly_errors: u64,
}

impl Receiver {
    pub(crate) fn new(window: u16, max_message_len: u32) -> Self {
        Self {
            cum: 0,
            out_of_order: VecDeque::new(),
            reassembly: None,
            held: 0,
            window: u32::from(window),
            max_message_len: max_message_len as usize,
            unacked: 0,
            ack_deadline: None,
            ack_owed: false,
            advertised_edge: u64::from(window),
            reassembly_errors: 0,
        }
    }

    pub(crate) fn right_edge(&self) -> u64 {
        self.cum + u64::from(self.window.saturating_sub(self.held))
    }

    /// `(ack, sack, window)` for the next frame to this peer.
    pub(crate) fn ack_fields(&self) -> (u64, u64, u16) {
        let mut sack = 0u64;
        // Slot 0 is `cum + 1`, missing by definition; bit i is `cum + 2 + i`.
        for (i, slot) in self.out_of_order.iter().skip(1).take(64).enumerate() {
            if slot.is_some() {
                sack |= 1 << i;
            }
        }
        let window = u16::try_from(self.window.saturating_sub(self.held)).unwrap_or(u16::MAX);
        (self.cum, sack, window)
    }

    /// An ack left (alone or on a data frame).
    pub(crate) fn ack_sent(&mut self) {
        self.unacked = 0;
        self.ack_deadline = None;
        self.ack_owed = false;
        self.advertised_edge = self.right_edge();
    }

    /// Where `seq` would land, without changing anything.
    pub(crate) fn classify(&self, seq: u64) -> RxOutcome {
        if seq <= self.cum {
            return RxOutcome::Duplicate;
        }
        if seq > self.right_edge() {
            return RxOutcome::OutOfWindow;
        }
        let slot = (seq - self.cum - 1) as usize;
        match self.out_of_order.get(slot) {
            Some(Some(_)) => RxOutcome::Duplicate,
            _ if slot == 0 => RxOutcome::InOrder,
            _ => RxOutcome::Buffered,
        }
    }

    /// Takes a data frame; complete messages go to `deliver`.
    pub(crate) fn accept(
        &mut self,
        seq: u64,
        fragment: FragmentRef<'_>,
        deliver: &mut dyn FnMut(Completed),
    ) -> RxOutcome {
        let outcome = self.classify(seq);
        match outcome {
            RxOutcome::Duplicate | RxOutcome::OutOfWindow => {}
            RxOutcome::Buffered => {
                let slot = (seq - self.cum - 1) as usize;
                if self.out_of_order.len() <= slot {
                    self.out_of_order.resize_with(slot + 1, || None);
                }
                self.out_of_order[slot] = Some(Fragment {
                    msg_id: fragment.msg_id,
                    index: fragment.index,
                    count: fragment.count,
                    payload: fragment.payload.to_vec(),
                });
            }
            RxOutcome::InOrder => {
                self.out_of_order.pop_front();
                self.cum += 1;
                self.reassemble(fragment, deliver);
                while let Some(Some(_)) = self.out_of_order.front() {
                    let Some(Some(f)) = self.out_of_order.pop_front() else { break };
                    self.cum += 1;
                    let next = FragmentRef { msg_id: f.msg_id, index: f.index, count: f.count, payload: &f.payload };
                    self.reassemble(next, deliver);
                }
            }
        }
        outcome
    }

    fn reassemble(&mut self, f: FragmentRef<'_>, deliver: &mut dyn FnMut(Completed)) {
        let continues = self
            .reassembly
            .as_ref()
            .is_some_and(|r| r.msg_id == f.msg_id && r.count == f.count && r.next_index == f.index);
        if !continues {
            if let Some(broken) = self.reassembly.take() {
                // A fragment that does not continue the message: a broken
                // peer. Drop what was collected.
                self.held -= u32::from(broken.next_index);
                self.reassembly_errors += 1;
            }
            if f.index != 0 {
                self.reassembly_errors += 1;
                return;
            }
        }
        let r = self.reassembly.get_or_insert_with(|| Reassembly {
            msg_id: f.msg_id,
            count: f.count,
            next_index: 0,
            data: Vec::with_capacity(usize::from(f.count) * f.payload.len()),
        });
        self.held += 1;
        r.next_index += 1;
        if r.data.len() + f.payload.len() > self.max_message_len {
            let frames = u32::from(r.next_index);
            self.reassembly = None;
            self.held -= frames;
            self.reassembly_errors += 1;
            return;
        }
        r.data.extend_from_slice(f.payload);
        if r.next_index == r.count {
            if let Some(done) = self.reassembly.take() {
                deliver(Completed { id: MessageId(done.msg_id), data: done.data, frames: u32::from(done.count) });
            }
        }
    }

    /// The user took a message that held `frames` frames. Returns whether
    /// the window grew enough to be worth announcing now.
    pub(crate) fn release(&mut self, frames: u32) -> bool {
        self.held = self.held.saturating_sub(frames);
        let quarter = u64::from((self.window / 4).max(1));
        self.right_edge() >= self.advertised_edge + quarter
    }

    pub(crate) fn receive_window(&self) -> u64 {
        u64::from(self.window.saturating_sub(self.held))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag(msg_id: u64, index: u16, count: u16, payload: &[u8]) -> FragmentRef<'_> {
        FragmentRef { msg_id, index, count, payload }
    }

    #[test]
    fn out_of_order_fragments_are_reassembled_in_order_once() {
        let mut rx = Receiver::new(8, 1000);
        let mut got = Vec::new();
        let mut deliver = |c: Completed| got.push((c.id, c.data, c.frames));
        assert_eq!(rx.accept(3, frag(1, 2, 3, b"ef"), &mut deliver), RxOutcome::Buffered);
        assert_eq!(rx.accept(2, frag(1, 1, 3, b"cd"), &mut deliver), RxOutcome::Buffered);
        assert_eq!(rx.ack_fields(), (0, 0b11, 8));
        assert_eq!(rx.accept(3, frag(1, 2, 3, b"ef"), &mut deliver), RxOutcome::Duplicate);
        assert_eq!(rx.accept(1, frag(1, 0, 3, b"ab"), &mut deliver), RxOutcome::InOrder);
        assert_eq!(rx.accept(2, frag(1, 1, 3, b"cd"), &mut deliver), RxOutcome::Duplicate);
        assert_eq!(got, vec![(MessageId(1), b"abcdef".to_vec(), 3)]);
        assert_eq!(rx.ack_fields(), (3, 0, 5), "3 frames held until the user takes them");
    }

    #[test]
    fn window_edge_never_moves_left_and_bounds_what_is_buffered() {
        let mut rx = Receiver::new(4, 1000);
        let mut got = Vec::new();
        let mut deliver = |c: Completed| got.push(c.frames);
        assert_eq!(rx.accept(5, frag(5, 0, 1, b"x"), &mut deliver), RxOutcome::OutOfWindow);
        for seq in 1..=4 {
            let edge = rx.right_edge();
            assert_eq!(rx.accept(seq, frag(seq, 0, 1, b"x"), &mut deliver), RxOutcome::InOrder);
            assert!(rx.right_edge() >= edge);
        }
        assert_eq!(rx.ack_fields(), (4, 0, 0), "all four held: window closed");
        assert_eq!(rx.accept(5, frag(5, 0, 1, b"x"), &mut deliver), RxOutcome::OutOfWindow);
        assert!(!rx.release(0));
        assert!(rx.release(1));
        assert_eq!(rx.accept(5, frag(5, 0, 1, b"x"), &mut deliver), RxOutcome::InOrder);
    }

    #[test]
    fn a_fragment_that_breaks_the_sequence_discards_the_partial_message() {
        let mut rx = Receiver::new(8, 1000);
        let mut got = Vec::new();
        let mut deliver = |c: Completed| got.push(c.data);
        rx.accept(1, frag(1, 0, 2, b"a"), &mut deliver);
        rx.accept(2, frag(2, 0, 1, b"b"), &mut deliver);
        assert_eq!(rx.reassembly_errors, 1);
        rx.accept(3, frag(3, 1, 2, b"c"), &mut deliver);
        assert_eq!(got, vec![b"b".to_vec()]);
        assert_eq!(rx.reassembly_errors, 2);
        assert_eq!(rx.ack_fields().2, 7, "only the delivered message is held");
    }

    #[test]
    fn a_message_longer_than_the_limit_is_discarded() {
        let mut rx = Receiver::new(8, 3);
        let mut got = Vec::new();
        let mut deliver = |c: Completed| got.push(c.data);
        rx.accept(1, frag(1, 0, 2, b"ab"), &mut deliver);
        rx.accept(2, frag(1, 1, 2, b"cd"), &mut deliver);
        assert!(got.is_empty());
        assert_eq!(rx.reassembly_errors, 1);
        assert_eq!(rx.ack_fields(), (2, 0, 8));
    }
}
