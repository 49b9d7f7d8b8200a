//! Restore a recovered RDB into a fresh server of the same build and compare it with the
//! truth: DBSIZE and expires per db, every TTL, the streams' consumer groups (XINFO), and the
//! whole dataset — by DEBUG DIGEST, or key by key against the still-running source server
//! (TYPE and value of every key).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::Duration;

use redis::Connection;

use super::build::Build;
use super::truth::{
    expiries, field_ttls, function_list, wait_rehash_done, Expiry, FieldTtls, MatrixTruth,
};
use crate::common::{
    bulk, bulks, dbsizes, keyspace_info, probe_streams, queue_value_read, select, show, snippet,
    stream_differences, stream_entries, RedisServer,
};

/// How the restored dataset is compared with the source's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Oracle {
    /// DEBUG DIGEST, equal to the source's (after the restored server finished rehashing);
    /// key by key if DEBUG DIGEST kills the restored server.
    Digest,
    /// Key by key against the source only (for servers whose DEBUG DIGEST cannot be trusted
    /// with the dataset).
    KeyByKey,
}

/// TYPE and value of a key, as ordinary commands return them (sets and hashes sorted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyState {
    pub ty: String,
    pub value: Vec<Vec<u8>>,
}

/// Every key of `db` (SCAN, deduplicated) with its TYPE and value. Leaves the connection on
/// db 0.
pub fn db_contents(conn: &mut Connection, db: u32) -> BTreeMap<Vec<u8>, KeyState> {
    let keys = crate::common::scan_keys(conn, db);
    let keys: Vec<Vec<u8>> = keys.into_iter().collect();
    let mut out = BTreeMap::new();
    for chunk in keys.chunks(200) {
        let mut p = redis::pipe();
        for k in chunk {
            p.cmd("TYPE").arg(k.as_slice());
        }
        let types: Vec<String> = p
            .query(conn)
            .unwrap_or_else(|e| panic!("db {db}: TYPE pipeline: {e}"));
        let mut p = redis::pipe();
        for (k, ty) in chunk.iter().zip(&types) {
            queue_value_read(&mut p, k, ty);
        }
        let values: Vec<redis::Value> = p
            .query(conn)
            .unwrap_or_else(|e| panic!("db {db}: value pipeline: {e}"));
        for ((k, ty), v) in chunk.iter().zip(types).zip(values) {
            let value = match ty.as_str() {
                "string" => vec![bulk(&v)],
                // Entries in order: ID, then field, value, …, each entry as one item.
                "stream" => stream_entries(&v),
                "list" | "zset" => bulks(&v),
                "set" => {
                    let mut m = bulks(&v);
                    m.sort();
                    m
                }
                "hash" => {
                    let flat = bulks(&v);
                    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = flat
                        .chunks(2)
                        .map(|c| (c[0].clone(), c[1].clone()))
                        .collect();
                    pairs.sort();
                    pairs.into_iter().flat_map(|(f, v)| [f, v]).collect()
                }
                _ => Vec::new(),
            };
            out.insert(k.clone(), KeyState { ty, value });
        }
    }
    select(conn, 0);
    out
}

fn describe_state(s: &KeyState) -> String {
    let items: Vec<String> = s
        .value
        .iter()
        .take(6)
        .map(|v| snippet(&show(v), 60))
        .collect();
    format!("{} of {} items [{}]", s.ty, s.value.len(), items.join(", "))
}

/// Differences between the source's and the restored server's datasets in `dbs`, one line
/// each (at most `max`), and how many keys were compared.
pub fn key_by_key_diff(
    source: &mut Connection,
    restored: &mut Connection,
    dbs: &[u32],
    max: usize,
) -> (Vec<String>, usize) {
    let mut diffs = Vec::new();
    let mut compared = 0;
    for &db in dbs {
        let want = db_contents(source, db);
        let got = db_contents(restored, db);
        compared += want.len();
        for (k, w) in &want {
            match got.get(k) {
                None => diffs.push(format!("db {db} {}: missing", show(k))),
                Some(g) if g != w => diffs.push(format!(
                    "db {db} {}: want {}, got {}",
                    show(k),
                    describe_state(w),
                    describe_state(g)
                )),
                Some(_) => {}
            }
        }
        for k in got.keys().filter(|k| !want.contains_key(*k)) {
            diffs.push(format!("db {db} {}: not in the source", show(k)));
        }
    }
    let n = diffs.len();
    diffs.truncate(max);
    if n > max {
        diffs.push(format!("… {} more", n - max));
    }
    (diffs, compared)
}

/// Check a restored server's TTLs against the truth's: each key's absolute expiry interval
/// must overlap the source's (both are exact on 7.0+, within the clock around a PTTL before).
fn assert_expiries(build: &Build, truth: &MatrixTruth, got: &[Expiry], what: &str) {
    let wrong: Vec<String> = truth
        .expiries
        .iter()
        .zip(got)
        .filter(|(w, g)| g.lo < 0 || g.lo.max(w.lo) > g.hi.min(w.hi))
        .map(|(w, g)| {
            format!(
                "db {} {}: source expiry in [{}, {}], restored [{}, {}] (negative: -1 no TTL, -2 no key)",
                w.db,
                show(&w.key),
                w.lo,
                w.hi,
                g.lo,
                g.hi
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} {what}: {} of {} TTL keys have another expiry after restoring:\n{}",
        build.name,
        wrong.len(),
        got.len(),
        wrong
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn check_version(conn: &mut Connection, build: &Build, what: &str) {
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query(conn)
        .expect("INFO server");
    let (field, want) = build.info_version_field();
    let got = info
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{field}:")))
        .map(str::to_string);
    assert_eq!(
        got.as_deref(),
        Some(want.as_str()),
        "{what}: INFO server {field} of {}",
        build.server.display()
    );
}

/// Check that a server started from `build` is that version (INFO server).
pub fn assert_server_version(server: &RedisServer, build: &Build, what: &str) {
    check_version(&mut server.conn(), build, what);
}

/// Start a fresh server of the build on `rdb` and compare it with the truth and the source;
/// returns which oracle decided (for the test's summary).
pub fn assert_restores(
    build: &Build,
    rdb: &Path,
    truth: &MatrixTruth,
    source: Option<&RedisServer>,
    oracle: Oracle,
    what: &str,
) -> String {
    let server = RedisServer::start_version_on_rdb(&build.server, build.name, rdb, &[]);
    let mut conn = server.conn();
    check_version(&mut conn, build, what);
    let sizes = dbsizes(&mut conn);
    assert_eq!(
        sizes,
        truth.dbsizes,
        "{} {what}: DBSIZE per db after restoring {} (left) vs the source (right)",
        build.name,
        rdb.display()
    );
    let expires: BTreeMap<u32, u64> = keyspace_info(&mut conn)
        .into_iter()
        .map(|(db, (_, e))| (db, e))
        .collect();
    assert_eq!(
        expires, truth.expires,
        "{} {what}: INFO keyspace expires per db after restoring (left) vs the source (right)",
        build.name
    );
    let got = expiries(&mut conn, build, &truth.filled.ttl_keys);
    assert_expiries(build, truth, &got, what);
    let mut extra_notes = Vec::new();
    if !truth.field_ttls.is_empty() {
        let got = field_ttls(&mut conn, &truth.filled.field_ttl_hashes);
        assert_field_ttls(build, &truth.field_ttls, &got, what);
        let n: usize = truth.field_ttls.iter().map(|h| h.fields.len()).sum();
        extra_notes.push(format!(
            "HPEXPIRETIME of all {n} fields of {} hashes equal",
            truth.field_ttls.len()
        ));
    }
    if let Some(want) = &truth.functions {
        let got = function_list(&mut conn);
        assert_eq!(
            &got, want,
            "{} {what}: FUNCTION LIST WITHCODE after restoring (left) vs the source (right)",
            build.name
        );
        extra_notes.push(format!(
            "FUNCTION LIST WITHCODE equal ({} libraries)",
            want.len()
        ));
    }
    // Consumer groups, which DEBUG DIGEST does not cover (and key by key does not read).
    let got_streams = probe_streams(&mut conn, &truth.filled.streams, build.has_xinfo_full());
    let diffs = stream_differences(&truth.streams, &got_streams);
    assert!(
        diffs.is_empty(),
        "{} {what}: {} of {} streams differ after restoring ({}):\n{}",
        build.name,
        diffs.len(),
        truth.streams.len(),
        if build.has_xinfo_full() {
            "XINFO STREAM FULL COUNT 0"
        } else {
            "XINFO STREAM, GROUPS, CONSUMERS and XPENDING without idle times"
        },
        snippet(&diffs.join("\n\n"), 8000)
    );
    let streams_note = if truth.streams.is_empty() {
        "no streams".to_string()
    } else {
        format!(
            "{} streams' {} equal",
            truth.streams.len(),
            if build.has_xinfo_full() {
                "XINFO STREAM FULL COUNT 0"
            } else {
                "XINFO STREAM/GROUPS/CONSUMERS and XPENDING (idle times aside)"
            }
        )
    };
    let dbs: Vec<u32> = truth.dbsizes.keys().copied().collect();

    let key_by_key = |reason: &str| -> String {
        let Some(source) = source else {
            panic!(
                "{} {what}: {reason}, and the source server is gone (it died for a kernel core): nothing to compare key by key with",
                build.name
            )
        };
        // The server that answers may be a new one when DEBUG DIGEST killed the first.
        let fresh;
        let target = if server_alive(&server) {
            &server
        } else {
            fresh = RedisServer::start_version_on_rdb(&build.server, build.name, rdb, &[]);
            &fresh
        };
        let (diffs, compared) = key_by_key_diff(&mut source.conn(), &mut target.conn(), &dbs, 30);
        assert!(
            diffs.is_empty(),
            "{} {what}: oracle key-by-key against the source ({reason}): {} differences:\n{}",
            build.name,
            diffs.len(),
            diffs.join("\n")
        );
        format!("key-by-key against the source, {compared} keys equal ({reason})")
    };

    let verdict = match oracle {
        Oracle::KeyByKey => key_by_key("DEBUG DIGEST not used for this dataset"),
        Oracle::Digest => {
            let want = truth
                .digest
                .as_deref()
                .expect("the digest oracle needs the source's digest");
            // 2.8 and 3.0 load without RESIZEDB, so their key dicts are left mid-rehash, and
            // their DEBUG DIGEST then dies on a dict fingerprint assertion (seen here):
            // wait for the rehash to finish (activerehashing is on) first.
            let waited = wait_rehash_done(&server, &mut conn, build, &dbs);
            let reply: redis::RedisResult<String> =
                redis::cmd("DEBUG").arg("DIGEST").query(&mut conn);
            match reply {
                Ok(got) if got == want => {
                    format!("DEBUG DIGEST {got} equal to the source's ({waited})")
                }
                Ok(got) => {
                    let (diffs, _) = match source {
                        Some(source) => {
                            key_by_key_diff(&mut source.conn(), &mut server.conn(), &dbs, 30)
                        }
                        None => (
                            vec!["(the source server is gone: no key-by-key diff)".into()],
                            0,
                        ),
                    };
                    panic!(
                        "{} {what}: oracle DEBUG DIGEST: restored {got}, source {want}; key-by-key differences ({}):\n{}",
                        build.name,
                        diffs.len(),
                        diffs.join("\n")
                    )
                }
                Err(e) => {
                    std::thread::sleep(Duration::from_millis(300));
                    let reason = format!(
                        "DEBUG DIGEST failed on the restored server ({e}); server alive: {}; {waited}; from its log:\n{}",
                        server_alive(&server),
                        crash_summary(&server)
                    );
                    eprintln!("{} {what}: {reason}", build.name);
                    key_by_key(&reason)
                }
            }
        }
    };
    extra_notes.insert(0, streams_note);
    format!("{verdict}; {}", extra_notes.join("; "))
}

/// Every field of every hash with field TTLs must be back, with the same HPEXPIRETIME.
pub fn assert_field_ttls(build: &Build, want: &[FieldTtls], got: &[FieldTtls], what: &str) {
    let mut bad = Vec::new();
    for (w, g) in want.iter().zip(got) {
        if w == g {
            continue;
        }
        let wf: BTreeMap<&[u8], i64> = w.fields.iter().map(|(f, t)| (f.as_slice(), *t)).collect();
        let gf: BTreeMap<&[u8], i64> = g.fields.iter().map(|(f, t)| (f.as_slice(), *t)).collect();
        let mut lines: Vec<String> = wf
            .iter()
            .filter(|(f, t)| gf.get(*f) != Some(*t))
            .map(|(f, t)| format!("field {}: source {t}, restored {:?}", show(f), gf.get(f)))
            .collect();
        lines.extend(
            gf.keys()
                .filter(|f| !wf.contains_key(*f))
                .map(|f| format!("field {}: not in the source", show(f))),
        );
        lines.truncate(10);
        bad.push(format!(
            "db {} hash {} ({} fields in the source, {} restored):\n  {}",
            w.db,
            show(&w.key),
            w.fields.len(),
            g.fields.len(),
            lines.join("\n  ")
        ));
    }
    assert!(
        bad.is_empty() && want.len() == got.len(),
        "{} {what}: {} of {} hashes with field TTLs differ after restoring (HPEXPIRETIME of every field; -1 no TTL, -2 no field):\n{}",
        build.name,
        bad.len(),
        want.len(),
        bad.join("\n")
    );
}

fn server_alive(server: &RedisServer) -> bool {
    let Ok(mut conn) = server.try_conn() else {
        return false;
    };
    redis::cmd("PING").query::<String>(&mut conn).is_ok()
}

/// The telling lines of a server's log after a crash (assertion, signal, the command's stack
/// frames), or its last lines.
fn crash_summary(server: &RedisServer) -> String {
    let log = fs::read(server.log_path()).unwrap_or_default();
    let log = String::from_utf8_lossy(&log);
    let markers = [
        "ASSERTION",
        "==>",
        "crashed by signal",
        "Guru Meditation",
        "Digest",
        "Dataset",
        "Iterator",
        "debugCommand",
    ];
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| markers.iter().any(|m| l.contains(m)))
        .take(12)
        .collect();
    if lines.is_empty() {
        crate::common::tail_of(&server.log_path(), 12)
    } else {
        lines.join("\n")
    }
}
