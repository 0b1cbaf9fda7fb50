use proptest::prelude::*;

use super::super::{FrameError, RangeSet};
use super::*;

const MIB: u64 = 1024 * 1024;
/// Property tests place every range below this; 12 blocks of 2 MiB.
const SPACE: u64 = 24 * MIB;
const FRAMES: usize = (SPACE / SIZE_4K) as usize;

fn allocator<'m>(usable: &[PhysRange], reserved: &[PhysRange], metadata: &'m mut Vec<u64>) -> FrameAllocator<'m> {
    let bytes = FrameAllocator::metadata_bytes_needed(usable, reserved).unwrap();
    metadata.resize(bytes / 8, 0xdead_beef);
    FrameAllocator::new(usable, reserved, metadata).unwrap()
}

fn frame(start: u64, size: FrameSize) -> Frame {
    Frame::new(PhysAddr::new(start), size).unwrap()
}

// ---------------------------------------------------------------- unit tests

#[test]
fn hands_out_nothing_below_1mib_nor_reserved() {
    let usable = [PhysRange::new(0, 4 * MIB)];
    let reserved = [PhysRange::new(2 * MIB + 100, 2 * MIB + 200)];
    let mut meta = Vec::new();
    let mut frames = allocator(&usable, &reserved, &mut meta);
    // 1 MiB..4 MiB minus one frame.
    assert_eq!(frames.managed_frames(), 3 * 256 - 1);
    assert_eq!(frames.free_2m_frames(), 0, "the reserved frame breaks the only block");
    let mut seen = Vec::new();
    while let Ok(f) = frames.alloc(FrameSize::Size4K) {
        let a = f.start().as_u64();
        assert!(a >= MIB);
        assert_ne!(a, 2 * MIB);
        seen.push(a);
    }
    assert_eq!(seen.len(), 3 * 256 - 1);
}

#[test]
fn splits_a_2mib_block_only_when_no_4kib_frame_is_free() {
    // Two whole blocks, and 4 lone frames below them.
    let usable = [PhysRange::new(4 * MIB - 4 * SIZE_4K, 8 * MIB)];
    let mut meta = Vec::new();
    let mut frames = allocator(&usable, &[], &mut meta);
    assert_eq!(frames.free_2m_frames(), 2);
    for _ in 0..4 {
        let f = frames.alloc(FrameSize::Size4K).unwrap();
        assert!(f.start().as_u64() < 4 * MIB);
        assert_eq!(frames.free_2m_frames(), 2);
    }
    let split = frames.alloc(FrameSize::Size4K).unwrap();
    assert_eq!(frames.free_2m_frames(), 1);
    for _ in 0..511 {
        frames.alloc(FrameSize::Size4K).unwrap();
        assert_eq!(frames.free_2m_frames(), 1, "took from the split block");
    }
    let big = frames.alloc(FrameSize::Size2M).unwrap();
    assert_eq!(frames.alloc(FrameSize::Size2M), Err(FrameError::OutOfFrames(FrameSize::Size2M)));
    assert_eq!(frames.alloc(FrameSize::Size4K), Err(FrameError::OutOfFrames(FrameSize::Size4K)));

    // Freeing the split block's frames coalesces it back.
    frames.free(split).unwrap();
    assert_eq!(frames.free_2m_frames(), 0);
    let block = split.start().as_u64();
    for i in 1..512 {
        frames.free(frame(block + i * SIZE_4K, FrameSize::Size4K)).unwrap();
    }
    assert_eq!(frames.free_2m_frames(), 1);
    frames.free(big).unwrap();
    assert_eq!(frames.free_2m_frames(), 2);
}

#[test]
fn refuses_bad_frees() {
    // Below 1 MiB unmanaged, 1..2 MiB reserved, two whole blocks above.
    let usable = [PhysRange::new(0, 6 * MIB)];
    let reserved = [PhysRange::new(MIB, 2 * MIB)];
    let mut meta = Vec::new();
    let mut frames = allocator(&usable, &reserved, &mut meta);
    let big = frames.alloc(FrameSize::Size2M).unwrap();
    let small = frames.alloc(FrameSize::Size4K).unwrap();
    assert_eq!((big.start().as_u64(), small.start().as_u64()), (2 * MIB, 4 * MIB));
    let before = (frames.free_4k_frames(), frames.free_2m_frames());

    let errors = [
        (frame(0, FrameSize::Size4K), FrameError::NotManaged),
        (frame(MIB - SIZE_4K, FrameSize::Size4K), FrameError::NotManaged),
        (frame(MIB + 2 * SIZE_4K, FrameSize::Size4K), FrameError::NotManaged),
        (frame(0, FrameSize::Size2M), FrameError::NotManaged),
        (frame(64 * MIB, FrameSize::Size4K), FrameError::NotManaged),
        (frame(64 * MIB, FrameSize::Size2M), FrameError::NotManaged),
        (frame(2 * MIB, FrameSize::Size4K), FrameError::SizeMismatch),
        (frame(2 * MIB + SIZE_4K, FrameSize::Size4K), FrameError::SizeMismatch),
        (frame(4 * MIB, FrameSize::Size2M), FrameError::SizeMismatch),
        (frame(4 * MIB + SIZE_4K, FrameSize::Size4K), FrameError::NotAllocated),
    ];
    for (bad, error) in errors {
        assert_eq!(frames.free(bad), Err(error), "{bad:?}");
    }
    assert_eq!((frames.free_4k_frames(), frames.free_2m_frames()), before);

    frames.free(big).unwrap();
    assert_eq!(frames.free(big), Err(FrameError::NotAllocated));
    frames.free(small).unwrap();
    assert_eq!(frames.free(small), Err(FrameError::NotAllocated));
    assert_eq!(frames.free_2m_frames(), 2);
}

#[test]
fn metadata_too_small_is_an_error() {
    let usable = [PhysRange::new(0, 64 * MIB)];
    let needed = FrameAllocator::metadata_bytes_needed(&usable, &[]).unwrap();
    let mut meta = vec![0; needed / 8 - 11];
    assert!(matches!(FrameAllocator::new(&usable, &[], &mut meta), Err(FrameError::MetadataTooSmall { .. })));
}

/// A QEMU-like map with memory above 4 GiB: the metadata stays about one
/// bit per 4 KiB frame, and its home is carved and then never handed out.
#[test]
fn realistic_map_with_metadata_home() {
    let usable = [
        PhysRange::new(0, 0x9_f000),
        PhysRange::new(0x10_0000, 0x80_0000),
        PhysRange::new(0x80_8000, 0x7fe0_0000),
        PhysRange::new(0x1_0000_0000, 0x11_0000_0000),
    ];
    let mut reserved = vec![
        PhysRange::new(0x20_0000, 0x60_0000),     // kernel image
        PhysRange::new(0x7f00_0000, 0x7f01_0000), // hand-off data
        PhysRange::new(0xfee0_0000, 0xfee0_1000), // local APIC (MMIO)
    ];
    let home = FrameAllocator::metadata_home(&usable, &reserved).unwrap();
    let needed = FrameAllocator::metadata_bytes_needed(&usable, &reserved).unwrap();
    let frames_total = (0x11_0000_0000u64 - 0x1_0000_0000 + 0x7fe0_0000) / SIZE_4K;
    assert!((needed as u64) < frames_total / 8 + frames_total / 8 / 16, "{needed} bytes");
    assert!(home.len() >= needed as u64 && home.start.as_u64() >= MIB);
    reserved.push(home);
    let mut meta = vec![0u64; needed / 8];
    let mut frames = FrameAllocator::new(&usable, &reserved, &mut meta).unwrap();
    for _ in 0..2000 {
        let f = frames.alloc(FrameSize::Size4K).unwrap();
        assert!(!home.contains(f.start()));
        assert!(f.start().as_u64() >= 0x60_0000 || f.start().as_u64() < 0x20_0000);
    }
    let big = frames.alloc(FrameSize::Size2M).unwrap();
    assert!(big.start().is_aligned(SIZE_2M));
}

// ------------------------------------------------------------ property tests

/// A range inside the test space, sometimes 2 MiB-aligned so whole blocks occur.
fn range(max_len: u64) -> impl Strategy<Value = PhysRange> {
    let clipped = |start: u64, len: u64| PhysRange::new(start, (start + len).min(SPACE));
    prop_oneof![
        (0..SPACE, 0..max_len).prop_map(move |(s, l)| clipped(s, l)),
        (0..SPACE / SIZE_2M, 1..=max_len.div_ceil(SIZE_2M)).prop_map(move |(b, n)| clipped(b * SIZE_2M, n * SIZE_2M)),
    ]
}

fn memory_map() -> impl Strategy<Value = (Vec<PhysRange>, Vec<PhysRange>)> {
    (prop::collection::vec(range(12 * MIB), 1..5), prop::collection::vec(range(3 * MIB), 0..5))
}

/// What each 4 KiB frame of the test space should be, from first principles.
struct Model {
    usable: Vec<PhysRange>,
    reserved: Vec<PhysRange>,
    managed: Vec<bool>,
    /// Which allocation owns each frame: `(index into allocs)`.
    owner: Vec<Option<usize>>,
    allocs: Vec<Option<Frame>>,
}

impl Model {
    fn new(usable: &[PhysRange], reserved: &[PhysRange]) -> Self {
        let mut model = Self {
            usable: usable.to_vec(),
            reserved: reserved.to_vec(),
            managed: vec![false; FRAMES],
            owner: vec![None; FRAMES],
            allocs: Vec::new(),
        };
        for f in 0..FRAMES {
            let bytes = PhysRange::from_start_len(f as u64 * SIZE_4K, SIZE_4K);
            model.managed[f] = model.allowed(bytes);
        }
        model
    }

    /// The rules for one 4 KiB frame, stated directly: at or above 1 MiB,
    /// inside one usable range, touching no reserved byte.
    fn allowed(&self, bytes: PhysRange) -> bool {
        bytes.start.as_u64() >= MIB
            && self.usable.iter().any(|u| u.start <= bytes.start && bytes.end <= u.end)
            && self.reserved.iter().all(|r| r.is_empty() || r.end <= bytes.start || bytes.end <= r.start)
    }

    fn frames_of(frame: &Frame) -> core::ops::Range<usize> {
        let first = (frame.start().as_u64() / SIZE_4K) as usize;
        first..first + (frame.size().bytes() / SIZE_4K) as usize
    }

    fn in_space(frame: &Frame) -> bool {
        frame.range().end.as_u64() <= SPACE
    }

    fn free_frames(&self) -> usize {
        (0..FRAMES).filter(|&f| self.managed[f] && self.owner[f].is_none()).count()
    }

    fn free_blocks(&self) -> usize {
        (0..FRAMES / 512)
            .filter(|b| (b * 512..(b + 1) * 512).all(|f| self.managed[f] && self.owner[f].is_none()))
            .count()
    }

    fn record_alloc(&mut self, frame: Frame) -> Result<(), TestCaseError> {
        prop_assert!(frame.start().is_aligned(frame.size().bytes()));
        prop_assert!(frame.start().as_u64() >= MIB, "{:?} below 1 MiB", frame);
        prop_assert!(Self::in_space(&frame), "{:?} outside every usable range", frame);
        let id = self.allocs.len();
        for f in Self::frames_of(&frame) {
            // Each 4 KiB piece on its own: a 2 MiB frame may span two
            // adjacent usable ranges.
            let piece = PhysRange::from_start_len(f as u64 * SIZE_4K, SIZE_4K);
            prop_assert!(self.allowed(piece), "{:?} breaks a rule at {:?}", frame, piece);
            prop_assert!(self.owner[f].is_none(), "{:?} handed out twice", frame);
            self.owner[f] = Some(id);
        }
        self.allocs.push(Some(frame));
        Ok(())
    }

    fn record_free(&mut self, id: usize) {
        let frame = self.allocs[id].take().unwrap();
        for f in Self::frames_of(&frame) {
            self.owner[f] = None;
        }
    }

    /// What `free(frame)` must answer for a frame the test made up.
    fn expected_free(&self, frame: &Frame) -> Result<Option<usize>, FrameError> {
        if !Self::in_space(frame) {
            return Err(FrameError::NotManaged);
        }
        let frames = Self::frames_of(frame);
        if !frames.clone().all(|f| self.managed[f]) {
            return Err(FrameError::NotManaged);
        }
        if let Some(id) = self.owner[frames.start] {
            if self.allocs[id] == Some(*frame) {
                return Ok(Some(id));
            }
        }
        match frame.size() {
            FrameSize::Size4K if self.owner[frames.start].is_none() => Err(FrameError::NotAllocated),
            FrameSize::Size4K => Err(FrameError::SizeMismatch),
            FrameSize::Size2M if frames.clone().all(|f| self.owner[f].is_none()) => Err(FrameError::NotAllocated),
            FrameSize::Size2M => Err(FrameError::SizeMismatch),
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Alloc(FrameSize),
    /// Free the live allocation picked by this index.
    Free(prop::sample::Index),
    /// Free a made-up frame.
    FreeAt(u64, FrameSize),
}

fn size() -> impl Strategy<Value = FrameSize> {
    prop_oneof![3 => Just(FrameSize::Size4K), 1 => Just(FrameSize::Size2M)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => size().prop_map(Op::Alloc),
        3 => any::<prop::sample::Index>().prop_map(Op::Free),
        1 => (0..SPACE + 4 * MIB, size()).prop_map(|(a, s)| Op::FreeAt(a & !(s.bytes() - 1), s)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Mixed 4 KiB / 2 MiB sequences against a frame-by-frame model: no frame
    /// out twice, only allowed frames out, counts exact, split-only-when-needed,
    /// coalescing, and every bad free refused without effect.
    #[test]
    fn matches_frame_model((usable, reserved) in memory_map(), ops in prop::collection::vec(op(), 0..120)) {
        let mut meta = Vec::new();
        let mut frames = allocator(&usable, &reserved, &mut meta);
        let mut model = Model::new(&usable, &reserved);
        let managed = model.managed.iter().filter(|m| **m).count();
        prop_assert_eq!(frames.managed_frames(), managed);

        for op in ops {
            let free_4k = frames.free_4k_frames();
            let free_2m = frames.free_2m_frames();
            match op {
                Op::Alloc(size) => match frames.alloc(size) {
                    Ok(frame) => {
                        prop_assert_eq!(frame.size(), size);
                        model.record_alloc(frame)?;
                        if size == FrameSize::Size4K && frames.free_2m_frames() < free_2m {
                            prop_assert_eq!(free_4k, free_2m * 512, "split a block while a 4 KiB frame was free");
                        }
                    }
                    Err(e) => {
                        prop_assert_eq!(e, FrameError::OutOfFrames(size));
                        match size {
                            FrameSize::Size4K => prop_assert_eq!(model.free_frames(), 0),
                            FrameSize::Size2M => prop_assert_eq!(model.free_blocks(), 0),
                        }
                    }
                },
                Op::Free(pick) => {
                    let live: Vec<usize> = (0..model.allocs.len()).filter(|&i| model.allocs[i].is_some()).collect();
                    if live.is_empty() {
                        continue;
                    }
                    let id = live[pick.index(live.len())];
                    prop_assert_eq!(frames.free(model.allocs[id].unwrap()), Ok(()));
                    model.record_free(id);
                }
                Op::FreeAt(addr, size) => {
                    let frame = frame(addr, size);
                    let expected = model.expected_free(&frame);
                    match expected {
                        Ok(Some(id)) => {
                            prop_assert_eq!(frames.free(frame), Ok(()));
                            model.record_free(id);
                        }
                        Ok(None) => unreachable!(),
                        Err(e) => {
                            prop_assert_eq!(frames.free(frame), Err(e), "{:?}", frame);
                            prop_assert_eq!(frames.free_4k_frames(), free_4k);
                            prop_assert_eq!(frames.free_2m_frames(), free_2m);
                        }
                    }
                }
            }
            prop_assert_eq!(frames.free_4k_frames(), model.free_frames());
            prop_assert_eq!(frames.free_2m_frames(), model.free_blocks());
        }
    }

    /// Allocate everything in a mixed pattern, then free it all in a random
    /// order: the allocator is back to its first state, every block whole.
    #[test]
    fn alloc_all_then_free_all_restores_everything(
        (usable, reserved) in memory_map(),
        pattern in prop::collection::vec(size(), 1..8),
        order in prop::collection::vec(any::<prop::sample::Index>(), 64),
    ) {
        let mut meta = Vec::new();
        let mut frames = allocator(&usable, &reserved, &mut meta);
        let start = (frames.free_4k_frames(), frames.free_2m_frames());
        prop_assert_eq!(start.0, frames.managed_frames());

        let mut out = Vec::new();
        let mut model = Model::new(&usable, &reserved);
        for size in pattern.iter().cycle() {
            let frame = match frames.alloc(*size) {
                Ok(frame) => frame,
                Err(_) => match frames.alloc(FrameSize::Size4K) {
                    Ok(frame) => frame,
                    Err(_) => break,
                },
            };
            model.record_alloc(frame)?;
            out.push(frame);
        }
        prop_assert_eq!(frames.free_4k_frames(), 0);
        prop_assert_eq!(model.free_frames(), 0);
        let handed_out: u64 = out.iter().map(|f| f.size().bytes() / SIZE_4K).sum();
        prop_assert_eq!(handed_out as usize, frames.managed_frames());

        for i in (1..out.len()).rev() {
            out.swap(i, order[i % order.len()].index(i + 1));
        }
        for frame in out {
            prop_assert_eq!(frames.free(frame), Ok(()));
        }
        prop_assert_eq!((frames.free_4k_frames(), frames.free_2m_frames()), start);
    }

    /// The metadata size stays enough after one more reserved range (the
    /// metadata's own home, or any other).
    #[test]
    fn metadata_estimate_survives_one_more_reservation(
        (usable, reserved) in memory_map(),
        extra in range(6 * MIB),
    ) {
        let needed = FrameAllocator::metadata_bytes_needed(&usable, &reserved).unwrap();
        let mut more = reserved.clone();
        more.push(extra);
        let mut meta = vec![0u64; needed / 8];
        prop_assert!(FrameAllocator::new(&usable, &more, &mut meta).is_ok());
        if let Ok(home) = FrameAllocator::metadata_home(&usable, &reserved) {
            prop_assert!(home.len() as usize >= needed);
            let set = RangeSet::usable_frames(&usable, &reserved).unwrap();
            prop_assert!(set.iter().any(|r| r.start <= home.start && home.end <= r.end));
            let mut with_home = reserved.clone();
            with_home.push(home);
            prop_assert!(FrameAllocator::new(&usable, &with_home, &mut meta).is_ok());
        }
    }
}
