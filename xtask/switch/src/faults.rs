//! What can go wrong on one link, and the text form the CLI uses for it:
//! `"drop=10,dup=5,reorder=5,delay=2ms,jitter=1ms,hold=5ms,cut"`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A probability, stored exactly in parts per million.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Percent {
    ppm: u32,
}

const MILLION: u32 = 1_000_000;

impl Percent {
    /// Never.
    pub const ZERO: Percent = Percent { ppm: 0 };
    /// Always.
    pub const HUNDRED: Percent = Percent { ppm: MILLION };

    /// `percent` must be finite and in `0.0..=100.0`; it is rounded to
    /// 0.0001 %.
    pub fn new(percent: f64) -> Option<Percent> {
        if !percent.is_finite() || !(0.0..=100.0).contains(&percent) {
            return None;
        }
        // In range by the check above: 0 ..= 1e6.
        let ppm = (percent * 10_000.0).round() as u32;
        Some(Percent { ppm: ppm.min(MILLION) })
    }

    /// `ppm` parts per million; `None` above 1,000,000.
    pub fn from_ppm(ppm: u32) -> Option<Percent> {
        (ppm <= MILLION).then_some(Percent { ppm })
    }

    /// Parts per million, `0..=1_000_000`.
    pub fn ppm(self) -> u32 {
        self.ppm
    }

    /// As a percentage.
    pub fn as_percent(self) -> f64 {
        f64::from(self.ppm) / 10_000.0
    }

    /// True for 0 %.
    pub fn is_zero(self) -> bool {
        self.ppm == 0
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.ppm / 10_000;
        let frac = self.ppm % 10_000;
        if frac == 0 {
            write!(f, "{whole}")
        } else {
            let digits = format!("{frac:04}");
            write!(f, "{whole}.{}", digits.trim_end_matches('0'))
        }
    }
}

impl fmt::Debug for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}%")
    }
}

/// The highest reorder rate: a reordered frame swaps places with the frame
/// after it, so at most every other frame can be the one that is late.
pub const MAX_REORDER: Percent = Percent { ppm: MILLION / 2 };

/// The longest delay, jitter or hold a spec may ask for.
pub const MAX_FAULT_DURATION: Duration = Duration::from_secs(60);

/// Faults applied to the frames a switch sends *to* one port (and, for `cut`,
/// also to the frames it receives from that port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkFaults {
    /// Chance that a frame is dropped.
    pub drop: Percent,
    /// Chance that a (not dropped) frame is sent twice.
    pub duplicate: Percent,
    /// Share of frames that are delivered after the frame that followed
    /// them. At most [`MAX_REORDER`]. A frame picked for reordering is held
    /// back until the next frame has been sent, or until `reorder_hold` has
    /// passed with no next frame (then it goes out late but in order).
    pub reorder: Percent,
    /// Fixed delay added to every frame.
    pub delay: Duration,
    /// Extra delay, uniform in `0..=jitter`, added to every frame. Frames
    /// with different jitter may overtake each other, as on a real link.
    pub jitter: Duration,
    /// How long a frame picked for reordering waits for a next frame.
    pub reorder_hold: Duration,
    /// The link is down: every frame to and from the port is dropped.
    pub cut: bool,
}

impl LinkFaults {
    /// Default for [`LinkFaults::reorder_hold`].
    pub const DEFAULT_REORDER_HOLD: Duration = Duration::from_millis(5);

    /// A perfect link.
    pub const NONE: LinkFaults = LinkFaults {
        drop: Percent::ZERO,
        duplicate: Percent::ZERO,
        reorder: Percent::ZERO,
        delay: Duration::ZERO,
        jitter: Duration::ZERO,
        reorder_hold: Self::DEFAULT_REORDER_HOLD,
        cut: false,
    };

    /// A link that is down.
    pub const CUT: LinkFaults = LinkFaults { cut: true, ..Self::NONE };

    /// True if this changes nothing about the frames.
    pub fn is_none(&self) -> bool {
        self.drop.is_zero()
            && self.duplicate.is_zero()
            && self.reorder.is_zero()
            && self.delay.is_zero()
            && self.jitter.is_zero()
            && !self.cut
    }

    /// Checks limits that the types alone do not: reorder at most
    /// [`MAX_REORDER`], durations at most [`MAX_FAULT_DURATION`].
    pub fn validate(&self) -> Result<(), FaultSpecError> {
        if self.reorder > MAX_REORDER {
            return Err(FaultSpecError::new(format!("reorder={}", self.reorder), SpecProblem::ReorderTooHigh));
        }
        for (key, value) in [("delay", self.delay), ("jitter", self.jitter), ("hold", self.reorder_hold)] {
            if value > MAX_FAULT_DURATION {
                return Err(FaultSpecError::new(
                    format!("{key}={}", DisplayDuration(value)),
                    SpecProblem::DurationTooLong,
                ));
            }
        }
        Ok(())
    }
}

impl Default for LinkFaults {
    fn default() -> Self {
        Self::NONE
    }
}

/// What is wrong with one item of a fault spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecProblem {
    /// The key is not one of `drop`, `dup`, `reorder`, `delay`, `jitter`,
    /// `hold`, `cut`.
    UnknownKey,
    /// Nothing between two commas (or a trailing comma).
    EmptyItem,
    /// `key=` with nothing after it, or a key that needs a value without one.
    MissingValue,
    /// The same key twice.
    Repeated,
    /// Not a number in `0..=100`.
    BadPercent,
    /// More than [`MAX_REORDER`].
    ReorderTooHigh,
    /// Not a number followed by `ns`, `us`, `ms` or `s`.
    BadDuration,
    /// A non-zero duration without a unit.
    MissingUnit,
    /// Longer than [`MAX_FAULT_DURATION`].
    DurationTooLong,
    /// `cut=` with something other than on/off/true/false/1/0.
    BadBool,
}

impl fmt::Display for SpecProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UnknownKey => "unknown key (expected drop, dup, reorder, delay, jitter, hold or cut)",
            Self::EmptyItem => "empty item (stray comma?)",
            Self::MissingValue => "missing value",
            Self::Repeated => "key given twice",
            Self::BadPercent => "expected a percentage from 0 to 100, such as 10 or 2.5%",
            Self::ReorderTooHigh => "reorder can be at most 50 (every other frame)",
            Self::BadDuration => "expected a duration such as 2ms, 500us, 1.5s or 0",
            Self::MissingUnit => "duration needs a unit: ns, us, ms or s",
            Self::DurationTooLong => "duration longer than 60s",
            Self::BadBool => "expected on, off, true, false, 1 or 0",
        })
    }
}

/// A fault spec that could not be parsed: the offending item and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultSpecError {
    /// The item as written, e.g. `"drop=abc"`.
    pub item: String,
    /// What is wrong with it.
    pub problem: SpecProblem,
}

impl FaultSpecError {
    fn new(item: impl Into<String>, problem: SpecProblem) -> Self {
        Self { item: item.into(), problem }
    }
}

impl fmt::Display for FaultSpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fault spec item `{}`: {}", self.item, self.problem)
    }
}

impl std::error::Error for FaultSpecError {}

fn parse_percent(value: &str) -> Result<Percent, SpecProblem> {
    let number = value.strip_suffix('%').unwrap_or(value).trim();
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(SpecProblem::BadPercent);
    }
    let parsed: f64 = number.parse().map_err(|_| SpecProblem::BadPercent)?;
    Percent::new(parsed).ok_or(SpecProblem::BadPercent)
}

fn parse_duration(value: &str) -> Result<Duration, SpecProblem> {
    let split = value.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    if number.is_empty() {
        return Err(SpecProblem::BadDuration);
    }
    let amount: f64 = number.parse().map_err(|_| SpecProblem::BadDuration)?;
    let nanos_per_unit = match unit.trim() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "" if amount == 0.0 => return Ok(Duration::ZERO),
        "" => return Err(SpecProblem::MissingUnit),
        _ => return Err(SpecProblem::BadDuration),
    };
    let nanos = amount * nanos_per_unit;
    if !nanos.is_finite() || nanos > MAX_FAULT_DURATION.as_nanos() as f64 {
        return Err(SpecProblem::DurationTooLong);
    }
    // Non-negative and at most 6e10 by the checks above.
    Ok(Duration::from_nanos(nanos.round() as u64))
}

fn parse_bool(value: &str) -> Result<bool, SpecProblem> {
    match value {
        "on" | "true" | "1" | "yes" => Ok(true),
        "off" | "false" | "0" | "no" => Ok(false),
        _ => Err(SpecProblem::BadBool),
    }
}

impl FromStr for LinkFaults {
    type Err = FaultSpecError;

    /// Parses `key=value` items separated by commas. Keys: `drop`, `dup`
    /// (or `duplicate`), `reorder` (percentages), `delay`, `jitter`, `hold`
    /// (durations with a unit), and `cut` (bare, or `cut=on|off`). An empty
    /// spec or `none` is a perfect link. Unset keys keep their defaults.
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let mut faults = LinkFaults::NONE;
        let spec = spec.trim();
        if spec.is_empty() || spec == "none" {
            return Ok(faults);
        }
        let mut seen: Vec<&'static str> = Vec::new();
        for raw in spec.split(',') {
            let item = raw.trim();
            if item.is_empty() {
                return Err(FaultSpecError::new(item, SpecProblem::EmptyItem));
            }
            let (key, value) = match item.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (item, None),
            };
            let fail = |problem| FaultSpecError::new(item, problem);
            let canonical = match key {
                "drop" => "drop",
                "dup" | "duplicate" => "dup",
                "reorder" => "reorder",
                "delay" => "delay",
                "jitter" => "jitter",
                "hold" | "reorder_hold" => "hold",
                "cut" => "cut",
                _ => return Err(fail(SpecProblem::UnknownKey)),
            };
            if seen.contains(&canonical) {
                return Err(fail(SpecProblem::Repeated));
            }
            seen.push(canonical);
            if canonical == "cut" {
                faults.cut = match value {
                    None => true,
                    Some(v) => parse_bool(v).map_err(fail)?,
                };
                continue;
            }
            let value = match value {
                Some(v) if !v.is_empty() => v,
                _ => return Err(fail(SpecProblem::MissingValue)),
            };
            match canonical {
                "drop" => faults.drop = parse_percent(value).map_err(fail)?,
                "dup" => faults.duplicate = parse_percent(value).map_err(fail)?,
                "reorder" => {
                    let p = parse_percent(value).map_err(fail)?;
                    if p > MAX_REORDER {
                        return Err(fail(SpecProblem::ReorderTooHigh));
                    }
                    faults.reorder = p;
                }
                "delay" => faults.delay = parse_duration(value).map_err(fail)?,
                "jitter" => faults.jitter = parse_duration(value).map_err(fail)?,
                _ => faults.reorder_hold = parse_duration(value).map_err(fail)?,
            }
        }
        Ok(faults)
    }
}

/// Prints a duration in the largest unit that is exact: `2ms`, `1500us`.
struct DisplayDuration(Duration);

impl fmt::Display for DisplayDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        if nanos == 0 {
            return f.write_str("0");
        }
        for (unit, size) in [("s", 1_000_000_000), ("ms", 1_000_000), ("us", 1_000)] {
            if nanos % size == 0 {
                return write!(f, "{}{unit}", nanos / size);
            }
        }
        write!(f, "{nanos}ns")
    }
}

impl fmt::Display for LinkFaults {
    /// The spec form, listing only what differs from a perfect link;
    /// `none` for a perfect link. It parses back to the same value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut items: Vec<String> = Vec::new();
        if !self.drop.is_zero() {
            items.push(format!("drop={}", self.drop));
        }
        if !self.duplicate.is_zero() {
            items.push(format!("dup={}", self.duplicate));
        }
        if !self.reorder.is_zero() {
            items.push(format!("reorder={}", self.reorder));
        }
        if !self.delay.is_zero() {
            items.push(format!("delay={}", DisplayDuration(self.delay)));
        }
        if !self.jitter.is_zero() {
            items.push(format!("jitter={}", DisplayDuration(self.jitter)));
        }
        if self.reorder_hold != Self::DEFAULT_REORDER_HOLD {
            items.push(format!("hold={}", DisplayDuration(self.reorder_hold)));
        }
        if self.cut {
            items.push("cut".to_string());
        }
        if items.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&items.join(","))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(spec: &str) -> SpecProblem {
        spec.parse::<LinkFaults>().unwrap_err().problem
    }

    #[test]
    fn parses_the_full_example() {
        let f: LinkFaults = "drop=10,dup=5,reorder=5,delay=2ms,jitter=1ms".parse().unwrap();
        assert_eq!(f.drop, Percent::new(10.0).unwrap());
        assert_eq!(f.duplicate.ppm(), 50_000);
        assert_eq!(f.reorder.ppm(), 50_000);
        assert_eq!(f.delay, Duration::from_millis(2));
        assert_eq!(f.jitter, Duration::from_millis(1));
        assert_eq!(f.reorder_hold, LinkFaults::DEFAULT_REORDER_HOLD);
        assert!(!f.cut);
    }

    #[test]
    fn accepts_variants() {
        let f: LinkFaults = " drop = 2.5% , duplicate=0.01, hold=1.5ms, delay=500us, cut ".parse().unwrap();
        assert_eq!(f.drop.ppm(), 25_000);
        assert_eq!(f.duplicate.ppm(), 100);
        assert_eq!(f.reorder_hold, Duration::from_micros(1500));
        assert_eq!(f.delay, Duration::from_micros(500));
        assert!(f.cut);
        assert_eq!("cut=off".parse::<LinkFaults>().unwrap(), LinkFaults::NONE);
        assert_eq!("".parse::<LinkFaults>().unwrap(), LinkFaults::NONE);
        assert_eq!("none".parse::<LinkFaults>().unwrap(), LinkFaults::NONE);
        assert_eq!("delay=0".parse::<LinkFaults>().unwrap(), LinkFaults::NONE);
        assert_eq!("jitter=3s".parse::<LinkFaults>().unwrap().jitter, Duration::from_secs(3));
        assert_eq!("delay=7ns".parse::<LinkFaults>().unwrap().delay, Duration::from_nanos(7));
        assert_eq!("reorder=50".parse::<LinkFaults>().unwrap().reorder, MAX_REORDER);
    }

    #[test]
    fn rejects_bad_specs_with_the_item_named() {
        let err = "drop=10,dupe=5".parse::<LinkFaults>().unwrap_err();
        assert_eq!(err.item, "dupe=5");
        assert_eq!(err.problem, SpecProblem::UnknownKey);
        assert!(err.to_string().contains("`dupe=5`"), "{err}");

        assert_eq!(problem("drop=abc"), SpecProblem::BadPercent);
        assert_eq!(problem("drop=-1"), SpecProblem::BadPercent);
        assert_eq!(problem("drop=101"), SpecProblem::BadPercent);
        assert_eq!(problem("drop=1e1"), SpecProblem::BadPercent);
        assert_eq!(problem("drop=nan"), SpecProblem::BadPercent);
        assert_eq!(problem("drop="), SpecProblem::MissingValue);
        assert_eq!(problem("drop"), SpecProblem::MissingValue);
        assert_eq!(problem("drop=1,drop=2"), SpecProblem::Repeated);
        assert_eq!(problem("dup=1,duplicate=2"), SpecProblem::Repeated);
        assert_eq!(problem("reorder=51"), SpecProblem::ReorderTooHigh);
        assert_eq!(problem("delay=2"), SpecProblem::MissingUnit);
        assert_eq!(problem("delay=2min"), SpecProblem::BadDuration);
        assert_eq!(problem("delay=ms"), SpecProblem::BadDuration);
        assert_eq!(problem("delay=-2ms"), SpecProblem::BadDuration);
        assert_eq!(problem("delay=1.2.3ms"), SpecProblem::BadDuration);
        assert_eq!(problem("jitter=61s"), SpecProblem::DurationTooLong);
        assert_eq!(problem("cut=maybe"), SpecProblem::BadBool);
        assert_eq!(problem("drop=1,,dup=2"), SpecProblem::EmptyItem);
        assert_eq!(problem("drop=1,"), SpecProblem::EmptyItem);
    }

    #[test]
    fn display_round_trips() {
        for spec in [
            "none",
            "drop=10",
            "drop=2.5,dup=0.0001,reorder=50,delay=2ms,jitter=1500us,hold=20ms,cut",
            "delay=7ns",
            "jitter=3s",
        ] {
            let parsed: LinkFaults = spec.parse().unwrap();
            assert_eq!(parsed.to_string(), spec);
            assert_eq!(parsed.to_string().parse::<LinkFaults>().unwrap(), parsed);
        }
    }

    #[test]
    fn percent_bounds() {
        assert_eq!(Percent::new(100.0), Some(Percent::HUNDRED));
        assert_eq!(Percent::new(100.01), None);
        assert_eq!(Percent::new(f64::NAN), None);
        assert_eq!(Percent::from_ppm(1_000_001), None);
        assert_eq!(Percent::new(12.5).unwrap().as_percent(), 12.5);
    }

    #[test]
    fn validate_catches_what_the_types_allow() {
        let mut f = LinkFaults::NONE;
        assert!(f.validate().is_ok());
        f.reorder = Percent::new(60.0).unwrap();
        assert_eq!(f.validate().unwrap_err().problem, SpecProblem::ReorderTooHigh);
        f.reorder = Percent::ZERO;
        f.delay = Duration::from_secs(61);
        let err = f.validate().unwrap_err();
        assert_eq!(err.problem, SpecProblem::DurationTooLong);
        assert_eq!(err.item, "delay=61s");
    }
}
