//! Message-signalled interrupts for the NICs: MSI (e1000e) and MSI-X
//! (virtio-net), one vector, fixed delivery to one core, edge-triggered.
//! The NIC's interrupt only wakes a halted core (the handler marks the
//! core notified); the `nic` service still does all the work by polling
//! once it runs, so an interrupt lost or coalesced costs latency, never a
//! frame.

use virtio_drivers::transport::pci::bus::{ConfigurationAccess, DeviceFunction, PciRoot};

use super::pci::{self, PortCam};
use crate::memory;

const CAP_MSI: u8 = 0x05;
const CAP_MSIX: u8 = 0x11;
/// The local APIC's MSI address window (Intel SDM vol. 3A §11.11.1).
const MSI_ADDRESS_BASE: u32 = 0xfee0_0000;

fn find_capability(root: &PciRoot<PortCam>, df: DeviceFunction, id: u8) -> Option<u8> {
    root.capabilities(df).find(|c| c.id == id).map(|c| c.offset)
}

/// Physical destination `apic_id`, fixed delivery, edge: the address and
/// data of one message.
fn message(vector: u8, apic_id: u32) -> (u32, u32) {
    (MSI_ADDRESS_BASE | ((apic_id & 0xff) << 12), u32::from(vector))
}

/// Enables plain MSI with one vector. False if the function has no MSI
/// capability.
pub fn enable_msi(root: &PciRoot<PortCam>, df: DeviceFunction, vector: u8, apic_id: u32) -> bool {
    let Some(cap) = find_capability(root, df, CAP_MSI) else { return false };
    let mut cam = PortCam;
    let header = cam.read_word(df, cap);
    let control = header >> 16;
    let is_64bit = control & (1 << 7) != 0;
    let (address, data) = message(vector, apic_id);
    cam.write_word(df, cap + 4, address);
    if is_64bit {
        cam.write_word(df, cap + 8, 0);
        cam.write_word(df, cap + 12, data);
    } else {
        cam.write_word(df, cap + 8, data);
    }
    // Enable, one message (Multiple Message Enable = 0).
    let control = (control & !(0b111 << 4)) | 1;
    cam.write_word(df, cap, (header & 0xffff) | (control << 16));
    cam.read_word(df, cap) >> 16 & 1 == 1
}

/// Enables MSI-X with table entry 0 pointing at `vector` on `apic_id`
/// (every other entry stays masked). False if the function has no MSI-X
/// capability or its table is not in a memory BAR.
pub fn enable_msix_entry0(root: &mut PciRoot<PortCam>, df: DeviceFunction, vector: u8, apic_id: u32) -> bool {
    let Some(cap) = find_capability(root, df, CAP_MSIX) else { return false };
    let mut cam = PortCam;
    let header = cam.read_word(df, cap);
    let table = cam.read_word(df, cap + 4);
    let (bir, offset) = ((table & 0b111) as u8, u64::from(table & !0b111));
    let Some((bar, _)) = pci::memory_bar(root, df, bir) else { return false };
    let Ok(entry) = memory::map_mmio(bar + offset, 16) else { return false };
    let (address, data) = message(vector, apic_id);
    let entry = entry as *mut u32;
    // Address low, address high, data, vector control (0: unmasked).
    for (word, value) in [address, 0, data, 0].into_iter().enumerate() {
        // SAFETY: `entry` maps the 16 bytes of table entry 0 of this
        // function's MSI-X table (BAR `bir` + the table offset its
        // capability gives); `word` < 4 stays inside it. Device registers,
        // written volatile.
        unsafe { entry.wrapping_add(word).write_volatile(value) };
    }
    // Enable (bit 15), function mask off (bit 14).
    let control = ((header >> 16) | (1 << 15)) & !(1 << 14);
    cam.write_word(df, cap, (header & 0xffff) | (control << 16));
    cam.read_word(df, cap) >> 31 == 1
}
