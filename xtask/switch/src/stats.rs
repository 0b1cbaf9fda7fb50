//! Per-port counters and the table `xtask` prints.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::injector::FaultCounts;
use crate::{PortId, PortKind};

/// Counters kept by the ingress and egress paths of one port.
#[derive(Debug, Default)]
pub(crate) struct PortCounters {
    pub(crate) rx: AtomicU64,
    pub(crate) tx: AtomicU64,
    pub(crate) dropped_malformed: AtomicU64,
    pub(crate) dropped_cut_ingress: AtomicU64,
    pub(crate) dropped_no_peer: AtomicU64,
    pub(crate) dropped_foreign: AtomicU64,
    pub(crate) filtered: AtomicU64,
    pub(crate) send_errors: AtomicU64,
    pub(crate) recv_errors: AtomicU64,
    pub(crate) capture_errors: AtomicU64,
}

impl PortCounters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A snapshot of one port's counters.
///
/// Ingress counters count datagrams the port's peer sent to the switch;
/// egress counters count frames the switch meant to send to the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortStats {
    /// The port.
    pub port: PortId,
    /// What is attached to it.
    pub kind: PortKind,
    /// The switch's socket address for this port.
    pub switch_addr: SocketAddr,
    /// Where its egress frames go, once known.
    pub peer: Option<SocketAddr>,
    /// Ingress: datagrams received from the peer (all of them, including
    /// those then dropped as malformed or cut).
    pub rx: u64,
    /// Ingress: dropped for being shorter than a header or longer than the
    /// maximum frame length.
    pub dropped_malformed: u64,
    /// Ingress: datagrams from an address other than the peer.
    pub dropped_foreign: u64,
    /// Ingress: frames whose destination sits behind this same port.
    pub filtered: u64,
    /// Egress: frames sent to the peer.
    pub tx: u64,
    /// Egress: dropped by the `drop` chance.
    pub dropped_fault: u64,
    /// Ingress and egress: dropped because the link is cut.
    pub dropped_cut: u64,
    /// Egress: dropped because the peer was not known yet.
    pub dropped_no_peer: u64,
    /// Egress: dropped because the delay queue was full.
    pub dropped_overflow: u64,
    /// Egress: frames sent twice.
    pub duplicated: u64,
    /// Egress: frames delivered after the frame that followed them.
    pub reordered: u64,
    /// Egress: frames given a non-zero delay.
    pub delayed: u64,
    /// Errors from the socket: sends that failed, receives that failed, and
    /// pcap writes that failed.
    pub errors: u64,
}

impl PortStats {
    pub(crate) fn collect(
        port: PortId,
        kind: PortKind,
        switch_addr: SocketAddr,
        peer: Option<SocketAddr>,
        counters: &PortCounters,
        faults: FaultCounts,
    ) -> Self {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        PortStats {
            port,
            kind,
            switch_addr,
            peer,
            rx: get(&counters.rx),
            dropped_malformed: get(&counters.dropped_malformed),
            dropped_foreign: get(&counters.dropped_foreign),
            filtered: get(&counters.filtered),
            tx: get(&counters.tx),
            dropped_fault: faults.dropped_fault,
            dropped_cut: faults.dropped_cut + get(&counters.dropped_cut_ingress),
            dropped_no_peer: get(&counters.dropped_no_peer),
            dropped_overflow: faults.dropped_overflow,
            duplicated: faults.duplicated,
            reordered: faults.reordered,
            delayed: faults.delayed,
            errors: get(&counters.send_errors) + get(&counters.recv_errors) + get(&counters.capture_errors),
        }
    }
}

/// Every port's stats; `Display` prints an aligned table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsTable(pub Vec<PortStats>);

impl fmt::Display for StatsTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HEADERS: [&str; 15] = [
            "port",
            "kind",
            "peer",
            "rx",
            "tx",
            "malformed",
            "foreign",
            "filtered",
            "fault",
            "cut",
            "no-peer",
            "overflow",
            "dup",
            "reorder",
            "delayed",
        ];
        let rows: Vec<[String; 15]> = self
            .0
            .iter()
            .map(|s| {
                [
                    s.port.to_string(),
                    s.kind.to_string(),
                    s.peer.map_or_else(|| "-".to_string(), |p| p.to_string()),
                    s.rx.to_string(),
                    s.tx.to_string(),
                    s.dropped_malformed.to_string(),
                    s.dropped_foreign.to_string(),
                    s.filtered.to_string(),
                    s.dropped_fault.to_string(),
                    s.dropped_cut.to_string(),
                    s.dropped_no_peer.to_string(),
                    s.dropped_overflow.to_string(),
                    s.duplicated.to_string(),
                    s.reordered.to_string(),
                    s.delayed.to_string(),
                ]
            })
            .collect();
        let mut widths = HEADERS.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.len());
            }
        }
        let line = |f: &mut fmt::Formatter<'_>, cells: &[&str]| -> fmt::Result {
            for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                // Text columns left-aligned, numbers right-aligned.
                if i < 3 {
                    write!(f, "{cell:<w$}")?;
                } else {
                    write!(f, "{cell:>w$}")?;
                }
                if i + 1 < cells.len() {
                    f.write_str("  ")?;
                }
            }
            writeln!(f)
        };
        line(f, &HEADERS)?;
        for row in &rows {
            let cells: Vec<&str> = row.iter().map(String::as_str).collect();
            line(f, &cells)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_a_header_and_one_aligned_row_per_port() {
        let counters = PortCounters::default();
        PortCounters::bump(&counters.rx);
        let addr: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let faults = FaultCounts { dropped_cut: 2, ..FaultCounts::default() };
        let a = PortStats::collect(PortId(0), PortKind::Qemu, addr, None, &counters, faults);
        assert_eq!(a.rx, 1);
        assert_eq!(a.dropped_cut, 2);
        let b = PortStats { port: PortId(1), peer: Some(addr), tx: 123_456, ..a.clone() };
        let text = StatsTable(vec![a, b]).to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("port"));
        assert!(lines[1].starts_with("p0"));
        assert!(lines[2].contains("127.0.0.1:4000") && lines[2].contains("123456"));
        assert!(lines.iter().all(|l| l.len() == lines[0].len()));
    }
}
