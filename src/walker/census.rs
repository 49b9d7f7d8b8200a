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
//!
//! The shared integer objects (`shared.integers`, 0 to 9999) are held by every key and
//! element holding that number, and their `refcount` counts each holder plus the array's
//! own reference. So counts above two are kept exactly (for a bounded number of objects),
//! and [`SharedIntegers`], found in the executable's data, tells a shared integer apart: it
//! may have one holder fewer than its `refcount`.
//!
//! A raw string object's `ptr` is covered by no hash either: the strings of raw string
//! objects and the keyspace's key names are counted too, and each must have one holder.

use std::collections::HashMap;

use super::object::ObjectDecoder;
use super::seen::NibbleMap;
use super::WalkContext;
use crate::value::{ObjEncoding, ObjType};

/// Counts of references per object address, and of holders per string.
///
/// One [`NibbleMap`] (four bits per 8-byte granule, in pages made for each MiB touched:
/// 1/16 of the heap span visited), so that one look answers both counts: memory grows
/// with the heap, not with the number of objects. Bits 0-1 count an object's references
/// (3: three or more, exact in `exact` for up to [`MAX_EXACT`] objects: the shared
/// integers, and the few objects commands such as SUNIONSTORE share; beyond that a count
/// reads as a lower bound); bits 2-3 count a string's holders (2: two or more).
#[derive(Default)]
pub struct ObjectCensus {
    counts: NibbleMap,
    /// Exact counts of the addresses referenced three times or more.
    exact: HashMap<u64, u32>,
}

/// Objects whose counts above two are kept exactly.
const MAX_EXACT: usize = 1 << 16;

/// References to one object as the census counted them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// How many (a lower bound when `at_least`).
    pub count: u32,
    /// The count stopped growing: there may be more.
    pub at_least: bool,
}

impl std::fmt::Display for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.at_least {
            write!(f, "at least {}", self.count)
        } else {
            write!(f, "{}", self.count)
        }
    }
}

impl ObjectCensus {
    /// Counts one more reference to the object at `addr`: true when it is the first.
    pub fn note(&mut self, addr: u64) -> bool {
        let old = self.counts.update(addr, |n| {
            let c = n & 3;
            (n & !3) | (c + u8::from(c < 3))
        });
        match old & 3 {
            0 => return true,
            2 => self.exact_add(addr, 3),
            3 => self.exact_add(addr, 4),
            _ => {}
        }
        false
    }

    /// Counts one more holder of the string at `sds`: a raw string object's `ptr`, or a
    /// key's name in the keyspace.
    pub fn note_string(&mut self, sds: u64) {
        self.counts.update(sds, |n| {
            let s = (n >> 2) & 3;
            (n & 3) | ((s + u8::from(s < 2)) << 2)
        });
    }

    /// Whether the string at `sds` has more than one holder: a raw string object's
    /// pointer damaged onto another object's string or a key's name.
    pub fn string_shared(&self, sds: u64) -> bool {
        (self.counts.get(sds) >> 2) & 3 >= 2
    }

    /// Sets the exact count of `addr` to `first` when it is new, else adds one.
    fn exact_add(&mut self, addr: u64, first: u32) {
        if let Some(n) = self.exact.get_mut(&addr) {
            *n = n.saturating_add(1);
        } else if self.exact.len() < MAX_EXACT {
            self.exact.insert(addr, first);
        }
    }

    /// Hints the CPU to load `addr`'s counts, ahead of [`Self::references`].
    pub fn prefetch(&self, addr: u64) {
        self.counts.prefetch(addr);
    }

    /// The references to `addr` counted.
    pub fn references(&self, addr: u64) -> Held {
        match (self.counts.get(addr) & 3, self.exact.get(&addr)) {
            (3, Some(&n)) => Held {
                count: n,
                at_least: false,
            },
            (3, None) => Held {
                count: 3,
                at_least: true,
            },
            (n, _) => Held {
                count: u32::from(n),
                at_least: false,
            },
        }
    }

    /// Whether `held` is more than `allowed` holders: the object is held by a damaged
    /// pointer too. A lower bound is compared as it stands.
    pub fn over(held: Held, allowed: i64) -> bool {
        i64::from(held.count) > allowed
    }
}

/// `shared.integers`: the array of the shared integer objects, `integers[i]` holding `i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedIntegers {
    /// Where the array is.
    pub array: u64,
    /// Its length (`OBJ_SHARED_INTEGERS`, 10000 in every release).
    pub len: u64,
}

/// Fewest entries a run of pointers needs to be taken for `shared.integers`.
const MIN_SHARED: u64 = 1000;
/// Most entries read while following one candidate run.
const MAX_SHARED: u64 = 1 << 20;
/// Slots in a row that may fail to match before the array is taken to end.
const MAX_GAP: u64 = 64;

impl SharedIntegers {
    /// Finds the array in the executable's writable `images` (start address, bytes): the
    /// one run of pointers where the `i`-th leads to an INT-encoded string object holding
    /// `i`, with at least [`MIN_SHARED`] slots matching. `None` when no run, or more than
    /// one, qualifies.
    pub fn find(ctx: &WalkContext<'_, '_>, images: &[(u64, &[u8])]) -> Option<SharedIntegers> {
        let objects = ObjectDecoder::new(ctx);
        let holds = |ptr: u64, value: u64| {
            objects.header(ptr).is_ok_and(|h| {
                h.ty == Some(ObjType::String) && h.enc == Some(ObjEncoding::Int) && h.ptr == value
            })
        };
        let mut found = None;
        for (start, image) in images {
            for (i, word) in image.chunks_exact(8).enumerate() {
                let Ok(word) = <[u8; 8]>::try_from(word) else {
                    continue;
                };
                let ptr = u64::from_le_bytes(word);
                if ptr == 0 || !holds(ptr, 0) {
                    continue;
                }
                let array = start.wrapping_add(8 * i as u64);
                // A damaged slot does not end the array: it ends where no slot of the
                // next [`MAX_GAP`] matches. A damaged slot's value is then only not told
                // apart as shared (its holders are checked as a private object's).
                let (mut matched, mut last) = (1u64, 0u64);
                for v in 1..MAX_SHARED {
                    if v - last > MAX_GAP {
                        break;
                    }
                    let slot = ctx.space.u64(array.wrapping_add(8 * v));
                    if slot.is_ok_and(|p| p != 0 && holds(p, v)) {
                        matched += 1;
                        last = v;
                    }
                }
                if matched < MIN_SHARED {
                    continue;
                }
                let len = last + 1;
                if found.is_some() {
                    return None;
                }
                found = Some(SharedIntegers { array, len });
            }
        }
        found
    }

    /// Whether the INT-encoded object at `obj`, holding `value`, is the shared one.
    pub fn holds(&self, ctx: &WalkContext<'_, '_>, obj: u64, value: u64) -> bool {
        value < self.len
            && ctx
                .space
                .u64(self.array.wrapping_add(8 * value))
                .is_ok_and(|p| p == obj)
    }
}

#[cfg(test)]
mod tests {
    use super::{Held, ObjectCensus, MAX_EXACT};

    fn held(count: u32) -> Held {
        Held {
            count,
            at_least: false,
        }
    }

    #[test]
    fn counts_are_exact_past_two_and_compare_with_the_refcount() {
        let mut c = ObjectCensus::default();
        assert_eq!(c.references(0x1000), held(0));
        c.note(0x1000);
        assert_eq!(c.references(0x1000), held(1));
        c.note(0x1000);
        c.note(0x2000);
        assert_eq!(c.references(0x1000), held(2));
        for _ in 0..5 {
            c.note(0x1000);
        }
        assert_eq!(c.references(0x1000), held(7));
        assert_eq!(c.references(0x2000), held(1));
        assert!(ObjectCensus::over(held(2), 1));
        assert!(!ObjectCensus::over(held(2), 2));
        assert!(ObjectCensus::over(held(7), 6));
        assert!(!ObjectCensus::over(held(7), 10_000));
        assert!(ObjectCensus::over(held(2), -1));
        // A shared integer held once more than its refcount minus the array's reference.
        assert!(ObjectCensus::over(held(1), 0));
    }

    #[test]
    fn exact_counts_are_bounded_and_then_lower_bounds() {
        let mut c = ObjectCensus::default();
        for i in 0..(MAX_EXACT as u64 + 10) {
            for _ in 0..3 {
                c.note(0x100_0000 + 16 * i);
            }
        }
        assert_eq!(c.references(0x100_0000), held(3));
        let past = c.references(0x100_0000 + 16 * (MAX_EXACT as u64 + 5));
        assert_eq!(
            past,
            Held {
                count: 3,
                at_least: true
            }
        );
    }

    #[test]
    fn a_string_with_two_holders_is_shared() {
        let mut c = ObjectCensus::default();
        assert!(c.note(0x1000));
        assert!(!c.note(0x1000));
        c.note_string(0x2000);
        c.note_string(0x3000);
        assert!(!c.string_shared(0x2000));
        c.note_string(0x2000);
        assert!(c.string_shared(0x2000));
        assert!(!c.string_shared(0x3000));
        assert!(!c.string_shared(0x4000));
    }

    #[test]
    fn counts_hold_over_many_objects() {
        // Many objects over several pages of the map: each keeps its own count.
        let mut c = ObjectCensus::default();
        for i in 0..10_000u64 {
            c.note(0x10_0000 + 16 * i);
        }
        for i in (0..10_000u64).step_by(3) {
            c.note(0x10_0000 + 16 * i);
        }
        assert_eq!(c.references(0x10_0000), held(2));
        assert_eq!(c.references(0x10_0000 + 16), held(1));
        assert_eq!(c.references(0x10_0000 + 16 * 9_999), held(2));
        assert_eq!(c.references(0x10_0000 + 16 * 10_000), held(0));
    }
}
