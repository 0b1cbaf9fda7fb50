//! The boot chain: USB stick → OVMF → loader → kernel → banner → power-off.

use sinter_system_tests::{hw_config, parse_banner, BOOT_TIMEOUT};
use xtask::cluster::{Cluster, ClusterOptions};
use xtask::qemu::NodeExit;

#[test]
fn two_node_cluster_prints_banners_and_powers_off_cleanly() {
    let options = ClusterOptions::new(hw_config("qemu-2node.toml"));
    let mut cluster = Cluster::launch(&options).expect("cluster launches");
    let exits = cluster.wait(BOOT_TIMEOUT, &|| false);
    let config = cluster.config.config.clone();
    assert_eq!(exits.len(), 2);
    for node in &cluster.nodes {
        let log = node.console.text();
        let expected = config.node(node.id).unwrap();
        // Booted from the USB stick through OVMF, not from -kernel.
        assert!(log.contains("QEMU USB HARDDRIVE"), "node {} did not boot from the USB stick:\n{log}", node.id);
        assert!(log.contains("sinter-loader: starting"), "node {}: no loader output:\n{log}", node.id);
        let banner = node
            .console
            .lines()
            .into_iter()
            .find(|l| l.starts_with("banner:"))
            .unwrap_or_else(|| panic!("node {} printed no banner:\n{log}", node.id));
        let banner = parse_banner(&banner);
        assert_eq!(banner["node"], node.id.to_string());
        assert_eq!(banner["cluster"], "qemu-2node");
        assert_eq!(banner["mac"], expected.mac.to_string());
        // The MADT's core count is QEMU's -smp, which the config sets.
        assert_eq!(banner["cores"], expected.cores.unwrap().to_string());
        assert_eq!(banner["cores"], node.machine.cores.to_string());
        let memory: u64 = banner["memory_mib"].parse().unwrap();
        let configured = u64::from(expected.memory_mib.unwrap());
        assert!(memory > configured * 9 / 10 && memory <= configured, "usable {memory} MiB of {configured} MiB");
        assert!(log.contains("powering off (ACPI S5)"), "node {}:\n{log}", node.id);
        assert_eq!(exits[usize::from(node.id)], NodeExit::PoweredOff, "node {} QEMU exit:\n{log}", node.id);
    }
}

#[test]
fn firmware_rejects_a_node_toml_naming_no_member() {
    let mut options = ClusterOptions::new(hw_config("qemu-1node.toml"));
    options.node_toml_override = Some("node = 7\n".into());
    let mut cluster = Cluster::launch(&options).expect("cluster launches");
    let exits = cluster.wait(BOOT_TIMEOUT, &|| false);
    let log = cluster.node(0).console.text();
    assert!(
        log.contains("FATAL: \\sinter\\node.toml: `node`: node 7 is not a member of cluster `qemu-1node`"),
        "no clear report:\n{log}"
    );
    assert!(!log.contains("banner:"), "booted despite the bad config:\n{log}");
    assert_eq!(exits[0], NodeExit::FirmwareFailure, "{log}");
}

#[test]
fn firmware_rejects_a_malformed_node_toml() {
    let mut options = ClusterOptions::new(hw_config("qemu-1node.toml"));
    options.node_toml_override = Some("node = \"zero\"\nextra = [\n".into());
    let mut cluster = Cluster::launch(&options).expect("cluster launches");
    let exits = cluster.wait(BOOT_TIMEOUT, &|| false);
    let log = cluster.node(0).console.text();
    assert!(log.contains("FATAL: \\sinter\\node.toml: line"), "no clear report:\n{log}");
    assert_eq!(exits[0], NodeExit::FirmwareFailure, "{log}");
}

#[test]
fn four_node_cluster_with_e1000e_boots() {
    let options = ClusterOptions::new(hw_config("qemu-4node.toml"));
    let mut cluster = Cluster::launch(&options).expect("cluster launches");
    let exits = cluster.wait(BOOT_TIMEOUT, &|| false);
    for node in &cluster.nodes {
        let log = node.console.text();
        let banner = node.console.lines().into_iter().find(|l| l.starts_with("banner:"));
        let banner = parse_banner(&banner.unwrap_or_else(|| panic!("node {} printed no banner:\n{log}", node.id)));
        assert_eq!(banner["node"], node.id.to_string());
        assert_eq!(banner["nic"], "E1000e");
        assert_eq!(exits[usize::from(node.id)], NodeExit::PoweredOff, "node {}:\n{log}", node.id);
    }
}

#[test]
fn defmt_log_on_com2_is_decoded_against_the_kernel_elf() {
    let mut options = ClusterOptions::new(hw_config("qemu-1node.toml"));
    options.keep_run_dir = std::env::var_os("SINTER_KEEP_RUN").is_some();
    let mut cluster = Cluster::launch(&options).expect("cluster launches");
    let exits = cluster.wait(BOOT_TIMEOUT, &|| false);
    let node = cluster.node(0);
    let log = node.defmt.text();
    assert!(
        log.contains("INFO node 0 up: 2 cores in the MADT"),
        "decoded defmt log:\n{log}\nconsole:\n{}",
        node.console.text()
    );
    assert!(!log.contains("malformed"), "{log}");
    // Binary frames never leak into the text console.
    assert!(!node.console.text().contains("cores in the MADT"), "{}", node.console.text());
    assert_eq!(exits[0], NodeExit::PoweredOff);
}

#[test]
fn dropping_the_harness_mid_boot_leaves_no_qemu_behind() {
    let cluster = Cluster::launch(&ClusterOptions::new(hw_config("qemu-2node.toml"))).expect("cluster launches");
    let pids: Vec<u32> = cluster.nodes.iter().filter_map(|n| n.pid()).collect();
    assert_eq!(pids.len(), 2);
    for pid in &pids {
        assert!(std::path::Path::new(&format!("/proc/{pid}")).exists(), "QEMU {pid} should be running");
    }
    let run_dir = cluster.run_dir.clone();
    drop(cluster);
    for pid in &pids {
        // Reaped by the harness, so not even a zombie remains.
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "QEMU {pid} outlived the harness");
    }
    assert!(!run_dir.exists(), "run folder {} was not removed", run_dir.display());
}
