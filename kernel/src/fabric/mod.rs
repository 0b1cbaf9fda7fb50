//! The cluster fabric: three services that put the transport and the
//! membership protocol on the node's NIC (`[cluster] fabric = true`).
//!
//! ```text
//!  cluster ──┐                         ┌── management plane (ARP/IPv4, see [`port`])
//!  soak ─────┤ transport client rings  │   frame port
//!            ▼                         ▼
//!        transport ◀── frame port ──▶ nic ── driver (virtio-net / e1000e)
//! ```
//!
//! - [`nic`] owns the driver, hands every received frame on as a page grant
//!   (the receive buffer itself, swapped for a fresh frame: no copy) to the
//!   `transport` service if its EtherType is 0x88B5 and to the management
//!   plane's port otherwise, and transmits the frames its users lend it.
//! - [`transport`] drives `sinter-transport-protocol`'s `Transport` with
//!   the TSC clock, and serves local users over [`transport::TransportClient`]
//!   rings: send to a peer, receive deliveries and session events.
//! - [`cluster`] runs `sinter-membership` over the transport, prints when
//!   the cluster forms and when a node is lost, publishes a
//!   [`status::ClusterStatus`] snapshot and answers status queries over
//!   IPC ([`query`]).
//!
//! All three run on the boot core and sleep when idle: each arms its rings
//! and blocks until a ring's notification, its next deadline or (for the
//! nic) the NIC's receive interrupt wakes it, so an idle node's core halts.
//! Everything they exchange goes through `sinter-ipc` rings and one grant
//! table. They share a core on purpose: split across two cores, every hop
//! between them became a wake-up IPI, and under TCG a 4 KiB message round
//! trip took ~1.35 ms instead of ~0.45 ms (docs/benchmarks/nic.md). Nothing that arrives from the network can panic them: bad
//! frames are counted and dropped.

pub mod cluster;
pub mod nic;
pub mod port;
pub mod query;
pub mod status;
pub mod transport;

use core::ptr::NonNull;

use alloc::vec::Vec;
use sinter_config::ClusterConfig;
use sinter_ipc::{FrameLease, FrameWindow, GrantTable, PhysFrame, ServiceId, FRAME_SIZE};

use crate::arch::time;
use crate::{kprintln, memory};

/// Service ids in the fabric's grant table.
pub const NIC: ServiceId = ServiceId(0x10);
pub const TRANSPORT: ServiceId = ServiceId(0x11);
pub const MANAGEMENT: ServiceId = ServiceId(0x12);
pub const CLUSTER: ServiceId = ServiceId(0x13);
/// Transport clients get `CLIENT_BASE + port`.
pub const CLIENT_BASE: u16 = 0x20;

/// Every frame lent between fabric services.
pub static GRANTS: GrantTable<1024> = GrantTable::new();

/// Frames are reached through the kernel's direct map.
pub struct DirectMap;

// SAFETY: the direct map gives every physical frame its own 4 KiB of
// virtual address space, valid for the kernel's lifetime; distinct frames
// never overlap.
unsafe impl FrameWindow for DirectMap {
    fn frame_ptr(&self, frame: PhysFrame) -> NonNull<[u8; FRAME_SIZE]> {
        NonNull::new(memory::phys_to_virt(frame.addr()) as *mut [u8; FRAME_SIZE]).unwrap_or(NonNull::dangling())
    }
}

/// `count` fresh frames from the hypervisor pool, as leases; fewer if the
/// pool runs dry (reported).
pub fn alloc_leases(count: usize, who: &str) -> Vec<FrameLease> {
    let mut leases = Vec::with_capacity(count);
    for _ in 0..count {
        let Some(frame) = memory::alloc_frame().ok().and_then(PhysFrame::new) else {
            kprintln!("{who}: out of frames after {}", leases.len());
            break;
        };
        // SAFETY: the frame was just allocated for this service and nothing
        // else refers to it.
        leases.push(unsafe { FrameLease::assume_owned(frame) });
    }
    leases
}

/// Monotonic time in nanoseconds (the calibrated TSC; 0 at reset).
pub fn now_ns() -> u64 {
    sinter_kerncore::clock::ticks_to_ns(time::rdtsc(), time::tsc_hz())
}

/// Blocks the running service until its core is notified or [`now_ns`]
/// reaches `deadline_ns` (callers arm their rings first).
pub fn sleep_until_ns(deadline_ns: u64) {
    crate::exec::block_until(sinter_kerncore::clock::ns_to_ticks(deadline_ns, time::tsc_hz()));
}

/// Starts the fabric on `core` if the config asks for it.
pub fn spawn_requested(config: &ClusterConfig, node: u16, core: usize) {
    if !config.cluster.fabric {
        return;
    }
    let Some(me) = config.node(node) else { return };
    nic::spawn(me.nic, me.mac.0, core);
    transport::spawn(config, node, core);
    cluster::spawn(config, node, core);
    // The `nic-bench` self-test takes the management port for raw frames.
    if !config.debug.wants("nic-bench") {
        crate::mgmt::spawn(config, node, core);
    }
}
