//! Names for the things the protocol talks about: nodes, sets of nodes,
//! guest pages and the access a vCPU needs.

use core::fmt;

/// Size of the coherence unit: one guest-physical page.
pub const PAGE_SIZE: usize = 4096;

/// Largest cluster the protocol supports: sharer sets are one `u64` bitmask.
pub const MAX_NODES: usize = 64;

/// Highest guest page number accepted: 52-bit guest-physical addresses.
pub const MAX_GUEST_PAGE: u64 = (1 << (52 - 12)) - 1;

/// One server of the cluster. Always below [`MAX_NODES`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(u8);

impl NodeId {
    /// A node id, or `None` if `raw` is not below [`MAX_NODES`].
    pub const fn new(raw: u8) -> Option<Self> {
        if (raw as usize) < MAX_NODES {
            Some(Self(raw))
        } else {
            None
        }
    }

    /// The raw id.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// The id as an index into per-node arrays.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

impl TryFrom<u8> for NodeId {
    type Error = crate::WireError;
    fn try_from(raw: u8) -> Result<Self, Self::Error> {
        Self::new(raw).ok_or(crate::WireError::BadNode)
    }
}

impl From<NodeId> for u8 {
    fn from(n: NodeId) -> u8 {
        n.0
    }
}

/// A set of nodes (sharers, pending invalidation acks), one bit per node.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct NodeSet(u64);

impl NodeSet {
    /// The empty set.
    pub const EMPTY: Self = Self(0);

    /// The set holding only `node`.
    pub const fn only(node: NodeId) -> Self {
        Self(1 << node.0)
    }

    /// Whether `node` is in the set.
    pub const fn contains(self, node: NodeId) -> bool {
        self.0 & (1 << node.0) != 0
    }

    /// Adds `node`.
    pub fn insert(&mut self, node: NodeId) {
        self.0 |= 1 << node.0;
    }

    /// Removes `node`; returns whether it was there.
    pub fn remove(&mut self, node: NodeId) -> bool {
        let was = self.contains(node);
        self.0 &= !(1 << node.0);
        was
    }

    /// The set without `node`.
    pub const fn without(self, node: NodeId) -> Self {
        Self(self.0 & !(1 << node.0))
    }

    /// Number of nodes in the set.
    pub const fn len(self) -> u32 {
        self.0.count_ones()
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The highest node in the set.
    pub fn highest(self) -> Option<NodeId> {
        if self.0 == 0 {
            None
        } else {
            // The set only ever holds valid ids, so the index is below 64.
            Some(NodeId((63 - self.0.leading_zeros()) as u8))
        }
    }

    /// The nodes in ascending order.
    pub fn iter(self) -> impl Iterator<Item = NodeId> {
        let mut bits = self.0;
        core::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            let i = bits.trailing_zeros();
            bits &= bits - 1;
            Some(NodeId(i as u8))
        })
    }
}

impl fmt::Debug for NodeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// A 4 KiB guest-physical page, named by its page number (GPA >> 12).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GuestPage(u64);

impl GuestPage {
    /// The page with number `number`, or `None` above [`MAX_GUEST_PAGE`].
    pub const fn new(number: u64) -> Option<Self> {
        if number <= MAX_GUEST_PAGE {
            Some(Self(number))
        } else {
            None
        }
    }

    /// The page that holds guest-physical address `gpa`.
    pub const fn containing(gpa: u64) -> Option<Self> {
        Self::new(gpa >> 12)
    }

    /// The page number.
    pub const fn number(self) -> u64 {
        self.0
    }
}

impl fmt::Debug for GuestPage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{:#x}", self.0)
    }
}

impl TryFrom<u64> for GuestPage {
    type Error = crate::WireError;
    fn try_from(raw: u64) -> Result<Self, Self::Error> {
        Self::new(raw).ok_or(crate::WireError::BadPage)
    }
}

impl From<GuestPage> for u64 {
    fn from(p: GuestPage) -> u64 {
        p.0
    }
}

/// What a vCPU needs from a page. `Read < Write`: write access implies read.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, serde::Serialize, serde::Deserialize)]
pub enum Access {
    /// A read-only mapping in the nested page table.
    Read,
    /// A writable mapping in the nested page table.
    Write,
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    #[test]
    fn node_ids_stop_at_max_nodes() {
        assert!(NodeId::new(63).is_some());
        assert!(NodeId::new(64).is_none());
        assert!(NodeId::new(255).is_none());
    }

    #[test]
    fn node_set_iterates_in_order_and_counts() {
        let mut s = NodeSet::EMPTY;
        for raw in [5u8, 0, 63, 17] {
            s.insert(NodeId::new(raw).unwrap());
        }
        let got: Vec<u8> = s.iter().map(NodeId::get).collect();
        assert_eq!(got, [0, 5, 17, 63]);
        assert_eq!(s.len(), 4);
        assert_eq!(s.highest(), NodeId::new(63));
        assert!(s.remove(NodeId::new(5).unwrap()));
        assert!(!s.remove(NodeId::new(5).unwrap()));
        assert_eq!(s.without(NodeId::new(0).unwrap()).len(), 2);
        assert_eq!(NodeSet::EMPTY.highest(), None);
    }

    #[test]
    fn guest_pages_are_52_bit() {
        assert_eq!(GuestPage::containing(0x1234_5678).unwrap().number(), 0x12345);
        assert!(GuestPage::new(MAX_GUEST_PAGE).is_some());
        assert!(GuestPage::new(MAX_GUEST_PAGE + 1).is_none());
    }
}
