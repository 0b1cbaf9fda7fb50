//! The acceptance test of the single-node hypervisor: the firmware boots
//! the unmodified Debian kernel with the busybox initramfs and
//! sinter-workload under Sinter's own SVM backend (nested paging, 2 vCPUs
//! on the node's 2 cores, 768 MiB of guest RAM from `qemu-1node.toml`),
//! and the guest powers the node off through ACPI S5. The same boot's
//! per-vCPU exit statistics (`bench vm-exits:`) are checked for shape.

use std::time::{Duration, Instant};

use sinter_system_tests::hw_config;
use xtask::bench::{exit_reason_names, VcpuExits};
use xtask::cluster::{Cluster, ClusterOptions};
use xtask::guest::{self, parse_summary, PlainQemuOptions};
use xtask::qemu::NodeExit;

/// TCG running a guest under nested SVM: generous (a run takes about a
/// minute on an idle machine; the fenced store-buffer test is sensitive
/// to host load).
const GUEST_TIMEOUT: Duration = Duration::from_secs(900);
const GUEST_RAM_MIB: u64 = 768;
const CHECKS: [&str; 5] = ["atomic_counter", "mutex_counter", "spinlock_counter", "sb_litmus_mfence", "memory_fill"];

fn workload_value(lines: &[&str], key: &str) -> Option<String> {
    let prefix = format!("workload: {key}=");
    lines.iter().find_map(|l| l.strip_prefix(&prefix).map(|v| v.trim().to_string()))
}

#[test]
fn debian_guest_runs_the_workload_under_sinter_and_powers_off() {
    let config = hw_config("qemu-1node.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    assert!(text.contains(&format!("memory_mib = {GUEST_RAM_MIB}")), "qemu-1node.toml changed its guest RAM");
    let payload = guest::prepare().expect("guest payload");
    let mut options = ClusterOptions::new(config);
    options.payload = guest::sinter_payload(&payload).expect("payload files");
    let start = Instant::now();
    let mut cluster = Cluster::launch(&options).expect("cluster launches");
    let exits = cluster.wait(GUEST_TIMEOUT, &|| false);
    let elapsed = start.elapsed();
    let log = cluster.node(0).console.text();
    drop(cluster);
    let lines: Vec<&str> = log.lines().map(str::trim_end).collect();

    // The hypervisor started the guest with the configured shape.
    assert!(log.contains("vm: starting the guest: 2 vCPUs, 768 MiB"), "{log}");
    assert!(log.contains("vcpu 1: running on core 1"), "the second vCPU never got its SIPI:\n{log}");
    assert!(!log.contains("Kernel panic"), "guest kernel panic:\n{log}");
    assert!(!log.contains("guest error") && !log.contains("PANIC"), "{log}");

    assert_eq!(workload_value(&lines, "nproc").as_deref(), Some("2"), "{log}");
    let memtotal_kib: u64 = workload_value(&lines, "memtotal_kib").and_then(|v| v.parse().ok()).expect("memtotal_kib");
    let configured_kib = GUEST_RAM_MIB * 1024;
    // Linux 6.1 keeps ~60 MiB of 768 for itself (kernel image, struct
    // pages): plain QEMU -m 768 reports 723,424 KiB on this payload. So
    // MemTotal must be below what was configured and within 10% of it.
    assert!(
        memtotal_kib <= configured_kib && memtotal_kib * 10 >= configured_kib * 9,
        "MemTotal {memtotal_kib} KiB for {configured_kib} KiB configured:\n{log}"
    );

    for name in CHECKS {
        assert!(lines.contains(&format!("check {name}: ok").as_str()), "check {name} did not pass:\n{log}");
    }
    assert_eq!(lines.iter().find_map(|l| parse_summary(l)), Some((CHECKS.len() as u32, 0)), "{log}");
    assert!(lines.contains(&"init: sinter-workload exited with status 0"), "{log}");
    assert!(log.contains("vm: guest requested ACPI S5 (power off) on vCPU"), "{log}");
    assert!(log.contains("vm: guest powered off; the node powers off"), "{log}");
    assert_eq!(exits[0], NodeExit::PoweredOff, "{log}");

    // Exit statistics (what `cargo xtask bench --only guest` reads): one
    // line per vCPU, every reason listed, the reasons adding up to the
    // VMRUNs counted apart from them. No figures are asserted.
    let stats = VcpuExits::parse_all(&lines).expect("well-formed `bench vm-exits:` lines");
    assert_eq!(stats.iter().map(|e| e.vcpu).collect::<Vec<_>>(), [0, 1], "{log}");
    for e in &stats {
        let names: Vec<&str> = e.by_reason.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(names, exit_reason_names(), "vCPU {}: {log}", e.vcpu);
        assert!(e.total > 0, "vCPU {} counted no exits", e.vcpu);
        assert_eq!(e.reason_sum(), e.total, "vCPU {}: reasons do not add up to the total: {e:?}", e.vcpu);
        // Both vCPUs take interrupts (each acknowledges with an EOI write
        // to its xAPIC page) and idle in HLT; a clean run has no shutdown.
        assert!(e.count("npf-lapic") > Some(0) && e.count("hlt") > Some(0), "{e:?}");
        assert_eq!(e.count("shutdown"), Some(0), "{e:?}");
        assert!(e.halted_ms <= e.run_ms, "{e:?}");
    }
    // The boot processor printed the guest's console through the UART.
    assert!(stats[0].count("ioio") > Some(0), "{:?}", stats[0]);
    eprintln!("Sinter run: MemTotal {memtotal_kib} KiB of {configured_kib} KiB, node ended after {elapsed:.1?}");

    // The same payload on plain QEMU with the same RAM: Sinter must give
    // the guest as much usable memory (within 1%).
    let mut plain = PlainQemuOptions::new(2, GUEST_RAM_MIB as u32);
    plain.timeout = Duration::from_secs(300);
    let run = guest::boot_plain_qemu_with(&payload, &plain).expect("plain QEMU starts");
    let plain_kib: u64 = run.workload_value("memtotal_kib").and_then(|v| v.parse().ok()).expect("plain memtotal");
    assert!(
        memtotal_kib.abs_diff(plain_kib) * 100 <= plain_kib,
        "MemTotal under Sinter {memtotal_kib} KiB, on plain QEMU {plain_kib} KiB"
    );
    eprintln!("plain QEMU -m {GUEST_RAM_MIB}: MemTotal {plain_kib} KiB");
}

/// A guest that resets (here: its kernel panics, having no init and no root file system, and
/// `panic=-1` reboots through the keyboard controller) ends the node's
/// run with a failing status and a clear report, not a hang or a success.
#[test]
fn a_guest_reset_ends_the_run_with_a_clear_failure() {
    let text = std::fs::read_to_string(hw_config("qemu-1node.toml")).expect("config");
    let cmdline = "cmdline = \"console=ttyS0 quiet\"";
    assert!(text.contains(cmdline), "qemu-1node.toml changed its command line");
    let text = text.replace(cmdline, "cmdline = \"console=ttyS0 quiet rdinit=/sinter-no-such-init\"");
    let dir = std::env::temp_dir().join(format!("sinter-guest-reset-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("qemu-1node.toml");
    std::fs::write(&config, text).expect("temp config");

    let payload = guest::prepare().expect("guest payload");
    let mut options = ClusterOptions::new(config);
    options.payload = guest::sinter_payload(&payload).expect("payload files");
    let mut cluster = Cluster::launch(&options).expect("cluster launches");
    let exits = cluster.wait(GUEST_TIMEOUT, &|| false);
    let log = cluster.node(0).console.text();
    assert!(log.contains("Kernel panic - not syncing"), "the guest kernel did not panic:\n{log}");
    assert!(log.contains("vm: guest requested a reset"), "{log}");
    assert!(log.contains("vm: guest reset; this node ends its run"), "{log}");
    assert!(!log.contains("vm: guest powered off"), "{log}");
    assert_eq!(exits[0], NodeExit::FirmwareFailure, "{log}");
}
