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

/// Writes a copy of `hw-configs/<base>` with `extra` TOML appended (new
/// tables such as `[debug]` may follow the `[[node]]` array) and, if given,
/// every `cores = N` replaced. Returns its path in a fresh temp folder.
pub fn temp_config(base: &str, extra: &str, cores: Option<u16>) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let mut text = std::fs::read_to_string(hw_config(base)).expect("shipped config exists");
    if let Some(cores) = cores {
        text = text
            .lines()
            .map(|l| if l.starts_with("cores = ") { format!("cores = {cores}") } else { l.to_string() })
            .collect::<Vec<_>>()
            .join("\n");
    }
    text.push('\n');
    text.push_str(extra);
    let dir = std::env::temp_dir().join(format!(
        "sinter-test-config-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(base);
    std::fs::write(&path, text).expect("write temp config");
    path
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
