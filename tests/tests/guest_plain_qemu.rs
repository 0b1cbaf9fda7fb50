//! The guest payload (stock Debian kernel, busybox initramfs, sinter-workload)
//! booted on plain QEMU with TCG, no Sinter involved: the baseline that
//! Sinter's own runs of the same payload are compared against.

use std::time::Duration;

use xtask::guest::{self, PlainQemuOptions, Source};
use xtask::qemu::NodeExit;

/// The checks sinter-workload runs, in order.
const CHECKS: [&str; 5] = ["atomic_counter", "mutex_counter", "spinlock_counter", "sb_litmus_mfence", "memory_fill"];

#[test]
fn debian_kernel_runs_the_workload_on_plain_qemu() {
    let payload = guest::prepare().expect("guest payload");
    let Source::Debian(kernel_package) = &payload.kernel_source else {
        panic!("the test boots Debian's kernel, not {}", payload.kernel_source);
    };
    let mut options = PlainQemuOptions::new(2, 1024);
    options.timeout = Duration::from_secs(300);
    let run = guest::boot_plain_qemu_with(&payload, &options).expect("QEMU starts");
    let log = run.log();

    // The kernel that ran is the one the package resolved to.
    let abi = kernel_package.name.trim_start_matches("linux-image-");
    assert!(
        run.console().any(|l| l == format!("init: running /bin/sinter-workload on {abi}")),
        "the guest did not run {kernel_package}:\n{log}"
    );
    assert!(!run.kernel_panicked(), "kernel panic:\n{log}");

    assert_eq!(run.workload_value("nproc").as_deref(), Some("2"), "{log}");
    let memtotal_kib: u64 = run.workload_value("memtotal_kib").and_then(|v| v.parse().ok()).expect("memtotal_kib");
    // 1024 MiB minus what firmware and kernel keep: plausible is 800..1024 MiB.
    assert!((800 * 1024..=1024 * 1024).contains(&memtotal_kib), "MemTotal {memtotal_kib} KiB:\n{log}");

    let checks = run.checks();
    let names: Vec<&str> = checks.iter().map(|(name, _, _)| name.as_str()).collect();
    assert_eq!(names, CHECKS, "{log}");
    for (name, ok, detail) in &checks {
        assert!(ok, "check {name} failed: {detail}\n{log}");
    }
    assert_eq!(run.summary(), Some((CHECKS.len() as u32, 0)), "{log}");
    assert!(run.console().any(|l| l == "init: sinter-workload exited with status 0"), "{log}");
    assert_eq!(run.exit, NodeExit::PoweredOff, "QEMU did not exit 0 after poweroff -f:\n{log}");

    let first = run.first_workload_line.expect("first workload line time");
    let summary = run.summary_line.expect("summary line time");
    assert!(first < summary && summary <= run.total, "{first:?} {summary:?} {:?}", run.total);
    eprintln!(
        "plain QEMU baseline ({kernel_package}, -smp 2 -m 1024): first workload line {:.1} s, \
         `N passed` {:.1} s, QEMU exit {:.1} s",
        first.as_secs_f64(),
        summary.as_secs_f64(),
        run.total.as_secs_f64()
    );
}

/// The same path reports a failing check: the kernel command line reaches
/// the workload through init's environment, and a memory check given
/// nothing to fill fails, shows as FAILED and in the summary, and makes the
/// workload exit 1 (init still powers off).
#[test]
fn a_failing_check_shows_in_the_console_and_summary() {
    let payload = guest::prepare().expect("guest payload");
    let mut options = PlainQemuOptions::new(2, 512);
    options.timeout = Duration::from_secs(300);
    options.extra_append = "WORKLOAD_MEM_MAX_MIB=0 WORKLOAD_SB_ITERATIONS=1000".into();
    let run = guest::boot_plain_qemu_with(&payload, &options).expect("QEMU starts");
    let log = run.log();
    let failed: Vec<_> = run.checks().into_iter().filter(|(_, ok, _)| !ok).collect();
    assert_eq!(failed.len(), 1, "{log}");
    assert_eq!(failed[0].0, "memory_fill", "{log}");
    assert!(failed[0].2.contains("nothing to fill"), "{log}");
    assert!(run.console().any(|l| l.starts_with("workload: sb_litmus_mfence: 1000 runs")), "{log}");
    assert_eq!(run.summary(), Some((CHECKS.len() as u32 - 1, 1)), "{log}");
    assert!(run.console().any(|l| l == "init: sinter-workload exited with status 1"), "{log}");
    assert_eq!(run.exit, NodeExit::PoweredOff, "{log}");
    assert!(!run.is_clean());
}
