//! The damage campaign: a real core of a filled Redis is damaged in copies (cut short, pages
//! zeroed, bytes flipped, pointers perturbed) and each copy is recovered. For every run:
//!
//! - the tool does not panic and exits 0, 1 or 2 (never a signal);
//! - a dump is written exactly when it exits 0 or 1, and it loads into a fresh redis-server;
//! - every key in it equals the source's, read back with ordinary commands (TYPE, the value,
//!   PEXPIRETIME) from a server loaded from the source's own `SAVE`; keys marked partial
//!   (`--salvage`, used in every other run) hold a subset of the source's value;
//! - exit 0 means every key of the source is back.
//!
//! Bytes flipped or zeroed inside a value's own payload cannot be told from data: Redis keeps
//! no checksum in memory, so the tool copies what memory holds. Such keys are counted apart as
//! "payload-damaged" when the difference is in place (same type, same number of elements, same
//! lengths or both integers), and as "misattributed" when a damaged pointer led to another
//! key's valid value or elements. Anything else is an unexplained wrong key: none is allowed
//! for cut cores and zeroed pages; where bits of pointers change, a pointer can land on other
//! memory that passes every check, so a few per run are tolerated and all are counted in the
//! summary.
//!
//! The same campaign runs on a core of Valkey 8.1.8 (`target/redis-builds/valkey-8.1.8`,
//! provisioned by `.ci/provision-redis.sh`), whose keyspace, sets and hashes are hashtables
//! that the bucket check covers (each entry in its bucket, with its hash fragment; a zset's
//! skiplist nodes must be entries of its hashtable, checked by their elements). A raw
//! string's value and a hash field's separately allocated value are covered by no hash (two
//! fields sharing one value string are refused): one unexplained wrong key per run is
//! tolerated there where bits of pointers change, none otherwise.
//!
//! And on a core of Redis 3.2.6 (`target/redis-builds/3.2.6`), whose dicts hash with
//! MurmurHash2 and whose collections hold string objects: with the bucket check and the
//! object census (each string object held no more often than its `refcount` allows, each
//! raw string's sds held once), no unexplained wrong key is tolerated. Its dumps are loaded
//! and compared on 7.0.15, which reads RDB 7 and has PEXPIRETIME.
//!
//! A flipped length byte of a string inside its own allocation can make the string longer
//! (it then reads its old NUL terminator and the allocation's slack, and passes the
//! NUL-terminator check wherever the slack holds a zero, as a fresh heap's mostly does) or
//! shorter where a NUL stood: that is damage to the key's own bytes, like payload damage,
//! and undetectable without a checksum. So can a flipped bit of an intset's own `length`
//! (it keeps no terminator): the set loses its largest members, or gains the integers its
//! allocation's slack holds. Such keys are counted apart as "length-damaged" (every
//! difference in place: an element extended past its old terminator, or cut at a NUL, or
//! changed at the same length; an intset cut or extended in its sorted order), never as
//! correct.
//!
//! `REDIS_RESCUE_DAMAGE_KINDS` (comma-separated names) picks kinds, and
//! `REDIS_RESCUE_DAMAGE_KEEP=DIR` keeps every damaged core for replay.
//! `REDIS_RESCUE_DAMAGE_RUNS` sets the runs per kind of damage (default 8 for Redis 7.0, 2 for
//! Valkey and 3.2.6); the summary, with the share of keys salvaged per kind, is printed to stderr
//! (`--nocapture`) and written to `CARGO_TARGET_TMPDIR/damage-campaign.json` (Valkey:
//! `damage-campaign-valkey-8.1.8.json`; 3.2.6: `damage-campaign-3.2.6.json`).
//!
//! Needs Debian 12's redis-server 7.0.15, the provisioned Valkey 8.1.8 and gdb (gcore); see
//! tests/README.md.

mod damage;
mod explain;
mod fill;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::path::Path;
use std::time::Instant;

use self::damage::{CoreImage, Rng};
use self::explain::{
    explained_by_length_byte, explained_by_payload, is_part_of, renamed_from, SourceIndex,
};
use self::fill::{fill_redis32, fill_valkey};
use crate::common::*;
use redis::Connection;

const DEFAULT_RUNS_PER_KIND: usize = 8;
/// Runs per kind of damage on the Valkey core unless `REDIS_RESCUE_DAMAGE_RUNS` says.
const DEFAULT_VALKEY_RUNS_PER_KIND: usize = 2;
const PAGE: usize = 4096;
/// Amount of damage per run.
const ZEROED_PAGES: usize = 24;
const FLIPPED_BYTES: usize = 200;
const PERTURBED_POINTERS: usize = 48;
/// Unexplained differences tolerated per run where bits of pointers were changed (see the
/// check in the test).
const MAX_UNEXPLAINED_PER_RUN: usize = 5;
/// The same on the Valkey core, where only the two pointers no hash covers can mislead
/// (see `Target::tolerated`).
const MAX_UNEXPLAINED_VALKEY_PER_RUN: usize = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Damage {
    Truncate,
    ZeroPages,
    FlipBytes,
    PerturbPointers,
}

impl Damage {
    const ALL: [Damage; 4] = [
        Damage::Truncate,
        Damage::ZeroPages,
        Damage::FlipBytes,
        Damage::PerturbPointers,
    ];

    fn name(self) -> &'static str {
        match self {
            Damage::Truncate => "truncate",
            Damage::ZeroPages => "zero-pages",
            Damage::FlipBytes => "flip-bytes",
            Damage::PerturbPointers => "perturb-pointers",
        }
    }
}

/// What one run gave.
#[derive(Debug, Default, Clone)]
struct Outcome {
    exit: i32,
    /// Keys in the dump (0 when none was written).
    keys: u64,
    partial: u64,
    payload_damaged: u64,
    /// Keys with an element whose own length byte was damaged in place: the dump's element
    /// is the source's, its old NUL terminator, then bytes of the allocation's slack up to
    /// a NUL (the sds length grew; the NUL-terminator check passes), or a prefix of it
    /// ending where it held a NUL; other elements may carry payload damage.
    length_damaged: u64,
    /// Keys holding another source key's value or elements (a pointer damaged into a
    /// valid object elsewhere: structurally sound, so undetectable).
    misattributed: u64,
    /// Keys differing from the source beyond in-place payload damage, with details.
    wrong: Vec<String>,
    /// The dump's type of each of `wrong`.
    wrong_types: Vec<String>,
    /// Why the dump did not load, if it did not.
    unloadable: Option<String>,
    /// Anything else that broke a promise (panic, signal, missing dump...).
    broken: Vec<String>,
    /// The tool's one-line error when it wrote nothing (exit 2).
    error: Option<String>,
    /// The report's first warnings, shown for runs that lost much.
    warnings: Vec<String>,
    /// The report's `bucket_check`.
    bucket_check: String,
}

fn str_list(report: &serde_json::Value, field: &str) -> Vec<(u64, String)> {
    report[field]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|k| Some((k["db"].as_u64()?, k["key"].as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Keys in the RDB at `path` whose expire time is at or before `at_ms`, or why the
/// project's own RDB reader (the one `verify` uses) rejects the dump.
fn keys_expired_by(path: &Path, at_ms: i64) -> Result<u64, String> {
    let file = fs::File::open(path).map_err(|e| format!("open {}: {e}", path.display()))?;
    let mut reader =
        rdb::reader::RdbReader::new(std::io::BufReader::new(file)).map_err(|e| e.to_string())?;
    let mut n = 0;
    while let Some(entry) = reader.next_entry().map_err(|e| e.to_string())? {
        if entry.expire_ms.is_some_and(|t| t <= at_ms) {
            n += 1;
        }
    }
    Ok(n)
}

/// Recover one damaged core and check everything the tool promises.
fn run_once(
    damaged: &Path,
    salvage: bool,
    binary: &Path,
    loader: &Path,
    oracle: &mut Connection,
    source_sizes: &BTreeMap<u32, u64>,
    index: &SourceIndex,
) -> Outcome {
    let mut o = Outcome::default();
    let out_dir = tempfile::Builder::new()
        .prefix("damage-out-")
        .tempdir()
        .expect("temp dir");
    let rdb = out_dir.path().join("out.rdb");
    let report_path = out_dir.path().join("out.rdb.report.json");
    let mut args: Vec<&OsStr> = vec![
        damaged.as_os_str(),
        OsStr::new("-o"),
        rdb.as_os_str(),
        // The binary is at hand, as in most incidents: a cut core that lost its notes
        // (gcore writes them last) is still matched by the build-id in its first page.
        OsStr::new("--binary"),
        binary.as_os_str(),
        OsStr::new("--timeout"),
        OsStr::new("20"),
        OsStr::new("-q"),
    ];
    if salvage {
        args.push(OsStr::new("--salvage"));
    }
    let out = run_rescue(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
        o.broken
            .push(format!("the tool panicked:\n{}", describe(&out)));
    }
    let Some(code) = out.status.code() else {
        o.broken
            .push(format!("the tool died of a signal:\n{}", describe(&out)));
        return o;
    };
    o.exit = code;
    match code {
        0 | 1 => {}
        2 => {
            if rdb.exists() {
                o.broken.push("exit 2, yet a dump was written".into());
            }
            o.error = stderr.lines().last().map(str::to_owned);
            return o;
        }
        other => {
            o.broken
                .push(format!("exit status {other}:\n{}", describe(&out)));
            return o;
        }
    }
    if !rdb.is_file() {
        o.broken
            .push(format!("exit {code} without a dump:\n{}", describe(&out)));
        return o;
    }
    let report = read_report(&report_path);
    o.bucket_check = report["bucket_check"]["summary"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    if report["bucket_check"]["on"].as_bool() != Some(o.bucket_check.starts_with("on (")) {
        o.broken
            .push("the report's bucket_check.on disagrees with its summary".into());
    }
    o.warnings = report["warnings"]
        .as_array()
        .map(|w| {
            w.iter()
                .take(4)
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let partial: BTreeSet<(u64, String)> = str_list(&report, "partial_keys").into_iter().collect();
    let ttl_dropped: BTreeSet<(u64, String)> = report["partial_keys"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|k| {
                    k["reason"]
                        .as_str()
                        .is_some_and(|r| r.contains("without a TTL"))
                })
                .filter_map(|k| Some((k["db"].as_u64()?, k["key"].as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let lost: BTreeSet<(u64, String)> = str_list(&report, "lost_keys").into_iter().collect();
    // Every key lost or partial says the kind of its fault, and the kinds count them all.
    let listed = |field: &str| report[field].as_array().cloned().unwrap_or_default();
    let unkinded = listed("lost_keys")
        .iter()
        .chain(listed("partial_keys").iter())
        .filter(|k| k["reason_kind"].as_str().is_none_or(str::is_empty))
        .count();
    if unkinded > 0 {
        o.broken.push(format!(
            "{unkinded} lost or partial keys without a reason_kind"
        ));
    }
    let by_kind: u64 = report["lost_by_kind"]
        .as_object()
        .map_or(0, |m| m.values().filter_map(|v| v.as_u64()).sum());
    let listed_lost =
        listed("lost_keys").len() as u64 + report["lost_keys_not_listed"].as_u64().unwrap_or(0);
    if by_kind != listed_lost {
        o.broken.push(format!(
            "lost_by_kind counts {by_kind} keys, the lost keys listed and not listed are {listed_lost}"
        ));
    }
    o.partial = partial.len() as u64;
    if !salvage && o.partial > 0 {
        o.broken
            .push("keys marked partial in a run without --salvage".into());
    }
    let restored = match RedisServer::try_start_on_rdb(loader, &rdb) {
        Ok(s) => s,
        Err(e) => {
            // Keep the dump for a look, and the lines of the log that say why.
            let kept = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
                "unloadable-{}.rdb",
                damaged
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("dump")
            ));
            let _ = fs::copy(&rdb, &kept);
            let why: Vec<&str> = e
                .lines()
                .filter(|l| {
                    [
                        "RDB",
                        "rdb",
                        "Internal error",
                        "ASSERTION",
                        "Guru",
                        "corrupt",
                        "Duplicate",
                    ]
                    .iter()
                    .any(|w| l.contains(w))
                })
                .take(12)
                .collect();
            o.unloadable = Some(format!(
                "{} (dump kept as {})",
                why.join(" / "),
                kept.display()
            ));
            return o;
        }
    };
    let mut conn = restored.conn();
    let sizes = dbsizes(&mut conn);
    o.keys = sizes.values().sum();
    // A damaged TTL can lie in the past: Redis drops such keys on load, as it drops keys
    // that expired between a SAVE and its load. Only those may be missing.
    let past = keys_expired_by(&rdb, now_ms()).unwrap_or_else(|e| {
        o.broken
            .push(format!("the dump fails the project's RDB reader: {e}"));
        0
    });
    let reported = u64_of(&report, &["totals", "keys"]);
    if o.keys > reported || o.keys + past < reported {
        o.broken.push(format!(
            "the report counts {reported} keys ({past} with a TTL already past), the restored server holds {}",
            o.keys
        ));
    }
    if code == 0 && &sizes != source_sizes {
        o.broken.push(format!(
            "exit 0, but the dump holds {sizes:?} keys per db, the source {source_sizes:?}"
        ));
    }
    for db in sizes.keys() {
        let keys: Vec<Vec<u8>> = scan_keys(&mut conn, *db).into_iter().collect();
        let got = key_states(&mut conn, *db, &keys);
        let want = key_states(oracle, *db, &keys);
        let in_dump: BTreeSet<&Vec<u8>> = keys.iter().collect();
        let absent: Vec<Vec<u8>> = scan_keys(oracle, *db)
            .into_iter()
            .filter(|k| !in_dump.contains(k))
            .collect();
        let mut absent: Vec<(Vec<u8>, KeyState)> =
            if keys.iter().zip(&want).any(|(_, w)| w.ty == "none") {
                let states = key_states(oracle, *db, &absent);
                absent.into_iter().zip(states).collect()
            } else {
                Vec::new()
            };
        for ((key, g), w) in keys.iter().zip(&got).zip(&want) {
            let name = (u64::from(*db), printable(key));
            if lost.contains(&name) {
                o.broken.push(format!(
                    "db {db} key {} is both lost and in the dump",
                    name.1
                ));
            }
            if g == w {
                continue;
            }
            let is_partial = partial.contains(&name);
            if is_partial && is_part_of(g, w, ttl_dropped.contains(&name)) {
                continue;
            }
            if w.ty != "none" && explained_by_payload(g, w, is_partial) {
                o.payload_damaged += 1;
                continue;
            }
            if !is_partial && explained_by_length_byte(g, w) {
                o.length_damaged += 1;
                continue;
            }
            if index.misattributed(g, is_partial) {
                o.misattributed += 1;
                continue;
            }
            if w.ty == "none" {
                if let Some(k) = renamed_from(key, g, &absent).map(<[u8]>::to_vec) {
                    // Each source key explains one damaged name.
                    absent.retain(|(a, _)| *a != k);
                    o.payload_damaged += 1;
                    continue;
                }
            }
            o.wrong_types.push(g.ty.clone());
            o.wrong.push(format!(
                "db {db} key {}{}:\n  dump:   {} pexpiretime {} {}\n  source: {} pexpiretime {} {}",
                snippet(&name.1, 80),
                if partial.contains(&name) {
                    " (partial)"
                } else {
                    ""
                },
                g.ty,
                g.pexpiretime,
                snippet(
                    &format!("{:?}", g.value.iter().map(|v| show(v)).collect::<Vec<_>>()),
                    300
                ),
                w.ty,
                w.pexpiretime,
                snippet(
                    &format!("{:?}", w.value.iter().map(|v| show(v)).collect::<Vec<_>>()),
                    300
                ),
            ));
            // Long values differ past the snippet: name the first element that differs.
            let first_diff =
                (0..g.value.len().max(w.value.len())).find(|&i| g.value.get(i) != w.value.get(i));
            if let (Some(i), Some(last)) = (first_diff, o.wrong.last_mut()) {
                let at = |v: &Vec<Vec<u8>>| v.get(i).map_or("(none)".to_string(), |e| show(e));
                last.push_str(&format!(
                    "\n  first difference at element {i}: dump {:?}, source {:?}",
                    at(&g.value),
                    at(&w.value)
                ));
            }
        }
    }
    select(oracle, 0);
    o
}

fn u64_of(v: &serde_json::Value, path: &[&str]) -> u64 {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(|v| v.as_u64())
        .unwrap_or(0)
}

/// The SAVE file of a running server, copied to `to`.
fn save_to(server: &RedisServer, conn: &mut Connection, to: &Path) {
    let _: () = redis::cmd("SAVE").query(conn).expect("SAVE");
    let name: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("dbfilename")
        .query(conn)
        .expect("CONFIG GET dbfilename");
    let dir: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("dir")
        .query(conn)
        .expect("CONFIG GET dir");
    let from = Path::new(&dir[1]).join(&name[1]);
    fs::copy(&from, to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
    let _ = server;
}

/// The server a campaign damages cores of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// Debian 12's redis-server 7.0.15 on `PATH`, filled by `fill_dataset`: dicts.
    Redis70,
    /// The provisioned Valkey 8.1.8, filled by [`fill_valkey`]: hashtables.
    Valkey818,
    /// The provisioned Redis 3.2.6, filled by [`fill_redis32`]: dicts hashed with
    /// MurmurHash2, collections of string objects, quicklists of ziplists.
    Redis326,
}

impl Target {
    /// The server whose core is damaged.
    fn binary(self) -> std::path::PathBuf {
        match self {
            Target::Redis70 => find_in_path(DEFAULT_SERVER),
            Target::Valkey818 => provisioned_binary("valkey-8.1.8"),
            Target::Redis326 => provisioned_binary("3.2.6"),
        }
    }

    /// The server the source's SAVE and the recovered dumps are loaded into and compared
    /// on: the same, except for 3.2, whose dumps (RDB 7) Debian's 7.0.15 loads, so the
    /// comparison can ask PEXPIRETIME and the rest of today's commands.
    fn loader(self) -> std::path::PathBuf {
        match self {
            Target::Redis326 => find_in_path(DEFAULT_SERVER),
            other => other.binary(),
        }
    }

    fn default_runs(self) -> usize {
        match self {
            Target::Redis70 => DEFAULT_RUNS_PER_KIND,
            Target::Valkey818 | Target::Redis326 => DEFAULT_VALKEY_RUNS_PER_KIND,
        }
    }

    fn summary_file(self) -> &'static str {
        match self {
            Target::Redis70 => "damage-campaign.json",
            Target::Valkey818 => "damage-campaign-valkey-8.1.8.json",
            Target::Redis326 => "damage-campaign-3.2.6.json",
        }
    }

    /// Unexplained wrong keys tolerated per run for `kind` (see the check in `campaign`).
    fn tolerated(self, kind: Damage) -> usize {
        match (self, kind) {
            (_, Damage::Truncate | Damage::ZeroPages) => 0,
            (Target::Redis70, Damage::FlipBytes | Damage::PerturbPointers) => {
                MAX_UNEXPLAINED_PER_RUN
            }
            // Every entry of a Valkey keyspace, set, hash or zset hashtable is checked
            // against its bucket and hash fragment (a zset's by its node's element, and every
            // skiplist node must be one of them): a pointer damaged into another entry is
            // caught. Two pointers are covered by no hash: a raw string's value and a hash
            // field's separately allocated value. Two fields holding one value string are
            // refused, but a flipped bit can still land either pointer on other memory that
            // reads as a valid sds (seen: a raw string given 5,559 bytes of a neighbouring
            // structure; a salvaged hash with such a value), in about one run in twelve.
            (Target::Valkey818, Damage::FlipBytes | Damage::PerturbPointers) => {
                MAX_UNEXPLAINED_VALKEY_PER_RUN
            }
            // The keys, expires, set and hash dicts are checked against their buckets
            // (MurmurHash2, the seed found in the core; set members and hash fields by
            // their text), skiplist nodes against their zset's dict, and every string
            // object against its `refcount` by the object census (a hash field's value, a
            // set member or a top-level value is a string object of its own that no hash
            // covers; a pointer moved onto another key's object makes it held once too
            // often; a shared integer allows one holder fewer, the array's) and every raw
            // string's sds against the other objects' and the key names. Before the
            // census: 7 wrong keys in 8 perturb-pointers runs; with the objects counted
            // but not shared integers, 3 in 88 (a hash value moved onto a shared
            // integer); with shared integers but not the sds, 1 in 24 flip-bytes runs (a
            // raw string's pointer flipped onto a field's sds); with all of it, 2 in 56
            // perturb-pointers runs, both onto shared integers above a perturbed slot of
            // the array (its search then stopped there); since a damaged slot no longer
            // ends the array, none in 48 perturb-pointers runs. None in 56 flip-bytes,
            // 24 zero-pages and 24 truncate runs with all of it.
            (Target::Redis326, Damage::FlipBytes | Damage::PerturbPointers) => 0,
        }
    }
}

#[test]
fn damaged_cores_never_crash_the_tool_nor_yield_a_wrong_key() {
    campaign(Target::Redis70);
}

/// Valkey 8.1.8: the keyspace, sets and hashes are hashtables.
#[test]
fn damaged_valkey_cores_never_crash_the_tool_nor_yield_a_wrong_key() {
    campaign(Target::Valkey818);
}

/// Redis 3.2.6: MurmurHash2 dicts, string-object elements, ziplist quicklists.
#[test]
fn damaged_redis32_cores_never_crash_the_tool_nor_yield_a_wrong_key() {
    campaign(Target::Redis326);
}

fn campaign(target: Target) {
    let started = Instant::now();
    let runs: usize = std::env::var("REDIS_RESCUE_DAMAGE_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(target.default_runs());
    let binary = target.binary();
    let work = tempfile::Builder::new()
        .prefix("damage-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir");

    // The source: filled, saved by the server itself, then dumped with gcore.
    let source = match target {
        // 3.2 has no --enable-debug-command to pass.
        Target::Redis326 => {
            RedisServer::start_version(&binary, "3.2.6", &["--activerehashing", "no"])
        }
        _ => RedisServer::start(&binary, &["--activerehashing", "no"]),
    };
    match target {
        Target::Redis70 => {
            fill_dataset(&source);
        }
        Target::Valkey818 => fill_valkey(&source),
        Target::Redis326 => fill_redis32(&source),
    }
    let mut conn = source.conn();
    let source_sizes = dbsizes(&mut conn);
    let source_total: u64 = source_sizes.values().sum();
    let saved = work.path().join("source.rdb");
    save_to(&source, &mut conn, &saved);
    let core_path = gcore(&source, work.path());
    drop(conn);
    drop(source);
    let core = CoreImage::read(&core_path);
    fs::remove_file(&core_path).expect("remove the core");
    eprintln!(
        "source: {source_total} keys in {} dbs; core of {} MB, {} live writable pages, {} heap pointers ({:.1?})",
        source_sizes.len(),
        core.bytes.len() >> 20,
        core.live_pages.len(),
        core.pointer_slots.len(),
        started.elapsed()
    );

    // The oracle: a server loaded from the source's own SAVE.
    let loader = target.loader();
    let oracle = RedisServer::start_on_rdb(&loader, &saved, &[]);
    let mut oracle_conn = oracle.conn();
    assert_eq!(
        dbsizes(&mut oracle_conn),
        source_sizes,
        "the server loaded from the source's SAVE should hold the source's keys"
    );

    // Control: the undamaged core gives every key back, exactly.
    let undamaged = work.path().join("undamaged.core");
    fs::write(&undamaged, &core.bytes).expect("write the core");
    let index = SourceIndex::read(&mut oracle_conn, &source_sizes);
    let control = run_once(
        &undamaged,
        false,
        &binary,
        &loader,
        &mut oracle_conn,
        &source_sizes,
        &index,
    );
    fs::remove_file(&undamaged).expect("remove the core");
    assert!(
        control.exit == 0
            && control.keys == source_total
            && control.wrong.is_empty()
            && control.payload_damaged == 0
            && control.broken.is_empty()
            && control.unloadable.is_none(),
        "the undamaged core should recover every key exactly: {control:?}"
    );
    // Every target hashes keys with a seeded hash (SipHash, or MurmurHash2 before 4.0): the
    // check that refuses entries a damaged pointer led into a wrong bucket must be on.
    assert!(
        control.bucket_check.starts_with("on ("),
        "the bucket check should be on for the undamaged core: {:?}",
        control.bucket_check
    );
    eprintln!("bucket check: {}", control.bucket_check);

    let mut problems = Vec::new();
    let mut summary = BTreeMap::new();
    // `REDIS_RESCUE_DAMAGE_KINDS=flip-bytes,perturb-pointers` runs only those kinds.
    let only: Option<Vec<String>> = std::env::var("REDIS_RESCUE_DAMAGE_KINDS")
        .ok()
        .map(|v| v.split(',').map(str::to_owned).collect());
    let kinds = Damage::ALL.into_iter().filter(|k| {
        only.as_ref()
            .is_none_or(|o| o.iter().any(|n| n == k.name()))
    });
    // `REDIS_RESCUE_DAMAGE_KEEP=DIR` keeps a copy of every damaged core there, to replay a
    // failing run by hand.
    let keep = std::env::var_os("REDIS_RESCUE_DAMAGE_KEEP").map(std::path::PathBuf::from);
    for kind in kinds {
        let mut rows = Vec::new();
        for i in 0..runs {
            let seed = 0xDA3A_6E00_0000 + (kind as u64) * 10_000 + i as u64;
            let mut rng = Rng(seed);
            let (bytes, what) = core.damaged(kind, &mut rng);
            let path = work.path().join(format!("{}-{i}.core", kind.name()));
            fs::write(&path, &bytes).expect("write the damaged core");
            if let Some(dir) = &keep {
                fs::create_dir_all(dir).expect("create the keep directory");
                fs::write(dir.join(format!("{}-{i}.core", kind.name())), &bytes)
                    .expect("keep the damaged core");
            }
            drop(bytes);
            let salvage = i % 2 == 1;
            let run_started = Instant::now();
            let o = run_once(
                &path,
                salvage,
                &binary,
                &loader,
                &mut oracle_conn,
                &source_sizes,
                &index,
            );
            let took = run_started.elapsed();
            fs::remove_file(&path).expect("remove the damaged core");
            let label = format!(
                "{} run {i} (seed {seed:#x}{}, {took:.1?}): {what}",
                kind.name(),
                if salvage { ", --salvage" } else { "" }
            );
            let altered = o.payload_damaged + o.length_damaged + o.misattributed;
            if kind == Damage::Truncate && altered > 0 {
                problems.push(format!(
                    "{label}: {altered} keys differ from the source although cutting alters no byte"
                ));
            }
            for b in &o.broken {
                problems.push(format!("{label}: {b}"));
            }
            if let Some(u) = &o.unloadable {
                problems.push(format!("{label}: the dump does not load: {u}"));
            }
            // Flipped bits and perturbed pointers can leave a pointer aimed at other memory
            // that passes every check (Redis keeps no redundancy to tell); cuts and zeroed
            // pages alter no pointer into something plausible, so they must give none. On
            // Valkey, where every entry is checked against its bucket, none either (see
            // `tolerated`).
            let by_type = o.wrong_types.iter().fold(BTreeMap::new(), |mut m, t| {
                *m.entry(t.as_str()).or_insert(0usize) += 1;
                m
            });
            if o.wrong.len() > target.tolerated(kind) {
                problems.push(format!(
                    "{label}: {} wrong keys {by_type:?}:\n{}",
                    o.wrong.len(),
                    o.wrong
                        .iter()
                        .take(5)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("\n")
                ));
            }
            eprintln!(
                "{label}\n    exit {}, {} of {source_total} keys back ({} partial, {} payload-damaged, {} length-damaged, {} misattributed), {} wrong{}",
                o.exit,
                o.keys,
                o.partial,
                o.payload_damaged,
                o.length_damaged,
                o.misattributed,
                o.wrong.len(),
                if o.unloadable.is_some() { ", UNLOADABLE" } else { "" }
            );
            if let Some(e) = &o.error {
                eprintln!("    {}", e.chars().take(300).collect::<String>());
            }
            for w in o.wrong.iter().take(3) {
                eprintln!("    wrong: {}", w.replace('\n', "\n    "));
            }
            if o.exit == 1 && o.keys * 10 < source_total * 9 {
                for w in &o.warnings {
                    eprintln!("    warning: {}", w.chars().take(300).collect::<String>());
                }
            }
            rows.push(o);
        }
        let share_of = |runs: &[&Outcome]| {
            runs.iter()
                .map(|o| o.keys as f64 / source_total.max(1) as f64)
                .sum::<f64>()
                / runs.len().max(1) as f64
        };
        let all: Vec<&Outcome> = rows.iter().collect();
        let share = share_of(&all);
        // Runs alternate: odd ones use --salvage.
        let with_flag = |salvage: bool| -> Vec<&Outcome> {
            rows.iter()
                .enumerate()
                .filter(|(i, _)| (i % 2 == 1) == salvage)
                .map(|(_, o)| o)
                .collect()
        };
        let share_salvage = share_of(&with_flag(true));
        let share_plain = share_of(&with_flag(false));
        let exits: BTreeMap<i32, usize> = rows.iter().fold(BTreeMap::new(), |mut m, o| {
            *m.entry(o.exit).or_default() += 1;
            m
        });
        summary.insert(
            kind.name(),
            serde_json::json!({
                "runs": rows.len(),
                "exits": exits.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>(),
                "average_share_salvaged": share,
                "average_share_without_salvage_flag": share_plain,
                "average_share_with_salvage_flag": share_salvage,
                "partial_keys": rows.iter().map(|o| o.partial).sum::<u64>(),
                "payload_damaged_keys": rows.iter().map(|o| o.payload_damaged).sum::<u64>(),
                "length_damaged_keys": rows.iter().map(|o| o.length_damaged).sum::<u64>(),
                "misattributed_keys": rows.iter().map(|o| o.misattributed).sum::<u64>(),
                "wrong_keys": rows.iter().map(|o| o.wrong.len()).sum::<usize>(),
                "unloadable_dumps": rows.iter().filter(|o| o.unloadable.is_some()).count(),
                "crashes": rows.iter().filter(|o| !o.broken.is_empty()).count(),
            }),
        );
    }
    let wrong_total: usize = summary
        .values()
        .filter_map(|k| k["wrong_keys"].as_u64())
        .sum::<u64>() as usize;
    let summary = serde_json::json!({
        "target": format!("{target:?}"),
        "wrong_keys_total": wrong_total,
        "source_keys": source_total,
        "runs_per_kind": runs,
        "kinds": summary,
        "seconds": started.elapsed().as_secs_f64(),
    });
    let text = serde_json::to_string_pretty(&summary).unwrap_or_default();
    eprintln!("damage campaign summary:\n{text}");
    let _ = fs::write(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(target.summary_file()),
        &text,
    );
    assert!(
        problems.is_empty(),
        "{} problems in the damage campaign:\n{}",
        problems.len(),
        snippet(&problems.join("\n\n"), 20_000)
    );
}
