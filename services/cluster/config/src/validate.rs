//! Checks that serde cannot express: ranges, uniqueness, cross-key rules.

use alloc::format;

use crate::error::ConfigError;
use crate::schema::{ClusterConfig, KNOWN_SELFTESTS, MAX_NODES};

/// Smallest node RAM that leaves the hypervisor room to run.
const MIN_NODE_MEMORY_MIB: u32 = 128;
const MAX_CORES_PER_NODE: u16 = 256;

impl ClusterConfig {
    /// Every rule a parsed config must satisfy.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let name = &self.cluster.name;
        if name.is_empty() || name.len() > 32 {
            return Err(ConfigError::new("cluster.name", "must be 1 to 32 bytes long"));
        }
        if let Some(bad) =
            name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
        {
            return Err(ConfigError::new(
                "cluster.name",
                format!("character `{bad}` is not allowed (use a-z, 0-9, `-`, `_`)"),
            ));
        }
        if self.cluster.key.0.iter().all(|&b| b == 0) {
            return Err(ConfigError::new("cluster.key", "an all-zero key authenticates nothing"));
        }
        if self.cluster.heartbeat_ms == 0 {
            return Err(ConfigError::new("cluster.heartbeat_ms", "must be more than 0"));
        }
        if u64::from(self.cluster.failure_timeout_ms) < 2 * u64::from(self.cluster.heartbeat_ms) {
            return Err(ConfigError::new(
                "cluster.failure_timeout_ms",
                format!(
                    "{} ms is shorter than two heartbeats ({} ms each): one lost heartbeat would kill a healthy node",
                    self.cluster.failure_timeout_ms, self.cluster.heartbeat_ms
                ),
            ));
        }
        if self.nodes.is_empty() {
            return Err(ConfigError::new("node", "a cluster needs at least one [[node]]"));
        }
        if self.nodes.len() > MAX_NODES {
            return Err(ConfigError::new(
                "node",
                format!("{} nodes given, at most {MAX_NODES} are supported", self.nodes.len()),
            ));
        }
        for (index, node) in self.nodes.iter().enumerate() {
            let at = |key: &str| format!("node[{index}].{key}");
            if usize::from(node.id) != index {
                return Err(ConfigError::new(
                    at("id"),
                    format!("node ids must be 0, 1, 2, ... in file order; expected {index}, found {}", node.id),
                ));
            }
            if !node.mac.is_unicast() {
                return Err(ConfigError::new(at("mac"), format!("{} is a group address, not a NIC", node.mac)));
            }
            if let Some(other) = self.nodes[..index].iter().position(|o| o.mac == node.mac) {
                return Err(ConfigError::new(at("mac"), format!("{} is already used by node[{other}]", node.mac)));
            }
            let mgmt = node.mgmt_ip();
            let host = mgmt.addr_u32() & !mgmt.mask();
            if !(8..=30).contains(&mgmt.prefix) {
                return Err(ConfigError::new(at("mgmt_ip"), format!("{mgmt}: the prefix length must be 8..=30")));
            }
            if mgmt.addr[0] == 0 || mgmt.addr[0] == 127 || mgmt.addr[0] >= 224 {
                return Err(ConfigError::new(
                    at("mgmt_ip"),
                    format!("{mgmt} is not a unicast address a NIC can have (0/8, 127/8 and 224/3 are reserved)"),
                ));
            }
            if host == 0 || host == !mgmt.mask() {
                return Err(ConfigError::new(
                    at("mgmt_ip"),
                    format!("{mgmt} is the network or broadcast address of its subnet"),
                ));
            }
            if let Some(other) = self.nodes[..index].iter().position(|o| o.mgmt_ip().addr == mgmt.addr) {
                return Err(ConfigError::new(at("mgmt_ip"), format!("{mgmt} is already used by node[{other}]")));
            }
            if let Some(first) = self.nodes.first().map(|n| n.mgmt_ip()).filter(|first| !first.same_subnet(&mgmt)) {
                return Err(ConfigError::new(
                    at("mgmt_ip"),
                    format!("{mgmt} is not in node[0]'s management subnet {first}: the management plane is one Ethernet segment"),
                ));
            }
            if let Some(cores) = node.cores {
                if cores == 0 || cores > MAX_CORES_PER_NODE {
                    return Err(ConfigError::new(
                        at("cores"),
                        format!("must be 1..={MAX_CORES_PER_NODE}, found {cores}"),
                    ));
                }
            }
            if let Some(memory) = node.memory_mib {
                if memory < MIN_NODE_MEMORY_MIB {
                    return Err(ConfigError::new(
                        at("memory_mib"),
                        format!("{memory} MiB is too little; at least {MIN_NODE_MEMORY_MIB} MiB"),
                    ));
                }
                if self.hypervisor.reserved_memory_mib >= memory {
                    return Err(ConfigError::new(
                        "hypervisor.reserved_memory_mib",
                        format!(
                            "{} MiB reserved leaves nothing for the guest on node {} ({memory} MiB)",
                            self.hypervisor.reserved_memory_mib, node.id
                        ),
                    ));
                }
            }
            if self.qemu.is_some() && (node.cores.is_none() || node.memory_mib.is_none()) {
                return Err(ConfigError::new(
                    at(if node.cores.is_none() { "cores" } else { "memory_mib" }),
                    "required when the config has a [qemu] section (it sizes the emulated machine)",
                ));
            }
        }
        if self.hypervisor.reserved_memory_mib < 16 {
            return Err(ConfigError::new("hypervisor.reserved_memory_mib", "must be at least 16 MiB"));
        }
        if let Some(guest) = self.guest.memory_mib {
            let available: u64 = self
                .nodes
                .iter()
                .filter_map(|n| n.memory_mib)
                .map(|m| u64::from(m - self.hypervisor.reserved_memory_mib))
                .sum();
            let all_sized = self.nodes.iter().all(|n| n.memory_mib.is_some());
            if guest == 0 {
                return Err(ConfigError::new("guest.memory_mib", "must be more than 0"));
            }
            if all_sized && u64::from(guest) > available {
                return Err(ConfigError::new(
                    "guest.memory_mib",
                    format!(
                        "{guest} MiB asked, but the nodes only have {available} MiB after the hypervisor's reservation"
                    ),
                ));
            }
        }
        if self.guest.cmdline.len() > 2048 {
            return Err(ConfigError::new("guest.cmdline", "longer than the 2048 bytes Linux accepts"));
        }
        for (index, name) in self.debug.selftests.iter().enumerate() {
            if !KNOWN_SELFTESTS.contains(&name.as_str()) {
                return Err(ConfigError::new(
                    format!("debug.selftests[{index}]"),
                    format!("unknown self-test `{name}`; known: {}", KNOWN_SELFTESTS.join(", ")),
                ));
            }
        }
        if self.debug.wants("transport-soak") && !self.cluster.fabric {
            return Err(ConfigError::new(
                "debug.selftests",
                "`transport-soak` runs over the cluster fabric: set `cluster.fabric = true`",
            ));
        }
        if self.debug.wants("nic-bench") && !self.cluster.fabric {
            return Err(ConfigError::new(
                "debug.selftests",
                "`nic-bench` compares raw frames with transport messages through the fabric: set `cluster.fabric = true`",
            ));
        }
        if self.debug.wants("nic-ping") && self.cluster.fabric {
            return Err(ConfigError::new(
                "debug.selftests",
                "`nic-ping` drives the NIC itself, which the fabric's `nic` service owns: set `cluster.fabric = false`",
            ));
        }
        for (name, policy) in &self.services {
            if name.is_empty() || name.len() > 24 || !name.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
                return Err(ConfigError::new(format!("service.{name}"), "service names are 1-24 of a-z and `-`"));
            }
            if policy.max_restarts > 1000 {
                return Err(ConfigError::new(format!("service.{name}.max_restarts"), "at most 1000"));
            }
        }
        if let Some(qemu) = &self.qemu {
            if !qemu.cpu.contains("svm") && !qemu.cpu.starts_with("max") {
                return Err(ConfigError::new(
                    "qemu.cpu",
                    "the CPU model must offer SVM (e.g. `EPYC,+svm,+npt` or `max`)",
                ));
            }
        }
        Ok(())
    }
}
