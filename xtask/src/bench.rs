//! `cargo xtask bench`: benchmarks that need QEMU, reported as ratios
//! against a baseline measured in the same boot.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use sinter_svm::exit::ExitReason;

use crate::cluster::{Cluster, ClusterOptions};
use crate::guest::{self, parse_summary, PlainQemuOptions};
use crate::paths::workspace_root;
use crate::qemu::NodeExit;

/// Figures the firmware printed as `bench NAME: key=value ...`.
#[derive(Debug, Clone, Default)]
pub struct BenchLines {
    pub lines: HashMap<String, HashMap<String, String>>,
}

impl BenchLines {
    pub fn parse(console: &[String]) -> Self {
        let mut lines = HashMap::new();
        for line in console {
            let Some(rest) = line.strip_prefix("bench ") else { continue };
            let Some((name, fields)) = rest.split_once(':') else { continue };
            let fields = fields
                .split_whitespace()
                .filter_map(|f| f.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            lines.insert(name.trim().to_string(), fields);
        }
        Self { lines }
    }

    pub fn number(&self, line: &str, key: &str) -> Result<u64> {
        self.lines
            .get(line)
            .and_then(|f| f.get(key))
            .with_context(|| format!("the firmware printed no `bench {line}: {key}=`"))?
            .parse()
            .with_context(|| format!("`bench {line}: {key}` is not a number"))
    }
}

/// IPC round trips (same core, cross core) against the cross-core atomic
/// ping-pong of one cache line, all in TSC cycles, from one boot.
#[derive(Debug, Clone)]
pub struct IpcFigures {
    pub same_core: (u64, u64),
    pub cross_core: (u64, u64),
    pub atomic: (u64, u64),
}

impl IpcFigures {
    pub fn cross_ratio(&self) -> f64 {
        self.cross_core.0 as f64 / self.atomic.0.max(1) as f64
    }

    pub fn same_ratio(&self) -> f64 {
        self.same_core.0 as f64 / self.atomic.0.max(1) as f64
    }
}

/// Boots one QEMU node of `qemu-1node.toml` with `cores` cores running the
/// firmware self-test `selftest`, and returns the `bench` lines it printed.
pub fn selftest_bench(cores: u16, selftest: &str) -> Result<BenchLines> {
    let base = std::fs::read_to_string(workspace_root().join("hw-configs/qemu-1node.toml"))?;
    let text = base
        .lines()
        .map(|l| if l.starts_with("cores = ") { format!("cores = {cores}") } else { l.to_string() })
        .collect::<Vec<_>>()
        .join("\n")
        + &format!("\n[debug]\nselftests = [\"{selftest}\"]\n");
    let dir = crate::paths::out_dir().join("bench");
    std::fs::create_dir_all(&dir)?;
    let config = dir.join(format!("{selftest}.toml"));
    std::fs::write(&config, text)?;
    let mut cluster = Cluster::launch(&ClusterOptions::new(&config))?;
    let exits = cluster.wait(Duration::from_secs(600), &|| false);
    let console = cluster.node(0).console.lines();
    if !exits[0].is_clean() {
        bail!("the bench boot ended {:?}:\n{}", exits[0], console.join("\n"));
    }
    Ok(BenchLines::parse(&console))
}

pub fn ipc_bench(cores: u16) -> Result<IpcFigures> {
    let bench = selftest_bench(cores, "ipc-bench")?;
    let pair = |line: &str| -> Result<(u64, u64)> {
        Ok((bench.number(line, "median_cycles")?, bench.number(line, "p99_cycles")?))
    };
    Ok(IpcFigures {
        same_core: pair("ipc same_core")?,
        cross_core: pair("ipc cross_core")?,
        atomic: pair("atomic_pingpong")?,
    })
}

/// One nested-page-fault round trip and its neighbours, in guest TSC
/// cycles per operation, from the `svm-npf-bench` test guest.
#[derive(Debug, Clone)]
pub struct NpfFigures {
    pub iterations: u64,
    /// VMMCALL that the hypervisor answers at once: the cheapest exit.
    pub null_exit: u64,
    /// First write to an unmapped RAM page: NPF, map a fresh frame, retry.
    pub ram_npf: u64,
    /// Write to a mapped page: no exit.
    pub mapped_write: u64,
    /// Read of an emulated device register: NPF, fetch, decode, emulate.
    pub mmio_read: u64,
}

impl NpfFigures {
    pub fn ratio(cycles: u64, baseline: u64) -> f64 {
        cycles as f64 / baseline.max(1) as f64
    }
}

pub fn npf_bench() -> Result<NpfFigures> {
    let bench = selftest_bench(1, "svm-npf-bench")?;
    let n = |key: &str| bench.number("svm-npf", key);
    Ok(NpfFigures {
        iterations: n("iterations")?,
        null_exit: n("null-exit")?,
        ram_npf: n("ram-npf")?,
        mapped_write: n("mapped-write")?,
        mmio_read: n("mmio-read")?,
    })
}

// ---------------------------------------------------------------- guest --

/// The firmware's per-vCPU exit statistics line (kernel/src/hv/linux/vcpu.rs).
pub const VM_EXITS_LINE: &str = "bench vm-exits:";

/// The exit reasons of a `bench vm-exits:` line, in the order it lists them.
pub fn exit_reason_names() -> Vec<&'static str> {
    ExitReason::ALL.iter().map(|r| r.name()).collect()
}

/// One vCPU's `bench vm-exits:` line: its exits by reason over its run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VcpuExits {
    pub vcpu: u32,
    /// Wall time from the vCPU's first VMRUN to the VM's stop (guest TSC).
    pub run_ms: u64,
    /// Of which waiting on the host in HLT.
    pub halted_ms: u64,
    /// Interrupts injected into the guest (not exits).
    pub injected: u64,
    /// Times the vCPU's APIC timer fired (not exits).
    pub timer_events: u64,
    /// VMRUNs, counted apart from the reasons.
    pub total: u64,
    /// (reason, exits), in the line's order.
    pub by_reason: Vec<(String, u64)>,
}

impl VcpuExits {
    /// Parses one line; `None` if it is not a `bench vm-exits:` line.
    pub fn parse(line: &str) -> Option<Result<Self>> {
        let rest = line.trim().strip_prefix(VM_EXITS_LINE)?;
        Some(Self::parse_fields(rest).with_context(|| format!("malformed line `{}`", line.trim())))
    }

    fn parse_fields(fields: &str) -> Result<Self> {
        let (mut vcpu, mut run_ms, mut halted_ms, mut total) = (None, None, None, None);
        let (mut injected, mut timer_events) = (None, None);
        let mut by_reason = Vec::new();
        for field in fields.split_whitespace() {
            let (key, value) = field.split_once('=').with_context(|| format!("`{field}` is not key=value"))?;
            let value: u64 = value.parse().with_context(|| format!("`{field}`: not a number"))?;
            match key {
                "vcpu" => vcpu = Some(u32::try_from(value)?),
                "run_ms" => run_ms = Some(value),
                "halted_ms" => halted_ms = Some(value),
                "total" => total = Some(value),
                "injected" => injected = Some(value),
                "timer_events" => timer_events = Some(value),
                reason => by_reason.push((reason.to_string(), value)),
            }
        }
        let missing = |what: &str| anyhow!("no {what}=");
        Ok(Self {
            vcpu: vcpu.ok_or_else(|| missing("vcpu"))?,
            run_ms: run_ms.ok_or_else(|| missing("run_ms"))?,
            halted_ms: halted_ms.ok_or_else(|| missing("halted_ms"))?,
            injected: injected.ok_or_else(|| missing("injected"))?,
            timer_events: timer_events.ok_or_else(|| missing("timer_events"))?,
            total: total.ok_or_else(|| missing("total"))?,
            by_reason,
        })
    }

    /// Every `bench vm-exits:` line of a console, by vCPU.
    pub fn parse_all<S: AsRef<str>>(console: &[S]) -> Result<Vec<Self>> {
        let mut all: Vec<Self> = console.iter().filter_map(|l| Self::parse(l.as_ref())).collect::<Result<_>>()?;
        all.sort_by_key(|e| e.vcpu);
        Ok(all)
    }

    pub fn count(&self, reason: &str) -> Option<u64> {
        self.by_reason.iter().find(|(r, _)| r == reason).map(|&(_, n)| n)
    }

    pub fn reason_sum(&self) -> u64 {
        self.by_reason.iter().map(|&(_, n)| n).sum()
    }

    /// `exits` over this vCPU's run, per second.
    pub fn per_second(&self, exits: u64) -> f64 {
        per_second(exits, self.run_ms)
    }
}

pub fn per_second(exits: u64, ms: u64) -> f64 {
    exits as f64 * 1000.0 / ms.max(1) as f64
}

/// Host-side wall times of one boot of the guest payload, from QEMU's
/// launch.
#[derive(Debug, Clone, Copy)]
pub struct BootTimes {
    /// To the workload's first line (`workload: nproc=...`).
    pub first_workload_line: Duration,
    /// To the workload's `N passed, N failed`.
    pub summary_line: Duration,
    /// To QEMU's exit.
    pub total: Duration,
}

/// The guest benchmark: the same payload booted under Sinter (one node)
/// and on plain QEMU with the same vCPUs and RAM, in one run.
#[derive(Debug, Clone)]
pub struct GuestFigures {
    pub vcpus: u16,
    pub memory_mib: u32,
    pub sinter: BootTimes,
    /// Sinter only: to `vm: starting the guest` (OVMF, the loader, the
    /// firmware's boot, loading the guest).
    pub sinter_guest_start: Duration,
    pub plain: BootTimes,
    pub plain_command: String,
    pub kernel: String,
    /// The vCPUs' exit statistics from the Sinter boot.
    pub exits: Vec<VcpuExits>,
    /// How long each workload check took (from the previous check's line,
    /// the first from the first workload line): (name, Sinter, plain).
    pub checks: Vec<(String, Duration, Duration)>,
}

/// Each `check NAME: ...` line's time since the previous one (the first:
/// since the first `workload:` line), in console order.
pub fn check_durations<'a>(timed: impl IntoIterator<Item = (Duration, &'a str)>) -> Vec<(String, Duration)> {
    let mut last = None;
    let mut out = Vec::new();
    for (at, line) in timed {
        if last.is_none() && line.starts_with("workload:") {
            last = Some(at);
        }
        if let Some(name) = line.strip_prefix("check ").and_then(|r| r.split_once(": ")).map(|(n, _)| n) {
            out.push((name.to_string(), at.saturating_sub(last.unwrap_or(at))));
            last = Some(at);
        }
    }
    out
}

impl GuestFigures {
    pub fn ratio(sinter: Duration, plain: Duration) -> f64 {
        sinter.as_secs_f64() / plain.as_secs_f64().max(1e-3)
    }

    /// Sinter from the guest's start, i.e. without the firmware's own boot.
    pub fn sinter_from_guest_start(&self, at: Duration) -> Duration {
        at.saturating_sub(self.sinter_guest_start)
    }

    /// The longest vCPU run (vCPU 0 runs from the guest's start to its end).
    pub fn vm_run_ms(&self) -> u64 {
        self.exits.iter().map(|e| e.run_ms).max().unwrap_or(0)
    }
}

/// `vm: starting the guest: N vCPUs, M MiB, ...` as (N, M).
pub fn parse_guest_start(line: &str) -> Option<(u16, u32)> {
    let rest = line.strip_prefix("vm: starting the guest: ")?;
    let mut parts = rest.split(", ");
    let vcpus = parts.next()?.strip_suffix(" vCPUs")?.parse().ok()?;
    let mib = parts.next()?.strip_suffix(" MiB")?.parse().ok()?;
    Some((vcpus, mib))
}

/// The node's `-cpu` without the SVM flags: the CPU model a plain-QEMU
/// guest should get to compare with the guest under Sinter (which sees
/// that model, SVM hidden).
pub fn plain_cpu_model(node_cpu: &str) -> String {
    node_cpu.split(',').filter(|f| !matches!(*f, "+svm" | "+npt" | "svm=on" | "npt=on")).collect::<Vec<_>>().join(",")
}

/// Boots the guest payload under Sinter (`qemu-1node.toml`), then on plain
/// QEMU with the vCPUs and RAM the firmware gave the guest and the node's
/// CPU model, and returns both boots' timings and the Sinter boot's exit
/// statistics.
pub fn guest_bench() -> Result<GuestFigures> {
    let payload = guest::prepare()?;
    let config = workspace_root().join("hw-configs/qemu-1node.toml");
    let node_cpu = crate::images::load_config(&config)?.config.qemu.map_or_else(|| "EPYC".to_string(), |q| q.cpu);
    let mut options = ClusterOptions::new(config);
    options.payload = guest::sinter_payload(&payload)?;
    let mut cluster = Cluster::launch(&options)?;
    let exits = cluster.wait(Duration::from_secs(900), &|| false);
    let ended = Instant::now();
    let node = cluster.node(0);
    let timed = node.console.timed_lines();
    let started = node.started;
    let log = || timed.iter().map(|(_, l)| l.as_str()).collect::<Vec<_>>().join("\n");
    if exits[0] != NodeExit::PoweredOff {
        bail!("the Sinter boot ended {:?}:\n{}", exits[0], log());
    }
    let at = |pred: &dyn Fn(&str) -> bool, what: &str| -> Result<Duration> {
        timed
            .iter()
            .find(|(_, l)| pred(l))
            .map(|(t, _)| t.saturating_duration_since(started))
            .ok_or_else(|| anyhow!("the Sinter boot printed no {what}:\n{}", log()))
    };
    let (vcpus, memory_mib) = timed
        .iter()
        .find_map(|(_, l)| parse_guest_start(l))
        .ok_or_else(|| anyhow!("the Sinter boot never started the guest:\n{}", log()))?;
    match timed.iter().find_map(|(_, l)| parse_summary(l)) {
        Some((passed, 0)) if passed > 0 => {}
        other => bail!("the workload under Sinter did not pass ({other:?}):\n{}", log()),
    }
    let sinter = BootTimes {
        first_workload_line: at(&|l| l.starts_with("workload:"), "workload line")?,
        summary_line: at(&|l| parse_summary(l).is_some(), "summary")?,
        total: ended.saturating_duration_since(started),
    };
    let sinter_guest_start = at(&|l| l.starts_with("vm: starting the guest"), "guest start")?;
    let lines: Vec<&str> = timed.iter().map(|(_, l)| l.as_str()).collect();
    let vm_exits = VcpuExits::parse_all(&lines)?;
    if vm_exits.len() != usize::from(vcpus) {
        bail!("{} `{VM_EXITS_LINE}` lines for {vcpus} vCPUs:\n{}", vm_exits.len(), log());
    }
    drop(cluster);

    let mut plain_options = PlainQemuOptions::new(vcpus, memory_mib);
    plain_options.cpu = plain_cpu_model(&node_cpu);
    plain_options.timeout = Duration::from_secs(600);
    let plain = guest::boot_plain_qemu_with(&payload, &plain_options)?;
    if !plain.is_clean() {
        bail!("the plain QEMU boot was not clean ({:?}):\n{}", plain.exit, plain.log());
    }
    let missing = || anyhow!("the plain QEMU boot lacks a workload line:\n{}", plain.log());
    let sinter_checks = check_durations(timed.iter().map(|(t, l)| (t.saturating_duration_since(started), l.as_str())));
    let plain_checks = check_durations(plain.lines.iter().filter(|l| !l.from_qemu).map(|l| (l.at, l.text.as_str())));
    let checks = sinter_checks
        .into_iter()
        .filter_map(|(name, s)| {
            let p = plain_checks.iter().find(|(n, _)| *n == name)?.1;
            Some((name, s, p))
        })
        .collect();
    Ok(GuestFigures {
        vcpus,
        memory_mib,
        sinter,
        sinter_guest_start,
        plain: BootTimes {
            first_workload_line: plain.first_workload_line.ok_or_else(missing)?,
            summary_line: plain.summary_line.ok_or_else(missing)?,
            total: plain.total,
        },
        plain_command: plain.command,
        kernel: payload.kernel_source.to_string(),
        exits: vm_exits,
        checks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vm_exit_lines() {
        let console = [
            "vcpu 1: stopped after 7 exits",
            "bench vm-exits: vcpu=1 run_ms=900 halted_ms=450 injected=2 timer_events=1 total=7 ioio=4 hlt=3",
            "bench vm-exits: vcpu=0 run_ms=1000 halted_ms=10 injected=3 timer_events=2 total=5 ioio=2 npf-lapic=3",
        ];
        let all = VcpuExits::parse_all(&console).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!((all[0].vcpu, all[0].run_ms, all[0].halted_ms, all[0].total), (0, 1000, 10, 5));
        assert_eq!((all[0].injected, all[0].timer_events), (3, 2));
        assert_eq!(all[0].by_reason, vec![("ioio".to_string(), 2), ("npf-lapic".to_string(), 3)]);
        assert_eq!(all[0].reason_sum(), 5);
        assert_eq!(all[1].count("hlt"), Some(3));
        assert_eq!(all[1].count("cpuid"), None);
        assert_eq!(all[0].per_second(3), 3.0);
        assert!(VcpuExits::parse_all(&["bench vm-exits: vcpu=0 total=x"]).is_err());
        assert!(VcpuExits::parse_all(&["bench vm-exits: vcpu=0 total=3"]).is_err(), "run_ms missing");
        assert!(VcpuExits::parse("bench other: vcpu=0").is_none());
    }

    #[test]
    fn reason_names_are_the_firmware_ones() {
        let names = exit_reason_names();
        assert_eq!(names.first(), Some(&"ioio"));
        assert!(names.contains(&"npf-lapic") && names.contains(&"vintr") && names.contains(&"other"));
    }

    #[test]
    fn check_durations_count_from_the_previous_check() {
        let s = Duration::from_secs;
        let lines = [
            (s(1), "init: running"),
            (s(2), "workload: nproc=2"),
            (s(3), "workload: memtotal_kib=1"),
            (s(5), "check a: ok"),
            (s(9), "check b: FAILED x"),
            (s(10), "2 passed, 0 failed"),
        ];
        assert_eq!(check_durations(lines), vec![("a".to_string(), s(3)), ("b".to_string(), s(4))]);
    }

    #[test]
    fn plain_cpu_drops_the_svm_flags() {
        assert_eq!(plain_cpu_model("EPYC,+svm,+npt"), "EPYC");
        assert_eq!(plain_cpu_model("EPYC-Rome,+svm,-xsave"), "EPYC-Rome,-xsave");
    }

    #[test]
    fn guest_start_line() {
        let line = "vm: starting the guest: 2 vCPUs, 768 MiB, cmdline \"console=ttyS0 quiet panic=-1\"";
        assert_eq!(parse_guest_start(line), Some((2, 768)));
        assert_eq!(parse_guest_start("vm: starting the guest: two vCPUs, 768 MiB"), None);
    }

    #[test]
    fn parses_firmware_bench_lines() {
        let console = vec![
            "noise".to_string(),
            "bench ipc same_core: core=0 round_trips=100000 median_cycles=962 p99_cycles=1066".to_string(),
            "bench atomic_pingpong: cores=0->1 median_cycles=200 p99_cycles=400".to_string(),
        ];
        let b = BenchLines::parse(&console);
        assert_eq!(b.number("ipc same_core", "median_cycles").unwrap(), 962);
        assert_eq!(b.number("atomic_pingpong", "p99_cycles").unwrap(), 400);
        assert!(b.number("ipc cross_core", "median_cycles").is_err());
    }
}

/// `cargo xtask bench --only nic`, one boot: raw frames against transport
/// messages through the fabric of a 2-node cluster (self-test `nic-bench`).
/// The three round-trip kinds ran interleaved in blocks in that boot.
#[derive(Debug, Clone)]
pub struct NicFigures {
    pub model: String,
    pub loss_percent: u8,
    pub tsc_mhz: u64,
    /// Median and p99 round trip, cycles: the raw 4 KiB ping-pong (3 frames,
    /// 4096 payload bytes; node 1 answers once all three arrived). The
    /// baseline of the ratio.
    pub raw_rtt: (u64, u64),
    pub raw_resends: u64,
    /// Median and p99 round trip, cycles: the same burst, each frame echoed
    /// as it arrives (echoes overlap the burst). For reference only.
    pub raw_pipelined_rtt: (u64, u64),
    pub raw_pipelined_resends: u64,
    /// Median and p99 round trip, cycles: one 4096-byte message.
    pub msg_rtt: (u64, u64),
    /// Raw 1400-byte frames received per second, of those sent.
    pub raw_frames_per_s: u64,
    pub raw_received: u64,
    pub raw_sent: u64,
    /// 4096-byte messages delivered per second.
    pub msg_per_s: u64,
    /// The same two rates over node 1's time from the first to the last
    /// arrival: what the path carried (the ratio uses these).
    pub raw_receiver_frames_per_s: u64,
    pub msg_receiver_per_s: u64,
    /// Data frames node 0's transport sent again during the run (from its
    /// status line after the run; `None` if it printed none).
    pub retransmitted: Option<u64>,
}

impl NicFigures {
    /// The figures of node 0's console of a `nic-bench` boot.
    pub fn parse(model: &str, loss_percent: u8, console: &[String]) -> Result<Self> {
        let bench = BenchLines::parse(console);
        let pair = |line: &str| -> Result<(u64, u64)> {
            Ok((bench.number(line, "median_cycles")?, bench.number(line, "p99_cycles")?))
        };
        Ok(NicFigures {
            model: model.to_string(),
            loss_percent,
            tsc_mhz: tsc_mhz(console).context("the kernel printed no `cpu: tsc_mhz=`")?,
            raw_rtt: pair("nic raw_rtt")?,
            raw_resends: bench.number("nic raw_rtt", "resends")?,
            raw_pipelined_rtt: pair("nic raw_pipelined_rtt")?,
            raw_pipelined_resends: bench.number("nic raw_pipelined_rtt", "resends")?,
            msg_rtt: pair("nic msg_rtt")?,
            raw_frames_per_s: bench.number("nic raw_oneway", "frames_per_s")?,
            raw_received: bench.number("nic raw_oneway", "received")?,
            raw_sent: bench.number("nic raw_oneway", "sent")?,
            msg_per_s: bench.number("nic msg_oneway", "messages_per_s")?,
            raw_receiver_frames_per_s: bench.number("nic raw_oneway", "receiver_frames_per_s")?,
            msg_receiver_per_s: bench.number("nic msg_oneway", "receiver_messages_per_s")?,
            retransmitted: retransmitted_after_run(console),
        })
    }

    pub fn us(&self, cycles: u64) -> f64 {
        cycles as f64 / self.tsc_mhz.max(1) as f64
    }

    /// 4 KiB message round trip ÷ raw 4 KiB ping-pong (the target ratio).
    pub fn rtt_ratio(&self) -> f64 {
        self.msg_rtt.0 as f64 / self.raw_rtt.0.max(1) as f64
    }

    /// 4 KiB message round trip ÷ raw pipelined echo (for reference).
    pub fn pipelined_ratio(&self) -> f64 {
        self.msg_rtt.0 as f64 / self.raw_pipelined_rtt.0.max(1) as f64
    }

    /// Payload rate of messages ÷ payload rate of raw frames, both as
    /// node 1 received them.
    pub fn goodput_ratio(&self) -> f64 {
        (self.msg_receiver_per_s * 4096) as f64 / (self.raw_receiver_frames_per_s * 1400).max(1) as f64
    }
}

/// `N retransmitted` from node 0's `nic-bench: status after the run:` line.
fn retransmitted_after_run(console: &[String]) -> Option<u64> {
    let line = console.iter().find_map(|l| l.strip_prefix("nic-bench: status after the run: "))?;
    let before = line.split(" retransmitted").next()?;
    before.rsplit(' ').next()?.parse().ok()
}

/// Median of `values` (the lower middle one for an even count); `None` if empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len().saturating_sub(1) / 2).copied()
}

/// The TSC frequency the kernel printed (`cpu: tsc_mhz=…`).
fn tsc_mhz(console: &[String]) -> Option<u64> {
    let line = console.iter().find(|l| l.starts_with("cpu: tsc_mhz="))?;
    line["cpu: tsc_mhz=".len()..].split_whitespace().next()?.parse().ok()
}

/// Boots 2 nodes with `nic` and the fabric, `loss_percent` dropped on both
/// links, and runs the `nic-bench` self-test.
pub fn nic_bench(nic: &str, loss_percent: u8) -> Result<NicFigures> {
    let base = std::fs::read_to_string(workspace_root().join("hw-configs/qemu-2node.toml"))?;
    let text = base
        .replace("poweroff = \"acpi\"\n", "poweroff = \"acpi\"\nfabric = true\n")
        .replace("nic = \"virtio-net\"", &format!("nic = \"{nic}\""))
        + "\n[debug]\nselftests = [\"nic-bench\"]\n";
    let dir = crate::paths::out_dir().join("bench");
    std::fs::create_dir_all(&dir)?;
    let config = dir.join(format!("nic-{nic}-loss{loss_percent}.toml"));
    std::fs::write(&config, text)?;
    let cluster = Cluster::launch(&ClusterOptions::new(&config))?;
    if loss_percent > 0 {
        for node in &cluster.nodes {
            cluster
                .switch
                .set_faults_spec(node.switch_port, &format!("drop={loss_percent}"))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    let console = &cluster.node(0).console;
    let end =
        console.wait_for(Duration::from_secs(900), |l| l.starts_with("selftest nic-bench:") && !l.contains("echoing"));
    let lines = console.lines();
    match end {
        Some(line) if line.contains(": ok") => {}
        Some(line) => bail!("{line}"),
        None => bail!("the nic bench did not finish in 900 s:\n{}", lines.join("\n")),
    }
    NicFigures::parse(nic, loss_percent, &lines)
}

#[cfg(test)]
mod nic_tests {
    use super::*;

    #[test]
    fn nic_bench_lines_and_ratios() {
        // Node 0's lines as the firmware prints them (a 1 % loss run).
        let console: Vec<String> = [
            "cpu: tsc_mhz=2000 lapic_timer_mhz=1000",
            "selftest nic-bench: node 1 echoing",
            "bench nic raw_rtt: rounds=300 blocks=30 bytes=4096 frames=3 answer=after_burst median_cycles=1000 p99_cycles=3000 resends=2",
            "bench nic raw_pipelined_rtt: rounds=300 blocks=30 bytes=4096 frames=3 answer=per_frame median_cycles=800 p99_cycles=2000 resends=1",
            "bench nic msg_rtt: rounds=300 blocks=30 bytes=4096 median_cycles=2500 p99_cycles=9000",
            "bench nic raw_oneway: passes=2 sent=12000 received=9000 frame_bytes=1400 ns=3000000000 frames_per_s=3000 receiver_us=2000000 receiver_frames_per_s=4500",
            "bench nic msg_oneway: passes=2 sent=4000 delivered=4000 message_bytes=4096 ns=8000000000 messages_per_s=500 receiver_us=5000000 receiver_messages_per_s=800",
            "nic-bench: status after the run: node 0 epoch 0x1 formed=true members: 0=local; transport: 13192 frames sent, 173 retransmitted, 321 delivered",
            "selftest nic-bench: ok",
        ]
        .map(String::from)
        .to_vec();
        let f = NicFigures::parse("virtio-net", 1, &console).unwrap();
        assert_eq!((f.model.as_str(), f.loss_percent, f.tsc_mhz), ("virtio-net", 1, 2000));
        assert_eq!((f.raw_rtt, f.raw_resends), ((1000, 3000), 2));
        assert_eq!((f.raw_pipelined_rtt, f.raw_pipelined_resends), ((800, 2000), 1));
        assert_eq!(f.msg_rtt, (2500, 9000));
        assert_eq!((f.raw_frames_per_s, f.raw_received, f.raw_sent, f.msg_per_s), (3000, 9000, 12000, 500));
        assert_eq!(f.retransmitted, Some(173));
        // The target ratio is against the 4 KiB ping-pong, not the pipelined echo.
        assert_eq!(f.rtt_ratio(), 2.5);
        assert_eq!(f.pipelined_ratio(), 3.125);
        assert_eq!(f.us(1000), 0.5);
        assert_eq!((f.raw_receiver_frames_per_s, f.msg_receiver_per_s), (4500, 800));
        // The payload ratio is taken from node 1's arrival rates.
        assert!((f.goodput_ratio() - (800.0 * 4096.0) / (4500.0 * 1400.0)).abs() < 1e-9);
        // A console without the pipelined line (an older firmware) is refused.
        let old: Vec<String> = console.iter().filter(|l| !l.contains("raw_pipelined_rtt")).cloned().collect();
        let err = NicFigures::parse("virtio-net", 1, &old).unwrap_err();
        assert!(err.to_string().contains("nic raw_pipelined_rtt"), "{err}");
        let no_status: Vec<String> = console.iter().filter(|l| !l.starts_with("nic-bench:")).cloned().collect();
        assert_eq!(NicFigures::parse("virtio-net", 1, &no_status).unwrap().retransmitted, None);
    }

    #[test]
    fn median_takes_the_middle_value_and_the_lower_middle_of_an_even_count() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.0));
        assert_eq!(median(&[]), None);
    }
}
