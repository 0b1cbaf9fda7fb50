use std::collections::BTreeMap;
use std::vec::Vec;

use proptest::prelude::*;

use super::*;

/// Table frames in plain memory: frame k lives at host address
/// `BASE + k * 4 KiB`.
struct FakeTables {
    frames: Vec<Option<Box<[u64; 512]>>>,
    limit: usize,
}

const BASE: u64 = 0x7000_0000;

impl FakeTables {
    fn new(limit: usize) -> Self {
        Self { frames: Vec::new(), limit }
    }
    fn live(&self) -> usize {
        self.frames.iter().filter(|f| f.is_some()).count()
    }
    fn slot(&self, table: HostPhysAddr) -> usize {
        assert!(table.get() >= BASE && table.is_aligned(4096), "not a table frame: {table}");
        ((table.get() - BASE) / 4096) as usize
    }
}

impl TableMemory for FakeTables {
    fn allocate_table(&mut self) -> Option<HostPhysAddr> {
        if self.live() >= self.limit {
            return None;
        }
        self.frames.push(Some(Box::new([0; 512])));
        Some(HostPhysAddr(BASE + (self.frames.len() as u64 - 1) * 4096))
    }
    fn free_table(&mut self, table: HostPhysAddr) {
        let s = self.slot(table);
        self.frames[s] = None;
    }
    fn read_entry(&self, table: HostPhysAddr, index: usize) -> u64 {
        self.frames[self.slot(table)].as_ref().expect("live table")[index]
    }
    fn write_entry(&mut self, table: HostPhysAddr, index: usize, value: u64) {
        let s = self.slot(table);
        self.frames[s].as_mut().expect("live table")[index] = value;
    }
}

fn npt() -> NestedPageTable<FakeTables> {
    NestedPageTable::new(FakeTables::new(10_000)).unwrap()
}

const RWX: NptPerm = NptPerm::READ_WRITE_EXECUTE;

#[test]
fn map_and_translate_4k() {
    let mut t = npt();
    t.map(GuestPhysAddr(0x1000), HostPhysAddr(0x4_5000), PageSize::Size4K, RWX).unwrap();
    let tr = t.translate(GuestPhysAddr(0x1abc)).unwrap();
    assert_eq!(tr.hpa, HostPhysAddr(0x4_5abc));
    assert_eq!(tr.size, PageSize::Size4K);
    assert_eq!(t.translate(GuestPhysAddr(0x2000)), None);
    // PML4 + PDPT + PD + PT.
    assert_eq!(t.memory().live(), 4);
    // Entries carry U/S at every level.
    let root = t.root();
    assert_eq!(t.memory().read_entry(root, 0) & 0b111, 0b111);
}

#[test]
fn map_ram_uses_large_pages_where_aligned() {
    let mut t = npt();
    // 0x1000..0x40_1000 with frames at 0x20_1000: GPA and HPA are both
    // 4 KiB off 2 MiB alignment, so one large page fits in the middle.
    let r = RamRange { gpa: GuestPhysAddr(0x1000), hpa: HostPhysAddr(0x20_1000), len: 0x40_0000 };
    let stats = t.map_ram(&[r], RWX).unwrap();
    assert_eq!(stats, MapStats { large_pages: 1, small_pages: 512 });
    // GPA and HPA differently aligned: only small pages.
    let skew = RamRange { gpa: GuestPhysAddr(0x80_0000), hpa: HostPhysAddr(0x1000_1000), len: 0x40_0000 };
    assert_eq!(t.map_ram(&[skew], RWX).unwrap(), MapStats { large_pages: 0, small_pages: 1024 });
    let r2 = RamRange { gpa: GuestPhysAddr(0x1_0000_0000), hpa: HostPhysAddr(0x4000_0000), len: 0x50_3000 };
    let stats = t.map_ram(&[r2], RWX).unwrap();
    assert_eq!(stats, MapStats { large_pages: 2, small_pages: 259 });
    let tr = t.translate(GuestPhysAddr(0x1_0020_0010)).unwrap();
    assert_eq!((tr.hpa, tr.size), (HostPhysAddr(0x4020_0010), PageSize::Size2M));
    let tr = t.translate(GuestPhysAddr(0x1_0050_2fff)).unwrap();
    assert_eq!((tr.hpa, tr.size), (HostPhysAddr(0x4050_2fff), PageSize::Size4K));
    assert_eq!(t.translate(GuestPhysAddr(0x1_0050_3000)), None);
}

#[test]
fn unmap_inside_a_large_page_splits_it() {
    let mut t = npt();
    t.map(GuestPhysAddr(0x20_0000), HostPhysAddr(0x80_0000), PageSize::Size2M, RWX).unwrap();
    let u = t.unmap(GuestPhysAddr(0x20_5000)).unwrap();
    assert_eq!(u.frame, HostPhysAddr(0x80_5000));
    assert_eq!(u.perm, RWX);
    assert_eq!(t.translate(GuestPhysAddr(0x20_5000)), None);
    let neighbour = t.translate(GuestPhysAddr(0x20_6008)).unwrap();
    assert_eq!((neighbour.hpa, neighbour.size), (HostPhysAddr(0x80_6008), PageSize::Size4K));
    assert_eq!(t.unmap(GuestPhysAddr(0x20_5000)), Err(NptError::NotMapped(GuestPhysAddr(0x20_5000))));
    // Remap with a new frame (a page that came back from another node).
    t.map(GuestPhysAddr(0x20_5000), HostPhysAddr(0x123_4000), PageSize::Size4K, NptPerm::READ_EXECUTE).unwrap();
    let tr = t.translate(GuestPhysAddr(0x20_5000)).unwrap();
    assert_eq!((tr.hpa, tr.perm), (HostPhysAddr(0x123_4000), NptPerm::READ_EXECUTE));
}

#[test]
fn protect_downgrades_and_upgrades() {
    let mut t = npt();
    t.map(GuestPhysAddr(0x40_0000), HostPhysAddr(0x40_0000), PageSize::Size2M, RWX).unwrap();
    let _flush: TlbFlush = t.protect(GuestPhysAddr(0x40_1000), NptPerm::READ_EXECUTE).unwrap();
    assert_eq!(t.translate(GuestPhysAddr(0x40_1000)).unwrap().perm, NptPerm::READ_EXECUTE);
    assert_eq!(t.translate(GuestPhysAddr(0x40_2000)).unwrap().perm, RWX);
    let _ = t.protect(GuestPhysAddr(0x40_1000), RWX).unwrap();
    assert_eq!(t.translate(GuestPhysAddr(0x40_1000)).unwrap().perm, RWX);
    assert_eq!(t.protect(GuestPhysAddr(0x90_0000), RWX), Err(NptError::NotMapped(GuestPhysAddr(0x90_0000))));
}

#[test]
fn unmap_large() {
    let mut t = npt();
    t.map(GuestPhysAddr(0x60_0000), HostPhysAddr(0xa0_0000), PageSize::Size2M, RWX).unwrap();
    let u = t.unmap_large(GuestPhysAddr(0x60_0000)).unwrap();
    assert_eq!(u.frame, HostPhysAddr(0xa0_0000));
    assert_eq!(t.translate(GuestPhysAddr(0x60_0000)), None);
    t.map(GuestPhysAddr(0x60_0000), HostPhysAddr(0xa0_0000), PageSize::Size4K, RWX).unwrap();
    assert!(t.unmap_large(GuestPhysAddr(0x60_0000)).is_err(), "a page table, not a large leaf");
}

#[test]
fn refusals() {
    let mut t = npt();
    let g = GuestPhysAddr;
    let h = HostPhysAddr;
    assert_eq!(t.map(g(0x1001), h(0), PageSize::Size4K, RWX), Err(NptError::MisalignedGpa(g(0x1001))));
    assert_eq!(t.map(g(0x20_0000), h(0x1000), PageSize::Size2M, RWX), Err(NptError::MisalignedFrame(h(0x1000))));
    assert_eq!(t.map(g(1 << 48), h(0), PageSize::Size4K, RWX), Err(NptError::GpaOutOfRange(g(1 << 48))));
    assert_eq!(t.map(g(0), h(1 << 52), PageSize::Size4K, RWX), Err(NptError::FrameOutOfRange(h(1 << 52))));
    t.map(g(0x20_0000), h(0x20_0000), PageSize::Size2M, RWX).unwrap();
    assert_eq!(t.map(g(0x20_1000), h(0), PageSize::Size4K, RWX), Err(NptError::AlreadyMapped(g(0x20_1000))));
    assert_eq!(t.map(g(0x20_0000), h(0), PageSize::Size2M, RWX), Err(NptError::AlreadyMapped(g(0x20_0000))));
    t.map(g(0x1000), h(0), PageSize::Size4K, RWX).unwrap();
    assert_eq!(t.map(g(0x1000), h(0), PageSize::Size4K, RWX), Err(NptError::AlreadyMapped(g(0x1000))));
    assert_eq!(t.map(g(0), h(0), PageSize::Size2M, RWX), Err(NptError::AlreadyMapped(g(0))));
    let bad_len = RamRange { gpa: g(0x100_0000), hpa: h(0), len: 0x1234 };
    assert_eq!(t.map_ram(&[bad_len], RWX), Err(NptError::MisalignedLength(0x1234)));
    assert_eq!(t.translate(g(u64::MAX)), None);
}

#[test]
fn out_of_table_frames_is_an_error() {
    let mut t = NestedPageTable::new(FakeTables::new(3)).unwrap();
    assert_eq!(t.map(GuestPhysAddr(0), HostPhysAddr(0), PageSize::Size4K, RWX), Err(NptError::OutOfTableFrames));
    // The 2 MiB leaf needs no page table, so it fits.
    t.map(GuestPhysAddr(0x20_0000), HostPhysAddr(0x20_0000), PageSize::Size2M, RWX).unwrap();
    // Splitting needs a frame: refused, nothing changed.
    assert_eq!(t.unmap(GuestPhysAddr(0x20_0000)), Err(NptError::OutOfTableFrames));
    assert_eq!(t.translate(GuestPhysAddr(0x20_0000)).unwrap().size, PageSize::Size2M);
    assert!(NestedPageTable::new(FakeTables::new(0)).is_err());
}

#[derive(Clone, Debug)]
enum Op {
    Map { page: u64, frame: u64, large: bool, write: bool },
    Unmap { page: u64 },
    Protect { page: u64, write: bool, execute: bool },
}

fn op() -> impl Strategy<Value = Op> {
    // Pages in a 16 MiB window so operations collide often.
    let page = 0u64..4096;
    prop_oneof![
        (page.clone(), 0u64..4096, any::<bool>(), any::<bool>()).prop_map(|(page, frame, large, write)| Op::Map {
            page,
            frame,
            large,
            write
        }),
        page.clone().prop_map(|page| Op::Unmap { page }),
        (page, any::<bool>(), any::<bool>()).prop_map(|(page, write, execute)| Op::Protect { page, write, execute }),
    ]
}

proptest! {
    /// The table agrees with a flat model of 4 KiB pages after any
    /// sequence of map/unmap/protect, including splits.
    #[test]
    fn agrees_with_a_flat_model(ops in proptest::collection::vec(op(), 1..60)) {
        let mut t = npt();
        let mut model: BTreeMap<u64, (u64, NptPerm)> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Map { page, frame, large, write } => {
                    let perm = NptPerm { write, execute: true };
                    let (gpa, hpa) = if large { (page & !511, frame & !511) } else { (page, frame) };
                    let size = if large { PageSize::Size2M } else { PageSize::Size4K };
                    let n = if large { 512 } else { 1 };
                    let free = (gpa..gpa + n).all(|p| !model.contains_key(&p));
                    let r = t.map(GuestPhysAddr(gpa << 12), HostPhysAddr(hpa << 12), size, perm);
                    if free && r.is_ok() {
                        for i in 0..n {
                            model.insert(gpa + i, (hpa + i, perm));
                        }
                    } else {
                        // Refusals happen only when something overlaps (a
                        // 2 MiB map over an existing page table counts).
                        prop_assert!(r.is_err());
                        prop_assert!(matches!(r, Err(NptError::AlreadyMapped(_))));
                    }
                }
                Op::Unmap { page } => {
                    let r = t.unmap(GuestPhysAddr(page << 12));
                    match model.remove(&page) {
                        Some((frame, perm)) => {
                            let u = r.unwrap();
                            prop_assert_eq!((u.frame, u.perm), (HostPhysAddr(frame << 12), perm));
                        }
                        None => prop_assert!(r.is_err()),
                    }
                }
                Op::Protect { page, write, execute } => {
                    let perm = NptPerm { write, execute };
                    let r = t.protect(GuestPhysAddr(page << 12), perm);
                    match model.get_mut(&page) {
                        Some(entry) => {
                            prop_assert!(r.is_ok());
                            entry.1 = perm;
                        }
                        None => prop_assert!(r.is_err()),
                    }
                }
            }
        }
        for page in 0..4096u64 {
            let got = t.translate(GuestPhysAddr((page << 12) | 0x10)).map(|tr| (tr.hpa.get() >> 12, tr.perm));
            prop_assert_eq!(got, model.get(&page).copied());
        }
    }
}
