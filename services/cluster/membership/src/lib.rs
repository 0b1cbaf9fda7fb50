//! Cluster membership for Sinter: who is in the cluster right now.
//!
//! Every node runs one [`Membership`] over the members its config lists. It
//! joins each peer with a handshake (`Join` → `Welcome`, carrying each side's
//! boot epoch), sends heartbeats, and declares a peer dead when it has heard
//! nothing from it for the configured timeout, reporting the peer's id and
//! the time of last contact once. A peer that comes back with a new epoch
//! has restarted: that is reported too, because its memory and vCPUs are gone.
//!
//! It is a pure state machine: time comes in as `now` (nanoseconds), messages
//! come in already authenticated by the transport, and what to send or report
//! comes out as [`Action`]s. It must never read a clock, never do I/O, and
//! never trust a message from a node that is not a configured member.
//! [`wire`] gives the messages' bytes inside a transport message.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod state;
pub mod wire;

pub use state::{Action, Membership, MembershipConfig, MembershipError, Message, PeerState, Report};

/// A node's id in the cluster (its index in the config).
pub type NodeId = u16;
