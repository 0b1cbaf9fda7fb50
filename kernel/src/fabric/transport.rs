//! The `transport` service: drives `sinter-transport-protocol`'s
//! [`Transport`] on the node's clock and NIC, and serves local users.
//!
//! Frames come from the nic's frame port (read in place in the receive
//! buffer, zero-copy) and go back to it; time is [`super::now_ns`]; timers
//! run at [`Transport::next_deadline`].
//!
//! Users attach with [`attach`]`(port)` and get a [`TransportClient`]:
//! - [`TransportClient::try_send`]`(peer, len, fill)`: `fill` writes the
//!   message (at most [`MAX_MESSAGE`] bytes, the first byte must be the
//!   user's port) into one of the client's own frames, which is lent to the
//!   transport; it copies the bytes into its send buffer and returns the
//!   frame. `Err(Busy)` when all [`CLIENT_FRAMES`] frames are out.
//! - [`TransportClient::poll`]: deliveries (lent read-only, shown in place,
//!   given back), session events (`PeerUp`, `PeerRestarted`) and refused
//!   sends.
//!
//! A message is routed to the user whose port equals its first byte; one
//! with an unknown port is counted `undeliverable` and dropped. While a
//! user holds [`DELIVERY_CREDIT`] deliveries, the service stops taking
//! messages out of the `Transport`, whose receive window then closes, so a
//! slow user slows its senders instead of losing messages. Sends that
//! meet backpressure wait in order per peer (a full peer holds back only
//! its own messages; returned deliveries are always taken); users other
//! than the cluster service may fill a peer's send buffer only up to
//! [`BULK_LIMIT`] frames, which keeps room for heartbeats. The cluster
//! service's sends are dropped instead of waiting when a peer's buffer is
//! full (`STATUS_DROPPED`): heartbeats to a node that is down must not
//! pile up.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use sinter_config::ClusterConfig;
use sinter_ipc::spsc::{Receiver, Sender, SpscRing};
use sinter_ipc::{Access, CoreId, FrameLease, Grant, GrantHandle, ServiceId, WakeTarget, FRAME_SIZE};
use sinter_transport_protocol::{Event, MacAddr, NodeId, SendError, Transport, TransportConfig};
use spin::Mutex;
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

use super::port::FramePort;
use super::status::{TransportView, TRANSPORT_VIEW};
use super::{alloc_leases, now_ns, DirectMap, CLIENT_BASE, GRANTS, TRANSPORT};
use crate::exec::{self, ExecutorNotify, ServiceSpec};
use crate::kprintln;

/// Port (first message byte) of the cluster service.
pub const PORT_CLUSTER: u8 = sinter_membership::wire::PORT;
/// Port of the `transport-soak` self-test.
pub const PORT_SOAK: u8 = 2;
/// Port of the `nic-bench` self-test.
pub const PORT_BENCH: u8 = 3;
/// Largest message a client can send or receive: one frame.
pub const MAX_MESSAGE: usize = FRAME_SIZE;
/// Frames a client owns for sending.
pub const CLIENT_FRAMES: usize = 64;
/// Deliveries a client may hold at once.
pub const DELIVERY_CREDIT: usize = 64;
/// Frames a bulk user may have queued or in flight to one peer.
pub const BULK_LIMIT: u64 = 192;
const CLIENT_RING: usize = 256;
/// Frames the service owns for lending deliveries to clients.
const DELIVERY_FRAMES: usize = 2 * DELIVERY_CREDIT;
/// Frames verified per round before acks go out and the core is yielded.
const RECEIVE_BATCH: usize = 8;
/// In-order frames after which the service acks at once: 16 rather than
/// the protocol's default 8. Each standalone ack costs a seal here and a
/// verify at the peer (~27,000 TSC cycles each under TCG); with 16 the
/// NIC bench's median 4 KiB message rate rose 0–31 % across its four
/// configurations, none fell (`docs/benchmarks/nic.md`), and a quarter of
/// the window still comes back per ack.
const ACK_EVERY: u16 = 16;
/// How often the published [`TransportView`] is refreshed.
const PUBLISH_NS: u64 = 20_000_000;

/// One message between the transport service and a client.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct UserMsg {
    pub kind: u32,
    /// SEND: destination; DELIVERY: sender; events: the peer.
    pub peer: u16,
    /// SENT: [`STATUS_OK`] or why the send was refused.
    pub status: u16,
    pub len: u32,
    pub _reserved: u32,
    /// SENT/DELIVERY: the message id.
    pub id: u64,
    /// PEER_UP / PEER_RESTARTED: the peer's epoch.
    pub epoch: u64,
    pub grant: GrantHandle,
}

impl Default for UserMsg {
    fn default() -> Self {
        Self::new_zeroed()
    }
}

/// client → transport: send `len` bytes of the lent frame to `peer`.
pub const SEND: u32 = 1;
/// transport → client: the SEND's frame is released (`status`, `id`).
pub const SENT: u32 = 2;
/// transport → client: a message from `peer`, `len` bytes in the lent frame.
pub const DELIVERY: u32 = 3;
/// client → transport: done with a delivery's frame.
pub const RETURNED: u32 = 4;
pub const PEER_UP: u32 = 5;
pub const PEER_RESTARTED: u32 = 6;

pub const STATUS_OK: u16 = 0;
pub const STATUS_TOO_LARGE: u16 = 1;
pub const STATUS_UNKNOWN_PEER: u16 = 2;
pub const STATUS_BAD_GRANT: u16 = 3;
/// Dropped at backpressure (clients that asked for it: the cluster service).
pub const STATUS_DROPPED: u16 = 4;

type MsgTx = Sender<'static, UserMsg, CLIENT_RING, ExecutorNotify>;
type MsgRx = Receiver<'static, UserMsg, CLIENT_RING>;

fn send_reliably(tx: &mut MsgTx, msg: UserMsg) {
    let mut msg = msg;
    loop {
        match tx.try_send(msg) {
            Ok(()) => return,
            Err(full) => {
                msg = full.into_message();
                exec::yield_now();
            }
        }
    }
}

/// What a client learns from [`TransportClient::poll`].
#[derive(Debug)]
#[allow(dead_code, reason = "the whole interface; today's clients read only some fields")]
pub enum ClientEvent<'a> {
    Message {
        from: u16,
        id: u64,
        data: &'a [u8],
    },
    PeerUp {
        peer: u16,
        epoch: u64,
    },
    PeerRestarted {
        peer: u16,
        epoch: u64,
    },
    /// The transport refused a send (`status`: one of the `STATUS_*`).
    SendRefused {
        peer: u16,
        status: u16,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientError {
    /// Every frame of the client is lent out: poll, then try again.
    Busy,
    /// More than [`MAX_MESSAGE`] bytes, or empty.
    BadLength(usize),
}

/// A local user's end of the transport service.
pub struct TransportClient {
    me: ServiceId,
    to_transport: MsgTx,
    from_transport: MsgRx,
    frames: Vec<FrameLease>,
}

impl TransportClient {
    /// Sends a `len`-byte message that `fill` writes to `peer`. The first
    /// byte must be this client's port (the receiver routes on it).
    pub fn try_send(&mut self, peer: u16, len: usize, fill: impl FnOnce(&mut [u8])) -> Result<(), ClientError> {
        if len == 0 || len > MAX_MESSAGE {
            return Err(ClientError::BadLength(len));
        }
        let Some(mut lease) = self.frames.pop() else { return Err(ClientError::Busy) };
        fill(&mut lease.bytes_mut(&DirectMap)[..len]);
        match GRANTS.lend(lease, self.me, TRANSPORT, Access::ReadOnly) {
            Ok(grant) => {
                let msg = UserMsg { kind: SEND, peer, len: len as u32, grant, ..UserMsg::default() };
                send_reliably(&mut self.to_transport, msg);
                Ok(())
            }
            Err(full) => {
                self.frames.push(full.0);
                Err(ClientError::Busy)
            }
        }
    }

    /// Before the user sleeps: true if nothing from the transport is
    /// waiting, and the ring is then armed so its next message wakes the
    /// user's core.
    pub fn arm_if_idle(&mut self) -> bool {
        self.from_transport.arm_if_empty()
    }

    /// Handles everything the transport sent; returns how many messages.
    pub fn poll(&mut self, f: &mut dyn FnMut(ClientEvent<'_>)) -> usize {
        let mut handled = 0;
        while let Some(msg) = self.from_transport.try_recv() {
            handled += 1;
            match msg.kind {
                SENT => {
                    if let Ok(lease) = GRANTS.reclaim(msg.grant, self.me) {
                        self.frames.push(lease);
                    }
                    if msg.status != STATUS_OK {
                        f(ClientEvent::SendRefused { peer: msg.peer, status: msg.status });
                    }
                }
                DELIVERY => {
                    let Ok(grant) = GRANTS.accept(msg.grant, self.me) else { continue };
                    let len = (msg.len as usize).min(FRAME_SIZE);
                    f(ClientEvent::Message { from: msg.peer, id: msg.id, data: &grant.bytes(&DirectMap)[..len] });
                    grant.release();
                    send_reliably(&mut self.to_transport, UserMsg { kind: RETURNED, ..msg });
                }
                PEER_UP => f(ClientEvent::PeerUp { peer: msg.peer, epoch: msg.epoch }),
                PEER_RESTARTED => f(ClientEvent::PeerRestarted { peer: msg.peer, epoch: msg.epoch }),
                _ => {}
            }
        }
        handled
    }
}

/// The service's end of one client.
struct ClientEnd {
    port: u8,
    user: ServiceId,
    tx: MsgTx,
    rx: MsgRx,
    /// Deliveries lent and not yet returned.
    lent: usize,
    /// Sends taken from the ring that the transport could not take yet
    /// (backpressure), per destination peer, oldest first; at most the
    /// client's frames in all.
    waiting: Vec<(u16, VecDeque<(Grant<'static>, UserMsg)>)>,
    /// Drop a send that meets backpressure instead of holding it
    /// (periodic traffic such as heartbeats, which must never pile up).
    drop_on_backpressure: bool,
}

/// The phases of one round of the service loop, in order.
pub const PHASE_NAMES: [&str; 5] = ["receive", "serve", "poll", "deliver", "transmit"];

/// TSC cycles spent in each of [`PHASE_NAMES`] and the items it handled
/// (frames received, client messages, -, events delivered, frames sent):
/// the NIC bench prints cycles per item, which shows how much of a frame's
/// cost is the MAC (it is sealed in `transmit`, verified in `receive`).
pub static PHASES: [(AtomicU64, AtomicU64); 5] = [const { (AtomicU64::new(0), AtomicU64::new(0)) }; 5];

static NEW_CLIENTS: Mutex<Vec<ClientEnd>> = Mutex::new(Vec::new());
static CLIENTS_WAITING: AtomicBool = AtomicBool::new(false);
static TRANSPORT_CORE: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Attaches a user on the calling core to the transport under `port` (the
/// first byte of its messages). `None` if the fabric is not running.
pub fn attach(port: u8) -> Option<TransportClient> {
    let core = TRANSPORT_CORE.load(Ordering::Acquire);
    if core == usize::MAX {
        return None;
    }
    let here = exec::core_index();
    let user = ServiceId(CLIENT_BASE + u16::from(port));
    let down: &'static SpscRing<UserMsg, CLIENT_RING> =
        alloc::boxed::Box::leak(alloc::boxed::Box::new(SpscRing::new()));
    let up: &'static SpscRing<UserMsg, CLIENT_RING> = alloc::boxed::Box::leak(alloc::boxed::Box::new(SpscRing::new()));
    let (to_transport, service_rx) = up.split(ExecutorNotify, WakeTarget::Core(CoreId(core as u32))).ok()?;
    let (service_tx, from_transport) = down.split(ExecutorNotify, WakeTarget::Core(CoreId(here as u32))).ok()?;
    NEW_CLIENTS.lock().push(ClientEnd {
        port,
        user,
        tx: service_tx,
        rx: service_rx,
        lent: 0,
        waiting: Vec::new(),
        drop_on_backpressure: port == PORT_CLUSTER,
    });
    CLIENTS_WAITING.store(true, Ordering::Release);
    exec::wake_core(core);
    Some(TransportClient {
        me: user,
        to_transport,
        from_transport,
        frames: alloc_leases(CLIENT_FRAMES, "transport client"),
    })
}

struct Plan {
    local: u16,
    members: Vec<(NodeId, MacAddr)>,
    key: [u8; 32],
    cluster_id: u32,
}

static PLAN: Mutex<Option<Plan>> = Mutex::new(None);

/// FNV-1a of the cluster's name: the `cluster` field of every frame.
pub fn cluster_id(name: &str) -> u32 {
    name.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// This boot's epoch: RDRAND when the CPU has it, else the TSC; never 0.
pub fn boot_epoch() -> u64 {
    let random = x86_64::instructions::random::RdRand::new().and_then(|r| r.get_u64());
    let value = random.unwrap_or_else(|| crate::arch::time::rdtsc().rotate_left(17) ^ 0x5e1a_7e00_0000_0000);
    value.max(1)
}

static EPOCH: spin::Mutex<u64> = spin::Mutex::new(0);

/// The epoch the transport uses (0 before it started).
pub fn epoch() -> u64 {
    *EPOCH.lock()
}

pub fn spawn(config: &ClusterConfig, node: u16, core: usize) {
    let members = config.nodes.iter().map(|n| (NodeId(n.id), MacAddr(n.mac.0))).collect();
    *PLAN.lock() =
        Some(Plan { local: node, members, key: config.cluster.key.0, cluster_id: cluster_id(&config.cluster.name) });
    *EPOCH.lock() = boot_epoch();
    TRANSPORT_CORE.store(core, Ordering::Release);
    exec::spawn_on(core, ServiceSpec { name: "transport", entry: service, arg: 0 });
}

struct Service {
    t: Transport,
    port: FramePort,
    clients: Vec<ClientEnd>,
    deliveries: Vec<FrameLease>,
    /// An event no client could take yet; taken again first.
    stalled: Option<Event>,
    undeliverable: u64,
    published_at: u64,
}

fn service(_arg: usize, generation: u32) {
    let Some(plan) = PLAN.lock().take() else {
        kprintln!("transport: generation {generation} has no plan; the transport stays down");
        return;
    };
    let Some(port) = super::nic::take_transport_port() else {
        kprintln!("transport: no frame port from the nic");
        return;
    };
    let epoch = epoch();
    let mut config = TransportConfig::new(NodeId(plan.local), &plan.members, plan.key, epoch);
    config.cluster_id = plan.cluster_id;
    config.ack_every = ACK_EVERY;
    let t = match Transport::new(&config) {
        Ok(t) => t,
        Err(why) => {
            kprintln!("transport: bad configuration: {why:?}");
            return;
        }
    };
    kprintln!(
        "transport: node {} epoch {:#018x}, {} peers, mtu {}, window {}, cluster id {:#010x}",
        plan.local,
        epoch,
        plan.members.len().saturating_sub(1),
        config.mtu,
        config.window,
        plan.cluster_id
    );
    let now = now_ns();
    let mut s = Service {
        t,
        port,
        clients: Vec::new(),
        deliveries: alloc_leases(DELIVERY_FRAMES, "transport"),
        stalled: None,
        undeliverable: 0,
        published_at: 0,
    };
    for (peer, _) in plan.members.iter().filter(|(id, _)| id.0 != plan.local) {
        let _ = s.t.connect(*peer, now);
    }
    loop {
        if CLIENTS_WAITING.swap(false, Ordering::AcqRel) {
            s.clients.append(&mut NEW_CLIENTS.lock());
        }
        let now = now_ns();
        let mut clock = PhaseClock::start();
        let received = s.receive(now);
        clock.lap(0, received);
        let served = s.serve_clients(now);
        clock.lap(1, served);
        let mut work = received + served;
        if s.t.next_deadline().is_some_and(|d| d <= now) {
            s.t.poll(now);
            work += 1;
        }
        clock.lap(2, 0);
        let delivered = s.deliver();
        clock.lap(3, delivered);
        let transmitted = s.transmit();
        clock.lap(4, transmitted);
        work += delivered + transmitted;
        if now.saturating_sub(s.published_at) >= PUBLISH_NS {
            s.publish(now);
        }
        if work == 0 && s.arm_if_idle() {
            let publish_at = s.published_at + PUBLISH_NS;
            super::sleep_until_ns(s.t.next_deadline().map_or(publish_at, |d| d.min(publish_at)));
        } else {
            exec::yield_now();
        }
    }
}

/// Adds each phase's cycles to [`PHASES`] (two relaxed adds per phase).
struct PhaseClock(u64);

impl PhaseClock {
    fn start() -> Self {
        Self(crate::arch::time::rdtsc())
    }

    fn lap(&mut self, phase: usize, items: usize) {
        let now = crate::arch::time::rdtsc();
        PHASES[phase].0.fetch_add(now.wrapping_sub(self.0), Ordering::Relaxed);
        PHASES[phase].1.fetch_add(items as u64, Ordering::Relaxed);
        self.0 = now;
    }
}

impl Service {
    /// Before sleeping: true if no frame and no client message waits; every
    /// ring is then armed, so the next one wakes this core.
    fn arm_if_idle(&mut self) -> bool {
        self.port.arm_if_idle() && self.clients.iter_mut().all(|c| c.rx.arm_if_empty())
    }

    /// Frames taken from the nic.
    fn receive(&mut self, now: u64) -> usize {
        let Self { t, port, .. } = self;
        // A small batch, so the acks it makes leave (and the nic gets the
        // core) before the rest is verified: with 64 frames per batch, a
        // peer's acks waited for the whole batch and its window ran dry.
        let mut taken = 0;
        for _ in 0..RECEIVE_BATCH {
            if !port.receive(|frame| {
                let _ = t.on_frame(frame, now);
            }) {
                break;
            }
            taken += 1;
        }
        taken
    }

    /// Frames handed to the nic.
    fn transmit(&mut self) -> usize {
        let Self { t, port, .. } = self;
        let mut sent = 0;
        while port.can_transmit() {
            let popped = t.pop_frame_with(|frame| {
                // A frame the nic would refuse is dropped here; the
                // transport retransmits data, and acks are repeated.
                let _ = port.transmit(frame.len(), |buf| buf.copy_from_slice(frame));
            });
            if !popped {
                break;
            }
            sent += 1;
        }
        sent
    }

    /// Client messages handled, and sends the transport took.
    fn serve_clients(&mut self, now: u64) -> usize {
        let Self { t, clients, deliveries, .. } = self;
        let mut handled = 0;
        for c in clients.iter_mut() {
            // Always read the whole ring: returned deliveries must come back
            // even while sends wait, or a client holding its credit could
            // stall its own receive path (and, through the closed receive
            // window, its peers' sends to us).
            while let Some(msg) = c.rx.try_recv() {
                handled += 1;
                match msg.kind {
                    RETURNED => {
                        if let Ok(lease) = GRANTS.reclaim(msg.grant, TRANSPORT) {
                            deliveries.push(lease);
                            c.lent = c.lent.saturating_sub(1);
                        }
                    }
                    SEND => match GRANTS.accept(msg.grant, TRANSPORT) {
                        Ok(grant) => match c.waiting.iter_mut().find(|(peer, _)| *peer == msg.peer) {
                            Some((_, queue)) => queue.push_back((grant, msg)),
                            None => c.waiting.push((msg.peer, VecDeque::from([(grant, msg)]))),
                        },
                        Err(_) => send_reliably(&mut c.tx, UserMsg { kind: SENT, status: STATUS_BAD_GRANT, ..msg }),
                    },
                    _ => {}
                }
            }
            // Send what the transport takes, in order per peer; a peer
            // that pushes back holds only its own later messages. While
            // blocked this costs one check per peer and round, not one per
            // waiting message.
            let ClientEnd { waiting, tx, drop_on_backpressure, .. } = c;
            for (peer, queue) in waiting.iter_mut() {
                while let Some((grant, msg)) = queue.front() {
                    let len = (msg.len as usize).min(FRAME_SIZE);
                    let result = if !*drop_on_backpressure && !room_for_bulk(t, NodeId(*peer), len) {
                        Err(SendError::Backpressure)
                    } else {
                        t.send(NodeId(*peer), &grant.bytes(&DirectMap)[..len], now)
                    };
                    if result == Err(SendError::Backpressure) && !*drop_on_backpressure {
                        break;
                    }
                    let Some((grant, msg)) = queue.pop_front() else { break };
                    grant.release();
                    let (status, id) = match result {
                        Ok(id) => (STATUS_OK, id.0),
                        Err(SendError::Backpressure) => (STATUS_DROPPED, 0),
                        Err(SendError::TooLarge { .. }) => (STATUS_TOO_LARGE, 0),
                        Err(_) => (STATUS_UNKNOWN_PEER, 0),
                    };
                    send_reliably(tx, UserMsg { kind: SENT, status, id, ..msg });
                    handled += 1;
                }
            }
            waiting.retain(|(_, queue)| !queue.is_empty());
        }
        handled
    }

    /// Moves messages and events from the `Transport` to the clients, as
    /// far as they have credit; how many.
    fn deliver(&mut self) -> usize {
        let mut moved = 0;
        loop {
            let Some(event) = self.stalled.take().or_else(|| self.t.recv()) else { return moved };
            moved += 1;
            match event {
                Event::Message(d) => {
                    let target = d.data.first().and_then(|p| self.clients.iter().position(|c| c.port == *p));
                    let Some(index) = target.filter(|_| d.data.len() <= MAX_MESSAGE) else {
                        self.undeliverable += 1;
                        continue;
                    };
                    let c = &mut self.clients[index];
                    if c.lent >= DELIVERY_CREDIT || self.deliveries.is_empty() {
                        self.stalled = Some(Event::Message(d));
                        return moved - 1;
                    }
                    let Some(mut lease) = self.deliveries.pop() else { return moved - 1 };
                    lease.bytes_mut(&DirectMap)[..d.data.len()].copy_from_slice(&d.data);
                    match GRANTS.lend(lease, TRANSPORT, c.user, Access::ReadOnly) {
                        Ok(grant) => {
                            c.lent += 1;
                            let msg = UserMsg {
                                kind: DELIVERY,
                                peer: d.from.0,
                                len: d.data.len() as u32,
                                id: d.id.0,
                                grant,
                                ..UserMsg::default()
                            };
                            send_reliably(&mut c.tx, msg);
                        }
                        Err(full) => {
                            self.deliveries.push(full.0);
                            self.stalled = Some(Event::Message(d));
                            return moved - 1;
                        }
                    }
                }
                Event::PeerUp { peer, epoch } => {
                    kprintln!("transport: session with node {} up (epoch {:#018x})", peer.0, epoch);
                    self.broadcast(UserMsg { kind: PEER_UP, peer: peer.0, epoch, ..UserMsg::default() });
                }
                Event::PeerRestarted { peer, epoch, abandoned } => {
                    kprintln!(
                        "transport: node {} restarted (epoch {:#018x}); {} unconfirmed messages abandoned",
                        peer.0,
                        epoch,
                        abandoned.len()
                    );
                    self.broadcast(UserMsg { kind: PEER_RESTARTED, peer: peer.0, epoch, ..UserMsg::default() });
                }
            }
        }
    }

    /// Tells every client; a client whose ring is full misses it (counted
    /// as undeliverable: rings are sized far above what clients hold).
    fn broadcast(&mut self, msg: UserMsg) {
        for c in &mut self.clients {
            if c.tx.try_send(msg).is_err() {
                self.undeliverable += 1;
            }
        }
    }

    fn publish(&mut self, now: u64) {
        self.published_at = now;
        let peers = (0..=u16::MAX)
            .take(sinter_config::MAX_NODES)
            .filter_map(|id| self.t.peer_stats(NodeId(id)).map(|s| (id, s)))
            .collect();
        let view = TransportView { stats: *self.t.stats(), peers, undeliverable: self.undeliverable };
        *TRANSPORT_VIEW.lock() = Some(view);
    }
}

/// Whether a bulk user's message of `len` bytes fits under [`BULK_LIMIT`].
fn room_for_bulk(t: &Transport, peer: NodeId, len: usize) -> bool {
    let Some(stats) = t.peer_stats(peer) else { return true };
    let frames = len.div_ceil(t.fragment_payload()).max(1) as u64;
    stats.in_flight + stats.queued + frames <= BULK_LIMIT
}

const _: () = assert!(core::mem::size_of::<UserMsg>() == 40);
