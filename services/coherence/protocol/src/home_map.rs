//! Which node is the home of a page: the node whose RAM backs it.

use alloc::vec::Vec;

use crate::{GuestPage, NodeId};

/// Answers "who is the home of this page". Every node of a cluster must
/// hold the same map.
pub trait HomeMap {
    /// The home of `page`, or `None` if `page` is not guest RAM.
    fn home_of(&self, page: GuestPage) -> Option<NodeId>;
}

/// Pages dealt round-robin over `nodes` nodes in stripes of
/// `pages_per_stripe` pages. Used by the simulator and the model checker.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct StripedHomes {
    nodes: u8,
    pages_per_stripe: u64,
    pages: u64,
}

impl StripedHomes {
    /// Guest RAM of `pages` pages striped over `nodes` nodes. `None` if
    /// `nodes` is 0 or above [`crate::MAX_NODES`] or the stripe is empty.
    pub fn new(nodes: u8, pages_per_stripe: u64, pages: u64) -> Option<Self> {
        if nodes == 0 || NodeId::new(nodes - 1).is_none() || pages_per_stripe == 0 {
            return None;
        }
        Some(Self { nodes, pages_per_stripe, pages })
    }
}

impl HomeMap for StripedHomes {
    #[inline]
    fn home_of(&self, page: GuestPage) -> Option<NodeId> {
        if page.number() >= self.pages {
            return None;
        }
        // Powers of two (the common shapes) avoid two divisions.
        let stripe = if self.pages_per_stripe.is_power_of_two() {
            page.number() >> self.pages_per_stripe.trailing_zeros()
        } else {
            page.number() / self.pages_per_stripe
        };
        let nodes = u64::from(self.nodes);
        let home = if nodes.is_power_of_two() { stripe & (nodes - 1) } else { stripe % nodes };
        // `nodes` was checked at construction, so the result is a valid id.
        NodeId::new(home as u8)
    }
}

/// Contiguous page ranges, each backed by one node: the shape of an ACPI
/// SRAT. Lookup is a binary search.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct RangeHomes {
    /// `(first page, end page exclusive, home)`, sorted, not overlapping.
    ranges: Vec<(u64, u64, NodeId)>,
}

/// Why a set of ranges is not a valid home map.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RangeError {
    /// A range is empty or ends before it starts.
    Empty {
        /// First page of the bad range.
        start: u64,
    },
    /// Two ranges overlap.
    Overlap {
        /// First page of the later range.
        start: u64,
    },
}

impl RangeHomes {
    /// A map from `(first page, end page exclusive, home)` ranges.
    pub fn new(mut ranges: Vec<(u64, u64, NodeId)>) -> Result<Self, RangeError> {
        ranges.sort_unstable_by_key(|r| r.0);
        let mut prev_end = 0;
        for (i, &(start, end, _)) in ranges.iter().enumerate() {
            if end <= start {
                return Err(RangeError::Empty { start });
            }
            if i > 0 && start < prev_end {
                return Err(RangeError::Overlap { start });
            }
            prev_end = end;
        }
        Ok(Self { ranges })
    }
}

impl HomeMap for RangeHomes {
    fn home_of(&self, page: GuestPage) -> Option<NodeId> {
        let n = page.number();
        let i = self.ranges.partition_point(|r| r.1 <= n);
        let &(start, end, home) = self.ranges.get(i)?;
        (start <= n && n < end).then_some(home)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn page(n: u64) -> GuestPage {
        GuestPage::new(n).unwrap()
    }
    fn node(n: u8) -> NodeId {
        NodeId::new(n).unwrap()
    }

    #[test]
    fn stripes_deal_pages_round_robin() {
        let m = StripedHomes::new(3, 2, 100).unwrap();
        let homes: Vec<u8> = (0..8).map(|p| m.home_of(page(p)).unwrap().get()).collect();
        assert_eq!(homes, [0, 0, 1, 1, 2, 2, 0, 0]);
        assert_eq!(m.home_of(page(100)), None);
        assert!(StripedHomes::new(0, 1, 1).is_none());
        assert!(StripedHomes::new(65, 1, 1).is_none());
    }

    #[test]
    fn ranges_find_their_home_and_reject_gaps() {
        let m = RangeHomes::new(vec![(100, 200, node(1)), (0, 50, node(0))]).unwrap();
        assert_eq!(m.home_of(page(0)), Some(node(0)));
        assert_eq!(m.home_of(page(49)), Some(node(0)));
        assert_eq!(m.home_of(page(50)), None);
        assert_eq!(m.home_of(page(150)), Some(node(1)));
        assert_eq!(m.home_of(page(200)), None);
    }

    #[test]
    fn ranges_reject_overlap_and_empty() {
        assert_eq!(RangeHomes::new(vec![(0, 10, node(0)), (5, 20, node(1))]), Err(RangeError::Overlap { start: 5 }));
        assert_eq!(RangeHomes::new(vec![(7, 7, node(0))]), Err(RangeError::Empty { start: 7 }));
    }
}
