//! NIC drivers: find the node's NIC on PCI and move raw Ethernet frames.
//!
//! Both drivers poll (no interrupts yet) and sit behind [`FrameNic`]. Receive
//! is zero-copy: every receive buffer is a 4 KiB frame from the hypervisor
//! pool, handed to the device by physical address and to the caller in place
//! through the direct map, then re-posted, or taken by the caller as a
//! [`FrameLease`] in exchange for a fresh frame ([`Received::swap`]). Transmit copies the frame once into
//! a driver-owned DMA frame (so callers can build frames on their stacks).
//!
//! - virtio-net: the `virtio-drivers` crate's `VirtIONetRaw` over its modern
//!   PCI transport, with [`virtio::KernelHal`] giving it frames and mappings.
//! - e1000e (Intel 82574): hand-written legacy descriptor rings, see
//!   [`e1000e`].

pub mod e1000e;
pub mod msi;
pub mod pci;
pub mod virtio;

use core::fmt;

use sinter_config::NicModel;
use sinter_ipc::{FrameLease, PhysFrame, FRAME_SIZE};

use virtio_drivers::transport::pci::bus::{DeviceFunction, PciRoot};

use crate::kprintln;
use crate::memory::phys_to_virt;
use pci::PortCam;

/// A NIC that sends and receives whole Ethernet frames (no FCS).
pub trait FrameNic {
    /// The MAC address the device uses.
    fn mac(&self) -> [u8; 6];
    /// Queues one frame (destination MAC first, 14..=1514 bytes).
    fn transmit(&mut self, frame: &[u8]) -> Result<(), NicError>;
    /// Hands up to `budget` frames received so far to `f` in their DMA
    /// buffers, oldest first; the rest stay in the device's ring for a later
    /// call (the device drops only when its ring is full). `f` reads a frame
    /// in place, or takes the whole buffer with [`Received::swap`]; the
    /// driver then gives the device whatever frame the slot holds. Returns
    /// how many frames were received.
    fn receive_into(&mut self, budget: usize, f: &mut dyn FnMut(&mut Received<'_>)) -> usize;
    /// Hands every frame received so far to `f`, in place in its DMA buffer,
    /// and gives the buffer back to the device; returns how many.
    fn receive(&mut self, f: &mut dyn FnMut(&[u8])) -> usize {
        self.receive_into(usize::MAX, &mut |rx| f(rx.bytes()))
    }
}

/// A received frame in its receive buffer (a 4 KiB frame of the hypervisor
/// pool), while the driver has it out of the ring.
pub struct Received<'a> {
    /// Physical address of the buffer; the driver posts what is here after
    /// the callback.
    buffer: &'a mut u64,
    /// Where the Ethernet frame starts in the buffer (virtio puts its
    /// header first).
    offset: usize,
    len: usize,
}

impl<'a> Received<'a> {
    /// `buffer` holds a frame the device has finished writing, `len` bytes
    /// at `offset`, with `offset + len` at most 4096.
    pub(crate) fn new(buffer: &'a mut u64, offset: usize, len: usize) -> Self {
        let offset = offset.min(FRAME_SIZE);
        Self { buffer, offset, len: len.min(FRAME_SIZE - offset) }
    }

    /// The frame's bytes (Ethernet header first, no FCS).
    pub fn bytes(&self) -> &[u8] {
        let start = (phys_to_virt(*self.buffer) as usize + self.offset) as *const u8;
        // SAFETY: the slot's buffer is a 4 KiB frame in the direct map that
        // the device has finished with and gets back only after the
        // callback; `offset + len` is inside it (`new`).
        unsafe { core::slice::from_raw_parts(start, self.len) }
    }

    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Bytes in the frame.
    pub fn frame_len(&self) -> usize {
        self.len
    }

    /// Takes the buffer holding this frame and puts `fresh` in its place in
    /// the ring: zero-copy receive. After this, [`Received::bytes`] is
    /// meaningless; read the frame through the returned lease.
    pub fn swap(&mut self, fresh: FrameLease) -> FrameLease {
        let old = core::mem::replace(self.buffer, fresh.into_frame().addr());
        let frame = PhysFrame::new(old).unwrap_or_else(|| crate::fatal(format_args!("nic: receive buffer {old:#x}")));
        // SAFETY: the device has finished with this buffer and the ring slot
        // now names `fresh`, so the driver no longer refers to it: the lease
        // is its only owner.
        unsafe { FrameLease::assume_owned(frame) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NicError {
    /// No PCI function matches the configured NIC model.
    NotFound,
    /// A BAR the driver needs is missing or unassigned.
    NoBar,
    /// The device did not come out of reset.
    ResetTimeout,
    /// The device's MAC differs from the config's.
    MacMismatch { device: [u8; 6], config: [u8; 6] },
    /// Every transmit descriptor is still owned by the device.
    TxFull,
    /// The frame is shorter than a header or longer than a standard frame.
    BadLength(usize),
    /// Out of DMA frames or mapping space.
    Memory,
    /// The virtio driver reported an error.
    Virtio,
}

pub struct Mac(pub [u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5])
    }
}

/// The node's NIC, whichever model the config names.
pub enum Nic {
    Virtio(alloc::boxed::Box<virtio::VirtioNic>),
    E1000e(alloc::boxed::Box<e1000e::E1000e>),
}

impl FrameNic for Nic {
    fn mac(&self) -> [u8; 6] {
        match self {
            Nic::Virtio(n) => n.mac(),
            Nic::E1000e(n) => n.mac(),
        }
    }

    fn transmit(&mut self, frame: &[u8]) -> Result<(), NicError> {
        match self {
            Nic::Virtio(n) => n.transmit(frame),
            Nic::E1000e(n) => n.transmit(frame),
        }
    }

    fn receive_into(&mut self, budget: usize, f: &mut dyn FnMut(&mut Received<'_>)) -> usize {
        match self {
            Nic::Virtio(n) => n.receive_into(budget, f),
            Nic::E1000e(n) => n.receive_into(budget, f),
        }
    }
}

impl Nic {
    /// Sets up the receive interrupt (MSI-X entry 0 for virtio-net, MSI for
    /// e1000e) on `vector` of the core with `apic_id`. False if the device
    /// cannot interrupt; the nic service then polls on a timer instead.
    fn enable_rx_interrupt(
        &mut self,
        root: &mut PciRoot<PortCam>,
        df: DeviceFunction,
        vector: u8,
        apic_id: u32,
    ) -> bool {
        match self {
            Nic::Virtio(_) => {
                msi::enable_msix_entry0(root, df, vector, apic_id)
                    && virtio::VirtioNic::route_rx_to_msix_entry0(root, df)
            }
            Nic::E1000e(n) => {
                let enabled = msi::enable_msi(root, df, vector, apic_id);
                if enabled {
                    n.enable_rx_interrupt();
                }
                enabled
            }
        }
    }

    /// Before the nic service sleeps: makes sure a frame arriving from now
    /// on raises an interrupt.
    pub fn rearm_interrupt(&mut self) {
        match self {
            Nic::Virtio(n) => n.rearm_interrupt(),
            Nic::E1000e(n) => n.rearm_interrupt(),
        }
    }

    /// After the nic service wakes: no interrupts while it polls (NAPI
    /// style; each one would cost an exit on a busy core).
    pub fn quiet_interrupt(&mut self) {
        match self {
            Nic::Virtio(n) => n.quiet_interrupt(),
            Nic::E1000e(n) => n.quiet_interrupt(),
        }
    }

    /// A line of device counters for reports, where the driver has them.
    pub fn counters(&self) -> Option<alloc::string::String> {
        match self {
            Nic::Virtio(_) => None,
            Nic::E1000e(n) => {
                let [rx, tx, missed, no_buffer, dropped] = n.counters();
                Some(alloc::format!(
                    "rx {rx} tx {tx} missed {missed} no-buffer {no_buffer} driver-dropped {dropped} {:?}",
                    n.rx_last_bad
                ))
            }
        }
    }
}

/// Largest frame the drivers send or accept (no VLAN tag, no FCS).
pub const MAX_FRAME: usize = 1514;

pub(crate) fn check_length(frame: &[u8]) -> Result<(), NicError> {
    if frame.len() < 14 || frame.len() > MAX_FRAME {
        return Err(NicError::BadLength(frame.len()));
    }
    Ok(())
}

/// Finds the NIC of `model` on PCI, brings it up and checks its MAC against
/// the config's. Prints one `nic:` line describing what it found.
/// `interrupt`: the vector and the APIC id of the core its receive
/// interrupt should go to; the bool returned says whether it is set up.
pub fn open(model: NicModel, config_mac: [u8; 6], interrupt: (u8, u32)) -> Result<(Nic, bool), NicError> {
    let mut root = pci::root();
    let functions = pci::scan(&root);
    let wanted = |vendor: u16, device: u16| match model {
        NicModel::VirtioNet => vendor == 0x1af4 && (device == 0x1000 || device == 0x1041),
        NicModel::E1000e => vendor == 0x8086 && device == 0x10d3,
    };
    let Some(found) = functions.iter().find(|f| wanted(f.info.vendor_id, f.info.device_id)) else {
        kprintln!("nic: no {:?} among {} PCI functions", model, functions.len());
        return Err(NicError::NotFound);
    };
    let df = found.function;
    pci::enable_mmio_and_dma(&mut root, df);
    let mut nic = match model {
        NicModel::VirtioNet => Nic::Virtio(alloc::boxed::Box::new(virtio::VirtioNic::open(&mut root, df)?)),
        NicModel::E1000e => Nic::E1000e(alloc::boxed::Box::new(e1000e::E1000e::open(&mut root, df)?)),
    };
    let mac = nic.mac();
    let interrupts = nic.enable_rx_interrupt(&mut root, df, interrupt.0, interrupt.1);
    kprintln!(
        "nic: {:?} {:04x}:{:04x} at {:02x}:{:02x}.{} mac {}{}, receive interrupt {}",
        model,
        found.info.vendor_id,
        found.info.device_id,
        df.bus,
        df.device,
        df.function,
        Mac(mac),
        if mac == config_mac { " (matches the config)" } else { "" },
        if interrupts { "on" } else { "off (polling)" }
    );
    if mac != config_mac {
        kprintln!("nic: MAC mismatch: the device has {}, the config says {}", Mac(mac), Mac(config_mac));
        return Err(NicError::MacMismatch { device: mac, config: config_mac });
    }
    Ok((nic, interrupts))
}
