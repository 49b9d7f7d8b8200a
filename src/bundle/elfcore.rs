//! An ELF core of a live process, written by the tool itself for `bundle --pid`, holding only
//! what a recovery reads: every writable mapping (heap, anonymous memory, stacks, the
//! `.data`/`.bss` of the executable and the libraries), the executable's writable image as
//! its program headers give it (its relocated part, `.data.rel.ro` and `.got`, is read-only
//! at run time: RELRO) and its first page (ELF header, program headers and the build-id
//! note). Read-only file mappings (code, constants) are left out: the executable travels in
//! the bundle beside the core.
//!
//! The core has the shape the kernel gives one: an ELF header (`ET_CORE`), a `PT_NOTE` with
//! `NT_PRPSINFO`, `NT_AUXV` and `NT_FILE` (every file mapping, as [`crate::live`] read them
//! from `/proc/PID`), then one `PT_LOAD` per mapping, or per part of a mapping where only
//! part is kept. A left-out part has `p_filesz` 0, so a read there says "not dumped", not
//! "unmapped". Its size is known before a byte of memory is copied, so it streams into the
//! archive (a tar entry states its size first) with no temporary file.
//!
//! What is kept is probed first: a page the kernel refuses to read (a device mapping, a file
//! mapping past the end of its file) is left out instead of failing the copy half-way.

use std::io::{self, Read};

use crate::core::notes::auxv;
use crate::core::proc_mem::ProcessMemory;
use crate::core::CoreFile;

/// ELF `PF_W`.
const PF_W: u32 = 2;
/// ELF program header types and note types.
const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const NT_PRPSINFO: u32 = 3;
const NT_AUXV: u32 = 6;
const NT_FILE: u32 = 0x4649_4c45;
/// Sizes of the ELF64 header, a program header and `struct elf_prpsinfo`.
const EHDR_LEN: usize = 64;
const PHDR_LEN: usize = 56;
const PRPSINFO_LEN: usize = 136;
/// Program headers at most: `e_phnum` is 16 bits, and 0xffff means "see section 0".
const MAX_PHDRS: usize = 0xfffe;
/// Pages probed one by one at most in one mapping whose ends disagree (4 GiB of 4 KiB
/// pages); past that the rest of it is left out.
const MAX_PROBED_PAGES: u64 = 1 << 20;
/// `EM_X86_64` and `EM_AARCH64`, when the executable's own header cannot be read.
const EM_HOST: u16 = if cfg!(target_arch = "aarch64") {
    183
} else {
    62
};

/// The core could not be planned.
#[derive(Debug, thiserror::Error)]
pub enum ElfCoreError {
    /// More mappings than an ELF header can count.
    #[error("the process has {0} mappings to describe; an ELF core holds at most {MAX_PHDRS} program headers")]
    TooManySegments(usize),
    /// The target is not a live process.
    #[error("a core is written only from a live process (--pid)")]
    NotLive,
}

/// One `PT_LOAD` of the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Load {
    vaddr: u64,
    memsz: u64,
    /// Its bytes are in the core.
    kept: bool,
    flags: u32,
}

/// The plan of a core: its headers and notes, and the memory to copy after them.
#[derive(Debug)]
pub struct CoreImage {
    /// ELF header, program headers and notes, padded to where the memory starts.
    head: Vec<u8>,
    /// The memory copied after `head`, in file order: `(address, length)`.
    copies: Vec<(u64, u64)>,
    /// Bytes of the whole core file.
    pub len: u64,
    /// Bytes of memory kept.
    pub kept: u64,
    /// Bytes the process maps.
    pub mapped: u64,
    /// Parts of mappings to keep that the kernel refused to read: `(address, length)`.
    pub unreadable: Vec<(u64, u64)>,
}

/// Plan the core of the live process `core` (as [`crate::live::open`] gives it): what to
/// keep, probed for readability, and the headers and notes describing it.
pub fn plan(core: &CoreFile<'_>) -> Result<CoreImage, ElfCoreError> {
    let mem = core.space.process_memory().ok_or(ElfCoreError::NotLive)?;
    let page = core
        .auxv
        .iter()
        .find(|(k, _)| *k == auxv::AT_PAGESZ)
        .map(|(_, v)| *v)
        .filter(|p| p.is_power_of_two() && (4096..=1 << 16).contains(p))
        .unwrap_or(4096);
    let exe = core.executable();
    let mut wanted: Vec<(u64, u64)> = Vec::new();
    if let Some(e) = &exe {
        wanted.push((e.base, e.base.saturating_add(page)));
        for (addr, memsz) in core.writable_ranges(e.base) {
            let end = addr.saturating_add(memsz);
            wanted.push((
                addr & !(page - 1),
                end.saturating_add(page - 1) & !(page - 1),
            ));
        }
    }
    let segments = core.space.segments();
    wanted.extend(
        segments
            .iter()
            .filter(|s| s.flags & PF_W != 0)
            .map(|s| (s.vaddr, s.vaddr.saturating_add(s.memsz))),
    );
    let wanted = merge(wanted);

    let mut loads = Vec::new();
    let mut unreadable = Vec::new();
    for s in segments {
        let end = s.vaddr.saturating_add(s.memsz);
        let mut pos = s.vaddr;
        let push = |loads: &mut Vec<Load>, from: u64, to: u64, kept: bool| {
            if to > from {
                loads.push(Load {
                    vaddr: from,
                    memsz: to - from,
                    kept,
                    flags: s.flags,
                });
            }
        };
        for &(w0, w1) in wanted.iter().filter(|(w0, w1)| *w0 < end && *w1 > s.vaddr) {
            let (from, to) = (w0.max(s.vaddr), w1.min(end));
            push(&mut loads, pos, from, false);
            if s.present == 0 {
                // Mapped without read permission: never read.
                push(&mut loads, from, to, false);
            } else {
                for (a, b, ok) in probe(mem, from, to, page) {
                    if !ok {
                        unreadable.push((a, b - a));
                    }
                    push(&mut loads, a, b, ok);
                }
            }
            pos = to;
        }
        push(&mut loads, pos, end, false);
    }
    if loads.len() + 1 > MAX_PHDRS {
        return Err(ElfCoreError::TooManySegments(loads.len()));
    }

    let notes = notes(core, page);
    let phnum = loads.len() + 1;
    let notes_at = EHDR_LEN + PHDR_LEN * phnum;
    let data_at = align_up((notes_at + notes.len()) as u64, page);
    let mut head = Vec::with_capacity(usize::try_from(data_at).unwrap_or(0));
    let machine = exe
        .as_ref()
        .and_then(|e| core.space.read_array::<20>(e.base).ok())
        .filter(|h| h.starts_with(b"\x7fELF"))
        .map_or(EM_HOST, |h| u16::from_le_bytes([h[18], h[19]]));
    elf_header(&mut head, machine, phnum as u16);
    phdr(
        &mut head,
        PT_NOTE,
        0,
        notes_at as u64,
        0,
        notes.len() as u64,
        notes.len() as u64,
        4,
    );
    let mut offset = data_at;
    let mut copies = Vec::new();
    for l in &loads {
        let filesz = if l.kept { l.memsz } else { 0 };
        phdr(
            &mut head, PT_LOAD, l.flags, offset, l.vaddr, filesz, l.memsz, page,
        );
        if l.kept {
            copies.push((l.vaddr, l.memsz));
        }
        offset = offset.saturating_add(filesz);
    }
    head.extend_from_slice(&notes);
    head.resize(usize::try_from(data_at).unwrap_or(head.len()), 0);
    let kept = copies.iter().map(|(_, n)| n).sum();
    Ok(CoreImage {
        head,
        copies,
        len: offset,
        kept,
        mapped: segments.iter().map(|s| s.memsz).sum(),
        unreadable,
    })
}

impl CoreImage {
    /// The core's bytes, read from the process as they are consumed (`mem` is the process's
    /// memory the plan was made from). Exactly [`CoreImage::len`] bytes, or an error naming
    /// the address that could not be read.
    pub fn reader<'a>(&'a self, mem: &'a ProcessMemory) -> CoreReader<'a> {
        CoreReader {
            image: self,
            mem,
            head_done: 0,
            copy: 0,
            copied: 0,
        }
    }
}

/// The bytes of a [`CoreImage`], as [`CoreImage::reader`] gives them.
pub struct CoreReader<'a> {
    image: &'a CoreImage,
    mem: &'a ProcessMemory,
    head_done: usize,
    /// The copy under way, and bytes of it done.
    copy: usize,
    copied: u64,
}

impl Read for CoreReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(rest) = self
            .image
            .head
            .get(self.head_done..)
            .filter(|r| !r.is_empty())
        {
            let n = rest.len().min(buf.len());
            if let (Some(dst), Some(src)) = (buf.get_mut(..n), rest.get(..n)) {
                dst.copy_from_slice(src);
            }
            self.head_done += n;
            return Ok(n);
        }
        // Bounded: each round moves to the next copy or returns.
        while let Some(&(addr, len)) = self.image.copies.get(self.copy) {
            let left = len.saturating_sub(self.copied);
            if left == 0 {
                self.copy += 1;
                self.copied = 0;
                continue;
            }
            let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
            let dst = buf.get_mut(..n).unwrap_or_default();
            self.mem
                .read_exact(addr.saturating_add(self.copied), dst)
                .map_err(io::Error::other)?;
            self.copied += n as u64;
            return Ok(n);
        }
        Ok(0)
    }
}

/// `from..to` split into runs of pages the kernel reads (`true`) or refuses (`false`). A
/// mapping whose first and last pages read is taken as readable whole (what refuses reads
/// does so for a whole mapping, or for its end past the end of a file); otherwise its pages
/// are probed one by one, up to [`MAX_PROBED_PAGES`].
fn probe(mem: &ProcessMemory, from: u64, to: u64, page: u64) -> Vec<(u64, u64, bool)> {
    let reads = |a: u64| mem.read_exact(a, &mut [0u8; 1]).is_ok();
    let last = to.saturating_sub(1) & !(page - 1);
    let (first_ok, last_ok) = (reads(from), reads(last.max(from)));
    if first_ok == last_ok {
        return vec![(from, to, first_ok)];
    }
    let mut runs: Vec<(u64, u64, bool)> = Vec::new();
    let mut a = from;
    for _ in 0..MAX_PROBED_PAGES {
        if a >= to {
            break;
        }
        let b = a.saturating_add(page).min(to);
        let ok = reads(a);
        match runs.last_mut() {
            Some(r) if r.2 == ok => r.1 = b,
            _ => runs.push((a, b, ok)),
        }
        a = b;
    }
    if a < to {
        runs.push((a, to, false));
    }
    runs
}

/// Sorted, with overlapping and touching ranges joined.
fn merge(mut ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    ranges.retain(|(a, b)| a < b);
    ranges.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (a, b) in ranges {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

fn align_up(n: u64, page: u64) -> u64 {
    n.saturating_add(page - 1) & !(page - 1)
}

fn elf_header(out: &mut Vec<u8>, machine: u16, phnum: u16) {
    // Class 64-bit, little-endian, version 1, System V ABI.
    out.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&4u16.to_le_bytes()); // ET_CORE
    out.extend_from_slice(&machine.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes()); // e_version
    out.extend_from_slice(&0u64.to_le_bytes()); // e_entry
    out.extend_from_slice(&(EHDR_LEN as u64).to_le_bytes()); // e_phoff
    out.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    out.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    out.extend_from_slice(&(EHDR_LEN as u16).to_le_bytes());
    out.extend_from_slice(&(PHDR_LEN as u16).to_le_bytes());
    out.extend_from_slice(&phnum.to_le_bytes());
    out.extend_from_slice(&[0; 6]); // no section headers
}

#[allow(clippy::too_many_arguments)]
fn phdr(
    out: &mut Vec<u8>,
    kind: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
) {
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&flags.to_le_bytes());
    for w in [offset, vaddr, 0, filesz, memsz, align] {
        out.extend_from_slice(&w.to_le_bytes());
    }
}

/// One `CORE` note, name and descriptor padded to 4 bytes as Linux writes them.
fn note(out: &mut Vec<u8>, kind: u32, desc: &[u8]) {
    const NAME: &[u8] = b"CORE\0";
    out.extend_from_slice(&(NAME.len() as u32).to_le_bytes());
    out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(NAME);
    out.resize(align_up(out.len() as u64, 4) as usize, 0);
    out.extend_from_slice(desc);
    out.resize(align_up(out.len() as u64, 4) as usize, 0);
}

/// NT_PRPSINFO, NT_AUXV and NT_FILE of the process.
fn notes(core: &CoreFile<'_>, page: u64) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(p) = &core.process {
        // struct elf_prpsinfo (x86_64 and aarch64): uid at 16, pid at 24, fname[16] at 40,
        // psargs[80] at 56; each string NUL-terminated within its field.
        let mut d = vec![0u8; PRPSINFO_LEN];
        let mut put = |at: usize, bytes: &[u8]| {
            if let Some(dst) = d.get_mut(at..at + bytes.len()) {
                dst.copy_from_slice(bytes);
            }
        };
        put(16, &p.uid.to_le_bytes());
        put(24, &p.pid.to_le_bytes());
        put(
            40,
            p.fname
                .as_bytes()
                .get(..p.fname.len().min(15))
                .unwrap_or(&[]),
        );
        put(
            56,
            p.psargs
                .as_bytes()
                .get(..p.psargs.len().min(79))
                .unwrap_or(&[]),
        );
        note(&mut out, NT_PRPSINFO, &d);
    }
    let mut d = Vec::with_capacity((core.auxv.len() + 1) * 16);
    for &(k, v) in core.auxv.iter().chain(&[(0, 0)]) {
        d.extend_from_slice(&k.to_le_bytes());
        d.extend_from_slice(&v.to_le_bytes());
    }
    note(&mut out, NT_AUXV, &d);
    let mut d = Vec::new();
    d.extend_from_slice(&(core.files.len() as u64).to_le_bytes());
    d.extend_from_slice(&page.to_le_bytes());
    for f in &core.files {
        for w in [f.start, f.end, f.file_offset / page] {
            d.extend_from_slice(&w.to_le_bytes());
        }
    }
    for f in &core.files {
        d.extend_from_slice(f.path.as_bytes());
        d.push(0);
    }
    note(&mut out, NT_FILE, &d);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::MemError;

    #[test]
    fn ranges_merge() {
        assert_eq!(
            merge(vec![(10, 20), (0, 5), (5, 8), (15, 30), (40, 40)]),
            vec![(0, 8), (10, 30)]
        );
    }

    /// A `sleep` process, stopped, written as a core and read back as one: the same
    /// executable (path, load address, build-id), process and auxiliary vector; writable
    /// memory equal to the process's; code left out ("not dumped").
    #[test]
    fn a_live_process_round_trips_through_its_core() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let (session, live) = crate::live::open(pid, true, &mut |_: &str| {}).unwrap();
        let image = plan(&live).unwrap();
        let mut bytes = Vec::new();
        image
            .reader(live.space.process_memory().unwrap())
            .read_to_end(&mut bytes)
            .unwrap();
        assert_eq!(bytes.len() as u64, image.len);
        assert!(
            image.kept < image.mapped / 2,
            "{} of {}",
            image.kept,
            image.mapped
        );
        let core = CoreFile::parse(&bytes).unwrap();
        let exe = live.executable().unwrap();
        assert_eq!(core.executable().unwrap(), exe);
        assert_eq!(core.process, live.process);
        assert_eq!(core.auxv, live.auxv);
        assert_eq!(core.files, live.files);
        let writable: Vec<_> = live
            .space
            .segments()
            .iter()
            .filter(|s| s.flags & PF_W != 0 && s.present > 0)
            .collect();
        assert!(!writable.is_empty());
        for s in writable {
            let len = s.memsz.min(1 << 16) as usize;
            assert_eq!(
                core.space.read(s.vaddr, len).unwrap(),
                live.space.read(s.vaddr, len).unwrap()
            );
        }
        // The page after the ELF header is code or constants: mapped, not kept.
        assert!(matches!(
            core.space.read(exe.base + 4096, 8),
            Err(MemError::NotDumped(_))
        ));
        assert_eq!(
            core.writable_image(exe.base).len(),
            live.writable_image(exe.base).len()
        );
        drop(session);
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
