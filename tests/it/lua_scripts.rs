//! The EVAL scripts cache: carried in `lua` AUX fields for RDB 9 (Redis 5.0 to 6.2
//! load them back), and reported as not carried where the RDB version's loaders ignore it.

use std::ffi::OsStr;

use crate::common::{describe, gcore, provisioned_binary, read_report, run_rescue, RedisServer};

/// Load two scripts into a `version` server, rescue its core; returns (shas, restored
/// server's SCRIPT EXISTS, report).
fn rescue_scripts(version: &str) -> (Vec<String>, Vec<i64>, serde_json::Value) {
    let bin = provisioned_binary(version);
    let src = RedisServer::start_version(&bin, version, &[]);
    let mut conn = src.conn();
    let shas: Vec<String> = ["return 'one'", "return redis.call('get', KEYS[1])"]
        .iter()
        .map(|s| {
            redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(*s)
                .query(&mut conn)
                .expect("SCRIPT LOAD")
        })
        .collect();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut conn)
        .expect("SET");
    let dir = tempfile::tempdir().expect("tempdir");
    let core = gcore(&src, dir.path());
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
    let restored = RedisServer::start_version_on_rdb(&bin, version, &rdb, &[]);
    let exists: Vec<i64> = redis::cmd("SCRIPT")
        .arg("EXISTS")
        .arg(&shas)
        .query(&mut restored.conn())
        .expect("SCRIPT EXISTS");
    (shas, exists, report)
}

#[test]
fn scripts_are_carried_for_redis_6_2() {
    let (_, exists, report) = rescue_scripts("6.2.14");
    assert_eq!(report["lua_scripts"], 2, "report: {report}");
    assert!(
        report["lua_scripts_not_carried"].is_null(),
        "report: {report}"
    );
    assert_eq!(exists, vec![1, 1], "SCRIPT EXISTS on the restored server");
}

#[test]
fn scripts_are_reported_not_carried_for_rdb_6() {
    let (_, exists, report) = rescue_scripts("2.8.17");
    let why = report["lua_scripts_not_carried"]
        .as_str()
        .unwrap_or_default();
    assert!(
        why.contains("2 scripts") && why.contains("RDB 6"),
        "report: {report}"
    );
    assert_eq!(exists, vec![0, 0], "RDB 6 cannot carry scripts");
}
