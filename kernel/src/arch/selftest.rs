//! CPU self-tests a test config asks for (`[debug] selftests`). Each one
//! ends the node through the exception path, so the system tests can check
//! the report, its symbolized backtrace and the exit status:
//!
//! - `page-fault`: the boot core writes to an unmapped address.
//! - `page-fault-ap`: a service on the last AP does the same (the report
//!   names its core; the backtrace runs on the service's stack).
//! - `stack-overflow`: the boot core recurses into its stack's guard page;
//!   the #PF cannot be delivered on that stack, so a #DF is reported from
//!   its IST stack.

use sinter_config::ClusterConfig;

use super::cpu::{self, CoreState};
use crate::exec::{self, ServiceSpec};
use crate::kprintln;

/// A canonical lower-half address no table maps: above the identity map
/// (which ends at the top of RAM, at least 4 GiB) on any machine below 126 TiB.
pub const UNMAPPED_PROBE: u64 = 0x0000_7e57_dead_b000;

/// Runs the CPU self-tests named in the config, in order. Those that work
/// do not return.
pub fn run_requested(config: &ClusterConfig) {
    if config.debug.wants("page-fault") {
        kprintln!("selftest page-fault: writing to {UNMAPPED_PROBE:#x} on core 0");
        page_fault_outer();
        kprintln!("selftest page-fault: FAILED, the write did not fault");
    }
    if config.debug.wants("page-fault-ap") {
        page_fault_on_ap();
    }
    if config.debug.wants("stack-overflow") {
        kprintln!("selftest stack-overflow: recursing on core 0");
        let depth = recurse(0);
        kprintln!("selftest stack-overflow: FAILED, returned from depth {depth}");
    }
}

#[inline(never)]
fn page_fault_outer() {
    page_fault_inner(core::hint::black_box(UNMAPPED_PROBE));
    core::hint::black_box(());
}

#[inline(never)]
fn page_fault_inner(address: u64) {
    // SAFETY: deliberately faults: nothing is mapped at `address`, so the
    // write never lands; the #PF handler reports and stops the node.
    unsafe { core::ptr::write_volatile(address as *mut u64, 0x5157_4e54_4552) };
    core::hint::black_box(());
}

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if depth == u64::MAX {
        return 0;
    }
    let mut pad = [0u8; 256];
    core::hint::black_box(&mut pad);
    let below = recurse(core::hint::black_box(depth + 1));
    below + u64::from(pad[(depth % 256) as usize])
}

fn page_fault_on_ap() {
    let Some(target) = cpu::cores().iter().rev().find(|c| c.index() != 0 && c.state() == CoreState::Online) else {
        kprintln!("selftest page-fault-ap: FAILED, no application processor is online");
        return;
    };
    kprintln!("selftest page-fault-ap: a service on core {} (apic id {}) faults", target.index(), target.apic_id());
    // The executor numbers cores by APIC id.
    exec::spawn_on(
        target.apic_id() as usize,
        ServiceSpec { name: "selftest-page-fault-ap", entry: page_fault_service, arg: 0 },
    );
    let start = super::time::rdtsc();
    while super::time::ns_since(start) < 5_000_000_000 {
        core::hint::spin_loop();
    }
    kprintln!("selftest page-fault-ap: FAILED, core {} did not fault within 5 s", target.index());
}

fn page_fault_service(_arg: usize, _generation: u32) {
    page_fault_outer();
}
