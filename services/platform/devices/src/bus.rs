//! [`PlatformBus`]: the devices every vCPU shares (I/O APIC, UART, PM
//! block, reset control, i8042, PIC pair, PIT + port 0x61, RTC, port 0x80),
//! dispatched by port number and size, plus MMIO dispatch for the I/O APIC
//! page. Local APICs are per vCPU and stay with the caller.
//!
//! Port accesses of 1, 2 or 4 bytes are split into byte accesses to
//! `port`, `port + 1`, ... as an ISA bus does; every model here is byte
//! granular (the PM block too: its 16/32-bit registers are assembled from
//! bytes read at the same `now`). An access is handled when its first port
//! belongs to a device; bytes beyond that no device claims read 0xFF. An
//! unhandled access ([`IoOutcome::handled`] false, value all ones) is for
//! the caller to report. Port 0xCF9 is claimed for byte accesses only, so
//! a dword access to the PCI configuration address port 0xCF8 stays
//! unhandled (there is no PCI).
//!
//! Interrupt lines: after every operation the bus compares the UART's and
//! the SCI's line levels with what it last drove into the I/O APIC and
//! passes changes on (ISA IRQ n → GSI n, IRQ 0 → GSI 2, as the MADT's
//! overrides say); PIT channel 0 pulses GSI 2. Resulting messages come
//! back in [`IoOutcome::interrupts`] for the caller to route. Nothing is
//! routed through the 8259s and the RTC raises no interrupt.

use sinter_guest_acpi::GuestMachine;

use crate::i8042::{I8042, I8042_COMMAND_PORT, I8042_DATA_PORT};
use crate::ioapic::{IoApic, IOAPIC_PINS};
use crate::msg::Deliveries;
use crate::pic::Pic;
use crate::pit::{Pit, SYSTEM_CONTROL_B_PORT};
use crate::pm::{PmBlock, PowerEvent, ResetControl, RESET_CONTROL_PORT};
use crate::rtc::{Rtc, RTC_DATA_PORT, RTC_INDEX_PORT};
use crate::uart::{RxFull, SerialSink, Uart};

/// The POST diagnostic port (writes ignored, used by Linux as an I/O delay).
pub const POST_PORT: u16 = 0x80;

/// What an access did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoOutcome {
    /// Whether a device claimed the access. If not, the caller reports it
    /// (and a read returns all ones, as `value` already does).
    pub handled: bool,
    /// The value read (0 for writes).
    pub value: u64,
    /// Interrupt messages to route to local APICs.
    pub interrupts: Deliveries,
    /// A power transition the guest asked for.
    pub power: Option<PowerEvent>,
}

impl IoOutcome {
    fn new() -> Self {
        Self { handled: true, value: 0, interrupts: Deliveries::new(), power: None }
    }

    fn unhandled(size: u8) -> Self {
        let bits = u32::from(size.clamp(1, 8)) * 8;
        Self { handled: false, value: u64::MAX >> (64 - bits), interrupts: Deliveries::new(), power: None }
    }
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BusStats {
    pub unhandled_port_reads: u64,
    pub unhandled_port_writes: u64,
    pub unhandled_mmio: u64,
    /// Port accesses with a size other than 1, 2 or 4.
    pub bad_sizes: u64,
    /// POST codes written to port 0x80.
    pub post_writes: u64,
    pub last_post_code: u8,
}

/// The shared platform devices.
#[derive(Clone, Debug)]
pub struct PlatformBus<S: SerialSink> {
    ioapic: IoApic,
    ioapic_base: u64,
    gsi_base: u32,
    uart: Option<(u16, u8, Uart<S>)>,
    pm: PmBlock,
    reset: ResetControl,
    kbc: I8042,
    pic: Option<Pic>,
    pit: Pit,
    rtc: Rtc,
    uart_line: bool,
    sci_line: bool,
    stats: BusStats,
}

impl<S: SerialSink> PlatformBus<S> {
    /// The devices `machine` (the description the ACPI tables were built
    /// from) says exist. `sink` receives UART output (dropped if the
    /// machine has no UART); the RTC reads `wall_clock_secs` (Unix time,
    /// UTC) at `now`, and the PM timer reads 0 at `now`.
    pub fn new(machine: &GuestMachine, sink: S, wall_clock_secs: u64, now: u64) -> Self {
        Self {
            ioapic: IoApic::new(machine.ioapic.id),
            ioapic_base: u64::from(machine.ioapic.address),
            gsi_base: machine.ioapic.gsi_base,
            uart: machine.uart.map(|u| (u.port, u.irq, Uart::new(sink))),
            pm: PmBlock::new(machine.pm, now),
            reset: ResetControl::default(),
            kbc: I8042::default(),
            pic: machine.legacy_pic.then(Pic::new),
            pit: Pit::new(),
            rtc: Rtc::new(wall_clock_secs, now),
            uart_line: false,
            sci_line: false,
            stats: BusStats::default(),
        }
    }

    pub fn stats(&self) -> BusStats {
        self.stats
    }
    pub fn ioapic(&self) -> &IoApic {
        &self.ioapic
    }
    pub fn uart(&self) -> Option<&Uart<S>> {
        self.uart.as_ref().map(|(_, _, u)| u)
    }
    pub fn uart_mut(&mut self) -> Option<&mut Uart<S>> {
        self.uart.as_mut().map(|(_, _, u)| u)
    }
    pub fn pm(&self) -> &PmBlock {
        &self.pm
    }
    pub fn pic(&self) -> Option<&Pic> {
        self.pic.as_ref()
    }
    pub fn pit(&self) -> &Pit {
        &self.pit
    }
    pub fn rtc(&self) -> &Rtc {
        &self.rtc
    }
    pub fn rtc_mut(&mut self) -> &mut Rtc {
        &mut self.rtc
    }
    pub fn i8042(&self) -> &I8042 {
        &self.kbc
    }

    /// The I/O APIC pin of ISA IRQ `irq` (IRQ 0 → GSI 2).
    fn isa_pin(&self, irq: u8) -> Option<usize> {
        let gsi = if irq == 0 { 2 } else { u32::from(irq) };
        let pin = gsi.checked_sub(self.gsi_base)? as usize;
        (pin < IOAPIC_PINS).then_some(pin)
    }

    /// Drives changed device lines into the I/O APIC.
    fn sync_lines(&mut self, now: u64, out: &mut Deliveries) {
        if let Some((_, irq, uart)) = &self.uart {
            let (irq, level) = (*irq, uart.irq_level());
            if level != self.uart_line {
                self.uart_line = level;
                if let Some(pin) = self.isa_pin(irq) {
                    out.extend(&self.ioapic.set_irq(pin, level));
                }
            }
        }
        let sci = self.pm.sci_level(now);
        if sci != self.sci_line {
            self.sci_line = sci;
            if let Some(pin) = self.isa_pin(self.pm.registers().sci_irq) {
                out.extend(&self.ioapic.set_irq(pin, sci));
            }
        }
    }

    fn uart_offset(&self, port: u16) -> Option<u16> {
        let (base, _, _) = self.uart.as_ref()?;
        let o = port.wrapping_sub(*base);
        (o < 8).then_some(o)
    }

    /// Whether a device claims an access of `size` bytes starting at `port`.
    pub fn claims_port(&self, port: u16, size: u8) -> bool {
        match port {
            RESET_CONTROL_PORT => size == 1,
            0x20 | 0x21 | 0xA0 | 0xA1 | 0x4D0 | 0x4D1 => self.pic.is_some(),
            0x40..=0x43 | SYSTEM_CONTROL_B_PORT | I8042_DATA_PORT | I8042_COMMAND_PORT => true,
            RTC_INDEX_PORT | RTC_DATA_PORT | POST_PORT => true,
            _ => self.uart_offset(port).is_some() || self.pm.claims(port),
        }
    }

    fn read_byte(&mut self, port: u16, now: u64) -> u8 {
        if let Some(o) = self.uart_offset(port) {
            return self.uart.as_mut().map_or(0xFF, |(_, _, u)| u.read(o));
        }
        if self.pm.claims(port) {
            return self.pm.read_byte(port, now);
        }
        match port {
            RESET_CONTROL_PORT => self.reset.read(),
            0x20 | 0x21 | 0xA0 | 0xA1 | 0x4D0 | 0x4D1 => self.pic.as_mut().map_or(0xFF, |p| p.read(port)),
            0x40..=0x43 => self.pit.read(port, now),
            SYSTEM_CONTROL_B_PORT => self.pit.read_port61(now),
            I8042_DATA_PORT => self.kbc.read_data(),
            I8042_COMMAND_PORT => self.kbc.read_status(),
            RTC_INDEX_PORT | RTC_DATA_PORT => self.rtc.read(port, now),
            _ => 0xFF,
        }
    }

    fn write_byte(&mut self, port: u16, value: u8, now: u64) -> Option<PowerEvent> {
        if let Some(o) = self.uart_offset(port) {
            if let Some((_, _, u)) = self.uart.as_mut() {
                u.write(o, value);
            }
            return None;
        }
        if self.pm.claims(port) {
            return self.pm.write_byte(port, value, now);
        }
        match port {
            RESET_CONTROL_PORT => return self.reset.write(value),
            0x20 | 0x21 | 0xA0 | 0xA1 | 0x4D0 | 0x4D1 => {
                if let Some(p) = self.pic.as_mut() {
                    p.write(port, value);
                }
            }
            0x40..=0x43 => self.pit.write(port, value, now),
            SYSTEM_CONTROL_B_PORT => self.pit.write_port61(value, now),
            I8042_DATA_PORT => self.kbc.write_data(value),
            I8042_COMMAND_PORT => return self.kbc.write_command(value),
            RTC_INDEX_PORT | RTC_DATA_PORT => self.rtc.write(port, value, now),
            POST_PORT => {
                self.stats.post_writes += 1;
                self.stats.last_post_code = value;
            }
            _ => {}
        }
        None
    }

    /// A guest `IN` of `size` bytes from `port` at `now`.
    pub fn port_read(&mut self, port: u16, size: u8, now: u64) -> IoOutcome {
        if !matches!(size, 1 | 2 | 4) {
            self.stats.bad_sizes += 1;
            return IoOutcome::unhandled(size);
        }
        if !self.claims_port(port, size) {
            self.stats.unhandled_port_reads += 1;
            return IoOutcome::unhandled(size);
        }
        let mut out = IoOutcome::new();
        for i in 0..size {
            let p = port.wrapping_add(u16::from(i));
            let byte =
                if i == 0 || self.claims_port(p, 1) && p != RESET_CONTROL_PORT { self.read_byte(p, now) } else { 0xFF };
            out.value |= u64::from(byte) << (8 * i);
        }
        self.sync_lines(now, &mut out.interrupts);
        out
    }

    /// A guest `OUT` of the low `size` bytes of `value` to `port` at `now`.
    pub fn port_write(&mut self, port: u16, size: u8, value: u32, now: u64) -> IoOutcome {
        if !matches!(size, 1 | 2 | 4) {
            self.stats.bad_sizes += 1;
            return IoOutcome::unhandled(size);
        }
        if !self.claims_port(port, size) {
            self.stats.unhandled_port_writes += 1;
            return IoOutcome::unhandled(size);
        }
        let mut out = IoOutcome::new();
        for i in 0..size {
            let p = port.wrapping_add(u16::from(i));
            if i == 0 || self.claims_port(p, 1) && p != RESET_CONTROL_PORT {
                let event = self.write_byte(p, (value >> (8 * i)) as u8, now);
                out.power = out.power.or(event);
            }
        }
        self.sync_lines(now, &mut out.interrupts);
        out
    }

    /// Whether guest-physical `addr` is in the I/O APIC page.
    pub fn claims_mmio(&self, addr: u64) -> bool {
        addr.wrapping_sub(self.ioapic_base) < 0x1000
    }

    /// A guest MMIO read of `size` bytes at `addr`.
    pub fn mmio_read(&mut self, addr: u64, size: u8, now: u64) -> IoOutcome {
        if !self.claims_mmio(addr) {
            self.stats.unhandled_mmio += 1;
            return IoOutcome::unhandled(size);
        }
        let mut out = IoOutcome::new();
        out.value = self.ioapic.read(addr - self.ioapic_base, size);
        self.sync_lines(now, &mut out.interrupts);
        out
    }

    /// A guest MMIO write of `size` bytes at `addr`.
    pub fn mmio_write(&mut self, addr: u64, size: u8, value: u64, now: u64) -> IoOutcome {
        if !self.claims_mmio(addr) {
            self.stats.unhandled_mmio += 1;
            return IoOutcome::unhandled(size);
        }
        let mut out = IoOutcome::new();
        out.interrupts = self.ioapic.write(addr - self.ioapic_base, size, value);
        self.sync_lines(now, &mut out.interrupts);
        out
    }

    /// A local APIC's EOI of a level-triggered `vector` (see
    /// [`crate::LapicEffect::Eoi`]): may re-deliver a still-asserted line.
    pub fn eoi(&mut self, vector: u8, now: u64) -> IoOutcome {
        let mut out = IoOutcome::new();
        out.interrupts = self.ioapic.eoi(vector);
        self.sync_lines(now, &mut out.interrupts);
        out
    }

    /// Queues a byte of host input for the guest's UART.
    pub fn push_uart_input(&mut self, byte: u8, now: u64) -> Result<IoOutcome, RxFull> {
        let Some((_, _, uart)) = self.uart.as_mut() else { return Err(RxFull) };
        uart.push_input(byte)?;
        let mut out = IoOutcome::new();
        self.sync_lines(now, &mut out.interrupts);
        Ok(out)
    }

    /// When [`Self::tick`] must next be called (PIT channel 0, PM timer
    /// overflow status), if ever.
    pub fn next_deadline(&self) -> Option<u64> {
        match (self.pit.next_deadline(), self.pm.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Catches the timers up to `now`.
    pub fn tick(&mut self, now: u64) -> IoOutcome {
        let mut out = IoOutcome::new();
        if self.pit.tick(now) {
            if let Some(pin) = self.isa_pin(0) {
                out.interrupts.extend(&self.ioapic.set_irq(pin, true));
                out.interrupts.extend(&self.ioapic.set_irq(pin, false));
            }
        }
        self.sync_lines(now, &mut out.interrupts);
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ioapic::{IOREGSEL, IOWIN};
    use crate::msg::{ApicMessage, TriggerMode};
    use crate::pm::{S5_SLP_TYP, SLP_EN, TMR_EN};
    use sinter_guest_acpi::{GuestMemoryRange, IsaSerial, NumaDistances, PmRegisters, VcpuPlacement};

    #[derive(Default, Debug, Clone)]
    pub(crate) struct Capture(pub Vec<u8>);
    impl SerialSink for Capture {
        fn write_byte(&mut self, byte: u8) {
            self.0.push(byte);
        }
    }

    pub(crate) fn machine() -> GuestMachine {
        GuestMachine {
            vcpus: vec![VcpuPlacement { apic_id: 0, numa_node: 0 }],
            memory: vec![GuestMemoryRange { base: 0, len: 1 << 30, numa_node: 0 }],
            numa_distances: NumaDistances::default(),
            ioapic: sinter_guest_acpi::IoApic::default(),
            uart: Some(IsaSerial::COM1),
            pm: PmRegisters::SINTER,
            legacy_pic: true,
            table_address: 0xE_0000,
        }
    }

    pub(crate) fn bus() -> PlatformBus<Capture> {
        PlatformBus::new(&machine(), Capture::default(), 1_795_606_410, 0)
    }

    fn route(b: &mut PlatformBus<Capture>, pin: u8, low: u32) {
        let base = 0xFEC0_0000;
        b.mmio_write(base + IOREGSEL, 4, u64::from(0x11 + 2 * pin), 0);
        b.mmio_write(base + IOWIN, 4, 0, 0);
        b.mmio_write(base + IOREGSEL, 4, u64::from(0x10 + 2 * pin), 0);
        b.mmio_write(base + IOWIN, 4, u64::from(low), 0);
    }

    fn only(out: &IoOutcome) -> ApicMessage {
        assert_eq!(out.interrupts.len(), 1, "{out:?}");
        *out.interrupts.iter().next().unwrap()
    }

    #[test]
    fn unknown_ports_are_unhandled_and_read_all_ones() {
        let mut b = bus();
        let r = b.port_read(0xCF8, 4, 0);
        assert!(!r.handled);
        assert_eq!(r.value, 0xFFFF_FFFF);
        assert!(!b.port_write(0xCF8, 4, 0x8000_0000, 0).handled);
        assert_eq!(b.port_read(0x2F8, 1, 0).value, 0xFF);
        assert!(!b.port_read(0x3F8, 3, 0).handled);
        assert!(!b.mmio_read(0xFED0_0000, 4, 0).handled);
        let s = b.stats();
        assert_eq!((s.unhandled_port_reads, s.unhandled_port_writes, s.bad_sizes, s.unhandled_mmio), (2, 1, 1, 1));
        // Port 0x80 is handled and ignored.
        assert!(b.port_write(POST_PORT, 1, 0x42, 0).handled);
        assert_eq!(b.stats().last_post_code, 0x42);
    }

    #[test]
    fn uart_thre_interrupt_reaches_the_ioapic() {
        let mut b = bus();
        route(&mut b, 4, 0x24);
        assert!(b.port_write(0x3F9, 1, 0x02, 0).interrupts.len() == 1);
        // Reading IIR clears THRE: line low, no message.
        let r = b.port_read(0x3FA, 1, 0);
        assert_eq!(r.value & 0x0F, 0x02);
        assert!(r.interrupts.is_empty());
        // Each THR write re-raises it: a new edge.
        let w = b.port_write(0x3F8, 1, u32::from(b'x'), 0);
        assert_eq!(only(&w).vector, 0x24);
        assert_eq!(b.uart().unwrap().sink().0, b"x");
        // Input raises RX data when enabled.
        b.port_write(0x3F9, 1, 0x01, 0);
        let o = b.push_uart_input(b'k', 0).unwrap();
        // THRI off lowered the line on the write; the RX byte raises it again.
        assert_eq!(only(&o).vector, 0x24);
        assert_eq!(b.port_read(0x3F8, 1, 0).value, u64::from(b'k'));
    }

    #[test]
    fn pm_timer_sci_is_level_and_redelivered_after_eoi() {
        let mut b = bus();
        route(&mut b, 9, 0x8039);
        b.port_write(0x602, 2, u32::from(TMR_EN), 0);
        let due = b.next_deadline().unwrap();
        assert!(b.tick(due - 1).interrupts.is_empty());
        let m = only(&b.tick(due));
        assert_eq!((m.vector, m.trigger), (0x39, TriggerMode::Level));
        // EOI while TMR_STS is still set: re-delivered.
        assert_eq!(only(&b.eoi(0x39, due)).vector, 0x39);
        // The guest clears the status: line low, EOI delivers nothing.
        b.port_write(0x600, 2, 1, due);
        assert!(b.eoi(0x39, due).interrupts.is_empty());
        // The 32-bit timer read as a dword.
        let t = b.port_read(0x608, 4, due).value;
        assert_eq!(t, 1 << 31);
    }

    #[test]
    fn power_off_and_resets() {
        let mut b = bus();
        let typ = u32::from(S5_SLP_TYP) << 10;
        assert_eq!(b.port_write(0x604, 2, typ | u32::from(SLP_EN), 0).power, Some(PowerEvent::Off { slp_typ: 5 }));
        assert_eq!(b.port_read(0x64, 1, 0).value & 2, 0);
        assert_eq!(b.port_write(0x64, 1, 0xFE, 0).power, Some(PowerEvent::Reset));
        assert_eq!(b.port_write(0xCF9, 1, 0x06, 0).power, Some(PowerEvent::Reset));
    }

    #[test]
    fn pit_channel0_pulses_gsi2() {
        let mut b = bus();
        route(&mut b, 2, 0x30);
        b.port_write(0x43, 1, 0x34, 0);
        b.port_write(0x40, 1, 0x9B, 0);
        b.port_write(0x40, 1, 0x2E, 0);
        let due = b.next_deadline().unwrap();
        assert_eq!(only(&b.tick(due)).vector, 0x30);
        assert!(b.tick(due).interrupts.is_empty());
        assert!(b.next_deadline().unwrap() > due);
    }

    #[test]
    fn legacy_ports_dispatch() {
        let mut b = bus();
        // probe_8259A.
        b.port_write(0xA1, 1, 0xFF, 0);
        b.port_write(0x21, 1, 0xFB, 0);
        assert_eq!(b.port_read(0x21, 1, 0).value, 0xFB);
        // RTC: index 0x0D (VRT).
        b.port_write(0x70, 1, 0x0D, 0);
        assert_eq!(b.port_read(0x71, 1, 0).value, 0x80);
        // Port 0x61 with gate 2.
        b.port_write(0x61, 1, 0x01, 0);
        assert_eq!(b.port_read(0x61, 1, 0).value & 0x0F, 0x01);
        // No PIC when the machine has none.
        let mut m = machine();
        m.legacy_pic = false;
        let mut nb = PlatformBus::new(&m, Capture::default(), 0, 0);
        assert!(!nb.port_read(0x21, 1, 0).handled);
    }

    #[test]
    fn word_access_splits_into_bytes() {
        let mut b = bus();
        // 16-bit write to 0x3FB/0x3FC = LCR, MCR.
        b.port_write(0x3FB, 2, 0x0B03, 0);
        assert_eq!(b.port_read(0x3FB, 2, 0).value, 0x0B03);
        // Dword read at 0x3FE covers MSR, SCR, then two unclaimed ports.
        assert_eq!(b.port_read(0x3FE, 4, 0).value >> 16, 0xFFFF);
    }
}
