//! Sinter's microkernel, entered from the UEFI loader's hand-off.
//!
//! Today it proves the boot chain: it checks the hand-off, reads the cluster
//! and node config the loader brought, counts cores in the ACPI MADT, sums
//! usable memory, prints the banner on COM1 and powers the machine off the way
//! the config says. It is mechanism only: policy (who runs where, where a page
//! lives, when a node is dead) belongs to services, never here. Input from the
//! config file is validated and reported, never trusted into a panic.
#![no_std]
#![no_main]

extern crate alloc;

mod acpi;
mod arch;
mod exec;
mod fabric;
mod handoff;
mod heap;
mod hv;
mod log;
mod memory;
mod mgmt;
mod nic;
mod power;
mod selftest;
mod serial;

use sinter_config::{ClusterConfig, NodeSelector, PowerOff};

use crate::handoff::BootInfo;

/// The loader jumps here with the hand-off record's virtual address in rdi,
/// on the boot stack, interrupts off.
#[no_mangle]
#[link_section = ".text.entry"]
pub extern "sysv64" fn kernel_entry(handoff_virt: u64) -> ! {
    serial::init();
    log::init();
    kprintln!();
    kprintln!("Sinter {} kernel starting", env!("CARGO_PKG_VERSION"));
    heap::init();
    let boot = match BootInfo::from_loader(handoff_virt) {
        Ok(boot) => boot,
        Err(why) => fatal(format_args!("hand-off record rejected: {why}")),
    };
    let (cluster, node) = match read_config(&boot) {
        Ok(pair) => pair,
        Err(why) => fatal(format_args!("{why}")),
    };
    if let Err(why) = memory::reserve_trampoline_page(boot.memory_map()) {
        kprintln!("warning: no usable page below 1 MiB for AP start-up: {why:?}");
    }
    let memory = match memory::init(&boot, cluster.hypervisor.reserved_memory_mib) {
        Ok(summary) => summary,
        Err(why) => fatal(format_args!("memory: {why:?}")),
    };
    kprintln!(
        "memory: hypervisor pool {} MiB ({} frames free), guest RAM {} MiB, kernel page tables active",
        memory.hypervisor_bytes >> 20,
        memory.free_frames,
        memory.guest_bytes >> 20
    );
    let platform = match acpi::Platform::discover(boot.rsdp()) {
        Ok(platform) => platform,
        Err(why) => fatal(format_args!("ACPI: {why}")),
    };
    let cpus = arch::init(&platform);
    print_banner(&boot, &cluster, node, &platform, &cpus);
    arch::selftest::run_requested(&cluster);
    defmt::info!(
        "node {=u16} up: {=usize} cores in the MADT, {=u64} MiB usable",
        node.node,
        platform.cpu_count,
        boot.usable_memory_bytes() >> 20
    );
    exec::configure(&cluster);
    fabric::spawn_requested(&cluster, node.node, exec::core_index());
    selftest::spawn_requested(&cluster, node.node);
    hv::linux::start_if_present(&boot, &cluster, node.node, cpus.cores_online);
    exec::run_until_idle();
    match cluster.cluster.poweroff {
        PowerOff::Acpi => {
            kprintln!("sinter: powering off (ACPI S5)");
            power::acpi_poweroff(&platform.power);
            kprintln!("sinter: ACPI power-off did not take effect");
            power::halt_forever()
        }
        PowerOff::IsaDebugExit => {
            kprintln!("sinter: powering off (isa-debug-exit)");
            power::qemu_exit(power::ExitCode::Success)
        }
    }
}

fn read_config(boot: &BootInfo) -> Result<(ClusterConfig, NodeSelector), alloc::string::String> {
    let text = core::str::from_utf8(boot.cluster_config())
        .map_err(|_| alloc::string::String::from("\\sinter\\cluster.toml is not UTF-8"))?;
    let cluster = sinter_config::parse_cluster(text).map_err(|e| alloc::format!("\\sinter\\cluster.toml: {e}"))?;
    let node_text = core::str::from_utf8(boot.node_config())
        .map_err(|_| alloc::string::String::from("\\sinter\\node.toml is not UTF-8"))?;
    let node = sinter_config::parse_node_selector(node_text, &cluster)
        .map_err(|e| alloc::format!("\\sinter\\node.toml: {e}"))?;
    Ok((cluster, node))
}

fn print_banner(
    boot: &BootInfo,
    cluster: &ClusterConfig,
    selector: NodeSelector,
    platform: &acpi::Platform,
    cpus: &arch::CpuSummary,
) {
    let Some(node) = cluster.node(selector.node) else {
        fatal(format_args!("node {} vanished from a validated config", selector.node))
    };
    let usable_mib = boot.usable_memory_bytes() >> 20;
    kprintln!(
        "Sinter node {} of {} in cluster \"{}\"{}{}",
        node.id,
        cluster.nodes.len(),
        cluster.cluster.name,
        if node.description.is_empty() { "" } else { ": " },
        node.description
    );
    kprintln!(
        "banner: node={} cluster={} cores={} cores_online={} memory_mib={} mac={} nic={:?} reserved_mib={}",
        node.id,
        cluster.cluster.name,
        platform.cpu_count,
        cpus.cores_online,
        usable_mib,
        node.mac,
        node.nic,
        cluster.hypervisor.reserved_memory_mib
    );
    if let Some(expected) = node.cores {
        if usize::from(expected) != platform.cpu_count {
            kprintln!("warning: config expects {} cores, the MADT lists {}", expected, platform.cpu_count);
        }
    }
    if boot.payload_files().next().is_some() {
        for file in boot.payload_files() {
            kprintln!("payload: {} ({} bytes)", file.name(), file.len);
        }
    }
}

/// Reports an unrecoverable error and stops the node, with a failing QEMU
/// exit status when running under QEMU.
pub fn fatal(why: core::fmt::Arguments<'_>) -> ! {
    kprintln!("sinter: FATAL: {}", why);
    power::fail_stop()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    // A panicking service is reported and handed to its supervisor; this
    // returns only for a panic outside any service.
    exec::on_panic(info);
    serial::emergency_writer(|w| {
        use core::fmt::Write;
        let _ = writeln!(w, "sinter: PANIC: {info}");
    });
    power::fail_stop()
}
