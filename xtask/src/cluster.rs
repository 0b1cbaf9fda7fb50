//! A running QEMU cluster: the switch, one QEMU per node, their consoles.
//! This is the harness API the tests in `tests/` use.
//!
//! No QEMU outlives its `Cluster`: each child gets `PR_SET_PDEATHSIG`, and
//! `Drop` kills and reaps whatever is still running.

use std::net::{SocketAddr, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use sinter_switch::{HostEndpoint, PortId, Switch, SwitchHandle};

use crate::build::{build_firmware, Firmware};
use crate::console::{spawn_reader, spawn_reader_rewriting, ConsoleLog};
use crate::images::{load_config, write_images, LoadedConfig, Payload};
use crate::paths::{out_dir, resolve_config};
use crate::prereq;
use crate::qemu::{NodeExit, NodeMachine};
use crate::runstate::{RunNode, RunState};

/// What to boot and how.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub config: PathBuf,
    /// Boot only the first N nodes of the config.
    pub nodes: Option<usize>,
    /// Kernel cargo features (test-only behaviours).
    pub kernel_features: Vec<String>,
    pub payload: Payload,
    /// Echo consoles to stdout with `[node k]` prefixes.
    pub echo: bool,
    /// Extra arguments for every node's QEMU; `{node}` and `{run_dir}` are
    /// replaced by the node id and the run folder.
    pub extra_qemu_args: Vec<String>,
    /// Host endpoints to attach to the switch (tests inject/capture frames).
    pub host_ports: usize,
    /// Replaces the generated `node.toml` on every image (tests of the
    /// firmware's own config checks; xtask validates what it writes).
    pub node_toml_override: Option<String>,
    /// Keep the run folder (images, logs) after the cluster is dropped.
    pub keep_run_dir: bool,
    /// Give the switch a status port and publish the run state
    /// (`target/sinter/run/<cluster>/state`) so that `cargo xtask status`,
    /// a separate process, can reach the nodes' management plane.
    pub publish_run_state: bool,
}

impl ClusterOptions {
    pub fn new(config: impl Into<PathBuf>) -> Self {
        Self {
            config: config.into(),
            nodes: None,
            kernel_features: Vec::new(),
            payload: Vec::new(),
            echo: false,
            extra_qemu_args: Vec::new(),
            host_ports: 0,
            node_toml_override: None,
            keep_run_dir: false,
            publish_run_state: false,
        }
    }
}

pub struct Node {
    pub id: u16,
    pub console: ConsoleLog,
    /// Decoded defmt frames from COM2, one `LEVEL message` per line.
    pub defmt: ConsoleLog,
    pub machine: NodeMachine,
    pub switch_port: PortId,
    /// Just before this node's QEMU was started (console times count from it).
    pub started: Instant,
    child: Option<Child>,
    exit: Option<NodeExit>,
}

impl Node {
    pub fn exit(&self) -> Option<NodeExit> {
        self.exit
    }

    /// The QEMU process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }
}

pub struct Cluster {
    pub config: LoadedConfig,
    pub nodes: Vec<Node>,
    pub switch: SwitchHandle,
    pub host_ports: Vec<HostEndpoint>,
    pub run_dir: PathBuf,
    /// The published run state and its file, with `publish_run_state`.
    pub run_state: Option<(RunState, PathBuf)>,
    keep_run_dir: bool,
    stop_readers: Arc<AtomicBool>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

static RUN_COUNTER: AtomicU32 = AtomicU32::new(0);

/// A free UDP port on loopback for QEMU's end of a link. The socket is
/// closed before QEMU binds it; the window for a clash is tiny.
fn reserve_udp_port() -> Result<SocketAddr> {
    let socket = UdpSocket::bind("127.0.0.1:0").context("reserving a loopback UDP port")?;
    Ok(socket.local_addr()?)
}

impl Cluster {
    /// Builds the firmware and images, starts the switch and every node.
    pub fn launch(options: &ClusterOptions) -> Result<Cluster> {
        let (qemu, ovmf) = prereq::check_for_run()?;
        let config = load_config(&resolve_config(&options.config))?;
        let firmware = build_firmware(&options.kernel_features)?;
        Self::launch_with(options, config, &firmware, &qemu, &ovmf)
    }

    pub fn launch_with(
        options: &ClusterOptions,
        config: LoadedConfig,
        firmware: &Firmware,
        qemu: &Path,
        ovmf: &prereq::Ovmf,
    ) -> Result<Cluster> {
        let run_dir = out_dir().join("runs").join(format!(
            "{}-{}-{}",
            config.config.cluster.name,
            std::process::id(),
            RUN_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
        let mut images =
            write_images(&config, firmware, &options.payload, options.node_toml_override.as_deref(), &run_dir)?;
        let count = options.nodes.unwrap_or(config.config.nodes.len());
        if count == 0 || count > config.config.nodes.len() {
            bail!("--nodes {count}: {} has {} nodes", config.path.display(), config.config.nodes.len());
        }
        images.truncate(count);

        let mut switch = Switch::new();
        let mut machines = Vec::new();
        let mut ports = Vec::new();
        for image in &images {
            let node = config.config.node(image.node).context("image for unknown node")?;
            let mut machine = NodeMachine::for_node(&config.config, node, qemu, ovmf, &run_dir);
            machine.image = image.path.clone();
            machine.net_local = reserve_udp_port()?;
            let port = switch.add_qemu_port(Some(machine.net_local)).context("adding a switch port")?;
            machine.net_remote = switch.switch_addr(port).context("switch port has no address")?;
            machine.extra_args = options
                .extra_qemu_args
                .iter()
                .map(|arg| {
                    arg.replace("{node}", &image.node.to_string()).replace("{run_dir}", &run_dir.display().to_string())
                })
                .collect();
            std::fs::copy(&ovmf.vars, &machine.ovmf_vars)
                .with_context(|| format!("copying {}", ovmf.vars.display()))?;
            machines.push(machine);
            ports.push(port);
        }
        let mut host_ports = Vec::new();
        for _ in 0..options.host_ports {
            host_ports.push(switch.add_host_port().context("adding a host port")?);
        }
        let status_port = if options.publish_run_state {
            let client_addr = reserve_udp_port()?;
            let port = switch.add_remote_host_port(client_addr).context("adding the status port")?;
            Some((client_addr, switch.switch_addr(port).context("status port has no address")?))
        } else {
            None
        };
        let switch = switch.start().context("starting the switch")?;
        let run_state = match status_port {
            Some((client_addr, switch_port)) => {
                let state = RunState {
                    cluster: config.config.cluster.name.clone(),
                    pid: std::process::id(),
                    config: config.path.clone(),
                    switch_port,
                    client_addr,
                    nodes: images
                        .iter()
                        .filter_map(|image| config.config.node(image.node))
                        .map(|n| RunNode { id: n.id, mgmt_ip: n.mgmt_ip(), mac: n.mac })
                        .collect(),
                };
                let path = state.publish()?;
                Some((state, path))
            }
            None => None,
        };

        let stop_readers = Arc::new(AtomicBool::new(false));
        // Kernel backtraces on the consoles get function names (and file:line).
        let symbolizer = match crate::symbolize::Symbolizer::load(&firmware.kernel_elf) {
            Ok(symbolizer) => Some(Arc::new(symbolizer)),
            Err(e) => {
                eprintln!("xtask: backtraces stay unsymbolized: {e:#}");
                None
            }
        };
        let mut cluster = Cluster {
            config,
            nodes: Vec::new(),
            switch,
            host_ports,
            run_dir,
            run_state,
            keep_run_dir: options.keep_run_dir,
            stop_readers: stop_readers.clone(),
            readers: Vec::new(),
        };
        for (machine, port) in machines.into_iter().zip(ports) {
            let id = cluster.nodes.len() as u16;
            let mut cmd = machine.command();
            cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
            let die_with_parent = || {
                // SAFETY: prctl(PR_SET_PDEATHSIG) only sets a flag on the
                // calling (child) process and is async-signal-safe.
                unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
                Ok(())
            };
            // SAFETY: the closure runs between fork and exec and only calls
            // the async-signal-safe prctl. PDEATHSIG kills QEMU if the harness
            // dies without cleaning up.
            unsafe { cmd.pre_exec(die_with_parent) };
            let started = Instant::now();
            let mut child = cmd.spawn().with_context(|| format!("starting {}", machine.qemu.display()))?;
            let console = ConsoleLog::default();
            if let Some(stdout) = child.stdout.take() {
                let rewrite = symbolizer.clone().map(crate::symbolize::console_rewriter);
                let reader =
                    spawn_reader_rewriting(stdout, format!("[node {id}]"), console.clone(), options.echo, rewrite);
                cluster.readers.push(reader);
            }
            if let Some(stderr) = child.stderr.take() {
                cluster.readers.push(spawn_reader(stderr, format!("[node {id} qemu]"), console.clone(), true));
            }
            let defmt = ConsoleLog::default();
            cluster.readers.push(crate::defmt_log::spawn_reader(
                machine.defmt_stream.clone(),
                firmware.kernel_elf.clone(),
                format!("[node {id} log]"),
                defmt.clone(),
                options.echo,
                stop_readers.clone(),
            ));
            cluster.nodes.push(Node {
                id,
                console,
                defmt,
                machine,
                switch_port: port,
                started,
                child: Some(child),
                exit: None,
            });
        }
        Ok(cluster)
    }

    pub fn node(&self, id: u16) -> &Node {
        &self.nodes[usize::from(id)]
    }

    /// Polls every child once; returns true when all have exited.
    pub fn poll(&mut self) -> bool {
        for node in &mut self.nodes {
            if let Some(child) = &mut node.child {
                if let Ok(Some(status)) = child.try_wait() {
                    node.exit = Some(NodeExit::from_status(status));
                    node.child = None;
                }
            }
        }
        self.nodes.iter().all(|n| n.child.is_none())
    }

    /// Waits for every node to exit, killing those still running at the
    /// deadline (reported as `TimedOut`). `stop` is polled for Ctrl-C.
    pub fn wait(&mut self, timeout: Duration, stop: &dyn Fn() -> bool) -> Vec<NodeExit> {
        let deadline = Instant::now() + timeout;
        while !self.poll() {
            if stop() {
                self.kill_all(None);
                break;
            }
            if Instant::now() >= deadline {
                self.kill_all(Some(NodeExit::TimedOut));
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Every QEMU has exited: its pipes hit EOF and its defmt file is
        // complete, so the readers finish once they have drained them.
        self.stop_readers.store(true, Ordering::Release);
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        self.nodes.iter().map(|n| n.exit.unwrap_or(NodeExit::Signalled(libc::SIGKILL))).collect()
    }

    fn kill_all(&mut self, as_exit: Option<NodeExit>) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let status = child.wait();
                node.exit = Some(match (as_exit, status) {
                    (Some(exit), _) => exit,
                    (None, Ok(status)) => NodeExit::from_status(status),
                    (None, Err(_)) => NodeExit::Signalled(libc::SIGKILL),
                });
            }
        }
    }

    /// Sends one QMP command (JSON) to a node and returns the reply line.
    pub fn qmp(&self, id: u16, command: &str) -> Result<String> {
        use std::io::{BufRead, BufReader, Write};
        use std::os::unix::net::UnixStream;
        let path = &self.node(id).machine.qmp_socket;
        let stream = UnixStream::connect(path).with_context(|| format!("connecting to {}", path.display()))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut writer = stream;
        let mut line = String::new();
        reader.read_line(&mut line)?; // greeting
        writer.write_all(b"{\"execute\":\"qmp_capabilities\"}\n")?;
        line.clear();
        reader.read_line(&mut line)?;
        writer.write_all(command.as_bytes())?;
        writer.write_all(b"\n")?;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                bail!("QMP connection closed");
            }
            // Skip asynchronous events; the reply has "return" or "error".
            if line.contains("\"return\"") || line.contains("\"error\"") {
                return Ok(line.trim().to_string());
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_all(None);
        self.stop_readers.store(true, Ordering::Release);
        self.switch.shutdown();
        if let Some((state, path)) = &self.run_state {
            RunState::withdraw(path, state.pid);
        }
        if !self.keep_run_dir {
            let _ = std::fs::remove_dir_all(&self.run_dir);
        }
    }
}
