//! Building the firmware: the UEFI loader and the kernel, each for its target.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::paths::workspace_root;

#[derive(Debug, Clone)]
pub struct Firmware {
    pub loader_efi: PathBuf,
    pub kernel_elf: PathBuf,
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"))
}

fn cargo_build(package: &str, target: &str, features: &[String]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root()).args(["build", "--release", "--package", package, "--target", target]);
    if !features.is_empty() {
        cmd.arg("--features").arg(features.join(","));
    }
    // defmt's log filter is fixed at build time.
    if std::env::var_os("DEFMT_LOG").is_none() {
        cmd.env("DEFMT_LOG", "info");
    }
    let status = cmd.status().with_context(|| format!("running cargo build for {package}"))?;
    if !status.success() {
        bail!("building {package} for {target} failed");
    }
    Ok(())
}

/// Builds loader and kernel (release profile, with debug info for symbols).
/// `kernel_features` selects test-only kernel behaviour.
pub fn build_firmware(kernel_features: &[String]) -> Result<Firmware> {
    eprintln!("xtask: building the UEFI loader and the kernel");
    cargo_build("sinter-loader", "x86_64-unknown-uefi", &[])?;
    cargo_build("sinter-kernel", "x86_64-unknown-none", kernel_features)?;
    let target = target_dir();
    let firmware = Firmware {
        loader_efi: target.join("x86_64-unknown-uefi/release/sinter-loader.efi"),
        kernel_elf: target.join("x86_64-unknown-none/release/sinter-kernel"),
    };
    for file in [&firmware.loader_efi, &firmware.kernel_elf] {
        if !file.exists() {
            bail!("build succeeded but {} is missing", file.display());
        }
    }
    Ok(firmware)
}
