//! The SVM backend under QEMU TCG (`-cpu EPYC,+svm,+npt`): the firmware runs
//! a tiny 32-bit guest under VMRUN with nested paging and handles its exits
//! (`kernel/src/hv/`, `docs/hypervisor.md` "Running on QEMU").

use std::time::Duration;

use sinter_system_tests::temp_config;
use xtask::cluster::{Cluster, ClusterOptions};
use xtask::qemu::NodeExit;

/// Each boot must end well inside a minute.
const SVM_BOOT_TIMEOUT: Duration = Duration::from_secs(60);

fn boot(selftests: &[&str]) -> (String, NodeExit) {
    let list: Vec<String> = selftests.iter().map(|s| format!("\"{s}\"")).collect();
    let config = temp_config("qemu-1node.toml", &format!("[debug]\nselftests = [{}]\n", list.join(", ")), Some(1));
    let mut cluster = Cluster::launch(&ClusterOptions::new(config)).expect("cluster launches");
    let exits = cluster.wait(SVM_BOOT_TIMEOUT, &|| false);
    let log = cluster.node(0).console.text();
    // Shown with `--nocapture`: what the hypervisor reported.
    for line in log.lines().filter(|l| l.contains("svm-guest") || l.starts_with("guest ")) {
        eprintln!("console: {line}");
    }
    (log, exits[0])
}

#[test]
fn guest_runs_under_vmrun_and_every_exit_kind_is_handled() {
    let (log, exit) = boot(&["svm-guest"]);
    assert!(log.contains("guest console: hello from the guest"), "{log}");
    for kind in ["exit ioio: out port=0x3f8", "exit cpuid: leaf=0x0", "exit vmmcall: rax=0x1", "exit hlt at rip="] {
        assert!(log.contains(&format!("svm-guest: {kind}")), "no `{kind}` line:\n{log}");
    }
    assert!(log.contains("vendor \"AuthenticAMD\""), "{log}");
    // The unmapped RAM page is reported with its own GPA, as a write.
    assert!(log.contains("svm-guest: exit npf: gpa=0x400000 Write not-present"), "{log}");
    // Both MMIO accesses reach the fake device through the emulator.
    assert!(log.contains("svm-guest: exit npf (mmio): gpa=0xfeb00010 Read"), "{log}");
    assert!(log.contains("read=Some(5eedf00d)"), "{log}");
    assert!(log.contains("svm-guest: exit npf (mmio): gpa=0xfeb00000 Write"), "{log}");
    assert!(log.contains("written=Some(c0ffee)"), "{log}");
    assert!(
        log.contains("selftest svm-guest: ok: exits ioio=21 cpuid=1 npf=1 mmio=2 vmmcall=1 hlt=1"),
        "no ok line:\n{log}"
    );
    assert!(!log.contains("FAILED"), "{log}");
    assert_eq!(exit, NodeExit::PoweredOff, "{log}");
}

#[test]
fn triple_faulting_guest_is_reported_and_the_hypervisor_goes_on() {
    // The triple-fault guest runs first, then the good one on the same core.
    let (log, exit) = boot(&["svm-guest-triple-fault", "svm-guest"]);
    assert!(log.contains("guest error: shutdown (triple fault) at rip="), "{log}");
    assert!(log.contains("selftest svm-guest-triple-fault: ok: shutdown exit handled, vCPU stopped cleanly"), "{log}");
    let triple = log.find("selftest svm-guest-triple-fault: ok").unwrap();
    let good = log.find("selftest svm-guest: ok: exits ioio=21").unwrap_or_else(|| panic!("no second guest:\n{log}"));
    assert!(triple < good, "{log}");
    assert!(!log.contains("FAILED") && !log.contains("PANIC"), "{log}");
    assert_eq!(exit, NodeExit::PoweredOff, "{log}");
}

#[test]
fn npf_bench_guest_takes_one_exit_per_fault_and_reports_every_phase() {
    let (log, exit) = boot(&["svm-npf-bench"]);
    let line =
        log.lines().find_map(|l| l.strip_prefix("bench svm-npf: ")).unwrap_or_else(|| panic!("no bench line:\n{log}"));
    let fields: std::collections::HashMap<&str, u64> =
        line.split_whitespace().filter_map(|f| f.split_once('=')).map(|(k, v)| (k, v.parse().unwrap())).collect();
    assert_eq!(fields.get("iterations"), Some(&2000), "{line}");
    for phase in ["null-exit", "ram-npf", "mapped-write", "mmio-read"] {
        assert!(fields.get(phase).is_some_and(|&c| c > 0), "phase {phase} missing or zero: {line}");
    }
    // The firmware checked one RAM fault and one MMIO exit per iteration.
    assert!(log.contains("selftest svm-npf-bench: ok: iterations=2000"), "{log}");
    assert_eq!(exit, NodeExit::PoweredOff, "{log}");
}
