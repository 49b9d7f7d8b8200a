//! `SeenEntries`: the entries a table walk has already handed out, by address.
//!
//! In a healthy dict or hashtable every entry sits in exactly one bucket chain. A damaged
//! `next` pointer can lead one chain into another chain (or into itself), and then the
//! same entry would be emitted twice: Redis's loader stops on a duplicate key (7.0 panics
//! on one) and silently keeps a corrupt set or hash with a duplicate member or field. So
//! every walk remembers the addresses it handed out and never hands one out again.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

/// A hasher for heap addresses: they are already well spread above the low bits, so one
/// multiply is enough and much cheaper than SipHash on the walk's hot path.
#[derive(Default)]
pub struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        // Allocations are 8- or 16-byte aligned: drop the always-zero bits first.
        self.0 = (n >> 3).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Addresses of the entries handed out so far (about 9 bytes each).
#[derive(Default)]
pub struct SeenEntries {
    set: HashSet<u64, BuildHasherDefault<AddressHasher>>,
}

impl SeenEntries {
    /// An empty set expecting about `n` entries (capped: the hint comes from the core).
    pub fn with_capacity(n: u64) -> Self {
        let mut set = HashSet::default();
        set.reserve(n.min(1 << 20) as usize);
        SeenEntries { set }
    }

    /// True the first time `addr` is offered, false ever after.
    pub fn first_visit(&mut self, addr: u64) -> bool {
        self.set.insert(addr)
    }

    /// Whether `addr` was handed out.
    pub fn contains(&self, addr: u64) -> bool {
        self.set.contains(&addr)
    }

    /// Forget `addr`: it was reached through a damaged link, and its own chain may still
    /// hand it out.
    pub fn forget(&mut self, addr: u64) {
        self.set.remove(&addr);
    }

    /// Number of distinct entries seen.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// True when nothing was seen yet.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_is_new_once() {
        let mut s = SeenEntries::with_capacity(u64::MAX);
        for a in (0..10_000u64).map(|i| 0x7f00_0000_0000 + i * 16) {
            assert!(s.first_visit(a));
        }
        for a in (0..10_000u64).map(|i| 0x7f00_0000_0000 + i * 16) {
            assert!(!s.first_visit(a));
        }
        assert_eq!(s.len(), 10_000);
    }
}
