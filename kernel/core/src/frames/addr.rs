//! Physical addresses and ranges, as the frame allocator sees them.

use core::fmt;

/// 4 KiB: the small frame.
pub const SIZE_4K: u64 = 4096;
/// 2 MiB: the large frame.
pub const SIZE_2M: u64 = 2 * 1024 * 1024;
/// Memory below this is never handed out: real-mode leftovers, the AP
/// start-up trampoline, BIOS data, and frame 0 (a null physical pointer).
pub const LOW_MEMORY_END: u64 = 1024 * 1024;
/// The architectural limit of physical addresses on x86-64 (52 bits). Input
/// beyond it is ignored, which also keeps address arithmetic from overflowing.
pub const PHYS_LIMIT: u64 = 1 << 52;

/// A host-physical address. Only a number: nothing in this crate
/// dereferences it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PhysAddr(u64);

impl PhysAddr {
    /// The address `addr`.
    pub const fn new(addr: u64) -> Self {
        Self(addr)
    }

    /// The address as a number.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// `true` if the address is a multiple of `align` (a power of two).
    pub const fn is_aligned(self, align: u64) -> bool {
        self.0 & (align - 1) == 0
    }

    /// Rounded down to a multiple of `align` (a power of two).
    pub const fn align_down(self, align: u64) -> Self {
        Self(self.0 & !(align - 1))
    }

    /// Rounded up to a multiple of `align` (a power of two), saturating at
    /// the highest aligned address.
    pub const fn align_up(self, align: u64) -> Self {
        match self.0.checked_add(align - 1) {
            Some(v) => Self(v & !(align - 1)),
            None => Self(!(align - 1)),
        }
    }
}

impl fmt::Debug for PhysAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// The half-open physical range `start..end`. A range with `end <= start`
/// is empty.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PhysRange {
    /// First byte of the range.
    pub start: PhysAddr,
    /// First byte after the range.
    pub end: PhysAddr,
}

impl PhysRange {
    /// The range `start..end`.
    pub const fn new(start: u64, end: u64) -> Self {
        Self { start: PhysAddr(start), end: PhysAddr(end) }
    }

    /// The `len` bytes from `start` (saturating at the top of the space).
    pub const fn from_start_len(start: u64, len: u64) -> Self {
        Self::new(start, start.saturating_add(len))
    }

    /// Bytes in the range.
    pub const fn len(&self) -> u64 {
        self.end.0.saturating_sub(self.start.0)
    }

    /// `true` if the range holds no byte.
    pub const fn is_empty(&self) -> bool {
        self.end.0 <= self.start.0
    }

    /// `true` if `addr` lies in the range.
    pub const fn contains(&self, addr: PhysAddr) -> bool {
        self.start.0 <= addr.0 && addr.0 < self.end.0
    }

    /// The largest range inside this one whose ends are multiples of `align`.
    pub const fn shrink_to(&self, align: u64) -> Self {
        Self { start: self.start.align_up(align), end: self.end.align_down(align) }
    }

    /// The smallest range containing this one whose ends are multiples of `align`.
    pub const fn grow_to(&self, align: u64) -> Self {
        Self { start: self.start.align_down(align), end: self.end.align_up(align) }
    }

    /// The part of this range inside `other` (possibly empty).
    pub fn intersect(&self, other: &PhysRange) -> Self {
        Self { start: self.start.max(other.start), end: self.end.min(other.end) }
    }
}

impl fmt::Debug for PhysRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}..{:#x}", self.start.0, self.end.0)
    }
}

/// The two frame sizes the allocator hands out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameSize {
    /// 4 KiB, 4 KiB-aligned.
    Size4K,
    /// 2 MiB, 2 MiB-aligned.
    Size2M,
}

impl FrameSize {
    /// Bytes in a frame of this size (also its alignment).
    pub const fn bytes(self) -> u64 {
        match self {
            Self::Size4K => SIZE_4K,
            Self::Size2M => SIZE_2M,
        }
    }
}

/// A physical frame: a start address aligned to its size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Frame {
    start: PhysAddr,
    size: FrameSize,
}

impl Frame {
    /// The frame of `size` starting at `start`, if `start` is aligned to `size`.
    pub const fn new(start: PhysAddr, size: FrameSize) -> Option<Self> {
        if start.is_aligned(size.bytes()) {
            Some(Self { start, size })
        } else {
            None
        }
    }

    /// First byte of the frame.
    pub const fn start(&self) -> PhysAddr {
        self.start
    }

    /// The frame's size.
    pub const fn size(&self) -> FrameSize {
        self.size
    }

    /// The bytes the frame covers.
    pub const fn range(&self) -> PhysRange {
        PhysRange::from_start_len(self.start.0, self.size.bytes())
    }
}
