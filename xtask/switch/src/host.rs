//! A port whose far end belongs to the caller: tests inject and capture raw
//! frames through it.

use std::io;
use std::net::SocketAddr;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use crate::switch::{bind_loopback, local_addr, SwitchError};
use crate::PortId;

/// The caller's end of a host port: a UDP socket on 127.0.0.1 that
/// exchanges frames with one switch port.
#[derive(Debug)]
pub struct HostEndpoint {
    port: PortId,
    socket: UdpSocket,
    local: SocketAddr,
    switch_addr: SocketAddr,
}

impl HostEndpoint {
    pub(crate) fn connect(port: PortId, switch_addr: SocketAddr) -> Result<Self, SwitchError> {
        let socket = bind_loopback(0, Duration::from_millis(50))?;
        socket
            .connect(switch_addr)
            .map_err(|source| SwitchError::Socket { context: "connect host endpoint to its switch port", source })?;
        let local = local_addr(&socket)?;
        Ok(Self { port, socket, local, switch_addr })
    }

    /// The switch port this endpoint is attached to.
    pub fn port(&self) -> PortId {
        self.port
    }

    /// This endpoint's own address (the switch port's peer).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The switch-side address of the port.
    pub fn switch_addr(&self) -> SocketAddr {
        self.switch_addr
    }

    /// Sends one raw frame into the switch (any bytes: the switch checks).
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        let sent = self.socket.send(frame)?;
        if sent == frame.len() {
            Ok(())
        } else {
            Err(io::Error::new(io::ErrorKind::WriteZero, format!("sent {sent} of {} bytes", frame.len())))
        }
    }

    /// The next frame the switch sends to this port, or `None` if none
    /// arrives within `timeout` (or the socket fails).
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Vec<u8>> {
        let start = Instant::now();
        let deadline = start.checked_add(timeout).unwrap_or(start + Duration::from_secs(86_400 * 365));
        let mut buf = vec![0u8; 65_536];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            // A zero read timeout means "block forever" to the OS; poll
            // for at least a microsecond instead.
            self.socket.set_read_timeout(Some(left.max(Duration::from_micros(1)))).ok()?;
            match self.socket.recv(&mut buf) {
                Ok(len) => return Some(buf[..len.min(buf.len())].to_vec()),
                // A stale ICMP error from an earlier send; keep waiting.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused && !left.is_zero() => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted && !left.is_zero() => {}
                Err(_) => return None,
            }
        }
    }
}
