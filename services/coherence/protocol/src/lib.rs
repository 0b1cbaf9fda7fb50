//! The coherence protocol of Sinter: a home-based directory protocol that
//! keeps 4 KiB guest pages coherent across the nodes of the cluster.
//!
//! Each page has a home (the node whose RAM backs it) holding its
//! [`DirectoryEntry`]: the owner, the sharers, and the transaction in
//! flight. Each node runs one [`Node`]: the home side for its own pages and
//! the requester side for everyone else's. The engine is a pure state
//! machine: a message or a local fault goes in ([`Node::handle`],
//! [`Node::request`], [`Node::evict`]) and [`Action`]s come out (send,
//! fill a frame, map, unmap, release, complete). The [`wire`] module encodes
//! messages; [`sim`] runs whole clusters of engines deterministically and
//! checks the coherence invariants; `docs/protocol.md` is the specification.
//!
//! What the protocol assumes of the transport: reliable, exactly-once,
//! FIFO delivery per ordered pair of nodes, arbitrary interleaving across
//! pairs. Nothing else.
//!
//! What this crate must never do: touch hardware, memory frames or the
//! network; read a clock; block; panic on anything that comes from the wire
//! or from a guest (bad input is a [`ProtocolError`] or a [`WireError`]);
//! use `unsafe`.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod action;
mod cache;
mod config;
mod directory;
mod error;
mod home;
mod home_map;
mod ids;
mod message;
mod node;
mod page_table;
mod requester;
pub mod scenario;
pub mod sim;
pub mod wire;

#[cfg(test)]
mod model;
#[cfg(test)]
mod tests;

pub use action::{Action, Actions, FillFrom};
pub use cache::CacheState;
#[cfg(any(test, feature = "mutation"))]
pub use config::Mutation;
pub use config::{MigrationPolicy, PrefetchPolicy, ProtocolConfig};
pub use directory::{DirectoryEntry, RequestKind, Transaction};
pub use error::{ProtocolError, WireError};
pub use home_map::{HomeMap, RangeError, RangeHomes, StripedHomes};
pub use ids::{Access, GuestPage, NodeId, NodeSet, MAX_GUEST_PAGE, MAX_NODES, PAGE_SIZE};
pub use message::{Fill, Message, MessageKind};
pub use node::{Counters, Node};
