//! Sinter's management plane: how a node answers "what is your state?" on
//! its management IPv4 address, and how a tool asks.
//!
//! - [`status`]: what a node reports (identity, uptime, members with their
//!   state and last contact, per-peer link counters, drop counters by reason).
//! - [`codec`]: the versioned request/response encoding on UDP port
//!   [`MGMT_UDP_PORT`] (a fixed 12-byte query; a postcard-encoded reply,
//!   paged so it always fits one unfragmented datagram). `docs/management.md` is
//!   the specification.
//! - [`endpoint`]: a smoltcp interface (Ethernet, ARP, IPv4, UDP) over any
//!   [`FrameLink`], answering status queries. The firmware feeds it the frames
//!   the `nic` service does not give to the transport.
//! - [`client`]: the same stack from the asking side (`cargo xtask status`).
//! - [`link`]: the [`FrameLink`] trait and an in-memory loopback pair.
//!
//! What this crate must never do: touch hardware or a clock (time is a
//! `now_ms` argument); panic or allocate without bound on anything from the
//! network (a malformed query is counted and ignored); answer anything but
//! a well-formed query to the management port; use `unsafe`.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod client;
pub mod codec;
pub mod endpoint;
pub mod link;
pub mod status;

#[cfg(test)]
mod tests;

pub use client::StatusClient;
pub use codec::{DecodeError, Query, QueryError, Response, MGMT_UDP_PORT, VERSION};
pub use endpoint::MgmtEndpoint;
pub use link::{FrameLink, LoopbackLink};
pub use status::{
    CoreLoad, DropCounters, LinkStats, MemberState, MemberStatus, MgmtCounters, StatusReport, TransportTotals,
};

/// An IPv4 address with its prefix length (`10.77.0.1/24`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Cidr {
    pub addr: [u8; 4],
    pub prefix: u8,
}

impl Ipv4Cidr {
    pub fn new(addr: [u8; 4], prefix: u8) -> Self {
        Self { addr, prefix }
    }

    pub(crate) fn to_smoltcp(self) -> smoltcp::wire::IpCidr {
        let [a, b, c, d] = self.addr;
        smoltcp::wire::IpCidr::new(smoltcp::wire::IpAddress::v4(a, b, c, d), self.prefix.min(32))
    }
}
