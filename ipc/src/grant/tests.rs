use std::cell::UnsafeCell;
use std::ptr::NonNull;

use super::*;
use crate::ServiceId;

const LENDER: ServiceId = ServiceId(1);
const BORROWER: ServiceId = ServiceId(2);
const OTHER: ServiceId = ServiceId(3);
const BASE: u64 = 0x10_0000;

#[repr(C, align(4096))]
struct Page(UnsafeCell<[u8; FRAME_SIZE]>);

/// Fake physical memory: frame `BASE + i * 4096` is `pages[i]`.
struct HostFrames {
    pages: Box<[Page]>,
}

impl HostFrames {
    fn new(frames: usize) -> Self {
        let pages = (0..frames).map(|_| Page(UnsafeCell::new([0; FRAME_SIZE]))).collect();
        Self { pages }
    }

    fn frame(&self, i: usize) -> PhysFrame {
        assert!(i < self.pages.len());
        PhysFrame::new(BASE + (i * FRAME_SIZE) as u64).unwrap()
    }

    fn lease(&self, i: usize) -> FrameLease {
        // SAFETY: each test leases each fake frame at most once, and reaches
        // the pages only through leases and grants.
        unsafe { FrameLease::assume_owned(self.frame(i)) }
    }
}

// SAFETY: each page is a distinct, live, 4096-byte `UnsafeCell` owned by
// `self`, so the pointers are valid for reads and writes while `self` lives
// and never overlap.
unsafe impl FrameWindow for HostFrames {
    fn frame_ptr(&self, frame: PhysFrame) -> NonNull<[u8; FRAME_SIZE]> {
        let i = ((frame.addr() - BASE) as usize) / FRAME_SIZE;
        NonNull::new(self.pages[i].0.get()).unwrap()
    }
}

#[test]
fn lend_accept_write_release_reclaim_without_copy() {
    let memory = HostFrames::new(2);
    let table = GrantTable::<4>::new();
    let mut lease = memory.lease(0);
    lease.bytes_mut(&memory)[..5].copy_from_slice(b"hello");

    let handle = table.lend(lease, LENDER, BORROWER, Access::ReadWrite).unwrap();
    assert_eq!(table.in_use(), 1);
    let mut grant = table.accept(handle, BORROWER).unwrap();
    assert_eq!(grant.frame(), memory.frame(0));
    assert_eq!(&grant.bytes(&memory)[..5], b"hello");
    grant.bytes_mut(&memory).unwrap()[..5].copy_from_slice(b"world");
    // The borrower writes the lender's very bytes: nothing was copied.
    assert_eq!(grant.bytes(&memory).as_ptr(), memory.pages[0].0.get().cast::<u8>().cast_const());

    assert_eq!(table.reclaim(handle, LENDER).unwrap_err(), GrantError::Busy);
    assert_eq!(table.withdraw(handle, LENDER).unwrap_err(), GrantError::Busy);
    grant.release();
    let lease = table.reclaim(handle, LENDER).unwrap();
    assert_eq!(&lease.bytes(&memory)[..5], b"world");
    assert_eq!(lease.frame(), memory.frame(0));
    assert_eq!(table.in_use(), 0);
}

#[test]
fn a_handle_is_accepted_once() {
    let memory = HostFrames::new(1);
    let table = GrantTable::<2>::new();
    let handle = table.lend(memory.lease(0), LENDER, BORROWER, Access::ReadOnly).unwrap();
    let grant = table.accept(handle, BORROWER).unwrap();
    assert_eq!(table.accept(handle, BORROWER).unwrap_err(), GrantError::Busy);
    drop(grant);
    // Released but not reclaimed: still not acceptable again.
    assert_eq!(table.accept(handle, BORROWER).unwrap_err(), GrantError::Busy);
}

#[test]
fn stale_and_forged_handles_are_refused() {
    let memory = HostFrames::new(2);
    let table = GrantTable::<2>::new();
    let handle = table.lend(memory.lease(0), LENDER, BORROWER, Access::ReadOnly).unwrap();
    let forged_index = GrantHandle { index: 2, generation: handle.generation };
    let forged_generation = GrantHandle { generation: handle.generation + 7, ..handle };
    let zeroed = GrantHandle { index: 0, generation: 0 };
    assert_eq!(table.accept(forged_index, BORROWER).unwrap_err(), GrantError::NoSuchEntry);
    assert_eq!(table.accept(forged_generation, BORROWER).unwrap_err(), GrantError::Stale);
    assert_eq!(table.accept(zeroed, BORROWER).unwrap_err(), GrantError::Stale);
    assert_eq!(
        table.accept(GrantHandle { index: u32::MAX, generation: 1 }, BORROWER).unwrap_err(),
        GrantError::NoSuchEntry
    );

    // Withdraw the offer before it is accepted: the handle dies.
    assert_eq!(table.reclaim(handle, LENDER).unwrap_err(), GrantError::Busy);
    let lease = table.withdraw(handle, LENDER).unwrap();
    assert_eq!(table.accept(handle, BORROWER).unwrap_err(), GrantError::Stale);
    assert_eq!(table.reclaim(handle, LENDER).unwrap_err(), GrantError::Stale);

    // The entry is reused under a new generation; the old handle stays dead.
    let again = table.lend(lease, LENDER, BORROWER, Access::ReadOnly).unwrap();
    assert_eq!(again.index, handle.index);
    assert_ne!(again.generation, handle.generation);
    assert_eq!(table.accept(handle, BORROWER).unwrap_err(), GrantError::Stale);
    assert!(table.accept(again, BORROWER).is_ok());
}

#[test]
fn only_the_named_parties_may_accept_and_reclaim() {
    let memory = HostFrames::new(1);
    let table = GrantTable::<1>::new();
    let handle = table.lend(memory.lease(0), LENDER, BORROWER, Access::ReadWrite).unwrap();
    assert_eq!(table.accept(handle, OTHER).unwrap_err(), GrantError::WrongService);
    assert_eq!(table.withdraw(handle, OTHER).unwrap_err(), GrantError::WrongService);
    let grant = table.accept(handle, BORROWER).unwrap();
    grant.release();
    assert_eq!(table.reclaim(handle, BORROWER).unwrap_err(), GrantError::WrongService);
    assert!(table.reclaim(handle, LENDER).is_ok());
}

#[test]
fn read_only_grant_refuses_writes() {
    let memory = HostFrames::new(1);
    let table = GrantTable::<1>::new();
    let handle = table.lend(memory.lease(0), LENDER, BORROWER, Access::ReadOnly).unwrap();
    let mut grant = table.accept(handle, BORROWER).unwrap();
    assert_eq!(grant.access(), Access::ReadOnly);
    assert_eq!(grant.bytes_mut(&memory).unwrap_err(), GrantError::ReadOnly);
    assert_eq!(grant.bytes(&memory)[0], 0);
}

#[test]
fn full_table_gives_the_lease_back() {
    let memory = HostFrames::new(3);
    let table = GrantTable::<2>::new();
    for i in 0..2 {
        table.lend(memory.lease(i), LENDER, BORROWER, Access::ReadOnly).unwrap();
    }
    let TableFull(lease) = table.lend(memory.lease(2), LENDER, BORROWER, Access::ReadOnly).unwrap_err();
    assert_eq!(lease.frame(), memory.frame(2));
    assert_eq!(table.in_use(), 2);
}

#[test]
fn handle_travels_in_a_message() {
    use zerocopy::{FromBytes, IntoBytes};
    let handle = GrantHandle { index: 3, generation: 9 };
    let bytes = handle.as_bytes();
    assert_eq!(bytes.len(), 8);
    assert_eq!(GrantHandle::read_from_bytes(bytes).unwrap(), handle);
}

#[test]
fn phys_frame_must_be_aligned() {
    assert!(PhysFrame::new(0x1000).is_some());
    assert!(PhysFrame::new(0x1001).is_none());
}
