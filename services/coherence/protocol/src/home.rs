//! The home side: directory transactions for the pages this node backs.
//!
//! One transaction per page at a time. A request for a busy page waits in
//! the home queue (or is NACKed when the queue is full); when a transaction
//! ends, the queue is drained in FIFO order until the page is busy again.
//! The home is a participant like any other node: when it is the requester,
//! owner or a sharer, the "message" to itself is done in place (map, unmap,
//! complete) instead of being sent.

use crate::directory::{QueuedRequest, RequestKind, Transaction};
use crate::node::home_access;
use crate::{
    Access, Action, Actions, DirectoryEntry, Fill, FillFrom, GuestPage, HomeMap, Message, Node, NodeId, NodeSet,
    ProtocolError,
};

impl<H: HomeMap> Node<H> {
    /// A local vCPU of the home needs `access` to one of its own pages.
    pub(crate) fn home_local_request(&mut self, page: GuestPage, access: Access, out: &mut Actions) {
        let me = self.id;
        let mut e = self.directory.entry(page);
        if let Some(held) = home_access(&e, me) {
            if held >= access {
                self.counters.hits += 1;
                out.push(Action::Complete { page, access: held });
                return;
            }
        }
        self.counters.misses += 1;
        let kind = match access {
            Access::Read => RequestKind::Read,
            Access::Write => RequestKind::Write,
        };
        if e.busy.is_none() {
            self.start(page, me, kind, e, out);
        } else if !(e.home_queued && self.directory.merge(page, me, kind)) {
            self.directory.push(QueuedRequest { page, from: me, kind }, me);
            e.home_queued = true;
            self.directory.set(page, e);
            self.note_queue_length();
        }
    }

    /// A message for a page homed here.
    pub(crate) fn home_message(&mut self, from: NodeId, msg: Message, out: &mut Actions) -> Result<(), ProtocolError> {
        let page = msg.page();
        match msg {
            Message::GetS { .. } => self.remote_request(page, from, RequestKind::Read, &msg, out),
            Message::GetM { .. } => self.remote_request(page, from, RequestKind::Write, &msg, out),
            Message::Upgrade { .. } => self.remote_request(page, from, RequestKind::Upgrade, &msg, out),
            Message::PutM { .. } => {
                let mut e = self.directory.entry(page);
                if e.busy.is_none() && e.owner == Some(from) {
                    // The write-back of the current owner: memory is valid again.
                    out.push(Action::Fill { page, from: FillFrom::Message });
                    e.owner = None;
                    self.directory.set(page, e);
                }
                // Otherwise the eviction crossed a forward that the evicting
                // node serves (or has served) from the frame it still holds:
                // the data here is stale and is dropped.
                self.send(out, from, Message::PutAck { page });
                Ok(())
            }
            Message::InvAck { .. } => {
                let mut e = self.directory.entry(page);
                let Some(Transaction::AwaitInvAcks { requester, mut pending, fill }) = e.busy else {
                    return Err(self.unexpected(from, &msg));
                };
                if !pending.remove(from) {
                    return Err(self.unexpected(from, &msg));
                }
                if pending.is_empty() {
                    e.busy = None;
                    e.owner = Some(requester);
                    self.directory.set(page, e);
                    self.grant(page, requester, Access::Write, fill, out);
                    self.drain(page, out);
                } else {
                    e.busy = Some(Transaction::AwaitInvAcks { requester, pending, fill });
                    self.directory.set(page, e);
                }
                Ok(())
            }
            Message::FwdData { keep, .. } => {
                let mut e = self.directory.entry(page);
                let Some(Transaction::AwaitFwdData { requester, owner }) = e.busy else {
                    return Err(self.unexpected(from, &msg));
                };
                if owner != from {
                    return Err(self.unexpected(from, &msg));
                }
                out.push(Action::Fill { page, from: FillFrom::Message });
                e.busy = None;
                e.owner = None;
                e.sharers = NodeSet::only(requester);
                if keep {
                    e.sharers.insert(owner);
                }
                self.directory.set(page, e);
                self.grant(page, requester, Access::Read, Fill::Data, out);
                self.drain(page, out);
                Ok(())
            }
            Message::OwnerData { .. } => {
                // Only when the home itself asked to write an owned page.
                let mut e = self.directory.entry(page);
                match e.busy {
                    Some(Transaction::AwaitUnblock { requester, owner }) if requester == self.id && owner == from => {}
                    _ => return Err(self.unexpected(from, &msg)),
                }
                out.push(Action::Fill { page, from: FillFrom::Message });
                e.busy = None;
                e.owner = Some(self.id);
                self.directory.set(page, e);
                self.grant(page, self.id, Access::Write, Fill::Keep, out);
                self.drain(page, out);
                Ok(())
            }
            Message::Unblock { .. } => {
                let mut e = self.directory.entry(page);
                match e.busy {
                    Some(Transaction::AwaitUnblock { requester, .. }) if requester == from => {}
                    _ => return Err(self.unexpected(from, &msg)),
                }
                e.busy = None;
                e.owner = Some(from);
                self.directory.set(page, e);
                self.drain(page, out);
                Ok(())
            }
            Message::Grant { .. }
            | Message::Nack { .. }
            | Message::PutAck { .. }
            | Message::Inv { .. }
            | Message::FwdGetS { .. }
            | Message::FwdGetM { .. } => Err(self.wrong_home(from, &msg)),
        }
    }

    /// A `GetS`, `GetM` or `Upgrade` from another node.
    fn remote_request(
        &mut self,
        page: GuestPage,
        from: NodeId,
        kind: RequestKind,
        msg: &Message,
        out: &mut Actions,
    ) -> Result<(), ProtocolError> {
        let e = self.directory.entry(page);
        match e.busy {
            None => {
                if e.owner == Some(from) {
                    // A correct owner has nothing to ask for.
                    return Err(self.unexpected(from, msg));
                }
                self.start(page, from, kind, e, out);
            }
            Some(_) => {
                if self.directory.is_queued(page, from) {
                    // A correct node has one request per page in flight.
                    return Err(self.unexpected(from, msg));
                }
                if self.directory.has_room() {
                    self.directory.push(QueuedRequest { page, from, kind }, self.id);
                    self.note_queue_length();
                } else {
                    self.send(out, from, Message::Nack { page });
                }
            }
        }
        Ok(())
    }

    /// Runs queued requests for `page` until it is busy or none is left.
    fn drain(&mut self, page: GuestPage, out: &mut Actions) {
        while self.directory.queued() > 0 && self.directory.entry(page).busy.is_none() {
            let Some(request) = self.directory.pop(page, self.id) else {
                return;
            };
            let mut e = self.directory.entry(page);
            if request.from == self.id {
                e.home_queued = false;
                self.directory.set(page, e);
            }
            self.start(page, request.from, request.kind, e, out);
        }
    }

    /// Starts serving a request on an idle entry `e` (the current entry of
    /// `page`). Either completes it at once or leaves the entry busy with
    /// the transaction that will.
    fn start(&mut self, page: GuestPage, q: NodeId, kind: RequestKind, mut e: DirectoryEntry, out: &mut Actions) {
        let me = self.id;
        let exclusive = kind != RequestKind::Read || !self.config.read_replication;
        let wanted = if exclusive { Access::Write } else { Access::Read };
        if q == me {
            if let Some(held) = home_access(&e, me) {
                if held >= wanted {
                    out.push(Action::Complete { page, access: held });
                    return;
                }
            }
        }
        match e.owner {
            Some(o) if o == q => {
                // A remote owner asking again (checked on arrival, so only a
                // request queued behind its own grant): nothing to do.
                self.counters.dropped_requests += 1;
            }
            Some(o) if o == me => {
                // The home holds it writable; memory is its frame.
                if exclusive {
                    out.push(Action::Unmap { page });
                    e.owner = Some(q);
                    self.directory.set(page, e);
                    self.grant(page, q, Access::Write, Fill::Data, out);
                } else {
                    out.push(Action::Map { page, access: Access::Read });
                    e.owner = None;
                    e.sharers = NodeSet::only(me);
                    e.sharers.insert(q);
                    self.directory.set(page, e);
                    self.grant(page, q, Access::Read, Fill::Data, out);
                }
            }
            Some(o) => {
                // Another node owns it: forward.
                if exclusive {
                    e.busy = Some(Transaction::AwaitUnblock { requester: q, owner: o });
                    e.written = true;
                    self.directory.set(page, e);
                    self.send(out, o, Message::FwdGetM { page, requester: q });
                } else {
                    e.busy = Some(Transaction::AwaitFwdData { requester: q, owner: o });
                    self.directory.set(page, e);
                    self.send(out, o, Message::FwdGetS { page, requester: q });
                }
            }
            None if !exclusive => {
                // Memory is valid: grant a read-only copy.
                let fill = self.fill_for_new_copy(&e);
                e.sharers.insert(q);
                self.directory.set(page, e);
                self.grant(page, q, Access::Read, fill, out);
            }
            None => self.start_exclusive(page, q, kind, e, out),
        }
    }

    /// Write miss or upgrade of a page nobody owns: invalidate the sharers
    /// (the home's own copy in place), then grant.
    fn start_exclusive(
        &mut self,
        page: GuestPage,
        q: NodeId,
        kind: RequestKind,
        mut e: DirectoryEntry,
        out: &mut Actions,
    ) {
        let me = self.id;
        let fill = if q == me || (kind == RequestKind::Upgrade && e.sharers.contains(q)) {
            Fill::Keep
        } else {
            self.fill_for_new_copy(&e)
        };
        if q != me && e.sharers.contains(me) {
            out.push(Action::Unmap { page });
        }
        #[allow(unused_mut)] // reason: only the mutation build changes it.
        let mut others = e.sharers.without(q).without(me);
        #[cfg(any(test, feature = "mutation"))]
        if self.config.mutation == crate::Mutation::SkipOneInvalidate {
            if let Some(skipped) = others.highest() {
                others.remove(skipped);
            }
        }
        e.written = true;
        e.sharers = NodeSet::EMPTY;
        if others.is_empty() {
            e.owner = Some(q);
            self.directory.set(page, e);
            self.grant(page, q, Access::Write, fill, out);
        } else {
            e.busy = Some(Transaction::AwaitInvAcks { requester: q, pending: others, fill });
            self.directory.set(page, e);
            for sharer in others.iter() {
                self.send(out, sharer, Message::Inv { page });
            }
        }
    }

    /// How a new copy for a requester other than the home is filled while
    /// memory is valid.
    fn fill_for_new_copy(&mut self, e: &DirectoryEntry) -> Fill {
        if self.config.zero_pages && !e.written {
            Fill::Zero
        } else {
            Fill::Data
        }
    }

    /// Gives `q` `access`: a `Grant` message, or for the home itself the
    /// mapping and completion in place (its frame is already current).
    fn grant(&mut self, page: GuestPage, q: NodeId, access: Access, fill: Fill, out: &mut Actions) {
        if q == self.id {
            out.push(Action::Map { page, access });
            out.push(Action::Complete { page, access });
        } else {
            if fill == Fill::Zero {
                self.counters.zero_grants += 1;
            }
            self.send(out, q, Message::Grant { page, access, fill });
        }
    }

    fn note_queue_length(&mut self) {
        let n = u32::try_from(self.directory.queued()).unwrap_or(u32::MAX);
        self.counters.queue_peak = self.counters.queue_peak.max(n);
    }
}
