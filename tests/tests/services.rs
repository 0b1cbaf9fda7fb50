//! Services run on the per-core executor under a supervisor that follows the
//! config's `[service.NAME] on_panic` policy.

use sinter_system_tests::{temp_config, BOOT_TIMEOUT};
use xtask::cluster::{Cluster, ClusterOptions};
use xtask::qemu::NodeExit;

#[test]
fn panicking_service_is_reported_by_name_and_restarted() {
    let config = temp_config(
        "qemu-1node.toml",
        "[debug]\nselftests = [\"service-panic\"]\n\n[service.selftest-panic]\non_panic = \"restart\"\nmax_restarts = 2\n",
        None,
    );
    let mut cluster = Cluster::launch(&ClusterOptions::new(config)).expect("cluster launches");
    let exits = cluster.wait(BOOT_TIMEOUT, &|| false);
    let log = cluster.node(0).console.text();
    assert!(
        log.contains("sinter: service `selftest-panic` (core 0, generation 0) panicked: index out of bounds"),
        "no named panic report:\n{log}"
    );
    assert!(log.contains("supervisor: restarting `selftest-panic` (restart 1 of 2, generation 1)"), "{log}");
    assert!(log.contains("selftest service-panic: generation 1 running after restart"), "{log}");
    assert!(log.contains("selftest service-panic: ok"), "{log}");
    assert_eq!(exits[0], NodeExit::PoweredOff, "{log}");
}

#[test]
fn halt_policy_stops_the_node_cleanly_with_the_report() {
    let config = temp_config(
        "qemu-1node.toml",
        "[debug]\nselftests = [\"service-panic\"]\n\n[service.selftest-panic]\non_panic = \"halt\"\n",
        None,
    );
    let mut cluster = Cluster::launch(&ClusterOptions::new(config)).expect("cluster launches");
    let exits = cluster.wait(BOOT_TIMEOUT, &|| false);
    let log = cluster.node(0).console.text();
    assert!(log.contains("service `selftest-panic` (core 0, generation 0) panicked"), "{log}");
    assert!(log.contains("supervisor: halting the node: service `selftest-panic`: PolicyIsHalt"), "{log}");
    assert!(!log.contains("running after restart"), "{log}");
    assert_eq!(exits[0], NodeExit::FirmwareFailure, "{log}");
}
