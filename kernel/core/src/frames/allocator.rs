//! The physical frame allocator: one bitmap per managed range, kept in
//! memory the caller provides.
//!
//! Each managed range is covered by whole 2 MiB *blocks* (the first and
//! last may stick out of the range). Per block the metadata holds 512 bits
//! (8 words), one per 4 KiB frame, set when the frame is free; a *whole* bit,
//! set when all 512 frames are free (the block can go out as a 2 MiB frame);
//! and a *huge* bit, set while the block is out as a 2 MiB frame. Frames
//! outside the range are never free, so a block that sticks out is never
//! whole.
//!
//! A 4 KiB request takes a free frame from a block that is already split and
//! splits a whole block only when there is none. Freeing the last 4 KiB
//! frame of a block makes it whole again (coalescing).

use core::fmt;

use super::addr::{Frame, FrameSize, PhysAddr, PhysRange, SIZE_2M, SIZE_4K};
use super::range_set::{RangeSet, MAX_RANGES};
use super::FrameError;

const FRAMES_PER_BLOCK: usize = (SIZE_2M / SIZE_4K) as usize;
const WORDS_PER_BLOCK: usize = FRAMES_PER_BLOCK / 64;
/// Metadata words one more reserved range can add (it may split a range in
/// two: one more block of frame bits, and a word each of whole and huge bits).
const SLACK_WORDS: usize = WORDS_PER_BLOCK + 2;

/// One managed range and where its bits live in the metadata.
#[derive(Clone, Copy, Default)]
struct Region {
    /// The managed frames, 4 KiB-aligned.
    range: PhysRange,
    /// `range.start` rounded down to 2 MiB: where block 0 starts.
    base: u64,
    blocks: usize,
    /// Word offsets of the frame, whole and huge bitmaps.
    frames_at: usize,
    whole_at: usize,
    huge_at: usize,
    /// Free 4 KiB frames in blocks that are not whole.
    split_free: usize,
    /// Whole free blocks.
    whole_free: usize,
    /// Block where the next search for a split frame starts.
    cursor: usize,
}

impl Region {
    fn layout(range: PhysRange, offset: usize) -> Self {
        let base = range.start.align_down(SIZE_2M).as_u64();
        let top = range.end.align_up(SIZE_2M).as_u64();
        let blocks = ((top - base) / SIZE_2M) as usize;
        let flag_words = blocks.div_ceil(64);
        let frames_at = offset;
        let whole_at = frames_at + blocks * WORDS_PER_BLOCK;
        Self { range, base, blocks, frames_at, whole_at, huge_at: whole_at + flag_words, ..Self::default() }
    }

    /// Metadata words this region uses.
    fn words(&self) -> usize {
        self.huge_at + self.blocks.div_ceil(64) - self.frames_at
    }

    /// Index, from `base`, of the 4 KiB frame at `addr`.
    fn frame_index(&self, addr: PhysAddr) -> usize {
        ((addr.as_u64() - self.base) / SIZE_4K) as usize
    }

    fn block_start(&self, block: usize) -> u64 {
        self.base + block as u64 * SIZE_2M
    }

    /// The frame bits of `block`.
    fn block_words(&self, block: usize) -> core::ops::Range<usize> {
        let first = self.frames_at + block * WORDS_PER_BLOCK;
        first..first + WORDS_PER_BLOCK
    }
}

fn bit(words: &[u64], at: usize, i: usize) -> bool {
    words[at + i / 64] & (1 << (i % 64)) != 0
}

fn set_bit(words: &mut [u64], at: usize, i: usize) {
    words[at + i / 64] |= 1 << (i % 64);
}

fn clear_bit(words: &mut [u64], at: usize, i: usize) {
    words[at + i / 64] &= !(1 << (i % 64));
}

/// Hands out 4 KiB and 2 MiB physical frames from the usable memory it was
/// built with, never a reserved byte nor anything below 1 MiB.
///
/// It holds no lock: the kernel wraps it in one. Its own size is about
/// `MAX_RANGES * 80` bytes; its bitmaps live in the `metadata` slice.
pub struct FrameAllocator<'m> {
    metadata: &'m mut [u64],
    regions: [Region; MAX_RANGES],
    region_count: usize,
    managed_frames: usize,
}

impl<'m> FrameAllocator<'m> {
    /// Bytes of metadata [`new`](Self::new) needs for these ranges. Stays
    /// enough if the caller adds one more reserved range, such as the home
    /// of the metadata itself (see [`metadata_home`](Self::metadata_home)).
    pub fn metadata_bytes_needed(usable: &[PhysRange], reserved: &[PhysRange]) -> Result<usize, FrameError> {
        let set = RangeSet::usable_frames(usable, reserved)?;
        let words: usize = set.iter().map(|r| Region::layout(*r, 0).words()).sum();
        Ok((words + SLACK_WORDS) * 8)
    }

    /// Where to put the metadata: the lowest 4 KiB-aligned run of usable,
    /// unreserved memory large enough for it. Map it, hand it to `new`, and
    /// add it to the reserved ranges.
    pub fn metadata_home(usable: &[PhysRange], reserved: &[PhysRange]) -> Result<PhysRange, FrameError> {
        let bytes = Self::metadata_bytes_needed(usable, reserved)? as u64;
        let bytes = PhysAddr::new(bytes).align_up(SIZE_4K).as_u64();
        RangeSet::usable_frames(usable, reserved)?
            .iter()
            .find(|r| r.len() >= bytes)
            .map(|r| PhysRange::from_start_len(r.start.as_u64(), bytes))
            .ok_or(FrameError::NoRoomForMetadata)
    }

    /// An allocator of every 4 KiB frame of `usable` at or above 1 MiB that
    /// no `reserved` range touches, all free, keeping its bitmaps in
    /// `metadata`.
    pub fn new(usable: &[PhysRange], reserved: &[PhysRange], metadata: &'m mut [u64]) -> Result<Self, FrameError> {
        let set = RangeSet::usable_frames(usable, reserved)?;
        let mut regions = [Region::default(); MAX_RANGES];
        let mut offset = 0;
        for (region, range) in regions.iter_mut().zip(set.iter()) {
            *region = Region::layout(*range, offset);
            offset += region.words();
        }
        if metadata.len() < offset {
            return Err(FrameError::MetadataTooSmall { needed_bytes: offset * 8, given_bytes: metadata.len() * 8 });
        }
        metadata[..offset].fill(0);
        let mut allocator = Self { metadata, regions, region_count: set.len(), managed_frames: 0 };
        for r in 0..allocator.region_count {
            allocator.mark_free(r);
        }
        Ok(allocator)
    }

    /// Sets the frame bits of region `r`'s range and derives its counters.
    fn mark_free(&mut self, r: usize) {
        let region = &mut self.regions[r];
        let first = region.frame_index(region.range.start);
        let end = region.frame_index(region.range.end);
        for i in first..end {
            set_bit(self.metadata, region.frames_at, i);
        }
        self.managed_frames += end - first;
        for block in 0..region.blocks {
            let words = &self.metadata[region.block_words(block)];
            if words.iter().all(|w| *w == u64::MAX) {
                set_bit(self.metadata, region.whole_at, block);
                region.whole_free += 1;
            } else {
                region.split_free += words.iter().map(|w| w.count_ones() as usize).sum::<usize>();
            }
        }
    }

    /// Allocates a frame of `size`.
    pub fn alloc(&mut self, size: FrameSize) -> Result<Frame, FrameError> {
        let start = match size {
            FrameSize::Size4K => self.alloc_4k(),
            FrameSize::Size2M => self.alloc_2m(),
        }
        .ok_or(FrameError::OutOfFrames(size))?;
        Frame::new(PhysAddr::new(start), size).ok_or_else(|| unreachable!("misaligned frame"))
    }

    fn alloc_4k(&mut self) -> Option<u64> {
        let regions = &self.regions[..self.region_count];
        if let Some(r) = regions.iter().position(|g| g.split_free > 0) {
            return Some(self.take_split_frame(r));
        }
        let r = regions.iter().position(|g| g.whole_free > 0)?;
        let block = self.take_whole_block(r);
        let region = &mut self.regions[r];
        // Split it: hand out its first frame, the rest become split frames.
        let words = region.block_words(block);
        let first_word = words.start;
        self.metadata[words].fill(u64::MAX);
        self.metadata[first_word] &= !1;
        region.split_free += FRAMES_PER_BLOCK - 1;
        region.cursor = block;
        Some(region.block_start(block))
    }

    fn alloc_2m(&mut self) -> Option<u64> {
        let r = self.regions[..self.region_count].iter().position(|g| g.whole_free > 0)?;
        let block = self.take_whole_block(r);
        let region = &self.regions[r];
        set_bit(self.metadata, region.huge_at, block);
        Some(region.block_start(block))
    }

    /// Takes a free frame from a split block of region `r` (one must exist).
    fn take_split_frame(&mut self, r: usize) -> u64 {
        let region = &mut self.regions[r];
        for step in 0..region.blocks {
            let block = (region.cursor + step) % region.blocks;
            if bit(self.metadata, region.whole_at, block) {
                continue;
            }
            for w in region.block_words(block) {
                let word = self.metadata[w];
                if word != 0 {
                    self.metadata[w] = word & (word - 1);
                    region.split_free -= 1;
                    region.cursor = block;
                    let index = (w - region.frames_at) * 64 + word.trailing_zeros() as usize;
                    return region.base + index as u64 * SIZE_4K;
                }
            }
        }
        unreachable!("split_free counted a frame that is not there");
    }

    /// Takes a whole block of region `r` (one must exist), clearing its frame
    /// and whole bits. Returns its index.
    fn take_whole_block(&mut self, r: usize) -> usize {
        let region = &mut self.regions[r];
        let flag_words = region.whole_at..region.huge_at;
        let Some((w, word)) = self.metadata[flag_words].iter().enumerate().find(|(_, word)| **word != 0) else {
            unreachable!("whole_free counted a block that is not there");
        };
        let block = w * 64 + word.trailing_zeros() as usize;
        clear_bit(self.metadata, region.whole_at, block);
        self.metadata[region.block_words(block)].fill(0);
        region.whole_free -= 1;
        block
    }

    /// Returns `frame` to the free pool. Refuses a frame this allocator does
    /// not manage (reserved, low memory, not usable), one that is free
    /// already, and one freed at a size other than the one allocated.
    pub fn free(&mut self, frame: Frame) -> Result<(), FrameError> {
        let r = self.region_of(frame.range())?;
        let region = &mut self.regions[r];
        let index = region.frame_index(frame.start());
        let block = index / FRAMES_PER_BLOCK;
        let huge = bit(self.metadata, region.huge_at, block);
        match frame.size() {
            FrameSize::Size4K => {
                if huge {
                    return Err(FrameError::SizeMismatch);
                }
                if bit(self.metadata, region.frames_at, index) {
                    return Err(FrameError::NotAllocated);
                }
                set_bit(self.metadata, region.frames_at, index);
                region.split_free += 1;
                let words = &self.metadata[region.block_words(block)];
                if words.iter().all(|w| *w == u64::MAX) {
                    set_bit(self.metadata, region.whole_at, block);
                    region.whole_free += 1;
                    region.split_free -= FRAMES_PER_BLOCK;
                }
            }
            FrameSize::Size2M => {
                if !huge {
                    let words = &self.metadata[region.block_words(block)];
                    return Err(if words.iter().all(|w| *w == u64::MAX) {
                        FrameError::NotAllocated
                    } else {
                        FrameError::SizeMismatch
                    });
                }
                clear_bit(self.metadata, region.huge_at, block);
                self.metadata[region.block_words(block)].fill(u64::MAX);
                set_bit(self.metadata, region.whole_at, block);
                region.whole_free += 1;
            }
        }
        Ok(())
    }

    /// The region that wholly contains `range`.
    fn region_of(&self, range: PhysRange) -> Result<usize, FrameError> {
        let regions = &self.regions[..self.region_count];
        let after = regions.partition_point(|g| g.range.start <= range.start);
        match after.checked_sub(1) {
            Some(r) if range.end <= regions[r].range.end => Ok(r),
            _ => Err(FrameError::NotManaged),
        }
    }

    /// Free memory, in 4 KiB frames (whole blocks included).
    pub fn free_4k_frames(&self) -> usize {
        self.regions[..self.region_count].iter().map(|g| g.split_free + g.whole_free * FRAMES_PER_BLOCK).sum()
    }

    /// Free 2 MiB frames available now.
    pub fn free_2m_frames(&self) -> usize {
        self.regions[..self.region_count].iter().map(|g| g.whole_free).sum()
    }

    /// All memory this allocator manages, in 4 KiB frames.
    pub fn managed_frames(&self) -> usize {
        self.managed_frames
    }

    /// The ranges this allocator manages, ascending.
    pub fn managed_ranges(&self) -> impl Iterator<Item = PhysRange> + '_ {
        self.regions[..self.region_count].iter().map(|g| g.range)
    }
}

impl fmt::Debug for FrameAllocator<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameAllocator")
            .field("managed_frames", &self.managed_frames)
            .field("free_4k_frames", &self.free_4k_frames())
            .field("free_2m_frames", &self.free_2m_frames())
            .field("ranges", &self.region_count)
            .finish()
    }
}

#[cfg(test)]
mod tests;
