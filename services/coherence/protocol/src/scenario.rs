//! Deterministic scenarios that measure what one coherence event costs on
//! the wire (messages, page transfers, bytes), next to the least any
//! home-based protocol could spend on it. `docs/benchmarks/coherence.md`
//! holds the table that [`markdown_table`] prints.
//!
//! Each scenario sets up a 10-node cluster through the protocol itself,
//! then performs one access and drains the network in a fixed order,
//! encoding every delivered message with [`crate::wire`] to count bytes.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::sim::{Choice, Cluster, ClusterShape, VcpuState, Violation};
use crate::wire::{encoded_len, PAGE_FRAME_LEN};
use crate::{Access, GuestPage, Message, NodeId, ProtocolConfig};

/// Cost of one event on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct WireCost {
    /// Messages.
    pub messages: u32,
    /// Of which carry a 4 KiB page.
    pub pages: u32,
    /// Bytes of message frames (without the transport's own headers).
    pub bytes: u64,
}

impl WireCost {
    fn of(msgs: &[Message]) -> Self {
        let mut cost = Self::default();
        for m in msgs {
            cost.add(m);
        }
        cost
    }

    fn add(&mut self, msg: &Message) {
        self.messages += 1;
        self.pages += u32::from(msg.carries_page());
        self.bytes += encoded_len(msg) as u64;
    }
}

/// One row of the table.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ScenarioCost {
    /// What happens.
    pub name: String,
    /// What the protocol spent.
    pub measured: WireCost,
    /// The least any home-based protocol could spend (see `why_minimum`).
    pub minimum: WireCost,
    /// Why that is the least, or why we spend more.
    pub why_minimum: &'static str,
}

const NODES: u8 = 10;
/// Page 0 (homed at node 0) is the page every scenario is about. Page 10
/// (also homed at node 0) is a page nobody ever writes.
const PAGE: u32 = 0;
const FRESH_PAGE: u32 = 10;
const REQUESTER: u8 = 1;

struct Bench {
    cluster: Cluster,
}

impl Bench {
    fn new() -> Self {
        Self {
            cluster: Cluster::new(ClusterShape {
                nodes: NODES,
                pages: 20,
                vcpus_per_node: 1,
                ops_per_vcpu: 1000,
                evictions: 1000,
                protocol: ProtocolConfig::DEFAULT,
            }),
        }
    }

    /// Node `node` (its only vCPU) does `access` on `page`; returns the
    /// messages delivered until the cluster is quiet again.
    fn access(&mut self, node: u8, page: u32, access: Access) -> Result<Vec<Message>, Violation> {
        let vcpu = u16::from(node);
        self.cluster.apply(Choice::Issue { vcpu, page, access })?;
        let msgs = self.settle()?;
        match self.cluster.vcpus()[usize::from(vcpu)].state {
            VcpuState::Idle => Ok(msgs),
            _ => Err(Violation::Deadlock { waiting: 1 }),
        }
    }

    fn evict(&mut self, node: u8, page: u32) -> Result<Vec<Message>, Violation> {
        self.cluster.apply(Choice::Evict { node, page })?;
        self.settle()
    }

    /// Delivers messages (lowest channel first) and re-runs completed
    /// vCPUs until nothing moves.
    fn settle(&mut self) -> Result<Vec<Message>, Violation> {
        let mut msgs = Vec::new();
        loop {
            let ready = self.cluster.vcpus().iter().position(|v| matches!(v.state, VcpuState::Ready { .. }));
            if let Some(vcpu) = ready {
                self.cluster.apply(Choice::Retry { vcpu: vcpu as u16 })?;
            } else if let Some(deliver) = self.cluster.nth_busy_channel(0) {
                if let Choice::Deliver { from, to } = deliver {
                    if let Some(packet) = self.cluster.channel_head(from, to) {
                        msgs.push(packet.msg);
                    }
                }
                self.cluster.apply(deliver)?;
            } else {
                return Ok(msgs);
            }
        }
    }
}

fn page(n: u32) -> GuestPage {
    GuestPage::new(u64::from(n)).expect("small page number")
}

fn node(n: u8) -> NodeId {
    NodeId::new(n).expect("small node id")
}

/// Runs every scenario. `Err` means the protocol broke an invariant in
/// one of them (which the tests would also show).
pub fn run_all() -> Result<Vec<ScenarioCost>, Violation> {
    let p = page(PAGE);
    let mut rows = Vec::new();
    let get_s = Message::GetS { page: p };
    let get_m = Message::GetM { page: p };
    let data_grant = |access| Message::Grant { page: p, access, fill: crate::Fill::Data };
    let no_data_grant = |fill| Message::Grant { page: p, access: Access::Write, fill };

    // Read miss, page clean at its home.
    let mut b = Bench::new();
    b.access(0, PAGE, Access::Write)?;
    let msgs = b.access(REQUESTER, PAGE, Access::Read)?;
    rows.push(ScenarioCost {
        name: "read miss, page clean at home".into(),
        measured: WireCost::of(&msgs),
        minimum: WireCost::of(&[get_s, data_grant(Access::Read)]),
        why_minimum: "request + reply with the page",
    });

    // Read miss of a never-written page.
    let mut b = Bench::new();
    let msgs = b.access(REQUESTER, FRESH_PAGE, Access::Read)?;
    let fresh = page(FRESH_PAGE);
    rows.push(ScenarioCost {
        name: "read miss, never-written page (zero page)".into(),
        measured: WireCost::of(&msgs),
        minimum: WireCost::of(&[
            Message::GetS { page: fresh },
            Message::Grant { page: fresh, access: Access::Read, fill: crate::Fill::Zero },
        ]),
        why_minimum: "request + reply, no page needed",
    });

    // Read miss, page modified at a third node.
    let mut b = Bench::new();
    b.access(2, PAGE, Access::Write)?;
    let msgs = b.access(REQUESTER, PAGE, Access::Read)?;
    rows.push(ScenarioCost {
        name: "read miss, page modified at another node".into(),
        measured: WireCost::of(&msgs),
        minimum: WireCost::of(&[
            get_s,
            Message::FwdGetS {
                page: p,
                requester: node(REQUESTER),
            },
            data_grant(Access::Read),
        ]),
        why_minimum: "3-hop: request, forward, owner replies to requester; \
                      we route the data through the home (one page more) so the home's copy is current and no unblock is needed",
    });

    // Write miss with k sharers.
    for k in [1u8, 2, 4, 8] {
        let mut b = Bench::new();
        b.access(0, PAGE, Access::Write)?;
        for s in 0..k {
            b.access(2 + s, PAGE, Access::Read)?;
        }
        let msgs = b.access(REQUESTER, PAGE, Access::Write)?;
        // Lower bound: the request, one message to each sharer, one from
        // each sharer (its drop must precede the write), one of which can
        // carry the page straight to the requester.
        let mut minimum = Vec::from([get_m]);
        for _ in 0..k {
            minimum.push(Message::Inv { page: p });
        }
        for _ in 1..k {
            minimum.push(Message::InvAck { page: p });
        }
        minimum.push(Message::OwnerData { page: p });
        rows.push(ScenarioCost {
            name: format!("write miss, {k} sharer{}", if k == 1 { "" } else { "s" }),
            measured: WireCost::of(&msgs),
            minimum: WireCost::of(&minimum),
            why_minimum: "request, k invalidations, k acks of which one carries the page to the requester; \
                          we collect the acks at the home and send one grant: one control message more",
        });
    }

    // Upgrade with k other sharers.
    for k in [0u8, 1, 2, 4, 8] {
        let mut b = Bench::new();
        b.access(0, PAGE, Access::Write)?;
        b.access(REQUESTER, PAGE, Access::Read)?;
        for s in 0..k {
            b.access(2 + s, PAGE, Access::Read)?;
        }
        let msgs = b.access(REQUESTER, PAGE, Access::Write)?;
        let mut minimum = Vec::from([Message::Upgrade { page: p }]);
        for _ in 0..k {
            minimum.push(Message::Inv { page: p });
            minimum.push(Message::InvAck { page: p });
        }
        if k == 0 {
            minimum.push(no_data_grant(crate::Fill::Keep));
        }
        rows.push(ScenarioCost {
            name: format!("upgrade, {k} other sharer{}", if k == 1 { "" } else { "s" }),
            measured: WireCost::of(&msgs),
            minimum: WireCost::of(&minimum),
            why_minimum: "request, then k invalidations and k acks straight to the requester (or the grant if k = 0); \
                          we add the home's grant: one control message more when k > 0",
        });
    }

    // Write miss, page modified at a third node.
    let mut b = Bench::new();
    b.access(2, PAGE, Access::Write)?;
    let msgs = b.access(REQUESTER, PAGE, Access::Write)?;
    rows.push(ScenarioCost {
        name: "write miss, page modified at another node".into(),
        measured: WireCost::of(&msgs),
        minimum: WireCost::of(&[
            get_m,
            Message::FwdGetM { page: p, requester: node(REQUESTER) },
            Message::OwnerData { page: p },
        ]),
        why_minimum: "3-hop; we add the requester's unblock to the home (no page)",
    });

    // Write miss of a never-written page: ownership moves without data.
    let mut b = Bench::new();
    let msgs = b.access(REQUESTER, FRESH_PAGE, Access::Write)?;
    rows.push(ScenarioCost {
        name: "write miss, never-written page (zero page)".into(),
        measured: WireCost::of(&msgs),
        minimum: WireCost::of(&[
            Message::GetM { page: fresh },
            Message::Grant { page: fresh, access: Access::Write, fill: crate::Fill::Zero },
        ]),
        why_minimum: "request + reply, no page needed",
    });

    // Eviction of a modified page.
    let mut b = Bench::new();
    b.access(REQUESTER, PAGE, Access::Write)?;
    let msgs = b.evict(REQUESTER, PAGE)?;
    rows.push(ScenarioCost {
        name: "eviction of a modified page".into(),
        measured: WireCost::of(&msgs),
        minimum: WireCost::of(&[Message::PutM { page: p }]),
        why_minimum: "the write-back; we add an ack so the evicting node knows when to free its frame",
    });

    Ok(rows)
}

/// The table of [`run_all`] as Markdown.
pub fn markdown_table(rows: &[ScenarioCost]) -> String {
    let mut s = String::from(
        "| event | messages | pages | bytes | minimum messages | minimum pages | minimum bytes |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        s += &format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            r.name,
            r.measured.messages,
            r.measured.pages,
            r.measured.bytes,
            r.minimum.messages,
            r.minimum.pages,
            r.minimum.bytes
        );
    }
    s += &format!(
        "\nBytes are frame payloads as encoded by `wire` (a page-carrying frame is {PAGE_FRAME_LEN} bytes).\n"
    );
    s
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    fn row<'a>(rows: &'a [ScenarioCost], name: &str) -> &'a ScenarioCost {
        rows.iter().find(|r| r.name == name).unwrap()
    }

    #[test]
    fn wire_costs_match_the_protocol_description() {
        let rows = run_all().expect("scenarios keep every invariant");
        std::println!("{}", markdown_table(&rows));
        let count = |name: &str| {
            let r = row(&rows, name);
            (r.measured.messages, r.measured.pages)
        };
        assert_eq!(count("read miss, page clean at home"), (2, 1));
        assert_eq!(count("read miss, never-written page (zero page)"), (2, 0));
        assert_eq!(count("read miss, page modified at another node"), (4, 2));
        assert_eq!(count("write miss, page modified at another node"), (4, 1));
        assert_eq!(count("write miss, never-written page (zero page)"), (2, 0));
        assert_eq!(count("eviction of a modified page"), (2, 1));
        for k in [1u32, 2, 4, 8] {
            let name = format!("write miss, {k} sharer{}", if k == 1 { "" } else { "s" });
            assert_eq!(count(&name), (2 * k + 2, 1), "{name}");
            let r = row(&rows, &name);
            assert_eq!(r.measured.messages, r.minimum.messages + 1, "{name}");
            assert_eq!(r.measured.pages, r.minimum.pages, "{name}");
        }
        for k in [0u32, 1, 2, 4, 8] {
            let name = format!("upgrade, {k} other sharer{}", if k == 1 { "" } else { "s" });
            assert_eq!(count(&name), (2 * k + 2, 0), "{name}");
            let r = row(&rows, &name);
            assert_eq!(r.measured.messages, r.minimum.messages + u32::from(k > 0), "{name}");
        }
        for r in &rows {
            assert!(r.measured.messages >= r.minimum.messages, "{}", r.name);
            assert!(r.measured.pages >= r.minimum.pages, "{}", r.name);
        }
    }
}
