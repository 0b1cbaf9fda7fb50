//! One node's protocol engine: its entry points and the routing of each
//! message to the home side ([`crate::home`]) or the requester side
//! ([`crate::requester`]).

use core::hash::{Hash, Hasher};

use crate::cache::LocalPage;
use crate::directory::HomeDirectory;
use crate::page_table::PageTable;
use crate::{
    Access, Actions, CacheState, DirectoryEntry, GuestPage, HomeMap, Message, MessageKind, NodeId, ProtocolConfig,
    ProtocolError,
};

/// Per-node counters: cheap to keep, read by `cargo xtask status`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Counters {
    /// Messages handled, by kind (index: `MessageKind as usize`).
    pub received: [u64; MessageKind::COUNT],
    /// Messages sent, by kind.
    pub sent: [u64; MessageKind::COUNT],
    /// Local requests (faults) that needed the protocol.
    pub misses: u64,
    /// Local requests already satisfied by the current mapping.
    pub hits: u64,
    /// Grants sent without data because the page was never written.
    pub zero_grants: u64,
    /// Requests dropped at the home because the requester already owns the
    /// page (a peer broke the protocol).
    pub dropped_requests: u64,
    /// Longest home queue seen.
    pub queue_peak: u32,
}

/// The coherence engine of one node: home of some pages, requester of all
/// the others. Message in, actions out; no I/O, no clock.
#[derive(Clone, Debug)]
pub struct Node<H> {
    pub(crate) id: NodeId,
    pub(crate) homes: H,
    pub(crate) config: ProtocolConfig,
    pub(crate) directory: HomeDirectory,
    pub(crate) cache: PageTable<LocalPage>,
    pub(crate) counters: Counters,
}

impl<H: HomeMap> Node<H> {
    /// The engine for node `id` of a cluster whose pages are homed by `homes`.
    pub fn new(id: NodeId, homes: H, config: ProtocolConfig) -> Self {
        Self {
            id,
            homes,
            config,
            directory: HomeDirectory::new(config.home_queue_capacity),
            cache: PageTable::new(),
            counters: Counters::default(),
        }
    }

    /// This node.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The home map.
    pub fn home_map(&self) -> &H {
        &self.homes
    }

    /// The configuration.
    pub fn config(&self) -> &ProtocolConfig {
        &self.config
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// A local vCPU faulted on `page` needing `access`. Appends the actions
    /// to `out`; an [`crate::Action::Complete`] for `page` with at least
    /// `access` will eventually be emitted (possibly in this call).
    pub fn request(&mut self, page: GuestPage, access: Access, out: &mut Actions) -> Result<(), ProtocolError> {
        let home = self.home_of(page)?;
        if home == self.id {
            self.home_local_request(page, access, out);
        } else {
            self.requester_local_request(page, home, access, out);
        }
        Ok(())
    }

    /// Drops this node's copy of `page` (a page homed elsewhere): silently
    /// if read-only, with a write-back if writable.
    pub fn evict(&mut self, page: GuestPage, out: &mut Actions) -> Result<(), ProtocolError> {
        let home = self.home_of(page)?;
        if home == self.id {
            return Err(ProtocolError::HomeCannotEvict { page });
        }
        self.requester_evict(page, home, out)
    }

    /// Handles `msg` from node `from`.
    pub fn handle(&mut self, from: NodeId, msg: Message, out: &mut Actions) -> Result<(), ProtocolError> {
        let page = msg.page();
        let home = self.home_of(page)?;
        if from == self.id {
            return Err(self.unexpected(from, &msg));
        }
        let result = if home == self.id {
            self.home_message(from, msg, out)
        } else {
            self.requester_message(from, home, msg, out)
        };
        if result.is_ok() {
            self.counters.received[msg.kind() as usize] += 1;
        }
        result
    }

    /// Marks a page this node is home of as possibly non-zero, before the
    /// guest runs (the loader wrote the guest image into it).
    pub fn note_preloaded(&mut self, page: GuestPage) -> Result<(), ProtocolError> {
        if self.home_of(page)? != self.id {
            return Err(ProtocolError::NotHomedHere { page });
        }
        let mut e = self.directory.entry(page);
        e.written = true;
        self.directory.set(page, e);
        Ok(())
    }

    /// The access this node's guest mapping of `page` gives, by the engine's
    /// own account.
    pub fn mapped(&self, page: GuestPage) -> Option<Access> {
        match self.homes.home_of(page) {
            Some(home) if home == self.id => {
                let e = self.directory.entry(page);
                home_access(&e, self.id)
            }
            Some(_) => self.cache.get(page).state.mapped(),
            None => None,
        }
    }

    /// The requester state of a page homed elsewhere (`Invalid` for pages
    /// homed here).
    pub fn cache_state(&self, page: GuestPage) -> CacheState {
        self.cache.get(page).state
    }

    /// The directory entry of a page homed here.
    pub fn directory_entry(&self, page: GuestPage) -> Option<DirectoryEntry> {
        (self.homes.home_of(page) == Some(self.id)).then(|| self.directory.entry(page))
    }

    /// Whether no transaction of this node is in flight and no request waits
    /// in its home queue (quiescence, checked at the end of a simulation).
    pub fn is_idle(&self) -> bool {
        self.directory.queued() == 0 && self.transient_pages() == 0
    }

    /// Number of pages with state held here (directory plus cache entries).
    pub fn tracked_pages(&self) -> usize {
        self.directory.len() + self.cache.len()
    }

    fn transient_pages(&self) -> usize {
        // Only used off the hot path (end of simulation), so a scan is fine.
        let mut n = 0;
        self.cache.for_each(|_, lp| {
            if lp.state.is_transient() {
                n += 1;
            }
        });
        self.directory.for_each(|_, e| {
            if e.busy.is_some() {
                n += 1;
            }
        });
        n
    }

    pub(crate) fn home_of(&self, page: GuestPage) -> Result<NodeId, ProtocolError> {
        self.homes.home_of(page).ok_or(ProtocolError::NotGuestRam { page })
    }

    pub(crate) fn send(&mut self, out: &mut Actions, to: NodeId, msg: Message) {
        self.counters.sent[msg.kind() as usize] += 1;
        out.send(to, msg);
    }

    pub(crate) fn unexpected(&self, from: NodeId, msg: &Message) -> ProtocolError {
        ProtocolError::Unexpected { page: msg.page(), from, message: msg.kind() }
    }

    pub(crate) fn wrong_home(&self, from: NodeId, msg: &Message) -> ProtocolError {
        ProtocolError::WrongHome { page: msg.page(), from, message: msg.kind() }
    }
}

/// The home's own access to a page, from its directory entry.
pub(crate) fn home_access(e: &DirectoryEntry, home: NodeId) -> Option<Access> {
    if e.owner == Some(home) {
        Some(Access::Write)
    } else if e.sharers.contains(home) {
        Some(Access::Read)
    } else {
        None
    }
}

/// Equality and hashing ignore the counters: two nodes in the same protocol
/// state are the same model-checker state however they got there.
impl<H: PartialEq> PartialEq for Node<H> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.homes == other.homes
            && self.config == other.config
            && self.directory == other.directory
            && self.cache == other.cache
    }
}

impl<H: Eq> Eq for Node<H> {}

impl<H: Hash> Hash for Node<H> {
    fn hash<S: Hasher>(&self, state: &mut S) {
        self.id.hash(state);
        self.homes.hash(state);
        self.config.hash(state);
        self.directory.hash(state);
        self.cache.hash(state);
    }
}
