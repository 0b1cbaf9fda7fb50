//! The acceptance test of the single-node hypervisor: the firmware boots
//! the unmodified Debian kernel with the busybox initramfs and
//! sinter-workload under Sinter's own SVM backend (nested paging, 2 vCPUs
//! on the node's 2 cores, 2048 MiB of guest RAM from `qemu-1node.toml`),
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
const GUEST_RAM_MIB: u64 = 2048;
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
    assert!(log.contains(&format!("vm: starting the guest: 2 vCPUs, {GUEST_RAM_MIB} MiB")), "{log}");
    assert!(log.contains("vcpu 1: running on core 1"), "the second vCPU never got its SIPI:\n{log}");
    assert!(!log.contains("Kernel panic"), "guest kernel panic:\n{log}");
    assert!(!log.contains("guest error") && !log.contains("PANIC"), "{log}");

    assert_eq!(workload_value(&lines, "nproc").as_deref(), Some("2"), "{log}");
    let memtotal_kib: u64 = workload_value(&lines, "memtotal_kib").and_then(|v| v.parse().ok()).expect("memtotal_kib");
    let configured_kib = GUEST_RAM_MIB * 1024;
    // Linux 6.1 keeps ~60 MiB for itself (kernel image, `struct page`s), so
    // MemTotal is below what was configured, and within 5% of it.
    assert!(
        memtotal_kib <= configured_kib && memtotal_kib * 100 >= configured_kib * 95,
        "MemTotal {memtotal_kib} KiB for {configured_kib} KiB configured:\n{log}"
    );

    for name in CHECKS {
        assert!(lines.contains(&format!("check {name}: ok").as_str()), "check {name} did not pass:\n{log}");
    }
    // The guest's own count of IPIs received per CPU: rescheduling IPIs
    // reached both vCPUs, and function-call / TLB-shootdown IPIs were taken.
    let ipis = |name: &str| -> Vec<u64> {
        let prefix = format!("workload: interrupts {name}: ");
        let row = lines.iter().find_map(|l| l.strip_prefix(&prefix)).unwrap_or_else(|| panic!("no {name} row:\n{log}"));
        row.split_whitespace().map(|n| n.parse().expect("count")).collect()
    };
    let res = ipis("RES");
    assert!(res.len() == 2 && res.iter().all(|&n| n > 0), "rescheduling IPIs per CPU {res:?}:\n{log}");
    let cal_tlb: u64 = ipis("CAL").iter().chain(ipis("TLB").iter()).sum();
    assert!(cal_tlb > 0, "no function-call or TLB-shootdown IPI was taken:\n{log}");
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

/// `qemu-1node.toml` with `extra` appended to the guest command line and
/// `hypervisor` lines added to its `[hypervisor]` section, in a temp dir.
fn variant_config(tag: &str, extra: &str, hypervisor: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(hw_config("qemu-1node.toml")).expect("config");
    let cmdline = "cmdline = \"console=ttyS0 quiet\"";
    assert!(text.contains(cmdline) && text.contains("[hypervisor]\n"), "qemu-1node.toml changed its shape");
    let text = text
        .replace(cmdline, &format!("cmdline = \"console=ttyS0 quiet {extra}\""))
        .replace("[hypervisor]\n", &format!("[hypervisor]\n{hypervisor}"));
    let dir = std::env::temp_dir().join(format!("sinter-guest-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("qemu-1node.toml");
    std::fs::write(&config, text).expect("temp config");
    config
}

/// Boots the Debian payload on `config`; returns the console and how the node ended.
fn boot_guest(config: std::path::PathBuf) -> (String, NodeExit) {
    let payload = guest::prepare().expect("guest payload");
    let mut options = ClusterOptions::new(config);
    options.payload = guest::sinter_payload(&payload).expect("payload files");
    let mut cluster = Cluster::launch(&options).expect("cluster launches");
    let exits = cluster.wait(GUEST_TIMEOUT, &|| false);
    (cluster.node(0).console.text(), exits[0])
}

/// A guest that resets (here: its kernel panics, having no init and no root file system, and
/// `panic=-1` reboots through the keyboard controller) ends the node's
/// run with a failing status and a clear report, not a hang or a success.
#[test]
fn a_guest_reset_ends_the_run_with_a_clear_failure() {
    let (log, exit) = boot_guest(variant_config("reset", "rdinit=/sinter-no-such-init", ""));
    assert!(log.contains("Kernel panic - not syncing"), "the guest kernel did not panic:\n{log}");
    assert!(log.contains("vm: guest requested a reset"), "{log}");
    assert!(log.contains("vm: guest reset; this node ends its run"), "{log}");
    assert!(!log.contains("vm: guest powered off"), "{log}");
    assert_eq!(exit, NodeExit::FirmwareFailure, "{log}");
}

/// A guest kernel that triple-faults: Linux's `reboot=t` restarts by
/// loading an empty IDT and raising `int3`, which the panic (no init,
/// `panic=-1`) sets off. The vCPU's SHUTDOWN exit is reported and the node
/// ends its run with a failing status; the hypervisor itself carries on to
/// a clean end.
#[test]
fn a_triple_faulting_guest_kernel_is_reported_and_the_node_ends_cleanly() {
    let (log, exit) = boot_guest(variant_config("triple", "rdinit=/sinter-no-such-init reboot=t", ""));
    assert!(log.contains("Kernel panic - not syncing"), "the guest kernel did not panic:\n{log}");
    assert!(log.contains("vm: guest triple fault (shutdown) on vCPU"), "no triple-fault report:\n{log}");
    assert!(log.contains("vm: guest reset; this node ends its run"), "{log}");
    assert!(!log.contains("vm: guest requested a reset"), "the guest reset another way:\n{log}");
    assert!(!log.contains("PANIC"), "{log}");
    assert_eq!(exit, NodeExit::FirmwareFailure, "{log}");
}

/// A guest program reads guest-physical space with nothing behind it
/// (through `/dev/mem`): with the default `[hypervisor] unbacked_mmio =
/// "stop"` the access is reported with its address and the VM stops; the
/// node ends with a failure status instead of crashing or hanging.
#[test]
fn a_guest_touching_unbacked_mmio_is_reported_and_stopped() {
    let (log, exit) = boot_guest(variant_config("unbacked", "WORKLOAD_MISBEHAVE=unbacked-mmio", ""));
    assert!(log.contains("workload: misbehave: reading unbacked guest-physical 0xfeb00000"), "{log}");
    assert!(
        log.contains("guest error: access to unbacked guest-physical address gpa=0xfeb00000 (Read"),
        "no report of the unbacked access:\n{log}"
    );
    assert!(log.contains("vm: guest failed; this node ends its run"), "{log}");
    assert!(!log.contains("the hypervisor let the guest go on"), "{log}");
    assert!(!log.contains("PANIC"), "{log}");
    assert_eq!(exit, NodeExit::FirmwareFailure, "{log}");
}

/// With `unbacked_mmio = "all-ones"` a plain read of unbacked space reads
/// all ones and the guest goes on; an SSE load from it is an MMIO
/// instruction the emulator does not support: reported with its bytes and
/// mnemonic, and the VM stops cleanly.
#[test]
fn an_unsupported_mmio_instruction_is_reported_and_stopped() {
    let config = variant_config("sse-mmio", "WORKLOAD_MISBEHAVE=unsupported-mmio", "unbacked_mmio = \"all-ones\"\n");
    let (log, exit) = boot_guest(config);
    assert!(log.contains("workload: misbehave: plain read of 0xfeb00000 gave 0xffffffff"), "{log}");
    assert!(log.contains("workload: misbehave: 16-byte SSE load (movdqu) from 0xfeb00000"), "{log}");
    let report = log
        .lines()
        .find(|l| l.contains("guest error: MMIO at gpa=0xfeb00000"))
        .unwrap_or_else(|| panic!("no report of the unsupported instruction:\n{log}"));
    assert!(report.contains("(Movdqu)") && report.contains("Unsupported"), "{report}");
    assert!(log.contains("vm: guest failed; this node ends its run"), "{log}");
    assert!(!log.contains("movdqu gave"), "{log}");
    assert!(!log.contains("PANIC"), "{log}");
    assert_eq!(exit, NodeExit::FirmwareFailure, "{log}");
}
