//! The config schema. Unknown keys are errors (`deny_unknown_fields`), so a
//! typo never silently falls back to a default.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use serde::Deserialize;

use crate::values::{ClusterKey, Ipv4Net, MacAddr};

/// Largest cluster the firmware supports (sharer sets are 64-bit masks).
pub const MAX_NODES: usize = 64;

/// A whole `hw-configs/*.toml` file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    pub cluster: ClusterSection,
    #[serde(default)]
    pub hypervisor: HypervisorSection,
    #[serde(default)]
    pub guest: GuestSection,
    /// Settings only the QEMU harness reads; absent for real servers.
    pub qemu: Option<QemuSection>,
    /// Supervision policy per service name (`[service.coherence]`).
    #[serde(default, rename = "service")]
    pub services: BTreeMap<String, ServicePolicy>,
    /// Test-only behaviour; never present in a production config.
    #[serde(default)]
    pub debug: DebugSection,
    #[serde(rename = "node")]
    pub nodes: Vec<NodeConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// Short name shown in banners and logs: `[a-z0-9_-]`, at most 32 bytes.
    pub name: String,
    /// Key for the keyed MAC on every cluster frame.
    pub key: ClusterKey,
    /// How a node powers off when its run ends.
    #[serde(default)]
    pub poweroff: PowerOff,
    /// Interval between membership heartbeats.
    #[serde(default = "default_heartbeat_ms")]
    pub heartbeat_ms: u32,
    /// A peer silent for longer than this is reported dead.
    #[serde(default = "default_failure_timeout_ms")]
    pub failure_timeout_ms: u32,
    /// Start the cluster fabric at boot: the `nic`, `transport` and
    /// `cluster` services (the node then runs until it is stopped). Off by
    /// default until the hypervisor path runs on top of it; self-tests that
    /// drive the NIC themselves (`nic-ping`) need it off.
    #[serde(default)]
    pub fabric: bool,
}

fn default_heartbeat_ms() -> u32 {
    100
}

fn default_failure_timeout_ms() -> u32 {
    1000
}

/// How the firmware ends a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PowerOff {
    /// ACPI S5 through the FADT's PM1 control block: QEMU exits with status 0.
    #[default]
    Acpi,
    /// QEMU's `isa-debug-exit` device at I/O port 0xf4: the exit status
    /// carries the verdict (`(code << 1) | 1`). Test configs only.
    IsaDebugExit,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HypervisorSection {
    /// Memory each node keeps for Sinter itself; the rest becomes guest RAM.
    #[serde(default = "default_reserved_memory_mib")]
    pub reserved_memory_mib: u32,
    /// What a guest access to guest-physical space with neither RAM nor a
    /// device behind it does.
    #[serde(default)]
    pub unbacked_mmio: UnbackedMmio,
}

/// The answer to a guest touching unbacked guest-physical space.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnbackedMmio {
    /// Report the access (GPA, direction, RIP) and stop the VM: the node
    /// ends its run with a failure status. Nothing Linux does on Sinter's
    /// machine touches such space, so an access is a guest bug.
    #[default]
    Stop,
    /// Reads return all ones and writes are dropped (what a PC's bus does
    /// on a master abort), each access counted and the first few logged.
    AllOnes,
}

fn default_reserved_memory_mib() -> u32 {
    64
}

impl Default for HypervisorSection {
    fn default() -> Self {
        Self { reserved_memory_mib: default_reserved_memory_mib(), unbacked_mmio: UnbackedMmio::default() }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuestSection {
    /// Guest kernel: `"debian"` for the cached Debian `linux-image-amd64`, or a
    /// path relative to the config file. Absent: no guest (firmware only).
    pub kernel: Option<String>,
    #[serde(default)]
    pub cmdline: String,
    /// Guest RAM in MiB; absent means "everything the nodes do not reserve".
    pub memory_mib: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QemuSection {
    /// `-cpu` model; it must offer SVM with nested paging.
    #[serde(default = "default_qemu_cpu")]
    pub cpu: String,
    /// `-machine` type.
    #[serde(default = "default_qemu_machine")]
    pub machine: String,
}

fn default_qemu_cpu() -> String {
    String::from("EPYC,+svm,+npt")
}

fn default_qemu_machine() -> String {
    String::from("q35")
}

/// What the supervisor does when a service panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicePolicy {
    #[serde(default)]
    pub on_panic: OnPanic,
    /// Restarts allowed before the node halts anyway.
    #[serde(default = "default_max_restarts")]
    pub max_restarts: u32,
}

fn default_max_restarts() -> u32 {
    8
}

impl Default for ServicePolicy {
    fn default() -> Self {
        Self { on_panic: OnPanic::default(), max_restarts: default_max_restarts() }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnPanic {
    /// Report, then start the service again from its entry point (with
    /// back-off); clients see a new generation number.
    #[default]
    Restart,
    /// Report, then halt the node cleanly.
    Halt,
}

/// Self-tests the firmware runs after bring-up (test configs only).
pub const KNOWN_SELFTESTS: &[&str] = &[
    "page-fault",
    "page-fault-ap",
    "stack-overflow",
    "service-panic",
    "ipc",
    "ipc-bench",
    "nic-ping",
    "transport-soak",
    "nic-bench",
    "svm-guest",
    "svm-guest-triple-fault",
    "svm-npf-bench",
];

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DebugSection {
    /// Names from [`KNOWN_SELFTESTS`].
    #[serde(default)]
    pub selftests: Vec<String>,
}

impl DebugSection {
    pub fn wants(&self, name: &str) -> bool {
        self.selftests.iter().any(|s| s == name)
    }
}

impl ClusterConfig {
    /// The policy for `service`, or the default (restart, 8 times).
    pub fn service_policy(&self, service: &str) -> ServicePolicy {
        self.services.get(service).copied().unwrap_or_default()
    }
}

/// One member of the cluster.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// 0-based; node 0 is the boot node that starts the guest.
    pub id: u16,
    /// MAC of the NIC that carries cluster traffic.
    pub mac: MacAddr,
    pub nic: NicModel,
    /// Cores this node has. The harness gives QEMU `-smp cores`; on a real
    /// server it is what the firmware expects to find in the MADT.
    pub cores: Option<u16>,
    /// RAM this node has, in MiB (QEMU `-m`).
    pub memory_mib: Option<u32>,
    /// Free text shown in banners (`"rack 3, slot 2"`).
    #[serde(default)]
    pub description: String,
    /// The node's management IPv4 address and prefix (status queries on
    /// UDP port 7700); absent: [`NodeConfig::default_mgmt_ip`].
    pub mgmt_ip: Option<Ipv4Net>,
}

impl NodeConfig {
    /// The default management address of node `id`: `10.77.0.(id+1)/24`.
    pub fn default_mgmt_ip(id: u16) -> Ipv4Net {
        Ipv4Net { addr: [10, 77, 0, (id % 254) as u8 + 1], prefix: 24 }
    }

    /// The management address in force: the configured one or the default.
    pub fn mgmt_ip(&self) -> Ipv4Net {
        self.mgmt_ip.unwrap_or_else(|| Self::default_mgmt_ip(self.id))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NicModel {
    VirtioNet,
    E1000e,
}

impl NicModel {
    /// QEMU `-device` name of this model.
    pub fn qemu_device(self) -> &'static str {
        match self {
            NicModel::VirtioNet => "virtio-net-pci",
            NicModel::E1000e => "e1000e",
        }
    }
}

/// `node.toml` on each image: which member of the cluster this image is.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSelector {
    pub node: u16,
}

impl ClusterConfig {
    pub fn node(&self, id: u16) -> Option<&NodeConfig> {
        self.nodes.iter().find(|n| n.id == id)
    }
}
