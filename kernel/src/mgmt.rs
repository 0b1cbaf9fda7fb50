//! The management plane service (`mgmt`): `sinter-mgmt`'s smoltcp endpoint
//! on the node's management address (`[[node]] mgmt_ip`), answering ARP and
//! status queries on UDP port 7700 (`cargo xtask status`).
//!
//! It is a thin shell: frames come from a [`FrameLink`] (the `nic`
//! service's management port, or the NIC itself for the `mgmt-direct`
//! self-test), time from the TSC, and the status from whatever the node
//! knows. Everything that arrives is input from the network: the endpoint
//! counts what it cannot use and never panics on it.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;

use sinter_config::ClusterConfig;
use sinter_mgmt::{FrameLink, Ipv4Cidr, MemberState, MemberStatus, MgmtEndpoint, StatusReport};
use spin::Mutex;

use crate::arch::time;
use crate::exec::{self, ServiceSpec};
use crate::kprintln;
use crate::nic::{self, FrameNic, Nic};

/// Frames the direct link buffers between polls; more are dropped.
const DIRECT_QUEUE: usize = 32;

/// Milliseconds since reset (the calibrated TSC).
pub fn now_ms() -> u64 {
    sinter_kerncore::clock::ticks_to_ns(time::rdtsc(), time::tsc_hz()) / 1_000_000
}

/// What the service needs from the config.
struct Plan {
    node: u16,
    cluster: String,
    members: Vec<u16>,
    mac: [u8; 6],
    ip: Ipv4Cidr,
    nic: sinter_config::NicModel,
}

static PLAN: Mutex<Option<Plan>> = Mutex::new(None);

fn plan(config: &ClusterConfig, node: u16) -> Option<Plan> {
    let me = config.node(node)?;
    let ip = me.mgmt_ip();
    Some(Plan {
        node,
        cluster: config.cluster.name.clone(),
        members: config.nodes.iter().map(|n| n.id).collect(),
        mac: me.mac.0,
        ip: Ipv4Cidr::new(ip.addr, ip.prefix),
        nic: me.nic,
    })
}

/// The `mgmt-direct` self-test: the management endpoint owns the NIC
/// itself (no fabric), so the host-to-node path is tested on its own.
pub fn spawn_direct(config: &ClusterConfig, node: u16, core: usize) {
    *PLAN.lock() = plan(config, node);
    exec::spawn_on(core, ServiceSpec { name: "mgmt", entry: direct_service, arg: 0 });
}

/// The NIC as a [`FrameLink`] (every frame, whatever its EtherType).
struct DirectLink {
    nic: Nic,
    queue: VecDeque<Vec<u8>>,
    dropped: u64,
}

impl FrameLink for DirectLink {
    fn transmit(&mut self, frame: &[u8]) -> bool {
        self.nic.transmit(frame).is_ok()
    }

    fn receive(&mut self, buf: &mut [u8]) -> Option<usize> {
        if self.queue.is_empty() {
            let (queue, dropped) = (&mut self.queue, &mut self.dropped);
            self.nic.receive(&mut |frame| {
                if queue.len() < DIRECT_QUEUE {
                    queue.push_back(frame.to_vec());
                } else {
                    *dropped += 1;
                }
            });
        }
        loop {
            let frame = self.queue.pop_front()?;
            if let Some(dst) = buf.get_mut(..frame.len()) {
                dst.copy_from_slice(&frame);
                return Some(frame.len());
            }
        }
    }
}

/// The status of a node without the fabric: who it is and how long it has
/// been up; every peer is `unknown`.
fn standalone_status(plan: &Plan) -> StatusReport {
    StatusReport {
        node_id: plan.node,
        cluster: plan.cluster.clone(),
        uptime_ms: now_ms(),
        members: plan
            .members
            .iter()
            .map(|&node| MemberStatus {
                node,
                state: if node == plan.node { MemberState::Local } else { MemberState::Unknown },
                last_contact_ms_ago: None,
                epoch: None,
                link: None,
            })
            .collect(),
        ..StatusReport::default()
    }
}

fn direct_service(_arg: usize, _generation: u32) {
    let Some(plan) = PLAN.lock().take() else { return };
    let nic = match nic::open(plan.nic, plan.mac) {
        Ok(nic) => nic,
        Err(why) => {
            kprintln!("mgmt: FAILED: NIC not usable: {why:?}");
            return;
        }
    };
    let mut link = DirectLink { nic, queue: VecDeque::new(), dropped: 0 };
    let mut endpoint = MgmtEndpoint::new(&mut link, plan.mac, plan.ip, now_ms());
    kprintln!(
        "mgmt: node {} answers status queries at {}.{}.{}.{}/{} udp {}",
        plan.node,
        plan.ip.addr[0],
        plan.ip.addr[1],
        plan.ip.addr[2],
        plan.ip.addr[3],
        plan.ip.prefix,
        sinter_mgmt::MGMT_UDP_PORT
    );
    let mut answered = 0;
    loop {
        endpoint.poll(now_ms(), &mut link, &mut || standalone_status(&plan));
        let counters = endpoint.counters();
        if counters.queries_answered != answered {
            answered = counters.queries_answered;
            defmt::info!("mgmt: {=u64} status queries answered", answered);
        }
        exec::yield_now();
    }
}
