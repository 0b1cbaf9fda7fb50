//! Interim virtual xAPIC, one per vCPU, owned by that vCPU's service: the
//! register page at 0xFEE0_0000 (trapped: never mapped in the nested
//! table), ISR/TMR/TPR/PPR, EOI, the ICR (fixed, NMI, INIT, SIPI IPIs, by
//! physical or flat/cluster logical destination, with shorthands), and
//! the timer in one-shot, periodic and TSC-deadline modes (guest TSC =
//! host TSC). The IRR lives in the vCPU's [`InterruptMailbox`] so other
//! vCPUs and devices can post into it. Replaced by `sinter-guest-devices`'
//! xAPIC when that lands.

use core::sync::atomic::Ordering;

use super::devices::InterruptMailbox;

pub const APIC_BASE: u64 = 0xfee0_0000;
const LVT_MASKED: u32 = 1 << 16;
const LVT_COUNT: usize = 7; // CMCI, timer, thermal, perf, LINT0, LINT1, error
const TIMER_MODE_SHIFT: u32 = 17;

/// An IPI the ICR asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipi {
    pub vector: u8,
    /// 0 fixed, 1 lowest priority, 4 NMI, 5 INIT, 6 SIPI.
    pub mode: u8,
    /// INIT level de-assert (ignored by modern CPUs).
    pub deassert: bool,
    pub logical: bool,
    pub destination: u8,
    /// 0 none, 1 self, 2 all including self, 3 all excluding self.
    pub shorthand: u8,
}

pub struct Lapic {
    pub mailbox: &'static InterruptMailbox,
    apic_id: u32,
    tpr: u32,
    svr: u32,
    isr: [u32; 8],
    tmr: [u32; 8],
    esr: u32,
    icr_high: u32,
    lvt: [u32; LVT_COUNT],
    timer_initial: u32,
    timer_divide: u32,
    /// One-shot/periodic: TSC at which the count reaches 0, and the period in TSC ticks.
    timer_due: Option<u64>,
    timer_period: u64,
    /// TSC-deadline mode: the armed deadline (0 = disarmed).
    pub tsc_deadline: u64,
    tsc_per_apic_tick_num: u64,
    tsc_per_apic_tick_den: u64,
    pub timer_fired: u64,
}

fn lvt_index(offset: u64) -> Option<usize> {
    match offset {
        0x2f0 => Some(0),
        0x320..=0x370 if offset.is_multiple_of(0x10) => Some(1 + ((offset - 0x320) / 0x10) as usize),
        _ => None,
    }
}

impl Lapic {
    /// `apic_bus_hz` is the timer's input clock (CPUID 0x4000_0010 EBX).
    pub fn new(mailbox: &'static InterruptMailbox, tsc_hz: u64, apic_bus_hz: u64) -> Self {
        Self {
            mailbox,
            apic_id: mailbox.apic_id.load(Ordering::Relaxed),
            tpr: 0,
            svr: 0xff,
            isr: [0; 8],
            tmr: [0; 8],
            esr: 0,
            icr_high: 0,
            lvt: [LVT_MASKED; LVT_COUNT],
            timer_initial: 0,
            timer_divide: 0,
            timer_due: None,
            timer_period: 0,
            tsc_deadline: 0,
            tsc_per_apic_tick_num: tsc_hz,
            tsc_per_apic_tick_den: apic_bus_hz.max(1),
            timer_fired: 0,
        }
    }

    fn timer_mode(&self) -> u32 {
        (self.lvt[1] >> TIMER_MODE_SHIFT) & 3
    }

    fn divisor(&self) -> u64 {
        let d = (self.timer_divide & 3) | ((self.timer_divide >> 1) & 4);
        if d == 7 {
            1
        } else {
            2u64 << d
        }
    }

    fn highest(bits: &[u32; 8]) -> Option<u8> {
        (0..8).rev().find(|&w| bits[w] != 0).map(|w| (w as u32 * 32 + 31 - bits[w].leading_zeros()) as u8)
    }

    fn irr(&self) -> [u32; 8] {
        core::array::from_fn(|i| self.mailbox.irr[i].load(Ordering::Acquire))
    }

    fn ppr(&self) -> u32 {
        let isr = Self::highest(&self.isr).map_or(0, u32::from);
        if (self.tpr & 0xf0) >= (isr & 0xf0) {
            self.tpr & 0xff
        } else {
            isr & 0xf0
        }
    }

    /// The vector the guest should take next, if its priority allows.
    pub fn deliverable(&self) -> Option<u8> {
        let v = Self::highest(&self.irr())?;
        (u32::from(v) & 0xf0 > self.ppr() & 0xf0).then_some(v)
    }

    /// Moves `vector` from IRR to ISR (it has been injected).
    pub fn accept(&mut self, vector: u8) {
        let (w, bit) = (usize::from(vector / 32), 1u32 << (vector % 32));
        self.mailbox.irr[w].fetch_and(!bit, Ordering::AcqRel);
        self.isr[w] |= bit;
        if self.mailbox.level[w].load(Ordering::Acquire) & bit != 0 {
            self.tmr[w] |= bit;
        } else {
            self.tmr[w] &= !bit;
        }
    }

    /// Fires the timer if it is due; returns the TSC of its next event.
    pub fn poll_timer(&mut self, now: u64) -> Option<u64> {
        match self.timer_mode() {
            2 => {
                if self.tsc_deadline != 0 && now >= self.tsc_deadline {
                    self.tsc_deadline = 0;
                    self.fire_timer();
                }
                (self.tsc_deadline != 0).then_some(self.tsc_deadline)
            }
            mode => {
                let due = self.timer_due?;
                if now < due {
                    return Some(due);
                }
                self.fire_timer();
                if mode == 1 && self.timer_period > 0 {
                    let periods = (now - due) / self.timer_period + 1;
                    self.timer_due = Some(due + periods * self.timer_period);
                } else {
                    self.timer_due = None;
                }
                self.timer_due
            }
        }
    }

    fn fire_timer(&mut self) {
        self.timer_fired += 1;
        let lvt = self.lvt[1];
        if lvt & LVT_MASKED == 0 && self.svr & 0x100 != 0 {
            self.mailbox.post(lvt as u8, false);
        }
    }

    fn start_count(&mut self, now: u64) {
        if self.timer_initial == 0 || self.timer_mode() == 2 {
            self.timer_due = None;
            return;
        }
        let ticks = u128::from(self.timer_initial) * u128::from(self.divisor());
        let tsc = ticks * u128::from(self.tsc_per_apic_tick_num) / u128::from(self.tsc_per_apic_tick_den);
        let tsc = u64::try_from(tsc).unwrap_or(u64::MAX).max(1);
        self.timer_period = tsc;
        self.timer_due = Some(now.saturating_add(tsc));
    }

    fn current_count(&self, now: u64) -> u32 {
        let Some(due) = self.timer_due else { return 0 };
        let left = u128::from(due.saturating_sub(now)) * u128::from(self.tsc_per_apic_tick_den)
            / u128::from(self.tsc_per_apic_tick_num.max(1))
            / u128::from(self.divisor());
        left.min(u128::from(u32::MAX)) as u32
    }

    /// A 32-bit read at `offset` in the APIC page.
    pub fn read(&self, offset: u64, now: u64) -> u32 {
        match offset {
            0x20 => self.apic_id << 24,
            0x30 => 0x0005_0014, // version 0x14, 6 LVT entries (max LVT index 5)
            0x80 => self.tpr,
            0x90 => 0,
            0xa0 => self.ppr(),
            0xd0 => self.mailbox.ldr.load(Ordering::Relaxed),
            0xe0 => self.mailbox.dfr.load(Ordering::Relaxed),
            0xf0 => self.svr,
            0x100..=0x170 => self.isr[((offset - 0x100) / 0x10) as usize],
            0x180..=0x1f0 => self.tmr[((offset - 0x180) / 0x10) as usize],
            0x200..=0x270 => self.mailbox.irr[((offset - 0x200) / 0x10) as usize].load(Ordering::Acquire),
            0x280 => self.esr,
            0x300 => 0, // ICR low: delivery status always idle
            0x310 => self.icr_high,
            0x380 => self.timer_initial,
            0x390 => self.current_count(now),
            0x3e0 => self.timer_divide,
            o => lvt_index(o).map_or(0, |i| self.lvt[i]),
        }
    }

    /// A 32-bit write; returns an IPI to send, or the vector EOIed when it
    /// was level-triggered (for the I/O APIC).
    pub fn write(&mut self, offset: u64, value: u32, now: u64) -> LapicEffect {
        match offset {
            0x80 => self.tpr = value & 0xff,
            0xb0 => {
                if let Some(v) = Self::highest(&self.isr) {
                    let (w, bit) = (usize::from(v / 32), 1u32 << (v % 32));
                    self.isr[w] &= !bit;
                    if self.tmr[w] & bit != 0 {
                        self.tmr[w] &= !bit;
                        return LapicEffect::LevelEoi(v);
                    }
                }
            }
            0xd0 => self.mailbox.ldr.store(value & 0xff00_0000, Ordering::Release),
            0xe0 => self.mailbox.dfr.store(value | 0x0fff_ffff, Ordering::Release),
            0xf0 => {
                self.svr = value & 0x13ff;
                if value & 0x100 == 0 {
                    for l in &mut self.lvt {
                        *l |= LVT_MASKED;
                    }
                }
            }
            0x280 => self.esr = 0,
            0x300 => {
                return LapicEffect::Ipi(Ipi {
                    vector: value as u8,
                    mode: ((value >> 8) & 7) as u8,
                    deassert: (value >> 14) & 1 == 0 && (value >> 15) & 1 == 1,
                    logical: value & (1 << 11) != 0,
                    destination: (self.icr_high >> 24) as u8,
                    shorthand: ((value >> 18) & 3) as u8,
                })
            }
            0x310 => self.icr_high = value & 0xff00_0000,
            0x380 => {
                self.timer_initial = value;
                self.start_count(now);
            }
            0x3e0 => self.timer_divide = value & 0xb,
            o => {
                if let Some(i) = lvt_index(o) {
                    let mut v = value & 0x0007_17ff;
                    if self.svr & 0x100 == 0 {
                        v |= LVT_MASKED;
                    }
                    let old_mode = self.timer_mode();
                    self.lvt[i] = v;
                    if i == 1 && self.timer_mode() != old_mode {
                        self.timer_due = None;
                        self.tsc_deadline = 0;
                    }
                }
            }
        }
        LapicEffect::None
    }

    /// `IA32_TSC_DEADLINE` write (ignored unless the timer is in TSC-deadline mode).
    pub fn write_tsc_deadline(&mut self, value: u64) {
        if self.timer_mode() == 2 {
            self.tsc_deadline = value;
        }
    }
}

pub enum LapicEffect {
    None,
    Ipi(Ipi),
    LevelEoi(u8),
}
