//! Building a switch: its configuration, its ports, and starting it.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

use crate::faults::{FaultSpecError, LinkFaults};
use crate::handle::SwitchHandle;
use crate::host::HostEndpoint;

/// A port of the switch: an index, in the order ports were added.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct PortId(pub(crate) u16);

impl PortId {
    /// Position of the port, counting from 0 in the order it was added.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

impl fmt::Display for PortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}", self.0)
    }
}

/// What is attached to a port.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum PortKind {
    /// A QEMU `-netdev dgram` (or `-netdev socket,udp=`) backend.
    Qemu,
    /// A [`HostEndpoint`] owned by the caller.
    Host,
}

impl fmt::Display for PortKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Qemu => "qemu",
            Self::Host => "host",
        })
    }
}

/// Switch-wide settings.
#[derive(Debug, Clone)]
pub struct SwitchConfig {
    /// Longest frame forwarded (header and payload, no FCS); longer ones
    /// are dropped and counted as malformed.
    pub max_frame_len: usize,
    /// Seed of every random fault decision; port k's injector gets a seed
    /// derived from this and k.
    pub seed: u64,
    /// Socket read timeout and longest idle sleep of the timer thread:
    /// how fast the threads notice a shutdown.
    pub poll_interval: Duration,
    /// Most MAC addresses learned.
    pub mac_table_capacity: usize,
    /// Most frames waiting (delayed or held) per port.
    pub queue_capacity: usize,
}

impl SwitchConfig {
    /// Default for [`SwitchConfig::max_frame_len`]: jumbo frames.
    pub const DEFAULT_MAX_FRAME_LEN: usize = 9216;
}

impl Default for SwitchConfig {
    fn default() -> Self {
        Self {
            max_frame_len: Self::DEFAULT_MAX_FRAME_LEN,
            seed: 0x5eed_5717_e500_0001,
            poll_interval: Duration::from_millis(50),
            mac_table_capacity: 4096,
            queue_capacity: crate::injector::FaultInjector::DEFAULT_CAPACITY,
        }
    }
}

/// What went wrong setting up or steering a switch.
#[derive(Debug)]
pub enum SwitchError {
    /// Binding a switch or host socket failed.
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// Configuring a socket failed.
    Socket {
        /// What was being done.
        context: &'static str,
        /// Why.
        source: io::Error,
    },
    /// A peer address is not IPv4 loopback; the switch never sends
    /// anywhere else.
    NotLoopback(SocketAddr),
    /// No such port on this switch.
    UnknownPort(PortId),
    /// More than 65,536 ports.
    TooManyPorts,
    /// Faults that break a limit (see [`LinkFaults::validate`]) or a spec
    /// that does not parse.
    Faults {
        /// The port they were for.
        port: PortId,
        /// What is wrong.
        source: FaultSpecError,
    },
    /// Opening a pcap file failed.
    Capture {
        /// The port.
        port: PortId,
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Starting a thread failed.
    Spawn(io::Error),
}

impl fmt::Display for SwitchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bind { addr, .. } => write!(f, "cannot bind UDP socket on {addr}"),
            Self::Socket { context, .. } => write!(f, "socket setup failed: {context}"),
            Self::NotLoopback(addr) => {
                write!(f, "peer {addr} is not on IPv4 loopback (127.0.0.0/8)")
            }
            Self::UnknownPort(port) => write!(f, "no port {port} on this switch"),
            Self::TooManyPorts => write!(f, "too many ports (limit 65536)"),
            Self::Faults { port, .. } => write!(f, "bad faults for port {port}"),
            Self::Capture { port, path, .. } => {
                write!(f, "cannot capture port {port} to {}", path.display())
            }
            Self::Spawn(_) => write!(f, "cannot start a switch thread"),
        }
    }
}

impl std::error::Error for SwitchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Bind { source, .. }
            | Self::Socket { source, .. }
            | Self::Capture { source, .. }
            | Self::Spawn(source) => Some(source),
            Self::Faults { source, .. } => Some(source),
            Self::NotLoopback(_) | Self::UnknownPort(_) | Self::TooManyPorts => None,
        }
    }
}

/// True for IPv4 loopback (127.0.0.0/8) socket addresses.
pub(crate) fn is_loopback_v4(addr: SocketAddr) -> bool {
    matches!(addr, SocketAddr::V4(v4) if v4.ip().is_loopback())
}

/// Binds a UDP socket on 127.0.0.1:`port` with the given read timeout.
pub(crate) fn bind_loopback(port: u16, read_timeout: Duration) -> Result<UdpSocket, SwitchError> {
    let addr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
    let socket = UdpSocket::bind(addr).map_err(|source| SwitchError::Bind { addr, source })?;
    socket
        .set_read_timeout(Some(read_timeout.max(Duration::from_millis(1))))
        .map_err(|source| SwitchError::Socket { context: "set read timeout", source })?;
    Ok(socket)
}

pub(crate) fn local_addr(socket: &UdpSocket) -> Result<SocketAddr, SwitchError> {
    socket.local_addr().map_err(|source| SwitchError::Socket { context: "read local address", source })
}

/// One port before the switch starts.
#[derive(Debug)]
pub(crate) struct PortSetup {
    pub(crate) kind: PortKind,
    pub(crate) socket: UdpSocket,
    pub(crate) local: SocketAddr,
    pub(crate) peer: Option<SocketAddr>,
    pub(crate) faults: LinkFaults,
}

/// A switch being set up. Add every port, then [`Switch::start`] it.
#[derive(Debug)]
pub struct Switch {
    config: SwitchConfig,
    ports: Vec<PortSetup>,
}

impl Default for Switch {
    fn default() -> Self {
        Self::new()
    }
}

impl Switch {
    /// A switch with the default configuration and no ports.
    pub fn new() -> Self {
        Self::with_config(SwitchConfig::default())
    }

    /// A switch with `config` and no ports.
    pub fn with_config(config: SwitchConfig) -> Self {
        Self { config, ports: Vec::new() }
    }

    /// The configuration.
    pub fn config(&self) -> &SwitchConfig {
        &self.config
    }

    fn next_id(&self) -> Result<PortId, SwitchError> {
        u16::try_from(self.ports.len()).map(PortId).map_err(|_| SwitchError::TooManyPorts)
    }

    /// Adds a port for a QEMU node on an ephemeral switch-side UDP port
    /// (see [`Switch::switch_addr`]). `peer` is the node's own address
    /// (QEMU's `local.port`); if `None`, it is learned from the first
    /// datagram, and frames for the port are dropped and counted until then.
    pub fn add_qemu_port(&mut self, peer: Option<SocketAddr>) -> Result<PortId, SwitchError> {
        self.add_qemu_port_on(0, peer)
    }

    /// Like [`Switch::add_qemu_port`], on switch-side UDP port `local_port`
    /// of 127.0.0.1 (0 for an ephemeral one).
    pub fn add_qemu_port_on(&mut self, local_port: u16, peer: Option<SocketAddr>) -> Result<PortId, SwitchError> {
        if let Some(peer) = peer {
            if !is_loopback_v4(peer) {
                return Err(SwitchError::NotLoopback(peer));
            }
        }
        let id = self.next_id()?;
        let socket = bind_loopback(local_port, self.config.poll_interval)?;
        let local = local_addr(&socket)?;
        self.ports.push(PortSetup { kind: PortKind::Qemu, socket, local, peer, faults: LinkFaults::NONE });
        Ok(id)
    }

    /// Adds a port whose far end is a UDP socket owned by the caller, for
    /// injecting and capturing raw frames.
    pub fn add_host_port(&mut self) -> Result<HostEndpoint, SwitchError> {
        let id = self.next_id()?;
        let switch_side = bind_loopback(0, self.config.poll_interval)?;
        let switch_addr = local_addr(&switch_side)?;
        let endpoint = HostEndpoint::connect(id, switch_addr)?;
        self.ports.push(PortSetup {
            kind: PortKind::Host,
            socket: switch_side,
            local: switch_addr,
            peer: Some(endpoint.local_addr()),
            faults: LinkFaults::NONE,
        });
        Ok(endpoint)
    }

    /// Adds a host port whose far end is a UDP socket another process will
    /// bind at `peer` (on 127.0.0.0/8), possibly long after the switch has
    /// started: `cargo xtask status` attaches to a running cluster this way.
    /// Until something is bound there, frames sent to the port are lost
    /// (counted as errors when the OS reports them).
    pub fn add_remote_host_port(&mut self, peer: SocketAddr) -> Result<PortId, SwitchError> {
        if !is_loopback_v4(peer) {
            return Err(SwitchError::NotLoopback(peer));
        }
        let id = self.next_id()?;
        let socket = bind_loopback(0, self.config.poll_interval)?;
        let local = local_addr(&socket)?;
        self.ports.push(PortSetup { kind: PortKind::Host, socket, local, peer: Some(peer), faults: LinkFaults::NONE });
        Ok(id)
    }

    /// The switch-side address of `port`: where its node sends frames
    /// (QEMU's `remote.port`).
    pub fn switch_addr(&self, port: PortId) -> Option<SocketAddr> {
        self.ports.get(port.index()).map(|p| p.local)
    }

    /// Sets the faults a port starts with.
    pub fn set_faults(&mut self, port: PortId, faults: LinkFaults) -> Result<(), SwitchError> {
        faults.validate().map_err(|source| SwitchError::Faults { port, source })?;
        let setup = self.ports.get_mut(port.index()).ok_or(SwitchError::UnknownPort(port))?;
        setup.faults = faults;
        Ok(())
    }

    /// Starts forwarding: one receive thread per port and one timer thread
    /// for delayed frames. The switch runs until [`SwitchHandle::shutdown`]
    /// or until the last handle is dropped.
    pub fn start(self) -> Result<SwitchHandle, SwitchError> {
        SwitchHandle::start(self.config, self.ports)
    }
}
