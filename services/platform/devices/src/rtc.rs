//! The MC146818-style CMOS RTC at ports 0x70 (index; bit 7 = NMI disable)
//! and 0x71 (data).
//!
//! The time comes from a caller-given wall-clock value (seconds since the
//! Unix epoch, UTC) at a given `now` and advances with `now`. Registers:
//! 0x00/0x02/0x04 seconds, minutes, hours (24- or 12-hour per register B),
//! 0x06 day of week (1 = Sunday), 0x07-0x09 day, month, year, 0x32
//! century; BCD unless register B selects binary. Register A reads DV =
//! 32.768 kHz, rate 1024 Hz, and UIP is set only in the 244 µs before each
//! second boundary (never stuck). Register B: 24-hour, BCD by default;
//! SET freezes the time registers for the guest to write, clearing SET
//! loads what it wrote. Register C reads 0 (no interrupt flags: IRQ 8 is
//! never raised), register D reads VRT (battery good). The other bytes up
//! to 0x7F are plain CMOS RAM.
//!
//! The FADT says "no CMOS RTC", so Linux registers no rtc-cmos device, but
//! its `read_persistent_clock64` (`mach_get_cmos_time`) still reads the
//! time here at boot, and NTP sync may write it back.

pub const RTC_INDEX_PORT: u16 = 0x70;
pub const RTC_DATA_PORT: u16 = 0x71;

const REG_A: u8 = 0x0A;
const REG_B: u8 = 0x0B;
const REG_C: u8 = 0x0C;
const REG_D: u8 = 0x0D;
const REG_CENTURY: u8 = 0x32;
const UIP: u8 = 0x80;
const B_SET: u8 = 0x80;
const B_BINARY: u8 = 0x04;
const B_24H: u8 = 0x02;
const NS_PER_S: u64 = 1_000_000_000;
/// UIP is set this long before each update.
const UIP_NS: u64 = 244_000;

/// A broken-down UTC date and time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime {
    pub year: u32,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    /// 0 = Sunday.
    pub weekday: u8,
}

impl DateTime {
    /// From seconds since 1970-01-01 00:00:00 UTC.
    pub fn from_unix(secs: u64) -> Self {
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        // Days-to-civil over 400-year eras (proleptic Gregorian).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as u32;
        Self {
            year,
            month,
            day,
            hour: (rem / 3600) as u8,
            minute: (rem / 60 % 60) as u8,
            second: (rem % 60) as u8,
            weekday: ((days + 4) % 7) as u8,
        }
    }

    /// To seconds since the epoch (dates before 1970 give 0). Fields out of
    /// range are clamped.
    pub fn to_unix(&self) -> u64 {
        let month = i64::from(self.month.clamp(1, 12));
        let day = i64::from(self.day.clamp(1, 31));
        let y = i64::from(self.year) - i64::from(month <= 2);
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let mp = if month > 2 { month - 3 } else { month + 9 };
        let doy = (153 * mp + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        let secs = days * 86_400
            + i64::from(self.hour.min(23)) * 3600
            + i64::from(self.minute.min(59)) * 60
            + i64::from(self.second.min(59));
        u64::try_from(secs).unwrap_or(0)
    }
}

fn to_bcd(v: u8) -> u8 {
    ((v / 10 % 10) << 4) | (v % 10)
}

fn from_bcd(v: u8) -> u8 {
    (v >> 4).min(9) * 10 + (v & 0xF).min(9)
}

/// The RTC.
#[derive(Clone, Debug)]
pub struct Rtc {
    index: u8,
    nmi_disabled: bool,
    /// Wall-clock seconds at `base_now`.
    base_secs: u64,
    base_now: u64,
    reg_a: u8,
    reg_b: u8,
    /// Time registers as written while SET (0x00..=0x09, 0x32 in [10]).
    staged: [u8; 11],
    ram: [u8; 128],
}

impl Rtc {
    /// An RTC reading `wall_secs` (Unix seconds, UTC) at `now`.
    pub fn new(wall_secs: u64, now: u64) -> Self {
        Self {
            index: 0,
            nmi_disabled: false,
            base_secs: wall_secs,
            base_now: now,
            reg_a: 0x26,
            reg_b: B_24H,
            staged: [0; 11],
            ram: [0; 128],
        }
    }

    /// Sets the clock (e.g. after the host learns the time).
    pub fn set_wall_clock(&mut self, wall_secs: u64, now: u64) {
        self.base_secs = wall_secs;
        self.base_now = now;
    }

    /// The clock's Unix time at `now`.
    pub fn wall_clock(&self, now: u64) -> u64 {
        self.base_secs.saturating_add(now.saturating_sub(self.base_now) / NS_PER_S)
    }

    /// NMI disabled by port 0x70 bit 7 (stored; no NMI source exists).
    pub fn nmi_disabled(&self) -> bool {
        self.nmi_disabled
    }

    fn encode(&self, v: u8) -> u8 {
        if self.reg_b & B_BINARY != 0 {
            v
        } else {
            to_bcd(v)
        }
    }

    fn decode(&self, v: u8) -> u8 {
        if self.reg_b & B_BINARY != 0 {
            v
        } else {
            from_bcd(v)
        }
    }

    fn encode_hour(&self, h: u8) -> u8 {
        if self.reg_b & B_24H != 0 {
            self.encode(h)
        } else {
            let h12 = match h % 12 {
                0 => 12,
                x => x,
            };
            self.encode(h12) | if h >= 12 { 0x80 } else { 0 }
        }
    }

    fn decode_hour(&self, v: u8) -> u8 {
        if self.reg_b & B_24H != 0 {
            self.decode(v)
        } else {
            let h = self.decode(v & 0x7F) % 12;
            h + if v & 0x80 != 0 { 12 } else { 0 }
        }
    }

    /// The time registers for `t` (indices 0..=9, then the century).
    fn registers(&self, t: &DateTime) -> [u8; 11] {
        let mut r = [0u8; 11];
        r[0] = self.encode(t.second);
        r[1] = self.ram[1];
        r[2] = self.encode(t.minute);
        r[3] = self.ram[3];
        r[4] = self.encode_hour(t.hour);
        r[5] = self.ram[5];
        r[6] = self.encode(t.weekday + 1);
        r[7] = self.encode(t.day);
        r[8] = self.encode(t.month);
        r[9] = self.encode((t.year % 100) as u8);
        r[10] = self.encode((t.year / 100 % 100) as u8);
        r
    }

    fn parse(&self, r: &[u8; 11]) -> u64 {
        DateTime {
            year: u32::from(self.decode(r[10])) * 100 + u32::from(self.decode(r[9])),
            month: self.decode(r[8]),
            day: self.decode(r[7]),
            hour: self.decode_hour(r[4]),
            minute: self.decode(r[2]),
            second: self.decode(r[0]),
            weekday: 0,
        }
        .to_unix()
    }

    fn slot(index: u8) -> Option<usize> {
        match index {
            0..=9 => Some(usize::from(index)),
            REG_CENTURY => Some(10),
            _ => None,
        }
    }

    fn current(&self, now: u64) -> [u8; 11] {
        if self.reg_b & B_SET != 0 {
            self.staged
        } else {
            self.registers(&DateTime::from_unix(self.wall_clock(now)))
        }
    }

    pub fn read(&mut self, port: u16, now: u64) -> u8 {
        if port != RTC_DATA_PORT {
            // The index port is write-only; reads float.
            return 0xFF;
        }
        let index = self.index;
        if let Some(slot) = Self::slot(index) {
            return self.current(now)[slot];
        }
        match index {
            REG_A => {
                let frac = now.saturating_sub(self.base_now) % NS_PER_S;
                let uip = self.reg_b & B_SET == 0 && frac >= NS_PER_S - UIP_NS;
                self.reg_a | if uip { UIP } else { 0 }
            }
            REG_B => self.reg_b,
            REG_C => 0,
            REG_D => 0x80,
            _ => self.ram[usize::from(index & 0x7F)],
        }
    }

    pub fn write(&mut self, port: u16, value: u8, now: u64) {
        if port == RTC_INDEX_PORT {
            self.index = value & 0x7F;
            self.nmi_disabled = value & 0x80 != 0;
            return;
        }
        if port != RTC_DATA_PORT {
            return;
        }
        let index = self.index;
        if let Some(slot) = Self::slot(index) {
            if matches!(index, 1 | 3 | 5) {
                // Alarms: plain storage (no alarm interrupt).
                self.ram[usize::from(index)] = value;
                return;
            }
            if self.reg_b & B_SET != 0 {
                self.staged[slot] = value;
            } else {
                let mut r = self.current(now);
                r[slot] = value;
                let secs = self.parse(&r);
                self.set_wall_clock(secs, now);
            }
            return;
        }
        match index {
            REG_A => self.reg_a = value & 0x7F,
            REG_B => {
                let was_set = self.reg_b & B_SET != 0;
                let set = value & B_SET != 0;
                if set && !was_set {
                    self.staged = self.current(now);
                }
                // Interrupt enables (PIE, AIE, UIE, SQWE) are stored but never fire.
                self.reg_b = value;
                if was_set && !set {
                    let secs = self.parse(&self.staged);
                    self.set_wall_clock(secs, now);
                }
            }
            REG_C | REG_D => {}
            _ => self.ram[usize::from(index & 0x7F)] = value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-25 11:33:30 UTC, a Wednesday.
    const T: u64 = 1_795_606_410;

    fn reg(r: &mut Rtc, i: u8, now: u64) -> u8 {
        r.write(RTC_INDEX_PORT, i, now);
        r.read(RTC_DATA_PORT, now)
    }

    #[test]
    fn date_conversion_round_trips() {
        let d = DateTime::from_unix(T);
        assert_eq!((d.year, d.month, d.day, d.hour, d.minute, d.second, d.weekday), (2026, 11, 25, 11, 33, 30, 3));
        assert_eq!(d.to_unix(), T);
        assert_eq!(DateTime::from_unix(0).weekday, 4);
        let leap = DateTime::from_unix(951_782_400); // 2000-02-29
        assert_eq!((leap.year, leap.month, leap.day), (2000, 2, 29));
        for s in [0, 86_399, 951_782_400, 4_102_444_800, T] {
            assert_eq!(DateTime::from_unix(s).to_unix(), s);
        }
    }

    /// What Linux's mc146818_get_time reads: BCD, 24 h, UIP not stuck.
    #[test]
    fn linux_reads_a_valid_bcd_date() {
        let mut r = Rtc::new(T, 0);
        assert_eq!(reg(&mut r, REG_A, 0) & UIP, 0);
        assert_eq!(reg(&mut r, REG_B, 0), B_24H);
        assert_eq!(reg(&mut r, REG_D, 0), 0x80);
        let now = 5 * NS_PER_S + 1;
        let regs: Vec<u8> = [0, 2, 4, 6, 7, 8, 9, 0x32].iter().map(|&i| reg(&mut r, i, now)).collect();
        assert_eq!(regs, [0x35, 0x33, 0x11, 0x04, 0x25, 0x11, 0x26, 0x20]);
        // UIP: only in the last 244 µs of a second.
        assert_eq!(reg(&mut r, REG_A, NS_PER_S - UIP_NS - 1) & UIP, 0);
        assert_eq!(reg(&mut r, REG_A, NS_PER_S - 1) & UIP, UIP);
        assert_eq!(reg(&mut r, REG_A, NS_PER_S) & UIP, 0);
    }

    #[test]
    fn binary_and_12_hour_modes() {
        let mut r = Rtc::new(T + 2 * 3600, 0); // 13:33:30
        r.write(RTC_INDEX_PORT, REG_B, 0);
        r.write(RTC_DATA_PORT, B_BINARY, 0);
        assert_eq!(reg(&mut r, 4, 0), 0x80 | 1);
        assert_eq!(reg(&mut r, 0, 0), 30);
    }

    /// Linux mc146818_set_time: SET, write the fields, clear SET.
    #[test]
    fn guest_sets_the_time() {
        let mut r = Rtc::new(T, 0);
        r.write(RTC_INDEX_PORT, REG_B, 0);
        r.write(RTC_DATA_PORT, B_24H | B_SET, 0);
        for (i, v) in [(0u8, 0x00u8), (2, 0x00), (4, 0x08), (7, 0x01), (8, 0x01), (9, 0x27), (0x32, 0x20)] {
            r.write(RTC_INDEX_PORT, i, 0);
            r.write(RTC_DATA_PORT, v, 0);
        }
        // Frozen while SET.
        assert_eq!(reg(&mut r, 4, 10 * NS_PER_S), 0x08);
        r.write(RTC_INDEX_PORT, REG_B, 10 * NS_PER_S);
        r.write(RTC_DATA_PORT, B_24H, 10 * NS_PER_S);
        assert_eq!(r.wall_clock(10 * NS_PER_S), 1_798_761_600 + 8 * 3600);
        assert_eq!(r.wall_clock(12 * NS_PER_S), 1_798_761_600 + 8 * 3600 + 2);
        // A single-field write without SET.
        r.write(RTC_INDEX_PORT, 2, 12 * NS_PER_S);
        r.write(RTC_DATA_PORT, 0x30, 12 * NS_PER_S);
        assert_eq!(r.wall_clock(12 * NS_PER_S), 1_798_761_600 + 8 * 3600 + 30 * 60 + 2);
    }

    #[test]
    fn nvram_and_nmi_bit() {
        let mut r = Rtc::new(0, 0);
        r.write(RTC_INDEX_PORT, 0x80 | 0x40, 0);
        assert!(r.nmi_disabled());
        r.write(RTC_DATA_PORT, 0xAB, 0);
        assert_eq!(reg(&mut r, 0x40, 0), 0xAB);
        assert_eq!(reg(&mut r, REG_C, 0), 0);
        assert_eq!(r.read(RTC_INDEX_PORT, 0), 0xFF);
    }
}
