use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use crate::client::NodeAnswer;
use crate::codec::*;
use crate::*;

const NODE_MAC: [u8; 6] = [0x52, 0x54, 0, 0x5e, 0, 1];
const NODE_IP: [u8; 4] = [10, 77, 0, 2];
const HOST_MAC: [u8; 6] = [0x02, 0x53, 0x4e, 0, 0, 0xfe];
const HOST_IP: [u8; 4] = [10, 77, 0, 254];

fn report(members: u16) -> StatusReport {
    StatusReport {
        node_id: 1,
        cluster: "qemu-2node".to_string(),
        uptime_ms: 123_456,
        boot_epoch: 0xdead_beef_0000_0001,
        formed: true,
        members: (0..members)
            .map(|node| MemberStatus {
                node,
                state: if node == 1 { MemberState::Local } else { MemberState::Alive },
                last_contact_ms_ago: (node != 1).then_some(u64::from(node) * 7),
                epoch: Some(u64::MAX - u64::from(node)),
                link: (node != 1).then_some(LinkStats {
                    frames_sent: u64::MAX / 3,
                    bytes_sent: u64::MAX / 5,
                    frames_received: 1 << 40,
                    bytes_received: 1 << 50,
                    retransmits: 99,
                    messages_delivered: 12_345_678,
                    srtt_us: Some(1234),
                    rttvar_us: 321,
                    rto_us: 200_000,
                    in_flight: 3,
                }),
            })
            .collect(),
        transport: TransportTotals {
            messages_sent: 5,
            messages_delivered: 6,
            frames_accepted: 7,
            ..Default::default()
        },
        drops: DropCounters { bad_mac: 3, replay: 2, malformed: 1, ..Default::default() },
        mgmt: MgmtCounters::default(),
        cores: vec![CoreLoad { core: 0, halted_permille: 973 }, CoreLoad { core: 1, halted_permille: 1000 }],
        nic_interrupts: 4321,
    }
}

#[test]
fn query_round_trips_and_has_the_documented_layout() {
    let q = Query { nonce: 0x0102_0304, first_member: 0x0506 };
    let bytes = q.encode();
    assert_eq!(&bytes, b"SNMG\x02\x01\x01\x02\x03\x04\x05\x06");
    assert_eq!(Query::decode(&bytes), Ok(q));
}

#[test]
fn malformed_queries_are_refused_and_other_versions_named() {
    let good = Query { nonce: 9, first_member: 0 }.encode();
    for len in 0..good.len() {
        assert_eq!(Query::decode(&good[..len]), Err(QueryError::Malformed));
    }
    let mut long = good.to_vec();
    long.push(0);
    assert_eq!(Query::decode(&long), Err(QueryError::Malformed));
    for (at, value) in [(0, b'X'), (3, b'X'), (5, 0x81)] {
        let mut bad = good;
        bad[at] = value;
        assert_eq!(Query::decode(&bad), Err(QueryError::Malformed), "byte {at}");
    }
    let mut newer = good;
    newer[4] = VERSION + 1;
    assert_eq!(Query::decode(&newer), Err(QueryError::UnsupportedVersion { version: VERSION + 1, nonce: 9 }));
    let (nonce, response) = decode_response(&encode_unsupported(9)).unwrap();
    assert_eq!((nonce, response), (9, Response::UnsupportedVersion { supported: VERSION }));
}

#[test]
fn a_small_report_fits_one_page_and_round_trips() {
    let report = report(2);
    let mut buf = vec![0u8; MAX_REPLY];
    let len = encode_status(Query { nonce: 77, first_member: 0 }, &report, &mut buf).unwrap();
    assert_eq!(&buf[..6], b"SNMG\x02\x81");
    let (nonce, response) = decode_response(&buf[..len]).unwrap();
    assert_eq!(nonce, 77);
    let Response::Status(page) = response else { panic!("{response:?}") };
    assert_eq!(page.next_first(), None);
    assert_eq!(page.into_report(), report);
}

/// Asks for `report` page by page, as a client does; checks that every
/// page fits one datagram and carries at least one member. Returns the
/// reassembled report and the number of pages.
fn page_through(report: &StatusReport) -> (StatusReport, usize) {
    let mut buf = vec![0u8; 4096];
    let mut first = 0;
    let mut rebuilt: Option<StatusReport> = None;
    let mut pages = 0;
    loop {
        let len = encode_status(Query { nonce: 1, first_member: first }, report, &mut buf).unwrap();
        assert!(len <= MAX_REPLY, "page of {len} bytes");
        let Ok((_, Response::Status(page))) = decode_response(&buf[..len]) else { panic!("page does not decode") };
        assert!(!page.members.is_empty());
        pages += 1;
        let next = page.next_first();
        match &mut rebuilt {
            None => rebuilt = Some(page.into_report()),
            Some(r) => assert!(page.extend_report(r)),
        }
        match next {
            Some(n) => first = n,
            None => return (rebuilt.unwrap(), pages),
        }
    }
}

#[test]
fn a_64_member_report_is_paged_within_one_datagram_each() {
    let report = report(64);
    let (rebuilt, pages) = page_through(&report);
    assert!(pages > 1);
    assert_eq!(rebuilt, report);
}

#[test]
fn the_largest_node_still_pages_within_one_datagram_each() {
    // Every core index the kernel can have (256), each at the widest load
    // value, beside 64 members: the node-wide fields must still leave room
    // for at least one member per page.
    let mut report = report(64);
    report.cores = (0..256).map(|core| CoreLoad { core, halted_permille: 1000 }).collect();
    let (rebuilt, pages) = page_through(&report);
    assert!(pages > 1);
    assert_eq!(rebuilt, report);
}

#[test]
fn decoding_never_panics_on_damaged_replies() {
    let report = report(3);
    let mut buf = vec![0u8; MAX_REPLY];
    let len = encode_status(Query { nonce: 1, first_member: 0 }, &report, &mut buf).unwrap();
    let good = buf[..len].to_vec();
    for cut in 0..good.len() {
        let _ = decode_response(&good[..cut]);
    }
    let mut state = 0x1234_5678_9abc_def0u64;
    for _ in 0..20_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let mut bad = good.clone();
        let at = (state as usize) % bad.len();
        bad[at] ^= (state >> 32) as u8 | 1;
        let _ = decode_response(&bad);
    }
    assert_eq!(decode_response(b"SNMG\x02\x81\0\0\0\x01\xff\xff"), Err(DecodeError::Body));
    // A page of the version before this one (its layout had no core loads).
    assert_eq!(decode_response(b"SNMG\x01\x81\0\0\0\x01"), Err(DecodeError::Version(1)));
}

struct Pair {
    node_link: LoopbackLink,
    host_link: LoopbackLink,
    node: MgmtEndpoint,
    client: StatusClient,
    now: u64,
}

impl Pair {
    fn new() -> Self {
        let (mut node_link, mut host_link) = LoopbackLink::pair(64);
        let node = MgmtEndpoint::new(&mut node_link, NODE_MAC, Ipv4Cidr::new(NODE_IP, 24), 0);
        let client = StatusClient::new(&mut host_link, HOST_MAC, Ipv4Cidr::new(HOST_IP, 24), 0);
        Self { node_link, host_link, node, client, now: 0 }
    }

    /// Runs both stacks for `ms` of simulated time in 10 ms steps.
    fn run(&mut self, ms: u64, report: &StatusReport) -> usize {
        let mut calls = 0;
        for _ in 0..ms / 10 {
            self.now += 10;
            self.client.poll(self.now, &mut self.host_link);
            self.node.poll(self.now, &mut self.node_link, &mut || {
                calls += 1;
                report.clone()
            });
        }
        calls
    }
}

#[test]
fn endpoint_answers_a_client_over_arp_ipv4_udp() {
    let mut pair = Pair::new();
    let report = report(2);
    pair.client.query(NODE_IP);
    let calls = pair.run(200, &report);
    assert_eq!(calls, 1);
    let Some(NodeAnswer::Complete(got)) = pair.client.answer(NODE_IP) else {
        panic!("no answer: {:?}", pair.client.answer(NODE_IP))
    };
    assert_eq!(got.members, report.members);
    assert_eq!(got.drops, report.drops);
    assert_eq!(got.mgmt.queries_answered, 1);
    assert!(got.mgmt.frames_in >= 2, "ARP request + query: {:?}", got.mgmt);
    assert_eq!(pair.client.bad_replies, 0);
}

#[test]
fn endpoint_pages_a_large_report_to_the_client() {
    let mut pair = Pair::new();
    let report = report(64);
    pair.client.query(NODE_IP);
    let calls = pair.run(500, &report);
    assert!(calls > 1, "one call per page");
    let Some(NodeAnswer::Complete(got)) = pair.client.answer(NODE_IP) else { panic!("incomplete") };
    assert_eq!(got.members, report.members);
}

#[test]
fn malformed_queries_are_counted_and_ignored() {
    let mut pair = Pair::new();
    let report = report(2);
    pair.client.query(NODE_IP);
    pair.run(200, &report);
    assert!(pair.client.is_done(NODE_IP));
    let mut junk: Vec<Vec<u8>> = vec![Vec::new(), b"SNMG".to_vec(), vec![0xff; 700]];
    let mut wrong_kind = Query { nonce: 5, first_member: 0 }.encode();
    wrong_kind[5] = 0x81;
    junk.push(wrong_kind.to_vec());
    for bytes in &junk {
        assert!(pair.client.send_raw(NODE_IP, bytes));
    }
    let calls = pair.run(200, &report);
    assert_eq!(calls, 0, "no status taken for junk");
    assert_eq!(pair.node.counters().queries_malformed, junk.len() as u64);
    assert_eq!(pair.client.bad_replies, 0, "junk got no reply");
    // A newer tool is told which version this node speaks.
    let mut newer = Query { nonce: 6, first_member: 0 }.encode();
    newer[4] = 9;
    assert!(pair.client.send_raw(NODE_IP, &newer));
    pair.run(100, &report);
    assert_eq!(pair.node.counters().queries_unsupported, 1);
}

#[test]
fn garbage_frames_do_not_stop_the_endpoint() {
    let mut pair = Pair::new();
    let report = report(2);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for len in [0usize, 1, 13, 14, 20, 42, 60, 100, 1514, 1515, 3000] {
        let mut frame = vec![0u8; len];
        for b in frame.iter_mut() {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            *b = (state >> 56) as u8;
        }
        if len >= 14 {
            frame[..6].copy_from_slice(&NODE_MAC);
            frame[12..14].copy_from_slice(&[0x08, 0x00]);
        }
        pair.node_link.inject(&frame);
    }
    pair.run(50, &report);
    pair.client.query(NODE_IP);
    pair.run(200, &report);
    assert!(pair.client.is_done(NODE_IP));
}
