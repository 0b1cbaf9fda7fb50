use proptest::prelude::*;

use super::super::{FrameAllocator, FrameSize, LOW_MEMORY_END, SIZE_4K};
use super::*;

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

fn r(start: u64, end: u64) -> PhysRange {
    PhysRange::new(start, end)
}

#[test]
fn hypervisor_carved_first_from_low_memory_rest_is_guest_ram() {
    let usable = [r(0, 0xa_0000), r(MIB, GIB)];
    let reserved = [r(2 * MIB, 4 * MIB)]; // kernel image
    let plan = MemoryPlan::new(&usable, &reserved, 64 * MIB).unwrap();
    // 1..2 MiB (1 MiB) and then 4 MiB.. up to the next 2 MiB boundary past
    // the remaining 63 MiB.
    assert_eq!(plan.hypervisor_pool(), &[r(MIB, 2 * MIB), r(4 * MIB, 68 * MIB)]);
    assert_eq!(plan.guest_ram(), &[r(68 * MIB, GIB)]);
    assert_eq!(plan.hypervisor_bytes(), 65 * MIB);
    assert_eq!(plan.guest_bytes(), GIB - 68 * MIB);
}

#[test]
fn reservation_rounds_up_to_2mib_and_unaligned_edges_go_to_the_hypervisor() {
    let usable = [r(16 * MIB + 0x3000, 64 * MIB - 0x5000)];
    let plan = MemoryPlan::new(&usable, &[], 3 * MIB).unwrap();
    // 3 MiB rounds to 4 MiB; the smallest 2 MiB-aligned cut that gives
    // that much from an unaligned start is 22 MiB.
    assert_eq!(plan.hypervisor_pool(), &[r(16 * MIB + 0x3000, 22 * MIB), r(62 * MIB, 64 * MIB - 0x5000)]);
    assert_eq!(plan.guest_ram(), &[r(22 * MIB, 62 * MIB)]);
    assert!(plan.hypervisor_bytes() >= 4 * MIB);
}

#[test]
fn zero_reservation_leaves_only_edges_to_the_hypervisor() {
    let usable = [r(MIB, 9 * MIB), r(32 * MIB, 40 * MIB)];
    let plan = MemoryPlan::new(&usable, &[], 0).unwrap();
    // 1..2 MiB and 8..9 MiB are the edges of the first range.
    assert_eq!(plan.hypervisor_pool(), &[r(MIB, 2 * MIB), r(8 * MIB, 9 * MIB)]);
    assert_eq!(plan.guest_ram(), &[r(2 * MIB, 8 * MIB), r(32 * MIB, 40 * MIB)]);
    let usable = [r(2 * MIB, 9 * MIB)];
    let plan = MemoryPlan::new(&usable, &[], 0).unwrap();
    assert_eq!(plan.hypervisor_pool(), &[r(8 * MIB, 9 * MIB)]);
}

#[test]
fn reservation_spanning_several_ranges() {
    let usable = [r(2 * MIB, 4 * MIB), r(8 * MIB, 10 * MIB), r(16 * MIB, 32 * MIB)];
    let plan = MemoryPlan::new(&usable, &[], 5 * MIB).unwrap();
    assert_eq!(plan.hypervisor_pool(), &[r(2 * MIB, 4 * MIB), r(8 * MIB, 10 * MIB), r(16 * MIB, 18 * MIB)]);
    assert_eq!(plan.guest_ram(), &[r(18 * MIB, 32 * MIB)]);
}

#[test]
fn too_large_a_reservation_is_an_error() {
    let usable = [r(0, 16 * MIB)];
    assert_eq!(
        MemoryPlan::new(&usable, &[r(4 * MIB, 6 * MIB)], 14 * MIB),
        Err(FrameError::NotEnoughMemory { requested: 14 * MIB, available: 13 * MIB })
    );
    // Exactly everything is fine: no guest RAM then.
    let plan = MemoryPlan::new(&usable, &[r(4 * MIB, 6 * MIB)], 12 * MIB).unwrap();
    assert!(plan.guest_ram().is_empty());
}

/// The whole boot path: plan, place the metadata in the hypervisor pool,
/// build the allocator there. It never hands out guest RAM.
#[test]
fn allocator_over_the_hypervisor_pool() {
    let usable = [r(0, 0x9_f000), r(MIB, 512 * MIB)];
    let reserved = [r(2 * MIB, 6 * MIB)];
    let plan = MemoryPlan::new(&usable, &reserved, 32 * MIB).unwrap();
    let pool = plan.hypervisor_pool();
    let home = FrameAllocator::metadata_home(pool, &[]).unwrap();
    let needed = FrameAllocator::metadata_bytes_needed(pool, &[]).unwrap();
    let mut meta = vec![0u64; needed / 8];
    let mut frames = FrameAllocator::new(pool, &[home], &mut meta).unwrap();
    assert_eq!(frames.managed_frames() as u64 * SIZE_4K, plan.hypervisor_bytes() - home.len());
    while let Ok(f) = frames.alloc(FrameSize::Size4K) {
        assert!(plan.guest_ram().iter().all(|g| !g.contains(f.start())));
        assert!(!home.contains(f.start()));
    }
}

fn map() -> impl Strategy<Value = (Vec<PhysRange>, Vec<PhysRange>, u64)> {
    let range = |max: u64| (0..256 * MIB, 0..max).prop_map(|(s, l)| PhysRange::from_start_len(s, l));
    (prop::collection::vec(range(96 * MIB), 1..6), prop::collection::vec(range(8 * MIB), 0..6), 0..160 * MIB)
}

proptest! {
    /// The pools partition exactly the allowed memory, guest ranges are
    /// 2 MiB-aligned, and the hypervisor gets at least what it asked for.
    #[test]
    fn pools_partition_allowed_memory((usable, reserved, hv) in map()) {
        let available = RangeSet::usable_frames(&usable, &reserved).unwrap();
        let plan = match MemoryPlan::new(&usable, &reserved, hv) {
            Ok(plan) => plan,
            Err(FrameError::NotEnoughMemory { requested, available: a }) => {
                prop_assert!(requested >= hv && a == available.total_bytes() && requested > a);
                return Ok(());
            }
            Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
        };
        prop_assert!(plan.hypervisor_bytes() >= hv);
        for g in plan.guest_ram() {
            prop_assert!(g.start.is_aligned(SIZE_2M) && g.end.is_aligned(SIZE_2M));
        }
        let mut union = RangeSet::new();
        for piece in plan.hypervisor_pool().iter().chain(plan.guest_ram()) {
            prop_assert!(piece.start.as_u64() >= LOW_MEMORY_END);
            union.insert(*piece).unwrap();
        }
        prop_assert_eq!(&*union, &*available);
        prop_assert_eq!(plan.hypervisor_bytes() + plan.guest_bytes(), available.total_bytes());
        // Carved from the bottom: no guest byte lies below the last byte of the
        // reservation proper (edges aside, which are < 2 MiB each).
        if let (Some(first_guest), true) = (plan.guest_ram().first(), hv > 0) {
            let below: u64 = available
                .iter()
                .map(|a| a.intersect(&PhysRange::new(0, first_guest.start.as_u64())).len())
                .sum();
            prop_assert!(below >= hv.next_multiple_of(SIZE_2M));
        }
    }
}
