//! Checks (and where it is cheap and safe, installs) what the harness needs.
//! A missing prerequisite is one line saying how to fix it.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Result};

pub const FIRMWARE_TARGETS: [&str; 2] = ["x86_64-unknown-none", "x86_64-unknown-uefi"];

/// OVMF's code and variable-store templates.
#[derive(Debug, Clone)]
pub struct Ovmf {
    pub code: PathBuf,
    pub vars: PathBuf,
}

/// Adds missing rustup targets (rustup only downloads the standard library
/// for them; nothing else on the system changes).
pub fn ensure_targets() -> Result<()> {
    ensure_rustup_targets(&FIRMWARE_TARGETS)
}

/// Adds whichever of `targets` rustup does not have yet.
pub fn ensure_rustup_targets(targets: &[&str]) -> Result<()> {
    let Ok(output) = Command::new("rustup").args(["target", "list", "--installed"]).output() else {
        bail!("rustup not found: install Rust with rustup (https://rustup.rs), then rerun");
    };
    let installed = String::from_utf8_lossy(&output.stdout).to_string();
    let missing: Vec<&str> = targets.iter().copied().filter(|t| !installed.lines().any(|l| l.trim() == *t)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: adding rustup targets {}", missing.join(" "));
    let status = Command::new("rustup").arg("target").arg("add").args(&missing).status()?;
    if !status.success() {
        bail!("could not add rustup targets: run `rustup target add {}`", missing.join(" "));
    }
    Ok(())
}

pub fn qemu_binary() -> Result<PathBuf> {
    let path =
        std::env::var_os("SINTER_QEMU").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("qemu-system-x86_64"));
    match Command::new(&path).arg("--version").output() {
        Ok(out) if out.status.success() => Ok(path),
        _ => bail!("qemu-system-x86_64 not found: run `sudo apt-get install qemu-system-x86` (or set SINTER_QEMU)"),
    }
}

pub fn ovmf() -> Result<Ovmf> {
    let candidates = [
        ("/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"),
        ("/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"),
        ("/usr/share/edk2/ovmf/OVMF_CODE.fd", "/usr/share/edk2/ovmf/OVMF_VARS.fd"),
    ];
    if let (Some(code), Some(vars)) = (std::env::var_os("SINTER_OVMF_CODE"), std::env::var_os("SINTER_OVMF_VARS")) {
        return Ok(Ovmf { code: code.into(), vars: vars.into() });
    }
    for (code, vars) in candidates {
        if std::path::Path::new(code).exists() && std::path::Path::new(vars).exists() {
            return Ok(Ovmf { code: code.into(), vars: vars.into() });
        }
    }
    bail!("OVMF firmware not found: run `sudo apt-get install ovmf` (or set SINTER_OVMF_CODE and SINTER_OVMF_VARS)")
}

/// Everything `cargo xtask run` needs.
pub fn check_for_run() -> Result<(PathBuf, Ovmf)> {
    ensure_targets()?;
    Ok((qemu_binary()?, ovmf()?))
}
