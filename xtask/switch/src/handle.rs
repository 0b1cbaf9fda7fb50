//! Steering a running switch: faults, counters, captures, shutdown.

use std::fs::File;
use std::io::BufWriter;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use crate::dataplane::{lock, Dataplane, Port};
use crate::ethernet::MacAddr;
use crate::faults::LinkFaults;
use crate::pcap::PcapWriter;
use crate::stats::{PortStats, StatsTable};
use crate::switch::{PortSetup, SwitchConfig, SwitchError};
use crate::PortId;

/// What [`SwitchHandle::shutdown`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShutdownReport {
    /// Threads joined by this call (0 if an earlier call joined them).
    pub joined: usize,
    /// Of those, threads that had panicked.
    pub panicked: usize,
}

/// Owns the threads. Dropped with the last [`SwitchHandle`], which stops
/// the switch.
struct Control {
    dataplane: Arc<Dataplane>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Control {
    fn shutdown(&self) -> ShutdownReport {
        self.dataplane.stop.store(true, Ordering::Release);
        self.dataplane.wake_timer();
        // Held while joining, so a concurrent call returns only once every
        // thread is gone. The switch threads never take this lock.
        let mut threads = lock(&self.threads);
        let mut report = ShutdownReport::default();
        for thread in threads.drain(..) {
            report.joined += 1;
            if thread.join().is_err() {
                report.panicked += 1;
            }
        }
        report
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A cloneable handle to a running switch. The switch stops at
/// [`SwitchHandle::shutdown`] or when the last clone is dropped; either
/// way every switch thread has been joined when that returns.
#[derive(Clone)]
pub struct SwitchHandle {
    control: Arc<Control>,
}

impl std::fmt::Debug for SwitchHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwitchHandle")
            .field("ports", &self.dataplane().ports.len())
            .field("running", &self.is_running())
            .finish()
    }
}

impl SwitchHandle {
    pub(crate) fn start(config: SwitchConfig, setups: Vec<PortSetup>) -> Result<SwitchHandle, SwitchError> {
        let dataplane = Arc::new(Dataplane::new(&config, setups));
        let handle = SwitchHandle {
            control: Arc::new(Control { dataplane: Arc::clone(&dataplane), threads: Mutex::new(Vec::new()) }),
        };
        // On an error below, dropping `handle` stops and joins what started.
        for index in 0..dataplane.ports.len() {
            let dp = Arc::clone(&dataplane);
            let thread = thread::Builder::new()
                .name(format!("switch-rx-p{index}"))
                .spawn(move || dp.run_receiver(index))
                .map_err(SwitchError::Spawn)?;
            lock(&handle.control.threads).push(thread);
        }
        let dp = Arc::clone(&dataplane);
        let timer = thread::Builder::new()
            .name("switch-timer".to_string())
            .spawn(move || dp.run_timer())
            .map_err(SwitchError::Spawn)?;
        lock(&handle.control.threads).push(timer);
        Ok(handle)
    }

    fn dataplane(&self) -> &Dataplane {
        &self.control.dataplane
    }

    fn port(&self, port: PortId) -> Result<&Port, SwitchError> {
        self.dataplane().ports.get(port.index()).ok_or(SwitchError::UnknownPort(port))
    }

    /// Every port, in the order added.
    pub fn ports(&self) -> Vec<PortId> {
        self.dataplane().ports.iter().map(|p| p.id).collect()
    }

    /// The switch-side address of `port`.
    pub fn switch_addr(&self, port: PortId) -> Option<SocketAddr> {
        self.port(port).ok().map(|p| p.local)
    }

    /// Where `port`'s frames go, once known.
    pub fn peer_addr(&self, port: PortId) -> Option<SocketAddr> {
        self.port(port).ok().and_then(|p| p.peer.get().copied())
    }

    /// Replaces the faults on `port`'s link. Takes effect for the next
    /// frame; frames already delayed keep their due time.
    pub fn set_faults(&self, port: PortId, faults: LinkFaults) -> Result<(), SwitchError> {
        faults.validate().map_err(|source| SwitchError::Faults { port, source })?;
        let target = self.port(port)?;
        {
            let mut injector = lock(&target.egress);
            injector.set_faults(faults);
            target.cut.store(faults.cut, Ordering::Release);
        }
        self.dataplane().wake_timer();
        Ok(())
    }

    /// Like [`SwitchHandle::set_faults`], from a spec such as
    /// `"drop=10,dup=5,reorder=5,delay=2ms,jitter=1ms"` (see
    /// [`LinkFaults`]'s `FromStr`). Unset keys are reset to a perfect link.
    pub fn set_faults_spec(&self, port: PortId, spec: &str) -> Result<(), SwitchError> {
        let faults = spec.parse().map_err(|source| SwitchError::Faults { port, source })?;
        self.set_faults(port, faults)
    }

    /// The faults in force on `port`'s link.
    pub fn faults(&self, port: PortId) -> Result<LinkFaults, SwitchError> {
        Ok(lock(&self.port(port)?.egress).faults())
    }

    /// Cuts or restores `port`'s link, keeping its other faults.
    pub fn set_cut(&self, port: PortId, cut: bool) -> Result<(), SwitchError> {
        let target = self.port(port)?;
        {
            let mut injector = lock(&target.egress);
            let faults = LinkFaults { cut, ..injector.faults() };
            injector.set_faults(faults);
            target.cut.store(cut, Ordering::Release);
        }
        self.dataplane().wake_timer();
        Ok(())
    }

    /// Turns MAC learning on `port` on or off (on by default). With it off,
    /// frames from the port are still forwarded, but their source addresses
    /// do not move in the MAC table: a host port can send with a node's
    /// address without taking that node's traffic.
    pub fn set_learning(&self, port: PortId, learning: bool) -> Result<(), SwitchError> {
        self.port(port)?.learning.store(learning, Ordering::Release);
        Ok(())
    }

    /// `port`'s counters.
    pub fn port_stats(&self, port: PortId) -> Result<PortStats, SwitchError> {
        Ok(self.port(port)?.stats())
    }

    /// Every port's counters; print it for a table.
    pub fn stats(&self) -> StatsTable {
        StatsTable(self.dataplane().ports.iter().map(Port::stats).collect())
    }

    /// The learned MAC addresses and their ports, sorted by address.
    pub fn mac_table(&self) -> Vec<(MacAddr, PortId)> {
        lock(&self.dataplane().table).entries()
    }

    /// Writes every frame `port` receives from its peer (after the cut and
    /// length checks) and sends to it (after faults) to a new pcap file at
    /// `path`, replacing any capture already running on the port.
    pub fn capture_to(&self, port: PortId, path: &Path) -> Result<(), SwitchError> {
        let target = self.port(port)?;
        let fail = |source| SwitchError::Capture { port, path: path.to_path_buf(), source };
        let file = File::create(path).map_err(fail)?;
        let writer = PcapWriter::new(BufWriter::new(file)).map_err(fail)?;
        *lock(&target.capture) = Some(writer);
        Ok(())
    }

    /// Stops the capture on `port`, if any, and closes its file.
    pub fn stop_capture(&self, port: PortId) -> Result<(), SwitchError> {
        let target = self.port(port)?;
        lock(&target.capture).take();
        Ok(())
    }

    /// True until shutdown begins.
    pub fn is_running(&self) -> bool {
        !self.dataplane().stop.load(Ordering::Acquire)
    }

    /// Stops forwarding and joins every switch thread; they notice within
    /// one `poll_interval`. Frames still delayed are discarded. Calling it
    /// again does nothing. The sockets close when the last handle is
    /// dropped.
    pub fn shutdown(&self) -> ShutdownReport {
        self.control.shutdown()
    }
}
