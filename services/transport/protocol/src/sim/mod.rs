//! A deterministic cluster of [`crate::Transport`]s on a simulated lossy
//! segment: N nodes send each other a mix of small and page-sized messages
//! while the segment drops, duplicates, delays and reorders frames and cuts
//! nodes off. Every delivery is checked: from each sender to each receiver,
//! every message exactly once, in order, byte for byte. The same seed gives
//! the same run, so a failing seed is a reproducible bug report.

mod cluster;
mod network;
mod rng;
#[cfg(test)]
mod tests;

pub use cluster::{message_bytes, run, SimConfig, SimFailure, SimReport, SizeMix};
pub use network::{Cut, Faults, Network, WireCounts};
pub use rng::{mix, SplitMix64};
