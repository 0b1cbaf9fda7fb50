//! Sinter's hardware/cluster configuration (`hw-configs/*.toml`): the schema,
//! TOML parsing and validation.
//!
//! The same code runs in `xtask` on the host (to check a config before an image
//! is written) and in the firmware (to read the copy on the USB stick), so it
//! is `no_std` + `alloc`. A config is input from a person: every problem is
//! reported as a [`ConfigError`] naming the key and what is wrong. This crate
//! must never panic on any input and never touch hardware.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod error;
mod schema;
mod validate;
mod values;

pub use error::{ConfigError, FileError};
pub use schema::{
    ClusterConfig, ClusterSection, DebugSection, GuestSection, HypervisorSection, NicModel, NodeConfig, NodeSelector,
    OnPanic, PowerOff, QemuSection, ServicePolicy, UnbackedMmio, KNOWN_SELFTESTS, MAX_NODES,
};
pub use values::{ClusterKey, Ipv4Net, MacAddr};

/// Parses and validates a cluster config from TOML text.
pub fn parse_cluster(text: &str) -> Result<ClusterConfig, ConfigError> {
    let config: ClusterConfig = toml::from_str(text).map_err(|e| ConfigError::from_toml(text, &e))?;
    config.validate()?;
    Ok(config)
}

/// Parses the per-image node selector (`node.toml`: which member of the
/// cluster this image is) and checks it against the cluster.
pub fn parse_node_selector(text: &str, cluster: &ClusterConfig) -> Result<NodeSelector, ConfigError> {
    let selector: NodeSelector = toml::from_str(text).map_err(|e| ConfigError::from_toml(text, &e))?;
    if cluster.node(selector.node).is_none() {
        return Err(ConfigError::new(
            "node",
            alloc::format!(
                "node {} is not a member of cluster `{}` ({} nodes)",
                selector.node,
                cluster.cluster.name,
                cluster.nodes.len()
            ),
        ));
    }
    Ok(selector)
}

#[cfg(test)]
mod tests;
