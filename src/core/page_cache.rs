//! Getting a mapped core's pages into huge pages before the walk jumps across them.
//!
//! The walk is pointer chasing over the whole heap, so nearly every load misses the TLB.
//! Mapped in 4 KiB pages a 1.2 GiB core needs 300,000 entries and, in a virtual machine,
//! each miss is a two-dimensional page walk; mapped in 2 MiB pages it needs 600. Measured
//! here on a 10M-key core, the same bytes cached both ways: a dry run took 3.1 to 4.7 s
//! over 4 KiB pages and 2.0 to 2.6 s over 2 MiB pages.
//!
//! A file's pages can be mapped 2 MiB at a time only when its page cache holds them in
//! 2 MiB folios, and the cache keeps whatever size the file was written or read in:
//! `gcore` and the kernel's core writer write small pieces, so a core they just wrote sits
//! in 4 KiB folios. So, when the mapping asks for huge pages (`MADV_HUGEPAGE`):
//! - a core not cached yet is read in whole, in order, and lands in 2 MiB folios;
//! - a core cached in huge folios is mapped at once;
//! - a core cached in small folios is dropped from the cache and read again, a chunk at a
//!   time. So is each chunk held mostly in small folios of a core cached in both sizes
//!   (as a machine that evicts cold page cache leaves one whose parts were evicted and
//!   read back, or written again): a chunk is judged by the huge pages it maps afresh.
//!   Only clean pages can be dropped: pages not yet written back stay small (the
//!   file is never written, nor its writeback forced). The re-read costs a read of the
//!   file, which pays off only on a fast disk: once it runs slower than
//!   [`MIN_REREAD_RATE`], the rest is left as it is cached; and it stops after the first
//!   chunk if that comes back in small folios (a file system without large folios).
//!
//! A core larger than the memory available (less a margin) is not read in: the cache
//! could not hold it, and the walk would read it all again.
//!
//! Everything here is advice to the kernel: a call it refuses leaves the core as it was
//! mapped, and the bytes read are the same either way.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::progress::{ProgressHandle, Unit};

/// Cores smaller than this are mapped as they are: their pages mostly fit the TLB's reach.
pub const MIN_CORE: usize = 64 << 20;
/// A huge page.
const HUGE: usize = 2 << 20;
/// Read (and dropped) per step.
const CHUNK: usize = 64 << 20;
/// Windows of [`HUGE`] bytes sampled to tell how the cached core is held.
const PROBES: usize = 8;
/// The slowest re-read worth its cost: below it, the read costs more than the walk gains.
/// A 10M-key dry run over 4 KiB pages took 1.5 ns a byte of core longer than over 2 MiB
/// pages (a 1M mixed one 2 ns), so the two even out at about 640 MiB/s.
pub const MIN_REREAD_RATE: f64 = (768u64 << 20) as f64;
/// How much is re-read before its rate is judged.
const JUDGE_AFTER: usize = 256 << 20;

/// Whether the core's cached pages may be dropped and read again (`--keep-page-cache`
/// says no).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CachePolicy {
    /// Map huge pages where they can be had, re-reading a core cached in small pages.
    #[default]
    HugePages,
    /// Only ask for huge pages; never drop or read ahead anything.
    Keep,
}

/// How the sampled windows of the cached core were held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// None of the sampled windows was wholly cached.
    NotCached,
    /// The cached windows mapped as huge pages.
    HugePages,
    /// The cached windows mapped as small pages.
    SmallPages,
}

impl Found {
    /// How the summary says it.
    fn says(self) -> &'static str {
        match self {
            Found::NotCached => "not cached",
            Found::HugePages => "cached in huge pages",
            Found::SmallPages => "cached in small pages",
        }
    }
}

/// What was done to the core's page cache, for the log and the report.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheOutcome {
    /// One line saying what was found and done.
    pub summary: String,
}

impl CacheOutcome {
    fn said(summary: impl Into<String>) -> Self {
        CacheOutcome {
            summary: summary.into(),
        }
    }
}

/// Whether a chunk of `len` bytes that mapped `huge` bytes as huge pages is held mostly in
/// small folios: worth dropping and reading again.
fn held_small(len: usize, huge: u64) -> bool {
    // (A chunk's tail short of a huge page never maps as one: callers leave it out.)
    huge < (len as u64 / 4).saturating_mul(3)
}

/// Judges the sample: windows wholly cached, and of those the bytes mapped as huge pages.
fn judge(cached_windows: usize, pmd_bytes: u64) -> Found {
    if cached_windows == 0 {
        Found::NotCached
    } else if pmd_bytes.saturating_mul(2) >= (cached_windows * HUGE) as u64 {
        Found::HugePages
    } else {
        Found::SmallPages
    }
}

/// Whether a re-read that has read `bytes` in `took` should go on dropping pages.
fn worth_going_on(bytes: usize, took: Duration) -> bool {
    if bytes < JUDGE_AFTER {
        return true;
    }
    bytes as f64 / took.as_secs_f64().max(1e-9) >= MIN_REREAD_RATE
}

/// The core's mapping, as raw advice calls see it.
struct Mapping<'m> {
    bytes: &'m [u8],
    file: &'m File,
}

impl Mapping<'_> {
    fn base(&self) -> usize {
        self.bytes.as_ptr() as usize
    }

    /// `madvise` over `[off, off + len)` of the mapping, clamped to it.
    fn advise(&self, off: usize, len: usize, advice: libc::c_int) -> bool {
        let len = len.min(self.bytes.len().saturating_sub(off));
        if len == 0 {
            return true;
        }
        // SAFETY: the range lies inside the live read-only shared mapping of `bytes`. The
        // advice used here (HUGEPAGE, POPULATE_READ, DONTNEED on a shared file mapping)
        // never changes what the mapping reads: DONTNEED only drops this process's page
        // table entries, and the next access maps the file's same bytes again.
        unsafe {
            libc::madvise(
                self.bytes.as_ptr().wrapping_add(off) as *mut libc::c_void,
                len,
                advice,
            ) == 0
        }
    }

    /// Resident pages of `[off, off + len)` (`mincore`), or None when it cannot be told.
    fn resident_pages(&self, off: usize, len: usize) -> Option<usize> {
        let pages = len.div_ceil(4096);
        let mut vec = vec![0u8; pages];
        // SAFETY: the range lies inside the mapping (callers pass whole windows of it) and
        // `vec` holds a byte per page of it.
        let r = unsafe {
            libc::mincore(
                self.bytes.as_ptr().wrapping_add(off) as *mut libc::c_void,
                len,
                vec.as_mut_ptr(),
            )
        };
        (r == 0).then(|| vec.iter().filter(|&&b| b & 1 != 0).count())
    }

    /// Drops the cached pages of `[off, off + len)` of the file that nothing maps and
    /// that are clean: pages still waiting to be written back stay (and small).
    fn drop_cached(&self, off: usize, len: usize) {
        let fd = self.file.as_raw_fd();
        // SAFETY: a plain syscall on an open descriptor; it reads no memory of ours.
        unsafe {
            libc::posix_fadvise(
                fd,
                off as libc::off64_t,
                len as libc::off64_t,
                libc::POSIX_FADV_DONTNEED,
            );
        }
    }

    /// Bytes of the mapping mapped as huge pages, from `/proc/self/smaps`.
    fn pmd_mapped(&self) -> Option<u64> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        pmd_mapped_of(&smaps, self.base())
    }
}

/// `FilePmdMapped` of the mapping starting at `base`, in bytes, from an smaps text.
fn pmd_mapped_of(smaps: &str, base: usize) -> Option<u64> {
    let head = format!("{base:x}-");
    let mut lines = smaps.lines().skip_while(|l| !l.starts_with(&head));
    lines.next()?;
    lines
        // The next mapping's header line starts with its address range.
        .take_while(|l| !l.split(' ').next().is_some_and(|w| w.contains('-')))
        .find_map(|l| l.strip_prefix("FilePmdMapped:"))
        .and_then(kib_bytes)
}

/// The bytes of a `/proc` figure in kB (`"  1234 kB"`).
fn kib_bytes(figure: &str) -> Option<u64> {
    let kb = figure
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kb.saturating_mul(1024))
}

/// Room left beside the core when it is read in whole: what a loaded machine needs for
/// everything else.
const MEMORY_MARGIN: u64 = 1 << 30;

/// Whether reading in a core of `len` bytes leaves the margin of `available` memory.
fn fits_in_memory(len: u64, available: u64) -> bool {
    len.checked_add(MEMORY_MARGIN)
        .is_some_and(|n| n <= available)
}

/// `MemAvailable` of `/proc/meminfo`, in bytes.
fn mem_available() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(kib_bytes)
}

fn thp_enabled() -> bool {
    std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
        .is_ok_and(|s| !s.contains("[never]"))
}

fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / f64::from(1u32 << 30))
}

/// The re-reading of a core's chunks that the cache holds in small folios.
#[derive(Default)]
struct Reread {
    /// Bytes dropped and read again (not those that stayed).
    bytes: usize,
    /// Bytes that could not be dropped (dirty, or mapped by another process).
    stuck: usize,
    /// Why it stopped before the end, if it did.
    stopped: Option<String>,
    /// Time spent dropping and reading again (judging a chunk is not counted).
    spent: Duration,
    /// Whether a chunk read again has shown how the file system reads it back.
    judged_folios: bool,
}

impl Reread {
    /// Judges each chunk of the mapping by the huge pages it maps afresh, and drops and
    /// reads again those held mostly in small folios, while that pays (see the module).
    fn sweep(&mut self, m: &Mapping<'_>, task: &mut dyn crate::progress::Task) {
        let len = m.bytes.len();
        // Only the chunk being judged is mapped, so that each read of smaps walks that
        // chunk's page tables alone (the whole core's, chunk after chunk, would cost
        // seconds on a large core in small pages); the whole is mapped again at the end.
        m.advise(0, len, libc::MADV_DONTNEED);
        for off in (0..len).step_by(CHUNK) {
            let n = CHUNK.min(len - off);
            task.advance(n as u64);
            if self.stopped.is_some() {
                continue;
            }
            // A core is often cached in both sizes (a part evicted and read back, or
            // written again), so each chunk is judged on its own, by the huge pages it
            // maps. The tail of the file short of a huge page never maps as one.
            let whole = n / HUGE * HUGE;
            if !m.advise(off, n, libc::MADV_POPULATE_READ) {
                break;
            }
            if held_small(whole, m.pmd_mapped().unwrap_or(0)) {
                self.reread_chunk(m, off, n);
            }
            m.advise(off, n, libc::MADV_DONTNEED);
        }
        // EINVAL before Linux 5.14; anything else (a read error) is met by the walk's own
        // reads, which fault the page in or fail there.
        m.advise(0, len, libc::MADV_POPULATE_READ);
    }

    /// Drops the chunk `[off, off + n)` (mapped alone) from the cache and reads it again.
    fn reread_chunk(&mut self, m: &Mapping<'_>, off: usize, n: usize) {
        let whole = n / HUGE * HUGE;
        let t = Instant::now();
        // Our own entries first: the cache drops only pages that nothing maps.
        m.advise(off, n, libc::MADV_DONTNEED);
        m.drop_cached(off, n);
        // What stayed was not written back yet (or another process maps it).
        let stayed = m.resident_pages(off, n).unwrap_or(0) * 4096;
        self.stuck += stayed;
        let read = m.advise(off, n, libc::MADV_POPULATE_READ);
        self.spent += t.elapsed();
        if !read {
            return;
        }
        // Pages that stayed were not read again.
        self.bytes += n.saturating_sub(stayed);
        if stayed < n / 2 && !self.judged_folios {
            // The first chunk read again tells whether it is worth it at all: a file
            // system without large folios reads the file back in 4 KiB folios.
            self.judged_folios = true;
            if held_small(whole, m.pmd_mapped().unwrap_or(0)) {
                self.stopped = Some(
                    "stopped re-reading: the file system reads this file back in 4 KiB folios"
                        .to_owned(),
                );
                return;
            }
        }
        if !worth_going_on(self.bytes, self.spent) {
            self.stopped = Some(format!(
                "stopped re-reading after {} at {:.0} MiB/s (slower than the walk gains)",
                gib(self.bytes as u64),
                self.bytes as f64 / self.spent.as_secs_f64().max(1e-9) / 1048576.0
            ));
        }
    }
}

/// Prepares the page cache of the core mapped at `bytes` from `file` (see the module).
pub fn prepare(
    file: &File,
    bytes: &[u8],
    policy: CachePolicy,
    progress: &ProgressHandle,
) -> CacheOutcome {
    let m = Mapping { bytes, file };
    let len = bytes.len();
    if len < MIN_CORE {
        return CacheOutcome::said("left as it is: the core is small");
    }
    if !m.base().is_multiple_of(HUGE) {
        return CacheOutcome::said("left as it is: the mapping is not aligned to 2 MiB");
    }
    if !thp_enabled() {
        return CacheOutcome::said(
            "left as it is: transparent huge pages are off (/sys/kernel/mm/transparent_hugepage/enabled)",
        );
    }
    if !m.advise(0, len, libc::MADV_HUGEPAGE) {
        return CacheOutcome::said("left as it is: the kernel refused MADV_HUGEPAGE");
    }
    // The sample: windows spread over the core; those wholly cached are mapped, and how
    // they map tells how the cache holds them.
    let mut cached = 0;
    for i in 1..=PROBES {
        let off = (len / (PROBES + 1) * i) / HUGE * HUGE;
        if off + HUGE <= len && m.resident_pages(off, HUGE) == Some(HUGE / 4096) {
            m.advise(off, HUGE, libc::MADV_POPULATE_READ);
            cached += 1;
        }
    }
    let found = judge(cached, m.pmd_mapped().unwrap_or(0));
    if policy == CachePolicy::Keep {
        return CacheOutcome::said(format!(
            "{}; left as it is (--keep-page-cache)",
            found.says()
        ));
    }
    // Reading in more than memory holds would push out the start of the core to make
    // room for its end, and the walk would read it all again.
    if let Some(avail) = mem_available() {
        if !fits_in_memory(len as u64, avail) {
            return CacheOutcome::said(format!(
                "left as it is (huge pages asked for as the walk reads it): the core ({}) does not fit in the memory available ({})",
                gib(len as u64),
                gib(avail)
            ));
        }
    }
    let started = Instant::now();
    // A core found cached in huge pages, or not at all, is read in (or mapped) whole
    // first; only if that leaves a part in small pages are its chunks judged one by one.
    let mut sweep = true;
    if found != Found::SmallPages {
        let mut task = progress.start("reading the core into huge pages", len as u64, Unit::Bytes);
        for off in (0..len).step_by(CHUNK) {
            let n = CHUNK.min(len - off);
            // EINVAL before Linux 5.14; anything else (a read error) is met by the walk's
            // own reads, which fault the page in or fail there.
            if !m.advise(off, n, libc::MADV_POPULATE_READ) {
                break;
            }
            task.advance(n as u64);
        }
        let small = ((len / HUGE * HUGE) as u64).saturating_sub(m.pmd_mapped().unwrap_or(0));
        sweep = small >= (CHUNK / 2) as u64;
    }
    let mut reread = Reread::default();
    if sweep {
        let mut task = progress.start(
            "reading the core's small pages again into huge pages",
            len as u64,
            Unit::Bytes,
        );
        reread.sweep(&m, task.as_mut());
    }
    let took = started.elapsed().as_secs_f64();
    let huge = m.pmd_mapped().unwrap_or(0);
    let mut what = found.says().to_owned();
    if found == Found::NotCached {
        what.push_str("; read in");
    }
    if reread.bytes > 0 {
        what.push_str(&format!(
            "; re-read {} held in small pages",
            gib(reread.bytes as u64)
        ));
    }
    let mut summary = format!(
        "{what} in {took:.2} s: {} of {} mapped in huge pages",
        gib(huge),
        gib(len as u64)
    );
    if reread.stuck >= HUGE {
        summary.push_str(&format!(
            "; {} stayed cached in small pages, not yet written back to disk (if the core was just written, run `sync` first, or wait half a minute, for a faster walk), or held by tmpfs or another process",
            gib(reread.stuck as u64)
        ));
    }
    if let Some(s) = reread.stopped {
        summary.push_str("; ");
        summary.push_str(&s);
    }
    CacheOutcome { summary }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_decides_what_is_done() {
        assert_eq!(judge(0, 0), Found::NotCached);
        assert_eq!(judge(4, 4 * HUGE as u64), Found::HugePages);
        assert_eq!(judge(4, 2 * HUGE as u64), Found::HugePages);
        assert_eq!(judge(4, HUGE as u64), Found::SmallPages);
        assert_eq!(judge(4, 0), Found::SmallPages);
        // A chunk is read again unless three quarters of it mapped as huge pages.
        let chunk = CHUNK as u64;
        assert!(held_small(CHUNK, 0));
        assert!(held_small(CHUNK, chunk / 2));
        assert!(!held_small(CHUNK, chunk / 4 * 3));
        assert!(!held_small(CHUNK, chunk));
    }

    #[test]
    fn a_core_is_read_in_only_when_it_fits_in_memory() {
        assert!(fits_in_memory(1 << 30, 3 << 30));
        assert!(!fits_in_memory(2 << 30, (3 << 30) - 1), "no margin left");
        assert!(!fits_in_memory(100 << 30, 64 << 30));
        assert!(!fits_in_memory(u64::MAX, u64::MAX));
        assert!(mem_available().is_some_and(|m| m > 0), "/proc/meminfo read");
    }

    #[test]
    fn a_slow_reread_stops_once_judged() {
        let s = Duration::from_secs(1);
        assert!(
            worth_going_on(JUDGE_AFTER - 1, s * 100),
            "too early to judge"
        );
        assert!(worth_going_on(2 << 30, s), "2 GiB/s");
        assert!(worth_going_on(800 << 20, s), "800 MiB/s");
        assert!(!worth_going_on(512 << 20, s), "512 MiB/s");
    }

    #[test]
    fn smaps_is_read_for_the_right_mapping() {
        let smaps = "\
55d0a0000000-55d0a0200000 r--s 00000000 fe:00 1 /a
Rss:                 100 kB
FilePmdMapped:      2048 kB
7f0000000000-7f0000400000 r--s 00000000 fe:00 2 /core
Size:               4096 kB
FilePmdMapped:      4096 kB
VmFlags: rd mr me ms
7f0000400000-7f0000500000 r--p 00000000 fe:00 3 /b
FilePmdMapped:      1024 kB
";
        assert_eq!(pmd_mapped_of(smaps, 0x7f00_0000_0000), Some(4 << 20));
        assert_eq!(pmd_mapped_of(smaps, 0x55d0_a000_0000), Some(2 << 20));
        assert_eq!(pmd_mapped_of(smaps, 0x1000), None);
        let none = "7f0000000000-7f0000400000 r--s 0 fe:00 2 /core\nRss: 4 kB\n7f0000400000-7f0000500000 r--p\nFilePmdMapped: 8 kB\n";
        assert_eq!(
            pmd_mapped_of(none, 0x7f00_0000_0000),
            None,
            "not the next mapping's"
        );
    }

    /// A real file mapped over its whole length: the probe and the plan run without harm,
    /// and the bytes read through the mapping stay the file's.
    #[test]
    fn preparing_a_file_keeps_its_bytes() {
        use std::io::Write;
        let mut f = tempfile::tempfile().unwrap();
        let block: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
        for _ in 0..(MIN_CORE >> 20) + 2 {
            f.write_all(&block).unwrap();
        }
        // SAFETY: a private temporary file, not changed while mapped.
        let map = unsafe { memmap2::Mmap::map(&f) }.unwrap();
        for policy in [CachePolicy::HugePages, CachePolicy::Keep] {
            let out = prepare(&f, &map, policy, &ProgressHandle::default());
            assert!(!out.summary.is_empty());
            for (i, b) in map.iter().enumerate().step_by(4093) {
                assert_eq!(*b, (i % (1 << 20) % 251) as u8);
            }
        }
    }
}
