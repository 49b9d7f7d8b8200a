//! Rolling a core back to an older server: recover a core of Redis 8.2.3 with
//! `--rdb-version 10` and load the dump into Debian 12's redis-server 7.0.15, or a core of
//! Valkey 9.1.2 with `--rdb-version 11` (`REDIS0011`) and load it into Valkey 8.1.8, and
//! compare it key by key with the still-running source (TYPE, value, PEXPIRETIME; stream
//! groups; function libraries). RDB 10 and 11 cannot hold hash field TTLs: every hash with
//! field TTLs must be reported, lost or written partial (then with every field and value, and
//! a reason that says the field TTLs were dropped), never written without its TTLs
//! unreported — for Valkey 9 to 8.1 written partial, not lost; the `vectorset` keys are
//! reported lost by their module type.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::path::PathBuf;
use std::time::Instant;

use redis::Connection;

use super::build::{Build, Generation};
use super::fill::{fill, FillOptions};
use super::oracle::{db_contents, KeyState};
use super::truth::{function_list, record_truth};
use crate::common::{
    check_rdb, dbsizes, describe, find_in_path, gcore, printable, read_report, run_rescue, select,
    show, snippet, RedisServer, DEFAULT_SERVER,
};

/// The older server a dump is written for.
struct Target {
    /// For messages: `Debian 12's 7.0.15`.
    name: String,
    server: PathBuf,
    checker: PathBuf,
    /// The INFO server field and value that name its version.
    version: (&'static str, String),
    /// The `--rdb-version` it loads.
    rdb_version: u64,
    /// Hashes with field TTLs must be written partial (without the TTLs), not lost.
    field_ttls_partial: bool,
}

impl Target {
    /// Debian 12's redis-server 7.0.15 on PATH: RDB 10.
    fn debian12() -> Target {
        Target {
            name: "Debian 12's 7.0.15".into(),
            server: find_in_path(DEFAULT_SERVER),
            checker: find_in_path("redis-check-rdb"),
            version: ("redis_version", "7.0.15".into()),
            rdb_version: 10,
            field_ttls_partial: false,
        }
    }

    /// A provisioned build (Valkey 8.1.8): its native RDB version.
    fn build(name: &'static str) -> Target {
        let b = Build::locate(name);
        Target {
            name: b.name.to_string(),
            version: b.info_version_field(),
            rdb_version: u64::from(b.native_rdb_version()),
            server: b.server,
            checker: b.checker,
            field_ttls_partial: true,
        }
    }
}

fn log(msg: &str) {
    eprintln!("[rollback] {msg}");
}

/// A zset's ZRANGE WITHSCORES reply with the scores as numbers: 7.0 prints them with
/// `%.17g`, 7.2+ with the shortest text that reads back the same double.
fn normalized(mut s: KeyState) -> KeyState {
    if s.ty == "zset" {
        for (i, item) in s.value.iter_mut().enumerate() {
            if i % 2 == 1 {
                let text = String::from_utf8_lossy(item).into_owned();
                let score: f64 = text
                    .parse()
                    .unwrap_or_else(|_| panic!("zset score {text:?} is not a number"));
                *item = format!("{:#x}", score.to_bits()).into_bytes();
            }
        }
    }
    s
}

/// The value of `field` in INFO server (`redis_version`, `valkey_version`).
fn info_server_field(conn: &mut Connection, field: &str) -> Option<String> {
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query(conn)
        .expect("INFO server");
    info.lines()
        .find_map(|l| l.trim().strip_prefix(field)?.strip_prefix(':'))
        .map(str::to_string)
}

/// PEXPIRETIME of each of `keys` in `db`. Leaves the connection on db 0.
fn pexpiretimes(conn: &mut Connection, db: u32, keys: &[Vec<u8>]) -> Vec<i64> {
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(500) {
        let mut p = redis::pipe();
        p.cmd("SELECT").arg(db).ignore();
        for k in chunk {
            p.cmd("PEXPIRETIME").arg(k.as_slice());
        }
        let times: Vec<i64> = p
            .query(conn)
            .unwrap_or_else(|e| panic!("db {db}: PEXPIRETIME pipeline: {e}"));
        out.extend(times);
    }
    select(conn, 0);
    out
}

/// Per stream group: name, consumers, pending, last-delivered-id (fields both 7.0 and 8.x
/// have in XINFO GROUPS; XINFO STREAM FULL gained fields in 7.2).
fn group_summary(conn: &mut Connection, db: u32, key: &[u8]) -> Vec<String> {
    select(conn, db);
    let groups: redis::Value = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(key)
        .query(conn)
        .unwrap_or_else(|e| panic!("XINFO GROUPS {}: {e}", show(key)));
    let redis::Value::Array(groups) = groups else {
        panic!("XINFO GROUPS reply {groups:?}")
    };
    let mut out: Vec<String> = groups
        .iter()
        .map(|g| {
            let redis::Value::Array(kv) = g else {
                panic!("XINFO GROUPS item {g:?}")
            };
            let wanted = ["name", "consumers", "pending", "last-delivered-id"];
            kv.chunks(2)
                .filter(|p| wanted.contains(&crate::common::value_text(&p[0]).as_str()))
                .map(|p| {
                    format!(
                        "{}={}",
                        crate::common::value_text(&p[0]),
                        crate::common::value_text(&p[1])
                    )
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    out.sort();
    select(conn, 0);
    out
}

/// The whole test for the Redis 8 build `name` and Debian 12's 7.0.15 (RDB 10).
pub fn rollback_to_rdb10(name: &'static str) {
    rollback(name, Target::debian12());
}

/// The whole test for the Valkey 9 build `name` and the Valkey 8.1 build `target` (RDB 11).
pub fn rollback_valkey9(name: &'static str, target: &'static str) {
    rollback(name, Target::build(target));
}

/// Recover a core of `name` for `target` and compare (the core is read with `--no-binary`,
/// the shipped profile).
fn rollback(name: &'static str, target: Target) {
    let started = Instant::now();
    let build = Build::locate(name);
    let rdb_version = target.rdb_version;
    let magic = format!("REDIS{rdb_version:04}");
    let source =
        RedisServer::start_version(&build.server, build.name, &["--activerehashing", "no"]);
    let filled = fill(
        &source,
        &build,
        FillOptions {
            compress_lists: true,
            vectorsets: build.generation() == Generation::Redis8,
        },
    );
    let mut notes = Vec::new();
    let truth = record_truth(&source, &build, filled, false, true, &mut notes);
    let work = tempfile::Builder::new()
        .prefix(&format!("rollback-{}-", build.tag()))
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("create the test's work dir");
    let core = gcore(&source, work.path());
    let rdb = work.path().join("dump.rdb");
    let rdb_version_arg = rdb_version.to_string();
    let args: Vec<&OsStr> = vec![
        core.as_os_str(),
        OsStr::new("--no-binary"),
        OsStr::new("--rdb-version"),
        OsStr::new(&rdb_version_arg),
        OsStr::new("-o"),
        rdb.as_os_str(),
    ];
    let out = run_rescue(&args);
    let _ = fs::remove_file(&core);
    let ctx = describe(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}: --rdb-version {rdb_version} should write every key RDB {rdb_version} can hold and report the others (exit 1)\n{ctx}",
        build.name
    );
    let report = read_report(&work.path().join("dump.rdb.report.json"));
    let header = fs::read(&rdb)
        .ok()
        .and_then(|b| b.get(0..9).map(|h| String::from_utf8_lossy(h).into_owned()));
    assert_eq!(
        (report["rdb_version"].as_u64(), header.as_deref()),
        (Some(rdb_version), Some(magic.as_str())),
        "{}: report rdb_version and the file's header",
        build.name
    );

    // What the report says of every key it did not write whole.
    let listed = |field: &str| -> BTreeMap<(u32, String), String> {
        report[field]
            .as_array()
            .unwrap_or_else(|| panic!("report has no {field} array"))
            .iter()
            .map(|e| {
                (
                    (
                        e["db"].as_u64().expect("db of a listed key") as u32,
                        e["key"].as_str().unwrap_or_default().to_string(),
                    ),
                    e.to_string(),
                )
            })
            .collect()
    };
    let lost = listed("lost_keys");
    let partial = listed("partial_keys");
    let mut bad = Vec::new();
    let mut expected_missing: BTreeSet<(u32, Vec<u8>)> = BTreeSet::new();
    for (db, key) in &truth.filled.field_ttl_hashes {
        let id = (*db, printable(key));
        match (lost.get(&id), partial.get(&id)) {
            (Some(e), _) if target.field_ttls_partial => bad.push(format!(
                "db {db} hash {}: lost, but {} holds its fields and values: it should be written partial, without its field TTLs: {e}",
                show(key),
                target.name
            )),
            (Some(_), _) => {
                expected_missing.insert((*db, key.clone()));
            }
            // Written without its field TTLs, and said so: its fields and values must all be
            // there (compared below with the other keys).
            (None, Some(e)) if e.contains("TTL") => {}
            (None, Some(e)) => bad.push(format!(
                "db {db} hash {}: partial, but the reason does not say its field TTLs were dropped: {e}",
                show(key)
            )),
            (None, None) => bad.push(format!(
                "db {db} hash {}: has field TTLs, which RDB {rdb_version} cannot hold, yet it is neither in lost_keys nor in partial_keys: written without its field TTLs, unreported",
                show(key)
            )),
        }
    }
    for (db, key) in &truth.filled.module_keys {
        let id = (*db, printable(key));
        match lost.get(&id) {
            Some(e) if e.contains("vectorset") => {
                expected_missing.insert((*db, key.clone()));
            }
            other => bad.push(format!(
                "db {db} {}: a vectorset key should be lost with its module type named: {other:?}",
                show(key)
            )),
        }
    }
    let reported: BTreeSet<(u32, String)> = truth
        .filled
        .field_ttl_hashes
        .iter()
        .chain(&truth.filled.module_keys)
        .map(|(db, k)| (*db, printable(k)))
        .collect();
    for (id, e) in lost.iter().chain(&partial) {
        if !reported.contains(id) {
            bad.push(format!(
                "db {} {}: listed though RDB {rdb_version} holds it: {e}",
                id.0, id.1
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{}: the --rdb-version {rdb_version} report is wrong:\n{}\n--- lost_keys ---\n{}\n--- partial_keys ---\n{}",
        build.name,
        bad.join("\n"),
        snippet(&report["lost_keys"].to_string(), 3000),
        snippet(&report["partial_keys"].to_string(), 3000)
    );

    // The target's checker and server read it.
    let (keys, _) = check_rdb(&target.checker, &rdb);
    let total: u64 = truth.dbsizes.values().sum();
    assert_eq!(
        keys,
        total - expected_missing.len() as u64,
        "{}: keys {}'s {} read (every key but the lost ones)",
        build.name,
        target.name,
        target.checker.display()
    );
    let restored = RedisServer::start_on_rdb(&target.server, &rdb, &[]);
    let mut rconn = restored.conn();
    let (field, want) = &target.version;
    assert_eq!(
        info_server_field(&mut rconn, field).as_deref(),
        Some(want.as_str()),
        "{} is not {} (INFO server {field})",
        target.server.display(),
        target.name
    );
    let mut sconn = source.conn();
    let mut diffs = Vec::new();
    let mut compared = 0usize;
    for &db in truth.dbsizes.keys() {
        let mut want = db_contents(&mut sconn, db);
        let got = db_contents(&mut rconn, db);
        want.retain(|k, _| !expected_missing.contains(&(db, k.clone())));
        for (k, w) in &want {
            compared += 1;
            match got.get(k) {
                None => diffs.push(format!("db {db} {}: missing", show(k))),
                Some(g) if normalized(g.clone()) != normalized(w.clone()) => diffs.push(format!(
                    "db {db} {}: source {} of {} items, restored {} of {} items",
                    show(k),
                    w.ty,
                    w.value.len(),
                    g.ty,
                    g.value.len()
                )),
                Some(_) => {}
            }
        }
        for k in got.keys().filter(|k| !want.contains_key(*k)) {
            diffs.push(format!("db {db} {}: not in the source", show(k)));
        }
        let keys: Vec<Vec<u8>> = want.keys().cloned().collect();
        let (a, b) = (
            pexpiretimes(&mut sconn, db, &keys),
            pexpiretimes(&mut rconn, db, &keys),
        );
        for ((k, x), y) in keys.iter().zip(&a).zip(&b) {
            if x != y {
                diffs.push(format!(
                    "db {db} {}: PEXPIRETIME source {x}, restored {y}",
                    show(k)
                ));
            }
        }
        for (k, w) in &want {
            if w.ty == "stream" {
                let (x, y) = (
                    group_summary(&mut sconn, db, k),
                    group_summary(&mut rconn, db, k),
                );
                if x != y {
                    diffs.push(format!(
                        "db {db} stream {}: XINFO GROUPS source {x:?}, restored {y:?}",
                        show(k)
                    ));
                }
            }
        }
    }
    let (fs, fr) = (function_list(&mut sconn), function_list(&mut rconn));
    if fs != fr {
        diffs.push(format!(
            "FUNCTION LIST WITHCODE: source {fs:#?}\nrestored {fr:#?}"
        ));
    }
    let sizes = dbsizes(&mut rconn);
    assert!(
        diffs.is_empty(),
        "{}: the dump written with --rdb-version {rdb_version} and loaded into {} differs from the source ({} differences; DBSIZE restored {sizes:?}):\n{}",
        build.name,
        target.name,
        diffs.len(),
        diffs.iter().take(40).cloned().collect::<Vec<_>>().join("\n")
    );
    log(&format!(
        "{}: --rdb-version {rdb_version} loaded into {}: {compared} keys equal (type, value, PEXPIRETIME; stream groups; {} function libraries); {} lost and {} partial as reported (of {} hashes with field TTLs and {} vectorsets); in {:.1?}",
        build.name,
        target.name,
        fs.len(),
        expected_missing.len(),
        partial.len(),
        truth.filled.field_ttl_hashes.len(),
        truth.filled.module_keys.len(),
        started.elapsed()
    ));
    // Checked last, so that a failure here means that everything else passed: the summary
    // must not put the partial keys down to --salvage, which this run did not use (they
    // were written without the field TTLs the target cannot hold).
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary = stderr
        .lines()
        .find(|l| l.contains("written partial"))
        .unwrap_or_default();
    assert!(
        !partial.is_empty() && !summary.is_empty() && !summary.contains("--salvage"),
        "{}: every other check passed, but the run's summary line for its {} partial keys puts them down to --salvage, which the run was not given (they are partial because RDB {rdb_version} cannot hold their field TTLs, as partial_keys says): {summary:?}",
        build.name,
        partial.len()
    );
}
