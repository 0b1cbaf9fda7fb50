//! The QEMU command line for one node.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use sinter_config::{ClusterConfig, NodeConfig};

use crate::prereq::Ovmf;

/// I/O port of the `isa-debug-exit` device the kernel writes its verdict to.
pub const DEBUG_EXIT_PORT: u16 = 0xf4;

#[derive(Debug, Clone)]
pub struct NodeMachine {
    pub qemu: PathBuf,
    pub ovmf_code: PathBuf,
    /// This node's private copy of the OVMF variable store.
    pub ovmf_vars: PathBuf,
    pub image: PathBuf,
    pub cpu: String,
    pub machine: String,
    pub cores: u16,
    pub memory_mib: u32,
    pub nic_device: &'static str,
    pub mac: String,
    /// QEMU's end of the link to the switch, and the switch's end.
    pub net_local: SocketAddr,
    pub net_remote: SocketAddr,
    pub qmp_socket: PathBuf,
    /// COM2: the kernel's defmt stream, decoded by `defmt_log`.
    pub defmt_stream: PathBuf,
    pub extra_args: Vec<String>,
}

impl NodeMachine {
    pub fn for_node(config: &ClusterConfig, node: &NodeConfig, qemu: &Path, ovmf: &Ovmf, run_dir: &Path) -> Self {
        let qemu_section = config.qemu.clone().unwrap_or_else(|| {
            // Real-server configs have no [qemu]: emulate a generic machine.
            sinter_config::QemuSection { cpu: "EPYC,+svm,+npt".into(), machine: "q35".into() }
        });
        Self {
            qemu: qemu.to_path_buf(),
            ovmf_code: ovmf.code.clone(),
            ovmf_vars: run_dir.join(format!("node{}-OVMF_VARS.fd", node.id)),
            image: PathBuf::new(),
            cpu: qemu_section.cpu,
            machine: qemu_section.machine,
            cores: node.cores.unwrap_or(2),
            memory_mib: node.memory_mib.unwrap_or(1024),
            nic_device: node.nic.qemu_device(),
            mac: node.mac.to_string(),
            net_local: "127.0.0.1:0".parse().expect("literal address"),
            net_remote: "127.0.0.1:0".parse().expect("literal address"),
            qmp_socket: run_dir.join(format!("node{}.qmp", node.id)),
            defmt_stream: run_dir.join(format!("node{}.defmt", node.id)),
            extra_args: Vec::new(),
        }
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.qemu);
        let netdev = format!(
            "dgram,id=net0,local.type=inet,local.host={},local.port={},remote.type=inet,remote.host={},remote.port={}",
            self.net_local.ip(),
            self.net_local.port(),
            self.net_remote.ip(),
            self.net_remote.port()
        );
        cmd.args(["-machine", &self.machine])
            .args(["-cpu", &self.cpu])
            .args(["-accel", "tcg"])
            .args(["-smp", &self.cores.to_string()])
            .args(["-m", &format!("{}M", self.memory_mib)])
            .args(["-nodefaults", "-display", "none", "-no-reboot"])
            .arg("-drive")
            .arg(format!("if=pflash,format=raw,unit=0,readonly=on,file={}", self.ovmf_code.display()))
            .arg("-drive")
            .arg(format!("if=pflash,format=raw,unit=1,file={}", self.ovmf_vars.display()))
            // The image is a USB stick, as on a real server.
            .args(["-device", "qemu-xhci,id=xhci"])
            .arg("-drive")
            .arg(format!("if=none,id=stick,format=raw,file={}", self.image.display()))
            .args(["-device", "usb-storage,bus=xhci.0,drive=stick,bootindex=0"])
            .args(["-netdev", &netdev])
            .arg("-device")
            .arg(format!("{},netdev=net0,mac={},romfile=", self.nic_device, self.mac))
            .arg("-device")
            .arg(format!("isa-debug-exit,iobase={DEBUG_EXIT_PORT:#x},iosize=0x04"))
            .args(["-serial", "stdio"])
            .arg("-serial")
            .arg(format!("file:{}", self.defmt_stream.display()))
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", self.qmp_socket.display()))
            .args(&self.extra_args);
        cmd
    }
}

/// How a node's QEMU ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeExit {
    /// ACPI power-off (or guest shutdown): QEMU status 0.
    PoweredOff,
    /// isa-debug-exit with the success code 0x10: QEMU status 33.
    DebugExitSuccess,
    /// isa-debug-exit with the failure code 0x11 (status 35): the firmware
    /// stopped on an error it reported on its console.
    FirmwareFailure,
    /// QEMU itself failed (bad arguments, missing files, crash).
    QemuError(i32),
    /// Killed by a signal (Ctrl-C, or the harness stopping it).
    Signalled(i32),
    /// Still running at the deadline; the harness killed it.
    TimedOut,
}

impl NodeExit {
    pub fn from_status(status: std::process::ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(0), _) => NodeExit::PoweredOff,
            (Some(33), _) => NodeExit::DebugExitSuccess,
            (Some(35), _) => NodeExit::FirmwareFailure,
            (Some(code), _) => NodeExit::QemuError(code),
            (None, Some(signal)) => NodeExit::Signalled(signal),
            (None, None) => NodeExit::QemuError(-1),
        }
    }

    pub fn is_clean(self) -> bool {
        matches!(self, NodeExit::PoweredOff | NodeExit::DebugExitSuccess)
    }
}
