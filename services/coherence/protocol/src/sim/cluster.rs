//! A whole cluster of engines with its network, its memory and its vCPUs,
//! advanced one [`Choice`] at a time, checking the invariants as it goes.
//!
//! The random simulator ([`super::run`]), the exhaustive model checker and
//! the scenario runner ([`crate::scenario`]) all drive this same type; they
//! differ only in how they pick the next choice.
//!
//! Page contents are version numbers: the initial contents of every page is
//! version 0 (all zeroes), every write stores a fresh version. The harness
//! executes the engine's actions exactly as a firmware shell would (copying
//! the frame at a page-carrying send, filling, mapping, unmapping) and
//! checks, at every step:
//!
//! * data value: a read returns the latest write in the global order of
//!   steps (which respects each vCPU's program order), a write finds the
//!   latest value in its frame (no lost update), and a frame is only mapped
//!   while it holds the latest value;
//! * single writer / multiple readers: a page mapped writable at one node
//!   is mapped nowhere else (checked at every mapping, the only action that
//!   can break it);
//! * shell rules: no message to oneself, no send of a released frame, no
//!   release of a mapped frame or of a home's backing frame, no completion
//!   without the mapping it promises, no engine error.

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;

use crate::{
    Access, Action, Actions, FillFrom, GuestPage, Message, Node, NodeId, ProtocolConfig, ProtocolError, StripedHomes,
};

/// Frame contents after `Release`: reading or sending it is a violation.
pub const POISON: u32 = u32::MAX;

/// A message in flight, with the page contents if it carries a page.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Packet {
    /// The message.
    pub msg: Message,
    /// The version carried, for page-carrying messages.
    pub data: Option<u32>,
}

/// What a vCPU is doing.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum VcpuState {
    /// Between accesses.
    Idle,
    /// Faulted on `page`; blocked until the engine completes `access`.
    Waiting {
        /// The page.
        page: u32,
        /// What it needs.
        access: Access,
    },
    /// Completed; will re-execute the access when next scheduled.
    Ready {
        /// The page.
        page: u32,
        /// What it needs.
        access: Access,
    },
}

/// One virtual CPU, pinned to a node.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Vcpu {
    /// Its node.
    pub node: u8,
    /// Accesses it may still start.
    pub ops_left: u32,
    /// What it is doing.
    pub state: VcpuState,
}

/// One step of the cluster.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Choice {
    /// Deliver the oldest message on the channel `from → to`.
    Deliver {
        /// Sender.
        from: u8,
        /// Receiver.
        to: u8,
    },
    /// An idle vCPU starts an access.
    Issue {
        /// Index into the vCPU list.
        vcpu: u16,
        /// The page.
        page: u32,
        /// Read or write.
        access: Access,
    },
    /// A completed vCPU re-executes its access.
    Retry {
        /// Index into the vCPU list.
        vcpu: u16,
    },
    /// A node tries to evict a page.
    Evict {
        /// The node.
        node: u8,
        /// The page.
        page: u32,
    },
}

/// A broken invariant or rule, with where it happened.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Violation {
    /// A read saw `got`, but the latest write stored `latest`.
    StaleRead {
        /// Reader.
        node: u8,
        /// Page.
        page: u32,
        /// Version read.
        got: u32,
        /// Latest version.
        latest: u32,
    },
    /// A write found `had` in its frame, not the latest `latest`.
    LostUpdate {
        /// Writer.
        node: u8,
        /// Page.
        page: u32,
        /// Version in the writer's frame.
        had: u32,
        /// Latest version.
        latest: u32,
    },
    /// A frame was mapped holding `frame`, not the latest `latest`.
    StaleMapping {
        /// Node.
        node: u8,
        /// Page.
        page: u32,
        /// Version in the frame.
        frame: u32,
        /// Latest version.
        latest: u32,
    },
    /// Single-writer/multiple-reader broken.
    Swmr {
        /// Page.
        page: u32,
        /// Nodes mapping it writable.
        writers: u32,
        /// Nodes mapping it read-only.
        readers: u32,
    },
    /// A node sent a message to itself.
    SendToSelf {
        /// Node.
        node: u8,
    },
    /// A page-carrying message sent from a released frame.
    SentReleasedFrame {
        /// Node.
        node: u8,
        /// Page.
        page: u32,
    },
    /// `Fill` from a message that carries no page.
    FillWithoutData {
        /// Node.
        node: u8,
        /// Page.
        page: u32,
    },
    /// A mapped frame, or a home's backing frame, was released.
    BadRelease {
        /// Node.
        node: u8,
        /// Page.
        page: u32,
    },
    /// `Complete` without the mapping it announces.
    CompleteWithoutMapping {
        /// Node.
        node: u8,
        /// Page.
        page: u32,
    },
    /// The engine refused a message or call.
    Engine {
        /// Node.
        node: u8,
        /// The error.
        error: ProtocolError,
    },
    /// Nothing can move but `waiting` vCPUs are still blocked.
    Deadlock {
        /// Blocked vCPUs.
        waiting: u32,
    },
    /// The network is empty and every vCPU done, but a node still has a
    /// transaction or a queued request.
    NotQuiescent {
        /// Node.
        node: u8,
    },
}

/// Sizes and protocol configuration of a cluster.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ClusterShape {
    /// Number of nodes (2..=64). Page `p` is homed at node `p % nodes`.
    pub nodes: u8,
    /// Number of pages.
    pub pages: u32,
    /// vCPUs on each node.
    pub vcpus_per_node: u8,
    /// Accesses each vCPU may start.
    pub ops_per_vcpu: u32,
    /// Evictions the explorer may try in total (the random simulator
    /// ignores it and evicts by probability).
    pub evictions: u32,
    /// Protocol configuration of every node.
    pub protocol: ProtocolConfig,
}

/// The cluster state. Equality and hashing cover everything that
/// influences the future, so it is a model-checker state as it is.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Cluster {
    nodes: Vec<Node<StripedHomes>>,
    n: usize,
    pages: usize,
    channels: Vec<VecDeque<Packet>>,
    in_flight: usize,
    frames: Vec<u32>,
    mapped: Vec<Option<Access>>,
    vcpus: Vec<Vcpu>,
    latest: Vec<u32>,
    last_writer: Vec<u8>,
    remote_read: bool,
    next_version: u32,
    evictions_left: u32,
    scratch: Actions,
}

/// What a successful step did (for statistics).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Effect {
    /// A message was delivered.
    Delivered {
        /// It carried a page.
        page: bool,
    },
    /// An access was performed: a read or a write.
    Accessed(Access),
    /// An access faulted into the protocol.
    Faulted,
    /// An eviction was done.
    Evicted,
    /// Nothing happened (eviction of a page not held, for instance).
    Nothing,
}

impl Cluster {
    /// A cluster with every page zero at its home and nothing cached.
    /// Panics on a shape outside the documented ranges (a test bug).
    pub fn new(shape: ClusterShape) -> Self {
        let n = usize::from(shape.nodes);
        let pages = shape.pages as usize;
        let homes = StripedHomes::new(shape.nodes, 1, u64::from(shape.pages)).expect("cluster shape: 1..=64 nodes");
        let nodes = (0..shape.nodes).map(|i| Node::new(node_id(i), homes, shape.protocol)).collect();
        let vcpus = (0..shape.nodes)
            .flat_map(|node| {
                (0..shape.vcpus_per_node).map(move |_| Vcpu {
                    node,
                    ops_left: shape.ops_per_vcpu,
                    state: VcpuState::Idle,
                })
            })
            .collect();
        let mut frames = vec![POISON; n * pages];
        for p in 0..pages {
            frames[(p % n) * pages + p] = 0;
        }
        Self {
            nodes,
            n,
            pages,
            channels: vec![VecDeque::new(); n * n],
            in_flight: 0,
            frames,
            mapped: vec![None; n * pages],
            vcpus,
            latest: vec![0; pages],
            last_writer: vec![0; pages],
            remote_read: false,
            next_version: 1,
            evictions_left: shape.evictions,
            scratch: Actions::new(),
        }
    }

    /// The engines.
    pub fn nodes(&self) -> &[Node<StripedHomes>] {
        &self.nodes
    }

    /// The vCPUs.
    pub fn vcpus(&self) -> &[Vcpu] {
        &self.vcpus
    }

    /// Number of pages.
    pub fn pages(&self) -> u32 {
        self.pages as u32
    }

    /// Messages in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// The oldest message on `from → to`.
    pub fn channel_head(&self, from: u8, to: u8) -> Option<&Packet> {
        self.channels[usize::from(from) * self.n + usize::from(to)].front()
    }

    /// The `k`-th non-empty channel in (from, to) order, as a `Deliver`.
    pub fn nth_busy_channel(&self, k: usize) -> Option<Choice> {
        self.channels
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.is_empty())
            .nth(k)
            .map(|(i, _)| Choice::Deliver { from: (i / self.n) as u8, to: (i % self.n) as u8 })
    }

    /// Number of non-empty channels.
    pub fn busy_channels(&self) -> usize {
        self.channels.iter().filter(|c| !c.is_empty()).count()
    }

    /// The guest mapping of `page` at `node`, as the harness applied it.
    pub fn mapping(&self, node: u8, page: u32) -> Option<Access> {
        self.mapped[self.slot(node, page)]
    }

    /// Every vCPU has used up its accesses and is idle, and the network is
    /// empty.
    pub fn is_done(&self) -> bool {
        self.in_flight == 0 && self.vcpus.iter().all(|v| v.ops_left == 0 && v.state == VcpuState::Idle)
    }

    /// Some read returned a value written at another node.
    pub fn wrote_and_read_remotely(&self) -> bool {
        self.remote_read
    }

    /// Whether any vCPU is blocked in the protocol.
    pub fn waiting_vcpus(&self) -> u32 {
        self.vcpus.iter().filter(|v| matches!(v.state, VcpuState::Waiting { .. })).count() as u32
    }

    /// Every choice enabled now (for the exhaustive explorer).
    pub fn choices(&self, out: &mut Vec<Choice>) {
        for (i, c) in self.channels.iter().enumerate() {
            if !c.is_empty() {
                out.push(Choice::Deliver { from: (i / self.n) as u8, to: (i % self.n) as u8 });
            }
        }
        for (i, v) in self.vcpus.iter().enumerate() {
            let vcpu = i as u16;
            match v.state {
                VcpuState::Idle if v.ops_left > 0 => {
                    for page in 0..self.pages as u32 {
                        for access in [Access::Read, Access::Write] {
                            out.push(Choice::Issue { vcpu, page, access });
                        }
                    }
                }
                VcpuState::Ready { .. } => out.push(Choice::Retry { vcpu }),
                _ => {}
            }
        }
        if self.evictions_left > 0 {
            for node in 0..self.n as u8 {
                for page in 0..self.pages as u32 {
                    let held = self.nodes[usize::from(node)].cache_state(guest_page(page));
                    if matches!(held, crate::CacheState::Shared | crate::CacheState::Modified) {
                        out.push(Choice::Evict { node, page });
                    }
                }
            }
        }
    }

    /// Takes one step. A violation leaves the cluster in an unspecified
    /// state; stop there.
    pub fn apply(&mut self, choice: Choice) -> Result<Effect, Violation> {
        match choice {
            Choice::Deliver { from, to } => {
                let ch = usize::from(from) * self.n + usize::from(to);
                let Some(packet) = self.channels[ch].pop_front() else {
                    return Ok(Effect::Nothing);
                };
                self.in_flight -= 1;
                let mut out = core::mem::take(&mut self.scratch);
                out.clear();
                let result = self.nodes[usize::from(to)].handle(node_id(from), packet.msg, &mut out);
                if let Err(error) = result {
                    return Err(Violation::Engine { node: to, error });
                }
                self.execute(to, &out, packet.data)?;
                self.put_back(out);
                Ok(Effect::Delivered { page: packet.msg.carries_page() })
            }
            Choice::Issue { vcpu, page, access } => {
                let v = &mut self.vcpus[usize::from(vcpu)];
                if v.state != VcpuState::Idle || v.ops_left == 0 {
                    return Ok(Effect::Nothing);
                }
                v.ops_left -= 1;
                self.attempt(usize::from(vcpu), page, access)
            }
            Choice::Retry { vcpu } => match self.vcpus[usize::from(vcpu)].state {
                VcpuState::Ready { page, access } => self.attempt(usize::from(vcpu), page, access),
                _ => Ok(Effect::Nothing),
            },
            Choice::Evict { node, page } => {
                if self.evictions_left == 0 {
                    return Ok(Effect::Nothing);
                }
                let mut out = core::mem::take(&mut self.scratch);
                out.clear();
                match self.nodes[usize::from(node)].evict(guest_page(page), &mut out) {
                    Ok(()) => {
                        self.evictions_left -= 1;
                        self.execute(node, &out, None)?;
                        self.put_back(out);
                        Ok(Effect::Evicted)
                    }
                    Err(
                        ProtocolError::NotCached { .. }
                        | ProtocolError::Busy { .. }
                        | ProtocolError::HomeCannotEvict { .. },
                    ) => {
                        self.put_back(out);
                        Ok(Effect::Nothing)
                    }
                    Err(error) => Err(Violation::Engine { node, error }),
                }
            }
        }
    }

    /// Checks single-writer/multiple-reader on every page, and that no
    /// vCPU is blocked while nothing can move.
    pub fn check_all(&self) -> Result<(), Violation> {
        for page in 0..self.pages as u32 {
            self.check_swmr(page)?;
        }
        Ok(())
    }

    /// At quiescence (network empty, vCPUs done): every engine is idle.
    pub fn check_quiescent(&self) -> Result<(), Violation> {
        let waiting = self.waiting_vcpus();
        if waiting > 0 {
            return Err(Violation::Deadlock { waiting });
        }
        for node in &self.nodes {
            if !node.is_idle() {
                return Err(Violation::NotQuiescent { node: node.id().get() });
            }
        }
        self.check_all()
    }

    /// Returns the scratch buffer, empty, so that it never makes two
    /// otherwise equal states differ.
    fn put_back(&mut self, mut out: Actions) {
        out.clear();
        self.scratch = out;
    }

    fn slot(&self, node: u8, page: u32) -> usize {
        usize::from(node) * self.pages + page as usize
    }

    /// A vCPU executes its access: directly if mapped, else it faults.
    fn attempt(&mut self, vcpu: usize, page: u32, access: Access) -> Result<Effect, Violation> {
        let node = self.vcpus[vcpu].node;
        let slot = self.slot(node, page);
        if self.mapped[slot] >= Some(access) {
            let latest = self.latest[page as usize];
            let frame = self.frames[slot];
            match access {
                Access::Read if frame != latest => return Err(Violation::StaleRead { node, page, got: frame, latest }),
                Access::Write if frame != latest => {
                    return Err(Violation::LostUpdate { node, page, had: frame, latest })
                }
                Access::Read => {
                    if frame != 0 && self.last_writer[page as usize] != node {
                        self.remote_read = true;
                    }
                }
                Access::Write => {
                    self.last_writer[page as usize] = node;
                    let v = self.next_version;
                    self.next_version += 1;
                    self.frames[slot] = v;
                    self.latest[page as usize] = v;
                }
            }
            self.vcpus[vcpu].state = VcpuState::Idle;
            return Ok(Effect::Accessed(access));
        }
        self.vcpus[vcpu].state = VcpuState::Waiting { page, access };
        let mut out = core::mem::take(&mut self.scratch);
        out.clear();
        if let Err(error) = self.nodes[usize::from(node)].request(guest_page(page), access, &mut out) {
            return Err(Violation::Engine { node, error });
        }
        self.execute(node, &out, None)?;
        self.put_back(out);
        Ok(Effect::Faulted)
    }

    /// Executes the engine's actions as a firmware shell would.
    fn execute(&mut self, node: u8, actions: &Actions, incoming: Option<u32>) -> Result<(), Violation> {
        for action in actions {
            match *action {
                Action::Send { to, msg } => {
                    if to.get() == node {
                        return Err(Violation::SendToSelf { node });
                    }
                    let page = page_index(msg.page());
                    let data = if msg.carries_page() {
                        let frame = self.frames[self.slot(node, page)];
                        if frame == POISON {
                            return Err(Violation::SentReleasedFrame { node, page });
                        }
                        Some(frame)
                    } else {
                        None
                    };
                    self.channels[usize::from(node) * self.n + to.index()].push_back(Packet { msg, data });
                    self.in_flight += 1;
                }
                Action::Fill { page, from } => {
                    let page = page_index(page);
                    let value = match from {
                        FillFrom::Message => incoming.ok_or(Violation::FillWithoutData { node, page })?,
                        FillFrom::Zero => 0,
                    };
                    let slot = self.slot(node, page);
                    self.frames[slot] = value;
                }
                Action::Map { page, access } => {
                    let page = page_index(page);
                    let slot = self.slot(node, page);
                    let (frame, latest) = (self.frames[slot], self.latest[page as usize]);
                    if frame != latest {
                        return Err(Violation::StaleMapping { node, page, frame, latest });
                    }
                    self.mapped[slot] = Some(access);
                    self.check_swmr(page)?;
                }
                Action::Unmap { page } => {
                    let slot = self.slot(node, page_index(page));
                    self.mapped[slot] = None;
                }
                Action::Release { page } => {
                    let page = page_index(page);
                    let slot = self.slot(node, page);
                    let is_home = page as usize % self.n == usize::from(node);
                    if self.mapped[slot].is_some() || is_home {
                        return Err(Violation::BadRelease { node, page });
                    }
                    self.frames[slot] = POISON;
                }
                Action::Complete { page, access } => {
                    let page = page_index(page);
                    if self.mapped[self.slot(node, page)] < Some(access) {
                        return Err(Violation::CompleteWithoutMapping { node, page });
                    }
                    for v in &mut self.vcpus {
                        if let VcpuState::Waiting { page: p, access: a } = v.state {
                            if v.node == node && p == page && a <= access {
                                v.state = VcpuState::Ready { page, access: a };
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn check_swmr(&self, page: u32) -> Result<(), Violation> {
        let (mut writers, mut readers) = (0, 0);
        for node in 0..self.n as u8 {
            match self.mapped[self.slot(node, page)] {
                Some(Access::Write) => writers += 1,
                Some(Access::Read) => readers += 1,
                None => {}
            }
        }
        if writers > 1 || (writers == 1 && readers > 0) {
            return Err(Violation::Swmr { page, writers, readers });
        }
        Ok(())
    }
}

fn node_id(raw: u8) -> NodeId {
    NodeId::new(raw).expect("cluster shape: at most 64 nodes")
}

pub(crate) fn guest_page(index: u32) -> GuestPage {
    GuestPage::new(u64::from(index)).expect("u32 page index is a valid page")
}

fn page_index(page: GuestPage) -> u32 {
    // The harness only ever creates pages from u32 indices.
    page.number() as u32
}
