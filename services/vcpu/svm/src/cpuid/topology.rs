//! How the guest's vCPUs are numbered: one package, one AMD "node" (die)
//! per Sinter node, one core per vCPU, one thread per core.
//!
//! vCPUs are numbered node by node (node 0's first, then node 1's, …).
//! A vCPU's APIC ID is `node << core_bits | core`, where `core_bits`
//! covers the largest node, so the guest's last-level cache (declared per
//! node) and its AMD node ID both line up with the Sinter node a vCPU runs
//! on; APIC IDs may have holes when nodes have unequal vCPU counts.

use core::fmt;

/// At most 8 nodes: CPUID 0x8000_001E ECX bits 10:8 holds nodes-per-package − 1.
pub const MAX_NODES: usize = 8;

/// The highest usable xAPIC ID (255 is broadcast).
pub const MAX_APIC_ID: u32 = 254;

/// A vCPU's place in the topology.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuPlace {
    /// The Sinter node (= AMD node ID, = NUMA domain) it runs on.
    pub node: u8,
    /// Its core number within the node.
    pub core: u8,
    /// Its (x)APIC ID.
    pub apic_id: u8,
}

/// A refused topology.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopologyError {
    /// No nodes.
    NoNodes,
    /// More than [`MAX_NODES`] nodes.
    TooManyNodes(usize),
    /// A node with no vCPUs.
    EmptyNode(usize),
    /// The APIC IDs would not fit in xAPIC's 8 bits.
    ApicIdOverflow,
}

impl fmt::Display for TopologyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoNodes => write!(f, "a guest needs at least one node"),
            Self::TooManyNodes(n) => write!(f, "{n} nodes; at most {MAX_NODES}"),
            Self::EmptyNode(n) => write!(f, "node {n} has no vCPUs"),
            Self::ApicIdOverflow => write!(f, "APIC IDs exceed {MAX_APIC_ID}"),
        }
    }
}

/// The guest's CPU topology.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Topology {
    per_node: [u8; MAX_NODES],
    nodes: u8,
    core_bits: u8,
    node_bits: u8,
}

const fn bits_for(n: u32) -> u8 {
    // ceil(log2(n)), 0 for n <= 1.
    if n <= 1 {
        0
    } else {
        (32 - (n - 1).leading_zeros()) as u8
    }
}

impl Topology {
    /// A topology with `vcpus_per_node[i]` vCPUs on node `i`.
    pub fn new(vcpus_per_node: &[u8]) -> Result<Self, TopologyError> {
        if vcpus_per_node.is_empty() {
            return Err(TopologyError::NoNodes);
        }
        if vcpus_per_node.len() > MAX_NODES {
            return Err(TopologyError::TooManyNodes(vcpus_per_node.len()));
        }
        if let Some(i) = vcpus_per_node.iter().position(|&n| n == 0) {
            return Err(TopologyError::EmptyNode(i));
        }
        let max = vcpus_per_node.iter().copied().max().unwrap_or(1);
        let core_bits = bits_for(u32::from(max));
        let node_bits = bits_for(vcpus_per_node.len() as u32);
        let last = vcpus_per_node.len() as u32 - 1;
        let highest = (last << core_bits) | (u32::from(vcpus_per_node[last as usize]) - 1);
        if u32::from(core_bits) + u32::from(node_bits) > 8 || highest > MAX_APIC_ID {
            return Err(TopologyError::ApicIdOverflow);
        }
        let mut per_node = [0; MAX_NODES];
        per_node[..vcpus_per_node.len()].copy_from_slice(vcpus_per_node);
        Ok(Self { per_node, nodes: vcpus_per_node.len() as u8, core_bits, node_bits })
    }

    /// Total vCPUs.
    pub fn vcpu_count(&self) -> u16 {
        self.per_node.iter().map(|&n| u16::from(n)).sum()
    }

    /// Number of nodes.
    pub fn node_count(&self) -> u8 {
        self.nodes
    }

    /// vCPUs on `node`.
    pub fn vcpus_on(&self, node: u8) -> u8 {
        self.per_node.get(usize::from(node)).copied().unwrap_or(0)
    }

    /// APIC ID bits used for the core within a node.
    pub fn core_bits(&self) -> u8 {
        self.core_bits
    }

    /// APIC ID bits in the package (CPUID 0x8000_0008 ECX ApicIdSize).
    pub fn apic_id_bits(&self) -> u8 {
        self.core_bits + self.node_bits
    }

    /// Where vCPU `index` (0-based, node by node) sits.
    pub fn place(&self, index: u16) -> Option<VcpuPlace> {
        let mut first = 0u16;
        for node in 0..self.nodes {
            let n = u16::from(self.per_node[usize::from(node)]);
            if index < first + n {
                let core = (index - first) as u8;
                return Some(VcpuPlace { node, core, apic_id: (node << self.core_bits) | core });
            }
            first += n;
        }
        None
    }

    /// All vCPUs' places, in index order.
    pub fn places(&self) -> impl Iterator<Item = VcpuPlace> + '_ {
        (0..self.vcpu_count()).filter_map(|i| self.place(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_vcpu() {
        let t = Topology::new(&[1]).unwrap();
        assert_eq!(t.vcpu_count(), 1);
        assert_eq!(t.apic_id_bits(), 0);
        assert_eq!(t.place(0), Some(VcpuPlace { node: 0, core: 0, apic_id: 0 }));
        assert_eq!(t.place(1), None);
    }

    #[test]
    fn uneven_nodes_leave_apic_id_holes() {
        let t = Topology::new(&[3, 1, 2]).unwrap();
        let ids: std::vec::Vec<_> = t.places().map(|p| (p.node, p.apic_id)).collect();
        assert_eq!(ids, [(0, 0), (0, 1), (0, 2), (1, 4), (2, 8), (2, 9)]);
        assert_eq!((t.core_bits(), t.apic_id_bits()), (2, 4));
    }

    #[test]
    fn refusals() {
        assert_eq!(Topology::new(&[]), Err(TopologyError::NoNodes));
        assert_eq!(Topology::new(&[1; 9]), Err(TopologyError::TooManyNodes(9)));
        assert_eq!(Topology::new(&[2, 0]), Err(TopologyError::EmptyNode(1)));
        assert_eq!(Topology::new(&[128, 128]), Err(TopologyError::ApicIdOverflow));
        assert!(Topology::new(&[32; 8]).is_err(), "8 x 32 needs APIC ID 255");
        assert!(Topology::new(&[31, 31, 31, 31, 31, 31, 31, 31]).is_ok());
    }
}
