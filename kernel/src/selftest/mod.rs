//! Self-tests a test config asks for (`[debug] selftests`). Each prints
//! `selftest NAME: ok` or `selftest NAME: FAILED ...`; the system tests in
//! `tests/` assert on those lines.

mod ipc;
mod nic_bench;
mod nic_ping;
mod transport_soak;

use sinter_config::ClusterConfig;

use crate::exec::{self, ServiceSpec};
use crate::kprintln;

pub fn spawn_requested(config: &ClusterConfig, node: u16) {
    let here = exec::core_index();
    let other = exec::other_online_core().unwrap_or(here);
    if config.debug.wants("ipc") {
        ipc::spawn(here, other, false);
    } else if config.debug.wants("ipc-bench") {
        ipc::spawn(here, other, true);
    }
    if config.debug.wants("nic-ping") {
        nic_ping::spawn(config, node, here);
    }
    if config.debug.wants("nic-bench") {
        nic_bench::spawn(config, node, here);
    }
    if config.debug.wants("transport-soak") {
        transport_soak::spawn(config, node, here);
    }
    crate::hv::selftest::spawn_requested(config, here);
    if config.debug.wants("service-panic") {
        exec::spawn_on(exec::core_index(), ServiceSpec { name: "selftest-panic", entry: panicking_service, arg: 0 });
    }
}

/// Panics in its first incarnation; the supervisor must start it again.
fn panicking_service(_arg: usize, generation: u32) {
    if generation == 0 {
        kprintln!("selftest service-panic: generation 0 panicking on purpose");
        let values: [u32; 2] = [1, 2];
        let index = core::hint::black_box(7usize);
        // Out-of-bounds index: a real panic from core's bounds check.
        kprintln!("unreachable {}", values[index]);
    }
    kprintln!("selftest service-panic: generation {generation} running after restart");
    kprintln!("selftest service-panic: ok");
}
