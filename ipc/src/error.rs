//! What a channel operation can refuse.

use core::fmt;

/// The ring was full: the message comes back so the channel's owner decides
/// what to do with it (drop it, retry later, push back on its own sender).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ChannelFull<T>(pub T);

impl<T> ChannelFull<T> {
    /// The message that was not sent.
    pub fn into_message(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for ChannelFull<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChannelFull(..)")
    }
}

impl<T> fmt::Display for ChannelFull<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("channel full")
    }
}

/// A ring hands out its endpoints once; this is the second request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlreadySplit;

impl fmt::Display for AlreadySplit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ring already split into endpoints")
    }
}
