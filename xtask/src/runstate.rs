//! How a separate `cargo xtask status` finds a running cluster.
//!
//! `cargo xtask run` adds one extra host port to the switch whose far end is
//! a loopback UDP address it only reserves (nothing binds it), and writes
//! `target/sinter/run/<cluster>/state` (below) while the cluster runs. A
//! status tool reads the file, binds that address, and is then on the
//! cluster's Ethernet segment through the switch. The file is removed when
//! the run ends; a file whose `pid` is gone is stale and ignored.
//!
//! ```text
//! # cargo xtask run state; removed when the run ends
//! version = 1
//! cluster = qemu-2node
//! pid = 41234
//! config = /…/hw-configs/qemu-2node.toml
//! switch_port = 127.0.0.1:40001     (switch side of the status port)
//! client_addr = 127.0.0.1:40002     (bind here to use the status port)
//! node = 0 10.77.0.1/24 52:54:00:5e:00:00
//! node = 1 10.77.0.2/24 52:54:00:5e:00:01
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sinter_config::{Ipv4Net, MacAddr};

use crate::paths::out_dir;

const VERSION: u32 = 1;

/// One booted node as the status tool needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunNode {
    pub id: u16,
    pub mgmt_ip: Ipv4Net,
    pub mac: MacAddr,
}

/// What `cargo xtask run` publishes about a running cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunState {
    pub cluster: String,
    pub pid: u32,
    pub config: PathBuf,
    pub switch_port: SocketAddr,
    pub client_addr: SocketAddr,
    pub nodes: Vec<RunNode>,
}

/// `target/sinter/run/`.
pub fn run_root() -> PathBuf {
    out_dir().join("run")
}

/// The state file of cluster `name`.
pub fn state_path(name: &str) -> PathBuf {
    run_root().join(name).join("state")
}

impl RunState {
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "# cargo xtask run state; removed when the run ends\nversion = {VERSION}\ncluster = {}\npid = {}\nconfig = {}\nswitch_port = {}\nclient_addr = {}\n",
            self.cluster,
            self.pid,
            self.config.display(),
            self.switch_port,
            self.client_addr
        );
        for node in &self.nodes {
            out.push_str(&format!("node = {} {} {}\n", node.id, node.mgmt_ip, node.mac));
        }
        out
    }

    pub fn parse(text: &str) -> Result<RunState> {
        let (mut cluster, mut pid, mut config, mut switch_port, mut client_addr) = (None, None, None, None, None);
        let mut nodes = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = || format!("line {}", index + 1);
            let (key, value) = line.split_once('=').with_context(|| format!("{}: no `=`", at()))?;
            let value = value.trim();
            match key.trim() {
                "version" => {
                    if value != VERSION.to_string() {
                        bail!("{}: version {value}, this xtask reads version {VERSION}", at());
                    }
                }
                "cluster" => cluster = Some(value.to_string()),
                "pid" => pid = Some(value.parse().with_context(|| format!("{}: pid", at()))?),
                "config" => config = Some(PathBuf::from(value)),
                "switch_port" => switch_port = Some(value.parse().with_context(|| format!("{}: switch_port", at()))?),
                "client_addr" => client_addr = Some(value.parse().with_context(|| format!("{}: client_addr", at()))?),
                "node" => {
                    let mut parts = value.split_whitespace();
                    let (Some(id), Some(ip), Some(mac), None) =
                        (parts.next(), parts.next(), parts.next(), parts.next())
                    else {
                        bail!("{}: expected `node = ID IP/LEN MAC`", at());
                    };
                    nodes.push(RunNode {
                        id: id.parse().with_context(|| format!("{}: node id", at()))?,
                        mgmt_ip: Ipv4Net::parse(ip).map_err(|e| anyhow::anyhow!("{}: {e}", at()))?,
                        mac: MacAddr::parse(mac).map_err(|e| anyhow::anyhow!("{}: {e}", at()))?,
                    });
                }
                other => bail!("{}: unknown key `{other}`", at()),
            }
        }
        let missing = |what: &str| anyhow::anyhow!("no `{what}` line");
        Ok(RunState {
            cluster: cluster.ok_or_else(|| missing("cluster"))?,
            pid: pid.ok_or_else(|| missing("pid"))?,
            config: config.ok_or_else(|| missing("config"))?,
            switch_port: switch_port.ok_or_else(|| missing("switch_port"))?,
            client_addr: client_addr.ok_or_else(|| missing("client_addr"))?,
            nodes,
        })
    }

    /// Writes the state file (atomically: a reader never sees half of it).
    pub fn publish(&self) -> Result<PathBuf> {
        let path = state_path(&self.cluster);
        let dir = path.parent().context("state path has a folder")?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let tmp = dir.join(format!("state.{}.tmp", self.pid));
        std::fs::write(&tmp, self.to_text()).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// Removes `path` if it still describes the run of `pid` (a later run
    /// of the same cluster may have replaced it).
    pub fn withdraw(path: &Path, pid: u32) {
        let ours =
            std::fs::read_to_string(path).ok().and_then(|t| RunState::parse(&t).ok()).is_some_and(|s| s.pid == pid);
        if ours {
            let _ = std::fs::remove_file(path);
            // The cluster's folder too, unless something else is in it.
            if let Some(dir) = path.parent() {
                let _ = std::fs::remove_dir(dir);
            }
        }
    }

    /// Whether the process that wrote this state still runs.
    pub fn is_live(&self) -> bool {
        Path::new("/proc").join(self.pid.to_string()).exists()
    }
}

/// The running cluster named `name`, or the only one running if `None`.
/// The error is one line that says what is (not) running.
pub fn find_running(name: Option<&str>) -> Result<RunState> {
    let mut live = Vec::new();
    let names: Vec<String> = match name {
        Some(name) => vec![name.to_string()],
        None => std::fs::read_dir(run_root())
            .map(|dir| dir.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default(),
    };
    for candidate in names {
        let path = state_path(&candidate);
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let state = RunState::parse(&text).with_context(|| format!("{}", path.display()))?;
        if state.is_live() {
            live.push(state);
        } else {
            // Left behind by a run that was killed: not running.
            let _ = std::fs::remove_file(&path);
            let _ = path.parent().map(std::fs::remove_dir);
        }
    }
    match (live.len(), name) {
        (1, _) => Ok(live.remove(0)),
        (0, Some(name)) => {
            bail!("no cluster `{name}` is running (start one with `cargo xtask run --config <its config>`)")
        }
        (0, None) => bail!("no Sinter cluster is running (start one with `cargo xtask run`)"),
        _ => bail!(
            "{} clusters are running ({}); choose one with --config",
            live.len(),
            live.iter().map(|s| s.cluster.as_str()).collect::<Vec<_>>().join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RunState {
        RunState {
            cluster: "qemu-2node".into(),
            pid: 42,
            config: PathBuf::from("/x/hw-configs/qemu-2node.toml"),
            switch_port: "127.0.0.1:40001".parse().unwrap(),
            client_addr: "127.0.0.1:40002".parse().unwrap(),
            nodes: vec![
                RunNode {
                    id: 0,
                    mgmt_ip: Ipv4Net::parse("10.77.0.1/24").unwrap(),
                    mac: MacAddr::parse("52:54:00:5e:00:00").unwrap(),
                },
                RunNode {
                    id: 1,
                    mgmt_ip: Ipv4Net::parse("10.77.0.2/24").unwrap(),
                    mac: MacAddr::parse("52:54:00:5e:00:01").unwrap(),
                },
            ],
        }
    }

    #[test]
    fn state_round_trips_through_its_text() {
        let state = sample();
        let text = state.to_text();
        assert!(text.contains("node = 1 10.77.0.2/24 52:54:00:5e:00:01\n"), "{text}");
        assert_eq!(RunState::parse(&text).unwrap(), state);
    }

    #[test]
    fn bad_state_files_are_named() {
        let text = sample().to_text();
        let e = RunState::parse(&text.replace("version = 1", "version = 9")).unwrap_err();
        assert!(format!("{e:#}").contains("version 9"), "{e:#}");
        let e = RunState::parse(&text.replace("pid = 42\n", "")).unwrap_err();
        assert!(format!("{e:#}").contains("no `pid`"), "{e:#}");
        let e = RunState::parse(&text.replace("10.77.0.2/24", "10.77.0.2")).unwrap_err();
        assert!(format!("{e:#}").contains("line 9"), "{e:#}");
    }

    #[test]
    fn a_dead_pid_is_not_live() {
        let mut state = sample();
        state.pid = std::process::id();
        assert!(state.is_live());
        state.pid = u32::MAX - 1;
        assert!(!state.is_live());
    }
}
