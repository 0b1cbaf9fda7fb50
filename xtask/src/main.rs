//! `cargo xtask`: Sinter's build tool. See `cargo xtask --help`.

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use xtask::cluster::{Cluster, ClusterOptions};
use xtask::paths::{default_config, out_dir, resolve_config, workspace_root};
use xtask::{build, images, prereq};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Build, boot and test Sinter")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write one bootable USB-stick image per node of a config.
    Image {
        #[arg(long, default_value_os_t = default_config())]
        config: PathBuf,
        /// Output folder (default: target/sinter/images).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Build the images and boot one QEMU per node, joined by the switch.
    Run {
        #[arg(long, default_value_os_t = default_config())]
        config: PathBuf,
        /// Boot only the first N nodes.
        #[arg(long)]
        nodes: Option<usize>,
        /// Give up (and stop every node) after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
        /// Fault injection on every node's link, e.g. "drop=10,dup=5,delay=2ms".
        #[arg(long)]
        faults: Option<String>,
    },
    /// Print the status of every node of a running cluster (started by
    /// `cargo xtask run`), asked over the management plane.
    Status {
        /// The cluster's config (default: the only cluster running).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Seconds to wait for every node's answer.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// Run every host test, then the QEMU integration tests.
    Test {
        /// Only the host tests (no QEMU).
        #[arg(long)]
        host_only: bool,
        /// Extra arguments for the system tests' harness (a test name filter).
        filter: Vec<String>,
    },
    /// rustfmt, clippy (host and bare-metal targets), dependency licences/advisories.
    Lint,
    /// Benchmarks, each reported as a ratio to a baseline from the same run.
    Bench {
        /// Only this benchmark: `coherence`, `ipc`, `npf`, `nic` or `guest`.
        #[arg(long)]
        only: Option<String>,
    },
    /// Check the prerequisites and say what is missing.
    Doctor,
    /// Prepare the guest payload (Debian kernel + busybox initramfs running
    /// sinter-workload) and print where it is; `--boot` also boots it on
    /// plain QEMU (TCG, no Sinter) and prints the timings.
    Guest {
        #[arg(long)]
        boot: bool,
        #[arg(long, default_value_t = 2)]
        smp: u16,
        #[arg(long, default_value_t = 1024)]
        memory_mib: u32,
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Image { config, out } => image(config, out),
        Cmd::Run { config, nodes, timeout, faults } => run(config, nodes, timeout, faults),
        Cmd::Status { config, timeout } => status(config, timeout),
        Cmd::Test { host_only, filter } => test(host_only, &filter),
        Cmd::Lint => lint(),
        Cmd::Bench { only } => bench(only.as_deref()),
        Cmd::Doctor => doctor(),
        Cmd::Guest { boot, smp, memory_mib, timeout } => guest(boot, smp, memory_mib, timeout),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, no backtrace: the message says what to do.
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn image(config: PathBuf, out: Option<PathBuf>) -> Result<()> {
    prereq::ensure_targets()?;
    let config = images::load_config(&resolve_config(&config))?;
    let firmware = build::build_firmware(&[])?;
    let out = out.unwrap_or_else(|| out_dir().join("images"));
    let written = images::write_images(&config, &firmware, &Vec::new(), None, &out)?;
    println!("{} image(s) for cluster `{}` in {}", written.len(), config.config.cluster.name, out.display());
    for image in written {
        println!(
            "  node {}: {}   (write with: sudo dd if={} of=/dev/sdX bs=4M conv=fsync)",
            image.node,
            image.path.display(),
            image.path.display()
        );
    }
    Ok(())
}

fn run(config: PathBuf, nodes: Option<usize>, timeout: u64, faults: Option<String>) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)).context("installing the Ctrl-C handler")?;
    let mut options = ClusterOptions::new(&config);
    options.nodes = nodes;
    options.echo = true;
    // `[guest] kernel = "debian"`: the stock Debian kernel and the busybox
    // initramfs go on every stick; the boot node starts them under SVM.
    let loaded = images::load_config(&resolve_config(&config))?;
    match loaded.config.guest.kernel.as_deref() {
        Some("debian") => {
            let payload = xtask::guest::prepare()?;
            eprintln!(
                "xtask: guest payload: {} ({}), {}",
                payload.kernel.display(),
                payload.kernel_source,
                payload.initramfs.display()
            );
            options.payload = xtask::guest::sinter_payload(&payload)?;
        }
        Some(other) => bail!("[guest] kernel = {other:?}: only \"debian\" is supported by `cargo xtask run` so far"),
        None => {}
    }
    options.publish_run_state = true;
    let mut cluster = Cluster::launch(&options)?;
    if let Some(spec) = &faults {
        for node in &cluster.nodes {
            cluster.switch.set_faults_spec(node.switch_port, spec).map_err(|e| anyhow::anyhow!("--faults: {e}"))?;
        }
    }
    eprintln!(
        "xtask: booting {} node(s) of `{}` (Ctrl-C stops all; logs in {})",
        cluster.nodes.len(),
        cluster.config.config.cluster.name,
        cluster.run_dir.display()
    );
    let exits = cluster.wait(Duration::from_secs(timeout), &|| stop.load(Ordering::SeqCst));
    let mut failed = false;
    for (node, exit) in cluster.nodes.iter().zip(&exits) {
        eprintln!("xtask: node {} ended: {:?}", node.id, exit);
        failed |= !exit.is_clean();
    }
    eprintln!("xtask: switch counters:\n{}", cluster.switch.stats());
    if stop.load(Ordering::SeqCst) {
        bail!("stopped by Ctrl-C");
    }
    if failed {
        bail!("a node did not power off cleanly (see its console above)");
    }
    Ok(())
}

fn status(config: Option<PathBuf>, timeout: u64) -> Result<()> {
    let name = match &config {
        Some(path) => Some(images::load_config(&resolve_config(path))?.config.cluster.name),
        None => None,
    };
    let state = xtask::runstate::find_running(name.as_deref())?;
    let answers = xtask::status::query(&state, Duration::from_secs(timeout))?;
    println!(
        "cluster `{}`: {} node(s), run by pid {} ({})",
        state.cluster,
        state.nodes.len(),
        state.pid,
        state.config.display()
    );
    let mut silent = 0;
    for answer in &answers {
        match &answer.result {
            Ok(report) => print!("{}", xtask::status::format_report(&answer.node, report)),
            Err(why) => {
                silent += 1;
                println!("node {} ({}): {why}", answer.node.id, answer.node.mgmt_ip);
            }
        }
    }
    if silent > 0 {
        bail!("{silent} of {} node(s) did not answer", answers.len());
    }
    Ok(())
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

fn step(what: &str, cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: {what}");
    let status = cmd.status().with_context(|| format!("running {what}"))?;
    if !status.success() {
        bail!("{what} failed");
    }
    Ok(())
}

fn test(host_only: bool, filter: &[String]) -> Result<()> {
    prereq::ensure_targets()?;
    step("host tests (cargo test)", cargo().args(["test", "--quiet"]))?;
    step(
        "loom model of the IPC rings",
        cargo().env("RUSTFLAGS", "--cfg loom").env("CARGO_TARGET_DIR", out_dir().join("loom-target")).args([
            "test",
            "--quiet",
            "--release",
            "-p",
            "sinter-ipc",
            "--lib",
            "loom",
        ]),
    )?;
    if host_only {
        return Ok(());
    }
    // Fail with a one-line fix before building anything for QEMU.
    prereq::check_for_run()?;
    step(
        "system tests (QEMU clusters)",
        cargo().args(["test", "-p", "sinter-system-tests", "--", "--test-threads=2"]).args(filter),
    )
}

fn lint() -> Result<()> {
    step("rustfmt", cargo().args(["fmt", "--all", "--", "--check"]))?;
    step("clippy (host crates)", cargo().args(["clippy", "--all-targets", "--", "-D", "warnings"]))?;
    step(
        "clippy (system tests)",
        cargo().args(["clippy", "-p", "sinter-system-tests", "--all-targets", "--", "-D", "warnings"]),
    )?;
    step(
        "clippy (kernel)",
        cargo().args(["clippy", "-p", "sinter-kernel", "--target", "x86_64-unknown-none", "--", "-D", "warnings"]),
    )?;
    step(
        "clippy (loader)",
        cargo().args(["clippy", "-p", "sinter-loader", "--target", "x86_64-unknown-uefi", "--", "-D", "warnings"]),
    )?;
    step(
        "dependency licences and bans",
        cargo().args(["deny", "--all-features", "check", "licenses", "bans", "sources"]),
    )
}

fn bench(only: Option<&str>) -> Result<()> {
    let wanted = |name: &str| only.is_none_or(|o| o == name);
    const KNOWN: [&str; 5] = ["coherence", "ipc", "npf", "nic", "guest"];
    if let Some(name) = only.filter(|o| !KNOWN.contains(o)) {
        bail!("--only {name}: known benchmarks are {}", KNOWN.map(|k| format!("`{k}`")).join(", "));
    }
    if wanted("coherence") {
        step("coherence protocol benchmarks", cargo().args(["bench", "-p", "sinter-coherence-protocol"]))?;
    }
    if wanted("ipc") {
        eprintln!("xtask: IPC round trip vs atomic ping-pong (QEMU TCG, 2 cores, 100,000 round trips each)");
        let figures = xtask::bench::ipc_bench(2)?;
        println!("| measurement | median cycles | p99 cycles | median ÷ atomic ping-pong |");
        println!("|---|---|---|---|");
        println!("| atomic ping-pong, core 0 ↔ 1 (baseline) | {} | {} | 1.00 |", figures.atomic.0, figures.atomic.1);
        println!(
            "| IPC round trip, core 0 ↔ 1 | {} | {} | {:.2} |",
            figures.cross_core.0,
            figures.cross_core.1,
            figures.cross_ratio()
        );
        println!(
            "| IPC round trip, same core | {} | {} | {:.2} |",
            figures.same_core.0,
            figures.same_core.1,
            figures.same_ratio()
        );
    }
    if wanted("npf") {
        eprintln!("xtask: nested-page-fault round trip vs a null exit (QEMU TCG, test guest under Sinter's SVM)");
        let f = xtask::bench::npf_bench()?;
        println!("| operation ({} each, timed in the guest) | guest TSC cycles | ÷ null exit |", f.iterations);
        println!("|---|---|---|");
        for (name, cycles) in [
            ("null VMMCALL exit (baseline)", f.null_exit),
            ("nested page fault on RAM: map a fresh frame, retry", f.ram_npf),
            ("emulated MMIO read: NPF, fetch, decode, emulate", f.mmio_read),
            ("write to a mapped page (no exit)", f.mapped_write),
        ] {
            println!("| {name} | {cycles} | {:.2} |", xtask::bench::NpfFigures::ratio(cycles, f.null_exit));
        }
    }
    if wanted("nic") {
        nic_bench()?;
    }
    if wanted("guest") {
        eprintln!(
            "xtask: Debian guest boot under Sinter (1 node) vs plain QEMU TCG with the same vCPUs and RAM, \
             and the Sinter boot's exits by reason"
        );
        print_guest_figures(&xtask::bench::guest_bench()?);
    }
    Ok(())
}

fn nic_bench() -> Result<()> {
    eprintln!(
        "xtask: raw frames vs 4 KiB transport messages, 2 nodes through the switch, per NIC model, 0% and 1% loss"
    );
    // Each configuration boots NIC_BOOTS times: on this shared TCG host one
    // boot's medians can move by 2x with the host's load, so the summary
    // reports the median ratio over the boots with its range.
    const NIC_BOOTS: usize = 3;
    let mut all = Vec::new();
    for boot in 1..=NIC_BOOTS {
        for model in ["virtio-net", "e1000e"] {
            for loss in [0u8, 1] {
                eprintln!("xtask: nic bench: {model}, {loss}% loss, boot {boot} of {NIC_BOOTS}");
                all.push(xtask::bench::nic_bench(model, loss)?);
            }
        }
    }
    all.sort_by_key(|f| (f.model != "virtio-net", f.loss_percent));
    println!("Summary over {NIC_BOOTS} boots per configuration (median, and min–max over the boots):");
    println!();
    println!("| NIC | loss | RTT ratio message ÷ raw 4 KiB ping-pong (target ≤ 1.5) | payload rate ratio messages ÷ raw, at node 1 (target ≥ 0.7) | data frames retransmitted by node 0 per boot |");
    println!("|---|---|---|---|---|");
    for group in all.chunk_by(|a, b| a.model == b.model && a.loss_percent == b.loss_percent) {
        let spread = |f: &dyn Fn(&xtask::bench::NicFigures) -> f64| {
            let values: Vec<f64> = group.iter().map(f).collect();
            let min = values.iter().copied().fold(f64::INFINITY, f64::min);
            let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            format!("{:.2} ({min:.2}–{max:.2})", xtask::bench::median(&values).unwrap_or(f64::NAN))
        };
        let retransmitted: Vec<String> =
            group.iter().map(|f| f.retransmitted.map_or("?".to_string(), |n| n.to_string())).collect();
        println!(
            "| {} | {}% | {} | {} | {} |",
            group[0].model,
            group[0].loss_percent,
            spread(&|f| f.rtt_ratio()),
            spread(&|f| f.goodput_ratio()),
            retransmitted.join(", ")
        );
    }
    println!();
    println!("Every boot:");
    println!();
    println!(
        "Round trips: the three kinds ran interleaved in blocks (10 rounds of each per block, order rotated). \
         Ratio = message ÷ raw 4 KiB ping-pong (node 1 answers after the whole burst). The pipelined echo \
         (node 1 echoes each frame at once) is for reference, NOT the target's baseline."
    );
    println!();
    println!("| NIC | loss | raw 4 KiB ping-pong RTT median (µs) | 4 KiB message RTT median (µs) | RTT ratio message ÷ raw 4 KiB ping-pong | reference only: raw pipelined echo RTT median (µs) | message ÷ pipelined | raw 1400 B frames/s at node 1 (received/sent; over node 0's time) | 4 KiB messages/s at node 1 (over node 0's time) | payload rate ratio (node 1) |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for f in &all {
        println!(
            "| {} | {}% | {:.0} (p99 {:.0}, {} resends) | {:.0} (p99 {:.0}) | {:.2} | {:.0} (p99 {:.0}, {} resends) | {:.2} | {} ({}/{}; {}) | {} ({}) | {:.2} |",
            f.model,
            f.loss_percent,
            f.us(f.raw_rtt.0),
            f.us(f.raw_rtt.1),
            f.raw_resends,
            f.us(f.msg_rtt.0),
            f.us(f.msg_rtt.1),
            f.rtt_ratio(),
            f.us(f.raw_pipelined_rtt.0),
            f.us(f.raw_pipelined_rtt.1),
            f.raw_pipelined_resends,
            f.pipelined_ratio(),
            f.raw_receiver_frames_per_s,
            f.raw_received,
            f.raw_sent,
            f.raw_frames_per_s,
            f.msg_receiver_per_s,
            f.msg_per_s,
            f.goodput_ratio()
        );
    }
    Ok(())
}

fn print_guest_figures(f: &xtask::bench::GuestFigures) {
    use xtask::bench::{exit_reason_names, per_second, GuestFigures};
    let secs = |d: Duration| format!("{:.1}", d.as_secs_f64());
    println!("guest: {}, {} vCPUs, {} MiB; plain QEMU: {}", f.kernel, f.vcpus, f.memory_mib, f.plain_command);
    println!();
    println!("| host wall time from QEMU's launch to | Sinter (s) | plain QEMU (s) | Sinter ÷ plain |");
    println!("|---|---|---|---|");
    for (what, sinter, plain) in [
        ("the workload's first line", f.sinter.first_workload_line, f.plain.first_workload_line),
        ("`N passed, N failed`", f.sinter.summary_line, f.plain.summary_line),
        ("QEMU's exit", f.sinter.total, f.plain.total),
    ] {
        println!("| {what} | {} | {} | {:.2} |", secs(sinter), secs(plain), GuestFigures::ratio(sinter, plain));
    }
    println!("| Sinter: `vm: starting the guest` (OVMF, loader, firmware) | {} | | |", secs(f.sinter_guest_start));
    for (what, sinter, plain) in [
        ("the workload's first line", f.sinter.first_workload_line, f.plain.first_workload_line),
        ("`N passed, N failed`", f.sinter.summary_line, f.plain.summary_line),
    ] {
        let from_start = f.sinter_from_guest_start(sinter);
        println!(
            "| Sinter from the guest's start to {what} | {} | {} | {:.2} |",
            secs(from_start),
            secs(plain),
            GuestFigures::ratio(from_start, plain)
        );
    }
    println!();
    println!("| workload check (time since the previous line) | Sinter (s) | plain QEMU (s) | Sinter ÷ plain |");
    println!("|---|---|---|---|");
    for (name, sinter, plain) in &f.checks {
        let (s, p) = (sinter.as_secs_f64(), plain.as_secs_f64());
        println!("| {name} | {s:.2} | {p:.2} | {:.2} |", GuestFigures::ratio(*sinter, *plain));
    }
    println!();
    let vm_ms = f.vm_run_ms();
    let header: Vec<String> =
        f.exits.iter().map(|e| format!("vCPU {} exits | vCPU {} /s", e.vcpu, e.vcpu)).collect::<Vec<_>>();
    println!("| exit reason | {} | all vCPUs /s | share |", header.join(" | "));
    println!("|---|{}---|---|", "---|---|".repeat(f.exits.len()));
    let total: u64 = f.exits.iter().map(|e| e.total).sum();
    let mut rows: Vec<(String, Vec<u64>)> = exit_reason_names()
        .into_iter()
        .map(|r| (r.to_string(), f.exits.iter().map(|e| e.count(r).unwrap_or(0)).collect()))
        .collect();
    rows.push(("total".to_string(), f.exits.iter().map(|e| e.total).collect()));
    for (reason, counts) in rows {
        let cells: Vec<String> =
            f.exits.iter().zip(&counts).map(|(e, &n)| format!("{n} | {:.0}", e.per_second(n))).collect();
        let sum: u64 = counts.iter().sum();
        println!(
            "| {reason} | {} | {:.0} | {:.1}% |",
            cells.join(" | "),
            per_second(sum, vm_ms),
            sum as f64 * 100.0 / total.max(1) as f64
        );
    }
    for e in &f.exits {
        println!(
            "vCPU {}: ran {:.1} s (from its first VMRUN to the VM's stop), {:.1} s of it halted on the host; \
             {} interrupts injected ({:.0}/s), {} APIC timer events ({:.0}/s)",
            e.vcpu,
            e.run_ms as f64 / 1000.0,
            e.halted_ms as f64 / 1000.0,
            e.injected,
            e.per_second(e.injected),
            e.timer_events,
            e.per_second(e.timer_events)
        );
    }
    println!("all vCPUs /s: the vCPUs' exits summed, over the longest vCPU run ({:.1} s)", vm_ms as f64 / 1000.0);
}

fn doctor() -> Result<()> {
    prereq::ensure_targets()?;
    let qemu = prereq::qemu_binary()?;
    let ovmf = prereq::ovmf()?;
    println!("rustup targets: ok\nqemu: {}\novmf: {} + {}", qemu.display(), ovmf.code.display(), ovmf.vars.display());
    Ok(())
}

fn guest(boot: bool, smp: u16, memory_mib: u32, timeout: u64) -> Result<()> {
    let payload = xtask::guest::prepare()?;
    println!("kernel:    {} ({})", payload.kernel.display(), payload.kernel_source);
    println!("busybox:   {}", payload.busybox_source);
    println!("workload:  {}", payload.workload.display());
    println!("initramfs: {}", payload.initramfs.display());
    if !boot {
        return Ok(());
    }
    let mut options = xtask::guest::PlainQemuOptions::new(smp, memory_mib);
    options.timeout = Duration::from_secs(timeout);
    options.echo = true;
    let run = xtask::guest::boot_plain_qemu_with(&payload, &options)?;
    let secs = |d: Option<Duration>| d.map_or("never".to_string(), |d| format!("{:.1} s", d.as_secs_f64()));
    println!("qemu: {}", run.command);
    println!(
        "first workload line after {}, summary after {}, QEMU ended after {:.1} s: {:?}",
        secs(run.first_workload_line),
        secs(run.summary_line),
        run.total.as_secs_f64(),
        run.exit
    );
    if !run.is_clean() {
        bail!("the guest did not run cleanly (see its console above)");
    }
    Ok(())
}
