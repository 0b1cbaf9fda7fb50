//! Address newtypes: a guest-physical address is never a host-physical one.

use core::fmt;

/// Size of a small page and of a nested page table.
pub const PAGE_SIZE_4K: u64 = 0x1000;
/// Size of a large page mapped by a page-directory entry.
pub const PAGE_SIZE_2M: u64 = 0x20_0000;

/// A guest-physical address (what the guest believes is physical memory).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct GuestPhysAddr(pub u64);

/// A host-physical address (a real frame of this node).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HostPhysAddr(pub u64);

macro_rules! addr_common {
    ($t:ident, $prefix:literal) => {
        impl $t {
            /// The raw address.
            pub const fn get(self) -> u64 {
                self.0
            }
            /// The offset inside its 4 KiB page.
            pub const fn page_offset(self) -> u64 {
                self.0 & (PAGE_SIZE_4K - 1)
            }
            /// Rounded down to its 4 KiB page.
            pub const fn page_base(self) -> Self {
                Self(self.0 & !(PAGE_SIZE_4K - 1))
            }
            /// Whether the address is a multiple of `align` (a power of two).
            pub const fn is_aligned(self, align: u64) -> bool {
                self.0 & (align - 1) == 0
            }
            /// `self + bytes`, or `None` on overflow.
            pub const fn checked_add(self, bytes: u64) -> Option<Self> {
                match self.0.checked_add(bytes) {
                    Some(a) => Some(Self(a)),
                    None => None,
                }
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{:#x}"), self.0)
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self, f)
            }
        }
    };
}

addr_common!(GuestPhysAddr, "gpa:");
addr_common!(HostPhysAddr, "hpa:");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_helpers() {
        let g = GuestPhysAddr(0xfee0_0123);
        assert_eq!(g.page_offset(), 0x123);
        assert_eq!(g.page_base(), GuestPhysAddr(0xfee0_0000));
        assert!(!g.is_aligned(PAGE_SIZE_4K));
        assert!(GuestPhysAddr(0x20_0000).is_aligned(PAGE_SIZE_2M));
        assert_eq!(GuestPhysAddr(u64::MAX).checked_add(1), None);
        assert_eq!(format!("{g}"), "gpa:0xfee00123");
    }
}
