//! The walker target: the sample core, mutated by records, walked whole; every dump it
//! writes is read back and checked against the report.

// A part of this crate, split by target: it shares the root's imports and helpers.
use super::*;

/// The decompressed sample core ([`SAMPLE_CORE`], or the file `REDIS_RESCUE_FUZZ_CORE`
/// names), loaded once per process.
pub fn sample_core() -> Result<&'static [u8], String> {
    static CORE: OnceLock<Result<Vec<u8>, String>> = OnceLock::new();
    CORE.get_or_init(|| {
        let path = std::env::var_os("REDIS_RESCUE_FUZZ_CORE")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                // This crate is fuzz/entry; the sample lives under the repository's tests/.
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../..")
                    .join(SAMPLE_CORE)
            });
        let file = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        if file.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            zstd::stream::decode_all(&file[..]).map_err(|e| format!("{}: {e}", path.display()))
        } else {
            Ok(file)
        }
    })
    .as_ref()
    .map(|v| v.as_slice())
    .map_err(Clone::clone)
}

/// How [`walk_core`] writes what it recovers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkSinkKind {
    /// Write an RDB of this version into memory and read it back.
    Rdb(u32),
    /// Count only (`--dry-run`).
    Counting,
}

/// Settings of one [`walk_core`] run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalkSettings {
    /// Where the keys go; `Rdb(0)` means the source's own RDB version.
    pub sink: WalkSinkKind,
    /// `--salvage`.
    pub salvage: bool,
}

impl Default for WalkSettings {
    fn default() -> Self {
        WalkSettings {
            sink: WalkSinkKind::Rdb(0),
            salvage: false,
        }
    }
}

impl WalkSettings {
    /// The settings a trailing byte of a [`walker`] input selects: bit 0 salvage, bits
    /// 1-3 the RDB version (0 and 7: the source's, else 6, 7, 8, 9, 11, 12), bit 4 count
    /// only.
    pub fn from_byte(b: u8) -> Self {
        let version = match (b >> 1) & 7 {
            1 => 6,
            2 => 7,
            3 => 8,
            4 => 9,
            5 => 11,
            6 => 12,
            _ => 0,
        };
        WalkSettings {
            sink: if b & 16 != 0 {
                WalkSinkKind::Counting
            } else {
                WalkSinkKind::Rdb(version)
            },
            salvage: b & 1 != 0,
        }
    }
}

/// The layout for a core: the shipped profile with its build-id, else [`SAMPLE_PROFILE`].
pub(crate) fn layout_for(build_id: Option<&str>) -> Option<&'static Layout> {
    static ALL: OnceLock<Vec<(Option<String>, String, Layout)>> = OnceLock::new();
    let all = ALL.get_or_init(|| {
        redis_rescue::profile::shipped_profiles()
            .unwrap_or_default()
            .iter()
            .filter_map(|f| {
                let l = Layout::resolve(f).ok()?;
                Some((f.identity.build_id.clone(), f.name.clone(), l))
            })
            .collect()
    });
    let by_id = build_id.and_then(|id| all.iter().find(|(b, _, _)| b.as_deref() == Some(id)));
    by_id
        .or_else(|| all.iter().find(|(_, n, _)| n == SAMPLE_PROFILE))
        .map(|(_, _, l)| l)
}

/// Recover the keyspace of the core in `core` the way `redis-rescue --no-binary` does
/// (profile by build-id, `server` from the profile's symbols), into an in-memory RDB
/// that is then read back and checked against the report.
///
/// `Err` when the pipeline stops before the walk (not a core, no profile, no `server`):
/// the error the tool would print.
pub fn walk_core(core: &[u8], settings: WalkSettings) -> Result<Report, String> {
    let mut rdb_buf = Vec::new();
    walk_core_into(core, settings, &mut rdb_buf)
}

pub(crate) fn walk_core_into(
    core: &[u8],
    settings: WalkSettings,
    rdb_buf: &mut Vec<u8>,
) -> Result<Report, String> {
    let core = CoreFile::parse(core).map_err(|e| e.to_string())?;
    let exe = core
        .executable()
        .ok_or("the core names no executable (NT_FILE)")?;
    let layout = layout_for(exe.build_id.as_deref()).ok_or("no shipped profile resolves")?;
    let offset = layout
        .server_symbol
        .map(|s| s.offset)
        .ok_or("the profile has no `server` symbol")?;
    let server = exe.base.checked_add(offset).ok_or("address overflow")?;
    let walker = KeyspaceWalker::new(&core.space, layout).with_options(WalkOptions {
        salvage: settings.salvage,
        key_timeout: None,
        bucket_check: None,
        include_importing: false,
        threads: 1,
        shared_integers: None,
    });
    let dbs = walker.databases(server).map_err(|e| e.to_string())?;
    let version = match settings.sink {
        WalkSinkKind::Rdb(0) | WalkSinkKind::Counting => layout.identity.rdb_version,
        WalkSinkKind::Rdb(v) => v,
    };
    let source = Source {
        profile: layout.name.clone(),
        ..Source::default()
    };
    let mut report = ReportBuilder::new(source, version, settings.sink == WalkSinkKind::Counting);
    let functions = match (
        &layout.functions,
        layout.functions.as_ref().and_then(|f| f.ctx_symbol),
    ) {
        (Some(_), Some(sym)) => walker
            .functions(exe.base.wrapping_add(sym.offset))
            .map_err(|f| FunctionsLost::unreadable(&f)),
        _ => Ok(Vec::new()),
    };
    let lua = walker.lua_scripts(server);
    let eviction = walker.eviction(server);
    let _ = eviction.name();

    if settings.sink == WalkSinkKind::Counting {
        report.set_functions(functions.map(|f| f.len() as u64));
        walker
            .walk(
                &dbs,
                &mut Recording::new(&mut CountingSink, &mut report),
                |_| {},
            )
            .map_err(|e| e.to_string())?;
        return Ok(finish_report(report));
    }

    rdb_buf.clear();
    let aux = [("redis-ver", layout.identity.redis_version.clone())];
    let mut sink = RdbSink::new(&mut *rdb_buf, version, &aux).map_err(|e| e.to_string())?;
    let functions = functions.and_then(|libs| match sink.functions(&libs) {
        Ok(()) => Ok(libs.len() as u64),
        Err(e) => Err(FunctionsLost::not_written(e)),
    });
    let functions_written = *functions.as_ref().unwrap_or(&0);
    report.set_functions(functions);
    if let Some(Ok(scripts)) = lua {
        let _ = sink.lua_scripts(&scripts);
    }
    sink.set_eviction(eviction);
    walker
        .walk(&dbs, &mut Recording::new(&mut sink, &mut report), |_| {})
        .map_err(|e| e.to_string())?;
    report.set_reencoded(sink.reencoded());
    let report = finish_report(report);
    if let Err(e) = sink.finish() {
        panic!("finishing an in-memory RDB failed: {e}");
    }
    check_rdb(rdb_buf, &report, version, functions_written);
    Ok(report)
}

/// Closes the report and uses its accessors.
pub(crate) fn finish_report(report: ReportBuilder) -> Report {
    let report = report.finish();
    let _ = report.complete();
    let _ = report.table();
    if let Err(e) = serde_json::to_string(&report) {
        panic!("the report does not serialize: {e}");
    }
    let t = &report.totals;
    assert!(t.lost <= t.expected && t.partial <= t.keys && t.expires <= t.keys);
    report
}

/// The RDB written from a walk reads back whole, and holds exactly the keys the report
/// counts as recovered, per db.
pub(crate) fn check_rdb(rdb: &[u8], report: &Report, version: u32, functions: u64) {
    let mut reader = match rdb::RdbReader::new(rdb) {
        Ok(r) => r,
        Err(e) => panic!("the RDB written does not open: {e}"),
    };
    assert_eq!(reader.version(), version);
    let mut per_db = std::collections::BTreeMap::<u32, (u64, u64)>::new();
    loop {
        match reader.next_entry() {
            Ok(Some(e)) => {
                let slot = per_db.entry(e.db).or_default();
                slot.0 += 1;
                slot.1 += u64::from(e.expire_ms.is_some());
            }
            Ok(None) => break,
            Err(e) => panic!(
                "the RDB written does not read back (after {} keys): {e}",
                reader.keys_read()
            ),
        }
    }
    assert_eq!(reader.functions(), functions, "function libraries written");
    for (db, r) in &report.dbs {
        let (keys, expires) = per_db.remove(db).unwrap_or_default();
        assert_eq!(
            keys, r.keys,
            "db {db}: keys in the RDB != keys in the report"
        );
        assert_eq!(
            expires, r.expires,
            "db {db}: TTLs in the RDB != the report's"
        );
    }
    assert!(per_db.is_empty(), "keys in dbs the report does not list");
}

/// A decoded mutation record of [`walker`].
#[derive(Debug, Clone, Copy)]
enum Mutation {
    /// XOR one byte of live memory.
    Xor { pos: u64, mask: u8 },
    /// XOR one byte anywhere in the file (headers and notes included).
    XorAnywhere { pos: u64, mask: u8 },
    /// Overwrite an aligned word of live memory with the word at `src` (in the
    /// pristine core) plus `delta * 8`: a pointer into something else.
    Pointer { pos: u64, src: u64, delta: i8 },
    /// Add `delta` to an aligned word of live memory (0: zero it): a length,
    /// counter or pointer off by a little.
    Add { pos: u64, delta: i8 },
}

impl Mutation {
    fn decode(rec: &[u8; MUTATION_RECORD]) -> Self {
        let [w0, w1, w2, w3, w4, w5, w6, w7, b] = *rec;
        let raw = u64::from_le_bytes([w0, w1, w2, w3, w4, w5, w6, w7]);
        let pos = raw & ((1 << 62) - 1);
        let mask = if b == 0 { 0xFF } else { b };
        match raw >> 62 {
            0 => Mutation::Xor { pos, mask },
            1 => Mutation::XorAnywhere { pos, mask },
            2 => Mutation::Pointer {
                pos: pos & 0xFFFF_FFFF,
                src: pos >> 32,
                delta: b as i8,
            },
            _ => Mutation::Add {
                pos,
                delta: b as i8,
            },
        }
    }

    /// Encodes the record (for seeds and tests).
    fn encode(self) -> [u8; MUTATION_RECORD] {
        let (kind, pos, b): (u64, u64, u8) = match self {
            Mutation::Xor { pos, mask } => (0, pos, mask),
            Mutation::XorAnywhere { pos, mask } => (1, pos, mask),
            Mutation::Pointer { pos, src, delta } => {
                (2, (pos & 0xFFFF_FFFF) | (src << 32), delta as u8)
            }
            Mutation::Add { pos, delta } => (3, pos, delta as u8),
        };
        let raw = (kind << 62) | (pos & ((1 << 62) - 1));
        let mut out = [0u8; MUTATION_RECORD];
        for (slot, v) in out.iter_mut().zip(raw.to_le_bytes().into_iter().chain([b])) {
            *slot = v;
        }
        out
    }
}

/// A mutation record of [`walker`] that XORs byte `pos` (of live memory) with
/// `mask`: for seeds and tests.
pub fn xor_record(pos: u64, mask: u8) -> [u8; MUTATION_RECORD] {
    Mutation::Xor { pos, mask }.encode()
}

/// A mutation record of [`walker`] that replaces the word at `pos` with the word at
/// `src` plus `delta * 8` (both in live memory): for seeds and tests.
pub fn pointer_record(pos: u32, src: u32, delta: i8) -> [u8; MUTATION_RECORD] {
    Mutation::Pointer {
        pos: u64::from(pos),
        src: u64::from(src),
        delta,
    }
    .encode()
}

/// A mutation record of [`walker`] that adds `delta` to the word at `pos` (0: zeroes
/// it): for seeds and tests.
pub fn add_record(pos: u64, delta: i8) -> [u8; MUTATION_RECORD] {
    Mutation::Add { pos, delta }.encode()
}

/// A mutation record of [`walker`] that XORs byte `pos` of the whole file.
pub fn xor_anywhere_record(pos: u64, mask: u8) -> [u8; MUTATION_RECORD] {
    Mutation::XorAnywhere { pos, mask }.encode()
}

/// Granule of the live-memory index: mutations aim at granules holding a non-zero byte.
pub(crate) const GRANULE: usize = 16;

/// The process-wide mutable copy of the core [`walker`] damages and repairs.
pub(crate) struct Working {
    /// Address and length of the pristine core copied (identifies it).
    source: (usize, usize),
    bytes: Vec<u8>,
    /// Live memory: runs `(file offset, length)` of granules of the writable PT_LOAD
    /// segments that hold a non-zero byte (most of a core's writable memory is zero pages
    /// the walker never reads), and the running total before each run.
    live: Vec<(usize, usize)>,
    live_before: Vec<u64>,
    live_total: u64,
    /// True while `bytes` may differ from the pristine core.
    dirty: bool,
    /// Ranges mutated by the current input.
    touched: Vec<(usize, usize)>,
    /// The RDB buffer, reused.
    rdb: Vec<u8>,
}

/// File ranges of the writable segments' dumped bytes (the whole file if none).
pub(crate) fn writable_ranges(core: &[u8]) -> Vec<(usize, usize)> {
    let ranges: Vec<(usize, usize)> = CoreFile::parse(core)
        .map(|c| {
            c.space
                .segments()
                .iter()
                .filter(|s| s.flags & PF_W != 0 && s.present > 0)
                .filter_map(|s| {
                    let start = usize::try_from(s.file_offset).ok()?;
                    let len = usize::try_from(s.present).ok()?;
                    (start.checked_add(len)? <= core.len()).then_some((start, len))
                })
                .collect()
        })
        .unwrap_or_default();
    if ranges.is_empty() {
        vec![(0, core.len())]
    } else {
        ranges
    }
}

/// Runs of granules holding a non-zero byte inside `ranges` (all of `ranges` if none).
pub(crate) fn live_runs(core: &[u8], ranges: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for &(start, len) in ranges {
        let Some(seg) = core.get(start..start + len) else {
            continue;
        };
        for (i, g) in seg.chunks(GRANULE).enumerate() {
            if g.iter().all(|&b| b == 0) {
                continue;
            }
            let at = start + i * GRANULE;
            match runs.last_mut() {
                Some((s, l)) if *s + *l == at => *l += g.len(),
                _ => runs.push((at, g.len())),
            }
        }
    }
    if runs.is_empty() {
        ranges.to_vec()
    } else {
        runs
    }
}

impl Working {
    fn new() -> Self {
        Working {
            source: (0, 0),
            bytes: Vec::new(),
            live: Vec::new(),
            live_before: Vec::new(),
            live_total: 0,
            dirty: true,
            touched: Vec::new(),
            rdb: Vec::new(),
        }
    }

    /// Makes `bytes` a copy of `core` (copying only when it is another core or dirty).
    fn reset(&mut self, core: &[u8]) {
        let id = (core.as_ptr() as usize, core.len());
        if self.source == id && !self.dirty {
            return;
        }
        self.bytes.clear();
        self.bytes.extend_from_slice(core);
        self.dirty = false;
        self.touched.clear();
        if self.source != id {
            self.source = id;
            self.live = live_runs(core, &writable_ranges(core));
            self.live_before = self
                .live
                .iter()
                .scan(0u64, |acc, r| {
                    let before = *acc;
                    *acc += r.1 as u64;
                    Some(before)
                })
                .collect();
            self.live_total = self.live.iter().map(|r| r.1 as u64).sum();
        }
    }

    /// File offset of byte `pos` of live memory (concatenated, modulo its size).
    fn live_offset(&self, pos: u64) -> usize {
        let rel = pos % self.live_total.max(1);
        let i = self.live_before.partition_point(|&b| b <= rel);
        let Some(i) = i.checked_sub(1) else {
            return 0;
        };
        match (self.live.get(i), self.live_before.get(i)) {
            (Some(&(start, _)), Some(&before)) => start + (rel - before) as usize,
            _ => 0,
        }
    }

    /// The aligned word at `pos` of live memory, kept inside the file.
    fn word_offset(&self, pos: u64) -> Option<usize> {
        let at = self.live_offset(pos) & !7;
        (at.checked_add(8)? <= self.bytes.len()).then_some(at)
    }

    fn apply(&mut self, core: &[u8], m: Mutation) {
        let len = self.bytes.len();
        if len == 0 {
            return;
        }
        match m {
            Mutation::Xor { pos, mask } => {
                let at = self.live_offset(pos);
                self.xor(at, mask);
            }
            Mutation::XorAnywhere { pos, mask } => {
                let at = (pos % len as u64) as usize;
                self.xor(at, mask);
            }
            Mutation::Pointer { pos, src, delta } => {
                let (Some(at), Some(from)) = (self.word_offset(pos), self.word_offset(src)) else {
                    return;
                };
                let word = read_u64(core, from).wrapping_add((i64::from(delta) * 8) as u64);
                self.write_word(at, word);
            }
            Mutation::Add { pos, delta } => {
                let Some(at) = self.word_offset(pos) else {
                    return;
                };
                let word = if delta == 0 {
                    0
                } else {
                    read_u64(&self.bytes, at).wrapping_add(i64::from(delta) as u64)
                };
                self.write_word(at, word);
            }
        }
    }

    fn xor(&mut self, at: usize, mask: u8) {
        if let Some(b) = self.bytes.get_mut(at) {
            *b ^= mask;
            self.touched.push((at, 1));
        }
    }

    fn write_word(&mut self, at: usize, word: u64) {
        if let Some(dst) = self.bytes.get_mut(at..at + 8) {
            dst.copy_from_slice(&word.to_le_bytes());
            self.touched.push((at, 8));
        }
    }

    /// Puts the pristine bytes back where this input changed them.
    fn restore(&mut self, core: &[u8]) {
        for (at, n) in std::mem::take(&mut self.touched) {
            if let (Some(dst), Some(src)) = (self.bytes.get_mut(at..at + n), core.get(at..at + n)) {
                dst.copy_from_slice(src);
            }
        }
        self.dirty = false;
    }
}

pub(crate) fn read_u64(bytes: &[u8], at: usize) -> u64 {
    bytes
        .get(at..at.saturating_add(8))
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_le_bytes)
}

/// Fuzz the whole pipeline over `core` (a decompressed ELF core, normally
/// [`sample_core`]) damaged by `mutations`.
///
/// `mutations` is a sequence of 9-byte records: a u64 little-endian position whose top
/// two bits select the kind, and one byte. Positions of kinds 0, 2 and 3 are taken modulo
/// the size of the core's *live memory*: the 16-byte granules of its writable PT_LOAD
/// segments (heap, stack, data) that hold a non-zero byte, concatenated; most of a
/// core's writable memory is zero pages that nothing points into.
///
/// * kind 0 XORs the byte (0 means 0xFF) into live memory;
/// * kind 1 XORs it at the position modulo the file size (ELF headers and notes too);
/// * kind 2 overwrites an aligned word of live memory (position bits 0-31) with the word
///   at another place of it (bits 32-61) plus the byte (signed) times 8: a pointer to
///   something else;
/// * kind 3 adds the byte (signed; 0 zeroes the word) to an aligned word of live memory.
///
/// A trailing partial record selects [`WalkSettings::from_byte`] with its first byte.
///
/// The core is copied once per process into a working buffer (a core is recognised by
/// its address and length); each call damages the copy in place, walks it
/// ([`walk_core`]) and puts the original bytes back.
pub fn walker(core: &[u8], mutations: &[u8]) {
    let _ = walker_outcome(core, mutations);
}

/// [`walker`], returning what the walk of the damaged core gave: the report, or why the
/// pipeline stopped before the walk.
pub fn walker_outcome(core: &[u8], mutations: &[u8]) -> Result<Report, String> {
    static WORKING: OnceLock<Mutex<Working>> = OnceLock::new();
    let mut w = WORKING
        .get_or_init(|| Mutex::new(Working::new()))
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // A panic in a previous call (a test harness catching it) leaves the copy dirty.
    w.reset(core);
    w.dirty = true;
    let records = mutations.chunks_exact(MUTATION_RECORD);
    let settings = records
        .remainder()
        .first()
        .map_or_else(WalkSettings::default, |&b| WalkSettings::from_byte(b));
    for rec in records {
        if let Ok(rec) = <&[u8; MUTATION_RECORD]>::try_from(rec) {
            w.apply(core, Mutation::decode(rec));
        }
    }
    let mut rdb_buf = std::mem::take(&mut w.rdb);
    let outcome = walk_core_into(&w.bytes, settings, &mut rdb_buf);
    w.rdb = rdb_buf;
    if mutations.is_empty()
        && core.as_ptr() == sample_core().map_or(std::ptr::null(), <[u8]>::as_ptr)
    {
        // The pristine sample recovers whole.
        match &outcome {
            Ok(r) => assert!(r.complete() && r.totals.keys == r.totals.expected),
            Err(e) => panic!("the pristine sample core does not recover: {e}"),
        }
    }
    w.restore(core);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quicklist::{put_bits, put_field};

    #[test]
    fn mutation_records_round_trip() {
        for m in [
            Mutation::Xor { pos: 5, mask: 3 },
            Mutation::XorAnywhere {
                pos: 1 << 40,
                mask: 0xFF,
            },
            Mutation::Pointer {
                pos: 77,
                src: 1234,
                delta: -2,
            },
            Mutation::Add { pos: 9, delta: 1 },
        ] {
            assert_eq!(
                format!("{:?}", Mutation::decode(&m.encode())),
                format!("{m:?}")
            );
        }
    }

    #[test]
    fn bit_fields_written_read_back() {
        let mut buf = vec![0u8; 16];
        let b = Bits {
            bit_offset: 19,
            width: 11,
        };
        put_bits(&mut buf, 2, b, 0x5A5);
        assert_eq!(b.get(&buf[2..]), Some(0x5A5));
        let f = Field { offset: 3, size: 4 };
        put_field(&mut buf, 0, f, 0xDEAD_BEEF);
        assert_eq!(f.get(&buf), Some(0xDEAD_BEEF));
    }
}
