//! `cargo xtask bench`: benchmarks that need QEMU, reported as ratios
//! against a baseline measured in the same boot.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::cluster::{Cluster, ClusterOptions};
use crate::paths::workspace_root;

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

#[cfg(test)]
mod tests {
    use super::*;

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
#[derive(Debug, Clone)]
pub struct NicFigures {
    pub model: String,
    pub loss_percent: u8,
    pub tsc_mhz: u64,
    /// Median and p99 round trip, cycles: 3 raw frames (4096 payload bytes).
    pub raw_rtt: (u64, u64),
    pub raw_resends: u64,
    /// Median and p99 round trip, cycles: one 4096-byte message.
    pub msg_rtt: (u64, u64),
    /// Raw 1400-byte frames received per second, of those sent.
    pub raw_frames_per_s: u64,
    pub raw_received: u64,
    pub raw_sent: u64,
    /// 4096-byte messages delivered per second.
    pub msg_per_s: u64,
}

impl NicFigures {
    pub fn us(&self, cycles: u64) -> f64 {
        cycles as f64 / self.tsc_mhz.max(1) as f64
    }

    /// 4 KiB message round trip ÷ 4 KiB-equivalent raw round trip.
    pub fn rtt_ratio(&self) -> f64 {
        self.msg_rtt.0 as f64 / self.raw_rtt.0.max(1) as f64
    }

    /// Payload rate of messages ÷ payload rate of raw frames.
    pub fn goodput_ratio(&self) -> f64 {
        (self.msg_per_s * 4096) as f64 / (self.raw_frames_per_s * 1400).max(1) as f64
    }
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
    let bench = BenchLines::parse(&lines);
    let pair = |line: &str| -> Result<(u64, u64)> {
        Ok((bench.number(line, "median_cycles")?, bench.number(line, "p99_cycles")?))
    };
    Ok(NicFigures {
        model: nic.to_string(),
        loss_percent,
        tsc_mhz: tsc_mhz(&lines).context("the kernel printed no `cpu: tsc_mhz=`")?,
        raw_rtt: pair("nic raw_rtt")?,
        raw_resends: bench.number("nic raw_rtt", "resends")?,
        msg_rtt: pair("nic msg_rtt")?,
        raw_frames_per_s: bench.number("nic raw_oneway", "frames_per_s")?,
        raw_received: bench.number("nic raw_oneway", "received")?,
        raw_sent: bench.number("nic raw_oneway", "sent")?,
        msg_per_s: bench.number("nic msg_oneway", "messages_per_s")?,
    })
}

#[cfg(test)]
mod nic_tests {
    use super::*;

    #[test]
    fn nic_bench_lines_and_ratios() {
        let console: Vec<String> = [
            "cpu: tsc_mhz=2000 lapic_timer_mhz=1000",
            "bench nic raw_rtt: rounds=300 bytes=4096 frames=3 median_cycles=1000 p99_cycles=3000 resends=2",
            "bench nic msg_rtt: rounds=300 bytes=4096 median_cycles=2500 p99_cycles=9000",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(tsc_mhz(&console), Some(2000));
        let b = BenchLines::parse(&console);
        assert_eq!(b.number("nic raw_rtt", "resends").unwrap(), 2);
        let f = NicFigures {
            model: "virtio-net".into(),
            loss_percent: 0,
            tsc_mhz: 2000,
            raw_rtt: (1000, 3000),
            raw_resends: 2,
            msg_rtt: (2500, 9000),
            raw_frames_per_s: 3000,
            raw_received: 6000,
            raw_sent: 6000,
            msg_per_s: 500,
        };
        assert_eq!(f.rtt_ratio(), 2.5);
        assert_eq!(f.us(1000), 0.5);
        assert!((f.goodput_ratio() - (500.0 * 4096.0) / (3000.0 * 1400.0)).abs() < 1e-9);
    }
}
