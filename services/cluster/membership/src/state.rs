use alloc::vec::Vec;

use crate::NodeId;

/// Timing, from the config (`[cluster] heartbeat_ms`, `failure_timeout_ms`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MembershipConfig {
    pub heartbeat_interval_ns: u64,
    /// Silence longer than this makes a peer dead.
    pub failure_timeout_ns: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MembershipError {
    /// The timeout must cover at least two heartbeats, or one lost
    /// heartbeat would kill a healthy peer.
    TimeoutTooShort,
    LocalNotAMember,
    TooManyMembers,
}

/// What nodes tell each other (carried by the transport, authenticated).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message {
    /// "I am up with this boot epoch; are you?"
    Join {
        epoch: u64,
    },
    /// Answer to `Join`, with the answering node's epoch.
    Welcome {
        epoch: u64,
    },
    Heartbeat {
        epoch: u64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerState {
    /// Never heard from since this node booted.
    Unknown,
    Alive {
        epoch: u64,
        last_contact: u64,
    },
    Dead {
        last_contact: u64,
    },
}

/// What the node should print and act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Report {
    PeerJoined {
        peer: NodeId,
        epoch: u64,
        at: u64,
    },
    /// Every configured member is alive: the cluster has formed.
    ClusterFormed {
        members: usize,
        at: u64,
    },
    PeerDead {
        peer: NodeId,
        last_contact: u64,
        detected_at: u64,
    },
    /// The peer is back with a different epoch: it rebooted.
    PeerRestarted {
        peer: NodeId,
        old_epoch: u64,
        new_epoch: u64,
        at: u64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Send { to: NodeId, message: Message },
    Report(Report),
}

pub struct Membership {
    local: NodeId,
    epoch: u64,
    config: MembershipConfig,
    members: Vec<NodeId>,
    peers: Vec<PeerState>,
    next_heartbeat: u64,
    formed: bool,
    /// Messages from nodes that are not members (counted, ignored).
    pub ignored_non_members: u64,
}

const MAX_MEMBERS: usize = 64;

impl Membership {
    /// `members` are every configured node id, including `local`.
    pub fn new(
        local: NodeId,
        epoch: u64,
        members: &[NodeId],
        config: MembershipConfig,
    ) -> Result<Self, MembershipError> {
        if config.failure_timeout_ns < 2 * config.heartbeat_interval_ns || config.heartbeat_interval_ns == 0 {
            return Err(MembershipError::TimeoutTooShort);
        }
        if members.len() > MAX_MEMBERS {
            return Err(MembershipError::TooManyMembers);
        }
        if !members.contains(&local) {
            return Err(MembershipError::LocalNotAMember);
        }
        Ok(Self {
            local,
            epoch,
            config,
            members: members.to_vec(),
            peers: alloc::vec![PeerState::Unknown; members.len()],
            next_heartbeat: 0,
            formed: false,
            ignored_non_members: 0,
        })
    }

    fn index(&self, node: NodeId) -> Option<usize> {
        self.members.iter().position(|&m| m == node)
    }

    pub fn peer(&self, node: NodeId) -> Option<PeerState> {
        self.index(node).map(|i| self.peers[i])
    }

    fn others(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.members.iter().copied().filter(move |&m| m != self.local)
    }

    /// Starts the handshake with every peer.
    pub fn start(&mut self, now: u64, out: &mut Vec<Action>) {
        let epoch = self.epoch;
        for peer in self.others().collect::<Vec<_>>() {
            out.push(Action::Send { to: peer, message: Message::Join { epoch } });
        }
        self.next_heartbeat = now + self.config.heartbeat_interval_ns;
        self.check_formed(now, out);
    }

    pub fn on_message(&mut self, from: NodeId, message: Message, now: u64, out: &mut Vec<Action>) {
        let Some(index) = self.index(from).filter(|_| from != self.local) else {
            self.ignored_non_members += 1;
            return;
        };
        let epoch = match message {
            Message::Join { epoch } => {
                out.push(Action::Send { to: from, message: Message::Welcome { epoch: self.epoch } });
                epoch
            }
            Message::Welcome { epoch } | Message::Heartbeat { epoch } => epoch,
        };
        match self.peers[index] {
            PeerState::Alive { epoch: known, .. } if known == epoch => {}
            PeerState::Alive { epoch: old_epoch, .. } => {
                out.push(Action::Report(Report::PeerRestarted { peer: from, old_epoch, new_epoch: epoch, at: now }));
            }
            PeerState::Unknown | PeerState::Dead { .. } => {
                out.push(Action::Report(Report::PeerJoined { peer: from, epoch, at: now }));
                if !matches!(message, Message::Join { .. }) && matches!(self.peers[index], PeerState::Dead { .. }) {
                    // A peer we buried is talking again without a fresh
                    // handshake: ask it to join properly.
                    out.push(Action::Send { to: from, message: Message::Join { epoch: self.epoch } });
                }
            }
        }
        self.peers[index] = PeerState::Alive { epoch, last_contact: now };
        self.check_formed(now, out);
    }

    /// Sends due heartbeats and declares silent peers dead.
    pub fn tick(&mut self, now: u64, out: &mut Vec<Action>) {
        if now >= self.next_heartbeat {
            let epoch = self.epoch;
            for peer in self.others().collect::<Vec<_>>() {
                out.push(Action::Send { to: peer, message: Message::Heartbeat { epoch } });
            }
            self.next_heartbeat = now + self.config.heartbeat_interval_ns;
        }
        for (i, state) in self.peers.iter_mut().enumerate() {
            if let PeerState::Alive { last_contact, .. } = *state {
                if now.saturating_sub(last_contact) > self.config.failure_timeout_ns {
                    *state = PeerState::Dead { last_contact };
                    self.formed = false;
                    out.push(Action::Report(Report::PeerDead {
                        peer: self.members[i],
                        last_contact,
                        detected_at: now,
                    }));
                }
            }
        }
    }

    /// When the next `tick` has something to do.
    pub fn next_deadline(&self) -> u64 {
        let expiry = self
            .peers
            .iter()
            .filter_map(|p| match p {
                PeerState::Alive { last_contact, .. } => Some(last_contact + self.config.failure_timeout_ns + 1),
                _ => None,
            })
            .min()
            .unwrap_or(u64::MAX);
        expiry.min(self.next_heartbeat)
    }

    fn check_formed(&mut self, now: u64, out: &mut Vec<Action>) {
        let all_alive =
            self.members.iter().zip(&self.peers).all(|(&m, p)| m == self.local || matches!(p, PeerState::Alive { .. }));
        if all_alive && !self.formed {
            self.formed = true;
            out.push(Action::Report(Report::ClusterFormed { members: self.members.len(), at: now }));
        }
    }

    pub fn is_formed(&self) -> bool {
        self.formed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec;

    const MS: u64 = 1_000_000;
    const CONFIG: MembershipConfig = MembershipConfig { heartbeat_interval_ns: 100 * MS, failure_timeout_ns: 500 * MS };

    /// N nodes on a perfect network, except the links listed as cut.
    struct Sim {
        nodes: Vec<Membership>,
        reports: Vec<(NodeId, Report)>,
        cut: Vec<NodeId>,
        now: u64,
    }

    impl Sim {
        fn new(n: u16) -> Self {
            let ids: Vec<NodeId> = (0..n).collect();
            let nodes = ids.iter().map(|&i| Membership::new(i, 1000 + u64::from(i), &ids, CONFIG).unwrap()).collect();
            Self { nodes, reports: Vec::new(), cut: Vec::new(), now: 0 }
        }

        fn deliver(&mut self, from: NodeId, actions: Vec<Action>) {
            let mut queue: Vec<(NodeId, Action)> = actions.into_iter().map(|a| (from, a)).collect();
            while let Some((sender, action)) = queue.pop() {
                match action {
                    Action::Report(r) => self.reports.push((sender, r)),
                    Action::Send { to, message } => {
                        if self.cut.contains(&sender) || self.cut.contains(&to) {
                            continue;
                        }
                        let mut out = Vec::new();
                        self.nodes[usize::from(to)].on_message(sender, message, self.now, &mut out);
                        queue.extend(out.into_iter().map(|a| (to, a)));
                    }
                }
            }
        }

        fn start(&mut self) {
            for i in 0..self.nodes.len() {
                let mut out = Vec::new();
                self.nodes[i].start(self.now, &mut out);
                self.deliver(i as NodeId, out);
            }
        }

        fn run_until(&mut self, end: u64, step: u64) {
            while self.now < end {
                self.now += step;
                for i in 0..self.nodes.len() {
                    if self.cut.contains(&(i as NodeId)) {
                        continue;
                    }
                    let mut out = Vec::new();
                    self.nodes[i].tick(self.now, &mut out);
                    self.deliver(i as NodeId, out);
                }
            }
        }
    }

    #[test]
    fn three_nodes_form_a_cluster() {
        let mut sim = Sim::new(3);
        sim.start();
        for node in &sim.nodes {
            assert!(node.is_formed());
        }
        let formed = sim.reports.iter().filter(|(_, r)| matches!(r, Report::ClusterFormed { members: 3, .. })).count();
        assert_eq!(formed, 3);
        sim.run_until(10_000 * MS, 10 * MS);
        assert!(!sim.reports.iter().any(|(_, r)| matches!(r, Report::PeerDead { .. })), "healthy peers died");
    }

    #[test]
    fn a_cut_node_is_reported_dead_once_within_twice_the_timeout() {
        let mut sim = Sim::new(3);
        sim.start();
        sim.run_until(1000 * MS, 10 * MS);
        let cut_at = sim.now;
        sim.cut.push(2);
        sim.run_until(cut_at + 3000 * MS, 10 * MS);
        for survivor in [0u16, 1] {
            let deaths: Vec<_> = sim
                .reports
                .iter()
                .filter_map(|(n, r)| match r {
                    Report::PeerDead { peer: 2, last_contact, detected_at } if *n == survivor => {
                        Some((*last_contact, *detected_at))
                    }
                    _ => None,
                })
                .collect();
            assert_eq!(deaths.len(), 1, "node {survivor}: {deaths:?}");
            let (last_contact, detected_at) = deaths[0];
            assert!(last_contact <= cut_at);
            assert!(
                detected_at - cut_at <= 2 * CONFIG.failure_timeout_ns,
                "detected after {} ms",
                (detected_at - cut_at) / MS
            );
            assert!(!sim.nodes[usize::from(survivor)].is_formed());
        }
    }

    #[test]
    fn a_rebooted_peer_is_reported_with_both_epochs() {
        let mut sim = Sim::new(2);
        sim.start();
        sim.run_until(300 * MS, 10 * MS);
        let ids = [0, 1];
        sim.nodes[1] = Membership::new(1, 9999, &ids, CONFIG).unwrap();
        let mut out = Vec::new();
        sim.nodes[1].start(sim.now, &mut out);
        sim.deliver(1, out);
        assert!(sim
            .reports
            .iter()
            .any(|(n, r)| *n == 0
                && matches!(r, Report::PeerRestarted { peer: 1, old_epoch: 1001, new_epoch: 9999, .. })));
    }

    #[test]
    fn non_members_and_self_are_ignored() {
        let mut m = Membership::new(0, 1, &[0, 1], CONFIG).unwrap();
        let mut out = Vec::new();
        m.on_message(7, Message::Join { epoch: 5 }, 0, &mut out);
        m.on_message(0, Message::Heartbeat { epoch: 5 }, 0, &mut out);
        assert!(out.is_empty());
        assert_eq!(m.ignored_non_members, 2);
        assert_eq!(m.peer(1), Some(PeerState::Unknown));
    }

    #[test]
    fn config_is_checked() {
        let tight = MembershipConfig { heartbeat_interval_ns: 100, failure_timeout_ns: 150 };
        assert_eq!(Membership::new(0, 1, &[0, 1], tight).err(), Some(MembershipError::TimeoutTooShort));
        assert_eq!(Membership::new(5, 1, &[0, 1], CONFIG).err(), Some(MembershipError::LocalNotAMember));
    }

    proptest! {
        /// Whatever the message pattern, a peer is never declared dead while
        /// it was heard from within the timeout, and deaths name the real
        /// last contact.
        #[test]
        fn never_kills_a_peer_heard_within_the_timeout(gaps in proptest::collection::vec(1u64..1200, 1..60)) {
            let mut m = Membership::new(0, 1, &[0, 1], CONFIG).unwrap();
            let mut out = Vec::new();
            m.start(0, &mut out);
            let mut now = 0;
            let mut last_heard = None;
            for gap in gaps {
                // Time passes in 10 ms ticks, then peer 1 speaks.
                let target = now + gap * MS;
                while now < target {
                    now = (now + 10 * MS).min(target);
                    out.clear();
                    m.tick(now, &mut out);
                    for action in &out {
                        if let Action::Report(Report::PeerDead { last_contact, detected_at, .. }) = action {
                            prop_assert_eq!(Some(*last_contact), last_heard);
                            prop_assert!(*detected_at - *last_contact > CONFIG.failure_timeout_ns);
                            prop_assert!(*detected_at - *last_contact <= CONFIG.failure_timeout_ns + 10 * MS);
                        }
                    }
                }
                out.clear();
                m.on_message(1, Message::Heartbeat { epoch: 2 }, now, &mut out);
                last_heard = Some(now);
                let alive = matches!(m.peer(1), Some(PeerState::Alive { .. }));
                prop_assert!(alive);
            }
        }
    }

    #[test]
    fn deadline_points_at_the_next_expiry_or_heartbeat() {
        let mut m = Membership::new(0, 1, &[0, 1], CONFIG).unwrap();
        let mut out = vec![];
        m.start(0, &mut out);
        assert_eq!(m.next_deadline(), 100 * MS);
        m.on_message(1, Message::Welcome { epoch: 3 }, 50 * MS, &mut out);
        m.tick(100 * MS, &mut out);
        assert_eq!(m.next_deadline(), 200 * MS);
    }
}
