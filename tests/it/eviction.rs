//! Per-key eviction data survives a rescue: under an LFU policy every key's access counter
//! (OBJECT FREQ) is the same after restore, decayed to the time of the core; under an LRU
//! policy OBJECT IDLETIME is the idle time as of the core (so the restored server may lag
//! the live source by the seconds that passed since the core was taken, never more).

use std::ffi::OsStr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::{describe, gcore, provisioned_binary, read_report, run_rescue, RedisServer};

const VERSION: &str = "6.2.14";

fn object(conn: &mut redis::Connection, what: &str, key: &str) -> i64 {
    redis::cmd("OBJECT")
        .arg(what)
        .arg(key)
        .query(conn)
        .unwrap_or_else(|e| panic!("OBJECT {what} {key}: {e}"))
}

/// How long until half a second past the next minute of the wall clock, which is the
/// clock Redis's LFU decay counts in (`unixtime / 60`).
fn until_next_minute() -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    Duration::from_millis(60_000 - now % 60_000 + 500)
}

/// Fill under `policy`: 20 keys, 3 of them touched after a pause, k5 read 300 times.
/// Under LFU the pause runs into the next minute, so every counter has decayed once
/// (lfu-decay-time is 1 minute) and the rest of the run, a few seconds, stays inside it.
fn run(policy: &str) -> (Vec<i64>, Vec<i64>, f64, serde_json::Value) {
    let bin = provisioned_binary(VERSION);
    let args = ["--maxmemory-policy", policy, "--maxmemory", "1gb"];
    let src = RedisServer::start_version(&bin, VERSION, &args);
    let mut conn = src.conn();
    for i in 1..=20 {
        let _: () = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg("v")
            .query(&mut conn)
            .unwrap();
    }
    std::thread::sleep(if policy.ends_with("lfu") {
        until_next_minute()
    } else {
        Duration::from_millis(3100)
    });
    for i in 1..=3 {
        let _: Option<String> = redis::cmd("GET")
            .arg(format!("k{i}"))
            .query(&mut conn)
            .unwrap();
    }
    for _ in 0..300 {
        let _: Option<String> = redis::cmd("GET").arg("k5").query(&mut conn).unwrap();
    }
    let what = if policy.ends_with("lfu") {
        "FREQ"
    } else {
        "IDLETIME"
    };
    let keys = ["k1", "k5", "k10", "k20"];
    let dir = tempfile::tempdir().unwrap();
    let before: Vec<i64> = keys.iter().map(|k| object(&mut conn, what, k)).collect();
    let core = gcore(&src, dir.path());
    let taken = Instant::now();
    let rdb = dir.path().join("dump.rdb");
    let out = run_rescue(&[
        core.as_os_str(),
        OsStr::new("--binary"),
        bin.as_os_str(),
        OsStr::new("-o"),
        rdb.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let report = read_report(&dir.path().join("dump.rdb.report.json"));
    let restored = RedisServer::start_version_on_rdb(&bin, VERSION, &rdb, &args);
    let mut rconn = restored.conn();
    let after: Vec<i64> = keys.iter().map(|k| object(&mut rconn, what, k)).collect();
    (before, after, taken.elapsed().as_secs_f64(), report)
}

#[test]
fn lfu_counters_survive() {
    let (before, after, _, report) = run("allkeys-lfu");
    assert_eq!(
        report["eviction_metadata"]["written"], "freq",
        "report: {report}"
    );
    assert_eq!(
        report["eviction_metadata"]["summary"], "freq",
        "report: {report}"
    );
    assert!(
        before[1] > before[0],
        "k5 should be hotter than k1: {before:?}"
    );
    // k10 and k20 were created with counter 5 in the previous minute: the source decays
    // them to 4 when asked, and so must the dump (the raw counter in memory is still 5).
    assert_eq!(&before[2..], &[4, 4], "source OBJECT FREQ of k10, k20");
    assert_eq!(after, before, "OBJECT FREQ of k1, k5, k10, k20");
}

#[test]
fn lru_idle_times_survive() {
    let (before, after, elapsed, report) = run("allkeys-lru");
    assert_eq!(
        report["eviction_metadata"]["written"], "idle",
        "report: {report}"
    );
    // k10 and k20 were idle ~3 s when the core was taken; k1 and k5 had just been read.
    assert!(
        before[2] >= 2 && before[3] >= 2,
        "source idle times {before:?}"
    );
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        assert!(
            (*a - *b).abs() as f64 <= elapsed + 2.0,
            "key #{i}: idle {b} s in the source, {a} s restored ({elapsed:.1} s after the core)"
        );
    }
    assert!(
        after[2] >= 2 && after[3] >= 2,
        "restored idle times {after:?}"
    );
    assert!(
        after[0] < after[2] && after[1] < after[3],
        "idle order lost: {after:?}"
    );
}
