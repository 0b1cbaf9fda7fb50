//! The `cluster` service: membership over the transport. It joins every
//! configured member (`sinter-membership`'s handshake), sends heartbeats
//! every `[cluster] heartbeat_ms`, declares a member lost after
//! `[cluster] failure_timeout_ms` of silence, and prints on the console:
//!
//! ```text
//! cluster: node 1 joined (epoch 0x…) at 2345 ms
//! cluster: formed, members=[0,1,2], epoch 0x…, at 2350 ms
//! cluster: node 2 lost, last contact 1043 ms ago (at 5120 ms), detected at 6163 ms, failure timeout 1000 ms
//! ```
//!
//! Times are the node's uptime (TSC) in milliseconds. It refreshes the
//! [`super::status::ClusterStatus`] snapshot every [`STATUS_NS`] and logs
//! the drop counters at debug level every [`COUNTERS_LOG_NS`].

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use sinter_config::ClusterConfig;
use sinter_membership::{Action, Membership, MembershipConfig, Message, PeerState, Report};
use spin::Mutex;

use super::now_ns;
use super::status::{self, ClusterStatus, LoadMeter, MemberStatus, NIC_COUNTERS};
use super::transport::{self, ClientEvent, TransportClient, PORT_CLUSTER};
use crate::exec::{self, ServiceSpec};
use crate::kprintln;

const MS: u64 = 1_000_000;
const STATUS_NS: u64 = 100 * MS;
const COUNTERS_LOG_NS: u64 = 5_000 * MS;
/// Longest the idle service sleeps: a query from a management client that
/// attached meanwhile (attaching does not wake it) waits at most this.
const IDLE_WAIT_MAX_NS: u64 = 5 * MS;

struct Plan {
    local: u16,
    members: Vec<u16>,
    timing: MembershipConfig,
}

static PLAN: Mutex<Option<Plan>> = Mutex::new(None);

pub fn spawn(config: &ClusterConfig, node: u16, core: usize) {
    let timing = MembershipConfig {
        heartbeat_interval_ns: u64::from(config.cluster.heartbeat_ms) * MS,
        failure_timeout_ns: u64::from(config.cluster.failure_timeout_ms) * MS,
    };
    *PLAN.lock() = Some(Plan { local: node, members: config.nodes.iter().map(|n| n.id).collect(), timing });
    super::query::set_cluster_core(core);
    exec::spawn_on(core, ServiceSpec { name: "cluster", entry: service, arg: 0 });
}

/// Counters of the cluster service itself.
#[derive(Default)]
struct Counters {
    /// Membership messages that did not decode (from an authentic peer).
    bad_messages: u64,
    /// Heartbeats/joins not sent because every client frame was out.
    sends_dropped: u64,
    sends_refused: u64,
}

fn service(_arg: usize, generation: u32) {
    let Some(plan) = PLAN.lock().take() else {
        kprintln!("cluster: generation {generation} has no plan; membership stays down");
        return;
    };
    let Some(mut client) = transport::attach(PORT_CLUSTER) else {
        kprintln!("cluster: the transport service is not running");
        return;
    };
    let epoch = transport::epoch();
    let mut membership = match Membership::new(plan.local, epoch, &plan.members, plan.timing) {
        Ok(m) => m,
        Err(why) => {
            kprintln!("cluster: bad membership configuration: {why:?}");
            return;
        }
    };
    kprintln!(
        "cluster: node {} joining members {:?}, heartbeat {} ms, failure timeout {} ms",
        plan.local,
        plan.members,
        plan.timing.heartbeat_interval_ns / MS,
        plan.timing.failure_timeout_ns / MS
    );
    let mut counters = Counters::default();
    let mut actions = Vec::new();
    membership.start(now_ns(), &mut actions);
    let (mut status_at, mut logged_at) = (0u64, now_ns());
    let mut queries = Vec::new();
    let mut load = LoadMeter::new();
    loop {
        let now = now_ns();
        let mut work = client.poll(&mut |event| match event {
            ClientEvent::Message { from, data, .. } => match Message::decode(data) {
                Ok(message) => membership.on_message(from, message, now, &mut actions),
                Err(_) => counters.bad_messages += 1,
            },
            ClientEvent::SendRefused { .. } => counters.sends_refused += 1,
            // Restarts show up in the membership protocol by epoch.
            ClientEvent::PeerUp { .. } | ClientEvent::PeerRestarted { .. } => {}
        });
        if now >= membership.next_deadline() {
            membership.tick(now, &mut actions);
        }
        let mut changed = false;
        work += actions.len();
        for action in actions.drain(..) {
            changed |= matches!(action, Action::Report(Report::PeerDead { .. } | Report::ClusterFormed { .. }));
            act(action, &mut client, &mut counters, &plan, epoch);
        }
        if changed || now.saturating_sub(status_at) >= STATUS_NS {
            status_at = now;
            publish(&membership, &plan, epoch, now, load.sample());
        }
        if changed {
            if let Some(status) = status::snapshot() {
                kprintln!("cluster: status: {status}");
            }
        }
        super::query::answer_queries(&mut queries, status::CLUSTER_STATUS.lock().as_ref());
        if now.saturating_sub(logged_at) >= COUNTERS_LOG_NS {
            logged_at = now;
            log_counters(&counters);
        }
        if work == 0 && client.arm_if_idle() && super::query::arm_if_no_queries(&mut queries) {
            let deadline = membership
                .next_deadline()
                .min(status_at + STATUS_NS)
                .min(logged_at + COUNTERS_LOG_NS)
                .min(now + IDLE_WAIT_MAX_NS);
            super::sleep_until_ns(deadline);
        } else {
            exec::yield_now();
        }
    }
}

fn act(action: Action, client: &mut TransportClient, counters: &mut Counters, plan: &Plan, epoch: u64) {
    match action {
        Action::Send { to, message } => {
            let bytes = message.encode();
            if client.try_send(to, bytes.len(), |buf| buf.copy_from_slice(&bytes)).is_err() {
                counters.sends_dropped += 1;
            }
        }
        Action::Report(report) => print_report(report, plan, epoch),
    }
}

fn print_report(report: Report, plan: &Plan, epoch: u64) {
    match report {
        Report::PeerJoined { peer, epoch: peer_epoch, at } => {
            kprintln!("cluster: node {peer} joined (epoch {peer_epoch:#018x}) at {} ms", at / MS);
        }
        Report::ClusterFormed { at, .. } => {
            let mut members = String::new();
            for (i, m) in plan.members.iter().enumerate() {
                let _ = write!(members, "{}{m}", if i == 0 { "" } else { "," });
            }
            kprintln!("cluster: formed, members=[{members}], epoch {epoch:#018x}, at {} ms", at / MS);
            defmt::info!("cluster formed: {=usize} members", plan.members.len());
        }
        Report::PeerDead { peer, last_contact, detected_at } => {
            kprintln!(
                "cluster: node {peer} lost, last contact {} ms ago (at {} ms), detected at {} ms, failure timeout {} ms",
                detected_at.saturating_sub(last_contact) / MS,
                last_contact / MS,
                detected_at / MS,
                plan.timing.failure_timeout_ns / MS
            );
            defmt::warn!("cluster: node {=u16} lost", peer);
        }
        Report::PeerRestarted { peer, old_epoch, new_epoch, at } => {
            kprintln!(
                "cluster: node {peer} restarted (epoch {old_epoch:#018x} -> {new_epoch:#018x}) at {} ms",
                at / MS
            );
        }
    }
}

fn publish(membership: &Membership, plan: &Plan, epoch: u64, now: u64, cores: Vec<(u16, u16)>) {
    let view = status::transport_view().unwrap_or_default();
    let members = plan
        .members
        .iter()
        .map(|&id| MemberStatus {
            id,
            state: (id != plan.local).then(|| membership.peer(id).unwrap_or(PeerState::Unknown)),
            link: view.peers.iter().find(|(p, _)| *p == id).map(|(_, s)| *s),
        })
        .collect();
    *status::CLUSTER_STATUS.lock() = Some(ClusterStatus {
        local: plan.local,
        epoch,
        formed: membership.is_formed(),
        members,
        transport: view.stats,
        nic: NIC_COUNTERS.values(),
        undeliverable: view.undeliverable,
        cores,
        nic_interrupts: crate::arch::trap::nic_irqs(),
        updated_at_ns: now,
    });
}

/// The drop counters, by reason, at debug level (`DEFMT_LOG=debug`).
fn log_counters(counters: &Counters) {
    let Some(status) = status::snapshot() else { return };
    let n = status.nic;
    let mut drops = String::new();
    let _ = status::write_drops(&mut drops, &status.transport);
    defmt::debug!("fabric {=str}", drops.as_str());
    defmt::debug!(
        "fabric nic: rx {=u64} bad-length {=u64} no-listener {=u64} user-busy {=u64} no-buffer {=u64} tx {=u64} tx-errors {=u64}; cluster: bad {=u64} send-dropped {=u64} refused {=u64}",
        n.rx_frames,
        n.rx_bad_length,
        n.rx_no_listener,
        n.rx_user_busy,
        n.rx_no_buffer,
        n.tx_frames,
        n.tx_errors,
        counters.bad_messages,
        counters.sends_dropped,
        counters.sends_refused
    );
}
