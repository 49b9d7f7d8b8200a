//! `SeenEntries`: the entries a table walk has already handed out, by address.
//!
//! In a healthy dict or hashtable every entry sits in exactly one bucket chain. A damaged
//! `next` pointer can lead one chain into another chain (or into itself), and then the
//! same entry would be emitted twice: Redis's loader stops on a duplicate key (7.0 panics
//! on one) and silently keeps a corrupt set or hash with a duplicate member or field. So
//! every walk remembers the addresses it handed out and never hands one out again.

use std::collections::{HashMap, HashSet};
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

/// Bytes of address space one bitmap page covers.
const PAGE_SPAN: u64 = 1 << 20;
/// Allocations are 8-byte aligned: one bit per 8 bytes.
const GRANULE_SHIFT: u32 = 3;
/// Words of one page: 16 KiB of bits for 1 MiB of addresses.
const PAGE_WORDS: usize = (PAGE_SPAN >> GRANULE_SHIFT) as usize / 64;
/// Addresses kept in a plain set before switching to the bitmap: small walks (one set or
/// hash value, one chain) stay cheap, the keyspace's walk stops growing per entry.
const SMALL: usize = 4096;

/// Addresses of the entries handed out so far.
///
/// Up to [`SMALL`] addresses are kept in a set, exactly. Past that, 8-byte aligned
/// addresses go to a bitmap of one bit per 8 bytes, in 16 KiB pages made for each MiB of
/// address space touched: memory grows with the span of the heap the walk visits (1/64 of
/// it), not with the number of entries. Unaligned addresses (a tagged link: a bare key
/// stored in a bucket, `010` or odd, in 7.2+ and Redis 8's dicts; or a damaged pointer) go
/// to a second bitmap of the same shape, by their 8-byte granule: two unaligned links into
/// one granule count as one (in a healthy heap a granule starts one allocation, so only
/// damage can offer two, and the second is then refused as a revisit, not written).
#[derive(Default)]
pub struct SeenEntries {
    set: HashSet<u64, BuildHasherDefault<AddressHasher>>,
    pages: Pages,
    /// Granules of the unaligned addresses past the small stage.
    tagged: Pages,
    /// Past the small stage: addresses go to the bitmaps.
    spilled: bool,
    /// Distinct bits set in `pages` and `tagged`.
    in_pages: usize,
}

/// Sets the bit of `key` (an 8-aligned address) in `pages`: `Some(true)` when it was clear.
fn mark(pages: &mut Pages, key: u64) -> Option<bool> {
    let (page, word, mask) = bit_of(key);
    let w = pages.get_or_make(page).get_mut(word)?;
    let was_clear = *w & mask == 0;
    *w |= mask;
    Some(was_clear)
}

/// Widest span of pages indexed directly (256 GiB of addresses, a 2 MiB index); pages
/// beyond it (a heap spread wider than that) go to a map.
const MAX_DIRECT_PAGES: u64 = 1 << 18;

/// The bitmap pages, by page address: an index over the span of pages touched (a heap is
/// mostly one or a few nearby regions), so finding a page costs a subtraction, not a hash.
#[derive(Default)]
struct Pages {
    /// Words of one page (0: [`PAGE_WORDS`], one bit per granule).
    words: usize,
    /// Page number of `direct[0]`.
    base: u64,
    direct: Vec<Option<Box<[u64]>>>,
    far: HashMap<u64, Box<[u64]>, BuildHasherDefault<AddressHasher>>,
    made: usize,
}

impl Pages {
    /// Index of page `page` (a page address) in `direct`, when it is covered.
    fn slot(&self, page: u64) -> Option<usize> {
        let n = (page / PAGE_SPAN).checked_sub(self.base)?;
        usize::try_from(n).ok().filter(|i| *i < self.direct.len())
    }

    fn get(&self, page: u64) -> Option<&[u64]> {
        match self.slot(page) {
            Some(i) => self.direct.get(i)?.as_deref(),
            None => self.far.get(&page).map(|b| &**b),
        }
    }

    fn get_mut(&mut self, page: u64) -> Option<&mut [u64]> {
        match self.slot(page) {
            Some(i) => self.direct.get_mut(i)?.as_deref_mut(),
            None => self.far.get_mut(&page).map(|b| &mut **b),
        }
    }

    /// The page, made (zeroed) when missing; the index widens to cover it while the span
    /// stays within [`MAX_DIRECT_PAGES`].
    fn get_or_make(&mut self, page: u64) -> &mut [u64] {
        let words = if self.words == 0 {
            PAGE_WORDS
        } else {
            self.words
        };
        let n = page / PAGE_SPAN;
        if self.direct.is_empty() {
            self.base = n;
        }
        let lo = self.base.min(n);
        let hi = (self.base + self.direct.len() as u64).max(n + 1);
        if hi - lo <= MAX_DIRECT_PAGES {
            if lo < self.base {
                let grow = (self.base - lo) as usize;
                self.direct
                    .splice(0..0, std::iter::repeat_with(|| None).take(grow));
                self.base = lo;
            }
            let need = (hi - self.base) as usize;
            if self.direct.len() < need {
                self.direct.resize_with(need, || None);
            }
            if let Some(slot) = self.direct.get_mut((n - self.base) as usize) {
                if slot.is_none() {
                    self.made += 1;
                }
                return slot.get_or_insert_with(|| vec![0u64; words].into_boxed_slice());
            }
        }
        let made = &mut self.made;
        self.far.entry(page).or_insert_with(|| {
            *made += 1;
            vec![0u64; words].into_boxed_slice()
        })
    }
}

/// Four bits per 8-byte granule of the address space, in pages made for each MiB touched
/// (64 KiB each: 1/16 of the span visited). Unaligned addresses share their granule's.
pub struct NibbleMap {
    pages: Pages,
}

impl Default for NibbleMap {
    fn default() -> Self {
        NibbleMap {
            pages: Pages {
                words: PAGE_WORDS * 4,
                ..Pages::default()
            },
        }
    }
}

/// Granules per word of a [`NibbleMap`] page.
const NIBBLES_PER_WORD: u64 = 16;

impl NibbleMap {
    /// (page key, word index, shift) of `addr`'s nibble.
    fn at(addr: u64) -> (u64, usize, u32) {
        let page = addr & !(PAGE_SPAN - 1);
        let granule = (addr & (PAGE_SPAN - 1)) >> GRANULE_SHIFT;
        let word = (granule / NIBBLES_PER_WORD) as usize;
        (page, word, ((granule % NIBBLES_PER_WORD) * 4) as u32)
    }

    /// The nibble of `addr` (0 where nothing was set).
    pub fn get(&self, addr: u64) -> u8 {
        let (page, word, shift) = Self::at(addr);
        self.pages
            .get(page)
            .and_then(|p| p.get(word))
            .map_or(0, |w| ((w >> shift) & 0xf) as u8)
    }

    /// Hints the CPU to load the word holding `addr`'s nibble (nothing when its page does
    /// not exist).
    pub fn prefetch(&self, addr: u64) {
        let (page, word, _) = Self::at(addr);
        if let Some(w) = self.pages.get(page).and_then(|p| p.get(word..)) {
            crate::core::address_space::prefetch_line(w);
        }
    }

    /// Sets the nibble of `addr` to `f` of its value; returns the old value.
    pub fn update(&mut self, addr: u64, f: impl FnOnce(u8) -> u8) -> u8 {
        let (page, word, shift) = Self::at(addr);
        let Some(w) = self.pages.get_or_make(page).get_mut(word) else {
            return 0;
        };
        let old = ((*w >> shift) & 0xf) as u8;
        let new = u64::from(f(old) & 0xf);
        *w = (*w & !(0xf << shift)) | (new << shift);
        old
    }
}

/// (page key, word index, bit mask) of an aligned address.
fn bit_of(addr: u64) -> (u64, usize, u64) {
    let page = addr & !(PAGE_SPAN - 1);
    let bit = (addr & (PAGE_SPAN - 1)) >> GRANULE_SHIFT;
    (page, (bit / 64) as usize, 1u64 << (bit % 64))
}

impl SeenEntries {
    /// The set of one table's walk of `used` entries: room for all of them, unless the
    /// walk proves its entries by their buckets (`proven`), and so marks few or none.
    pub fn for_walk(proven: bool, used: u64) -> Self {
        if proven {
            SeenEntries::default()
        } else {
            SeenEntries::with_capacity(used)
        }
    }

    /// An empty set for a walk of about `n` entries (the hint comes from the core: it only
    /// sizes the first, small stage).
    pub fn with_capacity(n: u64) -> Self {
        let mut set = HashSet::default();
        set.reserve(n.min(SMALL as u64) as usize);
        SeenEntries {
            set,
            ..SeenEntries::default()
        }
    }

    /// The bitmap an address goes to past the small stage, and its bit's address.
    fn bitmap(&self, addr: u64) -> (&Pages, u64) {
        if addr.is_multiple_of(8) {
            (&self.pages, addr)
        } else {
            (&self.tagged, addr & !7)
        }
    }

    fn bitmap_mut(&mut self, addr: u64) -> (&mut Pages, u64) {
        if addr.is_multiple_of(8) {
            (&mut self.pages, addr)
        } else {
            (&mut self.tagged, addr & !7)
        }
    }

    /// True the first time `addr` is offered, false ever after.
    pub fn first_visit(&mut self, addr: u64) -> bool {
        if !self.spilled {
            if self.set.len() < SMALL {
                return self.set.insert(addr);
            }
            // From here on every address is in the bitmaps.
            self.spill();
        }
        let (pages, key) = self.bitmap_mut(addr);
        match mark(pages, key) {
            Some(true) => {
                self.in_pages += 1;
                true
            }
            Some(false) => false,
            None => self.set.insert(addr),
        }
    }

    /// Starts loading the bitmap word of `addr` into the cache, for a walk that will offer
    /// it soon: the bitmap is read at random, one miss per entry otherwise.
    #[inline]
    pub fn prefetch(&self, addr: u64) {
        if !self.spilled {
            return;
        }
        let (pages, key) = self.bitmap(addr);
        let (page, word, _) = bit_of(key);
        if let Some(w) = pages.get(page).and_then(|bits| bits.get(word..)) {
            crate::core::address_space::prefetch_line(w);
        }
    }

    /// Moves the addresses of the set into the bitmaps.
    fn spill(&mut self) {
        self.spilled = true;
        let all: Vec<u64> = self.set.drain().collect();
        for addr in all {
            let (pages, key) = self.bitmap_mut(addr);
            match mark(pages, key) {
                Some(true) => self.in_pages += 1,
                Some(false) => {}
                None => {
                    self.set.insert(addr);
                }
            }
        }
    }

    /// Whether `addr` was handed out.
    pub fn contains(&self, addr: u64) -> bool {
        if self.set.contains(&addr) {
            return true;
        }
        if !self.spilled {
            return false;
        }
        let (pages, key) = self.bitmap(addr);
        let (page, word, mask) = bit_of(key);
        pages
            .get(page)
            .and_then(|bits| bits.get(word))
            .is_some_and(|w| w & mask != 0)
    }

    /// Forget `addr`: it was reached through a damaged link, and its own chain may still
    /// hand it out.
    pub fn forget(&mut self, addr: u64) {
        if self.set.remove(&addr) || !self.spilled {
            return;
        }
        let (pages, key) = self.bitmap_mut(addr);
        let (page, word, mask) = bit_of(key);
        let cleared = pages
            .get_mut(page)
            .and_then(|b| b.get_mut(word))
            .is_some_and(|w| {
                let was_set = *w & mask != 0;
                *w &= !mask;
                was_set
            });
        if cleared {
            self.in_pages -= 1;
        }
    }

    /// Number of distinct entries seen.
    pub fn len(&self) -> usize {
        self.set.len() + self.in_pages
    }

    /// True when nothing was seen yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held (the set's slots and the bitmap pages).
    #[cfg(test)]
    fn footprint(&self) -> usize {
        self.set.capacity() * 9
            + (self.pages.made + self.tagged.made) * (PAGE_WORDS * 8 + 32)
            + (self.pages.direct.capacity() + self.tagged.direct.capacity()) * 8
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

    /// Past the small stage the bitmap answers exactly as the set did: every aligned and
    /// unaligned address new once, forgotten ones new again, and memory by span, not count.
    #[test]
    fn the_bitmap_stage_agrees_with_a_set() {
        let mut s = SeenEntries::with_capacity(0);
        let mut reference = std::collections::HashSet::new();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for i in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Mostly aligned heap addresses over 64 MiB, some unaligned, some repeats.
            let addr = match i % 10 {
                // One unaligned form per granule (a bare key's tag): see the next test.
                0 => ((0x5555_0000_0000 + (x % (64 << 20))) & !7) | 3,
                1 => 0x5555_0000_0000 + (i / 2) * 24,
                // Far from the heap (past the direct index's span), and below it.
                2 if i % 20 == 2 => 0x7fff_0000_0000 + (x % (4 << 20)) / 8 * 8,
                2 => 0x5554_ff00_0000 + (x % (4 << 20)) / 8 * 8,
                _ => 0x5555_0000_0000 + (x % (64 << 20)) / 8 * 8,
            };
            assert_eq!(
                s.first_visit(addr),
                reference.insert(addr),
                "addr {addr:#x}"
            );
            if i % 97 == 0 {
                s.forget(addr);
                reference.remove(&addr);
            }
            assert_eq!(s.contains(addr), reference.contains(&addr));
        }
        assert_eq!(s.len(), reference.len());
        assert!(!s.is_empty());
        // About 72 MiB of span for the aligned and 64 MiB for the unaligned ones: 136
        // pages of 16 KiB, whatever the number of addresses.
        assert!(s.footprint() < 3 << 20, "{}", s.footprint());
        assert!(!s.pages.far.is_empty() && s.pages.direct.len() > 64);
    }

    /// Past the small stage, unaligned links (bare keys tagged in their bucket) are kept
    /// by granule in their own bitmap: flat in memory, apart from aligned entries, and two
    /// forms of one granule count once.
    #[test]
    fn tagged_links_are_kept_by_granule() {
        let mut s = SeenEntries::with_capacity(0);
        let base = 0x7f00_0000_0000u64;
        for i in 0..SMALL as u64 {
            assert!(s.first_visit(base + 0x100_0000 + i * 8));
        }
        let before = s.footprint();
        // 100,000 bare keys tagged 010, as Redis 8.2's keyspace dicts store them.
        for i in 0..100_000u64 {
            assert!(s.first_visit((base + i * 32) | 2));
        }
        assert!(s.set.len() <= SMALL, "the set did not grow per key");
        assert!(s.footprint() - before < 2 << 20, "{} bytes", s.footprint());
        assert!(!s.first_visit((base + 64) | 2), "a revisit");
        assert!(
            !s.first_visit((base + 64) | 1),
            "another form of the same granule"
        );
        assert!(s.first_visit(base + 64), "the aligned address is apart");
        assert!(s.contains((base + 96) | 2));
        s.forget((base + 96) | 2);
        assert!(!s.contains((base + 96) | 2));
        assert!(s.first_visit((base + 96) | 2));
        assert_eq!(s.len(), SMALL + 100_000 + 1);
    }

    #[test]
    fn nibbles_are_kept_per_granule_and_page() {
        let mut m = NibbleMap::default();
        assert_eq!(m.get(0x5555_0000_1000), 0);
        assert_eq!(m.update(0x5555_0000_1000, |n| n + 3), 0);
        // An unaligned address shares its granule's nibble; the next granule has its own.
        assert_eq!(m.get(0x5555_0000_1003), 3);
        assert_eq!(m.get(0x5555_0000_1008), 0);
        m.update(0x5555_0000_1008, |_| 0xf);
        assert_eq!(m.get(0x5555_0000_1000), 3);
        assert_eq!(m.get(0x5555_0000_1008), 0xf);
        // Pages far apart (a heap and a mapping 100 GiB above it).
        m.update(0x5555_0000_1000 + (100 << 30), |_| 5);
        assert_eq!(m.get(0x5555_0000_1000 + (100 << 30)), 5);
        assert_eq!(m.get(0x5555_0000_1000), 3);
    }
}
