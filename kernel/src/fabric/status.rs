//! What the fabric publishes about itself: the nic's counters (atomics,
//! updated as frames pass) and the cluster status snapshot the `cluster`
//! service refreshes (members, per-peer link stats, drop counters by
//! reason). Readers (the management plane, reports) take a copy with
//! [`snapshot`]; nothing here blocks a fabric service for long.

use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use sinter_membership::PeerState;
use sinter_transport_protocol::{PeerStats, Stats};
use spin::Mutex;

/// Counters of the `nic` service, by what happened to a frame.
#[derive(Default)]
pub struct NicCounters {
    /// Frames the driver received.
    pub rx_frames: AtomicU64,
    /// Lent to the transport (EtherType 0x88B5).
    pub rx_transport: AtomicU64,
    /// Lent to the management plane (any other EtherType).
    pub rx_management: AtomicU64,
    /// Dropped: shorter than an Ethernet header or longer than 1514 bytes.
    pub rx_bad_length: AtomicU64,
    /// Dropped: a management frame and no management port attached.
    pub rx_no_listener: AtomicU64,
    /// Dropped: the user already holds all the frames it may borrow.
    pub rx_user_busy: AtomicU64,
    /// Dropped: no spare frame to swap into the receive ring.
    pub rx_no_buffer: AtomicU64,
    /// Frames sent.
    pub tx_frames: AtomicU64,
    /// Frames the driver refused (bad length, device error); dropped.
    pub tx_errors: AtomicU64,
    /// Grants that failed (table full, stale or forged handles).
    pub grant_errors: AtomicU64,
}

/// A copy of [`NicCounters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NicCounterValues {
    pub rx_frames: u64,
    pub rx_transport: u64,
    pub rx_management: u64,
    pub rx_bad_length: u64,
    pub rx_no_listener: u64,
    pub rx_user_busy: u64,
    pub rx_no_buffer: u64,
    pub tx_frames: u64,
    pub tx_errors: u64,
    pub grant_errors: u64,
}

impl NicCounters {
    pub const fn new() -> Self {
        Self {
            rx_frames: AtomicU64::new(0),
            rx_transport: AtomicU64::new(0),
            rx_management: AtomicU64::new(0),
            rx_bad_length: AtomicU64::new(0),
            rx_no_listener: AtomicU64::new(0),
            rx_user_busy: AtomicU64::new(0),
            rx_no_buffer: AtomicU64::new(0),
            tx_frames: AtomicU64::new(0),
            tx_errors: AtomicU64::new(0),
            grant_errors: AtomicU64::new(0),
        }
    }

    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn values(&self) -> NicCounterValues {
        let v = |c: &AtomicU64| c.load(Ordering::Relaxed);
        NicCounterValues {
            rx_frames: v(&self.rx_frames),
            rx_transport: v(&self.rx_transport),
            rx_management: v(&self.rx_management),
            rx_bad_length: v(&self.rx_bad_length),
            rx_no_listener: v(&self.rx_no_listener),
            rx_user_busy: v(&self.rx_user_busy),
            rx_no_buffer: v(&self.rx_no_buffer),
            tx_frames: v(&self.tx_frames),
            tx_errors: v(&self.tx_errors),
            grant_errors: v(&self.grant_errors),
        }
    }
}

pub static NIC_COUNTERS: NicCounters = NicCounters::new();

/// The transport service's view, refreshed by it every few milliseconds.
#[derive(Clone, Debug, Default)]
pub struct TransportView {
    pub stats: Stats,
    /// Per peer: id and link stats.
    pub peers: Vec<(u16, PeerStats)>,
    /// Messages that named no local user (unknown port byte): dropped.
    pub undeliverable: u64,
}

/// One member as the cluster service sees it.
#[derive(Clone, Copy, Debug)]
pub struct MemberStatus {
    pub id: u16,
    /// `None` for the local node.
    pub state: Option<PeerState>,
    pub link: Option<PeerStats>,
}

/// Everything the management plane can ask about the cluster.
#[derive(Clone, Debug, Default)]
pub struct ClusterStatus {
    pub local: u16,
    pub epoch: u64,
    pub formed: bool,
    pub members: Vec<MemberStatus>,
    /// Transport counters, drops by reason included (`dropped_*`).
    pub transport: Stats,
    pub nic: NicCounterValues,
    /// Messages for no local user, dropped (see [`TransportView`]).
    pub undeliverable: u64,
    /// Per core with an executor: (core, thousandths of the last load
    /// window spent halted); empty until a window has ended.
    pub cores: Vec<(u16, u16)>,
    /// NIC receive interrupts since boot.
    pub nic_interrupts: u64,
    pub updated_at_ns: u64,
}

/// Shortest span a core's halted share is measured over: long enough that
/// one timer tick or one burst of work does not dominate it.
const LOAD_WINDOW_NS: u64 = 1_000_000_000;

/// Measures each core's halted share over windows of [`LOAD_WINDOW_NS`]
/// and keeps the last complete one.
pub struct LoadMeter {
    started_tsc: u64,
    halted_at_start: Vec<(usize, u64)>,
    last: Vec<(u16, u16)>,
}

impl LoadMeter {
    pub fn new() -> Self {
        Self { started_tsc: crate::arch::time::rdtsc(), halted_at_start: halted_now(), last: Vec::new() }
    }

    /// The last complete window's shares, closing the current window first
    /// if it is long enough.
    pub fn sample(&mut self) -> Vec<(u16, u16)> {
        let now = crate::arch::time::rdtsc();
        let elapsed = now.wrapping_sub(self.started_tsc).max(1);
        if sinter_kerncore::clock::ticks_to_ns(elapsed, crate::arch::time::tsc_hz()) >= LOAD_WINDOW_NS {
            let halted = halted_now();
            self.last = halted
                .iter()
                .map(|&(core, cycles)| {
                    let before = self.halted_at_start.iter().find(|(c, _)| *c == core).map_or(0, |(_, h)| *h);
                    let share = cycles.saturating_sub(before).saturating_mul(1000) / elapsed;
                    (core as u16, share.min(1000) as u16)
                })
                .collect();
            self.started_tsc = now;
            self.halted_at_start = halted;
        }
        self.last.clone()
    }
}

fn halted_now() -> Vec<(usize, u64)> {
    crate::exec::online_cores().map(|core| (core, crate::exec::halted_cycles(core))).collect()
}

pub(super) static TRANSPORT_VIEW: Mutex<Option<TransportView>> = Mutex::new(None);
pub(super) static CLUSTER_STATUS: Mutex<Option<ClusterStatus>> = Mutex::new(None);

/// The latest cluster status, if the fabric runs.
pub fn snapshot() -> Option<ClusterStatus> {
    CLUSTER_STATUS.lock().clone()
}

/// The transport service's latest view.
pub fn transport_view() -> Option<TransportView> {
    TRANSPORT_VIEW.lock().clone()
}

impl fmt::Display for ClusterStatus {
    /// One line: membership, per-peer link state, transport drops by
    /// reason, nic counters.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node {} epoch {:#018x} formed={} members:", self.local, self.epoch, self.formed)?;
        for m in &self.members {
            match m.state {
                None => write!(f, " {}=local", m.id)?,
                Some(PeerState::Unknown) => write!(f, " {}=unknown", m.id)?,
                Some(PeerState::Alive { last_contact, .. }) => write!(
                    f,
                    " {}=alive(last {} ms ago",
                    m.id,
                    self.updated_at_ns.saturating_sub(last_contact) / 1_000_000
                )?,
                Some(PeerState::Dead { last_contact }) => {
                    write!(f, " {}=dead(last at {} ms", m.id, last_contact / 1_000_000)?
                }
            }
            if let Some(link) = m.link {
                write!(
                    f,
                    ", srtt {} us, rto {} us, in flight {}, queued {}",
                    link.srtt_ns.unwrap_or(0) / 1000,
                    link.rto_ns / 1000,
                    link.in_flight,
                    link.queued
                )?;
            }
            if m.state.is_some_and(|s| !matches!(s, PeerState::Unknown)) {
                write!(f, ")")?;
            }
        }
        let t = &self.transport;
        write!(
            f,
            "; transport: {} frames sent, {} retransmitted, {} delivered, {} undeliverable, ",
            t.frames_sent, t.retransmitted, t.messages_delivered, self.undeliverable,
        )?;
        write_drops(f, t)?;
        let n = &self.nic;
        write!(
            f,
            "; nic: rx {} (transport {}, management {}), tx {}, drops: bad-length {} no-listener {} user-busy {} no-buffer {} tx-errors {} grant-errors {}",
            n.rx_frames,
            n.rx_transport,
            n.rx_management,
            n.tx_frames,
            n.rx_bad_length,
            n.rx_no_listener,
            n.rx_user_busy,
            n.rx_no_buffer,
            n.tx_errors,
            n.grant_errors
        )
    }
}

/// `drops: malformed N wrong-cluster N ...`: the transport's drop counters
/// by reason, for the console status line and the periodic debug log.
pub fn write_drops(w: &mut impl fmt::Write, stats: &Stats) -> fmt::Result {
    w.write_str("drops:")?;
    for (reason, count) in stats.drops() {
        write!(w, " {reason} {count}")?;
    }
    Ok(())
}
