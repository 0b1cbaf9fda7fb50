//! The protocol's messages. `docs/protocol.md` has the table of who sends
//! which, when, and what the receiver does.

use crate::{Access, GuestPage, NodeId};

/// Where a granted page's contents come from.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize, serde::Deserialize)]
pub enum Fill {
    /// The grant carries the page (a page-carrying message).
    Data,
    /// The page was never written anywhere: zero-fill the frame, no data sent.
    Zero,
    /// The requester's own copy is current (an upgrade of a sharer).
    Keep,
}

/// One protocol message between two nodes. Variants marked "carries the
/// page" travel with a copy of the sender's frame (see [`crate::wire`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Message {
    /// Requester to home: read miss.
    GetS {
        /// The page.
        page: GuestPage,
    },
    /// Requester to home: write miss.
    GetM {
        /// The page.
        page: GuestPage,
    },
    /// Requester to home: the requester holds the page shared and wants to
    /// write. The home serves it as a write miss if the requester has been
    /// invalidated meanwhile.
    Upgrade {
        /// The page.
        page: GuestPage,
    },
    /// Owner to home: eviction of a writable page. Carries the page.
    PutM {
        /// The page.
        page: GuestPage,
    },
    /// Home to requester: the request is granted. Carries the page when
    /// `fill` is [`Fill::Data`].
    Grant {
        /// The page.
        page: GuestPage,
        /// The access granted.
        access: Access,
        /// Where the contents come from.
        fill: Fill,
    },
    /// Home to requester: the home's queue is full; send the request again.
    Nack {
        /// The page.
        page: GuestPage,
    },
    /// Home to evicting owner: the eviction is done, drop the frame.
    PutAck {
        /// The page.
        page: GuestPage,
    },
    /// Home to sharer: drop your read-only copy and acknowledge.
    Inv {
        /// The page.
        page: GuestPage,
    },
    /// Sharer to home: the copy is gone.
    InvAck {
        /// The page.
        page: GuestPage,
    },
    /// Home to owner: `requester` wants to read; send your copy to the home
    /// and keep a read-only one.
    FwdGetS {
        /// The page.
        page: GuestPage,
        /// Who asked.
        requester: NodeId,
    },
    /// Home to owner: `requester` wants to write; send it your copy and drop
    /// yours.
    FwdGetM {
        /// The page.
        page: GuestPage,
        /// Who asked, and where the data goes.
        requester: NodeId,
    },
    /// Owner to home, answering `FwdGetS`. Carries the page. `keep` says
    /// whether the owner kept a read-only copy (false if it was evicting).
    FwdData {
        /// The page.
        page: GuestPage,
        /// The old owner is now a sharer.
        keep: bool,
    },
    /// Owner to requester, answering `FwdGetM`: you are the owner now.
    /// Carries the page.
    OwnerData {
        /// The page.
        page: GuestPage,
    },
    /// Requester to home: the owner's data arrived; the home may go on.
    Unblock {
        /// The page.
        page: GuestPage,
    },
}

/// The kind of a message, without its fields: for errors and counters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[allow(missing_docs)] // reason: each variant is the message of the same name.
pub enum MessageKind {
    GetS,
    GetM,
    Upgrade,
    PutM,
    Grant,
    Nack,
    PutAck,
    Inv,
    InvAck,
    FwdGetS,
    FwdGetM,
    FwdData,
    OwnerData,
    Unblock,
}

impl MessageKind {
    /// Number of kinds, for per-kind counter arrays.
    pub const COUNT: usize = 14;
}

impl Message {
    /// The page the message is about.
    pub const fn page(&self) -> GuestPage {
        match *self {
            Self::GetS { page }
            | Self::GetM { page }
            | Self::Upgrade { page }
            | Self::PutM { page }
            | Self::Grant { page, .. }
            | Self::Nack { page }
            | Self::PutAck { page }
            | Self::Inv { page }
            | Self::InvAck { page }
            | Self::FwdGetS { page, .. }
            | Self::FwdGetM { page, .. }
            | Self::FwdData { page, .. }
            | Self::OwnerData { page }
            | Self::Unblock { page } => page,
        }
    }

    /// Whether the message travels with a copy of the page.
    pub const fn carries_page(&self) -> bool {
        matches!(
            self,
            Self::PutM { .. } | Self::FwdData { .. } | Self::OwnerData { .. } | Self::Grant { fill: Fill::Data, .. }
        )
    }

    /// The kind, without fields.
    pub const fn kind(&self) -> MessageKind {
        match self {
            Self::GetS { .. } => MessageKind::GetS,
            Self::GetM { .. } => MessageKind::GetM,
            Self::Upgrade { .. } => MessageKind::Upgrade,
            Self::PutM { .. } => MessageKind::PutM,
            Self::Grant { .. } => MessageKind::Grant,
            Self::Nack { .. } => MessageKind::Nack,
            Self::PutAck { .. } => MessageKind::PutAck,
            Self::Inv { .. } => MessageKind::Inv,
            Self::InvAck { .. } => MessageKind::InvAck,
            Self::FwdGetS { .. } => MessageKind::FwdGetS,
            Self::FwdGetM { .. } => MessageKind::FwdGetM,
            Self::FwdData { .. } => MessageKind::FwdData,
            Self::OwnerData { .. } => MessageKind::OwnerData,
            Self::Unblock { .. } => MessageKind::Unblock,
        }
    }
}
