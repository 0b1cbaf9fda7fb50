//! The management plane end to end: `cargo xtask status`'s code path (the
//! published run state, the switch's status port, a smoltcp client on the
//! host) asks each node's management endpoint (smoltcp in the firmware, on
//! `[[node]] mgmt_ip`) for its status over ARP/IPv4/UDP.

use std::time::{Duration, Instant};

use sinter_mgmt::MemberState;
use sinter_system_tests::{temp_config, BOOT_TIMEOUT};
use xtask::cluster::{Cluster, ClusterOptions};
use xtask::runstate::find_running;
use xtask::status;

/// A cluster name no other test or run uses.
fn unique_config(extra: &str) -> (std::path::PathBuf, String) {
    let name = format!("mgmt-test-{}", std::process::id());
    let path = temp_config("qemu-2node.toml", extra, None);
    let text = std::fs::read_to_string(&path).unwrap().replace("name = \"qemu-2node\"", &format!("name = \"{name}\""));
    std::fs::write(&path, text).unwrap();
    (path, name)
}

#[test]
fn status_reaches_each_nodes_management_endpoint() {
    let (config, name) = unique_config("[debug]\nselftests = [\"mgmt-direct\"]\n");
    let mut options = ClusterOptions::new(config);
    options.publish_run_state = true;
    let cluster = Cluster::launch(&options).expect("cluster launches");
    for node in &cluster.nodes {
        let line = node.console.wait_for(BOOT_TIMEOUT, |l| l.starts_with("mgmt: node") || l.contains("FAILED"));
        let line =
            line.unwrap_or_else(|| panic!("node {} never started its endpoint:\n{}", node.id, node.console.text()));
        assert!(line.contains("answers status queries at 10.77.0."), "{line}");
    }
    // What a separate `cargo xtask status` process does: find the run, attach, ask.
    let state = find_running(Some(&name)).expect("the run is published");
    assert_eq!(state.nodes.len(), 2);
    let started = Instant::now();
    let answers = status::query(&state, Duration::from_secs(120)).expect("status tool attaches");
    eprintln!("status answered in {:.1?}", started.elapsed());
    for answer in &answers {
        let report = answer.result.as_ref().unwrap_or_else(|why| panic!("node {}: {why}", answer.node.id));
        eprint!("{}", status::format_report(&answer.node, report));
        assert_eq!(report.node_id, answer.node.id);
        assert_eq!(report.cluster, name);
        assert!(report.uptime_ms > 0);
        assert_eq!(report.members.len(), 2);
        for member in &report.members {
            let expected = if member.node == report.node_id { MemberState::Local } else { MemberState::Unknown };
            assert_eq!(member.state, expected, "{member:?}");
        }
        assert!(report.mgmt.queries_answered >= 1, "{:?}", report.mgmt);
        assert!(report.mgmt.frames_in >= 2, "an ARP request and a query at least: {:?}", report.mgmt);
    }
    // A second tool run re-attaches to the same port and is answered again.
    let again = status::query(&state, Duration::from_secs(120)).expect("status tool attaches again");
    assert!(again.iter().all(|a| a.result.as_ref().is_ok_and(|r| r.mgmt.queries_answered >= 2)), "{again:?}");
    drop(cluster);
    let gone = find_running(Some(&name)).expect_err("no cluster after the run ends");
    assert_eq!(
        format!("{gone:#}"),
        format!("no cluster `{name}` is running (start one with `cargo xtask run --config <its config>`)")
    );
}
