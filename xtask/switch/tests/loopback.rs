//! End-to-end tests over real loopback UDP, with host endpoints standing in
//! for nodes (and plain sockets standing in for QEMU).
//!
//! To show that a frame did *not* reach a port without waiting on the
//! clock, a test sends a broadcast "marker" from the same ingress port right
//! after it: the switch handles one port's frames in order and loopback UDP
//! keeps order, so if the marker arrives first, the frame was never sent.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use sinter_switch::{
    build_frame, pcap, HostEndpoint, LinkFaults, MacAddr, PortId, Switch, SwitchConfig, SwitchError, SwitchHandle,
};

/// Generous: only ever reached when a test is about to fail.
const WAIT: Duration = Duration::from_secs(5);
const ETHERTYPE: u16 = 0x88b5; // IEEE local experimental

fn mac(n: u8) -> MacAddr {
    MacAddr([0x02, 0, 0, 0, 0, n])
}

fn frame(dst: MacAddr, src: MacAddr, body: &[u8]) -> Vec<u8> {
    build_frame(dst, src, ETHERTYPE, body)
}

fn recv(ep: &HostEndpoint) -> Vec<u8> {
    ep.recv_timeout(WAIT).unwrap_or_else(|| panic!("port {} received nothing", ep.port()))
}

/// Sends a broadcast marker from `from` and checks that the next frame
/// each of `quiet` receives is that marker.
fn assert_nothing_before_marker(from: &HostEndpoint, from_mac: MacAddr, quiet: &[&HostEndpoint]) {
    let marker = frame(MacAddr::BROADCAST, from_mac, b"marker");
    from.send(&marker).unwrap();
    for ep in quiet {
        assert_eq!(recv(ep), marker, "port {} got a frame before the marker", ep.port());
    }
}

/// Waits until `check` holds for `port`'s stats.
fn wait_for_stats(handle: &SwitchHandle, port: PortId, what: &str, check: impl Fn(&sinter_switch::PortStats) -> bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        let stats = handle.port_stats(port).unwrap();
        if check(&stats) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: {stats:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn three_hosts() -> (SwitchHandle, [HostEndpoint; 3]) {
    let mut switch = Switch::new();
    let a = switch.add_host_port().unwrap();
    let b = switch.add_host_port().unwrap();
    let c = switch.add_host_port().unwrap();
    (switch.start().unwrap(), [a, b, c])
}

#[test]
fn learning_sends_known_unicast_to_one_port_only() {
    let (handle, [a, b, c]) = three_hosts();
    // B is unknown yet: A's frame floods to B and C, not back to A.
    let first = frame(mac(2), mac(1), b"hello b");
    a.send(&first).unwrap();
    assert_eq!(recv(&b), first);
    assert_eq!(recv(&c), first);
    // The switch has learned A. B answers A: only A gets it.
    let reply = frame(mac(1), mac(2), b"hello a");
    b.send(&reply).unwrap();
    assert_eq!(recv(&a), reply);
    assert_nothing_before_marker(&b, mac(2), &[&c]);
    assert_eq!(recv(&a), frame(MacAddr::BROADCAST, mac(2), b"marker"));
    // Now both are known: A to B goes to B only.
    let direct = frame(mac(2), mac(1), b"direct");
    a.send(&direct).unwrap();
    assert_eq!(recv(&b), direct);
    assert_nothing_before_marker(&a, mac(1), &[&c]);
    assert_eq!(handle.mac_table(), vec![(mac(1), a.port()), (mac(2), b.port())]);
    let stats = handle.port_stats(c.port()).unwrap();
    assert_eq!(stats.tx, 3, "c got the first flood and two markers");
}

#[test]
fn broadcast_and_multicast_flood_to_all_other_ports() {
    let (handle, [a, b, c]) = three_hosts();
    let bcast = frame(MacAddr::BROADCAST, mac(1), b"to all");
    a.send(&bcast).unwrap();
    assert_eq!(recv(&b), bcast);
    assert_eq!(recv(&c), bcast);
    // Learn B's MAC, then use a multicast address: still flooded.
    b.send(&frame(MacAddr::BROADCAST, mac(2), b"i am b")).unwrap();
    assert_eq!(recv(&a).len(), 20);
    assert_eq!(recv(&c).len(), 20);
    let mcast = frame(MacAddr([0x01, 0x00, 0x5e, 0, 0, 1]), mac(3), b"group");
    c.send(&mcast).unwrap();
    assert_eq!(recv(&a), mcast);
    assert_eq!(recv(&b), mcast);
    // Nothing extra and nothing echoed: in each round every other port's
    // next frame is the marker, which also shows that the previous round's
    // sender did not get its own marker back.
    assert_nothing_before_marker(&b, mac(2), &[&a, &c]);
    assert_nothing_before_marker(&c, mac(3), &[&a, &b]);
    assert_nothing_before_marker(&a, mac(1), &[&b, &c]);
    assert_eq!(handle.port_stats(a.port()).unwrap().rx, 2);
}

#[test]
fn frames_never_go_back_out_of_their_ingress_port() {
    let (handle, [a, b, c]) = three_hosts();
    a.send(&frame(MacAddr::BROADCAST, mac(1), b"learn a")).unwrap();
    recv(&b);
    recv(&c);
    // A frame from A addressed to A itself goes nowhere.
    a.send(&frame(mac(1), mac(1), b"to myself")).unwrap();
    wait_for_stats(&handle, a.port(), "filtered", |s| s.filtered == 1);
    assert_nothing_before_marker(&a, mac(1), &[&b, &c]);
    // And A sees none of its own frames: B's marker is the first thing it gets.
    assert_nothing_before_marker(&b, mac(2), &[&a]);
}

#[test]
fn malformed_frames_are_counted_and_do_not_stop_the_switch() {
    let config = SwitchConfig { max_frame_len: 1500, ..SwitchConfig::default() };
    let mut switch = Switch::with_config(config);
    let a = switch.add_host_port().unwrap();
    let b = switch.add_host_port().unwrap();
    let handle = switch.start().unwrap();
    a.send(&[]).unwrap();
    a.send(&[0xff; 13]).unwrap();
    let mut big = frame(MacAddr::BROADCAST, mac(1), &[0u8; 1487]);
    assert_eq!(big.len(), 1501);
    a.send(&big).unwrap();
    a.send(&vec![0xffu8; 60_000]).unwrap();
    wait_for_stats(&handle, a.port(), "malformed", |s| s.dropped_malformed == 4);
    // Exactly the limit, and exactly a header, still pass.
    big.pop();
    a.send(&big).unwrap();
    assert_eq!(recv(&b), big);
    let header_only = frame(MacAddr::BROADCAST, mac(1), b"");
    a.send(&header_only).unwrap();
    assert_eq!(recv(&b), header_only);
    let stats = handle.port_stats(a.port()).unwrap();
    assert_eq!((stats.rx, stats.dropped_malformed), (6, 4));
    assert_eq!(handle.port_stats(b.port()).unwrap().tx, 2);
}

#[test]
fn default_max_frame_is_9216() {
    let mut switch = Switch::new();
    let a = switch.add_host_port().unwrap();
    let b = switch.add_host_port().unwrap();
    let handle = switch.start().unwrap();
    let jumbo = frame(MacAddr::BROADCAST, mac(1), &[7u8; 9216 - 14]);
    a.send(&jumbo).unwrap();
    assert_eq!(recv(&b), jumbo);
    a.send(&frame(MacAddr::BROADCAST, mac(1), &[7u8; 9217 - 14])).unwrap();
    wait_for_stats(&handle, a.port(), "malformed", |s| s.dropped_malformed == 1);
    assert_nothing_before_marker(&a, mac(1), &[&b]);
}

#[test]
fn a_cut_port_sends_and_receives_nothing() {
    let (handle, [a, b, c]) = three_hosts();
    handle.set_cut(c.port(), true).unwrap();
    assert!(handle.faults(c.port()).unwrap().cut);
    // To C: dropped.
    for i in 0..5u8 {
        a.send(&frame(MacAddr::BROADCAST, mac(1), &[i])).unwrap();
        assert_eq!(recv(&b), frame(MacAddr::BROADCAST, mac(1), &[i]));
    }
    // From C: dropped on ingress.
    for i in 0..3u8 {
        c.send(&frame(MacAddr::BROADCAST, mac(3), &[i])).unwrap();
    }
    wait_for_stats(&handle, c.port(), "cut", |s| s.dropped_cut == 8);
    // B's marker floods to A, and to C where the cut drops it too.
    assert_nothing_before_marker(&b, mac(2), &[&a]);
    wait_for_stats(&handle, c.port(), "cut", |s| s.dropped_cut == 9);
    // Restored: traffic flows again, and nothing from the cut time leaks.
    handle.set_cut(c.port(), false).unwrap();
    let after = frame(MacAddr::BROADCAST, mac(1), b"back");
    a.send(&after).unwrap();
    assert_eq!(recv(&c), after);
    let stats = handle.port_stats(c.port()).unwrap();
    assert_eq!((stats.rx, stats.tx, stats.dropped_cut), (3, 1, 9));
}

#[test]
fn fault_changes_take_effect_at_runtime() {
    let mut switch = Switch::new();
    let a = switch.add_host_port().unwrap();
    let b = switch.add_host_port().unwrap();
    let handle = switch.start().unwrap();
    b.send(&frame(MacAddr::BROADCAST, mac(2), b"learn b")).unwrap();
    recv(&a);

    // drop=100: nothing arrives.
    handle.set_faults_spec(b.port(), "drop=100").unwrap();
    for i in 0..20u8 {
        a.send(&frame(mac(2), mac(1), &[i])).unwrap();
    }
    wait_for_stats(&handle, b.port(), "dropped", |s| s.dropped_fault == 20);

    // dup=100: everything arrives twice.
    handle.set_faults_spec(b.port(), "dup=100").unwrap();
    for i in 0..5u8 {
        let f = frame(mac(2), mac(1), &[i]);
        a.send(&f).unwrap();
        assert_eq!(recv(&b), f);
        assert_eq!(recv(&b), f);
    }

    // reorder=50 with a long hold: every pair swaps, deterministically.
    handle.set_faults_spec(b.port(), "reorder=50,hold=10s").unwrap();
    for i in 0..6u8 {
        a.send(&frame(mac(2), mac(1), &[i])).unwrap();
    }
    let order: Vec<u8> = (0..6).map(|_| recv(&b)[14]).collect();
    assert_eq!(order, [1, 0, 3, 2, 5, 4]);

    // delay=150ms: never early (a lower bound; no upper bound is asserted).
    handle.set_faults_spec(b.port(), "delay=150ms").unwrap();
    let sent = Instant::now();
    a.send(&frame(mac(2), mac(1), b"late")).unwrap();
    assert_eq!(&recv(&b)[14..], b"late");
    assert!(sent.elapsed() >= Duration::from_millis(150));

    // Back to a perfect link.
    handle.set_faults(b.port(), LinkFaults::NONE).unwrap();
    let f = frame(mac(2), mac(1), b"clean");
    a.send(&f).unwrap();
    assert_eq!(recv(&b), f);
    assert_nothing_before_marker(&a, mac(1), &[&b]);

    let stats = handle.port_stats(b.port()).unwrap();
    assert_eq!(stats.dropped_fault, 20);
    assert_eq!(stats.duplicated, 5);
    assert_eq!(stats.reordered, 3);
    assert_eq!(stats.delayed, 1);
    assert_eq!(stats.tx, 10 + 6 + 1 + 1 + 1);
    assert_eq!(handle.faults(b.port()).unwrap(), LinkFaults::NONE);
}

#[test]
fn bad_fault_settings_are_rejected() {
    let (handle, [a, _b, _c]) = three_hosts();
    let err = handle.set_faults_spec(a.port(), "drop=lots").unwrap_err();
    assert!(matches!(err, SwitchError::Faults { .. }), "{err}");
    let too_much = LinkFaults { reorder: sinter_switch::Percent::new(80.0).unwrap(), ..LinkFaults::NONE };
    assert!(handle.set_faults(a.port(), too_much).is_err());
    // A port id from a bigger switch is not a port of this one.
    let mut bigger = Switch::new();
    let mut last = None;
    for _ in 0..4 {
        last = Some(bigger.add_qemu_port(None).unwrap());
    }
    let foreign = last.unwrap();
    assert!(matches!(
        handle.set_cut(foreign, true),
        Err(SwitchError::UnknownPort(p)) if p == foreign
    ));
    assert!(handle.port_stats(foreign).is_err());
    assert_eq!(handle.switch_addr(foreign), None);
    assert_eq!(handle.faults(a.port()).unwrap(), LinkFaults::NONE);
}

#[test]
fn qemu_port_with_a_given_peer() {
    // A plain socket plays QEMU's `-netdev dgram` end.
    let node = UdpSocket::bind("127.0.0.1:0").unwrap();
    node.set_read_timeout(Some(WAIT)).unwrap();
    let mut switch = Switch::new();
    let port = switch.add_qemu_port(Some(node.local_addr().unwrap())).unwrap();
    let switch_addr = switch.switch_addr(port).unwrap();
    let probe = switch.add_host_port().unwrap();
    let handle = switch.start().unwrap();
    assert_eq!(handle.switch_addr(port), Some(switch_addr));

    // Frames reach the node before it ever sends anything.
    let to_node = frame(MacAddr::BROADCAST, mac(9), b"to node");
    probe.send(&to_node).unwrap();
    let mut buf = [0u8; 2048];
    let (len, from) = node.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..len], from), (&to_node[..], switch_addr));

    // And the node's frames reach the probe.
    let from_node = frame(mac(9), mac(1), b"from node");
    node.send_to(&from_node, switch_addr).unwrap();
    assert_eq!(recv(&probe), from_node);

    // A stranger's datagram on the node's port is dropped.
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    stranger.send_to(&frame(MacAddr::BROADCAST, mac(66), b"x"), switch_addr).unwrap();
    wait_for_stats(&handle, port, "foreign", |s| s.dropped_foreign == 1);
    let again = frame(mac(9), mac(1), b"again");
    node.send_to(&again, switch_addr).unwrap();
    assert_eq!(recv(&probe), again, "the stranger's frame got through");
    assert_eq!(handle.peer_addr(port), Some(node.local_addr().unwrap()));
}

#[test]
fn qemu_port_learns_its_peer_from_the_first_datagram() {
    let mut switch = Switch::new();
    let port = switch.add_qemu_port(None).unwrap();
    let probe = switch.add_host_port().unwrap();
    let handle = switch.start().unwrap();
    let switch_addr = handle.switch_addr(port).unwrap();
    assert_eq!(handle.peer_addr(port), None);

    // Unknown peer: frames for it are dropped and counted.
    probe.send(&frame(MacAddr::BROADCAST, mac(9), b"lost")).unwrap();
    wait_for_stats(&handle, port, "no peer", |s| s.dropped_no_peer == 1);

    let node = UdpSocket::bind("127.0.0.1:0").unwrap();
    node.set_read_timeout(Some(WAIT)).unwrap();
    let hello = frame(MacAddr::BROADCAST, mac(1), b"hello");
    node.send_to(&hello, switch_addr).unwrap();
    assert_eq!(recv(&probe), hello);
    assert_eq!(handle.peer_addr(port), Some(node.local_addr().unwrap()));

    let reply = frame(mac(1), mac(9), b"reply");
    probe.send(&reply).unwrap();
    let mut buf = [0u8; 2048];
    let (len, _) = node.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..len], &reply[..]);
}

#[test]
fn peers_off_loopback_are_refused() {
    let mut switch = Switch::new();
    for addr in ["10.0.0.1:9", "0.0.0.0:9", "[::1]:9", "192.168.1.1:9"] {
        let addr: SocketAddr = addr.parse().unwrap();
        assert!(matches!(switch.add_qemu_port(Some(addr)), Err(SwitchError::NotLoopback(a)) if a == addr), "{addr}");
    }
    assert!(switch.add_qemu_port(Some("127.0.0.2:9".parse().unwrap())).is_ok());
}

#[test]
fn shutdown_joins_every_thread_promptly() {
    let mut switch = Switch::new();
    let a = switch.add_host_port().unwrap();
    let b = switch.add_host_port().unwrap();
    let _unlearned = switch.add_qemu_port(None).unwrap();
    let handle = switch.start().unwrap();
    // Leave a delayed frame in a queue: shutdown must not wait for it.
    handle.set_faults_spec(b.port(), "delay=30s").unwrap();
    a.send(&frame(MacAddr::BROADCAST, mac(1), b"never")).unwrap();
    wait_for_stats(&handle, b.port(), "delayed", |s| s.delayed == 1);

    let clone = handle.clone();
    let started = Instant::now();
    let report = clone.shutdown();
    assert_eq!(report.joined, 3 + 1, "one receiver per port and the timer");
    assert_eq!(report.panicked, 0);
    assert!(started.elapsed() < WAIT);
    assert!(!handle.is_running());
    assert_eq!(handle.shutdown().joined, 0, "second shutdown is a no-op");
    let switch_addr = a.switch_addr();
    drop(clone);
    drop(handle);
    // Every socket was closed, so every thread let go of it.
    UdpSocket::bind(switch_addr).expect("switch port still bound after drop");
}

#[test]
fn dropping_the_last_handle_stops_the_switch() {
    let mut switch = Switch::new();
    let a = switch.add_host_port().unwrap();
    let handle = switch.start().unwrap();
    let clone = handle.clone();
    drop(handle);
    assert!(clone.is_running(), "a clone keeps it running");
    let switch_addr = a.switch_addr();
    let started = Instant::now();
    drop(clone);
    assert!(started.elapsed() < WAIT);
    UdpSocket::bind(switch_addr).expect("switch port still bound after drop");
}

#[test]
fn pcap_capture_records_both_directions() {
    let dir = std::env::temp_dir().join(format!("sinter-switch-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("port-b.pcap");
    let (handle, [a, b, _c]) = three_hosts();
    handle.capture_to(b.port(), &path).unwrap();
    let inbound = frame(MacAddr::BROADCAST, mac(1), b"to b");
    a.send(&inbound).unwrap();
    assert_eq!(recv(&b), inbound);
    let outbound = frame(mac(1), mac(2), b"from b");
    b.send(&outbound).unwrap();
    assert_eq!(recv(&a), outbound);
    handle.stop_capture(b.port()).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let frames = pcap::read_frames(&bytes).unwrap();
    assert_eq!(frames, vec![inbound, outbound]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(handle.capture_to(b.port(), &dir.join("missing-dir").join("x.pcap")).is_err());
}

#[test]
fn stats_table_lists_every_port() {
    let (handle, [a, b, c]) = three_hosts();
    a.send(&frame(MacAddr::BROADCAST, mac(1), b"x")).unwrap();
    recv(&b);
    recv(&c);
    let table = handle.stats();
    assert_eq!(table.0.len(), 3);
    let text = table.to_string();
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(text.contains(&a.local_addr().to_string()), "{text}");
    assert_eq!(handle.ports(), vec![a.port(), b.port(), c.port()]);
}

#[test]
fn same_seed_same_faults_end_to_end() {
    fn survivors(seed: u64) -> Vec<u8> {
        let mut switch = Switch::with_config(SwitchConfig { seed, ..SwitchConfig::default() });
        let a = switch.add_host_port().unwrap();
        let b = switch.add_host_port().unwrap();
        let handle = switch.start().unwrap();
        handle.set_faults_spec(b.port(), "drop=30").unwrap();
        for i in 0..100u8 {
            a.send(&frame(MacAddr::BROADCAST, mac(1), &[i])).unwrap();
        }
        // Let the switch decide all 100 before the faults change.
        wait_for_stats(&handle, b.port(), "decided", |s| s.tx + s.dropped_fault == 100);
        handle.set_faults(b.port(), LinkFaults::NONE).unwrap();
        let end = frame(MacAddr::BROADCAST, mac(1), b"end");
        a.send(&end).unwrap();
        let mut got = Vec::new();
        loop {
            let f = recv(&b);
            if f == end {
                return got;
            }
            got.push(f[14]);
        }
    }
    let first = survivors(7);
    assert_eq!(first, survivors(7));
    assert!(first.len() > 50 && first.len() < 90, "{}", first.len());
    assert_ne!(first, survivors(8));
}

#[test]
fn a_remote_host_port_serves_a_socket_bound_after_the_switch_started() {
    let reserved = UdpSocket::bind("127.0.0.1:0").unwrap();
    let peer = reserved.local_addr().unwrap();
    drop(reserved);
    let mut switch = Switch::new();
    let a = switch.add_host_port().unwrap();
    let remote = switch.add_remote_host_port(peer).unwrap();
    let switch_addr = switch.switch_addr(remote).unwrap();
    assert!(matches!(switch.add_remote_host_port("10.0.0.1:9".parse().unwrap()), Err(SwitchError::NotLoopback(_))));
    let handle = switch.start().unwrap();
    // Frames flooded before anyone listens are simply lost.
    a.send(&frame(MacAddr::BROADCAST, mac(1), b"early")).unwrap();
    wait_for_stats(&handle, remote, "early flood attempted", |s| s.tx + s.errors >= 1);
    // Another "process" binds the agreed address and talks through the port.
    let late = UdpSocket::bind(peer).unwrap();
    late.set_read_timeout(Some(WAIT)).unwrap();
    late.send_to(&frame(mac(1), mac(9), b"from the late host"), switch_addr).unwrap();
    assert_eq!(recv(&a), frame(mac(1), mac(9), b"from the late host"));
    a.send(&frame(mac(9), mac(1), b"reply")).unwrap();
    let mut buf = [0u8; 2048];
    let (len, from) = late.recv_from(&mut buf).unwrap();
    assert_eq!(from, switch_addr);
    assert_eq!(&buf[..len], frame(mac(9), mac(1), b"reply").as_slice());
    handle.shutdown();
}

#[test]
fn a_port_without_learning_cannot_steal_an_address() {
    let (handle, [a, b, spoofer]) = three_hosts();
    handle.set_learning(spoofer.port(), false).unwrap();
    // A and B are learned.
    a.send(&frame(mac(2), mac(1), b"a to b")).unwrap();
    assert_eq!(recv(&b), frame(mac(2), mac(1), b"a to b"));
    assert_eq!(recv(&spoofer), frame(mac(2), mac(1), b"a to b"));
    b.send(&frame(mac(1), mac(2), b"b to a")).unwrap();
    assert_eq!(recv(&a), frame(mac(1), mac(2), b"b to a"));
    // The spoofer sends as A; B still gets it, but A keeps its entry.
    spoofer.send(&frame(mac(2), mac(1), b"forged")).unwrap();
    assert_eq!(recv(&b), frame(mac(2), mac(1), b"forged"));
    assert!(handle.mac_table().contains(&(mac(1), a.port())), "{:?}", handle.mac_table());
    b.send(&frame(mac(1), mac(2), b"still to a")).unwrap();
    assert_eq!(recv(&a), frame(mac(1), mac(2), b"still to a"));
    assert_nothing_before_marker(&b, mac(2), &[&spoofer]);
    handle.shutdown();
}
