//! The harness switch carries frames between QEMU nodes. Until the NIC
//! driver exists, QEMU's own network backend is the probe: QEMU emits RARP
//! frames for node 0's NIC on the QMP command `announce-self`, a host
//! endpoint injects a unicast frame, and each node's `filter-dump` records
//! the frames that pass its netdev. Nodes start paused (`-S`) and run only
//! for the moment the probe needs (announce-self runs on the guest clock),
//! well before OVMF could boot them.

use std::time::{Duration, Instant};

use sinter_switch::ethernet::{build_frame, frame_macs, MacAddr};
use sinter_switch::pcap::read_frames;
use sinter_system_tests::hw_config;
use xtask::cluster::{Cluster, ClusterOptions};

const ETHERTYPE_RARP: u16 = 0x8035;
/// IEEE 802 "local experimental" EtherType for the probe frame.
const ETHERTYPE_PROBE: u16 = 0x88b5;

fn ethertype(frame: &[u8]) -> u16 {
    u16::from_be_bytes([frame[12], frame[13]])
}

#[test]
fn switch_forwards_frames_between_qemu_nodes() {
    let mut options = ClusterOptions::new(hw_config("qemu-2node.toml"));
    options.host_ports = 1;
    options.extra_qemu_args =
        ["-S", "-object", "filter-dump,id=dump0,netdev=net0,file={run_dir}/node{node}.pcap"].map(String::from).to_vec();
    let mut cluster = Cluster::launch(&options).expect("cluster launches");
    let config = cluster.config.config.clone();
    let mac0 = MacAddr(config.nodes[0].mac.0);

    // QMP comes up a moment after QEMU starts.
    let deadline = Instant::now() + Duration::from_secs(60);
    while cluster.qmp(0, r#"{"execute":"query-status"}"#).is_err()
        || cluster.qmp(1, r#"{"execute":"query-status"}"#).is_err()
    {
        assert!(Instant::now() < deadline, "QMP never came up");
        std::thread::sleep(Duration::from_millis(200));
    }

    for node in 0..2 {
        let reply = cluster.qmp(node, r#"{"execute":"cont"}"#).unwrap();
        assert!(reply.contains("\"return\""), "cont: {reply}");
    }
    // Node 0's QEMU sends RARP announcements from its NIC's MAC.
    let reply = cluster
        .qmp(0, r#"{"execute":"announce-self","arguments":{"initial":50,"max":100,"rounds":2,"step":50}}"#)
        .unwrap();
    assert!(reply.contains("\"return\""), "announce-self: {reply}");

    // They are broadcast, so the host endpoint sees them too.
    let host = &cluster.host_ports[0];
    let mut seen_from_node0 = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen_from_node0.is_none() && Instant::now() < deadline {
        if let Some(frame) = host.recv_timeout(Duration::from_millis(500)) {
            if frame_macs(&frame).map(|(_, src)| src) == Some(mac0) && ethertype(&frame) == ETHERTYPE_RARP {
                seen_from_node0 = Some(frame);
            }
        }
    }
    assert!(seen_from_node0.is_some(), "no RARP from node 0 reached the host port");

    // A unicast probe from the host to node 0 (node 1 has already received
    // its first frame, the RARP; a paused NIC takes no more).
    let probe = build_frame(mac0, MacAddr([0x02, 0, 0, 0, 0, 0x99]), ETHERTYPE_PROBE, b"sinter switch probe");
    host.send(&probe).unwrap();
    std::thread::sleep(Duration::from_secs(1));

    // The switch learned node 0's MAC on node 0's port.
    let node0_port = cluster.nodes[0].switch_port;
    assert!(cluster.switch.mac_table().contains(&(mac0, node0_port)), "{:?}", cluster.switch.mac_table());
    let stats0 = cluster.switch.port_stats(cluster.nodes[0].switch_port).unwrap();
    let stats1 = cluster.switch.port_stats(cluster.nodes[1].switch_port).unwrap();
    for node in 0..2 {
        let _ = cluster.qmp(node, r#"{"execute":"stop"}"#);
        let _ = cluster.qmp(node, r#"{"execute":"quit"}"#);
    }
    cluster.wait(Duration::from_secs(30), &|| false);

    let rx1 = read_frames(&std::fs::read(cluster.run_dir.join("node1.pcap")).expect("node 1 pcap"))
        .expect("node 1 pcap parses");
    assert!(
        rx1.iter().any(|f| frame_macs(f) == Some((MacAddr::BROADCAST, mac0)) && ethertype(f) == ETHERTYPE_RARP),
        "node 1's NIC never received node 0's RARP; it got {} frame(s)",
        rx1.len()
    );
    let rx0 = read_frames(&std::fs::read(cluster.run_dir.join("node0.pcap")).expect("node 0 pcap"))
        .expect("node 0 pcap parses");
    assert!(
        rx0.iter().any(|f| f.as_slice() == probe.as_slice()),
        "node 0's NIC never received the host's probe; it got {} frame(s)",
        rx0.len()
    );
    // Node 0 sent; node 1 was sent at least the RARP; no frame went back to node 0's RARP source.
    assert!(stats0.rx >= 1, "{stats0:?}");
    assert!(stats1.tx >= 1, "{stats1:?}");
}
