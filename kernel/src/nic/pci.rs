//! PCI configuration space through the legacy I/O ports 0xCF8/0xCFC (the
//! first 256 bytes of every function, which is all the NIC drivers need),
//! and a scan of bus 0 and the buses behind its bridges.

use alloc::vec::Vec;

use virtio_drivers::transport::pci::bus::{
    BarInfo, Command, ConfigurationAccess, DeviceFunction, DeviceFunctionInfo, PciRoot,
};
use x86_64::instructions::port::Port;

const CONFIG_ADDRESS: u16 = 0xcf8;
const CONFIG_DATA: u16 = 0xcfc;

/// Configuration mechanism #1. Every access writes the address port and then
/// uses the data port, so callers must not interleave: the NIC is set up
/// from one service, before anything else touches PCI.
#[derive(Debug)]
pub struct PortCam;

fn address(df: DeviceFunction, offset: u8) -> u32 {
    0x8000_0000
        | (u32::from(df.bus) << 16)
        | (u32::from(df.device) << 11)
        | (u32::from(df.function) << 8)
        | u32::from(offset & 0xfc)
}

impl ConfigurationAccess for PortCam {
    fn read_word(&self, device_function: DeviceFunction, register_offset: u8) -> u32 {
        let mut addr = Port::<u32>::new(CONFIG_ADDRESS);
        let mut data = Port::<u32>::new(CONFIG_DATA);
        // SAFETY: 0xCF8 is the PCI configuration address port on every PC;
        // writing it selects a register and has no other effect.
        unsafe { addr.write(address(device_function, register_offset)) };
        // SAFETY: reading 0xCFC returns the selected register.
        unsafe { data.read() }
    }

    fn write_word(&mut self, device_function: DeviceFunction, register_offset: u8, value: u32) {
        let mut addr = Port::<u32>::new(CONFIG_ADDRESS);
        let mut data = Port::<u32>::new(CONFIG_DATA);
        // SAFETY: as in `read_word`.
        unsafe { addr.write(address(device_function, register_offset)) };
        // SAFETY: writes the selected register of a function the caller owns.
        unsafe { data.write(value) };
    }

    unsafe fn unsafe_clone(&self) -> Self {
        PortCam
    }
}

/// A function found on the bus.
#[derive(Debug, Clone)]
pub struct Found {
    pub function: DeviceFunction,
    pub info: DeviceFunctionInfo,
}

pub fn root() -> PciRoot<PortCam> {
    PciRoot::new(PortCam)
}

/// Every function on bus 0 and on the secondary buses of PCI-to-PCI bridges
/// (class 6, subclass 4), depth first.
pub fn scan(root: &PciRoot<PortCam>) -> Vec<Found> {
    let mut found = Vec::new();
    let mut buses = alloc::vec![0u8];
    let mut seen = [false; 256];
    while let Some(bus) = buses.pop() {
        if core::mem::replace(&mut seen[usize::from(bus)], true) {
            continue;
        }
        for (function, info) in root.enumerate_bus(bus) {
            if info.class == 0x06 && info.subclass == 0x04 {
                let secondary = (PortCam.read_word(function, 0x18) >> 8) as u8;
                if secondary != 0 {
                    buses.push(secondary);
                }
            }
            found.push(Found { function, info });
        }
    }
    found
}

/// Turns on memory decoding and bus mastering (DMA) for `function`.
pub fn enable_mmio_and_dma(root: &mut PciRoot<PortCam>, function: DeviceFunction) {
    let (_, command) = root.get_status_command(function);
    root.set_command(function, command | Command::MEMORY_SPACE | Command::BUS_MASTER);
}

/// The address and size of memory BAR `index`, if it is one and assigned.
pub fn memory_bar(root: &mut PciRoot<PortCam>, function: DeviceFunction, index: u8) -> Option<(u64, u64)> {
    match root.bar_info(function, index).ok().flatten()? {
        BarInfo::Memory { address, size, .. } if address != 0 => Some((address, size)),
        _ => None,
    }
}
