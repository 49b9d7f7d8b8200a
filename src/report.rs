//! The recovery report: per-db counts next to the dicts' own counters, and every lost key
//! with the reason. Written as JSON and summarised as a table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::sink::SinkError;
use crate::value::Kind;
use crate::walker::dict::WalkFaults;
use crate::walker::fault::FaultKind;
use crate::walker::importing::slot_ranges;
use crate::walker::{DbInfo, Fault};

/// Lost keys listed by name at most; the rest are counted.
const MAX_LISTED_LOST: usize = 100_000;

/// Where the data came from.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Source {
    /// Core file path.
    pub core: String,
    /// Binary used for symbols, if any.
    pub binary: Option<String>,
    /// Executable path named in the core.
    pub executable_in_core: Option<String>,
    /// Build-id of the dumped executable (from the core, else the binary).
    pub build_id: Option<String>,
    /// Profile name.
    pub profile: String,
    /// How the profile was chosen.
    pub profile_choice: String,
    /// Redis version of the profile (Valkey: its own version).
    pub redis_version: String,
    /// `redis` or `valkey`: which server the dump is for.
    pub server: String,
    /// Process id in the core.
    pub pid: Option<i32>,
    /// Address of `server`.
    pub server_address: String,
    /// How `server` was found: `symbol of BINARY`, `recorded in profile NAME`, or
    /// `structure search: unique candidate at ADDRESS (evidence)` when nothing names it.
    pub server_found_by: String,
    /// What was done to the core file's page cache before the walk (huge pages; see
    /// `--keep-page-cache`); absent for a live process or a bundle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_cache: Option<String>,
}

/// Per-database figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DbReport {
    /// Keys recovered (written, or counted in a dry run).
    pub keys: u64,
    /// Recovered keys that carry a TTL.
    pub expires: u64,
    /// The keys dict's own `used` counters (with `--include-importing`, plus
    /// `importing_keys`).
    pub expected: u64,
    /// The expires dict's `used` counters (with `--include-importing`, plus the expires of
    /// the importing slots).
    pub expected_expires: u64,
    /// Keys of slots being imported by Valkey 9's atomic slot migration, by their tables'
    /// counters: the source node still owns those slots. Counted apart: not in `expected`,
    /// `keys` or `lost` unless `--include-importing` wrote them (then in all three as any
    /// other key).
    pub importing_keys: u64,
    /// The slots being imported by atomic slot migration, sorted (also those holding no
    /// key yet).
    pub importing_slots: Vec<u32>,
    /// `expected - keys`: every key not recovered.
    pub lost: u64,
    /// Lost entries whose key could not even be read: behind a broken chain, or with an
    /// unreadable key (`lost` minus the lost keys listed by name for this db).
    pub lost_unnamed: u64,
    /// Bucket chains of the keys tables that broke or looped: entries behind a break may
    /// be missing even when the counters look satisfied (they can be damaged too).
    pub broken_chains: u64,
    /// Keys written with only the readable part of their value (`--salvage`); they are
    /// counted in `keys` too.
    pub partial: u64,
    /// Lost keys reported by name (the rest of `lost` is `lost_unnamed`).
    #[serde(skip)]
    lost_named: u64,
    /// The keys dict was mid-rehash (both tables walked).
    pub rehashing: bool,
    /// The keys dict's header could not be read: its keys are lost and uncounted.
    pub unreadable: bool,
    /// Recovered keys by type and encoding.
    pub by_type: BTreeMap<String, BTreeMap<String, u64>>,
}

/// Whether the entries of the keys, expires, set and hash tables were checked against the
/// bucket their key hashes to, with which hash and seed; or why not.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BucketCheckNote {
    /// The check was on.
    pub on: bool,
    /// The hash function: `siphash-1-2` or `murmurhash2` (when on).
    pub hash: Option<String>,
    /// Where the process's seed was found (when on): `symbol` (the binary's) or `search`
    /// (the executable's data in the core).
    pub seed_source: Option<String>,
    /// The seed's address in the process, in hex (when on).
    pub seed_at: Option<String>,
    /// Keys sampled to find or confirm the seed (when on).
    pub samples: Option<usize>,
    /// The same in words: `on (...)`, or `off (why)`.
    pub summary: String,
}

impl BucketCheckNote {
    /// The check was on with `hash`, its seed found by `source` at `at` and confirmed by
    /// `samples` keys; `summary` in words.
    pub fn on(hash: &str, source: &str, at: u64, samples: usize, summary: String) -> Self {
        BucketCheckNote {
            on: true,
            hash: Some(hash.to_owned()),
            seed_source: Some(source.to_owned()),
            seed_at: Some(format!("{at:#x}")),
            samples: Some(samples),
            summary,
        }
    }

    /// The check was off, because of `why`.
    pub fn off(why: &str) -> Self {
        BucketCheckNote {
            summary: format!("off ({why})"),
            ..BucketCheckNote::default()
        }
    }
}

/// Why function libraries were not recovered or not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FunctionsLostKind {
    /// Their context was found, but reading the libraries from it failed
    /// (`fault_kind` says how).
    Unreadable,
    /// Their context was found neither by symbol nor by structure.
    NotFound,
    /// The output's RDB version, or the target server's, has no functions (below RDB 10).
    RdbVersionTooOld,
    /// The target server (`--to`) refused some of them.
    RefusedByTarget,
    /// Writing them to the output failed.
    WriteFailed,
}

/// The function libraries were lost: why, for scripts and in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FunctionsLost {
    /// Why, for scripts.
    pub reason_kind: FunctionsLostKind,
    /// The fault that made them unreadable (`unreadable` only).
    pub fault_kind: Option<FaultKind>,
    /// The same in words.
    pub reason: String,
}

impl FunctionsLost {
    /// Lost for `kind`, said as `reason`, with no fault behind it.
    pub fn new(kind: FunctionsLostKind, reason: String) -> Self {
        FunctionsLost {
            reason_kind: kind,
            fault_kind: None,
            reason,
        }
    }

    /// The output could not take the libraries read: `e` from [`crate::sink::Sink::functions`].
    pub fn not_written(e: SinkError) -> Self {
        let kind = match &e {
            SinkError::NoFunctions { .. } => FunctionsLostKind::RdbVersionTooOld,
            // Only a `--to` target refuses libraries one by one.
            SinkError::Unwritable { .. } => FunctionsLostKind::RefusedByTarget,
            SinkError::Rdb(_) | SinkError::Io(_) => FunctionsLostKind::WriteFailed,
        };
        let reason = match e {
            SinkError::NoFunctions { reason } | SinkError::Unwritable { reason } => reason,
            e => e.to_string(),
        };
        FunctionsLost::new(kind, reason)
    }

    /// Reading the libraries from their context failed with `fault`.
    pub fn unreadable(fault: &Fault) -> Self {
        FunctionsLost {
            reason_kind: FunctionsLostKind::Unreadable,
            fault_kind: Some(fault.kind()),
            reason: format!("function libraries unreadable: {fault}"),
        }
    }
}

/// What per-key eviction data the output carries.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EvictionNote {
    /// `idle` (LRU policies), `freq` (LFU policies), or `null` when none is written.
    pub written: Option<String>,
    /// The same in words, with why when none is written (or why FREQ is not decayed).
    pub summary: String,
}

/// A key that was not recovered.
#[derive(Debug, Clone, Serialize)]
pub struct LostKey {
    /// Database.
    pub db: u32,
    /// The key, printable (non-UTF-8 and control bytes as `\xNN`), when readable.
    pub key: Option<String>,
    /// Type and encoding, when the object header was readable.
    pub kind: Option<String>,
    /// Why it was lost.
    pub reason: String,
    /// The kind of fault that cost it (for scripts; `reason` says more).
    pub reason_kind: FaultKind,
}

/// The whole report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Tool name and version.
    pub tool: String,
    /// Source of the data.
    pub source: Source,
    /// The RDB written, if any.
    pub output: Option<String>,
    /// RDB version written.
    pub rdb_version: u32,
    /// CRC-64 trailer of the RDB written (16 hex digits), so `verify` can tell this dump
    /// from a rewritten or swapped one.
    pub rdb_crc64: Option<String>,
    /// Keys written as plain list/set/zset/hash because the target RDB version cannot
    /// read their compact in-memory encoding (`--rdb-version`).
    pub reencoded_keys: u64,
    /// True when this was a dry run.
    pub dry_run: bool,
    /// The keys of slots being imported by atomic slot migration were written
    /// (`--include-importing`); otherwise they are only counted (`importing_keys`).
    pub importing_written: bool,
    /// Per database (only those with keys or counters).
    pub dbs: BTreeMap<u32, DbReport>,
    /// Sums over the dbs.
    pub totals: DbReport,
    /// Per-key eviction data written, or why none.
    pub eviction_metadata: EvictionNote,
    /// Whether dict entries were checked against their buckets with the process's hash
    /// seed, and how; or why not.
    pub bucket_check: BucketCheckNote,
    /// EVAL scripts written as `lua` AUX fields (5.0 to 6.2 loaders read them).
    pub lua_scripts: u64,
    /// Why EVAL scripts in the core were not carried, when some were not. The scripts
    /// cache is a cache (clients resend scripts on NOSCRIPT): this does not fail the run.
    pub lua_scripts_not_carried: Option<String>,
    /// Function libraries written (7.0+).
    pub functions: u64,
    /// Why function libraries could not be recovered or written, when they were not.
    pub functions_lost: Option<FunctionsLost>,
    /// Lost keys with reasons (at most 100000 listed).
    pub lost_keys: Vec<LostKey>,
    /// Lost keys beyond the listed ones.
    pub lost_keys_not_listed: u64,
    /// Keys lost one by one (listed or not), by the kind of fault that cost each; the rest
    /// of `totals.lost` was behind broken chains or dropped as duplicates, with no fault
    /// of its own.
    pub lost_by_kind: BTreeMap<FaultKind, u64>,
    /// Keys written incomplete (`--salvage`): what they are and why they are partial.
    pub partial_keys: Vec<LostKey>,
    /// Things worth knowing that cost no key by themselves.
    pub warnings: Vec<String>,
    /// How a live process was read (`--pid`): stopped or not, and for how long; `null`
    /// for a core.
    pub live: Option<crate::live::LiveRead>,
}

impl Report {
    /// Record the CRC-64 trailer of the RDB written.
    pub fn set_crc64(&mut self, crc: u64) {
        self.rdb_crc64 = Some(format!("{crc:016x}"));
    }

    /// True when every key the dicts counted was recovered.
    pub fn complete(&self) -> bool {
        self.totals.lost == 0
            && self.totals.partial == 0
            && self.totals.broken_chains == 0
            && self.functions_lost.is_none()
            && self.totals.keys >= self.totals.expected
            && !self.dbs.values().any(|d| d.unreadable)
    }

    /// A table of keys per db × type × encoding next to the dicts' counters.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:>4} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}  by type/encoding",
            "db", "keys", "expected", "expires", "exp.dict", "lost", "rehash"
        );
        for (db, r) in &self.dbs {
            let kinds: Vec<String> = r
                .by_type
                .iter()
                .flat_map(|(t, encs)| encs.iter().map(move |(e, n)| format!("{t}/{e}={n}")))
                .collect();
            let _ = writeln!(
                s,
                "{:>4} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}  {}",
                db,
                r.keys,
                r.expected,
                r.expires,
                r.expected_expires,
                r.lost,
                if r.rehashing { "yes" } else { "no" },
                kinds.join(" ")
            );
        }
        let t = &self.totals;
        let _ = writeln!(
            s,
            "{:>4} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "all", t.keys, t.expected, t.expires, t.expected_expires, t.lost
        );
        for (db, r) in self
            .dbs
            .iter()
            .filter(|(_, r)| !r.importing_slots.is_empty())
        {
            let _ = writeln!(
                s,
                "importing: db {db}: {} keys in slots {} being imported by atomic slot migration, {}",
                r.importing_keys,
                slot_ranges(&r.importing_slots),
                if self.importing_written {
                    "written (--include-importing)"
                } else {
                    "not written (--include-importing writes them)"
                }
            );
        }
        if !self.lost_by_kind.is_empty() {
            let kinds: Vec<String> = self
                .lost_by_kind
                .iter()
                .map(|(k, n)| {
                    let name = serde_json::to_value(k).unwrap_or_default();
                    format!("{} {n}", name.as_str().unwrap_or("?"))
                })
                .collect();
            let _ = writeln!(s, "lost by kind: {}", kinds.join(", "));
        }
        for k in self.lost_keys.iter().take(20) {
            let _ = writeln!(
                s,
                "lost: db {} key {} ({}): {}",
                k.db,
                k.key.as_deref().unwrap_or("<unreadable>"),
                k.kind.as_deref().unwrap_or("?"),
                k.reason
            );
        }
        if self.lost_keys.len() > 20 {
            let _ = writeln!(
                s,
                "... {} more lost keys in the report",
                self.lost_keys.len() - 20
            );
        }
        for k in self.partial_keys.iter().take(20) {
            let _ = writeln!(
                s,
                "partial: db {} key {} ({}): {}",
                k.db,
                k.key.as_deref().unwrap_or("<unreadable>"),
                k.kind.as_deref().unwrap_or("?"),
                k.reason
            );
        }
        if self.partial_keys.len() > 20 {
            let _ = writeln!(
                s,
                "... {} more partial keys in the report",
                self.partial_keys.len() - 20
            );
        }
        s
    }
}

/// Printable form of key bytes (defined beside the values it shows).
pub use crate::value::printable;

/// Accumulates the report during the walk.
#[derive(Debug, Default)]
pub struct ReportBuilder {
    report: Report,
    // Tallies by (db, kind), kept apart from the report so the hot path allocates nothing:
    // a short list (a few kinds per db), the last one used first, cheaper than hashing two
    // strings per key.
    kinds: Vec<((u32, Kind), u64)>,
}

impl ReportBuilder {
    /// A builder for a report about `source`.
    pub fn new(source: Source, rdb_version: u32, dry_run: bool) -> Self {
        ReportBuilder {
            report: Report {
                tool: format!("redis-rescue {}", env!("CARGO_PKG_VERSION")),
                source,
                rdb_version,
                dry_run,
                ..Report::default()
            },
            kinds: Vec::new(),
        }
    }

    /// Adds one to the counter of `(db, kind)` (`up`), or takes one off, and moves it to
    /// the front of the list.
    fn tally(&mut self, db: u32, kind: Kind, up: bool) {
        // Kinds name static strings: the same pointers, mostly, so those are looked for
        // first, and the texts compared only when no pointers match.
        let same_ptrs = |(d, k): &(u32, Kind)| {
            *d == db
                && std::ptr::eq(k.type_name, kind.type_name)
                && std::ptr::eq(k.encoding, kind.encoding)
        };
        let same = |(d, k): &(u32, Kind)| *d == db && *k == kind;
        let found = self.kinds.iter().position(|(k, _)| same_ptrs(k));
        let i = match found.or_else(|| self.kinds.iter().position(|(k, _)| same(k))) {
            Some(i) => i,
            None => {
                self.kinds.push(((db, kind), 0));
                self.kinds.len() - 1
            }
        };
        if let Some((_, n)) = self.kinds.get_mut(i) {
            *n = if up { *n + 1 } else { n.saturating_sub(1) };
        }
        if i > 0 {
            self.kinds.swap(0, i);
        }
    }

    fn db(&mut self, db: u32) -> &mut DbReport {
        self.report.dbs.entry(db).or_default()
    }

    /// Record a database's counters (only dbs that hold anything appear); the keys of
    /// slots being imported count as expected only when they are written
    /// (`include_importing`).
    pub fn db_seen(&mut self, info: &DbInfo, include_importing: bool) {
        self.report.importing_written = include_importing;
        for (what, tables) in [("keys", &info.keys), ("expires", &info.expires)] {
            for w in tables.iter().flat_map(|t| &t.importing.warnings) {
                self.report
                    .warnings
                    .push(format!("db {}: {what} kvstore: {w}", info.index));
            }
        }
        let importing = info.importing_keys();
        let slots = info.importing_slots();
        if info.expected() == 0
            && info.expected_expires() == 0
            && info.keys.is_ok()
            && importing == 0
            && slots.is_empty()
        {
            return;
        }
        let (more_keys, more_expires) = if include_importing {
            (importing, info.importing_expires())
        } else {
            (0, 0)
        };
        let r = self.db(info.index);
        r.expected = info.expected().saturating_add(more_keys);
        r.expected_expires = info.expected_expires().saturating_add(more_expires);
        r.importing_keys = importing;
        r.importing_slots = slots.to_vec();
        r.rehashing = info.keys.as_ref().is_ok_and(|h| h.rehashing());
    }

    /// The keys dict of `db` could not be read at all.
    pub fn db_unreadable(&mut self, db: u32, f: &Fault) {
        self.db(db).unreadable = true;
        self.report.warnings.push(format!(
            "db {db}: keys dict unreadable, its keys are lost: {f}"
        ));
    }

    /// A key recovered whole.
    pub fn recovered(&mut self, db: u32, kind: Kind, has_expire: bool) {
        self.tally(db, kind, true);
        if has_expire {
            self.db(db).expires += 1;
        }
    }

    /// A key lost, with its name when readable.
    pub fn lost(&mut self, db: u32, key: Option<&[u8]>, kind: Option<Kind>, f: &Fault) {
        self.list_lost(db, key, kind, f.to_string(), f.kind());
    }

    /// Lists a lost key (counted apart beyond [`MAX_LISTED_LOST`]) and counts it by kind.
    fn list_lost(
        &mut self,
        db: u32,
        key: Option<&[u8]>,
        kind: Option<Kind>,
        reason: String,
        reason_kind: FaultKind,
    ) {
        if key.is_some() {
            self.db(db).lost_named += 1;
        }
        *self.report.lost_by_kind.entry(reason_kind).or_default() += 1;
        if self.report.lost_keys.len() >= MAX_LISTED_LOST {
            self.report.lost_keys_not_listed += 1;
            return;
        }
        self.report.lost_keys.push(LostKey {
            db,
            key: key.map(printable),
            kind: kind.map(|k| format!("{}/{}", k.type_name, k.encoding)),
            reason,
            reason_kind,
        });
    }

    /// A key counted as recovered that its output's target then refused (a server's reply
    /// to its RESTORE, after the walk moved on): no longer recovered, lost with `reason`.
    pub fn not_written(&mut self, db: u32, key: &[u8], kind: Kind, has_expire: bool, reason: &str) {
        self.tally(db, kind, false);
        if has_expire {
            let d = self.db(db);
            d.expires = d.expires.saturating_sub(1);
        }
        self.list_lost(
            db,
            Some(key),
            Some(kind),
            reason.to_owned(),
            FaultKind::Refused,
        );
    }

    /// A key written with only the readable part of its value (`--salvage`).
    pub fn partial(&mut self, db: u32, key: &[u8], kind: Kind, f: &Fault) {
        self.db(db).partial += 1;
        if self.report.partial_keys.len() < MAX_LISTED_LOST {
            self.report.partial_keys.push(LostKey {
                db,
                key: Some(printable(key)),
                kind: Some(format!("{}/{}", kind.type_name, kind.encoding)),
                reason: f.to_string(),
                reason_kind: f.kind(),
            });
        }
    }

    /// Chains of the keys dict that broke: the entries behind the break are unreadable.
    pub fn chain_faults(&mut self, db: u32, faults: &WalkFaults) {
        if faults.count > 0 {
            self.db(db).broken_chains += faults.count;
        }
        if faults.damaged_keys > 0 {
            self.report.warnings.push(format!(
                "db {db}: {} keys dict entries hold names whose bytes hash to another bucket (damaged names); they are lost",
                faults.damaged_keys
            ));
        }
        for (bucket, f) in &faults.faults {
            self.report
                .warnings
                .push(format!("db {db}: keys dict bucket {bucket}: {f}"));
        }
    }

    /// A warning.
    pub fn warning(&mut self, w: String) {
        self.report.warnings.push(w);
    }

    /// Record how many keys were re-encoded for an older RDB target.
    pub fn set_reencoded(&mut self, n: u64) {
        self.report.reencoded_keys = n;
        if n > 0 {
            self.report.warnings.push(format!(
                "{n} keys were re-encoded as plain types because RDB {} cannot hold their in-memory encoding",
                self.report.rdb_version
            ));
        }
    }

    /// Record the EVAL scripts: how many were written, or why they were not.
    pub fn set_lua_scripts(&mut self, outcome: Result<u64, String>) {
        match outcome {
            Ok(n) => self.report.lua_scripts = n,
            Err(why) => {
                self.report
                    .warnings
                    .push(format!("EVAL scripts cache: {why}"));
                self.report.lua_scripts_not_carried = Some(why);
            }
        }
    }

    /// Record whether entries were checked against their buckets.
    pub fn set_bucket_check(&mut self, what: BucketCheckNote) {
        self.report.bucket_check = what;
    }

    /// Record what per-key eviction data was written.
    pub fn set_eviction(&mut self, what: EvictionNote) {
        self.report.eviction_metadata = what;
    }

    /// Record the function libraries: how many were recovered, or why they were not.
    pub fn set_functions(&mut self, outcome: Result<u64, FunctionsLost>) {
        match outcome {
            Ok(n) => self.report.functions = n,
            Err(why) => self.report.functions_lost = Some(why),
        }
    }

    /// Record how a live process was read (`--pid`), with its warnings.
    pub fn set_live(&mut self, live: crate::live::LiveRead) {
        self.report.warnings.extend(live.warnings());
        self.report.live = Some(live);
    }

    /// Set the output path.
    pub fn set_output(&mut self, path: Option<String>) {
        self.report.output = path;
    }

    /// Close the tallies.
    pub fn finish(mut self) -> Report {
        for ((db, kind), n) in std::mem::take(&mut self.kinds) {
            let r = self.db(db);
            r.keys += n;
            *r.by_type
                .entry(kind.type_name.to_owned())
                .or_default()
                .entry(kind.encoding.to_owned())
                .or_default() += n;
        }
        let mut totals = DbReport::default();
        let mut per_db = Vec::new();
        for (db, r) in self.report.dbs.iter_mut() {
            if !r.importing_slots.is_empty() || r.importing_keys > 0 {
                per_db.push(format!("db {db}: {}", r.importing_keys));
            }
            totals.importing_keys = totals.importing_keys.saturating_add(r.importing_keys);
            totals.importing_slots.extend(&r.importing_slots);
            r.lost = r.expected.saturating_sub(r.keys);
            r.lost_unnamed = r.lost.saturating_sub(r.lost_named);
            totals.keys += r.keys;
            totals.expires += r.expires;
            totals.expected += r.expected;
            totals.expected_expires += r.expected_expires;
            totals.lost += r.lost;
            totals.lost_unnamed += r.lost_unnamed;
            totals.partial += r.partial;
            totals.broken_chains += r.broken_chains;
            totals.rehashing |= r.rehashing;
            totals.unreadable |= r.unreadable;
            for (t, encs) in &r.by_type {
                for (e, n) in encs {
                    *totals
                        .by_type
                        .entry(t.clone())
                        .or_default()
                        .entry(e.clone())
                        .or_default() += n;
                }
            }
        }
        totals.importing_slots.sort_unstable();
        totals.importing_slots.dedup();
        if !totals.importing_slots.is_empty() || totals.importing_keys > 0 {
            let what = format!(
                "{} keys in {} slot(s) ({}) being imported by atomic slot migration{}",
                totals.importing_keys,
                totals.importing_slots.len(),
                slot_ranges(&totals.importing_slots),
                if per_db.len() > 1 {
                    format!(" ({})", per_db.join(", "))
                } else {
                    String::new()
                }
            );
            // First: it decides what the dump holds.
            self.report.warnings.insert(
                0,
                if self.report.importing_written {
                    format!("{what} were written (--include-importing): the source node still owned those slots when the core was taken, and its copy is the one that counts")
                } else {
                    format!("{what} were left out: the source node still owns those slots and the import may still fail and roll back; --include-importing writes them too")
                },
            );
        }
        self.report.totals = totals;
        self.report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Db 0 with 5 keys of its own and 7 in the importing slots 3300 and 3301 (one table
    /// each), 2 of them with a TTL.
    fn importing_db() -> DbInfo {
        use crate::walker::dict::DictHeader;
        use crate::walker::importing::ImportingTables;
        use crate::walker::KeyTables;
        let header = |used| {
            let mut h = DictHeader::default();
            h.tables[0].used = used;
            h.tables[0].size = 16;
            h
        };
        let tables = |own, a, b| KeyTables {
            tables: vec![(0x1000, header(own))],
            importing: ImportingTables {
                slots: vec![3300, 3301],
                tables: vec![(3300, 0x2000, header(a)), (3301, 0x3000, header(b))],
                warnings: Vec::new(),
            },
            slots: None,
        };
        DbInfo {
            index: 0,
            keys: Ok(tables(5, 3, 4)),
            expires: Ok(tables(0, 2, 0)),
        }
    }

    #[test]
    fn functions_lost_says_why_for_scripts() {
        let b = |lost: FunctionsLost| {
            let mut r = ReportBuilder::new(Source::default(), 9, false);
            r.set_functions(Err(lost));
            let report = r.finish();
            assert!(!report.complete());
            serde_json::to_value(&report).unwrap()["functions_lost"].clone()
        };
        let fault = Fault::of(FaultKind::CounterMismatch, "dict yielded 1 of 2 libraries");
        assert_eq!(
            b(FunctionsLost::unreadable(&fault)),
            serde_json::json!({
                "reason_kind": "unreadable",
                "fault_kind": "counter_mismatch",
                "reason": "function libraries unreadable: dict yielded 1 of 2 libraries",
            })
        );
        let too_old = SinkError::NoFunctions {
            reason: "RDB 9 cannot carry functions (FUNCTION2 needs RDB 10)".into(),
        };
        assert_eq!(
            b(FunctionsLost::not_written(too_old)),
            serde_json::json!({
                "reason_kind": "rdb_version_too_old",
                "fault_kind": null,
                "reason": "RDB 9 cannot carry functions (FUNCTION2 needs RDB 10)",
            })
        );
        let refused = SinkError::Unwritable {
            reason: "1 of 2 libraries refused by the target: ERR".into(),
        };
        assert_eq!(
            b(FunctionsLost::not_written(refused))["reason_kind"],
            "refused_by_target"
        );
        let io = SinkError::Io(std::io::Error::other("disk full"));
        let lost = b(FunctionsLost::not_written(io));
        assert_eq!(lost["reason_kind"], "write_failed");
        assert_eq!(lost["reason"], "writing the output failed: disk full");
    }

    #[test]
    fn importing_keys_are_counted_apart() {
        let mut b = ReportBuilder::new(Source::default(), 80, false);
        b.warning("another".into());
        b.db_seen(&importing_db(), false);
        let r = b.finish();
        let db = &r.dbs[&0];
        assert_eq!(
            (db.expected, db.expected_expires, db.importing_keys),
            (5, 0, 7)
        );
        assert_eq!(db.importing_slots, vec![3300, 3301]);
        assert_eq!(
            (r.totals.importing_keys, r.totals.lost),
            (7, 5),
            "none recovered in this builder: only the db's own keys are lost"
        );
        assert!(!r.importing_written);
        assert!(
            r.warnings[0].starts_with("7 keys in 2 slot(s) (3300-3301) being imported")
                && r.warnings[0].contains("left out")
                && r.warnings[0].contains("--include-importing"),
            "{:?}",
            r.warnings
        );
        assert!(r.table().contains(
            "importing: db 0: 7 keys in slots 3300-3301 being imported by atomic slot migration, not written"
        ));

        let mut b = ReportBuilder::new(Source::default(), 80, false);
        b.db_seen(&importing_db(), true);
        let r = b.finish();
        let db = &r.dbs[&0];
        assert_eq!(
            (db.expected, db.expected_expires, db.importing_keys, db.lost),
            (12, 2, 7, 12),
            "written: expected like any other key (none recovered in this builder)"
        );
        assert!(r.importing_written);
        assert!(r.warnings[0].contains("were written (--include-importing)"));
    }

    #[test]
    fn printable_escapes_binary() {
        assert_eq!(printable(b"abc"), "abc");
        assert_eq!(printable(b"a\x00\xff\r\n\\"), "a\\x00\\xff\\x0d\\x0a\\x5c");
        assert_eq!(printable("é".as_bytes()), "é");
    }

    /// Every lost key carries the kind of its fault, and the report counts them by kind,
    /// listed or not, with kinds as snake_case strings in the JSON.
    #[test]
    fn lost_keys_are_counted_by_kind() {
        use crate::core::MemError;
        let mut b = ReportBuilder::new(Source::default(), 10, false);
        let kind = Kind {
            type_name: "string",
            encoding: "raw",
        };
        b.lost(
            0,
            Some(b"a"),
            Some(kind),
            &Fault::Memory(MemError::Unmapped(0x7f00_0010)),
        );
        b.lost(0, None, None, &Fault::Memory(MemError::NotDumped(0x20)));
        b.lost(1, Some(b"b"), None, &Fault::bad("counters disagree"));
        b.lost(1, Some(b"c"), None, &Fault::Cycle("dict bucket chain"));
        b.not_written(1, b"d", kind, false, "BUSYKEY");
        let r = b.finish();
        let kinds: Vec<FaultKind> = r.lost_keys.iter().map(|k| k.reason_kind).collect();
        assert_eq!(
            kinds,
            [
                FaultKind::Unmapped,
                FaultKind::NotDumped,
                FaultKind::Inconsistent,
                FaultKind::Cycle,
                FaultKind::Refused
            ]
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["lost_keys"][0]["reason_kind"], "unmapped");
        assert_eq!(json["lost_by_kind"]["not_dumped"], 1);
        assert_eq!(json["lost_by_kind"]["inconsistent"], 1);
        assert_eq!(json["lost_by_kind"]["refused"], 1);
        assert_eq!(r.lost_by_kind.values().sum::<u64>(), 5);
        assert!(r.table().contains(
            "lost by kind: unmapped 1, not_dumped 1, inconsistent 1, cycle 1, refused 1"
        ));
    }
}
