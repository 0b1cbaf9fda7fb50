//! Running the Linux guest on this node: when the stick carries a guest
//! payload (`\sinter\payload\vmlinuz` and `initrd.img`, put there by
//! `cargo xtask run` for `[guest] kernel = "debian"`), the boot node builds
//! the VM (`vm.rs`) and spawns one vcpu service per vCPU (`vcpu.rs`), vCPU
//! `i` on host core `i`. Devices are called directly from the exit path
//! (`sinter-guest-devices`, glued in `platform.rs`; see docs/hypervisor.md for
//! why no IPC yet).
//!
//! Only a one-node cluster starts a guest (a guest spanning nodes needs
//! the coherence service); a guest that cannot be built fail-stops the
//! node with the reason.
//!
//! The run ends when the guest does: ACPI S5 → the vCPU 0 service returns
//! and the node powers off as configured (success); a reset, a triple
//! fault or a fatal exit → the node reports it and fail-stops.

mod platform;
mod vcpu;
mod vm;

use alloc::string::String;

use sinter_config::ClusterConfig;
use spin::Once;

use crate::exec::{self, ServiceSpec};
use crate::handoff::BootInfo;
use crate::kprintln;
use vm::{Vm, VmState};

/// Payload file names (see `xtask::guest::PAYLOAD_KERNEL` / `PAYLOAD_INITRD`).
const PAYLOAD_KERNEL: &str = "vmlinuz";
const PAYLOAD_INITRD: &str = "initrd.img";

static VM: Once<&'static Vm> = Once::new();

fn payload(boot: &BootInfo, name: &str) -> Option<&'static [u8]> {
    let file = boot.payload_files().find(|f| f.name().eq_ignore_ascii_case(name))?;
    let len = usize::try_from(file.len).ok()?;
    let end = file.addr.checked_add(file.len)?;
    if end > boot.record().direct_map_size {
        return None;
    }
    // SAFETY: `from_loader` checked the payload table; this file's bytes
    // lie inside the direct map (checked above), in `Loader` memory the
    // frame allocator never hands out, and are only read.
    Some(unsafe { core::slice::from_raw_parts(crate::memory::phys_to_virt(file.addr) as *const u8, len) })
}

/// Starts the guest if this is the boot node and the payload is there.
/// `cores`: host cores available (one vCPU each).
pub fn start_if_present(boot: &BootInfo, config: &ClusterConfig, node: u16, cores: usize) {
    let Some(kernel) = payload(boot, PAYLOAD_KERNEL) else { return };
    if config.nodes.len() > 1 {
        // A guest spanning nodes needs the coherence and transport
        // services; until then the firmware boots as without a payload.
        kprintln!(
            "vm: guest payload present, but a {}-node guest is not supported yet: no guest started",
            config.nodes.len()
        );
        return;
    }
    if node != 0 {
        kprintln!("vm: guest payload present; node {node} is not the boot node, so no guest here");
        return;
    }
    let initrd = payload(boot, PAYLOAD_INITRD);
    let vcpus = cores.clamp(1, vm::MAX_VCPUS);
    // Absent `memory_mib`: all the guest RAM this node's plan has.
    let ram_mib = config.guest.memory_mib.map_or(vm::available_ram() >> 20, u64::from);
    let mut cmdline = String::from(config.guest.cmdline.as_str());
    if !cmdline.contains("panic=") {
        // A guest panic ends the run at once (reboot → reset → fail-stop).
        cmdline.push_str(" panic=-1");
    }
    match vm::build(kernel, initrd, &cmdline, ram_mib << 20, (0..vcpus).collect(), config.hypervisor.unbacked_mmio) {
        Ok(vm) => {
            kprintln!("vm: starting the guest: {vcpus} vCPUs, {ram_mib} MiB, cmdline \"{cmdline}\"");
            VM.call_once(|| vm);
            for i in 0..vcpus {
                exec::spawn_on(i, ServiceSpec { name: "vcpu", entry: service, arg: i });
            }
        }
        Err(why) => {
            kprintln!("vm: cannot start the guest: {why}");
            crate::power::fail_stop();
        }
    }
}

fn service(index: usize, generation: u32) {
    let Some(&vm) = VM.get() else { return };
    if generation > 0 {
        // A vCPU's state died with the panic: the VM cannot go on.
        kprintln!("vcpu {index}: restarted after a panic; stopping the VM");
        vm.stop(VmState::Failed);
    } else if let Err(why) = vcpu::run(vm, index) {
        kprintln!("vcpu {index}: guest error: {why}; stopping the VM");
        vm.stop(VmState::Failed);
    }
    vm.stopped_vcpus.fetch_add(1, core::sync::atomic::Ordering::AcqRel);
    if index != 0 {
        return;
    }
    // vCPU 0 (boot core) decides how the node ends once every vCPU is out.
    while (vm.stopped_vcpus.load(core::sync::atomic::Ordering::Acquire) as usize) < vm.vcpus {
        x86_64::instructions::interrupts::enable_and_hlt();
    }
    match vm.state() {
        VmState::PoweredOff | VmState::Running => kprintln!("vm: guest powered off; the node powers off"),
        VmState::Reset => {
            kprintln!("vm: guest reset; this node ends its run (a reset is not a clean end)");
            crate::power::fail_stop();
        }
        VmState::Failed => {
            kprintln!("vm: guest failed; this node ends its run");
            crate::power::fail_stop();
        }
    }
}
