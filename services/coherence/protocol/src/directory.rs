//! The home's side of the state: one directory entry per page it backs,
//! and the queue of requests waiting for a busy page.

use alloc::collections::VecDeque;

use crate::page_table::PageTable;
use crate::{Fill, GuestPage, NodeId, NodeSet};

/// What a request asks the home for.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum RequestKind {
    /// `GetS`: read access.
    Read,
    /// `GetM`: write access, the requester holds no valid copy.
    Write,
    /// `Upgrade`: write access, the requester believes it holds a shared copy.
    Upgrade,
}

/// The transient state of a busy directory entry: what the home waits for.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Transaction {
    /// Write miss or upgrade: invalidations sent to `pending`, waiting for
    /// their acks before granting `requester` with `fill`.
    AwaitInvAcks {
        /// Who gets write access.
        requester: NodeId,
        /// Sharers whose `InvAck` has not arrived.
        pending: NodeSet,
        /// How the grant fills the requester's frame.
        fill: Fill,
    },
    /// Read miss of an owned page: `FwdGetS` sent to `owner`, waiting for
    /// its `FwdData`.
    AwaitFwdData {
        /// Who gets read access.
        requester: NodeId,
        /// The owner asked for the data.
        owner: NodeId,
    },
    /// Write miss of an owned page: `FwdGetM` sent to `owner`, waiting for
    /// the requester's `Unblock` (or, if the home is the requester, for the
    /// owner's `OwnerData`).
    AwaitUnblock {
        /// Who gets write access.
        requester: NodeId,
        /// The owner that sends the data.
        owner: NodeId,
    },
}

/// The home's record of one page. The home's own access is part of it:
/// the home is a sharer or the owner like any other node.
///
/// Invariants (checked by the simulator and the model checker through the
/// mappings they observe): `owner.is_some()` implies `sharers` is empty;
/// while `owner` is `None` or the home, the home's frame holds the current
/// contents ("memory is valid").
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct DirectoryEntry {
    /// The node holding the page writable, if any.
    pub owner: Option<NodeId>,
    /// The nodes holding it read-only. May list nodes that have silently
    /// dropped their copy; an `Inv` to them is simply acknowledged.
    pub sharers: NodeSet,
    /// Some node was granted write access at some time: the page may be
    /// non-zero. While false, grants need not carry data.
    pub written: bool,
    /// The transaction in flight, if the entry is busy.
    pub busy: Option<Transaction>,
    /// The home's own request for this page waits in the queue.
    pub home_queued: bool,
}

/// A request waiting for its page to stop being busy.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct QueuedRequest {
    pub(crate) page: GuestPage,
    pub(crate) from: NodeId,
    pub(crate) kind: RequestKind,
}

/// Directory entries of the pages this node is home of, plus the FIFO of
/// requests waiting for busy pages (one queue for all pages, bounded for
/// requests from other nodes).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct HomeDirectory {
    entries: PageTable<DirectoryEntry>,
    queue: VecDeque<QueuedRequest>,
    remote_queued: usize,
    capacity: usize,
}

impl HomeDirectory {
    pub(crate) fn new(capacity: u16) -> Self {
        Self { entries: PageTable::new(), queue: VecDeque::new(), remote_queued: 0, capacity: usize::from(capacity) }
    }

    pub(crate) fn entry(&self, page: GuestPage) -> DirectoryEntry {
        self.entries.get(page)
    }

    pub(crate) fn set(&mut self, page: GuestPage, entry: DirectoryEntry) {
        self.entries.set(page, entry);
    }

    /// Number of pages with a non-default entry.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Visits the non-default entries in no particular order.
    pub(crate) fn for_each(&self, f: impl FnMut(GuestPage, &DirectoryEntry)) {
        self.entries.for_each(f);
    }

    pub(crate) fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Whether a request from `from` for `page` is already waiting.
    pub(crate) fn is_queued(&self, page: GuestPage, from: NodeId) -> bool {
        self.queue.iter().any(|r| r.page == page && r.from == from)
    }

    /// Whether another request from another node fits.
    pub(crate) fn has_room(&self) -> bool {
        self.remote_queued < self.capacity
    }

    /// Appends a request. `home` requests do not count against capacity.
    pub(crate) fn push(&mut self, request: QueuedRequest, home: NodeId) {
        if request.from != home {
            self.remote_queued += 1;
        }
        self.queue.push_back(request);
    }

    /// Strengthens the queued request of `from` for `page` to `kind` if
    /// that asks for more. Returns whether one was found.
    pub(crate) fn merge(&mut self, page: GuestPage, from: NodeId, kind: RequestKind) -> bool {
        match self.queue.iter_mut().find(|r| r.page == page && r.from == from) {
            Some(r) => {
                if kind != RequestKind::Read {
                    r.kind = kind;
                }
                true
            }
            None => false,
        }
    }

    /// Takes the oldest request for `page`.
    pub(crate) fn pop(&mut self, page: GuestPage, home: NodeId) -> Option<QueuedRequest> {
        if self.queue.is_empty() {
            return None;
        }
        let i = self.queue.iter().position(|r| r.page == page)?;
        let request = self.queue.remove(i)?;
        if request.from != home {
            self.remote_queued -= 1;
        }
        Some(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(n: u64) -> GuestPage {
        GuestPage::new(n).unwrap()
    }
    fn node(n: u8) -> NodeId {
        NodeId::new(n).unwrap()
    }

    #[test]
    fn queue_is_fifo_per_page_and_counts_only_remote_requests() {
        let home = node(0);
        let mut d = HomeDirectory::new(2);
        let req = |p, f, kind| QueuedRequest { page: page(p), from: node(f), kind };
        d.push(req(1, 1, RequestKind::Read), home);
        d.push(req(2, 2, RequestKind::Write), home);
        assert!(!d.has_room());
        d.push(req(1, 0, RequestKind::Read), home); // the home's own: no room needed
        assert!(d.merge(page(1), home, RequestKind::Write));
        assert!(d.is_queued(page(1), node(1)));
        assert!(!d.is_queued(page(2), node(1)));
        assert_eq!(d.pop(page(1), home), Some(req(1, 1, RequestKind::Read)));
        assert!(d.has_room());
        assert_eq!(d.pop(page(1), home), Some(req(1, 0, RequestKind::Write)));
        assert_eq!(d.pop(page(1), home), None);
        assert_eq!(d.queued(), 1);
    }
}
