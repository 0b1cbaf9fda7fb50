//! The node's side: a smoltcp interface on the management address that
//! answers ARP and status queries.

use alloc::vec;
use alloc::vec::Vec;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::udp;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress};

use crate::codec::{encode_status, encode_unsupported, Query, QueryError, MAX_REPLY, MGMT_UDP_PORT};
use crate::link::{FrameLink, LinkCounts, LinkDevice, MAX_FRAME};
use crate::status::{MgmtCounters, StatusReport};
use crate::Ipv4Cidr;

/// Datagrams each socket buffer holds, and their bytes.
const SOCKET_PACKETS: usize = 8;
const SOCKET_BYTES: usize = 8 * MAX_REPLY;

/// A UDP socket with heap buffers of the sizes above.
pub(crate) fn udp_socket() -> udp::Socket<'static> {
    let rx = udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; SOCKET_PACKETS], vec![0u8; SOCKET_BYTES]);
    let tx = udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; SOCKET_PACKETS], vec![0u8; SOCKET_BYTES]);
    udp::Socket::new(rx, tx)
}

/// An interface with one Ethernet address and one IPv4 address.
pub(crate) fn interface<L: FrameLink + ?Sized>(
    device: &mut LinkDevice<'_, L>,
    mac: [u8; 6],
    ip: Ipv4Cidr,
    now_ms: u64,
) -> Interface {
    let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
    // Only used for TCP sequence numbers and ephemeral ports: no secret.
    config.random_seed = u64::from_le_bytes([mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], 0, 0]) ^ now_ms;
    let mut iface = Interface::new(config, device, Instant::from_millis(now_ms as i64));
    iface.update_ip_addrs(|addrs| {
        // A fresh interface has no address; one always fits.
        let _ = addrs.push(ip.to_smoltcp());
    });
    iface
}

/// A node's management endpoint: ARP, IPv4 and UDP on its management
/// address, answering status queries on [`MGMT_UDP_PORT`].
pub struct MgmtEndpoint {
    iface: Interface,
    sockets: SocketSet<'static>,
    udp: SocketHandle,
    counters: MgmtCounters,
    link: LinkCounts,
    rx_buf: [u8; MAX_FRAME],
    reply: Vec<u8>,
}

impl MgmtEndpoint {
    /// An endpoint with Ethernet address `mac` and IPv4 address `ip`.
    pub fn new<L: FrameLink + ?Sized>(link: &mut L, mac: [u8; 6], ip: Ipv4Cidr, now_ms: u64) -> Self {
        let mut rx_buf = [0u8; MAX_FRAME];
        let mut counts = LinkCounts::default();
        let iface = {
            let mut device = LinkDevice { link, rx_buf: &mut rx_buf, counts: &mut counts };
            interface(&mut device, mac, ip, now_ms)
        };
        let mut socket = udp_socket();
        // Binding a fresh socket to a non-zero port cannot fail.
        let _ = socket.bind(MGMT_UDP_PORT);
        let mut sockets = SocketSet::new(Vec::new());
        let udp = sockets.add(socket);
        Self { iface, sockets, udp, counters: MgmtCounters::default(), link: counts, rx_buf, reply: vec![0; MAX_REPLY] }
    }

    /// The endpoint's counters.
    pub fn counters(&self) -> MgmtCounters {
        MgmtCounters { frames_in: self.link.frames_in, frames_out: self.link.frames_out, ..self.counters }
    }

    fn poll_iface<L: FrameLink + ?Sized>(&mut self, now_ms: u64, link: &mut L) {
        let mut device = LinkDevice { link, rx_buf: &mut self.rx_buf, counts: &mut self.link };
        self.iface.poll(Instant::from_millis(now_ms as i64), &mut device, &mut self.sockets);
    }

    /// Takes every frame `link` has, answers what needs answering, and
    /// sends the replies. `status` is called once per well-formed query;
    /// its `mgmt` field is replaced by this endpoint's counters.
    pub fn poll<L: FrameLink + ?Sized>(&mut self, now_ms: u64, link: &mut L, status: &mut dyn FnMut() -> StatusReport) {
        self.poll_iface(now_ms, link);
        while let Ok((query, to)) = self
            .sockets
            .get_mut::<udp::Socket>(self.udp)
            .recv()
            .map(|(bytes, meta)| (Query::decode(bytes), meta.endpoint))
        {
            let reply_len = match query {
                Ok(query) => {
                    let mut report = status();
                    report.mgmt = self.counters();
                    report.mgmt.queries_answered += 1;
                    encode_status(query, &report, &mut self.reply).ok()
                }
                Err(QueryError::UnsupportedVersion { nonce, .. }) => {
                    self.counters.queries_unsupported += 1;
                    let reply = encode_unsupported(nonce);
                    self.reply[..reply.len()].copy_from_slice(&reply);
                    Some(reply.len())
                }
                Err(QueryError::Malformed) => {
                    self.counters.queries_malformed += 1;
                    continue;
                }
            };
            let socket = self.sockets.get_mut::<udp::Socket>(self.udp);
            match reply_len {
                Some(len) if socket.send_slice(&self.reply[..len], to).is_ok() => {
                    if query.is_ok() {
                        self.counters.queries_answered += 1;
                    }
                }
                _ => self.counters.replies_dropped += 1,
            }
        }
        self.poll_iface(now_ms, link);
    }

    /// When [`MgmtEndpoint::poll`] should run again at the latest even
    /// without new frames (ARP retries, queued replies), in ms from `now_ms`.
    pub fn poll_delay_ms(&mut self, now_ms: u64) -> Option<u64> {
        self.iface.poll_delay(Instant::from_millis(now_ms as i64), &self.sockets).map(|d| d.total_millis())
    }
}
