//! Zero-copy IPC between Sinter's services and cores.
//!
//! - [`spsc`]: a bounded lock-free ring from one sender to one receiver.
//! - [`mpsc`]: a bounded lock-free ring from many senders to one receiver.
//! - [`notify`]: how a sender wakes a receiver that may be asleep, without
//!   losing a wake-up and without notifying a receiver that is awake.
//! - [`grant`]: lending a 4 KiB frame to another service without copying it.
//!
//! Messages are fixed-size [`Message`]s (zerocopy plain-old-data) copied
//! into ring slots; anything large moves as a frame grant. Ring and grant
//! table storage is sized at compile time and can live in a `static` or in
//! memory the kernel provides.
//!
//! ```
//! use sinter_ipc::spsc::SpscRing;
//! use sinter_ipc::{CoreId, CountingNotify, WakeTarget};
//!
//! static RING: SpscRing<u64, 64> = SpscRing::new();
//! static IPI: CountingNotify = CountingNotify::new(); // the kernel's IPI, in a test
//!
//! let (mut tx, mut rx) = RING.split(&IPI, WakeTarget::Core(CoreId(3))).unwrap();
//! assert_eq!(rx.try_recv_or_arm(), None); // empty: armed, may sleep now
//! tx.try_send(7).unwrap(); // wakes core 3
//! assert_eq!(IPI.count(), 1);
//! assert_eq!(rx.try_recv(), Some(7));
//! ```
//!
//! This crate must never: allocate; block, spin or sleep on its own (the
//! caller decides what to do with a full ring or an empty one); drop or
//! retry a message behind its owner's back; dereference a physical address
//! (frame bytes are reached only through the kernel's [`FrameWindow`]); or
//! hold policy about who may talk to whom.
//!
//! # Model checking
//!
//! The rings, the wake-up handshake and the grant table have loom models
//! (`*/loom_tests.rs`). Run them with:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p sinter-ipc --release --lib loom
//! ```
//!
//! (`--cfg loom` swaps [`sync`]'s atomics for loom's; the separate target
//! directory keeps that build from invalidating the normal one.)
#![cfg_attr(not(test), no_std)]

mod doorbell;
mod error;
pub mod grant;
mod ids;
mod message;
pub mod mpsc;
pub mod notify;
pub mod spsc;
mod sync;

#[cfg(all(test, loom))]
mod loom_support;

pub use error::{AlreadySplit, ChannelFull};
pub use grant::{
    Access, FrameLease, FrameWindow, Grant, GrantError, GrantHandle, GrantTable, PhysFrame, TableFull, FRAME_SIZE,
};
pub use ids::{CoreId, ServiceId, WakeTarget};
pub use message::Message;
pub use notify::{CountingNotify, NoNotify, Notify};
