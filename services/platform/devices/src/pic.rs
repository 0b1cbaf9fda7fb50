//! The 8259A PIC pair (master 0x20/0x21, slave 0xA0/0xA1) and the ELCR
//! (0x4D0/0x4D1).
//!
//! The guest runs in APIC mode: nothing is routed through the PICs (no
//! input is ever raised, IRR and ISR stay 0, a poll returns "no
//! interrupt", and the LAPIC's ExtINT delivery is answered with
//! [`crate::Received::ExtInt`], which the caller ignores). They exist
//! because the MADT sets `PCAT_COMPAT` and Linux programs them: it probes
//! with an IMR write/readback (`probe_8259A`), initialises them with
//! ICW1-4 (`init_8259A`), masks everything, and reads IRR/ISR through OCW3
//! (`i8259A_irq_pending`). The registers behave like the real part for
//! those sequences.

/// Master command / data ports.
pub const PIC_MASTER_CMD: u16 = 0x20;
pub const PIC_MASTER_IMR: u16 = 0x21;
pub const PIC_SLAVE_CMD: u16 = 0xA0;
pub const PIC_SLAVE_IMR: u16 = 0xA1;
pub const ELCR_MASTER: u16 = 0x4D0;
pub const ELCR_SLAVE: u16 = 0x4D1;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum InitState {
    #[default]
    Ready,
    Icw2,
    Icw3,
    Icw4,
}

/// One 8259A.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pic8259 {
    imr: u8,
    vector_base: u8,
    icw1: u8,
    icw3: u8,
    icw4: u8,
    init: InitState,
    read_isr: bool,
    poll: bool,
    special_mask: bool,
    /// Initialised at least once.
    initialised: bool,
}

impl Pic8259 {
    pub fn imr(&self) -> u8 {
        self.imr
    }

    /// ICW2 (vector of IR0), 0 before initialisation.
    pub fn vector_base(&self) -> u8 {
        self.vector_base
    }

    /// ICW4 bit 1: automatic EOI.
    pub fn auto_eoi(&self) -> bool {
        self.icw4 & 2 != 0
    }

    pub fn initialised(&self) -> bool {
        self.initialised
    }

    /// Read of the command port: IRR or ISR (both 0), or a poll result.
    pub fn read_command(&mut self) -> u8 {
        if core::mem::take(&mut self.poll) {
            // No interrupt pending.
            return 0;
        }
        // IRR (OCW3 default) and ISR are both always empty.
        0
    }

    /// Whether OCW3 selected ISR (rather than IRR) for command-port reads.
    pub fn reads_isr(&self) -> bool {
        self.read_isr
    }

    pub fn read_data(&mut self) -> u8 {
        if core::mem::take(&mut self.poll) {
            return 0;
        }
        self.imr
    }

    pub fn write_command(&mut self, value: u8) {
        if value & 0x10 != 0 {
            // ICW1: starts initialisation, clears IMR, selects IRR.
            self.icw1 = value;
            self.imr = 0;
            self.read_isr = false;
            self.special_mask = false;
            self.icw4 = 0;
            self.init = InitState::Icw2;
        } else if value & 0x08 != 0 {
            // OCW3.
            if value & 0x02 != 0 {
                self.read_isr = value & 0x01 != 0;
            }
            if value & 0x40 != 0 {
                self.special_mask = value & 0x20 != 0;
            }
            self.poll = value & 0x04 != 0;
        }
        // OCW2 (EOI, rotate, priority): nothing is ever in service.
    }

    pub fn write_data(&mut self, value: u8) {
        match self.init {
            InitState::Ready => self.imr = value,
            InitState::Icw2 => {
                self.vector_base = value & 0xF8;
                self.init = if self.icw1 & 0x02 == 0 {
                    InitState::Icw3
                } else if self.icw1 & 0x01 != 0 {
                    InitState::Icw4
                } else {
                    self.initialised = true;
                    InitState::Ready
                };
            }
            InitState::Icw3 => {
                self.icw3 = value;
                if self.icw1 & 0x01 != 0 {
                    self.init = InitState::Icw4;
                } else {
                    self.initialised = true;
                    self.init = InitState::Ready;
                }
            }
            InitState::Icw4 => {
                self.icw4 = value;
                self.initialised = true;
                self.init = InitState::Ready;
            }
        }
    }
}

/// The master/slave pair plus the edge/level control registers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pic {
    pub master: Pic8259,
    pub slave: Pic8259,
    elcr: [u8; 2],
}

impl Pic {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `port` is one of the six PIC/ELCR ports.
    pub fn claims(port: u16) -> bool {
        matches!(port, 0x20 | 0x21 | 0xA0 | 0xA1 | 0x4D0 | 0x4D1)
    }

    pub fn read(&mut self, port: u16) -> u8 {
        match port {
            PIC_MASTER_CMD => self.master.read_command(),
            PIC_MASTER_IMR => self.master.read_data(),
            PIC_SLAVE_CMD => self.slave.read_command(),
            PIC_SLAVE_IMR => self.slave.read_data(),
            ELCR_MASTER => self.elcr[0],
            ELCR_SLAVE => self.elcr[1],
            _ => 0xFF,
        }
    }

    pub fn write(&mut self, port: u16, value: u8) {
        match port {
            PIC_MASTER_CMD => self.master.write_command(value),
            PIC_MASTER_IMR => self.master.write_data(value),
            PIC_SLAVE_CMD => self.slave.write_command(value),
            PIC_SLAVE_IMR => self.slave.write_data(value),
            // IRQ 0, 1, 2, 8, 13 are always edge on PIIX/ICH.
            ELCR_MASTER => self.elcr[0] = value & 0xF8,
            ELCR_SLAVE => self.elcr[1] = value & 0xDE,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// arch/x86/kernel/i8259.c `probe_8259A` then `init_8259A(0)`.
    #[test]
    fn linux_probe_and_init() {
        let mut p = Pic::new();
        p.write(PIC_SLAVE_IMR, 0xFF);
        p.write(PIC_MASTER_IMR, 0xFB);
        assert_eq!(p.read(PIC_MASTER_IMR), 0xFB, "probe must not fall back to the NULL PIC");
        // init_8259A.
        p.write(PIC_MASTER_IMR, 0xFF);
        p.write(PIC_SLAVE_IMR, 0xFF);
        p.write(PIC_MASTER_CMD, 0x11);
        p.write(PIC_MASTER_IMR, 0x30);
        p.write(PIC_MASTER_IMR, 0x04);
        p.write(PIC_MASTER_IMR, 0x01);
        p.write(PIC_SLAVE_CMD, 0x11);
        p.write(PIC_SLAVE_IMR, 0x38);
        p.write(PIC_SLAVE_IMR, 0x02);
        p.write(PIC_SLAVE_IMR, 0x01);
        assert!(p.master.initialised() && p.slave.initialised());
        assert_eq!((p.master.vector_base(), p.slave.vector_base()), (0x30, 0x38));
        assert!(!p.master.auto_eoi());
        // Restore the cached masks.
        p.write(PIC_MASTER_IMR, 0xFB);
        p.write(PIC_SLAVE_IMR, 0xFF);
        assert_eq!((p.read(PIC_MASTER_IMR), p.read(PIC_SLAVE_IMR)), (0xFB, 0xFF));
    }

    #[test]
    fn ocw3_irr_isr_and_poll() {
        let mut p = Pic::new();
        p.write(PIC_MASTER_IMR, 0x5A);
        p.write(PIC_MASTER_CMD, 0x0A); // read IRR
        assert_eq!(p.read(PIC_MASTER_CMD), 0);
        p.write(PIC_MASTER_CMD, 0x0B); // read ISR
        assert_eq!(p.read(PIC_MASTER_CMD), 0);
        p.write(PIC_MASTER_CMD, 0x0C); // poll
        assert_eq!(p.read(PIC_MASTER_IMR), 0);
        assert_eq!(p.read(PIC_MASTER_IMR), 0x5A);
        // Specific EOI is harmless.
        p.write(PIC_MASTER_CMD, 0x60);
        assert_eq!(p.read(PIC_MASTER_IMR), 0x5A);
    }

    #[test]
    fn icw1_without_icw4_and_single_mode() {
        let mut p = Pic8259::default();
        p.write_command(0x12); // single, no ICW4
        p.write_data(0x20);
        assert!(p.initialised());
        p.write_data(0x33);
        assert_eq!(p.imr(), 0x33);
    }

    #[test]
    fn elcr_keeps_only_legal_bits() {
        let mut p = Pic::new();
        p.write(ELCR_MASTER, 0xFF);
        p.write(ELCR_SLAVE, 0xFF);
        assert_eq!((p.read(ELCR_MASTER), p.read(ELCR_SLAVE)), (0xF8, 0xDE));
    }
}
