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

mod compare;
mod json;
mod load;
mod shapes;
mod types;
mod version;

pub use compare::{compare, Difference};
pub(crate) use load::{alt_candidates, debug_file_candidates};
use load::{arch_name, load_dwarf, map_file, object_error, LoadedDwarf};
use shapes::features;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use object::Object;

use crate::binary::Executable;
use crate::profile::schema::{Identity, ProfileFile, SymbolSpec, SCHEMA_VERSION};

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

#[cfg(test)]
mod tests;
