//! Simulated clusters under loss, duplication, reordering, delay and cuts.
//!
//! A failing run prints its seed; `SINTER_SIM_SEED=<seed>` reruns only
//! that seed (decimal or 0x-hex) in every test here.

use std::time::Instant;

use super::*;

fn seeds(default: &[u64]) -> Vec<u64> {
    match std::env::var("SINTER_SIM_SEED") {
        Ok(s) => {
            let s = s.trim();
            let seed = match s.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => s.parse(),
            };
            vec![seed.expect("SINTER_SIM_SEED must be a number")]
        }
        Err(_) => default.to_vec(),
    }
}

fn run_ok(cfg: &SimConfig) -> SimReport {
    let started = Instant::now();
    match run(cfg) {
        Ok(report) => {
            eprintln!(
                "seed {:#x}: {} nodes, {} messages ({} bytes) exactly once in order; {} frames offered, {} dropped, {} cut, {} duplicated, {} reordered; {} retransmitted ({} fast), {} dup suppressed; virtual {:.3} s, host {:.2?}",
                cfg.seed,
                cfg.nodes,
                report.messages,
                report.bytes_delivered,
                report.wire.frames_offered,
                report.wire.dropped,
                report.wire.cut,
                report.wire.duplicated,
                report.wire.reordered,
                report.totals.retransmitted,
                report.totals.fast_retransmits,
                report.totals.dup_suppressed,
                report.virtual_ns as f64 / 1e9,
                started.elapsed()
            );
            report
        }
        Err(failure) => panic!("{failure}\nconfig: {cfg:#?}"),
    }
}

#[test]
fn perfect_network_delivers_everything_without_retransmission() {
    let mut cfg = SimConfig::lossy(1, 3, 50_000);
    cfg.faults = Faults::none(20_000);
    let report = run_ok(&cfg);
    assert_eq!(report.messages, 50_000);
    assert_eq!(report.totals.retransmitted, 0, "no loss, no retransmission: {:?}", report.totals);
    assert_eq!(report.totals.dup_suppressed, 0);
}

#[test]
fn lossy_duplicating_reordering_network_delivers_exactly_once_in_order() {
    for seed in seeds(&[0x1, 0x2, 0x3]) {
        let report = run_ok(&SimConfig::lossy(seed, 4, 200_000));
        assert_eq!(report.messages, 200_000);
        assert!(report.wire.dropped > 0 && report.wire.duplicated > 0 && report.wire.reordered > 0);
        assert!(report.totals.retransmitted > 0 && report.totals.dup_suppressed > 0);
    }
}

#[test]
fn heavy_loss_ten_percent_still_delivers_everything() {
    for seed in seeds(&[0x10]) {
        let mut cfg = SimConfig::lossy(seed, 3, 50_000);
        cfg.faults.drop_ppm = 100_000;
        cfg.faults.duplicate_ppm = 50_000;
        cfg.faults.reorder_ppm = 200_000;
        let report = run_ok(&cfg);
        assert!(report.totals.timeouts > 0);
    }
}

#[test]
fn partitioned_node_catches_up_after_the_cut_heals() {
    for seed in seeds(&[0x20, 0x21]) {
        let mut cfg = SimConfig::lossy(seed, 4, 100_000);
        // Node 2 is cut off for 50 ms early on, node 0 for 20 ms meanwhile.
        cfg.faults.cuts = vec![
            Cut { node: 2, from_ns: 2_000_000, until_ns: 52_000_000 },
            Cut { node: 0, from_ns: 25_000_000, until_ns: 45_000_000 },
        ];
        let report = run_ok(&cfg);
        assert!(report.wire.cut > 0, "the cut must have bitten");
        assert!(report.totals.timeouts > 0);
    }
}

#[test]
fn jumbo_frames_carry_a_page_in_one_frame() {
    for seed in seeds(&[0x30]) {
        let mut cfg = SimConfig::lossy(seed, 3, 100_000);
        cfg.mtu = 9000;
        cfg.max_message_len = 64 * 1024;
        let report = run_ok(&cfg);
        assert_eq!(report.messages, 100_000);
    }
}

#[test]
fn slow_reader_closes_the_window_and_nothing_is_lost() {
    for seed in seeds(&[0x40]) {
        let mut cfg = SimConfig::lossy(seed, 3, 20_000);
        // Readers take one message per 10 µs tick; senders offer 4.
        cfg.reader_budget = Some(1);
        cfg.window = 16;
        let report = run_ok(&cfg);
        assert!(report.backpressure > 0, "senders must have been pushed back");
    }
}

#[test]
fn same_seed_same_run() {
    let cfg = SimConfig::lossy(0x50, 3, 5_000);
    let a = run(&cfg).unwrap();
    let b = run(&cfg).unwrap();
    assert_eq!(a.virtual_ns, b.virtual_ns);
    assert_eq!(a.totals, b.totals);
    assert_eq!(a.wire.frames_offered, b.wire.frames_offered);
}

/// The long run: `cargo test --release -p sinter-transport-protocol -- --ignored soak`.
/// Ten million messages over 5 nodes on a hostile segment, plus cuts.
#[test]
#[ignore = "soak: minutes in release mode"]
fn soak_ten_million_messages() {
    let start = seeds(&[0x5_0a4])[0];
    for round in 0..10u64 {
        let mut cfg = SimConfig::lossy(start + round, 5, 1_000_000);
        cfg.faults.drop_ppm = 30_000;
        cfg.faults.duplicate_ppm = 20_000;
        cfg.faults.reorder_ppm = 100_000;
        cfg.faults.cuts = vec![Cut { node: (round % 5) as usize, from_ns: 100_000_000, until_ns: 160_000_000 }];
        if round % 2 == 1 {
            cfg.mtu = 9000;
            cfg.max_message_len = 64 * 1024;
        }
        run_ok(&cfg);
    }
}
