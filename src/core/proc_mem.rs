//! The memory of a live process, read with `pread` on `/proc/PID/mem`: the backend of
//! [`AddressSpace`](super::AddressSpace) for `--pid`.
//!
//! The walker makes many small reads (pointers, headers, short strings), and several fall
//! in the same page (the bytes of an entry, a bucket array read pointer by pointer). One
//! system call each would cost more than the walk itself, so reads go through a cache of
//! page-sized blocks, [`CACHE_BLOCKS`] of them (8 MiB): the tool's memory does not grow with
//! the target's. It is set-associative ([`WAYS`] blocks per set, the least recently used
//! replaced), so a lookup costs a few comparisons and no hashing. A read larger than a
//! block goes straight to the file. The file is opened read-only: nothing is ever written
//! to the target.
//!
//! Measured on a 1,000,000-key 7.0.15 server (an 85 MB heap, walked in hash order, that is
//! at random): page-sized blocks beat 16 and 64 KiB ones, whose misses copy bytes nobody
//! reads; beyond a few MiB the hit rate only grows in proportion to the heap covered.

use std::cell::RefCell;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::address_space::MemError;

/// Bytes per cached block (a power of two: blocks start at multiples of it, clamped to the
/// mapping that holds them).
pub const BLOCK: u64 = 4096;
/// Blocks kept at most: 8 MiB.
pub const CACHE_BLOCKS: usize = 2048;
/// Blocks per set.
pub const WAYS: usize = 4;
const SETS: usize = CACHE_BLOCKS / WAYS;
/// `pread` calls interrupted by a signal that are retried before giving up on a read.
const MAX_EINTR_RETRIES: u32 = 100;
/// The errno reported when `/proc/PID/mem` returns end-of-file inside a readable mapping
/// (EIO, as the kernel gives for a page it cannot read).
const EIO: i32 = 5;

/// What a cache slot holds: the bytes of `start..start + len`, `len == 0` when empty.
#[derive(Debug, Clone, Copy, Default)]
struct Tag {
    start: u64,
    len: usize,
    /// The cache clock when it was last used.
    used: u64,
}

/// The cached blocks: slot `i` holds its bytes at `data[i * BLOCK..]`.
#[derive(Default)]
struct BlockCache {
    /// Allocated on the first miss (a process never read costs nothing).
    data: Vec<u8>,
    tags: Vec<Tag>,
    clock: u64,
    hits: u64,
    misses: u64,
}

impl BlockCache {
    /// The slots of the set that block `start` maps to.
    fn set(start: u64) -> std::ops::Range<usize> {
        let set = ((start / BLOCK) % SETS as u64) as usize;
        set * WAYS..(set + 1) * WAYS
    }

    fn find(&mut self, start: u64) -> Option<usize> {
        let slots = Self::set(start);
        let base = slots.start;
        let way = self
            .tags
            .get(slots)?
            .iter()
            .position(|t| t.len > 0 && t.start == start)?;
        self.clock += 1;
        self.hits += 1;
        let slot = base + way;
        if let Some(t) = self.tags.get_mut(slot) {
            t.used = self.clock;
        }
        Some(slot)
    }

    /// The slot to load block `start` into: an empty one of its set, else the least
    /// recently used.
    fn victim(&mut self, start: u64) -> Option<usize> {
        if self.tags.is_empty() {
            self.tags = vec![Tag::default(); CACHE_BLOCKS];
            self.data = vec![0; CACHE_BLOCKS * BLOCK as usize];
        }
        let slots = Self::set(start);
        let base = slots.start;
        let way = self
            .tags
            .get(slots)?
            .iter()
            .enumerate()
            .min_by_key(|(_, t)| (t.len > 0, t.used))
            .map(|(w, _)| w)?;
        self.clock += 1;
        self.misses += 1;
        Some(base + way)
    }

    fn bytes(&self, slot: usize, len: usize) -> Option<&[u8]> {
        let at = slot.checked_mul(BLOCK as usize)?;
        self.data.get(at..at.checked_add(len)?)
    }
}

/// Read access to a live process's memory through `/proc/PID/mem`, with a bounded block
/// cache.
pub struct ProcessMemory {
    file: File,
    cache: RefCell<BlockCache>,
}

/// How the block cache fared (for tests and diagnostics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// Reads served from a cached block.
    pub hits: u64,
    /// Blocks read from the process.
    pub misses: u64,
    /// Bytes the cache holds now.
    pub cached_bytes: u64,
}

impl ProcessMemory {
    /// Open `path` (`/proc/PID/mem`) read-only.
    pub fn open(path: &Path) -> io::Result<Self> {
        Ok(Self::from_file(File::open(path)?))
    }

    /// Read through an already opened `/proc/PID/mem`.
    pub fn from_file(file: File) -> Self {
        ProcessMemory {
            file,
            cache: RefCell::new(BlockCache::default()),
        }
    }

    /// Fill `out` with the bytes at `addr`, straight from the process (no cache). A short
    /// read or an error names the first address that could not be read.
    pub fn read_exact(&self, addr: u64, out: &mut [u8]) -> Result<(), MemError> {
        let mut done = 0usize;
        let mut retries = 0;
        while let Some(rest) = out.get_mut(done..).filter(|r| !r.is_empty()) {
            let at = addr.saturating_add(done as u64);
            match self.file.read_at(rest, at) {
                Ok(0) => {
                    return Err(MemError::ReadFailed {
                        addr: at,
                        errno: EIO,
                    })
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted && retries < MAX_EINTR_RETRIES => {
                    retries += 1
                }
                Err(e) => {
                    return Err(MemError::ReadFailed {
                        addr: at,
                        errno: e.raw_os_error().unwrap_or(EIO),
                    })
                }
            }
        }
        Ok(())
    }

    /// Copy the bytes at `addr` into `out` from the cached block `start..end` (read whole on
    /// a miss), which must hold all of `addr..addr + out.len()` and lie in one aligned
    /// [`BLOCK`]. When the block cannot be read whole (a page of it is refused), only the
    /// bytes asked for are read.
    pub(crate) fn copy_cached(
        &self,
        start: u64,
        end: u64,
        addr: u64,
        out: &mut [u8],
    ) -> Result<(), MemError> {
        let (Ok(from), Ok(len)) = (
            usize::try_from(addr.saturating_sub(start)),
            usize::try_from(end.saturating_sub(start)),
        ) else {
            return self.read_exact(addr, out);
        };
        // Only this method borrows the cache mutably, and it does not re-enter; should the
        // borrow fail all the same, the read goes to the process directly.
        let Ok(mut cache) = self.cache.try_borrow_mut() else {
            return self.read_exact(addr, out);
        };
        let slot = match cache.find(start) {
            Some(slot) => slot,
            None => {
                let Some(slot) = cache.victim(start) else {
                    drop(cache);
                    return self.read_exact(addr, out);
                };
                let loaded = slot
                    .checked_mul(BLOCK as usize)
                    .and_then(|at| cache.data.get_mut(at..at.checked_add(len)?))
                    .is_some_and(|buf| self.read_exact(start, buf).is_ok());
                let used = cache.clock;
                if let Some(t) = cache.tags.get_mut(slot) {
                    // A failed read may have overwritten part of the slot: empty it.
                    *t = if loaded {
                        Tag { start, len, used }
                    } else {
                        Tag::default()
                    };
                }
                if !loaded {
                    // Read just what was asked (the block may hold a page the kernel refuses).
                    drop(cache);
                    return self.read_exact(addr, out);
                }
                slot
            }
        };
        match cache
            .bytes(slot, len)
            .and_then(|b| b.get(from..from.checked_add(out.len())?))
        {
            Some(src) => {
                out.copy_from_slice(src);
                Ok(())
            }
            None => {
                drop(cache);
                self.read_exact(addr, out)
            }
        }
    }

    /// How the cache fared so far.
    pub fn cache_stats(&self) -> CacheStats {
        match self.cache.try_borrow() {
            Ok(c) => CacheStats {
                hits: c.hits,
                misses: c.misses,
                cached_bytes: c.tags.iter().map(|t| t.len as u64).sum(),
            },
            Err(_) => CacheStats {
                hits: 0,
                misses: 0,
                cached_bytes: 0,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::address_space::{AddressSpace, Segment};

    /// The test process's own readable mappings, as [`AddressSpace::process`] takes them.
    fn own_space() -> AddressSpace<'static> {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let segments = maps
            .lines()
            .filter_map(|l| {
                let (range, rest) = l.split_once(' ')?;
                let (a, b) = range.split_once('-')?;
                let (a, b) = (
                    u64::from_str_radix(a, 16).ok()?,
                    u64::from_str_radix(b, 16).ok()?,
                );
                let readable = rest.starts_with('r');
                Some(Segment {
                    vaddr: a,
                    memsz: b - a,
                    filesz: if readable { b - a } else { 0 },
                    file_offset: 0,
                    present: if readable { b - a } else { 0 },
                    flags: if readable { 4 } else { 0 },
                })
            })
            .collect();
        AddressSpace::process(
            ProcessMemory::open(Path::new("/proc/self/mem")).unwrap(),
            segments,
        )
    }

    #[test]
    fn reads_own_memory_small_and_large() {
        // 3 MiB of known bytes on the heap (allocated before the mappings are listed): small
        // reads through the cache, a large one direct.
        let data: Vec<u8> = (0..3u32 << 20).map(|i| (i * 7 + i / 251) as u8).collect();
        let space = own_space();
        let base = data.as_ptr() as u64;
        assert_eq!(&*space.read(base, 4096).unwrap(), &data[..4096]);
        for off in [0usize, 1, 65_535, 65_530, 1 << 20, (3 << 20) - 8] {
            let want = u64::from_le_bytes(data[off..off + 8].try_into().unwrap());
            assert_eq!(space.u64(base + off as u64).unwrap(), want, "offset {off}");
        }
        let big = space.read(base + 100, 2 << 20).unwrap();
        assert_eq!(&*big, &data[100..100 + (2 << 20)]);
        assert!(space.readable_len(base) >= data.len() as u64);
    }

    #[test]
    fn the_cache_stays_bounded() {
        let data = vec![0xa5u8; 32 << 20];
        let space = own_space();
        let base = data.as_ptr() as u64;
        // One small read per block over 32 MiB: 8192 blocks through a 2048-block cache.
        for off in (0..data.len() as u64).step_by(BLOCK as usize) {
            assert_eq!(space.u32(base + off).unwrap(), 0xa5a5_a5a5);
        }
        let stats = space.process_memory().unwrap().cache_stats();
        assert!(
            stats.cached_bytes <= CACHE_BLOCKS as u64 * BLOCK,
            "cache holds {} bytes",
            stats.cached_bytes
        );
        assert!(stats.misses >= 8192, "{stats:?}");
        // Reads within one block after the first are hits.
        let before = space.process_memory().unwrap().cache_stats().hits;
        for i in 0..100 {
            space.u64(base + 8 * i).unwrap();
        }
        assert!(space.process_memory().unwrap().cache_stats().hits >= before + 99);
    }

    #[test]
    fn unmapped_and_unreadable_addresses_are_errors() {
        let space = own_space();
        // Page 0 is never mapped.
        assert_eq!(space.u64(0x10), Err(MemError::Unmapped(0x10)));
        // A mapping without read permission (a guard page or reserved gap), when the process
        // has one, is refused without reading it.
        if let Some(s) = space.segments().iter().find(|s| s.present == 0) {
            assert_eq!(space.u8(s.vaddr), Err(MemError::Unreadable(s.vaddr)));
            assert_eq!(space.readable_len(s.vaddr), 0);
        }
        // A read running off the end of a mapping into a gap names the first missing byte.
        let segs = space.segments();
        if let Some(s) = segs
            .iter()
            .find(|s| s.present == s.memsz && !segs.iter().any(|t| t.vaddr == s.vaddr + s.memsz))
        {
            let end = s.vaddr + s.memsz;
            assert_eq!(space.read(end - 4, 8), Err(MemError::Unmapped(end)));
        }
    }
}
