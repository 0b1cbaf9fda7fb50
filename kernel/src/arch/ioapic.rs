//! IOAPICs: every pin masked at boot; a redirection-entry API for whoever
//! later owns a device interrupt.

use alloc::vec::Vec;

use sinter_kerncore::madt::{IoApic as IoApicEntry, Polarity, Trigger};
use spin::Mutex;

use crate::memory::phys_to_virt;

const IOREGSEL: u64 = 0x00;
const IOWIN: u64 = 0x10;
const REG_VERSION: u32 = 0x01;
const REG_REDIRECTION: u32 = 0x10;
const MASKED: u32 = 1 << 16;

struct Chip {
    virt: u64,
    gsi_base: u32,
    pins: u32,
}

impl Chip {
    fn read(&self, index: u32) -> u32 {
        // SAFETY: `virt` is the direct-map address of an IOAPIC from the
        // MADT; IOREGSEL/IOWIN are its two registers. The CHIPS lock keeps
        // the select-then-access pair from interleaving.
        unsafe { core::ptr::write_volatile((self.virt + IOREGSEL) as *mut u32, index) };
        // SAFETY: as above.
        unsafe { core::ptr::read_volatile((self.virt + IOWIN) as *const u32) }
    }

    fn write(&self, index: u32, value: u32) {
        // SAFETY: as in `read`.
        unsafe { core::ptr::write_volatile((self.virt + IOREGSEL) as *mut u32, index) };
        // SAFETY: as in `read`.
        unsafe { core::ptr::write_volatile((self.virt + IOWIN) as *mut u32, value) };
    }

    fn set_entry(&self, pin: u32, low: u32, high: u32) {
        // Mask first so the pin never fires half-programmed.
        self.write(REG_REDIRECTION + 2 * pin, MASKED);
        self.write(REG_REDIRECTION + 2 * pin + 1, high);
        self.write(REG_REDIRECTION + 2 * pin, low);
    }
}

static CHIPS: Mutex<Vec<Chip>> = Mutex::new(Vec::new());

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteError {
    /// No IOAPIC carries this GSI.
    NoSuchGsi(u32),
    /// Vectors below 32 are exceptions.
    BadVector(u8),
}

/// Records the IOAPICs and masks every pin. Returns the total pin count.
pub fn init(entries: &[IoApicEntry]) -> u32 {
    let mut chips = CHIPS.lock();
    chips.clear();
    for entry in entries {
        let mut chip = Chip { virt: phys_to_virt(u64::from(entry.address)), gsi_base: entry.gsi_base, pins: 0 };
        chip.pins = ((chip.read(REG_VERSION) >> 16) & 0xff) + 1;
        for pin in 0..chip.pins {
            chip.set_entry(pin, MASKED, 0);
        }
        chips.push(chip);
    }
    chips.iter().map(|c| c.pins).sum()
}

/// Routes `gsi` to `vector` on the core with `apic_id` (fixed delivery,
/// physical destination) and unmasks it.
pub fn route(gsi: u32, vector: u8, apic_id: u32, trigger: Trigger, polarity: Polarity) -> Result<(), RouteError> {
    if vector < 32 {
        return Err(RouteError::BadVector(vector));
    }
    let chips = CHIPS.lock();
    let chip =
        chips.iter().find(|c| (c.gsi_base..c.gsi_base + c.pins).contains(&gsi)).ok_or(RouteError::NoSuchGsi(gsi))?;
    let mut low = u32::from(vector);
    if polarity == Polarity::ActiveLow {
        low |= 1 << 13;
    }
    if trigger == Trigger::Level {
        low |= 1 << 15;
    }
    chip.set_entry(gsi - chip.gsi_base, low, (apic_id & 0xff) << 24);
    Ok(())
}

/// Masks `gsi` again.
pub fn mask(gsi: u32) -> Result<(), RouteError> {
    let chips = CHIPS.lock();
    let chip =
        chips.iter().find(|c| (c.gsi_base..c.gsi_base + c.pins).contains(&gsi)).ok_or(RouteError::NoSuchGsi(gsi))?;
    chip.write(REG_REDIRECTION + 2 * (gsi - chip.gsi_base), MASKED);
    Ok(())
}

/// The legacy 8259 PICs: mask both, so only the IOAPIC delivers.
pub fn mask_legacy_pic() {
    use x86_64::instructions::port::Port;
    let mut master = Port::<u8>::new(0x21);
    let mut slave = Port::<u8>::new(0xa1);
    // SAFETY: writing the 8259 interrupt mask registers only masks IRQs.
    unsafe { master.write(0xff) };
    // SAFETY: as above.
    unsafe { slave.write(0xff) };
}
