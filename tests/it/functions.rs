//! Function libraries (Redis 7.0+) survive a rescue: the restored server lists the same
//! libraries with the same code, and an RDB version that cannot carry them says so.

use std::ffi::OsStr;
use std::path::Path;

use crate::common::{
    describe, function_libraries as libraries, gcore, load_function_libraries, read_report,
    run_rescue, RedisServer,
};

/// Debian 12's redis-server with the libraries of [`common::FUNCTION_LIBS`] loaded, and a
/// connection to it.
fn server_with_libraries(bin: &Path) -> (RedisServer, redis::Connection) {
    let src = RedisServer::start(bin, &[]);
    let mut conn = src.conn();
    load_function_libraries(&mut conn);
    (src, conn)
}

#[test]
fn function_libraries_are_recovered() {
    let bin = Path::new("/usr/bin/redis-server");
    let (src, mut conn) = server_with_libraries(bin);
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut conn)
        .expect("SET");
    let truth = libraries(&mut conn);
    assert_eq!(truth.len(), 2);
    let dir = tempfile::tempdir().expect("tempdir");
    let core = gcore(&src, dir.path());

    let rdb = dir.path().join("dump.rdb");
    let out = run_rescue(&[core.as_os_str(), OsStr::new("-o"), rdb.as_os_str()]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let report = read_report(&dir.path().join("dump.rdb.report.json"));
    assert_eq!(report["functions"], 2, "report: {report}");
    assert!(report["functions_lost"].is_null(), "report: {report}");

    let restored = RedisServer::start_on_rdb(bin, &rdb, &[]);
    let mut rconn = restored.conn();
    assert_eq!(
        libraries(&mut rconn),
        truth,
        "FUNCTION LIST WITHCODE differs"
    );
    let echo: String = redis::cmd("FCALL")
        .arg("myfunc")
        .arg(0)
        .arg("hello")
        .query(&mut rconn)
        .expect("FCALL on the restored server");
    assert_eq!(echo, "hello");

    // RDB 9 has no FUNCTION opcode: the keys are written, the libraries reported lost.
    let rdb9 = dir.path().join("dump9.rdb");
    let out = run_rescue(&[
        core.as_os_str(),
        OsStr::new("-o"),
        rdb9.as_os_str(),
        OsStr::new("--rdb-version"),
        OsStr::new("9"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let report = read_report(&dir.path().join("dump9.rdb.report.json"));
    let lost = &report["functions_lost"];
    assert_eq!(
        lost["reason_kind"], "rdb_version_too_old",
        "report: {report}"
    );
    assert!(lost["fault_kind"].is_null(), "report: {report}");
    assert!(
        lost["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("RDB 9"),
        "functions_lost should name the RDB version: {report}"
    );
    assert_eq!(report["totals"]["keys"], 1, "report: {report}");
}

/// A stripped binary without a profile recording the static: the functions context is found
/// from the machine code of `functionsLibCtxGetCurrent` (Debian 12's binary keeps only
/// `.dynsym`). The profile is 7.0.15-debian with its symbols and build-id removed, so
/// nothing but the binary's code can say where `curr_functions_lib_ctx` is.
#[test]
fn a_stripped_binary_keeps_its_functions_through_its_machine_code() {
    let bin = Path::new("/usr/bin/redis-server");
    let (src, mut conn) = server_with_libraries(bin);
    let truth = libraries(&mut conn);
    let dir = tempfile::tempdir().expect("tempdir");
    let core = gcore(&src, dir.path());

    let mut profile: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("layouts/7.0.15-debian.json"),
        )
        .expect("shipped profile"),
    )
    .expect("profile JSON");
    profile["symbols"] = serde_json::json!({});
    profile["identity"]["build_id"] = serde_json::Value::Null;
    profile["name"] = "7.0.15-layout-only".into();
    let profile_path = dir.path().join("layout-only.json");
    std::fs::write(&profile_path, profile.to_string()).expect("write profile");

    let rdb = dir.path().join("dump.rdb");
    let out = run_rescue(&[
        core.as_os_str(),
        OsStr::new("--binary"),
        OsStr::new("/usr/bin/redis-check-rdb"),
        OsStr::new("--profile"),
        profile_path.as_os_str(),
        OsStr::new("-o"),
        rdb.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("machine code of functionsLibCtxGetCurrent"),
        "the log should say where the static came from: {log}"
    );
    let report = read_report(&dir.path().join("dump.rdb.report.json"));
    assert_eq!(report["functions"], 2, "report: {report}");
    let restored = RedisServer::start_on_rdb(bin, &rdb, &[]);
    assert_eq!(libraries(&mut restored.conn()), truth);
}
