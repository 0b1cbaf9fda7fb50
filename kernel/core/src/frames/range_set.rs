//! A bounded set of physical ranges, kept sorted, disjoint and merged.

use core::ops::Deref;

use super::addr::{PhysRange, LOW_MEMORY_END, PHYS_LIMIT, SIZE_4K};
use super::FrameError;

/// How many disjoint ranges a [`RangeSet`] holds. A UEFI map of a large
/// server has a few dozen usable entries once adjacent ones are merged.
pub const MAX_RANGES: usize = 128;

/// Up to [`MAX_RANGES`] disjoint, non-adjacent ranges in ascending order.
/// Dereferences to a slice of them.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RangeSet {
    ranges: [PhysRange; MAX_RANGES],
    len: usize,
}

impl RangeSet {
    /// The empty set.
    pub const fn new() -> Self {
        Self { ranges: [PhysRange::new(0, 0); MAX_RANGES], len: 0 }
    }

    /// The 4 KiB frames the allocator may manage: each usable range clipped
    /// to `LOW_MEMORY_END..PHYS_LIMIT` and shrunk to whole frames, minus each
    /// reserved range grown to whole frames.
    pub fn usable_frames(usable: &[PhysRange], reserved: &[PhysRange]) -> Result<Self, FrameError> {
        let window = PhysRange::new(LOW_MEMORY_END, PHYS_LIMIT);
        let mut set = Self::new();
        for range in usable {
            set.insert(range.intersect(&window).shrink_to(SIZE_4K))?;
        }
        for range in reserved {
            set.remove(range.grow_to(SIZE_4K))?;
        }
        Ok(set)
    }

    /// Total bytes in the set.
    pub fn total_bytes(&self) -> u64 {
        self.iter().map(PhysRange::len).sum()
    }

    /// Adds `range`, merging it with the ranges it overlaps or touches.
    pub fn insert(&mut self, range: PhysRange) -> Result<(), FrameError> {
        if range.is_empty() {
            return Ok(());
        }
        // First range that ends at or after `range` starts: the first that
        // can overlap or touch it.
        let first = self.ranges[..self.len].partition_point(|r| r.end < range.start);
        // One past the last range that starts at or before `range` ends.
        let last = self.ranges[..self.len].partition_point(|r| r.start <= range.end);
        if first == last {
            return self.insert_at(first, range);
        }
        let merged = PhysRange {
            start: self.ranges[first].start.min(range.start),
            end: self.ranges[last - 1].end.max(range.end),
        };
        self.ranges[first] = merged;
        self.delete(first + 1..last);
        Ok(())
    }

    /// Removes every byte of `range` from the set.
    pub fn remove(&mut self, range: PhysRange) -> Result<(), FrameError> {
        if range.is_empty() {
            return Ok(());
        }
        // Ranges that overlap `range` (touching is not overlapping here).
        let first = self.ranges[..self.len].partition_point(|r| r.end <= range.start);
        let last = self.ranges[..self.len].partition_point(|r| r.start < range.end);
        if first == last {
            return Ok(());
        }
        let head = PhysRange { start: self.ranges[first].start, end: range.start };
        let tail = PhysRange { start: range.end, end: self.ranges[last - 1].end };
        let kept = usize::from(!head.is_empty()) + usize::from(!tail.is_empty());
        if self.len - (last - first) + kept > MAX_RANGES {
            return Err(FrameError::TooManyRanges);
        }
        self.delete(first..last);
        for piece in [tail, head] {
            if !piece.is_empty() {
                self.insert_at(first, piece)?;
            }
        }
        Ok(())
    }

    fn insert_at(&mut self, index: usize, range: PhysRange) -> Result<(), FrameError> {
        if self.len == MAX_RANGES {
            return Err(FrameError::TooManyRanges);
        }
        self.ranges.copy_within(index..self.len, index + 1);
        self.ranges[index] = range;
        self.len += 1;
        Ok(())
    }

    fn delete(&mut self, span: core::ops::Range<usize>) {
        let removed = span.end - span.start;
        self.ranges.copy_within(span.end..self.len, span.start);
        self.len -= removed;
    }
}

impl Default for RangeSet {
    fn default() -> Self {
        Self::new()
    }
}

impl Deref for RangeSet {
    type Target = [PhysRange];
    fn deref(&self) -> &[PhysRange] {
        &self.ranges[..self.len]
    }
}

impl core::fmt::Debug for RangeSet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SPACE: u64 = 1 << 16;

    fn covered(set: &RangeSet, addr: u64) -> bool {
        set.iter().any(|r| r.start.as_u64() <= addr && addr < r.end.as_u64())
    }

    proptest! {
        /// After any inserts and removes, the set holds exactly the bytes a
        /// brute-force model holds, sorted, disjoint and never adjacent.
        #[test]
        fn matches_byte_model(
            ops in prop::collection::vec((any::<bool>(), 0..SPACE, 0..SPACE / 8), 0..40)
        ) {
            let mut set = RangeSet::new();
            let mut model = vec![false; SPACE as usize];
            for (add, start, len) in ops {
                let range = PhysRange::new(start, (start + len).min(SPACE));
                if add {
                    set.insert(range).unwrap();
                } else {
                    set.remove(range).unwrap();
                }
                for b in start..(start + len).min(SPACE) {
                    model[b as usize] = add;
                }
            }
            for pair in set.windows(2) {
                prop_assert!(pair[0].end < pair[1].start, "{:?} not merged", set);
            }
            prop_assert!(set.iter().all(|r| !r.is_empty()));
            // Sample the model rather than check all bytes: edges are where bugs are.
            for r in set.iter() {
                for b in [r.start.as_u64(), r.end.as_u64() - 1] {
                    prop_assert!(model[b as usize]);
                }
            }
            for (b, &inside) in model.iter().enumerate() {
                prop_assert_eq!(covered(&set, b as u64), inside, "byte {:#x}", b);
            }
        }
    }

    #[test]
    fn usable_frames_clips_low_memory_and_reserved() {
        let usable = [PhysRange::new(0, 0x9_f000), PhysRange::new(0x10_0000, 0x80_0000)];
        let reserved = [PhysRange::new(0x20_0800, 0x20_1001)];
        let set = RangeSet::usable_frames(&usable, &reserved).unwrap();
        assert_eq!(&*set, &[PhysRange::new(0x10_0000, 0x20_0000), PhysRange::new(0x20_2000, 0x80_0000)]);
    }

    #[test]
    fn too_many_ranges_is_an_error() {
        let mut set = RangeSet::new();
        for i in 0..MAX_RANGES as u64 {
            set.insert(PhysRange::new(i * 4, i * 4 + 1)).unwrap();
        }
        assert_eq!(set.insert(PhysRange::new(1000, 1001)), Err(FrameError::TooManyRanges));
        assert_eq!(set.remove(PhysRange::new(0, 0)), Ok(()));
        // Splitting a range in two needs a slot too.
        let mut full = RangeSet::new();
        full.insert(PhysRange::new(0, 10)).unwrap();
        for i in 1..MAX_RANGES as u64 {
            full.insert(PhysRange::new(100 + i * 4, 101 + i * 4)).unwrap();
        }
        assert_eq!(full.remove(PhysRange::new(4, 5)), Err(FrameError::TooManyRanges));
    }
}
