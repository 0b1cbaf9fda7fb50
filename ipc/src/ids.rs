//! Names for the parties of an IPC exchange.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// A service instance, as the kernel numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(transparent)]
pub struct ServiceId(pub u16);

/// A physical core of this node, as the kernel numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(transparent)]
pub struct CoreId(pub u32);

/// Who to wake when a message arrives for a receiver that may be asleep.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WakeTarget {
    /// Wake the executor of this core (an IPI if it is not the current core).
    Core(CoreId),
    /// Wake this service, wherever the kernel runs it.
    Service(ServiceId),
}
