//! The cluster fabric on three QEMU nodes (`hw-configs/qemu-3node.toml`:
//! virtio-net on nodes 0 and 1, e1000e on node 2): the `nic`, `transport`
//! and `cluster` services form a cluster, a node cut off by the switch is
//! reported lost by the others within twice the failure timeout, and
//! (`transport-soak`) every ordered pair of nodes exchanges 100,000
//! messages through a switch that drops, duplicates and reorders frames,
//! each delivered exactly once, in order and intact.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use sinter_system_tests::{hw_config, BOOT_TIMEOUT};
use xtask::cluster::{Cluster, ClusterOptions};

/// Writes a copy of `hw-configs/qemu-3node.toml` with the failure timeout
/// replaced and `extra` appended.
fn config(failure_timeout_ms: u64, extra: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let text = std::fs::read_to_string(hw_config("qemu-3node.toml")).expect("shipped config exists");
    assert!(text.contains("failure_timeout_ms = 1000\n"));
    let text = text.replace("failure_timeout_ms = 1000\n", &format!("failure_timeout_ms = {failure_timeout_ms}\n"))
        + "\n"
        + extra;
    let dir = std::env::temp_dir().join(format!(
        "sinter-test-cluster-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("qemu-3node.toml");
    std::fs::write(&path, text).expect("write temp config");
    path
}

fn launch(path: PathBuf) -> Cluster {
    let options = ClusterOptions::new(path);
    Cluster::launch(&options).expect("cluster launches")
}

fn wait_formed(cluster: &Cluster) {
    for n in 0..3u16 {
        let formed =
            cluster.node(n).console.wait_for(BOOT_TIMEOUT, |l| l.starts_with("cluster: formed, members=[0,1,2]"));
        assert!(formed.is_some(), "node {n} never printed `cluster: formed`:\n{}", cluster.node(n).console.text());
    }
}

/// The number after `key` in `line` (`… last contact 1043 ms ago …`).
fn number_after(line: &str, key: &str) -> Option<u64> {
    let rest = &line[line.find(key)? + key.len()..];
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

#[test]
fn three_nodes_form_a_cluster_and_report_a_cut_node_lost() {
    const TIMEOUT_MS: u64 = 1500;
    let cluster = launch(config(TIMEOUT_MS, ""));
    wait_formed(&cluster);
    for n in 0..3u16 {
        let log = cluster.node(n).console.text();
        assert!(log.contains("nic: "), "{log}");
        for peer in (0..3u16).filter(|&p| p != n) {
            assert!(log.contains(&format!("cluster: node {peer} joined")), "node {n}:\n{log}");
        }
    }
    // Cut node 2 off (both directions) and time the reports on the host.
    let cut_at = Instant::now();
    cluster.switch.set_cut(cluster.nodes[2].switch_port, true).expect("cut applies");
    for n in [0u16, 1] {
        let line = cluster
            .node(n)
            .console
            .wait_for(Duration::from_millis(20 * TIMEOUT_MS), |l| l.starts_with("cluster: node 2 lost"))
            .unwrap_or_else(|| panic!("node {n} never reported node 2 lost:\n{}", cluster.node(n).console.text()));
        let elapsed = cut_at.elapsed();
        eprintln!("node {n}: {line} ({} ms after the cut, measured on the host)", elapsed.as_millis());
        assert!(
            elapsed <= Duration::from_millis(2 * TIMEOUT_MS),
            "node {n} took {elapsed:?} to report node 2 lost; failure timeout {TIMEOUT_MS} ms"
        );
        let ago = number_after(&line, "last contact ").expect("last contact in the line");
        let last = number_after(&line, "(at ").expect("time of last contact");
        let detected = number_after(&line, "detected at ").expect("detection time");
        assert!((TIMEOUT_MS..=2 * TIMEOUT_MS).contains(&ago), "{line}");
        assert_eq!(detected - last, ago, "{line}");
        assert!(line.contains(&format!("failure timeout {TIMEOUT_MS} ms")), "{line}");
        // Only node 2 is lost.
        let log = cluster.node(n).console.text();
        assert_eq!(log.matches(" lost, last contact").count(), 1, "node {n}:\n{log}");
    }
    for n in 0..3u16 {
        let log = cluster.node(n).console.text();
        assert!(!log.contains("panicked") && !log.contains("FATAL"), "node {n}:\n{log}");
    }
}

/// Lossy links for the soak: on every port, 10% of frames dropped, 5%
/// duplicated and 5% reordered (each direction of a node's link).
const SOAK_FAULTS: &str = "drop=10,dup=5,reorder=5";

#[test]
fn transport_soak_delivers_every_message_once_in_order_through_a_lossy_switch() {
    // A long failure timeout: under the soak the heartbeats queue behind
    // the bulk traffic on a busy TCG host; this test is about delivery.
    let cluster = launch(config(20_000, "[debug]\nselftests = [\"transport-soak\"]\n"));
    for node in &cluster.nodes {
        cluster.switch.set_faults_spec(node.switch_port, SOAK_FAULTS).expect("fault spec applies");
    }
    let soak_timeout = Duration::from_secs(1500);
    for n in 0..3u16 {
        let done = cluster.node(n).console.wait_for(soak_timeout, |l| l.starts_with("selftest transport-soak:"));
        let log = cluster.node(n).console.text();
        for line in log.lines().filter(|l| l.starts_with("transport-soak") || l.starts_with("selftest transport-soak"))
        {
            eprintln!("[node {n}] {line}");
        }
        let done = done.unwrap_or_else(|| panic!("node {n} never finished the soak:\n{log}"));
        assert!(done.starts_with("selftest transport-soak: ok:"), "node {n}:\n{log}");
        for peer in (0..3u16).filter(|&p| p != n) {
            let summary =
                format!("transport-soak: from {peer}: 100000 received, 0 out of order, 0 corrupt, 0 duplicate");
            assert!(log.lines().any(|l| l == summary), "node {n} lacks `{summary}`:\n{log}");
        }
        assert!(!log.contains("panicked") && !log.contains("FATAL"), "node {n}:\n{log}");
    }
    // The switch really was lossy: it dropped and duplicated frames.
    let stats: Vec<_> =
        cluster.nodes.iter().map(|n| cluster.switch.port_stats(n.switch_port).expect("port stats")).collect();
    eprintln!("switch: {stats:#?}");
    let dropped: u64 = stats.iter().map(|s| s.dropped_fault).sum();
    let forwarded: u64 = stats.iter().map(|s| s.tx).sum();
    assert!(dropped * 20 >= forwarded, "only {dropped} of {forwarded} frames dropped: {stats:?}");
    assert!(stats.iter().all(|s| s.duplicated > 0), "{stats:?}");
}
