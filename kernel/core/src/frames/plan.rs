//! Splitting a node's memory into the hypervisor's pool and guest RAM.

use super::addr::{PhysAddr, PhysRange, SIZE_2M};
use super::range_set::RangeSet;
use super::FrameError;

/// Which physical memory the hypervisor keeps and which backs the guest.
///
/// The hypervisor reservation (from the node's config) is carved first, from
/// the lowest usable memory up, rounded up to 2 MiB. What remains is guest
/// RAM, as 2 MiB-aligned ranges so nested page tables can map it with large
/// pages; the less-than-2-MiB edges this leaves go to the hypervisor pool.
/// The two pools are disjoint and together hold exactly the usable memory
/// at or above 1 MiB that no reserved range touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryPlan {
    hypervisor: RangeSet,
    guest: RangeSet,
}

impl MemoryPlan {
    /// Carves `hypervisor_bytes` (at least) out of `usable` minus `reserved`.
    pub fn new(usable: &[PhysRange], reserved: &[PhysRange], hypervisor_bytes: u64) -> Result<Self, FrameError> {
        let available = RangeSet::usable_frames(usable, reserved)?;
        let requested = PhysAddr::new(hypervisor_bytes).align_up(SIZE_2M).as_u64();
        let total = available.total_bytes();
        if requested > total {
            return Err(FrameError::NotEnoughMemory { requested, available: total });
        }
        let mut plan = Self { hypervisor: RangeSet::new(), guest: RangeSet::new() };
        let mut still_wanted = requested;
        for range in available.iter() {
            let mut rest = *range;
            if still_wanted > 0 {
                // Cut on a 2 MiB boundary so the guest part starts aligned.
                let cut =
                    PhysAddr::new(rest.start.as_u64().saturating_add(still_wanted)).align_up(SIZE_2M).min(rest.end);
                let taken = PhysRange { start: rest.start, end: cut };
                plan.hypervisor.insert(taken)?;
                still_wanted = still_wanted.saturating_sub(taken.len());
                rest.start = cut;
            }
            plan.give_to_guest(rest)?;
        }
        Ok(plan)
    }

    /// Guest RAM gets the 2 MiB-aligned inside of `range`, the hypervisor
    /// its edges.
    fn give_to_guest(&mut self, range: PhysRange) -> Result<(), FrameError> {
        let inner = range.shrink_to(SIZE_2M);
        if inner.is_empty() {
            return self.hypervisor.insert(range);
        }
        self.hypervisor.insert(PhysRange { start: range.start, end: inner.start })?;
        self.guest.insert(inner)?;
        self.hypervisor.insert(PhysRange { start: inner.end, end: range.end })
    }

    /// The hypervisor's memory, ascending: build the
    /// [`FrameAllocator`](super::FrameAllocator) from these.
    pub fn hypervisor_pool(&self) -> &[PhysRange] {
        &self.hypervisor
    }

    /// Guest RAM, ascending, each range 2 MiB-aligned at both ends.
    pub fn guest_ram(&self) -> &[PhysRange] {
        &self.guest
    }

    /// Bytes in the hypervisor pool (at least the reservation asked for).
    pub fn hypervisor_bytes(&self) -> u64 {
        self.hypervisor.total_bytes()
    }

    /// Bytes of guest RAM.
    pub fn guest_bytes(&self) -> u64 {
        self.guest.total_bytes()
    }
}

#[cfg(test)]
mod tests;
