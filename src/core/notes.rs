//! Decoding of the core's process notes: NT_FILE, NT_PRPSINFO and NT_AUXV.

/// One file-backed mapping listed in NT_FILE.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileMapping {
    /// First address of the mapping.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// Offset in the file, in bytes.
    pub file_offset: u64,
    /// Path of the mapped file as the kernel saw it.
    pub path: String,
}

/// The interesting part of NT_PRPSINFO.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ProcessInfo {
    /// Process id.
    pub pid: i32,
    /// Real user id.
    pub uid: u32,
    /// Executable name (at most 16 bytes, as the kernel truncates it).
    pub fname: String,
    /// Command line (at most 80 bytes).
    pub psargs: String,
}

/// Auxiliary vector entry types the tool uses.
pub mod auxv {
    /// Address of the program headers of the executable.
    pub const AT_PHDR: u64 = 3;
    /// Entry point of the executable.
    pub const AT_ENTRY: u64 = 9;
    /// Page size.
    pub const AT_PAGESZ: u64 = 6;
}

/// Parse NT_FILE: `count, page_size, count × (start, end, page_offset), count × NUL-terminated path`.
pub fn parse_nt_file(desc: &[u8]) -> Option<Vec<FileMapping>> {
    let word = |i: usize| -> Option<u64> {
        let b = desc.get(i.checked_mul(8)?..i.checked_mul(8)?.checked_add(8)?)?;
        Some(u64::from_le_bytes(b.try_into().ok()?))
    };
    let count = usize::try_from(word(0)?).ok()?;
    let page_size = word(1)?;
    // Each entry needs 24 bytes plus at least a NUL: bound the count before allocating.
    if count > desc.len() / 25 {
        return None;
    }
    let mut names = desc.get(16 + count * 24..)?.split(|&b| b == 0);
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let base = 2 + i * 3;
        let name = names.next()?;
        out.push(FileMapping {
            start: word(base)?,
            end: word(base + 1)?,
            file_offset: word(base + 2)?.checked_mul(page_size)?,
            path: String::from_utf8_lossy(name).into_owned(),
        });
    }
    Some(out)
}

/// Parse the x86_64/aarch64 `struct elf_prpsinfo` (136 bytes).
pub fn parse_prpsinfo(desc: &[u8]) -> Option<ProcessInfo> {
    let u32_at = |o: usize| -> Option<u32> {
        Some(u32::from_le_bytes(desc.get(o..o + 4)?.try_into().ok()?))
    };
    let cstr = |range: std::ops::Range<usize>| -> Option<String> {
        let b = desc.get(range)?;
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        Some(String::from_utf8_lossy(b.get(..end)?).trim_end().to_owned())
    };
    Some(ProcessInfo {
        uid: u32_at(16)?,
        pid: u32_at(24)? as i32,
        fname: cstr(40..56)?,
        psargs: cstr(56..136)?,
    })
}

/// Parse NT_AUXV into (type, value) pairs, stopping at AT_NULL.
pub fn parse_auxv(desc: &[u8]) -> Vec<(u64, u64)> {
    desc.chunks_exact(16)
        .map(|c| {
            let (a, b) = c.split_at(8);
            (
                u64::from_le_bytes(a.try_into().unwrap_or([0; 8])),
                u64::from_le_bytes(b.try_into().unwrap_or([0; 8])),
            )
        })
        .take_while(|&(t, _)| t != 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nt_file_round_trip_and_malformed() {
        let mut d = Vec::new();
        for w in [2u64, 4096, 0x1000, 0x2000, 0, 0x3000, 0x5000, 3] {
            d.extend_from_slice(&w.to_le_bytes());
        }
        d.extend_from_slice(b"/usr/bin/redis-check-rdb\0/lib/libc.so.6\0");
        let m = parse_nt_file(&d).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].file_offset, 3 * 4096);
        assert_eq!(m[0].path, "/usr/bin/redis-check-rdb");
        // A count that the descriptor cannot hold is rejected, not allocated.
        let mut bad = d.clone();
        bad[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(parse_nt_file(&bad).is_none());
        for cut in 0..d.len() - 1 {
            let _ = parse_nt_file(&d[..cut]);
        }
    }

    #[test]
    fn auxv_stops_at_null() {
        let mut d = Vec::new();
        for w in [9u64, 0x55aa, 6, 4096, 0, 0, 3, 3] {
            d.extend_from_slice(&w.to_le_bytes());
        }
        assert_eq!(parse_auxv(&d), vec![(9, 0x55aa), (6, 4096)]);
    }
}
