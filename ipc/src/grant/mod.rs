//! Page grants: lend a 4 KiB frame to another service without copying it.
//!
//! The rule, enforced by types and by the [`GrantTable`]:
//!
//! 1. A service owns a frame through a [`FrameLease`] (minted by the kernel
//!    when it allocates the frame; not `Copy`, not `Clone`).
//! 2. To lend, the lender moves the lease into the table
//!    ([`GrantTable::lend`]) and sends the returned [`GrantHandle`] (plain
//!    bytes) in a message. From then on the lender has nothing to touch the
//!    frame with.
//! 3. The named borrower turns the handle into a [`Grant`]
//!    ([`GrantTable::accept`]), once; a second accept, a stale or a forged
//!    handle is an error, never UB. The grant reads (and, if lent
//!    [`Access::ReadWrite`], writes) the frame in place through the kernel's
//!    [`FrameWindow`].
//! 4. The borrower releases the grant ([`Grant::release`] or drop); the
//!    lender then gets its lease back ([`GrantTable::reclaim`]). A lender may
//!    also withdraw an offer nobody accepted yet ([`GrantTable::withdraw`]).
//!    Either kills the handle; the lender cannot take a frame back while
//!    the borrower holds the grant.
//!
//! Each hand-over is an Acquire/Release transition of the table entry, so
//! bytes written by one party are visible to the next.
//!
//! Neither a lease nor a grant can be duplicated:
//!
//! ```compile_fail
//! fn duplicate(lease: sinter_ipc::FrameLease) -> (sinter_ipc::FrameLease, sinter_ipc::FrameLease) {
//!     (lease.clone(), lease)
//! }
//! ```
//!
//! ```compile_fail
//! fn duplicate(grant: sinter_ipc::Grant<'_>) {
//!     let copy = grant.clone();
//!     grant.release();
//!     copy.release();
//! }
//! ```
//!
//! and once lent, the lease is gone from the lender's hands:
//!
//! ```compile_fail
//! use sinter_ipc::{Access, FrameLease, GrantTable, ServiceId};
//! fn lend_twice(table: &GrantTable<4>, lease: FrameLease) {
//!     let _ = table.lend(lease, ServiceId(1), ServiceId(2), Access::ReadOnly);
//!     let _ = table.lend(lease, ServiceId(1), ServiceId(3), Access::ReadOnly);
//! }
//! ```

mod frame;
mod table;

pub use frame::{FrameLease, FrameWindow, PhysFrame, FRAME_SIZE};
pub use table::{Access, Grant, GrantError, GrantHandle, GrantTable, TableFull};

#[cfg(all(test, not(loom)))]
mod tests;

#[cfg(all(test, loom))]
mod loom_tests;
