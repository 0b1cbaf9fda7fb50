//! What the engine asks its shell to do. The engine never touches memory,
//! page tables or the network itself; it returns these, in order.

use alloc::vec::Vec;

use crate::{Access, GuestPage, Message, NodeId};

/// Where [`Action::Fill`] takes the page contents from.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum FillFrom {
    /// The page carried by the message being handled.
    Message,
    /// Zeroes (a never-written page).
    Zero,
}

/// One thing for the shell to do. The shell executes a batch strictly in
/// order; the engine relies on that order:
///
/// * a page-carrying [`Action::Send`] copies (or grants) the local frame
///   *at that point* of the batch, and the engine always revokes or
///   downgrades the local mapping *before* such a send, so no vCPU can write
///   the frame after the copy;
/// * [`Action::Fill`] comes before the [`Action::Map`] that exposes it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Action {
    /// Send `msg` to `to` (never to this node itself). If
    /// `msg.carries_page()`, attach this node's frame of `msg.page()`.
    Send {
        /// Destination node.
        to: NodeId,
        /// The message.
        msg: Message,
    },
    /// Overwrite this node's frame of `page` (without mapping it).
    Fill {
        /// The page.
        page: GuestPage,
        /// The new contents.
        from: FillFrom,
    },
    /// Map this node's frame of `page` into the guest with exactly `access`
    /// (`Read` on a writable page downgrades it). Includes the TLB shootdown.
    Map {
        /// The page.
        page: GuestPage,
        /// Read-only or writable.
        access: Access,
    },
    /// Remove the guest mapping of `page` (with TLB shootdown). The frame
    /// keeps its contents until [`Action::Release`].
    Unmap {
        /// The page.
        page: GuestPage,
    },
    /// The frame of `page` is no longer needed here and may be reused.
    /// Never emitted for pages this node is home of (their frame is the
    /// backing memory).
    Release {
        /// The page.
        page: GuestPage,
    },
    /// Local request(s) for `page` are done: resume the vCPUs waiting for
    /// at most `access`. Waiters for more stay blocked; the engine is
    /// already working on their access.
    Complete {
        /// The page.
        page: GuestPage,
        /// The access now held.
        access: Access,
    },
}

/// A reusable buffer of actions. The caller owns it, clears it between
/// batches, and keeps its capacity, so handling a message allocates nothing
/// in the steady state. A single call appends a handful of actions, plus
/// one `Send` per invalidated sharer, plus a handful for every queued
/// request that the call lets the home serve.
#[derive(Clone, Default, Debug, PartialEq, Eq, Hash)]
pub struct Actions {
    list: Vec<Action>,
}

impl Actions {
    /// An empty buffer with room for a typical batch.
    pub fn new() -> Self {
        Self { list: Vec::with_capacity(16) }
    }

    /// Forgets all actions, keeping the capacity.
    #[inline]
    pub fn clear(&mut self) {
        self.list.clear();
    }

    /// The actions, oldest first.
    #[inline]
    pub fn as_slice(&self) -> &[Action] {
        &self.list
    }

    /// Number of actions.
    #[inline]
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there are none.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Iterates oldest first.
    #[inline]
    pub fn iter(&self) -> core::slice::Iter<'_, Action> {
        self.list.iter()
    }

    #[inline]
    pub(crate) fn push(&mut self, action: Action) {
        self.list.push(action);
    }

    #[inline]
    pub(crate) fn send(&mut self, to: NodeId, msg: Message) {
        self.list.push(Action::Send { to, msg });
    }
}

impl<'a> IntoIterator for &'a Actions {
    type Item = &'a Action;
    type IntoIter = core::slice::Iter<'a, Action>;
    #[inline]
    fn into_iter(self) -> Self::IntoIter {
        self.list.iter()
    }
}
