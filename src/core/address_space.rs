//! The virtual address space of a process: served zero-copy from the mapped core file, or
//! read from a live process through `/proc/PID/mem` ([`ProcessMemory`], for `--pid`).

use std::borrow::Cow;

use super::proc_mem::{ProcessMemory, BLOCK};

/// A read that cannot be served from the bytes actually present in the core.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemError {
    /// No PT_LOAD segment (or, in a live process, no mapping) covers the address.
    #[error("address {0:#x} is not mapped in the process")]
    Unmapped(u64),
    /// The segment covers the address but its bytes were not dumped (`p_filesz < p_memsz`).
    #[error("address {0:#x} is mapped but its bytes are not in the core (not dumped)")]
    NotDumped(u64),
    /// The segment's bytes lie past the end of a truncated core file.
    #[error("address {0:#x} lies in the part of the core that is missing (truncated file)")]
    Truncated(u64),
    /// A live process maps the address without read permission (`/proc/PID/maps`).
    #[error("address {0:#x} is in a mapping of the live process without read permission")]
    Unreadable(u64),
    /// Reading a live process's memory failed (the mapping went away while it was read
    /// unfrozen, or the kernel refuses the page, as for a file mapping past its end).
    #[error("reading address {addr:#x} of the live process failed: {}", std::io::Error::from_raw_os_error(*errno))]
    ReadFailed {
        /// The first address that could not be read.
        addr: u64,
        /// The `errno` of the failed `pread`.
        errno: i32,
    },
    /// `addr + len` overflows or the length is absurd for this core.
    #[error("read of {len} bytes at {addr:#x} is out of range")]
    OutOfRange {
        /// Start address of the read.
        addr: u64,
        /// Requested length.
        len: u64,
    },
}

/// One PT_LOAD segment of the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// First virtual address.
    pub vaddr: u64,
    /// Size in the process (`p_memsz`).
    pub memsz: u64,
    /// Bytes the program header claims are in the file (`p_filesz`).
    pub filesz: u64,
    /// Offset of the segment's bytes in the core file.
    pub file_offset: u64,
    /// Bytes really present in the file (less than `filesz` when the core is truncated).
    pub present: u64,
    /// ELF `p_flags` (PF_R/PF_W/PF_X).
    pub flags: u32,
}

impl Segment {
    fn end(&self) -> u64 {
        self.vaddr.saturating_add(self.memsz)
    }
}

/// Segments remembered by the lookup cache of [`AddressSpace`].
const RECENT: usize = 4;

/// log2 of the address granules of the direct-mapped segment cache: 1 MiB.
const GRANULE_SHIFT: u32 = 20;
/// Slots of the direct-mapped segment cache (16 KiB of them): a 1.2 GiB heap spreads over
/// about 1,200 granules.
const GRANULE_SLOTS: usize = 2048;
/// Bits of a granule slot holding the segment's index plus one (0: empty).
const GRANULE_INDEX_BITS: u32 = 20;

/// A direct-mapped cache of the segment wholly covering each 1 MiB granule of address
/// space looked up lately: one load and a compare find the segment of most heap
/// addresses, where a walk reading entries, keys and values from several big mappings in
/// turn would miss a short list of recent segments. Each slot holds the granule's number
/// (above [`GRANULE_INDEX_BITS`]) and the segment's index plus one.
struct GranuleCache(Box<[std::cell::Cell<u64>]>);

impl GranuleCache {
    fn new() -> Self {
        GranuleCache(
            (0..GRANULE_SLOTS)
                .map(|_| std::cell::Cell::new(0))
                .collect(),
        )
    }

    fn slot(&self, granule: u64) -> Option<&std::cell::Cell<u64>> {
        self.0.get(granule as usize % GRANULE_SLOTS)
    }

    /// The segment cached for `addr`'s granule.
    #[inline]
    fn get(&self, addr: u64) -> Option<usize> {
        let granule = addr >> GRANULE_SHIFT;
        let v = self.slot(granule)?.get();
        let idx = v & ((1 << GRANULE_INDEX_BITS) - 1);
        (v >> GRANULE_INDEX_BITS == granule && idx != 0).then(|| idx as usize - 1)
    }

    /// Remembers segment `idx` for `addr`'s granule when `seg` covers all of it.
    fn put(&self, addr: u64, idx: usize, seg: &Segment) {
        let granule = addr >> GRANULE_SHIFT;
        let start = granule << GRANULE_SHIFT;
        let covers = seg.vaddr <= start && start.saturating_add(1 << GRANULE_SHIFT) <= seg.end();
        let fits = (idx as u64) < (1 << GRANULE_INDEX_BITS) - 1;
        if let (true, true, Some(slot)) = (covers, fits, self.slot(granule)) {
            slot.set(granule << GRANULE_INDEX_BITS | (idx as u64 + 1));
        }
    }
}

/// A process's memory: segments indexed by address over the core's bytes (PT_LOAD), or over
/// a live process's mappings (`/proc/PID/maps`).
///
/// Every read is checked: a byte that is not in the file (or not readable in the live
/// process) is an error naming its address, never a zero.
pub struct AddressSpace<'a> {
    data: &'a [u8],
    segments: Vec<Segment>,
    // Indices of the segments the last lookups found, most recent first: a walk reads
    // entries, keys and values from a few heap mappings in turn, so one of these mostly
    // holds the next address and the binary search is skipped.
    last: std::cell::Cell<[usize; RECENT]>,
    // Tried before `last`: the segment of each 1 MiB granule met lately.
    granules: GranuleCache,
    // A live process's memory; `None` for a core (then `data` holds the bytes).
    process: Option<ProcessMemory>,
}

impl<'a> AddressSpace<'a> {
    /// Index `segments` (any order) over the core file's bytes `data`.
    pub fn new(data: &'a [u8], mut segments: Vec<Segment>) -> Self {
        let file_len = data.len() as u64;
        for s in &mut segments {
            let avail = file_len.saturating_sub(s.file_offset);
            s.present = s.filesz.min(avail).min(s.memsz);
        }
        segments.retain(|s| s.memsz > 0);
        segments.sort_by_key(|s| s.vaddr);
        AddressSpace {
            data,
            segments,
            last: std::cell::Cell::new([0; RECENT]),
            granules: GranuleCache::new(),
            process: None,
        }
    }

    /// The memory of a live process: `segments` are its mappings, with `present` (and
    /// `filesz`) equal to `memsz` for a readable mapping and 0 for one without read
    /// permission, whose bytes are then never read. Reads copy (`Cow::Owned`).
    pub fn process(memory: ProcessMemory, mut segments: Vec<Segment>) -> AddressSpace<'static> {
        segments.retain(|s| s.memsz > 0);
        segments.sort_by_key(|s| s.vaddr);
        AddressSpace {
            data: &[],
            segments,
            last: std::cell::Cell::new([0; RECENT]),
            granules: GranuleCache::new(),
            process: Some(memory),
        }
    }

    /// A second view of the same core for another thread, with its own lookup cache
    /// (`None` for a live process, whose reader is not shared).
    pub fn fork(&self) -> Option<AddressSpace<'a>> {
        if self.process.is_some() {
            return None;
        }
        Some(AddressSpace {
            data: self.data,
            segments: self.segments.clone(),
            last: std::cell::Cell::new(self.last.get()),
            granules: GranuleCache::new(),
            process: None,
        })
    }

    /// The live process's memory reader, when this is one (`--pid`).
    pub fn process_memory(&self) -> Option<&ProcessMemory> {
        self.process.as_ref()
    }

    /// The indexed segments, sorted by address.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Bytes that the program headers promise but the (truncated) file lacks.
    pub fn missing_bytes(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| s.filesz.min(s.memsz).saturating_sub(s.present))
            .sum()
    }

    #[inline]
    fn segment_index(&self, addr: u64) -> Option<usize> {
        if let Some(idx) = self.granules.get(addr) {
            return Some(idx);
        }
        self.segment_index_slow(addr)
    }

    fn segment_index_slow(&self, addr: u64) -> Option<usize> {
        let mut recent = self.last.get();
        for (k, &hint) in recent.iter().enumerate() {
            if let Some(seg) = self.segments.get(hint) {
                if seg.vaddr <= addr && addr < seg.end() {
                    self.granules.put(addr, hint, seg);
                    if k > 0 {
                        recent.copy_within(0..k, 1);
                        recent[0] = hint;
                        self.last.set(recent);
                    }
                    return Some(hint);
                }
            }
        }
        let i = self.segments.partition_point(|s| s.vaddr <= addr);
        let idx = i.checked_sub(1)?;
        let seg = self.segments.get(idx)?;
        let found = (addr < seg.end()).then_some(idx);
        if let Some(i) = found {
            self.granules.put(addr, i, seg);
            recent.copy_within(0..RECENT - 1, 1);
            recent[0] = i;
            self.last.set(recent);
        }
        found
    }

    /// The dumped bytes of the core's segment holding `addr`, and the offset of `addr` in
    /// them: one lookup for a reader that parses a header before `addr` and the bytes after
    /// it in place. `None` for a live process (nothing is mapped) or an address whose byte
    /// was not dumped; such a reader then takes the checked path that says why.
    pub fn segment_bytes(&self, addr: u64) -> Option<(&'a [u8], usize)> {
        if self.process.is_some() {
            return None;
        }
        let seg = self.segments.get(self.segment_index(addr)?)?;
        let rel = addr - seg.vaddr;
        if rel >= seg.present {
            return None;
        }
        let start = usize::try_from(seg.file_offset).ok()?;
        let end = start.checked_add(usize::try_from(seg.present).ok()?)?;
        Some((self.data.get(start..end)?, usize::try_from(rel).ok()?))
    }

    /// The longest run of dumped bytes starting at `addr` inside its own segment.
    fn local(&self, addr: u64) -> Result<(&'a [u8], usize), MemError> {
        let idx = self.segment_index(addr).ok_or(MemError::Unmapped(addr))?;
        let seg = self.segments.get(idx).ok_or(MemError::Unmapped(addr))?;
        let rel = addr - seg.vaddr;
        if rel >= seg.present {
            return Err(if rel < seg.filesz.min(seg.memsz) {
                MemError::Truncated(addr)
            } else {
                MemError::NotDumped(addr)
            });
        }
        let start = seg.file_offset.saturating_add(rel) as usize;
        let end = seg.file_offset.saturating_add(seg.present) as usize;
        let bytes = self.data.get(start..end).ok_or(MemError::Truncated(addr))?;
        Ok((bytes, idx))
    }

    /// Asks the CPU to start loading the cache line holding `addr`, when it is dumped in
    /// the core: the walk chases pointers, and a load started a few entries ahead hides
    /// most of the memory latency. A hint only: nothing is read, nothing can fail, and a
    /// live process's memory (copied on demand) is left alone.
    #[inline]
    pub fn prefetch(&self, addr: u64) {
        if self.process.is_some() {
            return;
        }
        if let Ok((bytes, _)) = self.local(addr) {
            prefetch_line(bytes);
        }
    }

    /// [`AddressSpace::prefetch`] of the lines holding the first and the last of `len`
    /// bytes at `addr` (`len` up to a line: an object of 64 bytes not aligned to a line
    /// spans two).
    #[inline]
    pub fn prefetch_span(&self, addr: u64, len: u64) {
        self.prefetch(addr);
        self.prefetch(addr.wrapping_add(len.saturating_sub(1)));
    }

    /// Read `len` bytes at `addr`: borrowed from the core when they lie in one segment,
    /// copied when they span adjacent segments.
    pub fn read(&self, addr: u64, len: usize) -> Result<Cow<'a, [u8]>, MemError> {
        let end = addr.checked_add(len as u64).ok_or(MemError::OutOfRange {
            addr,
            len: len as u64,
        })?;
        if len == 0 {
            return Ok(Cow::Borrowed(&[]));
        }
        if let Some(mem) = &self.process {
            self.live_readable(addr, end)?;
            let mut out = vec![0u8; len];
            self.live_copy(mem, addr, &mut out)?;
            return Ok(Cow::Owned(out));
        }
        let (first, _) = self.local(addr)?;
        if let Some(bytes) = first.get(..len) {
            return Ok(Cow::Borrowed(bytes));
        }
        // Spanning segments: only when they are contiguous in the address space.
        if (len as u64) > self.readable_len(addr) {
            return Err(self.first_fault(addr, end));
        }
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(first);
        while out.len() < len {
            let next_addr = addr + out.len() as u64;
            let (bytes, _) = self.local(next_addr)?;
            let take = (len - out.len()).min(bytes.len());
            out.extend_from_slice(bytes.get(..take).unwrap_or(bytes));
        }
        Ok(Cow::Owned(out))
    }

    /// Bytes readable from `addr` to the end of its segment in a live process, or why none.
    fn live_span(&self, addr: u64) -> Result<u64, MemError> {
        let idx = self.segment_index(addr).ok_or(MemError::Unmapped(addr))?;
        let seg = self.segments.get(idx).ok_or(MemError::Unmapped(addr))?;
        let rel = addr - seg.vaddr;
        if rel >= seg.present {
            return Err(MemError::Unreadable(addr));
        }
        Ok(seg.present - rel)
    }

    /// Every byte of `addr..end` lies in readable mappings of the live process (adjacent
    /// ones allowed), or the first one that does not, named.
    fn live_readable(&self, addr: u64, end: u64) -> Result<(), MemError> {
        let mut a = addr;
        // Bounded by the number of segments: each round moves to the next one.
        for _ in 0..=self.segments.len() {
            if a >= end {
                return Ok(());
            }
            a = a.saturating_add(self.live_span(a)?);
        }
        Err(MemError::OutOfRange {
            addr,
            len: end - addr,
        })
    }

    /// Copy the live process's bytes at `addr` into `out` (already checked readable): small
    /// reads through the block cache, one block of one mapping at a time (a block never
    /// spans two mappings, so a mapping the kernel refuses does not spoil its neighbour's
    /// block); larger ones straight from `/proc/PID/mem`.
    fn live_copy(&self, mem: &ProcessMemory, addr: u64, out: &mut [u8]) -> Result<(), MemError> {
        if out.len() as u64 > BLOCK {
            return mem.read_exact(addr, out);
        }
        let mut done = 0usize;
        // Bounded: each round copies at least one byte (a block holds `a`).
        while let Some(rest) = out.get_mut(done..).filter(|r| !r.is_empty()) {
            let a = addr.saturating_add(done as u64);
            let idx = self.segment_index(a).ok_or(MemError::Unmapped(a))?;
            let seg = self.segments.get(idx).ok_or(MemError::Unmapped(a))?;
            let aligned = a & !(BLOCK - 1);
            let start = aligned.max(seg.vaddr);
            let end = aligned.saturating_add(BLOCK).min(seg.end());
            let n = usize::try_from(end.saturating_sub(a))
                .unwrap_or(usize::MAX)
                .min(rest.len());
            if n == 0 {
                return Err(MemError::Unreadable(a));
            }
            let dst = rest.get_mut(..n).ok_or(MemError::Unreadable(a))?;
            mem.copy_cached(start, end, a, dst)?;
            done += n;
        }
        Ok(())
    }

    fn first_fault(&self, addr: u64, end: u64) -> MemError {
        let mut a = addr;
        while a < end {
            match self.local(a) {
                Ok((bytes, _)) => a = a.saturating_add(bytes.len() as u64),
                Err(e) => return e,
            }
        }
        MemError::OutOfRange {
            addr,
            len: end - addr,
        }
    }

    /// How many bytes starting at `addr` can be read, following adjacent segments.
    ///
    /// Used to check a length from the core before anything is allocated for it.
    pub fn readable_len(&self, addr: u64) -> u64 {
        if self.process.is_some() {
            let mut total = 0u64;
            let mut a = addr;
            // Bounded by the number of segments.
            for _ in 0..self.segments.len() {
                match self.live_span(a) {
                    Ok(n) => {
                        total = total.saturating_add(n);
                        a = a.saturating_add(n);
                    }
                    Err(_) => break,
                }
            }
            return total;
        }
        let mut total = 0u64;
        let mut a = addr;
        // Bounded by the number of segments.
        for _ in 0..self.segments.len() {
            match self.local(a) {
                Ok((bytes, _)) => {
                    total += bytes.len() as u64;
                    a = a.saturating_add(bytes.len() as u64);
                }
                Err(_) => break,
            }
        }
        total
    }

    /// Read a fixed-size array.
    pub fn read_array<const N: usize>(&self, addr: u64) -> Result<[u8; N], MemError> {
        if let Some(mem) = &self.process {
            // Straight into the array: the walker's many pointer reads allocate nothing.
            let end = addr.checked_add(N as u64).ok_or(MemError::OutOfRange {
                addr,
                len: N as u64,
            })?;
            self.live_readable(addr, end)?;
            let mut out = [0u8; N];
            self.live_copy(mem, addr, &mut out)?;
            return Ok(out);
        }
        let bytes = self.read(addr, N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes.get(..N).ok_or(MemError::OutOfRange {
            addr,
            len: N as u64,
        })?);
        Ok(out)
    }

    /// Little-endian u64 at `addr`.
    pub fn u64(&self, addr: u64) -> Result<u64, MemError> {
        self.read_array::<8>(addr).map(u64::from_le_bytes)
    }

    /// Little-endian u32 at `addr`.
    pub fn u32(&self, addr: u64) -> Result<u32, MemError> {
        self.read_array::<4>(addr).map(u32::from_le_bytes)
    }

    /// Little-endian u16 at `addr`.
    pub fn u16(&self, addr: u64) -> Result<u16, MemError> {
        self.read_array::<2>(addr).map(u16::from_le_bytes)
    }

    /// Byte at `addr`.
    pub fn u8(&self, addr: u64) -> Result<u8, MemError> {
        self.read_array::<1>(addr).map(|b| b[0])
    }

    /// Unsigned little-endian integer of `size` bytes (1, 2, 4 or 8) at `addr`.
    pub fn uint(&self, addr: u64, size: u8) -> Result<u64, MemError> {
        match size {
            1 => self.u8(addr).map(u64::from),
            2 => self.u16(addr).map(u64::from),
            4 => self.u32(addr).map(u64::from),
            _ => self.u64(addr),
        }
    }
}

/// Asks the CPU to start loading the cache line holding the first byte of `bytes` (nothing
/// when it is empty). A hint only: nothing is read architecturally and nothing can fail.
#[inline]
pub fn prefetch_line<T>(bytes: &[T]) {
    if bytes.is_empty() {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch neither reads nor writes architecturally and never faults; the
    // pointer is to the first element of a live, non-empty slice anyway.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(bytes.as_ptr().cast::<i8>());
    }
}

/// An address space of one segment holding `data` at `vaddr`, for unit tests of readers.
#[cfg(test)]
pub(crate) fn single_segment(data: &[u8], vaddr: u64) -> AddressSpace<'_> {
    AddressSpace::new(
        data,
        vec![Segment {
            vaddr,
            memsz: data.len() as u64,
            filesz: data.len() as u64,
            file_offset: 0,
            present: 0,
            flags: 6,
        }],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(vaddr: u64, memsz: u64, filesz: u64, off: u64) -> Segment {
        Segment {
            vaddr,
            memsz,
            filesz,
            file_offset: off,
            present: 0,
            flags: 6,
        }
    }

    #[test]
    fn reads_within_and_across_adjacent_segments() {
        let data: Vec<u8> = (0..=255u8).collect();
        // Two adjacent segments: [0x1000,0x1010) from file 0, [0x1010,0x1020) from file 100.
        let space = AddressSpace::new(
            &data,
            vec![seg(0x1010, 16, 16, 100), seg(0x1000, 16, 16, 0)],
        );
        assert_eq!(space.u8(0x1000), Ok(0));
        assert_eq!(
            space.u32(0x100c).unwrap(),
            u32::from_le_bytes([12, 13, 14, 15])
        );
        let cross = space.read(0x100e, 4).unwrap();
        assert_eq!(&*cross, &[14, 15, 100, 101]);
        assert!(matches!(cross, Cow::Owned(_)));
        assert_eq!(space.readable_len(0x1008), 24);
        assert_eq!(space.read(0x1018, 9), Err(MemError::Unmapped(0x1020)));
    }

    #[test]
    fn undumped_and_truncated_bytes_are_errors_not_zeros() {
        let data = vec![7u8; 40];
        // filesz < memsz: the tail was not dumped. Second segment runs past the file's end.
        let space = AddressSpace::new(&data, vec![seg(0x2000, 32, 8, 0), seg(0x3000, 32, 32, 16)]);
        assert_eq!(space.u64(0x2000), Ok(u64::from_le_bytes([7; 8])));
        assert_eq!(space.u8(0x2008), Err(MemError::NotDumped(0x2008)));
        assert_eq!(space.u8(0x3017), Ok(7));
        assert_eq!(space.u8(0x3018), Err(MemError::Truncated(0x3018)));
        assert_eq!(space.u8(0x5000), Err(MemError::Unmapped(0x5000)));
        assert_eq!(space.missing_bytes(), 8);
        assert!(space.read(u64::MAX - 2, 8).is_err());
    }
}
