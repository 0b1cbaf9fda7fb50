//! What may travel through a channel.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// A fixed-size message: plain bytes with no pointers, no padding and no
/// invalid bit patterns, copied into a ring slot by value.
///
/// Derive the zerocopy traits on a `#[repr(C)]` struct to make one. A large
/// payload never travels as a message: send a [`GrantHandle`](crate::GrantHandle)
/// for a frame instead.
pub trait Message: FromBytes + IntoBytes + Immutable + KnownLayout + Copy {}

impl<T: FromBytes + IntoBytes + Immutable + KnownLayout + Copy> Message for T {}

/// An all-zero message: the content of a slot that was never written.
///
/// `const` so a ring can be built in a `static`.
pub(crate) const fn zeroed<T: Message>() -> T {
    // SAFETY: `T: FromBytes` promises that every bit pattern, all zeros
    // included, is a valid `T`.
    unsafe { core::mem::zeroed() }
}
