//! Switches for the latency-hiding features, and the slots reserved for the
//! ones that are not built yet.

/// How a node runs the protocol. Every node of a cluster must use the same
/// configuration (it comes from the cluster's `hw-configs` file).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ProtocolConfig {
    /// Read replication: several nodes may hold a page read-only at once.
    /// When off, every access moves the page exclusively (a read miss is
    /// served like a write miss and maps the page writable).
    pub read_replication: bool,
    /// Zero pages: a page that was never granted writable anywhere is known
    /// to be all zeroes, so granting it sends no page data; the receiver
    /// zero-fills its frame.
    pub zero_pages: bool,
    /// Requests from other nodes that a home queues while their page is busy.
    /// When the queue is full the home answers `Nack` and the requester sends
    /// its request again. The home's own requests never count against it.
    pub home_queue_capacity: u16,
    /// Reserved: page-versus-vCPU migration by cost. Not implemented.
    pub migration: MigrationPolicy,
    /// Reserved: prefetch on sequential faults. Not implemented.
    pub prefetch: PrefetchPolicy,
    /// Test-only: one protocol rule deliberately broken, to show that the
    /// simulator and the model checker catch it.
    #[cfg(any(test, feature = "mutation"))]
    pub mutation: Mutation,
}

impl ProtocolConfig {
    /// Everything on, with a home queue of 256 requests.
    pub const DEFAULT: Self = Self {
        read_replication: true,
        zero_pages: true,
        home_queue_capacity: 256,
        migration: MigrationPolicy::Off,
        prefetch: PrefetchPolicy::Off,
        #[cfg(any(test, feature = "mutation"))]
        mutation: Mutation::None,
    };
}

impl Default for ProtocolConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Reserved slot for page-versus-vCPU migration decisions.
///
/// The plan: the home counts, per page, how often ownership moves between
/// the same two nodes (ping-pong). Past a threshold a policy either pins the
/// page at one node (and sends the accesses of the other as RPCs) or asks
/// the vCPU scheduler to move the vCPU. Both need only new *outputs* from the
/// home (an `Action` variant for the scheduler), not new coherence states.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum MigrationPolicy {
    /// Pages always move to the vCPU that touches them.
    #[default]
    Off,
}

/// Reserved slot for prefetch.
///
/// The plan: on a read miss of page `p` after a miss of `p - 1` at the same
/// node, the requester also sends `GetS` for `p + 1 ..= p + depth` as
/// ordinary requests without a waiting vCPU. This fits the existing request
/// path: a completed prefetch is a grant that no vCPU waits for.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum PrefetchPolicy {
    /// Only faulting pages are requested.
    #[default]
    Off,
}

/// A protocol rule broken on purpose (mutation testing).
#[cfg(any(test, feature = "mutation"))]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum Mutation {
    /// The correct protocol.
    #[default]
    None,
    /// On a write miss or upgrade the home does not invalidate the
    /// highest-numbered other sharer (and does not wait for its ack).
    SkipOneInvalidate,
}
