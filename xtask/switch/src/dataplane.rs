//! The running switch: what the receive threads and the timer thread share,
//! and their loops.
//!
//! Lock order: the MAC table alone; then one port's injector, then that
//! port's capture file. No thread holds two injectors at once.

use std::fs::File;
use std::io::{self, BufWriter};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::ethernet::{frame_macs, ETHERNET_HEADER_LEN};
use crate::injector::FaultInjector;
use crate::mac_table::{Forwarding, MacTable};
use crate::pcap::PcapWriter;
use crate::rng::derive_seed;
use crate::stats::{PortCounters, PortStats};
use crate::switch::{is_loopback_v4, PortSetup, SwitchConfig};
use crate::{PortId, PortKind};

/// Largest UDP payload plus one: enough to see any datagram's true length.
const RECV_BUFFER: usize = 65_536;

/// Locks a mutex, taking over the data if another thread panicked while
/// holding it: counters and queues stay usable, and a switch thread must
/// not panic because a neighbour did.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) type Capture = PcapWriter<BufWriter<File>>;

/// One port of a running switch.
pub(crate) struct Port {
    pub(crate) id: PortId,
    pub(crate) kind: PortKind,
    pub(crate) socket: UdpSocket,
    pub(crate) local: SocketAddr,
    pub(crate) peer: OnceLock<SocketAddr>,
    /// Mirror of the injector's `cut`, read by the receive thread without
    /// taking the injector lock.
    pub(crate) cut: AtomicBool,
    /// Whether source addresses seen on this port are learned (off for a
    /// port that sends with other stations' addresses, e.g. a test forging
    /// a member's frames: it must not steal that member's traffic).
    pub(crate) learning: AtomicBool,
    pub(crate) counters: PortCounters,
    pub(crate) egress: Mutex<FaultInjector>,
    pub(crate) capture: Mutex<Option<Capture>>,
}

impl Port {
    pub(crate) fn stats(&self) -> PortStats {
        let faults = lock(&self.egress).counts();
        PortStats::collect(self.id, self.kind, self.local, self.peer.get().copied(), &self.counters, faults)
    }

    fn capture(&self, frame: &[u8]) {
        if let Some(writer) = lock(&self.capture).as_mut() {
            if writer.write_frame(SystemTime::now(), frame).is_err() {
                PortCounters::bump(&self.counters.capture_errors);
            }
        }
    }

    /// Sends one frame to the peer. Called with the injector lock held so
    /// that frames leave in the order the injector gave them.
    fn transmit(&self, frame: &[u8]) {
        let Some(peer) = self.peer.get() else {
            PortCounters::bump(&self.counters.dropped_no_peer);
            return;
        };
        match self.socket.send_to(frame, peer) {
            Ok(_) => {
                PortCounters::bump(&self.counters.tx);
                self.capture(frame);
            }
            Err(_) => PortCounters::bump(&self.counters.send_errors),
        }
    }
}

/// Everything the switch threads share.
pub(crate) struct Dataplane {
    pub(crate) ports: Vec<Port>,
    pub(crate) table: Mutex<MacTable>,
    max_frame_len: usize,
    poll_interval: Duration,
    epoch: Instant,
    pub(crate) stop: AtomicBool,
    /// Bumped whenever the timer thread may need to wake earlier.
    wake: Mutex<u64>,
    wake_cv: Condvar,
}

impl Dataplane {
    pub(crate) fn new(config: &SwitchConfig, setups: Vec<PortSetup>) -> Self {
        let ports = setups
            .into_iter()
            .enumerate()
            .map(|(index, setup)| {
                let id = PortId(u16::try_from(index).unwrap_or(u16::MAX));
                let seed = derive_seed(config.seed, index as u64);
                let peer = OnceLock::new();
                if let Some(addr) = setup.peer {
                    let _ = peer.set(addr);
                }
                Port {
                    id,
                    kind: setup.kind,
                    socket: setup.socket,
                    local: setup.local,
                    peer,
                    cut: AtomicBool::new(setup.faults.cut),
                    learning: AtomicBool::new(true),
                    counters: PortCounters::default(),
                    egress: Mutex::new(FaultInjector::with_capacity(setup.faults, seed, config.queue_capacity)),
                    capture: Mutex::new(None),
                }
            })
            .collect();
        Self {
            ports,
            table: Mutex::new(MacTable::new(config.mac_table_capacity)),
            max_frame_len: config.max_frame_len,
            poll_interval: config.poll_interval.max(Duration::from_millis(1)),
            epoch: Instant::now(),
            stop: AtomicBool::new(false),
            wake: Mutex::new(0),
            wake_cv: Condvar::new(),
        }
    }

    /// Time since the switch started: the injectors' clock.
    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Tells the timer thread to look at the queues again.
    pub(crate) fn wake_timer(&self) {
        let mut generation = lock(&self.wake);
        *generation = generation.wrapping_add(1);
        self.wake_cv.notify_all();
    }

    /// Loop of port `index`'s receive thread.
    pub(crate) fn run_receiver(&self, index: usize) {
        let Some(port) = self.ports.get(index) else {
            return;
        };
        let mut buf = vec![0u8; RECV_BUFFER];
        while !self.stopping() {
            match port.socket.recv_from(&mut buf) {
                Ok((len, from)) => self.ingress(port, &buf[..len.min(buf.len())], from),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    // E.g. an ICMP error reported on the socket. Count it and
                    // pause briefly so a persistent error cannot spin a core.
                    PortCounters::bump(&port.counters.recv_errors);
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }

    /// One datagram received on `port` from `from`.
    fn ingress(&self, port: &Port, data: &[u8], from: SocketAddr) {
        match port.peer.get() {
            Some(peer) if *peer != from => {
                PortCounters::bump(&port.counters.dropped_foreign);
                return;
            }
            Some(_) => {}
            None => {
                if !is_loopback_v4(from) {
                    PortCounters::bump(&port.counters.dropped_foreign);
                    return;
                }
                // Only this thread sets a learned peer.
                let _ = port.peer.set(from);
            }
        }
        PortCounters::bump(&port.counters.rx);
        if port.cut.load(Ordering::Acquire) {
            PortCounters::bump(&port.counters.dropped_cut_ingress);
            return;
        }
        if data.len() < ETHERNET_HEADER_LEN || data.len() > self.max_frame_len {
            PortCounters::bump(&port.counters.dropped_malformed);
            return;
        }
        let Some((dst, src)) = frame_macs(data) else {
            PortCounters::bump(&port.counters.dropped_malformed);
            return;
        };
        port.capture(data);
        let decision = {
            let mut table = lock(&self.table);
            if port.learning.load(Ordering::Acquire) {
                table.learn(src, port.id);
            }
            table.forward(port.id, dst)
        };
        match decision {
            Forwarding::Filter => PortCounters::bump(&port.counters.filtered),
            Forwarding::Unicast(out) => {
                if let Some(out) = self.ports.get(out.index()) {
                    self.egress(out, data.to_vec());
                }
            }
            Forwarding::Flood => {
                for out in self.ports.iter().filter(|p| p.id != port.id) {
                    self.egress(out, data.to_vec());
                }
            }
        }
    }

    /// Hands a frame to `port`'s injector and sends whatever is due now.
    fn egress(&self, port: &Port, frame: Vec<u8>) {
        if port.peer.get().is_none() {
            PortCounters::bump(&port.counters.dropped_no_peer);
            return;
        }
        let now = self.now();
        let waiting = {
            let mut injector = lock(&port.egress);
            injector.offer(frame, now);
            for due in injector.poll(now) {
                port.transmit(&due);
            }
            injector.next_deadline().is_some()
        };
        if waiting {
            self.wake_timer();
        }
    }

    /// Loop of the timer thread: sends delayed and held frames when due.
    pub(crate) fn run_timer(&self) {
        let mut seen = *lock(&self.wake);
        while !self.stopping() {
            let now = self.now();
            let mut next: Option<Duration> = None;
            for port in &self.ports {
                let mut injector = lock(&port.egress);
                if injector.pending() == 0 {
                    continue;
                }
                for due in injector.poll(now) {
                    port.transmit(&due);
                }
                if let Some(deadline) = injector.next_deadline() {
                    next = Some(next.map_or(deadline, |n| n.min(deadline)));
                }
            }
            let mut generation = lock(&self.wake);
            if *generation == seen {
                let wait = next.map_or(self.poll_interval, |d| d.saturating_sub(self.now())).min(self.poll_interval);
                if !wait.is_zero() {
                    generation = self
                        .wake_cv
                        .wait_timeout(generation, wait)
                        .map(|(g, _)| g)
                        .unwrap_or_else(|poisoned| poisoned.into_inner().0);
                }
            }
            seen = *generation;
        }
    }
}
