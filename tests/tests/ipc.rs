//! IPC between services on different cores: typed messages over SPSC rings
//! and frame grants, every payload checked by the firmware itself.

use sinter_system_tests::{temp_config, BOOT_TIMEOUT};
use xtask::cluster::{Cluster, ClusterOptions};
use xtask::qemu::NodeExit;

#[test]
fn services_on_core_0_and_core_1_exchange_messages_and_grants() {
    let config = temp_config("qemu-1node.toml", "[debug]\nselftests = [\"ipc\"]\n", Some(2));
    let mut cluster = Cluster::launch(&ClusterOptions::new(config)).expect("cluster launches");
    let exits = cluster.wait(BOOT_TIMEOUT, &|| false);
    let log = cluster.node(0).console.text();
    assert!(
        log.contains(
            "selftest ipc: ok: 100000 messages and 10000 grants between core 0 and core 1, every payload checked"
        ),
        "{log}"
    );
    assert!(!log.contains("FAILED"), "{log}");
    assert_eq!(exits[0], NodeExit::PoweredOff, "{log}");
}
