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
    // The receiving service slept on its ring and was woken by the sender's
    // notification, an IPI across cores.
    let line = log.lines().find(|l| l.starts_with("selftest ipc: ok")).unwrap_or_default();
    let number_before = |marker: &str| -> u64 {
        let head = &line[..line.find(marker).unwrap_or(0)];
        head.rsplit(' ').find(|w| !w.is_empty()).and_then(|w| w.trim_start_matches('(').parse().ok()).unwrap_or(0)
    };
    assert!(number_before(" times and were woken") > 0, "receivers never blocked: {line}");
    assert!(number_before(" IPIs,") > 0, "no notification IPI was sent: {line}");
    // Both ways: the boot core's executor is a wake-up target like any
    // other (a reply to its halted ping service once set the flag but sent
    // no IPI, so the service slept until the next 10 ms tick).
    assert!(number_before(" of them to core 0)") > 0, "the boot core was never woken by IPI: {line}");
    assert_eq!(exits[0], NodeExit::PoweredOff, "{log}");
}
