//! Finding the global `server` by the structure of its data, when nothing names it.
//!
//! A statically linked, fully stripped build has no `.symtab`, no `.dynsym` and no DWARF,
//! and a profile recorded for another build (or one that records no symbols) cannot say
//! where `server` is. But `server` is a static of the executable, so it lies in the
//! executable's writable image (`.data`/`.bss`), and the profile's layout says what it
//! must look like there: `server.dbnum` databases at `server.db`, `db[i].id == i`, every
//! keys table header valid, and keys that decode.
//!
//! [`find_server`] tries every 8-aligned position of that image as `&server`. Cheap
//! filters first, on the image's bytes and one lookup each: `dbnum` in `1..=65536`, `db`
//! non-NULL, 8-aligned, and `dbnum` databases readable there, `db[0].id == 0` and
//! `db[dbnum-1].id == dbnum-1`. Survivors get the full invariants of
//! [`KeyspaceWalker::databases`] (every id, every keys table header) and a sample of up to
//! [`SAMPLE_KEYS`] keys decoded (name, object header, value). The answer is accepted only
//! when exactly one passing position's evidence reaches [`MIN_EVIDENCE`]; two such
//! positions are refused and listed, never guessed between. Positions that pass on less
//! evidence (an empty one-db keyspace: two zero words and a pointer, which a static
//! binary's `.data` holds by chance) are set aside and counted, not taken as rivals.
//!
//! When the executable's writable image is not in the core (its load address is unknown
//! without NT_FILE, or its ELF header page was not dumped), the writable images of every
//! ELF image dumped in the core are searched instead (a static binary has only its own,
//! beside the vDSO), then, if nothing passed there, every writable segment, up to
//! [`MAX_SEGMENT_SCAN`] bytes.
//!
//! [`find_functions_ctx`] finds `curr_functions_lib_ctx` (7.0+) the same way, by the
//! `functionsLibCtx` it points to.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use super::{DbInfo, KeyspaceWalker, WalkOptions, MAX_DBNUM};
use crate::core::{AddressSpace, CoreFile};
use crate::profile::layout::{DbArrayFlavor, Field};
use crate::profile::Layout;

/// Keys decoded per candidate that passed the db invariants.
pub const SAMPLE_KEYS: usize = 64;

/// Evidence a unique candidate needs: the ids it matched beyond `db[0].id == 0` (zeroed
/// memory matches that one) plus the sampled keys that decoded. Every one of these is a
/// check that random or zeroed bytes essentially never pass; two rule out the single
/// coincidence (an empty, one-db keyspace is two zero words and one pointer, and refused).
pub const MIN_EVIDENCE: u64 = 2;

/// Of the sampled keys, at least this share (percent) must decode: a real keyspace in a
/// damaged core loses a few, a wrong candidate decodes none.
pub const MIN_DECODED_PERCENT: u64 = 75;

/// Time one sampled value may take to decode (a huge collection is not evidence against).
const SAMPLE_KEY_TIMEOUT: Duration = Duration::from_millis(20);

/// Bytes of writable segments searched when no ELF image header is in the core.
pub const MAX_SEGMENT_SCAN: u64 = 1 << 30;

/// Candidates that passed everything, kept to list when the answer is ambiguous.
pub const MAX_LISTED: usize = 8;

/// Where the search looked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The writable image of the executable whose ELF header is at `base`.
    Executable {
        /// The executable's load address.
        base: u64,
    },
    /// The writable images of every ELF image dumped in the core (the executable's load
    /// address is unknown).
    ElfImages {
        /// How many images had a writable image to search.
        images: usize,
    },
    /// Every writable segment of the core (when no ELF image's writable image held it).
    WritableSegments {
        /// Segments searched.
        segments: usize,
        /// True when [`MAX_SEGMENT_SCAN`] stopped the search early.
        capped: bool,
    },
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Executable { base } => {
                write!(f, "the writable image of the executable loaded at {base:#x}")
            }
            Scope::ElfImages { images } => write!(
                f,
                "the writable images of the {images} ELF image(s) dumped in the core (the executable's load address is unknown)"
            ),
            Scope::WritableSegments { segments, capped } => write!(
                f,
                "{segments} writable segment(s) of the core{}",
                if *capped {
                    format!(", the first {} MiB only", MAX_SEGMENT_SCAN >> 20)
                } else {
                    String::new()
                }
            ),
        }
    }
}

/// A position that passed the db invariants, with its evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The position taken as `&server`.
    pub address: u64,
    /// `server.db`.
    pub db_array: u64,
    /// `server.dbnum`.
    pub dbnum: u64,
    /// `db[i].id == i` checks passed beyond `db[0]`.
    pub ids_matched: u64,
    /// Keys the keys tables count.
    pub keys_expected: u64,
    /// Keys sampled.
    pub keys_sampled: u64,
    /// Sampled keys that decoded.
    pub keys_decoded: u64,
    /// Why the first sampled key that did not decode failed.
    pub first_fault: Option<String>,
}

impl Candidate {
    /// The evidence that counts toward [`MIN_EVIDENCE`].
    pub fn evidence(&self) -> u64 {
        self.ids_matched.saturating_add(self.keys_decoded)
    }

    /// True when its keys decode well enough to be a keyspace (or it holds none).
    fn keys_fit(&self) -> bool {
        if self.keys_expected == 0 {
            return true;
        }
        self.keys_sampled > 0
            && self.keys_decoded.saturating_mul(100)
                >= self.keys_sampled.saturating_mul(MIN_DECODED_PERCENT)
    }

    fn describe(&self) -> String {
        format!(
            "{:#x} (server.db {:#x}, {} dbs, {} keys counted, {} of {} sampled keys decoded{})",
            self.address,
            self.db_array,
            self.dbnum,
            self.keys_expected,
            self.keys_decoded,
            self.keys_sampled,
            self.first_fault
                .as_deref()
                .map(|f| format!("; first failure: {f}"))
                .unwrap_or_default()
        )
    }
}

/// What the scan went through, for the report and for errors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Bytes searched.
    pub bytes: u64,
    /// Positions tried as `&server`.
    pub positions: u64,
    /// Positions with a plausible `dbnum` and a `db` pointer to that many readable dbs.
    pub plausible: u64,
    /// Of those, positions whose first and last db ids matched.
    pub ids_matched: u64,
    /// Of those, positions that passed every id and every keys table header.
    pub tables_valid: u64,
    /// Positions that passed everything on less than [`MIN_EVIDENCE`], set aside.
    pub weak: u64,
    /// Time the search took.
    pub elapsed: Duration,
}

/// `server`, found by structure.
#[derive(Debug, Clone)]
pub struct ServerFound {
    /// Its address.
    pub address: u64,
    /// Where it was searched for.
    pub scope: Scope,
    /// The evidence.
    pub candidate: Candidate,
    /// What the search went through.
    pub stats: ScanStats,
}

impl ServerFound {
    /// One line saying how `server` was found, for the log and the report.
    pub fn summary(&self) -> String {
        let c = &self.candidate;
        let keys = if c.keys_expected == 0 {
            "no keys to sample: the keyspace is empty".to_owned()
        } else {
            format!(
                "{} of {} sampled keys decoded",
                c.keys_decoded, c.keys_sampled
            )
        };
        let weak = match self.stats.weak {
            0 => String::new(),
            n => format!(", {n} set aside on too little evidence"),
        };
        format!(
            "structure search: unique candidate at {:#x} ({} dbs with ids 0..{} and valid keys tables, {keys}; {} positions of {} searched in {:.0?}, {} plausible{weak})",
            self.address,
            c.dbnum,
            c.dbnum.saturating_sub(1),
            self.stats.positions,
            self.scope,
            self.stats.elapsed,
            self.stats.plausible
        )
    }
}

/// Why the structure search gives no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LocateError {
    /// There were no bytes to search.
    #[error("nothing to search: {0}")]
    NothingToScan(String),
    /// No position passed.
    #[error("no position in {scope} holds a `server` whose databases fit profile {profile} ({})", describe_misses(.stats, .near_miss.as_deref()))]
    NotFound {
        /// Where it looked.
        scope: Scope,
        /// The profile.
        profile: String,
        /// What the scan went through.
        stats: ScanStats,
        /// The best candidate that failed the key sample, if any.
        near_miss: Option<Box<Candidate>>,
    },
    /// More than one position passed.
    #[error("{total} positions in {scope} pass as `server` with profile {profile}; refusing to guess between them: {}", .candidates.iter().map(Candidate::describe).collect::<Vec<_>>().join("; "))]
    Ambiguous {
        /// Where it looked.
        scope: Scope,
        /// The profile.
        profile: String,
        /// How many passed.
        total: u64,
        /// The passing positions (the first [`MAX_LISTED`]).
        candidates: Vec<Candidate>,
    },
    /// One position passed, but on too little evidence.
    #[error("the only candidate in {scope}, {}, is too weakly evidenced to trust (evidence {} < {MIN_EVIDENCE}: a single empty database proves little)", .candidate.describe(), .candidate.evidence())]
    WeakEvidence {
        /// Where it looked.
        scope: Scope,
        /// The candidate.
        candidate: Box<Candidate>,
    },
}

fn describe_misses(s: &ScanStats, near: Option<&Candidate>) -> String {
    let mut out = format!(
        "{} positions tried, {} with a plausible dbnum and db pointer, {} with matching first and last db ids, {} with every id and keys table valid",
        s.positions, s.plausible, s.ids_matched, s.tables_valid
    );
    if let Some(c) = near {
        out.push_str(&format!("; best rejected: {}", c.describe()));
    }
    out
}

/// Find `server` in `core` by the structure `layout` describes, searching the writable
/// image of the executable loaded at `exe_base`; when that image is not in the core (or the
/// load address is unknown), the writable images of every ELF image dumped, then, if
/// nothing passed there, every writable segment. Accepts only a unique candidate with
/// enough evidence.
pub fn find_server(
    core: &CoreFile<'_>,
    layout: &Layout,
    exe_base: Option<u64>,
) -> Result<ServerFound, LocateError> {
    let mut result = Err(LocateError::NothingToScan(nothing_to_scan(exe_base)));
    for (scope, regions) in tiers(core, exe_base) {
        result = search(&core.space, layout, scope, &regions);
        if !matches!(result, Err(LocateError::NotFound { .. })) {
            break;
        }
    }
    result
}

/// Bytes of the process to search: `(address, bytes)`, each 8-aligned at its address.
pub type Regions<'a> = Vec<(u64, Cow<'a, [u8]>)>;

fn nothing_to_scan(exe_base: Option<u64>) -> String {
    match exe_base {
        Some(b) => format!("the executable's writable image (load address {b:#x}) is not in the core, and neither is any writable segment"),
        None => "the core holds no writable segment".to_owned(),
    }
}

/// Where a static may be, in the order to search: the executable's writable image alone
/// when it is in the core; else the writable images of every ELF image dumped in it, then
/// every writable segment (up to [`MAX_SEGMENT_SCAN`] bytes).
fn tiers<'a>(core: &CoreFile<'a>, exe_base: Option<u64>) -> Vec<(Scope, Regions<'a>)> {
    if let Some(base) = exe_base {
        let image = core.writable_image(base);
        if image.iter().any(|(_, b)| !b.is_empty()) {
            return vec![(Scope::Executable { base }, image)];
        }
    }
    let mut out = Vec::new();
    let mut images = 0;
    let mut elf = Vec::new();
    for s in core.space.segments().iter().filter(|s| s.present >= 64) {
        if !matches!(core.space.read_array::<4>(s.vaddr), Ok(m) if m == *b"\x7fELF") {
            continue;
        }
        let image = core.writable_image(s.vaddr);
        if image.iter().any(|(_, b)| !b.is_empty()) {
            images += 1;
            elf.extend(image);
        }
    }
    if !elf.is_empty() {
        out.push((Scope::ElfImages { images }, elf));
    }
    let mut total = 0u64;
    let mut capped = false;
    let mut segments = Vec::new();
    for s in core.space.segments().iter().filter(|s| s.flags & 2 != 0) {
        if total >= MAX_SEGMENT_SCAN {
            capped = true;
            break;
        }
        let len = s.present.min(MAX_SEGMENT_SCAN - total);
        if let Ok(b) = core.space.read(s.vaddr, len as usize) {
            total += len;
            segments.push((s.vaddr, b));
        }
    }
    if !segments.is_empty() {
        out.push((
            Scope::WritableSegments {
                segments: segments.len(),
                capped,
            },
            segments,
        ));
    }
    out
}

/// Search `regions` (`(address, bytes)`, each 8-aligned at its address) of `space` for
/// `server` with `layout`; `scope` says what the regions are.
pub fn search(
    space: &AddressSpace<'_>,
    layout: &Layout,
    scope: Scope,
    regions: &[(u64, Cow<'_, [u8]>)],
) -> Result<ServerFound, LocateError> {
    let started = Instant::now();
    let walker = KeyspaceWalker::new(space, layout).with_options(WalkOptions {
        key_timeout: Some(SAMPLE_KEY_TIMEOUT),
        ..WalkOptions::default()
    });
    let mut stats = ScanStats::default();
    // Passing positions with enough evidence, and those without (listed only when no
    // position has enough).
    let mut strong: Vec<Candidate> = Vec::new();
    let mut weak: Vec<Candidate> = Vec::new();
    let mut near_miss: Option<Box<Candidate>> = None;
    let mut passing = 0u64;
    for (start, bytes) in regions {
        stats.bytes = stats.bytes.saturating_add(bytes.len() as u64);
        // Every 8-aligned position of the region. Near its end a field is read from the
        // core instead: `server` may continue into the next segment (`.bss` dumped apart
        // from `.data`), and `databases` reads the struct from the core anyway.
        for at in (0..bytes.len()).step_by(8) {
            stats.positions += 1;
            let addr = start.wrapping_add(at as u64);
            let field = |f: Field| {
                bytes
                    .get(at..)
                    .and_then(|b| f.get(b))
                    .or_else(|| space.uint(addr.wrapping_add(f.offset), f.size).ok())
            };
            let Some((db_array, dbnum)) = plausible(
                space,
                layout,
                field(layout.server.db),
                field(layout.server.dbnum),
            ) else {
                continue;
            };
            stats.plausible += 1;
            if !ends_match(space, layout, db_array, dbnum) {
                continue;
            }
            stats.ids_matched += 1;
            let Ok(dbs) = walker.databases(addr) else {
                continue;
            };
            if dbs.iter().any(|d| d.keys.is_err()) {
                continue;
            }
            stats.tables_valid += 1;
            let c = evidence(&walker, addr, db_array, dbnum, &dbs);
            if c.keys_fit() {
                let list = if c.evidence() >= MIN_EVIDENCE {
                    passing += 1;
                    &mut strong
                } else {
                    stats.weak += 1;
                    &mut weak
                };
                // Beyond MAX_LISTED they are only counted: the listing shows the ambiguity.
                if list.len() < MAX_LISTED {
                    list.push(c);
                }
            } else if near_miss
                .as_ref()
                .is_none_or(|n| c.keys_decoded > n.keys_decoded)
            {
                near_miss = Some(Box::new(c));
            }
        }
    }
    stats.elapsed = started.elapsed();
    let profile = layout.name.clone();
    match (passing, stats.weak) {
        (0, 0) => Err(LocateError::NotFound {
            scope,
            profile,
            stats,
            near_miss,
        }),
        (0, 1) => match weak.pop() {
            Some(candidate) => Err(LocateError::WeakEvidence {
                scope,
                candidate: Box::new(candidate),
            }),
            None => Err(LocateError::NothingToScan(
                "internal: lost the candidate".into(),
            )),
        },
        (0, n) => Err(LocateError::Ambiguous {
            scope,
            profile,
            total: n,
            candidates: weak,
        }),
        (1, _) => {
            let Some(candidate) = strong.pop() else {
                return Err(LocateError::NothingToScan(
                    "internal: lost the candidate".into(),
                ));
            };
            Ok(ServerFound {
                address: candidate.address,
                scope,
                candidate,
                stats,
            })
        }
        _ => Err(LocateError::Ambiguous {
            scope,
            profile,
            total: passing,
            candidates: strong,
        }),
    }
}

/// The cheap filter on the `server.db` and `server.dbnum` read at a position: `(db
/// pointer, dbnum)` when `dbnum` is in range and `db` is a non-NULL, 8-aligned pointer to
/// that many readable databases.
fn plausible(
    space: &AddressSpace<'_>,
    layout: &Layout,
    db: Option<u64>,
    dbnum: Option<u64>,
) -> Option<(u64, u64)> {
    let dbnum = dbnum? as u32 as i32 as i64;
    if dbnum < 1 || dbnum as u64 > MAX_DBNUM {
        return None;
    }
    let dbnum = dbnum as u64;
    let db = db?;
    if db == 0 || db % 8 != 0 {
        return None;
    }
    let elem = match layout.features.db_array {
        DbArrayFlavor::Structs => layout.db.size,
        DbArrayFlavor::Pointers => 8,
    };
    // One lookup first: most pointer-looking words point nowhere dumped.
    space.u64(db).ok()?;
    (space.readable_len(db) >= dbnum.saturating_mul(elem)).then_some((db, dbnum))
}

/// `db[0].id == 0` and `db[dbnum-1].id == dbnum-1` for an array of db structs (an array of
/// pointers is left to the full check).
fn ends_match(space: &AddressSpace<'_>, layout: &Layout, db_array: u64, dbnum: u64) -> bool {
    if layout.features.db_array != DbArrayFlavor::Structs {
        return true;
    }
    let id = |i: u64| {
        let at = db_array
            .wrapping_add(i.wrapping_mul(layout.db.size))
            .wrapping_add(layout.db.id.offset);
        space
            .uint(at, layout.db.id.size)
            .map(|v| v as u32 as i32 as i64)
    };
    id(0) == Ok(0) && id(dbnum - 1) == Ok(dbnum as i64 - 1)
}

/// The evidence of a position whose databases passed the invariants.
fn evidence(
    walker: &KeyspaceWalker<'_, '_>,
    address: u64,
    db_array: u64,
    dbnum: u64,
    dbs: &[DbInfo],
) -> Candidate {
    let sample = walker.sample_keys(dbs, SAMPLE_KEYS);
    Candidate {
        address,
        db_array,
        dbnum,
        ids_matched: dbs.iter().filter(|d| d.index > 0).count() as u64,
        keys_expected: dbs.iter().map(DbInfo::expected).sum(),
        keys_sampled: sample.sampled,
        keys_decoded: sample.decoded,
        first_fault: sample.first_fault.map(|f| f.to_string()),
    }
}

/// Most engines a functions context has stats for (Lua is the only one shipped).
const MAX_ENGINES: u64 = 16;

/// `curr_functions_lib_ctx` (Redis 7.0+, Valkey), found by structure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionsCtxFound {
    /// The static holding the context pointer (the first one, when several hold it).
    pub address: u64,
    /// The context it points to.
    pub ctx: u64,
    /// Statics found holding that same pointer.
    pub holders: u64,
    /// Function libraries in the context.
    pub libraries: u64,
    /// Engine names of its `engines_stats`.
    pub engines: Vec<String>,
    /// Where it was searched for.
    pub scope: Scope,
    /// Positions tried.
    pub positions: u64,
}

impl FunctionsCtxFound {
    /// One line saying how the context was found, for the log.
    pub fn summary(&self) -> String {
        format!(
            "structure search: the only functions context pointed to from {}, at {:#x} ({} libraries, engine stats for {}; {} positions searched)",
            self.scope,
            self.address,
            self.libraries,
            self.engines.join(", "),
            self.positions
        )
    }
}

/// Why the functions context was not found by structure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FunctionsLocateError {
    /// The profile lacks what the search checks.
    #[error(
        "profile {0} has no functionsLibCtx.functions/engines_stats to recognise the context by"
    )]
    NoLayout(String),
    /// There were no bytes to search.
    #[error("nothing to search: {0}")]
    NothingToScan(String),
    /// No position passed.
    #[error("no pointer in {scope} leads to a functions context ({positions} positions tried)")]
    NotFound {
        /// Where it looked.
        scope: Scope,
        /// Positions tried.
        positions: u64,
    },
    /// Pointers to different contexts passed.
    #[error("pointers to {} different functions contexts in {scope} pass ({}); refusing to guess", .contexts.len(), .contexts.iter().map(|c| format!("{c:#x}")).collect::<Vec<_>>().join(", "))]
    Ambiguous {
        /// Where it looked.
        scope: Scope,
        /// The contexts (the first [`MAX_LISTED`]).
        contexts: Vec<u64>,
    },
}

/// Find the static `curr_functions_lib_ctx` by what it points to: a `functionsLibCtx`
/// whose `libraries`, `functions` and `engines_stats` are valid dicts, `engines_stats`
/// holding 1 to 16 entries named by short ASCII words (`LUA`), at least as many functions
/// as libraries, and every library's code readable. Positions holding the same context
/// pointer are one answer; pointers to two different contexts are refused. Searched where
/// [`find_server`] searches.
pub fn find_functions_ctx(
    core: &CoreFile<'_>,
    layout: &Layout,
    exe_base: Option<u64>,
) -> Result<FunctionsCtxFound, FunctionsLocateError> {
    let mut result = Err(FunctionsLocateError::NothingToScan(nothing_to_scan(
        exe_base,
    )));
    for (scope, regions) in tiers(core, exe_base) {
        result = functions_in(&core.space, layout, scope, &regions);
        if !matches!(result, Err(FunctionsLocateError::NotFound { .. })) {
            break;
        }
    }
    result
}

/// [`find_functions_ctx`] in `regions`.
fn functions_in(
    space: &AddressSpace<'_>,
    layout: &Layout,
    scope: Scope,
    regions: &[(u64, Cow<'_, [u8]>)],
) -> Result<FunctionsCtxFound, FunctionsLocateError> {
    let f = layout
        .functions
        .as_ref()
        .ok_or_else(|| FunctionsLocateError::NoLayout(layout.name.clone()))?;
    let (Some(functions), Some(engines_stats)) = (f.functions, f.engines_stats) else {
        return Err(FunctionsLocateError::NoLayout(layout.name.clone()));
    };
    let walker = KeyspaceWalker::new(space, layout);
    let ctx_walk = super::context::WalkContext::new(space, layout, WalkOptions::default());
    let dicts = ctx_walk.dicts();
    let format = ctx_walk.sds;
    let ctx_size = usize::try_from(f.ctx_size.max(8)).unwrap_or(usize::MAX);
    let mut positions = 0u64;
    // (context, first holder, holders, libraries, engines)
    let mut found: Vec<(u64, u64, u64, u64, Vec<String>)> = Vec::new();
    for (start, bytes) in regions {
        for (i, word) in bytes.chunks_exact(8).enumerate() {
            positions += 1;
            let ctx = u64::from_le_bytes(word.try_into().unwrap_or([0; 8]));
            if ctx == 0 || ctx % 8 != 0 {
                continue;
            }
            let holder = start.wrapping_add(i as u64 * 8);
            if let Some(entry) = found.iter_mut().find(|e| e.0 == ctx) {
                entry.2 += 1;
                continue;
            }
            let Ok(body) = space.read(ctx, ctx_size) else {
                continue;
            };
            let (Some(lib_ptr), Some(fn_ptr), Some(stats_ptr)) = (
                f.libraries.get(&body),
                functions.get(&body),
                engines_stats.get(&body),
            ) else {
                continue;
            };
            let Ok(stats) = dicts.header(stats_ptr) else {
                continue;
            };
            if !(1..=MAX_ENGINES).contains(&stats.used()) {
                continue;
            }
            let (Ok(libs), Ok(funcs)) = (dicts.header(lib_ptr), dicts.header(fn_ptr)) else {
                continue;
            };
            if funcs.used() < libs.used() {
                continue;
            }
            let heads = dicts.sample_entries(&stats, MAX_ENGINES as usize);
            let names: Vec<String> = heads
                .iter()
                .filter_map(|(k, _)| super::sds::read_sds(space, format, *k).ok())
                .filter(|n| {
                    (1..=32).contains(&n.len())
                        && n.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
                })
                .map(|n| String::from_utf8_lossy(&n).into_owned())
                .collect();
            if names.is_empty() || names.len() != heads.len() {
                continue;
            }
            if walker.functions(holder).is_err() {
                continue;
            }
            if found.len() < MAX_LISTED {
                found.push((ctx, holder, 1, libs.used(), names));
            } else {
                return Err(FunctionsLocateError::Ambiguous {
                    scope,
                    contexts: found.iter().map(|e| e.0).collect(),
                });
            }
        }
    }
    match found.len() {
        0 => Err(FunctionsLocateError::NotFound { scope, positions }),
        1 => {
            let Some((ctx, address, holders, libraries, engines)) = found.pop() else {
                return Err(FunctionsLocateError::NotFound { scope, positions });
            };
            Ok(FunctionsCtxFound {
                address,
                ctx,
                holders,
                libraries,
                engines,
                scope,
                positions,
            })
        }
        _ => Err(FunctionsLocateError::Ambiguous {
            scope,
            contexts: found.iter().map(|e| e.0).collect(),
        }),
    }
}

#[cfg(test)]
mod tests;
