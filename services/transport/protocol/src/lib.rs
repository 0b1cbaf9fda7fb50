//! The cluster transport of Sinter: reliable, authenticated, in-order
//! messaging between the nodes of one cluster over raw Ethernet
//! (EtherType [`wire::ETHERTYPE`] = 0x88B5), as a pure state machine.
//!
//! One [`Transport`] per node holds a session with every other member:
//! sequence numbers, cumulative and selective acks, retransmission with an
//! adaptive timeout (RFC 6298, Karn's rule, bounded exponential back-off),
//! duplicate suppression, a per-peer send window and an advertised receive
//! window, and fragmentation of messages larger than one frame with bounded
//! reassembly. Every frame carries an XChaCha20-Poly1305 tag under the
//! cluster key, with a nonce no sender repeats; a handshake verifies each
//! peer's per-boot epoch, so frames of an earlier boot are refused. Messages reach the peer's user exactly
//! once, in order, intact. `docs/transport.md` is the specification.
//!
//! How a shell drives it: [`Transport::send`] queues a message;
//! [`Transport::on_frame`] takes each received frame; [`Transport::poll`]
//! runs timers at [`Transport::next_deadline`]; after each of these the
//! driver takes frames with [`Transport::drain_frames`] and the user takes
//! messages and session events with [`Transport::recv`]. Time is a `now`
//! argument in nanoseconds from any monotonic clock. [`sim`] runs whole
//! clusters of transports over a lossy simulated network.
//!
//! What this crate must never do: touch hardware, a NIC or a clock; block;
//! use `unsafe`; panic or change state on anything that comes from the
//! wire unless the frame is well-formed, from a member, authentic under the
//! cluster key and fresh; implement cryptography itself (the MAC is the
//! RustCrypto `chacha20poly1305` crate).

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod auth;
mod config;
mod event;
mod ids;
mod recv;
mod rtt;
mod send;
pub mod sim;
mod stats;
mod transport;
pub mod wire;

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod tests;

pub use config::{ConfigError, TransportConfig, MAX_MEMBERS, MAX_MTU, MAX_WINDOW, MIN_MTU};
pub use event::{Delivery, Event, SendError, Verdict};
pub use ids::{MacAddr, MessageId, NodeId};
pub use stats::{DropReason, PeerCounters, PeerStats, Stats};
pub use transport::Transport;
pub use wire::{FrameKind, Malformed};
