//! Deriving a layout profile from the DWARF of an unstripped redis-server / valkey-server.
//!
//! [`derive_profile`] reads the debug information of a build (DWARF 4 or 5, compressed
//! debug sections, `.gnu_debugaltlink` supplementary files), finds every struct a walker
//! may need (named as in the Redis source: `redisServer`, `redisDb`, `dict`, `robj`, …,
//! with Valkey's `valkeyServer`/`serverDb`/`serverObject` stored under the Redis names),
//! and returns a [`ProfileFile`] in the schema of `layouts/*.json`: every member of those
//! structs, bit-fields as bit positions, the `features` read from the shapes of the
//! structs, symbol offsets of `server` and `shared`, and the macro constants of the
//! version family (macros are not in DWARF).
//!
//! [`compare`] checks a derived profile against an existing one (`layout derive --check`).

mod json;
mod types;
mod version;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use gimli::{EndianSlice, RunTimeEndian};
use object::Object;

use crate::binary::Executable;
use crate::profile::features::{
    DbArrayFlavor, DictFlavor, ElementFlavor, EntryFlavor, ExpireFlavor, Features, HashFieldFlavor,
    KeyObjectFlavor, KeyspaceFlavor, QuicklistFlavor, SdsFlavor, TableFlavor, ValueFlavor,
    ZsetElementFlavor,
};
use crate::profile::schema::{FieldSpec, Identity, ProfileFile, SymbolSpec, SCHEMA_VERSION};

pub use json::to_json;
pub use types::legacy_bit_offset;
pub use version::rdb_version;

use types::{DieRef, TypeIndex};

/// Why a profile could not be derived.
#[derive(Debug, thiserror::Error)]
pub enum DwarfError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Not an ELF file `object` can parse, or a section could not be read.
    #[error("{path}: {reason}")]
    Object {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The executable carries no `.debug_info`, and no separate debug file was found.
    #[error("{path} has no DWARF (.debug_info): it is stripped{}, and no separate debug file with its build-id was found (tried: {}); install its debug symbols, derive from an unstripped build of the same source, or pass --profile", match .debuglink { Some(l) => format!(" (its .gnu_debuglink names the separate debug file {l})"), None => String::new() }, if tried.is_empty() { "nothing".to_owned() } else { tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ") })]
    NoDebugInfo {
        /// The executable.
        path: PathBuf,
        /// The file named by `.gnu_debuglink`, if any.
        debuglink: Option<String>,
        /// The separate debug files looked for.
        tried: Vec<PathBuf>,
    },
    /// The `.gnu_debugaltlink` supplementary file is not available.
    #[error("{path} keeps part of its DWARF in the supplementary file {name} (.gnu_debugaltlink), which is not available (tried: {})", tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    AltLinkMissing {
        /// The executable.
        path: PathBuf,
        /// The name recorded in `.gnu_debugaltlink`.
        name: String,
        /// The paths tried.
        tried: Vec<PathBuf>,
    },
    /// The supplementary file found has another build-id than the one recorded.
    #[error("supplementary file {alt} has build-id {found}, but {path} expects {expected}")]
    AltLinkMismatch {
        /// The executable.
        path: PathBuf,
        /// The supplementary file.
        alt: PathBuf,
        /// Its build-id.
        found: String,
        /// The build-id `.gnu_debugaltlink` records.
        expected: String,
    },
    /// Malformed DWARF.
    #[error("DWARF of {path} is not readable: {source}")]
    Dwarf {
        /// The file.
        path: PathBuf,
        /// gimli's error.
        source: gimli::Error,
    },
    /// Something this derivation does not support (big-endian, 32-bit layouts…).
    #[error("{path}: {what} is not supported")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What.
        what: String,
    },
    /// Structs (or members) the walker needs for this build's family are absent.
    #[error("the DWARF of {path} lacks what the walker needs for this build ({family}): {}", missing.join("; "))]
    MissingStructs {
        /// The file.
        path: PathBuf,
        /// The family detected so far (features).
        family: String,
        /// Everything missing, by name.
        missing: Vec<String>,
    },
    /// The derived profile does not resolve: a family this redis-rescue cannot walk.
    #[error("the layout derived from {path} does not resolve: {reason}")]
    Unresolvable {
        /// The file.
        path: PathBuf,
        /// The resolver's error.
        reason: String,
    },
    /// A symbol the walker needs is in neither `.symtab` nor `.dynsym`.
    #[error("{path} has no symbol {name:?} in .symtab or .dynsym")]
    MissingSymbol {
        /// The file.
        path: PathBuf,
        /// The symbol.
        name: String,
    },
    /// The server version could not be read from the binary.
    #[error("cannot tell the server version of {path}: {reason}; pass --redis-version")]
    Version {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// No RDB version is known for this server version.
    #[error("the RDB version written by {server} {version} is not known to redis-rescue; pass --rdb-version")]
    RdbVersion {
        /// `redis` or `valkey`.
        server: String,
        /// The server version.
        version: String,
    },
}

/// Overrides and naming for [`derive`].
#[derive(Debug, Clone, Default)]
pub struct DeriveOptions {
    /// Profile name. Default: the version (`2.8.17`, `valkey-8.1.8`).
    pub name: Option<String>,
    /// Server version to record instead of the one read from the binary.
    pub redis_version: Option<String>,
    /// RDB version to record instead of the one implied by the server version.
    pub rdb_version: Option<u32>,
    /// Take the symbols and the build-id from this binary instead (the stripped binary of
    /// the build whose source was rebuilt with DWARF).
    pub symbols_from: Option<PathBuf>,
}

/// A derived profile and what was noticed on the way.
#[derive(Debug, Clone)]
pub struct Derived {
    /// The profile.
    pub profile: ProfileFile,
    /// Members left out, guesses made (for the user; the profile is still usable).
    pub warnings: Vec<String>,
}

/// Derive the layout profile of the executable at `path` from its DWARF, with default
/// options (name = version). This is what recovery uses when it is given a `--binary`
/// with debug information and no `--profile`.
pub fn derive_profile(path: &Path) -> Result<ProfileFile, DwarfError> {
    derive(path, &DeriveOptions::default()).map(|d| d.profile)
}

/// The server versions a binary's read-only data suggests, for matching shipped profiles
/// when the binary has no debug info: `(version, is_valkey)` for each reading that found
/// one (Redis and Valkey builds are read differently, and Valkey pins REDIS_VERSION).
/// Only hints: the caller must check a profile against the live data.
pub fn binary_versions(path: &Path) -> Vec<(String, bool)> {
    let Ok(file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    // SAFETY: read-only mapping of a file kept open for the mapping's lifetime.
    let Ok(map) = (unsafe { memmap2::Mmap::map(&file) }) else {
        return Vec::new();
    };
    let Ok(obj) = object::File::parse(&*map) else {
        return Vec::new();
    };
    [false, true]
        .into_iter()
        .filter_map(|valkey| {
            version::detect(&obj, valkey)
                .ok()
                .filter(|v| v.warning.is_none())
                .map(|v| (v.version, valkey))
        })
        .collect()
}

/// The layouts of the named structs (struct tags or typedef names) in the DWARF of any
/// ELF file, with the warnings about members that were left out. Names with no complete
/// definition are absent from the map. When several units define a name, the one chosen
/// is as in [`derive`]: the unit defining `server`, else one outside `deps/`, else the
/// first.
pub fn read_structs(
    path: &Path,
    names: &[&str],
) -> Result<
    (
        BTreeMap<String, crate::profile::schema::StructSpec>,
        Vec<String>,
    ),
    DwarfError,
> {
    let map = map_file(path)?;
    let obj = object::File::parse(&*map).map_err(|e| object_error(path, e))?;
    let LoadedDwarf { index, .. } = load_dwarf(path, &obj)?;
    let mut warnings = Vec::new();
    let mut out = BTreeMap::new();
    for name in names {
        let wanted = Wanted {
            out: "",
            dwarf: &[],
            needs: &[],
        };
        if let Some(r) = pick_among(&index, index.candidates(name), &wanted) {
            if let Some(spec) = index.struct_spec(r, name, &mut warnings) {
                out.insert((*name).to_owned(), spec);
            }
        }
    }
    Ok((out, warnings))
}

/// One struct to emit: its profile name, the names it has in DWARF (Redis, Valkey,
/// typedef), and the members a definition must have to be the right one (each inner list
/// is a set of alternatives). The member check keeps same-named structs of bundled
/// libraries (hiredis's `dict`/`dictEntry`) out.
struct Wanted {
    out: &'static str,
    dwarf: &'static [&'static str],
    needs: &'static [&'static [&'static str]],
}

const fn w(
    out: &'static str,
    dwarf: &'static [&'static str],
    needs: &'static [&'static [&'static str]],
) -> Wanted {
    Wanted { out, dwarf, needs }
}

const WANTED: &[Wanted] = &[
    w(
        "redisServer",
        &["redisServer", "valkeyServer"],
        &[&["db"], &["dbnum"]],
    ),
    w(
        "redisDb",
        &["redisDb", "serverDb"],
        &[&["dict", "keys"], &["expires"], &["id"]],
    ),
    w("dict", &["dict"], &[&["type"], &["ht", "ht_table"]]),
    w("dictht", &["dictht"], &[&["table"], &["size"], &["used"]]),
    // Valkey 8.1 keeps `dictEntry` opaque; the normal entry is `dictEntryNormal`.
    w(
        "dictEntry",
        &["dictEntry", "dictEntryNormal"],
        &[&["key"], &["v"], &["next"]],
    ),
    // Valkey 8.0's keyspace entries, tagged `100`, embed their key sds.
    w(
        "dictEntryEmbedded",
        &["dictEntryEmbedded"],
        &[&["v"], &["next"], &["key_header_size"], &["key_buf"]],
    ),
    // Its flags say whether a dict's untagged entries carry a value (`next_first` entries).
    w(
        "dictType",
        &["dictType"],
        &[&["no_value"], &["keys_are_odd"]],
    ),
    w(
        "dictEntryNoValue",
        &["dictEntryNoValue"],
        &[&["key"], &["next"]],
    ),
    w(
        "kvstore",
        &["_kvstore", "kvstore"],
        &[&["flags"], &["dicts", "hashtables"]],
    ),
    w("hashtable", &["hashtable"], &[&["tables"], &["used"]]),
    w(
        "hashtableBucket",
        &["hashtableBucket"],
        &[&["presence"], &["entries"]],
    ),
    w(
        "robj",
        &["redisObject", "serverObject", "robj"],
        &[&["type"], &["encoding"], &["ptr", "val_ptr"]],
    ),
    w("sdshdr", &["sdshdr"], &[&["len"], &["free"], &["buf"]]),
    w("sdshdr5", &["sdshdr5"], &[&["flags"], &["buf"]]),
    w("sdshdr8", &["sdshdr8"], &[&["len"], &["alloc"], &["flags"]]),
    w(
        "sdshdr16",
        &["sdshdr16"],
        &[&["len"], &["alloc"], &["flags"]],
    ),
    w(
        "sdshdr32",
        &["sdshdr32"],
        &[&["len"], &["alloc"], &["flags"]],
    ),
    w(
        "sdshdr64",
        &["sdshdr64"],
        &[&["len"], &["alloc"], &["flags"]],
    ),
    w("list", &["list"], &[&["head"], &["tail"], &["len"]]),
    w(
        "listNode",
        &["listNode"],
        &[&["prev"], &["next"], &["value"]],
    ),
    w(
        "quicklist",
        &["quicklist"],
        &[&["head"], &["count"], &["len"]],
    ),
    w(
        "quicklistNode",
        &["quicklistNode"],
        &[&["next"], &["zl", "entry"], &["sz"], &["count"]],
    ),
    w(
        "quicklistLZF",
        &["quicklistLZF"],
        &[&["sz"], &["compressed"]],
    ),
    w("zset", &["zset"], &[&["zsl"]]),
    // Valkey 9.1's zskiplist is only its embedded header node (the length in its score).
    w("zskiplist", &["zskiplist"], &[&["header"]]),
    w(
        "zskiplistNode",
        &["zskiplistNode"],
        &[&["score"], &["backward"], &["level"]],
    ),
    w(
        "zskiplistLevel",
        &["zskiplistLevel"],
        &[&["forward"], &["span"]],
    ),
    w(
        "intset",
        &["intset"],
        &[&["encoding"], &["length"], &["contents"]],
    ),
    w(
        "stream",
        &["stream"],
        &[&["rax"], &["length"], &["last_id"]],
    ),
    w("streamID", &["streamID"], &[&["ms"], &["seq"]]),
    w(
        "streamCG",
        &["streamCG"],
        &[&["last_id"], &["pel"], &["consumers"]],
    ),
    w(
        "streamConsumer",
        &["streamConsumer"],
        &[&["name"], &["pel"]],
    ),
    w(
        "streamNACK",
        &["streamNACK"],
        &[&["delivery_time"], &["delivery_count"]],
    ),
    w("rax", &["rax"], &[&["head"], &["numele"], &["numnodes"]]),
    // Idempotent producers of streams (Redis 8.6+).
    w(
        "idmpProducer",
        &["idmpProducer"],
        &[&["idmp_dict"], &["idmp_head"]],
    ),
    w(
        "idmpEntry",
        &["idmpEntry"],
        &[&["next"], &["id"], &["iid_len"], &["iid"]],
    ),
    w("raxNode", &["raxNode"], &[&["iskey"], &["size"], &["data"]]),
    w("functionsLibCtx", &["functionsLibCtx"], &[&["libraries"]]),
    w("moduleValue", &["moduleValue"], &[&["type"], &["value"]]),
    w("listpackEx", &["listpackEx"], &[&["lp"]]),
    w("mstrhdr8", &["mstrhdr8"], &[&["len"], &["info"]]),
    w(
        "ExpireMeta",
        &["ExpireMeta"],
        &[&["expireTimeLo"], &["expireTimeHi"], &["trash"]],
    ),
    w(
        "moduleType",
        &["RedisModuleType", "ValkeyModuleType", "moduleType"],
        &[&["id", "entity"]],
    ),
    // 8.6 keeps a module type's id in `moduleType.entity`.
    w("ModuleEntityId", &["ModuleEntityId"], &[&["id"]]),
    w(
        "functionLibInfo",
        &["functionLibInfo"],
        &[&["name"], &["code"]],
    ),
];

/// What a struct needs to be present for, in the error message.
fn needs_text(wanted: &Wanted) -> String {
    let parts: Vec<String> = wanted.needs.iter().map(|alt| alt.join("|")).collect();
    format!("struct {} (with members {})", wanted.out, parts.join(", "))
}

/// The loaded DWARF and which definitions were chosen.
struct Picked {
    index: TypeIndex,
    chosen: BTreeMap<&'static str, DieRef>,
}

impl Picked {
    fn members(&self, out: &str) -> HashSet<String> {
        self.chosen
            .get(out)
            .map(|r| self.index.member_names(*r))
            .unwrap_or_default()
    }

    fn has(&self, out: &str) -> bool {
        self.chosen.contains_key(out)
    }
}

fn pick(index: &TypeIndex, wanted: &Wanted) -> Option<DieRef> {
    let cands: Vec<DieRef> = wanted
        .dwarf
        .iter()
        .flat_map(|n| index.candidates(n))
        .collect();
    pick_among(index, cands, wanted)
}

/// Among `cands`, the first definition having the members `wanted` needs, preferring the
/// unit that defines `server`, then units outside `deps/`.
fn pick_among(index: &TypeIndex, mut cands: Vec<DieRef>, wanted: &Wanted) -> Option<DieRef> {
    cands.retain(|r| {
        let names = index.member_names(*r);
        wanted
            .needs
            .iter()
            .all(|alts| alts.iter().any(|m| names.contains(*m)))
    });
    let unit = |r: &DieRef| index.die(*r).and_then(|d| index.units.get(d.unit));
    // Prefer the unit that defines `server` (server.c / redis.c), then any unit outside
    // the bundled dependencies (deps/: hiredis, lua, …), then anything. Partial units
    // (dwz) count as the units that import them.
    let in_server = cands
        .iter()
        .find(|r| unit(r).is_some_and(|u| u.server_side));
    let outside_deps = cands
        .iter()
        .find(|r| unit(r).is_some_and(|u| u.outside_deps));
    in_server.or(outside_deps).or(cands.first()).copied()
}

struct LoadedDwarf {
    index: TypeIndex,
    alt: Option<PathBuf>,
    /// The separate debug file the DWARF came from, for a stripped executable.
    debug_file: Option<PathBuf>,
}

fn object_error(path: &Path, e: impl fmt::Display) -> DwarfError {
    DwarfError::Object {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

fn map_file(path: &Path) -> Result<memmap2::Mmap, DwarfError> {
    let io = |source| DwarfError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    // SAFETY: read-only mapping; the file stays open while the map lives.
    unsafe { memmap2::Mmap::map(&file) }.map_err(io)
}

/// Where `.gnu_debugaltlink`'s file may be: as named (absolute, or relative to the
/// binary's directory), then under /usr/lib/debug/.dwz/, then by its file name beside the
/// file naming it (where a bundle unpacks it: src/bundle).
pub(crate) fn alt_candidates(binary: &Path, name: &str) -> Vec<PathBuf> {
    let named = Path::new(name);
    let dir = binary.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    if named.is_absolute() {
        out.push(named.to_owned());
    } else {
        out.push(dir.join(named));
    }
    let dwz = Path::new("/usr/lib/debug/.dwz");
    if let Some(i) = name.find(".dwz/") {
        if let Some(rest) = name.get(i + 5..) {
            out.push(dwz.join(rest));
        }
    }
    if let Some(file) = named.file_name() {
        out.push(dwz.join(file));
        out.push(dir.join(file));
    }
    let mut seen = HashSet::new();
    out.retain(|p| seen.insert(p.clone()));
    out
}

fn load_dwarf(path: &Path, obj: &object::File<'_>) -> Result<LoadedDwarf, DwarfError> {
    if !obj.is_little_endian() {
        return Err(DwarfError::Unsupported {
            path: path.to_owned(),
            what: "a big-endian executable".into(),
        });
    }
    if obj.section_by_name(".debug_info").is_none() {
        return load_separate_debug_file(path, obj);
    }
    let endian = RunTimeEndian::Little;
    let dwarf_err = |source| DwarfError::Dwarf {
        path: path.to_owned(),
        source,
    };

    // Supplementary (dwz) file.
    let altlink = obj.gnu_debugaltlink().map_err(|e| object_error(path, e))?;
    let mut alt_map = None;
    if let Some((name, build_id)) = altlink {
        let name = String::from_utf8_lossy(name).into_owned();
        let tried = alt_candidates(path, &name);
        let found = tried.iter().find(|p| p.is_file()).cloned();
        let Some(alt_path) = found else {
            return Err(DwarfError::AltLinkMissing {
                path: path.to_owned(),
                name,
                tried,
            });
        };
        let map = map_file(&alt_path)?;
        {
            let alt_obj = object::File::parse(&*map).map_err(|e| object_error(&alt_path, e))?;
            let found_id = alt_obj
                .build_id()
                .map_err(|e| object_error(&alt_path, e))?
                .unwrap_or_default();
            if found_id != build_id {
                return Err(DwarfError::AltLinkMismatch {
                    path: path.to_owned(),
                    alt: alt_path,
                    found: crate::core::hex(found_id),
                    expected: crate::core::hex(build_id),
                });
            }
        }
        alt_map = Some((alt_path, map));
    }
    let alt_obj = match &alt_map {
        Some((p, m)) => Some(object::File::parse(&**m).map_err(|e| object_error(p, e))?),
        None => None,
    };
    let sections = gimli::DwarfSections::load(|id| types::section_data(obj, id))
        .map_err(|e| object_error(path, e))?;
    let sup_sections = match (&alt_obj, &alt_map) {
        (Some(o), Some((p, _))) => Some(
            gimli::DwarfSections::load(|id| types::section_data(o, id))
                .map_err(|e| object_error(p, e))?,
        ),
        _ => None,
    };
    let dwarf = sections.borrow_with_sup(sup_sections.as_ref(), |s| EndianSlice::new(s, endian));
    let index = TypeIndex::load(&dwarf).map_err(dwarf_err)?;
    Ok(LoadedDwarf {
        index,
        alt: alt_map.map(|(p, _)| p),
        debug_file: None,
    })
}

/// Where the separate debug file of a stripped executable may be, as GDB looks: by
/// build-id under /usr/lib/debug/.build-id/, then by `.gnu_debuglink` name beside the
/// executable, in its `.debug/` directory, and under /usr/lib/debug/ + its directory.
pub(crate) fn debug_file_candidates(
    binary: &Path,
    build_id: Option<&[u8]>,
    link: Option<&str>,
) -> Vec<PathBuf> {
    let root = Path::new("/usr/lib/debug");
    let mut out = Vec::new();
    if let Some(id) = build_id {
        let hex = crate::core::hex(id);
        if let (Some(head), Some(tail)) = (hex.get(..2), hex.get(2..)) {
            out.push(
                root.join(".build-id")
                    .join(head)
                    .join(format!("{tail}.debug")),
            );
        }
    }
    if let Some(link) = link {
        let dir = binary.parent().unwrap_or(Path::new("."));
        out.push(dir.join(link));
        out.push(dir.join(".debug").join(link));
        if let Ok(abs) = std::fs::canonicalize(dir) {
            if let Ok(rel) = abs.strip_prefix("/") {
                out.push(root.join(rel).join(link));
            }
        }
    }
    out
}

/// The DWARF of a stripped executable from its separate debug file (same build-id).
fn load_separate_debug_file(
    path: &Path,
    obj: &object::File<'_>,
) -> Result<LoadedDwarf, DwarfError> {
    let build_id = obj.build_id().ok().flatten();
    let link = obj
        .gnu_debuglink()
        .ok()
        .flatten()
        .map(|(name, _)| String::from_utf8_lossy(name).into_owned());
    let tried = debug_file_candidates(path, build_id, link.as_deref());
    for cand in &tried {
        if !cand.is_file() || cand.as_path() == path {
            continue;
        }
        let map = map_file(cand)?;
        let Ok(dobj) = object::File::parse(&*map) else {
            continue;
        };
        let same_build = match build_id {
            Some(id) => dobj.build_id().ok().flatten() == Some(id),
            None => true,
        };
        if !same_build || dobj.section_by_name(".debug_info").is_none() {
            continue;
        }
        let mut loaded = load_dwarf(cand, &dobj)?;
        loaded.debug_file = Some(cand.clone());
        return Ok(loaded);
    }
    Err(DwarfError::NoDebugInfo {
        path: path.to_owned(),
        debuglink: link,
        tried,
    })
}

fn arch_name(obj: &object::File<'_>) -> String {
    match obj.architecture() {
        object::Architecture::X86_64 => "x86_64".into(),
        object::Architecture::Aarch64 => "aarch64".into(),
        object::Architecture::I386 => "x86".into(),
        object::Architecture::Arm => "arm".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// The typed features read from the shapes of the chosen structs, and the structs the
/// walker needs for that family that are missing. Every choice is made from structure
/// (which structs and members exist, in which order), never from the version.
fn features(p: &Picked) -> (Option<Features>, Vec<String>) {
    let index = &p.index;
    let mut missing: Vec<&'static str> = Vec::new();
    let need = |name: &'static str, missing: &mut Vec<&'static str>| {
        if !p.has(name) {
            missing.push(name);
        }
    };
    for s in [
        "redisServer",
        "redisDb",
        "robj",
        "zset",
        "zskiplist",
        "zskiplistNode",
        "zskiplistLevel",
    ] {
        need(s, &mut missing);
    }
    let offset_of = |st: &'static str, member: &str| -> Option<u64> {
        let r = p.chosen.get(st)?;
        let spec = index.struct_spec(*r, st, &mut Vec::new())?;
        match spec.fields.get(member)? {
            FieldSpec::Bytes { offset, .. } => Some(*offset),
            FieldSpec::Bits { bit_offset, .. } => Some(bit_offset / 8),
        }
    };

    // keyspace and tables
    let db = p.members("redisDb");
    let mut keyspace = None;
    let mut tables = TableFlavor::Dict;
    if db.contains("dict") {
        keyspace = Some(KeyspaceFlavor::Dict);
    } else if db.contains("keys") {
        let kv_type = p
            .chosen
            .get("redisDb")
            .and_then(|r| index.member_type(*r, "keys"))
            .and_then(|t| index.pointee(t))
            .and_then(|t| index.struct_name(t).map(str::to_owned));
        let kv = p.members("kvstore");
        if !matches!(kv_type.as_deref(), Some("_kvstore" | "kvstore")) || !p.has("kvstore") {
            need("kvstore", &mut missing);
        } else {
            keyspace = Some(KeyspaceFlavor::Kvstore);
            if kv.contains("hashtables") {
                tables = TableFlavor::Hashtable;
                need("hashtable", &mut missing);
                need("hashtableBucket", &mut missing);
            }
        }
    }

    // dict
    let dict_members = p.members("dict");
    let dict = if dict_members.contains("ht") {
        need("dictht", &mut missing);
        need("dictEntry", &mut missing);
        Some(DictFlavor::Dictht)
    } else if dict_members.contains("ht_table") {
        need("dictEntry", &mut missing);
        Some(DictFlavor::HtTable)
    } else {
        if tables == TableFlavor::Dict {
            need("dict", &mut missing);
        }
        // Builds without dicts in the keyspace still read their functions dicts with
        // these; an absent dict is reported by the resolver if the walker needs it.
        None
    };
    let dict_type = p.members("dictType");
    let dict_entry = if !p.has("dictEntryNoValue") {
        EntryFlavor::Plain
    } else if offset_of("dictEntry", "next") == Some(0) {
        // `next` first: an entry without a value is the same shape minus `v`, told
        // apart by the dict's type.
        need("dictType", &mut missing);
        EntryFlavor::NextFirst
    } else if dict_type.contains("force_full_rehash") {
        // The dictType that gained `force_full_rehash` came with the dict that tags
        // value-less entries `100` and bare even keys `010`.
        EntryFlavor::TaggedEvenKeys
    } else {
        EntryFlavor::Tagged
    };

    // sds
    let sds = if p.members("sdshdr").contains("free") {
        Some(SdsFlavor::LenFree)
    } else if p.has("sdshdr8") {
        for s in ["sdshdr16", "sdshdr32", "sdshdr64"] {
            need(s, &mut missing);
        }
        Some(SdsFlavor::Typed)
    } else {
        missing.push("sdshdr or sdshdr8");
        None
    };

    // quicklist
    let node = p.members("quicklistNode");
    let quicklist = if p.has("quicklist") {
        need("quicklistNode", &mut missing);
        need("quicklistLZF", &mut missing);
        if node.contains("zl") {
            Some(QuicklistFlavor::Ziplist)
        } else {
            Some(QuicklistFlavor::Listpack)
        }
    } else {
        need("list", &mut missing);
        need("listNode", &mut missing);
        None
    };

    // collection elements
    let zn = p.members("zskiplistNode");
    let (elements, zset_element) = if zn.contains("obj") {
        (ElementFlavor::Robj, ZsetElementFlavor::Pointer)
    } else if zn.contains("ele") {
        (ElementFlavor::Sds, ZsetElementFlavor::Pointer)
    } else if offset_of("zskiplist", "length").is_some() {
        // No element member, a list with a header pointer and a length: the element is
        // embedded after the node's levels, at the offset kept in level[0].span.
        (ElementFlavor::Sds, ZsetElementFlavor::SpanOffset)
    } else {
        // No element member and a zskiplist that is only its embedded header node.
        (ElementFlavor::Sds, ZsetElementFlavor::AfterLevels)
    };

    // objects: where the key, the expire and the value live
    let robj = p.members("robj");
    let embeds_key = robj.contains("hasembkey") || robj.contains("iskvobj");
    let key_object = if embeds_key {
        KeyObjectFlavor::Embedded
    } else {
        KeyObjectFlavor::Separate
    };
    let expire = if robj.contains("metabits") {
        ExpireFlavor::BeforeObject
    } else if robj.contains("hasexpire") || robj.contains("expirable") {
        ExpireFlavor::InObject
    } else {
        ExpireFlavor::ExpiresDict
    };
    // Hash elements that are field sds strings come with the opaque `struct _entry`
    // (Redis 8.6's `Entry`); Valkey's hashtables hold such elements too.
    let hash_fields = if tables == TableFlavor::Hashtable || index.has_struct_tag("_entry") {
        HashFieldFlavor::Entry
    } else if p.has("mstrhdr8") {
        HashFieldFlavor::Mstr
    } else {
        HashFieldFlavor::Sds
    };

    let wanted_by_name = |n: &str| WANTED.iter().find(|w| w.out == n);
    let missing: Vec<String> = missing
        .into_iter()
        .map(|n| match wanted_by_name(n) {
            Some(w) => needs_text(w),
            None => format!("struct {n}"),
        })
        .collect();
    // `server.db` is `redisDb *` (an array of structs) or `serverDb **` (of pointers).
    let db_is_pointer_array = p
        .chosen
        .get("redisServer")
        .and_then(|r| index.member_type(*r, "db"))
        .and_then(|t| index.pointee(t))
        .and_then(|t| index.pointee(t))
        .is_some();
    let db_array = if db_is_pointer_array {
        DbArrayFlavor::Pointers
    } else {
        DbArrayFlavor::Structs
    };
    let value = if robj.contains("hasembval") {
        ValueFlavor::EmbeddedOrPointer
    } else {
        ValueFlavor::Pointer
    };
    let features = match (keyspace, sds) {
        (Some(keyspace), Some(sds)) => Some(Features {
            keyspace,
            db_array,
            tables,
            // A build with hashtables only still names a dict shape for its few dicts.
            dict: dict.unwrap_or(DictFlavor::HtTable),
            dict_entry,
            sds,
            quicklist,
            elements,
            key_object,
            expire,
            value,
            hash_fields,
            zset_element,
        }),
        _ => None,
    };
    (features, missing)
}

/// Derive a profile from the DWARF of the executable at `path`.
pub fn derive(path: &Path, opts: &DeriveOptions) -> Result<Derived, DwarfError> {
    let map = map_file(path)?;
    let obj = object::File::parse(&*map).map_err(|e| object_error(path, e))?;
    if !obj.is_64() {
        return Err(DwarfError::Unsupported {
            path: path.to_owned(),
            what: "a 32-bit executable".into(),
        });
    }
    let LoadedDwarf {
        index,
        alt,
        debug_file,
    } = load_dwarf(path, &obj)?;
    let mut warnings = Vec::new();

    let mut chosen = BTreeMap::new();
    for wanted in WANTED {
        if let Some(r) = pick(&index, wanted) {
            chosen.insert(wanted.out, r);
        }
    }
    let picked = Picked { index, chosen };
    let index = &picked.index;

    let valkey = !index.candidates("valkeyServer").is_empty()
        || !index.candidates("serverObject").is_empty();
    let server_kind = if valkey { "valkey" } else { "redis" };

    let (features, mut missing) = features(&picked);
    let features = match features {
        Some(f) if missing.is_empty() => f,
        found => {
            let family = found
                .map(|f| {
                    f.to_map()
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_else(|| "keyspace or sds family not recognised".into());
            if missing.is_empty() {
                missing.push("redisDb.dict or redisDb.keys".into());
            }
            return Err(DwarfError::MissingStructs {
                path: path.to_owned(),
                family: format!("{server_kind}; {family}"),
                missing,
            });
        }
    };

    let mut structs = BTreeMap::new();
    for (out, r) in &picked.chosen {
        if let Some(spec) = index.struct_spec(*r, out, &mut warnings) {
            structs.insert((*out).to_owned(), spec);
        }
    }

    // Symbols.
    // Symbols, from the binary itself or from the build the layout is recorded for (a
    // distro's stripped binary whose source was rebuilt with DWARF: same layout, other
    // addresses).
    let sym_path = opts.symbols_from.as_deref().unwrap_or(path);
    let exe = Executable::open(sym_path).map_err(|e| object_error(sym_path, e))?;
    let mut symbols = BTreeMap::new();
    for name in ["server", "shared", "curr_functions_lib_ctx"] {
        let found = exe.symbol(name).map(|s| (s.offset, s.size)).or_else(|| {
            // Statics have no symbol in stripped builds: read the getter's machine code.
            crate::code_refs::find_static(&exe, name)
                .ok()
                .map(|r| (r.offset, r.size))
        });
        if let Some((offset, size)) = found {
            symbols.insert(name.to_owned(), SymbolSpec { offset, size });
        }
    }
    if !symbols.contains_key("server") {
        return Err(DwarfError::MissingSymbol {
            path: sym_path.to_owned(),
            name: "server".into(),
        });
    }

    // Version.
    let (redis_version, version_how) = match &opts.redis_version {
        Some(v) => (v.clone(), "--redis-version".to_owned()),
        None => {
            let found = version::detect(&obj, valkey).map_err(|reason| DwarfError::Version {
                path: path.to_owned(),
                reason,
            })?;
            if let Some(w) = found.warning {
                warnings.push(w);
            }
            (found.version, found.how)
        }
    };
    let mm = version::major_minor(&redis_version).ok_or_else(|| DwarfError::Version {
        path: path.to_owned(),
        reason: format!("{redis_version:?} is not a x.y.z version"),
    })?;
    let rdb = match opts.rdb_version {
        Some(r) => r,
        None => {
            version::rdb_version(valkey, &redis_version).ok_or_else(|| DwarfError::RdbVersion {
                server: server_kind.into(),
                version: redis_version.clone(),
            })?
        }
    };
    let constants = version::constants(valkey, mm, &features);

    let mut dwarf_versions: Vec<u16> = index.units.iter().map(|u| u.version).collect();
    dwarf_versions.sort_unstable();
    dwarf_versions.dedup();
    let dwarf_versions = dwarf_versions
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join("/");
    let build_id = exe.build_id.clone();
    let family = format!(
        "{} {}.{}",
        if valkey { "Valkey" } else { "Redis" },
        mm.0,
        mm.1
    );
    let origin = format!(
        "derived from DWARF {dwarf_versions} of {} (build-id {}){}{}{} by redis-rescue layout derive; \
         server version from {version_how}; constants (types, encodings, quicklist_node, \
         hash_entry) are macros, not in DWARF: filled from redis-rescue's table for the {family} family",
        path.display(),
        Executable::open(path)
            .ok()
            .and_then(|e| e.build_id)
            .unwrap_or_else(|| "none".into()),
        match &opts.symbols_from {
            Some(s) => format!(
                "; symbols from {} (build-id {})",
                s.display(),
                build_id.as_deref().unwrap_or("none")
            ),
            None => String::new(),
        },
        match &debug_file {
            Some(d) => format!(" read from its debug file {}", d.display()),
            None => String::new(),
        },
        match &alt {
            Some(a) => format!(" with supplementary file {}", a.display()),
            None => String::new(),
        },
    );
    let name = opts.name.clone().unwrap_or_else(|| {
        if valkey {
            format!("valkey-{redis_version}")
        } else {
            redis_version.clone()
        }
    });
    let profile = ProfileFile {
        schema_version: SCHEMA_VERSION,
        name,
        identity: Identity {
            redis_version,
            server: server_kind.into(),
            build_id,
            arch: arch_name(&obj),
            pointer_size: 8,
            rdb_version: rdb,
            origin,
        },
        symbols,
        features: features.to_map(),
        structs,
        constants,
    };
    // What derive writes is exactly what the resolver reads: check it before handing it out.
    if let Err(e) = crate::profile::Layout::resolve(&profile) {
        return Err(DwarfError::Unresolvable {
            path: path.to_owned(),
            reason: e.to_string(),
        });
    }
    Ok(Derived { profile, warnings })
}

/// One difference between a derived profile and a reference profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// Dotted path, e.g. `structs.dict.fields.rehashidx`.
    pub path: String,
    /// The derived value (`None`: absent from the derived profile).
    pub derived: Option<String>,
    /// The reference value (`None`: absent from the reference).
    pub reference: Option<String>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(absent)".into());
        write!(
            f,
            "{}: derived {}, profile {}",
            self.path,
            show(&self.derived),
            show(&self.reference)
        )
    }
}

fn field_text(f: &FieldSpec) -> String {
    match f {
        FieldSpec::Bytes { offset, size } => format!("{{offset {offset}, size {size}}}"),
        FieldSpec::Bits {
            bit_offset,
            bit_size,
        } => format!("{{bit_offset {bit_offset}, bit_size {bit_size}}}"),
    }
}

/// Compare `derived` with `reference`. Everything the reference states must be equal in
/// the derived profile (the name and `identity.origin` are not compared, nor
/// `identity.build_id` when the reference has none); `features` must match exactly.
/// With `exact`, structs, fields, symbols and constants present only in the derived
/// profile count as differences too.
pub fn compare(derived: &ProfileFile, reference: &ProfileFile, exact: bool) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut diff = |path: String, d: Option<String>, r: Option<String>| {
        if d != r {
            out.push(Difference {
                path,
                derived: d,
                reference: r,
            });
        }
    };
    diff(
        "schema_version".into(),
        Some(derived.schema_version.to_string()),
        Some(reference.schema_version.to_string()),
    );
    let (di, ri) = (&derived.identity, &reference.identity);
    diff(
        "identity.redis_version".into(),
        Some(di.redis_version.clone()),
        Some(ri.redis_version.clone()),
    );
    diff(
        "identity.server".into(),
        Some(di.server.clone()),
        Some(ri.server.clone()),
    );
    if ri.build_id.is_some() {
        diff(
            "identity.build_id".into(),
            di.build_id.clone(),
            ri.build_id.clone(),
        );
    }
    diff(
        "identity.arch".into(),
        Some(di.arch.clone()),
        Some(ri.arch.clone()),
    );
    diff(
        "identity.pointer_size".into(),
        Some(di.pointer_size.to_string()),
        Some(ri.pointer_size.to_string()),
    );
    diff(
        "identity.rdb_version".into(),
        Some(di.rdb_version.to_string()),
        Some(ri.rdb_version.to_string()),
    );

    let sym = |s: &SymbolSpec| format!("{{offset {}, size {}}}", s.offset, s.size);
    let names: HashSet<&String> = derived
        .symbols
        .keys()
        .chain(reference.symbols.keys())
        .collect();
    let mut names: Vec<_> = names.into_iter().collect();
    names.sort();
    for n in names {
        let r = reference.symbols.get(n).map(sym);
        if r.is_none() && !exact {
            continue;
        }
        diff(format!("symbols.{n}"), derived.symbols.get(n).map(sym), r);
    }

    let names: HashSet<&String> = derived
        .features
        .keys()
        .chain(reference.features.keys())
        .collect();
    let mut names: Vec<_> = names.into_iter().collect();
    names.sort();
    for n in names {
        diff(
            format!("features.{n}"),
            derived.features.get(n).cloned(),
            reference.features.get(n).cloned(),
        );
    }

    let names: HashSet<&String> = derived
        .structs
        .keys()
        .chain(reference.structs.keys())
        .collect();
    let mut names: Vec<_> = names.into_iter().collect();
    names.sort();
    for n in names {
        match (derived.structs.get(n), reference.structs.get(n)) {
            (Some(d), Some(r)) => {
                diff(
                    format!("structs.{n}.size"),
                    Some(d.size.to_string()),
                    Some(r.size.to_string()),
                );
                let fields: HashSet<&String> = d.fields.keys().chain(r.fields.keys()).collect();
                let mut fields: Vec<_> = fields.into_iter().collect();
                fields.sort();
                for f in fields {
                    let rv = r.fields.get(f).map(field_text);
                    if rv.is_none() && !exact {
                        continue;
                    }
                    diff(
                        format!("structs.{n}.fields.{f}"),
                        d.fields.get(f).map(field_text),
                        rv,
                    );
                }
            }
            (None, Some(_)) => diff(format!("structs.{n}"), None, Some("present".into())),
            (Some(_), None) if exact => diff(format!("structs.{n}"), Some("present".into()), None),
            _ => {}
        }
    }

    let groups: HashSet<&String> = derived
        .constants
        .keys()
        .chain(reference.constants.keys())
        .collect();
    let mut groups: Vec<_> = groups.into_iter().collect();
    groups.sort();
    let empty = BTreeMap::new();
    for g in groups {
        let d = derived.constants.get(g).unwrap_or(&empty);
        let r = reference.constants.get(g).unwrap_or(&empty);
        let keys: HashSet<&String> = d.keys().chain(r.keys()).collect();
        let mut keys: Vec<_> = keys.into_iter().collect();
        keys.sort();
        for k in keys {
            let rv = r.get(k).map(i64::to_string);
            if rv.is_none() && !exact {
                continue;
            }
            diff(
                format!("constants.{g}.{k}"),
                d.get(k).map(i64::to_string),
                rv,
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alt_paths() {
        let c = alt_candidates(
            Path::new("/usr/bin/redis-check-rdb"),
            "/usr/lib/debug/.dwz/x86_64-linux-gnu/redis-tools.debug",
        );
        assert_eq!(
            c.first().map(PathBuf::as_path),
            Some(Path::new(
                "/usr/lib/debug/.dwz/x86_64-linux-gnu/redis-tools.debug"
            ))
        );
        // Beside the file naming it, where a bundle unpacks it.
        assert!(c.contains(&PathBuf::from("/usr/bin/redis-tools.debug")));
        let c = alt_candidates(Path::new("/opt/r/redis-server"), "../dwz/common.debug");
        assert_eq!(c[0], Path::new("/opt/r/../dwz/common.debug"));
        assert!(c.contains(&PathBuf::from("/usr/lib/debug/.dwz/common.debug")));
    }

    #[test]
    fn compare_reports_value_and_missing_differences() {
        let reference = crate::profile::load("7.0.15-debian").unwrap();
        let mut derived = reference.clone();
        assert!(compare(&derived, &reference, true).is_empty());
        derived.identity.origin = "other".into();
        derived.name = "x".into();
        assert!(compare(&derived, &reference, true).is_empty());
        if let Some(s) = derived.structs.get_mut("dict") {
            s.fields.insert(
                "rehashidx".into(),
                FieldSpec::Bytes {
                    offset: 88,
                    size: 8,
                },
            );
            s.fields.insert(
                "extra".into(),
                FieldSpec::Bytes {
                    offset: 99,
                    size: 1,
                },
            );
        }
        derived.structs.remove("zset");
        derived
            .features
            .insert("dict_entry".into(), "tagged".into());
        let d = compare(&derived, &reference, false);
        let paths: Vec<&str> = d.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "features.dict_entry",
                "structs.dict.fields.rehashidx",
                "structs.zset"
            ]
        );
        assert_eq!(
            d[1].to_string(),
            "structs.dict.fields.rehashidx: derived {offset 88, size 8}, profile {offset 40, size 8}"
        );
        let d = compare(&derived, &reference, true);
        assert!(d.iter().any(|d| d.path == "structs.dict.fields.extra"));
    }
}
