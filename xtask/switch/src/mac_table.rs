//! The forwarding database: which port a MAC address was last seen on, and
//! the forwarding decision that follows from it.

use std::collections::HashMap;

use crate::ethernet::MacAddr;
use crate::PortId;

/// Learned `source MAC -> port` entries, bounded in size.
///
/// Entries never age out: a test cluster lives for seconds to minutes, and a
/// node that moves (it cannot, in the harness) is re-learned on its next frame.
/// When the table is full, new addresses are not learned and frames to them
/// are flooded, which is always correct, only less efficient.
#[derive(Debug)]
pub(crate) struct MacTable {
    entries: HashMap<MacAddr, PortId>,
    capacity: usize,
}

/// Where a frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Forwarding {
    /// To every port except the ingress port.
    Flood,
    /// To this one port (never the ingress port).
    Unicast(PortId),
    /// Nowhere: the destination sits behind the ingress port itself.
    Filter,
}

impl MacTable {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { entries: HashMap::new(), capacity }
    }

    /// Records that `src` was seen on `port`. Group addresses are never
    /// learned (they are not valid sources). Returns whether an entry was
    /// added or moved.
    pub(crate) fn learn(&mut self, src: MacAddr, port: PortId) -> bool {
        if src.is_multicast() {
            return false;
        }
        if let Some(existing) = self.entries.get_mut(&src) {
            let moved = *existing != port;
            *existing = port;
            return moved;
        }
        if self.entries.len() >= self.capacity {
            return false;
        }
        self.entries.insert(src, port);
        true
    }

    /// The forwarding decision for a frame to `dst` that came in on `ingress`.
    pub(crate) fn forward(&self, ingress: PortId, dst: MacAddr) -> Forwarding {
        if dst.is_multicast() {
            return Forwarding::Flood;
        }
        match self.entries.get(&dst) {
            None => Forwarding::Flood,
            Some(&port) if port == ingress => Forwarding::Filter,
            Some(&port) => Forwarding::Unicast(port),
        }
    }

    /// All entries, sorted by address.
    pub(crate) fn entries(&self) -> Vec<(MacAddr, PortId)> {
        let mut all: Vec<_> = self.entries.iter().map(|(m, p)| (*m, *p)).collect();
        all.sort();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xa]);
    const B: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xb]);
    const C: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xc]);

    #[test]
    fn unknown_unicast_and_group_addresses_flood() {
        let mut table = MacTable::new(16);
        assert_eq!(table.forward(PortId(0), A), Forwarding::Flood);
        table.learn(A, PortId(1));
        assert_eq!(table.forward(PortId(0), MacAddr::BROADCAST), Forwarding::Flood);
        assert_eq!(table.forward(PortId(0), MacAddr([0x33, 0x33, 0, 0, 0, 1])), Forwarding::Flood);
    }

    #[test]
    fn learned_unicast_goes_to_one_port_and_never_back() {
        let mut table = MacTable::new(16);
        assert!(table.learn(A, PortId(0)));
        assert!(table.learn(B, PortId(1)));
        assert_eq!(table.forward(PortId(1), A), Forwarding::Unicast(PortId(0)));
        assert_eq!(table.forward(PortId(0), A), Forwarding::Filter);
        // A moves to port 2.
        assert!(table.learn(A, PortId(2)));
        assert!(!table.learn(A, PortId(2)));
        assert_eq!(table.forward(PortId(1), A), Forwarding::Unicast(PortId(2)));
    }

    #[test]
    fn group_sources_are_not_learned_and_capacity_is_bounded() {
        let mut table = MacTable::new(2);
        assert!(!table.learn(MacAddr::BROADCAST, PortId(0)));
        assert!(table.learn(A, PortId(0)));
        assert!(table.learn(B, PortId(0)));
        assert!(!table.learn(C, PortId(0)));
        assert_eq!(table.forward(PortId(1), C), Forwarding::Flood);
        assert_eq!(table.entries().len(), 2);
    }
}
