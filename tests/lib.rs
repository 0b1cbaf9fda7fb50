//! Helpers shared by the whole-system tests in `tests/*.rs`. The tests boot
//! real QEMU clusters through `xtask`'s harness and assert on what the nodes
//! print and how QEMU exits; `cargo xtask test` runs them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

/// Generous bound for a TCG boot through OVMF while other tests share the
/// two cores; a boot normally takes 5–15 s.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(240);

pub fn hw_config(name: &str) -> PathBuf {
    xtask::paths::workspace_root().join("hw-configs").join(name)
}

/// Parses a `banner: key=value ...` line printed by the kernel.
pub fn parse_banner(line: &str) -> HashMap<String, String> {
    line.trim_start_matches("banner:")
        .split_whitespace()
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn banner_parsing() {
        let b = super::parse_banner("banner: node=1 cluster=x cores=2 mac=52:54:00:5e:00:01");
        assert_eq!(b["node"], "1");
        assert_eq!(b["mac"], "52:54:00:5e:00:01");
        assert_eq!(b.len(), 4);
    }
}
