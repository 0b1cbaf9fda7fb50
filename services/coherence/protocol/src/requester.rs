//! The requester side: this node's copies of pages homed elsewhere.
//!
//! A requester never defers a message: every message is valid in a known
//! set of states and is answered at once. That is what makes the home's
//! waiting (for acks, forwarded data, unblocks) free of deadlock.

use crate::cache::LocalPage;
use crate::{
    Access, Action, Actions, CacheState, Fill, FillFrom, GuestPage, HomeMap, Message, Node, NodeId, ProtocolError,
};

use CacheState::*;

impl<H: HomeMap> Node<H> {
    /// A local vCPU needs `access` to `page`, homed at `home`.
    pub(crate) fn requester_local_request(&mut self, page: GuestPage, home: NodeId, access: Access, out: &mut Actions) {
        let mut lp = self.cache.get(page);
        match (lp.state, access) {
            (Shared, Access::Read) => {
                self.counters.hits += 1;
                out.push(Action::Complete { page, access: Access::Read });
                return;
            }
            (Modified, _) => {
                self.counters.hits += 1;
                out.push(Action::Complete { page, access: Access::Write });
                return;
            }
            (Invalid, _) => {
                self.counters.misses += 1;
                lp.state = self.send_get(page, home, access, out);
            }
            (Shared, Access::Write) => {
                self.counters.misses += 1;
                self.send(out, home, Message::Upgrade { page });
                lp.state = SharedToModified;
            }
            _ => {
                // A transaction is in flight: remember the strongest need.
                self.counters.misses += 1;
                lp.want = lp.want.max(Some(access));
            }
        }
        self.cache.set(page, lp);
    }

    /// Evicts this node's copy of `page`, homed at `home`.
    pub(crate) fn requester_evict(
        &mut self,
        page: GuestPage,
        home: NodeId,
        out: &mut Actions,
    ) -> Result<(), ProtocolError> {
        let mut lp = self.cache.get(page);
        match lp.state {
            Shared => {
                // Silent: the home may still list us; its `Inv` gets an ack.
                out.push(Action::Unmap { page });
                out.push(Action::Release { page });
                lp.state = Invalid;
            }
            Modified => {
                out.push(Action::Unmap { page });
                self.send(out, home, Message::PutM { page });
                lp.state = ModifiedToInvalid;
            }
            Invalid => return Err(ProtocolError::NotCached { page }),
            _ => return Err(ProtocolError::Busy { page }),
        }
        self.cache.set(page, lp);
        Ok(())
    }

    /// A message for a page homed at `home`.
    pub(crate) fn requester_message(
        &mut self,
        from: NodeId,
        home: NodeId,
        msg: Message,
        out: &mut Actions,
    ) -> Result<(), ProtocolError> {
        let page = msg.page();
        let mut lp = self.cache.get(page);
        // Only `OwnerData` comes from a node other than the home.
        let from_home_only = !matches!(msg, Message::OwnerData { .. });
        if from_home_only && from != home {
            return Err(self.wrong_home(from, &msg));
        }
        match msg {
            Message::Grant { access, fill, .. } => {
                let fill_from = match fill {
                    Fill::Data => Some(FillFrom::Message),
                    Fill::Zero => Some(FillFrom::Zero),
                    Fill::Keep => None,
                };
                let exclusive_reads = !self.config.read_replication;
                let ok = match (lp.state, access, fill_from.is_some()) {
                    (InvalidToShared, Access::Read, true) => true,
                    (InvalidToShared, Access::Write, true) => exclusive_reads,
                    (InvalidToModified, Access::Write, true) => true,
                    (SharedToModified, Access::Write, false) => true,
                    _ => false,
                };
                if !ok {
                    return Err(self.unexpected(from, &msg));
                }
                if let Some(from) = fill_from {
                    out.push(Action::Fill { page, from });
                }
                out.push(Action::Map { page, access });
                self.granted(page, home, access, &mut lp, out);
            }
            Message::OwnerData { .. } => {
                let ok =
                    lp.state == InvalidToModified || (lp.state == InvalidToShared && !self.config.read_replication);
                if !ok {
                    return Err(self.unexpected(from, &msg));
                }
                out.push(Action::Fill { page, from: FillFrom::Message });
                out.push(Action::Map { page, access: Access::Write });
                self.send(out, home, Message::Unblock { page });
                self.granted(page, home, Access::Write, &mut lp, out);
            }
            Message::Nack { .. } => {
                let again = match lp.state {
                    InvalidToShared => Message::GetS { page },
                    InvalidToModified => Message::GetM { page },
                    SharedToModified => Message::Upgrade { page },
                    _ => return Err(self.unexpected(from, &msg)),
                };
                self.send(out, home, again);
            }
            Message::PutAck { .. } => {
                match lp.state {
                    ModifiedToInvalid => out.push(Action::Release { page }),
                    ForwardedToInvalid => {}
                    _ => return Err(self.unexpected(from, &msg)),
                }
                lp.state = Invalid;
                if let Some(access) = lp.want.take() {
                    lp.state = self.send_get(page, home, access, out);
                }
            }
            Message::Inv { .. } => {
                match lp.state {
                    Shared | SharedToModified => {
                        out.push(Action::Unmap { page });
                        out.push(Action::Release { page });
                        lp.state = if lp.state == Shared {
                            Invalid
                        } else {
                            // Our upgrade lost the race; the home will serve
                            // it as a write miss, with data.
                            InvalidToModified
                        };
                    }
                    // A copy we dropped silently: just acknowledge.
                    Invalid | InvalidToShared | InvalidToModified => {}
                    _ => return Err(self.unexpected(from, &msg)),
                }
                self.send(out, home, Message::InvAck { page });
            }
            Message::FwdGetS { .. } => match lp.state {
                Modified => {
                    out.push(Action::Map { page, access: Access::Read });
                    self.send(out, home, Message::FwdData { page, keep: true });
                    lp.state = Shared;
                }
                ModifiedToInvalid => {
                    self.send(out, home, Message::FwdData { page, keep: false });
                    out.push(Action::Release { page });
                    lp.state = ForwardedToInvalid;
                }
                _ => return Err(self.unexpected(from, &msg)),
            },
            Message::FwdGetM { requester, .. } => {
                if requester == self.id {
                    return Err(self.unexpected(from, &msg));
                }
                match lp.state {
                    Modified => {
                        out.push(Action::Unmap { page });
                        self.send(out, requester, Message::OwnerData { page });
                        out.push(Action::Release { page });
                        lp.state = Invalid;
                    }
                    ModifiedToInvalid => {
                        self.send(out, requester, Message::OwnerData { page });
                        out.push(Action::Release { page });
                        lp.state = ForwardedToInvalid;
                    }
                    _ => return Err(self.unexpected(from, &msg)),
                }
            }
            Message::GetS { .. }
            | Message::GetM { .. }
            | Message::Upgrade { .. }
            | Message::PutM { .. }
            | Message::InvAck { .. }
            | Message::FwdData { .. }
            | Message::Unblock { .. } => return Err(self.wrong_home(from, &msg)),
        }
        self.cache.set(page, lp);
        Ok(())
    }

    /// The grant of `access` arrived (mapping already pushed): complete the
    /// waiting vCPUs and start an upgrade if some of them need more.
    fn granted(&mut self, page: GuestPage, home: NodeId, access: Access, lp: &mut LocalPage, out: &mut Actions) {
        out.push(Action::Complete { page, access });
        lp.state = match access {
            Access::Read => Shared,
            Access::Write => Modified,
        };
        if lp.want.take() > Some(access) {
            self.send(out, home, Message::Upgrade { page });
            lp.state = SharedToModified;
        }
    }

    /// Sends the request for `access` from `Invalid`; returns the new state.
    fn send_get(&mut self, page: GuestPage, home: NodeId, access: Access, out: &mut Actions) -> CacheState {
        match access {
            Access::Read => {
                self.send(out, home, Message::GetS { page });
                InvalidToShared
            }
            Access::Write => {
                self.send(out, home, Message::GetM { page });
                InvalidToModified
            }
        }
    }
}
