//! The management protocol on UDP port [`MGMT_UDP_PORT`], version [`VERSION`].
//!
//! ```text
//! query (exactly 12 bytes, integers big-endian)
//!  0  4  magic "SNMG"
//!  4  1  version (2)
//!  5  1  kind: 1 = status query
//!  6  4  nonce (echoed in the reply)
//! 10  2  first member: the first member index wanted in the reply (paging)
//!
//! reply
//!  0  4  magic "SNMG"
//!  4  1  version (2)
//!  5  1  kind: 0x81 = status page, 0xFE = unsupported version
//!  6  4  nonce of the query
//! 10  …  status page: postcard encoding of [`StatusPage`]
//!        unsupported version: one byte, the version this node speaks
//! ```
//!
//! A status reply is at most [`MAX_REPLY`] bytes, so it is one unfragmented
//! IPv4 datagram on a 1500-byte MTU. A page carries the node-wide fields
//! and as many members as fit, from `first member` on; a client asks again
//! from `members_first + members.len()` until it has `members_total`.
//! Anything sent to the port that is not a well-formed query is counted and
//! gets no reply; a well-formed query of another version gets the
//! "unsupported version" reply so that a newer tool can say so.

use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use crate::status::{CoreLoad, DropCounters, MemberStatus, MgmtCounters, StatusReport, TransportTotals};

/// The UDP port every node answers status queries on.
pub const MGMT_UDP_PORT: u16 = 7700;
/// First bytes of every query and reply.
pub const MAGIC: [u8; 4] = *b"SNMG";
/// The protocol version this code speaks.
pub const VERSION: u8 = 2;
/// Length of a query.
pub const QUERY_LEN: usize = 12;
/// Length of a reply's fixed header.
pub const REPLY_HEADER_LEN: usize = 10;
/// Largest reply: a 1500-byte IPv4 MTU less the IPv4 and UDP headers.
pub const MAX_REPLY: usize = 1472;

const KIND_STATUS_QUERY: u8 = 1;
const KIND_STATUS_PAGE: u8 = 0x81;
const KIND_UNSUPPORTED: u8 = 0xFE;

/// A well-formed status query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Query {
    pub nonce: u32,
    pub first_member: u16,
}

/// Why a datagram is not a query this node answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryError {
    /// Wrong length, magic or kind: counted and ignored.
    Malformed,
    /// A query of another protocol version (answered with
    /// [`encode_unsupported`]).
    UnsupportedVersion { version: u8, nonce: u32 },
}

impl Query {
    pub fn encode(&self) -> [u8; QUERY_LEN] {
        let mut out = [0u8; QUERY_LEN];
        out[..4].copy_from_slice(&MAGIC);
        out[4] = VERSION;
        out[5] = KIND_STATUS_QUERY;
        out[6..10].copy_from_slice(&self.nonce.to_be_bytes());
        out[10..12].copy_from_slice(&self.first_member.to_be_bytes());
        out
    }

    /// Checks a datagram. Never panics, whatever it holds.
    pub fn decode(bytes: &[u8]) -> Result<Query, QueryError> {
        let Ok(bytes) = <&[u8; QUERY_LEN]>::try_from(bytes) else {
            return Err(QueryError::Malformed);
        };
        if bytes[..4] != MAGIC || bytes[5] != KIND_STATUS_QUERY {
            return Err(QueryError::Malformed);
        }
        let nonce = u32::from_be_bytes([bytes[6], bytes[7], bytes[8], bytes[9]]);
        if bytes[4] != VERSION {
            return Err(QueryError::UnsupportedVersion { version: bytes[4], nonce });
        }
        Ok(Query { nonce, first_member: u16::from_be_bytes([bytes[10], bytes[11]]) })
    }
}

/// One reply's worth of a [`StatusReport`]: every node-wide field and the
/// members `members_first ..` that fit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusPage {
    pub node_id: u16,
    pub cluster: String,
    pub uptime_ms: u64,
    pub boot_epoch: u64,
    pub formed: bool,
    /// How many members the node reports in all.
    pub members_total: u16,
    /// Index of `members[0]` in the whole list.
    pub members_first: u16,
    pub members: Vec<MemberStatus>,
    pub transport: TransportTotals,
    pub drops: DropCounters,
    pub mgmt: MgmtCounters,
    pub cores: Vec<CoreLoad>,
    pub nic_interrupts: u64,
}

impl StatusPage {
    /// Where the next page starts, if this one is not the last.
    pub fn next_first(&self) -> Option<u16> {
        let next = usize::from(self.members_first) + self.members.len();
        (next < usize::from(self.members_total)).then_some(next as u16)
    }

    fn from_report(report: &StatusReport, first: usize, count: usize) -> Self {
        let members = report.members.get(first..first + count).unwrap_or(&[]).to_vec();
        Self {
            node_id: report.node_id,
            cluster: report.cluster.clone(),
            uptime_ms: report.uptime_ms,
            boot_epoch: report.boot_epoch,
            formed: report.formed,
            members_total: u16::try_from(report.members.len()).unwrap_or(u16::MAX),
            members_first: u16::try_from(first).unwrap_or(u16::MAX),
            members,
            transport: report.transport,
            drops: report.drops,
            mgmt: report.mgmt,
            cores: report.cores.clone(),
            nic_interrupts: report.nic_interrupts,
        }
    }

    /// Starts a report from the first page; add the others with
    /// [`StatusPage::extend_report`].
    pub fn into_report(self) -> StatusReport {
        StatusReport {
            node_id: self.node_id,
            cluster: self.cluster,
            uptime_ms: self.uptime_ms,
            boot_epoch: self.boot_epoch,
            formed: self.formed,
            members: self.members,
            transport: self.transport,
            drops: self.drops,
            mgmt: self.mgmt,
            cores: self.cores,
            nic_interrupts: self.nic_interrupts,
        }
    }

    /// Appends this page's members to `report` if it continues it exactly
    /// (same node, starting where the report ends).
    pub fn extend_report(self, report: &mut StatusReport) -> bool {
        if self.node_id != report.node_id || usize::from(self.members_first) != report.members.len() {
            return false;
        }
        report.members.extend(self.members);
        true
    }
}

/// A decoded reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    Status(alloc::boxed::Box<StatusPage>),
    /// The node speaks another protocol version.
    UnsupportedVersion {
        supported: u8,
    },
}

/// Why a reply could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Too short, wrong magic or unknown kind.
    Malformed,
    /// A reply of another protocol version.
    Version(u8),
    /// The status page does not decode.
    Body,
}

/// Why a reply could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// Not even a page without members fits the buffer.
    TooSmall,
}

fn header(out: &mut [u8], kind: u8, nonce: u32) -> Result<(), EncodeError> {
    let head = out.get_mut(..REPLY_HEADER_LEN).ok_or(EncodeError::TooSmall)?;
    head[..4].copy_from_slice(&MAGIC);
    head[4] = VERSION;
    head[5] = kind;
    head[6..10].copy_from_slice(&nonce.to_be_bytes());
    Ok(())
}

/// Writes the reply to `query` into `out` (at most [`MAX_REPLY`] bytes of
/// it): the node-wide fields and as many members from `query.first_member`
/// as fit. Returns the reply's length.
pub fn encode_status(query: Query, report: &StatusReport, out: &mut [u8]) -> Result<usize, EncodeError> {
    let limit = out.len().min(MAX_REPLY);
    let out = &mut out[..limit];
    header(out, KIND_STATUS_PAGE, query.nonce)?;
    let first = usize::from(query.first_member).min(report.members.len());
    let mut count = report.members.len() - first;
    loop {
        let page = StatusPage::from_report(report, first, count);
        if let Ok(body) = postcard::to_slice(&page, &mut out[REPLY_HEADER_LEN..]) {
            return Ok(REPLY_HEADER_LEN + body.len());
        }
        if count == 0 {
            return Err(EncodeError::TooSmall);
        }
        count -= 1;
    }
}

/// The reply to a query of another version.
pub fn encode_unsupported(nonce: u32) -> [u8; REPLY_HEADER_LEN + 1] {
    let mut out = [0u8; REPLY_HEADER_LEN + 1];
    // The array is longer than the header, so this cannot fail.
    let _ = header(&mut out, KIND_UNSUPPORTED, nonce);
    out[REPLY_HEADER_LEN] = VERSION;
    out
}

/// Reads a reply: its nonce and what it says. Never panics.
pub fn decode_response(bytes: &[u8]) -> Result<(u32, Response), DecodeError> {
    if bytes.len() < REPLY_HEADER_LEN || bytes[..4] != MAGIC {
        return Err(DecodeError::Malformed);
    }
    let nonce = u32::from_be_bytes([bytes[6], bytes[7], bytes[8], bytes[9]]);
    let body = &bytes[REPLY_HEADER_LEN..];
    match bytes[5] {
        KIND_UNSUPPORTED => match body {
            [supported] => Ok((nonce, Response::UnsupportedVersion { supported: *supported })),
            _ => Err(DecodeError::Malformed),
        },
        KIND_STATUS_PAGE if bytes[4] != VERSION => Err(DecodeError::Version(bytes[4])),
        KIND_STATUS_PAGE => {
            let page: StatusPage = postcard::from_bytes(body).map_err(|_| DecodeError::Body)?;
            Ok((nonce, Response::Status(alloc::boxed::Box::new(page))))
        }
        _ => Err(DecodeError::Malformed),
    }
}
