//! The management plane end to end on a 2-node cluster running the fabric:
//! `cargo xtask status`'s code path (the published run state, the switch's
//! status port, a smoltcp client on the host) asks each node's `mgmt`
//! service (smoltcp in the firmware on `[[node]] mgmt_ip`, fed by the `nic`
//! service's management port) for its status over ARP/IPv4/UDP, and the
//! answers agree with each other.

use std::time::{Duration, Instant};

use sinter_mgmt::MemberState;
use sinter_system_tests::fabric::{ask, fabric_config, formed_cluster, settled, FRAME_OVERHEAD};
use xtask::runstate::find_running;
use xtask::status;

#[test]
fn status_shows_both_members_with_consistent_counters() {
    let (config, name) = fabric_config();
    let cluster = formed_cluster(config, 0);
    // What a separate `cargo xtask status` process does: find the run, attach, ask.
    let state = find_running(Some(&name)).expect("the run is published");
    assert_eq!(state.nodes.len(), 2);
    settled(&state, 0);
    settled(&state, 1);
    let started = Instant::now();
    let answers = status::query(&state, Duration::from_secs(120)).expect("status tool attaches");
    eprintln!("both nodes answered in {:.1?}", started.elapsed());
    let mut epochs = [0u64; 2];
    for answer in &answers {
        let report = answer.result.as_ref().unwrap_or_else(|why| panic!("node {}: {why}", answer.node.id));
        eprint!("{}", status::format_report(&answer.node, report));
        assert_eq!(report.node_id, answer.node.id);
        assert_eq!(report.cluster, name);
        assert!(report.formed, "{report:?}");
        assert!(report.uptime_ms > 0 && report.boot_epoch != 0, "{report:?}");
        epochs[usize::from(report.node_id)] = report.boot_epoch;
        assert_eq!(report.members.iter().map(|m| m.node).collect::<Vec<_>>(), [0, 1]);
        assert!(report.mgmt.queries_answered >= 1 && report.mgmt.frames_in >= 2, "{:?}", report.mgmt);
        // Nothing forged or broken on this segment. (`replay` and
        // `no_session` may count answers to crossed handshakes at start-up.)
        let d = &report.drops;
        assert_eq!((d.malformed, d.bad_mac, d.non_member, d.wrong_cluster), (0, 0, 0, 0), "{d:?}");
    }
    // Each node knows the other's epoch as the other reports it.
    for answer in &answers {
        let report = answer.result.as_ref().unwrap();
        for m in &report.members {
            assert_eq!(m.epoch, Some(epochs[usize::from(m.node)]), "node {} on {m:?}", report.node_id);
            if m.node == report.node_id {
                assert_eq!((m.state, m.link), (MemberState::Local, None));
                continue;
            }
            assert_eq!(m.state, MemberState::Alive, "{m:?}");
            assert!(m.last_contact_ms_ago.is_some_and(|ms| ms < 60_000), "{m:?}");
            let link = m.link.expect("a peer has link stats");
            assert!(link.frames_sent > 0 && link.frames_received > 0, "{link:?}");
            assert!(link.bytes_sent >= link.frames_sent * FRAME_OVERHEAD, "{link:?}");
            assert!(link.bytes_received >= link.frames_received * FRAME_OVERHEAD, "{link:?}");
            assert!(link.messages_delivered > 0 && link.srtt_us.is_some() && link.rto_us > 0, "{link:?}");
        }
    }
    // Counters only grow, so asking node 1 before node 0: node 1 cannot have
    // received more from node 0 than node 0 had sent to it. Each answer is a
    // snapshot the node publishes every 100 ms (the transport's view every
    // 20 ms), so node 0 is asked a second later: its snapshot is then newer
    // than the one node 1 answered with.
    let one = ask(&state, 1);
    std::thread::sleep(Duration::from_secs(1));
    let zero = ask(&state, 0);
    let (from_0, to_1) = (one.members[0].link.unwrap(), zero.members[1].link.unwrap());
    assert!(from_0.frames_received <= to_1.frames_sent, "{from_0:?} vs {to_1:?}");
    assert!(from_0.bytes_received <= to_1.bytes_sent, "{from_0:?} vs {to_1:?}");
    assert!(
        one.transport.messages_delivered <= zero.transport.messages_sent,
        "{:?} vs {:?}",
        one.transport,
        zero.transport
    );
    assert!(zero.mgmt.queries_answered >= 2, "asked twice: {:?}", zero.mgmt);
    // An idle node sleeps: the fabric's services halt the core between
    // frames and timers, woken by the NIC's receive interrupt. A node whose
    // services polled would show its boot core (which runs them) halted
    // ~0 % of the time; the threshold leaves room for a host busy with the
    // other node and the test itself. The share covers a window of a
    // second, reported once the first window has ended.
    for node in [0, 1] {
        let mut report = ask(&state, node);
        let deadline = Instant::now() + Duration::from_secs(30);
        while report.cores.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(500));
            report = ask(&state, node);
        }
        let cores: Vec<u16> = report.cores.iter().map(|c| c.core).collect();
        assert_eq!(cores, [0, 1], "node {node}: {:?}", report.cores);
        for core in &report.cores {
            assert!(core.halted_permille >= 300, "node {node} core {core:?} barely halts");
        }
        assert!(report.nic_interrupts > 0, "node {node} took no NIC receive interrupt");
    }
    drop(cluster);
    let gone = find_running(Some(&name)).expect_err("no cluster after the run ends");
    assert_eq!(
        format!("{gone:#}"),
        format!("no cluster `{name}` is running (start one with `cargo xtask run --config <its config>`)")
    );
}
