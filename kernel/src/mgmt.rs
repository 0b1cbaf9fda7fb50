//! The management plane service (`mgmt`): `sinter-mgmt`'s smoltcp endpoint
//! on the node's management address (`[[node]] mgmt_ip`), answering ARP and
//! status queries on UDP port 7700 (`cargo xtask status`,
//! `docs/management.md`).
//!
//! It is a thin shell, started with the fabric: frames come from the `nic`
//! service's management port (every EtherType but the transport's), time
//! from the TSC, and the status from the `cluster` service's snapshot
//! ([`crate::fabric::status`]). Everything that arrives is input from the
//! network: the endpoint counts what it cannot use and never panics on it.

use alloc::string::String;
use alloc::vec::Vec;

use sinter_config::ClusterConfig;
use sinter_membership::PeerState;
use sinter_mgmt::{
    CoreLoad, DropCounters, FrameLink, Ipv4Cidr, LinkStats, MemberState, MemberStatus, MgmtEndpoint, StatusReport,
    TransportTotals,
};
use sinter_transport_protocol::{PeerStats, Stats};
use spin::Mutex;

use crate::exec::{self, ServiceSpec};
use crate::fabric::now_ns;
use crate::fabric::port::{attach_management, FramePort};
use crate::fabric::status::{self, ClusterStatus};
use crate::kprintln;

const MS: u64 = 1_000_000;

/// What the service needs from the config.
struct Plan {
    node: u16,
    cluster: String,
    members: Vec<u16>,
    mac: [u8; 6],
    ip: Ipv4Cidr,
}

static PLAN: Mutex<Option<Plan>> = Mutex::new(None);

/// Starts the `mgmt` service on `core` (after the fabric's `nic` service
/// was spawned, so the management port can be attached).
pub fn spawn(config: &ClusterConfig, node: u16, core: usize) {
    let Some(me) = config.node(node) else { return };
    let ip = me.mgmt_ip();
    *PLAN.lock() = Some(Plan {
        node,
        cluster: config.cluster.name.clone(),
        members: config.nodes.iter().map(|n| n.id).collect(),
        mac: me.mac.0,
        ip: Ipv4Cidr::new(ip.addr, ip.prefix),
    });
    exec::spawn_on(core, ServiceSpec { name: "mgmt", entry: service, arg: 0 });
}

/// The management frame port as a [`FrameLink`].
struct PortLink(FramePort);

impl FrameLink for PortLink {
    fn transmit(&mut self, frame: &[u8]) -> bool {
        self.0.transmit(frame.len(), |buf| buf.copy_from_slice(frame)).is_ok()
    }

    fn receive(&mut self, buf: &mut [u8]) -> Option<usize> {
        loop {
            let mut got = None;
            if !self.0.receive(|frame| {
                if let Some(dst) = buf.get_mut(..frame.len()) {
                    dst.copy_from_slice(frame);
                    got = Some(frame.len());
                }
            }) {
                return None;
            }
            // A frame longer than `buf` (none is: both are 1514) is skipped.
            if got.is_some() {
                return got;
            }
        }
    }
}

/// Longest the idle service sleeps before it polls smoltcp again.
const IDLE_WAIT_MAX_NS: u64 = 10 * MS;

fn service(_arg: usize, generation: u32) {
    let Some(plan) = PLAN.lock().take() else {
        kprintln!("mgmt: generation {generation} has no plan; no management endpoint");
        return;
    };
    let Some(port) = attach_management() else {
        kprintln!("mgmt: the nic service offers no management port; no management endpoint");
        return;
    };
    let mut link = PortLink(port);
    let mut endpoint = MgmtEndpoint::new(&mut link, plan.mac, plan.ip, now_ns() / MS);
    let [a, b, c, d] = plan.ip.addr;
    kprintln!(
        "mgmt: node {} answers status queries at {a}.{b}.{c}.{d}/{} udp {}",
        plan.node,
        plan.ip.prefix,
        sinter_mgmt::MGMT_UDP_PORT
    );
    let mut answered = 0;
    loop {
        endpoint.poll(now_ns() / MS, &mut link, &mut || report(&plan, status::snapshot(), now_ns()));
        let counters = endpoint.counters();
        if counters.queries_answered != answered {
            answered = counters.queries_answered;
            defmt::debug!("mgmt: {=u64} status queries answered", answered);
        }
        // Sleep until the next management frame (its doorbell wakes this
        // core) or IDLE_WAIT_MAX_NS, which bounds smoltcp's own timers
        // (ARP, retransmission) to that granularity.
        if link.0.arm_if_idle() {
            crate::fabric::sleep_until_ns(now_ns() + IDLE_WAIT_MAX_NS);
        } else {
            exec::yield_now();
        }
    }
}

/// The status report from the cluster service's snapshot (before its first
/// snapshot: who the node is, every peer `unknown`).
fn report(plan: &Plan, snapshot: Option<ClusterStatus>, now: u64) -> StatusReport {
    let mut report = StatusReport {
        node_id: plan.node,
        cluster: plan.cluster.clone(),
        uptime_ms: now / MS,
        ..StatusReport::default()
    };
    let Some(status) = snapshot else {
        report.members = plan
            .members
            .iter()
            .map(|&node| MemberStatus {
                node,
                state: if node == plan.node { MemberState::Local } else { MemberState::Unknown },
                last_contact_ms_ago: None,
                epoch: None,
                link: None,
            })
            .collect();
        return report;
    };
    report.boot_epoch = status.epoch;
    report.formed = status.formed;
    let ago = |at: u64| Some(now.saturating_sub(at) / MS);
    report.members = status
        .members
        .iter()
        .map(|m| {
            let (state, last_contact_ms_ago, epoch) = match m.state {
                None => (MemberState::Local, None, Some(status.epoch)),
                Some(PeerState::Unknown) => (MemberState::Unknown, None, None),
                Some(PeerState::Alive { epoch, last_contact }) => (MemberState::Alive, ago(last_contact), Some(epoch)),
                Some(PeerState::Dead { last_contact }) => (MemberState::Dead, ago(last_contact), None),
            };
            let link = if m.state.is_some() { Some(link_stats(m.link)) } else { None };
            MemberStatus { node: m.id, state, last_contact_ms_ago, epoch, link }
        })
        .collect();
    report.transport = totals(&status.transport);
    report.drops = drops(&status.transport);
    report.cores = status.cores.iter().map(|&(core, halted_permille)| CoreLoad { core, halted_permille }).collect();
    report.nic_interrupts = status.nic_interrupts;
    report
}

fn link_stats(peer: Option<PeerStats>) -> LinkStats {
    let Some(p) = peer else { return LinkStats::default() };
    LinkStats {
        frames_sent: p.counts.frames_sent,
        bytes_sent: p.counts.bytes_sent,
        frames_received: p.counts.frames_received,
        bytes_received: p.counts.bytes_received,
        retransmits: p.counts.retransmits,
        messages_delivered: p.counts.messages_delivered,
        srtt_us: p.srtt_ns.map(|ns| ns / 1000),
        rttvar_us: p.rttvar_ns / 1000,
        rto_us: p.rto_ns / 1000,
        in_flight: p.in_flight,
    }
}

fn totals(t: &Stats) -> TransportTotals {
    TransportTotals {
        messages_sent: t.messages_sent,
        messages_delivered: t.messages_delivered,
        bytes_delivered: t.bytes_delivered,
        frames_sent: t.frames_sent,
        frames_accepted: t.frames_accepted,
        duplicates: t.dup_suppressed,
        retransmitted: t.retransmitted,
        sessions_established: t.sessions_established,
        peer_restarts: t.peer_restarts,
    }
}

fn drops(t: &Stats) -> DropCounters {
    DropCounters {
        malformed: t.dropped_malformed,
        wrong_cluster: t.dropped_wrong_cluster,
        non_member: t.dropped_non_member,
        misdirected: t.dropped_misdirected,
        bad_mac: t.dropped_bad_mac,
        replay: t.dropped_replay,
        no_session: t.dropped_no_session,
        out_of_window: t.dropped_out_of_window,
        incompatible: t.dropped_incompatible,
    }
}
