//! A map from guest page to per-page protocol state that stores only the
//! pages whose state differs from the default.
//!
//! Deterministic (fixed hash seed, no iteration in the engine's decisions)
//! and hashable, so a whole node can be a model-checker state.

use core::hash::{BuildHasher, Hash, Hasher};

use foldhash::fast::FixedState;
use hashbrown::HashMap;

use crate::GuestPage;

/// Per-page state `V`, absent entries meaning `V::default()`.
#[derive(Clone, Debug)]
pub(crate) struct PageTable<V> {
    map: HashMap<GuestPage, V, FixedState>,
}

impl<V: Default + PartialEq + Copy> PageTable<V> {
    pub(crate) fn new() -> Self {
        Self { map: HashMap::with_hasher(FixedState::default()) }
    }

    /// The state of `page`.
    pub(crate) fn get(&self, page: GuestPage) -> V {
        self.map.get(&page).copied().unwrap_or_default()
    }

    /// Stores the state of `page`, dropping the entry if it is the default.
    /// One hash lookup.
    pub(crate) fn set(&mut self, page: GuestPage, value: V) {
        use hashbrown::hash_map::Entry;
        let keep = value != V::default();
        match self.map.entry(page) {
            Entry::Occupied(mut o) if keep => *o.get_mut() = value,
            Entry::Occupied(o) => {
                o.remove();
            }
            Entry::Vacant(v) if keep => {
                v.insert(value);
            }
            Entry::Vacant(_) => {}
        }
    }

    /// Number of pages in a non-default state.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Visits the non-default entries in no particular order. Callers must
    /// not let the order influence a protocol decision.
    pub(crate) fn for_each(&self, mut f: impl FnMut(GuestPage, &V)) {
        for (page, value) in &self.map {
            f(*page, value);
        }
    }
}

impl<V: PartialEq> PartialEq for PageTable<V> {
    fn eq(&self, other: &Self) -> bool {
        self.map == other.map
    }
}

impl<V: Eq> Eq for PageTable<V> {}

impl<V: Hash> Hash for PageTable<V> {
    /// Order-independent: the sum of the entries' own hashes.
    fn hash<H: Hasher>(&self, state: &mut H) {
        let seed = FixedState::with_seed(0x5eed);
        let sum = self.map.iter().fold(0u64, |acc, entry| acc.wrapping_add(seed.hash_one(entry)));
        self.map.len().hash(state);
        sum.hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::collections::hash_map::DefaultHasher;

    fn page(n: u64) -> GuestPage {
        GuestPage::new(n).unwrap()
    }

    fn fingerprint(t: &PageTable<u32>) -> u64 {
        let mut h = DefaultHasher::new();
        t.hash(&mut h);
        h.finish()
    }

    #[test]
    fn default_values_are_not_stored() {
        let mut t = PageTable::<u32>::new();
        t.set(page(1), 7);
        t.set(page(2), 0);
        assert_eq!(t.len(), 1);
        assert_eq!(t.get(page(1)), 7);
        assert_eq!(t.get(page(2)), 0);
        t.set(page(1), 0);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn equal_tables_hash_equal_whatever_the_insertion_order() {
        let mut a = PageTable::<u32>::new();
        let mut b = PageTable::<u32>::new();
        for n in 0..50 {
            a.set(page(n), n as u32 + 1);
        }
        for n in (0..50).rev() {
            b.set(page(n), n as u32 + 1);
        }
        assert_eq!(a, b);
        assert_eq!(fingerprint(&a), fingerprint(&b));
        b.set(page(3), 99);
        assert_ne!(a, b);
        assert_ne!(fingerprint(&a), fingerprint(&b));
    }
}
