//! The requester's side of the state: what this node holds of a page whose
//! home is another node.

use crate::Access;

/// A node's state for a page homed elsewhere. Names follow the usual
/// `XY_Z` convention: going from X to Y, waiting for Z (D = data/grant,
/// A = ack).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum CacheState {
    /// No copy, no transaction.
    #[default]
    Invalid,
    /// Read-only copy, mapped read-only.
    Shared,
    /// The only copy, mapped writable.
    Modified,
    /// `GetS` sent, waiting for the grant.
    InvalidToShared,
    /// `GetM` sent, waiting for the grant (from the home or the owner).
    InvalidToModified,
    /// `Upgrade` sent while holding a shared copy (still mapped read-only).
    SharedToModified,
    /// `PutM` sent, frame still held (a crossing forward may need it).
    ModifiedToInvalid,
    /// `PutM` sent and a crossing forward served: waiting only for `PutAck`.
    ForwardedToInvalid,
}

impl CacheState {
    /// The access the guest mapping gives in this state.
    pub const fn mapped(self) -> Option<Access> {
        match self {
            Self::Shared | Self::SharedToModified => Some(Access::Read),
            Self::Modified => Some(Access::Write),
            _ => None,
        }
    }

    /// Whether a transaction is in flight.
    pub const fn is_transient(self) -> bool {
        !matches!(self, Self::Invalid | Self::Shared | Self::Modified)
    }
}

/// Per-page requester record: the state plus an access that local vCPUs
/// asked for during a transaction and that the transaction will not give.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub(crate) struct LocalPage {
    pub(crate) state: CacheState,
    pub(crate) want: Option<Access>,
}
