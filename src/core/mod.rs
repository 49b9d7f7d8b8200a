//! Reading an ELF core dump: segments, process notes, and the executable's identity. A live
//! process is read through the same [`CoreFile`] ([`crate::live`] builds one from `/proc`, over
//! [`proc_mem::ProcessMemory`]).

pub mod address_space;
pub mod input;
pub mod notes;
pub mod page_cache;
pub mod proc_mem;

use object::elf;
use object::read::elf::{FileHeader, ProgramHeader};
use object::Endianness;

pub use address_space::{AddressSpace, MemError, Segment};
pub use notes::{FileMapping, ProcessInfo};

/// The core is not a usable ELF core file.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// Not an ELF file, or its header is damaged.
    #[error("not an ELF core file: {0}")]
    NotElf(String),
    /// An ELF file, but not a core dump.
    #[error("this ELF file is not a core dump (e_type {0}); pass the core, not the binary")]
    NotCore(u16),
    /// Only 64-bit little-endian cores are supported.
    #[error("only 64-bit little-endian cores are supported")]
    Unsupported,
    /// The core has no PT_LOAD segment with bytes.
    #[error("the core holds no memory segments")]
    NoSegments,
}

/// A parsed core (or a live process seen as one): its memory and what its notes say about the
/// process.
pub struct CoreFile<'a> {
    /// The process's memory.
    pub space: AddressSpace<'a>,
    /// NT_FILE mappings (empty when the note is missing).
    pub files: Vec<FileMapping>,
    /// NT_PRPSINFO, when present.
    pub process: Option<ProcessInfo>,
    /// NT_AUXV pairs.
    pub auxv: Vec<(u64, u64)>,
}

/// A program header of an ELF image mapped in the core.
struct ImageSegment {
    /// `p_type`.
    kind: elf::ProgramType,
    /// `PF_W` is set.
    writable: bool,
    /// Where the segment starts in the process.
    addr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
}

/// Where the executable was loaded and what it is, read from the core alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutableInCore {
    /// Path named by NT_FILE.
    pub path: String,
    /// Address of the mapping at file offset 0 (the ELF header).
    pub base: u64,
    /// GNU build-id read from the in-memory note, when that page was dumped.
    pub build_id: Option<String>,
}

impl<'a> CoreFile<'a> {
    /// Parse the program headers and notes of a core held in `data`.
    pub fn parse(data: &'a [u8]) -> Result<Self, CoreError> {
        let header = elf::FileHeader64::<Endianness>::parse(data)
            .map_err(|e| CoreError::NotElf(e.to_string()))?;
        let endian = header
            .endian()
            .map_err(|e| CoreError::NotElf(e.to_string()))?;
        if endian != Endianness::Little {
            return Err(CoreError::Unsupported);
        }
        let e_type = header.e_type(endian);
        if e_type != elf::ET_CORE {
            return Err(CoreError::NotCore(e_type.0));
        }
        let phdrs = header
            .program_headers(endian, data)
            .map_err(|e| CoreError::NotElf(format!("program headers: {e}")))?;
        let mut segments = Vec::new();
        let mut files = Vec::new();
        let mut process = None;
        let mut auxv = Vec::new();
        for ph in phdrs {
            match ph.p_type(endian) {
                elf::PT_LOAD => segments.push(Segment {
                    vaddr: ph.p_vaddr(endian),
                    memsz: ph.p_memsz(endian),
                    filesz: ph.p_filesz(endian),
                    file_offset: ph.p_offset(endian),
                    present: 0,
                    flags: ph.p_flags(endian).0,
                }),
                elf::PT_NOTE => {
                    // A note segment cut off by truncation is skipped; the memory may still be usable.
                    let Ok(Some(mut iter)) = ph.notes(endian, data) else {
                        continue;
                    };
                    while let Ok(Some(note)) = iter.next() {
                        if note.name() != b"CORE" {
                            continue;
                        }
                        match note.n_type(endian) {
                            elf::NT_FILE => {
                                if let Some(f) = notes::parse_nt_file(note.desc()) {
                                    files = f;
                                }
                            }
                            elf::NT_PRPSINFO => process = notes::parse_prpsinfo(note.desc()),
                            elf::NT_AUXV => auxv = notes::parse_auxv(note.desc()),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        if segments.is_empty() {
            return Err(CoreError::NoSegments);
        }
        Ok(CoreFile {
            space: AddressSpace::new(data, segments),
            files,
            process,
            auxv,
        })
    }

    fn auxv_value(&self, key: u64) -> Option<u64> {
        self.auxv.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    /// The executable: the NT_FILE mapping holding the entry point (or the program
    /// headers), its load address, and the build-id from its in-memory ELF header.
    pub fn executable(&self) -> Option<ExecutableInCore> {
        let anchor = self
            .auxv_value(notes::auxv::AT_ENTRY)
            .or_else(|| self.auxv_value(notes::auxv::AT_PHDR));
        let path = match anchor {
            Some(a) => &self.files.iter().find(|m| m.start <= a && a < m.end)?.path,
            // No auxv: fall back to the first mapping, which the kernel lists first.
            None => &self.files.first()?.path,
        };
        let base = self
            .files
            .iter()
            .filter(|m| &m.path == path && m.file_offset == 0)
            .map(|m| m.start)
            .min()?;
        Some(ExecutableInCore {
            path: path.clone(),
            base,
            build_id: self.build_id_at(base),
        })
    }

    /// Where the ELF image with GNU build-id `id` (hex) has its header, found by reading the
    /// start of every dumped segment. This locates the executable when NT_FILE is gone:
    /// gdb writes notes after the memory, so a cut gcore core loses them first, while the
    /// executable's header page (kept by the default coredump filter) sits low in the file.
    pub fn find_image(&self, id: &str) -> Option<u64> {
        self.space
            .segments()
            .iter()
            .filter(|s| s.present >= 64)
            .map(|s| s.vaddr)
            .find(|&start| {
                matches!(self.space.read_array::<4>(start), Ok(m) if m == *b"\x7fELF")
                    && self.build_id_at(start).as_deref() == Some(id)
            })
    }

    /// The program headers of the ELF image whose header is mapped at `base`, each with
    /// its segment's address in the process: `base` plus the segment's distance from the
    /// PT_LOAD that maps file offset 0.
    fn image_segments(&self, base: u64) -> Option<(Endianness, Vec<ImageSegment>)> {
        let avail = self.space.readable_len(base).min(64 * 1024) as usize;
        let image = self.space.read(base, avail).ok()?;
        let header = elf::FileHeader64::<Endianness>::parse(&*image).ok()?;
        let endian = header.endian().ok()?;
        let phdrs = header.program_headers(endian, &*image).ok()?;
        let first_vaddr = phdrs
            .iter()
            .filter(|p| p.p_type(endian) == elf::PT_LOAD && p.p_offset(endian) == 0)
            .map(|p| p.p_vaddr(endian))
            .min()
            .unwrap_or(0);
        let segments = phdrs
            .iter()
            .filter_map(|p| {
                Some(ImageSegment {
                    kind: p.p_type(endian),
                    writable: (p.p_flags(endian) & elf::PF_W).0 != 0,
                    addr: base.checked_add(p.p_vaddr(endian).checked_sub(first_vaddr)?)?,
                    filesz: p.p_filesz(endian),
                    memsz: p.p_memsz(endian),
                    align: p.p_align(endian),
                })
            })
            .collect();
        Some((endian, segments))
    }

    /// Where the writable PT_LOAD segments (`.data.rel.ro`, `.got`, `.data`, `.bss`) of the
    /// ELF image whose header is mapped at `base` lie in the process, as `(start, memsz)`.
    /// Part of them is read-only once relocated (RELRO), so the mappings' permissions alone
    /// do not find them.
    pub fn writable_ranges(&self, base: u64) -> Vec<(u64, u64)> {
        let Some((_, segments)) = self.image_segments(base) else {
            return Vec::new();
        };
        segments
            .iter()
            .filter(|s| s.kind == elf::PT_LOAD && s.writable)
            .map(|s| (s.addr, s.memsz))
            .collect()
    }

    /// The dumped bytes of the writable PT_LOAD segments (`.data`, `.bss`) of the ELF image
    /// whose header is mapped at `base`: `(address, bytes)`, each starting 8-aligned and cut
    /// where the dump stops.
    pub fn writable_image(&self, base: u64) -> Vec<(u64, std::borrow::Cow<'a, [u8]>)> {
        self.writable_ranges(base)
            .into_iter()
            .filter_map(|(addr, memsz)| {
                let start = addr & !7;
                // Redis's data and bss are a few MB; more is not an executable's image.
                let len = memsz
                    .saturating_add(8)
                    .min(self.space.readable_len(start))
                    .min(64 << 20);
                Some((start, self.space.read(start, len as usize).ok()?))
            })
            .collect()
    }

    /// Read the GNU build-id of the ELF image whose header is mapped at `base`.
    pub fn build_id_at(&self, base: u64) -> Option<String> {
        let (endian, segments) = self.image_segments(base)?;
        for seg in segments.iter().filter(|s| s.kind == elf::PT_NOTE) {
            let len = usize::try_from(seg.filesz).ok()?.min(4096);
            let Ok(bytes) = self.space.read(seg.addr, len) else {
                continue;
            };
            let align = seg.align.max(4);
            let mut iter = object::read::elf::NoteIterator::<elf::FileHeader64<Endianness>>::new(
                endian, align, &bytes,
            )
            .ok()?;
            while let Ok(Some(note)) = iter.next() {
                if note.name() == b"GNU" && note.n_type(endian) == elf::NT_GNU_BUILD_ID {
                    return Some(hex(note.desc()));
                }
            }
        }
        None
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
