//! Page-carrying messages: a fixed `zerocopy` header followed by the
//! 4 KiB page. In the firmware the page part is a frame handed to the NIC,
//! never copied by the CPU; here it is a byte array.

use zerocopy::byteorder::little_endian::U64;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::{Access, Fill, GuestPage, Message, WireError};

/// The header in front of a page. All fields are checked on decode;
/// `reserved` must be zero (room for prefetch and migration hints).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct PageHeader {
    /// Which message: see the `KIND_*` constants.
    pub kind: u8,
    /// For `Grant`: 0 = read, 1 = write. Zero otherwise.
    pub access: u8,
    /// For `FwdData`: bit 0 = the old owner kept a read-only copy. Zero
    /// otherwise.
    pub flags: u8,
    /// Must be zero.
    pub reserved: u8,
    /// Guest page number, little-endian.
    pub page: U64,
}

/// `PutM`.
pub const KIND_PUT_M: u8 = 1;
/// `Grant` with data.
pub const KIND_GRANT: u8 = 2;
/// `FwdData`.
pub const KIND_FWD_DATA: u8 = 3;
/// `OwnerData`.
pub const KIND_OWNER_DATA: u8 = 4;

const FLAG_KEEP: u8 = 1;

impl PageHeader {
    /// The header of a page-carrying message, or `None` for a control one.
    pub fn from_message(msg: &Message) -> Option<Self> {
        let (kind, access, flags) = match *msg {
            Message::PutM { .. } => (KIND_PUT_M, 0, 0),
            Message::Grant { access, fill: Fill::Data, .. } => (KIND_GRANT, access as u8, 0),
            Message::FwdData { keep, .. } => (KIND_FWD_DATA, 0, if keep { FLAG_KEEP } else { 0 }),
            Message::OwnerData { .. } => (KIND_OWNER_DATA, 0, 0),
            _ => return None,
        };
        Some(Self { kind, access, flags, reserved: 0, page: U64::new(msg.page().number()) })
    }

    /// The message this header describes, with every field checked.
    pub fn to_message(&self) -> Result<Message, WireError> {
        let page = GuestPage::try_from(self.page.get())?;
        if self.reserved != 0 {
            return Err(WireError::BadField);
        }
        let no_extras = self.access == 0 && self.flags == 0;
        match self.kind {
            KIND_PUT_M if no_extras => Ok(Message::PutM { page }),
            KIND_GRANT if self.flags == 0 => {
                let access = match self.access {
                    0 => Access::Read,
                    1 => Access::Write,
                    _ => return Err(WireError::BadField),
                };
                Ok(Message::Grant { page, access, fill: Fill::Data })
            }
            KIND_FWD_DATA if self.access == 0 && self.flags & !FLAG_KEEP == 0 => {
                Ok(Message::FwdData { page, keep: self.flags & FLAG_KEEP != 0 })
            }
            KIND_OWNER_DATA if no_extras => Ok(Message::OwnerData { page }),
            KIND_PUT_M | KIND_GRANT | KIND_FWD_DATA | KIND_OWNER_DATA => Err(WireError::BadField),
            _ => Err(WireError::BadPageKind),
        }
    }
}
