//! Frame-pointer backtraces: walking the `rbp` chain safely, and the one
//! line format the kernel prints each frame in and `xtask`'s symbolizer
//! recognises (`  frame #3: 0xffffffff80012345`).
//!
//! The kernel is built with `force-frame-pointers=yes`, so every function
//! starts with `push rbp; mov rbp, rsp`: `[rbp]` holds the caller's `rbp` and
//! `[rbp + 8]` the return address. The walker never touches memory itself;
//! it asks a reader for words it has already bounds-checked, so a corrupt
//! chain ends the walk instead of faulting.

use core::fmt;

/// Every frame line starts with this (two spaces of indent).
pub const FRAME_PREFIX: &str = "  frame #";

/// Most frames a walk reports; deeper chains are cut off.
pub const MAX_FRAMES: usize = 48;

/// One backtrace line as the kernel prints it: `  frame #N: 0x` + 16 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameLine {
    pub index: usize,
    pub address: u64,
}

impl fmt::Display for FrameLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{FRAME_PREFIX}{}: {:#018x}", self.index, self.address)
    }
}

/// Parses a console line in [`FrameLine`] format. Returns the frame and
/// whatever follows the address (empty for a line straight from the kernel).
pub fn parse_frame_line(line: &str) -> Option<(FrameLine, &str)> {
    let rest = line.strip_prefix(FRAME_PREFIX)?;
    let (index, rest) = rest.split_once(": ")?;
    let index = index.parse().ok().filter(|_| index.bytes().all(|b| b.is_ascii_digit()))?;
    let hex = rest.strip_prefix("0x")?;
    if hex.len() < 16 || !hex.as_bytes()[..16].iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let address = u64::from_str_radix(&hex[..16], 16).ok()?;
    let tail = &hex[16..];
    if !(tail.is_empty() || tail.starts_with(' ')) {
        return None;
    }
    Some((FrameLine { index, address }, tail.trim_start()))
}

/// `[low, high)`: the stack a chain may live in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StackBounds {
    pub low: u64,
    pub high: u64,
}

impl StackBounds {
    /// True when the 16-byte frame record at `rbp` lies inside.
    pub fn holds_frame(&self, rbp: u64) -> bool {
        rbp >= self.low && rbp.checked_add(16).is_some_and(|end| end <= self.high)
    }
}

/// Why a walk stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkEnd {
    /// `rbp` was 0: the outermost frame (entry points clear `rbp`).
    ChainEnd,
    /// `rbp` pointed outside the stack or was misaligned.
    BadFramePointer(u64),
    /// The caller's `rbp` did not lie above the current one (a loop or corruption).
    NotAscending(u64),
    /// A return address outside kernel code.
    NotCode(u64),
    /// The reader could not read the frame record at this address (unmapped).
    Unreadable(u64),
    /// [`MAX_FRAMES`] frames reported.
    Limit,
}

impl fmt::Display for WalkEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WalkEnd::ChainEnd => f.write_str("end of chain"),
            WalkEnd::BadFramePointer(rbp) => write!(f, "frame pointer {rbp:#x} is outside the stack"),
            WalkEnd::NotAscending(rbp) => write!(f, "frame pointer {rbp:#x} does not ascend"),
            WalkEnd::NotCode(addr) => write!(f, "return address {addr:#x} is not kernel code"),
            WalkEnd::Unreadable(addr) => write!(f, "frame record at {addr:#x} is not mapped"),
            WalkEnd::Limit => write!(f, "stopped after {MAX_FRAMES} frames"),
        }
    }
}

/// Walks the chain starting at `rbp`, calling `emit` with each return
/// address (innermost first, at most [`MAX_FRAMES`]). `read` is only ever
/// called with 8-aligned addresses of words inside `stack`, and may refuse
/// (`None`, e.g. for an unmapped page); `is_code` says whether an address
/// lies in kernel text.
pub fn walk_frame_pointers(
    mut rbp: u64,
    stack: StackBounds,
    mut read: impl FnMut(u64) -> Option<u64>,
    is_code: impl Fn(u64) -> bool,
    mut emit: impl FnMut(u64),
) -> WalkEnd {
    for _ in 0..MAX_FRAMES {
        if rbp == 0 {
            return WalkEnd::ChainEnd;
        }
        if !rbp.is_multiple_of(8) || !stack.holds_frame(rbp) {
            return WalkEnd::BadFramePointer(rbp);
        }
        let (Some(caller_rbp), Some(return_address)) = (read(rbp), read(rbp + 8)) else {
            return WalkEnd::Unreadable(rbp);
        };
        if return_address == 0 {
            return WalkEnd::ChainEnd;
        }
        if !is_code(return_address) {
            return WalkEnd::NotCode(return_address);
        }
        emit(return_address);
        if caller_rbp != 0 && caller_rbp <= rbp {
            return WalkEnd::NotAscending(caller_rbp);
        }
        rbp = caller_rbp;
    }
    WalkEnd::Limit
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    const TEXT: core::ops::Range<u64> = 0xffff_ffff_8000_0000..0xffff_ffff_8010_0000;

    fn walk(rbp: u64, stack: StackBounds, memory: &HashMap<u64, u64>) -> (Vec<u64>, WalkEnd) {
        let mut frames = Vec::new();
        let end = walk_frame_pointers(
            rbp,
            stack,
            |addr| {
                assert!(addr % 8 == 0 && addr >= stack.low && addr + 8 <= stack.high, "read outside: {addr:#x}");
                memory.get(&addr).copied()
            },
            |addr| TEXT.contains(&addr),
            |addr| frames.push(addr),
        );
        (frames, end)
    }

    #[test]
    fn frame_lines_round_trip() {
        let line = FrameLine { index: 3, address: 0xffff_ffff_8001_2345 }.to_string();
        assert_eq!(line, "  frame #3: 0xffffffff80012345");
        assert_eq!(parse_frame_line(&line), Some((FrameLine { index: 3, address: 0xffff_ffff_8001_2345 }, "")));
        let symbolized = format!("{line} sinter_kernel::main+0x1a");
        assert_eq!(parse_frame_line(&symbolized).unwrap().1, "sinter_kernel::main+0x1a");
        for bad in [
            "frame #0: 0xffffffff80012345",
            "  frame #x: 0xffffffff80012345",
            "  frame #0: 0xffffffff8001234",
            "  frame #0: ffffffff80012345",
            "  frame #0: 0xffffffff80012345z",
            "  frame #+1: 0xffffffff80012345",
        ] {
            assert_eq!(parse_frame_line(bad), None, "{bad}");
        }
    }

    #[test]
    fn walks_a_well_formed_chain_to_its_end() {
        let stack = StackBounds { low: 0x1000, high: 0x2000 };
        let memory = HashMap::from([
            (0x1100, 0x1200),
            (0x1108, TEXT.start + 0x10),
            (0x1200, 0x1f00),
            (0x1208, TEXT.start + 0x20),
            (0x1f00, 0),
            (0x1f08, TEXT.start + 0x30),
        ]);
        let (frames, end) = walk(0x1100, stack, &memory);
        assert_eq!(frames, [TEXT.start + 0x10, TEXT.start + 0x20, TEXT.start + 0x30]);
        assert_eq!(end, WalkEnd::ChainEnd);
    }

    #[test]
    fn stops_on_bad_pointers_loops_and_non_code() {
        let stack = StackBounds { low: 0x1000, high: 0x2000 };
        assert_eq!(walk(0x3000, stack, &HashMap::new()), (vec![], WalkEnd::BadFramePointer(0x3000)));
        assert_eq!(walk(0x1ff8, stack, &HashMap::new()), (vec![], WalkEnd::BadFramePointer(0x1ff8)));
        assert_eq!(walk(0x1104, stack, &HashMap::new()), (vec![], WalkEnd::BadFramePointer(0x1104)));
        assert_eq!(walk(0, stack, &HashMap::new()), (vec![], WalkEnd::ChainEnd));
        let looping = HashMap::from([(0x1100, 0x1100), (0x1108, TEXT.start)]);
        assert_eq!(walk(0x1100, stack, &looping), (vec![TEXT.start], WalkEnd::NotAscending(0x1100)));
        let unreadable = HashMap::from([(0x1100, 0x1200), (0x1108, TEXT.start)]);
        assert_eq!(walk(0x1100, stack, &unreadable), (vec![TEXT.start], WalkEnd::Unreadable(0x1200)));
        let not_code = HashMap::from([(0x1100, 0x1200), (0x1108, 0x42)]);
        assert_eq!(walk(0x1100, stack, &not_code), (vec![], WalkEnd::NotCode(0x42)));
        let near_top = StackBounds { low: u64::MAX - 0x100, high: u64::MAX };
        assert_eq!(walk(u64::MAX - 15, near_top, &HashMap::new()).1, WalkEnd::BadFramePointer(u64::MAX - 15));
    }

    proptest! {
        /// Whatever the stack holds, the walk reads only inside it and ends.
        #[test]
        fn never_reads_outside_the_stack(
            words in proptest::collection::vec(any::<u64>(), 64),
            start in any::<u64>(),
            low in 0u64..0x10_0000,
        ) {
            let stack = StackBounds { low: low & !7, high: (low & !7) + 64 * 8 };
            let memory: HashMap<u64, u64> =
                words.iter().enumerate().map(|(i, w)| (stack.low + 8 * i as u64, *w)).collect();
            let (frames, _) = walk(start, stack, &memory);
            prop_assert!(frames.len() <= MAX_FRAMES);
            prop_assert!(frames.iter().all(|f| TEXT.contains(f)));
        }
    }
}
