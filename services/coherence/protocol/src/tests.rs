//! Scripted tests of the engine: each one drives three nodes message by
//! message through one of the race cases of `docs/protocol.md` and checks
//! the exact actions.

extern crate std;

use std::vec::Vec;

use crate::Action::{Complete, Fill as FillAct, Map, Release, Send, Unmap};
use crate::Message::*;
use crate::{
    Access, Action, Actions, CacheState, Fill, FillFrom, GuestPage, Node, NodeId, ProtocolConfig, ProtocolError,
    StripedHomes,
};

const R: Access = Access::Read;
const W: Access = Access::Write;

fn n(i: u8) -> NodeId {
    NodeId::new(i).unwrap()
}

/// Page 0 is homed at node 0 (3 nodes, round-robin).
fn p0() -> GuestPage {
    GuestPage::new(0).unwrap()
}

fn cluster(config: ProtocolConfig) -> Vec<Node<StripedHomes>> {
    let homes = StripedHomes::new(3, 1, 30).unwrap();
    (0..3).map(|i| Node::new(n(i), homes, config)).collect()
}

fn handle(nodes: &mut [Node<StripedHomes>], to: u8, from: u8, msg: crate::Message) -> Vec<Action> {
    let mut out = Actions::new();
    nodes[usize::from(to)]
        .handle(n(from), msg, &mut out)
        .unwrap_or_else(|e| panic!("n{to} refused {msg:?} from n{from}: {e}"));
    out.iter().copied().collect()
}

fn request(nodes: &mut [Node<StripedHomes>], at: u8, access: Access) -> Vec<Action> {
    let mut out = Actions::new();
    nodes[usize::from(at)].request(p0(), access, &mut out).unwrap();
    out.iter().copied().collect()
}

fn evict(nodes: &mut [Node<StripedHomes>], at: u8) -> Vec<Action> {
    let mut out = Actions::new();
    nodes[usize::from(at)].evict(p0(), &mut out).unwrap();
    out.iter().copied().collect()
}

fn send(to: u8, msg: crate::Message) -> Action {
    Send { to: n(to), msg }
}

/// Gives node `at` write access to page 0 through the protocol.
fn make_owner(nodes: &mut [Node<StripedHomes>], at: u8) {
    let page = p0();
    assert_eq!(request(nodes, at, W), [send(0, GetM { page })]);
    let grant = handle(nodes, 0, at, GetM { page });
    let Some(msg) = grant.iter().find_map(|a| match *a {
        Send { msg, .. } => Some(msg),
        _ => None,
    }) else {
        panic!("{grant:?}")
    };
    handle(nodes, at, 0, msg);
    assert_eq!(nodes[usize::from(at)].cache_state(page), CacheState::Modified);
}

#[test]
fn read_miss_of_a_never_written_page_sends_no_data() {
    let mut nodes = cluster(ProtocolConfig::DEFAULT);
    let page = p0();
    assert_eq!(request(&mut nodes, 1, R), [send(0, GetS { page })]);
    let fill = Fill::Zero;
    assert_eq!(handle(&mut nodes, 0, 1, GetS { page }), [send(1, Grant { page, access: R, fill })]);
    assert_eq!(
        handle(&mut nodes, 1, 0, Grant { page, access: R, fill }),
        [FillAct { page, from: FillFrom::Zero }, Map { page, access: R }, Complete { page, access: R }]
    );
    assert_eq!(nodes[1].counters().zero_grants, 0);
    assert_eq!(nodes[0].counters().zero_grants, 1);
    // Without zero pages, the same grant carries the page.
    let mut nodes = cluster(ProtocolConfig { zero_pages: false, ..ProtocolConfig::DEFAULT });
    request(&mut nodes, 1, R);
    assert_eq!(handle(&mut nodes, 0, 1, GetS { page }), [send(1, Grant { page, access: R, fill: Fill::Data })]);
}

#[test]
fn a_written_page_moves_with_its_data_and_ownership_transfers_directly() {
    let mut nodes = cluster(ProtocolConfig::DEFAULT);
    let page = p0();
    make_owner(&mut nodes, 1);
    // Node 2 writes: the home forwards, the owner sends straight to node 2.
    assert_eq!(request(&mut nodes, 2, W), [send(0, GetM { page })]);
    assert_eq!(handle(&mut nodes, 0, 2, GetM { page }), [send(1, FwdGetM { page, requester: n(2) })]);
    assert_eq!(
        handle(&mut nodes, 1, 0, FwdGetM { page, requester: n(2) }),
        [Unmap { page }, send(2, OwnerData { page }), Release { page }]
    );
    assert_eq!(
        handle(&mut nodes, 2, 1, OwnerData { page }),
        [
            FillAct { page, from: FillFrom::Message },
            Map { page, access: W },
            send(0, Unblock { page }),
            Complete { page, access: W }
        ]
    );
    assert_eq!(handle(&mut nodes, 0, 2, Unblock { page }), []);
    assert_eq!(nodes[0].directory_entry(page).unwrap().owner, Some(n(2)));
}

#[test]
fn a_read_of_an_owned_page_goes_through_the_home_and_leaves_two_sharers() {
    let mut nodes = cluster(ProtocolConfig::DEFAULT);
    let page = p0();
    make_owner(&mut nodes, 1);
    request(&mut nodes, 2, R);
    assert_eq!(handle(&mut nodes, 0, 2, GetS { page }), [send(1, FwdGetS { page, requester: n(2) })]);
    // The owner downgrades *before* its copy is taken.
    assert_eq!(
        handle(&mut nodes, 1, 0, FwdGetS { page, requester: n(2) }),
        [Map { page, access: R }, send(0, FwdData { page, keep: true })]
    );
    let fill = Fill::Data;
    assert_eq!(
        handle(&mut nodes, 0, 1, FwdData { page, keep: true }),
        [FillAct { page, from: FillFrom::Message }, send(2, Grant { page, access: R, fill })]
    );
    let e = nodes[0].directory_entry(page).unwrap();
    assert_eq!((e.owner, e.sharers.len(), e.busy), (None, 2, None));
}

#[test]
fn an_upgrade_that_loses_the_race_becomes_a_write_miss() {
    let mut nodes = cluster(ProtocolConfig::DEFAULT);
    let page = p0();
    for at in [1, 2] {
        request(&mut nodes, at, R);
        let grant = handle(&mut nodes, 0, at, GetS { page });
        let Send { msg, .. } = grant[0] else { panic!() };
        handle(&mut nodes, at, 0, msg);
    }
    // Both sharers upgrade at once; node 1's reaches the home first.
    assert_eq!(request(&mut nodes, 1, W), [send(0, Upgrade { page })]);
    assert_eq!(request(&mut nodes, 2, W), [send(0, Upgrade { page })]);
    assert_eq!(handle(&mut nodes, 0, 1, Upgrade { page }), [send(2, Inv { page })]);
    // Node 2's upgrade waits at the home.
    assert_eq!(handle(&mut nodes, 0, 2, Upgrade { page }), []);
    // Node 2 is invalidated while upgrading: it will need data.
    assert_eq!(handle(&mut nodes, 2, 0, Inv { page }), [Unmap { page }, Release { page }, send(0, InvAck { page })]);
    assert_eq!(nodes[2].cache_state(page), CacheState::InvalidToModified);
    // Node 1 gets write access without data; then the queued upgrade is
    // served as a write miss: forwarded to node 1.
    assert_eq!(
        handle(&mut nodes, 0, 2, InvAck { page }),
        [send(1, Grant { page, access: W, fill: Fill::Keep }), send(1, FwdGetM { page, requester: n(2) })]
    );
    assert_eq!(
        handle(&mut nodes, 1, 0, Grant { page, access: W, fill: Fill::Keep }),
        [Map { page, access: W }, Complete { page, access: W }]
    );
    handle(&mut nodes, 1, 0, FwdGetM { page, requester: n(2) });
    assert_eq!(
        handle(&mut nodes, 2, 1, OwnerData { page })[..3],
        [FillAct { page, from: FillFrom::Message }, Map { page, access: W }, send(0, Unblock { page })]
    );
}

#[test]
fn a_forward_crossing_an_eviction_is_served_from_the_kept_frame() {
    let mut nodes = cluster(ProtocolConfig::DEFAULT);
    let page = p0();
    make_owner(&mut nodes, 1);
    // Node 1 evicts; its PutM is slow. Node 2's write miss is forwarded.
    assert_eq!(evict(&mut nodes, 1), [Unmap { page }, send(0, PutM { page })]);
    request(&mut nodes, 2, W);
    assert_eq!(handle(&mut nodes, 0, 2, GetM { page }), [send(1, FwdGetM { page, requester: n(2) })]);
    // The stale write-back is acknowledged and its data dropped.
    assert_eq!(handle(&mut nodes, 0, 1, PutM { page }), [send(1, PutAck { page })]);
    assert_eq!(
        handle(&mut nodes, 1, 0, FwdGetM { page, requester: n(2) }),
        [send(2, OwnerData { page }), Release { page }]
    );
    assert_eq!(nodes[1].cache_state(page), CacheState::ForwardedToInvalid);
    assert_eq!(handle(&mut nodes, 1, 0, PutAck { page }), []);
    assert_eq!(nodes[1].cache_state(page), CacheState::Invalid);
    handle(&mut nodes, 2, 1, OwnerData { page });
    handle(&mut nodes, 0, 2, Unblock { page });
    assert_eq!(nodes[0].directory_entry(page).unwrap().owner, Some(n(2)));
}

#[test]
fn a_read_forward_crossing_an_eviction_leaves_no_stale_sharer() {
    let mut nodes = cluster(ProtocolConfig::DEFAULT);
    let page = p0();
    make_owner(&mut nodes, 1);
    evict(&mut nodes, 1);
    request(&mut nodes, 2, R);
    handle(&mut nodes, 0, 2, GetS { page });
    assert_eq!(
        handle(&mut nodes, 1, 0, FwdGetS { page, requester: n(2) }),
        [send(0, FwdData { page, keep: false }), Release { page }]
    );
    handle(&mut nodes, 0, 1, FwdData { page, keep: false });
    let e = nodes[0].directory_entry(page).unwrap();
    assert!(!e.sharers.contains(n(1)) && e.sharers.contains(n(2)));
}

#[test]
fn the_home_as_requester_owner_and_sharer() {
    let mut nodes = cluster(ProtocolConfig::DEFAULT);
    let page = p0();
    // Home writes its own never-touched page: no message at all.
    assert_eq!(request(&mut nodes, 0, W), [Map { page, access: W }, Complete { page, access: W }]);
    // A remote read downgrades the home in place and carries data.
    request(&mut nodes, 1, R);
    assert_eq!(
        handle(&mut nodes, 0, 1, GetS { page }),
        [Map { page, access: R }, send(1, Grant { page, access: R, fill: Fill::Data })]
    );
    // The home writes again: invalidates node 1, keeps its own frame.
    assert_eq!(request(&mut nodes, 0, W), [send(1, Inv { page })]);
    handle(&mut nodes, 1, 0, Grant { page, access: R, fill: Fill::Data });
    handle(&mut nodes, 1, 0, Inv { page });
    assert_eq!(handle(&mut nodes, 0, 1, InvAck { page }), [Map { page, access: W }, Complete { page, access: W }]);
    // Node 2 takes the page; then the home reads it back from node 2.
    make_owner(&mut nodes, 2);
    assert_eq!(request(&mut nodes, 0, R), [send(2, FwdGetS { page, requester: n(0) })]);
    handle(&mut nodes, 2, 0, FwdGetS { page, requester: n(0) });
    assert_eq!(
        handle(&mut nodes, 0, 2, FwdData { page, keep: true }),
        [FillAct { page, from: FillFrom::Message }, Map { page, access: R }, Complete { page, access: R }]
    );
    assert_eq!(nodes[0].mapped(page), Some(R));
    assert_eq!(nodes[2].mapped(page), Some(R));
}

#[test]
fn requests_for_a_busy_page_queue_then_nack_when_full() {
    let config = ProtocolConfig { home_queue_capacity: 1, ..ProtocolConfig::DEFAULT };
    let homes = StripedHomes::new(5, 1, 50).unwrap();
    let mut nodes: Vec<_> = (0..5).map(|i| Node::new(n(i), homes, config)).collect();
    let page = p0();
    make_owner(&mut nodes, 1);
    request(&mut nodes, 2, W);
    // Busy: forwarded to node 1, waiting for node 2's unblock.
    assert_eq!(handle(&mut nodes, 0, 2, GetM { page }), [send(1, FwdGetM { page, requester: n(2) })]);
    // The home's own request queues without using the capacity...
    assert_eq!(request(&mut nodes, 0, R), []);
    // ...a remote one uses it...
    request(&mut nodes, 3, R);
    assert_eq!(handle(&mut nodes, 0, 3, GetS { page }), []);
    // ...and the next remote one is NACKed, and simply asks again.
    request(&mut nodes, 4, R);
    assert_eq!(handle(&mut nodes, 0, 4, GetS { page }), [send(4, Nack { page })]);
    assert_eq!(handle(&mut nodes, 4, 0, Nack { page }), [send(0, GetS { page })]);
    assert_eq!(nodes[0].counters().queue_peak, 2);
    // When the transaction ends the queue drains in order: the home's read
    // is forwarded to the new owner, node 3 waits behind it.
    handle(&mut nodes, 1, 0, FwdGetM { page, requester: n(2) });
    handle(&mut nodes, 2, 1, OwnerData { page });
    assert_eq!(handle(&mut nodes, 0, 2, Unblock { page }), [send(2, FwdGetS { page, requester: n(0) })]);
    handle(&mut nodes, 2, 0, FwdGetS { page, requester: n(0) });
    assert_eq!(
        handle(&mut nodes, 0, 2, FwdData { page, keep: true }),
        [
            FillAct { page, from: FillFrom::Message },
            Map { page, access: R },
            Complete { page, access: R },
            send(3, Grant { page, access: R, fill: Fill::Data })
        ]
    );
    assert!(nodes[0].is_idle());
}

#[test]
fn local_requests_during_a_transaction_merge_and_upgrade_after() {
    let mut nodes = cluster(ProtocolConfig::DEFAULT);
    let page = p0();
    assert_eq!(request(&mut nodes, 1, R), [send(0, GetS { page })]);
    assert_eq!(request(&mut nodes, 1, W), []);
    assert_eq!(request(&mut nodes, 1, R), []);
    handle(&mut nodes, 0, 1, GetS { page });
    let fill = Fill::Zero;
    assert_eq!(
        handle(&mut nodes, 1, 0, Grant { page, access: R, fill }),
        [
            FillAct { page, from: FillFrom::Zero },
            Map { page, access: R },
            Complete { page, access: R },
            send(0, Upgrade { page })
        ]
    );
    assert_eq!(handle(&mut nodes, 0, 1, Upgrade { page }), [send(1, Grant { page, access: W, fill: Fill::Keep })]);
}

#[test]
fn protocol_violations_are_errors_that_change_nothing() {
    let mut nodes = cluster(ProtocolConfig::DEFAULT);
    let page = p0();
    let before = nodes.clone();
    let mut out = Actions::new();
    let cases: [(u8, u8, crate::Message); 11] = [
        (1, 0, Grant { page, access: W, fill: Fill::Keep }), // no request outstanding
        (1, 0, FwdGetM { page, requester: n(2) }),           // not the owner
        (1, 0, PutAck { page }),                             // not evicting
        (1, 0, Nack { page }),                               // nothing to retry
        (0, 1, InvAck { page }),                             // no invalidation pending
        (0, 1, Unblock { page }),                            // no forward pending
        (0, 1, FwdData { page, keep: true }),                // no forward pending
        (0, 1, Inv { page }),                                // the home is never invalidated
        (1, 2, Inv { page }),                                // only the home invalidates
        (1, 0, GetS { page }),                               // requests go to the home
        (0, 0, GetS { page }),                               // no message to oneself
    ];
    for (to, from, msg) in cases {
        let err = nodes[usize::from(to)].handle(n(from), msg, &mut out);
        assert!(err.is_err(), "n{to} accepted {msg:?} from n{from}");
        assert!(out.is_empty(), "{msg:?} left actions behind");
    }
    assert_eq!(nodes, before);
    let outside = GuestPage::new(30).unwrap();
    assert_eq!(
        nodes[1].handle(n(0), Inv { page: outside }, &mut out),
        Err(ProtocolError::NotGuestRam { page: outside })
    );
    assert_eq!(nodes[0].evict(page, &mut out), Err(ProtocolError::HomeCannotEvict { page }));
    assert_eq!(nodes[1].evict(page, &mut out), Err(ProtocolError::NotCached { page }));
    request(&mut nodes, 1, R);
    assert_eq!(nodes[1].evict(page, &mut out), Err(ProtocolError::Busy { page }));
    // A remote owner asking again is refused, not re-granted.
    let mut nodes = cluster(ProtocolConfig::DEFAULT);
    make_owner(&mut nodes, 1);
    assert!(matches!(nodes[0].handle(n(1), GetM { page }, &mut out), Err(ProtocolError::Unexpected { .. })));
}

#[test]
fn without_read_replication_a_read_takes_the_page_exclusively() {
    let mut nodes = cluster(ProtocolConfig { read_replication: false, ..ProtocolConfig::DEFAULT });
    let page = p0();
    make_owner(&mut nodes, 1);
    request(&mut nodes, 2, R);
    assert_eq!(handle(&mut nodes, 0, 2, GetS { page }), [send(1, FwdGetM { page, requester: n(2) })]);
    handle(&mut nodes, 1, 0, FwdGetM { page, requester: n(2) });
    let acts = handle(&mut nodes, 2, 1, OwnerData { page });
    assert!(acts.contains(&Map { page, access: W }), "{acts:?}");
    assert!(acts.contains(&Complete { page, access: W }), "{acts:?}");
}

#[test]
fn preloaded_pages_are_never_granted_as_zero() {
    let mut nodes = cluster(ProtocolConfig::DEFAULT);
    let page = p0();
    nodes[0].note_preloaded(page).unwrap();
    assert_eq!(nodes[1].note_preloaded(page), Err(ProtocolError::NotHomedHere { page }));
    request(&mut nodes, 1, R);
    assert_eq!(handle(&mut nodes, 0, 1, GetS { page }), [send(1, Grant { page, access: R, fill: Fill::Data })]);
}

fn any_message(kind: u8, page: u64, node: u8, write: bool, fill: u8, keep: bool) -> crate::Message {
    let page = GuestPage::new(page).unwrap();
    let requester = n(node);
    let access = if write { W } else { R };
    let fill = [Fill::Data, Fill::Zero, Fill::Keep][usize::from(fill % 3)];
    match kind % 14 {
        0 => GetS { page },
        1 => GetM { page },
        2 => Upgrade { page },
        3 => PutM { page },
        4 => Grant { page, access, fill },
        5 => Nack { page },
        6 => PutAck { page },
        7 => Inv { page },
        8 => InvAck { page },
        9 => FwdGetS { page, requester },
        10 => FwdGetM { page, requester },
        11 => FwdData { page, keep },
        12 => OwnerData { page },
        _ => Unblock { page },
    }
}

proptest::proptest! {
    /// Whatever a peer sends, in whatever order, mixed with local faults
    /// and evictions: the engine never panics, and a refused input leaves
    /// the node exactly as it was, with no action appended.
    #[test]
    fn arbitrary_input_never_panics_and_refusals_change_nothing(
        steps in proptest::collection::vec(
            (0u8..3, 0u8..3, 0u8..16, 0u64..4, 0u8..3, proptest::bool::ANY, 0u8..3, proptest::bool::ANY),
            0..80,
        )
    ) {
        let mut nodes = cluster(ProtocolConfig { home_queue_capacity: 1, ..ProtocolConfig::DEFAULT });
        let mut out = Actions::new();
        for (to, from, kind, page, node, write, fill, keep) in steps {
            out.clear();
            let at = usize::from(to);
            let before = nodes[at].clone();
            let result = match kind {
                14 => nodes[at].request(GuestPage::new(page).unwrap(), if write { W } else { R }, &mut out),
                15 => nodes[at].evict(GuestPage::new(page).unwrap(), &mut out),
                _ => nodes[at].handle(n(from), any_message(kind, page, node, write, fill, keep), &mut out),
            };
            if result.is_err() {
                proptest::prop_assert!(out.is_empty());
                proptest::prop_assert_eq!(&nodes[at], &before);
            }
        }
    }
}
