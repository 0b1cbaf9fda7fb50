//! Helpers shared by the whole-system tests in `tests/*.rs`. The tests boot
//! real QEMU clusters through `xtask`'s harness and assert on what the nodes
//! print and how QEMU exits; `cargo xtask test` runs them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

/// Generous bound for a TCG boot through OVMF while other tests share the
/// two cores; a boot normally takes 5–15 s.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(240);

pub fn hw_config(name: &str) -> PathBuf {
    xtask::paths::workspace_root().join("hw-configs").join(name)
}

/// Writes a copy of `hw-configs/<base>` with `extra` TOML appended (new
/// tables such as `[debug]` may follow the `[[node]]` array) and, if given,
/// every `cores = N` replaced. Returns its path in a fresh temp folder.
pub fn temp_config(base: &str, extra: &str, cores: Option<u16>) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let mut text = std::fs::read_to_string(hw_config(base)).expect("shipped config exists");
    if let Some(cores) = cores {
        text = text
            .lines()
            .map(|l| if l.starts_with("cores = ") { format!("cores = {cores}") } else { l.to_string() })
            .collect::<Vec<_>>()
            .join("\n");
    }
    text.push('\n');
    text.push_str(extra);
    let dir = std::env::temp_dir().join(format!(
        "sinter-test-config-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(base);
    std::fs::write(&path, text).expect("write temp config");
    path
}

/// Parses a `banner: key=value ...` line printed by the kernel.
pub fn parse_banner(line: &str) -> HashMap<String, String> {
    line.trim_start_matches("banner:")
        .split_whitespace()
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Clusters running the fabric, and the status tool's view of them
/// (`mgmt.rs`, `forged.rs`).
pub mod fabric {
    use std::path::PathBuf;
    use std::time::Duration;

    use sinter_mgmt::StatusReport;
    use xtask::cluster::{Cluster, ClusterOptions};
    use xtask::runstate::RunState;
    use xtask::status;

    use super::{temp_config, BOOT_TIMEOUT};

    /// Smallest transport frame: Ethernet + transport header + tag.
    pub const FRAME_OVERHEAD: u64 = 98;

    /// `qemu-2node.toml` with the fabric on, under a cluster name no other test
    /// or run uses.
    pub fn fabric_config() -> (PathBuf, String) {
        use std::sync::atomic::{AtomicU32, Ordering};
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!("fabric-test-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        let path = temp_config("qemu-2node.toml", "", None);
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("name = \"qemu-2node\"", &format!("name = \"{name}\""))
            .replace("poweroff = \"acpi\"\n", "poweroff = \"acpi\"\nfabric = true\n");
        assert!(text.contains("fabric = true"));
        std::fs::write(&path, text).unwrap();
        (path, name)
    }

    /// Boots the cluster with its status port published and waits until both
    /// nodes have formed the cluster and started their endpoints.
    pub fn formed_cluster(config: PathBuf, host_ports: usize) -> Cluster {
        let mut options = ClusterOptions::new(config);
        options.publish_run_state = true;
        options.host_ports = host_ports;
        let cluster = Cluster::launch(&options).expect("cluster launches");
        for node in &cluster.nodes {
            for prefix in ["mgmt: node", "cluster: formed"] {
                let seen = node.console.wait_for(BOOT_TIMEOUT, |l| l.starts_with(prefix));
                assert!(seen.is_some(), "node {} never printed `{prefix}`:\n{}", node.id, node.console.text());
            }
            let log = node.console.text();
            assert!(log.contains(&format!("answers status queries at 10.77.0.{}/24 udp 7700", node.id + 1)), "{log}");
        }
        cluster
    }

    /// Asks `node` until its report shows the cluster formed and every peer
    /// link settled (messages delivered, an RTT measured): the status the
    /// cluster service publishes trails the transport by a refresh or two.
    pub fn settled(state: &RunState, node: u16) -> StatusReport {
        let deadline = std::time::Instant::now() + Duration::from_secs(180);
        loop {
            let report = ask(state, node);
            let links_settled = report
                .members
                .iter()
                .filter(|m| m.node != node)
                .all(|m| m.link.is_some_and(|l| l.messages_delivered > 0 && l.srtt_us.is_some()));
            if (report.formed && links_settled) || std::time::Instant::now() >= deadline {
                return report;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// One node's report, asked alone (so that reports of several nodes can be
    /// taken in a known order).
    pub fn ask(state: &RunState, node: u16) -> StatusReport {
        let mut one = state.clone();
        one.nodes.retain(|n| n.id == node);
        let answers = status::query(&one, Duration::from_secs(120)).expect("status tool attaches");
        let answer = &answers[0];
        let report = answer.result.clone().unwrap_or_else(|why| panic!("node {node}: {why}"));
        eprint!("{}", status::format_report(&answer.node, &report));
        report
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn banner_parsing() {
        let b = super::parse_banner("banner: node=1 cluster=x cores=2 mac=52:54:00:5e:00:01");
        assert_eq!(b["node"], "1");
        assert_eq!(b["mac"], "52:54:00:5e:00:01");
        assert_eq!(b.len(), 4);
    }
}
