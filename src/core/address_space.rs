//! The virtual address space of a dumped process, served zero-copy from the mapped core file.

use std::borrow::Cow;

/// A read that cannot be served from the bytes actually present in the core.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemError {
    /// No PT_LOAD segment covers the address.
    #[error("address {0:#x} is not mapped in the core")]
    Unmapped(u64),
    /// The segment covers the address but its bytes were not dumped (`p_filesz < p_memsz`).
    #[error("address {0:#x} is mapped but its bytes are not in the core (not dumped)")]
    NotDumped(u64),
    /// The segment's bytes lie past the end of a truncated core file.
    #[error("address {0:#x} lies in the part of the core that is missing (truncated file)")]
    Truncated(u64),
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

/// The dumped process's memory: PT_LOAD segments indexed by address over the core's bytes.
///
/// Every read is checked: a byte that is not in the file is an error naming its address,
/// never a zero.
pub struct AddressSpace<'a> {
    data: &'a [u8],
    segments: Vec<Segment>,
    // Index of the segment the last lookup found: consecutive reads mostly stay in it.
    last: std::cell::Cell<usize>,
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
            last: std::cell::Cell::new(0),
        }
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

    fn segment_index(&self, addr: u64) -> Option<usize> {
        let hint = self.last.get();
        if let Some(seg) = self.segments.get(hint) {
            if seg.vaddr <= addr && addr < seg.end() {
                return Some(hint);
            }
        }
        let i = self.segments.partition_point(|s| s.vaddr <= addr);
        let idx = i.checked_sub(1)?;
        let seg = self.segments.get(idx)?;
        let found = (addr < seg.end()).then_some(idx);
        if let Some(i) = found {
            self.last.set(i);
        }
        found
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

/// An address space of one segment holding `data` at `vaddr`, for unit tests of readers
/// and the fuzz entry points (`crate::fuzz_entry`).
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
