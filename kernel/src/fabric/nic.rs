//! The `nic` service: owns the node's NIC driver and moves frames between
//! it and the fabric's frame ports ([`super::port`]).
//!
//! Receive: each frame is checked for length (14..=1514 bytes, else
//! counted and dropped), classified by EtherType (0x88B5 → the transport's
//! port, anything else → the management port), and handed over zero-copy:
//! the receive buffer is swapped out of the ring for a spare frame and lent
//! read-only; when the user returns it, it becomes a spare again. A user
//! holding [`port::RX_CREDIT`] frames, a missing management port or no
//! spare frame makes the nic drop the frame and count why; it never waits.
//!
//! Transmit: users lend frames; the nic copies each into the driver's DMA
//! buffer (the driver's one copy) and returns it.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use sinter_config::NicModel;
use sinter_ipc::{Access, FrameLease, Grant, FRAME_SIZE};
use spin::Mutex;

use super::port::{self, FrameMsg, FramePort, NicEnd, RECEIVED, RETURNED, TRANSMIT};
use super::status::{NicCounters, NIC_COUNTERS};
use super::{alloc_leases, DirectMap, GRANTS, NIC, TRANSPORT};
use crate::arch::time;
use crate::exec::{self, ServiceSpec};
use crate::kprintln;
use crate::nic::{self, FrameNic, NicError, Received, MAX_FRAME};

/// The transport's EtherType (IEEE 802 local experimental 1).
pub const ETHERTYPE_TRANSPORT: u16 = 0x88b5;
/// Spare frames to swap into the receive ring.
const SPARES: usize = 2 * port::RX_CREDIT + 16;

struct Plan {
    model: NicModel,
    mac: [u8; 6],
    transport: NicEnd,
}

static PLAN: Mutex<Option<Plan>> = Mutex::new(None);
static TRANSPORT_PORT: Mutex<Option<FramePort>> = Mutex::new(None);

pub fn spawn(model: NicModel, mac: [u8; 6], core: usize) {
    let Some((port, end)) = port::open(TRANSPORT, core, core) else {
        kprintln!("nic: could not open the transport's frame port");
        return;
    };
    *TRANSPORT_PORT.lock() = Some(port);
    *PLAN.lock() = Some(Plan { model, mac, transport: end });
    port::set_nic_core(core);
    exec::spawn_on(core, ServiceSpec { name: "nic", entry: service, arg: 0 });
}

/// For the transport service: its frame port (once).
pub fn take_transport_port() -> Option<FramePort> {
    TRANSPORT_PORT.lock().take()
}

/// Where a received frame goes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Destination {
    Transport,
    Management,
}

/// Classifies a received frame; `None` for one that no user may see.
pub fn classify(frame: &[u8]) -> Option<Destination> {
    if frame.len() < 14 || frame.len() > MAX_FRAME {
        return None;
    }
    if u16::from_be_bytes([frame[12], frame[13]]) == ETHERTYPE_TRANSPORT {
        Some(Destination::Transport)
    } else {
        Some(Destination::Management)
    }
}

struct Nic {
    driver: nic::Nic,
    spares: Vec<FrameLease>,
    transport: NicEnd,
    management: Option<NicEnd>,
    /// Frames to send that the device had no room for yet.
    pending_tx: VecDeque<(Grant<'static>, FrameMsg, usize)>,
}

fn service(_arg: usize, generation: u32) {
    let Some(plan) = PLAN.lock().take() else {
        kprintln!("nic: generation {generation} has no plan (the driver state died with the last one)");
        return;
    };
    let interrupt = (crate::arch::NIC_VECTOR, crate::arch::apic::id());
    let (driver, interrupts) = match nic::open(plan.model, plan.mac, interrupt) {
        Ok(opened) => opened,
        Err(why) => {
            kprintln!("nic: NIC not usable: {why:?}; the fabric stays down");
            return;
        }
    };
    let mut nic = Nic {
        driver,
        spares: alloc_leases(SPARES, "nic"),
        transport: plan.transport,
        management: None,
        pending_tx: VecDeque::new(),
    };
    let mut idle_rounds = 0u32;
    let mut last_traffic = time::rdtsc();
    loop {
        if let Some(end) = port::take_management_end() {
            kprintln!("nic: management port attached");
            nic.management = Some(end);
        }
        let busy = nic.receive() + nic.serve_users() + nic.pending_tx.len();
        if busy == 0 {
            idle_rounds = idle_rounds.saturating_add(1);
        } else {
            idle_rounds = 0;
            last_traffic = time::rdtsc();
        }
        if interrupts {
            if busy == 0 && nic.arm() {
                // The receive interrupt, a user's message or the safety
                // timeout (an interrupt the device coalesced away) wakes it.
                exec::block_until(time::rdtsc().wrapping_add(time::tsc_hz() / 1000 * SLEEP_MAX_MS));
                nic.driver.quiet_interrupt();
            } else {
                exec::yield_now();
            }
            continue;
        }
        if idle_rounds >= IDLE_ROUNDS && time::ns_since(last_traffic) >= IDLE_REST_AFTER_NS {
            rest_until_tick();
        }
        exec::yield_now();
    }
}

/// Longest the nic sleeps without an interrupt before it polls anyway.
const SLEEP_MAX_MS: u64 = 10;

/// Rounds without a frame after which the nic may let the core rest...
const IDLE_ROUNDS: u32 = 1000;
/// ...once no frame has moved for this long either. A conversation (a
/// request/reply exchange, a bulk transfer with its acks) keeps the nic
/// polling: resting mid-conversation would add a whole timer tick to a
/// round trip. Heartbeats alone (every `heartbeat_ms`, 100 ms by default)
/// leave the core halted most of the time.
const IDLE_REST_AFTER_NS: u64 = 5_000_000;

/// Halts this core until its next interrupt (the 100 Hz timer at the
/// latest, or a wake-up IPI). The drivers have no interrupts yet, so an
/// idle fabric would otherwise spin a core for ever; a frame that arrives
/// meanwhile waits at most one timer tick (10 ms), and only after
/// [`IDLE_ROUNDS`] rounds and [`IDLE_REST_AFTER_NS`] without any traffic.
fn rest_until_tick() {
    use x86_64::instructions::interrupts;
    // The boot core runs its services with interrupts off; `sti; hlt`
    // takes the next one (the handlers only count and acknowledge), then
    // the state is put back as it was.
    let were_enabled = interrupts::are_enabled();
    interrupts::enable_and_hlt();
    if !were_enabled {
        interrupts::disable();
    }
}

impl Nic {
    /// Prepares to sleep: re-arms the device's interrupt and the users'
    /// rings (so a message from them wakes this core), then looks once
    /// more. True if there is still nothing to do.
    fn arm(&mut self) -> bool {
        self.driver.rearm_interrupt();
        let Self { transport, management, .. } = self;
        for end in core::iter::once(transport).chain(management.as_mut()) {
            if !end.from_user.arm_if_empty() {
                return false;
            }
        }
        self.receive() == 0
    }

    /// Frames received this round. No more than the transport can take
    /// are read from the device: the rest wait in the device's ring until
    /// the transport returns frames, instead of being dropped here and
    /// resent after a timeout. (Management frames have no such guarantee:
    /// one for a busy management user is dropped and counted.)
    fn receive(&mut self) -> usize {
        let Self { driver, spares, transport, management, .. } = self;
        let budget = port::RX_CREDIT.saturating_sub(transport.lent);
        driver.receive_into(budget, &mut |rx: &mut Received<'_>| {
            NicCounters::count(&NIC_COUNTERS.rx_frames);
            let (end, counter) = match classify(rx.bytes()) {
                None => return NicCounters::count(&NIC_COUNTERS.rx_bad_length),
                Some(Destination::Transport) => (&mut *transport, &NIC_COUNTERS.rx_transport),
                Some(Destination::Management) => match management.as_mut() {
                    Some(end) => (end, &NIC_COUNTERS.rx_management),
                    None => return NicCounters::count(&NIC_COUNTERS.rx_no_listener),
                },
            };
            if end.lent >= port::RX_CREDIT {
                return NicCounters::count(&NIC_COUNTERS.rx_user_busy);
            }
            let Some(fresh) = spares.pop() else { return NicCounters::count(&NIC_COUNTERS.rx_no_buffer) };
            let (offset, len) = (rx.offset() as u16, rx.frame_len() as u16);
            let lease = rx.swap(fresh);
            match GRANTS.lend(lease, NIC, end.user, Access::ReadOnly) {
                Ok(grant) => {
                    end.lent += 1;
                    NicCounters::count(counter);
                    port::send_reliably(&mut end.to_user, FrameMsg { kind: RECEIVED, offset, len, grant });
                }
                Err(full) => {
                    spares.push(full.0);
                    NicCounters::count(&NIC_COUNTERS.grant_errors);
                }
            }
        })
    }

    /// Messages from users handled this round.
    fn serve_users(&mut self) -> usize {
        self.flush_pending();
        let mut handled = 0;
        let Self { driver, spares, transport, management, pending_tx } = self;
        for end in core::iter::once(transport).chain(management.as_mut()) {
            while let Some(msg) = end.from_user.try_recv() {
                handled += 1;
                match msg.kind {
                    RETURNED => match GRANTS.reclaim(msg.grant, NIC) {
                        Ok(lease) => {
                            spares.push(lease);
                            end.lent = end.lent.saturating_sub(1);
                        }
                        Err(_) => NicCounters::count(&NIC_COUNTERS.grant_errors),
                    },
                    TRANSMIT => {
                        let Ok(grant) = GRANTS.accept(msg.grant, NIC) else {
                            NicCounters::count(&NIC_COUNTERS.grant_errors);
                            continue;
                        };
                        let owner = end.user;
                        if !pending_tx.is_empty() {
                            pending_tx.push_back((grant, msg, owner_index(owner)));
                            continue;
                        }
                        match transmit(driver, &grant, msg) {
                            Err(NicError::TxFull) => pending_tx.push_back((grant, msg, owner_index(owner))),
                            _ => {
                                grant.release();
                                port::send_reliably(&mut end.to_user, FrameMsg { kind: RETURNED, ..msg });
                            }
                        }
                    }
                    _ => NicCounters::count(&NIC_COUNTERS.grant_errors),
                }
            }
        }
        handled
    }

    /// Sends what waited for room in the device, oldest first.
    fn flush_pending(&mut self) {
        while let Some((grant, msg, owner)) = self.pending_tx.pop_front() {
            if let Err(NicError::TxFull) = transmit(&mut self.driver, &grant, msg) {
                self.pending_tx.push_front((grant, msg, owner));
                return;
            }
            grant.release();
            let end = if owner == 0 { Some(&mut self.transport) } else { self.management.as_mut() };
            if let Some(end) = end {
                port::send_reliably(&mut end.to_user, FrameMsg { kind: RETURNED, ..msg });
            }
        }
    }
}

fn owner_index(owner: sinter_ipc::ServiceId) -> usize {
    usize::from(owner != TRANSPORT)
}

/// Sends the frame a user lent; counts the outcome. `TxFull` means "again
/// later"; any other error drops the frame.
fn transmit(driver: &mut nic::Nic, grant: &Grant<'static>, msg: FrameMsg) -> Result<(), NicError> {
    let bytes = grant.bytes(&DirectMap);
    let start = usize::from(msg.offset).min(FRAME_SIZE);
    let end = (start + usize::from(msg.len)).min(FRAME_SIZE);
    match driver.transmit(&bytes[start..end]) {
        Ok(()) => {
            NicCounters::count(&NIC_COUNTERS.tx_frames);
            Ok(())
        }
        Err(NicError::TxFull) => Err(NicError::TxFull),
        Err(other) => {
            NicCounters::count(&NIC_COUNTERS.tx_errors);
            Err(other)
        }
    }
}
