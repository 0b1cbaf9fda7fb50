//! A physical frame, the token that owns it, and the kernel's window onto it.

use core::fmt;
use core::ptr::NonNull;

/// Bytes in a frame that can be lent: one 4 KiB page.
pub const FRAME_SIZE: usize = 4096;

/// The physical address of a 4 KiB-aligned frame. Only a number: this crate
/// never dereferences it (see [`FrameWindow`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhysFrame(u64);

impl PhysFrame {
    /// The frame starting at `addr`, if `addr` is 4 KiB-aligned.
    pub const fn new(addr: u64) -> Option<Self> {
        if addr & (FRAME_SIZE as u64 - 1) == 0 {
            Some(Self(addr))
        } else {
            None
        }
    }

    /// The frame's physical start address.
    pub const fn addr(self) -> u64 {
        self.0
    }
}

impl fmt::Debug for PhysFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhysFrame({:#x})", self.0)
    }
}

/// How the kernel lets code touch a frame's bytes: its direct map of
/// physical memory, or a test's fake memory.
///
/// # Safety
///
/// For every frame it is asked about, `frame_ptr` must return a pointer to
/// that frame's `FRAME_SIZE` bytes, valid for reads and writes for as long as
/// the window lives, and two different frames must never map to overlapping
/// bytes. Leases and grants rely on this to hand out references.
pub unsafe trait FrameWindow {
    /// Where `frame`'s bytes can be reached.
    fn frame_ptr(&self, frame: PhysFrame) -> NonNull<[u8; FRAME_SIZE]>;
}

/// Ownership of one frame by one service: the right to touch its bytes and
/// to lend it. Not `Copy`, not `Clone`: lending it moves it into a
/// [`GrantTable`](crate::GrantTable), and only the lender's
/// [`reclaim`](crate::GrantTable::reclaim) brings it back.
pub struct FrameLease {
    frame: PhysFrame,
}

impl FrameLease {
    /// Makes the lease for a frame the kernel just allocated.
    ///
    /// # Safety
    ///
    /// `frame` must be RAM that no other `FrameLease` or
    /// [`Grant`](crate::Grant) names and that nothing else reads or writes
    /// while this lease, or a grant made from it, lives (until
    /// [`into_frame`](Self::into_frame) gives it back).
    pub const unsafe fn assume_owned(frame: PhysFrame) -> Self {
        Self { frame }
    }

    /// Rebuilds the lease that a grant table took in; the table holds the
    /// uniqueness invariant for it.
    pub(super) const fn from_table(frame: PhysFrame) -> Self {
        Self { frame }
    }

    /// The frame this lease owns.
    pub const fn frame(&self) -> PhysFrame {
        self.frame
    }

    /// Gives up the lease, e.g. to return the frame to the kernel's allocator.
    pub const fn into_frame(self) -> PhysFrame {
        self.frame
    }

    /// The frame's bytes, for reading.
    pub fn bytes<'a, W: FrameWindow>(&'a self, window: &'a W) -> &'a [u8; FRAME_SIZE] {
        // SAFETY: the window maps the frame to valid memory (`FrameWindow`),
        // and the lease is the frame's only owner (`assume_owned`), so only
        // borrows of this lease reach these bytes: `&self` allows sharing.
        unsafe { window.frame_ptr(self.frame).as_ref() }
    }

    /// The frame's bytes, for reading and writing.
    pub fn bytes_mut<'a, W: FrameWindow>(&'a mut self, window: &'a W) -> &'a mut [u8; FRAME_SIZE] {
        // SAFETY: as in `bytes`; `&mut self` makes this borrow exclusive.
        unsafe { window.frame_ptr(self.frame).as_mut() }
    }
}

impl fmt::Debug for FrameLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("FrameLease").field(&self.frame).finish()
    }
}
