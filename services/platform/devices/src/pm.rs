//! The ACPI fixed-hardware PM block the FADT of `sinter-guest-acpi`
//! describes ([`PmRegisters::SINTER`]): PM1a event block (PM1_STS,
//! PM1_EN), PM1a control block (PM1_CNT) and the 32-bit PM timer
//! (`TMR_VAL_EXT`) at 3.579545 MHz. Also the two reset paths Linux uses on
//! a machine whose FADT has no reset register (it has none: see
//! `sinter_guest_acpi::fadt`): the keyboard controller's pulse-reset
//! command (in [`crate::I8042`]) and the PCI reset control port 0xCF9
//! ([`ResetControl`]).
//!
//! Status bits modelled: TMR_STS (set when bit 31 of the PM timer
//! toggles) and WAK_STS. Enable bits: TMR_EN, GBL_EN (stored; GBL_STS is
//! never set since there is no BIOS lock). The FADT declares no fixed power
//! or sleep button and no RTC wake, so those bits read 0. The SCI is
//! level-triggered: [`PmBlock::sci_level`] is high while any enabled status
//! bit is set. `SCI_EN` always reads 1 (no SMI: ACPI mode from reset).

pub use sinter_guest_acpi::{PmRegisters, S5_SLP_TYP};

/// PM timer frequency in Hz.
pub const PM_TIMER_HZ: u64 = 3_579_545;

pub const TMR_STS: u16 = 1 << 0;
pub const WAK_STS: u16 = 1 << 15;
pub const TMR_EN: u16 = 1 << 0;
pub const GBL_EN: u16 = 1 << 5;
pub const SCI_EN: u16 = 1 << 0;
pub const SLP_EN: u16 = 1 << 13;
/// Bits of PM1_STS that can be set here.
const STS_IMPLEMENTED: u16 = TMR_STS | WAK_STS;
/// Bits of PM1_EN that are stored.
const EN_IMPLEMENTED: u16 = TMR_EN | GBL_EN;
/// Stored bits of PM1_CNT: BM_RLD, GBL_RLS, SLP_TYP.
const CNT_STORED: u16 = 0x0006 | (7 << 10);

/// A request to the machine from the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerEvent {
    /// PM1_CNT.SLP_EN with `SLP_TYP` = [`S5_SLP_TYP`]: switch off.
    Off { slp_typ: u8 },
    /// Reset the machine (keyboard controller pulse, port 0xCF9).
    Reset,
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PmStats {
    /// SLP_EN with a sleep type other than S5 (no other state exists).
    pub unsupported_sleeps: u64,
}

/// The PM1a event/control blocks and the PM timer.
#[derive(Clone, Debug)]
pub struct PmBlock {
    regs: PmRegisters,
    /// `now` at which the PM timer read 0.
    epoch: u64,
    sts: u16,
    en: u16,
    cnt: u16,
    /// Bit-31 toggles of the timer already reported in TMR_STS.
    toggles_seen: u64,
    stats: PmStats,
}

/// PM timer ticks elapsed in `ns` nanoseconds.
pub fn pm_ticks(ns: u64) -> u64 {
    (u128::from(ns) * u128::from(PM_TIMER_HZ) / 1_000_000_000) as u64
}

/// Nanoseconds until `ticks` PM timer ticks have elapsed (rounded up).
pub fn pm_ticks_to_ns(ticks: u64) -> u64 {
    let ns = (u128::from(ticks) * 1_000_000_000).div_ceil(u128::from(PM_TIMER_HZ));
    u64::try_from(ns).unwrap_or(u64::MAX)
}

impl PmBlock {
    /// The block at the ports `regs` names; the timer reads 0 at `now`.
    pub fn new(regs: PmRegisters, now: u64) -> Self {
        Self { regs, epoch: now, sts: 0, en: 0, cnt: SCI_EN, toggles_seen: 0, stats: PmStats::default() }
    }

    pub fn registers(&self) -> PmRegisters {
        self.regs
    }

    pub fn stats(&self) -> PmStats {
        self.stats
    }

    /// Whether `port` belongs to this block.
    pub fn claims(&self, port: u16) -> bool {
        let r = &self.regs;
        let within = |base: u16, len: u8| port.wrapping_sub(base) < u16::from(len);
        within(r.pm1a_event, PmRegisters::PM1_EVENT_LEN)
            || within(r.pm1a_control, PmRegisters::PM1_CONTROL_LEN)
            || within(r.pm_timer, PmRegisters::PM_TIMER_LEN)
    }

    /// The full (64-bit) tick count at `now`.
    fn ticks(&self, now: u64) -> u64 {
        pm_ticks(now.saturating_sub(self.epoch))
    }

    /// The PM timer register (32 bits) at `now`.
    pub fn timer(&self, now: u64) -> u32 {
        self.ticks(now) as u32
    }

    /// Latches TMR_STS if bit 31 toggled since it was last cleared.
    fn update(&mut self, now: u64) {
        if self.ticks(now) >> 31 > self.toggles_seen {
            self.sts |= TMR_STS;
        }
    }

    /// The SCI line at `now` (ISA IRQ `sci_irq`, level, active high).
    pub fn sci_level(&mut self, now: u64) -> bool {
        self.update(now);
        self.sts & self.en & STS_IMPLEMENTED != 0
    }

    /// When TMR_STS will next be set (for the caller's timer), if TMR_EN.
    pub fn next_deadline(&self) -> Option<u64> {
        if self.en & TMR_EN == 0 || self.sts & TMR_STS != 0 {
            return None;
        }
        let next = (self.toggles_seen + 1) << 31;
        Some(self.epoch.saturating_add(pm_ticks_to_ns(next)))
    }

    /// Reads byte `port` at `now` (the caller checked [`Self::claims`]).
    pub fn read_byte(&mut self, port: u16, now: u64) -> u8 {
        self.update(now);
        let r = self.regs;
        let (value, shift) = if let Some(o) = offset(port, r.pm1a_event, 4) {
            (u32::from(if o < 2 { self.sts } else { self.en }), (o & 1) * 8)
        } else if let Some(o) = offset(port, r.pm1a_control, 2) {
            (u32::from(self.cnt | SCI_EN), o * 8)
        } else if let Some(o) = offset(port, r.pm_timer, 4) {
            (self.timer(now), o * 8)
        } else {
            return 0xFF;
        };
        (value >> shift) as u8
    }

    /// Writes byte `port` at `now`; may request a power transition.
    pub fn write_byte(&mut self, port: u16, value: u8, now: u64) -> Option<PowerEvent> {
        self.update(now);
        let r = self.regs;
        if let Some(o) = offset(port, r.pm1a_event, 4) {
            let bits = u16::from(value) << ((o & 1) * 8);
            if o < 2 {
                // Write 1 to clear.
                let cleared = bits & self.sts;
                self.sts &= !bits;
                if cleared & TMR_STS != 0 {
                    self.toggles_seen = self.ticks(now) >> 31;
                }
            } else {
                let mask = 0xFFu16 << ((o & 1) * 8);
                self.en = (self.en & !mask) | (bits & EN_IMPLEMENTED);
            }
        } else if let Some(o) = offset(port, r.pm1a_control, 2) {
            let shift = o * 8;
            let mask = 0xFFu16 << shift;
            let written = u16::from(value) << shift;
            self.cnt = (self.cnt & !mask) | (written & CNT_STORED) | SCI_EN;
            if written & SLP_EN != 0 {
                let slp_typ = ((self.cnt >> 10) & 7) as u8;
                if slp_typ == S5_SLP_TYP {
                    return Some(PowerEvent::Off { slp_typ });
                }
                self.stats.unsupported_sleeps += 1;
            }
        }
        // The timer is read-only.
        None
    }
}

fn offset(port: u16, base: u16, len: u16) -> Option<u16> {
    let o = port.wrapping_sub(base);
    (o < len).then_some(o)
}

/// The PCI reset control register at port 0xCF9 (ICH-style): a write with
/// RST_CPU (bit 2) set resets the machine; SYS_RST (bit 1) and FULL_RST
/// (bit 3) are stored and read back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResetControl {
    value: u8,
}

/// The reset control port.
pub const RESET_CONTROL_PORT: u16 = 0xCF9;

impl ResetControl {
    pub fn read(&self) -> u8 {
        self.value
    }

    /// Linux `BOOT_CF9`: reads, writes `cf9 | 2`, then `cf9 | 6` (warm) or
    /// `cf9 | 0xE` (cold); the second write resets.
    pub fn write(&mut self, value: u8) -> Option<PowerEvent> {
        self.value = value & 0x0A;
        (value & 0x04 != 0).then_some(PowerEvent::Reset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pm() -> PmBlock {
        PmBlock::new(PmRegisters::SINTER, 1_000)
    }

    fn read16(p: &mut PmBlock, port: u16, now: u64) -> u16 {
        u16::from_le_bytes([p.read_byte(port, now), p.read_byte(port + 1, now)])
    }

    fn write16(p: &mut PmBlock, port: u16, v: u16, now: u64) -> Option<PowerEvent> {
        let [lo, hi] = v.to_le_bytes();
        p.write_byte(port, lo, now).or(p.write_byte(port + 1, hi, now))
    }

    #[test]
    fn ports_match_the_fadt() {
        let p = pm();
        for port in [0x600, 0x601, 0x602, 0x603, 0x604, 0x605, 0x608, 0x609, 0x60A, 0x60B] {
            assert!(p.claims(port), "{port:#x}");
        }
        for port in [0x5FF, 0x606, 0x607, 0x60C] {
            assert!(!p.claims(port), "{port:#x}");
        }
    }

    #[test]
    fn timer_counts_at_3_579545_mhz_and_wraps_at_32_bits() {
        let mut p = pm();
        let t = |p: &mut PmBlock, now: u64| u32::from_le_bytes([0, 1, 2, 3].map(|i| p.read_byte(0x608 + i, now)));
        assert_eq!(t(&mut p, 1_000), 0);
        assert_eq!(t(&mut p, 1_000 + 1_000_000_000), 3_579_545);
        assert_eq!(t(&mut p, 1_000 + 1_000_000), 3_579);
        // 2^32 ticks ≈ 1199.86 s.
        let wrap = pm_ticks_to_ns(1 << 32);
        assert_eq!(t(&mut p, 1_000 + wrap), 0);
        // Read-only.
        assert_eq!(p.write_byte(0x608, 0x55, 0), None);
        assert_eq!(t(&mut p, 1_000), 0);
    }

    #[test]
    fn tmr_sts_on_bit31_toggle_raises_sci_when_enabled() {
        let mut p = pm();
        write16(&mut p, 0x602, TMR_EN, 1_000);
        let due = p.next_deadline().unwrap();
        assert_eq!(due, 1_000 + pm_ticks_to_ns(1 << 31));
        assert!(!p.sci_level(due - 1));
        assert!(p.sci_level(due));
        assert_eq!(read16(&mut p, 0x600, due) & TMR_STS, TMR_STS);
        assert_eq!(p.next_deadline(), None);
        // Write 1 to clear; the next toggle is the next deadline.
        write16(&mut p, 0x600, TMR_STS, due);
        assert!(!p.sci_level(due));
        assert_eq!(p.next_deadline(), Some(1_000 + pm_ticks_to_ns(2 << 31)));
        // Disabled: status may set but no SCI.
        write16(&mut p, 0x602, 0, due);
        assert!(!p.sci_level(due + pm_ticks_to_ns(1 << 31)));
    }

    #[test]
    fn sci_en_reads_one_and_s5_powers_off() {
        let mut p = pm();
        assert_eq!(read16(&mut p, 0x604, 0) & SCI_EN, SCI_EN);
        // acpi_enable(): already in ACPI mode. Linux acpi_hw_legacy_sleep:
        // write SLP_TYP, then SLP_TYP | SLP_EN.
        let typ = u16::from(S5_SLP_TYP) << 10;
        assert_eq!(write16(&mut p, 0x604, typ | SCI_EN, 0), None);
        assert_eq!(write16(&mut p, 0x604, typ | SLP_EN | SCI_EN, 0), Some(PowerEvent::Off { slp_typ: 5 }));
        // SLP_EN reads 0, SLP_TYP is kept.
        assert_eq!(read16(&mut p, 0x604, 0), typ | SCI_EN);
    }

    #[test]
    fn other_sleep_types_are_refused() {
        let mut p = pm();
        assert_eq!(write16(&mut p, 0x604, SLP_EN, 0), None);
        assert_eq!(write16(&mut p, 0x604, (3 << 10) | SLP_EN, 0), None);
        assert_eq!(p.stats().unsupported_sleeps, 2);
        // A byte write of the high half carries SLP_TYP and SLP_EN at once.
        assert_eq!(p.write_byte(0x605, ((5 << 10 | SLP_EN) >> 8) as u8, 0), Some(PowerEvent::Off { slp_typ: 5 }));
    }

    #[test]
    fn unimplemented_bits_read_zero() {
        let mut p = pm();
        write16(&mut p, 0x602, 0xFFFF, 0);
        assert_eq!(read16(&mut p, 0x602, 0), TMR_EN | GBL_EN);
        write16(&mut p, 0x600, 0xFFFF, 0);
        assert_eq!(read16(&mut p, 0x600, 0), 0);
    }

    /// The contract with `sinter-guest-acpi`'s FADT: a 32-bit timer, these
    /// ports, and no reset register (so Linux resets through the 8042 and
    /// 0xCF9).
    #[test]
    fn matches_the_fadt() {
        use sinter_guest_acpi::fadt::{flags, Fadt};
        let f = Fadt::new(&PmRegisters::SINTER, 0, 0);
        assert_ne!(f.flags.get() & flags::TMR_VAL_EXT, 0);
        assert_eq!(f.flags.get() & flags::RESET_REG_SUP, 0);
        assert_eq!(f.smi_cmd.get(), 0, "SCI_EN must read 1: no SMI command port");
        let p = pm();
        for (base, len) in [
            (f.pm1a_evt_blk.get(), f.pm1_evt_len),
            (f.pm1a_cnt_blk.get(), f.pm1_cnt_len),
            (f.pm_tmr_blk.get(), f.pm_tmr_len),
        ] {
            for i in 0..u32::from(len) {
                assert!(p.claims((base + i) as u16));
            }
        }
        assert_eq!(f.sci_int.get(), u16::from(p.registers().sci_irq));
    }

    #[test]
    fn cf9_reset_sequence() {
        let mut r = ResetControl::default();
        let cf9 = r.read() & !0x0E;
        assert_eq!(r.write(cf9 | 2), None);
        assert_eq!(r.read(), 2);
        assert_eq!(r.write(cf9 | 0x0E), Some(PowerEvent::Reset));
    }
}
