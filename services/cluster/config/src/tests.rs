use crate::*;

const GOOD: &str = r#"
[cluster]
name = "t"
key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

[[node]]
id = 0
mac = "52:54:00:00:00:01"
nic = "virtio-net"
cores = 2
memory_mib = 512

[[node]]
id = 1
mac = "52:54:00:00:00:02"
nic = "e1000e"
"#;

fn err(text: &str) -> ConfigError {
    parse_cluster(text).expect_err("config should be rejected")
}

#[test]
fn shipped_configs_parse() {
    for (name, text) in [
        ("qemu-1node", include_str!("../../../../hw-configs/qemu-1node.toml")),
        ("qemu-2node", include_str!("../../../../hw-configs/qemu-2node.toml")),
        ("qemu-3node", include_str!("../../../../hw-configs/qemu-3node.toml")),
        ("qemu-4node", include_str!("../../../../hw-configs/qemu-4node.toml")),
        ("example", include_str!("../../../../hw-configs/example-2socket-server.toml")),
    ] {
        let config = parse_cluster(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!config.nodes.is_empty());
    }
    let two = parse_cluster(include_str!("../../../../hw-configs/qemu-2node.toml")).unwrap();
    assert_eq!(two.nodes.len(), 2);
    assert_eq!(two.nodes[1].mac.to_string(), "52:54:00:5e:00:01");
    assert_eq!(two.cluster.poweroff, PowerOff::Acpi);
}

#[test]
fn good_config_has_defaults() {
    let config = parse_cluster(GOOD).unwrap();
    assert_eq!(config.hypervisor.reserved_memory_mib, 64);
    assert_eq!(config.hypervisor.unbacked_mmio, crate::UnbackedMmio::Stop);
    assert_eq!(config.nodes[1].nic, NicModel::E1000e);
    assert_eq!(config.nodes[1].cores, None);
    assert!(config.qemu.is_none());
    assert_eq!(config.cluster.key.0[1], 0x11);
}

#[test]
fn unknown_key_is_named_with_its_line() {
    let text = GOOD.replace("nic = \"e1000e\"", "nic = \"e1000e\"\nspeed = 10");
    let e = err(&text);
    assert_eq!(e.key, "speed");
    assert_eq!(e.line, Some(17));
    assert!(e.problem.contains("unknown field"), "{e}");
}

#[test]
fn bad_mac_is_reported() {
    let e = err(&GOOD.replace("52:54:00:00:00:02", "52:54:00:00:02"));
    assert!(e.problem.contains("invalid MAC"), "{e}");
    assert_eq!(e.line, Some(15));
}

#[test]
fn duplicate_mac_names_both_nodes() {
    let e = err(&GOOD.replace("52:54:00:00:00:02", "52:54:00:00:00:01"));
    assert_eq!(e.key, "node[1].mac");
    assert!(e.problem.contains("node[0]"), "{e}");
}

#[test]
fn group_mac_rejected() {
    let e = err(&GOOD.replace("52:54:00:00:00:02", "01:00:5e:00:00:02"));
    assert_eq!(e.key, "node[1].mac");
}

#[test]
fn ids_must_follow_file_order() {
    let e = err(&GOOD.replace("id = 1", "id = 5"));
    assert_eq!(e.key, "node[1].id");
}

#[test]
fn short_key_rejected() {
    let e = err(&GOOD.replace("eeff\"", "ee\""));
    assert!(e.problem.contains("64 hex digits"), "{e}");
}

#[test]
fn zero_key_rejected() {
    let zero = "0".repeat(64);
    let e = err(&GOOD.replace("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", &zero));
    assert_eq!(e.key, "cluster.key");
}

#[test]
fn unknown_nic_rejected() {
    let e = err(&GOOD.replace("\"e1000e\"", "\"rtl8139\""));
    assert!(e.problem.contains("rtl8139"), "{e}");
}

#[test]
fn reservation_must_leave_guest_memory() {
    let text = GOOD.replace("[[node]]\nid = 0", "[hypervisor]\nreserved_memory_mib = 512\n\n[[node]]\nid = 0");
    let e = err(&text);
    assert_eq!(e.key, "hypervisor.reserved_memory_mib");
}

#[test]
fn qemu_section_needs_sizes() {
    let text = GOOD.replace("[[node]]\nid = 0", "[qemu]\n\n[[node]]\nid = 0");
    let e = err(&text);
    assert_eq!(e.key, "node[1].cores");
}

#[test]
fn missing_section_and_syntax_errors() {
    assert!(err("").problem.contains("missing field"));
    let e = err("[cluster\nname=");
    assert!(e.line.is_some(), "{e}");
    assert!(err("[[node]]\nid = 0\n").problem.contains("missing field"));
}

#[test]
fn guest_memory_cannot_exceed_nodes() {
    let text = GOOD
        .replace("id = 1", "id = 1\nmemory_mib = 512")
        .replace("[[node]]\nid = 0", "[guest]\nmemory_mib = 2000\n\n[[node]]\nid = 0");
    assert_eq!(err(&text).key, "guest.memory_mib");
}

#[test]
fn node_selector_checked_against_cluster() {
    let config = parse_cluster(GOOD).unwrap();
    assert_eq!(parse_node_selector("node = 1", &config).unwrap().node, 1);
    assert_eq!(parse_node_selector("node = 2", &config).unwrap_err().key, "node");
    assert!(parse_node_selector("nod = 1", &config).is_err());
}

#[test]
fn file_error_display_names_file_line_and_key() {
    let e = err(&GOOD.replace("nic = \"e1000e\"", "nic = \"e1000e\"\nspeed = 10"));
    let shown = FileError { file: "hw-configs/x.toml".into(), error: e }.to_string();
    assert!(shown.starts_with("hw-configs/x.toml:17: `speed`: unknown field"), "{shown}");
}

#[test]
fn garbage_never_panics() {
    let samples = ["\u{0}", "[[[", "key = \"", "[cluster]\nname = 3", "a.b.c = [1,2,{x=1}]"];
    for sample in samples {
        assert!(parse_cluster(sample).is_err());
    }
    for cut in 0..GOOD.len() {
        let _ = parse_cluster(&GOOD[..cut]);
    }
}

#[test]
fn service_policies_and_selftests() {
    let text = GOOD.replace(
        "[[node]]\nid = 0",
        "[service.coherence]\non_panic = \"halt\"\n\n[service.selftest-panic]\nmax_restarts = 2\n\n[debug]\nselftests = [\"ipc\", \"service-panic\"]\n\n[[node]]\nid = 0",
    );
    let config = parse_cluster(&text).unwrap();
    assert_eq!(config.service_policy("coherence").on_panic, OnPanic::Halt);
    assert_eq!(config.service_policy("selftest-panic").max_restarts, 2);
    assert_eq!(config.service_policy("selftest-panic").on_panic, OnPanic::Restart);
    assert_eq!(config.service_policy("vcpu"), ServicePolicy::default());
    assert!(config.debug.wants("ipc") && !config.debug.wants("page-fault"));

    let e = err(&GOOD.replace("[[node]]\nid = 0", "[debug]\nselftests = [\"fly\"]\n\n[[node]]\nid = 0"));
    assert_eq!(e.key, "debug.selftests[0]");
    assert!(e.problem.contains("page-fault"), "{e}");
    let e = err(&GOOD.replace("[[node]]\nid = 0", "[service.coherence]\non_panic = \"ignore\"\n\n[[node]]\nid = 0"));
    assert!(e.problem.contains("ignore"), "{e}");
}

#[test]
fn cpu_selftests_are_known_names() {
    let text = GOOD.replace(
        "[[node]]\nid = 0",
        "[debug]\nselftests = [\"page-fault\", \"page-fault-ap\", \"stack-overflow\"]\n\n[[node]]\nid = 0",
    );
    let config = parse_cluster(&text).unwrap();
    assert!(["page-fault", "page-fault-ap", "stack-overflow"].iter().all(|name| config.debug.wants(name)));
    let e =
        err(&GOOD
            .replace("[[node]]\nid = 0", "[debug]\nselftests = [\"page-fault\", \"pagefault\"]\n\n[[node]]\nid = 0"));
    assert_eq!(e.key, "debug.selftests[1]");
    assert!(e.problem.contains("stack-overflow"), "{e}");
}

#[test]
fn failure_detection_timing_is_checked() {
    let config = parse_cluster(GOOD).unwrap();
    assert_eq!((config.cluster.heartbeat_ms, config.cluster.failure_timeout_ms), (100, 1000));
    let text = GOOD.replacen("key = ", "heartbeat_ms = 400\nfailure_timeout_ms = 500\nkey = ", 1);
    let e = err(&text);
    assert_eq!(e.key, "cluster.failure_timeout_ms");
    assert!(e.problem.contains("two heartbeats"), "{e}");
}

#[test]
fn unbacked_mmio_policy_parses_and_rejects_unknown_values() {
    let text = GOOD.replace("[[node]]\nid = 0", "[hypervisor]\nunbacked_mmio = \"all-ones\"\n\n[[node]]\nid = 0");
    assert_eq!(parse_cluster(&text).unwrap().hypervisor.unbacked_mmio, crate::UnbackedMmio::AllOnes);
    let text = GOOD.replace("[[node]]\nid = 0", "[hypervisor]\nunbacked_mmio = \"ignore\"\n\n[[node]]\nid = 0");
    let e = parse_cluster(&text).unwrap_err();
    assert!(e.to_string().contains("unknown variant `ignore`, expected `stop` or `all-ones`"), "{e}");
}

#[test]
fn mgmt_ip_defaults_from_the_node_id() {
    let config = parse_cluster(GOOD).unwrap();
    assert_eq!(config.nodes[0].mgmt_ip, None);
    assert_eq!(config.nodes[0].mgmt_ip().to_string(), "10.77.0.1/24");
    assert_eq!(config.nodes[1].mgmt_ip().to_string(), "10.77.0.2/24");
    assert_eq!(NodeConfig::default_mgmt_ip(63).to_string(), "10.77.0.64/24");
}

#[test]
fn mgmt_ip_can_be_set_per_node() {
    let text = GOOD
        .replace("nic = \"virtio-net\"", "nic = \"virtio-net\"\nmgmt_ip = \"192.168.50.10/24\"")
        .replace("nic = \"e1000e\"", "nic = \"e1000e\"\nmgmt_ip = \" 192.168.50.11/24 \"");
    let config = parse_cluster(&text).unwrap();
    assert_eq!(config.nodes[0].mgmt_ip().addr, [192, 168, 50, 10]);
    assert_eq!(config.nodes[1].mgmt_ip().prefix, 24);
}

#[test]
fn bad_mgmt_ips_are_named() {
    let set = |a: &str, b: &str| {
        GOOD.replace("nic = \"virtio-net\"", &format!("nic = \"virtio-net\"\nmgmt_ip = \"{a}\""))
            .replace("nic = \"e1000e\"", &format!("nic = \"e1000e\"\nmgmt_ip = \"{b}\""))
    };
    for (text, what) in [
        ("10.77.0.1", "prefix length"),
        ("10.77.0/24", "prefix length"),
        ("10.77.0.256/24", "larger than 255"),
        ("10.77.0.1/33", "larger than 32"),
        ("10.77.0.x/24", "prefix length"),
    ] {
        let e = err(&set(text, "10.77.0.2/24"));
        assert!(e.problem.contains("invalid management address") && e.problem.contains(what), "{text}: {e}");
        assert_eq!(e.line, Some(10), "{text}: {e}");
    }
    for (a, b, key, what) in [
        ("10.77.0.1/24", "10.77.0.1/24", "node[1].mgmt_ip", "already used by node[0]"),
        ("10.77.0.1/24", "10.78.0.2/24", "node[1].mgmt_ip", "not in node[0]'s management subnet"),
        ("10.77.0.1/24", "10.77.0.2/16", "node[1].mgmt_ip", "not in node[0]'s management subnet"),
        ("10.77.0.0/24", "10.77.0.2/24", "node[0].mgmt_ip", "network or broadcast"),
        ("10.77.0.1/24", "10.77.0.255/24", "node[1].mgmt_ip", "network or broadcast"),
        ("127.0.0.2/8", "127.0.0.3/8", "node[0].mgmt_ip", "not a unicast"),
        ("224.0.0.1/24", "224.0.0.2/24", "node[0].mgmt_ip", "not a unicast"),
        ("10.77.0.1/31", "10.77.0.0/31", "node[0].mgmt_ip", "8..=30"),
    ] {
        let e = err(&set(a, b));
        assert_eq!(e.key, key, "{a} {b}: {e}");
        assert!(e.problem.contains(what), "{a} {b}: {e}");
    }
}

#[test]
fn fabric_switch_and_the_selftests_that_need_it() {
    assert!(!parse_cluster(GOOD).unwrap().cluster.fabric);
    let on = GOOD.replace("[cluster]\n", "[cluster]\nfabric = true\n");
    assert!(parse_cluster(&on).unwrap().cluster.fabric);
    let soak =
        |text: &str| text.replace("[[node]]\nid = 0", "[debug]\nselftests = [\"transport-soak\"]\n\n[[node]]\nid = 0");
    assert!(parse_cluster(&soak(&on)).unwrap().debug.wants("transport-soak"));
    let e = err(&soak(GOOD));
    assert_eq!(e.key, "debug.selftests");
    assert!(e.problem.contains("cluster.fabric = true"), "{e}");
    let ping = on.replace("[[node]]\nid = 0", "[debug]\nselftests = [\"nic-ping\"]\n\n[[node]]\nid = 0");
    assert!(err(&ping).problem.contains("cluster.fabric = false"));
}

#[test]
fn nic_bench_needs_the_fabric() {
    let bench = GOOD.replace("[[node]]\nid = 0", "[debug]\nselftests = [\"nic-bench\"]\n\n[[node]]\nid = 0");
    assert!(bench.contains("nic-bench"));
    let e = err(&bench);
    assert_eq!(e.key, "debug.selftests");
    assert!(e.problem.contains("cluster.fabric = true"), "{e}");
    let on = bench.replace("[cluster]\n", "[cluster]\nfabric = true\n");
    assert!(parse_cluster(&on).is_ok());
}
