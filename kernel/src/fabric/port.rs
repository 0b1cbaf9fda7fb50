//! Frame ports: the channel between the `nic` service and one user of raw
//! Ethernet frames. The `transport` service has one (EtherType 0x88B5); the
//! management plane gets the other through [`attach_management`] (every
//! other EtherType: ARP, IPv4, ...).
//!
//! Interface (what a user calls on its [`FramePort`]):
//! - [`FramePort::receive`]: the next received frame, read in place in the
//!   NIC's receive buffer (lent read-only through [`super::GRANTS`]), then
//!   given back. Frames wait in a ring of [`RING`] messages; the nic lends a
//!   user at most [`RX_CREDIT`] frames at a time and drops (and counts)
//!   what arrives beyond that, so a slow user costs only its own frames.
//! - [`FramePort::transmit`]: fills one of the port's own frames (it has
//!   [`TX_FRAMES`]) with an Ethernet frame (destination MAC first, no FCS,
//!   14..=1514 bytes) and lends it to the nic, which sends it and returns
//!   the frame. `Err(PortError::Busy)` when every frame is out.
//!
//! Messages are [`FrameMsg`]s; ownership of a frame moves only by grant.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use sinter_ipc::spsc::{Receiver, Sender, SpscRing};
use sinter_ipc::{Access, CoreId, FrameLease, GrantHandle, ServiceId, WakeTarget, FRAME_SIZE};
use spin::Mutex;
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

use super::{alloc_leases, DirectMap, GRANTS, MANAGEMENT, NIC};
use crate::exec::{self, ExecutorNotify};
use crate::nic::MAX_FRAME;

/// Messages a port's ring holds in each direction; more than a port can
/// ever have outstanding ([`RX_CREDIT`] + [`TX_FRAMES`] grants), so a send
/// on it never finds it full.
pub const RING: usize = 256;
/// Received frames the nic lends one user at a time.
pub const RX_CREDIT: usize = 64;
/// Frames a port owns for transmitting.
pub const TX_FRAMES: usize = 64;

/// One message on a frame port.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct FrameMsg {
    /// [`RECEIVED`], [`TRANSMIT`] or [`RETURNED`].
    pub kind: u32,
    /// Where the Ethernet frame starts in the lent frame.
    pub offset: u16,
    /// Its length.
    pub len: u16,
    pub grant: GrantHandle,
}

impl Default for FrameMsg {
    fn default() -> Self {
        Self::new_zeroed()
    }
}

/// nic → user: a received frame, lent read-only.
pub const RECEIVED: u32 = 1;
/// user → nic: a frame to send, lent read-only.
pub const TRANSMIT: u32 = 2;
/// Either way: the borrower released `grant`; its lender reclaims it.
pub const RETURNED: u32 = 3;

pub type MsgTx = Sender<'static, FrameMsg, RING, ExecutorNotify>;
pub type MsgRx = Receiver<'static, FrameMsg, RING>;

/// Why a transmit did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortError {
    /// Every transmit frame is lent to the nic: try again later.
    Busy,
    /// Not 14..=1514 bytes.
    BadLength(usize),
}

/// A user's end of a frame port.
pub struct FramePort {
    me: ServiceId,
    to_nic: MsgTx,
    from_nic: MsgRx,
    tx_frames: Vec<FrameLease>,
    backlog: VecDeque<FrameMsg>,
}

/// The nic's end of a frame port.
pub struct NicEnd {
    pub user: ServiceId,
    pub to_user: MsgTx,
    pub from_user: MsgRx,
    /// Received frames lent to the user and not yet returned.
    pub lent: usize,
}

/// Sends a message on a ring that is sized never to fill (see [`RING`]);
/// if it does anyway, waits for the other side rather than lose a grant.
pub fn send_reliably(tx: &mut MsgTx, msg: FrameMsg) {
    let mut msg = msg;
    loop {
        match tx.try_send(msg) {
            Ok(()) => return,
            Err(full) => {
                msg = full.into_message();
                exec::yield_now();
            }
        }
    }
}

/// A new port between a user on `user_core` and the nic on `nic_core`.
pub fn open(user: ServiceId, user_core: usize, nic_core: usize) -> Option<(FramePort, NicEnd)> {
    let to_nic: &'static SpscRing<FrameMsg, RING> = alloc::boxed::Box::leak(alloc::boxed::Box::new(SpscRing::new()));
    let to_user: &'static SpscRing<FrameMsg, RING> = alloc::boxed::Box::leak(alloc::boxed::Box::new(SpscRing::new()));
    let (user_tx, nic_rx) = to_nic.split(ExecutorNotify, WakeTarget::Core(CoreId(nic_core as u32))).ok()?;
    let (nic_tx, user_rx) = to_user.split(ExecutorNotify, WakeTarget::Core(CoreId(user_core as u32))).ok()?;
    let port = FramePort {
        me: user,
        to_nic: user_tx,
        from_nic: user_rx,
        tx_frames: alloc_leases(TX_FRAMES, "port"),
        backlog: VecDeque::new(),
    };
    Some((port, NicEnd { user, to_user: nic_tx, from_user: nic_rx, lent: 0 }))
}

impl FramePort {
    /// Handles what the nic sent: returned transmit frames are taken back;
    /// the first received frame is shown to `f` in place and given back.
    /// Returns false if no frame was received.
    pub fn receive(&mut self, f: impl FnOnce(&[u8])) -> bool {
        while let Some(msg) = self.backlog.pop_front().or_else(|| self.from_nic.try_recv()) {
            match msg.kind {
                RETURNED => {
                    if let Ok(lease) = GRANTS.reclaim(msg.grant, self.me) {
                        self.tx_frames.push(lease);
                    }
                }
                RECEIVED => {
                    let Ok(grant) = GRANTS.accept(msg.grant, self.me) else { continue };
                    let bytes = grant.bytes(&DirectMap);
                    let start = usize::from(msg.offset).min(FRAME_SIZE);
                    let end = (start + usize::from(msg.len)).min(FRAME_SIZE);
                    f(&bytes[start..end]);
                    grant.release();
                    send_reliably(
                        &mut self.to_nic,
                        FrameMsg { kind: RETURNED, grant: msg.grant, ..FrameMsg::default() },
                    );
                    return true;
                }
                _ => {}
            }
        }
        false
    }

    /// Whether [`transmit`](Self::transmit) has a frame to fill (after
    /// taking back the ones the nic returned).
    /// Before the user sleeps: true if nothing from the nic is waiting, and
    /// the ring is then armed so the nic's next message wakes the user.
    pub fn arm_if_idle(&mut self) -> bool {
        self.backlog.is_empty() && self.from_nic.arm_if_empty()
    }

    pub fn can_transmit(&mut self) -> bool {
        if self.tx_frames.is_empty() {
            self.reclaim_only();
        }
        !self.tx_frames.is_empty()
    }

    fn reclaim_only(&mut self) {
        // The ring has no peek: received frames met here wait in `backlog`
        // (at most `RX_CREDIT`, the nic lends no more) for `receive`.
        while let Some(msg) = self.from_nic.try_recv() {
            match msg.kind {
                RETURNED => {
                    if let Ok(lease) = GRANTS.reclaim(msg.grant, self.me) {
                        self.tx_frames.push(lease);
                    }
                }
                RECEIVED => self.backlog.push_back(msg),
                _ => {}
            }
        }
    }

    /// Sends a `len`-byte Ethernet frame that `fill` writes.
    pub fn transmit(&mut self, len: usize, fill: impl FnOnce(&mut [u8])) -> Result<(), PortError> {
        if !(14..=MAX_FRAME).contains(&len) {
            return Err(PortError::BadLength(len));
        }
        if !self.can_transmit() {
            return Err(PortError::Busy);
        }
        let Some(mut lease) = self.tx_frames.pop() else { return Err(PortError::Busy) };
        fill(&mut lease.bytes_mut(&DirectMap)[..len]);
        match GRANTS.lend(lease, self.me, NIC, Access::ReadOnly) {
            Ok(grant) => {
                send_reliably(&mut self.to_nic, FrameMsg { kind: TRANSMIT, offset: 0, len: len as u16, grant });
                Ok(())
            }
            Err(full) => {
                self.tx_frames.push(full.0);
                Err(PortError::Busy)
            }
        }
    }
}

/// The management plane's port, waiting for the nic to adopt its end.
static MANAGEMENT_END: Mutex<Option<NicEnd>> = Mutex::new(None);
static MANAGEMENT_OFFERED: AtomicBool = AtomicBool::new(false);
static MANAGEMENT_TAKEN: AtomicBool = AtomicBool::new(false);
static NIC_CORE: AtomicUsize = AtomicUsize::new(usize::MAX);

pub(super) fn set_nic_core(core: usize) {
    NIC_CORE.store(core, Ordering::Release);
}

/// The management plane's frame port: every received frame whose EtherType
/// is not the transport's (ARP, IPv4, ...), and a way to transmit frames.
/// Call it from the service that will use the port (its core is the one
/// woken for new frames). Once per boot; `None` if the fabric is not
/// running or the port was taken already. Until a port is attached the
/// nic counts those frames as `no_listener` and drops them.
#[allow(dead_code, reason = "the management plane's entry point; it lands on another branch")]
pub fn attach_management() -> Option<FramePort> {
    let nic_core = NIC_CORE.load(Ordering::Acquire);
    if nic_core == usize::MAX {
        return None;
    }
    if MANAGEMENT_TAKEN.swap(true, Ordering::AcqRel) {
        return None;
    }
    let (port, end) = open(MANAGEMENT, exec::core_index(), nic_core)?;
    *MANAGEMENT_END.lock() = Some(end);
    MANAGEMENT_OFFERED.store(true, Ordering::Release);
    Some(port)
}

/// For the nic: the management port's end, once it is attached.
pub(super) fn take_management_end() -> Option<NicEnd> {
    if !MANAGEMENT_OFFERED.swap(false, Ordering::AcqRel) {
        return None;
    }
    MANAGEMENT_END.lock().take()
}
