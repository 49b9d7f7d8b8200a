//! Rolling a Redis 8 core back to an older server: recover a core of 8.2.3 with
//! `--rdb-version 10`, load the dump into Debian 12's redis-server 7.0.15 and compare it key
//! by key with the still-running source (TYPE, value, PEXPIRETIME; stream groups; function
//! libraries). RDB 10 cannot hold hash field TTLs: every hash with field TTLs must be
//! reported, lost or written partial (then with every field and value, and a reason that
//! says the field TTLs were dropped), never written without its TTLs unreported; the
//! `vectorset` keys are reported lost by their module type.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::time::Instant;

use redis::Connection;

use super::build::Build;
use super::fill::{fill, FillOptions};
use super::oracle::{db_contents, KeyState};
use super::truth::{function_list, record_truth};
use crate::common::{
    check_rdb, dbsizes, describe, find_in_path, gcore, printable, read_report, redis_version,
    run_rescue, select, show, snippet, RedisServer, DEFAULT_SERVER,
};

/// The older server the dump is written for: Debian 12's package on PATH.
const TARGET_VERSION: &str = "7.0.15";

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
                .filter(|p| wanted.contains(&super::fill::value_text(&p[0]).as_str()))
                .map(|p| {
                    format!(
                        "{}={}",
                        super::fill::value_text(&p[0]),
                        super::fill::value_text(&p[1])
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

/// The whole test for the Redis 8 build `name` (started without a DWARF requirement: the
/// core is read with `--no-binary`, the shipped profile).
pub fn rollback_to_rdb10(name: &'static str) {
    let started = Instant::now();
    let build = Build::locate(name);
    let target = find_in_path(DEFAULT_SERVER);
    let source =
        RedisServer::start_version(&build.server, build.name, &["--activerehashing", "no"]);
    let filled = fill(
        &source,
        &build,
        FillOptions {
            compress_lists: true,
            vectorsets: true,
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
    let args: Vec<&OsStr> = vec![
        core.as_os_str(),
        OsStr::new("--no-binary"),
        OsStr::new("--rdb-version"),
        OsStr::new("10"),
        OsStr::new("-o"),
        rdb.as_os_str(),
    ];
    let out = run_rescue(&args);
    let _ = fs::remove_file(&core);
    let ctx = describe(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}: --rdb-version 10 should write every key RDB 10 can hold and report the others (exit 1)\n{ctx}",
        build.name
    );
    let report = read_report(&work.path().join("dump.rdb.report.json"));
    let header = fs::read(&rdb)
        .ok()
        .and_then(|b| b.get(0..9).map(|h| String::from_utf8_lossy(h).into_owned()));
    assert_eq!(
        (report["rdb_version"].as_u64(), header.as_deref()),
        (Some(10), Some("REDIS0010")),
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
                "db {db} hash {}: has field TTLs, which RDB 10 cannot hold, yet it is neither in lost_keys nor in partial_keys: written without its field TTLs, unreported",
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
                "db {} {}: listed though RDB 10 holds it: {e}",
                id.0, id.1
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{}: the --rdb-version 10 report is wrong:\n{}\n--- lost_keys ---\n{}\n--- partial_keys ---\n{}",
        build.name,
        bad.join("\n"),
        snippet(&report["lost_keys"].to_string(), 3000),
        snippet(&report["partial_keys"].to_string(), 3000)
    );

    // Debian 12's checker and server read it.
    let (keys, _) = check_rdb(&find_in_path("redis-check-rdb"), &rdb);
    let total: u64 = truth.dbsizes.values().sum();
    assert_eq!(
        keys,
        total - expected_missing.len() as u64,
        "{}: keys Debian 12's redis-check-rdb read (every key but the lost ones)",
        build.name
    );
    let restored = RedisServer::start_on_rdb(&target, &rdb, &[]);
    let mut rconn = restored.conn();
    assert_eq!(
        redis_version(&mut rconn),
        TARGET_VERSION,
        "{} is not Debian 12's {TARGET_VERSION}",
        target.display()
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
        "{}: the dump written with --rdb-version 10 and loaded into {TARGET_VERSION} differs from the source ({} differences; DBSIZE restored {sizes:?}):\n{}",
        build.name,
        diffs.len(),
        diffs.iter().take(40).cloned().collect::<Vec<_>>().join("\n")
    );
    log(&format!(
        "{}: --rdb-version 10 loaded into {TARGET_VERSION}: {compared} keys equal (type, value, PEXPIRETIME; stream groups; {} function libraries); {} lost as reported ({} hashes with field TTLs, {} vectorsets), {} partial; in {:.1?}",
        build.name,
        fs.len(),
        expected_missing.len(),
        truth.filled.field_ttl_hashes.len(),
        truth.filled.module_keys.len(),
        partial.len(),
        started.elapsed()
    ));
}
