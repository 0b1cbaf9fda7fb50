//! Control messages (no page): `postcard` bodies.
//!
//! The serde type mirrors [`Message`] with raw integers, so that every
//! range check happens once, in [`Control::into_message`], and a decoder fed
//! garbage can only return an error.

use serde::{Deserialize, Serialize};

use crate::{Access, Fill, GuestPage, Message, NodeId, WireError};

/// The control subset of [`Message`] as it is serialized.
#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
pub(crate) enum Control {
    GetS { page: u64 },
    GetM { page: u64 },
    Upgrade { page: u64 },
    Grant { page: u64, access: Access, fill: Fill },
    Nack { page: u64 },
    PutAck { page: u64 },
    Inv { page: u64 },
    InvAck { page: u64 },
    FwdGetS { page: u64, requester: u8 },
    FwdGetM { page: u64, requester: u8 },
    Unblock { page: u64 },
}

impl Control {
    /// The serialized form of `msg`, or `None` if it carries a page.
    pub(crate) fn from_message(msg: &Message) -> Option<Self> {
        let raw = |p: GuestPage| p.number();
        Some(match *msg {
            Message::GetS { page } => Self::GetS { page: raw(page) },
            Message::GetM { page } => Self::GetM { page: raw(page) },
            Message::Upgrade { page } => Self::Upgrade { page: raw(page) },
            Message::Grant { page, access, fill } if fill != Fill::Data => {
                Self::Grant { page: raw(page), access, fill }
            }
            Message::Nack { page } => Self::Nack { page: raw(page) },
            Message::PutAck { page } => Self::PutAck { page: raw(page) },
            Message::Inv { page } => Self::Inv { page: raw(page) },
            Message::InvAck { page } => Self::InvAck { page: raw(page) },
            Message::FwdGetS { page, requester } => Self::FwdGetS { page: raw(page), requester: requester.get() },
            Message::FwdGetM { page, requester } => Self::FwdGetM { page: raw(page), requester: requester.get() },
            Message::Unblock { page } => Self::Unblock { page: raw(page) },
            Message::PutM { .. } | Message::Grant { .. } | Message::FwdData { .. } | Message::OwnerData { .. } => {
                return None
            }
        })
    }

    /// The message, with every field range-checked.
    pub(crate) fn into_message(self) -> Result<Message, WireError> {
        let page = GuestPage::try_from;
        let node = NodeId::try_from;
        Ok(match self {
            Self::GetS { page: p } => Message::GetS { page: page(p)? },
            Self::GetM { page: p } => Message::GetM { page: page(p)? },
            Self::Upgrade { page: p } => Message::Upgrade { page: page(p)? },
            Self::Grant { page: p, access, fill } => {
                if fill == Fill::Data {
                    // Data grants are page-carrying messages.
                    return Err(WireError::BadField);
                }
                Message::Grant { page: page(p)?, access, fill }
            }
            Self::Nack { page: p } => Message::Nack { page: page(p)? },
            Self::PutAck { page: p } => Message::PutAck { page: page(p)? },
            Self::Inv { page: p } => Message::Inv { page: page(p)? },
            Self::InvAck { page: p } => Message::InvAck { page: page(p)? },
            Self::FwdGetS { page: p, requester } => Message::FwdGetS { page: page(p)?, requester: node(requester)? },
            Self::FwdGetM { page: p, requester } => Message::FwdGetM { page: page(p)?, requester: node(requester)? },
            Self::Unblock { page: p } => Message::Unblock { page: page(p)? },
        })
    }
}
