//! Outgoing frames: each one gets the current acknowledgement fields and
//! its tag at the moment the driver takes it.

use alloc::vec::Vec;

use zerocopy::byteorder::network_endian::{U16, U64};
use zerocopy::IntoBytes;

use super::{OutFrame, Transport};
use crate::wire::{self, build_frame, FrameKind, HelloBody, FLAG_ACK_NOW};

impl Transport {
    /// Hands every waiting frame to `sink`, oldest first, without copying
    /// data frames (`sink` gets a view of the retransmission buffer).
    pub fn drain_frames(&mut self, mut sink: impl FnMut(&[u8])) {
        while let Some(frame) = self.out.pop_front() {
            self.emit(frame, &mut sink);
        }
    }

    /// Hands the next waiting frame to `sink` (a view, as in
    /// [`drain_frames`](Self::drain_frames)); false if none was waiting. For
    /// a driver that can take only so many frames at a time.
    pub fn pop_frame_with(&mut self, mut sink: impl FnMut(&[u8])) -> bool {
        while let Some(frame) = self.out.pop_front() {
            let mut emitted = false;
            self.emit(frame, &mut |bytes| {
                emitted = true;
                sink(bytes);
            });
            if emitted {
                return true;
            }
        }
        false
    }

    /// The next frame for the driver, as an owned buffer.
    pub fn pop_frame(&mut self) -> Option<Vec<u8>> {
        while let Some(frame) = self.out.pop_front() {
            let mut taken = None;
            self.emit(frame, &mut |bytes| taken = Some(bytes.to_vec()));
            if taken.is_some() {
                return taken;
            }
        }
        None
    }

    fn emit(&mut self, frame: OutFrame, sink: &mut dyn FnMut(&[u8])) {
        match frame {
            OutFrame::Data { peer, generation, seq } => {
                let Self { peers, auth, stats, .. } = self;
                let p = &mut peers[peer];
                let Some(dst_epoch) = p.session.filter(|_| p.generation == generation) else { return };
                let (ack, sack, window) = p.rx.ack_fields();
                let Some(f) = p.tx.frame_mut(seq) else { return };
                if !f.queued {
                    return;
                }
                f.queued = false;
                if f.sacked {
                    return;
                }
                let flags = if f.ack_now { FLAG_ACK_NOW } else { 0 };
                let Some(h) = wire::header_mut(&mut f.frame) else { return };
                h.dst_epoch = U64::new(dst_epoch);
                h.ack = U64::new(ack);
                h.sack = U64::new(sack);
                h.window = U16::new(window);
                h.flags = U16::new(flags);
                if !auth.seal_next(&mut f.frame) {
                    return;
                }
                sink(&f.frame);
                p.rx.ack_sent();
                p.counts.frames_sent += 1;
                p.counts.bytes_sent += f.frame.len() as u64;
                stats.frames_sent += 1;
            }
            OutFrame::Ack { peer, probe } => {
                let p = &mut self.peers[peer];
                p.ack_queued = false;
                let Some(dst_epoch) = p.session else { return };
                if !probe && !p.rx.ack_owed {
                    return;
                }
                let (ack, sack, window) = p.rx.ack_fields();
                let mut h = Self::header(self.cluster_id, self.local, self.epoch, p.id, FrameKind::Ack, dst_epoch);
                h.ack = U64::new(ack);
                h.sack = U64::new(sack);
                h.window = U16::new(window);
                if probe {
                    h.flags = U16::new(FLAG_ACK_NOW);
                }
                p.rx.ack_sent();
                let eth = self.eth_header(peer);
                build_frame(&mut self.scratch, &eth, &h, &[]);
                if !self.auth.seal_next(&mut self.scratch) {
                    return;
                }
                sink(&self.scratch);
                self.count_sent(peer);
                self.stats.acks_sent += 1;
            }
            OutFrame::Hello { peer, dst_epoch, challenge, echo } => {
                let body = HelloBody {
                    challenge: U64::new(challenge),
                    echo: U64::new(echo),
                    mtu: U16::new(self.mtu),
                    window: U16::new(self.window),
                    max_message_len: zerocopy::byteorder::network_endian::U32::new(self.max_message_len),
                };
                let p = &self.peers[peer];
                let mut h = Self::header(self.cluster_id, self.local, self.epoch, p.id, FrameKind::Hello, dst_epoch);
                h.payload_len = U16::new(wire::HELLO_LEN as u16);
                let eth = self.eth_header(peer);
                build_frame(&mut self.scratch, &eth, &h, body.as_bytes());
                if !self.auth.seal_next(&mut self.scratch) {
                    return;
                }
                sink(&self.scratch);
                self.count_sent(peer);
                self.stats.hellos_sent += 1;
            }
        }
    }

    /// Counts the frame in `scratch` as sent to peer index `peer`.
    fn count_sent(&mut self, peer: usize) {
        self.stats.frames_sent += 1;
        if let Some(p) = self.peers.get_mut(peer) {
            p.counts.frames_sent += 1;
            p.counts.bytes_sent += self.scratch.len() as u64;
        }
    }
}
