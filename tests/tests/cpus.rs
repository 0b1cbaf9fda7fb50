//! CPU bring-up: every core in the MADT comes online on its own stack and
//! tables, clocks are calibrated, interrupts arrive (LAPIC timer on every
//! core, IPIs, an IOAPIC-routed PIT), and an exception in kernel code is
//! reported with a symbolized backtrace before the node halts.

use std::collections::HashMap;
use std::path::PathBuf;

use sinter_system_tests::{hw_config, parse_banner, BOOT_TIMEOUT};
use xtask::cluster::{Cluster, ClusterOptions};
use xtask::qemu::NodeExit;

/// `qemu-1node.toml` with `cores` changed and an optional `[debug]`
/// section, written to a temporary file.
struct TempConfig(PathBuf);

impl TempConfig {
    fn new(name: &str, cores: u16, selftests: &[&str]) -> Self {
        let base = std::fs::read_to_string(hw_config("qemu-1node.toml")).expect("reading qemu-1node.toml");
        assert!(base.contains("cores = 2"), "qemu-1node.toml changed shape");
        let mut text = base.replace("cores = 2", &format!("cores = {cores}"));
        if !selftests.is_empty() {
            let list: Vec<String> = selftests.iter().map(|s| format!("\"{s}\"")).collect();
            text.push_str(&format!("\n[debug]\nselftests = [{}]\n", list.join(", ")));
        }
        let path = std::env::temp_dir().join(format!("sinter-cpus-{}-{name}.toml", std::process::id()));
        std::fs::write(&path, text).expect("writing the temporary config");
        Self(path)
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Boots one node; returns its console lines and how QEMU ended.
fn boot(name: &str, cores: u16, selftests: &[&str]) -> (Vec<String>, NodeExit) {
    let config = TempConfig::new(name, cores, selftests);
    let mut cluster = Cluster::launch(&ClusterOptions::new(&config.0)).expect("cluster launches");
    let exits = cluster.wait(BOOT_TIMEOUT, &|| false);
    (cluster.node(0).console.lines(), exits[0])
}

fn line<'a>(lines: &'a [String], prefix: &str) -> &'a str {
    lines.iter().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no `{prefix}` line:\n{}", lines.join("\n")))
}

fn number(fields: &HashMap<String, String>, key: &str) -> u64 {
    fields.get(key).unwrap_or_else(|| panic!("no {key}= in {fields:?}")).parse().unwrap()
}

/// Boots with `cores` cores and checks everything bring-up reports.
fn all_cores_come_online(cores: u16) {
    let (lines, exit) = boot(&format!("smp{cores}"), cores, &[]);
    let log = lines.join("\n");

    let banner = parse_banner(line(&lines, "banner:"));
    assert_eq!(banner["cores"], cores.to_string(), "{log}");
    assert_eq!(banner["cores_online"], cores.to_string(), "{log}");

    // TSC calibrated against the ACPI PM timer. Under TCG the guest TSC is
    // the host's, so only a plausible range can be asserted; the LAPIC
    // timer, measured against that TSC, must come out at QEMU's fixed
    // 1 GHz / 16, which checks the TSC figure against QEMU's virtual clock.
    let cpu = parse_banner(line(&lines, "cpu:").trim_start_matches("cpu:"));
    let tsc_mhz = number(&cpu, "tsc_mhz");
    assert!((200..=10_000).contains(&tsc_mhz), "tsc_mhz={tsc_mhz}\n{log}");
    let lapic_mhz = number(&cpu, "lapic_timer_mhz");
    assert!((55..=70).contains(&lapic_mhz), "lapic_timer_mhz={lapic_mhz} (expected 62.5)\n{log}");
    assert_eq!(cpu["reference"], "acpi-pm-timer");
    assert_eq!(cpu["apic"], "xapic", "QEMU TCG has no x2APIC");

    // Every core takes its periodic timer, every AP got the test IPI, and
    // nothing unexpected arrived.
    let cores_line = line(&lines, "cores:");
    let summary = parse_banner(cores_line.trim_start_matches("cores:"));
    assert_eq!(number(&summary, "online"), u64::from(cores), "{cores_line}");
    assert_eq!(summary["all_ticking"], "true", "{cores_line}");
    assert_eq!(number(&summary, "unexpected_irqs"), 0, "{cores_line}");
    assert_eq!(number(&summary, "apic_errors"), 0, "{cores_line}");
    let mut apic_ids = Vec::new();
    for index in 0..cores {
        let record = summary.get(&format!("core{index}")).unwrap_or_else(|| panic!("no core{index}: {cores_line}"));
        let fields: HashMap<&str, u64> =
            record.split(',').filter_map(|kv| kv.split_once(':')).map(|(k, v)| (k, v.parse().unwrap())).collect();
        assert!(fields["ticks"] >= 1, "core {index} took no timer interrupt: {cores_line}");
        if index > 0 {
            assert!(fields["ipis"] >= 1, "core {index} got no IPI: {cores_line}");
        }
        apic_ids.push(fields["apic"]);
    }
    apic_ids.sort_unstable();
    apic_ids.dedup();
    assert_eq!(apic_ids.len(), usize::from(cores), "cores share an APIC id: {cores_line}");

    // The PIT, routed through the IOAPIC (ISA IRQ 0 → GSI 2 by QEMU's
    // source override), interrupts the boot core.
    let ioapic = line(&lines, "ioapic:");
    assert!(ioapic.contains("isa_irq0 -> gsi 2"), "{ioapic}");
    let delivered: u64 = ioapic.split("delivered=").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!(delivered >= 10, "{ioapic}");

    assert!(!lines.iter().any(|l| l.starts_with("warning:")), "the kernel warned:\n{log}");
    assert_eq!(exit, NodeExit::PoweredOff, "{log}");
}

#[test]
fn two_cores_come_online_with_calibrated_clocks() {
    all_cores_come_online(2);
}

#[test]
fn four_cores_come_online_and_take_interrupts() {
    all_cores_come_online(4);
}

/// The backtrace lines of an exception report, in order.
fn frames(lines: &[String]) -> Vec<&str> {
    lines.iter().filter(|l| l.starts_with("  frame #")).map(String::as_str).collect()
}

#[test]
fn page_fault_in_kernel_code_is_reported_with_symbols_and_halts() {
    let (lines, exit) = boot("page-fault", 2, &["page-fault"]);
    let log = lines.join("\n");
    assert!(log.contains("sinter: EXCEPTION #PF (page fault) on core 0 (apic id 0)"), "{log}");
    assert!(log.contains("  error_code=0x2 (write, page not present, kernel mode)"), "{log}");
    assert!(log.contains("  cr2=0x00007e57deadb000 (faulting address)"), "{log}");
    for register in ["rip=", "rsp=", "rflags=", "cs=0x0008", "ss=0x0010", "cr3=", "rax=", "rbp=", "r15="] {
        assert!(log.contains(register), "no {register} in the report:\n{log}");
    }
    let frames = frames(&lines);
    assert!(frames.len() >= 4, "{log}");
    // Raw address, then the symbol from the kernel ELF and the source line.
    assert!(
        frames[0].starts_with("  frame #0: 0xffffffff8")
            && frames[0].contains(" sinter_kernel::arch::selftest::page_fault_inner+0x")
            && frames[0].contains("(kernel/src/arch/selftest.rs:"),
        "{log}"
    );
    let rip = frames[0].split_whitespace().nth(2).unwrap();
    assert!(log.contains(&format!("rip={rip} ")), "frame #0 is not rip:\n{log}");
    assert!(frames[1].contains(" sinter_kernel::arch::selftest::page_fault_outer+0x"), "{log}");
    assert!(frames[2].contains(" sinter_kernel::arch::selftest::run_requested+0x"), "{log}");
    assert!(frames.last().unwrap().contains(" kernel_entry+0x"), "the walk stops at the entry point:\n{log}");
    assert!(!log.contains("backtrace ends:"), "the chain ends cleanly at rbp = 0:\n{log}");
    assert!(log.contains("sinter: node stopped by an exception"), "{log}");
    assert!(!log.contains("powering off"), "{log}");
    assert_eq!(exit, NodeExit::FirmwareFailure, "{log}");
}

#[test]
fn page_fault_on_an_application_processor_names_its_core() {
    let (lines, exit) = boot("page-fault-ap", 2, &["page-fault-ap"]);
    let log = lines.join("\n");
    assert!(log.contains("sinter: EXCEPTION #PF (page fault) on core 1 (apic id 1)"), "{log}");
    assert!(log.contains("  cr2=0x00007e57deadb000"), "{log}");
    let frames = frames(&lines);
    assert!(frames[0].contains(" sinter_kernel::arch::selftest::page_fault_inner+0x"), "{log}");
    assert!(frames[1].contains(" sinter_kernel::arch::selftest::page_fault_outer+0x"), "{log}");
    // The fault ran in a service on the AP's executor: the chain is walked
    // on the service's own stack up to where the executor started the task.
    assert!(frames.last().unwrap().contains(" sinter_kernel::exec::"), "{log}");
    assert!(!log.contains("backtrace ends:"), "{log}");
    assert_eq!(exit, NodeExit::FirmwareFailure, "{log}");
}

#[test]
fn stack_overflow_is_caught_on_the_double_fault_stack() {
    let (lines, exit) = boot("stack-overflow", 2, &["stack-overflow"]);
    let log = lines.join("\n");
    // The #PF on the guard page cannot be delivered on the dead stack; the
    // #DF handler runs on its IST stack and still reports.
    assert!(log.contains("sinter: EXCEPTION #DF (double fault) on core 0 (apic id 0)"), "{log}");
    let frames = frames(&lines);
    assert!(frames.len() > 10, "{log}");
    assert!(frames.iter().skip(1).all(|f| f.contains(" sinter_kernel::arch::selftest::recurse+0x")), "{log}");
    assert!(log.contains("  backtrace ends: stopped after 48 frames"), "{log}");
    assert_eq!(exit, NodeExit::FirmwareFailure, "{log}");
}
