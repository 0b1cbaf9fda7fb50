//! The bytes of a membership [`Message`] inside a transport message.
//!
//! ```text
//! offset 0  u8   port: [`PORT`] (the transport service routes on it)
//!        1  u8   kind: 1 Join, 2 Welcome, 3 Heartbeat
//!        2  u64  epoch, little-endian
//! ```
//! Exactly [`LEN`] bytes; anything else is refused with a [`DecodeError`]
//! (the sender holds the cluster key, so that is a bug or a newer version,
//! never a reason to panic).

use crate::Message;

/// First byte of every membership message: the transport service's port for
/// the cluster service.
pub const PORT: u8 = 1;
/// Bytes of an encoded message.
pub const LEN: usize = 10;

const JOIN: u8 = 1;
const WELCOME: u8 = 2;
const HEARTBEAT: u8 = 3;

/// Why bytes are not a membership message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Not [`LEN`] bytes.
    Length(usize),
    /// The first byte is not [`PORT`].
    Port(u8),
    /// Unknown kind byte.
    Kind(u8),
}

impl Message {
    /// The message's bytes.
    pub fn encode(&self) -> [u8; LEN] {
        let (kind, epoch) = match *self {
            Message::Join { epoch } => (JOIN, epoch),
            Message::Welcome { epoch } => (WELCOME, epoch),
            Message::Heartbeat { epoch } => (HEARTBEAT, epoch),
        };
        let mut out = [0u8; LEN];
        out[0] = PORT;
        out[1] = kind;
        out[2..].copy_from_slice(&epoch.to_le_bytes());
        out
    }

    /// Parses bytes made by [`Message::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
        let bytes: &[u8; LEN] = bytes.try_into().map_err(|_| DecodeError::Length(bytes.len()))?;
        if bytes[0] != PORT {
            return Err(DecodeError::Port(bytes[0]));
        }
        let mut epoch = [0u8; 8];
        epoch.copy_from_slice(&bytes[2..]);
        let epoch = u64::from_le_bytes(epoch);
        match bytes[1] {
            JOIN => Ok(Message::Join { epoch }),
            WELCOME => Ok(Message::Welcome { epoch }),
            HEARTBEAT => Ok(Message::Heartbeat { epoch }),
            other => Err(DecodeError::Kind(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn layout_is_pinned() {
        assert_eq!(Message::Heartbeat { epoch: 0x0102_0304_0506_0708 }.encode(), [1, 3, 8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(Message::Join { epoch: 5 }.encode()[..2], [PORT, 1]);
        assert_eq!(Message::Welcome { epoch: 5 }.encode()[..2], [PORT, 2]);
    }

    #[test]
    fn bad_bytes_are_refused() {
        assert_eq!(Message::decode(&[1, 1]), Err(DecodeError::Length(2)));
        assert_eq!(Message::decode(&[2, 1, 0, 0, 0, 0, 0, 0, 0, 0]), Err(DecodeError::Port(2)));
        assert_eq!(Message::decode(&[1, 9, 0, 0, 0, 0, 0, 0, 0, 0]), Err(DecodeError::Kind(9)));
    }

    proptest! {
        #[test]
        fn round_trip(kind in 0u8..3, epoch in any::<u64>()) {
            let m = [Message::Join { epoch }, Message::Welcome { epoch }, Message::Heartbeat { epoch }][usize::from(kind)];
            prop_assert_eq!(Message::decode(&m.encode()), Ok(m));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..20)) {
            let _ = Message::decode(&bytes);
        }
    }
}
