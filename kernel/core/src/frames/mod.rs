//! Physical frames: which memory the hypervisor keeps, which becomes guest
//! RAM, and the allocator that hands out the hypervisor's frames.
//!
//! The boot path, in order:
//!
//! 1. [`MemoryPlan::new`] takes the usable ranges of the firmware's memory
//!    map, the reserved ranges (kernel image, hand-off data, ACPI tables,
//!    MMIO) and the hypervisor reservation size from the node's config. It
//!    carves the hypervisor pool first, from the lowest memory; what remains,
//!    in 2 MiB-aligned ranges, is guest RAM.
//! 2. [`FrameAllocator::metadata_home`] picks where the allocator's bitmaps
//!    go inside the hypervisor pool; the kernel maps that range.
//! 3. [`FrameAllocator::new`] manages the hypervisor pool, with the
//!    metadata's home added to the reserved ranges.
//!
//! Nothing here dereferences a physical address.

mod addr;
mod allocator;
mod plan;
mod range_set;

pub use addr::{Frame, FrameSize, PhysAddr, PhysRange, LOW_MEMORY_END, PHYS_LIMIT, SIZE_2M, SIZE_4K};
pub use allocator::FrameAllocator;
pub use plan::MemoryPlan;
pub use range_set::{RangeSet, MAX_RANGES};

use core::fmt;

/// Why the frame allocator or the memory plan refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// No free frame of this size.
    OutOfFrames(FrameSize),
    /// The memory map splits into more than [`MAX_RANGES`] ranges.
    TooManyRanges,
    /// The metadata slice is smaller than the bitmaps need.
    MetadataTooSmall {
        /// Bytes the bitmaps need.
        needed_bytes: usize,
        /// Bytes the slice has.
        given_bytes: usize,
    },
    /// No usable range is large enough to hold the metadata.
    NoRoomForMetadata,
    /// Freeing a frame this allocator does not manage: reserved, below
    /// 1 MiB, or not usable memory.
    NotManaged,
    /// Freeing a frame that is free already (double free, or never allocated).
    NotAllocated,
    /// Freeing a frame at a size other than the one it was allocated at.
    SizeMismatch,
    /// The hypervisor reservation is larger than the usable memory.
    NotEnoughMemory {
        /// Bytes the config asked for (rounded up to 2 MiB).
        requested: u64,
        /// Usable, unreserved bytes at or above 1 MiB.
        available: u64,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfFrames(size) => write!(f, "no free {size:?} frame"),
            Self::TooManyRanges => write!(f, "memory map has more than {MAX_RANGES} ranges"),
            Self::MetadataTooSmall { needed_bytes, given_bytes } => {
                write!(f, "frame metadata needs {needed_bytes} bytes, given {given_bytes}")
            }
            Self::NoRoomForMetadata => write!(f, "no usable range can hold the frame metadata"),
            Self::NotManaged => write!(f, "frame is not managed memory"),
            Self::NotAllocated => write!(f, "frame is not allocated"),
            Self::SizeMismatch => write!(f, "frame freed at another size than allocated"),
            Self::NotEnoughMemory { requested, available } => {
                write!(f, "hypervisor reservation of {requested} bytes exceeds {available} usable bytes")
            }
        }
    }
}
