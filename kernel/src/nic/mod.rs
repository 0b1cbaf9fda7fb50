//! NIC drivers: find the node's NIC on PCI and move raw Ethernet frames.
//!
//! Both drivers poll (no interrupts yet) and sit behind [`FrameNic`]. Receive
//! is zero-copy: every receive buffer is a 4 KiB frame from the hypervisor
//! pool, handed to the device by physical address and to the caller in place
//! through the direct map, then re-posted. Transmit copies the frame once into
//! a driver-owned DMA frame (so callers can build frames on their stacks).
//!
//! - virtio-net: the `virtio-drivers` crate's `VirtIONetRaw` over its modern
//!   PCI transport, with [`virtio::KernelHal`] giving it frames and mappings.
//! - e1000e (Intel 82574): hand-written legacy descriptor rings, see
//!   [`e1000e`].

pub mod e1000e;
pub mod pci;
pub mod virtio;

use core::fmt;

use sinter_config::NicModel;

use crate::kprintln;

/// A NIC that sends and receives whole Ethernet frames (no FCS).
pub trait FrameNic {
    /// The MAC address the device uses.
    fn mac(&self) -> [u8; 6];
    /// Queues one frame (destination MAC first, 14..=1514 bytes).
    fn transmit(&mut self, frame: &[u8]) -> Result<(), NicError>;
    /// Hands every frame received so far to `f`, in place in its DMA buffer,
    /// and gives the buffer back to the device; returns how many.
    fn receive(&mut self, f: &mut dyn FnMut(&[u8])) -> usize;
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

    fn receive(&mut self, f: &mut dyn FnMut(&[u8])) -> usize {
        match self {
            Nic::Virtio(n) => n.receive(f),
            Nic::E1000e(n) => n.receive(f),
        }
    }
}

impl Nic {
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
pub fn open(model: NicModel, config_mac: [u8; 6]) -> Result<Nic, NicError> {
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
    let nic = match model {
        NicModel::VirtioNet => Nic::Virtio(alloc::boxed::Box::new(virtio::VirtioNic::open(&mut root, df)?)),
        NicModel::E1000e => Nic::E1000e(alloc::boxed::Box::new(e1000e::E1000e::open(&mut root, df)?)),
    };
    let mac = nic.mac();
    kprintln!(
        "nic: {:?} {:04x}:{:04x} at {:02x}:{:02x}.{} mac {}{}",
        model,
        found.info.vendor_id,
        found.info.device_id,
        df.bus,
        df.device,
        df.function,
        Mac(mac),
        if mac == config_mac { " (matches the config)" } else { "" }
    );
    if mac != config_mac {
        kprintln!("nic: MAC mismatch: the device has {}, the config says {}", Mac(mac), Mac(config_mac));
        return Err(NicError::MacMismatch { device: mac, config: config_mac });
    }
    Ok(nic)
}
