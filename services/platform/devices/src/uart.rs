//! A 16550A UART (COM1: [`sinter_guest_acpi::IsaSerial::COM1`]).
//!
//! Output is immediate: every byte written to THR goes to the
//! [`SerialSink`] at once, so THR is always empty (LSR THRE and TEMT
//! always set). Input is a bounded queue the host fills with
//! [`Uart::push_input`]. The modem inputs read as CTS, DSR and DCD
//! asserted (a connected terminal) unless MCR loopback is on, where they
//! follow the MCR outputs as on real hardware (Linux's 8250 autoconfig
//! checks this). Nothing here reads time: the UART has no baud-rate
//! timing, the divisor latch is only stored.
//!
//! Interrupts ([`Uart::irq_level`]): the line is high while an enabled
//! source is pending, in 16550 priority order: receiver line status (never
//! — no errors are modelled), received data, THR empty, modem status.
//! THRE pending is set when THR empties (after every THR write) and when
//! IER.ETBEI goes 0 → 1; it is cleared by reading IIR while IIR reports it
//! and by writing THR — the behaviour Linux's `serial8250_do_startup` THRE
//! test and its transmit interrupt path rely on.

/// Where transmitted bytes go.
pub trait SerialSink {
    fn write_byte(&mut self, byte: u8);
}

/// Register offsets from the base port.
pub mod reg {
    pub const RBR_THR_DLL: u16 = 0;
    pub const IER_DLM: u16 = 1;
    pub const IIR_FCR: u16 = 2;
    pub const LCR: u16 = 3;
    pub const MCR: u16 = 4;
    pub const LSR: u16 = 5;
    pub const MSR: u16 = 6;
    pub const SCR: u16 = 7;
}

pub const IER_RDI: u8 = 0x01;
pub const IER_THRI: u8 = 0x02;
pub const IER_RLSI: u8 = 0x04;
pub const IER_MSI: u8 = 0x08;
pub const IIR_NO_INT: u8 = 0x01;
pub const IIR_MSI: u8 = 0x00;
pub const IIR_THRI: u8 = 0x02;
pub const IIR_RDI: u8 = 0x04;
pub const IIR_FIFO_ENABLED: u8 = 0xC0;
pub const FCR_ENABLE: u8 = 0x01;
pub const FCR_CLEAR_RCVR: u8 = 0x02;
pub const LCR_DLAB: u8 = 0x80;
pub const MCR_DTR: u8 = 0x01;
pub const MCR_RTS: u8 = 0x02;
pub const MCR_OUT1: u8 = 0x04;
pub const MCR_OUT2: u8 = 0x08;
pub const MCR_LOOP: u8 = 0x10;
pub const LSR_DR: u8 = 0x01;
pub const LSR_OE: u8 = 0x02;
pub const LSR_THRE: u8 = 0x20;
pub const LSR_TEMT: u8 = 0x40;
pub const MSR_DCTS: u8 = 0x01;
pub const MSR_DDSR: u8 = 0x02;
pub const MSR_TERI: u8 = 0x04;
pub const MSR_DDCD: u8 = 0x08;
pub const MSR_CTS: u8 = 0x10;
pub const MSR_DSR: u8 = 0x20;
pub const MSR_RI: u8 = 0x40;
pub const MSR_DCD: u8 = 0x80;

/// Capacity of the receive queue (bytes).
pub const RX_CAPACITY: usize = 64;

/// The receive queue is full; the byte was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxFull;

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UartStats {
    pub tx_bytes: u64,
    pub rx_bytes: u64,
    /// Bytes the host offered while the queue was full.
    pub rx_dropped: u64,
    /// Bytes written in loopback mode (fed back to the receiver).
    pub loopback_bytes: u64,
}

/// The UART.
#[derive(Clone, Debug)]
pub struct Uart<S: SerialSink> {
    sink: S,
    rx: [u8; RX_CAPACITY],
    rx_head: usize,
    rx_len: usize,
    ier: u8,
    lcr: u8,
    mcr: u8,
    fcr: u8,
    scr: u8,
    dll: u8,
    dlm: u8,
    thre_pending: bool,
    /// Modem status delta bits (MSR 3:0).
    msr_delta: u8,
    /// Overrun latched for the next LSR read.
    overrun: bool,
    stats: UartStats,
}

impl<S: SerialSink> Uart<S> {
    /// Reset state (divisor 12 = 9600 baud, as firmware leaves it).
    pub fn new(sink: S) -> Self {
        Self {
            sink,
            rx: [0; RX_CAPACITY],
            rx_head: 0,
            rx_len: 0,
            ier: 0,
            lcr: 0,
            mcr: 0,
            fcr: 0,
            scr: 0,
            dll: 12,
            dlm: 0,
            thre_pending: false,
            msr_delta: 0,
            overrun: false,
            stats: UartStats::default(),
        }
    }

    pub fn sink(&self) -> &S {
        &self.sink
    }
    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }
    pub fn stats(&self) -> UartStats {
        self.stats
    }

    /// The divisor latch (baud = 115200 / divisor).
    pub fn divisor(&self) -> u16 {
        u16::from_le_bytes([self.dll, self.dlm])
    }

    /// Free space in the receive queue.
    pub fn input_space(&self) -> usize {
        RX_CAPACITY - self.rx_len
    }

    /// Queues a byte from the host for the guest to read.
    pub fn push_input(&mut self, byte: u8) -> Result<(), RxFull> {
        if self.rx_len == RX_CAPACITY {
            self.stats.rx_dropped += 1;
            return Err(RxFull);
        }
        self.rx[(self.rx_head + self.rx_len) % RX_CAPACITY] = byte;
        self.rx_len += 1;
        Ok(())
    }

    fn pop_input(&mut self) -> Option<u8> {
        if self.rx_len == 0 {
            return None;
        }
        let b = self.rx[self.rx_head];
        self.rx_head = (self.rx_head + 1) % RX_CAPACITY;
        self.rx_len -= 1;
        self.stats.rx_bytes += 1;
        Some(b)
    }

    fn dlab(&self) -> bool {
        self.lcr & LCR_DLAB != 0
    }

    /// Modem status inputs (MSR 7:4).
    fn modem_inputs(&self) -> u8 {
        if self.mcr & MCR_LOOP != 0 {
            let m = self.mcr;
            (if m & MCR_RTS != 0 { MSR_CTS } else { 0 })
                | (if m & MCR_DTR != 0 { MSR_DSR } else { 0 })
                | (if m & MCR_OUT1 != 0 { MSR_RI } else { 0 })
                | (if m & MCR_OUT2 != 0 { MSR_DCD } else { 0 })
        } else {
            MSR_CTS | MSR_DSR | MSR_DCD
        }
    }

    fn set_mcr(&mut self, value: u8) {
        let before = self.modem_inputs();
        self.mcr = value & 0x1F;
        let after = self.modem_inputs();
        let changed = before ^ after;
        if changed & MSR_CTS != 0 {
            self.msr_delta |= MSR_DCTS;
        }
        if changed & MSR_DSR != 0 {
            self.msr_delta |= MSR_DDSR;
        }
        if changed & MSR_DCD != 0 {
            self.msr_delta |= MSR_DDCD;
        }
        // TERI: RI went from asserted to deasserted.
        if before & MSR_RI != 0 && after & MSR_RI == 0 {
            self.msr_delta |= MSR_TERI;
        }
    }

    /// The interrupt identification (low nibble), highest priority first.
    fn interrupt_id(&self) -> u8 {
        if self.ier & IER_RDI != 0 && self.rx_len > 0 {
            IIR_RDI
        } else if self.ier & IER_THRI != 0 && self.thre_pending {
            IIR_THRI
        } else if self.ier & IER_MSI != 0 && self.msr_delta != 0 {
            IIR_MSI
        } else {
            IIR_NO_INT
        }
    }

    /// The UART's interrupt output (before the ISA IRQ line; the OUT2 gate
    /// of PC serial cards is not modelled, like QEMU).
    pub fn irq_level(&self) -> bool {
        self.interrupt_id() != IIR_NO_INT
    }

    /// A guest `IN` from base + `offset` (0..=7).
    pub fn read(&mut self, offset: u16) -> u8 {
        match offset {
            reg::RBR_THR_DLL if self.dlab() => self.dll,
            reg::RBR_THR_DLL => self.pop_input().unwrap_or(0),
            reg::IER_DLM if self.dlab() => self.dlm,
            reg::IER_DLM => self.ier,
            reg::IIR_FCR => {
                let id = self.interrupt_id();
                if id == IIR_THRI {
                    self.thre_pending = false;
                }
                let fifo = if self.fcr & FCR_ENABLE != 0 { IIR_FIFO_ENABLED } else { 0 };
                id | fifo
            }
            reg::LCR => self.lcr,
            reg::MCR => self.mcr,
            reg::LSR => {
                let oe = if core::mem::take(&mut self.overrun) { LSR_OE } else { 0 };
                let dr = if self.rx_len > 0 { LSR_DR } else { 0 };
                LSR_THRE | LSR_TEMT | dr | oe
            }
            reg::MSR => self.modem_inputs() | core::mem::take(&mut self.msr_delta),
            reg::SCR => self.scr,
            _ => 0xFF,
        }
    }

    /// A guest `OUT` to base + `offset` (0..=7).
    pub fn write(&mut self, offset: u16, value: u8) {
        match offset {
            reg::RBR_THR_DLL if self.dlab() => self.dll = value,
            reg::RBR_THR_DLL => {
                if self.mcr & MCR_LOOP != 0 {
                    self.stats.loopback_bytes += 1;
                    if self.push_input(value).is_err() {
                        self.overrun = true;
                    }
                } else {
                    self.stats.tx_bytes += 1;
                    self.sink.write_byte(value);
                }
                // Transmitted at once: THR is empty again.
                self.thre_pending = true;
            }
            reg::IER_DLM if self.dlab() => self.dlm = value,
            reg::IER_DLM => {
                let old = self.ier;
                self.ier = value & 0x0F;
                if old & IER_THRI == 0 && self.ier & IER_THRI != 0 {
                    self.thre_pending = true;
                }
            }
            reg::IIR_FCR => {
                let enable_changed = (self.fcr ^ value) & FCR_ENABLE != 0;
                if value & FCR_CLEAR_RCVR != 0 || enable_changed {
                    self.rx_head = 0;
                    self.rx_len = 0;
                }
                // Bits 1, 2 self-clear; 3 (DMA) and 7:6 (trigger) stored.
                self.fcr = value & 0xC9;
            }
            reg::LCR => self.lcr = value,
            reg::MCR => self.set_mcr(value),
            reg::SCR => self.scr = value,
            // LSR and MSR are read-only (factory test writes ignored).
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Capture(Vec<u8>);
    impl SerialSink for Capture {
        fn write_byte(&mut self, byte: u8) {
            self.0.push(byte);
        }
    }

    fn uart() -> Uart<Capture> {
        Uart::new(Capture::default())
    }

    /// drivers/tty/serial/8250/8250_port.c `autoconfig()` and
    /// `autoconfig_16550a()` as Linux 6.1 runs them, with the values a
    /// 16550A must answer.
    #[test]
    fn linux_autoconfig_finds_a_16550a() {
        let mut u = uart();
        // IER test.
        let scratch = u.read(reg::IER_DLM);
        u.write(reg::IER_DLM, 0);
        let scratch2 = u.read(reg::IER_DLM) & 0x0F;
        u.write(reg::IER_DLM, 0x0F);
        let scratch3 = u.read(reg::IER_DLM) & 0x0F;
        u.write(reg::IER_DLM, scratch);
        assert_eq!((scratch2, scratch3), (0, 0x0F));
        let save_mcr = u.read(reg::MCR);
        let save_lcr = u.read(reg::LCR);
        // Loopback test: MCR = LOOP | OUT2 | RTS, MSR & 0xF0 must be 0x90.
        u.write(reg::MCR, MCR_LOOP | 0x0A);
        let status1 = u.read(reg::MSR) & 0xF0;
        u.write(reg::MCR, save_mcr);
        assert_eq!(status1, 0x90);
        // FIFO probe: LCR 0xBF, EFR (offset 2) = 0, LCR 0, FCR enable, IIR >> 6.
        u.write(reg::LCR, 0xBF);
        u.write(reg::IIR_FCR, 0);
        u.write(reg::LCR, 0);
        u.write(reg::IIR_FCR, FCR_ENABLE);
        assert_eq!(u.read(reg::IIR_FCR) >> 6, 3);
        // autoconfig_16550a: EFR with DLAB (LCR 0x80) must not read 0 ...
        u.write(reg::LCR, 0x80);
        assert_ne!(u.read(reg::IIR_FCR), 0);
        // ... nor with LCR 0xBF (no 16650/16850 EFR).
        u.write(reg::LCR, 0xBF);
        assert_ne!(u.read(reg::IIR_FCR), 0);
        // NS16550 SuperIO check: EXCR1 (offset 2 with LCR 0xE0) must not track MCR.LOOP.
        u.write(reg::LCR, 0);
        let s1 = u.read(reg::MCR);
        u.write(reg::LCR, 0xE0);
        let s2 = u.read(reg::IIR_FCR);
        if (s2 ^ s1) & MCR_LOOP == 0 {
            u.write(reg::LCR, 0);
            u.write(reg::MCR, s1 ^ MCR_LOOP);
            u.write(reg::LCR, 0xE0);
            let s2 = u.read(reg::IIR_FCR);
            u.write(reg::LCR, 0);
            u.write(reg::MCR, s1);
            assert_eq!((s2 ^ s1) & MCR_LOOP, 0, "must not look like an NS16550 SuperIO");
        }
        // TI16750 check: IIR bit 5 must not follow FCR bit 5.
        u.write(reg::LCR, 0);
        u.write(reg::IIR_FCR, FCR_ENABLE | 0x20);
        let st1 = u.read(reg::IIR_FCR) >> 5;
        u.write(reg::IIR_FCR, FCR_ENABLE);
        u.write(reg::LCR, 0x80);
        u.write(reg::IIR_FCR, FCR_ENABLE | 0x20);
        let st2 = u.read(reg::IIR_FCR) >> 5;
        u.write(reg::IIR_FCR, FCR_ENABLE);
        u.write(reg::LCR, 0);
        assert!(!(st1 == 6 && st2 == 7));
        // XScale check: IER bit 6 (UUE) must not stick.
        u.write(reg::IER_DLM, 0);
        let iersave = u.read(reg::IER_DLM);
        u.write(reg::IER_DLM, iersave | 0x40);
        assert_eq!(u.read(reg::IER_DLM) & 0x40, 0);
        u.write(reg::LCR, save_lcr);
        assert!(u.sink().0.is_empty());
    }

    /// serial8250_do_startup's THRE re-assert test and the LSR != 0xFF check.
    #[test]
    fn linux_startup_thre_test() {
        let mut u = uart();
        u.write(reg::IIR_FCR, FCR_ENABLE | FCR_CLEAR_RCVR | 0x04);
        assert_ne!(u.read(reg::LSR), 0xFF);
        u.write(reg::IER_DLM, IER_THRI);
        let iir1 = u.read(reg::IIR_FCR);
        u.write(reg::IER_DLM, 0);
        u.write(reg::IER_DLM, IER_THRI);
        let iir = u.read(reg::IIR_FCR);
        u.write(reg::IER_DLM, 0);
        let lsr = u.read(reg::LSR);
        assert_eq!(iir1 & IIR_NO_INT, 0);
        assert_eq!(iir & 0x0F, IIR_THRI);
        assert!(!(lsr & LSR_TEMT != 0 && iir & IIR_NO_INT != 0), "would set UART_BUG_THRE");
    }

    /// The transmit interrupt cycle of the 8250 driver: start_tx sets
    /// THRI, the handler sees THRE, writes bytes, re-reads IIR, stops.
    #[test]
    fn thre_interrupt_drives_transmission() {
        let mut u = uart();
        u.write(reg::IIR_FCR, FCR_ENABLE);
        assert!(!u.irq_level());
        u.write(reg::IER_DLM, IER_RDI | IER_THRI);
        assert!(u.irq_level());
        assert_eq!(u.read(reg::IIR_FCR) & 0x0F, IIR_THRI);
        assert!(!u.irq_level());
        for b in b"hello" {
            u.write(reg::RBR_THR_DLL, *b);
        }
        assert!(u.irq_level());
        assert_eq!(u.read(reg::IIR_FCR) & 0x0F, IIR_THRI);
        u.write(reg::IER_DLM, IER_RDI);
        assert_eq!(u.read(reg::IIR_FCR), IIR_FIFO_ENABLED | IIR_NO_INT);
        assert!(!u.irq_level());
        assert_eq!(u.sink().0, b"hello");
        assert_eq!(u.stats().tx_bytes, 5);
    }

    #[test]
    fn receive_path_and_priority() {
        let mut u = uart();
        u.write(reg::IER_DLM, IER_RDI | IER_THRI);
        u.push_input(b'a').unwrap();
        u.push_input(b'b').unwrap();
        assert_eq!(u.read(reg::LSR) & LSR_DR, LSR_DR);
        // RX data outranks THRE.
        assert_eq!(u.read(reg::IIR_FCR) & 0x0F, IIR_RDI);
        assert_eq!(u.read(reg::RBR_THR_DLL), b'a');
        assert_eq!(u.read(reg::RBR_THR_DLL), b'b');
        assert_eq!(u.read(reg::LSR) & LSR_DR, 0);
        assert_eq!(u.read(reg::IIR_FCR) & 0x0F, IIR_THRI);
        assert_eq!(u.read(reg::RBR_THR_DLL), 0);
        for i in 0..RX_CAPACITY {
            u.push_input(i as u8).unwrap();
        }
        assert_eq!(u.push_input(0), Err(RxFull));
        assert_eq!(u.input_space(), 0);
        // FCR clear-receiver empties the queue.
        u.write(reg::IIR_FCR, FCR_ENABLE | FCR_CLEAR_RCVR);
        assert_eq!(u.input_space(), RX_CAPACITY);
        assert_eq!(u.stats().rx_dropped, 1);
    }

    #[test]
    fn divisor_latch_and_scratch() {
        let mut u = uart();
        u.write(reg::LCR, LCR_DLAB | 0x03);
        u.write(reg::RBR_THR_DLL, 0x01);
        u.write(reg::IER_DLM, 0x00);
        assert_eq!(u.read(reg::RBR_THR_DLL), 1);
        u.write(reg::LCR, 0x03);
        assert_eq!(u.divisor(), 1);
        assert_eq!(u.read(reg::IER_DLM), 0);
        u.write(reg::SCR, 0x5A);
        assert_eq!(u.read(reg::SCR), 0x5A);
        assert!(u.sink().0.is_empty());
    }

    #[test]
    fn loopback_data_and_modem_status_interrupt() {
        let mut u = uart();
        u.write(reg::MCR, MCR_LOOP);
        // Entering loopback dropped CTS/DSR/DCD: deltas latched.
        assert_eq!(u.read(reg::MSR), MSR_DCTS | MSR_DDSR | MSR_DDCD);
        assert_eq!(u.read(reg::MSR), 0);
        u.write(reg::IER_DLM, IER_MSI);
        u.write(reg::MCR, MCR_LOOP | MCR_DTR);
        assert!(u.irq_level());
        assert_eq!(u.read(reg::IIR_FCR) & 0x0F, IIR_MSI);
        assert_eq!(u.read(reg::MSR), MSR_DSR | MSR_DDSR);
        assert!(!u.irq_level());
        u.write(reg::RBR_THR_DLL, 0x42);
        assert_eq!(u.read(reg::RBR_THR_DLL), 0x42);
        assert!(u.sink().0.is_empty());
    }
}
