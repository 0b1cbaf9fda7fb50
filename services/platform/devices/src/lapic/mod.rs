//! The local APIC (xAPIC MMIO page), one per vCPU.
//!
//! The caller owns one [`LocalApic`] per vCPU, forwards the vCPU's
//! accesses to the 4 KiB page at `IA32_APIC_BASE` ([`LocalApic::read`],
//! [`LocalApic::write`]) and its `IA32_TSC_DEADLINE` MSR accesses, and
//! does the delivery: an ICR write returns an [`IpiRequest`] to route with
//! [`crate::resolve_destinations`]; a message arriving at this vCPU goes in
//! through [`LocalApic::receive`]; before each VMRUN the caller asks
//! [`LocalApic::pending_interrupt`] and, when it injects vector `v`, calls
//! [`LocalApic::ack`]. A guest EOI of a level-triggered vector is reported
//! (as [`LapicEffect::Eoi`]) so the caller can broadcast it to the I/O
//! APIC. Timers: [`LocalApic::next_deadline`] says when to come back,
//! [`LocalApic::tick`] fires whatever expired.
//!
//! Registers are 32 bits wide at 16-byte aligned offsets. Any other access
//! is safe: a read inside the first 4 bytes of a register returns those
//! bytes, everything else reads 0; misaligned, narrow, wide or reserved
//! writes are ignored. Both are counted in [`LapicStats`].

use sinter_guest_acpi::LOCAL_APIC_ADDRESS;

use crate::msg::{ApicMessage, ApicTarget, DeliveryMode, DestinationMode, IpiRequest, Shorthand, TriggerMode};

/// `IA32_APIC_BASE` MSR number.
pub const MSR_APIC_BASE: u32 = 0x1B;
/// `IA32_TSC_DEADLINE` MSR number.
pub const MSR_TSC_DEADLINE: u32 = 0x6E0;

/// `IA32_APIC_BASE` bits.
pub const APIC_BASE_BSP: u64 = 1 << 8;
pub const APIC_BASE_X2APIC: u64 = 1 << 10;
pub const APIC_BASE_ENABLE: u64 = 1 << 11;

/// Register offsets in the xAPIC page.
pub mod reg {
    pub const ID: u64 = 0x020;
    pub const VERSION: u64 = 0x030;
    pub const TPR: u64 = 0x080;
    pub const APR: u64 = 0x090;
    pub const PPR: u64 = 0x0A0;
    pub const EOI: u64 = 0x0B0;
    pub const RRD: u64 = 0x0C0;
    pub const LDR: u64 = 0x0D0;
    pub const DFR: u64 = 0x0E0;
    pub const SVR: u64 = 0x0F0;
    pub const ISR0: u64 = 0x100;
    pub const TMR0: u64 = 0x180;
    pub const IRR0: u64 = 0x200;
    pub const ESR: u64 = 0x280;
    pub const ICR_LOW: u64 = 0x300;
    pub const ICR_HIGH: u64 = 0x310;
    pub const LVT_TIMER: u64 = 0x320;
    pub const LVT_THERMAL: u64 = 0x330;
    pub const LVT_PERF: u64 = 0x340;
    pub const LVT_LINT0: u64 = 0x350;
    pub const LVT_LINT1: u64 = 0x360;
    pub const LVT_ERROR: u64 = 0x370;
    pub const TIMER_INITIAL: u64 = 0x380;
    pub const TIMER_CURRENT: u64 = 0x390;
    pub const TIMER_DIVIDE: u64 = 0x3E0;
}

/// Version register: integrated APIC version 0x14, max LVT entry 5
/// (timer, thermal, perf, LINT0, LINT1, error), no EOI-broadcast
/// suppression.
pub const VERSION: u32 = 0x14 | (5 << 16);

const LVT_MASKED: u32 = 1 << 16;
const SVR_ENABLE: u32 = 1 << 8;
/// Writable SVR bits: vector, APIC software enable, focus processor check.
const SVR_WRITABLE: u32 = 0x3FF;
/// ESR bit "received illegal vector".
const ESR_RECEIVE_ILLEGAL_VECTOR: u32 = 1 << 6;
/// ESR bit "send illegal vector".
const ESR_SEND_ILLEGAL_VECTOR: u32 = 1 << 5;

/// Index of each LVT in [`LocalApic::lvt`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lvt {
    Timer = 0,
    Thermal = 1,
    Perf = 2,
    Lint0 = 3,
    Lint1 = 4,
    Error = 5,
}

/// Writable bits of each LVT (vector, delivery mode, polarity, trigger,
/// mask, timer mode), indexed by [`Lvt`].
const LVT_WRITABLE: [u32; 6] = [0x0007_00FF, 0x0001_07FF, 0x0001_07FF, 0x0001_A7FF, 0x0001_A7FF, 0x0001_00FF];

/// Timer mode (LVT timer bits 18:17).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerMode {
    OneShot,
    Periodic,
    TscDeadline,
}

/// When the caller must call [`LocalApic::tick`] next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deadline {
    /// At this `now` (nanoseconds, same clock as the `now` arguments).
    Nanos(u64),
    /// When the vCPU's TSC reaches this value.
    Tsc(u64),
}

impl Deadline {
    /// The deadline on the `now` clock. A TSC deadline is converted with
    /// the vCPU's TSC value `tsc` at `now` and its frequency `tsc_hz`; one
    /// already passed gives `now`.
    pub fn to_nanos(self, now: u64, tsc: u64, tsc_hz: u64) -> u64 {
        match self {
            Deadline::Nanos(ns) => ns,
            Deadline::Tsc(deadline) => {
                let cycles = u128::from(deadline.saturating_sub(tsc));
                let ns = (cycles * 1_000_000_000).div_ceil(u128::from(tsc_hz.max(1)));
                now.saturating_add(u64::try_from(ns).unwrap_or(u64::MAX))
            }
        }
    }
}

/// Fixed parameters of the emulated APIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LapicConfig {
    /// APIC timer input clock ("bus frequency") in Hz, before the divider.
    /// Advertise the same value to the guest (e.g. CPUID 0x4000_0010).
    pub bus_hz: u64,
}

impl Default for LapicConfig {
    fn default() -> Self {
        // 1 GHz: one count per nanosecond with divide-by-1.
        Self { bus_hz: 1_000_000_000 }
    }
}

/// Counters of what the guest did that the model refused or ignored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LapicStats {
    /// Reads of reserved offsets, or not within a register's first 4 bytes.
    pub bad_reads: u64,
    /// Writes to reserved/read-only registers, or not 32-bit aligned.
    pub bad_writes: u64,
    /// Fixed interrupts refused (APIC disabled, illegal vector).
    pub refused: u64,
    /// Timer expiries delivered.
    pub timer_fires: u64,
    pub ipis_sent: u64,
    pub eois: u64,
}

/// What a register write asks of the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LapicEffect {
    None,
    /// ICR low was written: route this IPI.
    Ipi(IpiRequest),
    /// EOI cleared in-service `vector`; if `level_triggered`, broadcast
    /// the EOI to the I/O APIC ([`crate::IoApic::eoi`]).
    Eoi {
        vector: u8,
        level_triggered: bool,
    },
}

/// What [`LocalApic::receive`] did with a message; the non-fixed modes are
/// for the caller to act on (inject NMI, reset the vCPU, start it, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    /// A fixed / lowest-priority interrupt is now pending in IRR.
    Queued,
    /// Refused (APIC disabled, illegal vector) and counted.
    Refused,
    /// Inject an NMI.
    Nmi,
    /// Put the vCPU in wait-for-SIPI (the APIC has reset its own state).
    Init,
    /// Start a waiting vCPU at `vector << 12` (real mode CS = vector << 8).
    StartUp { vector: u8 },
    /// Ask the (absent) 8259 for a vector: nothing is routed through it.
    ExtInt,
    /// SMI: not supported; ignored.
    Smi,
    /// INIT level de-assert or a reserved delivery mode: no effect.
    Ignored,
}

/// A 256-bit vector register (ISR, TMR, IRR).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Bits256([u32; 8]);

impl Bits256 {
    fn get(&self, v: u8) -> bool {
        self.0[usize::from(v >> 5)] & (1 << (v & 31)) != 0
    }
    fn set(&mut self, v: u8, on: bool) {
        let w = &mut self.0[usize::from(v >> 5)];
        if on {
            *w |= 1 << (v & 31);
        } else {
            *w &= !(1 << (v & 31));
        }
    }
    fn highest(&self) -> Option<u8> {
        (0..8usize).rev().find_map(|i| {
            let w = self.0[i];
            (w != 0).then(|| (i as u32 * 32 + 31 - w.leading_zeros()) as u8)
        })
    }
    fn word(&self, i: usize) -> u32 {
        self.0.get(i).copied().unwrap_or(0)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Timer {
    initial: u32,
    divide_reg: u32,
    /// `now` when the current count was (re)loaded, if counting.
    loaded_at: Option<u64>,
    /// Next expiry (one-shot / periodic), in ns.
    next_fire: Option<u64>,
    /// Armed TSC deadline (0 = disarmed).
    tsc_deadline: u64,
}

/// One vCPU's local APIC.
#[derive(Clone, Debug)]
pub struct LocalApic {
    config: LapicConfig,
    id: u8,
    apic_base: u64,
    tpr: u32,
    ldr: u32,
    dfr: u32,
    svr: u32,
    isr: Bits256,
    tmr: Bits256,
    irr: Bits256,
    /// Errors since the last ESR write, and the value the last write latched.
    esr_pending: u32,
    esr: u32,
    icr_low: u32,
    icr_high: u32,
    lvt: [u32; 6],
    timer: Timer,
    stats: LapicStats,
}

impl LocalApic {
    /// A local APIC in its power-on state, enabled at the default base.
    /// `bsp` sets `IA32_APIC_BASE.BSP`.
    pub fn new(apic_id: u8, bsp: bool, config: LapicConfig) -> Self {
        let mut apic = Self {
            config,
            id: apic_id,
            apic_base: u64::from(LOCAL_APIC_ADDRESS) | APIC_BASE_ENABLE | if bsp { APIC_BASE_BSP } else { 0 },
            tpr: 0,
            ldr: 0,
            dfr: 0,
            svr: 0,
            isr: Bits256::default(),
            tmr: Bits256::default(),
            irr: Bits256::default(),
            esr_pending: 0,
            esr: 0,
            icr_low: 0,
            icr_high: 0,
            lvt: [0; 6],
            timer: Timer::default(),
            stats: LapicStats::default(),
        };
        apic.reset_registers();
        apic
    }

    /// The register state after reset or INIT (ID and `APIC_BASE` kept).
    fn reset_registers(&mut self) {
        self.tpr = 0;
        self.ldr = 0;
        self.dfr = 0xFFFF_FFFF;
        self.svr = 0xFF;
        self.isr = Bits256::default();
        self.tmr = Bits256::default();
        self.irr = Bits256::default();
        self.esr_pending = 0;
        self.esr = 0;
        self.icr_low = 0;
        self.icr_high = 0;
        self.lvt = [LVT_MASKED; 6];
        self.timer = Timer::default();
    }

    pub fn id(&self) -> u8 {
        self.id
    }

    pub fn stats(&self) -> LapicStats {
        self.stats
    }

    /// What [`crate::resolve_destinations`] needs about this APIC.
    pub fn target(&self) -> ApicTarget {
        ApicTarget {
            apic_id: self.id,
            logical_id: (self.ldr >> 24) as u8,
            cluster_model: (self.dfr >> 28) == 0,
            enabled: self.hardware_enabled(),
        }
    }

    /// `IA32_APIC_BASE.EN`.
    pub fn hardware_enabled(&self) -> bool {
        self.apic_base & APIC_BASE_ENABLE != 0
    }

    /// SVR bit 8 (and hardware enabled).
    pub fn software_enabled(&self) -> bool {
        self.hardware_enabled() && self.svr & SVR_ENABLE != 0
    }

    /// The offset of guest-physical `gpa` in this APIC's register page, if
    /// it falls there and the APIC is enabled (a disabled xAPIC's page is
    /// ordinary memory / unhandled MMIO).
    pub fn page_offset(&self, gpa: u64) -> Option<u64> {
        let offset = gpa.wrapping_sub(self.apic_base & !0xFFF);
        (self.hardware_enabled() && offset < 0x1000).then_some(offset)
    }

    /// The `IA32_APIC_BASE` MSR value.
    pub fn apic_base_msr(&self) -> u64 {
        self.apic_base
    }

    /// A guest `WRMSR IA32_APIC_BASE`. Refuses (returns `false`, nothing
    /// changed; the caller injects #GP) x2APIC enable, a different base and
    /// reserved bits. Clearing EN resets the APIC's registers; the BSP bit
    /// is read-only.
    pub fn write_apic_base_msr(&mut self, value: u64) -> bool {
        let fixed = u64::from(LOCAL_APIC_ADDRESS) | APIC_BASE_BSP;
        let allowed = fixed | APIC_BASE_ENABLE;
        if value & !allowed != 0 || value & 0xFFFF_F000 != u64::from(LOCAL_APIC_ADDRESS) {
            return false;
        }
        let was = self.hardware_enabled();
        self.apic_base = (self.apic_base & APIC_BASE_BSP) | (value & !APIC_BASE_BSP);
        if was && !self.hardware_enabled() {
            self.reset_registers();
        }
        true
    }

    /// The value of LVT `which`.
    pub fn lvt(&self, which: Lvt) -> u32 {
        self.lvt[which as usize]
    }

    /// Task priority (TPR bits 7:0).
    pub fn tpr(&self) -> u8 {
        self.tpr as u8
    }

    /// Processor priority: max(TPR, class of the highest in-service vector).
    pub fn ppr(&self) -> u8 {
        let isrv = self.isr.highest().unwrap_or(0);
        let tpr = self.tpr as u8;
        if tpr >> 4 >= isrv >> 4 {
            tpr
        } else {
            isrv & 0xF0
        }
    }

    /// Whether `vector` is requested (IRR), in service (ISR), level (TMR).
    pub fn irr(&self, vector: u8) -> bool {
        self.irr.get(vector)
    }
    pub fn isr(&self, vector: u8) -> bool {
        self.isr.get(vector)
    }
    pub fn tmr(&self, vector: u8) -> bool {
        self.tmr.get(vector)
    }

    /// Takes a fixed interrupt into IRR. Vectors 0..=15 are illegal (ESR
    /// "receive illegal vector"); a disabled APIC refuses. Both counted.
    pub fn accept(&mut self, vector: u8, level_triggered: bool) -> bool {
        if vector < 16 {
            self.esr_pending |= ESR_RECEIVE_ILLEGAL_VECTOR;
            self.stats.refused += 1;
            return false;
        }
        if !self.software_enabled() {
            self.stats.refused += 1;
            return false;
        }
        self.irr.set(vector, true);
        self.tmr.set(vector, level_triggered);
        true
    }

    /// Takes a message the resolver routed to this vCPU.
    pub fn receive(&mut self, msg: &ApicMessage) -> Received {
        if !self.hardware_enabled() {
            self.stats.refused += 1;
            return Received::Refused;
        }
        match msg.delivery_mode {
            DeliveryMode::Fixed | DeliveryMode::LowestPriority => {
                if self.accept(msg.vector, msg.trigger == TriggerMode::Level) {
                    Received::Queued
                } else {
                    Received::Refused
                }
            }
            DeliveryMode::Nmi => Received::Nmi,
            DeliveryMode::Init if msg.is_init_deassert() => Received::Ignored,
            DeliveryMode::Init => {
                self.reset_registers();
                Received::Init
            }
            DeliveryMode::StartUp => Received::StartUp { vector: msg.vector },
            DeliveryMode::ExtInt => Received::ExtInt,
            DeliveryMode::Smi => Received::Smi,
            DeliveryMode::Reserved => Received::Ignored,
        }
    }

    /// The vector to inject now: the highest requested vector whose
    /// priority class is above PPR's, if the APIC is enabled.
    pub fn pending_interrupt(&self) -> Option<u8> {
        if !self.software_enabled() {
            return None;
        }
        let v = self.irr.highest()?;
        (v >> 4 > self.ppr() >> 4).then_some(v)
    }

    /// The caller injected `vector`: IRR → ISR. Returns `false` (nothing
    /// changed) if it was not requested.
    pub fn ack(&mut self, vector: u8) -> bool {
        if !self.irr.get(vector) {
            return false;
        }
        self.irr.set(vector, false);
        self.isr.set(vector, true);
        true
    }

    /// An EOI: clears the highest in-service vector.
    pub fn eoi(&mut self) -> LapicEffect {
        match self.isr.highest() {
            Some(vector) => {
                self.isr.set(vector, false);
                self.stats.eois += 1;
                LapicEffect::Eoi { vector, level_triggered: self.tmr.get(vector) }
            }
            None => LapicEffect::None,
        }
    }

    fn register(&mut self, offset: u64, now: u64) -> Option<u32> {
        let index = ((offset >> 4) & 7) as usize;
        Some(match offset {
            reg::ID => u32::from(self.id) << 24,
            reg::VERSION => VERSION,
            reg::TPR => self.tpr,
            reg::APR => 0,
            reg::PPR => u32::from(self.ppr()),
            reg::RRD => 0,
            reg::LDR => self.ldr,
            reg::DFR => self.dfr,
            reg::SVR => self.svr,
            0x100..=0x170 => self.isr.word(index),
            0x180..=0x1F0 => self.tmr.word(index),
            0x200..=0x270 => self.irr.word(index),
            reg::ESR => self.esr,
            reg::ICR_LOW => self.icr_low,
            reg::ICR_HIGH => self.icr_high,
            reg::LVT_TIMER..=reg::LVT_ERROR => self.lvt[((offset - reg::LVT_TIMER) >> 4) as usize],
            reg::TIMER_INITIAL => self.timer.initial,
            reg::TIMER_CURRENT => self.current_count(now),
            reg::TIMER_DIVIDE => self.timer.divide_reg,
            _ => return None,
        })
    }

    /// A guest read of `size` bytes at `offset` in the APIC page.
    pub fn read(&mut self, offset: u64, size: u8, now: u64) -> u64 {
        let within = offset & 0xF;
        let size = u64::from(size);
        if !matches!(size, 1 | 2 | 4) || within + size > 4 || offset >= 0x1000 {
            self.stats.bad_reads += 1;
            return 0;
        }
        match self.register(offset & !0xF, now) {
            Some(v) => {
                let v = u64::from(v) >> (within * 8);
                v & (u64::MAX >> (64 - size * 8))
            }
            None => {
                self.stats.bad_reads += 1;
                0
            }
        }
    }

    /// A guest write of `size` bytes at `offset`. Only aligned 32-bit
    /// writes reach a register.
    pub fn write(&mut self, offset: u64, size: u8, value: u64, now: u64) -> LapicEffect {
        if size != 4 || offset & 0xF != 0 || offset >= 0x1000 {
            self.stats.bad_writes += 1;
            return LapicEffect::None;
        }
        let value = value as u32;
        match offset {
            reg::TPR => self.tpr = value & 0xFF,
            reg::EOI => return self.eoi(),
            reg::LDR => self.ldr = value & 0xFF00_0000,
            reg::DFR => self.dfr = value | 0x0FFF_FFFF,
            reg::SVR => {
                self.svr = value & SVR_WRITABLE;
                if self.svr & SVR_ENABLE == 0 {
                    for l in &mut self.lvt {
                        *l |= LVT_MASKED;
                    }
                }
            }
            reg::ESR => {
                self.esr = self.esr_pending;
                self.esr_pending = 0;
            }
            reg::ICR_LOW => {
                self.icr_low = value & 0x000C_CFFF;
                return self.send_ipi();
            }
            reg::ICR_HIGH => self.icr_high = value & 0xFF00_0000,
            reg::LVT_TIMER..=reg::LVT_ERROR => {
                let i = ((offset - reg::LVT_TIMER) >> 4) as usize;
                let old_mode = self.timer_mode();
                let mut v = value & LVT_WRITABLE[i];
                if self.svr & SVR_ENABLE == 0 {
                    v |= LVT_MASKED;
                }
                self.lvt[i] = v;
                if i == Lvt::Timer as usize && old_mode != self.timer_mode() {
                    // A mode change disarms the timer (SDM 10.5.4.1).
                    self.timer.loaded_at = None;
                    self.timer.next_fire = None;
                    self.timer.tsc_deadline = 0;
                    self.timer.initial = 0;
                }
            }
            reg::TIMER_INITIAL => {
                if self.timer_mode() != TimerMode::TscDeadline {
                    self.timer.initial = value;
                    self.load_timer(now);
                }
            }
            reg::TIMER_DIVIDE => {
                // Keep the count consistent across a divider change.
                let current = self.current_count(now);
                self.timer.divide_reg = value & 0xB;
                if self.timer.loaded_at.is_some() && current != 0 {
                    let initial = self.timer.initial;
                    self.timer.initial = current;
                    self.load_timer(now);
                    self.timer.initial = initial;
                }
            }
            _ => {
                self.stats.bad_writes += 1;
            }
        }
        LapicEffect::None
    }

    fn send_ipi(&mut self) -> LapicEffect {
        let low = self.icr_low;
        let shorthand = match (low >> 18) & 3 {
            0 => Shorthand::None,
            1 => Shorthand::SelfOnly,
            2 => Shorthand::AllIncludingSelf,
            _ => Shorthand::AllExcludingSelf,
        };
        let msg = ApicMessage {
            vector: low as u8,
            delivery_mode: DeliveryMode::from_bits(low >> 8),
            destination_mode: if low & (1 << 11) != 0 { DestinationMode::Logical } else { DestinationMode::Physical },
            destination: (self.icr_high >> 24) as u8,
            trigger: if low & (1 << 15) != 0 { TriggerMode::Level } else { TriggerMode::Edge },
            assert: low & (1 << 14) != 0,
            shorthand,
        };
        if matches!(msg.delivery_mode, DeliveryMode::Fixed | DeliveryMode::LowestPriority) && msg.vector < 16 {
            self.esr_pending |= ESR_SEND_ILLEGAL_VECTOR;
            self.stats.refused += 1;
            return LapicEffect::None;
        }
        self.stats.ipis_sent += 1;
        LapicEffect::Ipi(msg)
    }

    /// The timer mode selected by LVT timer bits 18:17 (0b11 reserved,
    /// treated as one-shot).
    pub fn timer_mode(&self) -> TimerMode {
        match (self.lvt[Lvt::Timer as usize] >> 17) & 3 {
            1 => TimerMode::Periodic,
            2 => TimerMode::TscDeadline,
            _ => TimerMode::OneShot,
        }
    }

    /// Divider from the divide configuration register.
    fn divider(&self) -> u64 {
        let d = self.timer.divide_reg;
        let code = (d & 3) | ((d >> 1) & 4);
        if code == 7 {
            1
        } else {
            2 << code
        }
    }

    /// Nanoseconds for `counts` timer counts.
    fn counts_to_ns(&self, counts: u64) -> u64 {
        let ns =
            u128::from(counts) * u128::from(self.divider()) * 1_000_000_000 / u128::from(self.config.bus_hz.max(1));
        u64::try_from(ns).unwrap_or(u64::MAX)
    }

    /// Whole timer counts in `ns` nanoseconds.
    fn ns_to_counts(&self, ns: u64) -> u64 {
        let c = u128::from(ns).saturating_mul(u128::from(self.config.bus_hz))
            / (1_000_000_000 * u128::from(self.divider()));
        u64::try_from(c).unwrap_or(u64::MAX)
    }

    fn load_timer(&mut self, now: u64) {
        if self.timer.initial == 0 {
            self.timer.loaded_at = None;
            self.timer.next_fire = None;
        } else {
            self.timer.loaded_at = Some(now);
            let period = self.counts_to_ns(u64::from(self.timer.initial)).max(1);
            self.timer.next_fire = Some(now.saturating_add(period));
        }
    }

    /// The current-count register at `now`.
    pub fn current_count(&self, now: u64) -> u32 {
        let (Some(loaded), initial) = (self.timer.loaded_at, u64::from(self.timer.initial)) else {
            return 0;
        };
        if initial == 0 {
            return 0;
        }
        let elapsed = self.ns_to_counts(now.saturating_sub(loaded));
        match self.timer_mode() {
            TimerMode::Periodic => (initial - elapsed % initial) as u32,
            TimerMode::OneShot => initial.saturating_sub(elapsed) as u32,
            TimerMode::TscDeadline => 0,
        }
    }

    /// `RDMSR IA32_TSC_DEADLINE`: the armed deadline, or 0.
    pub fn read_tsc_deadline(&self) -> u64 {
        if self.timer_mode() == TimerMode::TscDeadline {
            self.timer.tsc_deadline
        } else {
            0
        }
    }

    /// `WRMSR IA32_TSC_DEADLINE` (0 disarms). Ignored unless the LVT timer
    /// is in TSC-deadline mode (as on hardware). A deadline already passed
    /// (`deadline <= tsc`) fires at once.
    pub fn write_tsc_deadline(&mut self, deadline: u64, tsc: u64) {
        if self.timer_mode() != TimerMode::TscDeadline {
            return;
        }
        self.timer.tsc_deadline = deadline;
        if deadline != 0 && deadline <= tsc {
            self.fire_tsc_deadline();
        }
    }

    fn fire_tsc_deadline(&mut self) {
        self.timer.tsc_deadline = 0;
        self.fire_timer();
    }

    fn fire_timer(&mut self) {
        let lvt = self.lvt[Lvt::Timer as usize];
        self.stats.timer_fires += 1;
        if lvt & LVT_MASKED == 0 {
            self.accept(lvt as u8, false);
        }
    }

    /// When the timer next expires, if armed.
    pub fn next_deadline(&self) -> Option<Deadline> {
        match self.timer_mode() {
            TimerMode::TscDeadline => (self.timer.tsc_deadline != 0).then_some(Deadline::Tsc(self.timer.tsc_deadline)),
            _ => self.timer.next_fire.map(Deadline::Nanos),
        }
    }

    /// Fires an expired timer into IRR (periodic expiries missed since the
    /// last tick coalesce into one interrupt). `tsc` is the vCPU's TSC at
    /// `now`. Returns whether it fired.
    pub fn tick(&mut self, now: u64, tsc: u64) -> bool {
        match self.timer_mode() {
            TimerMode::TscDeadline => {
                if self.timer.tsc_deadline != 0 && tsc >= self.timer.tsc_deadline {
                    self.fire_tsc_deadline();
                    return true;
                }
                false
            }
            mode => {
                let Some(due) = self.timer.next_fire else { return false };
                if now < due {
                    return false;
                }
                if mode == TimerMode::Periodic {
                    let period = self.counts_to_ns(u64::from(self.timer.initial)).max(1);
                    let missed = (now - due) / period;
                    self.timer.next_fire = Some(due.saturating_add(period.saturating_mul(missed.saturating_add(1))));
                } else {
                    self.timer.next_fire = None;
                    self.timer.loaded_at = None;
                }
                self.fire_timer();
                true
            }
        }
    }
}

#[cfg(test)]
mod tests;
