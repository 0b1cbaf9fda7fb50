//! `cargo xtask status`: asks every node of a running cluster for its
//! status over the management plane and prints it.
//!
//! The tool attaches to the cluster's switch through the status host port
//! that `cargo xtask run` publishes ([`crate::runstate`]) and runs the same
//! smoltcp stack as the nodes (`sinter-mgmt`'s [`StatusClient`]): ARP for
//! each node's management address, then UDP queries to port 7700. All of it
//! is Ethernet frames inside loopback UDP datagrams to the switch: nothing
//! leaves the host.

use std::fmt::Write as _;
use std::io;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use sinter_config::Ipv4Net;
use sinter_mgmt::client::NodeAnswer;
use sinter_mgmt::{FrameLink, Ipv4Cidr, StatusClient, StatusReport};

use crate::runstate::{RunNode, RunState};

/// The status tool's Ethernet address on the cluster segment (locally
/// administered, so it cannot be a real NIC's).
pub const TOOL_MAC: [u8; 6] = [0x02, 0x53, 0x4e, 0x54, 0x00, 0xfe];

/// A [`FrameLink`] over a loopback UDP socket attached to a switch port:
/// one datagram is one Ethernet frame.
pub struct UdpFrameLink {
    socket: UdpSocket,
}

impl UdpFrameLink {
    /// Binds `local` (the port's agreed peer address) and talks to the
    /// switch port at `switch`.
    pub fn attach(local: std::net::SocketAddr, switch: std::net::SocketAddr, cluster: &str) -> Result<Self> {
        let socket = match UdpSocket::bind(local) {
            Ok(socket) => socket,
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                bail!("another `cargo xtask status` is attached to cluster `{cluster}` right now; try again")
            }
            Err(e) => return Err(e).with_context(|| format!("binding the status port's address {local}")),
        };
        socket.connect(switch).with_context(|| format!("connecting to the switch port {switch}"))?;
        socket.set_nonblocking(true)?;
        Ok(Self { socket })
    }
}

impl FrameLink for UdpFrameLink {
    fn transmit(&mut self, frame: &[u8]) -> bool {
        self.socket.send(frame).is_ok()
    }

    fn receive(&mut self, buf: &mut [u8]) -> Option<usize> {
        loop {
            match self.socket.recv(buf) {
                Ok(len) => return Some(len),
                // A stale ICMP error from an earlier send: keep reading.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                Err(_) => return None,
            }
        }
    }
}

/// The address the tool takes on the management subnet: the highest host
/// address no node uses.
pub fn tool_ip(nodes: &[RunNode]) -> Result<Ipv4Net> {
    let Some(first) = nodes.first() else { bail!("the run state lists no nodes") };
    let subnet = first.mgmt_ip;
    let mut candidate = subnet.broadcast().wrapping_sub(1);
    while candidate > subnet.network() {
        if !nodes.iter().any(|n| n.mgmt_ip.addr_u32() == candidate) {
            return Ok(Ipv4Net { addr: candidate.to_be_bytes(), prefix: subnet.prefix });
        }
        candidate -= 1;
    }
    bail!("management subnet {subnet} has no address left for the status tool")
}

/// One node's answer.
#[derive(Debug, Clone)]
pub struct NodeStatus {
    pub node: RunNode,
    pub result: std::result::Result<StatusReport, String>,
}

/// Queries every node of `state` (retrying every 500 ms) until all have
/// answered or `timeout` passes.
pub fn query(state: &RunState, timeout: Duration) -> Result<Vec<NodeStatus>> {
    let mut link = UdpFrameLink::attach(state.client_addr, state.switch_port, &state.cluster)?;
    let ip = tool_ip(&state.nodes)?;
    let start = Instant::now();
    let now_ms = || start.elapsed().as_millis() as u64 + 1;
    let mut client = StatusClient::new(&mut link, TOOL_MAC, Ipv4Cidr::new(ip.addr, ip.prefix), now_ms());
    let targets: Vec<[u8; 4]> = state.nodes.iter().map(|n| n.mgmt_ip.addr).collect();
    let mut last_query: Option<Instant> = None;
    loop {
        let pending: Vec<[u8; 4]> = targets.iter().copied().filter(|t| !client.is_done(*t)).collect();
        if pending.is_empty() || start.elapsed() >= timeout {
            break;
        }
        if last_query.is_none_or(|t| t.elapsed() >= Duration::from_millis(500)) {
            for target in &pending {
                client.query(*target);
            }
            last_query = Some(Instant::now());
        }
        client.poll(now_ms(), &mut link);
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(state
        .nodes
        .iter()
        .map(|node| {
            let result = match client.answer(node.mgmt_ip.addr) {
                Some(NodeAnswer::Complete(report)) => Ok(report.clone()),
                Some(NodeAnswer::Partial(report)) => {
                    Err(format!("only {} of its members arrived within {:.0?}", report.members.len(), timeout))
                }
                Some(NodeAnswer::Unsupported { supported }) => Err(format!(
                    "it speaks management protocol version {supported}, this tool speaks {}",
                    sinter_mgmt::VERSION
                )),
                None => Err(format!("no answer within {timeout:.0?}")),
            };
            NodeStatus { node: *node, result }
        })
        .collect())
}

fn ms(value: Option<u64>) -> String {
    value.map_or("-".to_string(), |v| format!("{v} ms"))
}

/// The report as `cargo xtask status` prints it.
pub fn format_report(node: &RunNode, report: &StatusReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "node {} ({}, {}): cluster `{}`, up {:.1} s, epoch {:#018x}, {}",
        report.node_id,
        node.mgmt_ip,
        node.mac,
        report.cluster,
        report.uptime_ms as f64 / 1000.0,
        report.boot_epoch,
        if report.formed { "cluster formed" } else { "cluster NOT formed" }
    );
    let _ = writeln!(
        out,
        "  {:<6} {:<8} {:>12} {:>10} {:>10} {:>12} {:>12} {:>6} {:>10} {:>10}",
        "member",
        "state",
        "last contact",
        "frames tx",
        "frames rx",
        "bytes tx",
        "bytes rx",
        "retx",
        "srtt",
        "delivered"
    );
    for m in &report.members {
        let link = m.link.unwrap_or_default();
        let linked = m.link.is_some();
        let num = |v: u64| if linked { v.to_string() } else { "-".to_string() };
        let _ = writeln!(
            out,
            "  {:<6} {:<8} {:>12} {:>10} {:>10} {:>12} {:>12} {:>6} {:>10} {:>10}",
            m.node,
            m.state.as_str(),
            ms(m.last_contact_ms_ago),
            num(link.frames_sent),
            num(link.frames_received),
            num(link.bytes_sent),
            num(link.bytes_received),
            num(link.retransmits),
            link.srtt_us.map_or("-".to_string(), |us| format!("{:.2} ms", us as f64 / 1000.0)),
            num(link.messages_delivered),
        );
    }
    let t = &report.transport;
    let _ = writeln!(
        out,
        "  transport: messages sent {} delivered {} ({} bytes), frames sent {} accepted {} duplicate {}, retransmitted {}, sessions {}, peer restarts {}",
        t.messages_sent, t.messages_delivered, t.bytes_delivered, t.frames_sent, t.frames_accepted, t.duplicates, t.retransmitted,
        t.sessions_established, t.peer_restarts
    );
    let drops: Vec<String> = report.drops.named().iter().map(|(name, v)| format!("{name} {v}")).collect();
    let _ = writeln!(out, "  drops: {} (total {})", drops.join(", "), report.drops.total());
    let loads: Vec<String> =
        report.cores.iter().map(|c| format!("{} {:.1}%", c.core, f64::from(c.halted_permille) / 10.0)).collect();
    let _ = writeln!(
        out,
        "  cores halted (last window): {}; nic receive interrupts {}",
        if loads.is_empty() { "not measured yet".to_string() } else { loads.join(", ") },
        report.nic_interrupts
    );
    let g = &report.mgmt;
    let _ = writeln!(
        out,
        "  mgmt: queries answered {} malformed {} unsupported {} replies dropped {}, frames in {} out {}",
        g.queries_answered, g.queries_malformed, g.queries_unsupported, g.replies_dropped, g.frames_in, g.frames_out
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sinter_config::MacAddr;
    use sinter_mgmt::{CoreLoad, DropCounters, LinkStats, MemberState, MemberStatus};

    fn node(id: u16, ip: &str) -> RunNode {
        RunNode { id, mgmt_ip: Ipv4Net::parse(ip).unwrap(), mac: MacAddr([0x52, 0x54, 0, 0, 0, id as u8]) }
    }

    #[test]
    fn the_tool_takes_the_highest_free_address() {
        assert_eq!(tool_ip(&[node(0, "10.77.0.1/24"), node(1, "10.77.0.2/24")]).unwrap().to_string(), "10.77.0.254/24");
        assert_eq!(tool_ip(&[node(0, "10.77.0.254/24")]).unwrap().to_string(), "10.77.0.253/24");
        assert_eq!(tool_ip(&[node(0, "192.168.4.1/30")]).unwrap().to_string(), "192.168.4.2/30");
        assert!(tool_ip(&[node(0, "192.168.4.1/30"), node(1, "192.168.4.2/30")]).is_err());
    }

    #[test]
    fn a_report_prints_members_links_and_drops() {
        let report = StatusReport {
            node_id: 1,
            cluster: "qemu-2node".into(),
            uptime_ms: 12_345,
            boot_epoch: 7,
            formed: true,
            members: vec![
                MemberStatus {
                    node: 0,
                    state: MemberState::Alive,
                    last_contact_ms_ago: Some(40),
                    epoch: Some(9),
                    link: Some(LinkStats { frames_sent: 11, srtt_us: Some(1500), ..Default::default() }),
                },
                MemberStatus {
                    node: 1,
                    state: MemberState::Local,
                    last_contact_ms_ago: None,
                    epoch: Some(7),
                    link: None,
                },
            ],
            drops: DropCounters { bad_mac: 3, ..Default::default() },
            cores: vec![CoreLoad { core: 0, halted_permille: 962 }, CoreLoad { core: 1, halted_permille: 1000 }],
            nic_interrupts: 77,
            ..Default::default()
        };
        let text = format_report(&node(1, "10.77.0.2/24"), &report);
        assert!(
            text.starts_with("node 1 (10.77.0.2/24, 52:54:00:00:00:01): cluster `qemu-2node`, up 12.3 s"),
            "{text}"
        );
        assert!(text.contains("cluster formed"), "{text}");
        assert!(text.contains("alive") && text.contains("40 ms") && text.contains("1.50 ms"), "{text}");
        assert!(text.contains("bad_mac 3") && text.contains("(total 3)"), "{text}");
        assert!(text.contains("cores halted (last window): 0 96.2%, 1 100.0%; nic receive interrupts 77"), "{text}");
    }
}
