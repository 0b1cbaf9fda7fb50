//! Interim device models for the Linux guest: the 16550 UART on COM1, the
//! ACPI PM1 block and PM timer, the reset ports, one I/O APIC and the
//! interrupt routing to the per-vCPU xAPICs (`lapic.rs`). Just enough for
//! the boot path; the full, host-tested models are the job of
//! `sinter-guest-devices` (services/platform/devices), which replaces this
//! file when it lands. Every guest access is bounds-checked: a bad
//! register or width reads as all ones / is dropped and counted, never a
//! panic.

use alloc::string::String;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use sinter_guest_acpi::{PmRegisters, S5_SLP_TYP};

use crate::kprintln;

/// What a port write asks of the VM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlatformEvent {
    None,
    /// ACPI S5 (PM1_CNT with SLP_EN and SLP_TYP 5).
    PowerOff,
    /// A reset through port 0xCF9 or the keyboard controller.
    Reset,
}

/// An interrupt the I/O APIC routes to a local APIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub vector: u8,
    /// Physical APIC ID, or a logical mask when `logical`.
    pub destination: u8,
    pub logical: bool,
    pub level: bool,
    /// Delivery mode 1: lowest priority (any one matching vCPU).
    pub lowest_priority: bool,
}

// ---------------------------------------------------------------- UART --

const IER_RDI: u8 = 0x01;
const IER_THRI: u8 = 0x02;
const LCR_DLAB: u8 = 0x80;
const MCR_LOOP: u8 = 0x10;

/// A 16550A with an always-empty transmitter and no input.
#[derive(Default)]
pub struct Uart {
    ier: u8,
    lcr: u8,
    mcr: u8,
    scr: u8,
    dll: u8,
    dlm: u8,
    fifo: bool,
    thre_pending: bool,
    /// A byte written in loopback mode, readable from RBR.
    loopback: Option<u8>,
    line: String,
    irq_level: bool,
}

impl Uart {
    /// Whether the interrupt line is asserted.
    fn level(&self) -> bool {
        (self.thre_pending && self.ier & IER_THRI != 0) || (self.loopback.is_some() && self.ier & IER_RDI != 0)
    }

    /// Returns true on a rising edge of the IRQ line.
    fn update_irq(&mut self) -> bool {
        let level = self.level();
        let rising = level && !self.irq_level;
        self.irq_level = level;
        rising
    }

    fn emit(&mut self, byte: u8) {
        match byte {
            b'\n' => {
                kprintln!("{}", self.line);
                self.line.clear();
            }
            b'\r' => {}
            0x20..=0x7e | b'\t' if self.line.len() < 512 => self.line.push(char::from(byte)),
            _ => {}
        }
    }

    pub fn read(&mut self, offset: u16) -> (u8, bool) {
        let dlab = self.lcr & LCR_DLAB != 0;
        let value = match offset {
            0 if dlab => self.dll,
            0 => self.loopback.take().unwrap_or(0),
            1 if dlab => self.dlm,
            1 => self.ier,
            2 => {
                let fifo = if self.fifo { 0xc0 } else { 0 };
                if self.thre_pending && self.ier & IER_THRI != 0 {
                    // Reading IIR acknowledges the THRE interrupt.
                    self.thre_pending = false;
                    fifo | 0x02
                } else if self.loopback.is_some() && self.ier & IER_RDI != 0 {
                    fifo | 0x04
                } else {
                    fifo | 0x01
                }
            }
            3 => self.lcr,
            4 => self.mcr,
            5 => 0x60 | u8::from(self.loopback.is_some()),
            6 => {
                if self.mcr & MCR_LOOP != 0 {
                    ((self.mcr & 0x0c) << 4) | ((self.mcr & 0x01) << 5) | ((self.mcr & 0x02) << 3)
                } else {
                    0xb0
                }
            }
            _ => self.scr,
        };
        (value, self.update_irq())
    }

    /// Returns true on a rising edge of the IRQ line.
    pub fn write(&mut self, offset: u16, value: u8) -> bool {
        let dlab = self.lcr & LCR_DLAB != 0;
        match offset {
            0 if dlab => self.dll = value,
            0 => {
                if self.mcr & MCR_LOOP != 0 {
                    self.loopback = Some(value);
                } else {
                    self.emit(value);
                }
                self.thre_pending = true;
            }
            1 if dlab => self.dlm = value,
            1 => {
                let old = self.ier;
                self.ier = value & 0x0f;
                if self.ier & IER_THRI != 0 && old & IER_THRI == 0 {
                    self.thre_pending = true;
                }
            }
            2 => self.fifo = value & 1 != 0,
            3 => self.lcr = value,
            4 => self.mcr = value & 0x1f,
            7 => self.scr = value,
            _ => {}
        }
        self.update_irq()
    }
}

// ------------------------------------------------------------- ACPI PM --

const PM1_SLP_EN: u16 = 1 << 13;
const PM1_SCI_EN: u16 = 1;
const PM_TIMER_HZ: u128 = 3_579_545;

#[derive(Default)]
pub struct Pm {
    sts: u16,
    en: u16,
    cnt: u16,
}

impl Pm {
    fn timer(&self, tsc: u64, tsc_hz: u64) -> u32 {
        (u128::from(tsc) * PM_TIMER_HZ / u128::from(tsc_hz.max(1))) as u32
    }
}

// --------------------------------------------------------------- IOAPIC --

pub const IOAPIC_BASE: u64 = 0xfec0_0000;
const IOAPIC_PINS: usize = 24;
const REDIR_MASKED: u64 = 1 << 16;
const REDIR_LEVEL: u64 = 1 << 15;
const REDIR_REMOTE_IRR: u64 = 1 << 14;

pub struct IoApic {
    select: u32,
    id: u32,
    redir: [u64; IOAPIC_PINS],
    asserted: [bool; IOAPIC_PINS],
}

impl Default for IoApic {
    fn default() -> Self {
        Self { select: 0, id: 0, redir: [REDIR_MASKED; IOAPIC_PINS], asserted: [false; IOAPIC_PINS] }
    }
}

impl IoApic {
    fn delivery(&self, pin: usize) -> Option<Delivery> {
        let r = self.redir[pin];
        if r & REDIR_MASKED != 0 {
            return None;
        }
        let mode = (r >> 8) & 7;
        if mode > 1 {
            // SMI/NMI/INIT/ExtINT from an ISA pin: not modelled.
            return None;
        }
        Some(Delivery {
            vector: r as u8,
            destination: (r >> 56) as u8,
            logical: r & (1 << 11) != 0,
            level: r & REDIR_LEVEL != 0,
            lowest_priority: mode == 1,
        })
    }

    fn mmio_read(&self, offset: u64) -> u32 {
        match offset {
            0x00 => self.select,
            0x10 => match self.select {
                0 => self.id << 24,
                1 => 0x0017_0020, // 24 entries, version 0x20
                2 => self.id << 24,
                r @ 0x10..=0x3f => {
                    let entry = self.redir[((r - 0x10) / 2) as usize];
                    if r % 2 == 0 {
                        entry as u32
                    } else {
                        (entry >> 32) as u32
                    }
                }
                _ => u32::MAX,
            },
            _ => u32::MAX,
        }
    }

    /// Returns a delivery when unmasking a still-asserted level pin.
    fn mmio_write(&mut self, offset: u64, value: u32) -> Option<Delivery> {
        match offset {
            0x00 => self.select = value & 0xff,
            0x10 => match self.select {
                0 => self.id = (value >> 24) & 0xf,
                r @ 0x10..=0x3f => {
                    let pin = ((r - 0x10) / 2) as usize;
                    let entry = &mut self.redir[pin];
                    if r % 2 == 0 {
                        // Remote IRR and delivery status are read-only.
                        let keep = *entry & (REDIR_REMOTE_IRR | (1 << 12));
                        *entry = (*entry & !0xffff_ffff) | (u64::from(value) & !(REDIR_REMOTE_IRR | (1 << 12))) | keep;
                    } else {
                        *entry = (*entry & 0xffff_ffff) | (u64::from(value) << 32);
                    }
                    return self.retrigger(pin);
                }
                _ => {}
            },
            0x40 => return self.eoi(value as u8),
            _ => {}
        }
        None
    }

    fn retrigger(&mut self, pin: usize) -> Option<Delivery> {
        let r = self.redir[pin];
        if self.asserted[pin] && r & REDIR_LEVEL != 0 && r & REDIR_REMOTE_IRR == 0 {
            let d = self.delivery(pin)?;
            self.redir[pin] |= REDIR_REMOTE_IRR;
            return Some(d);
        }
        None
    }

    /// Sets a pin's input level; returns what to deliver (edge: on a rising
    /// edge; level: while asserted and not waiting for an EOI).
    pub fn set_pin(&mut self, pin: usize, level: bool) -> Option<Delivery> {
        let was = *self.asserted.get(pin)?;
        self.asserted[pin] = level;
        let r = self.redir[pin];
        if r & REDIR_LEVEL != 0 {
            return self.retrigger(pin);
        }
        if level && !was {
            return self.delivery(pin);
        }
        None
    }

    /// EOI for `vector` (from a local APIC or the EOI register).
    pub fn eoi(&mut self, vector: u8) -> Option<Delivery> {
        let mut again = None;
        for pin in 0..IOAPIC_PINS {
            if self.redir[pin] as u8 == vector && self.redir[pin] & REDIR_REMOTE_IRR != 0 {
                self.redir[pin] &= !REDIR_REMOTE_IRR;
                again = again.or(self.retrigger(pin));
            }
        }
        again
    }
}

// ------------------------------------------------------------- platform --

/// Ports that always read as all ones and drop writes without a log line
/// (probed by Linux for devices Sinter does not have: legacy PIC, PIT,
/// CMOS, PCI config, other COM ports, VGA, POST code).
fn quiet_port(port: u16) -> bool {
    matches!(port, 0x20 | 0x21 | 0xa0 | 0xa1 | 0x40..=0x43 | 0x61 | 0x70 | 0x71 | 0x80 | 0x87 | 0xcf8..=0xcff | 0x2f8..=0x2ff | 0x3e8..=0x3ef | 0x2e8..=0x2ef | 0x3b0..=0x3df | 0x4d0 | 0x4d1 | 0xed)
}

/// The shared (boot-node) devices, behind the VM's lock.
#[derive(Default)]
pub struct Platform {
    pub uart: Uart,
    pm: Pm,
    pub ioapic: IoApic,
    /// Accesses to ports nothing answers (first ones are logged).
    pub unknown_ports: u32,
}

/// Where the interrupt from a port or MMIO access goes.
pub type Deliveries = heapless_deliveries::Two;

mod heapless_deliveries {
    use super::Delivery;
    /// At most two deliveries come out of one access.
    #[derive(Default)]
    pub struct Two(pub [Option<Delivery>; 2]);
    impl Two {
        pub fn push(&mut self, d: Option<Delivery>) {
            if let Some(d) = d {
                if self.0[0].is_none() {
                    self.0[0] = Some(d);
                } else {
                    self.0[1] = Some(d);
                }
            }
        }
    }
}

pub const COM1: u16 = 0x3f8;
const COM1_IRQ: usize = 4;

impl Platform {
    /// IN from `port` of `size` bytes.
    pub fn port_read(&mut self, port: u16, size: u8, tsc: u64, tsc_hz: u64, out: &mut Deliveries) -> u32 {
        let pm = PmRegisters::SINTER;
        match port {
            COM1..=0x3ff if size == 1 => {
                let (value, rising) = self.uart.read(port - COM1);
                if rising {
                    out.push(self.ioapic.set_pin(COM1_IRQ, true));
                    self.ioapic.set_pin(COM1_IRQ, false);
                }
                u32::from(value)
            }
            p if p == pm.pm1a_event => u32::from(self.pm.sts) | (u32::from(self.pm.en) << 16),
            p if p == pm.pm1a_event + 2 => u32::from(self.pm.en),
            p if p == pm.pm1a_control => u32::from(self.pm.cnt | PM1_SCI_EN),
            p if p == pm.pm_timer => self.pm.timer(tsc, tsc_hz),
            p if quiet_port(p) => u32::MAX,
            p => {
                self.unknown(p, "read");
                u32::MAX
            }
        }
    }

    /// OUT of `value` to `port`.
    pub fn port_write(&mut self, port: u16, size: u8, value: u32, out: &mut Deliveries) -> PlatformEvent {
        let pm = PmRegisters::SINTER;
        match port {
            COM1..=0x3ff if size == 1 => {
                if self.uart.write(port - COM1, value as u8) {
                    out.push(self.ioapic.set_pin(COM1_IRQ, true));
                    self.ioapic.set_pin(COM1_IRQ, false);
                }
            }
            p if p == pm.pm1a_event => {
                self.pm.sts &= !(value as u16);
                if size == 4 {
                    self.pm.en = (value >> 16) as u16;
                }
            }
            p if p == pm.pm1a_event + 2 => self.pm.en = value as u16,
            p if p == pm.pm1a_control => {
                let v = value as u16;
                self.pm.cnt = v & !PM1_SLP_EN;
                if v & PM1_SLP_EN != 0 && (v >> 10) & 7 == u16::from(S5_SLP_TYP) {
                    return PlatformEvent::PowerOff;
                }
                if v & PM1_SLP_EN != 0 {
                    kprintln!("guest: sleep state SLP_TYP={} requested; only S5 is modelled", (v >> 10) & 7);
                }
            }
            0xcf9 if value & 0x4 != 0 => return PlatformEvent::Reset,
            0x64 if value as u8 == 0xfe => return PlatformEvent::Reset,
            p if quiet_port(p) || p == 0x64 || p == 0x60 || p == 0xcf9 => {}
            p => self.unknown(p, "write"),
        }
        PlatformEvent::None
    }

    fn unknown(&mut self, port: u16, what: &str) {
        self.unknown_ports = self.unknown_ports.saturating_add(1);
        if self.unknown_ports <= 16 {
            kprintln!("guest: port {what} {port:#x}: no device (reads all ones)");
        }
    }

    pub fn ioapic_read(&self, offset: u64) -> u32 {
        self.ioapic.mmio_read(offset)
    }

    pub fn ioapic_write(&mut self, offset: u64, value: u32, out: &mut Deliveries) {
        out.push(self.ioapic.mmio_write(offset, value));
    }
}

/// Per-vCPU interrupt state other vCPUs and devices post into: the IRR
/// (256 bits), the trigger mode of each posted vector, and NMI / INIT /
/// SIPI mailboxes. The owning vCPU takes from it before each VMRUN.
pub struct InterruptMailbox {
    pub irr: [AtomicU32; 8],
    pub level: [AtomicU32; 8],
    /// Bit 0: NMI, bit 1: INIT, bit 8: SIPI valid (vector in bits 7:0 of `sipi`).
    pub flags: AtomicU32,
    pub sipi: AtomicU32,
    /// The xAPIC ID and logical destination (LDR bits 31:24), DFR model,
    /// kept here for routing.
    pub apic_id: AtomicU32,
    pub ldr: AtomicU32,
    pub dfr: AtomicU32,
    /// Bumped on every post (for wake-ups and tests).
    pub posts: AtomicU64,
}

pub const FLAG_NMI: u32 = 1 << 0;
pub const FLAG_INIT: u32 = 1 << 1;
pub const FLAG_SIPI: u32 = 1 << 8;

impl InterruptMailbox {
    pub const fn new(apic_id: u32) -> Self {
        Self {
            irr: [const { AtomicU32::new(0) }; 8],
            level: [const { AtomicU32::new(0) }; 8],
            flags: AtomicU32::new(0),
            sipi: AtomicU32::new(0),
            apic_id: AtomicU32::new(apic_id),
            ldr: AtomicU32::new(0),
            dfr: AtomicU32::new(u32::MAX),
            posts: AtomicU64::new(0),
        }
    }

    pub fn post(&self, vector: u8, level: bool) {
        let (word, bit) = (usize::from(vector / 32), 1u32 << (vector % 32));
        if level {
            self.level[word].fetch_or(bit, Ordering::AcqRel);
        } else {
            self.level[word].fetch_and(!bit, Ordering::AcqRel);
        }
        self.irr[word].fetch_or(bit, Ordering::AcqRel);
        self.posts.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether a (physical or logical) destination names this APIC.
    pub fn matches(&self, destination: u8, logical: bool) -> bool {
        if logical {
            let ldr = (self.ldr.load(Ordering::Acquire) >> 24) as u8;
            let flat = self.dfr.load(Ordering::Acquire) >> 28 == 0xf;
            if flat {
                ldr & destination != 0
            } else {
                // Cluster model: high nibble cluster, low nibble members.
                (ldr >> 4) == (destination >> 4) && (ldr & destination & 0xf) != 0
            }
        } else {
            destination == 0xff || u32::from(destination) == self.apic_id.load(Ordering::Acquire)
        }
    }
}
