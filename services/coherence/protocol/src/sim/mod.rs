//! Deterministic cluster simulator: N nodes × P pages, several vCPUs per
//! node doing random reads and writes, random interleaving of every
//! channel, random evictions, all from one seed. The invariants are checked
//! at every step by [`Cluster`]; a failing seed fails the same way every
//! time it is run.

mod cluster;
mod rng;

pub use cluster::{Choice, Cluster, ClusterShape, Effect, Packet, Vcpu, VcpuState, Violation, POISON};
pub use rng::SplitMix64;

use alloc::vec::Vec;

use crate::{Access, ProtocolConfig};

/// One simulation run.
#[derive(Clone, Copy, Debug)]
pub struct SimConfig {
    /// The seed: everything random derives from it.
    pub seed: u64,
    /// Nodes (2..=64).
    pub nodes: u8,
    /// Pages, homed round-robin.
    pub pages: u32,
    /// vCPUs per node.
    pub vcpus_per_node: u8,
    /// Accesses in total (spread over the vCPUs).
    pub ops: u64,
    /// Share of writes among accesses, in percent.
    pub write_percent: u32,
    /// Chance of an eviction attempt per step, in per mille.
    pub evict_per_mille: u32,
    /// Share of accesses going to the first 4 pages (contention), in percent.
    pub hot_percent: u32,
    /// Protocol configuration of every node.
    pub protocol: ProtocolConfig,
}

impl SimConfig {
    /// A 4-node, 64-page, 3-vCPU-per-node run of `ops` accesses.
    pub fn standard(seed: u64, ops: u64) -> Self {
        Self {
            seed,
            nodes: 4,
            pages: 64,
            vcpus_per_node: 3,
            ops,
            write_percent: 35,
            evict_per_mille: 20,
            hot_percent: 30,
            protocol: ProtocolConfig::DEFAULT,
        }
    }
}

/// What a successful run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimReport {
    /// Steps taken.
    pub steps: u64,
    /// Reads performed (each checked against the latest write).
    pub reads: u64,
    /// Writes performed.
    pub writes: u64,
    /// Faults that went to the protocol.
    pub faults: u64,
    /// Messages delivered.
    pub messages: u64,
    /// Of which carried a page.
    pub page_messages: u64,
    /// Evictions done.
    pub evictions: u64,
}

/// A failed run: enough to reproduce it (`seed`) and find it (`step`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimFailure {
    /// The run's seed.
    pub seed: u64,
    /// The step at which the violation was seen.
    pub step: u64,
    /// What broke.
    pub violation: Violation,
}

/// Runs one simulation to completion (every access done, network drained,
/// every engine idle) or to the first violation.
pub fn run(config: &SimConfig) -> Result<SimReport, SimFailure> {
    let vcpus = u64::from(config.nodes) * u64::from(config.vcpus_per_node);
    let shape = ClusterShape {
        nodes: config.nodes,
        pages: config.pages,
        vcpus_per_node: config.vcpus_per_node,
        ops_per_vcpu: config.ops.div_ceil(vcpus.max(1)) as u32,
        evictions: u32::MAX,
        protocol: config.protocol,
    };
    let mut cluster = Cluster::new(shape);
    let mut rng = SplitMix64::new(config.seed);
    // Each run leans differently between delivering and executing, so that
    // seeds cover both deep queues and quick round trips.
    let deliver_percent = 25 + rng.below(50) as u32;
    let mut report = SimReport::default();
    let mut runnable: Vec<u16> = Vec::with_capacity(vcpus as usize);
    let fail = |step, violation| SimFailure { seed: config.seed, step, violation };
    loop {
        let step = report.steps;
        report.steps += 1;
        runnable.clear();
        for (i, v) in cluster.vcpus().iter().enumerate() {
            let ready = matches!(v.state, VcpuState::Ready { .. });
            if ready || (v.state == VcpuState::Idle && v.ops_left > 0) {
                runnable.push(i as u16);
            }
        }
        let can_deliver = cluster.in_flight() > 0;
        if !can_deliver && runnable.is_empty() {
            cluster.check_quiescent().map_err(|v| fail(step, v))?;
            return Ok(report);
        }
        let choice = if rng.below(1000) < u64::from(config.evict_per_mille) {
            Choice::Evict {
                node: rng.below(u64::from(config.nodes)) as u8,
                page: rng.below(u64::from(config.pages)) as u32,
            }
        } else if can_deliver && (runnable.is_empty() || rng.below(100) < u64::from(deliver_percent)) {
            let k = rng.below(cluster.busy_channels() as u64) as usize;
            cluster.nth_busy_channel(k).expect("k is below the number of busy channels")
        } else {
            let vcpu = runnable[rng.below(runnable.len() as u64) as usize];
            match cluster.vcpus()[usize::from(vcpu)].state {
                VcpuState::Ready { .. } => Choice::Retry { vcpu },
                _ => {
                    let hot = config.pages.min(4);
                    let page = if rng.below(100) < u64::from(config.hot_percent) {
                        rng.below(u64::from(hot)) as u32
                    } else {
                        rng.below(u64::from(config.pages)) as u32
                    };
                    let access =
                        if rng.below(100) < u64::from(config.write_percent) { Access::Write } else { Access::Read };
                    Choice::Issue { vcpu, page, access }
                }
            }
        };
        match cluster.apply(choice).map_err(|v| fail(step, v))? {
            Effect::Delivered { page } => {
                report.messages += 1;
                report.page_messages += u64::from(page);
            }
            Effect::Accessed(Access::Read) => report.reads += 1,
            Effect::Accessed(Access::Write) => report.writes += 1,
            Effect::Faulted => report.faults += 1,
            Effect::Evicted => report.evictions += 1,
            Effect::Nothing => {}
        }
        if step % 65_536 == 0 {
            cluster.check_all().map_err(|v| fail(step, v))?;
        }
    }
}

#[cfg(test)]
mod tests;
