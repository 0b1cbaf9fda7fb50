//! The cluster status over IPC: a client lends the `cluster` service a
//! frame, the service writes a [`StatusRecord`] into it and gives it back.
//!
//! ```text
//! client ── QUERY (frame lent read-write) ──▶ cluster
//! client ◀── ANSWER (len bytes written) ───── cluster
//! ```
//!
//! The record is plain bytes (`zerocopy`, little-endian, version
//! [`RECORD_VERSION`]): a [`RecordHeader`] with the transport's counters in
//! the order of [`TRANSPORT_COUNTERS`] and the nic's in the order of
//! [`NIC_COUNTERS`], then one [`MemberRecord`] per configured member. At
//! most 64 members fit in one 4 KiB frame, the firmware's limit.
//! [`StatusClient::query`] sends one query and waits for the answer.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};

use sinter_ipc::spsc::{Receiver, Sender, SpscRing};
use sinter_ipc::{Access, CoreId, FrameLease, GrantHandle, ServiceId, WakeTarget, FRAME_SIZE};
use sinter_membership::PeerState;
use sinter_transport_protocol::Stats;
use spin::Mutex;
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

use super::status::{ClusterStatus, NicCounterValues};
use super::{alloc_leases, DirectMap, CLUSTER, GRANTS};
use crate::exec::{self, ExecutorNotify};

pub const RECORD_MAGIC: u32 = u32::from_le_bytes(*b"SNST");
pub const RECORD_VERSION: u16 = 1;

/// Names of [`RecordHeader::transport`], in order (`Stats` fields).
pub const TRANSPORT_COUNTERS: [&str; 26] = [
    "messages_sent",
    "send_backpressure",
    "frames_sent",
    "data_frames_sent",
    "retransmitted",
    "fast_retransmits",
    "timeouts",
    "acks_sent",
    "hellos_sent",
    "frames_accepted",
    "dup_suppressed",
    "messages_delivered",
    "bytes_delivered",
    "sessions_established",
    "peer_restarts",
    "messages_abandoned",
    "reassembly_errors",
    "dropped_malformed",
    "dropped_wrong_cluster",
    "dropped_non_member",
    "dropped_misdirected",
    "dropped_bad_mac",
    "dropped_replay",
    "dropped_no_session",
    "dropped_out_of_window",
    "dropped_incompatible",
];

/// Names of [`RecordHeader::nic`], in order.
pub const NIC_COUNTERS: [&str; 10] = [
    "rx_frames",
    "rx_transport",
    "rx_management",
    "rx_bad_length",
    "rx_no_listener",
    "rx_user_busy",
    "rx_no_buffer",
    "tx_frames",
    "tx_errors",
    "grant_errors",
];

#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct RecordHeader {
    pub magic: u32,
    pub version: u16,
    pub local: u16,
    /// 1 when every member is alive.
    pub formed: u16,
    pub member_count: u16,
    pub _reserved: u32,
    pub epoch: u64,
    pub updated_at_ns: u64,
    pub undeliverable: u64,
    pub transport: [u64; 26],
    pub nic: [u64; 10],
}

/// [`MemberRecord::state`] values.
pub const MEMBER_LOCAL: u16 = 0;
pub const MEMBER_UNKNOWN: u16 = 1;
pub const MEMBER_ALIVE: u16 = 2;
pub const MEMBER_DEAD: u16 = 3;

#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct MemberRecord {
    pub id: u16,
    pub state: u16,
    /// 1 if the link fields below are valid.
    pub has_link: u16,
    pub _reserved: u16,
    pub epoch: u64,
    pub last_contact_ns: u64,
    pub srtt_ns: u64,
    pub rto_ns: u64,
    pub in_flight: u64,
    pub queued: u64,
}

const HEADER: usize = core::mem::size_of::<RecordHeader>();
const MEMBER: usize = core::mem::size_of::<MemberRecord>();
const _: () = assert!(HEADER + 64 * MEMBER <= FRAME_SIZE);

fn transport_counters(t: &Stats) -> [u64; 26] {
    let totals = [
        t.messages_sent,
        t.send_backpressure,
        t.frames_sent,
        t.data_frames_sent,
        t.retransmitted,
        t.fast_retransmits,
        t.timeouts,
        t.acks_sent,
        t.hellos_sent,
        t.frames_accepted,
        t.dup_suppressed,
        t.messages_delivered,
        t.bytes_delivered,
        t.sessions_established,
        t.peer_restarts,
        t.messages_abandoned,
        t.reassembly_errors,
    ];
    let mut all = [0u64; 26];
    for (slot, value) in all.iter_mut().zip(totals.into_iter().chain(t.drops().map(|(_, n)| n))) {
        *slot = value;
    }
    all
}

fn nic_counters(n: &NicCounterValues) -> [u64; 10] {
    [
        n.rx_frames,
        n.rx_transport,
        n.rx_management,
        n.rx_bad_length,
        n.rx_no_listener,
        n.rx_user_busy,
        n.rx_no_buffer,
        n.tx_frames,
        n.tx_errors,
        n.grant_errors,
    ]
}

/// Writes `status` as a record into `out`; returns the bytes written.
pub fn write_record(status: &ClusterStatus, out: &mut [u8; FRAME_SIZE]) -> usize {
    let members = &status.members[..status.members.len().min(64)];
    let header = RecordHeader {
        magic: RECORD_MAGIC,
        version: RECORD_VERSION,
        local: status.local,
        formed: u16::from(status.formed),
        member_count: members.len() as u16,
        _reserved: 0,
        epoch: status.epoch,
        updated_at_ns: status.updated_at_ns,
        undeliverable: status.undeliverable,
        transport: transport_counters(&status.transport),
        nic: nic_counters(&status.nic),
    };
    out[..HEADER].copy_from_slice(header.as_bytes());
    for (i, m) in members.iter().enumerate() {
        let (state, epoch, last_contact_ns) = match m.state {
            None => (MEMBER_LOCAL, status.epoch, 0),
            Some(PeerState::Unknown) => (MEMBER_UNKNOWN, 0, 0),
            Some(PeerState::Alive { epoch, last_contact }) => (MEMBER_ALIVE, epoch, last_contact),
            Some(PeerState::Dead { last_contact }) => (MEMBER_DEAD, 0, last_contact),
        };
        let mut record = MemberRecord::new_zeroed();
        record.id = m.id;
        record.state = state;
        record.epoch = epoch;
        record.last_contact_ns = last_contact_ns;
        if let Some(link) = m.link {
            record.has_link = 1;
            record.srtt_ns = link.srtt_ns.unwrap_or(0);
            record.rto_ns = link.rto_ns;
            record.in_flight = link.in_flight;
            record.queued = link.queued;
        }
        let at = HEADER + i * MEMBER;
        out[at..at + MEMBER].copy_from_slice(record.as_bytes());
    }
    HEADER + members.len() * MEMBER
}

/// A record read back: the header and the members.
#[derive(Clone, Debug)]
pub struct StatusRecord {
    pub header: RecordHeader,
    pub members: Vec<MemberRecord>,
}

impl StatusRecord {
    /// Parses a record; `None` if it is short, of another version, or
    /// claims more members than it holds.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let (header, rest) = RecordHeader::read_from_prefix(bytes).ok()?;
        if header.magic != RECORD_MAGIC || header.version != RECORD_VERSION {
            return None;
        }
        let members = (0..usize::from(header.member_count))
            .map(|i| MemberRecord::read_from_prefix(rest.get(i * MEMBER..)?).ok().map(|(m, _)| m))
            .collect::<Option<Vec<_>>>()?;
        Some(Self { header, members })
    }

    /// A transport counter by its name in [`TRANSPORT_COUNTERS`].
    pub fn transport(&self, name: &str) -> Option<u64> {
        TRANSPORT_COUNTERS.iter().position(|n| *n == name).map(|i| self.header.transport[i])
    }

    /// A nic counter by its name in [`NIC_COUNTERS`].
    pub fn nic(&self, name: &str) -> Option<u64> {
        NIC_COUNTERS.iter().position(|n| *n == name).map(|i| self.header.nic[i])
    }
}

/// One message between a status client and the cluster service.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct QueryMsg {
    /// [`QUERY`] or [`ANSWER`].
    pub kind: u32,
    /// ANSWER: bytes of record written (0: no status yet).
    pub len: u32,
    pub grant: GrantHandle,
}

pub const QUERY: u32 = 1;
pub const ANSWER: u32 = 2;
const RING: usize = 4;

type QueryTx = Sender<'static, QueryMsg, RING, ExecutorNotify>;
type QueryRx = Receiver<'static, QueryMsg, RING>;

/// The cluster service's end of one status client.
pub(super) struct QueryEnd {
    tx: QueryTx,
    rx: QueryRx,
}

static NEW_ENDS: Mutex<Vec<QueryEnd>> = Mutex::new(Vec::new());
static ENDS_WAITING: AtomicBool = AtomicBool::new(false);
static CLUSTER_CORE: AtomicUsize = AtomicUsize::new(usize::MAX);
static NEXT_CLIENT: AtomicU16 = AtomicU16::new(0x40);

pub(super) fn set_cluster_core(core: usize) {
    CLUSTER_CORE.store(core, Ordering::Release);
}

/// A status client on the calling core; `None` if the fabric is not
/// running.
pub fn attach_status() -> Option<StatusClient> {
    let core = CLUSTER_CORE.load(Ordering::Acquire);
    if core == usize::MAX {
        return None;
    }
    let me = ServiceId(NEXT_CLIENT.fetch_add(1, Ordering::Relaxed));
    let up: &'static SpscRing<QueryMsg, RING> = alloc::boxed::Box::leak(alloc::boxed::Box::new(SpscRing::new()));
    let down: &'static SpscRing<QueryMsg, RING> = alloc::boxed::Box::leak(alloc::boxed::Box::new(SpscRing::new()));
    let (tx, service_rx) = up.split(ExecutorNotify, WakeTarget::Core(CoreId(core as u32))).ok()?;
    let (service_tx, rx) = down.split(ExecutorNotify, WakeTarget::Core(CoreId(exec::core_index() as u32))).ok()?;
    NEW_ENDS.lock().push(QueryEnd { tx: service_tx, rx: service_rx });
    ENDS_WAITING.store(true, Ordering::Release);
    let frame = alloc_leases(1, "status client").pop()?;
    Some(StatusClient { me, tx, rx, frame: Some(frame) })
}

/// A user's end: one frame, one query at a time.
pub struct StatusClient {
    me: ServiceId,
    tx: QueryTx,
    rx: QueryRx,
    frame: Option<FrameLease>,
}

impl StatusClient {
    /// Asks the cluster service for its status and waits (yielding) for the
    /// answer. `None` if a query is already out or the answer is not a
    /// record (no status published yet).
    pub fn query(&mut self) -> Option<StatusRecord> {
        let lease = self.frame.take()?;
        let grant = match GRANTS.lend(lease, self.me, CLUSTER, Access::ReadWrite) {
            Ok(grant) => grant,
            Err(full) => {
                self.frame = Some(full.0);
                return None;
            }
        };
        let mut msg = QueryMsg { kind: QUERY, len: 0, grant };
        while let Err(full) = self.tx.try_send(msg) {
            msg = full.into_message();
            exec::yield_now();
        }
        loop {
            if let Some(answer) = self.rx.try_recv() {
                let lease = GRANTS.reclaim(answer.grant, self.me).ok()?;
                let len = (answer.len as usize).min(FRAME_SIZE);
                let record = StatusRecord::parse(&lease.bytes(&DirectMap)[..len]);
                self.frame = Some(lease);
                return record;
            }
            exec::yield_now();
        }
    }
}

/// For the cluster service, before it sleeps: true if no query waits;
/// every query ring is then armed, so the next query wakes it.
pub(super) fn arm_if_no_queries(ends: &mut [QueryEnd]) -> bool {
    !ENDS_WAITING.load(Ordering::Acquire) && ends.iter_mut().all(|end| end.rx.arm_if_empty())
}

/// For the cluster service: answers every waiting query with `status`.
pub(super) fn answer_queries(ends: &mut Vec<QueryEnd>, status: Option<&ClusterStatus>) {
    if ENDS_WAITING.swap(false, Ordering::AcqRel) {
        ends.append(&mut NEW_ENDS.lock());
    }
    for end in ends.iter_mut() {
        while let Some(msg) = end.rx.try_recv() {
            if msg.kind != QUERY {
                continue;
            }
            let Ok(mut grant) = GRANTS.accept(msg.grant, CLUSTER) else { continue };
            let len = match (status, grant.bytes_mut(&DirectMap)) {
                (Some(status), Ok(bytes)) => write_record(status, bytes),
                _ => 0,
            };
            grant.release();
            // One query per client at a time: the ring always has room.
            let _ = end.tx.try_send(QueryMsg { kind: ANSWER, len: len as u32, grant: msg.grant });
        }
    }
}
