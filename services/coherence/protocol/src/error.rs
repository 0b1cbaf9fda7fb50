//! Errors: small `Copy` values that say what was wrong and where.

use core::fmt;

use crate::{GuestPage, MessageKind, NodeId};

/// A message or call the engine refused. The node's state is unchanged
/// when one of these is returned, and no action was appended.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ProtocolError {
    /// The page has no home: it is not guest RAM.
    NotGuestRam {
        /// The page.
        page: GuestPage,
    },
    /// A message that only a page's home may receive came to another node,
    /// or a message that only the home may send came from another node.
    WrongHome {
        /// The page.
        page: GuestPage,
        /// The sender.
        from: NodeId,
        /// What it sent.
        message: MessageKind,
    },
    /// The message is not valid in the page's current state here (a peer
    /// broke the protocol, or the transport broke its promises).
    Unexpected {
        /// The page.
        page: GuestPage,
        /// The sender.
        from: NodeId,
        /// What it sent.
        message: MessageKind,
    },
    /// Eviction of a page this node holds no copy of.
    NotCached {
        /// The page.
        page: GuestPage,
    },
    /// Eviction of a page with a transaction in flight.
    Busy {
        /// The page.
        page: GuestPage,
    },
    /// A home never evicts its own pages: its frame is the backing memory.
    HomeCannotEvict {
        /// The page.
        page: GuestPage,
    },
    /// A home-only operation on a page homed elsewhere.
    NotHomedHere {
        /// The page.
        page: GuestPage,
    },
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotGuestRam { page } => write!(f, "{page:?} is not guest RAM"),
            Self::WrongHome { page, from, message } => {
                write!(f, "{message:?} for {page:?} from {from:?} at the wrong node")
            }
            Self::Unexpected { page, from, message } => write!(f, "unexpected {message:?} for {page:?} from {from:?}"),
            Self::NotCached { page } => write!(f, "{page:?} is not cached here"),
            Self::Busy { page } => write!(f, "{page:?} has a transaction in flight"),
            Self::HomeCannotEvict { page } => write!(f, "home cannot evict {page:?}"),
            Self::NotHomedHere { page } => write!(f, "{page:?} is not homed here"),
        }
    }
}

/// Why bytes from the wire are not a valid message.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum WireError {
    /// Fewer bytes than the message needs.
    Truncated,
    /// Bytes left over after the message.
    TrailingBytes,
    /// The first byte names no known frame format.
    UnknownFormat,
    /// The control message body does not decode.
    BadControl,
    /// A page-carrying header names no known message.
    BadPageKind,
    /// A field holds a value outside its range (flags, access, fill).
    BadField,
    /// A node id at or above `MAX_NODES`.
    BadNode,
    /// A page number above the 52-bit guest-physical range.
    BadPage,
    /// Encoding: the output buffer is too small.
    BufferTooSmall,
    /// Encoding: a page-carrying message without a page, or the reverse.
    PageMismatch,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::Truncated => "truncated message",
            Self::TrailingBytes => "trailing bytes after message",
            Self::UnknownFormat => "unknown frame format",
            Self::BadControl => "control message does not decode",
            Self::BadPageKind => "unknown page message kind",
            Self::BadField => "field out of range",
            Self::BadNode => "node id out of range",
            Self::BadPage => "page number out of range",
            Self::BufferTooSmall => "output buffer too small",
            Self::PageMismatch => "page data does not match message kind",
        };
        f.write_str(s)
    }
}
