//! The bounded table through which frames are lent, and the grants it issues.

use core::fmt;
use core::mem::MaybeUninit;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::frame::{FrameLease, FrameWindow, PhysFrame, FRAME_SIZE};
use crate::sync::{loom_const_fn, repeat_array, AtomicU32, AtomicU64, Ordering};
use crate::ServiceId;

/// What the borrower may do with a lent frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read only: [`Grant::bytes_mut`] is refused.
    ReadOnly,
    /// Read and write.
    ReadWrite,
}

/// Names one lending in a message: an entry of the lender's grant table and
/// the generation of that lending. Plain bytes, so anyone can forge one; the
/// table checks it on every use and refuses a stale or forged handle with a
/// [`GrantError`]. (A forgery that names a live lending exactly is
/// indistinguishable from the real handle, and still works only for the
/// borrower the lender named. Generations are 32 bits: a handle kept across
/// 2^32 lendings of one entry could match again.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct GrantHandle {
    /// Entry index in the table.
    pub index: u32,
    /// The entry's generation when the frame was lent.
    pub generation: u32,
}

/// Why the table refused a handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantError {
    /// The handle's index is outside the table: the handle is forged.
    NoSuchEntry,
    /// No lending with this handle is live: it ended (the frame was
    /// reclaimed) or never existed.
    Stale,
    /// The lending is not in a state that allows this: already accepted
    /// (accept), not yet returned (reclaim), still held (withdraw).
    Busy,
    /// The grant is not addressed to, or was not made by, this service.
    WrongService,
    /// Writing through a read-only grant.
    ReadOnly,
}

impl fmt::Display for GrantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoSuchEntry => "no such grant table entry",
            Self::Stale => "stale grant handle",
            Self::Busy => "grant accepted or not yet returned",
            Self::WrongService => "grant belongs to another service",
            Self::ReadOnly => "grant is read-only",
        })
    }
}

/// Every entry of the table is in use: the lease comes back to the lender.
#[derive(Debug)]
pub struct TableFull(pub FrameLease);

/// Entry states (low byte of the state word).
const FREE: u64 = 0;
/// The lender holds the entry and is writing `frame` and `parties`.
const FILLING: u64 = 1;
/// Offered to the borrower, not yet accepted.
const LENT: u64 = 2;
/// The borrower holds a [`Grant`].
const ACCEPTED: u64 = 3;
/// The borrower released its grant; the lender may reclaim.
const RETURNED: u64 = 4;

/// The generation of the next lending of an entry whose last one was
/// `previous`. Never 0, so an all-zero (default or forged) handle is never live.
const fn next_generation(previous: u32) -> u32 {
    match previous.wrapping_add(1) {
        0 => 1,
        generation => generation,
    }
}

/// The state word: generation in the high half, access in bits 8..16,
/// state in the low byte. Every transition is one CAS on it.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Word(u64);

impl Word {
    const fn new(generation: u32, access: Access, state: u64) -> Self {
        let access = match access {
            Access::ReadOnly => 0,
            Access::ReadWrite => 1,
        };
        Self((generation as u64) << 32 | access << 8 | state)
    }
    const fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }
    const fn access(self) -> Access {
        if (self.0 >> 8) & 0xff == 0 {
            Access::ReadOnly
        } else {
            Access::ReadWrite
        }
    }
    const fn state(self) -> u64 {
        self.0 & 0xff
    }
    const fn with_state(self, state: u64) -> Self {
        Self(self.0 & !0xff | state)
    }
}

/// One slot of a [`GrantTable`]. `frame` and `parties` are written only by
/// the lender that moved the state word `FREE -> FILLING`, and published by
/// its Release store of `LENT`; they are atomics so that a racing reader
/// holding a stale handle reads garbage it then discards, never a data race.
pub(crate) struct GrantEntry {
    word: AtomicU64,
    frame: AtomicU64,
    /// Lender in the high 16 bits, borrower in the low 16.
    parties: AtomicU32,
}

impl GrantEntry {
    loom_const_fn! {
        fn new() -> Self {
            Self {
                word: AtomicU64::new(0),
                frame: AtomicU64::new(0),
                parties: AtomicU32::new(0),
            }
        }
    }

    fn load(&self) -> Word {
        Word(self.word.load(Ordering::Acquire))
    }

    /// Moves `from -> to`; `false` if the word is no longer `from`. AcqRel:
    /// acquires what the previous holder published (frame bytes included),
    /// releases what we did.
    fn transition(&self, from: Word, to: Word) -> bool {
        self.word.compare_exchange(from.0, to.0, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    fn lender(&self) -> ServiceId {
        ServiceId((self.parties.load(Ordering::Relaxed) >> 16) as u16)
    }

    fn borrower(&self) -> ServiceId {
        ServiceId(self.parties.load(Ordering::Relaxed) as u16)
    }

    fn frame(&self) -> PhysFrame {
        PhysFrame::new(self.frame.load(Ordering::Relaxed)).unwrap_or_else(|| {
            unreachable!("grant entry holds an unaligned frame");
        })
    }
}

/// A fixed-size table of frames lent by services, shared by lenders and
/// borrowers. Lock-free: every operation is a CAS on one entry.
///
/// The rule: lending moves the lender's [`FrameLease`] into the table and
/// yields a [`GrantHandle`] to put in a message. The named borrower turns
/// the handle into a [`Grant`] (once), reads or writes the frame in place,
/// and releases it; then the lender reclaims its lease. At every moment
/// exactly one party can touch the frame, and the table's Acquire/Release
/// transitions order each party's accesses before the next party's.
pub struct GrantTable<const N: usize> {
    entries: [GrantEntry; N],
}

impl<const N: usize> GrantTable<N> {
    const CHECKED_N: usize = {
        assert!(N > 0 && N <= u32::MAX as usize, "grant table size out of range");
        N
    };

    loom_const_fn! {
        /// A table with every entry free.
        pub fn new() -> Self {
            let _ = Self::CHECKED_N;
            Self {
                entries: repeat_array!(N, GrantEntry::new()),
            }
        }
    }

    /// Builds an empty table in memory the kernel provides.
    pub fn init_in(place: &mut MaybeUninit<Self>) -> &mut Self {
        #[cfg(not(loom))]
        {
            let _ = Self::CHECKED_N;
            // SAFETY: `place` is valid for writes of one `Self`.
            unsafe { place.as_mut_ptr().write_bytes(0, 1) };
            // SAFETY: all-zero bytes are atomics of 0: every entry `FREE`,
            // generation 0, equal to `new()`.
            unsafe { place.assume_init_mut() }
        }
        #[cfg(loom)]
        {
            place.write(Self::new())
        }
    }

    /// Lends `lease`'s frame to `borrower`. Put the returned handle in a
    /// message to the borrower. If the table is full the lease comes back.
    pub fn lend(
        &self,
        lease: FrameLease,
        lender: ServiceId,
        borrower: ServiceId,
        access: Access,
    ) -> Result<GrantHandle, TableFull> {
        for (index, entry) in self.entries.iter().enumerate() {
            let free = entry.load();
            if free.state() != FREE || !entry.transition(free, free.with_state(FILLING)) {
                continue;
            }
            let frame = lease.into_frame();
            entry.frame.store(frame.addr(), Ordering::Relaxed);
            let parties = u32::from(lender.0) << 16 | u32::from(borrower.0);
            entry.parties.store(parties, Ordering::Relaxed);
            let generation = next_generation(free.generation());
            entry.word.store(Word::new(generation, access, LENT).0, Ordering::Release);
            return Ok(GrantHandle { index: index as u32, generation });
        }
        Err(TableFull(lease))
    }

    /// The borrower takes the frame named by `handle`. Succeeds once per
    /// lending, and only for the borrower the lender named.
    pub fn accept(&self, handle: GrantHandle, borrower: ServiceId) -> Result<Grant<'_>, GrantError> {
        let entry = self.entry(handle)?;
        let lent = entry.load();
        match self.check(lent, handle)? {
            LENT => {}
            _ => return Err(GrantError::Busy),
        }
        if entry.borrower() != borrower {
            // Re-check: if the entry moved on, the handle is what is wrong.
            return Err(self.stale_or(entry, handle, GrantError::WrongService));
        }
        if !entry.transition(lent, lent.with_state(ACCEPTED)) {
            return Err(self.stale_or(entry, handle, GrantError::Busy));
        }
        Ok(Grant { entry, handle, frame: entry.frame(), access: lent.access() })
    }

    /// The lender takes its lease back after the borrower released the
    /// grant. `Busy` while the offer is pending or the grant is held. The
    /// handle is dead afterwards.
    pub fn reclaim(&self, handle: GrantHandle, lender: ServiceId) -> Result<FrameLease, GrantError> {
        self.take_back(handle, lender, false)
    }

    /// Like [`reclaim`](Self::reclaim), but also withdraws an offer the
    /// borrower has not accepted yet. `Busy` only while the grant is held.
    pub fn withdraw(&self, handle: GrantHandle, lender: ServiceId) -> Result<FrameLease, GrantError> {
        self.take_back(handle, lender, true)
    }

    fn take_back(
        &self,
        handle: GrantHandle,
        lender: ServiceId,
        withdraw_offer: bool,
    ) -> Result<FrameLease, GrantError> {
        let entry = self.entry(handle)?;
        let word = entry.load();
        match self.check(word, handle)? {
            RETURNED => {}
            LENT if withdraw_offer => {}
            _ => return Err(GrantError::Busy),
        }
        if entry.lender() != lender {
            return Err(self.stale_or(entry, handle, GrantError::WrongService));
        }
        let frame = entry.frame();
        let next = Word::new(word.generation(), Access::ReadOnly, FREE);
        if !entry.transition(word, next) {
            return Err(self.stale_or(entry, handle, GrantError::Busy));
        }
        Ok(FrameLease::from_table(frame))
    }

    /// Entries in use now (lent, borrowed or awaiting reclaim).
    pub fn in_use(&self) -> usize {
        self.entries.iter().filter(|e| e.load().state() != FREE).count()
    }

    /// Number of entries.
    pub const fn capacity(&self) -> usize {
        N
    }

    fn entry(&self, handle: GrantHandle) -> Result<&GrantEntry, GrantError> {
        usize::try_from(handle.index).ok().and_then(|i| self.entries.get(i)).ok_or(GrantError::NoSuchEntry)
    }

    /// The entry's state, if `handle` names its live lending.
    fn check(&self, word: Word, handle: GrantHandle) -> Result<u64, GrantError> {
        match word.state() {
            _ if word.generation() != handle.generation => Err(GrantError::Stale),
            FREE | FILLING => Err(GrantError::Stale),
            state => Ok(state),
        }
    }

    /// `Stale` if the entry no longer holds `handle`'s lending, else `other`.
    fn stale_or(&self, entry: &GrantEntry, handle: GrantHandle, other: GrantError) -> GrantError {
        match self.check(entry.load(), handle) {
            Err(stale) => stale,
            Ok(_) => other,
        }
    }
}

impl<const N: usize> Default for GrantTable<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// A borrowed frame: the borrower's right to its bytes until it releases
/// the grant (explicitly, or by dropping it). Not `Copy`, not `Clone`.
pub struct Grant<'t> {
    entry: &'t GrantEntry,
    handle: GrantHandle,
    frame: PhysFrame,
    access: Access,
}

impl Grant<'_> {
    /// The lent frame.
    pub fn frame(&self) -> PhysFrame {
        self.frame
    }

    /// What the lender allowed.
    pub fn access(&self) -> Access {
        self.access
    }

    /// The handle this grant was accepted from.
    pub fn handle(&self) -> GrantHandle {
        self.handle
    }

    /// The frame's bytes, for reading.
    pub fn bytes<'a, W: FrameWindow>(&'a self, window: &'a W) -> &'a [u8; FRAME_SIZE] {
        // SAFETY: the window maps the frame to valid memory (`FrameWindow`).
        // The lender gave its unique lease to the table and cannot touch the
        // frame until this grant is released; the table issued this grant
        // once (LENT -> ACCEPTED), so only borrows of it reach these bytes.
        unsafe { window.frame_ptr(self.frame).as_ref() }
    }

    /// The frame's bytes, for reading and writing; refused on a read-only grant.
    pub fn bytes_mut<'a, W: FrameWindow>(&'a mut self, window: &'a W) -> Result<&'a mut [u8; FRAME_SIZE], GrantError> {
        if self.access != Access::ReadWrite {
            return Err(GrantError::ReadOnly);
        }
        // SAFETY: as in `bytes`; `&mut self` makes this borrow exclusive.
        Ok(unsafe { window.frame_ptr(self.frame).as_mut() })
    }

    /// Gives the frame back; the lender can then reclaim its lease.
    pub fn release(self) {
        // Drop does the work.
    }
}

impl Drop for Grant<'_> {
    fn drop(&mut self) {
        let accepted = Word::new(self.handle.generation, self.access, ACCEPTED);
        let released = self.entry.transition(accepted, accepted.with_state(RETURNED));
        // Only this grant moves its entry out of ACCEPTED.
        debug_assert!(released, "grant entry changed under a live grant");
    }
}

impl fmt::Debug for Grant<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grant")
            .field("frame", &self.frame)
            .field("access", &self.access)
            .field("handle", &self.handle)
            .finish()
    }
}
