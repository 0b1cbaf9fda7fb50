//! The firmware's own NIC drivers: node 0 sends 1000 raw frames through its
//! NIC and the harness switch to node 1, which echoes each one; every frame
//! and echo is checked (`selftest nic-ping`). Once with virtio-net, once
//! with e1000e, and once with the switch dropping frames, where the
//! self-test's retransmissions must still get every frame through.

use sinter_switch::PortStats;
use sinter_system_tests::{temp_config, BOOT_TIMEOUT};
use xtask::cluster::{Cluster, ClusterOptions};
use xtask::qemu::NodeExit;

const SELFTEST: &str = "[debug]\nselftests = [\"nic-ping\"]\n";

struct Run {
    logs: [String; 2],
    stats: [PortStats; 2],
}

fn ping(base: &str, faults: Option<&str>) -> Run {
    let mut options = ClusterOptions::new(temp_config(base, SELFTEST, None));
    options.nodes = Some(2);
    let mut cluster = Cluster::launch(&options).expect("cluster launches");
    if let Some(spec) = faults {
        for node in &cluster.nodes {
            cluster.switch.set_faults_spec(node.switch_port, spec).expect("fault spec applies");
        }
    }
    let exits = cluster.wait(BOOT_TIMEOUT, &|| false);
    let logs = [cluster.node(0).console.text(), cluster.node(1).console.text()];
    let stats = [0, 1].map(|n| cluster.switch.port_stats(cluster.nodes[n].switch_port).expect("port stats"));
    for (n, log) in logs.iter().enumerate() {
        for line in log.lines().filter(|l| l.starts_with("nic:") || l.starts_with("selftest nic-ping")) {
            eprintln!("[node {n}] {line}");
        }
    }
    eprintln!("switch: {:?}\nswitch: {:?}", stats[0], stats[1]);
    for (n, exit) in exits.iter().enumerate() {
        assert_eq!(*exit, NodeExit::PoweredOff, "node {n}:\n{}", logs[n]);
    }
    for log in &logs {
        assert!(!log.contains("FAILED"), "{log}");
        assert!(!log.contains("MAC mismatch"), "{log}");
    }
    assert!(
        logs[0].contains("selftest nic-ping: ok: 1000 frames to 52:54:00:5e:00:01 echoed back and checked"),
        "{}",
        logs[0]
    );
    assert!(logs[1].contains("selftest nic-ping: ok: echoed 1000 of 1000 frames"), "{}", logs[1]);
    // Node 0 sent at least 1000 requests and got 1000 echoes through the
    // switch; node 1 the reverse.
    assert!(stats[0].rx >= 1000 && stats[0].tx >= 1000, "{:?}", stats[0]);
    assert!(stats[1].rx >= 1000 && stats[1].tx >= 1000, "{:?}", stats[1]);
    Run { logs, stats }
}

/// The number just before `marker` in the `selftest nic-ping: ok` line.
fn number_before(log: &str, marker: &str) -> u64 {
    let line = log.lines().find(|l| l.starts_with("selftest nic-ping: ok")).unwrap_or_default();
    let head = &line[..line.find(marker).unwrap_or(0)];
    head.rsplit([' ', '(']).find(|w| !w.is_empty()).and_then(|w| w.parse().ok()).unwrap_or(u64::MAX)
}

#[test]
fn virtio_net_nodes_exchange_1000_checked_frames() {
    let run = ping("qemu-2node.toml", None);
    for (n, mac) in ["52:54:00:5e:00:00", "52:54:00:5e:00:01"].iter().enumerate() {
        assert!(
            run.logs[n].contains(&format!("mac {mac} (matches the config)")) && run.logs[n].contains("nic: VirtioNet"),
            "{}",
            run.logs[n]
        );
    }
    assert_eq!(run.stats[0].dropped_fault + run.stats[1].dropped_fault, 0);
}

#[test]
fn e1000e_nodes_exchange_1000_checked_frames() {
    let run = ping("qemu-4node.toml", None);
    for (n, mac) in ["52:54:00:5e:00:00", "52:54:00:5e:00:01"].iter().enumerate() {
        assert!(
            run.logs[n].contains("nic: E1000e 8086:10d3")
                && run.logs[n].contains(&format!("mac {mac} (matches the config)")),
            "{}",
            run.logs[n]
        );
    }
}

#[test]
fn nic_ping_survives_a_lossy_switch() {
    let run = ping("qemu-2node.toml", Some("drop=10"));
    let dropped = run.stats[0].dropped_fault + run.stats[1].dropped_fault;
    assert!(dropped >= 50, "the switch dropped only {dropped} frames: {:?}", run.stats);
    let retransmits = number_before(&run.logs[0], " retransmissions");
    assert!(retransmits >= 50 && retransmits != u64::MAX, "{}", run.logs[0]);
    // Lost echoes make node 1 see requests again.
    assert!(number_before(&run.logs[1], " repeats") > 0, "{}", run.logs[1]);
}
