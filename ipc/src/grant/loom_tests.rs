//! Loom models of the grant table. Run: see the crate docs.

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;

use super::*;
use crate::loom_support::model;
use crate::ServiceId;

const LENDER: ServiceId = ServiceId(1);
const BORROWER: ServiceId = ServiceId(2);

fn leaked_table() -> &'static GrantTable<2> {
    Box::leak(Box::new(GrantTable::new()))
}

fn lease() -> FrameLease {
    // SAFETY: the frame is a number only; no window ever maps it here.
    unsafe { FrameLease::assume_owned(PhysFrame::new(0x20_0000).unwrap()) }
}

/// Two threads race to accept one handle: exactly one gets the grant.
#[test]
fn loom_grant_accepted_once() {
    model(|| {
        let table = leaked_table();
        let handle = table.lend(lease(), LENDER, BORROWER, Access::ReadWrite).unwrap();
        let racer = thread::spawn(move || table.accept(handle, BORROWER).map(Grant::release).is_ok());
        let here = table.accept(handle, BORROWER).map(Grant::release).is_ok();
        let there = racer.join().unwrap();
        assert!(here ^ there, "accepted {} times", here as u8 + there as u8);
        assert!(table.reclaim(handle, LENDER).is_ok());
    });
}

/// The lender withdraws the offer while the borrower accepts it: exactly one
/// wins, and the lease always comes back to the lender in the end.
#[test]
fn loom_grant_withdraw_races_accept() {
    model(|| {
        let table = leaked_table();
        let handle = table.lend(lease(), LENDER, BORROWER, Access::ReadOnly).unwrap();
        let borrower = thread::spawn(move || table.accept(handle, BORROWER).map(Grant::release).is_ok());
        let withdrawn = table.withdraw(handle, LENDER).is_ok();
        let accepted = borrower.join().unwrap();
        assert!(withdrawn ^ accepted);
        if accepted {
            assert!(table.reclaim(handle, LENDER).is_ok());
        }
        assert_eq!(table.in_use(), 0);
    });
}

/// The frame's bytes, modelled as a loom cell: loom reports any access not
/// ordered after the previous party's, so this checks that lend -> accept
/// and release -> reclaim carry happens-before. The borrower starts before
/// the lending (polling with the handle a fresh table will issue), so only
/// the table can order the lender's write before the borrower's read.
#[test]
fn loom_grant_handover_orders_frame_bytes() {
    model(|| {
        let table = leaked_table();
        let bytes = Arc::new(UnsafeCell::new(0u64));
        let expected = GrantHandle { index: 0, generation: 1 };

        let borrowed = bytes.clone();
        let borrower = thread::spawn(move || {
            let grant = loop {
                match table.accept(expected, BORROWER) {
                    Ok(grant) => break grant,
                    Err(_) => thread::yield_now(),
                }
            };
            // SAFETY: the grant makes the borrower the frame's only user.
            assert_eq!(borrowed.with(|p| unsafe { *p }), 1);
            // SAFETY: as above.
            borrowed.with_mut(|p| unsafe { *p = 2 });
            grant.release();
        });

        // SAFETY: the lender is the frame's only user before it lends it.
        bytes.with_mut(|p| unsafe { *p = 1 });
        let handle = table.lend(lease(), LENDER, BORROWER, Access::ReadWrite).unwrap();
        assert_eq!(handle, expected);
        let lease = loop {
            // `reclaim` succeeds only once the borrower released the grant.
            match table.reclaim(handle, LENDER) {
                Ok(lease) => break lease,
                Err(_) => thread::yield_now(),
            }
        };
        // SAFETY: the reclaimed lease makes the lender the only user again.
        assert_eq!(bytes.with(|p| unsafe { *p }), 2);
        borrower.join().unwrap();
        assert_eq!(lease.into_frame().addr(), 0x20_0000);
    });
}
