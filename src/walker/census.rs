//! `ObjectCensus`: how many places of the keyspace hold each string object, in builds whose
//! collections keep their elements as objects (Redis 2.8 to 3.2).
//!
//! There a hash field's value, a set member, a zset element and a linked list's element
//! are each a `robj` of its own, and no hash covers the pointer to it: a damaged pointer
//! that lands on another key's object (a top-level value, another hash's value, a field of
//! the same hash) reads as a perfectly valid element, and the key would be written with a
//! foreign value. Redis counts the holders of every object in its `refcount`, so the walk
//! first counts the references it can see (the keyspace's values and the objects of every
//! dict-encoded collection and linked list), then refuses an object held in more places
//! than its `refcount` allows. Both holders are then refused: which of the two pointers
//! was damaged cannot be told, and a key is recovered exactly or listed lost.

use super::seen::SeenEntries;

/// Counts of references per object address, up to [`ObjectCensus::SATURATES_AT`].
///
/// Three bitmaps of the shape [`SeenEntries`] keeps (1/64 of the heap span visited
/// each): memory grows with the heap, not with the number of objects.
#[derive(Default)]
pub struct ObjectCensus {
    /// `counts[i]` holds the addresses referenced more than `i` times.
    counts: [SeenEntries; 3],
}

impl ObjectCensus {
    /// Counts stop growing here: the check only needs to tell 1, 2 and more apart
    /// (a zset's element is held twice, by its dict and its skiplist node).
    pub const SATURATES_AT: u8 = 3;

    /// Counts one more reference to the object at `addr`.
    pub fn note(&mut self, addr: u64) {
        for level in &mut self.counts {
            if level.first_visit(addr) {
                return;
            }
        }
    }

    /// The references to `addr` counted, at most [`Self::SATURATES_AT`].
    pub fn references(&self, addr: u64) -> u8 {
        let n = self.counts.iter().take_while(|l| l.contains(addr)).count();
        u8::try_from(n).unwrap_or(Self::SATURATES_AT)
    }

    /// Whether `references` more than `refcount` allows: the object is held by a damaged
    /// pointer too. A saturated count is compared as a lower bound.
    pub fn over(references: u8, refcount: i64) -> bool {
        references > 1 && i64::from(references) > refcount
    }
}

#[cfg(test)]
mod tests {
    use super::ObjectCensus;

    #[test]
    fn counts_saturate_and_compare_with_the_refcount() {
        let mut c = ObjectCensus::default();
        assert_eq!(c.references(0x1000), 0);
        c.note(0x1000);
        assert_eq!(c.references(0x1000), 1);
        c.note(0x1000);
        c.note(0x2000);
        assert_eq!(c.references(0x1000), 2);
        for _ in 0..5 {
            c.note(0x1000);
        }
        assert_eq!(c.references(0x1000), ObjectCensus::SATURATES_AT);
        assert_eq!(c.references(0x2000), 1);
        // Held once: never over, whatever the refcount says (a damaged refcount alone
        // changes nothing that is written).
        assert!(!ObjectCensus::over(1, 0));
        assert!(ObjectCensus::over(2, 1));
        assert!(!ObjectCensus::over(2, 2));
        assert!(ObjectCensus::over(3, 2));
        assert!(!ObjectCensus::over(3, 10_000));
        assert!(ObjectCensus::over(2, -1));
    }

    #[test]
    fn counts_hold_past_the_small_stage() {
        // SeenEntries switches to bitmaps past 4096 addresses: counts must survive it.
        let mut c = ObjectCensus::default();
        for i in 0..10_000u64 {
            c.note(0x10_0000 + 16 * i);
        }
        for i in (0..10_000u64).step_by(3) {
            c.note(0x10_0000 + 16 * i);
        }
        assert_eq!(c.references(0x10_0000), 2);
        assert_eq!(c.references(0x10_0000 + 16), 1);
        assert_eq!(c.references(0x10_0000 + 16 * 9_999), 2);
        assert_eq!(c.references(0x10_0000 + 16 * 10_000), 0);
    }
}
