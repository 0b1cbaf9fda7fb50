//! The 8254 PIT (ports 0x40-0x43) and system control port B (0x61).
//!
//! Counters run at 1.193182 MHz (the PM timer crystal / 3) computed from
//! `now`: nothing ticks in the background, every read computes the count.
//! Channel 2's gate and output are on port 0x61 (bits 0 and 5), which is
//! what Linux's `pit_calibrate_tsc` (mode 0, poll OUT2) and
//! `quick_pit_calibrate` (mode 0 from 0xFFFF, read the MSB until it
//! changes, `pit_expect_msb`) use. Channel 0's output drives ISA IRQ 0
//! (GSI 2 via the MADT override): [`Pit::next_deadline`] and
//! [`Pit::tick`] report its rising edges (modes 0, 2, 3, 4), so Linux's
//! `check_timer` and APIC timer calibration can use it.
//!
//! Modes 0-5 are modelled from the count equations; mode 1 and 5 start on
//! a rising gate (only channel 2 has a gate), the one-clock load delay of
//! real parts is not. Read-back, counter latch and status latch work.

// PIT input clock: 3.579545 MHz / 3 = 1.193182 MHz.
const NUM: u128 = 3_579_545;
const DEN: u128 = 3_000_000_000;

pub const PIT_CHANNEL0_PORT: u16 = 0x40;
pub const PIT_COMMAND_PORT: u16 = 0x43;
pub const SYSTEM_CONTROL_B_PORT: u16 = 0x61;

/// PIT ticks in `ns` nanoseconds.
pub fn pit_ticks(ns: u64) -> u64 {
    (u128::from(ns) * NUM / DEN) as u64
}

/// Nanoseconds until `ticks` PIT ticks have elapsed (rounded up).
pub fn pit_ticks_to_ns(ticks: u64) -> u64 {
    u64::try_from((u128::from(ticks) * DEN).div_ceil(NUM)).unwrap_or(u64::MAX)
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Access {
    #[default]
    Latch,
    Lsb,
    Msb,
    LsbMsb,
}

#[derive(Clone, Copy, Debug, Default)]
struct Channel {
    mode: u8,
    access: Access,
    bcd: bool,
    /// The count as written (0 = maximum).
    reload: u16,
    /// LSB written, MSB pending (lobyte/hibyte access).
    write_lsb: Option<u8>,
    /// Next live read returns the MSB (lobyte/hibyte access).
    read_msb_next: bool,
    /// Latched count and whether its LSB was already read.
    latched: Option<(u16, bool)>,
    latched_status: Option<u8>,
    gate: bool,
    /// A count was written since the control word.
    armed: bool,
    /// Counting since this `now`, if the gate lets it count.
    running_since: Option<u64>,
    /// Ticks counted before the gate last stopped the counter.
    frozen: u64,
    /// Channel 0: output rising edges already reported.
    edges_reported: u64,
}

impl Channel {
    fn period(&self) -> u64 {
        match (self.reload, self.bcd) {
            (0, false) => 0x1_0000,
            (0, true) => 10_000,
            (r, false) => u64::from(r),
            (r, true) => u64::from(from_bcd16(r)).max(1),
        }
    }

    fn modulus(&self) -> u64 {
        if self.bcd {
            10_000
        } else {
            0x1_0000
        }
    }

    fn elapsed(&self, now: u64) -> u64 {
        self.frozen + self.running_since.map_or(0, |s| pit_ticks(now.saturating_sub(s)))
    }

    fn counts_on_load(&self) -> bool {
        !matches!(self.mode, 1 | 5)
    }

    /// (count, OUT) at `now`.
    fn state(&self, now: u64) -> (u16, bool) {
        if !self.armed {
            return (self.reload, self.mode != 0);
        }
        let started = self.running_since.is_some() || self.frozen != 0 || self.counts_on_load();
        if !started {
            // Modes 1 and 5 wait for a gate trigger with OUT high.
            return (self.reload, true);
        }
        let t = self.elapsed(now);
        let n = self.period();
        let m = self.modulus();
        let (count, out) = match self.mode {
            0 | 1 => ((n + m - t % m) % m, t >= n),
            2 => {
                let c = n - t % n;
                (c % m, c != 1)
            }
            3 => {
                let half = (n / 2).max(1);
                let phase = t % n;
                ((n - 2 * (t % half)) % m, phase < n.div_ceil(2))
            }
            _ => ((n + m - t % m) % m, t != n),
        };
        let count = count as u16;
        (if self.bcd { to_bcd16(count) } else { count }, out)
    }

    /// Rising edges of OUT (interrupts) counted from the load.
    fn edges(&self, now: u64) -> u64 {
        if !self.armed || self.running_since.is_none() && self.frozen == 0 {
            return 0;
        }
        let t = self.elapsed(now);
        let n = self.period();
        match self.mode {
            2 | 3 => t / n,
            0 | 4 => u64::from(t >= n),
            _ => 0,
        }
    }

    /// `now` of the next rising edge, if counting.
    fn next_edge(&self) -> Option<u64> {
        let since = self.running_since?;
        if !self.armed {
            return None;
        }
        let n = self.period();
        let target = match self.mode {
            2 | 3 => (self.edges_reported + 1).saturating_mul(n),
            0 | 4 if self.edges_reported == 0 => n,
            _ => return None,
        };
        let remaining = target.saturating_sub(self.frozen);
        Some(since.saturating_add(pit_ticks_to_ns(remaining)))
    }

    fn status(&self, now: u64) -> u8 {
        let access = match self.access {
            Access::Latch => 0,
            Access::Lsb => 1,
            Access::Msb => 2,
            Access::LsbMsb => 3,
        };
        let (_, out) = self.state(now);
        (u8::from(out) << 7) | (u8::from(!self.armed) << 6) | (access << 4) | (self.mode << 1) | u8::from(self.bcd)
    }

    fn latch_count(&mut self, now: u64) {
        if self.latched.is_none() {
            self.latched = Some((self.state(now).0, false));
        }
    }

    fn start(&mut self, now: u64) {
        self.frozen = 0;
        self.edges_reported = 0;
        self.running_since = (self.gate && self.counts_on_load()).then_some(now);
    }

    fn set_gate(&mut self, gate: bool, now: u64) {
        if gate == self.gate {
            return;
        }
        self.gate = gate;
        if !gate {
            self.frozen = self.elapsed(now);
            self.running_since = None;
        } else if self.armed {
            match self.mode {
                // Gate low only suspended counting.
                0 | 4 => self.running_since = Some(now),
                // Rising gate (re)triggers / reloads.
                _ => {
                    self.frozen = 0;
                    self.edges_reported = 0;
                    self.running_since = Some(now);
                }
            }
        }
    }

    fn read(&mut self, now: u64) -> u8 {
        if let Some(s) = self.latched_status.take() {
            return s;
        }
        if let Some((v, lsb_done)) = self.latched {
            let [lo, hi] = v.to_le_bytes();
            return match self.access {
                Access::Msb => {
                    self.latched = None;
                    hi
                }
                Access::LsbMsb if !lsb_done => {
                    self.latched = Some((v, true));
                    lo
                }
                Access::LsbMsb => {
                    self.latched = None;
                    hi
                }
                _ => {
                    self.latched = None;
                    lo
                }
            };
        }
        let [lo, hi] = self.state(now).0.to_le_bytes();
        match self.access {
            Access::Msb => hi,
            Access::LsbMsb => {
                self.read_msb_next = !self.read_msb_next;
                if self.read_msb_next {
                    lo
                } else {
                    hi
                }
            }
            _ => lo,
        }
    }

    fn write(&mut self, value: u8, now: u64) {
        let reload = match self.access {
            Access::Lsb => u16::from(value),
            Access::Msb => u16::from(value) << 8,
            Access::LsbMsb => match self.write_lsb.take() {
                None => {
                    self.write_lsb = Some(value);
                    // Mode 0 stops counting until the MSB arrives.
                    if self.mode == 0 {
                        self.armed = false;
                    }
                    return;
                }
                Some(lo) => u16::from_le_bytes([lo, value]),
            },
            Access::Latch => return,
        };
        self.reload = reload;
        self.armed = true;
        self.start(now);
    }

    fn control(&mut self, access: Access, mode: u8, bcd: bool) {
        self.access = access;
        self.mode = if mode >= 6 { mode - 4 } else { mode };
        self.bcd = bcd;
        self.write_lsb = None;
        self.read_msb_next = false;
        self.latched = None;
        self.latched_status = None;
        self.armed = false;
        self.running_since = None;
        self.frozen = 0;
        self.edges_reported = 0;
    }
}

fn from_bcd16(v: u16) -> u16 {
    let d = |s: u16| ((v >> s) & 0xF).min(9);
    d(12) * 1000 + d(8) * 100 + d(4) * 10 + d(0)
}

fn to_bcd16(v: u16) -> u16 {
    let v = v % 10_000;
    ((v / 1000) << 12) | ((v / 100 % 10) << 8) | ((v / 10 % 10) << 4) | (v % 10)
}

/// The three PIT channels and port 0x61.
#[derive(Clone, Debug)]
pub struct Pit {
    channels: [Channel; 3],
    /// Port 0x61 bits 3:0 (gate 2, speaker, parity/IOCHK check disables).
    port61: u8,
}

impl Default for Pit {
    fn default() -> Self {
        Self::new()
    }
}

impl Pit {
    pub fn new() -> Self {
        let mut channels = [Channel::default(); 3];
        channels[0].gate = true;
        channels[1].gate = true;
        Self { channels, port61: 0 }
    }

    /// A guest `IN` from 0x40..=0x43 (0x43 reads 0xFF: write-only).
    pub fn read(&mut self, port: u16, now: u64) -> u8 {
        match port {
            0x40..=0x42 => self.channels[usize::from(port - 0x40)].read(now),
            _ => 0xFF,
        }
    }

    /// A guest `OUT` to 0x40..=0x43.
    pub fn write(&mut self, port: u16, value: u8, now: u64) {
        match port {
            0x40..=0x42 => self.channels[usize::from(port - 0x40)].write(value, now),
            0x43 => self.command(value, now),
            _ => {}
        }
    }

    fn command(&mut self, value: u8, now: u64) {
        let sc = value >> 6;
        if sc == 3 {
            // Read-back: bit 5 = !COUNT, bit 4 = !STATUS, bits 3:1 = channels.
            for (i, ch) in self.channels.iter_mut().enumerate() {
                if value & (2 << i) == 0 {
                    continue;
                }
                if value & 0x20 == 0 {
                    ch.latch_count(now);
                }
                if value & 0x10 == 0 && ch.latched_status.is_none() {
                    ch.latched_status = Some(ch.status(now));
                }
            }
            return;
        }
        let ch = &mut self.channels[usize::from(sc)];
        let access = match (value >> 4) & 3 {
            0 => {
                ch.latch_count(now);
                return;
            }
            1 => Access::Lsb,
            2 => Access::Msb,
            _ => Access::LsbMsb,
        };
        ch.control(access, (value >> 1) & 7, value & 1 != 0);
    }

    /// Port 0x61: bits 3:0 as written, bit 4 the refresh toggle (every
    /// 15.085 µs), bit 5 channel 2's OUT; no NMI sources (bits 7:6 = 0).
    pub fn read_port61(&self, now: u64) -> u8 {
        let refresh = ((now / 15_085) & 1) as u8;
        let out2 = self.channels[2].state(now).1;
        (self.port61 & 0x0F) | (refresh << 4) | (u8::from(out2) << 5)
    }

    pub fn write_port61(&mut self, value: u8, now: u64) {
        self.port61 = value & 0x0F;
        self.channels[2].set_gate(value & 1 != 0, now);
    }

    /// Channel `ch`'s OUT at `now` (`false` for a bad index).
    pub fn output(&self, ch: usize, now: u64) -> bool {
        self.channels.get(ch).is_some_and(|c| c.state(now).1)
    }

    /// When channel 0 next raises IRQ 0.
    pub fn next_deadline(&self) -> Option<u64> {
        self.channels[0].next_edge()
    }

    /// Whether channel 0 produced an interrupt (a rising OUT edge) since
    /// the last call; missed periods coalesce into one.
    pub fn tick(&mut self, now: u64) -> bool {
        let ch = &mut self.channels[0];
        let edges = ch.edges(now);
        if edges > ch.edges_reported {
            ch.edges_reported = edges;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// arch/x86/kernel/tsc.c `pit_calibrate_tsc(latch, ms, loopmin)`:
    /// gate high + speaker off, channel 2 mode 0, poll port 0x61 bit 5.
    #[test]
    fn linux_pit_calibrate_tsc() {
        let mut p = Pit::new();
        let latch = 11_931u16; // CAL_LATCH for 10 ms
        let v = (p.read_port61(0) & !0x02) | 0x01;
        p.write_port61(v, 0);
        p.write(0x43, 0xB0, 0);
        p.write(0x42, latch as u8, 0);
        p.write(0x42, (latch >> 8) as u8, 0);
        assert_eq!(p.read_port61(0) & 0x20, 0);
        let done = pit_ticks_to_ns(u64::from(latch));
        assert_eq!(p.read_port61(done - 1) & 0x20, 0);
        assert_eq!(p.read_port61(done) & 0x20, 0x20);
        assert!((9_999_000..10_001_000).contains(&done));
    }

    /// `quick_pit_calibrate`: mode 0 from 0xFFFF, reads LSB then MSB
    /// without latching (`pit_verify_msb`), waits for each MSB value.
    #[test]
    fn linux_quick_pit_calibrate_msb_sequence() {
        let mut p = Pit::new();
        p.write_port61((p.read_port61(0) & !0x02) | 0x01, 0);
        p.write(0x43, 0xB0, 0);
        p.write(0x42, 0xFF, 0);
        p.write(0x42, 0xFF, 0);
        let msb_at = |p: &mut Pit, now: u64| {
            p.read(0x42, now);
            p.read(0x42, now)
        };
        assert_eq!(msb_at(&mut p, 0), 0xFF);
        // MSB steps down by one every 256 ticks (~214.5 µs).
        for i in 1..=10u64 {
            let t = pit_ticks_to_ns(256 * i);
            assert_eq!(msb_at(&mut p, t - 1), 0xFF - (i as u8 - 1));
            assert_eq!(msb_at(&mut p, t), 0xFF - i as u8);
        }
    }

    #[test]
    fn gate_low_suspends_mode0() {
        let mut p = Pit::new();
        p.write_port61(1, 0);
        p.write(0x43, 0xB0, 0);
        p.write(0x42, 0x00, 0);
        p.write(0x42, 0x10, 0);
        let t = pit_ticks_to_ns(0x100);
        p.write_port61(0, t);
        p.write(0x43, 0x80, 5 * t); // latch channel 2
        let lo = p.read(0x42, 5 * t);
        let hi = p.read(0x42, 5 * t);
        assert_eq!(u16::from_le_bytes([lo, hi]), 0x0F00);
    }

    #[test]
    fn channel0_rate_generator_interrupts() {
        let mut p = Pit::new();
        // Linux i8253 periodic: 0x34, LATCH = 1193182 / HZ(250) ≈ 4773.
        p.write(0x43, 0x34, 1_000);
        p.write(0x40, (4773u16 & 0xFF) as u8, 1_000);
        p.write(0x40, (4773u16 >> 8) as u8, 1_000);
        let first = p.next_deadline().unwrap();
        assert_eq!(first, 1_000 + pit_ticks_to_ns(4773));
        assert!(!p.tick(first - 1));
        assert!(p.tick(first));
        assert!(!p.tick(first));
        assert_eq!(p.next_deadline(), Some(1_000 + pit_ticks_to_ns(2 * 4773)));
        // Many missed periods coalesce.
        assert!(p.tick(first * 10));
        assert!(!p.tick(first * 10));
        // Shutdown (mode 0, no count): no more interrupts.
        p.write(0x43, 0x30, first * 10);
        assert_eq!(p.next_deadline(), None);
        assert!(!p.tick(u64::MAX / 2));
    }

    #[test]
    fn channel0_oneshot_mode0() {
        let mut p = Pit::new();
        p.write(0x43, 0x30, 0);
        p.write(0x40, 100, 0);
        p.write(0x40, 0, 0);
        let due = p.next_deadline().unwrap();
        assert!(p.tick(due));
        assert_eq!(p.next_deadline(), None);
        assert!(!p.tick(due * 100));
    }

    #[test]
    fn readback_status_and_count() {
        let mut p = Pit::new();
        p.write(0x43, 0x34, 0);
        // Status before a count is written: null count set, OUT high.
        p.write(0x43, 0xE2, 0); // read-back status only, channel 0
        assert_eq!(p.read(0x40, 0), 0x80 | 0x40 | 0x30 | 0x04);
        p.write(0x40, 0x00, 0);
        p.write(0x40, 0x01, 0);
        // Read-back count + status for channel 0.
        p.write(0x43, 0xC2, pit_ticks_to_ns(16));
        assert_eq!(p.read(0x40, 10_000_000), 0x80 | 0x30 | 0x04);
        let lo = p.read(0x40, 10_000_000);
        let hi = p.read(0x40, 10_000_000);
        assert_eq!(u16::from_le_bytes([lo, hi]), 0x100 - 16);
    }

    #[test]
    fn square_wave_and_bcd() {
        let mut p = Pit::new();
        p.write(0x43, 0x36, 0);
        p.write(0x40, 100, 0);
        p.write(0x40, 0, 0);
        assert!(p.output(0, pit_ticks_to_ns(49)));
        assert!(!p.output(0, pit_ticks_to_ns(50)));
        assert!(p.output(0, pit_ticks_to_ns(100)));
        // BCD mode 0 count 0x1000 (= 1000).
        p.write(0x43, 0xB1, 0);
        p.write(0x42, 0x00, 0);
        p.write(0x42, 0x10, 0);
        p.write_port61(1, 0);
        p.write(0x43, 0x80, pit_ticks_to_ns(1));
        let lo = p.read(0x42, 0);
        let hi = p.read(0x42, 0);
        assert_eq!(u16::from_le_bytes([lo, hi]), 0x0999);
    }
}
