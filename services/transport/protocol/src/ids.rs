//! Names for the things the transport talks about: nodes, their Ethernet
//! addresses, and the messages it carries.

use core::fmt;

/// One member of the cluster, as numbered in the hw-config (`[[node]] id`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u16);

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// An Ethernet (IEEE 802) hardware address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// Group (multicast/broadcast) addresses cannot identify a node.
    pub const fn is_unicast(&self) -> bool {
        self.0[0] & 1 == 0
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

/// A message handed to [`crate::Transport::send`]: numbered per destination
/// peer, from 1, for the lifetime of the local [`crate::Transport`]. The
/// receiver sees the same number in [`crate::Delivery::id`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct MessageId(pub u64);
