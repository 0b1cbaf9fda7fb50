//! The I/O APIC (82093AA-style, version 0x20 with the EOI register).
//!
//! MMIO page (at [`sinter_guest_acpi::IoApic::address`]): IOREGSEL at
//! 0x00, IOWIN at 0x10, EOI at 0x40. Indirect registers: 0x00 ID, 0x01
//! version, 0x02 arbitration ID, 0x10 + 2n / 0x11 + 2n redirection entry
//! n (low / high dword). Input lines are driven by the platform
//! ([`IoApic::set_irq`]); what they produce is a list of [`ApicMessage`]s
//! for the caller to route to local APICs.
//!
//! Edge-triggered entries send one message per rising edge of the
//! (polarity-corrected) line while unmasked. Level-triggered entries send
//! while the line is asserted, the entry unmasked and Remote IRR clear, and
//! set Remote IRR; an EOI for the vector clears it and re-sends if the line
//! is still asserted.

use crate::msg::{ApicMessage, Deliveries, DeliveryMode, DestinationMode, Shorthand, TriggerMode};

/// Number of pins (redirection entries).
pub const IOAPIC_PINS: usize = 24;
/// Version register: version 0x20, max redirection entry 23.
pub const IOAPIC_VERSION: u32 = 0x20 | ((IOAPIC_PINS as u32 - 1) << 16);

pub const IOREGSEL: u64 = 0x00;
pub const IOWIN: u64 = 0x10;
pub const IOEOI: u64 = 0x40;

const MASKED: u64 = 1 << 16;
const LEVEL: u64 = 1 << 15;
const REMOTE_IRR: u64 = 1 << 14;
const ACTIVE_LOW: u64 = 1 << 13;
/// Guest-writable bits of an entry (not delivery status or Remote IRR).
const ENTRY_WRITABLE: u64 = 0xFF00_0000_0001_AFFF;

/// Counters of refused or ignored guest accesses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoApicStats {
    pub bad_reads: u64,
    pub bad_writes: u64,
    /// `set_irq` for a pin that does not exist.
    pub bad_pins: u64,
    pub delivered: u64,
}

/// The I/O APIC.
#[derive(Clone, Debug)]
pub struct IoApic {
    id: u8,
    ioregsel: u8,
    entries: [u64; IOAPIC_PINS],
    /// Raw input line levels (before polarity).
    lines: [bool; IOAPIC_PINS],
    stats: IoApicStats,
}

impl IoApic {
    /// Reset state: every entry masked.
    pub fn new(id: u8) -> Self {
        Self {
            id,
            ioregsel: 0,
            entries: [MASKED; IOAPIC_PINS],
            lines: [false; IOAPIC_PINS],
            stats: IoApicStats::default(),
        }
    }

    pub fn stats(&self) -> IoApicStats {
        self.stats
    }

    /// Redirection entry `pin` (64 bits), if it exists.
    pub fn entry(&self, pin: usize) -> Option<u64> {
        self.entries.get(pin).copied()
    }

    fn asserted(&self, pin: usize) -> bool {
        self.lines[pin] != (self.entries[pin] & ACTIVE_LOW != 0)
    }

    fn message(entry: u64) -> ApicMessage {
        ApicMessage {
            vector: entry as u8,
            delivery_mode: DeliveryMode::from_bits((entry >> 8) as u32),
            destination_mode: if entry & (1 << 11) != 0 { DestinationMode::Logical } else { DestinationMode::Physical },
            destination: (entry >> 56) as u8,
            trigger: if entry & LEVEL != 0 { TriggerMode::Level } else { TriggerMode::Edge },
            assert: true,
            shorthand: Shorthand::None,
        }
    }

    /// Sends a level-triggered pin's interrupt if it should be sent now.
    fn service_level(&mut self, pin: usize, out: &mut Deliveries) {
        let e = self.entries[pin];
        if e & LEVEL != 0 && e & MASKED == 0 && e & REMOTE_IRR == 0 && self.asserted(pin) {
            self.entries[pin] |= REMOTE_IRR;
            self.stats.delivered += 1;
            out.push(Self::message(e));
        }
    }

    /// Drives input `pin` to `level` (electrical level; polarity is applied
    /// per entry). Returns the messages to deliver.
    pub fn set_irq(&mut self, pin: usize, level: bool) -> Deliveries {
        let mut out = Deliveries::new();
        if pin >= IOAPIC_PINS {
            self.stats.bad_pins += 1;
            return out;
        }
        let was = self.asserted(pin);
        self.lines[pin] = level;
        let now = self.asserted(pin);
        let e = self.entries[pin];
        if e & LEVEL != 0 {
            self.service_level(pin, &mut out);
        } else if now && !was && e & MASKED == 0 {
            self.stats.delivered += 1;
            out.push(Self::message(e));
        }
        out
    }

    /// An EOI for `vector` (broadcast from a local APIC, or written to the
    /// EOI register): clears Remote IRR of the level entries with that
    /// vector and re-sends those still asserted.
    pub fn eoi(&mut self, vector: u8) -> Deliveries {
        let mut out = Deliveries::new();
        for pin in 0..IOAPIC_PINS {
            let e = self.entries[pin];
            if e & LEVEL != 0 && e as u8 == vector && e & REMOTE_IRR != 0 {
                self.entries[pin] &= !REMOTE_IRR;
                self.service_level(pin, &mut out);
            }
        }
        out
    }

    fn read_indirect(&mut self) -> u32 {
        let sel = usize::from(self.ioregsel);
        match sel {
            0x00 => u32::from(self.id & 0xF) << 24,
            0x01 => IOAPIC_VERSION,
            0x02 => u32::from(self.id & 0xF) << 24,
            0x10..=0x3F => {
                let e = self.entries[(sel - 0x10) / 2];
                if sel % 2 == 0 {
                    e as u32
                } else {
                    (e >> 32) as u32
                }
            }
            _ => {
                self.stats.bad_reads += 1;
                0
            }
        }
    }

    fn write_indirect(&mut self, value: u32) -> Deliveries {
        let mut out = Deliveries::new();
        let sel = usize::from(self.ioregsel);
        match sel {
            0x00 => self.id = ((value >> 24) & 0xF) as u8,
            0x10..=0x3F => {
                let pin = (sel - 0x10) / 2;
                let old = self.entries[pin];
                let new = if sel % 2 == 0 {
                    (old & !0xFFFF_FFFF) | u64::from(value)
                } else {
                    (old & 0xFFFF_FFFF) | (u64::from(value) << 32)
                };
                let mut e = (old & REMOTE_IRR) | (new & ENTRY_WRITABLE);
                if e & LEVEL == 0 {
                    e &= !REMOTE_IRR;
                }
                self.entries[pin] = e;
                // Unmasking (or switching to level) an asserted level line sends it.
                self.service_level(pin, &mut out);
            }
            _ => self.stats.bad_writes += 1,
        }
        out
    }

    /// A guest read of `size` bytes at `offset` in the I/O APIC page.
    /// IOREGSEL and IOWIN read at any width within their first dword;
    /// anything else reads 0 (counted).
    pub fn read(&mut self, offset: u64, size: u8) -> u64 {
        let within = offset & 3;
        let size = u64::from(size);
        if !matches!(size, 1 | 2 | 4) || within + size > 4 {
            self.stats.bad_reads += 1;
            return 0;
        }
        let v = match offset & !3 {
            IOREGSEL => u32::from(self.ioregsel),
            IOWIN => self.read_indirect(),
            _ => {
                self.stats.bad_reads += 1;
                return 0;
            }
        };
        (u64::from(v) >> (within * 8)) & (u64::MAX >> (64 - size * 8))
    }

    /// A guest write. IOREGSEL takes a byte or dword write; IOWIN and EOI
    /// need an aligned dword. Returns the messages to deliver.
    pub fn write(&mut self, offset: u64, size: u8, value: u64) -> Deliveries {
        match (offset, size) {
            (IOREGSEL, 1 | 2 | 4) => {
                self.ioregsel = value as u8;
                Deliveries::new()
            }
            (IOWIN, 4) => self.write_indirect(value as u32),
            (IOEOI, 4) => self.eoi(value as u8),
            _ => {
                self.stats.bad_writes += 1;
                Deliveries::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(io: &mut IoApic, pin: u8, low: u32, high: u32) -> Deliveries {
        io.write(IOREGSEL, 4, u64::from(0x11 + 2 * pin));
        io.write(IOWIN, 4, u64::from(high));
        io.write(IOREGSEL, 4, u64::from(0x10 + 2 * pin));
        io.write(IOWIN, 4, u64::from(low))
    }

    fn read_ind(io: &mut IoApic, sel: u8) -> u32 {
        io.write(IOREGSEL, 1, u64::from(sel));
        io.read(IOWIN, 4) as u32
    }

    #[test]
    fn id_version_arbitration_and_reset_state() {
        let mut io = IoApic::new(0);
        assert_eq!(read_ind(&mut io, 1), 0x0017_0020);
        // Linux io_apic_get_unique_id / setup_ioapic_ids_from_mpc: write ID, read back.
        io.write(IOREGSEL, 4, 0);
        io.write(IOWIN, 4, 2 << 24);
        assert_eq!(read_ind(&mut io, 0), 2 << 24);
        assert_eq!(read_ind(&mut io, 2), 2 << 24);
        for pin in 0..24u8 {
            assert_eq!(read_ind(&mut io, 0x10 + 2 * pin), 1 << 16);
        }
        assert_eq!(io.read(IOREGSEL, 1), 0x3E);
    }

    #[test]
    fn edge_entry_delivers_on_rising_edges_only() {
        let mut io = IoApic::new(0);
        // Pin 4 (COM1): vector 0x24, fixed, physical, dest 1, edge, high.
        assert!(program(&mut io, 4, 0x24, 1 << 24).is_empty());
        let d = io.set_irq(4, true);
        let m = d.iter().next().copied().unwrap();
        assert_eq!((m.vector, m.destination, m.trigger), (0x24, 1, TriggerMode::Edge));
        assert!(io.set_irq(4, true).is_empty());
        assert!(io.set_irq(4, false).is_empty());
        assert_eq!(io.set_irq(4, true).len(), 1);
        // Masked: no delivery.
        io.set_irq(4, false);
        program(&mut io, 4, 0x1_0024, 1 << 24);
        assert!(io.set_irq(4, true).is_empty());
    }

    #[test]
    fn level_entry_remote_irr_and_eoi() {
        let mut io = IoApic::new(0);
        // Pin 9 (SCI): vector 0x29, level, active high, logical dest 1.
        program(&mut io, 9, 0x8829, 1 << 24);
        let d = io.set_irq(9, true);
        assert_eq!(d.len(), 1);
        assert_eq!(d.iter().next().unwrap().destination_mode, DestinationMode::Logical);
        assert_ne!(io.entry(9).unwrap() & REMOTE_IRR, 0);
        assert!(io.set_irq(9, true).is_empty());
        // EOI with the line still high: re-delivered.
        assert_eq!(io.eoi(0x29).len(), 1);
        // Line drops, EOI: nothing more.
        io.set_irq(9, false);
        assert!(io.eoi(0x29).is_empty());
        assert_eq!(io.entry(9).unwrap() & REMOTE_IRR, 0);
        // Guest cannot write Remote IRR.
        program(&mut io, 9, 0xC829, 0);
        assert_eq!(io.entry(9).unwrap() & REMOTE_IRR, 0);
    }

    #[test]
    fn unmasking_an_asserted_level_line_delivers_and_eoi_register() {
        let mut io = IoApic::new(0);
        program(&mut io, 9, 0x1_8031, 0);
        assert!(io.set_irq(9, true).is_empty());
        assert_eq!(program(&mut io, 9, 0x8031, 0).len(), 1);
        assert_eq!(io.write(IOEOI, 4, 0x31).len(), 1);
    }

    #[test]
    fn active_low_polarity() {
        let mut io = IoApic::new(0);
        program(&mut io, 10, 0x2035, 0);
        // Line high = deasserted for active low.
        assert!(io.set_irq(10, true).is_empty());
        assert_eq!(io.set_irq(10, false).len(), 1);
    }

    #[test]
    fn bad_accesses_counted() {
        let mut io = IoApic::new(0);
        assert_eq!(io.read(0x20, 4), 0);
        assert_eq!(read_ind(&mut io, 0x40), 0);
        io.write(IOWIN, 2, 0);
        io.write(IOREGSEL, 4, 0x03);
        io.write(IOWIN, 4, 0);
        assert!(io.set_irq(24, true).is_empty());
        let s = io.stats();
        assert_eq!((s.bad_reads, s.bad_writes, s.bad_pins), (2, 2, 1));
    }
}
