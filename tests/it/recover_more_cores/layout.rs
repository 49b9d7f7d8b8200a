//! A core's layout, read whole: its segments, the address of `server` and what the keyspace
//! hangs from (the skeleton a cut must keep), the same core rewritten with its notes first (the
//! kernel's layout).

use super::*;

/// The parts of a 64-bit little-endian ELF core file that matter for truncating it.
pub(super) struct CoreLayout {
    pub(super) bytes: Vec<u8>,
    /// Where the program headers end.
    pub(super) phdrs_end: u64,
    /// (offset, size) of every PT_NOTE segment.
    pub(super) notes: Vec<(u64, u64)>,
    /// Byte range holding the PT_LOAD segments' contents.
    pub(super) loads: (u64, u64),
    /// (vaddr, filesz, offset) of every PT_LOAD segment with contents.
    pub(super) segments: Vec<(u64, u64, u64)>,
}

impl CoreLayout {
    pub(super) fn read(core: &Path) -> CoreLayout {
        let bytes = fs::read(core).unwrap_or_else(|e| panic!("read {}: {e}", core.display()));
        Self::parse(bytes)
    }

    pub(super) fn parse(bytes: Vec<u8>) -> CoreLayout {
        assert_eq!(&bytes[..6], b"\x7fELF\x02\x01", "not a 64-bit LE ELF file");
        assert_eq!(u16_at(&bytes, 0x10), 4, "not an ET_CORE file");
        let (phoff, phentsize, phnum) = phdr_table(&bytes);
        let mut notes = Vec::new();
        let mut loads = (u64::MAX, 0u64);
        let mut segments = Vec::new();
        for i in 0..phnum {
            let ph = (phoff + i * phentsize) as usize;
            let (offset, filesz) = (u64_at(&bytes, ph + 8), u64_at(&bytes, ph + 0x20));
            match u32_at(&bytes, ph) {
                1 if filesz > 0 => {
                    loads.0 = loads.0.min(offset);
                    loads.1 = loads.1.max(offset + filesz);
                    segments.push((u64_at(&bytes, ph + 0x10), filesz, offset));
                }
                4 => notes.push((offset, filesz)),
                _ => {}
            }
        }
        assert!(!notes.is_empty(), "the core has no PT_NOTE segment");
        assert!(loads.0 < loads.1, "the core has no PT_LOAD contents");
        CoreLayout {
            phdrs_end: phoff + phentsize * phnum,
            notes,
            loads,
            segments,
            bytes,
        }
    }

    /// Offset in the file of the process's byte at `addr`, when it was dumped.
    pub(super) fn file_offset(&self, addr: u64) -> Option<u64> {
        self.segments
            .iter()
            .find(|(va, n, _)| (*va..va + n).contains(&addr))
            .map(|(va, _, off)| off + (addr - va))
    }

    /// Read a little-endian u64 of the process's memory.
    pub(super) fn mem_u64(&self, addr: u64) -> u64 {
        let off = self
            .file_offset(addr)
            .unwrap_or_else(|| panic!("address {addr:#x} is not in the core"));
        u64_at(&self.bytes, off as usize)
    }

    /// Where the keyspace's skeleton lies in the file: the `server.db` array and every db's
    /// keys and expires dict headers (not their tables, entries or values), read with the
    /// shipped profile's offsets from the `server` struct at `server`.
    pub(super) fn skeleton(&self, server: u64) -> Skeleton {
        let p = shipped_profile();
        let num = |path: &[&str]| -> u64 {
            path.iter()
                .try_fold(&p, |v, k| v.get(k))
                .and_then(|v| v.as_u64())
                .unwrap_or_else(|| panic!("{PROFILE}: no {}", path.join(".")))
        };
        let fields = |s: &str, f: &str| num(&["structs", s, "fields", f, "offset"]);
        let db_array = self.mem_u64(server + fields("redisServer", "db"));
        let dbnum = self.mem_u64(server + fields("redisServer", "dbnum")) & 0xffff_ffff;
        assert_eq!(dbnum, 16, "server.dbnum read from the core");
        let db_size = num(&["structs", "redisDb", "size"]);
        let dict_size = num(&["structs", "dict", "size"]);
        let ht_table = fields("dict", "ht_table");
        let end_of = |addr: u64, len: u64| -> u64 {
            self.file_offset(addr)
                .unwrap_or_else(|| panic!("address {addr:#x} is not in the core"))
                + len
        };
        let mut end = end_of(db_array, dbnum * db_size);
        let mut expires_tables = Vec::new();
        for i in 0..dbnum {
            let db = db_array + i * db_size;
            let keys = self.mem_u64(db + fields("redisDb", "dict"));
            let expires = self.mem_u64(db + fields("redisDb", "expires"));
            end = end
                .max(end_of(keys, dict_size))
                .max(end_of(expires, dict_size));
            for t in 0..2 {
                let table = self.mem_u64(expires + ht_table + 8 * t);
                if table != 0 {
                    expires_tables.push((i as u32, end_of(table, 0)));
                }
            }
        }
        Skeleton {
            end,
            expires_tables,
        }
    }

    /// Do all notes lie before the memory contents (the kernel's layout)?
    pub(super) fn notes_first(&self) -> bool {
        self.notes.iter().all(|(o, n)| o + n <= self.loads.0)
    }

    /// Where the last note ends.
    pub(super) fn notes_end(&self) -> u64 {
        self.notes.iter().map(|(o, n)| o + n).max().unwrap_or(0)
    }

    /// The same core laid out as the kernel writes one: ELF header, program headers, notes,
    /// then the memory contents from the next page boundary on (gcore puts the notes after the
    /// memory, so any truncation of a gcore core loses them). Section headers are dropped.
    pub(super) fn with_notes_first(&self) -> Vec<u8> {
        let b = &self.bytes;
        assert!(
            self.notes
                .iter()
                .all(|(o, n)| o + n <= self.loads.0 || *o >= self.loads.1),
            "a PT_NOTE segment overlaps the memory contents"
        );
        assert!(
            self.phdrs_end <= self.loads.0,
            "program headers overlap the memory"
        );
        let mut out = b[..self.phdrs_end as usize].to_vec();
        // No section headers: e_shoff, e_shnum, e_shstrndx.
        out[0x28..0x30].fill(0);
        out[0x3c..0x40].fill(0);
        let (phoff, phentsize, phnum) = phdr_table(b);
        let mut note_offsets = Vec::new();
        for (o, n) in &self.notes {
            note_offsets.push(out.len() as u64);
            out.extend_from_slice(&b[*o as usize..(o + n) as usize]);
        }
        let data_start = (out.len() as u64).div_ceil(4096) * 4096;
        out.resize(data_start as usize, 0);
        let mut next_note = note_offsets.into_iter();
        for i in 0..phnum {
            let ph = (phoff + i * phentsize) as usize;
            let field = ph + 8;
            let new_offset = match u32_at(b, ph) {
                4 => next_note.next().expect("one new offset per note"),
                1 => {
                    let old = u64_at(b, field);
                    data_start + old.saturating_sub(self.loads.0)
                }
                _ => continue,
            };
            out[field..field + 8].copy_from_slice(&new_offset.to_le_bytes());
        }
        out.extend_from_slice(&b[self.loads.0 as usize..self.loads.1 as usize]);
        out
    }
}

/// See [`CoreLayout::skeleton`].
pub(super) struct Skeleton {
    /// Where the last of the db array and the dict headers ends in the file.
    pub(super) end: u64,
    /// (db, file offset) of every expires dict's bucket array.
    pub(super) expires_tables: Vec<(u32, u64)>,
}

impl Skeleton {
    /// Does a cut at [`Skeleton::end`] lose an expires dict's bucket array?
    pub(super) fn cut_loses_an_expires_table(&self) -> bool {
        self.expires_tables.iter().any(|(_, off)| *off >= self.end)
    }
}
