//! Where things are: the workspace, build outputs, the firmware.

use std::path::{Path, PathBuf};

/// The workspace root (the folder holding this repo's top `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// Everything xtask produces lives under `target/sinter/`.
pub fn out_dir() -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"));
    let target = if target.is_absolute() { target } else { workspace_root().join(target) };
    target.join("sinter")
}

/// `hw-configs/<name>` if `name` is not a path to an existing file.
pub fn resolve_config(name: &Path) -> PathBuf {
    if name.exists() {
        return name.to_path_buf();
    }
    let in_configs = workspace_root().join("hw-configs").join(name);
    if in_configs.exists() {
        return in_configs;
    }
    let with_ext = in_configs.with_extension("toml");
    if with_ext.exists() {
        return with_ext;
    }
    name.to_path_buf()
}

pub fn default_config() -> PathBuf {
    workspace_root().join("hw-configs").join("qemu-2node.toml")
}
