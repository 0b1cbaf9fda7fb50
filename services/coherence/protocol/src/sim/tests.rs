extern crate std;

use std::println;
use std::time::Instant;

use super::*;
use crate::Mutation;

fn assert_runs_clean(config: &SimConfig) -> SimReport {
    match run(config) {
        Ok(report) => report,
        Err(f) => panic!(
            "seed {:#x} failed at step {}: {:?} (rerun with this seed to reproduce)",
            f.seed, f.step, f.violation
        ),
    }
}

/// The acceptance run: 4 nodes × 64 pages, 3 vCPUs per node, more than a
/// million accesses over several seeds.
#[test]
fn a_million_random_accesses_keep_every_invariant() {
    let started = Instant::now();
    let seeds = [0x51_7e12, 0xdead_beef, 7, 0x1234_5678_9abc, 99, 2024, 31337, 0xc0ffee];
    let mut total = SimReport::default();
    for seed in seeds {
        let r = assert_runs_clean(&SimConfig::standard(seed, 130_000));
        total.reads += r.reads;
        total.writes += r.writes;
        total.messages += r.messages;
        total.page_messages += r.page_messages;
        total.faults += r.faults;
        total.evictions += r.evictions;
        total.steps += r.steps;
    }
    let ops = total.reads + total.writes;
    println!(
        "simulated {ops} accesses ({} reads, {} writes, {} faults, {} evictions), \
         {} messages ({} with a page), {} steps, {} seeds, 4 nodes x 64 pages, in {:.1?}",
        total.reads,
        total.writes,
        total.faults,
        total.evictions,
        total.messages,
        total.page_messages,
        total.steps,
        seeds.len(),
        started.elapsed()
    );
    assert!(ops >= 1_000_000, "only {ops} accesses");
    assert!(total.faults > ops / 20, "too few faults to exercise the protocol");
    assert!(total.evictions > 1000);
}

/// Feature switches and a tiny home queue (NACK path) on more seeds.
#[test]
fn every_configuration_keeps_every_invariant() {
    for seed in 0..6u64 {
        for (replication, zero, queue) in [(false, true, 256), (true, false, 256), (false, false, 1), (true, true, 0)] {
            let mut config = SimConfig::standard(seed, 20_000);
            config.protocol.read_replication = replication;
            config.protocol.zero_pages = zero;
            config.protocol.home_queue_capacity = queue;
            config.nodes = 3 + (seed % 3) as u8;
            config.pages = 8;
            config.hot_percent = 60;
            assert_runs_clean(&config);
        }
    }
}

#[test]
fn a_seed_reproduces_exactly() {
    let config = SimConfig::standard(77, 5_000);
    assert_eq!(run(&config), run(&config));
    let other = SimConfig::standard(78, 5_000);
    assert_ne!(run(&config), run(&other));
}

#[test]
fn the_simulator_catches_a_skipped_invalidation() {
    let mut caught = 0;
    for seed in 0..4 {
        let mut config = SimConfig::standard(seed, 50_000);
        config.protocol.mutation = Mutation::SkipOneInvalidate;
        let failure = run(&config).expect_err("a skipped invalidation went unnoticed");
        // The skipped sharer keeps its mapping while another node writes.
        assert!(
            matches!(
                failure.violation,
                Violation::Swmr { .. } | Violation::StaleRead { .. } | Violation::StaleMapping { .. }
            ),
            "{failure:?}"
        );
        // And the failure reproduces exactly from its seed.
        assert_eq!(run(&config), Err(failure));
        caught += 1;
    }
    println!("mutation SkipOneInvalidate caught by the simulator on {caught}/4 seeds");
}

#[test]
#[ignore = "soak: 100 million accesses, about two minutes; run with --ignored"]
fn soak_many_seeds() {
    for seed in 1000..1200u64 {
        let mut config = SimConfig::standard(seed, 500_000);
        config.protocol.read_replication = seed % 4 != 0;
        config.protocol.zero_pages = seed % 3 != 0;
        config.protocol.home_queue_capacity = [0, 1, 4, 256][(seed % 4) as usize];
        config.nodes = 2 + (seed % 7) as u8;
        assert_runs_clean(&config);
    }
}
