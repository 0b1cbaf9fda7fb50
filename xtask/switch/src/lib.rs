//! `sinter-switch`: the userspace Ethernet switch that joins the QEMU nodes
//! of a Sinter test cluster, with fault injection.
//!
//! Each node's QEMU attaches with
//! `-netdev dgram,id=net0,local.type=inet,local.host=127.0.0.1,local.port=<NODE_PORT>,remote.type=inet,remote.host=127.0.0.1,remote.port=<SWITCH_PORT>`
//! (or the older `-netdev socket,id=net0,udp=127.0.0.1:<SWITCH_PORT>,localaddr=127.0.0.1:<NODE_PORT>`).
//! One UDP datagram is one Ethernet frame (`dst | src | ethertype | payload`,
//! no FCS). The switch has one UDP socket per port on 127.0.0.1, learns MAC
//! addresses, floods unknown unicast and group frames, and applies per-link
//! faults (drop, duplicate, delay with jitter, reorder, cut) so that tests can
//! show the cluster survives a bad network. Tests attach [`HostEndpoint`]s to
//! inject and capture raw frames.
//!
//! ```no_run
//! use sinter_switch::{Switch, LinkFaults};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut switch = Switch::new();
//! let node0 = switch.add_qemu_port(Some("127.0.0.1:40000".parse()?))?;
//! let node1 = switch.add_qemu_port(None)?; // peer learned from its first frame
//! let probe = switch.add_host_port()?;
//! println!("node0: remote.port={}", switch.switch_addr(node0).unwrap().port());
//! let handle = switch.start()?;
//! handle.set_faults(node1, "drop=10,delay=2ms,jitter=1ms".parse::<LinkFaults>()?)?;
//! # let _ = probe;
//! print!("{}", handle.stats());
//! handle.shutdown();
//! # Ok(()) }
//! ```
//!
//! The switch must never:
//! - send or accept anything off IPv4 loopback: every socket binds
//!   127.0.0.1, a peer given by the caller must be in 127.0.0.0/8, and a
//!   learned peer must be too;
//! - send a frame back out of the port it came in on;
//! - panic on what arrives from a socket: short, oversized or odd frames are
//!   dropped and counted;
//! - grow without bound: the MAC table and each link's delay queue have a
//!   fixed capacity, and overflow is counted;
//! - leave a thread behind: shutdown, or dropping the last handle, joins
//!   every thread it started;
//! - use `unsafe`.
//!
//! The fault decisions live in [`FaultInjector`], which has no clock and no
//! sockets, so they are tested with made-up times and fixed seeds.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod dataplane;
pub mod ethernet;
pub mod faults;
mod handle;
mod host;
pub mod injector;
mod mac_table;
pub mod pcap;
mod rng;
mod stats;
mod switch;

pub use ethernet::{build_frame, MacAddr};
pub use faults::{FaultSpecError, LinkFaults, Percent, SpecProblem};
pub use handle::{ShutdownReport, SwitchHandle};
pub use host::HostEndpoint;
pub use injector::{Fate, FaultCounts, FaultInjector};
pub use stats::{PortStats, StatsTable};
pub use switch::{PortId, PortKind, Switch, SwitchConfig, SwitchError};
