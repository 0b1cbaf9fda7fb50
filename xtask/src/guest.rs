//! The guest payload: a stock Debian kernel and a busybox initramfs whose
//! `/init` runs `sinter-workload` (tests/workload) and powers off.
//!
//! [`prepare`] builds it; [`boot_plain_qemu`] boots it on plain QEMU (TCG,
//! no Sinter): the baseline Sinter's own runs are compared against. See
//! docs/guest.md.
//!
//! Packages come from Debian with `apt-get download` into
//! `target/sinter/cache/`: `linux-image-amd64` is a metapackage, so the
//! real `linux-image-<abi>-amd64` it depends on is resolved with
//! `apt-cache depends` each time (a local lookup); a package already in the
//! cache is not downloaded again, so a cache hit never touches the network.

pub mod cpio;
pub mod deb;

use std::ffi::OsStr;
use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::console::strip_escapes;
use crate::paths::{out_dir, workspace_root};
use crate::prereq;
use crate::qemu::NodeExit;

/// The Rust target the workload is built for: static, runs on any Linux.
pub const GUEST_TARGET: &str = "x86_64-unknown-linux-musl";
/// Debian's metapackage for the current stock amd64 kernel.
pub const KERNEL_METAPACKAGE: &str = "linux-image-amd64";
pub const BUSYBOX_PACKAGE: &str = "busybox-static";
/// The kernel command line of a plain-QEMU boot. `panic=-1` makes a kernel
/// panic end the run at once (QEMU has `-no-reboot`) instead of hanging
/// until the timeout; the panic is reported from the console.
pub const PLAIN_QEMU_APPEND: &str = "console=ttyS0 quiet panic=-1";
/// Environment variables that replace the downloaded kernel / busybox
/// with local files (for hosts without apt).
pub const KERNEL_OVERRIDE_ENV: &str = "SINTER_GUEST_KERNEL";
pub const BUSYBOX_OVERRIDE_ENV: &str = "SINTER_GUEST_BUSYBOX";

/// Busybox applets linked in `/bin` (what `/init` and a person debugging
/// the guest use).
pub const BUSYBOX_APPLETS: &[&str] = &[
    "sh", "ash", "cat", "dmesg", "echo", "free", "halt", "ls", "mkdir", "mount", "nproc", "poweroff", "ps", "reboot",
    "sleep", "sync", "umount", "uname",
];

/// The initramfs' `/init`.
pub const INIT_SCRIPT: &str = r#"#!/bin/sh
# /init of Sinter's guest initramfs (written by xtask/src/guest.rs).
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# Firmware may leave the console mid-line (SeaBIOS: "Booting from ROM..").
echo
echo "init: running /bin/sinter-workload on $(uname -r)"
/bin/sinter-workload
status=$?
echo "init: sinter-workload exited with status $status"
sync
# ACPI power-off: QEMU exits with status 0.
poweroff -f
echo "init: poweroff -f failed"
"#;

/// A Debian package at one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebianPackage {
    pub name: String,
    pub version: String,
}

impl DebianPackage {
    /// `name_version` with the epoch colon escaped as apt does (`%3a`).
    fn key(&self) -> String {
        format!("{}_{}", self.name, self.version.replace(':', "%3a"))
    }
}

impl fmt::Display for DebianPackage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.version)
    }
}

/// Where a payload file came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Debian(DebianPackage),
    /// Given by an environment variable ([`KERNEL_OVERRIDE_ENV`] or
    /// [`BUSYBOX_OVERRIDE_ENV`]).
    Local(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Debian(package) => write!(f, "Debian package {package}"),
            Source::Local(path) => write!(f, "local file {}", path.display()),
        }
    }
}

/// Everything a boot needs: a bzImage and a gzipped newc initramfs.
#[derive(Debug, Clone)]
pub struct GuestPayload {
    pub kernel: PathBuf,
    pub initramfs: PathBuf,
    pub kernel_source: Source,
    pub busybox_source: Source,
    /// The static workload binary that went into the initramfs.
    pub workload: PathBuf,
}

/// Names of the payload files on the stick (`\\sinter\\payload\\NAME`)
/// the firmware boots as the guest: the bzImage and the initramfs.
pub const PAYLOAD_KERNEL: &str = "vmlinuz";
pub const PAYLOAD_INITRD: &str = "initrd.img";

/// The payload files for a Sinter run ([`crate::cluster::ClusterOptions::payload`]):
/// the firmware on the boot node starts the guest when it finds them.
pub fn sinter_payload(payload: &GuestPayload) -> Result<crate::images::Payload> {
    let kernel = std::fs::read(&payload.kernel).with_context(|| format!("reading {}", payload.kernel.display()))?;
    let initrd =
        std::fs::read(&payload.initramfs).with_context(|| format!("reading {}", payload.initramfs.display()))?;
    Ok(vec![(PAYLOAD_KERNEL.to_string(), kernel), (PAYLOAD_INITRD.to_string(), initrd)])
}

/// `target/sinter/cache/`: downloaded packages and what was taken out of
/// them, kept across runs.
pub fn cache_dir() -> PathBuf {
    out_dir().join("cache")
}

/// Builds the workload, fetches (or reuses) the kernel and busybox and
/// writes the initramfs. Progress goes to stderr.
pub fn prepare() -> Result<GuestPayload> {
    let workload = build_workload()?;
    let cache = cache_dir();
    std::fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
    let (kernel, kernel_source, busybox, busybox_source) = fetch_kernel_and_busybox(&cache)?;
    let busybox_bytes = std::fs::read(&busybox).with_context(|| format!("reading {}", busybox.display()))?;
    let workload_bytes = std::fs::read(&workload).with_context(|| format!("reading {}", workload.display()))?;
    let image = build_initramfs(&busybox_bytes, &workload_bytes)?;
    let guest_dir = out_dir().join("guest");
    std::fs::create_dir_all(&guest_dir).with_context(|| format!("creating {}", guest_dir.display()))?;
    let initramfs = guest_dir.join("initramfs.cpio.gz");
    write_atomically(&initramfs, &image)?;
    Ok(GuestPayload { kernel, initramfs, kernel_source, busybox_source, workload })
}

// ------------------------------------------------------------ workload --

/// `cargo build --release -p sinter-workload --target x86_64-unknown-linux-musl`
/// (adding the rustup target if it is missing); returns the binary.
pub fn build_workload() -> Result<PathBuf> {
    prereq::ensure_rustup_targets(&[GUEST_TARGET])?;
    eprintln!("xtask: building sinter-workload for {GUEST_TARGET}");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(workspace_root())
        .args(["build", "--release", "--package", "sinter-workload", "--target", GUEST_TARGET])
        // The initramfs needs no debug info; symbols stay for backtraces.
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
        .status()
        .context("running cargo build for sinter-workload")?;
    if !status.success() {
        bail!("building sinter-workload for {GUEST_TARGET} failed");
    }
    let target_dir = out_dir().parent().map(Path::to_path_buf).unwrap_or_else(|| workspace_root().join("target"));
    let binary = target_dir.join(GUEST_TARGET).join("release").join("sinter-workload");
    if !binary.exists() {
        bail!("build succeeded but {} is missing", binary.display());
    }
    Ok(binary)
}

// ------------------------------------------------------------ packages --

/// What `apt-cache`/`apt-get` report, parsed.
pub mod apt {
    /// The first `Depends:` of `apt-cache depends` output that starts with
    /// `prefix` (virtual packages in `<...>` and the package itself are
    /// skipped).
    pub fn first_dependency(output: &str, package: &str, prefix: &str) -> Option<String> {
        output.lines().find_map(|line| {
            let line = line.trim().trim_start_matches('|');
            let name = line.strip_prefix("Depends:")?.split_whitespace().next()?;
            (name.starts_with(prefix) && name != package && !name.starts_with('<')).then(|| name.to_string())
        })
    }

    /// The `Version:` of `apt-cache show --no-all-versions` output.
    pub fn version(output: &str) -> Option<String> {
        output.lines().find_map(|l| l.strip_prefix("Version:").map(|v| v.trim().to_string())).filter(|v| !v.is_empty())
    }
}

fn tool_missing(tool: &str) -> anyhow::Error {
    anyhow!(
        "{tool} not found: the guest kernel and busybox are Debian packages ({KERNEL_METAPACKAGE}, {BUSYBOX_PACKAGE}); \
         run on a Debian or Ubuntu host, or set {KERNEL_OVERRIDE_ENV} and {BUSYBOX_OVERRIDE_ENV} to local files"
    )
}

/// Runs an apt tool, returning its output; a missing tool is a one-line error.
fn run_apt(tool: &str, args: &[&str], dir: Option<&Path>) -> Result<Output> {
    let mut cmd = Command::new(tool);
    cmd.args(args).env("LC_ALL", "C").stdin(Stdio::null());
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    match cmd.output() {
        Ok(output) => Ok(output),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(tool_missing(tool)),
        Err(e) => Err(anyhow!("running {tool}: {e}")),
    }
}

/// The last non-empty line of a command's stderr (apt's `E: ...`).
fn last_error_line(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let line = lines.iter().rev().find(|l| l.starts_with("E:")).or(lines.last());
    line.map(|l| l.to_string()).unwrap_or_else(|| format!("exit status {}", output.status))
}

fn candidate_version(package: &str) -> Result<DebianPackage> {
    let output = run_apt("apt-cache", &["show", "--no-all-versions", package], None)?;
    let text = String::from_utf8_lossy(&output.stdout);
    match apt::version(&text) {
        Some(version) if output.status.success() => Ok(DebianPackage { name: package.to_string(), version }),
        _ => bail!("apt-cache has no version of {package}: {}", last_error_line(&output)),
    }
}

/// The current kernel package and busybox, as the local apt lists say.
fn resolve_packages() -> Result<(DebianPackage, DebianPackage)> {
    let output = run_apt("apt-cache", &["depends", KERNEL_METAPACKAGE], None)?;
    let text = String::from_utf8_lossy(&output.stdout);
    let kernel_name = apt::first_dependency(&text, KERNEL_METAPACKAGE, "linux-image-")
        .filter(|_| output.status.success())
        .ok_or_else(|| {
            anyhow!("apt-cache depends {KERNEL_METAPACKAGE} names no linux-image package: {}", last_error_line(&output))
        })?;
    Ok((candidate_version(&kernel_name)?, candidate_version(BUSYBOX_PACKAGE)?))
}

fn apt_get_update(reason: &str) -> Result<()> {
    eprintln!("xtask: apt-get update ({reason})");
    let output = run_apt("apt-get", &["update", "-q"], None)?;
    if !output.status.success() {
        bail!("apt-get update failed (it needs root and the Debian mirror): {}", last_error_line(&output));
    }
    Ok(())
}

/// `apt-get download name=version` into `cache/debs/`, through a private
/// temporary folder so that a failed or concurrent download never leaves
/// a partial file under the final name.
fn download(cache: &Path, package: &DebianPackage) -> Result<PathBuf> {
    let debs = cache.join("debs");
    let tmp = cache.join(format!("download-{}-{}", unique_suffix(), package.key()));
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    eprintln!("xtask: downloading {package} (apt-get download)");
    let spec = format!("{}={}", package.name, package.version);
    let output = run_apt("apt-get", &["download", "-q", &spec], Some(&tmp));
    let result = (|| {
        let output = output?;
        if !output.status.success() {
            bail!("apt-get download {spec} failed: {}", last_error_line(&output));
        }
        let deb = std::fs::read_dir(&tmp)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension() == Some(OsStr::new("deb")))
            .ok_or_else(|| anyhow!("apt-get download {spec} wrote no .deb"))?;
        std::fs::create_dir_all(&debs)?;
        let dest = debs.join(deb.file_name().unwrap_or_default());
        std::fs::rename(&deb, &dest).with_context(|| format!("moving {} to {}", deb.display(), dest.display()))?;
        Ok(dest)
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

/// Where the file taken out of `package` is cached.
fn artifact_path(cache: &Path, package: &DebianPackage, file: &str) -> PathBuf {
    cache.join(package.key()).join(file)
}

/// The cached artifact of `package`, downloading and extracting it on a
/// miss. `pick` selects the file in the package's data archive.
fn fetch_artifact(cache: &Path, package: &DebianPackage, file: &str, pick: &dyn Fn(&str) -> bool) -> Result<PathBuf> {
    let artifact = artifact_path(cache, package, file);
    if artifact.exists() {
        return Ok(artifact);
    }
    let deb = match find_cached_deb(cache, package) {
        Some(deb) => deb,
        None => download(cache, package)?,
    };
    let extracted = deb::extract(&deb, pick).with_context(|| format!("taking {file} out of {package}"))?;
    eprintln!("xtask: {package}: /{} -> {}", extracted.path, artifact.display());
    std::fs::create_dir_all(artifact.parent().unwrap_or(cache))?;
    write_atomically(&artifact, &extracted.data)?;
    Ok(artifact)
}

fn find_cached_deb(cache: &Path, package: &DebianPackage) -> Option<PathBuf> {
    let prefix = format!("{}_", package.key());
    std::fs::read_dir(cache.join("debs"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.file_name().and_then(OsStr::to_str).is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".deb")))
}

const KERNEL_FILE: &str = "vmlinuz";
const BUSYBOX_FILE: &str = "busybox";
const RESOLVED_FILE: &str = "resolved.txt";

fn is_kernel(path: &str) -> bool {
    path.starts_with("boot/vmlinuz-")
}

fn is_busybox(path: &str) -> bool {
    path == "bin/busybox" || path == "usr/bin/busybox"
}

/// The last resolution, for hosts whose apt lists are gone (offline reuse).
fn read_resolved(cache: &Path) -> Option<(DebianPackage, DebianPackage)> {
    let text = std::fs::read_to_string(cache.join(RESOLVED_FILE)).ok()?;
    let mut lines = text.lines().filter_map(|l| {
        let mut parts = l.split_whitespace();
        let _role = parts.next()?;
        Some(DebianPackage { name: parts.next()?.to_string(), version: parts.next()?.to_string() })
    });
    Some((lines.next()?, lines.next()?))
}

fn write_resolved(cache: &Path, kernel: &DebianPackage, busybox: &DebianPackage) -> Result<()> {
    let text = format!("kernel {} {}\nbusybox {} {}\n", kernel.name, kernel.version, busybox.name, busybox.version);
    write_atomically(&cache.join(RESOLVED_FILE), text.as_bytes())
}

type Fetched = (PathBuf, Source, PathBuf, Source);

fn fetch_kernel_and_busybox(cache: &Path) -> Result<Fetched> {
    let kernel_override = std::env::var_os(KERNEL_OVERRIDE_ENV).map(PathBuf::from);
    let busybox_override = std::env::var_os(BUSYBOX_OVERRIDE_ENV).map(PathBuf::from);
    if let (Some(kernel), Some(busybox)) = (&kernel_override, &busybox_override) {
        for (path, var) in [(kernel, KERNEL_OVERRIDE_ENV), (busybox, BUSYBOX_OVERRIDE_ENV)] {
            if !path.is_file() {
                bail!("{var}={}: no such file", path.display());
            }
        }
        return Ok((kernel.clone(), Source::Local(kernel.clone()), busybox.clone(), Source::Local(busybox.clone())));
    }

    let fetch_both = |kernel: &DebianPackage, busybox: &DebianPackage| -> Result<(PathBuf, PathBuf)> {
        Ok((
            fetch_artifact(cache, kernel, KERNEL_FILE, &is_kernel)?,
            fetch_artifact(cache, busybox, BUSYBOX_FILE, &is_busybox)?,
        ))
    };
    let cached = |kernel: &DebianPackage, busybox: &DebianPackage| {
        artifact_path(cache, kernel, KERNEL_FILE).exists() && artifact_path(cache, busybox, BUSYBOX_FILE).exists()
    };

    let (kernel, busybox, (kernel_path, busybox_path)) = match resolve_packages() {
        Ok((kernel, busybox)) => match fetch_both(&kernel, &busybox) {
            Ok(paths) => (kernel, busybox, paths),
            Err(first) => {
                // Stale lists name versions the mirror no longer has.
                eprintln!("xtask: {first:#}");
                apt_get_update("the package lists may be stale").map_err(|e| anyhow!("{first:#}; then {e:#}"))?;
                let (kernel, busybox) = resolve_packages()?;
                let paths = fetch_both(&kernel, &busybox)?;
                (kernel, busybox, paths)
            }
        },
        Err(first) => match read_resolved(cache).filter(|(k, b)| cached(k, b)) {
            Some((kernel, busybox)) => {
                eprintln!("xtask: {first:#}; using the cached {kernel} and {busybox}");
                let paths = fetch_both(&kernel, &busybox)?;
                (kernel, busybox, paths)
            }
            None => {
                run_apt("apt-get", &["--version"], None)?;
                apt_get_update("the package lists do not name the guest packages")
                    .map_err(|e| anyhow!("{first:#}; then {e:#}"))?;
                let (kernel, busybox) = resolve_packages()?;
                let paths = fetch_both(&kernel, &busybox)?;
                (kernel, busybox, paths)
            }
        },
    };
    write_resolved(cache, &kernel, &busybox)?;
    let (kernel_path, kernel_source) = match kernel_override {
        Some(path) => (path.clone(), Source::Local(path)),
        None => (kernel_path, Source::Debian(kernel)),
    };
    let (busybox_path, busybox_source) = match busybox_override {
        Some(path) => (path.clone(), Source::Local(path)),
        None => (busybox_path, Source::Debian(busybox)),
    };
    Ok((kernel_path, kernel_source, busybox_path, busybox_source))
}

/// A name suffix no other writer uses: tests prepare payloads from several
/// threads and processes at once.
fn unique_suffix() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

fn write_atomically(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", unique_suffix()));
    std::fs::write(&tmp, data).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

// ----------------------------------------------------------- initramfs --

/// The initramfs as an uncompressed newc cpio archive:
///
/// ```text
/// /init                   the script INIT_SCRIPT (0755)
/// /bin/busybox            static busybox from Debian (0755)
/// /bin/<applet>           symlinks to busybox (BUSYBOX_APPLETS)
/// /bin/sinter-workload    the static workload (0755)
/// /dev/console            character device 5:1, the console init starts on
/// /proc /sys /tmp /root   empty mount points and homes
/// ```
pub fn initramfs_cpio(busybox: &[u8], workload: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut w = cpio::CpioWriter::new(Vec::new());
    for dir in ["bin", "dev", "proc", "sys", "tmp", "root"] {
        w.dir(dir, if dir == "tmp" { 0o1777 } else { 0o755 })?;
    }
    w.char_device("dev/console", 0o600, 5, 1)?;
    w.file("bin/busybox", 0o755, busybox)?;
    for applet in BUSYBOX_APPLETS {
        w.symlink(&format!("bin/{applet}"), "busybox")?;
    }
    w.file("bin/sinter-workload", 0o755, workload)?;
    w.file("init", 0o755, INIT_SCRIPT.as_bytes())?;
    w.finish()
}

/// [`initramfs_cpio`], gzipped (the Debian kernel unpacks gzip initramfs).
pub fn build_initramfs(busybox: &[u8], workload: &[u8]) -> Result<Vec<u8>> {
    let archive = initramfs_cpio(busybox, workload).context("writing the initramfs")?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    gz.write_all(&archive)?;
    Ok(gz.finish()?)
}

// ---------------------------------------------------------- plain QEMU --

/// How to boot the payload on plain QEMU.
#[derive(Debug, Clone)]
pub struct PlainQemuOptions {
    pub smp: u16,
    pub memory_mib: u32,
    /// QEMU's `-cpu` (default `max`; the guest benchmark uses the node's
    /// model, e.g. `EPYC`, so both guests see comparable CPUs).
    pub cpu: String,
    /// The run is killed (and reported as `TimedOut`) after this long.
    pub timeout: Duration,
    /// Words appended to [`PLAIN_QEMU_APPEND`] (e.g. `WORKLOAD_MEM_PERCENT=50`).
    pub extra_append: String,
    /// Echo the console to stdout as it arrives, prefixed `[guest]`.
    pub echo: bool,
}

impl PlainQemuOptions {
    pub fn new(smp: u16, memory_mib: u32) -> Self {
        PlainQemuOptions {
            smp,
            memory_mib,
            cpu: "max".to_string(),
            timeout: Duration::from_secs(600),
            extra_append: String::new(),
            echo: false,
        }
    }
}

/// One console line and when it arrived (since QEMU was started).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedLine {
    pub at: Duration,
    pub text: String,
    /// From QEMU's stderr rather than the guest's serial console.
    pub from_qemu: bool,
}

/// What a plain-QEMU boot printed and how it ended.
#[derive(Debug, Clone)]
pub struct PlainBoot {
    pub lines: Vec<TimedLine>,
    pub exit: NodeExit,
    /// When the workload printed its first line (`workload: nproc=...`).
    pub first_workload_line: Option<Duration>,
    /// When the workload printed `N passed, N failed`.
    pub summary_line: Option<Duration>,
    /// From QEMU's start to its exit.
    pub total: Duration,
    /// The QEMU command line, for reports.
    pub command: String,
}

/// `N passed, N failed` (an optional `word:` before it) as (passed, failed).
pub fn parse_summary(line: &str) -> Option<(u32, u32)> {
    let line = line.trim();
    let line = match line.split_once(": ") {
        Some((word, rest)) if !word.contains(' ') => rest,
        _ => line,
    };
    let (passed, failed) = line.split_once(", ")?;
    let passed = passed.strip_suffix(" passed")?.parse().ok()?;
    let failed = failed.strip_suffix(" failed")?.parse().ok()?;
    Some((passed, failed))
}

impl PlainBoot {
    /// The guest console (QEMU's own stderr lines excluded).
    pub fn console(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().filter(|l| !l.from_qemu).map(|l| l.text.as_str())
    }

    /// Everything printed, one line each (QEMU's stderr prefixed `qemu:`).
    pub fn log(&self) -> String {
        self.lines
            .iter()
            .map(|l| if l.from_qemu { format!("qemu: {}", l.text) } else { l.text.clone() })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The value of a `workload: key=value` line.
    pub fn workload_value(&self, key: &str) -> Option<String> {
        let prefix = format!("workload: {key}=");
        self.console().find_map(|l| l.strip_prefix(&prefix).map(|v| v.trim().to_string()))
    }

    /// The workload's `N passed, N failed`.
    pub fn summary(&self) -> Option<(u32, u32)> {
        self.console().find_map(parse_summary)
    }

    /// `check <name>: ...` lines, as (name, ok, detail).
    pub fn checks(&self) -> Vec<(String, bool, String)> {
        self.console()
            .filter_map(|l| {
                let (name, verdict) = l.strip_prefix("check ")?.split_once(": ")?;
                let ok = verdict == "ok";
                Some((name.to_string(), ok, verdict.strip_prefix("FAILED").unwrap_or("").trim().to_string()))
            })
            .collect()
    }

    pub fn kernel_panicked(&self) -> bool {
        self.console().any(|l| l.contains("Kernel panic"))
    }

    /// Powered off by ACPI, no panic, and the workload reported no failure.
    pub fn is_clean(&self) -> bool {
        self.exit == NodeExit::PoweredOff
            && !self.kernel_panicked()
            && matches!(self.summary(), Some((passed, 0)) if passed > 0)
    }
}

/// The plain-QEMU command line (TCG, no Sinter):
/// `qemu-system-x86_64 -machine q35 -accel tcg -cpu max -smp N -m M -kernel K -initrd I -append ... -nographic -no-reboot`.
pub fn plain_qemu_command(qemu: &Path, payload: &GuestPayload, options: &PlainQemuOptions) -> Command {
    let mut append = PLAIN_QEMU_APPEND.to_string();
    if !options.extra_append.trim().is_empty() {
        append.push(' ');
        append.push_str(options.extra_append.trim());
    }
    let mut cmd = Command::new(qemu);
    cmd.args(["-machine", "q35", "-accel", "tcg", "-cpu", &options.cpu])
        .args(["-smp", &options.smp.to_string()])
        .args(["-m", &format!("{}M", options.memory_mib)])
        .arg("-kernel")
        .arg(&payload.kernel)
        .arg("-initrd")
        .arg(&payload.initramfs)
        .args(["-append", &append])
        .args(["-nographic", "-no-reboot"]);
    cmd
}

/// A QEMU child that is killed and reaped when dropped (and, through
/// `PR_SET_PDEATHSIG`, when this process dies).
struct QemuProcess(Child);

impl Drop for QemuProcess {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

fn spawn_timed_reader(
    source: impl Read + Send + 'static,
    start: Instant,
    from_qemu: bool,
    lines: Arc<Mutex<Vec<TimedLine>>>,
    echo: bool,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(source);
        let mut raw = Vec::new();
        loop {
            raw.clear();
            match reader.read_until(b'\n', &mut raw) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let at = start.elapsed();
            let text = strip_escapes(&String::from_utf8_lossy(&raw)).trim_end().to_string();
            if text.trim().is_empty() {
                continue;
            }
            if echo {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{} {text}", if from_qemu { "[qemu]" } else { "[guest]" });
            }
            lines.lock().unwrap_or_else(|p| p.into_inner()).push(TimedLine { at, text, from_qemu });
        }
    })
}

/// Boots `payload` on plain QEMU with `smp` vCPUs and `memory_mib` of RAM
/// and waits (at most 10 minutes) for it to power off.
pub fn boot_plain_qemu(payload: &GuestPayload, smp: u16, memory_mib: u32) -> Result<PlainBoot> {
    boot_plain_qemu_with(payload, &PlainQemuOptions::new(smp, memory_mib))
}

/// [`boot_plain_qemu`] with every option.
pub fn boot_plain_qemu_with(payload: &GuestPayload, options: &PlainQemuOptions) -> Result<PlainBoot> {
    let qemu = prereq::qemu_binary()?;
    let mut cmd = plain_qemu_command(&qemu, payload, options);
    let command = format!(
        "{} {}",
        qemu.display(),
        cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ")
    );
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let die_with_parent = || {
        // SAFETY: prctl(PR_SET_PDEATHSIG) only sets a flag on the calling
        // (child) process and is async-signal-safe.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
        Ok(())
    };
    // SAFETY: the closure runs between fork and exec and only calls the
    // async-signal-safe prctl, so QEMU dies if this process dies first.
    unsafe { cmd.pre_exec(die_with_parent) };
    let start = Instant::now();
    let child = cmd.spawn().with_context(|| format!("starting {}", qemu.display()))?;
    let mut qemu_process = QemuProcess(child);
    let lines = Arc::new(Mutex::new(Vec::new()));
    let mut readers = Vec::new();
    if let Some(stdout) = qemu_process.0.stdout.take() {
        readers.push(spawn_timed_reader(stdout, start, false, lines.clone(), options.echo));
    }
    if let Some(stderr) = qemu_process.0.stderr.take() {
        readers.push(spawn_timed_reader(stderr, start, true, lines.clone(), true));
    }
    let deadline = start + options.timeout;
    let exit = loop {
        if let Some(status) = qemu_process.0.try_wait().context("waiting for QEMU")? {
            break NodeExit::from_status(status);
        }
        if Instant::now() >= deadline {
            let _ = qemu_process.0.kill();
            let _ = qemu_process.0.wait();
            break NodeExit::TimedOut;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let total = start.elapsed();
    drop(qemu_process);
    for reader in readers {
        let _ = reader.join();
    }
    let lines = std::mem::take(&mut *lines.lock().unwrap_or_else(|p| p.into_inner()));
    let first_workload_line = lines.iter().find(|l| !l.from_qemu && l.text.starts_with("workload:")).map(|l| l.at);
    let summary_line = lines.iter().find(|l| !l.from_qemu && parse_summary(&l.text).is_some()).map(|l| l.at);
    Ok(PlainBoot { lines, exit, first_workload_line, summary_line, total, command })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apt_output_is_parsed() {
        let depends = "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n";
        assert_eq!(
            apt::first_dependency(depends, "linux-image-amd64", "linux-image-").as_deref(),
            Some("linux-image-6.1.0-56-amd64")
        );
        let odd = "linux-image-amd64\n |Depends: <linux-image-virtual>\n  Depends: linux-image-6.12.9-amd64\n";
        assert_eq!(
            apt::first_dependency(odd, "linux-image-amd64", "linux-image-").as_deref(),
            Some("linux-image-6.12.9-amd64")
        );
        assert_eq!(apt::first_dependency("E: No packages found\n", "linux-image-amd64", "linux-image-"), None);
        let show = "Package: busybox-static\nVersion: 1:1.35.0-4+deb12u1+b1\nSize: 928188\n";
        assert_eq!(apt::version(show).as_deref(), Some("1:1.35.0-4+deb12u1+b1"));
        assert_eq!(apt::version("Package: x\n"), None);
    }

    #[test]
    fn package_keys_escape_the_epoch_like_apt() {
        let p = DebianPackage { name: "busybox-static".into(), version: "1:1.35.0-4+deb12u1+b1".into() };
        assert_eq!(p.key(), "busybox-static_1%3a1.35.0-4+deb12u1+b1");
        assert_eq!(p.to_string(), "busybox-static 1:1.35.0-4+deb12u1+b1");
    }

    #[test]
    fn resolved_file_round_trips() {
        let dir = std::env::temp_dir().join(format!("sinter-guest-resolved-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(read_resolved(&dir), None);
        let k = DebianPackage { name: "linux-image-6.1.0-56-amd64".into(), version: "6.1.192-2".into() };
        let b = DebianPackage { name: "busybox-static".into(), version: "1:1.35.0-4".into() };
        write_resolved(&dir, &k, &b).unwrap();
        assert_eq!(read_resolved(&dir), Some((k, b)));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn cached_artifacts_are_used_without_apt() {
        // A populated cache needs neither apt nor the .deb: the artifact is
        // returned as is (`pick` and the package are never consulted).
        let dir = std::env::temp_dir().join(format!("sinter-guest-cache-{}", std::process::id()));
        let k = DebianPackage { name: "linux-image-9.9.9-amd64".into(), version: "9.9.9-1".into() };
        let path = artifact_path(&dir, &k, KERNEL_FILE);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"bzImage").unwrap();
        let got = fetch_artifact(&dir, &k, KERNEL_FILE, &|_| panic!("must not read a .deb")).unwrap();
        assert_eq!(got, path);
        // A cached .deb (no artifact yet) is extracted, not downloaded.
        let b = DebianPackage { name: "busybox-static".into(), version: "1:1.0-1".into() };
        std::fs::create_dir_all(dir.join("debs")).unwrap();
        let deb = deb::tests::build_deb(&[("bin/busybox", 0o755, b"BB")], &[], "xz");
        std::fs::write(dir.join("debs").join("busybox-static_1%3a1.0-1_amd64.deb"), deb).unwrap();
        let got = fetch_artifact(&dir, &b, BUSYBOX_FILE, &is_busybox).unwrap();
        assert_eq!(std::fs::read(&got).unwrap(), b"BB");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn initramfs_layout() {
        let gz = build_initramfs(b"BUSYBOX", b"WORKLOAD").unwrap();
        let mut cpio_bytes = Vec::new();
        flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut cpio_bytes).unwrap();
        assert_eq!(cpio_bytes, initramfs_cpio(b"BUSYBOX", b"WORKLOAD").unwrap());
        let entries = cpio::parse(&cpio_bytes).unwrap();
        let find = |name: &str| entries.iter().find(|e| e.name == name).unwrap_or_else(|| panic!("no {name}"));
        assert_eq!(find("init").data, INIT_SCRIPT.as_bytes());
        assert_eq!(find("init").header.mode, cpio::S_IFREG | 0o755);
        assert_eq!(find("bin/busybox").data, b"BUSYBOX");
        assert_eq!(find("bin/sinter-workload").data, b"WORKLOAD");
        assert_eq!(find("bin/sinter-workload").header.mode, cpio::S_IFREG | 0o755);
        assert_eq!(find("bin/sh").data, b"busybox");
        assert_eq!(find("bin/poweroff").header.mode, cpio::S_IFLNK | 0o777);
        let console = find("dev/console");
        assert_eq!(
            (console.header.mode, console.header.rdevmajor, console.header.rdevminor),
            (cpio::S_IFCHR | 0o600, 5, 1)
        );
        for dir in ["proc", "sys", "dev", "bin"] {
            assert_eq!(find(dir).header.mode & cpio::S_IFDIR, cpio::S_IFDIR, "{dir}");
        }
        // Parents come before children, as the kernel needs.
        for (i, e) in entries.iter().enumerate() {
            if let Some((parent, _)) = e.name.rsplit_once('/') {
                assert!(entries[..i].iter().any(|p| p.name == parent), "{} before its folder", e.name);
            }
        }
        // Every applet /init uses is linked.
        for tool in ["sh", "mount", "poweroff", "uname", "sync", "echo"] {
            assert!(BUSYBOX_APPLETS.contains(&tool), "{tool}");
        }
        assert!(INIT_SCRIPT.starts_with("#!/bin/sh\n"));
    }

    #[test]
    fn summary_lines() {
        assert_eq!(parse_summary("5 passed, 0 failed"), Some((5, 0)));
        assert_eq!(parse_summary("workload: 4 passed, 1 failed"), Some((4, 1)));
        assert_eq!(parse_summary("check x: 5 passed, 0 failed"), None);
        assert_eq!(parse_summary("5 passed"), None);
        assert_eq!(parse_summary("five passed, 0 failed"), None);
    }

    fn boot_with(lines: &[&str], exit: NodeExit) -> PlainBoot {
        PlainBoot {
            lines: lines
                .iter()
                .enumerate()
                .map(|(i, t)| TimedLine { at: Duration::from_millis(i as u64), text: t.to_string(), from_qemu: false })
                .collect(),
            exit,
            first_workload_line: None,
            summary_line: None,
            total: Duration::ZERO,
            command: String::new(),
        }
    }

    #[test]
    fn boot_reports_are_read() {
        let ok = boot_with(
            &[
                "workload: nproc=2",
                "workload: memtotal_kib=1004052",
                "check a: ok",
                "check b: ok",
                "2 passed, 0 failed",
            ],
            NodeExit::PoweredOff,
        );
        assert_eq!(ok.workload_value("nproc").as_deref(), Some("2"));
        assert_eq!(ok.workload_value("memtotal_kib").as_deref(), Some("1004052"));
        assert_eq!(ok.summary(), Some((2, 0)));
        assert!(ok.is_clean());
        let failed = boot_with(&["check a: FAILED lost 3", "0 passed, 1 failed"], NodeExit::PoweredOff);
        assert_eq!(failed.checks(), vec![("a".to_string(), false, "lost 3".to_string())]);
        assert!(!failed.is_clean());
        let panicked = boot_with(&["Kernel panic - not syncing: Attempted to kill init!"], NodeExit::PoweredOff);
        assert!(panicked.kernel_panicked() && !panicked.is_clean());
        let timed_out = boot_with(&["1 passed, 0 failed"], NodeExit::TimedOut);
        assert!(!timed_out.is_clean());
    }

    #[test]
    fn command_line_is_the_documented_one() {
        let payload = GuestPayload {
            kernel: "/k/vmlinuz".into(),
            initramfs: "/i/initramfs.cpio.gz".into(),
            kernel_source: Source::Local("/k/vmlinuz".into()),
            busybox_source: Source::Local("/b/busybox".into()),
            workload: "/w".into(),
        };
        let mut options = PlainQemuOptions::new(2, 1024);
        options.extra_append = "WORKLOAD_MEM_PERCENT=10".into();
        let cmd = plain_qemu_command(Path::new("qemu-system-x86_64"), &payload, &options);
        let args: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(
            args.join(" "),
            "-machine q35 -accel tcg -cpu max -smp 2 -m 1024M -kernel /k/vmlinuz -initrd /i/initramfs.cpio.gz \
             -append console=ttyS0 quiet panic=-1 WORKLOAD_MEM_PERCENT=10 -nographic -no-reboot"
        );
        options.cpu = "EPYC".into();
        let cmd = plain_qemu_command(Path::new("qemu-system-x86_64"), &payload, &options);
        assert!(cmd.get_args().any(|a| a == "EPYC"));
    }
}
