//! The wire format of protocol messages.
//!
//! A frame (the payload that `transport` delivers) starts with one format
//! byte:
//!
//! * [`FORMAT_CONTROL`], then a `postcard` body: the messages without a page;
//! * [`FORMAT_PAGE`], then a [`PageHeader`] (`zerocopy`, 12 bytes), then the
//!   4096-byte page.
//!
//! Decoding checks every field and returns a [`WireError`] for anything
//! else; it never panics, whatever the bytes.

mod control;
mod page;

pub use page::{PageHeader, KIND_FWD_DATA, KIND_GRANT, KIND_OWNER_DATA, KIND_PUT_M};

use zerocopy::{FromBytes, IntoBytes};

use crate::{Message, WireError, PAGE_SIZE};
use control::Control;

/// First byte of a control frame.
pub const FORMAT_CONTROL: u8 = 0xC0;
/// First byte of a page-carrying frame.
pub const FORMAT_PAGE: u8 = 0xD0;

/// Longest control frame (format byte, variant, 10-byte varint page,
/// access/fill or node).
pub const MAX_CONTROL_LEN: usize = 16;

/// Length of a page-carrying frame.
pub const PAGE_FRAME_LEN: usize = 1 + core::mem::size_of::<PageHeader>() + PAGE_SIZE;

/// A decoded frame: the message and, for page-carrying ones, the page.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// The message.
    pub msg: Message,
    /// The page, iff `msg.carries_page()`.
    pub page: Option<&'a [u8; PAGE_SIZE]>,
}

/// Encodes `msg` (with `page` iff it carries one) into `out`; returns the
/// frame length.
pub fn encode(msg: &Message, page: Option<&[u8; PAGE_SIZE]>, out: &mut [u8]) -> Result<usize, WireError> {
    match (PageHeader::from_message(msg), page) {
        (Some(header), Some(data)) => {
            if out.len() < PAGE_FRAME_LEN {
                return Err(WireError::BufferTooSmall);
            }
            let header_bytes = header.as_bytes();
            let data_at = 1 + header_bytes.len();
            out[0] = FORMAT_PAGE;
            out[1..data_at].copy_from_slice(header_bytes);
            out[data_at..PAGE_FRAME_LEN].copy_from_slice(data);
            Ok(PAGE_FRAME_LEN)
        }
        (None, None) => {
            let control = Control::from_message(msg).ok_or(WireError::PageMismatch)?;
            let (first, body) = out.split_first_mut().ok_or(WireError::BufferTooSmall)?;
            *first = FORMAT_CONTROL;
            let used = postcard::to_slice(&control, body).map_err(|_| WireError::BufferTooSmall)?.len();
            Ok(1 + used)
        }
        _ => Err(WireError::PageMismatch),
    }
}

/// Decodes one frame; `bytes` must be exactly the frame.
pub fn decode(bytes: &[u8]) -> Result<Decoded<'_>, WireError> {
    let (&format, rest) = bytes.split_first().ok_or(WireError::Truncated)?;
    match format {
        FORMAT_CONTROL => {
            let (control, tail) = postcard::take_from_bytes::<Control>(rest).map_err(|e| match e {
                postcard::Error::DeserializeUnexpectedEnd => WireError::Truncated,
                _ => WireError::BadControl,
            })?;
            if !tail.is_empty() {
                return Err(WireError::TrailingBytes);
            }
            Ok(Decoded { msg: control.into_message()?, page: None })
        }
        FORMAT_PAGE => {
            let (header, data) = PageHeader::ref_from_prefix(rest).map_err(|_| WireError::Truncated)?;
            let msg = header.to_message()?;
            let page: &[u8; PAGE_SIZE] = match data.len() {
                n if n < PAGE_SIZE => return Err(WireError::Truncated),
                n if n > PAGE_SIZE => return Err(WireError::TrailingBytes),
                _ => data.try_into().map_err(|_| WireError::Truncated)?,
            };
            Ok(Decoded { msg, page: Some(page) })
        }
        _ => Err(WireError::UnknownFormat),
    }
}

/// Bytes `msg` takes on the wire (frame payload, without the transport's
/// own header).
pub fn encoded_len(msg: &Message) -> usize {
    if msg.carries_page() {
        return PAGE_FRAME_LEN;
    }
    let mut buf = [0u8; MAX_CONTROL_LEN];
    // Every control message fits in MAX_CONTROL_LEN (tested below).
    encode(msg, None, &mut buf).unwrap_or(MAX_CONTROL_LEN)
}

#[cfg(test)]
mod tests;
