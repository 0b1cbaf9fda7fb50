//! The asking side: a smoltcp interface that sends status queries to node
//! management addresses and collects the replies (`cargo xtask status`).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::udp;
use smoltcp::time::Instant;
use smoltcp::wire::{IpAddress, IpEndpoint};

use crate::codec::{decode_response, DecodeError, Query, Response, MGMT_UDP_PORT};
use crate::endpoint::{interface, udp_socket};
use crate::link::{FrameLink, LinkCounts, LinkDevice, MAX_FRAME};
use crate::status::StatusReport;
use crate::Ipv4Cidr;

/// The local UDP port queries leave from.
pub const CLIENT_UDP_PORT: u16 = 7701;

/// What a client learned about one node so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeAnswer {
    /// Pages are still coming in.
    Partial(StatusReport),
    /// Every member has arrived.
    Complete(StatusReport),
    /// The node speaks another protocol version.
    Unsupported { supported: u8 },
}

struct Pending {
    nonce: u32,
    first: u16,
}

/// Queries nodes and assembles their (possibly paged) status reports.
pub struct StatusClient {
    iface: Interface,
    sockets: SocketSet<'static>,
    udp: SocketHandle,
    link: LinkCounts,
    rx_buf: [u8; MAX_FRAME],
    next_nonce: u32,
    pending: BTreeMap<[u8; 4], Pending>,
    answers: BTreeMap<[u8; 4], NodeAnswer>,
    /// Replies that did not decode or did not match a query.
    pub bad_replies: u64,
}

impl StatusClient {
    pub fn new<L: FrameLink + ?Sized>(link: &mut L, mac: [u8; 6], ip: Ipv4Cidr, now_ms: u64) -> Self {
        let mut rx_buf = [0u8; MAX_FRAME];
        let mut counts = LinkCounts::default();
        let iface = {
            let mut device = LinkDevice { link, rx_buf: &mut rx_buf, counts: &mut counts };
            interface(&mut device, mac, ip, now_ms)
        };
        let mut socket = udp_socket();
        let _ = socket.bind(CLIENT_UDP_PORT);
        let mut sockets = SocketSet::new(Vec::new());
        let udp = sockets.add(socket);
        Self {
            iface,
            sockets,
            udp,
            link: counts,
            rx_buf,
            next_nonce: (now_ms as u32) | 1,
            pending: BTreeMap::new(),
            answers: BTreeMap::new(),
            bad_replies: 0,
        }
    }

    /// Queues a query to `node` for the next page it owes us (from the
    /// start if nothing came yet). Call again to retry: a retry reuses
    /// nothing, so a late reply to an old query is ignored.
    pub fn query(&mut self, node: [u8; 4]) {
        let first = match self.answers.get(&node) {
            Some(NodeAnswer::Partial(report)) => u16::try_from(report.members.len()).unwrap_or(u16::MAX),
            Some(_) => return,
            None => 0,
        };
        let nonce = self.next_nonce;
        self.next_nonce = self.next_nonce.wrapping_add(1);
        let [a, b, c, d] = node;
        let to = IpEndpoint::new(IpAddress::v4(a, b, c, d), MGMT_UDP_PORT);
        let socket = self.sockets.get_mut::<udp::Socket>(self.udp);
        if socket.send_slice(&Query { nonce, first_member: first }.encode(), to).is_ok() {
            self.pending.insert(node, Pending { nonce, first });
        }
    }

    /// Sends arbitrary bytes to `node`'s management port (tests of the
    /// endpoint's input checks: it must count them and stay up).
    pub fn send_raw(&mut self, node: [u8; 4], bytes: &[u8]) -> bool {
        let [a, b, c, d] = node;
        let to = IpEndpoint::new(IpAddress::v4(a, b, c, d), MGMT_UDP_PORT);
        self.sockets.get_mut::<udp::Socket>(self.udp).send_slice(bytes, to).is_ok()
    }

    /// Moves frames both ways and takes in replies. Returns the nodes whose
    /// answer changed (a next page is queried at once).
    pub fn poll<L: FrameLink + ?Sized>(&mut self, now_ms: u64, link: &mut L) -> Vec<[u8; 4]> {
        let mut changed = Vec::new();
        let now = Instant::from_millis(now_ms as i64);
        {
            let mut device = LinkDevice { link: &mut *link, rx_buf: &mut self.rx_buf, counts: &mut self.link };
            self.iface.poll(now, &mut device, &mut self.sockets);
        }
        loop {
            let socket = self.sockets.get_mut::<udp::Socket>(self.udp);
            let Ok((bytes, meta)) = socket.recv() else { break };
            let IpAddress::Ipv4(from) = meta.endpoint.addr;
            let from = from.octets();
            let decoded = decode_response(bytes);
            match (decoded, self.pending.get(&from)) {
                (Ok((nonce, response)), Some(p)) if p.nonce == nonce => {
                    let first = p.first;
                    self.pending.remove(&from);
                    if self.accept(from, first, response) {
                        changed.push(from);
                    }
                }
                _ => self.bad_replies += 1,
            }
        }
        for node in &changed {
            if matches!(self.answers.get(node), Some(NodeAnswer::Partial(_))) {
                self.query(*node);
            }
        }
        let mut device = LinkDevice { link, rx_buf: &mut self.rx_buf, counts: &mut self.link };
        self.iface.poll(now, &mut device, &mut self.sockets);
        changed
    }

    fn accept(&mut self, from: [u8; 4], first: u16, response: Response) -> bool {
        let page = match response {
            Response::UnsupportedVersion { supported } => {
                self.answers.insert(from, NodeAnswer::Unsupported { supported });
                return true;
            }
            Response::Status(page) => *page,
        };
        if page.members_first != first {
            self.bad_replies += 1;
            return false;
        }
        let done = page.next_first().is_none();
        let report = match self.answers.remove(&from) {
            Some(NodeAnswer::Partial(mut report)) => {
                if !page.extend_report(&mut report) {
                    self.bad_replies += 1;
                }
                report
            }
            _ => page.into_report(),
        };
        let answer = if done { NodeAnswer::Complete(report) } else { NodeAnswer::Partial(report) };
        self.answers.insert(from, answer);
        true
    }

    /// What `node` has answered so far.
    pub fn answer(&self, node: [u8; 4]) -> Option<&NodeAnswer> {
        self.answers.get(&node)
    }

    /// True once `node`'s report is complete (or it said it cannot answer).
    pub fn is_done(&self, node: [u8; 4]) -> bool {
        matches!(self.answers.get(&node), Some(NodeAnswer::Complete(_) | NodeAnswer::Unsupported { .. }))
    }

    /// When to poll again at the latest, in ms from `now_ms`.
    pub fn poll_delay_ms(&mut self, now_ms: u64) -> Option<u64> {
        self.iface.poll_delay(Instant::from_millis(now_ms as i64), &self.sockets).map(|d| d.total_millis())
    }
}

/// Re-exported for callers matching on decode failures.
pub type ReplyError = DecodeError;
